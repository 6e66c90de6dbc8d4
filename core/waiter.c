/*
 * waiter.c - parked calls: allocation from a free list, FIFO queues, the
 * deadline min-heap, and the one way out (unlink, answer, free).
 *
 * The heap keeps each waiter's index in the waiter, so a waiter granted
 * before its deadline leaves the heap in O(log n) without a search. Its
 * capacity is reserved when a waiter is allocated, so moving a waiter into
 * the heap later (a barrier entrant starting its wait) cannot fail.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core_int.h"

/* A waiter, its slot in the heap and its bucket in the index of lock waits
 * (whose rooms double), and the hold record an owned semaphore's waiter
 * reserves. */
_Static_assert(PT_MALLOC_CHUNK(sizeof(pt_waiter)) + 2 * sizeof(pt_waiter *) +
                       2 * sizeof(pt_waiter *) + PT_MALLOC_CHUNK(sizeof(pt_semhold)) <=
                   PT_MEM_WAITER,
               "a waiter outgrew PT_MEM_WAITER: update it and the per-uid arithmetic in core.h");

int pt__heap_reserve(pt_heap *h, size_t n)
{
    size_t cap = h->cap ? h->cap : PT_HEAP_INITIAL;
    pt_waiter **v;

    if (n <= h->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    v = realloc(h->v, cap * sizeof(*v));
    if (v == NULL)
        return PT_ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

void pt__heap_free(pt_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}

void pt__heap_fit(pt_heap *h, size_t n)
{
    size_t cap = PT_HEAP_INITIAL;
    pt_waiter **v;

    while (cap < n)
        cap *= 2;
    if (cap >= h->cap)
        return;
    v = realloc(h->v, cap * sizeof(*v));
    if (v == NULL)
        return; /* the bigger room stays, and serves as well */
    h->v = v;
    h->cap = cap;
}

/* Earlier deadline first; equal deadlines in arrival order. */
static int heap_less(const pt_waiter *a, const pt_waiter *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void heap_set(pt_heap *h, size_t i, pt_waiter *w)
{
    h->v[i] = w;
    w->heap_idx = i;
}

static void heap_up(pt_heap *h, size_t i)
{
    pt_waiter *w = h->v[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (!heap_less(w, h->v[p]))
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, w);
}

static void heap_down(pt_heap *h, size_t i)
{
    pt_waiter *w = h->v[i];

    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const pt_waiter *best = w;

        if (l < h->len && heap_less(h->v[l], best)) {
            m = l;
            best = h->v[l];
        }
        if (l + 1 < h->len && heap_less(h->v[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(h, i, h->v[m]);
        i = m;
    }
    heap_set(h, i, w);
}

void pt__heap_push(pt_heap *h, pt_waiter *w)
{
    heap_set(h, h->len++, w);
    heap_up(h, h->len - 1);
}

void pt__heap_remove(pt_heap *h, pt_waiter *w)
{
    size_t i = w->heap_idx;
    pt_waiter *last;

    if (i == PT_HEAP_NONE)
        return;
    w->heap_idx = PT_HEAP_NONE;
    last = h->v[--h->len];
    if (i == h->len)
        return;
    heap_set(h, i, last);
    if (i > 0 && heap_less(last, h->v[(i - 1) / 2]))
        heap_up(h, i);
    else
        heap_down(h, i);
}

pt_waiter *pt__heap_top(const pt_heap *h)
{
    return h->len ? h->v[0] : NULL;
}

void pt__queue_init(pt_queue *q)
{
    TAILQ_INIT(&q->head);
    q->len = 0;
}

void pt__queue_push(pt_queue *q, pt_waiter *w)
{
    TAILQ_INSERT_TAIL(&q->head, w, qlink);
    q->len++;
    w->queue = q;
}

void pt__queue_remove(pt_waiter *w)
{
    if (w->queue == NULL)
        return;
    TAILQ_REMOVE(&w->queue->head, w, qlink);
    w->queue->len--;
    w->queue = NULL;
}

/* A waiter for session s, counted against its limit and its user's quota;
 * the caller parks it or frees it. Returns 0, PT_ELIMIT or PT_ENOMEM. */
int pt__waiter_new(pt_core *c, pt_session *s, pt_waiter **out)
{
    pt_waiter *w;

    if (s->nwaiters >= c->limits.max_waiters_per_session || pt__uid_waiters_full(c, s))
        return PT_ELIMIT;
    if (pt__heap_reserve(&c->heap, c->nwaiters + 1) != 0)
        return PT_ENOMEM;
    w = c->free_waiters;
    if (w != NULL) {
        c->free_waiters = w->free_next;
        c->nfree_waiters--;
    } else if ((w = malloc(sizeof(*w))) == NULL) {
        return PT_ENOMEM;
    }
    *w = (pt_waiter){
        .session = s,
        .heap_idx = PT_HEAP_NONE,
        .deadline = PT_DEADLINE_NONE,
        .seq = ++c->seq,
        .since = c->now,
    };
    s->nwaiters++;
    s->user->waiters++;
    c->nwaiters++;
    *out = w;
    return 0;
}

/* Link w into queue q of obj, its handle's list and, with a deadline, the
 * heap. */
void pt__waiter_park(pt_core *c, pt_waiter *w, pt_obj *obj, pt_queue *q, pt_handle *slot,
                     uint64_t deadline)
{
    w->obj = obj;
    pt__queue_push(q, w);
    if (w->kind == PT_WK_LOCK || w->kind == PT_WK_REACQUIRE)
        pt__deadlock_index(c, w);
    if (w->hlink.le_prev == NULL)
        LIST_INSERT_HEAD(&slot->waiters, w, hlink);
    w->deadline = deadline;
    if (deadline != PT_DEADLINE_NONE)
        pt__heap_push(&c->heap, w);
}

void pt__waiter_detach(pt_core *c, pt_waiter *w)
{
    pt__deadlock_unwait(c, w); /* while the graph it was in is whole */
    pt__queue_remove(w);
    pt__heap_remove(&c->heap, w);
    w->deadline = PT_DEADLINE_NONE;
    if (w->hlink.le_prev != NULL) {
        LIST_REMOVE(w, hlink);
        w->hlink.le_prev = NULL;
    }
}

void pt__waiter_free(pt_core *c, pt_waiter *w)
{
    pt__waiter_detach(c, w);
    if (w->spare != NULL) {
        pt__semhold_release(c, w->spare);
        w->spare = NULL;
    }
    w->session->nwaiters--;
    w->session->user->waiters--;
    c->nwaiters--;
    /* Kept for reuse while spares are fewer than the waiters parked (and
     * PT_SPARE_KEEP); past that a spare goes too, so the spares of a peak
     * go as it ends, a few at a time. */
    if (c->nfree_waiters >= PT_SPARE_KEEP && c->nfree_waiters >= c->nwaiters) {
        free(w);
        if ((w = c->free_waiters) != NULL && c->nfree_waiters > PT_SPARE_KEEP &&
            c->nfree_waiters > c->nwaiters) {
            c->free_waiters = w->free_next;
            c->nfree_waiters--;
            free(w);
        }
        return;
    }
    w->free_next = c->free_waiters;
    c->free_waiters = w;
    c->nfree_waiters++;
}

/* The one way a parked call is answered: unlinked first, so the sink never
 * sees a waiter that anything still points to, then freed. */
/* The operation a parked call came with. */
static int waiter_op(const pt_waiter *w)
{
    static const int ops[] = {
        [PT_WK_LOCK] = PT_OP_ACQUIRE,         [PT_WK_REACQUIRE] = PT_OP_COND_WAIT,
        [PT_WK_COND] = PT_OP_COND_WAIT,       [PT_WK_SEM] = PT_OP_ACQUIRE,
        [PT_WK_EVENT] = PT_OP_EVENT_WAIT,     [PT_WK_BARRIER] = PT_OP_BARRIER_WAIT,
        [PT_WK_ENTRANT] = PT_OP_BARRIER_WAIT,
    };

    return w->kind < sizeof(ops) / sizeof(ops[0]) ? ops[w->kind] : 0;
}

void pt__waiter_answer(pt_core *c, pt_waiter *w, pt_result *r)
{
    pt__waiter_detach(c, w);
    pt__stat_waited(c, w, r);
    r->id = w->id;
    r->thread = w->thread;
    pt__answer(c, w->session, waiter_op(w), r);
    pt__waiter_free(c, w);
}

static const char *waiter_op_name(const pt_waiter *w)
{
    return (w->kind == PT_WK_LOCK || w->kind == PT_WK_SEM) ? "acquire" : "wait";
}

void pt__waiter_fail(pt_core *c, pt_waiter *w, int status, const char *fmt, ...)
{
    char text[512];
    pt_result r = {.status = status, .message = c->msg};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(c->msg, sizeof(c->msg), "%s '%s': %s: %s", pt__kind_name(w->target->kind),
             w->target->name, waiter_op_name(w), text);
    pt__waiter_answer(c, w, &r);
}

/* Take w out of everything. answer != 0: its handle was closed and it is
 * told so; else its session ended and nobody is told. A barrier party that
 * leaves breaks the barrier for the others, as a timeout would. */
void pt__waiter_cancel(pt_core *c, pt_waiter *w, int answer, uint64_t now)
{
    pt_obj *obj = w->obj;
    int party = w->kind == PT_WK_BARRIER;

    if (answer)
        pt__waiter_fail(c, w, PT_EBADHANDLE,
                        "handle closed while a call was waiting; keep the handle open until "
                        "its calls return");
    else
        pt__waiter_free(c, w);
    if (party)
        pt__barrier_party_left(c, obj, answer ? PT_BR_PARTY_CLOSED : PT_BR_PARTY_SESSION_END, now);
}

/* w's deadline passed; it is already out of the heap. */
void pt__waiter_timeout(pt_core *c, pt_waiter *w, uint64_t now)
{
    pt_result r = {.ok = 0};

    pt__stat_timeout(c, w);
    switch (w->kind) {
    case PT_WK_COND:
        pt__cond_timeout(c, w);
        break;
    case PT_WK_BARRIER:
        pt__barrier_timeout(c, w, now);
        break;
    default:
        pt__waiter_answer(c, w, &r);
        break;
    }
}

void pt__waiters_trim(pt_core *c)
{
    while (c->free_waiters != NULL) {
        pt_waiter *w = c->free_waiters;

        c->free_waiters = w->free_next;
        free(w);
    }
    c->nfree_waiters = 0;
}
