package sts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
	"github.com/ehgate/ehgate/sts"
)

// A pharmacy loads its keystore, gets a token from the STS and signs a business request with it.
func Example() {
	plat, err := platformtest.Start(platformtest.Config{TokenLifetime: 5 * time.Hour})
	if err != nil {
		panic(err)
	}
	defer plat.Close()
	pharmacy, _ := plat.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	dir, _ := os.MkdirTemp("", "sts-example")
	defer os.RemoveAll(dir)
	p12, _ := pharmacy.PKCS12("keystore password")
	keystore := filepath.Join(dir, "identity.p12")
	_ = os.WriteFile(keystore, p12, 0o600)

	cred, err := sts.LoadPKCS12(keystore, "keystore password", sts.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	provider, err := sts.NewProvider(sts.ProviderConfig{
		Identification: cred,
		Attributes:     sts.PresetPharmacy,
		SSIN:           pharmacy.SSIN,
		NIHII:          pharmacy.NIHII,
		STSRoots:       plat.STSRoots(),
		Router:         sts.FixedEndpoint(plat.URL(platformtest.ServiceSTS, "ehealth")),
	}, sts.WithHTTPClient(plat.HTTPClient()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer provider.Close()

	tok, err := provider.Token(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("granted:", tok.Lifetime())
	fmt.Println("recognised pharmacy:", tok.Attributes[platformtest.AttrRecognisedPharmacy])

	signer, _ := soap.NewSigner(soap.SignerConfig{Key: cred.Key, Assertion: tok.Assertion})
	msg, err := signer.Sign(soap.NewEnvelope(etree.NewElement("Request")))
	fmt.Println("signed:", err == nil && len(msg) > len(tok.Assertion))
	// Output:
	// granted: 5h0m0s
	// recognised pharmacy: [true]
	// signed: true
}

// Through a bcp.Engine, the STS endpoint comes from the service list, and an STS that cannot be
// reached is reported as bcp.ErrUnavailable once no valid token is left.
func ExampleProvider_Token_unavailable() {
	plat, err := platformtest.Start(platformtest.Config{})
	if err != nil {
		panic(err)
	}
	defer plat.Close()
	pharmacy, _ := plat.NewIdentity(platformtest.Pharmacy, "Apotheek Zuid")
	cred, err := sts.NewCredential(pharmacy.Certificate, pharmacy.Key, pharmacy.Chain[1:], "platformtest", sts.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	list, _ := bcp.ParseServiceList(plat.ServiceList())
	engine, _ := bcp.New(bcp.Config{ServiceList: list})
	defer engine.Close()

	plat.Site("ehealth").Inject(platformtest.ServiceSTS, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503})
	provider, _ := sts.NewProvider(sts.ProviderConfig{
		Identification: cred,
		Attributes:     sts.PresetPharmacy,
		SSIN:           pharmacy.SSIN,
		NIHII:          pharmacy.NIHII,
		STSRoots:       plat.STSRoots(),
		Router:         engine,
	}, sts.WithHTTPClient(plat.HTTPClient()))
	defer provider.Close()

	_, err = provider.Token(context.Background())
	var status *bcp.StatusError
	fmt.Println("no token:", errors.Is(err, sts.ErrNoToken))
	fmt.Println("sts unavailable:", errors.Is(err, bcp.ErrUnavailable))
	fmt.Println("http status:", errors.As(err, &status) && status.StatusCode == 503)

	plat.Site("ehealth").Clear(platformtest.ServiceSTS)
	tok, err := provider.Token(context.Background())
	fmt.Println("after recovery:", err == nil && tok != nil)
	// Output:
	// no token: true
	// sts unavailable: true
	// http status: true
	// after recovery: true
}
