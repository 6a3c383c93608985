package connector

import (
	"context"
	"slices"
	"time"
)

// GenericInsurability v1 (care providers other than pharmacists), docs/wire/insurability.md;
// the wire format is in genericinsurability_wire.go.
const (
	NSGenericInsurabilityProtocol = "urn:be:fgov:ehealth:genericinsurability:protocol:v1"
	NSGenericInsurabilityCore     = "urn:be:fgov:ehealth:genericinsurability:core:v1"
	ActionGenericInsurability     = "urn:be:fgov:ehealth:genericinsurability:protocol:v1:GetInsurability"
	// ServiceGenericInsurability is the short service-list name of GenericInsurability v1.
	ServiceGenericInsurability = "genericinsurability:v1"
)

// Contact types of a GenericInsurability request.
const (
	ContactAmbulatoryCare     = "ambulatory_care"
	ContactHospitalizedForDay = "hospitalized_for_day"
	ContactHospitalizedEle    = "hospitalized_elsewhere"
	ContactOther              = "other"
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
	RegNrWithMut     string
	Mutuality        string
	Begin, End       time.Time // zero when the insurer gives none
	CT1, CT2         string    // the entitlement codes, 3 digits each
	PaymentApproval  string
	InsurabilityDate time.Time // when the insurer established this item
}

// Payment is InsurabilityResponseDetail/Payment: whether the third-party payer regime
// applies (the insurer pays the care provider directly).
type Payment struct {
	ByIO                  bool     // PaymentByIo: third-party payment by the insurer
	MaxInvoiced           []string // years (xs:gYear) the maximum billing applies, at most 3
	SpecialSocialCategory bool
}

// MedicalHouse is the patient's subscription to a medical house (forfait).
type MedicalHouse struct {
	Begin, End           time.Time // End zero = open
	Nurse, Medical, Kine bool
}

// Hospitalization is the patient's current stay in a hospital.
type Hospitalization struct {
	Hospital         string // 12 digits
	AdmissionDate    time.Time
	AdmissionService string // 3 digits
}

// GenericInsurabilityAnswer is the content of a successful GetInsurabilityResponse. It holds
// no per-call reference, so two answers about the same facts are equal.
type GenericInsurabilityAnswer struct {
	CareReceiver CareReceiver
	// Event is GeneralSituation's event ("changeDuring", "multiple", "closedBefore",
	// "startLater") or "".
	Event        string
	Payment      Payment
	Hospitalized Hospitalization // zero (Hospital "") when not hospitalized
	MedicalHouse MedicalHouse    // zero (Begin zero) when not subscribed
	Items        []InsurabilityItem
	// Truncated: the insurer had more items than the answer holds (at most 5).
	Truncated bool
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
	case ContactAmbulatoryCare, ContactHospitalizedForDay, ContactHospitalizedEle, ContactOther:
	default:
		return r, &RequestError{Field: "ContactType", Reason: "must be ambulatory_care, hospitalized_for_day, hospitalized_elsewhere or other"}
	}
	if len(r.RequestType) == 1 {
		return r, &RequestError{Field: "RequestType", Reason: "must be information or invoicing"}
	}
	return r, nil
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
	now := c.clock.Now()
	req, err := req.normalize(now)
	if err != nil {
		return GenericInsurabilityResult{}, err
	}
	out, err := run(c, ctx, priority[GenericInsurabilityAnswer, GenericInsurabilityRequest]{
		service:  ServiceGenericInsurability,
		function: functionGenericInsurability,
		policy:   c.cfg.Policies.GenericInsurability,
		key:      req.cacheKey(),
		request:  req,
		live:     (*Client).liveGenericInsurability,
		now:      now,
	})
	out.Answer.Items = slices.Clone(out.Answer.Items) // the stored answer stays the store's
	out.Answer.Payment.MaxInvoiced = slices.Clone(out.Answer.Payment.MaxInvoiced)
	return GenericInsurabilityResult{Answer: out.Answer, Source: out.Source, AsOf: out.AsOf, Degraded: out.Degraded, Endpoint: out.Endpoint}, err
}

// liveGenericInsurability asks the platform: the request is written as canonical bytes and
// signed as written; the answer is read from soap's tree.
func (c *Client) liveGenericInsurability(ctx context.Context, req GenericInsurabilityRequest) (GenericInsurabilityAnswer, string, error) {
	ref := c.refs.next()
	payload := appendGenericInsurabilityRequest(make([]byte, 0, 2048), req, c.origin, ref)
	return liveExchange(c, ctx, ServiceGenericInsurability, ActionGenericInsurability, request{payload: payload}, true,
		func(r reply) (GenericInsurabilityAnswer, error) { return parseGenericInsurabilityResponse(r.el, ref) })
}
