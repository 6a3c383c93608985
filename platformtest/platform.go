package platformtest

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// SiteConfig names a site (datacenter) of the platform.
type SiteConfig struct {
	Name     string // unique, not "control"; used in Site, SetEndpointStatus and counters
	Provider string // hosting provider label
	// Addr is the site's listen address, a loopback IP and a port ("127.0.0.1:8443"), so
	// that software configured once finds it again; "" = 127.0.0.1 and a free port.
	Addr string
}

// Config configures a Platform. The zero value is usable.
type Config struct {
	// Sites are the datacenters, each its own HTTPS server. The first serves
	// the primary endpoints of the service list, the others the BCP
	// fallbacks. Zero = DefaultSites.
	Sites []SiteConfig
	// Patients is the size of the generated population; 0 = 500.
	Patients int
	// Seed makes the population and the identities' numbers reproducible.
	Seed int64
	// TokenLifetime is what the STS grants, whatever is asked; 0 = 5 h.
	TokenLifetime time.Duration
	// Now is the platform clock; nil = time.Now. TLS certificates are valid
	// for both the wall clock and this clock.
	Now func() time.Time
	// After is the platform's timer, used by FaultDelay and Play; nil =
	// time.After. Inject a fake one together with Now to drive both from a
	// test clock.
	After func(d time.Duration) <-chan time.Time
	// ListVersion is the namespace version of the served service list:
	// 1 or 2; 0 = 2.
	ListVersion int
	// ActiveBCP marks the BCP endpoints ACTIVE from the start, so the
	// services that have one (insurability, generic insurability) list two
	// ACTIVE endpoints: for tests of a client's own failover between
	// endpoints. false (the zero value) is the production shape: the eHealth
	// endpoint ACTIVE, the MyCareNet BCP endpoint INACTIVE until the
	// platform moves the service (MoveService, OutageScenario).
	ActiveBCP bool
	// ControlAddr is the control site's listen address (service list,
	// status feed), as SiteConfig.Addr; "" = 127.0.0.1 and a free port.
	ControlAddr string
}

// DefaultSites are the sites of a zero Config: the eHealth datacenter and
// MyCareNet's BCP site, at two different providers.
var DefaultSites = []SiteConfig{{Name: "ehealth", Provider: "provider-a"}, {Name: "mycarenet", Provider: "provider-b"}}

// Validate reports the first bad field of c.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, s := range c.Sites {
		switch {
		case s.Name == "":
			return fmt.Errorf("platformtest: Config.Sites[%d].Name is empty", i)
		case s.Name == ControlSite:
			return fmt.Errorf("platformtest: Config.Sites[%d].Name %q is reserved", i, s.Name)
		case seen[s.Name]:
			return fmt.Errorf("platformtest: Config.Sites[%d].Name %q is not unique", i, s.Name)
		}
		seen[s.Name] = true
		if err := checkAddr(s.Addr); err != nil {
			return fmt.Errorf("platformtest: Config.Sites[%d].Addr: %w", i, err)
		}
	}
	if err := checkAddr(c.ControlAddr); err != nil {
		return fmt.Errorf("platformtest: Config.ControlAddr: %w", err)
	}
	switch {
	case c.Patients < 0:
		return fmt.Errorf("platformtest: Config.Patients %d is negative", c.Patients)
	case c.TokenLifetime < 0:
		return fmt.Errorf("platformtest: Config.TokenLifetime %v is negative", c.TokenLifetime)
	case c.ListVersion != 0 && c.ListVersion != 1 && c.ListVersion != 2:
		return fmt.Errorf("platformtest: Config.ListVersion %d is not 1 or 2", c.ListVersion)
	}
	return nil
}

// checkAddr accepts "" or a loopback IP with a port: the sites' TLS certificate names
// 127.0.0.1, ::1 and localhost only.
func checkAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback IP address (the sites' certificate names 127.0.0.1 and ::1)", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q is not a port number", port)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if len(c.Sites) == 0 {
		c.Sites = DefaultSites
	}
	if c.Patients == 0 {
		c.Patients = 500
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = 5 * time.Hour
	}
	if c.ListVersion == 0 {
		c.ListVersion = 2
	}
	return c
}

// Platform is a running stand-in for the central platform. Its methods are
// safe for concurrent use.
type Platform struct {
	cfg     Config
	closing chan struct{}
	once    sync.Once

	pki        *pki
	tlsCA      *authority
	providerCA *authority
	listCA     *authority
	stsCert    *x509.Certificate
	stsKey     *rsa.PrivateKey
	listCert   *x509.Certificate
	listKey    *rsa.PrivateKey
	transport  *http.Transport
	client     *http.Client

	sites   []*Site
	control *Site

	patients []Patient
	bySSIN   map[string]int
	byRegNr  map[string]int

	idMu       sync.Mutex
	identities []*Identity
	idByCert   map[[32]byte]*Identity

	etk *etkDepot

	refMu  sync.Mutex
	refSeq int64

	wrMu      sync.Mutex
	writes    []Write
	writeKeys map[string]int
	validate  func(Write) error

	cntMu    sync.Mutex
	counters map[CounterKey]int

	tokMu      sync.Mutex
	tokens     []IssuedToken
	tokenOwner map[string]*Identity        // by AssertionID
	challenges map[string]pendingChallenge // WS-Trust Issues waiting for a signed challenge, by Context

	list *serviceList
	feed *statusFeed
}

// Start creates the platform's certificates and starts its sites and its
// control site (service list, status feed) on 127.0.0.1. Close it when done.
func Start(cfg Config) (*Platform, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Platform{
		cfg:        cfg,
		closing:    make(chan struct{}),
		idByCert:   make(map[[32]byte]*Identity),
		writeKeys:  make(map[string]int),
		counters:   make(map[CounterKey]int),
		tokenOwner: make(map[string]*Identity),
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	var err error
	if p.pki, err = newPKI(p.now()); err != nil {
		return nil, err
	}
	if err := p.createCertificates(); err != nil {
		return nil, err
	}
	p.patients = generatePopulation(cfg.Patients, cfg.Seed)
	p.bySSIN = make(map[string]int, len(p.patients))
	p.byRegNr = make(map[string]int, len(p.patients))
	for i, pt := range p.patients {
		if pt.Known {
			p.bySSIN[pt.SSIN] = i
			p.byRegNr[pt.Mutuality+"/"+pt.RegNrWithMut] = i
		}
	}
	p.etk = newETKDepot(p)
	p.feed = newStatusFeed()

	serverCert, serverKey, err := p.pki.issue(p.tlsCA, leaf{
		subject: pkix.Name{CommonName: "127.0.0.1", Organization: []string{"platformtest"}},
		usage:   x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ext:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ips:     []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		dns:     []string{"localhost"},
	})
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw, p.tlsCA.cert.Raw}, PrivateKey: serverKey, Leaf: serverCert}},
		NextProtos:   []string{"http/1.1"},
	}
	routes, services := p.businessRoutes()
	for _, sc := range cfg.Sites {
		s, err := newSite(p, sc.Name, sc.Provider, sc.Addr, routes, services, tlsConf)
		if err != nil {
			return nil, err
		}
		p.sites = append(p.sites, s)
	}
	croutes, cservices := p.controlRoutes()
	if p.control, err = newSite(p, ControlSite, "", cfg.ControlAddr, croutes, cservices, tlsConf); err != nil {
		return nil, err
	}
	if p.list, err = newServiceList(p); err != nil {
		return nil, err
	}
	p.transport = &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: p.tlsCA.pool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	p.client = &http.Client{Transport: p.transport, Timeout: 30 * time.Second}
	ok = true
	return p, nil
}

func (p *Platform) createCertificates() error {
	var err error
	if p.tlsCA, err = p.pki.newCA("platformtest TLS CA"); err != nil {
		return err
	}
	if p.providerCA, err = p.pki.newCA("platformtest care provider CA"); err != nil {
		return err
	}
	if p.listCA, err = p.pki.newCA("platformtest service list CA"); err != nil {
		return err
	}
	// The STS certificate is self-signed, as a pinned signer: STSRoots holds it. Its subject
	// is the real acceptance STS's (one RDN per attribute, in the real order), so a client
	// pinning the platform's STS by subject accepts it.
	stsKey, err := p.pki.key()
	if err != nil {
		return err
	}
	p.stsKey = stsKey
	if p.stsCert, err = p.pki.selfSigned(stsSubject(), stsKey, x509.KeyUsageDigitalSignature); err != nil {
		return err
	}
	p.listCert, p.listKey, err = p.pki.issue(p.listCA, leaf{
		// The real platform's SERVICELIST subject, which clients pin by default
		// (connector.DefaultServiceListSubject); the CA is the test platform's own.
		subject: pkix.Name{CommonName: "CBE=0809394427, SERVICELIST", Organization: []string{"Federal Government"}, Country: []string{"BE"},
			OrganizationalUnit: []string{"SERVICELIST", "CBE=0809394427", "EHEALTH-PLATFORM", "eHealth-platform Belgium"}},
		usage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	})
	return err
}

// Close stops every site, ends hanging and dripping requests and waits for
// every goroutine the platform started. It is safe to call more than once.
func (p *Platform) Close() {
	p.once.Do(func() {
		close(p.closing)
		for _, s := range p.sites {
			s.close()
		}
		if p.control != nil {
			p.control.close()
		}
		if p.transport != nil {
			p.transport.CloseIdleConnections()
		}
		if p.pki != nil {
			p.pki.release()
		}
	})
}

func (p *Platform) now() time.Time {
	if p.cfg.Now != nil {
		return p.cfg.Now()
	}
	return time.Now()
}

func (p *Platform) after(d time.Duration) <-chan time.Time {
	if p.cfg.After != nil {
		return p.cfg.After(d)
	}
	return time.After(d)
}

// wait waits d; false when ctx ended or the platform closed first.
func (p *Platform) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-p.after(d):
		return true
	case <-ctx.Done():
		return false
	case <-p.closing:
		return false
	}
}

// CACertPool returns a pool holding the CA of the sites' TLS certificates.
func (p *Platform) CACertPool() *x509.CertPool { return p.tlsCA.pool() }

// CACertPEM returns the CA of the sites' TLS certificates, PEM-encoded.
func (p *Platform) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.tlsCA.cert.Raw})
}

// CACertificate returns the CA of the sites' TLS certificates.
func (p *Platform) CACertificate() *x509.Certificate { return p.tlsCA.cert }

// HTTPClient returns a client that trusts the platform's TLS CA (TLS 1.2 or
// later, certificates verified). Close closes its idle connections.
func (p *Platform) HTTPClient() *http.Client { return p.client }

// ProviderCertPool returns a pool holding the CA of care providers'
// identification certificates (the STS trusts it).
func (p *Platform) ProviderCertPool() *x509.CertPool { return p.providerCA.pool() }

// STSRoots returns the pool that verifies the STS's assertion signatures.
func (p *Platform) STSRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.stsCert)
	return pool
}

// STSCertificate returns the certificate the STS signs assertions with.
func (p *Platform) STSCertificate() *x509.Certificate { return p.stsCert }

// ServiceListCACertificate returns the CA certificate of the service list's signer: the CA a
// client pins to check the list's signature.
func (p *Platform) ServiceListCACertificate() *x509.Certificate { return p.listCA.cert }

// ServiceListRoots returns the pool pinning the CA of the service list's signer.
func (p *Platform) ServiceListRoots() *x509.CertPool { return p.listCA.pool() }

// ServiceListBaseURL returns the service list's base URL; append ".sha2"
// or ".xml".
func (p *Platform) ServiceListBaseURL() string { return p.control.URL() + "/servicelist" }

// StatusFeedURL returns the status feed's URL (docs/wire/statusfeed.md).
func (p *Platform) StatusFeedURL() string { return p.control.URL() + "/nl/api/components/prod" }

// Sites returns the business sites in configuration order.
func (p *Platform) Sites() []*Site { return append([]*Site(nil), p.sites...) }

// Site returns the site named name (ControlSite for the control site), or
// nil.
func (p *Platform) Site(name string) *Site {
	if name == ControlSite {
		return p.control
	}
	for _, s := range p.sites {
		if s.name == name {
			return s
		}
	}
	return nil
}

// Patients returns the generated population, known and unknown patients.
func (p *Platform) Patients() []Patient { return append([]Patient(nil), p.patients...) }

// Patient returns the patient with ssin known to the platform.
func (p *Platform) Patient(ssin string) (Patient, bool) {
	i, ok := p.bySSIN[ssin]
	if !ok {
		return Patient{}, false
	}
	return p.patients[i], true
}

// errClosed is returned by methods called after Close.
var errClosed = errors.New("platformtest: platform closed")
