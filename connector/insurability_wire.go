package connector

import (
	"bytes"
	"strings"

	"github.com/ehgate/ehgate/soap"
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

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Namespace declarations of an Insurability v2 request in canonical form: the protocol
// prefix on the root (which uses it), the core prefix on each core element whose parent is
// a protocol element (exc-c14n declares a prefix where it is used and not yet declared).
var (
	declInsurabilityProtocol = declare("ins", NSInsurabilityProtocol)
	declInsurabilityCore     = declare("core", NSInsurabilityCore)
)

// appendInsurabilityRequest appends the GetInsurabilityForPharmacistRequest body element to
// b in exclusive canonical form (canonicalWriter); req must be normalized, reference is a
// number of at most 14 digits (RecordReferenceType). The elements and their order are those
// of the schema (see the file comment).
func appendInsurabilityRequest(b []byte, req InsurabilityRequest, o requestOrigin, reference string) []byte {
	const root = "ins:GetInsurabilityForPharmacistRequest"
	w := canonicalWriter{b: b}
	w.start(root, declInsurabilityProtocol)
	w.start("ins:CommonInput", "")
	writeRequestOrigin(&w, o)
	w.end("ins:CommonInput")
	w.start("ins:RecordCommonInput", "")
	w.leaf("core:Reference", declInsurabilityCore, reference)
	if req.UserReference != "" {
		w.leaf("core:UserReference", declInsurabilityCore, req.UserReference)
	}
	w.end("ins:RecordCommonInput")
	w.start("ins:InsurabilityRequest", "")
	w.start("core:Date", declInsurabilityCore)
	w.b = req.Date.AppendFormat(w.b, dateLayout)
	w.end("core:Date")
	w.leaf("core:RequestType", declInsurabilityCore, insurabilityRequestCode(req.RequestType))
	w.start("core:CareReceiver", declInsurabilityCore)
	if req.SSIN != "" {
		w.leaf("core:Ssin", "", req.SSIN)
	} else {
		w.leaf("core:RegNrWithMut", "", req.RegNrWithMut)
		w.leaf("core:Mutuality", "", req.Mutuality)
	}
	w.end("core:CareReceiver")
	w.end("ins:InsurabilityRequest")
	w.end(root)
	return w.b
}

// writeOriginStart writes the Request/IsTest and the start of Origin with its Package (Name
// before License, as AbstractIdType orders them) of a CommonInput, shared by Insurability v2
// and GenericInsurability; decl declares the core prefix (each service has its own core
// namespace). The caller writes its CareProvider and ends core:Origin.
func writeOriginStart(w *canonicalWriter, decl namespaceDecl, o requestOrigin) {
	w.start("core:Request", decl)
	w.leaf("core:IsTest", "", boolText(o.IsTest))
	w.end("core:Request")
	w.start("core:Origin", decl)
	w.start("core:Package", "")
	if o.Package.Name != "" {
		w.leaf("core:Name", "", o.Package.Name)
	}
	w.start("core:License", "")
	w.leaf("core:Username", "", o.Package.Username)
	w.leaf("core:Password", "", o.Package.Password)
	w.end("core:License")
	w.end("core:Package")
}

// writeRequestOrigin writes Insurability v2's CommonInput content: Request/IsTest, then
// Origin with Package and the CareProvider.
func writeRequestOrigin(w *canonicalWriter, o requestOrigin) {
	writeOriginStart(w, declInsurabilityCore, o)
	if o.NIHII != "" { // CareProvider is optional in the schema; Config.Validate requires the NIHII
		holder, quality := o.HolderNIHII, QualityPharmacyHolder
		if holder == "" {
			// Without the holder's own NIHII the pharmacy's is the care provider's.
			holder, quality = o.NIHII, QualityPharmacy
		}
		w.start("core:CareProvider", "")
		writeNihii(w, quality, holder)
		if o.SSIN != "" {
			w.start("core:PhysicalPerson", "")
			w.leaf("core:Ssin", "", o.SSIN)
			w.end("core:PhysicalPerson")
		}
		if o.HolderNIHII != "" {
			w.start("core:Organization", "")
			writeNihii(w, QualityPharmacy, o.NIHII)
			w.end("core:Organization")
		}
		w.end("core:CareProvider")
	}
	w.end("core:Origin")
}

// writeNihii writes a NihiiType (Quality, Value) named Nihii.
func writeNihii(w *canonicalWriter, quality, value string) {
	w.start("core:Nihii", "")
	w.leaf("core:Quality", "", quality)
	w.leaf("core:Value", "", value)
	w.end("core:Nihii")
}

// parseInsurabilityResponse reads a GetInsurabilityForPharmacistResponse document (the
// answer element as root) as the schema defines it; see readInsurabilityResponse.
func parseInsurabilityResponse(doc []byte, reference string) (InsurabilityAnswer, error) {
	r := getStreamReader(ServiceInsurability, doc)
	defer r.put()
	a, err := readInsurabilityAnswer(r, reference)
	if !r.failed() {
		if r.rest(); r.failed() {
			return InsurabilityAnswer{}, r.err // after the answer, the document is not well-formed
		}
	}
	return a, err
}

// parseInsurabilityBody reads the GetInsurabilityForPharmacistResponse that is an answer's
// Body element, in the scope of the namespaces declared around it (soap.RawAnswer's Body
// and Scope: soap.Client has checked the envelope and that it is no fault; only the element
// is read again).
func parseInsurabilityBody(body []byte, scope []soap.Namespace, reference string) (InsurabilityAnswer, error) {
	r := getStreamReader(ServiceInsurability, body)
	defer r.put()
	r.declare(scope)
	return readInsurabilityAnswer(r, reference)
}

// readInsurabilityAnswer reads a GetInsurabilityForPharmacistResponse as the schema defines
// it. reference is the request's Reference: when the answer echoes one in RecordCommonOutput
// it must be it. A Status other than 200 or a ReturnCode Major other than "00" is returned
// with a *BusinessError; anything the schema does not allow is a *ResponseError naming the
// element; bytes that are not well-formed XML an error wrapping soap.ErrMalformed.
func readInsurabilityAnswer(r *streamReader, reference string) (InsurabilityAnswer, error) {
	const p, c = NSInsurabilityProtocol, NSInsurabilityCore
	var a InsurabilityAnswer
	s := r.root(p, "GetInsurabilityForPharmacistResponse")
	code, msg := readStreamStatus(&s, nsNone)
	if r.failed() {
		return InsurabilityAnswer{}, r.err
	}
	if !s.peek(p, "CommonOutput") {
		s.end()
		if r.failed() {
			return InsurabilityAnswer{}, r.err
		}
		if code == "200" {
			r.fail(1, "CommonOutput", "missing in a successful answer")
			return InsurabilityAnswer{}, r.err
		}
		return InsurabilityAnswer{}, &BusinessError{Service: ServiceInsurability, Code: truncateText(code, 16), Message: truncateText(msg, 256)}
	}
	if co, ok := s.req(p, "CommonOutput"); ok {
		for _, name := range [...]string{"Reference", "IoReference"} {
			if v, ok := co.opt(c, name); ok {
				co.length(string(v.leafBytes()), name, 14, 14)
			}
		}
		co.end()
	}
	if rco, ok := s.req(p, "RecordCommonOutput"); ok {
		if v, ok := rco.opt(c, "Reference"); ok {
			ref := v.leafBytes()
			rco.digits(ref, "Reference", 1, 14)
			rco.check(reference == "" || string(bytes.TrimLeft(ref, "0")) == strings.TrimLeft(reference, "0"), "Reference", "does not echo the request's Reference")
		}
		if v, ok := rco.opt(c, "IoReference"); ok {
			rco.digits(v.leafBytes(), "IoReference", 1, 14)
		}
		if v, ok := rco.opt(c, "UserReference"); ok {
			rco.length(string(v.leafBytes()), "UserReference", 0, 25)
		}
		rco.end()
	}
	if ri, ok := s.req(p, "ReturnInfo"); ok {
		if rc, ok := ri.req(c, "ReturnCode"); ok {
			a.ReturnCode.Major = rc.length(rc.text(c, "Major"), "Major", 2, 2)
			a.ReturnCode.Minor = rc.length(rc.text(c, "Minor"), "Minor", 2, 2)
			a.ReturnCode.Detail = rc.length(rc.text(c, "Detail"), "Detail", 5, 5)
			rc.end()
		}
		if v, ok := ri.opt(c, "MultipleIO"); ok {
			for io := range bytes.FieldsSeq(v.leafBytes()) {
				a.MultipleIO = append(a.MultipleIO, ri.enum(io, "MultipleIO", "1", "2", "3", "4", "5", "6", "9"))
			}
		}
		ri.end()
	}
	if resp, ok := s.req(p, "InsurabilityResponse"); ok {
		readInsurabilityResponse(&resp, &a)
	}
	if x, ok := s.opt(p, "ExtendedInformation"); ok {
		x.skipAny() // SAML attributes the client does not use
		x.end()
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

// readInsurabilityResponse reads InsurabilityResponse: Requested, CareReceiver, Coverage,
// Verification.
func readInsurabilityResponse(s *streamSeq, a *InsurabilityAnswer) {
	const c = NSInsurabilityCore
	a.Requested, _ = s.optDate(c, "Requested")
	if cr, ok := s.req(c, "CareReceiver"); ok {
		if v, ok := cr.optText(c, "Ssin"); ok {
			a.CareReceiver.SSIN = cr.length(v, "Ssin", 11, 11)
		}
		if v, ok := cr.optText(c, "RegNrWithMut"); ok {
			a.CareReceiver.RegNrWithMut = cr.length(v, "RegNrWithMut", 0, 13)
		}
		if v, ok := cr.optText(c, "Mutuality"); ok {
			a.CareReceiver.Mutuality = cr.length(v, "Mutuality", 3, 3)
		}
		if v, ok := cr.optText(c, "FirstName"); ok {
			a.CareReceiver.FirstName = cr.length(v, "FirstName", 0, 24)
		}
		if v, ok := cr.optText(c, "LastName"); ok {
			a.CareReceiver.LastName = cr.length(v, "LastName", 0, 48)
		}
		a.CareReceiver.Birthday, _ = cr.optDate(c, "Birthday")
		a.CareReceiver.Deceased, _ = cr.optDate(c, "Deceased")
		if v, ok := cr.opt(c, "Sex"); ok {
			a.CareReceiver.Sex = cr.enum(v.leafBytes(), "Sex", "male", "female")
		}
		cr.end()
	}
	if cov, ok := s.opt(c, "Coverage"); ok {
		var cv Coverage
		cv.Communicated = cov.reqDate(c, "Communicated")
		if per, ok := cov.req(c, "Period"); ok {
			cv.Begin = per.reqDate(c, "BeginDate")
			cv.End = per.reqDate(c, "EndDate")
			per.end()
		}
		if ent, ok := cov.req(c, "Entitlement"); ok {
			cv.Entitlement.Code1 = ent.length(ent.text(c, "Code1"), "Code1", 3, 3)
			cv.Entitlement.Code2 = ent.length(ent.text(c, "Code2"), "Code2", 3, 3)
			cv.Entitlement.ThirdPartyPayerRegime = ThirdPartyPayerRegime(ent.oneOf(c, "ThirdPartyPayerRegime",
				string(RegimeNone), string(RegimeStandard), string(RegimeElevated)))
			ent.end()
		}
		cov.end()
		a.Coverages = []Coverage{cv}
	}
	if ver, ok := s.opt(c, "Verification"); ok {
		if v, ok := ver.optText(c, "PaymentApproval"); ok {
			a.PaymentApproval = ver.length(v, "PaymentApproval", 32, 32)
		}
		if v, ok := ver.optText(c, "PaymentApprovalSeed"); ok {
			a.PaymentApprovalSeed = ver.length(v, "PaymentApprovalSeed", 10, 10)
		}
		a.InvoicingOfficeCheckDigit = ver.length(ver.text(c, "InvoicingOfficeCheckDigit"), "InvoicingOfficeCheckDigit", 2, 2)
		ver.end()
	}
	s.end()
}
