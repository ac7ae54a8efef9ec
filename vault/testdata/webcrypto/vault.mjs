// vault.mjs: an independent implementation of keyhold's vault formats
// (FORMAT.md sections 2 and 3) written from FORMAT.md alone, with nothing
// but the WebCrypto API (crypto.subtle, crypto.getRandomValues),
// TextEncoder/TextDecoder and Uint8Array, as a browser client would. It
// exists to prove that the format is implementable in a browser; Go's
// vault/webcrypto_test.go runs it against package vault.
//
// Usage (Node 20 or later):
//
//   node vault.mjs create < {"user_id", "passphrase", "plaintext" | "plaintext_hex",
//                            "context" | "context_hex", "iterations"?, "record_version"?}
//     -> {"record_hex", "sealed_hex"}
//   node vault.mjs open   < {"record_hex", "user_id", "passphrase", "sealed_hex",
//                            "context" | "context_hex", "min_version"?}
//     -> {"plaintext_hex", "plaintext"?, "record_version"}
//
// With record_version (a decimal string or integer, 0 to 2^64-1), create
// seals a versioned record (envelope format 2, FORMAT.md 3.3); without it,
// format 1. open reads both, reports the record version (a decimal string,
// "0" for format 1) and, with min_version, refuses an older record.
//
// Input is one JSON object on stdin; output is one JSON object on stdout.
// Strings are sent as UTF-8. On failure the output is {"error": kind,
// "message": ...} and the exit status is non-zero:
//
//   1 usage      bad input (not JSON, a field missing or malformed)
//   2 unlock_failed  the record is malformed, or no slot unwraps with the passphrase
//   3 decrypt    the sealed record does not open for this user, context and key
//   4 unsupported    the slot uses a KDF WebCrypto lacks (Argon2id)
//   5 rollback   the sealed record is authentic but its record version is below min_version

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

class Failure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}
const EXIT = { usage: 1, unlock_failed: 2, decrypt: 3, unsupported: 4, rollback: 5 };
const usage = (m) => new Failure("usage", m);
const unlockFailed = (m) => new Failure("unlock_failed", m);
const decryptFailed = (m) => new Failure("decrypt", m);

// ---- bytes ------------------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function u8(x) {
  return Uint8Array.of(x);
}

function u16(x) {
  if (!Number.isInteger(x) || x < 0 || x > 0xffff) throw usage(`length ${x} does not fit in u16`);
  return Uint8Array.of(x >>> 8, x & 0xff);
}

function u32(x) {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw usage(`${x} does not fit in u32`);
  return Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
}

// u64 takes a BigInt.
function u64(x) {
  if (typeof x !== "bigint" || x < 0n || x > 0xffffffffffffffffn) throw usage(`${x} does not fit in u64`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, x);
  return b;
}

// recordVersionField reads an optional u64 as a BigInt (undefined when absent).
function recordVersionField(obj, name) {
  const v = obj[name];
  if (v === undefined) return undefined;
  if (!(Number.isSafeInteger(v) || (typeof v === "string" && /^[0-9]{1,20}$/.test(v)))) throw usage(`${name} must be a decimal integer`);
  const x = BigInt(v);
  u64(x); // range check
  return x;
}

function toHex(b) {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function fromHex(s, field) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw usage(`${field} is not a hex string`);
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function random(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// text encodes a JSON string as UTF-8, refusing lone surrogates (which
// have no UTF-8 form and would otherwise silently become U+FFFD).
function text(s, field) {
  if (typeof s !== "string") throw usage(`${field} must be a string`);
  if (!s.isWellFormed()) throw usage(`${field} is not well-formed Unicode`);
  return utf8.encode(s);
}

// bytesField reads obj[name] (a string, sent as UTF-8) or obj[name_hex].
function bytesField(obj, name) {
  if (typeof obj[name + "_hex"] === "string") return fromHex(obj[name + "_hex"], name + "_hex");
  return text(obj[name], name);
}

// Reader reads big-endian fields, failing with unlock_failed on any read
// past the end (FORMAT.md 3.1: a decoder rejects any length that runs past
// the end).
class Reader {
  constructor(b) {
    this.b = b;
    this.off = 0;
  }
  take(n) {
    if (this.off + n > this.b.length) throw unlockFailed("malformed record: length runs past the end");
    const v = this.b.subarray(this.off, this.off + n);
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
  rest() {
    return this.b.length - this.off;
  }
}

// ---- FORMAT.md section 2: key derivation --------------------------------

const KDF_LABEL = utf8.encode("keyhold/v1/kdf/key");
const ALG_ARGON2ID = 1, ALG_PBKDF2_SHA256 = 2, ALG_PBKDF2_SHA512 = 3;
// No bound on stored iterations is in FORMAT.md; this one (keyhold's
// default verifier limit) keeps a hostile record from costing minutes.
const MAX_ITERATIONS = 10_000_000;

// deriveKEK: key = KDF(NFKC(passphrase), label ‖ 0x00 ‖ salt, params), 32 bytes.
async function deriveKEK(passphrase, p) {
  if (p.alg === ALG_ARGON2ID) throw new Failure("unsupported", "Argon2id slots cannot be unlocked with WebCrypto");
  const hash = { [ALG_PBKDF2_SHA256]: "SHA-256", [ALG_PBKDF2_SHA512]: "SHA-512" }[p.alg];
  if (!hash) throw unlockFailed(`unknown KDF algorithm ${p.alg}`);
  if (p.iterations < 1 || p.iterations > MAX_ITERATIONS) throw unlockFailed(`iterations ${p.iterations} out of bounds`);
  if (!passphrase.isWellFormed()) throw usage("passphrase is not well-formed Unicode");
  const base = await subtle.importKey("raw", utf8.encode(passphrase.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const salt = concat(KDF_LABEL, u8(0), p.salt);
  return new Uint8Array(await subtle.deriveBits({ name: "PBKDF2", hash, salt, iterations: p.iterations }, base, 256));
}

// ---- FORMAT.md section 3.1 and 3.2: vault record, slots --------------------

const MAGIC = Uint8Array.of(0x4b, 0x48, 0x56, 0x01); // "KHV" 0x01
const KIND_PASSPHRASE = 1, KIND_RECOVERY = 2, KIND_SECRET = 3, KIND_WRAPPER = 4;
const WRAPPED_LEN = 12 + 32 + 16;
const SLOT_AAD_LABEL = utf8.encode("keyhold/v1/vault/slot");

// slotHeader is kind ‖ id ‖ u32 key version ‖ u16(L) ‖ params, as in the
// record and in the slot AAD.
function slotHeader(s) {
  return concat(u8(s.kind), s.id, u32(s.keyVersion), u16(s.params.length), s.params);
}

// AAD = label ‖ 0x00 ‖ u16(len(user ID)) ‖ user ID ‖ kind ‖ id ‖ u32 key version ‖ u16(L) ‖ params
function slotAAD(user, s) {
  return concat(SLOT_AAD_LABEL, u8(0), u16(user.length), user, slotHeader(s));
}

function encodeRecord(r) {
  const parts = [MAGIC, u32(r.keyVersion), u8(r.slots.length)];
  for (const s of r.slots) parts.push(slotHeader(s), u16(s.wrapped.length), s.wrapped);
  return concat(...parts);
}

function decodeRecord(b) {
  const d = new Reader(b);
  const magic = d.take(4);
  if (!magic.every((x, i) => x === MAGIC[i])) throw unlockFailed("malformed record: bad magic or format version");
  const keyVersion = d.u32();
  const n = d.u8();
  if (keyVersion === 0) throw unlockFailed("malformed record: key version 0");
  if (n < 1 || n > 64) throw unlockFailed(`malformed record: ${n} slots`);
  const slots = [];
  for (let i = 0; i < n; i++) {
    const kind = d.u8();
    const id = d.take(16);
    const slotVersion = d.u32();
    const params = d.take(d.u16());
    const wrapped = d.take(d.u16());
    if (kind < KIND_PASSPHRASE || kind > KIND_WRAPPER) throw unlockFailed(`malformed record: slot kind ${kind}`);
    if (slotVersion === 0) throw unlockFailed("malformed record: slot key version 0");
    slots.push({ kind, id, keyVersion: slotVersion, params, wrapped });
  }
  if (d.rest() !== 0) throw unlockFailed("malformed record: bytes after the last slot");
  return { keyVersion, slots };
}

// Passphrase params: u8 algorithm ‖ u32 t ‖ u32 m ‖ u8 p ‖ u32 iterations ‖ u8 s ‖ salt.
function encodePassphraseParams(p) {
  return concat(u8(p.alg), u32(p.t), u32(p.m), u8(p.p), u32(p.iterations), u8(p.salt.length), p.salt);
}

function decodePassphraseParams(b) {
  const d = new Reader(b);
  const p = { alg: d.u8(), t: d.u32(), m: d.u32(), p: d.u8(), iterations: d.u32() };
  p.salt = d.take(d.u8());
  if (d.rest() !== 0) throw unlockFailed("malformed passphrase params: trailing bytes");
  // Section 2: the slot's salt is 16 to 64 bytes.
  if (p.salt.length < 16 || p.salt.length > 64) throw unlockFailed(`salt of ${p.salt.length} bytes`);
  // "Fields that do not apply to the algorithm are zero."
  if ((p.alg === ALG_PBKDF2_SHA256 || p.alg === ALG_PBKDF2_SHA512) && (p.t !== 0 || p.m !== 0 || p.p !== 0)) {
    throw unlockFailed("PBKDF2 slot with Argon2id fields set");
  }
  if (p.alg === ALG_ARGON2ID && p.iterations !== 0) throw unlockFailed("Argon2id slot with iterations set");
  return p;
}

async function aesGCMKey(raw, usage) {
  return subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

// wrap: nonce (12) ‖ AES-256-GCM(KEK, nonce, master key, AAD).
async function wrapKey(kek, mk, aad) {
  const nonce = random(12);
  const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, await aesGCMKey(kek, "encrypt"), mk);
  return concat(nonce, new Uint8Array(ct));
}

async function unwrapKey(kek, wrapped, aad) {
  if (wrapped.length !== WRAPPED_LEN) throw unlockFailed(`wrapped key of ${wrapped.length} bytes`);
  let mk;
  try {
    mk = await subtle.decrypt({ name: "AES-GCM", iv: wrapped.subarray(0, 12), additionalData: aad, tagLength: 128 }, await aesGCMKey(kek, "decrypt"), wrapped.subarray(12));
  } catch {
    throw unlockFailed("no slot unwraps with this passphrase");
  }
  return new Uint8Array(mk);
}

// unlock returns the master key and key version. Only passphrase slots
// whose key version equals the record's are used; like keyhold, only the
// first such slot is tried.
async function unlock(recordBytes, user, passphrase) {
  const r = decodeRecord(recordBytes);
  const s = r.slots.find((s) => s.kind === KIND_PASSPHRASE && s.keyVersion === r.keyVersion);
  if (!s) throw unlockFailed("no passphrase slot at the record's key version");
  const kek = await deriveKEK(passphrase, decodePassphraseParams(s.params));
  return { mk: await unwrapKey(kek, s.wrapped, slotAAD(user, s)), keyVersion: r.keyVersion };
}

// ---- FORMAT.md section 3.3: record envelope --------------------------------

const RECORD_KEY_INFO = utf8.encode("keyhold/v1/vault/record-key");
const RECORD_AAD_LABEL = utf8.encode("keyhold/v1/vault/record");
const MAX_CONTEXT = 1024;

// record key = HKDF-SHA256(ikm = master key, salt = empty, info, 32).
async function recordKey(mk, usage) {
  const ikm = await subtle.importKey("raw", mk, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: RECORD_KEY_INFO }, ikm, 256);
  return aesGCMKey(new Uint8Array(bits), usage);
}

// AAD = label ‖ 0x00 ‖ envelope header (6 or 14 bytes) ‖ u16(len(user ID)) ‖ user ID ‖ context.
function recordAAD(header, user, context) {
  return concat(RECORD_AAD_LABEL, u8(0), header, u16(user.length), user, context);
}

// Envelope format 1: 0x01 ‖ 0x01 ‖ u32 key version ‖ nonce ‖ ct ‖ tag;
// format 2 adds u64 record version after the key version. The whole header
// is in the AAD.
async function seal(mk, keyVersion, user, plaintext, context, recordVersion) {
  if (context.length > MAX_CONTEXT) throw usage("context longer than 1024 bytes");
  const header = recordVersion === undefined
    ? concat(u8(1), u8(1), u32(keyVersion))
    : concat(u8(2), u8(1), u32(keyVersion), u64(recordVersion));
  const nonce = random(12);
  const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: recordAAD(header, user, context), tagLength: 128 }, await recordKey(mk, "encrypt"), plaintext);
  return concat(header, nonce, new Uint8Array(ct));
}

// open returns { pt, recordVersion } (recordVersion a BigInt, 0n for format 1).
async function open(mk, keyVersion, user, sealed, context) {
  if (sealed.length < 2) throw decryptFailed("sealed record shorter than 2 bytes");
  if (context.length > MAX_CONTEXT) throw decryptFailed("context longer than 1024 bytes");
  const headerLen = { 1: 6, 2: 14 }[sealed[0]];
  if (headerLen === undefined) throw decryptFailed(`envelope format ${sealed[0]}`);
  if (sealed.length < headerLen + 12 + 16) throw decryptFailed(`sealed record shorter than ${headerLen + 28} bytes`);
  const header = sealed.subarray(0, headerLen);
  if (header[1] !== 1) throw decryptFailed(`envelope algorithm ${header[1]}`);
  const version = new Reader(header.subarray(2, 6)).u32();
  if (version !== keyVersion) throw decryptFailed(`sealed under key version ${version}, vault is at ${keyVersion}`);
  const recordVersion = headerLen === 14 ? new DataView(header.buffer, header.byteOffset + 6, 8).getBigUint64(0) : 0n;
  try {
    const pt = await subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(headerLen, headerLen + 12), additionalData: recordAAD(header, user, context), tagLength: 128 }, await recordKey(mk, "decrypt"), sealed.subarray(headerLen + 12));
    return { pt: new Uint8Array(pt), recordVersion };
  } catch {
    throw decryptFailed("authentication failed");
  }
}

// ---- commands -----------------------------------------------------------------

function userID(obj) {
  const user = text(obj.user_id, "user_id");
  if (user.length < 1 || user.length > 0xffff) throw usage("user_id must be 1 to 65535 bytes");
  return user;
}

function passphraseField(obj) {
  if (typeof obj.passphrase !== "string") throw usage("passphrase must be a string");
  return obj.passphrase;
}

async function create(obj) {
  const user = userID(obj);
  const passphrase = passphraseField(obj);
  const iterations = obj.iterations ?? 600_000;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw usage("iterations out of bounds");
  const plaintext = bytesField(obj, "plaintext");
  const context = bytesField(obj, "context");
  const recordVersion = recordVersionField(obj, "record_version");

  const keyVersion = 1;
  const mk = random(32);
  const params = { alg: ALG_PBKDF2_SHA256, t: 0, m: 0, p: 0, iterations, salt: random(16) };
  const s = { kind: KIND_PASSPHRASE, id: random(16), keyVersion, params: encodePassphraseParams(params) };
  const kek = await deriveKEK(passphrase, params);
  s.wrapped = await wrapKey(kek, mk, slotAAD(user, s));
  const record = encodeRecord({ keyVersion, slots: [s] });
  const sealed = await seal(mk, keyVersion, user, plaintext, context, recordVersion);
  return { record_hex: toHex(record), sealed_hex: toHex(sealed) };
}

async function openCommand(obj) {
  const user = userID(obj);
  const passphrase = passphraseField(obj);
  const record = fromHex(obj.record_hex, "record_hex");
  const sealed = fromHex(obj.sealed_hex, "sealed_hex");
  const context = bytesField(obj, "context");
  const minVersion = recordVersionField(obj, "min_version") ?? 0n;
  const { mk, keyVersion } = await unlock(record, user, passphrase);
  const { pt, recordVersion } = await open(mk, keyVersion, user, sealed, context);
  if (recordVersion < minVersion) throw new Failure("rollback", `record version ${recordVersion} is below ${minVersion}`);
  const out = { plaintext_hex: toHex(pt), record_version: recordVersion.toString() };
  try {
    out.plaintext = new TextDecoder("utf-8", { fatal: true }).decode(pt);
  } catch {
    // not UTF-8: plaintext_hex only
  }
  return out;
}

async function main() {
  const commands = { create, open: openCommand };
  const cmd = commands[process.argv[2]];
  if (!cmd || process.argv.length !== 3) throw usage("usage: node vault.mjs create|open < input.json");
  process.stdin.setEncoding("utf8");
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  let obj;
  try {
    obj = JSON.parse(input);
  } catch (e) {
    throw usage(`stdin is not JSON: ${e.message}`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw usage("stdin must be a JSON object");
  return cmd(obj);
}

try {
  process.stdout.write(JSON.stringify(await main()) + "\n");
} catch (e) {
  const kind = e instanceof Failure ? e.kind : "usage";
  process.stdout.write(JSON.stringify({ error: kind, message: String(e.message ?? e) }) + "\n");
  process.exitCode = EXIT[kind];
}
