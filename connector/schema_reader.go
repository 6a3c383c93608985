package connector

import (
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Namespaces shared by several answers.
const (
	// nsNone is the namespace of an unqualified element (commons protocol 1.x Status, eHealthBox
	// children).
	nsNone = ""
	// NSCommonsCore10 is the namespace of the ETK depot's Status (commons 1_0 core).
	NSCommonsCore10 = "urn:be:fgov:ehealth:commons:1_0:core"
)

// answerReader reads an answer the way its schema defines it: each element's children in
// schema order, in their namespace, with their simple types checked. The first deviation is
// kept as a *ResponseError naming the element (a path of local names) and every later call
// is a no-op, so a reader is written as straight-line code and checked once at the end.
// Cost is linear in the answer: every child is looked at once.
type answerReader struct {
	service string
	err     *ResponseError
}

// fail records the first deviation.
func (r *answerReader) fail(element, reason string) {
	if r.err == nil {
		r.err = &ResponseError{Service: r.service, Element: element, Reason: reason}
	}
}

// failed reports whether a deviation was recorded.
func (r *answerReader) failed() bool { return r.err != nil }

// root checks the answer's root element and returns a sequence over its children.
func (r *answerReader) root(el *etree.Element, ns, local string) *childSeq {
	if el == nil {
		r.fail(local, "no answer element")
		return &childSeq{r: r, path: local}
	}
	if el.Tag != local || el.NamespaceURI() != ns {
		r.fail(local, "answer is "+describe(el)+", not "+local)
		return &childSeq{r: r, path: local}
	}
	return r.seq(el, local)
}

// seq returns a sequence over el's element children; path names el.
func (r *answerReader) seq(el *etree.Element, path string) *childSeq {
	s := &childSeq{r: r, path: path}
	if el != nil {
		s.kids = el.ChildElements()
		for _, t := range el.Child {
			if cd, ok := t.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" && !cd.IsWhitespace() {
				r.fail(path, "unexpected text content")
				break
			}
		}
	}
	return s
}

// describe names an element for an error: its local name and namespace, no content.
func describe(el *etree.Element) string {
	ns := el.NamespaceURI()
	if ns == "" {
		return el.Tag + " (no namespace)"
	}
	return el.Tag + " in " + truncateText(ns, 80)
}

// childSeq walks one element's children in schema order.
type childSeq struct {
	r    *answerReader
	path string
	kids []*etree.Element
	i    int
}

func (s *childSeq) peek(ns, local string) bool {
	if s.r.failed() || s.i >= len(s.kids) {
		return false
	}
	k := s.kids[s.i]
	return k.Tag == local && k.NamespaceURI() == ns
}

// opt consumes the next child when it is ns:local, else returns nil.
func (s *childSeq) opt(ns, local string) *etree.Element {
	if !s.peek(ns, local) {
		return nil
	}
	s.i++
	return s.kids[s.i-1]
}

// req consumes the next child, which must be ns:local.
func (s *childSeq) req(ns, local string) *etree.Element {
	if el := s.opt(ns, local); el != nil {
		return el
	}
	if s.r.failed() {
		return nil
	}
	if s.i < len(s.kids) {
		s.r.fail(s.path+"/"+local, "missing: found "+describe(s.kids[s.i])+" in its place")
	} else {
		s.r.fail(s.path+"/"+local, "missing")
	}
	return nil
}

// many consumes up to max consecutive ns:local children (at least min).
func (s *childSeq) many(ns, local string, min, max int) []*etree.Element {
	var out []*etree.Element
	for s.peek(ns, local) {
		if len(out) == max {
			s.r.fail(s.path+"/"+local, "more than "+strconv.Itoa(max)+" occurrences")
			return nil
		}
		out = append(out, s.kids[s.i])
		s.i++
	}
	if len(out) < min && !s.r.failed() {
		s.r.fail(s.path+"/"+local, "fewer than "+strconv.Itoa(min)+" occurrences")
	}
	return out
}

// skipAny consumes every remaining child (an element whose content the client does not read
// and whose schema allows any child, such as ExtendedInformation's SAML attributes).
func (s *childSeq) skipAny() { s.i = len(s.kids) }

// end checks that no child is left.
func (s *childSeq) end() {
	if s.r.failed() || s.i >= len(s.kids) {
		return
	}
	s.r.fail(s.path+"/"+s.kids[s.i].Tag, "unexpected element "+describe(s.kids[s.i]))
}

// leaf returns the trimmed text of a simple-content element; el must have no child elements.
func (s *childSeq) leaf(el *etree.Element, local string) string {
	if el == nil || s.r.failed() {
		return ""
	}
	if len(el.ChildElements()) > 0 {
		s.r.fail(s.path+"/"+local, "has child elements where the schema wants text")
		return ""
	}
	return strings.TrimSpace(el.Text())
}

// text consumes a required simple element and returns its text.
func (s *childSeq) text(ns, local string) string { return s.leaf(s.req(ns, local), local) }

// optText consumes an optional simple element; present reports whether it was there.
func (s *childSeq) optText(ns, local string) (string, bool) {
	el := s.opt(ns, local)
	if el == nil {
		return "", false
	}
	return s.leaf(el, local), true
}

// check fails with reason when ok is false, naming path/local.
func (s *childSeq) check(ok bool, local, reason string) {
	if !ok && !s.r.failed() {
		s.r.fail(s.path+"/"+local, reason)
	}
}

// length checks the length in characters of v (between min and max).
func (s *childSeq) length(v, local string, min, max int) string {
	n := len([]rune(v))
	s.check(n >= min && n <= max, local, "length "+strconv.Itoa(n)+" outside "+strconv.Itoa(min)+".."+strconv.Itoa(max))
	return v
}

// date parses an xs:date (an optional time-zone suffix is allowed and ignored).
func (s *childSeq) date(v, local string) time.Time {
	if s.r.failed() {
		return time.Time{}
	}
	d, ok := parseXSDate(v)
	s.check(ok, local, "not an xs:date")
	return d
}

// optDate consumes an optional xs:date element.
func (s *childSeq) optDate(ns, local string) (time.Time, bool) {
	v, ok := s.optText(ns, local)
	if !ok {
		return time.Time{}, false
	}
	return s.date(v, local), true
}

// reqDate consumes a required xs:date element.
func (s *childSeq) reqDate(ns, local string) time.Time { return s.date(s.text(ns, local), local) }

// boolean parses an xs:boolean.
func (s *childSeq) boolean(v, local string) bool {
	switch v {
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	s.check(false, local, "not an xs:boolean")
	return false
}

// oneOf checks v against an enumeration.
func (s *childSeq) oneOf(v, local string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	s.check(false, local, "value not allowed by the schema")
	return v
}

// digits checks that v is n..m ASCII digits.
func (s *childSeq) digits(v, local string, min, max int) string {
	ok := len(v) >= min && len(v) <= max
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] >= '0' && v[i] <= '9'
	}
	s.check(ok, local, "not "+strconv.Itoa(min)+" to "+strconv.Itoa(max)+" digits")
	return v
}

// parseXSDate reads an xs:date: YYYY-MM-DD with an optional Z or ±hh:mm zone (ignored: a
// civil date is what the platform means).
func parseXSDate(v string) (time.Time, bool) {
	if len(v) < 10 {
		return time.Time{}, false
	}
	day, zone := v[:10], v[10:]
	switch {
	case zone == "", zone == "Z":
	case len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':':
		if _, err := time.Parse("15:04", zone[1:]); err != nil {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	d, err := time.Parse(dateLayout, day)
	if err != nil {
		return time.Time{}, false
	}
	return d, true
}

// readStatus reads a commons StatusType (Code, then one or more Message) and returns the code
// and the first message.
func readStatus(s *childSeq, ns string) (code, message string) {
	st := s.req(ns, "Status")
	if st == nil {
		return "", ""
	}
	ss := s.r.seq(st, s.path+"/Status")
	code = ss.text(nsNone, "Code")
	msgs := ss.many(nsNone, "Message", 1, 64)
	ss.end()
	if len(msgs) > 0 {
		message = ss.leaf(msgs[0], "Message")
		if lang := msgs[0].SelectAttrValue("Lang", ""); lang != "" {
			ss.oneOf(lang, "Message/@Lang", "FR", "NL", "EN", "DE", "NA")
		}
	}
	return code, message
}
