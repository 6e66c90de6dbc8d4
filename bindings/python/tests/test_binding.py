"""What the binding adds to threading's API, and the places where it has to
work at matching threading: names, errors, the Barrier action's exception,
timeouts past TIMEOUT_MAX and NaN, reprs, Condition over a lock pythread does
not host, and the binding's copy of the inspection structures."""

import ctypes
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

import daemon  # puts the pythread package on sys.path
import pythread

_daemon = daemon.Daemon()


def setUpModule():
    _daemon.start()


def tearDownModule():
    _daemon.stop()


def unique(what):
    return f"pytest/{what}.{uuid.uuid4().hex[:12]}"


DEADLINE = 30.0  # for polls and joins; each ends as soon as its condition holds


def poll(fn, want):
    """fn() until it returns want or DEADLINE passes; its last value."""
    deadline = time.monotonic() + DEADLINE
    while (got := fn()) != want and time.monotonic() < deadline:
        time.sleep(0.005)
    return got


def shape(r):
    """A repr with addresses and the module's names made alike, so that
    threading's and pythread's can be compared as they are."""
    r = re.sub(r"0x[0-9a-f]+", "0xADDR", r)
    return r.replace("_thread.RLock", "pythread.RLock").replace("_thread.lock", "pythread.Lock")


def in_thread(fn, *args):
    """fn(*args) in a thread, joined within DEADLINE: what it returned or
    raised, or TimeoutError if it still runs then."""
    out = []

    def run():
        try:
            out.append(fn(*args))
        except BaseException as exc:  # noqa: B036 - handed to the test
            out.append(exc)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(DEADLINE)
    return out[0] if out else TimeoutError(f"{fn} still runs after {DEADLINE} s")


class BindingTests(unittest.TestCase):
    def test_exports(self):
        self.assertIs(pythread.BrokenBarrierError, threading.BrokenBarrierError)
        self.assertEqual(pythread.TIMEOUT_MAX, threading.TIMEOUT_MAX)

    def test_same_name_same_object(self):
        name = unique("shared")
        a = pythread.Lock(name=name, transient=True)
        b = pythread.Lock(name=name, transient=True)
        self.assertTrue(a.acquire())
        self.assertTrue(b.locked())
        self.assertFalse(b.acquire(False))
        b.release()  # any holder may release a Lock, as in threading
        self.assertFalse(a.locked())
        self.assertIn(repr(name), repr(a))

    def test_anonymous_objects_are_distinct(self):
        a, b = pythread.Lock(), pythread.Lock()
        a.acquire()
        self.assertFalse(b.locked())
        self.assertIsNone(a.name)
        with self.assertRaises(ValueError):
            pythread.Lock(transient=False)

    def test_named_rlock_handles_share_the_level(self):
        name = unique("rlock")
        a = pythread.RLock(name=name, transient=True)
        b = pythread.RLock(name=name, transient=True)
        a.acquire()
        b.acquire()
        self.assertEqual(a._recursion_count(), 2)
        a.release()
        self.assertEqual(b._recursion_count(), 1)
        b.release()
        self.assertFalse(a._is_owned())

    def test_unlink(self):
        name = unique("unlinked")
        e = pythread.Event(name=name)
        e.set()
        pythread.unlink(name)
        self.assertTrue(e.is_set())  # open handles keep working
        with self.assertRaises(FileNotFoundError):
            pythread.unlink(name)
        self.assertFalse(pythread.Event(name=name, transient=True).is_set())  # a new one

    def test_kind_and_parameter_clash(self):
        name = unique("clash")
        s = pythread.Semaphore(2, name=name, transient=True)
        with self.assertRaises(FileExistsError):
            pythread.BoundedSemaphore(2, name=name)
        s.close()

    def test_bad_names(self):
        for bad in ("", "has space", "a\0b", "x" * 256):
            with self.subTest(name=bad), self.assertRaises(ValueError):
                pythread.Lock(name=bad)
        with self.assertRaises(TypeError):
            pythread.Lock(name=3)

    def test_closed_handle(self):
        e = pythread.Event()
        e.close()
        e.close()  # twice is fine
        with self.assertRaises(ValueError):
            e.set()

    def test_connect_nowhere(self):
        with self.assertRaises(ConnectionError):
            pythread.connect(os.path.join(_daemon.dir, "nobody.sock"))

    def test_barrier_action_error(self):
        def action():
            raise KeyError("from the action")
        b = pythread.Barrier(2, action)
        errors = []

        def party():
            try:
                b.wait(10)
            except BaseException as exc:
                errors.append(type(exc))
        t = threading.Thread(target=party)
        t.start()
        party()
        t.join()
        # The party that ran the action gets its error, the other one a
        # broken barrier, as in threading.
        self.assertEqual(sorted(e.__name__ for e in errors),
                         ["BrokenBarrierError", "KeyError"])
        self.assertTrue(b.broken)

    def test_huge_timeouts_where_threading_does_not_wait(self):
        big = pythread.TIMEOUT_MAX * 2
        self.assertTrue(pythread.Semaphore(1).acquire(timeout=big))
        with self.assertRaises(OverflowError):
            pythread.Semaphore(0).acquire(timeout=big)
        e = pythread.Event()
        with self.assertRaises(OverflowError):
            e.wait(big)
        e.set()
        self.assertTrue(e.wait(big))

    def test_barrier_timeout_above_timeout_max(self):
        # threading takes any timeout at construction and in wait(), and
        # fails with OverflowError only when a party has to block: the last
        # party and a broken barrier answer as usual. Each case runs on
        # threading's Barrier too, so the test says what CPython does.
        big = pythread.TIMEOUT_MAX * 2
        for Barrier in (threading.Barrier, pythread.Barrier):
            with self.subTest(Barrier=Barrier.__module__):
                self.assertEqual(Barrier(1, timeout=1e20).wait(), 0)
                self.assertEqual(Barrier(1).wait(big), 0)
                self.assertEqual(Barrier(1).wait(math.inf), 0)
                for b, args in ((Barrier(2, timeout=1e20), ()), (Barrier(2), (big,)),
                                (Barrier(2, timeout=5), (math.inf,))):
                    got = in_thread(b.wait, *args)
                    if not isinstance(got, OverflowError):
                        b.abort()  # frees a wait that should not have blocked
                    self.assertIsInstance(got, OverflowError)
                    # The party that could not wait left; nothing broke.
                    self.assertEqual((b.broken, b.n_waiting), (False, 0))
                b = Barrier(2, timeout=1e20)
                b.abort()
                self.assertIsInstance(in_thread(b.wait), threading.BrokenBarrierError)

    # threading never refuses a NaN timeout: where it waits it tests
    # "timeout > 0" (false for NaN), where it loops it recomputes a NaN that
    # never runs out. Each case that ends runs on threading too.

    def test_nan_timeout_condition_and_event_do_not_wait(self):
        nan = math.nan
        for mod in (threading, pythread):
            with self.subTest(module=mod.__name__):
                c = mod.Condition()
                with c:
                    self.assertIs(c.wait(nan), False)
                    self.assertTrue(c._is_owned())  # held again, as after any wait
                    self.assertEqual(c.wait_for(lambda: "ready", nan), "ready")
                    calls = []

                    def third_time():
                        calls.append(1)
                        return len(calls) if len(calls) >= 3 else 0
                    self.assertEqual(c.wait_for(third_time, nan), 3)
                e = mod.Event()
                self.assertIs(e.wait(nan), False)
                e.set()
                self.assertIs(e.wait(nan), True)

    def test_nan_timeout_semaphore_and_barrier_without_waiting(self):
        nan = math.nan
        for mod in (threading, pythread):
            with self.subTest(module=mod.__name__):
                self.assertIs(mod.Semaphore(1).acquire(timeout=nan), True)
                self.assertEqual(mod.Barrier(1).wait(nan), 0)
                self.assertEqual(mod.Barrier(1, timeout=nan).wait(), 0)

    def test_nan_timeout_waits_until_the_state_changes(self):
        # Semaphore.acquire and Barrier.wait return once a permit or the last
        # party comes (threading spins until then).
        s = pythread.Semaphore(0)
        got = []
        t = threading.Thread(target=lambda: got.append(s.acquire(timeout=math.nan)),
                             daemon=True)
        t.start()
        s.release()
        t.join(DEADLINE)
        self.assertEqual(got, [True])
        b = pythread.Barrier(2, timeout=math.nan)
        first = []
        t = threading.Thread(target=lambda: first.append(b.wait()), daemon=True)
        t.start()
        # The first party parks (its NaN default never runs out) until the
        # second comes.
        self.assertEqual(poll(lambda: b.n_waiting, 1), 1)
        second = b.wait(math.nan)
        t.join(DEADLINE)
        self.assertEqual(sorted(first + [second]), [0, 1])

    def test_negative_timeouts(self):
        c = pythread.Condition()
        with c:
            self.assertFalse(c.wait(-1))  # threading: -1 does not wait here
        self.assertFalse(pythread.Event().wait(-1))
        self.assertFalse(pythread.Semaphore(0).acquire(timeout=-1))
        with self.assertRaises(pythread.BrokenBarrierError):
            pythread.Barrier(2, timeout=-1).wait()

    def test_condition_over_threading_lock_is_local(self):
        lock = threading.Lock()
        c = pythread.Condition(lock)
        self.assertIsInstance(c, pythread.Condition)
        with c:
            self.assertTrue(lock.locked())
            self.assertFalse(c.wait(0.01))
        with self.assertRaises(TypeError):
            pythread.Condition(lock, name=unique("cond"))

    def test_fast_path_and_its_switch(self):
        # With the daemon stopped, uncontended operations on a word still
        # run; a handle opened with fast_path=False waits for the daemon.
        if os.environ.get("PYTHREAD_FASTPATH") == "0":
            self.skipTest("PYTHREAD_FASTPATH=0 turns the fast path off for the process")
        name = unique("fast")
        fast = pythread.Lock(name=name, transient=True)
        slow = pythread.Lock(name=name, transient=True, fast_path=False)
        sem = pythread.Semaphore(2, name=unique("fastsem"), transient=True)
        event = pythread.Event(name=unique("fastevent"), transient=True)
        _daemon.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(1000):
                self.assertTrue(fast.acquire())
                self.assertTrue(fast.locked())
                fast.release()
                with sem:
                    self.assertFalse(event.is_set())
            out = []
            t = threading.Thread(target=lambda: out.append(slow.acquire(timeout=DEADLINE)))
            t.start()
            t.join(0.2)
            self.assertTrue(t.is_alive(), "fast_path=False answered without the daemon")
        finally:
            _daemon.proc.send_signal(signal.SIGCONT)
        t.join(DEADLINE)
        self.assertEqual(out, [True])
        self.assertTrue(fast.locked())
        slow.release()
        self.assertFalse(fast.locked())

    def test_condition_over_named_lock(self):
        lock = pythread.Lock(name=unique("cl"), transient=True)
        c = pythread.Condition(lock, name=unique("cc"), transient=True)
        self.assertFalse(c._is_owned())
        with c:
            self.assertTrue(lock.locked())
            self.assertTrue(c._is_owned())
            c.notify(-1)  # wakes nobody, as in threading
        self.assertFalse(lock.locked())

    def test_cluster_objects_need_a_daemon_in_a_cluster(self):
        # This daemon runs without --etcd: every kind's cluster=True open
        # is refused, naming the object and what to do, and the session
        # goes on serving.
        opens = {
            "Lock": lambda n: pythread.Lock(name=n, cluster=True),
            "RLock": lambda n: pythread.RLock(name=n, cluster=True),
            "Condition": lambda n: pythread.Condition(name=n, cluster=True),
            "Semaphore": lambda n: pythread.Semaphore(2, name=n, cluster=True),
            "BoundedSemaphore": lambda n: pythread.BoundedSemaphore(name=n, cluster=True),
            "Event": lambda n: pythread.Event(name=n, cluster=True),
            "Barrier": lambda n: pythread.Barrier(2, name=n, cluster=True),
        }
        for kind, open_one in opens.items():
            name = unique("cluster")
            with self.assertRaises(RuntimeError) as cm:
                open_one(name)
            self.assertIn(f"{kind} '{name}': open: a cluster object needs a daemon in a "
                          "cluster", str(cm.exception))
            self.assertIn("--etcd ENDPOINTS", str(cm.exception))
        lock = pythread.Lock(name=unique("host"), transient=True)
        self.assertFalse(lock._cluster)
        with self.assertRaises(ValueError):  # a condition is where its lock is
            pythread.Condition(lock, cluster=True)
        with self.assertRaises(TypeError):
            pythread.Condition(threading.Lock(), cluster=True)
        self.assertFalse(pythread.Condition(lock)._cluster)
        with self.assertRaises(RuntimeError) as cm:
            pythread.unlink(lock._daemon_name, cluster=True)
        self.assertIn("unlink: cluster objects need a daemon in a cluster", str(cm.exception))
        self.assertFalse(lock.locked())  # the host's object of that name is untouched


def waiters(obj, n):
    """Polls until obj has n calls parked in the daemon (every process)."""
    return poll(lambda: len(obj._inspect().waiters), n)


class DeadlockTests(unittest.TestCase):
    """Owners are (session, thread): two threads of this process deadlock
    as two processes would. deadlock="fail" makes the wait that closes the
    cycle raise DeadlockError; the other wait goes on."""

    def test_deadlock_error_is_a_runtime_error(self):
        self.assertTrue(issubclass(pythread.DeadlockError, RuntimeError))
        self.assertIn("DeadlockError", pythread.__all__)

    def test_policy_words_checked(self):
        for bad in ("Fail", "", 1, True):
            with self.assertRaises(ValueError):
                pythread.Lock(deadlock=bad)
            with self.assertRaises(ValueError):
                pythread.Client(deadlock=bad)
        pythread.RLock(deadlock="report").close()

    def ab_ba(self, closing_lock):
        """A thread holds a and waits for b; this thread holds b and waits
        for a through closing_lock(name of a): what that wait did, and
        whether the thread got a once this thread let b go."""
        na, nb = unique("dl.a"), unique("dl.b")
        a, b = pythread.Lock(name=na, transient=True), pythread.RLock(name=nb, transient=True)
        a_held, b_held, got = threading.Event(), threading.Event(), []

        def other():
            with a:
                a_held.set()
                b_held.wait(DEADLINE)
                got.append(b.acquire())
                b.release()
        t = threading.Thread(target=other)
        t.start()
        self.assertTrue(a_held.wait(DEADLINE))
        b.acquire()
        b_held.set()
        self.assertEqual(waiters(b, 1), 1)
        closing = closing_lock(na)
        try:
            result = closing.acquire()
        except pythread.DeadlockError as exc:
            result = exc
        finally:
            b.release()
        t.join(DEADLINE)
        self.assertEqual(got, [True])
        return result, na, nb

    def test_fail_policy_of_an_object(self):
        exc, na, nb = self.ab_ba(lambda name: pythread.Lock(name=name, deadlock="fail"))
        self.assertIsInstance(exc, pythread.DeadlockError)
        self.assertIsInstance(exc, RuntimeError)
        self.assertIn(f"Lock '{na}': acquire: deadlock", str(exc))
        self.assertIn(f"holds RLock '{nb}' and waits for Lock '{na}'", str(exc))

    def test_report_waits_on(self):
        # By default both waits go on, as threading's would; releasing the
        # plain Lock a from a third thread (any may) breaks the cycle.
        a = pythread.Lock(name=unique("dl.ra"), transient=True)
        b = pythread.Lock(name=unique("dl.rb"), transient=True)
        a_held, b_held, got = threading.Event(), threading.Event(), []

        def t_run():
            a.acquire()
            a_held.set()
            b_held.wait(DEADLINE)
            got.append(("t", b.acquire()))
            b.release()

        def u_run():
            a_held.wait(DEADLINE)
            b.acquire()
            b_held.set()
            got.append(("u", a.acquire()))
            a.release()
            b.release()
        threads = [threading.Thread(target=t_run), threading.Thread(target=u_run)]
        for t in threads:
            t.start()
        self.assertEqual(waiters(a, 1), 1)
        self.assertEqual(waiters(b, 1), 1)
        self.assertEqual(got, [])
        a.release()
        for t in threads:
            t.join(DEADLINE)
        self.assertEqual(sorted(got), [("t", True), ("u", True)])

    def test_condition_wait_taking_its_lock_back(self):
        # t holds m and waits on cv; u takes cv's lock l and waits for m; a
        # notify moves t to take l back from u: the cycle t -> u -> t is
        # closed by t's re-acquire, which fails, without the lock.
        l = pythread.Lock(name=unique("dl.l"), transient=True)
        m = pythread.Lock(name=unique("dl.m"), transient=True)
        cv = pythread.Condition(l, name=unique("dl.cv"), transient=True, deadlock="fail")
        out, waiting, u_holds = [], threading.Event(), threading.Event()

        def t_run():
            m.acquire()
            cv.acquire()
            waiting.set()
            try:
                out.append(cv.wait())
            except pythread.DeadlockError as exc:
                out.append(exc)
            m.release()

        def u_run():
            l.acquire()
            u_holds.set()
            m.acquire()
            m.release()
            l.release()
        t = threading.Thread(target=t_run)
        t.start()
        self.assertTrue(waiting.wait(DEADLINE))
        self.assertEqual(poll(lambda: sum(p.what == "wait" for p in cv._inspect().waiters), 1),
                         1)
        u = threading.Thread(target=u_run)
        u.start()
        self.assertTrue(u_holds.wait(DEADLINE))
        self.assertEqual(waiters(m, 1), 1)
        cv.notify()  # l is locked (by u): a Lock's condition may be notified
        t.join(DEADLINE)
        u.join(DEADLINE)
        self.assertEqual(len(out), 1)
        self.assertIsInstance(out[0], pythread.DeadlockError)
        self.assertIn("Condition", str(out[0]))
        self.assertFalse(l.locked())

    def test_client_policy_from_the_environment(self):
        # PYTHREAD_DEADLOCK=fail: every wait of the process's client fails
        # the deadlock it closes; a word it does not know is refused.
        code = (
            "import threading, pythread\n"
            "a, b = pythread.Lock(name='%s'), pythread.Lock(name='%s')\n"
            "a_held, b_held = threading.Event(), threading.Event()\n"
            "def other():\n"
            "    with a:\n"
            "        a_held.set(); b_held.wait(); b.acquire(); b.release()\n"
            "t = threading.Thread(target=other); t.start(); a_held.wait()\n"
            "b.acquire(); b_held.set()\n"
            "import time\n"
            "while not b._inspect().waiters: time.sleep(0.005)\n"
            "try:\n"
            "    a.acquire(); print('acquired')\n"
            "except pythread.DeadlockError as e:\n"
            "    print('DeadlockError')\n"
            "b.release(); t.join()\n" % (unique("dl.ea"), unique("dl.eb")))
        env = dict(os.environ, PYTHREAD_DEADLOCK="fail",
                   PYTHONPATH=os.path.dirname(os.path.dirname(pythread.__file__)))
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=DEADLINE)
        self.assertEqual((r.returncode, r.stdout), (0, "DeadlockError\n"), r.stderr)
        env["PYTHREAD_DEADLOCK"] = "sometimes"
        r = subprocess.run([sys.executable, "-c", "import pythread; pythread.Lock()"], env=env,
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PYTHREAD_DEADLOCK=sometimes", r.stderr)


class ReprTests(unittest.TestCase):
    """Each repr is compared with threading's for the same object in the same
    state, addresses and module names aside."""

    def assertSameRepr(self, ours, theirs):
        self.assertEqual(shape(repr(ours)), shape(repr(theirs)))

    def test_condition_over_its_own_rlock(self):
        ours, theirs = pythread.Condition(), threading.Condition()
        self.assertEqual(shape(repr(ours)), "<Condition(<unlocked pythread.RLock object "
                                            "owner=0 count=0 at 0xADDR>, 0)>")
        self.assertSameRepr(ours, theirs)
        for c in (ours, theirs):
            c.acquire()
            c.acquire()
        self.assertSameRepr(ours, theirs)  # owner=<this thread's ident> count=2
        for c in (ours, theirs):
            c.release()
            c.release()

    def test_condition_over_a_lock(self):
        for ours, theirs in ((pythread.Condition(pythread.Lock()),
                              threading.Condition(threading.Lock())),
                             (pythread.Condition(pythread.RLock()),
                              threading.Condition(threading.RLock()))):
            self.assertSameRepr(ours, theirs)
            with ours, theirs:
                self.assertSameRepr(ours, theirs)
        self.assertEqual(shape(repr(pythread.Condition(pythread.Lock()))),
                         "<Condition(<unlocked pythread.Lock object at 0xADDR>, 0)>")

    def test_condition_counts_its_waiters(self):
        # len(self._waiters) in threading: waiting for a notify, not yet
        # notified.
        ours, theirs = pythread.Condition(), threading.Condition()
        threads = []
        for c in (ours, theirs):
            def wait(c=c):
                with c:
                    c.wait(DEADLINE)
            threads += [threading.Thread(target=wait) for _ in range(3)]
        for t in threads:
            t.start()
        three = "<Condition(<unlocked pythread.RLock object owner=0 count=0 at 0xADDR>, 3)>"
        for c in (ours, theirs):
            self.assertEqual(poll(lambda: shape(repr(c)), three), three)
        for c in (ours, theirs):
            c.acquire()
            c.notify()
        self.assertSameRepr(ours, theirs)  # locked by this thread, 2 waiting
        self.assertIn(", 2)>", repr(ours))
        for c in (ours, theirs):
            c.notify_all()
            c.release()
        for t in threads:
            t.join(DEADLINE)
        self.assertSameRepr(ours, theirs)

    def test_rlock_held_by_another_thread(self):
        ours, theirs = pythread.RLock(), threading.RLock()
        held, done = threading.Event(), threading.Event()

        def hold():
            for lock in (ours, theirs):
                lock.acquire()
                lock.acquire()
            held.set()
            done.wait(DEADLINE)
            for lock in (ours, theirs):
                lock.release()
                lock.release()
        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(held.wait(DEADLINE))
            self.assertEqual(shape(repr(ours)), f"<locked pythread.RLock object owner={t.ident} "
                                                "count=2 at 0xADDR>")
            self.assertSameRepr(ours, theirs)
        finally:
            done.set()
            t.join(DEADLINE)
        self.assertSameRepr(ours, theirs)

    def test_named_rlock_held_through_another_handle(self):
        name = unique("rlock.repr")
        a = pythread.RLock(name=name, transient=True)
        b = pythread.RLock(name=name, transient=True)
        held, done = threading.Event(), threading.Event()

        def hold():
            with a:
                held.set()
                done.wait(DEADLINE)
        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(held.wait(DEADLINE))
            self.assertEqual(repr(b), f"<locked pythread.RLock object name={name!r} "
                                      f"owner={t.ident} count=1 at {id(b):#x}>")
        finally:
            done.set()
            t.join(DEADLINE)


class LayoutTests(unittest.TestCase):
    def test_inspection_structures_match_the_header(self):
        # The binding reads pt_inspect_* structures with ctypes: their
        # layout must be the C compiler's, field for field.
        from pythread import _lib
        helper = os.environ.get("PYTHREAD_LAYOUT")
        if not helper:
            self.skipTest("PYTHREAD_LAYOUT (the built layout helper) is not set; ctest sets it")
        c = json.loads(subprocess.run([helper], check=True, capture_output=True,
                                      text=True).stdout)
        for struct in (_lib.InspectObject, _lib.InspectParty, _lib.InspectDetail):
            cname = "pt_inspect_" + struct.__name__[len("Inspect"):].lower()
            py = {"sizeof": ctypes.sizeof(struct)}
            py.update((f[0], getattr(struct, f[0]).offset) for f in struct._fields_)
            self.assertEqual(py, c[cname], f"{struct.__name__} against {cname}")


if __name__ == "__main__":
    unittest.main()
