/*
 * cluster.h - pythreadd --etcd: the cluster's objects beside the host's.
 *
 * A connection's calls on cluster objects (an open with PT_OPEN_CLUSTER, a
 * handle with PT_CLUSTER_HANDLE set) go to the cluster's log as entries;
 * every daemon applies the log to its copy of the core (cluster_core.c),
 * and the copy's answers to this host's connections are written to them
 * as any answer is. Nothing here waits for etcd: a call is answered when
 * its entry comes back through the log.
 */
#ifndef PT_CLUSTER_H
#define PT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "etcd.h"
#include "pythread.pb-c.h"
#include "wire.h"

typedef struct pt_daemon pt_daemon;
typedef struct pt_conn pt_conn;
typedef struct pt_cluster pt_cluster;

/* A cluster object's handles, as connections see them: the copy's own
 * handle with this bit set, so that one connection's handles of both
 * kinds never meet. */
#define PT_CLUSTER_HANDLE PT_WIRE_CLUSTER_HANDLE

/* pythreadd --etcd ENDPOINTS [--etcd-prefix P] [--etcd-ttl S] [--host-name N]
 * [--etcd-cacert F] [--etcd-cert F --etcd-key F]
 * [--etcd-snapshot-every N] [--etcd-keep-history]. */
typedef struct pt_cluster_options {
    const char *endpoints; /* NULL: no cluster */
    const char *prefix;
    uint32_t ttl; /* seconds */
    const char *host;
    pt_etcd_tls tls; /* for https:// endpoints; NULLs: the system's CAs, no client certificate */
    uint32_t snapshot_every; /* entries between snapshots; 0: none written */
    int no_compact;          /* --etcd-keep-history: etcd's history is not compacted */
} pt_cluster_options;

#define PT_CLUSTER_PREFIX_DEFAULT "/pythread/"
#define PT_CLUSTER_TTL_DEFAULT    10u
#define PT_CLUSTER_TTL_MAX        3600u
/* Entries applied between two snapshots of the cluster's copy. */
#define PT_CLUSTER_SNAPSHOT_EVERY 10000u

/* Join the cluster (nothing waits: the log answers later). 0, or -1 after
 * saying why in the log. */
int pt_cluster_start(pt_daemon *d, const pt_cluster_options *o);
/* A clean stop (SIGTERM, SIGUSR2, a restart under systemd): this host
 * leaves the cluster now, its lease revoked, so what its processes held
 * there is given back at once rather than with the lease's ttl, and the
 * next start joins without waiting for it. Connections with a cluster
 * session are closed first, their sessions ended, never kept across the
 * restart: their processes learn at once that their cluster holds are
 * gone, as when the lease is lost. Waits at most a few seconds for etcd. */
void pt_cluster_leave(pt_daemon *d);
/* Leave without revoking: this host's holds there end with its lease. */
void pt_cluster_free(pt_daemon *d);

/* The cluster's copy of the core for inspection, and its time (the wall
 * clock's, in nanoseconds); NULL without --etcd. */
pt_core *pt_cluster_core(pt_daemon *d, uint64_t *now);

/* What pythreadctl status shows of the cluster: fills st's cluster_*
 * fields (names pointing into the daemon's memory until its next turn;
 * members into an array of at most cap). Nothing without --etcd. */
void pt_cluster_status(pt_daemon *d, Pythread__StatusInfo *st, char **members, size_t cap);

/* 1 when req is for the cluster's objects. */
int pt_cluster_request_is(const Pythread__Request *req);
/* Send c's call req to the log (the answer comes when it is applied). */
void pt_cluster_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req);
/* c ends: its cluster session, if it has one, ends in the log's order. */
void pt_cluster_conn_end(pt_daemon *d, pt_conn *c);

#endif /* PT_CLUSTER_H */
