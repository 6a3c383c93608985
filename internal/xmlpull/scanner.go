// Package xmlpull is a strict pull scanner of XML 1.0 documents held in memory: it hands out
// start tags, end tags and text as sub-slices of the input, resolves namespaces, and checks
// well-formedness on the way (names, attribute syntax and uniqueness, references, end tags
// matching start tags, characters), without building a tree and without allocating once
// warm: a reader that pulls only what its schema names costs what it reads. Document type
// declarations are refused (no DTD, no entity beyond the five predefined ones), and so are
// names with non-ASCII characters outside the common scripts of nameLetters.
//
// A Scanner is not safe for concurrent use; scanning is linear in the input.
package xmlpull

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of a token.
type Kind uint8

// Token kinds. Comments and processing instructions are skipped (but checked).
const (
	None  Kind = iota
	Start      // a start tag (an empty-element tag gives Start then End)
	End        // an end tag
	Text       // character data or a CDATA section
	EOF        // the end of the input
)

// ErrMalformed is the sentinel of input that is not well-formed XML; the error is a *SyntaxError.
var ErrMalformed = errors.New("xmlpull: malformed xml")

// ErrDoctype reports a document type declaration.
var ErrDoctype = errors.New("xmlpull: document type declaration not allowed")

// SyntaxError says what is malformed and at which byte offset; it quotes no content.
type SyntaxError struct {
	Offset int
	Reason string
}

// Error names the offset and the reason.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("xmlpull: malformed xml at byte %d: %s", e.Offset, e.Reason)
}

// Is reports whether target is ErrMalformed.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// MaxDepth is the deepest element nesting accepted (the root is depth 1).
const MaxDepth = 64

// maxAttrs bounds the attributes of one element (their uniqueness check is quadratic).
const maxAttrs = 32

// XMLNamespace is the namespace the xml prefix is bound to.
const XMLNamespace = "http://www.w3.org/XML/1998/namespace"

// Attr is an attribute of the current start tag: sub-slices of the input. Value is raw
// (references not expanded); use Scanner.AttrValue.
type Attr struct {
	Prefix, Local, Value []byte
}

var xmlNamespace = []byte(XMLNamespace)

// Binding is a namespace declaration: Prefix (nil: the default namespace) bound to URI
// (references expanded; empty: no namespace).
type Binding struct {
	Prefix, URI []byte
}

type open struct {
	qname, uri []byte
	marks      int // len(binds) before this element's declarations
}

// Scanner pulls the tokens of one document.
type Scanner struct {
	data  []byte
	pos   int
	start int // where the document starts (after a byte order mark)
	kind  Kind
	err   error
	root  bool // the root element was seen
	stack []open
	binds []Binding
	attrs []Attr

	tokStart int // where the current token starts
	markup   int // comments and processing instructions passed over
	blanks   int // white-space runs outside the root element passed over
	declared []byte

	// the current token
	prefix, local, uri []byte // Start and End
	text               []byte // Text: raw bytes (CDATA content, or text with references)
	cdata              bool
	pendingEnd         bool // an empty-element tag: End follows Start
	scratch            []byte

	stackBuf [16]open
	bindBuf  [16]Binding
	attrBuf  [8]Attr
}

// Reset makes s scan data from its start (after a UTF-8 byte order mark).
func (s *Scanner) Reset(data []byte) {
	*s = Scanner{data: data, scratch: s.scratch[:0], declared: s.declared[:0]}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		s.pos, s.start = 3, 3
	}
	s.stack = s.stackBuf[:0]
	s.binds = s.bindBuf[:0]
	s.attrs = s.attrBuf[:0]
}

// Offset is the byte offset of the scanner in the input.
func (s *Scanner) Offset() int { return s.pos }

// Depth is the number of open elements (after a Start, counting it).
func (s *Scanner) Depth() int { return len(s.stack) }

// Span returns the byte offsets of the current token in the input, data[start:end]: a tag,
// a text run, a CDATA section with its delimiters. An empty-element tag is the span of its
// Start and of its End.
func (s *Scanner) Span() (start, end int) { return s.tokStart, s.pos }

// Scope returns the namespace declarations in scope at the current token, outermost first:
// those given to Declare, then those of the open elements (a Start's own included, and an
// End's until the next call to Next). A prefix declared again appears again; the last one is
// in force. Valid until the next call to Next.
func (s *Scanner) Scope() []Binding { return s.binds }

// Skipped returns what Next has passed over so far without handing out a token: comments
// and processing instructions (an XML declaration included), and runs of white space
// outside the root element.
func (s *Scanner) Skipped() (markup, blanks int) { return s.markup, s.blanks }

// Declare binds prefix ("": the default namespace) to uri for the whole document, before the
// first call to Next: for a document that is an element cut out of a larger one, read in the
// scope of its ancestors' declarations. Both are copied to a buffer the scanner keeps across
// Reset. It returns an error (ErrMalformed) for a declaration Namespaces in XML forbids, and
// after the first token.
func (s *Scanner) Declare(prefix, uri string) error {
	if s.err != nil || s.root || s.pos != s.start || s.kind != None {
		return errors.New("xmlpull: Declare after the first token")
	}
	n := len(s.declared)
	s.declared = append(append(s.declared, prefix...), uri...)
	b := s.declared[n:len(s.declared):len(s.declared)]
	var p []byte
	if prefix != "" {
		p = b[:len(prefix):len(prefix)]
		if !validName(p) || !allNameBytes(p) || bytes.IndexByte(p, ':') >= 0 || uri == "" ||
			prefix == "xmlns" || (prefix == "xml") != (uri == XMLNamespace) {
			s.declared = s.declared[:n]
			return &SyntaxError{Offset: 0, Reason: "invalid namespace declaration given to Declare"}
		}
	}
	// Earlier bindings keep the array they point to if this append moved the buffer.
	s.binds = append(s.binds, Binding{Prefix: p, URI: b[len(prefix):]})
	return nil
}

// Err is the error that stopped the scanner, nil at EOF or before.
func (s *Scanner) Err() error { return s.err }

// Name returns the current Start or End tag's namespace URI and local name.
func (s *Scanner) Name() (uri, local []byte) { return s.uri, s.local }

// Attrs returns the current start tag's attributes, namespace declarations excluded. Valid
// until the next call to Next.
func (s *Scanner) Attrs() []Attr { return s.attrs }

func (s *Scanner) fail(reason string) (Kind, error) {
	s.err = &SyntaxError{Offset: s.pos, Reason: reason}
	s.kind = None
	return None, s.err
}

// Next moves to the next token. After an error every call returns it again.
func (s *Scanner) Next() (Kind, error) {
	if s.err != nil {
		return None, s.err
	}
	if s.pendingEnd {
		s.pendingEnd = false
		return s.endElement()
	}
	if s.kind == End {
		s.popped()
		s.kind = None
	}
	for {
		s.tokStart = s.pos
		if s.pos >= len(s.data) {
			if len(s.stack) > 0 {
				return s.fail("unexpected end of input inside an element")
			}
			if !s.root {
				return s.fail("no root element")
			}
			s.kind = EOF
			return EOF, nil
		}
		if s.data[s.pos] != '<' {
			return s.charData()
		}
		rest := s.data[s.pos:]
		if len(rest) < 2 || rest[1] != '!' && rest[1] != '?' {
			if len(rest) >= 2 && rest[1] == '/' {
				return s.endTag()
			}
			return s.startTag()
		}
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("--"))
			if end < 0 || !bytes.HasPrefix(rest[4+end:], []byte("-->")) {
				return s.fail("comment not terminated by -->, or -- inside a comment")
			}
			if !utf8.Valid(rest[4 : 4+end]) {
				return s.fail("invalid UTF-8")
			}
			s.pos += 4 + end + 3
			s.markup++
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			if len(s.stack) == 0 {
				return s.fail("CDATA section outside the root element")
			}
			end := bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 {
				return s.fail("unterminated CDATA section")
			}
			if reason := checkChars(rest[9 : 9+end]); reason != "" {
				return s.fail(reason)
			}
			s.text, s.cdata = rest[9:9+end], true
			s.pos += 9 + end + 3
			s.kind = Text
			return Text, nil
		case bytes.HasPrefix(rest, []byte("<!")):
			if bytes.HasPrefix(rest, []byte("<!DOCTYPE")) {
				s.err = ErrDoctype
				return None, s.err
			}
			return s.fail("unexpected markup declaration")
		case bytes.HasPrefix(rest, []byte("<?")):
			end := bytes.Index(rest[2:], []byte("?>"))
			if end < 0 {
				return s.fail("unterminated processing instruction")
			}
			target := rest[2 : 2+end]
			if i := bytes.IndexAny(target, " \t\r\n"); i >= 0 {
				target = target[:i]
			}
			if len(target) == 0 || !validName(target) {
				return s.fail("processing instruction without a target")
			}
			if len(target) == 3 && (target[0]|0x20) == 'x' && (target[1]|0x20) == 'm' && (target[2]|0x20) == 'l' && (s.pos != s.start || string(target) != "xml") {
				return s.fail("xml declaration not at the start")
			}
			s.pos += 2 + end + 2
			s.markup++
		}
	}
}

// charData reads a text run up to the next '<'.
func (s *Scanner) charData() (Kind, error) {
	start := s.pos
	end := bytes.IndexByte(s.data[start:], '<')
	if end < 0 {
		end = len(s.data)
	} else {
		end += start
	}
	run := s.data[start:end]
	if len(s.stack) == 0 {
		for _, c := range run {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				return s.fail("text outside the root element")
			}
		}
		s.pos = end
		s.blanks++
		return s.Next()
	}
	if reason := checkChars(run); reason != "" {
		return s.fail(reason)
	}
	if bytes.Contains(run, []byte("]]>")) {
		return s.fail("]]> in text")
	}
	for i := bytes.IndexByte(run, '&'); i >= 0; {
		n, ok := reference(run[i:])
		if !ok {
			s.pos = start + i
			return s.fail("invalid reference (only the predefined entities and character references are allowed)")
		}
		j := bytes.IndexByte(run[i+n:], '&')
		if j < 0 {
			break
		}
		i += n + j
	}
	s.text, s.cdata = run, false
	s.pos = end
	s.kind = Text
	return Text, nil
}

// startTag reads a start tag or an empty-element tag.
func (s *Scanner) startTag() (Kind, error) {
	if len(s.stack) == 0 && s.root {
		return s.fail("a second root element")
	}
	if len(s.stack) >= MaxDepth {
		return s.fail("elements nested deeper than the depth limit")
	}
	p := s.pos + 1
	name, p, ok := s.name(p)
	if !ok {
		return s.fail("invalid element name")
	}
	marks := len(s.binds)
	s.attrs = s.attrs[:0]
	for {
		q := skipSpace(s.data, p)
		if q >= len(s.data) {
			return s.fail("unterminated start tag")
		}
		c := s.data[q]
		if c == '>' || c == '/' {
			if c == '/' {
				if q+1 >= len(s.data) || s.data[q+1] != '>' {
					return s.fail("'/' not followed by '>' in a start tag")
				}
				s.pendingEnd = true
				q++
			}
			p = q + 1
			break
		}
		if q == p {
			return s.fail("attributes not separated by white space")
		}
		aname, q2, ok := s.name(q)
		if !ok {
			s.pos = q
			return s.fail("invalid attribute name")
		}
		q2 = skipSpace(s.data, q2)
		if q2 >= len(s.data) || s.data[q2] != '=' {
			return s.fail("attribute without '='")
		}
		q2 = skipSpace(s.data, q2+1)
		if q2 >= len(s.data) || (s.data[q2] != '"' && s.data[q2] != '\'') {
			return s.fail("attribute value not quoted")
		}
		quote := s.data[q2]
		vend := bytes.IndexByte(s.data[q2+1:], quote)
		if vend < 0 {
			return s.fail("unterminated attribute value")
		}
		value := s.data[q2+1 : q2+1+vend]
		if reason := checkAttrValue(value); reason != "" {
			s.pos = q2
			return s.fail(reason)
		}
		p = q2 + 1 + vend + 1
		prefix, local := splitQName(aname)
		switch {
		case prefix == nil && string(local) == "xmlns":
			s.binds = append(s.binds, Binding{Prefix: nil, URI: s.decoded(value)})
		case string(prefix) == "xmlns":
			uri := s.decoded(value)
			if len(uri) == 0 || string(local) == "xmlns" || (string(local) == "xml") != (string(uri) == XMLNamespace) {
				return s.fail("invalid namespace declaration")
			}
			s.binds = append(s.binds, Binding{Prefix: local, URI: uri})
		default:
			if len(s.attrs) >= maxAttrs {
				return s.fail("too many attributes on one element")
			}
			s.attrs = append(s.attrs, Attr{Prefix: prefix, Local: local, Value: value})
		}
	}
	// Unique attributes (by prefix and name, and by expanded name) and unique declarations.
	for i := marks; i < len(s.binds); i++ {
		for j := marks; j < i; j++ {
			if bytes.Equal(s.binds[i].Prefix, s.binds[j].Prefix) && (s.binds[i].Prefix == nil) == (s.binds[j].Prefix == nil) {
				return s.fail("namespace declared twice on one element")
			}
		}
	}
	s.stack = append(s.stack, open{qname: name, marks: marks})
	for i := range s.attrs {
		a := &s.attrs[i]
		var auri []byte
		if a.Prefix != nil {
			var ok bool
			if auri, ok = s.resolve(a.Prefix); !ok {
				return s.fail("attribute prefix not declared")
			}
		}
		for j := 0; j < i; j++ {
			b := &s.attrs[j]
			if !bytes.Equal(a.Local, b.Local) {
				continue
			}
			var buri []byte
			if b.Prefix != nil {
				buri, _ = s.resolve(b.Prefix)
			}
			if (a.Prefix == nil) == (b.Prefix == nil) && bytes.Equal(auri, buri) {
				return s.fail("attribute repeated on one element")
			}
		}
	}
	s.prefix, s.local = splitQName(name)
	uri, ok := s.resolve(s.prefix)
	if !ok {
		return s.fail("element prefix not declared")
	}
	s.uri = uri
	s.stack[len(s.stack)-1].uri = uri
	s.root = true
	s.pos = p
	s.kind = Start
	return Start, nil
}

// endTag reads an end tag, which must close the innermost open element.
func (s *Scanner) endTag() (Kind, error) {
	if n := len(s.stack); n > 0 {
		// The usual case: the open element's name (checked at its start), then not a name byte.
		q, p := s.stack[n-1].qname, s.pos+2
		if e := p + len(q); e <= len(s.data) && bytes.Equal(s.data[p:e], q) && (e == len(s.data) || !isNameByte(s.data[e])) {
			p = skipSpace(s.data, e)
			if p >= len(s.data) || s.data[p] != '>' {
				return s.fail("unterminated end tag")
			}
			s.pos = p + 1
			return s.endElement()
		}
	}
	name, p, ok := s.name(s.pos + 2)
	if !ok {
		return s.fail("invalid end tag name")
	}
	p = skipSpace(s.data, p)
	if p >= len(s.data) || s.data[p] != '>' {
		return s.fail("unterminated end tag")
	}
	if len(s.stack) == 0 || !bytes.Equal(s.stack[len(s.stack)-1].qname, name) {
		return s.fail("end tag does not match the open element")
	}
	s.pos = p + 1
	return s.endElement()
}

// endElement makes the innermost open element's end the current token; Next pops it.
func (s *Scanner) endElement() (Kind, error) {
	top := s.stack[len(s.stack)-1]
	s.prefix, s.local = splitQName(top.qname)
	s.uri = top.uri
	s.kind = End
	return End, nil
}

// popped closes the element whose End was the current token.
func (s *Scanner) popped() {
	top := s.stack[len(s.stack)-1]
	s.binds = s.binds[:top.marks]
	s.stack = s.stack[:len(s.stack)-1]
}

// resolve returns the namespace URI of prefix (nil = the default namespace).
func (s *Scanner) resolve(prefix []byte) ([]byte, bool) {
	for i := len(s.binds) - 1; i >= 0; i-- {
		b := s.binds[i]
		if (b.Prefix == nil) == (prefix == nil) && bytes.Equal(b.Prefix, prefix) {
			return b.URI, true
		}
	}
	if prefix == nil {
		return nil, true // no default namespace
	}
	if string(prefix) == "xml" {
		return xmlNamespace, true
	}
	return nil, false
}

// name reads a (qualified) name at p: name bytes, not starting with a digit, '-' or '.',
// non-ASCII characters among nameLetters, at most one ':', neither first nor last.
func (s *Scanner) name(p int) ([]byte, int, bool) {
	start := p
	colons, ascii := 0, true
	for ; p < len(s.data); p++ {
		c := s.data[p]
		if !isNameByte(c) {
			break
		}
		if c == ':' {
			colons++
		} else if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	n := s.data[start:p]
	if len(n) == 0 || n[0] == '-' || n[0] == '.' || n[0] >= '0' && n[0] <= '9' {
		return nil, p, false
	}
	if !ascii && !nonASCIIName(n) {
		return nil, p, false
	}
	if colons > 0 {
		if c := bytes.IndexByte(n, ':'); colons > 1 || c == 0 || c == len(n)-1 {
			return nil, p, false
		}
	}
	return n, p, true
}

// TextBytes returns the current Text token with references expanded and line ends
// normalised; it is a sub-slice of the input when nothing needed expanding, else a buffer
// reused by the next call.
func (s *Scanner) TextBytes() []byte {
	if s.cdata {
		if bytes.IndexByte(s.text, '\r') < 0 {
			return s.text
		}
		s.scratch = appendNormalized(s.scratch[:0], s.text)
		return s.scratch
	}
	if bytes.IndexByte(s.text, '&') < 0 && bytes.IndexByte(s.text, '\r') < 0 {
		return s.text
	}
	s.scratch = appendExpanded(s.scratch[:0], s.text)
	return s.scratch
}

// AttrValue returns an attribute's value with references expanded (a sub-slice of the input
// when it has none).
func (s *Scanner) AttrValue(a Attr) []byte { return s.decoded(a.Value) }

// decoded expands the references of an attribute value (checked by checkAttrValue); white
// space characters written as such become spaces, as attribute-value normalisation requires
// (a character reference to one stays what it says).
func (s *Scanner) decoded(v []byte) []byte {
	if bytes.IndexByte(v, '&') < 0 && bytes.IndexAny(v, "\t\r\n") < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '&':
			n, _ := reference(v[i:])
			out = appendReference(out, v[i:i+n])
			i += n
		case '\r':
			out = append(out, ' ')
			i++
			if i < len(v) && v[i] == '\n' {
				i++ // a line end is one character before normalisation
			}
		case '\t', '\n':
			out = append(out, ' ')
			i++
		default:
			out = append(out, c)
			i++
		}
	}
	return out
}

// appendExpanded appends text with references expanded and line ends normalised (input checked).
func appendExpanded(dst, text []byte) []byte {
	for i := 0; i < len(text); {
		c := text[i]
		switch c {
		case '&':
			n, _ := reference(text[i:])
			dst = appendReference(dst, text[i:i+n])
			i += n
		case '\r':
			dst = append(dst, '\n')
			i++
			if i < len(text) && text[i] == '\n' {
				i++
			}
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// appendNormalized appends text with CR LF and CR made LF.
func appendNormalized(dst, text []byte) []byte {
	for i := 0; i < len(text); i++ {
		if text[i] == '\r' {
			dst = append(dst, '\n')
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			continue
		}
		dst = append(dst, text[i])
	}
	return dst
}

// reference returns the length of the reference ref starts with, and whether it is one
// XML allows without a DTD.
func reference(ref []byte) (int, bool) {
	end := bytes.IndexByte(ref, ';')
	if end < 2 || end > 12 {
		return 0, false
	}
	body := ref[1:end]
	switch string(body) {
	case "lt", "gt", "amp", "apos", "quot":
		return end + 1, true
	}
	if body[0] != '#' {
		return 0, false
	}
	r, ok := charRef(body[1:])
	if !ok || !isChar(r) {
		return 0, false
	}
	return end + 1, true
}

// charRef reads the number of a character reference (after '#').
func charRef(b []byte) (rune, bool) {
	base := rune(10)
	if len(b) > 0 && b[0] == 'x' {
		base, b = 16, b[1:]
	}
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range b {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
		if r > utf8.MaxRune {
			return 0, false
		}
	}
	return r, true
}

func appendReference(dst, ref []byte) []byte {
	switch string(ref[1 : len(ref)-1]) {
	case "lt":
		return append(dst, '<')
	case "gt":
		return append(dst, '>')
	case "amp":
		return append(dst, '&')
	case "apos":
		return append(dst, '\'')
	case "quot":
		return append(dst, '"')
	}
	r, _ := charRef(ref[2 : len(ref)-1])
	return utf8.AppendRune(dst, r)
}

// checkAttrValue checks an attribute value's characters and references ('<' is not allowed).
func checkAttrValue(v []byte) string {
	if bytes.IndexByte(v, '<') >= 0 {
		return "'<' in an attribute value"
	}
	if reason := checkChars(v); reason != "" {
		return reason
	}
	for i := bytes.IndexByte(v, '&'); i >= 0; {
		n, ok := reference(v[i:])
		if !ok {
			return "invalid reference in an attribute value"
		}
		j := bytes.IndexByte(v[i+n:], '&')
		if j < 0 {
			break
		}
		i += n + j
	}
	return ""
}

// checkChars checks that b is UTF-8 made of XML characters.
func checkChars(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			continue
		}
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return "control character"
		}
	}
	if ascii {
		return ""
	}
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return "invalid UTF-8"
		}
		if !isChar(r) {
			return "character not allowed in XML"
		}
		b = b[n:]
	}
	return ""
}

// isChar reports whether r is a Char of XML 1.0.
func isChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// isNameByte reports whether c may appear in a name (non-ASCII bytes are checked by validName).
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '-' || c == '.' || c >= utf8.RuneSelf
}

// validName checks a name's first character and its non-ASCII characters.
func validName(n []byte) bool {
	c := n[0]
	if c == '-' || c == '.' || c >= '0' && c <= '9' {
		return false
	}
	for _, c := range n {
		if c >= utf8.RuneSelf {
			return nonASCIIName(n)
		}
	}
	return true
}

// nonASCIIName reports whether the non-ASCII characters of the name n are all nameLetters.
func nonASCIIName(n []byte) bool {
	for len(n) > 0 {
		r, size := utf8.DecodeRune(n)
		if r >= utf8.RuneSelf && !unicode.Is(nameLetters, r) {
			return false // invalid UTF-8 too (RuneError)
		}
		n = n[size:]
	}
	return true
}

// nameLetters are the non-ASCII characters a name may have here: the letters of XML 1.0's
// Appendix B (the table encoding/xml and so soap's parser read names with) of the Latin,
// Greek, Cyrillic, kana, CJK and Hangul blocks. A name with any other character is refused:
// rarer scripts are left out rather than accept a name that a reader with an older table
// than XML 1.0's fifth edition refuses.
var nameLetters = &unicode.RangeTable{R16: []unicode.Range16{
	{0x00C0, 0x00D6, 1}, {0x00D8, 0x00F6, 1}, {0x00F8, 0x0131, 1}, {0x0134, 0x013E, 1},
	{0x0141, 0x0148, 1}, {0x014A, 0x017E, 1}, {0x0180, 0x01C3, 1}, {0x01CD, 0x01F0, 1},
	{0x01F4, 0x01F5, 1}, {0x01FA, 0x0217, 1}, {0x0386, 0x0386, 1}, {0x0388, 0x038A, 1},
	{0x038C, 0x038C, 1}, {0x038E, 0x03A1, 1}, {0x03A3, 0x03CE, 1}, {0x0401, 0x040C, 1},
	{0x040E, 0x044F, 1}, {0x0451, 0x045C, 1}, {0x045E, 0x0481, 1}, {0x3041, 0x3094, 1},
	{0x30A1, 0x30FA, 1}, {0x4E00, 0x9FA5, 1}, {0xAC00, 0xD7A3, 1},
}}

// allNameBytes reports whether every byte of n may appear in a name.
func allNameBytes(n []byte) bool {
	for _, c := range n {
		if !isNameByte(c) {
			return false
		}
	}
	return true
}

func splitQName(n []byte) (prefix, local []byte) {
	if i := bytes.IndexByte(n, ':'); i >= 0 {
		return n[:i], n[i+1:]
	}
	return nil, n
}

func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\r' || b[p] == '\n') {
		p++
	}
	return p
}
