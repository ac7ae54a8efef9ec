package main

import (
	"net"
	"net/http"
	"strings"
)

// loopbackHostOnly guards the plain-HTTP development mode against DNS
// rebinding: a page at attacker.example whose name the attacker then points
// at 127.0.0.1 is same-origin with itself, so the browser lets its script
// post forms to this app and read the answers (sign up, guess passwords,
// use up the login limits of the only address a local user has). Such
// requests carry the attacker's host name, so only a Host that is
// "localhost" or a loopback address is served; anything else gets 421
// Misdirected Request. With TLS (or behind a trusted TLS proxy) the
// certificate names the host, and the check is not needed.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeErrorPage(w, http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (a Host header: a name or address,
// with or without a port) names this machine's loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
