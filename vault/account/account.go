// Package account deletes a user's account from everything keyhold keeps:
// the one operation that spans the other packages.
//
// For most use cases: when a user deletes their account (after a recent
// authentication, session's RequireFresh), or an administrator removes
// one, first make the account unable to log in in the application's own
// user table (mark it as being deleted), then call [Delete] with the
// keyhold parts the application uses, until it returns nil, then remove
// the application's own rows. The records the application sealed with the
// user's vault may be deleted too, or kept: after Delete nothing opens
// them.
//
// The call lives in a package of its own, under vault because what it
// does first and foremost is shred the vault, because it needs session,
// vault and ratelimit, and none of them may import the others for it
// (session imports vault, and neither imports ratelimit); the second
// factors (totp), passkeys (passkey) and zero-knowledge records (zk) are
// in [Parts] too.
//
// # Security considerations
//
// Delete crypto-shreds: the user's master keys exist only wrapped in the
// vault record and sealed in their sessions' custody blobs, and Delete
// removes both, so every record sealed under the vault stays unreadable
// wherever it is kept. It cannot reach copies outside the store's live
// data (backups, lagging replicas, a database's logs and rows it has not
// reclaimed yet), nor state keyed by what only the requests carried, a
// client's address or a device's ID (see [Delete]).
package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

// ErrInvalidInput means an argument is out of bounds (an empty or
// over-long user ID or account name) or a part is missing (a nil Sessions
// or Vault, a nil Lockout or Limiter in the lists). Nothing was deleted.
var ErrInvalidInput = errors.New("account: invalid input")

// Parts are the keyhold values through which the application keeps a
// user's state. Sessions and Vault are required: an application that uses
// one but not the other ends the user's sessions with session's RevokeAll,
// or deletes the vault with vault's Delete, itself.
type Parts struct {
	// Sessions ends the user's sessions and refresh-token families.
	Sessions *session.Manager
	// Vault holds the user's vault record.
	Vault *vault.Vault
	// Lockouts are the Lockouts that count failures against the
	// account name (one per Name the application uses).
	Lockouts []*ratelimit.Lockout
	// Limiters are the Limiters whose key is the account name (limiters
	// keyed by client address are not the account's and stay).
	Limiters []*ratelimit.Limiter
	// Factors holds the user's second factors (TOTP authenticators and
	// login recovery codes). Optional: nil if the app has none.
	Factors *totp.Authenticator
	// Passkeys holds the user's passkeys (credential records, PRF salts
	// and the WebAuthn user handle). Optional: nil if the app has none.
	Passkeys *passkey.Manager
	// ZeroKnowledge holds the user's zero-knowledge vault record and
	// sealed records (package zk). Optional: nil if the app has none. Its
	// per-user Limiter is keyed by the user ID, not the account name: it
	// is not one of Limiters; reset it with the user ID.
	ZeroKnowledge *zk.Server
}

// Delete removes the account's state from every part, in an order that
// leaves nothing readable at any point:
//
//  1. Sessions.RevokeAll(userID): every session and refresh-token family
//     ends, with the sealed vault keys they held, so that no device of
//     the user acts, or seals the vault's keys into a session, while the
//     rest runs;
//  2. Vault.Delete(userID): the vault record, with every key slot and
//     master-key version, is removed: crypto-shredding;
//     ZeroKnowledge.Delete(userID): the zero-knowledge vault record and
//     sealed records are removed (the same shredding in that mode);
//  3. Factors.Delete(userID): the TOTP authenticators, their sealed
//     secrets and the recovery-code hashes are removed, and the code
//     lockout's counters of the user are reset;
//     Passkeys.Delete(userID): the passkeys and the user handle are
//     removed (a passkey kept by the user's authenticator then names no
//     one), and the passkey lockout's counters of the user are reset;
//  4. Reset(accountName) on each Lockout and Limiter: the account's
//     failure counters and locks, and its limiter buckets, are forgotten;
//  5. Sessions.RevokeAll(userID) again: a session that logged in after
//     step 1 (a passkey login starts one by itself until the passkeys are
//     removed in step 3), or unlocked and so sealed a copy of the master
//     key before the vault's deletion, ends too.
//
// Each step is idempotent and Delete stops at the first that fails,
// returning its error (errors.Is finds the part's own errors, such as
// storage errors, vault.ErrConflict, ratelimit.ErrUnavailable, the
// context's). A call cut short by a failure, the context or a crash
// leaves a state from which calling Delete again completes the deletion,
// and in which nothing more is readable than before it: call it until it
// returns nil (keep the account marked as being deleted until then, so
// that a restart finishes the job). Deleting an account that is already
// gone, or never had a vault or sessions, returns nil.
//
// userID is the ID that sessions and the vault know the user by;
// accountName is what the Lockouts and Limiters count against (the login
// name). accountName may be empty when there are no Lockouts or Limiters.
//
// What Delete does not remove: lockout counters of one source or device
// for this account (ratelimit keys them by the client's address or the
// device's ID, which only the requests carried; they expire after the
// Lockout's ForgetAfter and hold no secret, but a reader of the store who
// guesses the name and address can tell they existed); device cookies in
// the user's browsers (they open nothing; a new account later given the
// same name would accept them as known devices, so give new accounts
// names no deleted account had, or change the Devices key); requests in
// flight that already hold the unlocked vault in memory, until they end;
// and copies of the store outside its live data (see vault's Delete).
// The application's own records of the user (password hash, e-mail
// address, sealed data) are the application's to delete.
func Delete(ctx context.Context, userID, accountName string, p Parts) error {
	if err := p.check(userID, accountName); err != nil {
		return err
	}
	if err := p.Sessions.RevokeAll(ctx, userID); err != nil {
		return fmt.Errorf("account: ending sessions: %w", err)
	}
	if err := p.Vault.Delete(ctx, userID); err != nil {
		return fmt.Errorf("account: deleting the vault: %w", err)
	}
	if p.ZeroKnowledge != nil {
		if err := p.ZeroKnowledge.Delete(ctx, userID); err != nil {
			return fmt.Errorf("account: deleting the zero-knowledge records: %w", err)
		}
	}
	if p.Factors != nil {
		if err := p.Factors.Delete(ctx, userID); err != nil {
			return fmt.Errorf("account: deleting the second factors: %w", err)
		}
	}
	if p.Passkeys != nil {
		if err := p.Passkeys.Delete(ctx, userID); err != nil {
			return fmt.Errorf("account: deleting the passkeys: %w", err)
		}
	}
	for _, l := range p.Lockouts {
		if err := l.Reset(ctx, accountName); err != nil {
			return fmt.Errorf("account: resetting a lockout: %w", err)
		}
	}
	for _, l := range p.Limiters {
		if err := l.Reset(ctx, accountName); err != nil {
			return fmt.Errorf("account: resetting a limiter: %w", err)
		}
	}
	if err := p.Sessions.RevokeAll(ctx, userID); err != nil {
		return fmt.Errorf("account: ending sessions: %w", err)
	}
	return nil
}

// check validates every argument before any step runs, so that bad input
// deletes nothing.
func (p Parts) check(userID, accountName string) error {
	if userID == "" || len(userID) > storage.MaxUserIDLen {
		return fmt.Errorf("%w: user ID must be 1 to %d bytes", ErrInvalidInput, storage.MaxUserIDLen)
	}
	if p.Sessions == nil || p.Vault == nil {
		return fmt.Errorf("%w: Parts needs Sessions and Vault", ErrInvalidInput)
	}
	if len(p.Lockouts)+len(p.Limiters) == 0 {
		return nil
	}
	if accountName == "" || len(accountName) > ratelimit.MaxKeyLen {
		return fmt.Errorf("%w: account name must be 1 to %d bytes", ErrInvalidInput, ratelimit.MaxKeyLen)
	}
	for _, l := range p.Lockouts {
		if l == nil {
			return fmt.Errorf("%w: nil *ratelimit.Lockout in Parts.Lockouts", ErrInvalidInput)
		}
	}
	for _, l := range p.Limiters {
		if l == nil {
			return fmt.Errorf("%w: nil *ratelimit.Limiter in Parts.Limiters", ErrInvalidInput)
		}
	}
	return nil
}
