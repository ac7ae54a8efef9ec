package kdf

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/internal/vectors"
)

type argon2idVectorFile struct {
	PHCReference struct {
		Vectors []struct {
			Type     string `json:"type"`
			Version  int    `json:"version"`
			T        uint32 `json:"t"`
			MKiB     uint32 `json:"m_kib"`
			P        uint8  `json:"p"`
			Password string `json:"password"`
			Salt     string `json:"salt"`
			TagLen   int    `json:"tag_len"`
			TagHex   string `json:"tag_hex"`
			Encoded  string `json:"encoded"`
		} `json:"vectors"`
	} `json:"phc_reference_test_c"`
}

type pbkdf2VectorFile struct {
	Vectors []struct {
		Password    string `json:"password"`
		PasswordHex string `json:"password_hex"`
		Salt        string `json:"salt"`
		SaltHex     string `json:"salt_hex"`
		Iterations  uint32 `json:"iterations"`
		DKLen       int    `json:"dkLen"`
		DKHex       string `json:"dk_hex"`
		Slow        bool   `json:"slow"`
	} `json:"vectors"`
}

func loadArgon2idVectors(t testing.TB) argon2idVectorFile {
	var f argon2idVectorFile
	vectors.Load(t, "testdata/vectors/argon2id.json", "17078bb3afe070b5404fc60a668091c5f088ffb760ef7acf329cd8b11996b42d", &f)
	if len(f.PHCReference.Vectors) == 0 {
		t.Fatal("no Argon2id vectors loaded")
	}
	return f
}

func loadPBKDF2Vectors(t testing.TB) pbkdf2VectorFile {
	var f pbkdf2VectorFile
	vectors.Load(t, "testdata/vectors/pbkdf2_hmac_sha256.json", "12f572bb14b861fea6a2050431648b90e7e8a40e934b8b1ee1e45dfd25a55f20", &f)
	if len(f.Vectors) == 0 {
		t.Fatal("no PBKDF2 vectors loaded")
	}
	return f
}

// TestArgon2idVectors runs the PHC reference implementation's Argon2id
// cases (KDF-05) through the public path: the encoded PHC string must
// verify with its password, fail with another, parse to the listed
// parameters and re-encode to itself.
func TestArgon2idVectors(t *testing.T) {
	f := loadArgon2idVectors(t)
	gate, err := NewGate(GateConfig{MaxConcurrent: 1, MemoryBudgetKiB: 256 * 1024})
	if err != nil {
		t.Fatal(err)
	}
	// The reference vectors go up to 256 MiB, above DefaultLimits: raised
	// explicitly, as an application importing such hashes would.
	h, err := New(Config{Gate: gate, Limits: Limits{MaxMemoryKiB: 256 * 1024, MaxArgon2MemoryTime: 512 * 1024}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range f.PHCReference.Vectors {
		t.Run(fmt.Sprintf("m=%d,t=%d,p=%d,%s,%s", v.MKiB, v.T, v.P, v.Password, v.Salt), func(t *testing.T) {
			if v.Type != "argon2id" || v.Version != 19 {
				t.Fatalf("unexpected vector type %q version %d", v.Type, v.Version)
			}
			if v.MKiB > 64*1024 && (testing.Short() || !testenv.Long()) {
				t.Skip("256 MiB vector: only with " + testenv.LongEnv + "=1 (the smaller vectors cover the same path)")
			}
			parsed, err := parseArgon2id(v.Encoded, h.limits)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := hex.DecodeString(v.TagHex)
			if parsed.m != v.MKiB || parsed.t != v.T || parsed.p != v.P || string(parsed.salt) != v.Salt || !bytes.Equal(parsed.hash, want) {
				t.Fatalf("parsed %+v does not match the vector", parsed)
			}
			if got := parsed.String(); got != v.Encoded {
				t.Fatalf("re-encoded %q, want %q", got, v.Encoded)
			}
			rehash, err := h.Verify(ctx, v.Encoded, []byte(v.Password))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !rehash {
				t.Error("a hash at other parameters than the Hasher's must need a rehash")
			}
			if _, err := h.Verify(ctx, v.Encoded, []byte(v.Password+"x")); err != ErrMismatch {
				t.Fatalf("wrong password: got %v, want ErrMismatch", err)
			}
		})
	}
}

// TestPBKDF2Vectors runs the PBKDF2-HMAC-SHA256 vectors through the
// function every PBKDF2 path of the package uses, and through Verify where
// the vector's sizes fit an encoded hash.
func TestPBKDF2Vectors(t *testing.T) {
	f := loadPBKDF2Vectors(t)
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f.Vectors {
		t.Run(fmt.Sprintf("%d/i=%d,l=%d", i, v.Iterations, v.DKLen), func(t *testing.T) {
			if v.Slow && (testing.Short() || !testenv.Long()) {
				t.Skip("16,777,216-iteration vector: only with " + testenv.LongEnv + "=1 (the smaller vectors cover the same path)")
			}
			pw, salt := []byte(v.Password), []byte(v.Salt)
			if v.PasswordHex != "" {
				pw, _ = hex.DecodeString(v.PasswordHex)
			}
			if v.SaltHex != "" {
				salt, _ = hex.DecodeString(v.SaltHex)
			}
			want, _ := hex.DecodeString(v.DKHex)
			got, err := pbkdf2Key(PBKDF2SHA256, pw, salt, v.Iterations, v.DKLen)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("pbkdf2Key = %x, %v; want %x", got, err, want)
			}
			if len(salt) < minParsedSaltLen || v.Iterations > h.limits.MaxIterations {
				return
			}
			enc := (&pbkdf2Hash{alg: PBKDF2SHA256, iterations: v.Iterations, salt: salt, hash: want}).String()
			if _, err := h.Verify(context.Background(), enc, pw); err != nil {
				t.Fatalf("Verify(%s): %v", enc, err)
			}
		})
	}
}
