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
// order in sc), each at its offset from the call as the platform's timer
// (Config.After) measures it, and returns when all ran
// (nil) or when ctx ends or the platform closes first (an error; the steps
// not yet due do not run).
func (p *Platform) Play(ctx context.Context, sc Scenario) error {
	steps := append([]Step(nil), sc.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	var elapsed time.Duration
	for _, st := range steps {
		if d := st.At - elapsed; d > 0 {
			select {
			case <-p.after(d):
				elapsed = st.At
			case <-ctx.Done():
				return ctx.Err()
			case <-p.closing:
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

// OutageScenario is a ready-made timeline for demos and soak tests, in
// steps of unit: insurability fails at the first site (HTTP 503, status feed
// "Degraded Performance"); at 1 unit the platform moves insurability to its
// BCP site by publishing a newer signed service list with the BCP endpoint
// ACTIVE and the first site's INACTIVE (feed "Major Outage"), which a
// client follows at its next poll; at 3 units insurability is refused and
// the eHealthBox answers 502 on every site (the client must answer from its
// cache and queue writes); at 5 units everything is restored (a newer list
// with the endpoints as at Start again, feed "Operational"). It
// needs a second site (the BCP site); with one site the move steps do
// nothing.
func OutageScenario(unit time.Duration) Scenario {
	move := func(p *Platform, i int) {
		if len(p.sites) > 1 {
			_ = p.MoveService(ServiceInsurability, p.sites[i].name) // listed on every site: cannot fail
		}
	}
	return Scenario{Steps: []Step{
		{At: 0, Name: "insurability failing at the primary site", Do: func(p *Platform) {
			p.sites[0].Inject(ServiceInsurability, Fault{Kind: FaultHTTPStatus, Status: 503})
			p.SetComponentStatus("Insurability", StatusDegradedPerformance)
		}},
		{At: unit, Name: "insurability moved to the BCP site (new signed service list)", Do: func(p *Platform) {
			move(p, 1)
			p.SetComponentStatus("Insurability", StatusMajorOutage)
		}},
		{At: 3 * unit, Name: "insurability and eHealthBox down on every site", Do: func(p *Platform) {
			for _, s := range p.sites {
				s.Inject(ServiceInsurability, Fault{Kind: FaultRefuse})
				s.Inject(ServiceEHealthBox, Fault{Kind: FaultHTTPStatus, Status: 502})
			}
			p.SetComponentStatus("eHealthBox", StatusMajorOutage)
		}},
		{At: 5 * unit, Name: "platform restored (service moved back)", Do: func(p *Platform) {
			for _, s := range p.sites {
				s.Clear(ServiceInsurability)
				s.Clear(ServiceEHealthBox)
			}
			_ = p.RestoreService(ServiceInsurability) // a known service: cannot fail
			p.SetComponentStatus("Insurability", StatusOperational)
			p.SetComponentStatus("eHealthBox", StatusOperational)
		}},
	}}
}
