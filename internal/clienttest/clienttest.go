// Package clienttest builds connector clients on a platformtest platform for the tests of
// the optional observability packages (metrics, tracing, console), which cannot use the
// connector's own test helpers.
package clienttest

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/sts"
)

// Platform starts a platform with 40 patients, both sites ACTIVE in its service list, and a
// pharmacy identity; Close is registered with t.Cleanup.
func Platform(t testing.TB) (*platformtest.Platform, *platformtest.Identity) {
	t.Helper()
	p, err := platformtest.Start(platformtest.Config{Patients: 40, Seed: 11, ActiveBCP: true}) // two ACTIVE sites: failover is observable
	require.NoError(t, err)
	t.Cleanup(p.Close)
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	require.NoError(t, err)
	return p, id
}

// Config is a client configuration for p: breakers open after two failures and stay open
// for an hour, no hold-down, the list and the feed polled once an hour, so that nothing
// changes behind a test's back whatever the machine's speed.
func Config(t testing.TB, p *platformtest.Platform, id *platformtest.Identity) connector.Config {
	t.Helper()
	cfg, err := NewConfig(p, id, t.TempDir())
	require.NoError(t, err)
	return cfg
}

// NewConfig is Config for examples (no testing.TB): the store goes in dir.
func NewConfig(p *platformtest.Platform, id *platformtest.Identity, dir string) (connector.Config, error) {
	cred, err := sts.NewCredential(id.Certificate, id.Key, nil, "test identity", sts.LoadOptions{})
	if err != nil {
		return connector.Config{}, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return connector.Config{
		ServiceListURL:   p.ServiceListBaseURL(),
		ServiceListRoots: p.ServiceListRoots(),
		TLSRoots:         p.CACertPool(),
		STSRoots:         p.STSRoots(),
		Credentials:      connector.Credentials{Identification: cred},
		Identity:         connector.Identity{NIHII: id.NIHII, SSIN: id.SSIN},
		Package:          connector.PackageLicense{Name: "ehgate-test", Username: "vendor", Password: "licence"},
		CacheDir:         dir,
		CacheKeys:        [][]byte{key},
		StatusFeedURL:    p.StatusFeedURL(),
		ServiceListPoll:  time.Hour,
		StatusPoll:       time.Hour,
		StatusComponents: map[string][]string{
			"Insurability":         {connector.ServiceInsurability},
			"Generic Insurability": {connector.ServiceGenericInsurability},
			"eHealthBox":           {connector.ServiceEHealthBox},
			"ETK Depot":            {connector.ServiceETK},
		},
		BCP: bcp.Config{
			Breaker: bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: time.Hour, MaxOpenTimeout: time.Hour, Jitter: -1},
			Router:  bcp.RouterConfig{HoldDown: -1},
		},
	}, nil
}

// Client is a client on p built with opts, returned once its service list is loaded; Close is
// registered with t.Cleanup.
func Client(t testing.TB, p *platformtest.Platform, id *platformtest.Identity, opts ...connector.Option) *connector.Client {
	t.Helper()
	c, err := connector.New(Config(t, p, id), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	// New fetches a first service list in the background: tests start once it is in.
	Wait(t, "service list loaded", func() bool { return c.Status().List.Source != "none" })
	return c
}

// Patients returns n known, insured patients of p.
func Patients(p *platformtest.Platform, n int) []platformtest.Patient {
	var out []platformtest.Patient
	for _, pt := range p.Patients() {
		if pt.Known && pt.Insured && len(out) < n {
			out = append(out, pt)
		}
	}
	return out
}

// Unknown returns a patient the platform does not know (a business refusal).
func Unknown(p *platformtest.Platform) (platformtest.Patient, bool) {
	for _, pt := range p.Patients() {
		if !pt.Known {
			return pt, true
		}
	}
	return platformtest.Patient{}, false
}

// Wait polls cond every 5 ms until it holds, failing t after 20 s (a bound for a stuck
// machine, not a timing claim).
func Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
