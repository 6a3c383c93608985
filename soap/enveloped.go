package soap

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// NSXAdES is the namespace of the XAdES qualifying properties.
const NSXAdES = "http://uri.etsi.org/01903/v1.3.2#"

// EnvelopedOptions configures SignEnveloped.
type EnvelopedOptions struct {
	// IDAttr is the attribute holding el's ID ("Id", "AssertionID",
	// "RequestID"); the reference is then "#"+ID, and an ID is created when
	// el has none. "" = the reference is URI="" (the whole document).
	IDAttr string
	// Certificates go into KeyInfo/X509Data, the signer's first.
	Certificates []*x509.Certificate
	// Before is the local name of the child of el before which ds:Signature
	// is inserted (SAML puts it before Subject or Status); "" = appended last.
	Before string
	// XAdES adds xades:QualifyingProperties with SignedProperties (SigningTime,
	// SigningCertificate) and a second reference of type SignedProperties.
	XAdES bool
	// Now is the clock of SigningTime; nil = time.Now.
	Now func() time.Time
}

// SignEnveloped signs el with an enveloped ds:Signature (exclusive C14N,
// SHA-256, RSA-SHA256) added as its child, after setting el's ID attribute
// when IDAttr names one el lacks. Without IDAttr, el must be the root of its
// document: URI="" denotes the whole document.
func SignEnveloped(el *etree.Element, key crypto.Signer, opts EnvelopedOptions) error {
	if el == nil || key == nil {
		return errors.New("soap: sign enveloped: nil element or key")
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return fmt.Errorf("soap: sign enveloped: key is %T, want RSA", key.Public())
	}
	if len(children(newResolver(), el, NSDSig, "Signature")) > 0 {
		return errors.New("soap: sign enveloped: element already carries a ds:Signature")
	}
	if opts.XAdES && len(opts.Certificates) == 0 {
		return errors.New("soap: sign enveloped: XAdES needs the signing certificate in Certificates")
	}
	uri := ""
	if opts.IDAttr == "" && !isDocumentRoot(el) {
		return errors.New("soap: sign enveloped: URI=\"\" signs the whole document; give IDAttr to sign a nested element")
	}
	if opts.IDAttr != "" {
		id := el.SelectAttrValue(opts.IDAttr, "")
		if id == "" {
			id = "_" + newID()
			el.CreateAttr(opts.IDAttr, id)
		}
		uri = "#" + id
	}
	docDigest, err := digestOf(el, "", nil)
	if err != nil {
		return fmt.Errorf("soap: sign enveloped: canonicalise %s: %w", el.Tag, err)
	}

	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", NSDSig)
	sigID := "xmldsig-" + newID()
	sig.CreateAttr("Id", sigID)
	si := signedInfo(sig)
	addReference(si, uri, "", docDigest, true)

	var before *etree.Element
	if opts.Before != "" {
		for _, c := range el.ChildElements() {
			if c.Tag == opts.Before {
				before = c
				break
			}
		}
	}
	if before != nil {
		el.InsertChildAt(before.Index(), sig)
	} else {
		el.AddChild(sig)
	}
	undo := func(err error) error {
		el.RemoveChild(sig)
		return err
	}

	if len(opts.Certificates) > 0 {
		ki := sig.CreateElement("ds:KeyInfo")
		xd := ki.CreateElement("ds:X509Data")
		for _, c := range opts.Certificates {
			xd.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	if opts.XAdES {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		propsID := sigID + "-signedprops"
		props := xadesProperties(sig, sigID, propsID, now(), opts.Certificates[0])
		d, err := digestOf(props, "", nil)
		if err != nil {
			return undo(fmt.Errorf("soap: sign enveloped: canonicalise SignedProperties: %w", err))
		}
		addReference(si, "#"+propsID, typeXAdESProp, d, false)
	}
	if err := signSignedInfo(sig, si, key); err != nil {
		return undo(err)
	}
	return nil
}

// xadesProperties adds ds:Object/xades:QualifyingProperties to sig and
// returns its SignedProperties.
func xadesProperties(sig *etree.Element, sigID, propsID string, at time.Time, cert *x509.Certificate) *etree.Element {
	obj := sig.CreateElement("ds:Object")
	qp := obj.CreateElement("xades:QualifyingProperties")
	qp.CreateAttr("xmlns:xades", NSXAdES)
	qp.CreateAttr("Target", "#"+sigID)
	sp := qp.CreateElement("xades:SignedProperties")
	sp.CreateAttr("Id", propsID)
	ssp := sp.CreateElement("xades:SignedSignatureProperties")
	ssp.CreateElement("xades:SigningTime").SetText(at.UTC().Format(timestampLayout))
	c := ssp.CreateElement("xades:SigningCertificate").CreateElement("xades:Cert")
	cd := c.CreateElement("xades:CertDigest")
	cd.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", algSHA256)
	sum := sha256.Sum256(cert.Raw)
	cd.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(sum[:]))
	is := c.CreateElement("xades:IssuerSerial")
	is.CreateElement("ds:X509IssuerName").SetText(cert.Issuer.String())
	is.CreateElement("ds:X509SerialNumber").SetText(cert.SerialNumber.String())
	return sp
}

// VerifyEnvelopedOptions configures VerifyEnveloped.
type VerifyEnvelopedOptions struct {
	// IDAttr is the attribute holding el's ID; "" = any of Id, ID,
	// AssertionID, RequestID, ResponseID (URI="" is accepted either way).
	IDAttr string
	// Now is the time at which the certificate chain must be valid; nil = time.Now.
	Now func() time.Time
	// Intermediates completes chains, besides the KeyInfo certificates.
	Intermediates *x509.CertPool
	// Signer, when set, is asked whether the signer's certificate (chained to the
	// roots) may sign this document, before the SignatureValue is checked and any
	// reference digested; its error is returned wrapped in ErrUntrusted. Use it to
	// pin a subject or fingerprint. nil = any certificate that chains.
	Signer func(cert *x509.Certificate) error
}

// VerifyEnveloped checks el's enveloped ds:Signature child: a reference to el
// itself (URI "" or "#"+its ID) with the enveloped-signature and exc-c14n
// transforms, any other reference pointing inside the signature (XAdES
// SignedProperties), SHA-256 digests, the RSA-SHA256 value, and a chain from
// the first KeyInfo certificate to roots (the others serve as
// intermediates). The chain and the SignatureValue are checked before any
// reference is digested. On success the comments below el are removed and
// the text they split is joined, so every reader of el sees the signed
// values. It returns the signer's certificate. Errors are the Err* sentinels
// of Verify.
func VerifyEnveloped(el *etree.Element, roots *x509.CertPool, opts VerifyEnvelopedOptions) (*x509.Certificate, error) {
	if el == nil {
		return nil, errors.New("soap: verify enveloped: nil element")
	}
	r := newResolver()
	sigs := children(r, el, NSDSig, "Signature")
	switch {
	case len(sigs) == 0:
		return nil, fail(ErrNoSignature, "%s has no ds:Signature child", el.Tag)
	case len(sigs) > 1:
		return nil, fail(ErrNoSignature, "%s has %d ds:Signature children, want one", el.Tag, len(sigs))
	}
	sigEl := sigs[0]
	ids, err := idIndex(topOf(el))
	if err != nil {
		return nil, err
	}
	sig, err := readSignature(r, sigEl)
	if err != nil {
		return nil, err
	}
	own := map[string]bool{}
	if opts.IDAttr != "" {
		if id := el.SelectAttrValue(opts.IDAttr, ""); id != "" {
			own[id] = true
		}
	} else {
		for _, a := range el.Attr {
			if idAttrNames[a.Key] && a.Space != "xmlns" {
				own[a.Value] = true
			}
		}
	}
	// Structure first (cheap), then the signer's chain and the SignatureValue
	// over SignedInfo, and only then the digests of the referenced parts: an
	// untrusted or forged signature costs a few microseconds whatever el holds.
	docSigned := false
	var signedProps *etree.Element
	targets := make([]*etree.Element, len(sig.refs))
	for i := range sig.refs {
		ref := &sig.refs[i]
		var target *etree.Element
		switch {
		case ref.uri == "" && !isDocumentRoot(el):
			return nil, fail(ErrWrapped, "reference URI=\"\" names the whole document, not the nested %s", el.Tag)
		case ref.uri == "" || (strings.HasPrefix(ref.uri, "#") && own[ref.uri[1:]]):
			if !ref.enveloped {
				return nil, fail(ErrAlgorithm, "reference to the signed element lacks the enveloped-signature transform")
			}
			target = el
			docSigned = true
		case strings.HasPrefix(ref.uri, "#"):
			target = ids[ref.uri[1:]]
			if target == nil {
				return nil, fail(ErrMissingReference, "reference %s resolves to no element", ref.uri)
			}
			if !within(target, sigEl) {
				return nil, fail(ErrWrapped, "reference %s points outside the signed element's signature", ref.uri)
			}
			if ref.enveloped {
				return nil, fail(ErrAlgorithm, "enveloped-signature transform on reference %s", ref.uri)
			}
		default:
			return nil, fail(ErrWrapped, "reference URI %q is not a same-document reference", ref.uri)
		}
		targets[i] = target
		if ref.typ == typeXAdESProp {
			signedProps = target
		}
	}
	if !docSigned {
		return nil, fail(ErrWrapped, "no reference points at %s itself", el.Tag)
	}

	var certs []*x509.Certificate
	if sig.keyInfo != nil {
		for _, xd := range children(r, sig.keyInfo, NSDSig, "X509Data") {
			for _, xc := range children(r, xd, NSDSig, "X509Certificate") {
				der, err := base64.StdEncoding.DecodeString(stripSpace(xc.Text()))
				if err != nil {
					return nil, fail(ErrUntrusted, "X509Certificate is not base64: %v", err)
				}
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fail(ErrUntrusted, "X509Certificate: %v", err)
				}
				certs = append(certs, c)
			}
		}
	}
	if len(certs) == 0 {
		return nil, fail(ErrUntrusted, "KeyInfo holds no X509Certificate")
	}
	signer := certs[0]
	if roots == nil {
		return nil, fail(ErrUntrusted, "no trust roots given")
	}
	inter := x509.NewCertPool()
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	}
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrUntrusted, signer.Subject.CommonName, err)
	}
	if opts.Signer != nil {
		if err := opts.Signer(signer); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrUntrusted, signer.Subject.CommonName, err)
		}
	}
	if err := sig.verifyValue(signer); err != nil {
		return nil, err
	}
	for i := range sig.refs {
		if err := sig.refs[i].check(targets[i], sigEl); err != nil {
			return nil, err
		}
	}
	if err := checkSigningCertificate(signedProps, signer); err != nil {
		return nil, err
	}
	// What a caller reads of el must be what was signed (see Verify).
	normalizeSigned(el)
	return signer, nil
}

// isDocumentRoot reports whether el is the root element of its document (or
// detached), the element a URI="" reference denotes.
func isDocumentRoot(el *etree.Element) bool {
	p := el.Parent()
	return p == nil || (p.Parent() == nil && p.Tag == "" && p.Space == "")
}

// checkSigningCertificate checks that signed XAdES properties, when present
// and naming a SHA-256 certificate digest, name the certificate that signed:
// the signed statement of who the signer is must agree with KeyInfo.
func checkSigningCertificate(props *etree.Element, signer *x509.Certificate) error {
	if props == nil {
		return nil
	}
	var digests []string
	for _, cd := range props.FindElements(".//CertDigest") {
		if dm := cd.SelectElement("DigestMethod"); dm != nil && dm.SelectAttrValue("Algorithm", "") == algSHA256 {
			if dv := cd.SelectElement("DigestValue"); dv != nil {
				digests = append(digests, stripSpace(dv.Text()))
			}
		}
	}
	if len(digests) == 0 {
		return nil
	}
	sum := sha256.Sum256(signer.Raw)
	want := base64.StdEncoding.EncodeToString(sum[:])
	for _, d := range digests {
		if d == want {
			return nil
		}
	}
	return fail(ErrUntrusted, "XAdES SigningCertificate does not name the KeyInfo certificate %q", signer.Subject.CommonName)
}
