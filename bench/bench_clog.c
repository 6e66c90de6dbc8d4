/*
 * bench_clog.c - what an append to the cluster log costs (daemon/
 * cluster_log.c), from pt_clog_append to on_committed (the txn, then the
 * watch delivering the entry back), on a 3-member cluster on 127.0.0.1
 * (tests/cluster's harness, data on $TMPDIR). Hosts are logs on one loop,
 * each with its own client starting at a different member:
 *
 *   clog_commit_1host    one host, one append at a time
 *   clog_commit_3hosts   three hosts at once, one append at a time each
 *   clog_commit_3hosts_w16
 *                        three hosts at once, 16 appends in flight each
 *                        (they share txns: entries_per_txn says how many)
 *
 * The three take turns in rounds. Run it under `taskset -c 0` for the
 * pinned figures: etcd's members inherit the affinity.
 * Usage: bench_clog [APPENDS_PER_ROUND [ROUNDS]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bench.h"
#include "cluster_log.h"
#include "etcd_cluster.h"

#define HOSTS 3

typedef struct bhost {
    pt_clog *c;
    char name[16];
    int joined, fatal;
    long appended, committed;
    uint64_t *sent; /* send time of each append, by its cookie */
} bhost;

static struct event_base *base;
static bhost hosts[HOSTS];
static bench_samples *cur; /* where latencies go */

static void cb_committed(void *ctx, void *cookie, int64_t rev)
{
    bhost *h = ctx;
    (void)rev;
    bench_samples_add(cur, bench_now_ns() - h->sent[(intptr_t)cookie]);
    h->committed++;
}

static void cb_joined(void *ctx, const char *name, int64_t rev)
{
    bhost *h = ctx;
    (void)rev;
    if (strcmp(name, h->name) == 0)
        h->joined = 1;
}

static void cb_error(void *ctx, const char *msg, int fatal)
{
    bhost *h = ctx;
    fprintf(stderr, "bench_clog: %s\n", msg);
    h->fatal |= fatal;
}

static void cb_lost(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "bench_clog: %s\n", why);
}

static const pt_clog_callbacks callbacks = {
    .on_committed = cb_committed,
    .on_host_joined = cb_joined,
    .on_lease_lost = cb_lost,
    .on_error = cb_error,
};

static void append(bhost *h)
{
    char b[64], err[256];
    int n = snprintf(b, sizeof b, "%s entry %ld", h->name, h->appended);
    h->sent[h->appended] = bench_now_ns();
    if (pt_clog_append(h->c, b, (size_t)n, (void *)(intptr_t)h->appended, err, sizeof err) != 0)
        bench_die("bench_clog: %s", err);
    h->appended++;
}

/* nhosts hosts append count entries each, window in flight at a time. */
static void run(int nhosts, long count, int window)
{
    long target[HOSTS];
    for (int i = 0; i < nhosts; i++)
        target[i] = hosts[i].appended + count;
    for (;;) {
        int done = 1;
        for (int i = 0; i < nhosts; i++) {
            bhost *h = &hosts[i];
            while (h->appended < target[i] && h->appended - h->committed < window)
                append(h);
            done &= h->committed >= target[i];
            if (h->fatal)
                bench_die("bench_clog: host %s stopped (above)", h->name);
        }
        if (done)
            return;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* Txns and entries of every host so far. */
static void totals(uint64_t *txns, uint64_t *entries)
{
    *txns = *entries = 0;
    for (int i = 0; i < HOSTS; i++) {
        pt_clog_stats st;
        pt_clog_get_stats(hosts[i].c, &st);
        *txns += st.txns;
        *entries += st.entries;
    }
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? bench_arg(argv[1], "APPENDS_PER_ROUND") : 400;
    long rounds = argc > 2 ? bench_arg(argv[2], "ROUNDS") : 3;
    pt_etcd_cluster cl;
    char err[512];
    if (pt_etcd_cluster_start(&cl, 3, 30.0, err, sizeof err) != 0)
        bench_die("bench_clog: %s", err);
    base = event_base_new();
    long per_host = (ops / 10 + ops * 2 + ops * 16) * rounds + 64;
    for (int i = 0; i < HOSTS; i++) {
        bhost *h = &hosts[i];
        snprintf(h->name, sizeof h->name, "h%d", i);
        h->sent = calloc((size_t)per_host, sizeof *h->sent);
        char eps[256] = "";
        for (int k = 0; k < cl.n; k++) {
            char ep[64];
            pt_etcd_cluster_endpoint(&cl, (i + k) % cl.n, ep, sizeof ep);
            size_t used = strlen(eps);
            snprintf(eps + used, sizeof eps - used, "%s%s", k ? "," : "", ep);
        }
        h->c = pt_clog_new(base, eps, "bench", h->name, 10, &callbacks, h, NULL, err, sizeof err);
        if (!h->c || !h->sent || pt_clog_start(h->c, 0) != 0)
            bench_die("bench_clog: %s", h->c ? "out of memory" : err);
    }
    for (int i = 0; i < HOSTS; i++)
        while (!hosts[i].joined)
            event_base_loop(base, EVLOOP_ONCE);

    bench_samples warm, one, three, wide;
    bench_samples_init(&warm, (size_t)ops * 4);
    bench_samples_init(&one, (size_t)(ops * rounds));
    bench_samples_init(&three, (size_t)(ops * rounds * HOSTS));
    bench_samples_init(&wide, (size_t)(ops * 16 * rounds * HOSTS));
    cur = &warm;
    run(HOSTS, ops / 10 > 0 ? ops / 10 : 1, 1);
    uint64_t wide_ns = 0, wide_txns = 0, wide_entries = 0;
    long wide_n = 0;
    for (long r = 0; r < rounds; r++) {
        cur = &one;
        run(1, ops, 1);
        cur = &three;
        run(HOSTS, ops, 1);
        cur = &wide;
        uint64_t t0 = bench_now_ns(), tx0, en0, tx1, en1;
        totals(&tx0, &en0);
        run(HOSTS, ops * 16 / 4, 16);
        wide_ns += bench_now_ns() - t0;
        totals(&tx1, &en1);
        wide_txns += tx1 - tx0;
        wide_entries += en1 - en0;
        wide_n += ops * 16 / 4 * HOSTS;
    }
    char extra[96];
    bench_report("clog_commit_1host", &one, NULL);
    bench_report("clog_commit_3hosts", &three, NULL);
    snprintf(extra, sizeof extra, "entries_per_txn=%.2f entries_per_s=%.0f",
             wide_txns ? (double)wide_entries / (double)wide_txns : 0.0,
             wide_ns ? (double)wide_n * 1e9 / (double)wide_ns : 0.0);
    bench_report("clog_commit_3hosts_w16", &wide, extra);
    for (int i = 0; i < HOSTS; i++) {
        pt_clog_free(hosts[i].c);
        free(hosts[i].sent);
    }
    bench_samples_free(&warm);
    bench_samples_free(&one);
    bench_samples_free(&three);
    bench_samples_free(&wide);
    event_base_free(base);
    pt_etcd_cluster_stop(&cl);
    return 0;
}
