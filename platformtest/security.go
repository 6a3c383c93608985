package platformtest

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// STSIssuer is the Issuer of the assertions the STS issues.
const STSIssuer = "urn:be:fgov:ehealth:sts:1_0"

// tokenSkew is the tolerance on an assertion's NotBefore (clocks differ).
const tokenSkew = 5 * time.Minute

var (
	errTokenExpired = errors.New("token expired")
	errTokenFuture  = errors.New("token not yet valid")
)

// caller is who sent a verified business request.
type caller struct {
	verified   *soap.Verified
	attributes map[string]string // certified and identification attributes, by name
	identity   *Identity         // nil if the token's subject is no longer registered
}

// authenticate checks a business request as the real platform does: a
// WS-Security signature by the holder-of-key of an assertion the STS signed,
// unexpired on the service's clock, and a fresh timestamp. A non-nil reply
// is the rejection to send.
func (p *Platform) authenticate(x *exchange) (*caller, *reply) {
	v, err := soap.NewVerifier(soap.VerifierConfig{
		Assertion: func(a *etree.Element) (*x509.Certificate, error) { return p.checkAssertion(x, a) },
		Now:       x.now,
	})
	if err != nil {
		r := soapFault("soapenv:Server", "verifier: "+err.Error(), "SOA-02001")
		return nil, &r
	}
	ver, err := v.Verify(x.body)
	if err != nil {
		if errors.Is(err, soap.ErrMalformed) || errors.Is(err, soap.ErrNotEnvelope) || errors.Is(err, soap.ErrLimit) || errors.Is(err, soap.ErrDoctype) {
			r := badRequest(err.Error())
			return nil, &r
		}
		r := rejected(err.Error())
		return nil, &r
	}
	if ver.Assertion == nil {
		r := rejected("no saml token in wsse:Security")
		return nil, &r
	}
	c := &caller{verified: ver, attributes: assertionAttributes(ver.Assertion)}
	p.tokMu.Lock()
	c.identity = p.tokenOwner[ver.Assertion.SelectAttrValue("AssertionID", "")]
	p.tokMu.Unlock()
	if ver.Body == nil {
		r := badRequest("empty soap body")
		return nil, &r
	}
	return c, nil
}

// checkAssertion validates an assertion found in wsse:Security and returns
// its holder-of-key certificate.
func (p *Platform) checkAssertion(x *exchange, a *etree.Element) (*x509.Certificate, error) {
	if a.Tag != "Assertion" || a.NamespaceURI() != soap.NSSAML {
		return nil, fmt.Errorf("not a saml 1.1 assertion")
	}
	if iss := a.SelectAttrValue("Issuer", ""); iss != STSIssuer {
		return nil, fmt.Errorf("assertion issuer %q is not the sts", iss)
	}
	if _, err := soap.VerifyEnveloped(a, p.STSRoots(), soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: x.now}); err != nil {
		return nil, fmt.Errorf("assertion signature: %w", err)
	}
	cond := child(a, "Conditions")
	if cond == nil {
		return nil, fmt.Errorf("assertion without conditions")
	}
	nb, err1 := time.Parse(time.RFC3339Nano, cond.SelectAttrValue("NotBefore", ""))
	noa, err2 := time.Parse(time.RFC3339Nano, cond.SelectAttrValue("NotOnOrAfter", ""))
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("assertion conditions unreadable")
	}
	now := x.now()
	switch {
	case x.fault.Kind == FaultExpiredToken:
		return nil, fmt.Errorf("%w (injected)", errTokenExpired)
	case now.Add(tokenSkew).Before(nb):
		return nil, errTokenFuture
	case !now.Before(noa):
		return nil, errTokenExpired
	}
	b64 := text(a, "AuthenticationStatement", "Subject", "SubjectConfirmation", "KeyInfo", "X509Data", "X509Certificate")
	if b64 == "" {
		return nil, fmt.Errorf("assertion without holder-of-key certificate")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		return nil, fmt.Errorf("holder-of-key certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// assertionAttributes returns the attributes of an assertion's
// AttributeStatement by name (first value).
func assertionAttributes(a *etree.Element) map[string]string {
	out := map[string]string{}
	for _, st := range a.ChildElements() {
		if st.Tag != "AttributeStatement" {
			continue
		}
		for _, at := range st.ChildElements() {
			if at.Tag != "Attribute" {
				continue
			}
			out[at.SelectAttrValue("AttributeName", "")] = text(at, "AttributeValue")
		}
	}
	return out
}
