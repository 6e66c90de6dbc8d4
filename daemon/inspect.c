/*
 * inspect.c - the inspection requests pythreadctl sends: STATUS, LIST,
 * SHOW, SESSIONS, METRICS and DEADLOCKS.
 *
 * Answers are built in the decode arena (reset after every request), so an
 * inspection allocates nothing of its own, and each answer is cut to fit one
 * frame: LIST and SESSIONS return a page and the cursor of the next one,
 * SHOW says how many waiters it left out. The core gives the object facts;
 * the daemon joins in what only it knows (process names, connection times).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "cluster_core.h"
#include "daemon.h"

/* Room kept in a frame for the response's own fields. */
#define FRAME_SLACK 256u
/* Page size when the client does not ask for one. */
#define PAGE_DEFAULT 1000u
#define PAGE_MAX     10000u

void pt_inspect_start(pt_daemon *d)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    d->started = pt_daemon_now();
    d->started_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *arena_alloc(pt_daemon *d, size_t size)
{
    void *p = d->arena.allocator.alloc(d->arena.allocator.allocator_data, size);

    if (p != NULL)
        memset(p, 0, size);
    return p;
}

static double ns_to_sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Wall-clock time of a moment on the daemon's monotonic clock. */
static double wall_of(uint64_t mono, uint64_t now)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - ns_to_sec(now - mono);
}

/* Size an embedded message adds to its parent: tag, length, body. */
static size_t field_size(size_t body)
{
    size_t n = 2;

    for (size_t v = body; v >= 0x80; v >>= 7)
        n++;
    return n + body;
}

static uint32_t frame_budget(const pt_daemon *d)
{
    return d->max_frame > FRAME_SLACK * 2 ? d->max_frame - FRAME_SLACK : d->max_frame / 2;
}

/* A LIST or SESSIONS page is cut at one turn's worth of answer bytes too:
 * the client asks for the next page anyway, and a peer asking for pages
 * back to back then costs everyone else no more than any other turn. */
static uint32_t page_budget(const pt_daemon *d)
{
    uint32_t fb = frame_budget(d);

    return fb < PT_TURN_BYTES - FRAME_SLACK ? fb : PT_TURN_BYTES - FRAME_SLACK;
}

/* Every inspection answer: the request's id and what was gathered. */
static void inspect_send(pt_conn *c, const Pythread__Request *req, Pythread__Inspection *in)
{
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;

    r.id = req->id;
    r.inspect = in;
    pt_conn_send(c, &r);
}

/* ---- STATUS ------------------------------------------------------------ */

static char *socket_name(pt_daemon *d)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    char *out = arena_alloc(d, sizeof(sun.sun_path) + 1);
    int fd = d->listener ? (int)evconnlistener_get_fd(d->listener) : -1;

    if (out == NULL)
        return NULL;
    memset(&sun, 0, sizeof(sun));
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&sun, &len) == 0 && sun.sun_family == AF_UNIX)
        snprintf(out, sizeof(sun.sun_path) + 1, "%.*s", (int)sizeof(sun.sun_path), sun.sun_path);
    return out;
}

static void do_status(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    Pythread__StatusInfo st = PYTHREAD__STATUS_INFO__INIT;
    Pythread__LimitsInfo lim = PYTHREAD__LIMITS_INFO__INIT;
    uint64_t by_kind[PT_KIND_BARRIER + 1], by_restart[PT_RESTART_MARKS];
    char *members[256]; /* more hosts than that are counted, not named */
    pt_core_stats stats;
    pt_core_limits cl;

    pt_core_get_stats(d->core, &stats);
    pt_core_objects_by_kind(d->core, by_kind);
    pt_core_get_limits(d->core, &cl);
    st.version = PT_VERSION_STRING;
    st.has_pid = 1;
    st.pid = (int32_t)getpid();
    st.has_uptime = 1;
    st.uptime = ns_to_sec(now - d->started);
    st.has_started = 1;
    st.started = d->started_wall;
    st.socket = socket_name(d);
    st.has_sessions = 1;
    st.sessions = stats.sessions;
    st.has_objects = 1;
    st.objects = stats.objects;
    st.n_objects_by_kind = PT_KIND_BARRIER + 1;
    st.objects_by_kind = by_kind;
    st.has_waiters = 1;
    st.waiters = stats.waiters;
    st.has_operations = 1;
    st.operations = d->requests;
    st.has_protocol = 1;
    st.protocol = PT_PROTOCOL_VERSION;
    st.has_deadlocks_found = st.has_deadlocks_standing = 1;
    st.deadlocks_found = stats.deadlocks;
    st.deadlocks_standing = stats.deadlocks_standing;
    lim.has_max_frame = lim.has_max_sessions = lim.has_max_objects = 1;
    lim.has_max_handles_per_session = lim.has_max_waiters_per_session = 1;
    lim.max_frame = d->max_frame;
    lim.max_sessions = d->max_sessions;
    lim.max_objects = cl.max_objects;
    lim.max_handles_per_session = cl.max_handles_per_session;
    lim.max_waiters_per_session = cl.max_waiters_per_session;
    lim.has_max_objects_per_uid = lim.has_max_sessions_per_uid = 1;
    lim.has_max_handles_per_uid = lim.has_max_waiters_per_uid = 1;
    lim.has_max_output = lim.has_max_output_per_uid = lim.has_max_input_per_uid = 1;
    lim.max_objects_per_uid = cl.max_objects_per_uid;
    lim.max_sessions_per_uid = d->max_sessions_per_uid;
    lim.max_handles_per_uid = cl.max_handles_per_uid;
    lim.max_waiters_per_uid = cl.max_waiters_per_uid;
    lim.max_output = d->max_output;
    lim.max_output_per_uid = d->max_output_per_uid;
    lim.max_input_per_uid = d->max_input_per_uid;
    st.limits = &lim;
    pt_state_status(d, &st);
    if (d->metrics_http != NULL)
        st.metrics_address = d->metrics_address;
    if (d->resume != NULL) { /* this start restored something */
        pt_core_objects_by_restart(d->core, by_restart);
        st.n_objects_by_restart = PT_RESTART_MARKS;
        st.objects_by_restart = by_restart;
    }
    pt_cluster_status(d, &st, members, sizeof(members) / sizeof(members[0]));
    in.status_info = &st;
    inspect_send(c, req, &in);
}

/* ---- LIST -------------------------------------------------------------- */

typedef struct list_ctx {
    pt_daemon *d;
    const char *glob;
    int kind;
    uint32_t max;
    size_t budget;
    size_t used;
    size_t n;
    Pythread__ObjectInfo **v;
    uint64_t last;
    int more;
} list_ctx;

/* Fills info from d with arena memory for its submessages; NULL when the
 * arena is spent. */
static Pythread__ObjectInfo *object_info(pt_daemon *d, const pt_core_object_detail *det,
                                         int counters)
{
    Pythread__ObjectInfo *o = arena_alloc(d, sizeof(*o));
    Pythread__State *s = det->hidden ? NULL : arena_alloc(d, sizeof(*s));
    Pythread__Counters *k = counters && !det->hidden ? arena_alloc(d, sizeof(*k)) : NULL;
    const pt_state *st = &det->info.state;

    if (o == NULL || (!det->hidden && (s == NULL || (counters && k == NULL))))
        return NULL;
    pythread__object_info__init(o);
    o->has_name = 1;
    o->name.data = (uint8_t *)det->info.name;
    o->name.len = det->info.name_len;
    o->has_kind = o->has_mode = o->has_uid = o->has_gid = 1;
    o->kind = det->info.kind;
    o->mode = det->info.mode;
    o->uid = (uint32_t)det->info.uid;
    o->gid = (uint32_t)det->info.gid;
    o->has_transient = o->transient = det->info.transient != 0;
    o->has_unlinked = o->unlinked = det->info.unlinked != 0;
    o->has_refs = !det->hidden;
    o->refs = det->info.refs;
    o->has_owned = o->owned = det->owned != 0;
    if (det->cond_lock != NULL) {
        o->has_cond_lock = 1;
        o->cond_lock.data = (uint8_t *)det->cond_lock;
        o->cond_lock.len = det->cond_lock_len;
    }
    o->has_waiters = !det->hidden;
    o->waiters = det->waiters;
    o->has_cursor = 1;
    o->cursor = det->serial;
    o->has_restart = !det->hidden;
    o->restart = (uint32_t)det->restart;
    o->has_deadlock = det->deadlock != 0;
    o->deadlock = det->deadlock;
    /* Without read permission: no state, counters or waiters at all. */
    if (det->hidden)
        return o;
    pythread__state__init(s);
    s->has_kind = 1;
    s->kind = st->kind;
    s->has_locked = s->locked = st->locked != 0;
    s->has_value = s->has_initial = 1;
    s->value = st->value;
    s->initial = st->initial;
    s->has_is_set = s->is_set = st->is_set != 0;
    s->has_parties = s->has_n_waiting = 1;
    s->parties = st->parties;
    s->n_waiting = st->n_waiting;
    s->has_broken = s->broken = st->broken != 0;
    s->has_timeout = 1;
    s->timeout = st->timeout;
    s->has_token = 1;
    s->token = st->token;
    o->state = s;
    if (k != NULL) {
        pythread__counters__init(k);
        k->has_acquires = k->has_contended = k->has_handed = k->has_timeouts = 1;
        k->has_longest_wait = k->has_longest_hold = 1;
        k->acquires = det->counters.acquires;
        k->contended = det->counters.contended;
        k->handed = det->counters.handed;
        k->timeouts = det->counters.timeouts;
        k->longest_wait = ns_to_sec(det->counters.longest_wait);
        k->longest_hold = ns_to_sec(det->counters.longest_hold);
        o->counters = k;
    }
    return o;
}

static int list_one(void *arg, const pt_core_object_detail *det)
{
    list_ctx *x = arg;
    Pythread__ObjectInfo *o;
    char name[PT_NAME_MAX + 1];
    size_t size;

    if (x->kind != 0 && det->info.kind != x->kind)
        return 0;
    if (x->glob != NULL) {
        memcpy(name, det->info.name, det->info.name_len);
        name[det->info.name_len] = '\0';
        if (fnmatch(x->glob, name, 0) != 0)
            return 0;
    }
    if (x->n == x->max) {
        x->more = 1;
        return 1;
    }
    o = object_info(x->d, det, 1); /* counters too: pythreadctl top rates them */
    size = o ? field_size(pythread__object_info__get_packed_size(o)) : 0;
    if (o == NULL || x->used + size > x->budget) {
        x->more = 1;
        return 1;
    }
    x->used += size;
    x->v[x->n++] = o;
    x->last = det->serial;
    return 0;
}

static uint32_t page_size(const Pythread__PageArgs *page)
{
    uint32_t n = page->max_entries ? page->max_entries : PAGE_DEFAULT;

    return n > PAGE_MAX ? PAGE_MAX : n;
}

/* The core a LIST or SHOW looks at: the host's, or with req->cluster the
 * cluster's copy (and its time in *now). NULL after telling c why not. */
static pt_core *core_asked(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t *now)
{
    pt_core *core;

    if (!req->cluster)
        return d->core;
    core = pt_cluster_core(d, now);
    if (core == NULL)
        pt_conn_send_error(c, req->id, PT_ERUNTIME,
                           "the cluster's objects: this pythreadd is in no cluster (started "
                           "without --etcd); see pythreadd(8)");
    return core;
}

static void do_list(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    const Pythread__PageArgs *page = pt_wire_page_args(req);
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    list_ctx x = {
        .d = d,
        .glob = page->glob && *page->glob ? page->glob : NULL,
        .kind = page->kind,
        .max = page_size(page),
        .budget = page_budget(d),
    };

    pt_core *core = core_asked(d, c, req, &now);

    if (core == NULL)
        return;
    x.v = arena_alloc(d, x.max * sizeof(*x.v));
    if (x.v == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM,
                           "list: out of memory in the daemon; ask a smaller page");
        return;
    }
    /* the asker's own credentials decide what it may read, in either core */
    pt_core_inspect_objects(core, c->session, page->cursor, now, list_one, &x);
    if (x.more && x.n == 0) {
        pt_conn_send_error(
            c, req->id, PT_ELIMIT,
            "list: one entry does not fit the frame limit; raise pythreadd --max-frame");
        return;
    }
    in.n_objects = x.n;
    in.objects = x.v;
    if (x.more) {
        in.has_next_cursor = 1;
        in.next_cursor = x.last;
    }
    inspect_send(c, req, &in);
}

/* ---- SHOW -------------------------------------------------------------- */

typedef struct show_ctx {
    pt_daemon *d;
    uint64_t now;
    size_t budget;
    size_t used;
    size_t nh, nw, cap;
    Pythread__PartyInfo **holders;
    Pythread__PartyInfo **waiters;
    uint32_t left_out;
    int cluster; /* the parties are the cluster copy's sessions */
} show_ctx;

static const char *role_word(pt_party_role role)
{
    static const char *const words[] = {
        [PT_PARTY_HOLDER] = "hold",         [PT_PARTY_ACQUIRE] = "acquire",
        [PT_PARTY_REACQUIRE] = "reacquire", [PT_PARTY_WAIT] = "wait",
        [PT_PARTY_BARRIER] = "barrier",
    };

    return (size_t)role < sizeof(words) / sizeof(words[0]) ? words[role] : "wait";
}

static void show_party(void *arg, const pt_core_party *p)
{
    show_ctx *x = arg;
    int holder = p->role == PT_PARTY_HOLDER;
    Pythread__PartyInfo *o;
    const pt_conn *c;
    size_t size;

    if (x->left_out > 0 || (x->nh + x->nw) == x->cap ||
        (o = arena_alloc(x->d, sizeof(*o))) == NULL) {
        x->left_out++;
        return;
    }
    pythread__party_info__init(o);
    c = p->session && !x->cluster ? pt_core_session_udata(p->session) : NULL;
    if (p->session && x->cluster)
        o->host = (char *)pt_ccore_session_host(p->session);
    if (p->session != NULL) {
        const pt_peer *peer = pt_core_session_peer(p->session);

        o->has_session = o->has_pid = o->has_uid = 1;
        o->session = pt_core_session_id(p->session);
        o->pid = (int32_t)peer->pid;
        o->uid = (uint32_t)peer->uid;
    }
    if (p->thread != 0) {
        o->has_thread = 1;
        o->thread = p->thread;
    }
    o->process = c != NULL ? (char *)c->client_name : "";
    o->has_connection_kept = o->connection_kept = c != NULL && c->kept;
    if (p->since != 0 && x->now >= p->since) {
        o->has_seconds = 1;
        o->seconds = ns_to_sec(x->now - p->since);
    }
    o->has_count = p->count != 0;
    o->count = p->count;
    o->what = (char *)role_word(p->role);
    o->has_deadlock = p->deadlock != 0;
    o->deadlock = p->deadlock;
    if (p->waits != NULL) {
        o->has_waits = o->has_waits_kind = o->has_waits_owner = 1;
        o->waits.data = (uint8_t *)p->waits;
        o->waits.len = p->waits_len;
        o->waits_kind = p->waits_kind;
        o->waits_owner = p->waits_owner != 0;
    }
    size = field_size(pythread__party_info__get_packed_size(o));
    if (x->used + size > x->budget) {
        x->left_out++;
        return;
    }
    x->used += size;
    if (holder)
        x->holders[x->nh++] = o;
    else
        x->waiters[x->nw++] = o;
}

static void do_show(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    Pythread__ObjectInfo *info;
    pt_core_object_detail det;
    char msg[PT_NAME_MAX + 160];
    size_t len = req->has_name ? req->name.len : 0;
    /* The object itself takes well under 1 KiB (names of 255 bytes). */
    size_t fb = frame_budget(d);
    show_ctx x = {.d = d, .now = now, .cap = 4096, .budget = fb > 2048 ? fb - 1024 : fb / 2};
    pt_core *core = core_asked(d, c, req, &now);
    int err;

    if (core == NULL)
        return;
    x.now = now;
    x.cluster = core != d->core;
    x.holders = arena_alloc(d, x.cap * sizeof(*x.holders));
    x.waiters = arena_alloc(d, x.cap * sizeof(*x.waiters));
    if (x.holders == NULL || x.waiters == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM, "show: out of memory in the daemon");
        return;
    }
    err = pt_core_inspect_object(core, c->session, (const char *)req->name.data, len, now, &det,
                                 show_party, &x);
    if (err == PT_ENAME || err == PT_ENOENT) {
        snprintf(msg, sizeof(msg),
                 err == PT_ENAME ? "show: invalid name '%.*s': a name is 1-255 bytes of A-Z a-z "
                                   "0-9 . _ : / -"
                                 : "show: no object named '%.*s'; see the names with "
                                   "pythreadctl list%s",
                 (int)(len > PT_NAME_MAX ? PT_NAME_MAX : len),
                 len ? (const char *)req->name.data : "", x.cluster ? " --cluster" : "");
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        pt_conn_send_error(c, req->id, err, msg);
        return;
    }
    info = object_info(d, &det, 1);
    if (info == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM, "show: out of memory in the daemon");
        return;
    }
    in.n_objects = 1;
    in.objects = &info;
    in.n_holders = x.nh;
    in.holders = x.holders;
    in.n_waiters = x.nw;
    in.waiters = x.waiters;
    if (x.left_out > 0) {
        in.has_more_waiters = 1;
        in.more_waiters = x.left_out;
    }
    if (err == PT_EPERM)
        in.has_detail_denied = in.detail_denied = 1;
    inspect_send(c, req, &in);
}

/* ---- DEADLOCKS --------------------------------------------------------- */

typedef struct dl_ctx {
    pt_daemon *d;
    const pt_peer *asker;
    uint64_t now;
    size_t budget, used, n, cap;
    Pythread__DeadlockInfo **v;
    uint32_t left_out;
    pt_dl_record rec; /* a standing one, as a kept one is */
} dl_ctx;

static char *arena_text(pt_daemon *d, const char *s)
{
    size_t len = strlen(s);
    char *out = arena_alloc(d, len + 1);

    if (out != NULL)
        memcpy(out, s, len + 1);
    return out;
}

/* The member's holds and waits are the objects it waits for and its
 * predecessor waits for: both must be readable by the asker's uid, as a
 * holder or waiter is in show. */
static int member_readable(const dl_ctx *x, const pt_dl_record *r, size_t i)
{
    size_t h = (i + r->n - 1) % r->n;
    const pt_dl_member *m = &r->members[i];
    int ok = pt_core_access(x->asker, m->obj_uid, m->obj_gid, m->obj_mode, PT_ACCESS_READ) == 0;

    if (ok && h < r->nmembers)
        ok = pt_core_access(x->asker, r->members[h].obj_uid, r->members[h].obj_gid,
                            r->members[h].obj_mode, PT_ACCESS_READ) == 0;
    return ok;
}

static int member_fill(dl_ctx *x, const pt_dl_record *r, size_t i, Pythread__DeadlockMember *o)
{
    const pt_dl_member *m = &r->members[i];
    char *waits = arena_text(x->d, m->waits), *via = arena_text(x->d, m->via);

    pythread__deadlock_member__init(o);
    if (waits == NULL || via == NULL)
        return -1;
    o->has_waits_kind = o->has_waits = 1;
    o->waits_kind = m->waits_kind;
    o->waits.data = (uint8_t *)waits;
    o->waits.len = strlen(waits);
    o->has_via = via[0] != '\0';
    o->via.data = (uint8_t *)via;
    o->via.len = strlen(via);
    o->has_reacquire = o->reacquire = m->reacquire != 0;
    if (!member_readable(x, r, i)) {
        o->has_hidden = o->hidden = 1;
        return 0;
    }
    o->has_session = o->has_pid = o->has_uid = o->has_thread = o->has_request = 1;
    o->session = m->session;
    o->pid = (int32_t)m->pid;
    o->uid = (uint32_t)m->uid;
    o->thread = m->thread;
    o->request = m->request;
    o->process = arena_text(x->d, m->process);
    return o->process ? 0 : -1;
}

static Pythread__DeadlockInfo *deadlock_info(dl_ctx *x, const pt_dl_record *r)
{
    Pythread__DeadlockInfo *o = arena_alloc(x->d, sizeof(*o));
    Pythread__DeadlockMember *mv = arena_alloc(x->d, (r->nmembers + 1) * sizeof(*mv));
    Pythread__DeadlockMember **pv = arena_alloc(x->d, (r->nmembers + 1) * sizeof(*pv));

    if (o == NULL || mv == NULL || pv == NULL)
        return NULL;
    pythread__deadlock_info__init(o);
    o->has_id = o->has_state = o->has_found = o->has_size = 1;
    o->id = r->id;
    o->state = r->state;
    o->found = r->found;
    o->size = (uint32_t)r->n;
    o->has_ended = r->state != PT_CYCLE_STANDING;
    o->ended = r->ended;
    o->has_broke = o->has_released = r->state == PT_CYCLE_BROKEN;
    o->broke = (uint32_t)r->broke;
    o->released = r->released != 0;
    for (size_t i = 0; i < r->nmembers; i++) {
        if (member_fill(x, r, i, &mv[i]) < 0)
            return NULL;
        pv[i] = &mv[i];
    }
    o->n_members = r->nmembers;
    o->members = pv;
    return o;
}

static void deadlock_add(void *arg, const pt_dl_record *r)
{
    dl_ctx *x = arg;
    Pythread__DeadlockInfo *o;
    size_t size;

    if (x->left_out > 0 || x->n == x->cap || (o = deadlock_info(x, r)) == NULL) {
        x->left_out++;
        return;
    }
    size = field_size(pythread__deadlock_info__get_packed_size(o));
    if (x->used + size > x->budget) {
        x->left_out++;
        return;
    }
    x->used += size;
    x->v[x->n++] = o;
}

static void standing_add(void *arg, const pt_core_cycle *cy)
{
    dl_ctx *x = arg;

    pt_deadlock_record_fill(&x->rec, cy, x->now);
    deadlock_add(x, &x->rec);
}

static void do_deadlocks(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    size_t fb = frame_budget(d);
    dl_ctx x = {.d = d, .now = now, .cap = 1024, .budget = fb > 1024 ? fb - 512 : fb / 2};
    pt_core_stats stats;

    x.asker = pt_core_session_peer(c->session);
    x.v = arena_alloc(d, x.cap * sizeof(*x.v));
    if (x.v == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM, "deadlocks: out of memory in the daemon");
        return;
    }
    /* What may not be shown for want of memory is counted as left out. */
    if (pt_core_deadlocks_each(d->core, standing_add, &x) < 0)
        x.left_out++;
    pt_deadlock_recent_each(d, deadlock_add, &x);
    pt_core_get_stats(d->core, &stats);
    in.n_deadlocks = x.n;
    in.deadlocks = x.v;
    in.has_deadlocks_found = 1;
    in.deadlocks_found = stats.deadlocks;
    in.has_more_deadlocks = x.left_out > 0;
    in.more_deadlocks = x.left_out;
    inspect_send(c, req, &in);
}

/* ---- SESSIONS ---------------------------------------------------------- */

static void do_sessions(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    const Pythread__PageArgs *page = pt_wire_page_args(req);
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    uint32_t max = page_size(page);
    Pythread__SessionInfo **v = arena_alloc(d, max * sizeof(*v));
    size_t n = 0, used = 0, budget = page_budget(d);
    uint64_t last = 0;
    int more = 0;
    pt_conn *it;

    if (v == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM, "sessions: out of memory in the daemon");
        return;
    }
    /* Connections are kept in accept order, so ids only grow along the list. */
    TAILQ_FOREACH(it, &d->conns, link)
    {
        pt_core_session_info si;
        Pythread__SessionInfo *o;
        size_t size;

        if (it->session == NULL || it->id <= page->cursor)
            continue;
        if (n == max || (o = arena_alloc(d, sizeof(*o))) == NULL) {
            more = 1;
            break;
        }
        pt_core_session_info_get(it->session, &si);
        pythread__session_info__init(o);
        o->has_id = o->has_pid = o->has_uid = o->has_gid = 1;
        o->id = si.id;
        o->pid = (int32_t)si.peer.pid;
        o->uid = (uint32_t)si.peer.uid;
        o->gid = (uint32_t)si.peer.gid;
        o->process = it->client_name;
        o->has_since = 1;
        o->since = wall_of(it->since, now);
        o->has_handles = o->has_held = o->has_waiting = o->has_requests = 1;
        o->handles = si.handles;
        o->held = si.held;
        o->waiting = si.waiting;
        o->requests = it->requests;
        o->has_resumed = it->resumed;
        o->resumed = it->resumed;
        o->has_connection_kept = it->kept;
        o->connection_kept = it->kept;
        size = field_size(pythread__session_info__get_packed_size(o));
        if (used + size > budget) {
            more = 1;
            break;
        }
        used += size;
        v[n++] = o;
        last = it->id;
    }
    in.n_sessions = n;
    in.sessions = v;
    if (more) {
        in.has_next_cursor = 1;
        in.next_cursor = last;
    }
    inspect_send(c, req, &in);
}

/* ---- METRICS ----------------------------------------------------------- */

/* The text c was paging out goes (all of it sent, a new one asked for, or
 * c gone). */
static void metrics_drop(pt_conn *c)
{
    if (c->metrics == NULL)
        return;
    c->daemon->metrics_kept -= evbuffer_get_length(c->metrics);
    evbuffer_free(c->metrics);
    c->metrics = NULL;
    c->metrics_off = 0;
}

void pt_inspect_conn_free(pt_conn *c)
{
    metrics_drop(c);
}

/* A new text for c; kept (and counted) only while pieces of it are left. */
static int metrics_take(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    char msg[256];
    size_t len;

    metrics_drop(c);
    c->metrics = evbuffer_new();
    if (c->metrics == NULL || pt_metrics_text(d, c->session, now, c->metrics) < 0) {
        metrics_drop(c);
        pt_conn_send_error(c, req->id, PT_ENOMEM, "metrics: out of memory in the daemon");
        return -1;
    }
    len = evbuffer_get_length(c->metrics);
    if (len > page_budget(d) && d->metrics_kept + len > PT_METRICS_KEPT_MAX) {
        d->refused[PT_DLIMIT_METRICS_KEPT]++;
        evbuffer_free(c->metrics);
        c->metrics = NULL;
        snprintf(msg, sizeof(msg),
                 "metrics: the daemon holds %llu bytes of metrics for other sessions to page "
                 "out, and this text of %zu bytes would pass its limit of %u; try again once "
                 "they are done, or expose fewer objects (pythreadd --metrics-object)",
                 (unsigned long long)d->metrics_kept, len, PT_METRICS_KEPT_MAX);
        pt_conn_send_error(c, req->id, PT_ELIMIT, msg);
        return -1;
    }
    d->metrics_kept += len;
    return 0;
}

/* One piece of the text per request, the next offset with it: every piece
 * is of the one text taken when the cursor was 0. */
static void do_metrics(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    const Pythread__PageArgs *page = pt_wire_page_args(req);
    Pythread__Inspection in = PYTHREAD__INSPECTION__INIT;
    char msg[200];
    size_t n;
    uint8_t *piece;

    if (page->cursor == 0 && metrics_take(d, c, req, now) < 0)
        return;
    if (c->metrics == NULL || page->cursor != c->metrics_off) {
        snprintf(msg, sizeof(msg),
                 "metrics: no text is being paged out at byte %llu in this session; ask for "
                 "cursor 0 to take a new one",
                 (unsigned long long)page->cursor);
        pt_conn_send_error(c, req->id, PT_EINVAL, msg);
        return;
    }
    n = evbuffer_get_length(c->metrics);
    if (n > page_budget(d))
        n = page_budget(d);
    piece = arena_alloc(d, n + 1);
    if (piece == NULL) {
        pt_conn_send_error(c, req->id, PT_ENOMEM, "metrics: out of memory in the daemon");
        return;
    }
    evbuffer_remove(c->metrics, piece, n);
    d->metrics_kept -= n;
    c->metrics_off += n;
    in.has_metrics = 1;
    in.metrics.data = piece;
    in.metrics.len = n;
    if (evbuffer_get_length(c->metrics) > 0) {
        in.has_next_cursor = 1;
        in.next_cursor = c->metrics_off;
    } else {
        metrics_drop(c);
    }
    inspect_send(c, req, &in);
}

/* LIST, SHOW and SESSIONS show holders and values: what clients did
 * through the shared words since is taken in first, so they are the true
 * ones. STATUS shows none, and METRICS must change nothing (a claim is
 * journaled). */
static int reads_words(int op)
{
    return op == PYTHREAD__OP__OP_LIST || op == PYTHREAD__OP__OP_SHOW ||
           op == PYTHREAD__OP__OP_SESSIONS;
}

void pt_inspect_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    if (d->fast && reads_words(req->op)) {
        pt_journal_claim_all(d->journal, d->core);
        pt_fast_publish_all(d->fast);
    }
    switch (req->op) {
    case PYTHREAD__OP__OP_STATUS:
        do_status(d, c, req, now);
        break;
    case PYTHREAD__OP__OP_LIST:
        do_list(d, c, req, now);
        break;
    case PYTHREAD__OP__OP_SHOW:
        do_show(d, c, req, now);
        break;
    case PYTHREAD__OP__OP_SESSIONS:
        do_sessions(d, c, req, now);
        break;
    case PYTHREAD__OP__OP_METRICS:
        do_metrics(d, c, req, now);
        break;
    case PYTHREAD__OP__OP_DEADLOCKS:
        do_deadlocks(d, c, req, now);
        break;
    default:
        pt_conn_send_error(c, req->id, PT_EPROTO, "inspection: unknown operation");
        break;
    }
}
