package passkey

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// PRFOptions returns the options (the JSON of a CredentialRequestOptions,
// like BeginUnlock's) with which a zero-knowledge client (package zk's
// browser module) asks one of the session user's passkeys for its PRF
// output, to unlock or set up a vault that only the browser opens: the
// user's passkeys with the PRF extension in allowCredentials, each with
// its own salt in prf.evalByCredential, and user verification required.
//
// Nothing is stored and no answer is expected: the browser module of
// package zk asks the authenticator with an input of its own derived from
// each salt (FORMAT.md §8.3), not with the salt, keeps the PRF output as
// the secret of the passkey's vault slot (FORMAT.md §3.2, kind 3) and
// sends the server nothing of the ceremony.
// So the assertion proves nothing to the server, which gets nothing from
// it; what protects the vault is that only the authenticator can compute
// the output. The challenge is random and never checked. No Config.Vault
// is needed. The session must be the user's and complete
// (session.ErrNotLoggedIn otherwise); ErrPRFUnavailable if no passkey of
// the user has the PRF extension.
func (m *Manager) PRFOptions(r *http.Request) ([]byte, error) {
	if m == nil {
		return nil, errNilManager
	}
	info, rec, ids, err := m.prfCredentials(r.Context())
	if err != nil {
		return nil, err
	}
	allow, creds := assertionCredentials(rec, ids)
	options, _, err := m.wa.BeginLogin(&waUser{handle: rec.handle, name: info.UserID, creds: creds},
		webauthn.WithAllowedCredentials(allow),
		webauthn.WithUserVerification(protocol.VerificationRequired),
		webauthn.WithAssertionExtensions(webauthn.WithExtensionPRFByCredential(prfSalts(rec, ids), nil)))
	if err != nil {
		return nil, fmt.Errorf("passkey: assertion options: %w", err)
	}
	return json.Marshal(options)
}

// prfSalts maps the credentials of rec whose IDs are ids (base64url) to
// their PRF salts, for prf.evalByCredential.
func prfSalts(rec *record, ids [][]byte) map[string]protocol.PRFValues {
	salts := make(map[string]protocol.PRFValues, len(ids))
	for _, id := range ids {
		salts[encodeID(id)] = protocol.PRFValues{First: rec.creds[rec.find(id)].prfSalt}
	}
	return salts
}
