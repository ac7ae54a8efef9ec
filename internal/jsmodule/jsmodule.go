// Package jsmodule serves keyhold's embedded browser modules (package
// passkey's and package zk's client.js) from the application's origin.
package jsmodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// Handler serves src as a JavaScript module (text/javascript;
// charset=utf-8) with a strong ETag (its SHA-256, shortened) and
// "Cache-Control: no-cache", so that browsers revalidate and pick up a new
// version at once, and "X-Content-Type-Options: nosniff". Only GET and
// HEAD are allowed (405 otherwise).
func Handler(src []byte) http.Handler {
	sum := sha256.Sum256(src)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(src))
	})
}
