package cookbook_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ehgate/ehgate/connector"
)

// Chapter 1: a pharmacy's keystore, the platform's trust roots, an encrypted store, and
// the first insurability check.
func Example_gettingStarted() {
	p := platform() // the stand-in; in production: the platform itself
	dir := tempDir()
	defer os.RemoveAll(dir)

	// The keystore exactly as the platform delivers it (here the stand-in makes it).
	id := pharmacy()
	p12, err := id.PKCS12("keystore password")
	must(err)
	keystore := filepath.Join(dir, "pharmacy.p12")
	must(os.WriteFile(keystore, p12, 0o600))

	cfg := connector.DefaultConfig() // production defaults, every one written out
	// For the real platform: cfg.Environment = connector.Acceptance (or Production) and the
	// CAs the platform publishes. For the stand-in, its own URLs and CAs:
	cfg.ServiceListURL = p.ServiceListBaseURL()
	cfg.ServiceListRoots = p.ServiceListRoots()
	cfg.TLSRoots = p.CACertPool()
	cfg.STSRoots = p.STSRoots()
	cfg.StatusFeedURL = p.StatusFeedURL()

	cfg.Credentials = connector.Credentials{PKCS12File: keystore, Password: "keystore password"}
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: id.NIHII, SSIN: id.SSIN}
	cfg.Package = connector.PackageLicense{Name: "my-pharmacy-software", Username: "vendor", Password: "licence"}
	cfg.CacheDir = filepath.Join(dir, "store") // the encrypted local store of fallback mode
	cfg.CacheKeys = [][]byte{newKey()}         // 32 bytes from the vendor's key store

	client, err := connector.New(cfg)
	if err != nil {
		fmt.Println(err) // a *connector.ConfigError names the bad field
		return
	}
	defer client.Close()

	res, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: insured(0).SSIN})
	must(err)
	fmt.Println("source:", res.Source, "degraded:", res.Degraded, "insured today:", res.Answer.Insured(time.Now()))

	st := client.Status()
	fmt.Println("service list from:", st.List.Source, "token valid:", st.Token.Valid, "token requests:", st.Token.Requests)

	// A Config with a missing field is refused before anything starts.
	_, err = connector.New(connector.Config{Environment: connector.Acceptance})
	var bad *connector.ConfigError
	fmt.Println("refused:", errors.As(err, &bad), "field:", bad.Field)

	// Output:
	// source: live degraded: false insured today: true
	// service list from: network token valid: true token requests: 1
	// refused: true field: ServiceListRoots
}
