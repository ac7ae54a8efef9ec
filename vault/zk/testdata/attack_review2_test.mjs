// A second outside review's attacks on vault/zk/client.js (the rollback
// ledger: sequences of writes, answers and failures, two tabs sharing one
// localStorage, hostile stored ledger values), under Node's test runner:
//
//	node --test vault/zk/testdata/attack_review2_test.mjs
//
// "held:" tests are attacks that failed, kept as regression tests.
// "finding N:" tests showed a defect, fixed since: regression tests now
// (their names say what the defect was). "fix N:" tests cover the other
// outcomes of those fixes.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as zk from "../client.js";
import { MapStorage, rejectsCode } from "./testkit.mjs";

const te = new TextEncoder();
const td = new TextDecoder();
const finding = test;



/**
 * An honest in-memory server of FORMAT.md §8.2. A request's effect happens
 * when it arrives; `hold` (a function of {method, name}) may return a
 * promise that delays the answer (the response in flight), and `after`
 * may replace the honest answer once the effect happened.
 */
class Server {
  constructor(user) {
    this.user = te.encode(user);
    this.vault = null;
    this.blobs = new Map();
    this.hold = undefined;
    this.after = undefined;
    this.fetch = this.fetch.bind(this);
  }
  static json(status, obj) {
    return new Response(JSON.stringify(obj), { status, headers: { "Content-Type": "application/json" } });
  }
  static bytes(data, version) {
    return new Response(data, { status: 200, headers: { "Content-Type": "application/octet-stream", "Keyhold-Version": String(version) } });
  }
  async fetch(url, init = {}) {
    const method = init.method ?? "GET";
    const headers = new Headers(init.headers);
    const body = init.body === undefined ? undefined : new Uint8Array(init.body);
    const m = /^\/zk(\/|\/vault|\/records\/([^/]+))$/.exec(url);
    assert.ok(m, "no route " + url);
    const expect = headers.has("Keyhold-Expect") ? BigInt(headers.get("Keyhold-Expect")) : undefined;
    const name = m[2];
    let answer = this.#answer(m[1], method, name, expect, body);
    answer = this.after?.({ method, name, expect, answer, server: this }) ?? answer;
    const wait = this.hold?.({ method, name });
    if (wait) await wait;
    return answer;
  }
  #answer(route, method, name, expect, body) {
    if (route === "/") {
      const records = [...this.blobs].filter(([, b]) => b.data.length > 0).map(([n, b]) => ({ name: n, version: Number(b.version), size: b.data.length, deleted: false }));
      return Server.json(200, { user: zk.b64u(this.user), vault: this.vault && { version: Number(this.vault.version) }, records });
    }
    if (route === "/vault") {
      if (method === "GET") return this.vault ? Server.bytes(this.vault.data, this.vault.version) : Server.json(404, { error: "not_found" });
      const cur = this.vault?.version ?? 0n;
      if (expect !== cur) return Server.json(409, { error: "conflict", version: Number(cur) });
      this.vault = { data: body, version: cur + 1n };
      return Server.json(200, { version: Number(cur + 1n) });
    }
    const b = this.blobs.get(name);
    if (method === "GET") {
      if (!b) return Server.json(404, { error: "not_found" });
      if (b.data.length === 0) return Server.json(404, { error: "deleted", version: Number(b.version) });
      return Server.bytes(b.data, b.version);
    }
    const cur = b?.version ?? 0n;
    if (expect !== cur) return Server.json(409, { error: "conflict", version: Number(cur) });
    this.blobs.set(name, { data: method === "PUT" ? body : new Uint8Array(0), version: cur + 1n });
    return Server.json(200, { version: Number(cur + 1n) });
  }
}

/** A gate: a promise and its opener. */
function gate() {
  let open;
  const p = new Promise((r) => (open = r));
  return { p, open };
}

/**
 * Holds the answer of the next request of `method`: resolves (to the gate
 * that releases that answer) once the request reached the server and took
 * effect.
 */
function holdNext(server, method) {
  const slow = gate();
  const arrived = gate();
  server.hold = (req) => {
    if (req.method !== method) return undefined;
    server.hold = undefined;
    arrived.open();
    return slow.p;
  };
  return { arrived: arrived.p, open: slow.open };
}

const PASS = "a long enough vault passphrase";

async function setup(user, storage = new MapStorage()) {
  const server = new Server(user);
  const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(storage) });
  const { vault, recoveryKeys } = await c.createVault(PASS);
  return { server, storage, c, vault, recoveryKeys };
}

/** Another tab: a Client on the same localStorage, unlocked. */
async function tab(server, storage) {
  const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(storage) });
  const vault = await c.unlock({ passphrase: PASS });
  return { c, vault };
}

const text = async (p) => td.decode((await p).plaintext);

describe("the ledger against honest failures and two tabs", () => {
  finding("finding 1: a late 2xx of an older write (another tab) supersedes a newer pending write that landed: the current record is refused forever", async () => {
    const { server, storage, c: a, vault: va } = await setup("ann");
    await a.put(va, "doc", "v1");
    const b = await tab(server, storage);
    await b.c.status();
    // Tab A writes X (stored at 2); its answer is slow.
    const slowA = holdNext(server, "PUT");
    const putA = a.put(va, "doc", "X");
    await slowA.arrived;
    // Tab B reads X (A's pending write: promoted), writes Z (stored at 3),
    // whose answer is slow too.
    assert.equal(await text(b.c.get(b.vault, "doc")), "X");
    const slowB = holdNext(server, "PUT");
    const putB = b.c.put(b.vault, "doc", "Z");
    await slowB.arrived;
    assert.equal(server.blobs.get("doc").version, 3n);
    // A's 2xx arrives first, then B's: both writes stood.
    slowA.open();
    assert.equal(await putA, 2n);
    slowB.open();
    assert.equal(await putB, 3n);
    // Z is the server's current record, written by this device with a 2xx.
    assert.equal(await text(b.c.get(b.vault, "doc")), "Z", "tab B refuses the record it just wrote");
    assert.equal(await text(a.get(va, "doc")), "Z", "tab A refuses the current record");
  });

  finding("finding 1b: the same race with a delete: a late delete 2xx supersedes a write that landed after it", async () => {
    const { server, storage, c: a, vault: va } = await setup("bob");
    await a.put(va, "doc", "v1");
    const b = await tab(server, storage);
    await b.c.status();
    const slowA = holdNext(server, "DELETE");
    const delA = a.delete(va, "doc"); // tombstone at 2, answer slow
    await slowA.arrived;
    await rejectsCode(b.c.get(b.vault, "doc"), "not_found", "deleted at 2"); // B learns version 2
    const slowB = holdNext(server, "PUT");
    const putB = b.c.put(b.vault, "doc", "new"); // stored at 3, answer slow
    await slowB.arrived;
    slowA.open();
    assert.equal(await delA, 2n);
    slowB.open();
    assert.equal(await putB, 3n);
    assert.equal(await text(b.c.get(b.vault, "doc")), "new");
  });

  finding("finding 2: a write stored, then answered 409 (the browser resent the PUT after a reset connection) is refused forever on reads", async () => {
    const { server, c, vault } = await setup("cat");
    await c.put(vault, "doc", "v1");
    // The first attempt is stored; its answer is lost, the browser sends the
    // same request again on a new connection and gets the honest 409.
    server.after = ({ method, expect, answer, server: s }) =>
      method === "PUT" && expect === 1n ? Server.json(409, { error: "conflict", version: Number(s.blobs.get("doc").version) }) : undefined;
    await rejectsCode(c.put(vault, "doc", "v2"), "conflict", "the resent PUT");
    server.after = undefined;
    // The server holds this device's v2, at 2: nothing older than what it saw.
    assert.equal(await text(c.get(vault, "doc")), "v2", "the record this client wrote, which the server stored, is refused");
  });

  finding("finding 6: a recovery-key unlock whose vault write is stored but answered 503 consumes the key and loses the new one: locked out", async () => {
    const { server, recoveryKeys } = await setup("ida");
    const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
    server.after = ({ method, name }) => (method === "PUT" && name === undefined ? Server.json(503, { error: "unavailable" }) : undefined);
    let shown;
    try {
      const r = await c.unlock({ recoveryKey: recoveryKeys[0] });
      shown = r.recoveryKey; // resolved: the page shows the new key
    } catch (e) {
      assert.ok(e instanceof zk.ZKError, String(e));
      shown = e.recoveryKey ?? e.details?.recoveryKey; // or the error carries it
    }
    server.after = undefined;
    // The server stored the vault with the used slot replaced: the old key is gone.
    await rejectsCode(c.unlock({ recoveryKey: recoveryKeys[0] }), "unlock_failed", "the used key");
    assert.ok(typeof shown === "string", "the new recovery key, the only one that now unlocks the vault, was never given to the caller");
    const again = await c.unlock({ recoveryKey: shown });
    assert.ok(again.vault);
  });

  finding("finding 6b: createVault stored but answered 503: the user has a vault whose recovery key was never shown, and nothing says so", async () => {
    const server = new Server("kim");
    const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
    server.after = ({ method, name }) => (method === "PUT" && name === undefined ? Server.json(503, { error: "unavailable" }) : undefined);
    let keys;
    try {
      keys = (await c.createVault(PASS)).recoveryKeys;
    } catch (e) {
      assert.ok(e instanceof zk.ZKError, String(e));
      keys = e.recoveryKeys ?? e.details?.recoveryKeys;
    }
    server.after = undefined;
    assert.ok(server.vault, "the server stored the vault");
    // The page's retry: createVault again is a conflict (the vault exists).
    await assert.rejects(c.createVault(PASS));
    assert.ok(Array.isArray(keys), "the stored vault's recovery keys were never given to the caller");
    const r = await c.unlock({ recoveryKey: keys[0] });
    assert.ok(r.vault);
  });

  finding("finding 6c: a passphrase change stored but answered 503 is reported failed and undone in the client: the old passphrase no longer unlocks", async () => {
    const { server, c, vault } = await setup("lee");
    server.after = ({ method, name }) => (method === "PUT" && name === undefined ? Server.json(503, { error: "unavailable" }) : undefined);
    // Fixed: the client reads the vault back, finds its record: the change stood.
    await c.changePassphrase(vault, "the new and long passphrase");
    server.after = undefined;
    const fresh = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
    await rejectsCode(fresh.unlock({ passphrase: PASS }), "unlock_failed", "the old passphrase");
    const v = await fresh.unlock({ passphrase: "the new and long passphrase" });
    assert.ok(v, "the passphrase the client says stands does not unlock");
    // The client's vault holds the record that stood: the next save goes on.
    assert.equal(await c.saveVault(vault), 3n);
  });

  finding("finding 7: two tabs: a save in the tab that did not write last is refused as a rollback (a false tamper warning), and every retry too", async () => {
    const { server, storage, c: a, vault: va } = await setup("jon");
    await a.put(va, "doc", "v1");
    await a.status(); // tab A knows doc at 1 (the page lists its notes)
    const b = await tab(server, storage);
    await b.c.status();
    assert.equal(await b.c.put(b.vault, "doc", "from B"), 2n);
    // Tab A saves: an honest server, a write of another tab of this device came first.
    let err;
    try {
      await a.put(va, "doc", "from A");
    } catch (e) {
      err = e;
    }
    assert.ok(err === undefined || err.code === "conflict", `tab A's save: ${err?.code}: ${err?.message}`);
    // A retry (the page's Save again) goes through.
    assert.equal(await a.put(va, "doc", "from A"), 3n);
    assert.equal(await text(b.c.get(b.vault, "doc")), "from A");
  });

  finding("finding 8: a full localStorage (QuotaExceededError) makes get and put throw a DOMException, not a ZKError; put throws after its write stood", async () => {
    const { server, storage, c, vault } = await setup("max");
    await c.put(vault, "doc", "v1");
    const realSet = storage.setItem;
    let allowed = 0; // setItem calls that still succeed
    storage.setItem = function (k, v) {
      if (allowed-- > 0) return realSet.call(this, k, v);
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
    try {
      const tries = [
        ["put, full once its pending mark is stored", 1, () => c.put(vault, "doc", "v2")],
        ["put, storage full", 0, () => c.put(vault, "doc", "v3")],
        ["get", 0, () => c.get(vault, "doc")],
      ];
      for (const [what, n, p] of tries) {
        allowed = n;
        try {
          await p();
        } catch (e) {
          assert.ok(e instanceof zk.ZKError, `${what}: ${e?.name}: ${e?.message} (server at ${server.blobs.get("doc").version})`);
        }
      }
    } finally {
      storage.setItem = realSet;
    }
  });

  finding("finding 8b: a localStorage that throws on access (site data blocked) makes new Client() throw a DOMException: the page's module dies", () => {
    const d = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
    Object.defineProperty(globalThis, "localStorage", { configurable: true, get() {
      throw new DOMException("Access is denied for this document.", "SecurityError");
    } });
    try {
      let err;
      try {
        new zk.Client({ base: "/zk" });
      } catch (e) {
        err = e;
      }
      assert.ok(err === undefined || err instanceof zk.ZKError, `new Client(): ${err?.name}: ${err?.message}`);
    } finally {
      if (d) Object.defineProperty(globalThis, "localStorage", d);
      else delete globalThis.localStorage;
    }
  });

  test("held: a 503 after storing (a DB restart) leaves the write pending; it is accepted when read, and later writes go on", async () => {
    const { server, c, vault } = await setup("dan");
    await c.put(vault, "doc", "v1");
    server.after = ({ method }) => (method === "PUT" ? Server.json(503, { error: "unavailable" }) : undefined);
    await rejectsCode(c.put(vault, "doc", "v2"), "server", "503");
    await rejectsCode(c.put(vault, "doc", "v3"), "server", "503 again"); // stored at 3
    server.after = undefined;
    assert.equal(await text(c.get(vault, "doc")), "v3");
    assert.equal(await c.put(vault, "doc", "v4"), 4n);
    assert.equal(await text(c.get(vault, "doc")), "v4");
    // A fresh client of the same storage agrees.
  });

  test("held: after a 503-stored write, a restored older record (the one before) is refused", async () => {
    const { server, c, vault } = await setup("eve");
    await c.put(vault, "doc", "v1");
    const v1 = server.blobs.get("doc");
    server.after = ({ method }) => (method === "PUT" ? Server.json(503, { error: "unavailable" }) : undefined);
    await rejectsCode(c.put(vault, "doc", "v2"), "server", "503");
    server.after = undefined;
    assert.equal(await text(c.get(vault, "doc")), "v2");
    server.blobs.set("doc", v1);
    await rejectsCode(c.get(vault, "doc"), "rollback", "v1 back");
  });

  test("held: delete then recreate, by this tab and by another device, reads the new record", async () => {
    const { server, storage, c, vault } = await setup("fay");
    await c.put(vault, "doc", "v1");
    await c.delete(vault, "doc");
    await rejectsCode(c.get(vault, "doc"), "not_found", "deleted");
    assert.equal(await c.put(vault, "doc", "again"), 3n);
    assert.equal(await text(c.get(vault, "doc")), "again");
    const other = await setupOther(server); // another device, own storage
    await other.c.status();
    await other.c.delete(other.vault, "doc");
    await other.c.put(other.vault, "doc", "theirs");
    assert.equal(await text(c.get(vault, "doc")), "theirs");
    void storage;
  });

  test("held: hostile or broken stored ledger values never throw anything but a ZKError, and never a rollback of nothing", async () => {
    const { server, storage, c, vault } = await setup("gus");
    await c.put(vault, "doc", "v1");
    const key = [...storage.m.keys()].find((k) => k.endsWith(":doc"));
    const junk = [
      "", "null", "[]", "{}", "true", "1e3", "-1", "18446744073709551616", "0x10", " 1",
      '{"min":"1","tag":null}', '{"min":1,"tag":null,"pending":[],"superseded":[]}',
      '{"min":"1","tag":5,"pending":[],"superseded":[]}', '{"min":"1","tag":null,"pending":{},"superseded":[]}',
      '{"min":"1","tag":null,"pending":[null,1,"x",[null],[1,2],["1"]],"superseded":[[]]}',
      '{"min":"1","tag":"AAAAAAAAAAAAAAAAAAAAAB","deleted":"yes","pending":[["1","AAAAAAAAAAAAAAAAAAAAAB"]],"superseded":[]}',
      '{"__proto__":{"min":"9"},"min":"1","tag":null,"pending":[],"superseded":[]}',
      "[".repeat(100000) + "]".repeat(100000),
      JSON.stringify({ min: "1", tag: null, pending: Array.from({ length: 100000 }, () => ["1", "A".repeat(22)]), superseded: [] }),
    ];
    for (const j of junk) {
      storage.setItem(key, j);
      try {
        await c.get(vault, "doc");
      } catch (e) {
        assert.ok(e instanceof zk.ZKError, `${j.slice(0, 60)}: ${e}`);
      }
      storage.setItem(key, j);
      try {
        await c.put(vault, "doc", "w");
      } catch (e) {
        assert.ok(e instanceof zk.ZKError, `${j.slice(0, 60)}: ${e}`);
      }
      try {
        new zk.VersionLedger(storage).record(te.encode("gus"), "doc");
      } catch (e) {
        assert.ok(e instanceof zk.ZKError, `record(): ${j.slice(0, 60)}: ${e}`);
      }
    }
  });

  test("held: 64 pending writes and more: the bound holds, the latest write that landed is still accepted", async () => {
    const storage = new MapStorage();
    const l = new zk.VersionLedger(storage);
    const u = te.encode("hal");
    const tag = (i) => {
      const t = new Uint8Array(16);
      new DataView(t.buffer).setUint32(0, i);
      return t;
    };
    for (let i = 1; i <= 100; i++) l.addPending(u, "doc", BigInt(i), tag(i));
    const r = l.record(u, "doc");
    assert.equal(r.pending.length, 64);
    assert.ok(r.superseded.length <= 64);
    assert.ok(storage.getItem("keyhold-zk:" + zk.b64u(u) + ":doc").length < 64 * 2 * 40 + 200);
    l.accept(u, "doc", 100n, tag(100));
    assert.equal(l.min(u, "doc"), 100n);
    // The oldest, dropped from pending, below min now: refused.
    assert.throws(() => l.accept(u, "doc", 1n, tag(1)), (e) => e instanceof zk.ZKError && e.code === "rollback");
  });
});

/** Another device of the same user: its own storage. */
async function setupOther(server) {
  const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
  const vault = await c.unlock({ passphrase: PASS });
  return { c, vault };
}

/** Answers every vault PUT 503 without storing it (the write did not land). */
function vaultPutLost(server) {
  server.after = ({ method, name, server: s }) => {
    if (method !== "PUT" || name !== undefined) return undefined;
    s.vault = s.lastVault;
    return Server.json(503, { error: "unavailable" });
  };
  server.lastVault = server.vault;
}

/** Answers a vault PUT 503 after storing it, and the reads back of the vault 503 too. */
function vaultOutcomeUnknown(server) {
  let put = false; // the reads of the vault after the PUT fail
  server.after = ({ method, name }) => {
    if (name !== undefined || (method === "GET" && !put)) return undefined;
    put = true;
    return Server.json(503, { error: "unavailable" });
  };
}

describe("fixes: the other outcomes", () => {
  test("fix 6: a vault write answered 503 that did not land throws the 503; the old secrets still open the vault", async () => {
    const { server, c, vault, recoveryKeys } = await setup("ned");
    vaultPutLost(server);
    await rejectsCode(c.unlock({ recoveryKey: recoveryKeys[0] }), "server", "recovery unlock");
    await rejectsCode(c.changePassphrase(vault, "the new and long passphrase"), "server", "passphrase change");
    await rejectsCode(c.regenerateRecoveryKeys(vault, 2), "server", "new recovery keys");
    server.after = undefined;
    assert.equal(server.vault.version, 1n);
    const fresh = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
    assert.ok(await fresh.unlock({ passphrase: PASS }));
    // The client's vault was put back: a save writes the old record again.
    assert.equal(await c.saveVault(vault), 2n);
    assert.ok((await fresh.unlock({ recoveryKey: recoveryKeys[0] })).recoveryKey);
  });

  test("fix 6: a vault write stored, answered 503, not readable back: outcome_unknown carries the new keys and the vault; saveVault again settles it", async () => {
    const server = new Server("ola");
    const c = new zk.Client({ base: "/zk", fetch: server.fetch, ledger: new zk.VersionLedger(new MapStorage()) });
    vaultOutcomeUnknown(server);
    let e = await c.createVault(PASS).then(() => assert.fail("resolved"), (x) => x);
    assert.ok(e instanceof zk.ZKError && e.code === "outcome_unknown", String(e));
    assert.ok(Array.isArray(e.recoveryKeys) && e.recoveryKeys.length === 1);
    assert.ok(!e.message.includes(e.recoveryKeys[0]), "the key is not in the message");
    assert.ok(e.vault instanceof zk.UnlockedVault && !e.vault.locked);
    server.after = undefined;
    // The retry meets the stored vault (409 at 1), reads it back: its own.
    assert.equal(await c.saveVault(e.vault), 1n);
    const first = e.recoveryKeys[0];

    // A recovery-key unlock.
    vaultOutcomeUnknown(server);
    e = await c.unlock({ recoveryKey: first }).then(() => assert.fail("resolved"), (x) => x);
    assert.equal(e.code, "outcome_unknown");
    assert.equal(typeof e.recoveryKey, "string");
    assert.ok(!e.vault.locked, "the vault is kept for the retry");
    server.after = undefined;
    assert.equal(await c.saveVault(e.vault), 2n);
    await rejectsCode(c.unlock({ recoveryKey: first }), "unlock_failed", "the used key");
    const second = e.recoveryKey;
    const { vault } = await c.unlock({ recoveryKey: second });

    // New recovery keys.
    vaultOutcomeUnknown(server);
    e = await c.regenerateRecoveryKeys(vault, 2).then(() => assert.fail("resolved"), (x) => x);
    assert.equal(e.code, "outcome_unknown");
    assert.equal(e.recoveryKeys.length, 2);
    server.after = undefined;
    assert.equal(await c.saveVault(vault), 4n);
    assert.ok((await c.unlock({ recoveryKey: e.recoveryKeys[1] })).vault);
  });

  test("fix 1: a 2xx of a write another tab superseded takes it out of superseded", () => {
    const l = new zk.VersionLedger(new MapStorage());
    const t = (i) => new Uint8Array(16).fill(i);
    l.addPending("u", "doc", 5n, t(5)); // added first
    l.addPending("u", "doc", 2n, t(2));
    l.confirmWrite("u", "doc", 2n, t(2)); // 5, added before it, superseded
    assert.deepEqual(l.record("u", "doc").superseded.map((m) => m.version), [5n]);
    l.confirmWrite("u", "doc", 5n, t(5)); // its 2xx comes after all
    const r = l.record("u", "doc");
    assert.deepEqual([r.min, r.superseded.length, r.pending.length], [5n, 0, 0]);
    l.accept("u", "doc", 5n, t(5));
    // A write added after a success, above it, stays pending; one added before is superseded.
    l.addPending("u", "doc", 9n, t(9));
    l.addPending("u", "doc", 6n, t(6));
    l.addPending("u", "doc", 7n, t(7));
    l.confirmWrite("u", "doc", 6n, t(6));
    const r2 = l.record("u", "doc");
    assert.deepEqual(r2.pending.map((m) => m.version), [7n]);
    assert.deepEqual(r2.superseded.map((m) => m.version), [9n]);
  });

  test("fix 8: storage errors: nothing sent before a write; stored and its version after one; a blocked localStorage at first use", async () => {
    const { server, storage, c, vault } = await setup("pia");
    await c.put(vault, "doc", "v1");
    const realSet = storage.setItem;
    let allowed = 0;
    storage.setItem = function (k, v) {
      if (allowed-- > 0) return realSet.call(this, k, v);
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
    try {
      allowed = 0;
      let e = await c.put(vault, "doc", "v2").then(() => assert.fail("resolved"), (x) => x);
      assert.equal(e.code, "storage");
      assert.notEqual(e.stored, true);
      assert.equal(server.blobs.get("doc").version, 1n, "nothing sent");
      allowed = 1;
      e = await c.put(vault, "doc", "v2").then(() => assert.fail("resolved"), (x) => x);
      assert.equal(e.code, "storage");
      assert.equal(e.stored, true);
      assert.equal(e.version, 2n);
      assert.equal(server.blobs.get("doc").version, 2n);
    } finally {
      storage.setItem = realSet;
    }
    assert.equal(await text(c.get(vault, "doc")), "v2", "pending: accepted when read");
    const d = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
    Object.defineProperty(globalThis, "localStorage", { configurable: true, get() {
      throw new DOMException("Access is denied for this document.", "SecurityError");
    } });
    try {
      const l = new zk.VersionLedger();
      assert.throws(() => l.min("u", "doc"), (x) => x instanceof zk.ZKError && x.code === "storage");
      const c2 = new zk.Client({ base: "/zk", fetch: server.fetch });
      await rejectsCode(c2.unlock({ passphrase: PASS }), "storage", "first use");
    } finally {
      if (d) Object.defineProperty(globalThis, "localStorage", d);
      else delete globalThis.localStorage;
    }
  });
});
