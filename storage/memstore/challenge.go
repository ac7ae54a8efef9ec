package memstore

import (
	"context"
	"time"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.ChallengeStore = (*Store)(nil)

// challengeSweepScan is how many other challenges a put examines, removing
// those that have expired, so that challenges nobody takes do not stay
// forever.
const challengeSweepScan = 8

// challengeEntry is one challenge as a Store holds it. data is the
// Store's own: never handed out, zeroed when the challenge is taken,
// replaced or removed.
type challengeEntry struct {
	expires time.Time
	data    []byte
}

// PutChallenge stores a copy of c, replacing (and zeroing) any challenge
// with its ID. It also examines up to 8 other challenges and removes
// those that have expired, so that challenges never taken take a bounded
// share of the memory.
func (s *Store) PutChallenge(ctx context.Context, c storage.Challenge) error {
	if s == nil {
		return errNilStore
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if err := storage.CheckChallenge(c, now); err != nil {
		return err
	}
	own := challengeEntry{expires: c.Expires, data: append([]byte{}, c.Data...)}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.challenges == nil {
		s.challenges = make(map[string]challengeEntry)
	}
	if old, ok := s.challenges[string(c.ID)]; ok {
		clear(old.data)
	}
	scanned := 0
	for id, e := range s.challenges { // map order: a different sample each time
		if scanned == challengeSweepScan {
			break
		}
		scanned++
		if !now.Before(e.expires) {
			clear(e.data)
			delete(s.challenges, id)
		}
	}
	s.challenges[string(c.ID)] = own
	return nil
}

// TakeChallenge returns the challenge with this ID and removes it, under
// the Store's lock: of concurrent takes, exactly one gets it. A challenge
// whose Expires is not after the process's clock ([time.Now]) is removed
// and is [storage.ErrNotFound]. The Data returned is the caller's own
// copy; the Store's is zeroed.
func (s *Store) TakeChallenge(ctx context.Context, id []byte) (storage.Challenge, error) {
	if s == nil {
		return storage.Challenge{}, errNilStore
	}
	if err := ctx.Err(); err != nil {
		return storage.Challenge{}, err
	}
	if err := storage.CheckChallengeID(id); err != nil {
		return storage.Challenge{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.challenges[string(id)]
	if !ok {
		return storage.Challenge{}, storage.ErrNotFound
	}
	delete(s.challenges, string(id))
	defer clear(e.data)
	if !time.Now().Before(e.expires) {
		return storage.Challenge{}, storage.ErrNotFound
	}
	return storage.Challenge{
		ID:      append([]byte{}, id...),
		Expires: e.expires,
		Data:    append([]byte{}, e.data...),
	}, nil
}
