package bcp

import (
	"fmt"
	"sync/atomic"
	"time"
)

// BudgetConfig bounds retries so that an outage does not multiply the load on
// the platform: every call earns Ratio of a retry, a floor of PerSecond retries
// is always granted, and at most Max retries can be saved up. A retry is any
// attempt after the first pass over a service's endpoints (failing over to the
// next endpoint within a pass is not a retry: each endpoint is tried at most
// once per pass and the breakers stop an outage from costing more). A hedge
// (ServicePolicy.HedgeDelay) draws from the same budget.
type BudgetConfig struct {
	// Ratio is the share of calls that may be retried. 0 = 0.2 (20 %);
	// negative = none (only the floor).
	Ratio float64
	// PerSecond is the floor of retries granted every second whatever the
	// traffic. 0 = 10; negative = no floor.
	PerSecond float64
	// Max caps the retries saved up. 0 = 100.
	Max float64
}

// DefaultBudgetConfig is the configuration a zero BudgetConfig stands for.
var DefaultBudgetConfig = BudgetConfig{Ratio: 0.2, PerSecond: 10, Max: 100}

// Validate reports the first invalid field.
func (c BudgetConfig) Validate() error {
	switch {
	case c.Ratio > 10:
		return fmt.Errorf("bcp: BudgetConfig.Ratio %v is above 10", c.Ratio)
	case c.Max < 0:
		return fmt.Errorf("bcp: BudgetConfig.Max %v is negative", c.Max)
	}
	return nil
}

func (c BudgetConfig) withDefaults() BudgetConfig {
	d := DefaultBudgetConfig
	switch {
	case c.Ratio < 0:
		d.Ratio = 0
	case c.Ratio > 0:
		d.Ratio = c.Ratio
	}
	switch {
	case c.PerSecond < 0:
		d.PerSecond = 0
	case c.PerSecond > 0:
		d.PerSecond = c.PerSecond
	}
	if c.Max > 0 {
		d.Max = c.Max
	}
	return d
}

// budgetUnit is one retry in the token bucket's fixed point.
const budgetUnit = 1000

// retryBudget is a token bucket in atomics. Calls deposit Ratio of a token
// (no write at all once the bucket is full, which is the healthy steady
// state); retries withdraw one after topping up the per-second floor, the only
// place the clock is read.
type retryBudget struct {
	perCall   int64 // milli-tokens per call
	perSecond float64
	max       int64
	tokens    atomic.Int64
	last      atomic.Int64 // unix ns of the last floor top-up
	granted   atomic.Uint64
	denied    atomic.Uint64
}

func newRetryBudget(c BudgetConfig, now time.Time) *retryBudget {
	b := &retryBudget{
		perCall:   int64(c.Ratio * budgetUnit),
		perSecond: c.PerSecond,
		max:       int64(c.Max * budgetUnit),
	}
	b.tokens.Store(min(b.max, int64(c.PerSecond*budgetUnit)))
	b.last.Store(now.UnixNano())
	return b
}

// deposit credits one call.
func (b *retryBudget) deposit() {
	if b.perCall == 0 || b.tokens.Load() >= b.max {
		return
	}
	b.tokens.Add(b.perCall)
}

// withdraw takes one retry if there is one.
func (b *retryBudget) withdraw(now int64) bool {
	if b.perSecond > 0 {
		last := b.last.Load()
		if elapsed := now - last; elapsed > 0 && b.last.CompareAndSwap(last, now) {
			b.tokens.Add(int64(b.perSecond * budgetUnit * float64(elapsed) / float64(time.Second)))
		}
	}
	for {
		t := b.tokens.Load()
		avail := min(t, b.max)
		if avail < budgetUnit {
			b.denied.Add(1)
			return false
		}
		if b.tokens.CompareAndSwap(t, avail-budgetUnit) {
			b.granted.Add(1)
			return true
		}
	}
}

// BudgetSnapshot counts the retries granted and denied so far.
type BudgetSnapshot struct {
	Available float64 // retries that could be made now (before the floor's top-up)
	Granted   uint64
	Denied    uint64
}

func (b *retryBudget) snapshot() BudgetSnapshot {
	return BudgetSnapshot{
		Available: float64(min(b.tokens.Load(), b.max)) / budgetUnit,
		Granted:   b.granted.Load(),
		Denied:    b.denied.Load(),
	}
}
