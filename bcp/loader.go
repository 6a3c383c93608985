package bcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/soap"
)

// Defaults of LoaderConfig.
const (
	DefaultListInterval = 60 * time.Second
	DefaultListTimeout  = 30 * time.Second
	// DefaultListClockSkew is how far in the future a list's IssueInstant may lie.
	DefaultListClockSkew = 5 * time.Minute
	maxHashBytes         = 1024
)

// Errors of the Loader. A list the Loader will not use is reported as a *RejectedError that
// matches ErrListRejected and the reason's sentinel (or, for a list that does not parse,
// ErrInvalidList and the parser's *ListError; for a bad signature, whatever Verify returned).
var (
	ErrListRejected  = errors.New("bcp: service list rejected")
	ErrHashMismatch  = errors.New("bcp: service list bytes do not match the announced SHA-256")
	ErrListSignature = errors.New("bcp: service list signature does not verify")
	ErrStaleList     = errors.New("bcp: service list is older than the one held")
	// ErrListEnvironment: the list's @Environment is not LoaderConfig.Environment.
	ErrListEnvironment = errors.New("bcp: service list is of another environment")
	// ErrListFuture: the list's IssueInstant is later than now plus LoaderConfig.ClockSkew.
	// Adopted, it would make every genuine list after it look stale.
	ErrListFuture = errors.New("bcp: service list issued in the future")
	// ErrListConflict: the list has the held list's IssueInstant but other bytes. The
	// platform never issues two lists at one instant: one of them is not genuine.
	ErrListConflict = errors.New("bcp: service list conflicts with the held one")
	// ErrNoServiceList: the Loader holds no list (nothing stored, no builtin, nothing fetched yet).
	ErrNoServiceList = errors.New("bcp: no service list")
)

// RejectedError says why a service list was refused. The held list stays in force.
type RejectedError struct {
	From   string // the URL fetched, or "store" or "builtin"
	SHA256 string // hex SHA-256 of the refused bytes ("" when they were never read)
	Reason string // "malformed", "signature", "environment", "future", "stale", "conflict", "hash mismatch"
	Err    error
}

// Error names where the list came from, the start of its SHA-256, the reason
// and the cause.
func (e *RejectedError) Error() string {
	sum := e.SHA256
	if len(sum) > 12 {
		sum = sum[:12]
	}
	return fmt.Sprintf("bcp: service list from %s (sha256 %s) rejected: %s: %v", e.From, sum, e.Reason, e.Err)
}

// Unwrap returns ErrListRejected and the cause.
func (e *RejectedError) Unwrap() []error { return []error{ErrListRejected, e.Err} }

// FetchError is a failed download of the list's .sha2 or .xml or of the status feed.
type FetchError struct {
	URL        string
	StatusCode int // 0 when no HTTP answer was read
	Err        error
}

// Error names the URL, the HTTP status when one was read, and the cause.
func (e *FetchError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("bcp: fetch %s: HTTP %d: %v", e.URL, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("bcp: fetch %s: %v", e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// ListSource says where the held service list came from.
type ListSource int

const (
	ListFromNone    ListSource = iota // no list held
	ListFromBuiltin                   // LoaderConfig.Builtin, compiled into the program
	ListFromStore                     // the ListStore (last good list of an earlier run)
	ListFromNetwork                   // downloaded and verified in this run
)

// String returns "none", "builtin", "store" or "network".
func (s ListSource) String() string {
	switch s {
	case ListFromNone:
		return "none"
	case ListFromBuiltin:
		return "builtin"
	case ListFromStore:
		return "store"
	case ListFromNetwork:
		return "network"
	default:
		return fmt.Sprintf("ListSource(%d)", int(s))
	}
}

// PollStatus is the outcome of a Loader's or Poller's latest fetches.
type PollStatus struct {
	LastAttempt time.Time // start of the latest fetch
	LastSuccess time.Time // end of the latest fetch that left us with a good, current reading
	LastErr     error     // error of the latest fetch; nil when it succeeded
}

// LoaderConfig configures a Loader. BaseURL and Verify are required.
type LoaderConfig struct {
	// BaseURL is the list's address without suffix: the Loader GETs BaseURL+".sha2" and
	// BaseURL+".xml", e.g. "https://servicelist.ehealth.fgov.be/servicelist". Must be https.
	BaseURL string
	// Verify checks the enveloped signature of the raw list against pinned roots and returns
	// nil only when it holds. Build it with soap.VerifyEnveloped (see the connector). Required:
	// lists from the network and from the Store are verified.
	Verify func(raw []byte) error
	// Store persists the last good list; nil = not persisted.
	Store ListStore
	// Builtin is a list compiled into the program by the vendor, used when the Store holds
	// nothing usable or holds an older list. It is trusted as compiled in (not verified) but
	// must parse; NewLoader fails when it does not.
	Builtin []byte
	// Interval between checks of the .sha2; 0 = DefaultListInterval (60 s). The Loader checks
	// always, not only in BCP mode.
	Interval time.Duration
	// Timeout of each HTTP request; 0 = DefaultListTimeout (30 s).
	Timeout time.Duration
	// Environment is the @Environment a list must carry, in the platform's spelling
	// ("Production", "Acceptation"), so that a list of another environment, however well
	// signed, is never adopted. Checked on lists from the network, the Store and Builtin
	// (NewLoader fails on a Builtin list of another environment). "" = not checked.
	Environment string
	// ClockSkew bounds how far in the future a list's IssueInstant may lie: a later one is
	// refused (ErrListFuture), from the network and the Store. 0 = DefaultListClockSkew (5 min).
	ClockSkew time.Duration
}

// DefaultLoaderConfig returns a LoaderConfig with BaseURL and the defaults; set Verify.
func DefaultLoaderConfig(baseURL string) LoaderConfig {
	return LoaderConfig{BaseURL: baseURL, Interval: DefaultListInterval, Timeout: DefaultListTimeout}
}

// Validate names the first bad field.
func (c LoaderConfig) Validate() error {
	if err := checkFetchURL(c.BaseURL); err != nil {
		return fmt.Errorf("bcp: LoaderConfig.BaseURL: %w", err)
	}
	if c.Verify == nil {
		return errors.New("bcp: LoaderConfig.Verify: required (a list must be verified against pinned roots)")
	}
	if c.Interval < 0 {
		return fmt.Errorf("bcp: LoaderConfig.Interval: negative (%v)", c.Interval)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("bcp: LoaderConfig.Timeout: negative (%v)", c.Timeout)
	}
	if c.ClockSkew < 0 {
		return fmt.Errorf("bcp: LoaderConfig.ClockSkew: negative (%v)", c.ClockSkew)
	}
	return nil
}

func checkFetchURL(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute https URL", s)
	}
	return nil
}

// Loader holds the current service list and keeps it up to date: at start it loads the
// Store's list (verified) or the Builtin one, then it checks BaseURL+".sha2" at once and every
// Interval, downloads BaseURL+".xml" only when the hash differs from the held list's, and
// adopts the new list only when its bytes match the hash, it parses, its signature verifies
// and its IssueInstant is not older than the held one's. Refused lists are logged (warn) and
// change nothing; a list refused for its content is not downloaded again while the .sha2
// still announces it (a hash mismatch is retried: .sha2 and .xml may be published a moment
// apart). Safe for concurrent use; Current is lock-free.
type Loader struct {
	cfg    LoaderConfig
	client *http.Client
	clock  Clock
	log    *zap.Logger

	cur atomic.Pointer[ServiceList]
	src atomic.Int32

	fetchMu   sync.Mutex // serialises refreshes; guards the fields below
	etagSHA2  string
	etagXML   string // ETag of the held list when it came from the network
	rejected  string // hash of the last list refused for a reason its bytes determine
	rejectErr error
	failing   failureLog

	status statusCell
	subs   subscribers[*ServiceList]

	loop *loop
}

// WithHTTPClient sets the HTTP client of a Loader or Poller (transport, TLS roots, proxy);
// the default is a client on http.DefaultTransport. Per-request timeouts come from the config.
// Whatever the client's CheckRedirect, redirects are never followed (soap.WithoutRedirects):
// a 3xx answer is a *FetchError, so a list or feed is only ever read from the URL configured.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.httpClient = c
		}
	}
}

// NewLoader validates cfg, loads the initial list (Store, else Builtin; the newer of the two
// when both parse) and starts checking the network in the background. It does not wait for
// the network: Current may be nil until the first fetch succeeds when there is neither a
// stored nor a builtin list. Options: WithHTTPClient, WithClock, WithLogger.
func NewLoader(cfg LoaderConfig, opts ...Option) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultListInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultListTimeout
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultListClockSkew
	}
	o := buildOptions(opts)
	l := &Loader{
		cfg:    cfg,
		client: soap.WithoutRedirects(o.httpClient), // a redirect is a failed fetch, never followed
		clock:  o.clock,
		log:    o.logger.With(zap.String("component", "bcp.loader"), zap.String("base_url", cfg.BaseURL)),
	}
	var builtin *ServiceList
	if len(cfg.Builtin) > 0 {
		b, err := ParseServiceList(cfg.Builtin)
		if err != nil {
			return nil, fmt.Errorf("bcp: LoaderConfig.Builtin: %w", err)
		}
		if err := l.checkEnvironment(b); err != nil {
			return nil, fmt.Errorf("bcp: LoaderConfig.Builtin: %w", err)
		}
		builtin = b
	}
	stored := l.loadStored()
	switch {
	case stored != nil && (builtin == nil || !stored.IssueInstant.Before(builtin.IssueInstant)):
		l.hold(stored, ListFromStore)
	case builtin != nil:
		l.hold(builtin, ListFromBuiltin)
	}
	l.loop = startLoop(l.clock, cfg.Interval, func(ctx context.Context) { _, _ = l.Refresh(ctx) })
	return l, nil
}

func (l *Loader) loadStored() *ServiceList {
	if l.cfg.Store == nil {
		return nil
	}
	raw, err := l.cfg.Store.Load()
	if err != nil || len(raw) == 0 {
		if err != nil && !errors.Is(err, ErrNoStoredList) {
			l.log.Warn("stored service list unreadable; ignored", zap.Error(err))
		}
		return nil
	}
	list, rerr := l.check(raw, "store")
	if rerr != nil {
		l.log.Warn("stored service list rejected; ignored", zap.String("reason", rerr.Reason), zap.Error(rerr))
		return nil
	}
	return list
}

// hold installs list without publishing (used before anyone can subscribe).
func (l *Loader) hold(list *ServiceList, src ListSource) {
	l.cur.Store(list)
	l.src.Store(int32(src))
	l.log.Info("service list loaded", zap.Stringer("source", src), zap.Time("issue_instant", list.IssueInstant),
		zap.String("sha256", list.SHA256), zap.String("environment", list.Environment))
}

// Current returns the held list, or nil when there is none yet. The list is shared: do not
// modify it.
func (l *Loader) Current() *ServiceList { return l.cur.Load() }

// Source says where the held list came from.
func (l *Loader) Source() ListSource { return ListSource(l.src.Load()) }

// Status returns the outcome of the latest checks.
func (l *Loader) Status() PollStatus { return l.status.get() }

// OnChange calls f with the held list at once (when there is one) and then with every list
// the Loader adopts, in order, one call at a time, from the Loader's goroutine. f must not
// block for long nor call OnChange or Refresh. The returned function unsubscribes.
// Typical use: loader.OnChange(engine.SetServiceList).
func (l *Loader) OnChange(f func(*ServiceList)) (cancel func()) {
	return l.subs.add(f, func() (*ServiceList, bool) {
		cur := l.cur.Load()
		return cur, cur != nil
	})
}

func (l *Loader) publish(list *ServiceList, src ListSource) {
	l.subs.publish(func() {
		l.cur.Store(list)
		l.src.Store(int32(src))
	}, list, true)
}

// Close stops the background checks and waits for them. Safe to call more than once.
func (l *Loader) Close() error {
	l.loop.close()
	return nil
}

// Refresh checks the network once now and reports whether a new list was adopted. The error
// is a *FetchError when the platform could not be read, a *RejectedError when the list was
// refused; either way the held list stays in force. Refreshes are serialised; do not call
// Refresh from an OnChange callback.
func (l *Loader) Refresh(ctx context.Context) (changed bool, err error) {
	l.fetchMu.Lock()
	defer l.fetchMu.Unlock()
	start := l.clock.Now()
	changed, err = l.refresh(ctx)
	l.status.finished(start, l.clock.Now(), err)
	if ctx.Err() != nil {
		return changed, err
	}
	var rej *RejectedError
	switch {
	case err == nil:
		l.failing.reached(l.log, "service list reachable again")
	case errors.As(err, &rej):
		// Logged once per refused list (when it was fetched); repeats are debug.
		if !errors.Is(err, errRejectedEarlier) {
			l.log.Warn("service list rejected; held list stays in force",
				zap.String("reason", rej.Reason), zap.String("sha256", rej.SHA256), zap.Error(err))
		} else {
			l.log.Debug("service list still the refused one", zap.String("sha256", rej.SHA256))
		}
		l.failing = failureLog{} // the platform was reached: the list itself was wrong
	default:
		l.failing.failed(l.log, err,
			"service list check failed; held list stays in force", "service list check still failing")
	}
	return changed, err
}

var errRejectedEarlier = errors.New("announced list was rejected earlier")

func (l *Loader) refresh(ctx context.Context) (bool, error) {
	held := l.cur.Load()
	shaURL, xmlURL := l.cfg.BaseURL+".sha2", l.cfg.BaseURL+".xml"

	body, etag, notModified, err := l.get(ctx, shaURL, l.etagSHA2, maxHashBytes)
	if err != nil {
		return false, err
	}
	if notModified && held != nil {
		return false, nil
	}
	announced, err := parseHashFile(body)
	if err != nil {
		return false, &FetchError{URL: shaURL, StatusCode: http.StatusOK, Err: err}
	}
	if held != nil && held.SHA256 == announced {
		l.etagSHA2 = etag
		l.log.Debug("service list unchanged", zap.String("sha256", announced))
		return false, nil
	}
	if announced == l.rejected && l.rejectErr != nil {
		return false, fmt.Errorf("%w: %w", errRejectedEarlier, l.rejectErr)
	}

	xmlETag := ""
	if held != nil && ListSource(l.src.Load()) == ListFromNetwork {
		xmlETag = l.etagXML
	}
	raw, newXMLETag, notModified, err := l.get(ctx, xmlURL, xmlETag, MaxServiceListBytes)
	if err != nil {
		return false, err
	}
	if notModified {
		return false, &FetchError{URL: xmlURL, StatusCode: http.StatusNotModified,
			Err: fmt.Errorf("not modified, yet %s announces sha256 %s and the held list is %s", shaURL, announced, held.SHA256)}
	}
	sum := sha256.Sum256(raw)
	got := hex.EncodeToString(sum[:])
	if got != announced {
		// Not remembered: the .sha2 and .xml may be published a moment apart.
		return false, &RejectedError{From: xmlURL, SHA256: got, Reason: "hash mismatch",
			Err: fmt.Errorf("%w: announced %s", ErrHashMismatch, announced)}
	}
	list, rerr := l.check(raw, xmlURL)
	switch {
	case rerr != nil || held == nil:
	case list.IssueInstant.Before(held.IssueInstant):
		rerr = &RejectedError{From: xmlURL, SHA256: got, Reason: "stale",
			Err: fmt.Errorf("%w: IssueInstant %s, held %s", ErrStaleList,
				list.IssueInstant.Format(time.RFC3339Nano), held.IssueInstant.Format(time.RFC3339Nano))}
	case list.IssueInstant.Equal(held.IssueInstant):
		// Same bytes were answered above (held.SHA256 == announced): these differ.
		rerr = &RejectedError{From: xmlURL, SHA256: got, Reason: "conflict",
			Err: fmt.Errorf("%w: IssueInstant %s, held list sha256 %s", ErrListConflict,
				list.IssueInstant.Format(time.RFC3339Nano), held.SHA256)}
	}
	if rerr != nil {
		// A list from the future may become acceptable: not remembered as refused.
		if !errors.Is(rerr, ErrListFuture) {
			l.rejected, l.rejectErr = got, rerr
		}
		return false, rerr
	}
	l.rejected, l.rejectErr = "", nil
	l.etagSHA2, l.etagXML = etag, newXMLETag
	if l.cfg.Store != nil {
		if err := l.cfg.Store.Save(raw); err != nil {
			l.log.Warn("service list adopted but not persisted", zap.Error(err))
		}
	}
	l.publish(list, ListFromNetwork)
	l.log.Info("service list adopted", zap.Time("issue_instant", list.IssueInstant),
		zap.String("sha256", list.SHA256), zap.String("environment", list.Environment))
	return true, nil
}

// check parses and verifies raw.
func (l *Loader) check(raw []byte, from string) (*ServiceList, *RejectedError) {
	sum := sha256.Sum256(raw)
	hexSum := hex.EncodeToString(sum[:])
	list, err := ParseServiceList(raw)
	if err != nil {
		return nil, &RejectedError{From: from, SHA256: hexSum, Reason: "malformed", Err: err}
	}
	if err := l.verify(raw); err != nil {
		return nil, &RejectedError{From: from, SHA256: hexSum, Reason: "signature", Err: fmt.Errorf("%w: %w", ErrListSignature, err)}
	}
	if err := l.checkEnvironment(list); err != nil {
		return nil, &RejectedError{From: from, SHA256: hexSum, Reason: "environment", Err: err}
	}
	if limit := l.clock.Now().Add(l.cfg.ClockSkew); list.IssueInstant.After(limit) {
		return nil, &RejectedError{From: from, SHA256: hexSum, Reason: "future",
			Err: fmt.Errorf("%w: IssueInstant %s, now plus skew %s", ErrListFuture,
				list.IssueInstant.Format(time.RFC3339Nano), limit.Format(time.RFC3339Nano))}
	}
	return list, nil
}

// checkEnvironment refuses a list of another environment than the configured one.
func (l *Loader) checkEnvironment(list *ServiceList) error {
	if l.cfg.Environment != "" && list.Environment != l.cfg.Environment {
		return fmt.Errorf("%w: %q, want %q", ErrListEnvironment, list.Environment, l.cfg.Environment)
	}
	return nil
}

// verify calls the injected verifier; a panic in it is a failed verification, not a crash.
func (l *Loader) verify(raw []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("verifier panicked: %v", r)
		}
	}()
	return l.cfg.Verify(raw)
}

// get fetches u with a per-request timeout and a body bound. notModified reports a 304
// answer to If-None-Match.
func (l *Loader) get(ctx context.Context, u, etag string, limit int64) (body []byte, newETag string, notModified bool, err error) {
	return boundedGet(ctx, l.client, u, etag, limit, l.cfg.Timeout, "application/xml, text/plain;q=0.9, */*;q=0.1")
}

func boundedGet(ctx context.Context, client *http.Client, u, etag string, limit int64, timeout time.Duration, accept string) ([]byte, string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", false, &FetchError{URL: u, Err: err}
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "ehgate")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", false, &FetchError{URL: u, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return nil, etag, true, nil
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", false, &FetchError{URL: u, StatusCode: resp.StatusCode, Err: errors.New(http.StatusText(resp.StatusCode))}
	}
	if resp.ContentLength > limit {
		return nil, "", false, &FetchError{URL: u, StatusCode: resp.StatusCode,
			Err: fmt.Errorf("body of %d bytes exceeds the limit of %d", resp.ContentLength, limit)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", false, &FetchError{URL: u, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading body: %w", err)}
	}
	if int64(len(body)) > limit {
		return nil, "", false, &FetchError{URL: u, StatusCode: resp.StatusCode, Err: fmt.Errorf("body exceeds the limit of %d bytes", limit)}
	}
	return body, resp.Header.Get("ETag"), false, nil
}

// parseHashFile reads a .sha2 file: 64 hex digits, optionally followed by white space and a
// file name (sha256sum's format), case-insensitive.
func parseHashFile(b []byte) (string, error) {
	fields := bytes.Fields(b)
	if len(fields) == 0 {
		return "", errors.New("empty .sha2")
	}
	h := strings.ToLower(string(fields[0]))
	if len(h) != 64 {
		return "", fmt.Errorf(".sha2 does not hold a hex SHA-256 (%d characters)", len(h))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", errors.New(".sha2 does not hold a hex SHA-256")
	}
	return h, nil
}
