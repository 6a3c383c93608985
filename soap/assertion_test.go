package soap_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// issueAssertion returns a SAML 1.1 holder-of-key assertion for holder,
// enveloped-signed by the STS key, serialised with single-quoted attributes
// and an XML declaration as an STS might: bytes no re-serialisation would
// reproduce, so byte-exactness is observable.
func issueAssertion(t testing.TB, sts *pki, holder *x509.Certificate) []byte {
	t.Helper()
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", soap.NSSAML)
	a.CreateAttr("MajorVersion", "1")
	a.CreateAttr("MinorVersion", "1")
	a.CreateAttr("AssertionID", "_9d1e4c0e8f2b4a7c")
	a.CreateAttr("Issuer", "urn:be:fgov:ehealth:sts:1_0")
	a.CreateAttr("IssueInstant", "2026-03-02T09:00:00.000Z")
	c := a.CreateElement("saml:Conditions")
	c.CreateAttr("NotBefore", "2026-03-02T09:00:00.000Z")
	c.CreateAttr("NotOnOrAfter", "2026-03-02T14:00:00.000Z")
	st := a.CreateElement("saml:AttributeStatement")
	subj := st.CreateElement("saml:Subject")
	subj.CreateElement("saml:NameIdentifier").SetText(holder.Subject.String())
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateElement("saml:ConfirmationMethod").SetText("urn:oasis:names:tc:SAML:1.0:cm:holder-of-key")
	ki := sc.CreateElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", soap.NSDSig)
	ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(holder.Raw))
	at := st.CreateElement("saml:Attribute")
	at.CreateAttr("AttributeName", "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean")
	at.CreateAttr("AttributeNamespace", "urn:be:fgov:certified-namespace:ehealth")
	at.CreateElement("saml:AttributeValue").SetText("true")
	require.NoError(t, soap.SignEnveloped(a, sts.key, soap.EnvelopedOptions{IDAttr: "AssertionID", Certificates: []*x509.Certificate{sts.cert}}))

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(a)
	doc.WriteSettings.AttrSingleQuote = true
	b, err := doc.WriteToBytes()
	require.NoError(t, err)
	return b
}

// assertionCheck is the Verifier's Assertion callback of a platform: the STS
// signature, then the holder-of-key certificate.
func assertionCheck(sts *pki) func(a *etree.Element) (*x509.Certificate, error) {
	return func(a *etree.Element) (*x509.Certificate, error) {
		if _, err := soap.VerifyEnveloped(a, sts.roots, soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: clock}); err != nil {
			return nil, err
		}
		xc := a.FindElement(".//saml:SubjectConfirmation/ds:KeyInfo/ds:X509Data/ds:X509Certificate")
		if xc == nil {
			return nil, errors.New("no holder-of-key certificate")
		}
		der, err := base64.StdEncoding.DecodeString(xc.Text())
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
}

func TestSign_AssertionTravelsByteExactAndVerifies(t *testing.T) {
	p, sts := testPKIs(t) // the second PKI plays the STS
	raw := issueAssertion(t, sts, p.cert)
	element := raw[bytes.Index(raw, []byte("<saml:Assertion")):]
	require.Contains(t, string(element), "MajorVersion='1'", "the fixture must not look like etree's own output")

	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Assertion: raw, Now: clock})
	require.NoError(t, err)
	env := soap.NewEnvelope(insurabilityRequest())
	msg, err := s.Sign(env)
	require.NoError(t, err)
	require.True(t, bytes.Contains(msg, bytes.TrimSpace(element)), "assertion not byte-exact in:\n%s", msg)
	require.Contains(t, string(msg), `ValueType="http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID">_9d1e4c0e8f2b4a7c<`)

	v, err := soap.NewVerifier(soap.VerifierConfig{Assertion: assertionCheck(sts), Now: clock})
	require.NoError(t, err)
	got, err := v.Verify(msg)
	require.NoError(t, err)
	require.True(t, got.Certificate.Equal(p.cert))
	require.Equal(t, "_9d1e4c0e8f2b4a7c", got.Assertion.SelectAttrValue("AssertionID", ""))

	// env now holds the assertion too, as sent.
	require.NotNil(t, env.FindElement("//wsse:Security/saml:Assertion"))
}

func TestVerify_AssertionFailures(t *testing.T) {
	p, sts := testPKIs(t)
	raw := issueAssertion(t, sts, p.cert)
	sign := func(key *pki, assertion []byte) []byte {
		s, err := soap.NewSigner(soap.SignerConfig{Key: key.key, Assertion: assertion, Now: clock})
		require.NoError(t, err)
		msg, err := s.Sign(soap.NewEnvelope(insurabilityRequest()))
		require.NoError(t, err)
		return msg
	}
	verifier := func(check func(*etree.Element) (*x509.Certificate, error)) *soap.Verifier {
		v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Assertion: check, Now: clock})
		require.NoError(t, err)
		return v
	}

	t.Run("signed with a key other than the holder's", func(t *testing.T) {
		_, err := verifier(assertionCheck(sts)).Verify(sign(sts, raw))
		require.ErrorIs(t, err, soap.ErrSignature)
	})
	t.Run("assertion altered", func(t *testing.T) {
		altered := bytes.Replace(raw, []byte(">true<"), []byte(">false<"), 1)
		_, err := verifier(assertionCheck(sts)).Verify(sign(p, altered))
		require.ErrorIs(t, err, soap.ErrUntrusted)
		require.ErrorIs(t, err, soap.ErrDigest, "the cause stays visible")
	})
	t.Run("assertions not accepted", func(t *testing.T) {
		_, err := verifier(nil).Verify(sign(p, raw))
		require.ErrorIs(t, err, soap.ErrUntrusted)
	})
	t.Run("assertion from an untrusted sts", func(t *testing.T) {
		_, err := verifier(assertionCheck(p)).Verify(sign(p, raw))
		require.ErrorIs(t, err, soap.ErrUntrusted)
	})
	t.Run("key identifier pointing elsewhere", func(t *testing.T) {
		msg := sign(p, raw)
		msg = bytes.Replace(msg, []byte(`>_9d1e4c0e8f2b4a7c</wsse:KeyIdentifier>`), []byte(`>nothing</wsse:KeyIdentifier>`), 1)
		_, err := verifier(assertionCheck(sts)).Verify(msg)
		require.ErrorIs(t, err, soap.ErrMissingReference)
	})
	t.Run("still valid later", func(t *testing.T) {
		v, err := soap.NewVerifier(soap.VerifierConfig{Assertion: assertionCheck(sts), Now: func() time.Time { return testNow.Add(30 * time.Second) }})
		require.NoError(t, err)
		_, err = v.Verify(sign(p, raw))
		require.NoError(t, err)
		require.False(t, strings.Contains(string(raw), "wsse"))
	})
}
