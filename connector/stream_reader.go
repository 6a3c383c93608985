package connector

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ehgate/ehgate/internal/xmlpull"
	"github.com/ehgate/ehgate/soap"
)

// streamReader reads an answer from its bytes the way answerReader reads a tree, with the
// same rules and the same errors: each element's children in schema order, in their
// namespace, simple types checked, the first deviation kept as a *ResponseError naming the
// element (later calls are no-ops). It pulls tokens from an xmlpull.Scanner and builds no
// tree, so reading an answer allocates only the strings the answer keeps. Bytes that are
// not well-formed XML end the read with an error wrapping soap.ErrMalformed (a garbled
// answer, as soap.Client reports one). Not safe for concurrent use; pooled (getStreamReader).
type streamReader struct {
	service string
	err     error
	sc      xmlpull.Scanner
	// names are the local names of the elements open in the read, root first: the path of
	// an error, built only when there is one.
	names []string
	// kind is the token the scanner stands on that no sequence has consumed yet (None: read
	// the next one).
	kind xmlpull.Kind
}

var streamReaders = sync.Pool{New: func() any { return new(streamReader) }}

// getStreamReader returns a reader of data for service; give it back with put.
func getStreamReader(service string, data []byte) *streamReader {
	r := streamReaders.Get().(*streamReader)
	r.service, r.err, r.kind, r.names = service, nil, xmlpull.None, r.names[:0]
	r.sc.Reset(data)
	return r
}

// put returns r to the pool; nothing read from it may be used after.
func (r *streamReader) put() {
	r.sc.Reset(nil)
	streamReaders.Put(r)
}

// failed reports whether a deviation was recorded.
func (r *streamReader) failed() bool { return r.err != nil }

// fail records the first deviation at path/local (local "" = path itself).
func (r *streamReader) fail(depth int, local, reason string) {
	if r.err != nil {
		return
	}
	path := strings.Join(r.names[:depth], "/")
	if local != "" {
		if path != "" {
			path += "/"
		}
		path += local
	}
	r.err = &ResponseError{Service: r.service, Element: path, Reason: reason}
}

// malformed records a scanner error: the answer is garbled.
func (r *streamReader) malformed(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("connector: %s: %w: %v", r.service, soap.ErrMalformed, err)
	}
}

// token returns the current unconsumed token, reading one when needed.
func (r *streamReader) token() xmlpull.Kind {
	if r.err != nil {
		return xmlpull.None
	}
	if r.kind == xmlpull.None {
		k, err := r.sc.Next()
		if err != nil {
			r.malformed(err)
			return xmlpull.None
		}
		r.kind = k
	}
	return r.kind
}

// consume marks the current token as read.
func (r *streamReader) consume() { r.kind = xmlpull.None }

// describe names the current element for an error: its local name and namespace.
func (r *streamReader) describe() string {
	uri, local := r.sc.Name()
	if len(uri) == 0 {
		return string(local) + " (no namespace)"
	}
	return string(local) + " in " + truncateText(string(uri), 80)
}

// is reports whether the current Start token is ns:local.
func (r *streamReader) is(ns, local string) bool {
	uri, l := r.sc.Name()
	return string(l) == local && string(uri) == ns
}

// declare reads the element in the scope of its ancestors' namespaces (soap.RawAnswer's
// Scope), before its first token.
func (r *streamReader) declare(scope []soap.Namespace) {
	for _, ns := range scope {
		if err := r.sc.Declare(ns.Prefix, ns.URI); err != nil {
			r.malformed(err)
			return
		}
	}
}

// skipTo consumes tokens until the element open at depth+1 has ended (the scanner is back
// at depth).
func (r *streamReader) skipTo(depth int) {
	for r.err == nil {
		k := r.token()
		if k == xmlpull.None {
			return
		}
		done := k == xmlpull.End && r.sc.Depth() == depth+1
		r.consume()
		if done {
			return
		}
	}
}

// rest reads the document to its end (only white space, comments and processing
// instructions may follow the root element).
func (r *streamReader) rest() {
	for r.err == nil && r.token() != xmlpull.EOF {
		r.consume()
	}
}

// root checks that the answer's element (the current Start token) is ns:local and returns
// the sequence of its children.
func (r *streamReader) root(ns, local string) streamSeq {
	s := streamSeq{r: r, depth: 1}
	r.names = append(r.names, local)
	if r.token() != xmlpull.Start {
		r.fail(0, local, "no answer element")
		return s
	}
	if !r.is(ns, local) {
		r.fail(0, local, "answer is "+r.describe()+", not "+local)
		return s
	}
	r.consume()
	return s
}

// streamSeq walks one element's children in schema order; depth is the element's depth in
// the read (the root is 1). Only the innermost sequence is read at a time: a child's
// sequence must end before its parent goes on.
type streamSeq struct {
	r     *streamReader
	depth int
	done  bool // the element's end was read
}

// next returns the kind of the next child token: Start (a child element) or End (the
// element's end); text between children fails (unexpected text content).
func (s *streamSeq) next() xmlpull.Kind {
	r := s.r
	for {
		k := r.token()
		if k != xmlpull.Text {
			return k
		}
		if !isSpace(r.sc.TextBytes()) {
			r.fail(s.depth, "", "unexpected text content")
			return xmlpull.None
		}
		r.consume()
	}
}

// peek reports whether the next child is ns:local.
func (s *streamSeq) peek(ns, local string) bool {
	return !s.r.failed() && !s.done && s.next() == xmlpull.Start && s.r.is(ns, local)
}

// opt consumes the next child when it is ns:local and returns its sequence (ok false
// otherwise).
func (s *streamSeq) opt(ns, local string) (streamSeq, bool) {
	if !s.peek(ns, local) {
		return streamSeq{r: s.r}, false
	}
	s.r.consume()
	s.r.names = append(s.r.names[:s.depth], local)
	return streamSeq{r: s.r, depth: s.depth + 1}, true
}

// req consumes the next child, which must be ns:local.
func (s *streamSeq) req(ns, local string) (streamSeq, bool) {
	if c, ok := s.opt(ns, local); ok {
		return c, true
	}
	r := s.r
	if r.failed() {
		return streamSeq{r: r}, false
	}
	if !s.done && s.next() == xmlpull.Start {
		r.fail(s.depth, local, "missing: found "+r.describe()+" in its place")
	} else {
		r.fail(s.depth, local, "missing")
	}
	return streamSeq{r: r}, false
}

// skipAny consumes every remaining child.
func (s *streamSeq) skipAny() {
	for !s.r.failed() && !s.done {
		switch s.next() {
		case xmlpull.Start:
			s.r.consume()
			s.r.skipTo(s.r.sc.Depth() - 1)
		case xmlpull.End:
			return
		default:
			return
		}
	}
}

// end checks that no child is left and consumes the element's end.
func (s *streamSeq) end() {
	r := s.r
	if r.failed() || s.done {
		return
	}
	switch s.next() {
	case xmlpull.Start:
		_, local := r.sc.Name()
		r.fail(s.depth, string(local), "unexpected element "+r.describe())
	case xmlpull.End:
		r.consume()
		s.done = true
	}
}

// leafBytes reads the content of the element s stands for, which must be text only, and
// returns it trimmed (valid until the next read). It ends s.
func (s *streamSeq) leafBytes() []byte {
	r := s.r
	if r.failed() || s.done {
		return nil
	}
	var text []byte
	first, joined := true, false
	for {
		switch r.token() {
		case xmlpull.Text:
			t := r.sc.TextBytes()
			switch {
			case first:
				text, first = t, false
			case !joined:
				// Several runs (text around a comment or a CDATA section): join them apart
				// from the scanner's buffer, which the next run may reuse.
				text, joined = append(append([]byte(nil), text...), t...), true
			default:
				text = append(text, t...)
			}
			r.consume()
		case xmlpull.Start:
			r.fail(s.depth, "", "has child elements where the schema wants text")
			return nil
		case xmlpull.End:
			r.consume()
			s.done = true
			return bytes.TrimSpace(text)
		default:
			return nil
		}
	}
}

// text consumes a required simple element and returns its text.
func (s *streamSeq) text(ns, local string) string {
	c, ok := s.req(ns, local)
	if !ok {
		return ""
	}
	return string(c.leafBytes())
}

// optText consumes an optional simple element; present reports whether it was there.
func (s *streamSeq) optText(ns, local string) (string, bool) {
	c, ok := s.opt(ns, local)
	if !ok {
		return "", false
	}
	return string(c.leafBytes()), true
}

// check fails with reason when ok is false, naming this element's child local.
func (s *streamSeq) check(ok bool, local, reason string) {
	if !ok && !s.r.failed() {
		s.r.fail(s.depth, local, reason)
	}
}

// length checks the length in characters of v (between min and max).
func (s *streamSeq) length(v, local string, min, max int) string {
	if s.r.failed() {
		return v
	}
	if n := utf8.RuneCountInString(v); n < min || n > max {
		s.check(false, local, "length "+strconv.Itoa(n)+" outside "+strconv.Itoa(min)+".."+strconv.Itoa(max))
	}
	return v
}

// optDate consumes an optional xs:date element.
func (s *streamSeq) optDate(ns, local string) (time.Time, bool) {
	c, ok := s.opt(ns, local)
	if !ok {
		return time.Time{}, false
	}
	d, valid := parseXSDateBytes(c.leafBytes())
	s.check(valid, local, "not an xs:date")
	return d, true
}

// reqDate consumes a required xs:date element.
func (s *streamSeq) reqDate(ns, local string) time.Time {
	c, ok := s.req(ns, local)
	if !ok {
		return time.Time{}
	}
	d, valid := parseXSDateBytes(c.leafBytes())
	s.check(valid, local, "not an xs:date")
	return d
}

// oneOf reads a required simple element whose value is one of allowed and returns the
// allowed string (no copy of the answer's bytes).
func (s *streamSeq) oneOf(ns, local string, allowed ...string) string {
	c, ok := s.req(ns, local)
	if !ok {
		return ""
	}
	return s.enum(c.leafBytes(), local, allowed...)
}

// enum checks v against an enumeration and returns the allowed string.
func (s *streamSeq) enum(v []byte, local string, allowed ...string) string {
	if s.r.failed() {
		return ""
	}
	for _, a := range allowed {
		if string(v) == a {
			return a
		}
	}
	s.check(false, local, "value not allowed by the schema")
	return ""
}

// digits checks that v is min..max ASCII digits.
func (s *streamSeq) digits(v []byte, local string, min, max int) {
	ok := len(v) >= min && len(v) <= max
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] >= '0' && v[i] <= '9'
	}
	if !ok {
		s.check(false, local, "not "+strconv.Itoa(min)+" to "+strconv.Itoa(max)+" digits")
	}
}

// readStreamStatus reads a commons StatusType (Code, then one to 64 Message) and returns
// the code and the first message.
func readStreamStatus(s *streamSeq, ns string) (code, message string) {
	st, ok := s.req(ns, "Status")
	if !ok {
		return "", ""
	}
	if c, ok := st.req(nsNone, "Code"); ok {
		if b := c.leafBytes(); string(b) == "200" {
			code = "200" // the usual code costs no copy
		} else {
			code = string(b)
		}
	}
	n := 0
	for st.peek(nsNone, "Message") {
		n++
		if n > 64 {
			st.check(false, "Message", "more than 64 occurrences")
			return "", ""
		}
		var lang []byte
		for _, a := range st.r.sc.Attrs() {
			if a.Prefix == nil && string(a.Local) == "Lang" {
				lang = st.r.sc.AttrValue(a)
			}
		}
		m, _ := st.opt(nsNone, "Message")
		text := m.leafBytes()
		if n == 1 {
			if code != "200" {
				message = string(text) // kept for a BusinessError only
			}
			if lang != nil {
				st.enum(lang, "Message/@Lang", "FR", "NL", "EN", "DE", "NA")
			}
		}
	}
	if n == 0 {
		st.check(false, "Message", "fewer than 1 occurrences")
	}
	st.end()
	return code, message
}

// parseXSDateBytes is parseXSDate on bytes, without a copy: YYYY-MM-DD with an optional Z
// or ±hh:mm zone (ignored: a civil date is what the platform means).
func parseXSDateBytes(v []byte) (time.Time, bool) {
	if len(v) < 10 || v[4] != '-' || v[7] != '-' {
		return time.Time{}, false
	}
	switch zone := v[10:]; {
	case len(zone) == 0, len(zone) == 1 && zone[0] == 'Z':
	case len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':':
		h, okh := num(zone[1:3])
		m, okm := num(zone[4:6])
		if !okh || !okm || h > 23 || m > 59 {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	y, oky := num(v[0:4])
	mo, okm := num(v[5:7])
	d, okd := num(v[8:10])
	if !oky || !okm || !okd || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC), true
}

// num reads ASCII digits.
func num(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days of month m in year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
