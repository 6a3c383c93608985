package soap_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

const nsBCP = "urn:be:fgov:ehealth:bcp:protocol:v1"

// serviceList builds a small service list document like the platform's.
func serviceList() *etree.Document {
	doc := etree.NewDocument()
	l := doc.CreateElement("ServiceList")
	l.CreateAttr("xmlns", nsBCP)
	l.CreateAttr("Id", "_list-1")
	l.CreateAttr("IssueInstant", "2026-03-02T09:00:00.000+01:00")
	l.CreateAttr("Environment", "Acceptation")
	s := l.CreateElement("Service")
	s.CreateAttr("Id", "uddi:ehealth-fgov-be:business:insurability:v2")
	s.CreateAttr("Name", "INSURABILITY V2")
	for i, u := range []string{"https://services-acpt.ehealth.fgov.be/Insurability/v2", "https://pilot.mycarenet.be:9443/ehealth/bcp/insurability"} {
		e := s.CreateElement("Endpoint")
		e.CreateAttr("Order", []string{"0", "1"}[i])
		e.CreateAttr("Status", []string{"ACTIVE", "INACTIVE"}[i])
		e.SetText(u)
	}
	return doc
}

// reparse serialises doc and parses it again, as a receiver would.
func reparse(t testing.TB, doc *etree.Document) *etree.Document {
	t.Helper()
	b, err := soap.Marshal(doc)
	require.NoError(t, err)
	back, err := soap.ParseDocument(bytes.NewReader(b), soap.Limits{})
	require.NoError(t, err)
	return back
}

func TestSignEnveloped_VerifiesInEveryMode(t *testing.T) {
	p, _ := testPKIs(t)
	for name, opts := range map[string]soap.EnvelopedOptions{
		"by id":             {IDAttr: "Id"},
		"whole document":    {},
		"by id with xades":  {IDAttr: "Id", XAdES: true, Now: clock},
		"with intermediate": {IDAttr: "Id", Certificates: []*x509.Certificate{p.cert, p.ca}},
	} {
		t.Run(name, func(t *testing.T) {
			if opts.Certificates == nil {
				opts.Certificates = []*x509.Certificate{p.cert}
			}
			doc := serviceList()
			require.NoError(t, soap.SignEnveloped(doc.Root(), p.key, opts))
			back := reparse(t, doc)
			signer, err := soap.VerifyEnveloped(back.Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: opts.IDAttr, Now: clock})
			require.NoError(t, err)
			require.True(t, signer.Equal(p.cert))
			if opts.XAdES {
				require.Equal(t, "2026-03-02T09:30:00.000Z", back.FindElement("//xades:SigningTime").Text())
			}
		})
	}
}

func TestSignEnveloped_NestedElementAndBefore(t *testing.T) {
	p, _ := testPKIs(t)
	req := etree.NewElement("samlp:Request")
	req.CreateAttr("xmlns:samlp", soap.NSSAMLP)
	req.CreateAttr("RequestID", "req-1")
	req.CreateElement("samlp:AttributeQuery")
	env := soap.NewEnvelope(req)
	require.NoError(t, soap.SignEnveloped(req, p.key, soap.EnvelopedOptions{IDAttr: "RequestID", Before: "AttributeQuery", Certificates: []*x509.Certificate{p.cert}}))
	require.Equal(t, "Signature", req.ChildElements()[0].Tag, "signature goes before AttributeQuery")

	back := reparse(t, env)
	inner := back.FindElement("//samlp:Request")
	_, err := soap.VerifyEnveloped(inner, p.roots, soap.VerifyEnvelopedOptions{IDAttr: "RequestID", Now: clock})
	require.NoError(t, err)
}

func TestVerifyEnveloped_Rejects(t *testing.T) {
	p, rogue := testPKIs(t)
	signed := func(t *testing.T, key *pki) *etree.Document {
		doc := serviceList()
		require.NoError(t, soap.SignEnveloped(doc.Root(), key.key, soap.EnvelopedOptions{IDAttr: "Id", XAdES: true, Now: clock, Certificates: []*x509.Certificate{key.cert}}))
		return reparse(t, doc)
	}
	tests := []struct {
		name string
		doc  func(t *testing.T) *etree.Document
		now  time.Time
		want error
	}{
		{"endpoint switched", func(t *testing.T) *etree.Document {
			d := signed(t, p)
			d.FindElement("//Endpoint[@Order='1']").SelectAttr("Status").Value = "ACTIVE"
			return d
		}, testNow, soap.ErrDigest},
		{"signing time changed", func(t *testing.T) *etree.Document {
			d := signed(t, p)
			d.FindElement("//xades:SigningTime").SetText("2030-01-01T00:00:00.000Z")
			return d
		}, testNow, soap.ErrDigest},
		{"signature value changed", func(t *testing.T) *etree.Document {
			d := signed(t, p)
			sv := d.FindElement("//ds:SignatureValue")
			sv.SetText("AAAA" + sv.Text()[4:])
			return d
		}, testNow, soap.ErrSignature},
		{"untrusted signer", func(t *testing.T) *etree.Document { return signed(t, rogue) }, testNow, soap.ErrUntrusted},
		{"certificate expired", func(t *testing.T) *etree.Document { return signed(t, p) }, testNow.Add(400 * 24 * time.Hour), soap.ErrUntrusted},
		{"no signature", func(t *testing.T) *etree.Document { return reparse(t, serviceList()) }, testNow, soap.ErrNoSignature},
		{"reference to another element", func(t *testing.T) *etree.Document {
			d := signed(t, p)
			d.Root().SelectAttr("Id").Value = "_other"
			return d
		}, testNow, soap.ErrMissingReference},
		{"duplicate id", func(t *testing.T) *etree.Document {
			d := signed(t, p)
			d.FindElement("//Service").CreateAttr("Id", "_list-1")
			return d
		}, testNow, soap.ErrDuplicateID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := soap.VerifyEnveloped(tt.doc(t).Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: func() time.Time { return tt.now }})
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// The acceptance list of December 2022 was re-indented after signing,
// SignedInfo included: xmlsec1, which digests the references first, reports
// the first reference; ehgate checks the SignatureValue over SignedInfo before
// digesting anything, so the re-indented SignedInfo is what it refuses.
func TestVerifyEnveloped_RejectsReindentedAcceptanceList(t *testing.T) {
	raw, err := os.ReadFile("testdata/servicelist-acceptance-2022-12.xml")
	require.NoError(t, err)
	doc, err := soap.ParseDocument(bytes.NewReader(raw), soap.Limits{})
	require.NoError(t, err)

	// Trust the list's own signer, so nothing but the digest can fail.
	xc := doc.FindElement("//ds:X509Certificate")
	der := decodeB64(t, xc.Text())
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	at := time.Date(2022, 12, 20, 12, 0, 0, 0, time.UTC)

	_, err = soap.VerifyEnveloped(doc.Root(), roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: func() time.Time { return at }})
	require.ErrorIs(t, err, soap.ErrSignature)
}

func TestEnveloped_WholeDocumentReferenceOnlyForTheRoot(t *testing.T) {
	p, _ := testPKIs(t)
	req := etree.NewElement("samlp:Request")
	req.CreateAttr("xmlns:samlp", soap.NSSAMLP)
	env := soap.NewEnvelope(req)
	require.Error(t, soap.SignEnveloped(req, p.key, soap.EnvelopedOptions{Certificates: []*x509.Certificate{p.cert}}))

	// A signature over the whole envelope does not vouch for the nested request.
	require.NoError(t, soap.SignEnveloped(env.Root(), p.key, soap.EnvelopedOptions{Certificates: []*x509.Certificate{p.cert}}))
	sig := env.Root().SelectElement("ds:Signature")
	env.Root().RemoveChild(sig)
	req.AddChild(sig)
	_, err := soap.VerifyEnveloped(req, p.roots, soap.VerifyEnvelopedOptions{Now: clock})
	require.ErrorIs(t, err, soap.ErrWrapped)
}

func TestVerifyEnveloped_BoundsReferences(t *testing.T) {
	p, _ := testPKIs(t)
	doc := serviceList()
	require.NoError(t, soap.SignEnveloped(doc.Root(), p.key, soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{p.cert}}))
	si := doc.FindElement("//ds:SignedInfo")
	ref := si.SelectElement("ds:Reference")
	for range 20 {
		si.AddChild(ref.Copy())
	}
	_, err := soap.VerifyEnveloped(reparse(t, doc).Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: clock})
	require.ErrorIs(t, err, soap.ErrAlgorithm)
}

func TestVerifyEnveloped_XAdESSigningCertificateMustMatch(t *testing.T) {
	p, _ := testPKIs(t)
	doc := serviceList()
	// Sign with the pharmacy key but declare the CA as the signing certificate
	// in XAdES, while KeyInfo shows the pharmacy's certificate.
	require.NoError(t, soap.SignEnveloped(doc.Root(), p.key, soap.EnvelopedOptions{IDAttr: "Id", XAdES: true, Now: clock,
		Certificates: []*x509.Certificate{p.ca}}))
	ki := doc.FindElement("//ds:X509Certificate")
	ki.SetText(b64(p.cert.Raw))
	_, err := soap.VerifyEnveloped(reparse(t, doc).Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: clock})
	require.ErrorIs(t, err, soap.ErrUntrusted)
	require.ErrorContains(t, err, "SigningCertificate")
}

func TestSignEnveloped_RefusesToSignTwice(t *testing.T) {
	p, _ := testPKIs(t)
	doc := serviceList()
	opts := soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{p.cert}}
	require.NoError(t, soap.SignEnveloped(doc.Root(), p.key, opts))
	require.ErrorContains(t, soap.SignEnveloped(doc.Root(), p.key, opts), "already")
	_, err := soap.VerifyEnveloped(doc.Root(), p.roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Now: clock})
	require.NoError(t, err)
}
