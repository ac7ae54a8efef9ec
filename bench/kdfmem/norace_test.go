//go:build !race

package main

// testMemoryKiB is Argon2id's m in the tests: 64 MiB, the moderate preset.
const testMemoryKiB = 64 * 1024
