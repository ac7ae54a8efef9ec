package killtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a passkey in software: an ES256 discoverable credential on a
// user-verifying authenticator with "none" attestation and the PRF
// extension (its output is HMAC-SHA256 of a secret of its own over the
// salt), answering as a browser at the app's origin would. RP ID
// localhost.
type softKey struct {
	id     []byte
	key    *ecdsa.PrivateKey
	prf    []byte
	handle []byte
	count  uint32
}

var b64u = base64.RawURLEncoding

func newSoftKey() *softKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	k := &softKey{id: make([]byte, 16), key: key, prf: make([]byte, 32)}
	rand.Read(k.id)
	rand.Read(k.prf)
	return k
}

func (k *softKey) prfOf(salt []byte) []byte {
	m := hmac.New(sha256.New, k.prf)
	m.Write(salt)
	return m.Sum(nil)
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// authData is the RP ID hash, the flags and the next counter.
func (k *softKey) authData(flags byte) []byte {
	h := sha256.Sum256([]byte("localhost"))
	k.count++
	return binary.BigEndian.AppendUint32(append(h[:], flags), k.count)
}

// create answers registration options (PublicKeyCredentialCreationOptions
// JSON), with the PRF output for the salt the options evaluate.
func (k *softKey) create(options, origin string) (string, error) {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
			Extensions struct {
				PRF struct {
					Eval struct {
						First string `json:"first"`
					} `json:"eval"`
				} `json:"prf"`
			} `json:"extensions"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil || o.PublicKey.Challenge == "" {
		return "", fmt.Errorf("registration options %q: %v", options, err)
	}
	var err error
	if k.handle, err = b64u.DecodeString(o.PublicKey.User.ID); err != nil {
		return "", err
	}
	pt, err := k.key.PublicKey.Bytes()
	if err != nil {
		return "", err
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:]})
	if err != nil {
		return "", err
	}
	ad := k.authData(0x01 | 0x04 | 0x40) // UP, UV, AT
	ad = append(ad, make([]byte, 16)...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.id)))
	ad = append(append(ad, k.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		return "", err
	}
	ext := map[string]any{}
	if s := o.PublicKey.Extensions.PRF.Eval.First; s != "" {
		salt, err := b64u.DecodeString(s)
		if err != nil {
			return "", err
		}
		ext["prf"] = map[string]any{"enabled": true, "results": map[string]any{"first": b64u.EncodeToString(k.prfOf(salt))}}
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64u.EncodeToString(clientData("webauthn.create", o.PublicKey.Challenge, origin)),
			"attestationObject": b64u.EncodeToString(att), "transports": []string{"internal"},
		},
		"clientExtensionResults": ext,
	})
	return string(out), nil
}

// get answers request options (a sign-in, or an unlock that asks this
// credential for its PRF output in prf.evalByCredential).
func (k *softKey) get(options, origin string) (string, error) {
	var o struct {
		PublicKey struct {
			Challenge  string `json:"challenge"`
			Extensions struct {
				PRF struct {
					EvalByCredential map[string]struct {
						First string `json:"first"`
					} `json:"evalByCredential"`
				} `json:"prf"`
			} `json:"extensions"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(options), &o); err != nil || o.PublicKey.Challenge == "" {
		return "", fmt.Errorf("request options %q: %v", options, err)
	}
	cd := clientData("webauthn.get", o.PublicKey.Challenge, origin)
	ad := k.authData(0x05) // UP, UV
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		return "", err
	}
	ext := map[string]any{}
	if e, ok := o.PublicKey.Extensions.PRF.EvalByCredential[b64u.EncodeToString(k.id)]; ok {
		salt, err := b64u.DecodeString(e.First)
		if err != nil {
			return "", err
		}
		ext["prf"] = map[string]any{"results": map[string]any{"first": b64u.EncodeToString(k.prfOf(salt))}}
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
			"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.handle),
		},
		"clientExtensionResults": ext,
	})
	return string(out), nil
}
