package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keyhold/keyhold/storage"
)

// The refusal tests: each WebAuthn check of PKY-01..PKY-14 refuses an
// answer the soft authenticator made wrong in one way, with the typed
// error, and nothing is stored: no credential added, the counter and the
// flags unchanged, no session created, no session unlocked.

// fixture is a softEnv where alice is logged in (with a password, her
// vault unlocked if vault is set) and has registered one soft passkey.
type fixture struct {
	*softEnv
	alice *browser
	cred  *softCred
}

func newFixture(t *testing.T, vault bool, edit func(*Config)) *fixture {
	t.Helper()
	s := newSoftEnv(t, edit)
	f := &fixture{softEnv: s, alice: newBrowser()}
	s.harness.login(f.alice, "alice", vault)
	f.cred = s.mustRegister(f.alice)
	return f
}

// passkeySession logs a new browser in with c: a multi-factor session,
// as adding a second passkey needs.
func (s *softEnv) passkeySession(c *softCred) *browser {
	s.t.Helper()
	b := newBrowser()
	if _, err := s.login(b, c, nil); err != nil {
		s.t.Fatalf("FinishLogin: %v\n%s", err, s.logs)
	}
	return b
}

// passwordSession logs a new browser in as userID with a password.
func (s *softEnv) passwordSession(userID string, unlock bool) *browser {
	s.t.Helper()
	b := newBrowser()
	s.harness.login(b, userID, unlock)
	return b
}

func wantErr(t *testing.T, err error, wants ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", wants)
	}
	for _, w := range wants {
		if !errors.Is(err, w) {
			t.Fatalf("error %q, want %q", err, w)
		}
	}
}

// unchanged fails unless userID's stored record is still before.
func (s *softEnv) unchanged(userID string, before storage.PasskeyRecord) {
	s.t.Helper()
	after := s.stored(userID)
	if after.Version != before.Version || !bytes.Equal(after.Data, before.Data) || len(after.CredentialIDs) != len(before.CredentialIDs) {
		s.t.Fatalf("%s's passkeys changed: version %d -> %d, %d -> %d credentials", userID,
			before.Version, after.Version, len(before.CredentialIDs), len(after.CredentialIDs))
	}
}

// refuseLogin runs a login of a new browser with c, edit changing the
// answer: it must fail with wants, store nothing for any of users, and
// leave the browser logged out.
func (s *softEnv) refuseLogin(t *testing.T, c *softCred, edit func(*softAnswer), users []string, wants ...error) {
	t.Helper()
	before := map[string]storage.PasskeyRecord{}
	for _, u := range users {
		before[u] = s.stored(u)
	}
	b := newBrowser()
	_, err := s.login(b, c, edit)
	wantErr(t, err, wants...)
	for _, u := range users {
		s.unchanged(u, before[u])
	}
	if info := s.current(b); info.UserID != "" {
		t.Fatalf("a refused login left a session: %+v", info)
	}
}

// refuseUnlock locks b's session and runs an unlock ceremony there with
// c, edit changing the answer: it must fail with wants, store nothing
// for userID, and leave the session locked.
func (s *softEnv) refuseUnlock(t *testing.T, b *browser, userID string, c *softCred, edit func(*softAnswer), wants ...error) {
	t.Helper()
	s.lock(b)
	before := s.stored(userID)
	_, err := s.unlock(b, c, edit)
	wantErr(t, err, wants...)
	s.unchanged(userID, before)
	if info := s.current(b); info.UserID != userID || info.Unlocked {
		t.Fatalf("after a refused unlock: session %+v", info)
	}
}

// refuseRegister runs a registration of a new credential (alg) for b's
// user, edit changing the answer: it must fail with wants and store
// nothing.
func (s *softEnv) refuseRegister(t *testing.T, b *browser, alg int64, edit func(*softAnswer), wants ...error) {
	t.Helper()
	userID := s.current(b).UserID
	before := s.stored(userID)
	_, _, err := s.registerAlg(b, alg, edit)
	wantErr(t, err, wants...)
	s.unchanged(userID, before)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func loginToken(t *testing.T, s *softEnv, b *browser) []byte {
	t.Helper()
	c := b.cookies[s.m.loginCookieName()]
	if c == nil {
		t.Fatal("no login cookie")
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestPKY01Challenge(t *testing.T) {
	t.Run("PKY-01 challenge random, 16+ bytes, stored server-side", func(t *testing.T) {
		f := newFixture(t, true, nil)
		seen := map[string]bool{}
		for range 3 {
			b := newBrowser()
			opts := parseSoftOptions(t, f.beginLogin(b))
			stored := f.storedChallenge(loginChallengeID(loginToken(t, f.softEnv, b)), ceremonyState{Ceremony: ceremonyLogin})
			ch := opts.PublicKey.Challenge
			if len(ch) < 16 || !bytes.Equal(ch, stored) || seen[string(ch)] {
				t.Fatalf("login challenge %x (stored %x), seen before: %v", []byte(ch), stored, seen[string(ch)])
			}
			seen[string(ch)] = true
		}
		info := f.current(f.alice)
		opts := parseSoftOptions(t, f.beginUnlock(f.alice))
		stored := f.storedChallenge(sessionChallengeID(ceremonyUnlock, "alice", info.Ref), ceremonyState{Ceremony: ceremonyUnlock, UserID: "alice", Ref: info.Ref})
		if len(opts.PublicKey.Challenge) < 16 || !bytes.Equal(opts.PublicKey.Challenge, stored) {
			t.Fatalf("unlock challenge %x, stored %x", []byte(opts.PublicKey.Challenge), stored)
		}
	})
	t.Run("PKY-01 reused login challenge", func(t *testing.T) {
		f := newFixture(t, false, nil)
		b := newBrowser()
		resp := f.auth.get(t, f.cred, f.beginLogin(b), nil)
		cookie := b.cookies[f.m.loginCookieName()]
		if _, err := f.finishLogin(b, resp); err != nil {
			t.Fatalf("first FinishLogin: %v", err)
		}
		if _, ok := b.cookies[cookie.Name]; ok {
			t.Fatal("FinishLogin left the ceremony cookie")
		}
		// The same answer again, with the same cookie, in a new browser.
		replay := newBrowser()
		replay.cookies[cookie.Name] = cookie
		before := f.stored("alice")
		_, err := f.finishLogin(replay, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(replay).UserID != "" {
			t.Fatal("a replayed login made a session")
		}
	})
	t.Run("PKY-01 reused registration challenge", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		bob := s.passwordSession("bob", false)
		_, resp := s.auth.create(t, s.beginRegistration(bob), 0, nil)
		if _, err := s.finishRegistration(bob, resp, "one"); err != nil {
			t.Fatal(err)
		}
		before := s.stored("bob")
		_, err := s.finishRegistration(bob, resp, "two")
		wantErr(t, err, ErrChallenge)
		s.unchanged("bob", before)
	})
	t.Run("PKY-01 reused unlock challenge", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.lock(f.alice)
		resp := f.auth.get(t, f.cred, f.beginUnlock(f.alice), nil)
		if _, err := f.finishUnlock(f.alice, resp); err != nil {
			t.Fatal(err)
		}
		f.lock(f.alice)
		before := f.stored("alice")
		_, err := f.finishUnlock(f.alice, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(f.alice).Unlocked {
			t.Fatal("a replayed unlock unlocked the session")
		}
	})
	t.Run("PKY-01 expired login challenge", func(t *testing.T) {
		f := newFixture(t, false, nil)
		// Just before the timeout: accepted.
		b := newBrowser()
		resp := f.auth.get(t, f.cred, f.beginLogin(b), nil)
		f.clock.Advance(DefaultCeremonyTimeout - 1)
		if _, err := f.finishLogin(b, resp); err != nil {
			t.Fatalf("FinishLogin just in time: %v", err)
		}
		b = newBrowser()
		resp = f.auth.get(t, f.cred, f.beginLogin(b), nil)
		f.clock.Advance(DefaultCeremonyTimeout)
		before := f.stored("alice")
		_, err := f.finishLogin(b, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(b).UserID != "" {
			t.Fatal("an expired login made a session")
		}
	})
	t.Run("PKY-01 expired registration challenge", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		bob := s.passwordSession("bob", false)
		_, resp := s.auth.create(t, s.beginRegistration(bob), 0, nil)
		s.clock.Advance(DefaultCeremonyTimeout)
		_, err := s.finishRegistration(bob, resp, "late")
		wantErr(t, err, ErrChallenge)
		s.unchanged("bob", storage.PasskeyRecord{})
	})
	t.Run("PKY-01 expired unlock challenge", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.lock(f.alice)
		resp := f.auth.get(t, f.cred, f.beginUnlock(f.alice), nil)
		f.clock.Advance(DefaultCeremonyTimeout)
		before := f.stored("alice")
		_, err := f.finishUnlock(f.alice, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(f.alice).Unlocked {
			t.Fatal("an expired unlock unlocked the session")
		}
	})
	t.Run("PKY-01 registration challenge of another session", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		b1, b2 := s.passwordSession("bob", false), s.passwordSession("bob", false)
		_, resp := s.auth.create(t, s.beginRegistration(b1), 0, nil)
		_, err := s.finishRegistration(b2, resp, "stolen")
		wantErr(t, err, ErrChallenge)
		s.unchanged("bob", storage.PasskeyRecord{})
		// The answer was right for its own session.
		if _, err := s.finishRegistration(b1, resp, "own"); err != nil {
			t.Fatalf("FinishRegistration in its own session: %v", err)
		}
	})
	t.Run("PKY-01 registration challenge of another user", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		bob, eve := s.passwordSession("bob", false), s.passwordSession("eve", false)
		_, resp := s.auth.create(t, s.beginRegistration(bob), 0, nil)
		_, err := s.finishRegistration(eve, resp, "stolen")
		wantErr(t, err, ErrChallenge)
		s.unchanged("eve", storage.PasskeyRecord{})
		s.unchanged("bob", storage.PasskeyRecord{})
	})
	t.Run("PKY-01 unlock challenge of another session", func(t *testing.T) {
		f := newFixture(t, true, nil)
		other := f.passwordSession("alice", false)
		f.lock(f.alice)
		resp := f.auth.get(t, f.cred, f.beginUnlock(f.alice), nil)
		before := f.stored("alice")
		_, err := f.finishUnlock(other, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(other).Unlocked {
			t.Fatal("another session's unlock answer unlocked this one")
		}
		if _, err := f.finishUnlock(f.alice, resp); err != nil {
			t.Fatalf("FinishUnlock in its own session: %v", err)
		}
	})
	t.Run("PKY-01 login without the ceremony cookie", func(t *testing.T) {
		f := newFixture(t, false, nil)
		x := newBrowser()
		resp := f.auth.get(t, f.cred, f.beginLogin(x), nil)
		z := newBrowser()
		before := f.stored("alice")
		_, err := f.finishLogin(z, resp)
		wantErr(t, err, ErrChallenge)
		f.unchanged("alice", before)
		if f.current(z).UserID != "" {
			t.Fatal("a login without the ceremony cookie made a session")
		}
		if _, err := f.finishLogin(x, resp); err != nil {
			t.Fatalf("FinishLogin in the browser that began: %v", err)
		}
	})
	t.Run("PKY-01 login with another browser's ceremony cookie", func(t *testing.T) {
		f := newFixture(t, false, nil)
		x, y := newBrowser(), newBrowser()
		resp := f.auth.get(t, f.cred, f.beginLogin(x), nil)
		f.beginLogin(y)
		before := f.stored("alice")
		_, err := f.finishLogin(y, resp)
		wantErr(t, err, ErrLoginFailed)
		f.unchanged("alice", before)
		if f.current(y).UserID != "" {
			t.Fatal("a login answering another browser's challenge made a session")
		}
		if _, err := f.finishLogin(x, resp); err != nil {
			t.Fatalf("FinishLogin in the browser that began: %v", err)
		}
	})
	t.Run("PKY-01 forged login cookie", func(t *testing.T) {
		f := newFixture(t, false, nil)
		x := newBrowser()
		resp := f.auth.get(t, f.cred, f.beginLogin(x), nil)
		c := *x.cookies[f.m.loginCookieName()]
		c.Value = b64(randomBytes(loginTokenLen))
		x.cookies[c.Name] = &c
		_, err := f.finishLogin(x, resp)
		wantErr(t, err, ErrChallenge)
	})
}

func TestPKY02TypeAndChallenge(t *testing.T) {
	users := []string{"alice"}
	t.Run("PKY-02 login answer of type webauthn.create", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.ClientData.Type = string(protocol.CreateCeremony) }, users, ErrLoginFailed)
	})
	t.Run("PKY-02 unlock answer of type webauthn.create", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.refuseUnlock(t, f.alice, "alice", f.cred, func(a *softAnswer) { a.ClientData.Type = string(protocol.CreateCeremony) }, ErrUnlockFailed)
	})
	t.Run("PKY-02 registration answer of type webauthn.get", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.refuseRegister(t, s.passwordSession("bob", false), 0, func(a *softAnswer) { a.ClientData.Type = string(protocol.AssertCeremony) }, ErrRegistrationFailed)
	})
	t.Run("PKY-02 login answer with another challenge", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.ClientData.Challenge = b64(randomBytes(32)) }, users, ErrLoginFailed)
	})
	t.Run("PKY-02 login answer with the challenge in padded base64url", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.ClientData.Challenge += "=" }, users, ErrLoginFailed)
	})
	t.Run("PKY-02 unlock answer with another challenge", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.refuseUnlock(t, f.alice, "alice", f.cred, func(a *softAnswer) { a.ClientData.Challenge = b64(randomBytes(32)) }, ErrUnlockFailed)
	})
	t.Run("PKY-02 registration answer with another challenge", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.refuseRegister(t, s.passwordSession("bob", false), 0, func(a *softAnswer) { a.ClientData.Challenge = b64(randomBytes(32)) }, ErrRegistrationFailed)
	})
}

func TestPKY03Origin(t *testing.T) {
	users := []string{"alice"}
	bad := map[string]func(*softAnswer){
		"suffix host https://example.com.evil.com": func(a *softAnswer) { a.ClientData.Origin = "https://example.com.evil.com" },
		"plain http://example.com":                 func(a *softAnswer) { a.ClientData.Origin = "http://example.com" },
		"other host https://evil.com":              func(a *softAnswer) { a.ClientData.Origin = "https://evil.com" },
		"unlisted subdomain https://www.example.com": func(a *softAnswer) {
			a.ClientData.Origin = "https://www.example.com"
		},
		"other port https://example.com:8443": func(a *softAnswer) { a.ClientData.Origin = "https://example.com:8443" },
		"crossOrigin true":                    func(a *softAnswer) { a.ClientData.CrossOrigin = true },
		"crossOrigin true with topOrigin": func(a *softAnswer) {
			a.ClientData.CrossOrigin, a.ClientData.TopOrigin = true, "https://evil.com"
		},
		"crossOrigin true with topOrigin of the app": func(a *softAnswer) {
			a.ClientData.CrossOrigin, a.ClientData.TopOrigin = true, softOrigin
		},
		"topOrigin without crossOrigin": func(a *softAnswer) { a.ClientData.TopOrigin = softOrigin },
	}
	for name, edit := range bad {
		t.Run("PKY-03 login "+name, func(t *testing.T) {
			f := newFixture(t, false, nil)
			f.refuseLogin(t, f.cred, edit, users, ErrLoginFailed)
		})
	}
	for _, name := range []string{"suffix host https://example.com.evil.com", "plain http://example.com", "crossOrigin true", "crossOrigin true with topOrigin"} {
		t.Run("PKY-03 registration "+name, func(t *testing.T) {
			s := newSoftEnv(t, nil)
			s.refuseRegister(t, s.passwordSession("bob", false), 0, bad[name], ErrRegistrationFailed)
		})
		t.Run("PKY-03 unlock "+name, func(t *testing.T) {
			f := newFixture(t, true, nil)
			f.refuseUnlock(t, f.alice, "alice", f.cred, bad[name], ErrUnlockFailed)
		})
	}
	// With two origins listed, an answer must name the origin the
	// ceremony began at, not merely a listed one.
	two := func(c *Config) { c.Origins = []string{softOrigin, "https://www.example.com"} }
	www := func(a *softAnswer) { a.ClientData.Origin = "https://www.example.com" }
	t.Run("PKY-03 login answer from another listed origin than the one begun at", func(t *testing.T) {
		f := newFixture(t, false, two)
		f.refuseLogin(t, f.cred, www, users, ErrLoginFailed)
	})
	t.Run("PKY-03 registration answer from another listed origin than the one begun at", func(t *testing.T) {
		s := newSoftEnv(t, two)
		s.refuseRegister(t, s.passwordSession("bob", false), 0, www, ErrRegistrationFailed)
	})
	t.Run("PKY-03 unlock answer from another listed origin than the one begun at", func(t *testing.T) {
		f := newFixture(t, true, two)
		f.refuseUnlock(t, f.alice, "alice", f.cred, www, ErrUnlockFailed)
	})
	t.Run("PKY-03 New refuses origins off the RP ID", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		for _, o := range []string{
			"https://example.com.evil.com", "https://evil.com", "https://notexample.com", "http://example.com",
			"https://example.com/", "https://example.com/path", "https://user@example.com", "example.com",
			"https://EXAMPLE.com.evil.com", "http://localhost:8080", "https://example.com?x=1", "",
		} {
			cfg := s.m.cfg
			cfg.Origins = []string{softOrigin, o}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("New with origin %q: %v, want ErrInvalidInput", o, err)
			}
		}
		cfg := s.m.cfg
		cfg.Origins = []string{softOrigin, "https://www.example.com", "https://example.com:8443"}
		if _, err := New(cfg); err != nil {
			t.Errorf("New with origins on the RP ID: %v", err)
		}
	})
	t.Run("PKY-03 Begin refuses a request to an unlisted origin", func(t *testing.T) {
		f := newFixture(t, true, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
		for name, req := range map[string]func(*http.Request){
			"Host evil.com":             func(r *http.Request) { r.Host = "evil.com" },
			"Host example.com.evil.com": func(r *http.Request) { r.Host = "example.com.evil.com" },
			"Host with a port":          func(r *http.Request) { r.Host = "example.com:8443" },
			"plain HTTP":                func(r *http.Request) { r.TLS = nil },
			"plain HTTP, X-Forwarded-Proto from an untrusted peer": func(r *http.Request) {
				r.TLS = nil
				r.Header.Set("X-Forwarded-Proto", "https")
			},
			"plain HTTP, Forwarded proto=https from an untrusted peer": func(r *http.Request) {
				r.TLS = nil
				r.Header.Set("Forwarded", "for=192.0.2.1;proto=https")
			},
			"plain HTTP from a trusted proxy saying http": func(r *http.Request) {
				r.TLS = nil
				r.RemoteAddr = "10.1.2.3:5555"
				r.Header.Set("X-Forwarded-Proto", "http")
			},
		} {
			var errs [3]error
			f.doWith(f.alice, req, func(w http.ResponseWriter, r *http.Request) {
				_, errs[0] = f.m.BeginLogin(w, r)
				_, errs[1] = f.m.BeginRegistration(r, "alice@example.com")
				_, errs[2] = f.m.BeginUnlock(r)
			})
			for i, err := range errs {
				if !errors.Is(err, ErrOrigin) {
					t.Errorf("%s: Begin %d: %v, want ErrOrigin", name, i, err)
				}
			}
		}
		// A trusted proxy's X-Forwarded-Proto is believed.
		var err error
		f.doWith(newBrowser(), func(r *http.Request) {
			r.TLS = nil
			r.RemoteAddr = "10.1.2.3:5555"
			r.Header.Set("X-Forwarded-Proto", "https")
		}, func(w http.ResponseWriter, r *http.Request) { _, err = f.m.BeginLogin(w, r) })
		if err != nil {
			t.Fatalf("BeginLogin through a trusted proxy: %v", err)
		}
	})
}

func TestPKY04RPIDHash(t *testing.T) {
	evil := sha256.Sum256([]byte("evil.com"))
	sub := sha256.Sum256([]byte("www.example.com"))
	for name, h := range map[string][]byte{"evil.com": evil[:], "www.example.com": sub[:]} {
		edit := func(a *softAnswer) { a.RPIDHash = h }
		t.Run("PKY-04 login rpIdHash of "+name, func(t *testing.T) {
			f := newFixture(t, false, nil)
			f.refuseLogin(t, f.cred, edit, []string{"alice"}, ErrLoginFailed)
		})
		t.Run("PKY-04 registration rpIdHash of "+name, func(t *testing.T) {
			s := newSoftEnv(t, nil)
			s.refuseRegister(t, s.passwordSession("bob", false), 0, edit, ErrRegistrationFailed)
		})
		t.Run("PKY-04 unlock rpIdHash of "+name, func(t *testing.T) {
			f := newFixture(t, true, nil)
			f.refuseUnlock(t, f.alice, "alice", f.cred, edit, ErrUnlockFailed)
		})
	}
}

func TestPKY05UserPresenceAndVerification(t *testing.T) {
	for name, flag := range map[string]protocol.AuthenticatorFlags{"UP=0": protocol.FlagUserPresent, "UV=0": protocol.FlagUserVerified} {
		edit := func(a *softAnswer) { a.Flags &^= flag }
		t.Run("PKY-05 login "+name, func(t *testing.T) {
			f := newFixture(t, false, nil)
			f.refuseLogin(t, f.cred, edit, []string{"alice"}, ErrLoginFailed)
		})
		t.Run("PKY-05 registration "+name, func(t *testing.T) {
			s := newSoftEnv(t, nil)
			s.refuseRegister(t, s.passwordSession("bob", false), 0, edit, ErrRegistrationFailed)
		})
		t.Run("PKY-05 unlock "+name, func(t *testing.T) {
			f := newFixture(t, true, nil)
			f.refuseUnlock(t, f.alice, "alice", f.cred, edit, ErrUnlockFailed)
		})
	}
	t.Run("PKY-05 options require user verification", func(t *testing.T) {
		f := newFixture(t, true, nil)
		for name, opts := range map[string][]byte{
			"login": f.beginLogin(newBrowser()), "unlock": f.beginUnlock(f.alice),
			"registration": f.beginRegistration(f.passwordSession("bob", false)),
		} {
			var o struct {
				PublicKey struct {
					UserVerification       string `json:"userVerification"`
					AuthenticatorSelection struct {
						UserVerification string `json:"userVerification"`
					} `json:"authenticatorSelection"`
				} `json:"publicKey"`
			}
			if err := json.Unmarshal(opts, &o); err != nil {
				t.Fatal(err)
			}
			if uv := o.PublicKey.UserVerification + o.PublicKey.AuthenticatorSelection.UserVerification; uv != "required" {
				t.Errorf("%s options: userVerification %q, want required", name, uv)
			}
		}
	})
}

func TestPKY06Backup(t *testing.T) {
	t.Run("PKY-06 registration BS=1 with BE=0", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.refuseRegister(t, s.passwordSession("bob", false), 0, func(a *softAnswer) {
			a.Flags = a.Flags&^protocol.FlagBackupEligible | protocol.FlagBackupState
		}, ErrRegistrationFailed)
	})
	t.Run("PKY-06 login BS=1 with BE=0", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.Flags |= protocol.FlagBackupState }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-06 login BE=0 for a credential stored with BE=1", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.auth.BE = true
		alice := s.passwordSession("alice", false)
		c := s.mustRegister(alice)
		if l, _ := s.m.List(context.Background(), "alice"); len(l) != 1 || !l[0].BackupEligible {
			t.Fatalf("registered %+v, want BackupEligible", l)
		}
		s.refuseLogin(t, c, func(a *softAnswer) { a.Flags &^= protocol.FlagBackupEligible }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-06 login BE=1 for a credential stored with BE=0", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.Flags |= protocol.FlagBackupEligible }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-06 unlock BE=0 for a credential stored with BE=1", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.auth.BE = true
		alice := s.passwordSession("alice", true)
		c := s.mustRegister(alice)
		s.refuseUnlock(t, alice, "alice", c, func(a *softAnswer) { a.Flags &^= protocol.FlagBackupEligible }, ErrUnlockFailed)
	})
	t.Run("PKY-06 the latest BS is stored", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.auth.BE = true
		c := s.mustRegister(s.passwordSession("alice", false))
		backedUp := func() bool {
			l, err := s.m.List(context.Background(), "alice")
			if err != nil || len(l) != 1 {
				t.Fatalf("List: %v, %v", l, err)
			}
			return l[0].BackedUp
		}
		if backedUp() {
			t.Fatal("registered with BS=0, stored BackedUp")
		}
		c.BS = true
		if res, err := s.login(newBrowser(), c, nil); err != nil || !res.Credential.BackedUp {
			t.Fatalf("login with BS=1: %+v, %v", res, err)
		}
		if !backedUp() {
			t.Fatal("BS 0 -> 1 not stored")
		}
		c.BS = false
		if _, err := s.login(newBrowser(), c, nil); err != nil {
			t.Fatal(err)
		}
		if backedUp() {
			t.Fatal("BS 1 -> 0 not stored")
		}
	})
}

func TestPKY07Signature(t *testing.T) {
	flipCounter := func(a *softAnswer) {
		a.TamperAuthData = func(d []byte) []byte { d[36] ^= 1; return d }
	}
	t.Run("PKY-07 login authData tampered after signing", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, flipCounter, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-07 login flags tampered after signing", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) {
			a.Flags &^= protocol.FlagUserVerified
			a.TamperAuthData = func(d []byte) []byte { d[32] |= byte(protocol.FlagUserVerified); return d }
		}, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-07 login clientDataJSON changed after signing", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) {
			// A signature by the right key over another clientDataJSON.
			h := sha256.Sum256(append(a.clientDataJSON(t), ' '))
			a.Signature = f.cred.sign(t, append(a.authData(false), h[:]...))
		}, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-07 login random signature", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.Signature = randomBytes(71) }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-07 unlock authData tampered after signing", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.refuseUnlock(t, f.alice, "alice", f.cred, flipCounter, ErrUnlockFailed)
	})
	t.Run("PKY-07 registration alg -257 refused by default", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		bob := s.passwordSession("bob", false)
		for _, p := range parseSoftOptions(t, s.beginRegistration(bob)).PublicKey.PubKeyCredParams {
			if p.Alg == algRS256 {
				t.Fatal("registration options offer RS256")
			}
		}
		s.refuseRegister(t, bob, algRS256, nil, ErrRegistrationFailed)
	})
	t.Run("PKY-07 alg -257 accepted with AllowRS256", func(t *testing.T) {
		s := newSoftEnv(t, func(c *Config) { c.AllowRS256 = true })
		alice := s.passwordSession("alice", false)
		c, cred, err := s.registerAlg(alice, algRS256, nil)
		if err != nil || cred.Algorithm != algRS256 {
			t.Fatalf("RS256 registration: %+v, %v\n%s", cred, err, s.logs)
		}
		if _, err := s.login(newBrowser(), c, nil); err != nil {
			t.Fatalf("RS256 login: %v\n%s", err, s.logs)
		}
		s.refuseLogin(t, c, flipCounter, []string{"alice"}, ErrLoginFailed)
	})
}

func TestPKY10CredentialID(t *testing.T) {
	t.Run("PKY-10 credential ID of 1024 bytes", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		s.refuseRegister(t, s.passwordSession("bob", false), 0, func(a *softAnswer) { a.CredID = randomBytes(1024) }, ErrInvalidResponse)
	})
	t.Run("PKY-10 credential ID of 1023 bytes is accepted", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		c, _, err := s.register(s.passwordSession("bob", false), func(a *softAnswer) { a.CredID = randomBytes(1023) })
		if err != nil {
			t.Fatalf("FinishRegistration: %v", err)
		}
		if res, err := s.login(newBrowser(), c, nil); err != nil || res.UserID != "bob" {
			t.Fatalf("login: %+v, %v", res, err)
		}
	})
	t.Run("PKY-10 victim's credential ID under another user", func(t *testing.T) {
		f := newFixture(t, false, nil)
		before := f.stored("alice")
		mallory := f.passwordSession("mallory", false)
		_, _, err := f.register(mallory, func(a *softAnswer) { a.CredID = f.cred.ID })
		wantErr(t, err, ErrCredentialInUse)
		f.unchanged("alice", before)
		f.unchanged("mallory", storage.PasskeyRecord{})
		// The victim's passkey still logs the victim in.
		if res, err := f.login(newBrowser(), f.cred, nil); err != nil || res.UserID != "alice" {
			t.Fatalf("victim's login: %+v, %v", res, err)
		}
	})
	t.Run("PKY-10 own credential ID again", func(t *testing.T) {
		f := newFixture(t, false, nil)
		phone := f.passkeySession(f.cred)
		before := f.stored("alice")
		_, _, err := f.register(phone, func(a *softAnswer) { a.CredID = f.cred.ID })
		wantErr(t, err, ErrCredentialInUse)
		f.unchanged("alice", before)
	})
}

func TestPKY11CredentialOwner(t *testing.T) {
	t.Run("PKY-11 user B's credential in user A's unlock ceremony", func(t *testing.T) {
		f := newFixture(t, true, nil)
		bob := f.passwordSession("bob", true)
		cb := f.mustRegister(bob)
		fakePRF := func(a *softAnswer) {
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(cb.prf(randomBytes(32)))}}
		}
		f.refuseUnlock(t, f.alice, "alice", cb, fakePRF, ErrUnlockFailed)
		f.refuseUnlock(t, f.alice, "alice", cb, func(a *softAnswer) { fakePRF(a); a.UserHandle = f.cred.Handle }, ErrUnlockFailed)
		if f.current(bob).UserID != "bob" {
			t.Fatal("bob's session is gone")
		}
	})
	t.Run("PKY-11 credential not in the unlock ceremony's allowCredentials", func(t *testing.T) {
		f := newFixture(t, true, nil)
		phone := f.passkeySession(f.cred)
		// A second passkey without the PRF extension: not listed.
		noPRF, _, err := f.register(phone, func(a *softAnswer) { delete(a.Extensions, "prf") })
		if err != nil {
			t.Fatal(err)
		}
		opts := parseSoftOptions(t, f.beginUnlock(phone))
		if len(opts.PublicKey.AllowCredentials) != 1 || !bytes.Equal(opts.PublicKey.AllowCredentials[0].ID, f.cred.ID) {
			t.Fatalf("unlock options list %d credentials", len(opts.PublicKey.AllowCredentials))
		}
		if _, err := f.unlock(phone, f.cred, nil); err != nil {
			t.Fatal(err)
		}
		// The vault is unlocked: a right answer would set the passkey up.
		before := f.stored("alice")
		_, err = f.unlock(phone, noPRF, func(a *softAnswer) {
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(noPRF.prf(randomBytes(32)))}}
		})
		wantErr(t, err, ErrUnlockFailed)
		f.unchanged("alice", before)
		l, _ := f.m.List(context.Background(), "alice")
		for _, c := range l {
			if c.ID == b64(noPRF.ID) && (c.CanUnlock || c.PRF) {
				t.Fatalf("an unlisted credential was set up: %+v", c)
			}
		}
	})
	t.Run("PKY-11 discoverable login without userHandle", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.UserHandle = nil }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-11 discoverable login with an empty userHandle", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.UserHandle = []byte{} }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-11 userHandle of user A with the credential of user B", func(t *testing.T) {
		f := newFixture(t, false, nil)
		cb := f.mustRegister(f.passwordSession("bob", false))
		f.refuseLogin(t, cb, func(a *softAnswer) { a.UserHandle = f.cred.Handle }, []string{"alice", "bob"}, ErrLoginFailed)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.UserHandle = cb.Handle }, []string{"alice", "bob"}, ErrLoginFailed)
	})
	t.Run("PKY-11 unknown userHandle", func(t *testing.T) {
		f := newFixture(t, false, nil)
		f.refuseLogin(t, f.cred, func(a *softAnswer) { a.UserHandle = randomBytes(64) }, []string{"alice"}, ErrLoginFailed)
	})
	t.Run("PKY-11 removed credential", func(t *testing.T) {
		f := newFixture(t, false, nil)
		phone := f.passkeySession(f.cred)
		var err error
		f.doTLS(phone, func(w http.ResponseWriter, r *http.Request) { err = f.m.Remove(r, "alice", b64(f.cred.ID)) })
		if err != nil {
			t.Fatalf("Remove: %v", err)
		}
		f.refuseLogin(t, f.cred, nil, []string{"alice"}, ErrLoginFailed)
	})
}

func TestPKY12Handle(t *testing.T) {
	t.Run("PKY-12 user handle: 64 random bytes per user, no user ID or name", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		handles := map[string][]byte{}
		for _, u := range []string{"alice", "bob", "carol"} {
			b := s.passwordSession(u, false)
			opts := s.beginRegistration(b)
			c, resp := s.auth.create(t, opts, 0, nil)
			if _, err := s.finishRegistration(b, resp, "key"); err != nil {
				t.Fatal(err)
			}
			h := s.stored(u).Handle
			if len(h) != storage.PasskeyHandleLen || !bytes.Equal(h, c.Handle) {
				t.Fatalf("%s: stored handle %x, options had %x", u, h, c.Handle)
			}
			if bytes.Contains(h, []byte(u)) || bytes.Contains(h, []byte("alice@example.com")) || bytes.Equal(h, make([]byte, 64)) {
				t.Fatalf("%s: handle %x", u, h)
			}
			for v, other := range handles {
				if bytes.Equal(other, h) {
					t.Fatalf("%s and %s have the same handle", u, v)
				}
			}
			handles[u] = h
			// The next registration of the user offers the same handle.
			next := parseSoftOptions(t, s.beginRegistration(s.passkeySession(c)))
			if !bytes.Equal(next.PublicKey.User.ID, h) {
				t.Fatalf("%s: second registration offers handle %x, stored %x", u, []byte(next.PublicKey.User.ID), h)
			}
		}
	})
}

func TestPKY14Extensions(t *testing.T) {
	t.Run("PKY-14 credential A's PRF output cannot open credential B's slot", func(t *testing.T) {
		f := newFixture(t, true, nil)
		phone := f.passkeySession(f.cred)
		if _, err := f.unlock(phone, f.cred, nil); err != nil {
			t.Fatal(err)
		}
		cB, credB, err := f.register(phone, nil) // vault unlocked: B gets its slot at once
		if err != nil || !credB.CanUnlock {
			t.Fatalf("second passkey: %+v, %v", credB, err)
		}
		// alice's password session went with the change; phone is re-issued.
		opts := f.beginUnlock(phone)
		o := parseSoftOptions(t, opts)
		saltA := o.PublicKey.Extensions.PRF.EvalByCredential[b64(f.cred.ID)].First
		if len(saltA) != prfSaltLen || bytes.Equal(saltA, o.PublicKey.Extensions.PRF.EvalByCredential[b64(cB.ID)].First) {
			t.Fatalf("PRF salts: %x", saltA)
		}
		// B signs, with A's output (for A's salt) as its PRF result. The
		// assertion itself is right (B's counter is stored, as for any
		// assertion that verified); the output opens nothing.
		f.lock(phone)
		slots, err := f.vault.Slots(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.unlock(phone, cB, func(a *softAnswer) {
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(f.cred.prf(saltA))}}
		})
		wantErr(t, err, ErrUnlockFailed)
		if f.current(phone).Unlocked {
			t.Fatal("A's PRF output unlocked the session through B")
		}
		if after, err := f.vault.Slots(context.Background(), "alice"); err != nil || len(after) != len(slots) {
			t.Fatalf("slots %d -> %d, %v", len(slots), len(after), err)
		}
		// Each opens its own.
		f.lock(phone)
		if _, err := f.unlock(phone, cB, nil); err != nil {
			t.Fatalf("B's own unlock: %v", err)
		}
		f.lock(phone)
		if _, err := f.unlock(phone, f.cred, nil); err != nil {
			t.Fatalf("A's own unlock: %v", err)
		}
	})
	for name, edit := range map[string]func(*softAnswer){
		"no prf":              func(a *softAnswer) { delete(a.Extensions, "prf") },
		"prf without results": func(a *softAnswer) { a.Extensions["prf"] = map[string]any{"enabled": true} },
		"prf with a short first": func(a *softAnswer) {
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(randomBytes(8))}}
		},
		"no extensions at all": func(a *softAnswer) { a.Extensions = nil },
	} {
		t.Run("PKY-14 unlock answer with "+name, func(t *testing.T) {
			f := newFixture(t, true, nil)
			f.refuseUnlock(t, f.alice, "alice", f.cred, edit, ErrPRFUnavailable)
		})
	}
	unsolicited := func(a *softAnswer) {
		if a.Extensions == nil {
			a.Extensions = map[string]any{}
		}
		a.Extensions["credProps"] = map[string]any{"rk": true}
		a.Extensions["hmacGetSecret"] = map[string]any{"output1": b64(randomBytes(32))}
		a.Extensions["example.unknown"] = map[string]any{"x": 1}
	}
	t.Run("PKY-14 unsolicited extension outputs ignored at login", func(t *testing.T) {
		f := newFixture(t, false, nil)
		if res, err := f.login(newBrowser(), f.cred, func(a *softAnswer) {
			unsolicited(a)
			a.Extensions["prf"] = map[string]any{"results": map[string]any{"first": b64(randomBytes(32))}}
		}); err != nil || res.UserID != "alice" {
			t.Fatalf("login with unsolicited outputs: %+v, %v\n%s", res, err, f.logs)
		}
	})
	t.Run("PKY-14 unsolicited extension outputs ignored at unlock", func(t *testing.T) {
		f := newFixture(t, true, nil)
		f.lock(f.alice)
		if _, err := f.unlock(f.alice, f.cred, unsolicited); err != nil || !f.current(f.alice).Unlocked {
			t.Fatalf("unlock with unsolicited outputs: %v\n%s", err, f.logs)
		}
	})
	t.Run("PKY-14 unsolicited extension outputs ignored at registration", func(t *testing.T) {
		s := newSoftEnv(t, nil)
		if _, _, err := s.register(s.passwordSession("bob", false), func(a *softAnswer) {
			a.Extensions["largeBlob"] = map[string]any{"supported": true}
			a.Extensions["example.unknown"] = "x"
		}); err != nil {
			t.Fatalf("registration with unsolicited outputs: %v\n%s", err, s.logs)
		}
	})
}

// pad makes a right answer longer than MaxResponseLen with an unknown
// client extension output (which a shorter answer may carry).
func pad(a *softAnswer) {
	if a.Extensions == nil {
		a.Extensions = map[string]any{}
	}
	a.Extensions["example.pad"] = strings.Repeat("A", MaxResponseLen)
}

func TestMalformedResponses(t *testing.T) {
	// Each case makes the answer from the ceremony's options (a right
	// answer for the oversized case, which only its length spoils).
	type answer func(s *softEnv, c *softCred, opts []byte) []byte
	cases := map[string]answer{
		"oversized": nil,
		"garbage":   func(*softEnv, *softCred, []byte) []byte { return []byte("\x00not json{") },
		"empty":     func(*softEnv, *softCred, []byte) []byte { return nil },
		"JSON of something else": func(*softEnv, *softCred, []byte) []byte {
			return []byte(`{"a":1}`)
		},
		"truncated": func(*softEnv, *softCred, []byte) []byte {
			return []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{`)
		},
	}
	for name, mk := range cases {
		t.Run("PKY-14 login "+name+" answer", func(t *testing.T) {
			f := newFixture(t, false, nil)
			b := newBrowser()
			opts := f.beginLogin(b)
			resp := f.auth.get(t, f.cred, opts, pad)
			if mk != nil {
				resp = mk(f.softEnv, f.cred, opts)
			}
			before := f.stored("alice")
			_, err := f.finishLogin(b, resp)
			wantErr(t, err, ErrInvalidResponse)
			f.unchanged("alice", before)
			if f.current(b).UserID != "" {
				t.Fatal("a malformed answer made a session")
			}
		})
		t.Run("PKY-14 unlock "+name+" answer", func(t *testing.T) {
			f := newFixture(t, true, nil)
			f.lock(f.alice)
			opts := f.beginUnlock(f.alice)
			resp := f.auth.get(t, f.cred, opts, pad)
			if mk != nil {
				resp = mk(f.softEnv, f.cred, opts)
			}
			before := f.stored("alice")
			_, err := f.finishUnlock(f.alice, resp)
			wantErr(t, err, ErrInvalidResponse)
			f.unchanged("alice", before)
			if f.current(f.alice).Unlocked {
				t.Fatal("a malformed answer unlocked the session")
			}
		})
		t.Run("PKY-14 registration "+name+" answer", func(t *testing.T) {
			s := newSoftEnv(t, nil)
			bob := s.passwordSession("bob", false)
			opts := s.beginRegistration(bob)
			_, resp := s.auth.create(t, opts, 0, pad)
			if mk != nil {
				resp = mk(s, nil, opts)
			}
			_, err := s.finishRegistration(bob, resp, "x")
			wantErr(t, err, ErrInvalidResponse)
			s.unchanged("bob", storage.PasskeyRecord{})
		})
	}
}
