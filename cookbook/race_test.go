//go:build race

package cookbook_test

// raceEnabled is true when the test binary was built with -race: the chapters' programs are
// then built with -race too, from the packages the race build has already compiled.
const raceEnabled = true
