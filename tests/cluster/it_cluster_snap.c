/*
 * it_cluster_snap.c - pythreadd --etcd with snapshots every few entries
 * (--etcd-snapshot-every), on a real 3-member etcd cluster.
 *
 * Three daemons under heavy traffic, with a cluster lock held and waiters
 * of other hosts queued for it: a snapshot lands (its head key, its
 * chunks), the log's entries behind it are deleted, etcd's history is
 * compacted (a read at an old revision fails as compacted); a fourth daemon
 * started then loads the snapshot and shows the same holder and waiters in
 * the same order, and the lock hands off in that order, its own waiter
 * last, with growing tokens. A daemon stopped while etcd compacted past its
 * place loads the snapshot again and goes on; its processes' cluster
 * sessions end, and what they held goes to the next waiter. A daemon
 * started before any snapshot, on an etcd compacted by other clusters,
 * starts from the log's first entry; a snapshot of a few hundred KiB goes
 * in several chunks and loads whole. Skipped (77) where etcd is not
 * installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd.h"
#include "etcd_cluster.h"
#include "pythread.h"
#include "pythread_inspect.h"

#define HOSTS    4  /* three from the start, a fourth later */
#define TTL      20 /* long: a daemon is stopped for seconds within it */
#define EVERY    20 /* entries between snapshots */
#define DEADLINE 20.0

static pt_etcd_cluster etcd;
static char dir[128];
static int test_no;
static char prefix[32];

typedef struct daemon_proc {
    pid_t pid;
    char sock[200], log[200], host[16];
} daemon_proc;

static daemon_proc daemons[HOSTS];
static int every;         /* --etcd-snapshot-every of the daemons started */
static const char *extra; /* and one more option of theirs, or NULL */

/* What the test and its workers share (MAP_SHARED). */
typedef struct shared {
    atomic_int ready, go, done, failed;
    atomic_int order[16]; /* hosts in the order they took "H" */
    atomic_int norder;
    uint64_t token[16];
    atomic_long rounds;
} shared;

static shared *sh;

static double now_s(void)
{
    return pt_etcd_now();
}

static void nap(void)
{
    nanosleep(&(struct timespec){0, 5000000}, NULL);
}

static void daemon_start(int i)
{
    daemon_proc *d = &daemons[i];
    char ttl[8], every_s[12], err[300];
    const char *args[] = {"--etcd",
                          etcd.endpoints,
                          "--etcd-prefix",
                          prefix,
                          "--etcd-ttl",
                          ttl,
                          "--etcd-snapshot-every",
                          every_s,
                          "--host-name",
                          d->host,
                          extra,
                          NULL};

    snprintf(d->host, sizeof(d->host), "h%d", i);
    snprintf(d->sock, sizeof(d->sock), "%s/t%d-h%d.sock", dir, test_no, i);
    snprintf(d->log, sizeof(d->log), "%s/t%d-h%d.log", dir, test_no, i);
    snprintf(ttl, sizeof(ttl), "%d", TTL);
    snprintf(every_s, sizeof(every_s), "%d", every);
    d->pid =
        pt_etcd_daemon_start(PT_DAEMON_PATH, d->sock, d->log, args, DEADLINE, err, sizeof(err));
    if (d->pid < 0)
        fail_msg("host %s: %s", d->host, err);
}

static void show_logs(void)
{
    for (int i = 0; i < HOSTS; i++)
        pt_etcd_file_show(daemons[i].host, daemons[i].log);
}

/* 1 when host i's log has a line with text. */
static int log_says(int i, const char *text)
{
    char line[2048];
    FILE *f = fopen(daemons[i].log, "r");
    int found = 0;

    while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, text) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

/* ---- etcd, read by the test ------------------------------------------- */

/* POST body to path on a live member; the HTTP status, the body in out. */
static int etcd_post(const char *path, const char *body, char *out, size_t len)
{
    for (int i = 0; i < etcd.n; i++) {
        int st;

        if (etcd.m[i].pid <= 0)
            continue;
        st = pt_etcd_http_post(etcd.m[i].client_port, path, body, out, len, 5.0);
        if (st > 0)
            return st;
    }
    return -1;
}

static void b64(const char *s, char *out)
{
    out[pt_etcd_b64_encode(s, strlen(s), out)] = '\0';
}

/* Keys in [from, to) at revision rev (0: now): their count, or -1 when
 * etcd refused (the answer in out). */
static long long etcd_count(const char *from, const char *to, long long rev, char *out, size_t len)
{
    char k[512], e[512], body[1200];
    const char *p;

    b64(from, k);
    b64(to, e);
    snprintf(body, sizeof(body),
             "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true,\"revision\":\"%lld\"}", k,
             e, rev);
    if (etcd_post("/v3/kv/range", body, out, len) != 200)
        return -1;
    p = strstr(out, "\"count\":\"");
    return p ? atoll(p + strlen("\"count\":\"")) : 0;
}

/* etcd's revision now. */
static long long current_revision(void)
{
    char out[4096];
    const char *p;

    if (etcd_count("/", "0", 0, out, sizeof(out)) < 0 ||
        (p = strstr(out, "\"revision\":\"")) == NULL)
        return -1;
    return atoll(p + strlen("\"revision\":\""));
}

/* 1 when a read at revision rev fails as compacted. */
static int compacted_at(long long rev)
{
    char out[4096];

    return etcd_count("/", "0", rev, out, sizeof(out)) < 0 && strstr(out, "compacted") != NULL;
}

/* The snapshot's head: its revision (0: none yet) and its chunks. */
static long long snap_head(int *nchunks)
{
    char k[512], body[700], out[8192], value[512], head[256];
    const char *p;
    long v;
    long long rev = 0;
    size_t chunks = 0, bytes = 0;

    snprintf(body, sizeof(body), "%ssnap", prefix);
    b64(body, k);
    snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k);
    if (etcd_post("/v3/kv/range", body, out, sizeof(out)) != 200 ||
        (p = strstr(out, "\"value\":\"")) == NULL ||
        sscanf(p + strlen("\"value\":\""), "%511[^\"]", value) != 1)
        return 0;
    v = pt_etcd_b64_decode(value, strlen(value), head);
    if (v < 0 || (size_t)v >= sizeof(head))
        return 0;
    head[v] = '\0';
    if (sscanf(head, "%lld %*s %zu %zu", &rev, &chunks, &bytes) != 3)
        return 0;
    if (nchunks)
        *nchunks = (int)chunks;
    return rev;
}

/* ---- workers ---------------------------------------------------------- */

typedef int (*work_fn)(pt_client *c, int host, void *arg);

static pid_t worker(int host, work_fn fn, void *arg)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        pt_client *c = NULL;
        int r = pt_client_open(&c, daemons[host].sock);

        if (r < 0)
            _exit(90);
        r = fn(c, host, arg);
        pt_client_close(c);
        _exit(r);
    }
    return pid;
}

static int join_one(pid_t pid)
{
    double end = now_s() + 3 * DEADLINE;
    int st = 0;
    pid_t w;

    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && now_s() < end)
        nap();
    if (w != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void join(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        int st = join_one(pids[i]);

        if (st != 0) {
            show_logs();
            fail_msg("worker %d ended with status %d", i, st);
        }
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #cond,                   \
                    pt_last_error_message());                                                      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static void wait_flag(atomic_int *flag, int value)
{
    double end = now_s() + DEADLINE;

    while (atomic_load(flag) < value && now_s() < end)
        nap();
}

#define ROUNDS 25

/* ROUNDS acquire/release pairs on the cluster lock "L": entries. */
static int count_rounds(pt_client *c, int host, void *arg)
{
    pt_lock *l;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "L", PT_OPEN_CLUSTER, 0, &l) == 0);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(pt_lock_acquire(l, 1, DEADLINE) == 1);
        atomic_fetch_add(&sh->rounds, 1);
        CHECK(pt_lock_release(l) == 0);
    }
    CHECK(pt_lock_close(l) == 0);
    return 0;
}

/* Traffic on "L" from h0 and h1, round after round, until etcd's history
 * is compacted past revision rev: snapshots come every few entries, and
 * the compaction keeps 2 s of history behind them. 1 when it was. */
static int traffic_until_compacted(long long rev)
{
    pid_t traffic[2];

    for (double end = now_s() + DEADLINE; !compacted_at(rev);) {
        if (now_s() > end)
            return 0;
        for (int i = 0; i < 2; i++)
            traffic[i] = worker(i, count_rounds, NULL);
        join(traffic, 2);
    }
    return 1;
}

/* Takes the cluster lock named arg (waiting as long as it takes), notes
 * its turn and token, holds it until the test says go (the first taker)
 * or gives it on at once. */
static int take_in_turn(pt_client *c, int host, void *arg)
{
    pt_lock *l;
    uint64_t token;
    int turn;

    CHECK(pt_lock_open(c, arg, PT_OPEN_CLUSTER, 0, &l) == 0);
    atomic_fetch_add(&sh->ready, 1);
    CHECK(pt_lock_acquire_fenced(l, 1, 6 * DEADLINE, &token) == 1);
    turn = atomic_fetch_add(&sh->norder, 1);
    sh->order[turn] = host;
    sh->token[turn] = token;
    if (turn == 0)
        wait_flag(&sh->go, 1);
    CHECK(pt_lock_release(l) == 0);
    pt_lock_close(l);
    return 0;
}

/* Holds the cluster lock "Q" and waits for go, then tries to release it:
 * 0 when the release failed (its session was ended under it). */
static int hold_q(pt_client *c, int host, void *arg)
{
    pt_lock *l;

    (void)host, (void)arg;
    CHECK(pt_lock_open(c, "Q", PT_OPEN_CLUSTER, 0, &l) == 0);
    CHECK(pt_lock_acquire(l, 1, DEADLINE) == 1);
    atomic_store(&sh->ready, 1);
    while (atomic_load(&sh->go) == 0)
        nap();
    return pt_lock_release(l) < 0 ? 0 : 1;
}

#define OBJECTS  600 /* per worker; names of NAME_LEN bytes */
#define NAME_LEN 250

/* OBJECTS cluster locks with long names, each opened and closed: they
 * stay (named objects do), and make the copy a few hundred KiB. */
static int make_objects(pt_client *c, int host, void *arg)
{
    char name[NAME_LEN + 1];
    pt_lock *l;

    (void)arg;
    for (int i = 0; i < OBJECTS; i++) {
        snprintf(name, sizeof(name), "O-%d-%05d-", host, i);
        memset(name + strlen(name), 'x', NAME_LEN - strlen(name));
        name[NAME_LEN] = '\0';
        CHECK(pt_lock_open(c, name, PT_OPEN_CLUSTER, 0, &l) == 0);
        CHECK(pt_lock_close(l) == 0);
    }
    return 0;
}

static int count_object(void *arg, const pt_inspect_object *obj)
{
    (void)obj;
    (*(int *)arg)++;
    return 0;
}

/* ---- setup ------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    if (pt_etcd_cluster_start_or_skip(&etcd, 3, DEADLINE) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/pt-snap.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return sh == MAP_FAILED ? -1 : 0;
}

static int group_teardown(void **state)
{
    char cmd[200];

    (void)state;
    pt_etcd_cluster_stop(&etcd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Daemons h0 to h<count - 1> on a prefix of the test's own, a snapshot
 * every n entries. */
static int setup_every(int n, int count, const char *option)
{
    every = n;
    extra = option;
    test_no++;
    snprintf(prefix, sizeof(prefix), "/snap%d/", test_no);
    memset(sh, 0, sizeof(*sh));
    memset(daemons, 0, sizeof(daemons));
    for (int i = 0; i < count; i++)
        daemon_start(i);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_every(EVERY, HOSTS - 1, NULL);
}

/* Fewer, larger snapshots, etcd's history kept; h0 and h1 only. */
static int setup_large(void **state)
{
    (void)state;
    return setup_every(2 * OBJECTS, 2, "--etcd-keep-history");
}

/* Each daemon still running stops cleanly on SIGTERM, status 0. */
static int teardown(void **state)
{
    int bad = 0;

    (void)state;
    for (int i = 0; i < HOSTS; i++) {
        int st = 0;

        if (daemons[i].pid <= 0)
            continue;
        kill(daemons[i].pid, SIGCONT);
        kill(daemons[i].pid, SIGTERM);
        waitpid(daemons[i].pid, &st, 0);
        daemons[i].pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "pythreadd %s ended with status %d on SIGTERM\n", daemons[i].host,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            bad = 1;
        }
    }
    if (bad)
        show_logs();
    return bad ? -1 : 0;
}

/* The cluster object name through host's daemon, once its copy shows
 * holders and waiters as many. */
static pt_inspect_detail *show_when(int host, const char *name, size_t holders, size_t waiters)
{
    pt_client *c = NULL;
    pt_inspect_detail *d = NULL;

    assert_int_equal(pt_client_open(&c, daemons[host].sock), 0);
    for (double end = now_s() + DEADLINE;;) {
        if (pt_inspect_cluster_show(c, name, &d) == 0 && d->n_holders == holders &&
            d->n_waiters == waiters)
            break;
        pt_inspect_detail_free(d);
        d = NULL;
        if (now_s() > end) {
            show_logs();
            fail_msg("host %d never showed %s with %zu holders and %zu waiters", host, name,
                     holders, waiters);
        }
        nap();
    }
    pt_client_close(c);
    return d;
}

static void same_party(const pt_inspect_party *a, const pt_inspect_party *b)
{
    assert_string_equal(a->host, b->host);
    assert_int_equal(a->session, b->session);
    assert_int_equal(a->pid, b->pid);
    assert_string_equal(a->what, b->what);
}

/* ---- the tests -------------------------------------------------------- */

/* h1 holds "H", h2's and then h0's processes wait for it; traffic on "L"
 * from all three makes snapshots. The log's first entries are deleted and
 * an old revision is compacted away. h3, started then, loads the snapshot
 * (the entries before it are gone) and shows "H" as h0 does; its own
 * waiter queues last, and "H" goes h1, h2, h0, h3 with growing tokens. */
static void test_snapshot_compaction_new_host(void **state)
{
    pid_t takers[HOSTS];
    pt_inspect_detail *d0, *d3;
    char from[128], to[128], out[8192];
    long long rev, left;
    int chunks = 0;

    (void)state;
    takers[0] = worker(1, take_in_turn, "H");
    wait_flag(&sh->norder, 1); /* h1 holds it */
    takers[1] = worker(2, take_in_turn, "H");
    wait_flag(&sh->ready, 2);
    pt_inspect_detail_free(show_when(0, "H", 1, 1)); /* h2 queued first */
    takers[2] = worker(0, take_in_turn, "H");
    pt_inspect_detail_free(show_when(0, "H", 1, 2));
    /* snapshots, and one 2 s after another: compaction goes up to it */
    if (!traffic_until_compacted(1)) {
        show_logs();
        fail_msg("no snapshot and compaction within %.0f s (head at %lld)", DEADLINE,
                 snap_head(NULL));
    }
    rev = snap_head(&chunks);
    print_message("snapshot at revision %lld in %d chunk(s); revision 1 compacted\n", rev, chunks);
    assert_true(chunks >= 1);
    assert_true(log_says(0, "cluster snapshot at revision")); /* h0: first in name order */
    assert_false(log_says(1, "cluster snapshot at revision"));
    assert_false(log_says(0, "compacting etcd's history"));
    /* every host's first entries are gone from the log */
    for (int i = 0; i < HOSTS - 1; i++) {
        snprintf(from, sizeof(from), "%slog/h%d/", prefix, i);
        snprintf(to, sizeof(to), "%slog/h%d/%020d", prefix, i, 10);
        left = etcd_count(from, to, 0, out, sizeof(out));
        assert_int_equal(left, 0);
    }
    snprintf(from, sizeof(from), "%slog/", prefix);
    snprintf(to, sizeof(to), "%slog0", prefix);
    left = etcd_count(from, to, 0, out, sizeof(out));
    print_message("%lld log entries left after %ld rounds\n", left, (long)atomic_load(&sh->rounds));
    assert_true(left >= 0 && left < (long long)atomic_load(&sh->rounds));

    /* the fourth host: from the snapshot, the same holder and waiters */
    daemon_start(3);
    d3 = show_when(3, "H", 1, 2);
    d0 = show_when(0, "H", 1, 2);
    assert_true(log_says(3, "loaded from the snapshot at revision"));
    same_party(&d3->holders[0], &d0->holders[0]);
    assert_string_equal(d3->holders[0].host, "h1");
    for (int i = 0; i < 2; i++)
        same_party(&d3->waiters[i], &d0->waiters[i]);
    assert_string_equal(d3->waiters[0].host, "h2");
    assert_string_equal(d3->waiters[1].host, "h0");
    assert_int_equal(d3->object.token, d0->object.token);
    pt_inspect_detail_free(d3);
    pt_inspect_detail_free(d0);

    /* its own waiter goes last; the hand-offs follow the queue */
    takers[3] = worker(3, take_in_turn, "H");
    pt_inspect_detail_free(show_when(1, "H", 1, 3));
    atomic_store(&sh->go, 1);
    join(takers, HOSTS);
    assert_int_equal(atomic_load(&sh->norder), 4);
    assert_int_equal(sh->order[0], 1);
    assert_int_equal(sh->order[1], 2);
    assert_int_equal(sh->order[2], 0);
    assert_int_equal(sh->order[3], 3);
    for (int i = 1; i < 4; i++)
        assert_true(sh->token[i] > sh->token[i - 1]);
}

/* h2 holds "Q" and h1 waits for it. h2's daemon is stopped (within its
 * lease) while the etcd member every daemon reads from first is killed and
 * the others make snapshots and compact past h2's place. Resumed, h2's
 * watch starts again elsewhere from a compacted revision: it loads the
 * snapshot, closes its connections with cluster sessions (their ends go to
 * the log), and "Q" goes to h1; h2 serves cluster calls again. */
static void test_lagging_daemon_reloads(void **state)
{
    pid_t holder, waiter;
    pt_inspect_detail *d;
    long long stopped_at, rev;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    double t0;

    (void)state;
    holder = worker(2, hold_q, NULL);
    wait_flag(&sh->ready, 1);
    waiter = worker(1, take_in_turn, "Q");
    pt_inspect_detail_free(show_when(2, "Q", 1, 1));
    kill(daemons[2].pid, SIGSTOP);
    t0 = now_s();
    stopped_at = current_revision();
    assert_true(stopped_at > 0);
    pt_etcd_cluster_kill(&etcd, 0);
    /* snapshots past the stop, and etcd's history compacted past it */
    if (!traffic_until_compacted(stopped_at + 1)) {
        show_logs();
        fail_msg("etcd's history not compacted past revision %lld", stopped_at);
    }
    rev = snap_head(NULL);
    print_message("h2 stopped %.1f s; snapshot now at %lld\n", now_s() - t0, rev);
    assert_true(now_s() - t0 < TTL / 2.0); /* its lease holds */
    kill(daemons[2].pid, SIGCONT);
    for (double end = now_s() + DEADLINE; !log_says(2, "loaded from the snapshot at revision");
         nap()) {
        if (now_s() > end) {
            show_logs();
            fail_msg("h2 never loaded the snapshot again");
        }
    }
    atomic_store(&sh->go, 1);
    assert_int_equal(join_one(holder), 0); /* its release failed: the session ended */
    assert_int_equal(join_one(waiter), 0);
    assert_int_equal(sh->order[0], 1);
    /* h2 serves, and its copy agrees with h0's */
    assert_int_equal(pt_client_open(&c, daemons[2].sock), 0);
    assert_int_equal(pt_lock_open(c, "Q", PT_OPEN_CLUSTER, 0, &l), 0);
    assert_int_equal(pt_lock_acquire(l, 1, DEADLINE), 1);
    d = show_when(0, "Q", 1, 0);
    assert_string_equal(d->holders[0].host, "h2");
    pt_inspect_detail_free(d);
    assert_int_equal(pt_lock_release(l), 0);
    pt_lock_close(l);
    pt_client_close(c);
    assert_int_equal(pt_etcd_cluster_restart(&etcd, 0, DEADLINE), 0);
}

/* h2 starts after the log's first entries and before any snapshot, on an
 * etcd whose history the earlier tests' snapshots compacted: its copy
 * starts just before the first entry. A copy of a few hundred KiB: the
 * snapshot goes in several chunks (each under etcd's request limit), and a
 * daemon started then loads it whole. With --etcd-keep-history the
 * entries behind it are deleted, and etcd's history is left alone. */
static void test_snapshot_in_chunks(void **state)
{
    pid_t pids[2];
    pt_client *c = NULL, *c0 = NULL;
    pt_lock *early = NULL;
    pt_inspect_detail *d;
    long long rev = 0;
    int chunks = 0, n = 0;

    (void)state;
    assert_int_equal(pt_client_open(&c0, daemons[0].sock), 0);
    assert_int_equal(pt_lock_open(c0, "early", PT_OPEN_CLUSTER, 0, &early), 0);
    assert_int_equal(pt_lock_acquire(early, 1, DEADLINE), 1);
    daemon_start(2);
    d = show_when(2, "early", 1, 0);
    assert_string_equal(d->holders[0].host, "h0");
    pt_inspect_detail_free(d);
    assert_false(log_says(2, "compacted"));
    for (int i = 0; i < 2; i++)
        pids[i] = worker(i, make_objects, NULL);
    join(pids, 2);
    for (double end = now_s() + DEADLINE; (rev = snap_head(&chunks)) == 0 || chunks < 2; nap()) {
        if (now_s() > end) {
            show_logs();
            fail_msg("no snapshot in chunks (head at %lld, %d chunks)", rev, chunks);
        }
    }
    print_message("snapshot at revision %lld in %d chunks\n", rev, chunks);
    for (double end = now_s() + DEADLINE; !log_says(0, "etcd's history kept"); nap())
        assert_true(now_s() < end);
    assert_false(log_says(0, "compacted up to"));
    daemon_start(3);
    for (double end = now_s() + DEADLINE; !log_says(3, "loaded from the snapshot at revision");
         nap())
        assert_true(now_s() < end);
    assert_int_equal(pt_client_open(&c, daemons[3].sock), 0);
    for (double end = now_s() + DEADLINE; n < 2 * OBJECTS; nap()) {
        n = 0;
        assert_int_equal(pt_inspect_cluster_list(c, "O-*", 0, count_object, &n), 0);
        assert_true(now_s() < end);
    }
    assert_int_equal(n, 2 * OBJECTS);
    d = show_when(3, "early", 1, 0);
    assert_string_equal(d->holders[0].host, "h0");
    pt_inspect_detail_free(d);
    pt_client_close(c);
    assert_int_equal(pt_lock_release(early), 0);
    pt_lock_close(early);
    pt_client_close(c0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_compaction_new_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lagging_daemon_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_in_chunks, setup_large, teardown),
    };

    return cmocka_run_group_tests_name("integration.cluster_snap", tests, group_setup,
                                       group_teardown);
}
