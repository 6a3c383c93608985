package cache_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a Store starts (committer, purge, warmers, replay workers)
// must be gone once the tests have closed their stores.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
