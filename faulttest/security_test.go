package faulttest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// testCA is a throw-away CA with one server certificate for 127.0.0.1.
type testCA struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testCA{pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// tlsServer serves the handler over TLS with the given version range, counting requests
// that reached the handler.
func tlsServer(t *testing.T, ca *testCA, minV, maxV uint16, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "should never be reached", http.StatusTeapot)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.cert}, MinVersion: minV, MaxVersion: maxV}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestSecurity_TLSMinimumVersion: a server speaking only TLS 1.0 or 1.1 is refused by the
// transport the connector builds (connector.NewTransport, also what New uses), both when
// fetched directly and as the service list of a client; a TLS 1.2 server with the same
// certificate is accepted, so the refusal is the version's.
func TestSecurity_TLSMinimumVersion(t *testing.T) {
	ca := newTestCA(t, "tls-version")
	for _, v := range []struct {
		name     string
		min, max uint16
		refused  bool
	}{
		{"TLS 1.0 only", tls.VersionTLS10, tls.VersionTLS10, true},
		{"TLS 1.1 only", tls.VersionTLS11, tls.VersionTLS11, true},
		{"TLS 1.2 only", tls.VersionTLS12, tls.VersionTLS12, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := tlsServer(t, ca, v.min, v.max, &hits)
			tr := connector.NewTransport(ca.pool, 2*time.Second)
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/servicelist.sha2")
			if !v.refused {
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, int64(1), hits.Load())
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "protocol version")
			require.Zero(t, hits.Load(), "no request reached the server")

			// The same through a client: the service list cannot be read, nothing was sent.
			c := securityClient(t, srv.URL+"/servicelist", ca.pool)
			// New does not wait for the list: wait for its first fetch to end.
			require.True(t, waitUntil(30*time.Second, func() bool { return c.Status().List.LastError != "" }))
			st := c.Status()
			require.Contains(t, st.List.LastError, "protocol version", "list status: %+v", st.List)
			require.Zero(t, hits.Load())
		})
	}
}

// securityClient builds a client whose service list is at listURL (no platform behind it).
func securityClient(t *testing.T, listURL string, tlsRoots *x509.CertPool) *connector.Client {
	t.Helper()
	w := sharedWorld(t)
	cfg := w.config(t, &clientSetup{attempt: 2 * time.Second})
	cfg.ServiceListURL = listURL
	cfg.TLSRoots = tlsRoots
	c, err := connector.New(cfg)
	require.NoError(t, err, "New does not fail when the platform is unreachable")
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var (
	sharedOnce sync.Once
	shared     *world
	sharedErr  error
)

// sharedWorld is one platform for the security tests, closed by TestMain.
func sharedWorld(t testing.TB) *world {
	t.Helper()
	sharedOnce.Do(func() {
		p, err := platformtest.Start(platformtest.Config{Patients: 40, Seed: 77, ActiveBCP: true})
		if err != nil {
			sharedErr = err
			return
		}
		id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Security")
		if err != nil {
			sharedErr = err
			p.Close()
			return
		}
		shared = &world{p: p, id: id}
	})
	require.NoError(t, sharedErr)
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.p.Close()
	}
	os.Exit(code)
}

// TestSecurity_CertificateVerification: a server whose certificate comes from a CA the
// client does not trust is refused (service list and business calls), and no source file
// of the module turns verification off.
func TestSecurity_CertificateVerification(t *testing.T) {
	w := sharedWorld(t)
	other := newTestCA(t, "stranger")

	// A stranger's list server: refused before any request is made.
	var hits atomic.Int64
	srv := tlsServer(t, other, tls.VersionTLS12, 0, &hits)
	c := securityClient(t, srv.URL+"/servicelist", w.p.CACertPool())
	require.True(t, waitUntil(30*time.Second, func() bool { return c.Status().List.LastError != "" }), "the first fetch of the list ends")
	require.Contains(t, c.Status().List.LastError, "certificate signed by unknown authority")
	require.Zero(t, hits.Load())

	// The real platform, but the client trusts another CA for TLS: nothing is answered live.
	cfg := w.config(t, &clientSetup{attempt: 2 * time.Second})
	cfg.TLSRoots = other.pool
	c2, err := connector.New(cfg)
	require.NoError(t, err)
	defer c2.Close()
	pt := w.insured(0, 1)[0]
	before := w.countAll(w.p.Sites()[0].Name(), platformtest.ServiceInsurability) + w.countAll(w.p.Sites()[1].Name(), platformtest.ServiceInsurability)
	_, err = c2.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, connector.ErrNotCached, "nothing answered")
	require.NotContains(t, err.Error(), pt.SSIN)
	require.Contains(t, c2.Status().List.LastError, "certificate signed by unknown authority")
	after := w.countAll(w.p.Sites()[0].Name(), platformtest.ServiceInsurability) + w.countAll(w.p.Sites()[1].Name(), platformtest.ServiceInsurability)
	require.Equal(t, before, after, "no request reached the platform over an unverified connection")

	// No file of the module disables verification.
	needle := "Insecure" + "SkipVerify"
	root := filepath.Join("..")
	var offenders []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			offenders = append(offenders, path)
		}
		return nil
	}))
	require.Empty(t, offenders, "files mentioning %s", needle)
}

// recorder is a RoundTripper that keeps the bodies of the requests the client sends.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	url, action string
	body        []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Method == http.MethodPost {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{url: req.URL.String(), action: req.Header.Get("SOAPAction"), body: b})
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) last(action string) recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if strings.Trim(r.reqs[i].action, `"`) == action {
			return r.reqs[i]
		}
	}
	return recorded{}
}

// post sends a raw SOAP message to the platform and returns the answer's body.
func post(t *testing.T, w *world, url, action string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", action)
	hc := w.p.HTTPClient()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestSecurity_WrappingAndReplayRejected takes a real signed insurability request as the
// client sent it, then (1) re-sends it unchanged: accepted; (2) sends a wrapped copy (the
// signed Body moved into the header, a new Body asking about another patient): the platform
// refuses it (SOA-01001) and soap.Verifier says ErrWrapped / ErrDuplicateID; (3) replays the
// original when the platform's clock is ten minutes later (its 60 s timestamp has expired):
// refused, and soap.Verifier says ErrTimestampExpired.
func TestSecurity_WrappingAndReplayRejected(t *testing.T) {
	w := sharedWorld(t)
	rec := &recorder{next: connector.NewTransport(w.p.CACertPool(), 2*time.Second)}
	defer rec.next.(*http.Transport).CloseIdleConnections()
	c := w.client(t, &clientSetup{opts: []connector.Option{connector.WithTransport(rec)}})
	pts := w.insured(0, 2)
	_, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	orig := rec.last(connector.ActionInsurability)
	require.NotEmpty(t, orig.body)
	require.Contains(t, string(orig.body), pts[0].SSIN)

	rejected := func() int { return w.p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeRejected) }
	ok := func() int { return w.p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK) }

	// (1) The genuine message is accepted (so what follows is refused for the tampering).
	ok0 := ok()
	status, body := post(t, w, orig.url, connector.ActionInsurability, orig.body)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Equal(t, ok0+1, ok())

	// soap.Verifier with the roots the platform uses for holder-of-key certificates.
	v, err := soap.NewVerifier(soap.VerifierConfig{
		Roots: w.p.ProviderCertPool(),
		Assertion: func(a *etree.Element) (*x509.Certificate, error) {
			return w.id.Certificate, nil // the assertion's issuer is checked by the platform; here the wrapping
		},
	})
	require.NoError(t, err)
	_, err = v.Verify(orig.body)
	require.NoError(t, err, "the genuine message verifies")

	for _, keepID := range []bool{false, true} {
		wrapped := wrap(t, orig.body, pts[0].SSIN, pts[1].SSIN, keepID)
		r0 := rejected()
		status, body = post(t, w, orig.url, connector.ActionInsurability, wrapped)
		require.Contains(t, string(body), "SOA-01001", "wrapped message (Id kept: %v) refused: %d %s", keepID, status, body)
		require.NotContains(t, string(body), pts[1].LastName)
		require.Equal(t, r0+1, rejected())
		_, err = v.Verify(wrapped)
		if keepID {
			require.ErrorIs(t, err, soap.ErrDuplicateID)
		} else {
			require.ErrorIs(t, err, soap.ErrWrapped)
		}
	}

	// (3) Replay ten minutes later by the platform's clock (past the 60 s lifetime and the
	// 5 minutes of allowed skew).
	w.p.Sites()[0].Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultClockSkew, Skew: 10 * time.Minute})
	defer w.p.Sites()[0].Clear(platformtest.ServiceInsurability)
	r0 := rejected()
	status, body = post(t, w, orig.url, connector.ActionInsurability, orig.body)
	require.Contains(t, string(body), "SOA-01001", "replayed message refused: %d %s", status, body)
	require.Equal(t, r0+1, rejected())
	late, err := soap.NewVerifier(soap.VerifierConfig{
		Roots:     w.p.ProviderCertPool(),
		Assertion: func(*etree.Element) (*x509.Certificate, error) { return w.id.Certificate, nil },
		Now:       func() time.Time { return time.Now().Add(10 * time.Minute) },
	})
	require.NoError(t, err)
	_, err = late.Verify(orig.body)
	require.ErrorIs(t, err, soap.ErrTimestampExpired)
}

// wrap builds the classic XML signature wrapping of msg: the signed Body goes into a header
// element, and a new Body asks about another patient. keepID gives the new Body the signed
// Body's wsu:Id too.
func wrap(t *testing.T, msg []byte, from, to string, keepID bool) []byte {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(msg))
	env := doc.Root()
	var header, body *etree.Element
	for _, ch := range env.ChildElements() {
		switch ch.Tag {
		case "Header":
			header = ch
		case "Body":
			body = ch
		}
	}
	require.NotNil(t, header)
	require.NotNil(t, body)
	evil := body.Copy()
	if !keepID {
		for _, a := range append([]etree.Attr(nil), evil.Attr...) {
			if a.Key == "Id" {
				evil.RemoveAttr(a.FullKey())
			}
		}
	}
	for _, el := range evil.FindElements("//*") {
		if el.Text() == from {
			el.SetText(to)
		}
	}
	env.RemoveChild(body)
	holder := header.CreateElement("Wrapper")
	holder.AddChild(body)
	env.AddChild(evil)
	out, err := doc.WriteToBytes()
	require.NoError(t, err)
	require.Contains(t, string(out), to)
	return out
}

// TestSecurity_OversizedAndSlowAnswersCutOff: a 1 GiB answer on every endpoint ends each
// attempt in a typed limit error (soap.ErrLimit, Limit "bytes", inside the
// *bcp.UnavailableError) after the client read at most the byte limit and a small drain of
// the body, never the whole answer; a dripping answer on every endpoint ends each attempt by
// the attempt timeout (context.DeadlineExceeded), so the call fails with a typed error rather
// than waiting for it. Pass or fail is decided by typed outcomes and byte counts only: the
// huge case has an attempt timeout (60 s) far above what reading the limit takes on a loaded
// machine, so the limit is always what ends it; the drip is far longer than its attempt
// timeout whatever the load. Durations are logged, not asserted.
func TestSecurity_OversizedAndSlowAnswersCutOff(t *testing.T) {
	w := sharedWorld(t)
	pt := w.insured(0, 1)[0]
	defer w.clearAll()
	body := etree.NewElement("ns:GetInsurabilityForPharmacistRequest")
	body.CreateAttr("xmlns:ns", connector.NSInsurabilityProtocol)
	const answerSize = 1 << 30

	for _, tc := range []struct {
		name    string
		fault   platformtest.Fault
		attempt time.Duration
		check   func(t *testing.T, ae bcp.AttemptError, read int64)
	}{
		{"huge 1 GiB", platformtest.Fault{Kind: platformtest.FaultHuge, Size: answerSize}, time.Minute, func(t *testing.T, ae bcp.AttemptError, read int64) {
			require.ErrorIs(t, ae.Err, soap.ErrLimit, "attempt at %s", ae.Endpoint.URL)
			var le *soap.LimitError
			require.ErrorAs(t, ae.Err, &le)
			require.Equal(t, "bytes", le.Limit)
			require.Equal(t, maxBytes(), le.Max)
		}},
		{"drip 16 B/s", platformtest.Fault{Kind: platformtest.FaultDrip, BytesPerSecond: 16}, time.Second, func(t *testing.T, ae bcp.AttemptError, read int64) {
			require.ErrorIs(t, ae.Err, context.DeadlineExceeded, "attempt at %s", ae.Endpoint.URL)
			require.NotErrorIs(t, ae.Err, soap.ErrLimit)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counted := &countingTransport{next: connector.NewTransport(w.p.CACertPool(), 10*time.Second)}
			for _, s := range w.p.Sites() {
				counted.prefixes = append(counted.prefixes, w.p.URL(platformtest.ServiceInsurability, s.Name()))
			}
			defer counted.next.(*http.Transport).CloseIdleConnections()
			c := w.client(t, &clientSetup{faulted: []string{connector.ServiceInsurability}, faultedAttempt: tc.attempt,
				opts: []connector.Option{connector.WithTransport(counted)}})
			warm(t, func() error { _, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN}); return err })
			for _, s := range w.p.Sites() {
				s.Inject(platformtest.ServiceInsurability, tc.fault)
			}
			defer func() {
				for _, s := range w.p.Sites() {
					s.Clear(platformtest.ServiceInsurability)
				}
			}()
			counted.reset()
			t0 := time.Now()
			_, err := c.Call(bg, connector.ServiceInsurability, connector.ActionInsurability, body)
			took := time.Since(t0)
			require.ErrorIs(t, err, bcp.ErrUnavailable)
			var ue *bcp.UnavailableError
			require.ErrorAs(t, err, &ue)
			var tried int
			for _, ae := range ue.Attempts {
				if ae.Err == bcp.ErrOpen || ae.Err == bcp.ErrHeld || ae.Err == bcp.ErrBudget {
					continue
				}
				tried++
				tc.check(t, ae, 0)
			}
			require.Equal(t, len(w.p.Sites()), tried, "every endpoint tried once: %v", err)
			reads := counted.reads()
			require.Len(t, reads, tried, "one request to an insurability endpoint per attempt")
			// Not read whole: each answer's body was read up to the limit (+1 byte to see it
			// passed) and the client's bounded drain before closing (64 KiB), never more.
			var total int64
			for _, n := range reads {
				require.LessOrEqual(t, n, maxBytes()+1+64<<10, "bytes read of one answer")
				total += n
			}
			require.Less(t, total, int64(answerSize)/10, "the answers were not read whole")
			t.Logf("%s: %d attempts, %d body bytes read in all (%v per answer), call took %.2f s (attempt timeout %s; a figure, not asserted)",
				tc.name, tried, total, reads, took.Seconds(), tc.attempt)
		})
	}
}

// countingTransport counts the response body bytes the client reads, per request to an
// endpoint whose URL starts with one of prefixes (a request that got no answer counts 0).
type countingTransport struct {
	next     http.RoundTripper
	prefixes []string
	mu       sync.Mutex
	n        []*atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	counted := false
	for _, p := range c.prefixes {
		counted = counted || strings.HasPrefix(req.URL.String(), p)
	}
	if !counted {
		return c.next.RoundTrip(req)
	}
	n := new(atomic.Int64)
	c.mu.Lock()
	c.n = append(c.n, n)
	c.mu.Unlock()
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: n}
	return resp, nil
}

func (c *countingTransport) reset() {
	c.mu.Lock()
	c.n = nil
	c.mu.Unlock()
}

func (c *countingTransport) reads() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, len(c.n))
	for i, n := range c.n {
		out[i] = n.Load()
	}
	return out
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}

// TestSecurity_NoSecretsOrPersonalDataInLogs captures every log entry at info and above of
// a full run (live answers, ETK, writes, an outage with cached answers and queued writes,
// the status feed's Major Outage, operator fallback, recovery and replay, a new client on
// the same store) and searches it for every SSIN of the population and of the pharmacist,
// patient names, the keystore and licence passwords, the cache key (raw, hex and base64),
// every assertion ID the STS issued, and the writes' payloads.
func TestSecurity_NoSecretsOrPersonalDataInLogs(t *testing.T) {
	w := newWorld(t, 4242, 40)
	logs := &syncLog{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.InfoLevel)
	logger := zap.New(core)
	dir := t.TempDir()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	setup := func() *clientSetup {
		return &clientSetup{dir: dir, key: key, logger: logger, mutate: func(cfg *connector.Config) {
			cfg.StatusFeedURL = w.p.StatusFeedURL()
			cfg.StatusPoll = 100 * time.Millisecond
			cfg.StatusComponents = map[string][]string{"Insurability": {connector.ServiceInsurability}}
		}}
	}
	c := w.client(t, setup())
	pts := w.insured(0, 6)
	var unknown platformtest.Patient
	for _, pt := range w.p.Patients() {
		if !pt.Known {
			unknown = pt
			break
		}
	}
	var payloads []string
	for _, pt := range pts[:4] {
		_, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN, UserReference: "ref-" + pt.SSIN})
		require.NoError(t, err)
		_, err = c.GenericInsurability(bg, connector.GenericInsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
		p := "claim for " + pt.LastName + " " + pt.SSIN
		payloads = append(payloads, p)
		_, err = c.SendMessage(bg, message("", pt.SSIN, []byte(p)))
		require.NoError(t, err)
	}
	_, err = c.Insurability(bg, connector.InsurabilityRequest{SSIN: unknown.SSIN})
	require.ErrorIs(t, err, connector.ErrBusiness)
	_, err = c.Insurability(bg, connector.InsurabilityRequest{SSIN: pts[0].SSIN[:10] + "x"})
	require.ErrorIs(t, err, connector.ErrInvalidSSIN)
	_, err = c.ETK(bg, connector.Identifier{Type: "SSIN", Value: w.id.SSIN})
	_ = err // an SSIN the depot may not know: only the logs matter here

	// Outage: every site refuses, the feed says Major Outage.
	for _, s := range w.p.Sites() {
		s.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	for _, pt := range pts {
		_, _ = c.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN}) // cached for the first 4, errors for the rest
	}
	var queued []string
	for _, pt := range pts[4:] {
		p := "queued claim for " + pt.LastName + " " + pt.SSIN
		payloads = append(payloads, p)
		r, err := c.SendMessage(bg, message("", pt.SSIN, []byte(p)))
		require.NoError(t, err)
		require.True(t, r.Queued)
		queued = append(queued, r.Key)
	}
	w.p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	require.True(t, waitUntil(20*time.Second, func() bool { m, _ := c.Mode(connector.ServiceInsurability); return m == connector.ModeFallback }))
	require.NoError(t, c.ActivateFallback(connector.ServiceEHealthBox, "planned maintenance drill"))
	require.NoError(t, c.EndFallback(connector.ServiceEHealthBox))

	// Recovery: replay, regularisation.
	w.clearAll()
	w.p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	require.True(t, waitUntil(30*time.Second, func() bool {
		n := w.writeCounts()
		return n[queued[0]] == 1 && n[queued[1]] == 1 && c.Status().Outbox.Pending == 0
	}), "queued writes replayed")
	require.True(t, waitUntil(20*time.Second, func() bool {
		r, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: pts[5].SSIN})
		return err == nil && r.Source == connector.SourceLive
	}))
	require.NoError(t, c.Close())
	// A new client on the same store (token and list loaded from disk).
	c2 := w.client(t, setup())
	_, err = c2.Insurability(bg, connector.InsurabilityRequest{SSIN: pts[1].SSIN})
	require.NoError(t, err)
	require.NoError(t, c2.Close())

	text := logs.String()
	require.NotEmpty(t, text)
	lines := strings.Count(text, "\n")
	require.Greater(t, lines, 5, "the run logged its mode changes")
	secrets := map[string]string{
		"keystore password":    keystorePassword,
		"licence password":     licencePassword,
		"cache key (hex)":      hex.EncodeToString(key),
		"cache key (base64)":   base64.StdEncoding.EncodeToString(key),
		"cache key (raw)":      string(key),
		"pharmacist's SSIN":    w.id.SSIN,
		"unknown patient SSIN": unknown.SSIN,
	}
	for _, pt := range w.p.Patients() {
		secrets["SSIN of a patient"] = pt.SSIN
		require.NotContains(t, text, pt.SSIN, "an SSIN in the logs")
		if pt.Known {
			require.NotContains(t, text, pt.FirstName+" "+pt.LastName, "a patient's name in the logs")
			require.NotContains(t, text, pt.RegNrWithMut, "a registration number in the logs")
		}
	}
	require.NotEmpty(t, w.p.Tokens())
	// An assertion ID names the bearer token at the platform: no line at info or above may
	// carry one. Package sts names a token there by assertion_ref, a digest of the ID: the
	// lines that name a token are in the logs, so the search below has something to miss.
	require.Contains(t, text, `"assertion_ref"`, "tokens named at info by their reference")
	for _, line := range strings.Split(text, "\n") {
		for _, tok := range w.p.Tokens() {
			if strings.Contains(line, tok.AssertionID) {
				t.Errorf("an assertion ID in the logs: %s", line)
			}
		}
	}
	for _, p := range payloads {
		require.NotContains(t, text, p)
		require.NotContains(t, text, base64.StdEncoding.EncodeToString([]byte(p)))
	}
	for what, s := range secrets {
		require.NotContains(t, text, s, "%s in the logs", what)
	}
	t.Logf("searched %d log lines (%d bytes) at info and above for %d SSINs, %d assertion IDs, %d payloads and %d secrets",
		lines, len(text), len(w.p.Patients())+1, len(w.p.Tokens()), len(payloads), 4)
}

// maxBytes is the byte limit the client parses answers with (soap's default).
func maxBytes() int64 {
	if soap.DefaultLimits.MaxBytes > 0 {
		return soap.DefaultLimits.MaxBytes
	}
	return 10 << 20
}
