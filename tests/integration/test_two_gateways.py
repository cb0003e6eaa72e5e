"""Two machines, one PostgreSQL (docs/several-machines.md; issue 12, item 5b).

Two independent gateways -- each its own lighttpd with its own responder
processes, config file, port, spool and RELAYFORGE_NODE ("gw-a", "gw-b")
-- share one throw-away PostgreSQL cluster (tests/pgcluster.py), with
nginx in front of both as the load balancer (an upstream block naming the
two ports).  Both gateways call the same scriptable mock upstream.  They
must behave as one gateway in every shared respect: a cooldown caused
through A makes B skip that provider, the per-client rate limit counts
requests arriving at both, /logs and /usage on either show both machines'
rows with their node names, and 2 gateways x 4 clients x 100 requests
leave exactly 800 request rows.  The operator queries of
schema/queries.pg.sql run here too, through psql.

The module runs in the default (SQLite) pass of the suite only: it brings
its own PostgreSQL.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tests"))
import pgcluster  # noqa: E402

PG = None
A = None
B = None
NGINX = None
NGINX_DIR = None
NGINX_PORT = None
QUERIES = os.path.join(harness.ROOT, "schema", "queries.pg.sql")

NGINX_CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream gateways {
        server 127.0.0.1:%(a)d;
        server 127.0.0.1:%(b)d;
        keepalive 16;
        keepalive_timeout 4s;  # below lighttpd's 5 s idle close
    }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
"""


def skip_on_pg_pass(fn):
    def wrapper():
        if harness.PG:
            raise harness.Skip("runs once, in the default pass")
        return fn()
    wrapper.__name__ = fn.__name__
    return wrapper


def config(h, node, extra=None):
    """A gateway's settings: the shared store, its own spool and node, and
    every provider on A's mock."""
    cfg = {"RELAYFORGE_DB": PG.uri, "RELAYFORGE_NODE": node,
           "RELAYFORGE_SPOOL_DIR": os.path.join(h.tmp, "spool"),
           "RELAYFORGE_MOCK": "off"}
    cfg.update(harness.key_config("groq", "sambanova"))
    for p in harness.PROVIDERS:
        cfg["RELAYFORGE_%s_URL" % p.upper()] = A.mock_url(p)
    cfg.update(extra or {})
    return cfg


def use_both(extra=None):
    A.use(config(A, "gw-a", extra))
    B.use(config(B, "gw-b", extra))
    start_nginx()


def start_nginx():
    """nginx in front of the two gateways (restarted when a port moved)."""
    global NGINX, NGINX_DIR, NGINX_PORT
    want = (A.port, B.port)
    if NGINX is not None and NGINX.poll() is None and \
            getattr(start_nginx, "ports", None) == want:
        return
    stop_nginx()
    NGINX_DIR = os.path.join(A.tmp, "nginx")
    os.makedirs(NGINX_DIR, exist_ok=True)
    NGINX_PORT = harness.free_port()
    with open(os.path.join(NGINX_DIR, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % {"dir": NGINX_DIR, "a": A.port, "b": B.port,
                              "port": NGINX_PORT})
    NGINX = subprocess.Popen(["nginx", "-c",
                              os.path.join(NGINX_DIR, "nginx.conf"),
                              "-p", NGINX_DIR, "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    start_nginx.ports = want
    assert harness.wait_until(lambda: lb("GET", "/api/v1/health")[0] == 200,
                              15), "nginx did not come up"


def stop_nginx():
    global NGINX
    if NGINX is not None:
        NGINX.terminate()
        try:
            NGINX.wait(timeout=10)
        except subprocess.TimeoutExpired:
            NGINX.kill()
        NGINX = None


def lb(method, path, body=None, headers=None):
    """One request through nginx: (status, headers, parsed body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", NGINX_PORT, timeout=30)
    try:
        hdrs = dict(headers or {})
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=raw, headers=hdrs)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        rh = {k.lower(): v for k, v in r.getheaders()}
    except OSError:
        return 0, {}, None
    finally:
        conn.close()
    try:
        return r.status, rh, json.loads(data)
    except ValueError:
        return r.status, rh, data


def setup_module():
    global PG, A, B
    if harness.PG:
        return
    PG = pgcluster.Cluster()
    PG.__enter__()
    A = harness.Harness("gw-a")
    B = harness.Harness("gw-b")
    # Their reset() and sql() speak to the shared database.
    A.db_uri = B.db_uri = PG.uri


def teardown_module():
    stop_nginx()
    for h in (A, B):
        if h is not None:
            h.db_uri = None  # the cluster goes as a whole
            h.close()
    if PG is not None:
        PG.destroy()


def rows(sql, params=()):
    return A.sql(sql, params)


# ------------------------------------------------------------------ tests

@skip_on_pg_pass
def test_cooldown_through_a_makes_b_skip_it():
    use_both()
    A.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "60"}}])
    st, _, body = A.chat("cool groq down through A")
    assert st == 200, body
    meta = body["data"]["meta"]
    assert meta["finalProvider"] == "sambanova", meta
    # The cooldown is in the shared store (written through, or by the
    # provider-state writer within moments).
    assert harness.wait_until(lambda: rows(
        "SELECT count(*) FROM provider_state WHERE provider = 'groq'"
        " AND cooldown_until_ms > ?", (harness.now_ms() + 30000,)) ==
        [(1,)], 10), rows("SELECT * FROM provider_state")
    # B's processes read the shared state at most RF_PSTATE_READ_MS apart
    # (include/pstate.h): from then on, every one of them must skip groq.
    harness.settle()
    calls = len(A.mock_calls("groq"))
    st, _, body = B.chat("B must skip groq")
    assert st == 200, body
    meta = body["data"]["meta"]
    assert meta["finalProvider"] == "sambanova", meta
    att = meta["attempts"]
    assert att[0]["provider"] == "groq" and att[0]["outcome"] == "skipped" \
        and att[0].get("reason") == "cooling_down", att
    assert len(A.mock_calls("groq")) == calls, "B called groq while cooling"


@skip_on_pg_pass
def test_rate_limit_counts_requests_at_both():
    limit = 6
    use_both({"RELAYFORGE_RATE_LIMIT": str(limit)})
    # Fixed one-minute windows: start early in a minute, so all requests
    # fall in one (a wall-clock guard, not a timed assertion).
    while time.time() % 60 > 45:
        time.sleep(1)
    got = []
    for i in range(limit + 4):
        h = A if i % 2 == 0 else B   # alternate, straight to each machine
        st, hd, body = h.chat("rate %d" % i)
        got.append(st)
    assert got.count(200) == limit and got.count(429) == 4, got
    assert got[:limit] == [200] * limit, got
    # Through the load balancer too: still refused, on whichever machine.
    st, hd, body = lb("POST", "/api/v1/chat", {"prompt": "via nginx"})
    assert st == 429, (st, body)
    assert rows("SELECT sum(count) FROM rate_limit") == [(limit + 5,)]


@skip_on_pg_pass
def test_logs_and_usage_on_either_show_both_nodes():
    use_both()
    tag = uuid.uuid4().hex[:8]
    for i in range(10):
        st, _, body = lb("POST", "/api/v1/chat",
                         {"prompt": "spread %d" % i,
                          "metadata": {"source": "lb-" + tag}})
        assert st == 200, body
    assert harness.wait_until(lambda: rows(
        "SELECT count(*) FROM requests WHERE source = ?", ("lb-" + tag,)) ==
        [(10,)], 15)
    by_node = dict(rows("SELECT node, count(*) FROM requests WHERE"
                        " source = ? GROUP BY node", ("lb-" + tag,)))
    assert set(by_node) == {"gw-a", "gw-b"}, by_node  # nginx spread them
    total = rows("SELECT count(*) FROM requests")[0][0]
    for h in (A, B):
        st, _, body = h.get("/api/v1/logs?limit=200")
        assert st == 200, body
        items = [it for it in body["data"]["items"]
                 if it.get("source") == "lb-" + tag]
        assert len(items) == 10, items
        seen = {}
        for it in items:
            seen[it["node"]] = seen.get(it["node"], 0) + 1
        assert seen == by_node, (seen, by_node)
        st, _, body = h.get("/api/v1/usage?window=1h")
        assert st == 200, body
        assert body["data"]["totals"]["requests"] == total, body["data"]


@skip_on_pg_pass
def test_two_gateways_four_clients_hundred_requests_800_rows():
    use_both()
    before = rows("SELECT count(*) FROM requests")[0][0]
    tag = uuid.uuid4().hex[:8]
    acked, bad = [], []
    lock = threading.Lock()

    def client(h, k):
        for i in range(100):
            rid = "%s-%s-%d-%d" % (tag, h.label, k, i)
            try:
                st, hd, body = h.request("POST", "/api/v1/chat",
                                         {"prompt": "load %d" % i},
                                         {"X-Request-Id": rid}, record=False)
            except OSError as e:
                st, hd = 0, {"error": str(e)}
            with lock:
                (acked if st == 200 and hd.get("x-request-id") == rid
                 else bad).append((rid, st))

    threads = [threading.Thread(target=client, args=(h, k))
               for h in (A, B) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not bad, "%d requests failed, e.g. %s" % (len(bad), bad[:3])
    assert len(acked) == 800
    harness.wait_until(lambda: rows(
        "SELECT count(*) FROM requests WHERE request_id LIKE ?",
        (tag + "-%",))[0][0] >= 800, 60)
    assert rows("SELECT count(*) FROM requests WHERE request_id LIKE ?",
                (tag + "-%",)) == [(800,)]
    assert rows("SELECT count(DISTINCT request_id) FROM requests WHERE"
                " request_id LIKE ?", (tag + "-%",)) == [(800,)]
    assert dict(rows("SELECT node, count(*) FROM requests WHERE request_id"
                     " LIKE ? GROUP BY node", (tag + "-%",))) == \
        {"gw-a": 400, "gw-b": 400}
    assert rows("SELECT count(*) FROM requests")[0][0] == before + 800


def named_queries():
    out, name, lines = {}, None, []
    with open(QUERIES) as f:
        for ln in f:
            if ln.startswith("-- name:"):
                if name:
                    out[name] = "".join(lines)
                name, lines = ln.split(":", 1)[1].strip(), []
            elif name:
                lines.append(ln)
    if name:
        out[name] = "".join(lines)
    return out


@skip_on_pg_pass
def test_operator_queries_for_psql():
    use_both()
    for i in range(4):  # rows of both machines in the last hour
        res = lb("POST", "/api/v1/chat", {"prompt": "q %d" % i})
        assert res[0] == 200, res
    assert harness.wait_until(lambda: len(rows(
        "SELECT DISTINCT node FROM requests")) == 2, 15)
    q = named_queries()
    assert set(q) == {"recent_failures", "fallback_rate_per_provider_per_hour",
                      "slowest_requests", "providers_in_cooldown",
                      "tokens_per_day", "requests_per_source",
                      "requests_per_node"}, set(q)
    for name, sql in q.items():
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", PG.uri, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and not p.stderr, (name, p.stderr)
    per_node = harness.psql_rows(PG.uri, q["requests_per_node"].rstrip()
                                 .rstrip(";"))
    assert {r["node"] for r in per_node} >= {"gw-a", "gw-b"}, per_node
    # The whole file in one go, as the docs show.
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                        PG.uri, "-f", QUERIES], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr, p.stderr


@skip_on_pg_pass
def test_zz_password_never_shown():
    seen = "\n".join(A.seen + B.seen)
    for h in (A, B):
        for path in ("/api/v1/health", "/api/v1/logs?limit=5"):
            st, _, body = h.get(path)
            seen += json.dumps(body)
    log = A.errorlog() + B.errorlog()
    assert pgcluster.PASSWORD not in seen
    assert pgcluster.PASSWORD not in log
