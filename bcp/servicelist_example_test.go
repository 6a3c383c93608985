package bcp_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
)

func ExampleParseServiceList() {
	raw, err := os.ReadFile("testdata/servicelist-acceptance-2022-12.xml")
	if err != nil {
		fmt.Println(err)
		return
	}
	list, err := bcp.ParseServiceList(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(list.Environment, list.IssueInstant.UTC().Format(time.RFC3339Nano), len(list.Services), "services")
	svc, _ := list.Lookup("insurability:v2")
	for _, ep := range svc.Endpoints {
		fmt.Println(ep.Order, ep.Status, ep.URL)
	}
	// Output:
	// Acceptation 2022-12-20T06:17:39.067Z 23 services
	// 0 ACTIVE https://services-acpt.ehealth.fgov.be/Insurability/v2
	// 1 INACTIVE https://pilot.mycarenet.be:9443/ehealth/bcp/insurability
}

// verifyServiceList is how a client checks the list's signature: the enveloped signature of
// the ServiceList element must chain to the pinned service-list CA.
func verifyServiceList(roots *x509.CertPool) func(raw []byte) error {
	return func(raw []byte) error {
		doc, err := soap.ParseDocument(bytes.NewReader(raw), soap.Limits{})
		if err != nil {
			return err
		}
		_, err = soap.VerifyEnveloped(doc.Root(), roots, soap.VerifyEnvelopedOptions{IDAttr: "Id"})
		return err
	}
}

func ExampleNewLoader() {
	builtin, err := os.ReadFile("testdata/servicelist-acceptance-2022-12.xml") // compiled in with go:embed in real use
	if err != nil {
		fmt.Println(err)
		return
	}
	pinned := x509.NewCertPool()                                      // add the platform's service-list CA here
	cfg := bcp.DefaultLoaderConfig("https://127.0.0.1:1/servicelist") // unreachable: the builtin list is used
	cfg.Verify = verifyServiceList(pinned)
	cfg.Builtin = builtin
	cfg.Store = bcp.NewFileListStore(filepath.Join(os.TempDir(), "ehgate-example-servicelist.xml")) // last good list
	loader, err := bcp.NewLoader(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer loader.Close()

	fmt.Println("source:", loader.Source())
	svc, _ := loader.Current().Lookup("insurability:v2")
	fmt.Println("insurability:", svc.Endpoints[0].URL)
	// Output:
	// source: builtin
	// insurability: https://services-acpt.ehealth.fgov.be/Insurability/v2
}

func ExampleParseStatusFeed() {
	body := []byte(`{"data":[
	  {"id":12,"name_nl":"MyCareNet - Verzekerbaarheid","status_name":"Major Outage"},
	  {"id":21,"name_nl":"eHealth - STS","status_name":"Operational"},
	  {"id":22,"name_nl":"eHealth - ETK Depot","status_name":"Under Maintenance"}]}`)
	comps, err := bcp.ParseStatusFeed(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range comps {
		fmt.Printf("%s: %s\n", c.Name(), c.Status)
	}
	// Output:
	// MyCareNet - Verzekerbaarheid: Major Outage
	// eHealth - STS: Operational
	// eHealth - ETK Depot: Unknown
}
