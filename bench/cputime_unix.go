//go:build linux || darwin

package bench

import (
	"syscall"
	"time"
)

// processCPU returns the user and system CPU time the whole process has consumed
// (getrusage RUSAGE_SELF): every thread, the GC's workers and the HTTP transport's
// goroutines included, but not the platform stand-in, which runs in its own process.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
