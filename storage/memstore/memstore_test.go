package memstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return memstore.New() })
}

// The zero value is a usable, empty store.
func TestConformanceZeroValue(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return new(memstore.Store) })
}

// Values keyhold never passes are refused with an error of their own (not
// ErrNotFound, not ErrConflict), and nothing is stored.
func TestRefusesOutOfBoundsValues(t *testing.T) {
	ctx := t.Context()
	long := strings.Repeat("a", storage.MaxUserIDLen+1)
	tooBig := make([]byte, storage.MaxVaultDataLen+1)

	for _, tc := range []struct {
		name string
		call func(s *memstore.Store) error
	}{
		{"GetVault/empty user ID", func(s *memstore.Store) error { _, err := s.GetVault(ctx, ""); return err }},
		{"GetVault/long user ID", func(s *memstore.Store) error { _, err := s.GetVault(ctx, long); return err }},
		{"PutVault/empty user ID", func(s *memstore.Store) error { return s.PutVault(ctx, "", []byte("x"), 0) }},
		{"PutVault/long user ID", func(s *memstore.Store) error { return s.PutVault(ctx, long, []byte("x"), 0) }},
		{"PutVault/too much data", func(s *memstore.Store) error { return s.PutVault(ctx, "alice", tooBig, 0) }},
		{"DeleteVault/empty user ID", func(s *memstore.Store) error { return s.DeleteVault(ctx, "", 0) }},
		{"DeleteVault/long user ID", func(s *memstore.Store) error { return s.DeleteVault(ctx, long, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New()
			err := tc.call(s)
			if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
				t.Fatalf("got %v, want an error that is neither ErrNotFound nor ErrConflict", err)
			}
			if !strings.HasPrefix(err.Error(), "memstore: ") {
				t.Errorf("error %q is not prefixed with the package name", err)
			}
			for _, u := range []string{"alice", long[:storage.MaxUserIDLen]} {
				if _, err := s.GetVault(ctx, u); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetVault(%.8q…) after the refusal: %v, want ErrNotFound", u, err)
				}
			}
		})
	}
}

// A context that is done wins over a refusal: it is checked first.
func TestContextCheckedFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := memstore.New()
	if err := s.PutVault(ctx, "", nil, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("PutVault with a cancelled context and an empty user ID: %v, want context.Canceled", err)
	}
}

// Many users written and read at once, for the race detector: the suite
// races goroutines on one record, this on the map.
func TestConcurrentUsers(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	const n = 64
	errs := make(chan error, 3*n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			u := string(rune('A' + i))
			errs <- s.PutVault(ctx, u, []byte(u), 0)
			rec, err := s.GetVault(ctx, u)
			if err == nil && (rec.Version != 1 || string(rec.Data) != u) {
				err = errors.New("wrong record for " + u)
			}
			errs <- err
			errs <- s.DeleteVault(ctx, u, 1)
		}()
	}
	for range n {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
