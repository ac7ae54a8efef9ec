package main

import (
	"context"
	"testing"
)

// The quickstart runs to the end without error: every step it prints is
// what the library does.
func TestQuickstartRuns(t *testing.T) {
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
