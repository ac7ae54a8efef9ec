// Package keyhold is an embeddable library for per-user account
// encryption in Go web applications: each user's data is sealed under a
// random master key that only that user can unlock, and the application
// holds no global key that opens everyone's data. Around that core it
// provides the account security such an application needs.
//
// This package holds this overview and the notification hook every
// package shares ([Notifier], [Event]: ASVS V6.3.7); the code lives in its
// subpackages. Which one to use for what:
//
//   - [github.com/keyhold/keyhold/kdf]: password hashing (Argon2id by
//     default, PBKDF2-SHA256/512, verify-only import of bcrypt, scrypt,
//     passlib, Django and Werkzeug hashes) in PHC strings with
//     needs-rehash, key derivation for vault key-encryption keys, limits on
//     stored parameters, a concurrency and memory gate for expensive runs,
//     and the passphrase policy (NIST SP 800-63B preset, blocklist, context
//     words, breach check).
//   - [github.com/keyhold/keyhold/vault]: the key hierarchy — a random
//     256-bit master key per user, key slots that wrap it (passphrase,
//     recovery key, application key wrapper), records sealed with
//     AES-256-GCM bound to user and context, passphrase change by re-wrap,
//     master-key rotation, Fernet compatibility.
//   - [github.com/keyhold/keyhold/session]: server-side sessions with
//     hashed tokens and __Host- cookies, custody of the unlocked vault's
//     keys between requests, API tokens with rotating refresh tokens, and
//     net/http middleware (RequireLogin, RequireUnlocked, RequireFresh,
//     security headers).
//   - [github.com/keyhold/keyhold/storage]: the small interfaces all of the
//     above keep their state behind, with adapters for memory, SQLite,
//     PostgreSQL and Redis, and a conformance suite for your own.
//   - [github.com/keyhold/keyhold/ratelimit]: rate limits (GCRA, exact
//     under concurrency and across instances), per-account lockout with
//     growing locks and device cookies against lockout denial of service,
//     client addresses from trusted proxies only, and 429 middleware with
//     RateLimit headers.
//   - [github.com/keyhold/keyhold/totp]: a second factor with authenticator
//     apps (RFC 6238), secrets sealed at rest, replay refused, and login
//     recovery codes stored as hashes.
//   - [github.com/keyhold/keyhold/passkey]: WebAuthn passkeys for
//     sign-in without a username, step-up, and unlocking the vault through
//     the PRF extension, with a browser script of its own.
//   - [github.com/keyhold/keyhold/vault/zk]: the zero-knowledge mode, where
//     a browser client does the cryptography and the server stores only
//     ciphertext it cannot open.
//   - [github.com/keyhold/keyhold/vault/account]: one call that deletes an
//     account from all of the above, crypto-shredding its vault.
//
// The README has a quick start for each, and runnable programs under
// examples/.
//
// # Security considerations
//
// The threat model (what is and is not protected) is in SECURITY.md at the
// root of the repository, and every stored format is specified byte for
// byte in FORMAT.md.
package keyhold
