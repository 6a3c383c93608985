package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Insurability v2 (pharmacists), docs/wire/insurability.md; the wire format is in
// insurability_wire.go.
const (
	NSInsurabilityProtocol = "urn:be:fgov:ehealth:insurability:protocol:v2"
	NSInsurabilityCore     = "urn:be:fgov:ehealth:insurability:core:v2"
	ActionInsurability     = "urn:be:fgov:ehealth:insurability:protocol:v2:GetInsurabilityForPharmacist"
	// ServiceInsurability is the short service-list name of Insurability v2.
	ServiceInsurability = "insurability:v2"
)

// Request types of an insurability check.
const (
	RequestInformation = "information"
	RequestInvoicing   = "invoicing"
)

// InsurabilityRequest asks whether a patient is insured on a date. Give either SSIN, or
// RegNrWithMut with Mutuality.
type InsurabilityRequest struct {
	SSIN         string    // 11 digits (separators allowed); validated before any call
	RegNrWithMut string    // registration number at the mutuality, when there is no SSIN
	Mutuality    string    // 3 digits, with RegNrWithMut
	Date         time.Time // zero = today by the client's clock
	RequestType  string    // "" = RequestInformation
	// UserReference is the vendor's own reference, echoed in RecordCommonInput; never logged.
	UserReference string
}

// ReturnCode is ReturnInfo/ReturnCode of a v2 answer: Major and Minor of two characters,
// Detail of five. Major "00" is success.
type ReturnCode struct {
	Major, Minor, Detail string
}

// OK reports whether the code is a success (Major "00").
func (rc ReturnCode) OK() bool { return rc.Major == "00" }

// CareReceiver is the patient as the insurer knows them.
type CareReceiver struct {
	SSIN         string
	RegNrWithMut string
	Mutuality    string
	FirstName    string
	LastName     string
	Birthday     time.Time
	// Deceased is the date of death; zero when the insurer gives none (alive or unknown).
	Deceased time.Time
	Sex      string // "male", "female" or ""
}

// IsDeceased reports whether the insurer gave a date of death.
func (c CareReceiver) IsDeceased() bool { return !c.Deceased.IsZero() }

// ThirdPartyPayerRegime is the third-party payer regime of a coverage: it decides what the
// patient pays at the counter.
type ThirdPartyPayerRegime string

// The regimes the schema allows.
const (
	RegimeNone     ThirdPartyPayerRegime = "none"
	RegimeStandard ThirdPartyPayerRegime = "standard"
	RegimeElevated ThirdPartyPayerRegime = "elevated"
)

// Entitlement is the insurer's coverage codes (3 characters each) and third-party payer regime.
type Entitlement struct {
	Code1, Code2          string
	ThirdPartyPayerRegime ThirdPartyPayerRegime
}

// Coverage is one insured period.
type Coverage struct {
	Communicated time.Time // when the insurer communicated this coverage
	Begin, End   time.Time
	Entitlement  Entitlement
}

// InsurabilityAnswer is the content of a GetInsurabilityForPharmacistResponse. It holds no
// per-call reference, so two answers about the same facts are equal.
type InsurabilityAnswer struct {
	ReturnCode ReturnCode
	MultipleIO []string  // ReturnInfo/MultipleIO: the insurers involved when more than one
	Requested  time.Time // the date the answer is about
	// CareReceiver is the patient as the insurer knows them.
	CareReceiver CareReceiver
	// Coverages holds the answer's Coverage: at most one in Insurability v2 (none = not
	// insured on the date asked).
	Coverages []Coverage
	// PaymentApproval (32 characters), PaymentApprovalSeed (10) and InvoicingOfficeCheckDigit
	// (2) are the answer's Verification: the payment guarantee kept for invoicing.
	PaymentApproval           string
	PaymentApprovalSeed       string
	InvoicingOfficeCheckDigit string
}

// Insured reports whether one of the answer's coverages includes day d.
func (a InsurabilityAnswer) Insured(d time.Time) bool {
	if !a.ReturnCode.OK() {
		return false
	}
	day := civil(d)
	for _, c := range a.Coverages {
		if !c.Begin.IsZero() && day.Before(c.Begin) {
			continue
		}
		if !c.End.IsZero() && day.After(c.End) {
			continue
		}
		return true
	}
	return false
}

// Source says where an answer comes from.
type Source int

// Sources of an answer. The zero value is SourceNone, so that the result of a failed call
// never reads "live".
const (
	SourceNone  Source = iota // no answer: the call failed (see its error)
	SourceLive                // the platform answered this call
	SourceCache               // the local store answered
)

// String returns "none", "live" or "cache".
func (s Source) String() string {
	switch s {
	case SourceNone:
		return "none"
	case SourceLive:
		return "live"
	case SourceCache:
		return "cache"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// InsurabilityResult is an answer and where it came from.
type InsurabilityResult struct {
	Answer InsurabilityAnswer
	Source Source
	// AsOf is when the platform gave this answer: now for a live answer, the time of the
	// original live call for a cached one.
	AsOf time.Time
	// Degraded is true when the platform could not be used (fallback mode or every endpoint
	// failed): show "emergency mode" to the pharmacist.
	Degraded bool
	// Endpoint is the URL that answered live ("" from the cache).
	Endpoint string
}

// requestOrigin is what CommonInput says about the caller.
type requestOrigin struct {
	IsTest      bool
	Package     PackageLicense
	NIHII       string // the pharmacy's or doctor's NIHII (Identity.NIHII)
	HolderNIHII string // the pharmacy holder's own NIHII (Identity.HolderNIHII)
	SSIN        string // the certificate holder's SSIN
	Preset      Preset
}

func civil(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// normalize validates req and fills its defaults; the error never names the patient.
func (r InsurabilityRequest) normalize(now time.Time) (InsurabilityRequest, error) {
	switch {
	case r.SSIN != "":
		n, err := NormalizeSSIN(r.SSIN)
		if err != nil {
			return r, err
		}
		r.SSIN = n
		r.RegNrWithMut, r.Mutuality = "", ""
	case r.RegNrWithMut != "" || r.Mutuality != "":
		if r.RegNrWithMut == "" || !isDigits(r.Mutuality, 3) || len(r.RegNrWithMut) > 13 {
			return r, &RequestError{Field: "RegNrWithMut/Mutuality", Reason: "a registration number of at most 13 characters and a 3-digit mutuality are needed"}
		}
	default:
		return r, &RequestError{Field: "SSIN", Reason: "give an SSIN or RegNrWithMut with Mutuality"}
	}
	if r.Date.IsZero() {
		r.Date = now
	}
	r.Date = civil(r.Date)
	switch {
	case r.RequestType == "":
		r.RequestType = RequestInformation
	case r.RequestType == RequestInformation, r.RequestType == RequestInvoicing:
	case len(r.RequestType) == 1 && isAlnum(r.RequestType[0]):
		// A one-character Insurability v2 code given as is (see insurabilityRequestCodes).
	default:
		return r, &RequestError{Field: "RequestType", Reason: "must be information, invoicing or a one-character code"}
	}
	if len([]rune(r.UserReference)) > 25 {
		return r, &RequestError{Field: "UserReference", Reason: "longer than 25 characters"}
	}
	return r, nil
}

// ErrRequest is the sentinel of a request the caller built wrongly.
var ErrRequest = errors.New("connector: invalid request")

// RequestError names the request field that is wrong.
type RequestError struct {
	Field, Reason string
}

// Error names the field and what is wrong with it.
func (e *RequestError) Error() string {
	return "connector: invalid request: " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrRequest.
func (e *RequestError) Is(target error) bool { return target == ErrRequest }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cacheKey is the request's key in the local store: one answer per patient and request
// type, whatever the date asked (the platform's 30-day rule is about the patient).
func (r InsurabilityRequest) cacheKey() string {
	if r.SSIN != "" {
		return "v2\x1fssin\x1f" + r.SSIN + "\x1f" + r.RequestType
	}
	return "v2\x1fmut\x1f" + r.Mutuality + "\x1f" + r.RegNrWithMut + "\x1f" + r.RequestType
}

// Insurability asks Insurability v2 (pharmacists) whether a patient is insured. The SSIN is
// validated first (ErrInvalidSSIN). A live answer is stored; when the platform cannot answer
// (every endpoint failed, no token, or the service is in fallback mode) the last answer for
// the patient, up to Policies.Insurability.MaxAge old (30 days), is returned with
// Source=SourceCache, its AsOf and Degraded=true. A business answer (ReturnCode Major other
// than 0, such as an unknown patient) is returned with a *BusinessError. When neither the
// platform nor the store can answer, the error is a *FallbackError.
func (c *Client) Insurability(ctx context.Context, req InsurabilityRequest) (InsurabilityResult, error) {
	now := c.clock.Now()
	req, err := req.normalize(now)
	if err != nil {
		return InsurabilityResult{}, err
	}
	out, err := run(c, ctx, priority[InsurabilityAnswer, InsurabilityRequest]{
		service:  ServiceInsurability,
		function: functionInsurability,
		policy:   c.cfg.Policies.Insurability,
		key:      req.cacheKey(),
		request:  req,
		live:     (*Client).liveInsurability,
		now:      now,
		encode:   appendStoredInsurability,
	})
	out.Answer.Coverages = slices.Clone(out.Answer.Coverages) // the stored answer stays the store's
	out.Answer.MultipleIO = slices.Clone(out.Answer.MultipleIO)
	return InsurabilityResult{Answer: out.Answer, Source: out.Source, AsOf: out.AsOf, Degraded: out.Degraded, Endpoint: out.Endpoint}, err
}

// liveInsurability asks the platform: the request is written as canonical bytes and the
// answer read from its bytes, with no tree on either side.
func (c *Client) liveInsurability(ctx context.Context, req InsurabilityRequest) (InsurabilityAnswer, string, error) {
	ref := c.refs.next()
	payload := appendInsurabilityRequest(make([]byte, 0, 2048), req, c.origin, ref)
	return liveExchange(c, ctx, ServiceInsurability, ActionInsurability, request{payload: payload, rawAnswer: true}, true,
		func(r reply) (InsurabilityAnswer, error) { return parseInsurabilityBody(r.body, r.scope, ref) })
}
