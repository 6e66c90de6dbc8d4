/*
 * inspect.c - the public inspection API: status, list, show, sessions and
 * metrics and deadlocks.
 *
 * The reading thread hands each answer to a copy function here (the
 * decoded message lives only as long as the read), which turns it into the
 * plain structs of pythread_inspect.h; the caller's thread then walks them.
 * Lists are fetched a page at a time, following the daemon's cursor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* Entries asked per page; the daemon sends fewer when they do not fit. */
#define PAGE_ENTRIES 500u

static void text_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;

    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Names travel as bytes; the daemon only keeps valid (printable) ones. */
static void bytes_copy(char *dst, size_t cap, const ProtobufCBinaryData *b, int has)
{
    size_t n = has ? b->len : 0;

    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, b->data, n);
    dst[n] = '\0';
}

static void object_copy(pt_inspect_object *o, const Pythread__ObjectInfo *m)
{
    const Pythread__State *s = m->state;
    const Pythread__Counters *k = m->counters;

    memset(o, 0, sizeof(*o));
    bytes_copy(o->name, sizeof(o->name), &m->name, m->has_name);
    o->kind = (pt_kind)m->kind;
    o->mode = m->mode;
    o->uid = m->uid;
    o->gid = m->gid;
    o->transient = m->transient;
    o->unlinked = m->unlinked;
    o->refs = m->refs;
    o->waiters = m->waiters;
    o->owned = m->owned;
    bytes_copy(o->cond_lock, sizeof(o->cond_lock), &m->cond_lock, m->has_cond_lock);
    o->timeout = PT_FOREVER;
    /* A mark this library does not know yet tells nothing it can say. */
    o->restart = m->has_restart && m->restart < PT_RESTART_MARKS ? (pt_restart_mark)m->restart
                                                                 : PT_RESTART_NONE;
    o->deadlock = m->deadlock;
    /* The daemon leaves the state out for a caller who may not read it. */
    o->hidden = s == NULL;
    if (s) {
        o->locked = s->locked;
        o->value = s->value;
        o->initial = s->initial;
        o->is_set = s->is_set;
        o->parties = s->parties;
        o->n_waiting = s->n_waiting;
        o->broken = s->broken;
        o->timeout = s->timeout;
        o->token = s->token;
    }
    if (k) {
        o->acquires = k->acquires;
        o->contended = k->contended;
        o->handed = k->handed;
        o->timeouts = k->timeouts;
        o->longest_wait = k->longest_wait;
        o->longest_hold = k->longest_hold;
    }
}

static void party_copy(pt_inspect_party *p, const Pythread__PartyInfo *m)
{
    memset(p, 0, sizeof(*p));
    p->session = m->session;
    p->pid = m->pid;
    p->uid = m->uid;
    p->thread = m->thread;
    text_copy(p->process, sizeof(p->process), m->process);
    p->seconds = m->has_seconds ? m->seconds : -1;
    p->count = m->count;
    text_copy(p->what, sizeof(p->what), m->what);
    p->deadlock = m->deadlock;
    bytes_copy(p->waits, sizeof(p->waits), &m->waits, m->has_waits);
    p->waits_kind = (pt_kind)m->waits_kind;
    p->waits_owner = m->waits_owner;
    p->connection_kept = m->connection_kept;
    text_copy(p->host, sizeof(p->host), m->host);
}

/* ---- status --------------------------------------------------------- */

/* The cluster's hosts as one space-separated text (as many as fit). */
static void cluster_copy(pt_inspect_status *st, const Pythread__StatusInfo *s)
{
    size_t used = 0;

    text_copy(st->cluster_host, sizeof(st->cluster_host), s->cluster_host);
    text_copy(st->cluster_endpoints, sizeof(st->cluster_endpoints), s->cluster_endpoints);
    st->cluster_nmembers = (uint32_t)s->n_cluster_members;
    for (size_t i = 0; i < s->n_cluster_members; i++) {
        int n = snprintf(st->cluster_members + used, sizeof(st->cluster_members) - used, "%s%s",
                         used ? " " : "", s->cluster_members[i] ? s->cluster_members[i] : "");

        if (n < 0 || (size_t)n >= sizeof(st->cluster_members) - used) {
            st->cluster_members[used] = '\0';
            break;
        }
        used += (size_t)n;
    }
    st->cluster_lease = s->cluster_lease;
    st->cluster_lease_seconds = s->cluster_lease_seconds;
    st->cluster_owned = s->cluster_owned;
    st->cluster_ahead = s->cluster_ahead;
}

static void status_copy(void *arg, const Pythread__Response *m)
{
    pt_inspect_status *st = arg;
    const Pythread__StatusInfo *s = m->inspect ? m->inspect->status_info : NULL;

    if (!s)
        return;
    text_copy(st->version, sizeof(st->version), s->version);
    st->pid = s->pid;
    st->protocol = s->protocol;
    st->uptime = s->uptime;
    st->started = s->started;
    text_copy(st->socket, sizeof(st->socket), s->socket);
    st->sessions = s->sessions;
    st->objects = s->objects;
    for (size_t i = 0; i < s->n_objects_by_kind && i < 8; i++)
        st->objects_by_kind[i] = s->objects_by_kind[i];
    st->waiters = s->waiters;
    st->operations = s->operations;
    text_copy(st->state_dir, sizeof(st->state_dir), s->state_dir);
    st->state_sync = s->state_sync;
    st->restored_objects = s->restored_objects;
    st->replayed_inputs = s->replayed_inputs;
    st->torn_bytes = s->torn_bytes;
    st->journal_bytes = s->journal_bytes;
    st->grace_ms = s->grace_ms;
    st->in_grace = s->in_grace;
    st->restored_sessions = s->restored_sessions;
    st->sessions_taken_up = s->sessions_taken_up;
    st->sessions_ended_gone = s->sessions_ended_gone;
    st->sessions_ended_late = s->sessions_ended_late;
    st->sessions_ended_empty = s->sessions_ended_empty;
    st->restarted_at = s->restarted_at;
    st->grace_seconds = s->grace_seconds;
    text_copy(st->metrics_address, sizeof(st->metrics_address), s->metrics_address);
    for (size_t i = 0; i < s->n_objects_by_restart && i < PT_RESTART_MARKS; i++)
        st->objects_by_restart[i] = s->objects_by_restart[i];
    st->deadlocks_found = s->deadlocks_found;
    st->deadlocks_standing = s->deadlocks_standing;
    st->sessions_kept_connection = s->sessions_kept_connection;
    cluster_copy(st, s);
    if (s->limits) {
        st->max_frame = s->limits->max_frame;
        st->max_sessions = s->limits->max_sessions;
        st->max_objects = s->limits->max_objects;
        st->max_handles_per_session = s->limits->max_handles_per_session;
        st->max_waiters_per_session = s->limits->max_waiters_per_session;
        st->max_objects_per_uid = s->limits->max_objects_per_uid;
        st->max_sessions_per_uid = s->limits->max_sessions_per_uid;
        st->max_handles_per_uid = s->limits->max_handles_per_uid;
        st->max_waiters_per_uid = s->limits->max_waiters_per_uid;
        st->max_output = s->limits->max_output;
        st->max_output_per_uid = s->limits->max_output_per_uid;
        st->max_input_per_uid = s->limits->max_input_per_uid;
    }
}

int pt_inspect_status_get(pt_client *c, pt_inspect_status *out)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt__reply rep;

    if (!c || !out)
        return pt__error(PT_EINVAL, "pt_inspect_status_get: pass a client and a result");
    memset(out, 0, sizeof(*out));
    req.op = PYTHREAD__OP__OP_STATUS;
    return pt__client_call_extra(c, &req, &rep, status_copy, out);
}

/* ---- paged lists ---------------------------------------------------- */

/* One page as the reading thread copied it. */
typedef struct page {
    void *v; /* pt_inspect_object[] or pt_inspect_session[] */
    size_t n;
    uint64_t next;
    int nomem;
} page;

static void objects_copy(void *arg, const Pythread__Response *r)
{
    const Pythread__Inspection *m = r->inspect;
    page *p = arg;
    pt_inspect_object *v;

    if (!m)
        return;
    p->next = m->next_cursor;
    if (m->n_objects == 0)
        return;
    v = malloc(m->n_objects * sizeof(*v));
    if (!v) {
        p->nomem = 1;
        return;
    }
    for (size_t i = 0; i < m->n_objects; i++)
        object_copy(&v[i], m->objects[i]);
    p->v = v;
    p->n = m->n_objects;
}

static void sessions_copy(void *arg, const Pythread__Response *r)
{
    const Pythread__Inspection *m = r->inspect;
    page *p = arg;
    pt_inspect_session *v;

    if (!m)
        return;
    p->next = m->next_cursor;
    if (m->n_sessions == 0)
        return;
    v = malloc(m->n_sessions * sizeof(*v));
    if (!v) {
        p->nomem = 1;
        return;
    }
    for (size_t i = 0; i < m->n_sessions; i++) {
        const Pythread__SessionInfo *s = m->sessions[i];

        memset(&v[i], 0, sizeof(v[i]));
        v[i].id = s->id;
        v[i].pid = s->pid;
        v[i].uid = s->uid;
        v[i].gid = s->gid;
        text_copy(v[i].process, sizeof(v[i].process), s->process);
        v[i].since = s->since;
        v[i].handles = s->handles;
        v[i].held = s->held;
        v[i].waiting = s->waiting;
        v[i].requests = s->requests;
        v[i].resumed = s->resumed;
        v[i].connection_kept = s->connection_kept;
    }
    p->v = v;
    p->n = m->n_sessions;
}

/* Fetch pages of op (req->page set) until the cursor comes back 0, calling
 * each(arg, entry) for every entry; a non-zero result of each stops the
 * walk. */
static int walk(pt_client *c, Pythread__Request *req,
                void (*copy)(void *, const Pythread__Response *), size_t size,
                int (*each)(void *fn, void *arg, const void *entry), void *fn, void *arg,
                const char *what)
{
    uint64_t cursor = 0;

    do {
        page p = {0};
        pt__reply rep;
        int r;

        req->page->has_cursor = 1;
        req->page->cursor = cursor;
        req->page->has_max_entries = 1;
        req->page->max_entries = PAGE_ENTRIES;
        r = pt__client_call_extra(c, req, &rep, copy, &p);
        if (r == 0 && p.nomem)
            r = pt__error(PT_ENOMEM, "%s: cannot allocate a page of the answer", what);
        for (size_t i = 0; r == 0 && i < p.n; i++)
            r = each(fn, arg, (const char *)p.v + i * size);
        free(p.v);
        if (r != 0)
            return r;
        /* A cursor that does not move would loop forever. */
        if (p.next != 0 && p.next <= cursor)
            return pt__error(PT_EPROTO, "%s: pythreadd's cursor went back", what);
        cursor = p.next;
    } while (cursor != 0);
    return 0;
}

static int each_object(void *fn, void *arg, const void *entry)
{
    pt_inspect_object_fn f;

    memcpy(&f, fn, sizeof(f));
    return f(arg, entry);
}

static int each_session(void *fn, void *arg, const void *entry)
{
    pt_inspect_session_fn f;

    memcpy(&f, fn, sizeof(f));
    return f(arg, entry);
}

static int list_in(pt_client *c, int cluster, const char *glob, int kind, pt_inspect_object_fn fn,
                   void *arg)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__PageArgs args = PYTHREAD__PAGE_ARGS__INIT;

    if (!c || !fn)
        return pt__error(PT_EINVAL, "pt_inspect_list: pass a client and a function");
    if (kind < 0 || kind > PT_KIND_BARRIER)
        return pt__error(PT_EINVAL, "pt_inspect_list: unknown kind %d; pass 0 or a PT_KIND_*",
                         kind);
    if (glob && strlen(glob) > PT_WIRE_GLOB_MAX)
        return pt__error(PT_EINVAL, "pt_inspect_list: the pattern is longer than %u bytes",
                         PT_WIRE_GLOB_MAX);
    req.op = PYTHREAD__OP__OP_LIST;
    req.has_cluster = req.cluster = cluster != 0;
    req.page = &args;
    args.glob = (char *)glob;
    args.has_kind = kind != 0;
    args.kind = kind;
    return walk(c, &req, objects_copy, sizeof(pt_inspect_object), each_object, &fn, arg, "list");
}

int pt_inspect_list(pt_client *c, const char *glob, int kind, pt_inspect_object_fn fn, void *arg)
{
    return list_in(c, 0, glob, kind, fn, arg);
}

int pt_inspect_cluster_list(pt_client *c, const char *glob, int kind, pt_inspect_object_fn fn,
                            void *arg)
{
    return list_in(c, 1, glob, kind, fn, arg);
}

int pt_inspect_sessions(pt_client *c, pt_inspect_session_fn fn, void *arg)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__PageArgs args = PYTHREAD__PAGE_ARGS__INIT;

    if (!c || !fn)
        return pt__error(PT_EINVAL, "pt_inspect_sessions: pass a client and a function");
    req.op = PYTHREAD__OP__OP_SESSIONS;
    req.page = &args;
    return walk(c, &req, sessions_copy, sizeof(pt_inspect_session), each_session, &fn, arg,
                "sessions");
}

/* ---- show ----------------------------------------------------------- */

/* The reading thread's side of show. */
typedef struct show_answer {
    pt_inspect_detail *d;
    int got_object;
    int nomem;
} show_answer;

static void detail_copy(void *arg, const Pythread__Response *r)
{
    const Pythread__Inspection *m = r->inspect;
    show_answer *a = arg;
    pt_inspect_detail *d = a->d;

    if (!m || m->n_objects < 1)
        return;
    a->got_object = 1;
    object_copy(&d->object, m->objects[0]);
    d->detail_denied = m->detail_denied;
    d->more_waiters = m->more_waiters;
    d->holders = m->n_holders ? calloc(m->n_holders, sizeof(*d->holders)) : NULL;
    d->waiters = m->n_waiters ? calloc(m->n_waiters, sizeof(*d->waiters)) : NULL;
    if ((m->n_holders && !d->holders) || (m->n_waiters && !d->waiters)) {
        a->nomem = 1;
        return;
    }
    for (size_t i = 0; i < m->n_holders; i++)
        party_copy(&d->holders[i], m->holders[i]);
    for (size_t i = 0; i < m->n_waiters; i++)
        party_copy(&d->waiters[i], m->waiters[i]);
    d->n_holders = m->n_holders;
    d->n_waiters = m->n_waiters;
}

void pt_inspect_detail_free(pt_inspect_detail *d)
{
    if (!d)
        return;
    free(d->holders);
    free(d->waiters);
    free(d);
}

static int show_in(pt_client *c, int cluster, const char *name, pt_inspect_detail **out)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    pt_inspect_detail *d;
    show_answer a = {0};
    pt__reply rep;
    size_t len;
    int r;

    if (!c || !name || !out)
        return pt__error(PT_EINVAL, "pt_inspect_show: pass a client, a name and a result");
    *out = NULL;
    len = strlen(name);
    if (len == 0 || len > PT_WIRE_NAME_MAX)
        return pt__error(PT_ENAME, "show: a name is 1-%u bytes", PT_WIRE_NAME_MAX);
    if (!(d = calloc(1, sizeof(*d))))
        return pt__error(PT_ENOMEM, "show: out of memory");
    req.op = PYTHREAD__OP__OP_SHOW;
    req.has_cluster = req.cluster = cluster != 0;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = len;
    a.d = d;
    r = pt__client_call_extra(c, &req, &rep, detail_copy, &a);
    if (r == 0 && !a.got_object)
        r = pt__error(PT_EPROTO, "show '%s': pythreadd answered without the object", name);
    if (r == 0 && a.nomem)
        r = pt__error(PT_ENOMEM, "show '%s': out of memory", name);
    if (r != 0) {
        pt_inspect_detail_free(d);
        return r;
    }
    *out = d;
    return 0;
}

int pt_inspect_show(pt_client *c, const char *name, pt_inspect_detail **out)
{
    return show_in(c, 0, name, out);
}

int pt_inspect_cluster_show(pt_client *c, const char *name, pt_inspect_detail **out)
{
    return show_in(c, 1, name, out);
}

/* ---- metrics -------------------------------------------------------- */

/* The most text taken from a daemon: far above what it writes (its
 * objects' series are bounded), so only a broken daemon meets it. */
#define METRICS_MAX (256u << 20)

/* The text so far, as the reading thread adds pieces to it. */
typedef struct metrics_text {
    char *v;
    size_t len;
    uint64_t next;
    int nomem, toolong;
} metrics_text;

static void metrics_copy(void *arg, const Pythread__Response *r)
{
    const Pythread__Inspection *m = r->inspect;
    metrics_text *t = arg;
    char *grown;

    if (!m || !m->has_metrics)
        return;
    t->next = m->next_cursor;
    if (m->metrics.len > METRICS_MAX - t->len) {
        t->toolong = 1;
        return;
    }
    grown = realloc(t->v, t->len + m->metrics.len + 1);
    if (!grown) {
        t->nomem = 1;
        return;
    }
    memcpy(grown + t->len, m->metrics.data, m->metrics.len);
    t->v = grown;
    t->len += m->metrics.len;
    t->v[t->len] = '\0';
}

/* One piece, the one at the cursor so far. */
static int metrics_piece(pt_client *c, metrics_text *t)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__PageArgs args = PYTHREAD__PAGE_ARGS__INIT;
    uint64_t at = t->len;
    pt__reply rep;
    int r;

    req.op = PYTHREAD__OP__OP_METRICS;
    req.page = &args;
    args.has_cursor = 1;
    args.cursor = at;
    t->next = 0;
    r = pt__client_call_extra(c, &req, &rep, metrics_copy, t);
    if (r == 0 && t->nomem)
        return pt__error(PT_ENOMEM, "metrics: out of memory for the text");
    if (r == 0 && t->toolong)
        return pt__error(PT_EPROTO, "metrics: pythreadd sent more than %u bytes", METRICS_MAX);
    if (r == 0 && t->len == at)
        return pt__error(PT_EPROTO, "metrics: pythreadd answered without the text");
    /* Every piece starts where the last one ended. */
    if (r == 0 && t->next != 0 && t->next != t->len)
        return pt__error(PT_EPROTO, "metrics: pythreadd's cursor does not follow the text");
    return r;
}

int pt_inspect_metrics(pt_client *c, char **text, size_t *len)
{
    metrics_text t = {0};
    int r;

    if (!c || !text)
        return pt__error(PT_EINVAL, "pt_inspect_metrics: pass a client and a result");
    *text = NULL;
    do {
        r = metrics_piece(c, &t);
    } while (r == 0 && t.next != 0);
    if (r != 0) {
        free(t.v);
        return r;
    }
    *text = t.v;
    if (len)
        *len = t.len;
    return 0;
}

/* ---- deadlocks ------------------------------------------------------ */

/* The reading thread's copy: every deadlock and its members, in one block
 * each. */
typedef struct deadlocks_answer {
    pt_inspect_deadlock *v;
    size_t n;
    uint64_t found;
    uint32_t more;
    int nomem;
} deadlocks_answer;

static void member_copy(pt_inspect_deadlock_member *o, const Pythread__DeadlockMember *m)
{
    memset(o, 0, sizeof(*o));
    o->session = m->session;
    o->pid = m->pid;
    o->uid = m->uid;
    o->thread = m->thread;
    text_copy(o->process, sizeof(o->process), m->process);
    o->request = m->request;
    o->waits_kind = (pt_kind)m->waits_kind;
    bytes_copy(o->waits, sizeof(o->waits), &m->waits, m->has_waits);
    bytes_copy(o->via, sizeof(o->via), &m->via, m->has_via);
    o->reacquire = m->reacquire;
    o->hidden = m->hidden;
}

static int deadlock_copy(pt_inspect_deadlock *o, const Pythread__DeadlockInfo *m)
{
    memset(o, 0, sizeof(*o));
    o->id = m->id;
    /* A state this library does not know yet is shown as broken: over. */
    o->state = m->state >= 0 && m->state <= PT_DEADLOCK_BROKEN ? (pt_deadlock_state)m->state
                                                               : PT_DEADLOCK_BROKEN;
    o->found = m->found;
    o->ended = m->ended;
    o->size = m->size;
    o->broke = m->broke;
    o->released = m->released;
    o->members = m->n_members ? calloc(m->n_members, sizeof(*o->members)) : NULL;
    if (m->n_members && !o->members)
        return -1;
    for (size_t i = 0; i < m->n_members; i++)
        member_copy(&o->members[i], m->members[i]);
    o->n_members = m->n_members;
    return 0;
}

static void deadlocks_copy(void *arg, const Pythread__Response *r)
{
    const Pythread__Inspection *m = r->inspect;
    deadlocks_answer *a = arg;

    if (!m)
        return;
    a->found = m->deadlocks_found;
    a->more = m->more_deadlocks;
    if (m->n_deadlocks == 0)
        return;
    if (!(a->v = calloc(m->n_deadlocks, sizeof(*a->v)))) {
        a->nomem = 1;
        return;
    }
    for (size_t i = 0; i < m->n_deadlocks; i++) {
        if (deadlock_copy(&a->v[i], m->deadlocks[i]) < 0) {
            a->nomem = 1;
            break;
        }
        a->n = i + 1;
    }
}

int pt_inspect_deadlocks(pt_client *c, pt_inspect_deadlock_fn fn, void *arg, uint64_t *found,
                         uint32_t *more)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    deadlocks_answer a = {0};
    pt__reply rep;
    int r;

    if (!c || !fn)
        return pt__error(PT_EINVAL, "pt_inspect_deadlocks: pass a client and a function");
    req.op = PYTHREAD__OP__OP_DEADLOCKS;
    r = pt__client_call_extra(c, &req, &rep, deadlocks_copy, &a);
    if (r == 0 && a.nomem)
        r = pt__error(PT_ENOMEM, "deadlocks: cannot allocate the answer");
    if (r == 0 && found)
        *found = a.found;
    if (r == 0 && more)
        *more = a.more;
    for (size_t i = 0; r == 0 && i < a.n; i++)
        r = fn(arg, &a.v[i]);
    for (size_t i = 0; i < a.n; i++)
        free(a.v[i].members);
    free(a.v);
    return r;
}
