/*
 * test_fast_protocol.c - the shared-word protocol (proto/fastword.h) checked
 * exhaustively: every interleaving of 2 or 3 parties and the daemon on one
 * Lock, RLock or Semaphore, with a death possible after every step of a
 * party, a timed wait that may expire at any point, and an inspection that
 * claims the word at any point.
 *
 * The parties run the real client steps (proto/fastword.c) and the daemon
 * runs the real core with its own claim and publish (daemon/fastsync.c),
 * all built here with a hook before each atomic access to the cell that
 * hands control back to the explorer. So the daemon's entries interleave
 * with the clients access by access: a client may run between the daemon's
 * claim of a word and its publish. A party's step that asks the daemon
 * sends a request; serving it, ending a dead party's session, expiring the
 * timeouts and an inspection are the daemon's entries, one at a time, in
 * any order; the answers go out when the entry ends, as the daemon writes
 * them after its publish.
 *
 * The explorer replays each execution from the start along a recorded
 * choice path and backtracks depth-first. A state met before (a fingerprint
 * of the cell, the core's published state and queue order, the model, and
 * what each party read since its operation began) ends an execution, as
 * its future was explored already: that keeps each scenario to seconds.
 *
 * A Lock or RLock acquire that waits in the daemon may watch the word, as
 * the client's reader does (the scenario's last column): it goes on with
 * whichever comes first, the daemon's answer or the word naming it, which
 * a releaser's hand-off writes (proto/fastword.h). The answer that comes
 * after that must agree: acquired, with the same token. The releaser's
 * OP_SYNC is one more request, served at any later point (before the
 * releaser's next one), or never when it dies before sending it.
 *
 * What every execution must show: no two holders at once (an RLock's owner
 * unique), fencing tokens growing with every first acquire and kept by a
 * recursion, no acquire through the word while a call waits in the daemon
 * (no barging), a try of a held lock answered False, every waiter answered
 * in the end (no lost wake-up; a semaphore's waiter may wait for permits a
 * dead party took), a dead holder's lock free after its session ends, and
 * a final word that says what the core says.
 *
 * Four scenarios add a hostile client that writes, once, at any point,
 * one of a set of values into the cell (a word naming the wrong holder or
 * nobody, flags the daemon never publishes, a depth, a base, a count, a
 * next naming another waiter or nobody).
 * The rules may break for that object, which that client could open
 * anyway; what must hold is the daemon: no crash, no use after free (the
 * suite runs this under AddressSanitizer too), every entry completing.
 *
 * PT_MC_FILTER=<cmocka glob> runs some of the scenarios only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <cmocka.h>

/* Every atomic access of a client or the daemon is a step: another party
 * may run before it. */
static void mc_step(void);
static uint64_t mc_seen(uint64_t v);
#define PT_FW_STEP()  mc_step()
#define PT_FW_SEEN(v) mc_seen(v)

#include "core_int.h"
#include "fastsync.c"
#include "fastword.c"

#define MAXP       3
#define DAEMON     MAXP /* the daemon runs its entries as one more party */
#define MAXOPS     6
#define STACK_SIZE (64 * 1024)
#define MAXDEPTH   256
#define TOKEN_BASE 1000u

/* ------------------------------------------------------------------ */
/* Scenarios                                                           */
/* ------------------------------------------------------------------ */

typedef enum {
    OP_END,
    OP_ACQ,     /* blocking acquire, no timeout */
    OP_TIMED,   /* blocking acquire with a timeout the explorer may expire */
    OP_TRY,     /* non-blocking acquire */
    OP_REL,     /* release, if the last acquire of this party succeeded */
    OP_REL_ALL, /* release every level this party holds */
    OP_REL_N,   /* Semaphore: release every permit this party holds in one call */
    OP_GIVE,    /* owned Semaphore: release one permit another party holds */
    OP_SET,     /* Event: set(), through the daemon */
    OP_CLEAR,   /* Event: clear(), through the daemon */
    OP_ISSET,   /* Event: is_set(), a read of the word */
    OP_WAIT,    /* Event: wait() with no timeout: the word first, then the daemon */
} op_kind;

typedef struct scenario {
    const char *name;
    int kind; /* PT_KIND_LOCK, _RLOCK, _SEMAPHORE */
    int64_t value;
    int nparties;
    op_kind ops[MAXP][MAXOPS];
    int deaths;    /* at most this many parties die */
    int inspects;  /* at most this many spontaneous claims */
    int scribbles; /* at most this many hostile writes into the cell */
    int watch;     /* Lock/RLock: a waiting acquire watches the word */
} scenario;

/* ------------------------------------------------------------------ */
/* One execution's world                                               */
/* ------------------------------------------------------------------ */

typedef enum { P_RUN, P_WAIT, P_DONE, P_DEAD } pstate;

typedef struct party {
    ucontext_t ctx; /* to start it */
    jmp_buf jb;     /* where it yielded */
    int fresh;      /* started, not run yet */
    char *stack;
    pt_session *s;
    uint32_t sid, tid, handle;
    pstate state;
    int started;
    uint32_t slot_id; /* owned semaphore: its slot's id in words */
    int has_req;      /* a request sent, not served yet */
    int parked;       /* served, waiting in the daemon for its answer */
    int ended;        /* its session has ended (dead parties) */
    pt_call req;
    int ans_status, ans_ok;
    uint64_t ans_token;
    int held;           /* levels (lock) or permits (semaphore) the party holds */
    int last_ok;        /* its last acquire succeeded */
    int in_op;          /* inside an acquire or release when it died */
    int opi;            /* the operation it is in */
    int answer_due;     /* answered; the answer goes out when the entry ends */
    uint64_t parked_at; /* when it was parked: the daemon's queue order */
    uint64_t hist;      /* what its accesses and answers in this operation read */
    int watching;       /* waits for the daemon's answer or the word naming it */
    int got;            /* the answer to its watched call came */
    uint64_t stale_id;  /* a call it went on from through the word: the answer is late */
    uint64_t stale_token;
    int syncs; /* OP_SYNCs sent after a hand-off, not served yet */
} party;

static struct world {
    const scenario *sc;
    pt_core *core;
    pt_fast_cell cell;
    pt_fastsync sync;
    pt_fast_cell slots[MAXP]; /* owned semaphore: slot id i + 2 */
    int slot_used[MAXP];
    party p[MAXP + 1];
    ucontext_t sched;
    jmp_buf sched_jb;
    int cur;                 /* the party running, -1 for the explorer */
    int busy, dkind, dparty; /* the daemon's entry in progress */
    uint64_t next_id;
    uint64_t last_token; /* of the last first acquire */
    int releasing;       /* parties inside a release */
    int acquiring;       /* parties inside an acquire: may hold already */
    int holder;          /* party holding the lock in the model, -1 none */
    int64_t value;       /* semaphore value in the model */
    int ev_flight;       /* Event: set() and clear() calls not returned yet */
    int ev_value;        /* Event: what the last of them answered made it */
    int deaths, inspects, expired;
    int scribbles; /* hostile writes so far: the rules hold no more, only
                    * the daemon's safety does */
    int last_step; /* party of the last action if it was a step, else -1 */
    int uncertain; /* permits a death in the middle may have taken */
    uint64_t clock;
    pt_core_fast_state st; /* the core's object as last published */
} W;

/* The explorer's choice path. */
static struct {
    int chosen[MAXDEPTH];
    int count[MAXDEPTH];
    int len; /* recorded */
    int pos; /* in the current execution */
} path;

/* The actions of the current execution, printed when a check fails. */
static struct {
    char text[MAXDEPTH][96];
    int n;
} trace;

static void trace_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace_add(const char *fmt, ...)
{
    va_list ap;

    if (trace.n >= MAXDEPTH)
        return;
    va_start(ap, fmt);
    vsnprintf(trace.text[trace.n++], sizeof(trace.text[0]), fmt, ap);
    va_end(ap);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            for (int t_ = 0; t_ < trace.n; t_++)                                                   \
                print_message("  %2d %s\n", t_, trace.text[t_]);                                   \
            fail_msg("%s: the interleaving above breaks it", #cond);                               \
        }                                                                                          \
    } while (0)

/* A rule of the protocol: it holds while every party follows it. A client
 * that scribbles on the cell may break it for this object (it could open
 * it), never the daemon: after a scribble only its survival, checked by
 * the sanitizers and the core's own consistency, counts. */
#define RULE(cond)                                                                                 \
    do {                                                                                           \
        if (!W.scribbles)                                                                          \
            CHECK(cond);                                                                           \
    } while (0)

static uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x100000001b3ull;
    return h ^ h >> 29;
}

/* What a party's access read: with its operation and its steps, that is
 * all its place in the code and its locals depend on. */
static uint64_t mc_seen(uint64_t v)
{
    if (W.cur >= 0) {
        char *line = trace.text[trace.n - 1];
        size_t len = strlen(line);

        W.p[W.cur].hist = mix(W.p[W.cur].hist, v);
        snprintf(line + len, sizeof(trace.text[0]) - len, " read %#llx", (unsigned long long)v);
    }
    return v;
}

/*
 * The parties are coroutines. A context starts one on its own stack; after
 * that they switch with _setjmp/_longjmp, which, unlike swapcontext, make
 * no system call: a step costs a few nanoseconds, so executions are cheap.
 * (AddressSanitizer's _longjmp makes one, which is why a sanitizer build
 * explores fewer scenarios: see tests/unit/CMakeLists.txt.)
 */
static void yield(void)
{
    if (!_setjmp(W.p[W.cur].jb))
        _longjmp(W.sched_jb, 1);
}

static void resume(int i)
{
    party *p = &W.p[i];

    W.cur = i;
    if (!_setjmp(W.sched_jb)) {
        if (!p->fresh)
            _longjmp(p->jb, 1);
        p->fresh = 0;
        swapcontext(&W.sched, &p->ctx);
    }
    W.cur = -1;
}

static void start(party *p, void (*fn)(void), int arg)
{
    getcontext(&p->ctx);
    p->ctx.uc_stack.ss_sp = p->stack;
    p->ctx.uc_stack.ss_size = STACK_SIZE;
    p->ctx.uc_link = NULL;
    makecontext(&p->ctx, fn, 1, arg);
    p->fresh = 1;
}

/* Setup and the final checks run straight through (cur -1). */
static void mc_step(void)
{
    if (W.cur < 0)
        return;
    W.p[W.cur].hist = mix(W.p[W.cur].hist, 0x57e9);
    yield();
}

/* ------------------------------------------------------------------ */
/* The daemon: hooks, sink, publish                                    */
/* ------------------------------------------------------------------ */

static int is_sem(void)
{
    return W.sc->kind == PT_KIND_SEMAPHORE || W.sc->kind == PT_KIND_BOUNDED_SEMAPHORE;
}

/* A BoundedSemaphore here is owned, as by default; a Semaphore is not. */
static int is_owned(void)
{
    return W.sc->kind == PT_KIND_BOUNDED_SEMAPHORE;
}

static pt_fast_cell *slot_cell(uint32_t id)
{
    CHECK(id >= 2 && id < 2 + MAXP);
    return &W.slots[id - 2];
}

static pt_session *who(void *ctx, uint32_t sid)
{
    (void)ctx;
    for (int i = 0; i < W.sc->nparties; i++) {
        if (W.p[i].sid == sid && !W.p[i].ended)
            return W.p[i].s;
    }
    return NULL;
}

static uint32_t sid_of(const pt_session *s)
{
    for (int i = 0; i < W.sc->nparties; i++) {
        if (s && W.p[i].s == s)
            return W.p[i].sid;
    }
    return 0;
}

static uint32_t hook_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    (void)ctx, (void)uid, (void)gid, (void)mode;
    pt_fastsync_init(&W.sync, &W.cell, kind, owned);
    return 1;
}

static void hook_claim(void *ctx, uint32_t cell, int kind, pt_core_fast_view *v)
{
    (void)ctx, (void)cell;
    pt_fastsync_claim(&W.sync, &W.cell, kind, who, NULL, v);
}

static void hook_freed(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
}

static uint32_t hook_slot_new(void *ctx, uint32_t cell)
{
    (void)ctx, (void)cell;
    for (uint32_t i = 0; i < MAXP; i++) {
        if (!W.slot_used[i]) {
            W.slot_used[i] = 1;
            memset(&W.slots[i], 0, sizeof(W.slots[i]));
            return i + 2;
        }
    }
    return 0;
}

static int64_t hook_slot_read(void *ctx, uint32_t slot)
{
    (void)ctx;
    return pt_fw_slot(slot_cell(slot)); /* a step: clients run around it */
}

static void hook_slot_free(void *ctx, uint32_t slot)
{
    (void)ctx;
    W.slot_used[slot - 2] = 0;
}

static const pt_core_fast_hooks hooks = {hook_created,   hook_claim,     hook_freed, hook_slot_new,
                                         hook_slot_read, hook_slot_free, NULL};

static void publish(void)
{
    pt_core_fast_state st;

    while (pt_core_fast_next(W.core, &st)) {
        pt_fastsync_publish(&W.sync, &W.cell, &st, sid_of(st.holder), sid_of(st.next));
        W.st = st;
    }
}

static void sink(void *ctx, pt_session *s, const pt_result *r)
{
    (void)ctx;
    for (int i = 0; i < W.sc->nparties; i++) {
        party *p = &W.p[i];

        if (p->s == s && p->stale_id != 0 && p->stale_id == r->id) {
            /* handed over through the word: the late answer agrees */
            RULE(r->status == 0 && r->ok && r->token == p->stale_token);
            p->stale_id = 0;
            p->parked = 0;
            return;
        }
        if (p->s != s || p->req.id != r->id)
            continue;
        assert_false(p->ended);
        p->ans_status = r->status;
        p->ans_ok = r->ok;
        p->ans_token = r->token;
        if (r->fast_slot != 0)
            p->slot_id = r->fast_slot;
        p->hist = mix(mix(mix(p->hist, (uint64_t)r->status), (uint64_t)r->ok), r->token);
        p->parked = 0;
        p->answer_due = 1;
        return;
    }
}

/* The daemon writes its answers after the entry, publish included. */
static void deliver(void)
{
    for (int i = 0; i < W.sc->nparties; i++) {
        party *p = &W.p[i];

        if (!p->answer_due)
            continue;
        p->answer_due = 0;
        if (p->req.op == PT_OP_EVENT_SET || p->req.op == PT_OP_EVENT_CLEAR) {
            W.ev_flight--;
            W.ev_value = p->req.op == PT_OP_EVENT_SET;
        }
        p->got = 1;
        if (p->state == P_WAIT)
            p->state = P_RUN;
    }
}

/* The OP_SYNC a releaser sends after handing the lock on: no answer. */
static void serve_sync(party *p)
{
    pt_call sync = {.id = ++W.next_id, .op = PT_OP_SYNC, .thread = p->tid, .handle = p->handle};

    p->syncs--;
    pt_core_call(W.core, p->s, &sync, 0);
    publish();
}

static void serve(party *p)
{
    if (p->syncs) { /* sent first, served first */
        serve_sync(p);
        return;
    }
    p->has_req = 0;
    pt_core_call(W.core, p->s, &p->req, 0);
    if (!p->answer_due) {
        p->parked = 1;
        p->parked_at = ++W.clock;
    }
    publish();
}

/* ------------------------------------------------------------------ */
/* A party's operations, run in its coroutine                          */
/* ------------------------------------------------------------------ */

static void ask(party *p, pt_op op, int blocking, double timeout, uint32_t count)
{
    p->req = (pt_call){.id = ++W.next_id,
                       .op = op,
                       .thread = p->tid,
                       .handle = p->handle,
                       .blocking = blocking,
                       .timeout = timeout,
                       .count = count};
    p->has_req = 1;
    p->state = P_WAIT;
    yield();
    RULE((p->ans_status) == (0));
}

static int any_parked_but(const party *me)
{
    for (int i = 0; i < W.sc->nparties; i++) {
        const party *q = &W.p[i];

        if (q != me && q->parked && !q->ended && q->req.op == PT_OP_ACQUIRE && !q->stale_id)
            return 1;
    }
    return 0;
}

/* The word names p as the holder: the lock was handed to it. Its answer,
 * if the daemon gave it already, must agree; else it comes late. */
static int watch_look(party *p)
{
    uint64_t token;

    int taken;

    p->state = P_RUN; /* inside the access */
    taken = pt_fast_lock_taken(&W.cell, p->sid, p->tid, &token) == PT_FAST_OK;
    if (p->got)
        return 1; /* the answer came meanwhile: it is read first */
    if (!taken)
        return 0;
    if (p->answer_due) {
        RULE(p->ans_status == 0 && p->ans_ok && p->ans_token == token);
        p->answer_due = 0;
        p->parked = 0;
    } else {
        p->stale_id = p->req.id;
        p->stale_token = token;
    }
    p->ans_status = 0;
    p->ans_ok = 1;
    p->ans_token = token;
    return 1;
}

/* A Lock acquire that waits in the daemon watching the word (client.c):
 * it goes on with whichever comes first, the answer or the word naming it. */
static void ask_watch(party *p, double timeout)
{
    p->req = (pt_call){.id = ++W.next_id,
                       .op = PT_OP_ACQUIRE,
                       .thread = p->tid,
                       .handle = p->handle,
                       .blocking = 1,
                       .timeout = timeout,
                       .count = 1,
                       .watch = 1};
    p->has_req = 1;
    p->watching = 1;
    p->got = 0;
    for (;;) {
        p->state = P_WAIT;
        yield();
        if (p->got || watch_look(p))
            break;
    }
    p->watching = 0;
    RULE((p->ans_status) == (0));
}

static void lock_acquired(party *p, uint64_t token)
{
    int me = (int)(p - W.p);

    if (W.holder == me) {
        RULE((W.sc->kind) == (PT_KIND_RLOCK));
        RULE((token) == (W.last_token)); /* recursion keeps the token */
    } else {
        RULE((W.holder) == (-1)); /* mutual exclusion */
        RULE(token > W.last_token);
        W.last_token = token;
        W.holder = me;
    }
    p->held++;
}

static void lock_acquire(party *p, int blocking, double timeout)
{
    uint64_t token = 0;
    int r, held_by_other = (W.holder != -1 && W.holder != (int)(p - W.p)) || W.acquiring;

    r = pt_fast_lock_acquire(&W.cell, p->sid, p->tid, W.sc->kind == PT_KIND_RLOCK,
                             blocking && timeout != 0, &token);
    if (r == PT_FAST_SLOW && blocking && timeout != 0 && W.sc->watch &&
        pt_fast_lock_taken(&W.cell, p->sid, p->tid, &token) != PT_FAST_OK) {
        ask_watch(p, timeout);
        if (timeout < 0)
            RULE(p->ans_ok);
        r = p->ans_ok ? PT_FAST_OK : PT_FAST_NO;
        token = p->ans_token;
    } else if (r == PT_FAST_SLOW) {
        ask(p, PT_OP_ACQUIRE, blocking, timeout, 1);
        if (blocking && timeout < 0)
            RULE(p->ans_ok); /* a wait without a timeout ends acquired */
        r = p->ans_ok ? PT_FAST_OK : PT_FAST_NO;
        token = p->ans_token;
        held_by_other |= !blocking && (W.releasing || W.uncertain);
    } else if (r == PT_FAST_OK) {
        p->last_ok = 1;
        lock_acquired(p, token);
        return;
    }
    if (r == PT_FAST_NO) {
        /* A try fails only on a held lock (or one being released). */
        if (!(blocking && timeout > 0))
            RULE(held_by_other || W.holder == (int)(p - W.p) || W.releasing || W.acquiring ||
                 W.uncertain);
        p->last_ok = 0;
        return;
    }
    p->last_ok = 1;
    lock_acquired(p, token);
}

static void lock_release(party *p)
{
    uint64_t to = 0;
    int r;

    /* The critical section ends where the release begins. */
    if (--p->held == 0)
        W.holder = -1;
    W.releasing++;
    r = pt_fast_lock_release(&W.cell, p->sid, p->tid, W.sc->kind == PT_KIND_RLOCK, &to);

    if (r == PT_FAST_SLOW)
        ask(p, PT_OP_RELEASE, 1, -1, 1);
    if (r == PT_FAST_HANDED) {
        /* it may die before its OP_SYNC is sent */
        mc_step();
        p->syncs++;
    }
    W.releasing--;
}

static void sem_acquire(party *p, int blocking, double timeout)
{
    int may_wait = blocking && timeout != 0;
    int64_t value;
    int r = is_owned()
                ? pt_fast_osem_acquire(&W.cell, slot_cell(p->slot_id), p->slot_id, may_wait, &value)
                : pt_fast_sem_acquire(&W.cell, may_wait, &value);

    if (r == PT_FAST_SLOW) {
        ask(p, PT_OP_ACQUIRE, blocking, timeout, 1);
        r = p->ans_ok ? PT_FAST_OK : PT_FAST_NO;
    }
    p->last_ok = r == PT_FAST_OK;
    if (p->last_ok) {
        p->held++;
        W.value--;
        RULE(W.value >= -W.uncertain);
    }
}

static void sem_release(party *p, int n)
{
    int64_t value;

    int r;

    p->held -= n;
    W.value += n;
    if (is_owned())
        r = pt_fast_osem_release(&W.cell, slot_cell(p->slot_id), p->slot_id, (uint64_t)n,
                                 W.sc->value, &value);
    else
        r = pt_fast_sem_release(&W.cell, (uint64_t)n, -1, &value);
    if (r == PT_FAST_SLOW)
        ask(p, PT_OP_RELEASE, 1, -1, (uint32_t)n);
}

/* A release of a permit the party does not hold counts down the holder's
 * (the oldest holder's; here only one other party acquires). The model's
 * value is never below the word's, so below the bound it is a valid
 * release; in these scenarios the value grows by nothing else. */
static void sem_give(party *p)
{
    if (W.value >= W.sc->value)
        return;
    for (int i = 0; i < W.sc->nparties; i++) {
        if (&W.p[i] != p && W.p[i].held > 0) {
            W.p[i].held--;
            p->held++;
            break;
        }
    }
    sem_release(p, 1);
}

/* An Event's is_set() is linearizable: with no set() or clear() under way,
 * it says what the last one answered made it. */
static int event_read(void)
{
    int set = pt_fast_event_is_set(&W.cell);

    if (!W.ev_flight)
        RULE(set == W.ev_value);
    return set;
}

/* Until its answer goes out (deliver), a set() or clear() is under way. */
static void event_change(party *p, pt_op op)
{
    W.ev_flight++;
    ask(p, op, 1, -1, 0);
}

static void event_op(party *p, op_kind op)
{
    switch (op) {
    case OP_SET:
        event_change(p, PT_OP_EVENT_SET);
        break;
    case OP_CLEAR:
        event_change(p, PT_OP_EVENT_CLEAR);
        break;
    case OP_ISSET:
        event_read();
        break;
    default:
        if (!event_read()) {
            ask(p, PT_OP_EVENT_WAIT, 1, -1, 0);
            RULE(p->ans_ok); /* a wait without a timeout ends set */
        }
        break;
    }
}

static void run_op(party *p, op_kind op)
{
    int lock = !is_sem();

    p->in_op = 1;
    switch (op) {
    case OP_SET:
    case OP_CLEAR:
    case OP_ISSET:
    case OP_WAIT:
        event_op(p, op);
        break;
    case OP_ACQ:
    case OP_TIMED:
    case OP_TRY:
        if (lock) {
            W.acquiring++;
            lock_acquire(p, op != OP_TRY, op == OP_TIMED ? 1.0 : -1);
            W.acquiring--;
        } else
            sem_acquire(p, op != OP_TRY, op == OP_TIMED ? 1.0 : -1);
        break;
    case OP_REL:
        if (p->last_ok)
            lock ? lock_release(p) : sem_release(p, 1);
        break;
    case OP_REL_ALL:
        while (p->held > 0)
            lock ? lock_release(p) : sem_release(p, 1);
        break;
    case OP_REL_N:
        if (p->held > 0)
            sem_release(p, p->held);
        break;
    case OP_GIVE:
        sem_give(p);
        break;
    default:
        break;
    }
    p->in_op = 0;
}

static void party_main(int index)
{
    party *p = &W.p[index];

    for (int i = 0; i < MAXOPS && W.sc->ops[index][i] != OP_END; i++) {
        p->opi = i;
        p->hist = 0;
        run_op(p, W.sc->ops[index][i]);
    }
    p->state = P_DONE;
    yield();
}

/* ------------------------------------------------------------------ */
/* The explorer                                                        */
/* ------------------------------------------------------------------ */

typedef enum {
    A_STEP,
    A_SERVE,
    A_KILL,
    A_END,
    A_EXPIRE,
    A_INSPECT,
    A_DAEMON,
    A_SCRIBBLE,
} action_kind;

typedef struct action {
    action_kind kind;
    int party;
} action;

/* Whether the word names p as its holder (a watcher then looks). */
static int named(const party *p)
{
    uint64_t w = atomic_load(&W.cell.word);

    return (w & PT_FW_OWNER_MASK) == pt_fast_owner(p->sid, p->tid);
}

static int actions(action *out)
{
    int n = 0, timed = 0;

    for (int i = 0; i < W.sc->nparties; i++) {
        party *p = &W.p[i];

        if (p->state == P_RUN || (p->state == P_WAIT && p->watching && named(p)))
            out[n++] = (action){A_STEP, i};
        /* A death only stops a party's next steps: dying right after its
         * last step covers dying at any later point before the next. */
        if (W.last_step == i && p->state != P_DONE && W.deaths < W.sc->deaths)
            out[n++] = (action){A_KILL, i};
    }
    /* One entry at a time: it steps with the clients until it is done. */
    if (W.busy) {
        out[n++] = (action){A_DAEMON, DAEMON};
        return n;
    }
    for (int i = 0; i < W.sc->nparties; i++) {
        party *p = &W.p[i];

        if ((p->has_req || p->syncs) && !p->ended)
            out[n++] = (action){A_SERVE, i};
        /* The daemon reads every frame a peer sent before its hang-up. */
        if (p->state == P_DEAD && !p->ended && !p->has_req && !p->syncs)
            out[n++] = (action){A_END, i};
        timed |= p->parked && !p->ended && p->req.timeout > 0;
    }
    if (timed && !W.expired)
        out[n++] = (action){A_EXPIRE, 0};
    if (W.inspects < W.sc->inspects)
        out[n++] = (action){A_INSPECT, 0};
    return n;
}

/* What a hostile client writes: words the daemon could never publish or
 * that name the wrong holder, a depth, a base, a count. */
enum { F_WORD, F_BASE, F_DEPTH, F_COUNT, F_SLOT, F_NEXT };

typedef struct scribble {
    int field;
    uint64_t value;
} scribble;

static int scribbles(scribble *out)
{
    int n = 0;

    out[n++] = (scribble){F_WORD, 0};
    out[n++] = (scribble){F_WORD, PT_FW_PARKED};
    out[n++] = (scribble){F_WORD, PT_FW_CLAIM};
    out[n++] = (scribble){F_WORD, UINT64_MAX};
    if (is_owned()) {
        uint64_t busy0 = PT_FW_BUSY | (uint64_t)W.p[0].slot_id << PT_FW_SLOT_SHIFT;

        out[n++] = (scribble){F_WORD, busy0 | (uint64_t)1 << PT_FW_OSEM_SHIFT};       /* 0 busy */
        out[n++] = (scribble){F_WORD, PT_FW_BUSY | (uint64_t)77 << PT_FW_SLOT_SHIFT}; /* nobody */
        out[n++] = (scribble){F_WORD, PT_FW_MANY | (uint64_t)3 << PT_FW_OSEM_SHIFT};
        out[n++] = (scribble){F_SLOT, 1000};
        out[n++] = (scribble){F_SLOT, (uint64_t)-5};
        return n;
    }
    if (is_sem()) {
        out[n++] = (scribble){F_WORD, (uint64_t)3 << PT_FW_SEM_SHIFT};
        out[n++] = (scribble){F_COUNT, 1000};
        return n;
    }
    out[n++] = (scribble){F_WORD, pt_fast_owner(W.p[0].sid, W.p[0].tid)}; /* party 0 holds */
    out[n++] = (scribble){F_WORD, pt_fast_owner(77, 1)};                  /* nobody known */
    out[n++] = (scribble){F_WORD, (uint64_t)PT_FW_SEQ_MAX << PT_FW_SEQ_SHIFT};
    out[n++] = (scribble){F_BASE, 0};
    out[n++] = (scribble){F_DEPTH, W.sc->kind == PT_KIND_RLOCK ? 0 : UINT32_MAX};
    out[n++] = (scribble){F_NEXT, pt_fast_owner(W.p[1].sid, W.p[1].tid)}; /* hand to 1 */
    out[n++] = (scribble){F_NEXT, pt_fast_owner(77, 1)};                  /* to nobody */
    return n;
}

/* A scribble may come at any point, between any two steps of anyone. */
static int scribble_actions(action *out)
{
    scribble v[16];
    int n = 0;

    if (W.scribbles >= W.sc->scribbles)
        return 0;
    for (int i = 0, nv = scribbles(v); i < nv; i++)
        out[n++] = (action){A_SCRIBBLE, i};
    return n;
}

static void scribble_run(int i)
{
    scribble v[16];

    scribbles(v);
    W.scribbles++;
    switch (v[i].field) {
    case F_WORD:
        atomic_store(&W.cell.word, v[i].value);
        break;
    case F_BASE:
        atomic_store(&W.cell.base, v[i].value);
        break;
    case F_DEPTH:
        atomic_store(&W.cell.depth, (uint32_t)v[i].value);
        break;
    case F_NEXT:
        atomic_store(&W.cell.next, v[i].value);
        break;
    case F_SLOT: /* party 0's slot */
        atomic_store(&W.slots[0].word, v[i].value);
        break;
    default:
        atomic_store(&W.cell.count, v[i].value);
        break;
    }
}

static int choose(int n)
{
    int c;

    CHECK(path.pos < MAXDEPTH);
    if (path.pos < path.len) {
        CHECK((path.count[path.pos]) == (n)); /* executions replay alike */
        c = path.chosen[path.pos];
    } else {
        path.chosen[path.pos] = c = 0;
        path.count[path.pos] = n;
        path.len++;
    }
    path.pos++;
    return c;
}

static void kill_party(party *p)
{
    p->state = P_DEAD;
    W.deaths++;
    /* A death inside an operation may leave the word changed where the
     * model could not see it: a permit taken, a lock held or being
     * released. */
    if (p->in_op)
        W.uncertain++;
}

static void end_session(party *p)
{
    int me = (int)(p - W.p);

    pt_core_session_end(W.core, p->s, 0);
    p->ended = 1;
    p->parked = 0;
    publish();
    if (W.holder == me)
        W.holder = -1; /* its hold ended with it */
    if (is_owned()) {
        W.value += p->held; /* and its owned permits */
        p->held = 0;
    }
}

/* No barging: a step that took the lock or a permit through the word did
 * so while no call waited in the daemon. */
static void step_check(party *p, uint64_t before, uint64_t after)
{
    int took;

    if (is_owned())
        took = (after >> PT_FW_OSEM_SHIFT) < (before >> PT_FW_OSEM_SHIFT);
    else if (is_sem())
        took = (after >> PT_FW_SEM_SHIFT) < (before >> PT_FW_SEM_SHIFT);
    else
        took =
            !(before & PT_FW_HELD) && (after & PT_FW_OWNER_MASK) == pt_fast_owner(p->sid, p->tid);
    if (took)
        RULE(!any_parked_but(p));
}

/* One entry of the daemon, run in its coroutine: the request or event,
 * the publish, then the answers. */
static void daemon_entry(void)
{
    party *p = &W.p[W.dparty];

    switch (W.dkind) {
    case A_SERVE:
        serve(p);
        break;
    case A_END:
        end_session(p);
        break;
    case A_EXPIRE:
        pt_core_expire(W.core, 10 * PT_NS_PER_SEC);
        publish();
        break;
    default:
        pt_core_fast_claim_all(W.core);
        publish();
        break;
    }
    deliver();
    /* Idle, the daemon is the same whatever its last entry was. */
    W.busy = W.dkind = W.dparty = 0;
    W.p[DAEMON].hist = 0;
}

/* The daemon's coroutine runs one entry each time it is started again. */
static void daemon_main(int unused)
{
    (void)unused;
    for (;;) {
        daemon_entry();
        yield();
    }
}

static void daemon_start(action a)
{
    party *d = &W.p[DAEMON];

    W.busy = 1;
    W.dkind = a.kind;
    W.dparty = a.party;
    W.expired |= a.kind == A_EXPIRE;
    W.inspects += a.kind == A_INSPECT;
    d->hist = 0;
    if (!d->started) {
        d->started = 1;
        start(d, (void (*)(void))daemon_main, 0);
    }
    resume(DAEMON);
}

static void run_action(action a)
{
    static const char *names[] = {"step",   "serve",   "kill",        "end session",
                                  "expire", "inspect", "daemon step", "scribble"};
    party *p = &W.p[a.kind == A_SCRIBBLE ? 0 : a.party];
    uint64_t before;

    trace_add("%s %d (word %#llx)", names[a.kind], a.party,
              (unsigned long long)atomic_load(&W.cell.word));
    W.last_step = a.kind == A_STEP ? a.party : -1;
    switch (a.kind) {
    case A_STEP:
        if (!p->started) {
            p->started = 1;
            start(p, (void (*)(void))party_main, a.party);
        }
        before = atomic_load(&W.cell.word);
        resume(a.party);
        step_check(p, before, atomic_load(&W.cell.word));
        break;
    case A_KILL:
        kill_party(p);
        break;
    case A_DAEMON:
        resume(DAEMON);
        break;
    case A_SCRIBBLE:
        scribble_run(a.party);
        break;
    default:
        daemon_start(a);
        break;
    }
}

static void world_init(const scenario *sc)
{
    pt_peer peer = {.pid = 1, .uid = 0, .gid = 0};

    for (int i = 0; i <= MAXP; i++) {
        char *stack = W.p[i].stack;

        W.p[i] = (party){.stack = stack};
    }
    W.cur = -1;
    W.busy = W.dkind = W.dparty = 0;
    W.sc = sc;
    W.next_id = 0;
    W.last_token = 0;
    W.releasing = W.acquiring = 0;
    W.holder = -1;
    W.value = sc->value;
    W.deaths = W.inspects = W.expired = W.uncertain = W.scribbles = 0;
    W.ev_flight = W.ev_value = 0;
    W.last_step = -1;
    memset(W.slot_used, 0, sizeof(W.slot_used));
    W.core = pt_core_new(NULL, sink, NULL);
    assert_non_null(W.core);
    pt_core_set_token_base(W.core, TOKEN_BASE);
    pt_core_set_fast_hooks(W.core, &hooks, NULL);
    for (int i = 0; i < sc->nparties; i++) {
        party *p = &W.p[i];
        pt_call open = {.id = ++W.next_id,
                        .op = PT_OP_OPEN,
                        .name = "mc",
                        .name_len = 2,
                        .kind = sc->kind,
                        .value = sc->value,
                        .flags = PT_OPEN_UNOWNED * (sc->kind == PT_KIND_SEMAPHORE)};

        p->s = pt_core_session_new(W.core, &peer, NULL);
        p->sid = (uint32_t)i + 1;
        p->tid = 100u + (uint32_t)i;
        p->handle = 1;
        p->req.id = open.id;
        pt_core_call(W.core, p->s, &open, 0);
        publish();
        p->answer_due = 0; /* the open's answer: the party starts after it */
    }
}

/* What is left once nothing can happen any more. */
static void world_check_end(void)
{
    pt_fast_lock_view lv;
    uint64_t w;
    int waiting = 0;

    for (int i = 0; i < W.sc->nparties; i++)
        waiting += W.p[i].state != P_DEAD && W.p[i].state != P_DONE;
    pt_core_fast_claim_all(W.core);
    publish();
    w = atomic_load(&W.cell.word);
    RULE(!(w & PT_FW_CLAIM));
    RULE(!(w & PT_FW_PARKED) == !waiting);
    if (is_owned()) {
        int64_t v = (int64_t)(w >> PT_FW_OSEM_SHIFT), held = 0;

        /* Owned permits come back exactly: a dead party's all, whatever
         * step it died after; a live party holds what it took. */
        for (int i = 0; i < W.sc->nparties; i++) {
            pt_semhold *h = pt__semhold_find(TAILQ_FIRST(&W.core->objects), W.p[i].s);

            if (W.p[i].state == P_DEAD)
                continue;
            held += W.p[i].held;
            RULE((h ? h->count : 0) == W.p[i].held); /* and the daemon knows whose */
        }
        RULE(v + held == W.sc->value);
        if (waiting)
            RULE(v == 0);
        return;
    }
    if (is_sem()) {
        int64_t v = (int64_t)(w >> PT_FW_SEM_SHIFT), held = 0;

        for (int i = 0; i < W.sc->nparties; i++)
            held += W.p[i].held;
        /* Permits a party took stay taken until it gives them back: a dead
         * one's too (unowned), and a call may wait for them for ever, as a
         * thread would; but never while a permit is free. */
        RULE(v + held <= W.sc->value && v + held + W.uncertain >= W.sc->value);
        if (waiting)
            RULE(v == 0);
        return;
    }
    if (W.sc->kind == PT_KIND_EVENT) {
        /* Waiters are left only on a clear Event, as in threading; a
         * set() or clear() of a party that died under way may or may not
         * have happened. */
        RULE(!(waiting && (w & PT_FW_SET)));
        if (!W.ev_flight)
            RULE(!(w & PT_FW_SET) == !W.ev_value);
        return;
    }
    RULE(waiting == 0);
    pt_fast_lock_decode(w, &lv);
    RULE(!(lv.held));
    RULE(atomic_load(&W.cell.base) + lv.seq >= W.last_token);
}

/* ------------------------------------------------------------------ */
/* States seen: an execution that reaches one again stops there, as    */
/* everything after it was explored already.                           */
/* ------------------------------------------------------------------ */

static int index_of(const pt_session *s)
{
    for (int i = 0; i < W.sc->nparties; i++) {
        if (s && W.p[i].s == s)
            return i;
    }
    return -1;
}

/* The party's place in the daemon's queue of parked calls, 0 if none. */
static int parked_rank(const party *p)
{
    int rank = 1;

    if (!p->parked)
        return 0;
    for (int i = 0; i < W.sc->nparties; i++)
        rank += W.p[i].parked && W.p[i].parked_at < p->parked_at;
    return rank;
}

/* Everything the future of an execution depends on. A party's place in
 * its code and its locals follow from its operation and what
 * its accesses and answers read (hist); the core's object from what it last
 * published and the queue order. */
/* A party that will not run again matters only through a call it left
 * with the daemon. */
static uint64_t live_hist(const party *p)
{
    if (p->state == P_DONE || (p->state == P_DEAD && !p->has_req && !p->parked))
        return 0;
    return p->hist;
}

/* An owned semaphore's slots and the core's record of each party's hold. */
static uint64_t holds_print(void)
{
    pt_obj *obj = TAILQ_FIRST(&W.core->objects);
    const pt_semhold *h;
    uint64_t x = 0;

    for (int i = 0; i < MAXP; i++)
        x = mix(mix(x, atomic_load(&W.slots[i].word)), (uint64_t)W.slot_used[i]);
    if (obj == NULL || !is_owned())
        return x;
    TAILQ_FOREACH(h, &obj->u.sem.holders, olink)
    {
        x = mix(mix(mix(x, (uint64_t)index_of(h->session)), (uint64_t)h->count), h->slot);
        x = mix(mix(mix(x, (uint64_t)h->seen), h->unsure), h->opens);
    }
    return x;
}

static uint64_t fingerprint(void)
{
    const pt_fastsync *y = &W.sync;
    /* Only the acquires the daemon has not counted yet matter, and what a
     * claim saw only for a lock (publish compares its holder with it). */
    int lock = !is_sem();
    const uint64_t world[] = {
        atomic_load(&W.cell.word), atomic_load(&W.cell.base), atomic_load(&W.cell.depth),
        is_sem() ? atomic_load(&W.cell.count) - y->count : y->next, atomic_load(&W.cell.next),
        y->fenced, lock ? y->seen.token : 0, y->base, y->rebase, y->kept, y->busy, y->seen.keep,
        lock ? (uint64_t)index_of(y->seen.holder) : 0, lock ? y->seen.thread : 0,
        lock ? y->seen.depth : 0, (uint64_t)index_of(W.st.holder), W.st.thread, W.st.depth,
        W.st.token, (uint64_t)W.st.waiters, (uint64_t)W.st.value, W.last_token,
        (uint64_t)W.releasing, (uint64_t)W.acquiring, (uint64_t)W.holder, (uint64_t)W.value,
        (uint64_t)W.deaths, (uint64_t)W.inspects, (uint64_t)W.expired,
        /* a death is offered after a step only while one may come */
        (uint64_t)(W.deaths < W.sc->deaths ? W.last_step : -1), (uint64_t)W.uncertain,
        (uint64_t)W.scribbles, (uint64_t)W.ev_flight, (uint64_t)W.ev_value, (uint64_t)W.busy,
        (uint64_t)W.dkind, (uint64_t)W.dparty, W.p[DAEMON].hist, holds_print()};
    uint64_t h = 0;

    for (size_t i = 0; i < sizeof(world) / sizeof(world[0]); i++)
        h = mix(h, world[i]);
    for (int i = 0; i < W.sc->nparties; i++) {
        const party *p = &W.p[i];
        const uint64_t f[] = {p->state,
                              p->started,
                              p->has_req,
                              p->ended,
                              (uint64_t)p->held,
                              (uint64_t)p->last_ok,
                              (uint64_t)p->in_op,
                              (uint64_t)p->opi,
                              live_hist(p),
                              (uint64_t)parked_rank(p),
                              (uint64_t)p->answer_due,
                              (uint64_t)p->watching,
                              (uint64_t)p->got,
                              p->stale_id ? p->stale_token : 0,
                              (uint64_t)p->syncs};

        for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
            h = mix(h, f[j]);
    }
    return h ? h : 1;
}

static struct {
    uint64_t *slot;
    size_t cap, n;
} seen;

static void seen_insert(uint64_t h)
{
    size_t i = h & (seen.cap - 1);

    while (seen.slot[i] && seen.slot[i] != h)
        i = (i + 1) & (seen.cap - 1);
    seen.n += !seen.slot[i];
    seen.slot[i] = h;
}

/* 1 the first time h is seen. */
static int seen_visit(uint64_t h)
{
    size_t i, n = seen.n;

    if (2 * (seen.n + 1) > seen.cap) {
        uint64_t *old = seen.slot;
        size_t cap = seen.cap;

        seen.cap = cap ? 2 * cap : 1u << 16;
        seen.slot = calloc(seen.cap, sizeof(*seen.slot));
        assert_non_null(seen.slot);
        seen.n = 0;
        for (i = 0; i < cap; i++) {
            if (old[i])
                seen_insert(old[i]);
        }
        free(old);
    }
    seen_insert(h);
    return seen.n > n;
}

static void seen_reset(void)
{
    free(seen.slot);
    seen.slot = NULL;
    seen.cap = seen.n = 0;
}

static void world_free(void)
{
    pt_core_free(W.core);
}

static void execute(const scenario *sc)
{
    action a[2 * MAXP + 4 + 16];
    int n, replay = path.len;

    path.pos = 0;
    trace.n = 0;
    world_init(sc);
    while ((n = actions(a)) > 0) {
        n += scribble_actions(a + n);
        run_action(a[choose(n)]);
        /* Past the replayed prefix, a state seen before ends the run. */
        if (path.pos >= replay && !seen_visit(fingerprint())) {
            world_free();
            return;
        }
    }
    world_check_end();
    world_free();
}

/* The next path depth-first; 0 when every one was taken. */
static int backtrack(void)
{
    while (path.len > 0 && path.chosen[path.len - 1] + 1 >= path.count[path.len - 1])
        path.len--;
    if (path.len == 0)
        return 0;
    path.chosen[path.len - 1]++;
    return 1;
}

static long explore(const scenario *sc)
{
    long executions = 0;

    path.len = 0;
    for (int i = 0; i <= MAXP; i++)
        W.p[i].stack = W.p[i].stack ? W.p[i].stack : malloc(STACK_SIZE);
    do {
        execute(sc);
        executions++;
    } while (backtrack());
    print_message("%s: %ld executions, %zu states\n", sc->name, executions, seen.n);
    seen_reset();
    return executions;
}

/* ------------------------------------------------------------------ */
/* The scenarios                                                       */
/* ------------------------------------------------------------------ */

/* Each runs in CI in about a second; the counts are printed. Deaths can
 * strike at every step of every party (and the session's end then comes
 * at any later point), an inspection claims the word at any point, and a
 * timed wait expires at any point. */
/* clang-format off */
static const scenario scenarios[] = {
    /* name, kind, value, parties, operations, deaths, inspections, scribbles, watch */
    {"Lock: two parties acquire and release, both may die, two inspections",
     PT_KIND_LOCK, 1, 2, {{OP_ACQ, OP_REL}, {OP_ACQ, OP_REL}}, 2, 2, 0, 1},
    {"Lock: a holder, a timed waiter and a try, a death",
     PT_KIND_LOCK, 1, 3, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}, {OP_TRY, OP_REL}}, 1, 0, 0, 0},
    {"Lock: three blocking parties",
     PT_KIND_LOCK, 1, 3, {{OP_ACQ, OP_REL}, {OP_ACQ, OP_REL}, {OP_ACQ, OP_REL}}, 0, 0, 0, 1},
    {"Lock: handed over through the word to a timed waiter that may expire, a waiter behind it",
     PT_KIND_LOCK, 1, 3, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}, {OP_ACQ, OP_REL}}, 0, 0, 0, 1},
    {"RLock: a party recursing, a timed waiter, a death, an inspection",
     PT_KIND_RLOCK, 1, 2, {{OP_ACQ, OP_ACQ, OP_REL_ALL}, {OP_TIMED, OP_REL}}, 1, 1, 0, 1},
    {"RLock: a party recursing, a waiter and a try, a death",
     PT_KIND_RLOCK, 1, 3, {{OP_ACQ, OP_ACQ, OP_REL_ALL}, {OP_ACQ, OP_REL}, {OP_TRY, OP_REL}}, 1, 0, 0, 1},
    {"Semaphore(1): a blocking, a timed and a try, a death",
     PT_KIND_SEMAPHORE, 1, 3, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}, {OP_TRY, OP_REL}}, 1, 0, 0, 0},
    {"Lock: a scribbler writes into the cell at any point, two parties, a death",
     PT_KIND_LOCK, 1, 2, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}}, 1, 0, 1, 1},
    {"RLock: a scribbler writes into the cell at any point, two parties",
     PT_KIND_RLOCK, 1, 2, {{OP_ACQ, OP_ACQ, OP_REL_ALL}, {OP_TIMED, OP_REL}}, 0, 0, 1, 0},
    {"Semaphore(1): a scribbler writes into the cell at any point, two parties, a death",
     PT_KIND_SEMAPHORE, 1, 2, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}}, 1, 0, 1, 0},
    {"Event: set and clear, a waiter, two reads, a death, an inspection",
     PT_KIND_EVENT, 0, 3, {{OP_SET, OP_CLEAR, OP_SET}, {OP_WAIT, OP_ISSET}, {OP_ISSET, OP_CLEAR, OP_ISSET}}, 1, 1, 0, 0},
    {"Semaphore(2): one party takes both and gives both back in one call to two waiters",
     PT_KIND_SEMAPHORE, 2, 3, {{OP_ACQ, OP_ACQ, OP_REL_N}, {OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}}, 0, 0, 0, 0},
    {"Semaphore(2): one party takes both permits, a timed waiter, a death, an inspection",
     PT_KIND_SEMAPHORE, 2, 2, {{OP_ACQ, OP_ACQ, OP_REL_ALL}, {OP_TIMED, OP_TRY, OP_REL_ALL}}, 1, 1, 0, 0},
    {"BoundedSemaphore(1), owned: two parties through their slots, both may die, two inspections",
     PT_KIND_BOUNDED_SEMAPHORE, 1, 2, {{OP_ACQ, OP_REL}, {OP_ACQ, OP_REL}}, 2, 2, 0, 0},
    {"BoundedSemaphore(2), owned: both permits and back in one call, a timed waiter, a death, an inspection",
     PT_KIND_BOUNDED_SEMAPHORE, 2, 2, {{OP_ACQ, OP_ACQ, OP_REL_N}, {OP_TIMED, OP_ACQ, OP_REL_ALL}}, 1, 1, 0, 0},
    {"BoundedSemaphore(2), owned: a release of another party's permit, two inspections",
     PT_KIND_BOUNDED_SEMAPHORE, 2, 2, {{OP_ACQ, OP_ACQ}, {OP_GIVE, OP_GIVE}}, 0, 2, 0, 0},
    {"BoundedSemaphore(1), owned: a scribbler writes into the cell or a slot at any point, a death",
     PT_KIND_BOUNDED_SEMAPHORE, 1, 2, {{OP_ACQ, OP_REL}, {OP_TIMED, OP_REL}}, 1, 0, 1, 0},
};
/* clang-format on */

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void test_scenario(void **state)
{
    CHECK(explore(*state) > 100);
}

int main(void)
{
    struct CMUnitTest tests[NSCENARIOS];

    for (size_t i = 0; i < NSCENARIOS; i++)
        tests[i] = (struct CMUnitTest){.name = scenarios[i].name,
                                       .test_func = test_scenario,
                                       .initial_state = (void *)&scenarios[i]};
    if (getenv("PT_MC_FILTER"))
        cmocka_set_test_filter(getenv("PT_MC_FILTER")); /* e.g. "RLock*" */
    return cmocka_run_group_tests_name("unit.test_fast_protocol", tests, NULL, NULL);
}
