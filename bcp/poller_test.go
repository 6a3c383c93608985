package bcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// feedServer serves a status feed over loopback TLS.
type feedServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	body   string
	status int
	hits   int
}

func newFeedServer(tb testing.TB, body string) *feedServer {
	tb.Helper()
	s := &feedServer{body: body}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits++
		if r.URL.Path != "/nl/api/components/prod" {
			http.NotFound(w, r)
			return
		}
		if s.status != 0 {
			http.Error(w, "down", s.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(s.body))
	}))
	tb.Cleanup(func() {
		s.srv.Client().CloseIdleConnections()
		s.srv.Close()
	})
	return s
}

func (s *feedServer) url() string { return s.srv.URL + "/nl/api/components/prod" }

func (s *feedServer) set(body string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status = body, status
}

func (s *feedServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// feed builds a feed body from id → status_name.
func feed(statuses map[string]string) string {
	names := map[string]string{
		"12": `"name_nl":"MyCareNet - Verzekerbaarheid","group_name_nl":"MyCareNet","component_name_nl":"Verzekerbaarheid"`,
		"13": `"name_nl":"MyCareNet - Tarificatie","group_name_nl":"MyCareNet","component_name_nl":"Tarificatie"`,
		"21": `"name_nl":"eHealth - STS","group_name_nl":"eHealth basisdiensten","component_name_nl":"STS"`,
		"22": `"name_nl":"eHealth - ETK Depot","group_name_nl":"eHealth basisdiensten","component_name_nl":"ETK Depot"`,
	}
	var parts []string
	for _, id := range []string{"12", "13", "21", "22"} {
		st, ok := statuses[id]
		if !ok {
			st = "Operational"
		}
		parts = append(parts, `{"id":`+id+`,`+names[id]+`,"status_name":"`+st+`"}`)
	}
	return `{"data":[` + strings.Join(parts, ",") + `]}`
}

var feedMapping = map[string][]string{
	"12":                      {"insurability:v2", "genericinsurability:v1"}, // by id
	"mycarenet - tarificatie": {"mycarenettarification:v1"},                  // by name, any case
	"eHealth basisdiensten":   {"etkdepot:v1", "iamsaml11tokenservice:v1"},   // by group
	"unknown component":       {"vaccination:v2"},
}

type pollerRig struct {
	srv    *feedServer
	clock  *stepClock
	poller *Poller
	logs   *observer.ObservedLogs

	mu       sync.Mutex
	readings []*Reading
}

func newPollerRig(t *testing.T, body string) *pollerRig {
	t.Helper()
	r := &pollerRig{srv: newFeedServer(t, body), clock: newStepClock(testListTime)}
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	p, err := NewPoller(PollerConfig{URL: r.srv.url(), Services: feedMapping},
		WithHTTPClient(r.srv.srv.Client()), WithClock(r.clock), WithLogger(zap.New(core)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	r.poller = p
	p.OnChange(func(rd *Reading) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.readings = append(r.readings, rd)
	})
	return r
}

func (r *pollerRig) published() []*Reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Reading(nil), r.readings...)
}

func TestPoller_MapsComponentsToServices(t *testing.T) {
	r := newPollerRig(t, feed(map[string]string{"13": "Major Outage", "21": "Degraded Performance", "22": "Under Maintenance"}))
	r.clock.WaitScheduled(t, 1)
	rd := r.poller.Current()
	require.NotNil(t, rd)
	require.Equal(t, testListTime, rd.At)
	require.Len(t, rd.Components, 4)

	want := map[string]ComponentStatus{
		"insurability:v2":          ComponentOperational,
		"genericinsurability:v1":   ComponentOperational,
		"mycarenettarification:v1": ComponentMajorOutage,
		"etkdepot:v1":              ComponentDegradedPerformance, // worst known of STS and ETK Depot; maintenance is unknown
		"iamsaml11tokenservice:v1": ComponentDegradedPerformance,
		"vaccination:v2":           ComponentUnknown, // no such component in the feed
	}
	require.Len(t, rd.Services, len(want))
	for svc, st := range want {
		h, ok := rd.Service(svc)
		require.True(t, ok, svc)
		require.Equal(t, st, h.Status, svc)
		require.Equal(t, svc, h.Service)
		require.Equal(t, testListTime, h.Since)
	}
	h, _ := rd.Service("etkdepot:v1")
	require.Equal(t, []string{"eHealth - STS", "eHealth - ETK Depot"}, h.Components)
	require.True(t, rd.MajorOutage("mycarenettarification:v1"))
	require.False(t, rd.MajorOutage("insurability:v2"))
	require.False(t, rd.MajorOutage("not configured"))
	_, ok := rd.Service("not configured")
	require.False(t, ok)
	require.Len(t, r.published(), 1)
}

func TestPoller_PublishesChangesOnlyAndTracksSince(t *testing.T) {
	r := newPollerRig(t, feed(nil))
	r.clock.WaitScheduled(t, 1)
	first := r.poller.Current()
	require.Len(t, r.published(), 1)

	// Same statuses a minute later: the reading's time moves, nothing is published.
	r.clock.Advance(DefaultFeedInterval)
	r.clock.WaitScheduled(t, 2)
	require.Equal(t, 2, r.srv.count())
	second := r.poller.Current()
	require.Equal(t, testListTime.Add(time.Minute), second.At)
	require.Len(t, r.published(), 1)
	h, _ := second.Service("insurability:v2")
	require.Equal(t, first.Services["insurability:v2"].Since, h.Since)

	// Insurability goes down: published at once, with the time it was first seen.
	r.srv.set(feed(map[string]string{"12": "Major Outage"}), 0)
	r.clock.Advance(DefaultFeedInterval)
	r.clock.WaitScheduled(t, 3)
	pub := r.published()
	require.Len(t, pub, 2)
	require.True(t, pub[1].MajorOutage("insurability:v2"))
	require.True(t, pub[1].MajorOutage("genericinsurability:v1"))
	h, _ = pub[1].Service("insurability:v2")
	require.Equal(t, testListTime.Add(2*time.Minute), h.Since)
	require.Len(t, r.logs.FilterMessage("status page").FilterField(zap.String("service", "insurability:v2")).All(), 2)

	// Still down later: Since stays.
	r.clock.Advance(DefaultFeedInterval)
	r.clock.WaitScheduled(t, 4)
	require.Len(t, r.published(), 2)
	h, _ = r.poller.Current().Service("insurability:v2")
	require.Equal(t, testListTime.Add(2*time.Minute), h.Since)
}

func TestPoller_FeedDownChangesNothing(t *testing.T) {
	r := newPollerRig(t, feed(map[string]string{"12": "Partial Outage"}))
	r.clock.WaitScheduled(t, 1)
	good := r.poller.Current()
	require.NotNil(t, good)

	failures := []struct {
		name   string
		body   string
		status int
	}{
		{"HTTP 503", "", http.StatusServiceUnavailable},
		{"HTML instead of JSON", "<html>maintenance</html>", 0},
		{"truncated JSON", `{"data":[{"id":12`, 0},
		{"oversized", `[` + strings.Repeat(" ", MaxStatusFeedBytes+1) + `]`, 0},
	}
	for i, f := range failures {
		r.srv.set(f.body, f.status)
		r.clock.Advance(DefaultFeedInterval)
		r.clock.WaitScheduled(t, i+2)
		require.Same(t, good, r.poller.Current(), f.name)
		st := r.poller.Status()
		require.Error(t, st.LastErr, f.name)
		var fe *FetchError
		require.ErrorAs(t, st.LastErr, &fe, f.name)
		require.Equal(t, r.srv.url(), fe.URL)
		require.Equal(t, testListTime, st.LastSuccess, f.name)
		require.Equal(t, testListTime.Add(time.Duration(i+1)*DefaultFeedInterval), st.LastAttempt)
	}
	require.Len(t, r.published(), 1)
	require.Len(t, r.logs.FilterMessage("status feed unreadable; last reading kept").All(), len(failures))

	// The feed returns: a good reading again, nothing published since the statuses are the same.
	r.srv.set(feed(map[string]string{"12": "Partial Outage"}), 0)
	changed, err := r.poller.Refresh(context.Background())
	require.NoError(t, err)
	require.False(t, changed)
	require.NoError(t, r.poller.Status().LastErr)
	require.NotSame(t, good, r.poller.Current())
}

func TestPoller_NetworkDownFromTheStart(t *testing.T) {
	down := httptest.NewTLSServer(http.NotFoundHandler())
	url := down.URL + "/feed"
	down.Close()
	clock := newStepClock(testListTime)
	p, err := NewPoller(PollerConfig{URL: url}, WithClock(clock))
	require.NoError(t, err)
	defer p.Close()
	clock.WaitScheduled(t, 1)
	require.Nil(t, p.Current())
	require.Error(t, p.Status().LastErr)
	_, ok := p.Current().Service("insurability:v2")
	require.False(t, ok)
	require.False(t, p.Current().MajorOutage("insurability:v2"))
}

func TestPollerConfig_Validate(t *testing.T) {
	tests := []struct {
		cfg   PollerConfig
		field string
	}{
		{PollerConfig{}, "URL"},
		{PollerConfig{URL: "http://status.example/feed"}, "URL"},
		{PollerConfig{URL: "https://status.example/feed", Interval: -time.Second}, "Interval"},
		{PollerConfig{URL: "https://status.example/feed", Timeout: -time.Second}, "Timeout"},
		{PollerConfig{URL: "https://status.example/feed", Services: map[string][]string{" ": {"a"}}}, "Services"},
		{PollerConfig{URL: "https://status.example/feed", Services: map[string][]string{"12": {""}}}, "Services"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		require.Error(t, err)
		require.Contains(t, err.Error(), "PollerConfig."+tc.field)
		_, err = NewPoller(tc.cfg)
		require.Error(t, err)
	}
}

func TestPoller_TimeoutIsPerRequest(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // hangs until the test ends, whatever the client does
	}))
	defer srv.Close()
	defer close(release)
	clock := newStepClock(testListTime)
	p, err := NewPoller(PollerConfig{URL: srv.URL, Timeout: 50 * time.Millisecond},
		WithHTTPClient(srv.Client()), WithClock(clock))
	require.NoError(t, err)
	defer p.Close()
	clock.WaitScheduled(t, 1) // returns once the hung request has timed out
	require.ErrorIs(t, p.Status().LastErr, context.DeadlineExceeded)
	require.Nil(t, p.Current())
}

func TestPoller_CloseStopsAndWaits(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := newFeedServer(t, feed(nil))
	clock := newStepClock(testListTime)
	client := srv.srv.Client()
	p, err := NewPoller(PollerConfig{URL: srv.url()}, WithHTTPClient(client), WithClock(clock))
	require.NoError(t, err)
	clock.WaitScheduled(t, 1)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.Equal(t, 0, clock.Pending())
	clock.Advance(time.Hour)
	require.Equal(t, 1, srv.count())
	client.CloseIdleConnections()
	srv.srv.Close()
}
