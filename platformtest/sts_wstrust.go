package platformtest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// WS-Trust 1.3 names of the STS (ehealth-iam-sts-ws-trust-1.3-proxy-v1_X509.wsdl).
const (
	nsWST             = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	wstTokenTypeSAML  = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
	wstIssue          = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
	wstRenew          = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew"
	wstKeyTypePublic  = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey"
	wstClaimsDialect  = "http://docs.oasis-open.org/wsfed/authorization/200706/authclaims"
	wstChallengeValid = 5 * time.Minute
)

// pendingChallenge is an Issue waiting for the holder-of-key's signed challenge response.
type pendingChallenge struct {
	id        *Identity
	hok       *x509.Certificate
	attrs     []Attribute
	challenge string
	until     time.Time
}

// wstRefusal is the WS-Trust STS's refusal: a SOAP fault (WS-Trust has no status element).
func wstRefusal(code, reason string) reply {
	r := soapFault("soapenv:Client", code+": "+reason, "")
	r.outcome = OutcomeBusiness
	return r
}

// serveSTSWSTrust answers the WS-Trust STS: RequestSecurityToken (Issue, or Renew of a token it
// issued) and Challenge. It checks what the SAML-P STS checks: a WS-Security signature by a
// registered certificate that also covers the BinarySecurityToken, claimed values that are the
// registered ones, designators (ClaimTypes without a value) the identity has, and every
// designator its profile needs. When the holder-of-key certificate (UseKey) is not the signing
// one, it asks the holder to sign a challenge first (wst:SignChallenge), as the real STS does.
func (p *Platform) serveSTSWSTrust(x *exchange) reply {
	action := strings.Trim(strings.TrimSpace(x.r.Header.Get("SOAPAction")), `"`)
	if action != "" && action != ActionSTSWSTrust && action != ActionSTSChallenge {
		return badRequest("unknown SOAPAction " + action)
	}
	roots := p.providerCA.pool()
	if action == ActionSTSChallenge {
		// The challenge response is signed by the holder-of-key certificate of the pending
		// Issue (named by the Context), whatever its CA.
		pc, ok := p.pendingFor(x.body)
		if !ok {
			return wstRefusal("wst:InvalidRequest", "no challenge pending for this Context")
		}
		roots = x509.NewCertPool()
		roots.AddCert(pc.hok)
	}
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: roots, Now: x.now})
	if err != nil {
		return soapFault("soapenv:Server", "verifier: "+err.Error(), "SOA-02001")
	}
	ver, err := v.Verify(x.body)
	if err != nil {
		return rejected(err.Error())
	}
	if r := checkProtectTokens(ver); r != nil {
		return *r
	}
	body := ver.Body
	if body == nil || body.NamespaceURI() != nsWST {
		return badRequest("body is not a WS-Trust message")
	}
	context := body.SelectAttrValue("Context", "")
	if context == "" {
		return wstRefusal("wst:InvalidRequest", "no Context")
	}
	if body.Tag == "RequestSecurityTokenResponse" {
		return p.wstChallengeAnswered(x, ver, body, context)
	}
	if body.Tag != "RequestSecurityToken" {
		return badRequest("body is not a wst:RequestSecurityToken")
	}
	if text(body, "TokenType") != wstTokenTypeSAML {
		return wstRefusal("wst:InvalidRequest", "TokenType must be SAML 1.1")
	}
	id := p.identityByCert(ver.Certificate)
	if id == nil {
		return wstRefusal("wst:FailedAuthentication", "identification certificate is not registered")
	}
	switch text(body, "RequestType") {
	case wstIssue:
		return p.wstIssue(x, ver, id, body, context)
	case wstRenew:
		return p.wstRenew(x, id, body, context)
	}
	return wstRefusal("wst:InvalidRequest", "RequestType must be Issue or Renew")
}

func (p *Platform) wstIssue(x *exchange, ver *soap.Verified, id *Identity, rst *etree.Element, context string) reply {
	claims := child(rst, "Claims")
	if claims == nil || claims.SelectAttrValue("Dialect", "") != wstClaimsDialect {
		return wstRefusal("wst:InvalidRequest", "Claims of the authclaims dialect required")
	}
	if text(rst, "KeyType") != wstKeyTypePublic {
		return wstRefusal("wst:InvalidRequest", "KeyType must be PublicKey")
	}
	b64 := text(rst, "UseKey", "SecurityTokenReference", "X509Data", "X509Certificate")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if b64 == "" || err != nil {
		return wstRefusal("wst:InvalidRequest", "missing or unreadable UseKey certificate")
	}
	hok, err := x509.ParseCertificate(der)
	if err != nil {
		return wstRefusal("wst:InvalidRequest", "unreadable UseKey certificate")
	}
	registered := map[string]string{}
	for _, a := range id.Claims() {
		registered[a.Name] = a.Value
	}
	available := map[string]Attribute{}
	for _, a := range append(id.Claims(), id.Certified()...) {
		available[a.Name] = a
	}
	asked := map[string]bool{}
	attrs := id.Claims()
	for _, ct := range claims.ChildElements() {
		if ct.Tag != "ClaimType" {
			continue
		}
		name := ct.SelectAttrValue("Uri", "")
		if val := child(ct, "Value"); val != nil {
			if want, ok := registered[name]; !ok || want != strings.TrimSpace(val.Text()) {
				return wstRefusal("wst:RequestFailed", "claimed attribute "+name+" does not match the registered identity")
			}
		}
		a, ok := available[name]
		if !ok {
			return wstRefusal("wst:RequestFailed", "attribute "+name+" cannot be certified for this identity")
		}
		for _, d := range []string{NSIdentification, NSCertified} {
			asked[d+"\x00"+name] = true
		}
		if a.Namespace == NSCertified {
			attrs = append(attrs, a)
		}
	}
	if msg := missingDesignator(id, asked); msg != "" {
		return wstRefusal("wst:RequestFailed", msg)
	}
	if !hok.Equal(ver.Certificate) {
		// Proof of possession of the holder-of-key key: a challenge it must sign.
		ch := newID()
		p.tokMu.Lock()
		if p.challenges == nil {
			p.challenges = map[string]pendingChallenge{}
		}
		for k, c := range p.challenges {
			if x.now().After(c.until) {
				delete(p.challenges, k)
			}
		}
		p.challenges[context] = pendingChallenge{id: id, hok: hok, attrs: attrs, challenge: ch, until: x.now().Add(wstChallengeValid)}
		p.tokMu.Unlock()
		rstr := wstResponse(context)
		rstr.CreateElement("wst:SignChallenge").CreateElement("wst:Challenge").SetText(ch)
		return okEnvelope(rstr, OutcomeOK)
	}
	return p.wstIssued(x, id, hok, attrs, context)
}

// pendingFor returns the pending challenge of the Context of msg's body, unverified (the
// caller verifies the message with the holder-of-key certificate it names).
func (p *Platform) pendingFor(msg []byte) (pendingChallenge, bool) {
	doc, err := soap.Parse(bytes.NewReader(msg), soap.Limits{})
	if err != nil {
		return pendingChallenge{}, false
	}
	body, err := soap.BodyContent(doc)
	if err != nil || body == nil {
		return pendingChallenge{}, false
	}
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	pc, ok := p.challenges[body.SelectAttrValue("Context", "")]
	return pc, ok
}

// wstChallengeAnswered issues the token of a pending Issue once its holder-of-key signed the
// challenge back.
func (p *Platform) wstChallengeAnswered(x *exchange, ver *soap.Verified, rstr *etree.Element, context string) reply {
	p.tokMu.Lock()
	pc, ok := p.challenges[context]
	if ok {
		delete(p.challenges, context)
	}
	p.tokMu.Unlock()
	switch {
	case !ok || x.now().After(pc.until):
		return wstRefusal("wst:InvalidRequest", "no challenge pending for this Context")
	case text(rstr, "SignChallengeResponse", "Challenge") != pc.challenge:
		return wstRefusal("wst:FailedAuthentication", "challenge response does not match")
	case !ver.Certificate.Equal(pc.hok):
		return rejected("challenge response not signed by the holder-of-key certificate")
	}
	return p.wstIssued(x, pc.id, pc.hok, pc.attrs, context)
}

// wstRenew issues a new token for a token this STS issued to the same identity.
func (p *Platform) wstRenew(x *exchange, id *Identity, rst *etree.Element, context string) reply {
	old := path(rst, "RenewTarget", "SecurityTokenReference", "Embedded", "Assertion")
	if old == nil || old.NamespaceURI() != soap.NSSAML {
		return wstRefusal("wst:InvalidRequest", "RenewTarget must embed a saml:Assertion")
	}
	hok, err := p.checkAssertion(x, old)
	if err != nil {
		return wstRefusal("wst:InvalidRequest", "renew target: "+err.Error())
	}
	p.tokMu.Lock()
	owner := p.tokenOwner[old.SelectAttrValue("AssertionID", "")]
	p.tokMu.Unlock()
	if owner != id {
		return wstRefusal("wst:FailedAuthentication", "renew target was not issued to this identity")
	}
	var attrs []Attribute
	for _, st := range old.ChildElements() {
		if st.Tag != "AttributeStatement" {
			continue
		}
		for _, a := range st.ChildElements() {
			if a.Tag == "Attribute" {
				attrs = append(attrs, Attribute{a.SelectAttrValue("AttributeNamespace", ""), a.SelectAttrValue("AttributeName", ""), text(a, "AttributeValue")})
			}
		}
	}
	return p.wstIssued(x, id, hok, attrs, context)
}

// wstResponse is an empty wst:RequestSecurityTokenResponse answering context.
func wstResponse(context string) *etree.Element {
	rstr := etree.NewElement("wst:RequestSecurityTokenResponse")
	rstr.CreateAttr("xmlns:wst", nsWST)
	rstr.CreateAttr("Context", context)
	return rstr
}

// wstIssued answers with a new token in a RequestSecurityTokenResponseCollection.
func (p *Platform) wstIssued(x *exchange, id *Identity, hok *x509.Certificate, attrs []Attribute, context string) reply {
	assertion, tok, err := p.issueAssertion(x, id, hok, attrs)
	if err != nil {
		return soapFault("soapenv:Server", "sts: "+err.Error(), "SOA-02001")
	}
	coll := etree.NewElement("wst:RequestSecurityTokenResponseCollection")
	coll.CreateAttr("xmlns:wst", nsWST)
	rstr := coll.CreateElement("wst:RequestSecurityTokenResponse")
	rstr.CreateAttr("Context", context)
	rstr.CreateElement("wst:TokenType").SetText(wstTokenTypeSAML)
	rstr.CreateElement("wst:RequestedSecurityToken").AddChild(assertion)
	life := rstr.CreateElement("wst:Lifetime")
	life.CreateAttr("xmlns:wsu", soap.NSWSU)
	life.CreateElement("wsu:Created").SetText(samlTime(tok.NotBefore))
	life.CreateElement("wsu:Expires").SetText(samlTime(tok.NotOnOrAfter))
	rep := okEnvelope(coll, OutcomeOK)
	if rep.outcome == OutcomeOK {
		p.tokMu.Lock()
		p.tokens = append(p.tokens, tok)
		p.tokenOwner[tok.AssertionID] = id
		p.tokMu.Unlock()
	}
	return rep
}
