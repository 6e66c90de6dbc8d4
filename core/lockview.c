/*
 * lockview.c - a lock as the cluster's owned locks need to see it, and the
 * token floor they hold back (core.h, pt_core_lock_view).
 */
#include "core_int.h"

/* A count that reached its top stays there: the lock is then taken for one
 * under Conditions for good, which only keeps it from being owned. */
void pt__lock_cond_add(pt_obj *lock, int d)
{
    if (lock->conds != UINT16_MAX)
        lock->conds = (uint16_t)(lock->conds + d);
}

int pt_core_lock_view_get(const pt_core *core, const pt_session *s, uint32_t handle,
                          pt_core_lock_view *out)
{
    const pt_handle *slot = pt__handle_get(s, handle);
    const pt_obj *obj = slot != NULL ? slot->obj : NULL, *lock;

    (void)core;
    if (obj == NULL)
        return -1;
    if (obj->kind == PT_KIND_CONDITION)
        lock = obj->u.cond.lock;
    else if (obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK)
        lock = obj;
    else
        return -1;
    *out = (pt_core_lock_view){
        .serial = lock->serial,
        .kind = obj->kind,
        .depth = lock->u.lock.depth,
        .holder = lock->u.lock.depth > 0 ? lock->u.lock.s : NULL,
        .holder_thread = lock->u.lock.thread,
        .queued = !TAILQ_EMPTY(&lock->queue.head),
        .refs = lock->refs,
        .conds = lock->conds,
        .token = lock->token,
        .token_given = lock->token_given,
    };
    return 0;
}

uint64_t pt_core_token_floor(const pt_core *core)
{
    return core->token_floor;
}

void pt_core_token_floor_put(pt_core *core, uint64_t floor)
{
    core->token_floor = floor;
}

static pt_obj *lock_by_serial(pt_core *core, uint64_t serial)
{
    pt_obj *obj;

    TAILQ_FOREACH(obj, &core->objects, all_link)
    {
        if (obj->serial == serial)
            return obj->kind == PT_KIND_LOCK || obj->kind == PT_KIND_RLOCK ? obj : NULL;
    }
    return NULL;
}

void pt_core_lock_token_jump(pt_core *core, uint64_t serial, uint64_t jump)
{
    pt_obj *lock = lock_by_serial(core, serial);

    if (lock == NULL)
        return;
    lock->token += jump;
    if (lock->token > core->token_floor)
        core->token_floor = lock->token;
}

void pt_core_lock_token_put(pt_core *core, uint64_t serial, uint64_t token, int given)
{
    pt_obj *lock = lock_by_serial(core, serial);

    if (lock == NULL)
        return;
    lock->token = token;
    lock->token_given = given != 0;
}

void pt_core_set_freed_hook(pt_core *core, void (*fn)(void *ctx, uint64_t serial), void *ctx)
{
    core->freed = fn;
    core->freed_ctx = ctx;
}
