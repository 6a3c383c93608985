package platformtest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/ehgate/ehgate/soap"
)

// NSETK is the namespace of the ETK depot.
const NSETK = "urn:be:fgov:ehealth:etkdepot:1_0:protocol"

// Institutions whose ETKs the depot holds from the start.
var institutionETKs = []struct{ typ, value, app, name string }{
	{"CBE", "0809394427", "", "MyCareNet"},
	{"CBE", "0406798006", "", "RIZIV-INAMI"},
	{"EHP", "1990001916", "RECIPE", "Recip-e"},
	{"EHP", "1990001916", "PRESCRIBER", "Recip-e prescriber"},
}

type etkKey struct{ typ, value, app string }

// etkEntry is one ETK of the depot, built on first use (it needs a key).
type etkEntry struct {
	key    etkKey
	name   string
	encKey func() (*rsa.PrivateKey, error)
	// signer returns the certificate and key signing the CMS structure; nil
	// = the encryption certificate signs itself.
	signer func() (*x509.Certificate, *rsa.PrivateKey)

	once sync.Once
	cert *x509.Certificate
	cms  []byte
	err  error
}

type etkDepot struct {
	p       *Platform
	mu      sync.Mutex
	entries map[etkKey]*etkEntry
}

func newETKDepot(p *Platform) *etkDepot {
	d := &etkDepot{p: p, entries: map[etkKey]*etkEntry{}}
	for _, in := range institutionETKs {
		var once sync.Once
		var k *rsa.PrivateKey
		var err error
		d.entries[etkKey{in.typ, in.value, in.app}] = &etkEntry{
			key:  etkKey{in.typ, in.value, in.app},
			name: in.name,
			encKey: func() (*rsa.PrivateKey, error) {
				once.Do(func() { k, err = p.pki.key() })
				return k, err
			},
		}
	}
	return d
}

func (d *etkDepot) registerIdentity(id *Identity) {
	encKey := func() (*rsa.PrivateKey, error) {
		id.encOnce.Do(func() { id.encKey, id.encErr = d.p.pki.key() })
		return id.encKey, id.encErr
	}
	signer := func() (*x509.Certificate, *rsa.PrivateKey) { return id.Certificate, id.Key }
	keys := []etkKey{{"SSIN", id.SSIN, ""}}
	switch id.Kind {
	case Pharmacy:
		keys = append(keys, etkKey{"NIHII-PHARMACY", id.NIHII, ""})
	case GP:
		keys = append(keys, etkKey{"NIHII", id.NIHII, ""})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.entries[k] = &etkEntry{key: k, name: id.Name, encKey: encKey, signer: signer}
	}
}

// RegisterETK adds a party to the ETK depot under (typ, value, appID), with
// an encryption certificate made on first request. Safe for concurrent use.
func (p *Platform) RegisterETK(typ, value, appID, name string) error {
	if typ == "" || value == "" {
		return fmt.Errorf("platformtest: register etk: empty type or value")
	}
	var once sync.Once
	var k *rsa.PrivateKey
	var err error
	e := &etkEntry{key: etkKey{typ, value, appID}, name: name, encKey: func() (*rsa.PrivateKey, error) {
		once.Do(func() { k, err = p.pki.key() })
		return k, err
	}}
	p.etk.mu.Lock()
	defer p.etk.mu.Unlock()
	if _, dup := p.etk.entries[e.key]; dup {
		return fmt.Errorf("platformtest: register etk: %s=%s (%q) already registered", typ, value, appID)
	}
	p.etk.entries[e.key] = e
	return nil
}

// ETK returns the encryption certificate and the DER CMS SignedData the
// depot serves for (typ, value, appID).
func (p *Platform) ETK(typ, value, appID string) (*x509.Certificate, []byte, error) {
	p.etk.mu.Lock()
	e := p.etk.entries[etkKey{typ, value, appID}]
	p.etk.mu.Unlock()
	if e == nil {
		return nil, nil, fmt.Errorf("platformtest: no etk for %s (application %q)", typ, appID)
	}
	if err := e.build(p); err != nil {
		return nil, nil, err
	}
	return e.cert, append([]byte(nil), e.cms...), nil
}

func (e *etkEntry) build(p *Platform) error {
	e.once.Do(func() {
		k, err := e.encKey()
		if err != nil {
			e.err = err
			return
		}
		subject := pkix.Name{CommonName: e.key.typ + "=" + e.key.value, Organization: []string{e.name}, Country: []string{"BE"}}
		if e.key.app != "" {
			subject.OrganizationalUnit = []string{e.key.app}
		}
		cert, _, err := p.pki.issue(p.providerCA, leaf{subject: subject, usage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment, key: k})
		if err != nil {
			e.err = err
			return
		}
		signCert, signKey := cert, k
		if e.signer != nil {
			signCert, signKey = e.signer()
		}
		cms, err := signedData(cert.Raw, signCert, signKey)
		if err != nil {
			e.err = err
			return
		}
		e.cert, e.cms = cert, cms
	})
	return e.err
}

// lookup finds the entries answering an identifier: the exact one, or,
// without an application ID, every entry of (typ, value).
func (d *etkDepot) lookup(typ, value, app string) []*etkEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.entries[etkKey{typ, value, app}]; ok {
		return []*etkEntry{e}
	}
	if app != "" {
		return nil
	}
	var out []*etkEntry
	for k, e := range d.entries {
		if k.typ == typ && k.value == value {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.app < out[j].key.app })
	return out
}

// NSCommons10Core is the namespace of the ETK depot's Status (the commons
// 1.0 core schema, which the depot's protocol schema references).
const NSCommons10Core = "urn:be:fgov:ehealth:commons:1_0:core"

// serveETK answers GetEtk; the depot needs no authentication.
func (p *Platform) serveETK(x *exchange) reply {
	if r := checkAction(x, ActionETK); r != nil {
		return *r
	}
	doc, err := soap.Parse(bytes.NewReader(x.body), soap.Limits{})
	if err != nil {
		return badRequest(err.Error())
	}
	req, err := soap.BodyContent(doc)
	if err != nil || req == nil {
		return badRequest("empty soap body")
	}
	if r := checkSchema(SchemaETK, req); r != nil {
		return *r
	}
	b := builder{"etk"}
	resp := b.el(nil, "GetEtkResponse")
	resp.CreateAttr("xmlns:etk", NSETK)
	resp.CreateAttr("Id", newID())
	st := resp.CreateElement("core:Status")
	st.CreateAttr("xmlns:core", NSCommons10Core)
	st.CreateElement("Code").SetText("200")
	st.CreateElement("Message").SetText("OK")
	crit := child(req, "SearchCriteria")
	given := b.el(resp, "GivenSearchCriteria")
	var idents [][3]string
	for _, c := range crit.ChildElements() {
		if c.Tag != "Identifier" {
			continue
		}
		id := [3]string{text(c, "Type"), text(c, "Value"), text(c, "ApplicationID")}
		idents = append(idents, id)
		gi := b.el(given, "Identifier")
		b.el(gi, "Type", id[0])
		b.el(gi, "Value", id[1])
		if child(c, "ApplicationID") != nil {
			b.el(gi, "ApplicationID", id[2])
		}
	}
	fail := func(code, msg string) reply {
		e := b.el(resp, "Error")
		b.el(e, "Code", code)
		b.el(e, "Message", msg)
		return answer(SchemaETK, resp, OutcomeBusiness)
	}
	switch {
	case len(idents) > 1:
		return fail("INVALID_INPUT", "one Identifier per request")
	case idents[0][0] == "" || idents[0][1] == "":
		return fail("INVALID_INPUT", "Identifier needs Type and Value")
	}
	found := p.etk.lookup(strings.ToUpper(idents[0][0]), idents[0][1], idents[0][2])
	switch len(found) {
	case 0:
		return fail("NOT_FOUND", "no ETK for the identifier")
	case 1:
		if err := found[0].build(p); err != nil {
			return soapFault("soapenv:Server", "etk depot: "+err.Error(), "SOA-02001")
		}
		b.el(resp, "ETK", base64.StdEncoding.EncodeToString(found[0].cms))
	default:
		for _, e := range found {
			m := b.el(resp, "MatchingEtk")
			id := b.el(m, "Identifier")
			b.el(id, "Type", e.key.typ)
			b.el(id, "Value", e.key.value)
			b.el(id, "ApplicationID", e.key.app)
		}
	}
	return answer(SchemaETK, resp, OutcomeOK)
}

// CMS (RFC 5652) structures, as much as an ETK needs.
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, built by hand: Marshal ignores tags on a RawValue with FullBytes
}

type cmsEncapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,tag:0"`
}

type cmsIssuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type cmsSignerInfo struct {
	Version            int
	SID                cmsIssuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

type cmsSignedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo cmsEncapContentInfo
	Certificates     asn1.RawValue
	SignerInfos      []cmsSignerInfo `asn1:"set"`
}

type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// signedData wraps content (the DER of the encryption certificate) in a
// CMS ContentInfo/SignedData signed by signer with SHA-256 and RSA.
func signedData(content []byte, signer *x509.Certificate, key *rsa.PrivateKey) ([]byte, error) {
	digest := sha256.Sum256(content)
	ctVal, err := asn1.Marshal(oidData)
	if err != nil {
		return nil, err
	}
	mdVal, err := asn1.Marshal(digest[:])
	if err != nil {
		return nil, err
	}
	var attrs [][]byte
	for _, a := range []cmsAttribute{
		{Type: oidContentType, Values: []asn1.RawValue{{FullBytes: ctVal}}},
		{Type: oidMessageDigest, Values: []asn1.RawValue{{FullBytes: mdVal}}},
	} {
		b, err := asn1.Marshal(a)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, b)
	}
	sort.Slice(attrs, func(i, j int) bool { return bytes.Compare(attrs[i], attrs[j]) < 0 }) // DER SET OF order
	attrBytes := bytes.Join(attrs, nil)
	// The signature covers the attributes encoded as a SET (tag 0x31); the
	// SignerInfo carries them as [0] IMPLICIT.
	toSign, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: attrBytes})
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(toSign)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("platformtest: sign etk: %w", err)
	}
	sha256Alg := pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}
	sd := cmsSignedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256Alg},
		EncapContentInfo: cmsEncapContentInfo{EContentType: oidData, EContent: content},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signer.Raw},
		SignerInfos: []cmsSignerInfo{{
			Version:            1,
			SID:                cmsIssuerAndSerial{Issuer: asn1.RawValue{FullBytes: signer.RawIssuer}, Serial: signer.SerialNumber},
			DigestAlgorithm:    sha256Alg,
			SignedAttrs:        asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: attrBytes},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue},
			Signature:          sig,
		}},
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(cmsContentInfo{ContentType: oidSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
}
