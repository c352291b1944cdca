// meshgate dashboard: reads the control API once a second and draws what it reads. Everything it
// shows comes from documented methods (docs/api.md): node.list, node.stats and channel.top for every
// alive node, and the actions call mesh.publish, mesh.send, conn.info and conn.call. No framework,
// no build step: this file is compiled into the binary as it is (src/dashboard/embed.py).
'use strict';

const REFRESH_MS = 1000;
const HISTORY = 60;          // points per plot: one a refresh
const TOKEN_KEY = 'meshgate-api-token';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let timer = null;
const previous = new Map();  // node id -> {t, in, out, pub, del}: the last counters, for rates
const series = { in: [], out: [], pub: [], del: [] };  // the plots' recent rates

// The token may be handed over in the fragment (#token=...), which never reaches the server's logs.
if (location.hash.startsWith('#token=')) {
  token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem(TOKEN_KEY, token);
  window.history.replaceState(null, '', location.pathname);
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** Calls an API method over HTTP (docs/api.md); resolves to its result "r", rejects with ApiError. */
async function api(method, params = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const [group, name] = method.split('.');
  const init = method === 'node.list' ? { headers }
    : { method: 'POST', headers, body: JSON.stringify(params) };
  const res = await fetch(method === 'node.list' ? '/v1/nodes' : `/v1/${group}/${name}`, init);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON: reported below */ }
  if (!body || typeof body !== 'object' || !('E' in body)) throw new ApiError(res.status, 0, `HTTP ${res.status}`);
  if (body.E) throw new ApiError(res.status, body.E.c, `${body.E.c}: ${body.E.m}`);
  return body.r;
}

function setStatus(text, bad) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('bad', !!bad);
}

/** Replaces the rows of table `id` with `rows` (arrays of cells; a cell may be {text, cls}). */
function fillTable(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c && typeof c === 'object') { td.textContent = c.text; if (c.cls) td.className = c.cls; }
      else td.textContent = String(c);
      tr.append(td);
    }
    return tr;
  }));
}

function plot(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values);
  const step = 300 / (HISTORY - 1);
  const offset = HISTORY - values.length;
  const points = values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(58 - (v / max) * 56).toFixed(1)}`);
  let line = svg.querySelector('polyline');
  if (!line) { line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline'); svg.append(line); }
  line.setAttribute('points', points.join(' '));
}

function push(list, v) {
  list.push(v);
  if (list.length > HISTORY) list.shift();
}

const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
/** A byte count as people read it: "0", "812 B", "4.2 MB" (powers of 1000, as df -H). */
function bytesText(n) {
  if (!n) return '0';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${u ? n.toFixed(1) : n} ${units[u]}`;
}
const fmtRate = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** Adds the per-second rates of every node's counters since its previous sample. */
function rates(statsByNode, now) {
  const r = { in: 0, out: 0, pub: 0, del: 0 };
  for (const [id, s] of statsByNode) {
    const cur = { t: now, in: sum(s.listeners, (l) => l.messages_in), out: sum(s.listeners, (l) => l.messages_out),
      pub: s.publishes, del: s.deliveries.ok + s.deliveries.failed };
    const prev = previous.get(id);
    previous.set(id, cur);
    if (!prev || now <= prev.t) continue;
    const dt = (now - prev.t) / 1000;
    for (const k of Object.keys(r)) r[k] += Math.max(0, cur[k] - prev[k]) / dt;
  }
  return r;
}

function addUp(into, obj) {
  for (const [k, v] of Object.entries(obj)) into.set(k, (into.get(k) || 0) + v);
}

function render(nodes, statsByNode, channelsByNode) {
  const self = nodes.find((n) => n.self);
  $('node-name').textContent = self ? `node ${self.id} (${self.name})` : '';
  const alive = nodes.filter((n) => n.state === 'alive');
  $('nodes-alive').textContent = `${alive.length} / ${nodes.length}`;
  $('conn-total').textContent = String(sum(alive, (n) => n.connections));
  fillTable('nodes', nodes.map((n) => [n.id, n.name + (n.self ? ' (this node)' : ''), { text: n.state, cls: n.state },
    n.self ? '–' : (n.rtt_ms ?? '–'), n.connections]));

  const stats = [...statsByNode.values()];
  fillTable('listeners', stats.flatMap((s) => s.listeners.map((l) => [s.node, l.name, l.connections, l.accepted])));

  const topics = new Map();
  for (const s of stats) {
    for (const t of s.queue) {
      const a = topics.get(t.topic) || { consumers: 0, pending: 0, unacked: 0, dropped: 0, diskBytes: 0, diskFailed: false };
      a.consumers += t.consumers; a.pending += t.pending; a.unacked += t.unacked; a.dropped += t.dropped;
      a.diskBytes += t.disk_bytes || 0; a.diskFailed = a.diskFailed || t.disk_failed === true;
      topics.set(t.topic, a);
    }
  }
  const topicRows = [...topics].sort((a, b) => a[0].localeCompare(b[0]));
  // "on disk": the bytes of the topic's log segments on every node; "failed" while a log cannot be written.
  const onDisk = (a) => (a.diskFailed ? { text: 'failed', cls: 'dead' } : bytesText(a.diskBytes));
  fillTable('topics', topicRows.map(([name, a]) => [name, a.consumers, a.pending, a.unacked, a.dropped, onDisk(a)]));
  $('consumers-total').textContent = String(sum(topicRows, ([, a]) => a.consumers));
  $('pending-total').textContent = String(sum(topicRows, ([, a]) => a.pending));

  const channels = new Map();
  for (const list of channelsByNode.values()) for (const c of list) channels.set(c.c, (channels.get(c.c) || 0) + c.s);
  fillTable('channels', [...channels].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10));

  const refused = new Map();
  const closes = new Map();
  for (const s of stats) { addUp(refused, s.refused); addUp(closes, s.closes); }
  fillTable('refused', [...refused].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]));
  fillTable('closes', [...closes].sort((a, b) => b[1] - a[1]));

  const r = rates(statsByNode, Date.now());
  for (const [k, plotId, labelId] of [['in', 'plot-in', 'rate-in'], ['out', 'plot-out', 'rate-out'],
    ['pub', 'plot-pub', 'rate-pub'], ['del', 'plot-del', 'rate-del']]) {
    push(series[k], r[k]);
    plot(plotId, series[k]);
    $(labelId).textContent = fmtRate(r[k]);
  }
}

async function refresh() {
  try {
    const { nodes } = await api('node.list');
    const alive = nodes.filter((n) => n.state === 'alive');
    const params = (n) => (n.self ? {} : { node: n.id });
    const [stats, channels] = await Promise.all([
      Promise.allSettled(alive.map((n) => api('node.stats', params(n)))),
      Promise.allSettled(alive.map((n) => api('channel.top', { ...params(n), n: 10 }))),
    ]);
    const statsByNode = new Map();
    const channelsByNode = new Map();
    alive.forEach((n, i) => {
      if (stats[i].status === 'fulfilled') statsByNode.set(n.id, stats[i].value);
      if (channels[i].status === 'fulfilled') channelsByNode.set(n.id, channels[i].value.channels);
    });
    $('token-form').hidden = true;
    $('main').hidden = false;
    render(nodes, statsByNode, channelsByNode);
    const missing = alive.length - statsByNode.size;
    setStatus(`updated ${new Date().toLocaleTimeString()}${missing ? ` (${missing} node(s) did not answer)` : ''}`, missing > 0);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return askToken(token ? 'that token was refused' : '');
    setStatus(`cannot reach the API: ${e.message}`, true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function askToken(error) {
  clearTimeout(timer);
  $('main').hidden = true;
  $('token-form').hidden = false;
  $('token-error').textContent = error;
  setStatus('API token needed', true);
  $('token-input').focus();
}

/** Runs an action form: calls `method` with what `params()` builds and shows the answer in `out`. */
function action(formId, outId, method, params, show = (r) => JSON.stringify(r)) {
  $(formId).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $(outId);
    out.classList.remove('error');
    try {
      out.textContent = show(await api(method, params()));
    } catch (e) {
      out.classList.add('error');
      out.textContent = e.message;
    }
  });
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token-input').value;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-input').value = '';
  refresh();
});

action('publish-form', 'pub-result', 'mesh.publish', () => ({ c: $('pub-channel').value, d: $('pub-data').value }),
  (r) => `delivered to ${r.s}, failed ${r.f}`);
action('send-form', 'send-result', 'mesh.send', () => ({ c: $('send-client').value, d: $('send-data').value }),
  () => 'sent');
action('lookup-form', 'lookup-result', 'conn.info', () => ({ c: $('lookup-client').value }), (r) => {
  $('close-client').disabled = false;
  return JSON.stringify(r, null, 2);
});
$('lookup-client').addEventListener('input', () => { $('close-client').disabled = true; });
$('close-client').addEventListener('click', async () => {
  const out = $('lookup-result');
  try {
    await api('conn.call', { c: $('lookup-client').value, f: 'close', a: [1000, 'closed from the dashboard'] });
    out.textContent = 'closed';
  } catch (e) {
    out.textContent = e.message;
  }
  $('close-client').disabled = true;
});

refresh();
