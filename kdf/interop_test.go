package kdf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// Live interoperability tests: the real libraries hash now and we verify,
// and they verify or recompute what we hash. Each test skips, saying why,
// when a tool is missing, and fails instead when CI=true (see
// internal/testenv).

// interopScript is the helper the Python side runs; requests and answers
// travel as JSON on stdin and stdout, never through a shell or argv.
const interopScript = "testdata/legacy/interop.py"

// interopTimeout bounds every external command.
const interopTimeout = 2 * time.Minute

// requireTool returns the path of the executable name, or skips t (fails
// it in CI) with install advice.
func requireTool(t testing.TB, name, install string) string {
	t.Helper()
	return testenv.LookPath(t, name, install)
}

// requirePython returns Debian's /usr/bin/python3 once it has checked that
// every library the interop script imports is there, or skips t (fails it
// in CI).
func requirePython(t testing.TB) string {
	t.Helper()
	return testenv.Python(t, "python3-passlib python3-werkzeug python3-bcrypt python3-argon2",
		"passlib", "werkzeug", "bcrypt", "argon2")
}

// runInterop sends req to the interop script and decodes its answer into
// resp.
func runInterop(t testing.TB, python string, req, resp any) {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out := runCommand(t, in, python, filepath.FromSlash(interopScript))
	if err := json.Unmarshal(out, resp); err != nil {
		t.Fatalf("%s: answer %q: %v", interopScript, out, err)
	}
}

// runCommand runs name with args and stdin, and returns its stdout.
func runCommand(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// interopPassword returns a fresh random password in NFKC form with
// non-ASCII letters and a trailing space, short enough for bcrypt.
func interopPassword() string {
	return rand.Text()[:12] + " pässwörd-密码 "
}

// TestInteropLibrariesHashWeVerify has bcrypt, passlib (PBKDF2, scrypt,
// Django's formats, Argon2id), Werkzeug and argon2-cffi hash a random
// password now, and verifies every hash.
func TestInteropLibrariesHashWeVerify(t *testing.T) {
	py := requirePython(t)
	h := newLegacyTestHasher(t)
	pw := interopPassword()
	var resp struct {
		Hashes []struct {
			Format, Library, Encoded string
		}
		Skipped []string
	}
	runInterop(t, py, map[string]string{"op": "make", "password": pw}, &resp)
	for _, s := range resp.Skipped {
		t.Logf("not made by the installed libraries: %s", s)
	}
	if len(resp.Hashes) < 10 {
		t.Fatalf("interop script made %d hashes, want at least 10", len(resp.Hashes))
	}
	for _, lh := range resp.Hashes {
		t.Run(lh.Format+"/"+lh.Library, func(t *testing.T) {
			t.Parallel()
			rehash, err := h.Verify(bg, lh.Encoded, []byte(pw))
			if err != nil || !rehash {
				t.Fatalf("Verify(%q) = %v, %v; want needsRehash, nil", lh.Encoded, rehash, err)
			}
			for _, wrong := range []string{pw + "!", strings.TrimSpace(pw), strings.ToUpper(pw)} {
				if _, err := h.Verify(bg, lh.Encoded, []byte(wrong)); !errors.Is(err, ErrMismatch) {
					t.Errorf("Verify(%q, wrong) = %v, want ErrMismatch", lh.Encoded, err)
				}
			}
		})
	}
}

// TestInteropArgon2CLIHashWeVerify has the argon2 reference CLI hash a
// random password with a random salt now, and verifies it.
func TestInteropArgon2CLIHashWeVerify(t *testing.T) {
	cli := requireTool(t, "argon2", "apt-get install argon2")
	h := newLegacyTestHasher(t)
	pw := interopPassword()
	salt := rand.Text()[:16]
	enc := strings.TrimSpace(string(runCommand(t, []byte(pw), cli, salt, "-id", "-t", "2", "-k", "1024", "-p", "2", "-l", "32", "-e")))
	rehash, err := h.Verify(bg, enc, []byte(pw))
	if err != nil || !rehash {
		t.Fatalf("Verify(%q) = %v, %v; want needsRehash, nil", enc, rehash, err)
	}
	if _, err := h.Verify(bg, enc, []byte(pw+"!")); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(%q, wrong) = %v, want ErrMismatch", enc, err)
	}
}

// TestInteropLibrariesVerifyOurArgon2id has argon2-cffi and passlib verify
// Argon2id hashes that we make.
func TestInteropLibrariesVerifyOurArgon2id(t *testing.T) {
	py := requirePython(t)
	for _, p := range []Params{InteractiveParams(), {Algorithm: Argon2id, Time: 3, MemoryKiB: 12288, Threads: 2, SaltLen: 24, KeyLen: 64}} {
		h, err := New(Config{Params: p})
		if err != nil {
			t.Fatal(err)
		}
		pw := interopPassword()
		enc, err := h.Hash(bg, []byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			pw   string
			want bool
		}{{pw, true}, {pw + "!", false}, {strings.TrimSpace(pw), false}} {
			var resp map[string]bool
			runInterop(t, py, map[string]string{"op": "verify-argon2", "password": c.pw, "encoded": enc}, &resp)
			for _, lib := range []string{"argon2-cffi", "passlib"} {
				got, ok := resp[lib]
				if !ok || got != c.want {
					t.Errorf("%s verify(%q, password ok=%v) = %v (answered: %v)", lib, enc, c.want, got, ok)
				}
			}
		}
	}
}

// TestInteropArgon2CLIRecomputesOurs has the argon2 reference CLI hash the
// same (NFKC) password with our salt and parameters, and compares its
// encoded output with ours character for character.
func TestInteropArgon2CLIRecomputesOurs(t *testing.T) {
	cli := requireTool(t, "argon2", "apt-get install argon2")
	for _, p := range []Params{
		InteractiveParams(),
		{Algorithm: Argon2id, Time: 3, MemoryKiB: 12288, Threads: 2, SaltLen: 16, KeyLen: 32},
	} {
		h, err := New(Config{Params: p})
		if err != nil {
			t.Fatal(err)
		}
		pw := interopPassword()
		input, _, err := h.prepare([]byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		// The CLI takes the salt as an argument, so it must be text.
		salt := []byte(rand.Text()[:p.SaltLen])
		ours, err := h.encodeNew(input, salt)
		if err != nil {
			t.Fatal(err)
		}
		theirs := strings.TrimSpace(string(runCommand(t, input, cli, string(salt), "-id",
			"-t", strconv.Itoa(int(p.Time)), "-k", strconv.Itoa(int(p.MemoryKiB)),
			"-p", strconv.Itoa(int(p.Threads)), "-l", strconv.Itoa(p.KeyLen), "-e")))
		if ours != theirs {
			t.Errorf("params %+v:\n ours   %s\n argon2 %s", p, ours, theirs)
		}
		if _, err := h.Verify(bg, theirs, []byte(pw)); err != nil {
			t.Errorf("Verify(CLI's %q) = %v", theirs, err)
		}
	}
}

// TestInteropHashlibRecomputesOurPBKDF2 has Python's hashlib.pbkdf2_hmac
// recompute our "$pbkdf2-sha256$i=…" and "$pbkdf2-sha512$i=…" PHC hashes
// from their salt and parameters.
func TestInteropHashlibRecomputesOurPBKDF2(t *testing.T) {
	py := requirePython(t)
	for _, p := range []Params{PBKDF2SHA256Params(), PBKDF2SHA512Params()} {
		h, err := New(Config{Params: p})
		if err != nil {
			t.Fatal(err)
		}
		pw := interopPassword()
		enc, err := h.Hash(bg, []byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		stored, err := parsePBKDF2PHC(enc, h.Limits())
		if err != nil {
			t.Fatal(err)
		}
		var resp struct{ Hex string }
		runInterop(t, py, map[string]any{
			"op": "pbkdf2", "digest": strings.TrimPrefix(string(p.Algorithm), "pbkdf2-"),
			"password": pw, "salt_b64": base64.StdEncoding.EncodeToString(stored.salt),
			"iterations": stored.iterations, "dklen": len(stored.hash),
		}, &resp)
		if resp.Hex != hex.EncodeToString(stored.hash) {
			t.Errorf("%s: hashlib computed %s, our hash is %x", enc, resp.Hex, stored.hash)
		}
	}
}
