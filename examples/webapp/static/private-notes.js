// The private-notes page (privatenotes.go): keyhold's zero-knowledge mode,
// over package vault/zk's browser client (served at /static/keyhold-zk.js).
// Every key stays in this page: the passphrase, the recovery key and a
// passkey's PRF output go only to WebCrypto, and the server receives
// sealed records. The vault's keys live in this page's memory only, so a
// reload (or Lock) locks it. Served from the app's own origin: the
// Content-Security-Policy allows no inline script.
import * as zk from "/static/keyhold-zk.js";

const $ = (id) => document.getElementById(id);
const client = new zk.Client({ base: "/zk" });
const MIN_PASSPHRASE = 15; // characters, as the login password policy
const sections = ["zk-loading", "zk-create", "zk-recovery", "zk-unlock", "zk-open"];

/** @type {zk.UnlockedVault | null} */
let vault = null;
/** The notes read or written, by record name: {title, body, created} or {unreadable: true}. */
const notes = new Map();

function show(id) {
  for (const s of sections) $(s).hidden = s !== id;
}

function say(text) {
  $("zk-error").hidden = true;
  $("zk-notice").textContent = text;
  $("zk-notice").hidden = !text;
}

function fail(text) {
  $("zk-notice").hidden = true;
  $("zk-error").textContent = text;
  $("zk-error").hidden = !text;
}

// A page error with a message for the user (the server's JSON answer).
class PageError extends Error {}

// messageOf says what went wrong and what to do, never echoing a secret
// (ZKError messages hold none; the server's answers are its own words).
function messageOf(e) {
  if (e instanceof PageError) return e.message;
  if (e instanceof zk.ZKError) {
    switch (e.code) {
      case "unlock_failed":
        return "That did not unlock your private notes. Check it and try again.";
      case "rollback":
        return "Warning: the server sent an older version of your private notes than this browser has seen before. " +
          "It may have been restored from an old backup, or tampered with. That version was refused and nothing was changed.";
      case "decrypt":
        return "A private note could not be opened: it was changed on the server, or moved from another note.";
      case "conflict":
        return "Your private notes changed in another tab or on another device meanwhile. Reload the page, unlock, and try again.";
      case "not_found":
        return "That note is not there any more. Reload the page.";
      case "rate_limited":
        return "Too many requests. Try again in " + (e.retryAfter ?? 60) + " seconds.";
      case "locked":
        return "Your private notes are locked.";
      case "unsupported":
        return "This browser or passkey cannot do that here (a passkey needs the PRF extension).";
      case "params":
        return "Your private vault uses settings this browser cannot read. Unlock it with the recovery key.";
      case "invalid_input":
        return "That input is not usable (a passphrase is at most 1024 bytes).";
      case "invalid_record":
        return "The server sent a private vault this page cannot read.";
      default:
        if (e.status === 401) return "Your session ended: please log in again.";
        if (e.status === 503) return "The server is busy or its storage failed. Try again in a moment.";
        return "The server refused that (" + (e.status ?? "error") + "). Try again.";
    }
  }
  if (e?.name === "NotAllowedError") return "Cancelled, or no passkey for this site was chosen.";
  return "Something went wrong in this page. Reload it and try again.";
}

// run runs an action from a form or a button, with its controls disabled
// and a word while it works; errors are shown in the page.
async function run(controls, working, action) {
  for (const c of controls) c.disabled = true;
  say(working);
  try {
    await action();
  } catch (e) {
    fail(messageOf(e));
  } finally {
    for (const c of controls) c.disabled = false;
  }
}

function controlsOf(form) {
  return [...form.querySelectorAll("button, input, textarea")];
}

function onSubmit(id, working, action) {
  const form = $(id);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(controlsOf(form), working, () => action(form));
  });
}

function onClick(id, working, action) {
  const el = $(id);
  if (el) el.addEventListener("click", () => run([el], working, action));
}

// checkNew checks a new passphrase typed twice: the policy's length, the
// same both times. The server never sees it, so it cannot check it.
function checkNew(a, b) {
  if ([...a.value].length < MIN_PASSPHRASE) throw new PageError("Use at least " + MIN_PASSPHRASE + " characters; a few unrelated words work well.");
  if (a.value !== b.value) throw new PageError("The two passphrases differ.");
  return a.value;
}

function clearInputs(form) {
  for (const el of form.querySelectorAll("input:not([readonly]), textarea")) el.value = "";
}

// prfOptions asks the server for the options of a passkey prompt whose
// PRF output stays in this page (passkey.Manager.PRFOptions).
async function prfOptions() {
  const r = await fetch("/passkey/prf-options", {
    method: "POST", credentials: "same-origin", mode: "same-origin", headers: { Accept: "application/json" },
  });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's page, say
  }
  if (!r.ok) throw new PageError(body?.error || "The server refused the passkey prompt (" + r.status + ").");
  if (body === null) throw new PageError("The server's passkey options are not readable.");
  return body;
}

function showRecoveryKey(key, why) {
  $("zk-recovery-why").textContent = why;
  $("zk-recovery-key").textContent = key;
  show("zk-recovery");
  $("zk-recovery-done").focus();
}

// ---- the notes ----

function randomName() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "n-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const isNoteName = (name) => /^n-[0-9a-f]{32}$/.test(name);

// parseNote reads a note's record: JSON {title, body, created}.
function parseNote(plaintext) {
  const n = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext));
  if (typeof n?.title !== "string" || typeof n.body !== "string") throw new Error("not a note");
  return { title: n.title, body: n.body, created: Number(n.created) || 0 };
}

// loadNotes reads and opens every note, a few at a time. A note that does
// not open is listed as unreadable; a rollback is warned of.
async function loadNotes() {
  notes.clear();
  const names = (await client.list()).map((x) => x.name).filter(isNoteName);
  let rollback = null;
  let failed = 0;
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      let plaintext;
      try {
        ({ plaintext } = await client.get(vault, name));
      } catch (e) {
        if (!(e instanceof zk.ZKError)) throw e;
        if (e.code === "not_found") continue; // deleted meanwhile
        if (e.code === "rollback") rollback = e;
        else if (e.code !== "decrypt") throw e;
        failed++;
        notes.set(name, { unreadable: true, created: 0 });
        continue;
      }
      try {
        notes.set(name, parseNote(plaintext));
      } catch {
        failed++; // authentic, but not a note of this page's
        notes.set(name, { unreadable: true, created: 0 });
      } finally {
        plaintext.fill(0);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  render();
  if (rollback) throw rollback;
  if (failed) throw new PageError(failed + " private note(s) could not be opened: changed on the server, or moved from another note.");
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

function render() {
  const list = $("zk-notes");
  list.replaceChildren();
  const sorted = [...notes.entries()].sort((a, b) => b[1].created - a[1].created || (a[0] < b[0] ? -1 : 1));
  for (const [name, n] of sorted) list.append(noteView(name, n));
  $("zk-empty").hidden = notes.size > 0;
}

function noteView(name, n) {
  const article = el("article", { className: "note" });
  article.dataset.name = name;
  if (n.unreadable) {
    article.append(el("h2", { textContent: "(unreadable)" }));
  } else {
    const when = n.created ? new Date(n.created).toLocaleString() : "";
    article.append(el("h2", { textContent: n.title }), el("p", { className: "meta", textContent: when }),
      el("p", { className: "body", textContent: n.body }));
    const title = el("input", { required: true, maxLength: 200, value: n.title });
    const body = el("textarea", { rows: 4, maxLength: 65536, value: n.body });
    const form = el("form", {}, el("label", {}, "Title ", title), el("label", {}, "Note ", body), el("button", { textContent: "Save" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      run(controlsOf(form), "Saving…", async () => {
        const t = title.value.trim();
        if (t === "") throw new PageError("A note needs a title.");
        const next = { title: t, body: body.value, created: n.created };
        await client.put(vault, name, JSON.stringify(next));
        notes.set(name, next);
        render();
        say("Saved.");
      });
    });
    article.append(el("details", {}, el("summary", { textContent: "Edit" }), form));
  }
  const del = el("button", { className: "danger", type: "button", textContent: "Delete" });
  del.addEventListener("click", () => run([del], "Deleting…", async () => {
    await client.delete(vault, name);
    notes.delete(name);
    render();
    say("Deleted.");
  }));
  article.append(el("p", {}, del));
  return article;
}

// ---- states ----

async function opened(v) {
  vault = v;
  $("zk-fingerprint").textContent = await vault.fingerprint();
  show("zk-open");
  say("Unlocked.");
  await loadNotes();
  say("");
}

function lock() {
  if (vault) vault.lock();
  vault = null;
  notes.clear();
  $("zk-notes").replaceChildren();
  $("zk-fingerprint").textContent = "";
  show("zk-unlock");
}

onSubmit("zk-create-form", "Creating your private vault…", async (form) => {
  const passphrase = checkNew($("zk-create-pass"), $("zk-create-pass2"));
  const { vault: v, recoveryKeys } = await client.createVault(passphrase);
  clearInputs(form);
  vault = v;
  say("");
  showRecoveryKey(recoveryKeys[0], "Your private vault is ready. This recovery key unlocks it if you forget the passphrase.");
});

$("zk-recovery-done").addEventListener("click", () => {
  $("zk-recovery-key").textContent = "";
  run([$("zk-recovery-done")], "Opening…", () => opened(vault));
});

onSubmit("zk-unlock-form", "Unlocking…", async (form) => {
  const v = await client.unlock({ passphrase: $("zk-unlock-pass").value });
  clearInputs(form);
  await opened(v);
});

onSubmit("zk-recovery-form", "Unlocking…", async (form) => {
  const { vault: v, recoveryKey } = await client.unlock({ recoveryKey: $("zk-recovery-input").value });
  clearInputs(form);
  vault = v;
  say("");
  showRecoveryKey(recoveryKey, "Your recovery key unlocked your private notes and has been replaced: the one you used no longer works. This is the new one.");
});

onClick("zk-passkey-unlock", "Waiting for your passkey…", async () => {
  const options = await prfOptions();
  await opened(await client.unlockWithPasskey({ options }));
});

onClick("zk-passkey-add", "Waiting for your passkey…", async () => {
  const options = await prfOptions();
  await client.addPasskey(vault, { options });
  say("That passkey now unlocks your private notes too.");
});

onSubmit("zk-add-form", "Sealing…", async (form) => {
  const title = $("zk-add-title").value.trim();
  if (title === "") throw new PageError("A note needs a title.");
  const name = randomName();
  const n = { title, body: $("zk-add-body").value, created: Date.now() };
  await client.put(vault, name, JSON.stringify(n));
  clearInputs(form);
  notes.set(name, n);
  render();
  say("Added.");
});

onSubmit("zk-change-form", "Changing the passphrase…", async (form) => {
  const passphrase = checkNew($("zk-change-pass"), $("zk-change-pass2"));
  await client.changePassphrase(vault, passphrase);
  clearInputs(form);
  say("Your passphrase is changed.");
});

$("zk-lock").addEventListener("click", () => {
  lock();
  say("Locked: the keys are gone from this page.");
});

// A page left (or kept in the back-forward cache) locks.
addEventListener("pagehide", () => {
  if (vault) vault.lock();
});
addEventListener("pageshow", (ev) => {
  if (ev.persisted && !$("zk-open").hidden) lock();
});

if (typeof globalThis.PublicKeyCredential === "function") {
  for (const e of document.querySelectorAll("[data-webauthn]")) e.hidden = false;
}

try {
  const s = await client.status();
  show(s.vault === null ? "zk-create" : "zk-unlock");
} catch (e) {
  show("");
  fail(messageOf(e));
}
