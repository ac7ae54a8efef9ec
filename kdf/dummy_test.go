package kdf

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

// runRecorder collects the KDF runs a Hasher performs, through its test
// hook.
type runRecorder struct {
	mu   sync.Mutex
	runs []kdfRun
}

func recordRuns(h *Hasher) *runRecorder {
	r := &runRecorder{}
	h.runHook = func(run kdfRun) {
		r.mu.Lock()
		r.runs = append(r.runs, run)
		r.mu.Unlock()
	}
	return r
}

// take returns the runs recorded since the last call.
func (r *runRecorder) take() []kdfRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	runs := r.runs
	r.runs = nil
	return runs
}

// TestVerifyDummyWorkEqualsVerify is issue 10, item 4: for a hash at the
// Hasher's current Params (and pepper), Verify with a wrong password and
// VerifyDummy perform the same number of KDF runs at the same parameters,
// whatever the password: ASCII, full-width (changed by NFKC), decomposed
// (changed by NFKC), not UTF-8, or over the length limit. Work is counted
// through the Hasher's run hook, not timed. Before the fix a password
// that NFKC changes cost Verify two runs and VerifyDummy one.
func TestVerifyDummyWorkEqualsVerify(t *testing.T) {
	t.Parallel()
	cheap := Params{Algorithm: Argon2id, Time: 3, MemoryKiB: MinArgon2MemoryKiBAtT3, Threads: 1, SaltLen: 16, KeyLen: 32}
	pepper, err := NewPepper("p1", []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	passwords := []struct {
		name string
		pw   []byte
		runs int // unpeppered; a peppered Hasher always makes one
	}{
		{"ascii", []byte("correct horse battery staple"), 1},
		{"full-width", []byte("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13"), 2},
		{"nfd", []byte("cafe\u0301 au lait"), 2},
		{"nbsp", []byte("two\u00a0words"), 2},
		{"invalid-utf8", []byte{'p', 0xff, 0xfe, 'w'}, 1},
		{"over-long", []byte(strings.Repeat("a", DefaultMaxPasswordBytes+1)), 0},
	}
	for _, cfg := range []struct {
		name string
		cfg  Config
	}{
		{"unpeppered", Config{Params: cheap}},
		{"peppered", Config{Params: cheap, Pepper: pepper}},
	} {
		h := newTestHasher(t, cfg.cfg)
		rec := recordRuns(h)
		own, err := h.Hash(bg, []byte("the account's real password"))
		if err != nil {
			t.Fatal(err)
		}
		rec.take()
		for _, c := range passwords {
			_, verr := h.Verify(bg, own, c.pw)
			real := rec.take()
			derr := h.VerifyDummy(bg, c.pw)
			dummy := rec.take()
			if !slices.Equal(real, dummy) {
				t.Errorf("%s/%s: Verify made runs %+v, VerifyDummy %+v", cfg.name, c.name, real, dummy)
			}
			want := c.runs
			if cfg.cfg.Pepper.ID() != "" && want > 1 {
				want = 1
			}
			if len(real) != want {
				t.Errorf("%s/%s: %d runs, want %d", cfg.name, c.name, len(real), want)
			}
			for _, r := range real {
				if r != cheap.run() {
					t.Errorf("%s/%s: run %+v, want the Hasher's params %+v", cfg.name, c.name, r, cheap.run())
				}
			}
			if errors.Is(verr, ErrTooLong) != errors.Is(derr, ErrTooLong) || (verr == nil) || derr == nil {
				t.Errorf("%s/%s: Verify = %v, VerifyDummy = %v", cfg.name, c.name, verr, derr)
			}
		}
	}
}

// The hook also sees the second try of an imported, unnormalised hash,
// which is what makes it verify: the count above is of real work.
func TestVerifyRunsCountSecondTry(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	rec := recordRuns(h)
	full := []byte("\uff50\uff57 one two three")
	if err := h.VerifyDummy(bg, full); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	if n := len(rec.take()); n != 2 {
		t.Fatalf("VerifyDummy of a full-width password made %d runs, want 2", n)
	}
}

// retainingHash is a stored hash that keeps every input it is given, so a
// test can look at those bytes after Verify has returned.
type retainingHash struct {
	dummyHash
	seen [][]byte
}

func (r *retainingHash) matches(in []byte) bool {
	r.seen = append(r.seen, in)
	return false
}

// TestVerifyClearsItsCopies is issue 10, item 16 (kdf part): the NFKC
// copy and the peppered form of a password that Verify makes are zeroed
// once the runs are done, and the caller's slice is left as it was.
func TestVerifyClearsItsCopies(t *testing.T) {
	t.Parallel()
	pepper, err := NewPepper("p1", []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		pepper Pepper
		copies int // inputs that are copies of ours
	}{{"unpeppered", Pepper{}, 1}, {"peppered", pepper, 1}} {
		h := newTestHasher(t, Config{Pepper: c.pepper})
		pw := []byte("\uff50\uff41\uff53\uff53 full-width")
		orig := slices.Clone(pw)
		stored := &retainingHash{dummyHash: dummyHash{params: h.params, pepper: c.pepper.ID()}}
		if _, err := h.verifyStored(bg, stored, pw); !errors.Is(err, ErrMismatch) {
			t.Fatal(err)
		}
		if !slices.Equal(pw, orig) {
			t.Fatalf("%s: the caller's password was modified", c.name)
		}
		cleared := 0
		for _, in := range stored.seen {
			if &in[0] == &pw[0] {
				continue // the caller's own bytes, tried as received
			}
			if slices.ContainsFunc(in, func(b byte) bool { return b != 0 }) {
				t.Errorf("%s: a copy of the password (%d bytes) was not cleared", c.name, len(in))
			}
			cleared++
		}
		if cleared != c.copies {
			t.Errorf("%s: %d copies seen, want %d", c.name, cleared, c.copies)
		}
	}
}
