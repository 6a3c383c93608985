package connector

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalidSSIN is the sentinel of every SSIN validation failure: a wrong SSIN is the caller's
// error, never an outage. The error says what is wrong and never repeats the number.
var ErrInvalidSSIN = errors.New("connector: invalid ssin")

// SSINError says why an SSIN was refused. It never holds the SSIN itself.
type SSINError struct {
	Reason string // "length", "digits", "date", "checksum"
}

// Error says what is wrong, without the number.
func (e *SSINError) Error() string { return "connector: invalid ssin: " + e.Reason }

// Is reports whether target is ErrInvalidSSIN.
func (e *SSINError) Is(target error) bool { return target == ErrInvalidSSIN }

// NormalizeSSIN strips the separators people type ("85.07.30-033.28", spaces) and validates
// the result with ValidateSSIN. It returns the 11 digits.
func NormalizeSSIN(s string) (string, error) {
	if len(s) == 11 {
		if err := ValidateSSIN(s); err != nil {
			return "", err
		}
		return s, nil // already bare: no copy
	}
	var b strings.Builder
	b.Grow(11)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '.', '-', ' ', '/':
			continue
		default:
			if b.Len() > 11 {
				return "", &SSINError{Reason: "length"}
			}
			b.WriteByte(c)
		}
	}
	n := b.String()
	if err := ValidateSSIN(n); err != nil {
		return "", err
	}
	return n, nil
}

// ValidateSSIN checks an SSIN (INSZ/NISS, also bis numbers) of exactly 11 digits: the month
// and day fields are plausible and the 2-digit check equals 97 − (first 9 digits mod 97), or,
// for people born in 2000 or later, 97 − ("2" followed by the first 9 digits mod 97).
func ValidateSSIN(s string) error {
	if len(s) != 11 {
		return &SSINError{Reason: "length"}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return &SSINError{Reason: "digits"}
		}
	}
	// Month: 0-12 for an SSIN, +20 or +40 for a bis number; 00 when the birth date is unknown.
	month := int(s[2]-'0')*10 + int(s[3]-'0')
	day := int(s[4]-'0')*10 + int(s[5]-'0')
	if month%20 > 12 || month > 52 || day > 31 {
		return &SSINError{Reason: "date"}
	}
	base, _ := strconv.ParseUint(s[:9], 10, 64) // 9 digits: cannot fail or overflow
	check := uint64(s[9]-'0')*10 + uint64(s[10]-'0')
	if 97-base%97 == check {
		return nil
	}
	if 97-(2_000_000_000+base)%97 == check {
		return nil
	}
	return &SSINError{Reason: "checksum"}
}
