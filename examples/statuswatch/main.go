// Command statuswatch watches the platform's status page and its signed service list, and
// prints every change: a component's status, a service's endpoints becoming ACTIVE or
// INACTIVE, services added or removed.
//
//	go run ./examples/statuswatch      # its own stand-in of the platform, with a short scripted incident
//
// With no -feed and no -list it starts platformtest on 127.0.0.1 and, while it watches, the
// stand-in announces a major outage of insurability, deactivates its primary endpoint in the
// service list, then brings both back. To watch the real platform:
//
//	go run ./examples/statuswatch -feed https://status.ehealth.fgov.be/nl/api/components/prod \
//	  -list https://servicelist.ehealth.fgov.be/servicelist -list-ca servicelist-ca.pem
//
// The feed is unsigned and read as is; the list is adopted only when its signature chains to
// -list-ca. Neither holds personal data, and neither needs credentials.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("statuswatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	feedURL := fs.String("feed", "", "status page feed URL (default: a local stand-in)")
	listURL := fs.String("list", "", "service list base URL, without .sha2/.xml (default: a local stand-in)")
	listCA := fs.String("list-ca", "", "PEM file: CA of the service list's signer (required with -list)")
	tlsCA := fs.String("tls-ca", "", "PEM file: CA of the servers' TLS certificates (default: the system's)")
	interval := fs.Duration("interval", 0, "polling interval (default 60s; 200ms with the stand-in)")
	duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted; 6s with the stand-in)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	w := &watcher{out: stdout, start: time.Now()}
	var (
		hc       *http.Client
		roots    *x509.CertPool
		scenario *platformtest.Scenario
		stand    *platformtest.Platform
	)
	if *feedURL == "" && *listURL == "" {
		p, err := platformtest.Start(platformtest.Config{Patients: 20})
		if err != nil {
			fmt.Fprintln(stderr, "statuswatch:", err)
			return 1
		}
		defer p.Close()
		stand = p
		*feedURL, *listURL, roots, hc = p.StatusFeedURL(), p.ServiceListBaseURL(), p.ServiceListRoots(), p.HTTPClient()
		if *interval == 0 {
			*interval = 200 * time.Millisecond
		}
		if *duration == 0 {
			*duration = 6 * time.Second
		}
		scenario = incident(*duration)
		w.linef("no -feed or -list given: watching a local stand-in of the platform for %s", *duration)
	} else {
		if *listURL != "" && *listCA == "" {
			fmt.Fprintln(stderr, "statuswatch: -list-ca is required with -list")
			return 2
		}
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if *tlsCA != "" {
			pool, err := connector.CertPoolFromPEMFiles(*tlsCA)
			if err != nil {
				fmt.Fprintln(stderr, "statuswatch: -tls-ca:", err)
				return 2
			}
			tlsCfg.RootCAs = pool
		}
		if *listCA != "" {
			var err error
			if roots, err = connector.CertPoolFromPEMFiles(*listCA); err != nil {
				fmt.Fprintln(stderr, "statuswatch: -list-ca:", err)
				return 2
			}
		}
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	if *feedURL != "" {
		poller, err := bcp.NewPoller(bcp.PollerConfig{URL: *feedURL, Interval: *interval}, bcp.WithHTTPClient(hc))
		if err != nil {
			fmt.Fprintln(stderr, "statuswatch: status feed:", err)
			return 2
		}
		defer poller.Close()
		defer poller.OnChange(w.feed)()
	}
	if *listURL != "" {
		cfg := bcp.DefaultLoaderConfig(*listURL)
		cfg.Verify = connector.ServiceListVerifier(roots, connector.ServiceListSigner{})
		cfg.Interval = *interval
		loader, err := bcp.NewLoader(cfg, bcp.WithHTTPClient(hc))
		if err != nil {
			fmt.Fprintln(stderr, "statuswatch: service list:", err)
			return 2
		}
		defer loader.Close()
		defer loader.OnChange(w.list)()
	}
	if scenario != nil {
		go func() { _ = stand.Play(ctx, *scenario) }()
	}
	<-ctx.Done()
	w.linef("stopped: %d status changes, %d endpoint changes seen", w.feedChanges, w.endpointChanges)
	return 0
}

// incident is the stand-in's scripted incident, spread over d.
func incident(d time.Duration) *platformtest.Scenario {
	at := func(f float64) time.Duration { return time.Duration(f * float64(d)) }
	return &platformtest.Scenario{Steps: []platformtest.Step{
		{At: at(0.15), Name: "major outage announced", Do: func(p *platformtest.Platform) {
			p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
		}},
		{At: at(0.3), Name: "insurability moved to the BCP site", Do: func(p *platformtest.Platform) {
			_ = p.MoveService(platformtest.ServiceInsurability, p.Sites()[1].Name()) // listed there: cannot fail
		}},
		{At: at(0.55), Name: "insurability back at the primary site", Do: func(p *platformtest.Platform) {
			_ = p.RestoreService(platformtest.ServiceInsurability)
		}},
		{At: at(0.7), Name: "outage over", Do: func(p *platformtest.Platform) {
			p.SetComponentStatus("Insurability", platformtest.StatusOperational)
		}},
	}}
}

// watcher prints the changes; its methods are called from the poller's and the loader's
// goroutines.
type watcher struct {
	mu              sync.Mutex
	out             io.Writer
	start           time.Time
	components      map[string]string // name → status
	endpoints       map[string]string // service + URL → status
	feedChanges     int
	endpointChanges int
}

func (w *watcher) linef(format string, args ...any) {
	fmt.Fprintf(w.out, "%6.2fs  %s\n", time.Since(w.start).Seconds(), fmt.Sprintf(format, args...))
}

// feed prints what changed in the status page.
func (w *watcher) feed(r *bcp.Reading) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := map[string]string{}
	for _, c := range r.Components {
		now[c.Name()] = c.StatusName
	}
	if w.components == nil {
		var parts []string
		for _, name := range sortedKeys(now) {
			parts = append(parts, name+": "+now[name])
		}
		w.linef("status page: %d components (%s)", len(now), strings.Join(parts, "; "))
	} else {
		for _, name := range sortedKeys(now) {
			if old, ok := w.components[name]; !ok {
				w.linef("status page: %s appears: %s", name, now[name])
				w.feedChanges++
			} else if old != now[name] {
				w.linef("status page: %s: %s → %s", name, old, now[name])
				w.feedChanges++
			}
		}
		for _, name := range sortedKeys(w.components) {
			if _, ok := now[name]; !ok {
				w.linef("status page: %s disappears", name)
				w.feedChanges++
			}
		}
	}
	w.components = now
}

// list prints what changed in the service list.
func (w *watcher) list(l *bcp.ServiceList) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := map[string]string{}
	bcpMode := 0
	for _, s := range l.Services {
		name := bcp.ShortServiceName(s.ID)
		if name == "" {
			name = s.ID
		}
		var def, active string
		for _, e := range s.Endpoints {
			now[name+" "+e.URL] = e.Status.String()
			if e.Order == 0 {
				def = e.URL
			}
			if active == "" && e.Status == bcp.StatusActive {
				active = e.URL
			}
		}
		if def != "" && active != def {
			bcpMode++
		}
	}
	if w.endpoints == nil {
		w.linef("service list of %s (%s): %d services, %d in BCP mode", l.IssueInstant.Format(time.RFC3339), l.Environment, len(l.Services), bcpMode)
	} else {
		w.linef("new service list of %s: %d services, %d in BCP mode", l.IssueInstant.Format(time.RFC3339), len(l.Services), bcpMode)
		for _, k := range sortedKeys(now) {
			if old, ok := w.endpoints[k]; !ok {
				w.linef("  added   %s %s", k, now[k])
				w.endpointChanges++
			} else if old != now[k] {
				w.linef("  %s: %s → %s", k, old, now[k])
				w.endpointChanges++
			}
		}
		for _, k := range sortedKeys(w.endpoints) {
			if _, ok := now[k]; !ok {
				w.linef("  removed %s", k)
				w.endpointChanges++
			}
		}
	}
	w.endpoints = now
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
