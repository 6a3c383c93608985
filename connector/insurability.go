package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Insurability v2 (pharmacists), docs/wire/insurability.md.
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

// ReturnCode is ReturnInfo/ReturnCode of a v2 answer; Major "0" is success.
type ReturnCode struct {
	Major, Minor, Detail string
}

// CareReceiver is the patient as the insurer knows them.
type CareReceiver struct {
	SSIN         string
	RegNrWithMut string
	Mutuality    string
	FirstName    string
	LastName     string
	Birthday     time.Time
	Deceased     bool
	DeceasedDate time.Time // zero when unknown or not deceased
	Sex          string
}

// Entitlement is the insurer's coverage codes and third-party payer regime.
type Entitlement struct {
	Code1, Code2 string
	// ThirdPartyPayerRegime is none, standard or elevated: it decides what the patient pays.
	ThirdPartyPayerRegime string
}

// Coverage is one insured period.
type Coverage struct {
	Begin, End  time.Time // End zero = open
	Entitlement Entitlement
}

// InsurabilityAnswer is the content of a GetInsurabilityForPharmacistResponse.
type InsurabilityAnswer struct {
	ReturnCode      ReturnCode
	CareReceiver    CareReceiver
	Coverages       []Coverage
	PaymentApproval string
}

// Insured reports whether one of the answer's coverages includes day d.
func (a InsurabilityAnswer) Insured(d time.Time) bool {
	if a.ReturnCode.Major != "0" {
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
	IsTest  bool
	Package PackageLicense
	NIHII   string
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
		if r.RegNrWithMut == "" || !isDigits(r.Mutuality, 3) || len(r.RegNrWithMut) > 32 {
			return r, &RequestError{Field: "RegNrWithMut/Mutuality", Reason: "a registration number and a 3-digit mutuality are needed"}
		}
	default:
		return r, &RequestError{Field: "SSIN", Reason: "give an SSIN or RegNrWithMut with Mutuality"}
	}
	if r.Date.IsZero() {
		r.Date = now
	}
	r.Date = civil(r.Date)
	switch r.RequestType {
	case "":
		r.RequestType = RequestInformation
	case RequestInformation, RequestInvoicing:
	default:
		return r, &RequestError{Field: "RequestType", Reason: "must be information or invoicing"}
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

// addCommonInput writes CommonInput (Request/IsTest, Origin/Package/License, Origin/CareProvider).
func addCommonInput(parent *etree.Element, p string, o requestOrigin) {
	ci := add(parent, p+"CommonInput", "")
	add(add(ci, p+"Request", ""), p+"IsTest", fmt.Sprint(o.IsTest))
	origin := add(ci, p+"Origin", "")
	pkg := add(origin, p+"Package", "")
	lic := add(pkg, p+"License", "")
	add(lic, p+"Username", o.Package.Username)
	add(lic, p+"Password", o.Package.Password)
	if o.Package.Name != "" {
		add(pkg, p+"Name", o.Package.Name)
	}
	if o.NIHII != "" {
		add(add(origin, p+"CareProvider", ""), p+"Nihii", o.NIHII)
	}
}

// buildInsurabilityRequest builds the GetInsurabilityForPharmacistRequest body element.
// req must be normalized.
func buildInsurabilityRequest(req InsurabilityRequest, o requestOrigin, reference string) *etree.Element {
	root := etree.NewElement("ins:GetInsurabilityForPharmacistRequest")
	root.CreateAttr("xmlns:ins", NSInsurabilityProtocol)
	root.CreateAttr("xmlns:core", NSInsurabilityCore)
	const p = "core:"
	addCommonInput(root, p, o)
	rci := add(root, p+"RecordCommonInput", "")
	add(rci, p+"Reference", reference)
	if req.UserReference != "" {
		add(rci, p+"UserReference", req.UserReference)
	}
	ir := add(root, p+"InsurabilityRequest", "")
	add(ir, p+"Date", req.Date.Format(dateLayout))
	add(ir, p+"RequestType", req.RequestType)
	cr := add(ir, p+"CareReceiver", "")
	if req.SSIN != "" {
		add(cr, p+"Ssin", req.SSIN)
	} else {
		add(cr, p+"RegNrWithMut", req.RegNrWithMut)
		add(cr, p+"Mutuality", req.Mutuality)
	}
	return root
}

// parseInsurabilityResponse reads a GetInsurabilityForPharmacistResponse. A ReturnCode Major
// other than 0 is returned as the answer with a *BusinessError; a response that is not this
// answer is a *ResponseError.
func parseInsurabilityResponse(el *etree.Element) (InsurabilityAnswer, error) {
	var a InsurabilityAnswer
	bad := func(reason string) (InsurabilityAnswer, error) {
		return InsurabilityAnswer{}, &ResponseError{Service: ServiceInsurability, Reason: reason}
	}
	if el == nil || el.Tag != "GetInsurabilityForPharmacistResponse" {
		return bad("not a GetInsurabilityForPharmacistResponse")
	}
	rc := find(el, "ReturnInfo", "ReturnCode")
	if rc == nil {
		return bad("no ReturnInfo/ReturnCode")
	}
	a.ReturnCode = ReturnCode{Major: textAt(rc, "Major"), Minor: textAt(rc, "Minor"), Detail: textAt(rc, "Detail")}
	if child(rc, "Major") == nil {
		// ReturnCode may also carry Major/Minor as attributes.
		a.ReturnCode.Major = strings.TrimSpace(rc.SelectAttrValue("Major", ""))
		a.ReturnCode.Minor = strings.TrimSpace(rc.SelectAttrValue("Minor", ""))
	}
	if a.ReturnCode.Major == "" {
		return bad("ReturnCode without Major")
	}
	if a.ReturnCode.Major != "0" {
		return a, &BusinessError{Service: ServiceInsurability, Code: a.ReturnCode.Major, Minor: a.ReturnCode.Minor, Message: a.ReturnCode.Detail}
	}
	resp := child(el, "InsurabilityResponse")
	if resp == nil {
		return bad("no InsurabilityResponse")
	}
	var err error
	cr := child(resp, "CareReceiver")
	a.CareReceiver = CareReceiver{
		SSIN:         textAt(cr, "Ssin"),
		RegNrWithMut: textAt(cr, "RegNrWithMut"),
		Mutuality:    textAt(cr, "Mutuality"),
		FirstName:    textAt(cr, "FirstName"),
		LastName:     textAt(cr, "LastName"),
		Sex:          textAt(cr, "Sex"),
	}
	if a.CareReceiver.Birthday, err = parseDate(textAt(cr, "Birthday")); err != nil {
		return bad("CareReceiver/Birthday is not a date")
	}
	switch d := textAt(cr, "Deceased"); d {
	case "", "false", "0":
	case "true", "1":
		a.CareReceiver.Deceased = true
	default:
		if a.CareReceiver.DeceasedDate, err = parseDate(d); err != nil {
			return bad("CareReceiver/Deceased is neither a boolean nor a date")
		}
		a.CareReceiver.Deceased = true
	}
	for _, cov := range childrenNamed(resp, "Coverage") {
		var c Coverage
		if c.Begin, err = parseDate(textAt(cov, "Period", "BeginDate")); err != nil {
			return bad("Coverage/Period/BeginDate is not a date")
		}
		if c.End, err = parseDate(textAt(cov, "Period", "EndDate")); err != nil {
			return bad("Coverage/Period/EndDate is not a date")
		}
		ent := child(cov, "Entitlement")
		c.Entitlement = Entitlement{
			Code1:                 textAt(ent, "Code1"),
			Code2:                 textAt(ent, "Code2"),
			ThirdPartyPayerRegime: textAt(ent, "ThirdPartyPayerRegime"),
		}
		a.Coverages = append(a.Coverages, c)
	}
	a.PaymentApproval = textAt(resp, "Verification", "PaymentApproval")
	if a.PaymentApproval == "" {
		a.PaymentApproval = textAt(el, "Verification", "PaymentApproval")
	}
	return a, nil
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
	req, err := req.normalize(c.clock.Now())
	if err != nil {
		return InsurabilityResult{}, err
	}
	out, err := run(c, ctx, priority[InsurabilityAnswer, InsurabilityRequest]{
		service:  ServiceInsurability,
		function: functionInsurability,
		policy:   c.cfg.Policies.Insurability,
		key:      req.cacheKey(),
		request:  req,
		live:     func(ctx context.Context) (InsurabilityAnswer, string, error) { return c.liveInsurability(ctx, req) },
	})
	out.Answer.Coverages = slices.Clone(out.Answer.Coverages) // the stored answer stays the store's
	return InsurabilityResult{Answer: out.Answer, Source: out.Source, AsOf: out.AsOf, Degraded: out.Degraded, Endpoint: out.Endpoint}, err
}

// liveInsurability asks the platform.
func (c *Client) liveInsurability(ctx context.Context, req InsurabilityRequest) (InsurabilityAnswer, string, error) {
	return liveCall(c, ctx, ServiceInsurability, ActionInsurability, buildInsurabilityRequest(req, c.origin, newReference()), true, parseInsurabilityResponse)
}
