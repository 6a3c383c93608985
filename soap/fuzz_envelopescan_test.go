package soap

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var scanSeeds = []string{
	`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><r:Answer xmlns:r="urn:r"><r:A k="v">1</r:A></r:Answer></soapenv:Body></soapenv:Envelope>`,
	"<?xml version=\"1.0\"?>\n<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:r=\"urn:r\"><S:Header><h:X xmlns:h=\"urn:h\">x<![CDATA[<y>]]></h:X></S:Header><!-- c --><S:Body xmlns:r=\"urn:two\">\n<r:Answer a='&amp;'><b/>&#233;</r:Answer><c/></S:Body></S:Envelope>",
	`<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><Fault><faultcode>x</faultcode></Fault></Body></Envelope>`,
	`<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><f:Fault xmlns:f="urn:not-soap"/></Body></Envelope>`,
	`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header xmlns:S="urn:x"/><S:Body><a/></S:Body></S:Envelope>`,
	`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a><a/></a></S:Body></S:Envelope>`,
	`<?a?><!--b--><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a><b><c><d/></c></b></a> x </S:Body></S:Envelope><?c?>`,
}

// FuzzScanEnvelope: whatever scanEnvelope accepts, the parser accepts as an envelope, with
// the same Body element (same canonical form in the same namespaces) and the same verdict
// on a fault.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	tight := Limits{MaxDepth: 4, MaxElements: 8, MaxNodes: 16, MaxComments: 2}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		// Under tight limits too: what the lexer accepts is within them for the parser.
		if _, ok := scanEnvelope(data, tight); ok {
			_, err := parseBytes(data, tight)
			require.NoError(t, err, "%q", data)
		}
		lim := DefaultLimits
		sc, ok := scanEnvelope(data, lim)
		if !ok {
			return
		}
		doc, err := parseBytes(data, lim)
		require.NoError(t, err, "%q", data)
		_, _, err = envelopeParts(doc)
		require.NoError(t, err, "%q", data)
		_, isFault := FaultOf(doc)
		require.Equal(t, isFault, sc.fault, "%q", data)
		want, err := BodyContent(doc)
		require.NoError(t, err)
		wantC, wantErr := Canonical(want) // fails on an undeclared prefix, which parsing allows

		var w strings.Builder
		w.WriteString("<w")
		for _, ns := range sc.scope[:sc.nScope] {
			if ns.Prefix == "" {
				w.WriteString(` xmlns="` + ns.URI + `"`)
			} else {
				w.WriteString(` xmlns:` + ns.Prefix + `="` + ns.URI + `"`)
			}
		}
		w.WriteString(">")
		w.Write(data[sc.child[0]:sc.child[1]])
		w.WriteString("</w>")
		back, err := parseBytes([]byte(w.String()), lim)
		require.NoError(t, err, "%q", w.String())
		gotC, err := Canonical(back.Root().ChildElements()[0])
		require.Equal(t, wantErr == nil, err == nil, "%q: %v, %v", data, wantErr, err)
		require.True(t, bytes.Equal(wantC, gotC), "%q:\n%s\n%s", data, wantC, gotC)
	})
}

// scanEnvelope allocates nothing on the answers it reads.
func TestScanEnvelope_DoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	// Namespaces declared on Envelope or Body other than the SOAP and WS-Security ones cost a
	// string each for prefix and URI; the seeds here declare those only.
	for _, s := range []string{scanSeeds[0], `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><h:X xmlns:h="urn:h" a="1">x</h:X></soapenv:Header><soapenv:Body xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="b"><r:A xmlns:r="urn:r"><r:B>&amp;</r:B></r:A></soapenv:Body></soapenv:Envelope>`} {
		data := []byte(s)
		_, ok := scanEnvelope(data, DefaultLimits)
		require.True(t, ok)
		require.Zero(t, testing.AllocsPerRun(20, func() { scanEnvelope(data, DefaultLimits) }))
	}
}
