package platformtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Namespaces of the insurability services (docs/wire/insurability.md).
const (
	NSInsurabilityProtocol        = "urn:be:fgov:ehealth:insurability:protocol:v2"
	NSInsurabilityCore            = "urn:be:fgov:ehealth:insurability:core:v2"
	NSGenericInsurabilityProtocol = "urn:be:fgov:ehealth:genericinsurability:protocol:v1"
	NSGenericInsurabilityCore     = "urn:be:fgov:ehealth:genericinsurability:core:v1"
)

const dateLayout = "2006-01-02"

// Insurability v2 return codes (ReturnInfo/ReturnCode). The schema fixes
// only their lengths (Major and Minor two characters, Detail five); the
// values beyond success are platformtest's choice, documented here:
// success "00"/"00"/"00000"; care receiver unknown "01"/"00"/"00001";
// input refused by the business rules (check digits, no identifier, bad
// date) "02"/"00"/"00002".
const (
	InsMajorOK      = "00"
	InsMajorUnknown = "01"
	InsMajorInput   = "02"
)

func (p *Platform) lookupPatient(ssin, regNr, mutuality string) (Patient, bool) {
	if ssin != "" {
		return p.Patient(ssin)
	}
	i, ok := p.byRegNr[mutuality+"/"+regNr]
	if !ok {
		return Patient{}, false
	}
	return p.patients[i], true
}

// reference returns a fresh 14-digit reference (MessageReferenceType is a
// string of length 14; GenericInsurability's references are at most 14).
func (p *Platform) reference() string {
	p.refMu.Lock()
	p.refSeq++
	n := p.refSeq
	p.refMu.Unlock()
	return fmt.Sprintf("%014d", n%100_000_000_000_000)
}

// status adds the commons Status (unqualified Code and Message, as the
// commons protocol schema's ResponseType has it) to resp.
func status(resp *etree.Element, code, message string) {
	st := resp.CreateElement("Status")
	st.CreateElement("Code").SetText(code)
	st.CreateElement("Message").SetText(message)
}

// serveInsurability answers GetInsurabilityForPharmacist (v2).
func (p *Platform) serveInsurability(x *exchange) reply {
	if r := checkAction(x, ActionInsurability); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	req := c.verified.Body
	if r := checkSchema(SchemaInsurability, req); r != nil {
		return *r
	}
	if c.attributes[AttrRecognisedPharmacy] != "true" {
		return noAccess("token does not certify a recognised pharmacy")
	}
	pr, co := builder{"ins"}, builder{"core"}
	resp := pr.el(nil, "GetInsurabilityForPharmacistResponse")
	resp.CreateAttr("xmlns:ins", NSInsurabilityProtocol)
	resp.CreateAttr("xmlns:core", NSInsurabilityCore)
	resp.CreateAttr("Id", newID())
	status(resp, "200", "Success")
	out := pr.el(resp, "CommonOutput")
	co.el(out, "Reference", p.reference())
	co.el(out, "IoReference", p.reference())
	rec := pr.el(resp, "RecordCommonOutput")
	if ref := text(req, "RecordCommonInput", "Reference"); ref != "" {
		co.el(rec, "Reference", ref)
	}
	if ur := text(req, "RecordCommonInput", "UserReference"); ur != "" {
		co.el(rec, "UserReference", ur)
	}
	ret := co.el(pr.el(resp, "ReturnInfo"), "ReturnCode")
	ins := pr.el(resp, "InsurabilityResponse")

	ir := child(req, "InsurabilityRequest")
	ssin := text(ir, "CareReceiver", "Ssin")
	regNr, mut := text(ir, "CareReceiver", "RegNrWithMut"), text(ir, "CareReceiver", "Mutuality")
	refuse := func(major, detail string) reply {
		co.el(ret, "Major", major)
		co.el(ret, "Minor", "00")
		co.el(ret, "Detail", detail)
		cr := co.el(ins, "CareReceiver") // required; echoes the identifiers asked
		if ssin != "" {
			co.el(cr, "Ssin", ssin)
		}
		if regNr != "" {
			co.el(cr, "RegNrWithMut", regNr)
		}
		if mut != "" {
			co.el(cr, "Mutuality", mut)
		}
		return answer(SchemaInsurability, resp, OutcomeBusiness)
	}
	day, err := time.Parse(dateLayout, text(ir, "Date"))
	if err != nil { // a schema-valid date with a time zone
		return refuse(InsMajorInput, "00002")
	}
	switch {
	case ssin == "" && (regNr == "" || mut == ""):
		return refuse(InsMajorInput, "00002")
	case ssin != "" && !validSSIN(ssin):
		return refuse(InsMajorInput, "00002")
	}
	pt, ok := p.lookupPatient(ssin, regNr, mut)
	if !ok {
		return refuse(InsMajorUnknown, "00001")
	}
	co.el(ret, "Major", InsMajorOK)
	co.el(ret, "Minor", "00")
	co.el(ret, "Detail", "00000")
	co.el(ins, "Requested", day.Format(dateLayout))
	cr := co.el(ins, "CareReceiver")
	co.el(cr, "Ssin", pt.SSIN)
	co.el(cr, "RegNrWithMut", pt.RegNrWithMut)
	co.el(cr, "Mutuality", pt.Mutuality)
	co.el(cr, "FirstName", pt.FirstName)
	co.el(cr, "LastName", pt.LastName)
	co.el(cr, "Birthday", pt.Birthday.Format(dateLayout))
	if pt.Deceased {
		co.el(cr, "Deceased", pt.DeceasedOn.Format(dateLayout))
	}
	co.el(cr, "Sex", pt.Sex)
	if pt.CoveredOn(day) {
		cov := co.el(ins, "Coverage")
		co.el(cov, "Communicated", x.now().Format(dateLayout))
		per := co.el(cov, "Period")
		co.el(per, "BeginDate", pt.CoverageBegin.Format(dateLayout))
		co.el(per, "EndDate", pt.CoverageEnd.Format(dateLayout))
		ent := co.el(cov, "Entitlement")
		co.el(ent, "Code1", pt.CT1)
		co.el(ent, "Code2", pt.CT2)
		co.el(ent, "ThirdPartyPayerRegime", string(pt.Regime))
		ver := co.el(ins, "Verification")
		co.el(ver, "PaymentApproval", pt.PaymentApproval)
		co.el(ver, "InvoicingOfficeCheckDigit", checkDigit(pt.Mutuality))
	}
	return answer(SchemaInsurability, resp, OutcomeOK)
}

// checkDigit is a two-digit check of the invoicing office (its value is
// not defined by the schema: 97 - n mod 97 of the mutuality number).
func checkDigit(mutuality string) string {
	n := 0
	for _, c := range mutuality {
		n = n*10 + int(c-'0')
	}
	return fmt.Sprintf("%02d", 97-n%97)
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// genericInsurabilitySchema is the GenericInsurability version an endpoint
// serves: 1.0 at the eHealth endpoint (/GenericInsurability/v1, the eHealth
// ESB's service, whose WSDL and schema the eHI library ships under
// eHealthESB), 1.1 at MyCareNet's BCP endpoint (the MyCareNet schema of the
// official connector). They differ only in values: 1.1 also allows the
// mutualities 750 and 999 and the insurer code 000.
func genericInsurabilitySchema(path string) Schema {
	if path == servicePaths[ServiceGenericInsurability][0] {
		return SchemaGenericInsurability10
	}
	return SchemaGenericInsurability
}

// serveGenericInsurability answers GetInsurability with the version its
// endpoint serves (genericInsurabilitySchema); the answers are valid under
// both versions.
func (p *Platform) serveGenericInsurability(x *exchange) reply {
	if r := checkAction(x, ActionGenericInsurability); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	req := c.verified.Body
	schema := genericInsurabilitySchema(x.r.URL.Path)
	if r := checkSchema(schema, req); r != nil {
		return *r
	}
	if c.attributes[AttrDoctorBoolean] != "true" && c.attributes[AttrRecognisedPharmacy] != "true" {
		return noAccess("token does not certify a care provider")
	}
	pr, co := builder{"gi"}, builder{"core"}
	resp := pr.el(nil, "GetInsurabilityResponse")
	resp.CreateAttr("xmlns:gi", NSGenericInsurabilityProtocol)
	resp.CreateAttr("xmlns:core", NSGenericInsurabilityCore)
	resp.CreateAttr("Id", newID())
	status(resp, "200", "Success")
	out := pr.el(resp, "CommonOutput")
	inRef := text(req, "CommonInput", "InputReference")
	if inRef != "" {
		co.el(out, "InputReference", inRef)
	}
	co.el(out, "NIPReference", p.reference())
	co.el(out, "OutputReference", p.reference())
	rec := pr.el(resp, "RecordCommonOutput")
	recRef := text(req, "RecordCommonInput", "InputReference")
	if recRef != "" {
		co.el(rec, "InputReference", recRef)
	}
	co.el(rec, "OutputReference", p.reference())
	body := pr.el(resp, "Response")
	// The message header as the platform sets it (a real answer quoted in
	// taktik/freehealth-connector issue #17: MessageName M801000 or
	// M801000ERR, Version 02, Synchronous true).
	body.CreateAttr("MessageName", "M801000")
	body.CreateAttr("Version", "02")
	body.CreateAttr("Duplicate", "false")
	body.CreateAttr("TestFlag", boolText(text(req, "CommonInput", "Request", "IsTest") == "true"))
	if sr := firstDigits(recRef, inRef); sr != "" {
		body.CreateAttr("SenderReference", sr)
	}
	body.CreateAttr("ReceiverReference", p.reference())
	body.CreateAttr("Synchronous", "true")

	id := path(req, "Request", "CareReceiverId")
	inss, regNr, mut := text(id, "Inss"), text(id, "RegNrWithMut"), text(id, "Mutuality")
	detail := path(req, "Request", "InsurabilityRequestDetail")
	echoDetail := func() { body.AddChild(copyAs(detail, "core")) }
	fault := func(code, msg string) reply {
		body.SelectAttr("MessageName").Value = "M801000ERR"
		cid := co.el(body, "CareReceiverId")
		if inss != "" {
			co.el(cid, "Inss", inss)
		}
		if regNr != "" {
			co.el(cid, "RegNrWithMut", regNr)
		}
		if mut != "" {
			co.el(cid, "Mutuality", mut)
		}
		mf := co.el(body, "MessageFault")
		co.el(mf, "FaultCode", code)
		co.el(mf, "FaultSource", "MYCARENET")
		m := co.el(mf, "Message", msg)
		m.CreateAttr("xml:lang", "en")
		dd := co.el(co.el(mf, "Details"), "Detail")
		co.el(dd, "DetailCode", code)
		co.el(dd, "Location", "/GetInsurabilityRequest/Request/CareReceiverId")
		echoDetail()
		return answer(schema, resp, OutcomeBusiness)
	}
	switch {
	case inss == "" && (regNr == "" || mut == ""):
		return fault("INPUT_ERROR", "CareReceiverId needs Inss or RegNrWithMut and Mutuality")
	case inss != "" && !validSSIN(inss):
		return fault("INPUT_ERROR", "invalid Inss")
	}
	today := truncDay(x.now())
	start, end := today, today
	var perr error
	if s := text(detail, "Period", "PeriodStart"); s != "" {
		start, perr = time.Parse(dateLayout, s)
	}
	if e := text(detail, "Period", "PeriodEnd"); e != "" && perr == nil {
		end, perr = time.Parse(dateLayout, e)
	}
	if perr != nil || end.Before(start) {
		return fault("INPUT_ERROR", "invalid Period")
	}
	pt, ok := p.lookupPatient(inss, regNr, mut)
	if !ok {
		return fault("NO_IO_ERROR", "no insurability organisation found for the care receiver")
	}
	crd := co.el(body, "CareReceiverDetail")
	co.el(crd, "Inss", pt.SSIN)
	co.el(crd, "FirstName", pt.FirstName)
	co.el(crd, "LastName", pt.LastName)
	co.el(crd, "Birthday", pt.Birthday.Format(dateLayout))
	if pt.Deceased {
		co.el(crd, "Deceased", pt.DeceasedOn.Format(dateLayout))
	}
	co.el(crd, "Sex", pt.Sex)
	ird := co.el(body, "InsurabilityResponseDetail")
	pay := co.el(ird, "Payment")
	co.el(pay, "PaymentByIo", boolText(pt.Regime != RegimeNone))
	co.el(pay, "SpecialSocialCategory", boolText(pt.Regime == RegimeElevated))
	list := co.el(ird, "InsurabilityList")
	begin, stop := maxTime(start, pt.CoverageBegin), minTime(end, pt.CoverageEnd)
	if !stop.Before(truncDay(begin)) {
		it := co.el(list, "InsurabilityItem")
		co.el(it, "RegNrWithMut", pt.RegNrWithMut)
		co.el(it, "Mutuality", pt.Mutuality)
		per := co.el(it, "Period")
		co.el(per, "PeriodStart", begin.Format(dateLayout))
		co.el(per, "PeriodEnd", stop.Format(dateLayout))
		co.el(it, "CT1", pt.CT1)
		co.el(it, "CT2", pt.CT2)
		co.el(it, "PaymentApproval", pt.PaymentApproval)
		co.el(it, "InsurabilityDate", today.Format(dateLayout))
	}
	echoDetail()
	return answer(schema, resp, OutcomeOK)
}

// firstDigits returns the first of refs made of 1 to 14 digits, or "".
func firstDigits(refs ...string) string {
	for _, r := range refs {
		if len(r) >= 1 && len(r) <= 14 && strings.Trim(r, "0123456789") == "" {
			return r
		}
	}
	return ""
}

// copyAs copies el and its descendants with every element under prefix
// (the request's elements, echoed in the answer's namespace declarations).
func copyAs(el *etree.Element, prefix string) *etree.Element {
	out := etree.NewElement(prefix + ":" + el.Tag)
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			continue
		}
		out.CreateAttr(a.FullKey(), a.Value)
	}
	kids := el.ChildElements()
	if len(kids) == 0 {
		out.SetText(el.Text())
		return out
	}
	for _, k := range kids {
		out.AddChild(copyAs(k, prefix))
	}
	return out
}

func truncDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func maxTime(a, b time.Time) time.Time {
	if truncDay(a).After(truncDay(b)) {
		return truncDay(a)
	}
	return truncDay(b)
}

func minTime(a, b time.Time) time.Time {
	if truncDay(a).Before(truncDay(b)) {
		return truncDay(a)
	}
	return truncDay(b)
}
