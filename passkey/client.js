// keyhold passkey client: the browser side of package passkey's
// ceremonies, as one ES module without dependencies. Serve it from the
// app's own origin with passkey.ScriptHandler (so that a Content Security
// Policy of script-src 'self' allows it) and import it:
//
//	import * as passkey from "/static/keyhold-passkey.js";
//	await passkey.login({ begin: "/passkey/login/begin", finish: "/passkey/login/finish" });
//
// Each ceremony is two same-origin POSTs. The first goes to `begin` with
// an empty body; the server answers with what the Begin* call returned
// (the JSON {"publicKey": {...}} of go-webauthn, binary fields unpadded
// base64url). The module turns that into the arguments of
// navigator.credentials.create or .get, runs the browser's ceremony,
// writes the PublicKeyCredential out as WebAuthn Level 3 JSON by hand
// (binary fields unpadded base64url, PRF outputs included, since not
// every browser's toJSON encodes extension outputs) and POSTs it to
// `finish` as the body (Content-Type: application/json), which the app's
// handler reads, bounded by passkey.MaxResponseLen, and gives to the
// Finish* call. Extra inputs go in the finish URL's query: `name` for
// register (the passkey's name; read it with r.URL.Query().Get("name")),
// `remember=1` for login when asked for.
//
// Each function resolves to the finish answer's JSON (null for an empty
// body), or rejects: with a PasskeyError (status and text of the
// server's answer) when begin or finish answers otherwise than 2xx, or
// with the browser's DOMException when the ceremony itself fails
// ("NotAllowedError" when the user cancels or the time runs out,
// "InvalidStateError" when the authenticator already holds a passkey in
// excludeCredentials).
//
// The PRF outputs the module sends to `finish` are key material: they
// exist only in this page, the request body and the server's memory.

/**
 * Options shared by every ceremony.
 * @typedef {object} CeremonyOptions
 * @property {string} begin URL of the app's begin handler (same origin).
 * @property {string} finish URL of the app's finish handler (same origin).
 * @property {RequestInit} [fetchOptions] Merged into both fetches: extra
 *   headers (a CSRF token), a signal (it also aborts the browser's
 *   ceremony). Method, body, credentials and mode are the module's.
 */

/**
 * @typedef {CeremonyOptions & {name: string, keepPRF?: boolean}} RegisterOptions
 *   name: what the user calls the new passkey, sent to finish as the
 *   `name` query parameter.
 *   keepPRF: leave the PRF output out of what is sent to finish (the
 *   server still learns that the passkey has the extension, and records
 *   its salt). For a zero-knowledge vault (package zk), whose passkey
 *   slot the browser adds itself: the server must never see the output.
 */

/**
 * @typedef {CeremonyOptions & {remember?: boolean, mediation?: CredentialMediationRequirement}} LoginOptions
 *   remember: sent to finish as `remember=1` (a remembered session).
 *   mediation: passed to navigator.credentials.get ("conditional" for
 *   passkey autofill on an input with autocomplete="username webauthn").
 */

/** An answer of the app's server that was not 2xx. */
export class PasskeyError extends Error {
  /**
   * @param {string} message
   * @param {number} status HTTP status of the server's answer.
   * @param {string} text Body of the server's answer (at most 1000 characters).
   */
  constructor(message, status, text) {
    super(message);
    this.name = "PasskeyError";
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.text = text;
  }
}

/**
 * Reports whether the browser has WebAuthn (a secure context with
 * PublicKeyCredential and navigator.credentials).
 * @returns {boolean}
 */
export function supported() {
  return typeof globalThis.PublicKeyCredential === "function" &&
    typeof globalThis.navigator?.credentials?.create === "function" &&
    typeof globalThis.navigator?.credentials?.get === "function";
}

/**
 * Reports whether the browser says it supports the PRF extension (which
 * unlocking the vault with a passkey needs), from
 * PublicKeyCredential.getClientCapabilities: true or false when the
 * browser tells, undefined when it cannot. Only the authenticator, at
 * registration, says for sure (prf.enabled).
 * @returns {Promise<boolean | undefined>}
 */
export async function prfLikely() {
  if (!supported() || typeof PublicKeyCredential.getClientCapabilities !== "function") return undefined;
  try {
    const caps = await PublicKeyCredential.getClientCapabilities();
    const v = caps?.["extension:prf"];
    return typeof v === "boolean" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Adds a passkey for the logged-in user: begin (BeginRegistration),
 * navigator.credentials.create, finish (FinishRegistration) with the
 * passkey's name in the `name` query parameter.
 * @param {RegisterOptions} opts
 * @returns {Promise<any>} The finish answer's JSON.
 */
export async function register({ begin, finish, name, keepPRF, fetchOptions }) {
  if (typeof name !== "string" || name === "") throw new TypeError("passkey: register needs a name");
  const options = await post(begin, undefined, fetchOptions);
  const publicKey = await withOwnPRFInputs(creationOptions(field(options, "publicKey")));
  const cred = await navigator.credentials.create(withSignal({ publicKey }, fetchOptions));
  if (!cred) throw new Error("passkey: the browser returned no credential");
  const answer = registrationJSON(/** @type {PublicKeyCredential} */ (cred));
  if (keepPRF && answer.clientExtensionResults?.prf) delete answer.clientExtensionResults.prf.results;
  return post(withQuery(finish, { name }), answer, fetchOptions);
}

/**
 * Signs in with a passkey, without a user name: begin (BeginLogin),
 * navigator.credentials.get (the browser offers the passkeys it holds
 * for the site), finish (FinishLogin), with `remember=1` in the query
 * when remember is set.
 * @param {LoginOptions} opts
 * @returns {Promise<any>} The finish answer's JSON.
 */
export async function login({ begin, finish, remember, mediation, fetchOptions }) {
  const options = await post(begin, undefined, fetchOptions);
  const publicKey = requestOptions(field(options, "publicKey"));
  if (publicKey.extensions) delete /** @type {any} */ (publicKey.extensions).prf; // a sign-in needs no PRF output
  const args = withSignal({ publicKey }, fetchOptions);
  const m = mediation ?? options.mediation;
  if (m) args.mediation = m;
  const cred = await navigator.credentials.get(args);
  if (!cred) throw new Error("passkey: the browser returned no credential");
  return post(withQuery(finish, remember ? { remember: "1" } : {}), assertionJSON(/** @type {PublicKeyCredential} */ (cred)), fetchOptions);
}

/**
 * Unlocks the session's vault with a passkey (or sets the passkey up to
 * unlock it when the vault is unlocked already): begin (BeginUnlock),
 * navigator.credentials.get with the PRF extension, finish
 * (FinishUnlock).
 * @param {CeremonyOptions} opts
 * @returns {Promise<any>} The finish answer's JSON.
 */
export async function unlock({ begin, finish, fetchOptions }) {
  const options = await post(begin, undefined, fetchOptions);
  const publicKey = await withOwnPRFInputs(requestOptions(field(options, "publicKey")));
  const cred = await navigator.credentials.get(withSignal({ publicKey }, fetchOptions));
  if (!cred) throw new Error("passkey: the browser returned no credential");
  return post(finish, assertionJSON(/** @type {PublicKeyCredential} */ (cred)), fetchOptions);
}

/**
 * Re-authenticates the signed-in user with one of their passkeys, for a
 * step-up before a sensitive change or as the second factor of a login
 * pending one: begin (BeginStepUp), navigator.credentials.get with the
 * user's passkeys listed, finish (FinishStepUp).
 * @param {CeremonyOptions} opts
 * @returns {Promise<any>} The finish answer's JSON.
 */
export async function stepUp({ begin, finish, fetchOptions }) {
  return unlock({ begin, finish, fetchOptions });
}

// ---- options: JSON to the browser's arguments ----

/**
 * @param {any} o
 * @param {string} k
 * @returns {any}
 */
function field(o, k) {
  if (o === null || typeof o !== "object" || o[k] === null || typeof o[k] !== "object") {
    throw new Error("passkey: the server's options have no " + k);
  }
  return o[k];
}

/**
 * PublicKeyCredentialCreationOptionsJSON to PublicKeyCredentialCreationOptions.
 * @param {any} o
 * @returns {PublicKeyCredentialCreationOptions}
 */
function creationOptions(o) {
  const out = { ...o, challenge: unb64u(o.challenge), user: { ...field(o, "user"), id: unb64u(o.user.id) } };
  if (Array.isArray(o.excludeCredentials)) out.excludeCredentials = o.excludeCredentials.map(descriptor);
  if (o.extensions) out.extensions = extensionInputs(o.extensions);
  return out;
}

/**
 * PublicKeyCredentialRequestOptionsJSON to PublicKeyCredentialRequestOptions.
 * @param {any} o
 * @returns {PublicKeyCredentialRequestOptions}
 */
function requestOptions(o) {
  const out = { ...o, challenge: unb64u(o.challenge) };
  if (Array.isArray(o.allowCredentials)) out.allowCredentials = o.allowCredentials.map(descriptor);
  if (o.extensions) out.extensions = extensionInputs(o.extensions);
  return out;
}

/** @param {any} d */
function descriptor(d) {
  return { ...d, id: unb64u(d.id) };
}

/**
 * The extension inputs keyhold's ceremonies use, and no others: credProps,
 * and prf (eval, evalByCredential, whose keys stay base64url credential
 * IDs; withOwnPRFInputs then replaces the inputs). An extension the server
 * adds beyond these (hmacGetSecret, largeBlob, ...) is not passed to the
 * browser, so a server cannot reach the authenticator through this module
 * with inputs of its own choosing.
 * @param {any} x
 */
function extensionInputs(x) {
  /** @type {any} */
  const out = {};
  if (x.credProps === true) out.credProps = true;
  if (x.prf) {
    out.prf = {};
    if (x.prf.eval) out.prf.eval = prfValues(x.prf.eval);
    if (x.prf.evalByCredential) {
      out.prf.evalByCredential = {};
      for (const [id, v] of Object.entries(x.prf.evalByCredential)) out.prf.evalByCredential[id] = prfValues(v);
    }
  }
  return out;
}

const PRF_INPUT_LABEL = new TextEncoder().encode("keyhold/v1/passkey/prf-input\0");

/**
 * Replaces every PRF input of options (prf.eval and each of
 * prf.evalByCredential, first only) by SHA-256("keyhold/v1/passkey/prf-input"
 * ‖ 0x00 ‖ the server's salt) (FORMAT.md §7.3). The server chooses the
 * salts but never the inputs: it cannot ask, through this module, for the
 * output of an input of another domain, such as the zero-knowledge
 * client's (FORMAT.md §8.3), whose outputs it must never see.
 * @template {PublicKeyCredentialCreationOptions | PublicKeyCredentialRequestOptions} T
 * @param {T} o
 * @returns {Promise<T>}
 */
async function withOwnPRFInputs(o) {
  const prf = /** @type {any} */ (o.extensions)?.prf;
  if (!prf) return o;
  /** @type {any} */
  const own = {};
  if (prf.eval) own.eval = { first: await prfInput(prf.eval.first) };
  if (prf.evalByCredential) {
    own.evalByCredential = {};
    for (const [id, v] of Object.entries(prf.evalByCredential)) own.evalByCredential[id] = { first: await prfInput(/** @type {any} */ (v).first) };
  }
  return { ...o, extensions: { ...o.extensions, prf: own } };
}

/** @param {BufferSource} bytes */
async function prfInput(bytes) {
  const salt = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const b = new Uint8Array(PRF_INPUT_LABEL.length + salt.length);
  b.set(PRF_INPUT_LABEL);
  b.set(salt, PRF_INPUT_LABEL.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}

/** @param {any} v */
function prfValues(v) {
  const out = { first: unb64u(v.first) };
  if (v.second) out.second = unb64u(v.second);
  return out;
}

/**
 * @param {CredentialCreationOptions & CredentialRequestOptions} args
 * @param {RequestInit} [fetchOptions]
 */
function withSignal(args, fetchOptions) {
  if (fetchOptions?.signal) args.signal = fetchOptions.signal;
  return args;
}

// ---- answers: PublicKeyCredential to WebAuthn Level 3 JSON ----

/**
 * RegistrationResponseJSON of a credential from navigator.credentials.create.
 * @param {PublicKeyCredential} cred
 */
function registrationJSON(cred) {
  const r = /** @type {AuthenticatorAttestationResponse} */ (cred.response);
  const response = {
    clientDataJSON: b64u(r.clientDataJSON),
    attestationObject: b64u(r.attestationObject),
  };
  if (typeof r.getTransports === "function") response.transports = r.getTransports();
  if (typeof r.getAuthenticatorData === "function") response.authenticatorData = b64u(r.getAuthenticatorData());
  if (typeof r.getPublicKey === "function") {
    const k = r.getPublicKey(); // null for an algorithm the browser does not know
    if (k) response.publicKey = b64u(k);
  }
  if (typeof r.getPublicKeyAlgorithm === "function") response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
  return credentialJSON(cred, response);
}

/**
 * AuthenticationResponseJSON of a credential from navigator.credentials.get.
 * @param {PublicKeyCredential} cred
 */
function assertionJSON(cred) {
  const r = /** @type {AuthenticatorAssertionResponse} */ (cred.response);
  const response = {
    clientDataJSON: b64u(r.clientDataJSON),
    authenticatorData: b64u(r.authenticatorData),
    signature: b64u(r.signature),
  };
  if (r.userHandle) response.userHandle = b64u(r.userHandle);
  return credentialJSON(cred, response);
}

/**
 * @param {PublicKeyCredential} cred
 * @param {object} response
 */
function credentialJSON(cred, response) {
  const out = { id: cred.id, rawId: b64u(cred.rawId), type: cred.type, response };
  if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
  out.clientExtensionResults = jsonValue(knownResults(cred.getClientExtensionResults()));
  return out;
}

/**
 * The extension outputs the server may see: credProps, and prf's enabled
 * and results (the PRF output of the module's own input, §7.3).
 * @param {any} r
 */
function knownResults(r) {
  /** @type {any} */
  const out = {};
  if (r?.credProps) out.credProps = { rk: r.credProps.rk };
  if (r?.prf) {
    out.prf = {};
    if (typeof r.prf.enabled === "boolean") out.prf.enabled = r.prf.enabled;
    if (r.prf.results) out.prf.results = { first: r.prf.results.first };
  }
  return out;
}

/**
 * A copy of v with every ArrayBuffer or view in it as unpadded
 * base64url: the extension outputs (prf.results.first and second,
 * largeBlob.blob, ...) as WebAuthn Level 3 JSON has them.
 * @param {any} v
 * @returns {any}
 */
function jsonValue(v) {
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return b64u(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v !== null && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = jsonValue(x);
    return out;
  }
  return v;
}

// ---- transport ----

/**
 * @param {string} url
 * @param {Record<string, string>} params
 */
function withQuery(url, params) {
  const u = new URL(url, location.href);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.origin === location.origin ? u.pathname + u.search : u.href;
}

/**
 * POSTs body (as JSON, if any) to url on the same origin and returns the
 * answer's JSON (null for an empty body).
 * @param {string} url
 * @param {any} body
 * @param {RequestInit} [fetchOptions]
 */
async function post(url, body, fetchOptions) {
  const headers = new Headers(fetchOptions?.headers);
  const init = { ...fetchOptions, method: "POST", credentials: "same-origin", mode: "same-origin", headers };
  if (body !== undefined) {
    headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(body);
  } else {
    delete init.body;
  }
  headers.set("Accept", "application/json");
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) {
    const short = text.length > 1000 ? text.slice(0, 1000) : text;
    throw new PasskeyError("passkey: " + new URL(url, location.href).pathname + ": " + r.status + " " + short.trim(), r.status, short);
  }
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new PasskeyError("passkey: " + new URL(url, location.href).pathname + ": the answer is not JSON", r.status, text.slice(0, 1000));
  }
}

// ---- base64url ----

/**
 * Unpadded base64url of bytes.
 * @param {ArrayBuffer | ArrayBufferView} buf
 * @returns {string}
 */
function b64u(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Bytes of base64url (padded or not); a TypeError for anything else.
 * @param {string} s
 * @returns {ArrayBuffer}
 */
function unb64u(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw new TypeError("passkey: not base64url");
  s = s.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(s + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}
