package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// docBlock returns the shell lines of the package documentation (main.go)
// from the line after the one containing from up to the next prose line,
// with the documented address replaced by url.
func docBlock(t *testing.T, from, url string) string {
	t.Helper()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case strings.Contains(l, from):
			in = true
		case in && strings.HasPrefix(l, "//\t"):
			lines = append(lines, strings.TrimPrefix(l, "//\t"))
		case in && len(lines) > 0 && l != "//":
			in = false
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no shell lines after %q in main.go", from)
	}
	return strings.ReplaceAll(strings.Join(lines, "\n"), "http://127.0.0.1:8091", url)
}

// runShell runs script with bash in dir, stdin given, and returns its
// output lines.
func runShell(t *testing.T, dir, script, stdin string) []string {
	t.Helper()
	cmd := exec.Command("bash", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s\nscript:\n%s", err, stderr.Bytes(), script)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// The curl session of the package documentation works as written (against
// a test server instead of :8091), and so does its import, with jq.
func TestDocCurlExamples(t *testing.T) {
	t.Parallel()
	testenv.LookPath(t, "bash", "apt-get install bash")
	testenv.LookPath(t, "curl", "apt-get install curl")
	testenv.LookPath(t, "jq", "apt-get install jq")
	ta := newTestApp(t)
	dir := t.TempDir()
	session := docBlock(t, "With curl", ta.url)
	out := runShell(t, dir, session, "")
	want := []string{`"vault":"none"`, `"vault":"unlocked"`, `"id":`, `"site":"example.com"`, `"lock_after_seconds":1800`,
		`"vault":"locked"`, `"code":"vault_locked"`, `"vault":"unlocked"`, `"logged_in":false`}
	if len(out) != len(want) {
		t.Fatalf("%d answers, want %d:\n%s", len(out), len(want), strings.Join(out, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(out[i], w) {
			t.Errorf("answer %d: %s, want %s", i+1, out[i], w)
		}
	}

	file, err := os.ReadFile("../../vault/testdata/fernet_credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	setup := strings.Join(strings.SplitN(session, "\n", 3)[:2], "\n") // umask; J, C and B
	out = runShell(t, dir, setup+"\n"+docBlock(t, "To import a credentials file", ta.url), fixturePassphrase+"\n")
	if len(out) != 2 || !strings.Contains(out[0], `"username":"grace"`) || !strings.Contains(out[1], `"vault":"unlocked"`) {
		t.Fatalf("import answers:\n%s", strings.Join(out, "\n"))
	}
}
