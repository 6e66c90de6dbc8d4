/*
 * test_fast_claimed.c - a word a daemon left claimed (it handed its
 * connections over to its next image, which does not read these words):
 * every client step and look asks the daemon, an RLock holder's recursion
 * and release included, and nothing in the word changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fastword.h"
#include "pythread.h"

#define SID 5u
#define TID 77u

static void cell_init(pt_fast_cell *c, int kind)
{
    memset(c, 0, sizeof(*c));
    c->kind = (uint32_t)kind;
}

/* An RLock held twice through its word, then claimed for good. */
static void rlock_claimed_asks_the_daemon(void **state)
{
    pt_fast_cell c;
    uint64_t token = 0, to = 0, before;

    (void)state;
    cell_init(&c, PT_KIND_RLOCK);
    assert_int_equal(pt_fast_lock_acquire(&c, SID, TID, 1, 1, &token), PT_FAST_OK);
    assert_int_equal(pt_fast_lock_acquire(&c, SID, TID, 1, 1, &token), PT_FAST_OK);
    assert_int_equal(pt_fw_depth(&c), 2);
    assert_int_equal(pt_fast_claimed(&c), 0);
    (void)pt_fast_claim(&c);
    before = atomic_load(&c.word);
    assert_int_equal(pt_fast_claimed(&c), 1);
    assert_int_equal(pt_fast_lock_acquire(&c, SID, TID, 1, 1, &token), PT_FAST_SLOW);
    assert_int_equal(pt_fast_lock_release(&c, SID, TID, 1, &to), PT_FAST_SLOW);
    assert_int_equal(pt_fw_depth(&c), 2); /* as the claim read it */
    assert_int_equal(atomic_load(&c.word), before);
}

/* A Lock and a Semaphore claimed: no step goes through the word. */
static void lock_and_semaphore_claimed_ask_the_daemon(void **state)
{
    pt_fast_cell l, s;
    uint64_t token = 0, to = 0;
    int64_t value = 0;

    (void)state;
    cell_init(&l, PT_KIND_LOCK);
    assert_int_equal(pt_fast_lock_acquire(&l, SID, TID, 0, 1, &token), PT_FAST_OK);
    (void)pt_fast_claim(&l);
    assert_int_equal(pt_fast_lock_release(&l, SID, TID, 0, &to), PT_FAST_SLOW);
    assert_int_equal(pt_fast_lock_acquire(&l, SID, TID + 1, 0, 0, &token), PT_FAST_SLOW);

    cell_init(&s, PT_KIND_SEMAPHORE);
    atomic_store(&s.word, (uint64_t)3 << PT_FW_SEM_SHIFT);
    (void)pt_fast_claim(&s);
    assert_int_equal(pt_fast_sem_acquire(&s, 1, &value), PT_FAST_SLOW);
    assert_int_equal(pt_fast_sem_release(&s, 1, -1, &value), PT_FAST_SLOW);
    assert_int_equal(pt_fast_sem_value(&s, 0, &value), PT_FAST_SLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rlock_claimed_asks_the_daemon),
        cmocka_unit_test(lock_and_semaphore_claimed_ask_the_daemon),
    };

    return cmocka_run_group_tests_name("unit.test_fast_claimed", tests, NULL, NULL);
}
