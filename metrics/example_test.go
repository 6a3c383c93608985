package metrics_test

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/metrics"
	"github.com/ehgate/ehgate/platformtest"
)

// Register the collector of a client on a Prometheus registry: counters as calls run, the
// client's state (modes, breakers, token, outbox, …) read at each scrape.
func ExampleNew() {
	p, _ := platformtest.Start(platformtest.Config{Patients: 20, Seed: 42})
	defer p.Close()
	id, _ := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	cfg, _ := clienttest.NewConfig(p, id, dir) // a connector.Config for the stand-in

	m := metrics.New()
	c, err := connector.New(cfg, connector.WithObserver(m))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	m.Attach(c)
	registry := prometheus.NewRegistry()
	registry.MustRegister(m)
	// Serve it: http.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))

	patient := clienttest.Patients(p, 1)[0]
	_, _ = c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: patient.SSIN})

	families, _ := registry.Gather()
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case f.GetName() == "ehgate_calls_total" && labels["outcome"] == "live":
				fmt.Println(f.GetName(), labels["operation"], labels["service"], labels["outcome"], s.GetCounter().GetValue())
			case f.GetName() == "ehgate_service_mode" && labels["service"] == connector.ServiceInsurability && s.GetGauge().GetValue() == 1:
				fmt.Println(f.GetName(), labels["service"], labels["mode"])
			}
		}
	}
	// Output:
	// ehgate_calls_total insurability insurability:v2 live 1
	// ehgate_service_mode insurability:v2 normal
}
