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
// "Degraded Performance"); at 1 unit the service list marks that endpoint
// INACTIVE (feed "Major Outage"); at 3 units insurability is refused and the
// tarification answers 502 on every site (the client must answer from its
// cache and queue writes); at 5 units everything is restored (endpoint
// ACTIVE again, feed "Operational").
func OutageScenario(unit time.Duration) Scenario {
	return Scenario{Steps: []Step{
		{At: 0, Name: "insurability failing at the primary site", Do: func(p *Platform) {
			p.sites[0].Inject(ServiceInsurability, Fault{Kind: FaultHTTPStatus, Status: 503})
			p.SetComponentStatus("Insurability", StatusDegradedPerformance)
		}},
		{At: unit, Name: "primary endpoint INACTIVE in the service list", Do: func(p *Platform) {
			p.SetEndpointStatus(ServiceInsurability, p.sites[0].name, false)
			p.SetComponentStatus("Insurability", StatusMajorOutage)
		}},
		{At: 3 * unit, Name: "insurability and tarification down on every site", Do: func(p *Platform) {
			for _, s := range p.sites {
				s.Inject(ServiceInsurability, Fault{Kind: FaultRefuse})
				s.Inject(ServiceTarification, Fault{Kind: FaultHTTPStatus, Status: 502})
			}
			p.SetComponentStatus("MyCareNet Tarification", StatusMajorOutage)
		}},
		{At: 5 * unit, Name: "platform restored", Do: func(p *Platform) {
			for _, s := range p.sites {
				s.Clear(ServiceInsurability)
				s.Clear(ServiceTarification)
			}
			p.SetEndpointStatus(ServiceInsurability, p.sites[0].name, true)
			p.SetComponentStatus("Insurability", StatusOperational)
			p.SetComponentStatus("MyCareNet Tarification", StatusOperational)
		}},
	}}
}
