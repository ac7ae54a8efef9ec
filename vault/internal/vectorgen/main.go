// Command vectorgen writes vault/testdata/vault_vectors.json: a vault
// record with a PBKDF2-SHA256 passphrase slot, a record sealed under it,
// and negative cases derived from both. Run from the vault directory:
//
//	go run ./internal/vectorgen > testdata/vault_vectors.json
//
// The output is random each time (keys, salts, nonces); the committed file
// is the one the tests and FORMAT.md refer to.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log"
	"os"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

type negative struct {
	Name      string `json:"name"`
	UserID    string `json:"user_id"`
	RecordHex string `json:"record_hex,omitempty"`
	SealedHex string `json:"sealed_hex,omitempty"`
	Context   string `json:"context,omitempty"`
	Expect    string `json:"expect"`
}

type file struct {
	Note       string     `json:"note"`
	UserID     string     `json:"user_id"`
	Passphrase string     `json:"passphrase"`
	RecordHex  string     `json:"record_hex"`
	Context    string     `json:"context"`
	Plaintext  string     `json:"plaintext"`
	SealedHex  string     `json:"sealed_hex"`
	Negative   []negative `json:"negative"`
}

func flip(b []byte, i int) string {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return hex.EncodeToString(c)
}

func main() {
	ctx := context.Background()
	store := memstore.New()
	v, err := vault.New(store, vault.Config{KDF: kdf.PBKDF2SHA256Params()})
	if err != nil {
		log.Fatal(err)
	}
	f := file{
		Note:       "FORMAT.md section 3. Made by vault/internal/vectorgen. Positive: Unlock(user_id, passphrase) on record_hex, then Open(sealed_hex, context) == plaintext. Every negative must fail: expect unlock_failed (ErrUnlockFailed) or decrypt (ErrDecrypt).",
		UserID:     "user-42",
		Passphrase: "correct horse battery staple",
		Context:    "notes/1/body",
		Plaintext:  "hello, vault",
	}
	u, err := v.Create(ctx, f.UserID, []byte(f.Passphrase))
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := u.Seal([]byte(f.Plaintext), []byte(f.Context))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := store.GetVault(ctx, f.UserID)
	if err != nil {
		log.Fatal(err)
	}
	r := rec.Data
	f.RecordHex, f.SealedHex = hex.EncodeToString(r), hex.EncodeToString(sealed)
	// Offsets in the record: magic 0-3, key version 4-7, count 8, slot from 9:
	// kind 9, id 10-25, key version 26-29, params length 30-31, params 32-
	// (alg 32, t 33-36, m 37-40, p 41, iterations 42-45, salt length 46,
	// salt 47-62), wrapped length 63-64, nonce 65-76, ciphertext 77-108,
	// tag 109-124.
	for _, n := range []struct {
		name string
		at   int
	}{
		{"magic", 0}, {"record key version", 7}, {"slot kind", 9}, {"slot id", 12}, {"slot key version", 29},
		{"kdf algorithm", 32}, {"iterations", 44}, {"salt", 50}, {"wrap nonce", 70}, {"wrapped key", 90}, {"wrap tag", 120},
	} {
		f.Negative = append(f.Negative, negative{Name: "record: flipped " + n.name, UserID: f.UserID, RecordHex: flip(r, n.at), Expect: "unlock_failed"})
	}
	f.Negative = append(f.Negative,
		negative{Name: "record: another user's ID", UserID: "user-43", RecordHex: f.RecordHex, Expect: "unlock_failed"},
		negative{Name: "record: truncated", UserID: f.UserID, RecordHex: f.RecordHex[:len(f.RecordHex)-2], Expect: "unlock_failed"},
	)
	for _, n := range []struct {
		name string
		at   int
	}{{"format", 0}, {"algorithm", 1}, {"key version", 5}, {"nonce", 8}, {"ciphertext", 20}, {"tag", len(sealed) - 1}} {
		f.Negative = append(f.Negative, negative{Name: "sealed: flipped " + n.name, UserID: f.UserID, SealedHex: flip(sealed, n.at), Context: f.Context, Expect: "decrypt"})
	}
	f.Negative = append(f.Negative,
		negative{Name: "sealed: another context", UserID: f.UserID, SealedHex: f.SealedHex, Context: "notes/2/body", Expect: "decrypt"},
		negative{Name: "sealed: truncated", UserID: f.UserID, SealedHex: f.SealedHex[:len(f.SealedHex)-2], Context: f.Context, Expect: "decrypt"},
	)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		log.Fatal(err)
	}
}
