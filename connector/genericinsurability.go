package connector

import (
	"context"
	"slices"
	"time"

	"github.com/beevik/etree"
)

// GenericInsurability v1 (care providers other than pharmacists), docs/wire/insurability.md.
const (
	NSGenericInsurabilityProtocol = "urn:be:fgov:ehealth:genericinsurability:protocol:v1"
	NSGenericInsurabilityCore     = "urn:be:fgov:ehealth:genericinsurability:core:v1"
	ActionGenericInsurability     = "urn:be:fgov:ehealth:genericinsurability:protocol:v1:GetInsurability"
	// ServiceGenericInsurability is the short service-list name of GenericInsurability v1.
	ServiceGenericInsurability = "genericinsurability:v1"
)

// Contact types of a GenericInsurability request.
const (
	ContactAmbulatoryCare  = "ambulatory_care"
	ContactHospitalizedEle = "hospitalized_elsewhere"
	ContactOther           = "other"
)

// GenericInsurabilityRequest asks for a patient's insurability over a period. Give either SSIN,
// or RegNrWithMut with Mutuality.
type GenericInsurabilityRequest struct {
	SSIN         string
	RegNrWithMut string
	Mutuality    string
	RequestType  string    // "" = RequestInformation
	PeriodStart  time.Time // zero = today by the client's clock
	PeriodEnd    time.Time // zero = PeriodStart
	ContactType  string    // "" = ContactAmbulatoryCare
}

// InsurabilityItem is one insured period of a GenericInsurability answer.
type InsurabilityItem struct {
	RegNrWithMut    string
	Mutuality       string
	Begin, End      time.Time
	CT1, CT2        string
	PaymentApproval string
}

// GenericInsurabilityAnswer is the content of a successful GetInsurabilityResponse.
type GenericInsurabilityAnswer struct {
	CareReceiver CareReceiver
	// Payment is InsurabilityResponseDetail/Payment/ByIO ("true": the insurer pays the
	// provider directly), or Payment's own text when it has no such child.
	Payment string
	Items   []InsurabilityItem
}

// Insured reports whether one of the answer's items includes day d.
func (a GenericInsurabilityAnswer) Insured(d time.Time) bool {
	day := civil(d)
	for _, it := range a.Items {
		if !it.Begin.IsZero() && day.Before(it.Begin) {
			continue
		}
		if !it.End.IsZero() && day.After(it.End) {
			continue
		}
		return true
	}
	return false
}

// GenericInsurabilityResult is an answer and where it came from (see InsurabilityResult).
type GenericInsurabilityResult struct {
	Answer   GenericInsurabilityAnswer
	Source   Source
	AsOf     time.Time
	Degraded bool
	Endpoint string
}

func (r GenericInsurabilityRequest) normalize(now time.Time) (GenericInsurabilityRequest, error) {
	base, err := InsurabilityRequest{SSIN: r.SSIN, RegNrWithMut: r.RegNrWithMut, Mutuality: r.Mutuality,
		Date: r.PeriodStart, RequestType: r.RequestType}.normalize(now)
	if err != nil {
		return r, err
	}
	r.SSIN, r.RegNrWithMut, r.Mutuality, r.RequestType = base.SSIN, base.RegNrWithMut, base.Mutuality, base.RequestType
	r.PeriodStart = base.Date
	if r.PeriodEnd.IsZero() {
		r.PeriodEnd = r.PeriodStart
	}
	r.PeriodEnd = civil(r.PeriodEnd)
	if r.PeriodEnd.Before(r.PeriodStart) {
		return r, &RequestError{Field: "PeriodEnd", Reason: "before PeriodStart"}
	}
	switch r.ContactType {
	case "":
		r.ContactType = ContactAmbulatoryCare
	case ContactAmbulatoryCare, ContactHospitalizedEle, ContactOther:
	default:
		return r, &RequestError{Field: "ContactType", Reason: "must be ambulatory_care, hospitalized_elsewhere or other"}
	}
	return r, nil
}

// buildGenericInsurabilityRequest builds the GetInsurabilityRequest body element; req must be normalized.
func buildGenericInsurabilityRequest(req GenericInsurabilityRequest, o requestOrigin, reference string) *etree.Element {
	root := etree.NewElement("gi:GetInsurabilityRequest")
	root.CreateAttr("xmlns:gi", NSGenericInsurabilityProtocol)
	root.CreateAttr("xmlns:core", NSGenericInsurabilityCore)
	const p = "core:"
	addCommonInput(root, p, o)
	add(add(root, p+"RecordCommonInput", ""), p+"InputReference", reference)
	r := add(root, p+"Request", "")
	id := add(r, p+"CareReceiverId", "")
	if req.SSIN != "" {
		add(id, p+"Inss", req.SSIN)
	} else {
		add(id, p+"RegNrWithMut", req.RegNrWithMut)
		add(id, p+"Mutuality", req.Mutuality)
	}
	d := add(r, p+"InsurabilityRequestDetail", "")
	add(d, p+"InsurabilityRequestType", req.RequestType)
	per := add(d, p+"Period", "")
	add(per, p+"PeriodStart", req.PeriodStart.Format(dateLayout))
	add(per, p+"PeriodEnd", req.PeriodEnd.Format(dateLayout))
	add(d, p+"InsurabilityContactType", req.ContactType)
	return root
}

// parseGenericInsurabilityResponse reads a GetInsurabilityResponse. A MessageFault is a
// *BusinessError; a response that is not this answer is a *ResponseError.
func parseGenericInsurabilityResponse(el *etree.Element) (GenericInsurabilityAnswer, error) {
	var a GenericInsurabilityAnswer
	bad := func(reason string) (GenericInsurabilityAnswer, error) {
		return GenericInsurabilityAnswer{}, &ResponseError{Service: ServiceGenericInsurability, Reason: reason}
	}
	if el == nil || el.Tag != "GetInsurabilityResponse" {
		return bad("not a GetInsurabilityResponse")
	}
	resp := child(el, "Response")
	if resp == nil {
		return bad("no Response")
	}
	if mf := child(resp, "MessageFault"); mf != nil {
		code := textAt(mf, "FaultCode")
		if code == "" {
			return bad("MessageFault without FaultCode")
		}
		msg := textAt(mf, "Details", "Detail")
		if msg == "" {
			msg = textAt(mf, "Message")
		}
		return a, &BusinessError{Service: ServiceGenericInsurability, Code: code, Message: msg}
	}
	detail := child(resp, "CareReceiverDetail")
	rd := child(resp, "InsurabilityResponseDetail")
	if detail == nil && rd == nil {
		return bad("neither MessageFault nor CareReceiverDetail")
	}
	var err error
	a.CareReceiver = CareReceiver{
		SSIN:         textAt(resp, "CareReceiverId", "Inss"),
		RegNrWithMut: textAt(detail, "RegNrWithMut"),
		Mutuality:    textAt(detail, "Mutuality"),
		FirstName:    textAt(detail, "FirstName"),
		LastName:     textAt(detail, "LastName"),
		Sex:          textAt(detail, "Sex"),
		Deceased:     textAt(detail, "Deceased") == "true",
	}
	if a.CareReceiver.SSIN == "" {
		a.CareReceiver.SSIN = textAt(detail, "Inss")
	}
	if a.CareReceiver.Birthday, err = parseDate(textAt(detail, "BirthDate")); err != nil {
		return bad("CareReceiverDetail/BirthDate is not a date")
	}
	if a.CareReceiver.Birthday.IsZero() {
		if a.CareReceiver.Birthday, err = parseDate(textAt(detail, "Birthday")); err != nil {
			return bad("CareReceiverDetail/Birthday is not a date")
		}
	}
	if pay := child(rd, "Payment"); pay != nil {
		switch {
		case child(pay, "ByIO") != nil:
			a.Payment = textAt(pay, "ByIO")
		case child(pay, "PaymentByIo") != nil:
			a.Payment = textAt(pay, "PaymentByIo")
		default:
			a.Payment = textAt(rd, "Payment")
		}
	}
	for _, it := range childrenNamed(child(rd, "InsurabilityList"), "InsurabilityItem") {
		item := InsurabilityItem{
			RegNrWithMut:    textAt(it, "RegNrWithMut"),
			Mutuality:       textAt(it, "Mutuality"),
			CT1:             textAt(it, "CT1"),
			CT2:             textAt(it, "CT2"),
			PaymentApproval: textAt(it, "PaymentApproval"),
		}
		if item.Begin, err = parseDate(textAt(it, "Period", "PeriodStart")); err != nil {
			return bad("InsurabilityItem/Period/PeriodStart is not a date")
		}
		if item.End, err = parseDate(textAt(it, "Period", "PeriodEnd")); err != nil {
			return bad("InsurabilityItem/Period/PeriodEnd is not a date")
		}
		a.Items = append(a.Items, item)
	}
	if len(a.Items) > 0 && a.CareReceiver.RegNrWithMut == "" {
		a.CareReceiver.RegNrWithMut, a.CareReceiver.Mutuality = a.Items[0].RegNrWithMut, a.Items[0].Mutuality
	}
	return a, nil
}

func (r GenericInsurabilityRequest) cacheKey() string {
	id := "ssin\x1f" + r.SSIN
	if r.SSIN == "" {
		id = "mut\x1f" + r.Mutuality + "\x1f" + r.RegNrWithMut
	}
	return "g1\x1f" + id + "\x1f" + r.RequestType + "\x1f" + r.ContactType
}

// GenericInsurability asks GenericInsurability v1 (care providers other than pharmacists)
// for a patient's insurability, with the same validation, storage and fallback as
// Insurability (Policies.GenericInsurability). A MessageFault is a *BusinessError.
func (c *Client) GenericInsurability(ctx context.Context, req GenericInsurabilityRequest) (GenericInsurabilityResult, error) {
	req, err := req.normalize(c.clock.Now())
	if err != nil {
		return GenericInsurabilityResult{}, err
	}
	out, err := run(c, ctx, priority[GenericInsurabilityAnswer, GenericInsurabilityRequest]{
		service:  ServiceGenericInsurability,
		function: functionGenericInsurability,
		policy:   c.cfg.Policies.GenericInsurability,
		key:      req.cacheKey(),
		request:  req,
		live: func(ctx context.Context) (GenericInsurabilityAnswer, string, error) {
			return c.liveGenericInsurability(ctx, req)
		},
	})
	out.Answer.Items = slices.Clone(out.Answer.Items) // the stored answer stays the store's
	return GenericInsurabilityResult{Answer: out.Answer, Source: out.Source, AsOf: out.AsOf, Degraded: out.Degraded, Endpoint: out.Endpoint}, err
}

func (c *Client) liveGenericInsurability(ctx context.Context, req GenericInsurabilityRequest) (GenericInsurabilityAnswer, string, error) {
	body := buildGenericInsurabilityRequest(req, c.origin, newReference())
	return liveCall(c, ctx, ServiceGenericInsurability, ActionGenericInsurability, body, true, parseGenericInsurabilityResponse)
}
