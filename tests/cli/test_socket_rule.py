#!/usr/bin/env python3
"""Which daemon a user reaches with no setting (libpythread(3)).

Usage: test_socket_rule.py PYTHREADCTL PYTHREADD [LIBPYTHREAD PYTHON_BINDING_DIR]

A user other than root tries their own daemon's socket first and the system
daemon's after it; PYTHREAD_SOCKET alone when set. The system socket is
moved into a temporary directory with PYTHREAD_SYSTEM_SOCKET (the knob for
tests: the real /run/pythread may have a daemon of its own). The clients run
as nobody (uid 65534), which needs root: skipped, saying so, otherwise.
Waiting is polling with a deadline, never a fixed sleep.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from cliutil import DEADLINE, listening, poll

CTL = DAEMON = LIB = BINDING = None
NOBODY = 65534


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def nobodys_python():
    """This interpreter, or the system's, if nobody may run it (one under
    root's home may not be)."""
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            subprocess.run([python, "-c", "import ctypes"], check=True, timeout=DEADLINE,
                           preexec_fn=as_nobody, stderr=subprocess.DEVNULL)
            return python
        except (OSError, subprocess.SubprocessError):
            continue
    return None


@unittest.skipUnless(os.geteuid() == 0, "needs root, to run clients and a daemon as uid 65534")
class SocketRule(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ptrule-")
        os.chmod(self.base, 0o755)  # nobody must reach the sockets under it
        self.system = os.path.join(self.base, "sys", "pythreadd.sock")
        self.xdg = os.path.join(self.base, "xdg")
        os.mkdir(self.xdg, 0o700)
        os.chown(self.xdg, NOBODY, NOBODY)
        self.own = os.path.join(self.xdg, "pythread", "pythreadd.sock")
        # No PYTHREAD_SOCKET, and a runtime directory where nothing listens.
        self.env = dict(os.environ, PYTHREAD_SYSTEM_SOCKET=self.system,
                        XDG_RUNTIME_DIR=os.path.join(self.base, "none"))
        self.env.pop("PYTHREAD_SOCKET", None)
        self.daemons = []

    def tearDown(self):
        for p in self.daemons:
            p.terminate()
            p.wait(timeout=DEADLINE)
            p.stderr.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def daemon(self, sock, env, user=None):
        """pythreadd with no --socket (the rule puts it at sock), once it
        accepts connections."""
        p = subprocess.Popen([DAEMON], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, preexec_fn=user)
        self.daemons.append(p)
        poll(lambda: p.poll() is not None or listening(sock), "the daemon's socket " + sock)
        if p.poll() is not None:
            self.fail("pythreadd exited at start: %s" % p.stderr.read().decode())
        return p

    def system_daemon(self):
        return self.daemon(self.system, self.env)

    def status(self, env, user=as_nobody):
        """pythreadctl --json status run as user: (exit code, document or
        None, stderr)."""
        r = subprocess.run([CTL, "--json", "status"], env=env, capture_output=True, text=True,
                           timeout=DEADLINE, preexec_fn=user)
        return r.returncode, json.loads(r.stdout) if r.returncode == 0 else None, r.stderr

    def test_user_reaches_the_system_daemon(self):
        d = self.system_daemon()
        code, doc, err = self.status(self.env)
        self.assertEqual(code, 0, err)
        self.assertEqual(doc["socket"], self.system)
        self.assertEqual(doc["pid"], d.pid)

    def test_root_reaches_the_system_daemon(self):
        d = self.system_daemon()
        code, doc, err = self.status(self.env, user=None)
        self.assertEqual(code, 0, err)
        self.assertEqual(doc["pid"], d.pid)

    def test_own_daemon_comes_first(self):
        self.system_daemon()
        env = dict(self.env, XDG_RUNTIME_DIR=self.xdg)
        own = self.daemon(self.own, env, user=as_nobody)
        code, doc, err = self.status(env)
        self.assertEqual(code, 0, err)
        self.assertEqual(doc["socket"], self.own)
        self.assertEqual(doc["pid"], own.pid)
        # Once it stops (its socket gone), the system daemon answers again.
        own.terminate()
        own.wait(timeout=DEADLINE)
        poll(lambda: not os.path.exists(self.own), "the personal socket to go")
        code, doc, err = self.status(env)
        self.assertEqual(code, 0, err)
        self.assertEqual(doc["socket"], self.system)

    def test_neither_answers(self):
        code, _, err = self.status(self.env)
        self.assertEqual(code, 3, err)
        own = os.path.join(self.base, "none", "pythread", "pythreadd.sock")
        for what in (own, self.system, "PYTHREAD_SOCKET", "systemctl start pythreadd.socket"):
            self.assertIn(what, err)

    def squatted_runtime_dir(self):
        """A runtime directory whose pythread directory belongs to uid 1, as
        another user could make /tmp/pythread-UID before UID does."""
        xdg = os.path.join(self.base, "squat")
        os.mkdir(xdg, 0o755)
        os.mkdir(os.path.join(xdg, "pythread"), 0o755)
        os.chown(os.path.join(xdg, "pythread"), 1, 1)
        return xdg, os.path.join(xdg, "pythread", "pythreadd.sock")

    def test_another_users_directory_is_passed_over(self):
        # Not a daemon of nobody's: it cannot hold nobody's own socket, so
        # the system daemon answers instead of a refusal that would keep
        # nobody from it for as long as uid 1 likes.
        d = self.system_daemon()
        xdg, own = self.squatted_runtime_dir()
        env = dict(self.env, XDG_RUNTIME_DIR=xdg)
        code, doc, err = self.status(env)
        self.assertEqual(code, 0, err)
        self.assertEqual(doc["socket"], self.system)
        self.assertEqual(doc["pid"], d.pid)
        # With no system daemon the refusal stands (exit 1, not 3), and the
        # message names both.
        d.terminate()
        d.wait(timeout=DEADLINE)
        poll(lambda: not os.path.exists(self.system), "the system socket to go")
        code, _, err = self.status(env)
        self.assertEqual(code, 1, err)
        for what in ("refusing the socket directory " + os.path.dirname(own), "uid 1 ",
                     self.system):
            self.assertIn(what, err)
        # Named explicitly, it is refused as before: PYTHREAD_SOCKET is alone.
        code, _, err = self.status(dict(env, PYTHREAD_SOCKET=own))
        self.assertNotEqual(code, 0, err)
        self.assertNotIn(self.system, err)

    def test_pythread_socket_alone(self):
        self.system_daemon()
        env = dict(self.env, PYTHREAD_SOCKET=os.path.join(self.base, "elsewhere.sock"))
        code, _, err = self.status(env)
        self.assertEqual(code, 3, err)
        self.assertIn("elsewhere.sock", err)
        self.assertNotIn(self.system, err)

    def test_impostor_system_daemon_refused(self):
        # The checks hold on the fallback too: a "system" socket whose
        # directory and daemon belong to nobody is refused by another user
        # (uid 1), who trusts only root, themselves and the service user.
        imp = os.path.join(self.base, "imp")
        os.mkdir(imp, 0o755)
        os.chown(imp, NOBODY, NOBODY)
        sock = os.path.join(imp, "pythreadd.sock")
        self.daemon(sock, dict(self.env, PYTHREAD_SOCKET=sock), user=as_nobody)

        def as_uid_1():
            os.setgroups([])
            os.setgid(1)
            os.setuid(1)

        code, _, err = self.status(dict(self.env, PYTHREAD_SYSTEM_SOCKET=sock), user=as_uid_1)
        self.assertEqual(code, 1, err)  # refused (PT_EPERM), not unreachable
        self.assertIn("refusing", err)
        self.assertIn(imp, err)

    @unittest.skipUnless(len(sys.argv) > 4, "no libpythread and Python binding given")
    def test_python_binding(self):
        self.system_daemon()
        env = dict(self.env, PYTHREAD_LIBRARY=LIB, PYTHONPATH=BINDING)
        if os.environ.get("PT_TEST_ASAN_RUNTIME"):  # a sanitizer build of the library
            env["LD_PRELOAD"] = os.environ["PT_TEST_ASAN_RUNTIME"]
            env["ASAN_OPTIONS"] = "detect_leaks=0"  # the interpreter keeps memory by design
        python = nobodys_python()
        if not python:
            self.skipTest("no Python interpreter that uid 65534 may run")
        r = subprocess.run([python, "-c", "import pythread; print(pythread.connect().socket)"],
                           env=env, capture_output=True, text=True, timeout=DEADLINE,
                           preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), self.system)


if __name__ == "__main__":
    CTL, DAEMON = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 4:
        LIB, BINDING = sys.argv[3], sys.argv[4]
    unittest.main(argv=sys.argv[:1], verbosity=2)
