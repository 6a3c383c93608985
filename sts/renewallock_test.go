package sts

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memLock is a RenewalLock in memory, shared by the providers of a test as a database's
// advisory lock is shared by the instances of a fleet.
type memLock struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
	held  int
}

func (l *memLock) LockRenewal(ctx context.Context, identity string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	ch := l.locks[identity]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.locks[identity] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	l.held++
	l.mu.Unlock()
	return func() { <-ch }, nil
}

// Twenty providers of one identity sharing a store and a renewal lock (twenty instances of a
// fleet) make one STS request for the first token, one per background renewal, and one
// per refused token, however many of them saw it.
func TestProvider_RenewalLockOneRequestForTwentyInstances(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	store, lock := newMemStore(), &memLock{}
	h.cfg.Store, h.cfg.RenewalLock = store, lock
	var ps []*Provider
	for range 20 {
		ps = append(ps, h.start(t))
	}
	first, err := ps[0].Token(context.Background())
	require.NoError(t, err)
	for _, p := range ps {
		tok, err := p.Token(context.Background())
		require.NoError(t, err)
		require.Equal(t, first.ID, tok.ID)
	}
	require.EqualValues(t, 1, h.sts.requests.Load(), "one request for twenty instances")

	// Past the renewal point every instance's background loop renews: one request.
	h.clock.Advance(2*time.Hour + time.Minute)
	require.Eventually(t, func() bool {
		for _, p := range ps {
			if c := p.Current(); c == nil || c.ID == first.ID {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond)
	second := ps[0].Current()
	for _, p := range ps {
		require.Equal(t, second.ID, p.Current().ID)
	}
	require.EqualValues(t, 2, h.sts.requests.Load(), "one request per renewal")

	// The platform refuses the token: every instance renews it; the first asks the STS,
	// the others take the token it stored.
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := p.Renew(context.Background())
			require.NoError(t, err)
			require.NotEqual(t, second.ID, tok.ID)
		}()
	}
	wg.Wait()
	require.EqualValues(t, 3, h.sts.requests.Load(), "one request per refused token")

	// Without the lock (its database down) a provider still obtains its token.
	h2 := newHarness(t, 4*time.Hour)
	h2.cfg.Store, h2.cfg.RenewalLock = newMemStore(), failingLock{}
	tok, err := h2.start(t).Token(context.Background())
	require.NoError(t, err)
	require.NotNil(t, tok)
}

type failingLock struct{}

func (failingLock) LockRenewal(context.Context, string) (func(), error) {
	return nil, context.DeadlineExceeded
}
