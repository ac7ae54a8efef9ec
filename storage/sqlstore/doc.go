// Package sqlstore keeps keyhold's state in a SQL database through
// database/sql: SQLite, embedded in the application's process, or
// PostgreSQL.
//
// For most use cases, open a SQLite file with
//
//	st, err := sqlstore.OpenSQLite(ctx, "/var/lib/myapp/keyhold.db", sqlstore.Config{})
//
// and pass st to the keyhold packages (it implements [storage.Store]); call
// [Store.Close] at shutdown. Applications that run several instances
// against one database use [OpenPostgres] instead, and applications that
// already hold a *sql.DB use [New].
//
// # SQLite
//
// [OpenSQLite] uses modernc.org/sqlite (pure Go, no cgo). It creates the
// file with mode 0600 if it does not exist, and refuses (with an error
// matching [ErrInsecurePermissions]) to open an existing file, or its
// -wal, -shm or -journal companion, that group or others may access.
//
// The database runs in WAL mode with synchronous=FULL: a committed write
// is on disk before the call returns, and survives the process being
// killed, or the machine losing power, at any moment (given storage that
// honours fsync). Writes go through a
// single connection, so writers in one process queue in Go (honouring
// their contexts) rather than in SQLite; reads use a small pool of
// read-only connections and proceed while a write is in progress. Other
// processes may open the same file: SQLite's busy handler then waits up to
// [Config.BusyTimeout] for the write lock. Every compare-and-swap write is
// a single conditional statement (INSERT … ON CONFLICT DO NOTHING, or
// UPDATE … WHERE version = expect), so of concurrent writers exactly one
// wins and the others get [storage.ErrConflict], whichever process they
// run in.
//
// Deleted rows are overwritten with zeros (secure_delete), so a deleted
// vault record (account deletion, vault.Vault.Delete), factor record,
// passkey record, session or blob (and a blob's value replaced by
// another or by a tombstone) leaves no copy in the database file once
// the write-ahead log has been checkpointed; until then, and until SQLite reuses the log's space, the
// -wal file still holds the pages as they were before the delete, and
// copies of the file (backups) hold whatever they held. With [New], set
// _pragma=secure_delete(1) in the DSN for the same effect. PostgreSQL
// keeps deleted rows in its files until VACUUM reclaims them, and in its
// WAL and its archives for as long as they are kept.
//
// # PostgreSQL
//
// [OpenPostgres] uses github.com/jackc/pgx/v5 through its database/sql
// driver. [Config.Schema] keeps keyhold's tables in a schema of their own
// (created if absent); by default they go where the connection's
// search_path puts them. Errors never include the DSN's password.
//
// # Sessions and refresh-token families
//
// Migration 0002 adds two tables. keyhold_sessions holds one row per
// session ([storage.SessionStore]): its ID (32 bytes, the primary key),
// its user ID, its expiry and its data, with an index on the user ID for
// ListUserSessions and DeleteUserSessions. keyhold_refresh_families holds
// one row per refresh-token family ([storage.RefreshStore]), the same
// columns and a compare-and-swap version. Both have an index on the expiry,
// for the removal of expired rows.
//
// Expiry times are stored as Unix milliseconds, rounded down: a record
// expires up to a millisecond before the Expires it was put with, never
// after, and Get, List and the like return Expires as time.UnixMilli of the
// stored value (so in the local time zone, without a monotonic reading).
// Expiry is compared with the clock of the process that makes the call,
// passed to every query, never with the database server's: with several
// processes on one PostgreSQL database, a record expires for each of them
// by its own clock, so keep their clocks synchronised.
//
// A record whose expiry has passed is absent to every method, whether or
// not its row is still there. Rows are removed in passing: PutSession
// removes the user's expired sessions in the transaction of its write,
// PutRefreshFamily the user's expired families, and about once a minute
// either of them also removes a bounded batch of expired rows of any user
// (repeated at the following writes while there is a backlog). Nothing
// runs in the background.
//
// PutSession and PutRefreshFamily are compare-and-swaps like PutVault: an
// INSERT … ON CONFLICT that replaces only an expired record for expect 0,
// and an UPDATE … WHERE version = expect AND user_id = the caller's
// otherwise, so of concurrent writers exactly one wins, a record never
// moves to another user, and a write of a session deleted since it was
// read conflicts instead of re-creating it. (Sessions stored before
// migration 0004 start at version 1.)
// In PostgreSQL these writes run at READ COMMITTED whatever the server's
// default, and a transaction that the server aborts as a deadlock or
// serialization failure (which the statements are ordered to avoid) is run
// again.
//
// # Rate limits and lockouts
//
// Migration 0003 adds two tables, keyed by the 32-byte hashes that package
// ratelimit makes of what it limits (no IP address or user name is
// stored). keyhold_rate_limits holds one row per rate-limiter key
// ([storage.RateStore]): its theoretical arrival time (TAT) in Unix
// microseconds. keyhold_lockouts holds one row per lockout key
// ([storage.LockoutStore]): its failures, its locks, the end of its lock
// and its expiry, in Unix milliseconds. Both have an index on the expiry.
//
// Every decision is one write transaction that reads the key's row,
// decides in Go with [storage.DecideRate] or [storage.DecideAttempt], and
// writes the new state; a refused decision writes nothing. SQLite runs
// write transactions one at a time (the transaction's first statement
// writes, so it holds the database's write lock from the start, in every
// process that opens the file). PostgreSQL reads the row with SELECT …
// FOR UPDATE, which makes concurrent decisions on one key wait for each
// other; a key without a row is inserted with INSERT … ON CONFLICT DO
// NOTHING, and if another transaction inserted it first, the row it
// inserted is read and locked instead. So of concurrent decisions on one
// key, through any number of Stores and processes on one database, no
// more are allowed (or admitted) than one after the other would be. These
// transactions too run at READ COMMITTED, and are run again after a
// serialization failure or deadlock.
//
// Times are the callers' (the requests' Now), never the database's nor
// the process's clock: a row whose TAT or expiry is not after the
// request's Now is absent, whether or not it is still there. Rows are
// removed in passing: every 64th decision of a Store on one of the
// tables also removes up to 100 rows of that table that have expired by
// its request's Now (skipping rows that other transactions hold), and in
// SQLite a decision first removes its own key's row if it has expired.
// Since a decision adds one row at most, expired rows nobody asks for
// again take a bounded share of the tables; a table holds as many live
// keys as clients were limited within its longest window. Nothing runs in
// the background.
//
// # Second factors
//
// Migration 0005 adds keyhold_factors, one row per user
// ([storage.FactorStore]: package totp's sealed TOTP credentials and
// recovery-code hashes), with the columns and the statements of
// keyhold_vaults: the user ID's bytes, a compare-and-swap version and the
// data, written by one conditional statement, so that of concurrent uses
// of one code exactly one is accepted. Deleted rows are overwritten in
// SQLite (secure_delete), as deleted vault records are.
//
// # Passkeys
//
// Migration 0006 adds two tables for [storage.PasskeyStore].
// keyhold_passkeys holds one row per user: the user ID's bytes, the
// user's WebAuthn user handle (64 bytes, UNIQUE), a compare-and-swap
// version and the encoded record. keyhold_passkey_credentials holds one
// row per credential ID (its primary key) with its user, referencing the
// user's row ON DELETE CASCADE. PutPasskeys is one transaction: the
// compare-and-swap on the user's row (INSERT … ON CONFLICT DO NOTHING, or
// UPDATE … WHERE version = expect AND handle = the stored one), then the
// replacement of the user's credential rows. A handle or a credential ID
// that another user's rows hold violates the unique index: the
// transaction is rolled back and the put returns an error wrapping
// [storage.ErrDuplicate]; of users registering one credential ID at once,
// the database lets at most one commit. In PostgreSQL the transaction runs
// at READ COMMITTED whatever the server's default, as the session writes
// do, and is run again after a serialization failure or a deadlock.
// DeletePasskeys removes the row and the credential rows in one
// transaction; in SQLite they are overwritten on disk (secure_delete).
// GetPasskeys reads both tables in one snapshot, and returns the
// credential IDs in byte order.
//
// # Challenges
//
// Migration 0007 adds keyhold_challenges for [storage.ChallengeStore]:
// one row per pending WebAuthn challenge, its 32-byte ID, its expiry in
// Unix milliseconds and its encoded data (1 to 4096 bytes, CHECKed).
// PutChallenge is an upsert (INSERT … ON CONFLICT DO UPDATE) that, in the
// same transaction, removes up to 16 rows that have expired by the
// process clock (skipping, in PostgreSQL, rows other transactions hold):
// since a put adds one row at most, expired challenges that nobody takes
// do not make the table grow without bound. TakeChallenge is one
// statement, DELETE … WHERE id = ? RETURNING, so of concurrent takes
// exactly one gets the row; a row that has expired by the process clock
// is deleted all the same and is [storage.ErrNotFound], whether or not a
// sweep had reached it (fail closed). Taken rows are overwritten on disk
// in SQLite (secure_delete).
//
// # Blobs
//
// Migration 0008 adds keyhold_blobs for [storage.BlobStore] (package zk's
// blobs, sealed by the user's client): one row per user and name, with
// the user ID's bytes and the name's bytes as the primary key, a
// compare-and-swap version and the value (empty for a tombstone, at most
// [storage.MaxBlobDataLen] bytes). Names are BLOB in SQLite and bytea in
// PostgreSQL, not text: they are compared and ordered byte for byte
// whatever the database's collation (a PostgreSQL text column would sort
// by its collation, "a" before "B", and could not hold a NUL), so
// ListBlobs is one query, WHERE user_id = ? AND name > after ORDER BY
// name LIMIT limit, that the primary key's index serves. PutBlob is one
// conditional statement, as PutVault is (INSERT … ON CONFLICT DO
// NOTHING for expect 0, UPDATE … WHERE version = expect otherwise), so of
// concurrent writers exactly one wins, a tombstone included; a
// tombstone is an UPDATE that keeps the row and its version. DeleteBlobs
// is one DELETE … WHERE user_id = ?, which removes the user's versions
// too. In SQLite, the space of a replaced value and of deleted rows is
// overwritten (secure_delete).
//
// # Migrations
//
// The tables are created and upgraded by versioned migrations embedded in
// the binary (migrations/sqlite/NNNN_name.sql and
// migrations/postgres/NNNN_name.sql). Every constructor applies the
// pending ones before it returns, all in one transaction, and records each
// version in the table keyhold_schema_migrations. Opening a database that
// is up to date changes nothing; several processes opening a fresh
// database at once apply each migration exactly once (SQLite serialises
// them with BEGIN IMMEDIATE, PostgreSQL with a transaction-scoped advisory
// lock). Upgrading keyhold thus upgrades the schema at the next open. A
// database whose schema is newer than this code is refused with
// [ErrSchemaTooNew], so an old binary never writes to a schema it does not
// know.
//
// # Security considerations
//
// The store holds only what keyhold has already sealed or hashed: vault
// records are encrypted under keys the store never sees (and blobs under
// keys that only the user's client holds), and session and
// refresh-family records hold only what keyhold has sealed or hashed,
// under IDs that are hashes of tokens the store never sees. A copy of the
// database therefore does not open anyone's data; it does allow offline
// guessing of weak passphrases, which is why the SQLite file is kept
// private to its owner (mode 0600, checked at every open, on the file and
// its companions). The check does not cover the directory: keep the file
// in a directory that only the application's user can write. On Windows
// file modes do not describe access, and the check is skipped.
//
// User IDs are stored and compared as bytes, so no collation or encoding
// rule can make two users' IDs match ("alice", "Alice" and "alice " are
// three users); sizes are bounded by [storage.MaxUserIDLen],
// [storage.MaxVaultDataLen], the bounds of [storage.PasskeyRecord] and
// [storage.Challenge], [storage.MaxBlobNameLen], [storage.MaxBlobDataLen],
// [storage.SessionIDLen],
// [storage.MaxSessionDataLen] and [storage.RateKeyLen] before any query
// runs (an argument out of bounds, or a rate or lockout request outside
// the bounds of package storage, is an error wrapping
// [storage.ErrInvalid]), and again by CHECK constraints in the schema.
// Errors never contain a key or a state.
//
// What this package does not do: it does not encrypt the database file
// (the records in it are already sealed), and it does not back it up.
package sqlstore
