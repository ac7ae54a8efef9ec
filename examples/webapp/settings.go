package main

import (
	"net/http"
)

// settingsPages are the templates of the account settings pages.
var settingsPages []string

// settingsView is what the account settings pages show.
type settingsView struct{}

// settingsRoutes adds the account settings pages.
func (a *app) settingsRoutes(mux *http.ServeMux, handle func(string, handler, func(http.Handler) http.Handler), fresh func(http.Handler) http.Handler) {
}
