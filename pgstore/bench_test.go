package pgstore_test

// Benchmarks of the store on PostgreSQL, beside the bbolt file's in package
// cache (BenchmarkEnqueueParallel, BenchmarkGetDiskHit) and the file's own
// BenchmarkFileGet100Callers here. Run them with
//
//	EHGATE_TEST_POSTGRES_URL=... go test -run '^$' -bench . -benchtime 3s ./pgstore/

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/stretchr/testify/require"
)

func benchStore(b *testing.B, tenant string) *cache.Store {
	b.Helper()
	st, err := cache.Open(storeConfig(tenant, openDB(b, func(c *pgstore.Config) { c.MaxConns = 16 })))
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkPostgresEnqueueParallel: 128 concurrent producers (64 × GOMAXPROCS
// on 2 cores); each Enqueue returns once its row is committed (the server's
// synchronous_commit decides the fsync), concurrent ones sharing one INSERT
// and one commit.
func BenchmarkPostgresEnqueueParallel(b *testing.B) {
	st := benchStore(b, cachetest.Tenant("bench-enqueue"))
	ob := st.Outbox()
	payload := make([]byte, 512)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("k", i), Partition: fmt.Sprint(i % 16), Service: "svc", Payload: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkPostgresEnqueue: one producer, one commit per Enqueue.
func BenchmarkPostgresEnqueue(b *testing.B) {
	st := benchStore(b, cachetest.Tenant("bench-enqueue1"))
	ob := st.Outbox()
	payload := make([]byte, 512)
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		i++
		if err := ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("k", i), Partition: "p", Service: "svc", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkPostgresGet100Callers: 100 concurrent callers, each reading
// answers of 1 KiB one after the other with no pause (a closed loop: the
// hardest form of "100 concurrent callers", where latency and throughput are
// tied by Little's law), reporting the p50 and p99 latency of one Get. Every
// Get reads its sealed record from the database and decrypts it: a Store on
// a backend keeps no answer in memory. The pool is warmed first (its
// connections opened and statements prepared), as in a running instance.
func BenchmarkPostgresGet100Callers(b *testing.B) {
	get100Callers(b, benchStore(b, cachetest.Tenant("bench-get")))
}

// BenchmarkFileGet100Callers: the same on the bbolt file, for comparison in
// the same run, with the memory LRU reduced to one entry so that every Get
// reads and decrypts its record from the file (as BenchmarkGetDiskHit in
// package cache).
func BenchmarkFileGet100Callers(b *testing.B) {
	st, err := cache.Open(cache.Config{
		Dir: b.TempDir(), Tenant: "bench-get", Keys: []cache.Key{cachetest.Key("k1", 1)},
		PurgeInterval: -1, MemoryEntries: 1,
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	get100Callers(b, st)
}

func get100Callers(b *testing.B, st *cache.Store) {
	const keys, callers = 1000, 100
	answer := make([]byte, 1024)
	names := make([]string, keys)
	for i := range keys {
		names[i] = fmt.Sprintf("%011d", i)
		require.NoError(b, st.Put(bg, cache.FunctionInsurability, names[i], answer))
	}
	run := func(n int64) []time.Duration {
		var (
			mu   sync.Mutex
			lats = make([]time.Duration, 0, n)
			next atomic.Int64
			wg   sync.WaitGroup
		)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for {
					i := next.Add(1)
					if i > n {
						break
					}
					t0 := time.Now()
					if _, err := st.Get(bg, cache.FunctionInsurability, names[i%keys]); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return lats
	}
	run(10 * callers) // warm up
	b.ReportAllocs()
	b.ResetTimer()
	lats := run(int64(b.N))
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lats))/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkFleetReplayThreeInstances: three instances (each its own pool)
// replay one outbox of b.N messages in 32 partitions together, with a send
// that accepts at once: the cost of claiming, reading, decrypting and removing.
func BenchmarkFleetReplayThreeInstances(b *testing.B) {
	tenant := cachetest.Tenant("bench-replay")
	stores := []*cache.Store{benchStore(b, tenant), benchStore(b, tenant), benchStore(b, tenant)}
	payload := make([]byte, 512)
	var wg sync.WaitGroup
	var n atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := stores[i%3].Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("k", i), Partition: fmt.Sprint(i % 32), Service: "svc", Payload: payload}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var delivered atomic.Int64
	b.ResetTimer()
	for _, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := st.Outbox().Replay(bg, func(context.Context, cache.Message) error { return nil })
			if err != nil {
				b.Error(err)
			}
			delivered.Add(int64(res.Delivered))
		}()
	}
	wg.Wait()
	b.StopTimer()
	require.EqualValues(b, b.N, delivered.Load())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
