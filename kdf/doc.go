// Package kdf hashes and verifies passwords, derives keys from passphrases
// and checks new passphrases against a policy.
//
// For most use cases, build one [Hasher] with New(Config{}) and one [Gate]
// shared by everything that runs a KDF in the process; call [Hasher.Hash]
// when a password is set, [Hasher.Verify] at login (storing a fresh hash
// when it reports needsRehash), and [Hasher.VerifyDummy] when the user does
// not exist. Check a new password with a [Policy] before hashing it.
//
// # Algorithms and formats
//
// New hashes use Argon2id ([DefaultParams]: m=19 MiB, t=2, p=1, the
// OWASP/ASVS floor row) or, for FIPS-minded deployments,
// PBKDF2-HMAC-SHA256 at 600,000 iterations or PBKDF2-HMAC-SHA512 at
// 220,000. They are written as PHC strings that carry algorithm, version,
// parameters, salt and an optional pepper id:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//	$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>
//
// Hashes made by other libraries verify too (bcrypt, scrypt, passlib's
// PBKDF2 formats including SHA-1, Django's pbkdf2_sha256 and argon2,
// Werkzeug's pbkdf2 and scrypt, and Argon2id from any PHC-conformant
// library). Those in a format this package does not write (bcrypt, scrypt,
// passlib's, Django's and Werkzeug's) always report needsRehash, so an
// application migrates its users at their next login. An Argon2id or
// PBKDF2 PHC string from another library is read as this package's own
// format: it reports needsRehash when its parameters (m, t, p or the
// iteration count, salt and hash lengths) differ from the Hasher's Params,
// or when it matched only the password's bytes as received and not their
// NFKC form (see [Hasher.Verify]); at the same parameters, over a password
// already in NFKC form, it needs none. FORMAT.md at the repository root
// specifies every format.
//
// # Security considerations
//
// Everything read from storage is bounded by [Limits] before any memory is
// allocated: a hash written by an attacker who reached the database cannot
// make the server allocate more than 256 MiB or spend more than about a
// second of a core ([DefaultLimits]). Every base64 field has exactly one
// accepted spelling. No error quotes the stored value (it may be a
// plaintext password left in a users table). Passwords are capped in
// length ([DefaultMaxPasswordBytes]) before any work, normalised once to
// NFKC (never trimmed or case-folded), and compared in constant time; the
// copies this package makes (NFKC form, peppered form) are cleared after
// use. Salts are 16 bytes from crypto/rand.
//
// [Hasher.VerifyDummy] performs, through the same code, exactly the KDF runs
// that [Hasher.Verify] performs for a wrong password against a hash at the
// Hasher's current parameters, so unknown accounts cannot be told apart by
// the work done; hashes at other parameters differ until rehashed.
//
// Argon2id is memory-hard by design, so a flood of logins could exhaust
// memory; every run waits at a [Gate] that bounds concurrent runs and the
// memory they use (counting buffers the garbage collector has not yet
// reclaimed), and answers [ErrBusy] past its queue. Tag each request's
// context with [WithGateKey] (the account, or the client address) so that
// the Gate shares its queue round-robin between keys: one account flooding
// its own login gets ErrBusy while other users still queue. ErrBusy is not
// a failed attempt: do not count it towards a lockout.
//
// An optional [Pepper] (a server-side HMAC key, referenced by id in each
// hash and rotatable) makes a stolen hash table useless without the key.
//
// Keys from [Hasher.DeriveKey] are domain-separated from login hashes: a
// password hash never equals, and never yields, a key derived from the
// same password.
//
// What this package does not do: it does not rate-limit or lock accounts
// (see package ratelimit), and it does not decide whether a breached-
// password check that cannot reach its service should block a password
// change; [Policy.Check] reports that case as its own error.
package kdf
