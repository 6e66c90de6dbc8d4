/*
 * spin.c - the bounded adaptive spinning policy (see spin.h).
 */
#include "spin.h"

#include <sched.h>
#include <time.h>

/* A process allowed on one CPU only would spin against the very process
 * it waits for. */
static int spin_cpus_usable(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 2;
    return CPU_COUNT(&set);
}

void pt_spin_init(pt_spin *s, uint32_t usec)
{
    s->usec = usec > PT_SPIN_USEC_MAX ? PT_SPIN_USEC_MAX : usec;
    if (s->usec && spin_cpus_usable() < 2)
        s->usec = 0;
    s->misses = 0;
    s->skip = 0;
}

uint32_t pt_spin_budget(pt_spin *s)
{
    if (!s->usec)
        return 0;
    if (s->skip) {
        s->skip--;
        return 0;
    }
    return s->usec;
}

void pt_spin_learn(pt_spin *s, int hit)
{
    if (hit) {
        s->misses = 0;
        return;
    }
    if (s->misses < PT_SPIN_MISSES + PT_SPIN_BACKOFF_MAX)
        s->misses++;
    if (s->misses >= PT_SPIN_MISSES)
        s->skip = 4u << (s->misses - PT_SPIN_MISSES);
}

uint64_t pt_spin_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
