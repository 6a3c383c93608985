package platformtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/x500"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start starts a platform closed at the end of the test.
func start(t *testing.T, cfg platformtest.Config) *platformtest.Platform {
	t.Helper()
	p, err := platformtest.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// outsider is a key and a self-signed certificate the platform never saw.
var outsider = sync.OnceValues(func() (*rsa.PrivateKey, *x509.Certificate) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "outsider"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return k, c
})

// tokenRequest builds a SAML-P 1.1 token request body (docs/wire/sts.md) for
// id with holder-of-key certificate hok, claiming claims and asking for
// designators.
// The names are written as the official connector writes them (RFC 1779) and the designators
// the identity's profile requires come first.
func tokenRequest(id *platformtest.Identity, hok *x509.Certificate, claims, designators []platformtest.Attribute) *etree.Element {
	subject, err := x500.RFC1779(id.Certificate.RawSubject)
	if err != nil {
		panic(err)
	}
	issuer, err := x500.RFC1779(id.Certificate.RawIssuer)
	if err != nil {
		panic(err)
	}
	return tokenRequestNamed(id, hok, subject, issuer, claims, append(id.RequiredDesignators(), designators...))
}

// tokenRequestNamed is tokenRequest with the given names and exactly the given designators.
func tokenRequestNamed(id *platformtest.Identity, hok *x509.Certificate, subject, issuer string, claims, designators []platformtest.Attribute) *etree.Element {
	req := etree.NewElement("samlp:Request")
	req.CreateAttr("xmlns:samlp", soap.NSSAMLP)
	req.CreateAttr("xmlns:saml", soap.NSSAML)
	req.CreateAttr("xmlns:ds", soap.NSDSig)
	req.CreateAttr("MajorVersion", "1")
	req.CreateAttr("MinorVersion", "1")
	req.CreateAttr("RequestID", "_req1")
	req.CreateAttr("IssueInstant", time.Now().UTC().Format(time.RFC3339))
	q := req.CreateElement("samlp:AttributeQuery")
	s := q.CreateElement("saml:Subject")
	ni := s.CreateElement("saml:NameIdentifier")
	ni.CreateAttr("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName")
	ni.CreateAttr("NameQualifier", issuer)
	ni.SetText(subject)
	sc := s.CreateElement("saml:SubjectConfirmation")
	sc.CreateElement("saml:ConfirmationMethod").SetText("urn:oasis:names:tc:SAML:1.0:cm:holder-of-key")
	inner := sc.CreateElement("saml:SubjectConfirmationData").CreateElement("saml:Assertion")
	inner.CreateAttr("AssertionID", "_inner")
	inner.CreateAttr("Issuer", subject)
	inner.CreateAttr("IssueInstant", time.Now().UTC().Format(time.RFC3339))
	inner.CreateAttr("MajorVersion", "1")
	inner.CreateAttr("MinorVersion", "1")
	cond := inner.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", time.Now().UTC().Format(time.RFC3339))
	cond.CreateAttr("NotOnOrAfter", time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)) // asks 24 h
	st := inner.CreateElement("saml:AttributeStatement")
	ini := st.CreateElement("saml:Subject").CreateElement("saml:NameIdentifier")
	ini.CreateAttr("NameQualifier", issuer)
	ini.SetText(subject)
	for _, a := range claims {
		at := st.CreateElement("saml:Attribute")
		at.CreateAttr("AttributeNamespace", a.Namespace)
		at.CreateAttr("AttributeName", a.Name)
		at.CreateElement("saml:AttributeValue").SetText(a.Value)
	}
	sc.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(hok.Raw))
	for _, a := range designators {
		d := q.CreateElement("saml:AttributeDesignator")
		d.CreateAttr("AttributeNamespace", a.Namespace)
		d.CreateAttr("AttributeName", a.Name)
	}
	return req
}

// signWithCert signs body with WS-Security, the certificate sent as
// BinarySecurityToken and signed too (the STS's sp:ProtectTokens).
func signWithCert(t testing.TB, key *rsa.PrivateKey, cert *x509.Certificate, body *etree.Element) []byte {
	t.Helper()
	s, err := soap.NewSigner(soap.SignerConfig{Key: key, Certificate: cert, SignToken: true})
	require.NoError(t, err)
	b, err := s.Sign(soap.NewEnvelope(body))
	require.NoError(t, err)
	return b
}

// signWithToken signs body as the holder of assertion.
func signWithToken(t testing.TB, key *rsa.PrivateKey, assertion []byte, body *etree.Element) []byte {
	t.Helper()
	s, err := soap.NewSigner(soap.SignerConfig{Key: key, Assertion: assertion})
	require.NoError(t, err)
	b, err := s.Sign(soap.NewEnvelope(body))
	require.NoError(t, err)
	return b
}

// post sends a SOAP request and returns the status and body.
func post(t testing.TB, c *http.Client, url, action string, msg []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(msg))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+action+`"`)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// answer parses a SOAP answer: its body's first element or its fault.
func answer(t testing.TB, b []byte) (*etree.Element, *soap.Fault) {
	t.Helper()
	el, err := soap.ReadResponse(bytes.NewReader(b), soap.Limits{})
	var f *soap.Fault
	if errors.As(err, &f) {
		return nil, f
	}
	require.NoError(t, err)
	return el, nil
}

// requireRejected checks a SOA-01001 fault answer.
func requireRejected(t *testing.T, status int, b []byte) {
	t.Helper()
	require.Equal(t, http.StatusInternalServerError, status, string(b))
	_, f := answer(t, b)
	require.NotNil(t, f, string(b))
	require.Equal(t, "soapenv:Client", f.Code)
	require.Equal(t, []string{"SOA-01001"}, f.FaultCodes())
}

// issue asks site's STS for a token of id, holder-of-key = id's certificate,
// and returns the assertion as issued.
func issue(t testing.TB, p *platformtest.Platform, site string, id *platformtest.Identity) []byte {
	t.Helper()
	msg := signWithCert(t, id.Key, id.Certificate, tokenRequest(id, id.Certificate, id.Claims(), id.Certified()))
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceSTS, site), platformtest.ActionSTS, msg)
	require.Equal(t, http.StatusOK, status, string(b))
	resp, f := answer(t, b)
	require.Nil(t, f)
	require.Equal(t, "samlp:Success", resp.FindElement("./Status/StatusCode").SelectAttrValue("Value", ""), string(b))
	a := resp.SelectElement("Assertion")
	require.NotNil(t, a)
	doc := etree.NewDocument()
	doc.SetRoot(a.Copy())
	out, err := doc.WriteToBytes()
	require.NoError(t, err)
	return out
}

func mustParse(t testing.TB, b []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(b))
	return doc.Root()
}

// ssinCheckOK recomputes an SSIN's check digits (docs/wire/insurability.md).
func ssinCheckOK(s string, from2000 bool) bool {
	if len(s) != 11 {
		return false
	}
	n := new(big.Int)
	if _, ok := n.SetString(s[:9], 10); !ok {
		return false
	}
	if from2000 {
		n.Add(n, big.NewInt(2_000_000_000))
	}
	check := 97 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	c := new(big.Int)
	if _, ok := c.SetString(s[9:], 10); !ok {
		return false
	}
	return c.Int64() == check
}

// signWithTokenAt signs as signWithToken with a clock at now.
func signWithTokenAt(t testing.TB, key *rsa.PrivateKey, assertion []byte, body *etree.Element, now time.Time) []byte {
	t.Helper()
	s, err := soap.NewSigner(soap.SignerConfig{Key: key, Assertion: assertion, Now: func() time.Time { return now }})
	require.NoError(t, err)
	b, err := s.Sign(soap.NewEnvelope(body))
	require.NoError(t, err)
	return b
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
