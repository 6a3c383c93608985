package platformtest

import (
	"strings"
	"time"
)

// Namespaces of the insurability services (docs/wire/insurability.md).
const (
	NSInsurabilityProtocol        = "urn:be:fgov:ehealth:insurability:protocol:v2"
	NSInsurabilityCore            = "urn:be:fgov:ehealth:insurability:core:v2"
	NSGenericInsurabilityProtocol = "urn:be:fgov:ehealth:genericinsurability:protocol:v1"
	NSGenericInsurabilityCore     = "urn:be:fgov:ehealth:genericinsurability:core:v1"
)

const dateLayout = "2006-01-02"

// Insurability v2 return codes (ReturnInfo/ReturnCode/Major).
const (
	insMajorOK      = "0"
	insMajorUnknown = "1"
	insMajorInput   = "2"
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

// serveInsurability answers GetInsurabilityForPharmacist (v2).
func (p *Platform) serveInsurability(x *exchange) reply {
	if r := checkAction(x, ActionInsurability); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	if c.attributes[AttrRecognisedPharmacy] != "true" {
		return noAccess("token does not certify a recognised pharmacy")
	}
	req := c.verified.Body
	if req.Tag != "GetInsurabilityForPharmacistRequest" {
		return badRequest("body is not GetInsurabilityForPharmacistRequest")
	}
	pr, co := builder{"ins"}, builder{"core"}
	resp := pr.el(nil, "GetInsurabilityForPharmacistResponse")
	resp.CreateAttr("xmlns:ins", NSInsurabilityProtocol)
	resp.CreateAttr("xmlns:core", NSInsurabilityCore)
	resp.CreateAttr("Id", newID())
	out := co.el(resp, "CommonOutput")
	co.el(out, "InputReference", text(req, "CommonInput", "InputReference"))
	co.el(out, "NIPReference", newID()[1:])
	rec := co.el(resp, "RecordCommonOutput")
	co.el(rec, "InputReference", text(req, "RecordCommonInput", "Reference"))
	ret := co.el(co.el(resp, "ReturnInfo"), "ReturnCode")
	answer := func(major, detail string) {
		co.el(ret, "Major", major)
		co.el(ret, "Minor", "0")
		co.el(ret, "Detail", detail)
	}

	ir := child(req, "InsurabilityRequest")
	day := x.now()
	if d := text(ir, "Date"); d != "" {
		t, err := time.Parse(dateLayout, d)
		if err != nil {
			answer(insMajorInput, "invalid Date")
			return okEnvelope(resp, OutcomeBusiness)
		}
		day = t
	}
	ssin := text(ir, "CareReceiver", "Ssin")
	regNr, mut := text(ir, "CareReceiver", "RegNrWithMut"), text(ir, "CareReceiver", "Mutuality")
	switch {
	case ssin == "" && (regNr == "" || mut == ""):
		answer(insMajorInput, "CareReceiver needs Ssin or RegNrWithMut and Mutuality")
		return okEnvelope(resp, OutcomeBusiness)
	case ssin != "" && !validSSIN(ssin):
		answer(insMajorInput, "invalid Ssin")
		return okEnvelope(resp, OutcomeBusiness)
	}
	pt, ok := p.lookupPatient(ssin, regNr, mut)
	if !ok {
		answer(insMajorUnknown, "care receiver unknown")
		return okEnvelope(resp, OutcomeBusiness)
	}
	answer(insMajorOK, "OK")
	ins := co.el(resp, "InsurabilityResponse")
	cr := co.el(ins, "CareReceiver")
	co.el(cr, "Ssin", pt.SSIN)
	co.el(cr, "RegNrWithMut", pt.RegNrWithMut)
	co.el(cr, "Mutuality", pt.Mutuality)
	co.el(cr, "FirstName", pt.FirstName)
	co.el(cr, "LastName", pt.LastName)
	co.el(cr, "Birthday", pt.Birthday.Format(dateLayout))
	co.el(cr, "Deceased", boolText(pt.Deceased))
	co.el(cr, "Sex", pt.Sex)
	if pt.CoveredOn(day) {
		cov := co.el(ins, "Coverage")
		per := co.el(cov, "Period")
		co.el(per, "BeginDate", pt.CoverageBegin.Format(dateLayout))
		co.el(per, "EndDate", pt.CoverageEnd.Format(dateLayout))
		ent := co.el(cov, "Entitlement")
		co.el(ent, "Code1", pt.CT1)
		co.el(ent, "Code2", pt.CT2)
		co.el(ent, "ThirdPartyPayerRegime", string(pt.Regime))
		ver := co.el(ins, "Verification")
		co.el(ver, "PaymentApproval", pt.PaymentApproval)
		co.el(ver, "Date", day.Format(dateLayout))
	}
	return okEnvelope(resp, OutcomeOK)
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// serveGenericInsurability answers GetInsurability (GenericInsurability v1).
func (p *Platform) serveGenericInsurability(x *exchange) reply {
	if r := checkAction(x, ActionGenericInsurability); r != nil {
		return *r
	}
	c, rej := p.authenticate(x)
	if rej != nil {
		return *rej
	}
	if c.attributes[AttrDoctorBoolean] != "true" && c.attributes[AttrRecognisedPharmacy] != "true" {
		return noAccess("token does not certify a care provider")
	}
	req := c.verified.Body
	if req.Tag != "GetInsurabilityRequest" {
		return badRequest("body is not GetInsurabilityRequest")
	}
	pr, co := builder{"gi"}, builder{"core"}
	resp := pr.el(nil, "GetInsurabilityResponse")
	resp.CreateAttr("xmlns:gi", NSGenericInsurabilityProtocol)
	resp.CreateAttr("xmlns:core", NSGenericInsurabilityCore)
	resp.CreateAttr("Id", newID())
	out := co.el(resp, "CommonOutput")
	co.el(out, "InputReference", text(req, "CommonInput", "InputReference"))
	co.el(out, "NIPReference", newID()[1:])
	co.el(co.el(resp, "RecordCommonOutput"), "InputReference", text(req, "RecordCommonInput", "InputReference"))
	body := co.el(resp, "Response")

	id := path(req, "Request", "CareReceiverId")
	inss, regNr, mut := text(id, "Inss"), text(id, "RegNrWithMut"), text(id, "Mutuality")
	fault := func(code, msg string) reply {
		cid := co.el(body, "CareReceiverId")
		if inss != "" {
			co.el(cid, "Inss", inss)
		} else {
			co.el(cid, "RegNrWithMut", regNr)
			co.el(cid, "Mutuality", mut)
		}
		mf := co.el(body, "MessageFault")
		co.el(mf, "FaultCode", code)
		co.el(mf, "FaultSource", "platformtest")
		co.el(co.el(mf, "Details"), "Detail", msg)
		return okEnvelope(resp, OutcomeBusiness)
	}
	switch {
	case inss == "" && (regNr == "" || len(mut) != 3):
		return fault("INPUT_ERROR", "CareReceiverId needs Inss or RegNrWithMut and a 3-digit Mutuality")
	case inss != "" && !validSSIN(inss):
		return fault("INPUT_ERROR", "invalid Inss")
	}
	detail := path(req, "Request", "InsurabilityRequestDetail")
	today := x.now()
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
	co.el(crd, "RegNrWithMut", pt.RegNrWithMut)
	co.el(crd, "Mutuality", pt.Mutuality)
	co.el(crd, "FirstName", pt.FirstName)
	co.el(crd, "LastName", pt.LastName)
	co.el(crd, "BirthDate", pt.Birthday.Format(dateLayout))
	co.el(crd, "Sex", pt.Sex)
	co.el(crd, "Deceased", boolText(pt.Deceased))
	ird := co.el(body, "InsurabilityResponseDetail")
	pay := co.el(ird, "Payment")
	co.el(pay, "ByIO", boolText(pt.Regime != RegimeNone))
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
	}
	requestType := strings.TrimSpace(text(detail, "InsurabilityRequestType"))
	if requestType != "" {
		co.el(ird, "InsurabilityRequestType", requestType)
	}
	return okEnvelope(resp, OutcomeOK)
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
