/*
 * cluster_snap.h - snapshots of the cluster's copy in etcd, and the log's
 * compaction behind them (doc/cluster.md, "Snapshots").
 *
 * Keys under PREFIX, outside the log's watch (cluster_log.h):
 *
 *   PREFIX/snap                   the head, written last:
 *                                 "<R, 20 digits> <host> <chunks> <bytes> <FNV-1a 64, hex>"
 *   PREFIX/snap/<R>/<host>/<i>    the snapshot's bytes (a ClusterSnapshot,
 *                                 proto/journal.proto), in chunks of
 *                                 PT_CSNAP_CHUNK; i as 6 digits
 *
 * The copy at revision R is the copy after every entry up to R. One host
 * writes (the caller chooses it: the member first in name order): the
 * chunks, then the head by a txn that writes only over an older head; then
 * it deletes the log's entries up to R (each host's up to its last one
 * applied at R), the chunks of older snapshots, and compacts etcd's
 * history up to the newest snapshot it wrote at least 2 s before, so that
 * a daemon whose watch is less far behind goes on from it. A daemon that starts, or
 * whose watch was compacted, loads the head and its chunks and goes on from
 * R + 1.
 *
 * Everything runs on the caller's loop through its own etcd client;
 * nothing blocks.
 */
#ifndef PT_CLUSTER_SNAP_H
#define PT_CLUSTER_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_core.h"
#include "etcd.h"

struct event_base;

typedef struct pt_csnap pt_csnap;

/* A chunk: under etcd's request limit (1.5 MiB by default) with room to
 * spare. A snapshot over PT_CSNAP_MAX is not written (the log says so and
 * keeps growing): etcd is no store for one that large. */
#define PT_CSNAP_CHUNK (256u << 10)
#define PT_CSNAP_MAX   (64u << 20)

/* A snapshot loaded. With none there, copy is NULL and revision the one
 * just before the log's first entry (or the read's, with no entry): the
 * copy is empty there, and the log goes on after it; revision 0 only when
 * that could not be found out (over a hundred hosts with entries): the log
 * from etcd's first revision. err set when the snapshot there cannot be
 * used. Everything lives until the callback returns. */
typedef struct pt_csnap_loaded {
    int64_t revision;
    const uint8_t *copy; /* pt_ccore_restore's bytes */
    size_t copy_len;
    char **members; /* hosts that were members at revision, name order */
    size_t nmembers;
    const char *err;
} pt_csnap_loaded;

typedef void (*pt_csnap_loaded_fn)(void *ctx, const pt_csnap_loaded *l);

/* For host under prefix, through etcd at endpoints (tls: for https), a snapshot every
 * `every` entries applied (0: never), etcd's history compacted behind
 * them unless no_compact. NULL with the reason in err. */
pt_csnap *pt_csnap_new(struct event_base *base, const char *endpoints, const pt_etcd_tls *tls,
                       const char *prefix, const char *host, uint32_t every, int no_compact,
                       char *err, size_t errlen);
/* Not from inside one of its callbacks; a write under way is dropped. */
void pt_csnap_free(pt_csnap *s);

/* host's entry seq was applied to the copy. */
void pt_csnap_entry(pt_csnap *s, const char *host, uint64_t seq);
/* host's last entry applied (0: none). */
uint64_t pt_csnap_seq(const pt_csnap *s, const char *host);

/* 1 when enough entries were applied since the last snapshot, and none is
 * being written. */
int pt_csnap_due(const pt_csnap *s);
/* Writes the copy cc as it is at revision (every entry up to it applied),
 * with the members then. Problems go to the daemon's log; the next try
 * comes `every` entries later. */
void pt_csnap_write(pt_csnap *s, int64_t revision, const pt_ccore *cc, char *const *members,
                    size_t nmembers);

/* Loads the newest snapshot; fn hears once (retried meanwhile while etcd
 * does not answer). -1 when one is loading already or without memory. */
int pt_csnap_load(pt_csnap *s, pt_csnap_loaded_fn fn, void *ctx);

#endif /* PT_CLUSTER_SNAP_H */
