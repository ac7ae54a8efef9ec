// The Node half of vault/zk/interop_test.go: runs vault/zk/client.js (the
// real module, as a browser would load it) on the Go test's behalf.
//
//	node vault/zk/testdata/interop.mjs
//
// It reads one JSON request per line on stdin, {"id": n, "op": "...",
// "args": {...}}, runs it, and writes one JSON line on stdout per request:
// {"id": n, "result": {...}} or {"id": n, "error": {"code", "message"}},
// where code is the ZKError's code ("" for any other exception). Requests
// run one at a time, in order; state (unlocked vaults, Clients, ledgers)
// lives between them under the names the Go test gives.
//
// Conventions of args: bytes are hex in fields ending in "_hex"; a user ID
// is "user" (a string, which the client encodes as UTF-8) or "user_hex"
// (raw bytes, passed as a Uint8Array); a context likewise "context" or
// "context_hex"; record versions are decimal strings (u64).
//
// No test logic lives here: the Go test decides what each answer must be.

import { createInterface } from "node:readline";
import * as zk from "../client.js";

const toHex = (b) => Buffer.from(b).toString("hex");
const fromHex = (s) => {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) throw new Error("bad hex: " + String(s).slice(0, 40));
  return new Uint8Array(Buffer.from(s, "hex"));
};

/** The user ID of args: a string or raw bytes. */
const user = (a) => (a.user_hex !== undefined ? fromHex(a.user_hex) : a.user);
/** The context of args: a string or raw bytes. */
const context = (a) => (a.context_hex !== undefined ? fromHex(a.context_hex) : a.context);

/** @type {Map<string, zk.UnlockedVault>} */
const vaults = new Map();
/** @type {Map<string, zk.Client>} */
const clients = new Map();
/** @type {Map<string, Map<string, string>>} */
const ledgerStores = new Map();

const vault = (name) => {
  const v = vaults.get(name);
  if (!v) throw new Error("no vault named " + name);
  return v;
};
const client = (name) => {
  const c = clients.get(name);
  if (!c) throw new Error("no client named " + name);
  return c;
};

/** What the Go test compares about an unlocked vault. */
async function info(v) {
  return {
    record_hex: toHex(v.record),
    user_hex: toHex(v.userId),
    key_version: v.keyVersion,
    retired: v.retiredVersions,
    fingerprint: await v.fingerprint(),
    slots: v.slots().map((s) => ({ kind: s.kind, id: s.id, key_version: s.keyVersion })),
  };
}

/** A Storage-like object on a Map, for VersionLedger (no localStorage in Node). */
function mapStorage(m) {
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

/**
 * A fetch for Client: prefixes the server's URL to the client's path and
 * keeps the session cookie, as a browser on the server's origin would.
 */
function browserFetch(origin, jar) {
  return async (path, init = {}) => {
    if (typeof path !== "string" || !path.startsWith("/")) throw new Error("the client fetched a non-path: " + path);
    const headers = new Headers(init.headers);
    if (jar.cookie) headers.set("Cookie", jar.cookie);
    const r = await fetch(origin + path, { ...init, headers });
    for (const c of r.headers.getSetCookie()) jar.cookie = c.split(";")[0];
    return r;
  };
}

const ops = {
  // ---- low level ----
  async create(a) {
    const { vault: v, recoveryKeys } = await zk.createVault(user(a), a.passphrase, { recoveryKeys: a.recovery_keys, iterations: a.iterations });
    vaults.set(a.vault, v);
    return { ...(await info(v)), recovery_keys: recoveryKeys };
  },
  async unsafeFromMasterKey(a) {
    const v = await zk._unsafeVaultFromMasterKey(user(a), fromHex(a.master_key_hex), a.passphrase, { keyVersion: a.key_version });
    vaults.set(a.vault, v);
    return info(v);
  },
  async unlockPassphrase(a) {
    const v = await zk.unlockWithPassphrase(fromHex(a.record_hex), user(a), a.passphrase);
    vaults.set(a.vault, v);
    return info(v);
  },
  async unlockRecovery(a) {
    const { vault: v, recoveryKey } = await zk.unlockWithRecoveryKey(fromHex(a.record_hex), user(a), a.key);
    vaults.set(a.vault, v);
    return { ...(await info(v)), new_key: recoveryKey };
  },
  async unlockSecret(a) {
    const v = await zk.unlockWithSecret(fromHex(a.record_hex), user(a), fromHex(a.credential_hex), fromHex(a.secret_hex));
    vaults.set(a.vault, v);
    return info(v);
  },
  async seal(a) {
    const v = vault(a.vault);
    const pt = fromHex(a.plaintext_hex);
    const sealed = a.version === undefined ? await v.seal(pt, context(a)) : await v.sealVersion(pt, context(a), BigInt(a.version));
    return { sealed_hex: toHex(sealed) };
  },
  async open(a) {
    const v = vault(a.vault);
    if (a.min === undefined) return { plaintext_hex: toHex(await v.open(fromHex(a.sealed_hex), context(a))) };
    const r = await v.openVersion(fromHex(a.sealed_hex), context(a), BigInt(a.min));
    return { plaintext_hex: toHex(r.plaintext), version: r.version.toString() };
  },
  async changePassphrase(a) {
    await vault(a.vault).changePassphrase(a.passphrase);
    return info(vault(a.vault));
  },
  async regenerateRecoveryKeys(a) {
    const { recoveryKeys } = await vault(a.vault).regenerateRecoveryKeys(a.n);
    return { ...(await info(vault(a.vault))), recovery_keys: recoveryKeys };
  },
  async addSecretSlot(a) {
    await vault(a.vault).addSecretSlot(fromHex(a.credential_hex), fromHex(a.secret_hex));
    return info(vault(a.vault));
  },
  async secretSlotId(a) {
    return { id: await zk.secretSlotId(fromHex(a.credential_hex)) };
  },

  // ---- the Client against a server ----
  async client(a) {
    if (!ledgerStores.has(a.ledger)) ledgerStores.set(a.ledger, new Map());
    const jar = { cookie: "" };
    const f = browserFetch(a.origin, jar);
    const login = await f(a.login, { method: "POST" });
    if (!login.ok || !jar.cookie) throw new Error(`login: ${login.status}, cookie ${jar.cookie !== ""}`);
    clients.set(a.client, new zk.Client({ base: a.base, fetch: f, ledger: new zk.VersionLedger(mapStorage(ledgerStores.get(a.ledger))) }));
    return {};
  },
  async clientCreateVault(a) {
    const { vault: v, recoveryKeys } = await client(a.client).createVault(a.passphrase, { recoveryKeys: a.recovery_keys });
    vaults.set(a.vault, v);
    return { ...(await info(v)), recovery_keys: recoveryKeys };
  },
  async clientUnlock(a) {
    const c = client(a.client);
    if (a.recovery_key !== undefined) {
      const { vault: v, recoveryKey } = await c.unlock({ recoveryKey: a.recovery_key });
      vaults.set(a.vault, v);
      return { ...(await info(v)), new_key: recoveryKey };
    }
    const v = await c.unlock({ passphrase: a.passphrase });
    vaults.set(a.vault, v);
    return info(v);
  },
  async clientPut(a) {
    return { version: (await client(a.client).put(vault(a.vault), a.name, fromHex(a.plaintext_hex))).toString() };
  },
  async clientGet(a) {
    const r = await client(a.client).get(vault(a.vault), a.name);
    return { plaintext_hex: toHex(r.plaintext), version: r.version.toString() };
  },
  async clientDelete(a) {
    return { version: (await client(a.client).delete(vault(a.vault), a.name)).toString() };
  },
  async clientList(a) {
    return { records: (await client(a.client).list()).map((x) => ({ name: x.name, version: x.version.toString() })) };
  },
  async ledger(a) {
    return { entries: Object.fromEntries(ledgerStores.get(a.ledger) ?? []) };
  },
};

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === "") continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    out({ id: -1, error: { code: "", message: "bad request line: " + e.message } });
    continue;
  }
  const op = Object.hasOwn(ops, req.op) ? ops[req.op] : undefined;
  try {
    if (!op) throw new Error("unknown op " + req.op);
    out({ id: req.id, result: await op(req.args ?? {}) });
  } catch (e) {
    out({ id: req.id, error: { code: e instanceof zk.ZKError ? e.code : "", message: String(e?.stack ?? e) } });
  }
}
