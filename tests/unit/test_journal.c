/*
 * test_journal.c - a recorded journal given to a fresh core rebuilds the
 * state of the core that wrote it (daemon/journal.c), for every kind: the
 * objects with their values, holders, waiters in order and counters, and
 * every answer the replay gives is the answer the original gave. A torn or
 * foreign record stops the replay where it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal.h"
#include "journal.pb-c.h"
#include "pythread.h"

/* What a core said and holds, as text, to compare two cores. */
typedef struct text {
    char buf[1 << 16];
    size_t len;
} text;

static void say(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(text *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    t->len += (size_t)vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    assert_true(t->len < sizeof(t->buf));
}

static void sink(void *ctx, pt_session *s, const pt_result *r)
{
    say(ctx, "s%llu #%llu st%d ok%d v%lld t%llu h%u c%d a%d f%u/%u th%llu\n",
        (unsigned long long)pt_core_session_id(s), (unsigned long long)r->id, r->status, r->ok,
        (long long)r->value, (unsigned long long)r->token, r->handle, r->created, r->run_action,
        r->fast, r->fast_slot, (unsigned long long)r->thread);
}

/* The answers to request id in t (0 or 1), and the last one's fields. */
typedef struct heard_answer {
    int ok;
    uint32_t handle;
    uint64_t token, thread;
} heard_answer;

static int answer_in(const text *t, uint64_t id, heard_answer *out)
{
    int n = 0;

    for (const char *p = t->buf; p < t->buf + t->len;) {
        const char *end = strchr(p, '\n');
        unsigned long long sid, rid, token, thread;
        int st, ok, c, a;
        unsigned h;
        long long v;

        assert_non_null(end);
        if (sscanf(p, "s%llu #%llu st%d ok%d v%lld t%llu h%u c%d a%d", &sid, &rid, &st, &ok, &v,
                   &token, &h, &c, &a) == 9 &&
            rid == id) {
            const char *th = strstr(p, " th");

            assert_true(th != NULL && th < end);
            assert_int_equal(sscanf(th, " th%llu", &thread), 1);
            *out = (heard_answer){.ok = ok, .handle = h, .token = token, .thread = thread};
            n++;
        }
        p = end + 1;
    }
    return n;
}

/* Fast hooks with no memory behind them: cells and slots are numbers, and
 * every claim finds the core's own state. */
static uint32_t cells;

static uint32_t fake_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    (void)ctx, (void)kind, (void)owned, (void)uid, (void)gid, (void)mode;
    return ++cells;
}

static void fake_claim(void *ctx, uint32_t cell, int kind, pt_core_fast_view *v)
{
    (void)ctx, (void)cell, (void)kind;
    *v = (pt_core_fast_view){.keep = 1};
}

static void fake_freed(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
}

static uint32_t fake_slot_new(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
    return 1000 + ++cells;
}

static int64_t fake_slot_read(void *ctx, uint32_t slot)
{
    (void)ctx, (void)slot;
    return 0;
}

static void fake_slot_free(void *ctx, uint32_t slot)
{
    (void)ctx, (void)slot;
}

static const pt_core_fast_hooks fake = {fake_created,   fake_claim,     fake_freed, fake_slot_new,
                                        fake_slot_read, fake_slot_free, NULL};

/* The core that writes the journal, its sessions and clock. */
static struct {
    pt_core *core;
    pt_journal *j;
    text said;
    pt_session *s[4];
    uint64_t now, id;
} W;

/* What the daemon does after every entry: publish what the core claimed
 * (here the words are only numbers). The replay does the same. */
static void published(void)
{
    pt_core_fast_state st;

    while (pt_core_fast_next(W.core, &st))
        ;
}

static void req_send(int si, Pythread__Request *req)
{
    req->id = ++W.id;
    pt_journal_call(W.j, W.core, W.s[si], req, W.now);
    published();
}

static void op_open(int si, const char *name, int kind, int64_t value, uint32_t parties,
                    uint32_t lock_handle)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs open = PYTHREAD__OPEN_ARGS__INIT;

    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = strlen(name);
    open.has_kind = open.has_value = open.has_parties = open.has_lock_handle = 1;
    open.kind = kind;
    open.value = value;
    open.parties = parties;
    open.lock_handle = lock_handle;
    req.open = &open;
    req_send(si, &req);
}

/* An operation on handle h by thread 1 of session si. */
static void op(int si, Pythread__Op o, uint32_t h, double timeout, uint32_t count)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.op = o;
    req.has_handle = req.has_thread = req.has_timeout = req.has_count = 1;
    req.handle = h;
    req.thread = 1;
    req.timeout = timeout;
    req.count = count;
    req_send(si, &req);
}

/* Sessions of even pids may be taken up after a restart (who: start time
 * pid * 10, a key of the pid's bytes); odd ones may not. */
static void session_new(int si, pid_t pid)
{
    pt_peer peer = {.pid = pid, .uid = 1000, .gid = 1000};
    pt_journal_who who = {.start_time = (uint64_t)pid * 10};

    memset(who.key, pid & 0xff, sizeof(who.key));
    W.s[si] = pt_journal_session_new(W.j, W.core, &peer, NULL, pid % 2 ? NULL : &who);
    assert_non_null(W.s[si]);
}

/* A restart whose sessions nobody took up: each ends, as the daemon ends
 * them after the grace. */
static void restart_alone(uint64_t now)
{
    pt_journal_restart(W.j, W.core, now, 0, NULL, 0);
    published();
    for (int i = 0; i < 4; i++) {
        if (W.s[i] != NULL)
            pt_journal_session_end(W.j, W.core, W.s[i], now);
        W.s[i] = NULL;
        published();
    }
}

/*
 * Every kind, with holders, waiters in a queue, a timeout, a notify, a
 * broken and a filling barrier, a session that ends holding and waiting,
 * an unlinked object still open, and inspection's claim of every word.
 * Handles in each session follow its opens: 1, 2, ...
 */
static void script(void)
{
    for (int i = 0; i < 4; i++)
        session_new(i, 100 + i);
    /* session 0: lock 1, rlock 2, cond 3 (over rlock), sem 4, bsem 5, event 6, barrier 7 */
    op_open(0, "lock", PT_KIND_LOCK, 1, 0, 0);
    op_open(0, "rlock", PT_KIND_RLOCK, 1, 0, 0);
    op_open(0, "cond", PT_KIND_CONDITION, 1, 0, 2);
    op_open(0, "sem", PT_KIND_SEMAPHORE, 2, 0, 0);
    op_open(0, "bsem", PT_KIND_BOUNDED_SEMAPHORE, 1, 0, 0);
    op_open(0, "event", PT_KIND_EVENT, 1, 0, 0);
    op_open(0, "barrier", PT_KIND_BARRIER, 1, 3, 0);
    op_open(0, "broken", PT_KIND_BARRIER, 1, 2, 0);
    for (int i = 1; i < 4; i++) {
        op_open(i, "lock", PT_KIND_LOCK, 1, 0, 0);
        op_open(i, "sem", PT_KIND_SEMAPHORE, 2, 0, 0);
        op_open(i, "bsem", PT_KIND_BOUNDED_SEMAPHORE, 1, 0, 0);
        op_open(i, "event", PT_KIND_EVENT, 1, 0, 0);
        op_open(i, "barrier", PT_KIND_BARRIER, 1, 3, 0);
    }
    W.now = 1000;
    op(0, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1); /* lock held by 0 */
    op(1, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1); /* 1 and 2 queue */
    op(2, PYTHREAD__OP__OP_ACQUIRE, 1, 5.0, 1);
    op(3, PYTHREAD__OP__OP_ACQUIRE, 1, 0.5, 1);
    op(0, PYTHREAD__OP__OP_ACQUIRE, 2, -1, 1); /* rlock twice */
    op(0, PYTHREAD__OP__OP_ACQUIRE, 2, -1, 1);
    op(0, PYTHREAD__OP__OP_COND_WAIT, 3, -1, 1); /* waits, rlock let go */
    op(0, PYTHREAD__OP__OP_ACQUIRE, 4, -1, 2);   /* sem 2 -> 0 */
    op(0, PYTHREAD__OP__OP_ACQUIRE, 4, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 2, -1, 1); /* session 1 thread 1 waits for sem */
    op(1, PYTHREAD__OP__OP_ACQUIRE, 3, -1, 1); /* bsem held by 1 */
    op(2, PYTHREAD__OP__OP_ACQUIRE, 3, 2.0, 1);
    op(2, PYTHREAD__OP__OP_EVENT_WAIT, 4, -1, 1);
    op(3, PYTHREAD__OP__OP_EVENT_SET, 4, -1, 1); /* wakes 2's wait... which is parked behind */
    op(1, PYTHREAD__OP__OP_BARRIER_WAIT, 5, -1, 1);
    op(0, PYTHREAD__OP__OP_BARRIER_WAIT, 8, 1.0, 1); /* times out: broken */
    W.now = 2 * PT_NS_PER_SEC;
    pt_journal_expire(W.j, W.core, W.now);
    published();
    pt_journal_claim_all(W.j, W.core);
    published();
    op(0, PYTHREAD__OP__OP_RELEASE, 1, -1, 1); /* lock to session 1 */
    op(0, PYTHREAD__OP__OP_RELEASE, 4, -1, 1); /* a permit to 1's waiter */
    op(0, PYTHREAD__OP__OP_UNLINK, 0, -1, 1);
    {
        Pythread__Request req = PYTHREAD__REQUEST__INIT;

        req.op = PYTHREAD__OP__OP_UNLINK;
        req.has_name = 1;
        req.name.data = (uint8_t *)"event";
        req.name.len = 5;
        req_send(3, &req);
    }
    W.now = 3 * PT_NS_PER_SEC;
    pt_journal_session_end(W.j, W.core, W.s[1], W.now); /* holds the lock and bsem */
    W.s[1] = NULL;
    published();
    pt_journal_expire(W.j, W.core, W.now + 10 * PT_NS_PER_SEC);
    published();
}

/* Everything inspection tells of a core, as text. */
static void party_say(void *ctx, const pt_core_party *p)
{
    say(ctx, "  role %d s%llu th%llu n%llu since %llu%s\n", p->role,
        (unsigned long long)pt_core_session_id(p->session), (unsigned long long)p->thread,
        (unsigned long long)p->count, (unsigned long long)p->since,
        p->deadlock ? " in deadlock" : "");
}

/* A standing deadlock: its number, when, and who waits for what. */
static void cycle_say(void *ctx, const pt_core_cycle *cy)
{
    say(ctx, "deadlock %llu at %llu n%zu:", (unsigned long long)cy->id,
        (unsigned long long)cy->found, cy->n);
    for (size_t i = 0; i < cy->shown; i++)
        say(ctx, " s%llu/th%llu/#%llu->%.*s%s",
            (unsigned long long)pt_core_session_id(cy->members[i].session),
            (unsigned long long)cy->members[i].thread, (unsigned long long)cy->members[i].request,
            (int)cy->members[i].waits_len, cy->members[i].waits,
            cy->members[i].reacquire ? "[r]" : "");
    say(ctx, "\n");
}

static int object_say(void *ctx, const pt_core_object_detail *d)
{
    text *t = ctx;
    const pt_state *st = &d->info.state;
    const pt_core_counters *k = &d->counters;

    say(t, "%.*s kind %d tr%d ul%d refs %u serial %llu waiters %u owned %d\n",
        (int)d->info.name_len, d->info.name, d->info.kind, d->info.transient, d->info.unlinked,
        d->info.refs, (unsigned long long)d->serial, d->waiters, d->owned);
    if (d->deadlock != 0)
        say(t, "  in deadlock %llu\n", (unsigned long long)d->deadlock);
    say(t, "  locked %d v %lld init %lld set %d parties %u waiting %u broken %d token %llu\n",
        st->locked, (long long)st->value, (long long)st->initial, st->is_set, st->parties,
        st->n_waiting, st->broken, (unsigned long long)st->token);
    say(t, "  acq %llu cont %llu handed %llu to %llu wait %llu hold %llu\n",
        (unsigned long long)k->acquires, (unsigned long long)k->contended,
        (unsigned long long)k->handed, (unsigned long long)k->timeouts,
        (unsigned long long)k->longest_wait, (unsigned long long)k->longest_hold);
    return 0;
}

static void core_say(pt_core *core, text *t, uint64_t now)
{
    static const char *names[] = {"lock",   "rlock", "cond", "sem", "bsem", "barrier",
                                  "broken", "hl",    "wl",   "rl",  "vs",   "da",
                                  "db",     "dc",    "dd",   "dx",  "cv"};
    pt_core_stats st;

    pt_core_get_stats(core, &st);
    say(t, "objects %llu sessions %llu waiters %llu handles %llu deadlocks %llu standing %llu\n",
        (unsigned long long)st.objects, (unsigned long long)st.sessions,
        (unsigned long long)st.waiters, (unsigned long long)st.handles,
        (unsigned long long)st.deadlocks, (unsigned long long)st.deadlocks_standing);
    assert_int_equal(pt_core_deadlocks_each(core, cycle_say, t), 0);
    pt_core_inspect_objects(core, NULL, 0, now, object_say, t);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        pt_core_object_detail d;

        say(t, "%s:\n", names[i]);
        pt_core_inspect_object(core, NULL, names[i], strlen(names[i]), now, &d, party_say, t);
    }
}

static text replay_said, replay_state, orig_state;

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    cells = 0;
    W.j = pt_journal_new();
    W.core = pt_core_new(NULL, sink, &W.said);
    assert_non_null(W.j);
    assert_non_null(W.core);
    pt_journal_start(W.j, W.core, 5000);
    pt_journal_set_fast_hooks(W.j, W.core, &fake, NULL);
    replay_said.len = replay_state.len = orig_state.len = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pt_core_free(W.core);
    pt_journal_free(W.j);
    return 0;
}

/* Replay the journal so far into a fresh core. */
static pt_core *replayed(size_t cut, int *rc, pt_journal_replayed *out)
{
    pt_core *core = pt_core_new(NULL, sink, &replay_said);
    char err[160] = "";
    size_t len;
    const uint8_t *buf = pt_journal_bytes(W.j, &len);

    assert_non_null(core);
    *rc = pt_journal_replay(core, buf, len - cut, NULL, out, err, sizeof(err));
    if (*rc != 0)
        print_message("replay: %s\n", err);
    return core;
}

/* The journal's first len bytes replayed into a fresh core, every one of
 * them used, give the answers said, in the same order, and the state
 * state (as core_say tells it at now; the replay's in replay_state). */
static pt_core *replay_gives(size_t len, const text *said, const text *state, uint64_t now,
                             pt_journal_replayed *out)
{
    pt_core *copy;
    size_t all;
    int rc;

    pt_journal_bytes(W.j, &all);
    replay_said.len = replay_state.len = 0;
    copy = replayed(all - len, &rc, out);
    assert_int_equal(rc, 0);
    assert_int_equal(out->used, len);
    assert_int_equal(replay_said.len, said->len);
    assert_memory_equal(replay_said.buf, said->buf, said->len);
    core_say(copy, &replay_state, now);
    if (strcmp(state->buf, replay_state.buf) != 0)
        fail_msg("state after %zu bytes differs:\n--- written\n%s--- replayed\n%s", len, state->buf,
                 replay_state.buf);
    return copy;
}

/* The whole journal replayed gives the writer's answers and state now (in
 * orig_state). */
static pt_core *replay_same(pt_journal_replayed *out)
{
    size_t len;

    pt_journal_bytes(W.j, &len);
    core_say(W.core, &orig_state, W.now);
    return replay_gives(len, &W.said, &orig_state, W.now, out);
}

/* What a replay told of its sessions. */
typedef struct heard {
    int made, ended, resumable;
    uint64_t start_times;
} heard;

static void heard_new(void *ctx, pt_session *s, const pt_journal_who *who)
{
    heard *h = ctx;

    (void)s;
    h->made++;
    if (who != NULL) {
        h->resumable++;
        h->start_times += who->start_time;
        assert_int_equal(who->key[0], (uint8_t)(who->start_time / 10));
    }
}

static void heard_end(void *ctx, pt_session *s)
{
    (void)s;
    ((heard *)ctx)->ended++;
}

/* The type of the record at pos in buf, 0 past the end. */
static int record_type(const uint8_t *buf, size_t len, size_t pos)
{
    Pythread__JournalRecord *r;
    size_t n;
    int type;

    if (pos + 4 > len)
        return 0;
    n = (size_t)buf[pos] << 24 | (size_t)buf[pos + 1] << 16 | (size_t)buf[pos + 2] << 8 |
        buf[pos + 3];
    r = pythread__journal_record__unpack(NULL, n, buf + pos + 4);
    assert_non_null(r);
    type = r->type;
    pythread__journal_record__free_unpacked(r, NULL);
    return type;
}

/* Sessions of even pids may be taken up (as session_new records them). */
static int snap_who(void *ctx, const pt_session *s, pt_journal_who *out)
{
    pid_t pid = pt_core_session_peer(s)->pid;

    (void)ctx;
    if (pid % 2)
        return -1;
    out->start_time = (uint64_t)pid * 10;
    memset(out->key, pid & 0xff, sizeof(out->key));
    return 0;
}

/* The journal cut after `used` bytes, replayed, imaged as a snapshot, and
 * the snapshot followed by the rest of the journal replayed into another
 * fresh core: that core heard what the writer said after the cut and ends
 * in the writer's state. */
static void snapshot_at(const uint8_t *buf, size_t len, size_t used, const char *final)
{
    static text before, after, state;
    pt_core *head = pt_core_new(NULL, sink, &before), *tail;
    pt_journal *snap = pt_journal_new();
    pt_journal_replayed out;
    heard h = {0};
    pt_journal_replay_hooks hooks = {heard_new, heard_end, &h};
    const uint8_t *sbuf;
    uint8_t *joined;
    char err[160] = "";
    size_t slen;

    before.len = after.len = state.len = 0;
    assert_int_equal(pt_journal_replay(head, buf, used, NULL, &out, err, sizeof(err)), 0);
    assert_int_equal(pt_journal_snapshot(snap, head, snap_who, NULL), 0);
    sbuf = pt_journal_bytes(snap, &slen);
    joined = malloc(slen + len - used);
    assert_non_null(joined);
    memcpy(joined, sbuf, slen);
    memcpy(joined + slen, buf + used, len - used);
    tail = pt_core_new(NULL, sink, &after);
    if (pt_journal_replay(tail, joined, slen + len - used, &hooks, &out, err, sizeof(err)) != 0)
        fail_msg("snapshot at byte %zu: %s", used, err);
    assert_int_equal(before.len + after.len, W.said.len);
    assert_memory_equal(after.buf, W.said.buf + before.len, after.len);
    core_say(tail, &state, W.now);
    if (strcmp(final, state.buf) != 0)
        fail_msg("snapshot at byte %zu: state differs:\n--- written\n%s--- from it\n%s", used,
                 final, state.buf);
    pt_core_free(head);
    pt_core_free(tail);
    pt_journal_free(snap);
    free(joined);
}

static int is_answer(int type)
{
    return type == PYTHREAD__JOURNAL_RECORD__TYPE__CELL ||
           type == PYTHREAD__JOURNAL_RECORD__TYPE__VIEW ||
           type == PYTHREAD__JOURNAL_RECORD__TYPE__SLOT ||
           type == PYTHREAD__JOURNAL_RECORD__TYPE__SLOT_COUNT;
}

/* snapshot_at every whole entry of the journal written so far, but where
 * the daemon never takes one: between a restart's reclaims and the
 * restart, and while the words are lost. Returns how many were checked. */
static int snapshots_hold_at_every_point(void)
{
    static text final;
    const uint8_t *buf;
    size_t len, pos = 0;
    int checked = 0, lost = 0;

    final.len = 0;
    core_say(W.core, &final, W.now);
    buf = pt_journal_bytes(W.j, &len);
    while (pos < len) {
        int type = record_type(buf, len, pos);
        size_t n = (size_t)buf[pos] << 24 | (size_t)buf[pos + 1] << 16 | (size_t)buf[pos + 2] << 8 |
                   buf[pos + 3];
        int next;

        pos += 4 + n;
        lost = type == PYTHREAD__JOURNAL_RECORD__TYPE__WORDS_LOST ? 1
               : type == PYTHREAD__JOURNAL_RECORD__TYPE__RESTART  ? 0
                                                                  : lost;
        next = record_type(buf, len, pos);
        if (lost || next == PYTHREAD__JOURNAL_RECORD__TYPE__RECLAIMS ||
            next == PYTHREAD__JOURNAL_RECORD__TYPE__RESTART || is_answer(next))
            continue; /* inside a restart, or a hook's answer follows */
        snapshot_at(buf, len, pos, final.buf);
        checked++;
    }
    return checked;
}

static void test_replay_rebuilds_every_kind(void **state)
{
    pt_journal_replayed out;
    pt_core *copy;

    (void)state;
    script();
    assert_int_equal(pt_journal_lost(W.j), 0);
    copy = replay_same(&out);
    assert_true(out.entries > 50);
    assert_non_null(strstr(orig_state.buf, "lock kind 1"));
    assert_true(snapshots_hold_at_every_point() > 40);
    if (getenv("PT_JOURNAL_SHOW"))
        assert_non_null(strstr(orig_state.buf, "act kind 7 tr0 ul0 refs 3 serial 1 waiters 3"));
    pt_core_free(copy);
}

/* A restart keeps the sessions and takes what their words said (a hold
 * the journal gave another, a lock now free, an RLock three deep, a
 * semaphore's value, an owned semaphore's slot), then they go on; a replay
 * gives the same answers and state, and tells of every session with how
 * it may be taken up. */
static void test_restart_keeps_sessions_and_reclaims(void **state)
{
    heard h = {0};
    pt_journal_replay_hooks hooks = {heard_new, heard_end, &h};
    pt_core_reclaim rc[6];
    pt_journal_replayed out;
    pt_core *copy;
    const uint8_t *buf;
    char err[160] = "";
    size_t len;

    (void)state;
    session_new(0, 100);
    session_new(1, 101);
    session_new(2, 102);
    /* session 0: lock 1, rlock 2, sem 3, bsem 4; sessions 1 and 2: lock 1 */
    op_open(0, "lock", PT_KIND_LOCK, 1, 0, 0);
    op_open(0, "rlock", PT_KIND_RLOCK, 1, 0, 0);
    op_open(0, "sem", PT_KIND_SEMAPHORE, 3, 0, 0);
    op_open(0, "bsem", PT_KIND_BOUNDED_SEMAPHORE, 2, 0, 0);
    op_open(1, "lock", PT_KIND_LOCK, 1, 0, 0);
    op_open(2, "lock", PT_KIND_LOCK, 1, 0, 0);
    W.now = 1000;
    op(0, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1);    /* 0 holds the lock, says the journal */
    op(1, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1);    /* 1 waits first: handed it in the word */
    op(2, PYTHREAD__OP__OP_ACQUIRE, 1, 100.0, 1); /* 2 waits behind */
    rc[0] = (pt_core_reclaim){W.s[1], 1, PT_RECLAIM_HELD, 1, 1, 9000, 0};
    rc[1] = (pt_core_reclaim){W.s[0], 1, PT_RECLAIM_FREE, 0, 0, 0, 0};
    rc[2] = (pt_core_reclaim){W.s[0], 2, PT_RECLAIM_HELD, 1, 3, 8000, 0};
    rc[3] = (pt_core_reclaim){W.s[0], 3, PT_RECLAIM_VALUE, 0, 0, 0, 1};
    rc[4] = (pt_core_reclaim){W.s[0], 4, PT_RECLAIM_SLOT, 0, 0, 0, 1};
    rc[5] = (pt_core_reclaim){W.s[2], 1, PT_RECLAIM_HELD, 1, 1, 9001, 0}; /* second: loses */
    W.now = 2 * PT_NS_PER_SEC;
    pt_journal_restart(W.j, W.core, W.now, 32768, rc, 6);
    published();
    core_say(W.core, &orig_state, W.now);
    assert_non_null(strstr(orig_state.buf, "sessions 3"));
    /* session 1 holds the lock and its call was answered as handed over */
    assert_non_null(strstr(W.said.buf, "s2 #8 st0 ok1 v0 t9000"));
    assert_non_null(strstr(orig_state.buf, "lock:\n  role 0 s2 th1 n1"));
    assert_non_null(strstr(orig_state.buf, "rlock:\n  role 0 s1 th1 n3"));
    assert_non_null(strstr(orig_state.buf, "bsem:\n  role 0 s1 th0 n1"));
    assert_non_null(strstr(orig_state.buf, "sem kind 4 tr0 ul0 refs 1 serial 3 waiters 0 owned 0\n"
                                           "  locked 0 v 1 "));
    assert_non_null(strstr(orig_state.buf, "bsem kind 5 tr0 ul0 refs 2 serial 4 waiters 0 owned 1\n"
                                           "  locked 0 v 1 "));
    /* the sessions go on: 1 lets go, 2 gets it past the jumped tokens */
    op(1, PYTHREAD__OP__OP_RELEASE, 1, -1, 1);
    assert_non_null(strstr(W.said.buf, "s3 #9 st0 ok1 v0 t"));
    pt_journal_session_end(W.j, W.core, W.s[0], W.now);
    published();
    orig_state.len = 0;
    core_say(W.core, &orig_state, W.now);
    buf = pt_journal_bytes(W.j, &len);
    copy = pt_core_new(NULL, sink, &replay_said);
    if (pt_journal_replay(copy, buf, len, &hooks, &out, err, sizeof(err)) != 0)
        fail_msg("replay: %s", err);
    assert_int_equal(replay_said.len, W.said.len);
    assert_memory_equal(replay_said.buf, W.said.buf, W.said.len);
    core_say(copy, &replay_state, W.now);
    if (strcmp(orig_state.buf, replay_state.buf) != 0)
        fail_msg("state differs:\n--- written\n%s--- replayed\n%s", orig_state.buf,
                 replay_state.buf);
    assert_int_equal(h.made, 3);
    assert_int_equal(h.ended, 1);
    assert_int_equal(h.resumable, 2);
    assert_int_equal(h.start_times, 1000 + 1020);
    pt_core_free(copy);
}

/* An operation by thread th (no timeout): how many answers it had at once
 * (0: it waits), the answer in *a; *id is its request id. */
static int op_answered(int si, Pythread__Op o, uint32_t h, uint32_t count, uint64_t th,
                       uint64_t *id, heard_answer *a)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.op = o;
    req.has_handle = req.has_thread = req.has_timeout = req.has_count = 1;
    req.handle = h;
    req.thread = th;
    req.timeout = -1;
    req.count = count;
    req_send(si, &req);
    *id = W.id;
    return answer_in(&W.said, W.id, a);
}

/*
 * script()'s state (a Condition's waiter, owned permits in slots, barriers)
 * then, in four sessions (three of script() and a new one), threads 11 to
 * 14: "hl" held by A through the daemon with B and C waiting, "wl" held by
 * D with A waiting, "rl" held by C with D waiting, "vs" taken by A with C
 * and B waiting. The restart's reclaims: A's word leaves "hl" free and B's
 * says B holds it (B's waiting call was handed it), D's leaves "wl" free
 * (its waiter A gets it then, past the token jump), C's holds "rl" three
 * deep, and two words give "vs" a value (the first counts). The journal up
 * to the restart and the whole journal, after the sessions went on and
 * one ended, each replay into the writer's answers and state at that
 * point.
 */
static void test_restart_after_script_replays_at_each_point(void **state)
{
    enum { A = 0, B = 2, C = 3, D = 1, HL = 0, WL, RL, VS };
    static const char *objs[] = {"hl", "wl", "rl", "vs"};
    static const int who[] = {A, B, C, D};
    static text at_restart, said_at_restart;
    const uint64_t jump = 4096;
    uint32_t h[4][4];
    uint64_t id, b_hl, c_hl, a_wl, d_rl, c_vs, b_vs, t_hl, t_wl, t_rl;
    heard_answer a;
    pt_journal_replayed out;
    size_t len_at;
    pt_core *copy;

    (void)state;
    at_restart.len = said_at_restart.len = 0;
    script();
    W.now = 20 * PT_NS_PER_SEC;
    session_new(D, 300);
    for (int i = 0; i < 4; i++) {
        for (int o = 0; o < 4; o++) {
            int kind = o == RL ? PT_KIND_RLOCK : o == VS ? PT_KIND_SEMAPHORE : PT_KIND_LOCK;

            op_open(who[i], objs[o], kind, 3, 0, 0);
            assert_int_equal(answer_in(&W.said, W.id, &a), 1);
            h[who[i]][o] = a.handle;
        }
    }
    assert_int_equal(op_answered(A, PYTHREAD__OP__OP_ACQUIRE, h[A][HL], 1, 11, &id, &a), 1);
    t_hl = a.token;
    assert_int_equal(op_answered(B, PYTHREAD__OP__OP_ACQUIRE, h[B][HL], 1, 12, &b_hl, &a), 0);
    assert_int_equal(op_answered(C, PYTHREAD__OP__OP_ACQUIRE, h[C][HL], 1, 13, &c_hl, &a), 0);
    assert_int_equal(op_answered(D, PYTHREAD__OP__OP_ACQUIRE, h[D][WL], 1, 14, &id, &a), 1);
    t_wl = a.token;
    assert_int_equal(op_answered(A, PYTHREAD__OP__OP_ACQUIRE, h[A][WL], 1, 11, &a_wl, &a), 0);
    assert_int_equal(op_answered(C, PYTHREAD__OP__OP_ACQUIRE, h[C][RL], 1, 13, &id, &a), 1);
    t_rl = a.token;
    assert_int_equal(op_answered(D, PYTHREAD__OP__OP_ACQUIRE, h[D][RL], 1, 14, &d_rl, &a), 0);
    for (int i = 0; i < 3; i++) /* "vs": 3 -> 0 */
        assert_int_equal(op_answered(A, PYTHREAD__OP__OP_ACQUIRE, h[A][VS], 1, 11, &id, &a), 1);
    assert_int_equal(op_answered(C, PYTHREAD__OP__OP_ACQUIRE, h[C][VS], 1, 13, &c_vs, &a), 0);
    assert_int_equal(op_answered(B, PYTHREAD__OP__OP_ACQUIRE, h[B][VS], 1, 12, &b_vs, &a), 0);
    {
        pt_core_reclaim rcl[] = {
            {W.s[B], h[B][HL], PT_RECLAIM_HELD, 12, 1, t_hl + 2, 0},
            {W.s[A], h[A][HL], PT_RECLAIM_FREE, 0, 0, 0, 0},
            {W.s[D], h[D][WL], PT_RECLAIM_FREE, 0, 0, 0, 0},
            {W.s[C], h[C][RL], PT_RECLAIM_HELD, 13, 3, t_rl, 0},
            {W.s[D], h[D][VS], PT_RECLAIM_VALUE, 0, 0, 0, 1},
            {W.s[B], h[B][VS], PT_RECLAIM_VALUE, 0, 0, 0, 5}, /* second: ignored */
            {W.s[A], h[A][RL], PT_RECLAIM_UNKNOWN, 0, 0, 0, 0},
        };

        pt_journal_restart(W.j, W.core, W.now, jump, rcl, sizeof(rcl) / sizeof(rcl[0]));
        published();
    }
    /* B was handed "hl" (the word's token), A got "wl" past the jump, C one
     * permit of "vs"; the others still wait */
    assert_int_equal(answer_in(&W.said, b_hl, &a), 1);
    assert_true(a.ok == 1 && a.token == t_hl + 2 && a.thread == 12);
    assert_int_equal(answer_in(&W.said, a_wl, &a), 1);
    assert_true(a.ok == 1 && a.token == t_wl + jump + 1 && a.thread == 11);
    assert_int_equal(answer_in(&W.said, c_vs, &a), 1);
    assert_true(a.ok == 1 && a.thread == 13);
    assert_int_equal(answer_in(&W.said, c_hl, &a), 0);
    assert_int_equal(answer_in(&W.said, d_rl, &a), 0);
    assert_int_equal(answer_in(&W.said, b_vs, &a), 0);
    core_say(W.core, &at_restart, W.now);
    assert_non_null(strstr(at_restart.buf, "sessions 4"));
    assert_non_null(strstr(at_restart.buf, "hl:\n  role 0 s3 th12 n1"));
    assert_non_null(strstr(at_restart.buf, "wl:\n  role 0 s1 th11 n1"));
    assert_non_null(strstr(at_restart.buf, "rl:\n  role 0 s4 th13 n3"));
    assert_non_null(strstr(at_restart.buf, "cond:\n  role 3 s1 th1")); /* still waits */
    say(&said_at_restart, "%s", W.said.buf);
    pt_journal_bytes(W.j, &len_at);

    /* the sessions go on */
    W.now = 21 * PT_NS_PER_SEC;
    assert_int_equal(op_answered(B, PYTHREAD__OP__OP_RELEASE, h[B][HL], 1, 12, &id, &a), 1);
    assert_int_equal(answer_in(&W.said, c_hl, &a), 1);
    assert_true(a.ok == 1 && a.token == t_hl + 2 + jump + 1 && a.thread == 13);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(op_answered(C, PYTHREAD__OP__OP_RELEASE, h[C][RL], 1, 13, &id, &a), 1);
        assert_int_equal(a.ok, 1);
        assert_int_equal(answer_in(&W.said, d_rl, &a), i == 2); /* three deep */
    }
    assert_int_equal(op_answered(A, PYTHREAD__OP__OP_RELEASE, h[A][VS], 1, 11, &id, &a), 1);
    assert_int_equal(answer_in(&W.said, b_vs, &a), 1);
    pt_journal_session_end(W.j, W.core, W.s[D], W.now); /* nobody resumed it */
    W.s[D] = NULL;
    published();
    assert_int_equal(pt_journal_lost(W.j), 0);

    /* the whole journal */
    copy = replay_same(&out);
    assert_non_null(strstr(orig_state.buf, "sessions 3"));
    pt_core_free(copy);
    assert_true(snapshots_hold_at_every_point() > 80);

    /* the journal up to the restart's end */
    copy = replay_gives(len_at, &said_at_restart, &at_restart, 20 * PT_NS_PER_SEC, &out);
    pt_core_free(copy);
}

/* A barrier wait by thread th of session si, its action run by it if it
 * is the last party. */
static void barrier_wait(int si, uint64_t th, double timeout)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.op = PYTHREAD__OP__OP_BARRIER_WAIT;
    req.has_handle = req.has_thread = req.has_timeout = req.has_has_action = 1;
    req.handle = 1;
    req.thread = th;
    req.timeout = timeout;
    req.has_action = 1;
    req_send(si, &req);
}

/* What the scripts above leave out: a barrier whose action runs (its
 * runner, arrivals of the next cycle waiting as entrants, an abort asked
 * meanwhile), a Lock with a queue of timed waiters, RLock depth, permits
 * of a BoundedSemaphore given back by a session that holds none, a session
 * ending with two locks held; a
 * snapshot taken between any two of its entries gives the same state and
 * answers. */
static void test_snapshot_of_a_running_action(void **state)
{
    Pythread__Request done = PYTHREAD__REQUEST__INIT;

    (void)state;
    for (int i = 0; i < 3; i++) {
        session_new(i, 100 + 2 * i);
        op_open(i, "act", PT_KIND_BARRIER, 1, 2, 0);
        op_open(i, "lock", PT_KIND_LOCK, 1, 0, 0);
        op_open(i, "rlock", PT_KIND_RLOCK, 1, 0, 0);
        op_open(i, "bsem", PT_KIND_BOUNDED_SEMAPHORE, 3, 0, 0);
        op_open(i, "lock2", PT_KIND_LOCK, 1, 0, 0);
    }
    W.now = 1000;
    op(2, PYTHREAD__OP__OP_ACQUIRE, 4, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 4, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 5, -1, 1); /* session 1 holds two locks */
    op(0, PYTHREAD__OP__OP_ACQUIRE, 5, -1, 1);
    barrier_wait(0, 1, 10.0);
    barrier_wait(1, 1, 10.0); /* the last party: session 1 runs the action */
    barrier_wait(2, 1, 5.0);  /* entrants of the next cycle */
    barrier_wait(0, 2, -1);
    op(2, PYTHREAD__OP__OP_ACQUIRE, 2, -1, 1);
    op(0, PYTHREAD__OP__OP_ACQUIRE, 2, 3.0, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 2, 4.0, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 3, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 3, -1, 1);
    op(2, PYTHREAD__OP__OP_ACQUIRE, 3, -1, 1);
    op(2, PYTHREAD__OP__OP_BARRIER_ABORT, 1, -1, 1); /* pending until the action ends */
    core_say(W.core, &orig_state, W.now);
    assert_non_null(strstr(W.said.buf, "s2 #21 st0 ok1 v1 t0 h0 c0 a1"));
    assert_non_null(strstr(orig_state.buf, "act kind 7 tr0 ul0 refs 3 serial 1 waiters 3"));
    W.now = 2 * PT_NS_PER_SEC;
    done.op = PYTHREAD__OP__OP_BARRIER_ACTION_DONE;
    done.has_handle = done.has_thread = done.has_status = 1;
    done.handle = 1;
    done.thread = 1;
    req_send(1, &done);
    op(2, PYTHREAD__OP__OP_RELEASE, 2, -1, 1);
    op(0, PYTHREAD__OP__OP_RELEASE, 4, -1, 1); /* not its permit: the oldest holder's goes */
    W.now = 4 * PT_NS_PER_SEC;
    pt_journal_expire(W.j, W.core, W.now);
    published();
    pt_journal_session_end(W.j, W.core, W.s[1], W.now);
    W.s[1] = NULL;
    published();
    assert_int_equal(pt_journal_lost(W.j), 0);
    assert_true(snapshots_hold_at_every_point() > 20);
}

/* However many sessions come back with however many handles, the
 * restart's reclaims are all written (in records of bounded size) and
 * replayed. */
static void test_restart_with_many_reclaims_replays(void **state)
{
    enum { N = 40000 };
    pt_core_reclaim *rc = calloc(N, sizeof(*rc));
    pt_journal_replayed out;
    pt_core *copy;
    int rcode;

    (void)state;
    assert_non_null(rc);
    session_new(0, 100);
    session_new(1, 101);
    op_open(0, "lock", PT_KIND_LOCK, 1, 0, 0);
    op_open(1, "lock", PT_KIND_LOCK, 1, 0, 0);
    for (int i = 0; i < N; i++)
        rc[i] = (pt_core_reclaim){W.s[i % 2], 1, PT_RECLAIM_UNKNOWN, 0, 0, 0, 0};
    rc[N - 1] = (pt_core_reclaim){W.s[1], 1, PT_RECLAIM_HELD, 7, 1, 0, 0};
    pt_journal_restart(W.j, W.core, 1000, 32768, rc, N);
    published();
    free(rc);
    assert_int_equal(pt_journal_lost(W.j), 0);
    op(1, PYTHREAD__OP__OP_STATE, 1, -1, 1);
    copy = replayed(0, &rcode, &out);
    assert_int_equal(rcode, 0);
    core_say(W.core, &orig_state, W.now);
    core_say(copy, &replay_state, W.now);
    assert_string_equal(orig_state.buf, replay_state.buf);
    assert_non_null(strstr(orig_state.buf, "lock:\n  role 0 s2 th7 n1"));
    pt_core_free(copy);
}

/* An acquire (or with wait, a Condition wait) by thread th that fails if
 * the deadlock it closes is one (fail), with a timeout; its request id in
 * *id. */
static void call_dl(int si, Pythread__Op o, uint32_t h, uint64_t th, double timeout, int fail,
                    uint64_t *id)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.op = o;
    req.has_handle = req.has_thread = req.has_timeout = req.has_fail_deadlock = 1;
    req.handle = h;
    req.thread = th;
    req.timeout = timeout;
    req.fail_deadlock = fail != 0;
    req_send(si, &req);
    *id = W.id;
}

static void acquire_dl(int si, uint32_t h, uint64_t th, double timeout, int fail, uint64_t *id)
{
    call_dl(si, PYTHREAD__OP__OP_ACQUIRE, h, th, timeout, fail, id);
}

/*
 * Deadlocks are state like any other: a timed cycle never reported, then
 * the same cycle without the timeout standing until a session's end breaks
 * it; one through a Condition's re-acquire left standing; one failed (a
 * thread acquiring a Lock it holds); chains into a standing cycle that
 * report nothing. Every snapshot point gives the writer's answers and
 * state, the standing deadlock and the counts included.
 */
static void test_snapshot_of_deadlocks(void **state)
{
    enum { DA = 1, DB, DC, CV, DD, DX };
    heard_answer a;
    uint64_t id, timed, failed;
    pt_journal_replayed out;
    pt_core *copy;

    (void)state;
    for (int i = 0; i < 4; i++)
        session_new(i, 400 + i);
    for (int i = 0; i < 4; i++) {
        op_open(i, "da", PT_KIND_LOCK, 1, 0, 0);
        op_open(i, "db", PT_KIND_RLOCK, 1, 0, 0);
        op_open(i, "dc", PT_KIND_LOCK, 1, 0, 0);
        op_open(i, "cv", PT_KIND_CONDITION, 1, 0, DC);
        op_open(i, "dd", PT_KIND_LOCK, 1, 0, 0);
        op_open(i, "dx", PT_KIND_LOCK, 1, 0, 0);
    }
    W.now = PT_NS_PER_SEC;
    acquire_dl(0, DA, 10, -1, 0, &id); /* s0 holds da, s1 db twice */
    acquire_dl(1, DB, 11, -1, 0, &id);
    acquire_dl(1, DB, 11, -1, 0, &id);
    acquire_dl(0, DB, 10, 3.0, 1, &timed); /* s0 -> s1, timed */
    acquire_dl(1, DA, 11, -1, 1, &id);     /* s1 -> s0: a timed cycle is none */
    assert_int_equal(answer_in(&W.said, id, &a), 0);
    W.now = 4 * PT_NS_PER_SEC;
    pt_journal_expire(W.j, W.core, W.now);
    published();
    assert_int_equal(answer_in(&W.said, timed, &a), 1);
    acquire_dl(0, DB, 10, -1, 0, &id); /* now it is one: standing */
    acquire_dl(2, DD, 12, -1, 0, &id); /* s2 holds dd, and dc through cv, and waits */
    acquire_dl(2, CV, 12, -1, 0, &id);
    call_dl(2, PYTHREAD__OP__OP_COND_WAIT, CV, 12, -1, 0, &id);
    acquire_dl(3, DC, 13, -1, 0, &id); /* s3 holds dc and waits for dd */
    acquire_dl(3, DD, 13, -1, 1, &id);
    acquire_dl(2, DA, 14, -1, 1, &id); /* into the standing cycle: none */
    W.now = 5 * PT_NS_PER_SEC;
    call_dl(3, PYTHREAD__OP__OP_NOTIFY, CV, 1, -1, 0, &id); /* dc is locked: s2/12 re-acquires */
    acquire_dl(3, DX, 20, -1, 0, &id);
    acquire_dl(3, DX, 20, -1, 1, &failed); /* a Lock it holds */
    assert_int_equal(answer_in(&W.said, failed, &a), 1);
    W.now = 6 * PT_NS_PER_SEC;
    pt_journal_session_end(W.j, W.core, W.s[1], W.now); /* breaks the first */
    W.s[1] = NULL;
    published();
    assert_int_equal(pt_journal_lost(W.j), 0);
    copy = replay_same(&out);
    pt_core_free(copy);
    if (getenv("PT_JOURNAL_SHOW"))
        print_message("%s", orig_state.buf);
    assert_non_null(strstr(orig_state.buf, "deadlocks 3 standing 1\n"));
    assert_non_null(strstr(orig_state.buf, "deadlock 2 at 5000000000 n2: s3/th12/"));
    assert_true(snapshots_hold_at_every_point() > 30);
}

/* After a restart (every session ended) the state is its objects: a
 * snapshot of it, replayed into a fresh core, is the same state as the
 * whole journal replayed, and so is the snapshot followed by what the
 * daemon records after it (new sessions, their ids going on). */
static void test_snapshot_after_restart(void **state)
{
    pt_journal *snap = pt_journal_new();
    pt_journal_replayed out;
    pt_core *copy, *whole;
    const uint8_t *buf;
    char err[160] = "";
    size_t len;
    int rc;

    (void)state;
    script();
    restart_alone(W.now + 20 * PT_NS_PER_SEC);
    assert_int_equal(pt_journal_snapshot(snap, W.core, NULL, NULL), 0);
    whole = replayed(0, &rc, &out);
    assert_int_equal(rc, 0);
    /* the daemon goes on writing after its snapshot */
    pt_journal_free(W.j);
    W.j = snap;
    pt_journal_set_fast_hooks(W.j, W.core, &fake, NULL);
    session_new(0, 200);
    session_new(1, 201);
    op_open(0, "after", PT_KIND_LOCK, 1, 0, 0);
    op_open(1, "lock", PT_KIND_LOCK, 1, 0, 0);
    op(0, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 1, -1, 1);
    op(1, PYTHREAD__OP__OP_ACQUIRE, 1, 1.0, 1);
    buf = pt_journal_bytes(snap, &len);
    copy = pt_core_new(NULL, sink, &replay_said);
    rc = pt_journal_replay(copy, buf, len, NULL, &out, err, sizeof(err));
    if (rc != 0)
        fail_msg("snapshot replay: %s", err);
    assert_int_equal(out.used, len);
    core_say(W.core, &orig_state, W.now);
    core_say(copy, &replay_state, W.now);
    if (strcmp(orig_state.buf, replay_state.buf) != 0)
        fail_msg("state differs:\n--- written\n%s--- snapshot\n%s", orig_state.buf,
                 replay_state.buf);
    assert_non_null(strstr(orig_state.buf, "sessions 2"));
    assert_non_null(strstr(orig_state.buf, "after kind 1"));
    pt_core_free(copy);
    /* the whole journal gave the state the snapshot was taken of */
    orig_state.len = replay_state.len = 0;
    core_say(whole, &replay_state, W.now);
    assert_non_null(strstr(replay_state.buf, "sessions 0"));
    assert_non_null(strstr(replay_state.buf, "cond kind 3"));
    assert_null(strstr(replay_state.buf, "after kind 1"));
    pt_core_free(whole);
}

/* A journal cut inside its last record gives all the records before it
 * and says where it stopped. */
static void test_torn_tail_stops_there(void **state)
{
    pt_journal_replayed whole, torn;
    pt_core *a, *b;
    int rc;

    (void)state;
    script();
    a = replayed(0, &rc, &whole);
    assert_int_equal(rc, 0);
    b = replayed(3, &rc, &torn);
    assert_int_equal(rc, -1);
    assert_true(torn.used < whole.used);
    assert_true(torn.entries <= whole.entries);
    pt_core_free(a);
    pt_core_free(b);
}

/* A journal damaged anywhere (a byte changed, a record cut) is replayed up
 * to the damage or through it, never past a record that does not fit, and
 * the core stays whole: it answers and frees cleanly (the sanitizers run
 * this too). */
static void test_damaged_journal_is_survived(void **state)
{
    pt_journal *snap = pt_journal_new();
    pt_journal_replayed out;
    const uint8_t *bufs[2];
    uint8_t *bad;
    char err[160];
    size_t lens[2];
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    int fails = 0;

    (void)state;
    script();
    restart_alone(W.now + 20 * PT_NS_PER_SEC);
    assert_int_equal(pt_journal_snapshot(snap, W.core, NULL, NULL), 0);
    bufs[0] = pt_journal_bytes(W.j, &lens[0]);
    bufs[1] = pt_journal_bytes(snap, &lens[1]);
    bad = malloc(lens[0] + lens[1]);
    assert_non_null(bad);
    for (int i = 0; i < 800; i++) {
        pt_core *core = pt_core_new(NULL, sink, &replay_said);
        const uint8_t *buf = bufs[i % 2];
        size_t len = lens[i % 2], at, cut = len;

        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        at = (size_t)(rnd >> 33) % len;
        memcpy(bad, buf, len);
        if (i % 8 >= 6)
            cut = at; /* cut short */
        else
            bad[at] ^= (uint8_t)(1u << (rnd >> 29 & 7)); /* a bit flipped */
        replay_said.len = 0;
        fails += pt_journal_replay(core, bad, cut, NULL, &out, err, sizeof(err)) < 0;
        assert_true(out.used <= cut);
        pt_core_free(core);
    }
    free(bad);
    pt_journal_free(snap);
    /* most damage is seen; a flipped bit in a value may be a valid value */
    print_message("damaged journals: %d of 800 stopped at the damage\n", fails);
    assert_true(fails > 100);
}

/* A replay runs under the limits of the run it repeats, not those of the
 * core it is given: an open refused then is refused again, and an open
 * that passed then passes again, whatever the new start's limits are. */
static void test_replay_keeps_the_limits_of_its_run(void **state)
{
    pt_core_limits tight = {.max_objects = 2}, loose = {.max_objects = 100}, got;
    pt_journal_replayed out;
    pt_core *wide, *narrow;
    int rc;

    (void)state;
    pt_journal_limits(W.j, W.core, &tight);
    session_new(0, 100);
    op_open(0, "a", PT_KIND_LOCK, 1, 0, 0);
    op_open(0, "b", PT_KIND_LOCK, 1, 0, 0);
    op_open(0, "c", PT_KIND_LOCK, 1, 0, 0); /* refused: over the limit */
    pt_journal_limits(W.j, W.core, &loose);
    op_open(0, "d", PT_KIND_LOCK, 1, 0, 0);
    assert_non_null(strstr(W.said.buf, "#3 st-"));
    wide = replayed(0, &rc, &out); /* a core with the default limits */
    assert_int_equal(rc, 0);
    assert_int_equal(replay_said.len, W.said.len);
    assert_memory_equal(replay_said.buf, W.said.buf, W.said.len);
    pt_core_get_limits(wide, &got);
    assert_int_equal(got.max_objects, 100);
    narrow = pt_core_new(&(pt_core_limits){.max_objects = 1}, sink, &replay_said);
    replay_said.len = 0;
    {
        char err[160];
        size_t len;
        const uint8_t *buf = pt_journal_bytes(W.j, &len);

        assert_int_equal(pt_journal_replay(narrow, buf, len, NULL, &out, err, sizeof(err)), 0);
    }
    assert_memory_equal(replay_said.buf, W.said.buf, W.said.len);
    pt_core_free(wide);
    pt_core_free(narrow);
}

/* Bytes that are no journal are refused at once, changing nothing. */
static void test_foreign_bytes_refused(void **state)
{
    static const uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
    pt_core *core = pt_core_new(NULL, sink, &replay_said);
    pt_journal_replayed out;
    pt_core_stats st;
    char err[160];

    (void)state;
    assert_int_equal(pt_journal_replay(core, junk, sizeof(junk), NULL, &out, err, sizeof(err)), -1);
    assert_int_equal(out.used, 0);
    assert_non_null(strstr(err, "byte 0"));
    pt_core_get_stats(core, &st);
    assert_int_equal(st.objects, 0);
    pt_core_free(core);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_rebuilds_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_a_running_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_deadlocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_sessions_and_reclaims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_with_many_reclaims_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_script_replays_at_each_point, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_stops_there, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_journal_is_survived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_keeps_the_limits_of_its_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_bytes_refused, setup, teardown),
    };

    return cmocka_run_group_tests_name("unit.test_journal", tests, NULL, NULL);
}
