#!/usr/bin/env python3
"""pythreadctl's and pythreadd's output for people: messages that say each
thing once in the command line's words, the permission hint on the socket,
user and group names and relative times in tables (--json stays exact),
--pretty JSON, plain log lines on a terminal, and completion by kind.

Usage: test_output.py PYTHREADCTL PYTHREADD COMPLETION_SCRIPT

Every test starts its own pythreadd on a socket in a fresh temporary
directory. Waiting is polling with a deadline, never a fixed sleep.
"""
import grp
import json
import os
import pty
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from cliutil import DEADLINE, poll, start_pythreadd, stop_pythreadd

CTL = DAEMON = COMPLETION = None
NOBODY = 65534


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


class Output(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ptout-")
        self.sock = os.path.join(self.dir, "d.sock")
        self.env = dict(os.environ, PYTHREAD_SOCKET=self.sock)
        self.daemon = start_pythreadd(DAEMON, self.sock)

    def tearDown(self):
        log = stop_pythreadd(self.daemon)
        self.assertNotIn("Sanitizer", log)
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_ctl(self, *args, env=None, **kw):
        return subprocess.run([CTL] + list(args), env=env or self.env, capture_output=True,
                              text=True, timeout=DEADLINE, **kw)

    def ok(self, *args):
        r = self.run_ctl(*args)
        self.assertEqual(r.returncode, 0, "pythreadctl %s: %s" % (args, r.stderr))
        self.assertEqual(r.stderr, "")
        return r.stdout

    def error(self, code, *args, env=None, **kw):
        r = self.run_ctl(*args, env=env, **kw)
        self.assertEqual(r.returncode, code, "pythreadctl %s: %r" % (args, r.stderr))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        line = lines[0]
        self.assertTrue(line.startswith("pythreadctl: "), line)
        # no C names, nothing said twice
        self.assertNotRegex(line, r"\bPT_[A-Z_]+")
        self.assertNotRegex(line, r"\b(\w+): \1: ")
        self.assertNotIn("pythreadd: cannot connect to pythreadd", line)
        return line

    # -- messages -------------------------------------------------------
    def test_messages_name_the_object_once(self):
        self.ok("create", "lock", "x")
        line = self.error(1, "create", "lock", "x")
        self.assertEqual(line, "pythreadctl: create 'x': exists already; choose another name, "
                               "or remove it first with 'pythreadctl unlink x'")
        line = self.error(1, "unlink", "nosuch")
        self.assertEqual(line, "pythreadctl: unlink 'nosuch': no such object; 'pythreadctl "
                               "list' shows the names there are")
        self.assertIn("event 'e': no such object; create it first with 'pythreadctl create "
                      "event e'", self.error(1, "event", "is-set", "e"))
        self.assertIn("create barrier b --parties N", self.error(1, "barrier", "wait", "b"))
        self.assertIn("create condition c", self.error(1, "notify", "c"))
        line = self.error(1, "create", "condition", "c", "--lock", "nolock")
        self.assertIn("create 'c': lock 'nolock': no such object", line)
        line = self.error(1, "lock", "x", "--rlock", "--", "true")
        self.assertEqual(line, "pythreadctl: lock 'x': it is a lock: use it with 'pythreadctl "
                               "lock x', or remove it first with 'pythreadctl unlink x'")
        self.ok("create", "event", "ev")
        self.assertIn("sem 'ev': it is an event: use it with 'pythreadctl event set|clear|wait "
                      "ev'", self.error(1, "sem", "ev", "--", "true"))

    def test_no_daemon_said_once(self):
        env = dict(self.env, PYTHREAD_SOCKET=os.path.join(self.dir, "none.sock"))
        line = self.error(3, "status", env=env)
        self.assertEqual(line.count("pythreadd"), 3, line)  # daemon, its start, its unit
        self.assertIn("at %s: no socket there; is the daemon running?" % env["PYTHREAD_SOCKET"],
                      line)
        # a socket file nobody listens on
        stale = os.path.join(self.dir, "stale.sock")
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        line = self.error(3, "-s", stale, "list")
        self.assertIn("nothing listens on that socket", line)

    def test_permission_denied_has_its_own_hint(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run pythreadctl as nobody")
        os.chmod(self.dir, 0o755)
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.stat(self.sock).st_gid).gr_name
        os.chmod(self.sock, 0o600)
        line = self.error(3, "status", preexec_fn=as_nobody)
        self.assertIn("permission denied", line)
        self.assertIn("user %s (%d), mode 0600, so only its owner may connect" %
                      (me, os.geteuid()), line)
        self.assertIn("--socket-mode", line)
        self.assertNotIn("is the daemon running", line)
        os.chmod(self.sock, 0o660)
        line = self.error(3, "status", preexec_fn=as_nobody)
        self.assertIn("ask to join group %s" % group, line)
        self.assertNotIn("is the daemon running", line)
        os.chmod(self.dir, 0o700)
        line = self.error(3, "status", preexec_fn=as_nobody)
        self.assertIn("permission denied on a directory on its way", line)

    # -- names, ages, --pretty ------------------------------------------
    def user_cell(self, uid):
        try:
            return "%s (%d)" % (pwd.getpwuid(uid).pw_name, uid)
        except KeyError:
            return str(uid)

    def test_tables_name_users_json_keeps_numbers(self):
        me = os.getuid()
        self.ok("create", "lock", "L")
        row = self.ok("list", "--no-legend").splitlines()[0].split("\t")
        self.assertEqual(row[4], self.user_cell(me))
        self.assertRegex(row[4], r"^(\S+ \(%d\)|%d)$" % (me, me))
        doc = json.loads(self.ok("list", "--json"))
        self.assertEqual(doc["objects"][0]["uid"], me)
        self.assertIsInstance(doc["objects"][0]["gid"], int)
        try:
            group = "%s (%d)" % (grp.getgrgid(os.getgid()).gr_name, os.getgid())
        except KeyError:
            group = str(os.getgid())
        self.assertIn("owner:\tuser %s, group %s, mode 0600" % (self.user_cell(me), group),
                      self.ok("show", "L"))
        # a holder's row
        h = subprocess.Popen([CTL, "lock", "L"], env=self.env, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
        try:
            h.stdout.readline()
            rows = [l.split("\t") for l in self.ok("show", "L").splitlines()
                    if l.startswith("1\t")]
            self.assertEqual(rows[0][3], self.user_cell(me))
        finally:
            h.send_signal(signal.SIGTERM)
            h.wait(timeout=DEADLINE)
            h.stdout.close()
        # an id with no name stays a number
        if os.geteuid() == 0:
            uid = 54321
            while True:
                try:
                    pwd.getpwuid(uid)
                    uid += 1
                except KeyError:
                    break

            def as_unnamed():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.chmod(self.dir, 0o755)
            subprocess.run([CTL, "create", "event", "E", "--mode", "0644"], env=self.env,
                           check=True, timeout=DEADLINE, preexec_fn=as_unnamed)
            rows = [l.split("\t") for l in self.ok("list", "--no-legend").splitlines()
                    if l.startswith("E\t")]
            self.assertEqual(rows[0][4], str(uid))

    def test_sessions_connected_ago(self):
        out = self.ok("sessions")
        lines = out.splitlines()
        self.assertEqual(lines[0].split("\t")[4], "CONNECTED")
        mine = [l.split("\t") for l in lines[1:] if l.split("\t")[0].endswith("*")][0]
        self.assertRegex(mine[4], r"^\d+s ago$")
        self.assertEqual(mine[2], self.user_cell(os.getuid()))
        doc = json.loads(self.ok("sessions", "--json"))
        self.assertIsInstance(doc["sessions"][0]["connected_at"], float)
        self.assertIsInstance(doc["sessions"][0]["uid"], int)
        self.assertRegex(self.ok("status"), r"uptime:\t\S+ \(since \d{4}-\d\d-\d\d "
                                            r"\d\d:\d\d:\d\d\)")

    def test_pretty_json(self):
        self.ok("create", "lock", "L")
        for args in (["--pretty", "show", "L"], ["show", "L", "--pretty"],
                     ["--pretty", "list"], ["sessions", "--pretty"], ["status", "--pretty"]):
            out = self.ok(*args)
            self.assertTrue(out.startswith("{\n  \""), out[:40])
            plain = self.ok(*[a if a != "--pretty" else "--json" for a in args])
            self.assertEqual(len(plain.strip().splitlines()), 1, plain[:80])
            a, b = json.loads(out), json.loads(plain)
            if args[-1] in ("L", "list"):  # the same document, only laid out
                self.assertEqual(a, b)
        out = self.ok("--pretty", "show", "L")
        self.assertIn('\n  "object": {\n    "name": "L",', out)

    # -- the daemon's log on a terminal ---------------------------------
    def daemon_on_pty(self, journal):
        """pythreadd's stderr on a terminal, from start to stop. journal:
        JOURNAL_STREAM names that terminal, as systemd would its stream."""
        master, slave = pty.openpty()
        sock = os.path.join(self.dir, "tty.sock")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            st = os.fstat(slave)
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        p = subprocess.Popen([DAEMON, "--socket", sock], stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=slave, env=env)
        os.close(slave)
        out = b""

        def read_some():
            nonlocal out
            while select.select([master], [], [], 0)[0]:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                if not data:
                    return
                out += data

        try:
            poll(lambda: (read_some(), b"listening on" in out)[1], "the daemon to start")
            # a peer's mistake makes a warning or notice line
            self.run_ctl("-s", sock, "create", "lock", "bad^name")
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=DEADLINE)
            poll(lambda: (read_some(), b"stopped" in out)[1], "the daemon's last line")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
        return out.decode(errors="replace").replace("\r\n", "\n")

    def test_daemon_plain_lines_on_a_terminal(self):
        out = self.daemon_on_pty(journal=False)
        self.assertIn("listening on", out)
        for line in out.splitlines():
            self.assertNotRegex(line, r"^<\d>", out)
        out = self.daemon_on_pty(journal=True)
        lines = [l for l in out.splitlines() if l]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<\d>", out)
        # a pipe (what tests and other programs read) keeps them too
        self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(timeout=DEADLINE)
        log = self.daemon.stderr.read().decode()
        self.daemon.stderr.close()
        self.assertRegex(log, r"^<\d>")
        self.daemon = start_pythreadd(DAEMON, self.sock)

    # -- completion -------------------------------------------------------
    def complete(self, *words):
        bindir = os.path.join(self.dir, "bin")
        if not os.path.isdir(bindir):
            os.mkdir(bindir)
            os.symlink(CTL, os.path.join(bindir, "pythreadctl"))
        script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _pythreadctl; '
                  'printf "%%s\\n" "${COMPREPLY[@]}"' %
                  (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1))
        env = dict(self.env, PATH=bindir + os.pathsep + self.env.get("PATH", ""))
        r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                           timeout=DEADLINE, cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(x for x in r.stdout.split("\n") if x)

    def test_completion_by_kind(self):
        if not shutil.which("bash"):
            self.skipTest("no bash")
        for kind, name in (("lock", "o.lock"), ("rlock", "o.rlock"), ("event", "o.event"),
                           ("condition", "o.cond"), ("barrier", "o.barrier")):
            self.ok("create", kind, name, *(["--parties", "2"] if kind == "barrier" else []))
        self.ok("create", "semaphore", "o.sem")
        self.ok("create", "semaphore", "o.bsem", "--bounded")
        c = self.complete
        self.assertEqual(c("pythreadctl", "lock", "o."), ["o.lock"])
        self.assertEqual(c("pythreadctl", "lock", "--rlock", "o."), ["o.rlock"])
        self.assertEqual(c("pythreadctl", "lock", "-w", "5", "o."), ["o.lock"])
        self.assertEqual(c("pythreadctl", "sem", "o."), ["o.bsem", "o.sem"])
        self.assertEqual(c("pythreadctl", "event", "set", "o."), ["o.event"])
        self.assertEqual(c("pythreadctl", "event", "wait", "--timeout", "3", "o."), ["o.event"])
        self.assertEqual(c("pythreadctl", "barrier", "wait", "o."), ["o.barrier"])
        self.assertEqual(c("pythreadctl", "notify", "o."), ["o.cond"])
        self.assertEqual(c("pythreadctl", "notify", "-n", "2", "o."), ["o.cond"])
        self.assertEqual(c("pythreadctl", "create", "condition", "c", "--lock", "o."),
                         ["o.lock", "o.rlock"])
        self.assertEqual(len(c("pythreadctl", "show", "o.")), 7)
        self.assertEqual(c("pythreadctl", "-s", self.sock, "event", "clear", "o."), ["o.event"])

    def test_completion_after_dashdash(self):
        if not shutil.which("bash"):
            self.skipTest("no bash")
        self.ok("create", "lock", "L")
        with open(os.path.join(self.dir, "afile"), "w"):
            pass
        c = self.complete
        self.assertIn("bash", c("pythreadctl", "lock", "L", "--", "bas"))
        self.assertNotIn("--nonblock", c("pythreadctl", "lock", "L", "--", "--non"))
        # later words are the command's arguments, not pythreadctl's
        self.assertEqual(c("pythreadctl", "lock", "L", "--", "cat", "afi"), ["afile"])
        self.assertEqual(c("pythreadctl", "lock", "L", "--", "cat", "L"), [])
        self.assertEqual(c("pythreadctl", "sem", "S", "--", "ls", "af"), ["afile"])


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    CTL, DAEMON = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    COMPLETION = os.path.abspath(sys.argv[3])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)
