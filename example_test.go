package keyhold_test

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
)

// The first brick of keyhold: a new passphrase is checked against the
// NIST policy, stored only as an Argon2id hash, and verified at login.
func Example() {
	ctx := context.Background()
	policy, _ := kdf.NewPolicy(kdf.SingleFactorPolicy())
	hasher, _ := kdf.New(kdf.Config{})

	fmt.Println("weak:", policy.Check(ctx, []byte("password1"), kdf.PolicyContext{}) != nil)
	passphrase := []byte("velvet otter learns calculus")
	fmt.Println("good:", policy.Check(ctx, passphrase, kdf.PolicyContext{}) == nil)

	stored, _ := hasher.Hash(ctx, passphrase)
	_, err := hasher.Verify(ctx, stored, passphrase)
	fmt.Println("login:", err == nil)
	// Output:
	// weak: true
	// good: true
	// login: true
}
