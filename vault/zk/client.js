// keyhold zero-knowledge client: the browser half of package zk, as one
// ES module without dependencies or imports. It does all of the vault's
// cryptography in the page with WebCrypto (globalThis.crypto.subtle and
// getRandomValues), speaking the byte formats of keyhold's FORMAT.md §3
// exactly, so that the server stores only opaque blobs: the vault record
// (§3.1, key slots wrapping the master key) and records sealed with the
// envelope of §3.3. It runs in browsers and in Node 20 or later.
//
//	import * as zk from "/static/keyhold-zk.js";
//	const client = new zk.Client({ base: "/zk" });
//	const vault = await client.unlock({ passphrase });
//	await client.put(vault, "notes", "hello");
//	const { plaintext } = await client.get(vault, "notes");
//
// Two levels:
//
// - Low level, pure cryptography: createVault, unlockWithPassphrase,
//   unlockWithRecoveryKey, unlockWithSecret and the UnlockedVault they
//   return (seal, open, slot changes, fingerprint). Nothing leaves the page.
// - High level: Client talks to zk.Server's HTTP API with fetch
//   (same-origin credentials), writes with compare-and-swap versions, and
//   keeps a VersionLedger (localStorage) of the versions and GCM tags it
//   opened or wrote, and of its own writes that got no answer or were
//   refused, so that a server putting an older record or vault back, or
//   serving a write this client was told failed, is noticed ("rollback").
//
// The master key: after creation or an unlock it exists only inside
// non-extractable CryptoKeys (an HKDF base key from which the record keys,
// the retired-key KEK and the fingerprint are derived). Unlocking unwraps
// it with subtle.unwrapKey straight into that non-extractable key. A slot
// change must wrap the master key under a new key-encryption key, and
// WebCrypto's wrapKey only wraps extractable keys (and an HKDF key can
// never be extractable), so a slot change unwraps the master key once
// more, from the slot the vault was unlocked with, into a transient
// extractable AES-GCM CryptoKey, wraps it under the new KEK with
// subtle.wrapKey and drops it: the bytes stay inside WebCrypto, but for
// that moment an extractable CryptoKey of the master key exists (this is
// the one step that cannot be done with non-extractable keys only). At
// creation the master key is made by subtle.generateKey (extractable,
// transient, for the same reason), so its bytes never sit in a JS buffer.
// Key-encryption keys are derived with subtle.deriveKey, non-extractable.
//
// Every failed unlock (wrong passphrase, key or secret, no such slot, a
// tampered or malformed record) is one ZKError with code "unlock_failed"
// and one message.

// ---- errors ----

/**
 * The codes of ZKError:
 * "unlock_failed" (any failed unlock), "decrypt" (a sealed record fails to
 * open), "rollback" (an authentic record or vault the ledger refuses: older
 * than seen before, another at the version seen, a write of this client
 * that did not stand; a record or vault answered as absent after it was
 * seen),
 * "invalid_input", "invalid_record" (a vault record fails to parse),
 * "params" (slot parameters beyond this reader's limits), "unsupported"
 * (Argon2id, which WebCrypto lacks; a passkey without PRF output), "locked",
 * "conflict" (another write won), "not_found", "server" (another non-2xx
 * answer, or an answer that breaks the API), "rate_limited",
 * "outcome_unknown" (a vault write failed without a definite answer and
 * the vault could not be read back: it may or may not stand; the error
 * carries the new recovery key(s) and the vault, to show and to retry
 * saveVault), "storage" (the ledger's Storage, localStorage, threw: full,
 * or blocked; .stored is true when a write stood on the server first).
 * @typedef {"unlock_failed" | "decrypt" | "rollback" | "invalid_input" | "invalid_record" | "params" |
 *   "unsupported" | "locked" | "conflict" | "not_found" | "server" | "rate_limited" | "outcome_unknown" |
 *   "storage"} ZKErrorCode
 */

/** An error of this module; `code` says which (see ZKErrorCode). */
export class ZKError extends Error {
  /**
   * @param {ZKErrorCode} code
   * @param {string} message Never contains a secret.
   * @param {{status?: number, version?: bigint, retryAfter?: number}} [details]
   *   status: the HTTP status ("server", "rate_limited", "conflict", ...);
   *   version: the server's current version ("conflict"), or the version
   *   a write stood at ("storage" with stored set);
   *   retryAfter: seconds from Retry-After ("rate_limited").
   * Set after construction, where they apply: `stored` (true: the write
   * stood on the server before the error, "storage"); `recoveryKeys` /
   * `recoveryKey` (the new recovery key(s) of a vault write whose outcome
   * is unknown or that stood: secrets, for the page to show, never in the
   * message); `vault` (the UnlockedVault holding the record to retry with
   * saveVault, "outcome_unknown").
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = "ZKError";
    /** @type {ZKErrorCode} */
    this.code = code;
    /** @type {number | undefined} */
    this.status = details.status;
    /** @type {bigint | undefined} */
    this.version = details.version;
    /** @type {number | undefined} */
    this.retryAfter = details.retryAfter;
    /** @type {boolean | undefined} */
    this.stored = undefined;
    /** @type {string[] | undefined} */
    this.recoveryKeys = undefined;
    /** @type {string | undefined} */
    this.recoveryKey = undefined;
    /** @type {any} */
    this.vault = undefined;
  }
}

/** @param {string} what */
const storageError = (what) => new ZKError("storage", `keyhold/zk: ${what} the version ledger's storage (localStorage) failed: full, or blocked`);
const unlockFailedMessage = "keyhold/zk: unlock failed";
const unlockFailed = () => new ZKError("unlock_failed", unlockFailedMessage);
const invalid = (/** @type {string} */ m) => new ZKError("invalid_input", "keyhold/zk: " + m);
const decryptFailed = () => new ZKError("decrypt", "keyhold/zk: the record does not open");
const lockedError = () => new ZKError("locked", "keyhold/zk: the vault is locked");

// ---- constants (FORMAT.md §2, §3) ----

const enc = new TextEncoder();
const LABEL_KDF = enc.encode("keyhold/v1/kdf/key\x00");
const LABEL_SLOT_AAD = enc.encode("keyhold/v1/vault/slot\x00");
const LABEL_RECORD_AAD = enc.encode("keyhold/v1/vault/record\x00");
const INFO_RECORD_KEY = enc.encode("keyhold/v1/vault/record-key");
const INFO_RECOVERY_KEK = enc.encode("keyhold/v1/vault/recovery-kek");
const INFO_RETIRED_KEK = enc.encode("keyhold/v1/vault/retired-kek");
const LABEL_RETIRED_AAD = enc.encode("keyhold/v1/vault/retired\x00");
const LABEL_SECRET_KEK = enc.encode("keyhold/v1/vault/secret-kek\x00");
const LABEL_SECRET_SLOT_ID = enc.encode("keyhold/v1/vault/secret-slot-id\x00");
const LABEL_FINGERPRINT = enc.encode("keyhold/v1/vault/fingerprint\x00");
const MAGIC = [0x4b, 0x48, 0x56, 0x01]; // "KHV" 0x01

const KIND_PASSPHRASE = 1;
const KIND_RECOVERY = 2;
const KIND_SECRET = 3;
const KIND_WRAPPER = 4;
const ALG_ARGON2ID = 1;
const ALG_PBKDF2_SHA256 = 2;
const ALG_PBKDF2_SHA512 = 3;

const MAX_SLOTS = 64;
const MAX_PARAMS = 1024;
const MAX_WRAPPED = 4096;
const MAX_RETIRED = 16;
const WRAPPED_LEN = 60; // nonce (12) ‖ master key (32) ‖ tag (16)
const MAX_RECORD_LEN = 1 << 20; // what zk.Server accepts for a vault record
const MIN_SALT = 16;
const MAX_SALT = 64;
/** The fewest PBKDF2-SHA256 iterations a new passphrase slot gets. */
const MIN_ITERATIONS = 600000;
/**
 * The most PBKDF2-SHA256 iterations a slot may have ("params" beyond): the
 * default limit of the Go reader (package kdf's DefaultLimits), so that a
 * vault made here opens there too.
 */
const MAX_ITERATIONS = 4000000;
/** The most PBKDF2-SHA512 iterations a stored slot may have (Go's limit too). */
const MAX_ITERATIONS_SHA512 = 2000000;
const MAX_PASSPHRASE = 1024; // bytes of UTF-8, before NFKC
const MAX_USER_ID = 255;
const MAX_CONTEXT = 1024;
const MAX_PLAINTEXT = 64 << 20;
const MAX_RECOVERY_KEYS = 16;
const MIN_SECRET = 32;
const MAX_SECRET = 1024;
const MAX_CREDENTIAL_ID = 1023;
const MAX_SEALS = 2 ** 31;
const U64_MAX = 0xffffffffffffffffn;
const BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RECOVERY_CHARS = 32;
const RECOVERY_BYTES = 20;
const MAX_RECOVERY_INPUT = 256; // bytes of UTF-8
const RECORD_CONTEXT = "keyhold/zk/record/";
/**
 * A record name: 1 to 128 bytes of A-Z a-z 0-9 . _ ~ - (zk.MaxNameLen: a
 * record's blob name is its name, and a store's names are at most 128
 * bytes), never "." or "..".
 */
const NAME_RE = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * Whether name is a valid record name (NAME_RE, not "." or "..").
 * @param {any} name
 * @returns {boolean}
 */
function validName(name) {
  return typeof name === "string" && NAME_RE.test(name) && name !== "." && name !== "..";
}

/** @returns {SubtleCrypto} */
function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new ZKError("unsupported", "keyhold/zk: WebCrypto (crypto.subtle) is not available (a secure context is needed)");
  return s;
}

// ---- bytes ----

/** @param {number} n */
function random(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** @param {...(Uint8Array | number[])} parts */
function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** @param {number} x */
const u16 = (x) => [(x >>> 8) & 0xff, x & 0xff];
/** @param {number} x */
const u32 = (x) => [(x >>> 24) & 0xff, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff];
/** @param {bigint} x */
function u64(x) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, x);
  return b;
}

/** @param {Uint8Array} b */
function toHex(b) {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * A copy of bytes given as Uint8Array, another ArrayBufferView or an
 * ArrayBuffer; undefined for anything else.
 * @param {any} v
 * @returns {Uint8Array | undefined}
 */
function bytesOf(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return undefined;
}

/**
 * UTF-8 of a string (refusing lone surrogates, which have no UTF-8 form) or
 * a copy of bytes.
 * @param {any} v
 * @param {string} what
 * @returns {Uint8Array}
 */
function textOrBytes(v, what) {
  if (typeof v === "string") {
    if (!v.isWellFormed()) throw invalid(what + " is not well-formed Unicode");
    return enc.encode(v);
  }
  const b = bytesOf(v);
  if (!b) throw invalid(what + " must be a string or a Uint8Array");
  return b;
}

/** @param {any} userId */
function userBytes(userId) {
  const b = textOrBytes(userId, "the user ID");
  if (b.length < 1 || b.length > MAX_USER_ID) throw invalid("a user ID is 1 to 255 bytes");
  return b;
}

/** @param {any} context */
function contextBytes(context) {
  const b = textOrBytes(context, "the context");
  if (b.length > MAX_CONTEXT) throw invalid("a context is at most 1024 bytes");
  return b;
}

/**
 * The NFKC form of the passphrase as UTF-8; at most 1024 bytes as given.
 * @param {any} p
 */
function passphraseBytes(p) {
  if (typeof p !== "string") throw invalid("the passphrase must be a string");
  if (!p.isWellFormed()) throw invalid("the passphrase is not well-formed Unicode");
  const raw = enc.encode(p);
  const n = raw.length;
  raw.fill(0);
  if (n > MAX_PASSPHRASE) throw invalid("a passphrase is at most 1024 bytes of UTF-8");
  return enc.encode(p.normalize("NFKC"));
}

/**
 * A record or key version: a safe non-negative integer or a bigint, within
 * [0, max].
 * @param {any} v
 * @param {bigint} max
 * @param {string} what
 * @returns {bigint}
 */
function versionOf(v, max, what) {
  let b;
  if (typeof v === "bigint") b = v;
  else if (Number.isSafeInteger(v)) b = BigInt(v);
  else throw invalid(what + " must be an integer or a bigint");
  if (b < 0n || b > max) throw invalid(what + " is out of range");
  return b;
}

// ---- base64url ----

/**
 * Unpadded base64url (RFC 4648 §5) of bytes.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {string}
 */
export function b64u(bytes) {
  const b = bytesOf(bytes);
  if (!b) throw invalid("b64u takes bytes");
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The bytes of unpadded base64url, canonical only (the one encoding b64u
 * writes); ZKError "invalid_input" for anything else.
 * @param {string} s
 * @returns {Uint8Array}
 */
export function unb64u(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw invalid("not unpadded base64url");
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64u(out) !== s) throw invalid("not canonical base64url");
  return out;
}

// ---- Crockford base32 (recovery keys, fingerprints) ----

/**
 * Base32 of bytes, most significant bits first, in groups of four joined by "-".
 * @param {Uint8Array} b
 */
function base32Groups(b) {
  let out = "";
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const x of b) {
    acc = ((acc << 8) | x) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      if (n > 0 && n % 4 === 0) out += "-";
      out += BASE32[(acc >>> bits) & 31];
      n++;
    }
  }
  return out;
}

const SEPARATORS = new Set(["-", " ", "\t", "\u00a0", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"]);

/**
 * The 20 bytes of a recovery key (FORMAT.md §3.2): dashes and spaces are
 * ignored, case too, O reads as 0 and I, L as 1; exactly 32 characters of
 * Crockford's base32 must remain. ZKError "invalid_input" otherwise.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parseRecoveryKey(text) {
  const bad = () => invalid("not a recovery key");
  if (typeof text !== "string" || !text.isWellFormed() || enc.encode(text).length > MAX_RECOVERY_INPUT) throw bad();
  const out = new Uint8Array(RECOVERY_BYTES);
  let acc = 0;
  let bits = 0;
  let n = 0;
  let o = 0;
  for (const ch of text) {
    if (SEPARATORS.has(ch)) continue;
    let c = ch >= "a" && ch <= "z" ? ch.toUpperCase() : ch;
    if (c === "O") c = "0";
    else if (c === "I" || c === "L") c = "1";
    const v = c.length === 1 ? BASE32.indexOf(c) : -1;
    if (v < 0 || n === RECOVERY_CHARS) throw bad();
    n++;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if (n !== RECOVERY_CHARS || o !== RECOVERY_BYTES) throw bad();
  return out;
}

// ---- the vault record (FORMAT.md §3.1) ----

/**
 * One key slot of a vault record, as decodeVaultRecord reads it.
 * @typedef {object} SlotRecord
 * @property {number} kind 1 passphrase, 2 recovery key, 3 secret, 4 application wrapper.
 * @property {Uint8Array} id 16 bytes.
 * @property {number} keyVersion The master-key version the slot wraps, ≥ 1.
 * @property {Uint8Array} params Kind-specific, at most 1024 bytes.
 * @property {Uint8Array} wrapped At most 4096 bytes.
 */

/**
 * A retired (decrypt-only) master key of a vault record.
 * @typedef {object} RetiredRecord
 * @property {number} version Below the record's key version, ≥ 1.
 * @property {Uint8Array} sealed At most 4096 bytes.
 */

/**
 * The structure of a vault record (FORMAT.md §3.1).
 * @typedef {object} VaultRecord
 * @property {number} keyVersion The current master key's version, ≥ 1.
 * @property {SlotRecord[]} slots 1 to 64.
 * @property {RetiredRecord[]} retired 0 to 16, in increasing version order.
 */

class Reader {
  /** @param {Uint8Array} b */
  constructor(b) {
    this.b = b;
    this.off = 0;
  }
  /** @param {number} n */
  take(n) {
    if (n > this.b.length - this.off) throw new ZKError("invalid_record", "keyhold/zk: malformed vault record");
    const v = this.b.slice(this.off, this.off + n);
    this.off += n;
    return v;
  }
  u8() {
    return this.take(1)[0];
  }
  u16() {
    const b = this.take(2);
    return (b[0] << 8) | b[1];
  }
  u32() {
    const b = this.take(4);
    return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  }
  /** @param {number} max */
  bytes16(max) {
    const n = this.u16();
    if (n > max) throw new ZKError("invalid_record", "keyhold/zk: malformed vault record");
    return this.take(n);
  }
  rest() {
    return this.b.length - this.off;
  }
}

/**
 * Parses a vault record strictly (FORMAT.md §3.1): every length within the
 * input and its bound (params ≤ 1024, wrapped ≤ 4096 bytes), 1 to 64
 * slots of known kinds, key versions ≥ 1, an optional retired section of 1
 * to 16 keys in increasing version order below the record's key version,
 * nothing after. It checks structure only, no cryptography. ZKError
 * "invalid_record" otherwise.
 * @param {Uint8Array} bytes
 * @returns {VaultRecord}
 */
export function decodeVaultRecord(bytes) {
  const b = bytesOf(bytes);
  const bad = () => new ZKError("invalid_record", "keyhold/zk: malformed vault record");
  if (!b) throw invalid("a vault record is bytes");
  if (b.length > MAX_RECORD_LEN) throw bad();
  const d = new Reader(b);
  const magic = d.take(4);
  if (!MAGIC.every((x, i) => magic[i] === x)) throw bad();
  const keyVersion = d.u32();
  const n = d.u8();
  if (keyVersion === 0 || n === 0 || n > MAX_SLOTS) throw bad();
  /** @type {SlotRecord[]} */
  const slots = [];
  for (let i = 0; i < n; i++) {
    const kind = d.u8();
    const id = d.take(16);
    const kv = d.u32();
    const params = d.bytes16(MAX_PARAMS);
    const wrapped = d.bytes16(MAX_WRAPPED);
    if (kind < KIND_PASSPHRASE || kind > KIND_WRAPPER || kv === 0) throw bad();
    slots.push({ kind, id, keyVersion: kv, params, wrapped });
  }
  /** @type {RetiredRecord[]} */
  const retired = [];
  if (d.rest() > 0) {
    const r = d.u8();
    if (r === 0 || r > MAX_RETIRED) throw bad();
    for (let i = 0; i < r; i++) {
      const version = d.u32();
      const sealed = d.bytes16(MAX_WRAPPED);
      if (version === 0 || version >= keyVersion || (i > 0 && version <= retired[i - 1].version)) throw bad();
      retired.push({ version, sealed });
    }
  }
  if (d.rest() !== 0) throw bad();
  return { keyVersion, slots, retired };
}

/**
 * @param {any} v
 * @param {number} min
 * @param {number} max
 */
const intIn = (v, min, max) => Number.isInteger(v) && v >= min && v <= max;

/**
 * Encodes a vault record's structure (FORMAT.md §3.1). It refuses, with
 * ZKError "invalid_input", anything decodeVaultRecord would refuse, so it
 * never writes a record that locks its user out.
 * @param {VaultRecord} rec
 * @returns {Uint8Array}
 */
export function encodeVaultRecord(rec) {
  if (rec === null || typeof rec !== "object") throw invalid("a vault record is an object");
  const { keyVersion, slots } = rec;
  const retired = rec.retired ?? [];
  if (!intIn(keyVersion, 1, 0xffffffff)) throw invalid("a key version is 1 to 2^32-1");
  if (!Array.isArray(slots) || slots.length < 1 || slots.length > MAX_SLOTS) throw invalid("a vault record holds 1 to 64 slots");
  if (!Array.isArray(retired) || retired.length > MAX_RETIRED) throw invalid("a vault record holds at most 16 retired keys");
  /** @type {(Uint8Array | number[])[]} */
  const parts = [MAGIC, u32(keyVersion), [slots.length]];
  for (const s of slots) {
    const id = bytesOf(s?.id);
    const params = bytesOf(s?.params);
    const wrapped = bytesOf(s?.wrapped);
    if (!intIn(s?.kind, KIND_PASSPHRASE, KIND_WRAPPER) || !id || id.length !== 16 || !intIn(s.keyVersion, 1, 0xffffffff) ||
      !params || params.length > MAX_PARAMS || !wrapped || wrapped.length > MAX_WRAPPED) {
      throw invalid("a slot is kind 1 to 4, a 16-byte id, a key version ≥ 1, params ≤ 1024 and wrapped ≤ 4096 bytes");
    }
    parts.push([s.kind], id, u32(s.keyVersion), u16(params.length), params, u16(wrapped.length), wrapped);
  }
  if (retired.length > 0) {
    parts.push([retired.length]);
    let prev = 0;
    for (const k of retired) {
      const sealed = bytesOf(k?.sealed);
      if (!intIn(k?.version, prev + 1, keyVersion - 1) || !sealed || sealed.length > MAX_WRAPPED) {
        throw invalid("retired keys are in increasing version order, below the key version, sealed ≤ 4096 bytes");
      }
      prev = k.version;
      parts.push(u32(k.version), u16(sealed.length), sealed);
    }
  }
  return concat(...parts);
}

/** @param {SlotRecord} s */
function copySlot(s) {
  return { kind: s.kind, id: s.id.slice(), keyVersion: s.keyVersion, params: s.params.slice(), wrapped: s.wrapped.slice() };
}

/** @param {VaultRecord} r */
function copyRecord(r) {
  return { keyVersion: r.keyVersion, slots: r.slots.map(copySlot), retired: r.retired.map((k) => ({ version: k.version, sealed: k.sealed.slice() })) };
}

/**
 * The slot AAD (FORMAT.md §3.1): label ‖ u16 len(user) ‖ user ‖ kind ‖ id
 * ‖ u32 key version ‖ u16 L ‖ params.
 * @param {Uint8Array} user
 * @param {{kind: number, id: Uint8Array, keyVersion: number, params: Uint8Array}} s
 */
function slotAAD(user, s) {
  return concat(LABEL_SLOT_AAD, u16(user.length), user, [s.kind], s.id, u32(s.keyVersion), u16(s.params.length), s.params);
}

// ---- key derivation ----

const AES256 = { name: "AES-GCM", length: 256 };
const WRAP_USAGES = /** @type {KeyUsage[]} */ (["wrapKey", "unwrapKey"]);

/**
 * An HKDF-SHA256-derived non-extractable AES-256-GCM key.
 * @param {CryptoKey} base HKDF key.
 * @param {Uint8Array} salt
 * @param {Uint8Array} info
 * @param {KeyUsage[]} usages
 */
function hkdfAES(base, salt, info, usages) {
  return subtle().deriveKey({ name: "HKDF", hash: "SHA-256", salt, info }, base, AES256, false, usages);
}

/**
 * The non-extractable HKDF base key of ikm (a secret, a recovery key); ikm
 * is zeroed.
 * @param {Uint8Array} ikm
 */
async function hkdfBase(ikm) {
  try {
    return await subtle().importKey("raw", ikm, "HKDF", false, ["deriveKey", "deriveBits"]);
  } finally {
    ikm.fill(0);
  }
}

/**
 * The passphrase slot's KEK (FORMAT.md §2, §3.2): PBKDF2 over NFKC(passphrase)
 * with salt "keyhold/v1/kdf/key" ‖ 0x00 ‖ salt, 32 bytes, as a
 * non-extractable AES-256-GCM key (deriveKey: the same bytes as deriveBits
 * 256, never in a JS buffer).
 * @param {Uint8Array} pass NFKC UTF-8, zeroed.
 * @param {Uint8Array} salt
 * @param {"SHA-256" | "SHA-512"} hash
 * @param {number} iterations
 */
async function passphraseKEK(pass, salt, hash, iterations) {
  let base;
  try {
    base = await subtle().importKey("raw", pass, "PBKDF2", false, ["deriveKey"]);
  } finally {
    pass.fill(0);
  }
  return subtle().deriveKey({ name: "PBKDF2", hash, salt: concat(LABEL_KDF, salt), iterations }, base, AES256, false, WRAP_USAGES);
}

/**
 * The recovery slot's KEK: HKDF-SHA256(the 20 bytes, the slot's salt, "keyhold/v1/vault/recovery-kek").
 * @param {Uint8Array} secret Zeroed.
 * @param {Uint8Array} salt
 */
async function recoveryKEK(secret, salt) {
  return hkdfAES(await hkdfBase(secret), salt, INFO_RECOVERY_KEK, WRAP_USAGES);
}

/**
 * The secret slot's KEK (FORMAT.md §3.2).
 * @param {Uint8Array} secret Zeroed.
 * @param {Uint8Array} salt
 * @param {Uint8Array} user
 * @param {Uint8Array} credentialId
 */
async function secretKEK(secret, salt, user, credentialId) {
  const info = concat(LABEL_SECRET_KEK, u16(user.length), user, credentialId);
  return hkdfAES(await hkdfBase(secret), salt, info, WRAP_USAGES);
}

/**
 * The slot ID of a kind 3 slot: the first 16 bytes of
 * SHA-256("keyhold/v1/vault/secret-slot-id" ‖ 0x00 ‖ I).
 * @param {Uint8Array} credentialId
 */
async function secretSlotIdBytes(credentialId) {
  return new Uint8Array(await subtle().digest("SHA-256", concat(LABEL_SECRET_SLOT_ID, credentialId))).slice(0, 16);
}

/**
 * The vault slot ID (32 hex digits) of the secret slot for a WebAuthn
 * credential ID (1 to 1023 bytes): what slots() lists and removeSlot takes.
 * @param {Uint8Array} credentialId
 * @returns {Promise<string>}
 */
export async function secretSlotId(credentialId) {
  return toHex(await secretSlotIdBytes(credentialIdBytes(credentialId)));
}

/** @param {any} v */
function credentialIdBytes(v) {
  const b = bytesOf(v);
  if (!b || b.length < 1 || b.length > MAX_CREDENTIAL_ID) throw invalid("a credential ID is 1 to 1023 bytes");
  return b;
}

/** @param {any} v */
function secretBytes(v) {
  const b = bytesOf(v);
  if (!b || b.length < MIN_SECRET || b.length > MAX_SECRET) throw invalid("a secret is 32 to 1024 bytes");
  return b;
}

// ---- wrapping the master key ----

/**
 * Where an unlocked vault can get its master key back for a re-wrap: the
 * KEK and wrapped field of the slot it was unlocked (or created) with.
 * @typedef {object} Hold
 * @property {CryptoKey} kek Non-extractable, unwrapKey.
 * @property {Uint8Array} wrapped nonce ‖ ciphertext ‖ tag (60 bytes).
 * @property {Uint8Array} aad
 */

/**
 * @param {Uint8Array} wrapped
 * @param {Uint8Array} aad
 */
function gcmParams(wrapped, aad) {
  return { name: "AES-GCM", iv: wrapped.subarray(0, 12), additionalData: aad, tagLength: 128 };
}

/**
 * Unwraps a 60-byte wrapped master key straight into a non-extractable
 * HKDF key. Throws (any error) when it does not open.
 * @param {CryptoKey} kek
 * @param {Uint8Array} wrapped
 * @param {Uint8Array} aad
 */
async function unwrapMaster(kek, wrapped, aad) {
  if (wrapped.length !== WRAPPED_LEN) throw unlockFailed();
  return subtle().unwrapKey("raw", wrapped.subarray(12), kek, gcmParams(wrapped, aad), "HKDF", false, ["deriveKey", "deriveBits"]);
}

/**
 * The master key as a transient extractable AES-GCM CryptoKey (the only
 * kind wrapKey takes), unwrapped from the hold. Callers drop it at once.
 * @param {Hold} hold
 */
function transientMaster(hold) {
  return subtle().unwrapKey("raw", hold.wrapped.subarray(12), hold.kek, gcmParams(hold.wrapped, hold.aad), AES256, true, ["encrypt"]);
}

/**
 * nonce ‖ AES-256-GCM(kek, nonce, master key, aad).
 * @param {CryptoKey} mk Transient extractable AES-GCM key.
 * @param {CryptoKey} kek
 * @param {Uint8Array} aad
 */
async function wrapMaster(mk, kek, aad) {
  const nonce = random(12);
  const ct = new Uint8Array(await subtle().wrapKey("raw", mk, kek, { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }));
  return concat(nonce, ct);
}

/**
 * A new slot around kek: wraps mk, returns the slot and the hold it gives.
 * @param {Uint8Array} user
 * @param {number} kind
 * @param {Uint8Array} id
 * @param {number} keyVersion
 * @param {Uint8Array} params
 * @param {CryptoKey} kek
 * @param {CryptoKey} mk
 * @returns {Promise<{slot: SlotRecord, hold: Hold}>}
 */
async function makeSlot(user, kind, id, keyVersion, params, kek, mk) {
  const s = { kind, id, keyVersion, params, wrapped: new Uint8Array(0) };
  const aad = slotAAD(user, s);
  s.wrapped = await wrapMaster(mk, kek, aad);
  return { slot: s, hold: { kek, wrapped: s.wrapped, aad } };
}

/** @param {number} iterations */
function checkNewIterations(iterations) {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw invalid("a new passphrase slot has 600000 to 4000000 PBKDF2-SHA256 iterations");
  }
}

/**
 * A PBKDF2-SHA256 passphrase slot (kind 1, alg 2, t = m = p = 0, 16-byte salt).
 * @param {Uint8Array} user
 * @param {number} keyVersion
 * @param {CryptoKey} mk
 * @param {Uint8Array} pass NFKC UTF-8, zeroed.
 * @param {number} iterations
 */
async function passphraseSlot(user, keyVersion, mk, pass, iterations) {
  const salt = random(MIN_SALT);
  const params = concat([ALG_PBKDF2_SHA256], u32(0), u32(0), [0], u32(iterations), [salt.length], salt);
  const kek = await passphraseKEK(pass, salt, "SHA-256", iterations);
  return makeSlot(user, KIND_PASSPHRASE, random(16), keyVersion, params, kek, mk);
}

/**
 * A recovery slot (kind 2) and its key's text.
 * @param {Uint8Array} user
 * @param {number} keyVersion
 * @param {CryptoKey} mk
 */
async function recoverySlot(user, keyVersion, mk) {
  const secret = random(RECOVERY_BYTES);
  const text = base32Groups(secret);
  const salt = random(16);
  const kek = await recoveryKEK(secret, salt);
  const { slot } = await makeSlot(user, KIND_RECOVERY, random(16), keyVersion, concat([16], salt), kek, mk);
  return { slot, key: text };
}

/**
 * A secret slot (kind 3) for credential ID I.
 * @param {Uint8Array} user
 * @param {number} keyVersion
 * @param {CryptoKey} mk
 * @param {Uint8Array} credentialId
 * @param {Uint8Array} secret Zeroed.
 */
async function secretSlot(user, keyVersion, mk, credentialId, secret) {
  const salt = random(16);
  const kek = await secretKEK(secret, salt, user, credentialId);
  const { slot } = await makeSlot(user, KIND_SECRET, await secretSlotIdBytes(credentialId), keyVersion, concat([16], salt), kek, mk);
  return slot;
}

// ---- the unlocked vault ----

const INTERNAL = Symbol("keyhold/zk internal");

/**
 * The record key of one master key: HKDF-SHA256(mk, salt empty,
 * "keyhold/v1/vault/record-key"), non-extractable AES-256-GCM.
 * @param {CryptoKey} mk HKDF key.
 * @param {KeyUsage[]} usages
 */
function recordKey(mk, usages) {
  return hkdfAES(mk, new Uint8Array(0), INFO_RECORD_KEY, usages);
}

/**
 * Opens the record's retired keys with the current master key and returns
 * their record keys (decrypt only) by version. Throws when one fails.
 * @param {Uint8Array} user
 * @param {VaultRecord} rec
 * @param {CryptoKey} mk
 */
async function retiredRecordKeys(user, rec, mk) {
  /** @type {Map<number, CryptoKey>} */
  const out = new Map();
  if (rec.retired.length === 0) return out;
  const kek = await hkdfAES(mk, new Uint8Array(0), INFO_RETIRED_KEK, ["unwrapKey"]);
  for (const k of rec.retired) {
    const aad = concat(LABEL_RETIRED_AAD, u16(user.length), user, u32(rec.keyVersion), u32(k.version));
    const old = await unwrapMaster(kek, k.sealed, aad);
    out.set(k.version, await recordKey(old, ["decrypt"]));
  }
  return out;
}

/**
 * An unlocked vault: seals and opens records (FORMAT.md §3.3) and changes
 * key slots. Obtained from createVault, unlockWithPassphrase,
 * unlockWithRecoveryKey, unlockWithSecret or a Client; not constructed
 * directly. Its keys are non-extractable CryptoKeys; lock() drops them.
 *
 * Slot changes (changePassphrase, regenerateRecoveryKeys, addSecretSlot,
 * removeSlot) change `record` here only: store it (Client.saveVault, with
 * compare-and-swap) for them to take effect.
 */
export class UnlockedVault {
  /** @type {Uint8Array} */ #user;
  /** @type {number} */ #keyVersion;
  /** @type {VaultRecord} */ #rec;
  /** @type {Uint8Array} */ #record;
  /** @type {CryptoKey | null} */ #mk;
  /** @type {Hold | null} */ #hold;
  /** @type {Map<number, CryptoKey>} */ #keys;
  /** @type {number[]} */ #retired;
  #sealed = 0;
  /** @type {Promise<unknown>} */ #chain = Promise.resolve();

  /**
   * Not for applications: use createVault or an unlock function.
   * @param {symbol} token
   * @param {{user: Uint8Array, rec: VaultRecord, mk: CryptoKey, hold: Hold, keys: Map<number, CryptoKey>}} state
   */
  constructor(token, state) {
    if (token !== INTERNAL) throw new TypeError("keyhold/zk: an UnlockedVault comes from createVault or an unlock function");
    this.#user = state.user;
    this.#rec = copyRecord(state.rec);
    this.#record = encodeVaultRecord(this.#rec);
    this.#keyVersion = state.rec.keyVersion;
    this.#mk = state.mk;
    this.#hold = state.hold;
    this.#keys = state.keys;
    this.#retired = [...state.keys.keys()].filter((v) => v !== this.#keyVersion).sort((a, b) => a - b);
  }

  /** The user ID's bytes (a copy). @returns {Uint8Array} */
  get userId() {
    return this.#user.slice();
  }

  /** The version of the master key that seals. @returns {number} */
  get keyVersion() {
    return this.#keyVersion;
  }

  /** The versions of the retired (decrypt-only) master keys, ascending. @returns {number[]} */
  get retiredVersions() {
    return [...this.#retired];
  }

  /** The vault record's current bytes (a copy); slot changes replace it. @returns {Uint8Array} */
  get record() {
    return this.#record.slice();
  }

  /** True once lock() was called. @returns {boolean} */
  get locked() {
    return this.#mk === null;
  }

  /**
   * Drops every key; later calls fail with ZKError "locked". (A CryptoKey
   * cannot be wiped; it becomes unreachable from here.)
   */
  lock() {
    this.#mk = null;
    this.#hold = null;
    this.#keys = new Map();
  }

  #check() {
    if (this.#mk === null) throw lockedError();
  }

  /**
   * Seals plaintext in envelope format 1 (no record version).
   * @param {Uint8Array | string} plaintext
   * @param {Uint8Array | string} context The caller's name for the record, ≤ 1024 bytes.
   * @returns {Promise<Uint8Array>}
   */
  async seal(plaintext, context) {
    return this.#seal(plaintext, context, undefined);
  }

  /**
   * Seals plaintext in envelope format 2, with record version `version`
   * (0 to 2^64-1) authenticated in its header.
   * @param {Uint8Array | string} plaintext
   * @param {Uint8Array | string} context
   * @param {number | bigint} version
   * @returns {Promise<Uint8Array>}
   */
  async sealVersion(plaintext, context, version) {
    return this.#seal(plaintext, context, versionOf(version, U64_MAX, "a record version"));
  }

  /**
   * @param {any} plaintext
   * @param {any} context
   * @param {bigint | undefined} version
   */
  async #seal(plaintext, context, version) {
    this.#check();
    const pt = textOrBytes(plaintext, "the plaintext");
    const ctx = contextBytes(context);
    if (pt.length > MAX_PLAINTEXT) throw invalid("a plaintext is at most 64 MiB");
    if (++this.#sealed > MAX_SEALS) throw invalid("this vault has sealed 2^31 records: unlock it again (rekey required)");
    const header = version === undefined ? concat([1, 1], u32(this.#keyVersion)) : concat([2, 1], u32(this.#keyVersion), u64(version));
    const key = this.#keys.get(this.#keyVersion);
    if (!key) throw lockedError();
    const nonce = random(12);
    const aad = concat(LABEL_RECORD_AAD, header, u16(this.#user.length), this.#user, ctx);
    const ct = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, pt));
    pt.fill(0);
    return concat(header, nonce, ct);
  }

  /**
   * Opens a record of either format, sealed under the current or a retired
   * key version, and checks no record version. ZKError "decrypt" when it
   * does not open (tampered, another user, another context, unknown key
   * version, malformed).
   * @param {Uint8Array} sealed
   * @param {Uint8Array | string} context
   * @returns {Promise<Uint8Array>}
   */
  async open(sealed, context) {
    return (await this.#open(sealed, context)).plaintext;
  }

  /**
   * Opens a record (either format; format 1 has version 0), then refuses it
   * with ZKError "rollback" when its authenticated record version is below
   * min.
   * @param {Uint8Array} sealed
   * @param {Uint8Array | string} context
   * @param {number | bigint} [min]
   * @returns {Promise<{plaintext: Uint8Array, version: bigint}>}
   */
  async openVersion(sealed, context, min = 0n) {
    const m = versionOf(min, U64_MAX, "the minimum version");
    const r = await this.#open(sealed, context);
    if (r.version < m) {
      r.plaintext.fill(0);
      throw new ZKError("rollback", `keyhold/zk: record version ${r.version} is below ${m}`);
    }
    return r;
  }

  /**
   * @param {any} sealed
   * @param {any} context
   * @returns {Promise<{plaintext: Uint8Array, version: bigint}>}
   */
  async #open(sealed, context) {
    this.#check();
    const s = bytesOf(sealed);
    if (!s) throw invalid("a sealed record is bytes");
    const ctx = textOrBytes(context, "the context");
    if (ctx.length > MAX_CONTEXT || s.length < 34 || s[1] !== 1) throw decryptFailed();
    let headerLen = 6;
    let version = 0n;
    if (s[0] === 2) {
      headerLen = 14;
      if (s.length < 42) throw decryptFailed();
      version = new DataView(s.buffer, s.byteOffset).getBigUint64(6);
    } else if (s[0] !== 1) {
      throw decryptFailed();
    }
    const kv = new DataView(s.buffer, s.byteOffset).getUint32(2);
    const key = this.#keys.get(kv);
    if (!key) throw decryptFailed();
    const aad = concat(LABEL_RECORD_AAD, s.subarray(0, headerLen), u16(this.#user.length), this.#user, ctx);
    try {
      const iv = s.subarray(headerLen, headerLen + 12);
      const pt = await subtle().decrypt({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, key, s.subarray(headerLen + 12));
      return { plaintext: new Uint8Array(pt), version };
    } catch {
      throw decryptFailed();
    }
  }

  /**
   * The key fingerprint (FORMAT.md §3.7): "XXXX-XXXX-XXXX-XXXX", to compare
   * between two devices over a channel the server does not control.
   * @returns {Promise<string>}
   */
  async fingerprint() {
    this.#check();
    const info = concat(LABEL_FINGERPRINT, u16(this.#user.length), this.#user, u32(this.#keyVersion));
    const f = new Uint8Array(await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, /** @type {CryptoKey} */ (this.#mk), 80));
    return base32Groups(f);
  }

  /**
   * The record's slots: kind (1 passphrase, 2 recovery, 3 secret, 4
   * wrapper), id as 32 hex digits, key version.
   * @returns {{kind: number, id: string, keyVersion: number}[]}
   */
  slots() {
    return this.#rec.slots.map((s) => ({ kind: s.kind, id: toHex(s.id), keyVersion: s.keyVersion }));
  }

  /**
   * Runs a slot change alone (one at a time per vault) with the master key
   * as a transient extractable CryptoKey; fn returns the new record
   * structure, which becomes `record`.
   * @template T
   * @param {(mk: CryptoKey | null, rec: VaultRecord) => Promise<{rec: VaultRecord, result: T}>} fn
   * @param {boolean} needKey
   * @returns {Promise<T>}
   */
  #change(fn, needKey = true) {
    const run = async () => {
      this.#check();
      const mk = needKey ? await transientMaster(/** @type {Hold} */ (this.#hold)) : null;
      const { rec, result } = await fn(mk, copyRecord(this.#rec));
      this.#check();
      const bytes = encodeVaultRecord(rec);
      this.#rec = rec;
      this.#record = bytes;
      return result;
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /**
   * Re-wraps the master key under a new passphrase (PBKDF2-SHA256, a fresh
   * salt), in place of the first passphrase slot at the key version (or as
   * a new slot when there is none). The master key and key version stay.
   * @param {string} newPassphrase At most 1024 bytes of UTF-8; NFKC-normalised.
   * @param {{iterations?: number}} [opts] iterations: 600000 (the default) to 4000000.
   * @returns {Promise<Uint8Array>} The new record.
   */
  async changePassphrase(newPassphrase, { iterations = MIN_ITERATIONS } = {}) {
    checkNewIterations(iterations);
    const pass = passphraseBytes(newPassphrase);
    try {
      return await this.#change(async (mk, rec) => {
        const { slot } = await passphraseSlot(this.#user, rec.keyVersion, /** @type {CryptoKey} */ (mk), pass, iterations);
        const i = rec.slots.findIndex((s) => s.kind === KIND_PASSPHRASE && s.keyVersion === rec.keyVersion);
        if (i >= 0) rec.slots[i] = slot;
        else if (rec.slots.length < MAX_SLOTS) rec.slots.push(slot);
        else throw invalid("the vault has 64 slots: remove one first");
        return { rec, result: encodeVaultRecord(rec) };
      });
    } finally {
      pass.fill(0);
    }
  }

  /**
   * Replaces every recovery slot (kind 2) with n new ones.
   * @param {number} [n] 1 to 16 (default 1).
   * @returns {Promise<{record: Uint8Array, recoveryKeys: string[]}>} The keys, to show once.
   */
  async regenerateRecoveryKeys(n = 1) {
    if (!intIn(n, 1, MAX_RECOVERY_KEYS)) throw invalid("1 to 16 recovery keys");
    return this.#change(async (mk, rec) => {
      rec.slots = rec.slots.filter((s) => s.kind !== KIND_RECOVERY);
      if (rec.slots.length + n > MAX_SLOTS) throw invalid("the vault has no room for that many recovery keys: remove a slot first");
      const recoveryKeys = [];
      for (let i = 0; i < n; i++) {
        const { slot, key } = await recoverySlot(this.#user, rec.keyVersion, /** @type {CryptoKey} */ (mk));
        rec.slots.push(slot);
        recoveryKeys.push(key);
      }
      return { rec, result: { record: encodeVaultRecord(rec), recoveryKeys } };
    });
  }

  /**
   * Adds a secret slot (kind 3, FORMAT.md §3.2) for a WebAuthn credential
   * and its PRF output, replacing that credential's slot if it has one.
   * @param {Uint8Array} credentialId 1 to 1023 bytes (the credential's rawId).
   * @param {Uint8Array} secret 32 to 1024 bytes (prf.results.first).
   * @returns {Promise<Uint8Array>} The new record.
   */
  async addSecretSlot(credentialId, secret) {
    const id = credentialIdBytes(credentialId);
    const sec = secretBytes(secret);
    try {
      return await this.#change(async (mk, rec) => {
        const slot = await secretSlot(this.#user, rec.keyVersion, /** @type {CryptoKey} */ (mk), id, sec);
        rec.slots = rec.slots.filter((s) => s.kind !== KIND_SECRET || !equalBytes(s.id, slot.id));
        if (rec.slots.length >= MAX_SLOTS) throw invalid("the vault has 64 slots: remove one first");
        rec.slots.push(slot);
        return { rec, result: encodeVaultRecord(rec) };
      });
    } finally {
      sec.fill(0);
    }
  }

  /**
   * Removes the slot with this id (32 hex digits, from slots() or
   * secretSlotId). The last passphrase slot at the key version cannot be
   * removed (change it with changePassphrase). ZKError "invalid_input" for
   * an unknown id.
   * @param {string} idHex
   * @returns {Promise<Uint8Array>} The new record.
   */
  async removeSlot(idHex) {
    if (typeof idHex !== "string" || !/^[0-9a-f]{32}$/.test(idHex)) throw invalid("a slot ID is 32 lower-case hex digits");
    return this.#change(async (_mk, rec) => {
      const i = rec.slots.findIndex((s) => toHex(s.id) === idHex);
      if (i < 0) throw invalid("no such slot");
      const s = rec.slots[i];
      const isCurrentPassphrase = (/** @type {SlotRecord} */ x) => x.kind === KIND_PASSPHRASE && x.keyVersion === rec.keyVersion;
      if (isCurrentPassphrase(s) && rec.slots.filter(isCurrentPassphrase).length === 1) {
        throw invalid("the last passphrase slot cannot be removed");
      }
      rec.slots.splice(i, 1);
      return { rec, result: encodeVaultRecord(rec) };
    }, false);
  }

  /**
   * Internal: puts back a record (a Client whose write failed). Not for
   * applications.
   * @param {symbol} token
   * @param {Uint8Array} bytes
   */
  [INTERNAL](token, bytes) {
    if (token !== INTERNAL) throw new TypeError("keyhold/zk: internal");
    const rec = decodeVaultRecord(bytes);
    this.#rec = rec;
    this.#record = bytes.slice();
  }
}

/**
 * Builds an UnlockedVault from a master key that opened (an HKDF key) and
 * the hold it came from; opens the retired keys. Throws when they fail.
 * @param {Uint8Array} user
 * @param {VaultRecord} rec
 * @param {CryptoKey} mk
 * @param {Hold} hold
 */
async function unlockedVault(user, rec, mk, hold) {
  const keys = await retiredRecordKeys(user, rec, mk);
  keys.set(rec.keyVersion, await recordKey(mk, ["encrypt", "decrypt"]));
  return new UnlockedVault(INTERNAL, { user, rec, mk, hold, keys });
}

// ---- creating and unlocking ----

/**
 * Options of createVault.
 * @typedef {object} CreateOptions
 * @property {number} [iterations] PBKDF2-SHA256 iterations of the
 *   passphrase slot: 600000 (the default, also the minimum) to 4000000.
 * @property {number} [recoveryKeys] How many recovery keys (kind 2 slots): 0 to 16, default 1.
 */

/**
 * A new vault and its recovery keys.
 * @typedef {object} CreatedVault
 * @property {UnlockedVault} vault Its `record` is the new vault record, to store.
 * @property {string[]} recoveryKeys To show to the user once ("XXXX-XXXX-…", eight groups).
 */

/**
 * @param {any} userId
 * @param {any} passphrase
 * @param {CreateOptions} opts
 * @param {Uint8Array | undefined} masterKey
 * @param {number} keyVersion
 * @returns {Promise<CreatedVault>}
 */
async function create(userId, passphrase, opts, masterKey, keyVersion) {
  const user = userBytes(userId);
  const { iterations = MIN_ITERATIONS, recoveryKeys: n = 1 } = opts ?? {};
  checkNewIterations(iterations);
  if (!intIn(n, 0, MAX_RECOVERY_KEYS)) throw invalid("0 to 16 recovery keys");
  if (typeof passphrase === "string" && passphrase === "") throw invalid("the passphrase is empty");
  const pass = passphraseBytes(passphrase);
  let tmp;
  if (masterKey) {
    try {
      tmp = await subtle().importKey("raw", masterKey, AES256, true, ["encrypt"]);
    } finally {
      masterKey.fill(0);
    }
  } else {
    tmp = /** @type {CryptoKey} */ (await subtle().generateKey(AES256, true, ["encrypt"]));
  }
  const first = await passphraseSlot(user, keyVersion, tmp, pass, iterations);
  const slots = [first.slot];
  const keys = [];
  for (let i = 0; i < n; i++) {
    const { slot, key } = await recoverySlot(user, keyVersion, tmp);
    slots.push(slot);
    keys.push(key);
  }
  tmp = null;
  const mk = await unwrapMaster(first.hold.kek, first.hold.wrapped, first.hold.aad);
  const rec = { keyVersion, slots, retired: [] };
  return { vault: await unlockedVault(user, rec, mk, first.hold), recoveryKeys: keys };
}

/**
 * Creates a vault: a new random master key (version 1) wrapped by one
 * PBKDF2-SHA256 passphrase slot and `recoveryKeys` recovery slots. Nothing
 * is stored: store vault.record (Client.createVault does).
 * @param {Uint8Array | string} userId The user's ID (1 to 255 bytes; a string is UTF-8).
 * @param {string} passphrase At most 1024 bytes of UTF-8; NFKC-normalised.
 * @param {CreateOptions} [opts]
 * @returns {Promise<CreatedVault>}
 */
export async function createVault(userId, passphrase, opts = {}) {
  return create(userId, passphrase, opts, undefined, 1);
}

/**
 * FOR TESTS ONLY: makes a vault around a master key the caller chose
 * (32 bytes; the copy taken here is zeroed after import), with one
 * passphrase slot at keyVersion, so that tests can check values derived
 * from a known key (FORMAT.md §3.7's fingerprint table). A real vault's
 * key must come from createVault. Not part of the API.
 * @private
 * @param {Uint8Array | string} userId
 * @param {Uint8Array} masterKey
 * @param {string} passphrase
 * @param {{keyVersion?: number, iterations?: number}} [opts]
 * @returns {Promise<UnlockedVault>}
 */
export async function _unsafeVaultFromMasterKey(userId, masterKey, passphrase, { keyVersion = 1, iterations = MIN_ITERATIONS } = {}) {
  const mk = bytesOf(masterKey);
  if (!mk || mk.length !== 32) throw invalid("a master key is 32 bytes");
  if (!intIn(keyVersion, 1, 0xffffffff)) throw invalid("a key version is 1 to 2^32-1");
  return (await create(userId, passphrase, { iterations, recoveryKeys: 0 }, mk, keyVersion)).vault;
}

/**
 * Decodes a record for an unlock: any malformation is "unlock_failed".
 * @param {any} record
 */
function recordForUnlock(record) {
  const b = bytesOf(record);
  if (!b) throw invalid("a vault record is bytes");
  try {
    return decodeVaultRecord(b);
  } catch {
    throw unlockFailed();
  }
}

/**
 * Runs an unlock attempt; every error other than a ZKError "params",
 * "unsupported" or "invalid_input" becomes the one "unlock_failed".
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function asUnlock(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ZKError && (e.code === "params" || e.code === "unsupported" || e.code === "invalid_input")) throw e;
    throw unlockFailed();
  }
}

/**
 * Unlocks a vault record with the passphrase, through the first passphrase
 * slot at the record's key version (PBKDF2-SHA256 or -SHA512).
 * ZKError "unlock_failed" for a wrong passphrase or any fault of the
 * record; "params" for a slot beyond this reader's limits (salt under 16
 * bytes, 0 iterations, or more than 4000000 (PBKDF2-SHA256) or 2000000 (PBKDF2-SHA512)); "unsupported" for an
 * Argon2id slot (WebCrypto has no Argon2id: use a recovery key or a
 * passkey); "invalid_input" for a passphrase over 1024 bytes.
 * @param {Uint8Array} record The vault record (FORMAT.md §3.1).
 * @param {Uint8Array | string} userId
 * @param {string} passphrase
 * @returns {Promise<UnlockedVault>}
 */
export async function unlockWithPassphrase(record, userId, passphrase) {
  const user = userBytes(userId);
  const pass = passphraseBytes(passphrase);
  try {
    return await asUnlock(async () => {
      const rec = recordForUnlock(record);
      const s = rec.slots.find((x) => x.kind === KIND_PASSPHRASE && x.keyVersion === rec.keyVersion);
      if (!s) throw unlockFailed();
      const p = decodePassphraseParams(s.params);
      if (p.alg === ALG_ARGON2ID) {
        throw new ZKError("unsupported", "keyhold/zk: this vault's passphrase slot uses Argon2id, which WebCrypto lacks: unlock with a recovery key or a passkey");
      }
      if (p.salt.length < MIN_SALT) throw new ZKError("params", "keyhold/zk: the passphrase slot's salt is under 16 bytes");
      const maxIterations = p.alg === ALG_PBKDF2_SHA512 ? MAX_ITERATIONS_SHA512 : MAX_ITERATIONS;
      if (p.iterations < 1 || p.iterations > maxIterations) {
        throw new ZKError("params", `keyhold/zk: the passphrase slot's ${p.iterations} iterations are beyond this reader's limit (1 to ${maxIterations})`);
      }
      if (s.wrapped.length !== WRAPPED_LEN) throw unlockFailed();
      const kek = await passphraseKEK(pass, p.salt, p.alg === ALG_PBKDF2_SHA512 ? "SHA-512" : "SHA-256", p.iterations);
      const aad = slotAAD(user, s);
      const mk = await unwrapMaster(kek, s.wrapped, aad);
      return unlockedVault(user, rec, mk, { kek, wrapped: s.wrapped, aad });
    });
  } finally {
    pass.fill(0);
  }
}

/**
 * Passphrase params: u8 alg ‖ u32 t ‖ u32 m ‖ u8 p ‖ u32 iterations ‖ u8 s
 * ‖ salt (s ≤ 64 bytes), nothing after; a known algorithm. Else
 * "unlock_failed" (a malformed slot).
 * @param {Uint8Array} params
 */
function decodePassphraseParams(params) {
  const d = new Reader(params);
  const alg = d.u8();
  d.take(9); // t, m, p: bound by the AAD, unused by PBKDF2
  const iterations = d.u32();
  const n = d.u8();
  if (n > MAX_SALT) throw unlockFailed();
  const salt = d.take(n);
  if (d.rest() !== 0 || alg < ALG_ARGON2ID || alg > ALG_PBKDF2_SHA512) throw unlockFailed();
  return { alg, iterations, salt };
}

/**
 * The result of a recovery-key unlock.
 * @typedef {object} RecoveryUnlock
 * @property {UnlockedVault} vault Its `record` has the used slot replaced:
 *   store it (compare-and-swap) before showing the new key.
 * @property {string} recoveryKey The new recovery key, in place of the used one.
 */

/**
 * Unlocks a vault record with a recovery key (FORMAT.md §3.2, kind 2) and
 * replaces the slot it opened with a new one (a new key) in vault.record,
 * as Go's UnlockWithRecoveryKey does. Every failure, an unreadable key
 * included, is ZKError "unlock_failed".
 * @param {Uint8Array} record
 * @param {Uint8Array | string} userId
 * @param {string} recoveryKey As the user typed it.
 * @returns {Promise<RecoveryUnlock>}
 */
export async function unlockWithRecoveryKey(record, userId, recoveryKey) {
  const user = userBytes(userId);
  return asUnlock(async () => {
    let secret;
    try {
      secret = parseRecoveryKey(recoveryKey);
    } catch {
      throw unlockFailed();
    }
    try {
      const rec = recordForUnlock(record);
      for (let i = 0; i < rec.slots.length; i++) {
        const s = rec.slots[i];
        if (s.kind !== KIND_RECOVERY || s.keyVersion !== rec.keyVersion || s.params.length !== 17 || s.params[0] !== 16 || s.wrapped.length !== WRAPPED_LEN) continue;
        const aad = slotAAD(user, s);
        let kek, mk;
        try {
          kek = await recoveryKEK(secret.slice(), s.params.subarray(1));
          mk = await unwrapMaster(kek, s.wrapped, aad);
        } catch {
          continue;
        }
        const hold = { kek, wrapped: s.wrapped, aad };
        const replacement = await recoverySlot(user, rec.keyVersion, await transientMaster(hold));
        rec.slots[i] = replacement.slot;
        return { vault: await unlockedVault(user, rec, mk, hold), recoveryKey: replacement.key };
      }
      throw unlockFailed();
    } finally {
      secret.fill(0);
    }
  });
}

/**
 * Unlocks a vault record with a secret (FORMAT.md §3.2, kind 3): a
 * passkey's PRF output for the credential ID. ZKError "unlock_failed"
 * when no slot of that credential at the key version opens;
 * "invalid_input" for a credential ID or secret of the wrong length.
 * @param {Uint8Array} record
 * @param {Uint8Array | string} userId
 * @param {Uint8Array} credentialId 1 to 1023 bytes.
 * @param {Uint8Array} secret 32 to 1024 bytes.
 * @returns {Promise<UnlockedVault>}
 */
export async function unlockWithSecret(record, userId, credentialId, secret) {
  const user = userBytes(userId);
  const id = credentialIdBytes(credentialId);
  const sec = secretBytes(secret);
  try {
    return await asUnlock(async () => {
      const rec = recordForUnlock(record);
      const sid = await secretSlotIdBytes(id);
      const s = rec.slots.find((x) => x.kind === KIND_SECRET && x.keyVersion === rec.keyVersion && equalBytes(x.id, sid));
      if (!s || s.params.length !== 17 || s.params[0] !== 16) throw unlockFailed();
      const kek = await secretKEK(sec.slice(), s.params.subarray(1), user, id);
      const aad = slotAAD(user, s);
      const mk = await unwrapMaster(kek, s.wrapped, aad);
      return unlockedVault(user, rec, mk, { kek, wrapped: s.wrapped, aad });
    });
  } finally {
    sec.fill(0);
  }
}

// ---- the version ledger ----

/**
 * A Storage-like object (localStorage, or a Map-backed shim).
 * @typedef {object} StorageLike
 * @property {(key: string) => string | null | undefined} getItem
 * @property {(key: string, value: string) => void} setItem
 */

/** An in-memory StorageLike, for where there is no localStorage. */
class MemoryStorage {
  #m = new Map();
  /** @param {string} k */
  getItem(k) {
    return this.#m.has(k) ? this.#m.get(k) : null;
  }
  /**
   * @param {string} k
   * @param {string} v
   */
  setItem(k, v) {
    this.#m.set(k, String(v));
  }
}

/** The length of an envelope's GCM tag: the last 16 bytes of a sealed record. */
const TAG_LEN = 16;
/**
 * At most this many pending writes and this many superseded tags are kept
 * per (user, record name); see VersionLedger.
 */
const MAX_LEDGER_TAGS = 64;

/**
 * One record this client sealed, as the ledger keeps it: its version and
 * its GCM tag (the envelope's last 16 bytes).
 * @typedef {object} SealedMark
 * @property {bigint} version
 * @property {Uint8Array} tag 16 bytes.
 */

/**
 * What a VersionLedger holds for one (user, record name).
 * @typedef {object} RecordLedger
 * @property {bigint} min The highest version opened (authenticated) or
 *   written with a 2xx answer (a delete's tombstone included); 0n if none.
 * @property {Uint8Array | null} tag The GCM tag of the record at min; null
 *   when unknown (a ledger entry of the old plain-number form) or after a
 *   delete.
 * @property {boolean} deleted True when min is a tombstone this client
 *   made (a 2xx delete).
 * @property {SealedMark[]} pending Records sealed here whose write got no
 *   definite answer (network error, 5xx or another non-409 refusal, an
 *   unparseable 2xx).
 * @property {SealedMark[]} superseded Records sealed here that must never
 *   be accepted: refused with 409, or pending when a later write of the
 *   same name got a 2xx.
 */

/**
 * @param {Uint8Array} tag
 * @returns {string}
 */
function tagKey(tag) {
  const t = bytesOf(tag);
  if (!t || t.length !== TAG_LEN) throw invalid("a tag is 16 bytes");
  return b64u(t);
}

/**
 * A ledger entry as stored: versions as decimal strings (they may pass
 * 2^53), tags as B64U.
 * @typedef {object} StoredEntry
 * @property {bigint} min
 * @property {string | null} tag
 * @property {boolean} deleted
 * @property {{v: bigint, t: string}[]} pending
 * @property {{v: bigint, t: string}[]} superseded
 */

/** @returns {StoredEntry} */
const emptyEntry = () => ({ min: 0n, tag: null, deleted: false, pending: [], superseded: [] });

/**
 * A stored decimal version, or undefined.
 * @param {any} s
 */
function storedVersion(s) {
  return typeof s === "string" && /^[0-9]{1,20}$/.test(s) && BigInt(s) <= U64_MAX ? BigInt(s) : undefined;
}

/** @param {any} s */
const storedTag = (s) => typeof s === "string" && /^[A-Za-z0-9_-]{22}$/.test(s);

/**
 * Reads a stored entry: JSON {"min": "n", "tag": B64U | null, "deleted":
 * bool, "pending": [["n", B64U], ...], "superseded": [...]}, or the old
 * form, a bare decimal (min only, tag unknown). Anything else reads as
 * empty, as an unreadable value always did.
 * @param {string | null | undefined} raw
 * @returns {StoredEntry}
 */
function parseEntry(raw) {
  if (typeof raw !== "string") return emptyEntry();
  const old = storedVersion(raw);
  if (old !== undefined) return { ...emptyEntry(), min: old };
  let j;
  try {
    j = JSON.parse(raw);
  } catch {
    return emptyEntry();
  }
  const min = storedVersion(j?.min);
  if (min === undefined || (j.tag !== null && !storedTag(j.tag)) || !Array.isArray(j.pending) || !Array.isArray(j.superseded)) return emptyEntry();
  /** @param {any[]} list */
  const marks = (list) => {
    const out = [];
    for (const x of list.slice(0, 2 * MAX_LEDGER_TAGS)) {
      const v = Array.isArray(x) ? storedVersion(x[0]) : undefined;
      if (v !== undefined && storedTag(x[1])) out.push({ v, t: /** @type {string} */ (x[1]) });
    }
    return out;
  };
  return { min, tag: j.tag, deleted: j.deleted === true, pending: marks(j.pending), superseded: marks(j.superseded) };
}

/**
 * Keeps the marks at or above min, one per tag, the highest versions
 * first, at most MAX_LEDGER_TAGS (dropping the lowest versions).
 * @param {{v: bigint, t: string}[]} list
 * @param {bigint} min
 */
function boundMarks(list, min) {
  const seen = new Set();
  const out = [];
  for (const m of [...list].sort((a, b) => (a.v > b.v ? -1 : a.v < b.v ? 1 : 0))) {
    if (m.v < min || seen.has(m.t)) continue;
    seen.add(m.t);
    out.push(m);
  }
  return out;
}

/**
 * Keeps the pending marks at or above min, one per tag (the first), in the
 * order they were added, at most MAX_LEDGER_TAGS (the highest versions);
 * returns them and the ones dropped for the bound.
 * @param {{v: bigint, t: string}[]} list
 * @param {bigint} min
 */
function boundPending(list, min) {
  const seen = new Set();
  const kept = [];
  for (const m of list) {
    if (m.v < min || seen.has(m.t)) continue;
    seen.add(m.t);
    kept.push(m);
  }
  if (kept.length <= MAX_LEDGER_TAGS) return { pending: kept, dropped: [] };
  const top = new Set(boundMarks(kept, min).slice(0, MAX_LEDGER_TAGS));
  return { pending: kept.filter((m) => top.has(m)), dropped: kept.filter((m) => !top.has(m)) };
}

/**
 * What a write (or delete) of version v that stood does to the other
 * pending records: those at or below v, and those above it added before
 * it (`before`: an honest server's versions only rise, so a write sealed
 * above v from a version observed before this one was sent cannot land
 * after it), are superseded; those above v added after it stay pending
 * (another tab's write, sealed on top of this one, may land).
 * @param {{v: bigint, t: string}[]} others
 * @param {bigint} v
 * @param {(m: {v: bigint, t: string}) => boolean} before
 */
function splitPending(others, v, before) {
  const superseded = others.filter((m) => m.v <= v || before(m));
  return { pending: others.filter((m) => !superseded.includes(m)), superseded };
}

/**
 * The versions and tags this client can trust, per (user, record name),
 * and the highest vault key version per user, kept in a Storage: what lets
 * a Client notice a server that puts back an older record or vault, or a
 * record this client wrote whose write it was told failed.
 *
 * Per (user, record name) it keeps (see RecordLedger):
 *
 * - `min`, the highest version this client opened (authenticated) or
 *   wrote with a 2xx answer, and `tag`, the GCM tag (the last 16 bytes) of
 *   that record: null after a delete (then `deleted` is set: min is the
 *   tombstone's version) or when unknown (an entry of the old form).
 *   Versions the server merely states (the status list, a 409's body, a
 *   tombstone's version in a GET, the Keyhold-Version of an answer not
 *   opened) never enter the ledger.
 * - `pending`: records this client sealed whose write got no definite
 *   answer (network error, 5xx or another refusal than 409, a 2xx whose
 *   body does not parse, a 409 at or above the version written), as
 *   {version, tag}, in the order added.
 * - `superseded`: tags of records this client sealed that must never be
 *   accepted: those refused with a 409 below their version (an honest
 *   server did not store them) and the pending ones a write (or delete)
 *   of the same name that got a 2xx replaced (see Writing).
 *
 * Reading a record (accept), after it opened at version v with tag t:
 * "rollback" if t is superseded, if v < min, or if v == min and the
 * record at min is a tombstone or has another known tag; otherwise it is
 * accepted: if t is pending (the write did land) it becomes min/tag, and
 * the other pending records at or below v, or added before it, become
 * superseded (those above v added after it stay pending: another tab's
 * write sealed on top of it may land); else min = v, tag = t.
 * An answer that the record is deleted at version d (acceptAbsent) is
 * accepted only when d > min, or d == min when min is this client's own
 * tombstone (a record opened live at version N cannot have been deleted
 * at N); an answer that it never existed only when min is 0.
 *
 * Writing: the sealed record is added as pending before it is sent
 * (addPending); a 2xx at v makes it min/tag (if above min), takes it out
 * of superseded (another tab's success may have put it there), and
 * supersedes the other pending records at or below v or added before it
 * (confirmWrite: an honest server's versions only rise, so a write sealed
 * above v from a version observed before this one was sent cannot land
 * after it); a 409 whose version is below the one written makes it
 * superseded (refuseWrite; Client does not call it for a 409 at or above
 * that version: the answer to a resend of a write that landed); any other
 * outcome leaves it pending. A 2xx delete sets min to the tombstone's
 * version (if above), tag null, deleted, and supersedes the pending
 * records at or below it or pending when it was sent (confirmDelete).
 *
 * Bounds: pending and superseded keep only records at or above min (a
 * record below min is refused whatever it is), one per tag, at most 64
 * each; beyond that the lowest versions are dropped from superseded, and
 * moved from pending to superseded (failing closed: a write of which 64
 * later ones got no answer either is refused if it shows up). Pending
 * records are kept in the order added (stored so).
 *
 * Storage: every getItem/setItem exception (a full or blocked
 * localStorage) is ZKError "storage"; the default localStorage is looked
 * up at first use, so constructing never throws.
 *
 * Storage keys (FORMAT.md §8.1): prefix ‖ B64U(user ID) ‖ ":" ‖ name for a
 * record, whose value is JSON {"min": decimal, "tag": B64U or null,
 * "deleted": bool, "pending": [[decimal, B64U], ...] (in the order
 * added), "superseded": [...]} (a bare decimal, the old form, still reads as min with an unknown tag;
 * an unreadable value as empty); prefix ‖ B64U(user ID) ‖ "/vault" for
 * the key version, a decimal that only rises.
 */
export class VersionLedger {
  #s;
  #prefix;

  /**
   * @param {StorageLike} [storage] Default localStorage (looked up at first
   *   use: a blocked one is ZKError "storage" then, never here), or memory
   *   when there is none.
   * @param {string} [prefix] Prefix of the keys in storage.
   */
  constructor(storage, prefix = "keyhold-zk:") {
    this.#s = storage === null ? new MemoryStorage() : storage;
    this.#prefix = String(prefix);
  }

  /** @returns {StorageLike} */
  #storage() {
    if (this.#s === undefined) {
      let ls;
      try {
        ls = globalThis.localStorage;
      } catch {
        throw storageError("reading");
      }
      this.#s = ls ?? new MemoryStorage();
    }
    return /** @type {StorageLike} */ (this.#s);
  }

  /**
   * getItem, any exception a ZKError "storage".
   * @param {string} key
   */
  #get(key) {
    const s = this.#storage();
    try {
      return s.getItem(key);
    } catch {
      throw storageError("reading");
    }
  }

  /**
   * setItem, any exception a ZKError "storage" (nothing changed).
   * @param {string} key
   * @param {string} value
   */
  #set(key, value) {
    const s = this.#storage();
    try {
      s.setItem(key, value);
    } catch {
      throw storageError("writing");
    }
  }

  /**
   * @param {string} key
   * @returns {bigint}
   */
  #readNumber(key) {
    return storedVersion(this.#get(key)) ?? 0n;
  }

  /**
   * @param {Uint8Array | string} user
   * @param {string} name
   */
  #recordKey(user, name) {
    if (!validName(name)) throw invalid("a record name is 1 to 128 of A-Z a-z 0-9 . _ ~ - (not . or ..)");
    return this.#prefix + b64u(userBytes(user)) + ":" + name;
  }

  /**
   * The storage key of the user's vault key version: prefix ‖ B64U(user) ‖
   * "/vault" (a record's key has no "/").
   * @param {Uint8Array | string} user
   */
  #vaultKey(user) {
    return this.#prefix + b64u(userBytes(user)) + "/vault";
  }

  /** @param {string} key */
  #entry(key) {
    return parseEntry(this.#get(key));
  }

  /**
   * Bounds and stores an entry.
   * @param {string} key
   * @param {StoredEntry} e
   */
  #store(key, e) {
    const { pending, dropped } = boundPending(e.pending, e.min);
    const superseded = boundMarks(e.superseded.concat(dropped), e.min).slice(0, MAX_LEDGER_TAGS);
    /** @param {{v: bigint, t: string}[]} l */
    const out = (l) => l.map((m) => [m.v.toString(), m.t]);
    this.#set(key, JSON.stringify({ min: e.min.toString(), tag: e.tag, deleted: e.deleted, pending: out(pending), superseded: out(superseded) }));
  }

  /**
   * The highest version this client opened or wrote of the user's record
   * `name` (0n if none): the minimum a read accepts.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @returns {bigint}
   */
  min(user, name) {
    return this.#entry(this.#recordKey(user, name)).min;
  }

  /**
   * A copy of what the ledger holds for the user's record `name`.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @returns {RecordLedger}
   */
  record(user, name) {
    const e = this.#entry(this.#recordKey(user, name));
    /** @param {{v: bigint, t: string}[]} l */
    const marks = (l) => l.map((m) => ({ version: m.v, tag: unb64u(m.t) }));
    return { min: e.min, tag: e.tag === null ? null : unb64u(e.tag), deleted: e.deleted, pending: marks(e.pending), superseded: marks(e.superseded) };
  }

  /**
   * Records that version `version` of the user's record `name` was seen
   * (authentic), with its tag when known; a lower one changes nothing.
   * Unlike accept it checks nothing: for a caller that verified the
   * record itself.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array} [tag] The record's last 16 bytes.
   */
  see(user, name, version, tag) {
    const key = this.#recordKey(user, name);
    const v = versionOf(version, U64_MAX, "a version");
    const t = tag === undefined ? null : tagKey(tag);
    const e = this.#entry(key);
    if (v > e.min) this.#store(key, { ...e, min: v, tag: t, deleted: false });
    else if (v === e.min && e.tag === null && !e.deleted && t !== null) this.#store(key, { ...e, tag: t });
  }

  /**
   * The rule for a record read and opened at `version` with `tag`: throws
   * ZKError "rollback" when the tag is superseded, the version is below
   * min, or it is min with a tombstone or another known tag there;
   * otherwise records it (a pending record promoted, the other pending
   * ones superseded; else min and tag set).
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array} tag The record's last 16 bytes.
   */
  accept(user, name, version, tag) {
    const key = this.#recordKey(user, name);
    const v = versionOf(version, U64_MAX, "a version");
    const t = tagKey(tag);
    const e = this.#entry(key);
    const refuse = (/** @type {string} */ why) => new ZKError("rollback", `keyhold/zk: ${name} at version ${v} ${why}`);
    if (e.superseded.some((m) => m.t === t)) throw refuse("is a write of this client that did not stand (refused, or replaced by a later write)");
    if (v < e.min) throw refuse(`is below the ${e.min} seen before`);
    if (v === e.min) {
      if (e.deleted) throw refuse("was deleted by this client at that version");
      if (e.tag !== null) {
        if (e.tag !== t) throw refuse("is another record than the one seen at that version");
        return;
      }
    }
    const at = e.pending.findIndex((m) => m.t === t);
    if (at >= 0) {
      const split = splitPending(e.pending.filter((_, i) => i !== at), v, (m) => e.pending.indexOf(m) < at);
      this.#store(key, { min: v, tag: t, deleted: false, pending: split.pending, superseded: e.superseded.concat(split.superseded) });
      return;
    }
    this.#store(key, { ...e, min: v, tag: t, deleted: false });
  }

  /**
   * The rule for an answer that the user's record `name` is absent:
   * deleted at `deletedAt`, or never existed (undefined). Throws ZKError
   * "rollback" unless deletedAt > min, or deletedAt == min when min is a
   * tombstone this client made; or, for a record that never existed,
   * unless min is 0. Records nothing (the server's word only).
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {bigint | undefined} deletedAt
   */
  acceptAbsent(user, name, deletedAt) {
    const e = this.#entry(this.#recordKey(user, name));
    if (deletedAt === undefined) {
      if (e.min > 0n) throw new ZKError("rollback", `keyhold/zk: ${name} was seen at version ${e.min} and the server says it never existed`);
      return;
    }
    if (deletedAt > e.min || (deletedAt === e.min && e.deleted)) return;
    throw new ZKError("rollback", `keyhold/zk: ${name} was seen at version ${e.min} and the server says it was deleted at ${deletedAt}`);
  }

  /**
   * Adds a record this client sealed, at `version` with `tag`, as pending:
   * before its write is sent.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array} tag
   */
  addPending(user, name, version, tag) {
    const key = this.#recordKey(user, name);
    const e = this.#entry(key);
    this.#store(key, { ...e, pending: e.pending.concat({ v: versionOf(version, U64_MAX, "a version"), t: tagKey(tag) }) });
  }

  /**
   * A write answered 2xx: the record at `version` with `tag` becomes
   * min/tag (when above it) and leaves pending and superseded (another
   * tab may have superseded it before this answer came); the other
   * pending records at or below version, or added before it, superseded;
   * those above it added after it stay pending.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array} tag
   */
  confirmWrite(user, name, version, tag) {
    const key = this.#recordKey(user, name);
    const v = versionOf(version, U64_MAX, "a version");
    const t = tagKey(tag);
    const e = this.#entry(key);
    const at = e.pending.findIndex((m) => m.t === t);
    const split = splitPending(e.pending.filter((m) => m.t !== t), v, (m) => e.pending.indexOf(m) < at);
    const min = v > e.min ? v : e.min;
    // A tag superseded (by another tab's success, before this answer came) stood after all.
    const superseded = e.superseded.filter((m) => m.t !== t).concat(split.superseded);
    this.#store(key, { min, tag: min === v ? t : e.tag, deleted: min === v ? false : e.deleted, pending: split.pending, superseded });
  }

  /**
   * A write answered 409: the record with `tag` (at `version`) is
   * superseded.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array} tag
   */
  refuseWrite(user, name, version, tag) {
    const key = this.#recordKey(user, name);
    const t = tagKey(tag);
    const e = this.#entry(key);
    this.#store(key, { ...e, pending: e.pending.filter((m) => m.t !== t), superseded: e.superseded.concat({ v: versionOf(version, U64_MAX, "a version"), t }) });
  }

  /**
   * A delete answered 2xx with the tombstone at `version`: min = version
   * (when above it), tag null, deleted; the pending records at or below
   * version, and those in `before`, superseded.
   * @param {Uint8Array | string} user
   * @param {string} name
   * @param {number | bigint} version
   * @param {Uint8Array[]} [before] The tags of the records pending when
   *   the delete was sent (default: every pending record, any version).
   */
  confirmDelete(user, name, version, before) {
    const key = this.#recordKey(user, name);
    const v = versionOf(version, U64_MAX, "a version");
    const e = this.#entry(key);
    const earlier = before === undefined ? undefined : new Set(before.map((x) => tagKey(x)));
    const split = splitPending(e.pending, v, (m) => earlier === undefined || earlier.has(m.t));
    const superseded = e.superseded.concat(split.superseded);
    const pending = split.pending;
    if (v > e.min) this.#store(key, { min: v, tag: null, deleted: true, pending, superseded });
    else this.#store(key, { ...e, pending, superseded });
  }

  /**
   * The highest vault key version seen for the user (0 if none).
   * @param {Uint8Array | string} user
   * @returns {number}
   */
  keyVersion(user) {
    return Number(this.#readNumber(this.#vaultKey(user)));
  }

  /**
   * Records that the user's vault was seen at key version v (a lower one
   * changes nothing).
   * @param {Uint8Array | string} user
   * @param {number} v
   */
  seeKeyVersion(user, v) {
    const key = this.#vaultKey(user);
    const x = versionOf(v, 0xffffffffn, "a key version");
    if (x > this.#readNumber(key)) this.#set(key, x.toString());
  }

  /**
   * Internal: sets the user's key version even when lower (a Client's
   * createVault with replaceSeenVault). Not for applications.
   * @param {symbol} token
   * @param {Uint8Array} user
   * @param {number} v
   */
  [INTERNAL](token, user, v) {
    if (token !== INTERNAL) throw new TypeError("keyhold/zk: internal");
    this.#set(this.#vaultKey(user), versionOf(v, 0xffffffffn, "a key version").toString());
  }
}

// ---- the HTTP client ----

/**
 * What status() returns.
 * @typedef {object} Status
 * @property {Uint8Array} user The session user's ID.
 * @property {{version: bigint} | null} vault The vault record's version, or null when there is none.
 * @property {{name: string, version: bigint, size: number}[]} records The live records, in name order.
 */

/**
 * Options of Client.
 * @typedef {object} ClientOptions
 * @property {string} [base] Where zk.Server is mounted (default "/zk").
 * @property {RequestInit} [fetchOptions] Merged into every fetch (extra
 *   headers such as a CSRF token, a signal). Method, body and credentials
 *   are the client's.
 * @property {VersionLedger} [ledger] Default: a VersionLedger on localStorage.
 * @property {typeof fetch} [fetch] The fetch to use (default globalThis.fetch).
 * @property {{get: (options: CredentialRequestOptions) => Promise<Credential | null>}} [credentials]
 *   Where passkey ceremonies run (default navigator.credentials).
 */

/**
 * A passkey ceremony's options: the JSON (object or text) of the server's
 * PublicKeyCredentialRequestOptions with the PRF extension's
 * evalByCredential, as {publicKey: {...}} or the bare options.
 * @typedef {object} PasskeyOptions
 * @property {any} options
 */

/**
 * The client of zk.Server's HTTP API. Reads and writes carry versions
 * (compare-and-swap); records are sealed in envelope format 2 at the
 * version they will have, with context "keyhold/zk/record/" + name, and
 * every read is checked against the VersionLedger, whose rules (see
 * VersionLedger) are, per (user, record name):
 *
 * - get: the record opened at version v with GCM tag t is "rollback" if t
 *   is superseded, v < min, or v == min with another known tag or this
 *   client's tombstone there; v must also equal the Keyhold-Version and
 *   be at least 1 (no format 1 envelope, no version 0: never stored).
 *   If t is pending the write did land: it becomes min/tag and the other
 *   pending writes at or below v or added before it superseded; otherwise
 *   min = v, tag = t. "deleted at d"
 *   is "not_found" only if d > min (or d == min for this client's own
 *   delete), "never existed" only if min is 0; else "rollback".
 * - put: sealed at expect + 1, expect being the version last observed
 *   from the server (a cached one below min is read again: "conflict"
 *   with the fresh version if that is at least min, "rollback" if not);
 *   added as pending before it is sent; a 2xx at v makes it min/tag and
 *   supersedes the other pending writes at or below v or added before
 *   it; a 409 at a version below the one written supersedes it; any
 *   other outcome (a 409 at or above it too) leaves it pending.
 * - delete: a 2xx sets min to the tombstone's version, tag null, and
 *   supersedes the pending writes at or below it or pending when sent.
 * - vault writes (createVault, saveVault and what calls it): a failure
 *   without a definite answer (network error, 5xx, an unparseable 2xx, a
 *   409 above the version expected) is settled by reading the vault
 *   back: its own bytes there, a success; another record or none, the
 *   error; no answer, "outcome_unknown", carrying the new recovery
 *   key(s) and the vault (retry saveVault; never locked nor put back).
 * - createVault: "rollback" when the ledger saw a vault of the user,
 *   unless opts.replaceSeenVault === true.
 *
 * The versions the server states (status, 409 bodies, tombstones, headers
 * of answers not opened) choose only what the next write expects; they
 * never enter the ledger. Every answer body is read with a bound (a
 * record 1 MiB, the vault 1 MiB, JSON under 4 MiB), its stream cancelled
 * once the bound is passed.
 */
export class Client {
  #base;
  #fetchOptions;
  #ledger;
  #fetch;
  #credentials;
  /** @type {Uint8Array | null} */ #user = null;
  /** @type {WeakMap<UnlockedVault, bigint>} */ #vaultVersions = new WeakMap();
  /** @type {Map<string, bigint>} */ #versions = new Map();

  /** @param {ClientOptions} [opts] */
  constructor({ base = "/zk", fetchOptions, ledger, fetch: f, credentials } = {}) {
    this.#base = String(base).replace(/\/+$/, "");
    this.#fetchOptions = fetchOptions ?? {};
    this.#ledger = ledger ?? new VersionLedger();
    this.#fetch = f;
    this.#credentials = credentials;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{expect?: bigint, body?: Uint8Array}} [opts]
   * @returns {Promise<Response>}
   */
  async #request(method, path, { expect, body } = {}) {
    const headers = new Headers(this.#fetchOptions.headers);
    if (expect !== undefined) headers.set("Keyhold-Expect", expect.toString());
    if (body !== undefined) headers.set("Content-Type", "application/octet-stream");
    const init = { ...this.#fetchOptions, method, headers, credentials: /** @type {RequestCredentials} */ ("same-origin"), cache: /** @type {RequestCache} */ ("no-store") };
    if (body !== undefined) init.body = body;
    else delete init.body;
    const f = this.#fetch ?? globalThis.fetch;
    return f(this.#base + path, init);
  }

  /**
   * The error of a non-2xx answer (conflict, not_found, rate_limited, server).
   * @param {Response} r
   * @param {string} what
   */
  async #error(r, what) {
    const body = await jsonBody(r).catch(() => undefined);
    const version = versionField(body?.version);
    if (r.status === 409) return new ZKError("conflict", `keyhold/zk: ${what}: another write came first`, { status: 409, version });
    if (r.status === 404) return new ZKError("not_found", `keyhold/zk: ${what}: not found`, { status: 404, version });
    if (r.status === 429) {
      const ra = Number(r.headers.get("Retry-After"));
      return new ZKError("rate_limited", `keyhold/zk: ${what}: too many requests`, { status: 429, retryAfter: Number.isFinite(ra) ? ra : undefined });
    }
    const code = typeof body?.error === "string" ? " " + body.error.slice(0, 100) : "";
    return new ZKError("server", `keyhold/zk: ${what}: ${r.status}${code}`, { status: r.status, version });
  }

  /**
   * The session user's ID, from status() when not known yet.
   * @returns {Promise<Uint8Array>}
   */
  async #userId() {
    if (!this.#user) await this.status();
    return /** @type {Uint8Array} */ (this.#user);
  }

  /**
   * The state of the session user's vault and records (GET {base}/).
   * @returns {Promise<Status>}
   */
  async status() {
    const r = await this.#request("GET", "/");
    if (!r.ok) throw await this.#error(r, "status");
    const body = await jsonBody(r);
    let user;
    try {
      user = userBytes(unb64u(body?.user));
    } catch {
      throw serverError("the status has no valid user");
    }
    const vault = body.vault === null || body.vault === undefined ? null : { version: needVersion(body.vault?.version) };
    if (!Array.isArray(body.records)) throw serverError("the status has no records");
    const records = body.records.map((/** @type {any} */ x) => {
      if (!validName(x?.name)) throw serverError("a record name is invalid");
      return { name: x.name, version: needVersion(x.version), size: Number(x.size) || 0 };
    });
    if (this.#user && !equalBytes(this.#user, user)) this.#versions.clear();
    this.#user = user;
    for (const x of records) this.#versions.set(x.name, x.version);
    return { user: user.slice(), vault, records };
  }

  /**
   * Checks that the vault belongs to the session's user and (unless
   * replacing) that its key version is not below the ledger's.
   * @param {UnlockedVault} vault
   * @param {boolean} [replacing] createVault with replaceSeenVault: the key version is not checked.
   */
  async #checkVault(vault, replacing = false) {
    if (!(vault instanceof UnlockedVault)) throw invalid("not an UnlockedVault");
    const user = await this.#userId();
    if (!equalBytes(user, vault.userId)) throw invalid("the vault is not the session user's");
    if (!replacing && vault.keyVersion < this.#ledger.keyVersion(user)) {
      throw new ZKError("rollback", `keyhold/zk: the vault's key version ${vault.keyVersion} is below the ${this.#ledger.keyVersion(user)} seen before`);
    }
    return user;
  }

  /**
   * Creates the user's vault (createVault, then PUT {base}/vault with
   * Keyhold-Expect 0). ZKError "conflict" when the user has one already;
   * "rollback", before any work, when the ledger has seen a vault of this
   * user (a key version above 0): a server answering that there is none
   * (status().vault null, a 404) after this device saw one is dropping or
   * hiding it, and a new vault would put a new master key and recovery
   * keys in its place. opts.replaceSeenVault === true allows it: only
   * after the user deleted their vault (their account) on purpose. The
   * ledger's key version is then set to the new vault's; its record
   * entries are kept (a Storage cannot list them), so names the old vault
   * used stay at the versions seen (rollback if the server starts them
   * again from 1). When the write may stand (ZKError "outcome_unknown",
   * or "storage" with .stored), the error carries .recoveryKeys (show
   * them) and .vault, unlocked (retry saveVault).
   * @param {string} passphrase
   * @param {CreateOptions & {replaceSeenVault?: boolean}} [opts]
   * @returns {Promise<CreatedVault>}
   */
  async createVault(passphrase, opts = {}) {
    const user = await this.#userId();
    const { replaceSeenVault, ...createOpts } = opts ?? {};
    const replacing = replaceSeenVault === true;
    const seen = this.#ledger.keyVersion(user);
    if (seen > 0 && !replacing) {
      throw new ZKError("rollback", `keyhold/zk: this device has seen the user's vault (key version ${seen}); the server says there is none`);
    }
    const created = await createVault(user, passphrase, createOpts);
    try {
      await this.#checkVault(created.vault, replacing);
      this.#vaultVersions.set(created.vault, 0n);
      const v = await this.#putVault(0n, created.vault.record, "creating the vault");
      this.#vaultVersions.set(created.vault, v);
      stood(() => {
        if (replacing) this.#ledger[INTERNAL](INTERNAL, user, created.vault.keyVersion);
        else this.#ledger.seeKeyVersion(user, created.vault.keyVersion);
      }, v);
      return created;
    } catch (e) {
      if (e instanceof ZKError && (e.code === "outcome_unknown" || e.stored)) {
        // The vault may stand (or does): its recovery keys are the only
        // ones that would open it; the vault stays unlocked for a retry.
        e.recoveryKeys = created.recoveryKeys.slice();
        e.vault = created.vault;
        throw e;
      }
      created.vault.lock();
      throw e;
    }
  }

  /**
   * Writes the vault record (PUT {base}/vault, Keyhold-Expect expect) and
   * returns its new version. A failure without a definite answer (a
   * network error, a 5xx, an unparseable 2xx, a 409 at a version above
   * expect: a resend of this write may have met it) is settled by reading
   * the vault back: these very bytes there, the write stood (its version
   * returned); another record or none, it did not (the original error
   * thrown); no answer either, ZKError "outcome_unknown". Other refusals
   * (a 409 at or below expect, 4xx) are thrown as they are.
   * @param {bigint} expect
   * @param {Uint8Array} record
   * @param {string} what
   * @returns {Promise<bigint>}
   */
  async #putVault(expect, record, what) {
    /** @type {any} */
    let failure;
    try {
      const r = await this.#request("PUT", "/vault", { expect, body: record });
      if (r.ok) return await writtenVersion(r, expect + 1n);
      failure = await this.#error(r, what);
    } catch (e) {
      failure = e;
    }
    const definite =
      failure instanceof ZKError &&
      failure.status !== undefined &&
      failure.status !== 200 &&
      failure.status < 500 &&
      !(failure.code === "conflict" && failure.version !== undefined && failure.version > expect);
    if (definite) throw failure;
    let back;
    try {
      const r = await this.#request("GET", "/vault");
      if (r.status === 404) {
        await r.body?.cancel();
        back = null;
      } else if (r.ok) {
        back = { version: headerVersion(r), record: await bytesBody(r, MAX_RECORD_LEN) };
      }
    } catch {
      back = undefined;
    }
    if (back === undefined) {
      throw new ZKError("outcome_unknown", `keyhold/zk: ${what}: no definite answer, and the vault could not be read back: the write may or may not stand`, {
        status: failure?.status,
      });
    }
    if (back !== null && back.version > expect && equalBytes(back.record, record)) return back.version;
    throw failure;
  }

  /**
   * Reads the vault record (GET {base}/vault).
   * @returns {Promise<{record: Uint8Array, version: bigint}>}
   */
  async #getVault() {
    const r = await this.#request("GET", "/vault");
    if (r.status === 404 && this.#ledger.keyVersion(await this.#userId()) > 0) {
      // This device has unlocked the user's vault before: a server that
      // now has none lost or withheld it.
      await r.body?.cancel();
      throw new ZKError("rollback", "keyhold/zk: the server has no vault, but this device has seen one", { status: 404 });
    }
    if (!r.ok) throw await this.#error(r, "reading the vault");
    const version = headerVersion(r);
    const record = await bytesBody(r, MAX_RECORD_LEN);
    return { record, version };
  }

  /**
   * Unlocks the user's vault with one of: {passphrase}, {recoveryKey} or
   * {credentialId, secret}. With a recovery key, the used slot is replaced
   * and the vault record written back (compare-and-swap) before this
   * resolves to {vault, recoveryKey} (show the new key); otherwise it
   * resolves to the vault. ZKError "rollback" when the vault's key version
   * is below one seen before, or when the server has no vault but this
   * device has seen one; "not_found" when the user has no vault. When the
   * recovery unlock's write may stand (ZKError "outcome_unknown", or
   * "storage" with .stored), the error carries the new key (.recoveryKey:
   * show it) and the vault, unlocked (.vault: retry saveVault).
   * @param {{passphrase: string} | {recoveryKey: string} | {credentialId: Uint8Array, secret: Uint8Array}} how
   * @returns {Promise<UnlockedVault | RecoveryUnlock>}
   */
  async unlock(how) {
    const user = await this.#userId();
    if (how === null || typeof how !== "object") throw invalid("unlock takes {passphrase}, {recoveryKey} or {credentialId, secret}");
    const { record, version } = await this.#getVault();
    /** @type {UnlockedVault} */
    let vault;
    let newKey;
    if ("passphrase" in how) {
      vault = await unlockWithPassphrase(record, user, how.passphrase);
    } else if ("recoveryKey" in how) {
      ({ vault, recoveryKey: newKey } = await unlockWithRecoveryKey(record, user, how.recoveryKey));
    } else if ("credentialId" in how && "secret" in how) {
      vault = await unlockWithSecret(record, user, how.credentialId, how.secret);
    } else {
      throw invalid("unlock takes {passphrase}, {recoveryKey} or {credentialId, secret}");
    }
    try {
      await this.#checkVault(vault);
      this.#vaultVersions.set(vault, version);
      if (newKey !== undefined) await this.saveVault(vault);
      this.#ledger.seeKeyVersion(user, vault.keyVersion);
    } catch (e) {
      if (newKey !== undefined && e instanceof ZKError && (e.code === "outcome_unknown" || e.stored)) {
        // The server may hold (or holds) the record with the used slot
        // replaced: the new key may be the only one that opens it.
        e.recoveryKey = newKey;
        e.vault = vault;
        throw e;
      }
      vault.lock();
      throw e;
    }
    return newKey === undefined ? vault : { vault, recoveryKey: newKey };
  }

  /**
   * Runs navigator.credentials.get with the server's PRF options and
   * returns the credential's raw ID and PRF output (never sent anywhere).
   * @param {any} options
   */
  async #prf(options) {
    let o = options;
    if (typeof o === "string") {
      try {
        o = JSON.parse(o);
      } catch {
        throw invalid("the passkey options are not JSON");
      }
    }
    const pk = o?.publicKey ?? o;
    if (pk === null || typeof pk !== "object" || typeof pk.challenge !== "string") throw invalid("the passkey options have no publicKey.challenge");
    const creds = this.#credentials ?? globalThis.navigator?.credentials;
    if (!creds || typeof creds.get !== "function") throw new ZKError("unsupported", "keyhold/zk: this browser has no WebAuthn");
    /** @type {CredentialRequestOptions} */
    const args = { publicKey: await zeroKnowledgePRFInputs(requestOptions(pk)) };
    if (this.#fetchOptions.signal) args.signal = this.#fetchOptions.signal;
    const cred = /** @type {any} */ (await creds.get(args));
    if (!cred) throw unlockFailed();
    const id = bytesOf(cred.rawId);
    const out = cred.getClientExtensionResults?.()?.prf?.results?.first;
    const secret = bytesOf(out);
    if (out && ArrayBuffer.isView(out)) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).fill(0);
    else if (out instanceof ArrayBuffer) new Uint8Array(out).fill(0);
    if (!id || !secret) throw new ZKError("unsupported", "keyhold/zk: the authenticator gave no PRF output");
    return { id, secret };
  }

  /**
   * Unlocks the user's vault with a passkey: runs navigator.credentials.get
   * with the server's options (prf.evalByCredential), then unlock with the
   * credential's rawId and prf.results.first.
   * @param {PasskeyOptions} opts
   * @returns {Promise<UnlockedVault>}
   */
  async unlockWithPasskey({ options }) {
    const { id, secret } = await this.#prf(options);
    try {
      return /** @type {UnlockedVault} */ (await this.unlock({ credentialId: id, secret }));
    } finally {
      secret.fill(0);
    }
  }

  /**
   * Lets a passkey unlock the vault: the ceremony of unlockWithPasskey,
   * then addSecretSlot and saveVault (on a failed write the record is put
   * back, as in changePassphrase).
   * @param {UnlockedVault} vault
   * @param {PasskeyOptions} opts
   * @returns {Promise<void>}
   */
  async addPasskey(vault, { options }) {
    await this.#checkVault(vault);
    const { id, secret } = await this.#prf(options);
    const old = vault.record;
    try {
      await vault.addSecretSlot(id, secret);
      await this.saveVault(vault);
    } catch (e) {
      if (!vault.locked && !mayStand(e)) vault[INTERNAL](INTERNAL, old);
      throw e;
    } finally {
      secret.fill(0);
    }
  }

  /**
   * Stores vault.record (PUT {base}/vault) with compare-and-swap on the
   * version the vault was read at (or last saved at) by this client.
   * ZKError "conflict" when another write came first (unlock again). A
   * failure without a definite answer is settled by reading the vault
   * back (its bytes there: success); when that fails too, ZKError
   * "outcome_unknown" with .vault: call saveVault again (a write that did
   * stand is then recognized, by its bytes, behind the 409).
   * @param {UnlockedVault} vault
   * @returns {Promise<bigint>} The vault record's new version.
   */
  async saveVault(vault) {
    const user = await this.#checkVault(vault);
    const expect = this.#vaultVersions.get(vault);
    if (expect === undefined) throw invalid("this vault was not read or created through this client");
    let v;
    try {
      v = await this.#putVault(expect, vault.record, "saving the vault");
    } catch (e) {
      if (e instanceof ZKError && e.code === "outcome_unknown") e.vault = vault;
      throw e;
    }
    this.#vaultVersions.set(vault, v);
    stood(() => this.#ledger.seeKeyVersion(user, vault.keyVersion), v);
    return v;
  }

  /**
   * Changes the passphrase (vault.changePassphrase, then saveVault); on a
   * failed write the vault's record is put back as it was, unless the
   * write may stand (ZKError "outcome_unknown", or "storage" with
   * .stored): then the vault keeps the new record (retry saveVault).
   * @param {UnlockedVault} vault
   * @param {string} passphrase
   * @param {{iterations?: number}} [opts]
   * @returns {Promise<void>}
   */
  async changePassphrase(vault, passphrase, opts = {}) {
    await this.#checkVault(vault);
    const old = vault.record;
    try {
      await vault.changePassphrase(passphrase, opts);
      await this.saveVault(vault);
    } catch (e) {
      if (!vault.locked && !mayStand(e)) vault[INTERNAL](INTERNAL, old);
      throw e;
    }
  }

  /**
   * Replaces the vault's recovery keys with n new ones
   * (vault.regenerateRecoveryKeys, then saveVault) and returns them (show
   * them once). On a failed write the vault's record is put back as it
   * was, unless the write may stand (ZKError "outcome_unknown", or
   * "storage" with .stored): then the error carries the new keys in
   * .recoveryKeys and the vault keeps the new record (retry saveVault).
   * @param {UnlockedVault} vault
   * @param {number} [n] 1 to 16 (default 1).
   * @returns {Promise<string[]>}
   */
  async regenerateRecoveryKeys(vault, n = 1) {
    await this.#checkVault(vault);
    const old = vault.record;
    /** @type {string[] | undefined} */
    let keys;
    try {
      ({ recoveryKeys: keys } = await vault.regenerateRecoveryKeys(n));
      await this.saveVault(vault);
      return keys;
    } catch (e) {
      if (keys !== undefined && mayStand(e)) {
        /** @type {ZKError} */ (e).recoveryKeys = keys.slice();
        throw e;
      }
      if (!vault.locked) vault[INTERNAL](INTERNAL, old);
      throw e;
    }
  }

  /**
   * The server's current version of record `name` (0n when none): from the
   * last status, get or write, else a GET.
   * @param {string} name
   * @returns {Promise<bigint>}
   */
  async #currentVersion(name) {
    const known = this.#versions.get(name);
    if (known !== undefined) return known;
    const r = await this.#request("GET", "/records/" + name);
    if (r.ok) {
      const v = headerVersion(r);
      await r.body?.cancel();
      this.#versions.set(name, v);
      return v;
    }
    const e = await this.#error(r, "reading " + name);
    if (e.code !== "not_found") throw e;
    const v = e.version ?? 0n;
    this.#versions.set(name, v);
    return v;
  }

  /**
   * The version a write of `name` expects: #currentVersion, checked
   * against the ledger's min. A version this client cached that is below
   * min (another tab of this origin wrote since) is dropped and read from
   * the server again: still below min is ZKError "rollback"; else ZKError
   * "conflict" with the fresh .version (another write came first, as an
   * honest server's 409 would say), nothing sent.
   * @param {Uint8Array} user
   * @param {string} name
   * @returns {Promise<bigint>}
   */
  async #expectVersion(user, name) {
    const cached = this.#versions.has(name);
    let expect = await this.#currentVersion(name);
    const min = this.#ledger.min(user, name);
    if (expect >= min) return expect;
    if (cached) {
      this.#versions.delete(name);
      expect = await this.#currentVersion(name);
      if (expect >= min) {
        throw new ZKError("conflict", `keyhold/zk: writing ${name}: another write (of another tab) came first`, { version: expect });
      }
    }
    throw new ZKError("rollback", `keyhold/zk: the server has ${name} at version ${expect}, below the ${min} seen before`);
  }

  /**
   * Seals plaintext as record `name` at the next version and writes it
   * (PUT {base}/records/{name}, compare-and-swap). The new version is
   * expect + 1, expect being the version this client last observed for the
   * name from the server (status, a 409, a get, a write, else a GET). The sealed
   * record is added to the ledger as pending before it is sent; a 2xx
   * makes it the ledger's min and tag (the other pending writes of the
   * name at or below it, or added before it, superseded), a 409 at a
   * version below the one written supersedes it, any other outcome
   * (network error, 5xx, another refusal, an unparseable 2xx, a 409 at or
   * above it: the answer to a resend of a write that landed) leaves it
   * pending. A cached version below the ledger's min (another tab wrote)
   * is read again from the server: "rollback" if still below, else
   * ZKError "conflict" with the fresh version, nothing sent. ZKError
   * "storage" when the ledger's storage fails: before the send (nothing
   * sent), or after a 2xx (.stored true, .version the new version).
   * ZKError "conflict" when another write came first (its version is in
   * .version; get and retry); "invalid_input" when the sealed record passes
   * 1 MiB (more than a server stores).
   * @param {UnlockedVault} vault
   * @param {string} name 1 to 128 of A-Z a-z 0-9 . _ ~ - (not "." or "..").
   * @param {Uint8Array | string} plaintext
   * @returns {Promise<bigint>} The record's new version.
   */
  async put(vault, name, plaintext) {
    checkName(name);
    const user = await this.#checkVault(vault);
    const expect = await this.#expectVersion(user, name);
    if (expect >= U64_MAX) throw invalid("the record's version is at its maximum");
    const version = expect + 1n;
    const sealed = await vault.sealVersion(plaintext, RECORD_CONTEXT + name, version);
    if (sealed.length > MAX_RECORD_ANSWER) throw invalid("a sealed record is at most 1 MiB (the server's bound)");
    const tag = sealed.slice(sealed.length - TAG_LEN);
    this.#ledger.addPending(user, name, version, tag);
    let v;
    try {
      const r = await this.#request("PUT", "/records/" + name, { expect, body: sealed });
      if (!r.ok) {
        const e = await this.#error(r, "writing " + name);
        // A 409 at or above the version written may answer a resend of
        // this very write, which landed: it stays pending.
        if (e.code === "conflict" && (e.version === undefined || e.version < version)) this.#ledger.refuseWrite(user, name, version, tag);
        throw e;
      }
      v = await writtenVersion(r, version);
    } catch (e) {
      if (e instanceof ZKError && e.code === "conflict" && e.version !== undefined) this.#versions.set(name, e.version);
      else this.#versions.delete(name);
      throw e;
    }
    this.#versions.set(name, v);
    stood(() => this.#ledger.confirmWrite(user, name, v, tag), v);
    return v;
  }

  /**
   * Reads and opens record `name` (GET {base}/records/{name}) and applies
   * the ledger's rules (VersionLedger.accept) to the version v and GCM tag
   * (the last 16 bytes) it authenticates: "rollback" when the tag is of a
   * write of this client that was refused (409) or replaced by a later
   * write, when v is below the ledger's min, or when v equals min and the
   * record there was another (another tag) or a tombstone; accepted
   * otherwise (a pending write of this client that did land is promoted).
   * It also refuses with "rollback" a server's Keyhold-Version other than
   * v, and a record at version 0 (a format 1 envelope has version 0): the
   * server stores records from version 1 only, as format 2 envelopes, so
   * such a record is authentic but never stored, a replay. An answer that
   * the record is deleted at version d is ZKError "not_found" only when
   * d > min, or d == min when min is this client's own delete (a record
   * opened live at version N cannot have been deleted at N), else
   * "rollback"; an answer that it never existed is "not_found" only when
   * min is 0, else "rollback". Also "decrypt" (does not open).
   * @param {UnlockedVault} vault
   * @param {string} name
   * @returns {Promise<{plaintext: Uint8Array, version: bigint}>}
   */
  async get(vault, name) {
    checkName(name);
    const user = await this.#checkVault(vault);
    const min = this.#ledger.min(user, name);
    const r = await this.#request("GET", "/records/" + name);
    if (!r.ok) {
      const e = await this.#error(r, "reading " + name);
      if (e.code !== "not_found") throw e;
      this.#ledger.acceptAbsent(user, name, e.version);
      this.#versions.set(name, e.version ?? 0n);
      throw e;
    }
    const claimed = headerVersion(r);
    const sealed = await bytesBody(r, MAX_RECORD_ANSWER);
    const res = await vault.openVersion(sealed, RECORD_CONTEXT + name, min);
    try {
      if (res.version !== claimed) {
        throw new ZKError("rollback", `keyhold/zk: the server calls ${name} version ${claimed} but the record is version ${res.version}`);
      }
      if (res.version === 0n || sealed[0] !== 2) {
        throw new ZKError("rollback", `keyhold/zk: ${name} is an authentic record at version 0, which the server never stores`);
      }
      this.#ledger.accept(user, name, res.version, sealed.subarray(sealed.length - TAG_LEN));
    } catch (e) {
      res.plaintext.fill(0);
      throw e;
    }
    this.#versions.set(name, res.version);
    return res;
  }

  /**
   * Deletes record `name` (DELETE {base}/records/{name},
   * compare-and-swap on the version last observed; the server keeps a
   * tombstone). ZKError "rollback" when that version is below the
   * ledger's min (a cached one is read again first, as in put). On a 2xx
   * the ledger's min becomes the tombstone's version, its tag null (a
   * deletion), and the pending writes of the name at or below it, or
   * pending when the delete was sent, superseded. ZKError "storage" with
   * .stored as in put.
   * @param {UnlockedVault} vault
   * @param {string} name
   * @returns {Promise<bigint>} The tombstone's version.
   */
  async delete(vault, name) {
    checkName(name);
    const user = await this.#checkVault(vault);
    const expect = await this.#expectVersion(user, name);
    const before = this.#ledger.record(user, name).pending.map((m) => m.tag);
    const r = await this.#request("DELETE", "/records/" + name, { expect });
    if (!r.ok) {
      const e = await this.#error(r, "deleting " + name);
      if (e.code === "conflict" && e.version !== undefined) this.#versions.set(name, e.version);
      else this.#versions.delete(name);
      throw e;
    }
    const v = await writtenVersion(r, expect + 1n);
    this.#versions.set(name, v);
    stood(() => this.#ledger.confirmDelete(user, name, v, before), v);
    return v;
  }

  /**
   * The user's live records (from status()).
   * @returns {Promise<{name: string, version: bigint}[]>}
   */
  async list() {
    const s = await this.status();
    return s.records.map((x) => ({ name: x.name, version: x.version }));
  }
}

/**
 * Whether an error of a vault write leaves the write possibly standing
 * (ZKError "outcome_unknown", or "storage" after it stood).
 * @param {unknown} e
 */
const mayStand = (e) => e instanceof ZKError && (e.code === "outcome_unknown" || e.stored === true);

/**
 * Runs a ledger update after a write stood on the server: a ZKError
 * "storage" from it is marked stored, with the version written.
 * @param {() => void} fn
 * @param {bigint} version
 */
function stood(fn, version) {
  try {
    fn();
  } catch (e) {
    if (e instanceof ZKError && e.code === "storage") {
      e.message += ` (the write stood on the server, at version ${version})`;
      e.stored = true;
      e.version = version;
    }
    throw e;
  }
}

/** @param {string} m */
const serverError = (m) => new ZKError("server", "keyhold/zk: " + m, { status: 200 });

/** @param {any} name */
function checkName(name) {
  if (!validName(name)) throw invalid("a record name is 1 to 128 of A-Z a-z 0-9 . _ ~ - (not . or ..)");
}

/**
 * A version from JSON (a non-negative safe integer) or undefined.
 * @param {any} v
 * @returns {bigint | undefined}
 */
function versionField(v) {
  return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
}

/** @param {any} v */
function needVersion(v) {
  const x = versionField(v);
  if (x === undefined) throw serverError("a version is invalid");
  return x;
}

/**
 * The Keyhold-Version header of a 2xx answer.
 * @param {Response} r
 */
function headerVersion(r) {
  const h = r.headers.get("Keyhold-Version");
  if (h === null || !/^[0-9]{1,20}$/.test(h) || BigInt(h) > U64_MAX) throw serverError("the answer has no valid Keyhold-Version");
  return BigInt(h);
}

/**
 * The version of a write's answer {"version": n}, which must be want.
 * @param {Response} r
 * @param {bigint} want
 */
async function writtenVersion(r, want) {
  const v = needVersion((await jsonBody(r))?.version);
  if (v !== want) throw serverError(`the write's version is ${v}, not ${want}`);
  return v;
}

/**
 * The most bytes of a JSON answer read: under 4 MiB (4 MiB - 1, so that a
 * reader whose chunks are 1 MiB stops at the fourth: a stream fetches one
 * chunk ahead of its reader). The status answer, the largest, lists at
 * most Config.MaxRecords + 64 live records (MaxRecords is at most
 * 10,000), of names up to 128 bytes: below it.
 */
const MAX_JSON_ANSWER = (4 << 20) - 1;
/**
 * The most bytes of a record answer read, and of a record put: 1 MiB, the
 * largest a server stores (FORMAT.md §8.2: Config.MaxRecordLen, at most
 * storage.MaxBlobDataLen, 1 MiB).
 */
const MAX_RECORD_ANSWER = 1 << 20;

/**
 * The answer's JSON, at most 4 MiB; undefined when it is not JSON.
 * ZKError "server" when it is larger (read no further than the bound).
 * @param {Response} r
 */
async function jsonBody(r) {
  const b = await bytesBody(r, MAX_JSON_ANSWER);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
}

/**
 * The answer's bytes, at most max: ZKError "server" when a Content-Length
 * says more, or as soon as the bytes read pass max, the body's stream then
 * cancelled (read through response.body.getReader(), so that a server
 * cannot make the client buffer more than max + one chunk). Only when
 * there is no body stream does it fall back to arrayBuffer, with the same
 * check.
 * @param {Response} r
 * @param {number} max
 * @returns {Promise<Uint8Array>}
 */
async function bytesBody(r, max) {
  const tooLarge = () => serverError("the answer is too large");
  const body = r.body;
  const h = r.headers.get("Content-Length");
  if (h !== null && /^[0-9]+$/.test(h.trim()) && Number(h.trim()) > max) {
    await body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!body || typeof body.getReader !== "function") {
    const b = new Uint8Array(await r.arrayBuffer());
    if (b.length > max) throw tooLarge();
    return b;
  }
  const reader = body.getReader();
  /** @type {Uint8Array[]} */
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = value instanceof Uint8Array ? value : bytesOf(value);
    if (!chunk) {
      await reader.cancel().catch(() => {});
      throw serverError("the answer's body is not bytes");
    }
    n += chunk.length;
    if (n > max) {
      chunks.length = 0;
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return concat(...chunks);
}

// ---- WebAuthn options: JSON to navigator.credentials.get's arguments ----

/**
 * PublicKeyCredentialRequestOptionsJSON to PublicKeyCredentialRequestOptions
 * (binary members from base64url, padded or not).
 * @param {any} o
 * @returns {PublicKeyCredentialRequestOptions}
 */
function requestOptions(o) {
  const out = { ...o, challenge: webauthnBytes(o.challenge) };
  if (Array.isArray(o.allowCredentials)) out.allowCredentials = o.allowCredentials.map((/** @type {any} */ d) => ({ ...d, id: webauthnBytes(d.id) }));
  if (o.extensions) {
    out.extensions = { ...o.extensions };
    const prf = o.extensions.prf;
    if (prf) {
      out.extensions.prf = { ...prf };
      if (prf.eval) out.extensions.prf.eval = prfValues(prf.eval);
      if (prf.evalByCredential) {
        /** @type {Record<string, any>} */
        const by = {};
        for (const [id, v] of Object.entries(prf.evalByCredential)) by[id] = prfValues(v);
        out.extensions.prf.evalByCredential = by;
      }
    }
  }
  return out;
}

const PRF_INPUT_LABEL = new TextEncoder().encode("keyhold/v1/zk/prf-input\0");

/**
 * Replaces each credential's PRF salt in options by this mode's own input,
 * SHA-256("keyhold/v1/zk/prf-input" ‖ 0x00 ‖ salt) (FORMAT.md §8.3), and
 * drops any other PRF input and any other extension. The server-side ceremonies of package
 * passkey run through its browser module, which asks with an input of
 * its own domain, SHA-256("keyhold/v1/passkey/prf-input" ‖ 0x00 ‖ salt)
 * (FORMAT.md §7.3), whatever the server sends: the output for this input
 * is another value, which the server can never ask for through keyhold's
 * scripts, so a passkey that unlocks a server-side vault gives the server
 * nothing that opens its zero-knowledge slot.
 * @param {PublicKeyCredentialRequestOptions} pk
 * @returns {Promise<PublicKeyCredentialRequestOptions>}
 */
async function zeroKnowledgePRFInputs(pk) {
  const prf = /** @type {any} */ (pk.extensions)?.prf;
  if (!prf?.evalByCredential) throw new ZKError("unsupported", "keyhold/zk: the passkey options ask for no PRF output");
  /** @type {Record<string, {first: Uint8Array}>} */
  const by = {};
  for (const [id, v] of Object.entries(prf.evalByCredential)) {
    const salt = /** @type {any} */ (v).first;
    const input = new Uint8Array(PRF_INPUT_LABEL.length + salt.length);
    input.set(PRF_INPUT_LABEL);
    input.set(salt, PRF_INPUT_LABEL.length);
    by[id] = { first: new Uint8Array(await crypto.subtle.digest("SHA-256", input)) };
  }
  return { ...pk, extensions: { prf: { evalByCredential: by } } }; // no other extension reaches the authenticator
}

/** @param {any} v */
function prfValues(v) {
  /** @type {{first: Uint8Array, second?: Uint8Array}} */
  const out = { first: webauthnBytes(v?.first) };
  if (v?.second) out.second = webauthnBytes(v.second);
  return out;
}

/**
 * Bytes of base64url as WebAuthn JSON has them (padding allowed).
 * @param {any} s
 */
function webauthnBytes(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw invalid("the passkey options are not base64url");
  const t = s.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(t + "===".slice((t.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
