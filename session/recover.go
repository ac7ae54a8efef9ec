package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// ErrPanicked is the error Config.DenyHandler gets when the handler behind
// [Manager.Handler] panicked. It carries nothing of the panic: answer it
// with a generic 500 (the default DenyHandler does).
var ErrPanicked = errors.New("session: the handler panicked")

// recoverPanic answers a request whose handler panicked with p: the
// request ends unauthenticated and its client learns nothing. The session
// cookie queued by the request is not sent, a session that the request
// created or re-issued is deleted (its token never reached the client),
// and, if no header has been sent yet, Config.DenyHandler answers with
// ErrPanicked (the default: a plain "500 internal server error"), with no
// Set-Cookie header. If the response had already begun, the connection is
// cut (http.ErrAbortHandler). The panic is logged as sys_crash with its
// type and stack, never its value, which may hold a secret.
func (m *Manager) recoverPanic(sw *responseWriter, r *http.Request, p any) {
	if p == http.ErrAbortHandler {
		panic(p) // the handler chose to abort: net/http handles it quietly
	}
	st := sw.st
	st.mu.Lock()
	written := st.written
	st.written = true // no cookie, no Clear-Site-Data from now on
	var created []byte
	if st.cookie != nil && st.cookie.MaxAge >= 0 && st.rec != nil {
		created = st.id
	}
	st.cookie = nil
	attrs := []slog.Attr{slog.String("panic", fmt.Sprintf("%T", p))}
	if st.userID != "" {
		attrs = append(attrs, slog.String("user", st.userID))
	}
	if st.rec != nil {
		attrs = append(attrs, slog.String("session", ref(st.rec.ref)))
	}
	st.mu.Unlock()
	ctx := context.WithoutCancel(r.Context())
	m.log.LogAttrs(ctx, slog.LevelError, "sys_crash", append(attrs, slog.String("stack", string(debug.Stack())))...)
	if created != nil {
		if err := m.store.DeleteSession(ctx, created); err != nil {
			m.log.LogAttrs(ctx, slog.LevelWarn, "sys_store_fail", append(attrs, slog.String("op", "delete_session"), slog.String("error", err.Error()))...)
		}
	}
	if written {
		panic(http.ErrAbortHandler)
	}
	h := sw.ResponseWriter.Header()
	h.Del("Set-Cookie")
	h.Del("Clear-Site-Data")
	h.Set("Cache-Control", "no-store")
	m.cfg.DenyHandler(sw.ResponseWriter, r, ErrPanicked)
}
