/*
 * lock.c - Lock and RLock: each call is one request on the object's handle.
 */
#include "fast.h"

static int lock_open(pt_client *c, const char *name, pt_kind kind, int flags, unsigned mode,
                     pt_object **out)
{
    pt__open_params p = {.kind = kind, .flags = (uint32_t)flags, .mode = mode};

    return pt__object_open(c, sizeof(struct pt_lock), name, &p, out);
}

/* Lock.locked() and RLock.locked(): held by anyone. */
static int lock_locked(pt_object *o)
{
    pt__state st;
    int r = pt__fast_locked(o);

    if (r != PT_FAST_SLOW)
        return r;
    r = pt__object_state(o, "locked", &st);
    return r < 0 ? r : st.locked != 0;
}

int pt_lock_open(pt_client *c, const char *name, int flags, unsigned mode, pt_lock **out)
{
    pt_object *o = NULL;
    int r = lock_open(c, name, PT_KIND_LOCK, flags, mode, out ? &o : NULL);

    if (out)
        *out = (pt_lock *)o;
    return r;
}

int pt_lock_acquire(pt_lock *l, int blocking, double timeout)
{
    if (!l)
        return pt__null_handle("pt_lock_acquire");
    return pt__object_acquire(&l->o, blocking, timeout, NULL);
}

int pt_lock_acquire_fenced(pt_lock *l, int blocking, double timeout, uint64_t *token)
{
    if (!l)
        return pt__null_handle("pt_lock_acquire_fenced");
    return pt__object_acquire(&l->o, blocking, timeout, token);
}

int pt_lock_release(pt_lock *l)
{
    if (!l)
        return pt__null_handle("pt_lock_release");
    return pt__object_release(&l->o, 1);
}

int pt_lock_locked(pt_lock *l)
{
    if (!l)
        return pt__null_handle("pt_lock_locked");
    return lock_locked(&l->o);
}

int pt_lock_close(pt_lock *l)
{
    return l ? pt__object_close(&l->o) : 0;
}

pt_object *pt_lock_as_object(pt_lock *l)
{
    return l ? &l->o : NULL;
}

int pt_rlock_open(pt_client *c, const char *name, int flags, unsigned mode, pt_rlock **out)
{
    pt_object *o = NULL;
    int r = lock_open(c, name, PT_KIND_RLOCK, flags, mode, out ? &o : NULL);

    if (out)
        *out = (pt_rlock *)o;
    return r;
}

int pt_rlock_acquire(pt_rlock *l, int blocking, double timeout)
{
    if (!l)
        return pt__null_handle("pt_rlock_acquire");
    return pt__object_acquire(&l->o, blocking, timeout, NULL);
}

int pt_rlock_acquire_fenced(pt_rlock *l, int blocking, double timeout, uint64_t *token)
{
    if (!l)
        return pt__null_handle("pt_rlock_acquire_fenced");
    return pt__object_acquire(&l->o, blocking, timeout, token);
}

int pt_rlock_release(pt_rlock *l)
{
    if (!l)
        return pt__null_handle("pt_rlock_release");
    return pt__object_release(&l->o, 1);
}

int pt_rlock_locked(pt_rlock *l)
{
    if (!l)
        return pt__null_handle("pt_rlock_locked");
    return lock_locked(&l->o);
}

/* RLock._is_owned(): the calling thread of this session holds it. */
int pt_rlock_is_owned(pt_rlock *l)
{
    pt__state st;
    int r;

    if (!l)
        return pt__null_handle("pt_rlock_is_owned");
    r = pt__fast_is_owned(&l->o);
    if (r != PT_FAST_SLOW)
        return r;
    r = pt__object_state(&l->o, "is_owned", &st);
    return r < 0 ? r : st.owner_depth > 0;
}

int pt_rlock_close(pt_rlock *l)
{
    return l ? pt__object_close(&l->o) : 0;
}

pt_object *pt_rlock_as_object(pt_rlock *l)
{
    return l ? &l->o : NULL;
}
