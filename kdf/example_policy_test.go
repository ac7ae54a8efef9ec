package kdf_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
)

// A weak passphrase is rejected with every reason at once, each usable by a
// UI; a long, uncommon one passes. Under the NIST preset there are no
// composition rules.
func ExamplePolicy_Check() {
	policy, err := kdf.NewPolicy(kdf.SingleFactorPolicy())
	if err != nil {
		panic(err)
	}
	account := kdf.PolicyContext{
		Username:    "jordan",
		Email:       "jordan@example.com",
		ServiceName: "Keyhold",
	}
	ctx := context.Background()

	err = policy.Check(ctx, []byte("Jordan2024!"), account)
	if pe, ok := errors.AsType[*kdf.PolicyError](err); ok {
		for _, v := range pe.Violations {
			switch v.Reason {
			case kdf.ReasonTooShort:
				fmt.Printf("%s: %d of at least %d characters\n", v.Reason, v.Length, v.Min)
			case kdf.ReasonContextWord:
				fmt.Printf("%s: contains your %s\n", v.Reason, v.Field)
			default:
				fmt.Println(v.Reason)
			}
		}
	}
	fmt.Println("too common:", errors.Is(err, kdf.ErrBlocklisted))
	fmt.Println(err)

	err = policy.Check(ctx, []byte("correct horse battery staple"), account)
	fmt.Println("good passphrase accepted:", err == nil)

	// Output:
	// too_short: 11 of at least 15 characters
	// blocklisted
	// context_word: contains your username
	// context_word: contains your email
	// too common: true
	// kdf: password rejected by policy: password too short: 11 code points, minimum 15; password is too common; password contains a context-specific word: username; password contains a context-specific word: email
	// good passphrase accepted: true
}

// Adding a breached-password check. Only the first five hex digits of the
// password's SHA-1 are sent to the API. If the API cannot be reached the
// error matches kdf.ErrBreachCheckFailed, next to any other violation; this
// application chooses to fail open in that case.
func ExamplePwnedChecker() {
	checker, err := kdf.NewPwnedChecker(kdf.PwnedCheckerConfig{UserAgent: "example-app"})
	if err != nil {
		panic(err)
	}
	cfg := kdf.SingleFactorPolicy()
	cfg.BreachChecker = checker
	policy, err := kdf.NewPolicy(cfg)
	if err != nil {
		panic(err)
	}
	_ = func(ctx context.Context, password []byte, account kdf.PolicyContext) error {
		err := policy.Check(ctx, password, account)
		if pe, ok := errors.AsType[*kdf.PolicyError](err); ok &&
			len(pe.Violations) == 1 && pe.Violations[0].Reason == kdf.ReasonBreachCheckFailed {
			return nil // fail open: the breach service is down
		}
		return err
	}
	fmt.Println(checker.Config().BaseURL)
	// Output: https://api.pwnedpasswords.com
}
