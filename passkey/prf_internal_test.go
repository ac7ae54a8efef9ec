package passkey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/keyhold/keyhold/session"
)

// prfOptions runs PRFOptions for b's session.
func (s *softEnv) prfOptions(b *browser) ([]byte, error) {
	s.t.Helper()
	var opts []byte
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { opts, err = s.m.PRFOptions(r) })
	return opts, err
}

// The options of PRFOptions ask the user's passkey for the PRF output
// that is the secret of its vault slot: a zero-knowledge client that runs
// them gets the same secret as the server-side unlock, so one passkey
// works in both modes.
func TestPRFOptionsGiveTheSlotSecret(t *testing.T) {
	s := newSoftEnv(t, nil)
	b := s.passwordSession("alice", true)
	c := s.mustRegister(b) // the PRF output at creation becomes the slot
	opts, err := s.prfOptions(b)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			UserVerification string `json:"userVerification"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
			Extensions struct {
				PRF struct {
					EvalByCredential map[string]struct {
						First string `json:"first"`
					} `json:"evalByCredential"`
				} `json:"prf"`
			} `json:"extensions"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString(c.ID)
	p := o.PublicKey
	if p.UserVerification != "required" || len(p.AllowCredentials) != 1 || p.AllowCredentials[0].ID != id || p.Challenge == "" {
		t.Fatalf("options: %s", opts)
	}
	salt, err := base64.RawURLEncoding.DecodeString(p.Extensions.PRF.EvalByCredential[id].First)
	if err != nil || len(salt) != prfSaltLen {
		t.Fatalf("salt for the credential: %q %v", p.Extensions.PRF.EvalByCredential[id].First, err)
	}
	u, err := s.vault.UnlockWithSecret(context.Background(), "alice", c.ID, c.prf(salt))
	if err != nil {
		t.Fatalf("the PRF output for these options does not open the passkey's slot: %v", err)
	}
	u.Lock()
	// Two calls give two challenges (random, never stored, never checked).
	again, _ := s.prfOptions(b)
	if string(again) == string(opts) {
		t.Fatal("two PRFOptions answers are the same")
	}
}

func TestPRFOptionsRefusals(t *testing.T) {
	s := newSoftEnv(t, func(c *Config) { c.Vault = nil }) // the zero-knowledge mode needs no server-side vault
	alice := s.passwordSession("alice", false)
	s.mustRegister(alice)
	if _, err := s.prfOptions(alice); err != nil {
		t.Fatalf("without Config.Vault: %v", err)
	}
	if _, err := s.prfOptions(newBrowser()); !errors.Is(err, session.ErrNotLoggedIn) {
		t.Errorf("no session: %v", err)
	}
	pending := newBrowser()
	s.doTLS(pending, func(w http.ResponseWriter, r *http.Request) {
		if err := s.sessions.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := s.prfOptions(pending); !errors.Is(err, session.ErrNotLoggedIn) {
		t.Errorf("login pending its second factor: %v", err)
	}
	if _, err := s.prfOptions(s.passwordSession("bob", false)); !errors.Is(err, ErrPRFUnavailable) {
		t.Errorf("user without passkeys: %v", err)
	}
	carol := s.passwordSession("carol", false)
	if _, _, err := s.register(carol, func(a *softAnswer) { delete(a.Extensions, "prf") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.prfOptions(carol); !errors.Is(err, ErrPRFUnavailable) {
		t.Errorf("user whose passkey has no PRF: %v", err)
	}
	var nilManager *Manager
	if _, err := nilManager.PRFOptions(nil); err == nil {
		t.Error("nil Manager")
	}
}
