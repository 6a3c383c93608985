package soap

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// Namespaces of the SOAP 1.1, WS-Security, XML Signature and SAML 1.1 vocabularies.
const (
	NSEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
	NSWSSE     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU      = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSDSig     = "http://www.w3.org/2000/09/xmldsig#"
	NSSAML     = "urn:oasis:names:tc:SAML:1.0:assertion"
	NSSAMLP    = "urn:oasis:names:tc:SAML:1.0:protocol"
)

// NewEnvelope builds a soapenv:Envelope with a soapenv:Header holding headers
// (omitted when there are none) and a soapenv:Body holding body (a detached
// element; nil gives an empty Body). The elements are adopted, not copied.
func NewEnvelope(body *etree.Element, headers ...*etree.Element) *etree.Document {
	doc := etree.NewDocument()
	env := doc.CreateElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", NSEnvelope)
	if len(headers) > 0 {
		h := env.CreateElement("soapenv:Header")
		for _, e := range headers {
			if e != nil {
				h.AddChild(e)
			}
		}
	}
	b := env.CreateElement("soapenv:Body")
	if body != nil {
		b.AddChild(body)
	}
	return doc
}

// writeSettings escape text and attribute values the way canonical XML does,
// so that what a signature digested survives serialisation and re-parsing
// (carriage returns, tabs and newlines in attributes are not normalised away).
var writeSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}

// Marshal serialises doc without an XML declaration. It does not modify doc.
func Marshal(doc *etree.Document) ([]byte, error) {
	if doc == nil || doc.Root() == nil {
		return nil, errors.New("soap: marshal: document has no root element")
	}
	var buf bytes.Buffer
	buf.Grow(4096)
	ws := writeSettings
	for _, t := range doc.Child {
		switch t.(type) {
		case *etree.Element, *etree.Comment:
			t.WriteTo(&buf, &ws)
		}
	}
	return buf.Bytes(), nil
}

// namespaceOf resolves the namespace URI of el's prefix through its ancestors.
func namespaceOf(el *etree.Element) string { return el.NamespaceURI() }

// resolver resolves element namespaces, reading each element's own
// declarations once. A lookup costs one map probe per ancestor, whatever the
// number of attributes: hostile input cannot make sibling loops quadratic.
type resolver struct {
	decls map[*etree.Element]map[string]string
}

func newResolver() *resolver {
	return &resolver{decls: make(map[*etree.Element]map[string]string, 16)}
}

// uri returns the namespace URI of el.
func (r *resolver) uri(el *etree.Element) string {
	for e := el; e != nil; e = e.Parent() {
		d, ok := r.decls[e]
		if !ok {
			for _, a := range e.Attr {
				switch {
				case a.Space == "xmlns":
				case a.Space == "" && a.Key == "xmlns":
				default:
					continue
				}
				if d == nil {
					d = make(map[string]string, 4)
				}
				if a.Space == "xmlns" {
					d[a.Key] = a.Value
				} else {
					d[""] = a.Value
				}
			}
			r.decls[e] = d
		}
		if u, found := d[el.Space]; found {
			return u
		}
	}
	return ""
}

// is reports whether el is the element {ns}local.
func is(r *resolver, el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && r.uri(el) == ns
}

// children returns the child elements of el named {ns}local.
func children(r *resolver, el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok && c.Tag == local && r.uri(c) == ns {
			out = append(out, c)
		}
	}
	return out
}

// child returns the only child of el named {ns}local, nil when there is none,
// and an error when there are several.
func child(r *resolver, el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := children(r, el, ns, local)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	default:
		return nil, fmt.Errorf("%d %s elements where one is allowed", len(cs), local)
	}
}

// firstChildElement returns the first element child of el, or nil.
func firstChildElement(el *etree.Element) *etree.Element {
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			return c
		}
	}
	return nil
}

// envelopeParts returns the Header (possibly nil) and Body of a SOAP 1.1
// envelope, or ErrNotEnvelope.
func envelopeParts(doc *etree.Document) (header, body *etree.Element, err error) {
	if doc == nil {
		return nil, nil, fmt.Errorf("%w: no document", ErrNotEnvelope)
	}
	root := doc.Root()
	if root == nil {
		return nil, nil, fmt.Errorf("%w: no root element", ErrNotEnvelope)
	}
	r := newResolver()
	if !is(r, root, NSEnvelope, "Envelope") {
		return nil, nil, fmt.Errorf("%w: root is {%s}%s", ErrNotEnvelope, namespaceOf(root), root.Tag)
	}
	header, err = child(r, root, NSEnvelope, "Header")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotEnvelope, err)
	}
	body, err = child(r, root, NSEnvelope, "Body")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotEnvelope, err)
	}
	if body == nil {
		return nil, nil, fmt.Errorf("%w: no Body", ErrNotEnvelope)
	}
	return header, body, nil
}

// BodyContent returns the first element child of the envelope's soapenv:Body.
func BodyContent(doc *etree.Document) (*etree.Element, error) {
	_, body, err := envelopeParts(doc)
	if err != nil {
		return nil, err
	}
	c := firstChildElement(body)
	if c == nil {
		return nil, fmt.Errorf("%w: empty Body", ErrNotEnvelope)
	}
	return c, nil
}

// HeaderOf returns the envelope's soapenv:Header, or nil when it has none.
func HeaderOf(doc *etree.Document) *etree.Element {
	h, _, err := envelopeParts(doc)
	if err != nil {
		return nil
	}
	return h
}
