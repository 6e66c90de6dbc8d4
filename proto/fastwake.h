/*
 * fastwake.h - sleeping beside a Lock's word, and waking the sleeper.
 *
 * A client waiting for a Lock or RLock (its request parked in the daemon)
 * may watch the word instead of its socket, so a holder's release can hand
 * the lock over with no daemon in between (fastword.h). Such a waiter
 * sleeps on the cell's futex, with its thread's bit as the futex bitset;
 * the releaser that handed it the lock, or the daemon after writing an
 * answer to the waiter's session, bumps the counter and wakes that bit.
 * Two waiters whose thread ids share the low five bits may wake each
 * other: each looks again and sleeps on.
 */
#ifndef PT_FASTWAKE_H
#define PT_FASTWAKE_H

#include <stdint.h>

#include "fastword.h"

/* The counter before a look at the word and the socket: a sleep with it
 * returns at once if anyone woke the cell since. */
uint32_t pt_fast_wake_seen(pt_fast_cell *c);

/* Sleep until woken, the counter moved past seen, or ns nanoseconds went
 * by (0: none to wait). */
void pt_fast_sleep(pt_fast_cell *c, uint32_t seen, uint32_t tid, uint64_t ns);

/* Wake the watcher with thread id tid, after its lock or answer is there. */
void pt_fast_wake(pt_fast_cell *c, uint32_t tid);

#endif /* PT_FASTWAKE_H */
