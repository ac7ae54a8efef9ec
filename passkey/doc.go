// Package passkey adds WebAuthn passkeys to an app built on keyhold:
// registration behind a fresh step-up, usernameless sign-in, and
// unlocking the user's vault with a passkey's PRF output, the way a
// password manager unlocks its vault with a passkey. It is a thin layer
// over github.com/go-webauthn/webauthn, whose types stay out of this
// API: options go to the browser as JSON, and the browser's answers come
// back as JSON bytes.
//
// # Ceremonies
//
// Each ceremony is two calls: Begin returns the options for
// navigator.credentials (the JSON of {"publicKey": …}), Finish takes the
// browser's PublicKeyCredential (WebAuthn Level 3 JSON). The random
// challenge (32 bytes) stays on the server (Config.Challenges), bound to
// what asked for it, used once by an atomic take, and refused after
// Config.CeremonyTimeout (5 minutes) by this package's clock as well as
// the store's (PKY-01):
//
//   - Registration ([Manager.BeginRegistration],
//     [Manager.FinishRegistration]) is bound to the session: the user's,
//     complete, authenticated within StepUpMaxAge, and multi-factor when
//     the user already has a passkey or another second factor (PKY-15).
//     Passkeys are discoverable, user-verified, ES256 or EdDSA (RS256
//     only with Config.AllowRS256), with the PRF extension asked for
//     with a new random salt per passkey. Attestation is "none" unless
//     Config.AttestationRoots is set: then it is "direct", and only a
//     verified statement whose certificate chain verifies to one of
//     those roots is accepted (PKY-13). The user
//     handle is 64 random bytes per user, never the app's user ID
//     (PKY-12). Adding a passkey revokes the user's other sessions,
//     re-issues this one, and tells the Notifier.
//
//   - Sign-in ([Manager.BeginLogin], [Manager.FinishLogin]) is
//     usernameless: the options name no user (PKY-16), and the challenge
//     is bound to a random token in a cookie of the browser that began.
//     The user is the owner of the answer's user handle, the attempt goes
//     through Config.Lockout for that user, and a right answer logs the
//     user in with session.FactorPasskey: a user-verified passkey is a
//     complete, multi-factor, phishing-resistant sign-in, with no TOTP on
//     top. Every refusal the client could cause is [ErrLoginFailed], after
//     the same work.
//
//   - Unlock ([Manager.BeginUnlock], [Manager.FinishUnlock]) is bound to
//     the session: it asks the user's passkeys that support PRF for their
//     output over each one's own salt (the browser module gives the
//     authenticator an input derived from the salt, FORMAT.md §7.3, so
//     that a server cannot ask for an input of another domain, such as
//     package vault/zk's, through it), and the output opens the passkey's
//     vault slot (vault's secret slots, FORMAT.md §3.2), or, when the
//     vault is unlocked already, becomes that slot. WebAuthn sends
//     per-credential salts only to listed credentials, so a usernameless
//     sign-in cannot unlock in the same prompt: an app that wants both
//     runs the unlock ceremony right after the sign-in (a second prompt).
//
//   - Step-up ([Manager.BeginStepUp], [Manager.FinishStepUp]) is bound
//     to the session: it lists the user's passkeys, and a right answer
//     records session.FactorPasskey in the session (fresh, multi-factor,
//     re-issued), keeping its user and its vault as they were. It is also
//     how a passkey serves as the second factor of a login pending one.
//
// Every assertion is checked as WebAuthn §7.2 says (type, challenge,
// origin, RP ID hash, UP and UV, BE and BS, the signature with the stored
// key; the credential must be the identified user's, and for an unlock
// one of those listed); then the signature counter follows
// Config.SignCountPolicy (PKY-08), and the credential's counter, backup
// state and last use are written by compare-and-swap only after every
// check passed (PKY-09).
//
// # Origins and proxies
//
// Config.Origins lists the exact origins the app is served from. A Begin
// call works out the request's own origin (the Host header, and https
// only over TLS or from a proxy in Config.TrustedProxies) and refuses one
// that is not listed (ErrOrigin); the ceremony is then bound to that
// origin, and the browser's clientDataJSON must name it (PKY-03).
//
// # In the browser
//
// The browser side is a few lines of JavaScript around
// navigator.credentials.create and .get: they POST to the app's Begin
// endpoint, convert the options' base64url fields to ArrayBuffers, call
// the browser, and POST the credential as JSON to the Finish endpoint.
// PRF outputs are in the credential's clientExtensionResults: the page
// sends them to the server (over TLS) once, and the server neither keeps
// nor logs them.
//
// # What is stored
//
// One record per user in a storage.PasskeyStore (FORMAT.md §7): the user
// handle and each credential's ID, public key, algorithm, counter, flags
// (user verified at registration, backup eligible, backed up, PRF,
// clone warning), transports, attestation type and format, AAGUID,
// created and last used times, the name the user gave, and the PRF salt.
// Nothing in it is secret; a PRF output never is stored. Removing a
// passkey removes its vault slot; vault/account's Parts.Passkeys deletes
// everything with the account.
package passkey
