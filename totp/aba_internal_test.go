package totp

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// pausingFactors holds the first PutFactors of a goroutine marked by
// holdPut until release is closed, after telling reached.
type pausingFactors struct {
	*memstore.Store
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

type holdKey struct{}

func (p *pausingFactors) PutFactors(ctx context.Context, userID string, data []byte, expect uint64) error {
	if ctx.Value(holdKey{}) != nil {
		held := false
		p.once.Do(func() { held = true })
		if held {
			close(p.reached)
			<-p.release
		}
	}
	return p.Store.PutFactors(ctx, userID, data, expect)
}

// A Verify that read the record, then stalls while the user removes
// their only authenticator and enrolls a new one, must not write the old
// record back over the new one: the emptied record was kept (its version
// grew), so the stale write conflicts. Were the emptied record deleted,
// the new enrollment would be version 1 again, the stale write expecting
// 1 would succeed, and the removed authenticator (a lost phone) would be
// back.
func TestStaleVerifyCannotRestoreRemovedAuthenticator(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	mem := memstore.New()
	store := &pausingFactors{Store: mem, reached: make(chan struct{}), release: make(chan struct{})}
	quiet := slog.New(slog.DiscardHandler)
	lockout, err := ratelimit.NewLockout(mem, ratelimit.LockoutOptions{Name: "totp", Now: clock, Logger: quiet})
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
	var codes []RecoveryCode
	enroll := func() (string, []byte) {
		t.Helper()
		e, err := a.Begin(ctx, "u", "u")
		if err != nil {
			t.Fatal(err)
		}
		secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret())
		c, err := a.Confirm(ctx, "u", e.Token, string(codeAt(e.Secret(), algSHA1, 6, uint64(now.Unix()/30))), ratelimit.Source{}, ConfirmOptions{})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c.RecoveryCodes...)
		return c.Authenticator.ID, secret
	}
	oldID, oldSecret := enroll()
	// Every recovery code used: removing the authenticator leaves nothing
	// in the record, the case where deleting it would be tempting.
	for _, c := range codes {
		if _, err := a.UseRecoveryCode(ctx, "u", c.Reveal(), ratelimit.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(30 * time.Second)
	oldCode := string(codeAt(b32.EncodeToString(oldSecret), algSHA1, 6, uint64(now.Unix()/30)))

	done := make(chan error, 1)
	go func() { done <- a.Verify(context.WithValue(ctx, holdKey{}, true), "u", oldCode, ratelimit.Source{}) }()
	<-store.reached // Verify has read the record and matched the code; its write waits
	if err := a.Remove(ctx, "u", oldID); err != nil {
		t.Fatal(err)
	}
	newID, _ := enroll()
	close(store.release)
	if err := <-done; err == nil {
		t.Error("the stalled Verify succeeded after its authenticator was removed")
	}
	list, err := a.Authenticators(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != newID {
		t.Fatalf("after the stalled Verify, the user has %+v; want only the new authenticator %s", list, newID)
	}
	if fr, err := mem.GetFactors(ctx, "u"); err != nil || fr.Version < 13 {
		t.Errorf("factor record version %d, %v: the emptied record should have been kept", fr.Version, err)
	}
}
