package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/keyhold/keyhold/vault"
)

// Bounds of a credential's fields, in bytes, and of a vault.
const (
	maxSiteLen      = 256
	maxUsernameLen  = 256
	maxPasswordLen  = 1024
	maxNotesLen     = 8192
	maxMFALen       = 256
	maxCredentials  = 1000
	credentialIDLen = 32 // hex digits: 128 random bits
)

// A credential is one third-party login the user keeps: the whole of it
// is sealed as one record, so the database holds no site, name or note in
// the clear.
type credential struct {
	Site     string `json:"site"`
	Username string `json:"username"`
	Password string `json:"password"`
	Notes    string `json:"notes"`
	// MFASecret is a TOTP secret for the site, if the user keeps one (the
	// imported files carry one).
	MFASecret string `json:"mfa_secret,omitempty"`
}

// check applies the bounds; a site is required.
func (c credential) check() error {
	if c.Site == "" {
		return &apiError{http.StatusBadRequest, "missing_site", "A credential needs a site."}
	}
	return errors.Join(
		checkLen("site", c.Site, maxSiteLen),
		checkLen("username", c.Username, maxUsernameLen),
		checkLen("password", c.Password, maxPasswordLen),
		checkLen("notes", c.Notes, maxNotesLen),
		checkLen("mfa_secret", c.MFASecret, maxMFALen),
	)
}

// credentialContext is the associated data of credential id's record:
// together with the user ID, which the vault binds itself, it makes the
// record open only as this user's credential id. A record copied to
// another row, or to another user's row, fails to open.
func credentialContext(id string) []byte {
	return []byte("credvault/credential/v1/" + id)
}

// credentialView is a credential as the API returns it.
type credentialView struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	credential
}

// listItem is a credential in the list: no password, no notes, no MFA
// secret. Unreadable marks a record that does not open.
type listItem struct {
	ID         string    `json:"id"`
	Site       string    `json:"site,omitempty"`
	Username   string    `json:"username,omitempty"`
	Updated    time.Time `json:"updated"`
	Unreadable bool      `json:"unreadable,omitempty"`
}

func (a *app) seal(u *vault.Unlocked, id string, c credential) ([]byte, error) {
	pt, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return u.Seal(pt, credentialContext(id))
}

func (a *app) open(u *vault.Unlocked, id string, sealed []byte) (credential, error) {
	var c credential
	pt, err := u.Open(sealed, credentialContext(id))
	if err != nil {
		return c, errUnreadable // vault.ErrDecrypt: moved, altered or another user's
	}
	defer clear(pt)
	if err := json.Unmarshal(pt, &c); err != nil {
		return c, errUnreadable
	}
	return c, nil
}

// insertCredential seals c under a new ID and stores it, within the
// vault's bound.
func (a *app) insertCredential(ctx context.Context, u *vault.Unlocked, c credential) (string, error) {
	b := make([]byte, credentialIDLen/2)
	rand.Read(b)
	id := hex.EncodeToString(b)
	sealed, err := a.seal(u, id, c)
	if err != nil {
		return "", err
	}
	now := a.now().Unix()
	// The count and the insert are one statement, so concurrent adds
	// cannot pass the bound together.
	res, err := a.db.ExecContext(ctx, `INSERT INTO credentials (id, user_id, created, updated, sealed)
		SELECT ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM credentials WHERE user_id = ?) < ?`,
		id, u.UserID(), now, now, sealed, u.UserID(), maxCredentials)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", errTooManyCreds
	}
	return id, nil
}

// unlockedVault returns the request's vault (RequireUnlocked ran).
func (a *app) unlockedVault(r *http.Request) (*vault.Unlocked, error) {
	return a.m.Unlocked(r.Context())
}

func (a *app) listCredentials(w http.ResponseWriter, r *http.Request) error {
	u, err := a.unlockedVault(r)
	if err != nil {
		return err
	}
	rows, err := a.db.QueryContext(r.Context(), "SELECT id, updated, sealed FROM credentials WHERE user_id = ? ORDER BY created, rowid", u.UserID())
	if err != nil {
		return err
	}
	defer rows.Close()
	items := []listItem{}
	for rows.Next() {
		var it listItem
		var updated int64
		var sealed []byte
		if err := rows.Scan(&it.ID, &updated, &sealed); err != nil {
			return err
		}
		it.Updated = time.Unix(updated, 0).UTC()
		if c, err := a.open(u, it.ID, sealed); err != nil {
			it.Unreadable = true
		} else {
			it.Site, it.Username = c.Site, c.Username
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": items})
	return nil
}

func (a *app) addCredential(w http.ResponseWriter, r *http.Request) error {
	u, err := a.unlockedVault(r)
	if err != nil {
		return err
	}
	var c credential
	if err := decode(r, &c); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	id, err := a.insertCredential(r.Context(), u, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
	return nil
}

// credentialID reads the path's ID: 32 lowercase hex digits, or 404.
func credentialID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if len(id) != credentialIDLen {
		return "", errNotFound
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", errNotFound
		}
	}
	return id, nil
}

func (a *app) getCredential(w http.ResponseWriter, r *http.Request) error {
	u, err := a.unlockedVault(r)
	if err != nil {
		return err
	}
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	var created, updated int64
	var sealed []byte
	// Only the user's own rows: another user's ID is "not found".
	err = a.db.QueryRowContext(r.Context(), "SELECT created, updated, sealed FROM credentials WHERE id = ? AND user_id = ?", id, u.UserID()).Scan(&created, &updated, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	c, err := a.open(u, id, sealed)
	if err != nil {
		a.log.WarnContext(r.Context(), "credvault.credential_unreadable", "user", u.UserID(), "credential", id)
		return err
	}
	writeJSON(w, http.StatusOK, credentialView{ID: id, Created: time.Unix(created, 0).UTC(), Updated: time.Unix(updated, 0).UTC(), credential: c})
	return nil
}

func (a *app) putCredential(w http.ResponseWriter, r *http.Request) error {
	u, err := a.unlockedVault(r)
	if err != nil {
		return err
	}
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	var c credential
	if err := decode(r, &c); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	sealed, err := a.seal(u, id, c)
	if err != nil {
		return err
	}
	res, err := a.db.ExecContext(r.Context(), "UPDATE credentials SET sealed = ?, updated = ? WHERE id = ? AND user_id = ?", sealed, a.now().Unix(), id, u.UserID())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
	return nil
}

func (a *app) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	u, err := a.unlockedVault(r)
	if err != nil {
		return err
	}
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	res, err := a.db.ExecContext(r.Context(), "DELETE FROM credentials WHERE id = ? AND user_id = ?", id, u.UserID())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
