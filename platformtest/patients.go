package platformtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Regime is a patient's third-party payer regime, as insurability answers it.
type Regime string

// Third-party payer regimes (ThirdPartyPayerRegime in docs/wire/insurability.md).
const (
	RegimeNone     Regime = "none"
	RegimeStandard Regime = "standard"
	RegimeElevated Regime = "elevated"
)

// Patient is one person of the generated population. The population is a
// pure function of Config.Seed and Config.Patients.
type Patient struct {
	SSIN string
	// Known is false for SSINs that are valid but unknown to the platform:
	// insurability answers them with a business fault (v2 ReturnCode Major
	// "1", GenericInsurability MessageFault NO_IO_ERROR).
	Known bool
	// Insured is true when the patient has a coverage that is open today;
	// false for a known patient whose coverage ended (no Coverage in answers).
	Insured         bool
	FirstName       string
	LastName        string
	Birthday        time.Time
	Sex             string // "male" | "female"
	Deceased        bool
	DeceasedOn      time.Time // the date of death when Deceased
	Mutuality       string    // 3 digits
	RegNrWithMut    string
	Regime          Regime
	CT1, CT2        string // entitlement codes
	CoverageBegin   time.Time
	CoverageEnd     time.Time // inclusive
	PaymentApproval string
}

// CoveredOn reports whether the patient is covered on day d.
func (p Patient) CoveredOn(d time.Time) bool {
	if !p.Known {
		return false
	}
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	return !day.Before(p.CoverageBegin) && !day.After(p.CoverageEnd)
}

var (
	firstNames  = []string{"Lotte", "Noah", "Emma", "Arthur", "Louise", "Jules", "Olivia", "Lucas", "Mila", "Adam", "Marie", "Victor", "Elise", "Finn", "Nora", "Louis"}
	lastNames   = []string{"Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters", "De Smet", "Dubois", "Lambert", "Dupont", "Martin", "Leroy", "Simon"}
	mutualities = []string{"100", "200", "300", "400", "500", "600", "900"}
)

// ssinCheck returns the two check digits of the 9-digit prefix of an SSIN
// (YYMMDD + serial): 97 − (n mod 97), with "2" prefixed to n for people born
// in 2000 or later.
func ssinCheck(prefix9 string, bornFrom2000 bool) int {
	n, _ := strconv.ParseInt(prefix9, 10, 64)
	if bornFrom2000 {
		n += 2_000_000_000
	}
	return int(97 - n%97)
}

func makeSSIN(birthday time.Time, serialNr int) string {
	prefix := fmt.Sprintf("%02d%02d%02d%03d", birthday.Year()%100, int(birthday.Month()), birthday.Day(), serialNr)
	return fmt.Sprintf("%s%02d", prefix, ssinCheck(prefix, birthday.Year() >= 2000))
}

// validSSIN reports whether s is 11 digits with correct check digits (for
// either century).
func validSSIN(s string) bool {
	if len(s) != 11 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	check, _ := strconv.Atoi(s[9:])
	return ssinCheck(s[:9], false) == check || ssinCheck(s[:9], true) == check
}

// generatePopulation builds n patients from seed. About 4 % are unknown to
// the platform and about 6 % are known but no longer insured.
func generatePopulation(n int, seed int64) []Patient {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	seen := make(map[string]bool, n)
	out := make([]Patient, 0, n)
	for len(out) < n {
		year := 1930 + r.IntN(94) // 1930..2023: both SSIN check rules occur
		month := time.Month(1 + r.IntN(12))
		day := 1 + r.IntN(28)
		birthday := time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
		serialNr := 1 + r.IntN(997)
		ssin := makeSSIN(birthday, serialNr)
		if seen[ssin] {
			continue
		}
		seen[ssin] = true
		i := len(out)
		p := Patient{
			SSIN:      ssin,
			Known:     true,
			Insured:   true,
			FirstName: firstNames[r.IntN(len(firstNames))],
			LastName:  lastNames[r.IntN(len(lastNames))],
			Birthday:  birthday,
			Sex:       "female",
			Mutuality: mutualities[r.IntN(len(mutualities))],
		}
		if serialNr%2 == 1 {
			p.Sex = "male"
		}
		p.RegNrWithMut = fmt.Sprintf("%011d", r.Int64N(100_000_000_000))
		switch v := r.IntN(100); {
		case v < 70:
			p.Regime, p.CT1, p.CT2 = RegimeStandard, "110", "110"
		case v < 90:
			p.Regime, p.CT1, p.CT2 = RegimeElevated, "111", "111"
		default:
			p.Regime, p.CT1, p.CT2 = RegimeNone, "100", "100"
		}
		p.CoverageBegin = time.Date(max(2015, year), 1, 1, 0, 0, 0, 0, time.UTC)
		p.CoverageEnd = time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)
		// 32 characters: Insurability v2's PaymentApprovalType has that length.
		p.PaymentApproval = fmt.Sprintf("PA%030d", r.IntN(100_000_000))
		switch {
		case i%25 == 3: // unknown to the platform
			p.Known, p.Insured = false, false
			p.Regime, p.CT1, p.CT2, p.PaymentApproval = "", "", "", ""
			p.Mutuality, p.RegNrWithMut = "", ""
			p.CoverageBegin, p.CoverageEnd = time.Time{}, time.Time{}
		case i%17 == 5: // coverage ended
			p.Insured = false
			p.CoverageEnd = time.Date(2019, 12, 31, 0, 0, 0, 0, time.UTC)
			if p.CoverageBegin.After(p.CoverageEnd) {
				p.CoverageBegin = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
			}
		case i%41 == 7:
			p.Deceased = true
			p.DeceasedOn = time.Date(2024, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
		}
		out = append(out, p)
	}
	return out
}
