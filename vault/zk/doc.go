// Package zk is keyhold's zero-knowledge mode: the browser holds the
// vault's keys and does every cryptographic operation, and the server
// stores only what the browser sealed.
//
// Two halves speak one format, FORMAT.md §3 (the vault record, its key
// slots and the record envelope of package vault) and §8 (this package's
// HTTP API):
//
//   - The browser client, client.js, served by ScriptHandler: an ES
//     module without dependencies that uses WebCrypto only. It creates a
//     vault (a passphrase slot with PBKDF2-SHA256 at 600,000 iterations
//     or more, recovery keys, a passkey's PRF output as a slot), unlocks
//     it with any slot, changes the passphrase by re-wrapping the master
//     key, seals and opens records with the associated data of package
//     vault (so Go opens what the browser seals, and the reverse), reads
//     records sealed under retired key versions, shows the vault's key
//     fingerprint (vault.Unlocked.Fingerprint), and keeps the master key
//     in non-extractable CryptoKeys.
//   - The server half, Server: an http.Handler, mounted behind
//     session.Manager.Handler and the app's CSRF protection, that keeps
//     the session user's vault record and sealed records as opaque blobs
//     in a storage.BlobStore, each with a version that every write must
//     name (compare and swap), and a per-user Limiter. It checks that a
//     vault record parses (vault.RecordKeyVersion) and does not lower
//     the key version of the one it replaces, and that a record is an
//     envelope of format 2 whose record version (which the envelope
//     authenticates, but only the client can check) is the version it is
//     stored at; nothing else: it holds no key that opens them.
//
// An application can choose, per user or for all of them, between
// package vault's server-side unlock (the server derives the key from the
// passphrase and holds the master key while the session is unlocked) and
// this mode, on one format.
//
// # What the server learns, and what it can still do
//
// The server never receives the vault passphrase, a recovery key, a
// passkey's PRF output, the master key or a record's plaintext. It sees
// the vault record (salts, iteration counts, wrapped keys: an offline
// guess of the passphrase costs PBKDF2-SHA256 at the slot's iterations per
// guess, which is why a long passphrase matters more here than with a
// server-side Argon2id slot), the names, sizes and versions of the
// records, and when they are written. The session's login is the app's
// (a password, a passkey): the vault passphrase must be another secret,
// never sent to the server, or the server learns it at login.
//
// A server that turns hostile, or a database restored from a backup,
// can still withhold or delete blobs, and serve a vault or records that
// the client cannot tell from genuine ones in these cases:
//
//   - Rollback of a record. Every record is sealed with its version in
//     the associated data, and the client (VersionLedger) keeps the
//     highest version it has seen per record in the browser's storage,
//     with the record's tag, and the records it sealed whose writes got no
//     answer or a refusal: an older version served afterwards, another
//     record at the version it saw, a record it wrote that was refused or
//     overtaken by a later write, or a record it saw answered as absent,
//     is refused ("rollback"; FORMAT.md §8.1). Not caught: a rollback
//     to a browser that never saw the newer version (a new device, storage
//     cleared), or a server that keeps serving one old copy of everything
//     to a client that never saw more.
//   - Substitution of the vault. A vault record the server made itself (a
//     master key it knows) unlocks with nothing the user holds, so the
//     server would have to swap it in before the user's first unlock on a
//     device, or after a reset; the key fingerprint (FORMAT.md §3.7), shown
//     by the client and compared by the user between two devices over a
//     channel the server does not control, detects it.
//   - Rollback of the vault record. The key version is authenticated by
//     each slot; the client refuses a vault whose key version is below the
//     highest it has seen, and an answer that there is no vault once it
//     has seen one. An older record at the same key version (a
//     passphrase slot from before a change, a passkey slot since removed)
//     is not caught: it holds the same master key, which the server could
//     have kept copies of anyway; an old passphrase keeps opening that old
//     copy.
//
// # Names and limits
//
// Record names are 1 to MaxNameLen bytes of [A-Za-z0-9._~-], other than
// "." and ".."; a record is at most Config.MaxRecordLen bytes sealed, a
// vault record at most storage.MaxBlobDataLen; a user has at most
// Config.MaxRecords live records and four times as many names. A deleted record keeps its name
// and version as a tombstone, so its versions never restart (until the
// account's deletion, Server.Delete).
package zk
