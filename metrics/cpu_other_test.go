//go:build !unix

package metrics_test

import "time"

// cpuTime is not measured on this system: the benchmarks report 0.
func cpuTime() time.Duration { return 0 }
