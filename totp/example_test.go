package totp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/totp"
)

// A code is accepted once: the same code a second time is refused, as
// replay protection demands, even within its 30 seconds.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // a fake clock, for the example
	clock := func() time.Time { return now }
	store := memstore.New()
	quiet := slog.New(slog.DiscardHandler)
	lockout, _ := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Name: "totp", Now: clock, Logger: quiet})
	key := make([]byte, totp.KeyRingKeyLen)
	rand.Read(key) // in an app: from its secrets manager
	ring, _ := totp.NewKeyRing("2026-12", map[string][]byte{"2026-12": key})
	auth, _ := totp.New(totp.Config{Store: store, Sealer: ring, Lockout: lockout, Issuer: "Example",
		Now: clock, Logger: quiet})

	// Enrollment: the user scans the QR code; their app shows codes.
	enrollment, _ := auth.Begin(ctx, "user-1", "alice@example.com")
	phone := func() string { // what the authenticator app shows now
		code, _ := pqtotp.GenerateCodeCustom(enrollment.Secret(), now, pqtotp.ValidateOpts{Digits: otp.DigitsSix})
		return code
	}
	confirmed, err := auth.Confirm(ctx, "user-1", enrollment.Token, phone(), ratelimit.Source{}, totp.ConfirmOptions{Name: "Phone"})
	fmt.Println("confirmed:", err == nil, "recovery codes:", len(confirmed.RecoveryCodes))

	// The confirming code was used up; the next step's code works once.
	now = now.Add(30 * time.Second)
	code := phone()
	fmt.Println("first use:", auth.Verify(ctx, "user-1", code, ratelimit.Source{}) == nil)
	err = auth.Verify(ctx, "user-1", code, ratelimit.Source{})
	fmt.Println("second use refused:", errors.Is(err, ratelimit.ErrRejected), "replayed:", errors.Is(err, totp.ErrReplayed))

	// A recovery code works once too, whatever its case or dashes.
	rc := confirmed.RecoveryCodes[0].Reveal()
	st, err := auth.UseRecoveryCode(ctx, "user-1", rc, ratelimit.Source{})
	fmt.Println("recovery code:", err == nil, "remaining:", st.Remaining)
	_, err = auth.UseRecoveryCode(ctx, "user-1", rc, ratelimit.Source{})
	fmt.Println("recovery code again refused:", errors.Is(err, ratelimit.ErrRejected))
	// Output:
	// confirmed: true recovery codes: 10
	// first use: true
	// second use refused: true replayed: true
	// recovery code: true remaining: 9
	// recovery code again refused: true
}
