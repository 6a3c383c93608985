package soap_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// The review's attack (HIGH 1): a small signed message with n comments inside
// the Body's text. Exc-c14n does not sign comments, so the signature stays
// valid; before the fix each comment cost a slice removal (quadratic) and the
// references were digested before the signer was checked.

const ssinText = ">00000000097<"

// commentFlood puts n empty comments inside the SSIN's text of a signed message.
func commentFlood(msg []byte, n int) []byte {
	return bytes.Replace(msg, []byte(ssinText), []byte(">000"+strings.Repeat("<!---->", n)+"00000097<"), 1)
}

// wideLimits accept the floods below, to show what the checks cost past the parse.
var wideLimits = soap.Limits{MaxComments: 500_000, MaxNodes: 1_000_000}

func verifierWith(t testing.TB, p *pki, lim soap.Limits) *soap.Verifier {
	t.Helper()
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Now: clock, Limits: lim})
	require.NoError(t, err)
	return v
}

// work runs f and returns how many nodes it canonicalised.
func work(f func()) int64 {
	before := soap.CanonicalNodes()
	f()
	return soap.CanonicalNodes() - before
}

func TestVerify_CommentFloodAtSizeLimitRefusedByLimits(t *testing.T) {
	p, _ := testPKIs(t)
	msg := signedRequest(t, p)
	n := (int(soap.DefaultLimits.MaxBytes) - len(msg)) / len("<!---->")
	flood := commentFlood(msg, n)
	require.LessOrEqual(t, int64(len(flood)), soap.DefaultLimits.MaxBytes)
	var err error
	require.Zero(t, work(func() { _, err = newVerifier(t, p, testNow).Verify(flood) }))
	var le *soap.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, "comments", le.Limit)
	require.EqualValues(t, soap.DefaultLimits.MaxComments, le.Max)

	// Every node counts, not only elements and comments.
	_, err = soap.Parse(bytes.NewReader(msg), soap.Limits{MaxNodes: 50})
	require.ErrorAs(t, err, &le)
	require.Equal(t, "nodes", le.Limit)
	_, err = soap.Parse(bytes.NewReader([]byte(`<?a?><?b?><x/>`)), soap.Limits{MaxComments: 1})
	require.ErrorAs(t, err, &le)
	require.Equal(t, "comments", le.Limit, "processing instructions count with comments")
}

func TestVerify_UntrustedSignerDigestsNothing(t *testing.T) {
	p, other := testPKIs(t)
	msg := commentFlood(signedRequest(t, other), 100_000)
	var err error
	require.Zero(t, work(func() { _, err = verifierWith(t, p, wideLimits).Verify(msg) }))
	require.ErrorIs(t, err, soap.ErrUntrusted)
}

func TestVerify_WrongSignatureValueDigestsOnlySignedInfo(t *testing.T) {
	p, _ := testPKIs(t)
	doc := parseMsg(t, signedRequest(t, p))
	sv := find(t, doc, "//ds:SignatureValue")
	raw, err := base64.StdEncoding.DecodeString(sv.Text())
	require.NoError(t, err)
	raw[len(raw)/2] ^= 1
	sv.SetText(base64.StdEncoding.EncodeToString(raw))
	signedInfoNodes := int64(countNodes(find(t, doc, "//ds:SignedInfo")))
	msg := commentFlood(marshal(t, doc), 100_000)

	got := work(func() { _, err = verifierWith(t, p, wideLimits).Verify(msg) })
	require.ErrorIs(t, err, soap.ErrSignature)
	require.Equal(t, signedInfoNodes, got, "only SignedInfo is canonicalised")
}

// A valid signature over a flooded Body is checked at a cost linear in the
// comments: each one is visited once, whatever their number.
func TestVerify_WorkIsLinearInComments(t *testing.T) {
	p, _ := testPKIs(t)
	msg := signedRequest(t, p)
	v := verifierWith(t, p, wideLimits)
	cost := map[int]int64{}
	for _, n := range []int{0, 1, 50_000, 100_000, 400_000} {
		var got *soap.Verified
		var err error
		cost[n] = work(func() { got, err = v.Verify(commentFlood(msg, n)) })
		require.NoError(t, err)
		require.Equal(t, "00000000097", got.Body.FindElement(".//core:Ssin").Child[0].(*etree.CharData).Data)
	}
	// One comment adds itself and the text node it splits off; each further one itself.
	require.Equal(t, cost[0]+2, cost[1])
	require.Equal(t, cost[1]+49_999, cost[50_000])
	require.Equal(t, cost[1]+399_999, cost[400_000])
}

func TestVerifyEnveloped_UntrustedOrForgedDigestsNothing(t *testing.T) {
	p, other := testPKIs(t)
	flooded := func(signer *pki, tamper func(*etree.Document)) *etree.Document {
		doc := serviceList()
		require.NoError(t, soap.SignEnveloped(doc.Root(), signer.key, soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{signer.cert}}))
		if tamper != nil {
			tamper(doc)
		}
		b, err := soap.Marshal(doc)
		require.NoError(t, err)
		b = bytes.Replace(b, []byte("https://pilot"), []byte("https://"+strings.Repeat("<!---->", 100_000)+"pilot"), 1)
		back, err := soap.ParseDocument(bytes.NewReader(b), wideLimits)
		require.NoError(t, err)
		return back
	}
	opts := soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: clock}

	doc := flooded(other, nil)
	var err error
	require.Zero(t, work(func() { _, err = soap.VerifyEnveloped(doc.Root(), p.roots, opts) }))
	require.ErrorIs(t, err, soap.ErrUntrusted)

	var signedInfoNodes int64
	doc = flooded(p, func(d *etree.Document) {
		sv := d.FindElement("//ds:SignatureValue")
		sv.SetText("AAAA" + sv.Text()[4:])
		signedInfoNodes = int64(countNodes(d.FindElement("//ds:SignedInfo")))
	})
	got := work(func() { _, err = soap.VerifyEnveloped(doc.Root(), p.roots, opts) })
	require.ErrorIs(t, err, soap.ErrSignature)
	require.Equal(t, signedInfoNodes, got, "only SignedInfo is canonicalised")

	// Genuinely signed: accepted, and what the caller reads is the signed text.
	doc = flooded(p, nil)
	_, err = soap.VerifyEnveloped(doc.Root(), p.roots, opts)
	require.NoError(t, err)
	ep := doc.FindElements("//Endpoint")[1]
	require.Len(t, ep.Child, 1)
	require.Equal(t, "https://pilot.mycarenet.be:9443/ehealth/bcp/insurability", ep.Child[0].(*etree.CharData).Data)
}

// countNodes counts el and every node below it.
func countNodes(el *etree.Element) int {
	n := 1
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			n += countNodes(c)
		} else {
			n++
		}
	}
	return n
}

// BenchmarkVerify_CommentFloodAtSizeLimit is the review's attack at the size
// limit: a message of 10 MiB whose Body text holds 1.5 M comments. The
// default limits refuse it; the figure is the whole refusal.
func BenchmarkVerify_CommentFloodAtSizeLimit(b *testing.B) {
	p, _ := testPKIs(b)
	msg := signedRequest(b, p)
	flood := commentFlood(msg, (int(soap.DefaultLimits.MaxBytes)-len(msg))/len("<!---->"))
	v := newVerifier(b, p, testNow)
	b.ReportMetric(float64(len(flood)), "msg-bytes")
	for b.Loop() {
		if _, err := v.Verify(flood); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerify_UntrustedCommentFlood is the attack within widened limits
// (100 000 comments, 687 KB, the review's 14 s case): parsed, then refused on
// the signer before any digest.
func BenchmarkVerify_UntrustedCommentFlood(b *testing.B) {
	p, other := testPKIs(b)
	msg := commentFlood(signedRequest(b, other), 100_000)
	v := verifierWith(b, p, wideLimits)
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	for b.Loop() {
		if _, err := v.Verify(msg); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerify_SignedCommentFlood verifies a genuinely signed message
// with 100 000 comments in its Body (within widened limits): linear work.
func BenchmarkVerify_SignedCommentFlood(b *testing.B) {
	p, _ := testPKIs(b)
	msg := signedRequest(b, p)
	v := verifierWith(b, p, wideLimits)
	flood := commentFlood(msg, 100_000)
	for b.Loop() {
		if _, err := v.Verify(flood); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEnveloped_UntrustedFlood is VerifyEnveloped refusing a service
// list signed by an untrusted key whose text holds 100 000 comments (parsed
// once, outside the loop): the figure is the refusal alone.
func BenchmarkVerifyEnveloped_UntrustedFlood(b *testing.B) {
	p, other := testPKIs(b)
	doc := serviceList()
	require.NoError(b, soap.SignEnveloped(doc.Root(), other.key, soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{other.cert}}))
	raw, err := soap.Marshal(doc)
	require.NoError(b, err)
	raw = bytes.Replace(raw, []byte("https://pilot"), []byte("https://"+strings.Repeat("<!---->", 100_000)+"pilot"), 1)
	back, err := soap.ParseDocument(bytes.NewReader(raw), wideLimits)
	require.NoError(b, err)
	opts := soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: clock}
	for b.Loop() {
		if _, err := soap.VerifyEnveloped(back.Root(), p.roots, opts); err == nil {
			b.Fatal("accepted")
		}
	}
}
