/*
 * client.c - the session: connect and hello, the request/response
 * multiplexer shared by all threads of a process, loss and reconnection, and
 * the fresh session a forked child gets.
 *
 * Every call registers a pending record on its own stack, writes its whole
 * frame under the client's mutex and then waits for its answer. Nobody runs
 * a dedicated reader thread: a caller that finds nobody reading becomes the
 * reader (leader/follower), so a single-threaded process pays one send() and
 * one recv() per call and no thread hop. The reader hands every answer it
 * finds to its caller and, once its own answer is in, passes the reading on
 * to one of the callers still parked.
 *
 * A daemon with --state-dir keeps the session across its restart: when the
 * connection ends, the client reads what its shared words said (setting
 * CLAIM in each, so nothing changes them after), connects again and names
 * the session, its key, those reclaims and the calls still unanswered;
 * blocked callers go on waiting, and the calls the old daemon never read
 * are sent again with what is left of their timeouts. A monitor thread
 * notices the end at once when no caller is reading, so a process that
 * holds a lock and makes no call still takes its session up in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fastwake.h"
#include "fastword.h"
#include "session.h"
#include "sockpath.h"
#include "spin.h"

#define PENDING_BUCKETS 64u   /* power of two: ids are sequential */
#define SMALL_FRAME     1024u /* any request with names of legal size fits */
#define MAX_FRAME_CAP   (16u << 20)

typedef struct pending {
    LIST_ENTRY(pending) link;   /* in its id bucket while unanswered */
    TAILQ_ENTRY(pending) qlink; /* in the parked queue while it sleeps */
    uint64_t id;
    pthread_cond_t cond;
    int done;
    int queued;
    pt__reply *rep;
    char *errbuf;           /* the caller's thread-local message buffer */
    Pythread__Request *req; /* the caller's, to send again after a restart */
    uint64_t sent_ns;       /* when it was sent (pt_spin_now_ns) */
} pending;

LIST_HEAD(pending_list, pending);
TAILQ_HEAD(pending_queue, pending);
LIST_HEAD(object_list, pt_object);

/* A group of shared cells the daemon passed (fastword.h), mapped until the
 * client closes: objects of an older session may still point into it. */
typedef struct fast_map {
    uint32_t gen;
    uint32_t group;
    void *base;
    size_t size;
} fast_map;

struct pt_client {
    pthread_mutex_t mu;
    int fd;             /* -1: no session; the next call connects */
    int reading;        /* a thread is in recv() with mu dropped */
    pt_spin spin;       /* the reader's polling before recv() blocks */
    uint32_t gen;       /* session generation, bumped by every connect */
    atomic_uint forked; /* fork generation this state belongs to */
    uint64_t next_id;
    uint64_t session_id;
    uint32_t max_frame; /* the daemon's limit for our messages */
    struct pending_list pending[PENDING_BUCKETS];
    struct pending_queue parked; /* callers waiting for an answer or their turn to read */
    uint8_t *rbuf;               /* 4 + max frame: always room for one whole frame */
    size_t rcap;
    size_t rlen;
    void *arena_mem;
    pt_wire_arena arena;
    struct object_list objects; /* guarded by registry_mu */
    /* The fast path: gen << 32 | the session's id in words while the
     * session is up and this process's own, else 0; read without mu. */
    _Atomic uint64_t fast_live;
    int fast_off;     /* PYTHREAD_FASTPATH=0 */
    uint32_t fast_id; /* the hello's, for the session being opened */
    int *fdq;         /* descriptors received, not yet claimed by their answer */
    unsigned nfdq, capfdq;
    fast_map *maps;
    unsigned nmaps;
    char why[256]; /* why the session is ending, when known */
    /* A loss no call has heard of (the monitor took in the end while no
     * call waited): the next call fails with it before it reconnects. */
    char loss[PT__ERRMSG_MAX];
    /* Taking the session up again after a restart of the daemon. */
    uint8_t resume_key[PT_WIRE_RESUME_KEY_MAX];
    size_t resume_key_len; /* 0: the daemon does not keep sessions */
    int resume_off;        /* PYTHREAD_RESUME=0 */
    /* The monitor thread, in the fork generation that started it. */
    pthread_t monitor;
    int monitor_on;
    int monitor_stop;
    int wake[2]; /* a pipe that wakes it: the socket changed, or the client closes */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * registry_mu guards the lists of objects and the reset after fork; the
 * atfork handlers hold it across fork() so a child never inherits a list
 * half-updated.
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Thread_local pid_t tid_cache;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&registry_mu);
}

static void atfork_child(void)
{
    tid_cache = 0;
    atomic_fetch_add(&fork_generation, 1);
    pthread_mutex_unlock(&registry_mu);
}

static void atfork_install(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

pid_t pt__tid(void)
{
    if (!tid_cache)
        tid_cache = gettid();
    return tid_cache;
}

/* ------------------------------------------------------------------ */
/* Objects list (the object module owns the objects themselves)        */
/* ------------------------------------------------------------------ */

void pt__client_link(pt_client *c, pt_object *o)
{
    pthread_mutex_lock(&registry_mu);
    LIST_INSERT_HEAD(&c->objects, o, link);
    pthread_mutex_unlock(&registry_mu);
}

void pt__object_ref(pt_object *o)
{
    pthread_mutex_lock(&registry_mu);
    o->refs++;
    pthread_mutex_unlock(&registry_mu);
}

/* Returns the references left; at 0 the object has left its client's list. */
unsigned pt__object_unref(pt_object *o)
{
    unsigned left;

    pthread_mutex_lock(&registry_mu);
    left = --o->refs;
    if (!left)
        LIST_REMOVE(o, link);
    pthread_mutex_unlock(&registry_mu);
    return left;
}

/* ------------------------------------------------------------------ */
/* Pending calls                                                       */
/* ------------------------------------------------------------------ */

static struct pending_list *pending_bucket(pt_client *c, uint64_t id)
{
    return &c->pending[id & (PENDING_BUCKETS - 1)];
}

static void pending_add(pt_client *c, pending *p, uint64_t id, pt__reply *rep)
{
    p->id = id;
    p->done = 0;
    p->queued = 0;
    p->rep = rep;
    p->errbuf = pt__errbuf();
    pthread_cond_init(&p->cond, NULL);
    LIST_INSERT_HEAD(pending_bucket(c, id), p, link);
}

static pending *pending_find(pt_client *c, uint64_t id)
{
    pending *p;

    LIST_FOREACH(p, pending_bucket(c, id), link)
    {
        if (p->id == id)
            return p;
    }
    return NULL;
}

/* The answer is in p->rep: wake its caller. */
static void pending_finish(pt_client *c, pending *p)
{
    p->done = 1;
    LIST_REMOVE(p, link);
    if (p->queued) {
        TAILQ_REMOVE(&c->parked, p, qlink);
        p->queued = 0;
    }
    pthread_cond_signal(&p->cond);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

/* Write all of buf; 0 or -errno. */
static int send_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Descriptors and shared cells                                        */
/* ------------------------------------------------------------------ */

/* Descriptors one read can bring; a frame carries at most one. */
#define FD_BATCH 4
/* The most bytes of cells a group may ask us to map. */
#define FAST_MAP_MAX ((size_t)1 << 40)

/* recv() that also takes descriptors sent with the bytes, into fds[]
 * (*nfds of them); any past FD_BATCH are closed by the kernel. */
static ssize_t sock_recv(int fd, void *buf, size_t len, int flags, int *fds, unsigned *nfds)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(FD_BATCH * sizeof(int))];
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    ssize_t n = recvmsg(fd, &m, flags | MSG_CMSG_CLOEXEC);
    struct cmsghdr *cm;

    if (n < 0)
        return n;
    for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < k; i++) {
            int got;

            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*nfds < FD_BATCH)
                fds[(*nfds)++] = got;
            else
                close(got);
        }
    }
    return n;
}

/* Queue what a read brought, in order; with no room they are closed, and
 * the answers that name them go without a mapping. */
static void fdq_push(pt_client *c, const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (c->nfdq == c->capfdq) {
            unsigned cap = c->capfdq ? 2 * c->capfdq : 4;
            int *grown = realloc(c->fdq, cap * sizeof(*grown));

            if (!grown) {
                close(fds[i]);
                continue;
            }
            c->fdq = grown;
            c->capfdq = cap;
        }
        c->fdq[c->nfdq++] = fds[i];
    }
}

static int fdq_take(pt_client *c)
{
    int fd;

    if (c->nfdq == 0)
        return -1;
    fd = c->fdq[0];
    memmove(c->fdq, c->fdq + 1, --c->nfdq * sizeof(*c->fdq));
    return fd;
}

static void fdq_close_all(pt_client *c)
{
    while (c->nfdq > 0)
        close(c->fdq[--c->nfdq]);
}

/* An answer that carries a group's memfd: map it for this session. A
 * group that cannot be mapped is simply not there: its objects take the
 * requests. */
static void fast_map_take(pt_client *c, const Pythread__FastCell *fc)
{
    int fd = fdq_take(c);
    fast_map *grown;
    void *base;

    if (fd < 0)
        return;
    if (fc->map_size == 0 || fc->map_size > FAST_MAP_MAX || fc->map_size % PT_FAST_CELL_SIZE) {
        close(fd);
        return;
    }
    base = mmap(NULL, (size_t)fc->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return;
    grown = realloc(c->maps, (c->nmaps + 1) * sizeof(*grown));
    if (!grown) {
        munmap(base, (size_t)fc->map_size);
        return;
    }
    c->maps = grown;
    c->maps[c->nmaps++] = (fast_map){c->gen, fc->group, base, (size_t)fc->map_size};
}

struct pt_fast_cell *pt__client_cell(pt_client *c, uint32_t gen, uint32_t group, uint32_t cell)
{
    struct pt_fast_cell *p = NULL;

    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; i < c->nmaps && !p; i++) {
        const fast_map *m = &c->maps[i];

        if (m->gen == gen && m->group == group && cell < m->size / PT_FAST_CELL_SIZE)
            p = (struct pt_fast_cell *)m->base + cell;
    }
    pthread_mutex_unlock(&c->mu);
    return p;
}

uint32_t pt__client_fast_id(pt_client *c, uint32_t gen)
{
    uint64_t live = atomic_load_explicit(&c->fast_live, memory_order_acquire);

    /* A forked child must not act as its parent's session. */
    if (live == 0 || (uint32_t)(live >> 32) != gen ||
        atomic_load_explicit(&c->forked, memory_order_relaxed) !=
            atomic_load_explicit(&fork_generation, memory_order_relaxed))
        return 0;
    return (uint32_t)live;
}

static void reply_copy(pt__reply *r, const Pythread__Response *m)
{
    const Pythread__State *s = m->state;

    r->status = m->status;
    r->ok = m->ok;
    r->run_action = m->run_action;
    r->created = m->created;
    r->handle = m->handle;
    r->value = m->value;
    r->token = m->token;
    r->has_fast = m->fast != NULL;
    if (m->fast) {
        r->fast_group = m->fast->group;
        r->fast_cell = m->fast->cell;
        r->fast_slot_cell = m->fast->slot_cell;
        r->fast_slot_id = m->fast->has_slot_id ? m->fast->slot_id : 0;
    }
    r->has_state = s != NULL;
    if (!s)
        return;
    r->state.kind = s->kind;
    r->state.locked = s->locked;
    r->state.owner_depth = s->owner_depth;
    r->state.value = s->value;
    r->state.initial = s->initial;
    r->state.is_set = s->is_set;
    r->state.parties = s->parties;
    r->state.n_waiting = s->n_waiting;
    r->state.broken = s->broken;
    r->state.timeout = s->timeout; /* absent: the schema default, 0 */
    r->state.token = s->token;
}

static Pythread__Response *frame_decode(pt_client *c, const uint8_t *body, size_t len)
{
    char err[128];
    Pythread__Response *m;

    pt_wire_arena_reset(&c->arena);
    m = pt_wire_response_decode(&c->arena, body, len, err, sizeof(err));
    if (!m) {
        snprintf(c->why, sizeof(c->why), "pythreadd sent a malformed response (%s)", err);
        return NULL;
    }
    if (m->status > 0) {
        snprintf(c->why, sizeof(c->why), "pythreadd sent status %d, which is not an error code",
                 m->status);
        return NULL;
    }
    return m;
}

/* Give one answer to its caller. -1 when the frame is not a response. */
static int frame_dispatch(pt_client *c, const uint8_t *body, size_t len)
{
    Pythread__Response *m = frame_decode(c, body, len);
    pending *p;

    if (!m)
        return -1;
    /* Whoever asked, the descriptor is this frame's: keep the queue in
     * step with the frames. */
    if (m->fast && m->fast->has_map_size)
        fast_map_take(c, m->fast);
    p = pending_find(c, m->id);
    if (!p) {
        /* Id 0 is the daemon's parting word before it closes us. */
        if (m->id == 0 && m->message && *m->message)
            snprintf(c->why, sizeof(c->why), "pythreadd: %s", m->message);
        return 0;
    }
    reply_copy(p->rep, m);
    if (m->status == 0 && p->rep->extra)
        p->rep->extra(p->rep->extra_arg, m);
    if (m->status < 0)
        snprintf(p->errbuf, PT__ERRMSG_MAX, "%s",
                 m->message && *m->message ? m->message : pt_strerror(m->status));
    pending_finish(c, p);
    return 0;
}

/* Length of the complete frame at off in rbuf, 0 if it is not all in yet, -1
 * if it is over the limit. */
static long frame_ready(pt_client *c, size_t off)
{
    uint32_t len;

    if (c->rlen - off < PT_WIRE_HEADER)
        return 0;
    len = pt_wire_len_get(c->rbuf + off);
    if (len > c->rcap - PT_WIRE_HEADER) {
        snprintf(c->why, sizeof(c->why), "pythreadd sent a frame of %u bytes, over the limit", len);
        return -1;
    }
    return c->rlen - off - PT_WIRE_HEADER >= len ? (long)len : 0;
}

/* Drop the first used bytes of rbuf, keeping the partial frame after them. */
static void frames_consume(pt_client *c, size_t used)
{
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
}

/* Hand out every complete frame in rbuf; a partial one stays. */
static int frames_dispatch(pt_client *c)
{
    size_t off = 0;
    long len;

    while ((len = frame_ready(c, off)) > 0) {
        if (frame_dispatch(c, c->rbuf + off + PT_WIRE_HEADER, (size_t)len) < 0)
            return -1;
        off += PT_WIRE_HEADER + (size_t)len;
    }
    frames_consume(c, off);
    return len < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Loss of the session                                                 */
/* ------------------------------------------------------------------ */

/*
 * The session is over: close it and fail every call still waiting on it. Only
 * a thread that is not reading and with no one else reading may call this
 * (the reader itself, after recv() returned), so the fd is never closed under
 * a thread blocked on it.
 */
static int client_resume(pt_client *c, uint32_t old_sid, char *why, size_t len);
static void monitor_wake(pt_client *c);

/* No session now: its connection closes. */
static void conn_close(pt_client *c)
{
    atomic_store(&c->fast_live, 0);
    close(c->fd);
    c->fd = -1;
    c->rlen = 0;
    fdq_close_all(c);
    monitor_wake(c);
}

static void client_lost(pt_client *c)
{
    char why[sizeof(c->why)];
    uint32_t old_sid = (uint32_t)atomic_load(&c->fast_live);
    int heard = 0;
    pending *p;
    unsigned i;

    snprintf(why, sizeof(why), "%s", c->why[0] ? c->why : "pythreadd closed the connection");
    c->why[0] = '\0';
    conn_close(c);
    if (client_resume(c, old_sid, why, sizeof(why)) == 0)
        return;
    snprintf(c->loss, sizeof(c->loss),
             "session lost: %s; locks held through it are released; the next call reconnects", why);
    for (i = 0; i < PENDING_BUCKETS; i++) {
        while ((p = LIST_FIRST(&c->pending[i]))) {
            p->rep->status = PT_ESESSION;
            snprintf(p->errbuf, PT__ERRMSG_MAX, "%s", c->loss);
            pending_finish(c, p);
            heard = 1;
        }
    }
    if (heard)
        c->loss[0] = '\0';
}

/*
 * Poll the socket for up to usec before the reader sleeps in recv(): an
 * answer that comes within it is taken without the wake-up of a sleeping
 * process, which costs tens of microseconds when it lands on another CPU.
 * Returns what recv() returned, or -1 with EAGAIN when the time ran out.
 * The yield lets whoever shares our CPU (the daemon, another client) run.
 */
static ssize_t recv_spin(int fd, void *buf, size_t len, uint32_t usec, int *fds, unsigned *nfds)
{
    uint64_t end = pt_spin_now_ns() + (uint64_t)usec * 1000u;
    ssize_t n;

    for (;;) {
        n = sock_recv(fd, buf, len, MSG_DONTWAIT, fds, nfds);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return n;
        if (pt_spin_now_ns() >= end)
            break;
        sched_yield();
    }
    errno = EAGAIN;
    return -1;
}

/* What a reader's recv() brought, handed out with mu held again. */
static void read_done(pt_client *c, ssize_t n, int err, const int *fds, unsigned nfds)
{
    c->reading = 0;
    fdq_push(c, fds, nfds);
    if (n > 0) {
        c->rlen += (size_t)n;
        if (frames_dispatch(c) == 0)
            return;
    } else if (n < 0 && !c->why[0]) {
        snprintf(c->why, sizeof(c->why), "reading from pythreadd failed: %s", strerror(err));
    }
    client_lost(c);
}

/* One recv() as the reader, mu dropped meanwhile; then hand out what came. */
static void client_read(pt_client *c)
{
    int fd = c->fd;
    uint32_t spin = pt_spin_budget(&c->spin);
    ssize_t n = -1;
    int err = EAGAIN, fds[FD_BATCH];
    unsigned nfds = 0;

    c->reading = 1;
    pthread_mutex_unlock(&c->mu);
    if (spin) {
        n = recv_spin(fd, c->rbuf + c->rlen, c->rcap - c->rlen, spin, fds, &nfds);
        err = errno;
    }
    if (n < 0 && err == EAGAIN) {
        do
            n = sock_recv(fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0, fds, &nfds);
        while (n < 0 && errno == EINTR);
        err = errno;
    } else {
        spin = UINT32_MAX; /* the spin found it */
    }
    pthread_mutex_lock(&c->mu);
    if (spin)
        pt_spin_learn(&c->spin, spin == UINT32_MAX);
    read_done(c, n, err, fds, nfds);
}

/*
 * The reader waiting for a Lock watches its word and the socket together
 * (fastwake.h): it polls both for its spin budget, then sleeps on the
 * cell's futex, woken by a releaser that hands it the lock or by the
 * daemon after it wrote answers to this session. The sleep is cut into
 * slices so that a daemon gone without a word is noticed: its socket reads
 * end-of-file at the next look.
 */
#define WATCH_SLICE_NS 100000000u

/* 1 when the lock was handed over (*token), else what recv() returned. */
static ssize_t watch_recv(pt_client *c, const pt__watch *wt, uint32_t spin, uint64_t *token,
                          int *fds, unsigned *nfds, int *handed)
{
    uint64_t end = pt_spin_now_ns() + (uint64_t)spin * 1000u;
    ssize_t n;

    for (;;) {
        uint32_t seen = pt_fast_wake_seen(wt->cell);

        if (pt_fast_lock_taken(wt->cell, wt->sid, wt->tid, token) == PT_FAST_OK) {
            *handed = 1;
            return 0;
        }
        n = sock_recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT, fds, nfds);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return n;
        if (spin && pt_spin_now_ns() < end)
            sched_yield();
        else
            pt_fast_sleep(wt->cell, seen, wt->tid, WATCH_SLICE_NS);
    }
}

/* The lock is p's without an answer: the daemon's, when it comes, finds no
 * caller and is dropped. */
static void watch_taken(pt_client *c, pending *p, uint64_t token)
{
    c->reading = 0;
    p->rep->status = 0;
    p->rep->ok = 1;
    p->rep->token = token;
    pending_finish(c, p);
}

/* client_read for the caller p, which watches wt. */
static void client_read_watch(pt_client *c, pending *p, const pt__watch *wt)
{
    uint32_t spin = pt_spin_budget(&c->spin);
    uint64_t t0 = pt_spin_now_ns(), token = 0;
    int err, handed = 0, fds[FD_BATCH];
    unsigned nfds = 0;
    ssize_t n;

    c->reading = 1;
    pthread_mutex_unlock(&c->mu);
    n = watch_recv(c, wt, spin, &token, fds, &nfds, &handed);
    err = errno;
    pthread_mutex_lock(&c->mu);
    if (spin)
        pt_spin_learn(&c->spin, pt_spin_now_ns() - t0 <= (uint64_t)spin * 1000u);
    if (handed)
        watch_taken(c, p, token);
    else
        read_done(c, n, err, fds, nfds);
}

/* ------------------------------------------------------------------ */
/* Connect and hello                                                   */
/* ------------------------------------------------------------------ */

static int connect_error(pt_client *c, int err)
{
    return pt__error(PT_ECONNECT,
                     "cannot connect to pythreadd at %s: %s; is the daemon running? set "
                     "PYTHREAD_SOCKET to its socket",
                     c->path, strerror(err));
}

/* How long a new session waits for the daemon, to accept the connection
 * and then to answer the hello: $PYTHREAD_CONNECT_TIMEOUT seconds, else 10.
 * A socket with no daemon serving it (a socket unit whose service failed to
 * start, a stopped daemon, a full listen backlog) then fails the call
 * instead of hanging it. */
static int connect_timeout_ms(void)
{
    const char *env = getenv("PYTHREAD_CONNECT_TIMEOUT");
    char *end;
    double s;

    if (!env || !*env)
        return 10000;
    s = strtod(env, &end);
    if (*end != '\0' || !(s > 0) || s > 86400)
        return 10000;
    return s < 0.001 ? 1 : (int)(s * 1000);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the hello's answer to be readable; 0 when it is, or an error. */
static int hello_wait(pt_client *c, int64_t deadline, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int64_t left;
    int r;

    do {
        left = deadline - monotonic_ms();
        r = poll(&p, 1, left > 0 ? (int)left : 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0)
        return 0;
    return pt__error(PT_ECONNECT,
                     "pythreadd at %s did not answer the hello within %.3g s; is the daemon "
                     "running and not stopped? (PYTHREAD_CONNECT_TIMEOUT sets the wait)",
                     c->path, timeout_ms / 1000.0);
}

/* Read synchronously until one whole frame is in (no reader exists yet). */
static long hello_read_frame(pt_client *c)
{
    int timeout_ms = connect_timeout_ms();
    int64_t deadline = monotonic_ms() + timeout_ms;
    int fds[FD_BATCH];
    unsigned nfds = 0;
    long len;

    while ((len = frame_ready(c, 0)) == 0) {
        ssize_t n;

        if (hello_wait(c, deadline, timeout_ms) < 0)
            return PT_ECONNECT;
        n = sock_recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0, fds, &nfds);
        fdq_push(c, fds, nfds);
        nfds = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pt__error(PT_ECONNECT,
                             "pythreadd at %s closed the connection during the hello%s%s; see "
                             "its log",
                             c->path, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        c->rlen += (size_t)n;
    }
    if (len < 0)
        return pt__error(PT_ECONNECT, "pythreadd at %s: %s", c->path, c->why);
    return len;
}

/* Make the receive side fit the daemon's frame limit. */
static int client_grow(pt_client *c, uint32_t max_frame)
{
    size_t rcap = PT_WIRE_HEADER + (size_t)max_frame;
    size_t acap = 4 * (size_t)max_frame;
    uint8_t *rbuf;
    void *arena;

    if (max_frame > MAX_FRAME_CAP || rcap <= c->rcap)
        return 0;
    rbuf = realloc(c->rbuf, rcap);
    if (!rbuf)
        return pt__error(PT_ENOMEM, "cannot allocate a receive buffer of %zu bytes", rcap);
    c->rbuf = rbuf;
    c->rcap = rcap;
    arena = realloc(c->arena_mem, acap);
    if (!arena)
        return pt__error(PT_ENOMEM, "cannot allocate a decoding buffer of %zu bytes", acap);
    c->arena_mem = arena;
    pt_wire_arena_init(&c->arena, arena, acap);
    return 0;
}

/* What a hello that names a session to take up again carries and brings. */
typedef struct hello_resume {
    Pythread__Reclaim *reclaims;
    Pythread__Reclaim **reclaim_ptrs;
    size_t nreclaims;
    uint64_t *pending;
    size_t npending;
    int resumed;      /* the daemon gave the session back */
    uint64_t *resend; /* of pending, the calls it never read */
    size_t nresend;
} hello_resume;

static void resume_info_take(pt_client *c, const Pythread__HelloInfo *info, hello_resume *hr)
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

static int hello_check(pt_client *c, const Pythread__Response *m, uint64_t id, hello_resume *hr)
{
    const Pythread__HelloInfo *info = m->hello;

    /* A refusal (too many sessions, ...) may come as id 0, before our hello
     * was even read: the daemon's words say best what happened. */
    if (m->status < 0)
        return pt__error(m->status, "%s",
                         m->message && *m->message ? m->message : pt_strerror(m->status));
    if (m->id != id)
        return pt__error(PT_ECONNECT, "pythreadd at %s answered the hello with request %llu",
                         c->path, (unsigned long long)m->id);
    /* Protocol 1 answered the hello without a HelloInfo. */
    if (!info || info->version != PT_PROTOCOL_VERSION)
        return pt__error(PT_EVERSION,
                         "pythreadd at %s speaks protocol %u, this library speaks %u; use a "
                         "libpythread that matches the daemon",
                         c->path, info ? info->version : 1u, PT_PROTOCOL_VERSION);
    c->session_id = info->session;
    c->fast_id = c->fast_off ? 0 : info->fast_id;
    c->max_frame = info->max_frame ? info->max_frame : PT_WIRE_MAX_FRAME;
    resume_info_take(c, info, hr);
    return client_grow(c, c->max_frame);
}

/* The hello of a resuming session names it and says what it knows. */
static void hello_resume_fill(const pt_client *c, const hello_resume *hr, Pythread__HelloArgs *h)
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

static int client_hello(pt_client *c, hello_resume *hr)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    Pythread__Response *m;
    uint8_t small[SMALL_FRAME], *frame = small;
    char name[PT_WIRE_NAME_MAX + 1];
    size_t size;
    long len;
    int sent, r;

    snprintf(name, sizeof(name), "%s", program_invocation_short_name);
    req.id = c->next_id++;
    req.op = PYTHREAD__OP__OP_HELLO;
    req.has_thread = 1;
    req.thread = (uint64_t)pt__tid();
    req.hello = &hello;
    hello.has_version = 1;
    hello.version = PT_PROTOCOL_VERSION;
    hello.client_name = name;
    if (hr != NULL)
        hello_resume_fill(c, hr, &hello);
    size = pt_wire_request_frame_size(&req);
    if (size > sizeof(small) && !(frame = malloc(size)))
        return pt__error(PT_ENOMEM, "cannot allocate a hello of %zu bytes", size);
    size = pt_wire_request_frame_pack(&req, frame);
    /* Even when the send fails, a refusal may be waiting to be read. */
    sent = send_all(c->fd, frame, size);
    if (frame != small)
        free(frame);
    len = hello_read_frame(c);
    if (len < 0 && sent < 0)
        return pt__error(PT_ECONNECT, "cannot send the hello to pythreadd at %s: %s", c->path,
                         strerror(-sent));
    if (len < 0)
        return (int)len;
    m = frame_decode(c, c->rbuf + PT_WIRE_HEADER, (size_t)len);
    if (!m)
        return pt__error(PT_ECONNECT, "pythreadd at %s: %s", c->path, c->why);
    r = hello_check(c, m, req.id, hr);
    frames_consume(c, PT_WIRE_HEADER + (size_t)len);
    return r;
}

/* An AF_UNIX connect() waits for room in a full listen backlog as long as
 * the socket's send timeout says; 0 is for ever, as the session's sends. */
static void send_timeout_set(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected socket to a trusted daemon in *out, or an error (*err: the
 * connect's errno, 0 for any other failure). Nothing is sent before the
 * socket's directory and the peer are known to be trusted: the hello alone
 * would tell an impostor who we are. */
static int client_dial(pt_client *c, int *out, int *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int timeout_ms = connect_timeout_ms();
    char msg[PT__ERRMSG_MAX];
    int fd, r;

    *err = 0;
    if ((r = pt_sockpath_dir_check(c->path, msg, sizeof(msg))) < 0)
        return pt__error(r, "%s", msg);
    memcpy(sa.sun_path, c->path, sizeof(c->path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return connect_error(c, errno);
    send_timeout_set(fd, timeout_ms);
    do
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (r < 0 && (errno == EINTR || errno == EALREADY));
    if (r < 0 && errno == EAGAIN) {
        close(fd);
        return pt__error(PT_ECONNECT,
                         "pythreadd at %s did not accept the connection within %.3g s (its listen "
                         "backlog is full); is the daemon running and not stopped? "
                         "(PYTHREAD_CONNECT_TIMEOUT sets the wait)",
                         c->path, timeout_ms / 1000.0);
    }
    if (r < 0 && errno != EISCONN) {
        *err = errno;
        close(fd);
        return connect_error(c, *err);
    }
    if ((r = pt_sockpath_peer_check(fd, c->path, msg, sizeof(msg))) < 0) {
        close(fd);
        return pt__error(r, "%s", msg);
    }
    *out = fd;
    return 0;
}

static int monitor_start(pt_client *c);

/* Say hello on fd (hr: to take the session up again); the session is then
 * a new generation, with its own ids in words. */
static int client_open_on(pt_client *c, int fd, hello_resume *hr)
{
    int r;

    c->fd = fd;
    c->rlen = 0;
    c->why[0] = '\0';
    r = client_hello(c, hr);
    /* A resumed session's answers may have come in the hello's read. */
    if (r == 0 && c->rlen > 0 && frames_dispatch(c) < 0)
        r = pt__error(PT_ECONNECT, "pythreadd at %s: %s", c->path, c->why);
    if (r < 0) {
        close(fd);
        c->fd = -1;
        c->rlen = 0;
        return r;
    }
    send_timeout_set(fd, 0);
    if (++c->gen == 0) /* 0 means "any session" to pt__client_call */
        c->gen = 1;
    atomic_store(&c->fast_live, c->fast_id ? (uint64_t)c->gen << 32 | c->fast_id : 0);
    if (c->resume_key_len)
        monitor_start(c);
    monitor_wake(c);
    return 0;
}

/* Open a new session (called with mu held and no session). */
static int client_connect(pt_client *c)
{
    int fd, err, r;

    r = client_dial(c, &fd, &err);
    return r < 0 ? r : client_open_on(c, fd, NULL);
}

/* ------------------------------------------------------------------ */
/* Taking the session up again after a restart                         */
/* ------------------------------------------------------------------ */

/* How often a resuming client tries to reach a daemon not back yet. */
#define RESUME_RETRY_NS 20000000u

static void hello_resume_free(hello_resume *hr)
{
    free(hr->reclaims);
    free(hr->reclaim_ptrs);
    free(hr->pending);
    free(hr->resend);
}

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

    pthread_mutex_lock(&registry_mu);
    LIST_FOREACH(o, &c->objects, link)
    n++;
    hr->reclaims = calloc(n ? n : 1, sizeof(*hr->reclaims));
    hr->reclaim_ptrs = calloc(n ? n : 1, sizeof(*hr->reclaim_ptrs));
    if (hr->reclaims == NULL || hr->reclaim_ptrs == NULL) {
        pthread_mutex_unlock(&registry_mu);
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
    pthread_mutex_unlock(&registry_mu);
    return 0;
}

static int pendings_collect(pt_client *c, hello_resume *hr)
{
    size_t n = 0;
    pending *p;

    for (unsigned i = 0; i < PENDING_BUCKETS; i++)
        LIST_FOREACH(p, &c->pending[i], link)
    n++;
    hr->pending = calloc(n ? n : 1, sizeof(*hr->pending));
    if (hr->pending == NULL)
        return -1;
    for (unsigned i = 0; i < PENDING_BUCKETS; i++)
        LIST_FOREACH(p, &c->pending[i], link)
    hr->pending[hr->npending++] = p->id;
    return 0;
}

/* Connect and take the session up, trying until the daemon is back or the
 * connect timeout has passed: the old one may still be dying (its socket
 * accepts, then resets), the new one not yet listening. */
static int resume_dial(pt_client *c, hello_resume *hr)
{
    uint64_t end = pt_spin_now_ns() + (uint64_t)connect_timeout_ms() * 1000000u;
    int fd, err, r;

    for (;;) {
        r = client_dial(c, &fd, &err);
        if (r == 0)
            r = client_open_on(c, fd, hr);
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

    pthread_mutex_lock(&registry_mu);
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
    pthread_mutex_unlock(&registry_mu);
}

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
    if (frame == NULL || send_all(c->fd, frame, pt_wire_request_frame_pack(req, frame)) < 0)
        shutdown(c->fd, SHUT_RDWR); /* the reader sees the end; the calls fail */
    free(frame);
}

/*
 * The connection ended: when the daemon keeps sessions, take this one up
 * again. 0 when it was (the pending calls go on), -1 when the session is
 * lost (why then says why, in len bytes). Called with mu held and nobody
 * reading.
 */
static int client_resume(pt_client *c, uint32_t old_sid, char *why, size_t len)
{
    hello_resume hr = {0};
    uint32_t old = c->gen;
    int r;

    if (c->resume_key_len == 0 || c->resume_off)
        return -1;
    if (reclaims_collect(c, old_sid, &hr) < 0 || pendings_collect(c, &hr) < 0 ||
        resume_dial(c, &hr) < 0) {
        hello_resume_free(&hr);
        return -1;
    }
    r = hr.resumed ? 0 : -1;
    if (r == 0) {
        objects_carry(c, old);
        for (size_t i = 0; i < hr.nresend; i++) {
            pending *p = pending_find(c, hr.resend[i]);

            if (p != NULL && p->req != NULL)
                pending_resend(c, p);
        }
    } else {
        /* the new session its hello opened is not the one lost: it goes, so
         * the process is where any loss leaves it (the next call tells of
         * the loss, the one after connects) */
        conn_close(c);
        snprintf(why, len,
                 "pythreadd restarted and did not keep the session (its --grace ran out, or it "
                 "keeps no state)");
    }
    hello_resume_free(&hr);
    return r;
}

/* ------------------------------------------------------------------ */
/* The monitor                                                         */
/* ------------------------------------------------------------------ */

/* The socket changed, or the client is closing: look again. */
static void monitor_wake(pt_client *c)
{
    if (c->monitor_on && c->wake[1] >= 0)
        (void)!write(c->wake[1], "", 1);
}

/* Whoever reads when nobody else does: the longest-parked caller. */
static void reader_pass(pt_client *c)
{
    pending *next;

    if (!c->reading && (next = TAILQ_FIRST(&c->parked))) {
        TAILQ_REMOVE(&c->parked, next, qlink);
        next->queued = 0;
        pthread_cond_signal(&next->cond);
    }
}

/*
 * Sleeps until the daemon's end of the socket closes. If no caller is
 * reading then, it reads (the end, after any last answers), which takes the
 * session up again at once; a caller that reads sees the end itself.
 */
static void *monitor_main(void *arg)
{
    pt_client *c = arg;
    char drain[64];

    pthread_mutex_lock(&c->mu);
    while (!c->monitor_stop) {
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLRDHUP},
                              {.fd = c->wake[0], .events = POLLIN}};
        uint32_t gen = c->gen;

        pthread_mutex_unlock(&c->mu);
        if (poll(p, 2, -1) > 0 && p[1].revents)
            (void)!read(c->wake[0], drain, sizeof(drain));
        pthread_mutex_lock(&c->mu);
        if (c->monitor_stop || !p[0].revents || p[0].fd != c->fd || gen != c->gen)
            continue;
        if (c->reading) {
            /* the reader sees the end; look again in a moment */
            pthread_mutex_unlock(&c->mu);
            nanosleep(&(struct timespec){0, 10000000}, NULL);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        client_read(c);
        reader_pass(c);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Started with the first session the daemon would keep; signals stay with
 * the application's threads. */
static int monitor_start(pt_client *c)
{
    sigset_t all, old;
    int r;

    if (c->monitor_on)
        return 0;
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        c->wake[0] = c->wake[1] = -1;
        return -1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&c->monitor, NULL, monitor_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        close(c->wake[0]);
        close(c->wake[1]);
        c->wake[0] = c->wake[1] = -1;
        return -1;
    }
    c->monitor_on = 1;
    return 0;
}

/* Called without mu; no other thread may use the client any more. */
static void monitor_stop(pt_client *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->monitor_on) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->monitor_stop = 1;
    monitor_wake(c);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->monitor, NULL);
    close(c->wake[0]);
    close(c->wake[1]);
    c->wake[0] = c->wake[1] = -1;
    c->monitor_on = 0;
}

/* ------------------------------------------------------------------ */
/* Fork                                                                */
/* ------------------------------------------------------------------ */

/*
 * In a forked child the client still holds the parent's session: its fd, its
 * pending calls (of threads that do not exist here) and a mutex that may have
 * been held by one of them. Start over: the child closes only its copy of the
 * fd (the parent's session goes on) and connects afresh on its next call.
 */
static void client_after_fork(pt_client *c)
{
    unsigned now;
    pt_object *o;
    unsigned i;

    pthread_mutex_lock(&registry_mu);
    now = atomic_load(&fork_generation);
    if (atomic_load(&c->forked) != now) {
        pthread_mutex_init(&c->mu, NULL);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        atomic_store(&c->fast_live, 0);
        c->nfdq = 0;         /* the parent's; its copies close with the parent's fds */
        if (c->monitor_on) { /* the parent's thread is not here; its pipe is */
            close(c->wake[0]);
            close(c->wake[1]);
            c->wake[0] = c->wake[1] = -1;
            c->monitor_on = 0;
        }
        c->reading = 0;
        c->rlen = 0;
        c->why[0] = '\0';
        c->loss[0] = '\0'; /* the parent's to tell */
        for (i = 0; i < PENDING_BUCKETS; i++)
            LIST_INIT(&c->pending[i]);
        TAILQ_INIT(&c->parked);
        LIST_FOREACH(o, &c->objects, link)
        {
            pthread_mutex_init(&o->reopen_mu, NULL);
        }
        atomic_store(&c->forked, now);
    }
    pthread_mutex_unlock(&registry_mu);
}

/* Take the client's mutex, first starting over if this is a forked child. */
static void client_enter(pt_client *c)
{
    if (atomic_load_explicit(&c->forked, memory_order_acquire) !=
        atomic_load_explicit(&fork_generation, memory_order_acquire))
        client_after_fork(c);
    pthread_mutex_lock(&c->mu);
}

/* ------------------------------------------------------------------ */
/* The call                                                            */
/* ------------------------------------------------------------------ */

/* Wait for p's answer, reading for everybody while no one else does;
 * watching wt's word meanwhile when wt is not NULL. */
static void client_wait(pt_client *c, pending *p, const pt__watch *wt)
{
    while (!p->done) {
        if (!c->reading) {
            if (wt && wt->gen == c->gen)
                client_read_watch(c, p, wt);
            else
                client_read(c);
            continue;
        }
        TAILQ_INSERT_TAIL(&c->parked, p, qlink);
        p->queued = 1;
        pthread_cond_wait(&p->cond, &c->mu);
        if (p->queued) {
            TAILQ_REMOVE(&c->parked, p, qlink);
            p->queued = 0;
        }
    }
    /* Done: if nobody reads now, the longest-parked caller takes over. */
    reader_pass(c);
}

static int client_call(pt_client *c, uint32_t want_gen, int flags, Pythread__Request *req,
                       pt__reply *rep, uint32_t *gen, const pt__watch *wt);

/* Pack, register (unless p is NULL: no answer comes) and send req; the
 * caller waits. Called with mu held. */
static int client_send(pt_client *c, Pythread__Request *req, pending *p, pt__reply *rep)
{
    uint8_t small[SMALL_FRAME], *frame = small;
    size_t size;
    int r = 0;

    req->id = c->next_id++;
    req->has_thread = 1;
    req->thread = (uint64_t)pt__tid();
    pt_wire_request_omit_defaults(req);
    size = pt_wire_request_frame_bound(req);
    if (size > sizeof(small)) {
        size = pt_wire_request_frame_size(req);
        if (!(frame = malloc(size)))
            return pt__error(PT_ENOMEM, "cannot allocate a request of %zu bytes", size);
    }
    size = pt_wire_request_frame_pack(req, frame);
    if (size - PT_WIRE_HEADER > c->max_frame) {
        r = pt__error(PT_ELIMIT,
                      "a request of %zu bytes is over pythreadd's frame limit of %u bytes",
                      size - PT_WIRE_HEADER, c->max_frame);
    } else {
        if (p) {
            pending_add(c, p, req->id, rep);
            p->req = req;
            p->sent_ns = pt_spin_now_ns();
        }
        /* A failed or partial write leaves the stream unusable: end it
         * both ways so whoever reads sees the end and fails every call. */
        if (send_all(c->fd, frame, size) < 0)
            shutdown(c->fd, SHUT_RDWR);
    }
    if (frame != small)
        free(frame);
    return r;
}

int pt__client_call(pt_client *c, uint32_t want_gen, int flags, Pythread__Request *req,
                    pt__reply *rep, uint32_t *gen)
{
    rep->extra = NULL;
    rep->extra_arg = NULL;
    return client_call(c, want_gen, flags, req, rep, gen, NULL);
}

int pt__client_call_watch(pt_client *c, uint32_t want_gen, Pythread__Request *req, pt__reply *rep,
                          const pt__watch *watch)
{
    rep->extra = NULL;
    rep->extra_arg = NULL;
    return client_call(c, want_gen, 0, req, rep, NULL, watch);
}

int pt__client_call_extra(pt_client *c, Pythread__Request *req, pt__reply *rep,
                          void (*extra)(void *arg, const Pythread__Response *m), void *arg)
{
    rep->extra = extra;
    rep->extra_arg = arg;
    return client_call(c, 0, 0, req, rep, NULL, NULL);
}

void pt__client_post(pt_client *c, uint32_t want_gen, Pythread__Request *req)
{
    int cancel_state;

    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    client_enter(c);
    if (c->fd >= 0 && want_gen == c->gen)
        client_send(c, req, NULL, NULL);
    pthread_mutex_unlock(&c->mu);
    pthread_setcancelstate(cancel_state, NULL);
}

/* Whether the caller may watch wt's word: it is the session's mapping, and
 * the caller will read for its process (no one else reads to wake it). */
static const pt__watch *watch_usable(const pt_client *c, const pt__watch *wt)
{
    if (wt == NULL || wt->gen != c->gen || c->reading)
        return NULL;
    return wt;
}

/* A new session for a call, unless the last one's loss is still to be
 * told: this call tells it, as it would have had it read the end itself. */
static int client_reconnect(pt_client *c)
{
    int r;

    if (!c->loss[0])
        return client_connect(c);
    r = pt__error(PT_ESESSION, "%s", c->loss);
    c->loss[0] = '\0';
    return r;
}

/* pt__client_call; rep->extra and rep->extra_arg are kept. */
static int client_call(pt_client *c, uint32_t want_gen, int flags, Pythread__Request *req,
                       pt__reply *rep, uint32_t *gen, const pt__watch *wt)
{
    pending p;
    uint32_t sent_gen;
    int cancel_state, r;
    void (*extra)(void *, const Pythread__Response *) = rep->extra;
    void *extra_arg = rep->extra_arg;

    memset(rep, 0, sizeof(*rep));
    rep->extra = extra;
    rep->extra_arg = extra_arg;
    /* A thread cancelled inside a call would leave its pending record on a
     * dead stack, or the reading role with nobody: cancellation waits until
     * the call is over. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    client_enter(c);
    if (c->fd < 0) {
        r = (flags & PT__CALL_NOCONNECT) ? PT__ESTALE : client_reconnect(c);
        if (r < 0)
            goto out;
    }
    if (want_gen && want_gen != c->gen) {
        r = PT__ESTALE;
        goto out;
    }
    sent_gen = c->gen;
    wt = watch_usable(c, wt);
    req->has_watch = wt != NULL;
    req->watch = wt != NULL;
    r = client_send(c, req, &p, rep);
    if (r < 0)
        goto out;
    client_wait(c, &p, wt);
    pthread_cond_destroy(&p.cond);
    r = rep->status < 0 ? rep->status : 0;
    if (gen)
        *gen = sent_gen;
out:
    pthread_mutex_unlock(&c->mu);
    pthread_setcancelstate(cancel_state, NULL);
    return r;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

static int client_set_path(pt_client *c, const char *path)
{
    if (!path) {
        if (pt_default_socket_path(c->path, sizeof(c->path)) < 0)
            return pt__error(PT_EINVAL,
                             "the default socket path is longer than %zu bytes; set "
                             "PYTHREAD_SOCKET to a shorter path",
                             sizeof(c->path) - 1);
        return 0;
    }
    if (!*path || strlen(path) >= sizeof(c->path))
        return pt__error(PT_EINVAL,
                         "socket path '%.64s' is empty or longer than %zu bytes; pass a shorter "
                         "path",
                         path, sizeof(c->path) - 1);
    memcpy(c->path, path, strlen(path) + 1);
    return 0;
}

static void client_free(pt_client *c)
{
    fdq_close_all(c);
    free(c->fdq);
    for (unsigned i = 0; i < c->nmaps; i++)
        munmap(c->maps[i].base, c->maps[i].size);
    free(c->maps);
    pthread_mutex_destroy(&c->mu);
    free(c->rbuf);
    free(c->arena_mem);
    free(c);
}

/* PYTHREAD_SPIN_USEC: the client's spin bound; 0 turns it off, anything
 * but a whole number leaves the default, larger values are capped. */
static uint32_t spin_usec_env(void)
{
    const char *s = getenv("PYTHREAD_SPIN_USEC");
    unsigned long long v;
    char *end;

    if (!s || *s < '0' || *s > '9')
        return PT_SPIN_USEC_DEFAULT;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end)
        return PT_SPIN_USEC_DEFAULT;
    return errno || v > PT_SPIN_USEC_MAX ? PT_SPIN_USEC_MAX : (uint32_t)v;
}

/* PYTHREAD_FASTPATH=0 keeps every operation a request. */
static int fast_off_env(void)
{
    const char *s = getenv("PYTHREAD_FASTPATH");

    return s && strcmp(s, "0") == 0;
}

/* PYTHREAD_RESUME=0: a session is never taken up again after a restart
 * of the daemon (its calls fail with PT_ESESSION, as without --state-dir). */
static int resume_off_env(void)
{
    const char *s = getenv("PYTHREAD_RESUME");

    return s && strcmp(s, "0") == 0;
}

static int client_init(pt_client *c)
{
    unsigned i;

    c->fd = -1;
    c->wake[0] = c->wake[1] = -1;
    c->fast_off = fast_off_env();
    c->resume_off = resume_off_env();
    c->next_id = 1;
    c->max_frame = PT_WIRE_MAX_FRAME;
    pt_spin_init(&c->spin, spin_usec_env());
    for (i = 0; i < PENDING_BUCKETS; i++)
        LIST_INIT(&c->pending[i]);
    TAILQ_INIT(&c->parked);
    LIST_INIT(&c->objects);
    atomic_init(&c->forked, atomic_load(&fork_generation));
    pthread_mutex_init(&c->mu, NULL);
    c->rcap = PT_WIRE_HEADER + PT_WIRE_MAX_FRAME;
    c->rbuf = malloc(c->rcap);
    c->arena_mem = malloc(4 * (size_t)PT_WIRE_MAX_FRAME);
    if (!c->rbuf || !c->arena_mem)
        return pt__error(PT_ENOMEM, "cannot allocate the client's buffers");
    pt_wire_arena_init(&c->arena, c->arena_mem, 4 * (size_t)PT_WIRE_MAX_FRAME);
    return 0;
}

int pt_client_open(pt_client **out, const char *path)
{
    pt_client *c;
    int r;

    if (!out)
        return pt__error(PT_EINVAL, "pt_client_open: out is NULL; pass where to store the client");
    *out = NULL;
    pthread_once(&atfork_once, atfork_install);
    c = calloc(1, sizeof(*c));
    if (!c)
        return pt__error(PT_ENOMEM, "pt_client_open: out of memory");
    r = client_init(c);
    if (r == 0)
        r = client_set_path(c, path);
    if (r == 0) {
        pthread_mutex_lock(&c->mu);
        r = client_connect(c);
        pthread_mutex_unlock(&c->mu);
    }
    if (r < 0) {
        client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/*
 * Closing the connection is all the daemon needs to give back everything the
 * session held; the objects' handles end with it, so their memory goes too.
 * No other thread may be using the client or its objects.
 */
void pt_client_close(pt_client *c)
{
    pt_object *o;

    if (!c)
        return;
    client_enter(c);
    pthread_mutex_unlock(&c->mu);
    monitor_stop(c);
    pthread_mutex_lock(&registry_mu);
    while ((o = LIST_FIRST(&c->objects))) {
        LIST_REMOVE(o, link);
        pt__object_free(o);
    }
    pthread_mutex_unlock(&registry_mu);
    if (c->fd >= 0)
        close(c->fd);
    client_free(c);
}

int pt_client_fd(pt_client *c)
{
    int fd;

    if (!c)
        return pt__error(PT_EINVAL, "pt_client_fd: client is NULL; open one first");
    client_enter(c);
    fd = c->fd;
    pthread_mutex_unlock(&c->mu);
    if (fd < 0)
        return pt__error(PT_ESESSION,
                         "pt_client_fd: no session now (it was lost, or this is a forked child); "
                         "the next call connects a new one");
    return fd;
}

/* The connection on fd has ended (the daemon closed it). */
static int conn_ended(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

int pt_client_session_wait(pt_client *c, uint64_t session)
{
    int fd = PT_ESESSION;

    if (!c)
        return pt__error(PT_EINVAL, "pt_client_session_wait: client is NULL; open one first");
    client_enter(c);
    for (;;) {
        if (c->fd < 0 || c->session_id != session)
            break;
        if (!conn_ended(c->fd)) {
            fd = c->fd;
            break;
        }
        if (c->reading) { /* its reader takes the end in, and the session up */
            pthread_mutex_unlock(&c->mu);
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        client_read(c); /* the end: the session is taken up again, or lost */
        reader_pass(c);
    }
    if (fd < 0)
        c->loss[0] = '\0'; /* told here */
    pthread_mutex_unlock(&c->mu);
    if (fd < 0)
        return pt__error(PT_ESESSION,
                         "pt_client_session_wait: session %llu is gone: pythreadd did not keep it "
                         "(no --state-dir, or its --grace ran out)",
                         (unsigned long long)session);
    return fd;
}

uint64_t pt_client_session_id(pt_client *c)
{
    uint64_t id;

    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    id = c->fd >= 0 ? c->session_id : 0;
    pthread_mutex_unlock(&c->mu);
    return id;
}
