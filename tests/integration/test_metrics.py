"""GET /api/v1/metrics through lighttpd and two responder processes (docs/operations.md, issue 14 items 1 and 4): the Prometheus text exposition that
`promtool check metrics` (Debian's prometheus package) accepts, behind the
admin token, the same from either process, and every series equal to what
the requests sent made of it.

The expectations are computed from the request log (/api/v1/logs: every
item with its attempt trail, latency, first token and tokens), so each
counter, histogram bucket, _sum and _count is checked exactly: request
counts by endpoint, outcome (success, error, cancelled: a client that hung
up) and final provider, fallbacks, the attempts of every provider and their
durations, first-token times, token usage, each provider's cooldown and
quota, open streams, the spool's queue and dropped rows.  Then the counters
must not go backwards when every responder restarts, nor when retention
prunes every request row (the rows are moved 60 days back and the janitor's
prune at start deletes them).  The only waits are for rows and for the
gauges' 5 s heartbeat, with generous bounds; no duration is asserted.

The tests run in order and build on the mix the first one sends."""

import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import harness
from harness import key_config

H = None
ADMIN = "admin-token-METRICS"
AUTH = {"Authorization": "Bearer " + ADMIN}
CONFIG = dict(key_config("groq", "cerebras", "openrouter"),
              RELAYFORGE_ADMIN_TOKEN=ADMIN, RELAYFORGE_RETRIES="0",
              RELAYFORGE_COOLDOWN_MS="600000")
CHAIN = ["groq", "sambanova", "cerebras", "gemini", "openrouter", "mock"]
DAY_MS = 86400000

# OpenTelemetry GenAI semantic conventions: recommended bucket bounds.
DURATION_LE = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
               10.24, 20.48, 40.96, 81.92]
TTFT_LE = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
           1.0, 2.5, 5.0, 7.5, 10.0]
TOKEN_LE = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
            4194304, 16777216, 67108864]
HISTOGRAMS = {
    "gen_ai_server_request_duration_seconds": (DURATION_LE, 1000),
    "gen_ai_server_time_to_first_token_seconds": (TTFT_LE, 1000),
    "gen_ai_client_operation_duration_seconds": (DURATION_LE, 1000),
    "gen_ai_client_token_usage": (TOKEN_LE, 1),
}
COUNTERS = ["relayforge_requests_total", "relayforge_fallbacks_total",
            "relayforge_attempts_total", "relayforge_store_dropped_rows_total"]
GAUGES = ["relayforge_provider_cooldown_until_seconds",
          "relayforge_provider_quota_remaining", "relayforge_store_queue_rows",
          "relayforge_open_streams", "relayforge_processes"]

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def setup_module():
    global H
    H = harness.Harness("metrics")
    H.use(CONFIG)


def teardown_module():
    if H:
        H.close()


# ------------------------------------------------------------------ helpers

def scrape():
    """One GET /api/v1/metrics: (raw text, {(name, labels): value},
    {name: type})."""
    st, hd, body = H.get("/api/v1/metrics", headers=AUTH)
    assert st == 200, (st, body)
    assert hd["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert hd.get("cache-control") == "no-store", hd
    samples, types = {}, {}
    for ln in body.splitlines():
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            types[name] = typ
            continue
        if ln.startswith("#"):
            continue
        m = SAMPLE_RE.match(ln)
        assert m, "not a sample line: %r" % ln
        labels = tuple(LABEL_RE.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in samples, "series twice: %r" % (key,)
        samples[key] = float(m.group(3))
    return body, samples, types


def promtool(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, "promtool: %s %s" % (p.stdout, p.stderr)


def family(samples, name):
    """{labels-without-le: value} of one metric name."""
    return {lb: v for (n, lb), v in samples.items() if n == name}


def all_items():
    items, before = [], None
    while True:
        q = "limit=200" + ("&before=%d" % before if before else "")
        st, _, body = H.get("/api/v1/logs?" + q, headers=AUTH)
        assert st == 200, body
        items += body["data"]["items"]
        before = body["data"]["nextBefore"]
        if before is None:
            return items


def wait_rows(n, timeout=15):
    got = harness.wait_until(lambda: H.count_requests() >= n, timeout)
    assert got, "expected %d rows, have %d" % (n, H.count_requests())


def attempt_outcome(a):
    return "cancelled" if a["outcome"] == "client_closed" else a["outcome"]


def prov(p):
    return p if p else "none"


class Expected:
    """What the metrics must say, from the request log."""

    def __init__(self, items):
        self.counters = {}
        self.hist = {}
        for it in items:
            self.add_request(it)
            for a in it["attempts"]:
                self.add_attempt(a)

    def count(self, name, labels, n=1):
        key = (name, tuple(labels))
        self.counters[key] = self.counters.get(key, 0) + n

    def observe(self, name, labels, v):
        key = (name, tuple(labels))
        self.hist.setdefault(key, []).append(v)

    def add_request(self, it):
        lab = [("endpoint", it["endpoint"]), ("outcome", it["status"]),
               ("final_provider", prov(it["finalProvider"]))]
        self.observe("gen_ai_server_request_duration_seconds", lab,
                     it["latencyMs"])
        if it["ttftMs"] is not None:
            self.observe("gen_ai_server_time_to_first_token_seconds", lab,
                         it["ttftMs"])
        self.count("relayforge_requests_total", lab)
        if it["fallbackActivated"]:
            self.count("relayforge_fallbacks_total",
                       [("attempted_provider", prov(it["attemptedProvider"])),
                        ("final_provider", prov(it["finalProvider"]))])
        for key, typ in (("promptTokens", "input"),
                         ("completionTokens", "output")):
            if it["usage"][key] is not None:
                self.observe("gen_ai_client_token_usage",
                             [("gen_ai_provider_name",
                               prov(it["finalProvider"])),
                              ("gen_ai_token_type", typ)],
                             it["usage"][key])

    def add_attempt(self, a):
        out = attempt_outcome(a)
        self.count("relayforge_attempts_total",
                   [("provider", a["provider"]), ("outcome", out)])
        if a["outcome"] != "skipped" and "latencyMs" in a:
            self.observe("gen_ai_client_operation_duration_seconds",
                         [("gen_ai_provider_name", a["provider"]),
                          ("outcome", out)], a["latencyMs"])

    def check(self, samples):
        for name in ("relayforge_requests_total", "relayforge_fallbacks_total",
                     "relayforge_attempts_total"):
            got = family(samples, name)
            want = {lb: n for (n2, lb), n in self.counters.items()
                    if n2 == name}
            assert got == want, "%s:\n got  %s\n want %s" % (name, got, want)
        for name, (bounds, scale) in HISTOGRAMS.items():
            self.check_histogram(samples, name, bounds, scale)

    def check_histogram(self, samples, name, bounds, scale):
        want = {lb: v for (n, lb), v in self.hist.items() if n == name}
        counts = family(samples, name + "_count")
        assert set(counts) == set(want), "%s series: %s vs %s" % (
            name, sorted(counts), sorted(want))
        buckets = family(samples, name + "_bucket")
        sums = family(samples, name + "_sum")
        for lb, values in want.items():
            assert counts[lb] == len(values), (name, lb)
            # Sums are exact: whole milliseconds (or tokens) exposed with
            # three decimals.
            assert round(sums[lb] * scale) == sum(values), (
                name, lb, sums[lb], sum(values))
            for le in bounds:
                n = sum(1 for v in values if v <= le * scale + 1e-9)
                key = lb + (("le", fmt_le(le)),)
                assert buckets[key] == n, (name, lb, le, buckets[key], n)
            assert buckets[lb + (("le", "+Inf"),)] == len(values)
        n_buckets = sum(1 for lb in buckets if lb[:-1] in want)
        assert n_buckets == len(buckets) == len(want) * (len(bounds) + 1)


def fmt_le(v):
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def counters_of(samples):
    """Every counter and histogram sample: what must never go back."""
    names = set(COUNTERS)
    for h in HISTOGRAMS:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return {k: v for k, v in samples.items() if k[0] in names}


# ------------------------------------------------------------------ tests

def test_admin_token_and_format():
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        st, hd, body = H.get("/api/v1/metrics", headers=headers)
        assert st == 401, (st, body)
        assert body["error"]["code"] == "unauthorized"
    st, hd, body = H.request("POST", "/api/v1/metrics", body={},
                             headers=AUTH)
    assert st == 405 and hd["allow"] == "GET, OPTIONS", (st, hd)
    text, samples, types = scrape()
    promtool(text)
    # Every family is declared, with HELP and TYPE, before any request.
    for name in HISTOGRAMS:
        assert types[name] == "histogram", name
        assert "# HELP %s " % name in text
    for name in COUNTERS:
        assert types[name] == "counter", name
    for name in GAUGES:
        assert types[name] == "gauge", name
    assert samples[("relayforge_open_streams", ())] == 0
    for p in CHAIN:
        assert samples[("relayforge_provider_cooldown_until_seconds",
                        (("provider", p),))] == 0


def test_mix_every_series_matches():
    assert len(H.children) == 2, H.children
    # 3 chats and a stream answered by groq, with the tokens it reports.
    H.mock_default("groq", {"kind": "ok", "usage": [300, 5000]})
    for i in range(3):
        st, _, _ = H.chat("hello %d" % i)
        assert st == 200
    res = H.stream("/api/v1/stream", {"prompt": "a stream"})
    assert res.events("done") == [{"ok": True}]
    # groq 500: cerebras answers with quota headers (a fallback).
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    H.mock_script("cerebras", [{"kind": "ok", "headers": {
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "5000"}}])
    st, _, body = H.chat("fallback please")
    assert st == 200 and body["data"]["meta"]["finalProvider"] == "cerebras"
    # groq 500 without fallback: an error.
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    st, _, _ = H.chat({"prompt": "no fallback", "options": {"fallback":
                                                            False}})
    assert st == 502
    # A stream whose client hangs up after two tokens: cancelled.
    H.mock_script("groq", [{"kind": "ok", "tokens": ["w%d " % i
                                                     for i in range(40)],
                            "delay_ms": 200}])
    res = H.stream("/api/v1/stream", {"prompt": "long"}, close_after_tokens=2)
    assert res.closed_at is not None
    # groq 429: it cools down, cerebras answers; then groq is skipped.
    H.mock_script("groq", [{"kind": "status", "status": 429}])
    st, _, _ = H.chat("rate limited")
    assert st == 200
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, _, body = H.chat("while groq cools")
    assert body["data"]["meta"]["attempts"][0]["reason"] == "cooling_down"
    # The demo tier by name.
    st, _, _ = H.chat({"prompt": "demo", "options": {"strategy": "mock"}})
    assert st == 200
    wait_rows(10)
    rows = H.sql("SELECT error_code FROM requests WHERE error_code ="
                 " 'client_closed'")
    assert len(rows) == 1, rows

    items = all_items()
    assert len(items) == 10
    assert sorted(it["status"] for it in items).count("cancelled") == 1
    exp = Expected(items)
    texts = []
    for _ in range(4):  # spread over both processes: the same answer
        text, samples, _ = scrape()
        texts.append(text)
        exp.check(samples)
    assert all(t == texts[0] for t in texts), "answers differ"
    promtool(texts[0])

    # A few figures spelled out, beside the generic comparison.
    req = family(samples, "relayforge_requests_total")
    assert sum(req.values()) == 10
    assert sum(v for lb, v in req.items()
               if ("outcome", "cancelled") in lb) == 1
    assert sum(v for lb, v in req.items() if ("outcome", "error") in lb) == 1
    assert family(samples, "relayforge_fallbacks_total") == {
        (("attempted_provider", "groq"), ("final_provider", "cerebras")): 2}
    tok = family(samples, "gen_ai_client_token_usage_sum")
    assert tok[(("gen_ai_provider_name", "groq"),
                ("gen_ai_token_type", "output"))] == sum(
        it["usage"]["completionTokens"] or 0 for it in items
        if it["finalProvider"] == "groq")
    assert tok[(("gen_ai_provider_name", "groq"),
                ("gen_ai_token_type", "input"))] >= 3 * 300

    # Cooldown and quota: as /providers/status tells them.
    st, _, body = H.get("/api/v1/providers/status")
    status = {p["id"]: p for p in body["data"]["providers"]}
    cool = family(samples, "relayforge_provider_cooldown_until_seconds")
    assert set(cool) == {(("provider", p),) for p in CHAIN}
    until = status["groq"]["cooldownUntil"]
    assert until is not None
    assert round(cool[(("provider", "groq"),)] * 1000) == \
        harness_iso_ms(until)
    for p in CHAIN[1:]:
        assert cool[(("provider", p),)] == 0, p
    assert family(samples, "relayforge_provider_quota_remaining") == {
        (("provider", "cerebras"), ("kind", "requests")): 99,
        (("provider", "cerebras"), ("kind", "tokens")): 5000}
    assert samples[("relayforge_store_queue_rows", ())] == 0
    assert samples[("relayforge_store_dropped_rows_total", ())] == 0
    assert samples[("relayforge_open_streams", ())] == 0
    assert samples[("relayforge_processes", ())] == 2


def documented_job():
    """The scrape job of docs/operations.md ("## Metrics"), as text."""
    with open(os.path.join(harness.ROOT, "docs", "operations.md")) as f:
        doc = f.read()
    part = doc[doc.index("## Metrics"):]
    m = re.search(r"```yaml\n(scrape_configs:.*?)```", part, re.S)
    assert m, "no scrape_configs block under ## Metrics"
    return m.group(1)


def test_prometheus_scrapes_with_the_documented_job():
    """A real Prometheus, configured with the job the docs show, scrapes
    the gateway and holds its series."""
    job = documented_job()
    assert "metrics_path: /api/v1/metrics" in job
    assert re.search(r"^\s+bearer_token: ", job, re.M), job
    cfg = re.sub(r"(scheme:) https", r"\1 http", job)
    cfg = re.sub(r'(bearer_token:) "[^"]*"', r'\1 "%s"' % ADMIN, cfg)
    cfg = re.sub(r'(targets:) \["[^"]*"\]', r'\1 ["127.0.0.1:%d"]' % H.port,
                 cfg)
    cfg = re.sub(r"(scrape_interval:) \S+", r"\1 1s", cfg)
    assert ADMIN in cfg and "127.0.0.1:%d" % H.port in cfg, cfg
    d = os.path.join(H.tmp, "prometheus")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "prometheus.yml")
    with open(conf, "w") as f:
        f.write(cfg)
    p = subprocess.run(["promtool", "check", "config", conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    port = harness.free_port()
    log = open(os.path.join(d, "prometheus.log"), "wb")
    prom = subprocess.Popen(
        ["prometheus", "--config.file=" + conf,
         "--storage.tsdb.path=" + os.path.join(d, "data"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=log, stderr=log)
    log.close()
    try:
        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
                port, urllib.parse.quote(q))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.loads(r.read().decode())["data"]["result"]
            except (OSError, ValueError, KeyError):
                return None
            return float(res[0]["value"][1]) if res else None

        want = float(len(all_items()))
        got = harness.wait_until(
            lambda: query("sum(relayforge_requests_total)") == want,
            timeout=60, interval=0.5)
        assert got, "Prometheus never held the requests: %s" % open(
            os.path.join(d, "prometheus.log")).read()[-2000:]
        assert query('up{job="relayforge"}') == 1
        assert query("sum(gen_ai_server_request_duration_seconds_count)") \
            == want
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=15)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()


def harness_iso_ms(s):
    import datetime
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def test_open_streams_gauge():
    """A stream held open shows in relayforge_open_streams from either
    process (within a heartbeat), and leaves it when it ends."""
    H.mock_script("cerebras", [{"kind": "ok", "tokens": ["t%d " % i
                                                        for i in range(50)],
                                "delay_ms": 200}])
    done = {}

    def client():
        done["res"] = H.stream("/api/v1/stream", {"prompt": "slow",
                                                  "options": {"strategy":
                                                              "cerebras"}},
                               max_seconds=60)

    t = threading.Thread(target=client, daemon=True)
    t.start()

    def open_streams():
        return scrape()[1][("relayforge_open_streams", ())]

    # The heartbeat is 5 s: a generous bound for both processes to agree.
    assert harness.wait_until(lambda: open_streams() == 1, timeout=20,
                              interval=0.25), "open stream never counted"
    assert all(open_streams() == 1 for _ in range(4))
    t.join(timeout=60)
    assert done["res"].events("done") == [{"ok": True}]
    assert harness.wait_until(lambda: all(open_streams() == 0
                                          for _ in range(4)),
                              timeout=20, interval=0.25)
    wait_rows(11)
    Expected(all_items()).check(scrape()[1])


def test_counters_survive_a_restart():
    before = counters_of(scrape()[1])
    assert before
    pids = set(H.children)
    H.restart(CONFIG)
    assert set(H.children).isdisjoint(pids), "the responders restarted"
    for _ in range(4):
        assert counters_of(scrape()[1]) == before
    # They go on from where they were, not from zero.
    st, _, _ = H.chat({"prompt": "after restart",
                       "options": {"strategy": "mock"}})
    assert st == 200
    wait_rows(12)
    _, samples, _ = scrape()
    key = ("relayforge_requests_total",
           (("endpoint", "chat"), ("outcome", "success"),
            ("final_provider", "mock")))
    assert samples[key] == before[key] + 1
    Expected(all_items()).check(samples)


def test_counters_survive_a_retention_prune():
    before = counters_of(scrape()[1])
    # Every request and rollup 60 days old: past the 30-day retention (the
    # shift is one literal: PostgreSQL would compute 60 * DAY_MS in int4).
    H.sql("UPDATE requests SET ts_ms = ts_ms - %d" % (60 * DAY_MS))
    H.sql("UPDATE usage_minute SET minute_ms = minute_ms - %d" % (60 * DAY_MS))
    H.sql("UPDATE usage_hour SET hour_ms = hour_ms - %d" % (60 * DAY_MS))
    H.restart(CONFIG)  # the janitor prunes at start
    assert harness.wait_until(lambda: H.count_requests() == 0, timeout=20), \
        "retention did not prune"
    assert harness.wait_until(
        lambda: H.sql("SELECT count(*) FROM usage_hour")[0][0] == 0, 10)
    st, _, body = H.get("/api/v1/usage?window=30d", headers=AUTH)
    assert body["data"]["totals"]["requests"] == 0
    assert counters_of(scrape()[1]) == before


def test_zz_no_sanitizer_reports():
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s), first: %s" % (
        len(reports), " | ".join(reports[0].split("\n")[:6]))
