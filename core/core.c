/*
 * core.c - the core's life: creation with its limits, teardown, deadlines
 * and statistics.
 */
#include <stdlib.h>

#include "core_int.h"

pt_core *pt_core_new(const pt_core_limits *limits, pt_sink_fn sink, void *sink_ctx)
{
    pt_core *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (limits != NULL)
        c->limits = *limits;
    if (c->limits.max_objects == 0)
        c->limits.max_objects = PT_DEFAULT_MAX_OBJECTS;
    if (c->limits.max_handles_per_session == 0)
        c->limits.max_handles_per_session = PT_DEFAULT_MAX_HANDLES;
    if (c->limits.max_waiters_per_session == 0)
        c->limits.max_waiters_per_session = PT_DEFAULT_MAX_WAITERS;
    if (c->limits.max_objects_per_uid == 0)
        c->limits.max_objects_per_uid = PT_DEFAULT_MAX_OBJECTS_PER_UID;
    c->sink = sink;
    c->sink_ctx = sink_ctx;
    TAILQ_INIT(&c->objects);
    LIST_INIT(&c->sessions);
    LIST_INIT(&c->uids);
    if (pt__map_init(&c->map) != 0 || pt__heap_reserve(&c->heap, 64) != 0) {
        pt__map_free(&c->map);
        free(c);
        return NULL;
    }
    return c;
}

void pt_core_set_token_base(pt_core *core, uint64_t base)
{
    if (base > core->token_floor)
        core->token_floor = base;
}

void pt_core_free(pt_core *core)
{
    pt_session *s;
    pt_semhold *h;

    if (core == NULL)
        return;
    core->quiet = 1;
    while ((s = LIST_FIRST(&core->sessions)) != NULL)
        pt_core_session_end(core, s, 0);
    pt__objects_free_all(core);
    pt__uids_free_all(core);
    pt__waiters_free_all(core);
    while ((h = core->free_holds) != NULL) {
        core->free_holds = h->free_next;
        free(h);
    }
    pt__map_free(&core->map);
    pt__heap_free(&core->heap);
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
        pt__heap_remove(&core->heap, w);
        w->deadline = PT_DEADLINE_NONE;
        pt__waiter_timeout(core, w, now);
    }
}

void pt_core_get_stats(const pt_core *core, pt_core_stats *out)
{
    out->objects = core->nobjects;
    out->sessions = core->nsessions;
    out->waiters = core->nwaiters;
    out->calls = core->calls;
}
