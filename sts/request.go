package sts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/beevik/etree"
)

// XML names of the SAML-P 1.1 token exchange.
const (
	nsSAMLP = "urn:oasis:names:tc:SAML:1.0:protocol"
	nsSAML  = "urn:oasis:names:tc:SAML:1.0:assertion"
	nsDSig  = "http://www.w3.org/2000/09/xmldsig#"
	nsWST   = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"

	// SOAPAction is the SOAPAction of the SAML-P 1.1 token request.
	SOAPAction = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecureToken"
	// DefaultIssuer is the Issuer of the assertions the eHealth STS issues.
	DefaultIssuer = "urn:be:fgov:ehealth:sts:1_0"
	// ServiceName is the short name of the STS in the service list.
	ServiceName = "iamsaml11tokenservice:v1"

	formatX509SubjectName = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
	methodHolderOfKey     = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"

	// samlTime is the xsd:dateTime layout used on the wire (UTC, milliseconds).
	samlTime = "2006-01-02T15:04:05.000Z"
)

// tokenRequest is the content of one token request.
type tokenRequest struct {
	// subject and issuer are the identification certificate's names as the official
	// connector writes them (Java's RFC 1779 rendering, x500.RFC1779).
	subject, issuer string
	holderOfKey     *Credential
	claimed         []resolvedAttribute
	certified       []Designator
	now             time.Time
	lifetime        time.Duration
}

// newID returns a fresh XML ID (an NCName: "_" then 40 hex digits).
func newID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "_" + hex.EncodeToString(b[:])
}

// build returns the samlp:Request element (detached, with its namespace declarations) and its
// RequestID. Signing is done by the caller.
func (r tokenRequest) build() (*etree.Element, string) {
	subject, issuer := r.subject, r.issuer
	instant := r.now.UTC().Format(samlTime)
	requestID := newID()

	req := etree.NewElement("samlp:Request")
	req.CreateAttr("xmlns:samlp", nsSAMLP)
	req.CreateAttr("xmlns:saml", nsSAML)
	req.CreateAttr("xmlns:ds", nsDSig)
	req.CreateAttr("MajorVersion", "1")
	req.CreateAttr("MinorVersion", "1")
	req.CreateAttr("RequestID", requestID)
	req.CreateAttr("IssueInstant", instant)

	query := req.CreateElement("samlp:AttributeQuery")
	subj := query.CreateElement("saml:Subject")
	nameIdentifier(subj, subject, issuer)
	conf := subj.CreateElement("saml:SubjectConfirmation")
	conf.CreateElement("saml:ConfirmationMethod").SetText(methodHolderOfKey)

	// The inner assertion carries the requested validity and the claimed attributes.
	inner := conf.CreateElement("saml:SubjectConfirmationData").CreateElement("saml:Assertion")
	inner.CreateAttr("AssertionID", newID())
	inner.CreateAttr("IssueInstant", instant)
	inner.CreateAttr("Issuer", subject)
	inner.CreateAttr("MajorVersion", "1")
	inner.CreateAttr("MinorVersion", "1")
	cond := inner.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", instant)
	cond.CreateAttr("NotOnOrAfter", r.now.Add(r.lifetime).UTC().Format(samlTime))
	stmt := inner.CreateElement("saml:AttributeStatement")
	nameIdentifier(stmt.CreateElement("saml:Subject"), subject, issuer)
	for _, a := range r.claimed {
		attr := stmt.CreateElement("saml:Attribute")
		attr.CreateAttr("AttributeName", a.Name)
		attr.CreateAttr("AttributeNamespace", a.Namespace)
		attr.CreateElement("saml:AttributeValue").SetText(a.Value)
	}

	x509Data := conf.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	x509Data.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(r.holderOfKey.Certificate.Raw))

	for _, d := range r.certified {
		des := query.CreateElement("saml:AttributeDesignator")
		des.CreateAttr("AttributeName", d.Name)
		des.CreateAttr("AttributeNamespace", d.Namespace)
	}
	return req, requestID
}

func nameIdentifier(parent *etree.Element, subject, issuer string) {
	ni := parent.CreateElement("saml:NameIdentifier")
	ni.CreateAttr("Format", formatX509SubjectName)
	ni.CreateAttr("NameQualifier", issuer)
	ni.SetText(subject)
}
