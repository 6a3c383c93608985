package connector

import (
	"context"
	"errors"
	"time"

	"github.com/ehgate/ehgate/cache"
)

// Observer watches the client at work, for metrics and traces: the optional packages
// github.com/ehgate/ehgate/metrics (Prometheus) and github.com/ehgate/ehgate/tracing
// (OpenTelemetry) implement it, so the connector itself links neither. Give one or more with
// WithObserver.
//
// Methods are called on the caller's goroutine, concurrently from many callers; they must be
// quick, must not block and must not call the client back. Nothing they receive holds
// personal data: services, operations, endpoint URLs of the service list, outcomes, modes and
// error texts (which never name a patient). Without an observer (the default) the client
// pays one nil check per call and per step.
type Observer interface {
	// CallStarted is called when a call begins; the call continues with the context it
	// returns (a tracer puts its span there; others return ctx).
	CallStarted(ctx context.Context, call CallInfo) context.Context
	// CallEnded is called once per call, with the context CallStarted returned.
	CallEnded(ctx context.Context, call CallInfo, end CallEnd)
	// StepStarted is called when a step of a call begins (token, signature, endpoint
	// attempt, store); the step runs with the context it returns.
	StepStarted(ctx context.Context, step StepInfo) context.Context
	// StepEnded is called once per step with the context StepStarted returned, the step's
	// error (nil = success; a store read that found nothing returns cache.ErrNotFound or
	// cache.ErrExpired) and its duration.
	StepEnded(ctx context.Context, step StepInfo, err error, d time.Duration)
	// Event is called with every event the client publishes, before subscribers get it and
	// whatever their buffers: an observer misses none. It may be called concurrently.
	Event(ev Event)
}

// WithObserver adds an observer of calls, steps and events (metrics, traces); several may be
// given, each is called in the order given.
func WithObserver(o Observer) Option {
	return func(opts *options) {
		if o != nil {
			opts.observers = append(opts.observers, o)
		}
	}
}

// Operations of a call, as CallInfo.Operation gives them.
const (
	OperationInsurability        = "insurability"
	OperationGenericInsurability = "genericinsurability"
	OperationETK                 = "etk"
	OperationSubmit              = "submit"
	OperationReplay              = "replay" // one queued write delivered by the outbox replay
	OperationCall                = "call"   // Client.Call
)

// CallInfo is what a call is.
type CallInfo struct {
	Operation string // one of the Operation… constants
	Service   string // short service name
}

// Outcome is how a call ended; the values are short snake-case words, usable as metric
// label values.
type Outcome string

// Outcomes of a call.
const (
	// OutcomeLive: the platform answered.
	OutcomeLive Outcome = "live"
	// OutcomeStore: the local store answered (fallback, or the list's cache-first strategy).
	OutcomeStore Outcome = "store"
	// OutcomeQueued: a write was queued in the outbox.
	OutcomeQueued Outcome = "queued"
	// OutcomeNotCached: neither the platform nor the store could answer.
	OutcomeNotCached Outcome = "not_cached"
	// OutcomeBusiness: the platform answered no (a business refusal, or the caller's
	// invalid request).
	OutcomeBusiness Outcome = "business"
	// OutcomeError: any other failure.
	OutcomeError Outcome = "error"
)

// CallEnd is how a call ended.
type CallEnd struct {
	Outcome  Outcome
	Mode     Mode          // the service's mode when the call ended
	Endpoint string        // URL of the endpoint that answered ("" = none)
	Degraded bool          // an answer served from the store because the platform could not answer
	Duration time.Duration // by the client's clock (WithClock)
	Err      error         // nil on success; its text never names a patient
	// StoreRead is the result of the store read of a call that was that read alone (a service
	// in forced fallback answered from the store without a network step): such a read is
	// reported here, not as a StepStoreRead step, and lasted about Duration. StoreReadNone
	// for every other call (their store reads are steps).
	StoreRead StoreRead
}

// StoreRead is the result of a read of the local store.
type StoreRead uint8

// Results of a store read.
const (
	StoreReadNone    StoreRead = iota // no read reported
	StoreReadHit                      // a usable answer
	StoreReadMiss                     // no answer stored (cache.ErrNotFound)
	StoreReadExpired                  // an answer too old to serve (cache.ErrExpired)
	StoreReadError                    // the store failed
)

// String returns "", "hit", "miss", "expired" or "error".
func (r StoreRead) String() string {
	switch r {
	case StoreReadHit:
		return "hit"
	case StoreReadMiss:
		return "miss"
	case StoreReadExpired:
		return "expired"
	case StoreReadError:
		return "error"
	}
	return ""
}

// storeReadOf classifies the error of a store read.
func storeReadOf(err error) StoreRead {
	switch {
	case err == nil:
		return StoreReadHit
	case errors.Is(err, cache.ErrExpired):
		return StoreReadExpired
	case errors.Is(err, cache.ErrNotFound):
		return StoreReadMiss
	}
	return StoreReadError
}

// StepKind is one step of a call.
type StepKind int

// Steps of a call.
const (
	// StepToken: getting the STS token (usually from memory).
	StepToken StepKind = iota
	// StepSign: building and signing the envelope for one attempt.
	StepSign
	// StepAttempt: one endpoint's exchange (StepInfo.Endpoint).
	StepAttempt
	// StepStoreRead: reading an answer from the local store (not reported when the read is
	// the whole call, a service in forced fallback: see CallEnd.StoreRead).
	StepStoreRead
	// StepStoreWrite: writing an answer to the store, or a write to the outbox.
	StepStoreWrite
)

// String returns "token", "sign", "attempt", "store_read" or "store_write".
func (k StepKind) String() string {
	switch k {
	case StepToken:
		return "token"
	case StepSign:
		return "sign"
	case StepAttempt:
		return "attempt"
	case StepStoreRead:
		return "store_read"
	case StepStoreWrite:
		return "store_write"
	}
	return "unknown"
}

// StepInfo is what a step is.
type StepInfo struct {
	Kind     StepKind
	Service  string
	Endpoint string // StepAttempt: the endpoint's URL
}

// observers fans out to several observers.
type observers []Observer

func (os observers) CallStarted(ctx context.Context, call CallInfo) context.Context {
	for _, o := range os {
		ctx = o.CallStarted(ctx, call)
	}
	return ctx
}

func (os observers) CallEnded(ctx context.Context, call CallInfo, end CallEnd) {
	for _, o := range os {
		o.CallEnded(ctx, call, end)
	}
}

func (os observers) StepStarted(ctx context.Context, step StepInfo) context.Context {
	for _, o := range os {
		ctx = o.StepStarted(ctx, step)
	}
	return ctx
}

func (os observers) StepEnded(ctx context.Context, step StepInfo, err error, d time.Duration) {
	for _, o := range os {
		o.StepEnded(ctx, step, err, d)
	}
}

func (os observers) Event(ev Event) {
	for _, o := range os {
		o.Event(ev)
	}
}

// newObserver returns nil for none, the observer itself for one, a fan-out for more.
func newObserver(list []Observer) Observer {
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return observers(list)
}

// outcomeOf classifies a call's result.
func outcomeOf(source Source, err error) Outcome {
	switch {
	case err == nil && source == SourceCache:
		return OutcomeStore
	case err == nil:
		return OutcomeLive
	case errors.Is(err, ErrNotCached):
		return OutcomeNotCached
	case errors.Is(err, ErrBusiness) || errors.Is(err, ErrRequest) || errors.Is(err, ErrInvalidSSIN):
		return OutcomeBusiness
	}
	return OutcomeError
}

// observeCall runs f as one observed call of operation on service (f gets the call's
// context). Without an observer it only runs f.
func observeCall[R any](c *Client, ctx context.Context, operation, service string,
	f func(ctx context.Context) (R, error), end func(R, error) CallEnd) (R, error) {
	if c.obs == nil {
		return f(ctx)
	}
	start := time.Now()
	info := CallInfo{Operation: operation, Service: service}
	ctx = c.obs.CallStarted(ctx, info)
	r, err := f(ctx)
	e := end(r, err)
	e.Mode, e.Duration, e.Err = c.modes.current(service), time.Since(start), err
	c.obs.CallEnded(ctx, info, e)
	return r, err
}

// stepStart begins an observed step; pass its results to stepEnd. Without an observer it
// returns ctx and the zero time.
func (c *Client) stepStart(ctx context.Context, step StepInfo) (context.Context, time.Time) {
	if c.obs == nil {
		return ctx, time.Time{}
	}
	return c.obs.StepStarted(ctx, step), time.Now()
}

// stepEnd ends a step begun by stepStart.
func (c *Client) stepEnd(ctx context.Context, step StepInfo, start time.Time, err error) {
	if c.obs != nil {
		c.obs.StepEnded(ctx, step, err, time.Since(start))
	}
}

// serviceOf names the service of a store function.
func serviceOf(function string) string {
	switch function {
	case functionInsurability:
		return ServiceInsurability
	case functionGenericInsurability:
		return ServiceGenericInsurability
	case functionETK:
		return ServiceETK
	}
	return function
}
