package metrics_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/metrics"
	"github.com/ehgate/ehgate/tracing"
)

// BenchmarkInsurabilityFallback is the connector's benchmark of the same name (a service in
// fallback mode answered from memory) with no observer, with the Prometheus collector, and
// with the collector and OpenTelemetry tracing (an SDK provider sampling every span, batched
// to an exporter that drops them), and with tracing sampling 1% of the calls
// (ParentBased(TraceIDRatioBased(0.01)), a usual production setting): the cost of observing
// the hot path.
func BenchmarkInsurabilityFallback(b *testing.B) {
	p, id := clienttest.Platform(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = sampled.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name string
		opts func() []connector.Option
	}{
		{"none", func() []connector.Option { return nil }},
		{"metrics", func() []connector.Option {
			m := metrics.New()
			prometheus.NewRegistry().MustRegister(m)
			return []connector.Option{connector.WithObserver(m)}
		}},
		{"metrics+tracing", func() []connector.Option {
			m := metrics.New()
			prometheus.NewRegistry().MustRegister(m)
			return []connector.Option{connector.WithObserver(m), connector.WithObserver(tracing.New(tp))}
		}},
		{"metrics+tracing1pct", func() []connector.Option {
			m := metrics.New()
			prometheus.NewRegistry().MustRegister(m)
			return []connector.Option{connector.WithObserver(m), connector.WithObserver(tracing.New(sampled))}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := clienttest.Client(b, p, id, tc.opts()...)
			ctx := context.Background()
			var reqs []connector.InsurabilityRequest
			for _, pt := range clienttest.Patients(p, 30) {
				req := connector.InsurabilityRequest{SSIN: pt.SSIN}
				_, err := c.Insurability(ctx, req)
				require.NoError(b, err)
				reqs = append(reqs, req)
			}
			require.NoError(b, c.ActivateFallback(connector.ServiceInsurability, "benchmark"))
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime()
				for i := 0; b.Loop(); i++ {
					res, err := c.Insurability(ctx, reqs[i%len(reqs)])
					if err != nil || res.Source != connector.SourceCache {
						b.Fatal(err, res.Source)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
			b.Run("concurrent100", func(b *testing.B) {
				// As the connector's benchmark: 100 callers, p50 and p99 of one call's latency
				// (less sensitive to a loaded machine than ns/op).
				b.ReportAllocs()
				const callers = 100
				lat := make([][]time.Duration, callers)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				cpu := cpuTime()
				for g := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							start := time.Now()
							res, err := c.Insurability(ctx, reqs[int(i)%len(reqs)])
							lat[g] = append(lat[g], time.Since(start))
							if err != nil || res.Source != connector.SourceCache {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				var all []time.Duration
				for _, l := range lat {
					all = append(all, l...)
				}
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
					b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						i++
						res, err := c.Insurability(ctx, reqs[i%len(reqs)])
						if err != nil || res.Source != connector.SourceCache {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
