// An outside review's attacks on vault/zk/client.js (a hostile or
// rolled-back server against the browser client), under Node's test
// runner:
//
//	node --test vault/zk/testdata/attack_review_test.mjs
//
// (zk.TestAttackReviewUnderNode runs it from go test.) Each test is named
// after what it attacks. "held:" tests are attacks that failed, kept as
// regression tests. "finding N:" tests show a defect the review found,
// since fixed (findings 1 to 4 in client.js, 5 in passkey/client.js).

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as zk from "../client.js";
import { MapStorage, rejectsCode } from "./testkit.mjs";


const te = new TextEncoder();
const td = new TextDecoder();
const S = globalThis.crypto.subtle;
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



/**
 * An honest in-memory server of FORMAT.md §8.2, with one hook through which
 * a test makes it lie: hook({method, name, expect, body, server}) may return
 * a Response (sent instead of the honest answer) or undefined.
 */
class Server {
  constructor(user) {
    this.user = te.encode(user);
    this.vault = null; // {data, version}
    this.blobs = new Map(); // name → {data, version}; data empty: a tombstone
    this.kept = []; // every record body a write carried: {name, version, data}
    this.requests = [];
    this.hook = undefined;
    this.fetch = this.fetch.bind(this);
  }
  static json(status, obj, headers = {}) {
    return new Response(JSON.stringify(obj), { status, headers: { "Content-Type": "application/json", ...headers } });
  }
  static bytes(data, version) {
    return new Response(data, { status: 200, headers: { "Content-Type": "application/octet-stream", "Keyhold-Version": String(version) } });
  }
  async fetch(url, init = {}) {
    const method = init.method ?? "GET";
    const headers = new Headers(init.headers);
    const body = init.body === undefined ? undefined : new Uint8Array(init.body);
    this.requests.push({ method, url, headers: [...headers.entries()], body });
    const m = /^\/zk(\/|\/vault|\/records\/([^/]+))$/.exec(url);
    assert.ok(m, "no route " + url);
    const expect = headers.has("Keyhold-Expect") ? BigInt(headers.get("Keyhold-Expect")) : undefined;
    const name = m[2];
    if (name !== undefined && method === "PUT") this.kept.push({ name, version: expect + 1n, data: body });
    const lie = this.hook?.({ method, name, expect, body, server: this });
    if (lie) return lie;
    if (m[1] === "/") {
      const records = [...this.blobs].map(([n, b]) => ({ name: n, version: Number(b.version), size: b.data.length, deleted: b.data.length === 0 }));
      return Server.json(200, { user: zk.b64u(this.user), vault: this.vault && { version: Number(this.vault.version) }, records });
    }
    if (m[1] === "/vault") {
      if (method === "GET") return this.vault ? Server.bytes(this.vault.data, this.vault.version) : Server.json(404, { error: "not_found" });
      const cur = this.vault?.version ?? 0n;
      if (expect !== cur) return Server.json(409, { error: "conflict", version: Number(cur) }, { "Keyhold-Version": String(cur) });
      this.vault = { data: body, version: cur + 1n };
      return Server.json(200, { version: Number(cur + 1n) });
    }
    const b = this.blobs.get(name);
    if (method === "GET") {
      if (!b) return Server.json(404, { error: "not_found" });
      if (b.data.length === 0) return Server.json(404, { error: "deleted", version: Number(b.version) }, { "Keyhold-Version": String(b.version) });
      return Server.bytes(b.data, b.version);
    }
    const cur = b?.version ?? 0n;
    if (expect !== cur) return Server.json(409, { error: "conflict", version: Number(cur) }, { "Keyhold-Version": String(cur) });
    if (method === "PUT") {
      assert.equal(new DataView(body.buffer, body.byteOffset).getBigUint64(6), expect + 1n, "the client sealed at another version than it expects");
      this.blobs.set(name, { data: body, version: cur + 1n });
    } else {
      this.blobs.set(name, { data: new Uint8Array(0), version: cur + 1n });
    }
    return Server.json(200, { version: Number(cur + 1n) });
  }
}

const newClient = (server, ledger = new zk.VersionLedger(new MapStorage()), extra = {}) =>
  new zk.Client({ base: "/zk", fetch: server.fetch, ledger, ...extra });

/** A server with a vault, a client that created it, and its ledger. */
async function setup(user) {
  const server = new Server(user);
  const ledger = new zk.VersionLedger(new MapStorage());
  const c = newClient(server, ledger);
  const created = await c.createVault(user + "'s long vault passphrase");
  return { server, ledger, c, vault: created.vault, recoveryKeys: created.recoveryKeys };
}

const text = async (p) => td.decode((await p).plaintext);

// ---- finding 1: the client seals at versions the server merely claims ----

describe("rollback through versions the server chooses", () => {
  test("finding 1: a write reported as failed, sealed at a version the status list claimed, is accepted later above newer writes", async () => {
    const { server, c, vault } = await setup("ann");
    assert.equal(await c.put(vault, "doc", "v1"), 1n);
    // The server claims in its status list that doc is at version 100 (an
    // unauthenticated number), keeps the write sealed at 101, and answers 503.
    server.hook = ({ method }) => {
      if (method === "GET") {
        const st = { user: zk.b64u(server.user), vault: { version: 1 }, records: [{ name: "doc", version: 100, size: 50, deleted: false }] };
        return Server.json(200, st);
      }
    };
    await c.status();
    server.hook = ({ method }) => (method === "PUT" ? Server.json(503, { error: "unavailable" }) : undefined);
    await rejectsCode(c.put(vault, "doc", "a write the user was told failed"), "server");
    const harvested = server.kept.find((k) => k.version === 101n);
    assert.ok(harvested, "the client sealed at 101");
    // Honest again: the user's next writes land at 2 and 3 (the ledger: 3).
    server.hook = undefined;
    assert.equal(await c.put(vault, "doc", "v2"), 2n);
    assert.equal(await c.put(vault, "doc", "v3, the latest"), 3n);
    assert.equal(await text(c.get(vault, "doc")), "v3, the latest");
    // The server now serves the harvested envelope: it is authentic, at
    // version 101 ≥ 3, and replaces the user's latest write.
    server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? Server.bytes(harvested.data, 101n) : undefined);
    await rejectsCode(c.get(vault, "doc"), "rollback", "an envelope sealed at a server-chosen version, served after newer writes");
  });

  test("finding 1: two authentic envelopes at one version: the one this client wrote is replaced by another (no hash in the ledger)", async () => {
    const { server, c, vault } = await setup("bea");
    assert.equal(await c.put(vault, "doc", "A"), 1n);
    // The server stores nothing of the next write but keeps its body, and
    // answers 503; the client forgets the version and asks again (GET),
    // gets version 1 and seals its next write at 2 as well.
    server.hook = ({ method }) => (method === "PUT" ? Server.json(503, { error: "unavailable" }) : undefined);
    await rejectsCode(c.put(vault, "doc", "B (failed)"), "server");
    server.hook = undefined;
    assert.equal(await c.put(vault, "doc", "C, written and confirmed"), 2n);
    const failed = server.kept.find((k) => k.version === 2n && k !== server.kept.at(-1));
    assert.ok(failed, "two envelopes at version 2");
    server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? Server.bytes(failed.data, 2n) : undefined);
    await rejectsCode(c.get(vault, "doc"), "rollback", "another envelope at the version this client wrote");
  });
});

// ---- finding 2: a record this client deleted comes back ----

describe("deletions", () => {
  test("finding 2: a record this client deleted is served again at its last version and accepted", async () => {
    const { server, c, vault } = await setup("cat");
    await c.put(vault, "doc", "v1");
    await c.put(vault, "doc", "v2, to be deleted");
    const v2 = server.blobs.get("doc").data;
    assert.equal(await c.delete(vault, "doc"), 3n);
    await rejectsCode(c.get(vault, "doc"), "not_found");
    // The server puts the deleted record back (a restored backup).
    server.blobs.set("doc", { data: v2, version: 2n });
    await rejectsCode(c.get(vault, "doc"), "rollback", "a deletion this client made, undone");
  });

  test("finding 2: a tombstone at the very version this client opened a live record at is taken as a deletion", async () => {
    const { server, c, vault } = await setup("dot");
    await c.put(vault, "doc", "v1");
    await c.put(vault, "doc", "v2");
    assert.equal(await text(c.get(vault, "doc")), "v2");
    server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? Server.json(404, { error: "deleted", version: 2 }) : undefined);
    // Version 2 was live; a deletion makes version 3 at least.
    await rejectsCode(c.get(vault, "doc"), "rollback", "deleted at version 2, which this client opened live");
  });
});

// ---- finding 3: a vault answered as absent after this device saw one ----

describe("the vault answered as absent", () => {
  test("finding 3: createVault on a device whose ledger saw the user's vault", async () => {
    const { server, ledger } = await setup("eve");
    assert.equal(ledger.keyVersion("eve"), 1);
    server.vault = null; // the server drops the vault (or says so)
    const c2 = newClient(server, ledger);
    assert.equal((await c2.status()).vault, null);
    // README's page then calls createVault: a new master key, new recovery
    // keys shown, and the user's records no longer open. The ledger knew a
    // vault existed.
    await rejectsCode(c2.createVault("eve's long vault passphrase"), "rollback", "a new vault over one this device saw");
  });
});

// ---- finding 4: unbounded reads of the server's answers ----

/** A Response whose body streams n bytes of fill in 1 MiB chunks, without Content-Length, counting what was pulled. */
function streamed(n, fill, headers) {
  const counter = { pulled: 0 };
  const chunk = new Uint8Array(1 << 20).fill(fill);
  const body = new ReadableStream({
    pull(ctl) {
      if (counter.pulled >= n) return ctl.close();
      counter.pulled += chunk.length;
      ctl.enqueue(chunk);
    },
  });
  return { response: new Response(body, { status: 200, headers }), counter };
}

describe("answers the client reads", () => {
  test("finding 4: a JSON answer is read to its end before its 4 MiB bound is checked", async () => {
    let counter;
    const c = new zk.Client({
      base: "/zk",
      ledger: new zk.VersionLedger(new MapStorage()),
      fetch: async () => {
        const s = streamed(64 << 20, 0x20, { "Content-Type": "application/json" });
        counter = s.counter;
        return s.response;
      },
    });
    await rejectsCode(c.status(), "server");
    assert.ok(counter.pulled <= (5 << 20), `the client pulled ${counter.pulled >> 20} MiB of a status answer bounded at 4 MiB`);
  });

  test("finding 4: a record without Content-Length is read to its end before its bound is checked", async () => {
    const { server, c, vault } = await setup("fin");
    await c.put(vault, "doc", "x");
    let counter;
    server.hook = ({ method, name }) => {
      if (method === "GET" && name === "doc") {
        const s = streamed(80 << 20, 2, { "Keyhold-Version": "1" });
        counter = s.counter;
        return s.response;
      }
    };
    await rejectsCode(c.get(vault, "doc"), "server");
    assert.ok(counter.pulled <= (65 << 20), `the client pulled ${counter.pulled >> 20} MiB of a record bounded at 64 MiB`);
  });
});

// ---- finding 5: the server-side passkey module asks for any PRF input ----

/** A fake authenticator's PRF: HMAC-SHA-256(k, SHA-256("WebAuthn PRF" ‖ 0 ‖ input)), as CTAP2 hmac-secret. */
async function fakePRF(key, input) {
  const salt = new Uint8Array(await S.digest("SHA-256", cat(te.encode("WebAuthn PRF"), [0], input)));
  const k = await S.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await S.sign("HMAC", k, salt));
}
const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

describe("passkeys", () => {
  test("finding 5: a hostile server's login options get the zero-knowledge slot's secret through passkey/client.js", async () => {
    const passkey = await import("../../../passkey/client.js");
    const credKey = crypto.getRandomValues(new Uint8Array(32)); // inside the authenticator
    const rawId = crypto.getRandomValues(new Uint8Array(16));
    const salt = new Uint8Array(32).fill(7); // the credential's PRF salt (passkey record)
    const authenticator = {
      async get(args) {
        const prf = args.publicKey.extensions?.prf;
        const input = prf?.evalByCredential?.[zk.b64u(rawId)]?.first ?? prf?.eval?.first;
        const first = input ? (await fakePRF(credKey, new Uint8Array(input))).buffer : undefined;
        return {
          id: zk.b64u(rawId), rawId: rawId.slice().buffer, type: "public-key", authenticatorAttachment: "platform",
          response: { clientDataJSON: new ArrayBuffer(8), authenticatorData: new ArrayBuffer(37), signature: new ArrayBuffer(8), userHandle: null },
          getClientExtensionResults: () => (first ? { prf: { results: { first } } } : {}),
        };
      },
    };
    // The zero-knowledge slot's secret: what the zk client asks for.
    const zkServer = new Server("gil");
    const c = newClient(zkServer, undefined, { credentials: authenticator });
    const { vault } = await c.createVault("gil's long vault passphrase");
    const options = { publicKey: { challenge: zk.b64u(new Uint8Array(32)), allowCredentials: [{ type: "public-key", id: zk.b64u(rawId) }], extensions: { prf: { evalByCredential: { [zk.b64u(rawId)]: { first: zk.b64u(salt) } } } } } };
    await c.addPasskey(vault, { options });
    const zkInput = new Uint8Array(await S.digest("SHA-256", cat(te.encode("keyhold/v1/zk/prf-input"), [0], salt)));
    const zkSecret = await fakePRF(credKey, zkInput);
    // A hostile server's usernameless login: its options ask for the PRF at
    // the zero-knowledge input, and the module posts the output to finish.
    const posted = [];
    const savedFetch = globalThis.fetch;
    const hadNavigator = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    const hadLocation = Object.getOwnPropertyDescriptor(globalThis, "location");
    globalThis.fetch = async (url, init) => {
      if (String(url).includes("begin")) {
        return Server.json(200, { publicKey: { challenge: zk.b64u(new Uint8Array(32)), extensions: { prf: { eval: { first: zk.b64u(zkInput) } } } } });
      }
      posted.push(String(init.body));
      return Server.json(200, {});
    };
    Object.defineProperty(globalThis, "navigator", { value: { credentials: authenticator }, configurable: true, writable: true });
    Object.defineProperty(globalThis, "location", { value: new URL("https://app.example/"), configurable: true, writable: true });
    try {
      await passkey.login({ begin: "/passkey/login/begin", finish: "/passkey/login/finish" });
    } finally {
      globalThis.fetch = savedFetch;
      if (hadNavigator) Object.defineProperty(globalThis, "navigator", hadNavigator);
      else delete globalThis.navigator;
      if (hadLocation) Object.defineProperty(globalThis, "location", hadLocation);
      else delete globalThis.location;
    }
    assert.equal(posted.length, 1);
    const sent = JSON.parse(posted[0]);
    const out = sent.clientExtensionResults?.prf?.results?.first;
    if (out) {
      // With what it received and the vault record it stores, the server opens the vault.
      const opened = await zk.unlockWithSecret(zkServer.vault.data, "gil", rawId, unb64(out)).then(() => true, () => false);
      assert.ok(!opened, "the server opened the zero-knowledge vault with the PRF output its login options asked for");
    }
    assert.ok(!(out && toHex(unb64(out)) === toHex(zkSecret)), "the server received the zero-knowledge slot's secret at login");
  });
});

// ---- attacks that held ----

describe("held", () => {
  test("held: a record moved from another user (same name) does not open", async () => {
    const a = await setup("hal");
    const b = await setup("ida");
    await a.c.put(a.vault, "doc", "hal's");
    await b.c.put(b.vault, "doc", "ida's");
    b.server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? Server.bytes(a.server.blobs.get("doc").data, 1n) : undefined);
    await rejectsCode(b.c.get(b.vault, "doc"), "decrypt");
  });

  test("held: a status that names another user makes the client refuse the vault it holds", async () => {
    const { server, c, vault } = await setup("jan");
    await c.put(vault, "doc", "x");
    server.user = te.encode("mallory");
    await c.status();
    await rejectsCode(c.get(vault, "doc"), "invalid_input");
    await rejectsCode(c.put(vault, "doc", "y"), "invalid_input");
  });

  test("held: Keyhold-Version tricks (two values, above 2^64-1, signs, hex, exponents) are refused; leading zeros read as the number", async () => {
    const { server, c, vault } = await setup("kim");
    await c.put(vault, "doc", "x");
    const data = server.blobs.get("doc").data;
    for (const v of ["1, 1", "18446744073709551616", "+1", "-1", "0x1", "1e0", ""]) {
      server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? new Response(data, { status: 200, headers: { "Keyhold-Version": v } }) : undefined);
      await rejectsCode(c.get(vault, "doc"), "server", JSON.stringify(v));
    }
    server.hook = ({ method, name }) => (method === "GET" && name === "doc" ? new Response(data, { status: 200, headers: { "Keyhold-Version": "0001" } }) : undefined);
    assert.equal((await c.get(vault, "doc")).version, 1n);
  });

  test("held: JSON versions above 2^53 are refused, never rounded", async () => {
    const { server, c, vault } = await setup("lee");
    server.hook = ({ method }) => (method === "GET" ? new Response(`{"user":"${zk.b64u(server.user)}","vault":{"version":1},"records":[{"name":"doc","version":9007199254740993,"size":1,"deleted":false}]}`) : undefined);
    await rejectsCode(c.status(), "server");
    server.hook = ({ method }) => (method === "PUT" ? new Response(`{"version":9007199254740993}`) : undefined);
    await rejectsCode(c.put(vault, "doc", "x"), "server");
  });

  test("held: a vault record with out-of-bounds iterations is refused before any PBKDF2", async () => {
    const { server } = await setup("max");
    const rec = zk.decodeVaultRecord(server.vault.data);
    const p = rec.slots[0].params;
    for (const [alg, it] of [[2, 0xffffffff], [2, 4000001], [3, 2000001], [2, 0]]) {
      const params = p.slice();
      params[0] = alg;
      new DataView(params.buffer).setUint32(10, it);
      const bad = zk.encodeVaultRecord({ ...rec, slots: [{ ...rec.slots[0], params }, ...rec.slots.slice(1)] });
      let derived = 0;
      const orig = S.deriveKey;
      S.deriveKey = function (...args) {
        if (args[0]?.name === "PBKDF2") derived++;
        return orig.apply(this, args);
      };
      try {
        await rejectsCode(zk.unlockWithPassphrase(bad, "max", "max's long vault passphrase"), "params", `alg ${alg}, ${it} iterations`);
      } finally {
        S.deriveKey = orig;
      }
      assert.equal(derived, 0);
    }
  });

  test("held: the ledger's keys never collide between users, names and the vault", () => {
    const st = new MapStorage();
    const l = new zk.VersionLedger(st, "keyhold-zk:");
    const users = ["a", "ab", "a:b", "a/vault", "YQ", te.encode("a\0"), new Uint8Array([0xff, 0xfe]), "a".repeat(255)];
    const names = ["b", "bc", "c", "vault", "~", "a:b".replace(":", "."), "-_", "x".repeat(128)];
    let n = 0;
    for (const u of users) {
      l.seeKeyVersion(u, 1);
      n++;
      for (const name of names) {
        l.see(u, name, BigInt(++n));
      }
    }
    assert.equal(st.m.size, n, "two (user, name) pairs share a key");
    n = 0;
    for (const u of users) {
      n++;
      for (const name of names) assert.equal(l.min(u, name), BigInt(++n));
    }
  });

  test("held: a recovery-key unlock and a passkey never put the recovery key, the PRF output or the master key in a request", async () => {
    const { server, c, recoveryKeys } = await setup("ned");
    const c2 = newClient(server);
    const { recoveryKey } = await c2.unlock({ recoveryKey: recoveryKeys[0] });
    const secrets = [recoveryKeys[0], recoveryKey, recoveryKeys[0].replace(/-/g, ""), recoveryKey.replace(/-/g, "")];
    for (const r of server.requests) {
      const hay = r.url + JSON.stringify(r.headers) + (r.body ? td.decode(r.body) + toHex(r.body) : "");
      for (const s of secrets) assert.ok(!hay.includes(s), `${r.method} ${r.url} carries a recovery key`);
    }
    assert.ok(c); // the creating client is not used again
  });

  test("held: the PRF input is the §8.3 hash of the salt for every credential, never the salt, and eval is dropped", async () => {
    const ids = [new Uint8Array(16).fill(1), new Uint8Array(40).fill(2)];
    const salts = [new Uint8Array(32).fill(3), new Uint8Array(32).fill(4)];
    let seen;
    const credentials = {
      async get(args) {
        seen = args.publicKey.extensions;
        return null; // the user cancels
      },
    };
    const c = newClient(new Server("oli"), undefined, { credentials });
    const options = {
      publicKey: {
        challenge: zk.b64u(new Uint8Array(32)),
        allowCredentials: ids.map((id) => ({ type: "public-key", id: zk.b64u(id) })),
        extensions: { prf: { eval: { first: zk.b64u(salts[0]) }, evalByCredential: Object.fromEntries(ids.map((id, i) => [zk.b64u(id), { first: zk.b64u(salts[i]), second: zk.b64u(salts[1 - i]) }])) } },
      },
    };
    await rejectsCode(c.unlockWithPasskey({ options }), "unlock_failed");
    assert.deepEqual(Object.keys(seen.prf), ["evalByCredential"]);
    for (let i = 0; i < ids.length; i++) {
      const got = seen.prf.evalByCredential[zk.b64u(ids[i])];
      assert.deepEqual(Object.keys(got), ["first"]);
      const want = new Uint8Array(await S.digest("SHA-256", cat(te.encode("keyhold/v1/zk/prf-input\0"), salts[i])));
      assert.equal(toHex(got.first), toHex(want));
    }
  });
});
