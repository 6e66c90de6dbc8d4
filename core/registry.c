/*
 * registry.c - named objects: create-or-open, close, unlink, the reference
 * count that decides when an object ends, and STATE.
 *
 * An object ends when its last reference (handle, hold, a Condition's hold
 * on its lock) goes and it is transient, unlinked or anonymous; otherwise it
 * stays in the map until unlinked, like a POSIX named semaphore.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

/* Creation parameters of an OPEN, already checked. */
typedef struct open_params {
    int64_t value;
    uint8_t owned;
    uint32_t parties;
    double timeout;
    pt_obj *lock; /* Condition over a named lock; NULL: its own RLock */
} open_params;

/* Every permission check comes through here; the rule (want: PT_ACCESS_*)
 * is written down with pt_core_access in uid.c. */
int pt__access_check(pt_core *c, const pt_session *s, const pt_obj *obj, int want)
{
    (void)c;
    return pt_core_access(&s->peer, obj->uid, obj->gid, obj->mode, want);
}

/* The longest name, a Condition's own RLock, the object's share of the
 * name table (at most 4 bucket pointers, see map.c) and its shared cell. */
_Static_assert(PT_MALLOC_CHUNK(sizeof(pt_obj) + PT_NAME_MAX + 1) +
                       PT_MALLOC_CHUNK(sizeof(pt_obj) + 1) + 4 * sizeof(pt_obj *) + 64 <=
                   PT_MEM_OBJECT,
               "an object outgrew PT_MEM_OBJECT: update it and the per-uid arithmetic in core.h");

void pt__obj_ref(pt_obj *obj)
{
    obj->refs++;
}

static void obj_destroy(pt_core *c, pt_obj *obj)
{
    pt_obj *lock = obj->kind == PT_KIND_CONDITION ? obj->u.cond.lock : NULL;

    if (obj->in_map)
        pt__map_remove(&c->map, obj);
    pt__fast_freed(c, obj);
    if (c->freed != NULL)
        c->freed(c->freed_ctx, obj->serial);
    TAILQ_REMOVE(&c->objects, obj, all_link);
    if (!obj->anonymous) {
        c->nobjects--;
        pt__uid_add(c, obj->uid, -1, 0);
    }
    free(obj);
    if (lock != NULL) {
        pt__lock_cond_add(lock, -1);
        pt__obj_unref(c, lock);
    }
}

void pt__obj_unref(pt_core *c, pt_obj *obj)
{
    if (--obj->refs == 0 && (obj->transient || obj->unlinked || obj->anonymous))
        obj_destroy(c, obj);
}

void pt__objects_free_all(pt_core *c)
{
    pt_obj *obj;

    while ((obj = TAILQ_FIRST(&c->objects)) != NULL) {
        TAILQ_REMOVE(&c->objects, obj, all_link);
        free(obj);
    }
    c->nobjects = 0;
}

pt_obj *pt__obj_alloc(pt_core *c, int kind, const char *name, size_t len)
{
    pt_obj *obj = calloc(1, sizeof(*obj) + len + 1);

    if (obj == NULL)
        return NULL;
    obj->kind = kind;
    memcpy(obj->name, name, len);
    obj->name_len = len;
    obj->hash = pt__name_hash(name, len);
    pt__queue_init(&obj->queue);
    switch (kind) {
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        TAILQ_INIT(&obj->u.sem.holders);
        break;
    case PT_KIND_BARRIER:
        pt__queue_init(&obj->u.barrier.entrants);
        break;
    default:
        break;
    }
    TAILQ_INSERT_TAIL(&c->objects, obj, all_link);
    return obj;
}

static pt_obj *obj_new(pt_core *c, const pt_session *s, int kind, const char *name, size_t len,
                       uint32_t mode)
{
    pt_obj *obj = pt__obj_alloc(c, kind, name, len);

    if (obj == NULL)
        return NULL;
    obj->mode = mode;
    obj->uid = s->peer.uid;
    obj->gid = s->peer.gid;
    obj->serial = ++c->next_serial;
    obj->token = c->token_floor;
    return obj;
}

/* The name as it may be shown: printable ASCII, at most PT_NAME_MAX. */
static const char *name_show(char *buf, size_t cap, const char *name, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; name != NULL && i < len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)name[i];

        buf[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* "Kind 'name': open: " for objects that may not exist yet. */
static void fail_open(pt_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_open(pt_req *r, int status, const char *fmt, ...)
{
    char shown[PT_NAME_MAX + 1];
    char text[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    name_show(shown, sizeof(shown), r->call->name, r->call->name_len);
    pt__fail(r, status, "%s '%s': %s: %s", pt__kind_name(r->call->kind), shown,
             pt__op_name(r->call->op), text);
}

static int check_flags(pt_req *r)
{
    uint32_t f = r->call->flags;

    if (f & ~(uint32_t)PT_OPEN_FLAGS_KNOWN) {
        fail_open(r, PT_EINVAL, "unknown flag bits 0x%x; use PT_OPEN_* flags only",
                  f & ~(uint32_t)PT_OPEN_FLAGS_KNOWN);
        return -1;
    }
    if ((f & PT_OPEN_EXCL) && (f & PT_OPEN_EXISTING)) {
        fail_open(r, PT_EINVAL,
                  "PT_OPEN_EXCL and PT_OPEN_EXISTING together can never succeed; pass one");
        return -1;
    }
    if ((f & PT_OPEN_OWNED) && (f & PT_OPEN_UNOWNED)) {
        fail_open(r, PT_EINVAL, "PT_OPEN_OWNED and PT_OPEN_UNOWNED contradict; pass one");
        return -1;
    }
    if (r->call->mode & ~0777u) {
        fail_open(r, PT_EINVAL, "mode 0%o has bits beyond 0777; pass permission bits only",
                  r->call->mode);
        return -1;
    }
    return 0;
}

static int resolve_cond_lock(pt_req *r, open_params *p)
{
    uint32_t h = r->call->lock_handle;
    pt_handle *slot;

    p->lock = NULL;
    if (h == 0)
        return 0;
    slot = pt__handle_get(r->s, h);
    if (slot == NULL || slot->obj == NULL) {
        fail_open(r, PT_EBADHANDLE,
                  "lock handle %u is not open in this session; open the lock first and pass "
                  "its handle, or 0 for the condition's own RLock",
                  h);
        return -1;
    }
    if (slot->obj->kind != PT_KIND_LOCK && slot->obj->kind != PT_KIND_RLOCK) {
        fail_open(r, PT_EKIND,
                  "lock handle %u is %s %s; a condition's lock must be a Lock or RLock", h,
                  pt__kind_article(slot->obj->kind), pt__kind_name(slot->obj->kind));
        return -1;
    }
    p->lock = slot->obj;
    return 0;
}

/* Checks the creation parameters the kind takes (skipped when opening an
 * existing object as it is). */
static int check_params(pt_req *r, open_params *p)
{
    const pt_call *call = r->call;

    switch (call->kind) {
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        if (call->value < 0) {
            fail_open(r, PT_EINVAL, "semaphore initial value must be >= 0 (got %lld)",
                      (long long)call->value);
            return -1;
        }
        p->value = call->value;
        p->owned = call->kind == PT_KIND_BOUNDED_SEMAPHORE;
        if (call->flags & PT_OPEN_OWNED)
            p->owned = 1;
        if (call->flags & PT_OPEN_UNOWNED)
            p->owned = 0;
        return 0;
    case PT_KIND_BARRIER:
        if (call->parties < 1) {
            fail_open(r, PT_EINVAL, "parties must be >= 1");
            return -1;
        }
        /* Any default timeout is taken, as threading.Barrier takes it: NaN
         * waits for ever and one past TIMEOUT_MAX fails only the parties
         * that have to wait (barrier.c). */
        p->parties = call->parties;
        p->timeout = call->timeout;
        return 0;
    case PT_KIND_CONDITION:
        return resolve_cond_lock(r, p);
    default:
        return 0;
    }
}

static void describe_lock(char *buf, size_t cap, const pt_obj *lock)
{
    if (lock == NULL || lock->anonymous)
        snprintf(buf, cap, "its own RLock");
    else
        snprintf(buf, cap, "%s '%s'%s", pt__kind_name(lock->kind), lock->name,
                 lock->unlinked ? " (unlinked)" : "");
}

/* Two default timeouts are the same one, NaN included. */
static int same_timeout(double a, double b)
{
    return a == b || (a != a && b != b);
}

/* Opening an existing name with other creation parameters is refused with
 * what exists, so the caller can fix either side. */
static int compare_params(pt_req *r, const pt_obj *obj, const open_params *p)
{
    char have[PT_NAME_MAX + 32], want[PT_NAME_MAX + 32];

    switch (obj->kind) {
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        if (obj->u.sem.initial != p->value) {
            fail_open(r, PT_EEXIST,
                      "exists with value=%lld, asked value=%lld; open it with value=%lld or "
                      "unlink it",
                      (long long)obj->u.sem.initial, (long long)p->value,
                      (long long)obj->u.sem.initial);
            return -1;
        }
        if (obj->u.sem.owned != p->owned) {
            fail_open(r, PT_EEXIST,
                      "exists with %s permits, asked %s; open it with %s or unlink it",
                      obj->u.sem.owned ? "owned" : "unowned", p->owned ? "owned" : "unowned",
                      obj->u.sem.owned ? "PT_OPEN_OWNED" : "PT_OPEN_UNOWNED");
            return -1;
        }
        return 0;
    case PT_KIND_BARRIER:
        if (obj->u.barrier.parties != p->parties) {
            fail_open(r, PT_EEXIST,
                      "exists with parties=%u, asked parties=%u; open it with parties=%u or "
                      "unlink it",
                      obj->u.barrier.parties, p->parties, obj->u.barrier.parties);
            return -1;
        }
        if (!same_timeout(obj->u.barrier.timeout, p->timeout)) {
            fail_open(r, PT_EEXIST,
                      "exists with timeout=%g, asked timeout=%g; open it with timeout=%g or "
                      "unlink it",
                      obj->u.barrier.timeout, p->timeout, obj->u.barrier.timeout);
            return -1;
        }
        return 0;
    case PT_KIND_CONDITION:
        if (obj->u.cond.lock->anonymous ? p->lock == NULL : p->lock == obj->u.cond.lock)
            return 0;
        describe_lock(have, sizeof(have), obj->u.cond.lock);
        describe_lock(want, sizeof(want), p->lock);
        fail_open(r, PT_EEXIST, "exists over %s, asked %s; open it with the same lock or unlink it",
                  have, want);
        return -1;
    default:
        return 0;
    }
}

static void init_kind(pt_obj *obj, const open_params *p)
{
    switch (obj->kind) {
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        obj->u.sem.value = p->value;
        obj->u.sem.initial = p->value;
        obj->u.sem.owned = p->owned;
        break;
    case PT_KIND_BARRIER:
        obj->u.barrier.parties = p->parties;
        obj->u.barrier.timeout = p->timeout;
        obj->u.barrier.state = PT_BARRIER_FILLING;
        break;
    case PT_KIND_CONDITION:
        obj->u.cond.lock = p->lock;
        pt__obj_ref(p->lock);
        pt__lock_cond_add(p->lock, 1);
        break;
    default:
        break;
    }
}

static pt_obj *create(pt_req *r, open_params *p)
{
    const pt_call *call = r->call;
    uint32_t mode = call->mode ? call->mode : PT_DEFAULT_MODE;
    pt_obj *obj, *own = NULL;

    if (call->kind == PT_KIND_CONDITION && p->lock == NULL) {
        own = obj_new(r->core, r->s, PT_KIND_RLOCK, "", 0, mode);
        if (own == NULL)
            return NULL;
        own->anonymous = 1;
        p->lock = own;
    }
    obj = obj_new(r->core, r->s, call->kind, call->name, call->name_len, mode);
    if (obj == NULL) {
        if (own != NULL) {
            TAILQ_REMOVE(&r->core->objects, own, all_link);
            free(own);
        }
        return NULL;
    }
    obj->transient = (call->flags & PT_OPEN_TRANSIENT) != 0;
    init_kind(obj, p);
    pt__fast_created(r->core, obj, call->flags);
    pt__map_insert(&r->core->map, obj);
    r->core->nobjects++;
    r->s->user->objects++; /* the creator's entry, alive with its session */
    return obj;
}

/* Which handle limit refused an open: the session's or its user's. */
static void fail_handles(pt_req *r)
{
    const pt_core *c = r->core;
    int session = r->s->nhandles >= c->limits.max_handles_per_session;

    pt__metric_refused(r->core, session ? PT_LIMIT_HANDLES : PT_LIMIT_HANDLES_PER_UID);
    if (session)
        fail_open(r, PT_ELIMIT,
                  "too many handles in this session (limit %u); close handles no longer used or "
                  "raise pythreadd --max-handles",
                  c->limits.max_handles_per_session);
    else
        fail_open(r, PT_ELIMIT,
                  "uid %u has %u handles open across its sessions, the quota per user; close "
                  "handles no longer used or raise pythreadd --max-handles-per-uid",
                  (unsigned)r->s->peer.uid, c->limits.max_handles_per_uid);
}

void pt__op_open(pt_req *r)
{
    const pt_call *call = r->call;
    pt_core *c = r->core;
    open_params p = {0};
    pt_obj *obj;
    pt_state st;
    pt_result res = {.ok = 1};
    int existing = (call->flags & PT_OPEN_EXISTING) != 0;
    int err;

    if (!pt_name_valid(call->name, call->name_len)) {
        char shown[PT_NAME_MAX + 1];

        pt__fail(r, PT_ENAME,
                 "open: invalid name '%s' (%zu bytes): a name is 1-%d bytes of A-Z a-z 0-9 . _ : "
                 "/ -",
                 name_show(shown, sizeof(shown), call->name, call->name_len), call->name_len,
                 PT_NAME_MAX);
        return;
    }
    if (call->kind < PT_KIND_LOCK || call->kind > PT_KIND_BARRIER) {
        fail_open(r, PT_EINVAL, "unknown kind %d; pass a PT_KIND_* value", call->kind);
        return;
    }
    if (check_flags(r) != 0)
        return;
    if (!existing && check_params(r, &p) != 0)
        return;
    obj = pt__map_find(&c->map, call->name, call->name_len,
                       pt__name_hash(call->name, call->name_len));
    if (obj != NULL) {
        if (call->flags & PT_OPEN_EXCL) {
            fail_open(r, PT_EEXIST,
                      "the name exists and PT_OPEN_EXCL was asked; choose another name or "
                      "unlink it");
            return;
        }
        /* Before any comparison, so a stranger learns nothing more than
         * that the name exists. */
        if (pt__access_check(c, r->s, obj, PT_ACCESS_USE) != 0) {
            fail_open(r, PT_EPERM,
                      "permission denied (mode 0%o, owner uid %u, gid %u); ask its owner to "
                      "create it with a wider mode, or run as that user",
                      obj->mode, (unsigned)obj->uid, (unsigned)obj->gid);
            return;
        }
        if (obj->kind != call->kind) {
            fail_open(r, PT_EEXIST, "exists as %s %s; open it as %s %s or unlink it",
                      pt__kind_article(obj->kind), pt__kind_name(obj->kind),
                      pt__kind_article(obj->kind), pt__kind_name(obj->kind));
            return;
        }
        if (!existing && compare_params(r, obj, &p) != 0)
            return;
    } else if (existing) {
        fail_open(r, PT_ENOENT,
                  "no object with that name; create it first (open without PT_OPEN_EXISTING)");
        return;
    } else if (c->nobjects >= c->limits.max_objects) {
        pt__metric_refused(c, PT_LIMIT_OBJECTS);
        fail_open(r, PT_ELIMIT, "too many objects (limit %u); unlink objects no longer used",
                  c->limits.max_objects);
        return;
    } else if (r->s->peer.uid != 0 && r->s->user->objects >= c->limits.max_objects_per_uid) {
        pt__metric_refused(c, PT_LIMIT_OBJECTS_PER_UID);
        fail_open(r, PT_ELIMIT,
                  "uid %u has created %u objects, the limit per user; unlink objects no longer "
                  "used or raise pythreadd --max-objects-per-uid",
                  (unsigned)r->s->peer.uid, c->limits.max_objects_per_uid);
        return;
    }
    err = pt__handle_reserve(c, r->s);
    if (err == PT_ELIMIT) {
        fail_handles(r);
        return;
    }
    if (err == 0 && obj == NULL && (obj = create(r, &p)) != NULL)
        res.created = 1;
    if (err != 0 || obj == NULL) {
        fail_open(r, PT_ENOMEM, "out of memory in the daemon");
        return;
    }
    res.handle = pt__handle_new(c, r->s, obj);
    pt__fast_opened(c, obj, r->s, &res);
    /* A new object is what the caller asked for: only an existing one's
     * state tells it something. */
    if (!res.created) {
        pt__fast_claim(c, obj);
        pt__state_fill(obj, r->s, call->thread, &st);
        res.state = &st;
    }
    pt__reply(r, &res);
}

void pt__op_close(pt_req *r)
{
    pt_result res = {.ok = 1};

    pt__handle_close(r->core, r->s, r->call->handle, r->now);
    pt__reply(r, &res);
}

void pt__op_unlink(pt_req *r)
{
    const pt_call *call = r->call;
    pt_core *c = r->core;
    pt_result res = {.ok = 1};
    char shown[PT_NAME_MAX + 1];
    pt_obj *obj;

    name_show(shown, sizeof(shown), call->name, call->name_len);
    if (!pt_name_valid(call->name, call->name_len)) {
        pt__fail(r, PT_ENAME,
                 "unlink: invalid name '%s' (%zu bytes): a name is 1-%d bytes of A-Z a-z 0-9 . "
                 "_ : / -",
                 shown, call->name_len, PT_NAME_MAX);
        return;
    }
    obj = pt__map_find(&c->map, call->name, call->name_len,
                       pt__name_hash(call->name, call->name_len));
    if (obj == NULL) {
        pt__fail(r, PT_ENOENT, "unlink: no object named '%s'; check the name", shown);
        return;
    }
    if (pt__access_check(c, r->s, obj, PT_ACCESS_UNLINK) != 0) {
        pt__fail(r, PT_EPERM,
                 "%s '%s': unlink: permission denied (mode 0%o, owner uid %u): only its owner "
                 "or root may unlink it; ask the owner, or run as that user",
                 pt__kind_name(obj->kind), obj->name, obj->mode, (unsigned)obj->uid);
        return;
    }
    pt__map_remove(&c->map, obj);
    obj->unlinked = 1;
    if (obj->refs == 0)
        obj_destroy(c, obj);
    pt__reply(r, &res);
}

static void lock_state(const pt_obj *lock, const pt_session *s, uint64_t thread, pt_state *st)
{
    st->locked = lock->u.lock.depth > 0;
    st->owner_depth = pt__lock_owned_by(lock, s, thread) ? lock->u.lock.depth : 0;
    st->token = lock->token_given ? lock->token : 0; /* 0: none given yet */
}

void pt__state_fill(const pt_obj *obj, const pt_session *s, uint64_t thread, pt_state *st)
{
    *st = (pt_state){.kind = obj->kind, .timeout = PT_FOREVER};
    st->n_waiting = obj->queue.len;
    switch (obj->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        lock_state(obj, s, thread, st);
        break;
    case PT_KIND_CONDITION:
        lock_state(obj->u.cond.lock, s, thread, st);
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        st->value = obj->u.sem.value;
        st->initial = obj->u.sem.initial;
        break;
    case PT_KIND_EVENT:
        st->is_set = obj->u.event.set;
        break;
    case PT_KIND_BARRIER:
        st->parties = obj->u.barrier.parties;
        st->broken = obj->u.barrier.state == PT_BARRIER_BROKEN;
        st->timeout = obj->u.barrier.timeout;
        st->n_waiting = obj->u.barrier.state == PT_BARRIER_FILLING  ? obj->u.barrier.count
                        : obj->u.barrier.state == PT_BARRIER_ACTION ? obj->u.barrier.parties
                                                                    : 0;
        break;
    }
}

void pt__op_state(pt_req *r)
{
    pt_state st;
    pt_result res = {.ok = 1};

    pt__state_fill(r->obj, r->s, r->call->thread, &st);
    res.state = &st;
    res.value = r->obj->kind == PT_KIND_SEMAPHORE || r->obj->kind == PT_KIND_BOUNDED_SEMAPHORE
                    ? st.value
                    : 0;
    pt__reply(r, &res);
}

/* What listing and inspection tell about any object (no caller: state is
 * as a stranger sees it). */
void pt__object_info_fill(const pt_obj *obj, pt_core_object_info *info)
{
    *info = (pt_core_object_info){
        .name = obj->name,
        .name_len = obj->name_len,
        .kind = obj->kind,
        .transient = obj->transient,
        .unlinked = obj->unlinked,
        .refs = obj->refs,
        .mode = obj->mode,
        .uid = obj->uid,
        .gid = obj->gid,
        .serial = obj->serial,
    };
    pt__state_fill(obj, NULL, 0, &info->state);
}

void pt_core_foreach_object(const pt_core *core, pt_core_object_fn fn, void *ctx)
{
    const pt_obj *obj;

    TAILQ_FOREACH(obj, &core->objects, all_link)
    {
        pt_core_object_info info;

        if (obj->anonymous)
            continue;
        pt__object_info_fill(obj, &info);
        fn(ctx, &info);
    }
}
