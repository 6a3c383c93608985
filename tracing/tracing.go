// Package tracing traces an ehgate client's calls with OpenTelemetry: one span per call
// (ehgate.insurability, ehgate.genericinsurability, ehgate.etk, ehgate.submit, ehgate.replay,
// ehgate.call) with a child span per step (ehgate.token, ehgate.sign, one ehgate.attempt per
// endpoint tried, ehgate.store_read, ehgate.store_write). It lives apart from the connector so
// that a vendor who does not trace does not link OpenTelemetry.
//
//	c, err := connector.New(cfg, connector.WithObserver(tracing.New(tracerProvider)))
//
// Attributes: ehgate.operation, ehgate.service, ehgate.endpoint (a URL of the service list),
// ehgate.outcome, ehgate.mode, ehgate.degraded, ehgate.store.result; never a patient's
// identifier or answer (error texts of the client name none either).
package tracing

import (
	"context"
	"errors"
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
}

// New returns a tracer using tp, the vendor's TracerProvider; nil = a no-op provider (spans
// are neither recorded nor exported).
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &Tracer{t: tp.Tracer(ScopeName)}
}

var (
	callNames = map[string]string{
		connector.OperationInsurability:        "ehgate.insurability",
		connector.OperationGenericInsurability: "ehgate.genericinsurability",
		connector.OperationETK:                 "ehgate.etk",
		connector.OperationSubmit:              "ehgate.submit",
		connector.OperationReplay:              "ehgate.replay",
		connector.OperationCall:                "ehgate.call",
	}
	stepNames = [...]string{
		connector.StepToken:      "ehgate.token",
		connector.StepSign:       "ehgate.sign",
		connector.StepAttempt:    "ehgate.attempt",
		connector.StepStoreRead:  "ehgate.store_read",
		connector.StepStoreWrite: "ehgate.store_write",
	}
)

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// CallStarted implements connector.Observer: it starts the call's span.
func (t *Tracer) CallStarted(ctx context.Context, call connector.CallInfo) context.Context {
	name, ok := callNames[call.Operation]
	if !ok {
		name = "ehgate.call"
	}
	ctx, span := t.t.Start(ctx, name, clientKind)
	if span.IsRecording() { // attributes of unsampled spans would only cost
		span.SetAttributes(KeyOperation.String(call.Operation), KeyService.String(call.Service))
	}
	return ctx
}

// CallEnded implements connector.Observer: it ends the call's span with its outcome.
func (t *Tracer) CallEnded(ctx context.Context, _ connector.CallInfo, end connector.CallEnd) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(KeyOutcome.String(string(end.Outcome)), KeyMode.String(end.Mode.String()), KeyDegraded.Bool(end.Degraded))
	if end.Endpoint != "" {
		span.SetAttributes(KeyEndpoint.String(end.Endpoint))
	}
	if end.Err != nil && end.Outcome != connector.OutcomeBusiness {
		span.SetStatus(codes.Error, end.Err.Error())
	}
	span.End()
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
