package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// Report is what the morning measured. Every figure is counted from the answers the
// counters got and from the writes platformtest recorded.
type Report struct {
	Seed        int64         `json:"seed"`
	Duration    string        `json:"duration"`
	WallSeconds float64       `json:"wall_seconds"`
	Counters    int           `json:"counters"`
	Phases      []PhaseReport `json:"phases"`
	Writes      WriteReport   `json:"writes"`
	// Regularisation sums the re-checks of answers served from the store.
	Regularisation RegularisationFigures `json:"regularisation"`
	Summary        Summary               `json:"summary"`
	// Problems says why the run failed (empty = it did not).
	Problems []string `json:"problems"`
}

// PhaseReport is one row of the table. Calls are reads (insurability checks and ETK
// lookups), counted in the phase in which their answer came (a phase starts at the instant
// its fault is applied).
type PhaseReport struct {
	Name    string  `json:"name"`
	Title   string  `json:"title"`
	Seconds float64 `json:"seconds"`
	Calls   int64   `json:"calls"`
	// Live were answered by the platform during the call (business answers such as an
	// unknown patient included); Cached by the local store.
	Live     int64 `json:"live"`
	Cached   int64 `json:"cached"`
	Business int64 `json:"business"`
	// Uncached are calls for a patient (or ETK party) the store never held while the
	// platform could not answer: not an error of ehgate, the pharmacy's emergency procedure.
	Uncached int64 `json:"uncached"`
	// Errors are every other error a counter saw; HeldErrors those for a patient the store held.
	Errors     int64 `json:"errors"`
	HeldErrors int64 `json:"held_errors"`
	// Writes were handed to Submit; Delivered and Queued say what the receipts said.
	Writes    int64 `json:"writes"`
	Delivered int64 `json:"delivered"`
	Queued    int64 `json:"queued"`
	// Replayed are queued writes the platform accepted during this phase; Lost are writes of
	// this phase with a receipt that the platform never recorded.
	Replayed int64 `json:"replayed"`
	Lost     int64 `json:"lost"`
	// SwitchMs is the time from the phase's fault to its switch (SwitchWhat), -1 when the
	// phase has none or it was not seen.
	SwitchMs   int64  `json:"switch_ms"`
	SwitchWhat string `json:"switch_what,omitempty"`
	SlowestMs  int64  `json:"slowest_call_ms"`
	// Reached says whether the phase showed what it is there to show (DoneWhat) before its
	// cap; a phase runs on after its share of the morning until it has.
	Reached  bool   `json:"reached"`
	DoneWhat string `json:"done_what"`
}

// WriteReport checks the writes against what the platform recorded.
type WriteReport struct {
	Submitted int `json:"submitted"` // receipts (delivered or queued)
	Accepted  int `json:"accepted"`  // of those, recorded by the platform (once each)
	// Deduplicated counts requests the platform answered as already accepted (retries).
	Deduplicated int `json:"deduplicated"`
	// Unknown are writes the platform recorded that no counter handed to Submit (must be 0).
	Unknown int `json:"unknown"`
	// PendingAtEnd is the outbox left when the client closed.
	PendingAtEnd int `json:"pending_at_end"`
}

// RegularisationFigures sum the regularisation reports of the run.
type RegularisationFigures struct {
	Reports   int `json:"reports"`
	Checked   int `json:"checked"`
	Unchanged int `json:"unchanged"`
	Changed   int `json:"changed"`
	// Failed is what is still unchecked at the end: the last report of each service.
	Failed int `json:"failed"`
}

// Summary is the last line of the demo.
type Summary struct {
	Calls      int64 `json:"calls"`
	Live       int64 `json:"live"`
	Cached     int64 `json:"cached"`
	Errors     int64 `json:"errors"`
	Queued     int64 `json:"queued"`
	Replayed   int64 `json:"replayed"`
	Lost       int64 `json:"lost"`
	FailoverMs int64 `json:"failover_ms"`
}

// Line is the summary in the demo's fixed form.
func (s Summary) Line() string {
	return fmt.Sprintf("summary: calls=%d live=%d cached=%d errors=%d queued=%d replayed=%d lost=%d failover_ms=%d",
		s.Calls, s.Live, s.Cached, s.Errors, s.Queued, s.Replayed, s.Lost, s.FailoverMs)
}

// report builds the Report from the counters' figures and the platform's records.
func (w *world) report(end time.Time) *Report {
	rep := &Report{
		Seed: w.o.Seed, Duration: w.o.Duration.String(), Counters: w.o.Counters,
		WallSeconds: roundTo(end.Sub(w.started).Seconds(), 2), Problems: []string{},
	}
	w.boundMu.Lock()
	bounds := append([]time.Time(nil), w.bounds...)
	w.boundMu.Unlock()
	phaseAt := func(t time.Time) int {
		ph := 0
		for i, b := range bounds {
			if !b.IsZero() && !t.Before(b) {
				ph = i
			}
		}
		return ph
	}

	for i, st := range w.stats {
		pr := PhaseReport{
			Name: phases[i].name, Title: phases[i].title,
			Calls: st.calls.Load(), Live: st.live.Load(), Cached: st.cached.Load(), Business: st.business.Load(),
			Uncached: st.uncached.Load(), Errors: st.errors.Load(), HeldErrors: st.heldErrors.Load(),
			Writes: st.writes.Load(), Delivered: st.delivered.Load(), Queued: st.queued.Load(),
			SwitchMs: -1, SwitchWhat: phases[i].switchWhat,
			SlowestMs: time.Duration(st.slowest.Load()).Milliseconds(),
			Reached:   st.reached.Load(), DoneWhat: phases[i].doneWhat,
		}
		if !bounds[i].IsZero() {
			until := end
			if i+1 < len(bounds) && !bounds[i+1].IsZero() {
				until = bounds[i+1]
			}
			pr.Seconds = roundTo(until.Sub(bounds[i]).Seconds(), 2)
			if at := st.switchAt.Load(); at != 0 {
				pr.SwitchMs = time.Unix(0, at).Sub(bounds[i]).Milliseconds()
			}
		}
		rep.Phases = append(rep.Phases, pr)
	}

	// Writes: what the receipts said against what the platform recorded.
	recorded := map[string]platformtest.Write{}
	for _, pw := range w.p.Writes() {
		recorded[pw.Key] = pw
	}
	w.writeMu.Lock()
	for key, s := range w.writes {
		rep.Writes.Submitted++
		pw, ok := recorded[key]
		if !ok {
			rep.Phases[s.phase].Lost++
			continue
		}
		rep.Writes.Accepted++
		if s.queued {
			rep.Phases[phaseAt(pw.At)].Replayed++
		}
	}
	for key := range recorded {
		if _, ok := w.tried[key]; !ok {
			rep.Writes.Unknown++
		}
	}
	w.writeMu.Unlock()
	rep.Writes.Deduplicated = w.p.Count("", platformtest.ServiceEHealthBox, platformtest.OutcomeDuplicate)
	rep.Writes.PendingAtEnd = w.pendingAtEnd

	w.regMu.Lock()
	// A check that failed is kept for the service's next run, so only the last report of
	// each service says how many answers are still unchecked.
	stillUnchecked := map[string]int{}
	for _, r := range w.reg {
		rep.Regularisation.Reports++
		rep.Regularisation.Checked += r.Checked
		rep.Regularisation.Unchanged += r.Unchanged
		rep.Regularisation.Changed += len(r.Changed)
		stillUnchecked[r.Service] = r.Failed
	}
	for _, n := range stillUnchecked {
		rep.Regularisation.Failed += n
	}
	w.regMu.Unlock()

	for _, pr := range rep.Phases {
		rep.Summary.Calls += pr.Calls
		rep.Summary.Live += pr.Live
		rep.Summary.Cached += pr.Cached
		rep.Summary.Errors += pr.Errors
		rep.Summary.Queued += pr.Queued
		rep.Summary.Replayed += pr.Replayed
		rep.Summary.Lost += pr.Lost
	}
	rep.Summary.FailoverMs = rep.Phases[1].SwitchMs

	var held int64
	for _, pr := range rep.Phases {
		held += pr.HeldErrors
	}
	if rep.Summary.Lost > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d writes with a receipt were never recorded by the platform", rep.Summary.Lost))
	}
	if held > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("counters saw %d errors for patients the store held", held))
	}
	if rep.Summary.Errors > held {
		rep.Problems = append(rep.Problems, fmt.Sprintf("counters saw %d other errors", rep.Summary.Errors-held))
	}
	if rep.Writes.Unknown > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the platform recorded %d writes nobody submitted", rep.Writes.Unknown))
	}
	if rep.Summary.FailoverMs < 0 {
		rep.Problems = append(rep.Problems, "no answer from the fallback site was seen after the primary site died")
	}
	for i, pr := range rep.Phases {
		if !pr.Reached {
			rep.Problems = append(rep.Problems, fmt.Sprintf("phase %d (%s) ended without %s", i+1, pr.Name, pr.DoneWhat))
		}
	}
	return rep
}

// WriteTable prints the per-phase table.
func (r *Report) WriteTable(out io.Writer) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tseconds\tcalls\tlive\tfrom cache\tnot cached\terrors\twrites\tqueued\treplayed\tlost\tfailover ms\tslowest ms\t")
	for i, p := range r.Phases {
		sw := "-"
		if p.SwitchMs >= 0 {
			sw = fmt.Sprint(p.SwitchMs)
		}
		fmt.Fprintf(tw, "%d %s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t\n",
			i+1, p.Name, p.Seconds, p.Calls, p.Live, p.Cached, p.Uncached, p.Errors, p.Writes, p.Queued, p.Replayed, p.Lost, sw, p.SlowestMs)
	}
	s := r.Summary
	fmt.Fprintf(tw, "total\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\n",
		r.WallSeconds, s.Calls, s.Live, s.Cached, r.totalUncached(), s.Errors, r.totalWrites(), s.Queued, s.Replayed, s.Lost, s.FailoverMs)
	_ = tw.Flush()
	fmt.Fprintln(out)
	var sw []string
	for i, p := range r.Phases {
		if p.SwitchWhat != "" {
			sw = append(sw, fmt.Sprintf("phase %d: %s", i+1, p.SwitchWhat))
		}
	}
	fmt.Fprintln(out, "calls: insurability checks and ETK lookups; from cache: answered by the local store")
	fmt.Fprintln(out, "(an ETK younger than 8 h always is); not cached: nobody had asked for that patient")
	fmt.Fprintln(out, "before the outage; errors: any other error a counter saw.")
	fmt.Fprintln(out, "failover ms, from the fault to the switch: "+strings.Join(sw, "; ")+".")
	fmt.Fprintf(out, "writes: %d receipts, %d recorded by the platform once each, %d retries deduplicated by key, %d left in the outbox.\n",
		r.Writes.Submitted, r.Writes.Accepted, r.Writes.Deduplicated, r.Writes.PendingAtEnd)
	g := r.Regularisation
	fmt.Fprintf(out, "regularisation: %d answers served from the store checked again live: %d unchanged, %d changed, %d not checked.\n",
		g.Checked, g.Unchanged, g.Changed, g.Failed)
	fmt.Fprintln(out)
}

func (r *Report) totalUncached() int64 {
	var n int64
	for _, p := range r.Phases {
		n += p.Uncached
	}
	return n
}

func (r *Report) totalWrites() int64 {
	var n int64
	for _, p := range r.Phases {
		n += p.Writes
	}
	return n
}

func roundTo(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// regularised records a regularisation report (its figures only: the differences hold
// personal data and stay with the pharmacy's software).
func (w *world) regularised(r connector.RegularisationReport) {
	r.Changed = append([]connector.Difference(nil), r.Changed...)
	w.regMu.Lock()
	w.reg = append(w.reg, r)
	w.regMu.Unlock()
}
