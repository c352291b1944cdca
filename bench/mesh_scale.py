#!/usr/bin/python3
"""The mesh at 16 to 128 nodes on one machine (issue 22): formation, idle traffic, route agreement,
a publish to a channel held on 2 nodes, SIGKILL of 8 nodes and their rejoin, false deaths.

N nodes on loopback, workers = 1, [mesh] dead_after = 3 (--dead-after), one shared secret, encrypt on
(the default), every node's `seeds` naming node 1 only (--seeds K: nodes 1..K), all launched at once,
as bench/mesh16.py starts them (bench/meshlib.py). Each node's log is in a temporary directory
(--keep-logs copies it to bench/results/). Node lists are read with GET /v1/nodes on every node in
parallel (a thread pool, one keep-alive connection per node).

One run, phase by phase (--phases, or --formation-only for the first two):
 formation  time from the first launch until every node lists all N alive (the answer time of the
            last node in the first poll round where all did; a round starts at most every
            --form-interval s, 0.5 by default, so at most ~2 polls per node per second), within
            --form-timeout s (--late-timeout T: if not, polled on for T s more, formed_late_s);
            also the first moment every node answered, the alive counts over time,
            the mesh frames sent by type (all nodes, /metrics), handshakes refused, and the bytes
            on the mesh sockets still open at the end (`ss`, a lower bound).
 idle       after --settle s, for --idle s with nothing else running, per node: bytes sent on its
            mesh sockets (TCP payload, `ss -tinp` bytes_sent) and TCP segments, /proc/PID/io wchar
            (every write the process makes: the mesh, plus its log), CPU (utime + stime), mesh frames
            sent by type (/metrics), mesh links, RSS and open fds; median and range over the nodes.
 route      POST /route/batch with the same 1,000 uids on every node: identical answers?
 publish    one client on node N-1 and one on node N subscribed to one channel, --publishes
            mesh.publish calls from node 1 (meshlib.publish_to_holders): frames the origin sent
            per publish by type (meshgate_mesh_frames_sent_total, the background subtracted) and,
            from outside, the origin's mesh links that carried the publishes.
 kill       --kill (8) nodes spread over the ids get SIGKILL at once. Per surviving observer, the
            time until its node list shows all of them not alive (state other than alive/suspect,
            or absent): each observer is polled in rounds (one at most every --kill-interval s, 0.25), so the figure is the time
            of the first answer that showed it (an upper bound; the previous answer is kept as the
            lower bound). Then route agreement among the survivors; then the killed nodes are
            restarted on the same ports (--rejoin-delay s later) and timed until every node lists
            all N alive again (rejoin), and route agreement on all N (and the map as before).
 freeze     (not in the default --phases; it runs before kill) the same nodes get SIGSTOP for
            --freeze-short s (1) and SIGCONT: no `is dead` line may name them; then SIGSTOP until
            every other node lists them dead (timed as in kill), SIGCONT, and the time until all list
            N alive again.
 false deaths: `mesh: node N (name) is dead: why` lines, by phase; in the kill phase, lines about
            a node that was not killed; in the freeze phase, any line during the short freeze.

Handles 128 processes on 2 cores: RLIMIT_NOFILE raised, listening ports chosen below the ephemeral
port range (the ~16,000 outbound mesh connections cannot take one before its node binds it), every
node in its own process group, all of them stopped in a `finally` (SIGTERM, then SIGKILL), and on
SIGTERM/SIGINT of this script too. Prints one JSON line per run, then a compact report (median and
range over runs), and writes everything to bench/results/mesh_scale-nN-<time>.json.

Examples (release build: meson setup build-rel --buildtype=release -Db_ndebug=true && ninja -C build-rel):
  bench/mesh_scale.py --server build-rel/meshgate --nodes 128 --runs 3                 # every phase
  for n in 16 64 128; do bench/mesh_scale.py --server build-rel/meshgate --nodes $n --formation-only; done
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import cpu_seconds, proc_kb  # noqa: E402
from meshlib import (DEAD_AFTER, Node, Poller, frames_by_type, idle_window, mesh_socket_bytes,  # noqa: E402
                     parse_metrics, publish_to_holders, raise_fd_limit, route_agreement, safe_port, stop_nodes)

NOT_DEAD = ("alive", "suspect", "suspected")   # states that do not count as "seen dead"


def r3(x):
    return None if x is None else round(x, 3)


def spread(values):
    """{median, min, max} of a list (None when empty)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": r3(statistics.median(values)), "min": r3(min(values)), "max": r3(max(values))}


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Cluster:
    def __init__(self, args, workdir):
        self.n, self.args = args.nodes, args
        self.mesh_ports = {i: safe_port() for i in range(1, self.n + 1)}
        seeds = tuple(range(1, args.seeds + 1))
        self.nodes = {i: Node(workdir, i, self.mesh_ports, server=args.server, seeds=seeds,
                              dead_after=args.dead_after, mesh_extra=args.mesh_set) for i in range(1, self.n + 1)}
        self.everyone = set(self.nodes)
        self.poller = Poller(self.nodes.values(), workers=args.pool)

    def running(self):
        return [n for n in self.nodes.values() if n.proc and n.proc.poll() is None]

    def pids(self):
        return {n.proc.pid: n.id for n in self.running()}

    def marks(self):
        return {i: n.log_size() for i, n in self.nodes.items()}

    def dead_lines(self, marks):
        return [d for i, n in self.nodes.items() for d in n.dead_lines(marks.get(i, 0))]

    def suspect_lines(self, marks):
        """Log lines that mention a suspicion (SWIM: suspected, refuted): counted, not judged."""
        return sum(len(n.log_lines(r"(?i)suspect", marks.get(i, 0))) for i, n in self.nodes.items())

    def metrics(self, ids=None):
        """{id: /metrics text or None}."""
        def page(node):
            body = self.poller.get(node, "/metrics", raw=True)
            return body.decode(errors="replace") if body is not None else None
        return self.poller.map(page, ids)

    def crashed(self):
        return sorted(n.id for n in self.nodes.values() if n.proc and n.proc.poll() is not None)


def alive_of(states):
    return None if states is None else {i for i, s in states.items() if s == "alive"}


def poll_until(cluster, ids, done, t0, timeout, interval):
    """Rounds of GET /v1/nodes over `ids` (one starts at most every `interval` s) until done(answers)
    is true or `timeout` s after t0. Returns (answer time of the last node in the round that made it
    true, relative to t0, or None; the rounds as (start, end, answers))."""
    rounds = []
    while time.monotonic() - t0 < timeout:
        start = time.monotonic()
        ans = cluster.poller.round(ids)
        end = max(t for t, _ in ans.values())
        rounds.append((start - t0, end - t0, ans))
        if done(ans):
            return end - t0, rounds
        time.sleep(max(0.0, interval - (time.monotonic() - start)))
    return None, rounds


def sum_metric(pages, name, label=None):
    out = {}
    for text in pages.values():
        if text is None:
            continue
        for head, v in parse_metrics(text, name).items():
            key = head if label is None else (head.split(f'{label}="', 1)[1].split('"', 1)[0] if f'{label}="' in head else "")
            out[key] = out.get(key, 0) + v
    return out


# ------------------------------------------------------------------------------------------ phases

def phase_formation(c, res):
    a = c.args
    t0 = time.monotonic()
    for n in c.nodes.values():
        n.launch()
    res["launch_s"] = r3(time.monotonic() - t0)
    full = c.everyone
    trace, first_all_answer = [], [None]

    def done(ans):
        answered = [st for _, st in ans.values() if st is not None]
        if first_all_answer[0] is None and len(answered) == c.n:
            first_all_answer[0] = max(t for t, _ in ans.values()) - t0
        counts = [len(alive_of(st)) for st in answered]
        trace.append([r3(time.monotonic() - t0), len(answered), min(counts, default=0),
                      r3(statistics.median(counts)) if counts else 0])
        if c.crashed():
            raise SystemExit(f"nodes {c.crashed()} exited during formation")
        return len(answered) == c.n and all(alive_of(st) == full for st in answered)
    formed, rounds = poll_until(c, None, done, t0, a.form_timeout, a.form_interval)
    res["formed"] = formed is not None
    res["form_s"] = r3(formed)
    # the lower bound: the end of the round before the one that made it
    res["form_s_prev_round"] = r3(rounds[-2][1]) if formed is not None and len(rounds) > 1 else None
    res["all_answered_s"] = r3(first_all_answer[0])
    res["form_poll_rounds"] = len(rounds)
    res["form_poll_round_s"] = spread([e - s for s, e, _ in rounds])
    res["form_trace"] = trace   # [t, nodes answering, min alive listed, median alive listed]
    last = rounds[-1][2] if rounds else {}
    if formed is None:
        counts = [len(alive_of(st)) for _, st in last.values() if st is not None]
        res["not_formed_alive_listed"] = spread(counts)
        res["not_formed_answering"] = len(counts)
        # today's mesh forms in the end: when (the idle phase measures the storm otherwise)
        dead_then = len(c.dead_lines({}))
        late, more = poll_until(c, None, done, t0, a.form_timeout + a.late_timeout, a.form_interval)
        res["formed_late_s"] = r3(late)
        res["formed_late_dead_lines"] = len(c.dead_lines({})) - dead_then
        rounds += more
    pages = c.metrics()
    res["formation_frames_by_type_all_nodes"] = {k: int(v) for k, v in
                                                 sum_metric(pages, "meshgate_mesh_frames_sent_total", "type").items() if v}
    res["formation_conn_refused_all_nodes"] = {k: int(v) for k, v in
                                               sum_metric(pages, "meshgate_mesh_connections_refused_total", "reason").items()}
    res["formation_handshake_refused_all_nodes"] = int(sum(sum_metric(pages, "meshgate_mesh_refused_total").values()))
    snap = mesh_socket_bytes(c.pids(), set(c.mesh_ports.values()))
    res["formation_mesh_bytes_open_links"] = sum(b for p in snap.values() for b, _ in p.values())
    res["formation_cpu_s_all_nodes"] = round(sum(cpu_seconds(p) for p in c.pids()), 2)
    dead = c.dead_lines({})
    res["formation_dead_lines"] = len(dead)
    res["formation_dead_pairs"] = len({d[:2] for d in dead})
    res["formation_dead_examples"] = examples(dead)
    res["formation_dead_why"] = why_counts(dead)
    res["formation_suspect_lines"] = c.suspect_lines({})
    return formed is not None


def phase_idle(c, res):
    a = c.args
    time.sleep(a.settle)
    marks = c.marks()
    pids = c.pids()
    mports = set(c.mesh_ports.values())
    m0, tm0 = c.metrics(), time.monotonic()
    win, dt = idle_window(pids, mports, a.idle)
    m1, tm1 = c.metrics(), time.monotonic()
    dtm = tm1 - tm0
    links, sent, segs = [w["links"] for w in win.values()], [w["bytes"] for w in win.values()], \
        [w["segs"] for w in win.values()]
    res["idle_s"] = r3(dt)
    res["idle_links_per_node"] = spread(links)
    res["idle_mesh_bytes_per_s_per_node"] = spread(sent)
    res["idle_mesh_segments_per_s_per_node"] = spread(segs)
    res["idle_wchar_per_s_per_node"] = spread([w["wchar"] for w in win.values()])
    res["idle_cpu_ms_per_s_per_node"] = spread([w["cpu"] * 1000 for w in win.values()])
    # the mean over the nodes: one node's utime + stime moves in clock ticks (10 ms), the sum less so
    res["idle_cpu_ms_per_s_per_node_mean"] = r3(sum(w["cpu"] for w in win.values()) / len(win) * 1000)
    per_type = {}
    for i in m0:
        if m0[i] is None or m1.get(i) is None:
            continue
        f0, f1 = frames_by_type(m0[i]), frames_by_type(m1[i])
        for t in f1:
            per_type.setdefault(t, []).append((f1[t] - f0.get(t, 0)) / dtm)
    res["idle_frames_per_s_per_node_by_type"] = {t: spread(v)["median"] for t, v in per_type.items()
                                                 if spread(v)["max"]}
    res["idle_frames_per_s_per_node"] = r3(sum(res["idle_frames_per_s_per_node_by_type"].values()))
    rss = []
    for p in pids:
        try:
            rss.append(proc_kb(p, "VmRSS"))
        except (OSError, KeyError):
            pass
    res["idle_rss_kb_per_node"] = spread(rss)
    res["idle_fds_per_node"] = spread([fds(p) for p in pids])
    dead = c.dead_lines(marks)
    res["idle_dead_lines"] = len(dead)
    res["idle_dead_examples"] = examples(dead)
    res["idle_suspect_lines"] = c.suspect_lines(marks)
    ans = c.poller.round()
    res["idle_complete_at_end"] = all(alive_of(st) == c.everyone for _, st in ans.values())


def phase_route(c, res, key="route_agree_all"):
    same, answer = route_agreement(c.running(), UIDS, pool=c.poller)
    res[key] = same
    return answer


def phase_publish(c, res):
    a = c.args
    res["publish"] = publish_to_holders(c.nodes.values(), 1, (c.n - 1, c.n), a.publishes, a.window,
                                        mesh_ports=set(c.mesh_ports.values()))


def victims_of(n, k):
    """k ids spread over 2..n (node 1, the seed, is never killed)."""
    return sorted({max(2, min(n, round(n * (j + 1) / (k + 1)))) for j in range(k)})


def examples(dead, n=5):
    return [f"node {d[0]} saw {d[1]} dead: {d[2]}" for d in dead[:n]]


def log_detect(c, res, key, dead, victims, observers, t0_wall):
    """From the logs, with their ms timestamps (no polling in it): per observer, the time from t0_wall
    until it had logged `is dead` for every victim; KEY_log_detect_s over the observers that did."""
    first = {}
    for o, subj, _, t in dead:
        if subj in victims and t is not None and (o, subj) not in first:
            first[(o, subj)] = t - t0_wall
    per = [max(first[(o, v)] for v in victims) for o in observers if all((o, v) in first for v in victims)]
    res[f"{key}_log_detect_s"] = spread(per)
    res[f"{key}_log_detect_observers"] = len(per)


def why_counts(dead):
    """{why: lines} of `is dead` lines (the numbers in the reason left out)."""
    out = {}
    for d in dead:
        key = re.sub(r"\d+", "N", d[2])
        out[key] = out.get(key, 0) + 1
    return out


def seen_dead(c, res, key, victims, observers, t0):
    """Polls the observers (a round at most every --kill-interval s) until each lists every victim in
    a state other than alive/suspect, or dead_after + --kill-timeout s after t0. Writes KEY_* figures:
    per observer the answer time that first showed it (the previous answer is the lower bound)."""
    a = c.args
    seen, prev, exact, rounds = {}, {}, {}, []
    while time.monotonic() - t0 < a.dead_after + a.kill_timeout and len(seen) < len(observers):
        start = time.monotonic()
        ans = c.poller.round([i for i in observers if i not in seen])
        rounds.append(time.monotonic() - start)
        for i, (t, st) in ans.items():
            if st is None:
                continue
            if all(st.get(v) not in NOT_DEAD for v in victims):
                seen[i] = t - t0
                exact[i] = alive_of(st) == set(observers)
            else:
                prev[i] = t - t0
        time.sleep(max(0.0, a.kill_interval - (time.monotonic() - start)))
    res[f"{key}_detect_per_observer_s"] = {str(i): r3(t) for i, t in sorted(seen.items())}
    res[f"{key}_seen_by"] = len(seen)
    res[f"{key}_observers"] = len(observers)
    res[f"{key}_detect_s"] = spread(list(seen.values()))   # over the observers
    res[f"{key}_detect_max_s"] = r3(max(seen.values())) if len(seen) == len(observers) else None   # the last one
    res[f"{key}_detect_lower_s"] = spread([prev.get(i, 0.0) for i in seen])
    res[f"{key}_detect_within_dead_after"] = sum(1 for v in seen.values() if v <= a.dead_after)
    res[f"{key}_observers_exact_alive_set"] = sum(exact.values())
    res[f"{key}_poll_round_s"] = spread(rounds)


def phase_freeze(c, res):
    """The same victims frozen (SIGSTOP: their links stay open, only probing can find them). First
    for --freeze-short s, less than a suspicion timeout: no one may declare them dead. Then until
    every other node lists them dead (bounded like the kill), SIGCONT, and the time until all list N
    alive again (a refutation or a rejoin)."""
    a = c.args
    victims = victims_of(c.n, a.kill)
    others = sorted(c.everyone - set(victims))
    marks = c.marks()
    try:
        for v in victims:
            c.nodes[v].kill(signal.SIGSTOP)
        time.sleep(a.freeze_short)
    finally:
        for v in victims:
            c.nodes[v].kill(signal.SIGCONT)
    time.sleep(a.dead_after)
    dead = c.dead_lines(marks)
    res["freeze_short_s"] = a.freeze_short
    res["freeze_short_dead_lines"] = len(dead)
    res["freeze_short_examples"] = examples(dead)
    marks = c.marks()
    tf, tf_wall = time.monotonic(), time.time()
    try:
        for v in victims:
            c.nodes[v].kill(signal.SIGSTOP)
        seen_dead(c, res, "freeze", victims, others, tf)
    finally:
        for v in victims:
            c.nodes[v].kill(signal.SIGCONT)
    dead = c.dead_lines(marks)
    res["freeze_dead_why"] = why_counts(dead)
    log_detect(c, res, "freeze", dead, victims, others, tf_wall)
    tc = time.monotonic()
    w, _ = poll_until(c, None, lambda ans: all(alive_of(st) == c.everyone for _, st in ans.values()),
                      tc, a.rejoin_timeout, a.kill_interval)
    res["freeze_back_alive_s"] = r3(w)


def phase_kill(c, res, route_before):
    a = c.args
    victims = victims_of(c.n, a.kill)
    res["kill_victims"] = victims
    survivors = sorted(c.everyone - set(victims))
    marks = c.marks()
    tk, tk_wall = time.monotonic(), time.time()
    for v in victims:
        c.nodes[v].kill()
    for v in victims:
        c.nodes[v].proc.wait(10)
    seen_dead(c, res, "kill", victims, survivors, tk)
    same, after = route_agreement([c.nodes[i] for i in survivors], UIDS, pool=c.poller)
    res["route_agree_survivors"] = same
    killed_ws = {f"ws://{c.nodes[v].host}:{c.nodes[v].ws}" for v in victims}
    res["route_moved_only_killed"] = all(route_before[u] == after[u] for u in UIDS if route_before[u] not in killed_ws)
    dead = c.dead_lines(marks)
    res["kill_dead_why"] = why_counts(dead)
    log_detect(c, res, "kill", dead, victims, survivors, tk_wall)
    false = [d for d in dead if d[1] not in victims]
    res["kill_dead_lines"] = len(dead)
    res["kill_false_dead_lines"] = len(false)
    res["kill_false_examples"] = examples(false)

    # rejoin
    time.sleep(a.rejoin_delay)
    marks = c.marks()
    tr = time.monotonic()
    for v in victims:
        c.nodes[v].launch()
    w, rounds = poll_until(c, None, lambda ans: all(alive_of(st) == c.everyone for _, st in ans.values()),
                           tr, a.rejoin_timeout, a.kill_interval)
    res["rejoin_s"] = r3(w)
    res["rejoin_s_prev_round"] = r3(rounds[-2][1]) if w is not None and len(rounds) > 1 else None
    res["rejoin_poll_round_s"] = spread([e - s for s, e, _ in rounds])
    if w is None and rounds:
        res["rejoin_not_done_alive_listed"] = spread([len(alive_of(st)) for _, st in rounds[-1][2].values()
                                                      if st is not None])
    same, again = route_agreement(c.running(), UIDS, pool=c.poller)
    res["route_agree_after_rejoin"] = same
    res["route_map_restored"] = again == route_before
    dead = c.dead_lines(marks)
    res["rejoin_dead_lines"] = len(dead)
    res["rejoin_dead_examples"] = examples(dead)


UIDS = [f"user{i}" for i in range(1000)]


def one_run(args, rnd):
    res = {"run": rnd, "nodes": args.nodes, "workers": 1, "dead_after": args.dead_after, "seeds": args.seeds,
           "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_before": os.getloadavg()}
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix=f"mesh-scale-{args.nodes}-") as d:
        c = Cluster(args, d)
        try:
            formed = phase_formation(c, res)
            if "idle" in args.phases:
                phase_idle(c, res)
            if formed:
                route = phase_route(c, res) if {"route", "kill"} & args.phases else None
                if "publish" in args.phases:
                    phase_publish(c, res)
                if "freeze" in args.phases:
                    phase_freeze(c, res)
                if "kill" in args.phases:
                    phase_kill(c, res, route)
            res["crashed"] = c.crashed()
            res["false_deaths"] = res.get("formation_dead_lines", 0) + res.get("idle_dead_lines", 0) + \
                res.get("kill_false_dead_lines", 0) + res.get("rejoin_dead_lines", 0) + \
                res.get("freeze_short_dead_lines", 0)
        finally:
            res["load_after"] = os.getloadavg()
            c.poller.close()
            stop_nodes(list(c.nodes.values()), timeout=10)
            if args.keep_logs:
                dst = os.path.join(HERE, "results", f"logs-scale-n{args.nodes}-r{rnd}-{int(time.time())}")
                shutil.copytree(d, dst, ignore=shutil.ignore_patterns("*.conf"))
                res["logs"] = dst
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    res["harness_cpu_s"] = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2)
    return res


# ------------------------------------------------------------------------------------------ report

def summary(runs):
    """Every numeric figure (and the medians of {median,min,max} figures) as median and range over runs."""
    out = {}
    keys = []
    for r in runs:
        for k in r:
            if k not in keys:
                keys.append(k)
    for k in keys:
        vals = [r.get(k) for r in runs]
        if all(isinstance(v, dict) and "median" in v for v in vals if v is not None) and any(vals):
            vals = [v["median"] if v else None for v in vals]
        if all(isinstance(v, bool) for v in vals if v is not None) and any(v is not None for v in vals):
            out[k] = vals
        elif all(isinstance(v, (int, float)) for v in vals if v is not None) and any(v is not None for v in vals):
            s = spread(vals)
            out[k] = {**s, "runs": [r3(v) for v in vals]}
    return out


def fmt(s, key, unit="", scale=1.0):
    v = s.get(key)
    if v is None:
        return "n/a"
    if isinstance(v, list):
        return str(v[0]) if len(set(v)) == 1 else "/".join(str(x) for x in v)

    def f(x):
        if x is None:
            return "None"
        x *= scale
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
    if len(set(v["runs"])) == 1:
        return f"{f(v['median'])}{unit}"
    return f"{f(v['median'])}{unit} [{f(v['min'])}–{f(v['max'])}] ({', '.join(f(x) for x in v['runs'])})"


def report(args, runs, s, path):
    n = args.nodes
    print(f"\n{n} nodes, {len(runs)} run(s), median [range] (per run); load average before/after: "
          f"{[r['load_before'][0] for r in runs]} / {[r['load_after'][0] for r in runs]}; {path}")
    print(f"  formation: formed {fmt(s, 'formed')} (if not: later after {fmt(s, 'formed_late_s', ' s')}, with "
          f"{fmt(s, 'formed_late_dead_lines')} more 'is dead' lines meanwhile); {fmt(s, 'form_s', ' s')} until all list {n} alive "
          f"(previous round {fmt(s, 'form_s_prev_round', ' s')}); all answered /v1/nodes after "
          f"{fmt(s, 'all_answered_s', ' s')}")
    print(f"    'is dead' lines {fmt(s, 'formation_dead_lines')} (pairs {fmt(s, 'formation_dead_pairs')}), lines "
          f"naming a suspicion {fmt(s, 'formation_suspect_lines')}; "
          f"bytes on open mesh links {fmt(s, 'formation_mesh_bytes_open_links', ' MB', 1e-6)}; "
          f"CPU all nodes {fmt(s, 'formation_cpu_s_all_nodes', ' s')}; frames by type (run 1) "
          f"{runs[0].get('formation_frames_by_type_all_nodes')}; handshakes refused (run 1) "
          f"{runs[0].get('formation_conn_refused_all_nodes')}")
    if "idle_s" in s:
        r1 = runs[0].get("idle_mesh_bytes_per_s_per_node") or {}
        print(f"  idle per node (median over nodes): mesh payload {fmt(s, 'idle_mesh_bytes_per_s_per_node', ' B/s')} "
              f"(run 1 over the nodes {r1.get('min')}–{r1.get('max')}); wchar "
              f"{fmt(s, 'idle_wchar_per_s_per_node', ' B/s')}; CPU {fmt(s, 'idle_cpu_ms_per_s_per_node_mean', ' ms/s')} (mean over nodes); "
              f"segments {fmt(s, 'idle_mesh_segments_per_s_per_node', '/s')}; frames {fmt(s, 'idle_frames_per_s_per_node', '/s')} "
              f"(run 1 by type {runs[0].get('idle_frames_per_s_per_node_by_type')})")
        print(f"    links {fmt(s, 'idle_links_per_node')}, RSS {fmt(s, 'idle_rss_kb_per_node', ' kB')}, fds "
              f"{fmt(s, 'idle_fds_per_node')}; 'is dead' lines {fmt(s, 'idle_dead_lines')}, suspicion lines "
              f"{fmt(s, 'idle_suspect_lines')}; complete at the end "
              f"{fmt(s, 'idle_complete_at_end')}")
    if "route_agree_all" in s:
        print(f"  route agreement on all {n}: {fmt(s, 'route_agree_all')}")
    pubs = [r["publish"] for r in runs if "publish" in r]
    if pubs:
        ps = summary(pubs)
        print(f"  publish to 2 holders from node 1: origin frames/publish {fmt(ps, 'origin_frames_per_publish')} "
              f"(raw {fmt(ps, 'origin_frames_per_publish_raw')}; run 1 by type "
              f"{pubs[0]['origin_frames_per_publish_by_type']}); calls/publish {fmt(ps, 'origin_calls_per_publish')}; "
              f"links used (outside) {fmt(ps, 'outside_links_used')}; bad answers {fmt(ps, 'answers_bad')}; "
              f"delivered {[p['delivered'] for p in pubs]} of {pubs[0]['delivered_expected']}")
    if "kill_seen_by" in s:
        print(f"  SIGKILL {args.kill}: seen dead by {fmt(s, 'kill_seen_by')} of {fmt(s, 'kill_observers')} observers; "
              f"the last observer after {fmt(s, 'kill_detect_max_s', ' s')} (the median observer "
              f"{fmt(s, 'kill_detect_s', ' s')}); within dead_after = {args.dead_after} s: "
              f"{fmt(s, 'kill_detect_within_dead_after')}; one poll round {fmt(s, 'kill_poll_round_s', ' s')}; "
              f"from the logs' timestamps (median observer) {fmt(s, 'kill_log_detect_s', ' s')}; reasons (run 1) "
              f"{runs[0].get('kill_dead_why')}")
        print(f"    false 'is dead' {fmt(s, 'kill_false_dead_lines')}; route agreement among survivors "
              f"{fmt(s, 'route_agree_survivors')}, only the killed nodes' uids moved {fmt(s, 'route_moved_only_killed')}")
        print(f"  rejoin: {fmt(s, 'rejoin_s', ' s')} until all list {n} alive (previous round "
              f"{fmt(s, 'rejoin_s_prev_round', ' s')}); route agreement {fmt(s, 'route_agree_after_rejoin')}, "
              f"map restored {fmt(s, 'route_map_restored')}; 'is dead' lines {fmt(s, 'rejoin_dead_lines')}")
    if "freeze_seen_by" in s:
        print(f"  SIGSTOP {args.kill} for {args.freeze_short} s: 'is dead' lines {fmt(s, 'freeze_short_dead_lines')}; "
              f"then until seen dead: the last observer after {fmt(s, 'freeze_detect_max_s', ' s')} (seen by "
              f"{fmt(s, 'freeze_seen_by')} of {fmt(s, 'freeze_observers')}; logs' timestamps, median observer "
              f"{fmt(s, 'freeze_log_detect_s', ' s')}; reasons (run 1) {runs[0].get('freeze_dead_why')}); "
              f"after SIGCONT all list {n} alive after "
              f"{fmt(s, 'freeze_back_alive_s', ' s')}")
    print(f"  false deaths in all: {fmt(s, 'false_deaths')}; crashed: {[r.get('crashed') for r in runs]}; "
          f"harness CPU {fmt(s, 'harness_cpu_s', ' s')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--nodes", type=int, default=128)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--phases", default="formation,idle,route,publish,kill")
    ap.add_argument("--formation-only", action="store_true", help="phases formation and idle only")
    ap.add_argument("--seeds", type=int, default=1, help="nodes 1..K are every node's seeds")
    ap.add_argument("--dead-after", type=int, default=DEAD_AFTER)
    ap.add_argument("--mesh-set", action="append", default=[], metavar="'KEY = VALUE'",
                    help="a line added to every node's [mesh] section (repeatable), e.g. a probe interval")
    ap.add_argument("--form-timeout", type=float, default=60.0)
    ap.add_argument("--late-timeout", type=float, default=0.0,
                    help="when not formed within --form-timeout, keep polling this many s more (formed_late_s)")
    ap.add_argument("--form-interval", type=float, default=0.5, help="at most one poll round per this many s")
    ap.add_argument("--settle", type=float, default=2.0, help="s between formation and the idle window")
    ap.add_argument("--idle", type=float, default=10.0, help="s of idle measurement")
    ap.add_argument("--publishes", type=int, default=500)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--kill", type=int, default=8)
    ap.add_argument("--kill-interval", type=float, default=0.25, help="at most one poll round per this many s")
    ap.add_argument("--kill-timeout", type=float, default=10.0, help="s past dead_after to wait for detection")
    ap.add_argument("--freeze-short", type=float, default=1.0,
                    help="phase freeze: s the victims are first stopped for (less than a suspicion timeout)")
    ap.add_argument("--rejoin-delay", type=float, default=1.0)
    ap.add_argument("--rejoin-timeout", type=float, default=30.0)
    ap.add_argument("--pool", type=int, default=16, help="threads polling the nodes")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--out", help="result file (default bench/results/mesh_scale-nN-<time>.json)")
    args = ap.parse_args()
    args.server = os.path.abspath(args.server)
    args.phases = {"formation", "idle"} if args.formation_only else set(args.phases.split(","))
    if "kill" in args.phases and args.nodes < 2 * args.kill:
        raise SystemExit(f"--kill {args.kill} needs at least {2 * args.kill} nodes")
    # per node: mesh links to every other node (both ends), listeners, log; and this script's polls
    limit = raise_fd_limit(64 + 8 * args.nodes)
    # SIGTERM/SIGHUP end this script through its finally blocks (every node stopped)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = args.out or os.path.join(HERE, "results", time.strftime(f"mesh_scale-n{args.nodes}-%Y%m%dT%H%M%SZ.json",
                                                                    time.gmtime()))
    machine = {"nproc": os.cpu_count(), "fd_limit": limit, "uptime_load": open("/proc/loadavg").read().split()[:3]}
    runs = []
    for r in range(1, args.runs + 1):
        res = one_run(args, r)
        runs.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "form_trace"}), flush=True)
        s = summary(runs)
        with open(path, "w") as f:
            json.dump({"args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
                       "machine": machine, "summary": s, "runs": runs}, f, indent=1)
    report(args, runs, summary(runs), path)
    bad = any(not r.get("formed") or r.get("false_deaths") or r.get("crashed") for r in runs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
