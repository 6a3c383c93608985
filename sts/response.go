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
	issuer    string
	skew      time.Duration
	holderKey *x509.Certificate
	limits    soap.Limits
}

// readResponse returns the assertion of a samlp:Response body (body is the Body's first child,
// raw the whole message, from which the assertion's exact bytes are cut) answering requestID.
func (v *validator) readResponse(raw []byte, body *etree.Element, requestID string, now time.Time) (*Token, error) {
	if body.NamespaceURI() != nsSAMLP || body.Tag != "Response" {
		return nil, fmt.Errorf("%w: body is {%s}%s, want samlp:Response", ErrMalformedResponse, body.NamespaceURI(), body.Tag)
	}
	if irt := body.SelectAttrValue("InResponseTo", ""); irt != "" && irt != requestID {
		return nil, fmt.Errorf("%w: InResponseTo %q does not answer request %q", ErrMalformedResponse, irt, requestID)
	}
	status := childNS(body, nsSAMLP, "Status")
	code := childNS(status, nsSAMLP, "StatusCode")
	if status == nil || code == nil {
		return nil, fmt.Errorf("%w: samlp:Response has no samlp:Status/samlp:StatusCode", ErrMalformedResponse)
	}
	value := strings.TrimSpace(code.SelectAttrValue("Value", ""))
	if !strings.HasSuffix(value, "Success") {
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
		return nil, se
	}
	n := 0
	for _, c := range body.ChildElements() {
		if c.NamespaceURI() == nsSAML && c.Tag == "Assertion" {
			n++
		}
	}
	cut, err := cutAssertions(raw, false)
	if err != nil {
		return nil, err
	}
	switch {
	case n == 0 || cut.count == 0:
		return nil, fmt.Errorf("%w: %v", ErrMalformedResponse, errNoAssertion)
	case n != 1 || cut.count != 1:
		return nil, fmt.Errorf("%w: %d saml:Assertion elements in samlp:Response, want exactly one", ErrMalformedResponse, max(n, cut.count))
	}
	return v.validate(cut.bytes, now)
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
	return v.validate(raw, now)
}

// validate parses assertion (standalone bytes) and checks the STS signature, issuer,
// conditions and holder-of-key certificate at now.
func (v *validator) validate(assertion []byte, now time.Time) (*Token, error) {
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
	if _, err := soap.VerifyEnveloped(el, v.roots, soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: func() time.Time { return now }}); err != nil {
		return fail(ErrSignature, err, "")
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

	// Every subject confirmation must be holder-of-key with our certificate.
	confirmations := 0
	for _, st := range el.ChildElements() {
		subj := childNS(st, nsSAML, "Subject")
		if subj == nil {
			continue
		}
		sc := childNS(subj, nsSAML, "SubjectConfirmation")
		if sc == nil {
			continue
		}
		confirmations++
		hok := false
		for _, m := range sc.ChildElements() {
			if m.NamespaceURI() == nsSAML && m.Tag == "ConfirmationMethod" && strings.TrimSpace(m.Text()) == methodHolderOfKey {
				hok = true
			}
		}
		if !hok {
			return fail(ErrHolderOfKey, nil, "%s: confirmation method is not holder-of-key", st.Tag)
		}
		certEl := childNS(childNS(childNS(sc, nsDSig, "KeyInfo"), nsDSig, "X509Data"), nsDSig, "X509Certificate")
		if certEl == nil {
			return fail(ErrHolderOfKey, nil, "%s: no ds:KeyInfo/ds:X509Data/ds:X509Certificate", st.Tag)
		}
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certEl.Text()), ""))
		if err != nil {
			return fail(ErrHolderOfKey, err, "%s: certificate not base64", st.Tag)
		}
		if !bytes.Equal(der, v.holderKey.Raw) {
			return fail(ErrHolderOfKey, nil, "%s: certificate differs from the configured holder-of-key certificate", st.Tag)
		}
	}
	if confirmations == 0 {
		return fail(ErrHolderOfKey, nil, "no saml:SubjectConfirmation")
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
