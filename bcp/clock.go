package bcp

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Clock is the source of time of the engine and its breakers. Time is read only
// off the healthy path: when a failure is recorded, when a breaker opens or is
// probed, and while an endpoint is held back. Timers drive the open → half-open
// transition so a rejection while open does not read the clock either.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, as time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by a Clock.
type Timer interface {
	// Stop prevents the call if it has not run yet; it reports whether it did.
	Stop() bool
}

// SystemClock returns the Clock backed by the time package (and so by
// testing/synctest's fake time inside a bubble).
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Option injects a dependency into New or NewBreaker.
type Option func(*options)

type options struct {
	clock      Clock
	logger     *zap.Logger
	httpClient *http.Client // set by WithHTTPClient (loader.go); nil = the Loader's default
}

// WithClock sets the clock; the default is SystemClock().
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithLogger sets the logger; the default is zap.NewNop(). Warn for failover and
// failback, info for breaker transitions, debug per request.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{clock: systemClock{}, logger: zap.NewNop()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}
