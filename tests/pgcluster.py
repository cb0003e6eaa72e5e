#!/usr/bin/env python3
"""A throw-away PostgreSQL cluster for the tests and the bench.

initdb + pg_ctl in a temporary directory: Unix socket only (no TCP port),
password authentication (scram-sha-256) for every connection, one role and
one database for RelayForge.  Run as root, the server runs as Debian's
`postgres` system user (runuser), which owns the directory.  Everything is
removed afterwards, also when the caller fails.

From Python:

    with pgcluster.Cluster() as pg:
        uri = pg.uri              # postgresql://rf:...@/relayforge?host=...
        pg.psql("SELECT 1")       # as the rf role, through psql
        other = pg.create_db("t1")
        pg.stop(); pg.start()     # a restart (tests of faults)

As a command (for the C unit tests and shell scripts):

    tests/pgcluster.py run -- CMD ARGS...
        starts a cluster, runs CMD with RF_TEST_PG_URI (a fresh database's
        URI) and RF_TEST_PG_ADMIN (a superuser URI, for CREATE DATABASE) in
        its environment, stops and removes the cluster, exits with CMD's
        status.
    tests/pgcluster.py check
        exits 0 when the PostgreSQL binaries are there.

Python 3 standard library only; psql is the only client it uses.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

# The role's password: the tests check that it never shows anywhere.
PASSWORD = "rf-pg-pw-SECRET9"
ADMIN_PASSWORD = "rf-pg-admin-SECRET8"
ROLE = "rf"
DBNAME = "relayforge"


def bindir():
    """The newest PostgreSQL server binaries of Debian's packages."""
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if
                   p.split("/")[4].isdigit() else 0)
    if cands:
        return os.path.dirname(cands[-1])
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def available():
    d = bindir()
    return d is not None and os.access(os.path.join(d, "pg_ctl"), os.X_OK) \
        and shutil.which("psql") is not None


class Cluster:
    """One cluster.  settings: extra postgresql.conf lines (dict)."""

    def __init__(self, settings=None, keep=False):
        self.bin = bindir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found "
                               "(apt-get install postgresql)")
        self.settings = dict(settings or {})
        self.keep = keep
        self.dir = None
        self.running = False
        self.user = None

    # ------------------------------------------------------------ setup

    def __enter__(self):
        try:
            self.create()
            self.start()
            self.make_role()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    def _as_owner(self, argv, **kw):
        """Run a server binary as the cluster's owner."""
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.user, "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    def create(self):
        self.dir = tempfile.mkdtemp(prefix="rf-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            # The server refuses to run as root: Debian's postgres user.
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            for p in (self.dir, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o711)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(ADMIN_PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        p = self._as_owner([os.path.join(self.bin, "initdb"), "-D",
                            self.data, "-U", "postgres", "--pwfile", pwfile,
                            "--auth-local=scram-sha-256",
                            "--auth-host=reject", "-E", "UTF8",
                            "--locale=C", "--no-sync"], timeout=120)
        os.unlink(pwfile)
        if p.returncode != 0:
            raise RuntimeError("initdb failed: " + p.stderr[-2000:])
        conf = {
            "listen_addresses": "''",
            "unix_socket_directories": "'%s'" % self.sock,
            "max_connections": "300",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
        }
        conf.update(self.settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# tests/pgcluster.py\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))

    def start(self):
        p = self._as_owner([os.path.join(self.bin, "pg_ctl"), "-D",
                            self.data, "-l",
                            os.path.join(self.dir, "server.log"), "-w",
                            "-t", "60", "start"], timeout=90)
        if p.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s\n%s" % (
                p.stderr[-1000:], self.server_log()[-2000:]))
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        self._as_owner([os.path.join(self.bin, "pg_ctl"), "-D", self.data,
                        "-m", mode, "-w", "-t", "60", "stop"], timeout=90)
        self.running = False

    def server_log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()
        except OSError:
            return ""

    def destroy(self):
        if self.dir is None:
            return
        try:
            self.stop("immediate")
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ------------------------------------------------------------ roles

    def uri_for(self, db, role=ROLE, password=PASSWORD):
        return "postgresql://%s:%s@/%s?host=%s" % (
            role, urllib.parse.quote(password, safe=""), db,
            urllib.parse.quote(self.sock, safe=""))

    @property
    def uri(self):
        return self.uri_for(DBNAME)

    @property
    def admin_uri(self):
        return self.uri_for("postgres", "postgres", ADMIN_PASSWORD)

    def make_role(self):
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (ROLE, PASSWORD),
                  admin=True)
        self.create_db(DBNAME)

    def create_db(self, name):
        """A new empty database owned by the rf role; its URI."""
        self.psql("CREATE DATABASE %s OWNER %s" % (name, ROLE), admin=True)
        return self.uri_for(name)

    def drop_db(self, name):
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name,
                  admin=True)

    def psql(self, sql, db=DBNAME, admin=False, args=(), check=True):
        """Run sql through psql; its stdout (unaligned, tuples only)."""
        uri = self.uri_for("postgres" if admin and db == DBNAME else db,
                           "postgres" if admin else ROLE,
                           ADMIN_PASSWORD if admin else PASSWORD)
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-d", uri] + list(args) +
                           ["-c", sql], capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("psql: %s" % p.stderr.strip()[-2000:])
        return p.stdout


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        return 0 if available() else 1
    if len(argv) >= 3 and argv[1] == "run" and argv[2] == "--":
        cmd = argv[3:]
        with Cluster() as pg:
            env = dict(os.environ, RF_TEST_PG_URI=pg.uri,
                       RF_TEST_PG_ADMIN=pg.admin_uri,
                       RF_TEST_PG_SOCK=pg.sock)
            child = subprocess.Popen(cmd, env=env)
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                return child.wait()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
