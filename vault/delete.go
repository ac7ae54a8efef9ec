package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// maxDeleteAttempts bounds Delete's read-and-delete rounds. A round fails
// only when another change to the same vault was stored between its read
// and its delete, so reaching the bound means a writer that keeps
// changing the vault while it is being deleted.
const maxDeleteAttempts = 10

// Delete crypto-shreds the user's vault, for account deletion: it removes
// the vault record, and with it every key slot (passphrase, recovery keys,
// key wrappers) and every master-key version, current and retired. The
// master keys exist nowhere else in the store (a session's custody blob
// holds one sealed under its cookie's token: end the sessions first, see
// package session's RevokeAll), so after Delete no passphrase, recovery
// key or KeyWrapper opens anything, and every record sealed under the
// vault, by any key version, stays unreadable for good, wherever it is
// kept. The application may delete those records too, or keep them as
// unreadable bytes until it does.
//
// Delete needs no passphrase: deleting an account must work for a user who
// forgot it, and for an administrator. Require a recent authentication
// (session's RequireFresh) before a user's own request calls it. It sends
// Config.Notifier nothing: the account is going away, so tell its owner
// yourself, before, while you still have their address.
//
// It deletes whatever is stored, malformed or not, with compare-and-swap
// on the version it read, and reads again if another change was stored
// meanwhile (returning ErrConflict after maxDeleteAttempts rounds); a
// change that read the vault before the delete then fails to store
// (storage.ErrConflict at its PutVault, ErrConflict here). A user without
// a vault, or one already deleted, is success: Delete is idempotent, and
// a call interrupted by a crash or a store failure is finished by calling
// it again. After Delete, the unlock paths answer as for a user who never
// had a vault (an error matching ErrNoVault and ErrUnlockFailed, after the
// work of a wrong passphrase), and Create may make a new vault, under a
// new master key.
//
// What Delete cannot shred: copies of the vault record outside the store's
// live data (backups, replicas that are behind, a database's logs and
// files until it reuses the space: SQLite's write-ahead log until it is
// checkpointed and overwritten, though sqlstore.OpenSQLite zeroes deleted
// rows in the database file itself; PostgreSQL's dead rows until VACUUM,
// and its WAL archive), and Unlocked values that requests in flight still
// hold in memory until they Lock.
// Whoever restores such a copy gets the vault back, and with it the user's
// slots: keep backups only as long as a deleted account may come back.
// Application user IDs passed to Delete should never be given to another
// user: a change that read the old vault at version 1 could otherwise
// store it over a new vault created under the same ID at version 1.
func (v *Vault) Delete(ctx context.Context, userID string) error {
	if v == nil {
		return errNilVault
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	for range maxDeleteAttempts {
		rec, err := v.store.GetVault(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vault: loading: %w", err)
		}
		clear(rec.Data) // sealed material only, but it is not needed
		err = v.store.DeleteVault(ctx, userID, rec.Version)
		if err == nil {
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("vault: deleting: %w", err)
		}
	}
	return fmt.Errorf("%w: the vault kept changing while it was deleted", ErrConflict)
}
