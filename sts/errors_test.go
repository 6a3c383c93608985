package sts

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
)

func TestSafeStatusMessage(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes of two-byte runes
	tests := []struct {
		name, in, want string
	}{
		{"plain text kept", "  unknown identity ", "unknown identity"},
		{"formatted SSIN", "subject 85.07.30-033.61 unknown", "subject [number] unknown"},
		{"plain SSIN", "NISS=85073003361.", "NISS=[number]."},
		{"spaces and slashes", "card 1234 5678 9012/34 refused", "card [number] refused"},
		{"short numbers kept", "error 1001 at step 12", "error 1001 at step 12"},
		{"eight-digit pharmacy NIHII kept", "pharmacy 28061703", "pharmacy 28061703"},
		{"control characters", "line one\nline two\r\tend", "line one line two  end"},
		{"cut on a rune boundary", "x" + long, "x" + strings.Repeat("é", 127) + "…"},
		{"redacted before the cut", strings.Repeat("a", 250) + " 85.07.30-033.61", strings.Repeat("a", 250) + " [numb…"},
		{"invalid UTF-8", "bad \xff byte", "bad \uFFFD byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := safeStatusMessage(tt.in)
			require.Equal(t, tt.want, got)
			require.True(t, utf8.ValidString(got))
			require.LessOrEqual(t, len(strings.TrimSuffix(got, "…")), MaxStatusMessage)
		})
	}
	huge := strings.Repeat("85.07.30-033.61 ", 1<<16) // 1 MiB
	got := safeStatusMessage(huge)
	require.LessOrEqual(t, len(got), MaxStatusMessage+len("…"))
	require.NotContains(t, got, "033")
}

// A refusing STS whose status message names the subject (an SSIN, formatted) and runs on:
// the StatusError the caller gets and the warn line of every failed background renewal
// carry a bounded message with the number redacted.
func TestProvider_RefusalMessageIsBoundedAndRedactedInErrorsAndLogs(t *testing.T) {
	const ssin, formatted = "85073003361", "85.07.30-033.61"
	message := fmt.Sprintf("subject %s (NISS %s) is not a registered pharmacist: %s", formatted, ssin, strings.Repeat("details ", 200))
	h := newHarness(t, 2*time.Hour)
	var refuse atomic.Bool
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		if refuse.Load() {
			return issue{status: "samlp:Requester", subStatus: "samlp:RequestDenied", statusMessage: message}, nil
		}
		return issue{}, nil
	})
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	h.settle(t, fixedNow().Add(time.Hour))

	refuse.Store(true)
	h.clock.Advance(time.Hour) // renewal due: refused
	require.Eventually(t, func() bool {
		return h.logs.FilterMessage("sts token renewal failed").Len() > 0
	}, 5*time.Second, time.Millisecond)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Same(t, first, tok, "the current token stays in use")

	_, err = p.Renew(context.Background())
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.True(t, strings.HasPrefix(se.Message, "subject [number] (NISS [number]) is not a registered pharmacist: details"), se.Message)
	require.True(t, strings.HasSuffix(se.Message, "…"))
	require.LessOrEqual(t, len(se.Message), MaxStatusMessage+len("…"))
	require.Less(t, len(err.Error()), MaxStatusMessage+200)

	for _, e := range h.logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if e.Level >= zapcore.InfoLevel {
			require.NotContains(t, line, ssin, "an SSIN in the logs at %s", e.Level)
			require.NotContains(t, line, "033.61", "part of an SSIN in the logs at %s", e.Level)
			require.Less(t, len(line), 1024, "a bounded line")
		}
	}
	warn := h.logs.FilterMessage("sts token renewal failed").All()[0]
	require.Equal(t, zapcore.WarnLevel, warn.Level)
	require.Contains(t, fmt.Sprint(warn.ContextMap()["error"]), "subject [number]")
}
