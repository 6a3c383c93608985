package bcp_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/stretchr/testify/require"
)

// noBreaker never opens, so that retries alone are measured.
var noBreaker = bcp.BreakerConfig{ConsecutiveFailures: -1, FailureRatio: -1}

func TestDo_RetryBudgetBoundsRetriesInAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{}, &flaky{}
		a.down.Store(true)
		b.down.Store(true)
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Breaker:     noBreaker,
			Budget:      bcp.BudgetConfig{Ratio: 0.1, PerSecond: -1},
			Default:     bcp.ServicePolicy{Idempotent: true, Retries: 3, RetryDelay: time.Millisecond, AttemptTimeout: -1},
		})
		require.NoError(t, err)
		defer e.Close()
		attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})
		for range 1000 {
			require.ErrorIs(t, e.Do(context.Background(), svcShort, attempt), bcp.ErrUnavailable)
		}
		// Without a budget: 1000 calls × 2 endpoints × 4 passes = 8000 attempts.
		retries := a.hits.Load() + b.hits.Load() - 2000
		require.LessOrEqual(t, retries, int64(100), "at most 10 %% of 1000 calls")
		require.GreaterOrEqual(t, retries, int64(95))
		s := e.Snapshot().Budget
		require.Equal(t, uint64(retries), s.Granted)
		require.NotZero(t, s.Denied)
	})
}

func TestDo_RetryBudgetFloorGrantsRetriesPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &flaky{}
		a.down.Store(true)
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA),
			Breaker:     noBreaker,
			Budget:      bcp.BudgetConfig{Ratio: -1, PerSecond: 2, Max: 2},
			Default:     bcp.ServicePolicy{Idempotent: true, Retries: 5, RetryDelay: time.Millisecond, AttemptTimeout: -1},
		})
		require.NoError(t, err)
		defer e.Close()
		attempt := attemptOn(map[string]*flaky{urlA: a})
		for range 100 { // one call every 100 ms for 10 s
			require.ErrorIs(t, e.Do(context.Background(), svcShort, attempt), bcp.ErrUnavailable)
			time.Sleep(100 * time.Millisecond)
		}
		retries := a.hits.Load() - 100
		require.GreaterOrEqual(t, retries, int64(19)) // 2 per second for ~10 s, 2 saved at the start
		require.LessOrEqual(t, retries, int64(23))
	})
}

func TestDo_RetriesOnlyIdempotentServicesWithJitteredBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{}, &flaky{}
		a.down.Store(true)
		b.down.Store(true)
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Breaker:     noBreaker,
			Default:     bcp.ServicePolicy{AttemptTimeout: -1},
			Services: map[string]bcp.ServicePolicy{
				svcShort: {Idempotent: true, Retries: 2, RetryDelay: 100 * time.Millisecond, AttemptTimeout: -1},
			},
		})
		require.NoError(t, err)
		defer e.Close()
		eps := map[string]*flaky{urlA: a, urlB: b}

		start := time.Now()
		err = e.Do(context.Background(), svcShort, attemptOn(eps))
		elapsed := time.Since(start)
		var ue *bcp.UnavailableError
		require.ErrorAs(t, err, &ue)
		require.Len(t, ue.Attempts, 6, "three passes over two endpoints")
		require.Equal(t, int64(3), a.hits.Load())
		// delays of 100 ms then 200 ms, each ±50 %
		require.GreaterOrEqual(t, elapsed, 149*time.Millisecond)
		require.LessOrEqual(t, elapsed, 451*time.Millisecond)

		// The same list under a write service name: no retry.
		l := listOf(urlA, urlB)
		l.Services[0].ID = "uddi:ehealth-fgov-be:business:mycarenettarification:v1"
		e.SetServiceList(l)
		err = e.Do(context.Background(), "mycarenettarification:v1", attemptOn(eps))
		require.ErrorAs(t, err, &ue)
		require.Len(t, ue.Attempts, 2)
		require.Equal(t, int64(4), a.hits.Load())
	})
}

func TestDo_AttemptTimeoutIsAFailureCallerCancelIsNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{delay: time.Hour}, &flaky{}
		e, err := bcp.New(bcp.Config{ServiceList: listOf(urlA, urlB), Default: bcp.ServicePolicy{AttemptTimeout: 2 * time.Second}})
		require.NoError(t, err)
		defer e.Close()
		attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})

		start := time.Now()
		require.NoError(t, e.Do(context.Background(), svcShort, attempt))
		require.Equal(t, 2*time.Second, time.Since(start))
		br, _ := e.Breaker(svcShort, urlA)
		require.Equal(t, 1, br.Snapshot().ConsecutiveFailures)

		// The caller's own cancellation is not held against A.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		require.ErrorIs(t, e.Do(ctx, svcShort, attempt), context.Canceled)
		require.Equal(t, 1, br.Snapshot().ConsecutiveFailures)
		require.Equal(t, int64(1), b.hits.Load())
	})
}

func TestDo_HedgingTakesTheFirstGoodAnswerAndCancelsTheOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Bool
		slowA := func(ctx context.Context) error {
			<-ctx.Done()
			cancelled.Store(true)
			return ctx.Err()
		}
		var hitsB atomic.Int64
		fastB := func(ctx context.Context) error {
			hitsB.Add(1)
			time.Sleep(10 * time.Millisecond)
			return nil
		}
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Default:     bcp.ServicePolicy{Idempotent: true, HedgeDelay: 50 * time.Millisecond},
		})
		require.NoError(t, err)
		defer e.Close()
		attempt := func(ctx context.Context, ep bcp.Endpoint) error {
			if ep.URL == urlA {
				return slowA(ctx)
			}
			return fastB(ctx)
		}
		start := time.Now()
		require.NoError(t, e.Do(context.Background(), svcShort, attempt))
		require.Equal(t, 60*time.Millisecond, time.Since(start), "hedge after 50 ms, answer 10 ms later")
		synctest.Wait()
		require.True(t, cancelled.Load(), "the loser's context is cancelled")
		br, _ := e.Breaker(svcShort, urlA)
		s := br.Snapshot()
		require.Equal(t, bcp.StateClosed, s.State)
		require.Zero(t, s.ConsecutiveFailures, "losing a race is not a failure")
	})
}

func TestDo_HedgingWaitsForAFastPrimaryAndFailsOverAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{delay: 10 * time.Millisecond}, &flaky{delay: 10 * time.Millisecond}
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Default:     bcp.ServicePolicy{Idempotent: true, HedgeDelay: 50 * time.Millisecond},
		})
		require.NoError(t, err)
		defer e.Close()
		attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})

		require.NoError(t, e.Do(context.Background(), svcShort, attempt))
		synctest.Wait()
		require.Zero(t, b.hits.Load(), "answered before the hedge delay")

		a.down.Store(true)
		start := time.Now()
		require.NoError(t, e.Do(context.Background(), svcShort, attempt))
		require.Equal(t, 20*time.Millisecond, time.Since(start), "failed over without waiting for the hedge delay")

		b.down.Store(true)
		err = e.Do(context.Background(), svcShort, attempt)
		require.ErrorIs(t, err, bcp.ErrUnavailable)
	})
}

func TestEngine_CloseStopsBreakerTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{}, &flaky{}
		a.down.Store(true)
		e, err := bcp.New(bcp.Config{ServiceList: listOf(urlA, urlB), Breaker: bcp.BreakerConfig{ConsecutiveFailures: 1}})
		require.NoError(t, err)
		require.NoError(t, e.Do(context.Background(), svcShort, attemptOn(map[string]*flaky{urlA: a, urlB: b})))
		br, _ := e.Breaker(svcShort, urlA)
		require.Equal(t, bcp.StateOpen, br.State())
		require.NoError(t, e.Close())
		time.Sleep(time.Hour)
		require.Equal(t, bcp.StateOpen, br.State(), "no timer fired after Close")
	})
}

func TestDo_NoRetryPassWhenNothingCouldBeTried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{}, &flaky{}
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Default:     bcp.ServicePolicy{Idempotent: true, Retries: 3, RetryDelay: time.Second},
		})
		require.NoError(t, err)
		defer e.Close()
		for _, u := range []string{urlA, urlB} {
			br, _ := e.Breaker(svcShort, u)
			br.ForceOpen() // an operator's word: not even a panic probe
		}
		start := time.Now()
		err = e.Do(context.Background(), svcShort, attemptOn(map[string]*flaky{urlA: a, urlB: b}))
		require.Zero(t, time.Since(start), "no backoff sleep for a pass that tried nothing")
		var ue *bcp.UnavailableError
		require.ErrorAs(t, err, &ue)
		require.Len(t, ue.Attempts, 2)
		require.ErrorIs(t, ue.Attempts[0].Err, bcp.ErrOpen)
		require.Zero(t, a.hits.Load()+b.hits.Load())
	})
}

func TestDo_HedgesDrawFromTheRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &flaky{delay: 100 * time.Millisecond}, &flaky{}
		e, err := bcp.New(bcp.Config{
			ServiceList: listOf(urlA, urlB),
			Budget:      bcp.BudgetConfig{Ratio: -1, PerSecond: -1}, // nothing to spend
			Default:     bcp.ServicePolicy{Idempotent: true, HedgeDelay: 10 * time.Millisecond},
		})
		require.NoError(t, err)
		defer e.Close()
		start := time.Now()
		require.NoError(t, e.Do(context.Background(), svcShort, attemptOn(map[string]*flaky{urlA: a, urlB: b})))
		require.Equal(t, 100*time.Millisecond, time.Since(start), "waited for A: no budget for a hedge")
		require.Zero(t, b.hits.Load())
		require.Equal(t, uint64(1), e.Snapshot().Budget.Denied)
	})
}
