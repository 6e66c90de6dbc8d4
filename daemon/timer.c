#include <time.h>

#include "daemon.h"

/* CLOCK_MONOTONIC in nanoseconds: the one clock the core's deadlines use. */
uint64_t pt_daemon_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * PT_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Where fencing tokens continue from: CLOCK_REALTIME in nanoseconds at
 * start. A run that began t ns earlier gave tokens up to its own base plus
 * the tokens it gave, so this one starts above all of them as long as that
 * run gave fewer than 10^9 tokens a second on average (the daemon serves
 * about 10^5 acquires a second) and the wall clock did not go back between
 * the runs (a high-water mark kept in a state directory would cover that
 * too). Below 2^63 until the year 2262: a signed 64-bit column holds it.
 */
uint64_t pt_daemon_token_base(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
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
    /* no timeout is served before a restart's grace is over (resume.c) */
    uint64_t at = pt_resume_grace(d) ? PT_DEADLINE_NONE : pt_core_next_deadline(d->core);
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
    pt_journal_expire(d->journal, d->core, now);
    pt_fast_publish_all(d->fast);
    pt_daemon_settle(d, now);
}

int pt_daemon_timer_init(pt_daemon *d)
{
    d->timer_at = PT_DEADLINE_NONE;
    d->timer = evtimer_new(d->base, timer_cb, d);
    return d->timer ? 0 : -1;
}
