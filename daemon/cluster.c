/*
 * cluster.c - pythreadd --etcd: a connection's calls on cluster objects go
 * to the cluster's log (cluster_log.c) as entries; the log brings every
 * host's entries back in one order, and each is applied to this daemon's
 * copy of the cluster's core (cluster_core.c), whose answers to this host's
 * connections are written to them as any answer is.
 *
 * Times are the wall clock's (the hosts share no other clock); a wait's
 * timeout is ended by an EXPIRE entry that any host appends once its clock
 * says the earliest deadline has passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "cluster.h"
#include "cluster_core.h"
#include "cluster_log.h"
#include "cluster_snap.h"
#include "daemon.h"
#include "names.h"

#define CONN_BUCKETS 1024u
/* Seconds a stopping daemon waits for etcd to end its lease. */
#define LEAVE_TIMEOUT 2.0

/* A host of the cluster, as the log's joins and departures tell. */
typedef struct member {
    char name[PT_CLOG_HOST_MAX + 1];
    LIST_ENTRY(member) link;
} member;

struct pt_cluster {
    pt_daemon *d;
    pt_ccore *cc;
    pt_clog *log;
    char host[PT_CLOG_HOST_MAX + 1];
    /* This host's connections with a session in the copy, by id. */
    LIST_HEAD(pt_cluster_conns, pt_conn) conns[CONN_BUCKETS];
    struct event *expire;  /* at the copy's earliest deadline */
    uint64_t expire_asked; /* the deadline an EXPIRE was appended for */
    int joined;            /* it has been one since the log was opened */
    struct event *rejoin;  /* a join refused: the next try */
    int left;              /* pt_cluster_leave: the lease is revoked */
    /* This membership's join was applied: the copy's answers to this host's
     * connections are theirs from here on. Before it they are answers to
     * a past run's connections, replayed, whose numbers a connection of
     * this run (or one kept across the restart) may have again. */
    int live;
    pt_cluster_options o;
    LIST_HEAD(, member) members;
    size_t nmembers;
    pt_csnap *snap;          /* snapshots: the newest loaded at the start, written here */
    uint64_t ahead_id;       /* the last call answered ahead (pt_ccore_enc_ahead) */
    uint64_t answered_ahead; /* calls answered ahead since the daemon started */
    int hand_back_again;     /* a hand-back could not be appended: asked again */
    int log_started;         /* pt_clog_start was called (after the snapshot's load) */
};

static uint64_t wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct pt_cluster_conns *conn_bucket(pt_cluster *cl, uint64_t id)
{
    return &cl->conns[(id * 0x9E3779B97F4A7C15ull) >> 54];
}

static pt_conn *conn_find(pt_cluster *cl, uint64_t id)
{
    pt_conn *c;

    LIST_FOREACH(c, conn_bucket(cl, id), cluster_link)
    {
        if (c->id == id)
            return c;
    }
    return NULL;
}

/* c leaves the cluster's connections: its session there ends or has ended. */
static void conn_forget(pt_conn *c)
{
    c->cluster = 0;
    LIST_REMOVE(c, cluster_link);
}

/* ------------------------------------------------------------------ */
/* To the log                                                          */
/* ------------------------------------------------------------------ */

/* Append an entry (taking p); 0, or -1 with the reason in err. */
static int append(pt_cluster *cl, uint8_t *p, size_t len, int enc, char *err, size_t errlen)
{
    int r = -1;

    if (enc < 0)
        snprintf(err, errlen, "out of memory");
    else
        r = pt_clog_append(cl->log, p, len, NULL, err, errlen);
    free(p);
    return r;
}

int pt_cluster_request_is(const Pythread__Request *req)
{
    if (req->op == PYTHREAD__OP__OP_OPEN)
        return req->open != NULL && (req->open->flags & PT_OPEN_CLUSTER) != 0;
    if (req->op == PYTHREAD__OP__OP_UNLINK && req->has_cluster && req->cluster)
        return 1;
    return req->has_handle && (req->handle & PT_CLUSTER_HANDLE) != 0;
}

/* The call as the copy sees it: its handles without the cluster's bit.
 * NULL (with why) for a condition over a host's lock. */
static const char *request_strip(const Pythread__Request *req, Pythread__Request *out,
                                 Pythread__OpenArgs *open)
{
    *out = *req;
    out->handle &= ~PT_CLUSTER_HANDLE;
    if (req->open == NULL)
        return NULL;
    *open = *req->open;
    out->open = open;
    if (open->lock_handle != 0 && !(open->lock_handle & PT_CLUSTER_HANDLE))
        return "a cluster Condition needs a cluster Lock or RLock; open its lock with "
               "PT_OPEN_CLUSTER too";
    open->lock_handle &= ~PT_CLUSTER_HANDLE;
    return NULL;
}

/* c's first cluster call opens its session in the log, before the call. */
static int session_open(pt_cluster *cl, pt_conn *c, char *err, size_t errlen)
{
    uint8_t *p = NULL;
    size_t len = 0;
    int enc;

    if (c->cluster)
        return 0;
    enc = pt_ccore_enc_session_new(c->id, &c->peer, &p, &len);
    if (append(cl, p, len, enc, err, errlen) < 0)
        return -1;
    c->cluster = 1;
    LIST_INSERT_HEAD(conn_bucket(cl, c->id), c, cluster_link);
    return 0;
}

/* This host writes the next snapshot, due now: the copy must be the log's,
 * so nothing is answered ahead until it is written. */
static int snapshot_mine(pt_cluster *cl)
{
    const member *m = LIST_FIRST(&cl->members);

    return pt_csnap_due(cl->snap) && m != NULL && strcmp(m->name, cl->host) == 0;
}

/* A call on a lock this host owns whose outcome is fixed is answered now,
 * its entry appended for the other copies (cluster_own.c). Only when every
 * entry this daemon appended before is back from the log, but for those
 * answered ahead (the copy is then the log's but for them), and while the
 * lease is sure: a daemon resumed after a stop past its lease must not
 * answer from a copy that still thinks the lock its own. */
static int answer_ahead(pt_cluster *cl, pt_conn *c, const Pythread__Request *call)
{
    uint8_t *p = NULL;
    size_t len = 0;
    char err[256];

    if (!cl->live || !pt_clog_lease_sure(cl->log) ||
        pt_clog_pending(cl->log) != pt_ccore_ahead(cl->cc) || snapshot_mine(cl) ||
        !pt_ccore_ahead_ok(cl->cc, c->id, call))
        return 0;
    if (pt_ccore_enc_ahead(cl->cc, c->id, call, cl->ahead_id + 1, &p, &len) < 0)
        return 0;
    if (pt_clog_append(cl->log, p, len, NULL, err, sizeof(err)) != 0) {
        free(p);
        return 0; /* it goes the log's way, and fails there with the reason */
    }
    cl->ahead_id++;
    cl->answered_ahead++;
    pt_ccore_apply_ahead(cl->cc, c->id, call, cl->ahead_id);
    free(p);
    return 1;
}

void pt_cluster_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req)
{
    pt_cluster *cl = d->cluster;
    Pythread__Request call;
    Pythread__OpenArgs open;
    const char *bad = request_strip(req, &call, &open);
    char err[256], msg[512];
    uint8_t *p = NULL;
    size_t len = 0;
    int enc;

    if (bad != NULL) {
        pt_conn_send_error(c, req->id, PT_EINVAL, bad);
        return;
    }
    if (session_open(cl, c, err, sizeof(err)) == 0) {
        if (answer_ahead(cl, c, &call))
            return;
        enc = pt_ccore_enc_call(c->id, &call, wall_now(), &p, &len);
        if (append(cl, p, len, enc, err, sizeof(err)) == 0)
            return; /* answered when the log brings it back */
    }
    snprintf(msg, sizeof(msg),
             "the cluster's log did not take the call: %s; see pythreadd's log, and "
             "pythreadctl status for the cluster",
             err);
    pt_conn_send_error(c, req->id, PT_ERUNTIME, msg);
}

void pt_cluster_conn_end(pt_daemon *d, pt_conn *c)
{
    pt_cluster *cl = d->cluster;
    uint8_t *p = NULL;
    size_t len = 0;
    char err[256];
    int enc;

    if (cl == NULL || !c->cluster)
        return;
    conn_forget(c);
    if (cl->left)
        return; /* the session ended with the lease */
    enc = pt_ccore_enc_session_end(c->id, wall_now(), &p, &len);
    if (append(cl, p, len, enc, err, sizeof(err)) < 0)
        pt_log(LOG_ERR,
               "pythreadd: session %llu's end could not go to the cluster's log (%s): what it "
               "holds there is given back when this host's lease ends",
               (unsigned long long)c->id, err);
}

/* ------------------------------------------------------------------ */
/* From the log                                                        */
/* ------------------------------------------------------------------ */

/* Another host waits for a lock this host owns: it is handed back. */
static void on_wanted(void *ctx, uint64_t serial)
{
    pt_cluster *cl = ctx;
    uint8_t *p = NULL;
    size_t len = 0;
    char err[256];
    int enc;

    if (!cl->live)
        return; /* a past run's lock: its host's end hands it back */
    enc = pt_ccore_enc_hand_back(serial, &p, &len);
    if (append(cl, p, len, enc, err, sizeof(err)) < 0) {
        cl->hand_back_again = 1;
        pt_log(LOG_WARNING,
               "pythreadd: handing back cluster lock %llu, that another host waits for: %s; "
               "trying again at the next entry",
               (unsigned long long)serial, err);
    }
}

/* The copy's answer to one of this host's connections. */
static void answer(void *ctx, uint64_t conn, const pt_result *res)
{
    pt_cluster *cl = ctx;
    pt_conn *c = conn_find(cl, conn);
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;
    Pythread__State state = PYTHREAD__STATE__INIT;

    if (!cl->live || c == NULL || c->closing)
        return; /* a past run's, or it ended: its SESSION_END follows in the log */
    pt_dispatch_answer(res, &r, &state);
    if (r.has_handle)
        r.handle |= PT_CLUSTER_HANDLE;
    pt_conn_send(c, &r);
}

static void expire_arm(pt_cluster *cl);

static void on_entry(void *ctx, const char *host, uint64_t seq, int64_t revision,
                     const uint8_t *bytes, size_t len)
{
    pt_cluster *cl = ctx;
    char err[256];

    if (pt_ccore_apply(cl->cc, host, bytes, len, err, sizeof(err)) < 0)
        pt_log(LOG_WARNING,
               "pythreadd: cluster log entry %llu of host '%s' (revision %lld) "
               "ignored: %s",
               (unsigned long long)seq, host, (long long)revision, err);
    pt_csnap_entry(cl->snap, host, seq);
    expire_arm(cl);
    pt_daemon_settle(cl->d, pt_daemon_now());
}

static member *member_find(pt_cluster *cl, const char *host)
{
    member *m;

    LIST_FOREACH(m, &cl->members, link)
    {
        if (strcmp(m->name, host) == 0)
            return m;
    }
    return NULL;
}

/* Kept in name order, so status lists the hosts alike on every host. */
static void member_add(pt_cluster *cl, const char *host)
{
    member *m, *at, *before = NULL;

    if (member_find(cl, host) != NULL || (m = calloc(1, sizeof(*m))) == NULL)
        return; /* (without memory, status lists one host less) */
    snprintf(m->name, sizeof(m->name), "%s", host);
    LIST_FOREACH(at, &cl->members, link)
    {
        if (strcmp(at->name, host) > 0)
            break;
        before = at;
    }
    if (before != NULL)
        LIST_INSERT_AFTER(before, m, link);
    else
        LIST_INSERT_HEAD(&cl->members, m, link);
    cl->nmembers++;
}

static void member_remove(pt_cluster *cl, member *m)
{
    LIST_REMOVE(m, link);
    cl->nmembers--;
    free(m);
}

static void members_clear(pt_cluster *cl)
{
    while (!LIST_EMPTY(&cl->members))
        member_remove(cl, LIST_FIRST(&cl->members));
}

static void on_host_joined(void *ctx, const char *host, int64_t revision)
{
    pt_cluster *cl = ctx;

    member_add(cl, host);
    if (strcmp(host, cl->host) == 0 && revision == pt_clog_joined_revision(cl->log))
        cl->joined = cl->live = 1; /* not a past run's join, replayed */
    pt_log(LOG_INFO, "pythreadd: cluster host '%s' joined (revision %lld)%s", host,
           (long long)revision, strcmp(host, cl->host) == 0 ? ": this host" : "");
}

static void on_host_gone(void *ctx, const char *host, int64_t revision)
{
    pt_cluster *cl = ctx;
    member *m = member_find(cl, host);

    if (m != NULL)
        member_remove(cl, m);
    pt_log(LOG_NOTICE,
           "pythreadd: cluster host '%s' gone (revision %lld): what its processes held in the "
           "cluster is given back",
           host, (long long)revision);
    pt_ccore_host_gone(cl->cc, host);
    expire_arm(cl);
    pt_daemon_settle(cl->d, pt_daemon_now());
}

/* What closing a connection with a cluster session says of that session. */
typedef enum {
    SESSION_GONE, /* it ended with this host's membership: nothing to append */
    SESSION_ENDS, /* the membership stands: its end goes to the log */
} session_fate;

/* Close every connection with a cluster session, telling it msg. How many. */
static size_t conns_close(pt_cluster *cl, const char *msg, session_fate fate)
{
    size_t n = 0;

    for (unsigned i = 0; i < CONN_BUCKETS; i++) {
        pt_conn *c;

        while ((c = LIST_FIRST(&cl->conns[i])) != NULL) {
            if (fate == SESSION_GONE)
                conn_forget(c); /* before the close, so its end appends nothing */
            pt_conn_close_with(c, msg, pt_daemon_now()); /* else its end appends */
            n++;
        }
    }
    return n;
}

/* Every connection with a cluster session is closed: its holds there may
 * be another host's by the time it is told otherwise. */
static void on_lease_lost(void *ctx, const char *why)
{
    pt_cluster *cl = ctx;
    char msg[512];
    size_t n;

    snprintf(msg, sizeof(msg),
             "this host lost its place in the cluster (%s): every cluster lock, permit and "
             "wait of this session is gone; connect again",
             why);
    cl->live = 0; /* until the next membership's join */
    n = conns_close(cl, msg, SESSION_GONE);
    pt_log(LOG_ERR, "pythreadd: cluster lease lost (%s): %zu sessions with cluster objects closed",
           why, n);
    pt_daemon_settle(cl->d, pt_daemon_now());
}

static void snap_loaded(void *ctx, const pt_csnap_loaded *l);

/* The watch fell behind etcd's compaction: the copy is loaded again from
 * the newest snapshot (snap_loaded). */
static void on_compacted(void *ctx, int64_t revision)
{
    pt_cluster *cl = ctx;

    pt_log(LOG_WARNING,
           "pythreadd: the cluster's log was compacted in etcd past revision %lld, where this "
           "daemon's copy stood: loading the newest snapshot (this host's connections with "
           "cluster sessions are closed then)",
           (long long)revision);
    pt_csnap_load(cl->snap, snap_loaded, cl); /* -1: loading already */
}

/* A log that stopped before this host joined (its name still held by a
 * lease, often its own before a restart) is opened again once a lease
 * could have ended; one that stops later stops the daemon. */
static void on_error(void *ctx, const char *message, int fatal)
{
    pt_cluster *cl = ctx;
    struct timeval tv = {(time_t)cl->o.ttl + 1, 0};

    pt_log(fatal ? LOG_ERR : LOG_WARNING, "pythreadd: %s", message);
    if (!fatal)
        return;
    if (!cl->joined) {
        pt_log(LOG_NOTICE, "pythreadd: trying to join the cluster again in %u s", cl->o.ttl + 1);
        evtimer_add(cl->rejoin, &tv);
        return;
    }
    pt_log(LOG_ERR, "pythreadd: the cluster's log stopped: stopping");
    cl->d->failed = 1;
    event_base_loopbreak(cl->d->base);
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                            */
/* ------------------------------------------------------------------ */

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_cluster *cl = arg;
    uint64_t deadline = pt_ccore_next_deadline(cl->cc), now = wall_now();
    uint8_t *p = NULL;
    size_t len = 0;
    char err[256];
    int enc;

    (void)fd, (void)what;
    if (deadline == PT_DEADLINE_NONE || deadline == cl->expire_asked)
        return;
    if (now < deadline) {
        expire_arm(cl);
        return;
    }
    enc = pt_ccore_enc_expire(now, &p, &len);
    if (append(cl, p, len, enc, err, sizeof(err)) == 0)
        cl->expire_asked = deadline;
    else
        pt_log(LOG_WARNING, "pythreadd: a cluster wait's timeout could not go to the log: %s", err);
}

/* The timer at the copy's earliest deadline, by this host's clock. */
static void expire_arm(pt_cluster *cl)
{
    uint64_t deadline = pt_ccore_next_deadline(cl->cc), now = wall_now(), wait;
    struct timeval tv;

    evtimer_del(cl->expire);
    if (deadline == PT_DEADLINE_NONE || deadline == cl->expire_asked)
        return;
    wait = deadline > now ? deadline - now : 0;
    tv.tv_sec = (time_t)(wait / 1000000000u);
    tv.tv_usec = (suseconds_t)(wait % 1000000000u / 1000u + 1);
    evtimer_add(cl->expire, &tv);
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

static void cluster_fail(pt_cluster *cl, const char *why)
{
    pt_log(LOG_ERR, "pythreadd: %s; stopping", why);
    cl->d->failed = 1;
    event_base_loopbreak(cl->d->base);
}

/* The copy from the newest snapshot, and the log from the revision after
 * it; or, with none, the log from its first entry. */
static void snap_loaded(void *ctx, const pt_csnap_loaded *l)
{
    pt_cluster *cl = ctx;
    pt_ccore *cc;
    char why[1536], err[256];
    size_t n;

    if (l->err != NULL) {
        snprintf(why, sizeof(why),
                 "%.1200s; with etcd's history whole, deleting those keys starts the copy from "
                 "the log's first entry",
                 l->err);
        cluster_fail(cl, why);
        return;
    }
    /* Compacted past this copy, and no snapshot after it: only etcd's own
     * compaction goes past the newest snapshot (ours stops at the one
     * before), and from there on every load would end here again. */
    if (cl->log_started && l->revision <= pt_clog_revision(cl->log)) {
        snprintf(why, sizeof(why),
                 "the cluster's log was compacted in etcd past revision %lld, where this "
                 "daemon's copy stands, and the newest snapshot is at %lld: the copy cannot be "
                 "brought up to date; run etcd without --auto-compaction-* (the cluster's "
                 "snapshots compact it), or with a retention longer than --etcd-snapshot-every "
                 "entries take",
                 (long long)pt_clog_revision(cl->log), (long long)l->revision);
        cluster_fail(cl, why);
        return;
    }
    if (l->revision > 0) {
        /* No copy: a new cluster, the copy empty at that revision. */
        cc = l->copy == NULL
                 ? pt_ccore_new(cl->host, answer, cl)
                 : pt_ccore_restore(cl->host, answer, cl, l->copy, l->copy_len, err, sizeof(err));
        if (cc == NULL) {
            snprintf(why, sizeof(why), "the cluster's snapshot at revision %lld: %s",
                     (long long)l->revision, l->copy == NULL ? "out of memory" : err);
            cluster_fail(cl, why);
            return;
        }
        /* At the start nothing of this host's was sent yet: its entries
         * land after its join, after the snapshot, and are applied here. */
        n = !cl->log_started
                ? 0
                : conns_close(cl,
                              "this daemon's copy of the cluster's objects was loaded again from a "
                              "snapshot: the answers to this session's cluster calls may be lost; "
                              "connect again",
                              SESSION_ENDS);
        pt_ccore_free(cl->cc);
        cl->cc = cc;
        pt_ccore_set_wanted(cc, on_wanted);
        /* A hand-back asked for before the snapshot's revision may not have
         * been seen by the copy this one replaces: asked again (a second
         * one is passed over). */
        pt_ccore_wanted_again(cc);
        members_clear(cl);
        for (size_t i = 0; i < l->nmembers; i++)
            member_add(cl, l->members[i]);
        if (l->copy != NULL)
            pt_log(LOG_NOTICE,
                   "pythreadd: the cluster's copy loaded from the snapshot at revision %lld (%zu "
                   "hosts, %zu sessions); %zu connections with cluster sessions closed",
                   (long long)l->revision, l->nmembers, pt_ccore_sessions(cc), n);
    }
    cl->expire_asked = 0;
    expire_arm(cl);
    if (!cl->log_started) {
        cl->log_started = 1;
        pt_clog_start(cl->log, l->revision + 1);
    } else {
        pt_clog_rewatch(cl->log, l->revision + 1, pt_csnap_seq(cl->snap, cl->host));
    }
    pt_daemon_settle(cl->d, pt_daemon_now());
}

/* After each revision: the member first in name order writes a snapshot
 * once enough entries went by. Every copy knows the members at the same
 * place in the order, so one host writes (and the head's compare keeps a
 * host that still thinks itself first from going back). */
static void on_applied(void *ctx, int64_t revision)
{
    pt_cluster *cl = ctx;
    member *m = LIST_FIRST(&cl->members);
    char **names;
    size_t n = 0;

    if (cl->hand_back_again) {
        cl->hand_back_again = 0;
        pt_ccore_wanted_again(cl->cc);
    }
    if (!snapshot_mine(cl) || !pt_clog_is_member(cl->log) || pt_ccore_ahead(cl->cc) > 0)
        return; /* (with calls ahead: at a revision after they are back) */
    if ((names = calloc(cl->nmembers + 1, sizeof(*names))) == NULL)
        return;
    LIST_FOREACH(m, &cl->members, link)
    {
        names[n++] = m->name;
    }
    pt_csnap_write(cl->snap, revision, cl->cc, names, n);
    free(names);
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */
/* ------------------------------------------------------------------ */

static const pt_clog_callbacks callbacks = {
    .on_entry = on_entry,
    /* no on_committed: an entry's answers come from applying it (on_entry) */
    .on_host_joined = on_host_joined,
    .on_host_gone = on_host_gone,
    .on_lease_lost = on_lease_lost,
    .on_compacted = on_compacted,
    .on_applied = on_applied,
    .on_error = on_error,
};

/* A copy and its log: the copy from the newest snapshot, the log from the
 * revision after it (snap_loaded). */
static int log_open(pt_cluster *cl, char *err, size_t errlen)
{
    const pt_cluster_options *o = &cl->o;
    /* The TLS files are read here, at the start and at each join after a
     * stopped log: a renewed client certificate is taken up then. */
    const pt_clog_options lo = {.tls = &o->tls};

    cl->cc = pt_ccore_new(o->host, answer, cl);
    if (cl->cc != NULL)
        pt_ccore_set_wanted(cl->cc, on_wanted);
    if (cl->cc == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cl->log = pt_clog_new(cl->d->base, o->endpoints, o->prefix, o->host, (int)o->ttl, &callbacks,
                          cl, &lo, err, errlen);
    if (cl->log == NULL)
        return -1;
    cl->snap = pt_csnap_new(cl->d->base, o->endpoints, &o->tls, o->prefix, o->host,
                            o->snapshot_every, o->no_compact, err, errlen);
    cl->log_started = 0;
    return cl->snap == NULL || pt_csnap_load(cl->snap, snap_loaded, cl) < 0 ? -1 : 0;
}

static void log_close(pt_cluster *cl)
{
    cl->live = 0;
    members_clear(cl); /* the next log tells them again from its first entry */
    if (cl->log)
        pt_clog_free(cl->log);
    cl->log = NULL;
    pt_csnap_free(cl->snap);
    cl->snap = NULL;
    pt_ccore_free(cl->cc);
    cl->cc = NULL;
    cl->expire_asked = 0;
    evtimer_del(cl->expire);
}

static void rejoin_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_cluster *cl = arg;
    char err[512];

    (void)fd, (void)what;
    conns_close(cl,
                "this host could not join the cluster: its cluster calls were not "
                "made; connect again",
                SESSION_GONE);
    log_close(cl);
    if (log_open(cl, err, sizeof(err)) < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot join the cluster again: %s; stopping", err);
        cl->d->failed = 1;
        event_base_loopbreak(cl->d->base);
    }
    pt_daemon_settle(cl->d, pt_daemon_now());
}

int pt_cluster_start(pt_daemon *d, const pt_cluster_options *o)
{
    pt_cluster *cl = calloc(1, sizeof(*cl));
    char err[512];

    if (cl == NULL)
        return -1;
    cl->d = d;
    LIST_INIT(&cl->members);
    cl->o = *o;
    snprintf(cl->host, sizeof(cl->host), "%s", o->host);
    cl->o.host = cl->host;
    cl->expire = evtimer_new(d->base, expire_cb, cl);
    cl->rejoin = evtimer_new(d->base, rejoin_cb, cl);
    if (cl->expire == NULL || cl->rejoin == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (log_open(cl, err, sizeof(err)) < 0)
        goto fail;
    d->cluster = cl;
    pt_log(LOG_INFO, "pythreadd: joining the cluster at %s as host '%s' (prefix %s, lease of %u s)",
           o->endpoints, o->host, o->prefix, o->ttl);
    return 0;
fail:
    pt_log(LOG_ERR, "pythreadd: cannot join the cluster at %s as host '%s': %s", o->endpoints,
           o->host, err);
    d->cluster = cl;
    pt_cluster_free(d);
    return -1;
}

void pt_cluster_leave(pt_daemon *d)
{
    pt_cluster *cl = d->cluster;
    char err[512];

    if (cl == NULL || cl->log == NULL)
        return;
    /* Not kept across a restart: a process whose cluster holds end must
     * hear so at once (pythreadctl lock --cluster stops its command), and
     * the end of its connection and session is how it hears. */
    conns_close(cl,
                "pythreadd stopped or restarted, and this host left the cluster: the "
                "cluster locks, permits and waits of this session were given back; "
                "connect again",
                SESSION_GONE);
    cl->left = 1;
    if (pt_clog_leave(cl->log, LEAVE_TIMEOUT, err, sizeof(err)) == 0)
        pt_log(LOG_INFO, "pythreadd: left the cluster: what this host's processes held there "
                         "is given back");
    else
        pt_log(LOG_WARNING,
               "pythreadd: could not leave the cluster (%s): what this host's processes held "
               "there is given back when its lease ends, within %u s",
               err, cl->o.ttl);
}

void pt_cluster_status(pt_daemon *d, Pythread__StatusInfo *st, char **members, size_t cap)
{
    pt_cluster *cl = d->cluster;
    size_t n = 0;
    member *m;

    if (cl == NULL)
        return;
    st->cluster_host = cl->host;
    st->cluster_endpoints = (char *)cl->o.endpoints;
    LIST_FOREACH(m, &cl->members, link)
    {
        if (n < cap)
            members[n++] = m->name;
    }
    st->n_cluster_members = n;
    st->cluster_members = members;
    st->has_cluster_lease = st->has_cluster_lease_seconds = 1;
    st->cluster_lease = cl->log ? pt_clog_lease(cl->log, &st->cluster_lease_seconds) : 0;
    st->has_cluster_owned = st->has_cluster_ahead = 1;
    st->cluster_owned = cl->cc != NULL ? pt_ccore_owned(cl->cc, cl->host) : 0;
    st->cluster_ahead = cl->answered_ahead;
}

pt_core *pt_cluster_core(pt_daemon *d, uint64_t *now)
{
    if (d->cluster == NULL || d->cluster->cc == NULL)
        return NULL;
    *now = wall_now();
    return pt_ccore_core(d->cluster->cc);
}

void pt_cluster_free(pt_daemon *d)
{
    pt_cluster *cl = d->cluster;

    if (cl == NULL)
        return;
    if (cl->expire)
        log_close(cl);
    if (cl->expire)
        event_free(cl->expire);
    if (cl->rejoin)
        event_free(cl->rejoin);
    free(cl);
    d->cluster = NULL;
}
