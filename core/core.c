/*
 * core.c - the core's life: creation with its limits, teardown, deadlines
 * and statistics.
 */
#include <stdlib.h>

#include "core_int.h"

void pt_core_set_limits(pt_core *c, const pt_core_limits *limits)
{
    c->limits = limits ? *limits : (pt_core_limits){0};
    if (c->limits.max_objects == 0)
        c->limits.max_objects = PT_DEFAULT_MAX_OBJECTS;
    if (c->limits.max_handles_per_session == 0)
        c->limits.max_handles_per_session = PT_DEFAULT_MAX_HANDLES;
    if (c->limits.max_waiters_per_session == 0)
        c->limits.max_waiters_per_session = PT_DEFAULT_MAX_WAITERS;
    if (c->limits.max_objects_per_uid == 0)
        c->limits.max_objects_per_uid = PT_DEFAULT_MAX_OBJECTS_PER_UID;
    if (c->limits.max_handles_per_uid == 0)
        c->limits.max_handles_per_uid = PT_DEFAULT_MAX_HANDLES_PER_UID;
    if (c->limits.max_waiters_per_uid == 0)
        c->limits.max_waiters_per_uid = PT_DEFAULT_MAX_WAITERS_PER_UID;
}

pt_core *pt_core_new(const pt_core_limits *limits, pt_sink_fn sink, void *sink_ctx)
{
    pt_core *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    pt_core_set_limits(c, limits);
    c->sink = sink;
    c->sink_ctx = sink_ctx;
    TAILQ_INIT(&c->objects);
    LIST_INIT(&c->sessions);
    LIST_INIT(&c->uids);
    LIST_INIT(&c->fast_claimed);
    if (pt__map_init(&c->map) != 0 || pt__heap_reserve(&c->heap, PT_HEAP_INITIAL) != 0 ||
        pt__waitidx_init(&c->waits) != 0) {
        pt__map_free(&c->map);
        pt__heap_free(&c->heap);
        pt__waitidx_free(&c->waits);
        free(c);
        return NULL;
    }
    return c;
}

void pt_core_set_sink(pt_core *core, pt_sink_fn sink, void *ctx)
{
    core->sink = sink;
    core->sink_ctx = ctx;
}

void pt_core_set_token_base(pt_core *core, uint64_t base)
{
    if (base > core->token_floor)
        core->token_floor = base;
}

void pt_core_free(pt_core *core)
{
    pt_session *s;

    if (core == NULL)
        return;
    core->quiet = 1;
    while ((s = LIST_FIRST(&core->sessions)) != NULL)
        pt_core_session_end(core, s, 0);
    free(core->loading);
    free(core->lsessions);
    pt__objects_free_all(core);
    pt__uids_free_all(core);
    pt__waiters_trim(core);
    pt__semholds_trim(core);
    pt__map_free(&core->map);
    pt__heap_free(&core->heap);
    pt__waitidx_free(&core->waits);
    free(core->cycle_buf);
    free(core);
}

uint64_t pt_core_next_deadline(const pt_core *core)
{
    const pt_waiter *w = pt__heap_top(&core->heap);

    return w ? w->deadline : PT_DEADLINE_NONE;
}

/* One waiter at a time off the top: a timeout may answer or move others
 * (a barrier breaking, a lock handed on), which keeps the heap valid. */
void pt_core_expire(pt_core *core, uint64_t now)
{
    pt_waiter *w;

    core->now = now;
    while ((w = pt__heap_top(&core->heap)) != NULL && w->deadline <= now) {
        /* A claim may answer w itself (its lock was released through the
         * word): look at the heap again after one. */
        if (pt__fast_claim(core, w->obj) | pt__fast_claim(core, w->target))
            continue;
        pt__heap_remove(&core->heap, w);
        w->deadline = PT_DEADLINE_NONE;
        pt__waiter_timeout(core, w, now);
    }
}

void pt_core_trim(pt_core *core)
{
    pt_session *s;

    pt__waiters_trim(core);
    pt__semholds_trim(core);
    pt__heap_fit(&core->heap, core->nwaiters);
    pt__map_fit(&core->map);
    pt__waitidx_fit(&core->waits);
    LIST_FOREACH(s, &core->sessions, link)
    pt__handles_fit(s);
}

void pt_core_get_stats(const pt_core *core, pt_core_stats *out)
{
    out->objects = core->nobjects;
    out->sessions = core->nsessions;
    out->waiters = core->nwaiters;
    out->calls = core->calls;
    out->handles = core->nhandles;
    out->spare = (uint64_t)core->nfree_waiters + core->nfree_holds;
    out->deadlocks = core->ndeadlocks;
    out->deadlocks_standing = core->nstanding;
}
