package sts

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// The fuzz seeds are real responses of the test STS, written to testdata by
// `go test -run TestFuzzSeeds -update-fuzz-seeds` so that fuzz workers need no key generation.
var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz-seeds from the test STS")

const seedDir = "testdata/fuzz-seeds"

func TestFuzzSeeds(t *testing.T) {
	if *updateFuzzSeeds {
		h := newHarness(t, time.Hour)
		ident := h.cfg.Identification.Certificate
		require.NoError(t, os.MkdirAll(seedDir, 0o755))
		write := func(name string, data []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(seedDir, name), data, 0o644))
		}
		p := getPKI(t)
		write("roots.pem", append(pem.EncodeToMemory(certBlock(p.root)), pem.EncodeToMemory(certBlock(p.inter))...))
		write("holder.pem", pem.EncodeToMemory(certBlock(ident)))
		write("sts.pem", pem.EncodeToMemory(certBlock(h.sts.sts.Certificate)))
		write("response.xml", h.sts.response("_req", ident, issue{hokCert: ident}))
		write("response-inherited.xml", h.sts.response("_req", ident, issue{inherit: true, hokCert: ident}))
		write("response-two.xml", h.sts.response("_req", ident, issue{assertions: 2, hokCert: ident}))
		write("response-refused.xml", h.sts.response("_req", ident, issue{status: "samlp:Requester", statusMessage: "no"}))
	}
	v, seeds := fuzzSeeds(t)
	require.Len(t, seeds, 4)
	// The seeds are good: the plain and inherited responses hold an assertion valid at fixedNow.
	for _, s := range seeds[:2] {
		cut, err := cutAssertions(s, false)
		require.NoError(t, err)
		_, err = v.parseStored(cut.bytes, fixedNow())
		require.NoError(t, err)
	}
}

func fuzzSeeds(t testing.TB) (*validator, [][]byte) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(seedDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read("roots.pem"))
	block, _ := pem.Decode(read("holder.pem"))
	holder, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode(read("sts.pem"))
	stsCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(stsCert.Raw)
	pin := SignerPin{Fingerprints: []string{hex.EncodeToString(sum[:])}}.compile()
	var seeds [][]byte
	for _, n := range []string{"response.xml", "response-inherited.xml", "response-two.xml", "response-refused.xml"} {
		seeds = append(seeds, read(n))
	}
	return &validator{roots: roots, pin: pin, issuer: DefaultIssuer, skew: time.Minute, lifetime: time.Hour, holderKey: holder}, seeds
}

var extraSeeds = [][]byte{
	[]byte(`<a:Response xmlns:a="urn:oasis:names:tc:SAML:1.0:protocol"><b:Assertion xmlns:b="urn:oasis:names:tc:SAML:1.0:assertion"/></a:Response>`),
	[]byte(`<x xmlns="urn:oasis:names:tc:SAML:1.0:protocol"><Response><Assertion xmlns="urn:oasis:names:tc:SAML:1.0:assertion">`),
	[]byte(`<!DOCTYPE x><x/>`),
	{},
}

// Seeds are whole responses of several KiB: minimising each new input for the default 60 s
// stalls a short run, so fuzz with
//
//	go test -run XXX -fuzz FuzzCutAssertions -fuzzminimizetime 2s ./sts

// FuzzCutAssertions checks that cutting assertions out of any input never panics, and that
// what is cut from a well-formed document stands alone as a saml:Assertion.
func FuzzCutAssertions(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range append(seeds, extraSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cut, err := cutAssertions(raw, false)
		if err != nil || cut.bytes == nil {
			return
		}
		if _, perr := soap.ParseDocument(bytes.NewReader(raw), soap.Limits{}); perr != nil {
			return // the provider never cuts from what soap refused
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(cut.bytes); err != nil {
			t.Fatalf("cut assertion does not parse alone: %v\n%s", err, cut.bytes)
		}
		if doc.Root() == nil || doc.Root().Tag != "Assertion" || doc.Root().NamespaceURI() != nsSAML {
			t.Fatalf("cut is not a saml:Assertion: %s", cut.bytes)
		}
	})
}

// FuzzParseStored checks that validating bytes read back from a TokenStore never panics and
// never accepts what is not the STS's signed assertion.
func FuzzParseStored(f *testing.F) {
	v, seeds := fuzzSeeds(f)
	for _, s := range append(seeds, extraSeeds...) {
		f.Add(s)
		if cut, err := cutAssertions(s, false); err == nil && cut.bytes != nil {
			f.Add(cut.bytes)
		}
	}
	now := fixedNow()
	f.Fuzz(func(t *testing.T, raw []byte) {
		tok, err := v.parseStored(raw, now)
		if err != nil {
			return
		}
		if !bytes.Equal(tok.Assertion, raw) || tok.ID == "" || !tok.NotOnOrAfter.After(now) {
			t.Fatalf("accepted token is inconsistent: %+v", tok)
		}
	})
}
