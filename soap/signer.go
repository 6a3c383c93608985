package soap

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
)

// Token profile identifiers used in wsse:Security.
const (
	valueTypeX509     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
	encodingBase64    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
	valueTypeSAMLID   = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"
	timestampLayout   = "2006-01-02T15:04:05.000Z07:00"
	defaultTTL        = 60 * time.Second
	defaultClockSkew  = 5 * time.Minute
	assertionMaxBytes = 1 << 20
)

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Key signs (RSA-SHA256); it must hold an RSA key. Required.
	Key crypto.Signer
	// Certificate is sent as the wsse:BinarySecurityToken when Assertion is
	// empty; its public key must be Key's. Required without Assertion.
	Certificate *x509.Certificate
	// Assertion is a SAML 1.1 assertion exactly as the STS issued it. When set,
	// it is inserted byte-exact in wsse:Security and the signature's KeyInfo
	// refers to it by AssertionID (holder-of-key); Key must be its key.
	Assertion []byte
	// SignToken adds the wsse:BinarySecurityToken to what the signature covers (the
	// WS-SecurityPolicy assertion sp:ProtectTokens, which the STS's policy has; the official
	// connector signs Body, Timestamp and token there). false = Body and Timestamp only, as on
	// business calls. Not allowed with Assertion: the assertion is signed by its issuer.
	SignToken bool
	// TTL is the lifetime of the wsu:Timestamp; 0 = 60 s.
	TTL time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Validate names the first field of c that cannot work.
func (c SignerConfig) Validate() error {
	if c.Key == nil {
		return errors.New("soap: SignerConfig.Key is required")
	}
	pub, ok := c.Key.Public().(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("soap: SignerConfig.Key is %T, want an RSA key", c.Key.Public())
	}
	if c.TTL < 0 {
		return errors.New("soap: SignerConfig.TTL is negative")
	}
	if len(c.Assertion) > 0 && c.SignToken {
		return errors.New("soap: SignerConfig.SignToken applies to a BinarySecurityToken, not to an Assertion")
	}
	if len(c.Assertion) == 0 {
		if c.Certificate == nil {
			return errors.New("soap: SignerConfig.Certificate is required without an Assertion")
		}
		if cp, ok := c.Certificate.PublicKey.(*rsa.PublicKey); !ok || !cp.Equal(pub) {
			return errors.New("soap: SignerConfig.Certificate does not hold the public key of Key")
		}
	}
	return nil
}

// Signer signs SOAP requests with WS-Security. It is safe for concurrent use.
type Signer struct {
	key     crypto.Signer
	ttl     time.Duration
	signBST bool
	now     func() time.Time
	bst     string         // base64 DER of the certificate, BST mode
	raw     []byte         // the assertion element's bytes as issued, assertion mode
	assert  *etree.Element // the parsed assertion, assertion mode
	id      string         // its AssertionID
}

// NewSigner checks cfg and returns a Signer.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Signer{key: cfg.Key, ttl: cfg.TTL, now: cfg.Now, signBST: cfg.SignToken}
	if s.ttl == 0 {
		s.ttl = defaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(cfg.Assertion) == 0 {
		s.bst = base64.StdEncoding.EncodeToString(cfg.Certificate.Raw)
		return s, nil
	}
	raw, el, err := assertionElement(cfg.Assertion)
	if err != nil {
		return nil, err
	}
	s.raw, s.assert = raw, el
	s.id = el.SelectAttrValue("AssertionID", "")
	if s.id == "" {
		return nil, errors.New("soap: SignerConfig.Assertion has no AssertionID")
	}
	return s, nil
}

// assertionElement returns the bytes of the saml:Assertion element within raw
// (raw without BOM, XML declaration and surrounding white space) and its parse.
func assertionElement(raw []byte) ([]byte, *etree.Element, error) {
	b := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("<?xml")) {
		end := bytes.Index(b, []byte("?>"))
		if end < 0 {
			return nil, nil, fmt.Errorf("soap: SignerConfig.Assertion: %w: unterminated xml declaration", ErrMalformed)
		}
		b = bytes.TrimSpace(b[end+2:])
	}
	if !bytes.HasPrefix(b, []byte("<")) || bytes.HasPrefix(b, []byte("<!")) || bytes.HasPrefix(b, []byte("<?")) {
		return nil, nil, fmt.Errorf("soap: SignerConfig.Assertion: %w: does not start with an element", ErrMalformed)
	}
	doc, err := parseBytes(b, Limits{MaxBytes: assertionMaxBytes}.withDefaults())
	if err != nil {
		return nil, nil, fmt.Errorf("soap: SignerConfig.Assertion: %w", err)
	}
	if len(doc.Child) != 1 {
		return nil, nil, fmt.Errorf("soap: SignerConfig.Assertion: %w: content after the assertion", ErrMalformed)
	}
	root := doc.Root()
	r := newResolver()
	if !is(r, root, NSSAML, "Assertion") {
		return nil, nil, fmt.Errorf("soap: SignerConfig.Assertion: root is {%s}%s, want a SAML 1.1 Assertion", namespaceOf(root), root.Tag)
	}
	return b, root, nil
}

// Sign adds a wsse:Security header to env (Timestamp, the token, and a
// ds:Signature over the Body and the Timestamp — and the BinarySecurityToken
// with SignerConfig.SignToken — referenced by wsu:Id, with
// exclusive C14N, SHA-256 digests and RSA-SHA256) and returns the serialised
// message. env is modified; each concurrent call needs its own env.
func (s *Signer) Sign(env *etree.Document) (_ []byte, err error) {
	header, body, err := envelopeParts(env)
	if err != nil {
		return nil, err
	}
	root := env.Root()
	r := newResolver()
	if header == nil {
		header = etree.NewElement(prefixed(root.Space, "Header"))
		root.InsertChildAt(body.Index(), header)
	}
	if len(children(r, header, NSWSSE, "Security")) > 0 {
		return nil, errors.New("soap: sign: envelope already has a wsse:Security header")
	}
	bodyID, err := ensureWSUID(body, "id-")
	if err != nil {
		return nil, err
	}

	sec := header.CreateElement("wsse:Security")
	defer func() {
		if err != nil { // leave no half-made header behind: env can be signed again
			header.RemoveChild(sec)
		}
	}()
	sec.CreateAttr("xmlns:wsse", NSWSSE)
	sec.CreateAttr("xmlns:wsu", NSWSU)
	if root.Space == "" {
		// The envelope uses a default namespace; the attribute needs a prefix.
		sec.CreateAttr("xmlns:soapenv", NSEnvelope)
		sec.CreateAttr("soapenv:mustUnderstand", "1")
	} else {
		sec.CreateAttr(root.Space+":mustUnderstand", "1")
	}

	now := s.now().UTC()
	ts := sec.CreateElement("wsu:Timestamp")
	tsID := "TS-" + newID()
	ts.CreateAttr("wsu:Id", tsID)
	ts.CreateElement("wsu:Created").SetText(now.Format(timestampLayout))
	ts.CreateElement("wsu:Expires").SetText(now.Add(s.ttl).Format(timestampLayout))

	var placeholder *etree.Comment
	var keyInfo func(*etree.Element)
	targets := []refTarget{{body, bodyID}, {ts, tsID}}
	if s.assert == nil {
		bst := sec.CreateElement("wsse:BinarySecurityToken")
		bst.CreateAttr("EncodingType", encodingBase64)
		bst.CreateAttr("ValueType", valueTypeX509)
		bstID := "X509-" + newID()
		bst.CreateAttr("wsu:Id", bstID)
		bst.SetText(s.bst)
		if s.signBST {
			targets = append(targets, refTarget{bst, bstID})
		}
		keyInfo = func(ki *etree.Element) {
			str := ki.CreateElement("wsse:SecurityTokenReference")
			r := str.CreateElement("wsse:Reference")
			r.CreateAttr("URI", "#"+bstID)
			r.CreateAttr("ValueType", valueTypeX509)
		}
	} else {
		// The assertion is signed by its issuer: it must travel byte for byte.
		// A placeholder holds its place and is swapped for the bytes after
		// serialisation; neither signed element depends on this sibling.
		placeholder = etree.NewComment("ehgate-assertion-" + newID())
		sec.InsertChildAt(0, placeholder)
		keyInfo = func(ki *etree.Element) {
			str := ki.CreateElement("wsse:SecurityTokenReference")
			k := str.CreateElement("wsse:KeyIdentifier")
			k.CreateAttr("ValueType", valueTypeSAMLID)
			k.SetText(s.id)
		}
	}
	if _, err := s.signature(sec, targets, keyInfo); err != nil {
		return nil, err
	}
	out, err := Marshal(env)
	if err != nil || placeholder == nil {
		return out, err
	}
	mark := []byte("<!--" + placeholder.Data + "-->")
	i := bytes.Index(out, mark)
	if i < 0 {
		return nil, errors.New("soap: sign: assertion placeholder lost in serialisation")
	}
	msg := make([]byte, 0, len(out)-len(mark)+len(s.raw))
	msg = append(msg, out[:i]...)
	msg = append(msg, s.raw...)
	msg = append(msg, out[i+len(mark):]...)
	// Leave env as the message says: the assertion where the placeholder was.
	sec.RemoveChildAt(placeholder.Index())
	sec.InsertChildAt(0, s.assert.Copy())
	return msg, nil
}

type refTarget struct {
	el *etree.Element
	id string
}

// signature appends a ds:Signature to parent with one exc-c14n/SHA-256
// reference per target, signs its SignedInfo and lets keyInfo fill KeyInfo.
func (s *Signer) signature(parent *etree.Element, targets []refTarget, keyInfo func(*etree.Element)) (*etree.Element, error) {
	sig := parent.CreateElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", NSDSig)
	sig.CreateAttr("Id", "SIG-"+newID())
	si := signedInfo(sig)
	for _, t := range targets {
		d, err := digestOf(t.el, "", nil)
		if err != nil {
			return nil, fmt.Errorf("soap: sign: canonicalise %s: %w", t.el.Tag, err)
		}
		addReference(si, "#"+t.id, "", d, false)
	}
	if err := signSignedInfo(sig, si, s.key); err != nil {
		return nil, err
	}
	keyInfo(sig.CreateElement("ds:KeyInfo"))
	return sig, nil
}

// signedInfo creates ds:SignedInfo with the exc-c14n and RSA-SHA256 methods.
func signedInfo(sig *etree.Element) *etree.Element {
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", algExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", algRSASHA256)
	return si
}

// addReference appends a ds:Reference with its transforms and digest.
func addReference(si *etree.Element, uri, typ string, digest []byte, enveloped bool) {
	r := si.CreateElement("ds:Reference")
	if typ != "" {
		r.CreateAttr("Type", typ)
	}
	r.CreateAttr("URI", uri)
	tr := r.CreateElement("ds:Transforms")
	if enveloped {
		tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algEnveloped)
	}
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algExcC14N)
	r.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", algSHA256)
	r.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest))
}

// signSignedInfo signs the canonical SignedInfo and adds ds:SignatureValue after it.
func signSignedInfo(sig, si *etree.Element, key crypto.Signer) error {
	sum, err := digestOf(si, "", nil)
	if err != nil {
		return fmt.Errorf("soap: sign: canonicalise SignedInfo: %w", err)
	}
	value, err := key.Sign(rand.Reader, sum, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("soap: sign: %w", err)
	}
	sv := etree.NewElement("ds:SignatureValue")
	sv.SetText(base64.StdEncoding.EncodeToString(value))
	sig.InsertChildAt(si.Index()+1, sv)
	return nil
}

// ensureWSUID returns el's wsu:Id, adding a fresh one (and the wsu namespace
// declaration) when it has none.
func ensureWSUID(el *etree.Element, prefix string) (string, error) {
	for _, a := range el.Attr {
		if a.Key == "Id" && a.Space != "" && a.NamespaceURI() == NSWSU {
			return a.Value, nil
		}
	}
	if decl := el.SelectAttr("xmlns:wsu"); decl != nil && decl.Value != NSWSU {
		return "", errors.New("soap: sign: Body binds the wsu prefix to another namespace")
	}
	if el.SelectAttr("xmlns:wsu") == nil {
		el.CreateAttr("xmlns:wsu", NSWSU)
	}
	id := prefix + newID()
	el.CreateAttr("wsu:Id", id)
	return id, nil
}

// prefixed returns prefix:local, or local when prefix is empty.
func prefixed(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// newID returns 128 random bits in hex, the tail of the IDs Sign creates.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
