package cookbook_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// The examples share one stand-in of the platform (its keys are costly to make); each
// example clears the faults it injects.
var (
	platformOnce sync.Once
	shared       *platformtest.Platform
	sharedID     *platformtest.Identity
)

// platform returns the stand-in of the platform every example talks to. In production there
// is nothing to start: the real platform is there.
func platform() *platformtest.Platform {
	platformOnce.Do(func() {
		p, err := platformtest.Start(platformtest.Config{Patients: 40, Seed: 2026})
		if err != nil {
			panic(err)
		}
		id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Cookbook")
		if err != nil {
			panic(err)
		}
		shared, sharedID = p, id
	})
	return shared
}

// pharmacy returns the pharmacy registered with the stand-in.
func pharmacy() *platformtest.Identity {
	platform()
	return sharedID
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// pharmacyConfig is the Config of chapter 1 (getting started) pointed at the stand-in, with
// its keystore and store in dir. The examples change what their chapter is about.
func pharmacyConfig(dir string) connector.Config {
	p, id := platform(), pharmacy()
	p12, err := id.PKCS12("keystore password")
	if err != nil {
		panic(err)
	}
	keystore := filepath.Join(dir, "pharmacy.p12")
	if err := os.WriteFile(keystore, p12, 0o600); err != nil {
		panic(err)
	}
	cfg := connector.DefaultConfig()
	cfg.ServiceListURL = p.ServiceListBaseURL()
	cfg.ServiceListRoots = p.ServiceListRoots()
	cfg.TLSRoots = p.CACertPool()
	cfg.STSRoots = p.STSRoots()
	cfg.StatusFeedURL = p.StatusFeedURL()
	cfg.StatusComponents = map[string][]string{
		"Insurability": {connector.ServiceInsurability},
		"eHealthBox":   {connector.ServiceEHealthBox},
		"ETK Depot":    {connector.ServiceETK},
	}
	cfg.Credentials = connector.Credentials{PKCS12File: keystore, Password: "keystore password"}
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: id.NIHII, SSIN: id.SSIN}
	cfg.Package = connector.PackageLicense{Name: "cookbook", Username: "vendor", Password: "licence"}
	cfg.CacheDir = filepath.Join(dir, "store")
	cfg.CacheKeys = [][]byte{newKey()}
	// Seconds instead of minutes, so that the examples do not wait: breakers probe again
	// after 200 ms and a recovered endpoint is used again at once.
	cfg.BCP = bcp.Config{
		Breaker: bcp.BreakerConfig{OpenTimeout: 200 * time.Millisecond, MaxOpenTimeout: time.Second},
		Router:  bcp.RouterConfig{HoldDown: -1, PanicProbeInterval: 100 * time.Millisecond},
	}
	return cfg
}

// newKey returns a fresh 32-byte store key; a vendor takes it from its own key store.
func newKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}

// tempDir makes a directory for one example; the caller removes it.
func tempDir() string {
	dir, err := os.MkdirTemp("", "ehgate-cookbook-")
	if err != nil {
		panic(err)
	}
	return dir
}

// insured returns the i-th known patient with an open coverage today.
func insured(i int) platformtest.Patient {
	for _, pt := range platform().Patients() {
		if pt.Known && pt.Insured {
			if i == 0 {
				return pt
			}
			i--
		}
	}
	panic("not enough insured patients")
}

// unknownPatient returns a valid SSIN the platform does not know.
func unknownPatient() platformtest.Patient {
	for _, pt := range platform().Patients() {
		if !pt.Known {
			return pt
		}
	}
	panic("no unknown patient")
}

// allSitesDown makes every site of the platform refuse connections; the returned function
// brings them back.
func allSitesDown() (restore func()) {
	p := platform()
	for _, s := range p.Sites() {
		s.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	return func() {
		for _, s := range p.Sites() {
			s.Clear("")
		}
	}
}

// waitFor reads events until one satisfies ok (true) or the timeout passes (false).
func waitFor(events <-chan connector.Event, timeout time.Duration, ok func(connector.Event) bool) bool {
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-events:
			if !open {
				return false
			}
			if ok(ev) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// waitMode waits until service is in mode.
func waitMode(c *connector.Client, events <-chan connector.Event, service string, mode connector.Mode) bool {
	if m, _ := c.Mode(service); m == mode {
		return true
	}
	return waitFor(events, 20*time.Second, func(ev connector.Event) bool {
		if m, _ := c.Mode(service); m == mode {
			return true
		}
		return ev.Kind == connector.EventModeChanged && ev.Service == service && ev.Mode == mode
	})
}

var bg = context.Background()

// must stops an example on an error it does not expect.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("cookbook: %v", err))
	}
}
