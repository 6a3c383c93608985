package sts

import (
	"context"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
)

// exchange posts msg to ep through the one SOAP client (soap.Client: no redirect, bounded
// read, drained body) and returns the raw answer and its Body's first child. A SOAP fault is
// a *soap.Fault, a redirect or an HTTP error whose body is not SOAP a *bcp.StatusError
// (soap.StatusError), an answer that is not SOAP wraps ErrMalformedResponse and soap's parse
// error, transport errors are as they are: bcp's classifier tells them apart.
func (p *Provider) exchange(ctx context.Context, ep bcp.Endpoint, msg []byte) ([]byte, *etree.Element, error) {
	ans, err := p.client.Post(ctx, ep.URL, SOAPAction, msg)
	if err != nil {
		if soap.IsGarbled(err) && !errors.Is(err, ErrMalformedResponse) {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		return nil, nil, err
	}
	return ans.Raw, ans.Body, nil
}

// FixedEndpoint is a Router for one STS URL, for programs that do not use bcp. An attempt that
// fails in a way bcp's default classifier counts as an endpoint failure (transport error,
// timeout, redirect, HTTP error whose body is not SOAP, garbled answer, outage fault) is
// returned as a *bcp.UnavailableError, so errors.Is(err, bcp.ErrUnavailable) means the same
// as through a *bcp.Engine.
type FixedEndpoint string

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
