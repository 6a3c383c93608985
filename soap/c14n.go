package soap

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Algorithm identifiers ehgate signs with and accepts.
const (
	algExcC14N    = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algEnveloped  = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algSHA256     = "http://www.w3.org/2001/04/xmlenc#sha256"
	algRSASHA256  = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	typeXAdESProp = "http://uri.etsi.org/01903#SignedProperties"
)

// canonicalNodes counts the nodes of every subtree canonicalised: the work
// of a signature check, read by the tests that prove a refused signature
// digested nothing and that the work is linear in the input.
var canonicalNodes atomic.Int64

// canonical returns the exclusive canonical form (goxmldsig's exc-c14n) of el
// as it stands in its document: namespaces declared on el's ancestors are
// brought into scope first, so a prefix bound above el canonicalises as it
// would in place. When omit is a child of el, it is left out (the
// enveloped-signature transform). el itself is not modified.
//
// Only the ancestors' prefixes that the subtree uses (or prefixList names)
// are brought in: exc-c14n outputs no other, and every prefix in scope costs
// goxmldsig a map entry per element.
func canonical(el *etree.Element, prefixList string, omit *etree.Element) ([]byte, error) {
	var buf bytes.Buffer
	if err := canonicalize(&buf, el, prefixList, omit); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// canonicalize writes canonical(el, prefixList, omit) to w.
func canonicalize(w etree.Writer, el *etree.Element, prefixList string, omit *etree.Element) error {
	cp := el.Copy()
	if omit != nil && omit.Parent() == el {
		cp.RemoveChildAt(omit.Index())
	}
	// exc-c14n without comments drops them; goxmldsig does it one slice
	// removal at a time (quadratic in the comments of an element), so they
	// are gone in one linear pass before it runs.
	canonicalNodes.Add(int64(stripComments(cp)))
	// The prefixes the subtree uses but el does not declare, resolved through
	// el's ancestors (nearest declaration wins) in one pass over their attributes.
	need := usedPrefixes(cp, prefixList)
	for _, a := range el.Attr {
		switch {
		case a.Space == "xmlns":
			delete(need, a.Key)
		case a.Space == "" && a.Key == "xmlns":
			delete(need, "")
		}
	}
	delete(need, "xml")
	delete(need, "xmlns")
	found := make(map[string]string, len(need))
	for anc := el.Parent(); anc != nil && len(found) < len(need); anc = anc.Parent() {
		for _, a := range anc.Attr {
			prefix := ""
			switch {
			case a.Space == "xmlns":
				prefix = a.Key
			case a.Space == "" && a.Key == "xmlns":
			default:
				continue
			}
			if _, done := found[prefix]; need[prefix] && !done {
				found[prefix] = a.Value
			}
		}
	}
	for prefix, uri := range found {
		switch {
		case prefix == "":
			if uri != "" { // an empty default namespace needs no declaration at the apex
				cp.CreateAttr("xmlns", uri)
			}
		default:
			cp.CreateAttr("xmlns:"+prefix, uri)
		}
	}
	// goxmldsig's transform, then its serialisation settings; in between, two
	// corrections where goxmldsig departs from the exc-c14n rules that xmlsec1
	// and other verifiers apply (see finishC14N).
	// goxmldsig does not know "#default" in a prefix list: note the default
	// namespace in force at every element, to output it as the list asks.
	var defaults map[*etree.Element]string
	if slices.Contains(strings.Fields(prefixList), "#default") {
		defaults = make(map[*etree.Element]string)
		inherited := found[""] // "" when no ancestor declares one
		recordDefaults(cp, inherited, defaults)
	}
	if err := etreeutils.TransformExcC14n(cp, prefixList, false); err != nil {
		return err
	}
	finishC14N(cp, map[string]string{"xml": etreeutils.XMLNamespace}, "", defaults)
	cp.WriteTo(w, &canonicalSettings)
	return nil
}

// canonicalSettings are goxmldsig's serialisation settings of canonical XML.
var canonicalSettings = etree.WriteSettings{CanonicalAttrVal: true, CanonicalEndTags: true, CanonicalText: true}

// recordDefaults notes the default namespace in force at el and below.
func recordDefaults(el *etree.Element, inForce string, out map[*etree.Element]string) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == "xmlns" {
			inForce = a.Value
		}
	}
	out[el] = inForce
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			recordDefaults(c, inForce, out)
		}
	}
}

// finishC14N corrects goxmldsig's output in the places it departs from
// exc-c14n, found by comparing with xmlsec1:
//   - attributes are ordered by namespace URI, then local name (goxmldsig
//     orders prefixed attributes by local name), after the namespace
//     declarations (the default one first, then by prefix);
//   - xmlns="" is output only to undo a default namespace an output ancestor
//     declared (goxmldsig also outputs it where no default was in force);
//   - with "#default" in the prefix list, the default namespace in force is
//     output wherever it differs from the output ancestors' (defaults holds
//     it per element; nil when the list does not name it).
//
// scope maps the prefixes declared by el's output ancestors to their URIs;
// outDefault is the default namespace they put in force.
func finishC14N(el *etree.Element, scope map[string]string, outDefault string, defaults map[*etree.Element]string) {
	if defaults != nil {
		if want := defaults[el]; want != outDefault {
			el.Attr = slices.DeleteFunc(el.Attr, func(a etree.Attr) bool { return a.Space == "" && a.Key == "xmlns" })
			el.Attr = append(el.Attr, etree.Attr{Key: "xmlns", Value: want})
		}
	}
	for i, a := range el.Attr {
		if a.Space == "" && a.Key == "xmlns" {
			if a.Value == "" && outDefault == "" {
				el.Attr = slices.Delete(el.Attr, i, i+1)
			} else {
				outDefault = a.Value
			}
			break
		}
	}
	for _, a := range el.Attr {
		if a.Space == "xmlns" {
			scope = maps.Clone(scope)
			break
		}
	}
	for _, a := range el.Attr {
		if a.Space == "xmlns" {
			scope[a.Key] = a.Value
		}
	}
	if len(el.Attr) > 1 {
		rank := func(a etree.Attr) (group int, uri, local string) {
			switch {
			case a.Space == "" && a.Key == "xmlns":
				return 0, "", ""
			case a.Space == "xmlns":
				return 1, "", a.Key
			case a.Space == "":
				return 2, "", a.Key
			default:
				return 2, scope[a.Space], a.Key
			}
		}
		slices.SortStableFunc(el.Attr, func(x, y etree.Attr) int {
			gx, ux, lx := rank(x)
			gy, uy, ly := rank(y)
			if c := cmp.Compare(gx, gy); c != 0 {
				return c
			}
			if c := strings.Compare(ux, uy); c != 0 {
				return c
			}
			return strings.Compare(lx, ly)
		})
	}
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			finishC14N(c, scope, outDefault, defaults)
		}
	}
}

// usedPrefixes returns the prefixes of the elements and attributes under el,
// and those of prefixList ("#default" standing for the default namespace).
func usedPrefixes(el *etree.Element, prefixList string) map[string]bool {
	used := make(map[string]bool, 8)
	for _, p := range strings.Fields(prefixList) {
		if p == "#default" {
			p = ""
		}
		used[p] = true
	}
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		used[e.Space] = true
		for _, a := range e.Attr {
			if a.Space != "" && a.Space != "xmlns" {
				used[a.Space] = true
			}
		}
		for _, t := range e.Child {
			if c, ok := t.(*etree.Element); ok {
				walk(c)
			}
		}
	}
	walk(el)
	return used
}

// digestOf returns the SHA-256 of canonical(el, prefixList, omit).
func digestOf(el *etree.Element, prefixList string, omit *etree.Element) ([]byte, error) {
	h := sha256.New()
	w := bufio.NewWriterSize(h, 2048)
	if err := canonicalize(w, el, prefixList, omit); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// idAttrNames are the attributes treated as XML IDs when resolving a
// reference and checking uniqueness, whatever their prefix (wsu:Id, xml:id, …).
var idAttrNames = map[string]bool{"Id": true, "ID": true, "id": true, "AssertionID": true, "RequestID": true, "ResponseID": true}

// idIndex maps every ID value under root to its element. A value carried by
// two elements (or twice by one) is an error: a reference to it would be
// ambiguous, the door signature wrapping walks through.
func idIndex(root *etree.Element) (map[string]*etree.Element, error) {
	ids := make(map[string]*etree.Element, 8)
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		for _, a := range el.Attr {
			if !idAttrNames[a.Key] || a.Space == "xmlns" || (a.Space == "xml" && a.Key != "id") {
				continue
			}
			if _, dup := ids[a.Value]; dup {
				return fmt.Errorf("%w: %q", ErrDuplicateID, a.Value)
			}
			ids[a.Value] = el
		}
		for _, t := range el.Child {
			if c, ok := t.(*etree.Element); ok {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	return ids, nil
}

// topOf returns the outermost ancestor of el (el itself when detached).
func topOf(el *etree.Element) *etree.Element {
	for el.Parent() != nil && el.Parent().Parent() != nil {
		el = el.Parent()
	}
	if p := el.Parent(); p != nil && p.Tag != "" {
		return p
	}
	return el
}
