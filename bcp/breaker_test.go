package bcp_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/stretchr/testify/require"
)

// exact is a breaker configuration without jitter, so cool-downs are exact.
var exact = bcp.BreakerConfig{
	ConsecutiveFailures: 3,
	FailureRatio:        0.5,
	MinimumRequests:     10,
	Window:              10 * time.Second,
	Buckets:             10,
	OpenTimeout:         time.Second,
	MaxOpenTimeout:      4 * time.Second,
	Multiplier:          2,
	Jitter:              -1,
}

type step struct {
	op   string // "ok", "fail", "ignore", "advance", "force-open", "force-close", "reset"
	n    int
	d    time.Duration
	want bcp.State
}

func run(t *testing.T, b *bcp.Breaker, c *fakeClock, steps []step) {
	t.Helper()
	for i, s := range steps {
		n := max(s.n, 1)
		for range n {
			switch s.op {
			case "ok", "fail", "ignore":
				p, err := b.Allow()
				if err != nil {
					continue // refused: nothing to report
				}
				o := map[string]bcp.Outcome{"ok": bcp.Success, "fail": bcp.Failure, "ignore": bcp.Ignore}[s.op]
				b.Done(p, o)
			case "advance":
				c.Advance(s.d)
			case "force-open":
				b.ForceOpen()
			case "force-close":
				b.ForceClose()
			case "reset":
				b.Reset()
			default:
				t.Fatalf("unknown op %q", s.op)
			}
		}
		require.Equal(t, s.want, b.State(), "step %d (%s ×%d)", i, s.op, n)
	}
}

func TestBreaker_StateMachine(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		steps []step
	}{
		{"opens after consecutive failures", []step{
			{op: "fail", n: 2, want: bcp.StateClosed},
			{op: "fail", want: bcp.StateOpen},
		}},
		{"a success breaks the run", []step{
			{op: "fail", n: 2, want: bcp.StateClosed},
			{op: "ok", want: bcp.StateClosed},
			{op: "fail", n: 2, want: bcp.StateClosed},
			{op: "fail", want: bcp.StateOpen},
		}},
		{"ignore neither counts nor breaks the run", []step{
			{op: "fail", n: 2, want: bcp.StateClosed},
			{op: "ignore", n: 50, want: bcp.StateClosed},
			{op: "fail", want: bcp.StateOpen},
		}},
		{"half-open after the cool-down, probe success closes", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: 999 * ms, want: bcp.StateOpen},
			{op: "ok", want: bcp.StateOpen},
			{op: "advance", d: ms, want: bcp.StateHalfOpen},
			{op: "ok", want: bcp.StateClosed},
		}},
		{"probe failure re-opens for twice as long, up to the maximum", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
			{op: "fail", want: bcp.StateOpen},
			{op: "advance", d: 1999 * ms, want: bcp.StateOpen},
			{op: "advance", d: ms, want: bcp.StateHalfOpen},
			{op: "fail", want: bcp.StateOpen},
			{op: "advance", d: 3999 * ms, want: bcp.StateOpen},
			{op: "advance", d: ms, want: bcp.StateHalfOpen},
			{op: "fail", want: bcp.StateOpen},
			{op: "advance", d: 4 * time.Second, want: bcp.StateHalfOpen}, // capped at 4 s
			{op: "ok", want: bcp.StateClosed},
		}},
		{"re-opening soon after closing keeps the longer cool-down", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
			{op: "ok", want: bcp.StateClosed},
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
		}},
		{"a long closed period starts the cool-downs afresh", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
			{op: "ok", want: bcp.StateClosed},
			{op: "advance", d: time.Minute, want: bcp.StateClosed},
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
		}},
		{"ignored probe frees the slot", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "advance", d: time.Second, want: bcp.StateHalfOpen},
			{op: "ignore", want: bcp.StateHalfOpen},
			{op: "ok", want: bcp.StateClosed},
		}},
		{"ratio over the window opens with enough volume", []step{
			// fail, ok, ok, ... never 3 in a row; 5 failures of 10 = 50 %
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateOpen},
		}},
		{"ratio below the minimum volume does not open", []step{
			{op: "fail", n: 2, want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", n: 2, want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", n: 2, want: bcp.StateClosed}, // 6 of 8 failed, under 10 calls
		}},
		{"failures older than the window fall out of it", []step{
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "advance", d: 11 * time.Second, want: bcp.StateClosed},
			{op: "ok", want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed}, // 1 of 2 in the window: under the volume
			{op: "ok", n: 3, want: bcp.StateClosed},
			{op: "fail", want: bcp.StateClosed},
		}},
		{"successes long before a failure do not dilute the window", []step{
			{op: "fail", want: bcp.StateClosed},
			{op: "ok", n: 1000, want: bcp.StateClosed},
			{op: "advance", d: 100 * time.Second, want: bcp.StateClosed},
			// the 1000 successes are spread over 100 s: about 100 remain in the window
			{op: "fail", n: 2, want: bcp.StateClosed}, {op: "ok", want: bcp.StateClosed},
			{op: "fail", n: 2, want: bcp.StateClosed},
		}},
		{"force open refuses until reset; no timer reopens it", []step{
			{op: "force-open", want: bcp.StateForcedOpen},
			{op: "ok", want: bcp.StateForcedOpen},
			{op: "advance", d: time.Hour, want: bcp.StateForcedOpen},
			{op: "reset", want: bcp.StateClosed},
			{op: "ok", want: bcp.StateClosed},
		}},
		{"force closed never opens", []step{
			{op: "force-close", want: bcp.StateForcedClosed},
			{op: "fail", n: 100, want: bcp.StateForcedClosed},
			{op: "reset", want: bcp.StateClosed},
			{op: "fail", n: 3, want: bcp.StateOpen},
		}},
		{"reset during open cancels the cool-down", []step{
			{op: "fail", n: 3, want: bcp.StateOpen},
			{op: "reset", want: bcp.StateClosed},
			{op: "advance", d: time.Hour, want: bcp.StateClosed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			b, err := bcp.NewBreaker(exact, bcp.WithClock(c))
			require.NoError(t, err)
			run(t, b, c, tt.steps)
		})
	}
}

func TestBreaker_SnapshotSaysSinceWhenAndUntilWhen(t *testing.T) {
	c := newFakeClock()
	b, err := bcp.NewBreaker(exact, bcp.WithClock(c))
	require.NoError(t, err)
	c.Advance(time.Minute)
	for range 3 {
		require.Error(t, b.Call(func() error { return errTransport }))
	}
	s := b.Snapshot()
	require.Equal(t, bcp.StateOpen, s.State)
	require.Equal(t, 3, s.ConsecutiveFailures)
	require.True(t, c.Now().Equal(s.Since), "since %v", s.Since)
	require.True(t, c.Now().Add(time.Second).Equal(s.OpenUntil), "open until %v", s.OpenUntil)
	require.ErrorIs(t, b.Call(func() error { return nil }), bcp.ErrOpen)
}

func TestBreaker_ClosedSuccessPathDoesNotReadTheClock(t *testing.T) {
	c := &countingClock{fakeClock: newFakeClock()}
	b, err := bcp.NewBreaker(exact, bcp.WithClock(c))
	require.NoError(t, err)
	before := c.reads.Load()
	for range 1000 {
		require.NoError(t, b.Call(func() error { return nil }))
	}
	require.Equal(t, before, c.reads.Load())
	// nor does a rejection while open
	for range 3 {
		_ = b.Call(func() error { return errTransport })
	}
	before = c.reads.Load()
	for range 1000 {
		require.ErrorIs(t, b.Call(func() error { return nil }), bcp.ErrOpen)
	}
	require.Equal(t, before, c.reads.Load())
}

type countingClock struct {
	*fakeClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time { c.reads.Add(1); return c.fakeClock.Now() }

func TestBreaker_HalfOpenAdmitsExactlyOneProbeAmongThousandGoroutines(t *testing.T) {
	c := newFakeClock()
	b, err := bcp.NewBreaker(exact, bcp.WithClock(c))
	require.NoError(t, err)
	for range 3 {
		_ = b.Call(func() error { return errTransport })
	}
	c.Advance(time.Second)
	require.Equal(t, bcp.StateHalfOpen, b.State())

	var admitted, refused, other atomic.Int64
	release := make(chan struct{})
	var start, wg sync.WaitGroup
	start.Add(1)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			err := b.Call(func() error {
				admitted.Add(1)
				<-release // the probe is still in flight while the others knock
				return nil
			})
			switch {
			case errors.Is(err, bcp.ErrOpen):
				refused.Add(1)
			case err != nil:
				other.Add(1)
			}
		}()
	}
	start.Done()
	require.Eventually(t, func() bool { return admitted.Load()+refused.Load() == 1000 || refused.Load() == 999 },
		10*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	require.Equal(t, int64(1), admitted.Load())
	require.Equal(t, int64(999), refused.Load())
	require.Zero(t, other.Load())
	require.Equal(t, bcp.StateClosed, b.State())
}

func TestBreaker_OnStateChangeSeesEveryTransitionInOrder(t *testing.T) {
	c := newFakeClock()
	var got []string
	cfg := exact
	cfg.OnStateChange = func(from, to bcp.State) { got = append(got, from.String()+">"+to.String()) }
	b, err := bcp.NewBreaker(cfg, bcp.WithClock(c))
	require.NoError(t, err)
	for range 3 {
		_ = b.Call(func() error { return errTransport })
	}
	c.Advance(time.Second)
	require.NoError(t, b.Call(func() error { return nil }))
	b.ForceOpen()
	b.ForceClose()
	b.Reset()
	require.Equal(t, []string{"closed>open", "open>half-open", "half-open>closed",
		"closed>forced-open", "forced-open>forced-closed", "forced-closed>closed"}, got)
	require.Zero(t, c.pending(), "no timer left behind")
}

func TestBreakerConfig_ValidateNamesTheField(t *testing.T) {
	for field, cfg := range map[string]bcp.BreakerConfig{
		"FailureRatio":    {FailureRatio: 1.5},
		"MinimumRequests": {MinimumRequests: -1},
		"Window":          {Window: -time.Second},
		"Buckets":         {Buckets: 5000},
		"OpenTimeout":     {OpenTimeout: -1},
		"MaxOpenTimeout":  {OpenTimeout: time.Minute, MaxOpenTimeout: time.Second},
		"Multiplier":      {Multiplier: 0.5},
		"Jitter":          {Jitter: 1},
	} {
		_, err := bcp.NewBreaker(cfg)
		require.ErrorContains(t, err, "BreakerConfig."+field)
	}
	_, err := bcp.NewBreaker(bcp.BreakerConfig{})
	require.NoError(t, err)
}

func TestState_String(t *testing.T) {
	require.Equal(t, "closed", bcp.StateClosed.String())
	require.Equal(t, "half-open", bcp.StateHalfOpen.String())
	require.Equal(t, "open", bcp.StateOpen.String())
	require.Equal(t, "forced-open", bcp.StateForcedOpen.String())
	require.Equal(t, "forced-closed", bcp.StateForcedClosed.String())
	require.Equal(t, "State(9)", bcp.State(9).String())
}
