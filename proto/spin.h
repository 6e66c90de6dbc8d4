/*
 * spin.h - bounded adaptive spinning before sleeping, shared by the client
 * (waiting for an answer) and the daemon (waiting for the next request).
 *
 * Waking a process that sleeps on another CPU costs tens of microseconds on
 * machines whose idle CPUs halt, and a round trip pays it twice. Polling
 * for a short while before sleeping keeps both sides awake across a quick
 * exchange. The poll is bounded (at most usec per wait) and adaptive: after
 * two waits in a row outlast it, the next 4, 8, ... 256 waits sleep at once
 * (long waits, such as a Lock held for a long time, burn no CPU), then one
 * wait tries again. With one CPU usable there is no one to wait for while
 * spinning, so it is off.
 */
#ifndef PT_SPIN_H
#define PT_SPIN_H

#include <stdint.h>

/* Default and largest bound, microseconds; 0 turns spinning off. */
#define PT_SPIN_USEC_DEFAULT 50u
#define PT_SPIN_USEC_MAX     100000u
/* Misses in a row after which waits start to sleep at once (4 of them),
 * and the most doublings of that pause (4 << 6 = 256 waits). */
#define PT_SPIN_MISSES      2u
#define PT_SPIN_BACKOFF_MAX 6u

typedef struct pt_spin {
    uint32_t usec;   /* the bound, 0: off */
    uint32_t misses; /* spins in a row that ended with nothing */
    uint32_t skip;   /* waits left that sleep at once */
} pt_spin;

/* usec, or 0 when this process may run on one CPU only. */
void pt_spin_init(pt_spin *s, uint32_t usec);

/* How long the next wait may spin, in microseconds (0: sleep at once). */
uint32_t pt_spin_budget(pt_spin *s);

/* What a wait given a budget found: hit 1 when the spin ended with work. */
void pt_spin_learn(pt_spin *s, int hit);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t pt_spin_now_ns(void);

#endif /* PT_SPIN_H */
