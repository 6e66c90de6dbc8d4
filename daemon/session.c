/*
 * session.c - one client connection: its input, its output and its life.
 *
 * The data path follows Redis's networking.c on top of the libevent loop.
 * Input: a readable socket is read once into the daemon-wide scratch buffer
 * (the loop is single-threaded, so one is enough) and every complete frame
 * is decoded and dispatched straight from it; only the bytes of a trailing
 * partial frame are copied aside, into a buffer allocated for the occasion
 * and freed once the frame is whole. A callback gives a connection one turn
 * (PT_TURN_FRAMES frames, PT_TURN_BYTES of answers): a peer that sent more
 * keeps the rest, and the rest of its socket, for its next turn on the
 * ready list, so a peer pipelining thousands of requests is served in turns
 * with everyone else rather than before them. Output: every answer, whether
 * for the request being served or a wake-up produced while serving another
 * connection, is packed into the connection's output buffer and the
 * connection joins the daemon's pending list; at the end of each loop
 * callback (pt_daemon_settle) each pending connection gets one write. Only
 * when a write comes up short is a write event armed, and it is removed
 * again once the output is drained. So a batch of requests costs one read
 * and one write, and nothing is allocated per request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "cluster.h"
#include "daemon.h"

static void conn_next(pt_conn *c, uint64_t now, int fresh);
static void conn_unready(pt_conn *c);

/* ------------------------------------------------------------------ */
/* Life and death of a connection                                      */
/* ------------------------------------------------------------------ */

/*
 * End the core session: every lock, owned permit and queue place it held is
 * given back and the waiters this frees elsewhere are answered now. From
 * here on nothing more is read and answers to this connection are dropped.
 */
static void conn_end(pt_conn *c, uint64_t now)
{
    c->closing = 1;
    conn_unready(c);
    evtimer_del(c->guard);
    pt_cluster_conn_end(c->daemon, c);
    if (c->session) {
        pt_session *s = c->session;
        c->session = NULL;
        pt_journal_session_end(c->daemon->journal, c->daemon->core, s, now);
        pt_fast_publish_all(c->daemon->fast);
    }
    pt_fast_session_remove(c->daemon->fast, c->sid);
    c->sid = 0;
}

/* Free the connection; its core session must have ended. */
static void conn_free(pt_conn *c, const char *why)
{
    pt_daemon *d = c->daemon;

    pt_log(LOG_DEBUG, "session %llu closed (pid %d, '%s'): %s; %llu requests, %llu responses",
           (unsigned long long)c->id, (int)c->peer.pid, c->client_name, why,
           (unsigned long long)c->requests, (unsigned long long)c->responses);
    TAILQ_REMOVE(&d->conns, c, link);
    if (c->queued)
        LIST_REMOVE(c, pending_link);
    conn_unready(c);
    d->nconns--;
    pt_mem_detach(c);
    event_free(c->read_ev);
    event_free(c->write_ev);
    event_free(c->guard);
    close(c->fd);
    pt_fast_session_remove(d->fast, c->sid);
    pt_inspect_conn_free(c);
    free(c->groups_sent);
    free(c->fds);
    free(c->in);
    free(c->out);
    free(c);
    pt_listen_resume(d); /* a descriptor is free again */
}

/* Put c on the pending list, to be written at the end of this callback. */
static void conn_queue(pt_conn *c)
{
    if (c->queued)
        return;
    c->queued = 1;
    LIST_INSERT_HEAD(&c->daemon->pending, c, pending_link);
}

static void conn_read_stop(pt_conn *c)
{
    if (!c->reading)
        return;
    c->reading = 0;
    event_del(c->read_ev);
}

/* Read again; a no-op (and no call into libevent) while reading, which is
 * every read of the fast path. */
static void conn_read_start(pt_conn *c)
{
    if (c->reading)
        return;
    c->reading = 1;
    event_add(c->read_ev, NULL);
}

/* Arm or disarm the write event: armed only while a write came up short. */
static void conn_write_arm(pt_conn *c, int on)
{
    if (c->writing == (unsigned)on)
        return;
    c->writing = on ? 1 : 0;
    if (on)
        event_add(c->write_ev, NULL);
    else
        event_del(c->write_ev);
}

/* Arm the guard timer for seconds from now. */
static void conn_guard_arm(pt_conn *c, uint32_t seconds)
{
    struct timeval tv = {(time_t)seconds, 0};

    evtimer_add(c->guard, &tv);
}

/*
 * Close after the output is flushed, so the peer reads why it is closed:
 * the flush frees the connection once its output is empty (it is queued
 * for that even when nothing is left to write), and a peer that does not
 * read gets PT_DAEMON_LINGER_SEC and is then dropped. Nothing is freed
 * here, so callers deep in request handling may go on looking at c.
 */
static void conn_close_flushed(pt_conn *c, uint64_t now)
{
    conn_end(c, now);
    conn_read_stop(c);
    conn_guard_arm(c, PT_DAEMON_LINGER_SEC);
    conn_queue(c);
}

void pt_conn_send_error(pt_conn *c, uint64_t id, int status, const char *message)
{
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;

    r.id = id;
    r.has_status = 1;
    r.status = status;
    r.message = (char *)message;
    pt_conn_send(c, &r);
}

void pt_conn_close_with(pt_conn *c, const char *message, uint64_t now)
{
    pt_conn_send_error(c, 0, PT_ESESSION, message); /* id 0: the daemon's parting word */
    conn_close_flushed(c, now);
}

/* A peer that breaks the protocol gets one error frame and is closed; only
 * its own session ends. */
static void conn_protocol_error(pt_conn *c, uint64_t id, int status, const char *message,
                                uint64_t now)
{
    pt_log_peer(c->peer.uid, LOG_WARNING, "session %llu (pid %d): %s; closing it",
                (unsigned long long)c->id, (int)c->peer.pid, message);
    pt_conn_send_error(c, id, status, message);
    conn_close_flushed(c, now);
}

/*
 * Called from inside the core (through the sink) when an answer cannot be
 * queued: the connection cannot go on, but ending its session here would
 * re-enter the core, so the end is deferred to the guard's callback, made
 * active now. Its answers are dropped meanwhile.
 */
static void conn_cut(pt_conn *c, const char *why)
{
    c->closing = 1;
    c->cut_reason = why;
    conn_read_stop(c);
    conn_write_arm(c, 0);
    evtimer_del(c->guard);
    event_active(c->guard, EV_TIMEOUT, 1);
}

static void conn_fail(pt_conn *c)
{
    pt_log(LOG_ERR, "session %llu (pid %d): out of memory for an answer; closing it",
           (unsigned long long)c->id, (int)c->peer.pid);
    conn_cut(c, "out of memory for an answer");
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* Room for size more bytes at out + out_len: written bytes are dropped from
 * the front first, then the buffer doubles as needed. -1 when out of
 * memory. */
static int conn_out_reserve(pt_conn *c, size_t size)
{
    size_t need, cap;
    uint8_t *p;

    if (c->out_cap - c->out_len >= size)
        return 0;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_cap - c->out_len >= size)
            return 0;
    }
    need = c->out_len + size;
    cap = c->out_cap ? c->out_cap : PT_CONN_OUT_FIRST;
    while (cap < need)
        cap *= 2;
    p = realloc(c->out, cap);
    if (!p)
        return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Stop reading a peer that leaves too many answers unread. */
static void conn_pause(pt_conn *c, size_t unread)
{
    pt_log(LOG_DEBUG, "session %llu: %zu bytes unread by the peer; pausing its input",
           (unsigned long long)c->id, unread);
    c->paused = 1;
    conn_read_stop(c);
    conn_guard_arm(c, c->daemon->stall_timeout);
}

/* The same for a peer adding answers while its user's sessions together
 * leave more than --max-output-per-uid unread: it is read again once it has
 * read its own answers, or its user's are back under the quota. */
static void conn_pause_user(pt_conn *c, size_t unread)
{
    pt_log(LOG_DEBUG,
           "session %llu: uid %u is over --max-output-per-uid (%u bytes unread across its "
           "sessions), %zu of them here; pausing its input",
           (unsigned long long)c->id, (unsigned)c->peer.uid, c->daemon->max_output_per_uid, unread);
    conn_pause(c, unread);
}

void pt_conn_send(pt_conn *c, const Pythread__Response *resp)
{
    Pythread__Response small;
    size_t size, unread;

    if (c->closing)
        return;
    size = pt_wire_response_frame_bound(resp);
    if (size - PT_WIRE_HEADER > c->daemon->max_frame &&
        pt_wire_response_frame_size(resp) - PT_WIRE_HEADER > c->daemon->max_frame) {
        /* Cannot happen with the core's short messages; answer anyway, so
         * the request is not left without a response. */
        pt_log(LOG_ERR, "session %llu: answer to request %llu is %zu bytes, over the frame limit",
               (unsigned long long)c->id, (unsigned long long)resp->id,
               pt_wire_response_frame_size(resp));
        small = (Pythread__Response)PYTHREAD__RESPONSE__INIT;
        small.id = resp->id;
        small.has_status = 1;
        small.status = PT_EINTERNAL;
        small.message = "pythreadd: the answer is larger than the frame limit; raise --max-frame";
        resp = &small;
        size = pt_wire_response_frame_bound(resp);
    }
    if (conn_out_reserve(c, size) < 0) {
        conn_fail(c);
        return;
    }
    c->out_len += pt_wire_response_frame_pack(resp, c->out + c->out_len);
    pt_mem_output(c);
    c->responses++;
    if (c->watch_ref != 0 && resp->id == c->watch_id)
        c->watch_done = 1;
    conn_queue(c);
    /* Back-pressure: a peer that does not read its answers is not read
     * either, so it cannot make the daemon hold more than this. Wake-ups
     * still add answers while it is paused: past twice the cap, or after
     * the stall timeout, it is cut off rather than allowed to grow. */
    unread = c->out_len - c->out_off;
    if (unread > 2 * (size_t)c->daemon->max_output) {
        pt_log_peer(c->peer.uid, LOG_WARNING,
                    "session %llu (pid %d): %zu bytes of answers unread, over twice --max-output "
                    "(%u); cutting it off",
                    (unsigned long long)c->id, (int)c->peer.pid, unread, c->daemon->max_output);
        conn_cut(c, "the peer did not read its answers (over twice --max-output)");
        return;
    }
    if (!c->paused && unread > c->daemon->max_output)
        conn_pause(c, unread);
    else if (!c->paused && pt_mem_user_over(c))
        conn_pause_user(c, unread);
}

/* As pt_conn_send, and fd goes with the frame's first byte (SCM_RIGHTS):
 * the peer takes it with the frame. fd stays the caller's. */
void pt_conn_send_fd(pt_conn *c, const Pythread__Response *resp, int fd)
{
    uint64_t pos = c->out_sent + (c->out_len - c->out_off);

    if (c->closing)
        return;
    if (c->nfds == c->capfds) {
        uint32_t cap = c->capfds ? 2 * c->capfds : 4;
        struct pt_conn_fd *grown = realloc(c->fds, cap * sizeof(*grown));

        if (!grown) {
            conn_fail(c);
            return;
        }
        c->fds = grown;
        c->capfds = cap;
    }
    c->fds[c->nfds++] = (struct pt_conn_fd){pos, fd};
    pt_conn_send(c, resp);
}

/* The peer caught up: the frames that arrived before the pause get their
 * turns (no new read may come to serve them), or it reads again. */
static void conn_resume(pt_conn *c)
{
    pt_log(LOG_DEBUG, "session %llu: the peer caught up; resuming its input",
           (unsigned long long)c->id);
    c->paused = 0;
    evtimer_del(c->guard);
    c->partial_since = 0; /* a frame left partial gets its timeout anew */
    conn_next(c, pt_daemon_now(), 0);
}

/* Write from out_off the bytes before the next descriptor's, or, when the
 * descriptor's byte is next, sendmsg() with it up to the one after. */
static ssize_t conn_write_some(pt_conn *c)
{
    size_t len = c->out_len - c->out_off, gap;
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *cm;
    ssize_t n;

    gap = c->nfds ? (size_t)(c->fds[0].pos - c->out_sent) : len;
    if (gap > 0)
        return write(c->fd, c->out + c->out_off, gap < len ? gap : len);
    if (c->nfds > 1 && c->fds[1].pos - c->fds[0].pos < len)
        len = (size_t)(c->fds[1].pos - c->fds[0].pos);
    iov = (struct iovec){.iov_base = c->out + c->out_off, .iov_len = len};
    m.msg_control = u.b;
    m.msg_controllen = sizeof(u.b);
    cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &c->fds[0].fd, sizeof(int));
    n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (n > 0)
        memmove(c->fds, c->fds + 1, --c->nfds * sizeof(*c->fds));
    return n;
}

void pt_conn_watch(pt_conn *c, uint32_t ref, uint64_t thread, uint64_t id)
{
    c->watch_ref = thread <= UINT32_MAX ? ref : 0;
    c->watch_tid = (uint32_t)thread;
    c->watch_id = id;
    c->watch_done = 0;
}

/* The session's reader sleeps beside a word, not in recv(): tell it that
 * answers are there; after the one it waits for, it watches no more. */
static void conn_wake_watcher(pt_conn *c)
{
    if (c->watch_ref == 0)
        return;
    pt_fast_wake_watcher(c->daemon->fast, c->watch_ref, c->watch_tid);
    if (c->watch_done && c->out_off == c->out_len)
        c->watch_ref = 0;
}

/*
 * Write what is queued, until it is all out or the socket is full (then the
 * write event is armed and the rest waits). A drained closing connection is
 * freed, a write error ends the session; c must not be touched afterwards.
 */
static void conn_flush(pt_conn *c)
{
    pt_daemon *d = c->daemon;
    char why[160];

    if (c->cut_reason)
        return; /* its end is on the way; the answers are dropped */
    while (c->out_off < c->out_len) {
        ssize_t n = conn_write_some(c);

        if (n > 0) {
            c->out_off += (size_t)n;
            c->out_sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        snprintf(why, sizeof why, "connection error: %s", strerror(n < 0 ? errno : EPIPE));
        conn_end(c, pt_daemon_now());
        conn_free(c, why);
        return;
    }
    pt_mem_output(c);
    conn_wake_watcher(c);
    if (c->out_off < c->out_len) {
        conn_write_arm(c, 1);
    } else {
        c->out_off = c->out_len = 0;
        conn_write_arm(c, 0);
        if (c->out_cap > PT_CONN_OUT_KEEP) {
            /* A burst is over: an idle session keeps no big buffer. */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->closing) {
            conn_free(c, "closed after an error");
            return;
        }
    }
    if (c->paused && c->out_len - c->out_off <= d->max_output / 2 &&
        (c->out_len == c->out_off || !pt_mem_user_over(c)))
        conn_resume(c);
}

void pt_conn_flush_pending(pt_daemon *d)
{
    pt_conn *c;

    pt_state_flush(d); /* no answer before the journal has its cause */
    /* Flushing may queue more (a resumed peer's answers, wake-ups from a
     * session a write error ended): take from the head until none is left.
     * The last connection queued is written first, as Redis does; writing
     * a woken waiter before its releaser measured no faster (pinned hand-off
     * within noise) and made fewer turns change hands. */
    while ((c = LIST_FIRST(&d->pending)) != NULL) {
        LIST_REMOVE(c, pending_link);
        c->queued = 0;
        conn_flush(c);
    }
    pt_state_compact_maybe(d);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/*
 * A client names itself (its program's name) and that name is shown to
 * other users by pythreadctl and written to the log: every byte outside
 * printable ASCII becomes '?', so no name can carry escape sequences or line
 * breaks to someone's terminal. The name only describes the session, so it
 * is sanitised rather than refused: a program with an odd name still works.
 */
static void client_name_set(pt_conn *c, const char *name)
{
    const unsigned char *s = (const unsigned char *)(name ? name : "");
    size_t i;

    for (i = 0; s[i] && i + 1 < sizeof c->client_name; i++)
        c->client_name[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    c->client_name[i] = '\0';
}

/* The first request: a hello in our protocol version, or the end. Returns
 * -1 when the connection is closing. */
static int conn_hello(pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    const Pythread__HelloArgs *hello = pt_wire_hello_args(req);
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;
    Pythread__HelloInfo info = PYTHREAD__HELLO_INFO__INIT;
    pt_resume_taken taken = {0};
    char msg[256];

    if (req->op != PYTHREAD__OP__OP_HELLO) {
        snprintf(msg, sizeof msg,
                 "request %llu: the first request of a session must be a hello; send OP_HELLO "
                 "with protocol version %u first",
                 (unsigned long long)req->id, PT_PROTOCOL_VERSION);
        conn_protocol_error(c, req->id, PT_EPROTO, msg, now);
        return -1;
    }
    if (hello->version != PT_PROTOCOL_VERSION) {
        snprintf(msg, sizeof msg,
                 "client speaks protocol %u, this daemon speaks %u; use matching versions of "
                 "libpythread and pythreadd",
                 hello->version, PT_PROTOCOL_VERSION);
        conn_protocol_error(c, req->id, PT_EVERSION, msg, now);
        return -1;
    }
    c->hello = 1;
    client_name_set(c, hello->client_name);
    if (hello->has_resume_session && pt_resume_hello(c, hello, &taken, now) == 0) {
        info.has_resumed = info.resumed = 1;
        info.n_resend = taken.nresend;
        info.resend = taken.resend;
    }
    r.id = req->id;
    info.has_version = info.has_session = info.has_max_frame = 1;
    info.version = PT_PROTOCOL_VERSION;
    info.session = c->id;
    info.max_frame = c->daemon->max_frame;
    info.has_fast_id = c->sid != 0;
    info.fast_id = c->sid;
    if (c->resumable) {
        info.has_resume_key = info.has_grace_ms = 1;
        info.resume_key.data = c->key;
        info.resume_key.len = sizeof(c->key);
        info.grace_ms = c->daemon->grace_ms;
    }
    r.hello = &info;
    pt_conn_send(c, &r);
    pt_resume_taken_done(c, &taken);
    pt_log(LOG_DEBUG, "session %llu: hello from '%s' (pid %d, uid %u)", (unsigned long long)c->id,
           c->client_name, (int)c->peer.pid, (unsigned)c->peer.uid);
    return 0;
}

/* One decoded request. Returns -1 when the connection is closing. */
static int conn_request(pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    char msg[160];

    c->requests++;
    if (!c->hello)
        return conn_hello(c, req, now);
    if (req->op == PYTHREAD__OP__OP_HELLO) {
        snprintf(msg, sizeof msg,
                 "request %llu: this session has said hello already; send the hello once per "
                 "connection",
                 (unsigned long long)req->id);
        pt_log_peer(c->peer.uid, LOG_WARNING, "session %llu (pid %d): %s",
                    (unsigned long long)c->id, (int)c->peer.pid, msg);
        pt_conn_send_error(c, req->id, PT_EPROTO, msg);
        return 0;
    }
    pt_dispatch_request(c->daemon, c, req, now);
    return c->closing ? -1 : 0;
}

/* The leading fields every encoder writes first: field 1 (the id, a
 * varint), then field 2 (the op, one byte for every op there is). They
 * name a request that would not decode in its error frame, and tell the
 * calls a restart's grace holds back from inspection. 0 for a field that
 * is not there so. */
typedef struct body_head {
    uint64_t id;
    uint32_t op;
} body_head;

static body_head body_peek(const uint8_t *p, size_t len)
{
    body_head h = {0, 0};
    unsigned shift = 0;
    size_t i;

    if (len < 2 || p[0] != 0x08)
        return h;
    for (i = 1; i < len && shift < 64; i++, shift += 7) {
        h.id |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80))
            break;
    }
    if (i >= len || shift >= 64) /* the id never ends */
        return (body_head){0, 0};
    if (i + 2 < len && p[i + 1] == 0x10 && !(p[i + 2] & 0x80))
        h.op = p[i + 2];
    return h;
}

/* The length of the frame whose header is at hdr, or -1 after answering a
 * length no frame may have (before anything is allocated for it). */
static int conn_frame_len(pt_conn *c, const uint8_t *hdr, uint32_t *len, uint64_t now)
{
    uint32_t max = c->daemon->max_frame;
    char err[192];

    *len = pt_wire_len_get(hdr);
    if (*len != 0 && *len <= max)
        return 0;
    if (*len == 0) {
        snprintf(err, sizeof err, "empty frame: every frame carries one Request message");
    } else {
        c->daemon->refused[PT_DLIMIT_FRAME]++;
        snprintf(err, sizeof err,
                 "frame of %u bytes is over this daemon's limit of %u bytes; send smaller "
                 "messages or raise pythreadd --max-frame",
                 *len, max);
    }
    conn_protocol_error(c, 0, PT_EPROTO, err, now);
    return -1;
}

/* Decode one frame's body and handle the request. */
static void conn_frame(pt_conn *c, const uint8_t *body, uint32_t len, uint64_t now)
{
    pt_daemon *d = c->daemon;
    Pythread__Request *req;
    char err[192];

    req = pt_wire_request_decode(&d->arena, body, len, err, sizeof err);
    if (!req) {
        pt_wire_arena_reset(&d->arena);
        conn_protocol_error(c, body_peek(body, len).id, PT_EPROTO, err, now);
        return;
    }
    conn_request(c, req, now);
    pt_wire_arena_reset(&d->arena);
}

/* What one turn of a connection has used of its budget. */
typedef struct conn_turn {
    uint32_t frames;
    size_t unread; /* answers unread by the peer when the turn began */
} conn_turn;

static void turn_begin(const pt_conn *c, conn_turn *t)
{
    t->frames = 0;
    t->unread = c->out_len - c->out_off;
}

/* Room for one more frame in this turn: fewer than PT_TURN_FRAMES handled
 * and fewer than PT_TURN_BYTES of answers added (nothing is written during
 * a turn, so the unread answers only grow). */
static int turn_left(const pt_conn *c, const conn_turn *t)
{
    size_t unread = c->out_len - c->out_off;

    return t->frames < PT_TURN_FRAMES && (unread < t->unread || unread - t->unread < PT_TURN_BYTES);
}

/* After a restart, until the grace period is over, a session's calls wait
 * (resume.c): only its hello is served, and inspection. */
static int conn_gated(const pt_conn *c)
{
    return c->hello && pt_resume_grace(c->daemon);
}

static int frame_waits(const pt_conn *c, const uint8_t *body, size_t len)
{
    uint32_t op;

    if (!conn_gated(c))
        return 0;
    op = body_peek(body, len).op;
    return !pt_wire_op_inspects((int)op);
}

/*
 * Handle every complete frame at the start of p[0..n), stopping early when
 * the connection pauses or closes or its turn is used up. Returns the bytes
 * used up; the rest is the start of a frame, or frames not handled yet.
 */
static size_t conn_frames(pt_conn *c, const uint8_t *p, size_t n, uint64_t now, conn_turn *t)
{
    size_t off = 0;
    uint32_t len;

    while (!c->paused && !c->closing && n - off >= PT_WIRE_HEADER && turn_left(c, t)) {
        if (conn_frame_len(c, p + off, &len, now) < 0)
            break;
        if (n - off - PT_WIRE_HEADER < len)
            break;
        if (frame_waits(c, p + off + PT_WIRE_HEADER, len))
            break;
        conn_frame(c, p + off + PT_WIRE_HEADER, len, now);
        off += PT_WIRE_HEADER + len;
        t->frames++;
    }
    return off;
}

/* The input held, in[in_off..in_len). */
static const uint8_t *conn_held(const pt_conn *c, size_t *len)
{
    *len = c->in_len - c->in_off;
    return c->in + c->in_off;
}

/* A user whose sessions hold more input than --max-input-per-uid is
 * keeping frames half-sent or unserved on purpose: the session that would
 * hold more is cut off, the others go on. */
static void conn_input_over(pt_conn *c)
{
    c->daemon->refused[PT_DLIMIT_INPUT_PER_UID]++;
    pt_log_peer(c->peer.uid, LOG_WARNING,
                "session %llu (pid %d): uid %u holds over %u bytes of unfinished or unserved "
                "frames across its sessions (--max-input-per-uid); cutting this one off",
                (unsigned long long)c->id, (int)c->peer.pid, (unsigned)c->peer.uid,
                c->daemon->max_input_per_uid);
    conn_cut(c, "its user holds too much input (--max-input-per-uid)");
}

/* Append to the held input, growing its buffer by doubling. -1 (and the
 * connection cut off) when out of memory or over its user's input quota. */
static int conn_in_put(pt_conn *c, const uint8_t *p, size_t n)
{
    size_t need, cap;
    uint8_t *buf;

    if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    need = c->in_len + n;
    if (need > c->in_cap) {
        cap = c->in_cap ? c->in_cap : PT_CONN_IN_FIRST;
        while (cap < need)
            cap *= 2;
        buf = realloc(c->in, cap);
        if (!buf) {
            conn_fail(c);
            return -1;
        }
        c->in = buf;
        c->in_cap = cap;
        pt_mem_input(c);
        if (pt_mem_user_input_over(c)) {
            conn_input_over(c);
            return -1;
        }
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

/* Drop the first n bytes of the held input; the buffer goes once empty.
 * Nothing is moved: a turn that leaves frames for the next costs no copy. */
static void conn_in_consume(pt_conn *c, size_t n)
{
    c->in_off += n;
    if (c->in_off < c->in_len)
        return;
    free(c->in);
    c->in = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
    pt_mem_input(c);
}

/*
 * The held partial frame takes what it still lacks from p[0..n): first the
 * rest of its header, whose length is checked before any more is taken,
 * then the rest of its body. Returns the bytes taken.
 */
static size_t conn_in_fill(pt_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t take = 0, want;
    uint32_t len;

    if (c->in_len - c->in_off < PT_WIRE_HEADER) {
        take = PT_WIRE_HEADER - (c->in_len - c->in_off);
        if (take > n)
            take = n;
        if (conn_in_put(c, p, take) < 0 || c->in_len < PT_WIRE_HEADER)
            return take;
    }
    if (conn_frame_len(c, c->in + c->in_off, &len, now) < 0)
        return take;
    want = PT_WIRE_HEADER + len - (c->in_len - c->in_off);
    if (want > n - take)
        want = n - take;
    conn_in_put(c, p + take, want);
    return take + want;
}

/* Does the held input start with a whole frame (or a header no frame may
 * have, which its turn answers)? */
static int conn_in_whole(const pt_conn *c)
{
    size_t n;
    const uint8_t *p = conn_held(c, &n);
    uint32_t len;

    if (n < PT_WIRE_HEADER)
        return 0;
    len = pt_wire_len_get(p);
    return len == 0 || len > c->daemon->max_frame || n - PT_WIRE_HEADER >= len;
}

/*
 * While reading: bytes held over are the start of a frame, which must be
 * complete within --frame-timeout of its first byte seen; fresh says a frame
 * was completed since, so the held bytes start a new one.
 */
static void conn_frame_guard(pt_conn *c, uint64_t now, int fresh)
{
    if (c->in_len == c->in_off) {
        if (c->partial_since) {
            c->partial_since = 0;
            evtimer_del(c->guard);
        }
        return;
    }
    if (c->partial_since == 0 || fresh) {
        c->partial_since = now ? now : 1;
        conn_guard_arm(c, c->daemon->frame_timeout);
    }
}

static void runner_arm(pt_daemon *d)
{
    static const struct timeval now = {0, 0};

    evtimer_add(d->runner, &now);
}

/* Whole frames are left for another turn: stop reading (they come first)
 * and queue for a turn. The frame timeout waits meanwhile: it is ours. */
static void conn_ready(pt_conn *c)
{
    pt_daemon *d = c->daemon;

    conn_read_stop(c);
    if (c->partial_since) {
        c->partial_since = 0;
        evtimer_del(c->guard);
    }
    if (c->ready)
        return;
    c->ready = 1;
    TAILQ_INSERT_TAIL(&d->ready, c, ready_link);
    runner_arm(d);
}

static void conn_unready(pt_conn *c)
{
    if (!c->ready)
        return;
    c->ready = 0;
    TAILQ_REMOVE(&c->daemon->ready, c, ready_link);
}

/*
 * After a turn (or a resume): a paused connection waits for its peer to
 * read; one with whole frames left waits for its next turn; else it reads
 * again, its held bytes (at most the start of one frame) moved to the
 * front. fresh says the turn completed a frame.
 */
static void conn_next(pt_conn *c, uint64_t now, int fresh)
{
    if (c->paused || c->closing)
        return;
    if (conn_gated(c) && c->in_len != c->in_off && conn_in_whole(c)) {
        /* a call waits for the grace to end: read nothing more until
         * pt_conn_ungate_all */
        conn_read_stop(c);
        return;
    }
    if (c->in_len != c->in_off) {
        if (conn_in_whole(c)) {
            conn_ready(c);
            return;
        }
        if (c->in_off) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
    }
    conn_read_start(c);
    conn_frame_guard(c, now, fresh);
}

/* A turn on the frames held from before: after its last turn ran out or
 * its peer caught up with its answers. */
static void conn_turn_held(pt_conn *c, uint64_t now)
{
    conn_turn t;
    size_t n, used;
    const uint8_t *p = conn_held(c, &n);

    turn_begin(c, &t);
    used = conn_frames(c, p, n, now, &t);
    if (c->closing)
        return;
    conn_in_consume(c, used);
    conn_next(c, now, used > 0);
}

/* The peer hung up (n == 0) or the read failed: the session ends. */
static void conn_read_end(pt_conn *c, ssize_t n, uint64_t now)
{
    char why[160];

    if (n == 0) {
        if (c->in_len) {
            snprintf(why, sizeof why, "the peer closed the connection in the middle of a frame");
            pt_log_peer(c->peer.uid, LOG_NOTICE,
                        "session %llu (pid %d): %s (%zu bytes of it arrived)",
                        (unsigned long long)c->id, (int)c->peer.pid, why, c->in_len - c->in_off);
        } else {
            snprintf(why, sizeof why, "the peer closed the connection");
        }
    } else {
        snprintf(why, sizeof why, "connection error: %s", strerror(errno));
    }
    conn_end(c, now);
    conn_free(c, why);
}

/*
 * One read into the daemon's scratch buffer: the held partial frame is
 * completed from its front and handled, then the complete frames after it
 * are handled where they lie, as many as one turn allows; only what is left
 * is copied aside. The caller must not touch c afterwards: the peer may
 * have hung up.
 */
static void conn_read(pt_conn *c, uint64_t now)
{
    pt_daemon *d = c->daemon;
    uint64_t before = c->requests;
    size_t off = 0, held;
    conn_turn t;
    ssize_t n;

    do
        n = read(c->fd, d->rbuf, d->rbuf_size);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        conn_read_end(c, n, now);
        return;
    }
    if ((size_t)n > PT_TURN_QUEUE_BYTES && !TAILQ_EMPTY(&d->ready)) {
        /* Others wait for their turns: a burst joins the line behind them
         * rather than taking a turn before them. */
        if (conn_in_put(c, d->rbuf, (size_t)n) == 0)
            conn_next(c, now, 0);
        return;
    }
    turn_begin(c, &t);
    if (c->in_len) {
        off = conn_in_fill(c, d->rbuf, (size_t)n, now);
        if (c->closing)
            return;
        if (conn_in_whole(c)) {
            const uint8_t *p = conn_held(c, &held);

            conn_in_consume(c, conn_frames(c, p, held, now, &t));
            if (c->closing)
                return;
        }
    }
    off += conn_frames(c, d->rbuf + off, (size_t)n - off, now, &t);
    if (c->closing)
        return;
    if (off < (size_t)n && conn_in_put(c, d->rbuf + off, (size_t)n - off) < 0)
        return;
    conn_next(c, now, c->requests != before);
}

/* ------------------------------------------------------------------ */
/* libevent callbacks                                                  */
/* ------------------------------------------------------------------ */

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    uint64_t now = pt_daemon_now();

    (void)fd;
    (void)what;
    d->served++;
    conn_read(c, now);
    pt_daemon_settle(d, now);
}

/* The next turn of the first ready connection; the rest wait their turns
 * behind it, after another poll of the sockets. */
static void conn_runner_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_daemon *d = arg;
    uint64_t now = pt_daemon_now();
    pt_conn *c = TAILQ_FIRST(&d->ready);

    (void)fd;
    (void)what;
    d->served++;
    if (c) {
        conn_unready(c);
        conn_turn_held(c, now);
    }
    if (!TAILQ_EMPTY(&d->ready))
        runner_arm(d);
    pt_daemon_settle(d, now);
}

/* The socket has room again after a short write. */
static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_conn *c = arg;

    (void)fd;
    (void)what;
    conn_queue(c);
    pt_daemon_settle(c->daemon, pt_daemon_now());
}

/*
 * The guard fired, or was made active: a session cut off from inside the
 * core ends now; a closing peer did not read its last frames in time; a
 * peer left its answers unread over the cap for the stall timeout (dropped
 * at once: it does not read, so an error frame would not reach it); or it
 * left a frame half-sent for the frame timeout (an error frame, then close).
 */
static void conn_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    uint64_t now = pt_daemon_now();
    char msg[256];

    (void)fd;
    (void)what;
    if (c->cut_reason) {
        conn_end(c, now);
        conn_free(c, c->cut_reason);
    } else if (c->closing) {
        snprintf(msg, sizeof msg, "the peer did not read its last frames in %d s",
                 PT_DAEMON_LINGER_SEC);
        conn_end(c, now);
        conn_free(c, msg);
    } else if (c->paused) {
        d->refused[PT_DLIMIT_OUTPUT]++;
        snprintf(msg, sizeof msg,
                 "the peer left %zu bytes of answers unread for %u s (pythreadd "
                 "--stall-timeout); cut off",
                 c->out_len - c->out_off, d->stall_timeout);
        pt_log_peer(c->peer.uid, LOG_WARNING, "session %llu (pid %d): %s",
                    (unsigned long long)c->id, (int)c->peer.pid, msg);
        conn_end(c, now);
        conn_free(c, "answers left unread");
    } else {
        snprintf(msg, sizeof msg,
                 "a frame was left incomplete for %u s (%zu bytes arrived); send each frame "
                 "whole and promptly, or raise pythreadd --frame-timeout",
                 d->frame_timeout, c->in_len - c->in_off);
        conn_protocol_error(c, 0, PT_EPROTO, msg, now);
    }
    pt_daemon_settle(d, now);
}

/* ------------------------------------------------------------------ */
/* Accepting and shutting down                                         */
/* ------------------------------------------------------------------ */

static pt_conn *conn_new(pt_daemon *d, evutil_socket_t fd, const struct ucred *cred)
{
    pt_conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->read_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->write_ev = event_new(d->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    c->guard = evtimer_new(d->base, conn_guard_cb, c);
    if (!c->read_ev || !c->write_ev || !c->guard) {
        if (c->read_ev)
            event_free(c->read_ev);
        if (c->write_ev)
            event_free(c->write_ev);
        if (c->guard)
            event_free(c->guard);
        free(c);
        return NULL;
    }
    c->daemon = d;
    c->fd = fd;
    c->peer.pid = cred->pid;
    c->peer.uid = cred->uid;
    c->peer.gid = cred->gid;
    if (pt_mem_attach(c) < 0) {
        event_free(c->read_ev);
        event_free(c->write_ev);
        event_free(c->guard);
        free(c);
        return NULL;
    }
    c->since = pt_daemon_now();
    TAILQ_INSERT_TAIL(&d->conns, c, link);
    d->nconns++;
    return c;
}

/* Turn a connection away before its session starts: one error frame with
 * id 0, written at once, then close. */
static void conn_refuse(pt_conn *c, int status, const char *message)
{
    pt_daemon *d = c->daemon;

    pt_log_peer(c->peer.uid, LOG_WARNING, "connection from pid %d refused: %s", (int)c->peer.pid,
                message);
    pt_conn_send_error(c, 0, status, message);
    conn_close_flushed(c, 0);
    pt_conn_flush_pending(d);
}

/* The scratch buffer every read goes into and the runner of turns, made
 * with the first connection (so every way of setting up a daemon gets
 * them). -1 when out of memory. */
static int daemon_input_get(pt_daemon *d)
{
    if (!d->runner) {
        TAILQ_INIT(&d->ready);
        d->runner = evtimer_new(d->base, conn_runner_cb, d);
        if (!d->runner)
            return -1;
    }
    if (d->rbuf)
        return 0;
    d->rbuf_size = PT_WIRE_HEADER + (size_t)d->max_frame;
    d->rbuf = malloc(d->rbuf_size);
    return d->rbuf ? 0 : -1;
}

/* With --state-dir, what lets the process take its session up after a
 * restart; NULL when sessions are not kept. */
static const pt_journal_who *conn_who(pt_conn *c, pt_journal_who *who)
{
    if (c->daemon->state == NULL || c->daemon->grace_ms == 0 || pt_resume_who(c, who) < 0)
        return NULL;
    memcpy(c->key, who->key, sizeof(c->key));
    c->start_time = who->start_time;
    c->resumable = 1;
    return who;
}

void pt_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                    void *arg)
{
    pt_daemon *d = arg;
    struct ucred cred;
    socklen_t len = sizeof cred;
    pt_journal_who who;
    char msg[160];
    pt_conn *c;

    (void)l;
    (void)sa;
    (void)socklen;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        pt_log(LOG_WARNING, "cannot learn who connected (SO_PEERCRED): %s; closing the connection",
               strerror(errno));
        close(fd);
        return;
    }
    c = daemon_input_get(d) == 0 ? conn_new(d, fd, &cred) : NULL;
    if (!c) {
        pt_log(LOG_ERR, "out of memory for a connection from pid %d; closing it", (int)cred.pid);
        close(fd);
        return;
    }
    if (d->nconns > d->max_sessions) {
        d->refused[PT_DLIMIT_SESSIONS]++;
        snprintf(msg, sizeof msg,
                 "pythreadd serves %u sessions, its limit; close unused clients or raise "
                 "pythreadd --max-sessions",
                 d->max_sessions);
        conn_refuse(c, PT_ELIMIT, msg);
        return;
    }
    if (pt_core_uid_sessions(d->core, cred.uid) >= d->max_sessions_per_uid) {
        d->refused[PT_DLIMIT_SESSIONS_PER_UID]++;
        snprintf(msg, sizeof msg,
                 "uid %u has %u sessions open, the limit per user; close unused clients or "
                 "raise pythreadd --max-sessions-per-uid",
                 (unsigned)cred.uid, d->max_sessions_per_uid);
        conn_refuse(c, PT_ELIMIT, msg);
        return;
    }
    c->session = pt_journal_session_new(d->journal, d->core, &c->peer, c, conn_who(c, &who));
    if (!c->session) {
        conn_refuse(c, PT_ENOMEM, "pythreadd is out of memory for a new session; try again later");
        return;
    }
    c->id = pt_core_session_id(c->session);
    c->sid = pt_fast_session_add(d->fast, c);
    conn_read_start(c);
    pt_log(LOG_DEBUG, "session %llu opened: pid %d, uid %u, gid %u", (unsigned long long)c->id,
           (int)c->peer.pid, (unsigned)c->peer.uid, (unsigned)c->peer.gid);
}

void pt_conn_ungate_all(pt_daemon *d, uint64_t now)
{
    pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (c->hello && !c->ready)
            conn_next(c, now, 0);
    }
}

void pt_conn_close_all(pt_daemon *d)
{
    pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        c->closing = 1;
        c->session = NULL; /* pt_core_free ends them */
    }
}

void pt_conn_trim(pt_daemon *d)
{
    pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (c->out && c->out_off == c->out_len) {
            free(c->out);
            c->out = NULL;
            c->out_off = c->out_len = c->out_cap = 0;
        }
    }
}

void pt_conn_free_all(pt_daemon *d)
{
    pt_conn *c;

    while ((c = TAILQ_FIRST(&d->conns)) != NULL)
        conn_free(c, "the daemon is stopping");
    if (d->runner)
        event_free(d->runner);
    d->runner = NULL;
    free(d->rbuf);
    d->rbuf = NULL;
    d->rbuf_size = 0;
}

/* ------------------------------------------------------------------ */
/* Connections kept across a planned restart (keep.c)                  */
/* ------------------------------------------------------------------ */

int pt_conn_keepable(const pt_conn *c)
{
    /* An answer carrying a descriptor can be written by this image only;
     * a metrics text being paged out is not handed over. */
    return c->session != NULL && c->resumable && !c->closing && !c->cut_reason && c->nfds == 0 &&
           c->metrics == NULL;
}

/* Connections with answers that carry a descriptor still to write. */
static size_t drain_wanted(pt_daemon *d, struct pollfd *p, pt_conn **who, size_t max)
{
    size_t n = 0;
    pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (n < max && c->nfds > 0 && !c->closing && !c->cut_reason) {
            p[n] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
            who[n++] = c;
        }
    }
    return n;
}

void pt_conn_drain(pt_daemon *d, int ms)
{
    uint64_t end = pt_daemon_now() + (uint64_t)ms * 1000000u;
    struct pollfd *p = calloc(d->nconns ? d->nconns : 1, sizeof(*p));
    pt_conn **who = calloc(d->nconns ? d->nconns : 1, sizeof(*who));
    pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (c->out_off < c->out_len)
            conn_queue(c);
    }
    pt_conn_flush_pending(d);
    while (p != NULL && who != NULL) {
        uint64_t now = pt_daemon_now();
        size_t n = drain_wanted(d, p, who, d->nconns);

        if (n == 0 || now >= end || poll(p, n, (int)((end - now) / 1000000u) + 1) <= 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (p[i].revents)
                conn_queue(who[i]);
        }
        pt_conn_flush_pending(d);
    }
    free(p);
    free(who);
}

int pt_conn_adopt(pt_daemon *d, int fd, const pt_conn_kept *k)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    pt_conn *c = NULL;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || daemon_input_get(d) < 0 ||
        (c = conn_new(d, fd, &cred)) == NULL) {
        pt_log(LOG_ERR,
               "session %llu: cannot take its kept connection back (%s); its process takes "
               "the session up again by reconnecting",
               (unsigned long long)k->session, c == NULL ? "out of memory" : strerror(errno));
        close(fd);
        return -1;
    }
    /* as an accepted socket is: no blocking, not inherited by anything run */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->hello = k->hello != 0;
    client_name_set(c, k->client_name);
    c->requests = k->requests;
    c->responses = k->responses;
    c->since = k->since;
    c->id = k->session;
    if (pt_resume_adopt(c, k->session) < 0) {
        conn_free(c, "its session is not kept");
        return -1;
    }
    c->sid = pt_fast_session_keep(d->fast, c, k->sid);
    if (k->out_len > 0) {
        if (conn_out_reserve(c, k->out_len) < 0) {
            conn_fail(c);
            return 0;
        }
        memcpy(c->out, k->out, k->out_len);
        c->out_len = k->out_len;
        pt_mem_output(c);
        /* written once the loop runs and the socket takes it */
        conn_write_arm(c, 1);
    }
    if (k->in_len > 0 && conn_in_put(c, k->in, k->in_len) < 0)
        return 0;
    conn_next(c, pt_daemon_now(), 0);
    return 0;
}
