package sts

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// maxAssertionBytes bounds an assertion read from a TokenStore.
const maxAssertionBytes = 1 << 20

// scope is the namespace declarations of one open element (prefix → URI, "" = default).
type scope map[string]string

// assertionCut is where the assertion is in the message.
type assertionCut struct {
	count int    // number of saml:Assertion children of samlp:Response found
	bytes []byte // the exact bytes of the (first) assertion, completed with inherited namespaces
}

// cutAssertions scans raw (already parsed once and bounded by soap) for saml:Assertion
// elements that are children of a samlp:Response, or the document root when rootOnly is set,
// and returns the exact byte range of the first one. Namespace declarations the element
// inherits from its ancestors are added to its start tag, so that the bytes stand alone: their
// exclusive canonical form, and so the STS signature, is the same as in the message.
func cutAssertions(raw []byte, rootOnly bool) (assertionCut, error) {
	if rootOnly {
		return cutAssertionsIn(raw, "", "")
	}
	return cutAssertionsIn(raw, nsSAMLP, "Response")
}

// cutAssertionsIn is cutAssertions for assertions that are children of {parentNS}parent, or
// the document root when parent is "".
func cutAssertionsIn(raw []byte, parentNS, parent string) (assertionCut, error) {
	rootOnly := parent == ""
	var out assertionCut
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	type open struct {
		ns, local string
		decl      scope
	}
	var stack []open
	resolve := func(prefix string, own scope) string {
		if uri, ok := own[prefix]; ok {
			return uri
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if uri, ok := stack[i].decl[prefix]; ok {
				return uri
			}
		}
		if prefix == "xml" {
			return "http://www.w3.org/XML/1998/namespace"
		}
		return ""
	}
	start, target := int64(-1), -1 // byte offset and stack depth of the assertion being cut
	var startTagEnd int64
	var inherited scope
	var qname string
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrMalformedResponse, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return out, fmt.Errorf("%w: xml directive not allowed", ErrMalformedResponse)
		case xml.StartElement:
			own := scope{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					own[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					own[""] = a.Value
				}
			}
			ns := resolve(t.Name.Space, own)
			isAssertion := ns == nsSAML && t.Name.Local == "Assertion"
			var parentOK bool
			if rootOnly {
				parentOK = len(stack) == 0
			} else if n := len(stack); n > 0 {
				parentOK = stack[n-1].ns == parentNS && stack[n-1].local == parent
			}
			if rootOnly && len(stack) == 0 && !isAssertion {
				return out, fmt.Errorf("%w: root element is {%s}%s, want a saml:Assertion", ErrMalformedResponse, ns, t.Name.Local)
			}
			if isAssertion && parentOK {
				out.count++
				if out.count == 1 {
					start, target = before, len(stack)
					startTagEnd = d.InputOffset()
					qname = t.Name.Local
					if t.Name.Space != "" {
						qname = t.Name.Space + ":" + t.Name.Local
					}
					inherited = scope{}
					for i := range stack {
						for p, uri := range stack[i].decl {
							inherited[p] = uri
						}
					}
					for p := range own {
						delete(inherited, p)
					}
				}
			}
			stack = append(stack, open{ns: ns, local: t.Name.Local, decl: own})
		case xml.EndElement:
			if len(stack) == 0 {
				return out, fmt.Errorf("%w: unbalanced end element", ErrMalformedResponse)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == target && start >= 0 && out.bytes == nil {
				end := d.InputOffset()
				out.bytes = completeStartTag(raw[start:end], raw[start:startTagEnd], qname, inherited)
			}
		}
	}
	return out, nil
}

// completeStartTag returns el with the declarations of inherited added to its start tag.
func completeStartTag(el, startTag []byte, qname string, inherited scope) []byte {
	if len(inherited) == 0 || !bytes.HasPrefix(startTag, []byte("<"+qname)) {
		return bytes.Clone(el)
	}
	prefixes := make([]string, 0, len(inherited))
	for p := range inherited {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	var decl strings.Builder
	for _, p := range prefixes {
		if p == "" {
			decl.WriteString(` xmlns="`)
		} else {
			decl.WriteString(` xmlns:` + p + `="`)
		}
		_ = xml.EscapeText(&decl, []byte(inherited[p]))
		decl.WriteString(`"`)
	}
	at := 1 + len(qname)
	out := make([]byte, 0, len(el)+decl.Len())
	out = append(out, el[:at]...)
	out = append(out, decl.String()...)
	out = append(out, el[at:]...)
	return out
}

// errNoAssertion is wrapped when a Success response holds no assertion.
var errNoAssertion = errors.New("no saml:Assertion in samlp:Response")
