package platformtest_test

import (
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/x500"
)

func TestSTS_IssuesSignedHolderOfKeyAssertionWithConfiguredLifetime(t *testing.T) {
	p := start(t, platformtest.Config{TokenLifetime: 2 * time.Hour})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	require.NoError(t, err)

	raw := issue(t, p, "ehealth", id)
	a := mustParse(t, raw)

	signer, err := soap.VerifyEnveloped(a, p.STSRoots(), soap.VerifyEnvelopedOptions{IDAttr: "AssertionID"})
	require.NoError(t, err)
	require.True(t, signer.Equal(p.STSCertificate()))
	require.Equal(t, platformtest.STSIssuer, a.SelectAttrValue("Issuer", ""))
	require.NotEmpty(t, a.SelectAttrValue("AssertionID", ""))

	cond := a.SelectElement("Conditions")
	nb, err := time.Parse(time.RFC3339, cond.SelectAttrValue("NotBefore", ""))
	require.NoError(t, err)
	noa, err := time.Parse(time.RFC3339, cond.SelectAttrValue("NotOnOrAfter", ""))
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, noa.Sub(nb), "the STS grants its lifetime, not the 24 h asked")

	hokB64 := a.FindElement("./AuthenticationStatement/Subject/SubjectConfirmation/KeyInfo/X509Data/X509Certificate").Text()
	der, err := base64.StdEncoding.DecodeString(hokB64)
	require.NoError(t, err)
	hok, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.True(t, hok.Equal(id.Certificate))
	require.Equal(t, "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key",
		a.FindElement("./AuthenticationStatement/Subject/SubjectConfirmation/ConfirmationMethod").Text())

	attrs := map[string]string{}
	for _, at := range a.FindElements("./AttributeStatement/Attribute") {
		attrs[at.SelectAttrValue("AttributeName", "")] = at.SelectElement("AttributeValue").Text()
	}
	require.Equal(t, "true", attrs[platformtest.AttrRecognisedPharmacy])
	require.Equal(t, id.NIHII11, attrs[platformtest.AttrPharmacyHolderNIHII11])
	require.Equal(t, id.NIHII, attrs[platformtest.AttrPharmacyNIHII])

	require.Equal(t, 1, p.TokensIssued())
	tok := p.Tokens()[0]
	require.Equal(t, a.SelectAttrValue("AssertionID", ""), tok.AssertionID)
	require.Equal(t, "ehealth", tok.Site)
	require.Equal(t, 1, p.Count("ehealth", platformtest.ServiceSTS, platformtest.OutcomeOK))
}

func TestSTS_AcceptsSeparateHolderOfKeyProvenBySignedRequest(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.GP, "Dr. Peeters")
	require.NoError(t, err)
	hokKey, hokCert := outsider() // a session key, not from any CA

	unsigned := signWithCert(t, id.Key, id.Certificate, tokenRequest(id, hokCert, id.Claims(), id.Certified()))
	status, b := post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, unsigned)
	requireRejected(t, status, b)

	req := tokenRequest(id, hokCert, id.Claims(), id.Certified())
	require.NoError(t, soap.SignEnveloped(req, hokKey, soap.EnvelopedOptions{IDAttr: "RequestID", Certificates: []*x509.Certificate{hokCert}, Before: "AttributeQuery"})) // the schema puts ds:Signature before the query
	status, b = post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, signWithCert(t, id.Key, id.Certificate, req))
	require.Equal(t, http.StatusOK, status, string(b))
	resp, f := answer(t, b)
	require.Nil(t, f)
	a := resp.SelectElement("Assertion")
	require.NotNil(t, a, string(b))
	require.Equal(t, base64.StdEncoding.EncodeToString(hokCert.Raw),
		a.FindElement("./AuthenticationStatement/Subject/SubjectConfirmation/KeyInfo/X509Data/X509Certificate").Text())
}

func TestSTS_RefusesWhatTheRealSTSRefuses(t *testing.T) {
	p := start(t, platformtest.Config{})
	pharmacy, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Zuid")
	require.NoError(t, err)
	gp, err := p.NewIdentity(platformtest.GP, "Dr. Maes")
	require.NoError(t, err)
	oKey, oCert := outsider()

	tampered := func() []byte {
		msg := signWithCert(t, pharmacy.Key, pharmacy.Certificate, tokenRequest(pharmacy, pharmacy.Certificate, pharmacy.Claims(), pharmacy.Certified()))
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(msg))
		doc.FindElement("//AttributeDesignator").CreateAttr("AttributeName", platformtest.AttrDoctorBoolean)
		b, err := doc.WriteToBytes()
		require.NoError(t, err)
		return b
	}
	wrongClaim := pharmacy.Claims()
	for i := range wrongClaim {
		if wrongClaim[i].Name == platformtest.AttrPharmacyNIHII {
			wrongClaim[i].Value = "99999999"
		}
	}

	// Go's RFC 2253 names, as ehgate wrote them before: not the certificate's RFC 1779 names.
	goNames := tokenRequestNamed(pharmacy, pharmacy.Certificate, pharmacy.Certificate.Subject.String(), pharmacy.Certificate.Issuer.String(),
		pharmacy.Claims(), pharmacy.RequiredDesignators())
	otherName := tokenRequestNamed(pharmacy, pharmacy.Certificate, gp.Certificate.Subject.String(), pharmacy.Certificate.Issuer.String(),
		pharmacy.Claims(), pharmacy.RequiredDesignators())
	// Two designators of the official configuration, as ehgate asked before.
	twoDesignators := tokenRequestNamed(pharmacy, pharmacy.Certificate, rfc1779(t, pharmacy.Certificate.RawSubject), rfc1779(t, pharmacy.Certificate.RawIssuer),
		pharmacy.Claims(), pharmacy.Certified()[:2])
	bodyAndTimestampOnly := func() []byte {
		s, err := soap.NewSigner(soap.SignerConfig{Key: pharmacy.Key, Certificate: pharmacy.Certificate})
		require.NoError(t, err)
		b, err := s.Sign(soap.NewEnvelope(tokenRequest(pharmacy, pharmacy.Certificate, pharmacy.Claims(), pharmacy.Certified())))
		require.NoError(t, err)
		return b
	}

	tests := []struct {
		name    string
		msg     []byte
		fault   bool   // SOAP fault SOA-01001
		message string // else: samlp status message
	}{
		{"names in Go's rendering", signWithCert(t, pharmacy.Key, pharmacy.Certificate, goNames), false, "NameIdentifier does not match"},
		{"names of another certificate", signWithCert(t, pharmacy.Key, pharmacy.Certificate, otherName), false, "NameIdentifier does not match"},
		{"pharmacy lacking designators", signWithCert(t, pharmacy.Key, pharmacy.Certificate, twoDesignators), false, "required for this profile"},
		{"unknown certificate", signWithCert(t, oKey, oCert, tokenRequest(pharmacy, oCert, pharmacy.Claims(), pharmacy.Certified())), true, ""},
		{"body altered after signing", tampered(), true, ""},
		{"gp asking pharmacy attributes", signWithCert(t, gp.Key, gp.Certificate, tokenRequest(gp, gp.Certificate, gp.Claims(), pharmacy.Certified())), false, "cannot be certified"},
		{"claimed nihii not the registered one", signWithCert(t, pharmacy.Key, pharmacy.Certificate, tokenRequest(pharmacy, pharmacy.Certificate, wrongClaim, pharmacy.Certified())), false, "does not match"},
	}
	t.Run("signature not covering the token", func(t *testing.T) {
		status, b := post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, bodyAndTimestampOnly())
		require.Equal(t, http.StatusInternalServerError, status)
		_, f := answer(t, b)
		require.NotNil(t, f)
		require.Contains(t, f.String, "sp:ProtectTokens")
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, tt.msg)
			if tt.fault {
				requireRejected(t, status, b)
				return
			}
			require.Equal(t, http.StatusOK, status)
			resp, f := answer(t, b)
			require.Nil(t, f)
			require.Equal(t, "samlp:Requester", resp.FindElement("./Status/StatusCode").SelectAttrValue("Value", ""))
			require.Contains(t, resp.FindElement("./Status/StatusMessage").Text(), tt.message)
			require.Nil(t, resp.SelectElement("Assertion"))
		})
	}
	require.Zero(t, p.TokensIssued())
}

func TestSTS_ClockSkewShiftsTheIssuedConditions(t *testing.T) {
	p := start(t, platformtest.Config{TokenLifetime: time.Hour})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Klok")
	require.NoError(t, err)
	p.Site("ehealth").Inject("sts", platformtest.Fault{Kind: platformtest.FaultClockSkew, Skew: -3 * time.Hour})
	body := func() *etree.Element { return tokenRequest(id, id.Certificate, id.Claims(), id.Certified()) }
	status, b := post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, signWithCert(t, id.Key, id.Certificate, body()))
	requireRejected(t, status, b) // a fresh timestamp is 3 h in the STS's future

	s, err := soap.NewSigner(soap.SignerConfig{Key: id.Key, Certificate: id.Certificate, SignToken: true, Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }})
	require.NoError(t, err)
	msg, err := s.Sign(soap.NewEnvelope(body()))
	require.NoError(t, err)
	status, b = post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionSTS, msg)
	require.Equal(t, http.StatusOK, status, string(b))
	resp, f := answer(t, b)
	require.Nil(t, f)
	a := resp.SelectElement("Assertion")
	require.NotNil(t, a, string(b))
	noa, err := time.Parse(time.RFC3339, a.SelectElement("Conditions").SelectAttrValue("NotOnOrAfter", ""))
	require.NoError(t, err)
	require.True(t, noa.Before(time.Now()), "issued by a clock 3 h late, a 1 h token is already over: %v", noa)
	require.Equal(t, -3*time.Hour, p.Site("ehealth").Fault("sts").Skew)
}

func TestSTS_RejectsAnotherOperationsSOAPAction(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.GP, "Dr. Actie")
	require.NoError(t, err)
	msg := signWithCert(t, id.Key, id.Certificate, tokenRequest(id, id.Certificate, id.Claims(), id.Certified()))
	status, b := post(t, p.HTTPClient(), p.URL("sts", "ehealth"), platformtest.ActionInsurability, msg)
	require.Equal(t, http.StatusInternalServerError, status)
	_, f := answer(t, b)
	require.NotNil(t, f)
	require.Equal(t, "soapenv:Client", f.Code)
	require.Contains(t, f.String, "SOAPAction")
	require.Equal(t, 1, p.Count("ehealth", "sts", platformtest.OutcomeBadRequest))
}

func rfc1779(t *testing.T, raw []byte) string {
	t.Helper()
	s, err := x500.RFC1779(raw)
	require.NoError(t, err)
	return s
}

// The WS-Trust STS refuses a request whose signature does not cover the BinarySecurityToken.
func TestSTS_WSTrustRefusesASignatureThatDoesNotCoverTheToken(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Trust")
	require.NoError(t, err)
	rst := etree.NewElement("wst:RequestSecurityToken")
	rst.CreateAttr("xmlns:wst", "http://docs.oasis-open.org/ws-sx/ws-trust/200512")
	rst.CreateAttr("Context", "urn:uuid:6f1c1f4e-1111-4222-8333-944455556666")
	rst.CreateElement("wst:TokenType").SetText("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1")
	rst.CreateElement("wst:RequestType").SetText("http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue")
	s, err := soap.NewSigner(soap.SignerConfig{Key: id.Key, Certificate: id.Certificate})
	require.NoError(t, err)
	msg, err := s.Sign(soap.NewEnvelope(rst))
	require.NoError(t, err)
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceSTSWSTrust, "ehealth"), platformtest.ActionSTSWSTrust, msg)
	require.Equal(t, http.StatusInternalServerError, status)
	_, f := answer(t, b)
	require.NotNil(t, f)
	require.Contains(t, f.String, "sp:ProtectTokens")
	require.Zero(t, p.TokensIssued())
}
