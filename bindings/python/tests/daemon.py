"""A pythreadd started for one test run, on a socket in a temporary
directory, stopped (and the directory removed) at the end.

The daemon binary comes from $PYTHREAD_DAEMON, else the source tree's
build/daemon/pythreadd, else pythreadd on $PATH.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)  # holds the pythread package
ROOT = os.path.dirname(os.path.dirname(PACKAGE_DIR))

if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)


def daemon_path():
    env = os.environ.get("PYTHREAD_DAEMON")
    if env:
        return env
    built = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "daemon", "pythreadd")
    if os.access(built, os.X_OK):
        return built
    found = shutil.which("pythreadd")
    if found:
        return found
    raise RuntimeError("pythreadd not found: build the project (sh scripts/build), install "
                       "it, or set $PYTHREAD_DAEMON to the binary")


class Daemon:
    """with Daemon() as d: ... d.socket is the path; $PYTHREAD_SOCKET is set
    to it for this process and the processes it starts."""

    def __init__(self, startup_timeout=10.0, args=()):
        self.startup_timeout = startup_timeout
        self.args = list(args)  # more of pythreadd's options
        self.dir = None
        self.proc = None
        self.socket = None
        self._old_env = None

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="pythread-py-")
        self.socket = os.path.join(self.dir, "pythreadd.sock")
        self._log = open(os.path.join(self.dir, "pythreadd.log"), "w+b")
        self.proc = subprocess.Popen([daemon_path(), "--socket", self.socket] + self.args,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._old_env = os.environ.get("PYTHREAD_SOCKET")
        os.environ["PYTHREAD_SOCKET"] = self.socket
        deadline = time.monotonic() + self.startup_timeout
        import pythread
        while True:
            try:
                pythread.connect(self.socket)
                return self
            except ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pythreadd did not start: {self.log()}")
                time.sleep(0.01)

    def log(self):
        if not self._log:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._old_env is None:
            os.environ.pop("PYTHREAD_SOCKET", None)
        else:
            os.environ["PYTHREAD_SOCKET"] = self._old_env
        if self._log:
            self._log.close()
            self._log = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def etcd_path():
    """The etcd binary ($PYTHREAD_ETCD, else etcd on $PATH, else Debian's
    /usr/bin/etcd), or None."""
    for candidate in (os.environ.get("PYTHREAD_ETCD"), shutil.which("etcd"), "/usr/bin/etcd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """A one-member etcd on free 127.0.0.1 ports, its data in a temporary
    directory, for a daemon's --etcd; stopped (and the directory removed)
    at the end. endpoint is its client URL once started."""

    def __init__(self, startup_timeout=20.0):
        self.startup_timeout = startup_timeout
        self.dir = None
        self.proc = None
        self.endpoint = None

    def start(self):
        import urllib.request
        self.dir = tempfile.mkdtemp(prefix="pythread-etcd-")
        client, peer = _free_port(), _free_port()
        self.endpoint = f"http://127.0.0.1:{client}"
        self._log = open(os.path.join(self.dir, "etcd.log"), "w+b")
        self.proc = subprocess.Popen(
            [etcd_path(), "--name", "m0", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"m0=http://127.0.0.1:{peer}"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._log.seek(0)
                log = self._log.read().decode("utf-8", "replace")
                self.stop()
                raise RuntimeError(f"etcd did not start: {log[-2000:]}")
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
