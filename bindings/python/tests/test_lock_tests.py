"""CPython's own Lib/test/lock_tests.py, run with pythread's types against a
pythreadd started for the run.

Only tests of CPython object internals are skipped, each with its reason in
SKIPPED below. On Debian the suite comes with libpython3.11-testsuite.
"""

import sys
import unittest

try:
    from test import lock_tests
except ImportError as exc:  # a failure, not a skip: the suite must run
    sys.exit(f"test_lock_tests: this python3 ({sys.executable}) has no test.lock_tests "
             f"({exc}); on Debian: apt-get install libpython3.11-testsuite")

import daemon  # noqa: E402 - puts the pythread package on sys.path
import pythread  # noqa: E402

_daemon = daemon.Daemon()


def setUpModule():
    _daemon.start()


def tearDownModule():
    _daemon.stop()


class LockTests(lock_tests.LockTests):
    locktype = staticmethod(pythread.Lock)


class RLockTests(lock_tests.RLockTests):
    locktype = staticmethod(pythread.RLock)


class ConditionAsRLockTests(lock_tests.RLockTests):
    # As Lib/test/test_threading.py runs it: a Condition over its own RLock
    # exports the RLock's API.
    locktype = staticmethod(pythread.Condition)


class EventTests(lock_tests.EventTests):
    eventtype = staticmethod(pythread.Event)


class ConditionTests(lock_tests.ConditionTests):
    condtype = staticmethod(pythread.Condition)


class SemaphoreTests(lock_tests.SemaphoreTests):
    semtype = staticmethod(pythread.Semaphore)


class BoundedSemaphoreTests(lock_tests.BoundedSemaphoreTests):
    semtype = staticmethod(pythread.BoundedSemaphore)


class BarrierTests(lock_tests.BarrierTests):
    barriertype = staticmethod(pythread.Barrier)


# Tests of CPython object internals, not of behaviour.
daemon.skip_tests([
    (LockTests, "test_at_fork_reinit", daemon.SKIP_LOCK_AT_FORK),
    (EventTests, "test_at_fork_reinit", daemon.SKIP_EVENT_AT_FORK),
])


if __name__ == "__main__":
    unittest.main()
