package passkey

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/keyhold/keyhold"
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
