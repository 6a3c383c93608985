package platformtest_test

import (
	"fmt"
	"io"

	"github.com/ehgate/ehgate/platformtest"
)

// Start a platform, read the service list's hash as a client would, and
// make the eHealth site refuse connections.
func ExampleStart() {
	p, err := platformtest.Start(platformtest.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	resp, err := p.HTTPClient().Get(p.ServiceListBaseURL() + ".sha2")
	if err != nil {
		fmt.Println(err)
		return
	}
	sha, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(sha))

	p.Site("ehealth").Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
	_, err = p.HTTPClient().Get(p.URL(platformtest.ServiceInsurability, "ehealth"))
	fmt.Println(err != nil)
	// Output:
	// 200 64
	// true
}
