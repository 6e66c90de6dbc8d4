/*
 * test_deadlock.c - deadlock detection in the core (core/deadlock.c): a
 * wait that closes a cycle of Lock/RLock waits without timeouts is found
 * when it forms, with its owners and locks in order; it fails with
 * PT_EDEADLK when the call asked so, else it stands until a wait of it
 * ends or a lock of it is released. Timed waits, waits on objects with no
 * owner and chains into a standing cycle make no report; the holders
 * followed are the true ones even when a word handed a lock on.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* What the hooks heard: each deadlock found or ended, as text. */
#define EVENTS 16

typedef struct event {
    int ended;
    pt_core_cycle cy;
    char who[512]; /* "s<id>/t<thread>:<waits>[<via>][r]" for each member */
} event;

static event events[EVENTS];
static int nevents;

static void heard(int ended, const pt_core_cycle *cy)
{
    event *e = &events[nevents++];
    size_t n = 0;

    assert_true(nevents <= EVENTS);
    e->ended = ended;
    e->cy = *cy;
    e->cy.members = NULL;
    e->who[0] = '\0';
    for (size_t i = 0; i < cy->shown; i++) {
        const pt_core_cycle_member *m = &cy->members[i];

        n += (size_t)snprintf(e->who + n, sizeof(e->who) - n, "%ss%llu/t%llu:%.*s%s%.*s%s",
                              i ? " " : "", (unsigned long long)pt_core_session_id(m->session),
                              (unsigned long long)m->thread, (int)m->waits_len, m->waits,
                              m->via ? "~" : "", (int)m->via_len, m->via ? m->via : "",
                              m->reacquire ? "[r]" : "");
    }
}

static void on_found(void *ctx, const pt_core_cycle *cy)
{
    (void)ctx;
    heard(0, cy);
}

static void on_ended(void *ctx, const pt_core_cycle *cy)
{
    (void)ctx;
    heard(1, cy);
}

static const pt_core_deadlock_hooks hooks = {on_found, on_ended};

static int setup(void **state)
{
    th_setup(state);
    nevents = 0;
    pt_core_set_deadlock_hooks(th_core(), &hooks, NULL);
    return 0;
}

#define DL_TEST(f) cmocka_unit_test_setup_teardown(f, setup, th_teardown)

/* A Lock/RLock/Condition acquire, or a Condition wait (op); fail: a
 * deadlock its wait closes fails it. */
static const th_rec *call_dl(pt_session *s, pt_op op, uint32_t h, uint64_t thread, double timeout,
                             int fail, uint64_t now)
{
    pt_call c = {.op = op,
                 .thread = thread,
                 .handle = h,
                 .blocking = 1,
                 .timeout = timeout,
                 .fail_deadlock = fail};

    return th_do(s, &c, now);
}

#define acquire(s, h, th, timeout, fail, now) call_dl(s, PT_OP_ACQUIRE, h, th, timeout, fail, now)
#define cond_wait(s, h, th, timeout, fail, now)                                                    \
    call_dl(s, PT_OP_COND_WAIT, h, th, timeout, fail, now)

static void held(pt_session *s, uint32_t h, uint64_t thread)
{
    assert_answer(acquire(s, h, thread, -1, 0, 0), 1);
}

static void parks(const th_rec *r)
{
    assert_null(r);
}

static uint64_t found_count(void)
{
    return th_stats().deadlocks;
}

static uint64_t standing(void)
{
    return th_stats().deadlocks_standing;
}

/* Two sessions, each holding one lock and waiting for the other's: the
 * second wait closes the cycle; both wait on, and the cycle stands until
 * a session ends, whose lock then goes to the other. */
static void test_ab_ba_stands_until_a_session_ends(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t a1 = th_open(s1, "a", PT_KIND_LOCK, 0), b1 = th_open(s1, "b", PT_KIND_LOCK, 0);
    uint32_t a2 = th_open(s2, "a", PT_KIND_LOCK, 0), b2 = th_open(s2, "b", PT_KIND_LOCK, 0);
    uint64_t waiting;

    (void)state;
    held(s1, a1, 11);
    held(s2, b2, 22);
    parks(acquire(s1, b1, 11, -1, 0, TH_S(1)));
    assert_int_equal(nevents, 0);
    parks(acquire(s2, a2, 22, -1, 0, TH_S(2)));
    waiting = th_last_id();
    assert_int_equal(nevents, 1);
    assert_false(events[0].ended);
    assert_int_equal(events[0].cy.state, PT_CYCLE_STANDING);
    assert_int_equal(events[0].cy.id, 1);
    assert_int_equal(events[0].cy.n, 2);
    assert_int_equal(events[0].cy.shown, 2);
    assert_int_equal(events[0].cy.found, TH_S(2));
    assert_string_equal(events[0].who, "s2/t22:a s1/t11:b");
    assert_int_equal(found_count(), 1);
    assert_int_equal(standing(), 1);

    th_end(s1, TH_S(3));
    assert_int_equal(nevents, 2);
    assert_true(events[1].ended);
    assert_int_equal(events[1].cy.state, PT_CYCLE_BROKEN);
    assert_int_equal(events[1].cy.id, 1);
    assert_int_equal(events[1].cy.broke, 1); /* s1's wait ended first */
    assert_false(events[1].cy.released);
    assert_int_equal(standing(), 0);
    assert_answer(th_find(waiting), 1); /* s2 got a */
    assert_int_equal(found_count(), 1);
}

/* The fail policy fails exactly the wait that closed the cycle, with a
 * message naming every owner and lock; the other keeps waiting. */
static void test_fail_policy_fails_the_closing_wait(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t a1 = th_open(s1, "a", PT_KIND_LOCK, 0), b1 = th_open(s1, "b", PT_KIND_RLOCK, 0);
    uint32_t a2 = th_open(s2, "a", PT_KIND_LOCK, 0), b2 = th_open(s2, "b", PT_KIND_RLOCK, 0);
    const th_rec *r;
    uint64_t first;

    (void)state;
    held(s1, a1, 11);
    held(s2, b2, 22);
    parks(acquire(s1, b1, 11, -1, 1, TH_S(1)));
    first = th_last_id();
    r = acquire(s2, a2, 22, -1, 1, TH_S(2));
    assert_error(r, PT_EDEADLK, "Lock 'a': acquire: deadlock");
    assert_non_null(strstr(r->message, "cycle of 2 lock waits"));
    assert_non_null(strstr(r->message, "thread 22 holds RLock 'b' and waits for Lock 'a'"));
    assert_non_null(strstr(r->message, "thread 11 holds Lock 'a' and waits for RLock 'b'"));
    assert_int_equal(nevents, 1);
    assert_int_equal(events[0].cy.state, PT_CYCLE_FAILED);
    assert_int_equal(found_count(), 1);
    assert_int_equal(standing(), 0);
    assert_null(th_find(first)); /* still waiting */
    assert_answer(call_release(s2, b2, 22, 1, TH_S(3)), 1);
    assert_answer(th_find(first), 1);
    assert_int_equal(nevents, 1); /* nothing stood, nothing ended */
}

/* Three sessions in a ring: only the third wait closes it. */
static void test_ring_of_three(void **state)
{
    pt_session *s[3];
    uint32_t h[3][3];
    const char *names[3] = {"x", "y", "z"};

    (void)state;
    for (int i = 0; i < 3; i++) {
        s[i] = th_session();
        for (int k = 0; k < 3; k++)
            h[i][k] = th_open(s[i], names[k], PT_KIND_LOCK, 0);
    }
    for (int i = 0; i < 3; i++)
        held(s[i], h[i][i], 100 + (uint64_t)i);
    parks(acquire(s[0], h[0][1], 100, -1, 0, TH_S(1)));
    parks(acquire(s[1], h[1][2], 101, -1, 0, TH_S(1)));
    assert_int_equal(nevents, 0);
    parks(acquire(s[2], h[2][0], 102, -1, 0, TH_S(1)));
    assert_int_equal(nevents, 1);
    assert_int_equal(events[0].cy.n, 3);
    assert_string_equal(events[0].who, "s3/t102:x s1/t100:y s2/t101:z");
    /* the ring is broken by a handle closed under a wait */
    assert_answer(call_close(s[1], h[1][2]), 1);
    assert_int_equal(nevents, 2);
    assert_int_equal(events[1].cy.broke, 2);
    assert_int_equal(standing(), 0);
}

/* An RLock held three deep is one hold: waiting for its owner counts the
 * same, and a nested acquire by its owner is no wait at all. */
static void test_rlock_three_deep(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t r1 = th_open(s1, "r", PT_KIND_RLOCK, 0), l1 = th_open(s1, "l", PT_KIND_LOCK, 0);
    uint32_t r2 = th_open(s2, "r", PT_KIND_RLOCK, 0), l2 = th_open(s2, "l", PT_KIND_LOCK, 0);

    (void)state;
    for (int i = 0; i < 3; i++)
        held(s1, r1, 7);
    held(s2, l2, 8);
    parks(acquire(s2, r2, 8, -1, 0, TH_S(1)));
    assert_int_equal(nevents, 0);
    assert_error(acquire(s1, l1, 7, -1, 1, TH_S(2)), PT_EDEADLK,
                 "RLock 'r' and waits for Lock 'l'");
    assert_int_equal(found_count(), 1);
    /* s1 lets go of all three levels: s2 gets the RLock */
    for (int i = 0; i < 2; i++)
        assert_answer(call_release(s1, r1, 7, 1, TH_S(3)), 1);
    assert_answer(call_release(s1, r1, 7, 1, TH_S(3)), 1);
    assert_int_equal(standing(), 0);
}

/* A cycle with a timed wait in it is no deadlock: its timeout breaks it,
 * and nothing is reported, neither when it closes nor after. A timeout
 * before the would-be closing wait leaves nothing to close. */
static void test_timeout_breaks_before_report(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t a1 = th_open(s1, "a", PT_KIND_LOCK, 0), b1 = th_open(s1, "b", PT_KIND_LOCK, 0);
    uint32_t a2 = th_open(s2, "a", PT_KIND_LOCK, 0), b2 = th_open(s2, "b", PT_KIND_LOCK, 0);
    uint64_t timed, closing;

    (void)state;
    held(s1, a1, 1);
    held(s2, b2, 2);
    parks(acquire(s1, b1, 1, 0.5, 1, 0));
    timed = th_last_id();
    parks(acquire(s2, a2, 2, -1, 1, TH_S(0.25)));
    closing = th_last_id();
    assert_int_equal(nevents, 0);
    th_expire(TH_S(1));
    assert_answer(th_find(timed), 0);
    assert_null(th_find(closing));
    assert_answer(call_release(s1, a1, 1, 1, TH_S(1)), 1);
    assert_answer(th_find(closing), 1);
    assert_int_equal(nevents, 0);
    assert_int_equal(found_count(), 0);

    /* the timeout comes before the second wait */
    assert_answer(call_release(s2, a2, 2, 1, TH_S(2)), 1); /* s2 holds b and a: let a go */
    held(s1, a1, 1);
    parks(acquire(s1, b1, 1, 0.5, 1, TH_S(2)));
    th_expire(TH_S(3));
    parks(acquire(s2, a2, 2, -1, 1, TH_S(3)));
    assert_int_equal(nevents, 0);
    assert_int_equal(found_count(), 0);
}

/* A Condition wait taking its lock back waits for the lock's holder: a
 * notify that moves it behind a holder waiting for what it holds closes
 * the cycle, and the fail policy fails that wait, without the lock. */
static void test_condition_reacquire_closes(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session(), *s3 = th_session();
    uint32_t l1 = th_open(s1, "l", PT_KIND_LOCK, 0), m1 = th_open(s1, "m", PT_KIND_LOCK, 0);
    uint32_t c1 = th_open_cond(s1, "cv", l1);
    uint32_t l2 = th_open(s2, "l", PT_KIND_LOCK, 0), m2 = th_open(s2, "m", PT_KIND_LOCK, 0);
    uint32_t l3 = th_open(s3, "l", PT_KIND_LOCK, 0), c3 = th_open_cond(s3, "cv", l3);
    uint64_t wait, s2wait;
    const th_rec *r;

    (void)state;
    held(s1, m1, 1);
    held(s1, c1, 1); /* the condition's lock l */
    parks(cond_wait(s1, c1, 1, -1, 1, 0));
    wait = th_last_id();
    held(s2, l2, 2);
    parks(acquire(s2, m2, 2, -1, 0, 0)); /* s2 -> s1, which waits for a notify */
    s2wait = th_last_id();
    assert_int_equal(nevents, 0);
    /* a plain Lock's condition may be notified by anyone while it is locked */
    assert_answer(call_notify(s3, c3, 3, 1), 1);
    r = th_find(wait);
    assert_non_null(r);
    assert_error(r, PT_EDEADLK, "Condition 'cv': wait: deadlock");
    assert_non_null(strstr(r->message, "holds Lock 'm' and waits for Lock 'l'"));
    assert_int_equal(events[0].cy.state, PT_CYCLE_FAILED);
    assert_string_equal(events[0].who, "s1/t1:l~cv[r] s2/t2:m");
    assert_null(th_find(s2wait));
    (void)l3;
}

/* The same through a timed-out Condition wait, reported only: it stands,
 * and shows in inspection on the locks and the parties. */
static int show_deadlock;
static void party_seen(void *ctx, const pt_core_party *p)
{
    (void)ctx;
    if (p->deadlock != 0)
        show_deadlock++;
}

static void cycle_seen(void *ctx, const pt_core_cycle *cy)
{
    *(uint64_t *)ctx = cy->id * 10 + cy->n;
}

static void test_condition_timeout_reacquire_stands(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t c1 = th_open_cond(s1, "cv", 0), m1 = th_open(s1, "m", PT_KIND_RLOCK, 0);
    uint32_t c2 = th_open_cond(s2, "cv", 0), m2 = th_open(s2, "m", PT_KIND_RLOCK, 0);
    pt_core_object_detail d;
    uint64_t seen = 0;

    (void)state;
    held(s1, m1, 1);
    held(s1, c1, 1);
    parks(cond_wait(s1, c1, 1, 2.0, 0, 0));
    held(s2, c2, 2);
    parks(acquire(s2, m2, 2, -1, 0, TH_S(1)));
    assert_int_equal(nevents, 0);
    th_expire(TH_S(2)); /* the wait times out and waits for the lock: closed */
    assert_int_equal(nevents, 1);
    assert_int_equal(events[0].cy.state, PT_CYCLE_STANDING);
    assert_string_equal(events[0].who, "s1/t1:cv[r] s2/t2:m");
    assert_int_equal(pt_core_deadlocks_each(th_core(), cycle_seen, &seen), 0);
    assert_int_equal(seen, 12);
    show_deadlock = 0;
    assert_int_equal(
        pt_core_inspect_object(th_core(), NULL, "cv", 2, TH_S(3), &d, party_seen, NULL), 0);
    assert_int_equal(d.deadlock, 1);
    assert_int_equal(show_deadlock, 2); /* the holder s2 and the waiter s1 */
    assert_int_equal(pt_core_inspect_object(th_core(), NULL, "m", 1, TH_S(3), &d, NULL, NULL), 0);
    assert_int_equal(d.deadlock, 1);
    /* s2 lets the condition's RLock go: broken by a release */
    assert_answer(call_release(s2, c2, 2, 1, TH_S(4)), 1);
    assert_int_equal(nevents, 2);
    assert_true(events[1].cy.released);
    assert_int_equal(events[1].cy.broke, 1);
    assert_int_equal(standing(), 0);
}

/* A thread acquiring a plain Lock it holds waits for itself: a cycle of
 * one; a Lock may be released by anyone, which breaks it. */
static void test_self_deadlock_on_a_lock(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t l1 = th_open(s1, "l", PT_KIND_LOCK, 0), l2 = th_open(s2, "l", PT_KIND_LOCK, 0);
    uint64_t id;

    (void)state;
    held(s1, l1, 5);
    parks(acquire(s1, l1, 5, -1, 0, 0));
    id = th_last_id();
    assert_int_equal(nevents, 1);
    assert_int_equal(events[0].cy.n, 1);
    assert_string_equal(events[0].who, "s1/t5:l");
    assert_answer(call_release(s2, l2, 9, 1, TH_S(1)), 1);
    assert_int_equal(nevents, 2);
    assert_true(events[1].cy.released);
    assert_answer(th_find(id), 1);
    /* with the fail policy it fails at once */
    assert_error(acquire(s1, l1, 5, -1, 1, TH_S(2)), PT_EDEADLK,
                 "thread 5 holds Lock 'l' and waits for Lock 'l'");
}

/* A cycle of long names: the message is cut, says so, and keeps its
 * advice. */
static void test_long_cycle_message_cut(void **state)
{
    enum { N = 6 };
    pt_session *s[N];
    uint32_t h[N][N];
    char names[N][PT_NAME_MAX + 1];
    const th_rec *r;

    (void)state;
    for (int i = 0; i < N; i++) {
        memset(names[i], 'a' + i, PT_NAME_MAX);
        names[i][PT_NAME_MAX] = '\0';
    }
    for (int i = 0; i < N; i++) {
        s[i] = th_session();
        for (int k = 0; k < N; k++)
            h[i][k] = th_open(s[i], names[k], PT_KIND_LOCK, 0);
        held(s[i], h[i][i], 1);
    }
    for (int i = 0; i + 1 < N; i++)
        parks(acquire(s[i], h[i][i + 1], 1, -1, 0, 0));
    r = acquire(s[N - 1], h[N - 1][0], 1, -1, 1, 0);
    assert_error(r, PT_EDEADLK, "cycle of 6 lock waits");
    assert_non_null(strstr(r->message, "...; release a lock of the cycle"));
    assert_true(strlen(r->message) < 1024);
}

/* A chain into a standing cycle ends there: no second report, no loop. */
static void test_chain_into_standing_cycle(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session(), *s3 = th_session();
    uint32_t a1 = th_open(s1, "a", PT_KIND_LOCK, 0), b1 = th_open(s1, "b", PT_KIND_LOCK, 0);
    uint32_t a2 = th_open(s2, "a", PT_KIND_LOCK, 0), b2 = th_open(s2, "b", PT_KIND_LOCK, 0);
    uint32_t a3 = th_open(s3, "a", PT_KIND_LOCK, 0), c3 = th_open(s3, "c", PT_KIND_LOCK, 0);
    uint32_t c2 = th_open(s2, "c", PT_KIND_LOCK, 0);

    (void)state;
    held(s1, a1, 1);
    held(s2, b2, 2);
    parks(acquire(s1, b1, 1, -1, 0, 0));
    parks(acquire(s2, a2, 2, -1, 0, 0));
    assert_int_equal(found_count(), 1);
    held(s3, c3, 3);
    parks(acquire(s3, a3, 3, -1, 1, 0)); /* s3 -> s1 -> s2 -> s1 ... */
    assert_int_equal(found_count(), 1);
    parks(acquire(s2, c2, 4, -1, 1, 0)); /* another thread of s2 -> s3 -> s1 -> s2/2 */
    assert_int_equal(found_count(), 1);
    assert_int_equal(nevents, 1);
}

/* Waiting on an object with no owner ends the chain: nothing is guessed,
 * and inspection says what the holder waits on. */
static int no_owner_seen;
static void holder_seen(void *ctx, const pt_core_party *p)
{
    (void)ctx;
    if (p->role == PT_PARTY_HOLDER && p->waits != NULL && !p->waits_owner &&
        p->waits_kind == PT_KIND_SEMAPHORE && p->waits_len == 1 && p->waits[0] == 's')
        no_owner_seen++;
}

static void test_no_owner_ends_the_chain(void **state)
{
    pt_session *s1 = th_session(), *s2 = th_session();
    uint32_t l1 = th_open(s1, "l", PT_KIND_LOCK, 0), sem1 = th_open_sem(s1, "s", 0, 0, 0);
    uint32_t l2 = th_open(s2, "l", PT_KIND_LOCK, 0), sem2 = th_open_sem(s2, "s", 0, 0, 0);
    uint32_t e1 = th_open(s1, "e", PT_KIND_EVENT, 0), e2 = th_open(s2, "e", PT_KIND_EVENT, 0);
    pt_core_object_detail d;

    (void)state;
    held(s1, l1, 1);
    parks(acquire(s1, sem1, 1, -1, 0, 0));
    parks(acquire(s2, l2, 2, -1, 1, 0));
    parks(call_event_wait(s2, e2, -1, 0));
    assert_int_equal(found_count(), 0);
    no_owner_seen = 0;
    assert_int_equal(pt_core_inspect_object(th_core(), NULL, "l", 1, 0, &d, holder_seen, NULL), 0);
    assert_int_equal(no_owner_seen, 1);
    assert_answer(call_release(s2, sem2, 2, 1, 0), 1);
    (void)e1;
}

/* ---- the words: holders along the chain are claimed first ---------------- */

static pt_core_fast_view words[8];
static int claims;

static uint32_t w_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    static uint32_t next;

    (void)ctx, (void)kind, (void)owned, (void)uid, (void)gid, (void)mode;
    next = next % 7 + 1;
    words[next] = (pt_core_fast_view){.keep = 1};
    return next;
}

static void w_claim(void *ctx, uint32_t cell, int kind, pt_core_fast_view *v)
{
    (void)ctx, (void)kind;
    claims++;
    *v = words[cell];
    words[cell] = (pt_core_fast_view){.keep = 1};
}

static void w_freed(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
}

static void published(void)
{
    pt_core_fast_state st;

    while (pt_core_fast_next(th_core(), &st))
        ;
}

/* s2 handed b to s1 through the word (s1 was its first waiter) and the
 * daemon has not heard yet: the core still says s2 holds b. s2 then waits
 * for a, which s1 holds: by the core's old view that closes a cycle, but
 * the walk claims b first, learns s1 has it, and finds none. */
static void test_chain_claims_the_words(void **state)
{
    static const pt_core_fast_hooks fh = {.created = w_created, .claim = w_claim, .freed = w_freed};
    pt_session *s1, *s2;
    uint32_t a1, b1, a2, b2;
    uint64_t s1wait;

    (void)state;
    pt_core_set_fast_hooks(th_core(), &fh, NULL);
    s1 = th_session();
    s2 = th_session();
    a1 = th_open(s1, "a", PT_KIND_LOCK, 0);
    b1 = th_open(s1, "b", PT_KIND_LOCK, 0);
    a2 = th_open(s2, "a", PT_KIND_LOCK, 0);
    b2 = th_open(s2, "b", PT_KIND_LOCK, 0);
    published();
    held(s1, a1, 1);
    published();
    held(s2, b2, 2);
    published();
    parks(acquire(s1, b1, 1, -1, 1, 0));
    s1wait = th_last_id();
    published();
    /* b's word: handed to s1 with token 1 more */
    words[pt_core_fast_lock_cell(th_core(), s2, b2)] =
        (pt_core_fast_view){.holder = s1, .thread = 1, .depth = 1, .token = 5};
    claims = 0;
    parks(acquire(s2, a2, 2, -1, 1, 0));
    published();
    assert_true(claims >= 2); /* a, then b along the chain */
    assert_int_equal(found_count(), 0);
    assert_answer(th_find(s1wait), 1); /* the handed lock's call answered */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DL_TEST(test_ab_ba_stands_until_a_session_ends),
        DL_TEST(test_fail_policy_fails_the_closing_wait),
        DL_TEST(test_ring_of_three),
        DL_TEST(test_rlock_three_deep),
        DL_TEST(test_timeout_breaks_before_report),
        DL_TEST(test_condition_reacquire_closes),
        DL_TEST(test_condition_timeout_reacquire_stands),
        DL_TEST(test_self_deadlock_on_a_lock),
        DL_TEST(test_long_cycle_message_cut),
        DL_TEST(test_chain_into_standing_cycle),
        DL_TEST(test_no_owner_ends_the_chain),
        DL_TEST(test_chain_claims_the_words),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
