// Package session gives an app server-side sessions with lock/unlock
// custody of the user's vault, API tokens, and the middleware around them.
//
// For most use cases, create one [Manager] with [New], wrap the app's
// handlers with [Manager.Handler] (inside [net/http.CrossOriginProtection]
// and [SecurityHeaders]), call [Manager.Login] once the user has
// authenticated, [Manager.Unlock] once they have unlocked their vault, and
// guard routes with [Manager.RequireLogin], [Manager.RequireUnlocked] and
// [Manager.RequireFresh]:
//
//	mux.Handle("POST /notes", m.RequireUnlocked(notesHandler))
//	handler := session.SecurityHeaders(session.Headers{},
//		http.NewCrossOriginProtection().Handler(m.Handler(mux)))
//
// # Second factors
//
// For a user enrolled in a second factor, call Login after the password
// with [LoginOptions].SecondFactorPending: the session is rated no higher
// than that one factor (SES-13). RequireLogin, RequireUnlocked and
// RequireFresh refuse it with [ErrSecondFactorRequired] (DenyHandler
// redirects to the second factor's page, guarded by
// [Manager.RequireFirstFactor]); once the app has checked the code or
// passkey, [Manager.SecondFactorVerified] (with the [Factors] proved, such
// as [FactorTOTP]) re-issues the token and the session is complete
// ([Info].MultiFactor). A pending login lasts [PendingLifetime] (5
// minutes) at most. After each wrong code call
// [Manager.SecondFactorFailed]: the failure that reaches
// Config.MaxSecondFactorFailures (3) ends the login and tells
// Config.Notifier (keyhold.PartialAuthentication, TOT-13).
//
// Every session records the factors that authenticated it
// ([Info].Factors: [LoginOptions].Factor, password by default, plus those
// SecondFactorVerified added); [Manager.RequireMultiFactor] lets only
// multi-factor sessions through, refusing others with
// [ErrMultiFactorRequired].
//
// # Tokens
//
// A session is named by a 256-bit token from crypto/rand, sent as the
// cookie's value (43 characters of base64url) or as a bearer access token.
// The store keys sessions by a SHA-256 hash of a label and the token and
// never sees the token. An unknown, expired or malformed token is never
// adopted: the request has no session, and a cookie naming none is
// cleared. The token is re-issued at login, at unlock, at reauthentication
// (step-up) and by [Manager.Renew] on every privilege change.
//
// The cookie is "__Host-keyhold": Secure, HttpOnly, SameSite=Lax, Path=/,
// no Domain; it is a session cookie unless the login asked to be
// remembered, and even then the server's deadlines, not the cookie's
// expiry, end the session. Cookies are neither issued nor accepted over
// plain HTTP; behind a TLS-terminating proxy, list it in
// Config.TrustedProxies. Config.AllowInsecureCookies is for plain-HTTP
// development on localhost only.
//
// # Timeouts
//
// A session ends after Config.IdleTimeout without a request (30 minutes)
// and Config.Lifetime after its login or last reauthentication (24 hours),
// whichever comes first; a remembered login uses RememberLifetime (30
// days) and RememberIdleTimeout instead. Sliding renewal writes the store
// at most once per Config.TouchInterval (1 minute) per session, so the
// idle deadline may fall up to that much early.
//
// # Custody of the vault's keys
//
// While unlocked, a session's record holds the vault's keys sealed
// ([vault.Unlocked.SealForCustody]) under a key derived by HKDF from the
// session's token, bound to the session's ID and user. Each request that
// needs the vault re-derives the key from its cookie and opens them
// ([Manager.Unlocked]); the vault is locked again when the request ends.
// Neither the store alone (it has no token) nor an old cookie alone (its
// record is gone) opens them. Lock, logout, revocation and both timeouts
// delete them, and Config.LockAfter (15 minutes) locks an unlocked session
// that has been idle that long while it stays logged in. Any instance
// sharing the store can serve an unlocked request, and a restart loses
// nothing.
//
// # API clients
//
// [Manager.IssueTokens] gives an API client a bearer access token (15
// minutes) and a refresh token (valid 7 days unused, its family at most 30
// days), both stored as hashes. [Manager.Refresh] rotates them on every
// use; presenting a refresh token a second time revokes its whole family
// ([ErrTokenReused], RFC 9700 §4.14.2). Nothing issued from a revoked
// family outlives the revocation, even one racing a rotation, nor a
// previous access token whose deletion a hung-up or failed refresh left
// undone. Each family has a device record in the session store (not a
// session: no token names it), so an API client is listed by
// [Manager.Devices], counts against Config.MaxSessionsPerUser and can be
// ended by [Manager.Revoke] for as long as its family lives, not only
// while it holds an unexpired access token (FORMAT.md §4.3).
//
// # Devices and concurrent requests
//
// [Manager.Devices] lists a user's sessions, each with a Ref that stays
// the same for the session's whole life (unlocking, reauthenticating,
// renewing and refreshing re-issue the token, not the Ref); an API
// client's Ref stays the same across refreshes. [Manager.Revoke] ends the
// session with a Ref, and answers [ErrNoSuchSession] for one that has
// ended or never existed: user input, for which an app shows a friendly
// page. [Manager.RevokeOthers] and [Manager.RevokeAll] delete and list
// again until nothing is left to end, so a device that re-issues its
// token while they run (a new ID under the same Ref) ends too. Once
// begun, a revocation, and the clean-up after a committed rotation, runs
// to its end even if the request's client hangs up. Every write of a session that a request read earlier (the "last
// seen" touch, locking, re-issuing) is conditional on the version it read
// (storage.Session.Version), so a logout, revocation or lock that lands
// meanwhile is never undone: the request reads again and finds the
// session ended (it is then anonymous, and its cookie is cleared) or
// locked.
//
// # One-time tokens and redirects
//
// [Manager.NewOneTimeTokens] issues single-use links for password reset,
// e-mail verification or magic links: 256-bit tokens stored only as
// hashes, bound to a user and a purpose, short-lived (at most 24 hours),
// taken atomically by [OneTimeTokens.Consume], and built from the
// configured base URL, never from the request's Host. Consuming one never
// logs anyone in. [SafeRedirect] keeps a post-login "next" parameter on
// this site.
//
// # Audit events
//
// The Manager logs slog records named in the OWASP Logging Vocabulary's
// style: session_created (Login), session_renewed (Renew,
// Reauthenticate), session_expired (logout, timeout, revocation, the
// session limit: see its "reason"), crypt_vault_unlocked and
// crypt_vault_locked, authn_token_created, authn_token_rotated and
// authn_token_reuse (refresh tokens), authn_onetime_created and
// authn_onetime_consumed (one-time tokens), session_malformed and
// sys_store_fail; each with the user ID ("user"), the session's Ref
// ("session", 96 bits unrelated to its token; see Info.Ref) where there is
// one, the client IP ("ip") when the event comes from a request, and a
// "reason" where an event has more than one cause. SECURITY.md, "Audit
// events", lists every event of the library with its level and fields.
// No token, key or password reaches a log.
//
// # What this package does not do
//
// It does not authenticate users (check passwords with package kdf before
// Login, and second factors before SecondFactorVerified) and does not rate-limit (package
// ratelimit). It does not protect against a thief who holds a live cookie
// and uses it before the session ends, nor against code running in the
// server process. Anyone who can write to the session store can create or
// alter sessions (but cannot open the vault keys of sessions it did not
// create). Device details (IP, User-Agent) are stored in the clear.
package session
