/*
 * test_fast_core.c - the core's side of the shared words (core/fast.c),
 * with words the test writes itself: what a word says is taken as if it
 * had been requested, nonsense in a word is bounded and the core's own
 * invariants come back, and every object claimed in an entry is published
 * once after it.
 */
#include <string.h>

#include "harness.h"

#define NCELLS 16

typedef struct cell {
    int used;
    int kind;
    pt_core_fast_view word; /* what a claim reads */
    int claimed;            /* claimed and not published yet */
    int claims;
    int publishes;
    pt_core_fast_state last; /* the last publish */
} cell;

static cell cells[NCELLS + 1];
static int created_calls, claim_calls, freed_calls; /* every hook call since setup */

static uint32_t fake_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    (void)ctx, (void)owned, (void)uid, (void)gid, (void)mode;
    created_calls++;
    for (uint32_t i = 1; i <= NCELLS; i++) {
        if (!cells[i].used) {
            cells[i] = (cell){.used = 1, .kind = kind, .claimed = 1};
            return i;
        }
    }
    return 0;
}

static void fake_claim(void *ctx, uint32_t i, int kind, pt_core_fast_view *v)
{
    (void)ctx;
    assert_true(cells[i].used);
    assert_int_equal(cells[i].kind, kind);
    assert_false(cells[i].claimed); /* once per entry */
    claim_calls++;
    cells[i].claimed = 1;
    cells[i].claims++;
    *v = cells[i].word;
}

static void fake_freed(void *ctx, uint32_t i)
{
    (void)ctx;
    freed_calls++;
    cells[i].used = 0;
}

/* Without slot hooks an owned semaphore has no cell. */
static const pt_core_fast_hooks hooks = {
    .created = fake_created, .claim = fake_claim, .freed = fake_freed};

/* Owned semaphores' slots: ids SLOT0, SLOT0 + 1, ... in the order opened. */
#define SLOT0  100u
#define NSLOTS 8

static struct {
    int used;
    int64_t count;
} slots[NSLOTS];
static int slots_freed;

static uint32_t fake_slot_new(void *ctx, uint32_t object)
{
    (void)ctx;
    assert_true(cells[object].used);
    for (uint32_t i = 0; i < NSLOTS; i++) {
        if (!slots[i].used) {
            slots[i].used = 1;
            slots[i].count = 0;
            return SLOT0 + i;
        }
    }
    return 0;
}

static int64_t fake_slot_read(void *ctx, uint32_t slot)
{
    (void)ctx;
    assert_true(slots[slot - SLOT0].used);
    return slots[slot - SLOT0].count;
}

static void fake_slot_free(void *ctx, uint32_t slot)
{
    (void)ctx;
    assert_true(slots[slot - SLOT0].used);
    slots[slot - SLOT0].used = 0;
    slots_freed++;
}

static const pt_core_fast_hooks slot_hooks = {.created = fake_created,
                                              .claim = fake_claim,
                                              .freed = fake_freed,
                                              .slot_new = fake_slot_new,
                                              .slot_read = fake_slot_read,
                                              .slot_free = fake_slot_free};

/* What the daemon does after every entry: the words say what the core says. */
static void publish(void)
{
    pt_core_fast_state st;

    while (pt_core_fast_next(th_core(), &st)) {
        cell *c = &cells[st.cell];

        assert_true(c->used);
        assert_true(c->claimed);
        c->claimed = 0;
        c->publishes++;
        c->last = st;
        if (st.busy) { /* left claimed: only the busy client's slot moves */
            c->word.value = st.value;
            continue;
        }
        c->word = (pt_core_fast_view){.holder = st.holder,
                                      .thread = st.thread,
                                      .depth = st.depth,
                                      .token = st.token,
                                      .value = st.value};
    }
    for (int i = 1; i <= NCELLS; i++)
        assert_false(cells[i].used && cells[i].claimed);
}

static int setup(void **state)
{
    memset(cells, 0, sizeof(cells));
    created_calls = claim_calls = freed_calls = 0;
    th_setup(state);
    pt_core_set_fast_hooks(th_core(), &hooks, NULL);
    return 0;
}

static int setup_slots(void **state)
{
    setup(state);
    memset(slots, 0, sizeof(slots));
    slots_freed = 0;
    pt_core_set_fast_hooks(th_core(), &slot_hooks, NULL);
    return 0;
}

/* The cell of the object the last open created. */
static cell *last_cell(void)
{
    for (int i = NCELLS; i >= 1; i--) {
        if (cells[i].used)
            return &cells[i];
    }
    fail_msg("no cell");
    return NULL;
}

static void test_which_objects_get_a_word(void **state)
{
    pt_session *s = th_session();
    int n = 0;

    (void)state;
    th_open(s, "l", PT_KIND_LOCK, 0);
    th_open(s, "r", PT_KIND_RLOCK, 0);
    th_open(s, "e", PT_KIND_EVENT, 0);
    th_open_sem(s, "s", 2, 0, 0);
    th_open_sem(s, "b", 2, 1, PT_OPEN_UNOWNED);
    th_open_sem(s, "owned", 2, 1, 0);
    th_open(s, "nofast", PT_KIND_LOCK, PT_OPEN_NOFAST);
    th_open_cond(s, "c", 0);
    th_open_barrier(s, "bar", 2, -1);
    publish();
    for (int i = 1; i <= NCELLS; i++)
        n += cells[i].used;
    assert_int_equal(n, 5);
    assert_int_equal(cells[4].last.value, 2);
}

/* A hold taken through the word is the core's hold: others are refused or
 * wait, the state and the token follow it, and its release through the
 * word hands the lock to the first waiter. */
static void test_hold_through_the_word(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb;
    cell *c;
    const th_rec *r;
    uint64_t id;

    (void)state;
    publish();
    c = last_cell();
    hb = th_open(b, "l", PT_KIND_LOCK, 0);
    publish();
    c->word.holder = a;
    c->word.thread = 7;
    c->word.depth = 1;
    c->word.token += 5;
    assert_answer(call_acquire(b, hb, 1, 0, -1, 0), 0);
    publish();
    assert_int_equal(c->last.holder, a);
    r = call_state(b, hb, 1);
    assert_int_equal(r->state.locked, 1);
    assert_int_equal(r->state.token, c->word.token);
    publish();
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    id = th_last_id();
    publish();
    assert_int_equal(c->last.waiters, 1);
    /* The word says free although a call waits: only a client writing
     * nonsense can do that (PARKED sends the holder's release to the
     * daemon), and the next claim gives the lock to the waiter, with the
     * next token. */
    c->word.holder = NULL;
    call_state(a, ha, 7);
    publish();
    r = th_find(id);
    assert_answer(r, 1);
    assert_int_equal(r->token, c->last.token);
    assert_int_equal(c->last.holder, b);
    assert_int_equal(c->last.waiters, 0);
    assert_answer(call_release(b, hb, 1, 1, 0), 1);
    publish();
    assert_null(c->last.holder);
}

/* Tokens only grow: a word that counts back is ignored. */
static void test_token_never_goes_back(void **state)
{
    pt_session *a = th_session();
    uint32_t h = th_open(a, "l", PT_KIND_LOCK, 0);
    cell *c;
    const th_rec *r;
    uint64_t t;

    (void)state;
    publish();
    c = last_cell();
    r = call_acquire(a, h, 1, 1, -1, 0);
    t = r->token;
    assert_answer(call_release(a, h, 1, 1, 0), 1);
    publish();
    c->word.token = t + 50; /* fifty acquires through the word */
    call_state(a, h, 1);
    publish();
    c->word.token = t + 10;
    r = call_acquire(a, h, 1, 1, -1, 0);
    assert_int_equal(r->token, t + 51);
    publish();
}

/* A session that ends while its word says it holds: the hold ends with it
 * and the waiter behind gets the lock. */
static void test_session_end_frees_a_word_hold(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hb;
    cell *c;
    uint64_t id;

    (void)state;
    th_open(a, "r", PT_KIND_RLOCK, 0);
    publish();
    c = last_cell();
    hb = th_open(b, "r", PT_KIND_RLOCK, 0);
    publish();
    c->word.holder = a;
    c->word.thread = 3;
    c->word.depth = 4;
    assert_null(call_acquire(b, hb, 9, 1, -1, 0));
    id = th_last_id();
    publish();
    assert_int_equal(c->last.depth, 4);
    th_end(a, 0);
    publish();
    assert_answer(th_find(id), 1);
    assert_int_equal(c->last.holder, b);
    assert_int_equal(c->last.thread, 9);
    assert_int_equal(c->last.depth, 1);
}

/* A semaphore's value comes from its word, within bounds; permits found
 * there go to waiters first. */
static void test_semaphore_value_from_the_word(void **state)
{
    pt_session *a = th_session();
    uint32_t h = th_open_sem(a, "b", 2, 1, PT_OPEN_UNOWNED);
    cell *c;
    uint64_t id;
    const th_rec *r;

    (void)state;
    publish();
    c = last_cell();
    c->word.value = 0;
    assert_null(call_acquire(a, h, 1, 1, -1, 0));
    id = th_last_id();
    publish();
    assert_int_equal(c->last.waiters, 1);
    c->word.value = 1000; /* past the bound of 2 */
    r = call_state(a, h, 1);
    assert_answer(th_find(id), 1);
    assert_int_equal(r->state.value, 1);
    publish();
    assert_int_equal(c->last.value, 1);
    c->word.value = -5;
    r = call_state(a, h, 1);
    assert_int_equal(r->state.value, 0);
    publish();
}

typedef struct holds {
    const pt_session *s;
    uint64_t count;
    int holders;
} holds;

static void holder_seen(void *ctx, const pt_core_party *p)
{
    holds *h = ctx;

    if (p->role != PT_PARTY_HOLDER)
        return;
    h->holders++;
    if (p->session == h->s)
        h->count = p->count;
}

/* What inspection says s holds of the semaphore "o", and its value. */
static uint64_t held(pt_session *s, int64_t *value)
{
    pt_core_object_detail d;
    holds h = {.s = s};

    pt_core_fast_claim_all(th_core());
    assert_int_equal(pt_core_inspect_object(th_core(), s, "o", 1, 0, &d, holder_seen, &h), 0);
    publish();
    *value = d.info.state.value;
    return h.count;
}

/* The value and what a and b hold. */
static uint64_t held_total(pt_session *a, pt_session *b)
{
    int64_t value;
    uint64_t n = held(a, &value);

    n += held(b, &value);
    return n + (uint64_t)value;
}

/* Each session's steps through the word count in its slot; a release of
 * more than a session holds counts the other holders down (oldest first),
 * and past every hold the value of an unbounded semaphore just grows. */
static void test_owned_slots_count_holds(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hb;
    cell *c;
    int64_t value;

    (void)state;
    th_open_sem(a, "o", 1, 0, PT_OPEN_OWNED);
    hb = th_open_sem(b, "o", 1, 0, PT_OPEN_OWNED);
    publish();
    c = last_cell();
    assert_true(slots[0].used && slots[1].used);
    slots[0].count = 1; /* a acquires */
    c->word.value = 0;
    c->word.slot = SLOT0;
    assert_int_equal(held(a, &value), 1);
    assert_int_equal(value, 0);
    slots[1].count = -1; /* b releases one it does not hold */
    c->word.value = 1;
    c->word.slot = SLOT0 + 1;
    assert_int_equal(held(a, &value), 0);
    assert_int_equal(held(b, &value), 0);
    assert_int_equal(value, 1);
    slots[1].count = -3; /* and two more: nobody holds any */
    c->word.value = 3;
    c->word.slot = SLOT0 + 1;
    assert_int_equal(held(b, &value), 0);
    assert_int_equal(value, 3);
    slots[0].count = 2; /* a's acquire through the word, b's slot as it was */
    c->word.value = 2;
    c->word.slot = SLOT0;
    assert_int_equal(held(a, &value), 1);
    assert_int_equal(call_acquire(b, hb, 1, 1, -1, 0)->ok, 1);
    assert_int_equal(held(b, &value), 1);
    assert_int_equal(value, 1);
    th_end(a, 0);
    publish();
    assert_int_equal(held(b, &value), 1);
    assert_int_equal(value, 2);
    assert_int_equal(slots_freed, 1);
}

/* A slot found busy: its session holds what the total leaves, the word is
 * left claimed until the client has counted its step, and a death in
 * between gives back exactly what it held. */
static void test_owned_busy_slot(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    cell *c;
    int64_t value;

    (void)state;
    th_open_sem(a, "o", 2, 1, 0);
    th_open_sem(b, "o", 2, 1, 0);
    publish();
    c = last_cell();
    c->word.value = 1; /* a's CAS took a permit; its slot says nothing yet */
    c->word.slot = SLOT0;
    c->word.busy = 1;
    assert_int_equal(held(a, &value), 1);
    assert_int_equal(value, 1);
    assert_int_equal(c->last.busy, 1);
    slots[0].count = 1; /* a counts it and clears BUSY */
    c->word.busy = 0;
    assert_int_equal(held(a, &value), 1); /* not twice */
    assert_int_equal(c->last.busy, 0);
    slots[0].count = 1; /* a releases: CAS, then dies before its slot */
    c->word.value = 2;
    c->word.busy = 1;
    c->word.slot = SLOT0;
    assert_int_equal(held(b, &value), 0);
    assert_int_equal(value, 2);
    th_end(a, 0);
    publish();
    assert_int_equal(held(b, &value), 0);
    assert_int_equal(value, 2); /* nothing given back twice */
    assert_int_equal(c->last.busy, 0);
}

/* The last handle's close ends the slot; what it counted stays held until
 * the session ends. A client's nonsense in a slot keeps the bound. */
static void test_owned_close_and_nonsense(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open_sem(a, "o", 2, 1, 0);
    uint32_t ha2 = th_open_sem(a, "o", 2, 1, 0);
    cell *c;
    int64_t value;

    (void)state;
    th_open_sem(b, "o", 2, 1, 0);
    publish();
    c = last_cell();
    assert_false(slots[2].used); /* one slot per session */
    slots[0].count = 1;
    c->word.value = 1;
    c->word.slot = SLOT0;
    call_close(a, ha);
    publish();
    assert_int_equal(slots_freed, 0);
    call_close(a, ha2);
    publish();
    assert_int_equal(slots_freed, 1);
    assert_int_equal(held(a, &value), 1);
    assert_int_equal(value, 1);
    /* b writes nonsense: the value and the holds still add up to 2 (the
     * core's invariants, checked after every call, hold too). */
    slots[1].count = INT64_MAX;
    c->word.many = 1;
    assert_int_equal(held_total(a, b), 2);
    slots[1].count = INT64_MIN;
    c->word.many = 1;
    assert_int_equal(held_total(a, b), 2);
    th_end(a, 0);
    th_end(b, 0);
    publish();
}

/* A session that finds no slot left works through the daemon: its hold is
 * the daemon's alone, and the slots of the others still count. */
static void test_owned_without_a_slot(void **state)
{
    pt_session *s[NSLOTS + 1];
    uint32_t h[NSLOTS + 1];
    int64_t value;

    (void)state;
    for (int i = 0; i <= NSLOTS; i++) {
        s[i] = th_session();
        h[i] = th_open_sem(s[i], "o", 2, 1, 0);
    }
    publish();
    for (int i = 0; i < NSLOTS; i++)
        assert_true(slots[i].used);
    assert_int_equal(call_acquire(s[NSLOTS], h[NSLOTS], 1, 1, -1, 0)->ok, 1);
    assert_int_equal(held(s[NSLOTS], &value), 1);
    assert_int_equal(value, 1);
    th_end(s[NSLOTS], 0);
    publish();
    assert_int_equal(held(s[0], &value), 0);
    assert_int_equal(value, 2);
    assert_int_equal(slots_freed, 0);
}

/* An object that ends in an entry is not published; its cell is free. */
static void test_ended_object_is_not_published(void **state)
{
    pt_session *a = th_session();
    uint32_t h = th_open(a, "gone", PT_KIND_LOCK, PT_OPEN_TRANSIENT);
    cell *c;
    int pubs;

    (void)state;
    publish();
    c = last_cell();
    pubs = c->publishes;
    call_close(a, h);
    publish();
    assert_false(c->used);
    assert_int_equal(c->publishes, pubs);
}

/* ---- restart: sessions stay, what their words said is reclaimed ---- */

/* The daemon's restart: the core's entry, then the publish after it. */
static void restart(uint64_t now, uint64_t jump, const pt_core_reclaim *rc, size_t n)
{
    pt_core_restart(th_core(), now, jump, rc, n);
    th_check();
    publish();
}

/* A Lock/RLock as inspection tells it: its holder and how many wait. */
typedef struct lock_seen {
    uint64_t holder; /* session id, 0 = free */
    uint64_t thread;
    uint64_t depth;
    int waiting;
    uint64_t first; /* session id of the first waiter, 0 = none */
    uint64_t token;
    int locked;
} lock_seen;

static void lock_party(void *ctx, const pt_core_party *p)
{
    lock_seen *v = ctx;

    if (p->role == PT_PARTY_HOLDER) {
        assert_int_equal(v->holder, 0); /* one holder */
        v->holder = pt_core_session_id(p->session);
        v->thread = p->thread;
        v->depth = p->count;
        return;
    }
    if (v->waiting++ == 0)
        v->first = pt_core_session_id(p->session);
}

static lock_seen lock_look(const char *name)
{
    pt_core_object_detail d;
    lock_seen v = {0};

    assert_int_equal(
        pt_core_inspect_object(th_core(), NULL, name, strlen(name), 0, &d, lock_party, &v), 0);
    v.token = d.info.state.token;
    v.locked = d.info.state.locked;
    assert_int_equal(v.locked, v.holder != 0);
    return v;
}

/* The cell a session's handle of a Lock/RLock names now. */
static cell *lock_cell(pt_session *s, uint32_t h)
{
    uint32_t i = pt_core_fast_lock_cell(th_core(), s, h);

    assert_true(i > 0 && i <= NCELLS);
    return &cells[i];
}

/* A holds "l" through the daemon, C waits for it (thread 4); then A's word
 * says free and B's says B holds it (thread 2), the two reclaims in either
 * order. Returns what the lock is then; *waiter_answered: C's call was. */
static lock_seen free_and_held(int held_first, int *waiter_answered, uint64_t *published)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t hc = th_open(c, "l", PT_KIND_LOCK, 0);
    pt_core_reclaim rc[2];
    const th_rec *r;
    uint64_t id, token;

    publish();
    r = call_acquire(a, ha, 1, 1, -1, 0);
    assert_answer(r, 1);
    token = r->token;
    publish();
    assert_null(call_acquire(c, hc, 4, 1, -1, 0));
    id = th_last_id();
    publish();
    rc[held_first ? 1 : 0] =
        (pt_core_reclaim){.session = a, .handle = ha, .state = PT_RECLAIM_FREE};
    rc[held_first ? 0 : 1] = (pt_core_reclaim){
        .session = b, .handle = hb, .state = PT_RECLAIM_HELD, .thread = 2, .token = token + 1};
    restart(TH_S(5), 100, rc, 2);
    *waiter_answered = th_find(id) != NULL;
    *published = lock_cell(b, hb)->last.token;
    return lock_look("l");
}

/* Holds the words ended are dropped before the ones they name are taken,
 * and a drop grants nothing: the order of the reclaims does not matter. */
static void test_restart_free_and_held_in_any_order(void **state)
{
    lock_seen first, second;
    int answered_first, answered_second;
    uint64_t token_first, token_second;

    first = free_and_held(0, &answered_first, &token_first);
    th_teardown(state);
    setup(state);
    second = free_and_held(1, &answered_second, &token_second);
    assert_int_equal(first.holder, 2); /* b: the core's second session */
    assert_int_equal(first.thread, 2);
    assert_int_equal(first.depth, 1);
    assert_int_equal(first.waiting, 1);
    assert_int_equal(first.first, 3);
    assert_false(answered_first); /* c still waits: it never had the lock */
    assert_memory_equal(&first, &second, sizeof(first));
    assert_int_equal(answered_first, answered_second);
    assert_int_equal(token_first, token_second);
}

/* A lock the core says a holds, a's word says free and nobody's word holds:
 * the first waiter gets it at the restart, its token past every token the
 * words may have given (token_jump past the core's last); the one behind
 * goes on waiting. Sessions stay. */
static void test_restart_free_lock_goes_to_first_waiter(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t hc = th_open(c, "l", PT_KIND_LOCK, 0);
    pt_core_reclaim rc = {.session = a, .handle = ha, .state = PT_RECLAIM_FREE};
    uint64_t before = 0, idb, idc;
    const th_rec *r;
    lock_seen v;

    (void)state;
    publish();
    for (int i = 0; i < 3; i++) { /* a few tokens given through the daemon */
        r = call_acquire(a, ha, 1, 1, -1, 0);
        assert_answer(r, 1);
        assert_true(r->token > before);
        before = r->token;
        publish();
        if (i < 2) {
            assert_answer(call_release(a, ha, 1, 1, 0), 1);
            publish();
        }
    }
    assert_null(call_acquire(b, hb, 7, 1, -1, 0));
    idb = th_last_id();
    publish();
    assert_null(call_acquire(c, hc, 8, 1, -1, 0));
    idc = th_last_id();
    publish();
    restart(TH_S(9), 1000, &rc, 1);
    r = th_find(idb);
    assert_answer(r, 1);
    assert_true(r->token > before + 1000);
    assert_int_equal(r->token, before + 1000 + 1);
    assert_null(th_find(idc));
    v = lock_look("l");
    assert_int_equal(v.holder, pt_core_session_id(b));
    assert_int_equal(v.thread, 7);
    assert_int_equal(v.token, r->token);
    assert_int_equal(v.waiting, 1);
    assert_int_equal(th_stats().sessions, 3);
    assert_int_equal(lock_cell(b, hb)->last.token, r->token);
    assert_ptr_equal(lock_cell(b, hb)->last.holder, b);
    /* and on: b's release hands it to c, the token still growing */
    assert_answer(call_release(b, hb, 7, 1, 0), 1);
    publish();
    assert_answer(th_find(idc), 1);
    assert_int_equal(th_find(idc)->token, r->token + 1);
}

/* A word that handed the lock to the first waiter: the waiter's session
 * says it holds it (same thread), so its call is answered acquired, with
 * the word's token, at the restart, and only then: its session's release
 * hands the lock on to the next waiter, never back to it. */
static void test_restart_held_answers_the_handed_waiter(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t hc = th_open(c, "l", PT_KIND_LOCK, 0);
    pt_core_reclaim rc[2];
    uint64_t idb, idc, t;
    const th_rec *r;
    size_t mark;
    lock_seen v;

    (void)state;
    publish();
    r = call_acquire(a, ha, 1, 1, -1, 0);
    t = r->token;
    publish();
    assert_null(call_acquire(b, hb, 5, 1, -1, 0));
    idb = th_last_id();
    publish();
    assert_null(call_acquire(c, hc, 6, 1, -1, 0));
    idc = th_last_id();
    publish();
    rc[0] = (pt_core_reclaim){.session = a, .handle = ha, .state = PT_RECLAIM_FREE};
    rc[1] = (pt_core_reclaim){.session = b,
                              .handle = hb,
                              .state = PT_RECLAIM_HELD,
                              .thread = 5,
                              .depth = 1,
                              .token = t + 1};
    mark = th_count();
    restart(TH_S(3), 50, rc, 2);
    assert_int_equal(th_since(mark), 1); /* b's call, and only it */
    r = th_find(idb);
    assert_answer(r, 1);
    assert_int_equal(r->token, t + 1);
    assert_null(th_find(idc));
    v = lock_look("l");
    assert_int_equal(v.holder, pt_core_session_id(b));
    assert_int_equal(v.thread, 5);
    assert_int_equal(v.waiting, 1);
    assert_int_equal(v.first, pt_core_session_id(c));
    assert_int_equal(v.token, t + 1 + 50);
    mark = th_count();
    assert_answer(call_release(b, hb, 5, 1, 0), 1);
    publish();
    assert_int_equal(th_since(mark), 2); /* the release and c's grant */
    assert_answer(th_find(idc), 1);
    assert_int_equal(th_find(idc)->token, t + 1 + 50 + 1);
    v = lock_look("l");
    assert_int_equal(v.holder, pt_core_session_id(c));
    assert_int_equal(v.waiting, 0);
}

/* Two words say they hold one lock (nonsense a client may write): the
 * first reclaim wins, whichever the core thought held it. */
static void test_restart_first_held_wins(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hb = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t hc = th_open(c, "l", PT_KIND_LOCK, 0);
    uint32_t ra = th_open(a, "r", PT_KIND_RLOCK, 0);
    uint32_t rb = th_open(b, "r", PT_KIND_RLOCK, 0);
    pt_core_reclaim rc[4];
    lock_seen v;

    (void)state;
    publish();
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    publish();
    rc[0] = (pt_core_reclaim){
        .session = c, .handle = hc, .state = PT_RECLAIM_HELD, .thread = 3, .depth = 1};
    rc[1] = (pt_core_reclaim){
        .session = b, .handle = hb, .state = PT_RECLAIM_HELD, .thread = 2, .depth = 1};
    rc[2] = (pt_core_reclaim){
        .session = b, .handle = rb, .state = PT_RECLAIM_HELD, .thread = 2, .depth = 2};
    rc[3] = (pt_core_reclaim){
        .session = a, .handle = ra, .state = PT_RECLAIM_HELD, .thread = 1, .depth = 5};
    restart(TH_S(1), 10, rc, 4);
    v = lock_look("l");
    assert_int_equal(v.holder, pt_core_session_id(c));
    assert_int_equal(v.thread, 3);
    v = lock_look("r");
    assert_int_equal(v.holder, pt_core_session_id(b));
    assert_int_equal(v.thread, 2);
    assert_int_equal(v.depth, 2);
    /* the loser's release is refused: it does not hold it */
    assert_error(call_release(a, ra, 1, 1, 0), PT_ERUNTIME, NULL);
    publish();
}

/* Reclaims of no handle, of a handle of another kind, of a Condition or in
 * no state the core knows change nothing. */
static void test_restart_ignores_reclaims_that_do_not_fit(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hl = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hs = th_open_sem(a, "s", 2, 0, 0);
    uint32_t he = th_open(a, "e", PT_KIND_EVENT, 0);
    uint32_t hc = th_open_cond(a, "c", 0);
    uint32_t bl = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t bs = th_open_sem(b, "s", 2, 0, 0);
    uint32_t bc = th_open_cond(b, "c", 0);
    uint32_t ba = th_open_barrier(b, "bar", 2, -1);
    uint32_t bcl = th_open_cond(b, "cl", bl); /* a Condition over "l" */
    uint32_t bx = th_open(b, "x", PT_KIND_LOCK, 0);
    pt_core_reclaim rc[] = {
        {.session = b, .handle = 0, .state = PT_RECLAIM_HELD, .thread = 1, .token = 1u << 30},
        {.session = b, .handle = 999, .state = PT_RECLAIM_HELD, .thread = 1},
        {.session = b, .handle = 999, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = 999, .state = PT_RECLAIM_VALUE, .value = 9},
        {.session = a, .handle = 0, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = bs, .state = PT_RECLAIM_HELD, .thread = 1, .depth = 1},
        {.session = a, .handle = hs, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = bl, .state = PT_RECLAIM_VALUE, .value = 7},
        {.session = b, .handle = bl, .state = PT_RECLAIM_SLOT, .value = 7},
        {.session = b, .handle = bs, .state = PT_RECLAIM_SLOT, .value = 7}, /* not owned */
        {.session = a, .handle = he, .state = PT_RECLAIM_FREE},
        {.session = a, .handle = he, .state = PT_RECLAIM_VALUE, .value = 1},
        {.session = b, .handle = bc, .state = PT_RECLAIM_HELD, .thread = 1, .depth = 3},
        {.session = b, .handle = bcl, .state = PT_RECLAIM_HELD, .thread = 1, .depth = 1},
        {.session = a, .handle = hl, .state = PT_RECLAIM_UNKNOWN}, /* a's word tells nothing */
        {.session = b, .handle = bx, .state = PT_RECLAIM_HELD, .thread = 1}, /* closed */
        {.session = a, .handle = hc, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = bc, .state = PT_RECLAIM_VALUE, .value = 3},
        {.session = b, .handle = ba, .state = PT_RECLAIM_HELD, .thread = 1},
        {.session = b, .handle = ba, .state = PT_RECLAIM_VALUE, .value = 3},
        {.session = b, .handle = bl, .state = PT_RECLAIM_UNKNOWN, .thread = 1, .token = 77},
        {.session = b, .handle = bl, .state = 99, .thread = 1},
        {.session = b, .handle = bl, .state = -1, .thread = 1},
    };
    uint64_t token;
    const th_rec *r;
    lock_seen v;

    (void)state;
    publish();
    r = call_acquire(a, hl, 1, 1, -1, 0);
    token = r->token;
    publish();
    assert_answer(call_acquire(a, hs, 1, 1, -1, 0), 1); /* s: 2 -> 1 */
    publish();
    call_close(b, bx);
    publish();
    restart(TH_S(1), 0, rc, sizeof(rc) / sizeof(rc[0]));
    v = lock_look("l");
    assert_int_equal(v.holder, pt_core_session_id(a));
    assert_int_equal(v.thread, 1);
    assert_int_equal(v.token, token);
    r = call_state(b, bs, 1);
    assert_int_equal(r->state.value, 1);
    publish();
    r = call_state(b, bc, 1); /* the Condition's own RLock: nobody holds it */
    assert_int_equal(r->state.locked, 0);
    publish();
    r = call_state(a, he, 1);
    assert_int_equal(r->state.is_set, 0);
    publish();
    assert_answer(call_release(a, hl, 1, 1, 0), 1);
    publish();
    assert_answer(call_acquire(b, bl, 1, 1, -1, 0), 1);
    publish();
    assert_answer(call_acquire(b, bc, 1, 1, -1, 0), 1); /* the Condition's lock is free */
    publish();
    r = call_state(b, th_open(b, "x", PT_KIND_LOCK, 0), 1); /* nobody took "x" */
    assert_int_equal(r->state.locked, 0);
    publish();
}

/* A semaphore's value is the first one a word reports, within its bounds;
 * the permits it finds go to the waiters first. */
static void test_restart_value_first_wins(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t ha = th_open_sem(a, "s", 1, 0, 0);
    uint32_t hb = th_open_sem(b, "s", 1, 0, 0);
    uint32_t hc = th_open_sem(c, "s", 1, 0, 0);
    uint32_t bb = th_open_sem(a, "b", 2, 1, PT_OPEN_UNOWNED);
    uint32_t bc = th_open_sem(c, "b", 2, 1, PT_OPEN_UNOWNED);
    pt_core_reclaim rc[] = {
        {.session = c, .handle = bc, .state = PT_RECLAIM_VALUE, .value = 50}, /* past 2 */
        {.session = b, .handle = hb, .state = PT_RECLAIM_VALUE, .value = 3},
        {.session = c, .handle = hc, .state = PT_RECLAIM_VALUE, .value = 0},
        {.session = a, .handle = bb, .state = PT_RECLAIM_VALUE, .value = 0},
    };
    uint64_t idb, idc;
    const th_rec *r;

    (void)state;
    publish();
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1); /* s: 1 -> 0 */
    publish();
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    idb = th_last_id();
    publish();
    assert_null(call_acquire(c, hc, 1, 1, -1, 0));
    idc = th_last_id();
    publish();
    restart(TH_S(1), 0, rc, sizeof(rc) / sizeof(rc[0]));
    assert_answer(th_find(idb), 1);
    assert_answer(th_find(idc), 1);
    r = call_state(a, ha, 1);
    assert_int_equal(r->state.value, 1); /* 3, less the two waiters' */
    publish();
    r = call_state(a, bb, 1);
    assert_int_equal(r->state.value, 2);
    publish();
}

/* Sessions, handles and waiters stay through a restart; every object that
 * had a cell gets a new one (and is published in it), none without one
 * does, and no old word is read or freed. */
static void test_restart_keeps_sessions_and_gives_new_cells(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hl = th_open(a, "l", PT_KIND_LOCK, 0);
    uint32_t hr = th_open(a, "r", PT_KIND_RLOCK, 0);
    uint32_t bl = th_open(b, "l", PT_KIND_LOCK, 0);
    uint32_t old_l, old_r, new_l, new_r;
    pt_core_stats before, after;
    int with_cell = 0, created, claims, freed;
    uint64_t id;

    (void)state;
    th_open(a, "e", PT_KIND_EVENT, 0);
    th_open_sem(a, "s", 2, 0, 0);
    th_open(a, "nofast", PT_KIND_LOCK, PT_OPEN_NOFAST);
    th_open_cond(a, "c", 0);
    th_open_barrier(b, "bar", 2, -1);
    publish();
    for (int i = 1; i <= NCELLS; i++)
        with_cell += cells[i].used;
    assert_int_equal(with_cell, 4); /* l, r, e, s */
    assert_answer(call_acquire(a, hl, 1, 1, -1, 0), 1);
    publish();
    assert_null(call_acquire(b, bl, 1, 1, -1, 0));
    id = th_last_id();
    publish();
    old_l = pt_core_fast_lock_cell(th_core(), a, hl);
    old_r = pt_core_fast_lock_cell(th_core(), a, hr);
    before = th_stats();
    created = created_calls;
    claims = claim_calls;
    freed = freed_calls;
    restart(TH_S(2), 0, NULL, 0);
    after = th_stats();
    assert_int_equal(after.sessions, 2);
    assert_int_equal(after.sessions, before.sessions);
    assert_int_equal(after.handles, before.handles);
    assert_int_equal(after.waiters, before.waiters);
    assert_int_equal(after.objects, before.objects);
    assert_int_equal(created_calls - created, with_cell);
    assert_int_equal(claim_calls, claims);
    assert_int_equal(freed_calls, freed);
    new_l = pt_core_fast_lock_cell(th_core(), a, hl);
    new_r = pt_core_fast_lock_cell(th_core(), a, hr);
    assert_int_equal(pt_core_fast_lock_cell(th_core(), b, bl), new_l); /* one cell per object */
    assert_true(new_l != 0 && new_l != old_l && new_l != old_r);
    assert_true(new_r != 0 && new_r != old_l && new_r != old_r);
    for (int i = 1; i <= NCELLS; i++) {
        if (i > 4) /* the new cells, each published once */
            assert_int_equal(cells[i].publishes, cells[i].used ? 1 : 0);
    }
    assert_int_equal(cells[new_l].last.holder, a);
    assert_int_equal(cells[new_l].last.waiters, 1);
    /* nothing reclaimed: the core's holds and queue stand */
    assert_null(th_find(id));
    assert_answer(call_release(a, hl, 1, 1, 0), 1);
    publish();
    assert_answer(th_find(id), 1);
}

/* A hold record kept only for its slot goes with the slot at a restart:
 * none is left holding nothing (the invariants), and a transient owned
 * semaphore still ends with its last handle. */
static void test_restart_ends_slot_only_records(void **state)
{
    pt_session *a = th_session();
    uint32_t h;

    (void)state;
    th_open_sem(a, "o", 2, 1, 0);
    h = th_open_sem(a, "t", 2, 1, PT_OPEN_TRANSIENT);
    publish();
    assert_true(slots[0].used && slots[1].used);
    pt_core_restart(th_core(), TH_S(1), 0, NULL, 0);
    publish();
    th_check();
    {
        pt_call c = {.op = PT_OP_CLOSE, .handle = h, .id = 999};

        pt_core_call(th_core(), a, &c, TH_S(1));
    }
    publish();
    assert_int_equal(th_stats().objects, 1);
}

/* A reclaimed token is taken only within what a word can count past the
 * core's: one a client made up neither wraps the lock's tokens nor lifts
 * every later object's. */
static void test_restart_bounds_a_reclaimed_token(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "l", PT_KIND_LOCK, 0), hb = th_open(b, "l", PT_KIND_LOCK, 0), hm;
    pt_core_reclaim rc = {.session = b,
                          .handle = hb,
                          .state = PT_RECLAIM_HELD,
                          .thread = 1,
                          .token = UINT64_MAX - 10};
    uint64_t before, after, m1;

    (void)state;
    publish();
    before = call_acquire(a, ha, 1, 1, -1, 0)->token;
    publish();
    assert_answer(call_release(a, ha, 1, 1, 0), 1);
    publish();
    pt_core_restart(th_core(), TH_S(1), 4096, &rc, 1);
    publish();
    assert_answer(call_release(b, hb, 1, 1, 0), 1); /* b holds it: the word said so */
    publish();
    after = call_acquire(a, ha, 1, 1, -1, 0)->token;
    publish();
    hm = th_open(a, "m", PT_KIND_LOCK, 0);
    publish();
    m1 = call_acquire(a, hm, 1, 1, -1, 0)->token;
    publish();
    assert_true(after > before && after - before <= 4096 + 2);
    assert_true(m1 > after && m1 - after < 8);
}

/* An object with no word: no word can have said anything of it. */
static void test_restart_ignores_reclaims_of_objects_without_words(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ha = th_open(a, "n", PT_KIND_LOCK, PT_OPEN_NOFAST);
    uint32_t hb = th_open(b, "n", PT_KIND_LOCK, 0);
    pt_core_reclaim rc[2] = {
        {.session = b, .handle = hb, .state = PT_RECLAIM_HELD, .thread = 1},
        {.session = a, .handle = ha, .state = PT_RECLAIM_FREE},
    };

    (void)state;
    assert_int_equal(pt_core_fast_lock_cell(th_core(), a, ha), 0);
    assert_answer(call_acquire(a, ha, 1, 1, -1, 0), 1);
    pt_core_restart(th_core(), TH_S(1), 0, rc, 2);
    publish();
    assert_int_equal(lock_look("n").holder, pt_core_session_id(a));
}

/* ---- what the last restart did to each object (restart.c) ---- */

/* The mark inspection shows for name now. */
static int mark(const char *name)
{
    pt_core_object_detail d;

    assert_int_equal(pt_core_inspect_object(th_core(), NULL, name, strlen(name), 0, &d, NULL, NULL),
                     0);
    return d.restart;
}

/* Named objects by mark, each checked against what the caller expects. */
static void marks_count(uint64_t none, uint64_t restored, uint64_t reclaimed, uint64_t released,
                        uint64_t in_grace)
{
    uint64_t n[PT_RESTART_MARKS];

    pt_core_objects_by_restart(th_core(), n);
    assert_int_equal(n[PT_RESTART_NONE], none);
    assert_int_equal(n[PT_RESTART_RESTORED], restored);
    assert_int_equal(n[PT_RESTART_RECLAIMED], reclaimed);
    assert_int_equal(n[PT_RESTART_RELEASED], released);
    assert_int_equal(n[PT_RESTART_IN_GRACE], in_grace);
}

/* A reclaim that says the session holds a lock, ends the hold the core
 * had, or gives a semaphore's value marks the object reclaimed (a
 * Condition shows its lock's); a FREE of a lock the session never held
 * says nothing. The rest is restored as journaled, an object made after
 * is not marked, and the next restart marks everything afresh. */
static void test_restart_marks_what_the_words_decided(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t hl = th_open(a, "l", PT_KIND_LOCK, 0), hm = th_open(a, "m", PT_KIND_LOCK, 0);
    uint32_t bn = th_open(b, "n", PT_KIND_LOCK, 0), bs = th_open_sem(b, "s", 2, 0, 0);
    pt_core_reclaim rc[] = {
        {.session = a, .handle = hl, .state = PT_RECLAIM_HELD, .thread = 1, .depth = 1},
        {.session = a, .handle = hm, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = bn, .state = PT_RECLAIM_FREE},
        {.session = b, .handle = bs, .state = PT_RECLAIM_VALUE, .value = 1},
    };

    (void)state;
    th_open_cond(a, "c", hl);
    th_open(a, "e", PT_KIND_EVENT, 0);
    publish();
    assert_answer(call_acquire(a, hl, 1, 1, -1, 0), 1);
    publish();
    assert_answer(call_acquire(a, hm, 1, 1, -1, 0), 1);
    publish();
    marks_count(6, 0, 0, 0, 0); /* no restart yet */
    restart(TH_S(1), 0, rc, sizeof(rc) / sizeof(rc[0]));
    assert_int_equal(mark("l"), PT_RESTART_RECLAIMED);
    assert_int_equal(mark("c"), PT_RESTART_RECLAIMED);
    assert_int_equal(mark("m"), PT_RESTART_RECLAIMED);
    assert_int_equal(lock_look("m").holder, 0);
    assert_int_equal(mark("n"), PT_RESTART_RESTORED);
    assert_int_equal(mark("s"), PT_RESTART_RECLAIMED);
    assert_int_equal(mark("e"), PT_RESTART_RESTORED);
    th_open(b, "new", PT_KIND_LOCK, 0);
    publish();
    assert_int_equal(mark("new"), PT_RESTART_NONE);
    marks_count(1, 2, 4, 0, 0);
    restart(TH_S(2), 0, NULL, 0);
    /* afresh: "l" (and "c" over it) is still held, by a session that was
     * not awaited, so its process took it up: reclaimed */
    marks_count(0, 5, 2, 0, 0);
    assert_int_equal(mark("l"), PT_RESTART_RECLAIMED);
}

/* While a kept session's process is not back, what it holds is in grace:
 * a lock (and a Condition over it), owned permits, its place as a Barrier
 * party; what its waiting calls wait for is not. Taken up, its objects are
 * as journaled again, and reclaimed once the restart is made; ended after
 * the restart still awaited, what it held
 * is released: the lock goes to the next waiter, the barrier breaks. A
 * session ending later marks nothing. */
static void test_restart_marks_in_grace_and_released(void **state)
{
    pt_session *a = th_session(), *b = th_session(), *c = th_session();
    uint32_t al = th_open(a, "l", PT_KIND_LOCK, 0), cl = th_open(c, "l", PT_KIND_LOCK, 0);
    uint32_t bm = th_open(b, "m", PT_KIND_LOCK, 0), ao = th_open_sem(a, "o", 2, 1, 0);
    uint32_t abar = th_open_barrier(a, "bar", 2, -1);
    uint32_t aw = th_open(a, "w", PT_KIND_LOCK, 0), cw = th_open(c, "w", PT_KIND_LOCK, 0);
    pt_core_object_detail d;
    uint64_t id;

    (void)state;
    th_open_cond(c, "cv", cl);
    th_open(c, "e", PT_KIND_EVENT, 0);
    publish();
    assert_answer(call_acquire(a, al, 1, 1, -1, 0), 1);
    assert_null(call_acquire(c, cl, 3, 1, -1, 0));
    id = th_last_id();
    assert_answer(call_acquire(b, bm, 2, 1, -1, 0), 1);
    assert_answer(call_acquire(a, ao, 1, 1, -1, 0), 1);
    assert_null(call_bwait(a, abar, 1, -1, 0, 0));
    assert_answer(call_acquire(c, cw, 3, 1, -1, 0), 1);
    assert_null(call_acquire(a, aw, 1, 1, -1, 0)); /* a only waits for "w" */
    publish();
    pt_core_words_lost(th_core()); /* the daemon's start: as journaled */
    marks_count(0, 7, 0, 0, 0);
    pt_core_session_awaited(th_core(), a, 1);
    pt_core_session_awaited(th_core(), b, 1);
    assert_int_equal(mark("l"), PT_RESTART_IN_GRACE);
    assert_int_equal(mark("cv"), PT_RESTART_IN_GRACE);
    assert_int_equal(mark("m"), PT_RESTART_IN_GRACE);
    assert_int_equal(mark("o"), PT_RESTART_IN_GRACE);
    assert_int_equal(mark("bar"), PT_RESTART_IN_GRACE);
    assert_int_equal(mark("w"), PT_RESTART_RESTORED);
    assert_int_equal(mark("e"), PT_RESTART_RESTORED);
    pt_core_session_awaited(th_core(), b, 0); /* b's process took it up */
    assert_int_equal(mark("m"), PT_RESTART_RESTORED);
    marks_count(0, 3, 0, 0, 4);
    restart(TH_S(2), 0, NULL, 0);
    th_end(a, TH_S(2));
    publish();
    assert_answer(th_find(id), 1); /* c has "l" now */
    assert_int_equal(lock_look("l").holder, pt_core_session_id(c));
    assert_int_equal(mark("l"), PT_RESTART_RELEASED);
    assert_int_equal(mark("cv"), PT_RESTART_RELEASED);
    assert_int_equal(mark("o"), PT_RESTART_RELEASED);
    assert_int_equal(mark("bar"), PT_RESTART_RELEASED);
    assert_int_equal(pt_core_inspect_object(th_core(), NULL, "bar", 3, 0, &d, NULL, NULL), 0);
    assert_int_equal(d.info.state.broken, 1);
    assert_int_equal(mark("w"), PT_RESTART_RECLAIMED); /* c, never awaited, holds it */
    assert_int_equal(mark("m"), PT_RESTART_RECLAIMED); /* b, taken up, holds it */
    marks_count(0, 1, 2, 4, 0);
    th_end(b, TH_S(3));
    publish();
    assert_int_equal(mark("m"), PT_RESTART_RECLAIMED);
}

/* An owned semaphore's slot: a count that moved, or permits the session
 * holds, reclaim it; a slot that counted nothing for a session holding
 * nothing does not. */
static void test_restart_marks_slots(void **state)
{
    pt_session *a = th_session(), *b = th_session();
    uint32_t ao = th_open_sem(a, "o", 2, 1, 0), bo = th_open_sem(b, "o", 2, 1, 0);
    uint32_t bp = th_open_sem(b, "p", 2, 1, 0);
    pt_core_reclaim rc[] = {
        {.session = b, .handle = bo, .state = PT_RECLAIM_SLOT, .value = 0},
        {.session = b, .handle = bp, .state = PT_RECLAIM_SLOT, .value = 0},
        {.session = a, .handle = ao, .state = PT_RECLAIM_SLOT, .value = 1}, /* took one */
    };
    int64_t value;

    (void)state;
    publish();
    restart(TH_S(1), 0, rc, sizeof(rc) / sizeof(rc[0]));
    assert_int_equal(mark("o"), PT_RESTART_RECLAIMED);
    assert_int_equal(mark("p"), PT_RESTART_RESTORED);
    assert_int_equal(held(a, &value), 1);
    assert_int_equal(value, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_which_objects_get_a_word, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_hold_through_the_word, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_token_never_goes_back, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_session_end_frees_a_word_hold, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_semaphore_value_from_the_word, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_ended_object_is_not_published, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_owned_slots_count_holds, setup_slots, th_teardown),
        cmocka_unit_test_setup_teardown(test_owned_busy_slot, setup_slots, th_teardown),
        cmocka_unit_test_setup_teardown(test_owned_close_and_nonsense, setup_slots, th_teardown),
        cmocka_unit_test_setup_teardown(test_owned_without_a_slot, setup_slots, th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_free_and_held_in_any_order, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_free_lock_goes_to_first_waiter, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_held_answers_the_handed_waiter, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_first_held_wins, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_ignores_reclaims_that_do_not_fit, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_value_first_wins, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_ends_slot_only_records, setup_slots,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_bounds_a_reclaimed_token, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_ignores_reclaims_of_objects_without_words,
                                        setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_sessions_and_gives_new_cells, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_marks_what_the_words_decided, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_marks_in_grace_and_released, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_restart_marks_slots, setup_slots, th_teardown),
    };

    return cmocka_run_group_tests_name("unit.test_fast_core", tests, NULL, NULL);
}
