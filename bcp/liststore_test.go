package bcp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFileListStore_SaveLoadReplace(t *testing.T) {
	dir := t.TempDir()
	s := NewFileListStore(filepath.Join(dir, "servicelist.xml"))

	_, err := s.Load()
	require.ErrorIs(t, err, ErrNoStoredList)

	first := readTestdata(t, sampleListPath)
	require.NoError(t, s.Save(first))
	got, err := s.Load()
	require.NoError(t, err)
	require.Equal(t, first, got)

	second := readTestdata(t, v2ListPath)
	require.NoError(t, s.Save(second))
	got, err = s.Load()
	require.NoError(t, err)
	require.Equal(t, second, got)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	require.Error(t, s.Save(nil))
	got, err = s.Load()
	require.NoError(t, err)
	require.Equal(t, second, got, "a refused save changes nothing")
}

func TestFileListStore_RefusesOversizedAndEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servicelist.xml")
	s := NewFileListStore(path)

	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err := s.Load()
	require.ErrorIs(t, err, ErrNoStoredList)

	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("x"), MaxServiceListBytes+1), 0o600))
	_, err = s.Load()
	require.ErrorIs(t, err, ErrListTooLarge)
}

func TestFileListStore_SaveFailsInMissingDirectory(t *testing.T) {
	s := NewFileListStore(filepath.Join(t.TempDir(), "missing", "servicelist.xml"))
	require.Error(t, s.Save([]byte("<x/>")))
}

// TestFileListStore_SurvivesKill9 runs a child process that saves two lists alternately
// as fast as it can, kills it with SIGKILL in the middle, and checks that the file holds one
// of the two lists whole.
func TestFileListStore_SurvivesKill9(t *testing.T) {
	if os.Getenv("BCP_LISTSTORE_CHILD") != "" {
		listStoreChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	a := readTestdata(t, sampleListPath)
	b := readTestdata(t, v2ListPath)
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "servicelist.xml")
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileListStore_SurvivesKill9$")
		cmd.Env = append(os.Environ(), "BCP_LISTSTORE_CHILD="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(out)
		// Kill after a varying number of completed saves, while the child is writing.
		want := 5 + 7*round
		saves := 0
		for saves < want && lines.Scan() {
			if strings.HasPrefix(lines.Text(), "saved") {
				saves++
			}
		}
		require.Equal(t, want, saves, "child stopped early")
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		got, err := NewFileListStore(path).Load()
		require.NoError(t, err)
		require.True(t, bytes.Equal(got, a) || bytes.Equal(got, b), "round %d: file holds neither list whole (%d bytes)", round, len(got))
		_, err = ParseServiceList(got)
		require.NoError(t, err)
	}
}

func listStoreChild() {
	path := os.Getenv("BCP_LISTSTORE_CHILD")
	a, errA := os.ReadFile(sampleListPath)
	b, errB := os.ReadFile(v2ListPath)
	if errA != nil || errB != nil {
		fmt.Println("error", errA, errB)
		os.Exit(2)
	}
	s := NewFileListStore(path)
	for i := 0; ; i++ {
		raw := a
		if i%2 == 1 {
			raw = b
		}
		if err := s.Save(raw); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("saved", i)
	}
}
