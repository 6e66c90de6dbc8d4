/*
 * local.c - thread-local blocks without PTHREAD_KEYS_MAX.
 *
 * Every local owns a slot number and a generation that no other local ever
 * had. Each thread keeps a private table indexed by slot of (generation,
 * block): an entry is this local's block only if the generations match, so
 * the lookup takes no lock, and a slot reused by a new local never sees the
 * blocks of the old one. A local also lists all its blocks, under one lock,
 * so freeing it frees every thread's block, and a thread at exit takes its
 * blocks off those lists before destructing them: a block is destructed by
 * exactly one of the two.
 */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "thread_int.h"

/* Rounds of destructors at a thread's exit, as PTHREAD_DESTRUCTOR_ITERATIONS:
 * a destructor may make blocks of other locals. */
#define PT__LOCAL_ROUNDS 4

struct pt__block {
    LIST_ENTRY(pt__block) link; /* on its local's list (pt__local_mu) */
    max_align_t data[];
};

struct pt_local {
    unsigned slot;
    uint64_t gen;
    size_t size;
    pt_local_init_fn init;
    pt_local_dtor_fn dtor;
    void *arg;
    LIST_HEAD(, pt__block) blocks; /* (pt__local_mu) */
};

/* A slot is free when gen is 0; free slots are chained through next. */
struct pt__slot {
    uint64_t gen;
    pt_local *local;
    unsigned next;
};

#define PT__SLOT_NONE UINT_MAX

static pthread_mutex_t pt__local_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pt__slot *pt__slots; /* (pt__local_mu) */
static unsigned pt__nslots;
static unsigned pt__free_slot = PT__SLOT_NONE;
static uint64_t pt__last_gen;

void pt__locals_lock(void)
{
    pthread_mutex_lock(&pt__local_mu);
}

void pt__locals_unlock(void)
{
    pthread_mutex_unlock(&pt__local_mu);
}

/* In the child of fork(): the forking thread took the lock in the prepare
 * handler and is the only thread left, so it simply releases it. */
void pt__locals_after_fork(void)
{
    pthread_mutex_unlock(&pt__local_mu);
}

/* A free slot index, growing the table if none; PT__SLOT_NONE when out of
 * memory. Called with pt__local_mu held. */
static unsigned pt__slot_take(void)
{
    unsigned slot = pt__free_slot, n, i;
    struct pt__slot *grown;

    if (slot != PT__SLOT_NONE) {
        pt__free_slot = pt__slots[slot].next;
        return slot;
    }
    if (pt__nslots >= UINT_MAX / 2)
        return PT__SLOT_NONE;
    n = pt__nslots ? pt__nslots * 2 : 16;
    grown = realloc(pt__slots, n * sizeof(*grown));
    if (grown == NULL)
        return PT__SLOT_NONE;
    for (i = n; i-- > pt__nslots + 1;) {
        grown[i] = (struct pt__slot){.next = pt__free_slot};
        pt__free_slot = i;
    }
    pt__slots = grown;
    slot = pt__nslots;
    pt__nslots = n;
    return slot;
}

int pt_local_create(pt_local **out, size_t size, pt_local_init_fn init, pt_local_dtor_fn dtor,
                    void *arg)
{
    pt_local *l;

    if (out == NULL)
        return pt__thread_failf(PT_EINVAL, "local: create: no place for the result; pass &local");
    if (size > SIZE_MAX - sizeof(struct pt__block))
        return pt__thread_failf(PT_EINVAL, "local: create: block size %zu is too large", size);
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return pt__thread_failf(PT_ENOMEM, "local: create: out of memory");
    *l = (pt_local){.size = size, .init = init, .dtor = dtor, .arg = arg};
    LIST_INIT(&l->blocks);
    pthread_mutex_lock(&pt__local_mu);
    l->slot = pt__slot_take();
    if (l->slot != PT__SLOT_NONE) {
        l->gen = ++pt__last_gen;
        pt__slots[l->slot] = (struct pt__slot){.gen = l->gen, .local = l};
    }
    pthread_mutex_unlock(&pt__local_mu);
    if (l->slot == PT__SLOT_NONE) {
        free(l);
        return pt__thread_failf(PT_ENOMEM, "local: create: out of memory for the slot table");
    }
    *out = l;
    return 0;
}

/* Grow the calling thread's table to hold slot; 0 or -1 out of memory. */
static int pt__table_fit(struct pt__tstate *ts, unsigned slot)
{
    unsigned n = ts->nlocals ? ts->nlocals : 8;
    struct pt__local_entry *grown;

    if (slot < ts->nlocals)
        return 0;
    while (n <= slot)
        n = n > UINT_MAX / 2 ? slot + 1 : n * 2;
    grown = realloc(ts->locals, n * sizeof(*grown));
    if (grown == NULL)
        return -1;
    memset(grown + ts->nlocals, 0, (n - ts->nlocals) * sizeof(*grown));
    ts->locals = grown;
    ts->nlocals = n;
    return 0;
}

/* First use of l in this thread: a zero-filled block, listed on l and in
 * the table before the initialiser runs, so the initialiser may use it. */
static void *pt__local_make(pt_local *l, struct pt__tstate *ts)
{
    struct pt__block *b;

    if (pt__table_fit(ts, l->slot) != 0)
        return NULL;
    b = calloc(1, sizeof(*b) + l->size);
    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&pt__local_mu);
    LIST_INSERT_HEAD(&l->blocks, b, link);
    pthread_mutex_unlock(&pt__local_mu);
    ts->locals[l->slot] = (struct pt__local_entry){.gen = l->gen, .block = b};
    pt__tstate_arm(ts);
    if (l->init != NULL)
        l->init(b->data, l->arg);
    return b->data;
}

void *pt_local_get(pt_local *l)
{
    struct pt__tstate *ts = &pt__ts;

    if (l->slot < ts->nlocals && ts->locals[l->slot].gen == l->gen)
        return ((struct pt__block *)ts->locals[l->slot].block)->data;
    return pt__local_make(l, ts);
}

void pt_local_free(pt_local *l)
{
    struct pt__block *b, *next;

    if (l == NULL)
        return;
    pthread_mutex_lock(&pt__local_mu);
    b = LIST_FIRST(&l->blocks);
    pt__slots[l->slot] = (struct pt__slot){.next = pt__free_slot};
    pt__free_slot = l->slot;
    pthread_mutex_unlock(&pt__local_mu);
    for (; b != NULL; b = next) {
        next = LIST_NEXT(b, link);
        if (l->dtor != NULL)
            l->dtor(b->data, l->arg);
        free(b);
    }
    free(l);
}

/* Take the block of table entry slot away from its local if that local
 * still lives; returns the block (and the destructor to run) or NULL. */
static struct pt__block *pt__block_claim(unsigned slot, struct pt__local_entry e,
                                         pt_local_dtor_fn *dtor, void **arg)
{
    struct pt__block *b = NULL;

    pthread_mutex_lock(&pt__local_mu);
    if (slot < pt__nslots && pt__slots[slot].gen == e.gen) {
        b = e.block;
        LIST_REMOVE(b, link);
        *dtor = pt__slots[slot].local->dtor;
        *arg = pt__slots[slot].local->arg;
    }
    pthread_mutex_unlock(&pt__local_mu);
    return b;
}

/* One pass over the table; returns how many blocks were destructed. The
 * table is indexed afresh each time, as a destructor may grow it. */
static int pt__locals_pass(struct pt__tstate *ts)
{
    pt_local_dtor_fn dtor;
    struct pt__block *b;
    void *arg;
    int done = 0;

    for (unsigned i = 0; i < ts->nlocals; i++) {
        struct pt__local_entry e = ts->locals[i];

        if (e.block == NULL)
            continue;
        ts->locals[i] = (struct pt__local_entry){0};
        b = pt__block_claim(i, e, &dtor, &arg);
        if (b == NULL)
            continue;
        if (dtor != NULL)
            dtor(b->data, arg);
        free(b);
        done++;
    }
    return done;
}

/* The calling thread is ending: destruct and free its blocks. Blocks made
 * by destructors after the last round stay on their locals' lists and are
 * freed with the local. */
void pt__locals_clear(struct pt__tstate *ts)
{
    for (int round = 0; round < PT__LOCAL_ROUNDS; round++) {
        if (pt__locals_pass(ts) == 0)
            break;
    }
    free(ts->locals);
    ts->locals = NULL;
    ts->nlocals = 0;
}
