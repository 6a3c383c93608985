package connector

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// capturedRequest is one request the client put on the wire.
type capturedRequest struct {
	path, action string
	body         []byte
}

// recorder is a RoundTripper that keeps a copy of every request body it forwards.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []capturedRequest
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		var err error
		if b, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, capturedRequest{path: req.URL.Path, action: req.Header.Get("SOAPAction"), body: b})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) captured() []capturedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]capturedRequest(nil), r.reqs...)
}

// standalone returns el as its own document, declaring the namespaces it inherits.
func standalone(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	c := el.Copy()
	declared := map[string]bool{}
	for _, a := range c.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			switch {
			case a.Space == "xmlns" && !declared[a.Key]:
				c.CreateAttr("xmlns:"+a.Key, a.Value)
				declared[a.Key] = true
			case a.Space == "" && a.Key == "xmlns" && !declared[""]:
				c.CreateAttr("xmlns", a.Value)
				declared[""] = true
			}
		}
	}
	return serialize(t, c)
}

// TestWire_EveryBodyOnTheWireValidates runs every operation of the client through its public
// API against platformtest and validates, with xmllint and the platform's schemas, the payload
// of every SOAP Body and every wsse:Security header it put on the wire, and its SOAPAction.
func TestWire_EveryBodyOnTheWireValidates(t *testing.T) {
	xmllint(t)
	p, id := testPlatform(t)
	cfg := testConfig(t, p, id)
	cfg.Identity.HolderNIHII = "10987654321"
	rec := &recorder{next: NewTransport(p.CACertPool(), 5*time.Second)}
	c, err := New(cfg, WithClock(newTestClock()), WithTransport(rec))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var withSSIN, withRegNr *platformtest.Patient
	for _, pt := range p.Patients() {
		pt := pt
		switch {
		case pt.Known && pt.SSIN != "" && withSSIN == nil:
			withSSIN = &pt
		case pt.Known && pt.RegNrWithMut != "" && withRegNr == nil:
			withRegNr = &pt
		}
	}
	require.NotNil(t, withSSIN)
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: withSSIN.SSIN, UserReference: "COUNTER-1"})
	require.NoError(t, err)
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: withSSIN.SSIN, RequestType: RequestInvoicing})
	require.NoError(t, err)
	if withRegNr != nil {
		_, _ = c.Insurability(ctx, InsurabilityRequest{RegNrWithMut: withRegNr.RegNrWithMut, Mutuality: withRegNr.Mutuality})
	}
	_, err = c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: withSSIN.SSIN})
	require.NoError(t, err)
	_, err = c.ETK(ctx, Identifier{Type: "NIHII-PHARMACY", Value: id.NIHII})
	require.NoError(t, err)
	r, err := c.SendMessage(ctx, testMessage("", withSSIN.SSIN, []byte("sealed content")))
	require.NoError(t, err)
	require.True(t, r.Delivered)
	m, err := EHealthBoxMessage{PublicationID: "GENERIC000001", Recipients: []EHealthBoxAddress{{ID: "10987654321", Type: "NIHII", Quality: "DOCTOR"}},
		Title: "generic", Content: []byte("x")}.normalize()
	require.NoError(t, err)
	r, err = c.Submit(ctx, Write{Service: ServiceEHealthBox, Action: ActionEHealthBoxSend, Body: serialize(t, buildSendMessageRequest(m, c.origin)), IdempotencyKey: m.PublicationID})
	require.NoError(t, err)
	require.True(t, r.Delivered)

	schemas := map[string]struct{ schema, action string }{
		"GetInsurabilityForPharmacistRequest": {xsdInsurability, ActionInsurability},
		"GetInsurabilityRequest":              {xsdGenIns11, ActionGenericInsurability},
		"GetEtkRequest":                       {xsdETK, ActionETK},
		"SendMessageRequest":                  {xsdEHealthBox, ActionEHealthBoxSend},
		"Request":                             {xsdSAMLP, ""},
	}
	seen := map[string]int{}
	headers := 0
	for _, req := range rec.captured() {
		if len(req.body) == 0 {
			continue // GETs: the service list, the status feed
		}
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(req.body), req.path)
		env := doc.Root()
		require.Equal(t, "Envelope", env.Tag, req.path)
		bodyEl := child(env, "Body")
		require.NotNil(t, bodyEl, req.path)
		payload := bodyEl.ChildElements()[0]
		want, ok := schemas[payload.Tag]
		require.True(t, ok, "unexpected body %s at %s", payload.Tag, req.path)
		seen[payload.Tag]++
		requireValid(t, want.schema, standalone(t, payload))
		if payload.Tag != "Request" {
			require.Equal(t, `"`+want.action+`"`, req.action, payload.Tag)
		}
		if sec := find(env, "Header", "Security"); sec != nil {
			requireValid(t, xsdWSSHeaders, standalone(t, sec))
			headers++
		}
	}
	for name := range schemas {
		require.NotZero(t, seen[name], "no %s seen on the wire", name)
	}
	require.NotZero(t, headers)
	t.Logf("validated on the wire: %v and %d wsse:Security headers", seen, headers)
}
