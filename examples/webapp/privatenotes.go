package main

import (
	"errors"
	"net/http"

	"github.com/keyhold/keyhold/passkey"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/vault/zk"
)

// Private notes: keyhold's zero-knowledge mode (package vault/zk) beside
// the server-side notes of notes.go.
//
// The private-notes page (templates/privatenotes.html, with its module
// static/private-notes.js) does every cryptographic operation in the
// browser, through the package's client (served at
// /static/keyhold-zk.js): it makes the user's private vault under a
// passphrase of its own (never the login password, which the server sees
// at each login), shows its recovery key once, unlocks it with the
// passphrase, the recovery key or a passkey, and seals each note (its
// title and body, as JSON) into one record named n-<32 hex digits>. The
// server (zk.Server, mounted at /zk/) keeps the vault record and the
// sealed records as opaque blobs in keyhold's store, with
// compare-and-swap versions; it never receives the passphrase, the
// recovery key, a passkey's PRF output, the vault's key or a note's text,
// and cannot reset the passphrase. The page needs a logged-in session,
// not the server-side vault unlocked: the two vaults are independent.
//
// A passkey unlocks the private vault through POST /passkey/prf-options
// (passkey.Manager.PRFOptions): the options that ask the user's passkeys
// with the PRF extension for their output; the browser derives its own PRF
// input from each salt (FORMAT.md §8.3), so the output it gets is not the
// one the server-side unlock asks for, and sends nothing of it back.
//
// What the server can still do (SECURITY.md, "Zero-knowledge mode"): it
// serves the page and its scripts, so a server hostile while the user
// types the passphrase can take it; it can withhold or delete blobs, or
// serve older ones, which the page refuses, with a warning, when this
// browser saw newer ones (the client's version ledger, in localStorage,
// which logout therefore keeps: see ClearSiteData in newApp).

// setUpZK builds the zero-knowledge server on keyhold's store (its
// BlobStore), with the session manager and a limit per user of its own.
func (a *app) setUpZK(store zkStores, cfg config) error {
	var err error
	if a.zkPerUser, err = ratelimit.New(store, zk.DefaultRule(), ratelimit.Options{Logger: cfg.Logger, Now: cfg.Now}); err != nil {
		return err
	}
	a.zk, err = zk.New(zk.Config{Sessions: a.m, Store: store, Limiter: a.zkPerUser, Logger: cfg.Logger})
	return err
}

// privateNotes is the private-notes page: the script does the rest.
func (a *app) privateNotes(w http.ResponseWriter, r *http.Request) error {
	info, _ := a.m.Current(r.Context()) // RequireLogin ran
	var d pageData
	if a.passkeys != nil {
		list, err := a.passkeys.List(r.Context(), info.UserID)
		if err != nil {
			return err
		}
		for _, c := range list {
			d.PasskeyPRF = d.PasskeyPRF || c.PRF
		}
	}
	return a.render(w, r, http.StatusOK, "privatenotes", d)
}

// prfOptions answers the options with which the private-notes page asks
// one of the user's passkeys for its PRF output (to unlock the private
// vault, or to let the passkey unlock it): passkey.Manager.PRFOptions.
// Nothing is stored and no answer comes back.
func (a *app) prfOptions(w http.ResponseWriter, r *http.Request) error {
	opts, err := a.passkeys.PRFOptions(r)
	if errors.Is(err, passkey.ErrPRFUnavailable) {
		return writeJSON(w, http.StatusConflict, apiAnswer{Error: "None of your passkeys can unlock private notes: add one on the Passkeys page, on a device that supports it.", Next: ""})
	}
	if err != nil {
		return a.passkeyFailed(w, r, err, "")
	}
	return writeOptions(w, opts)
}
