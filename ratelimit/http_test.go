package ratelimit_test

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// A loginApp is a login endpoint built as the package documentation
// says: LoginPerIP by client address in front, the lockout on the
// submitted name (known or not) inside, the device cookie for known
// devices, and one answer for every failure.
type loginApp struct {
	clients  *ratelimit.ClientResolver
	perIP    *ratelimit.Limiter
	lockout  *ratelimit.Lockout
	devices  *ratelimit.Devices
	users    map[string]string // name → password
	reached  atomic.Int64      // requests that reached the handler
	verified atomic.Int64      // passwords checked
}

func newLoginApp(t testing.TB, store storage.Store, c *clock, clients *ratelimit.ClientResolver) *loginApp {
	return &loginApp{
		clients: clients,
		perIP:   newLimiter(t, store, ratelimit.LoginPerIP(), c),
		lockout: newLockout(t, store, ratelimit.LockoutPolicy{}, c),
		devices: newDevices(t, c),
		users:   map[string]string{"alice": "correct horse battery staple", "bob": "tr0ub4dor&3"},
	}
}

// loginFailed is the one answer for an unknown name, a wrong password and
// a locked account.
func loginFailed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "Wrong name or password.\n")
}

// login is the handler, without the per-address middleware.
func (a *loginApp) login(w http.ResponseWriter, r *http.Request) {
	a.reached.Add(1)
	ctx := r.Context()
	name, password := r.PostFormValue("name"), r.PostFormValue("password")
	ip, _ := a.clients.Client(r)
	att, err := a.lockout.Begin(ctx, name, ratelimit.Source{IP: ip, Device: a.devices.Recognize(r, name)})
	if err != nil {
		loginFailed(w)
		return
	}
	a.verified.Add(1)
	want, ok := a.users[name]
	if !ok {
		want = "a password no one has" // the same work for unknown names
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 || !ok {
		att.Failed(ctx)
		loginFailed(w)
		return
	}
	att.Succeeded(ctx)
	a.devices.Remember(w, name)
	io.WriteString(w, "Welcome.\n")
}

func (a *loginApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /login", a.perIP.Middleware(ratelimit.ByIP(a.clients), nil)(http.HandlerFunc(a.login)))
	return mux
}

// serve runs h on r and returns the recorded response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func loginRequest(remoteAddr, name, password string) *http.Request {
	return postForm("https://app.example/login", remoteAddr, "name="+name+"&password="+password)
}

// addr returns a distinct client address for each n.
func addr(n int) string {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)}), 40000).String()
}

var rateLimitHeaders = []string{"Ratelimit-Policy", "Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Retry-After"}

// RL-09: the answers for an unknown name, a wrong password, and a locked
// account (real or unknown name, right or wrong password) are identical:
// status, body and every header. The lockout adds no header of its own.
func TestLoginAnswersIdentical(t *testing.T) {
	for _, withIPLimit := range []bool{true, false} {
		t.Run(fmt.Sprintf("per-address limit %v", withIPLimit), func(t *testing.T) {
			c := newClock()
			app := newLoginApp(t, memstore.New(), c, resolver(t))
			h := app.handler()
			if !withIPLimit {
				h = http.HandlerFunc(app.login)
			}
			n := 0
			next := func() string { n++; return addr(n) } // a fresh address per request, so the per-address headers are alike
			for _, name := range []string{"alice", "nobody"} {
				for range 100 { // from as many addresses: the account's own counter locks
					serve(h, loginRequest(next(), name, "guess"))
				}
			}
			cases := []struct{ name, user, password string }{
				{"unknown name", "ghost", "guess"},
				{"wrong password", "bob", "guess"},
				{"locked account, wrong password", "alice", "guess"},
				{"locked account, right password", "alice", "correct horse battery staple"},
				{"locked unknown name", "nobody", "guess"},
			}
			var first *httptest.ResponseRecorder
			for _, tc := range cases {
				rec := serve(h, loginRequest(next(), tc.user, tc.password))
				rec.Header().Del("Date")
				if first == nil {
					first = rec
					if rec.Code != http.StatusUnauthorized {
						t.Fatalf("%s: %d", tc.name, rec.Code)
					}
					for _, k := range rateLimitHeaders {
						if _, ok := rec.Header()[k]; ok != (withIPLimit && k != "Retry-After") {
							t.Errorf("%s: header %s present: %v", tc.name, k, ok)
						}
					}
					continue
				}
				if rec.Code != first.Code || rec.Body.String() != first.Body.String() {
					t.Errorf("%s: %d %q, but %s: %d %q", tc.name, rec.Code, rec.Body, cases[0].name, first.Code, first.Body)
				}
				if !maps.EqualFunc(rec.Header(), first.Header(), slices.Equal) {
					t.Errorf("%s: headers differ from %s:\n%v\n%v", tc.name, cases[0].name, rec.Header(), first.Header())
				}
			}
			// And the right password on an account that is not locked works.
			if rec := serve(h, loginRequest(next(), "bob", "tr0ub4dor%263")); rec.Code != http.StatusOK {
				t.Errorf("bob's login: %d %q", rec.Code, rec.Body)
			}
		})
	}
}

// RL-05: one address trying 1000 names, once each, is stopped at the
// per-address limit: exactly 5 attempts reach the handler, and unknown
// names use up the budget like real ones.
func TestOneAddressManyNames(t *testing.T) {
	c := newClock()
	app := newLoginApp(t, memstore.New(), c, resolver(t))
	h := app.handler()
	codes := map[int]int{}
	for i := range 1000 {
		rec := serve(h, loginRequest("192.0.2.66:5555", fmt.Sprintf("user%d", i), "123456"))
		codes[rec.Code]++
	}
	if app.reached.Load() != 5 || codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 995 {
		t.Fatalf("%d attempts reached the handler (answers %v), want 5", app.reached.Load(), codes)
	}
	// The same address's IPv6 /64 neighbour and another address are not
	// affected by each other... but a neighbour in the same /64 is.
	v6 := func(s string) *http.Request { return loginRequest(s, "x", "y") }
	for i := range 5 {
		serve(h, v6(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)))
	}
	if rec := serve(h, v6("[2001:db8:1:2:ffff:ffff:ffff:ffff]:443")); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a sixth address in the same /64: %d, want 429", rec.Code)
	}
	if rec := serve(h, v6("[2001:db8:1:3::1]:443")); rec.Code != http.StatusUnauthorized {
		t.Errorf("an address in the next /64: %d, want 401", rec.Code)
	}
}

// RL-06, A3: the client address is the peer unless the peer is a trusted
// proxy; then the rightmost untrusted hop of Forwarded or X-Forwarded-For.
// IPv6 clients are keyed by /64, IPv4-mapped addresses as IPv4.
func TestClientKey(t *testing.T) {
	direct := resolver(t)
	proxied := resolver(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	for _, tc := range []struct {
		name       string
		c          *ratelimit.ClientResolver
		remoteAddr string
		header     map[string]string
		want       string
	}{
		{"forged XFF, no proxy", direct, "9.9.9.9:1234", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "9.9.9.9"},
		{"forged Forwarded, no proxy", direct, "9.9.9.9:1234", map[string]string{"Forwarded": "for=1.2.3.4"}, "9.9.9.9"},
		{"forged X-Real-IP, no proxy", direct, "9.9.9.9:1234", map[string]string{"X-Real-IP": "1.2.3.4"}, "9.9.9.9"},
		{"forged XFF from an untrusted peer", proxied, "9.9.9.9:1234", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "9.9.9.9"},
		{"one trusted proxy", proxied, "10.0.0.1:443", map[string]string{"X-Forwarded-For": "1.2.3.4, 9.9.9.9"}, "9.9.9.9"},
		{"two trusted proxies", proxied, "10.0.0.1:443", map[string]string{"X-Forwarded-For": "1.2.3.4, 9.9.9.9, 10.1.2.3"}, "9.9.9.9"},
		{"XFF over several fields", proxied, "10.0.0.1:443", map[string]string{"X-Forwarded-For": "1.2.3.4, 9.9.9.9"}, "9.9.9.9"},
		{"Forwarded", proxied, "10.0.0.1:443", map[string]string{"Forwarded": `for=1.2.3.4, for="9.9.9.9:5000";proto=https`}, "9.9.9.9"},
		{"Forwarded wins over XFF", proxied, "10.0.0.1:443", map[string]string{"Forwarded": "for=9.9.9.9", "X-Forwarded-For": "1.2.3.4"}, "9.9.9.9"},
		{"X-Real-IP never read", proxied, "10.0.0.1:443", map[string]string{"X-Real-IP": "1.2.3.4"}, "10.0.0.1"},
		{"trusted proxy, no header", proxied, "10.0.0.1:443", nil, "10.0.0.1"},
		{"garbage hop stops the walk", proxied, "10.0.0.1:443", map[string]string{"X-Forwarded-For": "1.2.3.4, garbage"}, "10.0.0.1"},
		{"IPv6 client via proxy", proxied, "10.0.0.1:443", map[string]string{"Forwarded": `for="[2001:db8:1:2::99]"`}, "2001:db8:1:2::/64"},
		{"IPv6 proxy", proxied, "[2001:db8:ffff::1]:443", map[string]string{"X-Forwarded-For": "1.2.3.4, 2001:db8:9:9::1"}, "2001:db8:9:9::/64"},
		{"IPv6 peer keyed by /64", direct, "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"IPv6 peer, other /64", direct, "[2001:db8:1:3:3:4:5:6]:443", nil, "2001:db8:1:3::/64"},
		{"IPv4-mapped peer", direct, "[::ffff:192.0.2.7]:443", nil, "192.0.2.7"},
		{"IPv4-mapped trusted proxy", proxied, "[::ffff:10.0.0.1]:443", map[string]string{"X-Forwarded-For": "::ffff:9.9.9.9"}, "9.9.9.9"},
		{"zone dropped", direct, "[fe80::1%eth0]:443", nil, "fe80::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := postForm("https://app.example/login", tc.remoteAddr, "")
			for k, v := range tc.header {
				if tc.name == "XFF over several fields" {
					for _, part := range strings.Split(v, ", ") {
						r.Header.Add(k, part)
					}
					continue
				}
				r.Header.Set(k, v)
			}
			got, err := tc.c.ClientKey(r)
			if err != nil || got != tc.want {
				t.Errorf("ClientKey = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	r := postForm("https://app.example/login", "not an address", "")
	if k, err := direct.ClientKey(r); !errors.Is(err, ratelimit.ErrNoClientIP) || k != "" {
		t.Errorf("ClientKey without a peer address = %q, %v", k, err)
	}
	for _, tc := range []struct {
		ip   string
		bits int
		want string
	}{
		{"192.0.2.1", 64, "192.0.2.1"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1"},
		{"2001:db8::1", 128, "2001:db8::1"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
	} {
		if got := ratelimit.ClientKey(netip.MustParseAddr(tc.ip), tc.bits); got != tc.want {
			t.Errorf("ClientKey(%s, %d) = %q, want %q", tc.ip, tc.bits, got, tc.want)
		}
	}
	for _, bits := range []int{-1, 31, 129} {
		if _, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{IPv6PrefixLen: bits}); !errors.Is(err, ratelimit.ErrInvalidInput) {
			t.Errorf("IPv6PrefixLen %d: %v", bits, err)
		}
	}
	if _, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: []netip.Prefix{{}}}); !errors.Is(err, ratelimit.ErrInvalidInput) {
		t.Errorf("an invalid trusted prefix: %v", err)
	}
	per128, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{IPv6PrefixLen: 128})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := per128.ClientKey(postForm("/", "[2001:db8:1:2:3:4:5:6]:443", "")); k != "2001:db8:1:2:3:4:5:6" {
		t.Errorf("IPv6PrefixLen 128: %q", k)
	}
}

// ---- RFC 9651 structured-field lists ----

// An sfMember is a list member of a RateLimit or RateLimit-Policy field:
// a string item with integer parameters.
type sfMember struct {
	name   string
	params map[string]int64
	order  []string
}

// parseSFList parses field lines as an RFC 9651 sf-list whose members are
// all sf-strings with integer parameters, strictly: anything else (tokens,
// inner lists, decimals, booleans, bad escapes, stray commas or spaces)
// is an error.
func parseSFList(lines []string) ([]sfMember, error) {
	s := strings.Join(lines, ", ")
	i := 0
	sp := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	sp()
	var out []sfMember
	if i == len(s) {
		return nil, nil
	}
	for {
		// sf-string
		if i >= len(s) || s[i] != '"' {
			return nil, fmt.Errorf("at %d: want a string", i)
		}
		i++
		var name strings.Builder
		for {
			if i >= len(s) {
				return nil, errors.New("unterminated string")
			}
			c := s[i]
			i++
			if c == '\\' {
				if i >= len(s) || (s[i] != '"' && s[i] != '\\') {
					return nil, fmt.Errorf("at %d: bad escape", i)
				}
				name.WriteByte(s[i])
				i++
				continue
			}
			if c == '"' {
				break
			}
			if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("at %d: byte %#x in a string", i-1, c)
			}
			name.WriteByte(c)
		}
		m := sfMember{name: name.String(), params: map[string]int64{}}
		// parameters
		for i < len(s) && s[i] == ';' {
			i++
			sp()
			start := i
			if i >= len(s) || !(s[i] >= 'a' && s[i] <= 'z' || s[i] == '*') {
				return nil, fmt.Errorf("at %d: want a key", i)
			}
			for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9' || strings.IndexByte("_-.*", s[i]) >= 0) {
				i++
			}
			key := s[start:i]
			if i >= len(s) || s[i] != '=' {
				return nil, fmt.Errorf("parameter %q: want an integer value", key)
			}
			i++
			start = i
			if i < len(s) && s[i] == '-' {
				i++
			}
			digits := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == digits || i-digits > 15 || (i < len(s) && s[i] == '.') {
				return nil, fmt.Errorf("parameter %q: not an sf-integer", key)
			}
			v, err := strconv.ParseInt(s[start:i], 10, 64)
			if err != nil {
				return nil, err
			}
			if _, dup := m.params[key]; !dup {
				m.order = append(m.order, key)
			}
			m.params[key] = v
		}
		out = append(out, m)
		ows()
		if i == len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, fmt.Errorf("at %d: want a comma, got %q", i, s[i])
		}
		i++
		ows()
		if i == len(s) {
			return nil, errors.New("trailing comma")
		}
	}
}

func TestParseSFList(t *testing.T) {
	good := []string{`"login";q=5;w=900`, `"a"; q=5 `, `"a",	"b"`, `"a";r=0;t=0, "b";r=1;t=2`, `"x\"y"`, ` "a";q=-1`}
	for _, s := range good {
		if _, err := parseSFList([]string{s}); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{`login;q=5`, `"a";q=5,`, `"a";q=1.5`, `"a";q`, `"a";Q=1`, `"a";q=?1`, `"a" "b"`, `"a\x"`, `"a`, `("a")`, `"a";q=1234567890123456`, `"a",,"b"`, `"a" ;q=5`, `"a";q=5;`, `"é"`}
	for _, s := range bad {
		if m, err := parseSFList([]string{s}); err == nil {
			t.Errorf("%q parsed: %+v", s, m)
		}
	}
}

// rateFields parses the RateLimit-Policy and RateLimit fields of h into
// maps by policy name, checking that both are well-formed, name the same
// policies in the same order, and hold only non-negative integers.
func rateFields(t *testing.T, h http.Header) (policy, limit map[string]sfMember, names []string) {
	t.Helper()
	pol, err := parseSFList(h.Values("RateLimit-Policy"))
	if err != nil {
		t.Fatalf("RateLimit-Policy %q: %v", h.Values("RateLimit-Policy"), err)
	}
	lim, err := parseSFList(h.Values("RateLimit"))
	if err != nil {
		t.Fatalf("RateLimit %q: %v", h.Values("RateLimit"), err)
	}
	if len(pol) != len(lim) {
		t.Fatalf("RateLimit-Policy has %d members, RateLimit %d", len(pol), len(lim))
	}
	policy, limit = map[string]sfMember{}, map[string]sfMember{}
	for i := range pol {
		if pol[i].name != lim[i].name {
			t.Fatalf("member %d: policy %q, limit %q", i, pol[i].name, lim[i].name)
		}
		if !slices.Equal(pol[i].order, []string{"q", "w"}) || !slices.Equal(lim[i].order, []string{"r", "t"}) {
			t.Fatalf("parameters %v and %v, want q, w and r, t", pol[i].order, lim[i].order)
		}
		for _, m := range []sfMember{pol[i], lim[i]} {
			for k, v := range m.params {
				if v < 0 {
					t.Fatalf("%q: %s=%d is negative", m.name, k, v)
				}
			}
		}
		policy[pol[i].name], limit[lim[i].name] = pol[i], lim[i]
		names = append(names, pol[i].name)
	}
	return policy, limit, names
}

func headerInt(t *testing.T, h http.Header, name string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(h.Get(name), 10, 64)
	if err != nil || v < 0 {
		t.Fatalf("%s: %q is not a non-negative integer", name, h.Get(name))
	}
	return v
}

// RL-08: every response behind ByIP carries RateLimit-Policy and RateLimit
// (RFC 9651 lists of non-negative integers) and consistent X-RateLimit
// fields; the 429 has a Retry-After not earlier than t.
func TestRateLimitHeaders(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.LoginPerIP(), c)
	reached := 0
	h := l.Middleware(ratelimit.ByIP(resolver(t)), nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for i := 1; i <= 7; i++ {
		rec := serve(h, postForm("https://app.example/login", "192.0.2.1:1000", ""))
		policy, limit, names := rateFields(t, rec.Header())
		if !slices.Equal(names, []string{"login"}) {
			t.Fatalf("request %d: policies %v", i, names)
		}
		if p := policy["login"].params; p["q"] != 5 || p["w"] != 900 {
			t.Errorf("request %d: RateLimit-Policy %v, want q=5, w=900", i, p)
		}
		r, tt := limit["login"].params["r"], limit["login"].params["t"]
		wantR := int64(max(5-i, 0))
		if r != wantR || tt != 180 {
			t.Errorf("request %d: RateLimit r=%d t=%d, want r=%d t=180", i, r, tt, wantR)
		}
		xLimit, xRem, xReset := headerInt(t, rec.Header(), "X-RateLimit-Limit"), headerInt(t, rec.Header(), "X-RateLimit-Remaining"), headerInt(t, rec.Header(), "X-RateLimit-Reset")
		wantReset := c.Now().Add(time.Duration(min(i, 5)) * 3 * time.Minute).Unix()
		if xLimit != 5 || xRem != r || xReset != wantReset {
			t.Errorf("request %d: X-RateLimit %d/%d/%d, want 5/%d/%d", i, xLimit, xRem, xReset, r, wantReset)
		}
		if i <= 5 {
			if rec.Code != http.StatusOK || rec.Header().Get("Retry-After") != "" {
				t.Errorf("request %d: %d, Retry-After %q", i, rec.Code, rec.Header().Get("Retry-After"))
			}
			continue
		}
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("request %d: %d, want 429", i, rec.Code)
		}
		if ra := headerInt(t, rec.Header(), "Retry-After"); ra < tt || ra != 180 {
			t.Errorf("request %d: Retry-After %d, t=%d; want 180, not earlier than t", i, ra, tt)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("429 Cache-Control %q", cc)
		}
	}
	if reached != 5 {
		t.Errorf("%d requests reached the handler, want 5", reached)
	}
	// A unit refills at a time that is not a whole second: t and Retry-After round up.
	c.Advance(179*time.Second + 500*time.Millisecond)
	rec := serve(h, postForm("https://app.example/login", "192.0.2.1:1000", ""))
	_, limit, _ := rateFields(t, rec.Header())
	if ra, tt := headerInt(t, rec.Header(), "Retry-After"), limit["login"].params["t"]; rec.Code != 429 || ra != 1 || tt != 1 {
		t.Errorf("half a second before the refill: %d, Retry-After %d, t=%d; want 429, 1, 1", rec.Code, ra, tt)
	}
}

// RL-08, RL-09: limits keyed by account (alone or with the address) never
// disclose their state in RateLimit or X-RateLimit fields, allowed or
// refused; stacked limits list every ByIP policy, and X-RateLimit shows
// the one with the fewest units left.
func TestStackedAndUndisclosedHeaders(t *testing.T) {
	c := newClock()
	store := memstore.New()
	clients := resolver(t)
	ip := newLimiter(t, store, ratelimit.LoginPerIP(), c)
	daily := newLimiter(t, store, ratelimit.Rule{Name: "login-daily", Limit: 3, Period: 24 * time.Hour}, c)
	acct := newLimiter(t, store, ratelimit.Rule{Name: "login-account", Limit: 10, Period: time.Hour}, c)
	pair := newLimiter(t, store, ratelimit.Rule{Name: "login-pair", Limit: 2, Period: time.Hour}, c)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	account := ratelimit.FormAccount("name")

	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"ByAccount", pair.Middleware(ratelimit.ByAccount(account), nil)(ok)},
		{"ByIPAndAccount", pair.Middleware(ratelimit.ByIPAndAccount(clients, account), nil)(ok)},
	} {
		for i := 1; i <= 3; i++ {
			rec := serve(tc.h, postForm("https://app.example/login", "192.0.2.9:1", "name="+tc.name))
			if want := map[bool]int{true: 200, false: 429}[i <= 2]; rec.Code != want {
				t.Errorf("%s, request %d: %d, want %d", tc.name, i, rec.Code, want)
			}
			for _, k := range rateLimitHeaders[:5] {
				if v := rec.Header().Values(k); v != nil {
					t.Errorf("%s, request %d: %s: %q", tc.name, i, k, v)
				}
			}
		}
	}

	stack := ip.Middleware(ratelimit.ByIP(clients), nil)(
		daily.Middleware(ratelimit.ByIP(clients), nil)(
			acct.Middleware(ratelimit.ByAccount(account), nil)(ok)))
	for i := 1; i <= 4; i++ {
		rec := serve(stack, postForm("https://app.example/login", "192.0.2.1:1", "name=alice"))
		if strings.Contains(fmt.Sprint(rec.Header()), "account") {
			t.Errorf("request %d: the account limit is disclosed: %v", i, rec.Header())
		}
		policy, limit, names := rateFields(t, rec.Header())
		if !slices.Equal(names, []string{"login", "login-daily"}) {
			t.Fatalf("request %d: policies %v, want login, login-daily", i, names)
		}
		if p := policy["login-daily"].params; p["q"] != 3 || p["w"] != 86400 {
			t.Errorf("request %d: daily policy %v", i, p)
		}
		ipLeft, dailyLeft := limit["login"].params["r"], limit["login-daily"].params["r"]
		if ipLeft != int64(5-i) || dailyLeft != int64(max(3-i, 0)) {
			t.Errorf("request %d: r=%d and r=%d, want %d and %d", i, ipLeft, dailyLeft, 5-i, max(3-i, 0))
		}
		if xRem, xLim := headerInt(t, rec.Header(), "X-RateLimit-Remaining"), headerInt(t, rec.Header(), "X-RateLimit-Limit"); xRem != dailyLeft || xLim != 3 {
			t.Errorf("request %d: X-RateLimit %d of %d, want the daily policy's %d of 3", i, xRem, xLim, dailyLeft)
		}
		if i == 4 {
			dt := limit["login-daily"].params["t"]
			if ra := headerInt(t, rec.Header(), "Retry-After"); rec.Code != 429 || ra < dt || dt != 8*3600 {
				t.Errorf("request 4: %d, Retry-After %d, daily t=%d; want 429 with Retry-After ≥ t = 8h", rec.Code, ra, dt)
			}
		}
	}
}

// A custom DenyFunc receives the refused Decision; the handler is not
// called.
func TestDenyFuncGetsDecision(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.LoginPerIP(), c)
	var got []ratelimit.Decision
	deny := func(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) {
		got = append(got, d)
		http.Error(w, "slow down", http.StatusTeapot)
	}
	reached := 0
	h := l.Middleware(ratelimit.ByIP(resolver(t)), deny)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for range 6 {
		serve(h, postForm("/login", "192.0.2.1:1", ""))
	}
	rec := serve(h, postForm("/login", "not an address", ""))
	if reached != 5 || len(got) != 2 || rec.Code != http.StatusTeapot {
		t.Fatalf("reached %d, deny called %d times, last %d", reached, len(got), rec.Code)
	}
	d := got[0]
	if d.Allowed || d.Err != nil || d.Policy != "login" || d.Limit != 5 || d.Period != 15*time.Minute || d.Remaining != 0 || d.RetryAfter != 3*time.Minute || d.Reset != 15*time.Minute {
		t.Errorf("refused decision: %+v", d)
	}
	if d := got[1]; d.Allowed || !errors.Is(d.Err, ratelimit.ErrNoClientIP) {
		t.Errorf("decision without an address: %+v", d)
	}
}

// Requests the middleware cannot key are refused, with 400 from
// DefaultDeny: no client address, or no account in the form.
func TestMiddlewareWithoutKey(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.LoginPerIP(), c)
	reached := 0
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ })
	for _, tc := range []struct {
		name string
		h    http.Handler
		r    *http.Request
	}{
		{"no address", l.Middleware(ratelimit.ByIP(resolver(t)), nil)(ok), postForm("/login", "pipe", "")},
		{"no account", l.Middleware(ratelimit.ByAccount(ratelimit.FormAccount("name")), nil)(ok), postForm("/login", "192.0.2.1:1", "other=x")},
		{"empty account", l.Middleware(ratelimit.ByAccount(ratelimit.FormAccount("name")), nil)(ok), postForm("/login", "192.0.2.1:1", "name=")},
		{"over-long account", l.Middleware(ratelimit.ByAccount(ratelimit.FormAccount("name")), nil)(ok), postForm("/login", "192.0.2.1:1", "name="+strings.Repeat("a", ratelimit.MaxKeyLen))},
		{"pair without address", l.Middleware(ratelimit.ByIPAndAccount(resolver(t), ratelimit.FormAccount("name")), nil)(ok), postForm("/login", "pipe", "name=a")},
	} {
		rec := serve(tc.h, tc.r)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.name, rec.Code)
		}
	}
	if reached != 0 {
		t.Errorf("%d requests without a key reached the handler", reached)
	}
	// A body over MaxFormBytes is not read past the bound.
	big := postForm("/login", "192.0.2.1:1", "name=a&pad="+strings.Repeat("x", ratelimit.MaxFormBytes))
	if rec := serve(l.Middleware(ratelimit.ByAccount(ratelimit.FormAccount("name")), nil)(ok), big); rec.Code != http.StatusBadRequest {
		t.Errorf("a form over MaxFormBytes: %d, want 400", rec.Code)
	}
}

// RL-12: a forgot-password endpoint limited by account (5 per hour) and by
// address, whose DenyFunc answers exactly like the handler: the 6th
// request for one account is dropped silently (no email) with the same
// status, body and headers; one address asking for many accounts is
// stopped at its own limit the same way.
func TestForgotPasswordDroppedSilently(t *testing.T) {
	c := newClock()
	store := memstore.New()
	clients := resolver(t)
	perAccount := newLimiter(t, store, ratelimit.Rule{Name: "forgot", Limit: 5, Period: time.Hour}, c)
	perIP := newLimiter(t, store, ratelimit.Rule{Name: "forgot-ip", Limit: 20, Period: time.Hour}, c)
	sent := map[string]int{}
	answer := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "If an account has this address, we have sent it a link.\n")
	}
	same := func(w http.ResponseWriter, r *http.Request, d ratelimit.Decision) { answer(w) }
	forgot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent[r.PostFormValue("email")]++
		answer(w)
	})
	h := perIP.Middleware(ratelimit.ByIP(clients), same)(
		perAccount.Middleware(ratelimit.ByAccount(ratelimit.FormAccount("email")), same)(forgot))

	var first *httptest.ResponseRecorder
	for i := range 8 {
		rec := serve(h, postForm("https://app.example/forgot", addr(i), "email=alice%40example.com"))
		if first == nil {
			first = rec
		}
		if rec.Code != http.StatusOK || rec.Body.String() != first.Body.String() || !maps.EqualFunc(rec.Header(), first.Header(), slices.Equal) {
			t.Errorf("request %d: %d %q %v; want the first answer %d %q %v", i+1, rec.Code, rec.Body, rec.Header(), first.Code, first.Body, first.Header())
		}
	}
	if sent["alice@example.com"] != 5 {
		t.Errorf("%d emails sent to one account, want 5", sent["alice@example.com"])
	}

	total := 0
	for i := range 50 {
		rec := serve(h, postForm("https://app.example/forgot", "192.0.2.200:1", fmt.Sprintf("email=user%d%%40example.com", i)))
		if rec.Code != http.StatusOK || rec.Body.String() != first.Body.String() {
			t.Errorf("request %d from one address: %d %q", i+1, rec.Code, rec.Body)
		}
	}
	for k, n := range sent {
		if k != "alice@example.com" {
			total += n
		}
	}
	if total != 20 {
		t.Errorf("one address had %d emails sent to distinct accounts, want its limit of 20", total)
	}
}

// RL-09: the default answer to a refusal by a limit keyed on an account
// does not disclose the account's quota state either: refusals at
// different states of the bucket (just exhausted, and most of the way to
// the next unit) are identical, Retry-After included.
func TestAccountRefusalDisclosesNothing(t *testing.T) {
	c := newClock()
	l := newLimiter(t, memstore.New(), ratelimit.Rule{Name: "forgot", Limit: 5, Period: time.Hour}, c)
	for i, key := range []ratelimit.Key{ratelimit.ByAccount(ratelimit.FormAccount("name")), ratelimit.ByIPAndAccount(resolver(t), ratelimit.FormAccount("name"))} {
		h := l.Middleware(key, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		name := fmt.Sprintf("account%d", i)
		for range 5 {
			serve(h, postForm("/forgot", "192.0.2.1:1", "name="+name))
		}
		first := serve(h, postForm("/forgot", "192.0.2.1:1", "name="+name))
		c.Advance(11 * time.Minute)
		later := serve(h, postForm("/forgot", "192.0.2.1:1", "name="+name))
		if first.Code != http.StatusTooManyRequests || later.Code != first.Code || later.Body.String() != first.Body.String() {
			t.Fatalf("refusals: %d %q and %d %q", first.Code, first.Body, later.Code, later.Body)
		}
		if !maps.EqualFunc(first.Header(), later.Header(), slices.Equal) {
			t.Errorf("refusals at two states of one account's bucket differ:\n%v\n%v", first.Header(), later.Header())
		}
	}
}
