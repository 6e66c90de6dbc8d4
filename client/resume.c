/*
 * resume.c - taking a session up again after the daemon restarts.
 *
 * A daemon with --state-dir keeps the session across its restart: when the
 * connection ends, the client reads what its shared words said (setting
 * CLAIM in each, so nothing changes them after), connects again and names
 * the session, its key, those reclaims and the calls still unanswered;
 * blocked callers go on waiting, and the calls the old daemon never read
 * are sent again with what is left of their timeouts. The objects' handles
 * are carried to the new generation.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "client_int.h"
#include "fastword.h"
#include "wire.h"

/* How often a resuming client tries to reach a daemon not back yet. */
#define RESUME_RETRY_NS 20000000u

struct hello_resume {
    Pythread__Reclaim *reclaims;
    Pythread__Reclaim **reclaim_ptrs;
    size_t nreclaims;
    uint64_t *pending;
    size_t npending;
    int resumed;      /* the daemon gave the session back */
    uint64_t *resend; /* of pending, the calls it never read */
    size_t nresend;
};

/* ------------------------------------------------------------------ */
/* The hello                                                           */
/* ------------------------------------------------------------------ */

void pt__resume_info_take(pt_client *c, const Pythread__HelloInfo *info, hello_resume *hr)
{
    c->resume_key_len = 0;
    if (info->has_resume_key && info->resume_key.len > 0 &&
        info->resume_key.len <= sizeof(c->resume_key) && !c->resume_off) {
        memcpy(c->resume_key, info->resume_key.data, info->resume_key.len);
        c->resume_key_len = info->resume_key.len;
    }
    if (hr == NULL || !info->resumed)
        return;
    hr->resumed = 1;
    hr->resend = malloc((info->n_resend ? info->n_resend : 1) * sizeof(*hr->resend));
    if (hr->resend == NULL)
        return; /* the calls to send again fail as the session's end would */
    if (info->n_resend > 0)
        memcpy(hr->resend, info->resend, info->n_resend * sizeof(*hr->resend));
    hr->nresend = info->n_resend;
}

void pt__hello_resume_fill(const pt_client *c, const hello_resume *hr, Pythread__HelloArgs *h)
{
    h->has_resume_session = h->has_resume_key = 1;
    h->resume_session = c->session_id;
    h->resume_key.data = (uint8_t *)c->resume_key;
    h->resume_key.len = c->resume_key_len;
    h->n_reclaims = hr->nreclaims;
    h->reclaims = hr->reclaim_ptrs;
    h->n_pending = hr->npending;
    h->pending = hr->pending;
}

static void hello_resume_free(hello_resume *hr)
{
    free(hr->reclaims);
    free(hr->reclaim_ptrs);
    free(hr->pending);
    free(hr->resend);
}

/* ------------------------------------------------------------------ */
/* What the hello names: the words and the unanswered calls            */
/* ------------------------------------------------------------------ */

/* What o's word said, when o is a handle of session gen with a word: set
 * CLAIM in it for good and read it. */
static int reclaim_read(pt_object *o, uint32_t gen, uint32_t sid, Pythread__Reclaim *out)
{
    uint64_t slot = atomic_load(&o->slot);
    pt_fast_cell *cell = atomic_load(&o->cell);
    pt_fast_cell *hold = atomic_load(&o->hold_cell);
    uint32_t hold_id = atomic_load(&o->hold_id);
    pt_fast_reclaim rc;

    if (cell == NULL || pt__slot_gen(slot) != gen)
        return 0;
    if (hold != NULL && hold_id != 0)
        pt_fast_reclaim_slot(cell, hold, hold_id, &rc); /* an owned semaphore */
    else
        pt_fast_reclaim_read(cell, o->params.kind, sid, &rc);
    if (rc.state == PT_FAST_RECLAIM_UNKNOWN)
        return 0;
    pythread__reclaim__init(out);
    out->has_handle = out->has_state = 1;
    out->handle = pt__slot_handle(slot);
    out->state = (Pythread__Reclaim__State)rc.state;
    out->has_thread = out->has_depth = out->has_token = rc.state == PT_FAST_RECLAIM_HELD;
    out->thread = rc.tid;
    out->depth = rc.depth;
    out->token = rc.token;
    out->has_value = rc.state == PT_FAST_RECLAIM_VALUE || rc.state == PT_FAST_RECLAIM_SLOT;
    out->value = rc.value;
    return 1;
}

/* Every word of the lost session's handles, read and frozen. */
static int reclaims_collect(pt_client *c, uint32_t sid, hello_resume *hr)
{
    size_t n = 0, i = 0;
    pt_object *o;

    pthread_mutex_lock(&pt__registry_mu);
    LIST_FOREACH(o, &c->objects, link)
    {
        n++;
    }
    hr->reclaims = calloc(n ? n : 1, sizeof(*hr->reclaims));
    hr->reclaim_ptrs = calloc(n ? n : 1, sizeof(*hr->reclaim_ptrs));
    if (hr->reclaims == NULL || hr->reclaim_ptrs == NULL) {
        pthread_mutex_unlock(&pt__registry_mu);
        return -1;
    }
    LIST_FOREACH(o, &c->objects, link)
    {
        if (i < n && reclaim_read(o, c->gen, sid, &hr->reclaims[i])) {
            hr->reclaim_ptrs[i] = &hr->reclaims[i];
            i++;
        }
    }
    hr->nreclaims = i;
    pthread_mutex_unlock(&pt__registry_mu);
    return 0;
}

static int pendings_collect(pt_client *c, hello_resume *hr)
{
    size_t n = 0;
    pending *p;

    for (unsigned i = 0; i < PENDING_BUCKETS; i++) {
        LIST_FOREACH(p, &c->pending[i], link)
        {
            n++;
        }
    }
    hr->pending = calloc(n ? n : 1, sizeof(*hr->pending));
    if (hr->pending == NULL)
        return -1;
    for (unsigned i = 0; i < PENDING_BUCKETS; i++) {
        LIST_FOREACH(p, &c->pending[i], link)
        {
            hr->pending[hr->npending++] = p->id;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reconnect                                                           */
/* ------------------------------------------------------------------ */

/* Connect and take the session up, trying until the daemon is back or the
 * connect timeout has passed: the old one may still be dying (its socket
 * accepts, then resets), the new one not yet listening. */
static int resume_dial(pt_client *c, hello_resume *hr)
{
    uint64_t end = pt_spin_now_ns() + (uint64_t)pt__connect_timeout_ms() * 1000000u;
    int fd, err, r;

    for (;;) {
        r = pt__client_dial(c, &fd, &err);
        if (r == 0)
            r = pt__client_open_on(c, fd, hr);
        if (r == 0 || pt_spin_now_ns() >= end)
            return r;
        nanosleep(&(struct timespec){0, RESUME_RETRY_NS}, NULL);
    }
}

/* The handles of session old stand for the same ones in the new
 * generation; their words are gone with the old daemon (new ones come with
 * the next open of each object). */
static void objects_carry(pt_client *c, uint32_t old)
{
    pt_object *o;

    pthread_mutex_lock(&pt__registry_mu);
    LIST_FOREACH(o, &c->objects, link)
    {
        uint64_t slot = atomic_load(&o->slot);

        if (pt__slot_gen(slot) != old)
            continue;
        atomic_store_explicit(&o->hold_cell, NULL, memory_order_relaxed);
        atomic_store_explicit(&o->hold_id, 0, memory_order_relaxed);
        atomic_store_explicit(&o->cell, NULL, memory_order_relaxed);
        atomic_store_explicit(&o->slot, (uint64_t)c->gen << 32 | pt__slot_handle(slot),
                              memory_order_release);
    }
    pthread_mutex_unlock(&pt__registry_mu);
}

/* 1 when an object of the lost session is a cluster object (its handle
 * has the daemon's cluster bit): its cluster session ended with the old
 * daemon's lease, so taking the session up would leave the process
 * believing in holds another host may have by now. */
static int cluster_objects_open(pt_client *c, uint32_t old)
{
    pt_object *o;
    int found = 0;

    pthread_mutex_lock(&pt__registry_mu);
    LIST_FOREACH(o, &c->objects, link)
    {
        uint64_t slot = atomic_load(&o->slot);

        if (pt__slot_gen(slot) == old && (pt__slot_handle(slot) & PT_WIRE_CLUSTER_HANDLE) != 0)
            found = 1;
    }
    pthread_mutex_unlock(&pt__registry_mu);
    return found;
}

/* ------------------------------------------------------------------ */
/* The calls the old daemon never read                                 */
/* ------------------------------------------------------------------ */

/* What is left of a wait's timeout, counted from when it was first sent. */
static void timeout_left(Pythread__Request *req, uint64_t sent_ns)
{
    double spent = (double)(pt_spin_now_ns() - sent_ns) / 1e9;

    switch (req->op) {
    case PYTHREAD__OP__OP_ACQUIRE:
    case PYTHREAD__OP__OP_COND_WAIT:
    case PYTHREAD__OP__OP_EVENT_WAIT:
    case PYTHREAD__OP__OP_BARRIER_WAIT:
        if (req->has_timeout && req->timeout > 0)
            req->timeout = req->timeout > spent ? req->timeout - spent : 0;
        break;
    default:
        break;
    }
}

/* A call the old daemon never read goes again, under its own id. */
static void pending_resend(pt_client *c, pending *p)
{
    Pythread__Request *req = p->req;
    size_t size;
    uint8_t *frame;

    timeout_left(req, p->sent_ns);
    req->has_watch = req->watch = 0;
    size = pt_wire_request_frame_size(req);
    frame = malloc(size);
    if (frame == NULL || pt__send_all(c->fd, frame, pt_wire_request_frame_pack(req, frame)) < 0)
        shutdown(c->fd, SHUT_RDWR); /* the reader sees the end; the calls fail */
    free(frame);
}

static void pendings_resend(pt_client *c, const hello_resume *hr)
{
    for (size_t i = 0; i < hr->nresend; i++) {
        pending *p = pt__pending_find(c, hr->resend[i]);

        if (p != NULL && p->req != NULL)
            pending_resend(c, p);
    }
}

/* ------------------------------------------------------------------ */
/* Taking the session up                                               */
/* ------------------------------------------------------------------ */

int pt__client_resume(pt_client *c, uint32_t old_sid, char *why, size_t len)
{
    hello_resume hr = {0};
    uint32_t old = c->gen;
    int r;

    if (c->resume_key_len == 0 || c->resume_off)
        return -1;
    if (cluster_objects_open(c, old)) {
        pt__conn_close(c);
        snprintf(why, len,
                 "pythreadd restarted, and this session had cluster objects open: their "
                 "locks, permits and waits ended with the daemon's place in the cluster, so the "
                 "session is not taken up; open the objects again");
        return -1;
    }
    if (reclaims_collect(c, old_sid, &hr) < 0 || pendings_collect(c, &hr) < 0 ||
        resume_dial(c, &hr) < 0) {
        hello_resume_free(&hr);
        return -1;
    }
    r = hr.resumed ? 0 : -1;
    if (r == 0) {
        objects_carry(c, old);
        pendings_resend(c, &hr);
    } else {
        /* the new session its hello opened is not the one lost: it goes, so
         * the process is where any loss leaves it (the next call tells of
         * the loss, the one after connects) */
        pt__conn_close(c);
        snprintf(why, len,
                 "pythreadd restarted and did not keep the session (its --grace ran out, or it "
                 "keeps no state)");
    }
    hello_resume_free(&hr);
    return r;
}

/* The connection on fd has ended (the daemon closed it). */
static int conn_ended(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* The descriptor of session `session` once it is up (on its old or a new
 * connection), or PT_ESESSION when it is gone. Called with mu held. */
static int session_settle(pt_client *c, uint64_t session)
{
    for (;;) {
        if (c->fd < 0 || c->session_id != session)
            return PT_ESESSION;
        if (!conn_ended(c->fd))
            return c->fd;
        pt__client_end_take(c);
    }
}

int pt_client_session_wait(pt_client *c, uint64_t session)
{
    int cancel_state, fd;

    if (!c)
        return pt__error(PT_EINVAL, "pt_client_session_wait: client is NULL; open one first");
    /* As in a call: a thread cancelled in the wait would keep mu, or leave
     * the reading role with nobody. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    pt__client_enter(c);
    fd = session_settle(c, session);
    if (fd < 0)
        c->loss[0] = '\0'; /* told here */
    pthread_mutex_unlock(&c->mu);
    pthread_setcancelstate(cancel_state, NULL);
    if (fd < 0)
        return pt__error(PT_ESESSION,
                         "pt_client_session_wait: session %llu is gone: pythreadd did not keep it "
                         "(no --state-dir, or its --grace ran out)",
                         (unsigned long long)session);
    return fd;
}
