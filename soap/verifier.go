package soap

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
)

// Errors of Verify and VerifyEnveloped, each wrapped with detail.
var (
	ErrNoSecurity       = errors.New("soap: no wsse:Security header")
	ErrNoSignature      = errors.New("soap: no signature")
	ErrMissingReference = errors.New("soap: required element not signed")
	// ErrWrapped reports a reference that does not point at this envelope's
	// Body or Timestamp (or the signed document itself): signature wrapping.
	ErrWrapped          = errors.New("soap: signature reference points at a moved or foreign element")
	ErrDuplicateID      = errors.New("soap: duplicate xml id")
	ErrDigest           = errors.New("soap: digest mismatch")
	ErrSignature        = errors.New("soap: signature value invalid")
	ErrTimestampExpired = errors.New("soap: timestamp expired")
	ErrTimestampFuture  = errors.New("soap: timestamp in the future")
	// ErrTimestampLifetime reports a Timestamp whose Expires is not after its
	// Created, or that lasts longer than VerifierConfig.MaxLifetime.
	ErrTimestampLifetime = errors.New("soap: timestamp lifetime invalid")
	ErrUntrusted         = errors.New("soap: signing certificate not trusted")
	ErrAlgorithm         = errors.New("soap: unsupported signature algorithm")
)

func fail(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Roots is the trust pool of wsse:BinarySecurityToken certificates; nil =
	// such tokens are rejected.
	Roots *x509.CertPool
	// Assertion validates a saml:Assertion found in wsse:Security (issuer
	// signature, conditions) and returns the holder-of-key certificate the
	// message must be signed with. nil = assertions rejected.
	Assertion func(a *etree.Element) (*x509.Certificate, error)
	// ClockSkew is the tolerance on the Timestamp's Created and Expires; 0 = 5 minutes.
	ClockSkew time.Duration
	// MaxLifetime is the longest accepted Timestamp lifetime (Expires minus
	// Created): a message that stays fresh for years can be replayed for
	// years. 0 = DefaultMaxTimestampLifetime (15 minutes).
	MaxLifetime time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Limits bound the parsed message; zero fields take DefaultLimits.
	Limits Limits
}

// Validate names the first field of c that cannot work.
func (c VerifierConfig) Validate() error {
	if c.Roots == nil && c.Assertion == nil {
		return errors.New("soap: VerifierConfig needs Roots or Assertion: nothing would be trusted")
	}
	if c.ClockSkew < 0 {
		return errors.New("soap: VerifierConfig.ClockSkew is negative")
	}
	if c.MaxLifetime < 0 {
		return errors.New("soap: VerifierConfig.MaxLifetime is negative")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("soap: VerifierConfig.Limits: %w", err)
	}
	return nil
}

// Verifier checks WS-Security signed SOAP messages. It is safe for concurrent use.
type Verifier struct {
	cfg  VerifierConfig
	lim  Limits
	skew time.Duration
	now  func() time.Time

	maxLifetime time.Duration
	mu          sync.Mutex
	certs       map[string]*certEntry // by DER
}

// certEntry caches the parse of a token certificate and, once a chain to
// Roots was found, the period in which every certificate of it is valid.
type certEntry struct {
	cert        *x509.Certificate
	trusted     bool
	from, until time.Time
}

// DefaultMaxTimestampLifetime is the longest Timestamp lifetime a zero
// VerifierConfig.MaxLifetime accepts. ehgate's Signer uses 60 s.
const DefaultMaxTimestampLifetime = 15 * time.Minute

const (
	certCacheSize = 256
	// maxCachedCert bounds the size of a cached certificate (real ones are 1-2 KB).
	maxCachedCert = 16 << 10
	// maxReferences bounds the references of one signature: each costs a
	// canonicalisation, and a flood of them would multiply the work.
	maxReferences = 16
)

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, lim: cfg.Limits.withDefaults(), skew: cfg.ClockSkew, now: cfg.Now, certs: map[string]*certEntry{}}
	if v.skew == 0 {
		v.skew = defaultClockSkew
	}
	v.maxLifetime = cfg.MaxLifetime
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultMaxTimestampLifetime
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Verified is what a successful Verify learnt.
type Verified struct {
	Envelope    *etree.Document
	Body        *etree.Element    // first element child of soapenv:Body (nil if empty)
	Certificate *x509.Certificate // the certificate whose key signed
	Assertion   *etree.Element    // the saml:Assertion, when signed with one
	// TokenSigned says the signature also covers the wsse:BinarySecurityToken its key came
	// from (sp:ProtectTokens); false when the key came from an assertion or a KeyInfo.
	TokenSigned      bool
	Created, Expires time.Time
}

// Verify parses msg within the configured limits and checks its WS-Security
// header: the signature must reference this envelope's soapenv:Body and the
// wsu:Timestamp of its wsse:Security, IDs must be unique, digests and the
// RSA-SHA256 value must hold, the key must come from a trusted token, and the
// timestamp (Created and Expires, both required, Created before Expires, at
// most MaxLifetime apart) must be current within ClockSkew. Each failure is one of the Err* sentinels, wrapped with detail.
// Comments, which signatures do not cover, are removed from the returned Body.
func (v *Verifier) Verify(msg []byte) (*Verified, error) {
	if int64(len(msg)) > v.lim.MaxBytes {
		return nil, &LimitError{Limit: "bytes", Max: v.lim.MaxBytes}
	}
	doc, err := parseBytes(msg, v.lim)
	if err != nil {
		return nil, err
	}
	header, body, err := envelopeParts(doc)
	if err != nil {
		return nil, err
	}
	if header == nil {
		return nil, fail(ErrNoSecurity, "no soapenv:Header")
	}
	r := newResolver()
	secs := children(r, header, NSWSSE, "Security")
	switch {
	case len(secs) == 0:
		return nil, ErrNoSecurity
	case len(secs) > 1:
		return nil, fail(ErrWrapped, "%d wsse:Security headers", len(secs))
	}
	sec := secs[0]
	ids, err := idIndex(doc.Root())
	if err != nil {
		return nil, err
	}
	tss := children(r, sec, NSWSU, "Timestamp")
	switch {
	case len(tss) == 0:
		return nil, fail(ErrMissingReference, "no wsu:Timestamp in wsse:Security")
	case len(tss) > 1:
		return nil, fail(ErrWrapped, "%d wsu:Timestamp elements", len(tss))
	}
	ts := tss[0]
	sigs := children(r, sec, NSDSig, "Signature")
	switch {
	case len(sigs) == 0:
		return nil, ErrNoSignature
	case len(sigs) > 1:
		return nil, fail(ErrNoSignature, "%d ds:Signature elements in wsse:Security, want one", len(sigs))
	}
	sig, err := readSignature(r, sigs[0])
	if err != nil {
		return nil, err
	}

	// Structure first (cheap), then who signed and the SignatureValue over
	// SignedInfo, and only then the digests of the referenced parts: an
	// untrusted or forged signature costs a few microseconds whatever the Body.
	targets := make([]*etree.Element, len(sig.refs))
	var bodySigned, tsSigned bool
	for i := range sig.refs {
		ref := &sig.refs[i]
		if !strings.HasPrefix(ref.uri, "#") || len(ref.uri) == 1 {
			return nil, fail(ErrWrapped, "reference URI %q is not a same-document id", ref.uri)
		}
		target := ids[ref.uri[1:]]
		if target == nil {
			return nil, fail(ErrMissingReference, "reference %s resolves to no element", ref.uri)
		}
		switch {
		case target == body:
			bodySigned = true
		case target == ts:
			tsSigned = true
		case target.Tag == "Body" || target.Tag == "Timestamp" || !within(target, sec):
			return nil, fail(ErrWrapped, "reference %s points at a %s that is not this envelope's", ref.uri, target.Tag)
		}
		if ref.enveloped {
			return nil, fail(ErrAlgorithm, "enveloped-signature transform in a WS-Security reference")
		}
		targets[i] = target
	}
	if !bodySigned {
		return nil, fail(ErrMissingReference, "soapenv:Body not referenced")
	}
	if !tsSigned {
		return nil, fail(ErrMissingReference, "wsu:Timestamp not referenced")
	}

	out := &Verified{Envelope: doc}
	var fromToken bool
	var tokenEl *etree.Element
	out.Certificate, out.Assertion, tokenEl, fromToken, err = v.signingKey(r, sig, sec, ids)
	if err != nil {
		return nil, err
	}
	if fromToken {
		if err := v.trust(out.Certificate); err != nil {
			return nil, err
		}
	}
	if err := sig.verifyValue(out.Certificate); err != nil {
		return nil, err
	}
	for i := range sig.refs {
		if err := sig.refs[i].check(targets[i], nil); err != nil {
			return nil, err
		}
		if targets[i] == tokenEl {
			out.TokenSigned = true
		}
	}
	if out.Created, out.Expires, err = v.checkTimestamp(r, ts); err != nil {
		return nil, err
	}
	// Comments are outside what exc-c14n signs: drop them from the signed
	// parts and join the text they split, so that what the caller reads (the
	// first text node included) is exactly what was signed.
	normalizeSigned(body)
	normalizeSigned(ts)
	out.Body = firstChildElement(body)
	return out, nil
}

// normalizeSigned removes the comments below el and merges the text nodes
// that are then adjacent into one (plain text, CDATA flag dropped), in one
// linear pass. exc-c14n outputs the same bytes before and after.
func normalizeSigned(el *etree.Element) {
	stripComments(el)
	mergeText(el)
}

// mergeText joins adjacent character data below el into one plain text node.
func mergeText(el *etree.Element) {
	adjacent := false
	var prevText bool
	for _, t := range el.Child {
		_, isText := t.(*etree.CharData)
		if c, ok := t.(*etree.Element); ok {
			mergeText(c)
		}
		adjacent = adjacent || (isText && prevText)
		prevText = isText
	}
	if !adjacent {
		return
	}
	old := el.Child
	out := make([]etree.Token, 0, len(old))
	for i := 0; i < len(old); {
		cd, ok := old[i].(*etree.CharData)
		j := i + 1
		for ok && j < len(old) {
			if _, next := old[j].(*etree.CharData); !next {
				break
			}
			j++
		}
		if !ok || j == i+1 {
			out = append(out, old[i])
			i++
			continue
		}
		var b strings.Builder
		b.WriteString(cd.Data)
		for _, t := range old[i+1 : j] {
			b.WriteString(t.(*etree.CharData).Data)
		}
		// CreateText appends to el.Child (old's spare capacity at most,
		// beyond what this loop reads); the node is moved to out below.
		out = append(out, el.CreateText(b.String()))
		i = j
	}
	el.Child = out
	el.ReindexChildren()
}

// stripComments removes every comment below el, in one pass per element,
// and returns the number of nodes it visited (el's included).
func stripComments(el *etree.Element) int {
	n, visited := 0, 1
	for _, t := range el.Child {
		visited++
		switch t := t.(type) {
		case *etree.Comment:
			continue
		case *etree.Element:
			visited += stripComments(t) - 1
		}
		el.Child[n] = t
		n++
	}
	if n != len(el.Child) {
		clear(el.Child[n:])
		el.Child = el.Child[:n]
		el.ReindexChildren()
	}
	return visited
}

// within reports whether el is anc or lies below it.
func within(el, anc *etree.Element) bool {
	for e := el; e != nil; e = e.Parent() {
		if e == anc {
			return true
		}
	}
	return false
}

// signingKey resolves the signature's KeyInfo: a BinarySecurityToken of this
// wsse:Security, a SAML assertion of it (validated by cfg.Assertion), or an
// X509Certificate. fromToken says the certificate still needs a chain to Roots.
func (v *Verifier) signingKey(r *resolver, sig *signature, sec *etree.Element, ids map[string]*etree.Element) (cert *x509.Certificate, assertion, token *etree.Element, fromToken bool, err error) {
	if sig.keyInfo == nil {
		return nil, nil, nil, false, fail(ErrUntrusted, "signature has no KeyInfo")
	}
	if str, _ := child(r, sig.keyInfo, NSWSSE, "SecurityTokenReference"); str != nil {
		if ref, _ := child(r, str, NSWSSE, "Reference"); ref != nil {
			uri := ref.SelectAttrValue("URI", "")
			if !strings.HasPrefix(uri, "#") {
				return nil, nil, nil, false, fail(ErrUntrusted, "token reference %q is not a same-document id", uri)
			}
			tok := ids[uri[1:]]
			if tok == nil {
				return nil, nil, nil, false, fail(ErrMissingReference, "token reference %s resolves to no element", uri)
			}
			if !is(r, tok, NSWSSE, "BinarySecurityToken") || tok.Parent() != sec {
				return nil, nil, nil, false, fail(ErrWrapped, "token reference %s is not a BinarySecurityToken of this wsse:Security", uri)
			}
			if vt := tok.SelectAttrValue("ValueType", valueTypeX509); vt != valueTypeX509 {
				return nil, nil, nil, false, fail(ErrUntrusted, "token ValueType %q", vt)
			}
			cert, err := v.certificate(tok.Text())
			return cert, nil, tok, true, err
		}
		if kid, _ := child(r, str, NSWSSE, "KeyIdentifier"); kid != nil {
			if vt := kid.SelectAttrValue("ValueType", ""); vt != valueTypeSAMLID {
				return nil, nil, nil, false, fail(ErrUntrusted, "key identifier ValueType %q", vt)
			}
			id := strings.TrimSpace(kid.Text())
			a := ids[id]
			if a == nil {
				return nil, nil, nil, false, fail(ErrMissingReference, "no assertion %q", id)
			}
			if !is(r, a, NSSAML, "Assertion") || a.Parent() != sec || a.SelectAttrValue("AssertionID", "") != id {
				return nil, nil, nil, false, fail(ErrWrapped, "key identifier %q is not a saml:Assertion of this wsse:Security", id)
			}
			if v.cfg.Assertion == nil {
				return nil, nil, nil, false, fail(ErrUntrusted, "SAML assertions are not accepted by this verifier")
			}
			cert, err := v.cfg.Assertion(a)
			if err != nil {
				return nil, nil, nil, false, fmt.Errorf("%w: assertion %q: %w", ErrUntrusted, id, err)
			}
			if cert == nil {
				return nil, nil, nil, false, fail(ErrUntrusted, "assertion %q names no holder-of-key certificate", id)
			}
			return cert, a, nil, false, nil
		}
		return nil, nil, nil, false, fail(ErrUntrusted, "SecurityTokenReference holds neither Reference nor KeyIdentifier")
	}
	if xd, _ := child(r, sig.keyInfo, NSDSig, "X509Data"); xd != nil {
		if xc, _ := child(r, xd, NSDSig, "X509Certificate"); xc != nil {
			cert, err := v.certificate(xc.Text())
			return cert, nil, nil, true, err
		}
	}
	return nil, nil, nil, false, fail(ErrUntrusted, "KeyInfo names no certificate")
}

// certificate parses a base64 DER certificate, through the cache.
func (v *Verifier) certificate(b64 string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(stripSpace(b64))
	if err != nil {
		return nil, fail(ErrUntrusted, "token is not base64: %v", err)
	}
	v.mu.Lock()
	e := v.certs[string(der)]
	v.mu.Unlock()
	if e != nil {
		return e.cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fail(ErrUntrusted, "token certificate: %v", err)
	}
	if len(der) > maxCachedCert {
		return cert, nil
	}
	v.mu.Lock()
	if len(v.certs) >= certCacheSize {
		clear(v.certs)
	}
	v.certs[string(der)] = &certEntry{cert: cert}
	v.mu.Unlock()
	return cert, nil
}

// trust checks that cert chains to Roots now. A found chain is remembered
// for the period in which all its certificates are valid.
func (v *Verifier) trust(cert *x509.Certificate) error {
	if v.cfg.Roots == nil {
		return fail(ErrUntrusted, "no trust roots for certificate tokens")
	}
	now := v.now()
	v.mu.Lock()
	e := v.certs[string(cert.Raw)]
	cached := e != nil && e.trusted && !now.Before(e.from) && !now.After(e.until)
	v.mu.Unlock()
	if cached {
		return nil
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:       v.cfg.Roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrUntrusted, cert.Subject.CommonName, err)
	}
	from, until := chainValidity(chains[0])
	v.mu.Lock()
	if e := v.certs[string(cert.Raw)]; e != nil && e.cert == cert {
		e.trusted, e.from, e.until = true, from, until
	}
	v.mu.Unlock()
	return nil
}

func chainValidity(chain []*x509.Certificate) (from, until time.Time) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	return from, until
}

// checkTimestamp checks Created and Expires against the clock and skew.
func (v *Verifier) checkTimestamp(r *resolver, ts *etree.Element) (created, expires time.Time, err error) {
	c, _ := child(r, ts, NSWSU, "Created")
	if c == nil {
		return created, expires, fail(ErrMalformed, "wsu:Timestamp without Created")
	}
	if created, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(c.Text())); err != nil {
		return created, expires, fail(ErrMalformed, "wsu:Created: %v", err)
	}
	now := v.now()
	if created.After(now.Add(v.skew)) {
		return created, expires, fail(ErrTimestampFuture, "created %s, now %s", created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	// Without Expires a captured message would stay fresh forever.
	x, _ := child(r, ts, NSWSU, "Expires")
	if x == nil {
		return created, expires, fail(ErrMalformed, "wsu:Timestamp without Expires")
	}
	if expires, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(x.Text())); err != nil {
		return created, expires, fail(ErrMalformed, "wsu:Expires: %v", err)
	}
	if !created.Before(expires) {
		return created, expires, fail(ErrTimestampLifetime, "expires %s is not after created %s", expires.UTC().Format(time.RFC3339Nano), created.UTC().Format(time.RFC3339Nano))
	}
	if life := expires.Sub(created); life > v.maxLifetime {
		return created, expires, fail(ErrTimestampLifetime, "lasts %s, at most %s accepted", life, v.maxLifetime)
	}
	if !now.Add(-v.skew).Before(expires) {
		return created, expires, fail(ErrTimestampExpired, "expired %s, now %s", expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return created, expires, nil
}

// signature is the parsed ds:Signature.
type signature struct {
	el         *etree.Element
	signedInfo *etree.Element
	prefixList string // of the SignedInfo canonicalisation
	value      []byte
	keyInfo    *etree.Element
	refs       []reference
}

type reference struct {
	uri, typ   string
	enveloped  bool
	prefixList string
	digest     []byte
}

// readSignature reads the parts of a ds:Signature and checks its algorithms.
func readSignature(r *resolver, el *etree.Element) (*signature, error) {
	s := &signature{el: el}
	var err error
	if s.signedInfo, err = child(r, el, NSDSig, "SignedInfo"); err != nil || s.signedInfo == nil {
		return nil, fail(ErrNoSignature, "want one ds:SignedInfo")
	}
	sv, err := child(r, el, NSDSig, "SignatureValue")
	if err != nil || sv == nil {
		return nil, fail(ErrNoSignature, "want one ds:SignatureValue")
	}
	if s.value, err = base64.StdEncoding.DecodeString(stripSpace(sv.Text())); err != nil {
		return nil, fail(ErrSignature, "SignatureValue is not base64: %v", err)
	}
	if s.keyInfo, err = child(r, el, NSDSig, "KeyInfo"); err != nil {
		return nil, fail(ErrNoSignature, "%v", err)
	}
	cm, err := child(r, s.signedInfo, NSDSig, "CanonicalizationMethod")
	if err != nil || cm == nil {
		return nil, fail(ErrAlgorithm, "want one CanonicalizationMethod")
	}
	if a := cm.SelectAttrValue("Algorithm", ""); a != algExcC14N {
		return nil, fail(ErrAlgorithm, "canonicalization %q", a)
	}
	s.prefixList = inclusivePrefixes(cm)
	sm, err := child(r, s.signedInfo, NSDSig, "SignatureMethod")
	if err != nil || sm == nil {
		return nil, fail(ErrAlgorithm, "want one SignatureMethod")
	}
	if a := sm.SelectAttrValue("Algorithm", ""); a != algRSASHA256 {
		return nil, fail(ErrAlgorithm, "signature method %q", a)
	}
	for _, refEl := range children(r, s.signedInfo, NSDSig, "Reference") {
		if len(s.refs) == maxReferences {
			return nil, fail(ErrAlgorithm, "more than %d references", maxReferences)
		}
		ref := reference{uri: refEl.SelectAttrValue("URI", ""), typ: refEl.SelectAttrValue("Type", "")}
		if trs, _ := child(r, refEl, NSDSig, "Transforms"); trs != nil {
			for _, t := range trs.ChildElements() {
				switch a := t.SelectAttrValue("Algorithm", ""); {
				case !is(r, t, NSDSig, "Transform"):
					return nil, fail(ErrAlgorithm, "unexpected %s in Transforms", t.Tag)
				case a == algExcC14N:
					ref.prefixList = inclusivePrefixes(t)
				case a == algEnveloped:
					ref.enveloped = true
				default:
					return nil, fail(ErrAlgorithm, "transform %q", a)
				}
			}
		}
		dm, err := child(r, refEl, NSDSig, "DigestMethod")
		if err != nil || dm == nil {
			return nil, fail(ErrAlgorithm, "reference %s: want one DigestMethod", ref.uri)
		}
		if a := dm.SelectAttrValue("Algorithm", ""); a != algSHA256 {
			return nil, fail(ErrAlgorithm, "digest %q", a)
		}
		dv, err := child(r, refEl, NSDSig, "DigestValue")
		if err != nil || dv == nil {
			return nil, fail(ErrDigest, "reference %s: want one DigestValue", ref.uri)
		}
		if ref.digest, err = base64.StdEncoding.DecodeString(stripSpace(dv.Text())); err != nil {
			return nil, fail(ErrDigest, "reference %s: DigestValue is not base64", ref.uri)
		}
		s.refs = append(s.refs, ref)
	}
	if len(s.refs) == 0 {
		return nil, fail(ErrMissingReference, "SignedInfo has no Reference")
	}
	if len(s.refs) > maxReferences {
		return nil, fail(ErrAlgorithm, "%d references, at most %d supported", len(s.refs), maxReferences)
	}
	return s, nil
}

// check recomputes the reference's digest over target (omitting the
// signature for the enveloped transform).
func (r *reference) check(target, sig *etree.Element) error {
	var omit *etree.Element
	if r.enveloped {
		omit = sig
	}
	d, err := digestOf(target, r.prefixList, omit)
	if err != nil {
		return fail(ErrMalformed, "canonicalise %s: %v", r.uri, err)
	}
	if !bytes.Equal(d, r.digest) {
		name := r.uri
		if name == "" {
			name = "the document"
		}
		return fail(ErrDigest, "reference %s (%s)", name, target.Tag)
	}
	return nil
}

// verifyValue checks the RSA-SHA256 SignatureValue over the canonical SignedInfo.
func (s *signature) verifyValue(cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fail(ErrAlgorithm, "signing key is %T, want RSA", cert.PublicKey)
	}
	sum, err := digestOf(s.signedInfo, s.prefixList, nil)
	if err != nil {
		return fail(ErrMalformed, "canonicalise SignedInfo: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum, s.value); err != nil {
		return fail(ErrSignature, "%v", err)
	}
	return nil
}

// inclusivePrefixes returns the PrefixList of an ec:InclusiveNamespaces child.
func inclusivePrefixes(el *etree.Element) string {
	for _, c := range el.ChildElements() {
		if c.Tag == "InclusiveNamespaces" {
			return c.SelectAttrValue("PrefixList", "")
		}
	}
	return ""
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
}
