package passkey_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
)

// A usernameless sign-in begins with options that name no one: no
// allowCredentials (the browser offers the passkeys it holds for the RP
// ID), user verification required, a 32-byte challenge that stays on the
// server, bound to a cookie of this browser. Nothing in them depends on
// who asks, so they reveal no account (PKY-16).
func ExampleManager_BeginLogin() {
	store := memstore.New()
	sessions, err := session.New(store, session.Config{})
	if err != nil {
		panic(err)
	}
	pk, err := passkey.New(passkey.Config{
		RPID:       "example.com",
		Origins:    []string{"https://example.com"},
		Store:      store,
		Challenges: store,
		Sessions:   sessions,
	})
	if err != nil {
		panic(err)
	}

	// What an app's POST /passkey/login/begin handler does.
	r := httptest.NewRequest(http.MethodPost, "https://example.com/passkey/login/begin", nil)
	w := httptest.NewRecorder()
	options, err := pk.BeginLogin(w, r)
	if err != nil {
		panic(err)
	}

	var o struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			AllowCredentials []any  `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		panic(err)
	}
	cookie := w.Result().Cookies()[0]
	fmt.Println("rpId:", o.PublicKey.RPID)
	fmt.Println("userVerification:", o.PublicKey.UserVerification)
	fmt.Println("allowCredentials:", len(o.PublicKey.AllowCredentials))
	fmt.Println("challenge characters:", len(o.PublicKey.Challenge))
	fmt.Println("cookie:", cookie.Name, cookie.HttpOnly, cookie.Secure, cookie.SameSite == http.SameSiteStrictMode)

	// A request to an origin not in Config.Origins begins nothing.
	evil := httptest.NewRequest(http.MethodPost, "https://example.com.evil.test/passkey/login/begin", nil)
	_, err = pk.BeginLogin(httptest.NewRecorder(), evil)
	fmt.Println(err)
	// Output:
	// rpId: example.com
	// userVerification: required
	// allowCredentials: 0
	// challenge characters: 43
	// cookie: __Host-keyhold-passkey true true true
	// passkey: request origin not allowed
}
