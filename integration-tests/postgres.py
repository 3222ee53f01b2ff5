"""A throwaway PostgreSQL for the tests, from Debian's `postgresql` package
(the Makefile's APT_PACKAGES): `initdb` into a fresh temporary directory,
trust authentication, listening on 127.0.0.1 at a free port and on a unix
socket inside that directory. The server runs as the `postgres` user when
the tests run as root (PostgreSQL refuses to run as root), else as the
caller. It can be stopped, killed and restarted on the same port and data,
which the cluster tests do under load.

    with postgres() as pg:
        url = pg.url          # postgres://lamb@127.0.0.1:PORT/lamb
        pg.restart()
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

USER = "lamb"
DATABASE = "lamb"


def bin_dir():
    """The newest installed PostgreSQL's binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One PostgreSQL server in its own temporary directory."""

    def __init__(self, root: Path, bindir: Path):
        self.root = root
        self.bindir = bindir
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.port = _free_port()
        self.url = f"postgres://{USER}@127.0.0.1:{self.port}/{DATABASE}"
        # Root runs the server as `postgres`; anyone else as themselves.
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.proc = None

    def _popen_args(self):
        """Popen's arguments that run a command as the server's user."""
        if not self.run_as:
            return {}
        pw = pwd.getpwnam(self.run_as)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": str(self.root)}

    def _run(self, *args):
        subprocess.run([str(self.bindir / args[0]), *args[1:]], check=True, capture_output=True, timeout=120,
                       **self._popen_args())

    def init(self):
        self.socket_dir.mkdir()
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            for p in (self.root, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C",
                  "--no-sync")
        self.start()
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", USER, DATABASE)

    def start(self):
        """Starts the server on the same port and data; returns when it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=log, start_new_session=True, **self._popen_args(),
        )
        log.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited {self.proc.returncode}: {self.log.read_text()}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                    "-U", USER, "-d", "postgres"])
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not start: {self.log.read_text()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """A fast shutdown (SIGINT to the postmaster): open sessions end, the data stays."""
        if not self.running():
            return
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        self.proc.wait(timeout=60)

    def kill(self):
        """SIGKILL of the whole server, backends included (they share the
        process group started for it): a crash; the next start recovers."""
        if not self.running():
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        # The backends are reaped by whoever inherits them; the next start
        # refuses while any of them (the lock file's owner) is still there.
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres's processes outlived SIGKILL")

    def restart(self):
        self.stop()
        self.start()

    def psql(self, sql):
        """Runs `sql`; answers psql's unaligned output."""
        p = subprocess.run([str(self.bindir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.url,
                            "-c", sql], check=True, capture_output=True, text=True, timeout=60)
        return p.stdout


@contextlib.contextmanager
def postgres():
    """A fresh PostgreSQL for the block; removed afterwards. Fails (not
    skips) when PostgreSQL is not installed: `make test` installs it."""
    bindir = bin_dir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (the `postgresql` Debian package; `make deps` installs it)")
    root = Path(tempfile.mkdtemp(prefix="lamb-pg-"))
    pg = Postgres(root, bindir)
    try:
        pg.init()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    """A module's PostgreSQL."""
    with postgres() as server:
        yield server
