// Package tracing traces an ehgate client's calls with OpenTelemetry: one span per call
// (ehgate.insurability, ehgate.genericinsurability, ehgate.etk, ehgate.submit, ehgate.replay,
// ehgate.call) with a child span per step (ehgate.token, ehgate.sign, one ehgate.attempt per
// endpoint tried, ehgate.store_read, ehgate.store_write). A call of a service in fallback mode
// is a store read alone: it makes the call's span only, with ehgate.store.result on it (a child
// would repeat the call's span and double the cost of tracing the hot path). It lives apart
// from the connector so that a vendor who does not trace does not link OpenTelemetry.
//
//	c, err := connector.New(cfg, connector.WithObserver(tracing.New(tracerProvider)))
//
// Attributes: ehgate.operation, ehgate.service, ehgate.endpoint (a URL of the service list),
// ehgate.outcome, ehgate.mode, ehgate.degraded, ehgate.store.result; never a patient's
// identifier or answer (error texts of the client name none either).
//
// Cost: a fallback answer is a microsecond of work, and a span the SDK records and exports
// costs more than that by itself (BenchmarkSpanFloor in package metrics: 2.7-3.3 µs on a
// 2-core machine, the batch span processor and an encoding exporter included). Configure the
// TracerProvider with a sampler, as in production: with ParentBased(TraceIDRatioBased(0.01))
// a fallback answer with metrics and tracing costs 1.6-2.1 µs on the same machine (the SDK's
// unsampled span about 0.3 µs of it); ehgate adds no allocation of its own to a call's span.
package tracing

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/connector"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/ehgate/ehgate/tracing"

// Attribute keys of the spans.
const (
	KeyOperation   = attribute.Key("ehgate.operation")
	KeyService     = attribute.Key("ehgate.service")
	KeyEndpoint    = attribute.Key("ehgate.endpoint")
	KeyOutcome     = attribute.Key("ehgate.outcome")
	KeyMode        = attribute.Key("ehgate.mode")
	KeyDegraded    = attribute.Key("ehgate.degraded")
	KeyStoreResult = attribute.Key("ehgate.store.result")
)

// Tracer is a connector.Observer that makes spans. Safe for concurrent use.
type Tracer struct {
	t trace.Tracer

	// ends caches the attribute list of a call's end per kind of end (immutable maps
	// replaced on insert, read without a lock): the hot path builds no attribute.
	endsMu sync.Mutex
	ends   atomic.Pointer[map[endKey][]attribute.KeyValue]
}

// maxEnds bounds the cached attribute lists (endpoints are the service list's URLs; beyond,
// lists are built per call).
const maxEnds = 1024

// endKey is what a call's end attributes depend on.
type endKey struct {
	operation, service, endpoint string
	outcome                      connector.Outcome
	mode                         connector.Mode
	degraded                     bool
	store                        connector.StoreRead
}

// New returns a tracer using tp, the vendor's TracerProvider; nil = a no-op provider (spans
// are neither recorded nor exported).
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	t := &Tracer{t: tp.Tracer(ScopeName)}
	t.ends.Store(&map[endKey][]attribute.KeyValue{})
	return t
}

var stepNames = [...]string{
	connector.StepToken:      "ehgate.token",
	connector.StepSign:       "ehgate.sign",
	connector.StepAttempt:    "ehgate.attempt",
	connector.StepStoreRead:  "ehgate.store_read",
	connector.StepStoreWrite: "ehgate.store_write",
}

// callName is the span name of an operation.
func callName(operation string) string {
	switch operation {
	case connector.OperationInsurability:
		return "ehgate.insurability"
	case connector.OperationGenericInsurability:
		return "ehgate.genericinsurability"
	case connector.OperationETK:
		return "ehgate.etk"
	case connector.OperationSubmit:
		return "ehgate.submit"
	case connector.OperationReplay:
		return "ehgate.replay"
	}
	return "ehgate.call"
}

// clientKind is the start option of a call's span, as a slice made once: a variadic list
// built at each call would escape to the heap through the Tracer interface (one allocation
// per call).
var clientKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// CallStarted implements connector.Observer: it starts the call's span. Its attributes are
// all set when the call ends, in one list built once per kind of end (a sampler sees the
// span's name, which names the operation).
func (t *Tracer) CallStarted(ctx context.Context, call connector.CallInfo) context.Context {
	ctx, _ = t.t.Start(ctx, callName(call.Operation), clientKind...)
	return ctx
}

// CallEnded implements connector.Observer: it ends the call's span with its attributes
// (operation, service, outcome, mode, degraded, the endpoint that answered and, for a call
// that was a store read alone, ehgate.store.result) and an error status.
func (t *Tracer) CallEnded(ctx context.Context, call connector.CallInfo, end connector.CallEnd) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(t.endAttributes(endKey{operation: call.Operation, service: call.Service, endpoint: end.Endpoint,
		outcome: end.Outcome, mode: end.Mode, degraded: end.Degraded, store: end.StoreRead})...)
	if end.Err != nil && end.Outcome != connector.OutcomeBusiness {
		span.SetStatus(codes.Error, end.Err.Error())
	}
	span.End()
}

// endAttributes returns the attribute list of k, built once (the SDK copies it).
func (t *Tracer) endAttributes(k endKey) []attribute.KeyValue {
	if a, ok := (*t.ends.Load())[k]; ok {
		return a
	}
	a := make([]attribute.KeyValue, 0, 7)
	a = append(a, KeyOperation.String(k.operation), KeyService.String(k.service), KeyOutcome.String(string(k.outcome)),
		KeyMode.String(k.mode.String()), KeyDegraded.Bool(k.degraded))
	if k.endpoint != "" {
		a = append(a, KeyEndpoint.String(k.endpoint))
	}
	if k.store != connector.StoreReadNone {
		a = append(a, KeyStoreResult.String(k.store.String()))
	}
	t.endsMu.Lock()
	defer t.endsMu.Unlock()
	old := *t.ends.Load()
	if _, ok := old[k]; !ok && len(old) < maxEnds {
		m := make(map[endKey][]attribute.KeyValue, len(old)+1)
		for key, v := range old {
			m[key] = v
		}
		m[k] = a
		t.ends.Store(&m)
	}
	return a
}

// StepStarted implements connector.Observer: it starts a child span of the call's.
func (t *Tracer) StepStarted(ctx context.Context, step connector.StepInfo) context.Context {
	name := "ehgate.step"
	if int(step.Kind) < len(stepNames) {
		name = stepNames[step.Kind]
	}
	if parent := trace.SpanFromContext(ctx); parent.SpanContext().IsValid() && !parent.IsRecording() {
		return ctx // the call is not sampled: its steps would not be either
	}
	ctx, span := t.t.Start(ctx, name) // the service is the call's attribute
	if step.Kind == connector.StepAttempt && span.IsRecording() {
		span.SetAttributes(KeyEndpoint.String(step.Endpoint))
	}
	return ctx
}

// StepEnded implements connector.Observer: it ends the step's span. A store read that found
// nothing is not an error: ehgate.store.result says hit, miss or expired.
func (t *Tracer) StepEnded(ctx context.Context, step connector.StepInfo, err error, _ time.Duration) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return // not sampled (or the call's span when the step made none): nothing to end
	}
	if step.Kind == connector.StepStoreRead {
		result := "hit"
		switch {
		case err == nil:
		case errors.Is(err, cache.ErrExpired):
			result, err = "expired", nil
		case errors.Is(err, cache.ErrNotFound):
			result, err = "miss", nil
		default:
			result = "error"
		}
		span.SetAttributes(KeyStoreResult.String(result))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Event implements connector.Observer; events belong to no call and make no span.
func (t *Tracer) Event(connector.Event) {}

var _ connector.Observer = (*Tracer)(nil)
