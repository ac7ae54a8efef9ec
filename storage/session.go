package storage

import (
	"context"
	"time"
)

// Size bounds for sessions and refresh-token families.
const (
	// SessionIDLen is the length of every session and refresh-family ID:
	// a SHA-256 output. The store never sees the token the ID was made
	// from.
	SessionIDLen = 32
	// MaxSessionDataLen is the longest encoded session, in bytes.
	MaxSessionDataLen = 16 << 10
	// MaxSessionsPerUser bounds what ListUserSessions must return: every
	// unexpired session of the user up to this many; beyond it an adapter
	// may return any subset of this size. Package session keeps far fewer
	// per user (it ends the least recently used at its own, configurable
	// limit).
	MaxSessionsPerUser = 1000
)

// A Session is one server-side session as the store keeps it. Package
// session encodes everything it needs (timestamps, device, the sealed
// vault key while unlocked) into Data; the store reads only ID, UserID,
// Version and Expires.
type Session struct {
	// ID is the SHA-256 of a label and the session's token
	// (SessionIDLen bytes).
	ID []byte
	// UserID is the user the session belongs to (1 to MaxUserIDLen
	// bytes).
	UserID string
	// Version is 1 for the session's first record and grows by one with
	// every successful PutSession, as RefreshFamily.Version does. A
	// session deleted or expired is absent: a put must expect 0 and
	// starts again at version 1, and a put expecting its old version
	// conflicts, so a writer that read it before it ended cannot bring it
	// back.
	Version uint64
	// Expires is when the store may forget the session: from then on it
	// is absent (ErrNotFound) for every method.
	Expires time.Time
	// Data is the encoded session, opaque to the store (at most
	// MaxSessionDataLen bytes).
	Data []byte
}

// SessionStore keeps sessions by ID, with an index by user so that a
// user's sessions can be listed and revoked without reading the others.
//
// A session whose Expires has passed is absent: GetSession returns
// ErrNotFound and ListUserSessions leaves it out, whether or not the store
// has removed it yet. Adapters keep Expires to the millisecond (rounding
// may make a record expire up to 1 ms early, never late) and compare it
// with the clock of the process that calls them, or of their server; with
// several hosts, records may vanish early by the clocks' skew.
//
// An argument out of bounds (an ID that is not SessionIDLen bytes, an
// empty or over-long user ID, over-long data) is refused with an error
// wrapping ErrInvalid before anything is read or written. A write that
// fails with any other error may or may not have been applied.
type SessionStore interface {
	// GetSession returns the session with this ID, or ErrNotFound if
	// there is none or it has expired.
	GetSession(ctx context.Context, id []byte) (Session, error)

	// PutSession stores s with version expect+1, and records it under
	// s.UserID in the same atomic step, if and only if the stored session
	// has version expect (expect 0: no unexpired session with s.ID may
	// exist); otherwise it stores nothing and returns ErrConflict. Of
	// concurrent calls with the same expect, exactly one succeeds.
	// s.Version is ignored. A session deleted or expired is absent, so a
	// put that expects the version it had conflicts and cannot bring it
	// back: every write of a session read earlier (a touch, a lock) is
	// conditional on the version read.
	//
	// A session's UserID never changes: a put with the right expect for
	// an unexpired session of another user returns ErrInvalid and changes
	// nothing (with a wrong expect, either error may come back). A put
	// whose Expires has already passed, once its expect matched, leaves
	// the session absent and returns nil: it is a conditional delete. An
	// expired session's ID is free: another user may take it (expect 0),
	// and the old user's ListUserSessions and DeleteUserSessions no
	// longer reach it.
	PutSession(ctx context.Context, s Session, expect uint64) error

	// DeleteSession removes the session with this ID, whatever its
	// version. Deleting a session that does not exist returns nil.
	DeleteSession(ctx context.Context, id []byte) error

	// ListUserSessions returns the user's unexpired sessions, in no
	// particular order, or an empty (or nil) slice, not ErrNotFound, if
	// there are none.
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)

	// DeleteUserSessions removes every session of the user. A session
	// put concurrently may survive it; none put before it starts does.
	DeleteUserSessions(ctx context.Context, userID string) error
}

// A RefreshFamily is one chain of rotating refresh tokens (RFC 9700
// §4.14.2): each use of the current token replaces it with the next, and
// the family remembers only the current one, as a hash.
type RefreshFamily struct {
	// ID identifies the family (SessionIDLen bytes).
	ID []byte
	// UserID is the user the family belongs to (1 to MaxUserIDLen
	// bytes).
	UserID string
	// Version is 1 for the family's first record and grows by one with
	// every successful PutRefreshFamily, like VaultRecord.Version. A
	// family deleted or expired is absent: a put must expect 0 and starts
	// again at version 1, and a put expecting its old version conflicts,
	// so a stale writer cannot bring it back.
	Version uint64
	// Expires is when the family expires: from then on it is absent for
	// every method, as a Session is.
	Expires time.Time
	// Data is the encoded family (the current token's hash, deadlines),
	// opaque to the store (at most MaxSessionDataLen bytes).
	Data []byte
}

// RefreshStore keeps refresh-token families with compare-and-swap writes,
// so that of concurrent refreshes with one token exactly one succeeds.
// Expiry, bounds and failed writes work as in SessionStore.
type RefreshStore interface {
	// GetRefreshFamily returns the family, or ErrNotFound if there is
	// none or it has expired.
	GetRefreshFamily(ctx context.Context, id []byte) (RefreshFamily, error)

	// PutRefreshFamily stores f with version expect+1 if and only if the
	// stored family has version expect (expect 0: no unexpired family
	// with f.ID may exist); otherwise it stores nothing and returns
	// ErrConflict. Of concurrent calls with the same expect, exactly one
	// succeeds. f.Version is ignored. A family's UserID never changes: a
	// put with the right expect for another user's family returns
	// ErrInvalid (with a wrong expect too, either error may come back).
	// A put whose Expires has already passed, once its expect matched,
	// leaves the family absent.
	PutRefreshFamily(ctx context.Context, f RefreshFamily, expect uint64) error

	// DeleteRefreshFamily removes the family. Deleting one that does not
	// exist returns nil.
	DeleteRefreshFamily(ctx context.Context, id []byte) error

	// DeleteUserRefreshFamilies removes every family of the user.
	DeleteUserRefreshFamilies(ctx context.Context, userID string) error
}
