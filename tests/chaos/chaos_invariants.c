/*
 * chaos_invariants.c - 16 worker processes do random operations on a small
 * set of shared objects of every kind while a supervisor SIGKILLs random
 * workers and starts new ones, for PT_CHAOS_SECONDS (default 30).
 *
 * Invariants, checked throughout and not through the daemon's answers:
 *   - never two holders of the Lock or the RLock: a shared-memory witness
 *     records the holder, and an acquirer that finds another live holder
 *     there is a violation (a holder that was killed is told apart by the
 *     supervisor's death mark, set as soon as it has reaped the worker);
 *   - the BoundedSemaphore's live holders never exceed its value;
 *   - every timed wait is answered (granted, timed out or broken) within its
 *     timeout plus 100 ms.
 * At the end, with every worker gone: no session but the checker's, every
 * lock free, every semaphore back at its value, no waiter, and the daemon's
 * memory back to its level after a warm-up run (RSS within a small margin;
 * under AddressSanitizer its leak check at the daemon's exit does this).
 * The counts of operations, kills and invariant checks are printed.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORKERS         16
#define MAX_IDS         8192 /* workers started over a run, replacements included */
#define BSEM_VALUE      3
#define BARRIER_PARTIES 3
#define ANSWER_SLACK    0.100 /* seconds a waiter may be answered past its timeout */
#define DEAD_WAIT       2.0   /* how long a witness waits for a death mark */
#define RSS_MARGIN_KB   2048

#if defined(__SANITIZE_ADDRESS__)
#define PT_CHAOS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT_CHAOS_ASAN 1
#endif
#endif

typedef struct chaos_shm {
    atomic_int lock_holder;  /* worker id + 1, or 0 */
    atomic_int rlock_holder; /* worker id + 1, or 0 */
    atomic_int bsem_held[MAX_IDS];
    atomic_int dead[MAX_IDS]; /* set by the supervisor once reaped */
    atomic_int nids;          /* ids handed out so far */
    atomic_llong operations;
    atomic_llong checks;
    atomic_int violations;
    char violation[256];
    atomic_int stop;   /* workers finish their step and exit 0 */
    atomic_int daemon; /* its pid, for its scheduling statistics */
} chaos_shm;

typedef struct chaos_objs {
    pt_lock *lock;
    pt_rlock *rlock;
    pt_condition *cv;
    pt_semaphore *sem;
    pt_semaphore *bsem;
    pt_event *ev;
    pt_barrier *barrier;
} chaos_objs;

static chaos_shm *shm;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    va_list ap;

    if (atomic_fetch_add(&shm->violations, 1) == 0) {
        va_start(ap, fmt);
        vsnprintf(shm->violation, sizeof shm->violation, fmt, ap);
        va_end(ap);
    }
}

static int chaos_open(pt_client *c, chaos_objs *o)
{
    int rc = pt_lock_open(c, "chaos.lock", 0, 0, &o->lock);

    if (rc == 0)
        rc = pt_rlock_open(c, "chaos.rlock", 0, 0, &o->rlock);
    if (rc == 0)
        rc = pt_condition_open(c, "chaos.cv", pt_rlock_as_object(o->rlock), 0, 0, &o->cv);
    if (rc == 0)
        rc = pt_semaphore_open(c, "chaos.sem", 0, 0, 0, 0, &o->sem);
    if (rc == 0)
        rc = pt_semaphore_open(c, "chaos.bsem", BSEM_VALUE, 1, 0, 0, &o->bsem);
    if (rc == 0)
        rc = pt_event_open(c, "chaos.event", 0, 0, &o->ev);
    if (rc == 0)
        rc = pt_barrier_open(c, "chaos.barrier", BARRIER_PARTIES, NULL, NULL, PT_FOREVER, 0, 0,
                             &o->barrier);
    return rc;
}

static void chaos_close(chaos_objs *o)
{
    pt_barrier_close(o->barrier);
    pt_event_close(o->ev);
    pt_semaphore_close(o->bsem);
    pt_semaphore_close(o->sem);
    pt_condition_close(o->cv);
    pt_rlock_close(o->rlock);
    pt_lock_close(o->lock);
}

/* ------------------------------------------------------------------ */
/* Witnesses                                                           */
/* ------------------------------------------------------------------ */

/* 1 once the worker id (+1) in who is marked dead within DEAD_WAIT. */
static int marked_dead(int who)
{
    double until = harness_now() + DEAD_WAIT;

    while (harness_now() < until) {
        if (atomic_load(&shm->dead[who - 1]))
            return 1;
        harness_tick();
    }
    return 0;
}

/* The caller was granted the lock: it must have been free, or held by a
 * worker that was killed. */
static void witness_take(atomic_int *holder, int me, const char *what)
{
    int old = atomic_exchange(holder, me + 1);

    atomic_fetch_add(&shm->checks, 1);
    if (old != 0 && old != me + 1 && !marked_dead(old))
        violation("%s granted to worker %d while live worker %d holds it", what, me, old - 1);
}

static void witness_give(atomic_int *holder, int me, const char *what)
{
    int expected = me + 1;

    atomic_fetch_add(&shm->checks, 1);
    if (!atomic_compare_exchange_strong(holder, &expected, 0))
        violation("%s: worker %d releases it but the witness says %d holds it", what, me,
                  expected - 1);
}

/* Live holders of the BoundedSemaphore never exceed its value. */
static void witness_bsem(int me)
{
    double until = harness_now() + DEAD_WAIT;
    int n = atomic_load(&shm->nids);

    atomic_fetch_add(&shm->checks, 1);
    for (;;) {
        int live = 0;

        for (int i = 0; i < n; i++)
            if (!atomic_load(&shm->dead[i]))
                live += atomic_load(&shm->bsem_held[i]);
        if (live <= BSEM_VALUE)
            return;
        if (harness_now() > until) {
            violation("BoundedSemaphore(%d) held %d times by live workers (worker %d)", BSEM_VALUE,
                      live, me);
            return;
        }
        harness_tick(); /* a killed holder's mark may be on its way */
    }
}

/* /proc/PID/schedstat of this worker and of the daemon's loop thread. */
static int schedstat_fd[2] = {-1, -1};

/* Seconds spent runnable but waiting for a CPU by fd's task, or 0. */
static double schedstat_wait(int fd)
{
    char buf[128];
    unsigned long long run, wait;
    ssize_t n;

    if (fd < 0 || (n = pread(fd, buf, sizeof buf - 1, 0)) <= 0)
        return 0;
    buf[n] = '\0';
    return sscanf(buf, "%llu %llu", &run, &wait) == 2 ? (double)wait / 1e9 : 0;
}

/* Time the worker and the daemon spent waiting for a CPU, so far. */
static double runqueue_wait(void)
{
    return schedstat_wait(schedstat_fd[0]) + schedstat_wait(schedstat_fd[1]);
}

/* The start of a timed wait: the clock, and the time spent so far waiting
 * for a CPU. */
typedef struct wait_start {
    double at;
    double queued;
} wait_start;

static wait_start wait_begin(void)
{
    wait_start w = {harness_now(), runqueue_wait()};

    return w;
}

/* Every timed wait is answered within its timeout plus the slack. Time the
 * worker or the daemon spent runnable but waiting for a CPU is the
 * kernel's scheduling, not the daemon's lateness: on two cores 16 workers
 * (and the forks replacing the killed ones, slow under the sanitizers) are
 * often runnable at once, so that time is taken out of the measure. Time
 * the daemon spent busy serving others is not: it counts. */
static void witness_answer(wait_start w, double timeout, const char *what, int me)
{
    double took = harness_now() - w.at;

    atomic_fetch_add(&shm->checks, 1);
    if (took <= timeout + ANSWER_SLACK)
        return;
    took -= runqueue_wait() - w.queued;
    if (took > timeout + ANSWER_SLACK)
        violation("%s with timeout %.3f s answered after %.3f s, not counting waits for a CPU "
                  "(worker %d)",
                  what, timeout, took, me);
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */

static double rand_timeout(unsigned *seed)
{
    return (rand_r(seed) % 50) / 1000.0;
}

/* Hold what was taken for a moment, so kills find holders. */
static void brief_hold(unsigned *seed)
{
    struct timespec ts = {0, (long)(rand_r(seed) % 2000) * 1000};

    nanosleep(&ts, NULL);
}

static void step_lock(chaos_objs *o, unsigned *seed, int me)
{
    double t = rand_timeout(seed);
    wait_start t0 = wait_begin();
    int rc = pt_lock_acquire(o->lock, 1, t);

    witness_answer(t0, t, "Lock.acquire", me);
    WCHECK(rc == 0 || rc == 1);
    if (rc == 1) {
        witness_take(&shm->lock_holder, me, "Lock");
        brief_hold(seed);
        witness_give(&shm->lock_holder, me, "Lock");
        WCHECK_EQ(pt_lock_release(o->lock), 0);
    }
}

static void step_rlock(chaos_objs *o, unsigned *seed, int me)
{
    int depth = 1 + rand_r(seed) % 3, got = 0;

    for (int i = 0; i < depth; i++) {
        double t = rand_timeout(seed);
        wait_start t0 = wait_begin();
        int rc = pt_rlock_acquire(o->rlock, 1, t);

        witness_answer(t0, t, "RLock.acquire", me);
        WCHECK(rc == 0 || rc == 1);
        if (rc != 1)
            break;
        if (got++ == 0)
            witness_take(&shm->rlock_holder, me, "RLock");
    }
    if (got)
        brief_hold(seed);
    if (got)
        witness_give(&shm->rlock_holder, me, "RLock");
    while (got-- > 0)
        WCHECK_EQ(pt_rlock_release(o->rlock), 0);
}

/* Condition over the RLock: wait gives the lock up inside the daemon, so
 * the witness is given up before and taken again after. */
static void step_condition(chaos_objs *o, unsigned *seed, int me)
{
    double t = rand_timeout(seed);
    wait_start t0 = wait_begin();
    int rc = pt_condition_acquire(o->cv, 1, t);

    witness_answer(t0, t, "Condition.acquire", me);
    WCHECK(rc == 0 || rc == 1);
    if (rc != 1)
        return;
    witness_take(&shm->rlock_holder, me, "RLock (Condition)");
    if (rand_r(seed) % 2) {
        WCHECK(pt_condition_notify(o->cv, 1 + rand_r(seed) % 2) >= 0);
    } else {
        witness_give(&shm->rlock_holder, me, "RLock (Condition)");
        /* The timeout bounds the wait, not the re-acquire after it. */
        WCHECK(pt_condition_wait(o->cv, rand_timeout(seed)) >= 0);
        witness_take(&shm->rlock_holder, me, "RLock (Condition)");
    }
    witness_give(&shm->rlock_holder, me, "RLock (Condition)");
    WCHECK_EQ(pt_condition_release(o->cv), 0);
}

static void step_bsem(chaos_objs *o, unsigned *seed, int me)
{
    double t = rand_timeout(seed);
    wait_start t0 = wait_begin();
    int rc = pt_semaphore_acquire(o->bsem, 1, t);

    witness_answer(t0, t, "BoundedSemaphore.acquire", me);
    WCHECK(rc == 0 || rc == 1);
    if (rc != 1)
        return;
    atomic_fetch_add(&shm->bsem_held[me], 1);
    witness_bsem(me);
    brief_hold(seed);
    atomic_fetch_sub(&shm->bsem_held[me], 1);
    WCHECK_EQ(pt_semaphore_release(o->bsem, 1), 0);
}

/* A plain Semaphore as a queue: produce or consume one item. */
static void step_sem(chaos_objs *o, unsigned *seed, int me)
{
    if (rand_r(seed) % 2) {
        WCHECK_EQ(pt_semaphore_release(o->sem, 1), 0);
    } else {
        double t = rand_timeout(seed);
        wait_start t0 = wait_begin();
        int rc = pt_semaphore_acquire(o->sem, 1, t);

        witness_answer(t0, t, "Semaphore.acquire", me);
        WCHECK(rc == 0 || rc == 1);
    }
}

static void step_event(chaos_objs *o, unsigned *seed, int me)
{
    switch (rand_r(seed) % 3) {
    case 0:
        WCHECK_EQ(pt_event_set(o->ev), 0);
        break;
    case 1:
        WCHECK_EQ(pt_event_clear(o->ev), 0);
        break;
    default: {
        double t = rand_timeout(seed);
        wait_start t0 = wait_begin();
        int rc = pt_event_wait(o->ev, t);

        witness_answer(t0, t, "Event.wait", me);
        WCHECK(rc == 0 || rc == 1);
    }
    }
}

static void step_barrier(chaos_objs *o, unsigned *seed, int me)
{
    double t = 0.01 + rand_timeout(seed);
    wait_start t0 = wait_begin();
    int rc = pt_barrier_wait(o->barrier, t);

    witness_answer(t0, t, "Barrier.wait", me);
    WCHECK((rc >= 0 && rc < BARRIER_PARTIES) || rc == PT_EBROKEN);
    if (rc == PT_EBROKEN)
        WCHECK_EQ(pt_barrier_reset(o->barrier), 0);
}

typedef void (*chaos_step_fn)(chaos_objs *o, unsigned *seed, int me);

static const chaos_step_fn steps[] = {
    step_lock, step_rlock, step_condition, step_bsem, step_sem, step_event, step_barrier,
};

static int chaos_worker(pt_client *c, int index, void *arg)
{
    unsigned seed = 0x9e3779b9u * (unsigned)(index + 1);
    chaos_objs o;

    (void)arg;
    {
        char path[64];

        snprintf(path, sizeof path, "/proc/%d/schedstat", (int)atomic_load(&shm->daemon));
        schedstat_fd[0] = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
        schedstat_fd[1] = open(path, O_RDONLY | O_CLOEXEC);
    }
    WCHECK_EQ(chaos_open(c, &o), 0);
    while (!atomic_load(&shm->stop)) {
        /* A breath between steps, up to 1 ms: 16 workers that never
         * sleep would saturate the CPUs, and then a worker's own wait for
         * a CPU would pass for the daemon's lateness. */
        struct timespec ts = {0, (long)(rand_r(&seed) % 1000) * 1000};

        steps[rand_r(&seed) % (sizeof steps / sizeof steps[0])](&o, &seed, index);
        atomic_fetch_add(&shm->operations, 1);
        nanosleep(&ts, NULL);
    }
    chaos_close(&o);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Supervisor                                                          */
/* ------------------------------------------------------------------ */

static int new_worker(harness *h, pid_t *pid)
{
    int id = atomic_fetch_add(&shm->nids, 1);

    if (id >= MAX_IDS)
        fail_msg("more than %d workers started", MAX_IDS);
    *pid = harness_worker(h, chaos_worker, id, NULL);
    return id;
}

/* Run for seconds, killing a random worker every so often; returns the
 * number of kills. Ends with every worker stopped and reaped. */
static int chaos_run(harness *h, double seconds, unsigned seed)
{
    pid_t pids[WORKERS];
    int ids[WORKERS], kills = 0;
    double end = harness_now() + seconds;

    atomic_store(&shm->stop, 0);
    for (int i = 0; i < WORKERS; i++)
        ids[i] = new_worker(h, &pids[i]);
    while (harness_now() < end) {
        int victim = rand_r(&seed) % WORKERS;
        double until = harness_now() + 0.005 + (rand_r(&seed) % 40) / 1000.0;

        while (harness_now() < until)
            harness_tick();
        harness_kill(h, pids[victim]); /* SIGKILL and reap */
        atomic_store(&shm->dead[ids[victim]], 1);
        kills++;
        ids[victim] = new_worker(h, &pids[victim]);
        if (atomic_load(&shm->violations))
            break;
    }
    /* The survivors finish their step and leave cleanly. */
    atomic_store(&shm->stop, 1);
    harness_join(h, pids, WORKERS, 10 * HARNESS_DEADLINE);
    for (int i = 0; i < WORKERS; i++)
        atomic_store(&shm->dead[ids[i]], 1);
    return kills;
}

static long daemon_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* The daemon's own count of sessions and waiters (OP_STATUS), the checker's
 * raw session included. */
static void daemon_status(raw_conn *rc, uint64_t *sessions, uint64_t *waiters)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp;

    req.op = PYTHREAD__OP__OP_STATUS;
    resp = raw_call(rc, &req, HARNESS_DEADLINE);
    assert_non_null(resp);
    assert_non_null(resp->inspect);
    assert_non_null(resp->inspect->status_info);
    *sessions = resp->inspect->status_info->sessions;
    *waiters = resp->inspect->status_info->waiters;
}

/* pythreadctl status --json, when the tool is built: "sessions" is 1 (its
 * own) and "waiters" 0. Returns 1 if checked, 0 without the tool. */
static int ctl_status_clean(const harness *h)
{
    char cmd[512], out[4096];
    const char *p;
    size_t len;
    FILE *f;

    if (access(PT_CTL_PATH, X_OK) != 0)
        return 0;
    snprintf(cmd, sizeof cmd, "'%s' -s '%s' status --json", PT_CTL_PATH, h->sock);
    f = popen(cmd, "r");
    assert_non_null(f);
    len = fread(out, 1, sizeof out - 1, f);
    out[len] = '\0';
    assert_int_equal(pclose(f), 0);
    p = strstr(out, "\"sessions\"");
    if (!p || strtoull(strchr(p, ':') + 1, NULL, 10) != 1)
        fail_msg("pythreadctl status shows sessions left behind:\n%s", out);
    p = strstr(out, "\"waiters\"");
    if (!p || strtoull(strchr(p, ':') + 1, NULL, 10) != 0)
        fail_msg("pythreadctl status shows waiters left behind:\n%s", out);
    return 1;
}

/* After every worker is gone: nothing is held, nobody waits. */
static void check_quiet(harness *h, int *used_ctl)
{
    pt_client *c = NULL;
    chaos_objs o;
    int64_t v = -1;
    uint64_t sessions = 0, waiters = 0;
    double deadline = harness_now() + HARNESS_DEADLINE;
    raw_conn rc;

    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    for (;;) { /* the last deaths may still be on their way */
        daemon_status(&rc, &sessions, &waiters);
        if ((sessions == 1 && waiters == 0) || harness_now() > deadline)
            break;
        harness_tick();
    }
    if (sessions != 1 || waiters != 0)
        fail_msg("after every worker ended: %llu sessions (want only the checker's), %llu "
                 "waiters",
                 (unsigned long long)sessions, (unsigned long long)waiters);
    raw_close(&rc);
    *used_ctl = ctl_status_clean(h);

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(chaos_open(c, &o), 0);
    PT_ASSERT_EQ(pt_semaphore_value(o.bsem, &v), 0);
    if (v != BSEM_VALUE)
        fail_msg("BoundedSemaphore value %lld after every holder ended, want %d", (long long)v,
                 BSEM_VALUE);
    PT_ASSERT_EQ(pt_lock_locked(o.lock), 0);
    PT_ASSERT_EQ(pt_rlock_locked(o.rlock), 0);
    PT_ASSERT_EQ(pt_barrier_n_waiting(o.barrier), 0);
    chaos_close(&o);
    pt_client_close(c);
}

static void test_chaos(void **state)
{
    harness *h = *state;
    const char *env = getenv("PT_CHAOS_SECONDS");
    double seconds = env ? atof(env) : 30.0;
    long rss_before, rss_after;
    int kills, used_ctl = 0;
    pt_client *c = NULL;
    chaos_objs o;

    shm = harness_shm_alloc(h, sizeof *shm);
    atomic_store(&shm->daemon, (int)h->daemon);
    /* The objects exist before anyone is killed: none ends with a worker. */
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(chaos_open(c, &o), 0);
    chaos_close(&o);
    pt_client_close(c);

    /* Warm-up: the daemon's tables and the allocator reach their size. */
    chaos_run(h, seconds / 10 > 1 ? seconds / 10 : 1, 7);
    check_quiet(h, &used_ctl);
    rss_before = daemon_rss_kb(h->daemon);

    atomic_store(&shm->operations, 0);
    atomic_store(&shm->checks, 0);
    kills = chaos_run(h, seconds, 12345);
    if (atomic_load(&shm->violations))
        fail_msg("%d invariant violations; the first: %s", atomic_load(&shm->violations),
                 shm->violation);
    check_quiet(h, &used_ctl);
    rss_after = daemon_rss_kb(h->daemon);
    print_message("chaos: %.0f s, %d workers at a time, %lld operations, %d kills, %lld "
                  "invariant checks, 0 violations; daemon RSS %ld kB before, %ld kB after; "
                  "end state checked through %s\n",
                  seconds, WORKERS, (long long)atomic_load(&shm->operations), kills,
                  (long long)atomic_load(&shm->checks), rss_before, rss_after,
                  used_ctl ? "pythreadctl status --json and the daemon's STATUS"
                           : "the daemon's STATUS (pythreadctl not built)");
#ifndef PT_CHAOS_ASAN
    if (rss_after > rss_before + RSS_MARGIN_KB)
        fail_msg("the daemon's RSS grew from %ld kB to %ld kB over the run", rss_before, rss_after);
#endif
    /* Teardown stops the daemon and asserts a clean exit: under
     * AddressSanitizer that is its leak check. */
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos, harness_setup, harness_teardown),
    };

    return cmocka_run_group_tests_name("chaos: invariants under SIGKILL", tests, NULL, NULL);
}
