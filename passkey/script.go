package passkey

import (
	_ "embed"
	"net/http"

	"github.com/keyhold/keyhold/internal/jsmodule"
)

// clientJS is the browser side of the ceremonies (client.js).
//
//go:embed client.js
var clientJS []byte

// ScriptHandler returns a handler that serves this package's browser
// client, an ES module without dependencies (text/javascript; charset=utf-8)
// that runs each ceremony against the app's handlers: register, login,
// unlock, stepUp, supported and prfLikely. Mount it on the app's own origin (say
// at /static/keyhold-passkey.js) so that a Content-Security-Policy of
// script-src 'self' allows it, and import it from a module script:
//
//	import * as passkey from "/static/keyhold-passkey.js";
//	const cred = await passkey.register({begin: "/passkey/register/begin", finish: "/passkey/register/finish", name: "Laptop"});
//
// Each ceremony POSTs to its begin URL with an empty body and expects the
// bytes the Begin call returned (Content-Type application/json); then it
// POSTs the browser's answer, as WebAuthn Level 3 JSON, to its finish URL
// as the request body, which the app reads (at most MaxResponseLen bytes)
// and gives to the Finish call. register sends the passkey's name as the
// finish URL's "name" query parameter, login sends "remember=1" when
// asked to. Every call resolves to the finish answer's JSON, or throws a
// PasskeyError carrying the status and body of a non-2xx answer (or the
// browser's DOMException, "NotAllowedError" when the user cancels). The
// script's JSDoc describes each function.
//
// The answers carry a strong ETag and "Cache-Control: no-cache": browsers
// revalidate, so a new version of the module is picked up at once. Only
// GET and HEAD are allowed.
func ScriptHandler() http.Handler { return jsmodule.Handler(clientJS) }
