package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// t0 is the fake clocks' starting time.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// A clock is a fake clock, safe for concurrent use.
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(t0) }

var discard = slog.New(slog.DiscardHandler)

func newLimiter(t testing.TB, store storage.RateStore, rule ratelimit.Rule, c *clock) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(store, rule, ratelimit.Options{Logger: discard, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newLockout(t testing.TB, store storage.LockoutStore, policy ratelimit.LockoutPolicy, c *clock) *ratelimit.Lockout {
	t.Helper()
	l, err := ratelimit.NewLockout(store, ratelimit.LockoutOptions{Policy: policy, Logger: discard, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newDevices(t testing.TB, c *clock) *ratelimit.Devices {
	t.Helper()
	d, err := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deviceKey(b byte) []byte {
	k := make([]byte, ratelimit.DeviceKeyLen)
	for i := range k {
		k[i] = b
	}
	return k
}

func resolver(t testing.TB, trusted ...string) *ratelimit.ClientResolver {
	t.Helper()
	var prefixes []netip.Prefix
	for _, s := range trusted {
		prefixes = append(prefixes, netip.MustParsePrefix(s))
	}
	c, err := ratelimit.NewClientResolver(ratelimit.ClientOptions{TrustedProxies: prefixes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// postForm is a server-shaped POST request with a url-encoded body.
func postForm(target, remoteAddr, form string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remoteAddr
	return r
}

// A flakyStore is a memstore whose rate and lockout methods fail while
// fail is set: a store that is down, full or slow.
type flakyStore struct {
	*memstore.Store
	fail  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("store down")

func (s *flakyStore) TakeRate(ctx context.Context, key []byte, req storage.RateRequest) (storage.RateResult, error) {
	s.calls.Add(1)
	if s.fail.Load() {
		return storage.RateResult{}, errDown
	}
	return s.Store.TakeRate(ctx, key, req)
}

func (s *flakyStore) ResetRate(ctx context.Context, key []byte) error {
	s.calls.Add(1)
	if s.fail.Load() {
		return errDown
	}
	return s.Store.ResetRate(ctx, key)
}

func (s *flakyStore) BeginAttempt(ctx context.Context, key []byte, req storage.LockoutRequest) (bool, storage.LockoutState, error) {
	s.calls.Add(1)
	if s.fail.Load() {
		return false, storage.LockoutState{}, errDown
	}
	return s.Store.BeginAttempt(ctx, key, req)
}

func (s *flakyStore) ResetLockout(ctx context.Context, key []byte) error {
	s.calls.Add(1)
	if s.fail.Load() {
		return errDown
	}
	return s.Store.ResetLockout(ctx, key)
}

// A logBuf collects a logger's JSON output.
type logBuf struct{ testkit.SyncBuffer }

// Events returns the events logged so far, decoded.
func (b *logBuf) Events() []map[string]any {
	var events []map[string]any
	dec := json.NewDecoder(strings.NewReader(b.String()))
	for dec.More() {
		var e map[string]any
		if err := dec.Decode(&e); err != nil {
			panic(err)
		}
		events = append(events, e)
	}
	return events
}

// Named returns the events whose message is msg.
func (b *logBuf) Named(msg string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Events() {
		if e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// captureLogs returns a JSON logger at debug level and its output.
func captureLogs() (*slog.Logger, *logBuf) {
	b := new(logBuf)
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
