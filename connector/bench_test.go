package connector

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// benchEnv is a client on the shared platform with n patients answered once live.
func benchEnv(b *testing.B, n int) (*Client, []InsurabilityRequest) {
	b.Helper()
	p, id := testPlatform(b)
	cfg := testConfig(b, p, id)
	c, err := New(cfg)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	var reqs []InsurabilityRequest
	for _, pt := range p.Patients() {
		if pt.Known && len(reqs) < n {
			req := InsurabilityRequest{SSIN: pt.SSIN}
			_, err := c.Insurability(context.Background(), req)
			require.NoError(b, err)
			reqs = append(reqs, req)
		}
	}
	return c, reqs
}

// BenchmarkInsurabilityFallback: the service is in fallback mode (no network attempt) and the
// answer comes from memory. The concurrent100 case runs 100 callers and reports the p50 and
// p99 latency of one call.
func BenchmarkInsurabilityFallback(b *testing.B) {
	c, reqs := benchEnv(b, 50)
	require.NoError(b, c.ActivateFallback(ServiceInsurability, "benchmark"))
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			res, err := c.Insurability(ctx, reqs[i%len(reqs)])
			if err != nil || res.Source != SourceCache {
				b.Fatal(err, res.Source)
			}
		}
	})
	b.Run("concurrent100", func(b *testing.B) {
		b.ReportAllocs()
		const callers = 100
		lat := make([][]time.Duration, callers)
		for g := range lat { // grown in advance: the harness copies no slice between calls
			lat[g] = make([]time.Duration, 0, 2*b.N/callers+16)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					start := time.Now()
					res, err := c.Insurability(ctx, reqs[int(i)%len(reqs)])
					lat[g] = append(lat[g], time.Since(start))
					if err != nil || res.Source != SourceCache {
						b.Error(err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		b.StopTimer()
		reportPercentiles(b, lat)
	})
}

// BenchmarkInsurabilityLive: signed calls to platformtest over loopback HTTPS, answers
// stored; calls/s is reported.
func BenchmarkInsurabilityLive(b *testing.B) {
	c, reqs := benchEnv(b, 50)
	ctx := context.Background()
	b.ReportAllocs()
	var i atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Insurability(ctx, reqs[int(i.Add(1))%len(reqs)])
			if err != nil || res.Source != SourceLive {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

func reportPercentiles(b *testing.B, lat [][]time.Duration) {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
}

var _ = platformtest.ServiceInsurability
