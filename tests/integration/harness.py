"""Integration harness: a real lighttpd with the shipped config, two
responder processes, the scriptable mock upstream and a private SQLite file.

One Harness per test module:

    H = harness.Harness("chat")
    H.use({"GROQ_API_KEY": harness.KEYS["groq"]})   # (re)start if needed, reset
    status, headers, body = H.post("/api/v1/chat", {"prompt": "hi"})

Config dicts are merged over Harness.base_config() (a value of None removes
a key) and written to the RELAYFORGE_CONFIG file; lighttpd is restarted only
when the merged config changes.  lighttpd runs with a scrubbed environment
(PATH only), so the config file is the responder's only source of settings.
Everything a test receives from the server is kept in H.seen for the
"keys never leak" checks.  Python 3 standard library only.

The store: a private SQLite file by default.  With RF_TEST_STORE=pg (and
RF_TEST_PG_ADMIN, a superuser URI of a throw-away cluster: tests/run.sh
sets both through tests/pgcluster.py) each Harness gets a database of its
own on that PostgreSQL instead, and H.sql() / H.request_row() & co. ask it
through psql; tests that are about the SQLite file itself are marked
@sqlite_only and skipped there.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lighttpd_proc  # noqa: E402  (tests/lighttpd_proc.py)
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(ROOT, "deploy", "lighttpd-run.conf.in")
MOCK = os.path.join(ROOT, "tests", "mock_upstream.py")

PROVIDERS = ["groq", "sambanova", "cerebras", "gemini", "openrouter"]
KEYS = {
    "groq": "test-key-groq-SECRET1",
    "sambanova": "test-key-sambanova-SECRET2",
    "cerebras": "test-key-cerebras-SECRET3",
    "gemini": "test-key-gemini-SECRET4",
    "openrouter": "test-key-openrouter-SECRET5",
}
STORE = os.environ.get("RF_TEST_STORE", "sqlite")
PG = STORE == "pg"


class Skip(Exception):
    """A test that does not apply to this run (tests/integration/runner.py
    reports it as skipped)."""


def sqlite_only(fn):
    """A test about the SQLite file itself: skipped on a PostgreSQL run."""
    def wrapper(*a, **kw):
        if PG:
            raise Skip("about the SQLite file")
        return fn(*a, **kw)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def pg_uri_with_db(uri, db):
    """The same server and credentials, another database."""
    u = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query,
                                    u.fragment))


def psql_rows(uri, query, params=()):
    """Run one statement through psql: a SELECT (or anything returning
    rows) gives a list of dicts (JSON types: numbers, strings, None),
    anything else []."""
    q = query
    for p in params:  # "?" placeholders, as sqlite3 takes them
        lit = "NULL" if p is None else (
            str(int(p)) if isinstance(p, (bool, int)) else
            "'" + str(p).replace("'", "''") + "'")
        q = q.replace("?", lit, 1)
    code = "\n".join(ln for ln in q.splitlines()
                     if not ln.lstrip().startswith("--"))
    head = code.lstrip().split(None, 1)[0].upper() if code.strip() else ""
    rows = head in ("SELECT", "WITH", "VALUES") or " RETURNING " in \
        q.upper()
    if rows:
        q = "SELECT coalesce(json_agg(t), '[]') FROM (%s) t" % code
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-d", uri, "-c", q],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("psql: %s" % p.stderr.strip()[-800:])
    return json.loads(p.stdout) if rows else []


ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def binary():
    return os.path.abspath(os.environ.get("BIN") or
                           os.path.join(ROOT, "cgi-bin", "relayforge.fcgi"))


def key_config(*providers):
    """{"GROQ_API_KEY": KEYS["groq"], ...} for the given provider ids."""
    return {"%s_API_KEY" % p.upper(): KEYS[p] for p in providers}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# Each responder process decides from a snapshot of the providers' state
# that may be RF_PSTATE_READ_MS (include/pstate.h) old: a cooldown or
# streak another process wrote, or one deleted here, counts in every
# process once that much time has passed.  Read from the header, so the
# wait follows the constant.
def _pstate_read_ms():
    with open(os.path.join(ROOT, "include", "pstate.h")) as f:
        m = re.search(r"#define RF_PSTATE_READ_MS (\d+)", f.read())
    return int(m.group(1))


PSTATE_READ_MS = _pstate_read_ms()


# How long the provider-state writers get to land a request's writes.
WRITER_SETTLE_S = 0.1


def settle():
    """Wait until every responder process has read the providers' state
    written (or deleted) by another process before now."""
    time.sleep((PSTATE_READ_MS + 50) / 1000.0)


def now_ms():
    return int(time.time() * 1000)


def wait_until(fn, timeout=5.0, interval=0.05):
    """Poll fn() until it returns a true value; return the last value."""
    end = time.monotonic() + timeout
    while True:
        val = fn()
        if val or time.monotonic() >= end:
            return val
        time.sleep(interval)


class StreamResult(list):
    """The events of one /stream answer: (t, event, data) tuples, t in
    seconds since the request was sent.  Also .status, .headers, .body
    (parsed JSON for non-SSE answers), .comments, .closed_at (monotonic time
    when the client closed the socket early, else None), .eof (the server
    ended the response)."""

    status = 0
    headers = None
    body = None
    closed_at = None
    eof = False
    timed_out = False

    def events(self, name):
        return [d for (_, e, d) in self if e == name]

    def tokens(self):
        return [d.get("text") for (_, e, d) in self if e == "token"]

    def text(self):
        return "".join(self.tokens())

    def metas(self, phase=None):
        return [d for (_, e, d) in self if e == "meta" and
                (phase is None or d.get("phase") == phase)]

    def names(self):
        return [e for (_, e, _) in self]


class Harness:
    def __init__(self, label):
        self.label = label
        self.tmp = tempfile.mkdtemp(prefix="rf-it-%s-" % label)
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)
        self.db_path = os.path.join(self.tmp, "relayforge.db")
        self.db_uri = None
        self.pg_db = None
        if PG:
            # A database of this harness's own on the run's cluster.
            admin = os.environ["RF_TEST_PG_ADMIN"]
            self.pg_db = "rf_%s_%s" % (re.sub(r"[^a-z0-9]", "_",
                                              label.lower())[:20],
                                       uuid.uuid4().hex[:8])
            psql_rows(admin, "CREATE DATABASE %s OWNER rf" % self.pg_db)
            self.db_uri = pg_uri_with_db(os.environ["RF_TEST_PG_URI"],
                                         self.pg_db)
        self.conf_path = os.path.join(self.tmp, "relayforge.conf")
        self.lconf_path = os.path.join(self.run_dir, "lighttpd.conf")
        self.log_path = os.path.join(self.run_dir, "error.log")
        self.bin = binary()
        self.port = free_port()
        self.lighttpd = None
        self.children = []
        self.config = None
        self.log_mark = 0
        self.seen = []
        self.mock = None
        self.mock_port = None
        self.start_mock()

    # ------------------------------------------------------------ mock

    def start_mock(self):
        self.mock = subprocess.Popen(
            [sys.executable, MOCK, "--port", "0"], stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.tmp, "mock.err"), "ab"))
        line = self.mock.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError("mock upstream did not start: %r" % line)
        self.mock_port = int(line.split()[1])

    def mock_url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.mock_port, name)

    def _mock_req(self, method, path, obj=None):
        data = None if obj is None else json.dumps(obj).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.mock_port, path), data=data,
            method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def mock_script(self, name, behaviours):
        return self._mock_req("POST", "/_script/" + name, list(behaviours))

    def mock_default(self, name, behaviour):
        return self._mock_req("POST", "/_default/" + name, behaviour)

    def mock_calls(self, name):
        return self._mock_req("GET", "/_calls/" + name)

    def mock_reset(self):
        return self._mock_req("POST", "/_reset", {})

    # ------------------------------------------------------------ config

    def base_config(self):
        cfg = {
            "RELAYFORGE_DB": self.db_uri or self.db_path,
            "RELAYFORGE_MOCK_DELAY_MS": "1",
            "RELAYFORGE_RATE_LIMIT": "0",
        }
        if self.db_uri:  # a URI has no directory to put the spool beside
            cfg["RELAYFORGE_SPOOL_DIR"] = os.path.join(self.tmp, "spool")
        # Every provider points at the mock, keyed or not: nothing here may
        # ever reach the internet.
        for p in PROVIDERS:
            cfg["RELAYFORGE_%s_URL" % p.upper()] = self.mock_url(p)
        return cfg

    def merged(self, overrides):
        cfg = self.base_config()
        for k, v in (overrides or {}).items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = str(v)
        return cfg

    def write_config(self, cfg):
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/integration/harness.py\n")
            for k in sorted(cfg):
                f.write("%s=%s\n" % (k, cfg[k]))

    def render(self, procs=2):
        with open(TEMPLATE) as f:
            text = f.read()
        subst = {"@PORT@": str(self.port), "@ROOT@": ROOT,
                 "@WEB@": os.path.join(ROOT, "web"), "@BIN@": self.bin,
                 "@RUN@": self.run_dir, "@CONFIG@": self.conf_path,
                 "@PROCS@": str(procs)}
        for k, v in subst.items():
            text = text.replace(k, v)
        left = re.findall(r"@[A-Z]+@", text)
        if left:
            raise RuntimeError("unrendered placeholders: %s" % left)
        with open(self.lconf_path, "w") as f:
            f.write(text)

    # ------------------------------------------------------------ lighttpd

    def use(self, overrides=None):
        """Make sure lighttpd runs with this config, then reset state."""
        cfg = self.merged(overrides)
        if cfg != self.config or not self.running():
            self.restart(overrides)
        self.reset()

    def running(self):
        return self.lighttpd is not None and self.lighttpd.poll() is None

    def restart(self, overrides=None):
        self.stop_lighttpd()
        cfg = self.merged(overrides)
        self.write_config(cfg)
        self.config = cfg
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError("responder binary missing: %s" % self.bin)
        for attempt in range(3):
            self.render()
            self.log_mark = self.log_size()
            log = open(self.log_path, "ab")
            # Scrubbed environment: bin-copy-environment must find nothing
            # but PATH, so the config file is the only source of settings.
            self.lighttpd = subprocess.Popen(
                ["lighttpd", "-D", "-f", self.lconf_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            log.close()
            if self.wait_ready():
                self.children = self.child_pids()
                return
            tail = self.errorlog(self.log_mark)
            self.stop_lighttpd()
            if "Address already in use" in tail:
                self.port = free_port()
                continue
            raise RuntimeError("lighttpd did not come up:\n" + tail[-3000:])
        raise RuntimeError("lighttpd: no free port")

    def wait_ready(self, timeout=20.0):
        """True once /api/v1/health answers from the responder (any status
        whose body is our JSON shape)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.lighttpd.poll() is not None:
                return False
            # Only once our lighttpd has bound the port: another server
            # on a reused port must not pass for ours.
            log = self.errorlog(self.log_mark)
            if "server started" not in log:
                time.sleep(0.02)
                continue
            # lighttpd outlives responders that refuse to start (and keeps
            # respawning them): give up at once.
            if "are down" in log or "configuration error" in log:
                return False
            try:
                status, _, body = self.request("GET", "/api/v1/health",
                                               timeout=5, record=False)
                if isinstance(body, dict) and "success" in body:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        return False

    def child_pids(self):
        """The responder processes lighttpd spawned (by parent pid)."""
        return lighttpd_proc.child_pids(self.lighttpd.pid) if self.lighttpd else []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.lighttpd.pid:
                pids.append(int(d))
        return pids

    def procs_connected_to_mock(self):
        """How many responder processes hold a TCP connection to the mock
        (curl keeps them open between requests): a way to see that a burst
        of requests reached both processes."""
        inodes = set()
        port_hex = ":%04X" % self.mock_port
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if len(cols) > 9 and cols[2].endswith(port_hex) and \
                        cols[3] == "01":  # ESTABLISHED, remote = mock
                    inodes.add(cols[9])
        n = 0
        for pid in self.child_pids():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    n += 1
                    break
        return n

    def stop_lighttpd(self):
        if self.lighttpd is None:
            return
        lighttpd_proc.stop(self.lighttpd, self.child_pids() or self.children,
                           timeout=10)
        self.lighttpd = None
        self.children = []

    def close(self):
        self.stop_lighttpd()
        if self.mock and self.mock.poll() is None:
            self.mock.terminate()
            try:
                self.mock.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.mock.kill()
        self.mock = None
        if self.pg_db:
            try:
                psql_rows(os.environ["RF_TEST_PG_ADMIN"],
                          "DROP DATABASE IF EXISTS %s WITH (FORCE)" %
                          self.pg_db)
            except RuntimeError:
                pass
            self.pg_db = None
        if os.environ.get("RF_KEEP_TMP"):
            print("kept %s" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sanitizer_reports(self):
        """ASan / LSan / UBSan reports the responders wrote to stderr (they
        appear at exit for leaks: stop lighttpd first).  Empty for builds
        without sanitizers."""
        out = []
        lines = self.errorlog().splitlines()
        for i, ln in enumerate(lines):
            if re.search(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                         r"runtime error:", ln):
                # The headline, then the first frames in our own sources.
                ours = [x.strip() for x in lines[i + 1:i + 40]
                        if " src/" in x or "tests/" in x][:3]
                out.append("\n".join([ln.strip()] + ours))
        return out

    # ------------------------------------------------------------ state

    def reset(self):
        """Between tests: forget mock scripts and calls, cooldowns and
        rate-limit counters."""
        self.mock_reset()
        held = False
        # The loops write the provider state through each process's
        # background writer (never on a request's path): give the last
        # test's writes their few milliseconds to land before deleting,
        # or one would land after it and carry a streak into this test.
        time.sleep(WRITER_SETTLE_S)
        for table in ("provider_state", "rate_limit"):
            try:
                # A process may decide from a deleted cooldown until its
                # snapshot is read again (a stale streak only costs a
                # success's write: a failure's count is the store's).
                if table == "provider_state":
                    held = self.sql(
                        "SELECT count(*) FROM provider_state WHERE"
                        " cooldown_until_ms > ?", (now_ms(),))[0][0] > 0
                self.sql("DELETE FROM %s" % table)
            except (sqlite3.OperationalError, RuntimeError) as e:
                # A responder that could not open its store made no tables.
                if "no such table" not in str(e) and \
                        "does not exist" not in str(e):
                    raise
        # A write still on its way (a loaded machine, the sanitizers)
        # lands after the delete: delete it again once it is there.
        for _ in range(10):
            time.sleep(WRITER_SETTLE_S / 2)
            try:
                left = self.sql("SELECT count(*) FROM provider_state")[0][0]
            except (sqlite3.OperationalError, RuntimeError):
                break
            if left == 0:
                break
            held = True
            self.sql("DELETE FROM provider_state")
        if held:
            settle()

    def sql(self, query, params=()):
        """Run one statement on the test store; rows as tuples (the
        store-neutral query helper: SQLite through sqlite3, PostgreSQL
        through psql)."""
        if self.db_uri:
            return [tuple(r.values()) for r in
                    psql_rows(self.db_uri, query, params)]
        con = sqlite3.connect(self.db_path, timeout=15)
        try:
            cur = con.execute(query, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    sqlite = sql

    def dict_rows(self, query, params=()):
        """Rows as dicts, from either store."""
        if self.db_uri:
            return psql_rows(self.db_uri, query, params)
        con = sqlite3.connect(self.db_path, timeout=15)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(query, params)]
        finally:
            con.close()

    def store_bytes(self):
        """Everything the store holds, as bytes, for "never stored"
        checks: the SQLite file and its WAL, or every table of the
        PostgreSQL database dumped as text."""
        if self.db_uri:
            out = b""
            for t in ("requests", "attempts", "provider_state",
                      "rate_limit", "usage_minute", "usage_hour",
                      "spool_progress"):
                p = subprocess.run(["psql", "-X", "-q", "-d", self.db_uri,
                                    "-c", "COPY %s TO STDOUT" % t],
                                   capture_output=True, timeout=60)
                out += p.stdout
            return out
        db = b""
        for suffix in ("", "-wal", "-shm"):
            try:
                with open(self.db_path + suffix, "rb") as f:
                    db += f.read()
            except OSError:
                pass
        return db

    def locker(self):
        """Another session's write lock on the store until .release(): a
        sqlite3 connection in BEGIN EXCLUSIVE on the file, or a psql
        session holding EXCLUSIVE locks (reads pass, writes wait) on the
        PostgreSQL tables."""
        return (_PgLocker if self.db_uri else _SqliteLocker)(
            self.db_uri or self.db_path)

    def integrity_ok(self):
        """The store's own consistency check (SQLite's integrity_check;
        PostgreSQL keeps its own: the attempts' foreign key holds)."""
        if self.db_uri:
            return self.sql("SELECT count(*) FROM attempts a WHERE NOT"
                            " EXISTS (SELECT 1 FROM requests r"
                            " WHERE r.id = a.request_id)") == [(0,)]
        return self.sql("PRAGMA integrity_check") == [("ok",)]

    def count_requests(self):
        return self.sql("SELECT COUNT(*) FROM requests")[0][0]

    def request_row(self, request_id, timeout=5.0):
        """The requests row (as a dict) of one request id, waiting for the
        log write; None when it never appears."""
        return wait_until(lambda: self.dict_rows(
            "SELECT * FROM requests WHERE request_id=?", (request_id,)),
            timeout)

    def attempt_rows(self, rowid):
        return self.dict_rows(
            "SELECT * FROM attempts WHERE request_id=? ORDER BY seq",
            (rowid,))

    def provider_state(self, provider):
        # A loop's write reaches the store through the process's writer
        # thread, a few milliseconds after the answer.
        time.sleep(WRITER_SETTLE_S)
        rows = self.dict_rows("SELECT * FROM provider_state WHERE provider=?",
                              (provider,))
        return rows[0] if rows else None

    def errorlog(self, since=0):
        """lighttpd's and the responders' stderr (since a byte offset,
        e.g. self.log_mark = where the current lighttpd started)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    # ------------------------------------------------------------ HTTP

    def request(self, method, path, body=None, headers=None, timeout=30,
                record=True):
        """One HTTP/1.1 request on a fresh connection.
        Returns (status, headers with lower-case names, body) where body is
        parsed JSON when the answer is JSON, else text."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=raw, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            rh = {}
            for k, v in resp.getheaders():
                k = k.lower()
                rh[k] = v if k not in rh else rh[k] + ", " + v
            status = resp.status
        finally:
            conn.close()
        if record:
            self.seen.append(json.dumps(rh) + "\n" +
                             data.decode("utf-8", "replace"))
        text = data.decode("utf-8", "replace")
        parsed = text
        if "json" in rh.get("content-type", ""):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
        return status, rh, parsed

    def post(self, path, body=None, headers=None, timeout=30):
        return self.request("POST", path, body, headers, timeout)

    def get(self, path, headers=None, timeout=30):
        return self.request("GET", path, None, headers, timeout)

    def chat(self, body, headers=None):
        """POST /api/v1/chat with a JSON body (a str prompt is wrapped)."""
        if isinstance(body, str):
            body = {"prompt": body}
        return self.post("/api/v1/chat", body, headers)

    def stream(self, path, body, headers=None, max_seconds=30,
               close_after_tokens=None):
        """POST and read the answer from a raw socket, line by line, so the
        arrival time of each event is real.  Decodes chunked transfer
        coding.  close_after_tokens=n closes the socket after n token
        events (a client that goes away)."""
        if isinstance(body, str):
            body = {"prompt": body}
        raw = json.dumps(body).encode() if not isinstance(body, bytes) \
            else body
        hdrs = {"Host": "127.0.0.1:%d" % self.port,
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
                "Content-Length": str(len(raw)), "Connection": "close"}
        hdrs.update(headers or {})
        head = "POST %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        res = StreamResult()
        res.comments = []
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t0 = time.monotonic()
        deadline = t0 + max_seconds
        reader = _Reader(sock, deadline)
        try:
            sock.sendall(head.encode() + raw)
            status_line = reader.line()
            if not status_line:
                raise ConnectionError("stream: no HTTP response")
            res.status = int(status_line.split()[1])
            res.headers = {}
            while True:
                ln = reader.line()
                if ln in ("", "\r\n", "\n") or ln is None:
                    break
                k, _, v = ln.partition(":")
                res.headers[k.strip().lower()] = v.strip()
            reader.body_mode(res.headers)
            if "text/event-stream" not in res.headers.get("content-type", ""):
                data = reader.rest()
                text = data.decode("utf-8", "replace")
                self.seen.append(json.dumps(res.headers) + "\n" + text)
                try:
                    res.body = json.loads(text)
                except ValueError:
                    res.body = text
                return res
            self._read_events(reader, res, t0, close_after_tokens, sock)
        except TimeoutError:
            res.timed_out = True
        finally:
            sock.close()
            self.seen.append(json.dumps(res.headers) + "\n" +
                             json.dumps([list(e) for e in res]))
        return res

    def _read_events(self, reader, res, t0, close_after_tokens, sock):
        event, data = None, []
        ntok = 0
        while True:
            ln = reader.body_line()
            if ln is None:
                res.eof = reader.eof
                return
            ln = ln.rstrip("\r\n")
            if ln == "":
                if data:
                    payload = "\n".join(data)
                    try:
                        obj = json.loads(payload)
                    except ValueError:
                        obj = {"_raw": payload}
                    ev = event or "message"
                    res.append((time.monotonic() - t0, ev, obj))
                    if ev == "token":
                        ntok += 1
                        if close_after_tokens and ntok >= close_after_tokens:
                            sock.close()
                            res.closed_at = time.monotonic()
                            return
                    if ev == "done":
                        # done is always last: read on to see the end.
                        pass
                event, data = None, []
            elif ln.startswith(":"):
                res.comments.append((time.monotonic() - t0, ln[1:].strip()))
            elif ln.startswith("event:"):
                event = ln[6:].strip()
            elif ln.startswith("data:"):
                v = ln[5:]
                data.append(v[1:] if v.startswith(" ") else v)


alive = lighttpd_proc.alive


class _SqliteLocker:
    def __init__(self, path):
        self.con = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.con.execute("BEGIN EXCLUSIVE")

    def release(self):
        if self.con is not None:
            self.con.execute("ROLLBACK")
            self.con.close()
            self.con = None


class _PgLocker:
    TABLES = "requests, attempts, provider_state, rate_limit, spool_progress"

    def __init__(self, uri):
        self.uri = uri
        self.app = "rf-locker-%s" % uuid.uuid4().hex[:8]
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-d", uri, "-c",
             "BEGIN; LOCK TABLE %s IN EXCLUSIVE MODE;"
             " SELECT pg_sleep(600)" % self.TABLES],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, PGAPPNAME=self.app))
        held = wait_until(lambda: psql_rows(
            uri, "SELECT count(*) AS n FROM pg_locks WHERE granted AND"
            " mode = 'ExclusiveLock' AND relation = 'requests'::regclass")
            [0]["n"] > 0, 15)
        if not held:
            self.release()
            raise RuntimeError("the PostgreSQL lock was not taken")

    def release(self):
        if self.proc is not None:
            # The server would sleep on with the locks: end its session.
            psql_rows(self.uri, "SELECT pg_terminate_backend(pid) FROM"
                      " pg_stat_activity WHERE application_name = '%s'"
                      % self.app)
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class _Reader:
    """Incremental HTTP response reader over a socket: header lines, then a
    body that is chunked, length-delimited or read to EOF.  Returns lines as
    soon as they are complete (no read-ahead waits)."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""       # raw bytes not yet consumed
        self.body = b""      # decoded body bytes not yet consumed
        self.mode = "eof"
        self.left = 0        # bytes left: in this chunk, or of the length
        self.eof = False
        self.done = False

    def _recv(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("stream: max_seconds passed")
        self.sock.settimeout(min(left, 5.0))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return None
        if not d:
            self.eof = True
        return d

    def line(self):
        """A raw header line (with its line end), or None at EOF."""
        while b"\n" not in self.buf:
            d = self._recv()
            if d is None:
                continue
            if not d:
                return None
            self.buf += d
        i = self.buf.index(b"\n") + 1
        ln, self.buf = self.buf[:i], self.buf[i:]
        return ln.decode("utf-8", "replace")

    def body_mode(self, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in headers:
            self.mode = "length"
            self.left = int(headers["content-length"])
        else:
            self.mode = "eof"

    def _more_body(self):
        """Move decoded body bytes from buf to body; False at the end."""
        while True:
            if self.done:
                return False
            if self.mode == "length":
                if self.left == 0:
                    self.done = True
                    return False
                if self.buf:
                    take = self.buf[:self.left]
                    self.buf = self.buf[len(take):]
                    self.left -= len(take)
                    self.body += take
                    return True
            elif self.mode == "eof":
                if self.buf:
                    self.body += self.buf
                    self.buf = b""
                    return True
                if self.eof:
                    self.done = True
                    return False
            else:
                got = self._chunk_step()
                if got is not None:
                    return got
            d = self._recv()
            if d is None:
                continue
            if not d:
                if self.mode != "eof":
                    self.done = True
                    return False
                continue
            self.buf += d

    def _chunk_step(self):
        """One step of chunked decoding on buf; None = need more bytes."""
        if self.left > 0:
            if not self.buf:
                return None
            take = self.buf[:self.left]
            self.buf = self.buf[len(take):]
            self.left -= len(take)
            self.body += take
            if self.left == 0:
                self.left = -2  # expect the CRLF after the chunk
            return True
        if self.left == -2:
            if len(self.buf) < 2:
                return None
            self.buf = self.buf[2:]
            self.left = 0
        if b"\r\n" not in self.buf:
            return None
        i = self.buf.index(b"\r\n")
        size = int(self.buf[:i].split(b";")[0].strip() or b"0", 16)
        self.buf = self.buf[i + 2:]
        if size == 0:
            self.done = True
            return False
        self.left = size
        return self._chunk_step() if self.buf else None

    def body_line(self):
        while b"\n" not in self.body:
            if not self._more_body():
                if self.body:
                    ln, self.body = self.body, b""
                    return ln.decode("utf-8", "replace")
                return None
        i = self.body.index(b"\n") + 1
        ln, self.body = self.body[:i], self.body[i:]
        return ln.decode("utf-8", "replace")

    def rest(self):
        while self._more_body():
            pass
        out, self.body = self.body, b""
        return out
