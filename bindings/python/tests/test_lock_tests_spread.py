"""CPython's own Lib/test/lock_tests.py with every object a cluster object
and the threads of each test spread over three daemons: three pythreadd,
hosts a, b and c, with --etcd on one 3-member etcd, all used from this
process. Skipped (exit 77) where etcd is not installed.

Every object a test makes is a _Spread: one pythread object per daemon, each
opened through that daemon's Client under one cluster name, so all three are
the same cluster object. A call goes to the object of the calling thread's
daemon: the main thread's is a, and the other threads of a test take b, c,
a, ... in the order of their first call. A holder on b is then another owner
than one on a, as another thread is, and every hand-off, notify, timeout and
barrier crossing between threads of different daemons goes through the
cluster's log. SpreadTests and the module's end check that it did spread.
"""

import ctypes
import functools
import inspect
import itertools
import os
import sys
import threading
import time
import unittest

try:
    from test import lock_tests
except ImportError as exc:  # a failure, not a skip: the suite must run
    sys.exit(f"test_lock_tests_spread: this python3 ({sys.executable}) has no "
             f"test.lock_tests ({exc}); on Debian: apt-get install libpython3.11-testsuite")

import daemon  # noqa: E402 - puts the pythread package on sys.path
import pythread  # noqa: E402
from pythread import _lib, _sync  # noqa: E402

if daemon.etcd_path() is None:
    print("SKIP: no etcd (Debian's etcd-server, or $PYTHREAD_ETCD): cluster objects need one")
    sys.exit(77)

HOSTS = ("a", "b", "c")
# The daemons' prefix in etcd (pythreadd's default, --etcd-prefix).
PREFIX = "/pythread/"

_etcd = daemon.Etcd(members=3)
_daemons = []
_clients = []  # one per daemon, in HOSTS' order

# ---------------------------------------------------------------------------
# Which daemon a thread talks to
# ---------------------------------------------------------------------------


class _Route(threading.local):
    index = None  # the calling thread's daemon, its place in _clients


_route = _Route()
_first_call = itertools.count(1)
# Threads routed to each daemon (the main thread to a), calls forwarded to
# each, and objects opened: the module's end compares them with what each
# host wrote to the cluster's log.
_threads = [1] + [0] * (len(HOSTS) - 1)
_calls = [0] * len(HOSTS)
_opened = [0]
_counts_mu = threading.Lock()


def _restart_routes():
    """From each test's setUp, in the main thread: the main thread on a,
    the test's other threads on b, c, a, ... by their first calls, so a
    test spreads its threads alike in every run, and its first other thread
    is on another host than the main thread."""
    global _first_call
    _route.index = 0
    _first_call = itertools.count(1)


def _here():
    i = _route.index
    if i is None:
        i = _route.index = next(_first_call) % len(_clients)
        with _counts_mu:
            _threads[i] += 1
    return i


# ---------------------------------------------------------------------------
# One cluster object through every daemon
# ---------------------------------------------------------------------------

_serial = itertools.count()


def _at(value, i):
    """value as daemon i's code sees it: a _Spread is its object there (a
    Condition over a spread lock is built on that daemon's lock)."""
    return value._objs[i] if isinstance(value, _Spread) else value


class _Spread:
    """cls(*args, **kwargs, cluster=True) opened through each daemon's
    Client under one name: anonymous to Python (repr shows no name, as
    lock_tests expects of an anonymous object) and transient, as cls()
    is. Methods, properties, repr and with go to the calling thread's
    daemon's object, with _Spread arguments replaced by their object on
    that daemon."""

    def __init__(self, cls, *args, **kwargs):
        name = f"spread/{os.getpid()}.{next(_serial)}"
        self._objs = tuple(
            _sync._construct_anonymous(cls, client, name, *(_at(a, i) for a in args),
                                       cluster=True, **{k: _at(v, i) for k, v in kwargs.items()})
            for i, client in enumerate(_clients))
        self._cluster_name = name
        with _counts_mu:
            _opened[0] += 1

    def _mine(self):
        i = _here()
        with _counts_mu:
            _calls[i] += 1
        return i, self._objs[i]

    def _forward(self, attr, /, *args, **kwargs):
        i, obj = self._mine()
        return getattr(obj, attr)(*(_at(a, i) for a in args),
                                  **{k: _at(v, i) for k, v in kwargs.items()})

    def __getattr__(self, attr):
        if attr == "_objs":  # not set: __init__ failed
            raise AttributeError(attr)
        # A method is looked up when it is called, not when it is taken:
        # lock_tests passes bound methods (lock.release) to assertRaises,
        # and a thread may call one that another took.
        if callable(inspect.getattr_static(self._objs[0], attr)):
            return functools.partial(self._forward, attr)
        return getattr(self._mine()[1], attr)  # a property: n_waiting, broken, _value

    def __enter__(self):
        return self._forward("__enter__")

    def __exit__(self, *exc):
        return self._forward("__exit__", *exc)

    def __repr__(self):
        return self._forward("__repr__")


def spread(cls):
    return staticmethod(functools.partial(_Spread, cls))


def _spread_condition_over(lock_cls):
    """A Condition over its own spread lock of lock_cls (lock_tests'
    condtype(), which makes its own lock)."""
    def make(lock=None):
        return _Spread(pythread.Condition, _Spread(lock_cls) if lock is None else lock)
    return staticmethod(make)


# ---------------------------------------------------------------------------
# The daemons
# ---------------------------------------------------------------------------


def setUpModule():
    # unittest calls tearDownModule only after a setUpModule that succeeded.
    try:
        _etcd.start()
        for i, host in enumerate(HOSTS):
            # Each daemon asks its own member first, as the hosts of a real
            # cluster would the member beside them: every member serves.
            endpoints = _etcd.endpoints[i:] + _etcd.endpoints[:i]
            d = daemon.Daemon(args=["--etcd", ",".join(endpoints), "--host-name", host])
            _daemons.append(d)
            d.start()
            _clients.append(pythread.Client(d.socket))
    except BaseException:
        _stop()
        raise


def _stop():
    """Stops the daemons and etcd; the daemons that did not end well (a
    sanitizer's report, a crash), as (host, status, log)."""
    bad = []
    # In reverse: each Daemon puts back the $PYTHREAD_SOCKET it found.
    for host, d in reversed(list(zip(HOSTS, _daemons))):
        d.stop()
        if d.proc is not None and d.proc.returncode != 0:
            bad.append((host, d.proc.returncode, d.final_log))
    _daemons.clear()
    _etcd.stop()
    return bad


def tearDownModule():
    try:
        _check_spread()
    finally:
        _clients.clear()
        bad = _stop()
    if bad:
        raise AssertionError("\n".join(
            f"pythreadd of host {host} ended with status {status}; its log ends:\n{log[-3000:]}"
            for host, status, log in bad))


def _check_spread():
    """The run did not go through one daemon: each daemon that threads were
    routed to (all three in a whole run) carried calls, and its host's
    entries in the cluster's log (its seq key counts them) go beyond its
    openings and closings of the objects (an entry each) by half those
    calls at least. Through one daemon, the other hosts would have written
    their openings and closings alone."""
    entries = [int(_etcd.get(f"{PREFIX}seq/{host}") or 0) for host in HOSTS]
    print(f"\nspread: {_opened[0]} objects, each opened through every daemon; by host: "
          + "; ".join(f"{h}: {t} threads, {c} calls, {n} entries in the log"
                      for h, t, c, n in zip(HOSTS, _threads, _calls, entries)), file=sys.stderr)
    for host, threads, calls, n in zip(HOSTS, _threads, _calls, entries):
        if threads and (calls == 0 or n - 2 * _opened[0] < calls / 2):
            raise AssertionError(
                f"host {host}: {threads} threads routed to it carried {calls} calls, and it "
                f"appended {n} log entries for {_opened[0]} objects opened and closed: the "
                "calls did not go through its daemon")


# ---------------------------------------------------------------------------
# lock_tests
# ---------------------------------------------------------------------------


class Spread:
    """Each test starts its threads' routes afresh (see _restart_routes)."""

    def setUp(self):
        _restart_routes()
        super().setUp()


class LockTests(Spread, lock_tests.LockTests):
    locktype = spread(pythread.Lock)


class RLockTests(Spread, lock_tests.RLockTests):
    locktype = spread(pythread.RLock)


class ConditionAsRLockTests(Spread, lock_tests.RLockTests):
    locktype = spread(pythread.Condition)


class EventTests(Spread, lock_tests.EventTests):
    eventtype = spread(pythread.Event)


class ConditionTests(Spread, lock_tests.ConditionTests):
    condtype = spread(pythread.Condition)


class ConditionOverLockTests(Spread, lock_tests.ConditionTests):
    """A Condition over a spread Lock: each daemon's Condition is built on
    that daemon's Lock object."""
    condtype = _spread_condition_over(pythread.Lock)


class SemaphoreTests(Spread, lock_tests.SemaphoreTests):
    semtype = spread(pythread.Semaphore)


class BoundedSemaphoreTests(Spread, lock_tests.BoundedSemaphoreTests):
    semtype = spread(pythread.BoundedSemaphore)


class BarrierTests(Spread, lock_tests.BarrierTests):
    barriertype = spread(pythread.Barrier)


# ---------------------------------------------------------------------------
# That the threads do spread
# ---------------------------------------------------------------------------


def _holder_hosts(obj, i):
    """The hosts of obj's holders as daemon i's copy has them (sorted), or
    None when it cannot say."""
    out = ctypes.POINTER(_lib.InspectDetail)()
    name = obj._cluster_name.encode()
    if _lib.lib.pt_inspect_cluster_show(_clients[i]._h, name, ctypes.byref(out)) < 0:
        return None
    try:
        d = out.contents
        return sorted(d.holders[k].host.decode() for k in range(d.n_holders))
    finally:
        _lib.lib.pt_inspect_detail_free(out)


class SpreadTests(Spread, unittest.TestCase):
    def test_threads_take_the_daemons_in_turn(self):
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(_here())) for _ in range(4)]
        for t in threads:  # one at a time: the order of first calls is theirs
            t.start()
            t.join()
        self.assertEqual(_here(), 0)
        self.assertEqual(seen, [1, 2, 0, 1])
        self.assertEqual(len({c.socket for c in _clients}), len(HOSTS))

    def test_every_host_holds_its_permit(self):
        # A permit held by a thread of each daemon: every daemon's copy
        # names the three hosts among its holders.
        sem = _Spread(pythread.BoundedSemaphore, 3)
        release = threading.Event()

        def hold(taken):
            sem.acquire()
            taken.set()
            release.wait()
            sem.release()

        sem.acquire()  # the main thread: a
        threads = []
        for _ in range(2):  # b, then c
            taken = threading.Event()
            threads.append(threading.Thread(target=hold, args=(taken,)))
            threads[-1].start()
            self.assertTrue(taken.wait(10))
        try:
            self.assertFalse(sem.acquire(False))
            for i in range(len(HOSTS)):
                # A copy shows another host's call once the watch brought it.
                deadline = time.monotonic() + 10
                while _holder_hosts(sem, i) != list(HOSTS) and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.assertEqual(_holder_hosts(sem, i), list(HOSTS), f"through {HOSTS[i]}")
        finally:
            release.set()
            for t in threads:
                t.join()
            sem.release()

    def test_condition_is_built_on_each_daemons_lock(self):
        for lock_cls in (pythread.Lock, pythread.RLock):
            lock = _Spread(lock_cls)
            cond = _Spread(pythread.Condition, lock)
            for i in range(len(HOSTS)):
                self.assertIs(cond._objs[i]._lock, lock._objs[i])
                self.assertIs(cond._objs[i]._client, _clients[i])
                self.assertTrue(cond._objs[i]._cluster)
            with cond:  # through a: the lock is held on every host
                self.assertTrue(lock._objs[1].locked())


# Those test_lock_tests_cluster skips, for the same reasons, and what a spread
# cannot mean.
daemon.skip_tests([
    (LockTests, "test_at_fork_reinit", daemon.SKIP_LOCK_AT_FORK),
    (EventTests, "test_at_fork_reinit", daemon.SKIP_EVENT_AT_FORK),
    (ConditionTests, "test_acquire", daemon.SKIP_COND_OVER_THREADING_LOCK),
    (ConditionOverLockTests, "test_acquire", daemon.SKIP_COND_OVER_THREADING_LOCK),
])


if __name__ == "__main__":
    unittest.main()
