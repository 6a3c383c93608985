package connector

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// The ETK depot, specs/etk.md.
const (
	NSETKProtocol = "urn:be:fgov:ehealth:etkdepot:1_0:protocol"
	ActionETK     = "urn:be:fgov:ehealth:etkdepot:1_0:protocol:v1:GetEtk"
	// ServiceETK is the short service-list name of the ETK depot.
	ServiceETK = "etkdepot:v1"
	// maxMatching bounds how many MatchingEtk identifiers are followed for one request.
	maxMatching = 16
)

// Identifier names a party in the ETK depot: Type is SSIN, NIHII, NIHII-PHARMACY, CBE, EHP, …
type Identifier struct {
	Type          string
	Value         string
	ApplicationID string // optional
}

func (id Identifier) validate() (Identifier, error) {
	id.Type = strings.TrimSpace(id.Type)
	id.Value = strings.TrimSpace(id.Value)
	id.ApplicationID = strings.TrimSpace(id.ApplicationID)
	if id.Type == "" || len(id.Type) > 32 {
		return id, &RequestError{Field: "Identifier.Type", Reason: "must be 1 to 32 characters"}
	}
	for _, c := range id.Type {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return id, &RequestError{Field: "Identifier.Type", Reason: "must be upper-case letters, digits, - or _"}
		}
	}
	if id.Value == "" || len(id.Value) > 64 || strings.ContainsAny(id.Value, "=,+") {
		return id, &RequestError{Field: "Identifier.Value", Reason: "must be 1 to 64 characters without = , +"}
	}
	if len(id.ApplicationID) > 64 || strings.ContainsAny(id.ApplicationID, "=,+") {
		return id, &RequestError{Field: "Identifier.ApplicationID", Reason: "must be at most 64 characters without = , +"}
	}
	if id.Type == "SSIN" {
		if err := ValidateSSIN(id.Value); err != nil {
			return id, err
		}
	}
	return id, nil
}

// cacheKey is the identifier's key in the local store.
func (id Identifier) cacheKey() string {
	return id.Type + "\x1f" + id.Value + "\x1f" + id.ApplicationID
}

// ETK is one party's encryption token key: the CMS structure as the depot gave it and the
// encryption certificate inside.
type ETK struct {
	Identifier  Identifier // the identifier this ETK answers (from MatchingEtk when followed)
	Raw         []byte     // DER of the CMS ContentInfo
	Certificate *x509.Certificate
}

// ETKResult is the ETKs matching an identifier and where they came from.
type ETKResult struct {
	ETKs     []ETK
	Source   Source
	AsOf     time.Time // when the depot gave them
	Degraded bool      // the depot was unreachable; the ETKs come from the local store
	Endpoint string
}

// ErrETK is the sentinel of an ETK that cannot be used: not a CMS SignedData holding a
// certificate, a certificate for another party, or an expired certificate.
var ErrETK = errors.New("connector: unusable etk")

// ETKError says why an ETK was refused.
type ETKError struct{ Reason string }

func (e *ETKError) Error() string { return "connector: unusable etk: " + e.Reason }

// Is reports whether target is ErrETK.
func (e *ETKError) Is(target error) bool { return target == ErrETK }

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type cmsEncapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type cmsSignedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo cmsEncapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// maxETKBytes bounds one ETK's DER.
const maxETKBytes = 64 << 10

// ParseETK reads the DER of a CMS ContentInfo holding SignedData whose encapsulated content is
// the DER of the party's encryption certificate, and returns that certificate.
func ParseETK(der []byte) (*x509.Certificate, error) {
	if len(der) == 0 || len(der) > maxETKBytes {
		return nil, &ETKError{Reason: fmt.Sprintf("size %d out of bounds", len(der))}
	}
	var ci cmsContentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		return nil, &ETKError{Reason: "not a CMS ContentInfo: " + err.Error()}
	}
	if len(rest) != 0 {
		return nil, &ETKError{Reason: "trailing data after ContentInfo"}
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, &ETKError{Reason: "content type " + ci.ContentType.String() + " is not signedData"}
	}
	var sd cmsSignedData
	if rest, err = asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, &ETKError{Reason: "not a SignedData: " + err.Error()}
	}
	if len(rest) != 0 {
		return nil, &ETKError{Reason: "trailing data after SignedData"}
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) {
		return nil, &ETKError{Reason: "encapsulated content type is not data"}
	}
	content, err := octets(sd.EncapContentInfo.EContent.Bytes)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(content)
	if err != nil {
		return nil, &ETKError{Reason: "encapsulated content is not a certificate: " + err.Error()}
	}
	return cert, nil
}

// octets reads the eContent OCTET STRING, primitive (DER) or constructed (BER segments).
func octets(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, &ETKError{Reason: "no encapsulated content"}
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(b, &v)
	if err != nil || len(rest) != 0 || v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString {
		return nil, &ETKError{Reason: "encapsulated content is not an OCTET STRING"}
	}
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out []byte
	for seg := v.Bytes; len(seg) > 0; {
		var s asn1.RawValue
		if seg, err = asn1.Unmarshal(seg, &s); err != nil || s.Tag != asn1.TagOctetString || s.IsCompound {
			return nil, &ETKError{Reason: "malformed constructed OCTET STRING"}
		}
		out = append(out, s.Bytes...)
	}
	return out, nil
}

// matchesIdentifier reports whether cert's subject is CN=<Type>=<Value> and, when the identifier
// names an application, carries OU=<ApplicationID>.
func matchesIdentifier(cert *x509.Certificate, id Identifier) bool {
	if cert.Subject.CommonName != id.Type+"="+id.Value {
		return false
	}
	if id.ApplicationID == "" {
		return true
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == id.ApplicationID {
			return true
		}
	}
	return false
}

// checkETK parses der and checks that its certificate is id's and valid at now.
func checkETK(der []byte, id Identifier, now time.Time) (ETK, error) {
	cert, err := ParseETK(der)
	if err != nil {
		return ETK{}, err
	}
	if !matchesIdentifier(cert, id) {
		return ETK{}, &ETKError{Reason: "certificate subject does not match the identifier asked"}
	}
	if now.After(cert.NotAfter) {
		return ETK{}, &ETKError{Reason: "certificate expired " + cert.NotAfter.UTC().Format(time.RFC3339)}
	}
	if now.Before(cert.NotBefore) {
		return ETK{}, &ETKError{Reason: "certificate not yet valid"}
	}
	return ETK{Identifier: id, Raw: der, Certificate: cert}, nil
}

// buildETKRequest builds GetEtkRequest/SearchCriteria/Identifier for id.
func buildETKRequest(id Identifier) *etree.Element {
	root := etree.NewElement("etk:GetEtkRequest")
	root.CreateAttr("xmlns:etk", NSETKProtocol)
	sc := add(root, "etk:SearchCriteria", "")
	ident := add(sc, "etk:Identifier", "")
	add(ident, "etk:Type", id.Type)
	add(ident, "etk:Value", id.Value)
	if id.ApplicationID != "" {
		add(ident, "etk:ApplicationID", id.ApplicationID)
	}
	return root
}

// etkResponse is a parsed GetEtkResponse: exactly one of its fields is set.
type etkResponse struct {
	etk      []byte         // DER of the CMS structure
	matching [][]Identifier // MatchingEtk lists
}

// parseETKResponse reads a GetEtkResponse. An Error is a *BusinessError.
func parseETKResponse(el *etree.Element) (etkResponse, error) {
	var r etkResponse
	bad := func(reason string) (etkResponse, error) {
		return etkResponse{}, &ResponseError{Service: ServiceETK, Reason: reason}
	}
	if el == nil || el.Tag != "GetEtkResponse" {
		return bad("not a GetEtkResponse")
	}
	if errs := childrenNamed(el, "Error"); len(errs) > 0 {
		be := &BusinessError{Service: ServiceETK, Code: textAt(errs[0], "Code"), Message: textAt(errs[0], "Message")}
		if be.Code == "" {
			be.Code = "unknown"
		}
		return r, be
	}
	if code := textAt(el, "Status", "Code"); code != "200" {
		return bad("Status/Code is " + truncateText(code, 16) + ", not 200")
	}
	if e := child(el, "ETK"); e != nil {
		txt := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, e.Text())
		if base64.StdEncoding.DecodedLen(len(txt)) > maxETKBytes {
			return bad("ETK too large")
		}
		der, err := base64.StdEncoding.DecodeString(txt)
		if err != nil {
			return bad("ETK is not base64")
		}
		r.etk = der
		return r, nil
	}
	for _, m := range childrenNamed(el, "MatchingEtk") {
		if len(r.matching) == maxMatching {
			break
		}
		var ids []Identifier
		for _, ie := range childrenNamed(m, "Identifier") {
			ids = append(ids, Identifier{Type: textAt(ie, "Type"), Value: textAt(ie, "Value"), ApplicationID: textAt(ie, "ApplicationID")})
		}
		if len(ids) == 0 {
			// MatchingEtk may hold Type/Value/ApplicationID directly.
			ids = append(ids, Identifier{Type: textAt(m, "Type"), Value: textAt(m, "Value"), ApplicationID: textAt(m, "ApplicationID")})
		}
		r.matching = append(r.matching, ids)
	}
	if len(r.matching) == 0 {
		return bad("neither ETK, MatchingEtk nor Error")
	}
	return r, nil
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
