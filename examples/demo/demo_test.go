package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemo_MorningKeepsItsPromises plays a short morning through the command's own entry
// point and checks the invariants the README claims: no write lost, no error at a counter,
// every call counted once, every queued write replayed once, the fixed summary line last.
//
// How much gets done in a phase depends on the machine's load, so nothing here counts on
// it: each phase runs on after its share of -duration until it has shown what it is for (a
// live answer; a live answer from the fallback site; an answer from the store and a queued
// write; failback, an empty outbox and the store's answers checked again), with a cap of
// 20 s per phase, and the run reports a problem for a phase that hit its cap. The per-phase
// "> 0" checks below therefore hold by construction once every phase is Reached; what is
// asserted about speed is nothing.
func TestDemo_MorningKeepsItsPromises(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-duration=4s", "-seed=3", "-json"}, &stdout, &stderr)
	require.Equal(t, 0, code, "demo failed:\n%s", stderr.String())

	var rep Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), "stdout is the JSON report")
	require.Empty(t, rep.Problems)
	require.Len(t, rep.Phases, 4)
	s := rep.Summary

	require.Zero(t, s.Lost, "no write lost")
	require.Zero(t, s.Errors, "no counter saw an error")
	for _, p := range rep.Phases {
		require.True(t, p.Reached, "phase %s ended at its cap without %s", p.Name, p.DoneWhat)
		require.Zero(t, p.HeldErrors, "phase %s: error for a patient the store held", p.Name)
		require.Equal(t, p.Calls, p.Live+p.Cached+p.Uncached+p.Errors, "phase %s: every call is counted once", p.Name)
		require.Equal(t, p.Writes, p.Delivered+p.Queued, "phase %s: every write has one receipt", p.Name)
	}

	normal, failover, outage, recovery := rep.Phases[0], rep.Phases[1], rep.Phases[2], rep.Phases[3]
	require.Positive(t, normal.Live)
	require.Positive(t, failover.Live, "the fallback site answered live")
	require.GreaterOrEqual(t, failover.SwitchMs, int64(0), "failover measured")
	require.Equal(t, failover.SwitchMs, s.FailoverMs)
	require.Positive(t, outage.Cached, "answers from the local store during the outage")
	require.Positive(t, outage.Queued, "writes queued during the outage")
	require.Positive(t, recovery.Live)
	require.GreaterOrEqual(t, recovery.SwitchMs, int64(0), "the primary site answered again")

	require.Equal(t, s.Queued, s.Replayed, "every queued write replayed")
	require.Equal(t, rep.Writes.Submitted, rep.Writes.Accepted, "every receipt recorded by the platform, once")
	require.Zero(t, rep.Writes.Unknown, "the platform recorded nothing nobody submitted")
	require.Zero(t, rep.Writes.PendingAtEnd)
	require.Positive(t, rep.Regularisation.Checked, "answers served from the store were checked again")

	var sum Summary
	for _, p := range rep.Phases {
		sum.Calls += p.Calls
		sum.Live += p.Live
		sum.Cached += p.Cached
		sum.Errors += p.Errors
		sum.Queued += p.Queued
		sum.Replayed += p.Replayed
	}
	require.Equal(t, sum.Calls, s.Calls)
	require.Equal(t, sum.Live, s.Live)
	require.Equal(t, sum.Cached, s.Cached)
	require.Equal(t, sum.Errors, s.Errors)
	require.Equal(t, sum.Queued, s.Queued)
	require.Equal(t, sum.Replayed, s.Replayed)

	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	require.Regexp(t, regexp.MustCompile(`^summary: calls=\d+ live=\d+ cached=\d+ errors=\d+ queued=\d+ replayed=\d+ lost=\d+ failover_ms=\d+$`), last)
	require.Equal(t, s.Line(), last)
	require.Contains(t, stderr.String(), "phase 2/4")
	require.Contains(t, stderr.String(), "failed-over")
	require.Contains(t, stderr.String(), "replay    outbox [")
}

func TestDemo_FlagsAreChecked(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-duration=1s"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "at least 2s")
	require.Equal(t, 2, run(context.Background(), []string{"-nope"}, &stdout, &stderr))
	require.Equal(t, 2, run(context.Background(), []string{"extra"}, &stdout, &stderr))
	require.Empty(t, stdout.String())
}

func TestSummary_Line(t *testing.T) {
	s := Summary{Calls: 10, Live: 6, Cached: 3, Errors: 0, Queued: 2, Replayed: 2, Lost: 0, FailoverMs: 41}
	require.Equal(t, "summary: calls=10 live=6 cached=3 errors=0 queued=2 replayed=2 lost=0 failover_ms=41", s.Line())
}

func TestProgressBar(t *testing.T) {
	require.Equal(t, "[··········]", progressBar(0, 10, 10))
	require.Equal(t, "[█████·····]", progressBar(5, 10, 10))
	require.Equal(t, "[██████████]", progressBar(12, 10, 10))
	require.Equal(t, "[··········]", progressBar(0, 0, 10))
}

func TestSyncWriter_LineAfterABarStartsOnItsOwnLine(t *testing.T) {
	var buf bytes.Buffer
	w := &syncWriter{w: &buf}
	_, _ = w.Write([]byte("\rbar 1/2"))
	_, _ = w.Write([]byte("\rbar 2/2"))
	_, _ = w.Write([]byte("mode changed\n"))
	_, _ = w.Write([]byte("next\n"))
	require.Equal(t, "\rbar 1/2\rbar 2/2\nmode changed\nnext\n", buf.String())
}
