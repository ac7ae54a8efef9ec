package storage

import (
	"context"
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
