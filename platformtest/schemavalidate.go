package platformtest

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// SchemaError is a message that does not validate against its schema: the
// element (a path of local names from the root) and the rule it breaks. It
// never quotes the value (personal data may be in it).
type SchemaError struct {
	Path   string // e.g. /GetInsurabilityForPharmacistRequest/CommonInput/Origin
	Reason string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("platformtest: schema: %s: %s", e.Path, e.Reason)
}

// maxMatchSteps bounds the content-model matcher per document, so a
// crafted message cannot make validation expensive.
const maxMatchSteps = 200000

type validation struct {
	s     *xsdSet
	ids   map[string]bool
	steps int
}

// validate checks root (a message, e.g. the payload of a SOAP Body)
// against the set: it must be a global element of it.
func (s *xsdSet) validate(root *etree.Element) error {
	if root == nil {
		return &SchemaError{Path: "/", Reason: "no element"}
	}
	v := &validation{s: s, ids: map[string]bool{}}
	q := qname{root.NamespaceURI(), root.Tag}
	decl, ok := s.elems[q]
	p := "/" + root.Tag
	if !ok {
		return &SchemaError{Path: p, Reason: "no global declaration of " + q.String() + " in the schema"}
	}
	return v.element(root, decl, p)
}

func elemQName(el *etree.Element) qname { return qname{el.NamespaceURI(), el.Tag} }

// text returns the character data directly inside el.
func charData(el *etree.Element) (string, bool) {
	var b strings.Builder
	nonSpace := false
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
			if strings.TrimFunc(cd.Data, isXMLSpace) != "" {
				nonSpace = true
			}
		}
	}
	return b.String(), nonSpace
}

func derivesFrom(t, base *xType) bool {
	for x := t; x != nil; x = x.base {
		if x == base {
			return true
		}
	}
	return base == anyTypeDef || (base.simple && base.builtin == "anySimpleType")
}

func (v *validation) fail(path, format string, args ...any) error {
	return &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func (v *validation) element(el *etree.Element, decl *xElement, p string) error {
	t := decl.typ
	if t == nil {
		t = anyTypeDef
	}
	nilled := false
	for _, a := range el.Attr {
		if a.Space == "" || a.Space == "xmlns" {
			continue
		}
		ns, _ := lookupPrefix(el, a.Space)
		if ns != nsXSI {
			continue
		}
		switch a.Key {
		case "type":
			q, err := resolveQName(el, a.Value)
			if err != nil {
				return v.fail(p, "xsi:type: %v", err)
			}
			var xt *xType
			if q.ns == nsXSD {
				xt = builtinType(q.local)
			} else {
				xt = v.s.types[q]
			}
			if xt == nil {
				return v.fail(p, "xsi:type %s is not a type of the schema", q)
			}
			if !derivesFrom(xt, t) {
				return v.fail(p, "xsi:type %s does not derive from the declared type", q)
			}
			t = xt
		case "nil":
			if a.Value == "true" || a.Value == "1" {
				if !decl.nillable {
					return v.fail(p, "element is not nillable")
				}
				nilled = true
			}
		}
	}
	if t.abstract {
		return v.fail(p, "type %s is abstract", t.name)
	}
	if t.anyType {
		return v.lax(el, p)
	}
	if err := v.attributes(el, t, p); err != nil {
		return err
	}
	kids := el.ChildElements()
	text, nonSpace := charData(el)
	if nilled {
		if len(kids) > 0 || nonSpace {
			return v.fail(p, "nil element has content")
		}
		return nil
	}
	st := t
	if !t.simple {
		st = t.textType
	}
	if st != nil {
		if len(kids) > 0 {
			return v.fail(p, "element %s is not allowed here (simple content)", kids[0].Tag)
		}
		if text == "" && decl.def != nil {
			text = *decl.def // an empty element takes its default value
		}
		if decl.fixed != nil && st.normalise(text) != st.normalise(*decl.fixed) {
			return v.fail(p, "value differs from the fixed value")
		}
		if err := st.checkValue(text, el, v.ids); err != nil {
			return v.fail(p, "%v", err)
		}
		return nil
	}
	if nonSpace && !t.mixed {
		return v.fail(p, "character content is not allowed (element-only content)")
	}
	binds, err := v.match(t.content, kids, p)
	if err != nil {
		return err
	}
	for i, k := range kids {
		kp := p + "/" + k.Tag
		b := binds[i]
		if b.elem != nil {
			if err := v.element(k, b.elem, kp); err != nil {
				return err
			}
			continue
		}
		if err := v.wildcardChild(k, b.wc, kp); err != nil {
			return err
		}
	}
	return nil
}

// lax validates el under processContents="lax" (or xs:anyType content):
// children with a global declaration are validated, the rest laxly.
func (v *validation) lax(el *etree.Element, p string) error {
	for _, k := range el.ChildElements() {
		kp := p + "/" + k.Tag
		if d, ok := v.s.elems[elemQName(k)]; ok {
			if err := v.element(k, d, kp); err != nil {
				return err
			}
			continue
		}
		if err := v.lax(k, kp); err != nil {
			return err
		}
	}
	return nil
}

func (v *validation) wildcardChild(k *etree.Element, wc *wildcard, p string) error {
	switch wc.process {
	case "skip":
		return nil
	case "lax":
		if d, ok := v.s.elems[elemQName(k)]; ok {
			return v.element(k, d, p)
		}
		return v.lax(k, p)
	}
	d, ok := v.s.elems[elemQName(k)]
	if !ok {
		return v.fail(p, "no global declaration of %s, as the strict wildcard demands", elemQName(k))
	}
	return v.element(k, d, p)
}

func (v *validation) attributes(el *etree.Element, t *xType, p string) error {
	seen := map[qname]bool{}
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		ns := ""
		if a.Space != "" {
			var ok bool
			if ns, ok = lookupPrefix(el, a.Space); !ok {
				return v.fail(p, "attribute prefix %q is not declared", a.Space)
			}
		}
		if ns == nsXSI {
			continue
		}
		q := qname{ns, a.Key}
		seen[q] = true
		var use *xAttrUse
		if t.simple {
			return v.fail(p, "attribute %s is not allowed (simple type)", q)
		}
		use = t.attrs[q]
		if use == nil {
			if t.anyAttr == nil || !t.anyAttr.allows(ns) {
				return v.fail(p, "attribute %s is not allowed", q)
			}
			g, ok := v.s.attrs[q]
			switch {
			case t.anyAttr.process == "skip":
				continue
			case ok:
				use = g
			case t.anyAttr.process == "lax":
				continue
			default:
				return v.fail(p, "attribute %s has no global declaration, as the strict wildcard demands", q)
			}
		}
		if use.fixed != nil && use.typ.normalise(a.Value) != use.typ.normalise(*use.fixed) {
			return v.fail(p, "attribute %s differs from its fixed value", q)
		}
		if err := use.typ.checkValue(a.Value, el, v.ids); err != nil {
			return v.fail(p, "attribute %s: %v", q, err)
		}
	}
	if !t.simple {
		for q, use := range t.attrs {
			if use.required && !seen[q] {
				return v.fail(p, "required attribute %s is missing", q)
			}
		}
	}
	return nil
}

// binding is what a child element matched: a declaration or a wildcard.
type binding struct {
	elem *xElement
	wc   *wildcard
}

// match matches kids against the content model and returns, per child,
// what it matched. Valid schemas obey the unique particle attribution rule,
// so the first complete match found is the only one.
func (v *validation) match(content *particle, kids []*etree.Element, p string) ([]binding, error) {
	if content == nil {
		if len(kids) > 0 {
			return nil, v.fail(p, "element %s is not allowed here (empty content)", kids[0].Tag)
		}
		return nil, nil
	}
	m := &matcher{v: v, kids: kids}
	ok := m.particle(content, 0, func(j int) bool {
		if j > m.furthest {
			m.furthest = j
		}
		return j == len(kids)
	})
	if m.exhausted {
		return nil, v.fail(p, "content model too complex to check")
	}
	if !ok {
		switch {
		case m.furthest < len(kids):
			return nil, v.fail(p, "element %s is not expected here", kids[m.furthest].Tag)
		default:
			return nil, v.fail(p, "content is incomplete: a required element is missing")
		}
	}
	return m.out, nil
}

type matcher struct {
	v         *validation
	kids      []*etree.Element
	out       []binding
	furthest  int
	exhausted bool
}

func (m *matcher) step() bool {
	m.v.steps++
	if m.v.steps > maxMatchSteps {
		m.exhausted = true
		return false
	}
	return true
}

// particle matches p (with its occurrence bounds) from position i and
// calls k with each position where a match ends, until k accepts.
func (m *matcher) particle(p *particle, i int, k func(int) bool) bool {
	return m.repeat(p, i, 0, k)
}

func (m *matcher) repeat(p *particle, i, count int, k func(int) bool) bool {
	if !m.step() {
		return false
	}
	if p.max == unbounded || count < p.max {
		if m.once(p, i, func(j int) bool {
			if j == i && count >= p.min {
				return false // no progress: stop repeating an empty match
			}
			return m.repeat(p, j, count+1, k)
		}) {
			return true
		}
		if m.exhausted {
			return false
		}
	}
	if count >= p.min {
		return k(i)
	}
	return false
}

// once matches one occurrence of p at i.
func (m *matcher) once(p *particle, i int, k func(int) bool) bool {
	if i > m.furthest {
		m.furthest = i
	}
	switch p.kind {
	case pElement:
		if i >= len(m.kids) {
			return false
		}
		decl := p.elem
		if p.isRef {
			decl = m.v.s.elems[p.ref]
		}
		if decl == nil || elemQName(m.kids[i]) != decl.name {
			return false
		}
		m.out = append(m.out, binding{elem: decl})
		if k(i + 1) {
			return true
		}
		m.out = m.out[:len(m.out)-1]
		return false
	case pAny:
		if i >= len(m.kids) || !p.wc.allows(m.kids[i].NamespaceURI()) {
			return false
		}
		m.out = append(m.out, binding{wc: p.wc})
		if k(i + 1) {
			return true
		}
		m.out = m.out[:len(m.out)-1]
		return false
	case pChoice:
		for _, c := range p.kids {
			if m.particle(c, i, k) {
				return true
			}
			if m.exhausted {
				return false
			}
		}
		return false
	default: // sequence
		return m.seq(p.kids, i, k)
	}
}

func (m *matcher) seq(parts []*particle, i int, k func(int) bool) bool {
	if len(parts) == 0 {
		return k(i)
	}
	return m.particle(parts[0], i, func(j int) bool { return m.seq(parts[1:], j, k) })
}
