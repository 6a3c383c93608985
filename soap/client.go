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
	"sync"
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
	http    *http.Client
	lim     Limits
	now     func() time.Time
	actions sync.Map // action → its SOAPAction header value
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
	resp, raw, err := c.exchange(ctx, url, action, msg)
	if err != nil {
		return nil, err
	}
	return c.answer(url, resp, raw)
}

// RawAnswer is a SOAP answer that is not a fault, read without building a tree (PostRaw).
type RawAnswer struct {
	StatusCode int
	Raw        []byte // the answer's bytes as received
	// Body is the first element child of the envelope's Body, from its start tag to its end
	// tag: a sub-slice of Raw, checked by the rules of PostRaw.
	Body []byte
	// Scope holds the namespaces declared on the Envelope and the Body (a prefix declared on
	// both: the Body's), in scope at Body's element, which may rely on them.
	Scope []Namespace
	scope [maxScanScope]Namespace
}

// PostRaw is Post for a caller that reads the answer's Body itself, with a streaming reader:
// a 2xx answer that is not a fault is checked by a lexer (no tree is built): the envelope is
// a SOAP 1.1 Envelope with one Body, within the Limits, without DOCTYPE, its tags balanced,
// attributes well-formed and not repeated, references only to the predefined entities and
// to characters, valid UTF-8. Its Body's first element is returned as bytes, with the
// namespaces in scope: the caller's reader must check the element's content (the lexer does
// not validate names against namespaces). Anything the lexer does not accept is parsed as
// Post parses it, and gives Post's errors (a *Fault, a *StatusError, a garbled answer) or,
// for a well-formed answer the lexer found unusual, a RawAnswer all the same.
func (c *Client) PostRaw(ctx context.Context, url, action string, msg []byte) (*RawAnswer, error) {
	resp, raw, err := c.exchange(ctx, url, action, msg)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if a, found := lexAnswer(raw, c.lim); found {
			a.StatusCode = resp.StatusCode
			return a, nil
		}
	}
	ans, err := c.answer(url, resp, raw)
	if err != nil {
		return nil, err
	}
	// Well-formed, an envelope, but beyond what the lexer reads: the element is serialised
	// again from the tree, every namespace in scope declared on it.
	return &RawAnswer{StatusCode: ans.StatusCode, Raw: raw, Body: standalone(ans.Body)}, nil
}

// ReadRawAnswer reads raw, the bytes of a 2xx answer (captured, stored), as PostRaw reads
// them within lim: a RawAnswer (StatusCode 0), a *Fault, or an error wrapping Parse's
// (ErrMalformed, ErrNotEnvelope, ErrDoctype, ErrLimit).
func ReadRawAnswer(raw []byte, lim Limits) (*RawAnswer, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	if a, found := lexAnswer(raw, lim); found {
		return a, nil
	}
	doc, err := parseAnswer(raw, lim)
	if err != nil {
		return nil, err
	}
	if f, isFault := FaultOf(doc); isFault {
		return nil, f
	}
	body, err := BodyContent(doc)
	if err != nil {
		return nil, err
	}
	return &RawAnswer{Raw: raw, Body: standalone(body)}, nil
}

// lexAnswer is the RawAnswer of raw when scanEnvelope vouches for it and it is no fault;
// found is false when the answer must be parsed (lim with defaults).
func lexAnswer(raw []byte, lim Limits) (a *RawAnswer, found bool) {
	if int64(len(raw)) > lim.MaxBytes { // exchange reads one byte more than the limit
		return nil, false
	}
	sc, ok := scanEnvelope(raw, lim)
	if !ok || sc.fault {
		return nil, false
	}
	a = &RawAnswer{Raw: raw, Body: raw[sc.child[0]:sc.child[1]]}
	a.scope = sc.scope
	a.Scope = a.scope[:sc.nScope]
	return a, true
}

// standalone serialises el with the namespace declarations of its ancestors that it does not
// make itself, so that it reads the same out of its document.
func standalone(el *etree.Element) []byte {
	cp := el.Copy()
	declared := map[string]bool{}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			prefix := ""
			switch {
			case a.Space == "xmlns":
				prefix = a.Key
			case a.Space == "" && a.Key == "xmlns":
			default:
				continue
			}
			if !declared[prefix] {
				declared[prefix] = true
				if e != el {
					cp.CreateAttr(a.FullKey(), a.Value)
				}
			}
		}
	}
	var buf bytes.Buffer
	ws := writeSettings
	cp.WriteTo(&buf, &ws)
	return buf.Bytes()
}

// exchange posts msg and reads the whole answer (up to Limits.MaxBytes); the response's body
// is drained and closed. A redirect, or an error page longer than the limit, is a
// *StatusError.
func (c *Client) exchange(ctx context.Context, url, action string, msg []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg))
	if err != nil {
		return nil, nil, fmt.Errorf("soap: request to %s: %w", url, err)
	}
	req.Header["Content-Type"] = contentTypeXML
	req.Header["Soapaction"] = c.soapAction(action)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	read := false // to its end: nothing left to drain
	defer func() {
		if !read {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		}
		resp.Body.Close()
	}()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, nil, c.statusError(url, resp)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if resp.ContentLength > c.lim.MaxBytes {
		if !ok {
			return nil, nil, c.statusError(url, resp)
		}
		return nil, nil, fmt.Errorf("soap: answer of %s: %w", url, &LimitError{Limit: "bytes", Max: c.lim.MaxBytes})
	}
	var raw []byte
	raw, read, err = readLimited(resp.Body, resp.ContentLength, c.lim.MaxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("soap: reading the answer of %s: %w", url, err)
	}
	return resp, raw, nil
}

// answer reads raw, the body of resp, by the rules of Client.
func (c *Client) answer(url string, resp *http.Response, raw []byte) (*Answer, error) {
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	doc, perr := parseAnswer(raw, c.lim)
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

// parseAnswer parses raw as a SOAP envelope within lim (with defaults).
func parseAnswer(raw []byte, lim Limits) (*etree.Document, error) {
	if int64(len(raw)) > lim.MaxBytes {
		return nil, &LimitError{Limit: "bytes", Max: lim.MaxBytes}
	}
	doc, err := parseBytes(raw, lim)
	if err == nil {
		_, _, err = envelopeParts(doc)
	}
	return doc, err
}

// readLimited reads r to its end (eof), up to max+1 bytes (more is left unread: the caller
// sees len > max). With a known length the buffer is allocated once.
func readLimited(r io.Reader, length, max int64) (_ []byte, eof bool, _ error) {
	size := int64(512)
	if length >= 0 && length <= max {
		size = length + 1 // room to read the EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if left := max + 1 - int64(len(buf)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if int64(len(buf)) > max {
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// contentTypeXML is the Content-Type of every request (a header value shared read-only).
var contentTypeXML = []string{"text/xml; charset=utf-8"}

// soapAction returns the SOAPAction header value of action, quoted, from a small cache:
// a client posts to a handful of actions.
func (c *Client) soapAction(action string) []string {
	if v, ok := c.actions.Load(action); ok {
		return v.([]string)
	}
	v := []string{`"` + action + `"`}
	c.actions.Store(action, v)
	return v
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
