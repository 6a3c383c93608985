package cookbook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

// Chapter 6: a drill. For its duration insurability answers from the local store as in an
// outage, and every answer is compared with a live one made in the shadow; the report says
// how many matched and which patients (by pseudonym) the store could not answer.
func Example_drill() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	client, err := connector.New(pharmacyConfig(dir))
	must(err)
	defer client.Close()
	events, stop := client.Subscribe(256)
	defer stop()

	for i := 5; i < 8; i++ { // this morning's patients
		_, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(i).SSIN})
		must(err)
	}

	ctx, endDrill := context.WithCancel(bg)
	type outcome struct {
		report connector.DrillReport
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := client.Drill(ctx, []string{connector.ServiceInsurability}, time.Hour)
		done <- outcome{rep, err}
	}()
	fmt.Println("drill running:", waitMode(client, events, connector.ServiceInsurability, connector.ModeFallback))

	for i := 5; i < 9; i++ { // three known patients and one newcomer
		res, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(i).SSIN})
		if err != nil {
			fmt.Println("patient", i, "not cached:", errors.Is(err, connector.ErrNotCached))
			continue
		}
		fmt.Println("patient", i, "source:", res.Source, "degraded:", res.Degraded)
	}
	endDrill() // or wait for the duration given to Drill
	o := <-done
	fmt.Println("ended by us:", errors.Is(o.err, context.Canceled))
	fmt.Println("calls:", o.report.Calls, "answered:", o.report.Answered, "matches:", o.report.Matches,
		"mismatches:", len(o.report.Mismatches), "misses:", len(o.report.Misses), "shadow errors:", o.report.ShadowErrors)
	fmt.Println("back to normal:", waitMode(client, events, connector.ServiceInsurability, connector.ModeNormal))

	// Output:
	// drill running: true
	// patient 5 source: cache degraded: true
	// patient 6 source: cache degraded: true
	// patient 7 source: cache degraded: true
	// patient 8 not cached: true
	// ended by us: true
	// calls: 4 answered: 3 matches: 3 mismatches: 0 misses: 1 shadow errors: 0
	// back to normal: true
}

// Chapter 6: an operator switches insurability to the local store by hand (the read-only
// emergency copy), with a reason that Status shows; ending it checks again, live, every
// answer served meanwhile.
func Example_operatorActivation() {
	p := platform()
	dir := tempDir()
	defer os.RemoveAll(dir)
	client, err := connector.New(pharmacyConfig(dir))
	must(err)
	defer client.Close()
	events, stop := client.Subscribe(256)
	defer stop()

	req := connector.InsurabilityRequest{SSIN: insured(9).SSIN}
	_, err = client.Insurability(bg, req)
	must(err)

	must(client.ActivateFallback(connector.ServiceInsurability, "network maintenance at the pharmacy"))
	before := p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK)
	res, err := client.Insurability(bg, req)
	must(err)
	fmt.Println("source:", res.Source, "degraded:", res.Degraded, "network tried:", p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK) != before)
	for _, s := range client.Status().Services {
		if s.Name == connector.ServiceInsurability {
			fmt.Printf("status: %s, operator: %q\n", s.Mode, s.Operator)
		}
	}

	must(client.EndFallback(connector.ServiceInsurability))
	fmt.Println("normal again:", waitMode(client, events, connector.ServiceInsurability, connector.ModeNormal))
	rep, ok := client.Regularisation(connector.ServiceInsurability)
	fmt.Println("re-checked:", ok, "checked:", rep.Checked, "unchanged:", rep.Unchanged, "changed:", len(rep.Changed))

	// Output:
	// source: cache degraded: true network tried: false
	// status: fallback, operator: "network maintenance at the pharmacy"
	// normal again: true
	// re-checked: true checked: 1 unchanged: 1 changed: 0
}
