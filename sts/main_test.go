package sts

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: Close must stop every background
// goroutine of a Provider.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
