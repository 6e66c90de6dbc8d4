/*
 * journal_image.c - the snapshot: a core, sessions and all, written as
 * records (IMAGE_HEAD, an IMAGE per object, an IMAGE_SESSION per session,
 * IMAGE_LINKS per object with holders or waiters) and loaded from them
 * into a fresh core (core.h, "Images"). Each record is the core's image
 * struct in protobuf clothes; nothing here decides anything.
 */
#include <stdlib.h>
#include <string.h>

#include "journal_int.h"

/* ------------------------------------------------------------------ */
/* Out                                                                 */
/* ------------------------------------------------------------------ */

#define COUNTERS 6

static void image_put(void *ctx, const pt_core_image *im)
{
    pt_journal *j = ctx;
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalImage m = PYTHREAD__JOURNAL_IMAGE__INIT;
    const pt_core_counters *k = &im->counters;
    uint64_t counters[COUNTERS] = {k->acquires, k->contended,    k->handed,
                                   k->timeouts, k->longest_wait, k->longest_hold};

    m.has_serial = m.has_name = m.has_kind = m.has_transient = m.has_unlinked = 1;
    m.has_anonymous = m.has_token_given = m.has_mode = m.has_uid = m.has_gid = 1;
    m.has_fast = m.has_token = m.has_lock_serial = m.has_value = m.has_initial = 1;
    m.has_owned = m.has_set = m.has_parties = m.has_timeout = m.has_state = 1;
    m.has_reason = m.has_status = 1;
    m.has_deadlock = m.has_deadlock_found = im->deadlock != 0;
    m.deadlock = im->deadlock;
    m.deadlock_found = im->deadlock_found;
    m.serial = im->serial;
    m.name.data = (uint8_t *)im->name;
    m.name.len = im->name_len;
    m.kind = im->kind;
    m.transient = im->transient != 0;
    m.unlinked = im->unlinked != 0;
    m.anonymous = im->anonymous != 0;
    m.token_given = im->token_given != 0;
    m.mode = im->mode;
    m.uid = im->uid;
    m.gid = im->gid;
    m.fast = im->fast;
    m.token = im->token;
    m.n_counters = COUNTERS;
    m.counters = counters;
    m.lock_serial = im->lock_serial;
    m.value = im->value;
    m.initial = im->initial;
    m.owned = im->owned != 0;
    m.set = im->set != 0;
    m.parties = im->parties;
    m.timeout = im->timeout;
    m.state = im->state;
    m.reason = im->reason;
    m.status = im->status;
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE;
    r.image = &m;
    pt__journal_put(j, &r);
}

typedef struct snap {
    pt_journal *j;
    pt_journal_who_fn who;
    void *who_ctx;
} snap;

/* n messages of size each and the array of pointers to them, in one block
 * (protobuf-c's repeated message fields want the pointers). */
static void **msgs(size_t n, size_t size)
{
    void **ptrs = calloc(1, (n ? n : 1) * (sizeof(void *) + size));
    char *at = (char *)(ptrs + n);

    for (size_t i = 0; ptrs != NULL && i < n; i++)
        ptrs[i] = at + i * size;
    return ptrs;
}

static void hold_out(const pt_core_image_hold *h, Pythread__JournalHold *m)
{
    pythread__journal_hold__init(m);
    m->has_serial = m->has_thread = m->has_depth = m->has_since = 1;
    m->serial = h->serial;
    m->thread = h->thread;
    m->depth = h->depth;
    m->since = h->since;
}

static void semhold_out(const pt_core_image_semhold *h, Pythread__JournalSemHold *m)
{
    pythread__journal_sem_hold__init(m);
    m->has_serial = m->has_count = m->has_seen = m->has_slot = m->has_opens = 1;
    m->has_unsure = 1;
    m->serial = h->serial;
    m->count = h->count;
    m->seen = h->seen;
    m->slot = h->slot;
    m->opens = h->opens;
    m->unsure = h->unsure != 0;
}

static void run_out(const pt_core_image_run *h, Pythread__JournalRun *m)
{
    pythread__journal_run__init(m);
    m->has_serial = m->has_handle = m->has_index = 1;
    m->serial = h->serial;
    m->handle = h->handle;
    m->index = h->index;
}

static void session_fill(const snap *x, const pt_core_image_session *im,
                         Pythread__JournalSession *m, Pythread__JournalResume *rm,
                         pt_journal_who *who)
{
    m->has_id = m->has_pid = m->has_uid = m->has_gid = 1;
    m->id = im->id;
    m->pid = im->peer.pid;
    m->uid = im->peer.uid;
    m->gid = im->peer.gid;
    m->n_handles = im->nhandles;
    m->handles = (uint64_t *)im->handles;
    m->n_free = im->nfree;
    m->free = (uint32_t *)im->free;
    if (x->who == NULL || x->who(x->who_ctx, im->session, who) < 0)
        return;
    rm->has_start_time = rm->has_key = 1;
    rm->start_time = who->start_time;
    rm->key.data = who->key;
    rm->key.len = sizeof(who->key);
    m->resume = rm;
}

static int session_put(void *ctx, const pt_core_image_session *im)
{
    const snap *x = ctx;
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalSession m = PYTHREAD__JOURNAL_SESSION__INIT;
    Pythread__JournalResume rm = PYTHREAD__JOURNAL_RESUME__INIT;
    pt_journal_who who;
    void **locks = msgs(im->nlocks, sizeof(Pythread__JournalHold));
    void **sems = msgs(im->nsems, sizeof(Pythread__JournalSemHold));
    void **runs = msgs(im->nruns, sizeof(Pythread__JournalRun));
    uint64_t lost = pt_journal_lost(x->j);

    if (locks && sems && runs) {
        session_fill(x, im, &m, &rm, &who);
        for (size_t i = 0; i < im->nlocks; i++)
            hold_out(&im->locks[i], locks[i]);
        for (size_t i = 0; i < im->nsems; i++)
            semhold_out(&im->sems[i], sems[i]);
        for (size_t i = 0; i < im->nruns; i++)
            run_out(&im->runs[i], runs[i]);
        m.n_locks = im->nlocks;
        m.locks = (Pythread__JournalHold **)locks;
        m.n_sems = im->nsems;
        m.sems = (Pythread__JournalSemHold **)sems;
        m.n_runs = im->nruns;
        m.runs = (Pythread__JournalRun **)runs;
        r.type = PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_SESSION;
        r.image_session = &m;
        pt__journal_put(x->j, &r);
    }
    free(locks);
    free(sems);
    free(runs);
    return locks && sems && runs && pt_journal_lost(x->j) == lost ? 0 : -1;
}

static void waiter_out(const pt_core_image_waiter *w, Pythread__JournalWaiter *m)
{
    pythread__journal_waiter__init(m);
    m->has_session = m->has_id = m->has_thread = m->has_deadline = m->has_seq = 1;
    m->has_since = m->has_target = m->has_handle = m->has_depth = m->has_index = 1;
    m->has_kind = m->has_notified = m->has_has_action = m->has_watch = m->has_spare = 1;
    m->has_timeout = m->has_fail_deadlock = 1;
    m->session = w->session;
    m->id = w->id;
    m->thread = w->thread;
    m->deadline = w->deadline;
    m->seq = w->seq;
    m->since = w->since;
    m->target = w->target;
    m->handle = w->handle;
    m->depth = w->depth;
    m->index = w->index;
    m->kind = w->kind;
    m->notified = w->notified != 0;
    m->has_action = w->has_action != 0;
    m->watch = w->watch != 0;
    m->spare = w->spare != 0;
    m->fail_deadlock = w->fail_deadlock != 0;
    m->timeout = w->timeout;
}

static void **waiters_out(const pt_core_image_waiter *v, size_t n)
{
    void **ptrs = msgs(n, sizeof(Pythread__JournalWaiter));

    for (size_t i = 0; ptrs != NULL && i < n; i++)
        waiter_out(&v[i], ptrs[i]);
    return ptrs;
}

static int links_put(void *ctx, const pt_core_image_links *l)
{
    const snap *x = ctx;
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalLinks m = PYTHREAD__JOURNAL_LINKS__INIT;
    void **queue = waiters_out(l->queue, l->nqueue);
    void **entrants = waiters_out(l->entrants, l->nentrants);
    uint64_t lost = pt_journal_lost(x->j);

    if (queue && entrants) {
        m.has_serial = m.has_count = m.has_pending = m.has_doom = 1;
        m.serial = l->serial;
        m.n_holders = l->nholders;
        m.holders = (uint64_t *)l->holders;
        m.n_queue = l->nqueue;
        m.queue = (Pythread__JournalWaiter **)queue;
        m.n_entrants = l->nentrants;
        m.entrants = (Pythread__JournalWaiter **)entrants;
        m.count = l->count;
        m.pending = l->pending;
        m.doom = l->doom != 0;
        r.type = PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_LINKS;
        r.links = &m;
        pt__journal_put(x->j, &r);
    }
    free(queue);
    free(entrants);
    return queue && entrants && pt_journal_lost(x->j) == lost ? 0 : -1;
}

int pt_journal_snapshot(pt_journal *j, const pt_core *core, pt_journal_who_fn who, void *ctx)
{
    record r = PYTHREAD__JOURNAL_RECORD__INIT;
    Pythread__JournalHead m = PYTHREAD__JOURNAL_HEAD__INIT;
    snap x = {j, who, ctx};
    pt_core_image_head h;
    uint64_t lost = pt_journal_lost(j);

    if (pt_core_image_head_get(core, &h) < 0)
        return -1;
    m.has_token_floor = m.has_next_serial = m.has_next_session_id = m.has_seq = 1;
    m.has_calls = m.has_deadlocks = 1;
    m.deadlocks = h.deadlocks;
    m.token_floor = h.token_floor;
    m.next_serial = h.next_serial;
    m.next_session_id = h.next_session_id;
    m.seq = h.seq;
    m.calls = h.calls;
    r.type = PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_HEAD;
    r.head = &m;
    pt__journal_put(j, &r);
    pt_core_image_each(core, image_put, j);
    if (pt_core_image_sessions_each(core, session_put, &x) < 0 ||
        pt_core_image_links_each(core, links_put, &x) < 0)
        return -1;
    return pt_journal_lost(j) == lost ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* In                                                                  */
/* ------------------------------------------------------------------ */

static int head_load(replay *rp, const Pythread__JournalHead *m)
{
    pt_core_image_head h = {m->token_floor, m->next_serial, m->next_session_id,
                            m->seq,         m->calls,       m->deadlocks};

    if (rp->nsessions != 0 || rp->nkept != 0 || rp->loading ||
        pt_core_image_head_load(rp->core, &h) < 0)
        return -1;
    rp->base = m->next_session_id;
    rp->loading = 1;
    return 0;
}

static int image_load(replay *rp, const Pythread__JournalImage *m)
{
    pt_core_image im = {
        .serial = m->serial,
        .name = (const char *)m->name.data,
        .name_len = m->name.len,
        .kind = m->kind,
        .transient = m->transient,
        .unlinked = m->unlinked,
        .anonymous = m->anonymous,
        .token_given = m->token_given,
        .mode = m->mode,
        .uid = m->uid,
        .gid = m->gid,
        .fast = m->fast,
        .token = m->token,
        .lock_serial = m->lock_serial,
        .value = m->value,
        .initial = m->initial,
        .owned = m->owned,
        .set = m->set,
        .parties = m->parties,
        .timeout = m->timeout,
        .state = m->state,
        .reason = m->reason,
        .status = m->status,
        .deadlock = m->deadlock,
        .deadlock_found = m->deadlock_found,
    };
    if (m->n_counters != COUNTERS || sizeof(im.counters) != COUNTERS * sizeof(uint64_t))
        return -1;
    memcpy(&im.counters, m->counters, sizeof(im.counters));
    return pt_core_image_load(rp->core, &im);
}

static int kept_add(replay *rp, pt_session *s, const Pythread__JournalResume *resume)
{
    replay_kept *grown = realloc(rp->kept, (rp->nkept + 1) * sizeof(*grown));
    pt_journal_who who;

    if (grown == NULL)
        return -1;
    rp->kept = grown;
    rp->kept[rp->nkept++] = (replay_kept){pt_core_session_id(s), s}; /* ids ascend */
    if (rp->hooks.session_new != NULL) {
        if (resume != NULL)
            pt__journal_who_of(resume, &who);
        rp->hooks.session_new(rp->hooks.ctx, s, resume != NULL ? &who : NULL);
    }
    return 0;
}

/* Holds, permits and runs in the core's terms, in one block. */
typedef struct session_in {
    pt_core_image_hold *locks;
    pt_core_image_semhold *sems;
    pt_core_image_run *runs;
} session_in;

static void holds_in(const Pythread__JournalSession *m, session_in *in)
{
    for (size_t i = 0; i < m->n_locks; i++) {
        const Pythread__JournalHold *h = m->locks[i];

        in->locks[i] = (pt_core_image_hold){h->serial, h->thread, h->since, h->depth};
    }
    for (size_t i = 0; i < m->n_sems; i++) {
        const Pythread__JournalSemHold *h = m->sems[i];

        in->sems[i] =
            (pt_core_image_semhold){h->serial, h->count, h->seen, h->slot, h->opens, h->unsure};
    }
    for (size_t i = 0; i < m->n_runs; i++) {
        const Pythread__JournalRun *h = m->runs[i];

        in->runs[i] = (pt_core_image_run){h->serial, h->handle, h->index};
    }
}

static int session_load(replay *rp, const Pythread__JournalSession *m)
{
    session_in in = {
        calloc(m->n_locks + 1, sizeof(*in.locks)),
        calloc(m->n_sems + 1, sizeof(*in.sems)),
        calloc(m->n_runs + 1, sizeof(*in.runs)),
    };
    pt_core_image_session im = {
        .id = m->id,
        .peer = {.pid = m->pid, .uid = m->uid, .gid = m->gid},
        .handles = m->handles,
        .nhandles = (uint32_t)m->n_handles,
        .free = m->free,
        .nfree = (uint32_t)m->n_free,
        .locks = in.locks,
        .nlocks = m->n_locks,
        .sems = in.sems,
        .nsems = m->n_sems,
        .runs = in.runs,
        .nruns = m->n_runs,
    };
    pt_session *s = NULL;

    if (in.locks && in.sems && in.runs && m->n_handles < UINT32_MAX) {
        holds_in(m, &in);
        s = pt_core_image_session_load(rp->core, &im);
    }
    free(in.locks);
    free(in.sems);
    free(in.runs);
    return s != NULL ? kept_add(rp, s, m->resume) : -1;
}

static void waiter_in(const Pythread__JournalWaiter *m, pt_core_image_waiter *w)
{
    *w = (pt_core_image_waiter){
        .session = m->session,
        .id = m->id,
        .thread = m->thread,
        .deadline = m->deadline,
        .seq = m->seq,
        .since = m->since,
        .target = m->target,
        .handle = m->handle,
        .depth = m->depth,
        .index = m->index,
        .kind = m->kind,
        .notified = m->notified,
        .has_action = m->has_action,
        .watch = m->watch,
        .spare = m->spare,
        .fail_deadlock = m->fail_deadlock,
        .timeout = m->timeout,
    };
}

static pt_core_image_waiter *waiters_in(Pythread__JournalWaiter **v, size_t n)
{
    pt_core_image_waiter *w = calloc(n + 1, sizeof(*w));

    for (size_t i = 0; w != NULL && i < n; i++)
        waiter_in(v[i], &w[i]);
    return w;
}

static int links_load(replay *rp, const Pythread__JournalLinks *m)
{
    pt_core_image_links l = {
        .serial = m->serial,
        .holders = m->holders,
        .nholders = m->n_holders,
        .queue = waiters_in(m->queue, m->n_queue),
        .nqueue = m->n_queue,
        .entrants = waiters_in(m->entrants, m->n_entrants),
        .nentrants = m->n_entrants,
        .count = m->count,
        .pending = m->pending,
        .doom = m->doom,
    };
    int rc = l.queue && l.entrants ? pt_core_image_links_load(rp->core, &l) : -1;

    free((void *)l.queue);
    free((void *)l.entrants);
    return rc;
}

void pt__replay_image(replay *rp, const record *r)
{
    int bad;

    switch (r->type) {
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_HEAD:
        bad = r->head == NULL || head_load(rp, r->head) < 0;
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE:
        bad = !rp->loading || r->image == NULL || image_load(rp, r->image) < 0;
        break;
    case PYTHREAD__JOURNAL_RECORD__TYPE__IMAGE_SESSION:
        bad = !rp->loading || r->image_session == NULL || session_load(rp, r->image_session) < 0;
        break;
    default:
        bad = !rp->loading || r->links == NULL || links_load(rp, r->links) < 0;
        break;
    }
    if (bad)
        pt__replay_fail(rp, "a snapshot record that does not fit the state before it");
}

void pt__replay_image_end(replay *rp)
{
    rp->loading = 0;
    if (pt_core_image_finish(rp->core) < 0)
        pt__replay_fail(rp, "a snapshot that does not add up");
}
