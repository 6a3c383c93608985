package faulttest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// keystorePassword protects every identity's PKCS#12 keystore in these tests; the security
// test searches the logs for it.
const keystorePassword = "faulttest keystore secret 7f3a"

// licencePassword is the software licence's password (CommonInput/Origin/Package).
const licencePassword = "faulttest licence secret 91c2"

// world is one platform with one registered pharmacy.
type world struct {
	p     *platformtest.Platform
	id    *platformtest.Identity
	other *platformtest.Identity // a second pharmacy, whose ETK nobody asked before
}

func newWorld(t testing.TB, seed int64, patients int) *world {
	t.Helper()
	p, err := platformtest.Start(platformtest.Config{Patients: patients, Seed: seed})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	id, err := p.NewIdentity(platformtest.Pharmacy, fmt.Sprintf("Apotheek %d", seed))
	require.NoError(t, err)
	other, err := p.NewIdentity(platformtest.Pharmacy, fmt.Sprintf("Apotheek %d bis", seed))
	require.NoError(t, err)
	// The depot makes an ETK's key on its first request: make both now, so that a live ETK
	// call does not pay an RSA key generation inside an attempt timeout.
	for _, i := range []*platformtest.Identity{id, other} {
		_, _, err := p.ETK("NIHII-PHARMACY", i.NIHII, "")
		require.NoError(t, err)
	}
	return &world{p: p, id: id, other: other}
}

// clientSetup is what a test may change in the client it builds.
type clientSetup struct {
	dir     string        // cache directory; "" = a new t.TempDir()
	key     []byte        // cache key; nil = a fresh random key
	attempt time.Duration // attempt timeout of every service; 0 = 5 s
	// short names the services whose attempts time out after shortAttempt (the faulted one:
	// a hang, drip or delay then costs 2 s, while the other services keep the default and
	// never fail by a slow moment of a loaded machine).
	short        []string
	shortAttempt time.Duration // 0 = 2 s
	logger       *zap.Logger
	mutate       func(*connector.Config)
	opts         []connector.Option
}

// config is the Config a vendor writes for w's platform: a PKCS#12 keystore on disk, the
// platform's roots, short attempt timeouts (hang, drip and delay faults cost one attempt
// each) and breakers that probe again quickly.
func (w *world) config(t testing.TB, s *clientSetup) connector.Config {
	t.Helper()
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	if s.key == nil {
		s.key = make([]byte, 32)
		_, err := rand.Read(s.key)
		require.NoError(t, err)
	}
	if s.attempt == 0 {
		s.attempt = 5 * time.Second
	}
	p12, err := w.id.PKCS12(keystorePassword)
	require.NoError(t, err)
	ks := filepath.Join(s.dir, "pharmacy.p12")
	require.NoError(t, os.WriteFile(ks, p12, 0o600))
	cfg := connector.DefaultConfig()
	cfg.ServiceListURL = w.p.ServiceListBaseURL()
	cfg.ServiceListRoots = w.p.ServiceListRoots()
	cfg.TLSRoots = w.p.CACertPool()
	cfg.STSRoots = w.p.STSRoots()
	cfg.Credentials = connector.Credentials{PKCS12File: ks, Password: keystorePassword}
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: w.id.NIHII, SSIN: w.id.SSIN}
	cfg.Package = connector.PackageLicense{Name: "faulttest", Username: "vendor", Password: licencePassword}
	cfg.CacheDir = filepath.Join(s.dir, "store")
	cfg.CacheKeys = [][]byte{s.key}
	cfg.Timeouts = connector.Timeouts{Connect: 2 * time.Second, Attempt: s.attempt}
	cfg.ServiceListPoll = time.Second // a list fetch that timed out at New is retried soon
	cfg.BCP = bcp.Config{
		Breaker: bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: 200 * time.Millisecond, MaxOpenTimeout: time.Second, Jitter: -1},
		Router:  bcp.RouterConfig{HoldDown: -1, PanicProbeInterval: 100 * time.Millisecond},
	}
	if len(s.short) > 0 {
		cfg.BCP.Services = map[string]bcp.ServicePolicy{}
		for _, svc := range s.short {
			d := s.shortAttempt
			if d == 0 {
				d = shortAttempt
			}
			// No retry pass: the matrix is about what each fault does to one pass over the
			// endpoints, and a retry pass would double the cost of every slow fault.
			cfg.BCP.Services[svc] = bcp.ServicePolicy{AttemptTimeout: d, Idempotent: svc != connector.ServiceTarification, Retries: -1}
		}
	}
	if s.mutate != nil {
		s.mutate(&cfg)
	}
	return cfg
}

// client builds a connector.Client for w and closes it at the end of the test.
func (w *world) client(t testing.TB, s *clientSetup) *connector.Client {
	t.Helper()
	if s == nil {
		s = &clientSetup{}
	}
	cfg := w.config(t, s)
	opts := append([]connector.Option{}, s.opts...)
	if s.logger != nil {
		opts = append(opts, connector.WithLogger(s.logger))
	}
	c, err := connector.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clearAll removes every fault of every site, the control site included.
func (w *world) clearAll() {
	for _, s := range w.p.Sites() {
		s.Clear("")
	}
	w.p.Site(platformtest.ControlSite).Clear("")
}

// insured returns n known, insured patients, skipping the first skip of them.
func (w *world) insured(skip, n int) []platformtest.Patient {
	var out []platformtest.Patient
	for _, pt := range w.p.Patients() {
		if pt.Known && pt.Insured {
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, pt)
			if len(out) == n {
				break
			}
		}
	}
	if len(out) < n {
		panic("faulttest: population too small")
	}
	return out
}

// countAll counts the requests to service on site, whatever their outcome.
func (w *world) countAll(site, service string) int {
	n := 0
	for k, v := range w.p.Counters() {
		if k.Site == site && k.Service == service {
			n += v
		}
	}
	return n
}

// writeCounts counts the platform's accepted writes per idempotency key.
func (w *world) writeCounts() map[string]int {
	seen := map[string]int{}
	for _, wr := range w.p.Writes() {
		seen[wr.Key]++
	}
	return seen
}

// waitUntil polls cond (a few ms apart) until it holds or the timeout passes. It waits for
// a state the code under test must reach, never for time to pass.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// unavailableNames reports whether err is a *bcp.UnavailableError for service whose text
// names every URL in urls.
func unavailableNames(err error, service string, urls ...string) error {
	if !errors.Is(err, bcp.ErrUnavailable) {
		return fmt.Errorf("not bcp.ErrUnavailable: %v", err)
	}
	var ue *bcp.UnavailableError
	if !errors.As(err, &ue) {
		return fmt.Errorf("no *bcp.UnavailableError in %v", err)
	}
	if !strings.Contains(ue.Service, service) {
		return fmt.Errorf("unavailable error names service %q, want %q", ue.Service, service)
	}
	msg := err.Error()
	for _, u := range urls {
		if !strings.Contains(msg, u) {
			return fmt.Errorf("error %q does not name endpoint %s", msg, u)
		}
	}
	return nil
}

var bg = context.Background()

// shortAttempt is the attempt timeout of a faulted service in the matrix.
const shortAttempt = 2 * time.Second

// syncLog is a zapcore.WriteSyncer collecting log lines in memory.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncLog) Sync() error { return nil }

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
