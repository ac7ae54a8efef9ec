package main

// Attack review (issue 15) of the multi proxy: what a client sends cannot
// choose the address or the scheme the instances see.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
)

// Every forwarding header a client may send (Forwarded, which the
// instances read before X-Forwarded-For; X-Forwarded-For, -Host, -Proto;
// a Connection header naming them) is replaced or dropped: the instance,
// trusting the proxy as multi's instances do, finds the client at the
// address the proxy saw, over plain HTTP, with the client's Host.
func TestAttackProxyForwardingHeaders(t *testing.T) {
	t.Parallel()
	clients, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Client, Host, Forwarded, XFF, XFH, XFP, Connection, Secret string
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := clients.ClientKey(r)
		if err != nil {
			key = err.Error()
		}
		_ = json.NewEncoder(w).Encode(seen{key, r.Host, r.Header.Get("Forwarded"), r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Connection"), r.Header.Get("X-Secret")})
	}))
	t.Cleanup(backend.Close)
	u, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(newProxy([]*instance{{Name: "a", URL: u}}, roundRobin(1)))
	t.Cleanup(proxy.Close)
	for i, h := range []http.Header{
		{"Forwarded": {"for=192.0.2.66;proto=https"}},
		{"Forwarded": {"for=192.0.2.66", "for=192.0.2.67;proto=https"}, "X-Forwarded-For": {"192.0.2.68"}},
		{"X-Forwarded-For": {"192.0.2.66, 127.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
		{"X-Forwarded-For": {"192.0.2.66", "127.0.0.1"}},
		{"Connection": {"X-Forwarded-For, Forwarded"}, "Forwarded": {"for=192.0.2.66"}},
		{"Connection": {"X-Secret"}, "X-Secret": {"hop"}},
	} {
		req, err := http.NewRequest("GET", proxy.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "localhost:1234"
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s seen
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := seen{Client: "127.0.0.1", Host: "localhost:1234", XFF: "127.0.0.1", XFH: "localhost:1234", XFP: "http"}
		if s != want {
			t.Errorf("request %d %v: the instance saw %+v, want %+v", i, h, s, want)
		}
	}
}

// DNS rebinding: a page at http://attacker.example:8090, whose name the
// attacker then points at 127.0.0.1, reaches the proxy from the
// developer's browser as a same-origin page (its Origin matches its Host,
// so the instances' cross-origin protection lets its posts through) and
// reads the answers: it could sign up, guess passwords of the
// developer's test accounts and spend their login limit. The proxy
// serves only the loopback names (any port); other hosts get 421.
func TestAttackProxyDNSRebinding(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("app")) }))
	t.Cleanup(backend.Close)
	u, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(newProxy([]*instance{{Name: "a", URL: u}}, roundRobin(1)))
	t.Cleanup(proxy.Close)
	for host, want := range map[string]int{
		"localhost:8090": 200, "localhost": 200, "LOCALHOST:8090": 200, "127.0.0.1:8090": 200, "[::1]:8090": 200,
		"attacker.example:8090": 421, "attacker.example": 421, "localhost.attacker.example:8090": 421, "127.0.0.1.nip.io:8090": 421,
		"10.0.0.1:8090": 421,
	} {
		req, err := http.NewRequest("POST", proxy.URL+"/login", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
