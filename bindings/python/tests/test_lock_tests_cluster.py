"""CPython's own Lib/test/lock_tests.py again, with every object a cluster
object (cluster=True): a pythreadd with --etcd on a one-member etcd started
for the run, so every call goes through the cluster's log and its copy of
the core. Skipped (exit 77) where etcd is not installed.
"""

import functools
import sys
import unittest

try:
    from test import lock_tests
except ImportError as exc:  # a failure, not a skip: the suite must run
    sys.exit(f"test_lock_tests_cluster: this python3 ({sys.executable}) has no "
             f"test.lock_tests ({exc}); on Debian: apt-get install libpython3.11-testsuite")

import daemon  # noqa: E402 - puts the pythread package on sys.path
import pythread  # noqa: E402

if daemon.etcd_path() is None:
    print("SKIP: no etcd (Debian's etcd-server, or $PYTHREAD_ETCD): cluster objects need one")
    sys.exit(77)

_etcd = daemon.Etcd()
_daemon = None


def setUpModule():
    global _daemon
    _etcd.start()
    _daemon = daemon.Daemon(args=["--etcd", _etcd.endpoint, "--host-name", "lock-tests"])
    _daemon.start()


def tearDownModule():
    if _daemon:
        _daemon.stop()
    _etcd.stop()


def cluster(cls):
    return staticmethod(functools.partial(cls, cluster=True))


class LockTests(lock_tests.LockTests):
    locktype = cluster(pythread.Lock)


class RLockTests(lock_tests.RLockTests):
    locktype = cluster(pythread.RLock)


class ConditionAsRLockTests(lock_tests.RLockTests):
    locktype = cluster(pythread.Condition)


class EventTests(lock_tests.EventTests):
    eventtype = cluster(pythread.Event)


class ConditionTests(lock_tests.ConditionTests):
    condtype = cluster(pythread.Condition)


class SemaphoreTests(lock_tests.SemaphoreTests):
    semtype = cluster(pythread.Semaphore)


class BoundedSemaphoreTests(lock_tests.BoundedSemaphoreTests):
    semtype = cluster(pythread.BoundedSemaphore)


class BarrierTests(lock_tests.BarrierTests):
    barriertype = cluster(pythread.Barrier)


class ClusterObjectTests(unittest.TestCase):
    def test_host_and_cluster_objects_of_one_name_are_two(self):
        host = pythread.Lock(name="lt.same", transient=True)
        shared = pythread.Lock(name="lt.same", transient=True, cluster=True)
        with host:
            self.assertTrue(host.locked())
            self.assertFalse(shared.locked())
            self.assertIn("<unlocked", repr(shared))  # not the host lock's state
        with shared:
            self.assertFalse(host.locked())

    def test_unlink_cluster_name(self):
        # sem_unlink style, the cluster's name only: the open object keeps
        # working, a new open makes another, the host's object stays.
        host = pythread.Lock(name="lt.unlinked")
        shared = pythread.Lock(name="lt.unlinked", cluster=True)
        with shared:
            pythread.unlink("lt.unlinked", cluster=True)
            with self.assertRaises(FileNotFoundError):
                pythread.unlink("lt.unlinked", cluster=True)
            again = pythread.Lock(name="lt.unlinked", cluster=True)
            self.assertFalse(again.locked())
            self.assertTrue(shared.locked())
        pythread.unlink("lt.unlinked")  # the host's, still there
        self.assertFalse(host.locked())

    def test_pickle_opens_the_cluster_object(self):
        import pickle
        for make in (lambda: pythread.Lock(name="lt.pickled", cluster=True),
                     lambda: pythread.Lock(cluster=True)):  # anonymous: by its daemon name
            lock = make()
            copy = pickle.loads(pickle.dumps(lock))
            self.assertTrue(copy._cluster)
            with lock:
                self.assertTrue(copy.locked())
            self.assertFalse(copy.locked())


# CPython's internals, as in test_lock_tests, and what cluster=True cannot mean.
daemon.skip_tests([
    (LockTests, "test_at_fork_reinit", daemon.SKIP_LOCK_AT_FORK),
    (EventTests, "test_at_fork_reinit", daemon.SKIP_EVENT_AT_FORK),
    (ConditionTests, "test_acquire", daemon.SKIP_COND_OVER_THREADING_LOCK),
])


if __name__ == "__main__":
    unittest.main()
