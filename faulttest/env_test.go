package faulttest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	p, err := platformtest.Start(platformtest.Config{Patients: patients, Seed: seed, ActiveBCP: true})
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
	attempt time.Duration // attempt timeout of every service; 0 = generous
	// faulted names the services given an explicit policy: attempt timeout faultedAttempt and
	// no retry pass (a test is about what a fault does to one pass over the endpoints).
	faulted        []string
	faultedAttempt time.Duration // 0 = the setup's attempt timeout
	// cuts, when set, makes the client's transport cut requests to the endpoints it names
	// after cutAfter (see cutTransport).
	cuts   *cutSet
	logger *zap.Logger
	mutate func(*connector.Config)
	opts   []connector.Option
}

// generous is the attempt timeout of the fault tests: an overloaded machine cannot make a
// healthy endpoint miss it. What the tests assert is an outcome, never a speed; an attempt
// on a faulted endpoint ends by the fault itself (refused, an error answer, the size limit)
// or, for a slowness fault, by the test's cut (cutAfter) — never by racing a healthy endpoint
// against a short timeout.
const generous = 20 * time.Second

// cutAfter is how long a request to an endpoint under a slowness fault (hang, delay, drip)
// lives before the test's transport cuts it: a per-endpoint deadline, as a vendor's
// transport may set, that leaves the healthy endpoints their generous attempt timeout.
const cutAfter = 300 * time.Millisecond

// cutSet is the set of endpoint URLs whose requests are cut after cutAfter, shared by the
// transports of a test's clients; it counts the requests it cut.
type cutSet struct {
	mu       sync.Mutex
	prefixes []string
	n        atomic.Int64
}

// set makes urls the endpoints to cut (replacing the previous set).
func (s *cutSet) set(urls ...string) {
	s.mu.Lock()
	s.prefixes = append([]string(nil), urls...)
	s.mu.Unlock()
}

// clear stops cutting.
func (s *cutSet) clear() { s.set() }

func (s *cutSet) match(u string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.prefixes {
		if p != "" && strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// cutTransport gives a request to an endpoint of its cutSet a deadline of cutAfter, from the
// request until its body is closed; other requests go through untouched. The error a cut
// request gets is context.DeadlineExceeded, a transport failure for bcp's classifier.
type cutTransport struct {
	next http.RoundTripper
	cuts *cutSet
}

func (c *cutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !c.cuts.match(req.URL.String()) {
		return c.next.RoundTrip(req)
	}
	c.cuts.n.Add(1)
	ctx, cancel := context.WithTimeout(req.Context(), cutAfter)
	resp, err := c.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// config is the Config a vendor writes for w's platform: a PKCS#12 keystore on disk, the
// platform's roots, generous connect (10 s) and attempt timeouts (see generous) and breakers
// that probe again quickly.
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
		s.attempt = generous
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
	cfg.Timeouts = connector.Timeouts{Connect: 10 * time.Second, Attempt: s.attempt}
	cfg.ServiceListPoll = time.Second // a list fetch that timed out at New is retried soon
	cfg.BCP = bcp.Config{
		Breaker: bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: 200 * time.Millisecond, MaxOpenTimeout: time.Second, Jitter: -1},
		Router:  bcp.RouterConfig{HoldDown: -1, PanicProbeInterval: 100 * time.Millisecond},
	}
	if len(s.faulted) > 0 {
		cfg.BCP.Services = map[string]bcp.ServicePolicy{}
		d := s.faultedAttempt
		if d == 0 {
			d = s.attempt
		}
		for _, svc := range s.faulted {
			// No retry pass: a test is about what each fault does to one pass over the
			// endpoints, and a retry pass would double the cost of every fault.
			cfg.BCP.Services[svc] = bcp.ServicePolicy{AttemptTimeout: d, Idempotent: svc != connector.ServiceEHealthBox, Retries: -1}
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
	if s.cuts != nil {
		tr := connector.NewTransport(w.p.CACertPool(), cfg.Timeouts.Connect)
		t.Cleanup(tr.CloseIdleConnections)
		opts = append(opts, connector.WithTransport(&cutTransport{next: tr, cuts: s.cuts}))
	}
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

// message is the eHealthBox message the tests write: key "" = a generated PublicationId,
// partition orders it, content stands for a document the vendor sealed.
func message(key, partition string, content []byte) connector.EHealthBoxMessage {
	return connector.EHealthBoxMessage{PublicationID: key, Partition: partition, Title: "claim",
		Recipients: []connector.EHealthBoxAddress{{ID: "10082533004", Type: "NIHII", Quality: "DOCTOR"}}, Content: content}
}
