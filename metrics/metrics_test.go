package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/metrics"
	"github.com/ehgate/ehgate/platformtest"
)

// scrape GETs url and returns every sample as "name{k="v",...}" (labels sorted) → value;
// a histogram gives its _count and _sum.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := func(suffix string) string {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+`"`+l.GetValue()+`"`)
				}
				sort.Strings(ls)
				return name + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func serving(c *connector.Client, service string, order int) string {
	for _, s := range c.Status().Services {
		if s.Name == service {
			for _, e := range s.Endpoints {
				if e.Order == order {
					return e.URL
				}
			}
		}
	}
	return ""
}

func breaker(c *connector.Client, service, url string) string {
	for _, s := range c.Status().Services {
		if s.Name == service {
			for _, e := range s.Endpoints {
				if e.URL == url {
					return e.Breaker
				}
			}
		}
	}
	return ""
}

// TestMetrics_ScrapedAfterOutage drives the platform stand-in through a primary-site outage
// (failover), a full outage (answers from the store, a patient not cached, fallback mode)
// and an operator's fallback of the write service (a write queued, then replayed), and reads
// the values back from a real scrape of /metrics.
func TestMetrics_ScrapedAfterOutage(t *testing.T) {
	p, id := clienttest.Platform(t)
	m := metrics.New()
	c := clienttest.Client(t, p, id, connector.WithObserver(m))
	m.Attach(c)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	ctx := context.Background()
	const ins = connector.ServiceInsurability

	pts := clienttest.Patients(p, 3)
	require.Len(t, pts, 3)
	for _, pt := range pts[:2] {
		res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
		require.Equal(t, connector.SourceLive, res.Source)
	}
	unknown, ok := clienttest.Unknown(p)
	require.True(t, ok)
	_, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: unknown.SSIN})
	require.ErrorIs(t, err, connector.ErrBusiness)
	primary, secondary := serving(c, ins, 0), serving(c, ins, 1)
	require.NotEmpty(t, primary)
	require.NotEmpty(t, secondary)

	// The primary site fails: calls fail over until its breaker opens.
	p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	failedOver := 0
	clienttest.Wait(t, "primary breaker open", func() bool {
		res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
		require.NoError(t, err)
		require.Equal(t, secondary, res.Endpoint)
		failedOver++
		return breaker(c, ins, primary) == "open"
	})

	// Every site fails: the store answers a patient it holds, not one it never saw.
	for _, s := range p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[1].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceCache, res.Source)
	_, err = c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[2].SSIN})
	require.ErrorIs(t, err, connector.ErrNotCached)
	mode, _ := c.Mode(ins)
	require.Equal(t, connector.ModeFallback, mode)

	// The operator puts the write service in fallback: a write queues.
	require.NoError(t, c.ActivateFallback(connector.ServiceEHealthBox, "metrics test"))
	r, err := c.SendMessage(ctx, connector.EHealthBoxMessage{Partition: "p1", Title: "claim", Content: []byte("claim"),
		Recipients: []connector.EHealthBoxAddress{{ID: "10082533004", Type: "NIHII", Quality: "DOCTOR"}}})
	require.NoError(t, err)
	require.True(t, r.Queued)

	got := scrape(t, srv.URL)
	call := func(outcome, endpoint string) string {
		return `ehgate_calls_total{endpoint="` + endpoint + `",operation="insurability",outcome="` + outcome + `",service="insurability:v2"}`
	}
	require.Equal(t, 2.0, got[call("live", primary)], "two live answers from the primary")
	require.Equal(t, float64(failedOver), got[call("live", secondary)], "answers of the fallback site")
	require.Equal(t, 1.0, got[call("business", primary)], "the unknown patient")
	require.Equal(t, 1.0, got[call("store", "none")], "the answer from the store")
	require.Equal(t, 1.0, got[call("not_cached", "none")], "the patient never seen")
	require.Equal(t, float64(2+failedOver), got[`ehgate_call_duration_seconds_count{operation="insurability",outcome="live",service="insurability:v2"}`])
	require.Greater(t, got[`ehgate_call_duration_seconds_sum{operation="insurability",outcome="live",service="insurability:v2"}`], 0.0)
	require.Equal(t, 1.0, got[`ehgate_store_degraded_answers_total{service="insurability:v2"}`])
	require.GreaterOrEqual(t, got[`ehgate_store_reads_total{result="hit",service="insurability:v2"}`], 1.0)
	require.GreaterOrEqual(t, got[`ehgate_store_reads_total{result="miss",service="insurability:v2"}`], 1.0)
	require.GreaterOrEqual(t, got[`ehgate_failovers_total{service="insurability:v2"}`], 1.0)
	require.Equal(t, 1.0, got[`ehgate_endpoint_breaker_state{endpoint="`+primary+`",service="insurability:v2",state="open"}`])
	require.Equal(t, 0.0, got[`ehgate_endpoint_breaker_state{endpoint="`+primary+`",service="insurability:v2",state="closed"}`])
	require.GreaterOrEqual(t, got[`ehgate_endpoint_attempt_duration_seconds_count{endpoint="`+primary+`",result="error",service="insurability:v2"}`], 2.0)
	require.Equal(t, 1.0, got[`ehgate_service_mode{mode="fallback",service="insurability:v2"}`])
	require.Equal(t, 0.0, got[`ehgate_service_mode{mode="normal",service="insurability:v2"}`])
	require.Equal(t, 1.0, got[`ehgate_service_mode{mode="fallback",service="ehboxpublication:v3"}`])
	require.GreaterOrEqual(t, got[`ehgate_mode_changes_total{mode="fallback",service="insurability:v2"}`], 1.0)
	require.Equal(t, 1.0, got[`ehgate_calls_total{endpoint="none",operation="submit",outcome="queued",service="ehboxpublication:v3"}`])
	require.Equal(t, 1.0, got[`ehgate_outbox_pending{}`])
	require.Equal(t, 0.0, got[`ehgate_outbox_dead_letters{}`])
	require.Equal(t, 1.0, got[`ehgate_sts_token_valid{}`])
	require.Greater(t, got[`ehgate_sts_token_expiry_timestamp_seconds{}`], float64(time.Now().Unix()))
	require.GreaterOrEqual(t, got[`ehgate_sts_token_requests_total{}`], 1.0)
	require.Equal(t, 0.0, got[`ehgate_sts_token_request_failures_total{}`])
	require.Equal(t, 1.0, got[`ehgate_service_list_source{source="network"}`])
	require.GreaterOrEqual(t, got[`ehgate_service_list_age_seconds{}`], 0.0)
	require.Equal(t, 0.0, got[`ehgate_service_list_last_check_failed{}`])
	require.GreaterOrEqual(t, got[`ehgate_status_feed_age_seconds{}`], 0.0)
	require.Contains(t, got, `ehgate_retry_budget_granted_total{}`)
	require.Greater(t, got[`ehgate_retry_budget_available{}`], 0.0)
	// The store's records are counted at most once per connector.StoreCountsMaxAge (the
	// client counted none when it started): the two answers show within that bound.
	clienttest.Wait(t, "the store's records counted again", func() bool {
		return scrape(t, srv.URL)[`ehgate_store_records{function="insurability"}`] == 2
	})

	// The operator ends the write service's fallback: the write is replayed.
	require.NoError(t, c.EndFallback(connector.ServiceEHealthBox))
	clienttest.Wait(t, "write replayed", func() bool { return len(p.Writes()) == 1 && c.Status().Outbox.Pending == 0 })
	clienttest.Wait(t, "replay counted", func() bool {
		return scrape(t, srv.URL)[`ehgate_outbox_replayed_total{result="delivered"}`] == 1
	})
	got = scrape(t, srv.URL)
	require.Equal(t, 0.0, got[`ehgate_outbox_pending{}`])
	require.Equal(t, 1.0, got[`ehgate_calls_total{endpoint="`+serving(c, connector.ServiceEHealthBox, 0)+`",operation="replay",outcome="live",service="ehboxpublication:v3"}`])

	// No label value or sample name carries a patient's SSIN.
	for k := range got {
		for _, pt := range append(pts, unknown) {
			require.NotContains(t, k, pt.SSIN)
		}
	}
}
