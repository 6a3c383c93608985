package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

// gatedWriter blocks every Write until release is closed, like a pipe nobody
// reads; entered is closed by the first Write.
type gatedWriter struct {
	entered, release chan struct{}
	once             sync.Once
	buf              bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.buf.Write(p)
}

// An Export stuck on its destination must not hold up writes, even writes
// that make the file grow (bbolt remaps it then, which waits for every open
// read transaction). The store's data is tripled while the Export is blocked
// in its first Write; then the Export completes and holds every record,
// the outbox (read after the blocked part, in batches) in order.
func TestStore_ExportBlockedDoesNotHoldUpWrites(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, testConfig(dir))
	val := make([]byte, 3000)
	for i := range 200 {
		require.NoError(t, st.Put(bg, cache.FunctionInsurability, fmt.Sprint("a", i), val))
	}
	fi, err := os.Stat(filepath.Join(dir, "pharmacy-1.db"))
	require.NoError(t, err)
	before := fi.Size()

	w := &gatedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(w.release) }) }
	t.Cleanup(release) // before the store's Close, if the test fails while the export is blocked
	type result struct {
		res cache.ExportResult
		err error
	}
	exported := make(chan result, 1)
	go func() {
		res, err := st.Export(bg, w)
		exported <- result{res, err}
	}()
	<-w.entered // the export is now blocked writing its first answers

	const writers, each = 8, 75
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// The deadline is a cap so that a regression fails instead of hanging, not a timing claim.
				ctx, cancel := context.WithTimeout(bg, 30*time.Second)
				err := st.Outbox().Enqueue(ctx, cache.Message{IdempotencyKey: fmt.Sprint("m", g, "-", i), Partition: "p", Service: "tarification", Payload: val})
				cancel()
				if err != nil {
					t.Errorf("enqueue while the export is blocked: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	fi, err = os.Stat(filepath.Join(dir, "pharmacy-1.db"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, fi.Size(), 3*before, "the writes must have grown the file past the mapping the export started with")
	select {
	case r := <-exported:
		t.Fatalf("the export ended while its writer was blocked: %+v", r)
	default:
	}

	release()
	r := <-exported
	require.NoError(t, r.err)
	require.Equal(t, cache.ExportResult{Answers: 200, Outbox: writers * each}, r.res)
	sc := bufio.NewScanner(&w.buf)
	sc.Buffer(nil, 1<<20)
	var lastSeq uint64
	seen := map[string]bool{}
	types := map[string]int{}
	for sc.Scan() {
		var l struct {
			Type           string `json:"type"`
			Seq            uint64 `json:"seq"`
			Key            string `json:"key"`
			IdempotencyKey string `json:"idempotency_key"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		types[l.Type]++
		switch l.Type {
		case "answer":
			require.False(t, seen["a:"+l.Key], "answer %s twice", l.Key)
			seen["a:"+l.Key] = true
		case "outbox":
			require.Greater(t, l.Seq, lastSeq, "outbox lines in delivery order across batches")
			lastSeq = l.Seq
			require.False(t, seen["m:"+l.IdempotencyKey], "message %s twice", l.IdempotencyKey)
			seen["m:"+l.IdempotencyKey] = true
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, map[string]int{"header": 1, "answer": 200, "outbox": writers * each, "end": 1}, types)
}
