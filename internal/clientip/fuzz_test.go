package clientip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fuzzSplitReference is splitList written the obvious way: every
// comma-separated element of every value, trimmed, and the last n.
func fuzzSplitReference(values []string, n int) []string {
	var all []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			all = append(all, strings.TrimSpace(e))
		}
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// FuzzSplitList: the header list splitter, which works from the right to
// bound its work, gives the same elements as the obvious split over all
// values, never more than n.
func FuzzSplitList(f *testing.F) {
	f.Add("1.2.3.4, 5.6.7.8", "9.9.9.9", uint8(2))
	f.Add(",,,", "", uint8(32))
	f.Add(" a ,b,, c", " , ", uint8(3))
	f.Add("", "", uint8(0))
	f.Add(strings.Repeat("1.1.1.1,", 40), "2.2.2.2", uint8(32))
	f.Fuzz(func(t *testing.T, a, b string, n uint8) {
		limit := int(n%(maxHops+2)) + 1
		for _, values := range [][]string{{a}, {a, b}, {b, a}} {
			got := splitList(values, limit)
			want := fuzzSplitReference(values, limit)
			if !slices.Equal(got, want) {
				t.Fatalf("splitList(%q, %d) = %q; want %q", values, limit, got, want)
			}
		}
	})
}

// FuzzParseNode: a forwarding hop parses, or not, without panicking; an
// address it gives is normalised (IPv4-mapped as IPv4, no zone) and reads
// back the same written bare, quoted, bracketed with a port, and with an
// obfuscated port; a port above 65535 or a bad obfuscated port is refused.
func FuzzParseNode(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.1:443", "2001:db8::1", `"[2001:db8::1]:4711"`, "[2001:db8::1]:_obf",
		"unknown", "_hidden", "::ffff:192.0.2.1", "[::ffff:10.0.0.1]:1", "fe80::1%eth0", "[fe80::1%25eth0]:80",
		"192.0.2.1:65536", "192.0.2.1:_", "192.0.2.1:_a/b", `"192.0.2.1`, "[2001:db8::1", "[]:1", "1.2.3.4:5:6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hop string) {
		a, ok := parseNode(hop)
		if !ok {
			if a.IsValid() {
				t.Fatalf("parseNode(%q) = %v, false", hop, a)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("parseNode(%q) = %v: not normalised", hop, a)
		}
		forms := []string{a.String(), `"` + a.String() + `"`, netip.AddrPortFrom(a, 443).String(), `"` + netip.AddrPortFrom(a, 1).String() + `"`}
		if a.Is6() {
			forms = append(forms, "["+a.String()+"]:_x-1.y")
		} else {
			forms = append(forms, a.String()+":_x")
		}
		for _, form := range forms {
			if b, ok := parseNode(form); !ok || b != a {
				t.Fatalf("parseNode(%q) = %v, but %q reads as %v, %v", hop, a, form, b, ok)
			}
		}
		bad := netip.AddrPortFrom(a, 1).String() + "0000000"
		if _, ok := parseNode(bad); ok {
			t.Fatalf("parseNode(%q) accepted a port above 65535", bad)
		}
	})
}
