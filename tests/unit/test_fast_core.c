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

static uint32_t fake_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    (void)ctx, (void)owned, (void)uid, (void)gid, (void)mode;
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
    cells[i].claimed = 1;
    cells[i].claims++;
    *v = cells[i].word;
}

static void fake_freed(void *ctx, uint32_t i)
{
    (void)ctx;
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
    };

    return cmocka_run_group_tests_name("unit.test_fast_core", tests, NULL, NULL);
}
