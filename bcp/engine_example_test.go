package bcp_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/ehgate/ehgate/bcp"
)

// The default endpoint refuses connections: the call is answered by the
// fallback, and the caller sees no error. Had both failed, the error would
// list both with their causes.
func ExampleEngine_Do() {
	list := &bcp.ServiceList{Services: []bcp.Service{{
		ID:   "uddi:ehealth-fgov-be:business:insurability:v2",
		Name: "Insurability",
		Endpoints: []bcp.Endpoint{
			{URL: "https://services.ehealth.fgov.be/Insurability/v2", Order: 0, Status: bcp.StatusActive},
			{URL: "https://prod.mycarenet.be:9443/ehealth/bcp/insurability", Order: 1, Status: bcp.StatusActive},
		},
	}}}
	e, err := bcp.New(bcp.Config{ServiceList: list})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	err = e.Do(context.Background(), "insurability:v2", func(ctx context.Context, ep bcp.Endpoint) error {
		fmt.Println("trying", ep.URL)
		if ep.Order == 0 {
			return fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		}
		return nil
	})
	fmt.Println("error:", err)

	err = e.Do(context.Background(), "insurability:v2", func(ctx context.Context, ep bcp.Endpoint) error {
		return fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	})
	var ue *bcp.UnavailableError
	fmt.Println(errors.Is(err, bcp.ErrUnavailable), errors.As(err, &ue) && len(ue.Attempts) == 2)
	// Output:
	// trying https://services.ehealth.fgov.be/Insurability/v2
	// trying https://prod.mycarenet.be:9443/ehealth/bcp/insurability
	// error: <nil>
	// true true
}
