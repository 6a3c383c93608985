package bcp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const (
	svcKey   = "uddi:ehealth-fgov-be:business:insurability:v2"
	svcShort = "insurability:v2"
)

func listOf(urls ...string) *bcp.ServiceList {
	s := bcp.Service{ID: svcKey, Name: "Insurability"}
	for i, u := range urls {
		s.Endpoints = append(s.Endpoints, bcp.Endpoint{Service: svcKey, URL: u, Order: i, Status: bcp.StatusActive})
	}
	return &bcp.ServiceList{ID: "test", Services: []bcp.Service{s}}
}

// server is a loopback endpoint that counts its hits.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func okHandler(w http.ResponseWriter, _ *http.Request) {
	doc := soap.NewEnvelope(etree.NewElement("GetInsurabilityForPharmacistResponse"))
	b, _ := soap.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(b)
}

func faultHandler(code string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, _ := soap.Marshal(soap.NewFaultEnvelope(&soap.Fault{Code: "soapenv:Server", String: "down", Codes: []string{code}}))
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(b)
	}
}

func statusHandler(code int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "<html><body>Service Unavailable</body></html>")
	}
}

// hangHandler never answers; reading the body first lets the server notice
// the client hanging up (and cancel r.Context()).
func hangHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// refusedURL is a loopback address nobody listens on any more.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String() + "/Insurability/v2"
	require.NoError(t, l.Close())
	return u
}

// soapAttempt is what the connector does: POST, then a SOAP answer or fault,
// or a *bcp.StatusError for an HTTP error that is not SOAP.
func soapAttempt(client *http.Client, now func() time.Time) func(context.Context, bcp.Endpoint) error {
	return func(ctx context.Context, ep bcp.Endpoint) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, strings.NewReader("<Envelope/>"))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if ct == "text/xml" {
			_, err := soap.ReadResponse(bytes.NewReader(body), soap.DefaultLimits)
			return err
		}
		if resp.StatusCode >= 300 {
			return &bcp.StatusError{Endpoint: ep.URL, StatusCode: resp.StatusCode, ContentType: ct,
				RetryAfter: bcp.ParseRetryAfter(resp.Header.Get("Retry-After"), now())}
		}
		return nil
	}
}

func newEngine(t *testing.T, cfg bcp.Config, opts ...bcp.Option) *bcp.Engine {
	t.Helper()
	e, err := bcp.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func endpointSnap(t *testing.T, e *bcp.Engine, url string) bcp.EndpointSnapshot {
	t.Helper()
	for _, s := range e.Snapshot().Services {
		for _, ep := range s.Endpoints {
			if ep.URL == url {
				return ep
			}
		}
	}
	t.Fatalf("no endpoint %s in the snapshot", url)
	return bcp.EndpointSnapshot{}
}

func drain(ch <-chan bcp.Event) []bcp.EventKind {
	var kinds []bcp.EventKind
	for {
		select {
		case ev := <-ch:
			kinds = append(kinds, ev.Kind)
		default:
			return kinds
		}
	}
}

func TestDo_FailsOverOverLoopbackWithoutCallerError(t *testing.T) {
	tests := []struct {
		name  string
		first func(t *testing.T) string
		cause func(t *testing.T, err error)
		// timeout is the attempt timeout: short only where the test waits for it
		timeout time.Duration
	}{
		{"connection refused", refusedURL, func(t *testing.T, err error) {
			var ne net.Error
			require.ErrorAs(t, err, &ne)
		}, 0},
		{"503 html page", func(t *testing.T) string { return newServer(t, statusHandler(503, "")).URL }, func(t *testing.T, err error) {
			var se *bcp.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 503, se.StatusCode)
		}, 0},
		{"hang beyond the attempt timeout", func(t *testing.T) string { return newServer(t, hangHandler).URL }, func(t *testing.T, err error) {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorContains(t, err, "attempt timed out after 250ms")
		}, 250 * time.Millisecond},
		{"SOA-02001 fault", func(t *testing.T) string { return newServer(t, faultHandler("SOA-02001")).URL }, func(t *testing.T, err error) {
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.True(t, f.HasCode("SOA-02001"))
		}, 0},
		{"TLS certificate not trusted", func(t *testing.T) string {
			s := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
			s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
			s.StartTLS()                                   // its own CA, which the client does not trust
			t.Cleanup(s.Close)
			return s.URL
		}, func(t *testing.T, err error) {
			var cve *tls.CertificateVerificationError
			require.ErrorAs(t, err, &cve)
		}, 0},
		{"SOA-01001 fault (parity with the official connector)", func(t *testing.T) string { return newServer(t, faultHandler("SOA-01001")).URL }, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := newServer(t, okHandler)
			first := tt.first(t)
			e := newEngine(t, bcp.Config{
				ServiceList: listOf(first, ok.URL),
				Default:     bcp.ServicePolicy{AttemptTimeout: tt.timeout},
				Router:      bcp.RouterConfig{Labels: map[string]bcp.Label{ok.URL: {Site: "mycarenet", Provider: "provider-b"}}},
			})
			events, cancel := e.Subscribe(16)
			defer cancel()
			require.NoError(t, e.Do(context.Background(), svcShort, soapAttempt(http.DefaultClient, time.Now)))
			require.Equal(t, int64(1), ok.hits.Load())

			first0 := endpointSnap(t, e, first)
			require.Equal(t, 1, first0.Breaker.ConsecutiveFailures)
			require.Equal(t, bcp.StateClosed, first0.Breaker.State)
			svc := e.Snapshot().Services[0]
			require.True(t, svc.FailedOver)
			require.Equal(t, ok.URL, svc.Serving.URL)
			require.Equal(t, "mycarenet", svc.Serving.Site)
			ev := <-events
			require.Equal(t, bcp.EventFailedOver, ev.Kind)
			require.Equal(t, ok.URL, ev.Endpoint.URL)
			require.Equal(t, "provider-b", ev.Endpoint.Provider)

			// the cause is kept: make the fallback fail too and look at it
			if tt.cause != nil {
				e2 := newEngine(t, bcp.Config{ServiceList: listOf(first), Default: bcp.ServicePolicy{AttemptTimeout: tt.timeout}})
				err := e2.Do(context.Background(), svcShort, soapAttempt(http.DefaultClient, time.Now))
				require.ErrorIs(t, err, bcp.ErrUnavailable)
				tt.cause(t, err)
			}
		})
	}
}

func TestDo_UnavailableErrorListsEveryEndpointWithItsCause(t *testing.T) {
	refused := refusedURL(t)
	busy := newServer(t, statusHandler(502, ""))
	e := newEngine(t, bcp.Config{ServiceList: listOf(refused, busy.URL)})
	err := e.Do(context.Background(), svcShort, soapAttempt(http.DefaultClient, time.Now))
	require.ErrorIs(t, err, bcp.ErrUnavailable)
	var ue *bcp.UnavailableError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, svcKey, ue.Service)
	require.Len(t, ue.Attempts, 2)
	require.Equal(t, refused, ue.Attempts[0].Endpoint.URL)
	require.Equal(t, 0, ue.Attempts[0].Endpoint.Order)
	require.ErrorContains(t, ue.Attempts[0].Err, "connection refused")
	require.Equal(t, busy.URL, ue.Attempts[1].Endpoint.URL)
	var se *bcp.StatusError
	require.ErrorAs(t, ue.Attempts[1].Err, &se)
	require.Equal(t, 502, se.StatusCode)
	require.Contains(t, err.Error(), refused)
	require.Contains(t, err.Error(), busy.URL)
	require.Contains(t, err.Error(), "status 502")
}

func TestDo_RetryAfterOn503HoldsTheEndpointBack(t *testing.T) {
	c := newFakeClock()
	busy := newServer(t, statusHandler(503, "120"))
	ok := newServer(t, okHandler)
	e := newEngine(t, bcp.Config{ServiceList: listOf(busy.URL, ok.URL)}, bcp.WithClock(c))
	attempt := soapAttempt(http.DefaultClient, c.Now)

	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, int64(1), busy.hits.Load())
	snap := endpointSnap(t, e, busy.URL)
	require.True(t, c.Now().Add(120*time.Second).Equal(snap.HeldUntil), "held until %v", snap.HeldUntil)

	c.Advance(119 * time.Second)
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, int64(1), busy.hits.Load(), "held back: not asked again")
	require.Equal(t, int64(2), ok.hits.Load())

	c.Advance(2 * time.Second)
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, int64(2), busy.hits.Load(), "asked again once the hold is over")
}

func TestDo_IgnoredOutcomesDoNotMoveTheBreaker(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		ctx     func() (context.Context, context.CancelFunc)
		check   func(t *testing.T, err error)
	}{
		{"business fault", faultHandler("SOA-03003"), nil, func(t *testing.T, err error) {
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.NotErrorIs(t, err, bcp.ErrUnavailable)
		}},
		{"caller cancels", hangHandler, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(5*time.Millisecond, cancel)
			return ctx, cancel
		}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, context.Canceled)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := newServer(t, tt.handler)
			ok := newServer(t, okHandler)
			e := newEngine(t, bcp.Config{ServiceList: listOf(first.URL, ok.URL)})
			for range 8 { // more than ConsecutiveFailures (5)
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if tt.ctx != nil {
					ctx, cancel = tt.ctx()
				}
				err := e.Do(ctx, svcShort, soapAttempt(http.DefaultClient, time.Now))
				cancel()
				require.Error(t, err)
				tt.check(t, err)
			}
			s := endpointSnap(t, e, first.URL)
			require.Equal(t, bcp.StateClosed, s.Breaker.State)
			require.Zero(t, s.Breaker.ConsecutiveFailures)
			require.Zero(t, ok.hits.Load(), "not a reason to switch")
		})
	}
}

// flaky is an in-process endpoint whose health the test switches.
type flaky struct {
	down  atomic.Bool
	hits  atomic.Int64
	delay time.Duration
}

func (f *flaky) call(ctx context.Context) error {
	f.hits.Add(1)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.down.Load() {
		return errTransport
	}
	return nil
}

func attemptOn(eps map[string]*flaky) func(context.Context, bcp.Endpoint) error {
	return func(ctx context.Context, ep bcp.Endpoint) error { return eps[ep.URL].call(ctx) }
}

const (
	urlA = "https://services.ehealth.test/Insurability/v2"
	urlB = "https://prod.mycarenet.test/ehealth/bcp/insurability"
)

func TestDo_FailoverThenFailbackAfterHoldDownDespiteFlapping(t *testing.T) {
	c := newFakeClock()
	a, b := &flaky{}, &flaky{}
	e := newEngine(t, bcp.Config{
		ServiceList: listOf(urlA, urlB),
		Breaker:     bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: time.Second, Jitter: -1},
		Router:      bcp.RouterConfig{HoldDown: 30 * time.Second, HoldDownProbeInterval: 5 * time.Second},
		Default:     bcp.ServicePolicy{AttemptTimeout: -1},
	}, bcp.WithClock(c))
	events, cancel := e.Subscribe(64)
	defer cancel()
	do := func() {
		t.Helper()
		require.NoError(t, e.Do(context.Background(), svcShort, attemptOn(map[string]*flaky{urlA: a, urlB: b})))
	}

	do()
	require.Equal(t, []bcp.EventKind(nil), drain(events))

	a.down.Store(true)
	do()
	do()
	require.Equal(t, []bcp.EventKind{bcp.EventFailedOver, bcp.EventBreakerOpened}, drain(events))
	require.Equal(t, int64(3), a.hits.Load())
	for range 10 {
		do()
	}
	require.Equal(t, int64(3), a.hits.Load(), "open: not asked")

	// A recovers; the cool-down ends; the next call probes it and closes the breaker.
	a.down.Store(false)
	c.Advance(time.Second)
	do()
	require.Equal(t, int64(4), a.hits.Load())
	require.Equal(t, []bcp.EventKind{bcp.EventBreakerHalfOpen, bcp.EventBreakerClosed}, drain(events))
	require.True(t, e.Snapshot().Services[0].FailedOver, "no failback before the hold-down")

	// During the hold-down only a paced probe goes to A.
	for range 10 {
		do()
	}
	require.Equal(t, int64(4), a.hits.Load())
	c.Advance(5 * time.Second)
	do()
	do()
	require.Equal(t, int64(5), a.hits.Load(), "one probe per interval")

	// A flaps: the next probe fails, the call is still answered (by B), and
	// the hold-down starts again from there.
	a.down.Store(true)
	c.Advance(5 * time.Second) // t = 11 s after recovery
	do()
	require.Equal(t, int64(6), a.hits.Load())
	a.down.Store(false)
	c.Advance(20 * time.Second) // 31 s after recovery, 20 s after the failed probe
	hitsB := b.hits.Load()
	do() // a paced probe to A: answered, yet no failback
	do() // no probe due: B
	require.Equal(t, int64(7), a.hits.Load())
	require.Equal(t, hitsB+1, b.hits.Load(), "still held down: the flap restarted it")
	require.Empty(t, drain(events))
	require.True(t, e.Snapshot().Services[0].FailedOver)

	c.Advance(10 * time.Second) // 30 s after the failed probe
	hitsA := a.hits.Load()
	do()
	require.Equal(t, hitsA+1, a.hits.Load())
	require.Equal(t, []bcp.EventKind{bcp.EventFailedBack}, drain(events))
	svc := e.Snapshot().Services[0]
	require.False(t, svc.FailedOver)
	require.Equal(t, urlA, svc.Serving.URL)
}

func TestDo_WhenEveryEndpointIsOpenOneProbeGoesThrough(t *testing.T) {
	c := newFakeClock()
	a, b := &flaky{}, &flaky{}
	a.down.Store(true)
	b.down.Store(true)
	e := newEngine(t, bcp.Config{
		ServiceList: listOf(urlA, urlB),
		Breaker:     bcp.BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Minute, Jitter: -1},
		Router:      bcp.RouterConfig{PanicProbeInterval: time.Second},
		Default:     bcp.ServicePolicy{AttemptTimeout: -1},
	}, bcp.WithClock(c))
	attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})

	require.ErrorIs(t, e.Do(context.Background(), svcShort, attempt), bcp.ErrUnavailable)
	require.Equal(t, bcp.StateOpen, endpointSnap(t, e, urlA).Breaker.State)
	require.Equal(t, bcp.StateOpen, endpointSnap(t, e, urlB).Breaker.State)

	// Both open: one probe (to A, first in Order) instead of failing untried.
	c.Advance(2 * time.Second)
	err := e.Do(context.Background(), svcShort, attempt)
	var ue *bcp.UnavailableError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, int64(2), a.hits.Load())
	require.Len(t, ue.Attempts, 3) // A open, B open, then A's probe failing
	require.ErrorIs(t, ue.Attempts[0].Err, bcp.ErrOpen)
	require.ErrorIs(t, ue.Attempts[2].Err, errTransport)

	// Paced: a second call at once fails without trying.
	require.ErrorIs(t, e.Do(context.Background(), svcShort, attempt), bcp.ErrUnavailable)
	require.Equal(t, int64(2), a.hits.Load())
	require.Zero(t, b.hits.Load()-1)

	// A is back: the next paced probe answers and closes its breaker.
	a.down.Store(false)
	c.Advance(time.Second)
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, bcp.StateClosed, endpointSnap(t, e, urlA).Breaker.State)
}

func TestDo_OperatorCanForceAndResetAnEndpoint(t *testing.T) {
	a, b := &flaky{}, &flaky{}
	e := newEngine(t, bcp.Config{ServiceList: listOf(urlA, urlB), Router: bcp.RouterConfig{HoldDown: -1}})
	attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})
	br, ok := e.Breaker(svcShort, urlA)
	require.True(t, ok)
	_, ok = e.Breaker(svcShort, "https://elsewhere")
	require.False(t, ok)

	br.ForceOpen()
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, int64(0), a.hits.Load())
	require.Equal(t, int64(1), b.hits.Load())

	br.ForceClose()
	a.down.Store(true)
	for range 10 {
		require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	}
	require.Equal(t, int64(10), a.hits.Load(), "forced closed: tried every time")
	require.Equal(t, bcp.StateForcedClosed, endpointSnap(t, e, urlA).Breaker.State)

	br.Reset()
	s := endpointSnap(t, e, urlA)
	require.Equal(t, bcp.StateClosed, s.Breaker.State)
	require.Zero(t, s.Breaker.ConsecutiveFailures)
}

func TestDo_HonoursTheListOrderAndStatus(t *testing.T) {
	c := newFakeClock()
	a, b := &flaky{}, &flaky{}
	attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})
	l := listOf(urlB, urlA) // given out of order
	l.Services[0].Endpoints[0].Order, l.Services[0].Endpoints[1].Order = 1, 0
	l.Services[0].Endpoints[1].Status = bcp.StatusInactive // the default is INACTIVE: BCP mode
	e := newEngine(t, bcp.Config{ServiceList: l, Router: bcp.RouterConfig{HoldDown: 30 * time.Second}}, bcp.WithClock(c))
	events, cancel := e.Subscribe(8)
	defer cancel()

	for _, name := range []string{svcShort, svcKey, "Insurability"} {
		require.NoError(t, e.Do(context.Background(), name, attempt))
	}
	require.Zero(t, a.hits.Load())
	require.Equal(t, int64(3), b.hits.Load())
	svc := e.Snapshot().Services[0]
	require.True(t, svc.ListBCPMode)
	require.False(t, svc.FailedOver, "the list's choice, not a failover of ours")
	require.Empty(t, drain(events), "started in BCP mode: nothing moved")

	// The list makes the default ACTIVE again: it is used after the hold-down.
	l2 := listOf(urlA, urlB)
	e.SetServiceList(l2)
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Zero(t, a.hits.Load())
	c.Advance(30 * time.Second)
	require.NoError(t, e.Do(context.Background(), svcShort, attempt))
	require.Equal(t, int64(1), a.hits.Load())
	require.Equal(t, []bcp.EventKind{bcp.EventFailedBack}, drain(events))
	require.False(t, e.Snapshot().Services[0].ListBCPMode)

	err := e.Do(context.Background(), "nosuch:v1", attempt)
	require.ErrorIs(t, err, bcp.ErrUnknownService)

	l3 := listOf(urlA)
	l3.Services[0].Endpoints[0].Status = bcp.StatusInactive
	e.SetServiceList(l3)
	err = e.Do(context.Background(), svcShort, attempt)
	require.ErrorIs(t, err, bcp.ErrUnavailable)
	require.ErrorIs(t, err, bcp.ErrNoActiveEndpoint)
}

func TestDo_ConcurrentCallersAllAnsweredDuringAnOutage(t *testing.T) {
	a, b := &flaky{}, &flaky{}
	a.down.Store(true)
	e := newEngine(t, bcp.Config{ServiceList: listOf(urlA, urlB)})
	attempt := attemptOn(map[string]*flaky{urlA: a, urlB: b})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if e.Do(context.Background(), svcShort, attempt) != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	require.Equal(t, int64(1000), b.hits.Load())
	require.Less(t, a.hits.Load(), int64(100), "the breaker stopped asking A")
	require.Equal(t, bcp.StateOpen, endpointSnap(t, e, urlA).Breaker.State)
}

func TestSubscribe_DropsWhenFullAndCountsDrops(t *testing.T) {
	e := newEngine(t, bcp.Config{ServiceList: listOf(urlA, urlB)})
	events, cancel := e.Subscribe(1)
	br, _ := e.Breaker(svcShort, urlA)
	br.ForceOpen()
	br.ForceClose()
	br.Reset()
	ev := <-events
	require.Equal(t, bcp.EventBreakerOpened, ev.Kind)
	require.Equal(t, bcp.StateForcedOpen, ev.To)
	require.Equal(t, urlA, ev.Endpoint.URL)
	require.Equal(t, uint64(2), e.Snapshot().DroppedEvents)
	cancel()
	cancel()
	_, open := <-events
	require.False(t, open)

	other, _ := e.Subscribe(0)
	require.NoError(t, e.Close())
	_, open = <-other
	require.False(t, open, "Close ends subscriptions")
	require.ErrorIs(t, e.Do(context.Background(), svcShort, attemptOn(nil)), bcp.ErrClosed)
}

func TestEngine_LogsFailoverAtWarnAndTransitionsAtInfo(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	a, b := &flaky{}, &flaky{}
	a.down.Store(true)
	e := newEngine(t, bcp.Config{ServiceList: listOf(urlA, urlB), Breaker: bcp.BreakerConfig{ConsecutiveFailures: 1}},
		bcp.WithLogger(zap.New(core)))
	require.NoError(t, e.Do(context.Background(), svcShort, attemptOn(map[string]*flaky{urlA: a, urlB: b})))
	require.Equal(t, 1, logs.FilterMessage("bcp: service failed over").FilterLevelExact(zap.WarnLevel).Len())
	require.Equal(t, 1, logs.FilterMessage("bcp: breaker open").FilterLevelExact(zap.InfoLevel).Len())
	require.Equal(t, 1, logs.FilterMessage("bcp: call").FilterLevelExact(zap.DebugLevel).Len())
}

func TestConfig_ValidateNamesTheField(t *testing.T) {
	for field, cfg := range map[string]bcp.Config{
		"Config.Breaker":                 {Breaker: bcp.BreakerConfig{FailureRatio: 2}},
		"RouterConfig.MaxRetryAfter":     {Router: bcp.RouterConfig{MaxRetryAfter: -1}},
		"BudgetConfig.Max":               {Budget: bcp.BudgetConfig{Max: -1}},
		"ServicePolicy.HedgeDelay":       {Default: bcp.ServicePolicy{HedgeDelay: -1}},
		`Config.Services["etkdepot:v1"]`: {Services: map[string]bcp.ServicePolicy{"etkdepot:v1": {RetryDelay: -1}}},
		"Config.FaultCodes[1]":           {FaultCodes: []string{"SOA-02001", ""}},
	} {
		_, err := bcp.New(cfg)
		require.ErrorContains(t, err, field)
	}
}

func TestErrors_UnavailableErrorWithoutAttempts(t *testing.T) {
	err := &bcp.UnavailableError{Service: svcKey}
	require.Equal(t, "bcp: service "+svcKey+" unavailable", err.Error())
	require.True(t, errors.Is(err, bcp.ErrUnavailable))
}
