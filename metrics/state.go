package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ehgate/ehgate/connector"
)

// descs are the gauges read from the client's Status at scrape time.
type descs struct {
	mode, regularisation                                    *prometheus.Desc
	breaker, endpointActive, endpointHeld                   *prometheus.Desc
	tokenValid, tokenExpiry, tokenRequests, tokenFailures   *prometheus.Desc
	outboxPending, outboxOldest, outboxDead, outboxReplay   *prometheus.Desc
	storeRecords, storeBytes, storeAuthFailures             *prometheus.Desc
	retryGranted, retryDenied, retryAvailable               *prometheus.Desc
	listIssued, listSuccess, listAge, listError, listSource *prometheus.Desc
	feedSuccess, feedAge, feedError                         *prometheus.Desc
	droppedEvents                                           *prometheus.Desc
}

func newDescs() descs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	return descs{
		mode:              d("service_mode", "1 for the mode each service is in (normal, failed-over, fallback, recovering), 0 for the others.", "service", "mode"),
		regularisation:    d("service_regularisation_pending", "Answers served from the store that wait to be checked again live.", "service"),
		breaker:           d("endpoint_breaker_state", "1 for the state each endpoint's breaker is in (closed, half-open, open, forced-open, forced-closed), 0 for the others.", "service", "endpoint", "state"),
		endpointActive:    d("endpoint_active", "1 when the service list marks the endpoint ACTIVE.", "service", "endpoint"),
		endpointHeld:      d("endpoint_held_seconds", "Seconds left of a Retry-After or hold-down of the endpoint (0 = none).", "service", "endpoint"),
		tokenValid:        d("sts_token_valid", "1 when the client holds a valid STS token."),
		tokenExpiry:       d("sts_token_expiry_timestamp_seconds", "When the STS token expires (Unix time; 0 = no token)."),
		tokenRequests:     d("sts_token_requests_total", "Token requests sent to the STS."),
		tokenFailures:     d("sts_token_request_failures_total", "Token requests (first or renewal) that brought no token."),
		outboxPending:     d("outbox_pending", "Writes queued in the outbox."),
		outboxOldest:      d("outbox_oldest_age_seconds", "Age of the oldest queued write (0 = none)."),
		outboxDead:        d("outbox_dead_letters", "Queued writes the platform rejected, set aside."),
		outboxReplay:      d("outbox_replaying", "1 while the outbox is being replayed."),
		storeRecords:      d("store_records", "Answers in the local store, by function.", "function"),
		storeBytes:        d("store_file_bytes", "Size of the local store's file."),
		storeAuthFailures: d("store_auth_failures_total", "Records of the store that failed authentication and were skipped."),
		retryGranted:      d("retry_budget_granted_total", "Retries the retry budget granted."),
		retryDenied:       d("retry_budget_refused_total", "Retries the retry budget refused."),
		retryAvailable:    d("retry_budget_available", "Retries the budget could grant now."),
		listIssued:        d("service_list_issue_timestamp_seconds", "IssueInstant of the service list in force (Unix time; 0 = none)."),
		listSuccess:       d("service_list_last_success_timestamp_seconds", "Last successful check of the service list (Unix time; 0 = never)."),
		listAge:           d("service_list_age_seconds", "Seconds since the last successful check of the service list (-1 = never)."),
		listError:         d("service_list_last_check_failed", "1 when the last check of the service list failed."),
		listSource:        d("service_list_source", "1 for where the list in force came from (network, store, builtin, none).", "source"),
		feedSuccess:       d("status_feed_last_success_timestamp_seconds", "Last successful reading of the status feed (Unix time; 0 = never)."),
		feedAge:           d("status_feed_age_seconds", "Seconds since the last successful reading of the status feed (-1 = never)."),
		feedError:         d("status_feed_last_read_failed", "1 when the last reading of the status feed failed."),
		droppedEvents:     d("events_dropped_total", "Events subscribers missed because their buffer was full."),
	}
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.vecs() {
		c.Describe(ch)
	}
	d := m.desc
	for _, x := range []*prometheus.Desc{d.mode, d.regularisation, d.breaker, d.endpointActive, d.endpointHeld,
		d.tokenValid, d.tokenExpiry, d.tokenRequests, d.tokenFailures, d.outboxPending, d.outboxOldest, d.outboxDead,
		d.outboxReplay, d.storeRecords, d.storeBytes, d.storeAuthFailures, d.retryGranted, d.retryDenied,
		d.retryAvailable, d.listIssued, d.listSuccess, d.listAge, d.listError, d.listSource, d.feedSuccess, d.feedAge,
		d.feedError, d.droppedEvents} {
		ch <- x
	}
}

func (m *Collector) vecs() []prometheus.Collector {
	return []prometheus.Collector{m.calls, m.latency, m.attempts, m.steps, m.storeRead, m.degraded, m.replayed,
		m.failovers, m.failbacks, m.modes, m.breakers, m.drills}
}

var (
	allModes    = []connector.Mode{connector.ModeNormal, connector.ModeFailedOver, connector.ModeFallback, connector.ModeRecovering}
	allBreakers = []string{"closed", "half-open", "open", "forced-open", "forced-closed"}
	allSources  = []string{"network", "store", "builtin", "none"}
)

// Collect implements prometheus.Collector: the observer's counters, then the attached
// client's state.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.vecs() {
		c.Collect(ch)
	}
	c := m.client.Load()
	if c == nil {
		return
	}
	st := c.Status()
	d := m.desc
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v)
	}
	for _, s := range st.Services {
		for _, mode := range allModes {
			gauge(d.mode, b2f(s.Mode == mode), s.Name, mode.String())
		}
		gauge(d.regularisation, float64(s.Regularisation), s.Name)
		for _, e := range s.Endpoints {
			ep := m.endpoint(e.URL)
			if ep == "other" {
				continue // several endpoints under one label would make duplicate series
			}
			for _, state := range allBreakers {
				gauge(d.breaker, b2f(e.Breaker == state), s.Name, ep, state)
			}
			gauge(d.endpointActive, b2f(e.Active), s.Name, ep)
			held := 0.0
			if e.HeldUntil.After(st.At) {
				held = e.HeldUntil.Sub(st.At).Seconds()
			}
			gauge(d.endpointHeld, held, s.Name, ep)
		}
	}
	gauge(d.tokenValid, b2f(st.Token.Valid))
	gauge(d.tokenExpiry, unix(st.Token.NotOnOrAfter))
	counter(d.tokenRequests, float64(st.Token.Requests))
	counter(d.tokenFailures, float64(st.Token.Failures))
	gauge(d.outboxPending, float64(st.Outbox.Pending))
	gauge(d.outboxOldest, st.Outbox.OldestAge.Seconds())
	gauge(d.outboxDead, float64(st.Outbox.DeadLetters))
	gauge(d.outboxReplay, b2f(st.Outbox.Replaying))
	for fn, fs := range st.Cache.Functions {
		gauge(d.storeRecords, float64(fs.Count), fn)
	}
	gauge(d.storeBytes, float64(st.Cache.FileBytes))
	counter(d.storeAuthFailures, float64(st.Cache.AuthFailures))
	counter(d.retryGranted, float64(st.Retries.Granted))
	counter(d.retryDenied, float64(st.Retries.Denied))
	gauge(d.retryAvailable, st.Retries.Available)
	gauge(d.listIssued, unix(st.List.IssueInstant))
	gauge(d.listSuccess, unix(st.List.LastSuccess))
	gauge(d.listAge, age(st.At, st.List.LastSuccess))
	gauge(d.listError, b2f(st.List.LastError != ""))
	for _, src := range allSources {
		gauge(d.listSource, b2f(st.List.Source == src), src)
	}
	if st.Feed.URL != "" {
		gauge(d.feedSuccess, unix(st.Feed.LastSuccess))
		gauge(d.feedAge, age(st.At, st.Feed.LastSuccess))
		gauge(d.feedError, b2f(st.Feed.LastError != ""))
	}
	counter(d.droppedEvents, float64(st.DroppedEvents))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func age(now, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Seconds()
}
