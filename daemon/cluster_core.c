/*
 * cluster_core.c - the cluster's copy of the core, fed entries in the log's
 * order (cluster_core.h).
 *
 * A core session stands for one connection of one host: (host, conn). The
 * entries name the connection, not the core's session id, because the
 * appender cannot know the id its SESSION_NEW will get before the log has
 * ordered it; every copy maps the pair to its own session, and since every
 * copy applies the same entries in the same order, the sessions, and the
 * handles the core gives them, are the same everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cluster_core_int.h"
#include "journal.h"
#include "journal.pb-c.h"
#include "request.h"
#include "wire.h"

/* ------------------------------------------------------------------ */
/* Hosts and sessions                                                  */
/* ------------------------------------------------------------------ */

static int host_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n > 0 && n <= PT_CCORE_HOST_MAX;
}

cc_host *pt__cc_host_find(const pt_ccore *cc, const char *name)
{
    cc_host *h;

    LIST_FOREACH(h, &cc->hosts, link)
    {
        if (strcmp(h->name, name) == 0)
            return h;
    }
    return NULL;
}

cc_host *pt__cc_host_get(pt_ccore *cc, const char *name)
{
    cc_host *h = pt__cc_host_find(cc, name);

    if (h != NULL || !host_name_ok(name))
        return h;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    snprintf(h->name, sizeof(h->name), "%s", name);
    for (unsigned i = 0; i < SESS_BUCKETS; i++)
        LIST_INIT(&h->buckets[i]);
    TAILQ_INIT(&h->sessions);
    LIST_INSERT_HEAD(&cc->hosts, h, link);
    return h;
}

static struct cc_sess_list *bucket(cc_host *h, uint64_t conn)
{
    return &h->buckets[(conn * 0x9E3779B97F4A7C15ull) >> 56];
}

cc_sess *pt__cc_sess_find(cc_host *h, uint64_t conn)
{
    cc_sess *x;

    if (h == NULL)
        return NULL;
    LIST_FOREACH(x, bucket(h, conn), link)
    {
        if (x->conn == conn)
            return x;
    }
    return NULL;
}

/* End x's session in the core (its holds and waits go, which may answer
 * other sessions), then forget it. */
static void sess_end(pt_ccore *cc, cc_sess *x)
{
    pt__cc_own_sess_end(cc, x);
    pt_core_session_end(cc->core, x->s, cc->now);
    LIST_REMOVE(x, link);
    TAILQ_REMOVE(&x->host->sessions, x, order);
    x->host->nsess--;
    cc->nsess--;
    free(x);
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */
/* ------------------------------------------------------------------ */

/* Only this host's connections are answered here; the others' hosts give
 * the same answers to theirs. */
static void sink(void *ctx, pt_session *s, const pt_result *res)
{
    pt_ccore *cc = ctx;
    const cc_sess *x = pt_core_session_udata(s);

    if (x != NULL && x->host == cc->self)
        cc->answer(cc->ctx, x->conn, res);
}

pt_ccore *pt_ccore_new(const char *self, pt_ccore_answer_fn answer, void *ctx)
{
    pt_ccore *cc;

    if (!host_name_ok(self) || (cc = calloc(1, sizeof(*cc))) == NULL)
        return NULL;
    LIST_INIT(&cc->hosts);
    pt__cc_own_init(cc);
    cc->answer = answer;
    cc->ctx = ctx;
    cc->core = pt_core_new(NULL, sink, cc);
    cc->self = pt__cc_host_get(cc, self);
    if (cc->core == NULL || cc->self == NULL) {
        pt_ccore_free(cc);
        return NULL;
    }
    pt_core_set_freed_hook(cc->core, pt__cc_own_freed, cc);
    return cc;
}

void pt_ccore_free(pt_ccore *cc)
{
    cc_host *h;

    if (cc == NULL)
        return;
    if (cc->core)
        pt_core_free(cc->core); /* ends every session, answering none */
    pt__cc_own_free(cc);
    while ((h = LIST_FIRST(&cc->hosts)) != NULL) {
        cc_sess *x;

        while ((x = TAILQ_FIRST(&h->sessions)) != NULL) {
            TAILQ_REMOVE(&h->sessions, x, order);
            pt__cc_own_sess_end(cc, x);
            free(x);
        }
        LIST_REMOVE(h, link);
        free(h);
    }
    free(cc);
}

/* ------------------------------------------------------------------ */
/* Entries                                                             */
/* ------------------------------------------------------------------ */

int pt__cc_record_pack(const record *r, uint8_t **out, size_t *len)
{
    *len = pythread__journal_record__get_packed_size(r);
    if ((*out = malloc(*len ? *len : 1)) == NULL)
        return -1;
    pythread__journal_record__pack(r, *out);
    return 0;
}

int pt_ccore_enc_session_new(uint64_t conn, const pt_peer *peer, uint8_t **out, size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_NEW;
    r.has_session = r.has_pid = r.has_uid = r.has_gid = 1;
    r.session = conn;
    r.pid = peer->pid;
    r.uid = peer->uid;
    r.gid = peer->gid;
    return pt__cc_record_pack(&r, out, len);
}

int pt_ccore_enc_session_end(uint64_t conn, uint64_t now, uint8_t **out, size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_END;
    r.has_session = r.has_now = 1;
    r.session = conn;
    r.now = now;
    return pt__cc_record_pack(&r, out, len);
}

int pt_ccore_enc_call(uint64_t conn, const Pythread__Request *req, uint64_t now, uint8_t **out,
                      size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__CALL;
    r.has_session = r.has_now = 1;
    r.session = conn;
    r.now = now;
    r.request = (Pythread__Request *)req;
    return pt__cc_record_pack(&r, out, len);
}

int pt_ccore_enc_hand_back(uint64_t serial, uint8_t **out, size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__HAND_BACK;
    r.has_value = 1;
    r.value = serial;
    return pt__cc_record_pack(&r, out, len);
}

int pt_ccore_enc_expire(uint64_t now, uint8_t **out, size_t *len)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__EXPIRE;
    r.has_now = 1;
    r.now = now;
    return pt__cc_record_pack(&r, out, len);
}

/* ------------------------------------------------------------------ */
/* Applying                                                            */
/* ------------------------------------------------------------------ */

/* The entry's time, never before the last one's: hosts' clocks differ. The
 * first entry with a time starts the tokens, as a daemon's start does (a
 * wall-clock base above any token of an earlier cluster); a SESSION_NEW has
 * none, and comes before any call. */
static void time_take(pt_ccore *cc, const record *r)
{
    if (r->has_now && r->now > cc->now)
        cc->now = r->now;
    if (!cc->started && cc->now != 0) {
        pt_core_set_token_base(cc->core, cc->now);
        cc->started = 1;
    }
}

static int apply_session_new(pt_ccore *cc, const char *host, const record *r, char *err,
                             size_t errlen)
{
    cc_host *h = pt__cc_host_get(cc, host);
    pt_peer peer = {.pid = r->pid, .uid = r->uid, .gid = r->gid};
    cc_sess *x;

    if (h == NULL || !r->has_session) {
        snprintf(err, errlen, "a session from host '%.64s' without its connection (or no memory)",
                 host);
        return -1;
    }
    if (pt__cc_sess_find(h, r->session) != NULL) {
        snprintf(err, errlen, "host '%.64s' opened connection %llu's session twice", host,
                 (unsigned long long)r->session);
        return -1;
    }
    if ((x = calloc(1, sizeof(*x))) == NULL ||
        (x->s = pt_core_session_new(cc->core, &peer, x)) == NULL) {
        free(x);
        snprintf(err, errlen, "no memory for host '%.64s' connection %llu's session", host,
                 (unsigned long long)r->session);
        return -1;
    }
    x->conn = r->session;
    x->host = h;
    LIST_INSERT_HEAD(bucket(h, x->conn), x, link);
    TAILQ_INSERT_TAIL(&h->sessions, x, order);
    h->nsess++;
    cc->nsess++;
    return 0;
}

static cc_sess *session_named(pt_ccore *cc, const char *host, const record *r, char *err,
                              size_t errlen)
{
    cc_sess *x = r->has_session ? pt__cc_sess_find(pt__cc_host_find(cc, host), r->session) : NULL;

    if (x == NULL)
        snprintf(err, errlen, "host '%.64s' named connection %llu, which has no session", host,
                 (unsigned long long)r->session);
    return x;
}

/* Only the calls a client makes on its objects: no hello, no inspection. */
static int call_ok(const Pythread__Request *req)
{
    return req != NULL && req->op != PYTHREAD__OP__OP_HELLO && !pt_wire_op_inspects(req->op);
}

/* A call of this host's connection whose session is gone (its host's
 * membership ended before the call was applied): its caller hears so;
 * the other copies only refuse it. */
static void call_lost(pt_ccore *cc, const char *host, const record *r)
{
    pt_result res = {.status = PT_ESESSION};

    if (r->request == NULL || pt__cc_host_find(cc, host) != cc->self)
        return;
    res.id = r->request->id;
    res.thread = r->request->thread;
    res.message = "the cluster session of this connection is gone (this host's membership of "
                  "the cluster ended: its cluster locks, permits and waits were given back); "
                  "connect again";
    cc->answer(cc->ctx, r->session, &res);
}

static int apply_call(pt_ccore *cc, cc_sess *x, const record *r, char *err, size_t errlen)
{
    pt_call call;

    if (!call_ok(r->request)) {
        snprintf(err, errlen, "a call that is not an object's operation");
        return -1;
    }
    pt_request_call(r->request, &call);
    /* A call answered ahead was applied with its own time, on every copy */
    pt_core_call(cc->core, x->s, &call, r->has_ahead ? r->now : cc->now);
    pt__cc_own_after_call(cc, x, r);
    return 0;
}

/* A session's entry, unless the session is held (kept behind its earlier
 * ones) or its call touches a lock another host owns (held from here). */
static int apply_session_entry(pt_ccore *cc, const char *host, const record *r, const uint8_t *p,
                               size_t len, char *err, size_t errlen)
{
    cc_sess *x = session_named(cc, host, r, err, errlen);
    int call = r->type == PYTHREAD__JOURNAL_RECORD__TYPE__CALL;

    if (x == NULL) {
        if (call)
            call_lost(cc, host, r);
        return -1;
    }
    if (pt__cc_own_keep(cc, x, r, p, len) || (call && pt__cc_own_hold(cc, x, r, p, len)))
        return 0;
    if (call)
        return apply_call(cc, x, r, err, errlen);
    sess_end(cc, x);
    return 0;
}

static int apply_record(pt_ccore *cc, const char *host, const record *r, const uint8_t *p,
                        size_t len, char *err, size_t errlen)
{
    if (r->has_ahead) {
        /* Applied with its own time: the copy's clock is left alone. */
        if (pt__cc_own_met(cc, pt__cc_host_find(cc, host), r))
            return 0;
    } else {
        time_take(cc, r);
    }
    switch (r->type) {
    case PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_NEW:
        return apply_session_new(cc, host, r, err, errlen);
    case PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_END:
    case PYTHREAD__JOURNAL_RECORD__TYPE__CALL:
        return apply_session_entry(cc, host, r, p, len, err, errlen);
    case PYTHREAD__JOURNAL_RECORD__TYPE__EXPIRE:
        pt_core_expire(cc->core, cc->now);
        pt__cc_own_expire(cc);
        return 0;
    case PYTHREAD__JOURNAL_RECORD__TYPE__HAND_BACK:
        if (r->has_value)
            pt__cc_own_hand_back(cc, pt__cc_host_find(cc, host), r->value);
        return 0;
    default:
        snprintf(err, errlen, "a record of type %d, which no host appends", (int)r->type);
        return -1;
    }
}

int pt_ccore_apply(pt_ccore *cc, const char *host, const uint8_t *p, size_t len, char *err,
                   size_t errlen)
{
    record *r;
    int rc;

    if (!host_name_ok(host)) {
        snprintf(err, errlen, "an entry from a host with no name or one over %d bytes",
                 PT_CCORE_HOST_MAX);
        return -1;
    }
    r = pythread__journal_record__unpack(NULL, len, p);
    if (r == NULL) {
        snprintf(err, errlen, "an entry of host '%.64s' that is not a record (%zu bytes)", host,
                 len);
        return -1;
    }
    rc = apply_record(cc, host, r, p, len, err, errlen);
    pythread__journal_record__free_unpacked(r, NULL);
    return rc;
}

void pt_ccore_host_gone(pt_ccore *cc, const char *host)
{
    cc_host *h = pt__cc_host_find(cc, host);
    cc_sess *x;

    if (h == NULL)
        return;
    pt__cc_own_host_gone_before(cc, h);
    while ((x = TAILQ_FIRST(&h->sessions)) != NULL)
        sess_end(cc, x);
    pt__cc_own_host_gone_after(cc, h);
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

typedef Pythread__ClusterHost host_msg;

/* One host's sessions, oldest first: connection and core session id. */
static int host_out(const cc_host *h, host_msg *m)
{
    const cc_sess *x;
    size_t i = 0;

    pythread__cluster_host__init(m);
    m->name = (char *)h->name;
    m->conns = calloc(h->nsess + 1, sizeof(*m->conns));
    m->sessions = calloc(h->nsess + 1, sizeof(*m->sessions));
    if (m->conns == NULL || m->sessions == NULL)
        return -1;
    TAILQ_FOREACH(x, &h->sessions, order)
    {
        m->conns[i] = x->conn;
        m->sessions[i++] = pt_core_session_id(x->s);
    }
    m->n_conns = m->n_sessions = i;
    return 0;
}

int pt_ccore_snapshot(const pt_ccore *cc, uint8_t **out, size_t *len)
{
    copy_msg m = PYTHREAD__CLUSTER_COPY__INIT;
    pt_journal *j = pt_journal_new();
    const cc_host *h;
    host_msg *hosts = NULL;
    size_t n = 0, i = 0;
    int rc = -1;

    LIST_FOREACH(h, &cc->hosts, link)
    {
        n++;
    }
    if (cc->nahead > 0 || j == NULL || (hosts = calloc(n + 1, sizeof(*hosts))) == NULL ||
        (m.hosts = calloc(n + 1, sizeof(*m.hosts))) == NULL)
        goto out;
    /* No who-callback: a cluster session is taken up by no process after
     * a restart, its host's lease ends it. */
    if (pt_journal_snapshot(j, cc->core, NULL, NULL) < 0)
        goto out;
    LIST_FOREACH(h, &cc->hosts, link)
    {
        m.hosts[i] = &hosts[i];
        if (host_out(h, &hosts[i++]) < 0)
            goto out;
    }
    m.n_hosts = n;
    if (pt__cc_own_out(cc, &m) < 0)
        goto out;
    m.has_now = m.has_started = m.has_core = 1;
    m.now = cc->now;
    m.started = cc->started != 0;
    m.core.data = (uint8_t *)pt_journal_bytes(j, &m.core.len);
    *len = pythread__cluster_copy__get_packed_size(&m);
    if ((*out = malloc(*len ? *len : 1)) != NULL) {
        pythread__cluster_copy__pack(&m, *out);
        rc = 0;
    }
out:
    for (size_t k = 0; hosts != NULL && k < i; k++) {
        free(hosts[k].conns);
        free(hosts[k].sessions);
    }
    free(hosts);
    free(m.hosts);
    pt__cc_own_out_free(&m);
    pt_journal_free(j);
    return rc;
}

/* The sessions the core's replay made, ids ascending (the replay makes
 * them in that order). */
typedef struct restored {
    pt_session **s;
    size_t n, cap;
    int failed;
} restored;

static void restored_add(void *ctx, pt_session *s, const pt_journal_who *who)
{
    restored *rs = ctx;

    (void)who;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        pt_session **grown = realloc(rs->s, cap * sizeof(*grown));

        if (grown == NULL) {
            rs->failed = 1;
            return;
        }
        rs->s = grown;
        rs->cap = cap;
    }
    rs->s[rs->n++] = s;
}

static pt_session *restored_find(const restored *rs, uint64_t id)
{
    size_t lo = 0, hi = rs->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t at = pt_core_session_id(rs->s[mid]);

        if (at == id)
            return rs->s[mid];
        if (at < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Host m's sessions, each given back its connection, in m's order. */
static int host_in(pt_ccore *cc, const host_msg *m, const restored *rs, char *err, size_t errlen)
{
    cc_host *h;

    if (m->name == NULL || !host_name_ok(m->name) || pt__cc_host_find(cc, m->name) != NULL ||
        m->n_conns != m->n_sessions || (h = pt__cc_host_get(cc, m->name)) == NULL) {
        snprintf(err, errlen, "a host with no name, a bad one, twice, or with no memory");
        return -1;
    }
    for (size_t i = 0; i < m->n_conns; i++) {
        pt_session *s = restored_find(rs, m->sessions[i]);
        cc_sess *x;

        if (s == NULL || pt_core_session_udata(s) != NULL ||
            pt__cc_sess_find(h, m->conns[i]) != NULL) {
            snprintf(err, errlen,
                     "host '%.64s' connection %llu names session %llu, which the core does not "
                     "have, or another connection has",
                     h->name, (unsigned long long)m->conns[i], (unsigned long long)m->sessions[i]);
            return -1;
        }
        if ((x = calloc(1, sizeof(*x))) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        x->conn = m->conns[i];
        x->host = h;
        x->s = s;
        pt_core_session_set_udata(s, x);
        LIST_INSERT_HEAD(bucket(h, x->conn), x, link);
        TAILQ_INSERT_TAIL(&h->sessions, x, order);
        h->nsess++;
        cc->nsess++;
    }
    return 0;
}

/* The copy of m into cc, fresh: the core, then the hosts in m's order. */
static int copy_in(pt_ccore *cc, const copy_msg *m, char *err, size_t errlen)
{
    pt_journal_replay_hooks hooks = {.session_new = restored_add};
    restored rs = {0};
    pt_journal_replayed done;
    int rc = -1;

    hooks.ctx = &rs;
    if (!m->has_core ||
        pt_journal_replay(cc->core, m->core.data, m->core.len, &hooks, &done, err, errlen) < 0)
        goto out;
    if (rs.failed) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* The hosts' list is built head first: from the last, to keep m's order. */
    for (size_t i = m->n_hosts; i-- > 0;)
        if (host_in(cc, m->hosts[i], &rs, err, errlen) < 0)
            goto out;
    if (cc->nsess != rs.n) {
        snprintf(err, errlen, "%zu sessions in the core, %zu of them a host's", rs.n, cc->nsess);
        goto out;
    }
    if (pt__cc_own_in(cc, m, err, errlen) < 0)
        goto out;
    cc->now = m->now;
    cc->started = m->started;
    rc = 0;
out:
    free(rs.s);
    return rc;
}

pt_ccore *pt_ccore_restore(const char *self, pt_ccore_answer_fn answer, void *ctx, const uint8_t *p,
                           size_t len, char *err, size_t errlen)
{
    copy_msg *m;
    pt_ccore *cc;
    char why[200];

    if (!host_name_ok(self) || (cc = calloc(1, sizeof(*cc))) == NULL) {
        snprintf(err, errlen, "no memory, or a host name that is empty or too long");
        return NULL;
    }
    LIST_INIT(&cc->hosts);
    pt__cc_own_init(cc);
    cc->answer = answer;
    cc->ctx = ctx;
    if ((cc->core = pt_core_new(NULL, sink, cc)) == NULL) {
        snprintf(err, errlen, "out of memory");
        pt_ccore_free(cc);
        return NULL;
    }
    pt_core_set_freed_hook(cc->core, pt__cc_own_freed, cc);
    if ((m = pythread__cluster_copy__unpack(NULL, len, p)) == NULL) {
        snprintf(err, errlen, "a snapshot of the cluster's copy that is not one (%zu bytes)", len);
        pt_ccore_free(cc);
        return NULL;
    }
    why[0] = '\0';
    if (copy_in(cc, m, why, sizeof(why)) < 0 || (cc->self = pt__cc_host_get(cc, self)) == NULL) {
        snprintf(err, errlen, "a snapshot of the cluster's copy that does not add up: %s",
                 why[0] ? why : "out of memory");
        pythread__cluster_copy__free_unpacked(m, NULL);
        pt_ccore_free(cc);
        return NULL;
    }
    pythread__cluster_copy__free_unpacked(m, NULL);
    return cc;
}

/* ------------------------------------------------------------------ */
/* Looking                                                             */
/* ------------------------------------------------------------------ */

int pt_ccore_has_session(const pt_ccore *cc, uint64_t conn)
{
    return pt__cc_sess_find(cc->self, conn) != NULL;
}

size_t pt_ccore_sessions(const pt_ccore *cc)
{
    return cc->nsess;
}

uint64_t pt_ccore_next_deadline(const pt_ccore *cc)
{
    uint64_t core = pt_core_next_deadline(cc->core), held = pt__cc_own_next_deadline(cc);

    return core < held ? core : held;
}

uint64_t pt_ccore_now(const pt_ccore *cc)
{
    return cc->now;
}

pt_core *pt_ccore_core(pt_ccore *cc)
{
    return cc->core;
}

const char *pt_ccore_session_host(const pt_session *s)
{
    const cc_sess *x = pt_core_session_udata(s);

    return x != NULL ? x->host->name : "";
}
