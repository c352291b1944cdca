// The operator's dashboard (issue 12) in Debian's headless Chromium, against the real binary:
//   token    a node with [api] token: /dashboard asks for the token (and shows no data before it),
//            a wrong token is refused, the right one shows the data; the connection count follows a
//            client that connects; a publish typed into the page's form reaches a subscribed client;
//            looking the client up shows its channel, and "Close it" closes it (count back to 0);
//   cluster  two nodes meshed, no token: the page opens straight away and lists both nodes alive;
//            a client on the other node shows in the count; node 1 keeps its queue on disk and the
//            queue table shows the bytes its topic's log holds. A screenshot is taken here
//            (MESHGATE_DASHBOARD_SCREENSHOT, default $TMPDIR/meshgate-dashboard.png).
// Exit code 0 when both parts passed. Every wait is bounded; browser and nodes are stopped on failure.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, MESHGATE_BIN, MiniWs, Node, T, check, fail, freePort, log, sleep, within } from './lib.mjs';

const SCREENSHOT = process.env.MESHGATE_DASHBOARD_SCREENSHOT || path.join(os.tmpdir(), 'meshgate-dashboard.png');
const TOTAL_TIMEOUT = 120_000;
const API_TOKEN = 'dashboard-test-token';

/** A node config: API, route off, one ws listener; `extra` sections merged in. */
async function config(id, extra = {}) {
  return {
    node: { id, name: `dash-${id}`, workers: 2, advertise: '127.0.0.1', drain_timeout: 2 },
    log: { level: 'info' },
    api: { bind: '127.0.0.1', port: await freePort() },
    route: { port: 0 },
    'listener.ws': { type: 'ws', bind: '127.0.0.1', port: await freePort(), topic: 'client' },
    ...extra,
  };
}

/** A /ws/v1 connection making calls by envelope and keeping queue events. */
async function apiWs(node, token) {
  const ws = await MiniWs.connect(`ws://127.0.0.1:${node.apiPort}/ws/v1${token ? `?token=${token}` : ''}`);
  const pending = new Map();
  const events = [];
  let next = 1;
  ws.onmessage = (text) => {
    const m = JSON.parse(text);
    if (m.e === 'queue.pop') events.push(m.p);
    else if (pending.has(m.i)) { pending.get(m.i)(m); pending.delete(m.i); }
  };
  return {
    ws,
    events,
    call(method, params) {
      const i = next++;
      ws.send(JSON.stringify({ m: method, p: params, i }));
      return within(T, method, new Promise((resolve) => pending.set(i, resolve))).then((m) => {
        check(m.E === null, `${method}: ${JSON.stringify(m.E)}`);
        return m.r;
      });
    },
    async waitEvent(what, pred) {
      const deadline = Date.now() + T;
      while (Date.now() < deadline) {
        const e = events.find(pred);
        if (e) return e;
        await sleep(20);
      }
      fail(`no queue event: ${what}`);
    },
  };
}

/** A plain client on a node's ws listener, keeping what it receives. */
async function client(node) {
  const ws = await MiniWs.connect(`ws://127.0.0.1:${node.port('ws')}/dash`);
  ws.received = [];
  ws.onmessage = (t) => ws.received.push(t);
  return ws;
}

async function waitUntil(what, fn) {
  const deadline = Date.now() + T;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  fail(`${what} did not happen within ${T} ms`);
}

async function text(page, selector) { return (await page.textContent(selector))?.trim(); }

async function waitText(page, selector, want) {
  try {
    await page.waitForFunction(([s, w]) => document.querySelector(s)?.textContent.trim() === w, [selector, want],
      { timeout: T, polling: 50 });
  } catch {
    fail(`page: ${selector} did not become ${JSON.stringify(want)} (it shows ${JSON.stringify(await text(page, selector))})`);
  }
}

async function tokenPart(ctx, page) {
  const cfg = await config(1);
  cfg.api.token = API_TOKEN;
  const node = new Node(fs.mkdtempSync(path.join(ctx.work, 'token-')), cfg);
  ctx.nodes.push(node);
  await node.start();

  await page.goto(`http://127.0.0.1:${node.apiPort}/dashboard`, { timeout: T });
  await page.waitForSelector('#token-form:not([hidden])', { timeout: T });
  check(await page.isHidden('#main'), 'the data shows before the token is given');
  await page.fill('#token-input', 'wrong');
  await page.click('#token-form button');
  await waitText(page, '#token-error', 'that token was refused');
  await page.fill('#token-input', API_TOKEN);
  await page.click('#token-form button');
  await page.waitForSelector('#main:not([hidden])', { timeout: T });
  await waitText(page, '#conn-total', '0');

  const api = await apiWs(node, API_TOKEN);
  await api.call('queue.pop', { t: ['client'] });
  const c = await client(node);
  await waitText(page, '#conn-total', '1');
  const open = await api.waitEvent('open of the client', (e) => e.d.event === 'open' && e.d.path === '/dash');
  await api.call('conn.call', { c: open.c, f: 'subscribe', a: ['room:dash'] });
  await page.waitForFunction(() => [...document.querySelectorAll('#channels td')].some((td) => td.textContent === 'room:dash'),
    null, { timeout: T });

  await page.fill('#pub-channel', 'room:dash');
  await page.fill('#pub-data', 'typed into the dashboard');
  await page.click('#publish-form button');
  await waitUntil('the publish from the page reaches the client', () => c.received.includes('typed into the dashboard'));
  await waitText(page, '#pub-result', 'delivered to 1, failed 0');

  await page.fill('#lookup-client', open.c);
  await page.click('#lookup-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#lookup-result').textContent.includes('room:dash'), null, { timeout: T });
  await page.click('#close-client');
  await waitUntil('the client is closed by the page', () => c.closed);
  await waitText(page, '#conn-total', '0');
  api.ws.close();
  log('token part passed: token asked and checked, live count, publish form, lookup and close');
}

/** 20 s of varied traffic over both nodes: channels, a consumer, client messages, publishes. */
async function demoTraffic(a, b, api, clients) {
  await api.call('queue.pop', { t: ['client'], ack: true });
  for (let i = 0; i < 24; i++) clients.push(await client(i % 3 ? b : a));
  await sleep(500);
  const opens = api.events.filter((e) => e.d.event === 'open');
  const rooms = ['room:lobby', 'room:lobby', 'room:lobby', 'room:7', 'room:7', 'room:9', 'alerts'];
  for (const [i, e] of opens.entries()) {
    await api.call('conn.call', { c: e.c, f: 'subscribe', a: [rooms[i % rooms.length], 'all'] }).catch(() => {});
  }
  for (let s = 0; s < 20; s++) {
    const n = 10 + Math.round(8 * Math.sin(s / 3) + 8);
    for (let i = 0; i < n; i++) {
      await api.call('mesh.publish', { c: rooms[i % rooms.length], d: `news ${s}.${i}` });
      clients[i % clients.length].send(`hello ${s}.${i}`);
    }
    await sleep(1000);
  }
}

async function clusterPart(ctx, page) {
  const meshPorts = [await freePort(), await freePort()];
  const mesh = (i) => ({ bind: '127.0.0.1', port: meshPorts[i], cluster: 'dash', secret: 'dash-mesh-secret',
    seeds: i ? `127.0.0.1:${meshPorts[0]}` : '', dead_after: 3 });
  // Node 1 keeps its client events on disk: the page shows what its topic's log holds.
  const aDir = fs.mkdtempSync(path.join(ctx.work, 'a-'));
  const aCfg = await config(1, { mesh: mesh(0), queue: { store: 'disk' } });
  aCfg.node.state_dir = aDir;
  const a = new Node(aDir, aCfg);
  const b = new Node(fs.mkdtempSync(path.join(ctx.work, 'b-')), await config(2, { mesh: mesh(1) }));
  ctx.nodes.push(a, b);
  await a.start();
  await b.start();

  await page.goto(`http://127.0.0.1:${a.apiPort}/dashboard`, { timeout: T });
  await page.waitForSelector('#main:not([hidden])', { timeout: T });
  check(await page.isHidden('#token-form'), 'a node without a token asks for one');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#nodes tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent));
    return rows.length === 2 && rows.every((r) => r[2] === 'alive') && rows.some((r) => r[0] === '2' && r[4] === '0');
  }, null, { timeout: T }).catch(async () => fail(`#nodes does not show both nodes alive: ${await text(page, '#nodes tbody')}`));

  const clients = [await client(b), await client(b), await client(a)];
  await waitText(page, '#conn-total', '3');
  await waitText(page, '#nodes-alive', '2 / 2');
  // Nobody pops: node 1's client's open event waits in its topic's log, and the "on disk" column says so.
  await page.waitForFunction(() => [...document.querySelectorAll('#topics tbody tr')].some((tr) =>
    tr.cells[0].textContent === 'client' && /^[0-9.]+ (B|kB)$/.test(tr.cells[5].textContent)), null, { timeout: T })
    .catch(async () => fail(`#topics shows nothing on disk for "client": ${await text(page, '#topics tbody')}`));
  // Some traffic for the plots, then the picture (MESHGATE_DASHBOARD_DEMO=1: a longer, richer run,
  // as for the README's docs/dashboard.png).
  const api = await apiWs(a);
  if (process.env.MESHGATE_DASHBOARD_DEMO === '1') await demoTraffic(a, b, api, clients);
  for (let s = 0; s < 4; s++) {
    for (let i = 0; i < 20; i++) await api.call('mesh.broadcast', { d: `tick ${s}.${i}` });
    await sleep(1000);
  }
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  log(`screenshot: ${SCREENSHOT}`);
  for (const c of clients) c.close();
  api.ws.close();
  log('cluster part passed: both nodes alive on the page, connections of both counted');
}

async function main() {
  const started = Date.now();
  check(fs.existsSync(MESHGATE_BIN), `meshgate binary not found: ${MESHGATE_BIN}`);
  const ctx = { work: fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-dashboard-')), nodes: [] };
  const killAll = () => { for (const n of ctx.nodes) if (n.proc && !n.exit) n.proc.kill('SIGKILL'); };
  process.on('exit', killAll);
  const watchdog = setTimeout(() => { console.log(`[dashboard-test] FAIL: over ${TOTAL_TIMEOUT} ms`); killAll(); process.exit(1); }, TOTAL_TIMEOUT);
  let error = null;
  const passed = [];
  try {
    const { chromium } = await import('playwright-core');
    ctx.browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(ctx.work, 'profile-')), {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000, viewport: { width: 1280, height: 900 },
    });
    const page = ctx.browser.pages()[0] || await ctx.browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error') log(`page console: ${m.text()}`); });
    page.on('pageerror', (e) => { ctx.pageError = ctx.pageError || String(e); });
    await tokenPart(ctx, page);
    passed.push('token');
    await clusterPart(ctx, page);
    passed.push('cluster');
    if (ctx.pageError) fail(`the page threw: ${ctx.pageError}`);
  } catch (e) {
    error = e;
  }
  if (ctx.browser) await within(15_000, 'browser close', ctx.browser.close()).catch(() => {});
  const stopErrors = [];
  for (const n of ctx.nodes) {
    const msg = await n.stop();
    if (msg) stopErrors.push(`${msg}\n${n.describe()}`);
  }
  clearTimeout(watchdog);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (error || stopErrors.length) {
    if (error) console.log(`[dashboard-test] ${error.stack || error}`);
    for (const m of stopErrors) console.log(`[dashboard-test] on stop: ${m}`);
    if (error) for (const n of ctx.nodes) console.log(n.describe());
    console.log(`dashboard test: FAIL after ${secs} s (passed: ${passed.join(', ') || 'none'}; work directory ${ctx.work})`);
    return 1;
  }
  fs.rmSync(ctx.work, { recursive: true, force: true });
  console.log(`dashboard test: PASS in ${secs} s (${passed.join(', ')})`);
  return 0;
}

process.exit(await main().catch((e) => { console.log(e); return 1; }));
