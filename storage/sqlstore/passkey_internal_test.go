package sqlstore

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// Passkey arguments outside the bounds of package storage are refused
// before any query runs: on a closed Store the error is the bounds error,
// not the pool's "database is closed".
func TestPasskeyBoundsCheckedBeforeTheDatabase(t *testing.T) {
	st, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "keyhold.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	handle := make([]byte, storage.PasskeyHandleLen)
	rec := func(f func(r *storage.PasskeyRecord)) storage.PasskeyRecord {
		r := storage.PasskeyRecord{UserID: "alice", Handle: handle, CredentialIDs: [][]byte{[]byte("a"), []byte("b")}}
		f(&r)
		return r
	}
	tooMany := make([][]byte, storage.MaxPasskeysPerUser+1)
	for i := range tooMany {
		tooMany[i] = []byte{byte(i)}
	}
	for name, call := range map[string]func() error{
		"GetPasskeys/empty user ID":    func() error { _, err := st.GetPasskeys(ctx, ""); return err },
		"GetPasskeys/long user ID":     func() error { _, err := st.GetPasskeys(ctx, long); return err },
		"DeletePasskeys/empty user ID": func() error { return st.DeletePasskeys(ctx, "", 1) },
		"DeletePasskeys/long user ID":  func() error { return st.DeletePasskeys(ctx, long, 1) },
		"PutPasskeys/empty user ID": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.UserID = "" }), 0)
		},
		"PutPasskeys/long user ID": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.UserID = long }), 0)
		},
		"PutPasskeys/short handle": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.Handle = handle[1:] }), 1)
		},
		"PutPasskeys/empty credential ID": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.CredentialIDs[1] = nil }), 0)
		},
		"PutPasskeys/long credential ID": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.CredentialIDs[0] = make([]byte, storage.MaxCredentialIDLen+1) }), 0)
		},
		"PutPasskeys/too many credential IDs": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.CredentialIDs = tooMany }), 0)
		},
		"PutPasskeys/credential ID twice": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.CredentialIDs[1] = []byte("a") }), 0)
		},
		"PutPasskeys/too much data": func() error {
			return st.PutPasskeys(ctx, rec(func(r *storage.PasskeyRecord) { r.Data = make([]byte, storage.MaxPasskeyDataLen+1) }), 0)
		},
		"UserByHandle/long":      func() error { _, err := st.UserByHandle(ctx, append(handle, 0)); return err },
		"UserByCredential/empty": func() error { _, err := st.UserByCredential(ctx, nil); return err },
		"UserByCredential/long": func() error {
			_, err := st.UserByCredential(ctx, make([]byte, storage.MaxCredentialIDLen+1))
			return err
		},
	} {
		if err := call(); !errors.Is(err, errBounds) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want the bounds error", name, err)
		}
	}
	// A version that cannot exist is a conflict, found without a query too.
	if err := st.PutPasskeys(ctx, rec(func(*storage.PasskeyRecord) {}), math.MaxUint64); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutPasskeys(expect MaxUint64) on a closed Store: %v, want ErrConflict", err)
	}
}
