package vault

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/keyhold/keyhold/internal/vectors"
)

type wycheproofFile struct {
	TestGroups []struct {
		IVSize  int `json:"ivSize"`
		KeySize int `json:"keySize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			Key     string   `json:"key"`
			IV      string   `json:"iv"`
			AAD     string   `json:"aad"`
			Msg     string   `json:"msg"`
			CT      string   `json:"ct"`
			Tag     string   `json:"tag"`
			Result  string   `json:"result"`
			Flags   []string `json:"flags"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The AEAD layer every wrap and record uses (newGCM: AES-256-GCM, 96-bit
// nonces, 128-bit tags) against Wycheproof: valid cases seal and open to
// the listed bytes, invalid ones never open. Nonce sizes other than 96
// bits are outside the layer's domain and are counted, not run.
func TestWycheproofAESGCM(t *testing.T) {
	var f wycheproofFile
	vectors.Load(t, "testdata/vectors/wycheproof_aes_gcm_256_test.json", "2fbaf7368da67a352f89066601cf42bd09f819eb1d384f1165d116a92636c4aa", &f)
	ran, valid, invalid, otherIV := 0, 0, 0, 0
	for _, g := range f.TestGroups {
		if g.KeySize != 256 || g.TagSize != 128 {
			t.Fatalf("unexpected group: key %d tag %d", g.KeySize, g.TagSize)
		}
		for _, tc := range g.Tests {
			if g.IVSize != 96 {
				otherIV++
				continue
			}
			t.Run(fmt.Sprintf("tc%d", tc.TcID), func(t *testing.T) {
				aead, err := newGCM(unhex(t, tc.Key))
				if err != nil {
					t.Fatal(err)
				}
				iv, aad, msg := unhex(t, tc.IV), unhex(t, tc.AAD), unhex(t, tc.Msg)
				sealed := append(unhex(t, tc.CT), unhex(t, tc.Tag)...)
				pt, err := aead.Open(nil, iv, sealed, aad)
				switch tc.Result {
				case "valid":
					valid++
					if err != nil || hex.EncodeToString(pt) != tc.Msg {
						t.Fatalf("%s: Open = %x, %v", tc.Comment, pt, err)
					}
					if got := aead.Seal(nil, iv, msg, aad); hex.EncodeToString(got) != hex.EncodeToString(sealed) {
						t.Fatalf("%s: Seal = %x", tc.Comment, got)
					}
				case "invalid":
					invalid++
					if err == nil {
						t.Fatalf("%s (%v): an invalid ciphertext opened", tc.Comment, tc.Flags)
					}
				default:
					t.Fatalf("unknown result %q", tc.Result)
				}
			})
			ran++
		}
	}
	if ran < 60 || valid == 0 || invalid == 0 {
		t.Fatalf("ran %d vectors (%d valid, %d invalid): too few", ran, valid, invalid)
	}
	t.Logf("%d vectors with 96-bit nonces (%d valid, %d invalid); %d with other nonce sizes not applicable", ran, valid, invalid, otherIV)
}
