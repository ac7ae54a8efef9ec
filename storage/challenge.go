package storage

import (
	"context"
	"fmt"
	"time"
)

// Size bounds for challenges.
const (
	// ChallengeIDLen is the length of every challenge ID: a SHA-256 of
	// what the challenge is bound to (a session, a login attempt's
	// cookie), never the binding itself.
	ChallengeIDLen = 32
	// MaxChallengeDataLen is the longest encoded challenge, in bytes.
	MaxChallengeDataLen = 4 << 10
	// MaxChallengeLifetime bounds how far in the future a challenge may
	// expire.
	MaxChallengeLifetime = time.Hour
)

// A Challenge is one pending WebAuthn ceremony's server-side state (the
// random challenge, what it is bound to, the ceremony), opaque to the
// store, kept until it is taken or expires.
type Challenge struct {
	// ID identifies the challenge (ChallengeIDLen bytes).
	ID []byte
	// Expires is when the challenge stops being valid: from then on it
	// is absent (ErrNotFound), whether or not the store has removed it.
	Expires time.Time
	// Data is the encoded challenge (1 to MaxChallengeDataLen bytes).
	Data []byte
}

// ChallengeStore keeps challenges until they are used once. Arguments out
// of bounds (an ID of the wrong length, empty or over-long data, an
// Expires in the past or more than MaxChallengeLifetime ahead) are
// refused with an error wrapping ErrInvalid before anything is read or
// written.
type ChallengeStore interface {
	// PutChallenge stores c, replacing any challenge with the same ID.
	PutChallenge(ctx context.Context, c Challenge) error

	// TakeChallenge returns the challenge with this ID and removes it in
	// the same atomic step: of concurrent takes of one challenge, exactly
	// one gets it and the others get ErrNotFound. An expired challenge is
	// ErrNotFound (and is removed).
	TakeChallenge(ctx context.Context, id []byte) (Challenge, error)
}

// CheckChallengeID returns an error wrapping ErrInvalid unless id is
// ChallengeIDLen bytes. Adapters call it before any I/O.
func CheckChallengeID(id []byte) error {
	if len(id) != ChallengeIDLen {
		return fmt.Errorf("%w: challenge ID of %d bytes, want %d", ErrInvalid, len(id), ChallengeIDLen)
	}
	return nil
}

// CheckChallenge returns an error wrapping ErrInvalid if c is out of the
// bounds of ChallengeStore, judging its Expires by now: an ID that is not
// ChallengeIDLen bytes, empty or over-long Data, an Expires not after now
// or more than MaxChallengeLifetime ahead. Adapters call it before any
// I/O.
func CheckChallenge(c Challenge, now time.Time) error {
	if err := CheckChallengeID(c.ID); err != nil {
		return err
	}
	switch {
	case len(c.Data) == 0 || len(c.Data) > MaxChallengeDataLen:
		return fmt.Errorf("%w: challenge data of %d bytes, want 1 to %d", ErrInvalid, len(c.Data), MaxChallengeDataLen)
	case !now.Before(c.Expires):
		return fmt.Errorf("%w: challenge Expires is not in the future", ErrInvalid)
	case c.Expires.Sub(now) > MaxChallengeLifetime:
		return fmt.Errorf("%w: challenge Expires is more than %v ahead", ErrInvalid, MaxChallengeLifetime)
	}
	return nil
}
