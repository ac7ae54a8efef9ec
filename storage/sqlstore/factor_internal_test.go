package sqlstore

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Factor arguments outside the bounds of package storage are refused
// before any query runs: on a closed Store the error is the bounds error,
// not the pool's "database is closed".
func TestFactorBoundsCheckedBeforeTheDatabase(t *testing.T) {
	st, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	tooBig := make([]byte, storage.MaxFactorDataLen+1)
	for name, call := range map[string]func() error{
		"GetFactors/empty user ID":    func() error { _, err := st.GetFactors(ctx, ""); return err },
		"GetFactors/long user ID":     func() error { _, err := st.GetFactors(ctx, long); return err },
		"PutFactors/empty user ID":    func() error { return st.PutFactors(ctx, "", []byte("x"), 0) },
		"PutFactors/long user ID":     func() error { return st.PutFactors(ctx, long, []byte("x"), 0) },
		"PutFactors/too much data":    func() error { return st.PutFactors(ctx, "alice", tooBig, 0) },
		"DeleteFactors/empty user ID": func() error { return st.DeleteFactors(ctx, "", 0) },
		"DeleteFactors/long user ID":  func() error { return st.DeleteFactors(ctx, long, 0) },
	} {
		if err := call(); !errors.Is(err, errBounds) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want the bounds error", name, err)
		}
	}
	// A version that cannot exist is a conflict, found without a query too.
	if err := st.PutFactors(ctx, "alice", nil, math.MaxUint64); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutFactors(expect MaxUint64) on a closed Store: %v, want ErrConflict", err)
	}
}
