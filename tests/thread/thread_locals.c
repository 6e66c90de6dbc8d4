/*
 * thread_locals.c - local: zero-filled blocks distinct per thread, the
 * initialiser on first use, the destructor at thread exit (library threads
 * and foreign pthreads), more locals than PTHREAD_KEYS_MAX, freeing a local
 * while threads hold blocks, and slot reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>

#include "tutil.h"

#define BLOCK 64

static atomic_int inits, dtors;
static void *_Atomic last_dtor_block;

static int setup(void **state)
{
    (void)state;
    atomic_store(&inits, 0);
    atomic_store(&dtors, 0);
    atomic_store(&last_dtor_block, NULL);
    return 0;
}

static void count_init(void *block, void *arg)
{
    int *b = block;

    /* zero-filled before the initialiser runs */
    b[0] = b[1] == 0 && b[BLOCK / sizeof(int) - 1] == 0 ? 1 : -1;
    b[1] = (int)(intptr_t)arg;
    atomic_fetch_add(&inits, 1);
}

static void count_dtor(void *block, void *arg)
{
    (void)arg;
    atomic_store(&last_dtor_block, block);
    atomic_fetch_add(&dtors, 1);
}

struct probe {
    pt_local *local;
    pthread_barrier_t *all_made; /* every thread holds its block */
    int id;
    void *block;          /* what the thread got */
    int zeroed;           /* its block was zero-filled */
    int kept;             /* its own value survived the others' writes */
    int same;             /* a second get gave the same block */
    int inited;           /* the initialiser's marks */
    struct tu_gate *hold; /* wait here before exiting, if set */
    atomic_int *checked;  /* counts threads done with the local */
};

static int use_local(void *arg)
{
    struct probe *p = arg;
    unsigned char *b = pt_local_get(p->local);
    int zero = 1;

    if (b == NULL)
        return 1;
    for (int i = 2 * (int)sizeof(int); i < BLOCK; i++)
        zero &= b[i] == 0;
    p->zeroed = zero;
    p->inited = ((int *)b)[0] == 1 && ((int *)b)[1] == 77;
    p->block = b;
    b[BLOCK - 1] = (unsigned char)p->id;
    if (p->all_made != NULL)
        pthread_barrier_wait(p->all_made);
    p->kept = b[BLOCK - 1] == (unsigned char)p->id;
    p->same = pt_local_get(p->local) == b;
    if (p->checked != NULL)
        atomic_fetch_add(p->checked, 1);
    if (p->hold != NULL)
        tu_gate_wait(p->hold);
    return 0;
}

/* Each thread sees its own zero-filled block, made and initialised on first
 * use; the initialiser runs once per thread that uses the local. */
static void test_distinct_blocks(void **state)
{
    enum { N = 8 };
    pthread_barrier_t all_made;
    struct probe p[N];
    pt_thread *t[N];
    pt_local *l;
    int *mine;

    (void)state;
    assert_int_equal(pt_local_create(&l, BLOCK, count_init, count_dtor, (void *)77), 0);
    pthread_barrier_init(&all_made, NULL, N);
    for (int i = 0; i < N; i++) {
        p[i] = (struct probe){.local = l, .all_made = &all_made, .id = i + 1};
        assert_int_equal(pt_thread_create(&t[i], use_local, &p[i], NULL), 0);
        assert_int_equal(pt_thread_start(t[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_thread_join(t[i], PT_FOREVER), 0);
        pt_thread_unref(t[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_true(p[i].zeroed);
        assert_true(p[i].inited);
        assert_true(p[i].kept);
        assert_true(p[i].same);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(p[i].block, p[j].block);
    }
    assert_int_equal(atomic_load(&inits), N);
    /* destructed at each thread's exit, before its join returned */
    assert_int_equal(atomic_load(&dtors), N);
    mine = pt_local_get(l);
    assert_non_null(mine);
    assert_int_equal(mine[0], 1);
    assert_int_equal(atomic_load(&inits), N + 1);
    assert_ptr_equal(pt_local_get(l), mine);
    pt_local_free(l);
    assert_int_equal(atomic_load(&dtors), N + 1);
    pthread_barrier_destroy(&all_made);
}

static int exit_with_block(void *arg)
{
    struct probe *p = arg;

    p->block = pt_local_get(p->local);
    return 0;
}

/* The destructor gets the thread's own block, at that thread's exit. */
static void test_destructor_at_exit(void **state)
{
    struct probe p = {0};
    pt_thread *t;
    pt_local *l;

    (void)state;
    assert_int_equal(pt_local_create(&l, 16, NULL, count_dtor, NULL), 0);
    p.local = l;
    assert_int_equal(pt_thread_create(&t, exit_with_block, &p, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_int_equal(atomic_load(&dtors), 1);
    assert_non_null(p.block);
    assert_ptr_equal(atomic_load(&last_dtor_block), p.block);
    pt_thread_unref(t);
    pt_local_free(l);
    assert_int_equal(atomic_load(&dtors), 1);
}

static void *foreign_main(void *arg)
{
    exit_with_block(arg);
    return NULL;
}

/* Threads the library did not start get their blocks destructed too. */
static void test_destructor_foreign_thread(void **state)
{
    struct probe p = {0};
    pthread_t th;
    pt_local *l;

    (void)state;
    assert_int_equal(pt_local_create(&l, BLOCK, count_init, count_dtor, NULL), 0);
    p.local = l;
    assert_int_equal(pthread_create(&th, NULL, foreign_main, &p), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&inits), 1);
    assert_int_equal(atomic_load(&dtors), 1);
    assert_ptr_equal(atomic_load(&last_dtor_block), p.block);
    pt_local_free(l);
    assert_int_equal(atomic_load(&dtors), 1);
}

struct many {
    pt_local **locals;
    int n;
    int ok;
};

static int use_many(void *arg)
{
    struct many *m = arg;

    m->ok = 1;
    for (int i = 0; i < m->n; i++) {
        int *b = pt_local_get(m->locals[i]);

        if (b == NULL || *b != 0) {
            m->ok = 0;
            return 1;
        }
        *b = i + 1;
    }
    for (int i = 0; i < m->n; i++)
        m->ok &= *(int *)pt_local_get(m->locals[i]) == i + 1;
    return 0;
}

/* Far more locals than pthread keys. */
static void test_beyond_keys_max(void **state)
{
    enum { T = 4 };
    int n = 3 * PTHREAD_KEYS_MAX;
    pt_local **locals = calloc((size_t)n, sizeof(*locals));
    struct many m[T];
    pt_thread *t[T];

    (void)state;
    assert_non_null(locals);
    for (int i = 0; i < n; i++)
        assert_int_equal(pt_local_create(&locals[i], sizeof(int), NULL, count_dtor, NULL), 0);
    for (int i = 0; i < T; i++) {
        m[i] = (struct many){.locals = locals, .n = n};
        assert_int_equal(pt_thread_create(&t[i], use_many, &m[i], NULL), 0);
        assert_int_equal(pt_thread_start(t[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        assert_int_equal(pt_thread_join(t[i], PT_FOREVER), 0);
        assert_true(m[i].ok);
        pt_thread_unref(t[i]);
    }
    assert_int_equal(atomic_load(&dtors), T * n);
    for (int i = 0; i < n; i++)
        pt_local_free(locals[i]);
    assert_int_equal(atomic_load(&dtors), T * n);
    free(locals);
}

/* Freeing a local destructs and frees every thread's block, in the freeing
 * thread; the threads' later exits do not destruct them again. */
static void test_free_frees_every_block(void **state)
{
    enum { N = 5 };
    pthread_barrier_t all_made;
    atomic_int checked = 0;
    struct tu_gate hold;
    struct probe p[N];
    pt_thread *t[N];
    pt_local *l;

    (void)state;
    tu_gate_init(&hold);
    pthread_barrier_init(&all_made, NULL, N + 1);
    assert_int_equal(pt_local_create(&l, BLOCK, NULL, count_dtor, NULL), 0);
    for (int i = 0; i < N; i++) {
        p[i] = (struct probe){
            .local = l, .all_made = &all_made, .id = i + 1, .hold = &hold, .checked = &checked};
        assert_int_equal(pt_thread_create(&t[i], use_local, &p[i], NULL), 0);
        assert_int_equal(pt_thread_start(t[i]), 0);
    }
    assert_non_null(pt_local_get(l));
    pthread_barrier_wait(&all_made);
    /* every thread has its block and is done with the local, still alive */
    assert_true(tu_wait_int(&checked, N));
    for (int i = 0; i < N; i++)
        assert_int_equal(pt_thread_is_alive(t[i]), 1);
    assert_int_equal(atomic_load(&dtors), 0);
    pt_local_free(l);
    assert_int_equal(atomic_load(&dtors), N + 1);
    tu_gate_open(&hold);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pt_thread_join(t[i], PT_FOREVER), 0);
        pt_thread_unref(t[i]);
    }
    assert_int_equal(atomic_load(&dtors), N + 1);
    pthread_barrier_destroy(&all_made);
    tu_gate_destroy(&hold);
}

struct reuse {
    pt_local *_Atomic local;
    struct tu_gate first_done, swapped;
    void *first, *second;
    int second_zero;
};

static int reuse_main(void *arg)
{
    struct reuse *r = arg;
    int *b = pt_local_get(atomic_load(&r->local));

    r->first = b;
    *b = 12345;
    tu_gate_open(&r->first_done);
    tu_gate_wait(&r->swapped);
    b = pt_local_get(atomic_load(&r->local));
    r->second = b;
    r->second_zero = b != NULL && *b == 0;
    return 0;
}

/* A local made after another was freed may take its slot: a thread that had
 * a block of the old one gets a fresh zero-filled block of the new one. */
static void test_slot_reuse(void **state)
{
    struct reuse r;
    pt_local *a, *b;
    pt_thread *t;

    (void)state;
    memset(&r, 0, sizeof(r));
    tu_gate_init(&r.first_done);
    tu_gate_init(&r.swapped);
    assert_int_equal(pt_local_create(&a, sizeof(int), NULL, count_dtor, NULL), 0);
    atomic_store(&r.local, a);
    assert_int_equal(pt_thread_create(&t, reuse_main, &r, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    tu_gate_wait(&r.first_done);
    pt_local_free(a);
    assert_int_equal(atomic_load(&dtors), 1);
    assert_int_equal(pt_local_create(&b, sizeof(int), NULL, count_dtor, NULL), 0);
    atomic_store(&r.local, b);
    tu_gate_open(&r.swapped);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    assert_true(r.second_zero);
    assert_int_equal(atomic_load(&dtors), 2);
    assert_ptr_equal(atomic_load(&last_dtor_block), r.second);
    pt_thread_unref(t);
    pt_local_free(b);
    assert_int_equal(atomic_load(&dtors), 2);
    tu_gate_destroy(&r.first_done);
    tu_gate_destroy(&r.swapped);
}

static pt_local *_Atomic self_local;
static void *_Atomic seen_in_init;

static void init_uses_itself(void *block, void *arg)
{
    (void)arg;
    atomic_store(&seen_in_init, pt_local_get(atomic_load(&self_local)));
    (void)block;
}

static pt_local *_Atomic second_local;

/* A destructor that makes a block of another local: it is destructed in a
 * later round of the same thread exit. */
static void dtor_makes_block(void *block, void *arg)
{
    (void)block;
    (void)arg;
    atomic_fetch_add(&dtors, 1);
    pt_local_get(atomic_load(&second_local));
}

static int touch_first(void *arg)
{
    pt_local_get(arg);
    return 0;
}

static void test_init_and_dtor_reentry(void **state)
{
    pt_local *l, *first;
    pt_thread *t;
    void *b;

    (void)state;
    assert_int_equal(pt_local_create(&l, 8, init_uses_itself, NULL, NULL), 0);
    atomic_store(&self_local, l);
    b = pt_local_get(l);
    assert_ptr_equal(atomic_load(&seen_in_init), b);
    pt_local_free(l);

    assert_int_equal(pt_local_create(&first, 8, NULL, dtor_makes_block, NULL), 0);
    assert_int_equal(pt_local_create(&l, BLOCK, count_init, count_dtor, NULL), 0);
    atomic_store(&second_local, l);
    assert_int_equal(pt_thread_create(&t, touch_first, first, NULL), 0);
    assert_int_equal(pt_thread_start(t), 0);
    assert_int_equal(pt_thread_join(t, PT_FOREVER), 0);
    pt_thread_unref(t);
    assert_int_equal(atomic_load(&inits), 1);
    assert_int_equal(atomic_load(&dtors), 2);
    pt_local_free(first);
    pt_local_free(l);
}

static void count_init_only(void *block, void *arg)
{
    (void)block;
    (void)arg;
    atomic_fetch_add(&inits, 1);
}

static void test_errors_and_zero_size(void **state)
{
    pt_local *l;

    (void)state;
    assert_int_equal(pt_local_create(NULL, 8, NULL, NULL, NULL), PT_EINVAL);
    assert_int_equal(pt_local_create(&l, SIZE_MAX, NULL, NULL, NULL), PT_EINVAL);
    assert_int_equal(pt_local_create(&l, 0, count_init_only, NULL, NULL), 0);
    assert_non_null(pt_local_get(l));
    assert_non_null(pt_local_get(l));
    assert_int_equal(atomic_load(&inits), 1);
    pt_local_free(l);
    pt_local_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_distinct_blocks, setup),
        cmocka_unit_test_setup(test_destructor_at_exit, setup),
        cmocka_unit_test_setup(test_destructor_foreign_thread, setup),
        cmocka_unit_test_setup(test_beyond_keys_max, setup),
        cmocka_unit_test_setup(test_free_frees_every_block, setup),
        cmocka_unit_test_setup(test_slot_reuse, setup),
        cmocka_unit_test_setup(test_init_and_dtor_reentry, setup),
        cmocka_unit_test_setup(test_errors_and_zero_size, setup),
    };

    return tu_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
