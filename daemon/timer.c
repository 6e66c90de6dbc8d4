#include <time.h>

#include "daemon.h"

/* CLOCK_MONOTONIC in nanoseconds: the one clock the core's deadlines use. */
uint64_t pt_daemon_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * PT_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds to a timeval, rounded up so the timer never fires before the
 * deadline it was set for (an early fire would only re-arm, but costs a
 * wake-up). */
static struct timeval ns_to_timeval(uint64_t ns)
{
    uint64_t us = ns / 1000u + (ns % 1000u != 0);
    struct timeval tv;

    tv.tv_sec = (time_t)(us / 1000000u);
    tv.tv_usec = (suseconds_t)(us % 1000000u);
    return tv;
}

void pt_daemon_timer_update(pt_daemon *d, uint64_t now)
{
    uint64_t at = pt_core_next_deadline(d->core);
    struct timeval tv;

    if (at == d->timer_at)
        return;
    d->timer_at = at;
    if (at == PT_DEADLINE_NONE) {
        evtimer_del(d->timer);
        return;
    }
    tv = ns_to_timeval(at > now ? at - now : 0);
    evtimer_add(d->timer, &tv);
}

void pt_daemon_settle(pt_daemon *d, uint64_t now)
{
    pt_conn_flush_pending(d);
    pt_daemon_timer_update(d, now);
    pt_mem_settle(d);
}

/* The earliest deadline has come: answer every waiter whose time is up. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_daemon *d = arg;
    uint64_t now = pt_daemon_now();

    (void)fd;
    (void)what;
    d->timer_at = PT_DEADLINE_NONE; /* a fired timer is no longer armed */
    pt_core_expire(d->core, now);
    pt_daemon_settle(d, now);
}

int pt_daemon_timer_init(pt_daemon *d)
{
    d->timer_at = PT_DEADLINE_NONE;
    d->timer = evtimer_new(d->base, timer_cb, d);
    return d->timer ? 0 : -1;
}
