/*
 * cluster_own.c - owned locks: the calls a host may answer ahead of the
 * cluster's log (cluster_core.h, doc/cluster.md "Owned locks").
 *
 * Every copy keeps the same owners, because ownership moves only with
 * entries: a Lock or RLock becomes a host's when a direct call leaves it
 * with no waiter, held by that host's session or free after that host's
 * call; it stops
 * being so at that host's HAND_BACK, when the host is gone, or when the
 * lock is freed or a Condition is made over it (whose waiters' timeouts,
 * in any host's EXPIRE, take the lock back). Meanwhile a session of another
 * host whose call touches the lock (directly, through a Condition, or
 * opening one over it) is held: that entry and every
 * later one of the session are kept, in order, and applied at the
 * hand-back, as if they came there. Nothing else waits.
 *
 * The owner's copy answers a call ahead only when its outcome is already
 * fixed: the lock free or held by this host, no waiter to hand it to, no
 * entry of this host's still on its way (the copy then differs from the
 * log's by calls answered ahead only). Entries of other hosts before its
 * place cannot touch the lock, so every copy applying it there comes to the
 * same answer and token. The call's time is its own (now in the entry) and
 * the token floor it would raise is raised only at its place.
 *
 * A host can be gone with calls answered ahead that never reach the log.
 * Their tokens were given: every copy jumps an owned lock's token by
 * PT_CCORE_AHEAD_MAX + 1 when its owner is gone, and the owner's own copy
 * first puts back what it answered ahead, so the copies stay alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_core_int.h"
#include "request.h"

#define TOKEN_JUMP ((uint64_t)PT_CCORE_AHEAD_MAX + 1)

/* ------------------------------------------------------------------ */
/* Owners                                                              */
/* ------------------------------------------------------------------ */

static struct cc_own_list *own_bucket(pt_ccore *cc, uint64_t serial)
{
    return &cc->own_buckets[(serial * 0x9E3779B97F4A7C15ull) >> 56];
}

static cc_own *own_find(const pt_ccore *cc, uint64_t serial)
{
    cc_own *o;

    LIST_FOREACH(o, own_bucket((pt_ccore *)cc, serial), link)
    {
        if (o->serial == serial)
            return o;
    }
    return NULL;
}

static cc_own *own_new(pt_ccore *cc, uint64_t serial, cc_host *h)
{
    cc_own *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return NULL; /* (a copy out of memory is left behind the others) */
    o->serial = serial;
    o->host = h;
    LIST_INSERT_HEAD(own_bucket(cc, serial), o, link);
    TAILQ_INSERT_TAIL(&cc->owned, o, order);
    return o;
}

static void own_drop(pt_ccore *cc, cc_own *o)
{
    LIST_REMOVE(o, link);
    TAILQ_REMOVE(&cc->owned, o, order);
    free(o);
}

void pt__cc_own_init(pt_ccore *cc)
{
    for (unsigned i = 0; i < OWN_BUCKETS; i++)
        LIST_INIT(&cc->own_buckets[i]);
    TAILQ_INIT(&cc->owned);
    TAILQ_INIT(&cc->held);
}

void pt__cc_own_free(pt_ccore *cc)
{
    cc_own *o;

    while ((o = TAILQ_FIRST(&cc->owned)) != NULL)
        own_drop(cc, o);
}

void pt__cc_own_freed(void *ctx, uint64_t serial)
{
    pt_ccore *cc = ctx;
    cc_own *o = own_find(cc, serial);

    /* No session is held on it: a held session has a handle on it. */
    if (o != NULL)
        own_drop(cc, o);
}

const char *pt_ccore_owner(const pt_ccore *cc, uint64_t serial)
{
    const cc_own *o = own_find(cc, serial);

    return o != NULL ? o->host->name : NULL;
}

size_t pt_ccore_owned(const pt_ccore *cc, const char *host)
{
    const cc_host *h = pt__cc_host_find(cc, host);
    const cc_own *o;
    size_t n = 0;

    TAILQ_FOREACH(o, &cc->owned, order)
    {
        n += o->host == h;
    }
    return n;
}

void pt_ccore_set_wanted(pt_ccore *cc, pt_ccore_wanted_fn wanted)
{
    cc->wanted = wanted;
}

static void want(pt_ccore *cc, cc_own *o)
{
    if (o->wanted)
        return;
    o->wanted = 1;
    if (o->host == cc->self && cc->wanted != NULL)
        cc->wanted(cc->ctx, o->serial);
}

void pt_ccore_wanted_again(pt_ccore *cc)
{
    cc_own *o;

    TAILQ_FOREACH(o, &cc->owned, order)
    {
        if (o->wanted && o->host == cc->self && cc->wanted != NULL)
            cc->wanted(cc->ctx, o->serial);
    }
}

/* ------------------------------------------------------------------ */
/* What a call touches                                                 */
/* ------------------------------------------------------------------ */

/* The calls that read or change a lock's state. */
static int touches_lock(int op)
{
    switch (op) {
    case PYTHREAD__OP__OP_ACQUIRE:
    case PYTHREAD__OP__OP_RELEASE:
    case PYTHREAD__OP__OP_STATE:
    case PYTHREAD__OP__OP_COND_WAIT:
    case PYTHREAD__OP__OP_NOTIFY:
        return 1;
    default:
        return 0;
    }
}

/* The handle of a Lock or RLock an open of a Condition names, or 0. */
static uint32_t cond_lock_handle(const Pythread__Request *req)
{
    return req->op == PYTHREAD__OP__OP_OPEN && req->open != NULL && req->open->has_lock_handle
               ? req->open->lock_handle
               : 0;
}

/* The lock call req of session s touches, directly (direct) or through a
 * Condition (a call on one, or the open of one over it); -1 for none. */
static int lock_of(const pt_ccore *cc, const pt_session *s, const Pythread__Request *req,
                   int direct, pt_core_lock_view *v)
{
    uint32_t handle;

    if (req == NULL)
        return -1;
    if ((handle = cond_lock_handle(req)) != 0)
        return direct || pt_core_lock_view_get(cc->core, s, handle, v) != 0 ? -1 : 0;
    if (!req->has_handle || !touches_lock((int)req->op) ||
        pt_core_lock_view_get(cc->core, s, req->handle, v) != 0)
        return -1;
    if (direct && v->kind != PT_KIND_LOCK && v->kind != PT_KIND_RLOCK)
        return -1;
    return 0;
}

static const cc_host *holder_host(const pt_core_lock_view *v)
{
    const cc_sess *x = v->holder != NULL ? pt_core_session_udata(v->holder) : NULL;

    return x != NULL ? x->host : NULL;
}

/* ------------------------------------------------------------------ */
/* Held sessions                                                       */
/* ------------------------------------------------------------------ */

/* Past a kept acquire's own timeout, this long for the hand-back: an owner
 * that is up hands back within a round trip; one that is not (stopped, cut
 * off) has the lock as far as the others can tell. */
#define HAND_BACK_GRACE 1000000000ull /* ns */

/* Only an acquire of the lock the session is held on: one of another
 * object, kept only to keep the session's order, has no owner to wait for. */
static uint64_t kept_deadline(const pt_ccore *cc, const cc_sess *x, const record *r)
{
    pt_core_lock_view v;
    pt_call call;
    double ns;

    if (r == NULL || r->type != PYTHREAD__JOURNAL_RECORD__TYPE__CALL || r->request == NULL ||
        r->request->op != PYTHREAD__OP__OP_ACQUIRE || lock_of(cc, x->s, r->request, 0, &v) < 0 ||
        v.serial != x->held_on)
        return PT_DEADLINE_NONE;
    pt_request_call(r->request, &call);
    if (call.blocking && call.timeout < 0)
        return PT_DEADLINE_NONE;
    ns = call.blocking ? call.timeout * 1e9 : 0;
    if (ns > 1e18)
        return PT_DEADLINE_NONE;
    return cc->now + (uint64_t)ns + HAND_BACK_GRACE;
}

/* e (len bytes) is record r, kept behind x's earlier entries. */
static cc_kept *kept_add(cc_sess *x, const record *r, const uint8_t *e, size_t len,
                         uint64_t deadline)
{
    cc_kept *k = malloc(sizeof(*k) + len);

    if (k == NULL)
        return NULL;
    k->len = len;
    k->deadline = deadline;
    k->id = r->request != NULL ? r->request->id : 0;
    k->thread = r->request != NULL ? r->request->thread : 0;
    memcpy(k->bytes, e, len);
    STAILQ_INSERT_TAIL(&x->kept, k, link);
    return k;
}

int pt__cc_own_keep(pt_ccore *cc, cc_sess *x, const record *r, const uint8_t *e, size_t len)
{
    if (!x->held)
        return 0;
    kept_add(x, r, e, len, kept_deadline(cc, x, r)); /* (a copy out of memory falls behind) */
    return 1;
}

int pt__cc_own_hold(pt_ccore *cc, cc_sess *x, const record *r, const uint8_t *e, size_t len)
{
    pt_core_lock_view v;
    cc_own *o;

    if (lock_of(cc, x->s, r->request, 0, &v) < 0 || (o = own_find(cc, v.serial)) == NULL ||
        o->host == x->host)
        return 0;
    x->held = 1;
    x->held_on = v.serial;
    STAILQ_INIT(&x->kept);
    kept_add(x, r, e, len, kept_deadline(cc, x, r));
    TAILQ_INSERT_TAIL(&cc->held, x, held_link);
    want(cc, o);
    return 1;
}

/* Refused as a timed-out acquire is: False, on this host's copy. */
static void kept_refuse(pt_ccore *cc, const cc_sess *x, const cc_kept *k)
{
    pt_result res = {.id = k->id, .thread = k->thread, .ok = 0};

    if (x->host == cc->self)
        cc->answer(cc->ctx, x->conn, &res);
}

void pt__cc_own_expire(pt_ccore *cc)
{
    cc_sess *x;

    TAILQ_FOREACH(x, &cc->held, held_link)
    {
        cc_kept *k, *next;

        for (k = STAILQ_FIRST(&x->kept); k != NULL; k = next) {
            next = STAILQ_NEXT(k, link);
            if (k->deadline > cc->now)
                continue;
            kept_refuse(cc, x, k);
            STAILQ_REMOVE(&x->kept, k, cc_kept, link);
            free(k);
        }
    }
}

uint64_t pt__cc_own_next_deadline(const pt_ccore *cc)
{
    uint64_t d = PT_DEADLINE_NONE;
    const cc_sess *x;
    const cc_kept *k;

    TAILQ_FOREACH(x, &cc->held, held_link)
    {
        STAILQ_FOREACH(k, &x->kept, link)
        {
            if (k->deadline < d)
                d = k->deadline;
        }
    }
    return d;
}

static void unhold(pt_ccore *cc, cc_sess *x)
{
    TAILQ_REMOVE(&cc->held, x, held_link);
    x->held = 0;
}

void pt__cc_own_sess_end(pt_ccore *cc, cc_sess *x)
{
    cc_kept *k;

    if (!x->held)
        return;
    unhold(cc, x);
    while ((k = STAILQ_FIRST(&x->kept)) != NULL) {
        STAILQ_REMOVE_HEAD(&x->kept, link);
        free(k);
    }
}

/* The sessions held on serial, oldest first, go on: each one's kept
 * entries are applied in order, as they came (one that touches another
 * owned lock holds the session again, and the rest stay kept). The lock
 * becomes nobody's meanwhile, so the first of them does not take it from
 * the others. */
static void release_held(pt_ccore *cc, uint64_t serial)
{
    TAILQ_HEAD(, cc_sess) go = TAILQ_HEAD_INITIALIZER(go);
    int was_handing = cc->handing;
    uint64_t was_serial = cc->handing_serial;
    cc_sess *x, *next;
    char err[256];

    for (x = TAILQ_FIRST(&cc->held); x != NULL; x = next) {
        next = TAILQ_NEXT(x, held_link);
        if (x->held_on == serial) {
            TAILQ_REMOVE(&cc->held, x, held_link);
            TAILQ_INSERT_TAIL(&go, x, held_link);
        }
    }
    cc->handing = 1;
    cc->handing_serial = serial;
    while ((x = TAILQ_FIRST(&go)) != NULL) {
        struct cc_kept_list kept = STAILQ_HEAD_INITIALIZER(kept);
        const char *host = x->host->name;
        cc_kept *k;

        TAILQ_REMOVE(&go, x, held_link);
        x->held = 0;
        STAILQ_CONCAT(&kept, &x->kept);
        /* x may end (a kept SESSION_END): only its host and kept go on. */
        while ((k = STAILQ_FIRST(&kept)) != NULL) {
            STAILQ_REMOVE_HEAD(&kept, link);
            (void)pt_ccore_apply(cc, host, k->bytes, k->len, err, sizeof(err));
            free(k);
        }
    }
    cc->handing = was_handing; /* (a kept entry may have handed another lock back) */
    cc->handing_serial = was_serial;
}

void pt__cc_own_hand_back(pt_ccore *cc, const cc_host *h, uint64_t serial)
{
    cc_own *o = own_find(cc, serial);

    if (o == NULL || o->host != h)
        return; /* handed back already, or the host was gone meanwhile */
    own_drop(cc, o);
    release_held(cc, serial);
}

/* A lock left with no waiter after a host's direct call on it becomes its
 * holder's host's, or the caller's when it is free: the next call there is
 * most likely that host's again. */
void pt__cc_own_after_call(pt_ccore *cc, cc_sess *x, const record *r)
{
    pt_core_lock_view v;
    cc_own *o;
    cc_host *h;

    /* A Condition's waiters take its lock back at their timeouts, which
     * any host's EXPIRE applies: a lock under one is nobody's. */
    if (lock_of(cc, x->s, r->request, 0, &v) == 0 && v.conds > 0 &&
        (o = own_find(cc, v.serial)) != NULL) {
        own_drop(cc, o);
        release_held(cc, v.serial);
        return;
    }
    if (lock_of(cc, x->s, r->request, 1, &v) < 0 || v.queued || v.conds > 0 ||
        (cc->handing && cc->handing_serial == v.serial) || own_find(cc, v.serial) != NULL)
        return;
    h = v.depth == 0 ? x->host : (cc_host *)holder_host(&v);
    if (h != NULL)
        own_new(cc, v.serial, h);
}

/* ------------------------------------------------------------------ */
/* Hosts gone                                                          */
/* ------------------------------------------------------------------ */

/* The copy's own calls answered ahead will never be met now (their host's
 * membership ended): each lock's token goes back to what the log gave. */
static void ahead_put_back(pt_ccore *cc)
{
    for (size_t i = 0; i < cc->nahead; i++) {
        const cc_ahead *a = &cc->ahead[(cc->ahead_first + i) % PT_CCORE_AHEAD_MAX];
        int first = 1;

        for (size_t j = 0; j < i && first; j++)
            first = cc->ahead[(cc->ahead_first + j) % PT_CCORE_AHEAD_MAX].serial != a->serial;
        if (first)
            pt_core_lock_token_put(cc->core, a->serial, a->token, a->token_given);
    }
    cc->nahead = 0;
    cc->ahead_first = 0;
}

void pt__cc_own_host_gone_before(pt_ccore *cc, const cc_host *h)
{
    cc_own *o;

    if (h == cc->self)
        ahead_put_back(cc);
    TAILQ_FOREACH(o, &cc->owned, order)
    {
        if (o->host == h)
            pt_core_lock_token_jump(cc->core, o->serial, TOKEN_JUMP);
    }
}

void pt__cc_own_host_gone_after(pt_ccore *cc, const cc_host *h)
{
    cc_own *o, *next;

    for (o = TAILQ_FIRST(&cc->owned); o != NULL; o = next) {
        next = TAILQ_NEXT(o, order);
        if (o->host == h) {
            uint64_t serial = o->serial;

            own_drop(cc, o);
            release_held(cc, serial);
            next = TAILQ_FIRST(&cc->owned); /* the release may change the list */
        }
    }
}

/* ------------------------------------------------------------------ */
/* Answering ahead                                                     */
/* ------------------------------------------------------------------ */

/* The outcome of req on a lock this host owns does not depend on what
 * comes before its place in the log. */
static int outcome_fixed(const cc_sess *x, const Pythread__Request *req, const pt_core_lock_view *v)
{
    pt_call call;

    pt_request_call(req, &call);
    switch (call.op) {
    case PT_OP_STATE:
        return 1;
    case PT_OP_ACQUIRE:
        /* granted, a recursion, or refused without waiting */
        return v->depth == 0 ||
               (v->kind == PT_KIND_RLOCK && v->holder == x->s && v->holder_thread == call.thread) ||
               !call.blocking || call.timeout == 0;
    case PT_OP_RELEASE:
        /* nobody to hand it to; the caller's handle keeps the lock alive */
        return v->refs >= 2;
    default:
        return 0;
    }
}

int pt_ccore_ahead_ok(const pt_ccore *cc, uint64_t conn, const Pythread__Request *req)
{
    cc_sess *x = pt__cc_sess_find(cc->self, conn);
    pt_core_lock_view v;
    const cc_own *o;

    if (x == NULL || x->held || cc->nahead >= PT_CCORE_AHEAD_MAX ||
        lock_of(cc, x->s, req, 1, &v) < 0 || (o = own_find(cc, v.serial)) == NULL ||
        o->host != cc->self || o->wanted || v.queued || v.conds > 0)
        return 0;
    if (v.depth > 0 && holder_host(&v) != cc->self)
        return 0;
    return outcome_fixed(x, req, &v);
}

int pt_ccore_enc_ahead(const pt_ccore *cc, uint64_t conn, const Pythread__Request *req, uint64_t id,
                       uint8_t **out, size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__CALL;
    r.has_session = r.has_now = r.has_ahead = 1;
    r.session = conn;
    r.now = cc->now;
    r.ahead = id;
    r.request = (Pythread__Request *)req;
    return pt__cc_record_pack(&r, out, len);
}

void pt_ccore_apply_ahead(pt_ccore *cc, uint64_t conn, const Pythread__Request *req, uint64_t id)
{
    cc_sess *x = pt__cc_sess_find(cc->self, conn);
    uint64_t floor = pt_core_token_floor(cc->core);
    pt_core_lock_view v;
    cc_ahead *a;
    pt_call call;

    if (x == NULL || lock_of(cc, x->s, req, 1, &v) < 0)
        return; /* not after pt_ccore_ahead_ok */
    a = &cc->ahead[(cc->ahead_first + cc->nahead++) % PT_CCORE_AHEAD_MAX];
    *a = (cc_ahead){.id = id, .serial = v.serial, .token = v.token, .token_given = v.token_given};
    pt_request_call(req, &call);
    pt_core_call(cc->core, x->s, &call, cc->now); /* the now pt_ccore_enc_ahead wrote */
    a->floor = pt_core_token_floor(cc->core);
    pt_core_token_floor_put(cc->core, floor);
}

int pt__cc_own_met(pt_ccore *cc, const cc_host *h, const record *r)
{
    const cc_ahead *a = &cc->ahead[cc->ahead_first];

    if (h != cc->self || cc->nahead == 0 || a->id != r->ahead)
        return 0; /* another host's, or a past run's of this one */
    if (a->floor > pt_core_token_floor(cc->core))
        pt_core_token_floor_put(cc->core, a->floor);
    cc->ahead_first = (cc->ahead_first + 1) % PT_CCORE_AHEAD_MAX;
    cc->nahead--;
    return 1;
}

size_t pt_ccore_ahead(const pt_ccore *cc)
{
    return cc->nahead;
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

static int owned_out(const pt_ccore *cc, copy_msg *m)
{
    const cc_own *o;
    size_t n = 0, i = 0;

    TAILQ_FOREACH(o, &cc->owned, order)
    {
        n++;
    }
    if ((m->owned = calloc(n + 1, sizeof(*m->owned))) == NULL)
        return -1;
    TAILQ_FOREACH(o, &cc->owned, order)
    {
        Pythread__ClusterOwned *w = malloc(sizeof(*w));

        if (w == NULL)
            return -1;
        pythread__cluster_owned__init(w);
        w->has_serial = w->has_wanted = 1;
        w->serial = o->serial;
        w->host = (char *)o->host->name;
        w->wanted = o->wanted != 0;
        m->owned[i] = w;
        m->n_owned = ++i;
    }
    return 0;
}

static int held_one_out(const cc_sess *x, Pythread__ClusterHeld *w)
{
    const cc_kept *k;
    size_t n = 0;

    pythread__cluster_held__init(w);
    w->has_conn = w->has_serial = 1;
    w->host = (char *)x->host->name;
    w->conn = x->conn;
    w->serial = x->held_on;
    STAILQ_FOREACH(k, &x->kept, link)
    {
        n++;
    }
    if ((w->entries = calloc(n + 1, sizeof(*w->entries))) == NULL ||
        (w->deadlines = calloc(n + 1, sizeof(*w->deadlines))) == NULL)
        return -1;
    STAILQ_FOREACH(k, &x->kept, link)
    {
        w->deadlines[w->n_deadlines++] = k->deadline;
        w->entries[w->n_entries++] = (ProtobufCBinaryData){k->len, (uint8_t *)k->bytes};
    }
    return 0;
}

static int held_out(const pt_ccore *cc, copy_msg *m)
{
    const cc_sess *x;
    size_t n = 0;

    TAILQ_FOREACH(x, &cc->held, held_link)
    {
        n++;
    }
    if ((m->held = calloc(n + 1, sizeof(*m->held))) == NULL)
        return -1;
    TAILQ_FOREACH(x, &cc->held, held_link)
    {
        Pythread__ClusterHeld *w = calloc(1, sizeof(*w));

        if (w == NULL)
            return -1;
        m->held[m->n_held++] = w;
        if (held_one_out(x, w) < 0)
            return -1;
    }
    return 0;
}

int pt__cc_own_out(const pt_ccore *cc, copy_msg *m)
{
    return owned_out(cc, m) < 0 || held_out(cc, m) < 0 ? -1 : 0;
}

void pt__cc_own_out_free(copy_msg *m)
{
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    for (size_t i = 0; i < m->n_held; i++) {
        free(m->held[i]->entries);
        free(m->held[i]->deadlines);
        free(m->held[i]);
    }
    free(m->held);
}

static int owned_in(pt_ccore *cc, const copy_msg *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->n_owned; i++) {
        const Pythread__ClusterOwned *w = m->owned[i];
        cc_host *h = w->host != NULL ? pt__cc_host_get(cc, w->host) : NULL;
        cc_own *o;

        if (h == NULL || !w->has_serial || own_find(cc, w->serial) != NULL ||
            (o = own_new(cc, w->serial, h)) == NULL) {
            snprintf(err, errlen, "an owned lock with no host, no serial, twice, or no memory");
            return -1;
        }
        o->wanted = w->wanted;
    }
    return 0;
}

static int held_in(pt_ccore *cc, const copy_msg *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->n_held; i++) {
        const Pythread__ClusterHeld *w = m->held[i];
        cc_host *h = w->host != NULL ? pt__cc_host_find(cc, w->host) : NULL;
        cc_sess *x = h != NULL ? pt__cc_sess_find(h, w->conn) : NULL;

        if (x == NULL || x->held || w->n_deadlines != w->n_entries) {
            snprintf(err, errlen,
                     "a held session that is not a session, twice, or whose "
                     "entries and deadlines differ in number");
            return -1;
        }
        x->held = 1;
        x->held_on = w->serial;
        STAILQ_INIT(&x->kept);
        TAILQ_INSERT_TAIL(&cc->held, x, held_link);
        for (size_t k = 0; k < w->n_entries; k++) {
            const ProtobufCBinaryData *e = &w->entries[k];
            record *r = pythread__journal_record__unpack(NULL, e->len, e->data);
            cc_kept *kept = r != NULL ? kept_add(x, r, e->data, e->len, w->deadlines[k]) : NULL;

            if (r != NULL)
                pythread__journal_record__free_unpacked(r, NULL);
            if (kept == NULL) {
                snprintf(err, errlen, "a held session's entry that is not a record, or no memory");
                return -1;
            }
        }
    }
    return 0;
}

int pt__cc_own_in(pt_ccore *cc, const copy_msg *m, char *err, size_t errlen)
{
    return owned_in(cc, m, err, errlen) < 0 ? -1 : held_in(cc, m, err, errlen);
}
