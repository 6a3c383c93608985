package soap

import (
	"io"
	"strings"

	"github.com/beevik/etree"
)

// Fault is a SOAP 1.1 fault. It is an error: ReadResponse returns it as one,
// and errors.As(err, new(*soap.Fault)) finds it.
type Fault struct {
	Code   string   // faultcode text, e.g. "soapenv:Server"
	String string   // faultstring
	Actor  string   // faultactor, often empty
	Codes  []string // the Code text of every detail child, e.g. "SOA-02001"
}

// Error says the fault code, its string and its detail codes.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("soap fault ")
	b.WriteString(f.Code)
	b.WriteString(": ")
	b.WriteString(f.String)
	if len(f.Codes) > 0 {
		b.WriteString(" [")
		b.WriteString(strings.Join(f.Codes, " "))
		b.WriteString("]")
	}
	return b.String()
}

// FaultCodes returns the detail codes (SOA-02001, …), the codes a caller's
// retry and failover classifier branches on.
func (f *Fault) FaultCodes() []string { return f.Codes }

// HasCode reports whether code is one of the detail codes or the faultcode
// itself, with or without its prefix ("Server" matches "soapenv:Server").
func (f *Fault) HasCode(code string) bool {
	for _, c := range f.Codes {
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
				f.Codes = append(f.Codes, detailCodes(d)...)
			}
		}
	}
	return f, true
}

// detailCodes returns the Code texts of a detail entry: its own Code children
// and, when it is itself a Code element, its text.
func detailCodes(d *etree.Element) []string {
	if d.Tag == "Code" {
		if s := strings.TrimSpace(d.Text()); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	for _, c := range d.ChildElements() {
		if c.Tag == "Code" {
			if s := strings.TrimSpace(c.Text()); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// NSFaultDetail is the namespace of the detail entries NewFaultEnvelope writes.
const NSFaultDetail = "urn:be:fgov:ehealth:errors:soa:v1"

// NewFaultEnvelope builds the envelope a server answers with for f: a
// soapenv:Fault with faultcode, faultstring, faultactor when set, and one
// detail entry per code, <soa:SystemError><soa:Code>code</soa:Code>…>.
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
	if len(f.Codes) > 0 {
		detail := fe.CreateElement("detail")
		for _, c := range f.Codes {
			e := detail.CreateElement("soa:SystemError")
			e.CreateAttr("xmlns:soa", NSFaultDetail)
			e.CreateElement("soa:Code").SetText(c)
			e.CreateElement("soa:Message").SetText(f.String)
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
