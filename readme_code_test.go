package keyhold_test

// The code of README.md. Every ```go block of the README is a region of this
// file, between a "// readme:begin NAME" and a "// readme:end NAME" line;
// TestReadmeBlocksAreTestedCode checks that the README shows exactly these
// regions, and the other tests of readme_test.go run them. The functions'
// signatures are not shown in the README: their parameters are the names a
// snippet uses without declaring them (ctx, name, password, store, …).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
)

var (
	errBadLogin = errors.New("wrong name or password")
	errTryLater = errors.New("busy, try again later")
)

// readmeKDF holds what the README's setup makes.
type readmeKDF struct {
	hasher *kdf.Hasher
	policy *kdf.Policy
}

func readmeSetup(out *readmeKDF) error {
	// readme:begin setup
	gate, err := kdf.NewGate(kdf.GateConfig{}) // one per process: bounds concurrent KDF runs and their memory
	if err != nil {
		return err
	}
	hasher, err := kdf.New(kdf.Config{Gate: gate}) // Argon2id, m=19 MiB, t=2, p=1
	if err != nil {
		return err
	}
	policy, err := kdf.NewPolicy(kdf.SingleFactorPolicy()) // NIST SP 800-63B: 15+ code points, blocklist
	if err != nil {
		return err
	}
	// readme:end setup
	out.hasher, out.policy = hasher, policy
	return nil
}

// hashes stands for the application's table of users.
func readmeSignUp(ctx context.Context, hasher *kdf.Hasher, policy *kdf.Policy, hashes map[string]string, name string, password []byte) error {
	// readme:begin signup
	if err := policy.Check(ctx, password, kdf.PolicyContext{Username: name}); err != nil {
		return err // a *kdf.PolicyError listing every reason (errors.Is(err, kdf.ErrTooShort), …)
	}
	stored, err := hasher.Hash(ctx, password) // "$argon2id$v=19$m=19456,t=2,p=1$…"
	if err != nil {
		return err
	}
	hashes[name] = stored
	// readme:end signup
	return nil
}

func readmeLogin(ctx context.Context, hasher *kdf.Hasher, hashes map[string]string, name string, password []byte) error {
	// readme:begin login
	var needsRehash bool
	var err error
	if stored, ok := hashes[name]; ok {
		needsRehash, err = hasher.Verify(ctx, stored, password)
	} else {
		err = hasher.VerifyDummy(ctx, password) // the same work: the time does not reveal which accounts exist
	}
	switch {
	case errors.Is(err, kdf.ErrMismatch), errors.Is(err, kdf.ErrTooLong), errors.Is(err, kdf.ErrInvalidUTF8):
		return errBadLogin
	case errors.Is(err, kdf.ErrBusy):
		return errTryLater // the gate's queue is full: answer 503
	case err != nil:
		return err
	case needsRehash: // older parameters or an imported hash: upgrade it now
		if hashes[name], err = hasher.Hash(ctx, password); err != nil {
			return err
		}
	}
	// readme:end login
	return nil
}

func readmeVault(ctx context.Context, hasher *kdf.Hasher, userID string, passphrase, note []byte) error {
	// readme:begin vault
	store, err := sqlstore.OpenSQLite(ctx, "keyhold.db", sqlstore.Config{}) // created 0600; refuses a world-readable file
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := vault.New(store, vault.Config{Hasher: hasher}) // shares the hasher's gate
	if err != nil {
		return err
	}

	u, err := v.Create(ctx, userID, passphrase) // random 256-bit master key, one passphrase slot
	if errors.Is(err, vault.ErrExists) {
		u, err = v.Unlock(ctx, userID, passphrase) // made by an earlier run: unlock it
	}
	if err != nil {
		return err // vault.ErrUnlockFailed: wrong passphrase; kdf.ErrBusy, kdf.ErrTooLong, store errors: their own
	}
	defer u.Lock() // wipes the key

	keys, err := v.RegenerateRecoveryKeys(ctx, u, 2) // replaces earlier ones; show keys[i].Reveal() to the user once
	if err != nil {
		return err
	}
	sealed, err := u.SealVersion(note, []byte("notes/42/body"), 1) // AES-256-GCM, bound to user, context, key and record version
	if err != nil {
		return err
	}
	plain, version, err := u.OpenVersion(sealed, []byte("notes/42/body"), 1) // vault.ErrRollback below version 1, else vault.ErrDecrypt
	if err != nil {
		return err
	}
	fmt.Printf("%d recovery keys; note version %d: %s\n", len(keys), version, plain)
	// readme:end vault
	return nil
}

// readmeSessions sets *out to the README's session handler.
func readmeSessions(store *sqlstore.Store, v *vault.Vault, out *http.Handler) error {
	// readme:begin sessions
	m, err := session.New(store, session.Config{
		AllowInsecureCookies: true, // development over plain HTTP on 127.0.0.1; remove in production (__Host- cookie, HTTPS)
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		userID, passphrase := r.PostFormValue("user"), []byte(r.PostFormValue("passphrase"))
		u, err := v.Unlock(r.Context(), userID, passphrase) // here the vault's passphrase is the password
		if err != nil {
			http.Error(w, "wrong name or passphrase", http.StatusUnauthorized) // (kdf.ErrBusy: 503)
			return
		}
		defer u.Lock()
		err = m.Login(r.Context(), userID, session.LoginOptions{}) // a new token: no fixation
		if err == nil {
			err = m.Unlock(r.Context(), u) // the vault's keys, sealed under a key derived from the cookie, kept with the session
		}
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/notes", http.StatusSeeOther)
	})
	mux.Handle("GET /notes", m.RequireUnlocked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.Unlocked(r.Context()) // opened for this request, wiped when it ends
		if err != nil {
			http.Error(w, "locked", http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "notes of", u.UserID()) // u.OpenVersion(…)
	})))

	handler := session.SecurityHeaders(session.Headers{}, // CSP, frame denial, nosniff, HSTS over TLS
		http.NewCrossOriginProtection().Handler(m.Handler(mux))) // CSRF: cross-origin POSTs get 403
	// readme:end sessions
	*out = handler
	return nil
}

// readmeBruteForce routes POST /login of mux to the login handler of the
// README's brute-force section, behind its per-address limit, and sets
// *out to the handler without that limit.
func readmeBruteForce(mux *http.ServeMux, store *sqlstore.Store, hasher *kdf.Hasher, proxies []netip.Prefix, deviceKey []byte,
	checkPassword func(ctx context.Context, name string, password []byte) error, out *http.Handler) error {
	// readme:begin bruteforce-setup
	clients, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: proxies})
	if err != nil {
		return err
	}
	perIP, err := ratelimit.New(store, ratelimit.LoginPerIP(), ratelimit.Options{}) // 5 per 15 min per address
	if err != nil {
		return err
	}
	lockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{}) // 10 failures: 1 h, growing to 24 h
	if err != nil {
		return err
	}
	devices, err := ratelimit.NewDevices(deviceKey, ratelimit.DeviceOptions{ // the owner's browsers keep their own count
		AllowInsecureCookies: true, CookieName: "keyhold-device", // development over plain HTTP; remove in production
	})
	if err != nil {
		return err
	}
	// readme:end bruteforce-setup

	check := func(w http.ResponseWriter, r *http.Request) error {
		ctx, name, password := r.Context(), r.PostFormValue("name"), []byte(r.PostFormValue("password"))
		// readme:begin bruteforce-check
		ip, _ := clients.Client(r)                  // no address (ok false): the attempt counts per account
		ctx = kdf.WithGateKey(ctx, "account:"+name) // one name's flood waits its turn at the KDF gate
		err := lockout.Check(ctx, name, ratelimit.Source{IP: ip, Device: devices.Recognize(r, name)}, ratelimit.Credential{
			Verify: func(ctx context.Context) error { return checkPassword(ctx, name, password) }, // kdf.ErrMismatch if wrong or unknown
			Dummy:  func(ctx context.Context) error { return hasher.VerifyDummy(ctx, password) },  // the same work, for a locked name
		})
		switch {
		case errors.Is(err, ratelimit.ErrRejected): // wrong password OR locked: one answer, after the same work
			return errBadLogin
		case err != nil: // the store or the KDF gate failed (503); the attempt was not counted
			return err
		}
		return devices.Remember(w, name) // logged in
		// readme:end bruteforce-check
	}
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := check(w, r); {
		case errors.Is(err, errBadLogin):
			http.Error(w, err.Error(), http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		}
	})
	// readme:begin bruteforce-route
	mux.Handle("POST /login", perIP.Middleware(ratelimit.ByIP(clients), nil)(login)) // 429, Retry-After, RateLimit headers
	// readme:end bruteforce-route
	*out = login
	return nil
}

// readmeTOTP makes the README's TOTP Authenticator (region totp-setup)
// and serves its enrollment and login steps on mux.
func readmeTOTP(mux *http.ServeMux, store *sqlstore.Store, m *session.Manager, totpKey []byte, out **totp.Authenticator) error {
	// readme:begin totp-setup
	ring, err := totp.NewKeyRing("2026-12", map[string][]byte{"2026-12": totpKey}) // 32 bytes kept outside the database
	if err != nil {
		return err
	}
	codeLockout, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "totp"}) // wrong codes, per user, across logins
	if err != nil {
		return err
	}
	auth, err := totp.New(totp.Config{Store: store, Sealer: ring, Lockout: codeLockout, Issuer: "Example", Sessions: m})
	if err != nil {
		return err
	}
	// readme:end totp-setup
	*out = auth

	mux.Handle("GET /2fa/setup", m.RequireFresh(5*time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		// readme:begin totp-begin
		e, err := auth.Begin(r.Context(), info.UserID, "ann@example.com") // a new secret; nothing stored yet
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		qr, err := e.QRCode(256) // a PNG of e.URI() for the user's app; e.Secret() to type it instead
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		// Show the QR code, and a form that posts e.Token (sealed, bound to the user) with the first code.
		// readme:end totp-begin
		w.Header().Set("X-Setup-Token", e.Token) // for the test; a page would embed both
		w.Header().Set("X-Secret", e.Secret())
		w.Write(qr)
	})))
	mux.Handle("POST /2fa/setup", m.RequireFresh(5*time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		ip := netip.MustParseAddr("192.0.2.1")
		// readme:begin totp-confirm
		confirmed, err := auth.Confirm(r.Context(), info.UserID, r.PostFormValue("token"), r.PostFormValue("code"),
			ratelimit.Source{IP: ip}, totp.ConfirmOptions{Name: "Phone"})
		switch {
		case errors.Is(err, ratelimit.ErrRejected): // a wrong code (or too many): show the QR again (auth.Pending)
			http.Error(w, "wrong code", http.StatusUnauthorized)
			return
		case errors.Is(err, totp.ErrStepUpRequired): // the password must be entered again first
			http.Redirect(w, r, "/reauth", http.StatusSeeOther)
			return
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		for _, c := range confirmed.RecoveryCodes { // the user's first second factor: show the codes once
			fmt.Fprintln(w, c.Reveal())
		}
		// readme:end totp-confirm
	})))
	mux.Handle("POST /login/code", m.RequireFirstFactor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := netip.MustParseAddr("192.0.2.1")
		// readme:begin totp-login
		err := auth.VerifyLogin(r.Context(), r.PostFormValue("code"), ratelimit.Source{IP: ip})
		switch {
		case errors.Is(err, session.ErrTooManySecondFactorFailures): // the pending login ended; the user was told
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		case errors.Is(err, ratelimit.ErrRejected): // wrong, replayed, or locked: one answer
			http.Error(w, "wrong code", http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		default: // the session is now password+totp (Info.Factors), re-issued
			http.Redirect(w, r, "/notes", http.StatusSeeOther)
		}
		// readme:end totp-login
	})))
	return nil
}

// readmeTOTPPassword is the README's password step for a user who may be
// enrolled: a session pending the second factor, or a complete one.
func readmeTOTPPassword(ctx context.Context, auth *totp.Authenticator, m *session.Manager, userID string) error {
	// readme:begin totp-password
	enrolled, err := auth.Enrolled(ctx, userID) // after the right password
	if err != nil {
		return err
	}
	// Pending: 5 minutes, refused by RequireLogin/RequireUnlocked until the code; send the user to the code form.
	return m.Login(ctx, userID, session.LoginOptions{SecondFactorPending: enrolled})
	// readme:end totp-password
}
