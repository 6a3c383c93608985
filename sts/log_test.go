package sts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The AssertionID names the bearer token at the platform: at info level and above a token is
// named only by assertion_ref (a short digest); the ID itself appears at debug level only.
func TestProvider_AssertionIDOnlyAtDebugLevel(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	h.cfg.Store = newMemStore()
	p := h.start(t)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	obtained := h.logs
	require.NoError(t, p.Close())

	// Restart with the STS down: the stored token is loaded, then expires.
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		return issue{}, rawHandler(http.StatusServiceUnavailable, "text/html", "down")
	})
	p2 := h.start(t)
	loaded := h.logs
	again, err := p2.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, tok.ID, again.ID)
	h.clock.Advance(4 * time.Hour)
	require.Eventually(t, func() bool { return loaded.FilterMessage("sts token expired").Len() == 1 }, 5*time.Second, time.Millisecond)

	sum := sha256.Sum256([]byte(tok.ID))
	ref := hex.EncodeToString(sum[:6])
	for _, tt := range []struct {
		logs *observer.ObservedLogs
		info string // the info line that names the token
	}{
		{obtained, "sts token obtained"},
		{loaded, "sts stored token loaded"},
		{loaded, "sts token expired"},
	} {
		lines := tt.logs.FilterMessage(tt.info).All()
		require.Len(t, lines, 1, tt.info)
		require.Equal(t, zapcore.InfoLevel, lines[0].Level)
		require.Equal(t, ref, lines[0].ContextMap()["assertion_ref"], tt.info)
	}
	for _, logs := range []*observer.ObservedLogs{obtained, loaded} {
		debug := logs.FilterMessage("sts token installed").All()
		require.Len(t, debug, 1)
		require.Equal(t, zapcore.DebugLevel, debug[0].Level)
		require.Equal(t, tok.ID, debug[0].ContextMap()["assertion_id"])
		for _, e := range logs.All() {
			if e.Level >= zapcore.InfoLevel {
				require.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), tok.ID, "the AssertionID at %s: %q", e.Level, e.Message)
			}
		}
	}
}
