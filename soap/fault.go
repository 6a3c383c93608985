package soap

import (
	"io"
	"slices"
	"strings"

	"github.com/beevik/etree"
)

// Fault is a SOAP 1.1 fault. It is an error: ReadResponse returns it as one,
// and errors.As(err, new(*soap.Fault)) finds it.
type Fault struct {
	Code   string // faultcode text, e.g. "soapenv:Server"
	String string // faultstring
	Actor  string // faultactor, often empty
	// Codes are the texts of detail/*/Code, e.g. "SOA-02001": the codes that decide
	// switching (the official connector's bcp.switch.xslt matches exactly that path).
	Codes []string
	// AllCodes are the texts of every Code element anywhere under detail, in document
	// order (Codes included): what a caller reports, never what decides switching.
	AllCodes []string
}

// Error says the fault code and its detail codes. The faultstring is left out,
// and a code that does not look like one is shown as "[redacted]": platforms
// echo request data in faults (a patient's SSIN or name), and error texts
// reach logs and screens. Read String where it is needed and safe to show.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("soap fault ")
	b.WriteString(safeCode(f.Code))
	if codes := f.reported(); len(codes) > 0 {
		b.WriteString(" [")
		for i, c := range codes {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(safeCode(c))
		}
		b.WriteString("]")
	}
	if f.String != "" {
		b.WriteString(" (faultstring withheld)")
	}
	return b.String()
}

// safeCode returns code when it has the shape of a fault code (a letter, then
// at most 63 letters, digits or ._:-, no run of six digits or more, which an
// SSIN or other identifier would be), else "[redacted]".
func safeCode(code string) string {
	if code == "" || len(code) > 64 {
		return "[redacted]"
	}
	digits := 0
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c >= '0' && c <= '9':
			if i == 0 {
				return "[redacted]"
			}
			if digits++; digits >= 6 {
				return "[redacted]"
			}
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return "[redacted]"
		}
		digits = 0
	}
	return code
}

// reported returns AllCodes, or Codes for a Fault built without AllCodes.
func (f *Fault) reported() []string {
	if len(f.AllCodes) > 0 {
		return f.AllCodes
	}
	return f.Codes
}

// FaultCodes returns the codes of detail/*/Code (SOA-02001, …), the codes a
// caller's retry and failover classifier branches on.
func (f *Fault) FaultCodes() []string { return f.Codes }

// HasCode reports whether code is one of the codes under detail (at any depth)
// or the faultcode itself, with or without its prefix ("Server" matches
// "soapenv:Server").
func (f *Fault) HasCode(code string) bool {
	for _, c := range f.reported() {
		if c == code {
			return true
		}
	}
	if f.Code == code {
		return true
	}
	_, local, found := strings.Cut(f.Code, ":")
	return found && local == code
}

// FaultOf returns the fault carried by an envelope's Body, if it carries one.
func FaultOf(doc *etree.Document) (*Fault, bool) {
	_, body, err := envelopeParts(doc)
	if err != nil {
		return nil, false
	}
	fe := firstChildElement(body)
	r := newResolver()
	if fe == nil || !is(r, fe, NSEnvelope, "Fault") {
		return nil, false
	}
	f := &Fault{}
	// faultcode, faultstring, faultactor and detail are unqualified in SOAP 1.1;
	// some stacks qualify them anyway, so match by local name.
	for _, c := range fe.ChildElements() {
		switch c.Tag {
		case "faultcode":
			f.Code = strings.TrimSpace(c.Text())
		case "faultstring":
			f.String = strings.TrimSpace(c.Text())
		case "faultactor":
			f.Actor = strings.TrimSpace(c.Text())
		case "detail":
			for _, d := range c.ChildElements() {
				for _, code := range d.ChildElements() {
					if code.Tag == "Code" {
						if s := strings.TrimSpace(code.Text()); s != "" {
							f.Codes = append(f.Codes, s)
						}
					}
				}
			}
			f.AllCodes = allCodes(c, f.AllCodes)
		}
	}
	return f, true
}

// allCodes appends the text of every Code element under el, at any depth, in
// document order. The depth is bounded by Parse's Limits.
func allCodes(el *etree.Element, out []string) []string {
	for _, c := range el.ChildElements() {
		if c.Tag == "Code" {
			if s := strings.TrimSpace(c.Text()); s != "" {
				out = append(out, s)
			}
		}
		out = allCodes(c, out)
	}
	return out
}

// NSFaultDetail is the namespace of the detail entries NewFaultEnvelope writes.
const NSFaultDetail = "urn:be:fgov:ehealth:errors:soa:v1"

// NewFaultEnvelope builds the envelope a server answers with for f: a
// soapenv:Fault with faultcode, faultstring, faultactor when set, and one
// detail entry per code of Codes, <soa:SystemError><soa:Code>code</soa:Code>…>,
// and the AllCodes that are not Codes one level deeper, in
// <soa:BusinessError><soa:Detail><soa:Code>code</soa:Code>…>, where they are
// reported but do not decide switching.
func NewFaultEnvelope(f *Fault) *etree.Document {
	fe := etree.NewElement("soapenv:Fault")
	code := f.Code
	if code == "" {
		code = "soapenv:Server"
	}
	fe.CreateElement("faultcode").SetText(code)
	fe.CreateElement("faultstring").SetText(f.String)
	if f.Actor != "" {
		fe.CreateElement("faultactor").SetText(f.Actor)
	}
	var deeper []string // AllCodes that are not Codes: written one level deeper
	for _, c := range f.AllCodes {
		if !slices.Contains(f.Codes, c) {
			deeper = append(deeper, c)
		}
	}
	if len(f.Codes) > 0 || len(deeper) > 0 {
		detail := fe.CreateElement("detail")
		for _, c := range f.Codes {
			e := detail.CreateElement("soa:SystemError")
			e.CreateAttr("xmlns:soa", NSFaultDetail)
			e.CreateElement("soa:Code").SetText(c)
			e.CreateElement("soa:Message").SetText(f.String)
		}
		if len(deeper) > 0 {
			e := detail.CreateElement("soa:BusinessError")
			e.CreateAttr("xmlns:soa", NSFaultDetail)
			d := e.CreateElement("soa:Detail")
			for _, c := range deeper {
				d.CreateElement("soa:Code").SetText(c)
			}
		}
	}
	return NewEnvelope(fe)
}

// ReadResponse parses a SOAP response from r within lim and returns the first
// element of its Body. A SOAP fault is returned as a *Fault error; parse
// failures are the errors of Parse.
func ReadResponse(r io.Reader, lim Limits) (*etree.Element, error) {
	doc, err := Parse(r, lim)
	if err != nil {
		return nil, err
	}
	if f, ok := FaultOf(doc); ok {
		return nil, f
	}
	return BodyContent(doc)
}

var _ error = (*Fault)(nil)
