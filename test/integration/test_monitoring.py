"""The shipped monitoring files (docs/monitoring/, issue 12):
- the Prometheus alert rules pass `promtool check rules`, and `promtool test rules` shows them firing
  on the series that should fire them (docs/monitoring/meshgate-alerts.test.yml);
- every metric the rules and the Grafana dashboard query is one the binary exports at /metrics
  (besides Prometheus's own `up` in the rules), so no panel or alert silently reads nothing.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from harness import REPO, free_port, metrics

MON = os.path.join(REPO, "docs", "monitoring")
RULES = os.path.join(MON, "meshgate-alerts.yml")
GRAFANA = os.path.join(MON, "meshgate-grafana.json")

# PromQL words that are not metric names: aggregations, functions, keywords.
PROMQL_WORDS = {"sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "rate",
                "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor", "round", "clamp_min",
                "clamp_max", "histogram_quantile", "label_replace", "label_join", "time", "vector", "scalar",
                "absent", "changes", "resets", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
                "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "humanizePercentage"}


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)                       # label matchers
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\[[^\]]*\]", " ", e)                      # range selectors
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", w)}


def rule_exprs():
    # The rules file is YAML; its expressions are single-line `expr:` entries (kept that way on purpose).
    return [m.group(1).strip() for m in re.finditer(r"^\s*expr:\s*(.+)$", open(RULES).read(), re.M)]


def grafana_exprs():
    dash = json.load(open(GRAFANA))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    # Variables: Grafana's label_values(SELECTOR, LABEL) reads SELECTOR.
    for v in dash["templating"]["list"]:
        if isinstance(v.get("query"), dict):
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", v["query"]["query"])
            assert m, f"unexpected variable query {v['query']['query']!r}"
            exprs.append(m.group(1))
    return exprs


@pytest.fixture(scope="module")
def exported(module_nodes):
    """The metric families a node exports, mesh families included."""
    node = module_nodes.start({"mesh": {"bind": "127.0.0.1", "port": free_port(), "cluster": "mon",
                                        "secret": "monitoring-test-secret"}})
    names = set(re.findall(r"^# TYPE (\S+) ", metrics(node), re.M))
    assert {"meshgate_connections", "process_open_fds", "meshgate_mesh_rtt_seconds"} <= names, names
    return names


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (scripts/install-deps.sh test)"
    return path


def test_promtool_checks_and_tests_the_rules():
    p = subprocess.run([promtool(), "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    p = subprocess.run([promtool(), "test", "rules", "meshgate-alerts.test.yml"], cwd=MON, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_metric_name_extraction():
    assert metric_names('sum by (instance, reason) (rate(meshgate_connections_refused_total{a="b"}[5m])) > 1') \
        == {"meshgate_connections_refused_total"}
    assert metric_names('meshgate_queue_depth > 0 and on(instance, topic) meshgate_queue_consumers == 0') \
        == {"meshgate_queue_depth", "meshgate_queue_consumers"}


def test_rules_read_only_exported_metrics(exported):
    exprs = rule_exprs()
    assert len(exprs) >= 8
    used = set().union(*(metric_names(e) for e in exprs))
    assert used - exported - {"up"} == set(), f"rules query metrics the binary does not export: {used - exported - {'up'}}"


def test_grafana_reads_only_exported_metrics(exported):
    dash = json.load(open(GRAFANA))
    assert dash["panels"] and all(p.get("targets") for p in dash["panels"])
    used = set().union(*(metric_names(e) for e in grafana_exprs()))
    assert len(used) >= 15
    assert used - exported == set(), f"the Grafana dashboard queries metrics the binary does not export: {used - exported}"
