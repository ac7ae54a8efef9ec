package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/vault"
)

// serviceName is a context word no password or passphrase may contain.
const serviceName = "credvault"

var validUsername = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

// maxSecretLen bounds passwords and passphrases before any work (kdf's own
// cap is 1024 bytes).
const maxSecretLen = 1024

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type passphraseRequest struct {
	Passphrase string `json:"passphrase"`
}

// signup makes an account (its login password, hashed with Argon2id) and
// logs it in; the vault comes next, with its own passphrase (set or
// import). Limited to 3 per hour per client address.
func (a *app) signup(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name, password := strings.ToLower(strings.TrimSpace(req.Username)), []byte(req.Password)
	if !validUsername.MatchString(name) {
		return &apiError{http.StatusBadRequest, "invalid_username", "A username is 1 to 32 of a-z, 0-9, '.', '_' and '-'."}
	}
	ip, _ := a.clients.Client(r)
	ctx := kdf.WithGateKey(r.Context(), "ip:"+ip.String())
	if err := checkPolicy(ctx, a.login, password, name, "password"); err != nil {
		return err
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	userID := rand.Text() // random, not the username: it names the vault and the sessions
	res, err := a.db.ExecContext(ctx, "INSERT INTO users (id, username, password_hash) VALUES (?, ?, ?) ON CONFLICT (username) DO NOTHING", userID, name, hash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &apiError{http.StatusConflict, "username_taken", "That username is taken."}
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "credvault.signup", "user", userID)
	writeJSON(w, http.StatusCreated, map[string]any{"username": name, "vault": "none"})
	return nil
}

// checkPolicy checks a new password or passphrase, answering 422 with the
// policy's reasons (never the secret).
func checkPolicy(ctx context.Context, p *kdf.Policy, secret []byte, username, what string) error {
	err := p.Check(ctx, secret, kdf.PolicyContext{Username: username, ServiceName: serviceName})
	pe, ok := errors.AsType[*kdf.PolicyError](err)
	if !ok {
		return err
	}
	out := &policyError{apiError: apiError{http.StatusUnprocessableEntity, "policy_violation",
		fmt.Sprintf("The %s does not meet the policy: %s.", what, policyText(p))}}
	for _, v := range pe.Violations {
		out.Reasons = append(out.Reasons, string(v.Reason))
	}
	return out
}

// policyText says what a policy asks for.
func policyText(p *kdf.Policy) string {
	c := p.Config()
	s := fmt.Sprintf("%d to %d characters", c.MinLength, c.MaxLength)
	if c.RequiredClasses != 0 {
		s += " with a lowercase and an uppercase letter, a digit and a symbol"
	}
	return s + ", not a common one, without the username or the service's name"
}

// errLoginFailed is the one answer to a failed login: a wrong password, an
// unknown user and a locked account look the same, in the answer and (by
// VerifyDummy and the lockout's dummy work) in time.
func badPassword(err error) bool {
	return errors.Is(err, kdf.ErrMismatch) || errors.Is(err, vault.ErrUnlockFailed) ||
		errors.Is(err, kdf.ErrTooLong) || errors.Is(err, kdf.ErrInvalidUTF8)
}

// loginHandler checks the account's password through the lockout (limited
// to 5 per 15 minutes per client address) and starts a session, locked.
func (a *app) loginHandler(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name, password := strings.ToLower(strings.TrimSpace(req.Username)), []byte(req.Password)
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	if !validUsername.MatchString(name) || len(password) > maxSecretLen { // no such account can exist
		_ = a.hasher.VerifyDummy(ctx, password)
		return errWrongLogin
	}
	var userID string
	err := a.lockout.Check(ctx, name, a.source(r), ratelimit.Credential{
		Verify: func(ctx context.Context) error {
			var stored string
			err := a.db.QueryRowContext(ctx, "SELECT id, password_hash FROM users WHERE username = ?", name).Scan(&userID, &stored)
			if errors.Is(err, sql.ErrNoRows) {
				return a.hasher.VerifyDummy(ctx, password) // kdf.ErrMismatch, after the same work
			}
			if err != nil {
				// (The vault's error also matches ErrUnlockFailed, a
				// wrong guess: it is not wrapped.)
				return fmt.Errorf("%w: no vault", ratelimit.ErrNotChecked)
			}
			rehash, err := a.hasher.Verify(ctx, stored, password)
			if err == nil && rehash {
				if hash, herr := a.hasher.Hash(ctx, password); herr == nil {
					_, _ = a.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, userID)
				}
			}
			return err
		},
		Dummy: func(ctx context.Context) error { return a.hasher.VerifyDummy(ctx, password) },
		Wrong: badPassword,
	})
	switch {
	case errors.Is(err, ratelimit.ErrRejected):
		a.log.InfoContext(ctx, "credvault.login_failed", "locked", errors.Is(err, ratelimit.ErrLocked))
		return errWrongLogin
	case errors.Is(err, kdf.ErrPasswordChangeRequired):
		return errPasswordReset
	case err != nil:
		return err
	}
	if err := a.m.Login(ctx, userID, session.LoginOptions{}); err != nil {
		return err
	}
	state, err := a.vaultState(ctx, userID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"username": name, "vault": state})
	return nil
}

// vaultState is "none" or "locked": a session that just logged in never
// holds the vault's keys.
func (a *app) vaultState(ctx context.Context, userID string) (string, error) {
	slots, err := a.vault.Slots(ctx, userID)
	if errors.Is(err, vault.ErrNoVault) || (err == nil && len(slots) == 0) {
		return "none", nil
	}
	if err != nil {
		return "", err
	}
	return "locked", nil
}

// source is where an attempt comes from, for the lockout.
func (a *app) source(r *http.Request) ratelimit.Source {
	ip, _ := a.clients.Client(r)
	return ratelimit.Source{IP: ip}
}

// usernameOf returns a logged-in user's name: the lockout counts failures
// by username on every path.
func (a *app) usernameOf(ctx context.Context, userID string) (string, error) {
	var name string
	err := a.db.QueryRowContext(ctx, "SELECT username FROM users WHERE id = ?", userID).Scan(&name)
	return name, err
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) error {
	if err := a.m.Logout(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"logged_in": false})
	return nil
}

func (a *app) lock(w http.ResponseWriter, r *http.Request) error {
	if err := a.m.Lock(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"vault": "locked"})
	return nil
}

// kdfAllowed spends one unit of the per-address and per-account limits of
// the requests that run a KDF for a logged-in user, before any work.
func (a *app) kdfAllowed(w http.ResponseWriter, r *http.Request, userID string) error {
	ip, _ := a.clients.Client(r)
	d, err := a.kdfGuard.Allow(r.Context(), ip, userID)
	if err != nil {
		return err
	}
	if !d.Allowed {
		a.tooMany(w, r, d)
		return errAnswered
	}
	return nil
}

// errAnswered means the response has been written already.
var errAnswered = errors.New("answered")

// setPassphrase creates the user's vault under a passphrase that meets the
// policy, and unlocks the session. The passphrase is never stored: the
// vault keeps only its master key wrapped under a key derived from it.
func (a *app) setPassphrase(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	var req passphraseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	pass := []byte(req.Passphrase)
	if err := checkPolicy(r.Context(), a.vaultPP, pass, name, "passphrase"); err != nil {
		return err
	}
	if err := a.kdfAllowed(w, r, info.UserID); err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	u, err := a.vault.Create(ctx, info.UserID, pass)
	if errors.Is(err, vault.ErrExists) {
		return errVaultExists
	}
	if err != nil {
		return err
	}
	defer u.Lock()
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "credvault.vault_created", "user", info.UserID)
	writeJSON(w, http.StatusCreated, map[string]any{"vault": "unlocked"})
	return nil
}

// unlockRequest unlocks with the passphrase, or with a recovery key.
type unlockRequest struct {
	Passphrase  string `json:"passphrase"`
	RecoveryKey string `json:"recovery_key"`
}

// unlock opens the vault with its passphrase or a recovery key, through
// the lockout (wrong passphrases and keys count with wrong passwords),
// after the per-address and per-account limits. A recovery key is used
// up: the answer carries its replacement, shown once, even when the
// session could not be unlocked after the vault opened.
func (a *app) unlock(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	var req unlockRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.kdfAllowed(w, r, info.UserID); err != nil {
		return err
	}
	useKey := req.RecoveryKey != ""
	u, newKey, err := a.checkVault(r, info.UserID, req.Passphrase, req.RecoveryKey)
	if err != nil {
		return err
	}
	defer u.Lock()
	if err := a.m.Unlock(r.Context(), u); err != nil {
		if !useKey {
			return err
		}
		// The vault has spent the key and stored its replacement: the
		// replacement goes to whoever proved the key, in the error's
		// answer too (a logout that landed meanwhile, say), or the user
		// is left without a working recovery key.
		ae := errNotLoggedIn
		if !errors.Is(err, session.ErrNotLoggedIn) {
			a.log.ErrorContext(r.Context(), "credvault.error", "path", r.URL.Path, "error", err)
			ae = &apiError{http.StatusInternalServerError, "internal", "Something went wrong on our side."}
		}
		a.log.InfoContext(r.Context(), "credvault.recovery_key_used", "user", info.UserID, "session_unlocked", false)
		writeJSON(w, ae.Status, map[string]any{"error": ae, "new_recovery_key": newKey.Reveal()})
		return nil
	}
	out := map[string]any{"vault": "unlocked"}
	if useKey {
		a.log.InfoContext(r.Context(), "credvault.recovery_key_used", "user", info.UserID)
		out["new_recovery_key"] = newKey.Reveal() // the used one's replacement, shown once (no-store)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkVault opens the user's vault with the passphrase, or with the
// recovery key if one is given, through the account's lockout.
func (a *app) checkVault(r *http.Request, userID, passphrase, recoveryKey string) (*vault.Unlocked, vault.RecoveryKey, error) {
	name, err := a.usernameOf(r.Context(), userID)
	if err != nil {
		return nil, vault.RecoveryKey{}, err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	pass := []byte(passphrase)
	var u *vault.Unlocked
	var newKey vault.RecoveryKey
	noVault := false
	err = a.lockout.Check(ctx, name, a.source(r), ratelimit.Credential{
		Verify: func(ctx context.Context) (err error) {
			if recoveryKey != "" {
				if len(recoveryKey) > 64 {
					return ratelimit.ErrWrongCredential
				}
				u, newKey, err = a.vault.UnlockWithRecoveryKey(ctx, userID, recoveryKey)
			} else {
				u, err = a.vault.Unlock(ctx, userID, pass)
			}
			if noVault = errors.Is(err, vault.ErrNoVault); noVault {
				// Nothing to guess at, so not a wrong guess (the
				// lockout gives the attempt back): a user without a
				// vault who asks does not lock their own login out.
				// The vault's error is not wrapped: it matches
				// ErrUnlockFailed, which the lockout counts.
				return fmt.Errorf("%w: no vault", ratelimit.ErrNotChecked)
			}
			return err
		},
		Dummy: func(ctx context.Context) error {
			if recoveryKey != "" {
				// A recovery key's check is an HKDF and an AES-GCM open per
				// slot: microseconds, no slow KDF to imitate.
				return ratelimit.ErrWrongCredential
			}
			return a.vault.UnlockDummy(ctx, pass)
		},
		Wrong: badPassword,
	})
	switch {
	case noVault:
		// The user is logged in: telling them they have no vault yet
		// reveals nothing to anyone else.
		return nil, newKey, errNoVault
	case errors.Is(err, ratelimit.ErrRejected):
		a.log.InfoContext(ctx, "credvault.unlock_failed", "user", userID, "locked", errors.Is(err, ratelimit.ErrLocked))
		return nil, newKey, errWrongPass
	case errors.Is(err, vault.ErrConflict):
		return nil, newKey, &apiError{http.StatusConflict, "conflict", "The vault changed meanwhile; try again."}
	case err != nil:
		return nil, newKey, err
	}
	return u, newKey, nil
}

// recoveryKey makes a new recovery key, replacing any the vault had, and
// shows it once. Changing the ways into the vault needs the passphrase
// again (a step-up), not only an unlocked session.
func (a *app) recoveryKey(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	var req passphraseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.kdfAllowed(w, r, info.UserID); err != nil {
		return err
	}
	u, _, err := a.checkVault(r, info.UserID, req.Passphrase, "")
	if err != nil {
		return err
	}
	defer u.Lock()
	keys, err := a.vault.RegenerateRecoveryKeys(r.Context(), u, 1)
	if errors.Is(err, vault.ErrConflict) {
		return &apiError{http.StatusConflict, "conflict", "The vault changed meanwhile; try again."}
	}
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "credvault.recovery_key_made", "user", info.UserID)
	writeJSON(w, http.StatusCreated, map[string]any{"recovery_key": keys[0].Reveal()})
	return nil
}

// importRequest carries a credentials file of the system users come from
// (FORMAT.md §3.5) with the passphrase it was encrypted under.
type importRequest struct {
	Passphrase string          `json:"passphrase"`
	File       json.RawMessage `json:"file"`
	// Site names the service the imported login is for; "imported" when
	// empty.
	Site string `json:"site"`
}

// importFile moves a user off a Fernet credentials file: keyhold checks
// the passphrase against the file (PBKDF2-SHA256, 480,000 iterations),
// opens every credential, makes the user's vault with the same passphrase
// and re-seals them; the app stores them as one credential. A wrong
// passphrase, a tampered file or any failure leaves nothing behind: no
// vault and no credential.
func (a *app) importFile(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	var req importRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	site := req.Site
	if site == "" {
		site = "imported"
	}
	if err := checkLen("site", site, maxSiteLen); err != nil {
		return err
	}
	if len(req.File) == 0 {
		return &apiError{http.StatusBadRequest, "invalid_file", "Send the credentials file as the JSON object \"file\"."}
	}
	name, err := a.usernameOf(r.Context(), info.UserID)
	if err != nil {
		return err
	}
	pass := []byte(req.Passphrase)
	// The passphrase becomes the vault's: it must meet the same policy,
	// which is the rule that system had (plus the blocklist).
	if err := checkPolicy(r.Context(), a.vaultPP, pass, name, "passphrase"); err != nil {
		return err
	}
	if err := a.kdfAllowed(w, r, info.UserID); err != nil {
		return err
	}
	ctx := kdf.WithGateKey(r.Context(), "account:"+name)
	u, creds, err := a.vault.ImportFernetCredentials(ctx, info.UserID, pass, bytes.NewReader(req.File))
	switch {
	case errors.Is(err, vault.ErrExists):
		return errVaultExists
	case errors.Is(err, vault.ErrUnlockFailed), errors.Is(err, kdf.ErrTooLong):
		// The passphrase is checked against the uploaded file, not against
		// anything stored: a guess here tells nothing the file's holder
		// could not learn offline, so it is not counted by the lockout
		// (the KDF limits above still apply).
		return &apiError{http.StatusUnauthorized, "wrong_passphrase", "Wrong passphrase for this file (or the file was altered)."}
	case errors.Is(err, vault.ErrInvalidInput):
		return &apiError{http.StatusBadRequest, "invalid_file", "The file is not a credentials file of the expected format (FORMAT.md §3.5)."}
	case err != nil:
		return err
	}
	defer u.Lock()
	id, err := a.storeImported(ctx, u, creds, site)
	if err != nil {
		// Nothing partial: without its credential, the new vault goes too,
		// so that the user can import again.
		if derr := a.vault.Delete(context.WithoutCancel(ctx), info.UserID); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	}
	if err := a.m.Unlock(ctx, u); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "credvault.imported", "user", info.UserID, "credential", id)
	writeJSON(w, http.StatusCreated, map[string]any{"vault": "unlocked", "id": id})
	return nil
}

// storeImported opens the credentials that ImportFernetCredentials sealed
// and stores them as one of the app's credentials.
func (a *app) storeImported(ctx context.Context, u *vault.Unlocked, creds []vault.ImportedCredential, site string) (string, error) {
	c := credential{Site: site}
	for _, ic := range creds {
		v, err := u.Open(ic.Sealed, ic.Context)
		if err != nil {
			return "", err
		}
		switch ic.Name {
		case "email":
			c.Username = string(v)
		case "password":
			c.Password = string(v)
		case "mfa_secret":
			c.MFASecret = string(v)
		}
		clear(v)
	}
	if err := c.check(); err != nil {
		return "", err
	}
	return a.insertCredential(ctx, u, c)
}

// status reports the session's and the vault's security state, and the
// parameters in force. It holds no secret.
func (a *app) status(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	info, _ := a.m.Current(ctx) // RequireLogin ran
	name, err := a.usernameOf(ctx, info.UserID)
	if err != nil {
		return err
	}
	now := a.now()
	var lastSeen time.Time
	devices, err := a.m.Devices(ctx, info.UserID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if d.Current {
			lastSeen = d.LastSeen
		}
	}
	slots, err := a.vault.Slots(ctx, info.UserID)
	if err != nil && !errors.Is(err, vault.ErrNoVault) {
		return err
	}
	type slot struct {
		ID         string `json:"id"`
		Kind       string `json:"kind"`
		KeyVersion uint32 `json:"key_version"`
	}
	out := struct {
		Username string `json:"username"`
		Session  struct {
			LoggedIn           bool      `json:"logged_in"`
			ExpiresAt          time.Time `json:"expires_at"`
			IdleTimeoutSeconds int64     `json:"idle_timeout_seconds"`
		} `json:"session"`
		Vault struct {
			Exists   bool `json:"exists"`
			Unlocked bool `json:"unlocked"`
			// The idle lock: after LockAfterSeconds without a request
			// the session's copy of the vault's keys is wiped. While
			// unlocked, LocksAt is when that happens if no other request
			// comes (SecondsLeft from now); every request resets it.
			LockAfterSeconds int64      `json:"lock_after_seconds"`
			LocksAt          *time.Time `json:"locks_at,omitempty"`
			SecondsLeft      *int64     `json:"seconds_left,omitempty"`
			Slots            []slot     `json:"slots"`
			RecoveryKeys     int        `json:"recovery_keys"`
			Cipher           string     `json:"cipher"`
		} `json:"vault"`
		KDF struct {
			Vault  kdfParams `json:"vault"`
			Login  kdfParams `json:"login"`
			Import kdfParams `json:"import"`
		} `json:"kdf"`
		Policy struct {
			MinLength       int    `json:"min_length"`
			MaxLength       int    `json:"max_length"`
			RequiredClasses string `json:"required_classes"`
		} `json:"passphrase_policy"`
	}{Username: name}
	out.Session.LoggedIn = true
	out.Session.ExpiresAt = info.Expires.UTC()
	out.Session.IdleTimeoutSeconds = int64(idleLogout / time.Second)
	out.Vault.Exists = len(slots) > 0
	out.Vault.Unlocked = info.Unlocked
	out.Vault.LockAfterSeconds = int64(idleLock / time.Second)
	if info.Unlocked && !lastSeen.IsZero() {
		at := lastSeen.Add(idleLock).UTC()
		left := max(int64(at.Sub(now)/time.Second), 0)
		out.Vault.LocksAt, out.Vault.SecondsLeft = &at, &left
	}
	out.Vault.Slots = []slot{}
	for _, s := range slots {
		out.Vault.Slots = append(out.Vault.Slots, slot{s.ID, s.Kind.String(), s.KeyVersion})
		if s.Kind == vault.SlotRecovery {
			out.Vault.RecoveryKeys++
		}
	}
	out.Vault.Cipher = "AES-256-GCM per credential, bound to the user and the credential's ID"
	out.KDF.Vault = paramsOf(a.vault.Config().KDF)
	out.KDF.Login = paramsOf(a.hasher.Params())
	out.KDF.Import = kdfParams{Algorithm: "pbkdf2-sha256", Iterations: 480_000, SaltBytes: 16}
	pc := a.vaultPP.Config()
	out.Policy.MinLength, out.Policy.MaxLength, out.Policy.RequiredClasses = pc.MinLength, pc.MaxLength, pc.RequiredClasses.String()
	writeJSON(w, http.StatusOK, out)
	return nil
}

// kdfParams are a KDF's parameters as the status shows them.
type kdfParams struct {
	Algorithm  string `json:"algorithm"`
	MemoryKiB  uint32 `json:"memory_kib,omitempty"`
	Time       uint32 `json:"time,omitempty"`
	Threads    uint8  `json:"threads,omitempty"`
	Iterations uint32 `json:"iterations,omitempty"`
	SaltBytes  int    `json:"salt_bytes"`
}

func paramsOf(p kdf.Params) kdfParams {
	return kdfParams{Algorithm: string(p.Algorithm), MemoryKiB: p.MemoryKiB, Time: p.Time, Threads: p.Threads, Iterations: p.Iterations, SaltBytes: p.SaltLen}
}
