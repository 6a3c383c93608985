package soap_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/ehgate/ehgate/soap"
)

// FuzzVerifyEnveloped feeds arbitrary documents to VerifyEnveloped, the check of the service
// list's signature (added by the faulttest engineer, issue 9). Seeds are a list signed by the
// trusted test PKI (whole document, by Id, with XAdES) and tampered copies. VerifyEnveloped
// never panics, fails with one of soap's sentinels, and accepts only a document whose signed
// content is the original's.
func FuzzVerifyEnveloped(f *testing.F) {
	p, rogue := testPKIs(f)
	var originals [][]byte
	for _, opts := range []soap.EnvelopedOptions{
		{IDAttr: "Id", Certificates: []*x509.Certificate{p.cert}},
		{IDAttr: "Id", XAdES: true, Now: clock, Certificates: []*x509.Certificate{p.cert}},
		{Certificates: []*x509.Certificate{p.cert}},
	} {
		doc := serviceList()
		if err := soap.SignEnveloped(doc.Root(), p.key, opts); err != nil {
			f.Fatal(err)
		}
		b, err := soap.Marshal(doc)
		if err != nil {
			f.Fatal(err)
		}
		originals = append(originals, b)
		f.Add(b)
		f.Add(bytes.Replace(b, []byte("ACTIVE"), []byte("INACTIVE"), 1))
		f.Add(bytes.Replace(b, []byte("https://services-acpt"), []byte("https://evil"), 1))
	}
	doc := serviceList()
	if err := soap.SignEnveloped(doc.Root(), rogue.key, soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{rogue.cert}}); err != nil {
		f.Fatal(err)
	}
	if b, err := soap.Marshal(doc); err == nil {
		f.Add(b)
	}
	f.Add([]byte(entityBomb))
	f.Add([]byte("<ServiceList/>"))
	lim := soap.Limits{MaxBytes: 1 << 16, MaxDepth: 32, MaxElements: 2000}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := soap.ParseDocument(bytes.NewReader(data), lim)
		if err != nil || doc.Root() == nil {
			return
		}
		for _, idAttr := range []string{"Id", ""} {
			signer, err := soap.VerifyEnveloped(doc.Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: idAttr, Now: clock})
			if err != nil {
				if !isSentinel(err) {
					t.Fatalf("untyped error: %v", err)
				}
				continue
			}
			if signer == nil || !signer.Equal(p.cert) {
				t.Fatal("accepted without the trusted signer")
			}
			// Accepted: the endpoints and statuses must be the signed ones.
			if !sameEndpoints(data, originals) {
				t.Fatalf("accepted a list whose endpoints differ from every signed original:\n%s", data)
			}
		}
	})
}

func isSentinel(err error) bool {
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return errors.Is(err, soap.ErrMalformed) || errors.Is(err, soap.ErrLimit) || errors.Is(err, soap.ErrDoctype)
}

// sameEndpoints reports whether data's Endpoint texts and statuses are those of one of the
// originals.
func sameEndpoints(data []byte, originals [][]byte) bool {
	got := endpointsOf(data)
	for _, o := range originals {
		if got == endpointsOf(o) {
			return true
		}
	}
	return false
}

func endpointsOf(b []byte) string {
	doc, err := soap.ParseDocument(bytes.NewReader(b), soap.Limits{})
	if err != nil || doc.Root() == nil {
		return "?"
	}
	var out bytes.Buffer
	for _, e := range doc.Root().FindElements("./Service/Endpoint") {
		out.WriteString(e.SelectAttrValue("Order", "") + e.SelectAttrValue("Status", "") + e.Text() + "\n")
	}
	return out.String()
}
