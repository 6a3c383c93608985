package soap

import (
	"bytes"
	"sync"

	"github.com/ehgate/ehgate/internal/xmlpull"
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

// maxScanScope bounds the namespaces in scope at the Body (declared on Envelope and Body)
// that scanEnvelope reports; more go to the parser.
const maxScanScope = 16

var scanners = sync.Pool{New: func() any { return new(xmlpull.Scanner) }}

// scanEnvelope reads a SOAP 1.1 envelope with the strict pull scanner xmlpull (well-formed
// XML 1.0 with namespaces, no DTD) without building a tree, and reports the Body's first
// element child and the namespaces in scope at it (declared on Envelope and Body). ok is
// false for anything the scanner refuses and for what it accepts but Parse might not, or
// might read otherwise: a byte order mark, an XML declaration other than version 1.0,
// encoding UTF-8 and standalone yes or no, nesting, counts or namespaces in scope beyond lim
// (counted as scanNodes counts), more than maxScanScope namespaces at the Body or a URI
// among them with white space, '"', '<' or '&'. It also requires exactly one Body, with an
// element child, and at most one Header. The caller then parses the answer with Parse,
// which judges it: ok means Parse accepts the same bytes as an envelope with that Body; it
// never decides a refusal.
func scanEnvelope(data []byte, lim Limits) (sc envelopeScan, ok bool) {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || !xmlDeclOK(data) {
		return sc, false
	}
	s := scanners.Get().(*xmlpull.Scanner)
	defer func() {
		s.Reset(nil)
		scanners.Put(s)
	}()
	s.Reset(data)
	r := envelopeReader{s: s, lim: lim.withDefaults()}
	if r.next() != xmlpull.Start || !r.is("Envelope") {
		return sc, false
	}
	headers, bodies := 0, 0
	for {
		switch r.next() {
		case xmlpull.Text:
			continue
		case xmlpull.End: // of the Envelope
			for {
				switch r.next() {
				case xmlpull.EOF:
					return sc, headers <= 1 && bodies == 1
				case xmlpull.None:
					return sc, false
				}
			}
		case xmlpull.Start:
		default:
			return sc, false
		}
		switch {
		case r.is("Header"):
			headers++
		case r.is("Body"):
			if bodies++; bodies > 1 || !r.body(&sc) {
				return sc, false
			}
			continue
		}
		if !r.skip() {
			return sc, false
		}
	}
}

// envelopeReader pulls the tokens of an answer and counts them against lim.
type envelopeReader struct {
	s             *xmlpull.Scanner
	lim           Limits
	elements, txt int
}

// next returns the next token; None on an error and beyond a limit.
func (r *envelopeReader) next() xmlpull.Kind {
	k, err := r.s.Next()
	switch {
	case err != nil:
		return xmlpull.None
	case k == xmlpull.Start:
		r.elements++
		if r.s.Depth() > r.lim.MaxDepth || len(r.s.Scope()) > maxNamespaces {
			return xmlpull.None
		}
	case k == xmlpull.Text:
		r.txt++
	}
	markup, blanks := r.s.Skipped()
	if r.elements > r.lim.MaxElements || markup > r.lim.MaxComments || r.elements+r.txt+markup+blanks > r.lim.MaxNodes {
		return xmlpull.None
	}
	return k
}

// is reports whether the current Start or End is soapenv:local.
func (r *envelopeReader) is(local string) bool {
	uri, l := r.s.Name()
	return string(l) == local && string(uri) == NSEnvelope
}

// skip passes over the element whose Start was just read (and everything in it).
func (r *envelopeReader) skip() bool {
	depth := r.s.Depth()
	for {
		switch r.next() {
		case xmlpull.None:
			return false
		case xmlpull.End:
			if r.s.Depth() == depth {
				return true
			}
		}
	}
}

// body reads the Body whose Start was just read: its first element child is sc.child, the
// namespaces in scope at the Body sc.scope.
func (r *envelopeReader) body(sc *envelopeScan) bool {
	if !scopeOf(r.s.Scope(), sc) {
		return false
	}
	first := true
	for {
		switch r.next() {
		case xmlpull.Text:
			continue
		case xmlpull.End:
			return !first
		case xmlpull.Start:
		default:
			return false
		}
		if first {
			first = false
			sc.child[0], _ = r.s.Span()
			sc.fault = r.is("Fault") // its own declarations in scope
			if !r.skip() {
				return false
			}
			_, sc.child[1] = r.s.Span()
		} else if !r.skip() {
			return false
		}
	}
}

// scopeOf sets sc's scope to the bindings in force among decls, in the order of their first
// declaration (a prefix declared again replaces the earlier binding); false beyond
// maxScanScope and for a URI that would not read the same in a declaration of its own.
func scopeOf(decls []xmlpull.Binding, sc *envelopeScan) bool {
	sc.nScope = 0
	for _, d := range decls {
		if bytes.ContainsAny(d.URI, " \t\r\n\"<&") {
			return false
		}
		ns := Namespace{Prefix: intern(d.Prefix), URI: intern(d.URI)}
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

// xmlDeclOK reports whether data's XML declaration, if it has one, is one Parse accepts:
// its pseudo-attributes version 1.0, encoding UTF-8, standalone yes or no, each at most
// once, in that order, quoted alike. (xmlpull checks where a declaration stands, not what
// it says.)
func xmlDeclOK(data []byte) bool {
	if !bytes.HasPrefix(data, []byte("<?xml")) || len(data) < 6 || !isSpace(data[5]) && data[5] != '?' {
		return true // none: a processing instruction named xml… is another target
	}
	end := bytes.Index(data, []byte("?>"))
	if end < 0 {
		return false
	}
	b := data[5:end]
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

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
