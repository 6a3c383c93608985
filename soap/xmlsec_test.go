package soap_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// Interoperability with xmlsec1 (libxmlsec1, an independent implementation of
// XML Signature and exclusive C14N). CI installs it; elsewhere the tests skip.

func xmlsec1(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmlsec1")
	if err != nil {
		t.Skip("xmlsec1 not installed (Debian: apt-get install xmlsec1); interoperability not tested")
	}
	return path
}

// idAttrs declares the ID attributes of a signed SOAP message to xmlsec1.
var idAttrs = []string{
	"--id-attr:Id", soap.NSEnvelope + ":Body",
	"--id-attr:Id", soap.NSWSU + ":Timestamp",
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	return dir
}

func runXMLSec(t *testing.T, bin, dir string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func TestXMLSec_VerifiesWhatEhgateSigns(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	msg := signedRequest(t, p)
	tampered := bytes.Replace(msg, []byte("00000000097"), []byte("00000000196"), 1)
	dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "tampered.xml": tampered, "cert.pem": p.certPEM})

	args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
	require.NoError(t, err, "xmlsec1 rejects ehgate's signature:\n%s\n%s", out, msg)
	require.Contains(t, string(out), "SignedInfo References (ok/all): 2/2")

	out, err = runXMLSec(t, bin, dir, append(args, "tampered.xml")...)
	require.Error(t, err, "xmlsec1 accepted a tampered body:\n%s", out)
}

// wsTemplate is a WS-Security message as another stack would lay it out
// (indented, different prefixes, Timestamp after the token), with an empty
// signature for xmlsec1 to fill in.
const wsTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <S:Header>
    <o:Security xmlns:o="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" S:mustUnderstand="1">
      <o:BinarySecurityToken u:Id="tok-1" ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">%s</o:BinarySecurityToken>
      <u:Timestamp u:Id="ts-1">
        <u:Created>%s</u:Created>
        <u:Expires>%s</u:Expires>
      </u:Timestamp>
      <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
        <SignedInfo>
          <CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
          <Reference URI="#ts-1">
            <Transforms><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>
            <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <DigestValue/>
          </Reference>
          <Reference URI="#body-1">
            <Transforms><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>
            <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
            <DigestValue/>
          </Reference>
        </SignedInfo>
        <SignatureValue/>
        <KeyInfo>
          <o:SecurityTokenReference><o:Reference URI="#tok-1" ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"/></o:SecurityTokenReference>
        </KeyInfo>
      </Signature>
    </o:Security>
  </S:Header>
  <S:Body u:Id="body-1">
    <GetInsurabilityForPharmacistRequest xmlns="urn:be:fgov:ehealth:insurability:protocol:v2" xmlns:c="urn:be:fgov:ehealth:insurability:core:v2">
      <c:InsurabilityRequest>
        <c:Date>2026-03-02</c:Date>
        <c:CareReceiver><c:Ssin>00000000097</c:Ssin></c:CareReceiver>
        <c:Note xml:lang="nl">a &amp; b &lt; c — "é"</c:Note>
      </c:InsurabilityRequest>
    </GetInsurabilityForPharmacistRequest>
  </S:Body>
</S:Envelope>
`

func TestXMLSec_EhgateVerifiesWhatXMLSecSigns(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	tmpl := fmt.Sprintf(wsTemplate, b64(p.cert.Raw),
		testNow.Format(time.RFC3339), testNow.Add(5*time.Minute).Format(time.RFC3339))
	dir := writeFiles(t, map[string][]byte{"tmpl.xml": []byte(tmpl), "key.pem": p.keyPEM})

	args := append([]string{"--sign", "--privkey-pem", "key.pem", "--output", "signed.xml"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "tmpl.xml")...)
	require.NoError(t, err, "xmlsec1 --sign:\n%s", out)
	signed, err := os.ReadFile(filepath.Join(dir, "signed.xml"))
	require.NoError(t, err)

	got, err := newVerifier(t, p, testNow).Verify(signed)
	require.NoError(t, err, "ehgate rejects xmlsec1's signature:\n%s", signed)
	require.Equal(t, "GetInsurabilityForPharmacistRequest", got.Body.Tag)
	require.True(t, got.Certificate.Equal(p.cert))

	_, err = newVerifier(t, p, testNow).Verify(bytes.Replace(signed, []byte("00000000097"), []byte("00000000196"), 1))
	require.ErrorIs(t, err, soap.ErrDigest)
}

// WSS4J and .NET stacks add ec:InclusiveNamespaces prefix lists to the
// exc-c14n transforms; ehgate must honour them as xmlsec1 does.
func TestXMLSec_EhgateVerifiesInclusiveNamespacePrefixLists(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	ec := `<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="%s"/>`
	tmpl := fmt.Sprintf(wsTemplate, b64(p.cert.Raw),
		testNow.Format(time.RFC3339), testNow.Add(5*time.Minute).Format(time.RFC3339))
	tmpl = strings.Replace(tmpl,
		`<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
		`<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">`+fmt.Sprintf(ec, "o S")+`</CanonicalizationMethod>`, 1)
	tmpl = strings.Replace(tmpl,
		`<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
		`<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">`+fmt.Sprintf(ec, "u o")+`</Transform>`, 1)
	tmpl = strings.Replace(tmpl,
		`<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
		`<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">`+fmt.Sprintf(ec, "S u c #default")+`</Transform>`, 1)
	require.Equal(t, 3, strings.Count(tmpl, "InclusiveNamespaces"))
	dir := writeFiles(t, map[string][]byte{"tmpl.xml": []byte(tmpl), "key.pem": p.keyPEM})

	args := append([]string{"--sign", "--privkey-pem", "key.pem", "--output", "signed.xml"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "tmpl.xml")...)
	require.NoError(t, err, "xmlsec1 --sign:\n%s", out)
	signed, err := os.ReadFile(filepath.Join(dir, "signed.xml"))
	require.NoError(t, err)

	_, err = newVerifier(t, p, testNow).Verify(signed)
	require.NoError(t, err, "ehgate rejects xmlsec1's signature with prefix lists:\n%s", signed)
}

// "#default" in a prefix list outputs the default namespace in force (here
// declared on the Envelope), which goxmldsig alone would leave out.
func TestXMLSec_EhgateVerifiesDefaultInPrefixList(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	tmpl := fmt.Sprintf(wsTemplate, b64(p.cert.Raw),
		testNow.Format(time.RFC3339), testNow.Add(5*time.Minute).Format(time.RFC3339))
	tmpl = strings.Replace(tmpl, `<S:Envelope `, `<S:Envelope xmlns="urn:envelope-default" `, 1)
	tmpl = strings.Replace(tmpl, `<Reference URI="#body-1">
            <Transforms><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>`,
		`<Reference URI="#body-1">
            <Transforms><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="#default"/></Transform></Transforms>`, 1)
	require.Contains(t, tmpl, "#default")
	dir := writeFiles(t, map[string][]byte{"tmpl.xml": []byte(tmpl), "key.pem": p.keyPEM})
	args := append([]string{"--sign", "--privkey-pem", "key.pem", "--output", "signed.xml"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "tmpl.xml")...)
	require.NoError(t, err, "xmlsec1 --sign:\n%s", out)
	signed, err := os.ReadFile(filepath.Join(dir, "signed.xml"))
	require.NoError(t, err)
	_, err = newVerifier(t, p, testNow).Verify(signed)
	require.NoError(t, err, "%s", signed)
}

func TestXMLSec_EnvelopedBothWays(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)

	// ehgate signs a service list with XAdES; xmlsec1 verifies both references.
	doc := serviceList()
	require.NoError(t, soap.SignEnveloped(doc.Root(), p.key, soap.EnvelopedOptions{IDAttr: "Id", XAdES: true, Now: clock, Certificates: []*x509.Certificate{p.cert}}))
	list, err := soap.Marshal(doc)
	require.NoError(t, err)
	dir := writeFiles(t, map[string][]byte{"list.xml": list, "cert.pem": p.certPEM, "key.pem": p.keyPEM, "tmpl.xml": []byte(listTemplate)})
	out, err := runXMLSec(t, bin, dir, "--verify", "--pubkey-cert-pem", "cert.pem",
		"--id-attr:Id", nsBCP+":ServiceList", "--id-attr:Id", soap.NSXAdES+":SignedProperties", "list.xml")
	require.NoError(t, err, "xmlsec1 rejects ehgate's enveloped signature:\n%s\n%s", out, list)
	require.Contains(t, string(out), "SignedInfo References (ok/all): 2/2")

	// xmlsec1 signs a list (URI=""); ehgate verifies it.
	// The key file is followed by its certificate, which xmlsec1 writes into the template's X509Data.
	out, err = runXMLSec(t, bin, dir, "--sign", "--privkey-pem", "key.pem,cert.pem", "--output", "signed.xml", "tmpl.xml")
	require.NoError(t, err, "xmlsec1 --sign:\n%s", out)
	signed, err := os.ReadFile(filepath.Join(dir, "signed.xml"))
	require.NoError(t, err)
	back, err := soap.ParseDocument(bytes.NewReader(signed), soap.Limits{})
	require.NoError(t, err)
	signer, err := soap.VerifyEnveloped(back.Root(), p.roots, soap.VerifyEnvelopedOptions{Now: clock})
	require.NoError(t, err, "ehgate rejects xmlsec1's enveloped signature:\n%s", signed)
	require.True(t, signer.Equal(p.cert))

	back.FindElement("//Endpoint").SetText("https://attacker.example/Insurability/v2")
	_, err = soap.VerifyEnveloped(back.Root(), p.roots, soap.VerifyEnvelopedOptions{Now: clock})
	require.ErrorIs(t, err, soap.ErrDigest)
}

const listTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v1" Id="_l" IssueInstant="2026-03-02T09:00:00.000+01:00" Environment="Acceptation">
    <Service Id="uddi:ehealth-fgov-be:business:insurability:v2" Name="INSURABILITY V2">
        <Endpoint Order="0" Status="ACTIVE">https://services-acpt.ehealth.fgov.be/Insurability/v2</Endpoint>
    </Service>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue/>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
  </ds:Signature>
</ServiceList>
`

// An envelope written by hand, with the body's namespaces declared on the
// Envelope and indentation everywhere: the digests must be taken with the
// ancestors' namespaces in scope, as xmlsec1 takes them.
func TestXMLSec_VerifiesSignedEnvelopeWithInheritedNamespaces(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	const src = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ins="urn:be:fgov:ehealth:insurability:protocol:v2" xmlns:core="urn:be:fgov:ehealth:insurability:core:v2" xmlns="urn:default">
  <soap:Body>
    <ins:GetInsurabilityForPharmacistRequest>
      <core:CareReceiver><core:Ssin>00000000097</core:Ssin></core:CareReceiver>
      <Unqualified attr="tab	and newline
">text with CR&#13; kept</Unqualified>
    </ins:GetInsurabilityForPharmacistRequest>
  </soap:Body>
</soap:Envelope>`
	env, err := soap.Parse(bytes.NewReader([]byte(src)), soap.Limits{})
	require.NoError(t, err)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	msg, err := s.Sign(env)
	require.NoError(t, err)

	_, err = newVerifier(t, p, testNow).Verify(msg)
	require.NoError(t, err)

	dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
	args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem"}, idAttrs...)
	out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
	require.NoError(t, err, "xmlsec1:\n%s\n%s", out, msg)
}

func TestXMLSec_VerifiesAwkwardBodies(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	for i, body := range awkwardBodies {
		doc, err := soap.ParseDocument(bytes.NewReader([]byte(body)), soap.Limits{})
		require.NoError(t, err)
		root := doc.Root()
		doc.RemoveChild(root)
		msg, err := s.Sign(soap.NewEnvelope(root))
		require.NoError(t, err)
		dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
		args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem"}, idAttrs...)
		out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
		require.NoError(t, err, "body %d:\n%s\n%s", i, out, msg)
	}
}

// TestXMLSec_AgreesOnGeneratedBodies signs random namespace-heavy bodies and
// has xmlsec1 verify them (locally, 277 of 400 generated bodies were
// signable and all verified; the test runs 20).
func TestXMLSec_AgreesOnGeneratedBodies(t *testing.T) {
	bin := xmlsec1(t)
	p, _ := testPKIs(t)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(t, err)
	v := newVerifier(t, p, testNow)
	r := rand.New(rand.NewPCG(1, 2))
	signed := 0
	for signed < 20 {
		body := genElement(r, 3, nil)
		doc, err := soap.ParseDocument(strings.NewReader(body), soap.Limits{})
		if err != nil {
			continue // e.g. an undeclared prefix
		}
		root := doc.Root()
		doc.RemoveChild(root)
		msg, err := s.Sign(soap.NewEnvelope(root))
		if err != nil {
			continue
		}
		signed++
		_, err = v.Verify(msg)
		require.NoError(t, err, "%s", body)
		dir := writeFiles(t, map[string][]byte{"msg.xml": msg, "cert.pem": p.certPEM})
		args := append([]string{"--verify", "--pubkey-cert-pem", "cert.pem"}, idAttrs...)
		out, err := runXMLSec(t, bin, dir, append(args, "msg.xml")...)
		require.NoError(t, err, "xmlsec1 disagrees on body %q:\n%s", body, out)
	}
}

// genElement writes a random element tree mixing prefixes, default
// namespaces and their undeclaration, declarations at any level, xml:
// attributes, escaped text, CDATA and comments.
func genElement(r *rand.Rand, depth int, declared []string) string {
	prefixes := []string{"", "a", "b", "c"}
	var b strings.Builder
	decl := ""
	nd := append([]string{}, declared...)
	// random declarations
	for _, p := range prefixes {
		if r.IntN(4) == 0 {
			uri := []string{"urn:1", "urn:2", "urn:3", ""}[r.IntN(4)]
			if p == "" {
				decl += fmt.Sprintf(` xmlns="%s"`, uri)
			} else if uri != "" {
				decl += fmt.Sprintf(` xmlns:%s="%s"`, p, uri)
				nd = append(nd, p)
			}
		}
	}
	p := ""
	if len(nd) > 0 && r.IntN(2) == 0 {
		p = nd[r.IntN(len(nd))] + ":"
	}
	name := p + []string{"x", "y", "z"}[r.IntN(3)]
	b.WriteString("<" + name + decl)
	used := map[string]bool{}
	for i := 0; i < r.IntN(4); i++ {
		ap := ""
		if len(nd) > 0 && r.IntN(2) == 0 {
			ap = nd[r.IntN(len(nd))] + ":"
		}
		if r.IntN(5) == 0 {
			ap = "xml:"
		}
		k := ap + []string{"k", "l", "m", "n"}[r.IntN(4)]
		if used[k] {
			continue
		}
		used[k] = true
		b.WriteString(fmt.Sprintf(` %s="%s"`, k, []string{"v", "a&amp;b", "t\tn", "&#13;", "\"q\"", "&lt;"}[r.IntN(6)]))
	}
	b.WriteString(">")
	if depth > 0 {
		for i := 0; i < r.IntN(3); i++ {
			switch r.IntN(5) {
			case 0:
				b.WriteString("text&amp;<![CDATA[<c>]]>\r\n")
			case 1:
				b.WriteString("<!--c-->")
			default:
				b.WriteString(genElement(r, depth-1, nd))
			}
		}
	}
	b.WriteString("</" + name + ">")
	return b.String()
}
