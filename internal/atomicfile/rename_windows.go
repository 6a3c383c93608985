//go:build windows

package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// rename moves with MOVEFILE_WRITE_THROUGH (os.Rename does not ask for it), retrying the
// transient failures of a target held open by another process: sharing violations and access
// denials (the set and the idea follow the go command's cmd/internal/robustio, which retries
// them for 2 s; a second is enough for a reader of a small file).
func rename(oldpath, newpath string) error {
	from, err := extended(oldpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	to, err := extended(newpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	sleep := time.Millisecond
	var waited time.Duration
	for {
		err = windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
		if err == nil {
			return nil
		}
		if !transient(err) || waited >= time.Second {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		time.Sleep(sleep)
		waited += sleep
		sleep *= 2
	}
}

func transient(err error) bool {
	return errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_ACCESS_DENIED)
}

// extended gives a path longer than the Win32 limit the \\?\ prefix, as the os package does
// for its own calls (os/path_windows.go fixLongPath), so Rename accepts every path os.Rename
// accepts.
func extended(p string) (string, error) {
	const maxShort = 248 // MAX_PATH minus room for an 8.3 file name, as in os/path_windows.go
	if len(p) < maxShort || strings.HasPrefix(p, `\\?\`) || strings.HasPrefix(p, `\??\`) {
		return p, nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(abs, `\\`) {
		return `\\?\UNC\` + abs[2:], nil
	}
	return `\\?\` + abs, nil
}

// syncDir does nothing: Windows cannot flush a directory handle opened for reading, and NTFS
// journals directory changes (see the package doc).
func syncDir(string) error { return nil }
