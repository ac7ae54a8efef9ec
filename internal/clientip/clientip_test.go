package clientip

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"unicode"
)

// Trusted proxies used by most tests: an IPv4 range, an IPv6 range and
// link-local IPv6 (for zoned peers).
var proxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("fe80::/10"),
}

func request(remote string, h http.Header) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = remote
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

type xff = []string

func hops(n int, hop string) string {
	return strings.TrimSuffix(strings.Repeat(hop+", ", n), ", ")
}

func TestClient(t *testing.T) {
	trusting := New(proxies)
	tests := []struct {
		name   string
		r      Resolver
		remote string
		h      http.Header
		want   string // "" means ok == false
	}{
		// No trusted proxies: the peer, whatever the headers say.
		{"zero resolver", Resolver{}, "203.0.113.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.9"}, "Forwarded": {"for=198.51.100.9"}}, "203.0.113.1"},
		{"New(nil)", New(nil), "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.9"}}, "10.0.0.1"},
		{"New(nil) forwarded", New(nil), "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=198.51.100.9"}}, "10.0.0.1"},
		{"no trusted, ipv6 peer", New(nil), "[2001:db8:1::5]:443",
			http.Header{"X-Forwarded-For": {"2001:db8:1::9"}}, "2001:db8:1::5"},

		// Untrusted peer: the peer, whatever the headers say.
		{"untrusted peer xff", trusting, "203.0.113.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.9"}}, "203.0.113.1"},
		{"untrusted peer xff naming a proxy", trusting, "203.0.113.1:1234",
			http.Header{"X-Forwarded-For": {"10.0.0.2"}}, "203.0.113.1"},
		{"untrusted peer forwarded", trusting, "203.0.113.1:1234",
			http.Header{"Forwarded": {"for=198.51.100.9"}}, "203.0.113.1"},
		{"untrusted ipv6 peer", trusting, "[2001:db8:1::5]:443",
			http.Header{"X-Forwarded-For": {"2001:db8:1::9"}}, "2001:db8:1::5"},

		// Trusted peer.
		{"trusted peer, no headers", trusting, "10.0.0.1:1234", nil, "10.0.0.1"},
		{"one hop", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"forged left-most ignored", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.7"}}, "203.0.113.7"},
		{"forged left-most naming a proxy ignored", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"10.9.9.9, 203.0.113.7"}}, "203.0.113.7"},
		{"chain of trusted proxies skipped", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.7, 10.0.0.3, 10.0.0.2"}}, "203.0.113.7"},
		{"all hops trusted: left-most", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"10.0.0.5, 10.0.0.4, 10.0.0.3"}}, "10.0.0.5"},
		{"no spaces", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66,203.0.113.7,10.0.0.2"}}, "203.0.113.7"},
		{"extra whitespace", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"  198.51.100.66 ,\t203.0.113.7\t, 10.0.0.2  "}}, "203.0.113.7"},

		// Several header lines concatenate in order.
		{"two lines", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": xff{"198.51.100.66", "203.0.113.7"}}, "203.0.113.7"},
		{"two lines, trusted hop in the second", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": xff{"198.51.100.66, 203.0.113.7", "10.0.0.2"}}, "203.0.113.7"},
		{"two lines, client in the first", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": xff{"203.0.113.7", "10.0.0.3, 10.0.0.2"}}, "203.0.113.7"},
		{"three lines", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": xff{"198.51.100.66", "203.0.113.7", "10.0.0.2"}}, "203.0.113.7"},

		// IPv6.
		{"ipv6 proxy, ipv6 client", trusting, "[2001:db8:ffff::1]:443",
			http.Header{"X-Forwarded-For": {"2001:db8:1::66, 2001:db8:1::7"}}, "2001:db8:1::7"},
		{"ipv6 proxy chain", trusting, "[2001:db8:ffff::1]:443",
			http.Header{"X-Forwarded-For": {"2001:db8:1::66, 2001:db8:1::7, 2001:db8:ffff::2"}}, "2001:db8:1::7"},
		{"ipv6 proxy, ipv4 client", trusting, "[2001:db8:ffff::1]:443",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"ipv4 proxy, ipv6 client", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"2001:db8:1::7"}}, "2001:db8:1::7"},
		{"ipv6 hop, non-canonical", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"2001:DB8:1:0:0:0:0:7"}}, "2001:db8:1::7"},
		{"ipv6 hop with port", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"[2001:db8:1::7]:4711"}}, "2001:db8:1::7"},
		{"ipv4 hop with port", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.7:5555"}}, "203.0.113.7"},

		// IPv4-mapped IPv6 is IPv4, for trust and for output.
		{"mapped untrusted peer", trusting, "[::ffff:203.0.113.1]:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.9"}}, "203.0.113.1"},
		{"mapped trusted peer", trusting, "[::ffff:10.0.0.1]:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"mapped client hop", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"::ffff:203.0.113.7"}}, "203.0.113.7"},
		{"mapped trusted hop skipped", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, ::ffff:10.0.0.2"}}, "203.0.113.7"},
		{"mapped trusted hop, all trusted", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"::ffff:10.0.0.2"}}, "10.0.0.2"},
		{"mapped hop in forwarded", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[::ffff:203.0.113.7]:80"`}}, "203.0.113.7"},
		{"mapped trusted prefix", New([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}), "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"mapped trusted prefix, mapped peer", New([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}), "[::ffff:10.0.0.1]:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"mapped trusted prefix, hop", New([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}), "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.2"}}, "203.0.113.7"},
		{"prefix with host bits", New([]netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}), "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"invalid prefix trusts nothing", New([]netip.Prefix{{}}), "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "10.0.0.1"},

		// Zones: a link-local proxy is trusted; the zone is not part of the result.
		{"zoned trusted peer", trusting, "[fe80::1%eth0]:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"zoned untrusted peer", New(nil), "[fe80::1%eth0]:1234", nil, "fe80::1"},
		{"zoned client hop", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"2001:db8:1::7%x"}}, "2001:db8:1::7"},
		{"zoned trusted hop skipped", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, fe80::2%eth1"}}, "203.0.113.7"},

		// Forwarded (RFC 7239).
		{"forwarded one hop", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7"}}, "203.0.113.7"},
		{"forwarded forged left-most ignored", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=198.51.100.66, for=203.0.113.7;proto=https;by=10.0.0.1"}}, "203.0.113.7"},
		{"forwarded chain", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=198.51.100.66, for=203.0.113.7, for=10.0.0.3, for=10.0.0.2"}}, "203.0.113.7"},
		{"forwarded two lines", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": xff{"for=198.51.100.66, for=203.0.113.7", "for=10.0.0.2"}}, "203.0.113.7"},
		{"forwarded quoted ipv6 with port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1]:4711"`}}, "2001:db8::1"},
		{"forwarded quoted ipv6", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1]"`}}, "2001:db8::1"},
		{"forwarded quoted ipv6 obfuscated port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1]:_p1"`}}, "2001:db8::1"},
		{"forwarded quoted ipv4 with port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="203.0.113.7:47011"`}}, "203.0.113.7"},
		{"forwarded ipv6 proxy hop", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for=203.0.113.7, for="[2001:db8:ffff::2]:443"`}}, "203.0.113.7"},
		{"forwarded parameter order and case", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"proto=https; By=10.0.0.1 ;FOR=203.0.113.7"}}, "203.0.113.7"},
		{"forwarded unknown stops at last trusted proxy", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7, for=unknown, for=10.0.0.2"}}, "10.0.0.2"},
		{"forwarded unknown from peer", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7, for=unknown"}}, "10.0.0.1"},
		{"forwarded obfuscated stops", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7, for=_hidden, for=10.0.0.2"}}, "10.0.0.2"},
		{"forwarded quoted obfuscated stops", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for=203.0.113.7, for="_hidden:_port"`}}, "10.0.0.1"},
		{"forwarded element without for stops", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7, proto=https;by=10.0.0.1"}}, "10.0.0.1"},
		{"forwarded unclosed bracket", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1"`}}, "10.0.0.1"},
		{"forwarded junk after bracket", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1]x"`}}, "10.0.0.1"},
		{"forwarded unquoted ipv6 with port is unparseable", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=2001:db8::1:80:x"}}, "10.0.0.1"},

		// Forwarded takes precedence over X-Forwarded-For.
		{"forwarded wins", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=203.0.113.7"}, "X-Forwarded-For": {"198.51.100.8"}}, "203.0.113.7"},
		{"forwarded wins even when useless", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {"for=unknown"}, "X-Forwarded-For": {"198.51.100.8"}}, "10.0.0.1"},
		{"empty forwarded still wins", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {""}, "X-Forwarded-For": {"198.51.100.8"}}, "10.0.0.1"},

		// Garbage.
		{"garbage hop", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"not-an-ip"}}, "10.0.0.1"},
		{"empty header", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"only commas", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {",,,"}}, "10.0.0.1"},
		{"garbage right-most", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, garbage"}}, "10.0.0.1"},
		{"garbage behind a trusted hop", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, garbage, 10.0.0.2"}}, "10.0.0.2"},
		{"garbage left of client", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"garbage, 203.0.113.7"}}, "203.0.113.7"},
		{"five octets", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7.1"}}, "10.0.0.1"},
		{"leading zeros", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"010.0.0.2"}}, "10.0.0.1"},
		{"space separated", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66 203.0.113.7"}}, "10.0.0.1"},
		{"cidr", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.0/24"}}, "10.0.0.1"},
		{"hostname", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"evil.example"}}, "10.0.0.1"},
		{"ipv4 with zone", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7%eth0"}}, "10.0.0.1"},
		{"bad port", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7:99999"}}, "10.0.0.1"},
		{"port not a number", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7:http"}}, "10.0.0.1"},
		{"empty port", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7:"}}, "10.0.0.1"},
		{"signed port", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7:+80"}}, "10.0.0.1"},
		{"empty bracketed port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="[2001:db8::1]:"`}}, "10.0.0.1"},
		{"bad obfuscated port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="203.0.113.7:_a/b"`}}, "10.0.0.1"},
		{"obfuscated port", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for="203.0.113.7:_a.b-c_9"`}}, "203.0.113.7"},
		{"control characters", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7\x00"}}, "10.0.0.1"},
		{"doubled quotes", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`for=""203.0.113.7""`}}, "10.0.0.1"},
		{"forwarded garbage", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {`;;==,"",for,for=,=for`}}, "10.0.0.1"},

		// Absurdly long headers are bounded.
		{"thousands of forged hops", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {hops(5000, "198.51.100.66") + ", 203.0.113.7"}}, "203.0.113.7"},
		{"thousands of forged lines", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": append(strings.Split(hops(5000, "198.51.100.66"), ", "), "203.0.113.7")}, "203.0.113.7"},
		{"thousands of trusted hops", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"203.0.113.7, " + hops(5000, "10.0.0.2")}}, "10.0.0.2"},
		{"forged left-most beyond the bound", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66, " + hops(maxHops, "10.0.0.2")}}, "10.0.0.2"},
		{"client just within the bound", trusting, "10.0.0.1:1234",
			http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.7, " + hops(maxHops-1, "10.0.0.2")}}, "203.0.113.7"},
		{"thousands of forwarded elements", trusting, "10.0.0.1:1234",
			http.Header{"Forwarded": {hops(5000, "for=198.51.100.66") + ", for=203.0.113.7"}}, "203.0.113.7"},

		// RemoteAddr.
		{"remote without port", trusting, "203.0.113.1", nil, "203.0.113.1"},
		{"ipv6 remote without port", trusting, "2001:db8:1::5", nil, "2001:db8:1::5"},
		{"trusted remote without port", trusting, "10.0.0.1",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"empty remote", trusting, "",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, ""},
		{"hostname remote", trusting, "proxy.internal:80",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}}, ""},
		{"unix socket remote", trusting, "@", nil, ""},
		{"garbage remote", New(nil), "not an address", nil, ""},
		{"unclosed bracket remote", trusting, "[2001:db8::1:80", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.r.Client(request(tt.remote, tt.h))
			if tt.want == "" {
				if ok {
					t.Fatalf("Client = %v, true; want ok == false", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("Client = %v, %v; want %v, true", got, ok, tt.want)
			}
			if got.Is4In6() || got.Zone() != "" {
				t.Fatalf("Client = %v: not normalised", got)
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	trusting := New(proxies)
	tests := []struct {
		name   string
		r      Resolver
		remote string
		tls    bool
		h      http.Header
		want   bool
	}{
		{"tls", Resolver{}, "203.0.113.1:1234", true, nil, true},
		{"tls, untrusted peer says http", trusting, "203.0.113.1:1234", true,
			http.Header{"X-Forwarded-Proto": {"http"}}, true},
		{"tls, unparseable peer", trusting, "", true, nil, true},
		{"plain", trusting, "203.0.113.1:1234", false, nil, false},
		{"plain, no trusted proxies", Resolver{}, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"plain, untrusted peer", trusting, "203.0.113.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"plain, untrusted peer, forwarded", trusting, "203.0.113.1:1234", false,
			http.Header{"Forwarded": {"proto=https"}}, false},
		{"plain, unparseable peer", trusting, "garbage", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"trusted peer", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted ipv6 peer", trusting, "[2001:db8:ffff::1]:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted mapped peer", trusting, "[::ffff:10.0.0.1]:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted zoned peer", trusting, "[fe80::1%eth0]:1234", false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted peer, upper case", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {" HTTPS "}}, true},
		{"trusted peer, http", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"http"}}, false},
		{"trusted peer, no header", trusting, "10.0.0.1:1234", false, nil, false},
		{"trusted peer, garbage", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https;"}}, false},
		{"trusted peer, empty", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {""}}, false},
		// The last value is the one the trusted proxy appended.
		{"http, https: last counts", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"http, https"}}, true},
		{"https, http: last counts", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https, http"}}, false},
		{"two lines, last https", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"http", "https"}}, true},
		{"two lines, last http", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {"https", "http"}}, false},
		{"long forged list", trusting, "10.0.0.1:1234", false,
			http.Header{"X-Forwarded-Proto": {hops(5000, "https") + ", http"}}, false},

		{"forwarded proto", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"for=203.0.113.7;proto=https"}}, true},
		{"forwarded proto quoted, case", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {`for=203.0.113.7; Proto="HTTPS"`}}, true},
		{"forwarded proto http", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"for=203.0.113.7;proto=http"}}, false},
		{"forwarded last element counts", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"proto=https, proto=http"}}, false},
		{"forwarded last element counts 2", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"proto=http", "for=203.0.113.7;proto=https"}}, true},
		{"forwarded last element without proto", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"proto=https, for=203.0.113.7"}}, false},
		// Forwarded takes precedence over X-Forwarded-Proto.
		{"forwarded wins over xfp", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"for=203.0.113.7;proto=http"}, "X-Forwarded-Proto": {"https"}}, false},
		{"forwarded without proto wins over xfp", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"for=203.0.113.7"}, "X-Forwarded-Proto": {"https"}}, false},
		{"forwarded https wins over xfp", trusting, "10.0.0.1:1234", false,
			http.Header{"Forwarded": {"for=203.0.113.7;proto=https"}, "X-Forwarded-Proto": {"http"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(tt.remote, tt.h)
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			} else {
				req.TLS = nil
			}
			if got := tt.r.HTTPS(req); got != tt.want {
				t.Fatalf("HTTPS = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestNewCopies checks that New does not keep the caller's slice.
func TestNewCopies(t *testing.T) {
	p := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := New(p)
	p[0] = netip.MustParsePrefix("192.0.2.0/24")
	req := request("10.0.0.1:1", http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	if got, _ := r.Client(req); got != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("Client = %v after the caller changed its slice", got)
	}
}

// TestLongHeaderBounded checks that the work done for a huge header does not
// grow with it: the headers a server accepts are bounded only by its
// MaxHeaderBytes (1 MB by default).
func TestLongHeaderBounded(t *testing.T) {
	r := New(proxies)
	long := hops(100_000, "198.51.100.66") + ", 203.0.113.7, 10.0.0.2" // ~1.5 MB
	commas := strings.Repeat(",", 1<<20) + "203.0.113.7"
	lines := append(strings.Split(hops(50_000, "1.1.1.1"), ", "), "203.0.113.7")
	for _, tc := range []struct {
		name string
		h    http.Header
	}{
		{"xff", http.Header{"X-Forwarded-For": {long}, "X-Forwarded-Proto": {long}}},
		{"commas", http.Header{"X-Forwarded-For": {commas}, "X-Forwarded-Proto": {commas}}},
		{"lines", http.Header{"X-Forwarded-For": lines, "X-Forwarded-Proto": lines}},
		{"forwarded", http.Header{"Forwarded": {strings.ReplaceAll(long, ", ", ", for=")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request("10.0.0.1:1234", tc.h)
			if got, ok := r.Client(req); !ok || got != netip.MustParseAddr("203.0.113.7") {
				t.Fatalf("Client = %v, %v; want 203.0.113.7", got, ok)
			}
			const limit = 64 << 10
			if n := allocated(func() { r.Client(req) }); n > limit {
				t.Errorf("Client allocated %d bytes for a long header; want at most %d", n, limit)
			}
			if n := allocated(func() { r.HTTPS(req) }); n > limit {
				t.Errorf("HTTPS allocated %d bytes for a long header; want at most %d", n, limit)
			}
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// tokens returns every address that can be read from any piece of s, a
// deliberately loose, independent way to list what a header could name.
func tokens(s string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	add := func(a netip.Addr) { out[a.Unmap().WithZone("")] = true }
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`,;="[]`, r)
	}) {
		for _, c := range []string{f, strings.Split(f, "%")[0], strings.Split(f, ":")[0]} {
			if a, err := netip.ParseAddr(c); err == nil {
				add(a)
			}
			if ap, err := netip.ParseAddrPort(c); err == nil {
				add(ap.Addr())
			}
		}
	}
	return out
}

func FuzzClient(f *testing.F) {
	for _, s := range [][3]string{
		{"10.0.0.1:1234", "198.51.100.66, 203.0.113.7", ""},
		{"10.0.0.1:1234", "", `for="[2001:db8::1]:4711";proto=https, for=10.0.0.2`},
		{"[::ffff:10.0.0.1]:1", "::ffff:203.0.113.7, ::ffff:10.0.0.9", ""},
		{"[2001:db8:ffff::1]:443", "2001:db8:1::7, 2001:db8:ffff::9", "for=unknown, for=_hidden"},
		{"203.0.113.1:1", "10.0.0.2", "for=10.0.0.2"},
		{"[fe80::1%eth0]:1", "fe80::2%;, [2001:db8::1]:80, 1.2.3.4:5", `for="[`},
		{"10.0.0.1", ",,,", `;;==,"",for`},
		{"", "203.0.113.7", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	r := New(proxies)
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		h := http.Header{"X-Forwarded-For": {xff}, "X-Forwarded-Proto": {xff}}
		if fwd != "" {
			h.Set("Forwarded", fwd)
		}
		req := request(remote, h)
		got, ok := r.Client(req)
		r.HTTPS(req)
		peer, peerOK := netip.Addr{}, false
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			peer, peerOK = ap.Addr(), true
		} else if a, err := netip.ParseAddr(remote); err == nil {
			peer, peerOK = a, true
		}
		peer = peer.Unmap().WithZone("")
		if ok != peerOK {
			t.Fatalf("Client ok = %v; peer %q parses: %v", ok, remote, peerOK)
		}
		if !ok {
			return
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("Client = %v: not normalised", got)
		}
		if got != peer {
			if !r.isTrusted(peer) {
				t.Fatalf("Client = %v for untrusted peer %v", got, peer)
			}
			header := xff
			if fwd != "" {
				header = fwd
			}
			if !tokens(header)[got] {
				t.Fatalf("Client = %v: neither the peer %v nor a hop of %q", got, peer, header)
			}
		}

		// Whatever the client wrote, a trusted proxy appending the real
		// client (and another proxy after it) decides the answer.
		const real = "203.0.113.7"
		want := netip.MustParseAddr(real)
		req = request("10.0.0.1:1234", http.Header{
			"X-Forwarded-For":   {xff + ", " + real + ", 10.0.0.2"},
			"X-Forwarded-Proto": {xff + ", http"},
		})
		if got, ok := r.Client(req); !ok || got != want {
			t.Fatalf("X-Forwarded-For %q: Client = %v, %v; want %v", xff+", "+real+", 10.0.0.2", got, ok, want)
		}
		if r.HTTPS(req) {
			t.Fatalf("X-Forwarded-Proto %q: HTTPS = true", xff+", http")
		}
		req = request("10.0.0.1:1234", http.Header{
			"X-Forwarded-For": {xff},
			"Forwarded":       {fwd, "for=" + real + `, for="[2001:db8:ffff::2]:443";proto=https`},
		})
		if got, ok := r.Client(req); !ok || got != want {
			t.Fatalf("Forwarded %q: Client = %v, %v; want %v", fwd, got, ok, want)
		}
		if !r.HTTPS(req) {
			t.Fatalf("Forwarded %q: HTTPS = false", fwd)
		}
		// The same forged text from an untrusted peer changes nothing.
		req = request(real+":1", http.Header{"X-Forwarded-For": {xff}, "Forwarded": {fwd}, "X-Forwarded-Proto": {"https"}})
		if got, ok := r.Client(req); !ok || got != want || r.HTTPS(req) {
			t.Fatalf("untrusted peer: Client = %v, %v, HTTPS = %v", got, ok, r.HTTPS(req))
		}
	})
}
