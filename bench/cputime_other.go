//go:build !linux && !darwin

package bench

import "time"

// processCPU is not measured on this system (getrusage is read on linux and darwin only).
func processCPU() (time.Duration, bool) { return 0, false }
