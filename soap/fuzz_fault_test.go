package soap_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ehgate/ehgate/soap"
)

// FuzzReadResponse feeds arbitrary answers to ReadResponse, the reader of every SOAP answer
// from the network (added by the faulttest engineer, issue 9): it never panics; it returns
// either the Body's first element, a *soap.Fault whose codes are those it reports, or one
// of soap's typed errors.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{minimal, platformFault, entityBomb, string(depthBomb(70)), "", "<", "<a/>",
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>c</faultcode><faultstring>s</faultstring><detail><e:Error xmlns:e="urn:e"><e:Code>SOA-02001</e:Code></e:Error><x><Code>A</Code><Code>B</Code></x></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		`<html><body>502 Bad Gateway</body></html>`,
	} {
		f.Add([]byte(s))
	}
	lim := soap.Limits{MaxBytes: 1 << 16, MaxDepth: 32, MaxElements: 2000}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := soap.ReadResponse(bytes.NewReader(data), lim)
		if err == nil {
			if el == nil {
				t.Fatal("no element and no error")
			}
			return
		}
		if el != nil {
			t.Fatal("element returned with an error")
		}
		var fault *soap.Fault
		if errors.As(err, &fault) {
			if fault.Error() == "" {
				t.Fatal("fault without text")
			}
			for _, c := range fault.FaultCodes() {
				if !fault.HasCode(c) {
					t.Fatalf("HasCode(%q) false for a reported code", c)
				}
			}
			return
		}
		for _, s := range []error{soap.ErrMalformed, soap.ErrDoctype, soap.ErrNotEnvelope, soap.ErrLimit} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	})
}

// FuzzFaultRoundTrip: a fault the platform builds with NewFaultEnvelope is read back by
// ReadResponse with the same faultcode, faultstring and detail codes, whatever their text.
func FuzzFaultRoundTrip(f *testing.F) {
	f.Add("soapenv:Server", "service unavailable", "SOA-02001", "")
	f.Add("soapenv:Client", "not authenticated", "SOA-01001", "SOA-01002")
	f.Add("", "", "", "")
	f.Add("a&b", "<x>", "]]>", "é☃")
	f.Fuzz(func(t *testing.T, code, text, c1, c2 string) {
		for _, s := range []string{code, text, c1, c2} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, notXMLChar) {
				return // not representable in XML 1.0
			}
		}
		var codes []string
		for _, c := range []string{c1, c2} {
			if strings.TrimSpace(c) != "" {
				codes = append(codes, c)
			}
		}
		in := &soap.Fault{Code: code, String: text, Codes: codes}
		b, err := soap.Marshal(soap.NewFaultEnvelope(in))
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		_, err = soap.ReadResponse(bytes.NewReader(b), soap.Limits{})
		var out *soap.Fault
		if !errors.As(err, &out) {
			t.Fatalf("fault not read back: %v\n%s", err, b)
		}
		codeChanged := strings.TrimSpace(code) != "" && strings.TrimSpace(out.Code) != strings.TrimSpace(code) // "" takes NewFaultEnvelope's default
		if codeChanged || strings.TrimSpace(out.String) != strings.TrimSpace(text) {
			t.Fatalf("fault %+v read back as %+v", in, out)
		}
		for _, c := range codes {
			if !out.HasCode(strings.TrimSpace(c)) && !out.HasCode(c) {
				t.Fatalf("code %q lost: %+v\n%s", c, out, b)
			}
		}
	})
}

// notXMLChar reports characters XML 1.0 cannot carry.
func notXMLChar(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return false
	case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
		return true
	}
	return false
}
