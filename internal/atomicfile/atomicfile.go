// Package atomicfile replaces files so that a crash or a power loss leaves either the old
// content or the new one, never a mix, and makes the replacement durable where the operating
// system allows it. The cache and the service-list store use it.
//
// What each operating system gives (the implementation is chosen by build tags):
//
//   - Linux, macOS and the other Unix systems: rename(2) replaces the target atomically, even
//     while other processes have it open (they keep reading the old file). The rename is made
//     durable by opening the directory and calling fsync on it ([os.File.Sync]; on macOS the
//     standard library issues F_FULLFSYNC, falling back to fsync where the file system
//     refuses it).
//   - Windows: [os.Rename] calls MoveFileEx with MOVEFILE_REPLACE_EXISTING only, and a
//     directory cannot be flushed: [os.Open] opens it with GENERIC_READ and
//     FILE_FLAG_BACKUP_SEMANTICS, and FlushFileBuffers, which [os.File.Sync] calls, needs write
//     access, so it fails with ERROR_ACCESS_DENIED (read in the Go standard library:
//     os/file_windows.go, syscall/syscall_windows.go Open, internal/poll FD.Fsync,
//     internal/syscall/windows Rename). Here Rename calls MoveFileEx itself with
//     MOVEFILE_REPLACE_EXISTING|MOVEFILE_WRITE_THROUGH, which returns only once the move is on
//     disk, and SyncDir does nothing: NTFS records creations, renames and deletions in its
//     journal, which is what a directory fsync gives on Unix (WiredTiger and gnulib's fsync
//     make the same choice on Windows). Replacing a file that another process holds open
//     fails on Windows (the standard library opens files without FILE_SHARE_DELETE), so
//     Rename retries sharing violations and access denials for up to about a second, as the
//     go command's own robustio does, before it returns the error.
//
// Functions are safe for concurrent use on different paths; callers serialise writers of the
// same path (two concurrent WriteFile calls on one path leave one of the two contents).
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data: it writes a temporary file in the same directory,
// flushes it to disk, renames it over path with [Rename] and flushes the directory. On error
// the temporary file is removed and path is left as it was (or, should the failure come after
// the rename, holds data that may not be durable yet).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := rename(tmp.Name(), path); err != nil {
		return err
	}
	committed = true
	return SyncDir(dir)
}

// Rename renames oldpath to newpath, replacing newpath if it exists, and makes the change
// durable: on Unix by flushing the directory of newpath (and that of oldpath when it differs),
// on Windows by the write-through move described in the package doc.
func Rename(oldpath, newpath string) error {
	if err := rename(oldpath, newpath); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(newpath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldpath); od != filepath.Dir(newpath) {
		return SyncDir(od)
	}
	return nil
}

// SyncDir makes the creations, renames and removals of entries in dir durable. On Windows it
// does nothing (see the package doc).
func SyncDir(dir string) error { return syncDir(dir) }
