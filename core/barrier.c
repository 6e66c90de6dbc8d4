/*
 * barrier.c - Barrier: cycles of `parties` arrivals.
 *
 * States: filling (counting arrivals), action (the last party of a cycle
 * runs the action in its own process and reports with ACTION_DONE; nobody
 * can time out meanwhile, as in Python where everyone waits for the lock
 * the action's thread holds) and broken. Arrivals during the action are
 * entrants of the next cycle, processed in order when the action ends; so
 * are abort and reset, which take effect then.
 */
#include <stdio.h>

#include "core_int.h"

/* One arrival: a fresh request, or an entrant that parked (w != NULL). */
typedef struct arrival {
    pt_session *s;
    uint64_t id;
    uint64_t thread;
    uint32_t handle;
    double timeout;
    int has_action;
    pt_waiter *w;
} arrival;

static void reason_text(char *buf, size_t cap, const pt_obj *b, int why)
{
    switch (why) {
    case PT_BR_TIMEOUT:
        snprintf(buf, cap, "a party's wait timed out");
        break;
    case PT_BR_ZERO_TIMEOUT:
        snprintf(buf, cap, "a party arrived with a timeout <= 0");
        break;
    case PT_BR_ABORT:
        snprintf(buf, cap, "it was aborted");
        break;
    case PT_BR_ACTION_FAILED:
        snprintf(buf, cap, "the action failed with status %d", (int)b->u.barrier.status);
        break;
    case PT_BR_PARTY_SESSION_END:
        snprintf(buf, cap, "a waiting party's session ended");
        break;
    case PT_BR_PARTY_CLOSED:
        snprintf(buf, cap, "a waiting party closed its handle");
        break;
    case PT_BR_RUNNER_SESSION_END:
        snprintf(buf, cap, "the session running the action ended");
        break;
    case PT_BR_RUNNER_CLOSED:
        snprintf(buf, cap, "the handle running the action was closed");
        break;
    default:
        snprintf(buf, cap, "it was broken");
        break;
    }
}

static void fail_broken(pt_core *c, const pt_obj *b, int why, const char *op)
{
    char why_text[64];

    reason_text(why_text, sizeof(why_text), b, why);
    snprintf(c->msg, sizeof(c->msg),
             "Barrier '%s': %s: the barrier is broken (%s); reset it before waiting again", b->name,
             op, why_text);
}

static void arrival_answer(pt_core *c, const arrival *a, pt_result *res)
{
    if (a->w != NULL) {
        pt__waiter_answer(c, a->w, res);
        return;
    }
    res->id = a->id;
    res->thread = a->thread;
    pt__answer(c, a->s, PT_OP_BARRIER_WAIT, res);
}

static void arrival_broken(pt_core *c, const pt_obj *b, const arrival *a)
{
    pt_result res = {.status = PT_EBROKEN, .message = c->msg};

    fail_broken(c, b, b->u.barrier.reason, "wait");
    arrival_answer(c, a, &res);
}

/* A party that has to wait longer than TIMEOUT_MAX: threading fails only
 * then (the lock under its wait refuses the timeout), so the last party and
 * a broken barrier answer as usual, and this one leaves without counting or
 * breaking anything. */
static void arrival_too_large(pt_core *c, const pt_obj *b, const arrival *a, double t)
{
    pt_result res = {.status = PT_EOVERFLOW, .message = c->msg};

    snprintf(c->msg, sizeof(c->msg),
             "Barrier '%s': wait: timeout %g is too large to wait for; the maximum is %.0f "
             "seconds (TIMEOUT_MAX)",
             b->name, t, PT_TIMEOUT_MAX);
    arrival_answer(c, a, &res);
}

/* Every party of the cycle goes with its own index. */
static void release_parties(pt_core *c, pt_obj *b)
{
    pt_waiter *w;

    while ((w = TAILQ_FIRST(&b->queue.head)) != NULL) {
        pt_result res = {.ok = 1, .value = w->index};

        pt__waiter_answer(c, w, &res);
    }
    b->u.barrier.count = 0;
    b->u.barrier.state = PT_BARRIER_FILLING;
}

static void break_barrier(pt_core *c, pt_obj *b, int why)
{
    pt_waiter *w;

    b->u.barrier.state = PT_BARRIER_BROKEN;
    b->u.barrier.reason = (uint8_t)why;
    b->u.barrier.count = 0;
    while ((w = TAILQ_FIRST(&b->queue.head)) != NULL) {
        pt_result res = {.status = PT_EBROKEN, .message = c->msg};

        fail_broken(c, b, why, "wait");
        pt__waiter_answer(c, w, &res);
    }
}

static void reset_barrier(pt_core *c, pt_obj *b)
{
    pt_waiter *w;

    while ((w = TAILQ_FIRST(&b->queue.head)) != NULL) {
        pt_result res = {.status = PT_EBROKEN, .message = c->msg};

        snprintf(c->msg, sizeof(c->msg),
                 "Barrier '%s': wait: the barrier was reset while this party waited; wait again",
                 b->name);
        pt__waiter_answer(c, w, &res);
    }
    b->u.barrier.state = PT_BARRIER_FILLING;
    b->u.barrier.reason = PT_BR_NONE;
    b->u.barrier.count = 0;
}

/* The last party arrived. With an action to run, it runs it and the others
 * wait, deadlines dropped; else everyone goes and a new cycle starts. */
static void trip(pt_core *c, pt_obj *b, const arrival *a, uint32_t index)
{
    pt_result res = {.ok = 1, .value = index};
    pt_waiter *w;

    if (!a->has_action) {
        release_parties(c, b);
        arrival_answer(c, a, &res);
        return;
    }
    b->u.barrier.state = PT_BARRIER_ACTION;
    b->u.barrier.count = b->u.barrier.parties;
    b->u.barrier.runner = a->s;
    b->u.barrier.runner_handle = a->handle;
    b->u.barrier.runner_index = index;
    b->u.barrier.doom = PT_BR_NONE;
    LIST_INSERT_HEAD(&a->s->runs, b, u.barrier.run_link);
    TAILQ_FOREACH(w, &b->queue.head, qlink)
    {
        pt__heap_remove(&c->heap, w);
        w->deadline = PT_DEADLINE_NONE;
    }
    res.run_action = 1;
    arrival_answer(c, a, &res);
}

/* One arrival in a filling or broken barrier. */
static void arrive(pt_core *c, pt_obj *b, arrival *a, uint64_t now, pt_req *r)
{
    uint32_t index = b->u.barrier.count;
    double t = pt__timeout_is_none(a->timeout) ? b->u.barrier.timeout : a->timeout;
    pt_waiter *w = a->w;
    int err;

    if (b->u.barrier.state == PT_BARRIER_BROKEN) {
        arrival_broken(c, b, a);
        return;
    }
    if (index + 1 == b->u.barrier.parties) {
        trip(c, b, a, index);
        return;
    }
    if (t <= 0 && !pt__timeout_is_none(t)) {
        break_barrier(c, b, PT_BR_ZERO_TIMEOUT);
        arrival_broken(c, b, a);
        return;
    }
    if (t > PT_TIMEOUT_MAX) {
        arrival_too_large(c, b, a, t);
        return;
    }
    if (w == NULL) {
        if ((err = pt__waiter_new(c, a->s, &w)) != 0) {
            pt__fail_waiter(r, err);
            return;
        }
        w->id = a->id;
        w->thread = a->thread;
        w->handle = a->handle;
        w->target = b;
    }
    w->kind = PT_WK_BARRIER;
    w->index = index;
    b->u.barrier.count++;
    pt__waiter_park(c, w, b, &b->queue, pt__handle_get(a->s, a->handle), pt__deadline(now, t));
}

/* The action ended (why == PT_BR_NONE: it succeeded). Then abort/reset
 * asked meanwhile take effect, then the entrants arrive in order, until one
 * of them starts another action. */
static void action_finish(pt_core *c, pt_obj *b, int why, uint64_t now)
{
    pt_waiter *w;

    LIST_REMOVE(b, u.barrier.run_link);
    b->u.barrier.runner = NULL;
    if (why == PT_BR_NONE)
        why = b->u.barrier.doom;
    b->u.barrier.doom = PT_BR_NONE;
    if (why == PT_BR_NONE)
        release_parties(c, b);
    else
        break_barrier(c, b, why);
    if (b->u.barrier.pending == PT_PENDING_ABORT)
        break_barrier(c, b, PT_BR_ABORT);
    else if (b->u.barrier.pending == PT_PENDING_RESET)
        reset_barrier(c, b);
    b->u.barrier.pending = PT_PENDING_NONE;
    while (b->u.barrier.state != PT_BARRIER_ACTION &&
           (w = TAILQ_FIRST(&b->u.barrier.entrants.head)) != NULL) {
        arrival a = {.s = w->session,
                     .id = w->id,
                     .thread = w->thread,
                     .handle = w->handle,
                     .timeout = w->timeout,
                     .has_action = w->has_action,
                     .w = w};

        pt__queue_remove(w);
        arrive(c, b, &a, now, NULL);
    }
}

void pt__op_barrier_wait(pt_req *r)
{
    const pt_call *call = r->call;
    pt_obj *b = r->obj;
    arrival a = {.s = r->s,
                 .id = call->id,
                 .thread = call->thread,
                 .handle = call->handle,
                 .timeout = call->timeout,
                 .has_action = call->has_action != 0};
    pt_waiter *w;

    if (b->u.barrier.state != PT_BARRIER_ACTION) {
        arrive(r->core, b, &a, r->now, r);
        return;
    }
    if ((w = pt__waiter_for(r, b, PT_WK_ENTRANT)) == NULL)
        return;
    w->timeout = call->timeout;
    w->has_action = (uint8_t)a.has_action;
    pt__waiter_park(r->core, w, b, &b->u.barrier.entrants, r->slot, PT_DEADLINE_NONE);
}

void pt__op_barrier_action_done(pt_req *r)
{
    pt_obj *b = r->obj;
    int32_t status = r->call->status;
    uint32_t index = b->u.barrier.runner_index;
    int why;
    pt_result res = {.ok = 1};

    if (b->u.barrier.state != PT_BARRIER_ACTION || b->u.barrier.runner != r->s) {
        pt__fail_obj(r, b, PT_ERUNTIME,
                     "no action of this session is pending; report an action only after a "
                     "wait answered run_action");
        return;
    }
    if (status != 0) {
        b->u.barrier.status = status;
        why = PT_BR_ACTION_FAILED;
    } else {
        why = b->u.barrier.doom;
    }
    action_finish(r->core, b, status != 0 ? PT_BR_ACTION_FAILED : PT_BR_NONE, r->now);
    if (why != PT_BR_NONE) {
        char why_text[64];

        reason_text(why_text, sizeof(why_text), b, why);
        pt__fail_obj(r, b, PT_EBROKEN, "the barrier is broken (%s); reset it before waiting again",
                     why_text);
        return;
    }
    res.value = index;
    pt__reply(r, &res);
}

void pt__op_barrier_abort(pt_req *r)
{
    pt_obj *b = r->obj;
    pt_result res = {.ok = 1};

    if (b->u.barrier.state == PT_BARRIER_ACTION)
        b->u.barrier.pending = PT_PENDING_ABORT;
    else
        break_barrier(r->core, b, PT_BR_ABORT);
    pt__reply(r, &res);
}

void pt__op_barrier_reset(pt_req *r)
{
    pt_obj *b = r->obj;
    pt_result res = {.ok = 1};

    if (b->u.barrier.state == PT_BARRIER_ACTION)
        b->u.barrier.pending = PT_PENDING_RESET;
    else
        reset_barrier(r->core, b);
    pt__reply(r, &res);
}

/* A party of the cycle left without timing out (its handle closed or its
 * session ended): the others cannot complete the cycle, so it breaks; while
 * the action runs, it breaks when the action ends. */
void pt__barrier_party_left(pt_core *c, pt_obj *b, pt_break_reason why, uint64_t now)
{
    (void)now;
    if (b->u.barrier.state == PT_BARRIER_ACTION) {
        if (b->u.barrier.doom == PT_BR_NONE)
            b->u.barrier.doom = (uint8_t)why;
        return;
    }
    if (b->u.barrier.state == PT_BARRIER_FILLING)
        break_barrier(c, b, why);
}

/* A party's deadline passed: the barrier breaks for everyone, that party
 * included. */
void pt__barrier_timeout(pt_core *c, pt_waiter *w, uint64_t now)
{
    (void)now;
    break_barrier(c, w->obj, PT_BR_TIMEOUT);
}

/* The action's runner is gone: the barrier breaks as a failed action would
 * break it. */
void pt__barrier_abandon(pt_core *c, pt_obj *b, pt_break_reason why, uint64_t now)
{
    action_finish(c, b, why, now);
}
