package sts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
)

// exchange posts msg to ep and returns the raw answer and its Body's first child. A SOAP fault
// is returned as a *soap.Fault, an HTTP error whose body is not SOAP as a *bcp.StatusError,
// transport errors as they are (wrapped): bcp's classifier tells them apart.
func (p *Provider) exchange(ctx context.Context, ep bcp.Endpoint, msg []byte) ([]byte, *etree.Element, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(msg))
	if err != nil {
		return nil, nil, fmt.Errorf("sts: request to %s: %w", ep.URL, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+SOAPAction+`"`)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()

	maxBytes := p.cfg.Limits.MaxBytes
	if maxBytes <= 0 {
		maxBytes = soap.DefaultLimits.MaxBytes
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("sts: read answer of %s: %w", ep.URL, err)
	}
	if int64(len(raw)) > maxBytes {
		return nil, nil, fmt.Errorf("sts: answer of %s: %w", ep.URL, &soap.LimitError{Limit: "bytes", Max: maxBytes})
	}
	body, err := soap.ReadResponse(bytes.NewReader(raw), p.cfg.Limits)
	if err != nil {
		var fault *soap.Fault
		if errors.As(err, &fault) {
			return nil, nil, err
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, nil, p.statusError(ep, resp)
		}
		return nil, nil, fmt.Errorf("sts: answer of %s: %w: %w", ep.URL, ErrMalformedResponse, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, p.statusError(ep, resp)
	}
	return raw, body, nil
}

func (p *Provider) statusError(ep bcp.Endpoint, resp *http.Response) error {
	return &bcp.StatusError{
		Endpoint:    ep.URL,
		StatusCode:  resp.StatusCode,
		RetryAfter:  bcp.ParseRetryAfter(resp.Header.Get("Retry-After"), p.clock.Now()),
		ContentType: resp.Header.Get("Content-Type"),
	}
}

// FixedEndpoint is a Router for one STS URL, for programs that do not use bcp. An attempt that
// fails in a way bcp's default classifier counts as an endpoint failure (transport error,
// timeout, HTTP 5xx, outage fault) is returned as a *bcp.UnavailableError, so
// errors.Is(err, bcp.ErrUnavailable) means the same as through a *bcp.Engine.
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
