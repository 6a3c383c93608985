package soap_test

import (
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// With SignToken the signature covers Body, Timestamp and the BinarySecurityToken (the STS's
// sp:ProtectTokens); without it, as on business calls, Body and Timestamp only.
func TestSign_SignTokenCoversTheBinarySecurityToken(t *testing.T) {
	p, _ := testPKIs(t)
	for _, signToken := range []bool{false, true} {
		s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock, SignToken: signToken})
		require.NoError(t, err)
		msg, err := s.Sign(soap.NewEnvelope(insurabilityRequest()))
		require.NoError(t, err)
		doc := parseMsg(t, msg)
		refs := doc.FindElements("//ds:SignedInfo/ds:Reference")
		bstID := find(t, doc, "//wsse:BinarySecurityToken").SelectAttrValue("wsu:Id", "")
		var uris []string
		for _, r := range refs {
			uris = append(uris, r.SelectAttrValue("URI", ""))
		}
		if signToken {
			require.Len(t, uris, 3)
			require.Contains(t, uris, "#"+bstID)
		} else {
			require.Len(t, uris, 2)
			require.NotContains(t, uris, "#"+bstID)
		}
		got, err := newVerifier(t, p, testNow.Add(10*time.Second)).Verify(msg)
		require.NoError(t, err)
		require.Equal(t, signToken, got.TokenSigned)

		// A token changed after signing is caught when it was signed.
		if signToken {
			bad := tamper(t, msg, func(doc *etree.Document) {
				doc.FindElement("//wsse:BinarySecurityToken").CreateAttr("Extra", "x")
			})
			_, err = newVerifier(t, p, testNow.Add(10*time.Second)).Verify(bad)
			require.ErrorIs(t, err, soap.ErrDigest)
		}
	}
	_, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Assertion: []byte(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" AssertionID="a"/>`), SignToken: true})
	require.Error(t, err, "SignToken with an assertion")
}

// xmlsec1, an independent implementation, verifies the three references.
func TestXMLSec_VerifiesSignedToken(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock, SignToken: true})
	require.NoError(t, err)
	msg, err := s.Sign(soap.NewEnvelope(insurabilityRequest()))
	require.NoError(t, err)
	dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
	args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem", "--id-attr:Id", soap.NSWSSE + ":BinarySecurityToken"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
	require.NoError(t, err, "xmlsec1 rejects ehgate's signature:\n%s\n%s", out, msg)
	require.Contains(t, string(out), "SignedInfo References (ok/all): 3/3")
}
