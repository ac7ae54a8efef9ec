package vault

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

type vaultVectors struct {
	UserID     string `json:"user_id"`
	Passphrase string `json:"passphrase"`
	RecordHex  string `json:"record_hex"`
	Context    string `json:"context"`
	Plaintext  string `json:"plaintext"`
	SealedHex  string `json:"sealed_hex"`
	Versioned  struct {
		Context       string `json:"context"`
		Plaintext     string `json:"plaintext"`
		RecordVersion uint64 `json:"record_version"`
		SealedHex     string `json:"sealed_hex"`
	} `json:"versioned"`
	Negative []struct {
		Name       string `json:"name"`
		UserID     string `json:"user_id"`
		RecordHex  string `json:"record_hex"`
		SealedHex  string `json:"sealed_hex"`
		Context    string `json:"context"`
		MinVersion uint64 `json:"min_version"`
		Expect     string `json:"expect"`
	} `json:"negative"`
}

func loadVaultVectors(t *testing.T) vaultVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/vault_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vaultVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.RecordHex == "" || len(v.Negative) < 10 {
		t.Fatalf("vault vectors incomplete: %d negative cases", len(v.Negative))
	}
	return v
}

// unlockStored puts a record into a fresh store and unlocks it, as a
// client of FORMAT.md would hand it over.
func unlockStored(t *testing.T, userID, recordHex, passphrase string) (*Unlocked, error) {
	t.Helper()
	data, err := hex.DecodeString(recordHex)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	if err := store.PutVault(bg, userID, data, 0); err != nil {
		t.Fatal(err)
	}
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.PBKDF2SHA256Params()})
	if err != nil {
		t.Fatal(err)
	}
	return v.Unlock(bg, userID, []byte(passphrase))
}

// The FORMAT.md §3.4 vectors: the positive case unlocks and opens; every
// negative case fails with the one error of its kind.
func TestVaultVectors(t *testing.T) {
	t.Parallel()
	vec := loadVaultVectors(t)
	u, err := unlockStored(t, vec.UserID, vec.RecordHex, vec.Passphrase)
	if err != nil {
		t.Fatalf("positive vector: %v", err)
	}
	sealed, _ := hex.DecodeString(vec.SealedHex)
	pt, err := u.Open(sealed, []byte(vec.Context))
	if err != nil || string(pt) != vec.Plaintext {
		t.Fatalf("positive vector opens to %q, %v", pt, err)
	}
	vs, _ := hex.DecodeString(vec.Versioned.SealedHex)
	pt, ver, err := u.OpenVersion(vs, []byte(vec.Versioned.Context), vec.Versioned.RecordVersion)
	if err != nil || string(pt) != vec.Versioned.Plaintext || ver != vec.Versioned.RecordVersion || ver == 0 {
		t.Fatalf("positive versioned vector opens to %q, version %d, %v", pt, ver, err)
	}
	for _, n := range vec.Negative {
		t.Run(n.Name, func(t *testing.T) {
			switch n.Expect {
			case "unlock_failed":
				if _, err := unlockStored(t, n.UserID, n.RecordHex, vec.Passphrase); !errors.Is(err, ErrUnlockFailed) {
					t.Fatalf("got %v, want ErrUnlockFailed", err)
				}
			case "decrypt":
				c, _ := hex.DecodeString(n.SealedHex)
				if _, err := u.Open(c, []byte(n.Context)); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("got %v, want ErrDecrypt", err)
				}
				if _, _, err := u.OpenVersion(c, []byte(n.Context), n.MinVersion); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("OpenVersion: got %v, want ErrDecrypt", err)
				}
			case "rollback":
				c, _ := hex.DecodeString(n.SealedHex)
				if pt, _, err := u.OpenVersion(c, []byte(n.Context), n.MinVersion); !errors.Is(err, ErrRollback) || pt != nil {
					t.Fatalf("got %q, %v; want ErrRollback", pt, err)
				}
				if _, err := u.Open(c, []byte(n.Context)); err != nil {
					t.Fatalf("Open (no version check) of an authentic record: %v", err)
				}
			default:
				t.Fatalf("unknown expect %q", n.Expect)
			}
		})
	}
}
