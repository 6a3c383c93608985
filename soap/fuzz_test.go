package soap_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// FuzzParse: Parse never panics, and either returns an envelope with a Body
// or one of its typed errors.
func FuzzParse(f *testing.F) {
	for _, s := range []string{minimal, platformFault, entityBomb, string(depthBomb(70)), "", "<", "<a/>",
		`<?xml version="1.0" encoding="ISO-8859-1"?>` + minimal,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><![CDATA[x]]><!-- c --></soapenv:Body></soapenv:Envelope>`,
		`<x:Envelope xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"><x:Header/><x:Body/></x:Envelope>trailing`,
	} {
		f.Add([]byte(s))
	}
	lim := soap.Limits{MaxBytes: 1 << 16, MaxDepth: 32, MaxElements: 2000}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := soap.Parse(bytes.NewReader(data), lim)
		if err != nil {
			if doc != nil {
				t.Fatal("document returned with an error")
			}
			if !errors.Is(err, soap.ErrMalformed) && !errors.Is(err, soap.ErrDoctype) &&
				!errors.Is(err, soap.ErrNotEnvelope) && !errors.Is(err, soap.ErrLimit) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if _, err := soap.BodyContent(doc); err != nil && !errors.Is(err, soap.ErrNotEnvelope) {
			t.Fatalf("BodyContent: %v", err)
		}
		soap.FaultOf(doc)
		if _, err := soap.Marshal(doc); err != nil {
			t.Fatalf("Marshal of a parsed envelope: %v", err)
		}
	})
}

// FuzzVerify: Verify never panics, never accepts a message that differs from
// the signed one in its signed parts, and fails with a typed error.
func FuzzVerify(f *testing.F) {
	p, _ := testPKIs(f)
	signed := signedRequest(f, p)
	f.Add(signed)
	f.Add(bytes.Replace(signed, []byte("00000000097"), []byte("00000000196"), 1))
	f.Add([]byte(entityBomb))
	f.Add([]byte(minimal))
	f.Add(depthBomb(80))
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Now: func() time.Time { return testNow }, Limits: soap.Limits{MaxBytes: 1 << 16}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := v.Verify(msg)
		if err != nil {
			for _, s := range allSentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		// Accepted: what was signed must be what the original said.
		ssin := got.Body.FindElement(".//core:Ssin")
		if ssin == nil || ssin.Text() != "00000000097" {
			t.Fatalf("accepted a message whose body differs from the signed one")
		}
	})
}

// FuzzSignVerify: whatever body a caller signs, the receiver verifies it:
// serialisation and canonicalisation agree for every parseable body.
func FuzzSignVerify(f *testing.F) {
	p, _ := testPKIs(f)
	for _, s := range awkwardBodies {
		f.Add([]byte(s))
	}
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := soap.ParseDocument(bytes.NewReader(body), soap.Limits{MaxBytes: 1 << 14, MaxDepth: 16, MaxElements: 200})
		if err != nil {
			return
		}
		root := doc.Root()
		doc.RemoveChild(root)
		msg, err := s.Sign(soap.NewEnvelope(root))
		if err != nil {
			return // e.g. an undeclared prefix: nothing was sent
		}
		if _, err := v.Verify(msg); err != nil {
			t.Fatalf("signed message does not verify: %v\n%s", err, msg)
		}
	})
}

// awkwardBodies are bodies whose serialisation and canonicalisation differ in
// every way XML allows: namespaces declared, undeclared and inherited,
// attribute whitespace, CR, CDATA, comments, processing instructions,
// characters beyond the BMP.
var awkwardBodies = []string{
	`<r xmlns="urn:x">ok</r>`,
	`<a:r xmlns:a="urn:a" xmlns:b="urn:b" b:x="1" y="2"><b:c>t&amp;&lt;&gt;"'</b:c><d xmlns="urn:d"><e xmlns=""/></d></a:r>`,
	"<r a=\"tab\there\nnl\r\" b='&#9;&#10;&#13;'>cr\r\nlf&#13;<![CDATA[<cdata>]]><!--c--><?pi x?></r>",
	`<r xml:lang="fr" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">é ☃ &#x10000;</r>`,
	`<a:r xmlns:a="urn:a" xmlns="urn:unused-default"><n xmlns=""><m/></n><a:o/></a:r>`,
}

func TestSign_AwkwardBodiesVerify(t *testing.T) {
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	v := newVerifier(t, p, testNow)
	for _, body := range awkwardBodies {
		doc, err := soap.ParseDocument(strings.NewReader(body), soap.Limits{})
		require.NoError(t, err)
		root := doc.Root()
		doc.RemoveChild(root)
		msg, err := s.Sign(soap.NewEnvelope(root))
		require.NoError(t, err)
		_, err = v.Verify(msg)
		require.NoError(t, err, "%s", msg)
	}
}
