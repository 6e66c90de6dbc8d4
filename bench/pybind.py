#!/usr/bin/env python3
"""The single operations of syncmgr.py, through pythread's Python binding
(bindings/python): what a Python user of pythread gets. Prints RESULT lines
(see bench.h) named pypt.*; the daemon is $PYTHREAD_SOCKET's, the library
$PYTHREAD_LIBRARY's.

    pybind.py ops ITERS
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bindings", "python"))

import pythread  # noqa: E402
from syncmgr import ROUNDS, report, time_into  # noqa: E402


def pair(obj):
    def run():
        obj.acquire()
        obj.release()
    return run


def mode_ops(iters):
    tag = f"bench-py-{os.getpid()}-"
    lock = pythread.Lock(name=tag + "lock", transient=True)
    rlock = pythread.RLock(name=tag + "rlock", transient=True)
    sem = pythread.Semaphore(1, name=tag + "sem", transient=True)
    ev = pythread.Event(name=tag + "event", transient=True)
    ops = [("pypt.lock_pair", pair(lock)), ("pypt.rlock_pair", pair(rlock)),
           ("pypt.sem_pair", pair(sem)), ("pypt.event_is_set", ev.is_set)]
    samples = {name: [] for name, _ in ops}
    for _ in range(ROUNDS):
        for name, fn in ops:
            time_into(samples[name], fn, iters // ROUNDS)
    for name, _ in ops:
        report(name, samples[name])


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "ops":
        sys.exit(__doc__)
    mode_ops(int(sys.argv[2]))


if __name__ == "__main__":
    main()
