package metrics_test

import (
	"context"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/metrics"
	"github.com/ehgate/ehgate/tracing"
)

// BenchmarkInsurabilityFallback is the connector's benchmark of the same name (a service in
// fallback mode answered from memory) with no observer, with the Prometheus collector, with
// the collector and OpenTelemetry tracing of every call, and with tracing sampling 1% of the
// calls (ParentBased(TraceIDRatioBased(0.01)), a usual production setting): the cost of
// observing the hot path. Tracing uses the SDK's TracerProvider as a vendor configures it:
// WithBatcher (a batch span processor with its default queue, batch size and timeout) in front
// of an exporter that encodes every span it gets as JSON (name, IDs, times, kind, status,
// attributes) to io.Discard, the work of a real exporter without a collector to send to.
// Besides ns/op it reports the p50 and p99 of one call (concurrent100) and the process's CPU
// time per call (cpu-ns/op: the exporter's and the collector's goroutines included, waiting
// for a core on a loaded machine not).
func BenchmarkInsurabilityFallback(b *testing.B) {
	p, id := clienttest.Platform(b)
	var exported atomic.Int64
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(jsonExporter{&exported}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
		sdktrace.WithBatcher(jsonExporter{&exported}))
	b.Cleanup(func() { _ = sampled.Shutdown(context.Background()) })
	// flushed exports the spans still queued and returns how many were exported so far
	// (spans/op below: 1 = every call's span exported; a full queue drops spans).
	flushed := func() int64 {
		_ = tp.ForceFlush(context.Background())
		_ = sampled.ForceFlush(context.Background())
		return exported.Load()
	}
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
				cpu, spans := cpuTime(), flushed()
				for i := 0; b.Loop(); i++ {
					res, err := c.Insurability(ctx, reqs[i%len(reqs)])
					if err != nil || res.Source != connector.SourceCache {
						b.Fatal(err, res.Source)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(flushed()-spans)/float64(b.N), "spans/op")
			})
			b.Run("concurrent100", func(b *testing.B) {
				// As the connector's benchmark: 100 callers, p50 and p99 of one call's latency
				// (less sensitive to a loaded machine than ns/op).
				b.ReportAllocs()
				const callers = 100
				lat := make([][]time.Duration, callers)
				for g := range lat { // grown in advance: the harness copies no slice between calls
					lat[g] = make([]time.Duration, 0, 2*b.N/callers+16)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				spans := flushed()
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
				b.ReportMetric(float64(flushed()-spans)/float64(b.N), "spans/op")
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

// jsonExporter encodes each span as a line of JSON (name, IDs, kind, times, status,
// attributes) into a buffer it reuses and writes it to io.Discard: an exporter's own work
// (reading and encoding every span, as an OTLP exporter encodes them) without a collector to
// send to. It counts the spans it got: a batch span processor whose queue is full drops spans.
type jsonExporter struct{ exported *atomic.Int64 }

func (e jsonExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	var b []byte
	for _, s := range spans {
		tid, sid, parent := s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID()
		b = append(b[:0], `{"name":`...)
		b = strconv.AppendQuote(b, s.Name())
		b = append(b, `,"trace_id":"`...)
		b = hex.AppendEncode(b, tid[:])
		b = append(b, `","span_id":"`...)
		b = hex.AppendEncode(b, sid[:])
		b = append(b, `","parent":"`...)
		b = hex.AppendEncode(b, parent[:])
		b = append(b, `","kind":`...)
		b = strconv.AppendInt(b, int64(s.SpanKind()), 10)
		b = append(b, `,"start":`...)
		b = strconv.AppendInt(b, s.StartTime().UnixNano(), 10)
		b = append(b, `,"end":`...)
		b = strconv.AppendInt(b, s.EndTime().UnixNano(), 10)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(s.Status().Code), 10)
		b = append(b, `,"attributes":{`...)
		for i, a := range s.Attributes() {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, string(a.Key))
			b = append(b, ':')
			b = strconv.AppendQuote(b, a.Value.Emit())
		}
		b = append(b, "}}\n"...)
		if _, err := io.Discard.Write(b); err != nil {
			return err
		}
	}
	e.exported.Add(int64(len(spans)))
	return nil
}

func (jsonExporter) Shutdown(context.Context) error { return nil }

// BenchmarkSpanFloor is what one span costs the SDK alone, configured as in
// BenchmarkInsurabilityFallback (every span sampled, batch span processor, the encoding
// exporter) with the attributes of a fallback call's span set at its end: the floor under
// the metrics+tracing variant, which makes one such span per call.
func BenchmarkSpanFloor(b *testing.B) {
	var exported atomic.Int64
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(jsonExporter{&exported}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer(tracing.ScopeName)
	attrs := []attribute.KeyValue{tracing.KeyOperation.String("insurability"), tracing.KeyService.String(connector.ServiceInsurability),
		tracing.KeyOutcome.String("store"), tracing.KeyMode.String("fallback"), tracing.KeyDegraded.Bool(true),
		tracing.KeyStoreResult.String("hit")}
	kind := trace.WithSpanKind(trace.SpanKindClient)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		_, span := tr.Start(ctx, "ehgate.insurability", kind)
		span.SetAttributes(attrs...)
		span.End()
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
