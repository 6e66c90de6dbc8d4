/*
 * deadlock.c - what the daemon does with the deadlocks its core finds
 * (core.h, "Deadlocks"): one warning line in the log naming every owner
 * (session, pid, process, uid, thread) and what it holds and waits for,
 * one line when a standing one is broken, and the last ones that no longer
 * stand, kept for `pythreadctl deadlocks` with their owners as they were
 * (a broken deadlock's sessions may be gone since). Those still standing
 * are the core's, listed from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "daemon.h"

static double wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wall-clock time of a moment on the core's clock (now is that clock's
 * reading at wall time wall). */
static double wall_of(uint64_t mono, uint64_t now, double wall)
{
    return wall - ((double)now - (double)mono) / 1e9;
}

static void copy_name(char *dst, size_t cap, const char *src, size_t len)
{
    if (src == NULL)
        len = 0;
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

/* A member as the daemon shows it: the core's facts and the process name
 * its connection gave. */
static void member_take(pt_dl_member *out, const pt_core_cycle_member *m)
{
    const pt_peer *peer = pt_core_session_peer(m->session);
    const pt_conn *c = pt_core_session_udata(m->session);

    *out = (pt_dl_member){
        .session = pt_core_session_id(m->session),
        .pid = peer->pid,
        .uid = peer->uid,
        .thread = m->thread,
        .request = m->request,
        .waits_kind = m->waits_kind,
        .obj_uid = m->uid,
        .obj_gid = m->gid,
        .obj_mode = m->mode,
        .reacquire = m->reacquire,
    };
    copy_name(out->process, sizeof(out->process), c ? c->client_name : NULL,
              c ? strlen(c->client_name) : 0);
    copy_name(out->waits, sizeof(out->waits), m->waits, m->waits_len);
    copy_name(out->via, sizeof(out->via), m->via, m->via_len);
}

void pt_deadlock_record_fill(pt_dl_record *r, const pt_core_cycle *cy, uint64_t now)
{
    double wall = wall_now();

    r->id = cy->id;
    r->state = cy->state;
    r->found = wall_of(cy->found, now, wall);
    r->ended = cy->state == PT_CYCLE_STANDING ? 0 : wall;
    r->n = cy->n;
    r->broke = cy->broke;
    r->released = cy->released;
    r->nmembers = cy->shown < PT_DAEMON_DEADLOCK_MEMBERS ? cy->shown : PT_DAEMON_DEADLOCK_MEMBERS;
    for (size_t i = 0; i < r->nmembers; i++)
        member_take(&r->members[i], &cy->members[i]);
}

/* "session 4 (pid 1234 'worker', uid 1000) thread 1235 holds Lock 'c' and
 * waits for Lock 'a'; ...": as much as the log's line takes. */
static size_t cycle_text(char *buf, size_t cap, const pt_dl_record *r)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < r->nmembers && used < cap; i++) {
        const pt_dl_member *m = &r->members[i];
        size_t h = (i + r->n - 1) % r->n;

        used += (size_t)snprintf(
            buf + used, cap - used, "%ssession %llu (pid %ld%s%s%s, uid %u) thread %llu ",
            i ? "; " : "", (unsigned long long)m->session, (long)m->pid, m->process[0] ? " '" : "",
            m->process, m->process[0] ? "'" : "", (unsigned)m->uid, (unsigned long long)m->thread);
        if (h < r->nmembers && used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "holds %s '%s' and ",
                                     pt_kind_name((pt_kind)r->members[h].waits_kind),
                                     r->members[h].waits);
        if (used < cap)
            used += (size_t)snprintf(
                buf + used, cap - used, "%s %s '%s'%s%s%s",
                m->reacquire ? "takes back" : "waits for", pt_kind_name((pt_kind)m->waits_kind),
                m->waits, m->via[0] ? " through Condition '" : "", m->via, m->via[0] ? "'" : "");
    }
    if (r->nmembers < r->n && used < cap)
        used += (size_t)snprintf(buf + used, cap - used, "; and %zu more", r->n - r->nmembers);
    return used;
}

/* The last kept ones, newest first, in a ring. */
struct pt_deadlocks {
    pt_dl_record *ring[PT_DAEMON_DEADLOCKS_KEPT];
    size_t next;
    pt_dl_record scratch; /* for the log lines of those not kept */
};

static pt_dl_record *record_new(void)
{
    return calloc(1, sizeof(pt_dl_record));
}

/* Keep r (or forget the oldest when there is no memory for it). */
static void keep(pt_deadlocks *k, const pt_dl_record *r)
{
    pt_dl_record **slot = &k->ring[k->next];

    if (*slot == NULL && (*slot = record_new()) == NULL)
        return;
    **slot = *r;
    k->next = (k->next + 1) % PT_DAEMON_DEADLOCKS_KEPT;
}

void pt_deadlock_recent_each(const pt_daemon *d, void (*fn)(void *ctx, const pt_dl_record *r),
                             void *ctx)
{
    const pt_deadlocks *k = d->deadlocks;

    for (size_t i = 1; k != NULL && i <= PT_DAEMON_DEADLOCKS_KEPT; i++) {
        const pt_dl_record *r =
            k->ring[(k->next + PT_DAEMON_DEADLOCKS_KEPT - i) % PT_DAEMON_DEADLOCKS_KEPT];

        if (r != NULL && r->id != 0)
            fn(ctx, r);
    }
}

static void on_found(void *ctx, const pt_core_cycle *cy)
{
    pt_daemon *d = ctx;
    pt_dl_record *r = &d->deadlocks->scratch;
    char text[900];

    pt_deadlock_record_fill(r, cy, pt_daemon_now());
    cycle_text(text, sizeof(text), r);
    pt_log_peer(r->members[0].uid, LOG_WARNING,
                "pythreadd: deadlock #%llu found, %zu owner%s in a cycle of lock waits%s: %s; "
                "see pythreadctl deadlocks",
                (unsigned long long)r->id, r->n, r->n == 1 ? "" : "s",
                cy->state == PT_CYCLE_FAILED
                    ? " (the wait that closed it failed with a deadlock error)"
                    : " (the waits go on)",
                text);
    if (cy->state == PT_CYCLE_FAILED)
        keep(d->deadlocks, r);
}

static void on_ended(void *ctx, const pt_core_cycle *cy)
{
    pt_daemon *d = ctx;
    pt_dl_record *r = &d->deadlocks->scratch;
    const pt_dl_member *m;
    const pt_dl_member *held;

    pt_deadlock_record_fill(r, cy, pt_daemon_now());
    keep(d->deadlocks, r);
    if (r->broke >= r->nmembers)
        return;
    m = &r->members[r->broke];
    held = &r->members[(r->broke + r->n - 1) % r->n];
    if (r->released && (r->broke + r->n - 1) % r->n < r->nmembers)
        pt_log_peer(m->uid, LOG_INFO,
                    "pythreadd: deadlock #%llu broken: %s '%s', held by session %llu thread %llu, "
                    "was released",
                    (unsigned long long)r->id, pt_kind_name((pt_kind)held->waits_kind), held->waits,
                    (unsigned long long)m->session, (unsigned long long)m->thread);
    else if (!r->released)
        pt_log_peer(m->uid, LOG_INFO,
                    "pythreadd: deadlock #%llu broken: the wait of session %llu thread %llu for "
                    "%s '%s' ended",
                    (unsigned long long)r->id, (unsigned long long)m->session,
                    (unsigned long long)m->thread, pt_kind_name((pt_kind)m->waits_kind), m->waits);
}

int pt_deadlock_start(pt_daemon *d)
{
    static const pt_core_deadlock_hooks hooks = {on_found, on_ended};

    d->deadlocks = calloc(1, sizeof(*d->deadlocks));
    if (d->deadlocks == NULL)
        return -1;
    pt_core_set_deadlock_hooks(d->core, &hooks, d);
    return 0;
}

void pt_deadlock_free(pt_daemon *d)
{
    if (d->deadlocks == NULL)
        return;
    if (d->core != NULL)
        pt_core_set_deadlock_hooks(d->core, NULL, NULL);
    for (size_t i = 0; i < PT_DAEMON_DEADLOCKS_KEPT; i++)
        free(d->deadlocks->ring[i]);
    free(d->deadlocks);
    d->deadlocks = NULL;
}
