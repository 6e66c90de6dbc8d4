/*
 * daemon.h - the parts of pythreadd shared between its files.
 *
 * pythreadd is one libevent loop thread. The listener accepts connections,
 * each connection (pt_conn) owns one bufferevent and one core session, frames
 * are cut out of its input and decoded into one arena, requests go to the
 * core, and every answer the core gives comes back through the sink and is
 * packed straight into the connection's output buffer. One timer serves every
 * deadline the core keeps. Nothing here blocks or sleeps.
 */
#ifndef PT_DAEMON_H
#define PT_DAEMON_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/un.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core.h"
#include "wire.h"

#define PT_DAEMON_NAME "pythreadd"

/* Limits of --max-frame: a request with the longest name and client name
 * must fit, and the decode arena (4x) must stay reasonable. */
#define PT_DAEMON_FRAME_MIN 1024u
#define PT_DAEMON_FRAME_MAX (16u << 20)

#define PT_DAEMON_MAX_SESSIONS 65536u
/* Output a peer has not read yet before we stop reading its requests;
 * reading resumes once it drains below half. */
#define PT_DAEMON_OUTPUT_MAX (8u << 20)
/* How long a connection closed after a protocol error may take to flush its
 * error frame before it is dropped anyway. */
#define PT_DAEMON_LINGER_SEC 2
/* Pause before accepting again after running out of file descriptors. */
#define PT_DAEMON_ACCEPT_RETRY_MSEC 200

typedef struct pt_daemon pt_daemon;

/* One client connection: a bufferevent and the core session behind it. */
typedef struct pt_conn {
    TAILQ_ENTRY(pt_conn) link;
    pt_daemon *daemon;
    struct bufferevent *bev;
    pt_session *session;  /* NULL once the core session has ended */
    pt_peer peer;         /* from SO_PEERCRED, never from the peer's words */
    uint64_t id;          /* session id, kept for logs after the session ends */
    uint32_t read_low;    /* read watermark currently set */
    unsigned hello : 1;   /* the hello has been answered */
    unsigned closing : 1; /* no more reading; answers are dropped */
    unsigned paused : 1;  /* reading stopped until the output drains */
    uint64_t requests;
    uint64_t responses;
    char client_name[PT_WIRE_NAME_MAX + 1];
} pt_conn;

TAILQ_HEAD(pt_conn_list, pt_conn);

struct pt_daemon {
    struct event_base *base;
    pt_core *core;
    struct evconnlistener *listener;
    struct event *timer;
    uint64_t timer_at; /* deadline the timer is armed for, or PT_DEADLINE_NONE */
    struct event *sig_int;
    struct event *sig_term;
    pt_wire_arena arena; /* one decode arena, reset after every message */
    void *arena_buf;
    uint32_t max_frame;
    uint32_t max_sessions;
    uint32_t nconns;
    int accept_paused;
    struct pt_conn_list conns;
    /* The socket file this process bound and must remove on exit; empty
     * when the listening socket was handed over (socket activation). */
    char bound_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t bound_dev;
    ino_t bound_ino;
};

/* log.c: "<N>message\n" lines on stderr, N a syslog priority (LOG_ERR...). */
void pt_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_log_set_verbose(int verbose);

/* timer.c */
uint64_t pt_daemon_now(void);
int pt_daemon_timer_init(pt_daemon *d);
/* Re-arm the one timer to the core's next deadline if it moved; called after
 * every batch of work. */
void pt_daemon_timer_update(pt_daemon *d, uint64_t now);

/* listen.c */
/* Bind and listen on path, replacing a stale socket and refusing a live
 * one; creates the parent directory if missing. Returns the listening fd or
 * -1 after logging why. */
int pt_listen_bind(pt_daemon *d, const char *path);
/* Serve connections on a listening fd (ours or one handed over). */
int pt_listen_start(pt_daemon *d, int fd);
/* Remove the socket file bound by pt_listen_bind, if it is still ours. */
void pt_listen_unlink(pt_daemon *d);
/* Accept again after a pause for lack of file descriptors. */
void pt_listen_resume(pt_daemon *d);

/* session.c */
void pt_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                    void *arg);
/* Queue one response frame on c's output. */
void pt_conn_send(pt_conn *c, const Pythread__Response *resp);
/* Drop every connection at shutdown; the core must already be freed. */
void pt_conn_free_all(pt_daemon *d);
/* Mark every connection closing so no answer is queued any more. */
void pt_conn_close_all(pt_daemon *d);

/* dispatch.c */
void pt_dispatch_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now);
void pt_dispatch_sink(void *ctx, pt_session *session, const pt_result *result);

#endif /* PT_DAEMON_H */
