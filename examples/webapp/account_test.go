package main

import (
	"bytes"
	"net/url"
	"testing"
)

// A deletion refused for a wrong confirmation shows the whole Account
// page again, its other sections included, not an empty one.
func TestDeleteAccountWrongConfirmationKeepsThePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	r := e.post(c, "/account/delete", url.Values{"confirm": {"bob"}})
	if r.code != 400 {
		t.Fatalf("delete with a wrong confirmation: %d, want 400", r.code)
	}
	mustContain(t, "refused deletion", r, "Type your username to confirm.", `action="/account/password"`, `action="/account/rotate"`)
}

// Recovery keys waiting to be shown that this session cannot open (sealed
// under a key it does not hold, as after a rotation cut short) are kept,
// with a page that says what to do, not a 500 that deletes them.
func TestRecoveryKeysSessionCannotOpenAreKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada") // shows and deletes the sign-up keys
	db := e.db()
	id := e.userID(db, "ada")
	foreign := bytes.Repeat([]byte{0x01}, 80)
	if _, err := db.Exec("INSERT INTO keys_to_show (user_id, sealed) VALUES (?, ?)", id, foreign); err != nil {
		t.Fatal(err)
	}
	r := e.get(c, "/recovery-keys")
	expect(t, "keys the session cannot open", r, 409, "")
	mustContain(t, "keys the session cannot open", r, "Lock your notes, unlock them again")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM keys_to_show WHERE user_id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows of keys to show left, want the one kept", n)
	}
}
