/*
 * barrier.c - Barrier. The action is the caller's code, so the daemon asks
 * the last party to arrive to run it (run_action) before anyone is released,
 * and that party reports the result with OP_BARRIER_ACTION_DONE.
 */
#include <limits.h>

#include "session.h"

int pt_barrier_open(pt_client *c, const char *name, uint32_t parties, pt_barrier_action action,
                    void *arg, double timeout, int flags, unsigned mode, pt_barrier **out)
{
    pt__open_params p = {
        .kind = PT_KIND_BARRIER,
        .flags = (uint32_t)flags,
        .mode = mode,
        .parties = parties,
        .timeout = timeout,
    };
    pt_object *o = NULL;
    int r;

    r = pt__object_open(c, sizeof(struct pt_barrier), name, &p, out ? &o : NULL);
    if (r == 0) {
        ((pt_barrier *)o)->action = action;
        ((pt_barrier *)o)->action_arg = arg;
    }
    if (out)
        *out = (pt_barrier *)o;
    return r;
}

/* Run the action as the last party and pass its result on; the answer is
 * this party's index, or PT_EBROKEN when the action failed. */
static int barrier_run_action(pt_barrier *b, uint64_t slot)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    int status = b->action ? b->action(b->action_arg) : 0;
    int r;

    req.op = PYTHREAD__OP__OP_BARRIER_ACTION_DONE;
    req.has_handle = 1;
    req.handle = pt__slot_handle(slot);
    req.has_status = 1;
    req.status = status;
    r = pt__client_call(b->o.client, pt__slot_gen(slot), PT__CALL_NOCONNECT, &req, &rep, NULL);
    if (r == PT__ESTALE)
        return pt__object_error(&b->o, "wait", PT_ESESSION,
                                "session lost while the action ran; the barrier is broken for "
                                "the other parties; the next call reconnects");
    if (r < 0)
        return r;
    return rep.value > INT_MAX ? INT_MAX : (int)rep.value;
}

int pt_barrier_wait(pt_barrier *b, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    uint64_t slot;
    int r;

    if (!b)
        return pt__null_handle("pt_barrier_wait");
    req.op = PYTHREAD__OP__OP_BARRIER_WAIT;
    req.has_timeout = 1;
    req.timeout = timeout;
    req.has_has_action = 1;
    req.has_action = b->action != NULL;
    r = pt__object_call(&b->o, &req, &rep, &slot);
    if (r < 0)
        return r;
    if (rep.run_action)
        return barrier_run_action(b, slot);
    return rep.value > INT_MAX ? INT_MAX : (int)rep.value;
}

int pt_barrier_reset(pt_barrier *b)
{
    if (!b)
        return pt__null_handle("pt_barrier_reset");
    return pt__object_simple(&b->o, PYTHREAD__OP__OP_BARRIER_RESET);
}

int pt_barrier_abort(pt_barrier *b)
{
    if (!b)
        return pt__null_handle("pt_barrier_abort");
    return pt__object_simple(&b->o, PYTHREAD__OP__OP_BARRIER_ABORT);
}

static int barrier_state(pt_barrier *b, const char *fn, const char *op, pt__state *st)
{
    if (!b)
        return pt__null_handle(fn);
    return pt__object_state(&b->o, op, st);
}

/* Fixed at creation: the first open's answer says it, so no request. */
int pt_barrier_parties(pt_barrier *b)
{
    pt__state st;
    int r;

    if (b && b->o.opened.parties)
        return b->o.opened.parties > INT_MAX ? INT_MAX : (int)b->o.opened.parties;
    r = barrier_state(b, "pt_barrier_parties", "parties", &st);
    if (r < 0)
        return r;
    return st.parties > INT_MAX ? INT_MAX : (int)st.parties;
}

int pt_barrier_n_waiting(pt_barrier *b)
{
    pt__state st;
    int r = barrier_state(b, "pt_barrier_n_waiting", "n_waiting", &st);

    if (r < 0)
        return r;
    return st.n_waiting > INT_MAX ? INT_MAX : (int)st.n_waiting;
}

int pt_barrier_broken(pt_barrier *b)
{
    pt__state st;
    int r = barrier_state(b, "pt_barrier_broken", "broken", &st);

    return r < 0 ? r : st.broken != 0;
}

int pt_barrier_close(pt_barrier *b)
{
    return b ? pt__object_close(&b->o) : 0;
}
