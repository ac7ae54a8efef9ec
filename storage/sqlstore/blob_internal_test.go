package sqlstore

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Blob arguments outside the bounds of package storage are refused before
// any query runs: on a closed Store the error is the bounds error, not
// the pool's "database is closed".
func TestBlobBoundsCheckedBeforeTheDatabase(t *testing.T) {
	st, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	longID := strings.Repeat("a", storage.MaxUserIDLen+1)
	longName := strings.Repeat("n", storage.MaxBlobNameLen+1)
	tooBig := make([]byte, storage.MaxBlobDataLen+1)
	for name, call := range map[string]func() error{
		"GetBlob/empty user ID":    func() error { _, err := st.GetBlob(ctx, "", "n"); return err },
		"GetBlob/long user ID":     func() error { _, err := st.GetBlob(ctx, longID, "n"); return err },
		"GetBlob/empty name":       func() error { _, err := st.GetBlob(ctx, "alice", ""); return err },
		"GetBlob/long name":        func() error { _, err := st.GetBlob(ctx, "alice", longName); return err },
		"PutBlob/empty user ID":    func() error { return st.PutBlob(ctx, "", "n", []byte("x"), 0) },
		"PutBlob/long user ID":     func() error { return st.PutBlob(ctx, longID, "n", []byte("x"), 0) },
		"PutBlob/empty name":       func() error { return st.PutBlob(ctx, "alice", "", []byte("x"), 0) },
		"PutBlob/long name":        func() error { return st.PutBlob(ctx, "alice", longName, []byte("x"), 0) },
		"PutBlob/too much data":    func() error { return st.PutBlob(ctx, "alice", "n", tooBig, 0) },
		"ListBlobs/empty user ID":  func() error { _, err := st.ListBlobs(ctx, "", "", 1); return err },
		"ListBlobs/long user ID":   func() error { _, err := st.ListBlobs(ctx, longID, "", 1); return err },
		"ListBlobs/long after":     func() error { _, err := st.ListBlobs(ctx, "alice", longName, 1); return err },
		"ListBlobs/limit 0":        func() error { _, err := st.ListBlobs(ctx, "alice", "", 0); return err },
		"DeleteBlobs/empty user":   func() error { return st.DeleteBlobs(ctx, "") },
		"DeleteBlobs/long user ID": func() error { return st.DeleteBlobs(ctx, longID) },
	} {
		if err := call(); !errors.Is(err, errBounds) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want the bounds error", name, err)
		}
	}
	// A version that cannot exist is a conflict, found without a query too.
	if err := st.PutBlob(ctx, "alice", "n", nil, math.MaxUint64); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutBlob(expect MaxUint64) on a closed Store: %v, want ErrConflict", err)
	}
}
