/*
 * memory.c - what one user may make the daemon hold, and giving memory back
 * after a peak.
 *
 * Handles, waiters and objects per uid are the core's quotas; the answers a
 * user's sessions leave unread, and the input they hold between reads, are
 * counted here, per uid in a short list
 * like the core's (a daemon serves a handful of users), each connection
 * pointing at its user's entry. Root's connections are not counted per uid:
 * root is exempt, as from the core's quotas.
 *
 * Freed memory stays with the process unless given back: the core keeps
 * spare waiters, and glibc keeps freed blocks in its heap. So after every
 * loop callback the load (what live sessions, handles, waiters, objects
 * and unread answers cost at most) is compared with its peak; once it has
 * fallen to half and by PT_DAEMON_TRIM_MIN, a timer is armed, and when it
 * fires PT_DAEMON_TRIM_MSEC later (the load still low) the core trims its
 * spares and tables, idle connections drop their kept buffers, the scratch
 * buffers drop their pages and malloc_trim returns the free pages to the
 * kernel. That walk of the heap stops the loop for some milliseconds (60 ms
 * after a million waiters), so it happens at most once per
 * PT_DAEMON_TRIM_MSEC and never per request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "daemon.h"

struct pt_user {
    LIST_ENTRY(pt_user) link;
    uid_t uid;
    uint32_t conns;
    uint64_t unread; /* answers its connections have not read */
    uint64_t held;   /* input its connections hold between reads */
};

int pt_mem_attach(pt_conn *c)
{
    pt_daemon *d = c->daemon;
    struct pt_user *u;

    c->user = NULL;
    c->out_counted = 0;
    c->in_counted = 0;
    if (c->peer.uid == 0)
        return 0;
    LIST_FOREACH(u, &d->users, link)
    {
        if (u->uid == c->peer.uid)
            break;
    }
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u)
            return -1;
        u->uid = c->peer.uid;
        LIST_INSERT_HEAD(&d->users, u, link);
    }
    u->conns++;
    c->user = u;
    return 0;
}

void pt_mem_output(pt_conn *c)
{
    size_t unread = c->out_len - c->out_off;

    c->daemon->out_unread += unread;
    c->daemon->out_unread -= c->out_counted;
    if (c->user) {
        c->user->unread += unread;
        c->user->unread -= c->out_counted;
    }
    c->out_counted = unread;
}

void pt_mem_input(pt_conn *c)
{
    size_t held = c->in_cap;

    c->daemon->in_held += held;
    c->daemon->in_held -= c->in_counted;
    if (c->user) {
        c->user->held += held;
        c->user->held -= c->in_counted;
    }
    c->in_counted = held;
}

void pt_mem_detach(pt_conn *c)
{
    struct pt_user *u = c->user;

    c->daemon->out_unread -= c->out_counted;
    c->daemon->in_held -= c->in_counted;
    if (u) {
        u->unread -= c->out_counted;
        u->held -= c->in_counted;
        if (--u->conns == 0) {
            LIST_REMOVE(u, link);
            free(u);
        }
    }
    c->out_counted = 0;
    c->in_counted = 0;
    c->user = NULL;
}

int pt_mem_user_over(const pt_conn *c)
{
    uint32_t max = c->daemon->max_output_per_uid;

    return c->user && max && c->user->unread > max;
}

int pt_mem_user_input_over(const pt_conn *c)
{
    return c->user && c->user->held > c->daemon->max_input_per_uid;
}

/* What is alive costs at most this much (the figures are in core.h and
 * daemon.h). */
static uint64_t mem_load(const pt_daemon *d)
{
    pt_core_stats st;

    pt_core_get_stats(d->core, &st);
    return st.waiters * PT_MEM_WAITER + st.handles * PT_MEM_HANDLE + st.objects * PT_MEM_OBJECT +
           (uint64_t)d->nconns * PT_DAEMON_MEM_SESSION + d->out_unread + d->in_held;
}

/* Has the load fallen to half its peak, and by enough to be worth a walk
 * of the heap? */
static int mem_fell(const pt_daemon *d, uint64_t load)
{
    return load <= d->mem_peak / 2 && d->mem_peak - load >= PT_DAEMON_TRIM_MIN;
}

/* The decode arena and the read buffer hold nothing between callbacks:
 * their pages past the first (all a small request touches) go back to the
 * kernel, to come back zeroed when a big frame needs them. */
static void mem_drop_pages(void *buf, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)buf + page - 1) / page * page + page;
    uintptr_t end = ((uintptr_t)buf + len) / page * page;

    if (buf && end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

static void mem_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_daemon *d = arg;
    uint64_t t0 = pt_daemon_now(), load = mem_load(d), peak = d->mem_peak;

    (void)fd;
    (void)what;
    if (!mem_fell(d, load))
        return; /* it rose again meanwhile */
    pt_core_trim(d->core);
    pt_conn_trim(d);
    mem_drop_pages(d->arena.buf, d->arena.cap);
    mem_drop_pages(d->rbuf, d->rbuf_size);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    d->mem_peak = load;
    pt_log(LOG_DEBUG, "memory given back: the load fell from %llu to %llu KiB (took %.1f ms)",
           (unsigned long long)(peak >> 10), (unsigned long long)(load >> 10),
           (double)(pt_daemon_now() - t0) / 1e6);
}

void pt_mem_settle(pt_daemon *d)
{
    struct timeval tv = {PT_DAEMON_TRIM_MSEC / 1000, (PT_DAEMON_TRIM_MSEC % 1000) * 1000};
    uint64_t load;

    if (!d->core || !d->mem_timer)
        return;
    load = mem_load(d);
    if (load > d->mem_peak)
        d->mem_peak = load;
    /* Not at once: the sessions of a peak usually end over many callbacks,
     * and one walk of the heap after the last is enough. */
    if (mem_fell(d, load) && !evtimer_pending(d->mem_timer, NULL))
        evtimer_add(d->mem_timer, &tv);
}

int pt_mem_init(pt_daemon *d)
{
    LIST_INIT(&d->users);
    d->mem_timer = evtimer_new(d->base, mem_timer_cb, d);
    return d->mem_timer ? 0 : -1;
}

void pt_mem_free(pt_daemon *d)
{
    struct pt_user *u;

    if (d->mem_timer)
        event_free(d->mem_timer);
    d->mem_timer = NULL;
    while ((u = LIST_FIRST(&d->users)) != NULL) {
        LIST_REMOVE(u, link);
        free(u);
    }
}
