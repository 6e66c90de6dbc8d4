/*
 * client.c - the session: connect and hello, the request/response
 * multiplexer shared by all threads of a process, loss of the session, and
 * the fresh session a forked child gets. Taking a lost session up again
 * after the daemon restarts is resume.c's; noticing the end when no caller
 * reads is monitor.c's.
 *
 * Every call registers a pending record on its own stack, writes its whole
 * frame under the client's mutex and then waits for its answer. Nobody runs
 * a dedicated reader thread: a caller that finds nobody reading becomes the
 * reader (leader/follower), so a single-threaded process pays one send() and
 * one recv() per call and no thread hop. The reader hands every answer it
 * finds to its caller and, once its own answer is in, passes the reading on
 * to one of the callers still parked.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client_int.h"
#include "fastwake.h"
#include "fastword.h"
#include "sockpath.h"

#define SMALL_FRAME   1024u /* any request with names of legal size fits */
#define MAX_FRAME_CAP (16u << 20)

pthread_mutex_t pt__registry_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Thread_local pid_t tid_cache;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&pt__registry_mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&pt__registry_mu);
}

static void atfork_child(void)
{
    tid_cache = 0;
    atomic_fetch_add(&fork_generation, 1);
    pthread_mutex_unlock(&pt__registry_mu);
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
    pthread_mutex_lock(&pt__registry_mu);
    LIST_INSERT_HEAD(&c->objects, o, link);
    pthread_mutex_unlock(&pt__registry_mu);
}

void pt__object_ref(pt_object *o)
{
    pthread_mutex_lock(&pt__registry_mu);
    o->refs++;
    pthread_mutex_unlock(&pt__registry_mu);
}

/* Returns the references left; at 0 the object has left its client's list. */
unsigned pt__object_unref(pt_object *o)
{
    unsigned left;

    pthread_mutex_lock(&pt__registry_mu);
    left = --o->refs;
    if (!left)
        LIST_REMOVE(o, link);
    pthread_mutex_unlock(&pt__registry_mu);
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

pending *pt__pending_find(pt_client *c, uint64_t id)
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

int pt__send_all(int fd, const uint8_t *buf, size_t len)
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
    p = pt__pending_find(c, m->id);
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
void pt__conn_close(pt_client *c)
{
    atomic_store(&c->fast_live, 0);
    close(c->fd);
    c->fd = -1;
    c->rlen = 0;
    fdq_close_all(c);
    pt__monitor_wake(c);
}

/* A loss that no waiting call hears of is kept for the next call to tell
 * (client_reconnect), so a process never goes on as if it still held. */
static void client_lost(pt_client *c)
{
    char why[sizeof(c->why)];
    uint32_t old_sid = (uint32_t)atomic_load(&c->fast_live);
    int heard = 0;
    pending *p;
    unsigned i;

    snprintf(why, sizeof(why), "%s", c->why[0] ? c->why : "pythreadd closed the connection");
    c->why[0] = '\0';
    pt__conn_close(c);
    if (pt__client_resume(c, old_sid, why, sizeof(why)) == 0)
        return;
    snprintf(c->loss, sizeof(c->loss),
             "session lost: %s; locks held through it are released; the next call reconnects", why);
    pt__loss_tell(c);
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

/* ------------------------------------------------------------------ */
/* The reading role                                                    */
/* ------------------------------------------------------------------ */

/* The reader gives its role up, with mu held: whoever waits for it to be
 * free (reader_wait_free) looks again. All of them, since the monitor and
 * any number of pt_client_session_wait callers may wait at once. */
static void reader_release(pt_client *c)
{
    c->reading = 0;
    pthread_cond_broadcast(&c->reader_cv);
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
 * Wait, mu held, until no thread reads or the session is another one: the
 * reader that took the end in may read again on the new connection before
 * a waiter gets mu, and then the end it waited for is over. A stopping
 * monitor waits no more. The predicate is tested under mu and each of its
 * changes is broadcast under mu (reader_release, pt__client_open_on,
 * pt__monitor_stop), so no wake-up is lost.
 */
static void reader_wait_free(pt_client *c)
{
    uint32_t gen = c->gen;

    while (c->reading && c->gen == gen && !c->monitor_stop)
        pthread_cond_wait(&c->reader_cv, &c->mu);
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
    reader_release(c);
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
    reader_release(c);
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

/* Only one thread reads: the end of the socket comes to whoever holds the
 * role, after any answers still in it, and the session is taken up or lost
 * before mu is given back. So this reads only when nobody does, else waits
 * for the role to be free; the caller looks at the session again either
 * way. */
void pt__client_end_take(pt_client *c)
{
    if (c->reading) {
        reader_wait_free(c);
        return;
    }
    client_read(c);
    reader_pass(c);
}

/* ------------------------------------------------------------------ */
/* Connect and hello                                                   */
/* ------------------------------------------------------------------ */

/* "name (1000)" for a uid or gid, or the number alone when it has no name. */
static void id_text(char *buf, size_t len, unsigned id, int group)
{
    char tmp[1024];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;

    if (group)
        getgrgid_r((gid_t)id, &gr, tmp, sizeof(tmp), &grp);
    else
        getpwuid_r((uid_t)id, &pw, tmp, sizeof(tmp), &pwp);
    if (grp)
        snprintf(buf, len, "%s (%u)", grp->gr_name, id);
    else if (pwp)
        snprintf(buf, len, "%s (%u)", pwp->pw_name, id);
    else
        snprintf(buf, len, "%u", id);
}

/*
 * Each failure says what was found at the path and what to do about it:
 * no socket or nobody listening means the daemon is not running there; a
 * refused permission is about who may connect (the socket's owner, group
 * and mode), which starting a daemon would not fix.
 */
static int connect_error(pt_client *c, int err)
{
    struct stat st;
    char owner[300], group[300];

    if (err == EACCES || err == EPERM) {
        if (stat(c->path, &st) < 0)
            return pt__error(PT_ECONNECT,
                             "cannot connect to pythreadd at %s: permission denied on a "
                             "directory on its way; ask its administrator for access, or run a "
                             "daemon of your own (pythreadd) and set PYTHREAD_SOCKET to its "
                             "socket",
                             c->path);
        id_text(owner, sizeof(owner), st.st_uid, 0);
        id_text(group, sizeof(group), st.st_gid, 1);
        /* connect(2) needs write permission on the socket. */
        if (st.st_mode & 0020)
            return pt__error(PT_ECONNECT,
                             "cannot connect to pythreadd at %s: permission denied: the socket "
                             "belongs to user %s and group %s, mode %04o, so its owner and the "
                             "group's members may connect; ask to join group %s (then log in "
                             "again), or run a daemon of your own (pythreadd) and set "
                             "PYTHREAD_SOCKET to its socket",
                             c->path, owner, group, (unsigned)(st.st_mode & 07777), group);
        return pt__error(PT_ECONNECT,
                         "cannot connect to pythreadd at %s: permission denied: the socket "
                         "belongs to user %s, mode %04o, so only its owner may connect; ask its "
                         "owner to start pythreadd with --socket-mode 0660 (its group) or 0666, "
                         "or run a daemon of your own (pythreadd) and set PYTHREAD_SOCKET to its "
                         "socket",
                         c->path, owner, (unsigned)(st.st_mode & 07777));
    }
    if (err == ENOENT)
        return pt__error(PT_ECONNECT,
                         "cannot connect to pythreadd at %s: no socket there; is the daemon "
                         "running? start it (pythreadd, or systemctl start pythreadd.socket), or "
                         "set PYTHREAD_SOCKET to its socket",
                         c->path);
    if (err == ECONNREFUSED)
        return pt__error(PT_ECONNECT,
                         "cannot connect to pythreadd at %s: nothing listens on that socket (the "
                         "daemon stopped?); start it (pythreadd, or systemctl start "
                         "pythreadd.socket), or set PYTHREAD_SOCKET to the socket of a running one",
                         c->path);
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
int pt__connect_timeout_ms(void)
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
    int timeout_ms = pt__connect_timeout_ms();
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
    pt__resume_info_take(c, info, hr);
    return client_grow(c, c->max_frame);
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
        pt__hello_resume_fill(c, hr, &hello);
    size = pt_wire_request_frame_size(&req);
    if (size > sizeof(small) && !(frame = malloc(size)))
        return pt__error(PT_ENOMEM, "cannot allocate a hello of %zu bytes", size);
    size = pt_wire_request_frame_pack(&req, frame);
    /* Even when the send fails, a refusal may be waiting to be read. */
    sent = pt__send_all(c->fd, frame, size);
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
int pt__client_dial(pt_client *c, int *out, int *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int timeout_ms = pt__connect_timeout_ms();
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

/* Say hello on fd (hr: to take the session up again); the session is then
 * a new generation, with its own ids in words. */
int pt__client_open_on(pt_client *c, int fd, hello_resume *hr)
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
    pthread_cond_broadcast(&c->reader_cv); /* see reader_wait_free */
    atomic_store(&c->fast_live, c->fast_id ? (uint64_t)c->gen << 32 | c->fast_id : 0);
    if (c->resume_key_len || c->loss_fd >= 0)
        pt__monitor_start(c);
    pt__monitor_wake(c);
    return 0;
}

/* Open a new session (called with mu held and no session). */
static int client_connect(pt_client *c)
{
    int fd, err, r;

    r = pt__client_dial(c, &fd, &err);
    return r < 0 ? r : pt__client_open_on(c, fd, NULL);
}

/* Nothing listens at the socket: none there (nor its directory), or one
 * nobody serves. Only then does a client on the rule try the next path; a
 * socket it does not trust, or any other failure, is told as it is, so that
 * a personal daemon gone wrong is not hidden behind the system one. */
static int nobody_listens(int err)
{
    return err == ENOENT || err == ECONNREFUSED;
}

/* Neither the user's own socket (first) nor the system one answered. */
static int rule_error(const char *first, const char *second)
{
    return pt__error(PT_ECONNECT,
                     "cannot reach pythreadd: nothing listens at %s (your own daemon's socket) "
                     "nor at %s (the system daemon's); start the system daemon (systemctl start "
                     "pythreadd.socket) or your own (pythreadd), or set PYTHREAD_SOCKET to the "
                     "socket of a running one",
                     first, second);
}

/* The user's own socket was refused (its directory is another user's) and
 * nothing listens at the system one: the refusal stands, told with both. */
static int refusal_error(const char *refusal, const char *second)
{
    return pt__error(PT_EPERM, "%s; and nothing listens at %s (the system daemon's socket)",
                     refusal, second);
}

/*
 * Open the first session of a client given no path: the rule's paths in
 * order (pt_default_socket_paths), so that a user with a daemon of their own
 * gets it and any other user the system daemon, with no setting. The one
 * reached is c->path from then on: the session's objects live there.
 *
 * The user's own socket is passed over when nothing listens there, and when
 * its directory is another user's: there it cannot be theirs, and a user
 * who made /tmp/pythread-UID first would otherwise keep UID from the system
 * daemon (its checks refuse it either way).
 */
static int client_connect_rule(pt_client *c)
{
    char first[sizeof(c->path)], next[sizeof(c->path)], refusal[PT__ERRMSG_MAX];
    unsigned uid;
    int fd, err, r, foreign;

    r = pt__client_dial(c, &fd, &err);
    if (r == 0)
        return pt__client_open_on(c, fd, NULL);
    foreign = pt_sockpath_dir_foreign(c->path, &uid);
    if ((!nobody_listens(err) && !foreign) || pt_default_socket_paths(1, next, sizeof(next)) <= 0)
        return r;
    snprintf(refusal, sizeof(refusal), "%s", pt_last_error_message());
    memcpy(first, c->path, sizeof(first));
    memcpy(c->path, next, sizeof(c->path));
    r = pt__client_dial(c, &fd, &err);
    if (r == 0)
        return pt__client_open_on(c, fd, NULL);
    if (!nobody_listens(err))
        return r;
    return foreign ? refusal_error(refusal, next) : rule_error(first, next);
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

    pthread_mutex_lock(&pt__registry_mu);
    now = atomic_load(&fork_generation);
    if (atomic_load(&c->forked) != now) {
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->reader_cv, NULL); /* the parent's waiters are not here */
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        atomic_store(&c->fast_live, 0);
        c->nfdq = 0; /* the parent's; its copies close with the parent's fds */
        pt__monitor_forget(c);
        if (c->loss_fd >= 0)
            close(c->loss_fd); /* the parent's: its losses are not the child's */
        c->loss_fd = -1;
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
            o->inherited = 1;
        }
        atomic_store(&c->forked, now);
    }
    pthread_mutex_unlock(&pt__registry_mu);
}

/* Take the client's mutex, first starting over if this is a forked child. */
void pt__client_enter(pt_client *c)
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
        if (pt__send_all(c->fd, frame, size) < 0)
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
    pt__client_enter(c);
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
    pt__client_enter(c);
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
    if (c->loss_fd >= 0)
        close(c->loss_fd);
    fdq_close_all(c);
    free(c->fdq);
    for (unsigned i = 0; i < c->nmaps; i++)
        munmap(c->maps[i].base, c->maps[i].size);
    free(c->maps);
    pthread_cond_destroy(&c->reader_cv);
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

/* PYTHREAD_DEADLOCK=fail: every wait of the client fails a deadlock it
 * closes; "report" (or nothing) lets it wait on. */
static int deadlock_env(pt_client *c)
{
    const char *s = getenv("PYTHREAD_DEADLOCK");

    if (!s || !*s || strcmp(s, "report") == 0)
        return 0;
    if (strcmp(s, "fail") == 0) {
        atomic_store(&c->deadlock_fail, 1);
        return 0;
    }
    return pt__error(PT_EINVAL,
                     "PYTHREAD_DEADLOCK=%.32s: unknown policy; set it to fail (a wait that would "
                     "close a deadlock fails with PT_EDEADLK) or report (it waits on), or unset it",
                     s);
}

int pt_client_set_deadlock(pt_client *c, int policy)
{
    if (!c)
        return pt__error(PT_EINVAL, "pt_client_set_deadlock: client is NULL; open one first");
    if (policy != PT_DEADLOCK_REPORT && policy != PT_DEADLOCK_FAIL)
        return pt__error(PT_EINVAL,
                         "pt_client_set_deadlock: unknown policy %d; pass PT_DEADLOCK_REPORT or "
                         "PT_DEADLOCK_FAIL",
                         policy);
    atomic_store(&c->deadlock_fail, policy == PT_DEADLOCK_FAIL);
    return 0;
}

int pt__client_deadlock_fail(pt_client *c)
{
    return atomic_load(&c->deadlock_fail);
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
    c->loss_fd = -1;
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
    pthread_cond_init(&c->reader_cv, NULL);
    if (deadlock_env(c) < 0)
        return PT_EINVAL;
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
        r = path ? client_connect(c) : client_connect_rule(c);
        pthread_mutex_unlock(&c->mu);
    }
    if (r < 0) {
        client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

const char *pt_client_socket_path(pt_client *c)
{
    if (!c) {
        pt__null_handle("pt_client_socket_path");
        return NULL;
    }
    return c->path;
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
    pt__client_enter(c);
    pthread_mutex_unlock(&c->mu);
    pt__monitor_stop(c);
    pthread_mutex_lock(&pt__registry_mu);
    while ((o = LIST_FIRST(&c->objects))) {
        LIST_REMOVE(o, link);
        pt__object_free(o);
    }
    pthread_mutex_unlock(&pt__registry_mu);
    if (c->fd >= 0)
        close(c->fd);
    client_free(c);
}

int pt_client_fd(pt_client *c)
{
    int fd;

    if (!c)
        return pt__error(PT_EINVAL, "pt_client_fd: client is NULL; open one first");
    pt__client_enter(c);
    fd = c->fd;
    pthread_mutex_unlock(&c->mu);
    if (fd < 0)
        return pt__error(PT_ESESSION,
                         "pt_client_fd: no session now (it was lost, or this is a forked child); "
                         "the next call connects a new one");
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
