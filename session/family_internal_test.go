package session

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// familyOf returns the store ID of the refresh token's family.
func familyOf(t *testing.T, refreshToken string) []byte {
	t.Helper()
	famRaw, _, ok := parseRefreshToken(refreshToken)
	if !ok {
		t.Fatal("unparseable refresh token")
	}
	return familyStoreID(famRaw)
}

// loggedIn reports whether a request with the header is logged in.
func loggedIn(m *Manager, header, value string) bool {
	ok := false
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, ok = m.Current(r.Context()) }))
	req := httptest.NewRequest("GET", "https://app.example/", nil)
	req.TLS = &tls.ConnectionState{}
	req.Header.Set(header, value)
	h.ServeHTTP(httptest.NewRecorder(), req)
	return ok
}

// F4: a family's device record is never taken for a session. Its ID is no
// token's session ID (another label), and even copied under a token's ID
// (by someone who can write to the store) its kind is refused for a
// cookie and for a bearer token alike.
func TestDeviceRecordIsNeverASession(t *testing.T) {
	store := memstore.New()
	m, err := New(store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := m.IssueTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	famID := familyOf(t, pair.RefreshToken)
	dev, err := store.GetSession(t.Context(), familyDeviceID(famID))
	if err != nil {
		t.Fatalf("the family's device record: %v", err)
	}
	if rec, err := decodeRecord(dev.ID, dev.Data); err != nil || rec.kind != kindFamily || len(rec.custody) != 0 {
		t.Fatalf("device record %+v, %v", rec, err)
	}
	token := newToken()
	for _, k := range []kind{kindCookie, kindBearer} {
		id := sessionID(k, token)
		if err := store.PutSession(t.Context(), storage.Session{ID: id, UserID: "alice", Expires: dev.Expires, Data: dev.Data}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if loggedIn(m, "Cookie", DefaultCookieName+"="+b64.EncodeToString(token)) {
		t.Error("a device record under a cookie's session ID was accepted as a login")
	}
	if loggedIn(m, "Authorization", "Bearer "+b64.EncodeToString(token)) {
		t.Error("a device record under an access token's session ID was accepted as a login")
	}
}

// F4: a family stored before device records (format 1) keeps working: its
// next rotation creates its device record. A family of format 2 whose
// device record is gone (revoked) refuses to rotate.
func TestFamilyWithoutDeviceRecord(t *testing.T) {
	store := memstore.New()
	m, err := New(store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pair, err := m.IssueTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	famID := familyOf(t, pair.RefreshToken)
	devID := familyDeviceID(famID)
	// Make it a family of the previous release: format 1, no device record.
	stored, err := store.GetRefreshFamily(ctx, famID)
	if err != nil {
		t.Fatal(err)
	}
	stored.Data[0] = familyRecordVersionV1
	if err := store.PutRefreshFamily(ctx, stored, stored.Version); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteSession(ctx, devID); err != nil {
		t.Fatal(err)
	}
	if pair, err = m.Refresh(ctx, pair.RefreshToken); err != nil {
		t.Fatalf("Refresh of a format 1 family: %v", err)
	}
	if _, err := store.GetSession(ctx, devID); err != nil {
		t.Fatalf("the device record after the first rotation: %v", err)
	}
	if d, err := m.Devices(ctx, "alice"); err != nil || len(d) != 1 {
		t.Fatalf("devices: %+v, %v", d, err)
	}
	// Now of format 2: without its device record it does not rotate.
	if err := store.DeleteSession(ctx, devID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Refresh(ctx, pair.RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Refresh of a format 2 family without its device record: %v, want ErrInvalidToken", err)
	}
}

// F4: a device record that a revocation deleted between a rotation's read
// of it and its write is not brought back, and the rotation fails.
func TestRotationDoesNotRestoreRevokedDeviceRecord(t *testing.T) {
	store := &pauseStore{Store: memstore.New()}
	m, err := New(store, Config{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := m.IssueTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ref := ref(familyOf(t, pair.RefreshToken))
	store.afterGet = func() {
		if err := m.Revoke(context.Background(), "alice", ref); err != nil {
			t.Errorf("Revoke: %v", err)
		}
	}
	if _, err := m.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Refresh racing Revoke: %v, want ErrInvalidToken", err)
	}
	if store.afterGet != nil {
		t.Fatal("the hook did not run")
	}
	if d, err := m.Devices(t.Context(), "alice"); err != nil || len(d) != 0 {
		t.Errorf("devices after the race: %+v, %v; want none", d, err)
	}
}

// pauseStore runs afterGet once, after the first GetSession of a device
// record.
type pauseStore struct {
	Store
	afterGet func()
}

func (s *pauseStore) GetSession(ctx context.Context, id []byte) (storage.Session, error) {
	r, err := s.Store.GetSession(ctx, id)
	if f := s.afterGet; f != nil && err == nil {
		if rec, derr := decodeRecord(id, r.Data); derr == nil && rec.kind == kindFamily {
			s.afterGet = nil
			f()
		}
	}
	return r, err
}
