package kdf_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
)

// Hash at sign-up, Verify at login, and store a new hash when Verify says
// the stored one was made under an older policy.
func ExampleHasher_Verify() {
	ctx := context.Background()
	h, err := kdf.New(kdf.Config{}) // Argon2id, m=19 MiB, t=2, p=1
	if err != nil {
		panic(err)
	}
	stored, _ := h.Hash(ctx, []byte("correct horse battery staple"))

	rehash, err := h.Verify(ctx, stored, []byte("correct horse battery staple"))
	fmt.Println("right password:", err, "rehash:", rehash)

	_, err = h.Verify(ctx, stored, []byte("Correct horse battery staple"))
	fmt.Println("wrong password:", errors.Is(err, kdf.ErrMismatch))

	// The policy moves on to more memory: old hashes still verify, and ask
	// to be replaced.
	stronger, _ := kdf.New(kdf.Config{Params: kdf.ModerateParams()})
	rehash, err = stronger.Verify(ctx, stored, []byte("correct horse battery staple"))
	fmt.Println("after a policy change:", err, "rehash:", rehash)
	// Output:
	// right password: <nil> rehash: false
	// wrong password: true
	// after a policy change: <nil> rehash: true
}

// A hash read from a compromised database cannot make the server allocate
// gigabytes: its parameters are bounded before any work is done.
func ExampleHasher_Verify_limits() {
	h, _ := kdf.New(kdf.Config{})
	crafted := "$argon2id$v=19$m=4194304,t=1000,p=255$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	_, err := h.Verify(context.Background(), crafted, []byte("password"))
	fmt.Println(errors.Is(err, kdf.ErrParamsOutOfBounds))
	fmt.Println(err)
	// Output:
	// true
	// kdf: parameters out of bounds: t=1000 is above the maximum 16
}

// For an unknown user, run a dummy verify so that the response takes as
// long as a wrong password and does not reveal which accounts exist.
func ExampleHasher_VerifyDummy() {
	h, _ := kdf.New(kdf.Config{})
	err := h.VerifyDummy(context.Background(), []byte("whatever they typed"))
	fmt.Println(errors.Is(err, kdf.ErrMismatch))
	// Output: true
}

// Share one Gate between every Hasher of a process: past its queue, callers
// get ErrBusy (answer 503 or 429) instead of exhausting memory.
func ExampleNewGate() {
	gate, _ := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 1, FailFast: true})
	h, _ := kdf.New(kdf.Config{Gate: gate})

	started, finish := make(chan struct{}), make(chan struct{})
	go gate.Run(context.Background(), 1, func() { close(started); <-finish }) // occupies the only place
	<-started
	_, err := h.Hash(context.Background(), []byte("a login during a flood"))
	fmt.Println(errors.Is(err, kdf.ErrBusy))
	close(finish)
	// Output: true
}

// A key derived from a passphrase is domain-separated from the login hash
// of the same passphrase, and is the same on every call with the same salt
// and parameters.
func ExampleHasher_DeriveKey() {
	ctx := context.Background()
	h, _ := kdf.New(kdf.Config{})
	salt := []byte("per-slot-salt-16") // random per key slot in real use
	k1, _ := h.DeriveKey(ctx, []byte("vault passphrase"), salt, kdf.InteractiveParams())
	k2, _ := h.DeriveKey(ctx, []byte("vault passphrase"), salt, kdf.InteractiveParams())
	fmt.Println(len(k1), string(k1) == string(k2))
	// Output: 32 true
}
