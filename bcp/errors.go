package bcp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ehgate/ehgate/soap"
)

var (
	// ErrUnavailable is matched (errors.Is) by every error saying that no
	// endpoint of a service could answer: *UnavailableError.
	ErrUnavailable = errors.New("bcp: service unavailable")
	// ErrOpen is the refusal of an open (or half-open and already probing) breaker.
	ErrOpen = errors.New("bcp: circuit breaker open")
	// ErrHeld is the refusal of an endpoint that asked, with Retry-After, to be left alone.
	ErrHeld = errors.New("bcp: endpoint held back by retry-after")
	// ErrBudget says a retry was not made because the retry budget was spent.
	ErrBudget = errors.New("bcp: retry budget exhausted")
	// ErrNoActiveEndpoint says the service list marks no endpoint of the service ACTIVE.
	ErrNoActiveEndpoint = errors.New("bcp: no active endpoint")
	// ErrUnknownService says the service is not in the service list held by the engine.
	ErrUnknownService = errors.New("bcp: unknown service")
	// ErrClosed is returned by Do after Close.
	ErrClosed = errors.New("bcp: engine closed")
)

// StatusError is an HTTP answer that is not a SOAP answer: a redirect (never followed) or an
// error status whose body is not a SOAP envelope (for example an HTML 302, 403, 404 or 502
// page from a proxy). It is soap.StatusError, the error of the one SOAP-over-HTTP client
// (soap.Client); the default classifier counts it as the endpoint's failure, and holds the
// endpoint back for RetryAfter on 503 and 429.
type StatusError = soap.StatusError

// AttemptError is what happened to one endpoint during a call: the cause of
// its failure, or why it was skipped (ErrOpen, ErrHeld, ErrBudget).
type AttemptError struct {
	Endpoint Endpoint
	Err      error
}

// Error names the endpoint (URL and order) and the cause.
func (e AttemptError) Error() string {
	return fmt.Sprintf("%s (order %d): %v", e.Endpoint.URL, e.Endpoint.Order, e.Err)
}

// Unwrap returns the cause.
func (e AttemptError) Unwrap() error { return e.Err }

// UnavailableError says every endpoint of a service failed or was skipped; it
// lists each one with its cause, in the order they were considered.
// errors.Is(err, ErrUnavailable) is true, and errors.Is/As also see the causes.
type UnavailableError struct {
	Service  string
	Attempts []AttemptError
}

// Error names the service and lists every attempt with its cause.
func (e *UnavailableError) Error() string {
	var b strings.Builder
	b.WriteString("bcp: service ")
	b.WriteString(e.Service)
	b.WriteString(" unavailable")
	if len(e.Attempts) == 0 {
		return b.String()
	}
	b.WriteString(": ")
	for i, a := range e.Attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Error())
	}
	return b.String()
}

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the causes of the attempts.
func (e *UnavailableError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}
