/*
 * A semaphore of value 2 guarding a pool used by 5 processes: never more than
 * 2 inside, and the value is back at 2 at the end.
 */
#include "harness.h"

#define POOL_WORKERS    5
#define POOL_ITERATIONS 1000
#define POOL_SIZE       2

typedef struct pool_shared {
    int bounded;
    atomic_int inside;
    atomic_int max_inside;
    atomic_int violations;
} pool_shared;

static void note_max(atomic_int *max, int v)
{
    int cur = atomic_load(max);

    while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
        ;
}

static int pool_worker(pt_client *c, int index, void *arg)
{
    pool_shared *sh = arg;
    pt_semaphore *s = NULL;

    (void)index;
    WCHECK_EQ(pt_semaphore_open(c, "it.pool", POOL_SIZE, sh->bounded, 0, 0, &s), 0);
    for (int i = 0; i < POOL_ITERATIONS; i++) {
        int n;

        WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
        n = atomic_fetch_add(&sh->inside, 1) + 1;
        if (n > POOL_SIZE)
            atomic_fetch_add(&sh->violations, 1);
        note_max(&sh->max_inside, n);
        atomic_fetch_sub(&sh->inside, 1);
        WCHECK_EQ(pt_semaphore_release(s, 1), 0);
    }
    WCHECK_EQ(pt_semaphore_close(s), 0);
    return 0;
}

static void run_pool(harness *h, int bounded)
{
    pool_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[POOL_WORKERS];
    pt_client *c = NULL;
    pt_semaphore *s = NULL;
    int64_t value = -1;

    sh->bounded = bounded;
    harness_workers(h, pids, POOL_WORKERS, pool_worker, sh);
    harness_join(h, pids, POOL_WORKERS, 60.0);
    if (atomic_load(&sh->violations) != 0)
        fail_msg("%d times more than %d processes were inside (max %d)",
                 atomic_load(&sh->violations), POOL_SIZE, atomic_load(&sh->max_inside));

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_semaphore_open(c, "it.pool", POOL_SIZE, bounded, PT_OPEN_EXISTING, 0, &s), 0);
    PT_ASSERT_EQ(pt_semaphore_value(s, &value), 0);
    assert_int_equal(value, POOL_SIZE);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);
    pt_client_close(c);
}

static void test_semaphore_pool(void **state)
{
    harness *h = *state;

    run_pool(h, 0);
    h->passed = 1;
}

static void test_bounded_semaphore_pool(void **state)
{
    harness *h = *state;

    run_pool(h, 1);
    h->passed = 1;
}

/* release(n) wakes exactly n of the waiting processes, oldest first. */
#define RN_WAITERS 3

typedef struct rn_shared {
    atomic_int got[RN_WAITERS];
} rn_shared;

static int rn_waiter(pt_client *c, int index, void *arg)
{
    rn_shared *sh = arg;
    pt_semaphore *s = NULL;

    WCHECK_EQ(pt_semaphore_open(c, "it.sem.rn", 0, 0, 0, 0, &s), 0);
    WCHECK_EQ(pt_semaphore_acquire(s, 1, PT_FOREVER), 1);
    atomic_store(&sh->got[index], 1);
    WCHECK_EQ(pt_semaphore_close(s), 0);
    return 0;
}

static void test_release_n_wakes_n(void **state)
{
    harness *h = *state;
    rn_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[RN_WAITERS];
    pt_client *c = NULL;
    pt_semaphore *s = NULL;
    int64_t value = -1;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_semaphore_open(c, "it.sem.rn", 0, 0, 0, 0, &s), 0);
    for (int i = 0; i < RN_WAITERS; i++) {
        pids[i] = harness_worker(h, rn_waiter, i, sh);
        harness_wait_waiters(h, "it.sem.rn", PT_KIND_SEMAPHORE, (uint32_t)i + 1, HARNESS_DEADLINE);
    }
    PT_ASSERT_EQ(pt_semaphore_release(s, 2), 0);
    harness_join(h, pids, 2, HARNESS_DEADLINE);
    harness_wait_waiters(h, "it.sem.rn", PT_KIND_SEMAPHORE, 1, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->got[2]), 0);
    PT_ASSERT_EQ(pt_semaphore_value(s, &value), 0);
    assert_int_equal(value, 0);

    /* More than are waiting: the rest raise the value. */
    PT_ASSERT_EQ(pt_semaphore_release(s, 3), 0);
    harness_join(h, pids + 2, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_semaphore_value(s, &value), 0);
    assert_int_equal(value, 2);
    PT_ASSERT_EQ(pt_semaphore_close(s), 0);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_semaphore_pool, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_semaphore_pool, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_release_n_wakes_n, harness_setup, harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: semaphore", tests, NULL, NULL);
}
