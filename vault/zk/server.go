package zk

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// Defaults and bounds of Config.
const (
	// DefaultMaxRecordLen is the default bound of one sealed record.
	DefaultMaxRecordLen = 256 << 10
	// DefaultMaxRecords is the default number of live records per user.
	DefaultMaxRecords = 1000
	// MaxNameLen is the longest record name, in bytes: a record's blob
	// name is its name (storage.MaxBlobNameLen).
	MaxNameLen = storage.MaxBlobNameLen
	// MaxMaxRecords is the largest Config.MaxRecords: the status answer
	// lists every live record, and stays within what a client reads.
	MaxMaxRecords = 10000
	// maxNamesPerRecord bounds the names of a user's records, deleted
	// ones (tombstones) included, at this many times MaxRecords.
	maxNamesPerRecord = 4
	// vaultBlob is the name of the blob that holds the vault record. It
	// is outside the record names (which have no '/'), so no record can
	// take its place; every other blob is the record of its name.
	vaultBlob = "/vault"
	// envelopeHeaderLen and envelopeOverhead are those of FORMAT.md §3.3's
	// format 2: format, algorithm, u32 key version, u64 record version;
	// then nonce and tag.
	envelopeHeaderLen = 14
	envelopeOverhead  = envelopeHeaderLen + 12 + 16
)

// Header names of the HTTP API (FORMAT.md §8).
const (
	// VersionHeader carries a blob's version on answers.
	VersionHeader = "Keyhold-Version"
	// ExpectHeader carries the version a write expects to replace (0: the
	// blob must not exist yet).
	ExpectHeader = "Keyhold-Expect"
)

var (
	// ErrConfig means Config is missing something it needs.
	ErrConfig    = errors.New("zk: invalid configuration")
	errNilServer = errors.New("zk: nil *Server (the result of a failed New)")
)

// DefaultRule is the default limit of Config.Limiter's rule: 300 requests
// a minute per user, for a client that syncs a few hundred records.
func DefaultRule() ratelimit.Rule {
	return ratelimit.Rule{Name: "zk", Limit: 300, Period: time.Minute}
}

// Config configures a Server.
type Config struct {
	// Sessions is the session manager whose session.Manager.Handler
	// wraps the Server: every request must carry a complete session (not
	// one pending its second factor), whose user is the only user the
	// request reads or writes. Required.
	Sessions *session.Manager
	// Store keeps the blobs (storage.BlobStore: memstore or sqlstore).
	// Required.
	Store storage.BlobStore
	// Limiter bounds every request per user (its key is the user ID);
	// DefaultRule is a reasonable rule. Required: an unlimited endpoint
	// that writes would let one account fill the database.
	Limiter *ratelimit.Limiter
	// MaxRecordLen bounds one sealed record, in bytes (0:
	// DefaultMaxRecordLen; at most storage.MaxBlobDataLen). The vault
	// record's bound is storage.MaxBlobDataLen.
	MaxRecordLen int
	// MaxRecords bounds the live records of one user (0:
	// DefaultMaxRecords; at most MaxMaxRecords). It is checked before
	// each creation, so creations racing each other may pass it by at
	// most their number (which Limiter bounds). A user also has at most
	// four times as many names, deleted ones (tombstones) included.
	MaxRecords int
	// Logger receives input_validation_fail for each request refused as
	// malformed or over a bound (a 400, 403, 413 or 415), and
	// sys_blob_store_fail for each failure of Store (SECURITY.md, "Audit
	// events"; never a blob's bytes or a record name). The Limiter logs
	// through its own logger. nil: slog.Default().
	Logger *slog.Logger
}

// A Server is the server half of the zero-knowledge mode: an
// http.Handler that keeps a user's vault record and sealed records as
// opaque blobs, with compare-and-swap versions. Create one with New.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New returns a Server for cfg, or ErrConfig.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Sessions == nil:
		return nil, fmt.Errorf("%w: Sessions is nil", ErrConfig)
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is nil", ErrConfig)
	case cfg.Limiter == nil:
		return nil, fmt.Errorf("%w: Limiter is nil", ErrConfig)
	case cfg.MaxRecordLen < 0 || cfg.MaxRecordLen > storage.MaxBlobDataLen:
		return nil, fmt.Errorf("%w: MaxRecordLen %d is outside 0 to storage.MaxBlobDataLen", ErrConfig, cfg.MaxRecordLen)
	case cfg.MaxRecords < 0 || cfg.MaxRecords > MaxMaxRecords:
		return nil, fmt.Errorf("%w: MaxRecords %d is outside 0 to MaxMaxRecords", ErrConfig, cfg.MaxRecords)
	}
	if cfg.MaxRecordLen == 0 {
		cfg.MaxRecordLen = DefaultMaxRecordLen
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = DefaultMaxRecords
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.with(s.status))
	s.mux.HandleFunc("GET /vault", s.with(s.getVault))
	s.mux.HandleFunc("PUT /vault", s.with(s.putVault))
	s.mux.HandleFunc("GET /records/{name}", s.with(s.getRecord))
	s.mux.HandleFunc("PUT /records/{name}", s.with(s.putRecord))
	s.mux.HandleFunc("DELETE /records/{name}", s.with(s.deleteRecord))
	return s, nil
}

// ServeHTTP answers the API of FORMAT.md §8 at the request's path, which
// is relative to where the app mounts the Server: mount it with
// http.StripPrefix (say at /zk/), inside session.Manager.Handler and the
// app's CSRF protection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s == nil {
		http.Error(w, errNilServer.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// handler is one endpoint, called with the request's user.
type handler func(w http.ResponseWriter, r *http.Request, userID string) error

// apiError is an answer other than 2xx, written as JSON.
type apiError struct {
	status     int
	code       string
	version    uint64 // sent when hasVersion is set
	hasVersion bool
}

func (e *apiError) Error() string { return "zk: " + e.code }

// with checks the session and the limit, runs h and writes its error.
func (s *Server) with(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		info, ok := s.cfg.Sessions.Current(ctx)
		if !ok || info.SecondFactorPending {
			writeError(w, &apiError{status: http.StatusUnauthorized, code: "not_logged_in"})
			return
		}
		d, _ := s.cfg.Limiter.Allow(ctx, info.UserID)
		if !d.Allowed {
			ratelimit.DefaultDeny(w, r, d)
			return
		}
		err := h(w, r, info.UserID)
		if err == nil {
			return
		}
		var ae *apiError
		if errors.As(err, &ae) {
			if ae.status == http.StatusBadRequest || ae.status == http.StatusRequestEntityTooLarge ||
				ae.status == http.StatusUnsupportedMediaType || ae.status == http.StatusForbidden {
				s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "input_validation_fail",
					slog.String("user", info.UserID), slog.String("method", r.Method), slog.String("reason", ae.code))
			}
			writeError(w, ae)
			return
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "sys_blob_store_fail",
			slog.String("user", info.UserID), slog.String("method", r.Method), slog.String("error", err.Error()))
		writeError(w, &apiError{status: http.StatusServiceUnavailable, code: "unavailable"})
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"error": e.code}
	if e.hasVersion {
		body["version"] = e.version
		w.Header().Set(VersionHeader, strconv.FormatUint(e.version, 10))
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// recordInfo is one live record of the status answer.
type recordInfo struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Size    int    `json:"size"`
}

// maxRecordOvershoot bounds how far beyond MaxRecords the status answer
// lists, should creations racing each other have passed the bound.
const maxRecordOvershoot = 64

// eachRecord calls fn with each of the user's record blobs (tombstones
// included), in name order, until fn returns false.
func (s *Server) eachRecord(ctx context.Context, userID string, fn func(storage.BlobInfo) bool) error {
	after := ""
	for {
		page, err := s.cfg.Store.ListBlobs(ctx, userID, after, 256)
		if err != nil {
			return err
		}
		for _, b := range page {
			if b.Name != vaultBlob && !fn(b) {
				return nil
			}
		}
		if len(page) < 256 {
			return nil
		}
		after = page[len(page)-1].Name
	}
}

// status answers the user's ID, the vault's version and every record's.
func (s *Server) status(w http.ResponseWriter, r *http.Request, userID string) error {
	ctx := r.Context()
	var v any // null: no vault
	switch b, err := s.cfg.Store.GetBlob(ctx, userID, vaultBlob); {
	case err == nil && len(b.Data) > 0:
		v = map[string]uint64{"version": b.Version}
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	records := []recordInfo{}
	err := s.eachRecord(ctx, userID, func(b storage.BlobInfo) bool {
		if b.Size > 0 {
			records = append(records, recordInfo{Name: b.Name, Version: b.Version, Size: b.Size})
		}
		return len(records) < s.cfg.MaxRecords+maxRecordOvershoot
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":    base64.RawURLEncoding.EncodeToString([]byte(userID)),
		"vault":   v,
		"records": records,
	})
	return nil
}

// checkName refuses record names outside 1 to MaxNameLen bytes of
// [A-Za-z0-9._~-], and "." and ".." (which a browser's fetch resolves as
// path segments, so that such a record could never be read).
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen || name == "." || name == ".." {
		return &apiError{status: http.StatusBadRequest, code: "invalid_name"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
			return &apiError{status: http.StatusBadRequest, code: "invalid_name"}
		}
	}
	return nil
}

func (s *Server) getVault(w http.ResponseWriter, r *http.Request, userID string) error {
	return s.serveBlob(w, r, userID, vaultBlob)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, userID string) error {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		return err
	}
	return s.serveBlob(w, r, userID, name)
}

// serveBlob answers a blob's bytes and version, or 404 with the version
// of its tombstone.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, userID, blob string) error {
	b, err := s.cfg.Store.GetBlob(r.Context(), userID, blob)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: "not_found"}
	case err != nil:
		return err
	case len(b.Data) == 0:
		return &apiError{status: http.StatusNotFound, code: "deleted", version: b.Version, hasVersion: true}
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(VersionHeader, strconv.FormatUint(b.Version, 10))
	h.Set("Content-Length", strconv.Itoa(len(b.Data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Data)
	return nil
}

// readWrite reads a write's expected version and body (at most limit
// bytes).
func readWrite(w http.ResponseWriter, r *http.Request, limit int) (expect uint64, body []byte, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		return 0, nil, &apiError{status: http.StatusUnsupportedMediaType, code: "content_type"}
	}
	expect, err = readExpect(r)
	if err != nil {
		return 0, nil, err
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return 0, nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large"}
	case err != nil:
		return 0, nil, &apiError{status: http.StatusBadRequest, code: "body"}
	case len(body) == 0:
		return 0, nil, &apiError{status: http.StatusBadRequest, code: "empty"}
	}
	return expect, body, nil
}

// readExpect parses the Keyhold-Expect header: a decimal uint64 of at
// most 20 digits, no sign, no leading zero.
func readExpect(r *http.Request) (uint64, error) {
	v := r.Header.Values(ExpectHeader)
	bad := &apiError{status: http.StatusBadRequest, code: "expect"}
	if len(v) != 1 || v[0] == "" || len(v[0]) > 20 || (len(v[0]) > 1 && v[0][0] == '0') {
		return 0, bad
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil || n == ^uint64(0) {
		return 0, bad
	}
	return n, nil
}

// put stores data at expect+1 and answers the new version, or 409 with
// the current one.
func (s *Server) put(w http.ResponseWriter, r *http.Request, userID, blob string, data []byte, expect uint64) error {
	ctx := r.Context()
	err := s.cfg.Store.PutBlob(ctx, userID, blob, data, expect)
	if errors.Is(err, storage.ErrConflict) {
		current, gerr := s.cfg.Store.GetBlob(ctx, userID, blob)
		if gerr != nil && !errors.Is(gerr, storage.ErrNotFound) {
			return gerr
		}
		return &apiError{status: http.StatusConflict, code: "conflict", version: current.Version, hasVersion: true}
	}
	if err != nil {
		return err
	}
	w.Header().Set(VersionHeader, strconv.FormatUint(expect+1, 10))
	writeJSON(w, http.StatusOK, map[string]uint64{"version": expect + 1})
	return nil
}

func (s *Server) putVault(w http.ResponseWriter, r *http.Request, userID string) error {
	expect, body, err := readWrite(w, r, storage.MaxBlobDataLen)
	if err != nil {
		return err
	}
	keyVersion, err := vault.RecordKeyVersion(body)
	if err != nil {
		return &apiError{status: http.StatusBadRequest, code: "invalid_record"}
	}
	if expect > 0 {
		// An honest client never moves the key version back; refusing it
		// here keeps a buggy one from doing so (a dishonest server is
		// what the client's own check is for).
		old, err := s.cfg.Store.GetBlob(r.Context(), userID, vaultBlob)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err == nil && old.Version == expect && len(old.Data) > 0 {
			if oldVersion, err := vault.RecordKeyVersion(old.Data); err == nil && keyVersion < oldVersion {
				return &apiError{status: http.StatusBadRequest, code: "key_version_decreased"}
			}
		}
	}
	return s.put(w, r, userID, vaultBlob, body, expect)
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request, userID string) error {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		return err
	}
	expect, body, err := readWrite(w, r, s.cfg.MaxRecordLen)
	if err != nil {
		return err
	}
	if len(body) < envelopeOverhead || body[0] != 2 || body[1] != 1 || binary.BigEndian.Uint32(body[2:6]) == 0 {
		return &apiError{status: http.StatusBadRequest, code: "invalid_record"}
	}
	if binary.BigEndian.Uint64(body[6:14]) != expect+1 {
		return &apiError{status: http.StatusBadRequest, code: "version_mismatch"}
	}
	if err := s.checkRoom(r.Context(), userID, name); err != nil {
		return err
	}
	return s.put(w, r, userID, name, body, expect)
}

// checkRoom refuses a write that would make name a live record when the
// user has MaxRecords live ones already, or a new name when the user has
// maxNamesPerRecord times MaxRecords names, deleted ones included (each
// keeps its tombstone).
func (s *Server) checkRoom(ctx context.Context, userID, name string) error {
	b, err := s.cfg.Store.GetBlob(ctx, userID, name)
	switch {
	case err == nil && len(b.Data) > 0:
		return nil // a replacement adds no record
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	newName := err != nil // a tombstone's name is counted already
	live, names := 0, 0
	full := false
	err = s.eachRecord(ctx, userID, func(b storage.BlobInfo) bool {
		names++
		if b.Size > 0 {
			live++
		}
		full = live >= s.cfg.MaxRecords || newName && names >= maxNamesPerRecord*s.cfg.MaxRecords
		return !full
	})
	if err != nil {
		return err
	}
	if full {
		return &apiError{status: http.StatusForbidden, code: "too_many_records"}
	}
	return nil
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request, userID string) error {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		return err
	}
	expect, err := readExpect(r)
	if err != nil {
		return err
	}
	if expect == 0 {
		return &apiError{status: http.StatusBadRequest, code: "expect"}
	}
	return s.put(w, r, userID, name, nil, expect)
}

// Delete removes every blob of the user, the vault record and the sealed
// records with their tombstones (account deletion: vault/account's Delete
// calls it when Parts.ZeroKnowledge is set). Deleting the vault record
// destroys the wrapped master key: the records, wherever copies of them
// remain, no longer open. It does not reset Config.Limiter, whose key is
// the user ID (not the account name that account.Parts.Limiters are
// reset with): call its Reset with the user ID too.
func (s *Server) Delete(ctx context.Context, userID string) error {
	if s == nil {
		return errNilServer
	}
	return s.cfg.Store.DeleteBlobs(ctx, userID)
}
