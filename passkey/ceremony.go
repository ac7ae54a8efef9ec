package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keyhold/keyhold/storage"
)

// The ceremonies, as their challenges record them.
const (
	ceremonyRegister = 'R'
	ceremonyLogin    = 'L'
	ceremonyUnlock   = 'U'
	ceremonyStepUp   = 'S'
)

// labelChallengeID prefixes what a challenge ID hashes (FORMAT.md §7.2).
const labelChallengeID = "keyhold/v1/passkey/challenge-id\x00"

// loginTokenLen is the length of the random token of a login ceremony's
// cookie.
const loginTokenLen = 32

// ceremonyState is what the server keeps of a pending ceremony, in its
// challenge: the ceremony, who asked (the user and the session's
// reference; for a login, nobody yet), the request's origin, and the
// WebAuthn session data (the random challenge, the RP ID, the user
// verification and extensions asked for). Nothing in it is a secret of
// the user's; the PRF salt is not one either (the PRF output is).
type ceremonyState struct {
	Ceremony byte   `json:"c"`
	UserID   string `json:"u,omitempty"`
	Ref      string `json:"r,omitempty"`
	Origin   string `json:"o"`
	Handle   []byte `json:"h,omitempty"` // registration: the user handle the credential is made for
	Salt     []byte `json:"s,omitempty"` // registration: the new credential's PRF salt
	Session  []byte `json:"d"`           // webauthn.SessionData, msgpack, without AllowedCredentialIDs
}

// sessionChallengeID is the ID of a ceremony bound to a session: the
// hash of the ceremony, the user and the session's reference, which a
// request of another session (or of another user) cannot reproduce.
func sessionChallengeID(ceremony byte, userID, ref string) []byte {
	h := sha256.New()
	h.Write([]byte(labelChallengeID))
	h.Write([]byte{ceremony})
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(userID))))
	h.Write([]byte(userID))
	h.Write([]byte(ref))
	return h.Sum(nil)
}

// loginChallengeID is the ID of a login ceremony: the hash of the random
// token of the browser's ceremony cookie.
func loginChallengeID(token []byte) []byte {
	h := sha256.New()
	h.Write([]byte(labelChallengeID))
	h.Write([]byte{ceremonyLogin})
	h.Write(token)
	return h.Sum(nil)
}

// putCeremony stores a ceremony's state under id for CeremonyTimeout.
func (m *Manager) putCeremony(ctx context.Context, id []byte, st ceremonyState, sd *webauthn.SessionData) error {
	sd.Expires = time.Time{} // expiry is the challenge store's, on this package's clock
	sd.AllowedCredentialIDs = nil
	var err error
	if st.Session, err = sd.MarshalMsg(nil); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if len(data) > storage.MaxChallengeDataLen {
		return fmt.Errorf("%w: ceremony state of %d bytes", ErrInvalidInput, len(data))
	}
	return m.cfg.Challenges.PutChallenge(ctx, storage.Challenge{ID: id, Expires: m.cfg.Now().Add(m.cfg.CeremonyTimeout), Data: data})
}

// takeCeremony takes (uses up) the ceremony stored under id: ErrChallenge
// if there is none, it has expired by this package's clock, or it is not
// of the expected ceremony, user and session.
func (m *Manager) takeCeremony(ctx context.Context, id []byte, want ceremonyState) (ceremonyState, webauthn.SessionData, error) {
	var st ceremonyState
	var sd webauthn.SessionData
	c, err := m.cfg.Challenges.TakeChallenge(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return st, sd, ErrChallenge
	}
	if err != nil {
		return st, sd, err
	}
	if !m.cfg.Now().Before(c.Expires) {
		return st, sd, ErrChallenge
	}
	if json.Unmarshal(c.Data, &st) != nil || st.Ceremony != want.Ceremony || st.UserID != want.UserID || st.Ref != want.Ref {
		return st, sd, ErrChallenge
	}
	if rest, err := sd.UnmarshalMsg(st.Session); err != nil || len(rest) != 0 {
		return st, sd, ErrChallenge
	}
	return st, sd, nil
}

// loginCookieName is the name of the login ceremony's cookie, with the
// "__Host-" prefix unless the sessions run over plain HTTP.
func (m *Manager) loginCookieName() string {
	if m.insecure {
		return "keyhold-passkey"
	}
	return "__Host-keyhold-passkey"
}

// setLoginCookie gives the browser a new login ceremony token.
func (m *Manager) setLoginCookie(w http.ResponseWriter) []byte {
	token := make([]byte, loginTokenLen)
	rand.Read(token)
	http.SetCookie(w, &http.Cookie{
		Name: m.loginCookieName(), Value: base64.RawURLEncoding.EncodeToString(token), Path: "/",
		MaxAge: int(m.cfg.CeremonyTimeout.Seconds()), Secure: !m.insecure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return token
}

// loginToken reads the login ceremony's token from the request and tells
// the browser to drop the cookie (a token is good for one Finish).
func (m *Manager) loginToken(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(m.loginCookieName())
	if err != nil {
		return nil, false
	}
	http.SetCookie(w, &http.Cookie{Name: m.loginCookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: !m.insecure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	if len(c.Value) != base64.RawURLEncoding.EncodedLen(loginTokenLen) {
		return nil, false
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(token) != loginTokenLen {
		return nil, false
	}
	return token, true
}

// sameBytes compares in constant time.
func sameBytes(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
