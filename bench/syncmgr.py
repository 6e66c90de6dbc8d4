#!/usr/bin/env python3
"""The same operations as bench_pythread, through Python's multiprocessing
SyncManager over a Unix socket: the closest existing system. Prints the same
RESULT lines (see bench.h).

    syncmgr.py ops ITERS OPENS
    syncmgr.py handoff PROCS ITERS
    syncmgr.py throughput PROCS MILLISECONDS
"""
import multiprocessing as mp
import os
import sys
import tempfile
import time
from multiprocessing.managers import SyncManager

now = time.monotonic_ns


def report(name, samples, extra=""):
    samples.sort()
    n = len(samples)
    med = samples[min(n // 2, n - 1)] if n else 0
    p99 = samples[min(int(0.99 * n), n - 1)] if n else 0
    print(f"RESULT {name} median_ns={med} p99_ns={p99} n={n}" + (f" {extra}" if extra else ""),
          flush=True)


ROUNDS = 5  # turns each operation takes, as in bench_pythread


def time_into(samples, fn, iters):
    for i in range(-(iters // 10), iters):
        t0 = now()
        fn()
        if i >= 0:
            samples.append(now() - t0)


def mode_ops(m, iters, opens):
    lock, rlock, sem, ev, cv = m.Lock(), m.RLock(), m.Semaphore(1), m.Event(), m.Condition()

    def pair(obj):
        def run():
            obj.acquire()
            obj.release()
        return run

    ops = [("syncmgr.lock_pair", pair(lock)), ("syncmgr.rlock_pair", pair(rlock)),
           ("syncmgr.sem_pair", pair(sem)), ("syncmgr.event_is_set", ev.is_set),
           ("syncmgr.cond_notify", cv.notify)]
    samples = {name: [] for name, _ in ops}
    # The operations take turns, so a burst of load elsewhere hits all alike.
    cv.acquire()
    for _ in range(ROUNDS):
        for name, fn in ops:
            time_into(samples[name], fn, iters // ROUNDS)
    cv.release()
    for name, _ in ops:
        report(name, samples[name])
    opened = []
    for i in range(-(opens // 10), opens):
        t0 = now()
        obj = m.Lock()
        t1 = now()
        del obj  # the proxy's decref is the close, outside the timing
        if i >= 0:
            opened.append(t1 - t0)
    report("syncmgr.open_new", opened)


def handoff_worker(lock, turns, who, state, me, ready, go):
    ready.release()
    go.wait()
    total = len(turns)
    while True:
        lock.acquire()
        k = state[0]
        if k >= total:
            lock.release()
            return
        turns[k] = now()
        who[k] = me
        state[0] = k + 1
        lock.release()
        # The next turn is another's, as bench_pythread's hand-off has it.
        while state[0] == k + 1 and k + 1 < total:
            os.sched_yield()


def mode_handoff(m, procs, iters):
    lock = m.Lock()
    turns = mp.Array("Q", iters, lock=False)
    who = mp.Array("i", iters, lock=False)
    state = mp.Array("q", 1, lock=False)
    ready, go = mp.Semaphore(0), mp.Event()
    ps = [mp.Process(target=handoff_worker, args=(lock, turns, who, state, w, ready, go))
          for w in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.acquire()
    go.set()
    for p in ps:
        p.join()
        if p.exitcode:
            sys.exit(f"syncmgr.py: a hand-off worker failed with status {p.exitcode}")
    warm = iters // 10
    samples = [turns[i] - turns[i - 1] for i in range(warm + 1, iters)
               if who[i] != who[i - 1]]
    switches = len(samples)
    report(f"syncmgr.handoff{procs}", samples,
           f"switch_ratio={switches / (iters - warm - 1):.3f}")


def throughput_worker(lock, counts, me, ready, go, stop):
    ready.release()
    go.wait()
    n = 0
    while not stop.is_set():
        lock.acquire()
        lock.release()
        n += 1
    counts[me] = n


def mode_throughput(m, procs, ms):
    counts = mp.Array("Q", procs, lock=False)
    ready, go, stop = mp.Semaphore(0), mp.Event(), mp.Event()
    locks = [m.Lock() for _ in range(procs)]
    ps = [mp.Process(target=throughput_worker, args=(locks[w], counts, w, ready, go, stop))
          for w in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.acquire()
    t0 = now()
    go.set()
    time.sleep(ms / 1000)  # the measuring window itself
    stop.set()
    for p in ps:
        p.join()
        if p.exitcode:
            sys.exit(f"syncmgr.py: a throughput worker failed with status {p.exitcode}")
    t1 = now()
    print(f"RESULT syncmgr.throughput{procs} pairs_per_s={sum(counts) * 1e9 / (t1 - t0):.0f}",
          flush=True)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("ops", "handoff", "throughput"):
        sys.exit(__doc__)
    mode, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mp.set_start_method("fork")
    with tempfile.TemporaryDirectory(prefix="pt-bench-syncmgr-") as tmp:
        m = SyncManager(address=os.path.join(tmp, "manager.sock"), authkey=b"bench")
        m.start()
        try:
            if mode == "ops":
                mode_ops(m, a, b)
            elif mode == "handoff":
                mode_handoff(m, a, b)
            else:
                mode_throughput(m, a, b)
        finally:
            m.shutdown()


if __name__ == "__main__":
    main()
