// Unit tests of vault/zk/client.js under Node's test runner:
//
//	node --test vault/zk/testdata/client_test.mjs
//
// (zk/node_test.go runs them from go test.) The vectors are FORMAT.md §3's
// (vault/testdata/*.json) and §3.7's fingerprint table. Records the tests
// need beyond the vectors (retired keys, odd parameters, malformed
// structures) are built here by an independent implementation written
// from FORMAT.md with WebCrypto, not with the client's own encoder.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as zk from "../client.js";
import { MapStorage, rejectsCode } from "./testkit.mjs";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const V = JSON.parse(readFileSync(here("../../testdata/vault_vectors.json"), "utf8"));
const SV = JSON.parse(readFileSync(here("../../testdata/secret_slot_vectors.json"), "utf8"));

const S = globalThis.crypto.subtle;
const te = new TextEncoder();
const td = new TextDecoder();
const hex = (s) => Uint8Array.from((s.match(/../g) ?? []).map((x) => parseInt(x, 16)));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const cat = (...ps) => {
  const out = new Uint8Array(ps.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of ps) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const be16 = (x) => Uint8Array.of(x >>> 8, x & 0xff);
const be32 = (x) => Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
const be64 = (x) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(x));
  return b;
};
const MK = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

/** Asserts that p rejects with a ZKError of this code. */
function throwsCode(fn, code, what = "") {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof zk.ZKError, `${what}: not a ZKError: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  });
}

// ---- an independent implementation of the formats (FORMAT.md §2, §3) ----

async function hkdf(ikm, salt, info, bits = 256) {
  const k = await S.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await S.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, k, bits));
}
async function gcm(key, iv, pt, aad) {
  const k = await S.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  return cat(iv, new Uint8Array(await S.encrypt({ name: "AES-GCM", iv, additionalData: aad }, k, pt)));
}
const slotHeader = (s) => cat([s.kind], s.id, be32(s.kv), be16(s.params.length), s.params);
const slotAAD = (user, s) => cat(te.encode("keyhold/v1/vault/slot\0"), be16(user.length), user, slotHeader(s));
const slotBytes = (s) => cat(slotHeader(s), be16(s.wrapped.length), s.wrapped);
function recordBytes(kv, slots, retired = [], count) {
  const parts = [te.encode("KHV"), [1], be32(kv), [count ?? slots.length], ...slots.map(slotBytes)];
  if (retired.length || retired.count !== undefined) {
    parts.push([retired.count ?? retired.length]);
    for (const r of retired) parts.push(be32(r.version), be16(r.sealed.length), r.sealed);
  }
  return cat(...parts);
}
async function secretSlotIndep(user, kv, mk, credId, secret, salt = crypto.getRandomValues(new Uint8Array(16))) {
  const id = new Uint8Array(await S.digest("SHA-256", cat(te.encode("keyhold/v1/vault/secret-slot-id\0"), credId))).slice(0, 16);
  const s = { kind: 3, id, kv, params: cat([16], salt) };
  const kek = await hkdf(secret, salt, cat(te.encode("keyhold/v1/vault/secret-kek\0"), be16(user.length), user, credId));
  s.wrapped = await gcm(kek, crypto.getRandomValues(new Uint8Array(12)), mk, slotAAD(user, s));
  return s;
}
function passParams({ alg = 2, t = 0, m = 0, p = 0, iterations, salt }) {
  return cat([alg], be32(t), be32(m), [p], be32(iterations), [salt.length], salt);
}
async function passSlotIndep(user, kv, mk, pass, { alg = 2, iterations = 1000, salt = crypto.getRandomValues(new Uint8Array(16)), t, m, p } = {}) {
  const s = { kind: 1, id: crypto.getRandomValues(new Uint8Array(16)), kv, params: passParams({ alg, iterations, salt, t, m, p }) };
  const base = await S.importKey("raw", te.encode(pass.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const kek = new Uint8Array(await S.deriveBits({ name: "PBKDF2", hash: alg === 3 ? "SHA-512" : "SHA-256", salt: cat(te.encode("keyhold/v1/kdf/key\0"), salt), iterations }, base, 256));
  s.wrapped = await gcm(kek, crypto.getRandomValues(new Uint8Array(12)), mk, slotAAD(user, s));
  return s;
}
async function retiredIndep(user, currentKV, currentMK, version, oldMK) {
  const kek = await hkdf(currentMK, new Uint8Array(0), te.encode("keyhold/v1/vault/retired-kek"));
  const aad = cat(te.encode("keyhold/v1/vault/retired\0"), be16(user.length), user, be32(currentKV), be32(version));
  return { version, sealed: await gcm(kek, crypto.getRandomValues(new Uint8Array(12)), oldMK, aad) };
}
async function sealIndep(mk, user, kv, context, pt, version) {
  const rk = await hkdf(mk, new Uint8Array(0), te.encode("keyhold/v1/vault/record-key"));
  const header = version === undefined ? cat([1, 1], be32(kv)) : cat([2, 1], be32(kv), be64(version));
  const aad = cat(te.encode("keyhold/v1/vault/record\0"), header, be16(user.length), user, te.encode(context));
  return cat(header, await gcm(rk, crypto.getRandomValues(new Uint8Array(12)), te.encode(pt), aad));
}
async function openIndep(mk, user, context, sealed) {
  const rk = await hkdf(mk, new Uint8Array(0), te.encode("keyhold/v1/vault/record-key"));
  const hl = sealed[0] === 2 ? 14 : 6;
  const aad = cat(te.encode("keyhold/v1/vault/record\0"), sealed.subarray(0, hl), be16(user.length), user, te.encode(context));
  const k = await S.importKey("raw", rk, "AES-GCM", false, ["decrypt"]);
  return td.decode(await S.decrypt({ name: "AES-GCM", iv: sealed.subarray(hl, hl + 12), additionalData: aad }, k, sealed.subarray(hl + 12)));
}
// Crockford base32, bit by bit with BigInt.
function base32Indep(bytes) {
  const A = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const chars = (bytes.length * 8) / 5;
  let s = "";
  for (let i = chars - 1; i >= 0; i--) s += A[Number((n >> BigInt(5 * i)) & 31n)];
  return s.match(/.{4}/g).join("-");
}

const U42 = te.encode("user-42");
const secretRecord = hex(SV.record_hex);
const unlockSV = (i = 0) => zk.unlockWithSecret(secretRecord, SV.user_id, hex(SV.slots[i].credential_id_hex), hex(SV.slots[i].secret_hex));

// ---- FORMAT.md vectors ----

describe("FORMAT.md §3.4 vault vectors", () => {
  let vault;
  test("the record unlocks with the passphrase and the envelopes open", async () => {
    vault = await zk.unlockWithPassphrase(hex(V.record_hex), V.user_id, V.passphrase);
    assert.equal(vault.keyVersion, 1);
    assert.deepEqual(vault.retiredVersions, []);
    assert.equal(td.decode(await vault.open(hex(V.sealed_hex), V.context)), V.plaintext);
    const r = await vault.openVersion(hex(V.versioned.sealed_hex), V.versioned.context, V.versioned.record_version);
    assert.equal(td.decode(r.plaintext), V.versioned.plaintext);
    assert.equal(r.version, BigInt(V.versioned.record_version));
    assert.equal((await vault.openVersion(hex(V.sealed_hex), V.context, 0)).version, 0n);
    assert.deepEqual(zk.encodeVaultRecord(zk.decodeVaultRecord(hex(V.record_hex))), hex(V.record_hex));
  });
  for (const n of V.negative) {
    test("negative: " + n.name, async () => {
      if (n.record_hex) {
        await rejectsCode(zk.unlockWithPassphrase(hex(n.record_hex), n.user_id, V.passphrase), n.expect, n.name);
        return;
      }
      assert.equal(n.user_id, V.user_id);
      vault ??= await zk.unlockWithPassphrase(hex(V.record_hex), V.user_id, V.passphrase);
      const sealed = hex(n.sealed_hex);
      if (n.expect === "rollback") {
        await rejectsCode(vault.openVersion(sealed, n.context, n.min_version), "rollback", n.name);
        await vault.open(sealed, n.context); // authentic all the same
      } else {
        assert.equal(n.expect, "decrypt");
        await rejectsCode(vault.open(sealed, n.context), "decrypt", n.name);
        await rejectsCode(vault.openVersion(sealed, n.context, n.min_version ?? 0), "decrypt", n.name);
      }
    });
  }
});

describe("FORMAT.md §3.2/§3.4 secret slot vectors", () => {
  test("each credential's secret unlocks the record, whose master key is master_key_hex", async () => {
    const rec = zk.decodeVaultRecord(secretRecord);
    assert.equal(rec.keyVersion, SV.key_version);
    for (let i = 0; i < SV.slots.length; i++) {
      const sl = SV.slots[i];
      assert.equal(await zk.secretSlotId(hex(sl.credential_id_hex)), sl.slot_id_hex);
      const d = rec.slots[i + 1];
      assert.equal(d.kind, 3);
      assert.equal(toHex(d.id), sl.slot_id_hex);
      assert.equal(toHex(d.params), "10" + sl.salt_hex);
      assert.equal(toHex(d.wrapped), sl.wrapped_hex);
      assert.equal(toHex(slotBytes({ kind: d.kind, id: d.id, kv: d.keyVersion, params: d.params, wrapped: d.wrapped })), sl.slot_hex);
      assert.equal(toHex(slotAAD(U42, { kind: 3, id: d.id, kv: 1, params: d.params })), sl.aad_hex);
      const v = await unlockSV(i);
      // The vault holds master_key_hex: the independent implementation opens what it seals, and the reverse.
      const sealed = await v.sealVersion("from the client", "ctx", 3);
      assert.equal(await openIndep(hex(SV.master_key_hex), U42, "ctx", sealed), "from the client");
      assert.equal(td.decode(await v.open(await sealIndep(hex(SV.master_key_hex), U42, 1, "c2", "to the client"), "c2")), "to the client");
    }
    const byPass = await zk.unlockWithPassphrase(secretRecord, SV.user_id, SV.passphrase);
    assert.equal(await byPass.fingerprint(), await (await unlockSV(1)).fingerprint());
  });
  for (const n of SV.negative) {
    test("negative: " + n.name, async () => {
      await rejectsCode(zk.unlockWithSecret(hex(n.record_hex), n.user_id, hex(n.credential_id_hex), hex(n.secret_hex)), n.expect, n.name);
    });
  }
});

describe("FORMAT.md §3.7 fingerprint", () => {
  test("master key 00..1f, user ada: v1 and v2", async () => {
    const v1 = await zk._unsafeVaultFromMasterKey("ada", MK.slice(), "pw for v1");
    const v2 = await zk._unsafeVaultFromMasterKey(te.encode("ada"), MK.slice(), "pw for v2", { keyVersion: 2 });
    assert.equal(await v1.fingerprint(), "16HN-Y0V8-SKY4-F7JS");
    assert.equal(await v2.fingerprint(), "G8F3-D63S-ZT8T-6ADV");
    assert.equal(base32Indep(hex("09a35f0368ccfc479e59")), "16HN-Y0V8-SKY4-F7JS");
    // Another user, another fingerprint.
    const other = await zk.unlockWithPassphrase(v1.record, "ada", "pw for v1");
    assert.equal(await other.fingerprint(), "16HN-Y0V8-SKY4-F7JS");
  });
});

// ---- the record decoder ----

describe("vault record decoder (FORMAT.md §3.1)", () => {
  const slot = (over = {}) => ({ kind: 2, id: new Uint8Array(16).fill(7), kv: 3, params: new Uint8Array(17), wrapped: new Uint8Array(60), ...over });
  const retired = [{ version: 1, sealed: new Uint8Array(60) }, { version: 2, sealed: new Uint8Array(60).fill(1) }];
  const good = recordBytes(3, [slot(), slot({ kind: 1 })], retired);

  test("round trip, with and without a retired section", () => {
    for (const b of [good, recordBytes(3, [slot()]), hex(V.record_hex), secretRecord]) {
      assert.deepEqual(zk.encodeVaultRecord(zk.decodeVaultRecord(b)), b);
    }
    const d = zk.decodeVaultRecord(good);
    assert.equal(d.keyVersion, 3);
    assert.deepEqual(d.retired.map((r) => r.version), [1, 2]);
    assert.deepEqual(d.slots.map((s) => s.kind), [2, 1]);
  });
  test("every truncation and a trailing byte are refused", () => {
    const slotsEnd = recordBytes(3, [slot(), slot({ kind: 1 })]).length;
    for (let n = 0; n < good.length; n++) {
      if (n === slotsEnd) {
        assert.equal(zk.decodeVaultRecord(good.subarray(0, n)).retired.length, 0); // the retired section is optional
        continue;
      }
      throwsCode(() => zk.decodeVaultRecord(good.subarray(0, n)), "invalid_record", `truncated to ${n}`);
    }
    throwsCode(() => zk.decodeVaultRecord(cat(good, [0])), "invalid_record", "trailing byte");
    // A record without retired keys, then one byte: an empty retired section.
    throwsCode(() => zk.decodeVaultRecord(cat(recordBytes(3, [slot()]), [0])), "invalid_record", "empty retired section");
  });
  test("bad counts, versions, kinds, lengths and order are refused", () => {
    const cases = {
      "no slots": recordBytes(3, [], [], 0),
      "65 slots": recordBytes(3, Array.from({ length: 65 }, () => slot())),
      "slot count says more": recordBytes(3, [slot()], [], 2),
      "record key version 0": recordBytes(0, [slot()]),
      "slot key version 0": recordBytes(3, [slot({ kv: 0 })]),
      "kind 0": recordBytes(3, [slot({ kind: 0 })]),
      "kind 5": recordBytes(3, [slot({ kind: 5 })]),
      "params over 1024": recordBytes(3, [slot({ params: new Uint8Array(1025) })]),
      "wrapped over 4096": recordBytes(3, [slot({ wrapped: new Uint8Array(4097) })]),
      "bad magic": cat([0x4b, 0x48, 0x57, 1], recordBytes(3, [slot()]).subarray(4)),
      "format version 2": cat([0x4b, 0x48, 0x56, 2], recordBytes(3, [slot()]).subarray(4)),
      "17 retired": recordBytes(20, [slot({ kv: 20 })], Array.from({ length: 17 }, (_, i) => ({ version: i + 1, sealed: new Uint8Array(60) }))),
      "retired out of order": recordBytes(3, [slot()], [retired[1], retired[0]]),
      "retired twice": recordBytes(3, [slot()], [retired[0], retired[0]]),
      "retired at the key version": recordBytes(3, [slot()], [{ version: 3, sealed: new Uint8Array(60) }]),
      "retired above the key version": recordBytes(3, [slot()], [{ version: 4, sealed: new Uint8Array(60) }]),
      "retired version 0": recordBytes(3, [slot()], [{ version: 0, sealed: new Uint8Array(60) }]),
      "retired sealed over 4096": recordBytes(3, [slot()], [{ version: 1, sealed: new Uint8Array(4097) }]),
      "retired count says more": recordBytes(3, [slot()], Object.assign([retired[0]], { count: 2 })),
    };
    for (const [name, b] of Object.entries(cases)) throwsCode(() => zk.decodeVaultRecord(b), "invalid_record", name);
    // The bounds themselves are fine.
    zk.decodeVaultRecord(recordBytes(3, Array.from({ length: 64 }, () => slot({ params: new Uint8Array(1024), wrapped: new Uint8Array(4096) }))));
    zk.decodeVaultRecord(recordBytes(20, [slot({ kv: 20 })], Array.from({ length: 16 }, (_, i) => ({ version: i + 1, sealed: new Uint8Array(4096) }))));
  });
  test("the encoder refuses what the decoder refuses", () => {
    const d = zk.decodeVaultRecord(good);
    const bad = [
      { ...d, keyVersion: 0 },
      { ...d, slots: [] },
      { ...d, slots: Array.from({ length: 65 }, () => d.slots[0]) },
      { ...d, slots: [{ ...d.slots[0], kind: 5 }] },
      { ...d, slots: [{ ...d.slots[0], id: new Uint8Array(15) }] },
      { ...d, slots: [{ ...d.slots[0], keyVersion: 0 }] },
      { ...d, slots: [{ ...d.slots[0], params: new Uint8Array(1025) }] },
      { ...d, slots: [{ ...d.slots[0], wrapped: new Uint8Array(4097) }] },
      { ...d, retired: [d.retired[1], d.retired[0]] },
      { ...d, retired: [{ version: 3, sealed: new Uint8Array(60) }] },
      { ...d, retired: Array.from({ length: 17 }, (_, i) => ({ version: i + 1, sealed: new Uint8Array(1) })) },
    ];
    for (const [i, r] of bad.entries()) throwsCode(() => zk.encodeVaultRecord(r), "invalid_input", "case " + i);
  });
  test("an unlock refuses a malformed record as unlock_failed", async () => {
    await rejectsCode(zk.unlockWithPassphrase(cat(hex(V.record_hex), [0]), V.user_id, V.passphrase), "unlock_failed", "trailing");
    await rejectsCode(zk.unlockWithSecret(secretRecord.subarray(0, 100), SV.user_id, hex(SV.slots[0].credential_id_hex), hex(SV.slots[0].secret_hex)), "unlock_failed");
    await rejectsCode(zk.unlockWithRecoveryKey(good.subarray(1), "u", "0000-0000-0000-0000-0000-0000-0000-0000"), "unlock_failed");
  });
});

// ---- slot parameters, key versions, retired keys ----

describe("slot parameters and key versions (FORMAT.md §3.1, §3.2)", () => {
  test("PBKDF2-SHA512 and SHA-256 slots of other parameters unlock; NFKC applies", async () => {
    const user = te.encode("u");
    const s512 = await passSlotIndep(user, 1, MK, "pass\u00e9", { alg: 3, iterations: 2000, salt: new Uint8Array(64).fill(3) });
    const v = await zk.unlockWithPassphrase(recordBytes(1, [s512]), "u", "passe\u0301"); // NFKC: é
    assert.equal(await openIndep(MK, user, "c", await v.seal("x", "c")), "x");
    const s256 = await passSlotIndep(user, 1, MK, "\uFB01", { iterations: 1 }); // ﬁ → fi
    await zk.unlockWithPassphrase(recordBytes(1, [s256]), "u", "fi");
  });
  test("parameters beyond the reader's limits are 'params'; Argon2id is 'unsupported'", async () => {
    const user = te.encode("u");
    const mk = (params) => ({ kind: 1, id: new Uint8Array(16), kv: 1, params, wrapped: new Uint8Array(60) });
    const salt16 = new Uint8Array(16);
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ iterations: 4000001, salt: salt16 }))]), user, "p"), "params", "iterations over 4M");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ alg: 3, iterations: 2000001, salt: salt16 }))]), user, "p"), "params", "sha512 over 2M");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ iterations: 0, salt: salt16 }))]), user, "p"), "params", "0 iterations");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ iterations: 1000, salt: new Uint8Array(15) }))]), user, "p"), "params", "salt 15");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ alg: 1, t: 3, m: 65536, p: 4, iterations: 0, salt: salt16 }))]), user, "p"), "unsupported", "argon2id");
    // Malformed parameters are a failed unlock, not a parameter error.
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ iterations: 1000, salt: new Uint8Array(65) }))]), user, "p"), "unlock_failed", "salt 65");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(passParams({ alg: 4, iterations: 1000, salt: salt16 }))]), user, "p"), "unlock_failed", "alg 4");
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [mk(cat(passParams({ iterations: 1000, salt: salt16 }), [0]))]), user, "p"), "unlock_failed", "trailing param byte");
    // A wrapped field of another length never unlocks (the same error as a wrong passphrase).
    const s = await passSlotIndep(user, 1, MK, "p", { iterations: 1000 });
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [{ ...s, wrapped: cat(s.wrapped, [0]) }]), user, "p"), "unlock_failed", "W 61");
    // The bounds themselves (4,000,000 and 2,000,000) are read (a wrong passphrase is then tried: not run here).
    // Passphrase length: over 1024 bytes is refused before any work.
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [s]), user, "é".repeat(513)), "invalid_input");
  });
  test("an unlock uses only slots at the record's key version, and the first passphrase slot", async () => {
    const user = te.encode("u");
    const old = await passSlotIndep(user, 1, MK, "p", { iterations: 1000 });
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(2, [old]), user, "p"), "unlock_failed", "slot at kv 1, record at 2");
    const sec = await secretSlotIndep(user, 1, MK, Uint8Array.of(1), new Uint8Array(32).fill(9));
    await rejectsCode(zk.unlockWithSecret(recordBytes(2, [sec]), user, Uint8Array.of(1), new Uint8Array(32).fill(9)), "unlock_failed", "secret slot at kv 1");
    const wrong = await passSlotIndep(user, 1, MK, "q", { iterations: 1000 });
    await rejectsCode(zk.unlockWithPassphrase(recordBytes(1, [wrong, old]), user, "p"), "unlock_failed", "second passphrase slot");
    await zk.unlockWithPassphrase(recordBytes(1, [old, wrong]), user, "p");
    // Unlocking one slot needs nothing of the others: a record at kv 2 whose kv 2 slot opens.
    const mk2 = MK.map((x) => x ^ 0xff);
    const cur = await passSlotIndep(user, 2, mk2, "p", { iterations: 1000 });
    const v = await zk.unlockWithPassphrase(recordBytes(2, [old, cur]), user, "p");
    assert.equal(v.keyVersion, 2);
  });
  test("retired keys open records of their version; a tampered retired key fails the unlock", async () => {
    const user = te.encode("u");
    const mk1 = MK.map((x) => x ^ 0x5a);
    const mk2 = MK.map((x) => x ^ 0xa5);
    const mk3 = MK;
    const cred = Uint8Array.of(4, 2);
    const secret = new Uint8Array(48).fill(1);
    const slot = await secretSlotIndep(user, 3, mk3, cred, secret);
    const r1 = await retiredIndep(user, 3, mk3, 1, mk1);
    const r2 = await retiredIndep(user, 3, mk3, 2, mk2);
    const v = await zk.unlockWithSecret(recordBytes(3, [slot], [r1, r2]), user, cred, secret);
    assert.deepEqual(v.retiredVersions, [1, 2]);
    assert.equal(td.decode(await v.open(await sealIndep(mk1, user, 1, "a", "one"), "a")), "one");
    const r = await v.openVersion(await sealIndep(mk2, user, 2, "b", "two", 9), "b", 9);
    assert.equal(td.decode(r.plaintext), "two");
    assert.equal(r.version, 9n);
    // A version the vault does not hold does not open; new records are sealed at the current version.
    await rejectsCode(v.open(await sealIndep(mk1, user, 4, "a", "x"), "a"), "decrypt");
    const sealed = await v.seal("now", "c");
    assert.deepEqual(Array.from(sealed.subarray(0, 6)), [1, 1, 0, 0, 0, 3]);
    assert.equal(await openIndep(mk3, user, "c", sealed), "now");
    // The retired key's AAD binds the record's key version and its own.
    const moved = { version: 2, sealed: r1.sealed };
    await rejectsCode(zk.unlockWithSecret(recordBytes(3, [slot], [moved]), user, cred, secret), "unlock_failed", "retired key moved");
    const flipped = { version: 1, sealed: r1.sealed.map((x, i) => (i === 20 ? x ^ 1 : x)) };
    await rejectsCode(zk.unlockWithSecret(recordBytes(3, [slot], [flipped]), user, cred, secret), "unlock_failed", "retired key flipped");
    // A slot change keeps the retired section as it is.
    await v.addSecretSlot(Uint8Array.of(9), new Uint8Array(32));
    assert.deepEqual(zk.decodeVaultRecord(v.record).retired.map((k) => toHex(k.sealed)), [toHex(r1.sealed), toHex(r2.sealed)]);
  });
});

// ---- recovery keys ----

describe("recovery keys (FORMAT.md §3.2)", () => {
  test("parseRecoveryKey is forgiving and exact", () => {
    const bytes = hex("00443214c74254b635cf84653a56d7c675be77df");
    const text = base32Indep(bytes);
    assert.equal(text, "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ");
    assert.deepEqual(zk.parseRecoveryKey(text), bytes);
    assert.deepEqual(zk.parseRecoveryKey(" o123 4567 89ab cdef ghjk mnpq rstv wxyz "), bytes);
    assert.deepEqual(zk.parseRecoveryKey("0I23\u2013456789abcdefghjkmnpqrstv\twxyz"), bytes);
    assert.deepEqual(zk.parseRecoveryKey("0L23456789ABCDEFGHJKMNPQRSTVWXYZ"), zk.parseRecoveryKey("0123456789ABCDEFGHJKMNPQRSTVWXYZ"));
    for (const bad of ["", "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY", "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ0", "U123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ",
      "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY\u0130", " ".repeat(230) + text, 42]) {
      throwsCode(() => zk.parseRecoveryKey(bad), "invalid_input", String(bad));
    }
  });
  test("create, unlock with a recovery key (its slot replaced), the used key no longer opens", async () => {
    const { vault, recoveryKeys } = await zk.createVault("rk-user", "a long passphrase", { recoveryKeys: 2 });
    assert.equal(recoveryKeys.length, 2);
    for (const k of recoveryKeys) assert.match(k, /^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$/);
    const sealed = await vault.sealVersion("kept", "c", 1);
    const { vault: v2, recoveryKey } = await zk.unlockWithRecoveryKey(vault.record, "rk-user", recoveryKeys[1].toLowerCase().replaceAll("-", " "));
    assert.equal(td.decode(await v2.open(sealed, "c")), "kept");
    assert.notEqual(recoveryKey, recoveryKeys[1]);
    const before = vault.slots();
    const after = v2.slots();
    assert.equal(after.length, 3);
    assert.deepEqual(after.slice(0, 2), before.slice(0, 2));
    assert.notEqual(after[2].id, before[2].id);
    await rejectsCode(zk.unlockWithRecoveryKey(v2.record, "rk-user", recoveryKeys[1]), "unlock_failed", "used key");
    await zk.unlockWithRecoveryKey(v2.record, "rk-user", recoveryKeys[0]);
    await zk.unlockWithRecoveryKey(v2.record, "rk-user", recoveryKey);
    await rejectsCode(zk.unlockWithRecoveryKey(v2.record, "another-user", recoveryKey), "unlock_failed", "another user");
    await rejectsCode(zk.unlockWithRecoveryKey(v2.record, "rk-user", "not a key"), "unlock_failed", "unparseable");
    // regenerateRecoveryKeys replaces every recovery slot.
    const { record, recoveryKeys: fresh } = await v2.regenerateRecoveryKeys(3);
    assert.deepEqual(record, v2.record);
    assert.deepEqual(v2.slots().map((s) => s.kind), [1, 2, 2, 2]);
    await rejectsCode(zk.unlockWithRecoveryKey(record, "rk-user", recoveryKeys[0]), "unlock_failed", "old key after regenerate");
    for (const k of fresh) await zk.unlockWithRecoveryKey(record, "rk-user", k);
    await rejectsCode(v2.regenerateRecoveryKeys(0), "invalid_input");
    await rejectsCode(v2.regenerateRecoveryKeys(17), "invalid_input");
  });
});

// ---- round trips of every operation ----

describe("round trips", () => {
  test("create, unlock, seal and open both formats, change the passphrase", async () => {
    await rejectsCode(zk.createVault("u", "p", { iterations: 599999 }), "invalid_input");
    await rejectsCode(zk.createVault("", "p"), "invalid_input");
    await rejectsCode(zk.createVault("x".repeat(256), "p"), "invalid_input");
    const { vault, recoveryKeys } = await zk.createVault(Uint8Array.of(0, 1, 2, 255), "correct horse", { recoveryKeys: 0 });
    assert.deepEqual(recoveryKeys, []);
    const d = zk.decodeVaultRecord(vault.record);
    assert.equal(d.keyVersion, 1);
    assert.equal(d.slots.length, 1);
    assert.equal(d.slots[0].kind, 1);
    assert.equal(toHex(d.slots[0].params.subarray(0, 15)), "02" + "00000000" + "00000000" + "00" + "000927c0" + "10");
    assert.equal(d.slots[0].wrapped.length, 60);
    const s1 = await vault.seal("format one", "ctx");
    const s2 = await vault.sealVersion(te.encode("format two"), te.encode("ctx"), 2n ** 64n - 1n);
    assert.equal(s1.length, 34 + 10);
    assert.equal(s2.length, 42 + 10);
    await rejectsCode(vault.sealVersion("x", "c", 2n ** 64n), "invalid_input");
    await rejectsCode(vault.sealVersion("x", "c", -1), "invalid_input");
    await rejectsCode(vault.seal("x", "c".repeat(1025)), "invalid_input");
    const v = await zk.unlockWithPassphrase(vault.record, Uint8Array.of(0, 1, 2, 255), "correct horse");
    assert.equal(td.decode(await v.open(s1, "ctx")), "format one");
    const r = await v.openVersion(s2, "ctx", 2n ** 64n - 1n);
    assert.equal(r.version, 2n ** 64n - 1n);
    await rejectsCode(v.openVersion(s1, "ctx", 1), "rollback");
    await rejectsCode(v.open(s1, "other"), "decrypt");
    assert.equal(await v.fingerprint(), await vault.fingerprint());
    // changePassphrase: same master key and key version, the old passphrase no longer opens.
    const rec = await v.changePassphrase("battery staple", { iterations: 600001 });
    assert.deepEqual(rec, v.record);
    assert.notEqual(v.slots()[0].id, vault.slots()[0].id);
    assert.equal(v.slots().length, 1);
    await rejectsCode(zk.unlockWithPassphrase(rec, Uint8Array.of(0, 1, 2, 255), "correct horse"), "unlock_failed");
    const v3 = await zk.unlockWithPassphrase(rec, Uint8Array.of(0, 1, 2, 255), "battery staple");
    assert.equal(td.decode(await v3.open(s1, "ctx")), "format one");
    assert.equal(v3.keyVersion, 1);
    await rejectsCode(v3.changePassphrase("x", { iterations: 1000 }), "invalid_input");
  });
  test("secret slots: add, replace, unlock, remove; the passphrase slot stays", async () => {
    const user = "slot-user";
    const v = (await zk.createVault(user, "pw pw pw")).vault;
    const cred = hex("8f3c1b7ad2e64509");
    const secret = new Uint8Array(32).fill(0x42);
    await v.addSecretSlot(cred, secret);
    assert.deepEqual(Array.from(secret), Array.from(new Uint8Array(32).fill(0x42)), "the caller's secret is not touched");
    const sid = await zk.secretSlotId(cred);
    assert.deepEqual(v.slots().map((s) => [s.kind, s.id === sid]), [[1, false], [2, false], [3, true]]);
    const u = await zk.unlockWithSecret(v.record, user, cred, secret);
    assert.equal(await u.fingerprint(), await v.fingerprint());
    // Adding again for the same credential replaces the slot: the old secret no longer opens.
    const secret2 = new Uint8Array(40).fill(0x43);
    await v.addSecretSlot(cred, secret2);
    assert.equal(v.slots().length, 3);
    await rejectsCode(zk.unlockWithSecret(v.record, user, cred, secret), "unlock_failed");
    await zk.unlockWithSecret(v.record, user, cred, secret2);
    await rejectsCode(v.addSecretSlot(cred, new Uint8Array(31)), "invalid_input");
    await rejectsCode(v.addSecretSlot(new Uint8Array(0), secret), "invalid_input");
    await rejectsCode(zk.unlockWithSecret(v.record, user, cred, new Uint8Array(1025)), "invalid_input");
    // removeSlot.
    const rec = await v.removeSlot(sid);
    assert.deepEqual(v.slots().map((s) => s.kind), [1, 2]);
    await rejectsCode(zk.unlockWithSecret(rec, user, cred, secret2), "unlock_failed");
    await rejectsCode(v.removeSlot(v.slots()[0].id), "invalid_input", "last passphrase slot");
    await rejectsCode(v.removeSlot("00".repeat(16)), "invalid_input", "unknown slot");
    await rejectsCode(v.removeSlot("XYZ"), "invalid_input");
    await v.removeSlot(v.slots()[1].id);
    assert.deepEqual(v.slots().map((s) => s.kind), [1]);
    // Concurrent slot changes do not lose each other.
    await Promise.all([v.addSecretSlot(Uint8Array.of(1), secret2), v.addSecretSlot(Uint8Array.of(2), secret2), v.regenerateRecoveryKeys(2)]);
    assert.deepEqual(v.slots().map((s) => s.kind).sort(), [1, 2, 2, 3, 3]);
  });
  test("lock drops the keys", async () => {
    const v = await unlockSV(0);
    const sealed = await v.seal("x", "c");
    v.lock();
    assert.equal(v.locked, true);
    await rejectsCode(v.seal("x", "c"), "locked");
    await rejectsCode(v.open(sealed, "c"), "locked");
    await rejectsCode(v.openVersion(sealed, "c", 0), "locked");
    await rejectsCode(v.fingerprint(), "locked");
    await rejectsCode(v.addSecretSlot(Uint8Array.of(1), new Uint8Array(32)), "locked");
    await rejectsCode(v.changePassphrase("p"), "locked");
    await rejectsCode(v.removeSlot(SV.slots[0].slot_id_hex), "locked");
    await rejectsCode(v.regenerateRecoveryKeys(1), "locked");
  });
  test("b64u and unb64u", () => {
    assert.equal(zk.b64u(Uint8Array.of(0xfb, 0xff)), "-_8");
    assert.deepEqual(zk.unb64u("-_8"), Uint8Array.of(0xfb, 0xff));
    assert.deepEqual(zk.unb64u(""), new Uint8Array(0));
    for (const bad of ["-_9", "-_8=", "a", "+/8", 7]) throwsCode(() => zk.unb64u(bad), "invalid_input", String(bad));
  });
});

// ---- the master key stays in non-extractable keys ----

describe("non-extractable master key", () => {
  test("the keys made from the master key are non-extractable; its bytes never reach JS", async () => {
    // Spy on crypto.subtle: every key the client makes, every buffer it gets back.
    const made = [];
    const buffers = [];
    const orig = {};
    const spy = (name, f) => {
      orig[name] = S[name];
      S[name] = async function (...args) {
        const r = await orig[name].apply(S, args);
        f(r, args);
        return r;
      };
    };
    spy("unwrapKey", (k, a) => made.push({ via: "unwrapKey", k, alg: a[4] }));
    spy("deriveKey", (k) => made.push({ via: "deriveKey", k }));
    spy("importKey", (k, a) => made.push({ via: "importKey", k, input: new Uint8Array(a[1].buffer ? a[1].buffer.slice(a[1].byteOffset, a[1].byteOffset + a[1].byteLength) : a[1]) }));
    spy("generateKey", (k) => made.push({ via: "generateKey", k }));
    for (const n of ["encrypt", "decrypt", "deriveBits", "wrapKey", "digest"]) spy(n, (r) => buffers.push(new Uint8Array(r)));
    let exported = 0;
    orig.exportKey = S.exportKey;
    S.exportKey = async (...a) => {
      exported++;
      return orig.exportKey.apply(S, a);
    };
    let v;
    try {
      v = await unlockSV(0); // master key 00..1f
      await v.open(await v.sealVersion("pt", "c", 1), "c");
      await v.fingerprint();
      await v.addSecretSlot(Uint8Array.of(7), new Uint8Array(32).fill(7));
      await v.regenerateRecoveryKeys(1);
      await zk.unlockWithSecret(v.record, SV.user_id, Uint8Array.of(7), new Uint8Array(32).fill(7));
    } finally {
      for (const [n, f] of Object.entries(orig)) S[n] = f;
    }
    assert.equal(exported, 0, "the client exports no key");
    const hkdfKeys = made.filter((m) => m.via === "unwrapKey" && m.k.algorithm.name === "HKDF");
    assert.ok(hkdfKeys.length >= 2);
    for (const m of hkdfKeys) {
      assert.equal(m.k.extractable, false);
      await assert.rejects(S.exportKey("raw", m.k));
    }
    // The only extractable keys are the transient AES-GCM copies that wrapKey needs (one per slot change), usage encrypt only.
    const extractable = made.filter((m) => m.k.extractable);
    assert.equal(extractable.length, 2);
    for (const m of extractable) {
      assert.equal(m.via, "unwrapKey");
      assert.equal(m.k.algorithm.name, "AES-GCM");
      assert.deepEqual(m.k.usages, ["encrypt"]);
    }
    for (const m of made.filter((m) => m.via === "deriveKey")) assert.equal(m.k.extractable, false);
    const mkHex = SV.master_key_hex;
    for (const m of made.filter((m) => m.input)) assert.ok(!toHex(m.input).includes(mkHex), "the master key was imported from bytes");
    for (const b of buffers) assert.ok(!toHex(b).includes(mkHex), "a WebCrypto result holds the master key's bytes");
  });
});

// ---- the Client against a fake server ----


/** An in-memory fake of zk.Handler's HTTP API (zk-spec.md), with knobs to misbehave. */
class FakeServer {
  constructor(user) {
    this.user = te.encode(user);
    this.vault = null; // {data, version}
    this.blobs = new Map(); // name → {data, version, deleted}
    this.history = new Map(); // name → [{data, version}]
    this.requests = [];
    this.misbehave = {}; // name → {serve: {data, version}} | {drop: true} | {claim: n} | {tombstone: n}
    this.status401 = false;
    this.rateLimited = false;
    this.fetch = this.fetch.bind(this);
  }
  json(status, obj, headers = {}) {
    return new Response(JSON.stringify(obj), { status, headers: { "Content-Type": "application/json", ...headers } });
  }
  async fetch(url, init = {}) {
    const method = init.method ?? "GET";
    const headers = new Headers(init.headers);
    const body = init.body === undefined ? undefined : new Uint8Array(init.body);
    this.requests.push({ method, url, headers: [...headers.entries()], body, credentials: init.credentials });
    assert.equal(init.credentials, "same-origin");
    if (this.status401) return this.json(401, { error: "unauthorized" });
    if (this.rateLimited) return this.json(429, { error: "rate_limited" }, { "Retry-After": "7" });
    const m = /^\/zk(\/|\/vault|\/records\/([^/]+))$/.exec(url);
    if (!m) return this.json(404, { error: "no_route" });
    const expect = headers.has("Keyhold-Expect") ? Number(headers.get("Keyhold-Expect")) : undefined;
    if ((method === "PUT") && headers.get("Content-Type") !== "application/octet-stream") return this.json(415, { error: "content_type" });
    if (m[1] === "/") {
      if (method !== "GET") return this.json(405, { error: "method" });
      // As zk.Server: the live records only, in name order.
      const records = [...this.blobs].filter(([, b]) => !b.deleted).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, b]) => ({ name, version: b.version, size: b.data.length }));
      return this.json(200, { user: zk.b64u(this.user), vault: this.vault && { version: this.vault.version }, records });
    }
    if (m[1] === "/vault") {
      if (method === "GET") {
        if (!this.vault) return this.json(404, { error: "not_found" });
        return new Response(this.vault.data, { status: 200, headers: { "Keyhold-Version": String(this.vault.version) } });
      }
      if (method !== "PUT") return this.json(405, { error: "method" });
      let rec;
      try {
        rec = zk.decodeVaultRecord(body);
      } catch {
        return this.json(400, { error: "invalid_record" });
      }
      const cur = this.vault?.version ?? 0;
      if (expect !== cur) return this.json(409, { error: "conflict", version: cur });
      if (this.vault && rec.keyVersion < zk.decodeVaultRecord(this.vault.data).keyVersion) return this.json(400, { error: "key_version_decreased" });
      this.vault = { data: body, version: cur + 1 };
      return this.json(200, { version: cur + 1 });
    }
    const name = m[2];
    const b = this.blobs.get(name);
    const bad = this.misbehave[name];
    if (method === "GET") {
      if (bad?.drop) return this.json(404, { error: "not_found" });
      if (bad?.tombstone !== undefined) return this.json(404, { error: "deleted", version: bad.tombstone });
      if (bad?.serve) return new Response(bad.serve.data, { status: 200, headers: { "Keyhold-Version": String(bad.claim ?? bad.serve.version) } });
      if (!b) return this.json(404, { error: "not_found" });
      if (b.deleted) return this.json(404, { error: "deleted", version: b.version });
      return new Response(b.data, { status: 200, headers: { "Keyhold-Version": String(bad?.claim ?? b.version) } });
    }
    const cur = b?.version ?? 0;
    if (method === "PUT") {
      if (body.length < 42 || body[0] !== 2 || body[1] !== 1) return this.json(400, { error: "invalid_record" });
      if (expect !== cur) return this.json(409, { error: "conflict", version: cur });
      if (new DataView(body.buffer).getBigUint64(6) !== BigInt(expect + 1)) return this.json(400, { error: "version_mismatch" });
      this.blobs.set(name, { data: body, version: cur + 1, deleted: false });
      if (!this.history.has(name)) this.history.set(name, []);
      this.history.get(name).push({ data: body, version: cur + 1 });
      return this.json(200, { version: cur + 1 });
    }
    if (method === "DELETE") {
      if (!b || b.deleted) return this.json(404, { error: "not_found" });
      if (expect !== cur) return this.json(409, { error: "conflict", version: cur });
      this.blobs.set(name, { data: new Uint8Array(0), version: cur + 1, deleted: true });
      return this.json(200, { version: cur + 1 });
    }
    return this.json(405, { error: "method" });
  }
}

const newClient = (server, ledger = new zk.VersionLedger(new MapStorage()), extra = {}) => new zk.Client({ base: "/zk/", fetch: server.fetch, ledger, ...extra });

describe("Client", () => {
  test("create, unlock, put, get, list, delete", async () => {
    const server = new FakeServer("alice");
    const ledger = new zk.VersionLedger(new MapStorage());
    const c = newClient(server, ledger);
    const st = await c.status();
    assert.deepEqual(st.user, te.encode("alice"));
    assert.equal(st.vault, null);
    const { vault, recoveryKeys } = await c.createVault("alice's passphrase");
    assert.equal(recoveryKeys.length, 1);
    assert.equal(server.vault.version, 1);
    assert.deepEqual(server.vault.data, vault.record);
    assert.equal(ledger.keyVersion("alice"), 1);
    // The ledger saw this vault: a second createVault is refused before any request (finding 3) ...
    const sent = server.requests.length;
    await rejectsCode(c.createVault("again"), "rollback");
    assert.equal(server.requests.length, sent);
    // ... unless the caller says the user deleted it on purpose; here the server still has it.
    await rejectsCode(c.createVault("again", { replaceSeenVault: true }), "conflict");
    assert.equal(ledger.keyVersion("alice"), 1);
    assert.equal(await c.put(vault, "notes", "first"), 1n);
    assert.equal(await c.put(vault, "notes", te.encode("second")), 2n);
    assert.equal(ledger.min("alice", "notes"), 2n);
    // What the server holds is a format 2 envelope at its version, for context keyhold/zk/record/notes.
    const held = server.blobs.get("notes").data;
    assert.equal(held[0], 2);
    assert.equal(td.decode((await vault.openVersion(held, "keyhold/zk/record/notes", 2)).plaintext), "second");
    // Another device (its own ledger) unlocks and reads.
    const c2 = newClient(server);
    const v2 = await c2.unlock({ passphrase: "alice's passphrase" });
    const got = await c2.get(v2, "notes");
    assert.equal(td.decode(got.plaintext), "second");
    assert.equal(got.version, 2n);
    assert.equal(await v2.fingerprint(), await vault.fingerprint());
    await c2.put(v2, "todo", "x");
    assert.deepEqual((await c.list()).map((r) => [r.name, r.version]), [["notes", 2n], ["todo", 1n]]);
    assert.equal(await c.delete(vault, "todo"), 2n);
    assert.deepEqual((await c.list()).map((r) => r.name), ["notes"]);
    await rejectsCode(c.get(vault, "todo"), "not_found");
    await rejectsCode(c2.get(v2, "todo"), "not_found", "deleted after the version c2 saw");
    await rejectsCode(c.get(vault, "never"), "not_found");
    // A record can be written again after its tombstone.
    assert.equal(await c.put(vault, "todo", "back"), 3n);
    assert.equal(td.decode((await c2.get(v2, "todo")).plaintext), "back");
    for (const bad of [".", "..", "a/b", "", "x".repeat(129), "é"]) await rejectsCode(c.put(vault, bad, "x"), "invalid_input", bad);
    assert.equal(await c.put(vault, "x".repeat(128), "the longest name"), 1n);
  });

  test("409 conflicts: records and the vault", async () => {
    const server = new FakeServer("bob");
    const a = newClient(server);
    const { vault: va } = await a.createVault("bob's passphrase");
    const b = newClient(server);
    const vb = await b.unlock({ passphrase: "bob's passphrase" });
    await a.put(va, "r", "a1");
    await b.put(vb, "r", "b2"); // b reads the version by GET
    const e = await a.put(va, "r", "a3").catch((x) => x);
    assert.equal(e.code, "conflict");
    assert.equal(e.version, 2n);
    assert.equal(await a.put(va, "r", "a3"), 3n, "a retry after the conflict writes at the server's version");
    // The vault: both change the passphrase; the second write loses and its record is put back.
    await a.changePassphrase(va, "new passphrase A");
    const before = vb.record;
    await rejectsCode(b.changePassphrase(vb, "new passphrase B"), "conflict");
    assert.deepEqual(vb.record, before);
    await zk.unlockWithPassphrase(server.vault.data, "bob", "new passphrase A");
    await rejectsCode(b.saveVault(await zk.unlockWithPassphrase(server.vault.data, "bob", "new passphrase A")), "invalid_input", "not read through this client");
  });

  test("rollback: an older record, a dropped record, a false Keyhold-Version, an older vault", async () => {
    const server = new FakeServer("carol");
    const ledger = new zk.VersionLedger(new MapStorage());
    const c = newClient(server, ledger);
    const { vault } = await c.createVault("carol's passphrase");
    await c.put(vault, "doc", "v1");
    await c.put(vault, "doc", "v2");
    const [h1, h2] = server.history.get("doc");
    // The server serves version 1 again, as version 1.
    server.misbehave.doc = { serve: h1 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "older record");
    // ... or as version 2 (a Keyhold-Version other than the envelope's).
    server.misbehave.doc = { serve: h1, claim: 2 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "claimed version");
    // The right record under another version number.
    server.misbehave.doc = { serve: h2, claim: 3 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "claimed newer");
    server.misbehave.doc = { serve: h2, claim: 1 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "claimed older");
    // A record the ledger saw, missing; or deleted before the version seen.
    server.misbehave.doc = { drop: true };
    await rejectsCode(c.get(vault, "doc"), "rollback", "dropped");
    server.misbehave.doc = { tombstone: 1 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "deleted before");
    server.misbehave.doc = { tombstone: 3 };
    await rejectsCode(c.get(vault, "doc"), "not_found", "deleted after");
    delete server.misbehave.doc;
    assert.equal(td.decode((await c.get(vault, "doc")).plaintext), "v2");
    // A record of another name (context) or of another user does not open.
    server.misbehave.other = { serve: h2 };
    await rejectsCode(c.get(vault, "other"), "decrypt", "moved to another name");
    delete server.misbehave.other;
    // A fresh client whose ledger (shared storage) saw version 2 refuses version 1, and refuses to write over it.
    const c2 = newClient(server, ledger);
    const v2 = await c2.unlock({ passphrase: "carol's passphrase" });
    server.blobs.set("doc", { data: h1.data, version: 1, deleted: false });
    await rejectsCode(c2.get(v2, "doc"), "rollback", "ledger shared");
    await rejectsCode(c2.put(v2, "doc", "x"), "conflict", "c2's status said version 2");
    await rejectsCode(c2.put(v2, "doc", "x"), "rollback", "write over a rolled-back record");
    // The vault: the ledger saw key version 2; the server puts a key version 1 vault back.
    const mkv2 = await zk._unsafeVaultFromMasterKey("carol", MK.slice(), "pp", { keyVersion: 2 });
    const old = server.vault;
    server.vault = { data: mkv2.record, version: old.version + 1 };
    const c3 = newClient(server, ledger);
    const got = await c3.unlock({ passphrase: "pp" });
    assert.equal(got.keyVersion, 2);
    assert.equal(ledger.keyVersion("carol"), 2);
    server.vault = { data: old.data, version: old.version + 2 };
    await rejectsCode(c3.unlock({ passphrase: "carol's passphrase" }), "rollback", "older vault");
    await rejectsCode(c3.put(vault, "doc", "x"), "rollback", "a vault of an older key version");
  });

  test("unlock with a recovery key writes the replaced slot before resolving", async () => {
    const server = new FakeServer("dave");
    const c = newClient(server);
    const { recoveryKeys } = await c.createVault("dave's passphrase", { recoveryKeys: 2 });
    const { vault, recoveryKey } = await c.unlock({ recoveryKey: recoveryKeys[0] });
    assert.equal(server.vault.version, 2);
    assert.deepEqual(server.vault.data, vault.record);
    await rejectsCode(c.unlock({ recoveryKey: recoveryKeys[0] }), "unlock_failed", "used key");
    await c.unlock({ recoveryKey });
    await c.unlock({ recoveryKey: recoveryKeys[1] });
    await rejectsCode(c.unlock({ passphrase: "wrong" }), "unlock_failed");
    await rejectsCode(c.unlock({}), "invalid_input");
    // A lost race: another device writes the vault between the read and the write; nothing is consumed.
    const racer = newClient(server);
    const rv = await racer.unlock({ passphrase: "dave's passphrase" });
    const keys = (await rv.regenerateRecoveryKeys(1)).recoveryKeys;
    await racer.saveVault(rv);
    let raced = false;
    const c3 = new zk.Client({
      base: "/zk",
      ledger: new zk.VersionLedger(new MapStorage()),
      fetch: async (url, init) => {
        if (init?.method === "PUT" && !raced) {
          raced = true;
          await racer.changePassphrase(rv, "dave's new passphrase");
        }
        return server.fetch(url, init);
      },
    });
    await rejectsCode(c3.unlock({ recoveryKey: keys[0] }), "conflict");
    assert.ok(raced);
    await newClient(server).unlock({ recoveryKey: keys[0] });
  });

  test("passkeys: the PRF output unlocks and never leaves the page", async () => {
    const server = new FakeServer("erin");
    const rawId = crypto.getRandomValues(new Uint8Array(32));
    const prf = crypto.getRandomValues(new Uint8Array(32));
    const calls = [];
    const credentials = {
      async get(args) {
        calls.push(args);
        const by = args.publicKey.extensions.prf.evalByCredential[zk.b64u(rawId)];
        assert.ok(by.first instanceof Uint8Array && by.first.length === 32);
        // FORMAT.md §8.3: not the server's salt (whose output the
        // server-side unlock sees) but SHA-256 of the label and the salt;
        // and no other input.
        const want = new Uint8Array(await crypto.subtle.digest("SHA-256",
          new Uint8Array([...new TextEncoder().encode("keyhold/v1/zk/prf-input"), 0, ...new Uint8Array(32).fill(2)])));
        assert.equal(toHex(by.first), toHex(want));
        assert.equal(toHex(want), "7dfa498327f3bbb72e067cbcf3b8e8510e0675e29684006a6db939a1308c768d");
        assert.deepEqual(Object.keys(args.publicKey.extensions.prf), ["evalByCredential"]);
        assert.deepEqual(Object.keys(args.publicKey.extensions), ["prf"]);
        assert.ok(args.publicKey.challenge instanceof Uint8Array);
        assert.ok(args.publicKey.allowCredentials[0].id instanceof Uint8Array);
        const out = prf.slice().buffer;
        return { rawId: rawId.slice().buffer, getClientExtensionResults: () => ({ prf: { results: { first: out } } }) };
      },
    };
    const options = {
      publicKey: {
        challenge: zk.b64u(new Uint8Array(32).fill(1)),
        allowCredentials: [{ type: "public-key", id: zk.b64u(rawId) }],
        userVerification: "required",
        extensions: { hmacGetSecret: { salt1: zk.b64u(new Uint8Array(32).fill(4)) }, prf: { eval: { first: zk.b64u(new Uint8Array(32).fill(3)) }, evalByCredential: { [zk.b64u(rawId)]: { first: zk.b64u(new Uint8Array(32).fill(2)) } } } },
      },
    };
    const c = newClient(server, undefined, { credentials });
    const { vault } = await c.createVault("erin's passphrase");
    await c.addPasskey(vault, { options });
    assert.equal(server.vault.version, 2);
    assert.ok(vault.slots().some((s) => s.kind === 3));
    const c2 = newClient(server, undefined, { credentials });
    const v = await c2.unlockWithPasskey({ options: JSON.stringify(options) });
    assert.equal(await v.fingerprint(), await vault.fingerprint());
    assert.equal(calls.length, 2);
    const noPrf = { get: async () => ({ rawId: rawId.buffer, getClientExtensionResults: () => ({}) }) };
    await rejectsCode(newClient(server, undefined, { credentials: noPrf }).unlockWithPasskey({ options }), "unsupported");
    await rejectsCode(c.unlockWithPasskey({ options: { publicKey: {} } }), "invalid_input");
    const seen = server.requests.map((r) => toHex(r.body ?? new Uint8Array(0)) + r.url + JSON.stringify(r.headers)).join("|");
    assert.ok(!seen.includes(toHex(prf)) && !seen.includes(zk.b64u(prf)), "the PRF output reached the server");
  });

  test("HTTP errors: 401, 429, 404 vault, bad answers", async () => {
    const server = new FakeServer("fay");
    const c = newClient(server);
    await rejectsCode(c.unlock({ passphrase: "x" }), "not_found");
    server.status401 = true;
    const e = await c.status().catch((x) => x);
    assert.equal(e.code, "server");
    assert.equal(e.status, 401);
    server.status401 = false;
    server.rateLimited = true;
    const r = await c.list().catch((x) => x);
    assert.equal(r.code, "rate_limited");
    assert.equal(r.retryAfter, 7);
    const bad = new zk.Client({ fetch: async () => new Response(JSON.stringify({ user: "!!", vault: null, records: [] })), ledger: new zk.VersionLedger(new MapStorage()) });
    await rejectsCode(bad.status(), "server");
  });

  test("the server never receives the passphrase, the master key or a plaintext", async () => {
    const pass = "the first passphrase \u00e9";
    const pass2 = "the second passphrase";
    const plain = "a plaintext the server must not see";
    const known = await zk._unsafeVaultFromMasterKey("gus", MK.slice(), pass);
    const server = new FakeServer("gus");
    server.vault = { data: known.record, version: 1 };
    const c = newClient(server);
    const v = await c.unlock({ passphrase: pass });
    await c.put(v, "secret", plain);
    assert.equal(td.decode((await c.get(v, "secret")).plaintext), plain);
    await c.changePassphrase(v, pass2);
    await v.regenerateRecoveryKeys(2);
    await c.saveVault(v);
    await c.put(v, "secret", te.encode(plain + " 2"));
    await c.unlock({ passphrase: pass2 });
    assert.ok(server.requests.length >= 8);
    const needles = [te.encode(pass), te.encode(pass.normalize("NFKC")), te.encode(pass2), MK, te.encode(plain)];
    const strings = needles.flatMap((n) => [toHex(n), zk.b64u(n), Buffer.from(n).toString("base64")]).concat([pass, pass2, plain]);
    const contains = (hay, n) => {
      outer: for (let i = 0; i + n.length <= hay.length; i++) {
        for (let j = 0; j < n.length; j++) if (hay[i + j] !== n[j]) continue outer;
        return true;
      }
      return false;
    };
    for (const r of server.requests) {
      const text = r.url + JSON.stringify(r.headers);
      for (const s of strings) assert.ok(!text.includes(s), `request ${r.method} ${r.url} carries a secret in its URL or headers`);
      if (!r.body) continue;
      for (const n of needles) assert.ok(!contains(r.body, n), `request ${r.method} ${r.url} carries a secret in its body`);
      const bodyText = td.decode(r.body);
      for (const s of strings) assert.ok(!bodyText.includes(s));
    }
  });
});

describe("VersionLedger", () => {
  test("versions only rise, per user and name", () => {
    const st = new MapStorage();
    const l = new zk.VersionLedger(st, "p:");
    assert.equal(l.min("u", "a"), 0n);
    l.see("u", "a", 5);
    l.see("u", "a", 3n);
    assert.equal(l.min("u", "a"), 5n);
    assert.equal(l.min("v", "a"), 0n);
    assert.equal(l.min(te.encode("u"), "a"), 5n);
    l.see("u", "a", 2n ** 64n - 1n);
    assert.equal(new zk.VersionLedger(st, "p:").min("u", "a"), 2n ** 64n - 1n);
    assert.equal(new zk.VersionLedger(st, "q:").min("u", "a"), 0n);
    l.seeKeyVersion("u", 3);
    l.seeKeyVersion("u", 2);
    assert.equal(l.keyVersion("u"), 3);
    throwsCode(() => l.see("u", "a", -1), "invalid_input");
    throwsCode(() => l.see("u", "a/b", 1), "invalid_input");
    assert.deepEqual([...st.m.keys()].sort(), ["p:dQ/vault", "p:dQ:a"]); // FORMAT.md §8.1: prefix ‖ B64U(user) ‖ ":" ‖ name
    assert.deepEqual(JSON.parse(st.getItem("p:dQ:a")), { min: "18446744073709551615", tag: null, deleted: false, pending: [], superseded: [] });
    // Without a storage (Node has no localStorage), it keeps versions in memory.
    const mem = new zk.VersionLedger(undefined);
    mem.see("u", "a", 1);
    assert.equal(mem.min("u", "a"), 1n);
  });
});

// ---- the ledger's rules (VersionLedger, Client.get/put/delete) ----

describe("VersionLedger rules: pending, superseded, tags, deletions", () => {
  const tagOf = (b) => b.slice(b.length - 16);
  const isPut = (url, init, name) => init.method === "PUT" && url === "/zk/records/" + name;
  const isGet = (url, init, name) => (init.method ?? "GET") === "GET" && url === "/zk/records/" + name;
  const json = (status, obj) => new Response(JSON.stringify(obj), { status, headers: { "Content-Type": "application/json" } });
  const bytes = (data, version) => new Response(data, { status: 200, headers: { "Keyhold-Version": String(version) } });
  /** A client on a FakeServer whose answers setHook can replace; PUT bodies are kept in `sent`. */
  async function env(user, storage = new MapStorage()) {
    const server = new FakeServer(user);
    const ledger = new zk.VersionLedger(storage);
    const sent = [];
    let hook;
    const fetch = async (url, init = {}) => {
      if (init.method === "PUT" && url.startsWith("/zk/records/")) sent.push(new Uint8Array(init.body));
      return (await hook?.(url, init)) ?? server.fetch(url, init);
    };
    const c = newClient(server, ledger, { fetch });
    const { vault } = await c.createVault(user + "'s passphrase");
    return { server, ledger, c, vault, sent, setHook: (h) => (hook = h) };
  }
  const text = async (p) => td.decode((await p).plaintext);

  test("a pending write that did land is accepted, and the other pending writes become superseded", async () => {
    const { server, ledger, c, vault, sent, setHook } = await env("pam");
    assert.equal(await c.put(vault, "doc", "v1"), 1n);
    // A: the status claims version 4; the write (sealed at 5) is answered 503 and not stored.
    server.blobs.get("doc").version = 4;
    await c.status();
    server.blobs.get("doc").version = 1;
    setHook((url, init) => (isPut(url, init, "doc") ? json(503, { error: "unavailable" }) : undefined));
    await rejectsCode(c.put(vault, "doc", "A, lost"), "server");
    const a = sent.at(-1);
    // B: sealed at 2 (a GET says 1), stored, but the answer is lost (a network error).
    setHook(async (url, init) => {
      if (!isPut(url, init, "doc")) return undefined;
      await server.fetch(url, init);
      throw new TypeError("fetch failed");
    });
    await assert.rejects(c.put(vault, "doc", "B, landed"), TypeError);
    setHook(undefined);
    assert.deepEqual(ledger.record("pam", "doc").pending.map((m) => m.version), [5n, 2n]);
    // B is served: it is this client's write, accepted.
    assert.equal(await text(c.get(vault, "doc")), "B, landed");
    const r = ledger.record("pam", "doc");
    assert.equal(r.min, 2n);
    assert.equal(toHex(r.tag), toHex(tagOf(server.blobs.get("doc").data)));
    assert.deepEqual(r.pending, []);
    assert.deepEqual(r.superseded.map((m) => [m.version, toHex(m.tag)]), [[5n, toHex(tagOf(a))]]);
    // A, at version 5 above B, is refused: B landed after it was sent.
    setHook((url, init) => (isGet(url, init, "doc") ? bytes(a, 5) : undefined));
    await rejectsCode(c.get(vault, "doc"), "rollback", "a pending write superseded by one that landed");
  });

  test("a pending write superseded by a later 2xx write is refused", async () => {
    const { server, ledger, c, vault, sent, setHook } = await env("quin");
    assert.equal(await c.put(vault, "doc", "v1"), 1n);
    server.blobs.get("doc").version = 9; // the status claims 9
    await c.status();
    server.blobs.get("doc").version = 1;
    setHook((url, init) => (isPut(url, init, "doc") ? json(503, { error: "unavailable" }) : undefined));
    await rejectsCode(c.put(vault, "doc", "failed, sealed at 10"), "server");
    const failed = sent.at(-1);
    setHook(undefined);
    assert.equal(await c.put(vault, "doc", "v2"), 2n);
    const r = ledger.record("quin", "doc");
    assert.equal(r.min, 2n);
    assert.deepEqual(r.pending, []);
    assert.deepEqual(r.superseded.map((m) => m.version), [10n]);
    setHook((url, init) => (isGet(url, init, "doc") ? bytes(failed, 10) : undefined));
    await rejectsCode(c.get(vault, "doc"), "rollback", "a write the user was told failed, above the confirmed one");
    setHook(undefined);
    assert.equal(await text(c.get(vault, "doc")), "v2");
  });

  test("a write answered 409 is refused if it is served later", async () => {
    const { server, ledger, c, vault, sent, setHook } = await env("rae");
    assert.equal(await c.put(vault, "doc", "v1"), 1n);
    server.blobs.get("doc").version = 6; // the status claims 6: the write is sealed at 7
    await c.status();
    server.blobs.get("doc").version = 1;
    setHook((url, init) => (isPut(url, init, "doc") ? json(409, { error: "conflict", version: 1 }) : undefined));
    const e = await c.put(vault, "doc", "refused").catch((x) => x);
    assert.equal(e.code, "conflict");
    assert.equal(e.version, 1n);
    const refused = sent.at(-1);
    const r = ledger.record("rae", "doc");
    assert.equal(r.min, 1n);
    assert.deepEqual(r.pending, []);
    assert.deepEqual(r.superseded.map((m) => [m.version, toHex(m.tag)]), [[7n, toHex(tagOf(refused))]]);
    setHook((url, init) => (isGet(url, init, "doc") ? bytes(refused, 7) : undefined));
    await rejectsCode(c.get(vault, "doc"), "rollback", "a write refused with 409, served");
    // The retry after the conflict writes at the server's version.
    setHook(undefined);
    assert.equal(await c.put(vault, "doc", "v2"), 2n);
  });

  test("another authentic record at the version this client holds is refused", async () => {
    const { server, ledger, c, vault } = await env("sal");
    assert.equal(await c.put(vault, "doc", "mine"), 1n);
    assert.equal(toHex(ledger.record("sal", "doc").tag), toHex(tagOf(server.blobs.get("doc").data)));
    const other = await vault.sealVersion("another at version 1", "keyhold/zk/record/doc", 1);
    server.misbehave.doc = { serve: { data: other, version: 1 } };
    await rejectsCode(c.get(vault, "doc"), "rollback", "same version, another tag");
    delete server.misbehave.doc;
    assert.equal(await text(c.get(vault, "doc")), "mine");
    // The same holds for a record opened (not written) by this client: another device's ledger.
    const c2 = newClient(server);
    const v2 = await c2.unlock({ passphrase: "sal's passphrase" });
    assert.equal(await text(c2.get(v2, "doc")), "mine");
    server.misbehave.doc = { serve: { data: other, version: 1 } };
    await rejectsCode(c2.get(v2, "doc"), "rollback", "same version, another tag, after a read");
  });

  test("a ledger value of the old plain-number form is still read, then kept as JSON", async () => {
    const user = "tia";
    const storage = new MapStorage();
    const key = "keyhold-zk:" + zk.b64u(te.encode(user)) + ":doc";
    const { server, ledger, c, vault } = await env(user, storage);
    await c.put(vault, "doc", "v1");
    await c.put(vault, "doc", "v2");
    const [h1, h2] = server.history.get("doc");
    storage.setItem(key, "2"); // as the ledger wrote it before tags
    assert.deepEqual(ledger.record(user, "doc"), { min: 2n, tag: null, deleted: false, pending: [], superseded: [] });
    assert.equal(ledger.min(user, "doc"), 2n);
    server.misbehave.doc = { serve: h1 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "below the old-form min");
    delete server.misbehave.doc;
    assert.equal(await text(c.get(vault, "doc")), "v2"); // the tag was unknown: version 2 is accepted, its tag recorded
    assert.deepEqual(JSON.parse(storage.getItem(key)), { min: "2", tag: zk.b64u(tagOf(h2.data)), deleted: false, pending: [], superseded: [] });
    server.misbehave.doc = { serve: { data: await vault.sealVersion("other", "keyhold/zk/record/doc", 2), version: 2 } };
    await rejectsCode(c.get(vault, "doc"), "rollback", "another record at 2 once the tag is known");
    // Unreadable values read as empty, as before.
    for (const bad of ["{", "[]", '{"min": 3}', '{"min":"x","tag":null,"pending":[],"superseded":[]}', "-1"]) {
      storage.setItem(key, bad);
      assert.equal(ledger.min(user, "doc"), 0n, bad);
    }
  });

  test("deletions: this client's tombstone at min is a deletion; a live record there, or a missing one, is a rollback", async () => {
    const { server, ledger, c, vault } = await env("uma");
    await c.put(vault, "doc", "v1");
    await c.put(vault, "doc", "v2");
    server.misbehave.doc = { tombstone: 2 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "deleted at the version written live");
    delete server.misbehave.doc;
    assert.equal(await c.delete(vault, "doc"), 3n);
    assert.deepEqual(ledger.record("uma", "doc"), { min: 3n, tag: null, deleted: true, pending: [], superseded: [] });
    await rejectsCode(c.get(vault, "doc"), "not_found", "deleted at 3 by this client");
    server.misbehave.doc = { serve: { data: await vault.sealVersion("alive at 3", "keyhold/zk/record/doc", 3), version: 3 } };
    await rejectsCode(c.get(vault, "doc"), "rollback", "a live record at the tombstone's version");
    server.misbehave.doc = { tombstone: 2 };
    await rejectsCode(c.get(vault, "doc"), "rollback", "deleted below");
    server.misbehave.doc = { drop: true };
    await rejectsCode(c.get(vault, "doc"), "rollback", "never existed, after this client deleted it");
    server.misbehave.doc = { tombstone: 5 };
    await rejectsCode(c.get(vault, "doc"), "not_found", "deleted again later");
    delete server.misbehave.doc;
    await rejectsCode(c.put(vault, "doc", "back"), "conflict", "the write expects the version 5 the server claimed");
    assert.equal(await c.put(vault, "doc", "back"), 4n);
    assert.equal(await text(c.get(vault, "doc")), "back");
  });

  test("get refuses version 0 and format 1 records (never stored)", async () => {
    const { server, c, vault } = await env("val");
    server.misbehave.doc = { serve: { data: await vault.sealVersion("v0", "keyhold/zk/record/doc", 0), version: 0 } };
    await rejectsCode(c.get(vault, "doc"), "rollback", "format 2 at version 0");
    server.misbehave.doc = { serve: { data: await vault.seal("f1", "keyhold/zk/record/doc"), version: 0 } };
    await rejectsCode(c.get(vault, "doc"), "rollback", "format 1");
  });

  test("bounds: at most 64 pending (the lowest moved to superseded) and 64 superseded (the lowest dropped), none below min", () => {
    const l = new zk.VersionLedger(new MapStorage());
    const tag = (i) => new Uint8Array(16).fill(i);
    for (let i = 1; i <= 70; i++) l.addPending("u", "a", 100 + i, tag(i));
    let r = l.record("u", "a");
    assert.equal(r.pending.length, 64);
    assert.deepEqual([r.pending[0].version, r.pending.at(-1).version], [107n, 170n], "in the order added");
    assert.deepEqual(r.superseded.map((m) => m.version), [106n, 105n, 104n, 103n, 102n, 101n]);
    // A 2xx of a write no longer pending (dropped for the bound): it leaves
    // superseded; the pending writes above it stay pending (order unknown).
    l.confirmWrite("u", "a", 105, tag(5));
    r = l.record("u", "a");
    assert.equal(r.min, 105n);
    assert.equal(r.pending.length, 64);
    assert.deepEqual(r.superseded.map((m) => m.version), [106n]);
    for (let i = 1; i <= 70; i++) l.refuseWrite("u", "a", 100 + i, tag(i));
    r = l.record("u", "a");
    assert.deepEqual(r.pending, []);
    assert.equal(r.superseded.length, 64);
    assert.deepEqual([r.superseded[0].version, r.superseded.at(-1).version], [170n, 107n]);
    throwsCode(() => l.accept("u", "a", 150, tag(50)), "rollback", "superseded");
    throwsCode(() => l.accept("u", "a", 104, tag(99)), "rollback", "below min");
    throwsCode(() => l.accept("u", "a", 105, tag(99)), "rollback", "another tag at min");
    l.accept("u", "a", 105, tag(5));
    l.accept("u", "a", 200, tag(99));
    r = l.record("u", "a");
    assert.equal(r.min, 200n);
    assert.deepEqual(r.superseded, [], "superseded records below min are dropped (they are refused as below min)");
    throwsCode(() => l.see("u", "a", 1, new Uint8Array(15)), "invalid_input");
    throwsCode(() => l.addPending("u", ".", 1, tag(1)), "invalid_input");
    throwsCode(() => l.addPending("u", "x".repeat(129), 1, tag(1)), "invalid_input");
    l.addPending("u", "x".repeat(128), 1, tag(1));
  });

  test("createVault over a vault the ledger saw: rollback, unless replaceSeenVault", async () => {
    const server = new FakeServer("wes");
    const ledger = new zk.VersionLedger(new MapStorage());
    const c = newClient(server, ledger);
    await c.createVault("wes's first passphrase");
    server.vault = null; // the user deleted it (or the server drops it)
    const sent = server.requests.length;
    await rejectsCode(c.createVault("wes's second passphrase"), "rollback");
    assert.equal(server.requests.length, sent, "refused before any request");
    ledger.seeKeyVersion("wes", 2); // the vault was rotated once, on another device
    await rejectsCode(c.createVault("wes's second passphrase"), "rollback");
    await rejectsCode(c.createVault("wes's second passphrase", { replaceSeenVault: 1 }), "rollback", "only true replaces");
    const { vault } = await c.createVault("wes's second passphrase", { replaceSeenVault: true, recoveryKeys: 2 });
    assert.equal(ledger.keyVersion("wes"), 1);
    assert.equal(zk.decodeVaultRecord(server.vault.data).slots.length, 3, "the other options are kept");
    assert.equal(await c.put(vault, "doc", "new"), 1n);
  });

  test("answer bounds: Content-Length, a stream cancelled past the bound, and no stream", async () => {
    let cancelled = 0;
    const big = (n) => new ReadableStream({ pull(ctl) { ctl.enqueue(new Uint8Array(n)); }, cancel() { cancelled++; } });
    const answers = [];
    const c = new zk.Client({ base: "/zk", ledger: new zk.VersionLedger(new MapStorage()), fetch: async () => answers.shift() });
    // A Content-Length over the bound: refused before reading.
    answers.push(new Response(big(1024), { status: 200, headers: { "Content-Length": String(4 << 20) } }));
    await rejectsCode(c.status(), "server");
    assert.equal(cancelled, 1);
    // An endless stream of 100 KiB chunks: cancelled as soon as it passes 4 MiB.
    let pulled = 0;
    answers.push(new Response(new ReadableStream({ pull(ctl) { pulled++; ctl.enqueue(new Uint8Array(100 << 10).fill(0x20)); }, cancel() { cancelled++; } }), { status: 200 }));
    await rejectsCode(c.status(), "server");
    assert.equal(cancelled, 2);
    assert.ok(pulled <= 43, `${pulled} chunks pulled`);
    // No body stream: arrayBuffer, with the same bound.
    // (A valid status padded with spaces: only the bound refuses it.)
    const st = te.encode(JSON.stringify({ user: zk.b64u(te.encode("x")), vault: null, records: [] }));
    const padded = (n) => cat(st, new Uint8Array(n - st.length).fill(0x20));
    const noStream = (b) => ({ ok: true, status: 200, headers: new Headers(), body: null, arrayBuffer: async () => b.slice().buffer });
    answers.push(noStream(padded(4 << 20)));
    await rejectsCode(c.status(), "server", "no stream, over the bound");
    answers.push(noStream(padded((4 << 20) - 1)));
    assert.equal((await c.status()).vault, null, "no stream, at the bound");
    answers.push(new Response(padded((4 << 20) - 1), { status: 200 }));
    assert.equal((await c.status()).vault, null, "a stream, at the bound");
  });
});

describe("Client: a vault that disappears", () => {
  test("unlock refuses a server without the vault this device has seen; a new device hears not_found", async () => {
    const server = new FakeServer("gus");
    const ledger = new zk.VersionLedger(new MapStorage());
    const c = newClient(server, ledger);
    const { vault } = await c.createVault("gus's long passphrase, never sent");
    vault.lock();
    (await c.unlock({ passphrase: "gus's long passphrase, never sent" })).lock();
    server.vault = null; // lost, withheld, or restored from before it existed
    await rejectsCode(c.unlock({ passphrase: "gus's long passphrase, never sent" }), "rollback", "this device saw it");
    await rejectsCode(newClient(server).unlock({ passphrase: "gus's long passphrase, never sent" }), "not_found", "a new device");
  });
});
