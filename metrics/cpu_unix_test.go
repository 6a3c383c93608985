//go:build unix

package metrics_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used so far: the benchmarks
// report it per call, a figure a loaded machine inflates less than wall time (waiting for a
// core is not counted; the span exporter's and the collector's own goroutines are).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
