package cache_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

var answer1K = make([]byte, 1024)

func BenchmarkGetMemoryHit(b *testing.B) {
	st := openTest(&testing.T{}, testConfig(b.TempDir()))
	defer st.Close()
	require.NoError(b, st.Put(bg, cache.FunctionInsurability, ssin, answer1K))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.Get(bg, cache.FunctionInsurability, ssin); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetDiskHit reads answers that are not in memory (a 1-entry LRU
// and 1,000 keys read in turn): bbolt read, AES-GCM open, decode.
func BenchmarkGetDiskHit(b *testing.B) {
	cfg := testConfig(b.TempDir())
	cfg.MemoryEntries = 1
	st, err := cache.Open(cfg)
	require.NoError(b, err)
	defer st.Close()
	const n = 1000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%011d", i)
		require.NoError(b, st.Put(bg, cache.FunctionInsurability, keys[i], answer1K))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := st.Get(bg, cache.FunctionInsurability, keys[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEnqueue is one producer: every Enqueue waits for its own fsync.
func BenchmarkEnqueue(b *testing.B) {
	st, err := cache.Open(testConfig(b.TempDir()))
	require.NoError(b, err)
	defer st.Close()
	ob := st.Outbox()
	payload := make([]byte, 512)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		if err := ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("k", i), Partition: "p", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkEnqueueParallel is 64 concurrent producers: their enqueues share
// commits (group commit), each still returning only once durable.
func BenchmarkEnqueueParallel(b *testing.B) {
	st, err := cache.Open(testConfig(b.TempDir()))
	require.NoError(b, err)
	defer st.Close()
	ob := st.Outbox()
	payload := make([]byte, 512)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // × GOMAXPROCS producers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("k", i), Partition: fmt.Sprint(i % 16), Payload: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkOpen opens a store of 20,000 answers of 1 KiB (about 30 MB),
// including the page-by-page integrity check and the purge scan at Open.
func BenchmarkOpen(b *testing.B) {
	cfg := testConfig(b.TempDir())
	st, err := cache.Open(cfg)
	require.NoError(b, err)
	var lines bytes.Buffer
	lines.WriteString(`{"type":"header","format":"ehgate-cache-export","version":1}` + "\n")
	val := base64.StdEncoding.EncodeToString(answer1K)
	for i := range 20_000 {
		fmt.Fprintf(&lines, `{"type":"answer","function":"insurability","key":"%011d","value":"%s","stored_at":"%s"}`+"\n", i, val, time.Now().UTC().Format(time.RFC3339))
	}
	lines.WriteString(`{"type":"end"}` + "\n")
	_, err = st.Import(bg, &lines)
	require.NoError(b, err)
	require.NoError(b, st.Close())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := cache.Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = st.Close()
	}
}

// BenchmarkPutAnswer compares a durable Put (the caller waits for its
// commit's fsync) with a deferred Put (the caller returns once the writer
// has it), one caller, 1 KiB answers, sub-benchmarks alternating with
// -count. The deferred figure includes the final Flush, so the commits the
// writer made for it are paid inside the measurement; commits/op says how
// many fsyncs each Put cost.
func BenchmarkPutAnswer(b *testing.B) {
	for _, mode := range []string{"durable", "deferred"} {
		b.Run(mode, func(b *testing.B) {
			st, err := cache.Open(testConfig(b.TempDir()))
			require.NoError(b, err)
			defer st.Close()
			var opts []cache.PutOption
			if mode == "deferred" {
				opts = append(opts, cache.Deferred())
			}
			s0, err := st.Stats(bg)
			require.NoError(b, err)
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("%011d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := st.Put(bg, cache.FunctionInsurability, keys[i%len(keys)], answer1K, opts...); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.Flush(bg); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s1, err := st.Stats(bg)
			require.NoError(b, err)
			b.ReportMetric(float64(s1.Commits-s0.Commits)/float64(b.N), "commits/op")
		})
	}
}
