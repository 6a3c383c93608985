package connector

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// maxRegularisation bounds how many answers served from the store wait to be checked again.
const maxRegularisation = 10_000

// regularisationWorkers is how many answers are checked again at the same time.
const regularisationWorkers = 4

// Difference is one answer served from the local store and checked again live.
//
// It holds personal data (the request and both answers): give it to the pharmacist's
// software, never to a log.
type Difference struct {
	Service    string
	Request    any       // the InsurabilityRequest, GenericInsurabilityRequest, … that was answered
	ServedAsOf time.Time // when the platform gave the answer that was served
	// Fields names the fields of the answer that changed ("Coverages", "ReturnCode", …), or
	// "error: …" when the platform now refuses the request (a business error).
	Fields []string
	Served any // the answer served from the store (when Fields is not empty)
	Live   any // the platform's answer now (when Fields is not empty)
}

// RegularisationReport says what the re-check of the answers served from the store during an
// outage found (docs/wire/insurability.md: the vendor corrects what was decided on them).
type RegularisationReport struct {
	Service   string
	Started   time.Time
	Finished  time.Time
	Checked   int          // answers asked again live
	Unchanged int          // the platform's answer is the one served
	Changed   []Difference // personal data: see Difference
	Failed    int          // could not be checked (the platform failed again); kept for the next run
}

// regulariser remembers the answers served from the store and checks them again when the
// service is back.
//
// The pending answers are persisted in the local store (see state.go): a restart checks them
// again like any other.
type regulariser struct {
	c       *Client
	mu      sync.RWMutex
	pending map[string]map[string]regEntry // service → key → entry
	keys    map[string]struct{}            // every pending key (keys carry their function)
	last    map[string]RegularisationReport
	dirty   map[string]bool // services whose pending list changed since it was saved
	kick    chan struct{}   // wakes the saver up
}

// regEntry is one answer served from the store, waiting to be checked again.
type regEntry struct {
	request    any       // the request answered (persisted as JSON)
	servedAsOf time.Time // when the platform gave the answer served
	check      func(context.Context) (Difference, error)
}

func newRegulariser(c *Client) *regulariser {
	return &regulariser{c: c, pending: map[string]map[string]regEntry{},
		keys: map[string]struct{}{}, last: map[string]RegularisationReport{}, dirty: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// has reports whether key waits to be checked already (the hot path: a read lock, no allocation).
func (r *regulariser) has(key string) bool {
	r.mu.RLock()
	_, ok := r.keys[key]
	r.mu.RUnlock()
	return ok
}

// record remembers that key of service was answered from the store (the first answer served
// is the one checked), and has the list saved.
func (r *regulariser) record(service, key string, e regEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.pending[service]
	if m == nil {
		m = map[string]regEntry{}
		r.pending[service] = m
	}
	if _, ok := m[key]; ok || len(r.keys) >= maxRegularisation {
		return
	}
	m[key] = e
	r.keys[key] = struct{}{}
	r.markDirty(service)
}

// markDirty has service's pending list saved by the saver; the caller holds mu.
func (r *regulariser) markDirty(service string) {
	r.dirty[service] = true
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run checks every answer of service served from the store, publishes the report and keeps
// it for Status. Checks that fail stay pending.
func (r *regulariser) run(ctx context.Context, service string) {
	r.mu.Lock()
	todo := r.pending[service]
	delete(r.pending, service)
	for key := range todo {
		delete(r.keys, key)
	}
	if len(todo) > 0 {
		r.markDirty(service) // saved without them; failed checks come back below
	}
	r.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	rep := RegularisationReport{Service: service, Started: r.c.clock.Now()}
	type job struct {
		key   string
		entry regEntry
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(regularisationWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var d Difference
				err := ctx.Err()
				if err == nil {
					actx, cancel := context.WithTimeout(ctx, 2*r.c.cfg.Timeouts.Attempt)
					d, err = j.entry.check(actx)
					cancel()
				}
				mu.Lock()
				switch {
				case err != nil:
					r.record(service, j.key, j.entry) // kept for the next run
					rep.Failed++
				case len(d.Fields) == 0:
					rep.Checked++
					rep.Unchanged++
				default:
					rep.Checked++
					rep.Changed = append(rep.Changed, d)
				}
				mu.Unlock()
			}
		}()
	}
	for key, e := range todo {
		jobs <- job{key, e}
	}
	close(jobs)
	wg.Wait()
	rep.Finished = r.c.clock.Now()
	r.mu.Lock()
	r.last[service] = rep
	r.mu.Unlock()
	r.c.log.Info("connector: answers served from the local store checked again",
		zap.String("service", service), zap.Int("checked", rep.Checked), zap.Int("changed", len(rep.Changed)), zap.Int("failed", rep.Failed))
	r.c.events.publish(Event{Kind: EventRegularisation, Service: service, Cause: "regularised", At: rep.Finished, Regularisation: &rep})
}

// pendingCount returns how many answers of service wait to be checked.
func (r *regulariser) pendingCount(service string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.pending[service])
}

// Regularisation returns the last regularisation report of service (false when none ran).
// The report holds personal data: see Difference.
func (c *Client) Regularisation(service string) (RegularisationReport, bool) {
	c.regular.mu.RLock()
	defer c.regular.mu.RUnlock()
	rep, ok := c.regular.last[service]
	return rep, ok
}

// Regularise checks again, now, the answers of service served from the store (normally run
// by itself when the service leaves fallback) and returns the report.
func (c *Client) Regularise(ctx context.Context, service string) RegularisationReport {
	c.regular.run(ctx, service)
	rep, _ := c.Regularisation(service)
	return rep
}
