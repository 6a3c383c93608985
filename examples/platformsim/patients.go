package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/ehgate/ehgate/platformtest"
)

// patientAnswer is one generated patient and what the platform's insurability services answer
// for them today, so that software in any language can be tested against the simulator.
// The population is synthetic (a pure function of -seed and -patients).
type patientAnswer struct {
	SSIN string `json:"ssin"`
	// Expected is the answer's gist: "insured" (a coverage open today), "not-insured" (known,
	// coverage ended: no Coverage in the answer) or "unknown" (a business fault: v2 ReturnCode
	// Major "1", GenericInsurability MessageFault NO_IO_ERROR).
	Expected        string `json:"expected"`
	FirstName       string `json:"firstName,omitempty"`
	LastName        string `json:"lastName,omitempty"`
	Birthday        string `json:"birthday,omitempty"` // YYYY-MM-DD
	Sex             string `json:"sex,omitempty"`
	Deceased        bool   `json:"deceased,omitempty"`
	Mutuality       string `json:"mutuality,omitempty"`
	RegNrWithMut    string `json:"regNrWithMut,omitempty"`
	Regime          string `json:"thirdPartyPayerRegime,omitempty"` // none | standard | elevated
	CT1             string `json:"ct1,omitempty"`
	CT2             string `json:"ct2,omitempty"`
	CoverageBegin   string `json:"coverageBegin,omitempty"` // YYYY-MM-DD
	CoverageEnd     string `json:"coverageEnd,omitempty"`   // YYYY-MM-DD, inclusive
	PaymentApproval string `json:"paymentApproval,omitempty"`
}

func patientAnswers(p *platformtest.Platform, today time.Time) []patientAnswer {
	const day = "2006-01-02"
	var out []patientAnswer
	for _, pt := range p.Patients() {
		a := patientAnswer{SSIN: pt.SSIN, Expected: "unknown"}
		if pt.Known {
			a.Expected = "not-insured"
			if pt.CoveredOn(today) {
				a.Expected = "insured"
			}
			a.FirstName, a.LastName, a.Sex, a.Deceased = pt.FirstName, pt.LastName, pt.Sex, pt.Deceased
			a.Birthday = pt.Birthday.Format(day)
			a.Mutuality, a.RegNrWithMut = pt.Mutuality, pt.RegNrWithMut
			a.Regime, a.CT1, a.CT2, a.PaymentApproval = string(pt.Regime), pt.CT1, pt.CT2, pt.PaymentApproval
			a.CoverageBegin, a.CoverageEnd = pt.CoverageBegin.Format(day), pt.CoverageEnd.Format(day)
		}
		out = append(out, a)
	}
	return out
}

// patients serves GET /patients: the same list as patients.json, answers as of now.
func (s *sim) patients(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(patientAnswers(s.p, time.Now()))
}
