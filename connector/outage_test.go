package connector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// waitFor polls cond every 2 ms for up to 15 s (a state, not a speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func regularisationPending(c *Client, service string) int {
	for _, s := range c.Status().Services {
		if s.Name == service {
			return s.Regularisation
		}
	}
	return 0
}

// A SOAP fault whose code does not switch is the platform's refusal: a *BusinessError with
// the faultstring and every code under detail (a switching code deeper than detail/*/Code
// included, which does not switch), no stored answer, no failover, no mode change, nothing
// to regularise (issue 17 items 1 and 6).
func TestClient_RefusalIsABusinessErrorNotAnOutage(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err, "warm-up: the answer is stored")
	var zero InsurabilityResult
	require.Equal(t, SourceNone, zero.Source, "the zero value means no answer")

	for _, nested := range []string{"MCN-00042", "SOA-02001"} {
		backup := env.p.Count("mycarenet", platformtest.ServiceInsurability, platformtest.OutcomeOK)
		env.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-03001", NestedCode: nested})
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.ErrorIs(t, err, ErrBusiness)
		require.NotErrorIs(t, err, ErrNotCached)
		require.NotErrorIs(t, err, bcp.ErrUnavailable)
		var be *BusinessError
		require.ErrorAs(t, err, &be)
		require.Equal(t, "SOA-03001", be.Code)
		require.Equal(t, []string{"SOA-03001", nested}, be.Codes)
		require.Equal(t, "injected fault: service unavailable", be.Message)
		var f *soap.Fault
		require.ErrorAs(t, err, &f, "the fault itself stays reachable")
		require.NotContains(t, err.Error(), pt.SSIN)
		require.Equal(t, SourceNone, res.Source, "no stored answer replaces a refusal")
		require.False(t, res.Degraded)
		require.Equal(t, backup, env.p.Count("mycarenet", platformtest.ServiceInsurability, platformtest.OutcomeOK), "a refusal does not fail over, even with %s nested", nested)
		m, _ := env.c.Mode(ServiceInsurability)
		require.Equal(t, ModeNormal, m)
		require.Zero(t, regularisationPending(env.c, ServiceInsurability))
	}
}

// The caller's cancel returns ctx.Err() at once: no stored answer, no regularisation entry,
// no breaker move, no mode change (issue 17 item 3).
func TestClient_CallerCancelRecordsNothing(t *testing.T) {
	env := newTestEnv(t)
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHang})
	}
	site := env.p.Site("ehealth")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		res InsurabilityResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		done <- result{res, err}
	}()
	waitFor(t, "the request reaches the platform", func() bool { return site.Waiting() > 0 })
	cancel()
	r := <-done
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, SourceNone, r.res.Source)
	require.Zero(t, regularisationPending(env.c, ServiceInsurability))
	m, _ := env.c.Mode(ServiceInsurability)
	require.Equal(t, ModeNormal, m)
	for _, s := range env.c.Status().Services {
		if s.Name == ServiceInsurability {
			for _, ep := range s.Endpoints {
				require.Equal(t, "closed", ep.Breaker, "%s", ep.URL)
			}
		}
	}
	// Already cancelled: nothing is tried.
	before := site.Waiting()
	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, before, site.Waiting())
}

// A caller's deadline means "answer within this time": the live part ends shortly before it
// and the stored answer (marked) comes back before the deadline (issue 17 item 3).
func TestClient_CallerDeadlineGetsTheStoredAnswerInTime(t *testing.T) {
	env := newTestEnv(t) // CallTimeout 10 s: the caller's 6 s deadline is the tighter one
	pt := patients(env.p, 1)[0]
	live, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHang})
	}
	// 6 s: the live part ends 500 ms before the deadline, which leaves the store read ample
	// time even on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, ctx.Err(), "the answer came back before the caller's deadline")
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.True(t, res.Degraded)
	require.Equal(t, live.Answer.PaymentApproval, res.Answer.PaymentApproval)
	require.Equal(t, 1, regularisationPending(env.c, ServiceInsurability), "an answer served from the store is checked again later")
	m, _ := env.c.Mode(ServiceInsurability)
	require.NotEqual(t, ModeFallback, m, "the caller's short deadline says nothing of the platform")
}

// After Close every method returns ErrClosed; a call in flight at Close is cancelled and
// returns ErrClosed, not a stored answer (issue 17 item 4).
func TestClient_CloseCancelsCallsInFlightAndRefusesTheRest(t *testing.T) {
	env := newTestEnv(t)
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHang})
	}
	done := make(chan error, 1)
	var res InsurabilityResult
	go func() {
		var err error
		res, err = env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
		done <- err
	}()
	waitFor(t, "the request reaches the platform", func() bool { return env.p.Site("ehealth").Waiting() > 0 })
	require.NoError(t, env.c.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	require.Equal(t, SourceNone, res.Source)

	ctx := context.Background()
	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrClosed)
	_, err = env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrClosed)
	_, err = env.c.ETK(ctx, Identifier{Type: "NIHII-PHARMACY", Value: "12345678"})
	require.ErrorIs(t, err, ErrClosed)
	_, err = env.c.SendMessage(ctx, testMessage("", "", []byte("x")))
	require.ErrorIs(t, err, ErrClosed)
	_, err = env.c.Submit(ctx, Write{Service: ServiceEHealthBox, Body: []byte("<x/>"), IdempotencyKey: "k"})
	require.ErrorIs(t, err, ErrClosed)
	_, err = env.c.Drill(ctx, nil, time.Second)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, env.c.ActivateFallback(ServiceInsurability, "test"), ErrClosed)
	require.ErrorIs(t, env.c.EndFallback(ServiceInsurability), ErrClosed)
	_, err = env.c.Purge(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, env.c.Close(), "Close twice is fine")
}

// Service names are constants; a typo is an error, never a phantom service in fallback; the
// acceptance defaults read the acceptance feed and map the components they know (issue 17
// item 5).
func TestClient_NamesAreCheckedAndDefaultsMapTheFeed(t *testing.T) {
	env := newTestEnv(t, func(cfg *Config) { cfg.StatusComponents = DefaultConfigFor(Acceptance).StatusComponents })
	err := env.c.ActivateFallback("insurabilty:v2", "typo")
	require.ErrorIs(t, err, ErrRequest)
	require.ErrorIs(t, env.c.EndFallback("etk"), ErrRequest)
	_, err = env.c.Drill(context.Background(), []string{"genericinsurabilty:v1"}, time.Second)
	require.ErrorIs(t, err, ErrRequest)
	for _, s := range env.c.Status().Services {
		require.NotEqual(t, "insurabilty:v2", s.Name, "no phantom service")
	}

	acc := DefaultConfigFor(Acceptance)
	require.Equal(t, Acceptance, acc.Environment)
	require.Equal(t, AcceptanceStatusFeedURL, acc.StatusFeedURL)
	require.Equal(t, []string{ServiceInsurability}, acc.StatusComponents[ComponentInsurability])
	require.Equal(t, ProductionStatusFeedURL, DefaultConfig().StatusFeedURL)

	cfg := testConfig(t, env.p, sharedID)
	cfg.StatusComponents = map[string][]string{ComponentInsurability: {"insurabilty:v2"}}
	var ce *ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	require.Equal(t, "StatusComponents", ce.Field)

	// The default mapping drives the modes from the platform's feed.
	env.p.SetComponentStatus(ComponentInsurability, platformtest.StatusMajorOutage)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeFallback))
	env.p.SetComponentStatus(ComponentInsurability, platformtest.StatusOperational)
	env.advanceUntil(t, time.Second, func() bool { m, _ := env.c.Mode(ServiceInsurability); return m != ModeFallback })
}

// New does not wait on the network: with the list's server hanging and nothing stored or
// builtin, it returns while the fetch is still held; calls then fail with the list's last
// error, not "unknown service"; the list loads in the background (issue 17 item 9).
func TestNew_DoesNotWaitForTheServiceList(t *testing.T) {
	p, id := testPlatform(t)
	control := p.Site(platformtest.ControlSite)
	defer control.Clear("")
	control.Inject(platformtest.ServiceList, platformtest.Fault{Kind: platformtest.FaultHang})
	cfg := testConfig(t, p, id)
	cfg.StatusFeedURL = ""
	clock := newTestClock()
	c, err := New(cfg, WithClock(clock))
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "the list's fetch is held by the server after New returned", func() bool { return control.Waiting() > 0 })

	// The server now refuses: the list's last error is a fetch error.
	control.Inject(platformtest.ServiceList, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503})
	waitFor(t, "the first fetch ended", func() bool { return c.loader.Status().LastErr != nil })
	pt := patients(p, 1)[0]
	_, err = c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrNoServiceList)
	require.ErrorIs(t, err, ErrNotCached)
	require.NotContains(t, err.Error(), "unknown service")
	var fe *bcp.FetchError
	require.ErrorAs(t, err, &fe, "the list's last error says why: %v", err)

	control.Clear("")
	deadline := time.Now().Add(15 * time.Second)
	for c.loader.Current() == nil {
		require.True(t, time.Now().Before(deadline), "the list never loaded")
		clock.Advance(cfg.ServiceListPoll)
		time.Sleep(5 * time.Millisecond)
	}
	res, err := c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	require.False(t, errors.Is(err, ErrNoServiceList))
}
