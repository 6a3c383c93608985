//go:build race

package faulttest

// raceEnabled says whether the test binary runs with the race detector (figures are slower).
const raceEnabled = true
