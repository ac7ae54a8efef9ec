package main

import (
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
