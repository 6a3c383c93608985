package connector

import (
	"github.com/beevik/etree"
)

// The wire format of GenericInsurability v1. Two schemas exist: 1.1 (MyCareNet,
// ehealth-genins-protocol-1_1.xsd) and 1.0 (eHealth ESB, gen_ins_services_protocol-1_0.xsd,
// which the service list's eHealth endpoint serves). They differ only in values: 1.1 also
// allows the mutualities 750 and 999 and the insurer code 000. The request built here is valid
// under both for every other mutuality, and the reader accepts what either allows.

// Qualities of CareProvider/Nihii in a GenericInsurability request, as the official
// connector's middleware sends them (taktik/freehealth-connector,
// src/main/kotlin/org/taktik/freehealth/middleware/service/impl/GenInsServiceImpl.kt:
// Nihii{Quality, Value} and a PhysicalPerson with the same NIHII and the provider's SSIN).
const (
	QualityDoctor = "doctor"
	// qualityGenInsPharmacy is sent for PresetPharmacy; the official list of GenericInsurability
	// qualities has no pharmacy (pharmacists use Insurability v2), so this is ehgate's choice.
	qualityGenInsPharmacy = "pharmacy"
)

// Namespace declarations of a GenericInsurability request in canonical form (see
// declInsurabilityProtocol).
var (
	declGenInsProtocol = declare("gi", NSGenericInsurabilityProtocol)
	declGenInsCore     = declare("core", NSGenericInsurabilityCore)
)

// appendGenericInsurabilityRequest appends the GetInsurabilityRequest body element to b in
// exclusive canonical form (canonicalWriter); req must be normalized, reference is a number
// of at most 14 digits. Like the official connector it sends the reference both as
// CommonInput/InputReference and RecordCommonInput/InputReference.
func appendGenericInsurabilityRequest(b []byte, req GenericInsurabilityRequest, o requestOrigin, reference string) []byte {
	const root = "gi:GetInsurabilityRequest"
	w := canonicalWriter{b: b}
	w.start(root, declGenInsProtocol)
	w.start("gi:CommonInput", "")
	writeOriginStart(&w, declGenInsCore, o)
	if o.NIHII != "" {
		quality := QualityDoctor
		if o.Preset == PresetPharmacy {
			quality = qualityGenInsPharmacy
		}
		w.start("core:CareProvider", "")
		writeNihii(&w, quality, o.NIHII)
		if o.SSIN != "" {
			w.start("core:PhysicalPerson", "")
			writeNihii(&w, quality, o.NIHII)
			w.leaf("core:Ssin", "", o.SSIN)
			w.end("core:PhysicalPerson")
		}
		w.end("core:CareProvider")
	}
	w.end("core:Origin")
	w.leaf("core:InputReference", declGenInsCore, reference)
	w.end("gi:CommonInput")
	w.start("gi:RecordCommonInput", "")
	w.leaf("core:InputReference", declGenInsCore, reference)
	w.end("gi:RecordCommonInput")
	w.start("gi:Request", "")
	w.start("core:CareReceiverId", declGenInsCore)
	if req.SSIN != "" {
		w.leaf("core:Inss", "", req.SSIN)
	} else {
		w.leaf("core:RegNrWithMut", "", req.RegNrWithMut)
		w.leaf("core:Mutuality", "", req.Mutuality)
	}
	w.end("core:CareReceiverId")
	w.start("core:InsurabilityRequestDetail", declGenInsCore)
	w.leaf("core:InsurabilityRequestType", "", req.RequestType)
	w.start("core:Period", "")
	w.start("core:PeriodStart", "")
	w.b = req.PeriodStart.AppendFormat(w.b, dateLayout)
	w.end("core:PeriodStart")
	w.start("core:PeriodEnd", "")
	w.b = req.PeriodEnd.AppendFormat(w.b, dateLayout)
	w.end("core:PeriodEnd")
	w.end("core:Period")
	w.leaf("core:InsurabilityContactType", "", req.ContactType)
	w.end("core:InsurabilityRequestDetail")
	w.end("gi:Request")
	w.end(root)
	return w.b
}

// genInsMutualities are the insurer codes both schemas allow; 1.1 adds 750 and 999.
func validGenInsMutuality(v string) bool {
	if v == "750" || v == "999" {
		return true
	}
	return len(v) == 3 && v[0] >= '1' && v[0] <= '9' && v[0] != '7' && v[0] != '8' &&
		v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9'
}

// parseGenericInsurabilityResponse reads a GetInsurabilityResponse as the schemas define it.
// reference is the request's InputReference: an echo in RecordCommonOutput must be it. A
// MessageFault (INPUT_ERROR, NO_IO_ERROR, MULTIIO_ERROR) or a Status other than 200 is a
// *BusinessError; anything the schema does not allow is a *ResponseError naming the element.
func parseGenericInsurabilityResponse(el *etree.Element, reference string) (GenericInsurabilityAnswer, error) {
	const p, c = NSGenericInsurabilityProtocol, NSGenericInsurabilityCore
	r := &answerReader{service: ServiceGenericInsurability}
	var a GenericInsurabilityAnswer
	var fault *BusinessError
	s := r.root(el, p, "GetInsurabilityResponse")
	code, msg := readStatus(s, nsNone)
	if co := s.req(p, "CommonOutput"); co != nil {
		cs := r.seq(co, s.path+"/CommonOutput")
		for _, name := range []string{"InputReference", "NIPReference", "OutputReference"} {
			if v, ok := cs.optText(c, name); ok {
				cs.length(v, name, 0, 14)
			}
		}
		cs.end()
	}
	if rco := s.req(p, "RecordCommonOutput"); rco != nil {
		rs := r.seq(rco, s.path+"/RecordCommonOutput")
		if v, ok := rs.optText(c, "InputReference"); ok {
			rs.digits(v, "InputReference", 1, 14)
			rs.check(reference == "" || trimZeros(v) == trimZeros(reference), "InputReference", "does not echo the request's InputReference")
		}
		if v, ok := rs.optText(c, "OutputReference"); ok {
			rs.digits(v, "OutputReference", 1, 14)
		}
		rs.end()
	}
	if resp := s.req(p, "Response"); resp != nil {
		fault = readGenInsResponse(r, resp, s.path+"/Response", &a)
	}
	s.end()
	if r.failed() {
		return GenericInsurabilityAnswer{}, r.err
	}
	if code != "200" {
		return GenericInsurabilityAnswer{}, &BusinessError{Service: ServiceGenericInsurability, Code: truncateText(code, 16), Message: truncateText(msg, 256)}
	}
	if fault != nil {
		return GenericInsurabilityAnswer{}, fault
	}
	return a, nil
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// readGenInsResponse reads SingleInsurabilityResponseType: either CareReceiverId with an
// optional MessageFault, or CareReceiverDetail with InsurabilityResponseDetail; then the
// InsurabilityRequestDetail echoed.
func readGenInsResponse(r *answerReader, el *etree.Element, path string, a *GenericInsurabilityAnswer) *BusinessError {
	const c = NSGenericInsurabilityCore
	s := r.seq(el, path)
	checkMessageHeader(s, el)
	var fault *BusinessError
	switch {
	case s.peek(c, "CareReceiverId"):
		ids := r.seq(s.req(c, "CareReceiverId"), path+"/CareReceiverId")
		if v, ok := ids.optText(c, "Inss"); ok {
			a.CareReceiver.SSIN = ids.digits(v, "Inss", 11, 11)
		}
		if v, ok := ids.optText(c, "RegNrWithMut"); ok {
			a.CareReceiver.RegNrWithMut = ids.length(v, "RegNrWithMut", 0, 13)
		}
		if v, ok := ids.optText(c, "Mutuality"); ok {
			ids.check(validGenInsMutuality(v), "Mutuality", "not an insurer code")
			a.CareReceiver.Mutuality = v
		}
		ids.end()
		if mf := s.opt(c, "MessageFault"); mf != nil {
			fault = readMessageFault(r, mf, path+"/MessageFault")
		}
	case s.peek(c, "CareReceiverDetail"):
		readCareReceiverDetail(r, s.req(c, "CareReceiverDetail"), path+"/CareReceiverDetail", &a.CareReceiver)
		if rd := s.req(c, "InsurabilityResponseDetail"); rd != nil {
			readGenInsResponseDetail(r, rd, path+"/InsurabilityResponseDetail", a)
		}
	default:
		s.req(c, "CareReceiverDetail") // records what is there instead
	}
	if rd := s.req(c, "InsurabilityRequestDetail"); rd != nil {
		ds := r.seq(rd, path+"/InsurabilityRequestDetail")
		ds.oneOf(ds.text(c, "InsurabilityRequestType"), "InsurabilityRequestType", RequestInformation, RequestInvoicing)
		if per := ds.req(c, "Period"); per != nil {
			ps := r.seq(per, ds.path+"/Period")
			ps.optDate(c, "PeriodStart")
			ps.optDate(c, "PeriodEnd")
			ps.end()
		}
		ds.oneOf(ds.text(c, "InsurabilityContactType"), "InsurabilityContactType",
			ContactAmbulatoryCare, ContactHospitalizedForDay, ContactHospitalizedEle, ContactOther)
		if v, ok := ds.optText(c, "InsurabilityReference"); ok {
			ds.length(v, "InsurabilityReference", 0, 25)
		}
		ds.end()
	}
	s.end()
	if len(a.Items) > 0 && a.CareReceiver.RegNrWithMut == "" {
		a.CareReceiver.RegNrWithMut, a.CareReceiver.Mutuality = a.Items[0].RegNrWithMut, a.Items[0].Mutuality
	}
	return fault
}

// checkMessageHeader checks the MessageHeader attributes a response may carry.
func checkMessageHeader(s *childSeq, el *etree.Element) {
	for _, at := range el.Attr {
		if at.Space != "" {
			continue // xmlns declarations and qualified attributes are not MessageHeader's
		}
		switch at.Key {
		case "MessageName":
			s.check(len(at.Value) >= 7 && at.Value[0] == 'M', "@MessageName", "not a message name")
		case "Version":
			s.digits(at.Value, "@Version", 2, 2)
		case "Duplicate", "TestFlag", "Synchronous":
			s.boolean(at.Value, "@"+at.Key)
		case "SenderReference", "ReceiverReference":
			s.digits(at.Value, "@"+at.Key, 1, 14)
		case "xmlns":
		default:
			s.check(false, "@"+at.Key, "attribute not allowed by the schema")
		}
	}
}

// readMessageFault reads a MessageFault into a *BusinessError: FaultCode is the code, the
// first Details/Detail/DetailCode the minor code, Message the platform's text.
func readMessageFault(r *answerReader, el *etree.Element, path string) *BusinessError {
	const c = NSGenericInsurabilityCore
	s := r.seq(el, path)
	be := &BusinessError{Service: ServiceGenericInsurability}
	be.Code = s.oneOf(s.text(c, "FaultCode"), "FaultCode", "INPUT_ERROR", "NO_IO_ERROR", "MULTIIO_ERROR")
	s.text(c, "FaultSource")
	if mio := s.opt(c, "MultiIO"); mio != nil {
		ms := r.seq(mio, path+"/MultiIO")
		for _, io := range ms.many(c, "IO", 2, 3) {
			ms.oneOf(ms.leaf(io, "IO"), "IO", "1", "2", "3", "4", "5", "6", "9")
		}
		ms.end()
	}
	be.Message = truncateText(s.text(c, "Message"), 256)
	if det := s.req(c, "Details"); det != nil {
		ds := r.seq(det, path+"/Details")
		for i, d := range ds.many(c, "Detail", 0, 256) {
			dd := r.seq(d, ds.path+"/Detail")
			code := dd.text(c, "DetailCode")
			dd.optText(c, "Location")
			dd.optText(c, "Message")
			dd.end()
			if i == 0 {
				be.Minor = truncateText(code, 16)
			}
		}
		ds.end()
	}
	s.end()
	return be
}

func readCareReceiverDetail(r *answerReader, el *etree.Element, path string, cr *CareReceiver) {
	const c = NSGenericInsurabilityCore
	s := r.seq(el, path)
	if v, ok := s.optText(c, "Inss"); ok {
		cr.SSIN = s.digits(v, "Inss", 11, 11)
	}
	cr.FirstName, _ = s.optText(c, "FirstName")
	cr.LastName, _ = s.optText(c, "LastName")
	cr.Birthday, _ = s.optDate(c, "Birthday")
	cr.Deceased, _ = s.optDate(c, "Deceased")
	if v, ok := s.optText(c, "Sex"); ok {
		cr.Sex = s.oneOf(v, "Sex", "male", "female")
	}
	s.end()
}

// maxGenInsItems is the schema's bound on InsurabilityList/InsurabilityItem.
const maxGenInsItems = 5

func readGenInsResponseDetail(r *answerReader, el *etree.Element, path string, a *GenericInsurabilityAnswer) {
	const c = NSGenericInsurabilityCore
	s := r.seq(el, path)
	if gs := s.opt(c, "GeneralSituation"); gs != nil {
		gss := r.seq(gs, path+"/GeneralSituation")
		ev := gs.SelectAttr("Event")
		gss.check(ev != nil, "@Event", "missing")
		if ev != nil {
			a.Event = gss.oneOf(ev.Value, "@Event", "changeDuring", "multiple", "closedBefore", "startLater")
		}
		for _, t := range gss.many(c, "Transfer", 0, 2) {
			ts := r.seq(t, gss.path+"/Transfer")
			dir := t.SelectAttrValue("Direction", "")
			ts.oneOf(dir, "@Direction", "toOtherIo", "fromOtherIo")
			if len(t.ChildElements()) > 0 {
				if v, ok := ts.optText(c, "InsuranceOrg"); ok {
					ts.oneOf(v, "InsuranceOrg", "000", "100", "200", "300", "400", "500", "600", "900")
				}
				ts.reqDate(c, "TransferDate")
			}
			ts.end()
		}
		gss.end()
	}
	if pay := s.req(c, "Payment"); pay != nil {
		ps := r.seq(pay, path+"/Payment")
		a.Payment.ByIO = ps.boolean(ps.text(c, "PaymentByIo"), "PaymentByIo")
		for _, y := range ps.many(c, "MaxInvoiced", 0, 3) {
			v := ps.leaf(y, "MaxInvoiced")
			ps.digits(v, "MaxInvoiced", 4, 4)
			a.Payment.MaxInvoiced = append(a.Payment.MaxInvoiced, v)
		}
		if v, ok := ps.optText(c, "SpecialSocialCategory"); ok {
			a.Payment.SpecialSocialCategory = ps.boolean(v, "SpecialSocialCategory")
		}
		ps.end()
	}
	if h := s.opt(c, "Hospitalized"); h != nil {
		hs := r.seq(h, path+"/Hospitalized")
		a.Hospitalized.Hospital = hs.digits(hs.text(c, "Hospital"), "Hospital", 12, 12)
		a.Hospitalized.AdmissionDate, _ = hs.optDate(c, "AdmissionDate")
		if v, ok := hs.optText(c, "AdmissionService"); ok {
			a.Hospitalized.AdmissionService = hs.digits(v, "AdmissionService", 3, 3)
		}
		hs.end()
	}
	if mh := s.opt(c, "MedicalHouse"); mh != nil {
		ms := r.seq(mh, path+"/MedicalHouse")
		a.MedicalHouse.Begin = ms.reqDate(c, "PeriodStart")
		a.MedicalHouse.End, _ = ms.optDate(c, "PeriodEnd")
		for _, at := range []struct {
			name string
			dst  *bool
		}{{"Nurse", &a.MedicalHouse.Nurse}, {"Medical", &a.MedicalHouse.Medical}, {"Kine", &a.MedicalHouse.Kine}} {
			if v := mh.SelectAttr(at.name); v != nil {
				*at.dst = ms.boolean(v.Value, "@"+at.name)
			}
		}
		ms.end()
	}
	if list := s.opt(c, "InsurabilityList"); list != nil {
		ls := r.seq(list, path+"/InsurabilityList")
		if v := list.SelectAttr("Truncated"); v != nil {
			a.Truncated = ls.boolean(v.Value, "@Truncated")
		}
		for _, it := range ls.many(c, "InsurabilityItem", 0, maxGenInsItems) {
			is := r.seq(it, ls.path+"/InsurabilityItem")
			var item InsurabilityItem
			if v, ok := is.optText(c, "RegNrWithMut"); ok {
				item.RegNrWithMut = is.length(v, "RegNrWithMut", 0, 13)
			}
			item.Mutuality = is.text(c, "Mutuality")
			is.check(validGenInsMutuality(item.Mutuality), "Mutuality", "not an insurer code")
			if per := is.req(c, "Period"); per != nil {
				ps := r.seq(per, is.path+"/Period")
				item.Begin, _ = ps.optDate(c, "PeriodStart")
				item.End, _ = ps.optDate(c, "PeriodEnd")
				ps.end()
			}
			if v, ok := is.optText(c, "CT1"); ok {
				item.CT1 = is.digits(v, "CT1", 3, 3)
			}
			if v, ok := is.optText(c, "CT2"); ok {
				item.CT2 = is.digits(v, "CT2", 3, 3)
			}
			item.PaymentApproval, _ = is.optText(c, "PaymentApproval")
			item.InsurabilityDate = is.reqDate(c, "InsurabilityDate")
			is.end()
			a.Items = append(a.Items, item)
		}
		ls.end()
	}
	s.end()
}
