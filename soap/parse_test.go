package soap_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const entityBomb = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><x>&lol9;</x></soapenv:Body></soapenv:Envelope>`

// depthBomb returns an envelope whose Body nests n elements.
func depthBomb(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>`)
	b.WriteString(strings.Repeat("<a>", n))
	b.WriteString(strings.Repeat("</a>", n))
	b.WriteString(`</soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

const minimal = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><r xmlns="urn:x">ok</r></soapenv:Body></soapenv:Envelope>`

func TestParse_RejectsHostileAndBrokenInput(t *testing.T) {
	many := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
		strings.Repeat("<a/>", 200) + `</soapenv:Body></soapenv:Envelope>`
	tests := []struct {
		name  string
		in    string
		lim   soap.Limits
		want  error
		limit string
	}{
		{"entity bomb", entityBomb, soap.Limits{}, soap.ErrDoctype, ""},
		{"external entity", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + minimal, soap.Limits{}, soap.ErrDoctype, ""},
		{"bare doctype", `<!DOCTYPE soapenv:Envelope>` + minimal, soap.Limits{}, soap.ErrDoctype, ""},
		{"depth bomb", string(depthBomb(100)), soap.Limits{}, soap.ErrLimit, "depth"},
		{"deep but allowed elsewhere", string(depthBomb(10)), soap.Limits{MaxDepth: 8}, soap.ErrLimit, "depth"},
		{"too many elements", many, soap.Limits{MaxElements: 100}, soap.ErrLimit, "elements"},
		{"too many bytes", minimal, soap.Limits{MaxBytes: 64}, soap.ErrLimit, "bytes"},
		{"not xml", "hello", soap.Limits{}, soap.ErrMalformed, ""},
		{"empty", "", soap.Limits{}, soap.ErrMalformed, ""},
		{"unclosed", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>`, soap.Limits{}, soap.ErrMalformed, ""},
		{"two roots", minimal + minimal, soap.Limits{}, soap.ErrMalformed, ""},
		{"html error page", "<html><body><h1>502 Bad Gateway</h1></body></html>", soap.Limits{}, soap.ErrNotEnvelope, ""},
		{"soap 1.2 envelope", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`, soap.Limits{}, soap.ErrNotEnvelope, ""},
		{"no body", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/></soapenv:Envelope>`, soap.Limits{}, soap.ErrNotEnvelope, ""},
		{"repeated attribute", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body Id="a" Id="b"/></soapenv:Envelope>`, soap.Limits{}, soap.ErrMalformed, ""},
		{"repeated attribute among many", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body a="1" b="2" c="3" d="4" e="5" f="6" g="7" h="8" i="9" a="10"/></soapenv:Envelope>`, soap.Limits{}, soap.ErrMalformed, ""},
		{"prefix bound to no namespace", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><a:r xmlns:a=""/></soapenv:Body></soapenv:Envelope>`, soap.Limits{}, soap.ErrMalformed, ""},
		{"xml prefix rebound", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xml="urn:x"><soapenv:Body/></soapenv:Envelope>`, soap.Limits{}, soap.ErrMalformed, ""},
		{"namespace bomb", namespaceBomb(300), soap.Limits{}, soap.ErrLimit, "namespaces"},
		{"two bodies", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/><soapenv:Body/></soapenv:Envelope>`, soap.Limits{}, soap.ErrNotEnvelope, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := soap.Parse(strings.NewReader(tt.in), tt.lim)
			require.Nil(t, doc)
			require.ErrorIs(t, err, tt.want)
			var le *soap.LimitError
			if tt.limit != "" {
				require.True(t, errors.As(err, &le))
				require.Equal(t, tt.limit, le.Limit)
				require.Contains(t, err.Error(), tt.limit)
			} else {
				require.False(t, errors.As(err, &le))
			}
		})
	}
}

func TestParse_LimitsAreInclusive(t *testing.T) {
	// Envelope, Body and 10 nested elements: depth 12.
	_, err := soap.Parse(bytes.NewReader(depthBomb(10)), soap.Limits{MaxDepth: 12, MaxElements: 12})
	require.NoError(t, err)
	_, err = soap.Parse(bytes.NewReader(depthBomb(10)), soap.Limits{MaxDepth: 11})
	require.ErrorIs(t, err, soap.ErrLimit)
	_, err = soap.Parse(bytes.NewReader(depthBomb(10)), soap.Limits{MaxElements: 11})
	require.ErrorIs(t, err, soap.ErrLimit)
	_, err = soap.Parse(strings.NewReader(minimal), soap.Limits{MaxBytes: int64(len(minimal))})
	require.NoError(t, err)
}

func TestParse_AcceptsCommentsDeclarationAndCDATA(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<!-- a proxy was here -->
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><r xmlns="urn:x"><![CDATA[a < b]]></r></soapenv:Body></soapenv:Envelope>`
	doc, err := soap.Parse(strings.NewReader(in), soap.Limits{})
	require.NoError(t, err)
	r, err := soap.BodyContent(doc)
	require.NoError(t, err)
	require.Equal(t, "a < b", r.Text())
}

func TestNewEnvelope_MarshalParsesBack(t *testing.T) {
	hdr := insurabilityRequest() // any element will do as a header
	hdr.Tag = "Trace"
	doc := soap.NewEnvelope(insurabilityRequest(), hdr)
	b, err := soap.Marshal(doc)
	require.NoError(t, err)

	back, err := soap.Parse(bytes.NewReader(b), soap.Limits{})
	require.NoError(t, err)
	body, err := soap.BodyContent(back)
	require.NoError(t, err)
	require.Equal(t, "GetInsurabilityForPharmacistRequest", body.Tag)
	require.Equal(t, "urn:be:fgov:ehealth:insurability:protocol:v2", body.NamespaceURI())
	h := soap.HeaderOf(back)
	require.NotNil(t, h)
	require.Equal(t, "Trace", h.ChildElements()[0].Tag)

	empty, err := soap.Marshal(soap.NewEnvelope(nil))
	require.NoError(t, err)
	require.Equal(t, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`, string(empty))
	doc, err = soap.Parse(bytes.NewReader(empty), soap.Limits{})
	require.NoError(t, err)
	require.Nil(t, soap.HeaderOf(doc))
	_, err = soap.BodyContent(doc)
	require.ErrorIs(t, err, soap.ErrNotEnvelope)
}

func TestMarshal_KeepsCarriageReturnsAndAttributeWhitespace(t *testing.T) {
	el := insurabilityRequest()
	el.CreateElement("core:Raw").SetText("line1\r\nline2\ttab")
	el.CreateAttr("note", "a\tb\nc")
	b, err := soap.Marshal(soap.NewEnvelope(el))
	require.NoError(t, err)
	doc, err := soap.Parse(bytes.NewReader(b), soap.Limits{})
	require.NoError(t, err)
	body, err := soap.BodyContent(doc)
	require.NoError(t, err)
	require.Equal(t, "line1\r\nline2\ttab", body.FindElement("core:Raw").Text())
	require.Equal(t, "a\tb\nc", body.SelectAttrValue("note", ""))
}

func decodeB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

// namespaceBomb returns an envelope whose Body declares n namespaces.
func namespaceBomb(n int) string {
	var b strings.Builder
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body`)
	for i := range n {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:%d"`, i, i)
	}
	b.WriteString(`><a/></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

// wideEnvelope has an Envelope with many attributes and many Body-named
// children: sibling loops must not rescan the attributes for each child.
func wideEnvelope(attrs, bodies int) []byte {
	var b bytes.Buffer
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"`)
	for i := range attrs {
		fmt.Fprintf(&b, ` a%d=""`, i)
	}
	b.WriteString(`>`)
	for range bodies {
		b.WriteString(`<Body/>`)
	}
	b.WriteString(`<soapenv:Body/></soapenv:Envelope>`)
	return b.Bytes()
}

func TestParse_WideEnvelopeIsAnEnvelope(t *testing.T) {
	doc, err := soap.Parse(bytes.NewReader(wideEnvelope(1000, 1000)), soap.Limits{})
	require.NoError(t, err)
	_, err = soap.BodyContent(doc)
	require.ErrorIs(t, err, soap.ErrNotEnvelope, "the real Body is empty")
}

// BenchmarkParseWideEnvelope: 100 000 attributes on the Envelope and 50 000
// unqualified Body children (about 1.3 MB); linear work, not their product.
func BenchmarkParseWideEnvelope(b *testing.B) {
	msg := wideEnvelope(100_000, 50_000)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := soap.Parse(bytes.NewReader(msg), soap.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
