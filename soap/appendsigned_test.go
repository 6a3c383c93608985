package soap_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// signers returns a signer of each kind: a certificate token, a certificate token it also
// signs (the STS's shape) and a SAML holder-of-key assertion, with the verifier of each.
func appendSigners(t *testing.T) map[string]struct {
	s *soap.Signer
	v *soap.Verifier
} {
	p, sts := testPKIs(t)
	out := map[string]struct {
		s *soap.Signer
		v *soap.Verifier
	}{}
	for name, cfg := range map[string]soap.SignerConfig{
		"certificate":        {Key: p.key, Certificate: p.cert, Now: clock},
		"certificate signed": {Key: p.key, Certificate: p.cert, Now: clock, SignToken: true},
		"assertion":          {Key: p.key, Assertion: issueAssertion(t, sts, p.cert), Now: clock},
	} {
		s, err := soap.NewSigner(cfg)
		require.NoError(t, err)
		vc := soap.VerifierConfig{Roots: p.roots, Now: clock}
		if cfg.Assertion != nil {
			vc = soap.VerifierConfig{Assertion: assertionCheck(sts), Now: clock}
		}
		v, err := soap.NewVerifier(vc)
		require.NoError(t, err)
		out[name] = struct {
			s *soap.Signer
			v *soap.Verifier
		}{s, v}
	}
	return out
}

func canonicalPayload(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	b, err := soap.Canonical(el)
	require.NoError(t, err)
	return b
}

// volatile are the parts of a signed message that change from one signature to the next.
var volatile = []*regexp.Regexp{
	regexp.MustCompile(`[0-9a-f]{32}`),
	regexp.MustCompile(`<ds:DigestValue>[^<]*<`),
	regexp.MustCompile(`<ds:SignatureValue>[^<]*<`),
	regexp.MustCompile(`(wsu:Id="id-X">).*(</soapenv:Body>)`),
}

func normalised(msg []byte) string {
	s := string(msg)
	for _, re := range volatile {
		s = re.ReplaceAllString(s, "${1}X${2}")
	}
	return s
}

// AppendSigned writes what Sign writes (but for the IDs, digests and signature value, and
// the payload in canonical form), the verifier accepts it for every kind of token, and the
// Body it verified is the payload.
func TestAppendSigned_WritesSignsMessageAndVerifies(t *testing.T) {
	for name, k := range appendSigners(t) {
		t.Run(name, func(t *testing.T) {
			payload := canonicalPayload(t, insurabilityRequest())
			msg, err := k.s.AppendSigned([]byte("kept"), payload)
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(msg, []byte("kept")), "appends to dst")
			msg = msg[len("kept"):]
			require.True(t, bytes.Contains(msg, payload), "the payload travels as given")

			dom, err := k.s.Sign(soap.NewEnvelope(insurabilityRequest()))
			require.NoError(t, err)
			require.Equal(t, normalised(dom), normalised(msg))

			got, err := k.v.Verify(msg)
			require.NoError(t, err, "%s", msg)
			require.Equal(t, payload, canonicalPayload(t, got.Body))
			require.Equal(t, name == "certificate signed", got.TokenSigned)

			// Each signed part is covered: a changed payload, timestamp or token fails.
			for _, change := range [][2]string{
				{"00000000097", "00000000196"},
				{"09:31:00.000Z", "09:39:00.000Z"},
			} {
				bad := bytes.Replace(msg, []byte(change[0]), []byte(change[1]), 1)
				require.NotEqual(t, msg, bad)
				_, err := k.v.Verify(bad)
				require.ErrorIs(t, err, soap.ErrDigest, "changed %s", change[0])
			}
		})
	}
}

func TestAppendSigned_RefusesWhatIsNotAnElement(t *testing.T) {
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	for _, payload := range []string{"", "<a", "text", "<?pi x?>", "<!-- c -->", "<a/> "} {
		out, err := s.AppendSigned([]byte("dst"), []byte(payload))
		require.Error(t, err, "%q", payload)
		require.Equal(t, "dst", string(out), "dst left as it was")
	}
}

// Random namespace-heavy payloads, put in canonical form by Canonical, verify with ehgate's
// verifier and with xmlsec1, an independent implementation.
func TestAppendSigned_GeneratedPayloadsVerifyWithXMLSec(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	v := newVerifier(t, p, testNow)
	r := mrand.New(mrand.NewPCG(3, 4))
	signed := 0
	for signed < 12 {
		body := genElement(r, 3, nil)
		doc, err := soap.ParseDocument(strings.NewReader(body), soap.Limits{})
		if err != nil {
			continue
		}
		root := doc.Root()
		doc.RemoveChild(root)
		if strings.Contains(body, "soapenv:") || strings.Contains(body, "wsu:") || strings.Contains(body, "ds:") || strings.Contains(body, "wsse:") {
			continue // prefixes AppendSigned's contract excludes
		}
		payload, err := soap.Canonical(root)
		if err != nil {
			continue
		}
		msg, err := s.AppendSigned(nil, payload)
		require.NoError(t, err)
		signed++
		_, err = v.Verify(msg)
		require.NoError(t, err, "%s", payload)
		dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
		args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem"}, idAttrs...)
		out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
		require.NoError(t, err, "xmlsec1 refuses payload %q:\n%s", payload, out)
		require.Contains(t, string(out), "SignedInfo References (ok/all): 2/2")
	}
	// The insurability request, signed with its token covered, too.
	s, err = soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock, SignToken: true})
	require.NoError(t, err)
	msg, err := s.AppendSigned(nil, canonicalPayload(t, insurabilityRequest()))
	require.NoError(t, err)
	dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
	args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem", "--id-attr:Id", soap.NSWSSE + ":BinarySecurityToken"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SignedInfo References (ok/all): 3/3")
}

// AppendSigned allocates little beyond the RSA signature itself: no tree, no canonical copy.
func TestAppendSigned_AllocatesAlmostOnlyTheRSASignature(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p, sts := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Assertion: issueAssertion(t, sts, p.cert), Now: clock})
	require.NoError(t, err)
	payload := canonicalPayload(t, insurabilityRequest())
	dst := make([]byte, 0, 16<<10)
	sum := sha256.Sum256([]byte("signed info"))
	rsaAllocs := testing.AllocsPerRun(20, func() {
		_, _ = rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	})
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := s.AppendSigned(dst[:0], payload); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("AppendSigned %.0f allocs, bare RSA signature %.0f", allocs, rsaAllocs)
	require.LessOrEqual(t, allocs, rsaAllocs+3)
}

// BenchmarkAppendSignedVsRSA is BenchmarkSignVsRSA for AppendSigned: the signed insurability
// request written in one pass, against a bare RSA signature, alternating.
func BenchmarkAppendSignedVsRSA(b *testing.B) {
	p, _ := testPKIs(b)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	payload := canonicalPayload(b, insurabilityRequest())
	dst := make([]byte, 0, 16<<10)
	sum := sha256.Sum256([]byte("signed info"))
	var full, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.AppendSigned(dst[:0], payload); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
		full += t1.Sub(t0)
		bare += time.Since(t1)
	}
	b.ReportMetric(float64(full)/float64(bare), "sign/rsa")
}

// The live path's shape: a SAML holder-of-key assertion as the token. xmlsec1 verifies the
// message's signature with the holder's certificate (the KeyIdentifier names the assertion,
// which xmlsec1 cannot resolve, so the key is given) and the assertion's own, untouched,
// with the STS's.
func TestAppendSigned_AssertionMessageVerifiesWithXMLSec(t *testing.T) {
	bin := xmlsec1(t)
	p, sts := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Assertion: issueAssertion(t, sts, p.cert), Now: clock})
	require.NoError(t, err)
	msg, err := s.AppendSigned(nil, canonicalPayload(t, insurabilityRequest()))
	require.NoError(t, err)
	tampered := bytes.Replace(msg, []byte("00000000097"), []byte("00000000196"), 1)
	dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "tampered.xml": tampered, "cert.pem": p.certPEM, "sts.pem": sts.certPEM})

	own := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem", "--node-xpath",
		"/*[local-name()='Envelope']/*[local-name()='Header']/*[local-name()='Security']/*[local-name()='Signature']"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(own, "msg.xml")...)
	require.NoError(t, err, "xmlsec1:\n%s", out)
	require.Contains(t, string(out), "SignedInfo References (ok/all): 2/2")
	out, err = runXMLSec(t, bin, dir, append(own, "tampered.xml")...)
	require.Error(t, err, "a changed payload:\n%s", out)

	out, err = runXMLSec(t, bin, dir, "--verify", "--pubkey-cert-pem", "sts.pem", "--id-attr:AssertionID", soap.NSSAML+":Assertion", "msg.xml")
	require.NoError(t, err, "the assertion's signature:\n%s", out)
}

// Every message gets fresh IDs: the random bytes behind them serve once, across refills of
// the signer's random buffer.
func TestAppendSigned_IDsNeverRepeat(t *testing.T) {
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	payload := canonicalPayload(t, insurabilityRequest())
	ids := regexp.MustCompile(`(?:id|TS|SIG|X509)-([0-9a-f]{32})"`)
	seen := map[string]bool{}
	for range 40 { // more than one refill of 1 KiB at 64 bytes a message
		msg, err := s.AppendSigned(nil, payload)
		require.NoError(t, err)
		got := map[string]bool{}
		for _, m := range ids.FindAllSubmatch(msg, -1) {
			got[string(m[1])] = true
		}
		require.Len(t, got, 4, "body, timestamp, signature and token IDs")
		for id := range got {
			require.False(t, seen[id], "id %s repeated", id)
			seen[id] = true
		}
	}
}
