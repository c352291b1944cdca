// Shared by the browser tests (browser_test.mjs, dashboard_test.mjs): bounded waits, a minimal
// WebSocket client, HTTP calls to the control API, and a meshgate node on loopback.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const MESHGATE_BIN = process.env.MESHGATE_BIN || path.join(REPO, 'build', 'meshgate');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export const T = 10_000;               // one wait, ms
export const START_TIMEOUT = 10_000;   // node start: until GET /healthz answers 200
export const STOP_TIMEOUT = 10_000;    // node stop: SIGTERM, then SIGKILL
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--ignore-certificate-errors'];

export function log(...a) { console.log('[browser-test]', ...a); }

export function fail(msg) { throw new Error(msg); }

export function check(cond, msg) { if (!cond) fail(msg); }

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// ------------------------------------------------------------------------------------------------
// A minimal RFC 6455 client (Node 20 has none built in): text messages only, frames masked as a
// client must, fragmented messages reassembled, pings answered, server frames must be unmasked.
// Used for the backend's /ws/v1 connection; works over TLS too (wss://, certificate not checked).
// ------------------------------------------------------------------------------------------------

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export class MiniWs {
  static connect(url, timeout = T) {
    const u = new URL(url);
    const secure = u.protocol === 'wss:';
    const port = Number(u.port || (secure ? 443 : 80));
    const key = crypto.randomBytes(16).toString('base64');
    return within(timeout, `WebSocket connect to ${url}`, new Promise((resolve, reject) => {
      const sock = secure
        ? tls.connect({ host: u.hostname, port, rejectUnauthorized: false })
        : net.connect({ host: u.hostname, port });
      let head = Buffer.alloc(0);
      const onError = (e) => reject(e);
      const onClose = () => reject(new Error(`connection closed during the upgrade: ${head.toString('latin1')}`));
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData); sock.off('error', onError); sock.off('close', onClose);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
        const hdr = Object.fromEntries(lines.slice(1).map((l) => {
          const i = l.indexOf(':'); return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
        }));
        if (!/^HTTP\/1\.1 101 /.test(lines[0])) {
          sock.destroy();
          return reject(Object.assign(new Error(`upgrade refused: ${lines[0]}`), { status: Number(lines[0].split(' ')[1]) }));
        }
        if (hdr['sec-websocket-accept'] !== accept) { sock.destroy(); return reject(new Error('bad Sec-WebSocket-Accept')); }
        resolve(new MiniWs(sock, head.subarray(end + 4)));
      };
      sock.on('data', onData); sock.once('error', onError); sock.once('close', onClose);
      sock.once(secure ? 'secureConnect' : 'connect', () => {
        sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
    }));
  }

  constructor(sock, leftover) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.fragments = null;      // text of a fragmented message being reassembled
    this.closed = false;
    this.error = null;
    this.onmessage = () => {};
    sock.on('data', (chunk) => this.#feed(chunk));
    sock.on('error', (e) => { this.error = e; });
    sock.on('close', () => { this.closed = true; });
    if (leftover.length) this.#feed(leftover);
  }

  #frame(opcode, payload) {
    const n = payload.length;
    const hdr = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n])
      : n < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255])
        : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
    const mask = crypto.randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < n; i++) body[i] ^= mask[i & 3];
    return Buffer.concat([hdr, mask, body]);
  }

  send(text) {
    if (this.closed) fail('send on a closed WebSocket');
    this.sock.write(this.#frame(0x1, Buffer.from(text, 'utf8')));
  }

  close() {
    if (!this.closed) {
      try { this.sock.write(this.#frame(0x8, Buffer.from([0x03, 0xe8]))); } catch { /* gone */ }
    }
    this.sock.end();
    setTimeout(() => this.sock.destroy(), 500).unref();
  }

  #feed(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0], b1 = this.buf[1];
      let n = b1 & 0x7f, off = 2;
      if (n === 126) { if (this.buf.length < 4) return; n = this.buf.readUInt16BE(2); off = 4; }
      else if (n === 127) { if (this.buf.length < 10) return; n = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (b1 & 0x80) { this.error = new Error('server frame is masked'); this.sock.destroy(); return; }
      if (this.buf.length < off + n) return;
      const payload = this.buf.subarray(off, off + n);
      this.buf = this.buf.subarray(off + n);
      const fin = (b0 & 0x80) !== 0, op = b0 & 0x0f;
      if (op === 0x9) { this.sock.write(this.#frame(0xa, payload)); continue; }   // ping -> pong
      if (op === 0xa) continue;                                                   // pong
      if (op === 0x8) { this.close(); continue; }                                 // close -> close
      if (op === 0x1) this.fragments = [];
      if (op === 0x2) { this.fragments = null; continue; }                       // binary: not used here
      if (this.fragments === null) continue;
      this.fragments.push(Buffer.from(payload));
      if (fin) { const text = Buffer.concat(this.fragments).toString('utf8'); this.fragments = null; this.onmessage(text); }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// HTTP: the control API, and the page's server
// ------------------------------------------------------------------------------------------------

export function httpRequest(port, method, pathName, body) {
  return within(T, `${method} ${pathName}`, new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, method, path: pathName, agent: false,
      // Every POST as JSON: the control API takes no other type (issue 18).
      headers: { ...(method === 'POST' ? { 'Content-Type': 'application/json' } : {}),
        ...(data ? { 'Content-Length': data.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(T, () => req.destroy(new Error(`${method} ${pathName}: no answer`)));
    req.end(data);
  }));
}

export async function apiOk(port, method, params) {
  const [group, name] = method.split('.');
  const r = await httpRequest(port, 'POST', `/v1/${group}/${name}`, params);
  let j = null;
  try { j = JSON.parse(r.body); } catch { /* reported below */ }
  check(r.status === 200 && j && j.E === null && j.r !== undefined,
    `${method} ${JSON.stringify(params)}: expected HTTP 200 with E null, got ${r.status} ${r.body}`);
  return j.r;
}

// ------------------------------------------------------------------------------------------------
// The node
// ------------------------------------------------------------------------------------------------

export function renderConfig(sections) {
  const lines = ['; written by a browser test (test/browser/)'];
  for (const [name, kv] of Object.entries(sections)) {
    lines.push(`[${name}]`);
    for (const [k, v] of Object.entries(kv)) lines.push(`${k} = ${v}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Does the binary accept these listener keys? (`--check-config` on a throw-away file.) */
export function supports(dir, name, listenerKeys) {
  const file = path.join(dir, `probe-${name}.conf`);
  fs.writeFileSync(file, renderConfig({
    'listener.probe': { type: 'ws', bind: '127.0.0.1', port: 1, ...listenerKeys },
  }));
  const r = spawnSync(MESHGATE_BIN, ['--check-config', '-c', file], { timeout: T, encoding: 'utf8' });
  return { ok: r.status === 0, why: `${(r.stderr || '').trim()}${(r.stdout || '').trim()}`.slice(0, 300) };
}

export class Node {
  constructor(dir, config) {
    this.dir = dir;
    this.config = config;
    this.confPath = path.join(dir, 'meshgate.conf');
    this.logPath = path.join(dir, 'meshgate.stderr.log');
    fs.writeFileSync(this.confPath, renderConfig(config));
    this.proc = null;
    this.exit = null;          // {code, signal} once exited
    this.stopping = false;
  }

  get apiPort() { return Number(this.config.api.port); }
  port(listener) { return Number(this.config[`listener.${listener}`].port); }

  async start() {
    const fd = fs.openSync(this.logPath, 'w');
    this.proc = spawn(MESHGATE_BIN, ['-c', this.confPath], { cwd: this.dir, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => { this.exit = { code, signal }; resolve(); }));
    const deadline = Date.now() + START_TIMEOUT;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exit) fail(`meshgate exited during start-up (${JSON.stringify(this.exit)})\n${this.describe()}`);
      try {
        const r = await httpRequest(this.apiPort, 'GET', '/healthz');
        if (r.status === 200) return;
        last = `GET /healthz -> ${r.status} ${r.body.slice(0, 200)}`;
      } catch (e) { last = String(e.message || e); }
      await sleep(50);
    }
    fail(`meshgate did not answer GET /healthz 200 within ${START_TIMEOUT} ms (last: ${last})\n${this.describe()}`);
  }

  stderrTail(lines = 60) {
    try { return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return '(no stderr file)'; }
  }

  describe() {
    return `config ${this.confPath}:\n${fs.readFileSync(this.confPath, 'utf8')}\n--- meshgate stderr (last lines) ---\n${this.stderrTail()}`;
  }

  /** The process died on its own (null while it runs or after stop()). */
  crashed() {
    if (!this.proc || this.stopping || !this.exit) return null;
    return `meshgate exited unexpectedly: ${JSON.stringify(this.exit)}`;
  }

  /** SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns an error message, or null for a clean exit. */
  async stop() {
    if (!this.proc) return null;
    const crash = this.crashed();
    this.stopping = true;
    if (crash) return crash;
    if (!this.exit) this.proc.kill('SIGTERM');
    try {
      await within(STOP_TIMEOUT, 'meshgate exit after SIGTERM', this.exited);
    } catch {
      this.proc.kill('SIGKILL');
      await within(5000, 'meshgate exit after SIGKILL', this.exited).catch(() => {});
      return `meshgate did not exit within ${STOP_TIMEOUT} ms of SIGTERM (killed)`;
    }
    const { code, signal } = this.exit;
    if (code === 0 || signal === 'SIGTERM' || code === 128 + 15) return null;
    return `meshgate exited with ${JSON.stringify(this.exit)} after SIGTERM`;
  }
}
