// Package crashtest holds the vault's crash test (crash_test.go): a child
// process changes passphrases and rotates master keys over SQLite and
// PostgreSQL, and is killed with SIGKILL at random points; after every
// kill, every user must still unlock with the passphrase of the last
// committed change and every application record must still open.
//
// The package has no non-test code; run it with
//
//	go test ./vault/internal/crashtest -v
//
// and set KEYHOLD_TEST_POSTGRES_DSN to include PostgreSQL.
package crashtest
