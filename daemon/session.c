#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"

static void conn_process(pt_conn *c, uint64_t now);

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
    evtimer_del(c->guard);
    if (c->session) {
        pt_session *s = c->session;
        c->session = NULL;
        pt_core_session_end(c->daemon->core, s, now);
    }
}

/* Free the connection; its core session must have ended. */
static void conn_free(pt_conn *c, const char *why)
{
    pt_daemon *d = c->daemon;

    pt_log(LOG_DEBUG, "session %llu closed (pid %d, '%s'): %s; %llu requests, %llu responses",
           (unsigned long long)c->id, (int)c->peer.pid, c->client_name, why,
           (unsigned long long)c->requests, (unsigned long long)c->responses);
    TAILQ_REMOVE(&d->conns, c, link);
    d->nconns--;
    bufferevent_free(c->bev);
    event_free(c->guard);
    free(c);
    pt_listen_resume(d); /* a descriptor is free again */
}

/*
 * Close after the output is flushed, so the peer reads why it is closed.
 * The write callback frees the connection once the output is empty; a peer
 * that does not read gets PT_DAEMON_LINGER_SEC and is then dropped. The
 * caller must not touch c afterwards.
 */
static void conn_close_flushed(pt_conn *c, uint64_t now)
{
    struct timeval linger = {PT_DAEMON_LINGER_SEC, 0};

    conn_end(c, now);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c, "closed after an error");
        return;
    }
    bufferevent_set_timeouts(c->bev, NULL, &linger);
}

static void conn_send_error(pt_conn *c, uint64_t id, int status, const char *message)
{
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;

    r.id = id;
    r.has_status = 1;
    r.status = status;
    r.message = (char *)message;
    pt_conn_send(c, &r);
}

/*
 * A peer that breaks the protocol gets one error frame and is closed; only
 * its own session ends. The caller must not touch c afterwards.
 */
static void conn_protocol_error(pt_conn *c, uint64_t id, int status, const char *message,
                                uint64_t now)
{
    pt_log(LOG_WARNING, "session %llu (pid %d): %s; closing it", (unsigned long long)c->id,
           (int)c->peer.pid, message);
    conn_send_error(c, id, status, message);
    conn_close_flushed(c, now);
}

/*
 * Called from inside the core (through the sink) when an answer cannot be
 * queued: the connection cannot go on, but ending its session here would
 * re-enter the core, so the end is deferred to the event callback.
 */
static void conn_cut(pt_conn *c, const char *why)
{
    c->closing = 1;
    c->cut_reason = why;
    evtimer_del(c->guard);
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static void conn_fail(pt_conn *c)
{
    pt_log(LOG_ERR, "session %llu (pid %d): out of memory for an answer; closing it",
           (unsigned long long)c->id, (int)c->peer.pid);
    conn_cut(c, "out of memory for an answer");
}

/* Arm the guard timer for seconds from now. */
static void conn_guard_arm(pt_conn *c, uint32_t seconds)
{
    struct timeval tv = {(time_t)seconds, 0};

    evtimer_add(c->guard, &tv);
}

void pt_conn_send(pt_conn *c, const Pythread__Response *resp)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    Pythread__Response small;
    struct evbuffer_iovec vec;
    size_t size;

    if (c->closing)
        return;
    size = pt_wire_response_frame_size(resp);
    if (size - PT_WIRE_HEADER > c->daemon->max_frame) {
        /* Cannot happen with the core's short messages; answer anyway, so
         * the request is not left without a response. */
        pt_log(LOG_ERR, "session %llu: answer to request %llu is %zu bytes, over the frame limit",
               (unsigned long long)c->id, (unsigned long long)resp->id, size);
        small = (Pythread__Response)PYTHREAD__RESPONSE__INIT;
        small.id = resp->id;
        small.has_status = 1;
        small.status = PT_EINTERNAL;
        small.message = "pythreadd: the answer is larger than the frame limit; raise --max-frame";
        resp = &small;
        size = pt_wire_response_frame_size(resp);
    }
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &vec, 1) < 1 || vec.iov_len < size) {
        conn_fail(c);
        return;
    }
    pt_wire_response_frame_pack(resp, vec.iov_base);
    vec.iov_len = size;
    if (evbuffer_commit_space(out, &vec, 1) < 0) {
        conn_fail(c);
        return;
    }
    c->responses++;
    /* Back-pressure: a peer that does not read its answers is not read
     * either, so it cannot make the daemon hold more than this. Wake-ups
     * still add answers while it is paused: past twice the cap, or after
     * the stall timeout, it is cut off rather than allowed to grow. */
    if (evbuffer_get_length(out) > 2 * (size_t)c->daemon->max_output) {
        pt_log(LOG_WARNING,
               "session %llu (pid %d): %zu bytes of answers unread, over twice --max-output "
               "(%u); cutting it off",
               (unsigned long long)c->id, (int)c->peer.pid, evbuffer_get_length(out),
               c->daemon->max_output);
        conn_cut(c, "the peer did not read its answers (over twice --max-output)");
        return;
    }
    if (!c->paused && evbuffer_get_length(out) > c->daemon->max_output) {
        pt_log(LOG_DEBUG, "session %llu: %zu bytes unread by the peer; pausing its input",
               (unsigned long long)c->id, evbuffer_get_length(out));
        c->paused = 1;
        bufferevent_disable(c->bev, EV_READ);
        conn_guard_arm(c, c->daemon->stall_timeout);
    }
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* The first request: a hello in our protocol version, or the end. Returns
 * -1 when the connection is closing (c must not be touched then). */
static int conn_hello(pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;
    char msg[256];

    if (req->op != PYTHREAD__OP__OP_HELLO) {
        snprintf(msg, sizeof msg,
                 "request %llu: the first request of a session must be a hello; send OP_HELLO "
                 "with protocol version %u first",
                 (unsigned long long)req->id, PT_PROTOCOL_VERSION);
        conn_protocol_error(c, req->id, PT_EPROTO, msg, now);
        return -1;
    }
    if (req->version != PT_PROTOCOL_VERSION) {
        snprintf(msg, sizeof msg,
                 "client speaks protocol %u, this daemon speaks %u; use matching versions of "
                 "libpythread and pythreadd",
                 req->version, PT_PROTOCOL_VERSION);
        conn_protocol_error(c, req->id, PT_EVERSION, msg, now);
        return -1;
    }
    c->hello = 1;
    if (req->client_name)
        snprintf(c->client_name, sizeof c->client_name, "%s", req->client_name);
    r.id = req->id;
    r.has_version = 1;
    r.version = PT_PROTOCOL_VERSION;
    r.has_session = 1;
    r.session = c->id;
    r.has_max_frame = 1;
    r.max_frame = c->daemon->max_frame;
    pt_conn_send(c, &r);
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
        pt_log(LOG_WARNING, "session %llu (pid %d): %s", (unsigned long long)c->id,
               (int)c->peer.pid, msg);
        conn_send_error(c, req->id, PT_EPROTO, msg);
        return 0;
    }
    pt_dispatch_request(c->daemon, c, req, now);
    return c->closing ? -1 : 0;
}

/* The id of a request that would not decode, so the error frame can name
 * it: every encoder writes field 1 (the id, a varint) first. 0 if not. */
static uint64_t body_peek_id(const uint8_t *p, size_t len)
{
    uint64_t id = 0;

    if (len < 2 || p[0] != 0x08)
        return 0;
    for (size_t i = 1, shift = 0; i < len && shift < 64; i++, shift += 7) {
        id |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80))
            return id;
    }
    return 0;
}

static void conn_set_read_low(pt_conn *c, uint32_t low)
{
    if (c->read_low == low)
        return;
    c->read_low = low;
    bufferevent_setwatermark(c->bev, EV_READ, low, PT_WIRE_HEADER + c->daemon->max_frame);
}

/*
 * After the complete frames are handled: bytes left over are the start of
 * a frame, which must be completed within --frame-timeout of its first byte
 * seen. Called only while reading. The watermark goes down to one byte when
 * the input is empty, so even a peer that stops inside the 4-byte header is
 * noticed.
 */
static void conn_frame_guard(pt_conn *c, uint64_t now)
{
    size_t avail = evbuffer_get_length(bufferevent_get_input(c->bev));

    if (avail == 0) {
        c->partial_since = 0;
        evtimer_del(c->guard);
        conn_set_read_low(c, 1);
        return;
    }
    if (avail < PT_WIRE_HEADER)
        conn_set_read_low(c, PT_WIRE_HEADER);
    if (c->partial_since == 0) {
        c->partial_since = now ? now : 1;
        conn_guard_arm(c, c->daemon->frame_timeout);
    }
}

/*
 * Cut every complete frame out of the input and handle it. Several frames
 * may be buffered, and all their answers go out in one write once the loop
 * is idle. An incomplete frame raises the read watermark to its full size,
 * so we are called again only when all of it is here. The caller must not
 * touch c afterwards: a protocol error may have freed it.
 */
static void conn_process(pt_conn *c, uint64_t now)
{
    pt_daemon *d = c->daemon;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char err[192];

    while (!c->paused && !c->closing) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[PT_WIRE_HEADER];
        const uint8_t *frame;
        Pythread__Request *req;
        uint32_t len;
        int rc;

        if (avail < PT_WIRE_HEADER)
            break;
        evbuffer_copyout(in, hdr, PT_WIRE_HEADER);
        len = pt_wire_len_get(hdr);
        if (len == 0 || len > d->max_frame) {
            if (len == 0)
                snprintf(err, sizeof err, "empty frame: every frame carries one Request message");
            else
                snprintf(err, sizeof err,
                         "frame of %u bytes is over this daemon's limit of %u bytes; send "
                         "smaller messages or raise pythreadd --max-frame",
                         len, d->max_frame);
            conn_protocol_error(c, 0, PT_EPROTO, err, now);
            return;
        }
        if (avail - PT_WIRE_HEADER < len) {
            conn_set_read_low(c, PT_WIRE_HEADER + len);
            break;
        }
        frame = evbuffer_pullup(in, (ev_ssize_t)(PT_WIRE_HEADER + len));
        if (!frame) {
            conn_fail(c);
            return;
        }
        req = pt_wire_request_decode(&d->arena, frame + PT_WIRE_HEADER, len, err, sizeof err);
        if (!req) {
            pt_wire_arena_reset(&d->arena);
            conn_protocol_error(c, body_peek_id(frame + PT_WIRE_HEADER, len), PT_EPROTO, err, now);
            return;
        }
        rc = conn_request(c, req, now);
        pt_wire_arena_reset(&d->arena);
        if (rc < 0)
            return;
        evbuffer_drain(in, PT_WIRE_HEADER + len);
        c->partial_since = 0;
    }
    if (c->closing || c->paused)
        return;
    conn_frame_guard(c, now);
}

/* ------------------------------------------------------------------ */
/* libevent callbacks                                                  */
/* ------------------------------------------------------------------ */

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    uint64_t now = pt_daemon_now();

    (void)bev;
    conn_process(c, now);
    pt_daemon_timer_update(d, now);
}

/*
 * Runs after each write that leaves the output at or below half the
 * back-pressure bound: resume a paused peer (its buffered frames first,
 * since no new read may come to call us), or free a closing one once its
 * last frame is out.
 */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));
    uint64_t now;

    if (c->closing) {
        if (pending == 0 && !c->session)
            conn_free(c, "closed after an error");
        return;
    }
    if (!c->paused || pending > d->max_output / 2)
        return;
    pt_log(LOG_DEBUG, "session %llu: the peer caught up; resuming its input",
           (unsigned long long)c->id);
    c->paused = 0;
    evtimer_del(c->guard);
    c->partial_since = 0; /* a frame left partial gets its timeout anew */
    bufferevent_enable(bev, EV_READ);
    now = pt_daemon_now();
    conn_process(c, now);
    pt_daemon_timer_update(d, now);
}

/*
 * The guard fired: a peer left its answers unread over the cap for the
 * stall timeout (dropped at once: it does not read, so an error frame
 * would not reach it), or left a frame half-sent for the frame timeout (an
 * error frame, then close).
 */
static void conn_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    uint64_t now = pt_daemon_now();
    size_t partial = evbuffer_get_length(bufferevent_get_input(c->bev));
    char msg[256];

    (void)fd;
    (void)what;
    if (c->closing)
        return;
    if (c->paused) {
        snprintf(msg, sizeof msg,
                 "the peer left %zu bytes of answers unread for %u s (pythreadd "
                 "--stall-timeout); cut off",
                 evbuffer_get_length(bufferevent_get_output(c->bev)), d->stall_timeout);
        pt_log(LOG_WARNING, "session %llu (pid %d): %s", (unsigned long long)c->id,
               (int)c->peer.pid, msg);
        conn_end(c, now);
        conn_free(c, "answers left unread");
    } else {
        snprintf(msg, sizeof msg,
                 "a frame was left incomplete for %u s (%zu bytes arrived); send each frame "
                 "whole and promptly, or raise pythreadd --frame-timeout",
                 d->frame_timeout, partial);
        conn_protocol_error(c, 0, PT_EPROTO, msg, now);
    }
    pt_daemon_timer_update(d, now);
}

/* EOF, a read or write error, or a closing peer that would not read. */
static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    pt_conn *c = arg;
    pt_daemon *d = c->daemon;
    uint64_t now = pt_daemon_now();
    size_t partial = evbuffer_get_length(bufferevent_get_input(bev));
    char why[160];

    if (what & BEV_EVENT_EOF) {
        if (partial && !c->closing) {
            snprintf(why, sizeof why, "the peer closed the connection in the middle of a frame");
            pt_log(LOG_NOTICE, "session %llu (pid %d): %s (%zu bytes of it arrived)",
                   (unsigned long long)c->id, (int)c->peer.pid, why, partial);
        } else {
            snprintf(why, sizeof why, "the peer closed the connection");
        }
    } else if (c->cut_reason) {
        snprintf(why, sizeof why, "%s", c->cut_reason);
    } else if (what & BEV_EVENT_TIMEOUT) {
        snprintf(why, sizeof why, "the peer did not read its last frames in %d s",
                 PT_DAEMON_LINGER_SEC);
    } else {
        snprintf(why, sizeof why, "connection error: %s", strerror(EVUTIL_SOCKET_ERROR()));
    }
    conn_end(c, now);
    conn_free(c, why);
    pt_daemon_timer_update(d, now);
}

/* ------------------------------------------------------------------ */
/* Accepting and shutting down                                         */
/* ------------------------------------------------------------------ */

static pt_conn *conn_new(pt_daemon *d, evutil_socket_t fd, const struct ucred *cred)
{
    pt_conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->guard = evtimer_new(d->base, conn_guard_cb, c);
    if (!c->bev || !c->guard) {
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->guard)
            event_free(c->guard);
        free(c);
        return NULL;
    }
    c->daemon = d;
    c->peer.pid = cred->pid;
    c->peer.uid = cred->uid;
    c->peer.gid = cred->gid;
    c->since = pt_daemon_now();
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    conn_set_read_low(c, 1);
    bufferevent_setwatermark(c->bev, EV_WRITE, d->max_output / 2, 0);
    TAILQ_INSERT_TAIL(&d->conns, c, link);
    d->nconns++;
    return c;
}

/* Turn a connection away before its session starts: one error frame with
 * id 0, then close. */
static void conn_refuse(pt_conn *c, int status, const char *message)
{
    pt_log(LOG_WARNING, "connection from pid %d refused: %s", (int)c->peer.pid, message);
    conn_send_error(c, 0, status, message);
    conn_close_flushed(c, 0);
}

void pt_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                    void *arg)
{
    pt_daemon *d = arg;
    struct ucred cred;
    socklen_t len = sizeof cred;
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
    c = conn_new(d, fd, &cred);
    if (!c) {
        pt_log(LOG_ERR, "out of memory for a connection from pid %d; closing it", (int)cred.pid);
        close(fd);
        return;
    }
    if (d->nconns > d->max_sessions) {
        snprintf(msg, sizeof msg,
                 "pythreadd serves %u sessions, its limit; close unused clients or raise "
                 "pythreadd --max-sessions",
                 d->max_sessions);
        conn_refuse(c, PT_ELIMIT, msg);
        return;
    }
    if (pt_core_uid_sessions(d->core, cred.uid) >= d->max_sessions_per_uid) {
        snprintf(msg, sizeof msg,
                 "uid %u has %u sessions open, the limit per user; close unused clients or "
                 "raise pythreadd --max-sessions-per-uid",
                 (unsigned)cred.uid, d->max_sessions_per_uid);
        conn_refuse(c, PT_ELIMIT, msg);
        return;
    }
    c->session = pt_core_session_new(d->core, &c->peer, c);
    if (!c->session) {
        conn_refuse(c, PT_ENOMEM, "pythreadd is out of memory for a new session; try again later");
        return;
    }
    c->id = pt_core_session_id(c->session);
    bufferevent_enable(c->bev, EV_READ);
    pt_log(LOG_DEBUG, "session %llu opened: pid %d, uid %u, gid %u", (unsigned long long)c->id,
           (int)c->peer.pid, (unsigned)c->peer.uid, (unsigned)c->peer.gid);
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

void pt_conn_free_all(pt_daemon *d)
{
    pt_conn *c;

    while ((c = TAILQ_FIRST(&d->conns)) != NULL)
        conn_free(c, "the daemon is stopping");
}
