package bcp

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// listPKI is a CA and a list-signing certificate issued by it.
type listPKI struct {
	caCert   *x509.Certificate
	leafCert *x509.Certificate
	leafKey  *rsa.PrivateKey
	roots    *x509.CertPool
}

var (
	listPKIOnce          sync.Once
	trustedPKI, roguePKI *listPKI
	listPKIErr           error
)

// testListPKIs returns the pinned PKI and an unrelated one, generated once per test binary.
func testListPKIs(tb testing.TB) (trusted, rogue *listPKI) {
	tb.Helper()
	listPKIOnce.Do(func() {
		trustedPKI, listPKIErr = newListPKI("Test Service List CA")
		if listPKIErr == nil {
			roguePKI, listPKIErr = newListPKI("Rogue CA")
		}
	})
	require.NoError(tb, listPKIErr)
	return trustedPKI, roguePKI
}

func newListPKI(caName string) (*listPKI, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: caName, Organization: []string{"ehgate tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "CBE=0809394427, SERVICELIST", Organization: []string{"ehgate tests"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leafCert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return &listPKI{caCert: caCert, leafCert: leafCert, leafKey: leafKey, roots: roots}, nil
}

// soapListVerifier is the verifier the connector builds: the enveloped signature of the
// ServiceList element, chained to the pinned roots, at time now.
func soapListVerifier(roots *x509.CertPool, now time.Time) func(raw []byte) error {
	return func(raw []byte) error {
		doc, err := soap.ParseDocument(bytes.NewReader(raw), soap.Limits{})
		if err != nil {
			return err
		}
		if doc.Root() == nil {
			return fmt.Errorf("no root element")
		}
		_, err = soap.VerifyEnveloped(doc.Root(), roots, soap.VerifyEnvelopedOptions{
			IDAttr: "Id",
			Now:    func() time.Time { return now },
		})
		return err
	}
}

// testListTime is the clock of the loader tests: lists are issued around it.
var testListTime = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// testLoaderNow is the Loaders' clock in tests: later than every list they publish
// (lists from the future are refused).
var testLoaderNow = testListTime.Add(48 * time.Hour)

// unsignedList returns a v2 list issued at issue whose insurability service has its default
// endpoint ACTIVE or not.
func unsignedList(issue time.Time, defaultActive bool) string {
	st0, st1 := "ACTIVE", "INACTIVE"
	if !defaultActive {
		st0, st1 = st1, st0
	}
	return `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" Id="_list-` + fmt.Sprint(issue.Unix()) +
		`" IssueInstant="` + issue.Format(time.RFC3339Nano) + `" Environment="Test">` +
		`<Service Id="` + insurabilityV2 + `" Name="INSURABILITY V2"><EndpointList>` +
		`<Endpoint Order="0" Status="` + st0 + `">https://services.example/Insurability/v2</Endpoint>` +
		`<Endpoint Order="1" Status="` + st1 + `">https://fallback.example:9443/ehealth/bcp/insurability</Endpoint>` +
		`</EndpointList><Cache Strategy="ENDPOINT_FIRST"><Expiry Type="ttl" Duration="PT8H"/></Cache></Service>` +
		`<Service Id="uddi:ehealth-fgov-be:business:iamsaml11tokenservice:v1" Name="STS"><EndpointList>` +
		`<Endpoint Order="0" Status="ACTIVE">https://services.example/IAM/Saml11TokenService/v1</Endpoint>` +
		`</EndpointList></Service></ServiceList>`
}

// signList signs doc's root with p's leaf key (enveloped, reference #Id, XAdES) and returns
// the serialised document.
func signList(tb testing.TB, p *listPKI, doc string) []byte {
	tb.Helper()
	d := etree.NewDocument()
	require.NoError(tb, d.ReadFromString(doc))
	require.NoError(tb, soap.SignEnveloped(d.Root(), p.leafKey, soap.EnvelopedOptions{
		IDAttr:       "Id",
		Certificates: []*x509.Certificate{p.leafCert},
		XAdES:        true,
		Now:          func() time.Time { return testListTime },
	}))
	out, err := d.WriteToBytes()
	require.NoError(tb, err)
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// listServer serves <base>.sha2 and <base>.xml over loopback TLS and counts requests.
type listServer struct {
	srv *httptest.Server

	mu           sync.Mutex
	xml          []byte
	sha2         string // announced hash; "" = the hash of xml
	status       int    // when not 0, every request gets this status
	etags        bool   // answer with ETags and honour If-None-Match
	sha2Hits     int
	xmlHits      int
	notModified  int
	ifNoneMatchs []string
}

func newListServer(tb testing.TB, xml []byte) *listServer {
	tb.Helper()
	s := &listServer{xml: xml}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	tb.Cleanup(func() {
		s.srv.Client().CloseIdleConnections()
		s.srv.Close()
	})
	return s
}

func (s *listServer) baseURL() string { return s.srv.URL + "/servicelist" }

func (s *listServer) set(xml []byte, sha2 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.xml, s.sha2 = xml, sha2
}

func (s *listServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func (s *listServer) counts() (sha2, xml int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sha2Hits, s.xmlHits
}

func (s *listServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var body []byte
	switch r.URL.Path {
	case "/servicelist.sha2":
		s.sha2Hits++
		h := s.sha2
		if h == "" {
			h = sha256Hex(s.xml)
		}
		body = []byte(h + "\n")
	case "/servicelist.xml":
		s.xmlHits++
		body = s.xml
	default:
		http.NotFound(w, r)
		return
	}
	if s.status != 0 {
		http.Error(w, "unavailable", s.status)
		return
	}
	if s.etags {
		etag := `"` + sha256Hex(body)[:16] + `"`
		inm := r.Header.Get("If-None-Match")
		s.ifNoneMatchs = append(s.ifNoneMatchs, r.URL.Path+" "+inm)
		w.Header().Set("ETag", etag)
		if inm == etag {
			s.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if strings.HasSuffix(r.URL.Path, ".xml") {
		w.Header().Set("Content-Type", "text/xml")
	}
	_, _ = w.Write(body)
}

// stepClock is a Clock that moves only when told to. Timers due at Advance run synchronously.
type stepClock struct {
	mu        sync.Mutex
	now       time.Time
	timers    []*stepTimer
	scheduled int
	changed   chan struct{}
}

type stepTimer struct {
	c    *stepClock
	at   time.Time
	f    func()
	done bool
}

func newStepClock(now time.Time) *stepClock {
	return &stepClock{now: now, changed: make(chan struct{})}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.scheduled++
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *stepTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the clock and runs the timers that fall due.
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t.f)
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// Pending is the number of timers not yet fired nor stopped.
func (c *stepClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// WaitScheduled blocks until n timers have been scheduled in all: a loop arms its timer
// when a run ends, so this waits for the end of the n-th run.
func (c *stepClock) WaitScheduled(tb testing.TB, n int) {
	tb.Helper()
	guard := time.NewTimer(20 * time.Second)
	defer guard.Stop()
	for {
		c.mu.Lock()
		got, ch := c.scheduled, c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			tb.Fatalf("waited for %d scheduled timers, have %d", n, got)
		}
	}
}
