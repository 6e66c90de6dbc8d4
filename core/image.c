/*
 * image.c - a core with no session as data (core.h, "Images"), and a fresh
 * core rebuilt from it: what the daemon's journal keeps as its snapshot.
 * With no session there is no holder, waiter, handle or barrier party, so
 * an object is its parameters, value, token and counters.
 */
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

int pt_core_image_head_get(const pt_core *c, pt_core_image_head *out)
{
    if (c->fast_lost)
        return -1;
    *out = (pt_core_image_head){
        .token_floor = c->token_floor,
        .next_serial = c->next_serial,
        .next_session_id = c->next_session_id,
        .seq = c->seq,
        .calls = c->calls,
        .deadlocks = c->ndeadlocks,
    };
    return 0;
}

static void kind_out(const pt_obj *obj, pt_core_image *im)
{
    switch (obj->kind) {
    case PT_KIND_CONDITION:
        im->lock_serial = obj->u.cond.lock->serial;
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        im->value = obj->u.sem.value;
        im->initial = obj->u.sem.initial;
        im->owned = obj->u.sem.owned;
        break;
    case PT_KIND_EVENT:
        im->set = obj->u.event.set;
        break;
    case PT_KIND_BARRIER:
        im->parties = obj->u.barrier.parties;
        im->timeout = obj->u.barrier.timeout;
        im->state = obj->u.barrier.state;
        im->reason = obj->u.barrier.reason;
        im->status = obj->u.barrier.status;
        break;
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        /* The head of a standing deadlock: its links find the rest. */
        if (obj->u.lock.cycle == obj) {
            im->deadlock = obj->u.lock.cycle_id;
            im->deadlock_found = obj->u.lock.cycle_found;
        }
        break;
    default:
        break;
    }
}

void pt_core_image_each(const pt_core *c, pt_core_image_fn fn, void *ctx)
{
    const pt_obj *obj;

    TAILQ_FOREACH(obj, &c->objects, all_link)
    {
        const pt_obj_counters *k = &obj->stats;
        pt_core_image im = {
            .serial = obj->serial,
            .name = obj->name,
            .name_len = obj->name_len,
            .kind = obj->kind,
            .transient = obj->transient,
            .unlinked = obj->unlinked,
            .anonymous = obj->anonymous,
            .token_given = obj->token_given,
            .mode = obj->mode,
            .uid = obj->uid,
            .gid = obj->gid,
            .fast = obj->fast,
            .token = obj->token,
            .counters = {k->acquires, k->contended, k->handed, k->timeouts, k->longest_wait,
                         k->longest_hold},
        };

        kind_out(obj, &im);
        fn(ctx, &im);
    }
}

int pt_core_image_head_load(pt_core *c, const pt_core_image_head *h)
{
    if (c->nsessions != 0 || !TAILQ_EMPTY(&c->objects))
        return -1;
    c->token_floor = h->token_floor;
    c->next_serial = h->next_serial;
    c->next_session_id = h->next_session_id;
    c->seq = h->seq;
    c->calls = h->calls;
    c->ndeadlocks = h->deadlocks;
    return 0;
}

/* The object with this serial, among those loaded (the newest first). */
static pt_obj *by_serial(pt_core *c, uint64_t serial)
{
    pt_obj *obj;

    TAILQ_FOREACH_REVERSE(obj, &c->objects, pt_objlist, all_link)
    {
        if (obj->serial == serial)
            return obj;
    }
    return NULL;
}

static int kind_in(pt_core *c, pt_obj *obj, const pt_core_image *im)
{
    switch (obj->kind) {
    case PT_KIND_CONDITION:
        obj->u.cond.lock = by_serial(c, im->lock_serial);
        if (obj->u.cond.lock == NULL ||
            (obj->u.cond.lock->kind != PT_KIND_LOCK && obj->u.cond.lock->kind != PT_KIND_RLOCK))
            return -1;
        pt__obj_ref(obj->u.cond.lock);
        pt__lock_cond_add(obj->u.cond.lock, 1);
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        obj->u.sem.value = im->value;
        obj->u.sem.initial = im->initial;
        obj->u.sem.owned = im->owned != 0;
        break;
    case PT_KIND_EVENT:
        obj->u.event.set = im->set != 0;
        break;
    case PT_KIND_BARRIER:
        obj->u.barrier.parties = im->parties;
        obj->u.barrier.timeout = im->timeout;
        obj->u.barrier.state = (uint8_t)im->state;
        obj->u.barrier.reason = (uint8_t)im->reason;
        obj->u.barrier.status = im->status;
        break;
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        /* marked again when the image is finished (deadlock.c) */
        obj->u.lock.cycle_id = im->deadlock;
        obj->u.lock.cycle_found = im->deadlock_found;
        break;
    default:
        break;
    }
    return 0;
}

static int image_valid(pt_core *c, const pt_core_image *im)
{
    if (im->kind < PT_KIND_LOCK || im->kind > PT_KIND_BARRIER || im->serial == 0 ||
        im->serial > c->next_serial || im->name_len > PT_NAME_MAX)
        return 0;
    if (im->anonymous)
        return im->kind == PT_KIND_RLOCK && im->name_len == 0;
    if (!pt_name_valid(im->name, im->name_len))
        return 0;
    return im->unlinked || pt__map_find(&c->map, im->name, im->name_len,
                                        pt__name_hash(im->name, im->name_len)) == NULL;
}

int pt_core_image_load(pt_core *c, const pt_core_image *im)
{
    const pt_core_counters *k = &im->counters;
    pt_obj *obj;

    if (c->nsessions != 0 || !image_valid(c, im))
        return -1;
    if (!im->anonymous && pt__uid_add(c, im->uid, 1, 0) < 0)
        return -1;
    obj = pt__obj_alloc(c, im->kind, im->name, im->name_len);
    if (obj == NULL) {
        if (!im->anonymous)
            pt__uid_add(c, im->uid, -1, 0);
        return -1;
    }
    obj->serial = im->serial;
    obj->transient = im->transient != 0;
    obj->unlinked = im->unlinked != 0;
    obj->anonymous = im->anonymous != 0;
    obj->token_given = im->token_given != 0;
    obj->mode = im->mode;
    obj->uid = im->uid;
    obj->gid = im->gid;
    obj->token = im->token;
    obj->stats = (pt_obj_counters){k->acquires, k->contended,    k->handed,
                                   k->timeouts, k->longest_wait, k->longest_hold};
    if (kind_in(c, obj, im) < 0) {
        TAILQ_REMOVE(&c->objects, obj, all_link);
        free(obj);
        if (!im->anonymous)
            pt__uid_add(c, im->uid, -1, 0);
        return -1;
    }
    obj->fast = im->fast;
    if (obj->anonymous)
        return 0;
    if (!obj->unlinked)
        pt__map_insert(&c->map, obj);
    c->nobjects++;
    return 0;
}
