// Package vectors loads known-answer test vectors for keyhold's tests.
//
// Vectors are JSON files copied byte for byte from the official sources
// (see each testdata/vectors/SOURCE.md) into the testdata directory of the
// package that uses them. [Load] checks each file's SHA-256 against the
// checksum pinned by the caller, so a copy cannot drift from its source
// unnoticed, and fails the test when a file is missing or empty: a vector
// runner never passes by loading nothing.
package vectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Load reads path, checks that its SHA-256 is sha256Hex, and decodes it into
// v. Any failure is fatal to t.
func Load(t testing.TB, path, sha256Hex string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("vectors: %v", err)
	}
	if len(data) == 0 {
		t.Fatalf("vectors: %s is empty", path)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != sha256Hex {
		t.Fatalf("vectors: %s has sha256 %s, want %s (the copy differs from its source)", path, got, sha256Hex)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("vectors: %s: %v", path, err)
	}
}
