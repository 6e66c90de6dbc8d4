/*
 * test_map.c - the name map and the deadline heap on their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "harness.h"

static pt_obj *mkobj(const char *name)
{
    size_t len = strlen(name);
    pt_obj *o = calloc(1, sizeof(*o) + len + 1);

    assert_non_null(o);
    memcpy(o->name, name, len);
    o->name_len = len;
    o->hash = pt__name_hash(name, len);
    return o;
}

static void test_hash_differs(void **state)
{
    (void)state;
    assert_int_not_equal(pt__name_hash("a", 1), pt__name_hash("b", 1));
    assert_int_not_equal(pt__name_hash("ab", 2), pt__name_hash("ba", 2));
    assert_int_equal(pt__name_hash("abc", 3), pt__name_hash("abcd", 3));
}

static void test_map_insert_find_remove(void **state)
{
    enum { N = 3000 };
    pt_map m;
    static pt_obj *o[N];
    char name[32];

    (void)state;
    assert_int_equal(pt__map_init(&m), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        o[i] = mkobj(name);
        pt__map_insert(&m, o[i]);
        assert_true(o[i]->in_map);
    }
    assert_int_equal(m.count, N);
    assert_true(m.mask + 1 >= N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        assert_ptr_equal(pt__map_find(&m, name, strlen(name), pt__name_hash(name, strlen(name))),
                         o[i]);
    }
    assert_null(pt__map_find(&m, "n", 1, pt__name_hash("n", 1)));
    assert_null(pt__map_find(&m, "n10", 2, pt__name_hash("n10", 3)));
    for (int i = 0; i < N; i += 3) {
        pt__map_remove(&m, o[i]);
        assert_false(o[i]->in_map);
    }
    /* removing twice is harmless */
    pt__map_remove(&m, o[0]);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        assert_true((pt__map_find(&m, name, strlen(name), o[i]->hash) != NULL) == (i % 3 != 0));
    }
    for (int i = 0; i < N; i++)
        free(o[i]);
    pt__map_free(&m);
}

static void test_map_same_bucket(void **state)
{
    pt_map m;
    pt_obj *a = mkobj("a"), *b = mkobj("b"), *c = mkobj("c");

    (void)state;
    assert_int_equal(pt__map_init(&m), 0);
    /* force one chain */
    a->hash = b->hash = c->hash = 7;
    pt__map_insert(&m, a);
    pt__map_insert(&m, b);
    pt__map_insert(&m, c);
    assert_ptr_equal(pt__map_find(&m, "b", 1, 7), b);
    pt__map_remove(&m, b);
    assert_null(pt__map_find(&m, "b", 1, 7));
    assert_ptr_equal(pt__map_find(&m, "a", 1, 7), a);
    assert_ptr_equal(pt__map_find(&m, "c", 1, 7), c);
    pt__map_free(&m);
    free(a);
    free(b);
    free(c);
}

static void test_heap_order_and_removal(void **state)
{
    enum { N = 500 };
    pt_heap h = {0};
    static pt_waiter w[N];
    uint32_t x = 99;
    uint64_t last = 0;

    (void)state;
    assert_int_equal(pt__heap_reserve(&h, N), 0);
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        w[i].deadline = x % 1000;
        w[i].seq = (uint64_t)i;
        w[i].heap_idx = PT_HEAP_NONE;
        pt__heap_push(&h, &w[i]);
    }
    for (int i = 0; i < N; i += 2)
        pt__heap_remove(&h, &w[i]);
    pt__heap_remove(&h, &w[0]);
    assert_int_equal(h.len, N / 2);
    while (h.len > 0) {
        pt_waiter *top = pt__heap_top(&h);

        assert_true(top->deadline >= last);
        assert_true(top->seq % 2 == 1);
        last = top->deadline;
        pt__heap_remove(&h, top);
        assert_int_equal(top->heap_idx, PT_HEAP_NONE);
    }
    assert_null(pt__heap_top(&h));
    pt__heap_free(&h);
}

/* After a peak of names the table gives its buckets back, and every name
 * left is still found. */
static void test_map_fit(void **state)
{
    enum { N = 3000, LEFT = 40 };
    pt_map m;
    static pt_obj *o[N];
    char name[32];

    (void)state;
    assert_int_equal(pt__map_init(&m), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "fit.%d", i);
        o[i] = mkobj(name);
        pt__map_insert(&m, o[i]);
    }
    assert_true(m.mask + 1 >= N);
    for (int i = LEFT; i < N; i++) {
        pt__map_remove(&m, o[i]);
        free(o[i]);
    }
    pt__map_fit(&m);
    /* 40 names: halved while under a quarter full, down to 128. */
    assert_int_equal(m.mask + 1, 128);
    for (int i = 0; i < LEFT; i++)
        assert_ptr_equal(pt__map_find(&m, o[i]->name, o[i]->name_len, o[i]->hash), o[i]);
    for (int i = 0; i < LEFT; i++)
        pt__map_remove(&m, o[i]);
    pt__map_fit(&m);
    assert_int_equal(m.mask + 1, 64); /* never under the first size */
    for (int i = 0; i < LEFT; i++)
        free(o[i]);
    pt__map_free(&m);
}

/* The heap's room shrinks to what is asked, in powers of two from 64, and
 * keeps its order. */
static void test_heap_fit(void **state)
{
    pt_heap h = {0};
    static pt_waiter w[3];

    (void)state;
    assert_int_equal(pt__heap_reserve(&h, 5000), 0);
    assert_int_equal(h.cap, 8192);
    for (int i = 0; i < 3; i++) {
        w[i].deadline = (uint64_t)(3 - i);
        w[i].heap_idx = PT_HEAP_NONE;
        pt__heap_push(&h, &w[i]);
    }
    pt__heap_fit(&h, 100);
    assert_int_equal(h.cap, 128);
    pt__heap_fit(&h, 3);
    assert_int_equal(h.cap, 64);
    pt__heap_fit(&h, 1000); /* never grows */
    assert_int_equal(h.cap, 64);
    for (int i = 2; i >= 0; i--) {
        assert_ptr_equal(pt__heap_top(&h), &w[i]);
        pt__heap_remove(&h, &w[i]);
    }
    pt__heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_differs),    cmocka_unit_test(test_map_insert_find_remove),
        cmocka_unit_test(test_map_same_bucket), cmocka_unit_test(test_heap_order_and_removal),
        cmocka_unit_test(test_map_fit),         cmocka_unit_test(test_heap_fit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
