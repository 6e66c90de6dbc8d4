/*
 * event.c - Event: a flag in the daemon; wait parks there until it is set.
 */
#include "fast.h"

int pt_event_open(pt_client *c, const char *name, int flags, unsigned mode, pt_event **out)
{
    pt__open_params p = {.kind = PT_KIND_EVENT, .flags = (uint32_t)flags, .mode = mode};
    pt_object *o = NULL;
    int r = pt__object_open(c, sizeof(struct pt_event), name, &p, out ? &o : NULL);

    if (out)
        *out = (pt_event *)o;
    return r;
}

int pt_event_set(pt_event *e)
{
    if (!e)
        return pt__null_handle("pt_event_set");
    return pt__object_simple(&e->o, PYTHREAD__OP__OP_EVENT_SET);
}

int pt_event_clear(pt_event *e)
{
    if (!e)
        return pt__null_handle("pt_event_clear");
    return pt__object_simple(&e->o, PYTHREAD__OP__OP_EVENT_CLEAR);
}

int pt_event_is_set(pt_event *e)
{
    pt__state st;
    int r;

    if (!e)
        return pt__null_handle("pt_event_is_set");
    r = pt__fast_is_set(&e->o);
    if (r != PT_FAST_SLOW)
        return r;
    r = pt__object_state(&e->o, "is_set", &st);
    return r < 0 ? r : st.is_set != 0;
}

/* The flag on return: 1, or 0 when the timeout passed first. */
int pt_event_wait(pt_event *e, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    int r;

    if (!e)
        return pt__null_handle("pt_event_wait");
    /* A set flag answers at once, whatever the timeout, as Python's does. */
    if (pt__fast_is_set(&e->o) == 1)
        return 1;
    req.op = PYTHREAD__OP__OP_EVENT_WAIT;
    req.has_timeout = 1;
    req.timeout = timeout;
    r = pt__object_call(&e->o, &req, &rep, NULL);
    return r < 0 ? r : rep.ok != 0;
}

int pt_event_close(pt_event *e)
{
    return e ? pt__object_close(&e->o) : 0;
}
