/*
 * test_event.c - Event: set, clear, wait with and without timeouts.
 */
#include <math.h>

#include "harness.h"

static void test_wait_on_set_event_returns_at_once(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_answer(call_set(s, h), 1);
    assert_answer(call_event_wait(s, h, -1, 0), 1);
    assert_answer(call_event_wait(s, h, 0, 0), 1);
    assert_answer(call_event_wait(s, h, -4, 0), 1);
    assert_true(call_state(s, h, 0)->state.is_set);
}

static void test_nonpositive_timeout_does_not_block(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_answer(call_event_wait(s, h, 0, 0), 0);
    assert_answer(call_event_wait(s, h, -2.5, 0), 0);
    assert_int_equal(th_stats().waiters, 0);
}

static void test_set_wakes_every_waiter_in_order(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "e", PT_KIND_EVENT, 0), hb = th_open(b, "e", PT_KIND_EVENT, 0);
    uint64_t id[6];
    size_t mark;

    (void)state;
    for (int i = 0; i < 6; i++) {
        assert_null(call_event_wait(i % 2 ? a : b, i % 2 ? ha : hb, i % 3 ? 10 : -1, 0));
        id[i] = th_last_id();
    }
    assert_int_equal(call_state(a, ha, 0)->state.n_waiting, 6);
    mark = th_count();
    assert_answer(call_set(b, hb), 1);
    assert_int_equal(th_since(mark), 7);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(th_at(mark + (size_t)i)->id, id[i]);
        assert_answer(th_at(mark + (size_t)i), 1);
    }
    assert_int_equal(pt_core_next_deadline(th_core()), PT_DEADLINE_NONE);
    assert_int_equal(call_state(a, ha, 0)->state.n_waiting, 0);
}

static void test_wait_times_out(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "e", PT_KIND_EVENT, 0);
    uint64_t id;

    (void)state;
    assert_null(call_event_wait(s, h, 0.25, TH_S(1)));
    id = th_last_id();
    th_expire(TH_S(1) + PT_NS_PER_SEC / 4 - 1);
    assert_null(th_find(id));
    th_expire(TH_S(1) + PT_NS_PER_SEC / 4);
    assert_answer(th_find(id), 0);
    /* a set after the timeout answers nobody twice */
    assert_answer(call_set(s, h), 1);
}

static void test_clear(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_answer(call_set(s, h), 1);
    assert_answer(call_set(s, h), 1);
    assert_answer(call_clear(s, h), 1);
    assert_false(call_state(s, h, 0)->state.is_set);
    assert_null(call_event_wait(s, h, -1, 0));
    assert_answer(call_clear(s, h), 1);
    assert_int_equal(th_stats().waiters, 1);
}

static void test_argument_rules(void **state)
{
    pt_session *s = th_session();
    uint32_t h = th_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    /* NaN is not > 0: threading.py does not block for it */
    assert_answer(call_event_wait(s, h, NAN, 0), 0);
    assert_error(call_event_wait(s, h, PT_TIMEOUT_MAX * 1.5, 0), PT_EOVERFLOW,
                 "Event 'e': wait: timeout value is too large");
    /* the timeout's value matters only when the call would wait */
    assert_answer(call_set(s, h), 1);
    assert_answer(call_event_wait(s, h, PT_TIMEOUT_MAX * 1.5, 0), 1);
    assert_answer(call_clear(s, h), 1);
    assert_null(call_event_wait(s, h, PT_TIMEOUT_MAX, TH_S(1)));
    assert_int_equal(pt_core_next_deadline(th_core()), TH_S(1) + (uint64_t)(PT_TIMEOUT_MAX * 1e9));
}

static void test_state_of_new_event(void **state)
{
    pt_session *s = th_session();
    const th_rec *r = call_open(s, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_int_equal(r->status, 0);
    r = call_state(s, r->handle, 1);
    assert_int_equal(r->state.kind, PT_KIND_EVENT);
    assert_false(r->state.is_set);
    assert_int_equal(r->state.token, 0);
}

static void test_event_outlives_setter(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "e", PT_KIND_EVENT, 0);

    (void)state;
    assert_answer(call_set(a, ha), 1);
    th_end(a, 0);
    assert_true(call_state(b, th_open(b, "e", PT_KIND_EVENT, 0), 0)->state.is_set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_wait_on_set_event_returns_at_once),
        TH_TEST(test_nonpositive_timeout_does_not_block),
        TH_TEST(test_set_wakes_every_waiter_in_order),
        TH_TEST(test_wait_times_out),
        TH_TEST(test_clear),
        TH_TEST(test_argument_rules),
        TH_TEST(test_state_of_new_event),
        TH_TEST(test_event_outlives_setter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
