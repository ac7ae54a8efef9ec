// Package vault gives each user a random master key that only that user
// can unlock, and seals the user's records under it.
//
// For most use cases: build one [Vault] over a storage.VaultStore with
// New(store, Config{Hasher: h}) (sharing the login path's kdf.Hasher, so
// both wait at one Gate); call [Vault.Create] when a user sets a vault
// passphrase and [Vault.Unlock] when they unlock; keep the [Unlocked]
// value only as long as the user's session is unlocked, and use
// [Unlocked.Seal] and [Unlocked.Open] for their data, with a context that
// names each record ("notes/42/body"), or [Unlocked.SealVersion] and
// [Unlocked.OpenVersion] where an older copy of a record must not open.
//
// # Key hierarchy
//
// Each user's master key is 256 bits from crypto/rand, independent of any
// passphrase. Key slots wrap it with AES-256-GCM, like LUKS key slots: any
// one unlocks. A passphrase slot's key-encryption key comes from
// kdf.Hasher.DeriveKey (Argon2id at 64 MiB, t=3, p=4 by default, or
// PBKDF2-SHA256 for browser clients), domain-separated from login hashes.
// Recovery-key slots take a key of 160 random bits through HKDF-SHA256.
// Records are sealed with AES-256-GCM under a key derived from the master
// key by HKDF-SHA256, with associated data binding the user, the caller's
// context and the key version. FORMAT.md specifies every byte.
//
// Changing the passphrase ([Vault.ChangePassphrase]) re-wraps the master
// key; no record is re-encrypted. [Vault.SetPassphrase] sets a new one
// without the old, for a user who opened the vault with a recovery key or
// a passkey: it counts and checks nothing of the user's, so the
// application puts that way in behind its lockout and second factor. The
// vault record is written with compare-and-swap on its version, so
// concurrent changes cannot both win.
//
// # Security considerations
//
// Every failed unlock is [ErrUnlockFailed] and every failed open is
// [ErrDecrypt]: a wrong passphrase and a tampered record look the same, by
// design. Count failed unlocks against the account's limiter.
//
// [Vault.Unlock] does not reveal whether a user has a vault: for a user
// without one it does the KDF work of a wrong passphrase (at the Vault's
// parameters for new slots) and answers with an error that matches
// ErrUnlockFailed, and also [ErrNoVault] for an application that must tell
// the two apart. Where the application refuses without checking the
// passphrase (a locked account), [Vault.UnlockDummy] costs the same. What
// is not a wrong passphrase never reads as ErrUnlockFailed: a busy KDF gate
// (kdf.ErrBusy), stored KDF parameters beyond the limits
// (kdf.ErrParamsOutOfBounds), the context ending, the store failing.
//
// A record binds its user, context and key version, not its age: someone
// who can write the database can put back an older ciphertext of the same
// record, and [Unlocked.Open] accepts it. [Unlocked.SealVersion] binds a
// record version the application chooses, and [Unlocked.OpenVersion]
// refuses an older one ([ErrRollback]), as long as the application keeps
// the version it expects where that attacker cannot roll it back
// (SECURITY.md).
//
// Someone who copied a vault record before a passphrase change can still
// open that copy with the old passphrase: a passphrase change does not
// revoke them. Losing every slot loses the data: [Vault.ResetDestroyingData]
// says so in its name.
//
// [Vault.RotateMasterKey] makes a new master key version on suspicion of
// compromise; older versions stay decrypt-only until
// [Unlocked.ReencryptAll] has re-sealed the application's records and
// [Vault.DestroyRetiredKeys] removes them.
//
// Fernet tokens ([Unlocked.SealFernet]) and the import of Fernet credential
// files ([Vault.ImportFernetCredentials]) exist for compatibility with
// Python applications; they are legacy (AES-128-CBC) and bind no context.
//
// A [KeyWrapper] slot lets the application unlock a vault through a key it
// holds elsewhere (a KMS); add one only where that is intended.
//
// A secret slot ([Vault.AddSecretSlot], [Vault.UnlockWithSecret]) lets a
// high-entropy secret the application supplies, such as a passkey's PRF
// output, unlock the vault; each is bound to its user and to the ID it was
// added with (a credential ID), and a master-key rotation drops it.
package vault
