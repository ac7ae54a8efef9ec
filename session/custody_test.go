package session_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

var _ vault.KeyWrapper = (*capturingWrapper)(nil)

// capturingWrapper is a vault.KeyWrapper that keeps the master key it is
// given, so the test knows the bytes it must not find in the store.
type capturingWrapper struct{ key []byte }

func (w *capturingWrapper) ID() string { return "test-capture" }
func (w *capturingWrapper) Wrap(_ context.Context, key, _ []byte) ([]byte, error) {
	w.key = bytes.Clone(key)
	return bytes.Clone(key), nil
}
func (w *capturingWrapper) Unwrap(_ context.Context, wrapped, _ []byte) ([]byte, error) {
	return bytes.Clone(wrapped), nil
}

// dumpSessions returns every byte the store holds for the user's sessions.
func dumpSessions(t *testing.T, store storage.SessionStore, user string) []byte {
	t.Helper()
	list, err := store.ListUserSessions(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, s := range list {
		all = append(all, s.ID...)
		all = append(all, s.UserID...)
		all = append(all, s.Data...)
	}
	return all
}

// SES-26, DESIGN §4: the store's bytes for an unlocked session contain
// neither the master key, nor the token, nor the passphrase; and the
// sealed keys do not open without the cookie.
func TestStoreDumpHoldsNoSecret(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	u, err := a.vault.Unlock(context.Background(), "alice", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	w := &capturingWrapper{}
	if err := a.vault.AddWrapperSlot(context.Background(), u, w); err != nil {
		t.Fatal(err)
	}
	u.Lock()
	if len(w.key) != 32 {
		t.Fatal("the wrapper saw no master key")
	}
	cookie := a.unlock(a.login("alice"))
	if a.status("/secret", cookie) != 200 {
		t.Fatal("not unlocked")
	}
	dump := dumpSessions(t, a.store, "alice")
	if len(dump) < 100 {
		t.Fatalf("dump of %d bytes: nothing stored?", len(dump))
	}
	token := mustDecodeToken(t, cookie)
	for name, secret := range map[string][]byte{
		"master key": w.key, "token": token, "cookie value": []byte(cookie), "passphrase": []byte(passphrase),
	} {
		if bytes.Contains(dump, secret) {
			t.Errorf("the store holds the %s", name)
		}
	}
	// An old cookie alone opens nothing: the pre-unlock cookie was
	// retired at unlock, and after logout the current one is too.
	a.do(request{method: "POST", target: "/logout", cookie: cookie})
	if a.status("/secret", cookie) == 200 {
		t.Error("the cookie opens the vault after logout")
	}
}

// The vault stays unlocked across instances that share a store and across
// a restart; it locks itself after LockAfter idle, and when the session
// times out.
func TestUnlockedAcrossInstancesAndAutoLock(t *testing.T) {
	store := memstore.New()
	a := newTestAppOn(t, store, session.Config{LockAfter: 10 * time.Minute, IdleTimeout: 30 * time.Minute})
	a.createVault("alice")
	cookie := a.unlock(a.login("alice"))

	// A second Manager ("another instance", or this one after a restart).
	b := newTestAppOn(t, store, session.Config{Now: a.clock.Now})
	for i := range 3 {
		if got := b.status("/secret", cookie); got != 200 {
			t.Fatalf("request %d on the second instance: %d", i, got)
		}
	}
	resp := b.do(request{method: "GET", target: "/secret", cookie: cookie})
	if got := body(resp); got != "secret of alice" {
		t.Fatalf("second instance read %q", got)
	}

	a.clock.Advance(11 * time.Minute)
	if got := a.status("/secret", cookie); got != http.StatusForbidden {
		t.Errorf("after 11 idle minutes: %d, want 403 (locked)", got)
	}
	if got := a.status("/me", cookie); got != 200 {
		t.Errorf("auto-lock logged the session out: %d", got)
	}
	if !logged(a.logs.String(), "crypt_vault_locked", "reason=idle") {
		t.Error("no crypt_vault_locked event with reason=idle")
	}
	cookie = a.unlock(cookie)
	a.clock.Advance(31 * time.Minute)
	if got := a.status("/secret", cookie); got != http.StatusUnauthorized {
		t.Errorf("after the idle timeout: %d, want 401", got)
	}
}

// Lock wipes the keys from the session but keeps it logged in.
func TestLock(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	cookie := a.unlock(a.login("alice"))
	if resp := a.do(request{method: "POST", target: "/lock", cookie: cookie}); resp.StatusCode != 200 {
		t.Fatalf("lock: %d", resp.StatusCode)
	}
	if got := a.status("/secret", cookie); got != http.StatusForbidden {
		t.Errorf("after Lock: %d, want 403", got)
	}
	if got := a.status("/me", cookie); got != 200 {
		t.Errorf("Lock logged out: %d", got)
	}
	list, _ := a.store.ListUserSessions(context.Background(), "alice")
	if len(list) != 1 || len(list[0].Data) > 120 {
		t.Errorf("the locked session still holds %d bytes", len(list[0].Data))
	}
	devices, _ := a.m.Devices(context.Background(), "alice")
	if len(devices) != 1 || devices[0].Unlocked {
		t.Errorf("Devices after Lock: %+v", devices)
	}
}

// Two sessions' sealed keys cannot be swapped: each is bound to its ID.
func TestCustodyBoundToSession(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	c1 := a.unlock(a.login("alice"))
	c2 := a.login("alice") // logged in, locked
	list, _ := a.store.ListUserSessions(context.Background(), "alice")
	if len(list) != 2 {
		t.Fatalf("%d sessions", len(list))
	}
	unlocked, locked := list[0], list[1]
	if len(unlocked.Data) < len(locked.Data) {
		unlocked, locked = locked, unlocked
	}
	// Graft the unlocked session's data onto the locked one's ID.
	locked.Data = unlocked.Data
	if err := a.store.PutSession(context.Background(), locked, locked.Version); err != nil {
		t.Fatal(err)
	}
	if got := a.status("/secret", c2); got == 200 {
		t.Error("keys sealed for one session opened in another")
	}
	if got := a.status("/secret", c1); got != 200 {
		t.Errorf("the original session: %d", got)
	}
}

func mustDecodeToken(t *testing.T, cookie string) []byte {
	t.Helper()
	b, err := b64.DecodeString(cookie)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
