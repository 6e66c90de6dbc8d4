/*
 * bench_pythread.c - pythread measured through its public API, each mode
 * printing RESULT lines (see bench.h).
 *
 *   bench_pythread ops ITERS OPENS      single operations, uncontended:
 *                                       Lock, RLock and Semaphore
 *                                       acquire+release pairs, Event.is_set,
 *                                       Condition.notify with no waiters, and
 *                                       the open of a new named Lock
 *   bench_pythread handoff PROCS ITERS  PROCS processes take turns on one
 *                                       Lock; time per hand-off
 *   bench_pythread throughput PROCS MILLISECONDS DAEMON_PID
 *                                       PROCS processes doing pairs on their
 *                                       own Lock; pairs/s, the daemon's CPU
 *                                       and its read and write system calls
 *                                       per request
 *   bench_pythread threads THREADS MILLISECONDS DAEMON_PID
 *                                       the same with THREADS threads of one
 *                                       process sharing its session, so the
 *                                       socket holds several requests at once
 *   bench_pythread scale OBJECTS SESSIONS ITERS DAEMON_PID
 *                                       on an empty daemon: pair latency,
 *                                       then OBJECTS named objects and
 *                                       SESSIONS idle sessions, the daemon's
 *                                       resident memory for each, and the
 *                                       pair latency again
 *   bench_pythread flood SILENT READING OBJECTS MILLISECONDS
 *                                       raw connections pipelining LIST
 *                                       requests as fast as they can,
 *                                       SILENT never reading the answers,
 *                                       READING reading them, with OBJECTS
 *                                       named objects to list, while this
 *                                       process times Lock pairs for
 *                                       MILLISECONDS: what a flood costs
 *                                       everyone else (p99 and max)
 *   bench_pythread hold SESSIONS        SESSIONS sessions each holding a
 *                                       Lock of its own (taken through its
 *                                       word); "READY" once they all do, then
 *                                       at the end of standard input each
 *                                       releases: how many still held it
 *                                       (across a restart of pythreadd
 *                                       --state-dir meanwhile)
 *
 * The socket is $PYTHREAD_SOCKET.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pythread.h>

#include "bench.h"
#include "wire.h"

#define BENCH_ROUNDS 5 /* turns each operation takes in ops mode */

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int check_r_ = (expr);                                                                     \
        if (check_r_ < 0)                                                                          \
            bench_die("%s failed: %s: %s", #expr, pt_strerror(check_r_), pt_last_error_message()); \
    } while (0)

static pt_client *client_open(void)
{
    pt_client *c;

    CHECK(pt_client_open(&c, NULL));
    return c;
}

/* Shared between the parent and its workers; lives in a MAP_SHARED page. */
typedef struct shared {
    atomic_int ready;    /* workers connected and set up */
    atomic_int go;       /* the parent's start signal */
    atomic_int stop;     /* the parent's stop signal (throughput) */
    atomic_int failures; /* workers that saw something wrong */
    _Atomic long next;   /* handoff: next slot; written under the benchmarked Lock */
    long total;
    uint64_t count[64]; /* throughput: pairs done per worker */
    struct {
        uint64_t ns;
        int worker;
    } turn[]; /* handoff: one entry per acquisition */
} shared;

static shared *shared_map(size_t turns)
{
    size_t size = sizeof(shared) + turns * sizeof(((shared *)0)->turn[0]);
    shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (sh == MAP_FAILED)
        bench_die("cannot map %zu shared bytes: %s", size, strerror(errno));
    return sh;
}

/* Workers spin (yielding) on a flag: no sleep skews the start. */
static void wait_flag(atomic_int *flag, int value)
{
    while (atomic_load(flag) < value)
        sched_yield();
}

static void workers_wait(pid_t *pids, int n, shared *sh)
{
    int i, status;

    for (i = 0; i < n; i++) {
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
            atomic_fetch_add(&sh->failures, 1);
    }
    if (atomic_load(&sh->failures))
        bench_die("%d worker process(es) failed; see the messages above",
                  atomic_load(&sh->failures));
}

/* ------------------------------------------------------------------ */
/* Single operations                                                   */
/* ------------------------------------------------------------------ */

typedef int (*pair_fn)(void *obj);

static int lock_pair(void *o)
{
    int r = pt_lock_acquire(o, 1, PT_FOREVER);

    return r < 0 ? r : pt_lock_release(o);
}

static int rlock_pair(void *o)
{
    int r = pt_rlock_acquire(o, 1, PT_FOREVER);

    return r < 0 ? r : pt_rlock_release(o);
}

static int sem_pair(void *o)
{
    int r = pt_semaphore_acquire(o, 1, PT_FOREVER);

    return r < 0 ? r : pt_semaphore_release(o, 1);
}

/* One round trip of the bare transport, taking turns with the others. */
static int raw_rtt(void *fdp)
{
    static const char req[256];
    char resp[256];
    int fd = *(int *)fdp;

    bench_write_full(fd, req, bench_req_size);
    bench_read_full(fd, resp, bench_resp_size);
    return 0;
}

static int event_is_set(void *o)
{
    return pt_event_is_set(o);
}

static int cond_notify(void *o)
{
    return pt_condition_notify(o, 1);
}

/* Time fn(obj) iters times into s, after a tenth as many to warm up. */
static void time_into(bench_samples *s, pair_fn fn, void *obj, long iters)
{
    long i;

    for (i = -iters / 10; i < iters; i++) {
        uint64_t t0 = bench_now_ns();

        CHECK(fn(obj));
        if (i >= 0)
            bench_samples_add(s, bench_now_ns() - t0);
    }
}

/* A pair through the shared word takes about as long as reading the clock
 * twice: time batches of calls and report the time per call. */
static void time_batched(const char *name, pair_fn fn, void *obj, long iters)
{
    enum { BATCH = 256 };
    long i, j, n = iters / BATCH + 1;
    bench_samples s;

    bench_samples_init(&s, (size_t)n);
    for (i = -n / 10 - 1; i < n; i++) {
        uint64_t t0 = bench_now_ns();

        for (j = 0; j < BATCH; j++)
            CHECK(fn(obj));
        if (i >= 0)
            bench_samples_add(&s, (bench_now_ns() - t0) / BATCH);
    }
    bench_report(name, &s, NULL);
    bench_samples_free(&s);
}

static void time_op(const char *name, pair_fn fn, void *obj, long iters)
{
    bench_samples s;

    bench_samples_init(&s, (size_t)iters);
    time_into(&s, fn, obj, iters);
    bench_report(name, &s, NULL);
    bench_samples_free(&s);
}

static void time_open(pt_client *c, long opens)
{
    bench_samples s;
    char name[64];
    long i;

    bench_samples_init(&s, (size_t)opens);
    for (i = -opens / 10; i < opens; i++) {
        pt_lock *l;
        uint64_t t0;

        snprintf(name, sizeof(name), "bench.open.%ld.%ld", (long)getpid(), i + opens);
        t0 = bench_now_ns();
        CHECK(pt_lock_open(c, name, PT_OPEN_EXCL | PT_OPEN_TRANSIENT, 0600, &l));
        if (i >= 0)
            bench_samples_add(&s, bench_now_ns() - t0);
        CHECK(pt_lock_close(l));
    }
    bench_report("pt.open_new", &s, NULL);
    bench_samples_free(&s);
}

static void mode_ops(long iters, long opens)
{
    pt_client *c = client_open();
    pt_lock *lock;
    pt_rlock *rlock;
    pt_semaphore *sem, *bsem;
    pt_event *ev;
    pt_condition *cv;

    CHECK(pt_lock_open(c, "bench.ops.lock", PT_OPEN_TRANSIENT, 0600, &lock));
    /* Owned permits, counted in the session's slot beside the word. */
    CHECK(pt_semaphore_open(c, "bench.ops.bsem", 1, 1, PT_OPEN_TRANSIENT, 0600, &bsem));
    CHECK(pt_rlock_open(c, "bench.ops.rlock", PT_OPEN_TRANSIENT, 0600, &rlock));
    CHECK(pt_semaphore_open(c, "bench.ops.sem", 1, 0, PT_OPEN_TRANSIENT, 0600, &sem));
    CHECK(pt_event_open(c, "bench.ops.event", PT_OPEN_TRANSIENT, 0600, &ev));
    CHECK(pt_condition_open(c, "bench.ops.cond", NULL, PT_OPEN_TRANSIENT, 0600, &cv));
    const struct {
        const char *name;
        pair_fn fn;
        void *obj;
    } ops[] = {
        {"pt.lock_pair", lock_pair, lock},   {"pt.rlock_pair", rlock_pair, rlock},
        {"pt.sem_pair", sem_pair, sem},      {"pt.event_is_set", event_is_set, ev},
        {"pt.cond_notify", cond_notify, cv},
    };
    enum { NOPS = sizeof(ops) / sizeof(ops[0]) };
    bench_samples s[NOPS], raw;
    long round;
    size_t k;
    pid_t echo;
    int echo_fd = bench_echo_start(&echo);

    /* The operations take turns in rounds, so a burst of load from
     * elsewhere on the machine lands on all of them alike. */
    for (k = 0; k < NOPS; k++)
        bench_samples_init(&s[k], (size_t)iters);
    bench_samples_init(&raw, (size_t)iters);
    CHECK(pt_condition_acquire(cv, 1, PT_FOREVER)); /* notify needs the lock */
    for (round = 0; round < BENCH_ROUNDS; round++) {
        time_into(&raw, raw_rtt, &echo_fd, iters / BENCH_ROUNDS);
        for (k = 0; k < NOPS; k++)
            time_into(&s[k], ops[k].fn, ops[k].obj, iters / BENCH_ROUNDS);
    }
    CHECK(pt_condition_release(cv));
    time_batched("pt.lock_pair_batch", lock_pair, lock, iters);
    time_batched("pt.sem_pair_batch", sem_pair, sem, iters);
    time_batched("pt.bsem_pair_batch", sem_pair, bsem, iters);
    bench_echo_stop(echo_fd, echo);
    bench_report("raw.rtt_interleaved", &raw, NULL);
    bench_samples_free(&raw);
    for (k = 0; k < NOPS; k++) {
        bench_report(ops[k].name, &s[k], NULL);
        bench_samples_free(&s[k]);
    }
    time_open(c, opens);
    pt_client_close(c);
}

/* ------------------------------------------------------------------ */
/* Hand-off                                                            */
/* ------------------------------------------------------------------ */

/* Take turns until the shared table is full; each turn stamps its time. */
static void handoff_worker(shared *sh, int me, const char *name)
{
    pt_client *c = client_open();
    pt_lock *l;

    CHECK(pt_lock_open(c, name, 0, 0600, &l));
    atomic_fetch_add(&sh->ready, 1);
    wait_flag(&sh->go, 1);
    for (;;) {
        long mine;

        CHECK(pt_lock_acquire(l, 1, PT_FOREVER));
        if (sh->next >= sh->total) {
            CHECK(pt_lock_release(l));
            break;
        }
        sh->turn[sh->next].ns = bench_now_ns();
        sh->turn[sh->next].worker = me;
        mine = ++sh->next;
        CHECK(pt_lock_release(l));
        /* The next turn is another's: the lock changes hands every turn,
         * from its holder to a process waiting for it. */
        while (atomic_load_explicit(&sh->next, memory_order_relaxed) == mine && mine < sh->total)
            sched_yield();
    }
    pt_client_close(c);
    _exit(0);
}

static int cmp_ns(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void mode_handoff(int procs, long iters)
{
    shared *sh = shared_map((size_t)iters);
    pid_t pids[64];
    char name[64], rname[64], extra[96];
    bench_samples s, all;
    long i, switches = 0, warm = iters / 10;
    int w;

    if (procs < 2 || procs > 64 || iters < 20)
        bench_die("handoff: PROCS must be 2..64 and ITERS at least 20");
    snprintf(name, sizeof(name), "bench.handoff.%ld.%d", (long)getpid(), procs);
    sh->total = iters;
    for (w = 0; w < procs; w++) {
        pids[w] = fork();
        if (pids[w] < 0)
            bench_die("fork: %s", strerror(errno));
        if (pids[w] == 0)
            handoff_worker(sh, w, name);
    }
    wait_flag(&sh->ready, procs);
    atomic_store(&sh->go, 1);
    workers_wait(pids, procs, sh);
    if (sh->next != iters)
        bench_die("handoff: %ld turns recorded instead of %ld: the lock let two in", sh->next,
                  iters);
    /* A hand-off is a turn taken by another process than the last one.
     * With the fast path a process may take several turns in a row when
     * nobody waits (no barging: a parked waiter is served first), so the
     * turns in a row are reported apart, as the median of every turn. */
    bench_samples_init(&s, (size_t)iters);
    bench_samples_init(&all, (size_t)iters);
    for (i = warm + 1; i < iters; i++) {
        uint64_t ns = sh->turn[i].ns - sh->turn[i - 1].ns;

        bench_samples_add(&all, ns);
        if (sh->turn[i].worker != sh->turn[i - 1].worker) {
            bench_samples_add(&s, ns);
            switches++;
        }
    }
    qsort(all.ns, all.n, sizeof(*all.ns), cmp_ns);
    snprintf(rname, sizeof(rname), "pt.handoff%d", procs);
    snprintf(extra, sizeof(extra), "switch_ratio=%.3f turn_median_ns=%llu",
             (double)switches / (double)all.n, (unsigned long long)all.ns[all.n / 2]);
    bench_report(rname, &s, extra);
    bench_samples_free(&s);
    bench_samples_free(&all);
    {
        pt_client *c = client_open();

        pt_unlink(c, name);
        pt_client_close(c);
    }
}

/* ------------------------------------------------------------------ */
/* Throughput                                                          */
/* ------------------------------------------------------------------ */

/* One worker's part: pairs on its own Lock from the start to the stop. */
static void tp_work(pt_client *c, shared *sh, int me, const char *name)
{
    pt_lock *l;
    uint64_t n = 0;

    CHECK(pt_lock_open(c, name, PT_OPEN_TRANSIENT, 0600, &l));
    atomic_fetch_add(&sh->ready, 1);
    wait_flag(&sh->go, 1);
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        CHECK(lock_pair(l));
        n++;
    }
    sh->count[me] = n;
    CHECK(pt_lock_close(l));
}

static void throughput_worker(shared *sh, int me)
{
    pt_client *c = client_open();
    char name[64];

    snprintf(name, sizeof(name), "bench.tp.%ld.%d", (long)getppid(), me);
    tp_work(c, sh, me, name);
    pt_client_close(c);
    _exit(0);
}

/* What the daemon spent over a measuring window. */
typedef struct daemon_use {
    uint64_t ns, cpu, reads, writes;
} daemon_use;

static void daemon_use_get(pid_t daemon, daemon_use *u)
{
    u->ns = bench_now_ns();
    u->cpu = bench_proc_cpu_ns(daemon);
    bench_proc_syscalls(daemon, &u->reads, &u->writes);
}

/* Two requests per pair; the window includes the workers' last pair. */
static void throughput_report(const char *name, uint64_t pairs, const daemon_use *a,
                              const daemon_use *b)
{
    double ops = (double)(2 * pairs);

    printf("RESULT %s pairs_per_s=%.0f cpu_ns_per_op=%.0f daemon_cpu_ms=%.1f reads_per_op=%.3f "
           "writes_per_op=%.3f\n",
           name, (double)pairs * 1e9 / (double)(b->ns - a->ns),
           pairs ? (double)(b->cpu - a->cpu) / ops : 0.0, (double)(b->cpu - a->cpu) / 1e6,
           pairs ? (double)(b->reads - a->reads) / ops : 0.0,
           pairs ? (double)(b->writes - a->writes) / ops : 0.0);
    fflush(stdout);
}

/* The workers, processes or threads, of one throughput run. */
typedef struct tp_run {
    shared *sh;
    int n;
    pid_t pids[64];
    pthread_t tids[64];
    pt_client *c; /* threads: the session they share */
    int threads;
} tp_run;

static void tp_join(tp_run *t)
{
    if (!t->threads) {
        workers_wait(t->pids, t->n, t->sh);
        return;
    }
    for (int i = 0; i < t->n; i++)
        pthread_join(t->tids[i], NULL);
}

/* Open the window once every worker is ready, close it after seconds, then
 * report what the workers did and what the daemon spent meanwhile. */
static void tp_measure(tp_run *t, double seconds, pid_t daemon, const char *name)
{
    daemon_use a, b;
    uint64_t pairs = 0;

    wait_flag(&t->sh->ready, t->n);
    daemon_use_get(daemon, &a);
    atomic_store(&t->sh->go, 1);
    poll(NULL, 0, (int)(seconds * 1000)); /* the measuring window itself */
    atomic_store(&t->sh->stop, 1);
    tp_join(t);
    daemon_use_get(daemon, &b);
    for (int i = 0; i < t->n; i++)
        pairs += t->sh->count[i];
    throughput_report(name, pairs, &a, &b);
}

/* The run in progress; its threads find their session here. */
static tp_run tp;

static void *threads_worker(void *p)
{
    int me = (int)(intptr_t)p;
    char name[64];

    snprintf(name, sizeof(name), "bench.threads.%ld.%d", (long)getpid(), me);
    tp_work(tp.c, tp.sh, me, name);
    return NULL;
}

/* n processes (threads == 0) or n threads of this process sharing its
 * session, each doing pairs on its own Lock for seconds. */
static void mode_throughput(int n, int threads, double seconds, pid_t daemon)
{
    char rname[64];

    if (n < 1 || n > 64)
        bench_die("throughput: the count must be 1..64");
    tp.sh = shared_map(0);
    tp.n = n;
    tp.threads = threads;
    tp.c = threads ? client_open() : NULL;
    for (int w = 0; w < n; w++) {
        if (threads) {
            if (pthread_create(&tp.tids[w], NULL, threads_worker, (void *)(intptr_t)w) != 0)
                bench_die("pthread_create failed");
            continue;
        }
        tp.pids[w] = fork();
        if (tp.pids[w] < 0)
            bench_die("fork: %s", strerror(errno));
        if (tp.pids[w] == 0)
            throughput_worker(tp.sh, w);
    }
    snprintf(rname, sizeof(rname), threads ? "pt.threads%d" : "pt.throughput%d", n);
    tp_measure(&tp, seconds, daemon, rname);
    if (tp.c)
        pt_client_close(tp.c);
}

/* ------------------------------------------------------------------ */
/* Scale                                                               */
/* ------------------------------------------------------------------ */

static void pair_latency(pt_lock *l, const char *name, long iters)
{
    time_op(name, lock_pair, l, iters);
}

/* An idle session as cheap as it gets on this side: a socket that said
 * hello, so the figure is the daemon's cost only. */
static int idle_session(const char *path, uint64_t id)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint8_t frame[512];
    size_t size;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        bench_die("idle session %llu: cannot connect to %s: %s", (unsigned long long)id, path,
                  strerror(errno));
    req.id = 1;
    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &hello;
    hello.has_version = 1;
    hello.version = PT_PROTOCOL_VERSION;
    hello.client_name = "bench-idle";
    req.has_thread = 1;
    req.thread = (uint64_t)getpid();
    size = pt_wire_request_frame_pack(&req, frame);
    if (write(fd, frame, size) != (ssize_t)size)
        bench_die("idle session %llu: hello not sent: %s", (unsigned long long)id, strerror(errno));
    return fd;
}

/* Read each session's hello answer: the daemon has set them all up. */
static void idle_sessions_check(const int *fds, long n)
{
    uint8_t buf[4096];
    long i;

    for (i = 0; i < n; i++) {
        ssize_t got = read(fds[i], buf, sizeof(buf));

        if (got < (ssize_t)PT_WIRE_HEADER)
            bench_die("idle session %ld: no hello answer (%s); raise pythreadd --max-sessions", i,
                      got < 0 ? strerror(errno) : "closed");
    }
}

static void nofile_raise(long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void mode_scale(long objects, long sessions, long iters, pid_t daemon)
{
    pt_client *c = client_open();
    const char *path = getenv("PYTHREAD_SOCKET");
    uint64_t rss0, rss1, rss2, name_bytes = 0;
    char name[64], extra[160];
    pt_lock *l;
    int *fds;
    long i;

    if (!path)
        bench_die("scale: set PYTHREAD_SOCKET");
    nofile_raise(sessions + 64);
    CHECK(pt_lock_open(c, "bench.scale.pair", 0, 0600, &l));
    pair_latency(l, "pt.scale.pair_empty", iters);
    rss0 = bench_proc_rss(daemon);
    /* The pair's own lock is one of the objects. */
    for (i = 1; i < objects; i++) {
        pt_event *e;
        int len = snprintf(name, sizeof(name), "bench.scale.obj.%06ld", i);

        CHECK(pt_event_open(c, name, 0, 0600, &e));
        CHECK(pt_event_close(e));
        name_bytes += (uint64_t)len;
    }
    rss1 = bench_proc_rss(daemon);
    fds = malloc((size_t)(sessions ? sessions : 1) * sizeof(*fds));
    if (!fds)
        bench_die("scale: out of memory");
    for (i = 0; i < sessions; i++)
        fds[i] = idle_session(path, (uint64_t)i);
    idle_sessions_check(fds, sessions);
    rss2 = bench_proc_rss(daemon);
    pair_latency(l, "pt.scale.pair_loaded", iters);
    snprintf(extra, sizeof(extra),
             "objects=%ld rss_delta=%llu name_bytes_avg=%.1f bytes_per_object=%.1f", objects,
             (unsigned long long)(rss1 - rss0),
             objects > 1 ? (double)name_bytes / (double)(objects - 1) : 0.0,
             objects > 1 ? ((double)(rss1 - rss0) - (double)name_bytes) / (double)(objects - 1)
                         : 0.0);
    printf("RESULT pt.scale.objects %s\n", extra);
    snprintf(extra, sizeof(extra), "sessions=%ld rss_delta=%llu bytes_per_session=%.1f", sessions,
             (unsigned long long)(rss2 - rss1),
             sessions ? (double)(rss2 - rss1) / (double)sessions : 0.0);
    printf("RESULT pt.scale.sessions %s\n", extra);
    fflush(stdout);
    for (i = 0; i < sessions; i++)
        close(fds[i]);
    free(fds);
    pt_client_close(c);
}

/* ------------------------------------------------------------------ */
/* Flood                                                               */
/* ------------------------------------------------------------------ */

/* A connection that said hello and had its answer: raw, so nothing of the
 * library paces it. */
static int flood_connect(const char *path, uint64_t id)
{
    uint8_t buf[4096];
    int fd = idle_session(path, id);

    if (read(fd, buf, sizeof(buf)) < (ssize_t)PT_WIRE_HEADER)
        bench_die("flood client %llu: no hello answer", (unsigned long long)id);
    return fd;
}

/* Pipeline LIST requests without end; a reading client also drains its
 * answers, a silent one blocks once the socket buffers are full. */
static void flood_client(shared *sh, int me, int reading, const char *path)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    static uint8_t batch[16384], sink[65536];
    size_t one, n = 0;
    int fd = flood_connect(path, (uint64_t)me);

    req.id = 2;
    req.op = PYTHREAD__OP__OP_LIST; /* no page: from the start */
    one = pt_wire_request_frame_size(&req);
    while (n + one <= sizeof(batch))
        n += pt_wire_request_frame_pack(&req, batch + n);
    atomic_fetch_add(&sh->ready, 1);
    wait_flag(&sh->go, 1);
    for (size_t off = 0;;) {
        struct pollfd p = {fd, (short)(POLLOUT | (reading ? POLLIN : 0)), 0};
        ssize_t r;

        if (poll(&p, 1, -1) < 0)
            continue;
        if (p.revents & POLLIN) {
            r = read(fd, sink, sizeof(sink));
            if (r <= 0)
                _exit(0);
        }
        if (p.revents & POLLOUT) {
            r = write(fd, batch + off, n - off);
            if (r < 0 && errno != EINTR && errno != EAGAIN)
                _exit(0); /* cut off */
            off = r > 0 ? (off + (size_t)r) % n : off;
        }
        if (p.revents & (POLLHUP | POLLERR))
            _exit(0);
    }
}

static void mode_flood(int silent, int reading, long objects, long ms)
{
    int clients = silent + reading;
    const char *path = getenv("PYTHREAD_SOCKET");
    shared *sh = shared_map(0);
    pt_client *c = client_open();
    pid_t *pids = calloc((size_t)(clients ? clients : 1), sizeof(*pids));
    bench_samples s;
    uint64_t end, worst = 0;
    char name[64], extra[64];
    pt_lock *l;
    int i;

    if (!path || !pids)
        bench_die("flood: set PYTHREAD_SOCKET");
    nofile_raise(clients + 64);
    for (long k = 0; k < objects; k++) {
        pt_event *e;

        snprintf(name, sizeof(name), "bench.flood.obj.%06ld", k);
        CHECK(pt_event_open(c, name, PT_OPEN_TRANSIENT, 0600, &e));
    }
    CHECK(pt_lock_open(c, "bench.flood.pair", PT_OPEN_TRANSIENT, 0600, &l));
    for (i = 0; i < clients; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            bench_die("fork: %s", strerror(errno));
        if (pids[i] == 0)
            flood_client(sh, i, i >= silent, path);
    }
    wait_flag(&sh->ready, clients);
    bench_samples_init(&s, 1000000);
    atomic_store(&sh->go, 1);
    end = bench_now_ns() + (uint64_t)ms * 1000000u;
    while (bench_now_ns() < end) {
        uint64_t t0 = bench_now_ns(), dt;

        CHECK(lock_pair(l));
        dt = bench_now_ns() - t0;
        bench_samples_add(&s, dt);
        worst = dt > worst ? dt : worst;
    }
    for (i = 0; i < clients; i++)
        kill(pids[i], SIGKILL);
    for (i = 0; i < clients; i++)
        waitpid(pids[i], NULL, 0);
    snprintf(name, sizeof(name), "pt.flood.s%dr%d", silent, reading);
    snprintf(extra, sizeof(extra), "max_ns=%llu objects=%ld", (unsigned long long)worst, objects);
    bench_report(name, &s, extra);
    bench_samples_free(&s);
    free(pids);
    pt_client_close(c);
}

/* ------------------------------------------------------------------ */
/* Hold                                                                */
/* ------------------------------------------------------------------ */

static void mode_hold(long sessions)
{
    pt_client **c = calloc((size_t)sessions, sizeof(*c));
    pt_lock **l = calloc((size_t)sessions, sizeof(*l));
    char name[64], line[16];
    long i, held = 0;

    if (!c || !l)
        bench_die("hold: out of memory");
    /* a socket and the wake pipe of its library's thread each */
    nofile_raise(4 * sessions + 64);
    for (i = 0; i < sessions; i++) {
        snprintf(name, sizeof(name), "bench.hold.%06ld", i);
        c[i] = client_open();
        CHECK(pt_lock_open(c[i], name, 0, 0600, &l[i]));
        if (pt_lock_acquire(l[i], 0, -1) != 1)
            bench_die("hold: %s is held by someone else", name);
    }
    printf("READY\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL)
        ;
    for (i = 0; i < sessions; i++) {
        held += pt_lock_release(l[i]) == 0;
        pt_lock_close(l[i]);
        pt_client_close(c[i]);
    }
    printf("RESULT pt.restore.held sessions=%ld held=%ld\n", sessions, held);
    free(l);
    free(c);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_pythread ops ITERS OPENS\n"
                    "       bench_pythread handoff PROCS ITERS\n"
                    "       bench_pythread throughput PROCS MILLISECONDS DAEMON_PID\n"
                    "       bench_pythread threads THREADS MILLISECONDS DAEMON_PID\n"
                    "       bench_pythread scale OBJECTS SESSIONS ITERS DAEMON_PID\n"
                    "       bench_pythread flood SILENT READING OBJECTS MILLISECONDS\n"
                    "       bench_pythread hold SESSIONS\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    bench_frame_sizes();
    if (!strcmp(argv[1], "ops") && argc == 4)
        mode_ops(bench_arg(argv[2], "ITERS"), bench_arg(argv[3], "OPENS"));
    else if (!strcmp(argv[1], "handoff") && argc == 4)
        mode_handoff((int)bench_arg(argv[2], "PROCS"), bench_arg(argv[3], "ITERS"));
    else if ((!strcmp(argv[1], "throughput") || !strcmp(argv[1], "threads")) && argc == 5)
        mode_throughput((int)bench_arg(argv[2], "COUNT"), !strcmp(argv[1], "threads"),
                        (double)bench_arg(argv[3], "MILLISECONDS") / 1000.0,
                        (pid_t)bench_arg(argv[4], "DAEMON_PID"));
    else if (!strcmp(argv[1], "scale") && argc == 6)
        mode_scale(bench_arg(argv[2], "OBJECTS"), bench_arg(argv[3], "SESSIONS"),
                   bench_arg(argv[4], "ITERS"), (pid_t)bench_arg(argv[5], "DAEMON_PID"));
    else if (!strcmp(argv[1], "flood") && argc == 6)
        mode_flood((int)bench_arg(argv[2], "SILENT"), (int)bench_arg(argv[3], "READING"),
                   bench_arg(argv[4], "OBJECTS"), bench_arg(argv[5], "MILLISECONDS"));
    else if (!strcmp(argv[1], "hold") && argc == 3)
        mode_hold(bench_arg(argv[2], "SESSIONS"));
    else
        usage();
    return 0;
}
