package sts

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// Token is a SAML 1.1 holder-of-key assertion issued by the STS. A Token is shared by every
// caller of Provider.Token: treat it as read-only.
type Token struct {
	// Assertion is the saml:Assertion exactly as the STS signed it, standing alone (namespace
	// declarations it inherited in the response are carried on its root). Pass it unchanged to
	// soap.SignerConfig.Assertion.
	Assertion []byte
	// ID is the AssertionID.
	ID string
	// NotBefore and NotOnOrAfter bound the validity the STS granted (Conditions; NotBefore
	// falls back to IssueInstant).
	NotBefore, NotOnOrAfter time.Time
	// Attributes are the attribute values of the AttributeStatement by AttributeName, in
	// document order (a name used in several namespaces collects the values of each). They
	// contain personal data (SSINs): never log them.
	Attributes map[string][]string
}

// Lifetime returns the validity the STS granted.
func (t *Token) Lifetime() time.Duration { return t.NotOnOrAfter.Sub(t.NotBefore) }

// validator checks assertions issued for one holder-of-key certificate.
type validator struct {
	roots     *x509.CertPool
	pin       pinned
	issuer    string
	skew      time.Duration
	lifetime  time.Duration // the validity asked for: more is refused (ErrLifetime)
	holderKey *x509.Certificate
	limits    soap.Limits
}

// readResponse returns the assertion of a samlp:Response body (body is the Body's first child,
// raw the whole message, from which the assertion's exact bytes are cut) answering requestID,
// sent at asked.
func (v *validator) readResponse(raw []byte, body *etree.Element, requestID string, asked, now time.Time) (*Token, error) {
	if body.NamespaceURI() != nsSAMLP || body.Tag != "Response" {
		return nil, fmt.Errorf("%w: body is {%s}%s, want samlp:Response", ErrMalformedResponse, body.NamespaceURI(), body.Tag)
	}
	if irt := body.SelectAttrValue("InResponseTo", ""); irt != requestID {
		detail := "no InResponseTo"
		if body.SelectAttr("InResponseTo") != nil {
			detail = fmt.Sprintf("InResponseTo %q, our RequestID %q", irt, requestID)
		}
		return nil, &ValidationError{Problem: ErrInResponseTo, Detail: detail}
	}
	if err := readStatus(body); err != nil {
		return nil, err
	}
	return v.onlyAssertion(raw, body, false, asked, now)
}

// readStatus returns nil when samlp:Status/samlp:StatusCode/@Value is the QName samlp:Success
// (resolved: {urn:oasis:names:tc:SAML:1.0:protocol}Success), a *StatusError for any other
// code, ErrMalformedResponse when there is none.
func readStatus(body *etree.Element) error {
	status := childNS(body, nsSAMLP, "Status")
	code := childNS(status, nsSAMLP, "StatusCode")
	if status == nil || code == nil {
		return fmt.Errorf("%w: samlp:Response has no samlp:Status/samlp:StatusCode", ErrMalformedResponse)
	}
	value := strings.TrimSpace(code.SelectAttrValue("Value", ""))
	if !isQName(code, value, nsSAMLP, "Success") {
		se := &StatusError{Code: value}
		for sub := childNS(code, nsSAMLP, "StatusCode"); sub != nil; sub = childNS(sub, nsSAMLP, "StatusCode") {
			se.SubCodes = append(se.SubCodes, strings.TrimSpace(sub.SelectAttrValue("Value", "")))
			if len(se.SubCodes) == 8 {
				break
			}
		}
		if m := childNS(status, nsSAMLP, "StatusMessage"); m != nil {
			se.Message = safeStatusMessage(m.Text())
		}
		return se
	}
	return nil
}

// isQName reports whether value, a QName in the scope of el, is {ns}local.
func isQName(el *etree.Element, value, ns, local string) bool {
	prefix, name, found := strings.Cut(value, ":")
	if !found {
		prefix, name = "", value
	}
	if name != local {
		return false
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if (prefix == "" && a.Space == "" && a.Key == "xmlns") || (prefix != "" && a.Space == "xmlns" && a.Key == prefix) {
				return a.Value == ns
			}
		}
	}
	return false
}

// onlyAssertion checks that parent (a samlp:Response, or the WS-Trust
// wst:RequestedSecurityToken when wsTrust is set) holds exactly one saml:Assertion, and
// validates it with its exact bytes cut from raw.
func (v *validator) onlyAssertion(raw []byte, parent *etree.Element, wsTrust bool, asked, now time.Time) (*Token, error) {
	n := 0
	for _, c := range parent.ChildElements() {
		if c.NamespaceURI() == nsSAML && c.Tag == "Assertion" {
			n++
		}
	}
	var cut assertionCut
	var err error
	if wsTrust {
		cut, err = cutAssertionsIn(raw, nsWST, "RequestedSecurityToken")
	} else {
		cut, err = cutAssertions(raw, false)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case n == 0 || cut.count == 0:
		return nil, fmt.Errorf("%w: %v", ErrMalformedResponse, errNoAssertion)
	case n != 1 || cut.count != 1:
		return nil, fmt.Errorf("%w: %d saml:Assertion elements in %s, want exactly one", ErrMalformedResponse, max(n, cut.count), parent.Tag)
	}
	return v.validate(cut.bytes, now, asked)
}

// parseStored checks assertion bytes read back from a TokenStore and validates them.
func (v *validator) parseStored(raw []byte, now time.Time) (*Token, error) {
	if len(raw) > maxAssertionBytes {
		return nil, &ValidationError{Problem: ErrAssertionSize, Detail: fmt.Sprintf("%d bytes, at most %d", len(raw), maxAssertionBytes)}
	}
	cut, err := cutAssertions(raw, true)
	if err != nil {
		return nil, &ValidationError{Problem: ErrAssertion, Err: err}
	}
	if cut.count != 1 || cut.bytes == nil {
		return nil, &ValidationError{Problem: ErrAssertion, Detail: "not a saml:Assertion document"}
	}
	return v.validate(raw, now, time.Time{})
}

// validate parses assertion (standalone bytes) and checks the STS signature and its signer,
// issuer, conditions, lifetime and holder-of-key certificate at now. asked is when the token
// was requested (zero for a stored token: its IssueInstant stands for it); NotOnOrAfter may
// be at most the requested lifetime plus the clock skew after it.
func (v *validator) validate(assertion []byte, now, asked time.Time) (*Token, error) {
	doc, err := soap.ParseDocument(bytes.NewReader(assertion), v.limits)
	if err != nil {
		return nil, &ValidationError{Problem: ErrAssertion, Err: err}
	}
	el := doc.Root()
	if el.NamespaceURI() != nsSAML || el.Tag != "Assertion" {
		return nil, &ValidationError{Problem: ErrAssertion, Detail: fmt.Sprintf("root is {%s}%s", el.NamespaceURI(), el.Tag)}
	}
	id := el.SelectAttrValue("AssertionID", "")
	fail := func(problem error, cause error, format string, args ...any) (*Token, error) {
		return nil, &ValidationError{AssertionID: id, Problem: problem, Detail: fmt.Sprintf(format, args...), Err: cause}
	}
	if id == "" {
		return fail(ErrAssertion, nil, "no AssertionID")
	}
	if mv := el.SelectAttrValue("MajorVersion", ""); mv != "1" {
		return fail(ErrAssertion, nil, "MajorVersion %q, want 1", mv)
	}
	signer, err := soap.VerifyEnveloped(el, v.roots, soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: func() time.Time { return now }})
	if err != nil {
		return fail(ErrSignature, err, "")
	}
	if err := v.pin.check(signer); err != nil {
		return fail(ErrSigner, nil, "%v", err)
	}
	if iss := el.SelectAttrValue("Issuer", ""); iss != v.issuer {
		return fail(ErrIssuer, nil, "issuer %q, want %q", iss, v.issuer)
	}

	tok := &Token{Assertion: assertion, ID: id, Attributes: map[string][]string{}}
	issued, err := parseSAMLTime(el.SelectAttrValue("IssueInstant", ""))
	if err != nil {
		return fail(ErrAssertion, err, "IssueInstant")
	}
	tok.NotBefore = issued
	cond := childNS(el, nsSAML, "Conditions")
	if cond == nil || cond.SelectAttr("NotOnOrAfter") == nil {
		return fail(ErrAssertion, nil, "no Conditions/@NotOnOrAfter")
	}
	if tok.NotOnOrAfter, err = parseSAMLTime(cond.SelectAttrValue("NotOnOrAfter", "")); err != nil {
		return fail(ErrAssertion, err, "Conditions/@NotOnOrAfter")
	}
	if nb := cond.SelectAttr("NotBefore"); nb != nil {
		if tok.NotBefore, err = parseSAMLTime(nb.Value); err != nil {
			return fail(ErrAssertion, err, "Conditions/@NotBefore")
		}
	}
	if !tok.NotOnOrAfter.After(tok.NotBefore) {
		return fail(ErrAssertion, nil, "NotOnOrAfter %s not after NotBefore %s", stamp(tok.NotOnOrAfter), stamp(tok.NotBefore))
	}
	if now.Add(v.skew).Before(tok.NotBefore) {
		return fail(ErrNotYetValid, nil, "valid from %s, now %s (clock skew allowed %s)", stamp(tok.NotBefore), stamp(now), v.skew)
	}
	if !now.Before(tok.NotOnOrAfter) {
		return fail(ErrExpired, nil, "valid until %s, now %s", stamp(tok.NotOnOrAfter), stamp(now))
	}
	from := asked
	if from.IsZero() {
		from = issued
	}
	if limit := from.Add(v.lifetime + v.skew); tok.NotOnOrAfter.After(limit) {
		return fail(ErrLifetime, nil, "valid until %s, asked %s from %s (clock skew allowed %s)", stamp(tok.NotOnOrAfter), v.lifetime, stamp(from), v.skew)
	}

	// Exactly one subject confirmation in the whole assertion (the STS puts it in the
	// AuthenticationStatement's Subject), holder-of-key, with our certificate alone.
	var confs []*etree.Element
	walk(el, func(e *etree.Element) {
		if e.Tag == "SubjectConfirmation" && e.NamespaceURI() == nsSAML {
			confs = append(confs, e)
		}
	})
	if len(confs) != 1 {
		return fail(ErrConfirmation, nil, "%d saml:SubjectConfirmation elements", len(confs))
	}
	sc := confs[0]
	var methods []string
	for _, m := range sc.ChildElements() {
		if m.NamespaceURI() == nsSAML && m.Tag == "ConfirmationMethod" {
			methods = append(methods, strings.TrimSpace(m.Text()))
		}
	}
	if len(methods) != 1 || methods[0] != methodHolderOfKey {
		return fail(ErrHolderOfKey, nil, "confirmation methods %q, want holder-of-key only", methods)
	}
	var certs []*etree.Element
	walk(sc, func(e *etree.Element) {
		if e.Tag == "X509Certificate" && e.NamespaceURI() == nsDSig {
			certs = append(certs, e)
		}
	})
	if len(certs) != 1 || childNS(childNS(childNS(sc, nsDSig, "KeyInfo"), nsDSig, "X509Data"), nsDSig, "X509Certificate") != certs[0] {
		return fail(ErrHolderOfKey, nil, "%d certificates in the subject confirmation, want one in ds:KeyInfo/ds:X509Data", len(certs))
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certs[0].Text()), ""))
	if err != nil {
		return fail(ErrHolderOfKey, err, "certificate not base64")
	}
	if !bytes.Equal(der, v.holderKey.Raw) {
		return fail(ErrHolderOfKey, nil, "certificate differs from the configured holder-of-key certificate")
	}

	for _, st := range el.ChildElements() {
		if st.NamespaceURI() != nsSAML || st.Tag != "AttributeStatement" {
			continue
		}
		for _, a := range st.ChildElements() {
			if a.NamespaceURI() != nsSAML || a.Tag != "Attribute" {
				continue
			}
			name := a.SelectAttrValue("AttributeName", "")
			vals := tok.Attributes[name]
			for _, val := range a.ChildElements() {
				if val.NamespaceURI() == nsSAML && val.Tag == "AttributeValue" {
					vals = append(vals, strings.TrimSpace(val.Text()))
				}
			}
			tok.Attributes[name] = vals
		}
	}
	return tok, nil
}

// walk calls f on el and every element below it, depth first.
func walk(el *etree.Element, f func(*etree.Element)) {
	f(el)
	for _, c := range el.ChildElements() {
		walk(c, f)
	}
}

// childNS returns el's first child element {ns}local, or nil (also when el is nil).
func childNS(el *etree.Element, ns, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// parseSAMLTime reads an xsd:dateTime (with zone; fractional seconds optional).
func parseSAMLTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// xsd:dateTime without a zone: SAML requires UTC.
		t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: not an xsd:dateTime", s)
		}
	}
	return t.UTC(), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
