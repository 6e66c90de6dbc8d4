/*
 * event.c - Event: a flag; set wakes every waiter in arrival order.
 */
#include "core_int.h"

void pt__op_event_set(pt_req *r)
{
    pt_obj *ev = r->obj;
    pt_result ok = {.ok = 1};
    pt_waiter *w;

    ev->u.event.set = 1;
    while ((w = TAILQ_FIRST(&ev->queue.head)) != NULL) {
        pt_result res = {.ok = 1};

        pt__waiter_answer(r->core, w, &res);
    }
    pt__reply(r, &ok);
}

void pt__op_event_clear(pt_req *r)
{
    pt_result ok = {.ok = 1};

    r->obj->u.event.set = 0;
    pt__reply(r, &ok);
}

/* Answers the flag: at once when set or when not asked to block (timeout
 * <= 0 other than -1), else on set (1) or timeout (0). */
void pt__op_event_wait(pt_req *r)
{
    const pt_call *call = r->call;
    pt_obj *ev = r->obj;
    double t = call->timeout;
    pt_result res = {.ok = 1};
    pt_waiter *w;

    if (ev->u.event.set || pt__timeout_dont_wait(t)) {
        res.ok = ev->u.event.set;
        pt__reply(r, &res);
        return;
    }
    if (pt__check_wait_timeout(r, t) != 0)
        return;
    if ((w = pt__waiter_for(r, ev, PT_WK_EVENT)) == NULL)
        return;
    pt__waiter_park(r->core, w, ev, &ev->queue, r->slot, pt__deadline(r->now, t));
}
