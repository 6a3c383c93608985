package soap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// StatusError is an HTTP answer that is not a SOAP answer: every redirect (3xx, never
// followed), and any other status outside 2xx whose body is not a SOAP fault, such as an HTML
// 403, 404 or 502 page from a proxy or a load balancer in front of the site. It is the
// endpoint's failure: bcp's default classifier moves the call to the next endpoint.
type StatusError struct {
	Endpoint    string        // URL of the endpoint that answered
	StatusCode  int           // HTTP status code
	RetryAfter  time.Duration // parsed Retry-After header; 0 when absent
	ContentType string        // Content-Type of the answer
}

// Error names the status code and endpoint, with the content type and Retry-After when known.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soap: http status %d from %s", e.StatusCode, e.Endpoint)
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		b.WriteString(", redirect not followed")
	}
	if e.ContentType != "" {
		fmt.Fprintf(&b, " (%s)", e.ContentType)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// WithoutRedirects returns a copy of hc (nil: a client on http.DefaultTransport) that never
// follows a redirect: the 3xx answer itself is returned. hc is not modified; the copy shares
// its Transport, Jar and Timeout. A redirect would re-send a signed request, its token and the
// patient's SSIN to another host, perhaps in clear: no call to the platform follows one.
func WithoutRedirects(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// ClientConfig is the configuration of a Client. The zero value is usable.
type ClientConfig struct {
	// Limits bound the answer (bytes, depth, elements); zero fields take DefaultLimits.
	Limits Limits
	// Now is the clock Retry-After dates are read against; nil = time.Now.
	Now func() time.Time
}

// Client posts SOAP 1.1 envelopes over HTTP and reads the answers, with one rule for every
// caller (the STS exchange, the connector's services):
//   - redirects are never followed, whatever client is given: a 3xx is a *StatusError;
//   - a SOAP fault (any status but 3xx) is a *Fault;
//   - a status outside 2xx whose body is not a SOAP fault is a *StatusError;
//   - a 2xx whose body is not a SOAP envelope is an error wrapping Parse's (ErrMalformed,
//     ErrNotEnvelope, ErrDoctype, ErrLimit): the endpoint garbled its answer;
//   - the body is read up to Limits.MaxBytes (more is ErrLimit) and what is left of it is
//     drained (up to 64 KiB) before closing, so the connection is reused;
//   - transport errors are returned as the http.Client gives them.
//
// Safe for concurrent use.
type Client struct {
	http *http.Client
	lim  Limits
	now  func() time.Time
}

// NewClient returns a Client posting through a redirect-free copy of hc (nil: a client on
// http.DefaultTransport).
func NewClient(hc *http.Client, cfg ClientConfig) *Client {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{http: WithoutRedirects(hc), lim: cfg.Limits.withDefaults(), now: now}
}

// Answer is a SOAP answer that is not a fault.
type Answer struct {
	StatusCode int
	Raw        []byte          // the answer's bytes as received
	Doc        *etree.Document // the parsed envelope
	Body       *etree.Element  // the first element of the Body
}

// drainLimit bounds what is read of an unused body before closing it: beyond it, closing
// the connection is cheaper than reading on.
const drainLimit = 64 << 10

// Post sends msg (a whole SOAP envelope) to url with the SOAPAction action and reads the
// answer by the rules of Client. The request ends with ctx.
func (c *Client) Post(ctx context.Context, url, action string, msg []byte) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("soap: request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+action+`"`)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		resp.Body.Close()
	}()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, c.statusError(url, resp)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if resp.ContentLength > c.lim.MaxBytes {
		if !ok {
			return nil, c.statusError(url, resp)
		}
		return nil, fmt.Errorf("soap: answer of %s: %w", url, &LimitError{Limit: "bytes", Max: c.lim.MaxBytes})
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("soap: reading the answer of %s: %w", url, err)
	}
	doc, perr := Parse(bytes.NewReader(raw), c.lim)
	if perr == nil {
		if f, isFault := FaultOf(doc); isFault {
			return nil, f
		}
	}
	if !ok {
		return nil, c.statusError(url, resp)
	}
	if perr != nil {
		return nil, fmt.Errorf("soap: answer of %s (%s): %w", url, resp.Header.Get("Content-Type"), perr)
	}
	body, err := BodyContent(doc)
	if err != nil {
		return nil, fmt.Errorf("soap: answer of %s: %w", url, err)
	}
	return &Answer{StatusCode: resp.StatusCode, Raw: raw, Doc: doc, Body: body}, nil
}

func (c *Client) statusError(url string, resp *http.Response) *StatusError {
	return &StatusError{
		Endpoint:    url,
		StatusCode:  resp.StatusCode,
		RetryAfter:  ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
		ContentType: resp.Header.Get("Content-Type"),
	}
}

// ParseRetryAfter reads a Retry-After header value, in seconds or as an HTTP date relative to
// now, at most 24 h. It returns 0 when the value is absent, invalid or in the past.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(value); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// maxRetryAfter bounds what ParseRetryAfter returns.
const maxRetryAfter = 24 * time.Hour

// IsGarbled reports whether err says an answer could not be read as SOAP (not well-formed,
// over the limits, not an envelope, a DTD) without being a SOAP fault: the endpoint garbled
// its answer.
func IsGarbled(err error) bool {
	var f *Fault
	if errors.As(err, &f) {
		return false
	}
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrLimit) || errors.Is(err, ErrNotEnvelope) || errors.Is(err, ErrDoctype)
}
