package atomicfile_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/internal/atomicfile"
)

func TestWriteFile(t *testing.T) {
	tests := map[string]struct {
		before []byte // nil: no file before
		data   []byte
		perm   os.FileMode
	}{
		"new file":                 {nil, []byte("first"), 0o600},
		"replaces a longer file":   {bytes.Repeat([]byte("x"), 10000), []byte("short"), 0o600},
		"replaces a shorter file":  {[]byte("a"), bytes.Repeat([]byte("y"), 70000), 0o644},
		"empty content":            {[]byte("old"), []byte{}, 0o600},
		"honours the mode it gets": {nil, []byte("m"), 0o640},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "list.xml")
			if tc.before != nil {
				require.NoError(t, os.WriteFile(path, tc.before, 0o600))
			}
			require.NoError(t, atomicfile.WriteFile(path, tc.data, tc.perm))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.data, got)
			if runtime.GOOS != "windows" {
				fi, err := os.Stat(path)
				require.NoError(t, err)
				require.Equal(t, tc.perm, fi.Mode().Perm())
			}
			requireOnly(t, dir, "list.xml")
		})
	}
}

func TestWriteFile_FailureLeavesTheOldFileAndNoTemporary(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory: the rename fails after the temporary was written.
	path := filepath.Join(dir, "target")
	require.NoError(t, os.MkdirAll(filepath.Join(path, "inside"), 0o700))
	err := atomicfile.WriteFile(path, []byte("new"), 0o600)
	require.Error(t, err)
	var le *os.LinkError
	require.ErrorAs(t, err, &le)
	requireOnly(t, dir, "target")
	require.DirExists(t, filepath.Join(path, "inside"))

	// A directory that does not exist: nothing is created.
	err = atomicfile.WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestRename(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	require.NoError(t, os.WriteFile(a, []byte("content"), 0o600))
	require.NoError(t, os.WriteFile(b, []byte("replaced"), 0o600))

	require.NoError(t, atomicfile.Rename(a, b), "across directories, over an existing file")
	require.NoFileExists(t, a)
	got, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, "content", string(got))

	err = atomicfile.Rename(a, b)
	require.ErrorIs(t, err, os.ErrNotExist, "the source is gone")
}

func TestSyncDir(t *testing.T) {
	require.NoError(t, atomicfile.SyncDir(t.TempDir()))
	if runtime.GOOS != "windows" {
		require.ErrorIs(t, atomicfile.SyncDir(filepath.Join(t.TempDir(), "missing")), os.ErrNotExist)
	}
}

const childEnv = "ATOMICFILE_TEST_CHILD_DIR"

// TestWriteFile_KillNineLeavesAWholeVersion kills a process that keeps replacing a file (64 KiB
// per version, each version one repeated byte and its number) and checks the file holds one
// whole version, never older than the last one the child reported written.
func TestWriteFile_KillNineLeavesAWholeVersion(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("kill -9 of a child: Unix only")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		last := -1
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue // the test framework's own lines
			}
			last = n
			if last >= 20+round*7 {
				break
			}
		}
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		require.GreaterOrEqual(t, last, 20, "the child reported its writes")

		got, err := os.ReadFile(filepath.Join(dir, "f"))
		require.NoError(t, err)
		n, ok := version(got)
		require.True(t, ok, "a whole version, not a mix (len %d)", len(got))
		// The child may have written more versions between its last line read and the kill.
		require.GreaterOrEqual(t, n, last, "never older than a version reported written")
	}
}

func TestWriteFileChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("helper process of TestWriteFile_KillNineLeavesAWholeVersion")
	}
	for n := 0; ; n++ {
		if err := atomicfile.WriteFile(filepath.Join(dir, "f"), versionBytes(n), 0o600); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println(n)
	}
}

func versionBytes(n int) []byte {
	b := bytes.Repeat([]byte{byte('a' + n%26)}, 64<<10)
	return append(b, strconv.Itoa(n)...)
}

func version(b []byte) (int, bool) {
	if len(b) <= 64<<10 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[64<<10:]))
	if err != nil || !bytes.Equal(b, versionBytes(n)) {
		return 0, false
	}
	return n, true
}

func requireOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	require.ElementsMatch(t, names, got, "no temporary file left behind")
}
