/*
 * it_cluster_log.c - the cluster's log (daemon/cluster_log.c) against a real
 * 3-member etcd cluster on 127.0.0.1. Three hosts, each a log with its own
 * etcd client starting at a different member, run on one loop: their
 * requests and watches are as concurrent as three daemons' (etcd orders
 * them), and their callbacks can be compared on one clock without threads.
 * Each test has a key prefix of its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "cluster_log.h"
#include "etcd.h"
#include "etcd_cluster.h"

#define DEADLINE 15.0
#define HOSTS    3
#define SEEN_MAX 4096

static pt_etcd_cluster cluster;
static struct event_base *base;
static pt_etcd_loop loop;

/* What one host saw: entries (E), joins (J) and departures (G), in order. */
typedef struct rec {
    char kind;
    char host[16];
    uint64_t seq;
    int64_t rev;
} rec;

typedef struct host {
    pt_clog *c;
    char name[16];
    rec *seen;
    int nseen;
    int joins[HOSTS], gones[HOSTS];
    double gone_at[HOSTS]; /* monotonic time this host saw host i gone */
    int entries, appended, committed, commit_out_of_order;
    int64_t commit_rev[SEEN_MAX];
    int lease_lost;
    double lease_lost_at;
    int errors, fatal, compacted;
    int64_t applied; /* the last revision on_applied said was whole */
    char error[768];
} host;

static host hosts[HOSTS];

static int host_index(const char *name)
{
    for (int i = 0; i < HOSTS; i++)
        if (strcmp(hosts[i].name, name) == 0)
            return i;
    return -1;
}

static void record(host *h, char kind, const char *name, uint64_t seq, int64_t rev)
{
    if (h->nseen < SEEN_MAX) {
        rec *r = &h->seen[h->nseen++];
        r->kind = kind;
        snprintf(r->host, sizeof r->host, "%s", name);
        r->seq = seq;
        r->rev = rev;
    }
}

static void cb_entry(void *ctx, const char *name, uint64_t seq, int64_t rev, const uint8_t *b,
                     size_t len)
{
    host *h = ctx;
    /* Each entry says who appended it and its index there. */
    char want[48];
    snprintf(want, sizeof want, "%s#%llu", name, (unsigned long long)seq - 1);
    if (len != strlen(want) || memcmp(b, want, len) != 0)
        h->errors++;
    h->entries++;
    record(h, 'E', name, seq, rev);
}

static void cb_committed(void *ctx, void *cookie, int64_t rev)
{
    host *h = ctx;
    if ((intptr_t)cookie != h->committed)
        h->commit_out_of_order++;
    if (h->committed < SEEN_MAX)
        h->commit_rev[h->committed] = rev;
    h->committed++;
}

static void cb_joined(void *ctx, const char *name, int64_t rev)
{
    host *h = ctx;
    int i = host_index(name);
    if (i >= 0)
        h->joins[i]++;
    record(h, 'J', name, 0, rev);
}

static void cb_gone(void *ctx, const char *name, int64_t rev)
{
    host *h = ctx;
    int i = host_index(name);
    if (i >= 0) {
        h->gones[i]++;
        h->gone_at[i] = pt_etcd_now();
    }
    record(h, 'G', name, 0, rev);
}

static void cb_lease_lost(void *ctx, const char *why)
{
    host *h = ctx;
    h->lease_lost++;
    h->lease_lost_at = pt_etcd_now();
    print_message("%s: lease lost: %s\n", h->name, why);
}

static void cb_compacted(void *ctx, int64_t rev)
{
    host *h = ctx;
    h->compacted++;
    print_message("%s: compacted: revision %lld\n", h->name, (long long)rev);
}

static void cb_applied(void *ctx, int64_t rev)
{
    host *h = ctx;
    if (rev < h->applied)
        h->errors++;
    h->applied = rev;
}

static void cb_error(void *ctx, const char *msg, int fatal)
{
    host *h = ctx;
    print_message("%s: %s%s\n", h->name, fatal ? "FATAL: " : "", msg);
    if (fatal) {
        h->fatal++;
        snprintf(h->error, sizeof h->error, "%s", msg);
    }
}

static const pt_clog_callbacks callbacks = {
    .on_entry = cb_entry,
    .on_committed = cb_committed,
    .on_host_joined = cb_joined,
    .on_host_gone = cb_gone,
    .on_lease_lost = cb_lease_lost,
    .on_compacted = cb_compacted,
    .on_applied = cb_applied,
    .on_error = cb_error,
};

typedef struct answer {
    int done;
    int64_t revision;
} answer;

static void keep_answer(const pt_etcd_result *r, void *arg)
{
    answer *a = arg;
    a->revision = r->err ? -1 : r->revision;
    a->done = 1;
}

static void run_for(double seconds)
{
    double end = pt_etcd_now() + seconds;
    while (pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

/* The cluster's revision now: every host watches from the next one, so all
 * see the same history. */
static int64_t current_revision(void)
{
    char eps[512], err[256];
    pt_etcd_cluster_endpoints_from(&cluster, 0, eps, sizeof eps);
    pt_etcd *e = pt_etcd_new(base, eps, NULL, err, sizeof err);
    assert_non_null(e);
    answer a = {0};
    assert_int_equal(pt_etcd_range(e, pt_etcd_str("x"), pt_etcd_str(""), keep_answer, &a), 0);
    double end = pt_etcd_now() + DEADLINE;
    while (!a.done && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    pt_etcd_free(e);
    assert_true(a.revision > 0);
    return a.revision;
}

/* A log for h whose client starts at member first; with alone, it knows
 * that member only (a host that reaches etcd through one member). */
static pt_clog *new_log_at(host *h, int first, int alone, const char *prefix, int ttl,
                           double timeout)
{
    char eps[512], err[256];
    if (alone)
        pt_etcd_cluster_endpoint(&cluster, first, eps, sizeof eps);
    else
        pt_etcd_cluster_endpoints_from(&cluster, first, eps, sizeof eps);
    pt_clog_options o = {.request_timeout = timeout, .description = h->name};
    pt_clog *c = pt_clog_new(base, eps, prefix, h->name, ttl, &callbacks, h, &o, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    return c;
}

static pt_clog *new_log(host *h, int first, const char *prefix, int ttl, double timeout)
{
    return new_log_at(h, first, 0, prefix, ttl, timeout);
}

/* Three hosts h0..h2 under prefix, watching from the same revision, host i
 * starting at member first[i] (alone: host 2 knows that member only). */
static void start_hosts_at(const char *prefix, int ttl, double timeout, const int first[HOSTS],
                           int alone)
{
    int64_t from = current_revision() + 1;
    for (int i = 0; i < HOSTS; i++) {
        host *h = &hosts[i];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "h%d", i);
        h->seen = calloc(SEEN_MAX, sizeof *h->seen);
        h->c = new_log_at(h, first[i], alone && i == 2, prefix, ttl, timeout);
        assert_int_equal(pt_clog_start(h->c, from), 0);
    }
}

static void start_hosts(const char *prefix, int ttl, double timeout)
{
    static const int first[HOSTS] = {0, 1, 2};
    start_hosts_at(prefix, ttl, timeout, first, 0);
}

static void stop_hosts(void)
{
    for (int i = 0; i < HOSTS; i++) {
        pt_clog_free(hosts[i].c);
        hosts[i].c = NULL;
        free(hosts[i].seen);
        hosts[i].seen = NULL;
    }
}

/* Every host is a member and has seen every host join. */
static int all_joined(void)
{
    for (int i = 0; i < HOSTS; i++) {
        if (!pt_clog_is_member(hosts[i].c))
            return 0;
        for (int j = 0; j < HOSTS; j++)
            if (hosts[i].joins[j] < 1)
                return 0;
    }
    return 1;
}

static void wait_joined(void)
{
    double end = pt_etcd_now() + DEADLINE;
    while (!all_joined() && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(all_joined());
}

/* Keeps `window` appends of each host in flight until each has `n`
 * committed; kill_after: kill -9 the leader once host 0 has that many
 * committed (0: never). */
static void append_all(int n, int window, int kill_after, double deadline)
{
    int killed = 0;
    double end = pt_etcd_now() + deadline;
    for (;;) {
        int done = 1;
        for (int i = 0; i < HOSTS; i++) {
            host *h = &hosts[i];
            while (h->appended < n && h->appended - h->committed < window) {
                char b[48], err[256];
                snprintf(b, sizeof b, "%s#%d", h->name, h->appended);
                if (pt_clog_append(h->c, b, strlen(b), (void *)(intptr_t)h->appended, err,
                                   sizeof err) != 0)
                    fail_msg("%s", err);
                h->appended++;
            }
            done &= h->committed >= n;
            assert_int_equal(h->fatal, 0);
        }
        if (done || pt_etcd_now() > end)
            break;
        if (kill_after && !killed && hosts[0].committed >= kill_after) {
            int leader = pt_etcd_cluster_kill_leader(&cluster, DEADLINE);
            assert_true(leader >= 0);
            print_message("kill -9 of the leader m%d after %d of host 0's entries\n", leader,
                          hosts[0].committed);
            killed = 1;
        }
        event_base_loop(base, EVLOOP_ONCE);
    }
    for (int i = 0; i < HOSTS; i++)
        assert_int_equal(hosts[i].committed, n);
    /* Each host has its own entries; the others' may still be on the way. */
    for (int i = 0; i < HOSTS; i++)
        while (hosts[i].entries < HOSTS * n && pt_etcd_now() < end + DEADLINE)
            event_base_loop(base, EVLOOP_ONCE);
    run_for(0.3); /* a duplicate delivery would come now */
}

/* Every host saw the same history: n entries of each host, seq 1..n in
 * append order, each once, revisions never going back; each host's
 * commits in its append order at its entries' revisions. */
static void check_agreement(int n)
{
    for (int i = 0; i < HOSTS; i++) {
        host *h = &hosts[i];
        assert_int_equal(h->errors, 0);
        assert_int_equal(h->commit_out_of_order, 0);
        assert_int_equal(h->nseen, hosts[0].nseen);
        uint64_t next[HOSTS] = {1, 1, 1};
        int k = 0;
        for (int r = 0; r < h->nseen; r++) {
            const rec *a = &h->seen[r], *b = &hosts[0].seen[r];
            assert_int_equal(a->kind, b->kind);
            assert_string_equal(a->host, b->host);
            assert_int_equal(a->seq, b->seq);
            assert_int_equal(a->rev, b->rev);
            if (r)
                assert_true(a->rev >= h->seen[r - 1].rev);
            if (a->kind != 'E')
                continue;
            int j = host_index(a->host);
            assert_true(j >= 0);
            assert_int_equal(a->seq, next[j]); /* once each, in order */
            next[j]++;
            if (j == i)
                assert_int_equal(h->commit_rev[k++], a->rev);
        }
        for (int j = 0; j < HOSTS; j++)
            assert_int_equal(next[j], (uint64_t)n + 1);
        assert_int_equal(k, n);
    }
}

static int group_setup(void **state)
{
    (void)state;
    if (pt_etcd_cluster_start_or_skip(&cluster, 3, 20.0) != 0)
        return -1;
    if (pt_etcd_loop_start(&loop) < 0)
        return -1;
    base = loop.base;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pt_etcd_loop_stop(&loop);
    pt_etcd_cluster_stop(&cluster);
    return 0;
}

/* Frees the hosts and brings every member back after a test. */
static int teardown(void **state)
{
    (void)state;
    stop_hosts();
    return pt_etcd_cluster_heal(&cluster, DEADLINE);
}

/* ---- 1: one order --------------------------------------------------------- */

#define ORDER_N 200

static void test_one_order(void **state)
{
    (void)state;
    start_hosts("clog1", 5, 0);
    wait_joined();
    double t0 = pt_etcd_now();
    append_all(ORDER_N, 8, 0, 2 * DEADLINE);
    print_message("%d entries from each of %d hosts committed in %.2f s; %d records each\n",
                  ORDER_N, HOSTS, pt_etcd_now() - t0, hosts[0].nseen);
    check_agreement(ORDER_N);
    for (int i = 0; i < HOSTS; i++)
        assert_int_equal(hosts[i].lease_lost, 0);
}

/* ---- 2: the leader killed in the middle ------------------------------------ */

#define KILL_N 150

static void test_leader_killed(void **state)
{
    (void)state;
    /* A ttl the election fits in, so the lease outlives it. */
    start_hosts("clog2", 5, 1.0);
    wait_joined();
    append_all(KILL_N, 8, KILL_N / 3, 3 * DEADLINE);
    check_agreement(KILL_N);
    for (int i = 0; i < HOSTS; i++) {
        pt_clog_stats st;
        pt_clog_get_stats(hosts[i].c, &st);
        print_message("h%d: %llu txns for %llu entries, %llu sent again, %llu of them had "
                      "landed\n",
                      i, (unsigned long long)st.txns, (unsigned long long)st.entries,
                      (unsigned long long)st.resends, (unsigned long long)st.found_landed);
        assert_int_equal(st.entries, KILL_N);
        assert_int_equal(hosts[i].lease_lost, 0);
    }
}

/* ---- 3: a host cut off ------------------------------------------------------ */

#define CUT_TTL 2

static void test_host_cut_off(void **state)
{
    (void)state;
    start_hosts("clog3", CUT_TTL, 0.5);
    wait_joined();
    host *cut = &hosts[2];
    pt_clog_test_cut(cut->c, 1);
    double t_cut = pt_etcd_now();
    double end = t_cut + CUT_TTL + 5.0;
    while ((hosts[0].gones[2] < 1 || hosts[1].gones[2] < 1) && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(cut->lease_lost, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hosts[i].gones[2], 1);
        print_message("h%d saw h2 gone %.2f s after the cut; h2 knew %.2f s before\n", i,
                      hosts[i].gone_at[2] - t_cut, hosts[i].gone_at[2] - cut->lease_lost_at);
        assert_true(hosts[i].gone_at[2] - t_cut < CUT_TTL + 1.0);
        assert_true(cut->lease_lost_at < hosts[i].gone_at[2]);
        assert_int_equal(hosts[i].lease_lost, 0);
    }
    assert_false(pt_clog_is_member(cut->c));

    /* Restored, it joins again as a new member, seen by everyone after its
     * departure. */
    pt_clog_test_cut(cut->c, 0);
    end = pt_etcd_now() + DEADLINE;
    while ((hosts[0].joins[2] < 2 || hosts[1].joins[2] < 2 || !pt_clog_is_member(cut->c)) &&
           pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(pt_clog_is_member(cut->c));
    assert_int_equal(hosts[0].joins[2], 2);
    /* Its appends go on after the new join. */
    append_all(5, 2, 0, DEADLINE);
    check_agreement(5);
}

/* ---- lost answers ---------------------------------------------------------- */

/* A txn applied whose answer is lost is sent again; its compare fails and
 * the log finds its own entries there: no duplicate, nothing skipped. */
static void test_lost_answers_found_landed(void **state)
{
    (void)state;
    start_hosts("clog5", 5, 0);
    wait_joined();
    pt_clog_test_lose_answers(hosts[0].c, 5);
    pt_clog_test_lose_answers(hosts[1].c, 3);
    append_all(40, 4, 0, 2 * DEADLINE);
    check_agreement(40);
    int want[HOSTS] = {5, 3, 0};
    for (int i = 0; i < HOSTS; i++) {
        pt_clog_stats st;
        pt_clog_get_stats(hosts[i].c, &st);
        assert_int_equal(st.found_landed, want[i]);
        assert_int_equal(st.resends, want[i]);
        assert_int_equal(st.entries, 40);
    }
}

/* Someone else writes a host's sequence key: the log stops rather than
 * guess, naming the key. */
static void test_another_writer_stops(void **state)
{
    (void)state;
    start_hosts("clog6", 5, 0);
    wait_joined();
    append_all(3, 1, 0, DEADLINE);
    char eps[512], err[256];
    pt_etcd_cluster_endpoints_from(&cluster, 0, eps, sizeof eps);
    pt_etcd *e = pt_etcd_new(base, eps, NULL, err, sizeof err);
    assert_non_null(e);
    answer a = {0};
    assert_int_equal(
        pt_etcd_put(e, pt_etcd_str("clog6/seq/h0"), pt_etcd_str("3"), 0, keep_answer, &a), 0);
    double end = pt_etcd_now() + DEADLINE;
    while (!a.done && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(a.revision > 0);
    pt_etcd_free(e);
    assert_int_equal(pt_clog_append(hosts[0].c, "h0#3", 4, (void *)3, err, sizeof err), 0);
    while (!hosts[0].fatal && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(hosts[0].fatal, 1);
    assert_non_null(strstr(hosts[0].error, "clog6/seq/h0"));
    assert_non_null(strstr(hosts[0].error, "another daemon writes this host's log"));
    assert_int_equal(hosts[0].committed, 3);
}

/* A real partition: host 2 reaches etcd through one follower only, and that
 * member stops (SIGSTOP: its sockets stay open, nothing answers). Its
 * keepalives time out; it must know before the others, talking to the two
 * members left, see it gone. */
static void test_host_partitioned(void **state)
{
    (void)state;
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    int cutm = (leader + 1) % cluster.n, other = (leader + 2) % cluster.n;
    const int first[HOSTS] = {leader, other, cutm};
    start_hosts_at("clog8", CUT_TTL, 0.5, first, 1);
    wait_joined();
    host *cut = &hosts[2];
    pt_etcd_cluster_pause(&cluster, cutm, 1);
    double t_cut = pt_etcd_now();
    double end = t_cut + CUT_TTL + 5.0;
    while ((hosts[0].gones[2] < 1 || hosts[1].gones[2] < 1 || !cut->lease_lost) &&
           pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    pt_etcd_cluster_pause(&cluster, cutm, 0);
    assert_int_equal(cut->lease_lost, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hosts[i].gones[2], 1);
        print_message("member m%d stopped: h%d saw h2 gone %.2f s after; h2 knew %.2f s before\n",
                      cutm, i, hosts[i].gone_at[2] - t_cut,
                      hosts[i].gone_at[2] - cut->lease_lost_at);
        assert_true(hosts[i].gone_at[2] - t_cut < CUT_TTL + 1.0);
        assert_true(cut->lease_lost_at < hosts[i].gone_at[2]);
        assert_int_equal(hosts[i].lease_lost, 0);
    }
    /* The member back, host 2 joins again and everyone agrees on it all. */
    end = pt_etcd_now() + DEADLINE;
    while ((hosts[0].joins[2] < 2 || hosts[1].joins[2] < 2 || cut->joins[2] < 2 ||
            !pt_clog_is_member(cut->c)) &&
           pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(pt_clog_is_member(cut->c));
    append_all(5, 2, 0, DEADLINE);
    check_agreement(5);
}

/* ---- 4: one host name, two daemons ----------------------------------------- */

static void test_duplicate_host_refused(void **state)
{
    (void)state;
    start_hosts("clog4", 5, 0);
    wait_joined();
    host dup = {0};
    snprintf(dup.name, sizeof dup.name, "h1");
    dup.seen = calloc(SEEN_MAX, sizeof *dup.seen);
    dup.c = new_log(&dup, 2, "clog4", 5, 0);
    assert_int_equal(pt_clog_start(dup.c, 0), 0);
    double end = pt_etcd_now() + DEADLINE;
    while (!dup.fatal && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(dup.fatal, 1);
    assert_non_null(strstr(dup.error, "host 'h1': refusing to join"));
    assert_non_null(strstr(dup.error, "clog4/hosts/h1"));
    assert_non_null(strstr(dup.error, "own host name"));
    assert_false(pt_clog_is_member(dup.c));
    char err[256];
    assert_int_equal(pt_clog_append(dup.c, "x", 1, NULL, err, sizeof err), -1);
    /* The first h1 is untouched: still a member, nobody saw it go. */
    run_for(0.3);
    assert_true(pt_clog_is_member(hosts[1].c));
    for (int i = 0; i < HOSTS; i++)
        assert_int_equal(hosts[i].gones[1], 0);
    pt_clog_free(dup.c);
    free(dup.seen);
}

/* ---- a compacted start ---------------------------------------------------- */

/* A log asked to start from a revision etcd compacted away says so
 * (on_compacted) and does not stop: it joins, and goes on from the revision
 * pt_clog_rewatch names (the one after a snapshot, for the daemon), its
 * entries delivered from there. */
static void test_compacted_start_reported(void **state)
{
    (void)state;
    int64_t now = current_revision();
    char body[96], out[1024];
    snprintf(body, sizeof body, "{\"revision\":\"%lld\",\"physical\":true}", (long long)now);
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    assert_int_equal(pt_etcd_http_post(cluster.m[leader].client_port, "/v3/kv/compaction", body,
                                       out, sizeof out, 5.0),
                     200);
    host *h = &hosts[0];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "h0");
    h->seen = calloc(SEEN_MAX, sizeof *h->seen);
    h->c = new_log(h, 0, "clog7", 5, 0);
    assert_int_equal(pt_clog_start(h->c, now - 5), 0);
    double end = pt_etcd_now() + DEADLINE;
    while ((h->compacted < 1 || !pt_clog_is_member(h->c)) && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(h->compacted, 1);
    assert_int_equal(h->fatal, 0);
    assert_int_equal(h->nseen, 0);
    assert_int_equal(pt_clog_rewatch(h->c, now + 1, 0), 0);
    char err[128];
    assert_int_equal(pt_clog_append(h->c, "h0#0", 4, (void *)(intptr_t)0, err, sizeof err), 0);
    end = pt_etcd_now() + DEADLINE;
    while (h->committed < 1 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(h->committed, 1);
    assert_int_equal(h->entries, 1);
    assert_int_equal(h->errors, 0);
    assert_true(h->applied >= h->commit_rev[0]);
    assert_int_equal(h->fatal, 0);
}

/* ---- an entry deleted behind a snapshot -------------------------------- */

static void http_put_or_delete(const char *path, const char *key, const char *value)
{
    char k[256], v[256], body[600], out[2048];
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    k[pt_etcd_b64_encode(key, strlen(key), k)] = '\0';
    if (value) {
        v[pt_etcd_b64_encode(value, strlen(value), v)] = '\0';
        snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    } else {
        snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
    }
    assert_int_equal(
        pt_etcd_http_post(cluster.m[leader].client_port, path, body, out, sizeof out, 5.0), 200);
}

/* An append whose answer was lost, its entry deleted behind a snapshot
 * before the txn was sent again: the failed compare finds the entry gone,
 * and the snapshot's head, at or after the entry's revision, vouches that
 * it landed; the log goes on. */
static void test_lost_answer_entry_deleted(void **state)
{
    (void)state;
    host *h = &hosts[0];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "h0");
    h->seen = calloc(SEEN_MAX, sizeof *h->seen);
    h->c = new_log(h, 0, "clog9", 5, 0);
    assert_int_equal(pt_clog_start(h->c, 0), 0);
    double end = pt_etcd_now() + DEADLINE;
    while (!pt_clog_is_member(h->c) && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(pt_clog_is_member(h->c));
    pt_clog_test_lose_answers(h->c, 1);
    char err[128], head[64];
    assert_int_equal(pt_clog_append(h->c, "h0#0", 4, (void *)(intptr_t)0, err, sizeof err), 0);
    pt_clog_stats st = {0};
    while (st.resends == 0 && pt_etcd_now() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        pt_clog_get_stats(h->c, &st);
    }
    assert_int_equal(st.resends, 1); /* landed, its answer dropped: sent again soon */
    http_put_or_delete("/v3/kv/deleterange", "clog9/log/h0/00000000000000000001", NULL);
    snprintf(head, sizeof head, "%020lld h9 1 1 0", (long long)current_revision());
    http_put_or_delete("/v3/kv/put", "clog9/snap", head);
    assert_int_equal(pt_clog_append(h->c, "h0#1", 4, (void *)(intptr_t)1, err, sizeof err), 0);
    while (h->committed < 2 && h->fatal == 0 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    pt_clog_get_stats(h->c, &st);
    assert_int_equal(h->fatal, 0);
    assert_int_equal(st.found_landed, 1);
    assert_int_equal(h->committed, 2);
    assert_int_equal(h->entries, 2);
    assert_int_equal(h->errors, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_order, teardown),
        cmocka_unit_test_teardown(test_duplicate_host_refused, teardown),
        cmocka_unit_test_teardown(test_lost_answers_found_landed, teardown),
        cmocka_unit_test_teardown(test_another_writer_stops, teardown),
        cmocka_unit_test_teardown(test_host_cut_off, teardown),
        cmocka_unit_test_teardown(test_host_partitioned, teardown),
        cmocka_unit_test_teardown(test_leader_killed, teardown),
        cmocka_unit_test_teardown(test_compacted_start_reported, teardown),
        cmocka_unit_test_teardown(test_lost_answer_entry_deleted, teardown),
    };
    return cmocka_run_group_tests_name("integration: cluster log", tests, group_setup,
                                       group_teardown);
}
