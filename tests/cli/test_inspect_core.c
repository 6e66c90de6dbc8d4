/*
 * test_inspect_core.c - what the core tells inspection: counters, holders
 * and waiters in queue order with their start times, the mode hiding the
 * detail, paging by serial, per-session counts and objects by kind.
 */
#include <string.h>

#include "harness.h"

typedef struct parties {
    size_t n;
    pt_core_party v[16];
} parties;

static void collect(void *ctx, const pt_core_party *p)
{
    parties *ps = ctx;

    if (ps->n < 16)
        ps->v[ps->n++] = *p;
}

static int show(pt_session *asker, const char *name, pt_core_object_detail *d, parties *ps)
{
    memset(ps, 0, sizeof(*ps));
    return pt_core_inspect_object(th_core(), asker, name, strlen(name), d, collect, ps);
}

static void lock_holders_waiters_and_counters(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "L", PT_KIND_LOCK, 0);
    uint32_t hb = th_open(b, "L", PT_KIND_LOCK, 0);
    uint32_t hc = th_open(c, "L", PT_KIND_LOCK, 0);
    pt_core_object_detail d;
    parties ps;

    (void)state;
    assert_answer(call_acquire(a, ha, 11, 1, -1, TH_S(1)), 1);
    assert_null(call_acquire(b, hb, 22, 1, -1, TH_S(2)));
    assert_null(call_acquire(c, hc, 33, 1, -1, TH_S(3)));
    assert_int_equal(show(a, "L", &d, &ps), 0);
    assert_int_equal(d.info.kind, PT_KIND_LOCK);
    assert_int_equal(d.waiters, 2);
    assert_int_equal(ps.n, 3);
    assert_int_equal(ps.v[0].role, PT_PARTY_HOLDER);
    assert_ptr_equal(ps.v[0].session, a);
    assert_int_equal(ps.v[0].thread, 11);
    assert_int_equal(ps.v[0].since, TH_S(1));
    assert_int_equal(ps.v[1].role, PT_PARTY_ACQUIRE);
    assert_ptr_equal(ps.v[1].session, b); /* queue order */
    assert_int_equal(ps.v[1].since, TH_S(2));
    assert_ptr_equal(ps.v[2].session, c);
    assert_int_equal(d.counters.acquires, 1);
    assert_int_equal(d.counters.contended, 2);

    /* a holds 4 s; b waited 3 s when it gets the lock at 5 s */
    assert_answer(call_release(a, ha, 11, 1, TH_S(5)), 1);
    assert_int_equal(show(a, "L", &d, &ps), 0);
    assert_int_equal(d.counters.acquires, 2);
    assert_int_equal(d.counters.longest_hold, TH_S(4));
    assert_int_equal(d.counters.longest_wait, TH_S(3));
    assert_ptr_equal(ps.v[0].session, b);
    assert_int_equal(ps.v[0].since, TH_S(5));

    /* a try with a timeout that passes counts as contended and a timeout */
    assert_null(call_acquire(a, ha, 11, 1, 1.0, TH_S(6)));
    th_expire(TH_S(7));
    assert_int_equal(show(a, "L", &d, &ps), 0);
    assert_int_equal(d.counters.timeouts, 1);
    assert_int_equal(d.counters.contended, 3);
    assert_int_equal(d.counters.longest_wait, TH_S(3));
}

static void mode_hides_detail_not_existence(void **state)
{
    pt_peer stranger = {.pid = 7, .uid = 2000, .gid = 2000};
    pt_session *a = th_session();
    pt_session *s = pt_core_session_new(th_core(), &stranger, NULL);
    uint32_t h = th_open(a, "private", PT_KIND_LOCK, 0);
    pt_core_object_detail d;
    parties ps;

    (void)state;
    assert_answer(call_acquire(a, h, 1, 1, -1, TH_S(1)), 1);
    assert_int_equal(show(s, "private", &d, &ps), PT_EPERM);
    assert_int_equal(ps.n, 0);
    assert_int_equal(d.info.kind, PT_KIND_LOCK); /* the basics are still told */
    assert_int_equal(d.info.state.locked, 1);
    assert_int_equal(show(a, "private", &d, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_int_equal(show(a, "missing", &d, &ps), PT_ENOENT);
    assert_int_equal(show(a, "bad name", &d, &ps), PT_ENAME);
    th_end(s, TH_S(2));
}

static void semaphore_and_condition_parties(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t sa = th_open_sem(a, "S", 2, 1, 0), sb = th_open_sem(b, "S", 2, 1, 0);
    uint32_t ca = th_open_cond(a, "C", 0);
    pt_core_object_detail d;
    parties ps;

    (void)state;
    assert_answer(call_acquire(a, sa, 1, 1, -1, TH_S(1)), 1);
    assert_answer(call_acquire(a, sa, 1, 1, -1, TH_S(1)), 1);
    assert_null(call_acquire(b, sb, 2, 1, -1, TH_S(2)));
    assert_int_equal(show(a, "S", &d, &ps), 0);
    assert_int_equal(d.owned, 1);
    assert_int_equal(ps.n, 2);
    assert_int_equal(ps.v[0].role, PT_PARTY_HOLDER);
    assert_int_equal(ps.v[0].count, 2);
    assert_int_equal(ps.v[1].role, PT_PARTY_ACQUIRE);
    assert_ptr_equal(ps.v[1].session, b);
    assert_int_equal(d.counters.acquires, 2);
    assert_int_equal(d.counters.contended, 1);

    assert_answer(call_acquire(a, ca, 5, 1, -1, TH_S(3)), 1);
    assert_null(call_wait(a, ca, 5, -1, TH_S(4)));
    assert_int_equal(show(a, "C", &d, &ps), 0);
    assert_null(d.cond_lock); /* its own RLock */
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.v[0].role, PT_PARTY_WAIT);
    assert_int_equal(ps.v[0].since, TH_S(4));
}

static int count_from(void *ctx, const pt_core_object_detail *d)
{
    uint64_t *v = ctx;

    v[v[0] + 1] = d->serial;
    v[0]++;
    return v[0] == 2; /* stop after two: a page */
}

static void paging_sessions_and_kinds(void **state)
{
    pt_session *a = th_session();
    uint64_t got[8] = {0}, kinds[PT_KIND_BARRIER + 1], boundary;
    pt_core_session_info si;
    uint32_t h;

    (void)state;
    th_open(a, "one", PT_KIND_LOCK, 0);
    th_open(a, "two", PT_KIND_EVENT, 0);
    h = th_open(a, "three", PT_KIND_RLOCK, 0);
    th_open_cond(a, "four", 0); /* its own RLock is not listed */
    pt_core_inspect_objects(th_core(), 0, count_from, got);
    assert_int_equal(got[0], 2);
    assert_true(got[1] < got[2]);
    boundary = got[2];
    got[0] = 0;
    pt_core_inspect_objects(th_core(), boundary, count_from, got);
    assert_int_equal(got[0], 2); /* three, four: nothing twice */
    assert_true(got[1] > boundary);
    assert_true(got[2] > got[1]);
    pt_core_objects_by_kind(th_core(), kinds);
    assert_int_equal(kinds[PT_KIND_LOCK], 1);
    assert_int_equal(kinds[PT_KIND_RLOCK], 1);
    assert_int_equal(kinds[PT_KIND_EVENT], 1);
    assert_int_equal(kinds[PT_KIND_CONDITION], 1);

    assert_answer(call_acquire(a, h, 1, 1, -1, TH_S(1)), 1);
    pt_core_session_info_get(a, &si);
    assert_int_equal(si.handles, 4);
    assert_int_equal(si.held, 1);
    assert_int_equal(si.waiting, 0);
    assert_int_equal(si.peer.pid, 4242);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(lock_holders_waiters_and_counters),
        TH_TEST(mode_hides_detail_not_existence),
        TH_TEST(semaphore_and_condition_parties),
        TH_TEST(paging_sessions_and_kinds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
