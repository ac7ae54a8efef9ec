package kdf

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestKDF17NoExpiryMarkCompromised is KDF-17: no configuration of the
// package has a maximum password age, and a hash marked by MarkCompromised
// answers the right password with ErrPasswordChangeRequired (a match that
// must be changed), a wrong one with ErrMismatch after exactly the same KDF
// runs as against the unmarked hash, and hashing the new password gives an
// unmarked hash.
func TestKDF17NoExpiryMarkCompromised(t *testing.T) {
	t.Parallel()
	t.Run("NoMaxAge", func(t *testing.T) {
		for _, typ := range []reflect.Type{
			reflect.TypeFor[Config](), reflect.TypeFor[PolicyConfig](), reflect.TypeFor[Params](),
			reflect.TypeFor[Limits](), reflect.TypeFor[PolicyContext](),
		} {
			for f := range typ.Fields() {
				name := strings.ToLower(f.Name)
				for _, w := range []string{"age", "expir", "rotat", "lifetime", "valid"} {
					if strings.Contains(name, w) {
						t.Errorf("%s.%s looks like a password expiry option", typ.Name(), f.Name)
					}
				}
			}
		}
	})

	cheap := Params{Algorithm: Argon2id, Time: 3, MemoryKiB: MinArgon2MemoryKiBAtT3, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := newTestHasher(t, Config{Params: cheap})
	rec := recordRuns(h)
	right := []byte("correct horse battery staple")
	own, err := h.Hash(bg, right)
	if err != nil {
		t.Fatal(err)
	}
	marked, err := MarkCompromised(own)
	if err != nil {
		t.Fatal(err)
	}
	if marked == own || !IsMarkedCompromised(marked) || IsMarkedCompromised(own) {
		t.Fatalf("marking did not mark: IsMarkedCompromised(own)=%v", IsMarkedCompromised(own))
	}
	if again, err := MarkCompromised(marked); err != nil || again != marked {
		t.Fatalf("marking twice changed the hash or failed: %v", err)
	}
	rec.take()

	t.Run("RightPassword", func(t *testing.T) {
		needsRehash, err := h.Verify(bg, marked, right)
		if !errors.Is(err, ErrPasswordChangeRequired) || errors.Is(err, ErrMismatch) {
			t.Fatalf("Verify(marked, right) = %v, want ErrPasswordChangeRequired", err)
		}
		if !needsRehash {
			t.Error("a marked hash must report needsRehash")
		}
	})
	t.Run("WrongPasswordEqualWork", func(t *testing.T) {
		for _, pw := range [][]byte{[]byte("wrong password"), []byte("\uff57\uff52\uff4f\uff4e\uff47 full width")} {
			rec.take()
			if _, err := h.Verify(bg, own, pw); !errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify(own, wrong) = %v", err)
			}
			plain := rec.take()
			if _, err := h.Verify(bg, marked, pw); !errors.Is(err, ErrMismatch) || errors.Is(err, ErrPasswordChangeRequired) {
				t.Fatalf("Verify(marked, wrong) = %v, want ErrMismatch", err)
			}
			if got := rec.take(); !slices.Equal(got, plain) || len(got) == 0 {
				t.Fatalf("marked hash made runs %+v, unmarked %+v", got, plain)
			}
		}
	})
	t.Run("NewHashClearsMark", func(t *testing.T) {
		newPW := []byte("a brand new passphrase")
		fresh, err := h.Hash(bg, newPW)
		if err != nil {
			t.Fatal(err)
		}
		if IsMarkedCompromised(fresh) {
			t.Fatal("a new hash is marked")
		}
		if _, err := h.Verify(bg, fresh, newPW); err != nil {
			t.Fatalf("Verify(new hash) = %v", err)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		if _, err := MarkCompromised(""); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("MarkCompromised(\"\") = %v", err)
		}
		secret := "plaintext-password-in-a-column"
		_, err := MarkCompromised(secret)
		if !errors.Is(err, ErrUnsupportedAlgorithm) || strings.Contains(err.Error(), secret) {
			t.Errorf("MarkCompromised(plaintext) = %v", err)
		}
		if _, err := h.Verify(bg, "$keyhold-compromised$$keyhold-compromised$"+own, right); err == nil || errors.Is(err, ErrPasswordChangeRequired) {
			t.Errorf("a doubly marked hash verified: %v", err)
		}
		// An account disabled the /etc/shadow way ("!" before the hash),
		// imported as it is, stays refused: it is not a compromised mark.
		for _, disabled := range []string{"!" + own, "!!" + own} {
			if _, err := h.Verify(bg, disabled, right); err == nil || errors.Is(err, ErrPasswordChangeRequired) || !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Errorf("Verify(%q…) = %v, want ErrUnsupportedAlgorithm", disabled[:2], err)
			}
		}
	})
}
