package pgstore_test

// Benchmarks of the store on PostgreSQL, beside the bbolt file's in package
// cache (BenchmarkEnqueueParallel, BenchmarkGetDiskHit). Run them with
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

// BenchmarkPostgresGet100Callers: 100 concurrent callers read answers of
// 1 KiB from the database (a fallback read: one SELECT and one decryption
// each, no memory cache with a backend), reporting the p50 and p99 latency of
// one Get.
func BenchmarkPostgresGet100Callers(b *testing.B) {
	st := benchStore(b, cachetest.Tenant("bench-get"))
	answer := make([]byte, 1024)
	const keys = 1000
	for i := range keys {
		require.NoError(b, st.Put(bg, cache.FunctionInsurability, fmt.Sprintf("%011d", i), answer))
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		next atomic.Int64
	)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				t0 := time.Now()
				if _, err := st.Get(bg, cache.FunctionInsurability, fmt.Sprintf("%011d", i%keys)); err != nil {
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
