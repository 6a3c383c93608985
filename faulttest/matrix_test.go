package faulttest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

var (
	update = flag.Bool("update", false, "rewrite the tables in ../docs/faults.md from this run (the full matrix, the soak)")
	matrix = flag.Bool("matrix", false, "run the full fault matrix (TestMatrix, 72 cells); the default run is TestFaults")
)

// Behaviours a cell may show; the matrix says which one each cell must show.
const (
	// The fault does not concern this service: answered live, no error.
	bLive = "not concerned: answered live, no error"
	// Failover: every call answered live by a fallback endpoint, no caller error.
	bFailover = "failover, no caller error"
	// ETK: the stored ETK is served (Source=cache; a stored ETK is always served from the
	// store and refreshed in the background, docs/wire/etk.md); a party never fetched gets a
	// *connector.FallbackError wrapping *bcp.UnavailableError naming the depot's endpoint.
	bETKStore = "stored ETK served (Source=cache); typed error naming service and endpoint for a party never fetched"
	// Local store: the patient/party the store holds is answered Source=cache, Degraded; one it
	// does not hold gets a *connector.FallbackError wrapping *bcp.UnavailableError that names
	// the service and every endpoint tried.
	bCache = "cached answer (Source=cache, Degraded); typed error naming service and endpoints for the rest"
	// Writes: Receipt.Queued, then after the fault is cleared delivered exactly once.
	bQueued = "queued, delivered exactly once after recovery"
	// STS: the client that holds a token keeps using it (no new token, calls live); a client
	// without one cannot get one: typed error (ErrNotCached + the STS's failure), no answer
	// invented.
	bTokenKept = "cached token kept, calls live; a client without a token gets a typed error"
	// A SOAP fault whose code is not a switching code is the platform's refusal (issue 17): no
	// other endpoint is tried, the caller gets a *connector.BusinessError (ErrBusiness) with
	// the *soap.Fault inside, never a stored answer (a stored ETK still is, before the depot
	// is asked), nothing is queued, the mode stays.
	bNoSwitch = "no switch: the refusal reaches the caller as *connector.BusinessError (the *soap.Fault inside), no stored answer, no other endpoint tried"
	// The same for a write when a retry may deliver it: no other endpoint tried; the write is
	// queued and delivered exactly once after the fault is cleared.
	bNoSwitchQueued = "no switch; queued, delivered exactly once after recovery"
)

// matrixFault is one row group: a fault kind with its parameters.
type matrixFault struct {
	name  string
	fault platformtest.Fault
}

func matrixFaults() []matrixFault {
	return []matrixFault{
		{"refuse", platformtest.Fault{Kind: platformtest.FaultRefuse}},
		{"hang", platformtest.Fault{Kind: platformtest.FaultHang}},
		{"delay 30s", platformtest.Fault{Kind: platformtest.FaultDelay, Delay: 30 * time.Second}},
		{"drip 64 B/s", platformtest.Fault{Kind: platformtest.FaultDrip, BytesPerSecond: 64}},
		{"http 503", platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503}},
		{"soap SOA-02001", platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-02001"}},
		{"soap SOA-03001 (not a switch)", platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-03001"}},
		{"malformed", platformtest.Fault{Kind: platformtest.FaultMalformed}},
		{"huge 64 MiB", platformtest.Fault{Kind: platformtest.FaultHuge, Size: 64 << 20}},
		{"bad sts signature", platformtest.Fault{Kind: platformtest.FaultBadSTSSignature}},
		{"expired token", platformtest.Fault{Kind: platformtest.FaultExpiredToken}},
		{"clock skew +1h", platformtest.Fault{Kind: platformtest.FaultClockSkew, Skew: time.Hour}},
	}
}

var matrixServices = []string{platformtest.ServiceSTS, platformtest.ServiceInsurability, platformtest.ServiceETK, platformtest.ServiceEHealthBox}

const (
	scopePrimary = "primary site"
	scopeAll     = "all sites"
)

// expected is the behaviour a vendor may rely on for fault f on service at scope.
func expected(f platformtest.Fault, service, scope string) string {
	k := f.Kind
	switch service {
	case platformtest.ServiceSTS:
		// The STS is listed at the first site only (the platform fails it over behind one
		// URL), so both scopes are the same outage for the client.
		return bTokenKept
	case platformtest.ServiceETK:
		// Listed at the first site only: no failover target, the store answers.
		switch k {
		case platformtest.FaultBadSTSSignature, platformtest.FaultExpiredToken, platformtest.FaultClockSkew:
			return bLive // the depot is not authenticated (docs/wire/etk.md): tokens and clocks do not matter
		case platformtest.FaultSOAP:
			if f.Code == "SOA-03001" {
				return bNoSwitch
			}
		}
		return bETKStore
	}
	switch k {
	case platformtest.FaultBadSTSSignature:
		return bLive // an STS fault: business services are not concerned
	case platformtest.FaultSOAP:
		if f.Code == "SOA-03001" {
			return bNoSwitch
		}
	}
	if service == platformtest.ServiceEHealthBox {
		// Listed at the first site only, as in production (no BCP endpoint): nothing to
		// switch to; the write waits in the outbox.
		if scope == scopePrimary {
			return bNoSwitchQueued
		}
		return bQueued
	}
	if scope == scopePrimary {
		return bFailover
	}
	return bCache
}

// cellResult is one line of the table.
type cellResult struct {
	fault, service, scope string
	want, got             string
	detail                string
	took                  time.Duration
}

// cell runs one (fault, service, scope) case on w and returns what it observed. Assertions
// that are not the behaviour itself (exactly-once delivery, no token requested) fail the
// test directly.
func cell(t *testing.T, w *world, mf matrixFault, service, scope string) (got, detail string) {
	primary := w.p.Sites()[0]
	sites := w.p.Sites()
	if scope == scopePrimary {
		sites = sites[:1]
	}
	// A slowness fault (hang, delay, drip) is ended by the test's transport cutting the
	// faulted endpoints' requests after cutAfter; every other attempt has the generous
	// timeout, so a healthy endpoint answers whatever the machine's load.
	cuts := &cutSet{}
	inject := func() {
		if slowness(mf.fault) {
			var urls []string
			for _, s := range sites {
				urls = append(urls, w.p.URL(service, s.Name()))
			}
			cuts.set(urls...)
		}
		for _, s := range sites {
			s.Inject(service, mf.fault)
		}
	}
	clear := func() {
		cuts.clear()
		w.clearAll()
	}
	defer clear()
	setup := func() *clientSetup { return &clientSetup{faulted: []string{service}, cuts: cuts} }
	pts := w.insured(0, 3)
	a, b := pts[0], pts[1]
	primaryURL := func(svc string) string { return w.p.URL(svc, primary.Name()) }

	switch service {
	case platformtest.ServiceInsurability:
		c := w.client(t, setup())
		warm(t, func() error { _, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN}); return err })
		otherBefore := w.p.Count(w.p.Sites()[1].Name(), service, platformtest.OutcomeOK)
		inject()
		ra, errA := c.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN})
		rb, errB := c.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
		got, detail = classifyRead(errA, errB, ra.Source, rb.Source, ra.Degraded, ra.Endpoint, rb.Endpoint, primaryURL(service), service, w, expected(mf.fault, service, scope) == bLive)
		if got == bNoSwitch && w.p.Count(w.p.Sites()[1].Name(), service, platformtest.OutcomeOK) != otherBefore {
			got = "switched on a non-switching fault"
		}
		for _, pt := range []platformtest.Patient{a, b} {
			if strings.Contains(detail, pt.SSIN) {
				t.Errorf("an error names a patient: %s", detail)
			}
		}
		clear()
		require.True(t, waitUntil(30*time.Second, func() bool {
			r, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
			return err == nil && r.Source == connector.SourceLive
		}), "insurability answers live again after the fault is cleared")

	case platformtest.ServiceETK:
		cs := setup()
		cs.mutate = func(cfg *connector.Config) {
			cfg.Policies.ETK.RefreshAfter = time.Nanosecond // every stored ETK is refreshed: the depot is asked each time
		}
		c := w.client(t, cs)
		x := connector.Identifier{Type: "NIHII-PHARMACY", Value: w.id.NIHII}
		y := connector.Identifier{Type: "NIHII-PHARMACY", Value: w.other.NIHII}
		warm(t, func() error { _, err := c.ETK(bg, x); return err })
		inject()
		rx, errX := c.ETK(bg, x)
		ry, errY := c.ETK(bg, y)
		got, detail = classifyETK(errX, errY, rx, ry, primaryURL(service), w)
		clear()
		require.True(t, waitUntil(30*time.Second, func() bool {
			_, err := c.ETK(bg, y)
			return err == nil // y was not stored while the depot failed: an answer is live
		}), "the depot answers again after the fault is cleared")

	case platformtest.ServiceEHealthBox:
		c := w.client(t, setup())
		var r0 connector.Receipt
		warm(t, func() error {
			var err error
			r0, err = c.SendMessage(bg, message(r0.Key, a.SSIN, []byte("warm-up claim")))
			if err == nil && !r0.Delivered {
				err = fmt.Errorf("warm-up write queued")
			}
			return err
		})
		otherBefore := w.p.Count(w.p.Sites()[1].Name(), service, platformtest.OutcomeOK)
		otherAll := w.countAll(w.p.Sites()[1].Name(), service)
		inject()
		r, err := c.SendMessage(bg, message("", b.SSIN, []byte("claim during the fault")))
		switch {
		case err != nil:
			if refused(err) && !r.Queued && w.p.Count(w.p.Sites()[1].Name(), service, platformtest.OutcomeOK) == otherBefore {
				got = bNoSwitch
			} else {
				got = "error"
			}
			detail = err.Error()
		case r.Delivered && r.Endpoint != "" && !strings.HasPrefix(r.Endpoint, primaryURL(service)):
			got, detail = bFailover, "delivered by "+siteOf(w, r.Endpoint)
		case r.Delivered:
			got, detail = bLive, "delivered by "+siteOf(w, r.Endpoint)
		case r.Queued:
			switched := w.countAll(w.p.Sites()[1].Name(), service) != otherAll
			clear()
			ok := waitUntil(30*time.Second, func() bool {
				return w.writeCounts()[r.Key] >= 1 && c.Status().Outbox.Pending == 0
			})
			n := w.writeCounts()[r.Key]
			switch {
			case ok && n == 1 && !switched && scope == scopePrimary:
				got = bNoSwitchQueued
			case ok && n == 1 && scope == scopeAll && isNonSwitching(mf.fault):
				got = bNoSwitchQueued // every site has the fault: "switched" cannot be told apart
			case ok && n == 1:
				got = bQueued
			default:
				got = fmt.Sprintf("queued, delivered %d times", n)
			}
			detail = fmt.Sprintf("receipt queued; platform accepted the key %d time(s)", n)
		default:
			got = fmt.Sprintf("receipt neither delivered nor queued: %+v", r)
		}
		counts := w.writeCounts()
		require.Equal(t, 1, counts[r0.Key], "the warm-up write is accepted once")
		if r.Key != "" {
			require.LessOrEqual(t, counts[r.Key], 1, "never delivered twice")
		}

	case platformtest.ServiceSTS:
		c := w.client(t, setup())
		warm(t, func() error { _, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN}); return err })
		tokens := w.p.TokensIssued()
		inject()
		r, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
		kept := err == nil && r.Source == connector.SourceLive && w.p.TokensIssued() == tokens
		fresh := w.client(t, setup())
		_, ferr := fresh.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN})
		switch {
		case !kept:
			got = fmt.Sprintf("token not kept (err=%v, source=%v, tokens %d→%d)", err, r.Source, tokens, w.p.TokensIssued())
		case ferr == nil:
			got = bLive
			detail = "a client without a token got one"
		case errors.Is(ferr, connector.ErrNotCached) && strings.Contains(ferr.Error(), "insurability:v2"):
			got = bTokenKept
			detail = "new client: " + ferr.Error()
		default:
			got = "untyped error"
			detail = ferr.Error()
		}
		clear()
		require.True(t, waitUntil(30*time.Second, func() bool {
			r, err := fresh.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
			return err == nil && r.Source == connector.SourceLive
		}), "a new client gets a token once the STS is back")
	}
	if n := cuts.n.Load(); n > 0 {
		detail = fmt.Sprintf("[%d request(s) to the faulted endpoint(s) cut after %s] ", n, cutAfter) + detail
	}
	return got, detail
}

// classifyRead names the behaviour of two reads: a (held by the store) and b (not held).
func classifyRead(errA, errB error, srcA, srcB connector.Source, degradedA bool, epA, epB, primaryURL, service string, w *world, wantLive bool) (string, string) {
	switch {
	case errA == nil && errB == nil && srcA == connector.SourceLive && srcB == connector.SourceLive:
		if strings.HasPrefix(epA, primaryURL) && strings.HasPrefix(epB, primaryURL) {
			return bLive, "answered by " + siteOf(w, epA)
		}
		if wantLive {
			// An STS fault on a business service: on a loaded machine the primary may be slow
			// enough to fail over; what matters is a live answer without error.
			return bLive, "answered by " + siteOf(w, epA) + ", " + siteOf(w, epB)
		}
		return bFailover, "answered by " + siteOf(w, epA) + ", " + siteOf(w, epB)
	case errA != nil && errB != nil && refused(errA) && refused(errB):
		return bNoSwitch, "both refused, no stored answer: " + errB.Error()
	case errA == nil && srcA == connector.SourceCache && degradedA && errB != nil:
		var fe *connector.FallbackError
		if !errors.As(errB, &fe) || !errors.Is(errB, connector.ErrNotCached) {
			return "untyped error", errB.Error()
		}
		var urls []string
		for _, s := range w.p.Sites() {
			if u := w.p.URL(service, s.Name()); u != "" && w.p.Listed(service, s.Name()) {
				urls = append(urls, u)
			}
		}
		if err := unavailableNames(errB, service, urls...); err != nil {
			return "error without endpoints", err.Error()
		}
		return bCache, errB.Error()
	case errA != nil:
		return "error for a stored answer", errA.Error()
	default:
		return "unexpected", fmt.Sprintf("a: source=%v degraded=%v; b: source=%v err=%v", srcA, degradedA, srcB, errB)
	}
}

// refused reports whether err is the platform's refusal by a non-switching SOAP fault.
func refused(err error) bool {
	var f *soap.Fault
	return errors.Is(err, connector.ErrBusiness) && errors.As(err, &f) && !errors.Is(err, bcp.ErrUnavailable)
}

// classifyETK names the behaviour of two ETK reads: x (stored) and y (never fetched).
func classifyETK(errX, errY error, rx, ry connector.ETKResult, primaryURL string, w *world) (string, string) {
	switch {
	case errX != nil:
		return "error for a stored ETK", errX.Error()
	case rx.Source != connector.SourceCache || len(rx.ETKs) == 0:
		return "stored ETK not served from the store", fmt.Sprintf("source=%v etks=%d", rx.Source, len(rx.ETKs))
	case errY == nil && ry.Source == connector.SourceLive:
		return bLive, "stored ETK from the store; new party answered by " + siteOf(w, ry.Endpoint)
	case errY == nil:
		return "unexpected", fmt.Sprintf("new party: source=%v endpoint=%s", ry.Source, ry.Endpoint)
	}
	if refused(errY) {
		return bNoSwitch, "stored ETK from the store; new party: " + errY.Error()
	}
	if !errors.Is(errY, connector.ErrNotCached) {
		return "untyped error", errY.Error()
	}
	if err := unavailableNames(errY, platformtest.ServiceETK, primaryURL); err != nil {
		return "error without endpoints", err.Error()
	}
	return bETKStore, "stored ETK from the store (Degraded=" + fmt.Sprint(rx.Degraded) + "); new party: " + errY.Error()
}

// warm runs a warm-up call until it succeeds: the warm-up is not under test, and on a loaded
// machine a first TLS handshake or token may take a while.
func warm(t *testing.T, call func() error) {
	t.Helper()
	var err error
	require.True(t, waitUntil(30*time.Second, func() bool { err = call(); return err == nil }), "warm-up: %v", err)
}

// slowness reports whether f is a fault that never ends an attempt by itself (the test's
// transport cuts it, see cutAfter).
func slowness(f platformtest.Fault) bool {
	switch f.Kind {
	case platformtest.FaultHang, platformtest.FaultDelay, platformtest.FaultDrip:
		return true
	}
	return false
}

// onePlace reports whether the service list names service at the first site only (the
// platform fails the STS and the ETK depot over behind one URL).
func onePlace(service string) bool {
	return service == platformtest.ServiceSTS || service == platformtest.ServiceETK
}

func isNonSwitching(f platformtest.Fault) bool {
	return f.Kind == platformtest.FaultSOAP && f.Code == "SOA-03001"
}

func siteOf(w *world, url string) string {
	for _, s := range w.p.Sites() {
		if strings.HasPrefix(url, s.URL()) {
			return s.Name()
		}
	}
	return url
}

// cellSpec is one cell: a fault on a service at a scope.
type cellSpec struct {
	mf      matrixFault
	service string
	scope   string
}

// fullMatrix is every cell: each fault kind × service × scope (the "all sites" cell of a
// service listed at one site only is the "primary site" cell and is not run twice), one
// group per fault kind.
func fullMatrix() [][]cellSpec {
	var groups [][]cellSpec
	for _, mf := range matrixFaults() {
		var g []cellSpec
		for _, svc := range matrixServices {
			for _, scope := range []string{scopePrimary, scopeAll} {
				if scope == scopeAll && onePlace(svc) {
					continue
				}
				g = append(g, cellSpec{mf, svc, scope})
			}
		}
		groups = append(groups, g)
	}
	return groups
}

// defaultCells is one cell per distinct behaviour, in three groups of about equal cost.
func defaultCells() [][]cellSpec {
	f := map[string]matrixFault{}
	for _, mf := range matrixFaults() {
		f[mf.name] = mf
	}
	ins, wr, sts, etk := platformtest.ServiceInsurability, platformtest.ServiceEHealthBox, platformtest.ServiceSTS, platformtest.ServiceETK
	return [][]cellSpec{
		{
			{f["refuse"], ins, scopePrimary}, // failover
			{f["refuse"], ins, scopeAll},     // stored answer, Degraded; typed error naming the endpoints
			{f["refuse"], wr, scopeAll},      // queued, delivered exactly once after recovery
			{f["hang"], ins, scopePrimary},   // slowness: failover
		},
		{
			{f["soap SOA-02001"], ins, scopePrimary},                // switching fault code: failover
			{f["soap SOA-03001 (not a switch)"], ins, scopePrimary}, // non-switching code: no switch
			{f["malformed"], ins, scopePrimary},                     // garbled answer: failover
			{f["refuse"], sts, scopePrimary},                        // cached token kept
		},
		{
			{f["huge 64 MiB"], ins, scopePrimary}, // size limit, then failover
			{f["drip 64 B/s"], ins, scopePrimary}, // slowness: failover
			{f["refuse"], etk, scopePrimary},      // stored ETK served
		},
	}
}

// runCells runs each group of cells against its own platform (the groups at once, the cells
// of a group one after the other, each with a new client) and checks each cell's behaviour.
// A cell runs once: a cell that does not show its behaviour fails the test.
func runCells(t *testing.T, groups [][]cellSpec, seed int64) []cellResult {
	var mu sync.Mutex
	var results []cellResult
	// The groups run at once from goroutines (t.Run may be called concurrently) rather than
	// as parallel subtests: -parallel (GOMAXPROCS) would serialise them.
	var wg sync.WaitGroup
	for gi, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A group of one fault kind is named after it (TestMatrix/refuse/etkdepot:v1/...).
			name, oneFault := fmt.Sprintf("group %d", gi+1), true
			for _, cs := range g {
				oneFault = oneFault && cs.mf.name == g[0].mf.name
			}
			if oneFault {
				name = g[0].mf.name
			}
			t.Run(name, func(t *testing.T) {
				w := newWorld(t, seed+int64(gi), 30)
				for _, cs := range g {
					sub := cs.mf.name + "/" + cs.service + "/" + cs.scope
					if oneFault {
						sub = cs.service + "/" + cs.scope
					}
					t.Run(sub, func(t *testing.T) {
						t0 := time.Now()
						got, detail := cell(t, w, cs.mf, cs.service, cs.scope)
						want := expected(cs.mf.fault, cs.service, cs.scope)
						mu.Lock()
						results = append(results, cellResult{fault: cs.mf.name, service: cs.service, scope: cs.scope, want: want, got: got, detail: detail, took: time.Since(t0)})
						mu.Unlock()
						require.Equal(t, want, got, "%s on %s at %s: %s", cs.mf.name, cs.service, cs.scope, detail)
					})
				}
			})
		}()
	}
	wg.Wait()
	return results
}

// TestFaults is the fault matrix's default (CI) run: one cell per distinct behaviour
// (defaultCells), plus the status feed's Major Outage (TestFaults_FeedMajorOutage). The
// whole matrix runs with -matrix.
func TestFaults(t *testing.T) {
	t.Parallel() // own platforms; runs after TestSoak, whose goroutine check it would disturb
	start := time.Now()
	results := runCells(t, defaultCells(), 200)
	raceFlag := ""
	if raceEnabled {
		raceFlag = "-race "
	}
	t.Log("\n" + matrixTable(results, time.Since(start), "go test "+raceFlag+"./faulttest -run TestFaults -v"))
}

// TestMatrix runs every fault kind × service × scope (72 cells) with -matrix or -update and
// checks each cell's behaviour; with -update it rewrites the table in docs/faults.md.
func TestMatrix(t *testing.T) {
	if !*matrix && !*update {
		t.Skip("the full matrix runs with -matrix (or -update); the default run is TestFaults")
	}
	t.Parallel()
	start := time.Now()
	results := runCells(t, fullMatrix(), 100)
	raceFlag := ""
	if raceEnabled {
		raceFlag = "-race "
	}
	table := matrixTable(results, time.Since(start), "go test "+raceFlag+"./faulttest -run TestMatrix -update")
	t.Log("\n" + table)
	if *update && !t.Failed() {
		require.NoError(t, replaceSection(filepath.FromSlash("../docs/faults.md"), "matrix", table))
	}
}

func matrixTable(results []cellResult, total time.Duration, command string) string {
	order := map[string]int{}
	for i, mf := range matrixFaults() {
		order[mf.name] = i
	}
	svcOrder := map[string]int{}
	for i, s := range matrixServices {
		svcOrder[s] = i
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if order[a.fault] != order[b.fault] {
			return order[a.fault] < order[b.fault]
		}
		if svcOrder[a.service] != svcOrder[b.service] {
			return svcOrder[a.service] < svcOrder[b.service]
		}
		return a.scope > b.scope
	})
	var sb strings.Builder
	pass := 0
	for _, r := range results {
		if r.got == r.want {
			pass++
		}
	}
	fmt.Fprintf(&sb, "The STS and the ETK depot are listed at the first site only (the platform fails them over behind one URL), so their \"all sites\" cell is the \"primary site\" cell and is not run twice.\n\n")
	fmt.Fprintf(&sb, "%d cells, %d as expected, whole run %.1f s (generated by `%s` on %s, GOMAXPROCS %d, shared machine; times are what the cells took on that machine, not bounds).\n\n",
		len(results), pass, total.Seconds(), command, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOMAXPROCS(0))
	sb.WriteString("| fault | service | scope | expected | observed | ok | time | detail |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ok := "yes"
		if r.got != r.want {
			ok = "**NO**"
		}
		d := strings.ReplaceAll(r.detail, "|", "\\|")
		d = strings.ReplaceAll(d, "\n", " ")
		if len(d) > 220 {
			d = d[:220] + "…"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %.2f s | %s |\n", r.fault, r.service, r.scope, r.want, r.got, ok, r.took.Seconds(), d)
	}
	return sb.String()
}

// replaceSection replaces the text between <!-- begin NAME --> and <!-- end NAME --> in the
// file at path (appending the section when absent).
func replaceSection(path, name, content string) error {
	begin, end := "<!-- begin "+name+" -->", "<!-- end "+name+" -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	section := begin + "\n" + content + end
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(end):]
	} else {
		s += "\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// feedPoll is the status feed's poll interval in TestFaults_FeedMajorOutage: a reading counts
// for three polls (6 s), far longer than a poll takes on a loaded machine.
const feedPoll = 2 * time.Second

// TestFaults_FeedMajorOutage: the status feed says Major Outage for insurability while the
// platform itself is up. The client goes into fallback and answers without any request to
// the platform: a patient the store holds from the store (Source=cache, Degraded), another
// with a typed error (ErrNotCached). When the feed says Operational again, calls are live
// again.
func TestFaults_FeedMajorOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 300, 30)
	c := w.client(t, &clientSetup{mutate: func(cfg *connector.Config) {
		cfg.StatusFeedURL = w.p.StatusFeedURL()
		cfg.StatusPoll = feedPoll
		cfg.StatusComponents = map[string][]string{"Insurability": {connector.ServiceInsurability}}
	}})
	pts := w.insured(0, 2)
	a, b := pts[0], pts[1]
	warm(t, func() error { _, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN}); return err })
	mode := func() connector.Mode { m, _ := c.Mode(connector.ServiceInsurability); return m }
	require.NotEqual(t, connector.ModeFallback, mode())

	w.p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	require.True(t, waitUntil(30*time.Second, func() bool { return mode() == connector.ModeFallback }), "fallback on the feed's Major Outage")
	requests := func() int {
		return w.countAll(w.p.Sites()[0].Name(), platformtest.ServiceInsurability) + w.countAll(w.p.Sites()[1].Name(), platformtest.ServiceInsurability)
	}
	before := requests()
	ra, errA := c.Insurability(bg, connector.InsurabilityRequest{SSIN: a.SSIN})
	_, errB := c.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
	require.Equal(t, connector.ModeFallback, mode(), "still in fallback (the feed's reading stays fresh)")
	require.Equal(t, before, requests(), "no request to the platform in fallback")
	require.NoError(t, errA)
	require.Equal(t, connector.SourceCache, ra.Source)
	require.True(t, ra.Degraded, "a stored answer in fallback is marked Degraded")
	require.ErrorIs(t, errB, connector.ErrNotCached)
	var fe *connector.FallbackError
	require.ErrorAs(t, errB, &fe)
	require.NotContains(t, errB.Error(), b.SSIN)
	t.Logf("in fallback: A from the store (AsOf %s), B: %v", ra.AsOf.Format(time.RFC3339), errB)

	w.p.SetComponentStatus("Insurability", platformtest.StatusOperational)
	require.True(t, waitUntil(30*time.Second, func() bool {
		r, err := c.Insurability(bg, connector.InsurabilityRequest{SSIN: b.SSIN})
		return err == nil && r.Source == connector.SourceLive
	}), "live again once the feed says Operational")
}
