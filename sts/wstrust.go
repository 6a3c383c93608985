package sts

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// Dialect is the protocol of the token request.
type Dialect int

const (
	// DialectSAMLP is SAML-P 1.1 (samlp:Request with an AttributeQuery), the official
	// connector's, at the Saml11TokenService endpoint. The zero value.
	DialectSAMLP Dialect = iota
	// DialectWSTrust is WS-Trust 1.3 (wst:RequestSecurityToken, Issue and Renew) at the
	// SecurityTokenService endpoint, per the platform's
	// ehealth-iam-sts-ws-trust-1.3-proxy-v1_X509.wsdl.
	DialectWSTrust
)

// String returns "saml-p" or "ws-trust".
func (d Dialect) String() string {
	switch d {
	case DialectSAMLP:
		return "saml-p"
	case DialectWSTrust:
		return "ws-trust"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// WS-Trust 1.3 names and values of the platform's STS.
const (
	// SOAPActionWSTrust is the SOAPAction of a WS-Trust token request (the WSDL's
	// RequestSecurityToken operation).
	SOAPActionWSTrust = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"
	// SOAPActionChallenge is the SOAPAction of the answer to a sign challenge (the WSDL's
	// Challenge operation).
	SOAPActionChallenge = "urn:be:fgov:ehealth:sts:protocol:v1:Challenge"
	// ServiceNameWSTrust is the WS-Trust STS's short name in the service list.
	ServiceNameWSTrust = "iamsecuritytokenservice:v1"

	nsAuth          = "http://docs.oasis-open.org/wsfed/authorization/200706"
	tokenTypeSAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
	requestIssue    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
	requestRenew    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew"
	keyTypePublic   = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey"
	claimsDialect   = "http://docs.oasis-open.org/wsfed/authorization/200706/authclaims"
)

// buildWSTrust returns the wst:RequestSecurityToken of r (Issue), or, when renew is an
// assertion, a Renew of it, and its Context.
//
// Issue carries, as egelke/eHI library-core/Sts/WsTrust200512/WsTrustClient.cs sends it:
// TokenType SAML 1.1, RequestType Issue, Claims (authclaims dialect: each claimed attribute a
// ClaimType with its Value, each designator not claimed a ClaimType without one, named by
// AttributeName), Lifetime (Created, Expires), KeyType PublicKey and UseKey holding the
// holder-of-key certificate in a wsse:SecurityTokenReference. Renew carries TokenType,
// RequestType Renew and RenewTarget embedding the previous assertion (its canonical form, and
// so its STS signature, unchanged).
func (r tokenRequest) buildWSTrust(renew []byte) (*etree.Element, string, error) {
	context := "urn:uuid:" + uuidV4()
	rst := etree.NewElement("wst:RequestSecurityToken")
	rst.CreateAttr("xmlns:wst", nsWST)
	rst.CreateAttr("Context", context)
	rst.CreateElement("wst:TokenType").SetText(tokenTypeSAML11)
	if renew != nil {
		rst.CreateElement("wst:RequestType").SetText(requestRenew)
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(renew); err != nil || doc.Root() == nil {
			return nil, "", fmt.Errorf("sts: renew target: %v", err)
		}
		str := rst.CreateElement("wst:RenewTarget").CreateElement("wsse:SecurityTokenReference")
		str.CreateAttr("xmlns:wsse", soap.NSWSSE)
		str.CreateElement("wsse:Embedded").AddChild(doc.Root())
		return rst, context, nil
	}
	rst.CreateElement("wst:RequestType").SetText(requestIssue)
	claims := rst.CreateElement("wst:Claims")
	claims.CreateAttr("Dialect", claimsDialect)
	claims.CreateAttr("xmlns:auth", nsAuth)
	seen := map[string]bool{}
	for _, a := range r.claimed {
		ct := claims.CreateElement("auth:ClaimType")
		ct.CreateAttr("Uri", a.Name)
		ct.CreateElement("auth:Value").SetText(a.Value)
		seen[a.Name] = true
	}
	for _, d := range r.certified {
		if seen[d.Name] {
			continue
		}
		seen[d.Name] = true
		claims.CreateElement("auth:ClaimType").CreateAttr("Uri", d.Name)
	}
	life := rst.CreateElement("wst:Lifetime")
	life.CreateAttr("xmlns:wsu", soap.NSWSU)
	life.CreateElement("wsu:Created").SetText(r.now.UTC().Format(samlTime))
	life.CreateElement("wsu:Expires").SetText(r.now.Add(r.lifetime).UTC().Format(samlTime))
	rst.CreateElement("wst:KeyType").SetText(keyTypePublic)
	str := rst.CreateElement("wst:UseKey").CreateElement("wsse:SecurityTokenReference")
	str.CreateAttr("xmlns:wsse", soap.NSWSSE)
	x509Data := str.CreateElement("ds:X509Data")
	x509Data.CreateAttr("xmlns:ds", nsDSig)
	x509Data.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(r.holderOfKey.Certificate.Raw))
	return rst, context, nil
}

// uuidV4 returns a random RFC 4122 version 4 UUID.
func uuidV4() string {
	id := newID()[1:33] // 32 random hex digits
	b := []byte(id)
	b[12] = '4'
	b[16] = "89ab"[strings.IndexByte("0123456789abcdef", b[16])%4]
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[0:8], b[8:12], b[12:16], b[16:20], b[20:32])
}

// wsTrustAnswer is what a WS-Trust answer holds: a token, or a sign challenge to answer.
type wsTrustAnswer struct {
	rstr      *etree.Element // the wst:RequestSecurityTokenResponse
	challenge *etree.Element // its wst:SignChallenge, when the STS asks for one
}

// readWSTrust finds the one wst:RequestSecurityTokenResponse of body (alone or in a
// RequestSecurityTokenResponseCollection) answering context.
func readWSTrust(body *etree.Element, context string) (wsTrustAnswer, error) {
	var out wsTrustAnswer
	rstr := body
	if body.NamespaceURI() == nsWST && body.Tag == "RequestSecurityTokenResponseCollection" {
		var all []*etree.Element
		for _, c := range body.ChildElements() {
			if c.NamespaceURI() == nsWST && c.Tag == "RequestSecurityTokenResponse" {
				all = append(all, c)
			}
		}
		if len(all) != 1 {
			return out, fmt.Errorf("%w: %d wst:RequestSecurityTokenResponse in the collection, want one", ErrMalformedResponse, len(all))
		}
		rstr = all[0]
	}
	if rstr.NamespaceURI() != nsWST || rstr.Tag != "RequestSecurityTokenResponse" {
		return out, fmt.Errorf("%w: body is {%s}%s, want wst:RequestSecurityTokenResponse", ErrMalformedResponse, rstr.NamespaceURI(), rstr.Tag)
	}
	if c := rstr.SelectAttrValue("Context", ""); c != context {
		detail := "no Context"
		if rstr.SelectAttr("Context") != nil {
			detail = fmt.Sprintf("Context %q, ours %q", c, context)
		}
		return out, &ValidationError{Problem: ErrInResponseTo, Detail: detail}
	}
	out.rstr = rstr
	out.challenge = childNS(rstr, nsWST, "SignChallenge")
	if out.challenge == nil && childNS(rstr, nsWST, "RequestedSecurityToken") == nil {
		return out, fmt.Errorf("%w: wst:RequestSecurityTokenResponse holds neither wst:RequestedSecurityToken nor wst:SignChallenge", ErrMalformedResponse)
	}
	return out, nil
}

// challengeResponse is the wst:RequestSecurityTokenResponse answering a sign challenge: the
// same response with its SignChallenge renamed SignChallengeResponse (egelke/eHI
// WsTrustClient.cs Complete); the message carrying it is signed with the holder-of-key key.
func challengeResponse(a wsTrustAnswer) *etree.Element {
	out := a.rstr.Copy()
	out.CreateAttr("xmlns:wst", nsWST)
	for _, c := range out.ChildElements() {
		if c.NamespaceURI() == nsWST && c.Tag == "SignChallenge" {
			c.Space, c.Tag = "wst", "SignChallengeResponse"
		}
	}
	return out
}

// readWSTrustToken validates the assertion of a final WS-Trust answer.
func (v *validator) readWSTrustToken(raw []byte, a wsTrustAnswer, asked, now time.Time) (*Token, error) {
	rst := childNS(a.rstr, nsWST, "RequestedSecurityToken")
	if rst == nil {
		return nil, fmt.Errorf("%w: no wst:RequestedSecurityToken", ErrMalformedResponse)
	}
	if tt := childNS(a.rstr, nsWST, "TokenType"); tt != nil && strings.TrimSpace(tt.Text()) != tokenTypeSAML11 {
		return nil, fmt.Errorf("%w: TokenType %q, want SAML 1.1", ErrMalformedResponse, strings.TrimSpace(tt.Text()))
	}
	return v.onlyAssertion(raw, rst, true, asked, now)
}
