package totp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/ratelimit"
)

// Live interoperability with OATH Toolkit's oathtool (Debian package
// oathtool), an independent TOTP implementation: the codes it computes
// from our secrets and URIs are the ones we accept. Skipped, saying why,
// without oathtool; failed instead when CI=true (internal/testenv).

// requireOathtool returns oathtool's path, or skips t (fails it in CI).
func requireOathtool(t testing.TB) string {
	t.Helper()
	return testenv.LookPath(t, "oathtool", "apt-get install oathtool")
}

// oathtool returns oathtool's TOTP code for the base32 secret at time at.
// The secret goes on stdin, not argv.
func oathtool(t testing.TB, path string, alg Algorithm, digits int, period time.Duration, at time.Time, secretB32 string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"--totp=" + alg.String(), "--digits=" + strconv.Itoa(digits),
		"--time-step-size=" + strconv.Itoa(int(period/time.Second)) + "s",
		"--now=@" + strconv.FormatInt(at.Unix(), 10), "--base32", "-"}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(secretB32 + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("oathtool %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	code := strings.TrimSpace(stdout.String())
	if len(code) != digits {
		t.Fatalf("oathtool %s printed %q", strings.Join(args, " "), code)
	}
	return code
}

// TestOathtoolCodesAccepted: for every algorithm and digit count (and a
// 60 s period), oathtool's code from Enrollment.Secret confirms the
// enrollment at the fake clock's time, and its code for the next step
// passes Verify once.
func TestOathtoolCodesAccepted(t *testing.T) {
	tool := requireOathtool(t)
	type params struct {
		alg    Algorithm
		digits int
		period time.Duration
	}
	var cases []params
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		for _, digits := range []int{6, 8} {
			cases = append(cases, params{alg, digits, DefaultPeriod})
		}
	}
	cases = append(cases, params{SHA256, 8, time.Minute}, params{SHA1, 6, 15 * time.Second})
	for _, p := range cases {
		t.Run(fmt.Sprintf("%v/%d/%v", p.alg, p.digits, p.period), func(t *testing.T) {
			e := newProofEnv(t, func(c *Config) { c.Algorithm, c.Digits, c.Period = p.alg, p.digits, p.period })
			en, err := e.auth.Begin(e.ctx, proofUser, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			code := oathtool(t, tool, p.alg, p.digits, p.period, e.clock.Now(), en.Secret())
			if _, err := e.auth.Confirm(e.ctx, proofUser, en.Token, code, ratelimit.Source{}, ConfirmOptions{}); err != nil {
				t.Fatalf("Confirm with oathtool's code %s: %v", code, err)
			}
			e.clock.Advance(p.period)
			next := oathtool(t, tool, p.alg, p.digits, p.period, e.clock.Now(), en.Secret())
			if err := e.auth.Verify(e.ctx, proofUser, next, ratelimit.Source{}); err != nil {
				t.Fatalf("Verify with oathtool's next code %s: %v", next, err)
			}
			if err := e.auth.Verify(e.ctx, proofUser, next, ratelimit.Source{}); !errors.Is(err, ErrReplayed) {
				t.Fatalf("oathtool's code twice: %v; want ErrReplayed", err)
			}
			// A code oathtool computes for another algorithm is refused
			// (unless the two happen to agree, one chance in 10^digits).
			e.clock.Advance(p.period)
			other := SHA1
			if p.alg == SHA1 {
				other = SHA512
			}
			right := oathtool(t, tool, p.alg, p.digits, p.period, e.clock.Now(), en.Secret())
			if wrong := oathtool(t, tool, other, p.digits, p.period, e.clock.Now(), en.Secret()); wrong != right {
				if err := e.auth.Verify(e.ctx, proofUser, wrong, ratelimit.Source{}); !errors.Is(err, ErrWrongCode) {
					t.Fatalf("oathtool's %v code for a %v authenticator: %v; want ErrWrongCode", other, p.alg, err)
				}
			}
		})
	}
}

// TestOathtoolURI: the otpauth URI parses with net/url and carries the
// issuer, the account label, the algorithm, digits and period; its secret,
// given to oathtool with those parameters, gives codeAt's codes.
func TestOathtoolURI(t *testing.T) {
	tool := requireOathtool(t)
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		for _, digits := range []int{6, 8} {
			t.Run(fmt.Sprintf("%v/%d", alg, digits), func(t *testing.T) {
				const issuer, account = "Example Corp", "alice+1@example.com"
				e := newProofEnv(t, func(c *Config) { c.Algorithm, c.Digits, c.Issuer = alg, digits, issuer })
				en, err := e.auth.Begin(e.ctx, proofUser, account)
				if err != nil {
					t.Fatal(err)
				}
				u, err := url.Parse(en.URI())
				if err != nil {
					t.Fatalf("URI %q does not parse: %v", en.URI(), err)
				}
				q := u.Query()
				if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/"+issuer+":"+account {
					t.Fatalf("URI %s://%s%s, want otpauth://totp/%s:%s", u.Scheme, u.Host, u.Path, issuer, account)
				}
				for k, want := range map[string]string{"issuer": issuer, "algorithm": alg.String(),
					"digits": strconv.Itoa(digits), "period": "30"} {
					if got := q.Get(k); got != want {
						t.Fatalf("URI %s = %q, want %q", k, got, want)
					}
				}
				secretB32 := q.Get("secret")
				if secretB32 == "" || secretB32 != en.Secret() {
					t.Fatalf("URI secret %q differs from Secret()", secretB32)
				}
				secret := decodeSecret(t, secretB32)
				uriAlg := map[string]Algorithm{"SHA1": SHA1, "SHA256": SHA256, "SHA512": SHA512}[q.Get("algorithm")]
				period, _ := strconv.Atoi(q.Get("period"))
				uriDigits, _ := strconv.Atoi(q.Get("digits"))
				for _, at := range []time.Time{e.clock.Now(), time.Unix(59, 0), time.Unix(20000000000, 0), e.clock.Now().Add(-time.Hour)} {
					step := uint64(at.Unix()) / uint64(period)
					want := string(codeAt(b32.EncodeToString(secret), byte(alg), byte(digits), step))
					if got := oathtool(t, tool, uriAlg, uriDigits, time.Duration(period)*time.Second, at, secretB32); got != want {
						t.Fatalf("at %d: oathtool %s, codeAt %s", at.Unix(), got, want)
					}
				}
			})
		}
	}
}
