package connector

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/sts"
)

// testClock is real time plus an offset the test advances. A timer fires when its delay has
// passed in real time or when Advance moves the offset past its deadline, whichever is first:
// short delays (retry backoff) run by themselves, long ones (breaker cool-downs, poll
// intervals) when the test says so.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	timers map[*testTimer]struct{}
}

type testTimer struct {
	c        *testClock
	deadline time.Time
	f        func()
	once     sync.Once
	real     *time.Timer
}

func newTestClock() *testClock { return &testClock{timers: map[*testTimer]struct{}{}} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) AfterFunc(d time.Duration, f func()) bcp.Timer {
	t := &testTimer{c: c, f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.deadline = time.Now().Add(c.offset + d)
	c.timers[t] = struct{}{}
	t.real = time.AfterFunc(d, t.fire)
	return t
}

func (t *testTimer) fire() {
	t.c.mu.Lock()
	_, pending := t.c.timers[t]
	delete(t.c.timers, t)
	t.c.mu.Unlock()
	if pending {
		t.once.Do(func() { go t.f() })
	}
}

func (t *testTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, pending := t.c.timers[t]
	delete(t.c.timers, t)
	t.real.Stop()
	return pending
}

// Advance moves the clock forward and fires the timers now due.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	now := time.Now().Add(c.offset)
	var due []*testTimer
	for t := range c.timers {
		if !t.deadline.After(now) {
			t.real.Stop()
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.fire()
	}
}

var (
	platformOnce sync.Once
	sharedPT     *platformtest.Platform
	sharedID     *platformtest.Identity
	platformErr  error
)

// testPlatform is one platform for the package's tests (its keys are costly); every test
// clears the faults it injects.
func testPlatform(t testing.TB) (*platformtest.Platform, *platformtest.Identity) {
	t.Helper()
	platformOnce.Do(func() {
		sharedPT, platformErr = platformtest.Start(platformtest.Config{Patients: 60, Seed: 7, ActiveBCP: true}) // the breaker's own failover
		if platformErr == nil {
			sharedID, platformErr = sharedPT.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
		}
	})
	require.NoError(t, platformErr)
	return sharedPT, sharedID
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPT != nil {
		sharedPT.Close()
	}
	os.Exit(code)
}

type testEnv struct {
	p      *platformtest.Platform
	c      *Client
	clock  *testClock
	events <-chan Event
	logs   *observer.ObservedLogs
}

func testConfig(t testing.TB, p *platformtest.Platform, id *platformtest.Identity) Config {
	cred, err := sts.NewCredential(id.Certificate, id.Key, nil, "test identity", sts.LoadOptions{})
	require.NoError(t, err)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return Config{
		ServiceListURL:   p.ServiceListBaseURL(),
		ServiceListRoots: p.ServiceListRoots(),
		TLSRoots:         p.CACertPool(),
		STSRoots:         p.STSRoots(),
		Credentials:      Credentials{Identification: cred},
		Identity:         Identity{NIHII: id.NIHII, SSIN: id.SSIN},
		Package:          PackageLicense{Name: "ehgate-test", Username: "vendor", Password: "licence"},
		CacheDir:         t.TempDir(),
		CacheKeys:        [][]byte{key},
		StatusFeedURL:    p.StatusFeedURL(),
		ServiceListPoll:  time.Second,
		StatusPoll:       time.Second, // advanceUntil steps by it: the clock stays within the platform's skew
		StatusComponents: map[string][]string{
			"Insurability":         {ServiceInsurability},
			"Generic Insurability": {ServiceGenericInsurability},
			"eHealthBox":           {ServiceEHealthBox},
			"ETK Depot":            {ServiceETK},
		},
		BCP: bcp.Config{
			Breaker: bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: 2 * time.Second, Jitter: -1},
			Router:  bcp.RouterConfig{HoldDown: -1},
		},
	}
}

func newTestEnv(t *testing.T, mutate ...func(*Config)) *testEnv {
	t.Helper()
	p, id := testPlatform(t)
	t.Cleanup(func() {
		for _, s := range p.Sites() {
			s.Clear("")
		}
		p.Site(platformtest.ControlSite).Clear("")
		for _, comp := range []string{"Insurability", "Generic Insurability", "eHealthBox", "ETK Depot"} {
			p.SetComponentStatus(comp, platformtest.StatusOperational)
		}
	})
	cfg := testConfig(t, p, id)
	for _, m := range mutate {
		m(&cfg)
	}
	core, logs := observer.New(zap.DebugLevel)
	clock := newTestClock()
	c, err := New(cfg, WithClock(clock), WithLogger(zap.New(core)))
	require.NoError(t, err)
	events, stop := c.Subscribe(1024)
	t.Cleanup(func() {
		stop()
		require.NoError(t, c.Close())
	})
	return &testEnv{p: p, c: c, clock: clock, events: events, logs: logs}
}

// waitMode waits until service is in mode (polling every 2 ms: the mode tables of the
// client, not the event stream, whose older events may still be buffered).
func (e *testEnv) waitMode(t *testing.T, service string, mode Mode) Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, cause := e.c.Mode(service)
		if m == mode {
			return Event{Kind: EventModeChanged, Service: service, Mode: mode, Cause: cause}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached mode %s (now %s: %s)", service, mode, m, cause)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// advanceUntil moves the clock by step until cond holds: background loops re-arm their
// timers after each run, so one Advance may land before a loop has armed its next timer.
func (e *testEnv) advanceUntil(t *testing.T, step time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition never met: %+v", e.c.Status().Feed)
		}
		e.clock.Advance(step)
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *testEnv) inMode(service string, mode Mode) func() bool {
	return func() bool { m, _ := e.c.Mode(service); return m == mode }
}

// waitEvent waits for the first event satisfying ok.
func (e *testEnv) waitEvent(t *testing.T, what string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event", what)
		}
	}
}

// patients returns n known, insured patients.
func patients(p *platformtest.Platform, n int) []platformtest.Patient {
	var out []platformtest.Patient
	for _, pt := range p.Patients() {
		if pt.Known && pt.Insured && len(out) < n {
			out = append(out, pt)
		}
	}
	return out
}

func counts(p *platformtest.Platform, service string) int {
	n := 0
	for k, v := range p.Counters() {
		if k.Service == service {
			n += v
		}
	}
	return n
}

// noPersonalData fails when any SSIN or answer field appears in a log entry at info or above.
func noPersonalData(t *testing.T, logs *observer.ObservedLogs, pts []platformtest.Patient) {
	t.Helper()
	for _, entry := range logs.FilterLevelExact(zap.InfoLevel).All() {
		checkEntry(t, entry, pts)
	}
	for _, entry := range logs.FilterLevelExact(zap.WarnLevel).All() {
		checkEntry(t, entry, pts)
	}
	for _, entry := range logs.FilterLevelExact(zap.ErrorLevel).All() {
		checkEntry(t, entry, pts)
	}
}

func checkEntry(t *testing.T, entry observer.LoggedEntry, pts []platformtest.Patient) {
	t.Helper()
	text := entry.Message
	for k, v := range entry.ContextMap() {
		text += " " + k + "=" + fmtAny(v)
	}
	for _, pt := range pts {
		require.NotContains(t, text, pt.SSIN, "an SSIN was logged")
		if pt.PaymentApproval != "" {
			require.NotContains(t, text, pt.PaymentApproval, "an answer was logged")
		}
	}
}

func fmtAny(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	b, _ := jsonMarshal(v)
	return string(b)
}

func TestClient_LiveAnswerIsStoredAndBusinessAnswersAreNotOutages(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	require.False(t, res.Degraded)
	require.Equal(t, pt.SSIN, res.Answer.CareReceiver.SSIN)
	require.Equal(t, pt.PaymentApproval, res.Answer.PaymentApproval)
	require.Equal(t, ThirdPartyPayerRegime(pt.Regime), res.Answer.Coverages[0].Entitlement.ThirdPartyPayerRegime)
	require.True(t, res.Answer.Insured(env.clock.Now()))
	require.Contains(t, res.Endpoint, env.p.URL(ServiceInsurability, "ehealth"))

	var unknown platformtest.Patient
	for _, p := range env.p.Patients() {
		if !p.Known {
			unknown = p
			break
		}
	}
	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: unknown.SSIN})
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, "01", be.Code, "platformtest's ReturnCode Major for an unknown patient")
	require.NotContains(t, err.Error(), unknown.SSIN)
	m, _ := env.c.Mode(ServiceInsurability)
	require.Equal(t, ModeNormal, m, "a business answer is not an outage")

	g, err := env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, g.Source)
	require.Len(t, g.Answer.Items, 1)
	require.Equal(t, pt.CT1, g.Answer.Items[0].CT1)
	_, err = env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: unknown.SSIN})
	require.ErrorAs(t, err, &be)
	require.Equal(t, "NO_IO_ERROR", be.Code)

	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: "93051822362"})
	require.ErrorIs(t, err, ErrInvalidSSIN)
	noPersonalData(t, env.logs, env.p.Patients())
}

func TestClient_PrimarySiteDown_FailsOverWithoutCallerError(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 5)
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)

	env.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503})
	for _, pt := range pts {
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err, "no caller sees the primary site's failure")
		require.Equal(t, SourceLive, res.Source)
		require.Contains(t, res.Endpoint, env.p.URL(ServiceInsurability, "mycarenet"))
	}
	env.waitMode(t, ServiceInsurability, ModeFailedOver)
	st := env.c.Status()
	for _, s := range st.Services {
		if s.Name == ServiceInsurability {
			require.Equal(t, ModeFailedOver, s.Mode)
			require.Contains(t, s.Serving, env.p.URL(ServiceInsurability, "mycarenet"))
		}
	}
	noPersonalData(t, env.logs, pts)
}

func TestClient_AllSitesDown_CachedAnswersMarked_WritesQueued_ThenReplayedOnceAndFailback(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 3)
	before, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	r0, err := env.c.SendMessage(ctx, testMessage("", pts[0].SSIN, []byte("claim 0")))
	require.NoError(t, err)
	require.True(t, r0.Delivered)

	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
		s.Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 502})
	}
	env.clock.Advance(time.Minute)
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err, "a patient the cache holds gets an answer")
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded)
	require.Equal(t, before.AsOf.Unix(), res.AsOf.Unix())
	require.Equal(t, before.Answer.PaymentApproval, res.Answer.PaymentApproval)
	env.waitMode(t, ServiceInsurability, ModeFallback)

	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[1].SSIN})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorIs(t, err, bcp.ErrUnavailable, "the error names the platform's failure")
	require.NotContains(t, err.Error(), pts[1].SSIN)

	var keys []string
	for i := 1; i < 3; i++ {
		r, err := env.c.SendMessage(ctx, testMessage("", pts[i].SSIN, []byte{'c', byte(i)}))
		require.NoError(t, err)
		require.True(t, r.Queued)
		keys = append(keys, r.Key)
	}
	require.Equal(t, 2, env.c.Status().Outbox.Pending)

	for _, s := range env.p.Sites() {
		s.Clear("")
	}
	env.clock.Advance(10 * time.Second) // breakers half-open, replay tick
	env.waitEvent(t, "replay done", func(ev Event) bool { return ev.Kind == EventReplay && ev.Replay.Done && ev.Replay.Pending == 0 })
	// Failback: once the default endpoints' breakers let a probe through, calls go there again.
	env.advanceUntil(t, 3*time.Second, func() bool {
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
		require.NoError(t, err)
		m, _ := env.c.Mode(ServiceInsurability)
		return res.Source == SourceLive && m == ModeNormal
	})
	env.advanceUntil(t, 3*time.Second, func() bool {
		r, err := env.c.SendMessage(ctx, testMessage("", "", []byte("after the outage")))
		require.NoError(t, err)
		keys = append(keys, r.Key)
		m, _ := env.c.Mode(ServiceEHealthBox)
		return r.Delivered && m == ModeNormal
	})
	rep, ok := env.c.Regularisation(ServiceInsurability) // kept before the mode turns normal
	require.True(t, ok)
	require.Equal(t, 1, rep.Checked)
	require.Equal(t, 1, rep.Unchanged)

	seen := map[string]int{}
	for _, w := range env.p.Writes() {
		seen[w.Key]++
	}
	require.Equal(t, 1, seen[r0.Key])
	for _, k := range keys {
		require.Equal(t, 1, seen[k], "each queued write delivered exactly once")
	}
	require.Zero(t, env.c.Status().Outbox.Pending)
	noPersonalData(t, env.logs, pts)
}

func TestClient_StatusFeedMajorOutage_FallbackWithoutNetworkAttempt(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)

	env.p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeFallback)) // the feed poller's interval
	_, cause := env.c.Mode(ServiceInsurability)
	require.Equal(t, CauseFeedOutage, cause)

	n := counts(env.p, platformtest.ServiceInsurability)
	for i := 0; i < 20; i++ {
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
		require.Equal(t, SourceCache, res.Source)
		require.True(t, res.Degraded)
	}
	r, err := env.c.SendMessage(ctx, testMessage("", "", []byte("x")))
	require.NoError(t, err)
	require.False(t, r.Queued, "only the mapped service is in fallback")
	require.Equal(t, n, counts(env.p, platformtest.ServiceInsurability), "no network attempt in fallback")

	env.p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeNormal))
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
}

func TestClient_UnreadableStatusFeedChangesNothing(t *testing.T) {
	env := newTestEnv(t)
	env.p.Site(platformtest.ControlSite).Inject(platformtest.ServiceStatusFeed, platformtest.Fault{Kind: platformtest.FaultMalformed})
	env.advanceUntil(t, time.Second, func() bool { return env.c.Status().Feed.LastError != "" })
	m, _ := env.c.Mode(ServiceInsurability)
	require.Equal(t, ModeNormal, m)
}

func TestClient_OperatorActivation(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)

	require.NoError(t, env.c.ActivateFallback(ServiceInsurability, "network maintenance"))
	ev := env.waitMode(t, ServiceInsurability, ModeFallback)
	require.Contains(t, ev.Cause, "network maintenance")
	n := counts(env.p, platformtest.ServiceInsurability)
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded)
	require.Equal(t, n, counts(env.p, platformtest.ServiceInsurability))
	for _, s := range env.c.Status().Services {
		if s.Name == ServiceInsurability {
			require.Equal(t, "network maintenance", s.Operator)
		}
	}
	logged := env.logs.FilterMessage("connector: service mode changed").All()
	require.NotEmpty(t, logged)

	require.NoError(t, env.c.EndFallback(ServiceInsurability))
	env.waitMode(t, ServiceInsurability, ModeNormal)
	rep, ok := env.c.Regularisation(ServiceInsurability)
	require.True(t, ok, "answers served during the operator's fallback are checked again")
	require.Equal(t, 1, rep.Unchanged)
}

func TestClient_Drill(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 3)
	for _, pt := range pts[:2] {
		_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	type result struct {
		rep DrillReport
		err error
	}
	done := make(chan result, 1)
	drillCtx, endDrill := context.WithCancel(ctx)
	defer endDrill()
	go func() {
		rep, err := env.c.Drill(drillCtx, []string{ServiceInsurability}, time.Hour)
		done <- result{rep, err}
	}()
	env.waitMode(t, ServiceInsurability, ModeFallback)
	for _, pt := range pts {
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		if pt.SSIN == pts[2].SSIN {
			require.ErrorIs(t, err, ErrNotCached)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, SourceCache, res.Source)
	}
	endDrill() // ends the drill now (the shadow calls are waited for), without moving the clock
	r := <-done
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, 3, r.rep.Calls)
	require.Equal(t, 2, r.rep.Answered)
	require.Equal(t, 2, r.rep.Matches, "shadow live calls agree with the store: %+v", r.rep)
	require.Len(t, r.rep.Misses, 1)
	require.NotContains(t, r.rep.Misses[0].Patient, pts[2].SSIN)
	env.waitMode(t, ServiceInsurability, ModeNormal)
	noPersonalData(t, env.logs, pts)
}

func TestClient_ETK(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	if err := env.p.RegisterETK("NIHII-PHARMACY", "12345678", "", "Apotheek Noord"); err != nil {
		require.ErrorContains(t, err, "already registered") // -count=n reuses the platform
	}
	id := Identifier{Type: "NIHII-PHARMACY", Value: "12345678"}
	res, err := env.c.ETK(ctx, id)
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	require.Len(t, res.ETKs, 1)
	require.Equal(t, "NIHII-PHARMACY=12345678", res.ETKs[0].Certificate.Subject.CommonName)

	n := counts(env.p, platformtest.ServiceETK)
	res, err = env.c.ETK(ctx, id)
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source, "a fresh ETK is served from the store")
	require.False(t, res.Degraded)
	require.Equal(t, n, counts(env.p, platformtest.ServiceETK))

	env.p.Site("ehealth").Inject(platformtest.ServiceETK, platformtest.Fault{Kind: platformtest.FaultRefuse})
	env.clock.Advance(9 * time.Hour) // past RefreshAfter: served, refreshed in the background
	res, err = env.c.ETK(ctx, id)
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	env.advanceUntil(t, time.Second, env.inMode(ServiceETK, ModeFallback)) // the refresh failed
	res, err = env.c.ETK(ctx, id)
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded, "the depot is unreachable: the answer says so")

	notAfter := res.ETKs[0].Certificate.NotAfter

	_, err = env.c.ETK(ctx, Identifier{Type: "NIHII-PHARMACY", Value: "87654321"})
	require.ErrorIs(t, err, ErrNotCached, "depot down and nothing stored")

	env.p.Site("ehealth").Clear("")
	// The breaker's open timeout runs out on the test clock, but the timer's function runs
	// on its own goroutine after Advance returns (testClock.fire): a call made at once may
	// still meet the open breaker (the flake of issue 17 item 10). Advance until the depot
	// is asked again, which a state tells, not a speed.
	var be *BusinessError
	env.advanceUntil(t, time.Minute, func() bool {
		_, err = env.c.ETK(ctx, Identifier{Type: "NIHII-PHARMACY", Value: "87654321"})
		return errors.As(err, &be)
	})
	require.ErrorAs(t, err, &be, "an unknown party is the depot's answer")

	env.p.Site("ehealth").Inject(platformtest.ServiceETK, platformtest.Fault{Kind: platformtest.FaultRefuse})
	env.clock.Advance(notAfter.Sub(env.clock.Now()) + time.Hour) // past the certificate's NotAfter
	_, err = env.c.ETK(ctx, id)
	require.ErrorIs(t, err, ErrNotCached, "an expired certificate is never served")
}

func TestClient_ConfigErrorsNameTheField(t *testing.T) {
	_, err := New(Config{})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "Environment", ce.Field)
	require.True(t, errors.Is(err, ErrConfig))
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func TestClient_CloseStopsEveryGoroutine(t *testing.T) {
	p, id := testPlatform(t)
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	c, err := New(testConfig(t, p, id), WithClock(newTestClock()))
	require.NoError(t, err)
	ctx := context.Background()
	pt := patients(p, 1)[0]
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.NoError(t, c.ActivateFallback(ServiceEHealthBox, "test"))
	_, err = c.SendMessage(ctx, testMessage("", "", []byte("x")))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrClosed)
	goleak.VerifyNone(t, opts...)
}

func TestClient_CallAndGenericFallback(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	body := insurabilityBody(t, InsurabilityRequest{SSIN: pt.SSIN, Date: env.clock.Now(), RequestType: RequestInformation}, env.c.origin, "4242")
	el, err := env.c.Call(ctx, ServiceInsurability, ActionInsurability, body)
	require.NoError(t, err)
	require.Equal(t, "GetInsurabilityForPharmacistResponse", el.Tag)
	require.Equal(t, pt.SSIN, textAt(el, "InsurabilityResponse", "CareReceiver", "Ssin"))

	env.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-03001"})
	_, err = env.c.Call(ctx, ServiceInsurability, ActionInsurability, body)
	var fault *soap.Fault
	require.ErrorAs(t, err, &fault, "a non-switching fault comes back as it is")
	require.True(t, fault.HasCode("SOA-03001"))

	_, err = env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceGenericInsurability, platformtest.Fault{Kind: platformtest.FaultMalformed})
	}
	res, err := env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err, "malformed answers are the endpoints' failure: the store answers")
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded)
}

func TestClient_ETKMatchingFollowsEachApplication(t *testing.T) {
	env := newTestEnv(t)
	for _, app := range []string{"APP-A", "APP-B"} {
		if err := env.p.RegisterETK("CBE", "0999000111", app, "Lab "+app); err != nil {
			require.ErrorContains(t, err, "already registered")
		}
	}
	res, err := env.c.ETK(context.Background(), Identifier{Type: "CBE", Value: "0999000111"})
	require.NoError(t, err)
	require.Len(t, res.ETKs, 2)
	apps := []string{res.ETKs[0].Identifier.ApplicationID, res.ETKs[1].Identifier.ApplicationID}
	require.ElementsMatch(t, []string{"APP-A", "APP-B"}, apps)
	for _, e := range res.ETKs {
		require.Equal(t, "CBE=0999000111", e.Certificate.Subject.CommonName)
		require.Equal(t, []string{e.Identifier.ApplicationID}, e.Certificate.Subject.OrganizationalUnit)
	}
}

// An answer the insurer has changed since it was stored (simulated by rewriting the stored
// answer) is reported by the drill as a mismatch and by regularisation as a difference.
func TestClient_ChangedAnswerIsReportedByDrillAndRegularisation(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	req, err := InsurabilityRequest{SSIN: pt.SSIN}.normalize(env.clock.Now())
	require.NoError(t, err)
	stale := res.Answer
	stale.PaymentApproval = "PA-OLD"
	put(env.c, ctx, functionInsurability, req.cacheKey(), stored[InsurabilityAnswer, InsurabilityRequest]{Request: req, Answer: stale, AsOf: res.AsOf}, time.Time{}, nil)

	drillCtx, endDrill := context.WithCancel(ctx)
	done := make(chan DrillReport, 1)
	go func() {
		rep, _ := env.c.Drill(drillCtx, []string{ServiceInsurability}, time.Hour)
		done <- rep
	}()
	env.waitMode(t, ServiceInsurability, ModeFallback)
	got, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, "PA-OLD", got.Answer.PaymentApproval)
	endDrill()
	rep := <-done
	require.Len(t, rep.Mismatches, 1)
	require.Equal(t, []string{"PaymentApproval"}, rep.Mismatches[0].Fields)
	env.waitMode(t, ServiceInsurability, ModeNormal)

	require.NoError(t, env.c.ActivateFallback(ServiceInsurability, "test"))
	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.NoError(t, env.c.EndFallback(ServiceInsurability))
	env.waitMode(t, ServiceInsurability, ModeNormal)
	reg, ok := env.c.Regularisation(ServiceInsurability)
	require.True(t, ok)
	require.Len(t, reg.Changed, 1)
	d := reg.Changed[0]
	require.Equal(t, []string{"PaymentApproval"}, d.Fields)
	require.Equal(t, "PA-OLD", d.Served.(InsurabilityAnswer).PaymentApproval)
	require.Equal(t, pt.PaymentApproval, d.Live.(InsurabilityAnswer).PaymentApproval)
	res, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, pt.PaymentApproval, res.Answer.PaymentApproval)
	noPersonalData(t, env.logs, []platformtest.Patient{pt})
}

// Hanging endpoints do not keep the counter waiting: past the call's live budget the store
// answers (AttemptTimeout alone would wait a minute per endpoint). The budget leaves room for
// the first call's token request and TLS handshakes on a loaded machine.
func TestClient_HangingSitesAnswerFromTheStoreWithinTheCallBudget(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Policies.Insurability.AttemptTimeout = time.Minute
		c.Policies.Insurability.CallTimeout = 3 * time.Second
	})
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHang})
	}
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded)
	m, cause := env.c.Mode(ServiceInsurability)
	require.Equal(t, ModeFallback, m)
	require.Equal(t, CauseCallTimeout, cause)
}

// A token the platform refuses (SOA-01001) is renewed once; when every site still refuses,
// the store answers.
func TestClient_RefusedTokenIsRenewedOnceThenTheStoreAnswers(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)

	env.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultExpiredToken})
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err, "the other site accepts the token")
	require.Equal(t, SourceLive, res.Source)

	env.p.Site("mycarenet").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultExpiredToken})
	issued := env.p.TokensIssued()
	res, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.Equal(t, issued+1, env.p.TokensIssued(), "one renewal, not one per endpoint")
}

// A Major Outage reading does not outlive the feed: once the status site has been unreadable
// for three poll intervals, the breakers decide again; and an operator can end it at once.
func TestClient_StaleOrOverriddenMajorOutageNoLongerHoldsFallback(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)

	env.p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeFallback))
	require.NoError(t, env.c.EndFallback(ServiceInsurability))
	env.waitMode(t, ServiceInsurability, ModeNormal)
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source, "the operator has the last word")

	env.p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	env.advanceUntil(t, time.Second, func() bool { return feedStatus(env.c, ServiceInsurability) == "Operational" })
	env.p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeFallback))

	env.p.Site(platformtest.ControlSite).Inject(platformtest.ServiceStatusFeed, platformtest.Fault{Kind: platformtest.FaultMalformed})
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeNormal))
	_, cause := env.c.Mode(ServiceInsurability)
	require.Contains(t, []string{CauseFeedStale, CauseReplayed}, cause)
	n := counts(env.p, platformtest.ServiceInsurability)
	res, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	require.Greater(t, counts(env.p, platformtest.ServiceInsurability), n)
}

func feedStatus(c *Client, service string) string {
	for _, s := range c.Status().Services {
		if s.Name == service {
			return s.FeedStatus
		}
	}
	return ""
}

// Close while counters call ETK with stale entries (each starting a background refresh) and
// insurability: no WaitGroup misuse, no race, calls after Close fail with ErrClosed.
func TestClient_CloseWhileCallsRun(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	if err := env.p.RegisterETK("NIHII-PHARMACY", "11223344", "", "Apotheek Zuid"); err != nil {
		require.ErrorContains(t, err, "already registered")
	}
	id := Identifier{Type: "NIHII-PHARMACY", Value: "11223344"}
	_, err := env.c.ETK(ctx, id)
	require.NoError(t, err)
	pt := patients(env.p, 1)[0]
	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	env.clock.Advance(9 * time.Hour) // every ETK call now starts a background refresh

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				_, err := env.c.ETK(ctx, id)
				if errors.Is(err, ErrClosed) {
					return
				}
			}
		}()
	}
	require.NoError(t, env.c.Close())
	wg.Wait()
	_, err = env.c.ETK(ctx, id)
	require.ErrorIs(t, err, ErrClosed)
}

// Many counters refused at once renew the token once, not once each.
func TestClient_ConcurrentRefusalsRenewOnce(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 20)
	for _, pt := range pts {
		_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultExpiredToken})
	}
	issued := env.p.TokensIssued()
	var wg sync.WaitGroup
	for _, pt := range pts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
			if err != nil || res.Source != SourceCache {
				t.Errorf("patient held by the store not answered from it: %v", err)
			}
		}()
	}
	wg.Wait()
	// One renewal per refused token: callers refused for a token already replaced retry with the
	// new one. (Every token is refused here, so a caller that started late with the new token
	// may renew that one in turn: a few generations, never one renewal per caller.)
	renewals := env.p.TokensIssued() - issued
	require.GreaterOrEqual(t, renewals, 1)
	require.Less(t, renewals, len(pts)/2, "renewals: %d for %d callers", renewals, len(pts))
}

// testMessage is the eHealthBox message the write tests send: key "" = a generated
// PublicationId, partition orders it, content is the document.
func testMessage(key, partition string, content []byte) EHealthBoxMessage {
	return EHealthBoxMessage{PublicationID: key, Partition: partition, Title: "test message",
		Recipients: []EHealthBoxAddress{{ID: "10987654321", Type: "NIHII", Quality: "DOCTOR"}}, Content: content}
}
