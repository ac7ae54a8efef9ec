// Command quickstart shows package kdf end to end: it checks passphrases
// against the NIST policy, hashes the accepted one, verifies it at a
// "login", migrates a hash made under an older policy, and refuses a
// crafted hash before doing any work. Run it with:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/keyhold/keyhold/kdf"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// One gate for every KDF run in the process: at most 2 at once, within
	// 128 MiB, so a flood of logins cannot exhaust memory.
	gate, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 2, MemoryBudgetKiB: 128 * 1024})
	if err != nil {
		return err
	}
	hasher, err := kdf.New(kdf.Config{Gate: gate}) // Argon2id, m=19 MiB, t=2, p=1
	if err != nil {
		return err
	}
	policy, err := kdf.NewPolicy(kdf.SingleFactorPolicy())
	if err != nil {
		return err
	}
	account := kdf.PolicyContext{Username: "ada", Email: "ada@example.com", ServiceName: "quickstart"}

	fmt.Println("1. Sign-up: check candidate passphrases against the NIST SP 800-63B policy")
	var chosen []byte
	for _, candidate := range []string{"Password123!", "ada-quickstart-2026", "velvet otter learns calculus"} {
		err := policy.Check(ctx, []byte(candidate), account)
		if pe, ok := errors.AsType[*kdf.PolicyError](err); ok {
			fmt.Printf("   rejected %-32q reasons: %v\n", candidate, pe.Reasons())
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("   accepted %q\n", candidate)
		chosen = []byte(candidate)
		break
	}

	if chosen == nil {
		return errors.New("no candidate passed the policy")
	}
	stored, err := hasher.Hash(ctx, chosen)
	if err != nil {
		return err
	}
	fmt.Println("2. Store only the hash (a PHC string):")
	fmt.Println("  ", stored)

	fmt.Println("3. Login:")
	rehash, err := hasher.Verify(ctx, stored, chosen)
	fmt.Printf("   right passphrase: err=%v needsRehash=%v\n", err, rehash)
	_, err = hasher.Verify(ctx, stored, []byte("Velvet otter learns calculus"))
	fmt.Printf("   wrong passphrase: %v\n", err)
	err = hasher.VerifyDummy(ctx, []byte("anything"))
	fmt.Printf("   unknown user (dummy verify, same cost): %v\n", err)

	fmt.Println("4. Migration: a PBKDF2 hash from an older deployment verifies and asks to be replaced")
	// Made by passlib: pbkdf2_sha256.using(rounds=29000).hash("password").
	legacy := "$pbkdf2-sha256$29000$WyuF8L4XwpjTWktJSUlpDQ$QR1BL0BIymLWoyPE9Whf70p71J9/cxmnbbJ6CK8r43M"
	rehash, err = hasher.Verify(ctx, legacy, []byte("password"))
	fmt.Printf("   passlib hash: err=%v needsRehash=%v\n", err, rehash)

	fmt.Println("5. A crafted hash from a tampered database is refused before any work")
	crafted := "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	_, err = hasher.Verify(ctx, crafted, chosen)
	fmt.Printf("   %v\n", err)

	return nil
}
