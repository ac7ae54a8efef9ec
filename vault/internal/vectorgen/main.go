// Command vectorgen writes vault/testdata/vault_vectors.json: a vault
// record with a PBKDF2-SHA256 passphrase slot, a record sealed under it
// (envelope format 1), two versions of a versioned record (format 2), and
// negative cases derived from them. Run from the vault directory:
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
	// MinVersion is the version OpenVersion expects (0 when absent).
	MinVersion uint64 `json:"min_version,omitempty"`
	Expect     string `json:"expect"`
}

// versioned is a record sealed with SealVersion under the same vault.
type versioned struct {
	Context       string `json:"context"`
	Plaintext     string `json:"plaintext"`
	RecordVersion uint64 `json:"record_version"`
	SealedHex     string `json:"sealed_hex"`
}

type file struct {
	Note       string     `json:"note"`
	UserID     string     `json:"user_id"`
	Passphrase string     `json:"passphrase"`
	RecordHex  string     `json:"record_hex"`
	Context    string     `json:"context"`
	Plaintext  string     `json:"plaintext"`
	SealedHex  string     `json:"sealed_hex"`
	Versioned  versioned  `json:"versioned"`
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
		Note:       "FORMAT.md section 3. Made by vault/internal/vectorgen. Positive: Unlock(user_id, passphrase) on record_hex, then Open(sealed_hex, context) == plaintext. Versioned: OpenVersion(versioned.sealed_hex, versioned.context, versioned.record_version) == (versioned.plaintext, versioned.record_version). Every negative must fail: expect unlock_failed (ErrUnlockFailed), decrypt (ErrDecrypt, with OpenVersion at min_version and with Open) or rollback (ErrRollback from OpenVersion at min_version).",
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

	// Versioned records: version 7 is current, version 6 an older
	// ciphertext of the same record. Header offsets: format 0, algorithm
	// 1, key version 2-5, record version 6-13, nonce 14-25.
	f.Versioned = versioned{Context: "notes/1/title", Plaintext: "title, 7th edit", RecordVersion: 7}
	v7, err := u.SealVersion([]byte(f.Versioned.Plaintext), []byte(f.Versioned.Context), 7)
	if err != nil {
		log.Fatal(err)
	}
	v6, err := u.SealVersion([]byte("title, 6th edit"), []byte(f.Versioned.Context), 6)
	if err != nil {
		log.Fatal(err)
	}
	f.Versioned.SealedHex = hex.EncodeToString(v7)
	vc := f.Versioned.Context
	moved := append([]byte(nil), v6...)
	copy(moved[6:14], v7[6:14])
	down := append([]byte{1}, v7[1:6]...)
	down = append(down, v7[14:]...)
	f.Negative = append(f.Negative,
		negative{Name: "versioned: older version", UserID: f.UserID, SealedHex: hex.EncodeToString(v6), Context: vc, MinVersion: 7, Expect: "rollback"},
		negative{Name: "versioned: unversioned record where a version is expected", UserID: f.UserID, SealedHex: f.SealedHex, Context: f.Context, MinVersion: 1, Expect: "rollback"},
		negative{Name: "versioned: flipped record version (high byte)", UserID: f.UserID, SealedHex: flip(v7, 6), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: flipped record version (low byte)", UserID: f.UserID, SealedHex: flip(v6, 13), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: version moved from the newer record", UserID: f.UserID, SealedHex: hex.EncodeToString(moved), Context: vc, MinVersion: 7, Expect: "decrypt"},
		negative{Name: "versioned: downgraded to format 1", UserID: f.UserID, SealedHex: hex.EncodeToString(down), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: flipped format", UserID: f.UserID, SealedHex: flip(v7, 0), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: flipped key version", UserID: f.UserID, SealedHex: flip(v7, 5), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: flipped nonce", UserID: f.UserID, SealedHex: flip(v7, 20), Context: vc, Expect: "decrypt"},
		negative{Name: "versioned: another context", UserID: f.UserID, SealedHex: f.Versioned.SealedHex, Context: "notes/2/title", Expect: "decrypt"},
	)

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		log.Fatal(err)
	}
}
