package bcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ehgate/ehgate/soap"
)

// Outcome is the verdict on one attempt.
type Outcome int

const (
	// Success: the endpoint answered; the breaker counts a success.
	Success Outcome = iota
	// Failure: the endpoint failed; the breaker counts it and the call moves on
	// to the next endpoint.
	Failure
	// Ignore: neither (the caller gave up, a business fault, a request error of
	// our own making). The breaker does not move and the error goes back to the
	// caller as it is.
	Ignore
)

// String returns "success", "failure" or "ignore".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Classifier decides what an attempt's error means. It is called with the
// attempt's non-nil error only; the engine itself treats the caller's
// cancellation as Ignore and the per-attempt timeout as Failure.
type Classifier interface {
	Classify(err error) Outcome
}

// ClassifierFunc adapts a function to Classifier.
type ClassifierFunc func(err error) Outcome

// Classify calls f(err).
func (f ClassifierFunc) Classify(err error) Outcome { return f(err) }

// DefaultFaultCodes are the SOAP fault detail codes that make the call switch
// endpoint, as the official connector does:
//
//	SOA-01001 user not recognised / not authenticated
//	SOA-01002 user has no access
//	SOA-02001 service not available
//	SOA-02002 service temporarily not available
//
// Switching on SOA-0100x is kept for parity although an authentication problem
// usually follows the call to the next endpoint; a vendor that prefers to fail
// fast on them sets DefaultClassifier.FaultCodes (or Config.FaultCodes) to
// just SOA-02001 and SOA-02002.
var DefaultFaultCodes = []string{"SOA-01001", "SOA-01002", "SOA-02001", "SOA-02002"}

// DefaultClassifier implements docs/switching.md:
//   - transport failures are a Failure: connection refused or reset, TLS and
//     certificate errors, timeouts, any net.Error, a truncated answer;
//   - a *StatusError (a redirect, or an HTTP error whose body is not a SOAP
//     envelope: an HTML page from a proxy or a load balancer) is a Failure,
//     whatever its status: the switching rules' item 1, "an HTTP error whose
//     body is not a SOAP envelope";
//   - an answer the endpoint garbled (soap.IsGarbled: not well-formed, over
//     the limits, not an envelope, a DTD) is a Failure;
//   - an error with FaultCodes() []string (a SOAP fault, such as *soap.Fault)
//     is a Failure when one of its codes is in FaultCodes, else Ignore;
//   - context.Canceled is Ignore, context.DeadlineExceeded a Failure;
//   - anything else (business errors, our own signature or validation errors)
//     is Ignore: it goes back to the caller as it is.
type DefaultClassifier struct {
	// FaultCodes are the switching SOAP fault codes. nil = DefaultFaultCodes;
	// an empty non-nil slice = no SOAP fault switches.
	FaultCodes []string
}

type faultCoder interface{ FaultCodes() []string }

// Classify implements Classifier.
func (c DefaultClassifier) Classify(err error) Outcome {
	if err == nil {
		return Success
	}
	if errors.Is(err, context.Canceled) {
		return Ignore
	}
	var se *StatusError
	if errors.As(err, &se) {
		return Failure
	}
	var fc faultCoder
	if errors.As(err, &fc) {
		codes := c.FaultCodes
		if codes == nil {
			codes = DefaultFaultCodes
		}
		for _, code := range fc.FaultCodes() {
			if slices.Contains(codes, strings.TrimSpace(code)) {
				return Failure
			}
		}
		return Ignore
	}
	if isTransport(err) || soap.IsGarbled(err) {
		return Failure
	}
	return Ignore
}

func isTransport(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var (
		ne   net.Error
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		dnse *net.DNSError
	)
	return errors.As(err, &ne) || errors.As(err, &rhe) || errors.As(err, &ae) ||
		errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) ||
		errors.As(err, &cie) || errors.As(err, &dnse)
}

// retryAfterOf returns how long the endpoint asked to be left alone.
func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) && (se.StatusCode == http.StatusServiceUnavailable || se.StatusCode == http.StatusTooManyRequests) {
		return se.RetryAfter
	}
	return 0
}

// ParseRetryAfter reads a Retry-After header value, in seconds or as an HTTP
// date relative to now, at most 24 h. It returns 0 when the value is absent,
// invalid or in the past. It is soap.ParseRetryAfter.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	return soap.ParseRetryAfter(value, now)
}
