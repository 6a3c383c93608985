package soap

import (
	"bytes"
	"unicode/utf8"
)

// Namespace is a namespace binding: Prefix ("" = the default namespace) bound to URI.
type Namespace struct {
	Prefix, URI string
}

// envelopeScan is what scanEnvelope found in an answer.
type envelopeScan struct {
	child  [2]int // offsets of the Body's first element child, start tag to end tag
	fault  bool   // that child is soapenv:Fault
	scope  [maxScanScope]Namespace
	nScope int
}

// Bounds of what scanEnvelope handles itself; anything beyond goes to the parser.
const (
	maxScanDepth = 64
	maxScanAttrs = 32
	maxScanScope = 16 // declarations on Envelope and Body together
)

// scanEnvelope reads a SOAP 1.1 envelope without building a tree and reports the Body's
// first element child and the namespaces declared on Envelope and Body. It accepts only a
// conservative subset of XML: valid UTF-8 without control characters, every tag balanced
// with the same name, attributes quoted and separated by white space, none repeated, no
// '<' in a value, references only to the five predefined entities or to characters,
// namespace declarations that Parse accepts, within lim (counted as scanNodes counts), names
// without odd characters, nesting within maxScanDepth, at most maxScanAttrs attributes
// per element, exactly one Body and at most one Header. ok is false for anything else —
// including documents that are well-formed but unusual — and the caller then parses the
// answer with Parse, which judges it. So ok means Parse would accept the same bytes as an
// envelope with that Body; it never decides a refusal.
func scanEnvelope(data []byte, lim Limits) (sc envelopeScan, ok bool) {
	if !utf8.Valid(data) {
		return sc, false
	}
	s := scanner{data: data, lim: lim.withDefaults()}
	root, ok := s.prolog()
	if !ok || root.selfClosing {
		return sc, false
	}
	if !s.declsOf(&sc) || s.uriOf(root.name, &sc) != NSEnvelope || s.local(root.name) != "Envelope" {
		return sc, false
	}
	s.push(root.name)
	i := root.end
	headers, bodies := 0, 0
	for {
		t, ok := s.next(i)
		if !ok {
			return sc, false
		}
		i = t.end
		switch t.kind {
		case tokText, tokOther:
			continue
		case tokEnd:
			if !s.pop(t.name) {
				return sc, false
			}
			// After the root: white space, comments and processing instructions only.
			for i < len(data) {
				t, ok := s.next(i)
				if !ok || t.kind == tokStart || t.kind == tokEnd || (t.kind == tokText && !t.blank) {
					return sc, false
				}
				i = t.end
			}
			return sc, headers <= 1 && bodies == 1
		}
		// A child of Envelope: Header and Body are soapenv's, anything else is skipped.
		var body bool
		if s.local(t.name) == "Body" || s.local(t.name) == "Header" {
			// Its own declarations may bind its prefix: resolve with them in scope.
			saved := sc
			if !s.declsOf(&sc) {
				return sc, false
			}
			isEnv := s.uriOf(t.name, &sc) == NSEnvelope
			body = isEnv && s.local(t.name) == "Body"
			if isEnv && !body {
				headers++
			}
			if !body {
				sc = saved // a Header's declarations are not in scope at the Body
			}
		}
		if !body {
			if i, ok = s.skip(t); !ok {
				return sc, false
			}
			continue
		}
		if bodies++; bodies > 1 || t.selfClosing {
			return sc, false
		}
		if i, ok = s.body(t, &sc); !ok {
			return sc, false
		}
	}
}

// body reads the Body whose start tag is t: its first element child is sc.child.
func (s *scanner) body(t tag, sc *envelopeScan) (int, bool) {
	s.push(t.name)
	i := t.end
	first := true
	for {
		c, ok := s.next(i)
		if !ok {
			return 0, false
		}
		i = c.end
		switch c.kind {
		case tokText, tokOther:
			continue
		case tokEnd:
			return i, !first && s.pop(c.name)
		}
		if first {
			first = false
			sc.child[0] = c.start
			// Declarations on the child are the child's business; they resolve only the
			// prefix of a Fault.
			if s.local(c.name) == "Fault" {
				child := *sc
				if !s.declsOf(&child) {
					return 0, false
				}
				sc.fault = s.uriOf(c.name, &child) == NSEnvelope
			}
		}
		if i, ok = s.skip(c); !ok {
			return 0, false
		}
		if sc.child[1] == 0 {
			sc.child[1] = i
		}
	}
}

type tokKind int

const (
	tokText  tokKind = iota
	tokStart         // a start tag (or an empty-element tag)
	tokEnd
	tokOther // comment, processing instruction, CDATA section
)

// tag is one item of markup or text found by next.
type tag struct {
	kind        tokKind
	start, end  int    // data[start:end] is the item
	name        [2]int // start and end tags: the qualified name
	selfClosing bool
	blank       bool // text: white space only
}

// scanner holds the names of the open elements, the attributes of the last start tag read
// (name and value offsets of each), and the counts that Limits bound.
type scanner struct {
	data   []byte
	lim    Limits
	stack  [maxScanDepth][2]int
	depth  int
	attrs  [maxScanAttrs][4]int
	nAttrs int

	nodes, elements, comments int
	decls                     int // namespace declarations
}

func (s *scanner) push(name [2]int) bool {
	if s.depth == maxScanDepth || s.depth >= s.lim.MaxDepth {
		return false
	}
	s.stack[s.depth] = name
	s.depth++
	return true
}

// pop closes the innermost element if name is its name.
func (s *scanner) pop(name [2]int) bool {
	if s.depth == 0 {
		return false
	}
	s.depth--
	open := s.stack[s.depth]
	return bytes.Equal(s.data[open[0]:open[1]], s.data[name[0]:name[1]])
}

// skip passes over the element whose start tag is t (and everything in it).
func (s *scanner) skip(t tag) (int, bool) {
	if t.selfClosing {
		return t.end, true
	}
	base := s.depth
	if !s.push(t.name) {
		return 0, false
	}
	i := t.end
	for s.depth > base {
		c, ok := s.next(i)
		if !ok {
			return 0, false
		}
		i = c.end
		switch c.kind {
		case tokStart:
			if c.selfClosing && s.depth >= s.lim.MaxDepth || !c.selfClosing && !s.push(c.name) {
				return 0, false
			}
		case tokEnd:
			if !s.pop(c.name) {
				return 0, false
			}
		}
	}
	return i, true
}

// prolog skips what may precede the root (an XML declaration naming UTF-8 or no
// encoding, white space, comments, processing instructions; no byte order mark, which the
// parser refuses) and returns the root's start tag.
func (s *scanner) prolog() (tag, bool) {
	i := 0
	for {
		t, ok := s.next(i)
		if !ok {
			return tag{}, false
		}
		switch {
		case t.kind == tokStart:
			return t, true
		case t.kind == tokText && t.blank:
		case t.kind == tokOther && s.data[t.start+1] == '?': // a processing instruction
		case t.kind == tokOther && bytes.HasPrefix(s.data[t.start:], []byte("<!--")):
		default:
			return tag{}, false
		}
		i = t.end
	}
}

// next returns the item starting at i and counts it against the limits; ok is false at the
// end of data, beyond a limit, and for anything outside the accepted subset.
func (s *scanner) next(i int) (t tag, ok bool) {
	t, ok = s.item(i)
	if !ok {
		return t, false
	}
	s.nodes++
	switch t.kind {
	case tokStart:
		s.elements++
	case tokEnd:
		s.nodes-- // the start tag counted the element
	case tokOther:
		if s.data[t.start+1] != '!' || s.data[t.start+2] == '-' { // a comment or a processing instruction
			s.comments++
		}
	}
	return t, s.nodes <= s.lim.MaxNodes && s.elements <= s.lim.MaxElements && s.comments <= s.lim.MaxComments
}

// item reads the item starting at i.
func (s *scanner) item(i int) (tag, bool) {
	d := s.data
	if i >= len(d) {
		return tag{}, false
	}
	if d[i] != '<' {
		j := bytes.IndexByte(d[i:], '<')
		if j < 0 {
			j = len(d) - i
		}
		text := d[i : i+j]
		return tag{kind: tokText, start: i, end: i + j, blank: isBlank(text)}, textOK(text)
	}
	rest := d[i:]
	if len(rest) < 2 {
		return tag{}, false
	}
	var end int
	switch rest[1] {
	case '!':
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end = bytes.Index(rest[4:], []byte("-->"))
			if end < 0 || bytes.Contains(rest[4:4+end], []byte("--")) {
				return tag{}, false
			}
			end += 4 + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end = bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 || !charsOK(rest[9:9+end]) {
				return tag{}, false
			}
			end += 9 + 3
		default: // DOCTYPE and other declarations
			return tag{}, false
		}
	case '?':
		end = bytes.Index(rest[2:], []byte("?>"))
		if end < 0 || !charsOK(rest[2:2+end]) {
			return tag{}, false
		}
		pi := rest[2 : 2+end]
		n := nameLen(pi)
		if n == 0 || (n < len(pi) && !isSpace(pi[n])) || bytes.IndexByte(pi[:n], ':') >= 0 {
			return tag{}, false
		}
		if bytes.EqualFold(pi[:n], []byte("xml")) && (i != 0 || !xmlDeclOK(pi[n:])) {
			return tag{}, false
		}
		end += 2 + 2
	case '/':
		n := nameLen(rest[2:])
		if n == 0 {
			return tag{}, false
		}
		j := 2 + n
		for j < len(rest) && isSpace(rest[j]) {
			j++
		}
		if j >= len(rest) || rest[j] != '>' {
			return tag{}, false
		}
		return tag{kind: tokEnd, start: i, end: i + j + 1, name: [2]int{i + 2, i + 2 + n}}, true
	default:
		return s.startTag(i)
	}
	return tag{kind: tokOther, start: i, end: i + end}, true
}

// startTag reads the start tag at i with its attributes (each: name and value offsets).
func (s *scanner) startTag(i int) (tag, bool) {
	d := s.data
	n := nameLen(d[i+1:])
	if n == 0 {
		return tag{}, false
	}
	t := tag{kind: tokStart, start: i, name: [2]int{i + 1, i + 1 + n}}
	s.nAttrs = 0
	j := i + 1 + n
	for {
		sp := j
		for j < len(d) && isSpace(d[j]) {
			j++
		}
		if j >= len(d) {
			return tag{}, false
		}
		switch d[j] {
		case '>':
			t.end = j + 1
			return t, true
		case '/':
			if j+1 < len(d) && d[j+1] == '>' {
				t.end, t.selfClosing = j+2, true
				return t, true
			}
			return tag{}, false
		}
		if j == sp || s.nAttrs == maxScanAttrs { // attributes are separated by white space
			return tag{}, false
		}
		an := nameLen(d[j:])
		if an == 0 {
			return tag{}, false
		}
		a := [4]int{j, j + an}
		j += an
		for j < len(d) && isSpace(d[j]) {
			j++
		}
		if j >= len(d) || d[j] != '=' {
			return tag{}, false
		}
		j++
		for j < len(d) && isSpace(d[j]) {
			j++
		}
		if j >= len(d) || (d[j] != '"' && d[j] != '\'') {
			return tag{}, false
		}
		q := d[j]
		k := bytes.IndexByte(d[j+1:], q)
		if k < 0 {
			return tag{}, false
		}
		val := d[j+1 : j+1+k]
		if bytes.IndexByte(val, '<') >= 0 || !textOK(val) {
			return tag{}, false
		}
		a[2], a[3] = j+1, j+1+k
		j += k + 2
		name := d[a[0]:a[1]]
		if bytes.HasPrefix(name, []byte("xmlns")) && !s.declOK(name, val) {
			return tag{}, false
		}
		for _, o := range s.attrs[:s.nAttrs] {
			if bytes.Equal(d[o[0]:o[1]], name) {
				return tag{}, false // repeated
			}
		}
		s.attrs[s.nAttrs] = a
		s.nAttrs++
	}
}

// declOK reports whether the attribute name="val" (named xmlns…) is a namespace declaration
// Parse accepts, counting it: over maxNamespaces in the whole document (a bound at least as
// strict as Parse's, in scope) is refused too.
func (s *scanner) declOK(name, val []byte) bool {
	switch {
	case len(name) == len("xmlns"):
	case name[len("xmlns")] != ':':
		return true // an ordinary attribute whose name starts with xmlns
	default:
		prefix := name[len("xmlns:"):]
		if len(val) == 0 || string(prefix) == "xmlns" || (string(prefix) == "xml") != (string(val) == xmlNamespace) {
			return false
		}
	}
	s.decls++
	return s.decls <= maxNamespaces
}

// declsOf adds the namespace declarations of the last start tag read to sc's scope (a prefix
// declared again replaces the earlier binding); false for a declaration Parse refuses or
// beyond maxScanScope.
func (s *scanner) declsOf(sc *envelopeScan) bool {
	d := s.data
	for _, a := range s.attrs[:s.nAttrs] {
		name := d[a[0]:a[1]]
		var prefix []byte
		switch {
		case bytes.Equal(name, []byte("xmlns")):
		case bytes.HasPrefix(name, []byte("xmlns:")):
			prefix = name[len("xmlns:"):]
		default:
			continue
		}
		val := d[a[2]:a[3]]
		if bytes.IndexByte(val, '&') >= 0 {
			return false // a URI with references: the parser decodes it
		}
		if prefix != nil && (len(val) == 0 || string(prefix) == "xmlns" || (string(prefix) == "xml") != (string(val) == xmlNamespace)) {
			return false
		}
		ns := Namespace{Prefix: intern(prefix), URI: intern(val)}
		replaced := false
		for k := range sc.scope[:sc.nScope] {
			if sc.scope[k].Prefix == ns.Prefix {
				sc.scope[k], replaced = ns, true
			}
		}
		if !replaced {
			if sc.nScope == maxScanScope {
				return false
			}
			sc.scope[sc.nScope] = ns
			sc.nScope++
		}
	}
	return true
}

// uriOf resolves the prefix of the qualified name at name in sc's scope ("" when unbound).
func (s *scanner) uriOf(name [2]int, sc *envelopeScan) string {
	q := s.data[name[0]:name[1]]
	var prefix []byte
	if c := bytes.IndexByte(q, ':'); c >= 0 {
		prefix = q[:c]
	}
	for k := sc.nScope - 1; k >= 0; k-- {
		if sc.scope[k].Prefix == string(prefix) {
			return sc.scope[k].URI
		}
	}
	return ""
}

// local returns the local part of the qualified name at name. The comparisons it is used
// in do not allocate.
func (s *scanner) local(name [2]int) string {
	q := s.data[name[0]:name[1]]
	if c := bytes.IndexByte(q, ':'); c >= 0 {
		q = q[c+1:]
	}
	switch string(q) {
	case "Envelope":
		return "Envelope"
	case "Header":
		return "Header"
	case "Body":
		return "Body"
	case "Fault":
		return "Fault"
	}
	return ""
}

// intern returns b as a string, without allocating for the namespaces and prefixes answers
// usually declare.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case NSEnvelope:
		return NSEnvelope
	case NSWSU:
		return NSWSU
	case NSWSSE:
		return NSWSSE
	case NSDSig:
		return NSDSig
	case "soapenv":
		return "soapenv"
	case "soap":
		return "soap"
	case "S":
		return "S"
	case "env":
		return "env"
	case "SOAP-ENV":
		return "SOAP-ENV"
	case "wsu":
		return "wsu"
	case "wsse":
		return "wsse"
	case "ds":
		return "ds"
	}
	return string(b)
}

// nameLen is the length of the XML name b starts with (0 if none): ASCII letters, '_' or
// non-ASCII first, then also digits, '-', '.'; at most one ':', not first or last.
func nameLen(b []byte) int {
	colons := 0
	n := 0
	for n < len(b) {
		c := b[n]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c >= 0x80:
		case (c >= '0' && c <= '9') || c == '-' || c == '.':
			if n == 0 {
				return 0
			}
		case c == ':':
			if n == 0 || colons > 0 || n+1 >= len(b) || !nameStart(b[n+1]) {
				return 0
			}
			colons++
		default:
			if n > 0 && b[n-1] == ':' {
				return 0
			}
			return n
		}
		n++
	}
	if n > 0 && b[n-1] == ':' {
		return 0
	}
	return n
}

func nameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isBlank(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// charsOK reports whether b (valid UTF-8) holds no ASCII control character but tab, newline
// and carriage return, and neither U+FFFE nor U+FFFF: the characters XML allows.
func charsOK(b []byte) bool {
	for i, c := range b {
		switch {
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			return false
		case c == 0xEF && i+2 < len(b) && b[i+1] == 0xBF && (b[i+2] == 0xBE || b[i+2] == 0xBF): // U+FFFE, U+FFFF
			return false
		}
	}
	return true
}

// textOK reports whether text (or an attribute value) has acceptable characters and refers
// only to the predefined entities or to characters.
func textOK(b []byte) bool {
	if !charsOK(b) {
		return false
	}
	for {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			return true
		}
		b = b[i+1:]
		j := bytes.IndexByte(b, ';')
		if j <= 0 {
			return false
		}
		ref := b[:j]
		switch string(ref) {
		case "amp", "lt", "gt", "quot", "apos":
		default:
			if !charRef(ref) {
				return false
			}
		}
		b = b[j+1:]
	}
}

// charRef reports whether ref (between '&' and ';') is a character reference to a
// character XML allows.
func charRef(ref []byte) bool {
	if len(ref) < 2 || ref[0] != '#' {
		return false
	}
	v, base, digits := 0, 10, ref[1:]
	if digits[0] == 'x' {
		base, digits = 16, digits[1:]
	}
	if len(digits) == 0 || len(digits) > 6 {
		return false
	}
	for _, c := range digits {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return false
		}
		v = v*base + d
	}
	return v == 0x9 || v == 0xA || v == 0xD || (v >= 0x20 && v <= 0xD7FF) || (v >= 0xE000 && v <= 0xFFFD) || (v >= 0x10000 && v <= 0x10FFFF)
}

// xmlDeclOK reports whether the pseudo-attributes of an XML declaration are among those
// accepted here: version 1.0, encoding UTF-8, standalone yes or no, each at most once, in
// that order, quoted alike.
func xmlDeclOK(b []byte) bool {
	order := 0
	for {
		sp := 0
		for sp < len(b) && isSpace(b[sp]) {
			sp++
		}
		b = b[sp:]
		if len(b) == 0 {
			return true
		}
		if sp == 0 {
			return false
		}
		eq := bytes.IndexByte(b, '=')
		if eq <= 0 || eq+1 >= len(b) || (b[eq+1] != '"' && b[eq+1] != '\'') {
			return false
		}
		q := b[eq+1]
		k := bytes.IndexByte(b[eq+2:], q)
		if k < 0 {
			return false
		}
		name, val := string(b[:eq]), b[eq+2:eq+2+k]
		b = b[eq+2+k+1:]
		switch {
		case name == "version" && order < 1 && string(val) == "1.0":
			order = 1
		case name == "encoding" && order < 2 && bytes.EqualFold(val, []byte("utf-8")):
			order = 2
		case name == "standalone" && order < 3 && (string(val) == "yes" || string(val) == "no"):
			order = 3
		default:
			return false
		}
	}
}
