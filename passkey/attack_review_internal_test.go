package passkey

// Attack review of issue 13 (package passkey): each test here showed one
// finding failing on the code it was written against, and passes since
// its fix. Two findings are covered elsewhere: an unlock with a passkey
// that has no slot yet (TestUnlockWithoutSlotIsNotCounted), and a flood
// of begun sign-ins, which the app bounds with a per-address limit on its
// BeginLogin handler (documented there; examples/webapp does it).
//
// Races use forced interleavings: hookStore pauses one call of the
// passkey store at a chosen point while the test runs the competing
// operation to completion, then lets it go on.

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

// hookStore is a memstore whose PutPasskeys can be paused once, before or
// after the write, for one user.
type hookStore struct {
	*memstore.Store
	mu      sync.Mutex
	user    string
	before  bool          // pause before the write (else after a successful one)
	reached chan struct{} // closed when the paused call arrives
	release chan struct{} // closed by the test to let it go on
	armed   bool
}

func (h *hookStore) arm(user string, before bool) {
	h.mu.Lock()
	h.user, h.before, h.armed = user, before, true
	h.reached, h.release = make(chan struct{}), make(chan struct{})
	h.mu.Unlock()
}

func (h *hookStore) take(user string, before bool) (chan struct{}, chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.armed || h.user != user || h.before != before {
		return nil, nil, false
	}
	h.armed = false
	return h.reached, h.release, true
}

func (h *hookStore) PutPasskeys(ctx context.Context, r storage.PasskeyRecord, expect uint64) error {
	if reached, release, ok := h.take(r.UserID, true); ok {
		close(reached)
		<-release
	}
	err := h.Store.PutPasskeys(ctx, r, expect)
	if err == nil {
		if reached, release, ok := h.take(r.UserID, false); ok {
			close(reached)
			<-release
		}
	}
	return err
}

// wait waits for the armed call to pause; a fix that no longer makes the
// call fails the test instead of hanging it (re-aim the interleaving).
func (h *hookStore) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the paused PutPasskeys was never reached: re-aim this interleaving")
	}
}

// newHookEnv is a softEnv whose passkey store is a hookStore over the
// harness's memstore.
func newHookEnv(t *testing.T) (*softEnv, *hookStore) {
	t.Helper()
	var hs *hookStore
	s := newSoftEnv(t, func(c *Config) {
		hs = &hookStore{Store: c.Store.(*memstore.Store)}
		c.Store = hs
	})
	return s, hs
}

// deleteAccount runs vault/account.Delete's steps for userID as it does
// them (that package imports this one, so it cannot be imported here):
// RevokeAll, vault Delete, passkeys Delete, RevokeAll.
func (s *softEnv) deleteAccount(userID string) {
	s.t.Helper()
	ctx := context.Background()
	if err := s.sessions.RevokeAll(ctx, userID); err != nil {
		s.t.Fatal(err)
	}
	if err := s.vault.Delete(ctx, userID); err != nil {
		s.t.Fatal(err)
	}
	if err := s.m.Delete(ctx, userID); err != nil {
		s.t.Fatal(err)
	}
	if err := s.sessions.RevokeAll(ctx, userID); err != nil {
		s.t.Fatal(err)
	}
}

// Finding 1: PKY-15 step-up for adding a passkey is bypassed by removing
// the user's passkeys first. A recent password-only session (an attacker
// with a phished password, for an app where a passkey user may also sign
// in with the password, as examples/webapp does when no TOTP is enrolled)
// is refused BeginRegistration with ErrStepUpRequired because the user
// has a passkey; but Remove needs no multi-factor session, and once the
// user has no passkey, adding one needs none either. The attacker
// replaces the victim's passkey with their own and then gets passkey
// (multi-factor) sessions. Fixed: removing a passkey needs what adding one
// needs, so the removal itself is refused (ErrStepUpRequired), nothing
// changes, and adding stays refused.
func TestAttackRemoveThenAddBypassesStepUp(t *testing.T) {
	s := newSoftEnv(t, nil)
	victim := newBrowser()
	s.harness.login(victim, "alice", false)
	c := s.mustRegister(victim)

	attacker := newBrowser()
	s.harness.login(attacker, "alice", false) // password only, complete, recent
	if info := s.current(attacker); info.MultiFactor {
		t.Fatalf("precondition: a password session is not multi-factor: %+v", info)
	}
	var err error
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginRegistration(r, "mallory") })
	if !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("precondition: adding a passkey with the password alone: %v, want ErrStepUpRequired", err)
	}
	before := s.stored("alice")
	nEvents := len(s.events.kinds())
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	if !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("a password-only session removes alice's passkey: %v, want ErrStepUpRequired", err)
	}
	if after := s.stored("alice"); after.Version != before.Version || len(after.CredentialIDs) != 1 {
		t.Fatalf("the refused Remove changed the record: version %d → %d, %d credentials", before.Version, after.Version, len(after.CredentialIDs))
	}
	if len(s.events.kinds()) != nEvents || s.current(victim).UserID != "alice" || s.current(attacker).UserID != "alice" {
		t.Fatal("the refused Remove notified or revoked sessions")
	}
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginRegistration(r, "mallory") })
	if !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("after the refused removal, adding a passkey with the password alone: %v, want ErrStepUpRequired", err)
	}
	// alice's passkey still signs in.
	if _, err := s.login(newBrowser(), c, nil); err != nil {
		t.Fatalf("alice's passkey after the refused removal: %v", err)
	}
}

// Finding 2: a passkey removed (PKY-15 "a revoked one fails at once")
// still yields a live session. FinishLogin verifies and stores the
// counter, then calls Sessions.Login; a Remove that runs in between
// removes the passkey and revokes the user's other sessions, and the
// login's session, created after that revocation, survives.
func TestAttackLoginRaceRemoveKeepsSession(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	stLogin(s.harness, alice, "alice", session.FactorPassword|session.FactorTOTP, false, false)
	c := s.mustRegister(alice)

	thief := newBrowser()
	resp := s.auth.get(t, c, s.beginLogin(thief), nil)
	hs.arm("alice", false) // pause after the login's counter write
	done := make(chan error, 1)
	go func() {
		_, err := s.finishLogin(thief, resp)
		done <- err
	}()
	hs.wait(t)
	// alice removes the passkey (she signed in with the password and TOTP
	// within StepUpMaxAge) while the login is between its store and its
	// session.
	var err error
	s.doTLS(alice, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	if err != nil {
		close(hs.release)
		<-done
		t.Fatalf("Remove: %v", err)
	}
	close(hs.release)
	if err := <-done; err != nil {
		t.Logf("the login failed (%v): fixed", err)
		return
	}
	if info := s.current(thief); info.UserID == "alice" {
		t.Errorf("the removed passkey's login holds a live session after Remove revoked the others: %+v", info)
	}
}

// Finding 3a: a passkey login racing account deletion leaves a session of
// the deleted user. vault/account.Delete's last RevokeAll is meant to end
// "a session that logged in after step 1", but a login that verified
// before Passkeys.Delete and calls Sessions.Login after the last
// RevokeAll is not ended by anything.
func TestAttackLoginRaceAccountDelete(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	s.harness.login(alice, "alice", false)
	c := s.mustRegister(alice)

	b := newBrowser()
	resp := s.auth.get(t, c, s.beginLogin(b), nil)
	hs.arm("alice", false)
	done := make(chan error, 1)
	go func() {
		_, err := s.finishLogin(b, resp)
		done <- err
	}()
	hs.wait(t)
	s.deleteAccount("alice")
	close(hs.release)
	if err := <-done; err != nil {
		t.Logf("login failed (%v): fixed", err)
		return
	}
	if info := s.current(b); info.UserID == "alice" {
		t.Errorf("a session of the deleted user alice outlives account deletion: %+v", info)
	}
}

// Finding 3b: a registration racing account deletion re-creates the
// deleted user's passkey record (and handle). FinishRegistration checks
// the session (Recheck) before its first PutPasskeys with expect 0; an
// account deletion in between removes the sessions and (nothing of) the
// passkeys, then the put succeeds. The deleted user ID now has a passkey
// that signs in (creating sessions for a deleted account, and for any
// new account that is later given the same user ID).
func TestAttackRegistrationRaceAccountDelete(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
	opts := s.beginRegistration(alice)
	c, resp := s.auth.create(t, opts, 0, nil)
	hs.arm("alice", true) // pause before the registration's write
	done := make(chan error, 1)
	go func() {
		_, err := s.finishRegistration(alice, resp, "key")
		done <- err
	}()
	hs.wait(t)
	s.deleteAccount("alice")
	close(hs.release)
	regErr := <-done
	sr, err := s.store.GetPasskeys(context.Background(), "alice")
	if errors.Is(err, storage.ErrNotFound) {
		return // fixed
	}
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser()
	res, lerr := s.login(b, c, nil)
	t.Errorf("after account deletion alice has a passkey record (%d credentials; FinishRegistration returned %v); "+
		"a login with it: %+v, %v", len(sr.CredentialIDs), regErr, res, lerr)
}

// Finding 5: Remove answers ErrNotFound or ErrStepUpRequired depending on
// whether userID has that credential, before checking that the session is
// userID's: any signed-in user probes another user's passkeys by ID. Bob's
// session, password-only or multi-factor, gets ErrStepUpRequired for
// both, and alice's passkey stays.
func TestAttackRemoveProbesOtherUsers(t *testing.T) {
	s := newSoftEnv(t, nil)
	alice := newBrowser()
	s.harness.login(alice, "alice", false)
	c := s.mustRegister(alice)
	before := s.stored("alice")
	for name, f := range map[string]session.Factors{"password": 0, "password and TOTP": session.FactorPassword | session.FactorTOTP} {
		bob := newBrowser()
		stLogin(s.harness, bob, "bob", f, false, false)
		var has, hasNot error
		s.doTLS(bob, func(w http.ResponseWriter, r *http.Request) { has = s.m.Remove(r, "alice", b64(c.ID)) })
		s.doTLS(bob, func(w http.ResponseWriter, r *http.Request) {
			hasNot = s.m.Remove(r, "alice", b64([]byte("no such credential")))
		})
		if !errors.Is(has, ErrStepUpRequired) {
			t.Fatalf("bob (%s) removing alice's passkey: %v, want ErrStepUpRequired", name, has)
		}
		if !errors.Is(hasNot, ErrStepUpRequired) {
			t.Errorf("bob's (%s) Remove of a credential alice does not have answers %v, of one she has %v: an oracle on other users' passkeys", name, hasNot, has)
		}
	}
	if after := s.stored("alice"); after.Version != before.Version {
		t.Fatalf("bob's refused removals changed alice's record: version %d → %d", before.Version, after.Version)
	}
}

// Finding 6: the unlock set-up path adds a vault slot for a passkey that a
// concurrent Remove has just removed (slot first, then the credential): an
// orphan secret slot that no passkey lists, that List cannot show and
// Remove cannot reach, and that survives until a rotation.
func TestAttackUnlockSetupRaceRemoveLeavesOrphanSlot(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	// Removing needs a multi-factor session: the password and TOTP.
	stLogin(s.harness, alice, "alice", session.FactorPassword|session.FactorTOTP, false, true)
	c := s.mustRegister(alice) // vault unlocked: gets its slot
	// The phone signs in with the passkey, unlocks, and runs an unlock
	// ceremony with the vault unlocked (set-up).
	phone := newBrowser()
	if _, err := s.login(phone, c, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.unlock(phone, c, nil); err != nil {
		t.Fatal(err)
	}
	resp := s.auth.get(t, c, s.beginUnlock(phone), nil)
	hs.arm("alice", false)
	done := make(chan error, 1)
	go func() {
		var err error
		s.doTLS(phone, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.FinishUnlock(r, resp, ratelimit.Source{}) })
		done <- err
	}()
	hs.wait(t)
	var err error
	s.doTLS(alice, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	close(hs.release)
	uerr := <-done
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	sid, _ := vault.SecretSlotID(c.ID)
	slots, serr := s.vault.Slots(context.Background(), "alice")
	if serr != nil {
		t.Fatal(serr)
	}
	for _, sl := range slots {
		if sl.ID == sid {
			t.Errorf("the removed passkey's vault slot is back (FinishUnlock set-up after Remove: %v); List shows no passkey for it", uerr)
		}
	}
}
