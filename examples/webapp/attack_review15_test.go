package main

// Attack review of issue 15's storage switch, flags, devices page and
// error pages (review 15). Each test is a finding's regression test or a
// defense that held.

import (
	"net/url"
	"strings"
	"testing"
)

// A note's ID comes from the address (/notes/{id}): a zero byte or bytes
// that are not UTF-8 there reached PostgreSQL, which refuses such text,
// and the app answered 500 with a "webapp.error" log line. Now the app
// refuses them before the query, with a 400 page, on both storages.
func TestR15NoteIDNotTextOnPostgres(t *testing.T) {
	t.Parallel()
	dsn, _, _ := testSchema(t)
	sqlite, pg := newEnv(t, true), newEnvWith(t, true, config{PostgresDSN: dsn})
	for name, e := range map[string]*testEnv{"sqlite": sqlite, "postgres": pg} {
		c := e.client()
		e.signup(c, "ada")
		for _, id := range []string{"%00", "%FF", "a%00b", "%ED%A0%80", "%C0%AF"} {
			for _, path := range []string{"/notes/" + id, "/notes/" + id + "/delete"} {
				r := e.post(c, path, url.Values{"title": {"t"}, "body": {"b"}, "version": {"1"}})
				if r.code != 400 || !strings.Contains(r.body, "characters this app does not accept") {
					t.Errorf("%s: POST %s: %d %q, want the 400 page\n%.300s", name, path, r.code, r.location, r.body)
				}
			}
		}
		if strings.Contains(e.logs.String(), "webapp.error") {
			t.Errorf("%s: a user's input was logged as a server error:\n%s", name, e.logs.String())
		}
		// A note's real ID still works.
		expect(t, name+": add note", e.post(c, "/notes", url.Values{"title": {"kept"}, "body": {"b"}}), 303, "/notes")
	}
}

// checkArgs refuses only strings a text column cannot hold; byte slices
// (the sealed notes) and other types pass.
func TestR15CheckArgs(t *testing.T) {
	t.Parallel()
	for _, ok := range [][]any{nil, {"", "abc", "é€😀", []byte{0, 0xff}, int64(0), nil}} {
		if err := checkArgs(ok); err != nil {
			t.Errorf("checkArgs(%q) = %v", ok, err)
		}
	}
	for _, bad := range []any{"\x00", "a\x00", "\xff", "\xed\xa0\x80", "ok\xc3"} {
		if err := checkArgs([]any{"fine", bad}); err != errNotText {
			t.Errorf("checkArgs(%q) = %v, want errNotText", bad, err)
		}
	}
}
