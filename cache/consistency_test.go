package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// Concurrent Puts, Deletes and Gets (which fill the memory cache from disk)
// must leave memory agreeing with disk.
func TestStore_MemoryAgreesWithDiskUnderConcurrency(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MemoryEntries = 8 // small: evictions and refills all the time
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 60 {
				k := keys[r.IntN(len(keys))]
				switch r.IntN(4) {
				case 0:
					require.NoError(t, st.Put(bg, cache.FunctionInsurability, k, fmt.Appendf(nil, "g%d-%d", g, i)))
				case 1:
					require.NoError(t, st.Delete(bg, cache.FunctionInsurability, k))
				default:
					_, _ = st.Get(bg, cache.FunctionInsurability, k)
				}
			}
		}()
	}
	wg.Wait()
	inMemory := map[string]string{}
	for _, k := range keys {
		if e, err := st.Get(bg, cache.FunctionInsurability, k); err == nil {
			inMemory[k] = string(e.Value)
		} else {
			require.ErrorIs(t, err, cache.ErrNotFound)
		}
	}
	require.NoError(t, st.Close())
	st = openTest(t, cfg)
	onDisk := map[string]string{}
	for _, k := range keys {
		if e, err := st.Get(bg, cache.FunctionInsurability, k); err == nil {
			onDisk[k] = string(e.Value)
		}
	}
	require.Equal(t, onDisk, inMemory)
}

func TestStore_StatsCountsPerFunctionAndOutbox(t *testing.T) {
	clk := newTestClock()
	st := openTest(t, testConfig(t.TempDir()), cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "a", make([]byte, 100)))
	clk.Advance(2 * time.Hour)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "b", make([]byte, 100)))
	require.NoError(t, st.Put(bg, cache.FunctionETK, "e", make([]byte, 10)))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w1", Payload: []byte("x")}))
	clk.Advance(30 * time.Minute)
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w2", Payload: []byte("x")}))
	clk.Advance(30 * time.Minute)

	s, err := st.Stats(bg)
	require.NoError(t, err)
	ins := s.Functions[cache.FunctionInsurability]
	require.Equal(t, 2, ins.Count)
	require.Equal(t, 3*time.Hour, ins.Oldest)
	require.Equal(t, time.Hour, ins.Newest)
	require.Equal(t, 2, ins.Servable)
	require.Equal(t, 0, ins.Fresh, "insurability is fresh for 1 h")
	require.Greater(t, ins.Bytes, int64(200))
	require.True(t, ins.Registered)
	require.Equal(t, 1, s.Functions[cache.FunctionETK].Fresh)
	require.Equal(t, 0, s.Functions[cache.FunctionToken].Count)
	require.Equal(t, cache.OutboxStats{Pending: 2, OldestAge: time.Hour, DeadLetters: 0, Bytes: s.Outbox.Bytes}, s.Outbox)
	require.Positive(t, s.Outbox.Bytes)
	require.Positive(t, s.FileBytes)
	require.Equal(t, 3, s.MemoryEntries)
}

func TestOutbox_TamperedEntryIsSkippedAndKept(t *testing.T) {
	dir := t.TempDir()
	cfg := fastReplay(testConfig(dir))
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	for _, k := range []string{"w1", "w2", "w3"} {
		require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: k, Partition: k, Payload: []byte(k)}))
	}
	require.NoError(t, st.Close())
	// Swap the first two entries: each would be delivered in the other's place.
	editFile(t, filepath.Join(dir, "pharmacy-1.db"), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		c := b.Cursor()
		k1, v1 := c.First()
		k1, v1 = bytes.Clone(k1), bytes.Clone(v1)
		k2, v2 := c.Next()
		k2, v2 = bytes.Clone(k2), bytes.Clone(v2)
		if err := b.Put(k1, v2); err != nil {
			return err
		}
		return b.Put(k2, v1)
	})
	st = openTest(t, cfg)
	var (
		mu   sync.Mutex // Replay delivers partitions concurrently
		sent []string
	)
	res, err := st.Outbox().Replay(bg, func(ctx context.Context, m cache.Message) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"w3"}, sent)
	require.Equal(t, 2, res.Skipped)
	require.Equal(t, 2, st.Outbox().Pending(), "kept as evidence, never delivered")
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.AuthFailures, uint64(2))
}

func TestStore_MemoryStaysWithinMemoryBytes(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MemoryBytes = 1000
	st := openTest(t, cfg)
	stats := func() cache.Stats {
		s, err := st.Stats(bg)
		require.NoError(t, err)
		return s
	}
	for i := range 5 {
		require.NoError(t, st.Put(bg, cache.FunctionInsurability, fmt.Sprint(i), bytes.Repeat([]byte{byte(i)}, 300)))
	}
	s := stats()
	require.Equal(t, 3, s.MemoryEntries)
	require.Equal(t, int64(900), s.MemoryBytes)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "4", make([]byte, 100))) // replaces a cached value
	require.Equal(t, int64(700), stats().MemoryBytes)
	require.NoError(t, st.Delete(bg, cache.FunctionInsurability, "3"))
	require.Equal(t, int64(400), stats().MemoryBytes)
	for i := range 5 { // every answer still served, from disk when evicted
		e, err := st.Get(bg, cache.FunctionInsurability, fmt.Sprint(i))
		if i == 3 {
			require.ErrorIs(t, err, cache.ErrNotFound)
			continue
		}
		require.NoError(t, err)
		require.NotEmpty(t, e.Value)
	}
	require.LessOrEqual(t, stats().MemoryBytes, int64(1000))
}
