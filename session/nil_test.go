package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyhold/keyhold/internal/niltest"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Issue 11: no exported method panics on a nil *Manager, what a failed New
// leaves behind: each returns an error matching ErrInvalidInput (zero
// values without an error result), and its middleware answers 500.
func TestNilReceivers(t *testing.T) {
	niltest.Methods(t, (*session.Manager)(nil), session.ErrInvalidInput)
}

// Unlock refuses a nil vault (what a failed vault.Unlock returns) before
// touching the session.
func TestUnlockNilVault(t *testing.T) {
	m, err := session.New(memstore.New(), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(context.Background(), nil); !errors.Is(err, session.ErrInvalidInput) {
		t.Fatalf("Unlock(nil): %v, want ErrInvalidInput", err)
	}
}
