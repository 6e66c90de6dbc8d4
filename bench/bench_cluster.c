/*
 * bench_cluster.c - pythreadd --etcd against its floor, in one run: a
 * 3-member etcd cluster on 127.0.0.1 (tests/cluster's harness), two
 * daemons with --etcd as hosts a and b, and one without, all children of
 * this program. Rows, taking turns in rounds:
 *
 *   etcd_txn          one txn (compare, put) through the gateway: the
 *                     floor, one etcd round trip
 *   etcd_recipe_pair  etcd's mutex recipe from a long-lived gateway client
 *                     (its lease granted once): a txn that puts this
 *                     client's key under the lease and reads the prefix's
 *                     owner, then a delete; uncontended
 *   cluster_pair      a cluster Lock acquire + release through host a
 *   cluster_handoff   host a's release until host b's waiter has the lock
 *   host_pair_etcd    a host Lock acquire + release through the daemon
 *                     (PT_OPEN_NOFAST) on host a, which has a cluster
 *   host_pair_plain   the same on the daemon without one
 *
 * Run it under `taskset -c 0` for the pinned figures (every process
 * inherits it). Usage: bench_cluster [OPS_PER_ROUND [ROUNDS]]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "etcd.h"
#include "etcd_cluster.h"
#include "pythread.h"

#define DAEMONS 3 /* a, b (cluster) and plain */

static struct event_base *base;
static int answered, failed;
static pt_etcd_result last;
static pid_t pids[DAEMONS];
static char socks[DAEMONS][128];

/* ---- etcd from C ----------------------------------------------------- */

static void on_answer(const pt_etcd_result *r, void *arg)
{
    (void)arg;
    if (r->err) {
        fprintf(stderr, "bench_cluster: %s\n", r->message);
        failed = 1;
    }
    last = *r;
    answered = 1;
}

static void wait_answer(void)
{
    while (!answered)
        event_base_loop(base, EVLOOP_ONCE);
    answered = 0;
    if (failed)
        bench_die("bench_cluster: an etcd request failed (above)");
}

static void etcd_txn(pt_etcd *e, const char *key)
{
    pt_etcd_cmp cmp = {PT_ETCD_CMP_CREATE, PT_ETCD_EQUAL, pt_etcd_str(key), 0, {0}};
    pt_etcd_op put = {.kind = PT_ETCD_OP_PUT, .key = pt_etcd_str(key), .value = pt_etcd_str("v")};
    pt_etcd_txn_req t = {&cmp, 1, &put, 1, NULL, 0};

    if (pt_etcd_txn(e, &t, on_answer, NULL) != 0)
        bench_die("bench_cluster: out of memory");
    wait_answer();
}

/* etcd's concurrency.Mutex, uncontended: Lock is one txn (if this key
 * is not there, put it under the lease; read the prefix's first key, the
 * owner), Unlock one delete. */
static void etcd_recipe_pair(pt_etcd *e, int64_t lease)
{
    const char *key = "bench/mutex/me", *prefix = "bench/mutex/", *end = "bench/mutex0";
    pt_etcd_cmp cmp = {PT_ETCD_CMP_CREATE, PT_ETCD_EQUAL, pt_etcd_str(key), 0, {0}};
    pt_etcd_op lock[2] = {
        {.kind = PT_ETCD_OP_PUT, .key = pt_etcd_str(key), .value = pt_etcd_str(""), .lease = lease},
        {.kind = PT_ETCD_OP_RANGE,
         .key = pt_etcd_str(prefix),
         .range_end = pt_etcd_str(end),
         .limit = 1},
    };
    pt_etcd_op unlock = {.kind = PT_ETCD_OP_DELETE, .key = pt_etcd_str(key)};
    pt_etcd_txn_req tl = {&cmp, 1, lock, 2, NULL, 0}, tu = {NULL, 0, &unlock, 1, NULL, 0};

    if (pt_etcd_txn(e, &tl, on_answer, NULL) != 0)
        bench_die("bench_cluster: out of memory");
    wait_answer();
    if (!last.succeeded || last.nkvs != 1)
        bench_die("bench_cluster: the recipe's lock did not find itself the owner");
    if (pt_etcd_txn(e, &tu, on_answer, NULL) != 0)
        bench_die("bench_cluster: out of memory");
    wait_answer();
}

/* ---- the daemons ------------------------------------------------------ */

static void daemon_start(int i, const char *dir, const char *endpoints)
{
    static const char *const hosts[DAEMONS] = {"a", "b", NULL};
    const char *args[] = {"--etcd",        endpoints, "--host-name", hosts[i],
                          "--etcd-prefix", "/bench/", NULL};
    char log[160], err[300];

    snprintf(socks[i], sizeof(socks[i]), "%s/d%d.sock", dir, i);
    snprintf(log, sizeof(log), "%s/d%d.log", dir, i);
    pids[i] = pt_etcd_daemon_start(PT_DAEMON_PATH, socks[i], log, hosts[i] ? args : NULL, 20.0, err,
                                   sizeof(err));
    if (pids[i] < 0)
        bench_die("bench_cluster: %s", err);
}

static void daemons_stop(void)
{
    for (int i = 0; i < DAEMONS; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    }
}

static pt_client *client(int i)
{
    pt_client *c = NULL;

    if (pt_client_open(&c, socks[i]) < 0)
        bench_die("bench_cluster: %s", pt_last_error_message());
    return c;
}

static pt_lock *lock_of(pt_client *c, const char *name, int flags)
{
    pt_lock *l = NULL;

    if (pt_lock_open(c, name, flags, 0, &l) < 0)
        bench_die("bench_cluster: %s", pt_last_error_message());
    return l;
}

static void pair(pt_lock *l)
{
    if (pt_lock_acquire(l, 1, PT_FOREVER) != 1 || pt_lock_release(l) != 0)
        bench_die("bench_cluster: %s", pt_last_error_message());
}

/* ---- the hand-off ------------------------------------------------------ */

/* Host b's thread: take "H" when a releases it, note when, give it back. */
static struct {
    pt_lock *l;
    atomic_int turn; /* 1: b should wait for it; 2: b has it */
    atomic_int stop;
    uint64_t got_ns;
} handoff;

static void *handoff_b(void *arg)
{
    (void)arg;
    for (;;) {
        while (atomic_load(&handoff.turn) != 1 && !atomic_load(&handoff.stop))
            sched_yield();
        if (atomic_load(&handoff.stop))
            return NULL;
        if (pt_lock_acquire(handoff.l, 1, PT_FOREVER) != 1)
            bench_die("bench_cluster: b's acquire: %s", pt_last_error_message());
        handoff.got_ns = bench_now_ns();
        if (pt_lock_release(handoff.l) != 0)
            bench_die("bench_cluster: b's release: %s", pt_last_error_message());
        atomic_store(&handoff.turn, 2);
    }
}

/* a holds H; b is let wait for it (its acquire in the log: a short
 * settle, this is a benchmark); a releases; the time until b has it. */
static uint64_t handoff_once(pt_lock *a)
{
    struct timespec settle = {0, 20000000};
    uint64_t t0;

    if (pt_lock_acquire(a, 1, PT_FOREVER) != 1)
        bench_die("bench_cluster: a's acquire: %s", pt_last_error_message());
    atomic_store(&handoff.turn, 1);
    nanosleep(&settle, NULL);
    t0 = bench_now_ns();
    if (pt_lock_release(a) != 0)
        bench_die("bench_cluster: a's release: %s", pt_last_error_message());
    while (atomic_load(&handoff.turn) != 2)
        sched_yield();
    return handoff.got_ns - t0;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? bench_arg(argv[1], "OPS_PER_ROUND") : 100;
    long rounds = argc > 2 ? bench_arg(argv[2], "ROUNDS") : 3;
    bench_samples s_txn, s_recipe, s_pair, s_hand, s_host_etcd, s_host_plain;
    pt_etcd_cluster c;
    char err[512], key[64], dir[] = "/tmp/pt-bench-cluster.XXXXXX";
    pt_client *ca, *cb, *cp;
    pt_lock *pair_l, *hand_a, *host_e, *host_p;
    pthread_t tb;
    pt_etcd *e;
    int64_t lease;

    if (pt_etcd_cluster_start(&c, 3, 30.0, err, sizeof err) != 0) {
        printf("# SKIP bench_cluster: %s\n", err);
        return 0;
    }
    if (mkdtemp(dir) == NULL)
        bench_die("bench_cluster: mkdtemp: %s", strerror(errno));
    printf("# 3 etcd members (data under %s); daemons a and b with --etcd, one without\n", c.dir);
    for (int i = 0; i < DAEMONS; i++)
        daemon_start(i, dir, c.endpoints);
    atexit(daemons_stop);
    base = event_base_new();
    e = base ? pt_etcd_new(base, c.endpoints, NULL, err, sizeof err) : NULL;
    if (e == NULL)
        bench_die("bench_cluster: %s", err);
    if (pt_etcd_lease_grant(e, 60, on_answer, NULL) != 0)
        bench_die("bench_cluster: out of memory");
    wait_answer();
    lease = last.lease_id;

    ca = client(0);
    cb = client(1);
    cp = client(2);
    pair_l = lock_of(ca, "pair", PT_OPEN_CLUSTER);
    hand_a = lock_of(ca, "H", PT_OPEN_CLUSTER);
    handoff.l = lock_of(cb, "H", PT_OPEN_CLUSTER);
    host_e = lock_of(ca, "host", PT_OPEN_NOFAST);
    host_p = lock_of(cp, "host", PT_OPEN_NOFAST);
    if (pthread_create(&tb, NULL, handoff_b, NULL) != 0)
        bench_die("bench_cluster: pthread_create failed");

    bench_samples_init(&s_txn, (size_t)(ops * rounds));
    bench_samples_init(&s_recipe, (size_t)(ops * rounds));
    bench_samples_init(&s_pair, (size_t)(ops * rounds));
    bench_samples_init(&s_hand, (size_t)(ops * rounds));
    bench_samples_init(&s_host_etcd, (size_t)(10 * ops * rounds));
    bench_samples_init(&s_host_plain, (size_t)(10 * ops * rounds));
    for (long i = 0; i < ops / 10 + 1; i++) { /* warm up every path */
        snprintf(key, sizeof key, "bench/warm/%ld", i);
        etcd_txn(e, key);
        etcd_recipe_pair(e, lease);
        pair(pair_l);
        pair(host_e);
        pair(host_p);
    }
    for (long r = 0; r < rounds; r++) {
        uint64_t t;

        for (long i = 0; i < ops; i++) {
            snprintf(key, sizeof key, "bench/txn/%ld/%ld", r, i);
            t = bench_now_ns();
            etcd_txn(e, key);
            bench_samples_add(&s_txn, bench_now_ns() - t);
        }
        for (long i = 0; i < ops; i++) {
            t = bench_now_ns();
            etcd_recipe_pair(e, lease);
            bench_samples_add(&s_recipe, bench_now_ns() - t);
        }
        for (long i = 0; i < ops; i++) {
            t = bench_now_ns();
            pair(pair_l);
            bench_samples_add(&s_pair, bench_now_ns() - t);
        }
        for (long i = 0; i < ops / 4 + 1; i++)
            bench_samples_add(&s_hand, handoff_once(hand_a));
        for (long i = 0; i < 10 * ops; i++) {
            t = bench_now_ns();
            pair(host_e);
            bench_samples_add(&s_host_etcd, bench_now_ns() - t);
            t = bench_now_ns();
            pair(host_p);
            bench_samples_add(&s_host_plain, bench_now_ns() - t);
        }
    }
    atomic_store(&handoff.stop, 1);
    pthread_join(tb, NULL);
    bench_report("etcd_txn", &s_txn, "note=floor_one_round_trip");
    bench_report("etcd_recipe_pair", &s_recipe, "note=txn_then_delete");
    bench_report("cluster_pair", &s_pair, "note=acquire_release_through_host_a");
    bench_report("cluster_handoff", &s_hand, "note=a_release_to_b_acquired");
    bench_report("host_pair_etcd", &s_host_etcd, "note=daemon_with_cluster");
    bench_report("host_pair_plain", &s_host_plain, "note=daemon_without");
    pt_etcd_free(e);
    event_base_free(base);
    pt_etcd_cluster_stop(&c);
    return 0;
}
