package platformtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Site is one datacenter of the platform: an HTTPS server on 127.0.0.1
// serving every service of the platform on its own port, with its own
// faults. Its methods are safe for concurrent use.
type Site struct {
	p        *Platform
	name     string
	provider string
	services []string
	routes   map[string]route
	addr     string // 127.0.0.1:port, bound once and held until Close
	srv      *http.Server
	tlsConf  *tls.Config

	mu       sync.Mutex
	ln       net.Listener // open from newSite to close, refusing or not
	refusing bool         // every service refuses: connections are reset on accept
	faults   map[string]Fault
	changed  chan struct{} // closed and replaced whenever faults change
	conns    map[net.Conn]struct{}
	closed   bool

	serving  sync.WaitGroup // Serve loops
	inflight sync.WaitGroup // handlers
	waiting  atomic.Int64   // requests held by FaultHang
}

// route is a path of a site: the service it belongs to and its handler.
type route struct {
	service string
	handle  func(x *exchange) reply
}

func newSite(p *Platform, name, provider, addr string, routes map[string]route, services []string, tlsConf *tls.Config) (*Site, error) {
	s := &Site{
		p:        p,
		name:     name,
		provider: provider,
		services: services,
		routes:   routes,
		tlsConf:  tlsConf,
		faults:   make(map[string]Fault),
		changed:  make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		ConnState:         s.trackConn,
		ErrorLog:          log.New(io.Discard, "", 0), // clients that hang up mid-handshake are expected
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("platformtest: site %s: listen: %w", name, err)
	}
	s.addr = ln.Addr().String()
	s.ln = ln
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = s.srv.Serve(tls.NewListener(refusingListener{ln, s}, s.tlsConf))
	}()
	return s, nil
}

// refusingListener hands the site's connections to the HTTP server, except
// while the whole site refuses: then it resets each connection as soon as it
// is accepted, before any TLS byte, so the client's dial or handshake fails
// with "connection reset by peer". The port itself is never given back (a
// closed ephemeral port may be taken by any other socket on the machine
// before the site could bind it again).
type refusingListener struct {
	net.Listener
	s *Site
}

// Accept returns the next connection the site should serve.
func (l refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		refusing := l.s.refusing && !l.s.closed
		l.s.mu.Unlock()
		if !refusing {
			return c, nil
		}
		reset(c)
	}
}

func (s *Site) trackConn(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		if s.closed || s.refusing {
			reset(c) // accepted just before the site started refusing
			return
		}
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Name returns the site's name ("ehealth", "mycarenet", "control", …).
func (s *Site) Name() string { return s.name }

// Provider returns the hosting provider the site was configured with.
func (s *Site) Provider() string { return s.provider }

// URL returns the site's base URL, https://127.0.0.1:<port>. The port does
// not change when the site refuses connections and comes back: the site keeps
// it bound from Start to Close.
func (s *Site) URL() string { return "https://" + s.addr }

// Addr returns the site's host:port.
func (s *Site) Addr() string { return s.addr }

// Services returns the short names of the services the site serves.
func (s *Site) Services() []string { return append([]string(nil), s.services...) }

// Inject makes service misbehave as f from now on, replacing any fault it
// had; service "" means every service of the site. It panics on a service
// the site does not serve or an invalid fault (see CanonicalService and
// Fault.Validate to check input first).
func (s *Site) Inject(service string, f Fault) {
	if err := f.Validate(); err != nil {
		panic(err)
	}
	svcs := s.resolve(service)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, svc := range svcs {
		if f.Kind == FaultNone {
			delete(s.faults, svc)
		} else {
			s.faults[svc] = f
		}
	}
	s.applyLocked()
}

// Clear removes service's fault; service "" clears every fault of the site.
// A site that refused every connection serves the next one again (same port;
// it was never released, so clearing cannot fail).
func (s *Site) Clear(service string) {
	svcs := s.resolve(service)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, svc := range svcs {
		delete(s.faults, svc)
	}
	s.applyLocked()
}

// Fault returns the fault currently injected for service (Kind FaultNone
// if none). For service "" it returns the fault every service of the site
// shares, or a zero Fault if they differ.
func (s *Site) Fault(service string) Fault {
	svcs := s.resolve(service)
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[svcs[0]]
	for _, svc := range svcs[1:] {
		if s.faults[svc] != f {
			return Fault{}
		}
	}
	return f
}

// Waiting returns how many requests FaultHang is holding right now.
func (s *Site) Waiting() int { return int(s.waiting.Load()) }

func (s *Site) resolve(service string) []string {
	if service == "" {
		return s.services
	}
	c, err := CanonicalService(service)
	if err != nil {
		panic(err)
	}
	for _, svc := range s.services {
		if svc == c {
			return []string{c}
		}
	}
	panic(fmt.Sprintf("platformtest: site %s does not serve %s", s.name, c))
}

// applyLocked makes the site's connections follow the faults: while every
// service refuses, the open connections are reset and new ones are reset on
// accept; otherwise connections are served. It wakes handlers waiting on a
// fault. Nothing here can fail: the listener stays open throughout.
func (s *Site) applyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	if s.closed {
		return
	}
	refuseAll := true
	for _, svc := range s.services {
		if s.faults[svc].Kind != FaultRefuse {
			refuseAll = false
			break
		}
	}
	if refuseAll && !s.refusing {
		// Cut the keep-alive connections too: a dead site answers nothing
		// on them either.
		for c := range s.conns {
			reset(c)
			delete(s.conns, c)
		}
	}
	s.refusing = refuseAll
}

// current returns service's fault and a channel closed when faults change.
func (s *Site) current(service string) (Fault, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults[service], s.changed
}

// clock returns the time of service on this site: the platform clock plus
// any injected skew.
func (s *Site) clock(service string) func() time.Time {
	f, _ := s.current(service)
	skew := time.Duration(0)
	if f.Kind == FaultClockSkew {
		skew = f.Skew
	}
	return func() time.Time { return s.p.now().Add(skew) }
}

func (s *Site) close() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.srv.Close()
	s.serving.Wait()
	s.inflight.Wait()
}

// exchange is one request being served.
type exchange struct {
	site    *Site
	service string
	r       *http.Request
	body    []byte
	fault   Fault
	now     func() time.Time
}

// reply is what a service answers.
type reply struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
	outcome     Outcome
}

// serveHTTP applies the service's fault and serves the request.
func (s *Site) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	rt, ok := s.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	svc := rt.service
	if f, _ := s.current(svc); f.Kind == FaultRefuse {
		s.p.count(s.name, svc, OutcomeInjected)
		resetConn(w)
		return
	}
	// Read the body first: only then does the server notice a client that
	// hangs up, which ends a hang or a delay.
	x := &exchange{site: s, service: svc, r: r}
	bad := s.read(x)
	var f Fault
	for {
		var changed <-chan struct{}
		f, changed = s.current(svc)
		if f.Kind != FaultHang {
			break
		}
		s.waiting.Add(1)
		select {
		case <-changed:
			s.waiting.Add(-1)
			continue
		case <-r.Context().Done():
		case <-s.p.closing:
		}
		s.waiting.Add(-1)
		s.p.count(s.name, svc, OutcomeInjected)
		resetConn(w) // never an answer, not even an empty one
		return
	}
	f = f.withDefaults()
	switch f.Kind {
	case FaultRefuse:
		s.p.count(s.name, svc, OutcomeInjected)
		resetConn(w)
		return
	case FaultDelay:
		if !s.p.wait(r.Context(), f.Delay) {
			s.p.count(s.name, svc, OutcomeInjected)
			resetConn(w)
			return
		}
	case FaultHTTPStatus:
		s.p.count(s.name, svc, OutcomeInjected)
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		writeHTMLStatus(w, f.Status)
		return
	case FaultSOAP:
		s.p.count(s.name, svc, OutcomeInjected)
		text := f.FaultString
		if text == "" {
			text = "injected fault: service unavailable"
		}
		rep := soapFault(faultCodeFor(f.Code), text, f.Code, f.NestedCode)
		rep.outcome = OutcomeInjected
		s.write(w, r, rep, Fault{})
		return
	case FaultMalformed:
		s.p.count(s.name, svc, OutcomeInjected)
		writeMalformed(w)
		return
	case FaultHuge:
		s.p.count(s.name, svc, OutcomeInjected)
		writeHuge(r.Context(), w, f.Size, s.p.closing)
		return
	}

	x.fault, x.now = f, s.clock(svc)
	rep := bad
	if rep == nil && svc == ServiceSTS {
		rep = checkSTSRequest(x.body)
	}
	if rep == nil {
		r := rt.handle(x)
		rep = &r
	}
	s.p.count(s.name, svc, rep.outcome)
	s.write(w, r, *rep, f)
}

// maxRequest bounds the request bodies the platform reads.
const maxRequest = 10 << 20

// read reads the request body into x; a non-nil reply refuses the request.
func (s *Site) read(x *exchange) *reply {
	if x.r.Method == http.MethodGet || x.r.Method == http.MethodHead {
		return nil
	}
	if x.r.Method != http.MethodPost {
		rep := reply{status: http.StatusMethodNotAllowed, contentType: "text/plain; charset=utf-8", body: []byte("method not allowed\n"), outcome: OutcomeBadRequest}
		return &rep
	}
	b, err := io.ReadAll(io.LimitReader(x.r.Body, maxRequest+1))
	if err != nil {
		rep := soapFault("soapenv:Client", "cannot read request: "+err.Error(), "")
		rep.outcome = OutcomeBadRequest
		return &rep
	}
	if len(b) > maxRequest {
		rep := soapFault("soapenv:Client", fmt.Sprintf("request larger than %d bytes", maxRequest), "")
		rep.outcome = OutcomeBadRequest
		return &rep
	}
	x.body = b
	return nil
}

func (s *Site) write(w http.ResponseWriter, r *http.Request, rep reply, f Fault) {
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.contentType != "" {
		h.Set("Content-Type", rep.contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	if r.Method == http.MethodHead {
		return
	}
	if f.Kind != FaultDrip {
		_, _ = w.Write(rep.body)
		return
	}
	drip(r.Context(), w, rep.body, f.BytesPerSecond, s.p.closing)
}

// drip writes body at about bps bytes per second, in chunks every 50 ms.
func drip(ctx context.Context, w http.ResponseWriter, body []byte, bps int, closing <-chan struct{}) {
	fl, _ := w.(http.Flusher)
	chunk := max(1, bps/20)
	interval := time.Duration(float64(time.Second) * float64(chunk) / float64(bps))
	t := time.NewTicker(interval)
	defer t.Stop()
	for len(body) > 0 {
		n := min(chunk, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		body = body[n:]
		if len(body) == 0 {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		case <-closing:
			return
		}
	}
}

// resetConn drops the request's connection without an answer (TCP reset).
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	reset(c)
}

// reset closes c, a TCP connection or TLS over one, with a TCP reset (no
// close_notify, no FIN): the peer's next read or write fails with
// ECONNRESET, as when the server process dies.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func writeHTMLStatus(w http.ResponseWriter, status int) {
	text := http.StatusText(status)
	body := fmt.Sprintf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>platformtest</center>\r\n</body>\r\n</html>\r\n", status, text, status, text)
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// malformedBody is a response cut off in the middle of an element, as a
// truncating proxy would leave it.
const malformedBody = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Response><ReturnInfo><ReturnCode>0</ReturnCo</soapenv:Body>`

func writeMalformed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(malformedBody)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, malformedBody)
}

const (
	hugeHead = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><Filler>`
	hugeTail = `</Filler></soapenv:Body></soapenv:Envelope>`
)

// writeHuge streams a well-formed envelope of exactly size bytes (or size
// filler bytes when size is below the envelope's overhead) without holding
// it in memory.
func writeHuge(ctx context.Context, w http.ResponseWriter, size int64, closing <-chan struct{}) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	head, tail := hugeHead, hugeTail
	if size < int64(len(head)+len(tail)) {
		head, tail = "", ""
	}
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	var buf [32 << 10]byte
	for i := range buf {
		buf[i] = 'x'
	}
	left := size - int64(len(head)+len(tail))
	for left > 0 {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			return
		default:
		}
		n := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		left -= n
	}
	_, _ = io.WriteString(w, tail)
}
