/*
 * test_registry.c - names, create-or-open and its refusals, handles,
 * close, unlink, transient objects, kinds, limits and dispatch errors.
 */
#include <stdio.h>
#include <string.h>

#include "core_int.h"
#include "harness.h"

static void test_open_creates_then_opens(void **state)
{
    pt_session *s = th_session();
    const th_rec *r;

    (void)state;
    r = call_open(s, "l", PT_KIND_LOCK, 0);
    assert_int_equal(r->status, 0);
    assert_true(r->created);
    assert_int_equal(r->handle, 1);
    assert_int_equal(th_stats().objects, 1);
    /* every open makes a new handle, even to the same object */
    r = call_open(s, "l", PT_KIND_LOCK, 0);
    assert_false(r->created);
    assert_int_equal(r->handle, 2);
    assert_answer(call_acquire(s, 1, 1, 1, -1, 0), 1);
    assert_true(call_state(s, 2, 1)->state.locked);
    assert_int_equal(th_stats().objects, 1);
}

static void test_open_invalid_name(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "a b", .kind = PT_KIND_LOCK, .timeout = -1};
    char long_name[300];

    (void)state;
    assert_error(call_open_full(s, &c), PT_ENAME, "A-Z a-z 0-9 . _ : / -");
    memset(long_name, 'x', sizeof(long_name));
    c.name = long_name;
    c.name_len = 256;
    assert_error(call_open_full(s, &c), PT_ENAME, "256 bytes");
    c.name = "\x01\xff";
    c.name_len = 2;
    assert_error(call_open_full(s, &c), PT_ENAME,
                 "'?"
                 "?'");
    c.name = "";
    c.name_len = 0;
    assert_error(call_open_full(s, &c), PT_ENAME, "1-255 bytes");
    assert_int_equal(th_stats().objects, 0);
}

static void test_open_unknown_kind(void **state)
{
    pt_session *s = th_session();

    (void)state;
    assert_error(call_open(s, "x", 0, 0), PT_EINVAL, "unknown kind 0");
    assert_error(call_open(s, "x", 8, 0), PT_EINVAL, "unknown kind 8");
}

static void test_open_excl(void **state)
{
    pt_session *s = th_session();

    (void)state;
    assert_true(call_open(s, "x", PT_KIND_EVENT, PT_OPEN_EXCL)->created);
    assert_error(call_open(s, "x", PT_KIND_EVENT, PT_OPEN_EXCL), PT_EEXIST, "PT_OPEN_EXCL");
    assert_error(call_open(s, "x", PT_KIND_LOCK, PT_OPEN_EXCL), PT_EEXIST, NULL);
}

static void test_open_existing(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "sem",
                 .kind = PT_KIND_SEMAPHORE,
                 .value = 99,
                 .timeout = -1,
                 .flags = PT_OPEN_EXISTING};
    const th_rec *r;

    (void)state;
    assert_error(call_open_full(s, &c), PT_ENOENT, "Semaphore 'sem': open: no object");
    assert_int_equal(th_stats().objects, 0);
    th_open_sem(s, "sem", 3, 0, 0);
    /* creation parameters are ignored, the kind is not */
    r = call_open_full(s, &c);
    assert_int_equal(r->status, 0);
    assert_false(r->created);
    assert_int_equal(r->state.value, 3);
    c.value = -5;
    assert_int_equal(call_open_full(s, &c)->status, 0);
    c.kind = PT_KIND_BOUNDED_SEMAPHORE;
    assert_error(call_open_full(s, &c), PT_EEXIST, "exists as a Semaphore");
}

static void test_open_as_other_kind(void **state)
{
    pt_session *s = th_session();

    (void)state;
    th_open(s, "jobs", PT_KIND_LOCK, 0);
    assert_error(call_open(s, "jobs", PT_KIND_RLOCK, 0), PT_EEXIST,
                 "RLock 'jobs': open: exists as a Lock; open it as a Lock or unlink it");
}

static void test_open_with_other_semaphore_params(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "s", .kind = PT_KIND_SEMAPHORE, .value = 4, .timeout = -1};

    (void)state;
    th_open_sem(s, "s", 3, 0, 0);
    assert_error(call_open_full(s, &c), PT_EEXIST,
                 "exists with value=3, asked value=4; open it with value=3 or unlink it");
    c.value = 3;
    c.flags = PT_OPEN_OWNED;
    assert_error(call_open_full(s, &c), PT_EEXIST, "exists with unowned permits, asked owned");
    c.flags = PT_OPEN_UNOWNED;
    assert_int_equal(call_open_full(s, &c)->status, 0);
    th_open_sem(s, "b", 1, 1, 0);
    c.name = "b";
    c.kind = PT_KIND_BOUNDED_SEMAPHORE;
    c.value = 1;
    assert_error(call_open_full(s, &c), PT_EEXIST, "exists with owned permits, asked unowned");
}

static void test_open_with_other_barrier_params(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "b", .kind = PT_KIND_BARRIER, .parties = 4, .timeout = -1};

    (void)state;
    th_open_barrier(s, "b", 5, -1);
    assert_error(call_open_full(s, &c), PT_EEXIST,
                 "Barrier 'b': open: exists with parties=5, asked parties=4; open it with "
                 "parties=5 or unlink it");
    c.parties = 5;
    c.timeout = 2;
    assert_error(call_open_full(s, &c), PT_EEXIST, "exists with timeout=-1, asked timeout=2");
    c.timeout = -1;
    assert_int_equal(call_open_full(s, &c)->status, 0);
}

static void test_open_condition_with_other_lock(void **state)
{
    pt_session *s = th_session();
    uint32_t l1 = th_open(s, "l1", PT_KIND_LOCK, 0), l2 = th_open(s, "l2", PT_KIND_RLOCK, 0);
    pt_call c = {.name = "c", .kind = PT_KIND_CONDITION, .timeout = -1};

    (void)state;
    th_open_cond(s, "c", 0);
    c.lock_handle = l1;
    assert_error(call_open_full(s, &c), PT_EEXIST,
                 "exists over its own RLock, asked Lock 'l1'; open it with the same lock");
    th_open_cond(s, "c2", l1);
    c.name = "c2";
    c.lock_handle = 0;
    assert_error(call_open_full(s, &c), PT_EEXIST, "exists over Lock 'l1', asked its own RLock");
    c.lock_handle = l2;
    assert_error(call_open_full(s, &c), PT_EEXIST, "asked RLock 'l2'");
    /* the same lock object through another handle is fine */
    c.lock_handle = th_open(s, "l1", PT_KIND_LOCK, 0);
    assert_int_equal(call_open_full(s, &c)->status, 0);
}

static void test_open_condition_lock_handle_rules(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ev = th_open(a, "e", PT_KIND_EVENT, 0);
    pt_call c = {.name = "c", .kind = PT_KIND_CONDITION, .timeout = -1, .lock_handle = 9};

    (void)state;
    assert_error(call_open_full(a, &c), PT_EBADHANDLE, "lock handle 9 is not open");
    c.lock_handle = ev;
    assert_error(call_open_full(a, &c), PT_EKIND, "lock handle 1 is an Event");
    /* handles are per session: b has no handle 1 */
    c.lock_handle = 1;
    assert_error(call_open_full(b, &c), PT_EBADHANDLE, NULL);
    assert_int_equal(th_stats().objects, 1);
}

static void test_open_flag_rules(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "x", .kind = PT_KIND_LOCK, .timeout = -1};

    (void)state;
    c.flags = PT_OPEN_EXCL | PT_OPEN_EXISTING;
    assert_error(call_open_full(s, &c), PT_EINVAL, "can never succeed");
    c.flags = 1u << 20;
    assert_error(call_open_full(s, &c), PT_EINVAL, "unknown flag bits");
    c.flags = 0;
    c.mode = 01777;
    assert_error(call_open_full(s, &c), PT_EINVAL, "mode 01777");
    assert_int_equal(th_stats().objects, 0);
}

static void test_mode_and_creator_recorded(void **state)
{
    pt_session *s = th_session();
    pt_call c = {.name = "m", .kind = PT_KIND_LOCK, .timeout = -1, .mode = 0640};
    uint32_t h1 = th_open(s, "d", PT_KIND_LOCK, 0);
    uint32_t h2 = call_open_full(s, &c)->handle;
    const pt_obj *o1 = pt__handle_get(s, h1)->obj, *o2 = pt__handle_get(s, h2)->obj;

    (void)state;
    assert_int_equal(o1->mode, PT_DEFAULT_MODE);
    assert_int_equal(o2->mode, 0640);
    assert_int_equal(o1->uid, 1000);
    assert_int_equal(o1->gid, 1000);
}

static void test_bad_handles(void **state)
{
    pt_session *s = th_session();
    uint32_t h;

    (void)state;
    assert_error(call_acquire(s, 0, 1, 1, -1, 0), PT_EBADHANDLE, "handle 0: acquire");
    assert_error(call_acquire(s, 5, 1, 1, -1, 0), PT_EBADHANDLE, "not open in this session");
    assert_error(call_close(s, 1), PT_EBADHANDLE, "handle 1: close");
    assert_error(call_state(s, UINT32_MAX, 0), PT_EBADHANDLE, NULL);
    h = th_open(s, "l", PT_KIND_LOCK, 0);
    assert_answer(call_close(s, h), 1);
    assert_error(call_close(s, h), PT_EBADHANDLE, NULL);
    assert_error(call_release(s, h, 1, 1, 0), PT_EBADHANDLE, NULL);
    assert_error(call_op(s, PT_OP_EVENT_SET, h), PT_EBADHANDLE, NULL);
}

static void test_handle_numbers_are_reused(void **state)
{
    pt_session *s = th_session();
    uint32_t h[200];

    (void)state;
    for (int i = 0; i < 200; i++) {
        h[i] = th_open(s, "l", PT_KIND_LOCK, 0);
        assert_int_equal(h[i], (uint32_t)i + 1);
    }
    assert_answer(call_close(s, h[7]), 1);
    assert_answer(call_close(s, h[150]), 1);
    assert_int_equal(th_open(s, "e", PT_KIND_EVENT, 0), h[150]);
    assert_int_equal(th_open(s, "e", PT_KIND_EVENT, 0), h[7]);
    assert_int_equal(th_open(s, "e", PT_KIND_EVENT, 0), 201);
    assert_int_equal(call_state(s, h[7], 0)->state.kind, PT_KIND_EVENT);
    assert_int_equal(call_state(s, h[8], 0)->state.kind, PT_KIND_LOCK);
}

static void test_wrong_kind_for_op(void **state)
{
    pt_session *s = th_session();
    uint32_t l = th_open(s, "l", PT_KIND_LOCK, 0), e = th_open(s, "e", PT_KIND_EVENT, 0);
    uint32_t b = th_open_barrier(s, "b", 2, -1), sem = th_open_sem(s, "s", 1, 0, 0);

    (void)state;
    assert_error(call_notify(s, l, 1, 1), PT_EKIND,
                 "Lock 'l': notify: a Lock has no notify; it applies to Condition");
    assert_error(call_wait(s, sem, 1, -1, 0), PT_EKIND, "Semaphore 's': wait");
    assert_error(call_set(s, l), PT_EKIND, "it applies to Event");
    assert_error(call_clear(s, b), PT_EKIND, NULL);
    assert_error(call_event_wait(s, l, -1, 0), PT_EKIND, NULL);
    assert_error(call_acquire(s, e, 1, 1, -1, 0), PT_EKIND,
                 "applies to Lock, RLock, Condition, Semaphore, BoundedSemaphore");
    assert_error(call_release(s, b, 1, 1, 0), PT_EKIND, NULL);
    assert_error(call_bwait(s, sem, 1, -1, 0, 0), PT_EKIND, "applies to Barrier");
    assert_error(call_action_done(s, e, 0, 0), PT_EKIND, NULL);
    assert_error(call_abort(s, l), PT_EKIND, NULL);
    assert_error(call_reset(s, e), PT_EKIND, NULL);
    assert_false(call_state(s, l, 1)->state.locked);
}

static void test_unknown_and_hello_ops(void **state)
{
    pt_session *s = th_session();

    (void)state;
    assert_error(call_op(s, PT_OP_HELLO, 0), PT_EPROTO, "hello");
    assert_error(call_op(s, (pt_op)0, 0), PT_EPROTO, "unknown operation 0");
    /* 17-20 are the daemon's inspection, never the core's */
    assert_error(call_op(s, (pt_op)17, 0), PT_EPROTO, "unknown operation 17");
    assert_error(call_op(s, PT_OP_MAX_, 0), PT_EPROTO, "unknown operation 22");
    assert_error(call_op(s, (pt_op)-3, 0), PT_EPROTO, NULL);
}

static void test_nontransient_object_stays(void **state)
{
    pt_session *a = th_session(), *b;
    uint32_t h = th_open_sem(a, "s", 5, 0, 0);

    (void)state;
    assert_answer(call_acquire(a, h, 1, 1, -1, 0), 1);
    assert_answer(call_close(a, h), 1);
    th_end(a, 0);
    assert_int_equal(th_stats().objects, 1);
    b = th_session();
    assert_int_equal(call_open(b, "s", PT_KIND_SEMAPHORE, PT_OPEN_EXISTING)->state.value, 4);
}

static void test_transient_object_ends_with_last_handle(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "t", PT_KIND_EVENT, PT_OPEN_TRANSIENT);
    uint32_t hb = th_open(b, "t", PT_KIND_EVENT, 0);

    (void)state;
    assert_answer(call_set(a, ha), 1);
    assert_answer(call_close(a, ha), 1);
    assert_int_equal(th_stats().objects, 1);
    assert_answer(call_close(b, hb), 1);
    assert_int_equal(th_stats().objects, 0);
    assert_error(call_open(b, "t", PT_KIND_EVENT, PT_OPEN_EXISTING), PT_ENOENT, NULL);
    /* a new object under the name starts afresh */
    assert_false(call_open(b, "t", PT_KIND_EVENT, 0)->state.is_set);
}

static void test_transient_flag_ignored_when_opening(void **state)
{
    pt_session *s = th_session();
    uint32_t h1 = th_open(s, "x", PT_KIND_LOCK, 0);
    uint32_t h2 = th_open(s, "x", PT_KIND_LOCK, PT_OPEN_TRANSIENT);

    (void)state;
    assert_answer(call_close(s, h1), 1);
    assert_answer(call_close(s, h2), 1);
    assert_int_equal(th_stats().objects, 1);
}

static void test_hold_keeps_transient_lock(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "t", PT_KIND_LOCK, PT_OPEN_TRANSIENT), hb;

    (void)state;
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    assert_answer(call_close(a, ha), 1);
    /* closing never releases: the lock lives on, held */
    assert_int_equal(th_stats().objects, 1);
    hb = th_open(b, "t", PT_KIND_LOCK, PT_OPEN_EXISTING);
    assert_true(call_state(b, hb, 1)->state.locked);
    assert_answer(call_release(b, hb, 1, 1, 0), 1);
    assert_answer(call_close(b, hb), 1);
    assert_int_equal(th_stats().objects, 0);
}

static void test_unlink(void **state)
{
    pt_session *s = th_session();
    uint32_t old = th_open_sem(s, "u", 2, 0, 0);
    const th_rec *r;

    (void)state;
    assert_error(call_unlink(s, "nope"), PT_ENOENT, "unlink: no object named 'nope'");
    assert_error(call_unlink(s, "bad name"), PT_ENAME, NULL);
    assert_answer(call_unlink(s, "u"), 1);
    assert_error(call_unlink(s, "u"), PT_ENOENT, NULL);
    /* the name is free; the old object works through its handle */
    r = call_open(s, "u", PT_KIND_LOCK, 0);
    assert_true(r->created);
    assert_int_equal(th_stats().objects, 2);
    assert_answer(call_acquire(s, old, 1, 1, -1, 0), 1);
    assert_int_equal(call_state(s, old, 1)->state.value, 1);
    assert_answer(call_close(s, old), 1);
    assert_int_equal(th_stats().objects, 1);
}

static void test_unlink_unreferenced_object_ends_now(void **state)
{
    pt_session *s = th_session();

    (void)state;
    assert_answer(call_close(s, th_open(s, "x", PT_KIND_LOCK, 0)), 1);
    assert_int_equal(th_stats().objects, 1);
    assert_answer(call_unlink(s, "x"), 1);
    assert_int_equal(th_stats().objects, 0);
}

static void test_condition_keeps_its_lock(void **state)
{
    pt_session *s = th_session();
    uint32_t l = th_open(s, "l", PT_KIND_LOCK, 0), c = th_open_cond(s, "c", l);

    (void)state;
    assert_answer(call_unlink(s, "l"), 1);
    assert_answer(call_close(s, l), 1);
    assert_int_equal(th_stats().objects, 2);
    assert_answer(call_acquire(s, c, 1, 1, -1, 0), 1);
    assert_answer(call_release(s, c, 1, 1, 0), 1);
    assert_answer(call_unlink(s, "c"), 1);
    assert_answer(call_close(s, c), 1);
    assert_int_equal(th_stats().objects, 0);
}

static void test_limits(void **state)
{
    pt_core_limits lim = {
        .max_objects = 2, .max_handles_per_session = 3, .max_waiters_per_session = 2};
    pt_session *s, *t;
    uint32_t e;

    (void)state;
    th_teardown(NULL);
    th_init(&lim);
    s = th_session();
    t = th_session();
    th_open(s, "a", PT_KIND_LOCK, 0);
    e = th_open(s, "e", PT_KIND_EVENT, 0);
    assert_error(call_open(s, "c", PT_KIND_LOCK, 0), PT_ELIMIT, "too many objects (limit 2)");
    th_open(s, "a", PT_KIND_LOCK, 0);
    assert_error(call_open(s, "a", PT_KIND_LOCK, 0), PT_ELIMIT,
                 "too many handles in this session (limit 3)");
    th_open(t, "e", PT_KIND_EVENT, 0);
    assert_null(call_event_wait(s, e, -1, 0));
    assert_null(call_event_wait(s, e, 5, 0));
    assert_error(call_event_wait(s, e, -1, 0), PT_ELIMIT, "too many parked calls");
    /* other sessions have their own budget */
    assert_null(call_event_wait(t, 1, -1, 0));
    assert_answer(call_set(s, e), 1);
    assert_int_equal(th_stats().waiters, 0);
    /* answered waiters give their places back */
    assert_answer(call_clear(s, e), 1);
    assert_null(call_event_wait(s, e, -1, 0));
    assert_null(call_event_wait(s, e, -1, 0));
    assert_error(call_event_wait(s, e, -1, 0), PT_ELIMIT, NULL);
}

static void test_condition_own_lock_not_counted(void **state)
{
    pt_core_limits lim = {.max_objects = 1};
    pt_session *s;

    (void)state;
    th_teardown(NULL);
    th_init(&lim);
    s = th_session();
    th_open_cond(s, "c", 0);
    assert_int_equal(th_stats().objects, 1);
}

static void test_sessions_and_stats(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    pt_core_stats st;

    (void)state;
    assert_int_equal(pt_core_session_id(a), 1);
    assert_int_equal(pt_core_session_id(b), 2);
    assert_null(pt_core_session_udata(a));
    st = th_stats();
    assert_int_equal(st.sessions, 2);
    assert_int_equal(st.calls, 0);
    th_open(a, "x", PT_KIND_LOCK, 0);
    call_state(a, 1, 0);
    assert_int_equal(th_stats().calls, 2);
    th_end(a, 0);
    assert_int_equal(th_stats().sessions, 1);
    assert_int_equal(pt_core_session_id(th_session()), 3);
}

static void test_session_udata(void **state)
{
    int marker;
    pt_session *s = pt_core_session_new(th_core(), NULL, &marker);

    (void)state;
    assert_ptr_equal(pt_core_session_udata(s), &marker);
    th_end(s, 0);
}

static void test_many_names(void **state)
{
    pt_session *s = th_session();
    char name[32];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "obj/%d", i);
        assert_true(call_open(s, name, PT_KIND_EVENT, 0)->created);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(name, sizeof(name), "obj/%d", i);
        assert_answer(call_unlink(s, name), 1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "obj/%d", i);
        assert_int_equal(call_open(s, name, PT_KIND_EVENT, PT_OPEN_EXISTING)->status,
                         i % 2 ? 0 : PT_ENOENT);
    }
}

typedef struct seen {
    int n;
    char names[8][16];
    pt_core_object_info info[8];
} seen;

static void collect(void *ctx, const pt_core_object_info *info)
{
    seen *sn = ctx;

    assert_true(sn->n < 8);
    snprintf(sn->names[sn->n], sizeof(sn->names[0]), "%.*s", (int)info->name_len, info->name);
    sn->info[sn->n++] = *info;
}

static void test_inspection(void **state)
{
    pt_session *s = th_session();
    uint32_t l = th_open(s, "l", PT_KIND_LOCK, 0);
    seen sn = {0};

    (void)state;
    th_open_cond(s, "c", 0);
    th_open_sem(s, "s", 3, 1, PT_OPEN_TRANSIENT);
    assert_answer(call_acquire(s, l, 1, 1, -1, 0), 1);
    assert_answer(call_unlink(s, "l"), 1);
    assert_int_equal(pt_core_session_peer(s)->pid, 4242);
    assert_int_equal(pt_core_session_peer(s)->uid, 1000);
    pt_core_foreach_object(th_core(), collect, &sn);
    /* the condition's own RLock is part of it, not listed */
    assert_int_equal(sn.n, 3);
    assert_string_equal(sn.names[0], "l");
    assert_string_equal(sn.names[1], "c");
    assert_string_equal(sn.names[2], "s");
    assert_true(sn.info[0].unlinked);
    assert_int_equal(sn.info[0].refs, 2);
    assert_true(sn.info[0].state.locked);
    assert_int_equal(sn.info[0].state.owner_depth, 0);
    assert_int_equal(sn.info[1].kind, PT_KIND_CONDITION);
    assert_true(sn.info[2].transient);
    assert_int_equal(sn.info[2].state.value, 3);
    assert_int_equal(sn.info[2].mode, PT_DEFAULT_MODE);
    assert_int_equal(sn.info[2].uid, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_open_creates_then_opens),
        TH_TEST(test_open_invalid_name),
        TH_TEST(test_open_unknown_kind),
        TH_TEST(test_open_excl),
        TH_TEST(test_open_existing),
        TH_TEST(test_open_as_other_kind),
        TH_TEST(test_open_with_other_semaphore_params),
        TH_TEST(test_open_with_other_barrier_params),
        TH_TEST(test_open_condition_with_other_lock),
        TH_TEST(test_open_condition_lock_handle_rules),
        TH_TEST(test_open_flag_rules),
        TH_TEST(test_mode_and_creator_recorded),
        TH_TEST(test_bad_handles),
        TH_TEST(test_handle_numbers_are_reused),
        TH_TEST(test_wrong_kind_for_op),
        TH_TEST(test_unknown_and_hello_ops),
        TH_TEST(test_nontransient_object_stays),
        TH_TEST(test_transient_object_ends_with_last_handle),
        TH_TEST(test_transient_flag_ignored_when_opening),
        TH_TEST(test_hold_keeps_transient_lock),
        TH_TEST(test_unlink),
        TH_TEST(test_unlink_unreferenced_object_ends_now),
        TH_TEST(test_condition_keeps_its_lock),
        TH_TEST(test_limits),
        TH_TEST(test_condition_own_lock_not_counted),
        TH_TEST(test_sessions_and_stats),
        TH_TEST(test_session_udata),
        TH_TEST(test_many_names),
        TH_TEST(test_inspection),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
