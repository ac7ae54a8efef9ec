package totp

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Every path of UseRecoveryCode computes exactly one recovery-code hash:
// a right code, a used one, a wrong one, a malformed one, an over-long
// one, and a right one on a locked account (TOT-11, A12: no path answers
// sooner for lack of work).
func TestRecoveryCodeWorkIsEqual(t *testing.T) {
	var hashes atomic.Int64
	testHookRecoveryHash = func() { hashes.Add(1) }
	t.Cleanup(func() { testHookRecoveryHash = nil })

	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "totp", Now: clock, Logger: quiet,
		Policy: ratelimit.LockoutPolicy{MaxFailures: 4, AccountMaxFailures: 4}})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, KeyRingKeyLen)
	rand.Read(key)
	ring, _ := NewKeyRing("k", map[string][]byte{"k": key})
	a, err := New(Config{Store: store, Sealer: ring, Lockout: lockout, Issuer: "t", Now: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.Begin(ctx, "u", "u")
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Confirm(ctx, "u", e.Token, string(codeAt(e.Secret(), algSHA1, 6, uint64(now.Unix()/30))), ratelimit.Source{}, ConfirmOptions{})
	if err != nil {
		t.Fatal(err)
	}
	codes := c.RecoveryCodes
	try := func(name, code string, wantOK bool) {
		t.Helper()
		hashes.Store(0)
		_, err := a.UseRecoveryCode(ctx, "u", code, ratelimit.Source{})
		if (err == nil) != wantOK {
			t.Errorf("%s: err = %v, want success %v", name, err, wantOK)
		}
		if n := hashes.Load(); n != 1 {
			t.Errorf("%s: %d recovery-code hashes computed, want 1", name, n)
		}
	}
	try("right", codes[0].Reveal(), true)
	try("used", codes[0].Reveal(), false)
	try("wrong", strings.Repeat("7", 32), false)
	try("malformed", "not a code", false)
	try("over-long", strings.Repeat("1", 300), false) // the fourth failure: it locks
	if _, err := a.UseRecoveryCode(ctx, "u", codes[1].Reveal(), ratelimit.Source{}); !errors.Is(err, ratelimit.ErrLocked) {
		t.Fatalf("after four failures: %v, want locked", err)
	}
	try("locked", codes[2].Reveal(), false)
}
