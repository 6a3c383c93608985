package connector

import (
	"strings"

	"github.com/beevik/etree"
)

// The wire format of Insurability v2 (pharmacists), as its schema insurabilityservices_protocol-2_0.xsd
// and insurabilityservices_core-2_0.xsd define it (platformtest/testdata/xsd, README there):
// CommonInput, RecordCommonInput and InsurabilityRequest are in the protocol namespace, their
// content in the core namespace; the answer starts with the commons Status (no namespace).

// Quality codes of CareProvider/Nihii in an Insurability v2 request, as the official pharmacy
// integration module sends them (taktik/freehealth-connector,
// decompiled/RECIPE.1.8.4/be/business/connector/mycarenet/MyCareNetRequestV2.java,
// createCommonInput: the holder's NIHII as "PHARMACY-HOLDER", the pharmacy Organization's as
// "PHARMACY", the holder's PhysicalPerson by SSIN).
const (
	QualityPharmacyHolder = "PHARMACY-HOLDER"
	QualityPharmacy       = "PHARMACY"
)

// insurabilityRequestCodes maps ehgate's request types to Insurability v2's one-character
// RequestType. The schema only says "one character" and no public source we could read gives
// the codes (docs/wire.md, open choices): "I" information, "F" invoicing
// (facturation/facturatie). A caller who knows another code passes it as one character.
var insurabilityRequestCodes = map[string]string{RequestInformation: "I", RequestInvoicing: "F"}

// insurabilityRequestCode is the RequestType sent for t (t normalized).
func insurabilityRequestCode(t string) string {
	if c, ok := insurabilityRequestCodes[t]; ok {
		return c
	}
	return t
}

// addInsurabilityCommonInput writes Insurability v2's CommonInput: Request/IsTest, then Origin
// with Package (Name before License, as AbstractIdType orders them) and the CareProvider.
func addInsurabilityCommonInput(root *etree.Element, o requestOrigin) {
	const c = "core:"
	ci := add(root, "ins:CommonInput", "")
	origin := addRequestOrigin(ci, c, o)
	if o.NIHII == "" {
		return // CareProvider is optional in the schema; Config.Validate requires the NIHII
	}
	cp := add(origin, c+"CareProvider", "")
	holder := o.HolderNIHII
	quality := QualityPharmacyHolder
	if holder == "" {
		// Without the holder's own NIHII the pharmacy's is the care provider's.
		holder, quality = o.NIHII, QualityPharmacy
	}
	addNihii(cp, c, quality, holder)
	if o.SSIN != "" {
		add(add(cp, c+"PhysicalPerson", ""), c+"Ssin", o.SSIN)
	}
	if o.HolderNIHII != "" {
		addNihii(add(cp, c+"Organization", ""), c, QualityPharmacy, o.NIHII)
	}
}

// addNihii writes a NihiiType (Quality, Value) named Nihii under parent.
func addNihii(parent *etree.Element, p, quality, value string) {
	n := add(parent, p+"Nihii", "")
	add(n, p+"Quality", quality)
	add(n, p+"Value", value)
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// buildInsurabilityRequest builds the GetInsurabilityForPharmacistRequest body element; req
// must be normalized, reference is a number of at most 14 digits (RecordReferenceType).
func buildInsurabilityRequest(req InsurabilityRequest, o requestOrigin, reference string) *etree.Element {
	root := etree.NewElement("ins:GetInsurabilityForPharmacistRequest")
	root.CreateAttr("xmlns:ins", NSInsurabilityProtocol)
	root.CreateAttr("xmlns:core", NSInsurabilityCore)
	const c = "core:"
	addInsurabilityCommonInput(root, o)
	rci := add(root, "ins:RecordCommonInput", "")
	add(rci, c+"Reference", reference)
	if req.UserReference != "" {
		add(rci, c+"UserReference", req.UserReference)
	}
	ir := add(root, "ins:InsurabilityRequest", "")
	add(ir, c+"Date", req.Date.Format(dateLayout))
	add(ir, c+"RequestType", insurabilityRequestCode(req.RequestType))
	cr := add(ir, c+"CareReceiver", "")
	if req.SSIN != "" {
		add(cr, c+"Ssin", req.SSIN)
	} else {
		add(cr, c+"RegNrWithMut", req.RegNrWithMut)
		add(cr, c+"Mutuality", req.Mutuality)
	}
	return root
}

// parseInsurabilityResponse reads a GetInsurabilityForPharmacistResponse as the schema
// defines it. reference is the request's Reference: when the answer echoes one in
// RecordCommonOutput it must be it. A Status other than 200 or a ReturnCode Major other than
// "00" is returned with a *BusinessError; anything the schema does not allow is a
// *ResponseError naming the element.
func parseInsurabilityResponse(el *etree.Element, reference string) (InsurabilityAnswer, error) {
	const p, c = NSInsurabilityProtocol, NSInsurabilityCore
	r := &answerReader{service: ServiceInsurability}
	var a InsurabilityAnswer
	s := r.root(el, p, "GetInsurabilityForPharmacistResponse")
	code, msg := readStatus(s, nsNone)
	if r.failed() {
		return InsurabilityAnswer{}, r.err
	}
	if !s.peek(p, "CommonOutput") {
		s.end()
		if r.failed() {
			return InsurabilityAnswer{}, r.err
		}
		if code == "200" {
			r.fail("GetInsurabilityForPharmacistResponse/CommonOutput", "missing in a successful answer")
			return InsurabilityAnswer{}, r.err
		}
		return InsurabilityAnswer{}, &BusinessError{Service: ServiceInsurability, Code: truncateText(code, 16), Message: truncateText(msg, 256)}
	}
	readInsurabilityCommonOutput(r, s.req(p, "CommonOutput"), s.path+"/CommonOutput")
	if rco := s.req(p, "RecordCommonOutput"); rco != nil {
		rs := r.seq(rco, s.path+"/RecordCommonOutput")
		if ref, ok := rs.optText(c, "Reference"); ok {
			rs.digits(ref, "Reference", 1, 14)
			rs.check(reference == "" || strings.TrimLeft(ref, "0") == strings.TrimLeft(reference, "0"), "Reference", "does not echo the request's Reference")
		}
		if v, ok := rs.optText(c, "IoReference"); ok {
			rs.digits(v, "IoReference", 1, 14)
		}
		if v, ok := rs.optText(c, "UserReference"); ok {
			rs.length(v, "UserReference", 0, 25)
		}
		rs.end()
	}
	if ri := s.req(p, "ReturnInfo"); ri != nil {
		rs := r.seq(ri, s.path+"/ReturnInfo")
		if rc := rs.req(c, "ReturnCode"); rc != nil {
			cs := r.seq(rc, rs.path+"/ReturnCode")
			a.ReturnCode.Major = cs.length(cs.text(c, "Major"), "Major", 2, 2)
			a.ReturnCode.Minor = cs.length(cs.text(c, "Minor"), "Minor", 2, 2)
			a.ReturnCode.Detail = cs.length(cs.text(c, "Detail"), "Detail", 5, 5)
			cs.end()
		}
		if v, ok := rs.optText(c, "MultipleIO"); ok {
			for _, io := range strings.Fields(v) {
				a.MultipleIO = append(a.MultipleIO, rs.oneOf(io, "MultipleIO", "1", "2", "3", "4", "5", "6", "9"))
			}
		}
		rs.end()
	}
	if resp := s.req(p, "InsurabilityResponse"); resp != nil {
		readInsurabilityResponse(r, resp, s.path+"/InsurabilityResponse", &a)
	}
	if x := s.opt(p, "ExtendedInformation"); x != nil {
		r.seq(x, s.path+"/ExtendedInformation").skipAny() // SAML attributes the client does not use
	}
	s.end()
	if r.failed() {
		return InsurabilityAnswer{}, r.err
	}
	if code != "200" {
		return InsurabilityAnswer{}, &BusinessError{Service: ServiceInsurability, Code: truncateText(code, 16), Message: truncateText(msg, 256)}
	}
	if !a.ReturnCode.OK() {
		return a, &BusinessError{Service: ServiceInsurability, Code: a.ReturnCode.Major, Minor: a.ReturnCode.Minor, Message: a.ReturnCode.Detail}
	}
	return a, nil
}

// readInsurabilityCommonOutput checks CommonOutput (Reference, IoReference: 14 characters).
func readInsurabilityCommonOutput(r *answerReader, el *etree.Element, path string) {
	if el == nil {
		return
	}
	s := r.seq(el, path)
	for _, name := range []string{"Reference", "IoReference"} {
		if v, ok := s.optText(NSInsurabilityCore, name); ok {
			s.length(v, name, 14, 14)
		}
	}
	s.end()
}

// readInsurabilityResponse reads InsurabilityResponse: Requested, CareReceiver, Coverage,
// Verification.
func readInsurabilityResponse(r *answerReader, el *etree.Element, path string, a *InsurabilityAnswer) {
	const c = NSInsurabilityCore
	s := r.seq(el, path)
	a.Requested, _ = s.optDate(c, "Requested")
	if cr := s.req(c, "CareReceiver"); cr != nil {
		cs := r.seq(cr, path+"/CareReceiver")
		if v, ok := cs.optText(c, "Ssin"); ok {
			a.CareReceiver.SSIN = cs.length(v, "Ssin", 11, 11)
		}
		if v, ok := cs.optText(c, "RegNrWithMut"); ok {
			a.CareReceiver.RegNrWithMut = cs.length(v, "RegNrWithMut", 0, 13)
		}
		if v, ok := cs.optText(c, "Mutuality"); ok {
			a.CareReceiver.Mutuality = cs.length(v, "Mutuality", 3, 3)
		}
		if v, ok := cs.optText(c, "FirstName"); ok {
			a.CareReceiver.FirstName = cs.length(v, "FirstName", 0, 24)
		}
		if v, ok := cs.optText(c, "LastName"); ok {
			a.CareReceiver.LastName = cs.length(v, "LastName", 0, 48)
		}
		a.CareReceiver.Birthday, _ = cs.optDate(c, "Birthday")
		a.CareReceiver.Deceased, _ = cs.optDate(c, "Deceased")
		if v, ok := cs.optText(c, "Sex"); ok {
			a.CareReceiver.Sex = cs.oneOf(v, "Sex", "male", "female")
		}
		cs.end()
	}
	if cov := s.opt(c, "Coverage"); cov != nil {
		cs := r.seq(cov, path+"/Coverage")
		var cv Coverage
		cv.Communicated = cs.reqDate(c, "Communicated")
		if per := cs.req(c, "Period"); per != nil {
			ps := r.seq(per, cs.path+"/Period")
			cv.Begin = ps.reqDate(c, "BeginDate")
			cv.End = ps.reqDate(c, "EndDate")
			ps.end()
		}
		if ent := cs.req(c, "Entitlement"); ent != nil {
			es := r.seq(ent, cs.path+"/Entitlement")
			cv.Entitlement.Code1 = es.length(es.text(c, "Code1"), "Code1", 3, 3)
			cv.Entitlement.Code2 = es.length(es.text(c, "Code2"), "Code2", 3, 3)
			cv.Entitlement.ThirdPartyPayerRegime = ThirdPartyPayerRegime(es.oneOf(es.text(c, "ThirdPartyPayerRegime"),
				"ThirdPartyPayerRegime", string(RegimeNone), string(RegimeStandard), string(RegimeElevated)))
			es.end()
		}
		cs.end()
		a.Coverages = []Coverage{cv}
	}
	if ver := s.opt(c, "Verification"); ver != nil {
		vs := r.seq(ver, path+"/Verification")
		if v, ok := vs.optText(c, "PaymentApproval"); ok {
			a.PaymentApproval = vs.length(v, "PaymentApproval", 32, 32)
		}
		if v, ok := vs.optText(c, "PaymentApprovalSeed"); ok {
			a.PaymentApprovalSeed = vs.length(v, "PaymentApprovalSeed", 10, 10)
		}
		a.InvoicingOfficeCheckDigit = vs.length(vs.text(c, "InvoicingOfficeCheckDigit"), "InvoicingOfficeCheckDigit", 2, 2)
		vs.end()
	}
	s.end()
}

// addRequestOrigin writes the Request/IsTest and Origin/Package part of a CommonInput, shared by
// Insurability v2 and GenericInsurability (Package Name before License, as AbstractIdType
// orders them), and returns Origin for the CareProvider.
func addRequestOrigin(ci *etree.Element, c string, o requestOrigin) *etree.Element {
	add(add(ci, c+"Request", ""), c+"IsTest", boolText(o.IsTest))
	origin := add(ci, c+"Origin", "")
	pkg := add(origin, c+"Package", "")
	if o.Package.Name != "" {
		add(pkg, c+"Name", o.Package.Name)
	}
	lic := add(pkg, c+"License", "")
	add(lic, c+"Username", o.Package.Username)
	add(lic, c+"Password", o.Package.Password)
	return origin
}
