package platformtest

import (
	"context"
	"sort"
	"time"
)

// Step is one action of a Scenario, run At its offset from the start.
type Step struct {
	At   time.Duration
	Name string
	Do   func(*Platform)
}

// Scenario is a timeline of faults and changes, for demos and soak tests.
type Scenario struct {
	Steps []Step
}

// Play runs sc's steps in order of At (steps with equal offsets in their
// order in sc), each at its offset from the call, and returns when all ran
// (nil) or when ctx ends or the platform closes first (an error; the steps
// not yet due do not run).
func (p *Platform) Play(ctx context.Context, sc Scenario) error {
	steps := append([]Step(nil), sc.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	start := time.Now()
	for _, st := range steps {
		if d := st.At - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-p.closing:
				t.Stop()
				return errClosed
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		if st.Do != nil {
			st.Do(p)
		}
	}
	return nil
}
