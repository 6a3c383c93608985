package connector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/sts"
)

// cache function names of the connector (insurability and etk are cache's own).
const (
	functionInsurability        = cache.FunctionInsurability
	functionGenericInsurability = "genericinsurability"
	functionETK                 = cache.FunctionETK
	functionToken               = cache.FunctionToken
	// functionState holds what the client must remember across restarts: the operator's
	// fallback activations and the answers awaiting regularisation.
	functionState       = "connector-state"
	functionServiceList = "servicelist"
)

// Option injects a dependency into New.
type Option func(*options)

type options struct {
	logger    *zap.Logger
	clock     bcp.Clock
	client    *http.Client
	transport http.RoundTripper
	observers []Observer
}

// WithLogger sets the logger (default zap.NewNop()). The client logs mode changes at info,
// failovers at warn, data at risk at error, and never a patient identifier or answer at info
// or above.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock of every layer (tests); default the system clock.
func WithClock(c bcp.Clock) Option { return func(o *options) { o.clock = c } }

// WithHTTPClient makes every request go through the vendor's client (its transport, proxy
// and TLS roots; Config.TLSRoots and Timeouts.Connect are then the vendor's business). The
// client's CheckRedirect is not used: no call to the platform (services, STS, service list,
// status feed) ever follows a redirect, and a redirect is the endpoint's failure (the call
// moves to the next endpoint).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithTransport wraps the vendor's RoundTripper (for metrics, tracing, a proxy) in the
// client's own http.Client; Config.TLSRoots and Timeouts.Connect are then the vendor's business.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// NewTransport returns the transport the client builds when given neither WithHTTPClient nor
// WithTransport: TLS 1.2 or later verified against roots (nil = system roots), connect
// timeout, keep-alive pools sized for a pharmacy's counters, and the environment's proxy
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; Config.Proxy changes it for the client's own
// transport). Vendors may wrap it and give it back with WithTransport.
func NewTransport(roots *x509.CertPool, connectTimeout time.Duration) *http.Transport {
	if connectTimeout <= 0 {
		connectTimeout = 2 * time.Second
	}
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   connectTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A signed request is ~10 KiB (the SAML assertion alone ~7): with net/http's 4 KiB
		// default it leaves in two writes (two TLS records) through a copy buffer allocated per
		// request (~7 KiB); 32 KiB per connection takes headers and body in one write.
		WriteBufferSize: requestBuffer,
	}
}

// requestBuffer is NewTransport's write buffer: a signed request with headers fits in it.
const requestBuffer = 32 << 10

// Client is the vendor's entry point: priority functions (Insurability,
// GenericInsurability, ETK), writes (Submit), any other service (Call), the state of every
// service (Status, Subscribe) and the operator's controls (ActivateFallback, EndFallback,
// Drill). Safe for concurrent use. Close stops every background task and waits for them.
type Client struct {
	cfg    Config
	log    *zap.Logger
	obs    Observer // nil = none (see observer.go)
	clock  bcp.Clock
	http   *http.Client // never follows a redirect (soap.WithoutRedirects)
	soap   *soap.Client
	origin requestOrigin
	refs   *referenceSource // RecordCommonInput references
	limits soap.Limits

	hok    *sts.Credential
	engine *bcp.Engine
	// engineConfig is what the engine was built with (per-service policies from Policies).
	engineConfig bcp.Config
	loader       *bcp.Loader
	tokens       *sts.Provider
	store        *cache.Store // nil when it could not be opened (storeErr says why)
	storeErr     error        // wraps ErrNoStore and the cause; nil with a store
	storeStatus  StoreStatus
	outbox       *cache.Outbox
	partitions   *partitionTracker
	feed         *feedWatcher
	modes        *modeTable
	events       hub
	memo         *memo
	sysClock     bool   // clock is bcp.SystemClock(): since measures with time.Since
	pseudo       []byte // key of the pseudonyms in drill reports
	signer       atomic.Pointer[tokenSigner]
	regular      *regulariser
	drills       *drillState

	replayKick chan struct{}
	// ownTransport is the transport the client built (closed with it); nil when the vendor
	// gave one.
	ownTransport *http.Transport
	replayRun    sync.Mutex
	replayMu     sync.Mutex
	replaying    bool
	lastReplay   ReplayProgress
	token        atomic.Pointer[sts.Token]
	etkFlight    sync.Map // cache key → struct{}: background refreshes in flight
	endpointErrs sync.Map // endpoint URL → endpointError: the last failed attempt, for Status
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	bgMu         sync.Mutex
	closing      bool
	calls        *callGate             // callers' calls in flight (begin, enter)
	statsCount   counted[cache.Stats]  // Status's store counts (counts.go)
	outboxCount  counted[outboxCounts] // Status's outbox figures
	stateMu      sync.Mutex            // serialises saves of the persisted state (state.go)
	closeOnce    sync.Once
}

// tokenSigner is the signer of one token.
type tokenSigner struct {
	id     string
	signer *soap.Signer
}

// New validates cfg, opens the encrypted store, loads the service list (stored, then from
// the network), and starts the token provider, the status-feed poller and the outbox replay.
// It does not fail when the platform is unreachable: priority functions then answer from the
// store.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{logger: zap.NewNop(), clock: bcp.SystemClock()}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	if o.clock == nil {
		o.clock = bcp.SystemClock()
	}
	hc := o.client
	var own *http.Transport
	if hc == nil {
		rt := o.transport
		if rt == nil {
			own = NewTransport(cfg.TLSRoots, cfg.Timeouts.Connect)
			own.Proxy = cfg.Proxy.policy()
			rt = own
		}
		hc = &http.Client{Transport: rt}
	}
	// No call to the platform follows a redirect, whatever client the vendor gave: a 307 would
	// re-post the signed request (token and SSIN) to another host, a 308 perhaps in clear.
	hc = soap.WithoutRedirects(hc)
	c := &Client{
		cfg:   cfg,
		log:   o.logger,
		clock: o.clock,
		// The system clock's times carry a monotonic reading: durations need no wall clock.
		sysClock: o.clock == bcp.SystemClock(),
		http:     hc,
		origin: requestOrigin{IsTest: cfg.IsTest, Package: cfg.Package, NIHII: cfg.Identity.NIHII,
			HolderNIHII: cfg.Identity.HolderNIHII, SSIN: cfg.Identity.SSIN, Preset: cfg.Identity.Preset},
		refs:       newReferenceSource(),
		limits:     soap.DefaultLimits,
		soap:       soap.NewClient(hc, soap.ClientConfig{Limits: soap.DefaultLimits, Now: o.clock.Now}),
		replayKick: make(chan struct{}, 1),
		memo:       newMemo(16384, fleetMemoReuse(cfg.StoreBackend)),
		calls:      newCallGate(),

		ownTransport: own,
	}
	if c.obs = newObserver(o.observers); c.obs != nil {
		c.events.observe = c.obs.Event
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.modes = newModeTable(c.clock.Now, c.log, c.events.publish)
	c.modes.onChange = c.modeChanged
	c.regular = newRegulariser(c)
	c.drills = &drillState{}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()

	ident, hok, err := loadCredentials(cfg.Credentials, c.clock.Now)
	if err != nil {
		return nil, err
	}
	c.hok = hok

	keys := make([]cache.Key, len(cfg.CacheKeys))
	for i, k := range cfg.CacheKeys {
		sum := sha256.Sum256(append([]byte("ehgate-key-id\x00"), k...))
		keys[i] = cache.Key{ID: "k-" + hex.EncodeToString(sum[:6]), Secret: k}
	}
	ps := sha256.Sum256(append([]byte("ehgate-pseudonym\x00"), cfg.CacheKeys[0]...))
	c.pseudo = ps[:]
	c.openStore(cache.Config{
		Dir:     cfg.CacheDir,
		Backend: cfg.StoreBackend,
		Tenant:  cfg.StoreTenant,
		Keys:    keys,
		Functions: map[string]cache.Policy{
			functionInsurability:        {Fresh: time.Hour, ServeStale: cfg.Policies.Insurability.MaxAge, Retention: cfg.Policies.Insurability.MaxAge + 24*time.Hour},
			functionGenericInsurability: {Fresh: time.Hour, ServeStale: cfg.Policies.GenericInsurability.MaxAge, Retention: cfg.Policies.GenericInsurability.MaxAge + 24*time.Hour},
			functionETK:                 {Fresh: cfg.Policies.ETK.RefreshAfter, ServeStale: 5 * 365 * 24 * time.Hour, Retention: 5 * 365 * 24 * time.Hour},
			functionServiceList:         {Fresh: time.Hour, ServeStale: 5 * 365 * 24 * time.Hour},
			functionState:               {Fresh: time.Hour, ServeStale: 5 * 365 * 24 * time.Hour, Retention: 5 * 365 * 24 * time.Hour},
		},
		Outbox:        cache.OutboxConfig{MaxElapsed: 30 * time.Second, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, Lease: cfg.StoreLease},
		DeferredFlush: deferredFlush(cfg.StoreBackend),
	})
	var lists bcp.ListStore = bcp.NewFileListStore(filepath.Join(cfg.CacheDir, "servicelist.xml"))
	if cfg.StoreBackend != nil {
		lists = nil // not persisted while the shared store is unreachable
		if c.store != nil {
			lists = listStore{c.store}
		}
	}
	pending := func() int { return 0 }
	if c.store != nil {
		c.outbox = c.store.Outbox()
		pending = c.outbox.Pending
	}
	c.partitions = newPartitionTracker(pending)
	c.restoreState()
	c.goBackground(func() { c.regular.saver(c.ctx) })

	c.loader, err = bcp.NewLoader(bcp.LoaderConfig{
		BaseURL:     cfg.ServiceListURL,
		Verify:      ServiceListVerifier(cfg.ServiceListRoots, cfg.ServiceListSigner),
		Environment: cfg.ServiceListEnvironment,
		Store:       lists,
		Builtin:     cfg.ServiceListBuiltin,
		Interval:    cfg.ServiceListPoll,
		Timeout:     cfg.Timeouts.Attempt,
	}, bcp.WithHTTPClient(hc), bcp.WithClock(c.clock), bcp.WithLogger(c.log))
	if err != nil {
		return nil, fmt.Errorf("connector: service list: %w", err)
	}
	// New does not wait for the network: the loader starts from the stored or builtin list
	// and fetches in the background; until a list is usable, calls fail with
	// ErrNoServiceList and the list's last error (priority functions answer from the store).
	if c.loader.Current() == nil {
		c.log.Warn("connector: no stored or builtin service list; fetching it in the background, answering from the local store until it loads")
	}

	bc := cfg.BCP
	bc.Classifier = bcp.DefaultClassifier{FaultCodes: cfg.FaultCodes} // garbled answers, redirects and error pages included
	if bc.FaultCodes == nil {
		bc.FaultCodes = cfg.FaultCodes
	}
	bc.ServiceList = c.loader.Current()
	if bc.Services == nil {
		bc.Services = map[string]bcp.ServicePolicy{}
	}
	for svc, p := range map[string]bcp.ServicePolicy{
		ServiceInsurability:        {AttemptTimeout: cfg.Policies.Insurability.AttemptTimeout, Idempotent: true},
		ServiceGenericInsurability: {AttemptTimeout: cfg.Policies.GenericInsurability.AttemptTimeout, Idempotent: true},
		ServiceETK:                 {AttemptTimeout: cfg.Policies.ETK.AttemptTimeout, Idempotent: true},
		ServiceEHealthBox:          {AttemptTimeout: cfg.Timeouts.Attempt},
		ServiceSTS:                 {AttemptTimeout: cfg.Timeouts.Attempt, Idempotent: true},
		ServiceSTSWSTrust:          {AttemptTimeout: cfg.Timeouts.Attempt, Idempotent: true},
	} {
		if _, set := bc.Services[svc]; !set {
			bc.Services[svc] = p
		}
	}
	c.engineConfig = bc
	c.engine, err = bcp.New(bc, bcp.WithClock(c.clock), bcp.WithLogger(c.log))
	if err != nil {
		return nil, &ConfigError{Field: "BCP", Reason: err.Error()}
	}
	cancelList := c.loader.OnChange(c.listChanged) // called at once with the held list
	c.goBackground(func() {
		<-c.ctx.Done()
		cancelList()
	})

	attrs, _ := cfg.Identity.Preset.Attributes() // checked by Validate
	stsService := ServiceSTS
	if cfg.STSDialect == sts.DialectWSTrust {
		stsService = ServiceSTSWSTrust
	}
	if cfg.Identity.Attributes != nil {
		attrs = *cfg.Identity.Attributes
	}
	c.tokens, err = sts.NewProvider(sts.ProviderConfig{
		Identification:    ident,
		HolderOfKey:       hok,
		Attributes:        attrs,
		SSIN:              cfg.Identity.SSIN,
		NIHII:             cfg.Identity.NIHII,
		STSRoots:          cfg.STSRoots,
		STSSigner:         cfg.STSSigner,
		Dialect:           cfg.STSDialect,
		Service:           stsService,
		Router:            listRouter{c},
		Store:             c.tokenStore(),
		RenewalLock:       renewalLock(cfg.StoreBackend),
		RequestedLifetime: cfg.TokenLifetime,
		RequestTimeout:    2 * cfg.Timeouts.Attempt,
	}, sts.WithClock(c.clock), sts.WithLogger(c.log), sts.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("connector: token provider: %w", err)
	}

	events, unsubscribe := c.engine.Subscribe(256)
	c.goBackground(func() {
		defer unsubscribe()
		c.watchEngine(events)
	})

	if cfg.StatusFeedURL != "" {
		if c.feed, err = newFeedWatcher(c, hc); err != nil {
			return nil, &ConfigError{Field: "StatusFeedURL", Reason: err.Error()}
		}
		stop := c.feed.start()
		c.goBackground(func() {
			<-c.ctx.Done()
			stop()
		})
	}

	c.goBackground(c.replayLoop)
	ok = true
	return c, nil
}

// Close cancels the calls in flight (they return ErrClosed) and waits for them, stops every
// background task (list and feed polling, token renewal, replay, shadow calls) and waits for
// them, then closes the store. Every method that returns an error returns ErrClosed after
// Close. Safe to call more than once.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.bgMu.Lock()
		c.closing = true // no background task starts after this
		c.bgMu.Unlock()
		c.calls.shut() // no call starts after this
		c.cancel()     // calls in flight end now, with ErrClosed
		c.calls.wait()
		if c.tokens != nil {
			c.tokens.Close()
		}
		if c.loader != nil {
			c.loader.Close()
		}
		c.wg.Wait()
		if c.engine != nil {
			c.engine.Close()
		}
		if c.store != nil {
			err = c.store.Close()
		}
		if c.ownTransport != nil {
			c.ownTransport.CloseIdleConnections()
		}
		c.events.close()
	})
	return err
}

// begin registers a caller's call: it returns the call's context, which Close cancels (the
// call then returns ErrClosed), and the function that ends the call. After Close it returns
// ErrClosed. Close waits for the calls it cancelled before it closes the store.
func (c *Client) begin(ctx context.Context) (context.Context, func(), error) {
	if !c.calls.enter() {
		return ctx, func() {}, ErrClosed
	}
	cctx, stop := c.cancellable(ctx)
	return cctx, func() {
		stop()
		c.calls.exit()
	}, nil
}

// enter registers a caller's call that never waits on the network (an answer from the local
// store): no context of its own, no allocation; end it with c.calls.exit(). Close still
// refuses it (ErrClosed) and waits for it before it closes the store. A call that goes on to
// the network takes cancellable first.
func (c *Client) enter() error {
	if !c.calls.enter() {
		return ErrClosed
	}
	return nil
}

// cancellable returns a context of a registered call that Close cancels (cause ErrClosed),
// and the function that releases it.
func (c *Client) cancellable(ctx context.Context) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(c.ctx, func() { cancel(ErrClosed) })
	return cctx, func() {
		stop()
		cancel(nil)
	}
}

// ended returns the error of a call whose context ended: ErrClosed when Close ended it,
// the caller's ctx.Err() when the caller cancelled, nil otherwise (a deadline is not an end:
// the local store may still answer).
func (c *Client) ended(ctx context.Context) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return nil
}

// goBackground runs f in a goroutine that Close waits for; nothing starts once Close began.
func (c *Client) goBackground(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// loadCredentials returns the identification and holder-of-key credentials.
func loadCredentials(cr Credentials, now func() time.Time) (ident, hok *sts.Credential, err error) {
	lo := sts.LoadOptions{Now: now}
	switch {
	case cr.Identification != nil:
		ident = cr.Identification
	case cr.PKCS12File != "":
		ident, err = sts.LoadPKCS12(cr.PKCS12File, cr.Password, lo)
	default:
		ident, err = sts.LoadPEM(cr.CertFile, cr.KeyFile, cr.ChainFile, lo)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connector: config: Credentials: %w", err)
	}
	hok = cr.HolderOfKey
	if hok == nil {
		hok = ident
	}
	return ident, hok, nil
}

// ServiceListVerifier returns the check of a service list's enveloped signature against the
// pinned roots and signer (bcp.LoaderConfig.Verify): the signature must reference the whole
// ServiceList (URI "" or its Id), chain to roots, and come from the certificate signer pins
// (the zero ServiceListSigner: the platform's SERVICELIST subject). The signer is checked
// before the signature value and any digest; a signer that chains but is not the pinned one
// is an error matching soap.ErrUntrusted and ErrServiceListSigner.
func ServiceListVerifier(roots *x509.CertPool, signer ServiceListSigner) func(raw []byte) error {
	return func(raw []byte) error {
		doc, err := soap.ParseDocument(bytes.NewReader(raw), soap.Limits{MaxBytes: 16 << 20})
		if err != nil {
			return err
		}
		root := doc.Root()
		if root == nil {
			return soap.ErrMalformed
		}
		_, err = soap.VerifyEnveloped(root, roots, soap.VerifyEnvelopedOptions{IDAttr: "Id", Signer: signer.check})
		return err
	}
}

// deferredFlush is how long the store gathers live answers (stored deferred, see put) before
// one commit: a second with the local file, so that a busy counter pays one fsync a second
// (a crash loses at most the answers of that second: cache entries, fetched again live);
// the store's default (10 ms) with a shared backend, where the fleet's other instances read
// the answers from the database.
func deferredFlush(b cache.Backend) time.Duration {
	if b != nil {
		return 0
	}
	return time.Second
}

// fleetMemoReuse is how long a decoded answer is served from memory before the store is read
// again: unbounded with a store of this process alone, FleetMemoMaxAge with a shared one.
func fleetMemoReuse(b cache.Backend) time.Duration {
	if b != nil {
		return FleetMemoMaxAge
	}
	return 0
}

// since is the time from start (read from the client's clock) to now: with the system clock
// from the monotonic clock alone (time.Since), one clock read less than Now().Sub, which reads
// the wall clock too (each read costs tens of ns on a virtual machine's clock source).
func (c *Client) since(start time.Time) time.Duration {
	if c.sysClock {
		return time.Since(start)
	}
	return c.clock.Now().Sub(start)
}

// renewalLock returns the backend's sts.RenewalLock, if it has one.
func renewalLock(b cache.Backend) sts.RenewalLock {
	if l, ok := b.(sts.RenewalLock); ok {
		return l
	}
	return nil
}

// listStore keeps the last good service list in the encrypted store, so that with a
// StoreBackend every instance of a fleet shares it.
type listStore struct{ s *cache.Store }

// Load implements bcp.ListStore.
func (l listStore) Load() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := l.s.Get(ctx, functionServiceList, "last-good")
	if errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrExpired) {
		return nil, bcp.ErrNoStoredList
	}
	if err != nil {
		return nil, err
	}
	return e.Value, nil
}

// Save implements bcp.ListStore.
func (l listStore) Save(raw []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.s.Put(ctx, functionServiceList, "last-good", raw)
}

// tokenStore returns the token store, nil (none) without a local store.
func (c *Client) tokenStore() sts.TokenStore {
	if c.store == nil {
		return nil
	}
	return tokenStore{c.store}
}

// tokenStore adapts the encrypted store to sts.TokenStore.
type tokenStore struct{ s *cache.Store }

// LoadToken implements sts.TokenStore.
func (t tokenStore) LoadToken(ctx context.Context, identity string) ([]byte, error) {
	e, err := t.s.Get(ctx, functionToken, identity)
	if errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrExpired) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.Value, nil
}

// SaveToken implements sts.TokenStore.
func (t tokenStore) SaveToken(ctx context.Context, identity string, assertion []byte, notOnOrAfter time.Time) error {
	return t.s.Put(ctx, functionToken, identity, assertion, cache.NotAfter(notOnOrAfter))
}

// signerFor returns the WS-Security signer of the current token and the token's ID. With
// refused set (the platform refused the token of that ID), the token is renewed, unless
// another call has already replaced it: one renewal per refused token, however many calls
// saw the refusal.
func (c *Client) signerFor(ctx context.Context, refused string) (*soap.Signer, string, error) {
	tok, err := c.tokens.Token(ctx)
	if err == nil && refused != "" && tok.ID == refused {
		tok, err = c.tokens.Renew(ctx)
	}
	if err != nil {
		return nil, "", err
	}
	c.token.Store(tok)
	if s := c.signer.Load(); s != nil && s.id == tok.ID {
		return s.signer, tok.ID, nil
	}
	s, err := soap.NewSigner(soap.SignerConfig{Key: c.hok.Key, Assertion: tok.Assertion, Now: c.clock.Now})
	if err != nil {
		return nil, "", fmt.Errorf("connector: signer for token %s: %w", tok.ID, err)
	}
	c.signer.Store(&tokenSigner{id: tok.ID, signer: s})
	return s, tok.ID, nil
}

// currentToken is the provider's valid token (obtained or loaded from the store, even before
// the first signed call), else the last token used (expired or refused), else nil.
func (c *Client) currentToken() *sts.Token {
	if tok := c.tokens.Current(); tok != nil {
		return tok
	}
	return c.token.Load()
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("connector: client closed")

// request is what do sends: body, a tree put in an envelope, or payload, the body element
// already in exclusive canonical form (canonicalWriter), signed without a tree. rawAnswer
// asks for the answer's Body element as bytes (read by a streamReader) rather than as a tree.
type request struct {
	body      *etree.Element
	payload   []byte
	rawAnswer bool
}

// reply is an endpoint's answer: the Body's first element, as a tree (a tree request) or as
// bytes with the namespaces in scope at it (a payload request, read by a streamReader).
type reply struct {
	el    *etree.Element
	body  []byte
	scope []soap.Namespace
}

// exchange sends one SOAP message to one endpoint through the one SOAP client (soap.Client:
// no redirect, bounded read, drained body) and returns the answer's Body element: as bytes
// when raw (checked without a tree, soap.Client.PostRaw), else as a tree. Redirects and non-SOAP
// HTTP errors are *bcp.StatusError, faults *soap.Fault.
func (c *Client) exchange(ctx context.Context, ep bcp.Endpoint, action string, msg []byte, raw bool) (reply, error) {
	if raw {
		ans, err := c.soap.PostRaw(ctx, ep.URL, action, msg)
		if err != nil {
			return reply{}, err
		}
		return reply{body: ans.Body, scope: ans.Scope}, nil
	}
	ans, err := c.soap.Post(ctx, ep.URL, action, msg)
	if err != nil {
		return reply{}, err
	}
	return reply{el: ans.Body}, nil
}

// build returns the message of one attempt of req: signed with signer, or (nil) not. A
// payload is signed as it is (soap.Signer.AppendSigned: no tree, one pass); a tree is copied,
// since each attempt's envelope adopts its body.
func (req request) build(signer *soap.Signer) ([]byte, error) {
	if req.payload != nil {
		if signer == nil {
			return nil, errors.New("connector: a canonical payload is only sent signed")
		}
		return signer.AppendSigned(nil, req.payload)
	}
	env := soap.NewEnvelope(req.body.Copy())
	if signer != nil {
		return signer.Sign(env)
	}
	return soap.Marshal(env)
}

// do runs one operation of service through the engine: req is put in an envelope (signed
// with the token when signed), sent with action, and handle reads the answer. A fault saying
// the token is not accepted (SOA-01001) renews the token and tries once more.
func (c *Client) do(ctx context.Context, service, action string, req request, signed bool,
	handle func(ep bcp.Endpoint, rep reply) error) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if c.loader.Current() == nil {
		// No list yet (New does not wait for one): this call waits, within its own context,
		// for a fetch to end (the one in progress, then its own).
		_, _ = c.loader.Refresh(ctx)
	}
	var used string // the ID of the token that signed the last try
	for try := 0; ; try++ {
		var signer *soap.Signer
		if signed {
			refused := ""
			if try > 0 {
				refused = used
			}
			var err error
			step := StepInfo{Kind: StepToken, Service: service}
			tctx, start := c.stepStart(ctx, step)
			signer, used, err = c.signerFor(tctx, refused)
			c.stepEnd(tctx, step, start, err)
			if err != nil {
				return c.noList(service, err)
			}
		}
		err := c.engine.Do(ctx, service, func(ctx context.Context, ep bcp.Endpoint) error {
			step := StepInfo{Kind: StepSign, Service: service, Endpoint: ep.URL}
			sctx, start := c.stepStart(ctx, step)
			msg, err := req.build(signer)
			c.stepEnd(sctx, step, start, err)
			if err != nil {
				return fmt.Errorf("connector: building the %s request: %w", service, err)
			}
			step.Kind = StepAttempt
			actx, start := c.stepStart(ctx, step)
			rep, err := c.exchange(actx, ep, action, msg, req.rawAnswer)
			if err == nil {
				err = handle(ep, rep)
			}
			c.stepEnd(actx, step, start, err)
			if err != nil && actx.Err() == nil {
				c.endpointErrs.Store(ep.URL, endpointError{text: err.Error(), at: c.clock.Now()})
			}
			return err
		})
		var fault *soap.Fault
		if err != nil && signed && try == 0 && errors.As(err, &fault) && fault.HasCode("SOA-01001") {
			c.log.Info("connector: token refused by the platform, renewing", zap.String("service", service))
			continue
		}
		return c.noList(service, refusal(service, err))
	}
}

// listRouter is the engine as the token provider's router: while no list is usable, a token
// request first waits (within its context) for a fetch of the list to end, rather than
// failing at once on a service the engine does not know yet.
type listRouter struct{ c *Client }

// Do implements sts.Router.
func (r listRouter) Do(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error {
	if r.c.loader.Current() == nil {
		_, _ = r.c.loader.Refresh(ctx)
	}
	return r.c.noList(service, r.c.engine.Do(ctx, service, attempt))
}

// ErrNoServiceList says no service list is usable yet (none stored, none builtin, none
// fetched): the call could not be routed. The error (a *ServiceListError) carries the list's
// last fetch error.
var ErrNoServiceList = errors.New("connector: no service list")

// ServiceListError says a call could not be routed because no service list is usable; Err is
// the list's last fetch error (nil before the first fetch ended).
type ServiceListError struct {
	Service string
	Err     error
}

// Error names the service and why no list is usable.
func (e *ServiceListError) Error() string {
	if e.Err == nil {
		return "connector: " + e.Service + ": no service list yet (the first fetch has not ended)"
	}
	return "connector: " + e.Service + ": no service list: " + e.Err.Error()
}

// Is reports whether target is ErrNoServiceList.
func (e *ServiceListError) Is(target error) bool { return target == ErrNoServiceList }

// Unwrap returns the list's last fetch error.
func (e *ServiceListError) Unwrap() error { return e.Err }

// noList replaces "unknown service" by why no list is usable, when none is.
func (c *Client) noList(service string, err error) error {
	if err == nil || !errors.Is(err, bcp.ErrUnknownService) || c.loader.Current() != nil {
		return err
	}
	return &ServiceListError{Service: service, Err: c.loader.Status().LastErr}
}

// refusal turns a SOAP fault that did not make the call switch endpoint (the engine returns
// a switching one inside a *bcp.UnavailableError) into what it is: the platform, up, saying
// no. It becomes a *BusinessError carrying the faultstring and every code under detail, so
// that no stored answer replaces it and no fallback follows. Other errors are returned as
// they are.
func refusal(service string, err error) error {
	var fault *soap.Fault
	if err == nil || errors.Is(err, bcp.ErrUnavailable) || errors.Is(err, ErrBusiness) || !errors.As(err, &fault) {
		return err
	}
	codes := fault.AllCodes
	if len(codes) == 0 {
		codes = fault.Codes
	}
	code := fault.Code
	if len(codes) > 0 {
		code = codes[0]
	}
	return &BusinessError{Service: service, Code: code, Message: fault.String, Codes: slices.Clone(codes), Err: err}
}

// liveCall runs one operation whose request is a tree through do and parses the answer's
// Body element with parse (see liveExchange).
func liveCall[A any](c *Client, ctx context.Context, service, action string, body *etree.Element, signed bool,
	parse func(*etree.Element) (A, error)) (A, string, error) {
	return liveExchange(c, ctx, service, action, request{body: body}, signed, func(r reply) (A, error) { return parse(r.el) })
}

// liveExchange runs one operation through do and parses the answer with parse. A business
// error from parse is an answer (the endpoint is fine): it is returned with the parsed value;
// any other parse error is the endpoint's failure, stamped with its URL. An attempt whose
// context ended (a hedging loser) does not overwrite the winner's answer.
func liveExchange[A any](c *Client, ctx context.Context, service, action string, req request, signed bool,
	parse func(reply) (A, error)) (A, string, error) {
	// What the winning attempt read, shared with the attempts (one allocation, not one per
	// variable).
	w := &struct {
		mu       sync.Mutex
		ans      A
		endpoint string
		business error
		done     bool
	}{}
	err := c.do(ctx, service, action, req, signed, func(ep bcp.Endpoint, rep reply) error {
		a, err := parse(rep)
		if err != nil && !errors.Is(err, ErrBusiness) {
			var re *ResponseError
			if errors.As(err, &re) {
				re.Endpoint = ep.URL
			}
			return err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.done {
			w.ans, w.endpoint, w.business, w.done = a, ep.URL, err, true
		}
		return nil
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		var zero A
		return zero, "", err
	}
	return w.ans, w.endpoint, w.business
}

// Call sends body (the element to put in the SOAP Body) to service with the SOAPAction
// action, signed with the token, through the service list's endpoints with failover, and
// returns the first element of the answer's Body. Non-SOAP HTTP errors are *bcp.StatusError,
// SOAP faults *soap.Fault, and an answer from no endpoint a *bcp.UnavailableError. Call has
// no local store: while the service is in forced fallback (status feed, operator, drill) it
// returns a *FallbackError (ErrFallback) without a network attempt.
func (c *Client) Call(ctx context.Context, service, action string, body *etree.Element) (*etree.Element, error) {
	return observeCall(c, ctx, OperationCall, service, func(ctx context.Context) (*etree.Element, error) {
		return c.call(ctx, service, action, body)
	}, func(_ *etree.Element, err error) CallEnd { return CallEnd{Outcome: outcomeOf(SourceLive, err)} })
}

// call is Call without the observer.
func (c *Client) call(ctx context.Context, service, action string, body *etree.Element) (*etree.Element, error) {
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if body == nil {
		return nil, &RequestError{Field: "body", Reason: "required"}
	}
	if c.modes.forced(service) {
		return nil, &FallbackError{Service: service, Err: ErrFallback, Cache: errors.New("connector: Call has no local store")}
	}
	var out *etree.Element
	var mu sync.Mutex
	err = c.do(ctx, service, action, request{body: body}, true, func(_ bcp.Endpoint, rep reply) error {
		mu.Lock()
		out = rep.el
		mu.Unlock()
		return nil
	})
	if err != nil {
		if e := c.ended(ctx); e != nil {
			return nil, e // the caller's cancel or Close: nothing recorded
		}
		c.noteFailure(service, err)
		return nil, err
	}
	c.noteLive(service)
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// platformDown reports whether err means the platform could not give an answer (as opposed to
// an answer saying no, or the caller's mistake).
func platformDown(err error) bool {
	return err != nil && !errors.Is(err, ErrBusiness) && !errors.Is(err, ErrRequest) && !errors.Is(err, ErrInvalidSSIN)
}

// noteFailure records a failed live call: when every endpoint failed (or no token could be
// had), the service goes into fallback.
func (c *Client) noteFailure(service string, err error) {
	if errors.Is(err, bcp.ErrUnavailable) || errors.Is(err, sts.ErrNoToken) || errors.Is(err, bcp.ErrUnknownService) || errors.Is(err, ErrNoServiceList) {
		c.modes.update(service, CauseUnavailable, func(s *serviceState) { s.unavailable = true })
	}
}

// noteLive records a live answer: a service in (automatic) fallback leaves it.
func (c *Client) noteLive(service string) {
	if c.modes.needsLive(service) {
		c.modes.update(service, CauseLiveAgain, func(s *serviceState) { s.unavailable = false })
	}
}

// watchEngine turns the engine's events into the client's modes and events.
func (c *Client) watchEngine(events <-chan bcp.Event) {
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			svc := bcp.ShortServiceName(ev.Service)
			if svc == "" {
				svc = ev.Service
			}
			switch ev.Kind {
			case bcp.EventFailedOver:
				c.log.Warn("connector: failed over", zap.String("service", svc), zap.String("endpoint", ev.Endpoint.URL), zap.String("from", ev.Previous.URL))
				c.events.publish(Event{Kind: EventFailedOver, Service: svc, Endpoint: ev.Endpoint.URL, Cause: CauseFailover, At: ev.At})
			case bcp.EventFailedBack:
				c.log.Warn("connector: failed back", zap.String("service", svc), zap.String("endpoint", ev.Endpoint.URL))
				c.events.publish(Event{Kind: EventFailedBack, Service: svc, Endpoint: ev.Endpoint.URL, Cause: CauseFailback, At: ev.At})
			default:
				c.events.publish(Event{Kind: EventBreaker, Service: svc, Endpoint: ev.Endpoint.URL, Cause: ev.From.String() + " → " + ev.To.String(), At: ev.At})
			}
			// The event stream drops events when full: it only wakes this loop up, and the
			// failed-over state is read from the engine itself.
			c.syncFailover()
		}
	}
}

// syncFailover sets every service's failed-over flag from the engine's snapshot: a service
// is failed over when the endpoint that answered last is not its default.
func (c *Client) syncFailover() {
	for _, ss := range c.engine.Snapshot().Services {
		if ss.Serving.URL == "" {
			continue
		}
		name := bcp.ShortServiceName(ss.ID)
		if name == "" {
			name = ss.ID
		}
		fo := !c.isDefault(name, ss.Serving)
		cause := CauseFailback
		if fo {
			cause = CauseFailover
		}
		c.modes.update(name, cause, func(s *serviceState) { s.failedOver = fo })
	}
}

// isDefault reports whether ep is the service's default endpoint (Order 0, or the lowest).
func (c *Client) isDefault(service string, ep bcp.Endpoint) bool {
	l := c.loader.Current()
	if l == nil {
		return ep.Order == 0
	}
	svc, ok := l.Lookup(service)
	if !ok || len(svc.Endpoints) == 0 {
		return ep.Order == 0
	}
	lowest := svc.Endpoints[0].Order
	for _, e := range svc.Endpoints {
		lowest = min(lowest, e.Order)
	}
	return ep.Order == lowest
}

// listChanged hands a new list to the engine and marks the services it puts in BCP mode
// (their active endpoint is not their default).
func (c *Client) listChanged(l *bcp.ServiceList) {
	if c.engine == nil || l == nil {
		return
	}
	c.engine.SetServiceList(l)
	c.events.publish(Event{Kind: EventServiceList, Cause: l.IssueInstant.UTC().Format(time.RFC3339), At: c.clock.Now()})
	for _, svc := range l.Services {
		name := svc.ShortName()
		if name == "" {
			continue
		}
		bcpMode := false
		for _, ep := range svc.Endpoints {
			if ep.Order == 0 {
				bcpMode = ep.Status != bcp.StatusActive
			}
		}
		cause := CauseServiceListEnd
		if bcpMode {
			cause = CauseServiceList
		}
		c.modes.update(name, cause, func(s *serviceState) { s.listBCP = bcpMode })
	}
}

// modeChanged reacts to a service leaving fallback: writes are replayed and answers served
// from the cache are checked again.
func (c *Client) modeChanged(service string, from, to Mode, cause string) {
	if to != ModeRecovering {
		return
	}
	c.goBackground(func() { c.recover(service) })
}

// recover runs the recovery of a service, then ends its recovering mode.
func (c *Client) recover(service string) {
	switch service {
	case ServiceInsurability, ServiceGenericInsurability, ServiceETK, ServiceSTS:
	default:
		c.replay() // a write service: its queued writes (and any other's not forced) go now
	}
	c.regular.run(c.ctx, service)
	c.modes.update(service, CauseReplayed, func(s *serviceState) { s.recovering = false })
}
