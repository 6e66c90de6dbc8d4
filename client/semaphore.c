/*
 * semaphore.c - Semaphore and BoundedSemaphore: a counter in the daemon.
 */
#include "fast.h"

int pt_semaphore_open(pt_client *c, const char *name, int64_t value, int bounded, int flags,
                      unsigned mode, pt_semaphore **out)
{
    pt__open_params p = {
        .kind = bounded ? PT_KIND_BOUNDED_SEMAPHORE : PT_KIND_SEMAPHORE,
        .flags = (uint32_t)flags,
        .mode = mode,
        .value = value,
    };
    pt_object *o = NULL;
    int r = pt__object_open(c, sizeof(struct pt_semaphore), name, &p, out ? &o : NULL);

    if (out)
        *out = (pt_semaphore *)o;
    return r;
}

int pt_semaphore_acquire(pt_semaphore *s, int blocking, double timeout)
{
    if (!s)
        return pt__null_handle("pt_semaphore_acquire");
    return pt__object_acquire(&s->o, blocking, timeout, NULL);
}

/* release(n): on the wire a count of 0 would mean something else, so n < 1
 * is refused here, as Python refuses it. */
int pt_semaphore_release(pt_semaphore *s, uint32_t n)
{
    if (!s)
        return pt__null_handle("pt_semaphore_release");
    if (n < 1)
        return pt__object_error(&s->o, "release", PT_EINVAL, "n must be one or more");
    return pt__object_release(&s->o, n);
}

int pt_semaphore_value(pt_semaphore *s, int64_t *value)
{
    pt__state st;
    int r;

    if (!s)
        return pt__null_handle("pt_semaphore_value");
    if (!value)
        return pt__object_error(&s->o, "value", PT_EINVAL,
                                "value is NULL; pass where to store the value");
    if (pt__fast_value(&s->o, value) == PT_FAST_OK)
        return 0;
    r = pt__object_state(&s->o, "value", &st);
    if (r == 0)
        *value = st.value;
    return r;
}

int pt_semaphore_close(pt_semaphore *s)
{
    return s ? pt__object_close(&s->o) : 0;
}
