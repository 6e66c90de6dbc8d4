/*
 * Deadlock detection with a real daemon and real processes: AB/BA, a ring
 * of three, an RLock held three deep, a cycle a timeout breaks before it
 * could be one, a cycle closed by a Condition wait taking its lock back,
 * the fail policy (a client's, an object's) giving PT_EDEADLK to exactly
 * the wait that closed the cycle, and a lock's holder waiting on a
 * semaphore, which has no owner to follow. Each deadlock is in
 * pythreadctl's answer (pt_inspect_deadlocks) with every owner in order,
 * in status, marked in show, and in one warning line of the daemon's log.
 *
 * Workers hold their locks, say so, and wait for the test's go before
 * their blocking call; the test lets them go one at a time, each only once
 * the daemon shows the previous call parked, so every cycle is closed by
 * the wait the test chose. Nothing depends on timing: every wait for the
 * daemon polls with a deadline.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DL_MAX 4

/* What a worker does: hold one lock (an RLock depth deep), then wait for
 * another; fail: 0 report, 1 its client fails deadlocks, 2 the handle it
 * waits through does (PT_OPEN_DEADLOCK_FAIL). */
typedef struct dl_plan {
    const char *hold;
    pt_kind hold_kind;
    int depth;
    const char *wait;
    pt_kind wait_kind;
    int fail;
    double timeout;
} dl_plan;

/* A worker's wait has not returned yet. */
#define DL_PENDING (-1000)

typedef struct dl_shared {
    atomic_int ready;
    atomic_int go[DL_MAX];
    atomic_int result[DL_MAX]; /* the wait's result, DL_PENDING until it returns */
    atomic_int release[DL_MAX];
    char message[DL_MAX][1024];
    dl_plan plan[DL_MAX];
} dl_shared;

static void child_wait_flag(atomic_int *flag)
{
    double end = harness_now() + 60.0;

    while (!atomic_load(flag)) {
        WCHECK(harness_now() < end);
        harness_tick();
    }
}

static int open_kind(pt_client *c, const char *name, pt_kind kind, int flags, pt_object **out)
{
    pt_lock *l = NULL;
    pt_rlock *r = NULL;
    int rc = kind == PT_KIND_RLOCK ? pt_rlock_open(c, name, flags, 0, &r)
                                   : pt_lock_open(c, name, flags, 0, &l);

    *out = kind == PT_KIND_RLOCK ? pt_rlock_as_object(r) : pt_lock_as_object(l);
    return rc;
}

/* A Lock or RLock through its pt_object (both start with one). */
static int obj_acquire(pt_object *o, pt_kind kind, double timeout)
{
    return kind == PT_KIND_RLOCK ? pt_rlock_acquire((pt_rlock *)o, 1, timeout)
                                 : pt_lock_acquire((pt_lock *)o, 1, timeout);
}

static int obj_release(pt_object *o, pt_kind kind)
{
    return kind == PT_KIND_RLOCK ? pt_rlock_release((pt_rlock *)o) : pt_lock_release((pt_lock *)o);
}

static int dl_worker(pt_client *c, int i, void *arg)
{
    dl_shared *sh = arg;
    const dl_plan *p = &sh->plan[i];
    pt_object *hold = NULL, *wait = NULL;
    int r;

    if (p->fail == 1)
        WCHECK_EQ(pt_client_set_deadlock(c, PT_DEADLOCK_FAIL), 0);
    WCHECK_EQ(open_kind(c, p->hold, p->hold_kind, 0, &hold), 0);
    WCHECK_EQ(open_kind(c, p->wait, p->wait_kind, p->fail == 2 ? PT_OPEN_DEADLOCK_FAIL : 0, &wait),
              0);
    for (int d = 0; d < (p->depth ? p->depth : 1); d++)
        WCHECK_EQ(obj_acquire(hold, p->hold_kind, PT_FOREVER), 1);
    atomic_fetch_add(&sh->ready, 1);
    child_wait_flag(&sh->go[i]);
    r = obj_acquire(wait, p->wait_kind, p->timeout);
    if (r < 0)
        snprintf(sh->message[i], sizeof(sh->message[i]), "%s", pt_last_error_message());
    atomic_store(&sh->result[i], r);
    /* Holds stay until the test says, so what it looks at stays still. */
    child_wait_flag(&sh->release[i]);
    if (r == 1)
        WCHECK_EQ(obj_release(wait, p->wait_kind), 0);
    for (int d = 0; d < (p->depth ? p->depth : 1); d++)
        WCHECK_EQ(obj_release(hold, p->hold_kind), 0);
    return 0;
}

/* ---- the test's side ---------------------------------------------------- */

typedef struct dl_run {
    harness *h;
    dl_shared *sh;
    pid_t pids[DL_MAX];
    int n;
    pt_client *c; /* the test's own session, for inspection */
} dl_run;

static void run_start(dl_run *x, harness *h, const dl_plan *plans, int n)
{
    *x = (dl_run){.h = h, .n = n};
    x->sh = harness_shm_alloc(h, sizeof(*x->sh));
    for (int i = 0; i < n; i++) {
        x->sh->plan[i] = plans[i];
        atomic_store(&x->sh->result[i], DL_PENDING);
    }
    for (int i = 0; i < n; i++)
        x->pids[i] = harness_worker(h, dl_worker, i, x->sh);
    harness_wait_flag(&x->sh->ready, n, HARNESS_DEADLINE, "workers holding their locks");
    PT_ASSERT_OK(pt_client_open(&x->c, NULL));
}

/* Let worker i wait; back once its call is parked in the daemon (waiters:
 * how many calls then wait for its lock) or has returned. */
static void run_go(dl_run *x, int i, uint32_t waiters)
{
    const dl_plan *p = &x->sh->plan[i];
    pt_object *o = NULL;
    double end = harness_now() + HARNESS_DEADLINE;

    PT_ASSERT_OK(open_kind(x->c, p->wait, p->wait_kind, PT_OPEN_EXISTING, &o));
    atomic_store(&x->sh->go[i], 1);
    for (;;) {
        pt_inspect_detail *d = NULL;
        uint32_t n;

        PT_ASSERT_OK(pt_inspect_show(x->c, p->wait, &d));
        n = d->object.waiters;
        pt_inspect_detail_free(d);
        if (n >= waiters || atomic_load(&x->sh->result[i]) != DL_PENDING)
            break;
        if (harness_now() > end)
            fail_msg("worker %d's wait for '%s' did not park", i, p->wait);
        harness_tick();
    }
    PT_ASSERT_OK(p->wait_kind == PT_KIND_RLOCK ? pt_rlock_close((pt_rlock *)o)
                                               : pt_lock_close((pt_lock *)o));
}

static int result_of(const dl_run *x, int i)
{
    return atomic_load(&x->sh->result[i]);
}

static int wait_result(const dl_run *x, int i)
{
    double end = harness_now() + HARNESS_DEADLINE;

    while (result_of(x, i) == DL_PENDING) {
        if (harness_now() > end)
            fail_msg("worker %d's wait did not return", i);
        harness_tick();
    }
    return result_of(x, i);
}

/* Release every worker and see each exit 0. */
static void run_end(dl_run *x)
{
    for (int i = 0; i < x->n; i++)
        atomic_store(&x->sh->release[i], 1);
    harness_join(x->h, x->pids, x->n, 30.0);
    pt_client_close(x->c);
}

/* One deadlock as pt_inspect_deadlocks gave it, its members copied. */
typedef struct dl_seen {
    pt_inspect_deadlock d;
    pt_inspect_deadlock_member m[DL_MAX];
} dl_seen;

typedef struct dl_list {
    dl_seen v[8];
    size_t n;
} dl_list;

static int seen_one(void *arg, const pt_inspect_deadlock *d)
{
    dl_list *l = arg;
    dl_seen *s = &l->v[l->n];

    assert_true(l->n < 8);
    s->d = *d;
    for (size_t i = 0; i < d->n_members && i < DL_MAX; i++)
        s->m[i] = d->members[i];
    s->d.members = s->m;
    l->n++;
    return 0;
}

/* The deadlocks now; with want >= 0, polled until there are that many. */
static void deadlocks(const dl_run *x, dl_list *l, int want, uint64_t *found)
{
    double end = harness_now() + HARNESS_DEADLINE;

    for (;;) {
        l->n = 0;
        PT_ASSERT_OK(pt_inspect_deadlocks(x->c, seen_one, l, found, NULL));
        if (want < 0 || l->n == (size_t)want)
            return;
        if (harness_now() > end)
            fail_msg("%zu deadlocks listed, want %d", l->n, want);
        harness_tick();
    }
}

/* Member k of d is worker i, waiting for its lock. */
static void assert_member(const dl_run *x, const dl_seen *d, size_t k, int i)
{
    const pt_inspect_deadlock_member *m = &d->m[k];

    assert_false(m->hidden);
    assert_int_equal(m->pid, x->pids[i]);
    assert_int_equal(m->thread, (uint64_t)x->pids[i]); /* one thread: its tid is its pid */
    assert_string_equal(m->waits, x->sh->plan[i].wait);
    assert_int_equal(m->waits_kind, x->sh->plan[i].wait_kind);
}

/* The daemon's one warning line for deadlock id names every worker. */
static void assert_logged(const dl_run *x, uint64_t id, const int *who, int n)
{
    char text[96];

    snprintf(text, sizeof(text), "deadlock #%llu found, %d owner", (unsigned long long)id, n);
    assert_int_equal(harness_log_count(x->h->log, text), 1);
    for (int k = 0; k < n; k++) {
        const dl_plan *p = &x->sh->plan[who[k]];
        char part[160];

        snprintf(part, sizeof(part), "(pid %d 'it_deadlock', uid %u) thread %d holds %s '%s'",
                 (int)x->pids[who[k]], (unsigned)getuid(), (int)x->pids[who[k]],
                 pt_kind_name(p->hold_kind), p->hold);
        if (harness_log_count(x->h->log, part) != 1)
            fail_msg("the log has no line with \"%s\"", part);
    }
}

static void assert_status(const dl_run *x, uint64_t found, uint64_t standing)
{
    pt_inspect_status st;

    PT_ASSERT_OK(pt_inspect_status_get(x->c, &st));
    assert_int_equal(st.deadlocks_found, found);
    assert_int_equal(st.deadlocks_standing, standing);
}

/* show marks a lock of a standing deadlock, and its holder. */
static void assert_show_marks(const dl_run *x, const char *name, uint64_t id)
{
    pt_inspect_detail *d = NULL;

    PT_ASSERT_OK(pt_inspect_show(x->c, name, &d));
    assert_int_equal(d->object.deadlock, id);
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].deadlock, id);
    assert_true(d->holders[0].waits[0] != '\0');
    assert_true(d->holders[0].waits_owner);
    pt_inspect_detail_free(d);
}

/* ---- the tests ---------------------------------------------------------- */

/* AB/BA: the second wait closes it; both go on waiting (report is the
 * default); a kill breaks it and the other gets its lock. */
static void test_ab_ba(void **state)
{
    static const dl_plan plans[] = {
        {"it.dl.a", PT_KIND_LOCK, 1, "it.dl.b", PT_KIND_LOCK, 0, PT_FOREVER},
        {"it.dl.b", PT_KIND_LOCK, 1, "it.dl.a", PT_KIND_LOCK, 0, PT_FOREVER},
    };
    static const int order[] = {1, 0};
    dl_run x;
    dl_list l;
    uint64_t found;

    run_start(&x, *state, plans, 2);
    run_go(&x, 0, 1);
    deadlocks(&x, &l, 0, &found);
    assert_int_equal(found, 0);
    run_go(&x, 1, 1);
    deadlocks(&x, &l, 1, &found);
    assert_int_equal(found, 1);
    assert_int_equal(l.v[0].d.id, 1);
    assert_int_equal(l.v[0].d.state, PT_DEADLOCK_STANDING);
    assert_int_equal(l.v[0].d.size, 2);
    assert_member(&x, &l.v[0], 0, 1); /* the closing wait first */
    assert_member(&x, &l.v[0], 1, 0);
    assert_logged(&x, 1, order, 2);
    assert_status(&x, 1, 1);
    assert_show_marks(&x, "it.dl.a", 1);
    assert_int_equal(result_of(&x, 0), DL_PENDING);
    assert_int_equal(result_of(&x, 1), DL_PENDING);

    harness_kill(x.h, x.pids[1]);
    assert_int_equal(wait_result(&x, 0), 1);
    deadlocks(&x, &l, 1, &found);
    assert_int_equal(l.v[0].d.state, PT_DEADLOCK_BROKEN);
    assert_false(l.v[0].d.released); /* worker 1's wait ended first */
    assert_int_equal(l.v[0].d.broke, 0);
    assert_status(&x, 1, 0);
    x.pids[1] = x.pids[0];
    x.n = 1;
    run_end(&x);
    x.h->passed = 1;
}

/* Three processes in a ring: only the third wait closes it. */
static void test_ring_of_three(void **state)
{
    static const dl_plan plans[] = {
        {"it.dl.x", PT_KIND_LOCK, 1, "it.dl.y", PT_KIND_LOCK, 0, PT_FOREVER},
        {"it.dl.y", PT_KIND_LOCK, 1, "it.dl.z", PT_KIND_LOCK, 0, PT_FOREVER},
        {"it.dl.z", PT_KIND_LOCK, 1, "it.dl.x", PT_KIND_LOCK, 0, PT_FOREVER},
    };
    static const int order[] = {2, 0, 1};
    dl_run x;
    dl_list l;
    uint64_t found;

    run_start(&x, *state, plans, 3);
    run_go(&x, 0, 1);
    run_go(&x, 1, 1);
    deadlocks(&x, &l, 0, &found);
    run_go(&x, 2, 1);
    deadlocks(&x, &l, 1, &found);
    assert_int_equal(l.v[0].d.size, 3);
    for (int k = 0; k < 3; k++)
        assert_member(&x, &l.v[0], (size_t)k, order[k]);
    assert_logged(&x, 1, order, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(result_of(&x, i), DL_PENDING);
    harness_kill(x.h, x.pids[0]); /* x goes to worker 2, then z to worker 1 */
    assert_int_equal(wait_result(&x, 2), 1);
    atomic_store(&x.sh->release[2], 1);
    assert_int_equal(wait_result(&x, 1), 1);
    x.pids[0] = x.pids[2];
    x.n = 2;
    run_end(&x);
    x.h->passed = 1;
}

/* An RLock held three deep is one hold: the worker waiting for its owner
 * closes a cycle through it; the owner asked to fail (its client), so its
 * wait, which closes it, gets PT_EDEADLK. */
static void test_rlock_three_deep(void **state)
{
    static const dl_plan plans[] = {
        {"it.dl.l", PT_KIND_LOCK, 1, "it.dl.r", PT_KIND_RLOCK, 0, PT_FOREVER},
        {"it.dl.r", PT_KIND_RLOCK, 3, "it.dl.l", PT_KIND_LOCK, 1, PT_FOREVER},
    };
    dl_run x;
    dl_list l;
    uint64_t found;

    run_start(&x, *state, plans, 2);
    run_go(&x, 0, 1);
    run_go(&x, 1, 1);
    assert_int_equal(wait_result(&x, 1), PT_EDEADLK);
    assert_non_null(strstr(x.sh->message[1], "Lock 'it.dl.l': acquire: deadlock"));
    assert_non_null(strstr(x.sh->message[1], "holds RLock 'it.dl.r' and waits for Lock 'it.dl.l'"));
    deadlocks(&x, &l, 1, &found);
    assert_int_equal(l.v[0].d.state, PT_DEADLOCK_FAILED);
    assert_member(&x, &l.v[0], 0, 1);
    assert_member(&x, &l.v[0], 1, 0);
    assert_int_equal(harness_log_count(x.h->log, "failed with a deadlock error"), 1);
    assert_int_equal(result_of(&x, 0), DL_PENDING);
    /* worker 1 lets go of its three levels: worker 0 gets the RLock */
    atomic_store(&x.sh->release[1], 1);
    assert_int_equal(wait_result(&x, 0), 1);
    assert_status(&x, 1, 0);
    run_end(&x);
    x.h->passed = 1;
}

/* A timed wait in a cycle: its timeout breaks the cycle, so it is never
 * reported, when it closes or after; and a timeout before the second wait
 * leaves nothing to close. */
static void test_timeout_breaks_before_report(void **state)
{
    static const dl_plan plans[] = {
        {"it.dl.ta", PT_KIND_LOCK, 1, "it.dl.tb", PT_KIND_LOCK, 1, 0.5},
        {"it.dl.tb", PT_KIND_LOCK, 1, "it.dl.ta", PT_KIND_LOCK, 1, PT_FOREVER},
        {"it.dl.tc", PT_KIND_LOCK, 1, "it.dl.td", PT_KIND_LOCK, 1, 0.2},
        {"it.dl.td", PT_KIND_LOCK, 1, "it.dl.tc", PT_KIND_LOCK, 1, PT_FOREVER},
    };
    dl_run x;
    dl_list l;
    uint64_t found;

    run_start(&x, *state, plans, 4);
    run_go(&x, 0, 1);
    run_go(&x, 1, 1); /* a cycle with worker 0's timed wait in it */
    assert_int_equal(wait_result(&x, 0), 0);
    atomic_store(&x.sh->release[0], 1);
    assert_int_equal(wait_result(&x, 1), 1);
    run_go(&x, 2, 1);
    assert_int_equal(wait_result(&x, 2), 0); /* timed out before worker 3 waits */
    run_go(&x, 3, 1);
    atomic_store(&x.sh->release[2], 1);
    assert_int_equal(wait_result(&x, 3), 1);
    deadlocks(&x, &l, 0, &found);
    assert_int_equal(found, 0);
    assert_int_equal(harness_log_count(x.h->log, "deadlock"), 0);
    assert_status(&x, 0, 0);
    run_end(&x);
    x.h->passed = 1;
}

/* The fail policy as an open flag: the closing wait, and only it, gets
 * PT_EDEADLK; the other waits on until it is given the lock. */
static void test_fail_policy_of_an_object(void **state)
{
    static const dl_plan plans[] = {
        {"it.dl.fa", PT_KIND_LOCK, 1, "it.dl.fb", PT_KIND_LOCK, 2, PT_FOREVER},
        {"it.dl.fb", PT_KIND_LOCK, 1, "it.dl.fa", PT_KIND_LOCK, 2, PT_FOREVER},
    };
    dl_run x;
    dl_list l;
    uint64_t found;
    char text[64];

    run_start(&x, *state, plans, 2);
    run_go(&x, 0, 1);
    run_go(&x, 1, 1);
    assert_int_equal(wait_result(&x, 1), PT_EDEADLK);
    snprintf(text, sizeof(text), "(pid %d) thread %d holds Lock 'it.dl.fa'", (int)x.pids[0],
             (int)x.pids[0]);
    assert_non_null(strstr(x.sh->message[1], text));
    assert_int_equal(result_of(&x, 0), DL_PENDING);
    atomic_store(&x.sh->release[1], 1);
    assert_int_equal(wait_result(&x, 0), 1);
    deadlocks(&x, &l, 1, &found);
    assert_int_equal(l.v[0].d.state, PT_DEADLOCK_FAILED);
    assert_status(&x, 1, 0);
    run_end(&x);
    x.h->passed = 1;
}

/* A Condition wait taking its lock back waits for the lock's holder: the
 * notify that moves it there closes the cycle. */
typedef struct cv_shared {
    atomic_int waiting, holding, result;
} cv_shared;

static int cv_worker(pt_client *c, int i, void *arg)
{
    cv_shared *sh = arg;
    pt_lock *l = NULL, *m = NULL;
    pt_condition *cv = NULL;

    WCHECK_EQ(pt_lock_open(c, "it.dl.cl", 0, 0, &l), 0);
    WCHECK_EQ(pt_lock_open(c, "it.dl.cm", 0, 0, &m), 0);
    WCHECK_EQ(pt_condition_open(c, "it.dl.cv", pt_lock_as_object(l), 0, 0, &cv), 0);
    if (i == 0) { /* holds m, waits on the condition */
        WCHECK_EQ(pt_lock_acquire(m, 1, PT_FOREVER), 1);
        WCHECK_EQ(pt_condition_acquire(cv, 1, PT_FOREVER), 1);
        atomic_store(&sh->waiting, 1);
        atomic_store(&sh->result, pt_condition_wait(cv, PT_FOREVER));
        WCHECK_EQ(pt_condition_release(cv), 0);
        WCHECK_EQ(pt_lock_release(m), 0);
    } else { /* takes the condition's lock, then waits for m */
        WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
        atomic_store(&sh->holding, 1);
        WCHECK_EQ(pt_lock_acquire(m, 1, PT_FOREVER), 1);
    }
    return 0;
}

static void test_condition_reacquire(void **state)
{
    harness *h = *state;
    cv_shared *sh = harness_shm_alloc(h, sizeof(*sh));
    pid_t pids[2];
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_condition *cv = NULL;
    dl_run x = {.h = h};
    dl_list dl;
    uint64_t found;

    pids[0] = harness_worker(h, cv_worker, 0, sh);
    harness_wait_waiters(h, "it.dl.cv", PT_KIND_CONDITION, 1, HARNESS_DEADLINE);
    pids[1] = harness_worker(h, cv_worker, 1, sh);
    harness_wait_flag(&sh->holding, 1, HARNESS_DEADLINE, "worker 1 holding the lock");
    harness_wait_waiters(h, "it.dl.cm", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    PT_ASSERT_OK(pt_client_open(&c, NULL));
    x.c = c;
    deadlocks(&x, &dl, 0, &found); /* worker 0 waits for a notify: no owner */
    /* A Condition over a Lock may be notified by anyone while it is locked. */
    PT_ASSERT_OK(pt_lock_open(c, "it.dl.cl", PT_OPEN_EXISTING, 0, &l));
    PT_ASSERT_OK(pt_condition_open(c, "it.dl.cv", pt_lock_as_object(l), PT_OPEN_EXISTING, 0, &cv));
    PT_ASSERT_EQ(pt_condition_notify(cv, 1), 0);
    deadlocks(&x, &dl, 1, &found);
    assert_int_equal(dl.v[0].d.size, 2);
    assert_int_equal(dl.v[0].m[0].pid, pids[0]);
    assert_true(dl.v[0].m[0].reacquire);
    assert_string_equal(dl.v[0].m[0].waits, "it.dl.cl");
    assert_string_equal(dl.v[0].m[0].via, "it.dl.cv");
    assert_int_equal(dl.v[0].m[1].pid, pids[1]);
    assert_string_equal(dl.v[0].m[1].waits, "it.dl.cm");
    assert_int_equal(
        harness_log_count(h->log, "takes back Lock 'it.dl.cl' through Condition 'it.dl.cv'"), 1);
    /* worker 1's end breaks it: worker 0 gets the lock back, notified */
    harness_kill(h, pids[1]);
    harness_join(h, pids, 1, 30.0);
    assert_int_equal(atomic_load(&sh->result), 1);
    PT_ASSERT_OK(pt_condition_close(cv));
    PT_ASSERT_OK(pt_lock_close(l));
    pt_client_close(c);
    h->passed = 1;
}

/* A lock's holder waiting on a Semaphore: a chain through it ends there
 * (a semaphore has no owner to wait for), nothing is reported, and show
 * says what the holder waits on. */
typedef struct sem_shared {
    atomic_int parked, got;
} sem_shared;

static int sem_worker(pt_client *c, int i, void *arg)
{
    sem_shared *sh = arg;
    pt_lock *l = NULL;
    pt_semaphore *s = NULL;

    WCHECK_EQ(pt_lock_open(c, "it.dl.sl", 0, 0, &l), 0);
    WCHECK_EQ(pt_semaphore_open(c, "it.dl.s", 0, 0, 0, 0, &s), 0);
    if (i == 0) {
        WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
        atomic_store(&sh->parked, 1);
        WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    } else {
        WCHECK_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
        atomic_store(&sh->got, 1);
    }
    WCHECK_EQ(pt_lock_release(l), 0);
    return 0;
}

static void test_no_owner_is_not_followed(void **state)
{
    harness *h = *state;
    sem_shared *sh = harness_shm_alloc(h, sizeof(*sh));
    pt_semaphore *s = NULL;
    pt_inspect_detail *d = NULL;
    pid_t pids[2];
    dl_run x = {.h = h};
    dl_list l;
    uint64_t found;

    pids[0] = harness_worker(h, sem_worker, 0, sh);
    harness_wait_waiters(h, "it.dl.s", PT_KIND_SEMAPHORE, 1, HARNESS_DEADLINE);
    pids[1] = harness_worker(h, sem_worker, 1, sh);
    harness_wait_waiters(h, "it.dl.sl", PT_KIND_LOCK, 1, HARNESS_DEADLINE);
    PT_ASSERT_OK(pt_client_open(&x.c, NULL));
    deadlocks(&x, &l, 0, &found);
    assert_int_equal(found, 0);
    PT_ASSERT_OK(pt_inspect_show(x.c, "it.dl.sl", &d));
    assert_int_equal(d->n_holders, 1);
    assert_int_equal(d->holders[0].pid, pids[0]);
    assert_string_equal(d->holders[0].waits, "it.dl.s");
    assert_int_equal(d->holders[0].waits_kind, PT_KIND_SEMAPHORE);
    assert_false(d->holders[0].waits_owner);
    assert_int_equal(d->holders[0].deadlock, 0);
    pt_inspect_detail_free(d);
    PT_ASSERT_OK(pt_semaphore_open(x.c, "it.dl.s", 0, 0, PT_OPEN_EXISTING, 0, &s));
    PT_ASSERT_OK(pt_semaphore_release(s, 1));
    harness_join(h, pids, 2, 30.0);
    assert_int_equal(atomic_load(&sh->got), 1);
    PT_ASSERT_OK(pt_semaphore_close(s));
    pt_client_close(x.c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ab_ba, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_ring_of_three, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_rlock_three_deep, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_breaks_before_report, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_fail_policy_of_an_object, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_condition_reacquire, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_no_owner_is_not_followed, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
