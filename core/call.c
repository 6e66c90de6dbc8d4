/*
 * call.c - one request in: the op table, the handle and kind checks every
 * op shares, the timeout argument rules of CPython 3.11, and the helpers
 * that shape answers and messages.
 */
#include <stdio.h>
#include <string.h>

#include "core_int.h"
#include "names.h"

#define KIND_BIT(k) (1u << (k))
#define K_LOCKS     (KIND_BIT(PT_KIND_LOCK) | KIND_BIT(PT_KIND_RLOCK))
#define K_SEMS      (KIND_BIT(PT_KIND_SEMAPHORE) | KIND_BIT(PT_KIND_BOUNDED_SEMAPHORE))
#define K_ACQUIRE   (K_LOCKS | KIND_BIT(PT_KIND_CONDITION) | K_SEMS)
#define K_COND      KIND_BIT(PT_KIND_CONDITION)
#define K_EVENT     KIND_BIT(PT_KIND_EVENT)
#define K_BARRIER   KIND_BIT(PT_KIND_BARRIER)
#define K_ANY       (K_ACQUIRE | K_EVENT | K_BARRIER)

/* The class name (proto/names.c); "Object" for a kind no request may name. */
const char *pt__kind_name(int kind)
{
    return pt_kind_known(kind) ? pt_kind_name((pt_kind)kind) : "Object";
}

/* "a Lock", "an Event": the kind with its article, for messages. */
const char *pt__kind_article(int kind)
{
    return kind == PT_KIND_EVENT ? "an" : "a";
}

/* The method's name in Python terms, for messages. */
const char *pt__op_name(int op)
{
    static const char *const names[PT_OP_MAX_] = {
        [PT_OP_HELLO] = "hello",         [PT_OP_OPEN] = "open",
        [PT_OP_CLOSE] = "close",         [PT_OP_UNLINK] = "unlink",
        [PT_OP_ACQUIRE] = "acquire",     [PT_OP_RELEASE] = "release",
        [PT_OP_STATE] = "state",         [PT_OP_COND_WAIT] = "wait",
        [PT_OP_NOTIFY] = "notify",       [PT_OP_EVENT_SET] = "set",
        [PT_OP_EVENT_CLEAR] = "clear",   [PT_OP_EVENT_WAIT] = "wait",
        [PT_OP_BARRIER_WAIT] = "wait",   [PT_OP_BARRIER_ACTION_DONE] = "action_done",
        [PT_OP_BARRIER_ABORT] = "abort", [PT_OP_BARRIER_RESET] = "reset",
        [PT_OP_SYNC] = "sync",
    };

    if (op <= 0 || op >= PT_OP_MAX_)
        return "request";
    return names[op];
}

void pt__answer(pt_core *c, pt_session *s, int op, pt_result *r)
{
    if (c->quiet || s->ending)
        return;
    pt__metric_answer(c, op, r);
    c->sink(c->sink_ctx, s, r);
}

void pt__reply(pt_req *r, pt_result *res)
{
    res->id = r->call->id;
    res->thread = r->call->thread;
    pt__answer(r->core, r->s, (int)r->call->op, res);
}

static void fail_v(pt_req *r, int status, const char *prefix, const char *fmt, va_list ap)
{
    pt_core *c = r->core;
    size_t n = (size_t)snprintf(c->msg, sizeof(c->msg), "%s", prefix);
    pt_result res = {.status = status, .message = c->msg};

    if (n < sizeof(c->msg))
        vsnprintf(c->msg + n, sizeof(c->msg) - n, fmt, ap);
    pt__reply(r, &res);
}

void pt__fail(pt_req *r, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail_v(r, status, "", fmt, ap);
    va_end(ap);
}

int pt__obj_prefix(char *buf, size_t len, const pt_obj *obj, int op)
{
    return snprintf(buf, len, "%s '%s': %s: ", pt__kind_name(obj->kind), obj->name,
                    pt__op_name(op));
}

/* Fails the request with "Kind 'name': op: " and the text. */
void pt__fail_obj(pt_req *r, const pt_obj *obj, int status, const char *fmt, ...)
{
    char prefix[PT_NAME_MAX + 64];
    va_list ap;

    pt__obj_prefix(prefix, sizeof(prefix), obj, r->call->op);
    va_start(ap, fmt);
    fail_v(r, status, prefix, fmt, ap);
    va_end(ap);
}

int pt__timeout_is_none(double timeout)
{
    return timeout == PT_FOREVER;
}

static int fail_nan(pt_req *r)
{
    pt__fail_obj(r, r->obj, PT_EINVAL,
                 "timeout is NaN; pass a number of seconds, or -1 to wait forever");
    return -1;
}

static int fail_too_large(pt_req *r)
{
    pt__fail_obj(r, r->obj, PT_EOVERFLOW,
                 "timeout value is too large; the maximum is %.0f seconds (TIMEOUT_MAX)",
                 PT_TIMEOUT_MAX);
    return -1;
}

/* Lock.acquire / RLock.acquire (_threadmodule.c lock_acquire_parse_args):
 * the conversion of the timeout to nanoseconds overflows before any other
 * check runs, so a huge timeout of either sign is OverflowError first. */
int pt__check_lock_timeout(pt_req *r)
{
    double t = r->call->timeout;

    if (t != t)
        return fail_nan(r);
    if (t > PT_TIMEOUT_MAX || t < -PT_TIMEOUT_MAX)
        return fail_too_large(r);
    if (!r->call->blocking && !pt__timeout_is_none(t)) {
        pt__fail_obj(r, r->obj, PT_EINVAL,
                     "can't specify a timeout for a non-blocking call; pass timeout -1 when "
                     "blocking is false");
        return -1;
    }
    if (t < 0 && !pt__timeout_is_none(t)) {
        pt__fail_obj(r, r->obj, PT_EINVAL,
                     "timeout value must be positive (or -1 to wait forever)");
        return -1;
    }
    return 0;
}

/* Semaphore.acquire checks only this up front; the value of the timeout
 * matters (pt__check_wait_timeout) only once the caller has to wait, as in
 * threading.py, and other negative timeouts mean "do not wait". */
int pt__check_sem_timeout(pt_req *r)
{
    if (!r->call->blocking && !pt__timeout_is_none(r->call->timeout)) {
        pt__fail_obj(r, r->obj, PT_EINVAL,
                     "can't specify timeout for non-blocking acquire; pass timeout -1 when "
                     "blocking is false");
        return -1;
    }
    return 0;
}

/* Condition.wait and Event.wait do not block for a timeout that is not
 * > 0 (NaN included: threading.py tests "timeout > 0"). */
int pt__timeout_dont_wait(double timeout)
{
    return !pt__timeout_is_none(timeout) && !(timeout > 0);
}

/* A timeout the caller is about to wait for: values past TIMEOUT_MAX are
 * refused, as the lock under threading.py's waits does. NaN passes: the
 * waits that get here with it never give up (see pt__deadline). */
int pt__check_wait_timeout(pt_req *r, double t)
{
    if (t > PT_TIMEOUT_MAX)
        return fail_too_large(r);
    return 0;
}

/* now + ceil(timeout s in ns), saturating below PT_DEADLINE_NONE; -1 is
 * forever. Callers pass -1, NaN or a positive timeout. NaN is forever too:
 * threading.py's Semaphore.acquire and Barrier.wait (through wait_for)
 * compute a NaN end time, and "remaining <= 0" never holds for it. */
uint64_t pt__deadline(uint64_t now, double timeout)
{
    double ns;
    uint64_t u;

    if (pt__timeout_is_none(timeout) || timeout != timeout)
        return PT_DEADLINE_NONE;
    ns = timeout * (double)PT_NS_PER_SEC;
    if (!(ns < 18446744073709549568.0))
        return PT_DEADLINE_NONE - 1;
    u = (uint64_t)ns;
    if ((double)u < ns)
        u++;
    if (u >= PT_DEADLINE_NONE - 1 - now)
        return PT_DEADLINE_NONE - 1;
    return now + u;
}

/* ACQUIRE and RELEASE mean the same on every kind that has them; a
 * Condition's act on its lock. */
static void op_acquire(pt_req *r)
{
    switch (r->obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        pt__op_lock_acquire(r, r->obj);
        break;
    case PT_KIND_CONDITION:
        pt__op_cond_acquire(r);
        break;
    default:
        pt__op_sem_acquire(r);
        break;
    }
}

static void op_release(pt_req *r)
{
    switch (r->obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        pt__op_lock_release(r, r->obj);
        break;
    case PT_KIND_CONDITION:
        pt__op_cond_release(r);
        break;
    default:
        pt__op_sem_release(r);
        break;
    }
}

/* kinds == 0: the op takes no handle. */
static const struct {
    void (*fn)(pt_req *r);
    uint32_t kinds;
} op_table[PT_OP_MAX_] = {
    [PT_OP_OPEN] = {pt__op_open, 0},
    [PT_OP_CLOSE] = {pt__op_close, K_ANY},
    [PT_OP_UNLINK] = {pt__op_unlink, 0},
    [PT_OP_ACQUIRE] = {op_acquire, K_ACQUIRE},
    [PT_OP_RELEASE] = {op_release, K_ACQUIRE},
    [PT_OP_STATE] = {pt__op_state, K_ANY},
    [PT_OP_COND_WAIT] = {pt__op_cond_wait, K_COND},
    [PT_OP_NOTIFY] = {pt__op_cond_notify, K_COND},
    [PT_OP_EVENT_SET] = {pt__op_event_set, K_EVENT},
    [PT_OP_EVENT_CLEAR] = {pt__op_event_clear, K_EVENT},
    [PT_OP_EVENT_WAIT] = {pt__op_event_wait, K_EVENT},
    [PT_OP_BARRIER_WAIT] = {pt__op_barrier_wait, K_BARRIER},
    [PT_OP_BARRIER_ACTION_DONE] = {pt__op_barrier_action_done, K_BARRIER},
    [PT_OP_BARRIER_ABORT] = {pt__op_barrier_abort, K_BARRIER},
    [PT_OP_BARRIER_RESET] = {pt__op_barrier_reset, K_BARRIER},
};

static void fail_kind(pt_req *r, uint32_t kinds)
{
    char list[128];
    size_t n = 0;

    list[0] = '\0';
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++) {
        if (!(kinds & KIND_BIT(k)))
            continue;
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", pt__kind_name(k));
        if (n >= sizeof(list))
            break;
    }
    pt__fail_obj(r, r->obj, PT_EKIND, "%s %s has no %s; it applies to %s",
                 pt__kind_article(r->obj->kind), pt__kind_name(r->obj->kind),
                 pt__op_name(r->call->op), list);
}

/* A Lock handed on through its word: the claim takes the new holder in
 * and answers its parked call. Nobody waits for this, so nothing answers
 * it, not even a bad handle (the sender's handle may have closed since). */
static void sync_call(pt_core *core, pt_session *s, const pt_call *call)
{
    pt_handle *slot = pt__handle_get(s, call->handle);

    if (slot != NULL && slot->obj != NULL)
        pt__fast_claim(core, slot->obj);
}

void pt_core_call(pt_core *core, pt_session *s, const pt_call *call, uint64_t now)
{
    pt_req r = {.core = core, .s = s, .call = call, .now = now};
    int op = (int)call->op;
    uint32_t kinds;

    core->calls++;
    core->now = now;
    if (op == PT_OP_SYNC) {
        sync_call(core, s, call);
        return;
    }
    if (op == PT_OP_HELLO) {
        pt__fail(&r, PT_EPROTO,
                 "hello: the hello is the first request of a session and is "
                 "answered by the daemon; do not send it again");
        return;
    }
    if (op <= 0 || op >= PT_OP_MAX_ || op_table[op].fn == NULL) {
        pt__fail(&r, PT_EPROTO,
                 "request: unknown operation %d; use matching versions of "
                 "libpythread and pythreadd",
                 op);
        return;
    }
    kinds = op_table[op].kinds;
    if (kinds != 0) {
        r.slot = pt__handle_get(s, call->handle);
        if (r.slot == NULL || r.slot->obj == NULL) {
            pt__fail(&r, PT_EBADHANDLE,
                     "handle %u: %s: the handle is not open in this session; open the object "
                     "and use the handle that open returned",
                     call->handle, pt__op_name(op));
            return;
        }
        r.obj = r.slot->obj;
        if (!(kinds & KIND_BIT(r.obj->kind))) {
            fail_kind(&r, kinds);
            return;
        }
        pt__fast_claim(core, r.obj);
    }
    op_table[op].fn(&r);
}

/* A call that should park but cannot: err from pt__waiter_new, which the
 * session's limit or its user's quota refused when PT_ELIMIT. */
void pt__fail_waiter(pt_req *r, int err)
{
    const pt_core *c = r->core;
    int session = r->s->nwaiters >= c->limits.max_waiters_per_session;

    if (err == PT_ELIMIT)
        pt__metric_refused(r->core, session ? PT_LIMIT_WAITERS : PT_LIMIT_WAITERS_PER_UID);
    if (err == PT_ELIMIT && session)
        pt__fail_obj(r, r->obj, PT_ELIMIT,
                     "too many parked calls in this session (limit %u); wait in fewer threads "
                     "or raise pythreadd --max-waiters",
                     c->limits.max_waiters_per_session);
    else if (err == PT_ELIMIT)
        pt__fail_obj(r, r->obj, PT_ELIMIT,
                     "uid %u has %u calls parked across its sessions, the quota per user; wait "
                     "in fewer threads or processes, or raise pythreadd --max-waiters-per-uid",
                     (unsigned)r->s->peer.uid, c->limits.max_waiters_per_uid);
    else
        pt__fail_obj(r, r->obj, PT_ENOMEM, "out of memory in the daemon");
}

/* A waiter for the request, not yet parked; NULL when the session's limit
 * or memory refused it, the request then answered with the reason. */
pt_waiter *pt__waiter_for(pt_req *r, pt_obj *target, int kind)
{
    pt_waiter *w;
    int err = pt__waiter_new(r->core, r->s, &w);

    if (err != 0) {
        pt__fail_waiter(r, err);
        return NULL;
    }
    w->id = r->call->id;
    w->thread = r->call->thread;
    w->handle = r->call->handle;
    w->target = target;
    w->kind = (uint8_t)kind;
    w->fail_deadlock = r->call->fail_deadlock != 0;
    return w;
}
