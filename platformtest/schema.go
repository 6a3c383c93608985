package platformtest

import (
	"fmt"
	"io/fs"
	pathpkg "path"
	"regexp"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// This file loads the platform's XML Schemas (testdata/xsd, embedded) into a
// compact validator: the subset of XSD 1.0 those schemas use (global and
// local elements, named and anonymous types, sequence/choice with
// occurrence bounds, wildcards, complex and simple content derived by
// extension or restriction, attributes and attribute groups, simple types
// with facets, lists and unions). It is what lets platformtest judge a
// request as the platform's schema validation does, with no external tool.

const (
	nsXSD = "http://www.w3.org/2001/XMLSchema"
	nsXSI = "http://www.w3.org/2001/XMLSchema-instance"
	nsXML = "http://www.w3.org/XML/1998/namespace"
)

type qname struct{ ns, local string }

func (q qname) String() string {
	if q.ns == "" {
		return q.local
	}
	return "{" + q.ns + "}" + q.local
}

// schemaDoc is one loaded schema file.
type schemaDoc struct {
	path      string
	tns       string
	qualElems bool
	qualAttrs bool
}

// xsdSet is a compiled set of schemas, rooted at one entry file as
// `xmllint --schema FILE` is. It is immutable once built and safe for
// concurrent use.
type xsdSet struct {
	entry      string
	elems      map[qname]*xElement
	types      map[qname]*xType
	attrs      map[qname]*xAttrUse
	attrGroups map[qname]*rawDef
	groups     map[qname]*rawDef

	// loading state
	fsys     fs.FS
	loaded   map[string]bool
	imported map[string]bool // namespaces imported (the first location wins, as in libxml2)
	rawTypes map[qname]*rawDef
	rawElems map[qname]*rawDef
	rawAttrs map[qname]*rawDef
	building map[qname]bool
}

type rawDef struct {
	el  *etree.Element
	doc *schemaDoc
}

type particleKind int

const (
	pElement particleKind = iota
	pSequence
	pChoice
	pAny
)

const unbounded = -1

type particle struct {
	kind     particleKind
	min, max int
	elem     *xElement // pElement: a local declaration, or nil with ref set
	ref      qname
	isRef    bool
	kids     []*particle
	wc       *wildcard
}

type wildcard struct {
	any     bool     // ##any
	other   string   // ##other: any namespace but this one and no namespace; "" unused
	isOther bool     // ##other in use
	list    []string // allowed namespaces ("" = no namespace)
	process string   // strict, lax, skip
}

func (w *wildcard) allows(ns string) bool {
	switch {
	case w.any:
		return true
	case w.isOther:
		return ns != "" && ns != w.other
	}
	for _, n := range w.list {
		if n == ns {
			return true
		}
	}
	return false
}

type xElement struct {
	name     qname
	typ      *xType // inline type, or resolved from typeName
	typeName qname
	hasType  bool
	nillable bool
	fixed    *string
	def      *string // default value, used when the element is empty
}

type xAttrUse struct {
	name     qname
	typ      *xType
	typeName qname
	hasType  bool
	required bool
	fixed    *string
}

type variety int

const (
	vAtomic variety = iota
	vList
	vUnion
)

// facets are one restriction step's constraining facets.
type facets struct {
	patterns       []*regexp.Regexp // ORed within a step
	patternSrc     []string
	enums          []string
	length         int
	minLen, maxLen int
	minIncl        *string
	maxIncl        *string
	minExcl        *string
	maxExcl        *string
	totalDigits    int
	fractionDigits int
	hasFraction    bool
}

type xType struct {
	name     qname
	simple   bool
	abstract bool
	base     *xType
	anyType  bool

	// simple types
	variety variety
	builtin string // the built-in ancestor (atomic) or "" for list/union
	steps   []facets
	item    *xType
	members []*xType

	// complex types
	mixed      bool
	content    *particle // nil: no element content
	textType   *xType    // simple content
	attrs      map[qname]*xAttrUse
	anyAttr    *wildcard
	compiled   bool
	compileErr error
}

// loadXSD reads the schema at entry (a path in fsys) and everything it
// imports and includes, and compiles them.
func loadXSD(fsys fs.FS, entry string) (*xsdSet, error) {
	s := &xsdSet{
		entry:      entry,
		elems:      map[qname]*xElement{},
		types:      map[qname]*xType{},
		attrs:      map[qname]*xAttrUse{},
		attrGroups: map[qname]*rawDef{},
		groups:     map[qname]*rawDef{},
		fsys:       fsys,
		loaded:     map[string]bool{},
		imported:   map[string]bool{},
		rawTypes:   map[qname]*rawDef{},
		rawElems:   map[qname]*rawDef{},
		rawAttrs:   map[qname]*rawDef{},
		building:   map[qname]bool{},
	}
	if err := s.loadFile(entry); err != nil {
		return nil, err
	}
	for q := range s.rawTypes {
		if _, err := s.typeByName(q); err != nil {
			return nil, err
		}
	}
	for q, r := range s.rawAttrs {
		a, err := s.compileAttr(r.el, r.doc, true)
		if err != nil {
			return nil, err
		}
		s.attrs[q] = a
	}
	for q, r := range s.rawElems {
		e, err := s.compileElement(r.el, r.doc, true)
		if err != nil {
			return nil, err
		}
		s.elems[q] = e
	}
	for _, e := range s.elems {
		if err := s.resolveElement(e); err != nil {
			return nil, err
		}
	}
	s.fsys, s.rawTypes, s.rawElems, s.rawAttrs, s.building = nil, nil, nil, nil, nil
	return s, nil
}

func (s *xsdSet) loadFile(p string) error {
	p = pathpkg.Clean(p)
	if s.loaded[p] {
		return nil
	}
	s.loaded[p] = true
	b, err := fs.ReadFile(s.fsys, p)
	if err != nil {
		return fmt.Errorf("platformtest: schema %s: %w", p, err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return fmt.Errorf("platformtest: schema %s: %w", p, err)
	}
	root := doc.Root()
	if root == nil || root.NamespaceURI() != nsXSD || root.Tag != "schema" {
		return fmt.Errorf("platformtest: schema %s: not an xs:schema", p)
	}
	d := &schemaDoc{
		path:      p,
		tns:       root.SelectAttrValue("targetNamespace", ""),
		qualElems: root.SelectAttrValue("elementFormDefault", "") == "qualified",
		qualAttrs: root.SelectAttrValue("attributeFormDefault", "") == "qualified",
	}
	for _, c := range root.ChildElements() {
		if c.NamespaceURI() != nsXSD {
			continue
		}
		name := c.SelectAttrValue("name", "")
		q := qname{d.tns, name}
		switch c.Tag {
		case "import":
			ns, loc := c.SelectAttrValue("namespace", ""), c.SelectAttrValue("schemaLocation", "")
			if loc == "" || s.imported[ns] {
				continue
			}
			s.imported[ns] = true
			if err := s.loadFile(pathpkg.Join(pathpkg.Dir(p), loc)); err != nil {
				return err
			}
		case "include":
			if err := s.loadFile(pathpkg.Join(pathpkg.Dir(p), c.SelectAttrValue("schemaLocation", ""))); err != nil {
				return err
			}
		case "element":
			s.rawElems[q] = &rawDef{c, d}
		case "complexType", "simpleType":
			s.rawTypes[q] = &rawDef{c, d}
		case "attribute":
			s.rawAttrs[q] = &rawDef{c, d}
		case "attributeGroup":
			s.attrGroups[q] = &rawDef{c, d}
		case "group":
			s.groups[q] = &rawDef{c, d}
		case "annotation", "notation":
		default:
			return fmt.Errorf("platformtest: schema %s: unsupported top-level xs:%s", p, c.Tag)
		}
	}
	return nil
}

// resolveQName resolves a prefixed name as written in the schema element el.
func resolveQName(el *etree.Element, v string) (qname, error) {
	v = strings.TrimSpace(v)
	prefix, local := "", v
	if i := strings.IndexByte(v, ':'); i >= 0 {
		prefix, local = v[:i], v[i+1:]
	}
	ns, ok := lookupPrefix(el, prefix)
	if !ok {
		return qname{}, fmt.Errorf("prefix %q of %q is not declared", prefix, v)
	}
	return qname{ns, local}, nil
}

// lookupPrefix finds the namespace bound to prefix in el's scope ("" = the
// default namespace, which may be unbound: then "").
func lookupPrefix(el *etree.Element, prefix string) (string, bool) {
	if prefix == "xml" {
		return nsXML, true
	}
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" {
				return a.Value, true
			}
			if prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, true
			}
		}
	}
	return "", prefix == ""
}

func (s *xsdSet) typeByName(q qname) (*xType, error) {
	if q.ns == nsXSD {
		if t := builtinType(q.local); t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("platformtest: unsupported built-in type xs:%s", q.local)
	}
	if t, ok := s.types[q]; ok {
		if !t.compiled && s.building != nil && s.building[q] {
			return t, nil // recursion through a base: returned while compiling
		}
		return t, t.compileErr
	}
	if s.rawTypes == nil {
		return nil, fmt.Errorf("platformtest: unknown type %s", q)
	}
	r, ok := s.rawTypes[q]
	if !ok {
		return nil, fmt.Errorf("platformtest: unknown type %s", q)
	}
	t := &xType{name: q}
	s.types[q] = t
	s.building[q] = true
	var err error
	if r.el.Tag == "simpleType" {
		err = s.fillSimple(t, r.el, r.doc)
	} else {
		err = s.fillComplex(t, r.el, r.doc)
	}
	delete(s.building, q)
	t.compiled = true
	t.compileErr = err
	return t, err
}

func occurs(el *etree.Element) (int, int, error) {
	min, max := 1, 1
	if v := el.SelectAttrValue("minOccurs", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, fmt.Errorf("minOccurs %q", v)
		}
		min = n
	}
	if v := el.SelectAttrValue("maxOccurs", ""); v != "" {
		if v == "unbounded" {
			max = unbounded
		} else {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, 0, fmt.Errorf("maxOccurs %q", v)
			}
			max = n
		}
	}
	return min, max, nil
}

func xsdChildren(el *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.NamespaceURI() == nsXSD && c.Tag != "annotation" {
			out = append(out, c)
		}
	}
	return out
}

// compileElement builds an element declaration (global when top).
func (s *xsdSet) compileElement(el *etree.Element, d *schemaDoc, top bool) (*xElement, error) {
	name := el.SelectAttrValue("name", "")
	ns := ""
	form := el.SelectAttrValue("form", "")
	if top || form == "qualified" || (form == "" && d.qualElems) {
		ns = d.tns
	}
	e := &xElement{name: qname{ns, name}, nillable: el.SelectAttrValue("nillable", "") == "true"}
	if f := el.SelectAttr("fixed"); f != nil {
		v := f.Value
		e.fixed, e.def = &v, &v
	}
	if f := el.SelectAttr("default"); f != nil {
		v := f.Value
		e.def = &v
	}
	for _, c := range xsdChildren(el) {
		if c.Tag == "unique" || c.Tag == "key" || c.Tag == "keyref" {
			return nil, fmt.Errorf("platformtest: schema %s: element %s: identity constraints (xs:%s) are not supported", d.path, name, c.Tag)
		}
	}
	if tn := el.SelectAttrValue("type", ""); tn != "" {
		q, err := resolveQName(el, tn)
		if err != nil {
			return nil, fmt.Errorf("platformtest: schema %s: element %s: %w", d.path, name, err)
		}
		e.typeName, e.hasType = q, true
		return e, nil
	}
	for _, c := range xsdChildren(el) {
		switch c.Tag {
		case "complexType":
			t := &xType{}
			if err := s.fillComplex(t, c, d); err != nil {
				return nil, err
			}
			e.typ = t
		case "simpleType":
			t := &xType{}
			if err := s.fillSimple(t, c, d); err != nil {
				return nil, err
			}
			e.typ = t
		}
	}
	if e.typ == nil {
		e.typ = anyTypeDef
	}
	return e, nil
}

// resolveElement binds a declaration's named type; run once every type is known.
func (s *xsdSet) resolveElement(e *xElement) error {
	if e.typ != nil || !e.hasType {
		return nil
	}
	t, err := s.typeByName(e.typeName)
	if err != nil {
		return err
	}
	e.typ = t
	return nil
}

func (s *xsdSet) compileAttr(el *etree.Element, d *schemaDoc, top bool) (*xAttrUse, error) {
	a := &xAttrUse{required: el.SelectAttrValue("use", "") == "required"}
	if f := el.SelectAttr("fixed"); f != nil {
		v := f.Value
		a.fixed = &v
	}
	if ref := el.SelectAttrValue("ref", ""); ref != "" {
		q, err := resolveQName(el, ref)
		if err != nil {
			return nil, err
		}
		a.name = q
		if g, ok := s.attrs[q]; ok {
			a.typ = g.typ
			if a.fixed == nil {
				a.fixed = g.fixed
			}
			return a, nil
		}
		r, ok := s.rawAttrs[q]
		if !ok {
			if q.ns == nsXML {
				a.typ = builtinType("string")
				return a, nil
			}
			return nil, fmt.Errorf("platformtest: schema %s: unknown attribute %s", d.path, q)
		}
		g, err := s.compileAttr(r.el, r.doc, true)
		if err != nil {
			return nil, err
		}
		a.typ = g.typ
		if a.fixed == nil {
			a.fixed = g.fixed
		}
		return a, nil
	}
	name := el.SelectAttrValue("name", "")
	ns := ""
	form := el.SelectAttrValue("form", "")
	if top || form == "qualified" || (form == "" && d.qualAttrs) {
		ns = d.tns
	}
	a.name = qname{ns, name}
	if tn := el.SelectAttrValue("type", ""); tn != "" {
		q, err := resolveQName(el, tn)
		if err != nil {
			return nil, err
		}
		t, err := s.typeByName(q)
		if err != nil {
			return nil, err
		}
		a.typ = t
		return a, nil
	}
	for _, c := range xsdChildren(el) {
		if c.Tag == "simpleType" {
			t := &xType{}
			if err := s.fillSimple(t, c, d); err != nil {
				return nil, err
			}
			a.typ = t
		}
	}
	if a.typ == nil {
		a.typ = builtinType("anySimpleType")
	}
	return a, nil
}

// fillSimple compiles an xs:simpleType.
func (s *xsdSet) fillSimple(t *xType, el *etree.Element, d *schemaDoc) error {
	t.simple = true
	for _, c := range xsdChildren(el) {
		switch c.Tag {
		case "restriction":
			base, err := s.simpleBase(c, d)
			if err != nil {
				return err
			}
			return restrictSimple(t, base, c, d)
		case "list":
			t.variety = vList
			if it := c.SelectAttrValue("itemType", ""); it != "" {
				q, err := resolveQName(c, it)
				if err != nil {
					return err
				}
				if t.item, err = s.typeByName(q); err != nil {
					return err
				}
			} else {
				for _, cc := range xsdChildren(c) {
					if cc.Tag == "simpleType" {
						t.item = &xType{}
						if err := s.fillSimple(t.item, cc, d); err != nil {
							return err
						}
					}
				}
			}
			if t.item == nil {
				return fmt.Errorf("platformtest: schema %s: list without item type", d.path)
			}
			return nil
		case "union":
			t.variety = vUnion
			for _, m := range strings.Fields(c.SelectAttrValue("memberTypes", "")) {
				q, err := resolveQName(c, m)
				if err != nil {
					return err
				}
				mt, err := s.typeByName(q)
				if err != nil {
					return err
				}
				t.members = append(t.members, mt)
			}
			for _, cc := range xsdChildren(c) {
				if cc.Tag == "simpleType" {
					mt := &xType{}
					if err := s.fillSimple(mt, cc, d); err != nil {
						return err
					}
					t.members = append(t.members, mt)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("platformtest: schema %s: simpleType %s without derivation", d.path, t.name)
}

// simpleBase returns the base of a restriction: its base attribute or its
// inline simpleType.
func (s *xsdSet) simpleBase(c *etree.Element, d *schemaDoc) (*xType, error) {
	if b := c.SelectAttrValue("base", ""); b != "" {
		q, err := resolveQName(c, b)
		if err != nil {
			return nil, err
		}
		return s.typeByName(q)
	}
	for _, cc := range xsdChildren(c) {
		if cc.Tag == "simpleType" {
			bt := &xType{}
			if err := s.fillSimple(bt, cc, d); err != nil {
				return nil, err
			}
			return bt, nil
		}
	}
	return nil, fmt.Errorf("platformtest: schema %s: restriction without base", d.path)
}

// restrictSimple makes t a restriction of base with the facets below c.
func restrictSimple(t, base *xType, c *etree.Element, d *schemaDoc) error {
	if !base.simple {
		if base.textType == nil {
			return fmt.Errorf("platformtest: schema %s: simple restriction of complex type %s", d.path, base.name)
		}
		base = base.textType
	}
	t.simple = true
	t.base = base
	t.variety = base.variety
	t.builtin = base.builtin
	t.item = base.item
	t.members = base.members
	t.steps = append([]facets(nil), base.steps...)
	f := facets{length: -1, minLen: -1, maxLen: -1, totalDigits: -1}
	any := false
	for _, fc := range xsdChildren(c) {
		v := fc.SelectAttrValue("value", "")
		any = true
		switch fc.Tag {
		case "enumeration":
			f.enums = append(f.enums, v)
		case "pattern":
			re, err := compileXSDPattern(v)
			if err != nil {
				return fmt.Errorf("platformtest: schema %s: pattern %q: %w", d.path, v, err)
			}
			f.patterns = append(f.patterns, re)
			f.patternSrc = append(f.patternSrc, v)
		case "length", "minLength", "maxLength", "totalDigits", "fractionDigits":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("platformtest: schema %s: %s %q", d.path, fc.Tag, v)
			}
			switch fc.Tag {
			case "length":
				f.length = n
			case "minLength":
				f.minLen = n
			case "maxLength":
				f.maxLen = n
			case "totalDigits":
				f.totalDigits = n
			case "fractionDigits":
				f.fractionDigits, f.hasFraction = n, true
			}
		case "minInclusive":
			f.minIncl = &v
		case "maxInclusive":
			f.maxIncl = &v
		case "minExclusive":
			f.minExcl = &v
		case "maxExclusive":
			f.maxExcl = &v
		case "whiteSpace", "simpleType":
			any = fc.Tag == "whiteSpace"
		default:
			return fmt.Errorf("platformtest: schema %s: unsupported facet xs:%s", d.path, fc.Tag)
		}
	}
	if any {
		t.steps = append(t.steps, f)
	}
	return nil
}

// compileXSDPattern translates an XML Schema regular expression (always
// anchored) to Go's syntax; the schemas use only the common subset.
func compileXSDPattern(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			switch p[i+1] {
			case 'i':
				b.WriteString(`[\p{L}_:]`)
				i++
				continue
			case 'c':
				b.WriteString(`[\p{L}\p{N}._:\-]`)
				i++
				continue
			}
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		}
		b.WriteByte(c)
	}
	return regexp.Compile(`^(?:` + b.String() + `)$`)
}

// fillComplex compiles an xs:complexType.
func (s *xsdSet) fillComplex(t *xType, el *etree.Element, d *schemaDoc) error {
	t.abstract = el.SelectAttrValue("abstract", "") == "true"
	t.mixed = el.SelectAttrValue("mixed", "") == "true"
	t.attrs = map[qname]*xAttrUse{}
	for _, c := range xsdChildren(el) {
		switch c.Tag {
		case "complexContent":
			if c.SelectAttrValue("mixed", "") == "true" {
				t.mixed = true
			}
			for _, der := range xsdChildren(c) {
				if der.Tag != "extension" && der.Tag != "restriction" {
					continue
				}
				q, err := resolveQName(der, der.SelectAttrValue("base", ""))
				if err != nil {
					return err
				}
				var base *xType
				if q.ns == nsXSD && q.local == "anyType" {
					base = anyTypeDef
				} else if base, err = s.typeByName(q); err != nil {
					return err
				}
				t.base = base
				own, err := s.contentOf(der, d)
				if err != nil {
					return err
				}
				if der.Tag == "extension" {
					for k, v := range base.attrs {
						t.attrs[k] = v
					}
					t.anyAttr = base.anyAttr
					switch {
					case base.content == nil:
						t.content = own
					case own == nil:
						t.content = base.content
					default:
						t.content = &particle{kind: pSequence, min: 1, max: 1, kids: []*particle{base.content, own}}
					}
				} else {
					if base != anyTypeDef {
						for k, v := range base.attrs {
							t.attrs[k] = v
						}
					}
					t.content = own
				}
				if err := s.attributesOf(t, der, d); err != nil {
					return err
				}
			}
		case "simpleContent":
			for _, der := range xsdChildren(c) {
				if der.Tag != "extension" && der.Tag != "restriction" {
					continue
				}
				q, err := resolveQName(der, der.SelectAttrValue("base", ""))
				if err != nil {
					return err
				}
				base, err := s.typeByName(q)
				if err != nil {
					return err
				}
				t.base = base
				if !base.simple {
					for k, v := range base.attrs {
						t.attrs[k] = v
					}
					t.anyAttr = base.anyAttr
				}
				if der.Tag == "extension" {
					if base.simple {
						t.textType = base
					} else {
						t.textType = base.textType
					}
				} else {
					st := &xType{}
					if err := restrictSimple(st, base, der, d); err != nil {
						return err
					}
					t.textType = st
				}
				if err := s.attributesOf(t, der, d); err != nil {
					return err
				}
			}
		default:
			// sequence/choice/group/attributes directly in the type
		}
	}
	if t.base == nil {
		own, err := s.contentOf(el, d)
		if err != nil {
			return err
		}
		t.content = own
		if err := s.attributesOf(t, el, d); err != nil {
			return err
		}
	}
	return nil
}

// contentOf compiles the model group of a complexType or a derivation.
func (s *xsdSet) contentOf(el *etree.Element, d *schemaDoc) (*particle, error) {
	for _, c := range xsdChildren(el) {
		switch c.Tag {
		case "sequence", "choice", "group", "all":
			return s.compileParticle(c, d)
		}
	}
	return nil, nil
}

func (s *xsdSet) compileParticle(el *etree.Element, d *schemaDoc) (*particle, error) {
	min, max, err := occurs(el)
	if err != nil {
		return nil, fmt.Errorf("platformtest: schema %s: %w", d.path, err)
	}
	p := &particle{min: min, max: max}
	switch el.Tag {
	case "element":
		p.kind = pElement
		if ref := el.SelectAttrValue("ref", ""); ref != "" {
			q, err := resolveQName(el, ref)
			if err != nil {
				return nil, err
			}
			p.ref, p.isRef = q, true
			return p, nil
		}
		e, err := s.compileElement(el, d, false)
		if err != nil {
			return nil, err
		}
		if err := s.resolveElement(e); err != nil {
			return nil, err
		}
		p.elem = e
	case "sequence", "choice":
		p.kind = pSequence
		if el.Tag == "choice" {
			p.kind = pChoice
		}
		for _, c := range xsdChildren(el) {
			k, err := s.compileParticle(c, d)
			if err != nil {
				return nil, err
			}
			p.kids = append(p.kids, k)
		}
	case "group":
		q, err := resolveQName(el, el.SelectAttrValue("ref", ""))
		if err != nil {
			return nil, err
		}
		g, ok := s.groups[q]
		if !ok {
			return nil, fmt.Errorf("platformtest: schema %s: unknown group %s", d.path, q)
		}
		inner, err := s.contentOf(g.el, g.doc)
		if err != nil || inner == nil {
			return nil, fmt.Errorf("platformtest: schema %s: group %s: %v", d.path, q, err)
		}
		p.kind, p.kids = pSequence, []*particle{inner}
	case "any":
		p.kind = pAny
		p.wc = newWildcard(el, d)
	default:
		return nil, fmt.Errorf("platformtest: schema %s: unsupported xs:%s", d.path, el.Tag)
	}
	return p, nil
}

func newWildcard(el *etree.Element, d *schemaDoc) *wildcard {
	w := &wildcard{process: el.SelectAttrValue("processContents", "strict")}
	ns := el.SelectAttrValue("namespace", "##any")
	switch ns {
	case "##any":
		w.any = true
	case "##other":
		w.isOther, w.other = true, d.tns
	default:
		for _, n := range strings.Fields(ns) {
			switch n {
			case "##targetNamespace":
				w.list = append(w.list, d.tns)
			case "##local":
				w.list = append(w.list, "")
			default:
				w.list = append(w.list, n)
			}
		}
	}
	return w
}

// attributesOf adds the attributes, attribute groups and attribute
// wildcard declared directly below el to t.
func (s *xsdSet) attributesOf(t *xType, el *etree.Element, d *schemaDoc) error {
	for _, c := range xsdChildren(el) {
		switch c.Tag {
		case "attribute":
			if c.SelectAttrValue("use", "") == "prohibited" {
				q := qname{"", c.SelectAttrValue("name", "")}
				if r := c.SelectAttrValue("ref", ""); r != "" {
					q, _ = resolveQName(c, r)
				}
				delete(t.attrs, q)
				continue
			}
			a, err := s.compileAttr(c, d, false)
			if err != nil {
				return err
			}
			t.attrs[a.name] = a
		case "attributeGroup":
			q, err := resolveQName(c, c.SelectAttrValue("ref", ""))
			if err != nil {
				return err
			}
			g, ok := s.attrGroups[q]
			if !ok {
				return fmt.Errorf("platformtest: schema %s: unknown attribute group %s", d.path, q)
			}
			if err := s.attributesOf(t, g.el, g.doc); err != nil {
				return err
			}
		case "anyAttribute":
			t.anyAttr = newWildcard(c, d)
		}
	}
	return nil
}

// anyTypeDef is xs:anyType: any attributes, any content, children checked
// laxly.
var anyTypeDef = &xType{name: qname{nsXSD, "anyType"}, anyType: true, mixed: true, compiled: true,
	content: &particle{kind: pAny, min: 0, max: unbounded, wc: &wildcard{any: true, process: "lax"}},
	anyAttr: &wildcard{any: true, process: "lax"}}
