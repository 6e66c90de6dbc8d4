/*
 * bench_etcd.c - what one etcd round trip costs from C, for the cluster
 * backend's budget: a 3-member cluster on 127.0.0.1 (tests/cluster's
 * harness, data on $TMPDIR), and against its leader, one after another:
 *
 *   gw_txn     a txn (compare create_revision = 0, put) through the gRPC
 *              gateway with the daemon's client (daemon/etcd.c, evhttp, JSON)
 *   gw_range   a linearizable range the same way (no disk write)
 *   gw_tls_*   the same two on a second cluster that serves https:// and asks
 *              for client certificates (PT_ETCD_CLUSTER_TLS), through the
 *              same client with its TLS files: what TLS adds, handshakes
 *              aside (the client keeps its connections)
 *   grpc_txn   the same txn through gRPC's C core and protobuf-c, when built
 *              with libgrpc-dev (bench_etcd_grpc.c)
 *   etcdctl    `etcdctl lock NAME true` (etcd's own mutex recipe, Go gRPC)
 *              less `etcdctl get` (the process's own start and dial)
 *
 * The transports take turns in rounds so a burst of load elsewhere lands on
 * each alike. Run it under `taskset -c 0` for the pinned figures: etcd's
 * members inherit the affinity. Usage: bench_etcd [OPS_PER_ROUND [ROUNDS]]
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "bench.h"
#include "etcd.h"
#include "etcd_cluster.h"

extern char **environ;

#ifdef PT_BENCH_GRPC
/* bench_etcd_grpc.c */
int bench_grpc_open(const char *target);
/* One txn; 0, or -1 with a message printed. */
int bench_grpc_txn(const char *key);
void bench_grpc_close(void);
#endif

static struct event_base *base;
static int answered, failed;

static void on_answer(const pt_etcd_result *r, void *arg)
{
    (void)arg;
    if (r->err) {
        fprintf(stderr, "bench_etcd: %s\n", r->message);
        failed = 1;
    }
    answered = 1;
}

static void wait_answer(void)
{
    while (!answered)
        event_base_loop(base, EVLOOP_ONCE);
    answered = 0;
    if (failed)
        bench_die("bench_etcd: a request failed (above); the cluster's logs are kept with "
                  "PT_ETCD_KEEP=1");
}

static void gw_txn(pt_etcd *e, const char *key)
{
    pt_etcd_cmp cmp = {
        .target = PT_ETCD_CMP_CREATE, .result = PT_ETCD_EQUAL, .key = pt_etcd_str(key)};
    pt_etcd_op put = {.kind = PT_ETCD_OP_PUT, .key = pt_etcd_str(key), .value = pt_etcd_str("1")};
    pt_etcd_txn_req t = {&cmp, 1, &put, 1, NULL, 0};
    if (pt_etcd_txn(e, &t, on_answer, NULL) != 0)
        bench_die("bench_etcd: out of memory");
    wait_answer();
}

static void gw_range(pt_etcd *e, const char *key)
{
    if (pt_etcd_range(e, pt_etcd_str(key), pt_etcd_str(""), on_answer, NULL) != 0)
        bench_die("bench_etcd: out of memory");
    wait_answer();
}

static uint64_t run_etcdctl(const char *endpoint, const char *const *args)
{
    char ep[96];
    snprintf(ep, sizeof ep, "--endpoints=%s", endpoint);
    const char *argv[8] = {"etcdctl", ep};
    int n = 2;
    for (; args[n - 2]; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    uint64_t t0 = bench_now_ns();
    pid_t pid;
    if (posix_spawnp(&pid, "etcdctl", NULL, NULL, (char *const *)argv, environ) != 0)
        return 0;
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? bench_now_ns() - t0 : 0;
}

static uint64_t median(uint64_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : 0;
}

static void bench_etcdctl(const char *endpoint, int runs)
{
    static const char *const get[] = {"get", "bench/none", NULL};
    static const char *const lock[] = {"lock", "bench-lock", "true", NULL};
    uint64_t g[32], l[32];
    if (runs > 32)
        runs = 32;
    for (int i = 0; i < runs; i++) {
        g[i] = run_etcdctl(endpoint, get);
        l[i] = run_etcdctl(endpoint, lock);
        if (!g[i] || !l[i]) {
            printf("# etcdctl not found or failing: its lock recipe is not measured\n");
            return;
        }
    }
    uint64_t mg = median(g, (size_t)runs), ml = median(l, (size_t)runs);
    printf("RESULT etcdctl_get_process median_ns=%llu p99_ns=0 n=%d\n", (unsigned long long)mg,
           runs);
    printf("RESULT etcdctl_lock_process median_ns=%llu p99_ns=0 n=%d\n", (unsigned long long)ml,
           runs);
    printf("RESULT etcdctl_lock_recipe median_ns=%lld p99_ns=0 n=%d note=lock_less_get\n",
           (long long)ml - (long long)mg, runs);
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? bench_arg(argv[1], "OPS_PER_ROUND") : 400;
    long rounds = argc > 2 ? bench_arg(argv[2], "ROUNDS") : 3;
    pt_etcd_cluster c;
    char err[512];
    if (pt_etcd_cluster_start(&c, 3, 30.0, err, sizeof err) != 0) {
        printf("# SKIP bench_etcd: %s\n", err);
        return 0;
    }
    int leader = pt_etcd_cluster_wait_leader(&c, 10.0);
    if (leader < 0)
        bench_die("bench_etcd: the cluster has no leader");
    char ep[64];
    pt_etcd_cluster_endpoint(&c, leader, ep, sizeof ep);
    printf("# 3 members, data under %s, measured against the leader %s\n", c.dir, ep);
    pt_etcd_cluster ct;
    if (pt_etcd_cluster_start_with(&ct, 3, PT_ETCD_CLUSTER_TLS, 30.0, err, sizeof err) != 0)
        bench_die("bench_etcd: the TLS cluster: %s", err);
    int tls_leader = pt_etcd_cluster_wait_leader(&ct, 10.0);
    if (tls_leader < 0)
        bench_die("bench_etcd: the TLS cluster has no leader");
    char tls_ep[64];
    pt_etcd_cluster_endpoint(&ct, tls_leader, tls_ep, sizeof tls_ep);
    printf("# and 3 more on https://, data under %s, measured against the leader %s\n", ct.dir,
           tls_ep);

    base = event_base_new();
    pt_etcd *e = pt_etcd_new(base, ep, NULL, err, sizeof err);
    if (!base || !e)
        bench_die("bench_etcd: %s", err);
    pt_etcd_tls tls = {.cacert = ct.tls.ca, .cert = ct.tls.cert, .key = ct.tls.key};
    pt_etcd_options to = {.tls = &tls};
    pt_etcd *et = pt_etcd_new(base, tls_ep, &to, err, sizeof err);
    if (!et)
        bench_die("bench_etcd: %s", err);
#ifdef PT_BENCH_GRPC
    if (bench_grpc_open(ep + strlen("http://")) != 0)
        bench_die("bench_etcd: cannot open a gRPC channel to %s", ep);
#endif
    bench_samples txn, range, tls_txn, tls_range, grpc;
    bench_samples_init(&txn, (size_t)(ops * rounds));
    bench_samples_init(&range, (size_t)(ops * rounds));
    bench_samples_init(&tls_txn, (size_t)(ops * rounds));
    bench_samples_init(&tls_range, (size_t)(ops * rounds));
    bench_samples_init(&grpc, (size_t)(ops * rounds));
    char key[64];
    long warm = ops / 10 + 1;
    for (long i = 0; i < warm; i++) {
        snprintf(key, sizeof key, "bench/warm/%ld", i);
        gw_txn(e, key);
        gw_txn(et, key);
#ifdef PT_BENCH_GRPC
        snprintf(key, sizeof key, "bench/gwarm/%ld", i);
        if (bench_grpc_txn(key) != 0)
            bench_die("bench_etcd: gRPC txn failed");
#endif
    }
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < ops; i++) {
            snprintf(key, sizeof key, "bench/gw/%ld/%ld", r, i);
            uint64_t t0 = bench_now_ns();
            gw_txn(e, key);
            bench_samples_add(&txn, bench_now_ns() - t0);
        }
        for (long i = 0; i < ops; i++) {
            uint64_t t0 = bench_now_ns();
            gw_range(e, "bench/gw/0/0");
            bench_samples_add(&range, bench_now_ns() - t0);
        }
        for (long i = 0; i < ops; i++) {
            snprintf(key, sizeof key, "bench/gw/%ld/%ld", r, i);
            uint64_t t0 = bench_now_ns();
            gw_txn(et, key);
            bench_samples_add(&tls_txn, bench_now_ns() - t0);
        }
        for (long i = 0; i < ops; i++) {
            uint64_t t0 = bench_now_ns();
            gw_range(et, "bench/gw/0/0");
            bench_samples_add(&tls_range, bench_now_ns() - t0);
        }
#ifdef PT_BENCH_GRPC
        for (long i = 0; i < ops; i++) {
            snprintf(key, sizeof key, "bench/grpc/%ld/%ld", r, i);
            uint64_t t0 = bench_now_ns();
            if (bench_grpc_txn(key) != 0)
                bench_die("bench_etcd: gRPC txn failed");
            bench_samples_add(&grpc, bench_now_ns() - t0);
        }
#endif
    }
    bench_report("etcd_gw_txn", &txn, NULL);
    bench_report("etcd_gw_range", &range, NULL);
    bench_report("etcd_gw_tls_txn", &tls_txn, NULL);
    bench_report("etcd_gw_tls_range", &tls_range, NULL);
#ifdef PT_BENCH_GRPC
    bench_report("etcd_grpc_txn", &grpc, NULL);
    bench_grpc_close();
#else
    printf("# gRPC not measured: built without libgrpc-dev\n");
#endif
    bench_etcdctl(ep, 10);
    bench_samples_free(&txn);
    bench_samples_free(&range);
    bench_samples_free(&tls_txn);
    bench_samples_free(&tls_range);
    bench_samples_free(&grpc);
    pt_etcd_free(e);
    pt_etcd_free(et);
    event_base_free(base);
    pt_etcd_cluster_stop(&ct);
    pt_etcd_cluster_stop(&c);
    return 0;
}
