//go:build !race

package main

// attack16Race reports a build with the race detector, whose slowness
// asks for smaller timing samples.
const attack16Race = false
