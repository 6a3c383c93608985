package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

func TestWarmer_RefreshesStaleKeysAtALimitedRate(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		st, err := cache.Open(testConfig(dir)) // time.Now is the bubble's fake clock
		require.NoError(t, err)
		defer st.Close()
		start := time.Now()
		require.NoError(t, st.Put(bg, cache.FunctionInsurability, "a", []byte("already fresh")))

		var mu sync.Mutex
		calls := map[string][]time.Duration{}
		w, err := st.Warm(cache.WarmConfig{
			Function: cache.FunctionInsurability,
			Keys:     []string{"a", "b", "c", "unknown-to-platform"},
			MaxAge:   30 * time.Minute,
			Interval: time.Hour,
			Rate:     2, // 2 refreshes per second
			Refresh: func(ctx context.Context, key string) error {
				mu.Lock()
				calls[key] = append(calls[key], time.Since(start))
				mu.Unlock()
				if key == "unknown-to-platform" {
					return errors.New("business error")
				}
				return st.Put(ctx, cache.FunctionInsurability, key, []byte("live"))
			},
		})
		require.NoError(t, err)

		time.Sleep(2 * time.Second) // the first round starts at once, its calls paced by the limiter
		synctest.Wait()
		mu.Lock()
		require.Equal(t, map[string][]time.Duration{
			"b": {0}, "c": {500 * time.Millisecond}, "unknown-to-platform": {time.Second},
		}, calls, "a was fresh; the others went 500 ms apart")
		mu.Unlock()
		require.Equal(t, cache.WarmStats{Rounds: 1, Refreshed: 2, Failed: 1, UpToDate: 1}, w.Stats())

		time.Sleep(57*time.Minute + 58*time.Second) // 58 min after the start
		synctest.Wait()
		require.Equal(t, uint64(1), w.Stats().Rounds, "nothing before the interval")

		w.Remove("unknown-to-platform")
		w.Add("d")
		time.Sleep(2*time.Minute + 5*time.Second) // the second round at 1 h: everything is ≥ 30 min old
		synctest.Wait()
		mu.Lock()
		require.Equal(t, map[string][]time.Duration{
			"a": {time.Hour}, "b": {0, time.Hour + 500*time.Millisecond}, "c": {500 * time.Millisecond, time.Hour + time.Second},
			"d": {time.Hour + 1500*time.Millisecond}, "unknown-to-platform": {time.Second},
		}, calls)
		mu.Unlock()
		require.Equal(t, []string{"a", "b", "c", "d"}, w.Keys())

		w.RefreshNow() // all fresh now: nothing to call
		synctest.Wait()
		s := w.Stats()
		require.Equal(t, uint64(3), s.Rounds)
		require.Equal(t, uint64(6), s.Refreshed)
		require.Equal(t, uint64(1+4), s.UpToDate)

		st.Close() // stops the warmer too
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		require.Equal(t, uint64(3), w.Stats().Rounds)
	})
}

func TestStore_BackgroundPurgeRunsOnItsInterval(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(dir)
		cfg.PurgeInterval = 10 * time.Minute
		cfg.Functions = map[string]cache.Policy{"short": {Fresh: time.Minute, ServeStale: 30 * time.Minute, Retention: time.Hour}}
		st, err := cache.Open(cfg)
		require.NoError(t, err)
		defer st.Close()
		require.NoError(t, st.Put(bg, "short", "k", []byte("v")))
		count := func() int {
			s, err := st.Stats(bg)
			require.NoError(t, err)
			return s.Functions["short"].Count
		}
		time.Sleep(55 * time.Minute)
		synctest.Wait()
		require.Equal(t, 1, count())
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Equal(t, 0, count())
	})
}

func TestStore_WarmRejectsBadConfig(t *testing.T) {
	st := openTest(t, testConfig(t.TempDir()))
	_, err := st.Warm(cache.WarmConfig{Function: "nope", Refresh: func(context.Context, string) error { return nil }})
	require.ErrorIs(t, err, cache.ErrUnknownFunction)
	_, err = st.Warm(cache.WarmConfig{Function: cache.FunctionETK})
	require.ErrorIs(t, err, cache.ErrInvalid)
}
