package storagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// challengeFlaws are the flawed ChallengeStores of
// TestSuiteFailsFlawedStores: each flaw would let a WebAuthn challenge be
// used twice or after it expired, or change a challenge behind its owner's
// back.
var challengeFlaws = []struct {
	flaw     string
	wantFail []string
}{
	// A take reads, then deletes in a second step: two takes that both
	// read before either deletes both get the challenge (a replay).
	{"challenge-take-not-atomic", challenges("ConcurrentTakesOneWins")},
	// A take returns the challenge and leaves it there.
	{"challenge-take-keeps-record", challenges("SecondTakeIsErrNotFound", "PutReplaces", "ConcurrentTakesOneWins")},
	// Expires is stored but never compared: an expired challenge that
	// nothing has purged yet is taken.
	{"challenge-expiry-ignored", challenges("ExpiredChallengeIsAbsent")},
	// A put with an ID already stored keeps the first challenge.
	{"challenge-put-keeps-first", challenges("PutReplaces")},
	// A put removes the challenge with its ID before checking its
	// arguments.
	{"challenge-put-deletes-before-checking", challenges("OutOfBoundsIsInvalid")},
	{"challenge-accepts-out-of-bounds", challenges("OutOfBoundsIsInvalid")},
	{"challenge-retains-input", challenges("PutDoesNotRetainInput")},
	{"challenge-ignores-context", challenges("CanceledContextIsHonoured", "ExpiredDeadlineIsHonoured")},
}

// challenges names clauses of the ChallengeStore group.
func challenges(clauses ...string) []string { return inGroup("ChallengeStore", clauses) }

func init() {
	for _, f := range challengeFlaws {
		flaws = append(flaws, struct {
			flaw     string
			wantFail []string
		}{f.flaw, f.wantFail})
	}
}

var _ storage.ChallengeStore = (*flawedStore)(nil)

// flawedChallenge is a challenge as the flawedStore holds it, under its mu.
type flawedChallenge struct {
	expires time.Time
	data    []byte
}

func (s *flawedStore) checkChallenge(c storage.Challenge) error {
	if s.flaw == "challenge-accepts-out-of-bounds" {
		return nil
	}
	now := time.Now()
	if len(c.ID) != storage.ChallengeIDLen || len(c.Data) == 0 || len(c.Data) > storage.MaxChallengeDataLen ||
		!now.Before(c.Expires) || c.Expires.Sub(now) > storage.MaxChallengeLifetime {
		return fmt.Errorf("flawed: %w: challenge", storage.ErrInvalid)
	}
	return nil
}

func (s *flawedStore) challengeContext(ctx context.Context) error {
	if s.flaw == "challenge-ignores-context" {
		return nil
	}
	return ctx.Err()
}

func (s *flawedStore) PutChallenge(ctx context.Context, c storage.Challenge) error {
	if err := s.challengeContext(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flaw == "challenge-put-deletes-before-checking" {
		delete(s.challenges, string(c.ID))
	}
	if err := s.checkChallenge(c); err != nil {
		return err
	}
	if s.challenges == nil {
		s.challenges = map[string]flawedChallenge{}
	}
	if _, ok := s.challenges[string(c.ID)]; ok && s.flaw == "challenge-put-keeps-first" {
		return nil
	}
	data := bytes.Clone(c.Data)
	if s.flaw == "challenge-retains-input" {
		data = c.Data
	}
	s.challenges[string(c.ID)] = flawedChallenge{expires: c.Expires, data: data}
	return nil
}

func (s *flawedStore) TakeChallenge(ctx context.Context, id []byte) (storage.Challenge, error) {
	if err := s.challengeContext(ctx); err != nil {
		return storage.Challenge{}, err
	}
	if len(id) != storage.ChallengeIDLen && s.flaw != "challenge-accepts-out-of-bounds" {
		return storage.Challenge{}, fmt.Errorf("flawed: %w: challenge ID", storage.ErrInvalid)
	}
	s.mu.Lock()
	c, ok := s.challenges[string(id)]
	if s.flaw == "challenge-take-not-atomic" {
		// Read, then let a rival read too before deleting.
		s.mu.Unlock()
		storagetest.Arrive(ctx, "challenge-read")
		storagetest.Await(ctx, "challenge-read", 2)
		s.mu.Lock()
	}
	if ok && s.flaw != "challenge-take-keeps-record" {
		delete(s.challenges, string(id))
	}
	s.mu.Unlock()
	if !ok {
		return storage.Challenge{}, storage.ErrNotFound
	}
	if s.flaw != "challenge-expiry-ignored" && !time.Now().Before(c.expires) {
		return storage.Challenge{}, storage.ErrNotFound
	}
	return storage.Challenge{ID: bytes.Clone(id), Expires: c.expires, Data: bytes.Clone(c.data)}, nil
}
