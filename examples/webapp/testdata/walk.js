// walk.js is the browser's part of TestBrowserWalk (walk_browser_test.go):
// a new user walks through every feature of the web app, as one would,
// in chromium driven by playwright-core (package internal/browsertest runs
// it: require()d by the script the test sends, it gets the session's page,
// context, browser and CDP session with its virtual authenticator).
//
// On every page it
//   - saves a full-page screenshot, arg.shots/NN-name.png,
//   - fails on a horizontal scroll (the page wider than the window),
//   - fails on a console error or an uncaught error of the page, unless
//     the step allowed it, with its reason (allow()): the 4xx answers the
//     walk provokes on purpose (a rejected passphrase, a wrong password)
//     make chromium log "Failed to load resource",
//   - fails on any answer of status 500 or above, of any request,
//   - fails on a page without a title, or whose answer lacks the security
//     headers (CSP, X-Frame-Options, nosniff, Referrer-Policy, COOP).
// Checks of what the pages say are gathered (check()), and the walk goes
// on; a step that cannot go on throws. It returns what it found: the
// pages, the failures, the problems, and the console errors it allowed.
'use strict';

const crypto = require('crypto');
const path = require('path');

// base32 decodes an RFC 4648 base32 string (no padding needed, spaces and
// case ignored), as authenticator apps read the secret of a TOTP page.
function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.toUpperCase().replace(/[\s=]/g, '')) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error('not base32: ' + JSON.stringify(s));
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// hotp is RFC 4226's HOTP, 6 digits, with HMAC-SHA-1: RFC 6238's TOTP at
// time step counter (authenticator apps' defaults, and the app's).
function hotp(key, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// RFC 6238's first test vector (SHA-1, T = 59 s: step 1) gives 94287082 in
// 8 digits, so 287082 in 6: the generator is checked before it is used.
if (hotp(Buffer.from('12345678901234567890'), 1) !== '287082') throw new Error('hotp: RFC 6238 test vector failed');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.walk = async function walk({ page, browser, cdp, authenticatorId, arg }) {
  const o = arg.origin;
  const user = arg.username;
  const started = Date.now();
  const out = { pages: [], failures: [], problems: [], allowed: [], steps: {} };
  let step = 'start';
  let stepStarted = Date.now();
  const phase = (name) => {
    out.steps[step] = Date.now() - stepStarted;
    step = name;
    stepStarted = Date.now();
  };

  // check records a failure and lets the walk go on.
  const check = (ok, what, detail) => {
    if (!ok) out.failures.push(`${step}: ${what}` + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
    return ok;
  };

  // What each page logged, until its next snapshot.
  const pending = new Map(); // page -> [{kind, text}]
  const allowances = new Map(); // page -> [{re, reason}]
  const who = new Map(); // page -> the context's name
  const note = (p, kind, text) => {
    if (!pending.has(p)) pending.set(p, []);
    pending.get(p).push({ kind, text });
  };
  // watch listens to a browser context: its pages' console errors and
  // uncaught errors, and every answer of status 500 or above (a failure
  // at once: never allowed).
  const watch = (ctx, name) => {
    ctx.on('page', (p) => who.set(p, name));
    for (const p of ctx.pages()) who.set(p, name);
    ctx.on('console', (m) => {
      if (m.type() !== 'error') return;
      const loc = m.location() || {};
      note(m.page(), 'console', m.text() + (loc.url ? ` (${loc.url})` : ''));
    });
    ctx.on('weberror', (e) => {
      const err = e.error();
      note(e.page(), 'pageerror', String((err && err.stack) || err));
    });
    ctx.on('response', (r) => {
      if (r.status() >= 500) out.problems.push(`${name}: ${step}: HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
    });
  };
  // allow lets the next snapshot of p accept console errors matching re,
  // for the reason given (each one used is reported).
  const allow = (p, re, reason) => {
    if (!allowances.has(p)) allowances.set(p, []);
    allowances.get(p).push({ re, reason });
  };
  const status4xx = (code) => new RegExp(`Failed to load resource: the server responded with a status of ${code}\\b`);

  let shotNo = 0;
  // snap records the page p shows now: its console since the last
  // snapshot, its width, and a full-page screenshot named name.
  const snap = async (p, name) => {
    await p.waitForLoadState('load');
    await Promise.all(headerChecks.splice(0));
    const n = String(++shotNo).padStart(2, '0');
    const ctxName = who.get(p) || 'main';
    const label = `${n}-${name}`;
    const allowed = allowances.get(p) || [];
    for (const e of pending.get(p) || []) {
      const a = e.kind === 'console' && allowed.find((x) => x.re.test(e.text));
      if (a) out.allowed.push({ page: label, text: e.text, reason: a.reason });
      else out.problems.push(`${ctxName}: ${label} (${p.url()}): ${e.kind}: ${e.text}`);
    }
    pending.delete(p);
    allowances.delete(p);
    const width = await p.evaluate(() => {
      const root = document.documentElement;
      const limit = root.clientWidth;
      const wide = [];
      if (root.scrollWidth > limit) {
        for (const el of document.body.querySelectorAll('*')) {
          const r = el.getBoundingClientRect();
          if (r.right > limit + 0.5 && wide.length < 5) {
            wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '') + ` (right edge ${Math.round(r.right)})`);
          }
        }
      }
      return { scroll: root.scrollWidth, client: limit, wide };
    });
    if (width.scroll > width.client) {
      out.problems.push(`${ctxName}: ${label} (${p.url()}): scrolls sideways: ${width.scroll} px wide in a ${width.client} px window; ${width.wide.join(', ')}`);
    }
    if (arg.shots) await p.screenshot({ path: path.join(arg.shots, label + '.png'), fullPage: true });
    const title = await p.title();
    if (!title.trim()) out.problems.push(`${ctxName}: ${label} (${p.url()}): no title`);
    out.pages.push({ name: label, url: p.url().replace(o, ''), context: ctxName, title });
  };

  // nav runs action, which loads a new document in p (a link, a form, a
  // script's location.assign), and waits for it; the status of the
  // document's answer is returned.
  // Every page's answer also carries the security headers (its own
  // check, gathered at the next snapshot).
  const statuses = new Map();
  const headerChecks = [];
  const track = (p) => p.on('response', (r) => {
    if (!r.request().isNavigationRequest() || r.frame() !== p.mainFrame()) return;
    statuses.set(p, r.status());
    if (r.status() >= 300 && r.status() < 400) return;
    const where = `${who.get(p) || 'main'}: ${step}: ${r.request().method()} ${r.url().replace(o, '')}`;
    headerChecks.push(r.allHeaders().then((h) => {
      const want = {
        'content-security-policy': /default-src 'self'.*frame-ancestors 'none'/,
        'x-frame-options': /^DENY$/,
        'x-content-type-options': /^nosniff$/,
        'referrer-policy': /^no-referrer$/,
        'cross-origin-opener-policy': /^same-origin$/,
      };
      for (const [name, re] of Object.entries(want)) {
        if (!re.test(h[name] || '')) out.problems.push(`${where}: header ${name}: ${JSON.stringify(h[name] || null)}`);
      }
    }, () => {})); // the page went on before its headers were read: nothing to check
  });
  const nav = async (p, action) => {
    await Promise.all([p.waitForEvent('load'), action()]);
    return statuses.get(p);
  };
  const submit = (p, selector) => nav(p, () => p.click(selector));
  const go = (p, where) => nav(p, () => p.goto(o + where));
  const main = (p) => p.locator('main').innerText();
  const at = (p) => new URL(p.url()).pathname + new URL(p.url()).search;

  // The per-address login limit (5 per 15 minutes) counts every login the
  // walk makes from one address: more than a person makes in a quarter
  // hour. Each login comes from another address (the test's server reads
  // X-Walk-Client as the client's address), as from a phone that moves
  // between networks; the limits themselves have tests of their own. The
  // addresses are loopback ones (127.1.x.y): the app serves plain HTTP to
  // loopback clients only.
  let clientNo = 0;
  const newAddress = (ctx) => {
    clientNo++;
    return ctx.setExtraHTTPHeaders({ 'X-Walk-Client': `127.1.${clientNo >> 8}.${clientNo & 255}` });
  };
  const login = async (p, name, secret) => {
    await newAddress(p.context());
    await p.fill('form[action="/login"] input[name=username]', name);
    await p.fill('form[action="/login"] input[name=password]', secret);
    return submit(p, 'form[action="/login"] button');
  };
  const logout = (p) => submit(p, 'form[action="/logout"] button');

  // TOTP codes: each one for a later time step than the last (the app
  // refuses a step used already), at the current step or the next (the
  // app accepts one step either side).
  let lastStep = -1;
  const totpCode = async (secret) => {
    const key = base32(secret);
    for (;;) {
      const now = Math.floor(Date.now() / 30000);
      const s = Math.max(lastStep + 1, now);
      if (s <= now + 1) {
        lastStep = s;
        return hotp(key, s);
      }
      await sleep((now + 1) * 30000 - Date.now() + 100);
    }
  };

  const p = page;
  let second = null;
  let third = null;
  let password = arg.password; // the password changes on the Account page
  try {
    watch(p.context(), 'main');
    track(p);
    await newAddress(p.context());

    // Sign-up: a passphrase the policy refuses first, then a good one.
    phase('signup');
    await go(p, '/');
    check((await main(p)).includes('Sign up'), 'the home page offers sign-up');
    await snap(p, 'home');
    await nav(p, () => p.click('main a[href="/signup"]'));
    await snap(p, 'signup');
    await p.fill('form[action="/signup"] input[name=username]', user);
    await p.fill('form[action="/signup"] input[name=password]', arg.weakPassword);
    allow(p, status4xx(400), 'the policy refuses the passphrase: the sign-up form comes back with status 400');
    let text = "";
    let st = await submit(p, 'form[action="/signup"] button');
    check(st === 400, 'a refused passphrase answers 400', st);
    const refused = await p.locator('main .error').innerText();
    check(refused.includes('too common'), 'the policy says why it refused the passphrase', refused);
    check(!refused.includes(arg.weakPassword), 'the reason does not echo the passphrase', refused);
    check(await p.inputValue('form[action="/signup"] input[name=username]') === user, 'the username is kept');
    await snap(p, 'signup-refused');
    await p.fill('form[action="/signup"] input[name=password]', password);
    await submit(p, 'form[action="/signup"] button');
    check(at(p) === '/recovery-keys', 'sign-up shows the recovery keys', at(p));
    const keys = await p.locator('main ul.keys code').allInnerTexts();
    check(keys.length === 2 && keys.every((k) => k.length >= 20), 'two recovery keys shown', keys);
    out.recoveryKeys = keys.length;
    await snap(p, 'recovery-keys');
    await nav(p, () => p.click('main a[href="/notes"]'));
    check((await main(p)).includes('No notes yet'), 'a new account has no notes');
    await snap(p, 'notes-empty');

    // Notes: add two, edit one, delete the other.
    phase('notes');
    const addNote = async (title, body) => {
      await p.fill('form[action="/notes"] input[name=title]', title);
      await p.fill('form[action="/notes"] textarea[name=body]', body);
      await submit(p, 'form[action="/notes"] button');
    };
    const noteTitles = () => p.locator('main article.note h2').allInnerTexts();
    const noteEl = (title) => p.locator('main article.note', { has: p.locator('h2', { hasText: title }) });
    await addNote('Groceries', 'oat milk, lemons, rye bread');
    await addNote('Travel plans', 'Lisbon in May: book the train to Porto');
    await addNote('Books to read', 'The Dispossessed; Piranesi');
    check((await noteTitles()).length === 3, 'three notes added', await noteTitles());
    await snap(p, 'notes-three');
    await noteEl('Travel plans').locator('summary').click();
    await snap(p, 'notes-edit-open');
    await noteEl('Travel plans').locator('input[name=title]').fill('Travel plans 2027');
    await noteEl('Travel plans').locator('textarea[name=body]').fill('Lisbon in May, then Porto by train');
    await nav(p, () => noteEl('Travel plans').locator('details form button').click());
    const afterEdit = await main(p);
    check(afterEdit.includes('Travel plans 2027') && afterEdit.includes('then Porto by train'), 'the note edited', afterEdit);
    await nav(p, () => noteEl('Groceries').locator('form[action$="/delete"] button').click());
    check(!(await noteTitles()).includes('Groceries') && (await noteTitles()).length === 2, 'a note deleted', await noteTitles());
    await snap(p, 'notes-edited');

    // Lock, then unlock with the passphrase (a wrong one first).
    phase('lock');
    await submit(p, 'form[action="/lock"] button');
    check(at(p) === '/unlock', 'Lock shows the unlock page', at(p));
    await snap(p, 'unlock');
    await go(p, '/notes');
    check(at(p) === '/unlock', 'the notes stay locked', at(p));
    await p.fill('form[action="/unlock"] input[name=password]', arg.wrongPassword);
    allow(p, status4xx(401), 'a wrong passphrase at unlock answers 401');
    st = await submit(p, 'form[action="/unlock"] button');
    check(st === 401 && (await main(p)).includes('Wrong password'), 'a wrong passphrase is refused', st);
    await snap(p, 'unlock-wrong');
    await p.fill('form[action="/unlock"] input[name=password]', password);
    await submit(p, 'form[action="/unlock"] button');
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'unlocked with the passphrase', at(p));
    // Locked again, and unlocked with a recovery key (a lost password):
    // the key spent, its replacement shown once.
    await submit(p, 'form[action="/lock"] button');
    await p.click('main summary:has-text("recovery key")');
    await p.fill('form[action="/unlock/recovery-key"] input[name=recovery_key]', keys[1]);
    await submit(p, 'form[action="/unlock/recovery-key"] button');
    const keyShown = await p.locator('main ul.keys code').allInnerTexts();
    check(keyShown.length === 1 && !keys.includes(keyShown[0]) && (await main(p)).includes('Your notes are unlocked'), 'unlocked with a recovery key: its replacement shown', keyShown);
    await snap(p, 'unlock-recovery-key');
    await nav(p, () => p.click('main a[href="/notes"]'));
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'the notes, unlocked by the recovery key', at(p));

    // Log out, then log in: a wrong password first (its answer is kept, to
    // compare with the one after the account's deletion).
    phase('login');
    await logout(p);
    check(at(p) === '/', 'logout shows the home page', at(p));
    await go(p, '/notes');
    check(at(p).startsWith('/login'), 'logged out: the notes ask for a login', at(p));
    await snap(p, 'login');
    allow(p, status4xx(401), 'a wrong password at login answers 401');
    const wrongLogin = { status: await login(p, user, arg.wrongPassword), text: await p.locator('main .error').innerText() };
    check(wrongLogin.status === 401 && wrongLogin.text.includes('Wrong username or password'), 'a wrong password is refused', wrongLogin);
    await snap(p, 'login-wrong');
    await login(p, user, password);
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'logged in and unlocked: the notes', at(p));
    await snap(p, 'notes-after-login');
    // A mistyped address: the app's own error page, not plain text.
    allow(p, status4xx(404), 'a page that does not exist answers 404');
    st = await go(p, '/notes/of-someone-else/nope');
    text = await main(p);
    check(st === 404 && text.includes('Sorry') && (await p.locator('header a.brand').count()) === 1, 'a styled 404 page, in the layout', { st, text });
    await snap(p, 'not-found');

    // Devices: a second browser (another profile, a phone's User-Agent)
    // logs in; the first one sees it listed, and logs it out.
    phase('devices');
    second = await browser.newContext({ viewport: arg.viewport, userAgent: arg.secondUserAgent });
    second.setDefaultTimeout(arg.actionTimeout);
    watch(second, 'second');
    const q = await second.newPage();
    who.set(q, 'second');
    track(q);
    await q.goto(o + '/login');
    await snap(q, 'second-login');
    await login(q, user, password);
    check(at(q) === '/notes', 'the second browser logged in', at(q));
    await snap(q, 'second-notes');
    // The rows as shown (a closed <details> holds the full User-Agent
    // string: not in innerText).
    const rows = async () => p.locator('main form[action="/devices/revoke"]').evaluateAll((forms) => forms.map((f) => {
      const row = f.closest('tr, li, article, section') || f.parentElement;
      return row.innerText;
    }));
    const fresh = async (what) => { // the login was seconds ago: no step-up expected
      if (!at(p).startsWith('/reauth')) return;
      check(false, `${what} asked to confirm, seconds after a login`, at(p));
      await p.fill('form[action="/reauth"] input[name=password]', password);
      await submit(p, 'form[action="/reauth"] button');
    };
    await go(p, '/devices');
    let listed = await rows();
    check(listed.length === 2, 'both browsers listed', listed);
    check(listed[0] && listed[0].includes('this device'), 'this device first', listed);
    check(listed[1] && listed[1].includes('Safari on iPhone'), 'the other browser named by its User-Agent', listed);
    check(listed.every((r) => !r.includes('Mozilla/5.0') && r.includes('UTC')), 'no raw User-Agent in the rows; times with their zone', listed);
    await snap(p, 'devices-two');
    const other = listed.findIndex((r) => !r.includes('this device'));
    await nav(p, () => p.locator('main form[action="/devices/revoke"]').nth(other).locator('button').click());
    await fresh('logging a device out');
    check(at(p) === '/devices', 'back on the devices page', at(p));
    listed = await rows();
    check(listed.length === 1 && listed[0].includes('this device'), 'the other browser is gone from the list', listed);
    await snap(p, 'devices-one');
    await go(q, '/notes');
    check(at(q) === '/login?ended=1' && (await main(q)).includes('Your session ended'), 'the second browser was logged out, and told so', at(q));
    await snap(q, 'second-ended');
    // The second browser logs in again; "Log out everywhere else".
    await login(q, user, password);
    check(at(q) === '/notes', 'the second browser logged in again', at(q));
    await go(p, '/devices');
    check((await rows()).length === 2, 'two browsers listed again', await rows());
    await submit(p, 'main form[action="/devices/revoke-others"] button');
    await fresh('"Log out everywhere else"');
    listed = await rows();
    check(at(p) === '/devices?others=ended' && (await main(p)).includes('only this one is logged in'), 'the others logged out, and said so', at(p));
    check(listed.length === 1 && listed[0].includes('this device'), 'only this device is left', listed);
    check(await p.locator('main form[action="/devices/revoke-others"]').count() === 0, 'no "everywhere else" button with no other device');
    await snap(p, 'devices-others-ended');
    await go(q, '/notes');
    check(at(q) === '/login?ended=1', 'the second browser was logged out again', at(q));

    // The Account page: the password changed (a refused one first), failed
    // logins by someone else explained, the encryption key replaced with
    // its notes sealed again.
    phase('password');
    await nav(p, () => p.click('header a[href="/account"]'));
    await snap(p, 'account');
    await p.fill('form[action="/account/password"] input[name=current]', password);
    await p.fill('form[action="/account/password"] input[name=new]', arg.weakPassword);
    allow(p, status4xx(400), 'the policy refuses the new password: the Account page comes back with status 400');
    st = await submit(p, 'form[action="/account/password"] button');
    text = await p.locator('main .error').innerText().catch(() => '');
    check(st === 400 && text.includes('not changed') && text.includes('too common'), 'a refused new password, with the reason', { st, text });
    await snap(p, 'password-refused');
    await p.fill('form[action="/account/password"] input[name=current]', password);
    await p.fill('form[action="/account/password"] input[name=new]', arg.newPassword);
    await submit(p, 'form[action="/account/password"] button');
    await fresh('changing the password');
    check(at(p) === '/account?changed=password' && (await main(p)).includes('Your password is changed'), 'the password changed', at(p));
    await snap(p, 'password-changed');
    const oldPassword = password;
    password = arg.newPassword;
    // The new password unlocks the notes.
    await submit(p, 'form[action="/lock"] button');
    await p.fill('form[action="/unlock"] input[name=password]', password);
    await submit(p, 'form[action="/unlock"] button');
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'the new password unlocks the notes', at(p));

    // Someone else tries the old password, and guesses, from a browser of
    // their own; the login answers as to any wrong password; the owner's
    // Account page explains the count.
    phase('lockout');
    third = await browser.newContext({ viewport: arg.viewport });
    third.setDefaultTimeout(arg.actionTimeout);
    watch(third, 'other');
    const r3 = await third.newPage();
    who.set(r3, 'other');
    track(r3);
    await r3.goto(o + '/login');
    await newAddress(third);
    for (const guess of [oldPassword, 'velvet otter learns geometry', 'velvet otter learns topology']) {
      await r3.fill('form[action="/login"] input[name=username]', user);
      await r3.fill('form[action="/login"] input[name=password]', guess);
      st = await submit(r3, 'form[action="/login"] button');
      const answer = await r3.locator('main .error').innerText().catch(() => '');
      check(st === wrongLogin.status && answer === wrongLogin.text, 'a guess is answered as a wrong password', { st, answer });
    }
    allow(r3, status4xx(401), 'three wrong passwords from someone else\'s browser answer 401');
    await snap(r3, 'other-guesses');
    await third.close();
    third = null;
    await nav(p, () => p.click('header a[href="/account"]'));
    text = await main(p);
    check(/3 wrong passwords on your account from browsers that had not signed in/.test(text), 'the Account page counts the guesses', text);
    check(text.includes('UTC'), 'the Account page says when the count is cleared, with the zone', text);
    await snap(p, 'account-lockout');

    phase('rotation');
    await p.fill('form[action="/account/rotate"] input[name=password]', password);
    await submit(p, 'form[action="/account/rotate"] button');
    await fresh('replacing the key');
    text = await main(p);
    const newKeys = await p.locator('main ul.keys code').allInnerTexts();
    check(at(p) === '/account/rotate' && newKeys.length >= 1, 'the key replaced: new recovery keys shown', { url: at(p), keys: newKeys.length });
    check(/2 of your 2 notes are still sealed under the old key/.test(text), 'the notes under the old key counted', text);
    await snap(p, 'rotate-keys');
    await submit(p, 'form[action="/account/rotate/reseal"] button');
    await p.waitForSelector('main form[action="/account/rotate/finish"]');
    text = await main(p);
    check(/Done: 2 notes checked, 2 sealed again under the new key/.test(text), 'the notes sealed again, with the progress', text);
    await snap(p, 'rotate-resealed');
    await submit(p, 'main form[action="/account/rotate/finish"] button');
    text = await main(p);
    check(at(p) === '/account/rotate?done=1' && text.includes('the old key is destroyed'), 'the old key destroyed', { url: at(p), text });
    await snap(p, 'rotate-done');
    await nav(p, () => p.click('header a[href="/notes"]'));
    text = await main(p);
    check(text.includes('Travel plans 2027') && text.includes('Books to read'), 'the notes read under the new key', text);

    // "Forgot your password?": a recovery key and a new password. The
    // keys of the sign-up were replaced with the key: one of them is
    // refused; one of the new ones sets the password.
    phase('forgot');
    await logout(p);
    await go(p, '/login');
    await nav(p, () => p.click('main a[href="/forgot"]'));
    await snap(p, 'forgot');
    const forgot = async (key) => {
      await newAddress(p.context());
      await p.fill('form[action="/forgot"] input[name=username]', user);
      await p.fill('form[action="/forgot"] input[name=key]', key);
      await p.fill('form[action="/forgot"] input[name=password]', arg.resetPassword);
      return submit(p, 'form[action="/forgot"] button');
    };
    allow(p, status4xx(401), 'a recovery key replaced by the new encryption key answers 401');
    st = await forgot(keys[0]);
    text = await p.locator('main .error').innerText().catch(() => '');
    check(st === 401 && text !== '' && at(p) === '/forgot', 'a recovery key from before the key change is refused', { st, text });
    await snap(p, 'forgot-refused');
    await forgot(newKeys[0]);
    text = await main(p);
    const replacement = await p.locator('main ul.keys code').allInnerTexts();
    check(text.includes('Your password is changed') && replacement.length === 1 && replacement[0] !== newKeys[0], 'the password reset with the recovery key, a replacement key shown', { text, replacement });
    await snap(p, 'forgot-done');
    password = arg.resetPassword;
    await nav(p, () => p.click('main a[href="/notes"]'));
    text = await main(p);
    check(at(p) === '/notes' && text.includes('Travel plans 2027'), 'logged in and unlocked after the reset: the notes', at(p));

    // Private notes: a zero-knowledge vault of their own, under a
    // passphrase the server never sees.
    phase('private-notes');
    await nav(p, () => p.click('header a[href="/private-notes"]'));
    await p.waitForSelector('#zk-create', { state: 'visible' });
    await snap(p, 'private-create');
    await p.fill('#zk-create-pass', arg.zkPassphrase);
    await p.fill('#zk-create-pass2', arg.zkPassphrase);
    await p.click('#zk-create-form button');
    await p.waitForSelector('#zk-recovery', { state: 'visible' });
    const zkKey = (await p.textContent('#zk-recovery-key')).trim();
    check(zkKey.length >= 20, 'the private vault shows its recovery key', zkKey.length);
    await snap(p, 'private-recovery-key');
    await p.click('#zk-recovery-done');
    await p.waitForSelector('#zk-open', { state: 'visible' });
    const zkCount = (n) => p.waitForFunction((n) => document.querySelectorAll('#zk-notes article.note').length === n, n);
    const zkAdd = async (title, body, n) => {
      allow(p, /status of 404 .*\/zk\/records\/n-[0-9a-f]{32}\)$/, 'a new private note: the client asks for its record\'s version before the first write, and there is none yet (404)');
      await p.fill('#zk-add-title', title);
      await p.fill('#zk-add-body', body);
      await p.click('#zk-add-form button');
      await zkCount(n);
    };
    await zkAdd('Spare key', 'under the blue flowerpot', 1);
    await snap(p, 'private-open');
    await p.click('#zk-lock');
    await p.waitForSelector('#zk-unlock', { state: 'visible' });
    await snap(p, 'private-locked');
    await p.fill('#zk-unlock-pass', arg.zkPassphrase);
    await p.click('#zk-unlock-form button');
    await zkCount(1);
    await zkAdd('Wifi at the cabin', 'fjord-cabin / seven lanterns', 2);
    await snap(p, 'private-two');
    // Locked again, and opened with the recovery key: a new one is shown.
    await p.click('#zk-lock');
    await p.waitForSelector('#zk-unlock', { state: 'visible' });
    await p.click('main summary:has-text("recovery key")');
    await p.fill('#zk-recovery-input', zkKey);
    await snap(p, 'private-unlock-recovery');
    await p.click('#zk-recovery-form button');
    await p.waitForSelector('#zk-recovery', { state: 'visible' });
    const zkKey2 = (await p.textContent('#zk-recovery-key')).trim();
    check(zkKey2.length >= 20 && zkKey2 !== zkKey, 'the recovery key opened the private notes, and a new one is shown', zkKey2.length);
    await snap(p, 'private-new-recovery-key');
    await p.click('#zk-recovery-done');
    await zkCount(2);
    const zkTitles = await p.locator('#zk-notes article.note h2').allInnerTexts();
    check(zkTitles.includes('Spare key') && zkTitles.includes('Wifi at the cabin'), 'the private notes after the recovery key', zkTitles);

    // Passkeys: add one (the virtual authenticator has PRF: it unlocks the
    // notes), rename it, sign in with it without a username, unlock with
    // it, remove it.
    phase('passkeys');
    await nav(p, () => p.click('header a[href="/passkeys"]'));
    check((await main(p)).includes('no passkeys yet'), 'no passkeys at first');
    await snap(p, 'passkeys-none');
    await nav(p, () => p.click('main a[href="/passkeys/add"]'));
    await p.waitForSelector('#passkey-add', { state: 'visible' });
    await snap(p, 'passkey-add');
    await p.fill('#passkey-add input[name=name]', 'Laptop');
    await nav(p, () => p.click('#passkey-add button'));
    text = await main(p);
    check(at(p) === '/passkeys?added=1' && text.includes('Laptop') && text.includes('unlocks your notes'), 'the passkey added, and it unlocks the notes', text);
    await snap(p, 'passkeys-one');
    await p.click('main summary:has-text("Rename")');
    await p.fill('form[action="/passkeys/rename"] input[name=name]', 'Work laptop');
    await snap(p, 'passkey-rename');
    await submit(p, 'form[action="/passkeys/rename"] button');
    check((await main(p)).includes('Work laptop'), 'the passkey renamed', await main(p));
    await logout(p);
    await go(p, '/login');
    await p.waitForSelector('#passkey-login', { state: 'visible' });
    await nav(p, () => p.click('#passkey-login'));
    text = await main(p);
    check(at(p) === '/unlock?after=passkey' && text.includes('Signed in with your passkey'), 'signed in with the passkey, no username', at(p));
    check((await p.locator('header').innerText()).includes(user), 'the passkey named the user');
    await p.waitForSelector('#passkey-unlock', { state: 'visible' });
    await snap(p, 'unlock-passkey');
    await nav(p, () => p.click('#passkey-unlock'));
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'the passkey unlocked the notes', at(p));
    await go(p, '/passkeys');
    await submit(p, 'form[action="/passkeys/remove"] button');
    if (at(p).startsWith('/reauth')) {
      check(false, 'removing the passkey asked to confirm, minutes after a passkey sign-in', at(p));
      await nav(p, () => p.click('#passkey-reauth'));
      await submit(p, 'form[action="/passkeys/remove"] button');
    }
    check((await main(p)).includes('no passkeys yet'), 'the passkey removed', await main(p));
    await snap(p, 'passkeys-removed');
    const creds = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    check(creds.length === 1, 'the authenticator still holds its credential (the server forgot it)', creds.length);

    // Two-factor: an authenticator app, its secret read from the page.
    phase('totp');
    await nav(p, () => p.click('header a[href="/2fa"]'));
    check((await main(p)).includes('Two-factor authentication is off'), 'two-factor off at first');
    await snap(p, 'twofactor-off');
    await nav(p, () => p.click('main a[href="/2fa/enroll"]'));
    if (at(p).startsWith('/reauth')) {
      check(false, 'enrolling asked to confirm, minutes after a passkey sign-in', at(p));
      await p.fill('form[action="/reauth"] input[name=password]', password);
      await submit(p, 'form[action="/reauth"] button');
    }
    const secret = (await p.textContent('#secret')).trim();
    check(/^[A-Z2-7]{16,}=*$/.test(secret.replace(/\s/g, '')), 'a base32 secret shown', secret.length);
    const qr = await p.locator('#qr').evaluate((img) => img.complete && img.naturalWidth);
    check(qr >= 200, 'the QR code image loaded', qr);
    await snap(p, 'twofactor-enroll');
    await p.fill('form[action="/2fa/enroll"] input[name=name]', 'Phone');
    await p.fill('form[action="/2fa/enroll"] input[name=code]', await totpCode(secret));
    await submit(p, 'form[action="/2fa/enroll"] button');
    text = await main(p);
    check(text.includes('Your authenticator is set up'), 'the authenticator added', text);
    let codes = await p.locator('main ul.keys code').allInnerTexts();
    check(codes.length === 10, 'ten recovery codes shown', codes.length);
    await snap(p, 'recovery-codes');
    // Until the user says they saved the codes, the two-factor page says
    // to make a new set (a codes page lost to a crash or a dropped
    // connection is not silent).
    const unsaved = await p.evaluate(() => fetch('/2fa').then((r) => r.text()));
    check(unsaved.includes('id="codes-unsaved"'), 'the two-factor page asks for a new set while the codes are not said saved');
    await submit(p, 'form[action="/2fa/codes-saved"] button');
    check(at(p) === '/2fa', 'the codes saved: back on the two-factor page', at(p));
    text = await main(p);
    check(text.includes('Phone') && /10\s+of\s+10/.test(text) && await p.locator('#codes-unsaved').count() === 0, 'the authenticator listed, with 10 of 10 recovery codes, no warning', text);
    await snap(p, 'twofactor-on');

    // Login with a code from the app.
    phase('login-totp');
    await logout(p);
    await go(p, '/login');
    await login(p, user, password);
    check(at(p) === '/login/2fa', 'the password alone asks for a code', at(p));
    await snap(p, 'login-code');
    await p.fill('form[action="/login/2fa"] input[name=code]', await totpCode(secret));
    await submit(p, 'form[action="/login/2fa"] button');
    check(at(p) === '/unlock?after=2fa' && (await main(p)).includes('Code accepted'), 'the code accepted; the notes still locked', at(p));
    await snap(p, 'unlock-after-code');
    await p.fill('form[action="/unlock"] input[name=password]', password);
    await submit(p, 'form[action="/unlock"] button');
    check(at(p) === '/notes', 'unlocked after the code', at(p));
    // Two factors and unlocked: the Account page lets the user set a new
    // password without the current one.
    await nav(p, () => p.click('header a[href="/account"]'));
    check(await p.locator('main form[action="/account/password/set"]').count() === 1, 'a two-factor session may set a new password without the old');
    await p.fill('form[action="/account/password/set"] input[name=new]', arg.setPassword);
    await snap(p, 'account-set-password');
    await submit(p, 'form[action="/account/password/set"] button');
    await fresh('setting a new password');
    check(at(p) === '/account?changed=password', 'the new password set', at(p));
    password = arg.setPassword;

    // Login with recovery codes, until few are left: the warning.
    phase('recovery-codes');
    const recoveryLogin = async (code) => {
      await logout(p);
      await go(p, '/login');
      await login(p, user, password);
      await p.click('main summary:has-text("recovery code")');
      await p.fill('form[action="/login/recovery"] input[name=recovery_code]', code);
      return submit(p, 'form[action="/login/recovery"] button');
    };
    const recovered = async (left) => {
      text = await main(p);
      const shown = await p.locator('#remaining').innerText().catch(() => '');
      check(text.includes('Logged in with a recovery code') && shown === String(left), `a recovery code logs in, ${left} left`, text);
      check(text.includes('running low') === (left <= 3), `the low-count warning ${left <= 3 ? 'shown' : 'not shown'} with ${left} left`, text);
    };
    await recoveryLogin(codes[0]);
    await recovered(9);
    await snap(p, 'recovered');
    // Codes 2 to 6 through the same forms, posted by the browser context
    // (its cookies) without drawing the pages the walk has just seen: a
    // user spends a code a month, not five a minute, and the walk's time
    // goes to pages it has not seen yet.
    for (let i = 1; i <= 5; i++) {
      await newAddress(p.context());
      const post = (where, form) => p.request.post(o + where, form ? { form } : {});
      const steps = [await post('/logout'), await post('/login', { username: user, password: password })];
      check(steps[1].url().endsWith('/login/2fa'), `recovery code ${i + 1}: the password asks for a code`, steps[1].url());
      const res = await post('/login/recovery', { recovery_code: codes[i] });
      steps.push(res);
      const html = await res.text();
      const left = (html.match(/id="remaining">(\d+)</) || [])[1];
      check(steps.every((r) => r.ok()) && left === String(9 - i) && !html.includes('running low'), `recovery code ${i + 1} logs in, ${9 - i} left, no warning`, { statuses: steps.map((r) => r.status()), left });
    }
    await go(p, '/2fa');
    await recoveryLogin(codes[6]);
    await recovered(3);
    await snap(p, 'recovered-low');
    await nav(p, () => p.click('main a[href="/2fa"]'));
    text = await main(p);
    check(/3\s+of\s+10/.test(text) && text.includes('running low'), 'the two-factor page warns: 3 of 10 left', text);
    await snap(p, 'twofactor-low');
    await submit(p, 'form[action="/2fa/recovery-codes"] button');
    if (at(p).startsWith('/reauth')) {
      check(false, 'new codes asked to confirm, minutes after a recovery-code login', at(p));
      await p.fill('form[action="/reauth"] input[name=password]', password);
      await submit(p, 'form[action="/reauth"] button');
      await submit(p, 'form[action="/2fa/recovery-codes"] button');
    }
    const oldCodes = codes;
    codes = await p.locator('main ul.keys code').allInnerTexts();
    check(codes.length === 10 && !codes.some((c) => oldCodes.includes(c)), 'ten new recovery codes', codes.length);
    await snap(p, 'recovery-codes-new');
    await submit(p, 'form[action="/2fa/codes-saved"] button');
    text = await main(p);
    check(/10\s+of\s+10/.test(text) && !text.includes('running low'), 'the warning gone: 10 of 10', text);
    await snap(p, 'twofactor-renewed');
    // An old code no longer works; a new one does.
    allow(p, status4xx(401), 'a recovery code of the old set answers 401');
    st = await recoveryLogin(oldCodes[9]);
    check(st === 401 && (await main(p)).includes('did not work'), 'a code of the old set is refused', st);
    await snap(p, 'login-code-refused');
    // The refusal names the recovery code, its form shown open again.
    check(await p.locator('main details[open] form[action="/login/recovery"]').isVisible(), 'the refused recovery code\'s form is open');
    check((await p.locator('main [role=alert]').innerText().catch(() => '')).includes('recovery code'), 'the refusal speaks of the recovery code');
    await p.fill('form[action="/login/recovery"] input[name=recovery_code]', codes[0]);
    await submit(p, 'form[action="/login/recovery"] button');
    check((await p.locator('#remaining').innerText().catch(() => '')) === '9', 'a new code logs in: 9 left');
    await nav(p, () => p.click('main a[href="/unlock"]'));
    await p.fill('form[action="/unlock"] input[name=password]', password);
    await submit(p, 'form[action="/unlock"] button');
    check(at(p) === '/notes', 'unlocked after the recovery code', at(p));
    // The authenticator removed: two-factor is off again.
    await nav(p, () => p.click('header a[href="/2fa"]'));
    await submit(p, 'main form[action="/2fa/remove"] button');
    await fresh('removing the authenticator');
    text = await main(p);
    check(at(p) === '/2fa' && text.includes('Two-factor authentication is off'), 'the authenticator removed', { url: at(p), text });
    await snap(p, 'twofactor-removed');

    // Sixteen idle minutes (the app's clock moved on): the notes lock by
    // themselves; unlocked, they are back. The password was entered long
    // ago now: deleting the account asks for it again (the step-up).
    phase('idle');
    const res = await p.request.post(o + '/_walk/advance?by=16m');
    check(res.status() === 204, 'the app\'s clock moved on', res.status());
    await go(p, '/notes');
    check(at(p) === '/unlock', 'after 16 idle minutes the notes are locked', at(p));
    await snap(p, 'unlock-idle');
    await p.fill('form[action="/unlock"] input[name=password]', password);
    await submit(p, 'form[action="/unlock"] button');
    check(at(p) === '/notes' && (await main(p)).includes('Travel plans 2027'), 'unlocked again', at(p));

    // Account deletion, then the login fails as a wrong password does.
    phase('delete');
    await nav(p, () => p.click('header a[href="/account"]'));
    await snap(p, 'account');
    await p.fill('form[action="/account/delete"] input[name=confirm]', user);
    await submit(p, 'form[action="/account/delete"] button');
    check(at(p) === '/reauth?next=%2Faccount', 'deleting asks for the password again, after 16 minutes', at(p));
    if (at(p).startsWith('/reauth')) {
      await snap(p, 'reauth');
      allow(p, status4xx(401), 'a wrong password at the step-up answers 401');
      await p.fill('form[action="/reauth"] input[name=password]', arg.wrongPassword);
      st = await submit(p, 'form[action="/reauth"] button');
      check(st === 401 && (await main(p)).includes('Wrong password'), 'a wrong password at the step-up is refused', st);
      await snap(p, 'reauth-wrong');
      await p.fill('form[action="/reauth"] input[name=password]', password);
      await submit(p, 'form[action="/reauth"] button');
      check(at(p) === '/account', 'the step-up returns to the Account page', at(p));
      await p.fill('form[action="/account/delete"] input[name=confirm]', user);
      await submit(p, 'form[action="/account/delete"] button');
    }
    check(at(p) === '/?deleted=1' && (await main(p)).includes('Your account has been deleted'), 'the account deleted', at(p));
    await snap(p, 'deleted');
    await go(p, '/login');
    allow(p, status4xx(401), 'the deleted account\'s login answers 401, as a wrong password does');
    const gone = { status: await login(p, user, password), text: await p.locator('main .error').innerText() };
    check(gone.status === wrongLogin.status && gone.text === wrongLogin.text, 'the login of the deleted account answers as a wrong password', { gone, wrongLogin });
    await snap(p, 'login-deleted');
  } catch (e) {
    out.error = `${step}: ${(e && e.stack) || e}`;
    if (arg.shots) await p.screenshot({ path: path.join(arg.shots, 'failed.png'), fullPage: true }).catch(() => {});
  }
  phase('end');
  await Promise.all(headerChecks.splice(0));
  if (second) await second.close();
  if (third) await third.close();
  for (const [pg, events] of pending) {
    for (const e of events) out.problems.push(`${who.get(pg) || 'main'}: after the last page: ${e.kind}: ${e.text}`);
  }
  out.ms = Date.now() - started;
  return out;
};
