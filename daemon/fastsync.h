/*
 * fastsync.h - one shared word between the core and the clients: what a
 * claim reads from it for the core, and what a publish writes to it from
 * the core's state (the rules are in proto/fastword.h). No I/O and no
 * libevent: the daemon and the protocol's exhaustive test run this code.
 */
#ifndef PT_FASTSYNC_H
#define PT_FASTSYNC_H

#include "core.h"
#include "fastword.h"

/* The hold a claim found, which a publish compares with the core's. */
typedef struct pt_fastsync_hold {
    pt_session *holder;
    uint64_t thread;
    uint64_t token;
    uint32_t depth;
    uint8_t keep;
} pt_fastsync_hold;

/* The daemon's private side of a cell: nothing here is in shared memory,
 * so no client can change it. One per object with a cell: kept small. */
typedef struct pt_fastsync {
    union {
        uint64_t base; /* Lock/RLock: the token of seq 0, as the daemon knows it */
        int64_t value; /* owned Semaphore left claimed: its value (the word's is old) */
    };
    union {
        uint64_t count; /* Semaphore: the word's acquire count last seen */
        uint64_t next;  /* Lock/RLock: the cell's next as last written */
    };
    pt_fastsync_hold seen; /* what the last claim found */
    uint8_t rebase;        /* found free: base may move */
    uint8_t kept;          /* published as the daemon's alone (CLAIM left set) */
    uint8_t owned;         /* a semaphore whose word names slots */
    uint8_t busy;          /* owned: left claimed for a busy slot */
    uint8_t fenced;        /* Lock: the hold's next was taken back (CLAIM kept) */
} pt_fastsync;

/* The session whose id in words is sid, NULL when none is. */
typedef pt_session *(*pt_fastsync_who)(void *ctx, uint32_t sid);

/* A new object's cell: cleared and claimed until its first publish. */
void pt_fastsync_init(pt_fastsync *s, pt_fast_cell *cell, int kind, int owned);
/* Claim the word and say what it holds. */
void pt_fastsync_claim(pt_fastsync *s, pt_fast_cell *cell, int kind, pt_fastsync_who who, void *ctx,
                       pt_core_fast_view *v);
/* Write the core's state st; holder_sid and next_sid are the ids in words
 * of st->holder's and st->next's sessions (0 when they have none). */
void pt_fastsync_publish(pt_fastsync *s, pt_fast_cell *cell, const pt_core_fast_state *st,
                         uint32_t holder_sid, uint32_t next_sid);
/* Without claiming: the acquires made through the word since the last
 * claim (a Lock's or RLock's tokens past token, the last the core knows). */
uint64_t pt_fastsync_unread(const pt_fastsync *s, pt_fast_cell *cell, int kind, uint64_t token);

#endif /* PT_FASTSYNC_H */
