// meshgate's real-browser test (issue 4): Debian's headless Chromium, driven by playwright-core,
// talks WebSocket to the real binary ($MESHGATE_BIN) while a backend written here consumes the queue.
//
//   node browser_test.mjs          (normally through run.sh, which installs playwright-core first)
//
// What runs:
//   ws     always: a page served by a tiny HTTP server of ours opens ws:// to an anonymous listener;
//          a /ws/v1 consumer (queue.pop "client") sees its open event, subscribes it with conn.call,
//          POST /v1/mesh/publish (and mesh.send) reach the page, a message the page sends reaches the
//          consumer as a frame event, and the page's close reaches it as a close event (1000).
//   token  when the binary accepts `token_secret` on a listener: the page opens ws:// with a connect
//          token (HS256 JWT made here: ctx {"user":"browser"}, ch ["room:token"]); missing, forged and
//          expired tokens are refused (the page never opens; our own client sees HTTP 401, over TLS
//          too) and make no queue event; conn.info shows the token's ctx and channel.
//   wss    when the binary accepts `tls = on` (no cert: a self-signed development certificate): the page
//          also opens wss:// (Chromium runs with --ignore-certificate-errors), with the token if tokens
//          exist. A publish to "room:token" then reaches every token/TLS socket (s = their number).
// Which parts ran is printed on the last line. Exit code 0 when everything that ran passed, 1 otherwise.
// Every wait is bounded; the browser, the HTTP server and the node are stopped even on failure.
// Environment: MESHGATE_BIN (default build/meshgate), CHROMIUM_BIN (/usr/bin/chromium),
// MESHGATE_BROWSER_SCREENSHOT (default $TMPDIR/meshgate-browser-test.png), MESHGATE_BROWSER_PLAIN_ONLY=1
// (the ws part alone), MESHGATE_BROWSER_KEEP=1 (keep the work directory: config, node log, profile).

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, MESHGATE_BIN, MiniWs, Node, T, apiOk, check, fail, freePort, httpRequest, log, sleep,
  supports, within } from './lib.mjs';

const SCREENSHOT = process.env.MESHGATE_BROWSER_SCREENSHOT || path.join(os.tmpdir(), 'meshgate-browser-test.png');
const TOTAL_TIMEOUT = 180_000;  // the whole test; run.sh's caller (meson) allows 300 s


/** The backend: one /ws/v1 connection that makes calls and collects queue events. */
class Backend {
  static async connect(apiPort) {
    const b = new Backend(await MiniWs.connect(`ws://127.0.0.1:${apiPort}/ws/v1`));
    return b;
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();   // id -> resolve
    this.events = [];           // every queue.pop event's p, in arrival order
    this.waiters = new Set();
    ws.onmessage = (text) => {
      let msg;
      try { msg = JSON.parse(text); } catch { this.events.push({ unparsable: text }); return; }
      if (msg.e === 'queue.pop') {
        this.events.push(msg.p);
        for (const w of this.waiters) w();
      } else if (msg.i !== undefined && this.pending.has(msg.i)) {
        this.pending.get(msg.i)(msg);
        this.pending.delete(msg.i);
      }
    };
  }

  /** Sends {"m","p","i"}; resolves with the whole answer ({"r":..} or {"E":..}). */
  call(m, p) {
    const i = this.nextId++;
    const answer = new Promise((resolve) => this.pending.set(i, resolve));
    this.ws.send(JSON.stringify({ m, p, i }));
    return within(T, `answer to ${m} on /ws/v1`, answer);
  }

  async callOk(m, p) {
    const a = await this.call(m, p);
    check(!a.E && a.r !== undefined, `${m} ${JSON.stringify(p)}: expected a result, got ${JSON.stringify(a)}`);
    return a.r;
  }

  /** The first event (from the start) that matches `pred`. */
  waitEvent(what, pred, timeout = T) {
    const found = () => this.events.find(pred);
    const now = found();
    if (now) return Promise.resolve(now);
    let waiter;
    return within(timeout, `queue event: ${what} (events so far: ${JSON.stringify(this.events).slice(0, 2000)})`,
      new Promise((resolve) => { waiter = () => { const e = found(); if (e) resolve(e); }; this.waiters.add(waiter); }))
      .finally(() => this.waiters.delete(waiter));
  }

  close() { this.ws.close(); }
}


// The page: opens every socket named in its query (?open=NAME|URL, repeatable) and records what
// happens in window.mg.sockets[NAME]; window.mgSend(NAME, text) sends. Also shown on the page.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>meshgate browser test</title>
<style>body{font:14px monospace;margin:1em} td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style>
</head><body><h1>meshgate browser test</h1><table id="t"><tr><th>socket</th><th>state</th><th>received</th></tr></table>
<script>
"use strict";
window.mg = { sockets: {} };
const live = {};
function show() {
  const t = document.getElementById('t');
  while (t.rows.length > 1) t.deleteRow(1);
  for (const [name, s] of Object.entries(window.mg.sockets)) {
    const r = t.insertRow();
    r.insertCell().textContent = name;
    r.insertCell().textContent = s.state + (s.closeCode !== null ? ' (' + s.closeCode + ')' : '');
    r.insertCell().textContent = s.received.join(' | ');
  }
}
function mgOpen(name, url) {
  const s = { url, state: 'connecting', opened: false, received: [], error: false, closeCode: null, closeReason: '' };
  window.mg.sockets[name] = s;
  const ws = new WebSocket(url);
  live[name] = ws;
  ws.onopen = () => { s.state = 'open'; s.opened = true; show(); };
  ws.onmessage = (e) => { s.received.push(typeof e.data === 'string' ? e.data : '[binary]'); show(); };
  ws.onerror = () => { s.error = true; show(); };
  ws.onclose = (e) => { s.state = 'closed'; s.closeCode = e.code; s.closeReason = e.reason; show(); };
  show();
}
window.mgSend = (name, text) => { live[name].send(text); return true; };
window.mgCloseAll = () => { for (const ws of Object.values(live)) ws.close(1000, 'done'); };
for (const spec of new URLSearchParams(location.search).getAll('open')) {
  const i = spec.indexOf('|');
  mgOpen(spec.slice(0, i), spec.slice(i + 1));
}
</script></body></html>
`;

function startPageServer() {
  const server = http.createServer((req, res) => {
    const where = new URL(req.url, 'http://x').pathname;
    if (req.method === 'GET' && where === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else if (req.method === 'GET' && where === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(PAGE);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  return within(T, 'page server listen', new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  }));
}

// ------------------------------------------------------------------------------------------------
// Connect tokens: HS256 JWT with node:crypto
// ------------------------------------------------------------------------------------------------

function jwt(claims, secret) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = crypto.createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}


// ------------------------------------------------------------------------------------------------
// The scenario
// ------------------------------------------------------------------------------------------------

const parts = [];               // what ran and passed, for the last line
const skipped = [];             // what did not run, and why

async function pageWait(page, what, fn, arg, timeout = T) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    const state = await page.evaluate(() => JSON.stringify(window.mg && window.mg.sockets)).catch(() => '(page gone)');
    fail(`page: ${what} did not happen within ${timeout} ms; sockets: ${state}`);
  }
}

async function pageSocket(page, name) {
  return page.evaluate((n) => window.mg.sockets[n], name);
}

/** Waits until the page's socket NAME is open; fails at once when it closes without opening. */
async function pageOpen(page, name) {
  await pageWait(page, `${name} socket open`, (n) => window.mg.sockets[n].opened || window.mg.sockets[n].state === 'closed', name);
  const s = await pageSocket(page, name);
  check(s.opened, `page: ${name} socket closed without opening: ${JSON.stringify(s)}`);
}

async function scenario(ctx) {
  const { work, features } = ctx;
  const secret = crypto.randomBytes(24).toString('hex');
  const run = crypto.randomBytes(4).toString('hex');   // marks this run's connections and messages

  // Config: an anonymous ws listener always; a token ws listener and a TLS listener when supported.
  const config = {
    node: { id: 1, name: 'browser-test', workers: 2, advertise: '127.0.0.1', drain_timeout: 3 },
    log: { level: 'info' },
    api: { bind: '127.0.0.1', port: await freePort() },
    route: { port: 0 },
    'listener.ws': { type: 'ws', bind: '127.0.0.1', port: await freePort(), topic: 'client' },
  };
  if (features.token) {
    config['listener.wstok'] = { type: 'ws', bind: '127.0.0.1', port: await freePort(), topic: 'client',
      token_secret: secret };
  }
  if (features.tls) {
    config['listener.wss'] = { type: 'ws', bind: '127.0.0.1', port: await freePort(), topic: 'client',
      tls: 'on', cert: '', key: '', ...(features.token ? { token_secret: secret } : {}) };
  }
  const node = ctx.node = new Node(work, config);
  await node.start();
  log(`node up: api ${node.apiPort}, ws ${node.port('ws')}` +
    (features.token ? `, wstok ${node.port('wstok')}` : '') + (features.tls ? `, wss ${node.port('wss')}` : ''));

  // The backend consumes before any client connects.
  const backend = ctx.backend = await Backend.connect(node.apiPort);
  await backend.callOk('queue.pop', { t: ['client'] });

  const server = ctx.server = await startPageServer();
  const pagePort = server.address().port;

  // Sockets the page opens at load: NAME -> URL. The tag in each query finds its open event.
  const sockets = { plain: `ws://127.0.0.1:${node.port('ws')}/browser?tag=plain-${run}` };
  const tokenSockets = [];      // names that must get ch ["room:token"] and ctx {"user":"browser"}
  const refused = [];           // names that must never open
  const now = Math.floor(Date.now() / 1000);
  const good = jwt({ exp: now + 300, uid: 'browser-user', ctx: { user: 'browser' }, ch: ['room:token'] }, secret);
  if (features.token) {
    const tok = node.port('wstok');
    sockets.notoken = `ws://127.0.0.1:${tok}/browser?tag=notoken-${run}`;
    sockets.forged = `ws://127.0.0.1:${tok}/browser?tag=forged-${run}&token=` +
      jwt({ exp: now + 300, uid: 'browser-user', ctx: { user: 'browser' }, ch: ['room:token'] }, `${secret}x`);
    sockets.expired = `ws://127.0.0.1:${tok}/browser?tag=expired-${run}&token=` +
      jwt({ exp: now - 60, uid: 'browser-user', ctx: { user: 'browser' }, ch: ['room:token'] }, secret);
    refused.push('notoken', 'forged', 'expired');
    sockets.tok = `ws://127.0.0.1:${tok}/browser?tag=tok-${run}&token=${good}`;
    tokenSockets.push('tok');
  }
  if (features.tls) {
    sockets.tls = `wss://127.0.0.1:${node.port('wss')}/browser?tag=tls-${run}` + (features.token ? `&token=${good}` : '');
    tokenSockets.push('tls');
  }

  // The browser: Debian's Chromium with a fresh profile directory.
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(work, 'chromium-profile-'));
  log(`launching ${CHROMIUM}`);
  const browser = ctx.browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000,
    viewport: { width: 1000, height: 400 },
  });
  const page = ctx.page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(T);
  page.on('console', (m) => { if (m.type() === 'error') log(`page console: ${m.text()}`); });
  const query = Object.entries(sockets).map(([n, u]) => `open=${encodeURIComponent(`${n}|${u}`)}`).join('&');
  await page.goto(`http://127.0.0.1:${pagePort}/?${query}`, { timeout: T });
  log(`page loaded (Chromium ${browser.browser()?.version?.() ?? ''})`.replace(' ()', ''));

  // --- ws: anonymous ws:// -----------------------------------------------------------------------
  await pageOpen(page, 'plain');
  const openPlain = await backend.waitEvent('open of the page socket', (e) =>
    e.d && e.d.event === 'open' && e.d.query === `tag=plain-${run}`);
  check(openPlain.t === 'client' && openPlain.n === 1, `open event: topic/node ${JSON.stringify(openPlain)}`);
  check(openPlain.d.listener === 'ws' && openPlain.d.path === '/browser',
    `open event: listener/path ${JSON.stringify(openPlain)}`);
  check(/^127\.0\.0\.1:\d+$/.test(openPlain.d.remote_addr), `open event: remote_addr ${JSON.stringify(openPlain)}`);
  check(typeof openPlain.c === 'string' && /^\d+$/.test(openPlain.c), `open event: client id ${JSON.stringify(openPlain)}`);
  check(openPlain.x === undefined, `open event of an anonymous connection has a context: ${JSON.stringify(openPlain)}`);
  const plainId = openPlain.c;

  const sub = await backend.callOk('conn.call', { c: plainId, f: 'subscribe', a: ['room:browser'] });
  check(sub.s === true, `conn.call subscribe: ${JSON.stringify(sub)}`);
  const hello = `hello browser ${run} ✓`;
  const pub = await apiOk(node.apiPort, 'mesh.publish', { c: 'room:browser', d: hello });
  check(pub.s === 1 && pub.f === 0, `mesh.publish room:browser: expected {s:1,f:0}, got ${JSON.stringify(pub)}`);
  await pageWait(page, `"${hello}" received`, (h) => window.mg.sockets.plain.received.includes(h), hello);

  const fromPage = `{"from":"page","run":"${run}","n":1}`;
  await page.evaluate(([t]) => window.mgSend('plain', t), [fromPage]);
  const frame = await backend.waitEvent('the page message', (e) =>
    e.c === plainId && e.d && e.d.frame && e.d.frame.data === fromPage);
  check(frame.d.frame.type === 'text' && frame.d.frame.finish === true, `frame event: ${JSON.stringify(frame)}`);
  const direct = await apiOk(node.apiPort, 'mesh.send', { c: plainId, d: `direct ${run}` });
  check(direct.s === true, `mesh.send: ${JSON.stringify(direct)}`);
  await pageWait(page, 'mesh.send received', (h) => window.mg.sockets.plain.received.includes(h), `direct ${run}`);
  parts.push('ws');
  log('ws:// part passed: open event, conn.call subscribe, mesh.publish and mesh.send to the page, page message to the consumer');

  // --- token / wss --------------------------------------------------------------------------------
  if (tokenSockets.length) {
    for (const name of refused) {
      await pageWait(page, `${name} socket refused (closed)`, (n) => window.mg.sockets[n].state === 'closed', name);
      const s = await pageSocket(page, name);
      check(!s.opened && s.closeCode === 1006, `${name}: expected a refused connection (never open, close 1006), got ${JSON.stringify(s)}`);
    }
    const ids = {};
    for (const name of tokenSockets) {
      await pageOpen(page, name);
      const open = await backend.waitEvent(`open of ${name}`, (e) =>
        e.d && e.d.event === 'open' && typeof e.d.query === 'string' && e.d.query.startsWith(`tag=${name}-${run}`));
      const wantListener = name === 'tls' ? 'wss' : 'wstok';
      check(open.d.listener === wantListener, `${name} open event: listener ${JSON.stringify(open)}`);
      if (features.token) {
        check(open.x && open.x.user === 'browser', `${name} open event: expected x.user "browser", got ${JSON.stringify(open)}`);
        const info = await apiOk(node.apiPort, 'conn.info', { c: open.c });
        check(Array.isArray(info.ch) && info.ch.includes('room:token'),
          `${name} conn.info: expected ch to include room:token, got ${JSON.stringify(info)}`);
        check(info.x && info.x.user === 'browser', `${name} conn.info: expected x.user "browser", got ${JSON.stringify(info)}`);
      } else {
        const r = await backend.callOk('conn.call', { c: open.c, f: 'subscribe', a: ['room:token'] });
        check(r.s === true, `conn.call subscribe ${name}: ${JSON.stringify(r)}`);
      }
      ids[name] = open.c;
      log(`${name}: open event listener ${open.d.listener}, x ${JSON.stringify(open.x)}, query ${open.d.query.length > 60 ? `${open.d.query.slice(0, 60)}...` : open.d.query}`);
    }
    check(new Set(Object.values(ids)).size === tokenSockets.length, `client ids not distinct: ${JSON.stringify(ids)}`);

    const msg = `to room:token ${run}`;
    const pub2 = await apiOk(node.apiPort, 'mesh.publish', { c: 'room:token', d: msg });
    check(pub2.s === tokenSockets.length && pub2.f === 0,
      `mesh.publish room:token: expected {s:${tokenSockets.length},f:0}, got ${JSON.stringify(pub2)}`);
    for (const name of tokenSockets) {
      await pageWait(page, `${name} received the room:token publish`,
        ([n, m]) => window.mg.sockets[n].received.includes(m), [name, msg]);
    }
    const plainNow = await pageSocket(page, 'plain');
    check(!plainNow.received.includes(msg), 'the anonymous socket received a publish to a channel it is not in');

    for (const name of tokenSockets) {
      const text = `{"from":"${name}","run":"${run}"}`;
      await page.evaluate(([n, t]) => window.mgSend(n, t), [name, text]);
      const ev = await backend.waitEvent(`message from ${name}`, (e) =>
        e.c === ids[name] && e.d && e.d.frame && e.d.frame.data === text);
      check(ev.d.frame.type === 'text', `${name} frame event: ${JSON.stringify(ev)}`);
      if (features.token) check(ev.x && ev.x.user === 'browser', `${name} frame event: expected x.user "browser", got ${JSON.stringify(ev)}`);
    }

    // The refusal is HTTP 401 before the upgrade (the browser cannot see the status; our client can),
    // over TLS too.
    const refusedUrls = [];
    if (features.token) refusedUrls.push(`ws://127.0.0.1:${node.port('wstok')}/node?tag=node-notoken-${run}`);
    if (features.token && features.tls) refusedUrls.push(`wss://127.0.0.1:${node.port('wss')}/node?tag=node-notoken-${run}`);
    for (const url of refusedUrls) {
      let status = 'connected';
      try { (await MiniWs.connect(url)).close(); } catch (e) { status = e.status ?? String(e.message); }
      check(status === 401, `${url} without a token: expected HTTP 401, got ${status}`);
    }
    if (features.tls && !features.token) {
      // TLS alone: our client over TLS as well (it is the page's socket that carries the scenario).
      const c = await MiniWs.connect(`wss://127.0.0.1:${node.port('wss')}/node?tag=node-tls-${run}`);
      await backend.waitEvent('open of the Node wss client', (e) => e.d && e.d.event === 'open' && e.d.query === `tag=node-tls-${run}`);
      c.close();
    }

    // A refused connection never produced a queue event.
    const leaked = backend.events.filter((e) => e.d && typeof e.d.query === 'string' &&
      [...refused, 'node-notoken'].some((n) => e.d.query.startsWith(`tag=${n}-${run}`)));
    check(leaked.length === 0, `refused connections produced queue events: ${JSON.stringify(leaked)}`);
    if (features.token) parts.push('token');
    if (features.tls) parts.push('wss');
    log(`${features.token ? 'token' : ''}${features.token && features.tls ? ' + ' : ''}${features.tls ? 'wss://' : ''} part passed: ` +
      `${tokenSockets.join(', ')} open` + (features.token ? ' with ctx from the token, missing/forged/expired tokens refused' : '') +
      `, publish to room:token s=${tokenSockets.length}, page messages to the consumer`);
  }

  // Close from the page: the consumer sees close events (1000) for the open sockets.
  await page.evaluate(() => window.mgCloseAll());
  const closePlain = await backend.waitEvent('close of the plain socket', (e) => e.c === plainId && e.d && e.d.event === 'close');
  check(closePlain.d.code === 1000, `close event: expected code 1000, got ${JSON.stringify(closePlain)}`);
  await pageWait(page, 'all sockets closed', () => Object.values(window.mg.sockets).every((s) => s.state === 'closed'));

  await page.screenshot({ path: SCREENSHOT, timeout: T });
  log(`screenshot: ${SCREENSHOT}`);
}

async function main() {
  const started = Date.now();
  check(fs.existsSync(MESHGATE_BIN), `meshgate binary not found: ${MESHGATE_BIN} (set MESHGATE_BIN)`);
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} not found (apt-get install chromium)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-browser-'));
  const ctx = { work, features: {} };

  const tok = supports(work, 'token', { token_secret: 'probe' });
  const tl = supports(work, 'tls', { tls: 'on', cert: '', key: '' });
  ctx.features = { token: tok.ok, tls: tl.ok };
  if (process.env.MESHGATE_BROWSER_PLAIN_ONLY === '1') {   // for debugging: the ws:// part alone
    if (tok.ok) skipped.push('token (MESHGATE_BROWSER_PLAIN_ONLY=1)');
    if (tl.ok) skipped.push('wss (MESHGATE_BROWSER_PLAIN_ONLY=1)');
    ctx.features = { token: false, tls: false };
  }
  if (!tok.ok) skipped.push(`token (binary refuses token_secret: ${tok.why})`);
  if (!tl.ok) skipped.push(`wss (binary refuses tls = on: ${tl.why})`);

  // If we are killed (meson's timeout sends SIGTERM) or exit early, the node must not outlive us;
  // playwright-core kills its browser on exit by itself.
  process.on('exit', () => { if (ctx.node?.proc && !ctx.node.exit) ctx.node.proc.kill('SIGKILL'); });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => { console.log(`[browser-test] FAIL: ${sig}`); process.exit(1); });
  }
  const watchdog = setTimeout(() => {
    console.log(`[browser-test] FAIL: whole test exceeded ${TOTAL_TIMEOUT} ms`);
    if (ctx.node?.proc && !ctx.node.exit) ctx.node.proc.kill('SIGKILL');
    process.exit(1);
  }, TOTAL_TIMEOUT);

  let error = null;
  try {
    await scenario(ctx);
    const crash = ctx.node.crashed();
    if (crash) fail(crash);
  } catch (e) {
    error = e;
  }

  // Stop everything, each step bounded, whatever happened above.
  const stopErrors = [];
  if (ctx.browser) await within(15_000, 'browser close', ctx.browser.close()).catch((e) => stopErrors.push(String(e.message)));
  if (ctx.server) {
    ctx.server.closeAllConnections();
    await within(5000, 'page server close', new Promise((r) => ctx.server.close(r))).catch((e) => stopErrors.push(String(e.message)));
  }
  if (ctx.backend) ctx.backend.close();
  if (ctx.node) {
    const msg = await ctx.node.stop();
    if (msg) stopErrors.push(msg);
  }
  clearTimeout(watchdog);

  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (error || stopErrors.length) {
    if (error) console.log(`[browser-test] ${error.stack || error}`);
    for (const m of stopErrors) console.log(`[browser-test] on stop: ${m}`);
    if (ctx.node) console.log(ctx.node.describe());
    console.log(`[browser-test] work directory kept: ${work}`);
    console.log(`browser test: FAIL after ${secs} s (passed: ${parts.join(', ') || 'none'}` +
      `${skipped.length ? `; not run: ${skipped.join('; ')}` : ''})`);
    return 1;
  }
  if (process.env.MESHGATE_BROWSER_KEEP === '1') log(`work directory kept: ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
  console.log(`browser test: PASS in ${secs} s (ran: ${parts.join(', ')}` +
    `${skipped.length ? `; not run: ${skipped.join('; ')}` : '; all parts ran'})`);
  return 0;
}

process.exitCode = await main().catch((e) => { console.log(e); return 1; });
process.exit(process.exitCode);
