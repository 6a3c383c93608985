package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

const damagedChildEnv = "EHGATE_CACHE_DAMAGED_CHILD"

// TestStore_FileDamagedWhileOpen truncates the store file under a running
// Store (a disk error, a restore or sync tool, an old copy put over it): the
// next reads and writes fault on the mapped file. They must return a typed
// error, not kill the process with SIGBUS. Each case runs in a child process,
// so a regression crashes the child, not this test binary.
func TestStore_FileDamagedWhileOpen(t *testing.T) {
	for _, mode := range []string{"read-first", "write-first", "enqueue-first", "emptied"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(bg, 2*time.Minute) // a cap for a hung child, not a timing claim
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestStore_DamagedChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), damagedChildEnv+"="+mode+":"+t.TempDir())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			require.NoError(t, err, "the child must exit normally; its output:\n%s", out.String())
			s := out.String()
			require.NotContains(t, s, "SIGBUS")
			require.Contains(t, s, "FIRST typed damaged error:")
			require.Contains(t, s, "store file damaged while open")
			require.Contains(t, s, "GET typed damaged error")
			require.Contains(t, s, "PUT typed damaged error")
			require.Contains(t, s, "ENQUEUE typed damaged error")
			require.Contains(t, s, "CLOSE returned")
		})
	}
}

// TestStore_DamagedChild is the child of TestStore_FileDamagedWhileOpen.
func TestStore_DamagedChild(t *testing.T) {
	env := os.Getenv(damagedChildEnv)
	if env == "" {
		t.Skip("child process of TestStore_FileDamagedWhileOpen; runs only when re-executed")
	}
	mode, dir, _ := strings.Cut(env, ":")
	cfg := testConfig(dir)
	cfg.MemoryEntries = 1
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	val := make([]byte, 3000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := st.Put(bg, cache.FunctionInsurability, fmt.Sprint("k", g, "-", i), val); err != nil {
					t.Errorf("put: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "before", Partition: "p", Service: "tarification", Payload: val}))
	path := filepath.Join(dir, cfg.Tenant+".db")
	size := int64(64 << 10)
	if mode == "emptied" {
		size = 0 // even the meta pages are gone: bbolt faults while starting a transaction
	}
	require.NoError(t, os.Truncate(path, size))

	typed := func(err error) bool {
		var fe *cache.FileError
		return errors.Is(err, cache.ErrDamaged) && errors.Is(err, cache.ErrCorrupt) && errors.As(err, &fe) && fe.Path == path
	}
	// The first operation that reaches a page past the new end of the file faults.
	var first error
	for g := 0; g < 8 && first == nil; g++ {
		for i := 0; i < 100 && first == nil; i++ {
			key := fmt.Sprint("k", g, "-", i)
			switch mode {
			case "read-first", "emptied":
				_, first = st.Get(bg, cache.FunctionInsurability, key)
			case "write-first":
				first = st.Put(bg, cache.FunctionInsurability, key, []byte("new"))
			case "enqueue-first":
				first = st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: key, Partition: "p", Service: "tarification", Payload: val})
			}
		}
	}
	require.Error(t, first, "no operation reached the truncated part of the file")
	require.True(t, typed(first), "not a typed damaged error: %v", first)
	fmt.Println("FIRST typed damaged error:", first)
	// From then on the Store does not use the file: every operation says so.
	_, err = st.Get(bg, cache.FunctionInsurability, "not-in-memory") // a memory hit would still be served
	require.True(t, typed(err), "get: %v", err)
	fmt.Println("GET typed damaged error")
	err = st.Put(bg, cache.FunctionInsurability, "k7-98", []byte("x"))
	require.True(t, typed(err), "put: %v", err)
	fmt.Println("PUT typed damaged error")
	err = st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "after", Partition: "p", Service: "tarification", Payload: val})
	require.True(t, typed(err), "enqueue: %v", err)
	fmt.Println("ENQUEUE typed damaged error")
	_, err = st.Export(bg, &bytes.Buffer{})
	require.True(t, typed(err), "export: %v", err)
	fmt.Println("CLOSE returned", st.Close())
}
