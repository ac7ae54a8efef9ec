package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

// LoginPerIP allows a burst of 5 attempts per client address, then one
// every 3 minutes.
func ExampleLimiter() {
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC) // a fake clock, for the example
	perIP, _ := ratelimit.New(memstore.New(), ratelimit.LoginPerIP(), ratelimit.Options{
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx := context.Background()
	for i := 1; i <= 6; i++ {
		d, _ := perIP.Allow(ctx, "192.0.2.1")
		if d.Allowed {
			fmt.Printf("attempt %d: allowed, %d left\n", i, d.Remaining)
		} else {
			fmt.Printf("attempt %d: refused, retry after %v\n", i, d.RetryAfter)
		}
	}
	now = now.Add(3 * time.Minute)
	d, _ := perIP.Allow(ctx, "192.0.2.1")
	fmt.Println("3 minutes later, allowed:", d.Allowed)
	d, _ = perIP.Allow(ctx, "198.51.100.7")
	fmt.Println("another address, allowed:", d.Allowed)
	// Output:
	// attempt 1: allowed, 4 left
	// attempt 2: allowed, 3 left
	// attempt 3: allowed, 2 left
	// attempt 4: allowed, 1 left
	// attempt 5: allowed, 0 left
	// attempt 6: refused, retry after 3m0s
	// 3 minutes later, allowed: true
	// another address, allowed: true
}

// Ten wrong passwords lock the account for an hour, whatever addresses
// they come from; the owner, on a device that logged in before, still
// gets in.
func ExampleLockout() {
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC) // a fake clock, for the example
	clock := func() time.Time { return now }
	ctx := context.Background()
	lockout, _ := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{Now: clock, Logger: slog.New(slog.DiscardHandler)})
	deviceKey := make([]byte, ratelimit.DeviceKeyLen) // in an app: from crypto/rand, kept secret
	devices, _ := ratelimit.NewDevices(deviceKey, ratelimit.DeviceOptions{Now: clock})

	// Last week the owner logged in on her laptop, which kept the cookie.
	rec := httptest.NewRecorder()
	devices.Remember(rec, "alice")
	laptop := httptest.NewRequest("POST", "/login", nil)
	for _, c := range rec.Result().Cookies() {
		laptop.AddCookie(c)
	}

	// Today someone guesses alice's password.
	for i := 1; ; i++ {
		att, err := lockout.Begin(ctx, "alice", ratelimit.Source{})
		var locked *ratelimit.LockedError
		if errors.As(err, &locked) {
			fmt.Printf("guess %d: refused, locked for %v\n", i, locked.Until.Sub(now))
			break
		}
		att.Failed(ctx) // wrong password
	}

	// The owner, on her laptop, is not locked out.
	att, err := lockout.Begin(ctx, "alice", ratelimit.Source{Device: devices.Recognize(laptop, "alice")})
	fmt.Println("the owner on her laptop:", err)
	att.Succeeded(ctx) // right password

	// A device without the cookie gets the account's locked counter.
	phone := httptest.NewRequest("POST", "/login", nil)
	_, err = lockout.Begin(ctx, "alice", ratelimit.Source{Device: devices.Recognize(phone, "alice")})
	fmt.Println("a new device:", err)
	// Output:
	// guess 11: refused, locked for 1h0m0s
	// the owner on her laptop: <nil>
	// a new device: ratelimit: account locked
}

// The middleware answers the 6th attempt from one address with 429,
// Retry-After and the RateLimit fields; a forged X-Forwarded-For changes
// nothing, since no proxy is trusted.
func ExampleLimiter_Middleware() {
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC) // a fake clock, for the example
	perIP, _ := ratelimit.New(memstore.New(), ratelimit.LoginPerIP(), ratelimit.Options{
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
	})
	clients, _ := ratelimit.NewClientResolver(ratelimit.ClientOptions{})
	login := perIP.Middleware(ratelimit.ByIP(clients), nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "checking the password")
	}))

	var rec *httptest.ResponseRecorder
	for i := range 6 {
		rec = httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = "192.0.2.1:4711"
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i)) // forged: ignored
		login.ServeHTTP(rec, r)
	}
	fmt.Println(rec.Code, http.StatusText(rec.Code))
	for _, k := range []string{"Retry-After", "RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		fmt.Printf("%s: %s\n", k, rec.Header().Get(k))
	}
	fmt.Print(rec.Body)
	// Output:
	// 429 Too Many Requests
	// Retry-After: 180
	// RateLimit-Policy: "login";q=5;w=900
	// RateLimit: "login";r=0;t=180
	// X-RateLimit-Limit: 5
	// X-RateLimit-Remaining: 0
	// X-RateLimit-Reset: 1735722900
	// Too many requests. Try again later.
}

// Check is the way in for every credential: Verify runs when the attempt
// is admitted, Dummy (the same work, against nothing) when the account is
// locked, and both answers match ErrRejected alike.
func ExampleLockout_Check() {
	ctx := context.Background()
	lockout, _ := ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{
		Policy: ratelimit.LockoutPolicy{MaxFailures: 2},
		Logger: slog.New(slog.DiscardHandler),
	})
	ip := netip.MustParseAddr("192.0.2.1")
	login := func(password string) string {
		err := lockout.Check(ctx, "alice", ratelimit.Source{IP: ip}, ratelimit.Credential{
			// In an app: hasher.Verify on the stored hash (kdf.ErrMismatch
			// when wrong) and hasher.VerifyDummy.
			Verify: func(context.Context) error {
				if password != "correct horse" {
					return ratelimit.ErrWrongCredential
				}
				return nil
			},
			Dummy: func(context.Context) error { return ratelimit.ErrWrongCredential },
		})
		switch {
		case err == nil:
			return "welcome"
		case errors.Is(err, ratelimit.ErrRejected):
			return "wrong name or password" // also when locked: errors.Is(err, ratelimit.ErrLocked) is for the logs
		}
		return "try again later"
	}
	fmt.Println(login("guess 1"))
	fmt.Println(login("guess 2"))
	fmt.Println(login("correct horse")) // this address is locked now
	ip = netip.MustParseAddr("198.51.100.7")
	fmt.Println(login("correct horse")) // another address is not
	// Output:
	// wrong name or password
	// wrong name or password
	// wrong name or password
	// welcome
}

// A Guard limits a KDF-costing endpoint per client address and per
// account, before any password hash runs.
func ExampleGuard() {
	ctx := context.Background()
	store := memstore.New()
	quiet := ratelimit.Options{Logger: slog.New(slog.DiscardHandler)}
	perClient, _ := ratelimit.New(store, ratelimit.KDFPerClient(), quiet)
	perAccount, _ := ratelimit.New(store, ratelimit.KDFPerAccount(), quiet)
	guard := ratelimit.Guard{PerClient: perClient, PerAccount: perAccount}
	allowed := 0
	for i := range 30 { // one account, from 30 addresses
		d, err := guard.Allow(ctx, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), "alice")
		if err == nil && d.Allowed {
			allowed++
		}
	}
	fmt.Println(allowed, "of 30 unlocks of one account in a minute")
	// Output: 10 of 30 unlocks of one account in a minute
}
