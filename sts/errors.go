package sts

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrNoToken is matched by every error of Provider.Token: no valid token is left. When the
	// STS could not be reached, errors.Is(err, bcp.ErrUnavailable) holds as well.
	ErrNoToken = errors.New("sts: no valid token")
	// ErrClosed is returned once the Provider is closed and has no valid token.
	ErrClosed = errors.New("sts: provider closed")
	// ErrMalformedResponse reports a token response that is not what the protocol says.
	ErrMalformedResponse = errors.New("sts: malformed token response")
)

// Problems of an issued assertion, matched with errors.Is on a *ValidationError.
var (
	ErrSignature     = errors.New("sts: assertion signature not valid")
	ErrIssuer        = errors.New("sts: assertion issuer not expected")
	ErrExpired       = errors.New("sts: assertion expired")
	ErrNotYetValid   = errors.New("sts: assertion not yet valid")
	ErrHolderOfKey   = errors.New("sts: assertion's holder-of-key certificate is not ours")
	ErrAssertion     = errors.New("sts: assertion not usable")
	ErrAssertionSize = errors.New("sts: assertion too large")
	// ErrInResponseTo: the response's InResponseTo is absent, empty or not our RequestID
	// (WS-Trust: the RSTR's Context is not ours).
	ErrInResponseTo = errors.New("sts: response does not answer our request")
	// ErrConfirmation: the assertion does not hold exactly one SubjectConfirmation.
	ErrConfirmation = errors.New("sts: assertion must hold exactly one subject confirmation")
	// ErrLifetime: the assertion is valid longer than was asked (plus ClockSkew).
	ErrLifetime = errors.New("sts: assertion lifetime longer than requested")
	// ErrSigner: the assertion is signed by a certificate that chains to STSRoots but is not
	// the pinned STS certificate (ProviderConfig.STSSigner).
	ErrSigner = errors.New("sts: assertion signed by a certificate that is not the STS's")
)

var (
	// ErrRedirect: the STS endpoint answered with a redirect. The signed request is never sent
	// elsewhere; the attempt counts as an endpoint failure.
	ErrRedirect = errors.New("sts: redirect refused")
	// ErrInsecureEndpoint: an STS endpoint is not https.
	ErrInsecureEndpoint = errors.New("sts: endpoint is not https")
)

// ValidationError says why an issued (or stored) assertion was refused.
type ValidationError struct {
	AssertionID string // may be empty when the assertion could not be read
	Problem     error  // one of the problem sentinels above
	Detail      string // what exactly; never personal data
	Err         error  // underlying cause (for example the soap verification error), may be nil
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Problem.Error())
	if e.AssertionID != "" {
		fmt.Fprintf(&b, " (assertion %s)", e.AssertionID)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the problem and the cause.
func (e *ValidationError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Problem}
	}
	return []error{e.Problem, e.Err}
}

// StatusError is a token response whose samlp:Status is not Success: the STS refused to issue
// (for example an identity it does not know, or an attribute it will not certify).
//
// Message is the STS's samlp:StatusMessage made safe to print and log, since Error() includes
// it and a failed background renewal logs the error at warn level: a refusal may name the
// subject of the request (the care provider's SSIN), so every run of ten or more digits and
// separators (" .-/") that starts and ends with a digit is replaced by "[number]", control
// characters by spaces, and the result is cut to at most MaxStatusMessage bytes (on a rune
// boundary, "…" appended when cut). The message as the STS sent it is not kept.
type StatusError struct {
	Code     string   // samlp:StatusCode/@Value, e.g. "samlp:Requester"
	SubCodes []string // nested samlp:StatusCode values, outermost first
	Message  string   // samlp:StatusMessage, bounded and redacted as above
}

// MaxStatusMessage bounds StatusError.Message, in bytes (before the "…" marking a cut).
const MaxStatusMessage = 256

// numberRun is a run of digits that may name a person: an SSIN (11 digits), a NIHII
// (8 or 11), a card number, written plain or with separators ("85.07.30-033.61").
var numberRun = regexp.MustCompile(`[0-9][0-9 .\-/]{8,}[0-9]`)

// safeStatusMessage bounds and redacts an STS's status message (see StatusError).
func safeStatusMessage(s string) string {
	// Redact before cutting, so a number cut at the boundary cannot leave a readable prefix;
	// first bound the work to a few times what is kept.
	s = cutRunes(s, 16*MaxStatusMessage)
	s = numberRun.ReplaceAllLiteralString(s, "[number]")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) > MaxStatusMessage {
		return cutRunes(s, MaxStatusMessage) + "…"
	}
	return s
}

// cutRunes returns the longest prefix of s of at most n bytes that ends on a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("sts: token refused with status ")
	b.WriteString(e.Code)
	for _, c := range e.SubCodes {
		b.WriteString("/" + c)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// TokenError is what Provider.Token returns when it has no valid token to give: it wraps
// ErrNoToken and the reason the last attempt to get one failed (a *bcp.UnavailableError when
// the STS could not be reached, a *soap.Fault, a *StatusError, a *ValidationError, the
// caller's context error, ...).
type TokenError struct {
	Identity string // Provider.Identity(): a label of the credential, never personal data
	Err      error
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("sts: no valid token for identity %s: %v", e.Identity, e.Err)
}

// Unwrap returns ErrNoToken and the cause.
func (e *TokenError) Unwrap() []error { return []error{ErrNoToken, e.Err} }
