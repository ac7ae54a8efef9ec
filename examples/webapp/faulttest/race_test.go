//go:build race

package faulttest

// raceEnabled: this test runs with the race detector (go test -race, as
// in CI), and builds the web app with it too.
const raceEnabled = true
