package connector

import (
	"unicode/utf8"
)

// canonicalWriter appends a request payload already in exclusive XML canonicalization form
// (exc-c14n without comments, the form a WS-Security signature digests): namespaces declared
// on the elements that use them, where no output ancestor already declared them; no
// attributes other than those declarations; start and end tags for every element; text
// escaped as canonical XML escapes it. Written this way the payload is its own canonical
// form, so a signature digests the bytes that are sent, with no tree and no second pass.
// The writer does not track namespaces: each builder says which elements declare which
// prefix (its tests check the result is a fixed point of xmllint --exc-c14n).
type canonicalWriter struct {
	b []byte
}

// start writes the start tag of qname ("prefix:local") with the namespace declaration decl
// (a namespaceDecl, or "").
func (w *canonicalWriter) start(qname string, decl namespaceDecl) {
	w.b = append(w.b, '<')
	w.b = append(w.b, qname...)
	w.b = append(w.b, decl...)
	w.b = append(w.b, '>')
}

// end writes the end tag of qname.
func (w *canonicalWriter) end(qname string) {
	w.b = append(w.b, '<', '/')
	w.b = append(w.b, qname...)
	w.b = append(w.b, '>')
}

// leaf writes an element holding only text.
func (w *canonicalWriter) leaf(qname string, decl namespaceDecl, text string) {
	w.start(qname, decl)
	w.text(text)
	w.end(qname)
}

// text writes character data escaped as canonical XML does (&, <, >, carriage return).
// Characters XML does not allow (control characters, invalid UTF-8) become U+FFFD, so that
// whatever a caller typed the message stays well-formed.
func (w *canonicalWriter) text(s string) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		width := 1
		switch {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\r':
			esc = "&#xD;"
		case c == '\t' || c == '\n':
		case c < 0x20:
			esc = "\uFFFD"
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			width = n
			if !xmlChar(r) || (r == utf8.RuneError && n == 1) {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			w.b = append(w.b, s[last:i]...)
			w.b = append(w.b, esc...)
			last = i + width
		}
		i += width
	}
	w.b = append(w.b, s[last:]...)
}

// xmlChar reports whether r is a Char of XML 1.0 (above U+007F).
func xmlChar(r rune) bool {
	return r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// namespaceDecl is a namespace declaration as written in a canonical start tag:
// ` xmlns:prefix="uri"`.
type namespaceDecl string

// declare returns the declaration of prefix for uri.
func declare(prefix, uri string) namespaceDecl {
	return namespaceDecl(` xmlns:` + prefix + `="` + uri + `"`)
}
