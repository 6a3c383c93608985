//go:build !race

package cookbook_test

// raceEnabled is false when the test binary was built without -race.
const raceEnabled = false
