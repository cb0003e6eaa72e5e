#!/usr/bin/env python3
"""End-to-end tests of every shipped deployment (deploy/, cgi-bin/.htaccess).

    python3 tests/deploy/run.py [-k PATTERN] [-v]

Each setup starts the real server from Debian's packages on a loopback port,
as root, in its own temp dir, with the shipped file templated only for paths
(and ports, which live in the few lines of main server config written here
around the shipped file), then checks:

  chat      a chat answers (built-in mock, demoMode true)
  auth      RELAYFORGE_API_TOKEN is set: no or a wrong Authorization is 401,
            the right one 200 (so the header reaches the responder)
  share     two responder processes serve and write one SQLite store
            (N requests -> N rows; logs and status agree when present)
  hangup    a client that closes the socket after 2 tokens leaves the
            server serving; the log row says client_closed
  bodylimit a 200 kB body gets the responder's own JSON 413, not a web
            server error page
  env       (FastCGI) the responders' environment holds only what the
            config gives them: a key in the server's environment stays out
  deny      (.htaccess) the store, settings files and dotfiles are not served
  v1        the OpenAI-compatible surface is mounted: POST
            /v1/chat/completions answers a chat.completion, GET /v1/models
            lists the mock and /v1/models/{id} finds an id with '/' (and
            with it encoded as %2F where the server lets that through)
  stream    mock tokens 300 ms apart upstream arrive 300 ms apart at the
            client (run in the background while the cases above run)
  v1stream  the same through /v1/chat/completions: data: chunks spaced
            like the tokens, then [DONE]
  stop      stopping leaves no server and no responder process behind

Prints "ok <setup>.<case>" or "FAIL <setup>.<case>: <reason>" per case and a
last line "RESULT <passed> <failed>".  -k keeps the setups or cases whose
"<setup>.<case>" contains PATTERN; -v prints server logs on failure.
Python 3 standard library only; needs root (the servers drop to www-data).
"""

import argparse
import concurrent.futures
import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
TOKEN = "deploy-test-token-7c1e"
CANARY = "deploy-canary-SECRET-key-3b9f"
MOCK_DELAY_MS = 300
SETUP_LIMIT = 90          # seconds per setup, everything included
APACHE_MODS = "/usr/lib/apache2/modules"
PACKAGES = {              # command or file -> Debian package
    "lighttpd": "lighttpd",
    "apache2": "apache2",
    APACHE_MODS + "/mod_fcgid.so": "libapache2-mod-fcgid",
    "nginx": "nginx",
    "spawn-fcgi": "spawn-fcgi",
    "sqlite3": "sqlite3",
    "setpriv": "util-linux",
    "systemd-analyze": "systemd",
}

VERBOSE = False


class SetupTimeout(Exception):
    pass


def binary():
    return os.path.abspath(os.environ.get("BIN") or
                           os.path.join(ROOT, "cgi-bin", "relayforge.fcgi"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def have(thing):
    return os.path.exists(thing) if thing.startswith("/") \
        else shutil.which(thing) is not None


def install_missing(needed):
    """apt-get install the packages behind the missing tools (root only)."""
    missing = sorted({PACKAGES[t] for t in needed if not have(t)})
    if not missing or os.geteuid() != 0:
        return
    print("deploy: installing %s" % " ".join(missing), file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q",
                    "--no-install-recommends"] + missing, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def render(src, dst, paths, edit=None):
    """Copy a shipped file, replacing only paths (longest first)."""
    with open(src) as f:
        text = f.read()
    for old in sorted(paths, key=len, reverse=True):
        text = text.replace(old, paths[old])
    if edit:
        text = edit(text)
    with open(dst, "w") as f:
        f.write(text)
    return dst


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def mkdir(path, owner=None, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        u = pwd.getpwnam(owner)
        os.chown(path, u.pw_uid, u.pw_gid)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def proc_environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        raw = f.read().split(b"\0")
    env = {}
    for item in raw:
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode()] = v.decode("utf-8", "replace")
    return env


def syscw(pid):
    """write(2)-family calls of a process so far (0 when it is gone)."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until(fn, timeout=5.0, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        val = fn()
        if val or time.monotonic() >= end:
            return val
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP

class Stream:
    """POST /stream and read the SSE answer line by line, timestamping each
    event on arrival.  close_after=n closes the socket after n tokens."""

    def __init__(self, setup, request_id, close_after=None, max_s=30,
                 oai=False):
        self.setup = setup
        self.oai = oai          # /v1/chat/completions instead of /stream
        self.rid = request_id
        self.close_after = close_after
        self.max_s = max_s
        self.status = 0
        self.headers = {}
        self.events = []        # (t, event, data)
        self.error = None
        self.thread = None

    def tokens(self):
        if self.oai:
            return [(t, d["choices"][0]["delta"]["content"])
                    for (t, e, d) in self.events if d.get("choices") and
                    d["choices"][0].get("delta", {}).get("content")]
        return [(t, d.get("text")) for (t, e, d) in self.events
                if e == "token"]

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 -- reported by the case
            self.error = "%s: %s" % (type(e).__name__, e)

    def _run(self):
        s = self.setup
        body = json.dumps({"prompt": "deployment stream check",
                           "options": {"stream": True}})
        path = s.api("stream")
        if self.oai:
            body = json.dumps({"model": "auto", "stream": True, "messages": [
                {"role": "user", "content": "deployment stream check"}]})
            path = s.oai("chat/completions")
        conn = http.client.HTTPConnection("127.0.0.1", s.port,
                                          timeout=self.max_s)
        t0 = time.monotonic()
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Authorization": "Bearer " + TOKEN,
            "X-Request-Id": self.rid})
        resp = conn.getresponse()
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        if "text/event-stream" not in self.headers.get("content-type", ""):
            self.body = resp.read()
            conn.close()
            return
        event = "message"
        ntok = 0
        while time.monotonic() - t0 < self.max_s:
            line = resp.readline()
            if not line:
                break
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                try:
                    data = json.loads(line[5:].strip())
                except ValueError:
                    data = {"raw": line}
                self.events.append((time.monotonic() - t0, event, data))
                if event == "token":
                    ntok += 1
                if event == "done" or data == {"raw": "data: [DONE]"}:
                    break
                if self.close_after and ntok >= self.close_after:
                    # A client that goes away: FIN now, no more reading.
                    conn.sock.shutdown(socket.SHUT_RDWR)
                    break
            elif line == "":
                event = "message"
        resp.close()
        conn.close()


# ---------------------------------------------------------------- setups

class Setup:
    """One deployment: a temp tree, servers started from Debian's packages
    with the shipped config, and what it takes to stop them again."""

    name = "?"
    fastcgi = True          # long-running responders (vs CGI)
    env_allowed = None      # the responders' env keys, for the env case
    needs = []
    extra_cases = []
    db_user = "www-data"
    min_procs = 2           # FastCGI responder processes expected

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rf-deploy-%s-" % self.name)
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        self.procs = []         # (Popen, stop signal) of servers we started
        self.logs = []
        self.lib = os.path.join(self.tmp, "lib", "relayforge")
        self.bin = os.path.join(self.lib, "relayforge.fcgi")
        self.etc = os.path.join(self.tmp, "etc", "relayforge")
        self.conf = os.path.join(self.etc, "relayforge.conf")
        self.state = os.path.join(self.tmp, "var", "lib", "relayforge")
        self.db = os.path.join(self.state, "relayforge.db")
        self.run_dir = os.path.join(self.tmp, "run")
        self.log_dir = os.path.join(self.tmp, "log")
        mkdir(self.log_dir, "www-data", 0o755)

    # Paths of the shipped files -> this tree.
    def paths(self):
        return {
            "/usr/local/lib/relayforge": self.lib,
            "/etc/relayforge": self.etc,
            "/var/lib/relayforge": self.state,
            "/run/lighttpd": self.run_dir,
            "/run/relayforge": os.path.join(self.run_dir, "relayforge"),
        }

    def api(self, route):
        return "/api/v1/" + route

    def oai(self, route):
        """A path of the OpenAI-compatible surface."""
        return "/v1/" + route

    # Whether the server passes an encoded slash (%2F) in a path through.
    encoded_slash = True

    def server_env(self):
        """The environment the servers start with: PATH, plus a key that
        must never reach a responder (the env case looks for it)."""
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                        "/sbin:/bin",
                "LANG": "C.UTF-8",
                "GROQ_API_KEY": CANARY,
                "RELAYFORGE_GROQ_URL": "http://127.0.0.1:9/never"}

    def install_binary(self, path=None):
        path = path or self.bin
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(binary(), path)
        os.chmod(path, 0o755)

    def settings_text(self):
        """The shipped template, paths mapped, plus what the checks need."""
        dst = os.path.join(self.tmp, "relayforge.conf.rendered")
        render(os.path.join(DEPLOY, "relayforge.conf.example"), dst,
               self.paths())
        with open(dst) as f:
            text = f.read()
        return text + ("\n# tests/deploy\nRELAYFORGE_MOCK_DELAY_MS=%d\n"
                       "RELAYFORGE_API_TOKEN=%s\n" % (MOCK_DELAY_MS, TOKEN))

    def install_settings(self, path=None, owner_group="www-data",
                         state=None):
        path = path or self.conf
        mkdir(os.path.dirname(path), None, 0o755)
        write(path, self.settings_text(), 0o640)
        os.chown(path, 0, grp.getgrnam(owner_group).gr_gid)
        mkdir(state or self.state, self.db_user, 0o750)

    def spawn(self, argv, log, stop_sig=signal.SIGTERM, env=None, **kw):
        logf = open(os.path.join(self.log_dir, log), "ab")
        self.logs.append(os.path.join(self.log_dir, log))
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             env=env or self.server_env(), **kw)
        logf.close()
        self.procs.append((p, stop_sig))
        return p

    def wait_ready(self, timeout=15):
        last = ["no answer"]

        def up():
            for p, _ in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited with %s" % (
                        os.path.basename(p.args[0]), p.returncode))
            try:
                st, _, data = self.request("GET", self.api("health"),
                                           timeout=3)
                last[0] = "HTTP %d %r" % (st, data[:160])
                return st == 200
            except (OSError, http.client.HTTPException) as e:
                last[0] = repr(e)
                return False
        if not wait_until(up, timeout, 0.1):
            raise RuntimeError("no 200 from %s within %d s (last: %s)" %
                               (self.api("health"), timeout, last[0]))

    def responder_pids(self):
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                exe = os.readlink("/proc/%s/exe" % d)
            except OSError:
                continue
            if exe == self.bin and alive(int(d)):
                pids.append(int(d))
        return sorted(pids)

    def start(self):
        raise NotImplementedError

    def stop(self):
        """Stop what start() started; returns a list of problems."""
        problems = []
        for p, sig in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(sig)
        for p, _ in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                problems.append("%s ignored its stop signal" %
                                os.path.basename(p.args[0]))
                p.kill()
                p.wait()
        self.procs = []
        left = [] if wait_until(lambda: not self.responder_pids(), 10) \
            else self.responder_pids()
        if left:
            problems.append("responders left running: %s" % left)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return problems + self.sanitizer_reports()

    def sanitizer_reports(self):
        """The responders' stderr ends up in these logs; a sanitizer build
        (make check) reports there."""
        found = []
        for f in sorted(os.listdir(self.log_dir)):
            with open(os.path.join(self.log_dir, f), errors="replace") as fh:
                text = fh.read()
            if "Sanitizer" in text or ": runtime error:" in text:
                found.append("sanitizer report in log/" + f)
        return found

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP and SQL helpers

    def request(self, method, path, body=None, headers=None, timeout=15,
                auth=True):
        hdrs = {}
        if auth:
            hdrs["Authorization"] = "Bearer " + TOKEN
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def chat(self, rid=None, auth=True, headers=None):
        h = dict(headers or {})
        if rid:
            h["X-Request-Id"] = rid
        return self.request("POST", self.api("chat"),
                            {"prompt": "deployment check"}, h, auth=auth)

    def sql(self, query):
        """One value from the store, read as the store's owner: a root
        reader could leave root-owned -wal/-shm files behind."""
        u = pwd.getpwnam(self.db_user)
        out = subprocess.run(
            ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid,
             "--clear-groups", "sqlite3", "-batch", "-noheader",
             "-cmd", ".timeout 5000", self.db, query],
            capture_output=True, text=True, timeout=15)
        if out.returncode != 0:
            raise AssertionError("sqlite3: %s" % out.stderr.strip())
        return out.stdout.strip()

    def count(self, where):
        return int(self.sql("SELECT count(*) FROM requests WHERE %s;" %
                            where) or 0)

    def log_tail(self, n=15):
        out = []
        for path in self.logs + [os.path.join(self.log_dir, f)
                                 for f in sorted(os.listdir(self.log_dir))]:
            if path in out or not os.path.exists(path):
                continue
            out.append(path)
        text = ""
        for path in out:
            with open(path, errors="replace") as f:
                lines = f.readlines()[-n:]
            if lines:
                text += "--- %s\n%s" % (path, "".join(lines))
        return text


class LighttpdBase(Setup):
    needs = ["lighttpd", "sqlite3", "setpriv"]
    snippet = None

    def start(self):
        self.install_binary()
        self.install_settings()
        mkdir(self.run_dir, "www-data", 0o750)
        www = os.path.join(self.tmp, "www")
        write(os.path.join(www, "index.html"), "<p>static</p>\n")
        inc = render(os.path.join(DEPLOY, self.snippet),
                     os.path.join(self.tmp, self.snippet), self.paths())
        main = os.path.join(self.tmp, "lighttpd-main.conf")
        # The server's own lines (port, user, logs); the shipped file is
        # included as it is installed under /etc/lighttpd/conf-enabled/.
        write(main, """
server.bind          = "127.0.0.1"
server.port          = %(port)d
server.document-root = "%(www)s"
server.pid-file      = "%(run)s/lighttpd.pid"
server.errorlog      = "%(log)s/lighttpd-error.log"
server.username      = "www-data"
server.groupname     = "www-data"
server.modules       = ( "mod_access" )
include "%(inc)s"
""" % {"port": self.port, "www": www, "run": self.run_dir,
       "log": self.log_dir, "inc": inc})
        self.logs.append(os.path.join(self.log_dir, "lighttpd-error.log"))
        chk = subprocess.run(["lighttpd", "-tt", "-f", main],
                             capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("lighttpd -tt: " + (chk.stderr or chk.stdout))
        self.spawn(["lighttpd", "-D", "-f", main], "lighttpd.out")
        self.wait_ready()


class LighttpdFcgi(LighttpdBase):
    name = "lighttpd-fcgi"
    snippet = "lighttpd.conf"
    # lighttpd adds PHP_FCGI_CHILDREN to every bin-path process.
    env_allowed = {"PATH", "RELAYFORGE_CONFIG", "PHP_FCGI_CHILDREN"}


class LighttpdCgi(LighttpdBase):
    name = "lighttpd-cgi"
    snippet = "lighttpd-cgi.conf"
    fastcgi = False


APACHE_MAIN = """
ServerRoot "%(root)s"
ServerName 127.0.0.1
Listen 127.0.0.1:%(port)d
PidFile "%(root)s/run/httpd.pid"
DefaultRuntimeDir "%(root)s/run"
ErrorLog "%(log)s/apache-error.log"
LogLevel warn
User www-data
Group www-data
%(modules)s
TypesConfig /etc/mime.types
DocumentRoot "%(docroot)s"
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory "%(docroot)s">
	AllowOverride %(override)s
	Require all granted
</Directory>
%(extra)s
"""


class ApacheBase(Setup):
    needs = ["apache2", "sqlite3", "setpriv"]
    # reqtimeout: Debian enables it by default; the shipped files set it.
    modules = ["mpm_event", "authz_core", "mime", "alias", "dir", "env",
               "reqtimeout"]
    override = "None"

    def apache_conf(self, docroot, extra):
        root = os.path.join(self.tmp, "apache")
        mkdir(os.path.join(root, "run"), None, 0o755)
        mkdir(os.path.join(root, "fcgid"), "www-data", 0o755)
        mods = "\n".join('LoadModule %s_module "%s/mod_%s.so"' %
                         (m, APACHE_MODS, m) for m in self.modules)
        conf = os.path.join(root, "httpd.conf")
        write(conf, APACHE_MAIN % {
            "root": root, "port": self.port, "log": self.log_dir,
            "modules": mods, "docroot": docroot, "override": self.override,
            "extra": extra})
        self.logs.append(os.path.join(self.log_dir, "apache-error.log"))
        return root, conf

    def run_apache(self, root, conf):
        chk = subprocess.run(["apache2", "-t", "-f", conf, "-d", root],
                             capture_output=True, text=True,
                             env=self.server_env())
        if chk.returncode != 0:
            raise RuntimeError("apache2 -t: " + chk.stderr.strip())
        self.spawn(["apache2", "-f", conf, "-d", root, "-DFOREGROUND"],
                   "apache.out")
        self.wait_ready()

    def fcgid_dirs(self, root):
        return ('FcgidIPCDir "%s/fcgid"\n'
                'FcgidProcessTableFile "%s/fcgid/shm"\n' % (root, root))


class ApacheFcgid(ApacheBase):
    name = "apache-fcgid"
    needs = ApacheBase.needs + [APACHE_MODS + "/mod_fcgid.so"]
    modules = ApacheBase.modules + ["fcgid"]
    env_allowed = {"PATH", "RELAYFORGE_CONFIG"}

    def start(self):
        self.install_binary()
        self.install_settings()
        www = os.path.join(self.tmp, "www")
        write(os.path.join(www, "index.html"), "<p>static</p>\n")
        root = os.path.join(self.tmp, "apache")
        inc = render(os.path.join(DEPLOY, "apache-relayforge.conf"),
                     os.path.join(self.tmp, "apache-relayforge.conf"),
                     self.paths())
        root, conf = self.apache_conf(
            www, self.fcgid_dirs(root) + 'Include "%s"\n' % inc)
        self.run_apache(root, conf)


class HtaccessBase(ApacheBase):
    """Shared hosting: the binary and cgi-bin/.htaccess in the document
    root of a user whose home is /home/USER; AllowOverride All."""

    fastcgi = False
    override = "All"
    extra_cases = ["deny"]
    fcgid_block = False

    def paths(self):
        p = Setup.paths(self)
        p["/home/USER"] = os.path.join(self.tmp, "home")
        # The template's RELAYFORGE_DB line, as the .htaccess text asks.
        p["/var/lib/relayforge"] = os.path.join(self.tmp, "home",
                                                "relayforge")
        return p

    def api(self, route):
        return "/cgi-bin/relayforge.fcgi/api/v1/" + route

    def oai(self, route):
        return "/cgi-bin/relayforge.fcgi/v1/" + route

    # AllowEncodedSlashes is server config, which .htaccess cannot set.
    encoded_slash = False

    def start(self):
        home = os.path.join(self.tmp, "home")
        docroot = os.path.join(home, "public_html")
        cgi = os.path.join(docroot, "cgi-bin")
        self.bin = os.path.join(cgi, "relayforge.fcgi")
        self.state = os.path.join(home, "relayforge")
        self.db = os.path.join(self.state, "relayforge.db")
        self.conf = os.path.join(self.state, "relayforge.conf")
        mkdir(cgi, None, 0o755)
        self.install_binary()
        self.install_settings()

        def enable_fcgid(text):
            return text.replace("#fcgid ", "") if self.fcgid_block else text
        render(os.path.join(ROOT, "cgi-bin", ".htaccess"),
               os.path.join(cgi, ".htaccess"), self.paths(), enable_fcgid)
        # What must never be served from there.
        for f in ("leak.db", "relayforge.db-wal", "site.conf", ".secret",
                  "notes~"):
            write(os.path.join(cgi, f), "secret\n")
        root = os.path.join(self.tmp, "apache")
        root, conf = self.apache_conf(docroot, self.host_settings(root))
        self.run_apache(root, conf)

    def host_settings(self, root):
        return ""


class ApacheCgi(HtaccessBase):
    name = "apache-cgi"
    modules = ApacheBase.modules + ["cgid"]

    def host_settings(self, root):
        return 'ScriptSock "%s/run/cgisock"\n' % root


class HtaccessFcgid(HtaccessBase):
    """The .htaccess with its mod_fcgid block enabled, on a host whose
    server config has the settings the block's comment asks for."""

    name = "htaccess-fcgid"
    needs = ApacheBase.needs + [APACHE_MODS + "/mod_fcgid.so"]
    modules = ApacheBase.modules + ["fcgid"]
    fastcgi = True
    fcgid_block = True
    env_allowed = {"PATH", "RELAYFORGE_CONFIG"}

    def host_settings(self, root):
        return self.fcgid_dirs(root) + (
            "FcgidOutputBufferSize 0\nFcgidIOTimeout 600\n"
            "FcgidBusyTimeout 900\nFcgidMaxRequestLen 1048576\n")


NGINX_MAIN = """
user www-data www-data;
worker_processes 1;
worker_rlimit_nofile %(nofile)s;
daemon off;
pid %(tmp)s/run/nginx.pid;
error_log %(log)s/nginx-error.log warn;
events { worker_connections %(conns)s; }
http {
	access_log off;
	client_body_temp_path %(ng)s/tmp/body;
	fastcgi_temp_path %(ng)s/tmp/fastcgi;
	proxy_temp_path %(ng)s/tmp/proxy;
	uwsgi_temp_path %(ng)s/tmp/uwsgi;
	scgi_temp_path %(ng)s/tmp/scgi;
	# Where Debian's nginx.conf includes conf.d/*.conf.
	include %(limits)s;
	server {
		listen 127.0.0.1:%(port)d;
		root %(tmp)s/www;
		include %(inc)s;
	}
}
"""


class NginxFront(Setup):
    def start_nginx(self):
        ng = os.path.join(self.tmp, "nginx")
        mkdir(os.path.join(ng, "tmp"), "www-data", 0o700)
        mkdir(self.run_dir, None, 0o755)
        write(os.path.join(self.tmp, "www", "index.html"), "<p>static</p>\n")
        # The stock Debian file the shipped snippet includes.
        shutil.copy("/etc/nginx/fastcgi_params",
                    os.path.join(ng, "fastcgi_params"))
        inc = render(os.path.join(DEPLOY, "nginx-relayforge.conf"),
                     os.path.join(ng, "relayforge.conf"), self.paths())
        limits = render(os.path.join(DEPLOY, "nginx-relayforge-limits.conf"),
                        os.path.join(ng, "relayforge-limits.conf"),
                        self.paths())
        conf = os.path.join(ng, "nginx.conf")
        # nginx.conf's two capacity lines, as the limits file's comment
        # gives them (a conf.d file cannot set them itself).
        with open(limits) as f:
            text = f.read()
        cap = {k: re.search(r"#\s.*\b%s (\d+);" % k, text).group(1)
               for k in ("worker_rlimit_nofile", "worker_connections")}
        write(conf, NGINX_MAIN % {"tmp": self.tmp, "log": self.log_dir,
                                  "ng": ng, "port": self.port, "inc": inc,
                                  "limits": limits,
                                  "nofile": cap["worker_rlimit_nofile"],
                                  "conns": cap["worker_connections"]})
        self.logs.append(os.path.join(self.log_dir, "nginx-error.log"))
        err = os.path.join(self.log_dir, "nginx-error.log")
        chk = subprocess.run(["nginx", "-t", "-q", "-c", conf, "-p", ng + "/",
                              "-e", err], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("nginx -t: " + chk.stderr.strip())
        self.spawn(["nginx", "-c", conf, "-p", ng + "/", "-e", err],
                   "nginx.out")


class NginxSpawnFcgi(NginxFront):
    name = "nginx-spawn-fcgi"
    needs = ["nginx", "spawn-fcgi", "sqlite3", "setpriv"]
    env_allowed = {"PATH", "RELAYFORGE_CONFIG"}

    def script_env(self):
        env = self.server_env()
        sock_dir = os.path.join(self.run_dir, "relayforge")
        env.update({
            "RELAYFORGE_BIN": self.bin,
            "RELAYFORGE_CONFIG": self.conf,
            "RELAYFORGE_SOCKET": os.path.join(sock_dir, "relayforge.sock"),
            "RELAYFORGE_PIDFILE": os.path.join(sock_dir, "relayforge.pid"),
            "RELAYFORGE_PROCS": "2",
        })
        return env

    def spawn_script(self, cmd):
        """Run the shipped script; its output (and the responders' stderr,
        which they inherit) goes to log/spawn-fcgi.log."""
        log = os.path.join(self.log_dir, "spawn-fcgi.log")
        with open(log, "ab") as f:
            mark = f.tell()
            r = subprocess.run(
                ["sh", os.path.join(DEPLOY, "relayforge-spawn-fcgi"), cmd],
                env=self.script_env(), stdout=f, stderr=subprocess.STDOUT,
                timeout=60)
        with open(log, errors="replace") as f:
            f.seek(mark)
            r.stdout = r.stderr = f.read()
        return r

    def start(self):
        self.install_binary()
        self.install_settings()
        mkdir(self.run_dir, None, 0o755)
        r = self.spawn_script("start")
        if r.returncode != 0:
            raise RuntimeError("relayforge-spawn-fcgi start: " +
                               (r.stderr or r.stdout).strip())
        self.start_nginx()
        self.wait_ready()

    def stop(self):
        problems = []
        r = self.spawn_script("stop")
        if r.returncode != 0:
            problems.append("relayforge-spawn-fcgi stop: " +
                            (r.stderr or r.stdout).strip())
        return problems + Setup.stop(self)


def unit_entries(path):
    """[(section, key, value)] of a systemd unit file, in order."""
    out = []
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.append((section, k.strip(), v.strip()))
    return out


def env_file(path):
    """systemd's EnvironmentFile= reading of a KEY=VALUE file."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            k, _, v = line.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            env[k.strip()] = v
    return env


class SystemdUnit(NginxFront):
    """deploy/relayforge.socket + relayforge.service.  No systemd runs here,
    so: `systemd-analyze verify` on the units, then what systemd would do,
    read from the unit files: bind the socket with its owner and mode,
    start ExecStart with it on fd 0, Environment= then EnvironmentFile=,
    an unprivileged user owning only the StateDirectory, UMask; SIGTERM to
    stop.  The sandboxing options are not emulated."""

    name = "systemd"
    needs = ["nginx", "sqlite3", "setpriv", "systemd-analyze"]
    fastcgi = True
    extra_cases = ["verify"]
    db_user = "nobody"     # stands in for the DynamicUser
    min_procs = 1          # one process, RELAYFORGE_THREADS threads

    def start(self):
        self.install_binary()
        self.install_settings(owner_group="root")
        os.chmod(self.conf, 0o600)     # systemd reads it as root
        units = os.path.join(self.tmp, "units")
        os.makedirs(units)
        for u in ("relayforge.socket", "relayforge.service"):
            render(os.path.join(DEPLOY, u), os.path.join(units, u),
                   self.paths())
        self.sock_unit = unit_entries(os.path.join(units,
                                                   "relayforge.socket"))
        self.svc_unit = unit_entries(os.path.join(units,
                                                  "relayforge.service"))
        self.units = units
        self.start_responder()
        self.start_nginx()
        self.wait_ready()

    def get(self, entries, section, key, default=None):
        vals = [v for (s, k, v) in entries if s == section and k == key]
        return vals[-1] if vals else default

    def start_responder(self):
        g = self.get
        path = g(self.sock_unit, "Socket", "ListenStream")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.chmod(os.path.dirname(path),
                 int(g(self.sock_unit, "Socket", "DirectoryMode", "0755"), 8))
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(int(g(self.sock_unit, "Socket", "Backlog", "128")))
        os.chown(path, pwd.getpwnam(g(self.sock_unit, "Socket", "SocketUser",
                                      "root")).pw_uid,
                 grp.getgrnam(g(self.sock_unit, "Socket", "SocketGroup",
                                "root")).gr_gid)
        os.chmod(path, int(g(self.sock_unit, "Socket", "SocketMode",
                             "0666"), 8))
        if g(self.svc_unit, "Service", "StandardInput") != "socket":
            raise RuntimeError("relayforge.service: StandardInput is not "
                               "socket")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        for (s, k, v) in self.svc_unit:
            if s == "Service" and k == "Environment":
                key, _, val = v.partition("=")
                env[key] = val
        for (s, k, v) in self.svc_unit:
            if s == "Service" and k == "EnvironmentFile":
                env.update(env_file(v.lstrip("-")))
        state = os.path.join(self.tmp, "var", "lib",
                             g(self.svc_unit, "Service", "StateDirectory"))
        mkdir(state, self.db_user,
              int(g(self.svc_unit, "Service", "StateDirectoryMode", "0755"),
                  8))
        u = pwd.getpwnam(self.db_user)
        umask = int(g(self.svc_unit, "Service", "UMask", "0022"), 8)

        def drop():
            os.setgroups([])
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
            os.umask(umask)
        argv = g(self.svc_unit, "Service", "ExecStart").split()
        logf = open(os.path.join(self.log_dir, "journal.log"), "ab")
        self.logs.append(os.path.join(self.log_dir, "journal.log"))
        p = subprocess.Popen(argv, stdin=lsock.fileno(), stdout=logf,
                             stderr=subprocess.STDOUT, env=env, cwd="/",
                             preexec_fn=drop, close_fds=True)
        logf.close()
        lsock.close()
        sig = getattr(signal, g(self.svc_unit, "Service", "KillSignal",
                                "SIGTERM"))
        self.procs.append((p, sig))
        self.responder = p
        self.unit_env = env

    def stop(self):
        problems = []
        # Only the responder first: it must exit by itself on KillSignal,
        # cleanly, well within TimeoutStopSec.
        p = self.responder
        nginx = [x for x in self.procs if x[0] is not p]
        self.procs = [x for x in self.procs if x[0] is p]
        if p.poll() is None:
            p.send_signal(self.procs[0][1])
        try:
            rc = p.wait(10)
            if rc != 0:
                problems.append("responder exited %d on its stop signal" % rc)
        except subprocess.TimeoutExpired:
            problems.append("responder still running 10 s after SIGTERM")
        self.procs = nginx + self.procs
        return problems + Setup.stop(self)


SETUPS = [LighttpdFcgi, ApacheFcgid, NginxSpawnFcgi, SystemdUnit,
          ApacheCgi, LighttpdCgi, HtaccessFcgid]


# ---------------------------------------------------------------- cases

def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def jbody(data):
    try:
        return json.loads(data.decode())
    except ValueError:
        raise AssertionError("not JSON: %r" % data[:200])


def case_chat(s, ctx):
    rid = "dep-chat-" + uuid.uuid4().hex[:12]
    st, hdr, data = s.chat(rid)
    check(st == 200, "chat: HTTP %d %r" % (st, data[:300]))
    b = jbody(data)
    meta = b.get("data", {}).get("meta", {})
    check(b.get("success") is True and b["data"].get("text"),
          "chat: no text in %r" % data[:300])
    check(meta.get("demoMode") is True and meta.get("finalProvider") ==
          "mock", "chat: not the mock: %r" % meta)
    check(hdr.get("x-request-id") == rid, "chat: X-Request-Id not echoed")


def case_auth(s, ctx):
    st, hdr, data = s.chat(auth=False)
    check(st == 401, "no Authorization: HTTP %d, want 401" % st)
    check(jbody(data).get("error", {}).get("code") == "unauthorized",
          "401 without the unauthorized error shape")
    st, _, _ = s.chat(headers={"Authorization": "Bearer wrong-" + TOKEN})
    check(st == 401, "wrong token: HTTP %d, want 401" % st)
    st, _, data = s.chat()
    check(st == 200, "right token: HTTP %d %r (the Authorization header "
          "does not reach the responder?)" % (st, data[:200]))


def agree(s, ids):
    """logs and providers/status, asked several times (so several
    processes answer), agree with each other and with the table."""
    st, _, data = s.request("GET", s.api("logs") + "?limit=200")
    if st == 404:
        return "logs/status endpoints absent: checked the requests table"
    lists = []
    for _ in range(4):
        st, _, data = s.request("GET", s.api("logs") + "?limit=200")
        check(st == 200, "logs: HTTP %d %r" % (st, data[:200]))
        items = jbody(data)["data"]["items"]
        lists.append([it.get("requestId") for it in items])
    check(all(x == lists[0] for x in lists), "logs differ between calls")
    check(set(ids) <= set(lists[0]), "logs miss some of the %d chats" %
          len(ids))
    rows = int(s.sql("SELECT count(*) FROM requests;"))
    check(len(lists[0]) == min(rows, 200),
          "logs list %d items, the table has %d rows" % (len(lists[0]),
                                                         rows))
    stats = []
    for _ in range(4):
        st, _, data = s.request("GET", s.api("providers/status"))
        check(st == 200, "providers/status: HTTP %d" % st)
        prov = {p["id"]: p for p in jbody(data)["data"]["providers"]}
        stats.append(prov.get("mock", {}).get("stats", {}).get("requests"))
    check(all(x == stats[0] for x in stats),
          "status differs between calls: %r" % stats)
    mock_rows = s.count("final_provider = 'mock'")
    mock_tries = int(s.sql("SELECT count(*) FROM attempts "
                           "WHERE provider = 'mock';"))
    check(stats[0] in (mock_rows, mock_tries),
          "status says mock served %r, the store has %d rows (%d attempts)"
          % (stats[0], mock_rows, mock_tries))
    return None


def case_share(s, ctx):
    # Enough concurrent chats that a loaded machine still spreads them:
    # mod_fcgid gives a process one request at a time.
    n = 24
    before = {p: syscw(p) for p in s.responder_pids()}
    c0 = s.count("endpoint = 'chat'")
    ids = ["dep-share-%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(lambda rid: s.chat(rid)[0], ids))
    check(all(st == 200 for st in res), "chats: %r" % res)
    # A row may land just after its answer (the log is written last).
    in_ids = "request_id IN (%s)" % ",".join("'%s'" % i for i in ids)
    got = wait_until(lambda: s.count(in_ids) == n, 5, 0.1) and n or \
        s.count(in_ids)
    c1 = s.count("endpoint = 'chat'")
    check(got == n and c1 - c0 == n,
          "%d chats -> %d rows (%d new) in %s" % (n, got, c1 - c0, s.db))
    note = []
    if s.fastcgi:
        after = s.responder_pids()
        check(len(after) >= s.min_procs, "%d responder process(es), want "
              "%d+: %r" % (len(after), s.min_procs, after))
        # The background stream keeps one process busy meanwhile; a
        # process that served anything in this window made write calls.
        served = [p for p in after if syscw(p) > before.get(p, 0)]
        check(len(served) >= s.min_procs, "only %r of %r served requests"
              % (served, after))
        note.append("%d process(es) served" % len(served))
    else:
        note.append("CGI: a process per request")
    extra = agree(s, ids)
    if extra:
        note.append(extra)
    return "; ".join(note)


def case_hangup(s, ctx):
    pids = s.responder_pids() if s.fastcgi else []
    rid = "dep-hangup-" + uuid.uuid4().hex[:10]
    st = Stream(s, rid, close_after=2, max_s=20)
    st.run()
    check(st.error is None, "stream: " + str(st.error))
    check(st.status == 200 and len(st.tokens()) == 2,
          "stream: HTTP %d, %d tokens before closing" % (st.status,
                                                         len(st.tokens())))
    code, _, _ = s.request("GET", s.api("health"))
    check(code == 200, "health after the hang-up: HTTP %d" % code)
    code, _, _ = s.chat()
    check(code == 200, "chat after the hang-up: HTTP %d" % code)
    if s.fastcgi:
        gone = [p for p in pids if not alive(p)]
        check(not gone, "responders died: %r" % gone)
    row = wait_until(lambda: s.sql(
        "SELECT status || ' ' || ifnull(error_code, '') FROM requests "
        "WHERE request_id = '%s';" % rid), 8, 0.2)
    check(row == "error client_closed",
          "log row of the abandoned stream: %r, want 'error client_closed'"
          % row)


def case_bodylimit(s, ctx):
    big = json.dumps({"prompt": "x" * 200000})
    st, _, data = s.request("POST", s.api("chat"), big)
    check(st == 413, "200 kB body: HTTP %d %r" % (st, data[:200]))
    check(jbody(data).get("error", {}).get("code") == "payload_too_large",
          "413 is not the responder's JSON (a web server limit hit first)")


def case_env(s, ctx):
    pids = s.responder_pids()
    check(pids, "no responder process")
    for pid in pids:
        env = proc_environ(pid)
        check(CANARY not in env.values(),
              "the server's GROQ_API_KEY reached responder %d" % pid)
        extra = set(env) - s.env_allowed
        check(not extra, "responder %d also got %s" % (pid, sorted(extra)))
        check(env.get("RELAYFORGE_CONFIG") == s.conf,
              "RELAYFORGE_CONFIG of %d is %r" % (pid,
                                                env.get("RELAYFORGE_CONFIG")))
        check("PATH" in env, "responder %d has no PATH" % pid)
    users = {pwd.getpwuid(os.stat("/proc/%d" % p).st_uid).pw_name
             for p in pids}
    check(users == {"www-data"}, "responders run as %r" % users)


def case_deny(s, ctx):
    bad = []
    for f in ("leak.db", "relayforge.db-wal", "site.conf", ".secret",
              "notes~", ".htaccess", ""):
        st, _, _ = s.request("GET", "/cgi-bin/" + f, auth=False)
        if st not in (403, 404):
            bad.append("/cgi-bin/%s -> %d" % (f, st))
    check(not bad, "served: " + ", ".join(bad))


def case_verify(s, ctx):
    r = subprocess.run(
        ["systemd-analyze", "verify",
         os.path.join(s.units, "relayforge.socket"),
         os.path.join(s.units, "relayforge.service")],
        capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and "relayforge" not in out,
          "systemd-analyze verify: " + out)
    # The store landed in the StateDirectory, owned by the unit's user.
    check(os.path.exists(s.db), "no store at %s (StateDirectory)" % s.db)
    owner = pwd.getpwuid(os.stat(s.db).st_uid).pw_name
    check(owner == s.db_user, "the store is owned by %s" % owner)
    return None


def case_stream(s, ctx):
    bg = ctx["stream"]
    check(bg.join(25), "the stream did not end within 25 s")
    check(bg.error is None, "stream: " + str(bg.error))
    check(bg.status == 200, "stream: HTTP %d" % bg.status)
    check("content-length" not in bg.headers,
          "the stream carries a Content-Length: buffered")
    toks = bg.tokens()
    check(len(toks) >= 5, "%d tokens" % len(toks))
    gaps = [b[0] - a[0] for a, b in zip(toks, toks[1:])]
    spaced = sum(1 for g in gaps if g >= 0.15)
    check(toks[-1][0] - toks[0][0] >= 1.0,
          "tokens arrived within %.2f s (first %.2f, last %.2f): buffered"
          % (toks[-1][0] - toks[0][0], toks[0][0], toks[-1][0]))
    check(spaced >= 0.8 * len(gaps),
          "only %d of %d gaps >= 150 ms: tokens arrive in lumps" %
          (spaced, len(gaps)))
    last = bg.events[-1]
    check(last[1] == "done" and last[2].get("ok") is True,
          "stream did not end with done {ok:true}: %r" % (last,))
    row = wait_until(lambda: s.sql(
        "SELECT endpoint || ' ' || status FROM requests "
        "WHERE request_id = '%s';" % bg.rid), 5, 0.2)
    check(row == "stream success", "log row of the stream: %r" % row)
    return "%d tokens over %.1f s" % (len(toks), toks[-1][0] - toks[0][0])


def case_v1(s, ctx):
    rid = "dep-v1-" + uuid.uuid4().hex[:12]
    st, hdr, data = s.request("POST", s.oai("chat/completions"), {
        "model": "auto", "messages": [{"role": "user", "content": "v1"}]},
        {"X-Request-Id": rid})
    check(st == 200, "/v1 chat: HTTP %d %r" % (st, data[:300]))
    b = jbody(data)
    check(b.get("object") == "chat.completion" and
          b["choices"][0]["message"]["content"],
          "/v1 chat: not a chat.completion: %r" % data[:300])
    check(b["id"] == "chatcmpl-" + rid and
          hdr.get("x-relayforge-provider") == "mock",
          "/v1 chat: id %r, provider %r" % (b.get("id"),
                                            hdr.get("x-relayforge-provider")))
    st, _, data = s.request("POST", s.oai("chat/completions"), {
        "model": "auto", "messages": []})
    check(st == 400 and jbody(data)["error"]["param"] == "messages",
          "/v1 400 not in OpenAI's shape: %d %r" % (st, data[:200]))
    st, _, data = s.request("GET", s.oai("models"))
    ids = [m["id"] for m in jbody(data).get("data", [])]
    check(st == 200 and "mock/relayforge-mock-1" in ids,
          "/v1/models: %d %r" % (st, ids))
    forms = ["mock/relayforge-mock-1"]
    if s.encoded_slash:
        forms.append("mock%2Frelayforge-mock-1")
    for f in forms:
        st, _, data = s.request("GET", s.oai("models/" + f))
        check(st == 200 and jbody(data).get("id") ==
              "mock/relayforge-mock-1", "/v1/models/%s: HTTP %d %r" %
              (f, st, data[:200]))
    row = wait_until(lambda: s.sql(
        "SELECT endpoint || ' ' || status FROM requests "
        "WHERE request_id = '%s';" % rid), 5, 0.2)
    check(row == "openai success", "log row of the /v1 chat: %r" % row)
    return "model ids: " + ", ".join(forms)


def case_v1stream(s, ctx):
    bg = ctx["v1stream"]
    check(bg.join(25), "the /v1 stream did not end within 25 s")
    check(bg.error is None, "/v1 stream: " + str(bg.error))
    check(bg.status == 200, "/v1 stream: HTTP %d" % bg.status)
    check("content-length" not in bg.headers,
          "the /v1 stream carries a Content-Length: buffered")
    toks = bg.tokens()
    check(len(toks) >= 5, "%d content chunks" % len(toks))
    gaps = [b[0] - a[0] for a, b in zip(toks, toks[1:])]
    spaced = sum(1 for g in gaps if g >= 0.15)
    check(toks[-1][0] - toks[0][0] >= 1.0,
          "chunks arrived within %.2f s: buffered" %
          (toks[-1][0] - toks[0][0]))
    check(spaced >= 0.8 * len(gaps),
          "only %d of %d gaps >= 150 ms: chunks arrive in lumps" %
          (spaced, len(gaps)))
    check(bg.events[-1][2] == {"raw": "data: [DONE]"},
          "the /v1 stream did not end with [DONE]: %r" % (bg.events[-1],))
    row = wait_until(lambda: s.sql(
        "SELECT endpoint || ' ' || status FROM requests "
        "WHERE request_id = '%s';" % bg.rid), 5, 0.2)
    check(row == "openai_stream success", "log row of the /v1 stream: %r"
          % row)
    return "%d chunks over %.1f s" % (len(toks), toks[-1][0] - toks[0][0])


def case_mount(s, ctx):
    good = s.api("health")
    base = good[:-len("/api/v1/health")]
    mount = base or "/api"
    out = []
    paths = [mount + "/foo/api/v1/health", mount + "/x/api/v1/logs",
             base + "/api/v1%2fhealth", base + "/api%2Fv1/health",
             base + "/v1/api/v1/health", base + "/v1%2Fmodels"]
    if not base:
        # Mounted at /api and /v1: the mount is where a surface begins.
        paths.append("/api/api/v1/health")
    for path in paths:
        st, _, data = s.request("GET", path)
        out.append("%s=%d" % (path, st))
        check(st == 404, "%s: HTTP %d %r" % (path, st, data[:200]))
    st, _, data = s.request("GET", good)
    check(st in (200, 503), "%s: HTTP %d" % (good, st))
    return " ".join(out)


def cases_of(s):
    names = ["chat", "auth", "share", "hangup", "bodylimit", "mount"]
    if s.fastcgi and s.env_allowed:
        names.append("env")
    names += s.extra_cases
    names += ["v1", "stream", "v1stream"]
    return names


# ---------------------------------------------------------------- runner

def on_alarm(signum, frame):
    raise SetupTimeout("setup took longer than %d s" % SETUP_LIMIT)


def report(name, err, note, counts):
    if err is None:
        print("ok %s%s" % (name, " (%s)" % note if note else ""),
              flush=True)
        counts[0] += 1
    else:
        print("FAIL %s: %s" % (name, err), flush=True)
        counts[1] += 1


def reason(e):
    msg = str(e).strip().splitlines()
    return (type(e).__name__ + ": " if not isinstance(e, AssertionError)
            else "") + (msg[0] if msg else "")[:400]


def run_setup(cls, pattern, counts):
    s = cls.__new__(cls)
    names = ["start"] + cases_of(cls.__new__(cls)) + ["stop"]
    wanted = [n for n in names if not pattern or
              pattern in "%s.%s" % (cls.name, n)]
    if not wanted:
        return
    missing = [t for t in cls.needs if not have(t)]
    if os.geteuid() != 0 or missing:
        why = "needs root" if os.geteuid() != 0 else \
            "missing %s" % ", ".join(PACKAGES[t] for t in missing)
        for n in names:
            report("%s.%s" % (cls.name, n), why, None, counts)
        return
    s.__init__()
    ctx = {}
    failed = False
    signal.alarm(SETUP_LIMIT)
    try:
        try:
            s.start()
            report(cls.name + ".start", None, None, counts)
        except Exception as e:  # noqa: BLE001
            report(cls.name + ".start", reason(e), None, counts)
            failed = True
            if VERBOSE:
                traceback.print_exc()
                print(s.log_tail(), file=sys.stderr)
            for n in names[1:-1]:
                report("%s.%s" % (cls.name, n), "setup did not start",
                       None, counts)
            return
        # The timed stream runs in the background during the other cases
        # (11 s of mock tokens): it also keeps one responder busy, so the
        # share case needs a second process.
        ctx["stream"] = Stream(s, "dep-stream-" + uuid.uuid4().hex[:10],
                               max_s=25).start()
        ctx["v1stream"] = Stream(s, "dep-v1stream-" + uuid.uuid4().hex[:10],
                                 max_s=25, oai=True).start()
        time.sleep(0.3)
        for n in names[1:-1]:
            if n not in wanted:
                continue
            try:
                note = globals()["case_" + n](s, ctx)
                report("%s.%s" % (cls.name, n), None, note, counts)
            except SetupTimeout:
                raise
            except Exception as e:  # noqa: BLE001
                failed = True
                report("%s.%s" % (cls.name, n), reason(e), None, counts)
                if VERBOSE:
                    traceback.print_exc()
    except SetupTimeout as e:
        failed = True
        report(cls.name + ".timeout", str(e), None, counts)
    finally:
        signal.alarm(0)
        try:
            problems = s.stop()
        except Exception as e:  # noqa: BLE001
            problems = [reason(e)]
        if "stop" in wanted:
            report(cls.name + ".stop", "; ".join(problems) or None, None,
                   counts)
        if (failed or problems) and VERBOSE:
            print(s.log_tail(), file=sys.stderr)
        if not (failed or problems) or not VERBOSE:
            s.cleanup()
        else:
            print("deploy: kept %s" % s.tmp, file=sys.stderr)


def make(*args):
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT]
                          + list(args), capture_output=True, text=True,
                          timeout=300)


def run_install(pattern, counts):
    """make install / uninstall into a DESTDIR, PREFIX=/usr."""
    names = ["install.layout", "install.keepconfig", "install.uninstall"]
    if pattern and not any(pattern in n for n in names):
        return
    dest = tempfile.mkdtemp(prefix="rf-deploy-install-")
    prefix = "/usr"
    vars_ = ["DESTDIR=" + dest, "PREFIX=" + prefix]
    conf = dest + "/etc/relayforge/relayforge.conf"
    lib = dest + prefix + "/lib/relayforge"
    doc = dest + prefix + "/share/doc/relayforge"
    data = dest + prefix + "/share/relayforge"
    try:
        def layout():
            r = make("install", *vars_)
            check(r.returncode == 0, "make install: " + r.stderr.strip())
            modes = {
                lib + "/relayforge.fcgi": 0o755,
                lib + "/relayforge-spawn-fcgi": 0o755,
                conf: 0o600,
                data + "/schema/relayforge.sql": 0o644,
                data + "/web/index.html": 0o644,
                doc + "/README.md": 0o644,
            }
            for f in ["lighttpd.conf", "lighttpd-cgi.conf",
                      "apache-relayforge.conf", "nginx-relayforge.conf",
                      "nginx-relayforge-limits.conf", "relayforge.socket", "relayforge.service",
                      "relayforge.conf.example", "htaccess.example"]:
                modes[doc + "/deploy/" + f] = 0o644
            for path, mode in modes.items():
                check(os.path.isfile(path), "missing " + path[len(dest):])
                got = os.stat(path).st_mode & 0o777
                check(got == mode, "%s is %o, want %o" %
                      (path[len(dest):], got, mode))
            if os.path.exists("/usr/share/javascript/chart.js"):
                check(os.path.isfile(data + "/web/vendor/chart.umd.min.js"),
                      "web/vendor/chart.umd.min.js not installed")
            with open(doc + "/deploy/lighttpd.conf") as f:
                text = f.read()
            check(prefix + "/lib/relayforge/relayforge.fcgi" in text and
                  "/usr/local/lib/relayforge" not in text,
                  "deploy examples not rewritten for PREFIX=" + prefix)
            r = subprocess.run([lib + "/relayforge.fcgi", "--check-config"],
                               env={"RELAYFORGE_CONFIG": conf,
                                    "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True)
            check(r.returncode == 0, "the installed template is refused: " +
                  (r.stderr or r.stdout).strip())

        def keepconfig():
            with open(conf, "a") as f:
                f.write("GROQ_API_KEY=kept-by-install\n")
            r = make("install", *vars_)
            check(r.returncode == 0, "second make install: " +
                  r.stderr.strip())
            with open(conf) as f:
                check("kept-by-install" in f.read(),
                      "make install overwrote the settings file")

        def uninstall():
            state = dest + "/var/lib/relayforge"
            os.makedirs(state)
            write(state + "/relayforge.db", "")
            r = make("uninstall", *vars_)
            check(r.returncode == 0, "make uninstall: " + r.stderr.strip())
            left = sorted(os.path.join(d, f)[len(dest):]
                          for d, _, fs in os.walk(dest) for f in fs)
            check(left == ["/etc/relayforge/relayforge.conf",
                           "/var/lib/relayforge/relayforge.db"],
                  "after uninstall: %r" % left)

        # Each step needs the one before it: run all three.
        for name, fn in zip(names, [layout, keepconfig, uninstall]):
            try:
                report(name, None, fn(), counts)
            except Exception as e:  # noqa: BLE001
                report(name, reason(e), None, counts)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="pattern", default="")
    ap.add_argument("-v", dest="verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    signal.signal(signal.SIGALRM, on_alarm)
    counts = [0, 0]
    if not os.access(binary(), os.X_OK):
        print("FAIL deploy.binary: %s is missing: run make" % binary())
        print("RESULT 0 1")
        return 1
    chosen = [c for c in SETUPS if not args.pattern or
              any(args.pattern in "%s.%s" % (c.name, n)
                  for n in ["start", "stop"] + cases_of(c.__new__(c)))]
    if os.geteuid() == 0:
        install_missing({t for c in chosen for t in c.needs})
    t0 = time.monotonic()
    for cls in chosen:
        run_setup(cls, args.pattern, counts)
    run_install(args.pattern, counts)
    print("deploy: %.1fs" % (time.monotonic() - t0), file=sys.stderr)
    print("RESULT %d %d" % (counts[0], counts[1]), flush=True)
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())
