package pgstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// A Warmer on a shared store: it refreshes what no instance has stored
// recently, the answers it stores are served by the other instances, and an
// answer another instance refreshed meanwhile is not fetched again.
func TestFleet_WarmerOnSharedStore(t *testing.T) {
	tenant := cachetest.Tenant("warm")
	clk := cachetest.NewClock()
	a, err := cache.Open(storeConfig(tenant, openDB(t)), cache.WithClock(clk.Now))
	require.NoError(t, err)
	defer a.Close()
	b, err := cache.Open(storeConfig(tenant, openDB(t)), cache.WithClock(clk.Now))
	require.NoError(t, err)
	defer b.Close()
	ins := cache.FunctionInsurability

	require.NoError(t, b.Put(bg, ins, "old", []byte("from b")))
	clk.Advance(40 * time.Minute)
	require.NoError(t, b.Put(bg, ins, "fresh", []byte("from b")))

	var mu sync.Mutex
	var calls []string
	w, err := a.Warm(cache.WarmConfig{
		Function: ins, Keys: []string{"missing", "fresh", "old"},
		MaxAge: 30 * time.Minute, Interval: 24 * time.Hour, Rate: rate.Inf,
		Refresh: func(ctx context.Context, key string) error {
			mu.Lock()
			calls = append(calls, key)
			mu.Unlock()
			return a.Put(ctx, ins, key, []byte("live via a"))
		},
	})
	require.NoError(t, err)
	defer w.Close()
	// round waits until round n has looked at every key, then returns (and
	// resets) the keys it refreshed.
	seen := uint64(0)
	round := func(n uint64) []string {
		t.Helper()
		seen += 3
		require.Eventually(t, func() bool {
			s := w.Stats()
			return s.Rounds == n && s.Refreshed+s.UpToDate+s.Failed == seen
		}, 20*time.Second, 5*time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		out := slices.Sorted(slices.Values(calls))
		calls = nil
		return out
	}
	require.Equal(t, []string{"missing", "old"}, round(1), "fresh was stored by b 0 min ago")
	e, err := b.Get(bg, ins, "missing")
	require.NoError(t, err)
	require.Equal(t, "live via a", string(e.Value), "what the warmer stored serves every instance")

	w.RefreshNow()
	require.Empty(t, round(2), "everything is young")

	clk.Advance(31 * time.Minute)
	require.NoError(t, b.Put(bg, ins, "old", []byte("refreshed by b"))) // another instance got there first
	w.RefreshNow()
	require.Equal(t, []string{"fresh", "missing"}, round(3), "old was refreshed by b meanwhile")
	require.Equal(t, cache.WarmStats{Rounds: 3, Refreshed: 4, UpToDate: 5}, w.Stats())
	e, err = a.Get(bg, ins, "old")
	require.NoError(t, err)
	require.Equal(t, "refreshed by b", string(e.Value))
}
