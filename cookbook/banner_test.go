package cookbook_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// banner is what a pharmacy's software shows above the counter screen: one line per service
// that is not served normally. It reads Status only (no personal data in it).
func banner(st connector.Status) string {
	var lines []string
	for _, s := range st.Services {
		switch s.Mode {
		case connector.ModeFallback:
			lines = append(lines, fmt.Sprintf("EMERGENCY MODE %s: answers from the local store (%s; status page: %s)", s.Name, s.Cause, orNone(s.FeedStatus)))
		case connector.ModeFailedOver:
			lines = append(lines, fmt.Sprintf("%s: served by the fallback site", s.Name))
		case connector.ModeRecovering:
			lines = append(lines, fmt.Sprintf("%s: platform back, catching up", s.Name))
		}
	}
	if len(lines) == 0 {
		return "all services normal"
	}
	return strings.Join(lines, "\n")
}

func orNone(s string) string {
	if s == "" {
		return "not mapped"
	}
	return s
}

// Chapter 4: the status page announces a major outage of insurability; the client moves the
// service into fallback at once, publishes the change, and the banner says so. When the page
// says the outage is over, the service recovers and the banner clears.
func Example_statusBanner() {
	p := platform()
	dir := tempDir()
	defer os.RemoveAll(dir)
	cfg := pharmacyConfig(dir)
	cfg.StatusPoll = 100 * time.Millisecond // 60 s in production; short so the example does not wait
	client, err := connector.New(cfg)
	must(err)
	defer client.Close()
	events, stop := client.Subscribe(256)
	defer stop()

	_, err = client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(3).SSIN})
	must(err)
	fmt.Println(banner(client.Status()))

	p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	defer p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	fmt.Println("fallback:", waitMode(client, events, connector.ServiceInsurability, connector.ModeFallback))
	fmt.Println(banner(client.Status()))

	before := p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK)
	res, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(3).SSIN})
	must(err)
	fmt.Println("source:", res.Source, "degraded:", res.Degraded, "network tried:", p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK) != before)

	p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	fmt.Println("normal again:", waitMode(client, events, connector.ServiceInsurability, connector.ModeNormal))
	fmt.Println(banner(client.Status()))

	// Output:
	// all services normal
	// fallback: true
	// EMERGENCY MODE insurability:v2: answers from the local store (status feed: major outage; status page: Major Outage)
	// source: cache degraded: true network tried: false
	// normal again: true
	// all services normal
}
