/*
 * metrics_http.c - pythreadd --metrics ADDRESS: GET /metrics over HTTP
 * (libevent's evhttp, on the daemon's loop), the text metrics.c writes.
 *
 * The endpoint has no authentication, so it is kept small: it listens on
 * the loopback (127.0.0.1 or ::1) or on a socket file of mode 0600 only,
 * answers GET /metrics and nothing else (404 for another path, 405 for
 * another method), reads at most PT_METRICS_HTTP_HEADERS bytes of headers
 * and PT_METRICS_HTTP_BODY of body, gives a connection
 * PT_METRICS_HTTP_SEC seconds, and serves PT_METRICS_HTTP_CONNS
 * connections at once (the rest wait in the kernel's backlog). Nothing it
 * does changes the state: the text is read, never a word claimed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon.h"

/* The socket file's mode: the metrics name objects, so only the daemon's
 * user (and root) may read them there; a scraper as another user goes
 * through the loopback address or pythreadctl metrics. */
#define METRICS_SOCKET_MODE 0600u

struct pt_metrics_http {
    pt_daemon *d;
    struct evhttp *http;
    struct evconnlistener *listener; /* evhttp's; paused while conns is full */
    uint32_t conns;
    struct event *adopt; /* takes up the connections accepted meanwhile */
    struct bufferevent *fresh[PT_METRICS_HTTP_CONNS];
    uint32_t nfresh;
    pt_bound bound; /* the socket file, for a path */
};

/* ---- the address --------------------------------------------------------- */

/* A loopback socket, bound and listening; -1 after logging why not. */
static int listen_inet(const pt_metrics_where *a)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    socklen_t len = a->family == AF_INET ? sizeof(*sin) : sizeof(*sin6);
    int one = 1, fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (a->family == AF_INET) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        sin6->sin6_addr = in6addr_loopback;
    }
    /* A port in TIME_WAIT from our last run is ours to take again. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
        pt_log(LOG_ERR,
               "pythreadd: cannot serve metrics on %s port %u: %s; choose another port with "
               "--metrics",
               a->family == AF_INET ? "127.0.0.1" : "[::1]", (unsigned)a->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Where it listens, for the logs and status: the port 0 chose. */
static void address_name(pt_daemon *d, const pt_metrics_where *a, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    unsigned port = a->port;

    if (a->family == AF_UNIX) {
        snprintf(d->metrics_address, sizeof(d->metrics_address), "%s", a->path);
        return;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(d->metrics_address, sizeof(d->metrics_address), "%s:%u",
             a->family == AF_INET ? "127.0.0.1" : "[::1]", port);
}

/* ---- requests -------------------------------------------------------------- */

static void reply_error(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    if (code == 405)
        evhttp_add_header(h, "Allow", "GET");
    if (body != NULL)
        evbuffer_add_printf(body, "%s\n", text);
    evhttp_send_reply(req, code, reason, body);
    if (body != NULL)
        evbuffer_free(body);
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct pt_metrics_http *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *text;

    if (path == NULL || strcmp(path, "/metrics") != 0) {
        reply_error(req, 404, "Not Found", "pythreadd serves GET /metrics only");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(req, 405, "Method Not Allowed",
                    "pythreadd's /metrics is read with GET only; nothing here changes the state");
        return;
    }
    text = evbuffer_new();
    if (text == NULL || pt_metrics_text(m->d, NULL, pt_daemon_now(), text) < 0) {
        reply_error(req, 500, "Internal Server Error", "pythreadd is out of memory");
        if (text != NULL)
            evbuffer_free(text);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", text);
    evbuffer_free(text);
}

/* ---- connections, counted --------------------------------------------------
 * evhttp (libevent 2.1) takes every connection its listener accepts, with
 * no bound of its own. Each connection's buffer is made here, which counts
 * it; at the bound the listener pauses. The connection evhttp builds on the
 * buffer exists only once this returns, so it is adopted right after, from
 * the loop: then its close callback takes it off the count, and the
 * listener goes on. Until adopted the buffer is kept referenced, so a
 * connection evhttp dropped at once is seen as gone, not as freed memory. */

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct pt_metrics_http *m = arg;

    (void)evcon;
    if (m->conns-- == PT_METRICS_HTTP_CONNS && m->listener != NULL)
        evconnlistener_enable(m->listener);
}

static void adopt(evutil_socket_t fd, short what, void *arg)
{
    struct pt_metrics_http *m = arg;

    (void)fd;
    (void)what;
    for (uint32_t i = 0; i < m->nfresh; i++) {
        void *evcon = NULL;

        bufferevent_getcb(m->fresh[i], NULL, NULL, NULL, &evcon);
        if (evcon != NULL)
            evhttp_connection_set_closecb(evcon, conn_closed, m);
        else
            conn_closed(NULL, m);
        bufferevent_decref(m->fresh[i]);
    }
    m->nfresh = 0;
}

static struct bufferevent *conn_buffer(struct event_base *base, void *arg)
{
    struct pt_metrics_http *m = arg;
    struct bufferevent *bev;

    /* The listener pauses at the bound, so no more come before adopt(). */
    if (m->nfresh == PT_METRICS_HTTP_CONNS)
        return NULL;
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL; /* evhttp makes its own, uncounted */
    bufferevent_incref(bev);
    m->fresh[m->nfresh++] = bev;
    event_active(m->adopt, EV_TIMEOUT, 1);
    if (++m->conns == PT_METRICS_HTTP_CONNS && m->listener != NULL)
        evconnlistener_disable(m->listener);
    return bev;
}

/* ---- start and stop -------------------------------------------------------- */

static struct pt_metrics_http *http_new(pt_daemon *d)
{
    struct pt_metrics_http *m = calloc(1, sizeof(*m));

    if (m == NULL || (m->http = evhttp_new(d->base)) == NULL ||
        (m->adopt = event_new(d->base, -1, 0, adopt, m)) == NULL) {
        if (m != NULL && m->http != NULL)
            evhttp_free(m->http);
        free(m);
        return NULL;
    }
    m->d = d;
    /* Every method reaches serve(), which answers 405: evhttp would drop
     * a method it is not allowed without a word. */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(m->http, PT_METRICS_HTTP_HEADERS);
    evhttp_set_max_body_size(m->http, PT_METRICS_HTTP_BODY);
    evhttp_set_timeout(m->http, PT_METRICS_HTTP_SEC);
    evhttp_set_gencb(m->http, serve, m);
    evhttp_set_bevcb(m->http, conn_buffer, m);
    return m;
}

/* evhttp serves fd through a listener of ours, which marks accepted
 * sockets close-on-exec (an upgrade must not leak them). */
static int http_listen(struct pt_metrics_http *m, int fd)
{
    struct evhttp_bound_socket *b;

    m->listener = evconnlistener_new(m->d->base, NULL, NULL,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (m->listener == NULL)
        return -1;
    b = evhttp_bind_listener(m->http, m->listener);
    if (b == NULL) {
        evconnlistener_free(m->listener);
        m->listener = NULL;
        return -1;
    }
    return 0;
}

int pt_metrics_http_start(pt_daemon *d, const pt_metrics_where *w)
{
    struct pt_metrics_http *m = http_new(d);
    int fd;

    if (m == NULL) {
        pt_log(LOG_ERR, "pythreadd: cannot serve metrics: out of memory");
        return -1;
    }
    d->metrics_http = m;
    fd = w->family == AF_UNIX ? pt_listen_unix(w->path, "--metrics", METRICS_SOCKET_MODE, &m->bound)
                              : listen_inet(w);
    if (fd < 0)
        return -1;
    address_name(d, w, fd);
    if (http_listen(m, fd) < 0) {
        close(fd);
        pt_log(LOG_ERR, "pythreadd: cannot serve metrics on %s: out of memory", d->metrics_address);
        return -1;
    }
    pt_log(LOG_INFO, "metrics: GET /metrics on %s%s", d->metrics_address,
           w->family == AF_UNIX ? " (HTTP over the socket file, mode 0600)" : "");
    return 0;
}

void pt_metrics_http_stop(pt_daemon *d)
{
    struct pt_metrics_http *m = d->metrics_http;

    if (m == NULL)
        return;
    /* evhttp frees its connections (each conn_closed, the last adopted
     * first) and the listener, which is evhttp's. */
    adopt(-1, 0, m);
    m->listener = NULL;
    evhttp_free(m->http);
    event_free(m->adopt);
    pt_bound_unlink(&m->bound);
    free(m);
    d->metrics_http = NULL;
}
