/*
 * journal.c - the core's inputs recorded and given again (journal.h).
 *
 * Records are framed as on the wire: a 4-byte big-endian length, then one
 * JournalRecord; a length of zero ends the journal (the file is allocated
 * ahead of its records, journal_map.c). An entry's record comes before the answers of the hooks
 * it called, in the order it called them, so a replay gives the entry and
 * lets each hook take the next record, which must be its own kind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_int.h"
#include "request.h"
#include "wire.h"

#define HEADER JOURNAL_HEADER

struct pt_journal {
    uint8_t *buf;
    size_t len, cap;
    uint64_t lost;
    const pt_core_fast_hooks *hooks; /* the hooks the journal stands before */
    void *hooks_ctx;
};

pt_journal *pt_journal_new(void)
{
    return calloc(1, sizeof(pt_journal));
}

void pt_journal_free(pt_journal *j)
{
    if (j == NULL)
        return;
    free(j->buf);
    free(j);
}

const uint8_t *pt_journal_bytes(const pt_journal *j, size_t *len)
{
    *len = j->len;
    return j->buf;
}

void pt_journal_take(pt_journal *j, size_t n)
{
    memmove(j->buf, j->buf + n, j->len - n);
    j->len -= n;
}

uint64_t pt_journal_lost(const pt_journal *j)
{
    return j->lost;
}

static int reserve(pt_journal *j, size_t more)
{
    size_t cap = j->cap ? j->cap : 4096;
    uint8_t *grown;

    if (j->len + more <= j->cap)
        return 0;
    while (cap < j->len + more)
        cap *= 2;
    grown = realloc(j->buf, cap);
    if (grown == NULL)
        return -1;
    j->buf = grown;
    j->cap = cap;
    return 0;
}

/* Without a journal nothing is sized or packed: a request pays nothing. */
void pt__journal_put(pt_journal *j, const record *r)
{
    size_t n;
    uint8_t *p;

    if (j == NULL)
        return;
    n = pythread__journal_record__get_packed_size(r);
    if (n > RECORD_MAX || reserve(j, HEADER + n) < 0) {
        j->lost++;
        return;
    }
    p = j->buf + j->len;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    pythread__journal_record__pack(r, p + HEADER);
    j->len += HEADER + n;
}

static void put_type(pt_journal *j, Pythread__JournalRecord__Type type, uint64_t now,
                     const pt_session *s)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = type;
    r.has_now = now != 0;
    r.now = now;
    r.has_session = s != NULL;
    r.session = s ? pt_core_session_id(s) : 0;
    pt__journal_put(j, &r);
}

/* ------------------------------------------------------------------ */
/* Entries                                                             */
/* ------------------------------------------------------------------ */

void pt_journal_start(pt_journal *j, pt_core *core, uint64_t token_base)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__START;
    r.has_value = 1;
    r.value = token_base;
    pt__journal_put(j, &r);
    pt_core_set_token_base(core, token_base);
}

pt_session *pt_journal_session_new(pt_journal *j, pt_core *core, const pt_peer *peer, void *udata,
                                   const pt_journal_who *who)
{
    pt_session *s = pt_core_session_new(core, peer, udata);
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalResume m = PYTHREAD__JOURNAL_RESUME__INIT;

    /* A session refused for want of memory changed nothing. */
    if (s == NULL)
        return NULL;
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_NEW;
    r.has_session = r.has_pid = r.has_uid = r.has_gid = 1;
    r.session = pt_core_session_id(s);
    r.pid = peer->pid;
    r.uid = peer->uid;
    r.gid = peer->gid;
    if (who != NULL) {
        m.has_start_time = m.has_key = 1;
        m.start_time = who->start_time;
        m.key.data = (uint8_t *)who->key;
        m.key.len = sizeof(who->key);
        r.resume = &m;
    }
    pt__journal_put(j, &r);
    return s;
}

void pt_journal_session_end(pt_journal *j, pt_core *core, pt_session *s, uint64_t now)
{
    put_type(j, PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_END, now, s);
    pt_core_session_end(core, s, now);
}

void pt_journal_call(pt_journal *j, pt_core *core, pt_session *s, const Pythread__Request *req,
                     uint64_t now)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    pt_call call;

    if (j != NULL) {
        r.type = PYTHREAD__JOURNAL_RECORD__TYPE__CALL;
        r.has_now = r.has_session = 1;
        r.now = now;
        r.session = pt_core_session_id(s);
        r.request = (Pythread__Request *)req;
        pt__journal_put(j, &r);
    }
    pt_request_call(req, &call);
    pt_core_call(core, s, &call, now);
}

void pt_journal_expire(pt_journal *j, pt_core *core, uint64_t now)
{
    put_type(j, PYTHREAD__JOURNAL_RECORD__TYPE__EXPIRE, now, NULL);
    pt_core_expire(core, now);
}

void pt_journal_claim_all(pt_journal *j, pt_core *core)
{
    put_type(j, PYTHREAD__JOURNAL_RECORD__TYPE__CLAIM_ALL, 0, NULL);
    pt_core_fast_claim_all(core);
}

void pt_journal_words_lost(pt_journal *j, pt_core *core)
{
    put_type(j, PYTHREAD__JOURNAL_RECORD__TYPE__WORDS_LOST, 0, NULL);
    pt_core_words_lost(core);
}

void pt_journal_limits(pt_journal *j, pt_core *core, const pt_core_limits *limits)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalLimits m = PYTHREAD__JOURNAL_LIMITS__INIT;
    pt_core_limits l;

    pt_core_set_limits(core, limits);
    pt_core_get_limits(core, &l);
    m.has_max_objects = m.has_max_handles_per_session = m.has_max_waiters_per_session = 1;
    m.has_max_objects_per_uid = m.has_max_handles_per_uid = m.has_max_waiters_per_uid = 1;
    m.max_objects = l.max_objects;
    m.max_handles_per_session = l.max_handles_per_session;
    m.max_waiters_per_session = l.max_waiters_per_session;
    m.max_objects_per_uid = l.max_objects_per_uid;
    m.max_handles_per_uid = l.max_handles_per_uid;
    m.max_waiters_per_uid = l.max_waiters_per_uid;
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__LIMITS;
    r.limits = &m;
    pt__journal_put(j, &r);
}

/* A RESTART record with count 1 keeps the sessions (the daemon ends the
 * ones nobody took up, each with its own record); one without, written
 * before sessions could be resumed, ended them all. */
#define RESTART_KEEPS 1
/* Reclaims per RECLAIMS record: a record stays far below RECORD_MAX
 * however many sessions came back, and needs no memory but the stack. */
#define RECLAIMS_PER_RECORD 256u

static void reclaim_out(const pt_core_reclaim *rc, Pythread__JournalReclaim *m)
{
    pythread__journal_reclaim__init(m);
    m->has_session = m->has_handle = m->has_state = 1;
    m->has_thread = m->has_depth = m->has_token = m->has_value = 1;
    m->session = pt_core_session_id(rc->session);
    m->handle = rc->handle;
    m->state = rc->state;
    m->thread = rc->thread;
    m->depth = rc->depth;
    m->token = rc->token;
    m->value = rc->value;
}

/* The reclaims go before the RESTART that applies them, in records of
 * RECLAIMS_PER_RECORD. */
static void reclaims_put(pt_journal *j, const pt_core_reclaim *reclaims, size_t n)
{
    Pythread__JournalReclaim m[RECLAIMS_PER_RECORD], *ptrs[RECLAIMS_PER_RECORD];

    for (size_t at = 0; j != NULL && at < n; at += RECLAIMS_PER_RECORD) {
        record r = PYTHREAD__JOURNAL_RECORD__INIT;
        size_t k = n - at < RECLAIMS_PER_RECORD ? n - at : RECLAIMS_PER_RECORD;

        for (size_t i = 0; i < k; i++) {
            reclaim_out(&reclaims[at + i], &m[i]);
            ptrs[i] = &m[i];
        }
        r.type = PYTHREAD__JOURNAL_RECORD__TYPE__RECLAIMS;
        r.n_reclaims = k;
        r.reclaims = ptrs;
        pt__journal_put(j, &r);
    }
}

void pt_journal_restart(pt_journal *j, pt_core *core, uint64_t now, uint64_t token_jump,
                        const pt_core_reclaim *reclaims, size_t n)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    reclaims_put(j, reclaims, n);
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__RESTART;
    r.has_now = r.has_value = r.has_count = 1;
    r.now = now;
    r.value = token_jump;
    r.count = RESTART_KEEPS;
    pt__journal_put(j, &r);
    pt_core_restart(core, now, token_jump, reclaims, n);
}

/* ------------------------------------------------------------------ */
/* Hooks: answers recorded                                             */
/* ------------------------------------------------------------------ */

static void put_value(pt_journal *j, Pythread__JournalRecord__Type type, uint64_t v)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;

    r.type = type;
    r.has_value = 1;
    r.value = v;
    pt__journal_put(j, &r);
}

static uint32_t rec_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    pt_journal *j = ctx;
    uint32_t cell = j->hooks ? j->hooks->created(j->hooks_ctx, kind, owned, uid, gid, mode) : 0;

    put_value(j, PYTHREAD__JOURNAL_RECORD__TYPE__CELL, cell);
    return cell;
}

static void view_out(const pt_core_fast_view *v, Pythread__JournalView *m)
{
    m->has_keep = m->has_holder = m->has_thread = m->has_depth = m->has_token = 1;
    m->has_value = m->has_acquires = m->has_slot = m->has_busy = m->has_many = 1;
    m->keep = v->keep != 0;
    m->holder = v->holder ? pt_core_session_id(v->holder) : 0;
    m->thread = v->thread;
    m->depth = v->depth;
    m->token = v->token;
    m->value = v->value;
    m->acquires = v->acquires;
    m->slot = v->slot;
    m->busy = v->busy != 0;
    m->many = v->many != 0;
}

static void rec_claim(void *ctx, uint32_t cell, int kind, pt_core_fast_view *v)
{
    pt_journal *j = ctx;
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalView m = PYTHREAD__JOURNAL_VIEW__INIT;

    j->hooks->claim(j->hooks_ctx, cell, kind, v);
    view_out(v, &m);
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__VIEW;
    r.view = &m;
    pt__journal_put(j, &r);
}

static void rec_freed(void *ctx, uint32_t cell)
{
    pt_journal *j = ctx;

    j->hooks->freed(j->hooks_ctx, cell);
}

static uint32_t rec_slot_new(void *ctx, uint32_t cell)
{
    pt_journal *j = ctx;
    uint32_t slot = j->hooks->slot_new(j->hooks_ctx, cell);

    put_value(j, PYTHREAD__JOURNAL_RECORD__TYPE__SLOT, slot);
    return slot;
}

static int64_t rec_slot_read(void *ctx, uint32_t slot)
{
    pt_journal *j = ctx;
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    int64_t count = j->hooks->slot_read(j->hooks_ctx, slot);

    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__SLOT_COUNT;
    r.has_count = 1;
    r.count = count;
    pt__journal_put(j, &r);
    return count;
}

static void rec_slot_free(void *ctx, uint32_t slot)
{
    pt_journal *j = ctx;

    j->hooks->slot_free(j->hooks_ctx, slot);
}

/* A look changes nothing: no record. */
static uint64_t rec_unread(void *ctx, uint32_t cell, int kind, uint64_t token)
{
    pt_journal *j = ctx;

    return j->hooks->unread ? j->hooks->unread(j->hooks_ctx, cell, kind, token) : 0;
}

static const pt_core_fast_hooks recording = {rec_created,   rec_claim,     rec_freed, rec_slot_new,
                                             rec_slot_read, rec_slot_free, rec_unread};

void pt_journal_set_fast_hooks(pt_journal *j, pt_core *core, const pt_core_fast_hooks *hooks,
                               void *ctx)
{
    if (j == NULL) {
        pt_core_set_fast_hooks(core, hooks, ctx);
        return;
    }
    j->hooks = hooks;
    j->hooks_ctx = ctx;
    pt_core_set_fast_hooks(core, &recording, j);
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */
/* ------------------------------------------------------------------ */

void pt__replay_fail(replay *rp, const char *what)
{
    if (!rp->failed)
        snprintf(rp->err, rp->errlen, "journal record at byte %zu: %s", rp->pos, what);
    rp->failed = 1;
}

/* The next record, or NULL at the end or on a fault (then rp->failed). */
static record *replay_next(replay *rp)
{
    const uint8_t *p = rp->buf + rp->pos;
    size_t n;
    record *r;

    if (rp->failed || rp->pos == rp->len)
        return NULL;
    if (rp->len - rp->pos < HEADER) {
        pt__replay_fail(rp, "torn length");
        return NULL;
    }
    n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (n == 0)
        return NULL; /* no record is empty (its type is required): the end */
    if (n > RECORD_MAX || rp->len - rp->pos - HEADER < n) {
        pt__replay_fail(rp, "torn record");
        return NULL;
    }
    r = pythread__journal_record__unpack(NULL, n, p + HEADER);
    if (r == NULL) {
        pt__replay_fail(rp, "not a journal record");
        return NULL;
    }
    rp->pos += HEADER + n;
    rp->out->records++;
    return r;
}

/* The next record, which a hook asked for: it must be of that type. */
static record *replay_answer(replay *rp, Pythread__JournalRecord__Type type)
{
    record *r = replay_next(rp);

    if (r != NULL && r->type == type)
        return r;
    if (r != NULL)
        pythread__journal_record__free_unpacked(r, NULL);
    pt__replay_fail(rp, "a hook's answer is missing");
    return NULL;
}

static int kept_cmp(const void *key, const void *elem)
{
    uint64_t id = *(const uint64_t *)key, other = ((const replay_kept *)elem)->id;

    return (id > other) - (id < other);
}

pt_session **pt__replay_session_at(replay *rp, uint64_t id)
{
    replay_kept *k;

    if (id <= rp->base) {
        k = rp->nkept ? bsearch(&id, rp->kept, rp->nkept, sizeof(*rp->kept), kept_cmp) : NULL;
        return k ? &k->s : NULL;
    }
    if (id - rp->base > rp->nsessions)
        return NULL;
    return &rp->sessions[id - rp->base - 1];
}

static pt_session *replay_session(replay *rp, uint64_t id)
{
    pt_session **at = pt__replay_session_at(rp, id);

    return at ? *at : NULL;
}

static uint64_t answer_value(replay *rp, Pythread__JournalRecord__Type type)
{
    record *r = replay_answer(rp, type);
    uint64_t v = r ? r->value : 0;

    if (r)
        pythread__journal_record__free_unpacked(r, NULL);
    return v;
}

static uint32_t rep_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    (void)kind, (void)owned, (void)uid, (void)gid, (void)mode;
    return (uint32_t)answer_value(ctx, PYTHREAD__JOURNAL_RECORD__TYPE__CELL);
}

static void view_in(replay *rp, const Pythread__JournalView *m, pt_core_fast_view *v)
{
    *v = (pt_core_fast_view){
        .keep = m->keep,
        .holder = replay_session(rp, m->holder),
        .thread = m->thread,
        .depth = m->depth,
        .token = m->token,
        .value = m->value,
        .acquires = m->acquires,
        .slot = m->slot,
        .busy = m->busy,
        .many = m->many,
    };
}

static void rep_claim(void *ctx, uint32_t cell, int kind, pt_core_fast_view *v)
{
    replay *rp = ctx;
    record *r = replay_answer(rp, PYTHREAD__JOURNAL_RECORD__TYPE__VIEW);

    (void)cell, (void)kind;
    /* Nothing read: the core keeps what it knows. */
    *v = (pt_core_fast_view){.keep = 1};
    if (r != NULL && r->view != NULL)
        view_in(rp, r->view, v);
    if (r != NULL)
        pythread__journal_record__free_unpacked(r, NULL);
}

static void rep_freed(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
}

static uint32_t rep_slot_new(void *ctx, uint32_t cell)
{
    (void)cell;
    return (uint32_t)answer_value(ctx, PYTHREAD__JOURNAL_RECORD__TYPE__SLOT);
}

static int64_t rep_slot_read(void *ctx, uint32_t slot)
{
    replay *rp = ctx;
    record *r = replay_answer(rp, PYTHREAD__JOURNAL_RECORD__TYPE__SLOT_COUNT);
    int64_t count = r ? r->count : 0;

    (void)slot;
    if (r)
        pythread__journal_record__free_unpacked(r, NULL);
    return count;
}

static void rep_slot_free(void *ctx, uint32_t slot)
{
    (void)ctx, (void)slot;
}

static const pt_core_fast_hooks replaying = {rep_created,   rep_claim,     rep_freed, rep_slot_new,
                                             rep_slot_read, rep_slot_free, NULL};

void pt__journal_who_of(const Pythread__JournalResume *m, pt_journal_who *who)
{
    memset(who, 0, sizeof(*who));
    who->start_time = m->start_time;
    if (m->has_key && m->key.len == sizeof(who->key))
        memcpy(who->key, m->key.data, sizeof(who->key));
}

static int session_add(replay *rp, const record *r)
{
    pt_peer peer = {.pid = r->pid, .uid = r->uid, .gid = r->gid};
    pt_session **grown;
    pt_session *s;

    if (r->session != rp->base + rp->nsessions + 1)
        return -1; /* ids are given in order: a record is missing */
    grown = realloc(rp->sessions, (rp->nsessions + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    rp->sessions = grown;
    s = pt_core_session_new(rp->core, &peer, NULL);
    if (s == NULL || pt_core_session_id(s) != r->session)
        return -1;
    rp->sessions[rp->nsessions++] = s;
    if (rp->hooks.session_new != NULL) {
        pt_journal_who who;

        if (r->resume != NULL)
            pt__journal_who_of(r->resume, &who);
        rp->hooks.session_new(rp->hooks.ctx, s, r->resume != NULL ? &who : NULL);
    }
    return 0;
}

static void limits_give(replay *rp, const record *r)
{
    const Pythread__JournalLimits *m = r->limits;
    pt_core_limits l;

    if (m == NULL) {
        pt__replay_fail(rp, "limits missing");
        return;
    }
    l = (pt_core_limits){
        m->max_objects,         m->max_handles_per_session, m->max_waiters_per_session,
        m->max_objects_per_uid, m->max_handles_per_uid,     m->max_waiters_per_uid};
    pt_core_set_limits(rp->core, &l);
}

static void call_give(replay *rp, const record *r, pt_session *s)
{
    pt_call call;

    pt_request_call(r->request, &call);
    pt_core_call(rp->core, s, &call, r->now);
}

static void session_end(replay *rp, pt_session *s, uint64_t now)
{
    *pt__replay_session_at(rp, pt_core_session_id(s)) = NULL;
    if (rp->hooks.session_end != NULL)
        rp->hooks.session_end(rp->hooks.ctx, s);
    pt_core_session_end(rp->core, s, now);
}

/* A RECLAIMS record: its reclaims wait for the RESTART after it. They
 * name sessions that exist. */
static void reclaims_take(replay *rp, const record *r)
{
    pt_core_reclaim *grown;

    if (r->n_reclaims > SIZE_MAX / sizeof(*grown) - rp->nreclaims ||
        (grown = realloc(rp->reclaims, (rp->nreclaims + r->n_reclaims) * sizeof(*grown))) == NULL) {
        pt__replay_fail(rp, "out of memory");
        return;
    }
    rp->reclaims = grown;
    for (size_t i = 0; i < r->n_reclaims; i++) {
        const Pythread__JournalReclaim *m = r->reclaims[i];
        pt_session *s = replay_session(rp, m->session);

        if (s == NULL || m->state < PT_RECLAIM_UNKNOWN || m->state > PT_RECLAIM_SLOT) {
            pt__replay_fail(rp, "a reclaim of no session");
            return;
        }
        rp->reclaims[rp->nreclaims++] =
            (pt_core_reclaim){s, m->handle, m->state, m->thread, m->depth, m->token, m->value};
    }
}

/* A restart written before sessions were kept ends every one. */
static void restart_give(replay *rp, const record *r)
{
    pt_core_restart(rp->core, r->now, r->value, rp->reclaims, rp->nreclaims);
    rp->nreclaims = 0;
    for (size_t i = 0; r->count != RESTART_KEEPS && i < rp->nkept; i++) {
        if (rp->kept[i].s != NULL)
            session_end(rp, rp->kept[i].s, r->now);
    }
    for (size_t i = 0; r->count != RESTART_KEEPS && i < rp->nsessions; i++) {
        if (rp->sessions[i] != NULL)
            session_end(rp, rp->sessions[i], r->now);
    }
}

static int is_image(const record *r)
{
    switch (r->type) {
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_HEAD:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_SESSION:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_LINKS:
        return 1;
    default:
        return 0;
    }
}

/* One entry, its hooks answered from the records after it. */
static void entry_give(replay *rp, const record *r)
{
    pt_session *s;

    if (rp->loading && !is_image(r))
        pt__replay_image_end(rp);
    s = replay_session(rp, r->session);

    switch (r->type) {
    case PYTHREAD__JOURNAL_RECORD__TYPE__START:
        pt_core_set_token_base(rp->core, r->value);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_NEW:
        if (session_add(rp, r) < 0)
            pt__replay_fail(rp, "a session out of order");
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__SESSION_END:
    case PYTHREAD__JOURNAL_RECORD__TYPE__CALL:
        if (s == NULL || (r->type == PYTHREAD__JOURNAL_RECORD__TYPE__CALL &&
                          (!r->request || pt_wire_request_check(r->request)))) {
            pt__replay_fail(rp, "an entry of no session, or a request no client could send");
        } else if (r->type == PYTHREAD__JOURNAL_RECORD__TYPE__CALL) {
            call_give(rp, r, s);
        } else {
            session_end(rp, s, r->now);
        }
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__EXPIRE:
        pt_core_expire(rp->core, r->now);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__CLAIM_ALL:
        pt_core_fast_claim_all(rp->core);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__WORDS_LOST:
        pt_core_words_lost(rp->core);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_HEAD:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_SESSION:
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_LINKS:
        pt__replay_image(rp, r);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__LIMITS:
        limits_give(rp, r);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__RECLAIMS:
        reclaims_take(rp, r);
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__RESTART:
        restart_give(rp, r);
        break;
    default:
        pt__replay_fail(rp, "a hook's answer where an entry was due");
        break;
    }
}

int pt_journal_replay(pt_core *core, const uint8_t *buf, size_t len,
                      const pt_journal_replay_hooks *hooks, pt_journal_replayed *out, char *err,
                      size_t errlen)
{
    replay rp = {.core = core, .buf = buf, .len = len, .out = out, .err = err, .errlen = errlen};
    pt_core_fast_state st;
    record *r;

    *out = (pt_journal_replayed){0};
    if (hooks != NULL)
        rp.hooks = *hooks;
    pt_core_set_fast_hooks(core, &replaying, &rp);
    while ((r = replay_next(&rp)) != NULL) {
        entry_give(&rp, r);
        pythread__journal_record__free_unpacked(r, NULL);
        /* the publish the daemon makes after every entry */
        while (pt_core_fast_next(core, &st))
            ;
        if (rp.failed)
            break;
        out->entries++;
        out->used = rp.pos;
    }
    if (rp.loading)
        pt__replay_image_end(&rp);
    free(rp.sessions);
    free(rp.kept);
    free(rp.reclaims);
    pt_core_set_fast_hooks(core, &(pt_core_fast_hooks){0}, NULL);
    return rp.failed ? -1 : 0;
}
