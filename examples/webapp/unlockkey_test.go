package main

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var shownKey = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)

// A logged-in user who lost the password unlocks the notes with a vault
// recovery key: a wrong or oversized key is refused like a wrong password
// (401, the form open again, counted), the right one unlocks and is spent,
// its replacement shown once and working in its turn.
func TestUnlockWithRecoveryKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	keys := e.signup(c, "ada")
	if len(keys) == 0 {
		t.Fatal("no recovery keys at sign-up")
	}
	lockNow := func() { expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock") }
	lockNow()
	page := e.get(c, "/unlock")
	mustContain(t, "unlock page", page, `action="/unlock/recovery-key"`)

	for what, key := range map[string]string{"wrong key": strings.Repeat("A", 20), "oversized key": strings.Repeat("A", 10000), "empty": ""} {
		r := e.post(c, "/unlock/recovery-key", url.Values{"recovery_key": {key}})
		expect(t, what, r, 401, "")
		mustContain(t, what, r, "That recovery key did not work.", "<details open>")
	}
	expect(t, "still locked", e.get(c, "/notes"), 303, "/unlock")

	r := e.post(c, "/unlock/recovery-key", url.Values{"recovery_key": {keys[0]}})
	expect(t, "right key", r, 200, "")
	m := shownKey.FindStringSubmatch(r.body)
	if m == nil || m[1] == keys[0] {
		t.Fatalf("no replacement key shown:\n%s", r.body)
	}
	expect(t, "notes, unlocked", e.get(c, "/notes"), 200, "")
	if !strings.Contains(e.logs.String(), "webapp.unlock.recovery_key_used") {
		t.Fatal("the use was not logged")
	}

	lockNow()
	expect(t, "the spent key", e.post(c, "/unlock/recovery-key", url.Values{"recovery_key": {keys[0]}}), 401, "")
	expect(t, "the replacement", e.post(c, "/unlock/recovery-key", url.Values{"recovery_key": {m[1]}}), 200, "")
	expect(t, "notes, unlocked again", e.get(c, "/notes"), 200, "")
	if strings.Contains(e.logs.String(), m[1]) || strings.Contains(e.logs.String(), keys[0]) {
		t.Fatal("a recovery key reached the log")
	}
}
