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
/** Whether this account has a private vault (the status, or one created here); null until the status came. */
let hasVault = null;
/**
 * The lock generation: lock() (the Lock button, or the page left) adds one.
 * An action notes it as it starts and checks it after every await (see
 * current), so an answer that comes after a lock touches neither the page
 * nor the notes map.
 */
let generation = 0;

// An action overtaken by a lock: it ends without a word (run).
class Stale extends Error {}

// current throws Stale once the page was locked since generation gen.
function current(gen) {
  if (gen !== generation) throw new Stale("locked meanwhile");
}

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

// keysOf returns the new recovery keys that a vault write's error carries
// ("outcome_unknown", or "storage" after the write stood): the server may
// hold (or holds) the vault they open, so the page shows them.
function keysOf(e) {
  if (!(e instanceof zk.ZKError)) return [];
  const keys = Array.isArray(e.recoveryKeys) ? e.recoveryKeys : [e.recoveryKey];
  return keys.filter((k) => typeof k === "string" && k !== "");
}

// failWith shows an error, with the recovery keys it carries (keysOf). A
// vault the error carries for a retry, not the page's own, is locked: this
// page does not retry.
function failWith(e) {
  fail(messageOf(e));
  for (const k of keysOf(e)) $("zk-error").append(" ", el("code", { className: "keys", textContent: k }));
  if (e instanceof zk.ZKError && e.vault && e.vault !== vault && typeof e.vault.lock === "function") e.vault.lock();
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
      case "outcome_unknown":
        if (keysOf(e).length > 0) {
          return "The server may or may not have saved the change; keep both your old and this new recovery key until you have unlocked again:";
        }
        return "The server may or may not have saved the change. Reload the page and unlock to see which.";
      case "storage":
        return "This browser's storage for this site is blocked or full. Private notes need it to detect an older copy of your vault " +
          "sent back by the server (a rollback): allow site data for this site, or free some space, then try again." +
          (e.stored ? " The change itself was saved on the server" + (keysOf(e).length > 0 ? ", with this new recovery key: keep it:" : ".") : "");
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
// An action overtaken by a lock ends without a word, and without the
// "locked" error that the lock itself caused.
async function run(controls, working, action) {
  for (const c of controls) c.disabled = true;
  say(working);
  const gen = generation;
  try {
    await action(gen);
  } catch (e) {
    if (e instanceof Stale) return;
    if (gen !== generation && e instanceof zk.ZKError && e.code === "locked") return;
    failWith(e);
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
    run(controlsOf(form), working, (gen) => action(form, gen));
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

// clearAllInputs clears every input and textarea of the page (new
// passphrases, note drafts) but those inside except (an element, or null).
function clearAllInputs(except) {
  for (const el of document.querySelectorAll("input:not([readonly]), textarea")) {
    if (!except?.contains(el)) el.value = "";
  }
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
async function loadNotes(gen) {
  current(gen);
  notes.clear();
  const v = vault;
  const list = await client.list();
  current(gen);
  const names = list.map((x) => x.name).filter(isNoteName);
  let rollback = null;
  let failed = 0;
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      let plaintext;
      try {
        current(gen);
        ({ plaintext } = await client.get(v, name));
      } catch (e) {
        current(gen);
        if (!(e instanceof zk.ZKError)) throw e;
        if (e.code === "not_found") continue; // deleted meanwhile
        if (e.code === "rollback") rollback = e;
        else if (e.code !== "decrypt") throw e;
        failed++;
        notes.set(name, { unreadable: true, created: 0 });
        continue;
      }
      try {
        current(gen);
        notes.set(name, parseNote(plaintext));
      } catch (e) {
        if (e instanceof Stale) throw e;
        failed++; // authentic, but not a note of this page's
        notes.set(name, { unreadable: true, created: 0 });
      } finally {
        plaintext.fill(0);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  current(gen);
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
    // The note's time in the reader's own zone, named, as the server's
    // pages write theirs ("7 Dec 2026, 15:05 CET").
    const created = new Date(n.created);
    const when = Number.isFinite(created.getTime()) && n.created
      ? el("time", { dateTime: created.toISOString(), textContent: created.toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" }) })
      : "";
    article.append(el("h2", { textContent: n.title }), el("p", { className: "meta" }, when),
      el("p", { className: "body", textContent: n.body }));
    const title = el("input", { required: true, maxLength: 200, value: n.title });
    const body = el("textarea", { rows: 4, maxLength: 65536, value: n.body });
    const form = el("form", {}, el("label", {}, "Title ", title), el("label", {}, "Note ", body), el("button", { textContent: "Save" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      run(controlsOf(form), "Saving…", async (gen) => {
        const t = title.value.trim();
        if (t === "") throw new PageError("A note needs a title.");
        const next = { title: t, body: body.value, created: n.created };
        await client.put(vault, name, JSON.stringify(next));
        current(gen);
        notes.set(name, next);
        render();
        say("Saved.");
      });
    });
    article.append(el("details", {}, el("summary", { textContent: "Edit" }), form));
  }
  const del = el("button", { className: "danger", type: "button", textContent: "Delete" });
  del.addEventListener("click", () => run([del], "Deleting…", async (gen) => {
    await client.delete(vault, name);
    current(gen);
    notes.delete(name);
    render();
    say("Deleted.");
  }));
  article.append(el("p", {}, del));
  return article;
}

// ---- states ----

// keep makes v the page's vault if no lock came since generation gen;
// else it locks v and throws Stale.
function keep(v, gen) {
  if (gen !== generation) {
    v.lock();
    throw new Stale("locked meanwhile");
  }
  vault = v;
  hasVault = true;
}

async function opened(v, gen) {
  keep(v, gen);
  const fingerprint = await v.fingerprint();
  current(gen);
  $("zk-fingerprint").textContent = fingerprint;
  show("zk-open");
  say("Unlocked.");
  await loadNotes(gen);
  say("");
}

// wipe drops the vault's keys, the notes and every secret shown or typed
// in the page (but in the unlock forms, unless all), and makes every
// action under way stale.
function wipe(all) {
  generation++;
  if (vault) vault.lock();
  vault = null;
  notes.clear();
  $("zk-notes").replaceChildren();
  $("zk-empty").hidden = true;
  $("zk-fingerprint").textContent = "";
  $("zk-recovery-key").textContent = "";
  $("zk-error").replaceChildren();
  $("zk-error").hidden = true;
  clearAllInputs(all ? null : $("zk-unlock"));
}

// lock locks the page: see wipe; it then asks for the passphrase (or
// offers to create a vault, or waits for the status).
function lock(all = false) {
  wipe(all);
  show(hasVault === null ? "zk-loading" : hasVault ? "zk-unlock" : "zk-create");
}

// A new recovery key (a vault created, or a recovery key used) is shown
// even if the page was locked meanwhile (left and come back to): the server
// has the vault it opens, and nothing else shows it again. The vault itself
// is then locked (keep), and "I have saved it" asks for the passphrase.
function showNewKey(v, key, why, gen) {
  hasVault = true;
  let stale = false;
  try {
    keep(v, gen);
  } catch (e) {
    if (!(e instanceof Stale)) throw e;
    stale = true;
  }
  say("");
  showRecoveryKey(key, why);
  if (stale) say("The page was locked meanwhile: unlock after saving the key.");
}

onSubmit("zk-create-form", "Creating your private vault…", async (form, gen) => {
  const passphrase = checkNew($("zk-create-pass"), $("zk-create-pass2"));
  const { vault: v, recoveryKeys } = await client.createVault(passphrase);
  clearInputs(form);
  showNewKey(v, recoveryKeys[0], "Your private vault is ready. This recovery key unlocks it if you forget the passphrase.", gen);
});

$("zk-recovery-done").addEventListener("click", () => {
  $("zk-recovery-key").textContent = "";
  if (vault === null) {
    say("");
    show("zk-unlock");
    return;
  }
  run([$("zk-recovery-done")], "Opening…", (gen) => opened(vault, gen));
});

onSubmit("zk-unlock-form", "Unlocking…", async (form, gen) => {
  const v = await client.unlock({ passphrase: $("zk-unlock-pass").value });
  clearInputs(form);
  await opened(v, gen);
});

onSubmit("zk-recovery-form", "Unlocking…", async (form, gen) => {
  const { vault: v, recoveryKey } = await client.unlock({ recoveryKey: $("zk-recovery-input").value });
  clearInputs(form);
  showNewKey(v, recoveryKey, "Your recovery key unlocked your private notes and has been replaced: the one you used no longer works. This is the new one.", gen);
});

onClick("zk-passkey-unlock", "Waiting for your passkey…", async (gen) => {
  const options = await prfOptions();
  current(gen);
  const v = await client.unlockWithPasskey({ options });
  await opened(v, gen);
});

onClick("zk-passkey-add", "Waiting for your passkey…", async (gen) => {
  const options = await prfOptions();
  current(gen);
  await client.addPasskey(vault, { options });
  current(gen);
  say("That passkey now unlocks your private notes too.");
});

onSubmit("zk-add-form", "Sealing…", async (form, gen) => {
  const title = $("zk-add-title").value.trim();
  if (title === "") throw new PageError("A note needs a title.");
  const name = randomName();
  const n = { title, body: $("zk-add-body").value, created: Date.now() };
  await client.put(vault, name, JSON.stringify(n));
  current(gen);
  clearInputs(form);
  notes.set(name, n);
  render();
  say("Added.");
});

onSubmit("zk-change-form", "Changing the passphrase…", async (form, gen) => {
  const passphrase = checkNew($("zk-change-pass"), $("zk-change-pass2"));
  await client.changePassphrase(vault, passphrase);
  current(gen);
  clearInputs(form);
  say("Your passphrase is changed.");
});

$("zk-lock").addEventListener("click", () => {
  lock();
  say("Locked: the keys are gone from this page.");
});

// A page left (or kept in the back-forward cache) drops its keys and every
// secret in it (a recovery key shown, passphrases typed); come back to, it
// is locked, whatever it showed.
addEventListener("pagehide", () => wipe(true));
addEventListener("pageshow", (ev) => {
  if (!ev.persisted) return;
  lock(true);
  say("");
});

if (typeof globalThis.PublicKeyCredential === "function") {
  for (const e of document.querySelectorAll("[data-webauthn]")) e.hidden = false;
}

try {
  const s = await client.status(); // no secret: shown even after a lock
  hasVault = s.vault !== null;
  show(hasVault ? "zk-unlock" : "zk-create");
} catch (e) {
  show("");
  failWith(e);
}
