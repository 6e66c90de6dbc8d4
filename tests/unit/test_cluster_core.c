/*
 * test_cluster_core.c - the cluster's copy of the core (daemon/cluster_core.c):
 * three hosts' copies fed the same entries in the same order reach the same
 * state, and each answers only its own host's connections: a lock handed
 * from a host to another, FIFO across hosts, a timeout expired by whichever
 * host appends the EXPIRE, a host gone freeing what its sessions held, hosts'
 * clocks that disagree, and entries that are refused alike by every copy;
 * a copy restored from another's snapshot, fed the rest of the log, gives
 * the answers and reaches the state of the copies that applied it all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_core.h"
#include "journal.h"

#define NHOSTS      3
#define MAX_ANSWERS 64
#define SEC         1000000000ull
#define T0          (1800000000ull * SEC) /* a wall-clock time in nanoseconds */

typedef struct answer {
    uint64_t conn, id;
    int status, ok;
    uint64_t token;
    uint32_t handle;
    char message[256];
} answer;

/* One host: its copy and the answers it gave its connections. */
typedef struct host {
    const char *name;
    pt_ccore *cc;
    answer got[MAX_ANSWERS];
    size_t n;
} host;

static host hosts[NHOSTS] = {{.name = "alpha"}, {.name = "beta"}, {.name = "gamma"}};
/* A copy of beta's restored from a snapshot: fed the log too once made. */
static host restored = {.name = "beta"};

static void on_answer(void *ctx, uint64_t conn, const pt_result *res)
{
    host *h = ctx;

    assert_true(h->n < MAX_ANSWERS);
    h->got[h->n] = (answer){conn, res->id, res->status, res->ok, res->token, res->handle, ""};
    snprintf(h->got[h->n].message, sizeof(h->got[h->n].message), "%s",
             res->message ? res->message : "");
    h->n++;
}

/* The hand-backs owners asked for, appended after the entry that made
 * them ask, as pythreadd appends them. */
typedef struct wanted {
    int from;
    uint64_t serial;
} wanted;
static wanted wants[16];
static size_t nwants;
static int hold_wants; /* 1: the hand-backs wait for deliver_wants */

static void on_wanted(void *ctx, uint64_t serial)
{
    host *h = ctx;

    assert_true(nwants < sizeof(wants) / sizeof(wants[0]));
    wants[nwants++] = (wanted){(int)(h - hosts), serial};
}

static int setup(void **state)
{
    (void)state;
    nwants = 0;
    hold_wants = 0;
    for (int i = 0; i < NHOSTS; i++) {
        hosts[i].n = 0;
        hosts[i].cc = pt_ccore_new(hosts[i].name, on_answer, &hosts[i]);
        if (hosts[i].cc == NULL)
            return -1;
        pt_ccore_set_wanted(hosts[i].cc, on_wanted);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NHOSTS; i++)
        pt_ccore_free(hosts[i].cc);
    pt_ccore_free(restored.cc);
    restored.cc = NULL;
    restored.n = 0;
    return 0;
}

static void deliver_wants(void);

/* The log: every copy applies the entry of host `from`, in turn. */
static void deliver(int from, uint8_t *p, size_t len)
{
    char err[256];

    for (int i = 0; i < NHOSTS; i++)
        if (pt_ccore_apply(hosts[i].cc, hosts[from].name, p, len, err, sizeof(err)) != 0)
            fail_msg("%s applying %s's entry: %s", hosts[i].name, hosts[from].name, err);
    if (restored.cc != NULL &&
        pt_ccore_apply(restored.cc, hosts[from].name, p, len, err, sizeof(err)) != 0)
        fail_msg("the restored copy applying %s's entry: %s", hosts[from].name, err);
    free(p);
    if (!hold_wants)
        deliver_wants();
}

static void deliver_wants(void)
{
    uint8_t *p;
    size_t len;

    while (nwants > 0) {
        wanted w = wants[0];

        memmove(wants, wants + 1, --nwants * sizeof(wants[0]));
        assert_int_equal(pt_ccore_enc_hand_back(w.serial, &p, &len), 0);
        deliver(w.from, p, len);
    }
}

/* Every host's copy is gone (its lease ended), on every copy. */
static void host_gone(int which)
{
    for (int i = 0; i < NHOSTS; i++)
        pt_ccore_host_gone(hosts[i].cc, hosts[which].name);
    if (restored.cc != NULL)
        pt_ccore_host_gone(restored.cc, hosts[which].name);
}

/* An entry every copy refuses alike; the message each gives. */
static void refused(int from, uint8_t *p, size_t len, const char *says)
{
    char err[256];

    for (int i = 0; i < NHOSTS; i++) {
        err[0] = '\0';
        assert_int_equal(pt_ccore_apply(hosts[i].cc, hosts[from].name, p, len, err, sizeof(err)),
                         -1);
        if (strstr(err, says) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\"", hosts[i].name, err, says);
    }
    free(p);
}

static void session_new(int from, uint64_t conn, int pid)
{
    pt_peer peer = {.pid = pid, .uid = 1000, .gid = 1000};
    uint8_t *p;
    size_t len;

    assert_int_equal(pt_ccore_enc_session_new(conn, &peer, &p, &len), 0);
    deliver(from, p, len);
}

static void call(int from, uint64_t conn, const Pythread__Request *req, uint64_t now)
{
    uint8_t *p;
    size_t len;

    assert_int_equal(pt_ccore_enc_call(conn, req, now, &p, &len), 0);
    deliver(from, p, len);
}

static void expire(int from, uint64_t now)
{
    uint8_t *p;
    size_t len;

    assert_int_equal(pt_ccore_enc_expire(now, &p, &len), 0);
    deliver(from, p, len);
}

/* An open of a named object of kind; lock: a Condition's lock handle. */
static void open_kind(int from, uint64_t conn, uint64_t id, const char *name, int kind,
                      uint32_t lock, uint64_t now)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs open = PYTHREAD__OPEN_ARGS__INIT;

    req.id = id;
    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = strlen(name);
    open.has_kind = open.has_mode = 1;
    open.kind = kind;
    open.mode = 0600;
    open.has_lock_handle = lock != 0;
    open.lock_handle = lock;
    req.open = &open;
    call(from, conn, &req, now);
}

static void open_lock(int from, uint64_t conn, uint64_t id, const char *name, uint64_t now)
{
    open_kind(from, conn, id, name, PT_KIND_LOCK, 0, now);
}

static void open_cond(int from, uint64_t conn, uint64_t id, const char *name, uint32_t lock,
                      uint64_t now)
{
    open_kind(from, conn, id, name, PT_KIND_CONDITION, lock, now);
}

/* An acquire (timeout < 0: none) or a release of handle. */
static Pythread__Request lock_req(uint64_t id, int op, uint32_t handle, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.id = id;
    req.op = op;
    req.has_thread = req.has_handle = 1;
    req.thread = 7;
    req.handle = handle;
    if (timeout >= 0) {
        req.has_timeout = 1;
        req.timeout = timeout;
    }
    return req;
}

static void lock_op(int from, uint64_t conn, uint64_t id, int op, uint32_t handle, double timeout,
                    uint64_t now)
{
    Pythread__Request req = lock_req(id, op, handle, timeout);

    call(from, conn, &req, now);
}

static const answer *last(int h)
{
    assert_true(hosts[h].n > 0);
    return &hosts[h].got[hosts[h].n - 1];
}

/* What a copy holds of the object: [locked, token]. */
typedef struct seen {
    int locked;
    uint64_t token;
    int n;
} seen;

static void object_seen(void *ctx, const pt_core_object_info *info)
{
    seen *s = ctx;

    s->locked = info->state.locked;
    s->token = info->state.token;
    s->n++;
}

/* Every copy has the same one object in the same state. */
static void copies_agree(int locked)
{
    seen first = {0};

    for (int i = 0; i < NHOSTS; i++) {
        seen s = {0};

        pt_core_foreach_object(pt_ccore_core(hosts[i].cc), object_seen, &s);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.locked, locked);
        if (i == 0)
            first = s;
        assert_int_equal(s.token, first.token);
    }
}

/* Each host's connection 1 opens "L" (the handle is each session's own);
 * alpha takes it, beta and gamma wait; alpha's release hands it to beta,
 * beta's to gamma, in the order they asked, with growing tokens; and each
 * copy answered only its own host's connection. */
static void test_handoff_fifo_across_hosts(void **state)
{
    uint64_t t = T0;

    (void)state;
    for (int h = 0; h < NHOSTS; h++) {
        session_new(h, 1, 100 + h);
        open_lock(h, 1, 1, "L", t);
        assert_int_equal(last(h)->status, 0);
    }
    for (int h = 0; h < NHOSTS; h++)
        assert_int_equal(hosts[h].n, 1); /* its own open, no other's */
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, last(0)->handle, -1, t += SEC);
    assert_true(last(0)->ok);
    assert_true(last(0)->token > T0); /* tokens start at the log's first time */
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, last(1)->handle, -1, t += SEC);
    lock_op(2, 1, 2, PYTHREAD__OP__OP_ACQUIRE, last(2)->handle, -1, t += SEC);
    assert_int_equal(hosts[1].n, 1); /* waiting */
    assert_int_equal(hosts[2].n, 1);
    copies_agree(1);
    lock_op(0, 1, 3, PYTHREAD__OP__OP_RELEASE, hosts[0].got[0].handle, -1, t += SEC);
    assert_int_equal(hosts[1].n, 2);
    assert_int_equal(last(1)->id, 2);
    assert_true(last(1)->ok);
    assert_true(last(1)->token > hosts[0].got[1].token);
    assert_int_equal(hosts[2].n, 1); /* gamma still waits */
    lock_op(1, 1, 3, PYTHREAD__OP__OP_RELEASE, hosts[1].got[0].handle, -1, t += SEC);
    assert_true(last(2)->ok);
    assert_true(last(2)->token > hosts[1].got[1].token);
    copies_agree(1);
    assert_int_equal(pt_ccore_sessions(hosts[0].cc), 3);
    assert_true(pt_ccore_has_session(hosts[0].cc, 1));
    assert_false(pt_ccore_has_session(hosts[0].cc, 2));
}

/* beta waits with a timeout of 2 s: an EXPIRE from any host before it
 * ends changes nothing; one after it answers beta's call False, on
 * beta's copy, and every copy drops the waiter alike. */
static void test_timeout_expired_by_any_host(void **state)
{
    uint64_t t = T0;

    (void)state;
    session_new(0, 1, 100);
    session_new(1, 1, 200);
    open_lock(0, 1, 1, "L", t);
    open_lock(1, 1, 1, "L", t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[0].got[0].handle, -1, t);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[1].got[0].handle, 2.0, t);
    assert_int_equal(pt_ccore_next_deadline(hosts[2].cc), t + 2 * SEC);
    expire(2, t + SEC);
    assert_int_equal(hosts[1].n, 1);
    expire(0, t + 2 * SEC + 1);
    assert_int_equal(hosts[1].n, 2);
    assert_int_equal(last(1)->id, 2);
    assert_false(last(1)->ok);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_next_deadline(hosts[i].cc), PT_DEADLINE_NONE);
    copies_agree(1);
}

/* A host's clock behind the others': its entry's time does not take the
 * copies' time back, so a wait it starts counts from the later time. */
static void test_time_never_goes_back(void **state)
{
    uint64_t t = T0 + 10 * SEC;

    (void)state;
    session_new(0, 1, 100);
    session_new(2, 1, 300);
    open_lock(0, 1, 1, "L", t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[0].got[0].handle, -1, t);
    open_lock(2, 1, 1, "L", t - 5 * SEC); /* gamma's clock is 5 s behind */
    assert_int_equal(pt_ccore_now(hosts[1].cc), t);
    lock_op(2, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[2].got[0].handle, 1.0, t - 5 * SEC);
    assert_int_equal(pt_ccore_next_deadline(hosts[0].cc), t + SEC);
    expire(2, t - 4 * SEC + 1); /* by gamma's clock, its wait is over: not by the log's */
    assert_int_equal(hosts[2].n, 1);
    expire(0, t + SEC);
    assert_false(last(2)->ok);
}

/* alpha holds L and beta waits; alpha's host goes (its lease expired): on
 * every copy its sessions end there, L goes to beta, and an entry alpha's
 * old connection sends after that is refused alike. */
static void test_host_gone_frees_its_holds(void **state)
{
    uint64_t t = T0;
    uint8_t *p;
    size_t len;

    (void)state;
    session_new(0, 1, 100);
    session_new(0, 2, 101);
    session_new(1, 1, 200);
    open_lock(0, 1, 1, "L", t);
    open_lock(1, 1, 1, "L", t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[0].got[0].handle, -1, t);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[1].got[0].handle, -1, t);
    assert_int_equal(hosts[1].n, 1);
    for (int i = 0; i < NHOSTS; i++)
        pt_ccore_host_gone(hosts[i].cc, "alpha");
    assert_int_equal(hosts[1].n, 2);
    assert_true(last(1)->ok);
    copies_agree(1);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_sessions(hosts[i].cc), 1);
    assert_int_equal(pt_ccore_enc_session_end(1, t, &p, &len), 0);
    refused(0, p, len, "host 'alpha' named connection 1, which has no session");
    /* a call alpha's daemon sent before it knew: refused by every copy,
     * and alpha's tells its caller the session is gone */
    hosts[0].n = 0;
    {
        Pythread__Request req = PYTHREAD__REQUEST__INIT;

        req.id = 9;
        req.op = PYTHREAD__OP__OP_RELEASE;
        req.has_handle = 1;
        req.handle = 1;
        assert_int_equal(pt_ccore_enc_call(1, &req, t, &p, &len), 0);
    }
    refused(0, p, len, "host 'alpha' named connection 1, which has no session");
    assert_int_equal(hosts[0].n, 1); /* from alpha's copy alone */
    assert_int_equal(last(0)->id, 9);
    assert_int_equal(last(0)->status, PT_ESESSION);
    assert_int_equal(hosts[1].n, 2);
    assert_int_equal(hosts[2].n, 0);
}

/* alpha's connections 1 and 2 hold L1 and L2; beta's 2 waits for L1 and
 * its 1 for L2. alpha gone: its sessions end oldest first, as the log
 * opened them (not in the order of the copy's hash buckets, where 2 comes
 * before 1), so L1 is granted first, to beta's 2. */
static void test_host_gone_ends_sessions_oldest_first(void **state)
{
    uint64_t t = T0;

    (void)state;
    session_new(0, 1, 100);
    session_new(0, 2, 101);
    session_new(1, 1, 200);
    session_new(1, 2, 201);
    open_lock(0, 1, 1, "L1", t);
    open_lock(0, 2, 1, "L2", t);
    open_lock(1, 2, 1, "L1", t);
    open_lock(1, 1, 1, "L2", t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[0].got[0].handle, -1, t);
    lock_op(0, 2, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[0].got[1].handle, -1, t);
    lock_op(1, 2, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[1].got[0].handle, -1, t);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hosts[1].got[1].handle, -1, t);
    assert_int_equal(hosts[1].n, 2); /* both wait */
    pt_ccore_host_gone(hosts[1].cc, "alpha");
    assert_int_equal(hosts[1].n, 4);
    assert_int_equal(hosts[1].got[2].conn, 2); /* L1, alpha's 1 ended first */
    assert_int_equal(hosts[1].got[3].conn, 1);
}

/* What no host appends, or what cannot be: refused by every copy, with
 * the same words, and nothing changes. */
static void test_bad_entries_refused_alike(void **state)
{
    Pythread__Request hello = PYTHREAD__REQUEST__INIT, show = PYTHREAD__REQUEST__INIT;
    pt_peer peer = {.pid = 1, .uid = 0, .gid = 0};
    uint8_t *p;
    size_t len;
    char err[128];

    (void)state;
    session_new(0, 1, 100);
    p = malloc(4);
    memcpy(p, "\xff\xff\xff\xff", 4);
    refused(0, p, 4, "that is not a record");
    assert_int_equal(pt_ccore_enc_session_new(1, &peer, &p, &len), 0);
    refused(0, p, len, "opened connection 1's session twice");
    hello.id = 5;
    hello.op = PYTHREAD__OP__OP_HELLO;
    assert_int_equal(pt_ccore_enc_call(1, &hello, T0, &p, &len), 0);
    refused(0, p, len, "not an object's operation");
    show.id = 6;
    show.op = PYTHREAD__OP__OP_SHOW;
    assert_int_equal(pt_ccore_enc_call(1, &show, T0, &p, &len), 0);
    refused(0, p, len, "not an object's operation");
    assert_int_equal(pt_ccore_enc_call(9, &show, T0, &p, &len), 0);
    refused(1, p, len, "host 'beta' named connection 9, which has no session");
    assert_int_equal(hosts[1].n, 1); /* beta's caller is told its session is gone */
    assert_int_equal(last(1)->status, PT_ESESSION);
    hosts[1].n = 0;
    assert_int_equal(pt_ccore_apply(hosts[0].cc, "", (const uint8_t *)"", 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no name"));
    for (int i = 0; i < NHOSTS; i++) {
        assert_int_equal(pt_ccore_sessions(hosts[i].cc), 1);
        assert_int_equal(hosts[i].n, 0);
    }
    assert_null(pt_ccore_new("", on_answer, NULL));
}

/* The core of a copy as a journal snapshot: two cores in the same state,
 * objects, holders, waiters in order, deadlines, tokens, sessions and
 * their handles, give the same bytes. */
static uint8_t *core_bytes(pt_ccore *cc, size_t *len)
{
    pt_journal *j = pt_journal_new();
    const uint8_t *b;
    uint8_t *copy;

    assert_non_null(j);
    assert_int_equal(pt_journal_snapshot(j, pt_ccore_core(cc), NULL, NULL), 0);
    b = pt_journal_bytes(j, len);
    copy = malloc(*len ? *len : 1);
    assert_non_null(copy);
    memcpy(copy, b, *len);
    pt_journal_free(j);
    return copy;
}

static void same_state(pt_ccore *a, pt_ccore *b)
{
    size_t alen, blen;
    uint8_t *ab = core_bytes(a, &alen), *bb = core_bytes(b, &blen);

    assert_int_equal(alen, blen);
    assert_memory_equal(ab, bb, alen);
    free(ab);
    free(bb);
    assert_int_equal(pt_ccore_sessions(a), pt_ccore_sessions(b));
    assert_int_equal(pt_ccore_now(a), pt_ccore_now(b));
    assert_int_equal(pt_ccore_next_deadline(a), pt_ccore_next_deadline(b));
}

/* The answers beta's copy gave from index `from` on, and the restored
 * copy's: the same, one for one. */
static void same_answers(size_t from)
{
    assert_int_equal(hosts[1].n - from, restored.n);
    for (size_t i = 0; i < restored.n; i++) {
        const answer *a = &hosts[1].got[from + i], *b = &restored.got[i];

        assert_int_equal(a->conn, b->conn);
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->status, b->status);
        assert_int_equal(a->ok, b->ok);
        assert_int_equal(a->token, b->token);
        assert_int_equal(a->handle, b->handle);
    }
}

static void close_handle(int from, uint64_t conn, uint64_t id, uint32_t handle, uint64_t now)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.id = id;
    req.op = PYTHREAD__OP__OP_CLOSE;
    req.has_handle = 1;
    req.handle = handle;
    call(from, conn, &req, now);
}

/* A log with locks held, waiters queued (some with deadlines), closed
 * handles and hosts' clocks apart; gamma's copy is snapshot half way and
 * restored as a copy of beta's. Fed the rest (an EXPIRE, hand-offs, a new
 * session, a host gone), the restored copy answers beta's connections as
 * beta's own copy does, with the same tokens and handles, and every copy
 * ends in the same state. */
static void test_snapshot_restored_copy_goes_on_alike(void **state)
{
    uint64_t t = T0 + 100 * SEC;
    uint8_t *snap;
    size_t len, mark;
    char err[256];
    uint32_t a1, a2, b1, b2, g1;

    (void)state;
    session_new(0, 1, 100);
    session_new(0, 2, 101);
    session_new(1, 1, 200);
    session_new(1, 2, 201);
    session_new(2, 1, 300);
    open_lock(0, 1, 1, "X", t); /* a handle closed: its number is reused */
    close_handle(0, 1, 2, hosts[0].got[0].handle, t);
    open_lock(0, 1, 3, "L", t);
    a1 = last(0)->handle;
    assert_int_equal(a1, hosts[0].got[0].handle);
    open_lock(0, 2, 1, "M", t);
    a2 = last(0)->handle;
    open_lock(1, 1, 1, "L", t);
    b1 = last(1)->handle;
    open_lock(1, 2, 1, "M", t);
    b2 = last(1)->handle;
    open_lock(2, 1, 1, "L", t);
    g1 = last(2)->handle;
    lock_op(0, 1, 4, PYTHREAD__OP__OP_ACQUIRE, a1, -1, t += SEC);
    lock_op(0, 2, 2, PYTHREAD__OP__OP_ACQUIRE, a2, -1, t);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, b1, -1, t += SEC);     /* waits */
    lock_op(2, 1, 2, PYTHREAD__OP__OP_ACQUIRE, g1, 5.0, t - 3 * SEC); /* behind: waits 5 s */
    lock_op(1, 2, 2, PYTHREAD__OP__OP_ACQUIRE, b2, 30.0, t += SEC);   /* waits for M */

    assert_int_equal(pt_ccore_snapshot(hosts[2].cc, &snap, &len), 0);
    restored.cc = pt_ccore_restore("beta", on_answer, &restored, snap, len, err, sizeof(err));
    if (restored.cc == NULL)
        fail_msg("restoring: %s", err);
    free(snap);
    for (int i = 0; i < NHOSTS; i++)
        same_state(hosts[i].cc, restored.cc);
    assert_true(pt_ccore_has_session(restored.cc, 1));
    assert_true(pt_ccore_has_session(restored.cc, 2));
    assert_false(pt_ccore_has_session(restored.cc, 3));
    mark = hosts[1].n;

    expire(0, t + 4 * SEC); /* gamma's wait is over: 5 s from the log's time, not its clock's */
    assert_false(last(2)->ok);
    lock_op(0, 1, 5, PYTHREAD__OP__OP_RELEASE, a1, -1, t += SEC); /* L to beta's 1 */
    session_new(1, 3, 202);
    open_lock(1, 3, 1, "L", t);
    lock_op(1, 3, 2, PYTHREAD__OP__OP_ACQUIRE, last(1)->handle, 1.0, t += SEC);
    open_lock(0, 1, 6, "Y", t);
    host_gone(0);           /* M to beta's 2 */
    expire(2, t + 2 * SEC); /* beta's 3 times out */
    lock_op(1, 1, 3, PYTHREAD__OP__OP_RELEASE, b1, -1, t += 3 * SEC);
    lock_op(1, 3, 3, PYTHREAD__OP__OP_ACQUIRE, hosts[1].got[hosts[1].n - 2].handle, -1, t);

    assert_true(hosts[1].n - mark >= 5);
    same_answers(mark);
    for (int i = 0; i < NHOSTS; i++)
        same_state(hosts[i].cc, restored.cc);
    assert_true(pt_ccore_has_session(restored.cc, 3));
}

/* A snapshot of a copy that just started (no entry, no token base yet):
 * the restored copy takes its token base from the first entry, as the
 * others do. */
static void test_snapshot_before_any_entry(void **state)
{
    uint8_t *snap;
    size_t len;
    char err[256];

    (void)state;
    assert_int_equal(pt_ccore_snapshot(hosts[0].cc, &snap, &len), 0);
    restored.cc = pt_ccore_restore("beta", on_answer, &restored, snap, len, err, sizeof(err));
    free(snap);
    assert_non_null(restored.cc);
    session_new(1, 1, 200);
    open_lock(1, 1, 1, "L", T0);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, last(1)->handle, -1, T0 + SEC);
    same_answers(0);
    assert_true(last(1)->token > T0);
    for (int i = 0; i < NHOSTS; i++)
        same_state(hosts[i].cc, restored.cc);
}

/* Bytes that are no snapshot, or one cut short, are refused with the
 * reason; nothing is half made. */
static void test_snapshot_refused(void **state)
{
    uint8_t *snap;
    size_t len;
    char err[256];

    (void)state;
    session_new(0, 1, 100);
    open_lock(0, 1, 1, "L", T0);
    assert_int_equal(pt_ccore_snapshot(hosts[0].cc, &snap, &len), 0);
    err[0] = '\0';
    assert_null(pt_ccore_restore("beta", on_answer, NULL, (const uint8_t *)"\xff\xff", 2, err,
                                 sizeof(err)));
    assert_non_null(strstr(err, "not one"));
    for (size_t cut = 1; cut < len; cut += len / 7 + 1) {
        pt_ccore *cc = pt_ccore_restore("beta", on_answer, NULL, snap, len - cut, err, sizeof(err));

        assert_null(cc);
        assert_true(strlen(err) > 0);
    }
    assert_null(pt_ccore_restore("", on_answer, NULL, snap, len, err, sizeof(err)));
    free(snap);
}

/* ------------------------------------------------------------------ */
/* Owned locks (daemon/cluster_own.c)                                   */
/* ------------------------------------------------------------------ */

/* An entry answered ahead by its host, for the log to bring later. */
typedef struct later {
    uint8_t *p;
    size_t len;
} later;

static uint64_t ahead_ids;

/* Host `from` answers conn's call req ahead, as pythreadd does once
 * pt_ccore_ahead_ok says it may: the answer comes out now. */
static later ahead(int from, uint64_t conn, const Pythread__Request *req)
{
    later e;
    size_t n = hosts[from].n, back = pt_ccore_ahead(hosts[from].cc);

    assert_int_equal(pt_ccore_ahead_ok(hosts[from].cc, conn, req), 1);
    assert_int_equal(pt_ccore_enc_ahead(hosts[from].cc, conn, req, ++ahead_ids, &e.p, &e.len), 0);
    pt_ccore_apply_ahead(hosts[from].cc, conn, req, ahead_ids);
    assert_int_equal(hosts[from].n, n + 1);
    assert_int_equal(pt_ccore_ahead(hosts[from].cc), back + 1);
    return e;
}

/* The owner of object `name` on copy h (NULL for none). */
typedef struct named {
    const char *name;
    uint64_t serial;
    int found;
} named;

static void serial_of(void *ctx, const pt_core_object_info *info)
{
    named *n = ctx;

    if (strcmp(info->name, n->name) == 0) {
        n->serial = info->serial;
        n->found = 1;
    }
}

static const char *owner(int h, const char *name)
{
    named n = {name, 0, 0};

    pt_core_foreach_object(pt_ccore_core(hosts[h].cc), serial_of, &n);
    assert_true(n.found);
    return pt_ccore_owner(hosts[h].cc, n.serial);
}

static void owned_by(const char *name, const char *who)
{
    for (int i = 0; i < NHOSTS; i++) {
        const char *o = owner(i, name);

        if (who == NULL)
            assert_null(o);
        else
            assert_string_equal(o, who);
    }
}

static void all_same_state(void)
{
    for (int i = 1; i < NHOSTS; i++)
        same_state(hosts[0].cc, hosts[i].cc);
}

/* Each host's connection 1 opens "L"; the handles, in hosts' order. */
static void three_open(uint32_t handle[NHOSTS], uint64_t t)
{
    for (int h = 0; h < NHOSTS; h++) {
        session_new(h, 1, 100 + h);
        open_lock(h, 1, 1, "L", t);
        handle[h] = last(h)->handle;
    }
}

/* alpha's acquire makes L alpha's; its release and acquire are answered
 * ahead, by alpha's copy alone and at once, with a growing token; when the
 * log brings them, alpha's copy passes over them (no second answer) and
 * every copy reaches the same state. beta's acquire is held until alpha
 * hands L back, then waits behind alpha's hold, and is granted at alpha's
 * release with a larger token than any alpha was given ahead. */
static void test_owned_lock_answered_ahead(void **state)
{
    uint32_t hd[NHOSTS];
    uint64_t t = T0;
    Pythread__Request req;
    later rel, acq;
    uint64_t tok;

    (void)state;
    three_open(hd, t);
    owned_by("L", NULL);
    req = lock_req(2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0); /* nobody's yet */
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    tok = last(0)->token;
    owned_by("L", "alpha");
    req = lock_req(3, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[1].cc, 1, &req), 0); /* not beta's */
    rel = ahead(0, 1, &req);
    assert_int_equal(last(0)->id, 3);
    assert_true(last(0)->ok);
    req = lock_req(4, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1);
    acq = ahead(0, 1, &req);
    assert_true(last(0)->ok);
    assert_true(last(0)->token > tok);
    tok = last(0)->token;
    assert_int_equal(hosts[1].n, 1); /* beta and gamma heard nothing */
    assert_int_equal(hosts[2].n, 1);

    deliver(0, rel.p, rel.len);
    deliver(0, acq.p, acq.len);
    assert_int_equal(pt_ccore_ahead(hosts[0].cc), 0);
    assert_int_equal(hosts[0].n, 4); /* open, acquire, release, acquire: no more */
    copies_agree(1);
    all_same_state();

    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[1], -1, t += SEC); /* held, handed back */
    owned_by("L", NULL);
    assert_int_equal(hosts[1].n, 1); /* waits behind alpha's hold */
    req = lock_req(5, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0); /* L is no longer alpha's */
    lock_op(0, 1, 5, PYTHREAD__OP__OP_RELEASE, hd[0], -1, t += SEC);
    assert_int_equal(last(1)->id, 2);
    assert_true(last(1)->ok);
    assert_true(last(1)->token > tok);
    owned_by("L", "beta");
    copies_agree(1);
    all_same_state();
}

/* alpha answered an acquire ahead whose entry never reached the log, and
 * its membership ended: every copy (alpha's too, which takes back what it
 * answered ahead) jumps L's token, so beta's grant is above the token alpha
 * gave, and the copies agree. The lost entries, arriving late, are refused
 * alike (their session is gone). */
static void test_owner_gone_tokens_jump(void **state)
{
    uint32_t hd[NHOSTS];
    uint64_t t = T0;
    Pythread__Request req;
    later rel, acq;
    uint64_t given;

    (void)state;
    three_open(hd, t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    req = lock_req(3, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    rel = ahead(0, 1, &req);
    req = lock_req(4, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1);
    acq = ahead(0, 1, &req);
    given = last(0)->token;

    host_gone(0);
    assert_int_equal(pt_ccore_ahead(hosts[0].cc), 0);
    owned_by("L", NULL);
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[1], -1, t += SEC);
    assert_true(last(1)->ok);
    assert_true(last(1)->token > given);
    assert_true(last(1)->token - given > PT_CCORE_AHEAD_MAX - 2);
    /* The objects agree; alpha's copy alone counted the two calls in its
     * counters (calls served, acquires), which is all it keeps of them. */
    copies_agree(1);
    same_state(hosts[1].cc, hosts[2].cc);
    refused(0, rel.p, rel.len, "no session");
    refused(0, acq.p, acq.len, "no session");
    copies_agree(1);
    same_state(hosts[1].cc, hosts[2].cc);
}

/* A held session's entries keep their order: beta's acquire (held) and its
 * session's end both wait for the hand-back, then the acquire queues and
 * the end takes it out; gamma, after, waits and gets L at alpha's release.
 * beta hears nothing; an owned lock with a waiter, one wanted, a blocking
 * acquire of a held lock are not answered ahead, a non-blocking one is. */
static void test_held_session_keeps_its_order(void **state)
{
    uint32_t hd[NHOSTS];
    uint64_t t = T0;
    Pythread__Request req;
    later nb;
    uint8_t *p;
    size_t len;

    (void)state;
    three_open(hd, t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    req = lock_req(3, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0); /* it would wait */
    req = lock_req(3, PYTHREAD__OP__OP_ACQUIRE, hd[0], 0);
    nb = ahead(0, 1, &req); /* refused at once */
    assert_false(last(0)->ok);
    deliver(0, nb.p, nb.len);

    hold_wants = 1;
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[1], -1, t += SEC);
    assert_int_equal(pt_ccore_enc_session_end(1, t += SEC, &p, &len), 0);
    deliver(1, p, len);
    assert_int_equal(pt_ccore_sessions(hosts[0].cc), 3); /* its end is kept too */
    req = lock_req(4, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0); /* wanted */
    hold_wants = 0;
    deliver_wants();
    assert_int_equal(pt_ccore_sessions(hosts[0].cc), 2);
    assert_int_equal(hosts[1].n, 1);
    copies_agree(1);

    lock_op(2, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[2], -1, t += SEC);
    assert_int_equal(hosts[2].n, 1);
    req = lock_req(4, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0); /* gamma waits */
    lock_op(0, 1, 4, PYTHREAD__OP__OP_RELEASE, hd[0], -1, t += SEC);
    assert_true(last(2)->ok);
    assert_int_equal(hosts[1].n, 1);
    all_same_state();
}

/* A snapshot of a copy with an owned lock and a held session: the copy
 * restored from it (as beta's) gets the held acquire's answer at the
 * hand-back and the release, as beta's own copy does. */
static void test_snapshot_keeps_owners_and_held(void **state)
{
    uint32_t hd[NHOSTS];
    uint64_t t = T0;
    uint8_t *snap;
    size_t len, mark;
    char err[256];

    (void)state;
    three_open(hd, t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    hold_wants = 1;
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[1], -1, t += SEC);
    assert_int_equal(pt_ccore_snapshot(hosts[2].cc, &snap, &len), 0);
    restored.cc = pt_ccore_restore("beta", on_answer, &restored, snap, len, err, sizeof(err));
    if (restored.cc == NULL)
        fail_msg("restoring: %s", err);
    free(snap);
    mark = hosts[1].n;
    hold_wants = 0;
    deliver_wants();
    lock_op(0, 1, 3, PYTHREAD__OP__OP_RELEASE, hd[0], -1, t += SEC);
    assert_true(last(1)->ok);
    same_answers(mark);
    for (int i = 0; i < NHOSTS; i++)
        same_state(hosts[i].cc, restored.cc);
}

/* A Condition's waiters take its lock back at their timeouts, which any
 * host's EXPIRE applies, so a lock under a Condition is nobody's: beta's
 * open of one over alpha's L waits for the hand-back; alpha's own open of
 * one over its M gives M up at once; neither is owned again, and their
 * calls go the log's way. */
static void test_lock_under_condition_is_nobodys(void **state)
{
    uint32_t hd[NHOSTS], m;
    uint64_t t = T0;
    Pythread__Request req;

    (void)state;
    three_open(hd, t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    owned_by("L", "alpha");
    open_cond(1, 1, 2, "C", hd[1], t += SEC); /* held, then made at the hand-back */
    assert_int_equal(last(1)->status, 0);
    owned_by("L", NULL);
    lock_op(0, 1, 3, PYTHREAD__OP__OP_RELEASE, hd[0], -1, t += SEC);
    lock_op(0, 1, 4, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    owned_by("L", NULL);
    req = lock_req(5, PYTHREAD__OP__OP_RELEASE, hd[0], -1);
    assert_int_equal(pt_ccore_ahead_ok(hosts[0].cc, 1, &req), 0);

    open_lock(0, 1, 5, "M", t);
    m = last(0)->handle;
    lock_op(0, 1, 6, PYTHREAD__OP__OP_ACQUIRE, m, -1, t += SEC);
    owned_by("M", "alpha");
    open_cond(0, 1, 7, "D", m, t += SEC);
    owned_by("M", NULL);
    lock_op(0, 1, 8, PYTHREAD__OP__OP_RELEASE, m, -1, t += SEC);
    owned_by("M", NULL);
    all_same_state();
}

/* An owner that does not hand back (stopped, cut off) has the lock as far
 * as the others can tell: beta's acquire with a timeout of 0.5 s is refused
 * by the EXPIRE after 0.5 s and a second of grace, a non-blocking one after
 * the grace, alike on every copy; gamma's blocking acquire waits on, and
 * is queued at the hand-back. */
static void test_held_acquire_times_out(void **state)
{
    uint32_t hd[NHOSTS];
    uint64_t t = T0, asked;
    Pythread__Request req;

    (void)state;
    three_open(hd, t);
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[0], -1, t += SEC);
    hold_wants = 1;
    asked = t += SEC;
    lock_op(1, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[1], 0.5, asked);
    session_new(1, 2, 201);
    open_lock(1, 2, 1, "L", asked);
    req = lock_req(2, PYTHREAD__OP__OP_ACQUIRE, last(1)->handle, -1);
    req.has_blocking = 1;
    req.blocking = 0;
    call(1, 2, &req, asked); /* held too */
    lock_op(2, 1, 2, PYTHREAD__OP__OP_ACQUIRE, hd[2], -1, asked);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_next_deadline(hosts[i].cc), asked + SEC);
    assert_int_equal(hosts[1].n, 2); /* beta: its two opens */
    expire(2, asked + SEC - 1);
    assert_int_equal(hosts[1].n, 2);
    expire(2, asked + SEC);
    assert_int_equal(hosts[1].n, 3);
    assert_int_equal(last(1)->conn, 2);
    assert_false(last(1)->ok);
    expire(0, asked + SEC + SEC / 2);
    assert_int_equal(hosts[1].n, 4);
    assert_int_equal(last(1)->conn, 1);
    assert_int_equal(last(1)->id, 2);
    assert_false(last(1)->ok);
    assert_int_equal(pt_ccore_next_deadline(hosts[1].cc), PT_DEADLINE_NONE);
    hold_wants = 0;
    deliver_wants();
    assert_int_equal(hosts[2].n, 1); /* gamma waits behind alpha */
    lock_op(0, 1, 3, PYTHREAD__OP__OP_RELEASE, hd[0], -1, t += 3 * SEC);
    assert_true(last(2)->ok);
    assert_int_equal(hosts[1].n, 4);
    all_same_state();
}

/* An owned lock that is freed (unlinked, its last handle closed) is owned
 * no more, on every copy. */
static void test_freed_lock_is_owned_no_more(void **state)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    uint64_t t = T0;
    uint32_t h;

    (void)state;
    session_new(0, 1, 100);
    open_lock(0, 1, 1, "L", t);
    h = last(0)->handle;
    lock_op(0, 1, 2, PYTHREAD__OP__OP_ACQUIRE, h, -1, t += SEC);
    lock_op(0, 1, 3, PYTHREAD__OP__OP_RELEASE, h, -1, t += SEC);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_owned(hosts[i].cc, "alpha"), 1);
    req.id = 4;
    req.op = PYTHREAD__OP__OP_UNLINK;
    req.has_name = 1;
    req.name.data = (uint8_t *)"L";
    req.name.len = 1;
    call(0, 1, &req, t += SEC);
    assert_int_equal(last(0)->status, 0);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_owned(hosts[i].cc, "alpha"), 1); /* its handle keeps it */
    close_handle(0, 1, 5, h, t += SEC);
    for (int i = 0; i < NHOSTS; i++)
        assert_int_equal(pt_ccore_owned(hosts[i].cc, "alpha"), 0);
    all_same_state();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handoff_fifo_across_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_expired_by_any_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_never_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_gone_frees_its_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_gone_ends_sessions_oldest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries_refused_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_restored_copy_goes_on_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_before_any_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_lock_answered_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_gone_tokens_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_session_keeps_its_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_keeps_owners_and_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_under_condition_is_nobodys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_acquire_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_lock_is_owned_no_more, setup, teardown),
    };

    return cmocka_run_group_tests_name("unit.cluster_core", tests, NULL, NULL);
}
