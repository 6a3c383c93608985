package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/tracing"
)

// tree is one exported call span and its children, in start order.
type tree struct {
	root     tracetest.SpanStub
	children []tracetest.SpanStub
}

func (tr tree) names() []string {
	var out []string
	for _, c := range tr.children {
		out = append(out, c.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// trees groups the exported spans by trace: each trace's root (the call) and its direct
// children; it fails if a span's parent is not the root.
func trees(t *testing.T, spans tracetest.SpanStubs) []tree {
	t.Helper()
	byTrace := map[trace.TraceID]*tree{}
	var order []trace.TraceID
	for _, s := range spans {
		if !s.Parent.IsValid() {
			byTrace[s.SpanContext.TraceID()] = &tree{root: s}
			order = append(order, s.SpanContext.TraceID())
		}
	}
	for _, s := range spans {
		if !s.Parent.IsValid() {
			continue
		}
		tr := byTrace[s.SpanContext.TraceID()]
		require.NotNil(t, tr, "span %s has no root", s.Name)
		require.Equal(t, tr.root.SpanContext.SpanID(), s.Parent.SpanID(), "%s is a child of the call", s.Name)
		tr.children = append(tr.children, s)
	}
	var out []tree
	for _, id := range order {
		tr := byTrace[id]
		// children are exported when they end; order them by start
		for i := 1; i < len(tr.children); i++ {
			for j := i; j > 0 && tr.children[j].StartTime.Before(tr.children[j-1].StartTime); j-- {
				tr.children[j], tr.children[j-1] = tr.children[j-1], tr.children[j]
			}
		}
		out = append(out, *tr)
	}
	return out
}

// TestTracing_SpanTreeOfLiveFailoverAndStoreCalls exports the spans of three calls to an
// in-memory exporter: a live call (token, signature, one attempt, the answer stored), a call
// whose primary endpoint refuses (two signatures and attempts, the first in error), and a
// call in fallback mode (the store only); attributes carry service, endpoint, outcome and
// mode, and no SSIN.
func TestTracing_SpanTreeOfLiveFailoverAndStoreCalls(t *testing.T) {
	p, id := clienttest.Platform(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	c := clienttest.Client(t, p, id, connector.WithObserver(tracing.New(tp)))
	ctx := context.Background()
	pts := clienttest.Patients(p, 2)

	_, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN}) // token obtained
	require.NoError(t, err)
	exp.Reset()

	_, err = c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[1].SSIN})
	require.NoError(t, err)
	secondary := res.Endpoint
	require.NoError(t, c.ActivateFallback(connector.ServiceInsurability, "tracing test"))
	res, err = c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[1].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceCache, res.Source)

	got := trees(t, exp.GetSpans())
	require.Len(t, got, 3)

	live := got[0]
	require.Equal(t, "ehgate.insurability", live.root.Name)
	require.Equal(t, trace.SpanKindClient, live.root.SpanKind)
	require.Equal(t, []string{"ehgate.token", "ehgate.sign", "ehgate.attempt", "ehgate.store_write"}, live.names())
	require.Equal(t, "insurability:v2", attr(live.root, "ehgate.service"))
	require.Equal(t, "live", attr(live.root, "ehgate.outcome"))
	require.Equal(t, "normal", attr(live.root, "ehgate.mode"))
	primary := attr(live.children[2], "ehgate.endpoint")
	require.NotEmpty(t, primary)
	require.Equal(t, primary, attr(live.root, "ehgate.endpoint"))

	fo := got[1]
	require.Equal(t, []string{"ehgate.token", "ehgate.sign", "ehgate.attempt", "ehgate.sign", "ehgate.attempt", "ehgate.store_write"}, fo.names())
	require.Equal(t, primary, attr(fo.children[2], "ehgate.endpoint"))
	require.Equal(t, "Error", fo.children[2].Status.Code.String(), "the refused attempt")
	require.Equal(t, secondary, attr(fo.children[4], "ehgate.endpoint"))
	require.Equal(t, "Unset", fo.children[4].Status.Code.String())
	require.Equal(t, "live", attr(fo.root, "ehgate.outcome"))
	require.Equal(t, secondary, attr(fo.root, "ehgate.endpoint"))

	// In fallback mode the call is the store read alone: one span, the read's result on it.
	fb := got[2]
	require.Empty(t, fb.names())
	require.Equal(t, "hit", attr(fb.root, "ehgate.store.result"))
	require.Equal(t, "insurability:v2", attr(fb.root, "ehgate.service"))
	require.Equal(t, "store", attr(fb.root, "ehgate.outcome"))
	require.Equal(t, "fallback", attr(fb.root, "ehgate.mode"))
	require.Equal(t, "true", attr(fb.root, "ehgate.degraded"))

	for _, s := range exp.GetSpans() {
		for _, a := range s.Attributes {
			for _, pt := range pts {
				require.NotContains(t, a.Value.Emit(), pt.SSIN)
			}
		}
		for _, pt := range pts {
			require.False(t, strings.Contains(s.Status.Description, pt.SSIN))
		}
	}
}

// TestTracing_NilProviderIsANoOp: without a TracerProvider nothing is recorded and calls work.
func TestTracing_NilProviderIsANoOp(t *testing.T) {
	p, id := clienttest.Platform(t)
	c := clienttest.Client(t, p, id, connector.WithObserver(tracing.New(nil)))
	pts := clienttest.Patients(p, 1)
	res, err := c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceLive, res.Source)
}

// TestTracing_UnsampledCallsExportNothing: a call the sampler drops makes no span at all
// (its steps none either), and answers as usual.
func TestTracing_UnsampledCallsExportNothing(t *testing.T) {
	p, id := clienttest.Platform(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(context.Background())
	c := clienttest.Client(t, p, id, connector.WithObserver(tracing.New(tp)))
	pts := clienttest.Patients(p, 1)
	res, err := c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceLive, res.Source)
	require.NoError(t, c.ActivateFallback(connector.ServiceInsurability, "tracing test"))
	res, err = c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceCache, res.Source)
	require.Empty(t, exp.GetSpans())
}

// TestTracing_StoreReadAfterFailedAttemptsIsAChild: a call whose endpoints all fail is
// answered from the store after its attempts: there the store read is a step of the call
// (a child span with its result), unlike a call in fallback mode, which is the read alone.
func TestTracing_StoreReadAfterFailedAttemptsIsAChild(t *testing.T) {
	p, id := clienttest.Platform(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	c := clienttest.Client(t, p, id, connector.WithObserver(tracing.New(tp)))
	ctx := context.Background()
	pt := clienttest.Patients(p, 1)[0]
	_, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	exp.Reset()
	res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceCache, res.Source)
	require.True(t, res.Degraded)

	got := trees(t, exp.GetSpans())
	require.Len(t, got, 1)
	names := got[0].names()
	require.Contains(t, names, "ehgate.attempt")
	require.Equal(t, "ehgate.store_read", names[len(names)-1])
	require.Equal(t, "hit", attr(got[0].children[len(names)-1], "ehgate.store.result"))
	require.Equal(t, "store", attr(got[0].root, "ehgate.outcome"))
	require.Equal(t, "true", attr(got[0].root, "ehgate.degraded"))
	require.Empty(t, attr(got[0].root, "ehgate.store.result"), "the read is the child's")
}
