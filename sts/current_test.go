package sts

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProvider_CurrentNeverBlocksNorCallsTheSTS(t *testing.T) {
	h := newHarness(t, 2*time.Hour)
	var mu sync.Mutex
	handler := rawHandler(http.StatusServiceUnavailable, "text/plain", "down")
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		mu.Lock()
		defer mu.Unlock()
		return issue{}, handler
	})
	p := h.start(t)
	require.Nil(t, p.Current(), "no token obtained yet (the STS is down)")

	mu.Lock()
	handler = nil
	mu.Unlock()
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	n := p.Requests()
	for range 100 {
		require.Same(t, tok, p.Current())
	}
	require.Equal(t, n, p.Requests(), "Current sends no request")

	mu.Lock()
	handler = rawHandler(http.StatusServiceUnavailable, "text/plain", "down")
	mu.Unlock()
	h.clock.Jump(2 * time.Hour) // past NotOnOrAfter; timers not fired
	require.Nil(t, p.Current(), "an expired token is not current")
	require.NoError(t, p.Close())
	require.Nil(t, p.Current(), "nothing is current after Close")
}
