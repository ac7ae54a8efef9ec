//go:build race

package main

// testMemoryKiB is Argon2id's m in the tests: smaller under the race
// detector, which slows the runs down, so the tests stay short.
const testMemoryKiB = 16 * 1024
