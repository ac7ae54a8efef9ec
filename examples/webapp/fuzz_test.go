package main

import (
	"net"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// fuzzUASeeds are User-Agent strings of common browsers and hostile ones.
var fuzzUASeeds = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"curl/8.5.0", "", "\u202eevil\u202c", "a\x00b\x1bc\n", "\xff\xfe", strings.Repeat("é", 300), "<script>alert(1)</script>",
}

// FuzzCleanUA: the User-Agent text shown on the devices page is valid
// UTF-8 with no control or format character (no bidirectional override),
// at most maxUALen bytes of input read (each invalid byte run becoming
// one U+FFFD), and cleaning it again changes nothing.
func FuzzCleanUA(f *testing.F) {
	for _, s := range fuzzUASeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := cleanUA(ua)
		if !utf8.ValidString(got) || len(got) > 3*maxUALen {
			t.Fatalf("cleanUA(%q) = %q: invalid or %d bytes", ua, got, len(got))
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("cleanUA(%q) = %q keeps %U", ua, got, r)
			}
		}
		if again := cleanUA(got); again != got && len(got) <= maxUALen {
			t.Fatalf("cleanUA(%q) = %q, cleaned again %q", ua, got, again)
		}
		if len(ua) > maxUALen && cleanUA(ua[:maxUALen]+"\u202e") != got {
			t.Fatalf("cleanUA read past %d bytes of %q", maxUALen, ua)
		}
	})
}

// FuzzDescribeUA: the short browser description is made of fixed words
// only (ASCII letters, digits, spaces and dots, at most 64 bytes), never
// of the string's own text, and reads at most maxUALen bytes.
func FuzzDescribeUA(f *testing.F) {
	for _, s := range fuzzUASeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := describeUA(ua)
		if got == "" || len(got) > 64 || strings.Trim(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .") != "" {
			t.Fatalf("describeUA(%q) = %q", ua, got)
		}
		if len(ua) > maxUALen && describeUA(ua[:maxUALen]+"Firefox/1 Windows") != got {
			t.Fatalf("describeUA read past %d bytes of %q", maxUALen, ua)
		}
	})
}

// FuzzLoopbackHost: the DNS-rebinding guard accepts a Host header only
// when, without its port, it is "localhost" (any case) or a loopback
// address; never a name, a non-loopback address or an empty host.
func FuzzLoopbackHost(f *testing.F) {
	for _, s := range []string{"localhost", "localhost:8080", "LOCALHOST", "127.0.0.1", "127.0.0.1:80", "127.1.2.3", "[::1]:80", "[::1]", "::1",
		"::ffff:127.0.0.1", "attacker.example", "attacker.example:80", "localhost.", "localhost.attacker.example", "0.0.0.0",
		"10.0.0.1", "", ":80", "[::1", "127.0.0.1:80:80", "0x7f.1", "2130706433"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !loopbackHost(host) {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		} else {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
		if strings.EqualFold(h, "localhost") {
			return
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			t.Fatalf("loopbackHost(%q) accepted host %q", host, h)
		}
	})
}
