package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ehgate/ehgate/platformtest"
)

type config struct {
	dir           string
	control       string
	seed          int64
	patients      int
	listVersion   int
	tokenLifetime time.Duration
	password      string
	activeBCP     bool
	port          int // 0 = free ports; else the control site on port, the sites on port+1, …
}

// sim is a running simulator: the platform and its control endpoint.
type sim struct {
	p       *platformtest.Platform
	ctx     context.Context // ends at close: stops running scenarios
	cancel  context.CancelFunc
	plays   sync.WaitGroup
	srv     *http.Server
	done    chan error
	control string // http://host:port
}

func startSim(cfg config, out io.Writer) (*sim, error) {
	host, _, err := net.SplitHostPort(cfg.control)
	if err != nil {
		return nil, fmt.Errorf("-control %q: %w", cfg.control, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-control %q: the control endpoint is unauthenticated; it must listen on a loopback address", cfg.control)
	}
	pcfg := platformtest.Config{Seed: cfg.seed, Patients: cfg.patients, ListVersion: cfg.listVersion, TokenLifetime: cfg.tokenLifetime, ActiveBCP: cfg.activeBCP}
	if cfg.port != 0 {
		if cfg.port < 1 || cfg.port+len(platformtest.DefaultSites) > 65535 {
			return nil, fmt.Errorf("-port %d: need %d consecutive ports from it", cfg.port, len(platformtest.DefaultSites)+1)
		}
		pcfg.ControlAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port))
		for i, sc := range platformtest.DefaultSites {
			sc.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port+1+i))
			pcfg.Sites = append(pcfg.Sites, sc)
		}
	}
	p, err := platformtest.Start(pcfg)
	if err != nil {
		return nil, err
	}
	s := &sim{p: p, done: make(chan error, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*sim, error) {
		p.Close()
		return nil, err
	}
	caFile := filepath.Join(cfg.dir, "ca.pem")
	if err := os.WriteFile(caFile, p.CACertPEM(), 0o644); err != nil {
		return fail(err)
	}
	// The other certificates a client pins: the service list signer's CA and the STS's
	// signing certificate.
	listCAFile := filepath.Join(cfg.dir, "servicelist-ca.pem")
	if err := os.WriteFile(listCAFile, certPEM(p.ServiceListCACertificate()), 0o644); err != nil {
		return fail(err)
	}
	stsFile := filepath.Join(cfg.dir, "sts.pem")
	if err := os.WriteFile(stsFile, certPEM(p.STSCertificate()), 0o644); err != nil {
		return fail(err)
	}
	patientsFile := filepath.Join(cfg.dir, "patients.json")
	pj, err := json.MarshalIndent(patientAnswers(p, time.Now()), "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(patientsFile, append(pj, '\n'), 0o644); err != nil {
		return fail(err)
	}
	id, err := p.NewIdentity(platformtest.Pharmacy, "Platformsim Pharmacy")
	if err != nil {
		return fail(err)
	}
	p12, err := id.PKCS12(cfg.password)
	if err != nil {
		return fail(err)
	}
	p12File := filepath.Join(cfg.dir, "pharmacy.p12")
	if err := os.WriteFile(p12File, p12, 0o600); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.control)
	if err != nil {
		return fail(err)
	}
	s.control = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()

	// One "name value [comment]" line each, easy to read and to parse.
	fmt.Fprintf(out, "%-16s %s  (append .sha2 or .xml)\n", "servicelist", p.ServiceListBaseURL())
	fmt.Fprintf(out, "%-16s %s\n", "statusfeed", p.StatusFeedURL())
	for _, site := range p.Sites() {
		fmt.Fprintf(out, "%-16s %s  (provider %s)\n", "site/"+site.Name(), site.URL(), site.Provider())
	}
	fmt.Fprintf(out, "%-16s %s\n", "ca", caFile)
	fmt.Fprintf(out, "%-16s %s  (CA of the service list's signer)\n", "servicelist-ca", listCAFile)
	fmt.Fprintf(out, "%-16s %s  (the STS's signing certificate)\n", "sts-cert", stsFile)
	fmt.Fprintf(out, "%-16s %s  (%d patients, SSIN and expected answer; also GET /patients)\n", "patients", patientsFile, len(p.Patients()))
	fmt.Fprintf(out, "%-16s %s  (password %q, NIHII-PHARMACY %s)\n", "pharmacy", p12File, cfg.password, id.NIHII)
	fmt.Fprintf(out, "%-16s %s\n", "control", s.control)
	return s, nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func (s *sim) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.cancel()
	s.plays.Wait()
	s.p.Close() // before Shutdown: ends hanging requests
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && serr != http.ErrServerClosed && err == nil {
		err = serr
	}
	return err
}

const usage = `platformsim control endpoint
POST /fault?site=S[&service=SVC]&kind=K[&delay=D&bps=N&status=N&retry-after=D&code=C&size=N&skew=D]
     kinds: refuse hang delay drip http-status soap-fault malformed huge bad-sts-signature expired-token clock-skew
     services: sts insurability genericinsurability etk ehbox (none = every service); site "control" for servicelist, statusfeed
POST /clear?site=S[&service=SVC]
POST /endpoint?service=SVC&site=S&status=active|inactive
POST /move?service=SVC&site=S      (a newer signed list: only that site's endpoint of SVC ACTIVE, as the platform moves a service)
POST /restore?service=SVC          (a newer signed list: SVC's endpoints as at start)
POST /component?name=NAME&status=STATUS
POST /scenario?name=outage[&unit=10s][&wait=true]   (platformtest.OutageScenario)
GET  /counters
GET  /patients   (SSIN and expected insurability answer of each generated patient, as patients.json)
`

func (s *sim) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, usage) })
	mux.HandleFunc("POST /fault", s.fault)
	mux.HandleFunc("POST /clear", s.clear)
	mux.HandleFunc("POST /endpoint", s.endpoint)
	mux.HandleFunc("POST /move", s.move)
	mux.HandleFunc("POST /restore", s.restore)
	mux.HandleFunc("POST /component", s.component)
	mux.HandleFunc("GET /counters", s.counters)
	mux.HandleFunc("GET /patients", s.patients)
	mux.HandleFunc("POST /scenario", s.scenario)
	return mux
}

// site returns the site and the canonical service ("" = all) named in r.
func (s *sim) site(r *http.Request) (*platformtest.Site, string, error) {
	site := s.p.Site(r.FormValue("site"))
	if site == nil {
		return nil, "", fmt.Errorf("unknown site %q", r.FormValue("site"))
	}
	svc := r.FormValue("service")
	if svc == "" {
		return site, "", nil
	}
	c, err := platformtest.CanonicalService(svc)
	if err != nil {
		return nil, "", err
	}
	for _, served := range site.Services() {
		if served == c {
			return site, c, nil
		}
	}
	return nil, "", fmt.Errorf("site %s does not serve %s", site.Name(), c)
}

func (s *sim) fault(w http.ResponseWriter, r *http.Request) {
	site, svc, err := s.site(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f, err := parseFault(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	site.Inject(svc, f)
	fmt.Fprintf(w, "%s %s: %s\n", site.Name(), orAll(svc), f.Kind)
}

func parseFault(r *http.Request) (platformtest.Fault, error) {
	kind, err := platformtest.ParseFaultKind(r.FormValue("kind"))
	if err != nil {
		return platformtest.Fault{}, err
	}
	f := platformtest.Fault{Kind: kind, Code: r.FormValue("code")}
	durations := map[string]*time.Duration{"delay": &f.Delay, "skew": &f.Skew, "retry-after": &f.RetryAfter}
	for name, dst := range durations {
		if v := r.FormValue(name); v != "" {
			if *dst, err = time.ParseDuration(v); err != nil {
				return f, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	ints := map[string]*int{"bps": &f.BytesPerSecond, "status": &f.Status}
	for name, dst := range ints {
		if v := r.FormValue(name); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil {
				return f, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if v := r.FormValue("size"); v != "" {
		if f.Size, err = strconv.ParseInt(v, 10, 64); err != nil {
			return f, fmt.Errorf("size: %w", err)
		}
	}
	return f, f.Validate()
}

func (s *sim) clear(w http.ResponseWriter, r *http.Request) {
	site, svc, err := s.site(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	site.Clear(svc)
	fmt.Fprintf(w, "%s %s: cleared\n", site.Name(), orAll(svc))
}

func (s *sim) endpoint(w http.ResponseWriter, r *http.Request) {
	svc, site := r.FormValue("service"), r.FormValue("site")
	if !s.p.Listed(svc, site) {
		http.Error(w, fmt.Sprintf("the service list has no endpoint of %q on site %q", svc, site), http.StatusBadRequest)
		return
	}
	var active bool
	switch strings.ToLower(r.FormValue("status")) {
	case "active":
		active = true
	case "inactive":
	default:
		http.Error(w, "status must be active or inactive", http.StatusBadRequest)
		return
	}
	s.p.SetEndpointStatus(svc, site, active)
	fmt.Fprintf(w, "service list re-signed, sha2 %s\n", s.p.ServiceListSHA256())
}

func (s *sim) move(w http.ResponseWriter, r *http.Request) {
	if err := s.p.MoveService(r.FormValue("service"), r.FormValue("site")); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "service list re-signed, sha2 %s\n", s.p.ServiceListSHA256())
}

func (s *sim) restore(w http.ResponseWriter, r *http.Request) {
	if err := s.p.RestoreService(r.FormValue("service")); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "service list re-signed, sha2 %s\n", s.p.ServiceListSHA256())
}

func (s *sim) component(w http.ResponseWriter, r *http.Request) {
	name, status := r.FormValue("name"), r.FormValue("status")
	if name == "" || status == "" {
		http.Error(w, "name and status are required", http.StatusBadRequest)
		return
	}
	s.p.SetComponentStatus(name, status)
	fmt.Fprintf(w, "%s: %s\n", name, status)
}

func (s *sim) counters(w http.ResponseWriter, _ *http.Request) {
	type row struct {
		Site, Service, Outcome string
		Count                  int
	}
	rows := []row{}
	for k, v := range s.p.Counters() {
		rows = append(rows, row{k.Site, k.Service, string(k.Outcome), v})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return a.Site+a.Service+a.Outcome < b.Site+b.Service+b.Outcome
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"requests":      rows,
		"tokens_issued": s.p.TokensIssued(),
		"writes":        len(s.p.Writes()),
	})
}

func orAll(svc string) string {
	if svc == "" {
		return "every service"
	}
	return svc
}

func (s *sim) scenario(w http.ResponseWriter, r *http.Request) {
	if name := r.FormValue("name"); name != "outage" {
		http.Error(w, fmt.Sprintf("unknown scenario %q (known: outage)", name), http.StatusBadRequest)
		return
	}
	unit := 10 * time.Second
	if v := r.FormValue("unit"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			http.Error(w, "unit must be a positive duration", http.StatusBadRequest)
			return
		}
		unit = d
	}
	sc := platformtest.OutageScenario(unit)
	var mu sync.Mutex
	var log []string
	for i := range sc.Steps {
		do, name := sc.Steps[i].Do, sc.Steps[i].Name
		sc.Steps[i].Do = func(p *platformtest.Platform) {
			do(p)
			mu.Lock()
			log = append(log, name)
			mu.Unlock()
		}
	}
	done := make(chan error, 1)
	s.plays.Add(1)
	go func() {
		defer s.plays.Done()
		done <- s.p.Play(s.ctx, sc)
	}()
	if r.FormValue("wait") != "true" {
		fmt.Fprintf(w, "playing outage, %d steps, unit %v\n", len(sc.Steps), unit)
		return
	}
	err := <-done
	mu.Lock()
	defer mu.Unlock()
	for _, l := range log {
		fmt.Fprintln(w, l)
	}
	if err != nil {
		fmt.Fprintln(w, "stopped:", err)
	}
}
