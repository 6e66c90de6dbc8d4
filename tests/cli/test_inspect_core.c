/*
 * test_inspect_core.c - what the core tells inspection: counters (the hold
 * going on included), holders and waiters in queue order with their start
 * times, the mode hiding the state and detail, paging by serial,
 * per-session counts and objects by kind.
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

/* Inspect name as asker at time now. */
static int show_at(pt_session *asker, const char *name, uint64_t now, pt_core_object_detail *d,
                   parties *ps)
{
    memset(ps, 0, sizeof(*ps));
    return pt_core_inspect_object(th_core(), asker, name, strlen(name), now, d, collect, ps);
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
    assert_int_equal(show_at(a, "L", TH_S(3), &d, &ps), 0);
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
    assert_int_equal(show_at(a, "L", TH_S(5), &d, &ps), 0);
    assert_int_equal(d.counters.acquires, 2);
    assert_int_equal(d.counters.longest_hold, TH_S(4));
    assert_int_equal(d.counters.longest_wait, TH_S(3));
    assert_ptr_equal(ps.v[0].session, b);
    assert_int_equal(ps.v[0].since, TH_S(5));

    /* a try with a timeout that passes counts as contended and a timeout */
    assert_null(call_acquire(a, ha, 11, 1, 1.0, TH_S(6)));
    th_expire(TH_S(7));
    assert_int_equal(show_at(a, "L", TH_S(7), &d, &ps), 0);
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
    assert_int_equal(show_at(s, "private", TH_S(2), &d, &ps), PT_EPERM);
    assert_int_equal(ps.n, 0);
    /* The basics are still told, as `ls -l` tells them... */
    assert_int_equal(d.info.kind, PT_KIND_LOCK);
    assert_int_equal(d.info.name_len, 7);
    assert_int_equal(d.info.mode, 0600);
    assert_int_not_equal(d.info.uid, stranger.uid);
    /* ...but not the state, the counters or who waits. */
    assert_true(d.hidden);
    assert_int_equal(d.info.state.locked, 0);
    assert_int_equal(d.info.state.token, 0);
    assert_int_equal(d.info.state.kind, PT_KIND_LOCK);
    assert_int_equal(d.counters.acquires, 0);
    assert_int_equal(d.counters.longest_hold, 0);
    assert_int_equal(d.info.refs, 0);
    assert_int_equal(show_at(a, "private", TH_S(2), &d, &ps), 0);
    assert_false(d.hidden);
    assert_int_equal(d.info.state.locked, 1);
    assert_int_equal(d.counters.acquires, 1);
    assert_int_equal(ps.n, 1);
    assert_int_equal(show_at(a, "missing", TH_S(2), &d, &ps), PT_ENOENT);
    assert_int_equal(show_at(a, "bad name", TH_S(2), &d, &ps), PT_ENAME);
    th_end(s, TH_S(2));
}

typedef struct seen {
    size_t n;
    pt_core_object_detail v[8];
} seen;

static int collect_detail(void *ctx, const pt_core_object_detail *d)
{
    seen *x = ctx;

    if (x->n < 8)
        x->v[x->n++] = *d;
    return 0;
}

/* The list tells everyone the names; the state only to who may read. */
static void list_hides_state_by_mode(void **state)
{
    pt_peer stranger = {.pid = 7, .uid = 2000, .gid = 2000};
    pt_session *a = th_session();
    pt_session *s = pt_core_session_new(th_core(), &stranger, NULL);
    pt_call open = {.name = "public", .kind = PT_KIND_SEMAPHORE, .value = 3, .mode = 0604};
    uint32_t h = th_open_sem(a, "private", 5, 0, 0);
    const th_rec *r;
    seen x = {0};

    (void)state;
    r = call_open_full(a, &open);
    assert_non_null(r);
    assert_int_equal(r->status, 0);
    assert_answer(call_acquire(a, h, 1, 1, -1, TH_S(1)), 1);
    pt_core_inspect_objects(th_core(), s, 0, TH_S(2), collect_detail, &x);
    assert_int_equal(x.n, 2);
    assert_true(x.v[0].hidden);
    assert_int_equal(x.v[0].info.kind, PT_KIND_SEMAPHORE);
    assert_int_equal(x.v[0].info.mode, 0600);
    assert_int_equal(x.v[0].info.state.value, 0);
    assert_int_equal(x.v[0].info.state.initial, 0);
    assert_false(x.v[1].hidden); /* others may read 0604 */
    assert_int_equal(x.v[1].info.state.value, 3);
    x.n = 0;
    pt_core_inspect_objects(th_core(), a, 0, TH_S(2), collect_detail, &x);
    assert_false(x.v[0].hidden);
    assert_int_equal(x.v[0].info.state.value, 4);
    th_end(s, TH_S(2));
}

/* A lock held right now counts its hold so far: held 1.8 s is not 0. */
static void longest_hold_counts_current_hold(void **state)
{
    pt_session *a = th_session();
    uint32_t l = th_open(a, "held", PT_KIND_RLOCK, 0);
    uint32_t c = th_open_cond(a, "cv", l);
    pt_core_object_detail d;
    parties ps;

    (void)state;
    assert_answer(call_acquire(a, l, 1, 1, -1, TH_S(1)), 1);
    assert_int_equal(show_at(a, "held", TH_S(1) + 1800000000u, &d, &ps), 0);
    assert_int_equal(d.counters.longest_hold, 1800000000u);
    assert_int_equal(show_at(a, "cv", TH_S(1) + 1800000000u, &d, &ps), 0);
    assert_int_equal(d.counters.longest_hold, 1800000000u); /* its lock's */
    /* An ended longer hold still wins over a shorter current one. */
    assert_answer(call_release(a, l, 1, 1, TH_S(5)), 1);
    assert_answer(call_acquire(a, l, 1, 1, -1, TH_S(6)), 1);
    assert_int_equal(show_at(a, "held", TH_S(7), &d, &ps), 0);
    assert_int_equal(d.counters.longest_hold, TH_S(4));
    assert_int_equal(show_at(a, "held", TH_S(11), &d, &ps), 0);
    assert_int_equal(d.counters.longest_hold, TH_S(5));
    (void)c;
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
    assert_int_equal(show_at(a, "S", TH_S(2), &d, &ps), 0);
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
    assert_int_equal(show_at(a, "C", TH_S(4), &d, &ps), 0);
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
    pt_core_inspect_objects(th_core(), NULL, 0, TH_S(1), count_from, got);
    assert_int_equal(got[0], 2);
    assert_true(got[1] < got[2]);
    boundary = got[2];
    got[0] = 0;
    pt_core_inspect_objects(th_core(), NULL, boundary, TH_S(1), count_from, got);
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
        TH_TEST(lock_holders_waiters_and_counters), TH_TEST(mode_hides_detail_not_existence),
        TH_TEST(list_hides_state_by_mode),          TH_TEST(longest_hold_counts_current_hold),
        TH_TEST(semaphore_and_condition_parties),   TH_TEST(paging_sessions_and_kinds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
