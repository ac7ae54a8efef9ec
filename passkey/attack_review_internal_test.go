//go:build attackreview

package passkey

// Attack review of issue 13 (package passkey). Each test here demonstrates
// one finding and FAILS on the code it was written against; the build tag
// keeps them out of the main test run until the lead fixes them. Run:
//
//	go test -tags attackreview ./passkey -run Attack -v
//
// Races use forced interleavings: hookStore pauses one call of the
// passkey store at a chosen point while the test runs the competing
// operation to completion, then lets it go on.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
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
// (multi-factor) sessions.
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
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	if err != nil {
		t.Logf("Remove with the password alone refused (%v): fixed", err)
		return
	}
	s.doTLS(attacker, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginRegistration(r, "mallory") })
	if err != nil {
		t.Logf("BeginRegistration after the removal refused (%v): fixed", err)
		return
	}
	// Finish it, then sign in with the attacker's passkey.
	opts := s.beginRegistration(attacker)
	mc, resp := s.auth.create(t, opts, 0, nil)
	if _, err := s.finishRegistration(attacker, resp, "mallory"); err != nil {
		t.Fatalf("attacker's FinishRegistration: %v", err)
	}
	other := newBrowser()
	if _, err := s.login(other, mc, nil); err != nil {
		t.Fatalf("attacker's passkey login: %v", err)
	}
	t.Errorf("a password-only session replaced alice's passkey with its own (Remove, then BeginRegistration that "+
		"had just answered ErrStepUpRequired) and now signs in multi-factor: %+v", s.current(other))
}

// Finding 2: a passkey removed (PKY-15 "a revoked one fails at once")
// still yields a live session. FinishLogin verifies and stores the
// counter, then calls Sessions.Login; a Remove that runs in between
// removes the passkey and revokes the user's other sessions, and the
// login's session, created after that revocation, survives.
func TestAttackLoginRaceRemoveKeepsSession(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	s.harness.login(alice, "alice", false)
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
	// alice removes the passkey (she signed in with the password within
	// StepUpMaxAge) while the login is between its store and its session.
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

// Finding 4: BeginLogin is unauthenticated and stores a challenge per
// call for CeremonyTimeout, with no bound per source or in total: one
// client fills the challenge store (memstore's heap, Redis, the SQL
// table) at wire speed. Every trust-boundary input needs a bound.
func TestAttackChallengeFlood(t *testing.T) {
	s := newSoftEnv(t, nil)
	const n = 2000
	tokens := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		b := newBrowser() // a client that drops the cookie each time
		var err error
		s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.BeginLogin(w, r) })
		if err != nil {
			t.Logf("BeginLogin %d refused (%v): bounded", i, err)
			return
		}
		tok, _ := base64.RawURLEncoding.DecodeString(b.cookies[s.m.loginCookieName()].Value)
		tokens = append(tokens, tok)
	}
	live := 0
	for _, tok := range tokens {
		if _, err := s.store.TakeChallenge(context.Background(), loginChallengeID(tok)); err == nil {
			live++
		}
	}
	if live > 100 {
		t.Errorf("one source (198.51.100.7) holds %d pending login challenges in the store after %d BeginLogin calls: no bound", live, n)
	}
}

// Finding 5: Remove answers ErrNotFound or ErrStepUpRequired depending on
// whether userID has that credential, before checking that the session is
// userID's: any signed-in user probes another user's passkeys by ID.
func TestAttackRemoveProbesOtherUsers(t *testing.T) {
	s := newSoftEnv(t, nil)
	alice := newBrowser()
	s.harness.login(alice, "alice", false)
	c := s.mustRegister(alice)
	bob := newBrowser()
	s.harness.login(bob, "bob", false)
	var has, hasNot error
	s.doTLS(bob, func(w http.ResponseWriter, r *http.Request) { has = s.m.Remove(r, "alice", b64(c.ID)) })
	s.doTLS(bob, func(w http.ResponseWriter, r *http.Request) {
		hasNot = s.m.Remove(r, "alice", b64([]byte("no such credential")))
	})
	if !errors.Is(has, ErrStepUpRequired) {
		t.Fatalf("bob removing alice's passkey: %v, want ErrStepUpRequired", has)
	}
	if !errors.Is(hasNot, ErrStepUpRequired) {
		t.Errorf("bob's Remove of a credential alice does not have answers %v, of one she has %v: an oracle on other users' passkeys", hasNot, has)
	}
}

// Finding 6: the unlock set-up path adds a vault slot for a passkey that a
// concurrent Remove has just removed (slot first, then the credential): an
// orphan secret slot that no passkey lists, that List cannot show and
// Remove cannot reach, and that survives until a rotation.
func TestAttackUnlockSetupRaceRemoveLeavesOrphanSlot(t *testing.T) {
	s, hs := newHookEnv(t)
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
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

// Finding 7: an unlock with the user's own passkey, whose assertion
// verified, counts as a wrong credential in the lockout when the passkey
// has no vault slot yet (registered with the vault locked, or its slot
// dropped by a master-key rotation). BeginUnlock offers such passkeys,
// and the doc tells the user to just "unlock otherwise, then run this
// ceremony again", so the real user, trying the passkey the browser
// offers, locks their own account: the passkey login, and every other
// check that shares the Lockout (the password).
func TestAttackUnlockWithoutSlotLocksOwner(t *testing.T) {
	s := newSoftEnv(t, nil)
	alice := newBrowser()
	s.harness.login(alice, "alice", true) // creates the vault
	s.lock(alice)
	c, cred, err := s.register(alice, nil)
	if err != nil || !cred.PRF || cred.CanUnlock {
		t.Fatalf("precondition: a PRF passkey without a slot: %+v, %v", cred, err)
	}
	phone := newBrowser()
	if _, err := s.login(phone, c, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.unlock(phone, c, nil); !errors.Is(err, ErrUnlockFailed) {
			t.Fatalf("unlock %d: %v, want ErrUnlockFailed", i, err)
		}
	}
	// The owner's own passkey and password are now refused.
	_, lerr := s.login(newBrowser(), c, nil)
	perr := s.lockout.Check(context.Background(), "alice", ratelimit.Source{}, ratelimit.Credential{
		Verify: func(context.Context) error { return nil }, // the right password
		Dummy:  func(context.Context) error { return nil },
	})
	if lerr != nil || perr != nil {
		t.Errorf("ten unlock attempts with alice's own, verified passkey (no slot yet) locked her out: passkey login %v, password %v", lerr, perr)
	}
}
