// runner.js is the Node side of package browsertest (embedded in the Go
// package, written to a temporary file and run by node). It launches the
// chromium named in its configuration through playwright-core, opens one
// page, optionally adds a CDP virtual authenticator to it, then evaluates
// the scripts that arrive on standard input, one JSON line each:
//
//   {"id": 1, "body": "<body of an async function>", "arg": <any JSON>}
//
// and answers on file descriptor 3, one JSON line each:
//
//   {"type": "ready", "browserVersion": ..., "playwrightVersion": ..., "authenticatorId": ...}
//   {"type": "result", "id": 1, "ok": true, "value": <JSON>}
//   {"type": "result", "id": 1, "ok": false, "error": "<message and stack>"}
//   {"type": "console", "level": "error", "text": ..., "url": ..., "line": ...}
//   {"type": "fatal", "error": ...}
//
// Standard output and standard error stay free for logs. When standard
// input closes it closes the browser and exits; on SIGTERM it exits at once
// (playwright-core's exit handler kills the browser's process group).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const cfg = JSON.parse(process.env.KEYHOLD_BROWSERTEST_CONFIG);
const pwPath = path.join(cfg.playwrightDir, 'node_modules', 'playwright-core');
const { chromium } = require(pwPath);
const playwrightVersion = require(path.join(pwPath, 'package.json')).version;

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(3, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function send(msg) {
  let line;
  try {
    line = JSON.stringify(msg);
  } catch (e) {
    line = JSON.stringify({ type: msg.type, id: msg.id, ok: false, error: 'result is not JSON: ' + e.message });
  }
  writeAll(Buffer.from(line + '\n'));
}

process.on('SIGTERM', () => process.exit(143));

const AsyncFunction = (async () => {}).constructor;

async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    timeout: cfg.launchTimeoutMs,
    // As the machine's probe runs it: no connections to Google's hosts,
    // which this machine's closed network refuses.
    args: [
      '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps',
    ],
  });
  const contextOptions = {};
  if (cfg.viewport) contextOptions.viewport = cfg.viewport;
  const context = await browser.newContext(contextOptions);
  context.setDefaultTimeout(cfg.actionTimeoutMs);
  context.on('console', (m) => {
    const loc = m.location() || {};
    send({ type: 'console', level: m.type(), text: m.text(), url: loc.url || '', line: loc.lineNumber || 0 });
  });
  context.on('weberror', (e) => {
    const err = e.error();
    send({ type: 'console', level: 'pageerror', text: String((err && err.stack) || err), url: '', line: 0 });
  });
  context.on('response', (r) => {
    if (r.status() >= 500) {
      send({ type: 'console', level: 'http', text: r.status() + ' ' + r.request().method() + ' ' + r.url(), url: r.url(), line: 0 });
    }
  });
  const page = await context.newPage();

  let cdp = null;
  let authenticatorId = '';
  if (cfg.authenticator) {
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: cfg.authenticator }));
  }
  send({ type: 'ready', browserVersion: browser.version(), playwrightVersion, authenticatorId });

  let queue = Promise.resolve();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      let cmd;
      try {
        cmd = JSON.parse(line);
      } catch (e) {
        send({ type: 'fatal', error: 'bad command: ' + e.message });
        process.exit(2);
      }
      try {
        const fn = new AsyncFunction('page', 'context', 'browser', 'cdp', 'authenticatorId', 'arg', cmd.body);
        const value = await fn(page, context, browser, cdp, authenticatorId, cmd.arg);
        send({ type: 'result', id: cmd.id, ok: true, value: value === undefined ? null : value });
      } catch (e) {
        send({ type: 'result', id: cmd.id, ok: false, error: String((e && e.stack) || e) });
      }
    });
  });
  rl.on('close', () => {
    queue.then(() => browser.close()).then(() => process.exit(0), (e) => {
      process.stderr.write('closing the browser: ' + e + '\n');
      process.exit(1);
    });
  });
}

main().catch((e) => {
  send({ type: 'fatal', error: String((e && e.stack) || e) });
  process.exit(1);
});
