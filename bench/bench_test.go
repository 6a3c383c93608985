package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/ehgate/ehgate/bcp"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"
)

type subject struct {
	name    string
	new     func(tb testing.TB, open bool) Breaker
	openErr error
}

var subjects = []subject{
	{"ehgate", func(tb testing.TB, open bool) Breaker {
		b, err := NewEhgate(open)
		require.NoError(tb, err)
		return b
	}, bcp.ErrOpen},
	{"gobreaker", func(_ testing.TB, open bool) Breaker { return NewGobreaker(open) }, gobreaker.ErrOpenState},
	{"failsafe", func(_ testing.TB, open bool) Breaker { return NewFailsafe(open) }, circuitbreaker.ErrOpen},
}

// TestBreakers_AgreeOnTheBenchmarkedPaths checks that what the benchmarks time
// is what they claim: each breaker lets a call through while closed and
// refuses it, without calling, while open.
func TestBreakers_AgreeOnTheBenchmarkedPaths(t *testing.T) {
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			calls := 0
			fn := func() error { calls++; return nil }
			require.NoError(t, s.new(t, false).Run(fn))
			require.Equal(t, 1, calls)
			err := s.new(t, true).Run(fn)
			require.True(t, errors.Is(err, s.openErr), "open breaker returned %v", err)
			require.Equal(t, 1, calls, "an open breaker must not call")
		})
	}
}

func TestRouterDo_HealthyServiceAnswersWithoutAllocating(t *testing.T) {
	e, err := NewEngine()
	require.NoError(t, err)
	defer e.Close()
	ctx := context.Background()
	var got bcp.Endpoint
	require.NoError(t, e.Do(ctx, Service, func(_ context.Context, ep bcp.Endpoint) error { got = ep; return nil }))
	require.Equal(t, 0, got.Order)
	if !testing.Short() && !raceEnabled {
		allocs := testing.AllocsPerRun(100, func() { _ = e.Do(ctx, Service, NoopAttempt) })
		require.Zero(t, allocs)
	}
}

func BenchmarkBreaker(b *testing.B) {
	for _, s := range subjects {
		b.Run(s.name, func(b *testing.B) {
			b.Run("closed-success", func(b *testing.B) {
				br := s.new(b, false)
				b.ReportAllocs()
				for b.Loop() {
					if br.Run(Noop) != nil {
						b.Fatal("refused while closed")
					}
				}
			})
			b.Run("open-reject", func(b *testing.B) {
				br := s.new(b, true)
				b.ReportAllocs()
				for b.Loop() {
					if br.Run(Noop) == nil {
						b.Fatal("let through while open")
					}
				}
			})
		})
	}
}

func BenchmarkBreakerParallel(b *testing.B) {
	for _, s := range subjects {
		b.Run(s.name, func(b *testing.B) {
			b.Run("closed-success", func(b *testing.B) {
				br := s.new(b, false)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if br.Run(Noop) != nil {
							b.Error("refused while closed")
							return
						}
					}
				})
			})
			b.Run("open-reject", func(b *testing.B) {
				br := s.new(b, true)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if br.Run(Noop) == nil {
							b.Error("let through while open")
							return
						}
					}
				})
			})
		})
	}
}

func BenchmarkRouterDo(b *testing.B) {
	e, err := NewEngine()
	require.NoError(b, err)
	defer e.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Do(ctx, Service, NoopAttempt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEhgateCountingWindow is ehgate's closed-state success once the
// breaker has seen a failure: successes are then counted for the ratio rule
// (one atomic add), which the fresh breaker of BenchmarkBreaker skips.
func BenchmarkEhgateCountingWindow(b *testing.B) {
	newCounting := func(b *testing.B) Ehgate {
		br, err := bcp.NewBreaker(bcp.BreakerConfig{})
		require.NoError(b, err)
		require.Error(b, br.Call(func() error { return errBoom }))
		return Ehgate{B: br}
	}
	b.Run("single", func(b *testing.B) {
		br := newCounting(b)
		b.ReportAllocs()
		for b.Loop() {
			if br.Run(Noop) != nil {
				b.Fatal("refused while closed")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br := newCounting(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if br.Run(Noop) != nil {
					b.Error("refused while closed")
					return
				}
			}
		})
	})
}

func BenchmarkRouterDoParallel(b *testing.B) {
	e, err := NewEngine()
	require.NoError(b, err)
	defer e.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.Do(ctx, Service, NoopAttempt); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
