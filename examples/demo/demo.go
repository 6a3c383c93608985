package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// The two sites of the platform, at two different providers.
const (
	primarySite  = "ehealth"
	fallbackSite = "mycarenet"
)

// feedComponents maps the status feed's components to the services they cover.
var feedComponents = map[string][]string{
	"Insurability":         {connector.ServiceInsurability},
	"Generic Insurability": {connector.ServiceGenericInsurability},
	"eHealthBox":           {connector.ServiceEHealthBox},
	"ETK Depot":            {connector.ServiceETK},
}

// phaseDef is one phase of the morning: what happens to the platform when it starts.
type phaseDef struct {
	name  string
	title string
	apply func(p *platformtest.Platform)
	// switchSite is the site whose first live answer ends the phase's switch ("" = the local
	// store's first answer); switchWhat says what the switch is.
	switchSite string
	switchWhat string
	// done reports whether the phase has shown what it is there to show; the phase ends at
	// the first check after its share of the morning at which done holds (or at its cap).
	// doneWhat says what done waits for.
	done     func(w *world, st *phaseStats) bool
	doneWhat string
}

var phases = []phaseDef{
	{
		name: "normal", title: "normal work", apply: func(*platformtest.Platform) {},
		done:     func(_ *world, st *phaseStats) bool { return st.live.Load() > 0 },
		doneWhat: "a live answer",
	},
	{
		// As the platform does: it publishes a newer signed service list in which MyCareNet's
		// BCP endpoint of the insurability services is ACTIVE (INACTIVE in production until
		// then), and the client follows it at its next poll; then the eHealth site dies. The
		// ETK depot and eHealthBox have no BCP endpoint: ETKs come from the store, writes queue.
		name: "failover", title: "the platform moves insurability to " + fallbackSite + " (newer signed list), then " + primarySite + " dies",
		apply: func(p *platformtest.Platform) {
			for _, svc := range movedServices {
				if err := p.MoveService(svc, fallbackSite); err != nil {
					panic(err) // the demo's own list always lists both sites for these
				}
			}
			p.Site(primarySite).Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
		},
		switchSite: fallbackSite, switchWhat: "first live answer from " + fallbackSite,
		done:     func(_ *world, st *phaseStats) bool { return st.switchAt.Load() != 0 },
		doneWhat: "a live answer from " + fallbackSite,
	},
	{
		name: "outage", title: "status feed: Major Outage, every site down",
		apply: func(p *platformtest.Platform) {
			for _, s := range p.Sites() {
				s.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
			}
			for _, comp := range sortedKeys(feedComponents) {
				p.SetComponentStatus(comp, platformtest.StatusMajorOutage)
			}
		},
		switchWhat: "first answer from the local store",
		done: func(_ *world, st *phaseStats) bool {
			return st.storeChecks.Load() > 0 && st.queued.Load() > 0
		},
		doneWhat: "an insurability answer from the local store marked degraded, and a queued write",
	},
	{
		name: "recovery", title: "the platform returns (and publishes the original list again)",
		apply: func(p *platformtest.Platform) {
			for _, s := range p.Sites() {
				s.Clear("")
			}
			for _, svc := range movedServices {
				if err := p.RestoreService(svc); err != nil {
					panic(err)
				}
			}
			for _, comp := range sortedKeys(feedComponents) {
				p.SetComponentStatus(comp, platformtest.StatusOperational)
			}
		},
		switchSite: primarySite, switchWhat: "first live answer from " + primarySite + " again",
		done: func(w *world, st *phaseStats) bool {
			return st.switchAt.Load() != 0 && w.settled()
		},
		doneWhat: "failback to " + primarySite + ", an empty outbox and the store's answers checked again",
	},
}

// movedServices are the services the platform moves to MyCareNet's BCP site during the
// failover phase (those of the production list with a BCP endpoint).
var movedServices = []string{connector.ServiceInsurability, connector.ServiceGenericInsurability}

// etkParties are the parties whose ETKs the counters fetch (to encrypt prescriptions and
// messages for them).
var etkParties = []connector.Identifier{
	{Type: "NIHII-PHARMACY", Value: "28061703"},
	{Type: "NIHII-PHARMACY", Value: "28061802"},
	{Type: "CBE", Value: "0820563481"},
	{Type: "EHP", Value: "1990001916"},
	{Type: "NIHII", Value: "10082533004"},
}

// prescriberNIHII is the eHealthBox the counters' messages go to.
const prescriberNIHII = "10082533004"

// world is one run of the demo.
type world struct {
	o       Options
	out     io.Writer // safe for concurrent use
	tty     bool      // out is a terminal
	started time.Time
	p       *platformtest.Platform
	c       *connector.Client

	phase   atomic.Int32
	stats   []*phaseStats
	bounds  []time.Time // start of each phase (the instant its fault was applied)
	boundMu sync.Mutex

	held    sync.Map // patient SSIN or ETK party → struct{}: the store holds an answer
	writeMu sync.Mutex
	writes  map[string]submitted // idempotency key → what the receipt said
	tried   map[string]struct{}  // every key handed to Submit, receipt or not

	regMu sync.Mutex
	reg   []connector.RegularisationReport

	pendingAtEnd int
}

// submitted is a write a counter handed to the client and what the receipt said.
type submitted struct {
	phase  int
	queued bool
}

// phaseStats are the figures of one phase, counted by the counters as answers come back.
type phaseStats struct {
	calls, live, cached, business, uncached, errors, heldErrors atomic.Int64
	storeChecks                                                 atomic.Int64 // insurability answers from the store, marked degraded
	writes, delivered, queued                                   atomic.Int64
	slowest                                                     atomic.Int64 // ns
	switchAt                                                    atomic.Int64 // unix ns of the switch; 0 = none yet
	reached                                                     atomic.Bool  // the phase's done was seen before its cap
}

func (s *phaseStats) noteLatency(d time.Duration) {
	for {
		cur := s.slowest.Load()
		if int64(d) <= cur || s.slowest.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Run plays the morning and returns its report; live lines go to out.
func Run(ctx context.Context, o Options, out io.Writer) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	w := &world{o: o, out: &syncWriter{w: out}, tty: isTerminal(out), started: time.Now(), writes: map[string]submitted{}, tried: map[string]struct{}{}}
	for range phases {
		w.stats = append(w.stats, &phaseStats{})
	}
	w.bounds = make([]time.Time, len(phases))

	w.linef("starting the platform stand-in: sites %s (provider-a) and %s (provider-b) on 127.0.0.1", primarySite, fallbackSite)
	p, err := platformtest.Start(platformtest.Config{
		Sites:    []platformtest.SiteConfig{{Name: primarySite, Provider: "provider-a"}, {Name: fallbackSite, Provider: "provider-b"}},
		Patients: o.Patients,
		Seed:     o.Seed,
	})
	if err != nil {
		return nil, fmt.Errorf("start platform: %w", err)
	}
	defer p.Close()
	w.p = p
	for i, id := range etkParties {
		if err := p.RegisterETK(id.Type, id.Value, id.ApplicationID, fmt.Sprintf("party %d", i+1)); err != nil {
			return nil, fmt.Errorf("register etk: %w", err)
		}
	}

	dir, err := os.MkdirTemp("", "ehgate-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg, err := w.clientConfig(dir)
	if err != nil {
		return nil, err
	}
	var adm *admin
	var opts []connector.Option
	if o.Console != "" {
		if adm, err = listenAdmin(o.Console); err != nil {
			return nil, fmt.Errorf("-console: %w", err)
		}
		opts = append(opts, connector.WithObserver(adm.metrics))
	}
	c, err := connector.New(cfg, opts...)
	if err != nil {
		if adm != nil {
			adm.close()
		}
		return nil, fmt.Errorf("open client: %w", err)
	}
	w.c = c
	closed := false
	defer func() {
		if adm != nil {
			adm.close()
		}
		if !closed {
			_ = c.Close()
		}
	}()
	if adm != nil {
		consoleURL, metricsURL, err := adm.serve(c)
		if err != nil {
			return nil, fmt.Errorf("-console: %w", err)
		}
		w.linef("operator console: %s", consoleURL)
		w.linef("metrics:          %s", metricsURL)
	}
	events, unsubscribe := c.Subscribe(8192)
	printer := newLive(w, events)
	printerDone := make(chan struct{})
	go func() { defer close(printerDone); printer.loop() }()

	// The counters work until the morning ends.
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var counters sync.WaitGroup
	pop := newPopulation(p.Patients(), o.Seed)
	for i := range o.Counters {
		counters.Add(1)
		go func() {
			defer counters.Done()
			w.counter(workCtx, i, pop)
		}()
	}

	w.linef("%d counters serve %d patients (%d regulars), fetch ETKs of %d parties and send eHealthBox messages",
		o.Counters, len(pop.regulars)+len(pop.walkIns), len(pop.regulars), len(etkParties))
	share := o.Duration / time.Duration(len(phases))
	for i, ph := range phases {
		w.phase.Store(int32(i))
		w.boundMu.Lock()
		w.bounds[i] = time.Now()
		w.boundMu.Unlock()
		ph.apply(p)
		w.linef("── phase %d/%d: %s", i+1, len(phases), ph.title)
		if err := w.play(ctx, i, share); err != nil {
			break
		}
	}
	stopWork()
	counters.Wait()
	end := time.Now()

	w.pendingAtEnd = c.Status().Outbox.Pending
	// End the subscription: the printer still drains what the channel holds.
	unsubscribe()
	<-printerDone
	if adm != nil {
		adm.close()
		adm = nil
	}
	closed = true
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("close client: %w", err)
	}
	rep := w.report(end)
	if ctx.Err() != nil {
		rep.Problems = append(rep.Problems, "interrupted: "+ctx.Err().Error())
	}
	return rep, nil
}

// clientConfig writes the pharmacy's keystore into dir and returns the client's Config.
func (w *world) clientConfig(dir string) (connector.Config, error) {
	id, err := w.p.NewIdentity(platformtest.Pharmacy, "Apotheek De Linde")
	if err != nil {
		return connector.Config{}, fmt.Errorf("register pharmacy: %w", err)
	}
	password := rand.Text()
	p12, err := id.PKCS12(password)
	if err != nil {
		return connector.Config{}, err
	}
	keystore := filepath.Join(dir, "pharmacy.p12")
	if err := os.WriteFile(keystore, p12, 0o600); err != nil {
		return connector.Config{}, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return connector.Config{}, err
	}
	w.linef("registered %q (NIHII %s): keystore %s, store encrypted with a fresh key", id.Name, id.NIHII, keystore)

	labels := map[string]bcp.Label{}
	for _, s := range w.p.Sites() {
		for _, svc := range s.Services() {
			if u := w.p.URL(svc, s.Name()); u != "" {
				labels[u] = bcp.Label{Site: s.Name(), Provider: s.Provider()}
			}
		}
	}
	return connector.Config{
		ServiceListURL:   w.p.ServiceListBaseURL(),
		ServiceListRoots: w.p.ServiceListRoots(),
		ServiceListPoll:  time.Second,
		TLSRoots:         w.p.CACertPool(),
		STSRoots:         w.p.STSRoots(),
		Credentials:      connector.Credentials{PKCS12File: keystore, Password: password},
		Identity:         connector.Identity{Preset: connector.PresetPharmacy, NIHII: id.NIHII, SSIN: id.SSIN},
		Package:          connector.PackageLicense{Name: "ehgate-demo", Username: "demo", Password: "demo"},
		IsTest:           true,
		CacheDir:         filepath.Join(dir, "store"),
		CacheKeys:        [][]byte{key},
		Timeouts:         connector.Timeouts{Connect: time.Second, Attempt: 2 * time.Second},
		StatusFeedURL:    w.p.StatusFeedURL(),
		StatusComponents: feedComponents,
		// A morning squeezed into seconds: the feed is read every 250 ms instead of 60 s,
		// and breakers probe again after 0.5–2 s instead of 5 s–2 min.
		StatusPoll: 250 * time.Millisecond,
		BCP: bcp.Config{
			Breaker: bcp.BreakerConfig{OpenTimeout: 500 * time.Millisecond, MaxOpenTimeout: 2 * time.Second},
			Router: bcp.RouterConfig{
				HoldDown: time.Second, HoldDownProbeInterval: 250 * time.Millisecond,
				PanicProbeInterval: 250 * time.Millisecond, Labels: labels,
			},
		},
	}, nil
}

// play lets phase i run for its share of the morning, then on until the phase has shown what
// it is there to show (its done), for at most o.Settle more. The phases' ends are thus driven
// by what happened, not by how much a loaded machine got done in a fixed time.
func (w *world) play(ctx context.Context, i int, share time.Duration) error {
	if err := sleepCtx(ctx, share); err != nil {
		return err
	}
	ph, st := phases[i], w.stats[i]
	deadline := time.Now().Add(w.o.Settle)
	for !ph.done(w, st) {
		if !time.Now().Before(deadline) {
			w.linef("phase %d/%d: still no %s after %s more; moving on", i+1, len(phases), ph.doneWhat, w.o.Settle)
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	st.reached.Store(true)
	return nil
}

// settled reports whether the outbox is empty, insurability and eHealthBox are back to
// normal and answers the store served for insurability were checked again.
func (w *world) settled() bool {
	st := w.c.Status()
	if st.Outbox.Pending > 0 || st.Outbox.Replaying {
		return false
	}
	for _, s := range st.Services {
		switch s.Name {
		case connector.ServiceInsurability, connector.ServiceEHealthBox:
			if s.Mode != connector.ModeNormal {
				return false
			}
		}
	}
	w.regMu.Lock()
	defer w.regMu.Unlock()
	for _, r := range w.reg {
		if r.Service == connector.ServiceInsurability && r.Checked > 0 {
			return true
		}
	}
	return false
}

// population is who comes to the counter: regulars most of the time, walk-ins sometimes.
type population struct {
	regulars, walkIns []platformtest.Patient
}

func newPopulation(all []platformtest.Patient, seed int64) *population {
	pts := append([]platformtest.Patient(nil), all...)
	r := mrand.New(mrand.NewPCG(uint64(seed), 0xde30))
	r.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
	n := len(pts) / 5
	return &population{regulars: pts[:n], walkIns: pts[n:]}
}

func (p *population) next(r *mrand.Rand) platformtest.Patient {
	if r.Float64() < 0.9 {
		return p.regulars[r.IntN(len(p.regulars))]
	}
	return p.walkIns[r.IntN(len(p.walkIns))]
}

// counter is one pharmacist serving customers: an insurability check per customer, an
// eHealthBox message (a dispensation notice to the prescriber) for some of them, an ETK now
// and then.
func (w *world) counter(ctx context.Context, n int, pop *population) {
	r := mrand.New(mrand.NewPCG(uint64(w.o.Seed), uint64(n)+1))
	writes := 0
	for ctx.Err() == nil {
		if r.Float64() < 0.08 {
			w.fetchETK(ctx, etkParties[r.IntN(len(etkParties))])
		} else {
			pt := pop.next(r)
			if w.check(ctx, pt) && pt.Insured && r.Float64() < 0.25 {
				writes++
				w.submit(ctx, pt, fmt.Sprintf("DEMOC%02dW%05d", n+1, writes)) // a PublicationId: 13 letters or digits
			}
		}
		think := time.Duration(10+r.IntN(30)) * time.Millisecond
		if sleepCtx(ctx, think) != nil {
			return
		}
	}
}

// check asks whether a patient is insured and counts the answer; it reports whether the
// counter got an answer.
func (w *world) check(ctx context.Context, pt platformtest.Patient) bool {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	t0 := time.Now()
	res, err := w.c.Insurability(callCtx, connector.InsurabilityRequest{SSIN: pt.SSIN})
	ph := int(w.phase.Load()) // a call counts in the phase in which its answer came
	st := w.stats[ph]
	w.took(st, "insurability", t0, res.Source, res.Endpoint, err)
	st.calls.Add(1)
	var be *connector.BusinessError
	switch {
	case err == nil:
		w.answered(st, ph, pt.SSIN, res.Source, res.Degraded, res.Endpoint)
		if res.Source != connector.SourceLive && res.Degraded {
			st.storeChecks.Add(1)
		}
		return true
	case errors.As(err, &be):
		st.live.Add(1) // the platform answered: unknown patient
		st.business.Add(1)
		return false
	default:
		w.failed(st, pt.SSIN, err)
		return false
	}
}

// fetchETK fetches a party's ETK and counts the answer.
func (w *world) fetchETK(ctx context.Context, id connector.Identifier) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	t0 := time.Now()
	res, err := w.c.ETK(callCtx, id)
	ph := int(w.phase.Load())
	st := w.stats[ph]
	w.took(st, "etk", t0, res.Source, res.Endpoint, err)
	st.calls.Add(1)
	key := "etk:" + id.Type + "=" + id.Value
	if err != nil {
		w.failed(st, key, err)
		return
	}
	w.answered(st, ph, key, res.Source, res.Degraded, res.Endpoint)
}

// slowCall is the latency from which -v shows a call.
const slowCall = time.Second

// took notes a call's latency; -v shows the slow ones.
func (w *world) took(st *phaseStats, what string, t0 time.Time, src connector.Source, endpoint string, err error) {
	d := time.Since(t0)
	st.noteLatency(d)
	if !w.o.Verbose || d < slowCall {
		return
	}
	switch {
	case err != nil:
		w.linef("slow      %-26s %4d ms, error: %v", what, d.Milliseconds(), err)
	case src == connector.SourceLive:
		w.linef("slow      %-26s %4d ms, live from %s", what, d.Milliseconds(), w.siteOf(endpoint))
	default:
		w.linef("slow      %-26s %4d ms, from the local store", what, d.Milliseconds())
	}
}

// answered counts an answer and notes the phase's switch when this answer is its first sign.
func (w *world) answered(st *phaseStats, ph int, key string, src connector.Source, degraded bool, endpoint string) {
	w.held.Store(key, struct{}{})
	now := time.Now()
	if src == connector.SourceLive {
		st.live.Add(1)
		if site := phases[ph].switchSite; site != "" && strings.HasPrefix(endpoint, w.p.Site(site).URL()) {
			st.switchAt.CompareAndSwap(0, now.UnixNano())
		}
		return
	}
	st.cached.Add(1)
	if degraded && phases[ph].switchWhat != "" && phases[ph].switchSite == "" {
		st.switchAt.CompareAndSwap(0, now.UnixNano())
	}
}

// failed counts an error a counter saw. A patient (or party) the store never held and the
// platform could not answer is not an error of ehgate: it is counted as uncached.
func (w *world) failed(st *phaseStats, key string, err error) {
	_, held := w.held.Load(key)
	if errors.Is(err, connector.ErrNotCached) && !held {
		st.uncached.Add(1)
		return
	}
	st.errors.Add(1)
	if held {
		st.heldErrors.Add(1)
	}
	if w.o.Verbose {
		w.linef("counter error: %v", err) // errors name the service, never the patient
	}
}

// submit sends an eHealthBox message through the client and records the receipt. The content
// stands for a document the pharmacy software sealed for the recipient (ehgate does not seal).
func (w *world) submit(ctx context.Context, pt platformtest.Patient, key string) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	w.writeMu.Lock()
	w.tried[key] = struct{}{}
	w.writeMu.Unlock()
	rc, err := w.c.SendMessage(callCtx, connector.EHealthBoxMessage{
		PublicationID: key, Partition: pt.SSIN, Title: "Dispensation notice",
		Recipients: []connector.EHealthBoxAddress{{ID: prescriberNIHII, Type: "NIHII", Quality: "DOCTOR"}},
		Content:    []byte("sealed dispensation notice " + key), Encrypted: true,
	})
	ph := int(w.phase.Load())
	st := w.stats[ph]
	st.writes.Add(1)
	if err != nil {
		st.errors.Add(1)
		if w.o.Verbose {
			w.linef("counter error: %v", err)
		}
		return
	}
	w.writeMu.Lock()
	w.writes[rc.Key] = submitted{phase: ph, queued: rc.Queued}
	w.writeMu.Unlock()
	if rc.Queued {
		st.queued.Add(1)
		if phases[ph].switchSite == "" && phases[ph].switchWhat != "" {
			st.switchAt.CompareAndSwap(0, time.Now().UnixNano())
		}
	} else {
		st.delivered.Add(1)
	}
}

// linef prints one live line, stamped with the time since the start.
func (w *world) linef(format string, args ...any) {
	fmt.Fprintf(w.out, "%6.2fs  %s\n", sinceStart(w), fmt.Sprintf(format, args...))
}

func sinceStart(w *world) float64 { return time.Since(w.started).Seconds() }

// siteOf names the site an endpoint URL belongs to.
func (w *world) siteOf(url string) string {
	for _, s := range w.p.Sites() {
		if strings.HasPrefix(url, s.URL()) {
			return s.Name() + " (" + s.Provider() + ")"
		}
	}
	return url
}

// syncWriter serialises the writes of the counters, the event printer and the main loop.
// A progress bar redraws its line with a leading '\r' and no newline; any other write that
// follows it starts on a new line.
type syncWriter struct {
	mu   sync.Mutex
	w    io.Writer
	open bool // the last write did not end its line
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open && len(p) > 0 && p[0] != '\r' {
		if _, err := s.w.Write([]byte("\n")); err != nil {
			return 0, err
		}
	}
	if len(p) > 0 {
		s.open = p[len(p)-1] != '\n'
	}
	return s.w.Write(p)
}

// isTerminal reports whether out is a character device (a progress bar may redraw itself).
func isTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
