package ratelimit_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyhold/keyhold/storage/memstore"
)

// forge sets random forged client-address headers on r: X-Forwarded-For,
// Forwarded and X-Real-IP, each present or not, with IPv4, IPv6, several
// hops, ports, obfuscated names and garbage.
func forge(rng *rand.Rand, h http.Header) {
	ip := func() string {
		if rng.IntN(3) == 0 {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.Uint32()), byte(rng.Uint32()), 15: byte(rng.Uint32())}).String()
		}
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}).String()
	}
	hops := func(sep string, f func(string) string) string {
		var parts []string
		for range 1 + rng.IntN(3) {
			parts = append(parts, f(ip()))
		}
		return strings.Join(parts, sep)
	}
	if rng.IntN(4) != 0 {
		h.Set("X-Forwarded-For", hops(", ", func(a string) string { return a }))
	}
	if rng.IntN(2) == 0 {
		h.Set("Forwarded", hops(", ", func(a string) string {
			switch rng.IntN(4) {
			case 0:
				return `for="[` + a + `]:4711"`
			case 1:
				return "for=_hidden"
			default:
				return "for=" + a + ";proto=https"
			}
		}))
	}
	if rng.IntN(2) == 0 {
		h.Set("X-Real-IP", ip())
	}
	if rng.IntN(10) == 0 {
		h.Set("X-Forwarded-For", "unknown, garbage,,")
	}
}

// hammer sends n login requests with forged headers from 64 goroutines
// through do, which returns the response, and counts the status codes.
func hammer(t *testing.T, n int, do func(*http.Request) (*http.Response, error)) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for next.Add(1) <= int64(n) {
				form := url.Values{"name": {fmt.Sprintf("user%d", rng.IntN(1000))}, "password": {"123456"}}
				req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				forge(rng, req.Header)
				resp, err := do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes
}

// listen listens on a loopback address.
func listen(t *testing.T, ip string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	return l
}

// The proof that forged address headers buy nothing: a login endpoint
// (ByIP with LoginPerIP in front, the lockout inside) hammered with 2000
// requests from 64 goroutines, each with random X-Forwarded-For,
// Forwarded and X-Real-IP headers, lets exactly 5 through to the handler:
// served over TCP directly, with no trusted proxy; over TCP behind a
// trusted reverse proxy (net/http/httputil) that appends the real client
// to X-Forwarded-For (and drops Forwarded); and, in process, behind a
// trusted proxy that appends the real client to Forwarded.
func TestForgedHeadersGainNothing(t *testing.T) {
	const requests = 2000
	for _, tc := range []struct {
		name       string
		trusted    []string
		wantClient string
		setup      func(t *testing.T, h http.Handler) func(*http.Request) (*http.Response, error)
	}{
		{"TCP, no trusted proxy", nil, "127.0.0.1", func(t *testing.T, h http.Handler) func(*http.Request) (*http.Response, error) {
			return overTCP(t, serveOn(t, h))
		}},
		{"TCP, trusted proxy appending X-Forwarded-For", []string{"127.0.0.2/32"}, "127.0.0.1", func(t *testing.T, h http.Handler) func(*http.Request) (*http.Response, error) {
			backend, _ := url.Parse(serveOn(t, h))
			rp := &httputil.ReverseProxy{
				Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(backend)
					// Rewrite has removed Forwarded and X-Forwarded-*: keep
					// the client's X-Forwarded-For and append the peer, as
					// Director would.
					pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
					pr.SetXForwarded()
				},
				Transport: &http.Transport{
					// The proxy reaches the backend from 127.0.0.2, the
					// trusted address; clients come from 127.0.0.1.
					DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
					MaxIdleConnsPerHost: 64,
				},
			}
			return overTCP(t, serveOn(t, rp))
		}},
		{"in process, trusted proxy appending Forwarded", []string{"10.0.0.0/8"}, "203.0.113.9", func(t *testing.T, h http.Handler) func(*http.Request) (*http.Response, error) {
			return func(r *http.Request) (*http.Response, error) {
				// The proxy at 10.0.0.1 keeps every forged header and
				// appends the real client to Forwarded.
				r.RemoteAddr = "10.0.0.1:40000"
				if f := r.Header.Get("Forwarded"); f != "" {
					r.Header.Set("Forwarded", f+", for=203.0.113.9")
				} else {
					r.Header.Set("Forwarded", "for=203.0.113.9")
				}
				return serve(h, r).Result(), nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newLoginApp(t, memstore.New(), newClock(), resolver(t, tc.trusted...))
			var clientKeys sync.Map
			h := app.handler()
			do := tc.setup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if k, err := app.clients.ClientKey(r); err == nil {
					clientKeys.Store(k, true)
				}
				h.ServeHTTP(w, r)
			}))
			codes := hammer(t, requests, do)
			if got := app.reached.Load(); got != 5 || codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != requests-5 {
				t.Errorf("%d of %d requests reached the handler (answers %v), want exactly 5", got, requests, codes)
			}
			var keys []string
			clientKeys.Range(func(k, _ any) bool { keys = append(keys, k.(string)); return true })
			if len(keys) != 1 || keys[0] != tc.wantClient {
				t.Errorf("client keys seen: %v, want only the real client %s", keys, tc.wantClient)
			}
		})
	}
}

// serveOn serves h over TCP on 127.0.0.1 and returns its URL.
func serveOn(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = listen(t, "127.0.0.1")
	s.Start()
	t.Cleanup(s.Close)
	return s.URL
}

// overTCP returns a function that sends server-shaped requests to base
// with a client of its own.
func overTCP(t *testing.T, base string) func(*http.Request) (*http.Response, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	return func(r *http.Request) (*http.Response, error) {
		req, err := http.NewRequest(r.Method, base+r.URL.Path, r.Body)
		if err != nil {
			return nil, err
		}
		req.Header = r.Header
		return client.Do(req)
	}
}
