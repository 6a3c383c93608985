package sts

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/x500"
)

// TokenStore persists tokens so that a program restarted during an STS outage keeps a
// still-valid one. The connector adapts the encrypted cache to it.
type TokenStore interface {
	// LoadToken returns the raw assertion saved for identity; (nil, nil) if none.
	LoadToken(ctx context.Context, identity string) ([]byte, error)
	// SaveToken saves the raw assertion for identity, valid until notOnOrAfter.
	SaveToken(ctx context.Context, identity string, assertion []byte, notOnOrAfter time.Time) error
}

// RenewalLock serialises the token requests of one identity across the processes that share
// a TokenStore (the instances of a fleet on one database), so that N instances make one STS
// request per renewal, not N. pgstore.DB implements it with a PostgreSQL advisory lock.
type RenewalLock interface {
	// LockRenewal returns once this process holds identity's renewal lock (unlock releases
	// it), or fails when ctx ends or the lock cannot be had. The lock must be released by
	// itself if the process dies.
	LockRenewal(ctx context.Context, identity string) (unlock func(), err error)
}

// Router runs an attempt against the endpoints of a service, as *bcp.Engine does (breaker,
// failover, timeouts). FixedEndpoint is a Router for one URL without bcp.
type Router interface {
	Do(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error
}

// ProviderConfig configures a Provider. Zero fields take the default named in their comment.
type ProviderConfig struct {
	// Identification authenticates the requester to the STS: the request is WS-Security
	// signed with it. Required.
	Identification *Credential
	// HolderOfKey is the credential the token is bound to: business messages are signed with
	// its key. nil = Identification. When it differs, the samlp:Request is also signed with it.
	HolderOfKey *Credential
	// Attributes says what the request claims and asks to be certified (PresetPharmacy,
	// PresetGP or another set). Required.
	Attributes AttributeSet
	// SSIN and NIHII are the values of claimed attributes with From FromSSIN / FromNIHII.
	SSIN, NIHII string
	// STSRoots is the trust pool of the STS's assertion signature. Required.
	STSRoots *x509.CertPool
	// STSSigner pins the certificate that signs assertions among those STSRoots trusts;
	// zero = PlatformSTS (the platform's STS of production and acceptance, by subject).
	STSSigner SignerPin
	// Issuer is the expected assertion Issuer; "" = DefaultIssuer.
	Issuer string
	// Dialect is the protocol of the token request: DialectSAMLP (zero, the official
	// connector's) or DialectWSTrust. Both give the same tokens, cache and renewal.
	Dialect Dialect
	// Service is the STS's name for the Router; "" = ServiceName, or ServiceNameWSTrust
	// with DialectWSTrust.
	Service string
	// Router finds the STS endpoint (a *bcp.Engine, or FixedEndpoint). Required.
	Router Router
	// Store persists tokens across restarts; nil = memory only.
	Store TokenStore
	// RenewalLock, with a Store shared by several processes, makes a token request wait
	// for the identity's lock and first look in the Store for a token another process
	// obtained meanwhile. nil = none. When the lock cannot be had (its database is down),
	// the request goes ahead without it: availability first.
	RenewalLock RenewalLock
	// RequestedLifetime is the validity asked for; the STS decides what it grants. 0 = 24 h.
	RequestedLifetime time.Duration
	// RenewFraction is the fraction of the granted lifetime after which a token is renewed in
	// the background; 0 = 0.5. Must be in (0, 1).
	RenewFraction float64
	// ClockSkew is how far an assertion's NotBefore may be ahead of our clock; 0 = 5 min.
	ClockSkew time.Duration
	// ExpiryMargin: a token with less validity left is no longer handed out (the business
	// call still has to reach the platform); 0 = 1 min, capped at a tenth of the granted
	// lifetime.
	ExpiryMargin time.Duration
	// RequestTimeout bounds one token request (through every endpoint); 0 = 60 s.
	RequestTimeout time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between failed background
	// renewals; 0 = 1 s and 5 min.
	RetryInitial, RetryMax time.Duration
	// Limits bound the STS response; zero = soap.DefaultLimits.
	Limits soap.Limits
}

// DefaultProviderConfig holds the defaults the zero fields of a ProviderConfig stand for.
var DefaultProviderConfig = ProviderConfig{
	Issuer:            DefaultIssuer,
	Service:           ServiceName,
	RequestedLifetime: 24 * time.Hour,
	RenewFraction:     0.5,
	ClockSkew:         5 * time.Minute,
	ExpiryMargin:      time.Minute,
	RequestTimeout:    60 * time.Second,
	RetryInitial:      time.Second,
	RetryMax:          5 * time.Minute,
}

// Validate names the first field of c that cannot work.
func (c ProviderConfig) Validate() error {
	switch {
	case c.Identification == nil || c.Identification.Certificate == nil || c.Identification.Key == nil:
		return errors.New("sts: ProviderConfig.Identification is required")
	case !keyMatches(c.Identification.Key, c.Identification.Certificate):
		return errors.New("sts: ProviderConfig.Identification: key does not match the certificate")
	case c.HolderOfKey != nil && (c.HolderOfKey.Certificate == nil || c.HolderOfKey.Key == nil):
		return errors.New("sts: ProviderConfig.HolderOfKey has no certificate or key")
	case c.HolderOfKey != nil && !keyMatches(c.HolderOfKey.Key, c.HolderOfKey.Certificate):
		return errors.New("sts: ProviderConfig.HolderOfKey: key does not match the certificate")
	case c.STSRoots == nil:
		return errors.New("sts: ProviderConfig.STSRoots is required")
	case c.Router == nil:
		return errors.New("sts: ProviderConfig.Router is required")
	case c.Dialect != DialectSAMLP && c.Dialect != DialectWSTrust:
		return fmt.Errorf("sts: ProviderConfig.Dialect %v is unknown", c.Dialect)
	case c.Identification.Certificate != nil && !namesRenderable(c.Identification.Certificate):
		return errors.New("sts: ProviderConfig.Identification: certificate names cannot be rendered (malformed DER name)")
	case c.RequestedLifetime < 0:
		return errors.New("sts: ProviderConfig.RequestedLifetime is negative")
	case c.RenewFraction < 0 || c.RenewFraction >= 1:
		return fmt.Errorf("sts: ProviderConfig.RenewFraction %v is outside (0, 1)", c.RenewFraction)
	case c.ClockSkew < 0:
		return errors.New("sts: ProviderConfig.ClockSkew is negative")
	case c.ExpiryMargin < 0:
		return errors.New("sts: ProviderConfig.ExpiryMargin is negative")
	case c.RequestTimeout < 0:
		return errors.New("sts: ProviderConfig.RequestTimeout is negative")
	case c.RetryInitial < 0 || c.RetryMax < 0:
		return errors.New("sts: ProviderConfig.RetryInitial/RetryMax is negative")
	case c.RetryInitial > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryInitial:
		return errors.New("sts: ProviderConfig.RetryMax is below RetryInitial")
	}
	if f, ok := c.Router.(FixedEndpoint); ok {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("sts: ProviderConfig.Router: %w", err)
		}
	}
	if err := c.STSSigner.Validate(); err != nil {
		return fmt.Errorf("sts: ProviderConfig.STSSigner: %w", err)
	}
	if _, err := c.Attributes.resolve(c.SSIN, c.NIHII); err != nil {
		return fmt.Errorf("sts: ProviderConfig.Attributes: %w", err)
	}
	return nil
}

func namesRenderable(c *x509.Certificate) bool {
	_, err1 := x500.RFC1779(c.RawSubject)
	_, err2 := x500.RFC1779(c.RawIssuer)
	return err1 == nil && err2 == nil
}

func (c ProviderConfig) withDefaults() ProviderConfig {
	d := DefaultProviderConfig
	if c.HolderOfKey == nil {
		c.HolderOfKey = c.Identification
	}
	if c.Issuer == "" {
		c.Issuer = d.Issuer
	}
	if c.Service == "" {
		c.Service = d.Service
		if c.Dialect == DialectWSTrust {
			c.Service = ServiceNameWSTrust
		}
	}
	if c.RequestedLifetime == 0 {
		c.RequestedLifetime = d.RequestedLifetime
	}
	if c.RenewFraction == 0 {
		c.RenewFraction = d.RenewFraction
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = d.ClockSkew
	}
	if c.ExpiryMargin == 0 {
		c.ExpiryMargin = d.ExpiryMargin
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = d.RetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(d.RetryMax, c.RetryInitial)
	}
	return c
}

// Option injects a dependency into NewProvider.
type Option func(*options)

type options struct {
	clock  bcp.Clock
	logger *zap.Logger
	client *http.Client
}

// WithClock sets the clock of validity checks and renewal timers; default bcp.SystemClock().
func WithClock(c bcp.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithLogger sets the logger; default zap.NewNop(). Info when a token is obtained or lost,
// warn when a renewal fails, debug per request. Assertions and SSINs are never logged.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithHTTPClient sets the HTTP client of the STS exchange (its transport carries the TLS
// configuration); default http.DefaultClient. Whatever its CheckRedirect, a redirect is never
// followed (soap.Client): the token request would carry the identity's signature elsewhere.
// It is a failure of that endpoint (*RedirectError, ErrRedirect).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// current is the token in use and when to stop using and to renew it.
type current struct {
	tok      *Token
	useUntil time.Time // NotOnOrAfter minus the expiry margin
	renewAt  time.Time // NotBefore plus RenewFraction of the granted lifetime
	// expired is set once the clock passes useUntil, by a timer at useUntil and by the
	// periodic wall-clock check (monotonic timers run late after a suspend). Token reads it
	// instead of the clock: a clock read costs more than the whole cached path.
	expired atomic.Bool
	timer   bcp.Timer
	signer  *soap.Signer // business-message signer bound to tok and the holder-of-key key
}

// wallCheckInterval is the period of the wall-clock check of the current token's expiry
// (a variable for tests).
var wallCheckInterval = time.Second

// Provider obtains SAML holder-of-key tokens for one identity and keeps a valid one in
// memory, renewing it in the background before it expires. It is safe for concurrent use.
type Provider struct {
	cfg      ProviderConfig
	identity string
	subject  string // identification certificate's subject, RFC 1779 (x500.RFC1779)
	issuer   string // and its issuer
	claimed  []resolvedAttribute
	check    validator
	signer   *soap.Signer
	hokSign  *soap.Signer // signs the answer to a WS-Trust sign challenge
	clock    bcp.Clock
	log      *zap.Logger
	client   *soap.Client

	cur    atomic.Pointer[current]
	flight singleflight.Group
	wake   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines and token requests in flight
	mu     sync.Mutex     // guards closed and wg.Add against Close
	closed bool

	requests  atomic.Int64
	failures  atomic.Int64
	wallCheck time.Duration
}

// NewProvider checks cfg, loads a still-valid token from cfg.Store if there is one, and starts
// the background renewal (which also obtains the first token at once). Close stops it.
func NewProvider(cfg ProviderConfig, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{clock: bcp.SystemClock(), logger: zap.NewNop(), client: http.DefaultClient}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	claimed, _ := cfg.Attributes.resolve(cfg.SSIN, cfg.NIHII) // checked by Validate
	subject, _ := x500.RFC1779(cfg.Identification.Certificate.RawSubject)
	issuer, _ := x500.RFC1779(cfg.Identification.Certificate.RawIssuer)
	// The STS's WS-SecurityPolicy has sp:ProtectTokens: the signature covers the
	// BinarySecurityToken as well as Body and Timestamp.
	signer, err := soap.NewSigner(soap.SignerConfig{
		Key:         cfg.Identification.Key,
		Certificate: cfg.Identification.Certificate,
		SignToken:   true,
		Now:         o.clock.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("sts: identification credential: %w", err)
	}
	hokSign, err := soap.NewSigner(soap.SignerConfig{
		Key:         cfg.HolderOfKey.Key,
		Certificate: cfg.HolderOfKey.Certificate,
		SignToken:   true,
		Now:         o.clock.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("sts: holder-of-key credential: %w", err)
	}
	p := &Provider{
		hokSign:  hokSign,
		cfg:      cfg,
		identity: identityOf(cfg),
		subject:  subject,
		issuer:   issuer,
		claimed:  claimed,
		check: validator{
			roots:     cfg.STSRoots,
			pin:       cfg.STSSigner.compile(),
			issuer:    cfg.Issuer,
			skew:      cfg.ClockSkew,
			lifetime:  cfg.RequestedLifetime,
			holderKey: cfg.HolderOfKey.Certificate,
			limits:    cfg.Limits,
		},
		signer: signer,
		clock:  o.clock,
		client: soap.NewClient(o.client, soap.ClientConfig{Limits: cfg.Limits, Now: o.clock.Now}),
		wake:   make(chan struct{}, 1),

		wallCheck: wallCheckInterval,
	}
	p.log = o.logger.With(zap.String("identity", p.identity))
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.loadStored()
	p.wg.Add(2) // before anyone can Close
	go p.run()
	go p.watchWallClock()
	return p, nil
}

// identityOf labels the identity: a digest of both certificates and the attribute set, so a
// change of any of them does not reuse a stored token. It carries no personal data.
func identityOf(cfg ProviderConfig) string {
	h := sha256.New()
	h.Write(cfg.Identification.Certificate.Raw)
	h.Write([]byte{0})
	h.Write(cfg.HolderOfKey.Certificate.Raw)
	for _, a := range cfg.Attributes.Claimed {
		fmt.Fprintf(h, "\x00c%s\x00%s\x00%d\x00%s", a.Namespace, a.Name, a.From, a.Value)
	}
	for _, d := range cfg.Attributes.Certified {
		fmt.Fprintf(h, "\x00d%s\x00%s", d.Namespace, d.Name)
	}
	fmt.Fprintf(h, "\x00%s\x00%s\x00%s", cfg.SSIN, cfg.NIHII, cfg.Issuer)
	return "sts-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Identity returns the label of this provider's identity, under which tokens are stored.
func (p *Provider) Identity() string { return p.identity }

// Token returns a valid token. While one is held it comes from memory without blocking; only
// when none is left does the call wait for the STS (one request however many callers wait),
// and fail with a *TokenError (errors.Is ErrNoToken, and bcp.ErrUnavailable when the STS
// could not be reached) if none can be had before ctx ends.
func (p *Provider) Token(ctx context.Context) (*Token, error) {
	if c := p.cur.Load(); c != nil && !c.expired.Load() {
		return c.tok, nil
	}
	return p.await(ctx, p.unusable)
}

// Current returns the token held now, or nil when none is valid (none obtained or loaded yet,
// expired, or the provider closed). It never blocks and never calls the STS: it is for status
// pages and monitoring; callers that need a token use Token.
func (p *Provider) Current() *Token {
	if c := p.cur.Load(); c != nil && !p.unusable(c) {
		return c.tok
	}
	return nil
}

// Signer returns a soap.Signer for business messages: it carries the current token and signs
// with the holder-of-key key. It is made once per token, so while a token is valid Signer is
// as cheap as Token; it fails as Token does.
func (p *Provider) Signer(ctx context.Context) (*soap.Signer, error) {
	if c := p.cur.Load(); c != nil && !c.expired.Load() && c.signer != nil {
		return c.signer, nil
	}
	tok, err := p.await(ctx, p.unusable)
	if err != nil {
		return nil, err
	}
	if c := p.cur.Load(); c != nil && c.tok == tok && c.signer != nil {
		return c.signer, nil
	}
	return soap.NewSigner(soap.SignerConfig{Key: p.cfg.HolderOfKey.Key, Assertion: tok.Assertion, Now: p.clock.Now})
}

// HolderOfKey returns the credential tokens are bound to (business messages are signed with
// its key).
func (p *Provider) HolderOfKey() *Credential { return p.cfg.HolderOfKey }

// unusable reports whether c cannot be handed out (none, or past its useUntil).
func (p *Provider) unusable(c *current) bool {
	if c == nil || c.expired.Load() {
		return true
	}
	if !p.clock.Now().Before(c.useUntil) {
		p.expire(c)
		return true
	}
	return false
}

// expire marks c expired.
func (p *Provider) expire(c *current) {
	if c.expired.CompareAndSwap(false, true) && p.cur.Load() == c {
		p.log.Info("sts token expired", assertionRef(c.tok.ID))
	}
}

// Renew obtains a new token now, whatever the validity of the current one (for example after
// the platform refused the current one). It shares a request already in flight. On failure
// the current token stays in use.
func (p *Provider) Renew(ctx context.Context) (*Token, error) {
	seen := p.cur.Load()
	return p.await(ctx, func(c *current) bool { return c == seen })
}

// Requests returns how many token requests this provider has sent.
func (p *Provider) Requests() int64 { return p.requests.Load() }

// Failures returns how many of those token requests failed (no token came of them).
func (p *Provider) Failures() int64 { return p.failures.Load() }

// Close stops the background renewal and waits for it. Afterwards Token fails with ErrClosed.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if c := p.cur.Load(); c != nil {
		c.expired.Store(true)
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return nil
}

// enter registers a token request with Close, unless the provider is closed.
func (p *Provider) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// watchWallClock expires the current token by the wall clock, which timers do not follow
// through a suspend of the machine.
func (p *Provider) watchWallClock() {
	defer p.wg.Done()
	t := time.NewTicker(p.wallCheck)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if c := p.cur.Load(); c != nil {
				p.unusable(c)
			}
		}
	}
}

// await joins (or starts) the one token request in flight. needed is evaluated when the
// flight starts: when the current token no longer needs replacing, it is returned as is.
func (p *Provider) await(ctx context.Context, needed func(*current) bool) (*Token, error) {
	if p.ctx.Err() != nil {
		return nil, &TokenError{Identity: p.identity, Err: ErrClosed}
	}
	ch := p.flight.DoChan(p.identity, func() (any, error) {
		if c := p.cur.Load(); !needed(c) {
			return c.tok, nil
		}
		if !p.enter() {
			return nil, ErrClosed
		}
		defer p.wg.Done()
		if p.cfg.RenewalLock != nil && p.cfg.Store != nil {
			return p.obtainLocked(needed)
		}
		return p.obtain()
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, &TokenError{Identity: p.identity, Err: r.Err}
		}
		return r.Val.(*Token), nil
	case <-ctx.Done():
		return nil, &TokenError{Identity: p.identity, Err: ctx.Err()}
	}
}

// obtain sends one token request and installs the token it brings.
func (p *Provider) obtain() (*Token, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	defer cancel()
	p.requests.Add(1)
	tok, err := p.request(ctx)
	if err != nil {
		p.failures.Add(1)
		return nil, err
	}
	p.install(tok, true)
	p.log.Info("sts token obtained",
		assertionRef(tok.ID),
		zap.Time("not_on_or_after", tok.NotOnOrAfter),
		zap.Duration("granted", tok.Lifetime()))
	if p.cfg.Store != nil {
		if err := p.cfg.Store.SaveToken(ctx, p.identity, tok.Assertion, tok.NotOnOrAfter); err != nil {
			p.log.Warn("sts token not persisted", zap.Error(err))
		}
	}
	return tok, nil
}

// obtainLocked obtains a token under the identity's RenewalLock: once it holds the lock, a
// token another process stored meanwhile is taken instead of asking the STS, if it is one
// needed would not replace.
func (p *Provider) obtainLocked(needed func(*current) bool) (*Token, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	unlock, err := p.cfg.RenewalLock.LockRenewal(ctx, p.identity)
	cancel()
	if err != nil {
		if p.ctx.Err() != nil {
			return nil, ErrClosed
		}
		p.log.Warn("sts renewal lock unavailable; requesting a token without it", zap.Error(err))
		return p.obtain()
	}
	defer unlock()
	if tok := p.loadShared(needed); tok != nil {
		return tok, nil
	}
	return p.obtain()
}

// loadShared installs and returns the stored token if another process stored one that is
// valid, not yet due for renewal, and not one needed would replace; nil otherwise.
func (p *Provider) loadShared(needed func(*current) bool) *Token {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	defer cancel()
	raw, err := p.cfg.Store.LoadToken(ctx, p.identity)
	if err != nil || raw == nil {
		return nil
	}
	now := p.clock.Now()
	tok, err := p.check.parseStored(raw, now)
	if err != nil {
		return nil
	}
	if c := p.cur.Load(); c != nil && c.tok.ID == tok.ID {
		return nil // the token we hold: it is the one to replace
	}
	life := tok.Lifetime()
	margin := min(p.cfg.ExpiryMargin, life/10)
	cand := &current{tok: tok, useUntil: tok.NotOnOrAfter.Add(-margin), renewAt: tok.NotBefore.Add(time.Duration(float64(life) * p.cfg.RenewFraction))}
	if !now.Before(cand.useUntil) || !now.Before(cand.renewAt) || needed(cand) {
		return nil
	}
	p.install(tok, false)
	p.log.Info("sts token renewed by another instance loaded", assertionRef(tok.ID), zap.Time("not_on_or_after", tok.NotOnOrAfter))
	return tok
}

// request builds, signs and sends the token request and validates the answer.
func (p *Provider) request(ctx context.Context) (*Token, error) {
	asked := p.clock.Now()
	if p.cfg.Dialect == DialectWSTrust {
		return p.requestWSTrust(ctx, asked)
	}
	msg, requestID, err := p.message(asked)
	if err != nil {
		return nil, err
	}
	raw, body, err := p.send(ctx, SOAPAction, msg)
	if err != nil {
		return nil, err
	}
	return p.check.readResponse(raw, body, requestID, asked, p.clock.Now())
}

// send posts msg through the Router and returns the answer.
func (p *Provider) send(ctx context.Context, action string, msg []byte) ([]byte, *etree.Element, error) {
	var (
		mu   sync.Mutex
		raw  []byte
		body *etree.Element
	)
	err := p.cfg.Router.Do(ctx, p.cfg.Service, func(ctx context.Context, ep bcp.Endpoint) error {
		r, b, err := p.exchange(ctx, ep, action, msg)
		if err != nil {
			p.log.Debug("sts request failed", zap.String("endpoint", ep.URL), zap.Error(err))
			return err
		}
		mu.Lock()
		raw, body = r, b
		mu.Unlock()
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	return raw, body, err
}

// requestWSTrust asks for a token in the WS-Trust dialect: Renew of the token held while it
// is valid, else Issue; a sign challenge is answered once, signed with the holder-of-key key.
func (p *Provider) requestWSTrust(ctx context.Context, asked time.Time) (*Token, error) {
	var renew []byte
	if c := p.cur.Load(); c != nil && !p.unusable(c) {
		renew = c.tok.Assertion
	}
	rst, context, err := tokenRequest{
		holderOfKey: p.cfg.HolderOfKey,
		claimed:     p.claimed,
		certified:   p.cfg.Attributes.Certified,
		now:         asked,
		lifetime:    p.cfg.RequestedLifetime,
	}.buildWSTrust(renew)
	if err != nil {
		return nil, err
	}
	msg, err := p.signer.Sign(soap.NewEnvelope(rst))
	if err != nil {
		return nil, fmt.Errorf("sts: sign request with the identification credential: %w", err)
	}
	raw, body, err := p.send(ctx, SOAPActionWSTrust, msg)
	if err != nil {
		return nil, err
	}
	ans, err := readWSTrust(body, context)
	if err != nil {
		return nil, err
	}
	if ans.challenge != nil {
		msg, err := p.hokSign.Sign(soap.NewEnvelope(challengeResponse(ans)))
		if err != nil {
			return nil, fmt.Errorf("sts: sign challenge response with the holder-of-key credential: %w", err)
		}
		if raw, body, err = p.send(ctx, SOAPActionChallenge, msg); err != nil {
			return nil, err
		}
		if ans, err = readWSTrust(body, context); err != nil {
			return nil, err
		}
		if ans.challenge != nil {
			return nil, fmt.Errorf("%w: a second sign challenge", ErrMalformedResponse)
		}
	}
	return p.check.readWSTrustToken(raw, ans, asked, p.clock.Now())
}

// message returns the signed SOAP token request and its RequestID.
func (p *Provider) message(now time.Time) ([]byte, string, error) {
	req, requestID := tokenRequest{
		subject:     p.subject,
		issuer:      p.issuer,
		holderOfKey: p.cfg.HolderOfKey,
		claimed:     p.claimed,
		certified:   p.cfg.Attributes.Certified,
		now:         now,
		lifetime:    p.cfg.RequestedLifetime,
	}.build()
	hok := p.cfg.HolderOfKey
	if !hok.Certificate.Equal(p.cfg.Identification.Certificate) {
		err := soap.SignEnveloped(req, hok.Key, soap.EnvelopedOptions{
			IDAttr:       "RequestID",
			Certificates: append([]*x509.Certificate{hok.Certificate}, hok.Chain...),
			Before:       "AttributeQuery",
			Now:          func() time.Time { return now },
		})
		if err != nil {
			return nil, "", fmt.Errorf("sts: sign request with the holder-of-key credential: %w", err)
		}
	}
	msg, err := p.signer.Sign(soap.NewEnvelope(req))
	if err != nil {
		return nil, "", fmt.Errorf("sts: sign request with the identification credential: %w", err)
	}
	return msg, requestID, nil
}

// install makes tok the current token; fresh says it was just issued.
func (p *Provider) install(tok *Token, fresh bool) {
	p.log.Debug("sts token installed", zap.String("assertion_id", tok.ID), assertionRef(tok.ID))
	now := p.clock.Now()
	life := tok.Lifetime()
	margin := min(p.cfg.ExpiryMargin, life/10)
	c := &current{
		tok:      tok,
		useUntil: tok.NotOnOrAfter.Add(-margin),
		renewAt:  tok.NotBefore.Add(time.Duration(float64(life) * p.cfg.RenewFraction)),
	}
	if fresh && !c.renewAt.After(now) {
		// A token just issued yet already due (its NotBefore far in the past: a skewed STS
		// clock) would be renewed in a tight loop: renew at the fraction of what is left.
		c.renewAt = now.Add(time.Duration(float64(tok.NotOnOrAfter.Sub(now)) * p.cfg.RenewFraction))
	}
	signer, err := soap.NewSigner(soap.SignerConfig{Key: p.cfg.HolderOfKey.Key, Assertion: tok.Assertion, Now: p.clock.Now})
	if err != nil {
		// The assertion was validated and parses alone; this would be a bug, not bad input.
		p.log.Error("sts token unusable for signing", assertionRef(tok.ID), zap.Error(err))
	}
	c.signer = signer
	if left := c.useUntil.Sub(now); left > 0 {
		c.timer = p.clock.AfterFunc(left, func() { p.expire(c) })
	} else {
		c.expired.Store(true)
	}
	if old := p.cur.Swap(c); old != nil && old.timer != nil {
		old.timer.Stop()
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loadStored installs the stored token if it is still valid.
func (p *Provider) loadStored() {
	if p.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	raw, err := p.cfg.Store.LoadToken(ctx, p.identity)
	if err != nil {
		p.log.Warn("sts stored token unreadable", zap.Error(err))
		return
	}
	if raw == nil {
		return
	}
	now := p.clock.Now()
	tok, err := p.check.parseStored(raw, now)
	if err != nil {
		p.log.Info("sts stored token not used", zap.Error(err))
		return
	}
	if margin := min(p.cfg.ExpiryMargin, tok.Lifetime()/10); !now.Before(tok.NotOnOrAfter.Add(-margin)) {
		p.log.Info("sts stored token too close to expiry", assertionRef(tok.ID))
		return
	}
	p.install(tok, false)
	p.log.Info("sts stored token loaded", assertionRef(tok.ID), zap.Time("not_on_or_after", tok.NotOnOrAfter))
}

// run renews the token in the background: when it is due, and with backoff after a failure.
func (p *Provider) run() {
	defer p.wg.Done()
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.cfg.RetryInitial),
		backoff.WithMaxInterval(p.cfg.RetryMax),
		backoff.WithMaxElapsedTime(0),
	)
	for {
		if p.ctx.Err() != nil {
			return
		}
		c := p.cur.Load()
		now := p.clock.Now()
		var wait time.Duration
		if c == nil || !now.Before(c.renewAt) {
			_, err := p.await(p.ctx, func(x *current) bool { return x == c })
			if p.ctx.Err() != nil {
				return
			}
			if err == nil {
				b.Reset()
				continue
			}
			wait = b.NextBackOff()
			left := time.Duration(0)
			if c != nil {
				left = c.useUntil.Sub(now)
			}
			p.log.Warn("sts token renewal failed", zap.Error(err), zap.Duration("retry_in", wait), zap.Duration("token_left", max(left, 0)))
		} else {
			wait = c.renewAt.Sub(now)
		}
		fired := make(chan struct{})
		t := p.clock.AfterFunc(wait, func() { close(fired) })
	sleep:
		for {
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-fired:
				break sleep
			case <-p.wake:
				// A token was installed by a caller: recompute from it. A wake left over
				// from a token this loop already knows (its own renewal's install) is no
				// reason to cut a backoff short: keep waiting.
				if p.cur.Load() != c {
					t.Stop()
					b.Reset()
					break sleep
				}
			}
		}
	}
}

// assertionRef names a token in logs at info level and above without its AssertionID (which
// names the bearer token at the platform): the first 12 hex digits of the ID's SHA-256.
func assertionRef(id string) zap.Field {
	sum := sha256.Sum256([]byte(id))
	return zap.String("assertion_ref", hex.EncodeToString(sum[:6]))
}
