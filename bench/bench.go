// Package bench compares the hot path of ehgate's circuit breaker and router
// with github.com/sony/gobreaker/v2 and github.com/failsafe-go/failsafe-go.
// It is a separate module so that ehgate itself does not depend on its peers.
// Run: cd bench && go test -run=^$ -bench=. -benchmem -count=5
package bench

import (
	"context"
	"errors"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// errBoom is the failure used to open the breakers.
var errBoom = errors.New("bench: boom")

// Breaker is the common shape of the three breakers under test: run a no-op
// call through the breaker, reporting its error (the breaker's refusal when open).
type Breaker interface {
	Run(fn func() error) error
}

// Ehgate wraps *bcp.Breaker.
type Ehgate struct{ B *bcp.Breaker }

// Run implements Breaker.
func (e Ehgate) Run(fn func() error) error { return e.B.Call(fn) }

// Gobreaker wraps gobreaker's CircuitBreaker.
type Gobreaker struct {
	B *gobreaker.CircuitBreaker[struct{}]
}

// Run implements Breaker.
func (g Gobreaker) Run(fn func() error) error {
	_, err := g.B.Execute(func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Failsafe wraps a failsafe-go circuit breaker and its executor.
type Failsafe struct {
	CB circuitbreaker.CircuitBreaker[any]
	X  failsafe.Executor[any]
}

// Run implements Breaker.
func (f Failsafe) Run(fn func() error) error { return f.X.Run(fn) }

// NewEhgate returns a closed ehgate breaker with the default configuration, or
// an open one (opened by a failure, cool-down of an hour).
func NewEhgate(open bool) (Ehgate, error) {
	b, err := bcp.NewBreaker(bcp.BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Hour, MaxOpenTimeout: time.Hour})
	if err != nil {
		return Ehgate{}, err
	}
	if open {
		_ = b.Call(func() error { return errBoom })
	}
	return Ehgate{B: b}, nil
}

// NewGobreaker returns a closed gobreaker, or an open one.
func NewGobreaker(open bool) Gobreaker {
	g := Gobreaker{B: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "bench",
		Timeout:     time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
	})}
	if open {
		_ = g.Run(func() error { return errBoom })
	}
	return g
}

// NewFailsafe returns a closed failsafe-go breaker, or an open one.
func NewFailsafe(open bool) Failsafe {
	cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(1).WithDelay(time.Hour).Build()
	f := Failsafe{CB: cb, X: failsafe.With[any](cb)}
	if open {
		_ = f.Run(func() error { return errBoom })
	}
	return f
}

// Noop is the call under test.
func Noop() error { return nil }

// NoopAttempt is the attempt under test for the router.
func NoopAttempt(context.Context, bcp.Endpoint) error { return nil }

// Service is the short name of the service of NewEngine.
const Service = "insurability:v2"

// NewEngine returns an engine routing a healthy two-endpoint service with
// the per-attempt timeout disabled (the HTTP layer bounds real calls).
func NewEngine() (*bcp.Engine, error) {
	key := "uddi:ehealth-fgov-be:business:" + Service
	list := &bcp.ServiceList{ID: "bench", Services: []bcp.Service{{
		ID: key, Name: "Insurability",
		Endpoints: []bcp.Endpoint{
			{Service: key, URL: "https://127.0.0.1:1/Insurability/v2", Order: 0, Status: bcp.StatusActive},
			{Service: key, URL: "https://127.0.0.1:2/ehealth/bcp/insurability", Order: 1, Status: bcp.StatusActive},
		},
	}}}
	return bcp.New(bcp.Config{
		Default:     bcp.ServicePolicy{AttemptTimeout: -1, Idempotent: true},
		ServiceList: list,
	})
}
