// Package totp adds a second factor to a keyhold app: time-based one-time
// passwords (RFC 6238) from an authenticator app, and login recovery
// codes for when the authenticator is lost. Codes, otpauth:// URIs and QR
// images come from github.com/pquerna/otp.
//
// # Enrollment
//
// Begin makes a secret (160 bits or more from crypto/rand) and returns an
// Enrollment: its QR code and URI for the user's app, and a setup token
// that carries the secret sealed and bound to the user, for ten minutes.
// Nothing is stored until Confirm receives a first right code: the
// authenticator is then stored with its secret sealed, and the confirming
// code counts as used. A user's first authenticator comes with a set of
// recovery codes, shown once.
//
// # Checking codes
//
// Verify (and VerifyLogin, which also completes the session's login)
// accepts a code for the current time step or the one before or after
// (Config.ExactStepOnly: the current step only), for SHA-1, SHA-256 or
// SHA-512 and 6 or 8 digits. Every code is checked through a
// ratelimit.Lockout counted per user across sessions, and costs the same
// work whether it is right, wrong, replayed or the account is locked. A
// code works once: the last accepted step of each authenticator is stored
// with a compare-and-swap, so of concurrent requests with one code exactly
// one succeeds, and a code for that step or an earlier one is refused.
//
// # Secrets at rest
//
// The secrets are sealed by a Sealer, with associated data binding each
// to its user and authenticator (a record copied to another user does not
// open). The app chooses:
//
//   - a KeyRing of application keys with IDs (AES-256-GCM): codes can be
//     checked at any time, which a login needs; the keys rotate without
//     downtime (ResealAll). A dump of the store without the ring holds no
//     secret; someone with both the store and the ring has the secrets.
//   - VaultSealer: each user's secrets are sealed under that user's
//     vault, so not even the app's keys open them, but a code can be
//     checked only while the vault is unlocked (a context from
//     WithVault). At login that means the passphrase and the code in one
//     request. Resetting a vault without a key loses the secrets too;
//     the user then logs in with a recovery code and enrolls again.
//
// # Recovery codes
//
// A set has 10 codes (Config.RecoveryCodes, up to 16), in the format of
// vault recovery keys: 160 bits each, so that storing a fast keyed hash of
// each (HMAC-SHA-256 with a random 128-bit salt per set, over the user ID
// and the code) is safe. UseRecoveryCode (RecoverLogin at login)
// normalises the input, compares it with every stored hash in constant
// time, and removes the one it matches with a compare-and-swap, so a code
// works once however many requests race with it. RecoveryStatus reports
// how many are left and when they run low; RegenerateRecoveryCodes
// replaces the set.
//
// # Sessions
//
// With Config.Sessions, the Authenticator works with package session:
// changes need a fresh step-up (the user's complete session, recently
// authenticated, multi-factor if the user has a second factor), and each
// change, and each login by recovery code, revokes the user's other
// sessions and re-issues the current one. A login by password of an
// enrolled user (Enrolled) starts with session.LoginOptions
// {SecondFactorPending: true}; VerifyLogin or RecoverLogin then marks the
// session with the factor, and session.Manager.RequireMultiFactor guards
// what needs both.
//
// Every change is logged (Config.Logger) and told to Config.Notifier.
//
// # Storage
//
// Each user's authenticators and recovery codes are one record in a
// storage.FactorStore, written by compare-and-swap. Keep it in a store that
// does not lose writes or evict keys (storage/sqlstore, like vault
// records): a lost write gives back a used code, and a lost record turns
// the user's second factor off, since a user without a record is a user
// who never enrolled. An emptied record (the last authenticator removed)
// is kept, empty, so that its version keeps growing; only Delete, for
// account deletion, removes it.
package totp
