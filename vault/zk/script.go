package zk

import (
	_ "embed"
	"net/http"

	"github.com/keyhold/keyhold/internal/jsmodule"
)

// clientJS is the zero-knowledge browser client (client.js).
//
//go:embed client.js
var clientJS []byte

// ScriptHandler returns a handler that serves this package's browser
// client, an ES module without dependencies (text/javascript;
// charset=utf-8) that does every cryptographic operation of the
// zero-knowledge mode in the browser with WebCrypto and talks to a
// Server. Mount it on the app's own origin (say at
// /static/keyhold-zk.js) so that a Content-Security-Policy of script-src
// 'self' allows it, and import it from a module script:
//
//	import * as zk from "/static/keyhold-zk.js";
//	const client = new zk.Client({base: "/zk"});
//	const {vault, recoveryKeys} = await client.createVault(passphrase);
//
// The script's JSDoc describes each export. The answers carry a strong
// ETag and "Cache-Control: no-cache"; only GET and HEAD are allowed.
func ScriptHandler() http.Handler { return jsmodule.Handler(clientJS) }
