package cookbook_test

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/ehgate/ehgate/connector"
)

// registerNorth registers the example's party with the stand-in once per test binary.
var registerNorth sync.Once

// Chapter 3: an ETK fetched once, then served from the store while it is fresh, and in
// fallback mode while its certificate is valid.
func Example_etk() {
	p := platform()
	registerNorth.Do(func() { must(p.RegisterETK("NIHII-PHARMACY", "23076319", "", "Apotheek Noord")) })
	dir := tempDir()
	defer os.RemoveAll(dir)
	client, err := connector.New(pharmacyConfig(dir))
	must(err)
	defer client.Close()

	north := connector.Identifier{Type: "NIHII-PHARMACY", Value: "23076319"}
	res, err := client.ETK(bg, north)
	must(err)
	fmt.Println("1. source:", res.Source, "ETKs:", len(res.ETKs), "subject:", res.ETKs[0].Certificate.Subject.CommonName)

	before := p.Count("", connector.ServiceETK, "ok")
	res, err = client.ETK(bg, north)
	must(err)
	fmt.Println("2. source:", res.Source, "degraded:", res.Degraded, "depot asked again:", p.Count("", connector.ServiceETK, "ok") != before)

	must(client.ActivateFallback(connector.ServiceETK, "depot announced down"))
	res, err = client.ETK(bg, north)
	must(err)
	fmt.Println("3. source:", res.Source, "degraded:", res.Degraded)

	_, err = client.ETK(bg, connector.Identifier{Type: "NIHII-PHARMACY", Value: "99999999"})
	fmt.Println("4. never fetched: not cached:", errors.Is(err, connector.ErrNotCached))
	must(client.EndFallback(connector.ServiceETK))

	// Output:
	// 1. source: live ETKs: 1 subject: NIHII-PHARMACY=23076319
	// 2. source: cache degraded: false depot asked again: false
	// 3. source: cache degraded: true
	// 4. never fetched: not cached: true
}
