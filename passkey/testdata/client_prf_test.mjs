// Unit tests of passkey/client.js's PRF inputs under Node's test runner
// (run by passkey.TestClientPRFInputsUnderNode):
//
//	node --test passkey/testdata/client_prf_test.mjs
//
// The module never passes the server's PRF salts to the authenticator as
// they are: each becomes SHA-256("keyhold/v1/passkey/prf-input" ‖ 0x00 ‖
// salt) (FORMAT.md §7.3), and a sign-in asks for no PRF output at all. So
// a server cannot use this module to obtain the output for an input of
// another domain, such as the zero-knowledge client's (FORMAT.md §8.3).
import { test } from "node:test";
import assert from "node:assert/strict";

const b64u = (b) => Buffer.from(b).toString("base64url");
const hex = (b) => Buffer.from(b).toString("hex");
const sha256 = async (...parts) => new Uint8Array(await crypto.subtle.digest("SHA-256", Buffer.concat(parts.map((p) => Buffer.from(p)))));
const own = (salt) => sha256("keyhold/v1/passkey/prf-input", [0], salt);
const zkInput = (salt) => sha256("keyhold/v1/zk/prf-input", [0], salt);

// A page at https://app.example: fetch answers the begin URLs with the
// given options and records the finish bodies; navigator.credentials
// records what it is asked and answers a fixed credential whose PRF
// output is its input reversed (so the test can tell which input was used).
function page(options) {
  const sent = [];
  const asked = [];
  globalThis.location = new URL("https://app.example/page");
  globalThis.fetch = async (url, init) => {
    if (String(url).includes("begin")) return new Response(JSON.stringify(options));
    sent.push(init.body);
    return new Response("{}");
  };
  const rawId = new Uint8Array(16).fill(7).buffer;
  const answer = (input) => ({
    id: b64u(rawId), rawId, type: "public-key",
    response: {
      clientDataJSON: new Uint8Array([1]).buffer, attestationObject: new Uint8Array([2]).buffer,
      authenticatorData: new Uint8Array([3]).buffer, signature: new Uint8Array([4]).buffer,
    },
    getClientExtensionResults: () => (input ? { prf: { enabled: true, results: { first: input.slice().reverse().buffer } } } : {}),
  });
  const firstInput = (prf) => prf?.eval?.first ?? Object.values(prf?.evalByCredential ?? {})[0]?.first;
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    value: {
      credentials: {
        create: async (args) => (asked.push(args.publicKey), answer(firstInput(args.publicKey.extensions?.prf))),
        get: async (args) => (asked.push(args.publicKey), answer(firstInput(args.publicKey.extensions?.prf))),
      },
    },
  });
  return { sent, asked };
}

const salt = new Uint8Array(32).fill(2);
const passkey = await import("../client.js");

test("register asks with the module's own input, not the salt", async () => {
  const { sent, asked } = page({
    publicKey: {
      challenge: b64u([9]), rp: { id: "app.example", name: "App" }, user: { id: b64u([1]), name: "a", displayName: "a" },
      pubKeyCredParams: [{ type: "public-key", alg: -7 }],
      extensions: { prf: { eval: { first: b64u(salt), second: b64u(salt) } } },
    },
  });
  await passkey.register({ begin: "/begin", finish: "/finish", name: "Laptop" });
  const prf = asked[0].extensions.prf;
  assert.deepEqual(Object.keys(prf), ["eval"]);
  assert.deepEqual(Object.keys(prf.eval), ["first"]);
  assert.equal(hex(prf.eval.first), hex(await own(salt)));
  assert.equal(hex(prf.eval.first), "fa922356ce6649ce3f2a973af709a7e8d585efd98eef7ebab8313ade99f2568a"); // FORMAT.md §7.3's vector
  const body = JSON.parse(sent[0]);
  assert.equal(body.clientExtensionResults.prf.results.first, b64u((await own(salt)).reverse()));
});

test("register with keepPRF sends no output", async () => {
  const { sent } = page({
    publicKey: {
      challenge: b64u([9]), rp: { id: "app.example", name: "App" }, user: { id: b64u([1]), name: "a", displayName: "a" },
      pubKeyCredParams: [{ type: "public-key", alg: -7 }], extensions: { prf: { eval: { first: b64u(salt) } } },
    },
  });
  await passkey.register({ begin: "/begin", finish: "/finish", name: "Laptop", keepPRF: true });
  const body = JSON.parse(sent[0]);
  assert.equal(body.clientExtensionResults.prf.enabled, true);
  assert.equal(body.clientExtensionResults.prf.results, undefined);
});

test("unlock and stepUp ask each credential with the module's own input", async () => {
  for (const run of [passkey.unlock, passkey.stepUp]) {
    // A hostile server asks for the zero-knowledge input: the module asks
    // for SHA-256 of its own label and that value instead.
    const hostile = await zkInput(salt);
    const { sent, asked } = page({
      publicKey: {
        challenge: b64u([9]), allowCredentials: [{ type: "public-key", id: b64u(new Uint8Array(16).fill(7)) }],
        extensions: { prf: { eval: { first: b64u(hostile) }, evalByCredential: { [b64u(new Uint8Array(16).fill(7))]: { first: b64u(hostile) } } } },
      },
    });
    await run({ begin: "/begin", finish: "/finish" });
    const prf = asked[0].extensions.prf;
    const inputs = [prf.eval.first, ...Object.values(prf.evalByCredential).map((v) => v.first)];
    for (const input of inputs) {
      assert.equal(hex(input), hex(await own(hostile)));
      assert.notEqual(hex(input), hex(hostile));
    }
    assert.ok(!sent[0].includes(b64u(hostile.slice().reverse())), "the zero-knowledge slot's output was sent");
  }
});

test("login asks for no PRF output", async () => {
  const { sent, asked } = page({
    publicKey: { challenge: b64u([9]), extensions: { prf: { eval: { first: b64u(await zkInput(salt)) } } } },
  });
  await passkey.login({ begin: "/begin", finish: "/finish" });
  assert.equal(asked[0].extensions?.prf, undefined);
  assert.equal(JSON.parse(sent[0]).clientExtensionResults.prf, undefined);
});

test("only keyhold's extensions go to the browser, and only their outputs to the server", async () => {
  const { sent, asked } = page({
    publicKey: {
      challenge: b64u([9]), allowCredentials: [{ type: "public-key", id: b64u(new Uint8Array(16).fill(7)) }],
      extensions: {
        hmacGetSecret: { salt1: b64u(salt) }, largeBlob: { read: true }, credBlob: b64u([1]), appid: "https://evil.example",
        prf: { evalByCredential: { [b64u(new Uint8Array(16).fill(7))]: { first: b64u(salt) } } },
      },
    },
  });
  const realGet = navigator.credentials.get;
  navigator.credentials.get = async (args) => {
    const cred = await realGet(args);
    const results = cred.getClientExtensionResults();
    cred.getClientExtensionResults = () => ({ ...results, hmacGetSecret: { output1: new Uint8Array(32).fill(5).buffer }, largeBlob: { blob: new Uint8Array(8).buffer } });
    return cred;
  };
  await passkey.unlock({ begin: "/begin", finish: "/finish" });
  assert.deepEqual(Object.keys(asked[0].extensions).sort(), ["prf"]);
  const body = JSON.parse(sent[0]);
  assert.deepEqual(Object.keys(body.clientExtensionResults), ["prf"]);
  assert.ok(!sent[0].includes(b64u(new Uint8Array(32).fill(5))), "an hmac-secret output was sent");
});
