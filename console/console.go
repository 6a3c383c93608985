// Package console is an operator's screen for an ehgate client: an http.Handler the vendor
// mounts on its own admin server. One page (html/template, a few lines of inline script
// and no build step) shows each service's mode and why, its endpoints with their breaker
// state and last error, the token's validity, the outbox and its dead letters, and the
// freshness of the service list and of the status feed, refreshed every few seconds; a JSON
// endpoint gives the same. Operators the vendor's Authorize hook accepts may activate and end
// fallback (a reason is required; who and when are recorded), start a drill and see its
// report, and requeue or discard a dead letter. Without a hook the console is read-only.
// Actions are kept in the client's operator log (connector.Client.RecordOperatorAction: a
// sealed record of its encrypted store), so the page shows them after a restart too.
//
//	admin.Handle("/ehgate/", http.StripPrefix("/ehgate", console.New(client, console.Config{
//		Authorize: func(r *http.Request) (string, bool) { u := sso.User(r); return u.Name, u.Has("ehgate-operator") },
//	})))
//
// Routes, relative to where it is mounted: GET / (the page), GET /status.json, GET
// /fragment (the page's live part), and POST /fallback/activate, /fallback/end, /drill,
// /deadletters/requeue, /deadletters/discard. Every POST must come from an authorised
// operator and carry the page's CSRF token (an HMAC of the operator's name under a secret of
// the console), and is refused when the browser says it comes from another site. Nothing on
// the page or in the JSON names a patient: dead letters show their number, service, time and
// size, never their payload or the platform's message.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/connector"
)

// Config is the console's configuration. The zero value is a read-only console.
type Config struct {
	// Authorize names the operator making r and says whether they may act. nil = nobody
	// may: the console is read-only. It is called for every request.
	Authorize func(r *http.Request) (operator string, ok bool)
	// Secret keys the CSRF tokens. nil = 32 random bytes (tokens then change when the
	// process restarts; give one to share tokens between replicas).
	Secret []byte
	// Refresh is how often the page reloads its live part. 0 = 5 s. Each reload reads the
	// client's Status (whose store counts are recounted at most every
	// connector.StoreCountsMaxAge) and its operator log.
	Refresh time.Duration
	// MaxDrill bounds a drill's duration. 0 = 1 h.
	MaxDrill time.Duration
	// MaxActions is how many actions the page shows (the newest). 0 = 200. The client's
	// operator log keeps connector.MaxOperatorActions.
	MaxActions int
}

// DefaultConfig is a read-only console with the defaults filled in.
func DefaultConfig() Config {
	return Config{Refresh: 5 * time.Second, MaxDrill: time.Hour, MaxActions: 200}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Refresh < 0:
		return fmt.Errorf("console: Config.Refresh %v is negative", c.Refresh)
	case c.MaxDrill < 0:
		return fmt.Errorf("console: Config.MaxDrill %v is negative", c.MaxDrill)
	case c.MaxActions < 0:
		return fmt.Errorf("console: Config.MaxActions %d is negative", c.MaxActions)
	case c.Secret != nil && len(c.Secret) < 16:
		return errors.New("console: Config.Secret is shorter than 16 bytes")
	}
	return nil
}

// Option injects a dependency into New.
type Option func(*Console)

// WithLogger logs every action (operator, action, target, reason, result) at info.
func WithLogger(l *zap.Logger) Option { return func(h *Console) { h.log = l } }

// Console is the handler. Safe for concurrent use.
type Console struct {
	c   *connector.Client
	cfg Config
	log *zap.Logger
	mux *http.ServeMux

	mu      sync.Mutex
	unsaved []Action // actions the client's operator log could not keep (no store): this process only
	drill   DrillView
}

// New returns the console of client c.
func New(c *connector.Client, cfg Config, opts ...Option) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := DefaultConfig()
	if cfg.Refresh == 0 {
		cfg.Refresh = d.Refresh
	}
	if cfg.MaxDrill == 0 {
		cfg.MaxDrill = d.MaxDrill
	}
	if cfg.MaxActions == 0 {
		cfg.MaxActions = d.MaxActions
	}
	if cfg.Secret == nil {
		cfg.Secret = make([]byte, 32)
		if _, err := rand.Read(cfg.Secret); err != nil {
			return nil, fmt.Errorf("console: secret: %w", err)
		}
	}
	h := &Console{c: c, cfg: cfg, log: zap.NewNop(), mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /fragment", h.fragment)
	h.mux.HandleFunc("GET /status.json", h.json)
	h.mux.HandleFunc("POST /fallback/activate", h.act(h.activate))
	h.mux.HandleFunc("POST /fallback/end", h.act(h.end))
	h.mux.HandleFunc("POST /drill", h.act(h.startDrill))
	h.mux.HandleFunc("POST /deadletters/requeue", h.act(h.requeue))
	h.mux.HandleFunc("POST /deadletters/discard", h.act(h.discard))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// operator returns who makes r and whether they may act.
func (h *Console) operator(r *http.Request) (string, bool) {
	if h.cfg.Authorize == nil {
		return "", false
	}
	name, ok := h.cfg.Authorize(r)
	return name, ok && name != ""
}

// csrfToken is the token of operator's forms.
func (h *Console) csrfToken(operator string) string {
	m := hmac.New(sha256.New, h.cfg.Secret)
	m.Write([]byte("ehgate-console-csrf\x00" + operator))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// crossSite reports whether the browser says r comes from another site or origin.
func crossSite(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err != nil || u.Host != r.Host
	}
	return r.Header.Get("Origin") == "null"
}

// errBadRequest is an action the operator filled in wrongly.
type errBadRequest string

func (e errBadRequest) Error() string { return string(e) }

// act wraps an action: authorisation, CSRF, recording, then back to the page.
func (h *Console) act(f func(ctx context.Context, r *http.Request, a *Action) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		operator, ok := h.operator(r)
		if !ok {
			http.Error(w, "forbidden: not an authorised operator", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		token := r.PostForm.Get("csrf")
		if crossSite(r) || token == "" || !hmac.Equal([]byte(token), []byte(h.csrfToken(operator))) {
			http.Error(w, "forbidden: missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		a := Action{At: time.Now().UTC(), Operator: operator}
		err := f(r.Context(), r, &a)
		var bad errBadRequest
		if errors.As(err, &bad) {
			http.Error(w, "bad request: "+bad.Error(), http.StatusBadRequest)
			return
		}
		a.Result = "ok"
		if err != nil {
			a.Result = err.Error()
		}
		a = h.record(r.Context(), a)
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(a)
			return
		}
		// Back to the page, relative to this action's path (http.Redirect would resolve it
		// against the path the vendor's mux may have stripped).
		back := strings.Repeat("../", strings.Count(r.URL.Path, "/")-1)
		if back == "" {
			back = "./"
		}
		w.Header().Set("Location", back)
		w.WriteHeader(http.StatusSeeOther)
	}
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// record logs a and keeps it in the client's operator log; when that fails (no store) it is
// kept in memory, marked Unsaved.
func (h *Console) record(ctx context.Context, a Action) Action {
	h.log.Info("console: operator action", zap.String("operator", a.Operator), zap.String("action", a.Action),
		zap.String("target", a.Target), zap.String("reason", a.Reason), zap.String("result", a.Result))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := h.c.RecordOperatorAction(ctx, connector.OperatorAction{At: a.At, Operator: a.Operator, Action: a.Action,
		Target: a.Target, Reason: a.Reason, Result: a.Result})
	if err == nil {
		return a
	}
	h.log.Error("console: operator action not saved: a restart will not show it", zap.Error(err))
	a.Unsaved = true
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unsaved = append(h.unsaved, a)
	if over := len(h.unsaved) - h.cfg.MaxActions; over > 0 {
		h.unsaved = append(h.unsaved[:0:0], h.unsaved[over:]...)
	}
	return a
}

// service reads and checks the form's service: one the client knows.
func (h *Console) service(r *http.Request) (string, error) {
	s := r.PostForm.Get("service")
	for _, known := range h.c.Status().Services {
		if known.Name == s {
			return s, nil
		}
	}
	return "", errBadRequest("unknown service")
}

func (h *Console) activate(_ context.Context, r *http.Request, a *Action) error {
	s, err := h.service(r)
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return errBadRequest("a reason is required")
	}
	if len(reason) > 200 {
		return errBadRequest("the reason is longer than 200 characters")
	}
	a.Action, a.Target, a.Reason = "activate fallback", s, reason
	return h.c.ActivateFallback(s, reason+" (by "+a.Operator+")")
}

func (h *Console) end(_ context.Context, r *http.Request, a *Action) error {
	s, err := h.service(r)
	if err != nil {
		return err
	}
	a.Action, a.Target = "end fallback", s
	return h.c.EndFallback(s)
}

func (h *Console) startDrill(_ context.Context, r *http.Request, a *Action) error {
	services := r.PostForm["service"]
	known := map[string]bool{}
	for _, s := range h.c.Status().Services {
		known[s.Name] = true
	}
	for _, s := range services {
		if !known[s] {
			return errBadRequest("unknown service")
		}
	}
	secs, err := strconv.Atoi(r.PostForm.Get("seconds"))
	d := time.Duration(secs) * time.Second
	if err != nil || d <= 0 || d > h.cfg.MaxDrill {
		return errBadRequest("the duration must be a number of seconds between 1 and " + strconv.Itoa(int(h.cfg.MaxDrill/time.Second)))
	}
	a.Action, a.Target = "start drill", strings.Join(services, ", ")
	if a.Target == "" {
		a.Target = "default services"
	}
	h.mu.Lock()
	if h.drill.Running {
		h.mu.Unlock()
		return connector.ErrDrillRunning
	}
	h.drill.Running, h.drill.Operator, h.drill.Started, h.drill.Services, h.drill.Error = true, a.Operator, time.Now(), services, ""
	h.mu.Unlock()
	operator, target := a.Operator, a.Target
	go func() {
		rep, err := h.c.Drill(context.Background(), services, d)
		ended := Action{At: time.Now().UTC(), Operator: operator, Action: "drill ended", Target: target, Result: "ok"}
		h.mu.Lock()
		h.drill.Running = false
		h.drill.Error = ""
		if err != nil {
			h.drill.Error = err.Error()
			ended.Result = err.Error()
		}
		if err == nil || !rep.Started.IsZero() {
			h.drill.Last = summarize(rep)
			if err == nil {
				s := h.drill.Last
				ended.Result = fmt.Sprintf("ok: %d calls, %d answered, %d matches, %d mismatches, %d misses", s.Calls, s.Answered, s.Matches, s.Mismatches, s.Misses)
			}
		}
		h.mu.Unlock()
		h.record(context.Background(), ended)
	}()
	return nil
}

func (h *Console) seq(r *http.Request) (uint64, error) {
	n, err := strconv.ParseUint(r.PostForm.Get("seq"), 10, 64)
	if err != nil {
		return 0, errBadRequest("seq must be a dead letter's number")
	}
	return n, nil
}

func (h *Console) requeue(ctx context.Context, r *http.Request, a *Action) error {
	n, err := h.seq(r)
	if err != nil {
		return err
	}
	a.Action, a.Target = "requeue", "dead letter "+strconv.FormatUint(n, 10)
	return h.c.Requeue(ctx, n)
}

func (h *Console) discard(ctx context.Context, r *http.Request, a *Action) error {
	n, err := h.seq(r)
	if err != nil {
		return err
	}
	a.Action, a.Target = "discard", "dead letter "+strconv.FormatUint(n, 10)
	return h.c.Discard(ctx, n)
}

func (h *Console) json(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h.view(r.Context()))
}
