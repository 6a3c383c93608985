package soap_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

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
