package cookbook_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/connector"
)

// Chapter 2: an insurability check answered live, then, with every site down, from the
// local store and marked as such; a patient the store never held; a business answer; a
// wrong SSIN.
func Example_insurabilityWithFallback() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	client, err := connector.New(pharmacyConfig(dir))
	must(err)
	defer client.Close()

	regular := connector.InsurabilityRequest{SSIN: insured(1).SSIN}
	live, err := client.Insurability(bg, regular)
	must(err)
	fmt.Println("1. source:", live.Source, "degraded:", live.Degraded)

	restore := allSitesDown()
	defer restore()

	res, err := client.Insurability(bg, regular)
	must(err) // no error at the counter: the store answers
	age := res.AsOf.Sub(live.AsOf)
	fmt.Println("2. source:", res.Source, "degraded:", res.Degraded, "answer of the live call:", age > -time.Second && age < time.Second)
	fmt.Println("   same regime:", res.Answer.Coverages[0].Entitlement == live.Answer.Coverages[0].Entitlement)

	_, err = client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(2).SSIN})
	fmt.Println("3. never asked before: not cached:", errors.Is(err, connector.ErrNotCached), "platform unavailable:", errors.Is(err, bcp.ErrUnavailable))

	restore()
	_, err = client.Insurability(bg, connector.InsurabilityRequest{SSIN: unknownPatient().SSIN})
	var business *connector.BusinessError
	fmt.Println("4. unknown patient: business answer:", errors.As(err, &business), "major code:", business.Code)

	_, err = client.Insurability(bg, connector.InsurabilityRequest{SSIN: "85073003329"})
	fmt.Println("5. wrong SSIN:", errors.Is(err, connector.ErrInvalidSSIN))

	// Output:
	// 1. source: live degraded: false
	// 2. source: cache degraded: true answer of the live call: true
	//    same regime: true
	// 3. never asked before: not cached: true platform unavailable: true
	// 4. unknown patient: business answer: true major code: 01
	// 5. wrong SSIN: true
}
