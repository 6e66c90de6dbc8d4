/*
 * One Event set() releases every process waiting on it.
 */
#include "harness.h"

#define EVENT_WAITERS 10

typedef struct event_shared {
    atomic_int returned;
    int result[EVENT_WAITERS];
} event_shared;

static int event_waiter(pt_client *c, int index, void *arg)
{
    event_shared *sh = arg;
    pt_event *e = NULL;

    WCHECK_EQ(pt_event_open(c, "it.event.go", 0, 0, &e), 0);
    sh->result[index] = pt_event_wait(e, PT_FOREVER);
    atomic_fetch_add(&sh->returned, 1);
    WCHECK_EQ(pt_event_close(e), 0);
    return 0;
}

static void test_event_releases_all(void **state)
{
    harness *h = *state;
    event_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[EVENT_WAITERS];
    pt_client *c = NULL;
    pt_event *e = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.event.go", 0, 0, &e), 0);
    PT_ASSERT_EQ(pt_event_is_set(e), 0);

    harness_workers(h, pids, EVENT_WAITERS, event_waiter, sh);
    harness_wait_waiters(h, "it.event.go", PT_KIND_EVENT, EVENT_WAITERS, HARNESS_DEADLINE);
    assert_int_equal(atomic_load(&sh->returned), 0);

    PT_ASSERT_EQ(pt_event_set(e), 0);
    harness_join(h, pids, EVENT_WAITERS, HARNESS_DEADLINE);
    for (int i = 0; i < EVENT_WAITERS; i++)
        if (sh->result[i] != 1)
            fail_msg("waiter %d: wait returned %d (%s), want 1", i, sh->result[i],
                     pt_err_name(sh->result[i]));

    /* The flag stays set for later waiters until cleared. */
    PT_ASSERT_EQ(pt_event_is_set(e), 1);
    PT_ASSERT_EQ(pt_event_wait(e, 0), 1);
    PT_ASSERT_EQ(pt_event_clear(e), 0);
    PT_ASSERT_EQ(pt_event_is_set(e), 0);
    PT_ASSERT_EQ(pt_event_wait(e, 0), 0);
    PT_ASSERT_EQ(pt_event_close(e), 0);
    pt_client_close(c);
    h->passed = 1;
}

/* set() then clear() while processes wait: each waiter still wakes with 1,
 * as in Python, because it was notified while the flag was set. */
static void test_event_set_clear_wakes_waiters(void **state)
{
    harness *h = *state;
    event_shared *sh = harness_shm_alloc(h, sizeof *sh);
    pid_t pids[3];
    pt_client *c = NULL;
    pt_event *e = NULL;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_event_open(c, "it.event.go", 0, 0, &e), 0);
    harness_workers(h, pids, 3, event_waiter, sh);
    harness_wait_waiters(h, "it.event.go", PT_KIND_EVENT, 3, HARNESS_DEADLINE);

    PT_ASSERT_EQ(pt_event_set(e), 0);
    PT_ASSERT_EQ(pt_event_clear(e), 0);
    harness_join(h, pids, 3, HARNESS_DEADLINE);
    for (int i = 0; i < 3; i++)
        if (sh->result[i] != 1)
            fail_msg("waiter %d: wait returned %d (%s), want 1", i, sh->result[i],
                     pt_err_name(sh->result[i]));
    PT_ASSERT_EQ(pt_event_close(e), 0);
    pt_client_close(c);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event_releases_all, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_event_set_clear_wakes_waiters, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration: event", tests, NULL, NULL);
}
