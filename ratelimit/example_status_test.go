package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// After someone's guesses locked one address out of the account, the
// owner, logged in from elsewhere, reads what the lockout holds on the
// account page: Status counts nothing, and is shown to the owner only
// (the login form answers a locked account like a wrong password).
func ExampleLockout_Status() {
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC) // a fake clock, for the example
	ctx := context.Background()
	lockout, _ := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
	})

	guesser := ratelimit.Source{IP: netip.MustParseAddr("203.0.113.9")}
	for range 10 {
		att, err := lockout.Begin(ctx, "alice", guesser)
		if err != nil {
			break
		}
		att.Failed(ctx) // wrong password
	}

	for _, who := range []struct {
		name string
		src  ratelimit.Source
	}{{"the guesser's address", guesser}, {"the owner's address", ratelimit.Source{IP: netip.MustParseAddr("198.51.100.7")}}} {
		st, err := lockout.Status(ctx, "alice", who.src)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %d of %d failures, locked: %v", who.name, st.Source.Failures, st.Source.MaxFailures, st.Source.Locked())
		if st.Source.Locked() {
			fmt.Printf(" for %v", st.Source.LockedUntil.Sub(now))
		}
		fmt.Printf("; account: %d of %d\n", st.Account.Failures, st.Account.MaxFailures)
	}
	// Output:
	// the guesser's address: 10 of 10 failures, locked: true for 1h0m0s; account: 10 of 100
	// the owner's address: 0 of 10 failures, locked: false; account: 10 of 100
}
