package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// TestRecordedFlow replays the recorded browser ceremonies through the
// package: a registration with the vault unlocked (the PRF output at
// registration becomes the passkey's vault slot), a usernameless login,
// then an unlock with the PRF output.
func TestRecordedFlow(t *testing.T) {
	h := newHarness(t, nil)
	alice := newBrowser()
	h.login(alice, "alice", true)
	cred, err := h.register(alice, "Laptop")
	if err != nil {
		t.Fatalf("FinishRegistration: %v\n%s", err, h.logs)
	}
	if !cred.PRF || !cred.CanUnlock || cred.Name != "Laptop" || cred.SignCount != 1 {
		t.Fatalf("registered %+v", cred)
	}
	if got := h.events.kinds(); len(got) == 0 || got[len(got)-1] != keyhold.PasskeyAdded {
		t.Errorf("events %v, want PasskeyAdded last", got)
	}

	phone := newBrowser()
	res, err := h.loginWith(phone, 0, nil)
	if err != nil {
		t.Fatalf("FinishLogin: %v\n%s", err, h.logs)
	}
	info := h.current(phone)
	if res.UserID != "alice" || info.UserID != "alice" || !info.MultiFactor || !info.Factors.Has(session.FactorPasskey) || info.Unlocked {
		t.Fatalf("login %+v, session %+v", res, info)
	}
	un, err := h.unlockWith(phone, 1, nil)
	if err != nil {
		t.Fatalf("FinishUnlock: %v\n%s", err, h.logs)
	}
	if un.SetUp || !h.current(phone).Unlocked {
		t.Fatalf("unlock %+v, session not unlocked", un)
	}
	// Assertion 2 used salt B: its output opens no slot.
	h.do(phone, func(w http.ResponseWriter, r *http.Request) { _ = h.sessions.Lock(r.Context()) })
	if _, err := h.unlockWith(phone, 2, nil); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("unlock with another salt's output: %v, want ErrUnlockFailed", err)
	}
}

// PKY-13 (partial): the attestation policy is explicit and fixed at
// "none": the options ask for none, and the registered passkey keeps
// the format it came with ("none" from the recorded chromium).
func TestAttestationNone(t *testing.T) {
	h := newHarness(t, nil)
	alice := newBrowser()
	h.login(alice, "alice", false)
	var options []byte
	h.do(alice, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if options, err = h.m.BeginRegistration(r, "alice@example.test"); err != nil {
			t.Fatal(err)
		}
	})
	var o struct {
		PublicKey struct {
			Attestation string `json:"attestation"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Attestation != "none" {
		t.Fatalf("registration options ask for attestation %q (%v), want \"none\"", o.PublicKey.Attestation, err)
	}
	cred, err := h.register(alice, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	if cred.AttestationFormat != "none" {
		t.Fatalf("stored attestation format %q, want none", cred.AttestationFormat)
	}
}

// A right unlock assertion with a passkey that has no vault slot yet
// (registered with the vault locked) answers ErrNotSetUp and is not
// counted by the lockout: the owner cannot lock themselves out by trying
// it, as they could when it counted as a wrong credential.
func TestUnlockWithoutSlotIsNotCounted(t *testing.T) {
	// The one recorded answer is replayed: its counter stops growing
	// after the first, which FlagOnly lets through.
	h := newHarness(t, func(c *Config) { c.SignCountPolicy = FlagOnly })
	ctx := context.Background()
	if _, err := h.vault.Create(ctx, "alice", []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	a := newBrowser()
	h.login(a, "alice", false)
	if cred, err := h.register(a, "Laptop"); err != nil || cred.CanUnlock {
		t.Fatalf("register with the vault locked: %+v, %v", cred, err)
	}
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); err != nil {
		t.Fatal(err)
	}
	info := h.current(b)
	for try := range 12 { // more than the lockout's 10 failures per source
		// Begun with the vault unlocked (set-up offers the passkey), then
		// locked before the answer comes: the answer is right, the slot
		// missing.
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			u, err := h.vault.Unlock(r.Context(), "alice", []byte(testPassphrase))
			if err == nil {
				err = h.sessions.Unlock(r.Context(), u)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			if _, err := h.m.BeginUnlock(r); err != nil {
				t.Fatal(err)
			}
		})
		h.do(b, func(w http.ResponseWriter, r *http.Request) { _ = h.sessions.Lock(r.Context()) })
		h.rewrite(sessionChallengeID(ceremonyUnlock, info.UserID, info.Ref), ceremonyUnlock, info.UserID, info.Ref,
			h.cer.Assertions[1].Challenge, nil, nil)
		var err error
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			_, err = h.m.FinishUnlock(r, mustJSON(t, h.cer.Assertions[1].Response), ratelimit.Source{})
		})
		if !errors.Is(err, ErrNotSetUp) {
			t.Fatalf("try %d: %v, want ErrNotSetUp", try, err)
		}
	}
	att, err := h.lockout.Begin(ctx, "alice", ratelimit.Source{})
	if err != nil {
		t.Fatalf("after 12 unlocks of a passkey without a slot, the lockout: %v, want no failure counted", err)
	}
	att.Abandon(ctx, errors.New("test"))
}
