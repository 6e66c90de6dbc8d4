/*
 * Chaos: processes doing random work on shared objects are killed at random
 * moments and replaced. Whatever they held or waited for when they died,
 * once the last one is gone every lock is free, every owned permit is back,
 * no waiter is left and the daemon is unharmed. They wait for each other's
 * locks all the time, but always with a timeout (a Condition's re-acquire
 * excepted, which never waits for an owner waiting itself): no deadlock may
 * be reported. PT_CHAOS_SECONDS runs it longer than its 3 s.
 */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define CHAOS_PROCS   6
#define CHAOS_SECONDS 3.0
#define CHAOS_PERMITS 3

typedef struct chaos_shared {
    atomic_int iterations;
} chaos_shared;

typedef struct chaos_objs {
    pt_lock *lock;
    pt_rlock *rlock;
    pt_semaphore *bsem;
    pt_condition *cv;
    pt_event *ev;
} chaos_objs;

static int chaos_open(pt_client *c, chaos_objs *o)
{
    int rc = pt_lock_open(c, "it.chaos.lock", 0, 0, &o->lock);

    if (rc == 0)
        rc = pt_rlock_open(c, "it.chaos.rlock", 0, 0, &o->rlock);
    if (rc == 0)
        rc = pt_semaphore_open(c, "it.chaos.bsem", CHAOS_PERMITS, 1, 0, 0, &o->bsem);
    if (rc == 0)
        rc = pt_condition_open(c, "it.chaos.cv", pt_rlock_as_object(o->rlock), 0, 0, &o->cv);
    if (rc == 0)
        rc = pt_event_open(c, "it.chaos.event", 0, 0, &o->ev);
    return rc;
}

/* One random step. Whatever is taken is usually given back, sometimes only
 * later, so a kill finds all sorts of states. */
static void chaos_step(chaos_objs *o, unsigned *seed, int *lock_held, int *depth, int *permits)
{
    switch (rand_r(seed) % 6) {
    case 0:
        if (*lock_held) {
            WCHECK_EQ(pt_lock_release(o->lock), 0);
            *lock_held = 0;
        } else {
            int r = pt_lock_acquire(o->lock, 1, 0.02);

            WCHECK(r == 0 || r == 1);
            *lock_held = r;
        }
        break;
    case 1:
        if (*depth > 0 && rand_r(seed) % 2) {
            WCHECK_EQ(pt_rlock_release(o->rlock), 0);
            --*depth;
        } else if (*depth < 3) {
            int r = pt_rlock_acquire(o->rlock, 1, 0.02);

            WCHECK(r == 0 || r == 1);
            *depth += r;
        }
        break;
    case 2:
        if (*permits > 0 && rand_r(seed) % 2) {
            WCHECK_EQ(pt_semaphore_release(o->bsem, 1), 0);
            --*permits;
        } else {
            int r = pt_semaphore_acquire(o->bsem, 1, 0.02);

            WCHECK(r == 0 || r == 1);
            *permits += r;
        }
        break;
    case 3:
        /* Condition use with the RLock at whatever depth this process has. */
        if (*depth == 0) {
            if (pt_condition_acquire(o->cv, 1, 0.02) != 1)
                break;
            *depth = 1;
        }
        if (rand_r(seed) % 2) {
            int r = pt_condition_wait(o->cv, 0.01);

            WCHECK(r == 0 || r == 1);
        } else {
            WCHECK(pt_condition_notify(o->cv, 1 + rand_r(seed) % 2) >= 0);
        }
        break;
    case 4: {
        int r = pt_event_wait(o->ev, 0.01);

        WCHECK(r == 0 || r == 1);
        break;
    }
    default:
        WCHECK_EQ(rand_r(seed) % 2 ? pt_event_set(o->ev) : pt_event_clear(o->ev), 0);
        break;
    }
}

static int chaos_worker(pt_client *c, int index, void *arg)
{
    chaos_shared *sh = arg;
    unsigned seed = 0x9e3779b9u * (unsigned)(index + 1);
    int lock_held = 0, depth = 0, permits = 0;
    chaos_objs o;

    WCHECK_EQ(chaos_open(c, &o), 0);
    for (;;) { /* until killed */
        chaos_step(&o, &seed, &lock_held, &depth, &permits);
        atomic_fetch_add(&sh->iterations, 1);
    }
}

static uint32_t state_waiting(raw_conn *rc, const char *name, pt_kind kind)
{
    uint32_t handle = 0, n = 0;

    if (raw_open(rc, name, kind, PT_OPEN_EXISTING, &handle) != 0)
        fail_msg("raw open of %s failed", name);
    if (raw_state_waiting(rc, handle, &n) != 0)
        fail_msg("state of %s failed", name);
    return n;
}

static double chaos_seconds(void)
{
    const char *s = getenv("PT_CHAOS_SECONDS");
    double v = s ? strtod(s, NULL) : 0;

    return v > 0 ? v : CHAOS_SECONDS;
}

/* Nothing the workers did was a deadlock: none found, none logged. */
static void assert_no_deadlock(harness *h, pt_client *c)
{
    pt_inspect_status st;

    PT_ASSERT_OK(pt_inspect_status_get(c, &st));
    assert_int_equal(st.deadlocks_found, 0);
    assert_int_equal(st.deadlocks_standing, 0);
    assert_int_equal(harness_log_count(h->log, "deadlock"), 0);
}

static void test_chaos_kills(void **state)
{
    harness *h = *state;
    chaos_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[CHAOS_PROCS];
    unsigned seed = 12345;
    int next_index = CHAOS_PROCS, kills = 0;
    double end, deadline;
    pt_client *c = NULL;
    chaos_objs o;
    int64_t v = -1;
    raw_conn rc;

    harness_workers(h, pids, CHAOS_PROCS, chaos_worker, sh);
    end = harness_now() + chaos_seconds();
    while (harness_now() < end) {
        int victim = rand_r(&seed) % CHAOS_PROCS;
        int before = atomic_load(&sh->iterations);

        /* Let some work happen between kills (progress, not time). */
        deadline = harness_now() + HARNESS_DEADLINE;
        while (atomic_load(&sh->iterations) < before + 20 + rand_r(&seed) % 200) {
            if (harness_now() > deadline)
                fail_msg("the workers made no progress for %.0f s (%d iterations so far)",
                         HARNESS_DEADLINE, atomic_load(&sh->iterations));
            harness_tick();
        }
        harness_kill(h, pids[victim]);
        kills++;
        pids[victim] = harness_worker(h, chaos_worker, next_index++, sh);
    }
    for (int i = 0; i < CHAOS_PROCS; i++)
        harness_kill(h, pids[i]);
    print_message("chaos: %d iterations, %d processes killed mid-work\n",
                  atomic_load(&sh->iterations), kills + CHAOS_PROCS);

    /* Everything comes back once the daemon has seen every death. */
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(chaos_open(c, &o), 0);
    deadline = harness_now() + HARNESS_DEADLINE;
    for (;;) {
        PT_ASSERT_EQ(pt_semaphore_value(o.bsem, &v), 0);
        if (v == CHAOS_PERMITS)
            break;
        if (harness_now() > deadline)
            fail_msg("BoundedSemaphore value %lld after every holder died, want %d", (long long)v,
                     CHAOS_PERMITS);
        harness_tick();
    }
    PT_ASSERT_EQ(pt_lock_acquire(o.lock, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_rlock_acquire(o.rlock, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_rlock_release(o.rlock), 0);
    PT_ASSERT_EQ(pt_lock_release(o.lock), 0);

    assert_int_equal(raw_connect(&rc, h->sock), 0);
    assert_int_equal(raw_hello(&rc, PT_PROTOCOL_VERSION), 0);
    assert_int_equal(state_waiting(&rc, "it.chaos.lock", PT_KIND_LOCK), 0);
    assert_int_equal(state_waiting(&rc, "it.chaos.rlock", PT_KIND_RLOCK), 0);
    assert_int_equal(state_waiting(&rc, "it.chaos.bsem", PT_KIND_BOUNDED_SEMAPHORE), 0);
    assert_int_equal(state_waiting(&rc, "it.chaos.cv", PT_KIND_CONDITION), 0);
    assert_int_equal(state_waiting(&rc, "it.chaos.event", PT_KIND_EVENT), 0);
    raw_close(&rc);

    PT_ASSERT_EQ(pt_event_close(o.ev), 0);
    PT_ASSERT_EQ(pt_condition_close(o.cv), 0);
    PT_ASSERT_EQ(pt_semaphore_close(o.bsem), 0);
    PT_ASSERT_EQ(pt_rlock_close(o.rlock), 0);
    PT_ASSERT_EQ(pt_lock_close(o.lock), 0);
    assert_no_deadlock(h, c);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chaos_kills, harness_setup, harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: chaos", tests, NULL, NULL);
}
