package keyhold_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/totp"
	"github.com/keyhold/keyhold/vault"
)

// securitySection returns SECURITY.md's section "## title", up to the next
// "## " heading.
func securitySection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("SECURITY.md has no section %q", title)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

// securityRow returns the row of a table in section whose first cell
// starts with first.
func securityRow(t *testing.T, section, first string) string {
	t.Helper()
	for line := range strings.Lines(section) {
		if strings.HasPrefix(line, "| "+first) {
			return line
		}
	}
	t.Fatalf("SECURITY.md: no table row starting %q", first)
	return ""
}

// thousands writes n with commas, as the documents do (600,000).
func thousands(n uint32) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(kib uint32) string { return fmt.Sprintf("m = %d MiB", kib/1024) }

// The parameters SECURITY.md's "Cryptography" table and custody section
// give are the code's defaults: the table is read, the numbers come from
// the packages' presets and constants.
func TestSecurityParametersMatchCode(t *testing.T) {
	t.Parallel()
	crypto := securitySection(t, "Cryptography")
	login, pb256, pb512 := kdf.DefaultParams(), kdf.PBKDF2SHA256Params(), kdf.PBKDF2SHA512Params()
	v, err := vault.New(memstore.New(), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	slot := v.Config().KDF
	checks := []struct {
		row  string
		want []string
	}{
		{"Login password hash", []string{
			mib(login.MemoryKiB), fmt.Sprintf("t = %d", login.Time), fmt.Sprintf("p = %d", login.Threads),
			fmt.Sprintf("%d-byte salt", login.SaltLen), fmt.Sprintf("%d-byte hash", login.KeyLen),
			"-SHA256 at " + thousands(pb256.Iterations), "-SHA512 at " + thousands(pb512.Iterations),
		}},
		{"Passphrase slot key (vault, server-side)", []string{
			mib(slot.MemoryKiB), fmt.Sprintf("t = %d", slot.Time), fmt.Sprintf("p = %d", slot.Threads),
			fmt.Sprintf("%d-byte salt", slot.SaltLen), fmt.Sprintf("%d-byte key", slot.KeyLen),
		}},
		{"Passphrase slot key (browser", []string{thousands(pb256.Iterations) + " iterations"}},
		{"Session, access, refresh, one-time tokens", []string{
			fmt.Sprintf("access %d min", session.DefaultAccessTokenTTL/time.Minute),
			fmt.Sprintf("refresh %d days unused", session.DefaultRefreshTokenTTL/(24*time.Hour)),
			fmt.Sprintf("%d days a family", session.DefaultRefreshLifetime/(24*time.Hour)),
		}},
		{"TOTP", []string{fmt.Sprintf("%d s", totp.DefaultPeriod/time.Second)}},
		{"Login recovery codes", []string{fmt.Sprintf("%d codes", totp.MinRecoveryCodes)}},
	}
	for _, c := range checks {
		row := securityRow(t, crypto, c.row)
		for _, w := range c.want {
			if !strings.Contains(row, w) {
				t.Errorf("SECURITY.md, Cryptography, row %q does not say %q (the code's default)", c.row, w)
			}
		}
	}

	custody := strings.Join(strings.Fields(securitySection(t, "How sessions hold the vault's keys")), " ")
	for _, w := range []string{
		fmt.Sprintf("idle timeout (%d min)", session.DefaultIdleTimeout/time.Minute),
		fmt.Sprintf("absolute lifetime (%d h)", session.DefaultLifetime/time.Hour),
		fmt.Sprintf("`LockAfter` (%d min)", session.DefaultLockAfter/time.Minute),
	} {
		if !strings.Contains(custody, w) {
			t.Errorf("SECURITY.md, custody section, does not say %q (the code's default)", w)
		}
	}
}
