// secretslot.mjs: an independent implementation of keyhold's secret key
// slot (FORMAT.md 3.1 and 3.2, kind 3: a passkey's PRF output unlocks the
// vault) written from FORMAT.md alone with the WebCrypto API, as a browser
// client will; Go's vault/secretslot_vectors_test.go runs it.
//
// Usage (Node 20 or later), one JSON object on stdin, one on stdout:
//
//   node secretslot.mjs make   < {"user_id", "key_version", "master_key_hex", "credential_id_hex",
//                                 "secret_hex", "salt_hex"?, "nonce_hex"?}
//     -> {"slot_id_hex", "kek_hex", "slot_hex"}   (salt and nonce random when absent)
//   node secretslot.mjs unlock < {"user_id", "record_hex", "credential_id_hex", "secret_hex"}
//     -> {"master_key_hex"}
//
// On failure: {"error": "usage" | "unlock_failed", "message"} and exit 1 or 2.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

class Failure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}
const EXIT = { usage: 1, unlock_failed: 2 };
const usage = (m) => new Failure("usage", m);
const unlockFailed = (m) => new Failure("unlock_failed", m);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
const u8 = (x) => Uint8Array.of(x);
const u16 = (x) => Uint8Array.of(x >>> 8, x & 0xff);
const u32 = (x) => Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);

function toHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function fromHex(s, field) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw usage(`${field} is not hex`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- FORMAT.md 3.2, kind 3 -------------------------------------------------

const KIND_SECRET = 3;
const SLOT_AAD_LABEL = utf8.encode("keyhold/v1/vault/slot\0");
const SECRET_KEK_LABEL = utf8.encode("keyhold/v1/vault/secret-kek\0");
const SECRET_SLOT_ID_LABEL = utf8.encode("keyhold/v1/vault/secret-slot-id\0");

// slot id = SHA-256(label ‖ 0x00 ‖ credential ID), first 16 bytes.
async function slotID(credentialID) {
  return new Uint8Array(await subtle.digest("SHA-256", concat(SECRET_SLOT_ID_LABEL, credentialID))).slice(0, 16);
}

// KEK = HKDF-SHA256(ikm = secret, salt, info = label ‖ 0x00 ‖ u16(len(user)) ‖ user ‖ credential ID, 32).
async function deriveKEK(secret, salt, user, credentialID) {
  const ikm = await subtle.importKey("raw", secret, "HKDF", false, ["deriveBits"]);
  const info = concat(SECRET_KEK_LABEL, u16(user.length), user, credentialID);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, ikm, 256));
}

function slotHeader(s) {
  return concat(u8(s.kind), s.id, u32(s.keyVersion), u16(s.params.length), s.params);
}

function slotAAD(user, s) {
  return concat(SLOT_AAD_LABEL, u16(user.length), user, slotHeader(s));
}

async function gcmKey(raw, use) {
  return subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [use]);
}

// FORMAT.md 3.1: the slots of a record (no retired-key section is read).
function decodeRecord(b) {
  let off = 0;
  const take = (n) => {
    if (off + n > b.length) throw unlockFailed("malformed record: length runs past the end");
    const v = b.subarray(off, off + n);
    off += n;
    return v;
  };
  const num = (n) => take(n).reduce((x, y) => x * 256 + y, 0);
  if (!equal(take(4), Uint8Array.of(0x4b, 0x48, 0x56, 0x01))) throw unlockFailed("malformed record: magic");
  const keyVersion = num(4);
  const n = num(1);
  if (keyVersion === 0 || n < 1 || n > 64) throw unlockFailed("malformed record: header");
  const slots = [];
  for (let i = 0; i < n; i++) {
    const s = { kind: num(1), id: take(16), keyVersion: num(4) };
    s.params = take(num(2));
    s.wrapped = take(num(2));
    if (s.kind < 1 || s.kind > 4 || s.keyVersion === 0) throw unlockFailed("malformed record: slot");
    slots.push(s);
  }
  if (off !== b.length) throw unlockFailed("malformed record: trailing bytes");
  return { keyVersion, slots };
}

async function make(obj) {
  const user = utf8.encode(obj.user_id);
  const credentialID = fromHex(obj.credential_id_hex, "credential_id_hex");
  const secret = fromHex(obj.secret_hex, "secret_hex");
  const mk = fromHex(obj.master_key_hex, "master_key_hex");
  const salt = obj.salt_hex ? fromHex(obj.salt_hex, "salt_hex") : crypto.getRandomValues(new Uint8Array(16));
  const nonce = obj.nonce_hex ? fromHex(obj.nonce_hex, "nonce_hex") : crypto.getRandomValues(new Uint8Array(12));
  if (credentialID.length < 1 || credentialID.length > 1023 || secret.length < 32 || salt.length !== 16 || nonce.length !== 12 || mk.length !== 32) {
    throw usage("an input is out of bounds");
  }
  const s = { kind: KIND_SECRET, id: await slotID(credentialID), keyVersion: obj.key_version, params: concat(u8(16), salt) };
  const kek = await deriveKEK(secret, salt, user, credentialID);
  const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: slotAAD(user, s), tagLength: 128 }, await gcmKey(kek, "encrypt"), mk);
  s.wrapped = concat(nonce, new Uint8Array(ct));
  return { slot_id_hex: toHex(s.id), kek_hex: toHex(kek), slot_hex: toHex(concat(slotHeader(s), u16(s.wrapped.length), s.wrapped)) };
}

async function unlock(obj) {
  const user = utf8.encode(obj.user_id);
  const credentialID = fromHex(obj.credential_id_hex, "credential_id_hex");
  const secret = fromHex(obj.secret_hex, "secret_hex");
  const r = decodeRecord(fromHex(obj.record_hex, "record_hex"));
  const id = await slotID(credentialID);
  // Only a kind 3 slot with this id at the record's key version.
  const s = r.slots.find((s) => s.kind === KIND_SECRET && s.keyVersion === r.keyVersion && equal(s.id, id));
  if (!s) throw unlockFailed("no secret slot for this credential");
  if (s.params.length !== 17 || s.params[0] !== 16 || s.wrapped.length !== 60) throw unlockFailed("malformed secret slot");
  const kek = await deriveKEK(secret, s.params.subarray(1), user, credentialID);
  try {
    const mk = await subtle.decrypt({ name: "AES-GCM", iv: s.wrapped.subarray(0, 12), additionalData: slotAAD(user, s), tagLength: 128 }, await gcmKey(kek, "decrypt"), s.wrapped.subarray(12));
    return { master_key_hex: toHex(new Uint8Array(mk)) };
  } catch {
    throw unlockFailed("the secret does not open the slot");
  }
}

async function main() {
  const cmd = { make, unlock }[process.argv[2]];
  if (!cmd || process.argv.length !== 3) throw usage("usage: node secretslot.mjs make|unlock < input.json");
  process.stdin.setEncoding("utf8");
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  let obj;
  try {
    obj = JSON.parse(input);
  } catch (e) {
    throw usage(`stdin is not JSON: ${e.message}`);
  }
  return cmd(obj);
}

try {
  process.stdout.write(JSON.stringify(await main()) + "\n");
} catch (e) {
  const kind = e instanceof Failure ? e.kind : "usage";
  process.stdout.write(JSON.stringify({ error: kind, message: String(e.message ?? e) }) + "\n");
  process.exitCode = EXIT[kind];
}
