package connector

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// The gate lets calls in until it is shut, refuses them after, and wait returns only once
// every call let in has ended.
func TestCallGate_ShutWaitsForTheCallsLetIn(t *testing.T) {
	for range 20 {
		g := newCallGate()
		var inFlight, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 200 {
					if !g.enter() {
						refused.Add(1)
						return
					}
					inFlight.Add(1)
					inFlight.Add(-1)
					g.exit()
				}
			}()
		}
		close(start)
		g.shut()
		g.wait()
		require.Zero(t, inFlight.Load(), "wait returned with a call in flight")
		require.False(t, g.enter(), "a shut gate lets no call in")
		wg.Wait()
		g.wait() // waiting again returns at once
	}
}

// Close while counters are answered from the store in fallback mode: each call gets its
// answer or ErrClosed, nothing else; after Close, ErrClosed.
func TestClient_CloseWhileFallbackCallsRun(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 4)
	for _, pt := range pts {
		_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	require.NoError(t, env.c.ActivateFallback(ServiceInsurability, "close test"))
	var wg sync.WaitGroup
	var answered atomic.Int64
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[(g+i)%len(pts)].SSIN})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil || res.Source != SourceCache {
					errs <- err
					return
				}
				answered.Add(1)
			}
		}()
	}
	for answered.Load() < 100 && len(errs) == 0 {
		runtime.Gosched()
	}
	require.NoError(t, env.c.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.ErrorIs(t, err, ErrClosed)
}
