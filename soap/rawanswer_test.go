package soap_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

const envNS = `xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"`

// rawAnswerCases are answers PostRaw must read as Post does.
var rawAnswerCases = []struct {
	name   string
	status int
	body   string
}{
	{"plain", 200, `<soapenv:Envelope ` + envNS + `><soapenv:Body><r:Answer xmlns:r="urn:r"><r:A k="v">1</r:A></r:Answer></soapenv:Body></soapenv:Envelope>`},
	{"declaration, header, blanks, comments", 200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->\n<soapenv:Envelope " + envNS + ` xmlns:r="urn:r">
  <soapenv:Header><h:X xmlns:h="urn:h" a='1'>x<![CDATA[<y>]]></h:X></soapenv:Header>
  <soapenv:Body>
    <r:Answer><r:A>a &amp; b &#233; &#x20AC;</r:A><r:B/></r:Answer>
  </soapenv:Body>
</soapenv:Envelope>
`},
	{"bom", 200, "\xef\xbb\xbf<soapenv:Envelope " + envNS + `><soapenv:Body><a/></soapenv:Body></soapenv:Envelope>`},
	{"default namespace", 200, `<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><Answer xmlns="urn:r"><A/></Answer></Body></Envelope>`},
	{"default namespace inherited", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:d"><S:Body><Answer><A>x</A></Answer></S:Body></S:Envelope>`},
	{"prefix declared on Body", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body xmlns:r="urn:r" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="b"><r:Answer/></S:Body></S:Envelope>`},
	{"prefix redeclared on Body", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:r="urn:one"><S:Body xmlns:r="urn:two"><r:Answer/></S:Body></S:Envelope>`},
	{"header redeclares the envelope's prefix", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:r="urn:one"><S:Header xmlns:r="urn:h"/><S:Body><r:Answer/></S:Body></S:Envelope>`},
	{"several children", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a><b/></a><c/></S:Body></S:Envelope>`},
	{"same name nested", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a><a><a/></a></a></S:Body></S:Envelope>`},
	{"foreign element in envelope", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><x:Body xmlns:x="urn:x"><no/></x:Body><S:Body><yes/></S:Body></S:Envelope>`},
	{"fault 500", 500, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>no</faultstring></S:Fault></S:Body></S:Envelope>`},
	{"fault 200", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Client</faultcode><faultstring>no</faultstring></S:Fault></S:Body></S:Envelope>`},
	{"fault with prefix declared on it", 200, `<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><f:Fault xmlns:f="http://schemas.xmlsoap.org/soap/envelope/"><faultcode>Server</faultcode></f:Fault></Body></Envelope>`},
	{"html error page", 502, `<html><body>bad gateway</body></html>`},
	{"not an envelope", 200, `<r:Answer xmlns:r="urn:r"/>`},
	{"envelope of another namespace", 200, `<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body><a/></S:Body></S:Envelope>`},
	{"empty body", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body></S:Body></S:Envelope>`},
	{"self-closed body", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body/></S:Envelope>`},
	{"no body", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header/></S:Envelope>`},
	{"two bodies", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body><S:Body><b/></S:Body></S:Envelope>`},
	{"two headers", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header/><S:Header/><S:Body><a/></S:Body></S:Envelope>`},
	{"mismatched tag", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a><b></a></b></S:Body></S:Envelope>`},
	{"repeated attribute", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a x="1" x="2"/></S:Body></S:Envelope>`},
	{"repeated attribute in header", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header><h y="1" y="1"/></S:Header><S:Body><a/></S:Body></S:Envelope>`},
	{"unknown entity", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a>&nbsp;</a></S:Body></S:Envelope>`},
	{"bad character reference", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a>&#1;</a></S:Body></S:Envelope>`},
	{"control character", 200, "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><a>\x01</a></S:Body></S:Envelope>"},
	{"invalid utf-8", 200, "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><a>\xff</a></S:Body></S:Envelope>"},
	{"unterminated", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a>`},
	{"text after the root", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope>x`},
	{"second root", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope><b/>`},
	{"doctype", 200, `<!DOCTYPE x [<!ENTITY e "x">]><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope>`},
	{"empty namespace bound to a prefix", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body xmlns:p=""><a/></S:Body></S:Envelope>`},
	{"lt in attribute", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a x="<"/></S:Body></S:Envelope>`},
	{"attributes not separated", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a x="1"y="2"/></S:Body></S:Envelope>`},
	{"too deep", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>` + strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70) + `</S:Body></S:Envelope>`},
	{"many namespaces (unusual, well-formed)", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"` + manyNS(20) + `><S:Body><p3:a p7:x="1"><p19:b/></p3:a></S:Body></S:Envelope>`},
	{"many attributes (unusual, well-formed)", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a` + manyAttrs(40) + `/></S:Body></S:Envelope>`},
	{"encoding not utf-8", 200, `<?xml version="1.0" encoding="ISO-8859-1"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope>`},
	{"uri with a reference", 200, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:r="urn:a&amp;b"><S:Body><r:a/></S:Body></S:Envelope>`},
}

func manyNS(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(` xmlns:p` + strconv.Itoa(i) + `="urn:p` + strconv.Itoa(i) + `"`)
	}
	return b.String()
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(` a` + strconv.Itoa(i) + `="` + strconv.Itoa(i) + `"`)
	}
	return b.String()
}

// rawBody reads a RawAnswer's Body as its caller would: in scope of the namespaces given.
func rawBody(t *testing.T, a *soap.RawAnswer) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString("<w")
	for _, ns := range a.Scope {
		if ns.Prefix == "" {
			b.WriteString(` xmlns="` + ns.URI + `"`)
		} else {
			b.WriteString(` xmlns:` + ns.Prefix + `="` + ns.URI + `"`)
		}
	}
	b.WriteString(">" + string(a.Body) + "</w>")
	doc, err := soap.ParseDocument(strings.NewReader(b.String()), soap.Limits{})
	require.NoError(t, err, "%s", b.String())
	el := doc.Root().ChildElements()[0]
	c, err := soap.Canonical(el)
	require.NoError(t, err)
	return c
}

// kind classifies an error as Client's rules do.
func kind(err error) string {
	var f *soap.Fault
	var se *soap.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &f):
		return "fault " + f.Code
	case errors.As(err, &se):
		return "status " + strconv.Itoa(se.StatusCode)
	case errors.Is(err, soap.ErrDoctype):
		return "doctype"
	case errors.Is(err, soap.ErrLimit):
		return "limit"
	case errors.Is(err, soap.ErrNotEnvelope):
		return "not envelope"
	case errors.Is(err, soap.ErrMalformed):
		return "malformed"
	}
	return "other: " + err.Error()
}

// PostRaw reads every answer as Post does: the same error, or the same Body element.
func TestPostRaw_ReadsEveryAnswerAsPostDoes(t *testing.T) {
	var current struct {
		status int
		body   string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(current.status)
		_, _ = io.WriteString(w, current.body)
	}))
	defer srv.Close()
	c := soap.NewClient(srv.Client(), soap.ClientConfig{})
	ctx := context.Background()
	for _, tc := range rawAnswerCases {
		t.Run(tc.name, func(t *testing.T) {
			current.status, current.body = tc.status, tc.body
			want, werr := c.Post(ctx, srv.URL, "urn:a", []byte("<x/>"))
			got, gerr := c.PostRaw(ctx, srv.URL, "urn:a", []byte("<x/>"))
			require.Equal(t, kind(werr), kind(gerr), "Post: %v; PostRaw: %v", werr, gerr)
			if werr != nil {
				require.Equal(t, werr.Error(), gerr.Error())
				return
			}
			require.Equal(t, want.StatusCode, got.StatusCode)
			require.Equal(t, want.Raw, got.Raw)
			wantBody, err := soap.Canonical(want.Body)
			require.NoError(t, err)
			require.Equal(t, string(wantBody), string(rawBody(t, got)))
		})
	}
}

// An answer read by the lexer gives the element's bytes as received, within Raw.
func TestPostRaw_BodyIsTheReceivedBytes(t *testing.T) {
	answer := `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body xmlns:r="urn:r"> <r:Answer  a = 'x' >t&amp;t</r:Answer> </S:Body></S:Envelope>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	got, err := soap.NewClient(srv.Client(), soap.ClientConfig{}).PostRaw(context.Background(), srv.URL, "urn:a", []byte("<x/>"))
	require.NoError(t, err)
	require.Equal(t, `<r:Answer  a = 'x' >t&amp;t</r:Answer>`, string(got.Body))
	require.Equal(t, []soap.Namespace{{Prefix: "S", URI: soap.NSEnvelope}, {Prefix: "r", URI: "urn:r"}}, got.Scope)
	require.Equal(t, answer, string(got.Raw))
}

// The answer within limits is checked against the client's limits: a node flood is refused
// as Post refuses it.
func TestPostRaw_LimitsApply(t *testing.T) {
	answer := `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a>` + strings.Repeat("<b/>", 50) + `</a></S:Body></S:Envelope>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	c := soap.NewClient(srv.Client(), soap.ClientConfig{Limits: soap.Limits{MaxElements: 20}})
	_, err := c.PostRaw(context.Background(), srv.URL, "urn:a", []byte("<x/>"))
	var le *soap.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, "elements", le.Limit)
	c = soap.NewClient(srv.Client(), soap.ClientConfig{Limits: soap.Limits{MaxBytes: 100}})
	_, err = c.PostRaw(context.Background(), srv.URL, "urn:a", []byte("<x/>"))
	require.ErrorAs(t, err, &le)
	require.Equal(t, "bytes", le.Limit)
}

// PostRaw leaves the connection reusable after every kind of answer: read by the lexer, a
// fault, a redirect or an error page (drained), an answer over the limit.
func TestPostRaw_ReusesTheConnection(t *testing.T) {
	ok := `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope>`
	for _, h := range []http.HandlerFunc{
		answer(new(atomic.Int64), 200, "text/xml", ok),
		answer(new(atomic.Int64), 500, "text/xml", platformFault),
		answer(new(atomic.Int64), 302, "text/html", strings.Repeat("x", 8000), "Location", "/elsewhere"),
		answer(new(atomic.Int64), 200, "text/xml", ok+strings.Repeat(" ", 8000)),
		answer(new(atomic.Int64), 502, "text/html", strings.Repeat("x", 8000)),
	} {
		srv := httptest.NewServer(h)
		c := soap.NewClient(srv.Client(), soap.ClientConfig{Limits: soap.Limits{MaxBytes: 1024}})
		var reused []bool
		for range 3 {
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
			})
			_, _ = c.PostRaw(ctx, srv.URL, "a", []byte(minimal))
		}
		require.Equal(t, []bool{false, true, true}, reused)
		srv.Close()
	}
}
