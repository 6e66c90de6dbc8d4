/*
 * etcd_loop.c - the libevent loop the etcd client tests drive by hand: a
 * base with a 10 ms tick, so that event_base_loop(EVLOOP_ONCE) returns
 * often enough for a test to check its deadline between turns.
 */
#include <event2/event.h>

#include "etcd_cluster.h"

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

int pt_etcd_loop_start(pt_etcd_loop *l)
{
    struct timeval tv = {0, 10000};

    l->base = event_base_new();
    l->tick = l->base ? event_new(l->base, -1, EV_PERSIST, on_tick, NULL) : NULL;
    if (l->tick == NULL || event_add(l->tick, &tv) < 0) {
        pt_etcd_loop_stop(l);
        return -1;
    }
    return 0;
}

void pt_etcd_loop_stop(pt_etcd_loop *l)
{
    if (l->tick)
        event_free(l->tick);
    if (l->base)
        event_base_free(l->base);
    l->tick = NULL;
    l->base = NULL;
}
