package main

import (
	"bytes"
	"errors"
	"mime"
	"net/http"
	"strings"
)

// styledErrors answers with the app's error page where a handler in front
// of the app's own (the cross-origin protection, the mux, the file server)
// or a handler's http.Error would answer with plain text: an answer of
// status 400 or more whose Content-Type is text/plain becomes the error
// page (templates/error.html in the layout, as fail renders it), with the
// same status and the same headers (Allow on a 405, Retry-After), and a
// message for a person in place of the plain text. Answers in HTML, JSON
// or anything else pass as they are, and so does everything under /zk/
// and /passkey/: those are JSON APIs, whose clients read their answers.
//
// It also reads a posted form before the handlers do, so that a form over
// the request's size limit (http.MaxBytesReader, set in newApp) gets a 413
// page, and one that cannot be parsed a 400 page, instead of reaching a
// handler as an empty form.
func (a *app) styledErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rawAPI(r) {
			h.ServeHTTP(w, r)
			return
		}
		if status, ok := formError(r); !ok {
			writeErrorPage(w, status)
			return
		}
		sw := &styledWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
	})
}

// rawAPI reports a request to the JSON APIs, whose answers styledErrors
// leaves alone.
func rawAPI(r *http.Request) bool {
	return isAPI(r) || r.URL.Path == "/zk" || strings.HasPrefix(r.URL.Path, "/zk/")
}

// formError parses the body of a posted form (application/x-www-form-
// urlencoded; nothing else is read) and returns the status of the page
// that refuses it: 413 for a body over the size limit, 400 for one that
// does not parse (or a query that does not).
func formError(r *http.Request) (status int, ok bool) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return 0, true
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return 0, true
	}
	if err := r.ParseForm(); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return http.StatusRequestEntityTooLarge, false
		}
		return http.StatusBadRequest, false
	}
	return 0, true
}

// errorMessage is what the error page says for an answer of this status
// that would have been plain text.
func errorMessage(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "Your browser sent a form this app could not read. Please go back, check what you entered, and send it again."
	case http.StatusForbidden:
		return "This request was refused: it did not come from this app's own pages. Please go back, reload the page, and try again."
	case http.StatusNotFound:
		return "There is no page at this address."
	case http.StatusMethodNotAllowed:
		return "This address cannot be used that way: please use the app's links and buttons."
	case http.StatusRequestEntityTooLarge:
		return "What you sent is too large for this app (the limit is 1 MB). Please make it shorter and try again."
	case http.StatusTooManyRequests:
		return "Too many requests. Please wait a moment and try again."
	case http.StatusMisdirectedRequest:
		return "This app answers only at localhost or a loopback address in development mode. Please open it at the address it printed when it started."
	case http.StatusServiceUnavailable:
		return "We are busy right now. Please try again in a few seconds."
	}
	if status >= 500 {
		return "Something went wrong on our side. Please try again."
	}
	if text := http.StatusText(status); text != "" {
		return "This request could not be served (" + text + "). Please go back and try again."
	}
	return "This request could not be served. Please go back and try again."
}

// writeErrorPage answers with the error page for status, keeping the
// headers already set but those of the plain answer's body.
func writeErrorPage(w http.ResponseWriter, status int) {
	msg := errorMessage(status)
	var buf bytes.Buffer
	h := w.Header()
	h.Del("Content-Length")
	// The page is rendered without the user's name: the request may not
	// have reached the session middleware.
	if pages["error"].ExecuteTemplate(&buf, "layout", pageData{Title: msg}) != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w) // an error here is the client gone
}

// styledWriter turns a plain-text error answer into the error page: at
// WriteHeader it looks at the status and the Content-Type set so far, and
// when it takes the answer over, it drops the plain text written after.
type styledWriter struct {
	http.ResponseWriter
	wrote  bool // the status is decided
	styled bool // the answer is the error page; later writes are dropped
}

// WriteHeader sends the error page for a plain-text status of 400 or
// more, and the status as it is otherwise.
func (s *styledWriter) WriteHeader(code int) {
	if s.wrote || code < 200 { // a second call (net/http logs it), or 1xx
		if !s.styled {
			s.ResponseWriter.WriteHeader(code)
		}
		return
	}
	s.wrote = true
	if code >= 400 && strings.HasPrefix(s.Header().Get("Content-Type"), "text/plain") {
		s.styled = true
		writeErrorPage(s.ResponseWriter, code)
		return
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write writes b, or drops it after the error page was sent.
func (s *styledWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	if s.styled {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}

// Flush sends what was written so far (a status of 200 if none was
// written), as http.Flusher.
func (s *styledWriter) Flush() {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap is the underlying writer, for http.ResponseController.
func (s *styledWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
