package connector

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// ErrResponse is the sentinel of a response that is well-formed SOAP but not what the
// operation's schema allows (wrong root element, a missing, misplaced, extra or malformed
// element). Such an answer is never stored and counts as the endpoint's failure.
var ErrResponse = errors.New("connector: unexpected response")

// ResponseError says which service answered what the schema does not allow, and where. It
// carries no personal data: element names and the kind of deviation, never a value.
type ResponseError struct {
	Service  string
	Endpoint string
	// Element is the path of local names of the element at fault, from the answer's root
	// ("GetInsurabilityForPharmacistResponse/ReturnInfo/ReturnCode/Major"); "" when unknown.
	Element string
	Reason  string
}

// Error names the service, the endpoint, the element and what was unexpected.
func (e *ResponseError) Error() string {
	where := e.Service
	if e.Endpoint != "" {
		where += " at " + e.Endpoint
	}
	if e.Element == "" {
		return fmt.Sprintf("connector: %s: unexpected response: %s", where, e.Reason)
	}
	return fmt.Sprintf("connector: %s: unexpected response: %s: %s", where, e.Element, e.Reason)
}

// Is reports whether target is ErrResponse.
func (e *ResponseError) Is(target error) bool { return target == ErrResponse }

// ErrBusiness is the sentinel of a business answer that is not a success: the platform answered
// (it is up) and said no, for example an unknown patient. It never moves a call to another
// endpoint and never triggers fallback.
var ErrBusiness = errors.New("connector: business error")

// BusinessError is the platform's business answer: a ReturnCode whose Major is not 0
// (Insurability v2), a MessageFault (GenericInsurability v1), an Error (ETK depot), a rejected
// write, or a SOAP fault whose codes do not make a call switch endpoint (a refusal such as
// SOA-03001 or a MyCareNet code: the platform is up and said no; no stored answer replaces
// it). Its text (Error) names the service and the codes only: the platform's message may name
// the patient, so it stays in Message for the pharmacist's screen, never in a log.
type BusinessError struct {
	Service string
	Code    string // Major return code, FaultCode, ETK error code, write status code, fault's first code
	Minor   string
	Message string // the platform's message, detail or faultstring: personal data, do not log
	// Codes are, for a SOAP fault, every code found anywhere under its detail (the first is
	// Code); nil otherwise.
	Codes []string
	// Err is the *soap.Fault of a refusal by SOAP fault (errors.As finds it); nil otherwise.
	Err error
}

// Error names the service and the platform's codes; long numbers are redacted.
func (e *BusinessError) Error() string {
	s := "connector: " + e.Service + ": business error " + redactNumbers(e.Code)
	if e.Minor != "" {
		s += "/" + redactNumbers(e.Minor)
	}
	if len(e.Codes) > 1 {
		s += " [" + redactNumbers(strings.Join(e.Codes, " ")) + "]"
	}
	return s
}

// Unwrap returns the SOAP fault of a refusal by fault, or nil.
func (e *BusinessError) Unwrap() error { return e.Err }

// redactNumbers replaces every run of 9 or more digits, separators allowed between them
// (an SSIN typed "85.07.30-033.28", a registration number), with "[number]".
func redactNumbers(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		// Extend over digits and separators; count the digits.
		j, digits, last := i, 0, i
		for j < len(s) && (isDigit(s[j]) || strings.IndexByte(" .-/", s[j]) >= 0) {
			if isDigit(s[j]) {
				digits++
				last = j
			}
			j++
		}
		if digits >= 9 {
			b.WriteString("[number]")
		} else {
			b.WriteString(s[i : last+1])
		}
		i = last + 1
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Is reports whether target is ErrBusiness.
func (e *BusinessError) Is(target error) bool { return target == ErrBusiness }

// child returns el's first element child whose local name is local, ignoring prefixes.
func child(el *etree.Element, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// childrenNamed returns el's element children whose local name is local.
func childrenNamed(el *etree.Element, local string) []*etree.Element {
	if el == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			out = append(out, c)
		}
	}
	return out
}

// find follows a path of local names below el.
func find(el *etree.Element, path ...string) *etree.Element {
	for _, p := range path {
		el = child(el, p)
		if el == nil {
			return nil
		}
	}
	return el
}

// textAt is the trimmed text at a path of local names below el, "" when absent.
func textAt(el *etree.Element, path ...string) string {
	el = find(el, path...)
	if el == nil {
		return ""
	}
	return strings.TrimSpace(el.Text())
}

// add appends a prefixed child with optional text.
func add(parent *etree.Element, tag, text string) *etree.Element {
	c := parent.CreateElement(tag)
	if text != "" {
		c.SetText(text)
	}
	return c
}

const dateLayout = "2006-01-02"

// parseDate reads a YYYY-MM-DD date (a dateTime is cut to its date); "" gives the zero time.
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) > 10 {
		s = s[:10]
	}
	return time.Parse(dateLayout, s)
}
