/*
 * fastwake.c - the futex under a watching waiter (fastwake.h). The cell is
 * in memory shared between processes, so the futex is not private.
 */
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fastwake.h"

static uint32_t bit_of(uint32_t tid)
{
    return 1u << (tid & 31u);
}

uint32_t pt_fast_wake_seen(pt_fast_cell *c)
{
    return atomic_load_explicit(&c->wake, memory_order_acquire);
}

void pt_fast_sleep(pt_fast_cell *c, uint32_t seen, uint32_t tid, uint64_t ns)
{
    struct timespec at;
    uint64_t end;

    if (ns == 0)
        return;
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
    clock_gettime(CLOCK_MONOTONIC, &at);
    end = (uint64_t)at.tv_sec * 1000000000u + (uint64_t)at.tv_nsec + ns;
    at.tv_sec = (time_t)(end / 1000000000u);
    at.tv_nsec = (long)(end % 1000000000u);
    syscall(SYS_futex, &c->wake, FUTEX_WAIT_BITSET, seen, &at, NULL, bit_of(tid));
}

void pt_fast_wake(pt_fast_cell *c, uint32_t tid)
{
    atomic_fetch_add_explicit(&c->wake, 1, memory_order_release);
    syscall(SYS_futex, &c->wake, FUTEX_WAKE_BITSET, INT32_MAX, NULL, NULL, bit_of(tid));
}
