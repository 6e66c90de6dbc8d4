/*
 * cluster_log.h - the cluster's log: opaque entries appended by each host to
 * one key prefix in etcd and delivered to every host in etcd's revision
 * order, through one watch (doc/cluster.md, choice 1). It knows nothing of
 * the core: an entry is a byte string.
 *
 * Keys under PREFIX (which ends in '/'):
 *
 *   PREFIX/hosts/<host>          the host's membership, bound to its lease
 *   PREFIX/seq/<host>            the host's last sequence number (decimal)
 *   PREFIX/log/<host>/<seq>      an entry; seq as 20 decimal digits
 *   PREFIX/snap                  a snapshot's head (cluster_snap.h): its value
 *                                begins with its revision in 20 digits, and
 *                                only entries at or before it are deleted
 *
 * Only host <host> writes PREFIX/seq/<host> and PREFIX/log/<host>/..., so
 * appends of different hosts never contend: each is a txn comparing the
 * host's own sequence key. The order is the revision's, then the order of
 * the entries inside one txn (a batch of a host's entries shares a
 * revision).
 *
 * Membership: a lease of ttl seconds, kept alive every ttl/3. When no
 * keepalive has succeeded for ttl - margin seconds counted from the SEND
 * time of the last one that did (CLOCK_MONOTONIC), on_lease_lost is called:
 * etcd cannot have expired the lease yet, since it renewed it no earlier
 * than that send. The module then joins again as a new member: it revokes
 * the old lease (the host key's deletion is every host's on_host_gone),
 * grants a new one and creates the host key again (on_host_joined).
 *
 * Everything runs on the caller's libevent loop; nothing blocks.
 */
#ifndef PT_CLUSTER_LOG_H
#define PT_CLUSTER_LOG_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct pt_clog pt_clog;

/* The longest host name (it is part of the keys), the longest entry and
 * the most entries one append queue holds. */
#define PT_CLOG_HOST_MAX  64
#define PT_CLOG_ENTRY_MAX (512u << 10)
#define PT_CLOG_QUEUE_MAX 4096u

typedef struct pt_clog_callbacks {
    /* Every entry of every host, in the log's order, once each. bytes live
     * until the call returns. */
    void (*on_entry)(void *ctx, const char *host, uint64_t seq, int64_t revision,
                     const uint8_t *bytes, size_t len);
    /* This host's append of cookie was delivered by the watch: called right
     * after its on_entry, in this host's append order. */
    void (*on_committed)(void *ctx, void *cookie, int64_t revision);
    /* A host key created (a host joined, this one too) or deleted (lease
     * expired or revoked: the host is gone), at its place in the order. */
    void (*on_host_joined)(void *ctx, const char *host, int64_t revision);
    void (*on_host_gone)(void *ctx, const char *host, int64_t revision);
    /* This host can no longer be sure it is a member: fail every local
     * holder now (PT_ESESSION). Called before etcd can have expired the
     * lease. The module joins again by itself; see pt_clog_start. */
    void (*on_lease_lost)(void *ctx, const char *why);
    /* The watch's start revision was compacted away: the entries from
     * revision on are gone. With this callback the log delivers nothing
     * more until pt_clog_rewatch, and keeps its membership and appends;
     * without it, the log stops (on_error, fatal). */
    void (*on_compacted)(void *ctx, int64_t revision);
    /* Every event up to revision has been delivered (after a watch
     * message's events: etcd never splits a revision between two). */
    void (*on_applied)(void *ctx, int64_t revision);
    /* A message for the log, naming host, key, operation and remedy. fatal:
     * the log has stopped (a host name claimed by another daemon, another
     * writer of this host's keys, the watch ended); free it. */
    void (*on_error)(void *ctx, const char *message, int fatal);
} pt_clog_callbacks;

typedef struct pt_clog_options {
    /* Seconds before an etcd request fails over; 0: etcd.c's default. */
    double request_timeout;
    /* Seconds taken off the ttl for the lease-lost deadline; 0: a quarter
     * of the ttl, at least 0.25 s. */
    double margin;
    /* Value of the host key (what the host is, for people); NULL: "". */
    const char *description;
    /* TLS files for https:// endpoints (etcd.h); NULL: none. */
    const struct pt_etcd_tls *tls;
} pt_clog_options;

/* A log on base for host under prefix, through etcd at endpoints
 * ("http://HOST:PORT[,...]" or https://); ttl in whole seconds (>= 1). NULL with the
 * reason in err. Nothing is sent before pt_clog_start. */
pt_clog *pt_clog_new(struct event_base *base, const char *endpoints, const char *prefix,
                     const char *host, int ttl, const pt_clog_callbacks *cb, void *ctx,
                     const pt_clog_options *o, char *err, size_t errlen);

/* Starts: reads this host's sequence, watches the prefix from
 * start_revision (0: the revision of that read, + 1), joins. Every
 * delivery callback comes from there on.
 *
 * After on_lease_lost the module is a new member once its on_host_joined
 * for this host arrives: the caller must treat every session of the old
 * membership as ended (every host applies this host's on_host_gone before
 * the new join), open new ones with new identifiers, and not append for
 * the old ones. Appends queued meanwhile are kept and sent once the host
 * is a member again; each copy meets them after the gone event. */
int pt_clog_start(pt_clog *clog, int64_t start_revision);

/* After on_compacted, or to go on from a snapshot taken at revision
 * start_revision - 1: the watch starts again from start_revision. This
 * host's entries up to own_seq (its last one in the snapshot) count as
 * committed, at start_revision - 1. 0, or -1 before pt_clog_start's read
 * or once stopped. */
int pt_clog_rewatch(pt_clog *clog, int64_t start_revision, uint64_t own_seq);

/* Queues an entry (copied); on_committed(cookie) follows once the watch
 * delivers it. Entries of one host land in the order of their appends,
 * several in one txn when they queue behind one in flight. 0, or -1 with
 * err (empty or larger than PT_CLOG_ENTRY_MAX, queue full, stopped, out of
 * memory). */
int pt_clog_append(pt_clog *clog, const void *bytes, size_t len, void *cookie, char *err,
                   size_t errlen);

/* Entries appended and not yet committed (delivered by the watch, or
 * taken up in a snapshot). O(1): asked before every call. */
size_t pt_clog_pending(const pt_clog *clog);
/* 1 while this host is a member (its lease is sure to be live). */
int pt_clog_is_member(const pt_clog *clog);
/* This host's lease (0 while it is not a member), and in *sure_for the
 * seconds it is sure to last from now: its ttl from the send of the last
 * keepalive etcd answered. */
int64_t pt_clog_lease(const pt_clog *clog, double *sure_for);
/* 1 while this host is a member and its lease is sure to stand past the
 * margin its holders are told at (its lease-lost deadline has not come,
 * even if the loop has not run that timer yet, as after a SIGSTOP). */
int pt_clog_lease_sure(const pt_clog *clog);
/* The revision that created this host's key in its present membership (0
 * while it is not a member): its on_host_joined at that revision is this
 * membership's, any other one of this host is a past one's, replayed. */
int64_t pt_clog_joined_revision(const pt_clog *clog);
/* The last revision the watch delivered (0 before any). */
int64_t pt_clog_revision(const pt_clog *clog);

/* Counts since pt_clog_new. */
typedef struct pt_clog_stats {
    uint64_t txns;         /* append txns that landed */
    uint64_t entries;      /* entries in them */
    uint64_t resends;      /* append txns sent again after an error */
    uint64_t found_landed; /* of those, found to have landed the first time */
    uint64_t lease_losses; /* on_lease_lost calls */
} pt_clog_stats;

void pt_clog_get_stats(const pt_clog *clog, pt_clog_stats *out);

/* Leaves the cluster at once: revokes this host's lease (its host key goes,
 * which is every host's on_host_gone) through a client and loop of its own,
 * waiting at most timeout seconds; the caller's loop does not turn meanwhile.
 * The log does nothing more after it but be freed. 0, or -1 with err (the
 * lease then ends with its ttl). */
int pt_clog_leave(pt_clog *clog, double timeout, char *err, size_t errlen);

/* Frees without revoking: the lease expires after its ttl. Not from inside
 * one of its callbacks. */
void pt_clog_free(pt_clog *clog);

/* Tests: cut (1) or restore (0) this host's membership traffic (keepalives,
 * revoke, grant), as a host cut off from etcd looks to the others. */
void pt_clog_test_cut(pt_clog *clog, int cut);
/* Tests: the next n append txns that succeed are handled as if their
 * answer had been lost on the way (PT_ETCD_EUNAVAIL). */
void pt_clog_test_lose_answers(pt_clog *clog, int n);

#endif /* PT_CLUSTER_LOG_H */
