package connector

import (
	"encoding/json"
	"errors"
	"time"
)

// appendStoredInsurability appends the JSON of a stored Insurability v2 answer, byte for byte
// what encoding/json writes for it (the store's records stay readable by json.Unmarshal, and
// older records by this client), without reflection and without an allocation per field:
// a live answer is stored on every call. Its test compares it with json.Marshal on values
// with every field set, so a field added to these types fails it until written here.
func appendStoredInsurability(b []byte, s stored[InsurabilityAnswer, InsurabilityRequest]) ([]byte, error) {
	for _, t := range [...]time.Time{s.Request.Date, s.Answer.Requested, s.Answer.CareReceiver.Birthday, s.Answer.CareReceiver.Deceased, s.AsOf} {
		if y := t.Year(); y < 0 || y > 9999 {
			return nil, errors.New("connector: a date of the answer is outside years 0-9999")
		}
	}
	for _, c := range s.Answer.Coverages {
		for _, t := range [...]time.Time{c.Communicated, c.Begin, c.End} {
			if y := t.Year(); y < 0 || y > 9999 {
				return nil, errors.New("connector: a date of the answer is outside years 0-9999")
			}
		}
	}
	q, a := s.Request, s.Answer
	b = append(b, `{"Request":{"SSIN":`...)
	b = appendJSONString(b, q.SSIN)
	b = append(b, `,"RegNrWithMut":`...)
	b = appendJSONString(b, q.RegNrWithMut)
	b = append(b, `,"Mutuality":`...)
	b = appendJSONString(b, q.Mutuality)
	b = append(b, `,"Date":`...)
	b = appendJSONTime(b, q.Date)
	b = append(b, `,"RequestType":`...)
	b = appendJSONString(b, q.RequestType)
	b = append(b, `,"UserReference":`...)
	b = appendJSONString(b, q.UserReference)
	b = append(b, `},"Answer":{"ReturnCode":{"Major":`...)
	b = appendJSONString(b, a.ReturnCode.Major)
	b = append(b, `,"Minor":`...)
	b = appendJSONString(b, a.ReturnCode.Minor)
	b = append(b, `,"Detail":`...)
	b = appendJSONString(b, a.ReturnCode.Detail)
	b = append(b, `},"MultipleIO":`...)
	if a.MultipleIO == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, io := range a.MultipleIO {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, io)
		}
		b = append(b, ']')
	}
	b = append(b, `,"Requested":`...)
	b = appendJSONTime(b, a.Requested)
	cr := a.CareReceiver
	b = append(b, `,"CareReceiver":{"SSIN":`...)
	b = appendJSONString(b, cr.SSIN)
	b = append(b, `,"RegNrWithMut":`...)
	b = appendJSONString(b, cr.RegNrWithMut)
	b = append(b, `,"Mutuality":`...)
	b = appendJSONString(b, cr.Mutuality)
	b = append(b, `,"FirstName":`...)
	b = appendJSONString(b, cr.FirstName)
	b = append(b, `,"LastName":`...)
	b = appendJSONString(b, cr.LastName)
	b = append(b, `,"Birthday":`...)
	b = appendJSONTime(b, cr.Birthday)
	b = append(b, `,"Deceased":`...)
	b = appendJSONTime(b, cr.Deceased)
	b = append(b, `,"Sex":`...)
	b = appendJSONString(b, cr.Sex)
	b = append(b, `},"Coverages":`...)
	if a.Coverages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range a.Coverages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Communicated":`...)
			b = appendJSONTime(b, c.Communicated)
			b = append(b, `,"Begin":`...)
			b = appendJSONTime(b, c.Begin)
			b = append(b, `,"End":`...)
			b = appendJSONTime(b, c.End)
			b = append(b, `,"Entitlement":{"Code1":`...)
			b = appendJSONString(b, c.Entitlement.Code1)
			b = append(b, `,"Code2":`...)
			b = appendJSONString(b, c.Entitlement.Code2)
			b = append(b, `,"ThirdPartyPayerRegime":`...)
			b = appendJSONString(b, string(c.Entitlement.ThirdPartyPayerRegime))
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	b = append(b, `,"PaymentApproval":`...)
	b = appendJSONString(b, a.PaymentApproval)
	b = append(b, `,"PaymentApprovalSeed":`...)
	b = appendJSONString(b, a.PaymentApprovalSeed)
	b = append(b, `,"InvoicingOfficeCheckDigit":`...)
	b = appendJSONString(b, a.InvoicingOfficeCheckDigit)
	b = append(b, `},"Endpoint":`...)
	b = appendJSONString(b, s.Endpoint)
	b = append(b, `,"AsOf":`...)
	b = appendJSONTime(b, s.AsOf)
	return append(b, '}'), nil
}

// appendJSONString appends s as encoding/json writes it: printable ASCII other than the
// characters it escapes is copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time.MarshalJSON writes it (RFC 3339 with nanoseconds);
// t's year is within 0..9999 (MarshalJSON refuses others).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
