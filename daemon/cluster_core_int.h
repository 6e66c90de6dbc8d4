/*
 * cluster_core_int.h - the cluster copy's insides, shared by cluster_core.c
 * (hosts, sessions, entries, snapshots) and cluster_own.c (owned locks).
 */
#ifndef PT_CLUSTER_CORE_INT_H
#define PT_CLUSTER_CORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cluster_core.h"
#include "journal.pb-c.h"

#define SESS_BUCKETS 256u
#define OWN_BUCKETS  256u

typedef struct cc_host cc_host;
typedef Pythread__JournalRecord record;
typedef Pythread__ClusterCopy copy_msg;

/* An entry a held session keeps for later, as it came. An acquire that
 * was not to wait long (a timeout, or none at all) has a deadline: if the
 * owner has not handed the lock back by then, the call is refused there,
 * as if the lock were held (pt__cc_own_expire). */
typedef struct cc_kept {
    STAILQ_ENTRY(cc_kept) link;
    uint64_t deadline; /* PT_DEADLINE_NONE: it waits for the hand-back */
    uint64_t id, thread;
    size_t len;
    uint8_t bytes[];
} cc_kept;

STAILQ_HEAD(cc_kept_list, cc_kept);

/* One connection's session. */
typedef struct cc_sess {
    uint64_t conn;
    cc_host *host;
    pt_session *s;
    LIST_ENTRY(cc_sess) link;   /* in its host's bucket, to find it by conn */
    TAILQ_ENTRY(cc_sess) order; /* in its host's sessions, oldest first */
    /* Held: a call of it touched a lock another host owns; its entries
     * wait, in their order, for that lock's hand-back (cluster_own.c). */
    int held;
    uint64_t held_on; /* the lock's serial */
    struct cc_kept_list kept;
    TAILQ_ENTRY(cc_sess) held_link; /* in the copy's held sessions, oldest first */
} cc_sess;

LIST_HEAD(cc_sess_list, cc_sess);

struct cc_host {
    char name[PT_CCORE_HOST_MAX + 1];
    struct cc_sess_list buckets[SESS_BUCKETS];
    /* Oldest first: a host gone ends its sessions in this order, the
     * log's, never in the buckets' (hash) order. */
    TAILQ_HEAD(, cc_sess) sessions;
    size_t nsess;
    LIST_ENTRY(cc_host) link;
};

/* A lock a host owns: its calls there are that host's to answer. */
typedef struct cc_own {
    uint64_t serial;
    cc_host *host;
    int wanted;                /* another host's session waits for its hand-back */
    LIST_ENTRY(cc_own) link;   /* in its bucket */
    TAILQ_ENTRY(cc_own) order; /* in the copy's owned locks, oldest first */
} cc_own;

LIST_HEAD(cc_own_list, cc_own);

/* A call this host answered ahead of the log, not yet met there: what
 * the log's copies will do at its place, and what to put back if it
 * never gets there. */
typedef struct cc_ahead {
    uint64_t id;
    uint64_t serial; /* the lock it touched */
    uint64_t token;  /* the lock's token before it */
    int token_given;
    uint64_t floor; /* the core's token floor after it */
} cc_ahead;

struct pt_ccore {
    pt_core *core;
    cc_host *self;
    LIST_HEAD(, cc_host) hosts;
    size_t nsess;
    uint64_t now; /* the latest entry's time */
    int started;  /* the first entry set the token base */
    pt_ccore_answer_fn answer;
    pt_ccore_wanted_fn wanted;
    void *ctx;
    /* Owned locks (cluster_own.c). */
    struct cc_own_list own_buckets[OWN_BUCKETS];
    TAILQ_HEAD(, cc_own) owned;
    TAILQ_HEAD(, cc_sess) held;
    int handing; /* a hand-back's sessions are being applied */
    uint64_t handing_serial;
    cc_ahead ahead[PT_CCORE_AHEAD_MAX]; /* a ring, oldest at ahead_first */
    size_t ahead_first, nahead;
};

/* cluster_core.c */
int pt__cc_record_pack(const record *r, uint8_t **out, size_t *len);
cc_host *pt__cc_host_find(const pt_ccore *cc, const char *name);
cc_host *pt__cc_host_get(pt_ccore *cc, const char *name);
cc_sess *pt__cc_sess_find(cc_host *h, uint64_t conn);

/* cluster_own.c: called by cluster_core.c at each step of an entry. */
void pt__cc_own_init(pt_ccore *cc);
void pt__cc_own_free(pt_ccore *cc);
/* The core's freed hook: an owned lock freed is owned no more. */
void pt__cc_own_freed(void *ctx, uint64_t serial);
/* x is held: e (len bytes) is kept behind its earlier entries. 1 if so. */
int pt__cc_own_keep(pt_ccore *cc, cc_sess *x, const record *r, const uint8_t *e, size_t len);
/* Call r of x touches a lock another host owns: x is held on it, e kept. */
int pt__cc_own_hold(pt_ccore *cc, cc_sess *x, const record *r, const uint8_t *e, size_t len);
/* After call r of x was applied: the lock it touched may become x's host's. */
void pt__cc_own_after_call(pt_ccore *cc, cc_sess *x, const record *r);
/* Host h's entry r was answered ahead here: it is met (1), nothing to apply. */
int pt__cc_own_met(pt_ccore *cc, const cc_host *h, const record *r);
void pt__cc_own_hand_back(pt_ccore *cc, const cc_host *h, uint64_t serial);
/* At an EXPIRE: the kept acquires whose deadline passed are refused. */
void pt__cc_own_expire(pt_ccore *cc);
/* The earliest deadline of a kept acquire, or PT_DEADLINE_NONE. */
uint64_t pt__cc_own_next_deadline(const pt_ccore *cc);
/* Host h is gone: before its sessions end, and after. */
void pt__cc_own_host_gone_before(pt_ccore *cc, const cc_host *h);
void pt__cc_own_host_gone_after(pt_ccore *cc, const cc_host *h);
/* x's session ends: what it kept goes. */
void pt__cc_own_sess_end(pt_ccore *cc, cc_sess *x);
/* Snapshots: into m (freed by pt__cc_own_out_free), and back. */
int pt__cc_own_out(const pt_ccore *cc, copy_msg *m);
void pt__cc_own_out_free(copy_msg *m);
int pt__cc_own_in(pt_ccore *cc, const copy_msg *m, char *err, size_t errlen);

#endif /* PT_CLUSTER_CORE_INT_H */
