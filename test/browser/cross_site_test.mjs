// Cross-site use of the control API (issue 18) in Debian's headless Chromium, against the real
// binary with no [api] token (the shipped default):
//   attack     a page on another origin (a second loopback port, served by a tiny server started
//              here) tries what needs no CORS preflight: a text/plain POST and a typeless Blob POST
//              of mesh.broadcast, a JSON POST (preflighted), and a /ws/v1 WebSocket that would read
//              client messages through queue.pop. Nothing reaches the client connected meanwhile,
//              the WebSocket never opens, and the node counts the refusals.
//   rebinding  the browser resolves a foreign name to 127.0.0.1 (--host-resolver-rules, as a DNS
//              rebinding attack would): the API's own port under that name answers 421.
//   dashboard  the dashboard on the API's own origin still works: it reads the live count and its
//              publish form's POST is answered.
// Exit code 0 when all passed. Every wait is bounded; browser, server and node are stopped on failure.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, MESHGATE_BIN, MiniWs, Node, T, check, freePort, httpRequest, log, sleep } from './lib.mjs';

const TOTAL_TIMEOUT = 90_000;
const REBOUND = 'rebound.example.test';

// The attacker's page: runs each attempt and reports how it ended in window.results.
function attackPage(apiPort) {
  const api = `http://127.0.0.1:${apiPort}`;
  return `<!doctype html><meta charset="utf-8"><title>another site</title><script>
  window.results = {};
  const body = JSON.stringify({ d: 'sent by another site' });
  const tries = {
    textPlain: () => fetch('${api}/v1/mesh/broadcast', { method: 'POST', mode: 'no-cors',
      headers: { 'Content-Type': 'text/plain' }, body }),
    typelessBlob: () => fetch('${api}/v1/mesh/broadcast', { method: 'POST', mode: 'no-cors', body: new Blob([body]) }),
    json: () => fetch('${api}/v1/mesh/broadcast', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }),
  };
  for (const [k, f] of Object.entries(tries))
    f().then((r) => { results[k] = 'answered ' + r.type + ' ' + r.status; }, (e) => { results[k] = 'failed: ' + e.message; });
  const ws = new WebSocket('ws://127.0.0.1:${apiPort}/ws/v1');
  ws.onopen = () => { results.ws = 'open'; ws.send(JSON.stringify({ m: 'queue.pop', p: { t: ['client'] }, i: 1 })); };
  ws.onmessage = (m) => { results.wsMessage = String(m.data); };
  ws.onclose = (e) => { results.ws = (results.ws || '') + ' closed ' + e.code; };
  </script>`;
}

async function refused(node, reason) {
  const r = await httpRequest(node.apiPort, 'GET', '/metrics');
  const m = r.body.match(new RegExp(`^meshgate_http_refused_total\\{listener="api",reason="${reason}"\\} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

async function main() {
  check(fs.existsSync(MESHGATE_BIN), `meshgate binary not found: ${MESHGATE_BIN}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-cross-site-'));
  const node = new Node(fs.mkdtempSync(path.join(work, 'node-')), {
    node: { id: 1, name: 'cross-site', workers: 1, advertise: '127.0.0.1', drain_timeout: 2 },
    log: { level: 'info' },
    api: { bind: '127.0.0.1', port: await freePort() },
    route: { port: 0 },
    'listener.ws': { type: 'ws', bind: '127.0.0.1', port: await freePort(), topic: 'client' },
  });
  const pagePort = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(attackPage(node.apiPort));
  });
  let browser = null;
  const stopAll = () => { if (node.proc && !node.exit) node.proc.kill('SIGKILL'); };
  process.on('exit', stopAll);
  const watchdog = setTimeout(() => { console.log(`[cross-site-test] FAIL: over ${TOTAL_TIMEOUT} ms`); stopAll(); process.exit(1); }, TOTAL_TIMEOUT);
  let error = null;
  try {
    await node.start();
    await new Promise((resolve) => server.listen(pagePort, '127.0.0.1', resolve));
    const client = await MiniWs.connect(`ws://127.0.0.1:${node.port('ws')}/victim`);
    const received = [];
    client.onmessage = (t) => received.push(t);

    const { chromium } = await import('playwright-core');
    browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(work, 'profile-')), {
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`],
    });
    const page = browser.pages()[0] || await browser.newPage();

    // attack
    await page.goto(`http://127.0.0.1:${pagePort}/`, { timeout: T });
    await page.waitForFunction(() => ['textPlain', 'typelessBlob', 'json', 'ws'].every((k) => k in window.results),
      null, { timeout: T });
    await sleep(500);  // an open WebSocket's answer, a broadcast on its way to the client
    const results = await page.evaluate(() => window.results);
    log(`the other site's attempts: ${JSON.stringify(results)}`);
    check(!results.ws.includes('open'), `the /ws/v1 WebSocket opened from another origin: ${JSON.stringify(results)}`);
    check(!('wsMessage' in results), `the other site read from /ws/v1: ${results.wsMessage}`);
    check(results.json.startsWith('failed'), `the preflighted JSON POST was answered: ${results.json}`);
    check(received.length === 0, `the client received what another site sent: ${JSON.stringify(received)}`);
    const origin = await refused(node, 'origin');
    check(origin >= 4, `meshgate_http_refused_total{reason="origin"} is ${origin}, expected >= 4 (2 POSTs, a preflight, the upgrade)`);
    log(`attack part passed: no broadcast, no WebSocket, ${origin} refusals counted`);

    // rebinding
    const rebound = await page.goto(`http://${REBOUND}:${node.apiPort}/dashboard`, { timeout: T });
    check(rebound.status() === 421, `http://${REBOUND}:${node.apiPort}/dashboard answered ${rebound.status()}, expected 421`);
    check(await refused(node, 'host') >= 1, 'the rebound Host was not counted');
    log('rebinding part passed: 421 under a foreign name');

    // dashboard
    await page.goto(`http://127.0.0.1:${node.apiPort}/dashboard`, { timeout: T });
    await page.waitForSelector('#main:not([hidden])', { timeout: T });
    await page.waitForFunction(() => document.querySelector('#conn-total')?.textContent.trim() === '1', null, { timeout: T });
    await page.fill('#pub-channel', 'room:nobody');
    await page.fill('#pub-data', 'from the dashboard');
    await page.click('#publish-form button');
    await page.waitForFunction(() => document.querySelector('#pub-result')?.textContent.trim() === 'delivered to 0, failed 0',
      null, { timeout: T });
    log('dashboard part passed: the live count and the publish form work on its own origin');
    client.close();
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(watchdog);
    if (browser) await browser.close().catch(() => {});
    server.close();
    await node.stop().catch(() => {});
  }
  if (error) {
    console.log(`[cross-site-test] FAIL: ${error.message}`);
    console.log(node.stderrTail());
    process.exit(1);
  }
  console.log('[cross-site-test] PASS');
  process.exit(0);
}

main();
