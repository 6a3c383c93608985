package sts

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
)

// memStore is a TokenStore in memory.
type memStore struct {
	mu     sync.Mutex
	tokens map[string][]byte
	until  map[string]time.Time
	err    error
}

func newMemStore() *memStore {
	return &memStore{tokens: map[string][]byte{}, until: map[string]time.Time{}}
}

func (s *memStore) LoadToken(_ context.Context, identity string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return bytes.Clone(s.tokens[identity]), nil
}

func (s *memStore) SaveToken(_ context.Context, identity string, assertion []byte, notOnOrAfter time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.tokens[identity] = bytes.Clone(assertion)
	s.until[identity] = notOnOrAfter
	return nil
}

func (s *memStore) set(identity string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[identity] = raw
}

func TestProvider_StoredTokenSurvivesARestartDuringAnOutage(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	store := newMemStore()
	h.cfg.Store = store
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	store.mu.Lock()
	require.Equal(t, first.Assertion, store.tokens[p.Identity()])
	require.Equal(t, first.NotOnOrAfter, store.until[p.Identity()])
	store.mu.Unlock()
	require.NoError(t, p.Close())

	// Restart an hour later with the STS down: the stored token is loaded and used.
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		return issue{}, rawHandler(http.StatusServiceUnavailable, "text/html", "down")
	})
	h.clock.Advance(time.Hour)
	before := h.sts.requests.Load()
	p2 := h.start(t)
	tok, err := p2.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, first.ID, tok.ID)
	require.Equal(t, first.Assertion, tok.Assertion)
	require.Equal(t, first.NotOnOrAfter, tok.NotOnOrAfter)
	require.Equal(t, before, h.sts.requests.Load(), "no STS request while the stored token is fresh")

	// Past its renewal point the background renewal tries the STS, and the token stays in use.
	h.settle(t, first.NotBefore.Add(2*time.Hour))
	h.clock.Advance(time.Hour)
	require.Eventually(t, func() bool { return h.sts.requests.Load() > before }, 5*time.Second, time.Millisecond)
	tok, err = p2.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, first.ID, tok.ID)

	// Once it expires, Token says the STS is unavailable.
	h.clock.Advance(2 * time.Hour)
	_, err = p2.Token(context.Background())
	require.ErrorIs(t, err, ErrNoToken)
	require.ErrorIs(t, err, bcp.ErrUnavailable)
}

func TestProvider_StoredTokenIsValidatedAgain(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	store := newMemStore()
	h.cfg.Store = store
	p := h.start(t)
	good, err := p.Token(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	id := p.Identity()

	other := newHarness(t, 4*time.Hour) // a token from another STS key and holder
	po := other.start(t)
	foreign, err := po.Token(context.Background())
	require.NoError(t, err)

	tampered := bytes.Replace(good.Assertion, []byte(">true<"), []byte(">false<"), 1)
	require.NotEqual(t, good.Assertion, tampered)
	tests := []struct {
		name    string
		raw     []byte
		advance time.Duration
	}{
		{"tampered", tampered, 0},
		{"expired", good.Assertion, 4 * time.Hour},
		{"within the expiry margin", good.Assertion, 4*time.Hour - 30*time.Second},
		{"not an assertion", []byte("<x/>"), 0},
		{"garbage", []byte("\x00\x01garbage"), 0},
		{"doctype", []byte(`<!DOCTYPE a [<!ENTITY b "c">]><a/>`), 0},
		{"oversized", bytes.Repeat([]byte(" "), maxAssertionBytes+1), 0},
		{"signed by another STS", foreign.Assertion, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h2 := *h
			h2.clock = newFakeClock(fixedNow().Add(tt.advance))
			store.set(id, tt.raw)
			gate := make(chan struct{}) // hold the STS so the provider only has what it loaded
			h2.sts.mu.Lock()
			h2.sts.gate = gate
			h2.sts.mu.Unlock()
			defer func() {
				h2.sts.mu.Lock()
				h2.sts.gate = nil
				h2.sts.mu.Unlock()
				close(gate)
			}()
			p := h2.start(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := p.Token(ctx)
			require.ErrorIs(t, err, ErrNoToken, "stored token must not be used")
		})
	}
}

func TestProvider_StoreFailuresAreNotFatal(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	store := newMemStore()
	store.err = errors.New("disk full")
	h.cfg.Store = store
	p := h.start(t)
	_, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.logs.FilterMessage("sts token not persisted").Len() == 1 }, time.Second, time.Millisecond)
}
