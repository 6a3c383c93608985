package platformtest

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/x500"
)

// SAML 1.1 values the STS uses.
const (
	samlHolderOfKey = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
	samlX509PKI     = "urn:oasis:names:tc:SAML:1.0:am:X509-PKI"
	samlX509Subject = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
)

// STSSubject is the subject of the platform's STS certificate, as the real acceptance STS's
// (taktik/freehealth-connector compiled/RECIPE.1.9.1/examples/command-line/session.xml, the
// KeyInfo of a real acceptance assertion), in Java's RFC 1779 rendering.
const STSSubject = `CN="CBE=0809394427, IAMACC", OU=eHealth-platform Belgium, OU=EHEALTH-PLATFORM, OU="CBE=0809394427", OU=IAMACC, O=Federal Government, C=BE`

// stsSubject is STSSubject as a pkix.Name: one RDN per attribute, C first as encoded.
func stsSubject() pkix.Name {
	atv := func(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	ou := asn1.ObjectIdentifier{2, 5, 4, 11}
	return pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		atv(asn1.ObjectIdentifier{2, 5, 4, 6}, "BE"),
		atv(asn1.ObjectIdentifier{2, 5, 4, 10}, "Federal Government"),
		atv(ou, "IAMACC"),
		atv(ou, "CBE=0809394427"),
		atv(ou, "EHEALTH-PLATFORM"),
		atv(ou, "eHealth-platform Belgium"),
		atv(asn1.ObjectIdentifier{2, 5, 4, 3}, "CBE=0809394427, IAMACC"),
	}}
}

// samlTime formats t as SAML dateTimes are: UTC with milliseconds.
func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "_" + hex.EncodeToString(b[:])
}

// serveSTS answers a SAML-P 1.1 token request (docs/wire/sts.md).
func (p *Platform) serveSTS(x *exchange) reply {
	if r := checkAction(x, ActionSTS); r != nil {
		return *r
	}
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.providerCA.pool(), Now: x.now})
	if err != nil {
		r := soapFault("soapenv:Server", "verifier: "+err.Error(), "SOA-02001")
		return r
	}
	ver, err := v.Verify(x.body)
	if err != nil {
		if errors.Is(err, soap.ErrMalformed) || errors.Is(err, soap.ErrNotEnvelope) || errors.Is(err, soap.ErrLimit) || errors.Is(err, soap.ErrDoctype) {
			return badRequest(err.Error())
		}
		return rejected(err.Error())
	}
	req := ver.Body
	if req == nil || req.Tag != "Request" || req.NamespaceURI() != soap.NSSAMLP {
		return badRequest("body is not a samlp:Request")
	}
	requestID := req.SelectAttrValue("RequestID", "")
	if r := checkProtectTokens(ver); r != nil {
		return *r
	}
	id := p.identityByCert(ver.Certificate)
	if id == nil {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "identification certificate is not registered")
	}
	query := child(req, "AttributeQuery")
	subject := child(query, "Subject")
	conf := child(subject, "SubjectConfirmation")
	if query == nil || subject == nil || conf == nil {
		return badRequest("samlp:Request without AttributeQuery/Subject/SubjectConfirmation")
	}
	// The names must be the signing certificate's, as the official connector writes them
	// (Java's RFC 1779): the query's and the inner statement's NameIdentifier, its
	// NameQualifier, and the inner assertion's Issuer.
	inner := path(conf, "SubjectConfirmationData", "Assertion")
	if msg := checkNames(ver.Certificate, child(subject, "NameIdentifier"), child(child(orEmpty(inner), "AttributeStatement"), "Subject"), orEmpty(inner)); msg != "" {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", msg)
	}
	if m := text(conf, "ConfirmationMethod"); m != samlHolderOfKey {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "confirmation method must be holder-of-key")
	}
	hokB64 := text(conf, "KeyInfo", "X509Data", "X509Certificate")
	hokDER, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(hokB64), ""))
	if hokB64 == "" || err != nil {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "missing or unreadable holder-of-key certificate")
	}
	hok, err := x509.ParseCertificate(hokDER)
	if err != nil {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "unreadable holder-of-key certificate")
	}
	if !hok.Equal(ver.Certificate) {
		// A holder-of-key key other than the identification key proves its
		// possession by signing the samlp:Request.
		pool := x509.NewCertPool()
		pool.AddCert(hok)
		signer, err := soap.VerifyEnveloped(req, pool, soap.VerifyEnvelopedOptions{IDAttr: "RequestID", Now: x.now})
		if err != nil {
			return rejected("holder-of-key signature on samlp:Request: " + err.Error())
		}
		if !signer.Equal(hok) {
			return rejected("samlp:Request not signed by the holder-of-key certificate")
		}
	}
	// Claimed attributes must be the registered ones.
	registered := map[string]string{}
	for _, a := range id.Claims() {
		registered[a.Name] = a.Value
	}
	for name, value := range assertionAttributes(orEmpty(inner)) {
		if want, ok := registered[name]; ok && want != value {
			return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "claimed attribute "+name+" does not match the registered identity")
		}
	}
	// Every designator must be certifiable for this identity.
	available := map[string]Attribute{}
	for _, a := range append(id.Claims(), id.Certified()...) {
		available[a.Namespace+"\x00"+a.Name] = a
	}
	attrs := id.Claims()
	asked := map[string]bool{}
	for _, d := range query.ChildElements() {
		if d.Tag != "AttributeDesignator" {
			continue
		}
		ns, name := d.SelectAttrValue("AttributeNamespace", ""), d.SelectAttrValue("AttributeName", "")
		a, ok := available[ns+"\x00"+name]
		if !ok {
			return samlRefusal(requestID, x.now(), "samlp:RequestDenied", "attribute "+name+" cannot be certified for this identity")
		}
		asked[ns+"\x00"+name] = true
		if ns == NSCertified {
			attrs = append(attrs, a)
		}
	}
	if msg := missingDesignator(id, asked); msg != "" {
		return samlRefusal(requestID, x.now(), "samlp:RequestDenied", msg)
	}
	assertion, tok, err := p.issueAssertion(x, id, hok, attrs)
	if err != nil {
		return soapFault("soapenv:Server", "sts: "+err.Error(), "SOA-02001")
	}
	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", soap.NSSAMLP)
	resp.CreateAttr("ResponseID", newID())
	if requestID != "" {
		resp.CreateAttr("InResponseTo", requestID)
	}
	resp.CreateAttr("IssueInstant", samlTime(x.now()))
	resp.CreateAttr("MajorVersion", "1")
	resp.CreateAttr("MinorVersion", "1")
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "samlp:Success")
	resp.AddChild(assertion)
	rep := okEnvelope(resp, OutcomeOK)
	if rep.outcome == OutcomeOK {
		p.tokMu.Lock()
		p.tokens = append(p.tokens, tok)
		p.tokenOwner[tok.AssertionID] = id
		p.tokMu.Unlock()
	}
	return rep
}

// checkProtectTokens refuses a request whose WS-Security signature does not cover the
// BinarySecurityToken: the STS's WS-SecurityPolicy has sp:ProtectTokens.
func checkProtectTokens(ver *soap.Verified) *reply {
	if ver.TokenSigned {
		return nil
	}
	r := badRequest("policy violation: the signature does not cover the BinarySecurityToken (sp:ProtectTokens)")
	r.outcome = OutcomeRejected
	return &r
}

// checkNames returns why the request's names are not the signing certificate's (RFC 1779,
// as the official connector writes them), or "" when they are. subjects are saml:Subject or
// saml:NameIdentifier elements (nil ones are skipped); inner is the inner assertion.
func checkNames(cert *x509.Certificate, query, innerSubject, inner *etree.Element) string {
	subject, err1 := x500.RFC1779(cert.RawSubject)
	issuer, err2 := x500.RFC1779(cert.RawIssuer)
	if err1 != nil || err2 != nil {
		return "certificate names unreadable"
	}
	if query == nil {
		return "no saml:NameIdentifier"
	}
	for _, ni := range []*etree.Element{query, child(innerSubject, "NameIdentifier")} {
		if ni == nil {
			continue
		}
		if strings.TrimSpace(ni.Text()) != subject {
			return "NameIdentifier does not match the certificate's subject"
		}
		if ni.SelectAttrValue("NameQualifier", "") != issuer {
			return "NameQualifier does not match the certificate's issuer"
		}
	}
	if inner != nil && inner.Tag == "Assertion" && inner.SelectAttrValue("Issuer", "") != subject {
		return "inner assertion Issuer does not match the certificate's subject"
	}
	return ""
}

// missingDesignator names the first designator id's profile needs that asked lacks, or "".
func missingDesignator(id *Identity, asked map[string]bool) string {
	for _, d := range id.RequiredDesignators() {
		if !asked[d.Namespace+"\x00"+d.Name] {
			return "designator " + d.Name + " required for this profile"
		}
	}
	return ""
}

func orEmpty(el *etree.Element) *etree.Element {
	if el == nil {
		return etree.NewElement("empty")
	}
	return el
}

// samlRefusal answers a token request the STS refuses: a samlp:Response
// with a non-success status, as the real STS does.
func samlRefusal(requestID string, now time.Time, subCode, message string) reply {
	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", soap.NSSAMLP)
	resp.CreateAttr("ResponseID", newID())
	if requestID != "" {
		resp.CreateAttr("InResponseTo", requestID)
	}
	resp.CreateAttr("IssueInstant", samlTime(now))
	resp.CreateAttr("MajorVersion", "1")
	resp.CreateAttr("MinorVersion", "1")
	st := resp.CreateElement("samlp:Status")
	code := st.CreateElement("samlp:StatusCode")
	code.CreateAttr("Value", "samlp:Requester")
	code.CreateElement("samlp:StatusCode").CreateAttr("Value", subCode)
	st.CreateElement("samlp:StatusMessage").SetText(message)
	return okEnvelope(resp, OutcomeBusiness)
}

// issueAssertion builds and signs a holder-of-key assertion for id.
func (p *Platform) issueAssertion(x *exchange, id *Identity, hok *x509.Certificate, attrs []Attribute) (*etree.Element, IssuedToken, error) {
	now := x.now()
	notBefore, notOnOrAfter := now, now.Add(p.cfg.TokenLifetime)
	if x.fault.Kind == FaultExpiredToken {
		notBefore, notOnOrAfter = now.Add(-p.cfg.TokenLifetime-time.Hour), now.Add(-time.Hour)
	}
	aid := newID()
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", soap.NSSAML)
	a.CreateAttr("xmlns:ds", soap.NSDSig)
	a.CreateAttr("AssertionID", aid)
	a.CreateAttr("IssueInstant", samlTime(now))
	a.CreateAttr("Issuer", STSIssuer)
	a.CreateAttr("MajorVersion", "1")
	a.CreateAttr("MinorVersion", "1")
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", samlTime(notBefore))
	cond.CreateAttr("NotOnOrAfter", samlTime(notOnOrAfter))
	authn := a.CreateElement("saml:AuthenticationStatement")
	authn.CreateAttr("AuthenticationInstant", samlTime(now))
	authn.CreateAttr("AuthenticationMethod", samlX509PKI)
	subject := func(parent *etree.Element, withKey bool) {
		s := parent.CreateElement("saml:Subject")
		ni := s.CreateElement("saml:NameIdentifier")
		ni.CreateAttr("Format", samlX509Subject)
		ni.CreateAttr("NameQualifier", id.Certificate.Issuer.String())
		ni.SetText(id.Certificate.Subject.String())
		if withKey {
			sc := s.CreateElement("saml:SubjectConfirmation")
			sc.CreateElement("saml:ConfirmationMethod").SetText(samlHolderOfKey)
			sc.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(hok.Raw))
		}
	}
	// As the real STS: the holder-of-key confirmation in the AuthenticationStatement's
	// Subject only; the AttributeStatement's Subject names the subject.
	subject(authn, true)
	st := a.CreateElement("saml:AttributeStatement")
	subject(st, false)
	for _, at := range attrs {
		e := st.CreateElement("saml:Attribute")
		e.CreateAttr("AttributeName", at.Name)
		e.CreateAttr("AttributeNamespace", at.Namespace)
		e.CreateElement("saml:AttributeValue").SetText(at.Value)
	}
	if err := soap.SignEnveloped(a, p.stsKey, soap.EnvelopedOptions{IDAttr: "AssertionID", Certificates: []*x509.Certificate{p.stsCert}, Now: x.now}); err != nil {
		return nil, IssuedToken{}, fmt.Errorf("sign assertion: %w", err)
	}
	if x.fault.Kind == FaultBadSTSSignature {
		if sv := path(a, "Signature", "SignatureValue"); sv != nil {
			b, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), ""))
			if len(b) > 0 {
				b[len(b)/2] ^= 0x55
			}
			sv.SetText(base64.StdEncoding.EncodeToString(b))
		}
	}
	return a, IssuedToken{AssertionID: aid, Site: x.site.name, Subject: id.Name, NotBefore: notBefore, NotOnOrAfter: notOnOrAfter}, nil
}
