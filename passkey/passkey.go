package passkey

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/clientip"
	"github.com/keyhold/keyhold/internal/notify"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// Defaults and bounds of a Config.
const (
	// DefaultCeremonyTimeout is how long a ceremony's challenge lives:
	// WebAuthn's recommended 300 000 ms (PKY-01).
	DefaultCeremonyTimeout = 5 * time.Minute
	// MaxCeremonyTimeout bounds Config.CeremonyTimeout.
	MaxCeremonyTimeout = 10 * time.Minute
	// DefaultStepUpMaxAge bounds the age of the session's authentication
	// for adding or removing a passkey.
	DefaultStepUpMaxAge = 5 * time.Minute
	// MaxResponseLen is the longest browser answer (the JSON of a
	// PublicKeyCredential) the Finish calls take, in bytes; longer ones
	// are ErrInvalidResponse before anything is parsed.
	MaxResponseLen = 64 << 10
)

// COSE algorithm identifiers of the signature algorithms keyhold accepts.
const (
	algES256 = -7
	algEdDSA = -8
	algRS256 = -257
)

// Errors. Each matches with errors.Is; none carries a secret.
var (
	// ErrInvalidInput reports an argument out of bounds (a name, an ID)
	// or a Config that cannot work.
	ErrInvalidInput = errors.New("passkey: invalid input")
	// ErrInvalidResponse reports a browser answer that is not a
	// well-formed PublicKeyCredential of the expected ceremony, or is
	// longer than MaxResponseLen.
	ErrInvalidResponse = errors.New("passkey: malformed WebAuthn response")
	// ErrChallenge reports a ceremony whose challenge is gone: never
	// issued to this session (or this browser), already used, or
	// expired (PKY-01). Start the ceremony again.
	ErrChallenge = errors.New("passkey: no such ceremony: its challenge is unknown, used or expired")
	// ErrOrigin reports a request whose origin (scheme and host, the
	// scheme from a trusted proxy only) is not in Config.Origins.
	ErrOrigin = errors.New("passkey: request origin not allowed")
	// ErrRegistrationFailed reports a registration the WebAuthn checks
	// refused (origin, RP ID, challenge, type, flags, algorithm, a
	// credential ID over 1023 bytes, an attestation not chained to
	// Config.AttestationRoots when they are set).
	ErrRegistrationFailed = errors.New("passkey: registration refused")
	// ErrCredentialInUse reports a registration of a credential ID that
	// is already registered, to this user or another (PKY-10).
	ErrCredentialInUse = errors.New("passkey: credential already registered")
	// ErrLoginFailed is the one answer to a passkey login that did not
	// succeed for any reason the user could cause: an unknown or removed
	// credential, a bad signature, a locked account, a refused sign
	// count. Answer it as a failed login, whatever else it matches.
	ErrLoginFailed = errors.New("passkey: login failed")
	// ErrPossibleClone is matched, beside ErrLoginFailed or
	// ErrUnlockFailed, when an assertion's sign count did not grow and
	// the policy refused it (PKY-08). For the server's logs.
	ErrPossibleClone = errors.New("passkey: sign count did not increase: possible cloned authenticator")
	// ErrUnlockFailed reports a passkey unlock that did not succeed: the
	// assertion was refused, or its PRF output opens no slot.
	ErrUnlockFailed = errors.New("passkey: unlock failed")
	// ErrPRFUnavailable reports an unlock without a PRF output: the
	// user has no passkey that can unlock, or the browser or
	// authenticator returned no prf.results (PKY-14). Unlock with the
	// passphrase instead.
	ErrPRFUnavailable = errors.New("passkey: the passkey gave no PRF output")
	// ErrNotSetUp reports an unlock with a passkey that has no vault slot
	// yet (registered while the vault was locked, or its slot dropped by
	// a master-key rotation). Unlock another way, then run the unlock
	// ceremony with the vault unlocked to set the passkey up.
	ErrNotSetUp = errors.New("passkey: this passkey is not set up to unlock the vault yet")
	// ErrNoVault reports an unlock on a Manager without Config.Vault.
	ErrNoVault = errors.New("passkey: no vault configured")
	// ErrStepUpRequired reports a change (adding or removing a passkey)
	// without a recent, complete authentication at the account's highest
	// level: a multi-factor session if the user has a passkey or another
	// second factor (PKY-15).
	ErrStepUpRequired = errors.New("passkey: recent multi-factor authentication required")
	// ErrNotFound reports a credential the user does not have.
	ErrNotFound = errors.New("passkey: no such passkey")
	// ErrTooManyPasskeys reports a user at storage.MaxPasskeysPerUser.
	ErrTooManyPasskeys = errors.New("passkey: too many passkeys")
	// ErrVaultLocked reports the removal of a passkey that can unlock
	// the vault while the session's vault is locked: its vault slot can
	// only be removed with the vault unlocked. Unlock, then remove.
	ErrVaultLocked = errors.New("passkey: unlock the vault to remove a passkey that unlocks it")
	// ErrConflict reports a concurrent change to the user's passkeys
	// that this call did not overwrite. Try again.
	ErrConflict = errors.New("passkey: concurrent change; try again")
)

// SignCountPolicy says what happens when an assertion's signature counter
// does not grow while the stored one or the new one is non-zero (a sign
// of a cloned authenticator, WebAuthn §6.1.1, PKY-08). Every such
// assertion is logged (authn_passkey_clone_warning) and reported to the
// Notifier (keyhold.PasskeyCloneWarning) whatever the policy.
type SignCountPolicy uint8

const (
	// RejectUnlessSynced refuses a non-increasing counter for a
	// credential that cannot be backed up (BE=0: a hardware key whose
	// counter should only grow) and accepts it, flagged, for a synced
	// passkey (BE=1: copies on several devices legitimately share a
	// counter, most report 0). The default.
	RejectUnlessSynced SignCountPolicy = iota
	// RejectAlways refuses every non-increasing counter.
	RejectAlways
	// FlagOnly accepts every assertion and only flags the credential
	// (Credential.CloneWarning).
	FlagOnly
)

// SecondFactors tells whether a user has a second factor other than
// passkeys; *totp.Authenticator implements it.
type SecondFactors interface {
	// Enrolled reports whether userID has such a second factor; an error
	// means it could not tell.
	Enrolled(ctx context.Context, userID string) (bool, error)
}

// Config configures a Manager. RPID, Origins, Store, Challenges and
// Sessions are required.
type Config struct {
	// RPID is the WebAuthn relying party ID: the app's registrable
	// domain or a host under it ("example.com"), without scheme or
	// port. Passkeys are bound to it for life: changing it loses them.
	RPID string
	// RPName is the name browsers show ("Example"). Zero: RPID.
	RPName string
	// Origins are the exact origins the app is served from
	// ("https://example.com", "https://www.example.com"), each
	// "https://" plus a host that is RPID or under it (or, for
	// development, "http://localhost:PORT"). A ceremony is begun only for
	// a request whose own origin is listed, and completed only for a
	// browser answer whose clientDataJSON names the same origin
	// (PKY-03). Behind a TLS-terminating proxy, list the proxy in
	// TrustedProxies: otherwise the app sees plain HTTP and refuses
	// every ceremony with ErrOrigin.
	Origins []string
	// TrustedProxies are the proxies whose X-Forwarded-Proto/Forwarded
	// proto= is believed when the request's origin is worked out, as in
	// session.Config. The host is the request's Host header, which the
	// proxy must pass on unchanged.
	TrustedProxies []netip.Prefix

	// Store keeps the users' passkeys (credential records and PRF salts).
	Store storage.PasskeyStore
	// Challenges keeps each ceremony's server-side state until it is
	// used once or expires.
	Challenges storage.ChallengeStore
	// Sessions are the app's sessions: a passkey login starts one, a
	// change needs one, an unlock unlocks one.
	Sessions *session.Manager
	// Vault, if set, lets passkeys with the PRF extension unlock the
	// user's vault (BeginUnlock, FinishUnlock): each such passkey gets a
	// secret slot (FORMAT.md §3.2) opened by its PRF output.
	Vault *vault.Vault
	// Lockout counts every passkey attempt (login, unlock, and the
	// step-up of a complete session) against the user ID, as every other
	// way in does; a step-up that answers for a login pending its second
	// factor is counted on that login instead (FinishStepUp). Give it
	// the Lockout the app's other user-ID-keyed checks use (or one of its
	// own). Nil: no lockout (do not do this in production).
	Lockout *ratelimit.Lockout
	// SecondFactors, if set, tells whether the user has another second
	// factor (TOTP): then adding a passkey needs a multi-factor session.
	SecondFactors SecondFactors

	// CeremonyTimeout is how long a ceremony may take, from Begin to
	// Finish. Zero: DefaultCeremonyTimeout; at most MaxCeremonyTimeout.
	CeremonyTimeout time.Duration
	// StepUpMaxAge bounds the age of the session's authentication for
	// adding or removing a passkey. Zero: DefaultStepUpMaxAge.
	StepUpMaxAge time.Duration
	// SignCountPolicy is the policy for counters that do not grow. Zero:
	// RejectUnlessSynced.
	SignCountPolicy SignCountPolicy
	// AllowRS256 accepts RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257),
	// which some Windows Hello authenticators use, beside ES256 and
	// EdDSA. It is off by default: ASVS rates PKCS #1 v1.5 signatures
	// disallowed (SECURITY.md, PKY-07).
	AllowRS256 bool
	// AttestationRoots is the attestation policy (PKY-13). Nil, the
	// default: registration asks for "none" attestation and keeps
	// whatever statement comes, once go-webauthn has verified it, without
	// judging which authenticator made the passkey. Set: registration
	// asks for "direct" attestation and accepts only a verified statement
	// that carries a certificate chain (x5c: packed, tpm, android-key,
	// apple; fido-u2f too, though U2F keys cannot verify the user) whose
	// attestation certificate chains, through the statement's other
	// certificates, to one of these roots, every certificate valid at
	// Now; self attestation, "none", android-safetynet and compound
	// statements are ErrRegistrationFailed. Put the roots of the
	// authenticators you allow here (their vendors' attestation roots,
	// or the FIDO Metadata Service's); an empty pool refuses every
	// registration.
	AttestationRoots *x509.CertPool

	// Notifier is told of passkeys added and removed and of clone
	// warnings (keyhold.PasskeyAdded, PasskeyRemoved,
	// PasskeyCloneWarning).
	Notifier keyhold.Notifier
	// Logger receives the audit events. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Manager runs passkey ceremonies for an app. It is safe for concurrent
// use and immutable after New.
type Manager struct {
	cfg      Config
	wa       *webauthn.WebAuthn
	origins  map[string]bool
	resolver clientip.Resolver
	log      *slog.Logger
	insecure bool // the session cookies work over plain HTTP (development)
	dummyKey *ecdsa.PublicKey
}

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil || cfg.Challenges == nil || cfg.Sessions == nil:
		return nil, fmt.Errorf("%w: Config.Store, Challenges and Sessions are required", ErrInvalidInput)
	case cfg.RPID == "" || strings.ContainsAny(cfg.RPID, ":/ ") || len(cfg.RPID) > 253:
		return nil, fmt.Errorf("%w: Config.RPID must be a host name without scheme or port", ErrInvalidInput)
	case len(cfg.Origins) == 0:
		return nil, fmt.Errorf("%w: Config.Origins is required", ErrInvalidInput)
	case cfg.CeremonyTimeout < 0 || cfg.CeremonyTimeout > MaxCeremonyTimeout:
		return nil, fmt.Errorf("%w: Config.CeremonyTimeout must be at most %v", ErrInvalidInput, MaxCeremonyTimeout)
	case cfg.StepUpMaxAge < 0 || cfg.SignCountPolicy > FlagOnly:
		return nil, fmt.Errorf("%w: Config.StepUpMaxAge or SignCountPolicy out of range", ErrInvalidInput)
	}
	m := &Manager{cfg: cfg, origins: map[string]bool{}}
	for _, o := range cfg.Origins {
		if err := checkOrigin(o, cfg.RPID); err != nil {
			return nil, err
		}
		m.origins[o] = true
	}
	if m.cfg.RPName == "" {
		m.cfg.RPName = cfg.RPID
	}
	if m.cfg.CeremonyTimeout == 0 {
		m.cfg.CeremonyTimeout = DefaultCeremonyTimeout
	}
	if m.cfg.StepUpMaxAge == 0 {
		m.cfg.StepUpMaxAge = DefaultStepUpMaxAge
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	m.log = cfg.Logger
	if m.log == nil {
		m.log = slog.Default()
	}
	m.resolver = clientip.New(cfg.TrustedProxies)
	m.insecure = cfg.Sessions.Config().AllowInsecureCookies
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                              cfg.RPID,
		RPDisplayName:                     m.cfg.RPName,
		RPOrigins:                         append([]string(nil), cfg.Origins...),
		AttestationPreference:             attestationPreference(cfg.AttestationRoots),
		ExtensionsUnsolicitedOutputPolicy: protocol.UnsolicitedOutputPolicyIgnore,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: m.cfg.CeremonyTimeout, TimeoutUVD: m.cfg.CeremonyTimeout},
			Registration: webauthn.TimeoutConfig{Timeout: m.cfg.CeremonyTimeout, TimeoutUVD: m.cfg.CeremonyTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	m.wa = wa
	dummy, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	m.dummyKey = &dummy.PublicKey
	return m, nil
}

// checkOrigin accepts "https://host[:port]" with host RPID or under it,
// and "http://localhost[:port]" for an RPID of "localhost".
func checkOrigin(o, rpID string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		o != u.Scheme+"://"+u.Host {
		return fmt.Errorf("%w: origin %q is not scheme://host[:port]", ErrInvalidInput, o)
	}
	host := u.Hostname()
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("%w: origin %q is not on RP ID %q", ErrInvalidInput, o, rpID)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && host == "localhost") {
		return fmt.Errorf("%w: origin %q: only https (or http://localhost)", ErrInvalidInput, o)
	}
	return nil
}

// requestOrigin is the origin the request was made to: its scheme (TLS,
// or a trusted proxy's word) and Host header. It must be listed.
func (m *Manager) requestOrigin(r *http.Request) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	scheme := "http"
	if m.resolver.HTTPS(r) {
		scheme = "https"
	}
	o := scheme + "://" + strings.ToLower(r.Host)
	if !m.origins[o] {
		return "", ErrOrigin
	}
	return o, nil
}

// algorithms are the credential parameters registration offers, in order
// of preference.
func (m *Manager) algorithms() []protocol.CredentialParameter {
	p := []protocol.CredentialParameter{
		{Type: protocol.PublicKeyCredentialType, Algorithm: algES256},
		{Type: protocol.PublicKeyCredentialType, Algorithm: algEdDSA},
	}
	if m.cfg.AllowRS256 {
		p = append(p, protocol.CredentialParameter{Type: protocol.PublicKeyCredentialType, Algorithm: algRS256})
	}
	return p
}

func (m *Manager) algAllowed(alg int64) bool {
	return alg == algES256 || alg == algEdDSA || (alg == algRS256 && m.cfg.AllowRS256)
}

func (m *Manager) audit(ctx context.Context, level slog.Level, event, userID string, attrs ...slog.Attr) {
	m.log.LogAttrs(ctx, level, event, append([]slog.Attr{slog.String("user", userID)}, attrs...)...)
}

func (m *Manager) notify(ctx context.Context, r *http.Request, kind keyhold.EventKind, userID, detail string) {
	var ip netip.Addr
	if r != nil {
		ip, _ = m.resolver.Client(r)
	}
	if p := notify.Send(ctx, m.cfg.Notifier, keyhold.Event{Kind: kind, UserID: userID, Time: m.cfg.Now(), IP: ip, Detail: detail}); p != "" {
		m.audit(ctx, slog.LevelError, "sys_notify_fail", userID, slog.String("event", string(kind)), slog.String("panic", p))
	}
}

// load returns the user's record, or an empty one (version 0) with a new
// handle when the user has none.
func (m *Manager) load(ctx context.Context, userID string) (*record, error) {
	sr, err := m.cfg.Store.GetPasskeys(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		handle := make([]byte, storage.PasskeyHandleLen)
		rand.Read(handle)
		return &record{userID: userID, handle: handle}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(sr)
}

// save stores r over the version it was read at.
func (m *Manager) save(ctx context.Context, r *record) error {
	sr, err := r.storageRecord()
	if err != nil {
		return err
	}
	switch err := m.cfg.Store.PutPasskeys(ctx, sr, r.version); {
	case errors.Is(err, storage.ErrConflict):
		return ErrConflict
	case errors.Is(err, storage.ErrDuplicate):
		return ErrCredentialInUse
	case err != nil:
		return err
	}
	r.version++
	return nil
}

// attrCredential names a credential in the audit log by a short hash of
// its ID (credential IDs are public, but long).
func attrCredential(id []byte) slog.Attr {
	h := sha256.Sum256(id)
	return slog.String("credential", hex.EncodeToString(h[:8]))
}
