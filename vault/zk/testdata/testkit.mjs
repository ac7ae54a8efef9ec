// Helpers shared by the node tests of client.js (client_test.mjs,
// attack_review_test.mjs, attack_review2_test.mjs).
import assert from "node:assert/strict";
import * as zk from "../client.js";

/**
 * Asserts that p rejects with a ZKError of this code.
 * @param {Promise<any>} p
 * @param {string} code
 * @param {string} [what] Said in the failure.
 */
export async function rejectsCode(p, code, what = "") {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof zk.ZKError, `${what}: not a ZKError: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.code}: ${e.message}`);
    return true;
  });
}

/** A localStorage in memory (one per origin: two tabs may share one). */
export class MapStorage {
  m = new Map();
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
}
