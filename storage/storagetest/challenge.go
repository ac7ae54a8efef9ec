package storagetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// RunChallengeStore tests that a [storage.ChallengeStore] keeps its
// contract, one subtest per clause. [Run] calls it too when the stores it
// is given implement the interface. newStore must return an empty,
// isolated store on every call; cleanup goes through t.Cleanup.
//
// The clauses check that a challenge put is taken once with its ID, data
// and Expires (to the millisecond), and then is gone; that a put replaces
// the challenge with its ID; that of 20 takes of one challenge released
// together exactly one gets it (ConcurrentTakesOneWins); that a
// challenge whose Expires has passed is ErrNotFound
// (ExpiredChallengeIsAbsent: it is put to expire 300 ms ahead, by the
// test's clock, and taken 150 ms after that, so the store's clock must
// agree with the test's to within 150 ms, whether or not the store has
// removed it); that slices are not shared with the caller either way; and
// that one value past every bound (an ID of another length than
// storage.ChallengeIDLen, empty data or data over
// storage.MaxChallengeDataLen, an Expires in the past or more than
// storage.MaxChallengeLifetime ahead) is refused with ErrInvalid and
// changes nothing, while values at the bounds work.
func RunChallengeStore(t *testing.T, newStore func(t *testing.T) storage.ChallengeStore) {
	runClauses(t, challengeClauses, func(t *testing.T) storage.ChallengeStore { return newStore(t) })
}

// challengeClauses are the ChallengeStore subtests, in the order of the
// contract.
var challengeClauses = []clause[storage.ChallengeStore]{
	{"TakeAbsentIsErrNotFound", challengeTakeAbsentIsErrNotFound},
	{"PutThenTakeRoundTrips", challengePutThenTakeRoundTrips},
	{"SecondTakeIsErrNotFound", challengeSecondTakeIsErrNotFound},
	{"PutReplaces", challengePutReplaces},
	{"ConcurrentTakesOneWins", challengeConcurrentTakesOneWins},
	{"ExpiredChallengeIsAbsent", challengeExpiredIsAbsent},

	{"PutDoesNotRetainInput", challengePutDoesNotRetainInput},
	{"TakeReturnsCallersOwnCopy", challengeTakeReturnsCallersOwnCopy},

	{"ValuesAtBoundsRoundTrip", challengeValuesAtBoundsRoundTrip},
	{"OutOfBoundsIsInvalid", challengeOutOfBoundsIsInvalid},

	{"CanceledContextIsHonoured", canceledContextIsHonoured(challengeContextIsHonoured)},
	{"ExpiredDeadlineIsHonoured", expiredDeadlineIsHonoured(challengeContextIsHonoured)},
}

// challengeRacers is the number of racers of ConcurrentTakesOneWins.
const challengeRacers = 20

// challengeID returns a challenge ID for seed (storage.ChallengeIDLen
// bytes).
func challengeID(seed uint64) []byte { return pattern(5000+seed, storage.ChallengeIDLen) }

// challengeOf returns a challenge with ID challengeID(seed) and data,
// expiring ten minutes ahead.
func challengeOf(seed uint64, data string) storage.Challenge {
	return storage.Challenge{ID: challengeID(seed), Expires: time.Now().Add(10 * time.Minute), Data: []byte(data)}
}

func mustPutChallenge(t *testing.T, s storage.ChallengeStore, c storage.Challenge) {
	t.Helper()
	if err := s.PutChallenge(t.Context(), c); err != nil {
		t.Fatalf("PutChallenge(%x…, %d bytes): %v", c.ID[:4], len(c.Data), err)
	}
}

// wantChallenge takes the challenge with want's ID and checks that it is
// want (Expires to within a millisecond).
func wantChallenge(t *testing.T, s storage.ChallengeStore, want storage.Challenge) {
	t.Helper()
	got, err := s.TakeChallenge(t.Context(), want.ID)
	if err != nil {
		t.Errorf("TakeChallenge(%x…): %v, want the challenge put", want.ID[:4], err)
		return
	}
	if !sameBytes(got.ID, want.ID) {
		t.Errorf("TakeChallenge(%x…) returned ID %x, want %x", want.ID[:4], got.ID, want.ID)
	}
	if !sameBytes(got.Data, want.Data) {
		t.Errorf("TakeChallenge(%x…) returned data %q, want %q", want.ID[:4], clip(got.Data), clip(want.Data))
	}
	if d := got.Expires.Sub(want.Expires); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("TakeChallenge(%x…) returned Expires %v, want %v (to the millisecond)", want.ID[:4], got.Expires, want.Expires)
	}
}

// wantNoChallenge checks that taking id is ErrNotFound.
func wantNoChallenge(t *testing.T, s storage.ChallengeStore, id []byte) {
	t.Helper()
	got, err := s.TakeChallenge(t.Context(), id)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeChallenge(%x…): %v (data %q), want storage.ErrNotFound", id[:4], err, clip(got.Data))
	}
}

// clip shortens b for a message.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func challengeTakeAbsentIsErrNotFound(t *testing.T, s storage.ChallengeStore) {
	wantNoChallenge(t, s, challengeID(1))
}

// challengePutThenTakeRoundTrips: what is put is what is taken, in a zone
// other than UTC, and a take leaves other challenges alone.
func challengePutThenTakeRoundTrips(t *testing.T, s storage.ChallengeStore) {
	east := time.FixedZone("east", 5*3600+30*60)
	a := challengeOf(1, "challenge one")
	a.Expires = a.Expires.In(east)
	b := challengeOf(2, "challenge two")
	mustPutChallenge(t, s, a)
	mustPutChallenge(t, s, b)
	wantChallenge(t, s, a)
	wantChallenge(t, s, b)
}

func challengeSecondTakeIsErrNotFound(t *testing.T, s storage.ChallengeStore) {
	c := challengeOf(1, "used once")
	mustPutChallenge(t, s, c)
	wantChallenge(t, s, c)
	wantNoChallenge(t, s, c.ID)
}

func challengePutReplaces(t *testing.T, s storage.ChallengeStore) {
	mustPutChallenge(t, s, challengeOf(1, "first"))
	second := challengeOf(1, "second")
	second.Expires = second.Expires.Add(time.Minute)
	mustPutChallenge(t, s, second)
	wantChallenge(t, s, second)
	wantNoChallenge(t, s, second.ID)
}

// challengeConcurrentTakesOneWins: challengeRacers takes of one challenge,
// released together: exactly one gets it, the others get ErrNotFound.
func challengeConcurrentTakesOneWins(t *testing.T, s storage.ChallengeStore) {
	c := challengeOf(1, "taken once")
	mustPutChallenge(t, s, c)
	got := make([]storage.Challenge, challengeRacers)
	errs := raceN(t.Context(), challengeRacers, func(ctx context.Context, i int) error {
		var err error
		got[i], err = s.TakeChallenge(ctx, c.ID)
		return err
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			if !sameBytes(got[i].Data, c.Data) {
				t.Errorf("racer %d took data %q, want %q", i, clip(got[i].Data), c.Data)
			}
		case errors.Is(err, storage.ErrNotFound):
		default:
			t.Errorf("racer %d: %v, want nil or storage.ErrNotFound", i, err)
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d concurrent takes of one challenge got it, want exactly 1", winners, challengeRacers)
	}
	wantNoChallenge(t, s, c.ID)
}

// challengeExpiredIsAbsent: a challenge is there until its Expires and
// absent from then on, by the test's clock.
func challengeExpiredIsAbsent(t *testing.T, s storage.ChallengeStore) {
	expires := time.Now().Add(300 * time.Millisecond)
	live := storage.Challenge{ID: challengeID(1), Expires: expires, Data: []byte("taken in time")}
	late := storage.Challenge{ID: challengeID(2), Expires: expires, Data: []byte("taken too late")}
	mustPutChallenge(t, s, live)
	mustPutChallenge(t, s, late)
	if time.Now().Before(expires) {
		wantChallenge(t, s, live)
	}
	time.Sleep(time.Until(expires.Add(150 * time.Millisecond)))
	wantNoChallenge(t, s, late.ID)
	wantNoChallenge(t, s, late.ID)
}

// challengePutDoesNotRetainInput: changing the slices of a challenge after
// putting it changes nothing stored.
func challengePutDoesNotRetainInput(t *testing.T, s storage.ChallengeStore) {
	c := challengeOf(1, "as put")
	want := storage.Challenge{ID: bytes.Clone(c.ID), Expires: c.Expires, Data: bytes.Clone(c.Data)}
	mustPutChallenge(t, s, c)
	copy(c.Data, "XXXXXX")
	wantChallenge(t, s, want)
	// The ID the caller keeps is the caller's too.
	mustPutChallenge(t, s, c)
	c.ID[0] ^= 0xff
	wantNoChallenge(t, s, c.ID)
	want.Data = bytes.Clone(c.Data)
	wantChallenge(t, s, want)
}

// challengeTakeReturnsCallersOwnCopy: the slices a take returns are the
// caller's: changing them changes no challenge put since with the same
// bytes.
func challengeTakeReturnsCallersOwnCopy(t *testing.T, s storage.ChallengeStore) {
	c := challengeOf(1, "original")
	mustPutChallenge(t, s, c)
	got, err := s.TakeChallenge(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("TakeChallenge: %v", err)
	}
	mustPutChallenge(t, s, c)
	copy(got.Data, "XXXXXXXX")
	if len(got.ID) > 0 {
		got.ID[0] ^= 0xff
	}
	wantChallenge(t, s, c)
}

// challengeValuesAtBoundsRoundTrip: MaxChallengeDataLen bytes of every
// byte value, one byte, IDs that differ only after a NUL or in case, an
// Expires close to MaxChallengeLifetime ahead.
func challengeValuesAtBoundsRoundTrip(t *testing.T, s storage.ChallengeStore) {
	big := make([]byte, storage.MaxChallengeDataLen)
	for i := range big {
		big[i] = byte(i)
	}
	lower := bytes.Repeat([]byte{0}, storage.ChallengeIDLen)
	copy(lower, "a\x00b")
	upper := bytes.Clone(lower)
	upper[0] = 'A'
	nul := bytes.Clone(lower)
	nul[2] = 'c'
	cs := []storage.Challenge{
		{ID: challengeID(1), Expires: time.Now().Add(10 * time.Minute), Data: big},
		{ID: challengeID(2), Expires: time.Now().Add(10 * time.Minute), Data: []byte{0}},
		{ID: lower, Expires: time.Now().Add(10 * time.Minute), Data: []byte("lower")},
		{ID: upper, Expires: time.Now().Add(10 * time.Minute), Data: []byte("upper")},
		{ID: nul, Expires: time.Now().Add(10 * time.Minute), Data: []byte("after NUL")},
		{ID: challengeID(3), Expires: time.Now().Add(storage.MaxChallengeLifetime - time.Minute), Data: []byte("long-lived")},
	}
	for _, c := range cs {
		mustPutChallenge(t, s, c)
	}
	for _, c := range cs {
		wantChallenge(t, s, c)
	}
}

// challengeOutOfBoundsIsInvalid: one value past every bound is refused
// with ErrInvalid, and neither stores a challenge nor replaces or removes
// the one with its ID.
func challengeOutOfBoundsIsInvalid(t *testing.T, s storage.ChallengeStore) {
	ctx := t.Context()
	kept := challengeOf(1, "kept")
	mustPutChallenge(t, s, kept)
	now := time.Now()
	bad := []struct {
		name string
		c    storage.Challenge
	}{
		{"empty data", storage.Challenge{ID: kept.ID, Expires: now.Add(time.Minute)}},
		{"data over MaxChallengeDataLen", storage.Challenge{ID: kept.ID, Expires: now.Add(time.Minute), Data: make([]byte, storage.MaxChallengeDataLen+1)}},
		{"Expires in the past", storage.Challenge{ID: kept.ID, Expires: now.Add(-time.Minute), Data: []byte("x")}},
		{"zero Expires", storage.Challenge{ID: kept.ID, Data: []byte("x")}},
		{"Expires past MaxChallengeLifetime", storage.Challenge{ID: kept.ID, Expires: now.Add(storage.MaxChallengeLifetime + time.Minute), Data: []byte("x")}},
		{"empty ID", storage.Challenge{Expires: now.Add(time.Minute), Data: []byte("x")}},
		{"short ID", storage.Challenge{ID: kept.ID[:storage.ChallengeIDLen-1], Expires: now.Add(time.Minute), Data: []byte("x")}},
		{"long ID", storage.Challenge{ID: append(bytes.Clone(kept.ID), 0), Expires: now.Add(time.Minute), Data: []byte("x")}},
	}
	for _, b := range bad {
		if err := s.PutChallenge(ctx, b.c); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("PutChallenge with %s: %v, want storage.ErrInvalid", b.name, err)
		}
	}
	for _, id := range [][]byte{nil, kept.ID[:storage.ChallengeIDLen-1], append(bytes.Clone(kept.ID), 0)} {
		if _, err := s.TakeChallenge(ctx, id); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("TakeChallenge with an ID of %d bytes: %v, want storage.ErrInvalid", len(id), err)
		}
	}
	wantChallenge(t, s, kept)
	// A refused put with a short ID stored nothing under its prefix.
	padded := append(bytes.Clone(kept.ID[:storage.ChallengeIDLen-1]), 0)
	wantNoChallenge(t, s, padded)
}

// challengeContextIsHonoured checks that both methods, called with a
// context that is already done, fail with want and change nothing.
func challengeContextIsHonoured(t *testing.T, s storage.ChallengeStore, done context.Context, want error) {
	t.Helper()
	if err := s.PutChallenge(done, challengeOf(2, "must not be written")); !errors.Is(err, want) {
		t.Errorf("PutChallenge with a done context: %v, want an error matching %v", err, want)
	}
	wantNoChallenge(t, s, challengeID(2))
	c := challengeOf(1, "kept")
	mustPutChallenge(t, s, c)
	if _, err := s.TakeChallenge(done, c.ID); !errors.Is(err, want) {
		t.Errorf("TakeChallenge with a done context: %v, want an error matching %v", err, want)
	}
	wantChallenge(t, s, c)
}

// runChallengesIfImplemented is Run's ChallengeStore group: each clause
// takes a store from newStore and runs on it if it implements
// storage.ChallengeStore, and skips, saying so, if it does not.
func runChallengesIfImplemented(t *testing.T, newStore func(t *testing.T) storage.Store) {
	RunChallengeStore(t, func(t *testing.T) storage.ChallengeStore {
		s := newStore(t)
		cs, ok := s.(storage.ChallengeStore)
		if !ok {
			t.Skipf("the store (a %T) does not implement storage.ChallengeStore", s)
		}
		return cs
	})
}
