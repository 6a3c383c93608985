package sts

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
)

// exchange posts msg to ep through the one SOAP client (soap.Client: no redirect, bounded
// read, drained body) and returns the raw answer and its Body's first child. A SOAP fault is
// a *soap.Fault, a redirect or an HTTP error whose body is not SOAP a *bcp.StatusError
// (soap.StatusError), an answer that is not SOAP wraps ErrMalformedResponse and soap's parse
// error, transport errors are as they are: bcp's classifier tells them apart.
func (p *Provider) exchange(ctx context.Context, ep bcp.Endpoint, action string, msg []byte) ([]byte, *etree.Element, error) {
	if err := httpsOnly(ep.URL); err != nil {
		// A transport-level refusal (as net/http's own for an unsupported scheme): the
		// endpoint is unusable, the Router moves on; nothing is sent.
		return nil, nil, &url.Error{Op: "Post", URL: ep.URL, Err: err}
	}
	ans, err := p.client.Post(ctx, ep.URL, action, msg)
	var se *soap.StatusError
	if errors.As(err, &se) && se.StatusCode >= 300 && se.StatusCode < 400 {
		return nil, nil, &RedirectError{Endpoint: ep.URL, StatusCode: se.StatusCode, Err: se}
	}
	if err != nil {
		if soap.IsGarbled(err) && !errors.Is(err, ErrMalformedResponse) {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		return nil, nil, err
	}
	return ans.Raw, ans.Body, nil
}

// RedirectError is a redirect answered by an STS endpoint. It is not followed (the signed
// request, which names the care provider, is never re-sent elsewhere, least of all in clear
// text) and counts as a failure of that endpoint: it wraps the *soap.StatusError that bcp's
// classifier counts as one. It matches ErrRedirect.
type RedirectError struct {
	Endpoint   string // the STS endpoint that redirected
	StatusCode int
	Err        *soap.StatusError
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("sts: endpoint %s answered %d, redirect refused", e.Endpoint, e.StatusCode)
}

// Unwrap returns ErrRedirect and the status error.
func (e *RedirectError) Unwrap() []error { return []error{ErrRedirect, e.Err} }

// httpsOnly refuses an endpoint that is not an absolute https URL.
func httpsOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInsecureEndpoint, raw, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: %q", ErrInsecureEndpoint, u.Redacted())
	}
	return nil
}

// FixedEndpoint is a Router for one STS URL, for programs that do not use bcp. An attempt that
// fails in a way bcp's default classifier counts as an endpoint failure (transport error,
// timeout, redirect, HTTP error whose body is not SOAP, garbled answer, outage fault) is
// returned as a *bcp.UnavailableError, so errors.Is(err, bcp.ErrUnavailable) means the same
// as through a *bcp.Engine.
type FixedEndpoint string

// Validate refuses anything but an absolute https URL (ErrInsecureEndpoint): the token
// request carries the care provider's identity and must never travel in clear text.
func (f FixedEndpoint) Validate() error { return httpsOnly(string(f)) }

// Do runs attempt against the URL.
func (f FixedEndpoint) Do(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error {
	ep := bcp.Endpoint{Service: service, URL: string(f), Order: 1, Status: bcp.StatusActive}
	err := attempt(ctx, ep)
	if err == nil || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return err
	}
	if (bcp.DefaultClassifier{}).Classify(err) == bcp.Failure {
		return &bcp.UnavailableError{Service: service, Attempts: []bcp.AttemptError{{Endpoint: ep, Err: err}}}
	}
	return err
}
