/*
 * object.c - the handle every kind shares: open by name (or anonymously),
 * open again by name in a new session, close, and the requests several kinds
 * have in common.
 *
 * A handle number only means something in the session that gave it. Each
 * object keeps (session generation, handle) in one atomic word; a call names
 * the generation it expects, and when the client has meanwhile reconnected
 * (daemon restart, fork) the call is refused before anything is sent and the
 * object is opened again by name with what it was first opened with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fast.h"
#include "names.h"

static const uint32_t open_flags_known = PT_OPEN_FLAGS_KNOWN;

static atomic_uint anon_counter;

/* The daemon's rule (proto/names.c) on a C string; a longer name than the
 * rule allows is not read past its first PT_NAME_MAX + 1 bytes. */
static int name_valid(const char *name)
{
    return pt_name_valid(name, strnlen(name, PT_NAME_MAX + 1));
}

static int name_error(const char *kind, const char *op, const char *name)
{
    return pt__error(PT_ENAME,
                     "%s '%.64s%s': %s: invalid name; a name is 1-255 bytes of letters, digits "
                     "and . _ : / -",
                     kind, name, strlen(name) > 64 ? "..." : "", op);
}

/* "anon/<pid>.<counter>.<random>": unique on this machine in practice, and
 * the open is exclusive so a clash is retried, never shared. */
static void anon_name(char *buf, size_t len)
{
    uint32_t rnd;
    struct timespec ts;

    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rnd = (uint32_t)ts.tv_nsec ^ (uint32_t)pt__tid();
    }
    snprintf(buf, len, "anon/%ld.%u.%08x", (long)getpid(), atomic_fetch_add(&anon_counter, 1), rnd);
}

/* ------------------------------------------------------------------ */
/* Open and open again                                                 */
/* ------------------------------------------------------------------ */

static int object_refresh(pt_object *o, uint32_t stale_gen);

static void open_request(const pt_object *o, uint32_t flags, Pythread__Request *req,
                         Pythread__OpenArgs *args)
{
    const pt__open_params *p = &o->params;

    req->op = PYTHREAD__OP__OP_OPEN;
    req->has_name = 1;
    req->name.data = (uint8_t *)o->name;
    req->name.len = strlen(o->name);
    req->open = args;
    args->has_kind = 1;
    args->kind = p->kind;
    args->has_flags = 1;
    args->flags = flags;
    args->has_mode = 1;
    args->mode = p->mode;
    switch (p->kind) {
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        args->has_value = 1;
        args->value = p->value;
        break;
    case PT_KIND_BARRIER:
        args->has_parties = 1;
        args->parties = p->parties;
        req->has_timeout = 1;
        req->timeout = p->timeout;
        break;
    default:
        break;
    }
}

/*
 * Send OP_OPEN for o in the current session and keep the handle. A
 * Condition over a named lock names the lock's handle, so the lock must be
 * open in the same session: if it is not, open it again first and retry.
 */
static int object_open_call(pt_object *o, uint32_t flags, pt__state *st)
{
    pt_object *lock = o->params.lock;
    pt__reply rep;
    uint32_t gen;
    int r;

    for (;;) {
        Pythread__Request req = PYTHREAD__REQUEST__INIT;
        Pythread__OpenArgs args = PYTHREAD__OPEN_ARGS__INIT;
        uint32_t want = 0;

        open_request(o, flags, &req, &args);
        if (lock) {
            uint64_t slot = atomic_load(&lock->slot);

            want = pt__slot_gen(slot);
            args.has_lock_handle = 1;
            args.lock_handle = pt__slot_handle(slot);
        }
        r = pt__client_call(o->client, want, 0, &req, &rep, &gen);
        if (r == PT__ESTALE && lock) {
            r = object_refresh(lock, want);
            if (r < 0)
                return r;
            continue;
        }
        if (r < 0)
            return r;
        if (st && rep.has_state) {
            *st = rep.state;
        } else if (st && rep.created) {
            /* Created as asked: the daemon sends no state for that. */
            st->kind = o->params.kind;
            st->parties = o->params.parties;
            st->value = st->initial = o->params.value;
            st->timeout = o->params.timeout;
        }
        pt__fast_attach(o, gen, &rep);
        atomic_store(&o->slot, (uint64_t)gen << 32 | rep.handle);
        return 0;
    }
}

/*
 * o's handle is from session stale_gen: open it again in the current one,
 * unless another thread already has.
 *
 * A forked child's first open of a transient object it inherited must find
 * the parent's object: if the parent's last handle closed before the child
 * used its own, the object ended, and creating it again under its name
 * would hand the child a new, empty object (an Event unset, a Semaphore at
 * its initial value) in place of the one it was given.
 */
static int object_refresh(pt_object *o, uint32_t stale_gen)
{
    uint32_t flags = o->params.flags & ~(uint32_t)PT_OPEN_EXCL;
    int r = 0;

    pthread_mutex_lock(&o->reopen_mu);
    if (pt__slot_gen(atomic_load(&o->slot)) == stale_gen) {
        int inherited = o->inherited && (flags & PT_OPEN_TRANSIENT);

        r = object_open_call(o, inherited ? flags | PT_OPEN_EXISTING : flags, NULL);
        if (r == 0)
            o->inherited = 0;
        else if (r == PT_ENOENT && inherited)
            r = pt__object_error(o, "open in a forked child", PT_ENOENT,
                                 "the object ended (it was transient, and its last handle "
                                 "closed) before this child used the handle it inherited; keep "
                                 "a handle open in the parent until the child has used its own");
    }
    pthread_mutex_unlock(&o->reopen_mu);
    return r;
}

static int open_check(pt_client *c, const char *name, const pt__open_params *p)
{
    const char *kind = pt_kind_name(p->kind);
    const char *shown = name ? name : "";

    if (!c)
        return pt__error(PT_EINVAL, "%s '%.64s': open: client is NULL; open one first", kind,
                         shown);
    if (p->flags & ~open_flags_known)
        return pt__error(PT_EINVAL, "%s '%.64s': open: unknown flag bits 0x%x; pass PT_OPEN_*",
                         kind, shown, p->flags & ~open_flags_known);
    if (p->mode & ~07777u)
        return pt__error(PT_EINVAL, "%s '%.64s': open: mode 0%o has bits outside 07777", kind,
                         shown, p->mode);
    if (name && !name_valid(name))
        return name_error(kind, "open", name);
    if (!name && (p->flags & PT_OPEN_EXISTING))
        return pt__error(PT_EINVAL,
                         "%s: open: an anonymous object is always new; PT_OPEN_EXISTING needs "
                         "a name",
                         kind);
    if (p->lock && p->lock->client != c)
        return pt__error(PT_EINVAL,
                         "%s '%.64s': open: its lock '%s' was opened through another client; "
                         "open both through the same one",
                         kind, shown, p->lock->name);
    return 0;
}

int pt__object_open(pt_client *c, size_t size, const char *name, const pt__open_params *p,
                    pt_object **out)
{
    pt_object *o;
    int r, tries = 0;

    if (!out)
        return pt__error(PT_EINVAL, "%s: open: out is NULL; pass where to store the handle",
                         pt_kind_name(p->kind));
    *out = NULL;
    r = open_check(c, name, p);
    if (r < 0)
        return r;
    o = calloc(1, size);
    if (!o)
        return pt__error(PT_ENOMEM, "%s: open: out of memory", pt_kind_name(p->kind));
    o->client = c;
    o->refs = 1;
    o->params = *p;
    if (!o->params.mode)
        o->params.mode = PT_DEFAULT_MODE;
    if (!name)
        o->params.flags |= PT_OPEN_TRANSIENT | PT_OPEN_EXCL;
    pthread_mutex_init(&o->reopen_mu, NULL);
    do {
        if (name)
            memcpy(o->name, name, strlen(name) + 1);
        else
            anon_name(o->name, sizeof(o->name));
        r = object_open_call(o, o->params.flags, &o->opened);
    } while (r == PT_EEXIST && !name && ++tries < 4);
    if (r < 0) {
        pt__object_free(o);
        return r;
    }
    if (p->lock)
        pt__object_ref(p->lock);
    pt__client_link(c, o);
    *out = o;
    return 0;
}

void pt__object_free(pt_object *o)
{
    pthread_mutex_destroy(&o->reopen_mu);
    free(o);
}

/*
 * The daemon-side handle is closed only with the last reference: a lock stays
 * open while a Condition built on it does, as a Python Condition keeps its
 * lock alive. A handle of a session that is gone needs no request, and none
 * is made (closing never reconnects).
 */
int pt__object_close(pt_object *o)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt_object *lock;
    pt__reply rep;
    uint64_t slot;
    int r;

    if (!o || pt__object_unref(o) > 0)
        return 0;
    slot = atomic_load(&o->slot);
    req.op = PYTHREAD__OP__OP_CLOSE;
    req.has_handle = 1;
    req.handle = pt__slot_handle(slot);
    r = pt__client_call(o->client, pt__slot_gen(slot), PT__CALL_NOCONNECT, &req, &rep, NULL);
    if (r == PT__ESTALE || r == PT_ESESSION)
        r = 0;
    lock = o->params.lock;
    pt__object_free(o);
    if (lock) {
        int lr = pt__object_close(lock);

        if (r == 0)
            r = lr;
    }
    return r;
}

static int object_call(pt_object *o, Pythread__Request *req, pt__reply *rep, uint64_t *slotp,
                       const pt__watch *watch)
{
    for (;;) {
        uint64_t slot = atomic_load_explicit(&o->slot, memory_order_acquire);
        int r;

        req->has_handle = 1;
        req->handle = pt__slot_handle(slot);
        if (watch && watch->gen == pt__slot_gen(slot))
            r = pt__client_call_watch(o->client, pt__slot_gen(slot), req, rep, watch);
        else
            r = pt__client_call(o->client, pt__slot_gen(slot), 0, req, rep, NULL);
        if (r != PT__ESTALE) {
            if (slotp)
                *slotp = slot;
            return r;
        }
        r = object_refresh(o, pt__slot_gen(slot));
        if (r < 0)
            return r;
    }
}

int pt__object_call(pt_object *o, Pythread__Request *req, pt__reply *rep, uint64_t *slotp)
{
    return object_call(o, req, rep, slotp, NULL);
}

int pt__object_call_watch(pt_object *o, Pythread__Request *req, pt__reply *rep,
                          const pt__watch *watch)
{
    return object_call(o, req, rep, NULL, watch);
}

/* ------------------------------------------------------------------ */
/* Requests several kinds share                                        */
/* ------------------------------------------------------------------ */

void pt__object_deadlock_ask(const pt_object *o, Pythread__Request *req)
{
    if (o->params.kind == PT_KIND_SEMAPHORE || o->params.kind == PT_KIND_BOUNDED_SEMAPHORE)
        return; /* no owner to wait for: no deadlock to close */
    if ((o->params.flags & PT_OPEN_DEADLOCK_FAIL) || pt__client_deadlock_fail(o->client)) {
        req->has_fail_deadlock = 1;
        req->fail_deadlock = 1;
    }
}

/* 1 acquired, 0 not (non-blocking or timed out), or an error. */
int pt__object_acquire(pt_object *o, int blocking, double timeout, uint64_t *token)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    pt__watch watch;
    int r = pt__fast_acquire(o, blocking, timeout, token, &watch);

    if (r != PT_FAST_SLOW)
        return r == PT_FAST_OK;
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_blocking = 1;
    req.blocking = blocking != 0;
    req.has_timeout = 1;
    req.timeout = timeout;
    pt__object_deadlock_ask(o, &req);
    r = object_call(o, &req, &rep, NULL, watch.cell ? &watch : NULL);
    if (r < 0)
        return r;
    if (token)
        *token = rep.ok ? rep.token : 0;
    return rep.ok != 0;
}

int pt__object_release(pt_object *o, uint32_t count)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    if (pt__fast_release(o, count) == PT_FAST_OK)
        return 0;
    req.op = PYTHREAD__OP__OP_RELEASE;
    req.has_count = 1;
    req.count = count;
    return pt__object_call(o, &req, &rep, NULL);
}

int pt__object_state(pt_object *o, const char *op, pt__state *st)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;
    int r;

    req.op = PYTHREAD__OP__OP_STATE;
    r = pt__object_call(o, &req, &rep, NULL);
    if (r < 0)
        return r;
    if (!rep.has_state)
        return pt__object_error(o, op, PT_EPROTO,
                                "pythreadd answered a state request without a state; check "
                                "that the daemon matches this library");
    *st = rep.state;
    return 0;
}

int pt__object_simple(pt_object *o, Pythread__Op op)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    req.op = op;
    return pt__object_call(o, &req, &rep, NULL);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

static int unlink_name(pt_client *c, const char *name, int cluster)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    if (!c)
        return pt__error(PT_EINVAL, "unlink: client is NULL; open one first");
    if (!name)
        return pt__error(PT_EINVAL, "unlink: name is NULL; pass the name to remove");
    if (!name_valid(name))
        return name_error("object", "unlink", name);
    req.op = PYTHREAD__OP__OP_UNLINK;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = strlen(name);
    req.has_cluster = req.cluster = cluster != 0;
    return pt__client_call(c, 0, 0, &req, &rep, NULL);
}

int pt_unlink(pt_client *c, const char *name)
{
    return unlink_name(c, name, 0);
}

int pt_unlink_cluster(pt_client *c, const char *name)
{
    return unlink_name(c, name, 1);
}
