package bcp_test

import (
	"errors"
	"fmt"

	"github.com/ehgate/ehgate/bcp"
)

// A breaker on its own: two failures in a row open it, and while open it
// refuses calls without making them.
func ExampleNewBreaker() {
	b, err := bcp.NewBreaker(bcp.BreakerConfig{ConsecutiveFailures: 2})
	if err != nil {
		panic(err)
	}
	down := errors.New("connection refused")
	for range 3 {
		err := b.Call(func() error { return down })
		fmt.Println(err, "-", b.State())
	}
	// Output:
	// connection refused - closed
	// connection refused - open
	// bcp: circuit breaker open - open
}
