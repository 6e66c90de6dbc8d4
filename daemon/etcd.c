/*
 * etcd.c - the non-blocking etcd v3 client over the gRPC gateway (see
 * etcd.h). Unary requests share a few keep-alive connections per endpoint
 * (HTTP/1.1 carries one request at a time on a connection); each watch has a
 * connection of its own, since its response never ends.
 *
 * evhttp must not see a connection freed inside one of its own callbacks,
 * so every teardown (a watch's reconnect or end) happens from a timer event
 * of the watch, one loop iteration later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "etcd.h"

/* Unary connections per endpoint: requests beyond that queue in evhttp. */
#define ETCD_CONNS       4
#define ETCD_HEADERS_MAX (64u << 10)
/* A watch that hears nothing for this long reconnects (resuming from its
 * next revision): a member that stopped answering is found out. */
#define ETCD_WATCH_IDLE_SEC 30
/* Pause before a watch reconnects: doubled per failure up to the cap, so a
 * cluster that is down costs a few attempts a second, not a busy loop. */
#define ETCD_BACKOFF_MIN_MS 20
#define ETCD_BACKOFF_MAX_MS 1000
/* Bytes taken from evhttp's buffer per copy into the stream parser. */
#define ETCD_READ_PIECE (64u << 10)

typedef struct etcd_endpoint {
    char host[256];
    int port;
    struct evhttp_connection *conn[ETCD_CONNS];
    unsigned inflight[ETCD_CONNS];
} etcd_endpoint;

typedef struct etcd_req {
    pt_etcd *e;
    struct etcd_req *prev, *next;
    const char *path;
    pt_etcd_dec_kind kind;
    int idempotent;
    char *body;
    pt_etcd_cb cb;
    void *arg;
    int ep, slot; /* where it was sent */
    int tries;
    int httperr; /* evhttp's error, -1: none */
    struct evhttp_request *hreq;
} etcd_req;

struct pt_etcd_watch {
    pt_etcd *e;
    pt_etcd_watch *prev, *next;
    char *key, *range_end;
    size_t key_len, range_end_len;
    int64_t next_rev; /* start revision of the next (re)connection; 0: now */
    int64_t last_rev; /* events at or below it were delivered */
    pt_etcd_watch_cb cb;
    void *arg;
    int ep;
    struct evhttp_connection *conn;
    struct evhttp_request *hreq;
    pt_etcd_stream stream;
    struct event *kick; /* reconnect or end, outside evhttp's callbacks */
    int failures;
    int created; /* the current stream was accepted by its member */
    int dead;    /* 0, or why it ends: a PT_ETCD_* error, or -1 canceled */
    int in_cb;
};

struct pt_etcd {
    struct event_base *base;
    struct evdns_base *dns;
    etcd_endpoint ep[PT_ETCD_ENDPOINTS];
    int nep, cur;
    struct timeval req_tv;
    etcd_req *reqs;
    pt_etcd_watch *watches;
};

/* ---- endpoints ------------------------------------------------------ */

static int parse_endpoints(pt_etcd *e, const char *list, char *err, size_t errlen)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) {
        snprintf(err, errlen, "etcd endpoints: the list is longer than %zu bytes", sizeof buf - 1);
        return -1;
    }
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (e->nep == PT_ETCD_ENDPOINTS) {
            snprintf(err, errlen, "etcd endpoints: more than %d given", PT_ETCD_ENDPOINTS);
            return -1;
        }
        struct evhttp_uri *u = evhttp_uri_parse(s);
        const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
        const char *host = u ? evhttp_uri_get_host(u) : NULL;
        int port = u ? evhttp_uri_get_port(u) : -1;
        if (!u || !scheme || strcmp(scheme, "http") != 0 || !host || !*host ||
            strlen(host) >= sizeof e->ep[0].host) {
            snprintf(err, errlen,
                     "etcd endpoint '%s': give it as http://HOST:PORT (TLS is not supported yet)",
                     s);
            evhttp_uri_free(u);
            return -1;
        }
        etcd_endpoint *ep = &e->ep[e->nep++];
        snprintf(ep->host, sizeof ep->host, "%s", host);
        ep->port = port > 0 ? port : 2379;
        evhttp_uri_free(u);
    }
    if (e->nep == 0) {
        snprintf(err, errlen, "etcd endpoints: none given (http://HOST:PORT[,...])");
        return -1;
    }
    return 0;
}

static struct evhttp_connection *new_conn(pt_etcd *e, int ep, int unary)
{
    struct evhttp_connection *c =
        evhttp_connection_base_new(e->base, e->dns, e->ep[ep].host, (unsigned short)e->ep[ep].port);
    if (!c)
        return NULL;
    evhttp_connection_set_max_headers_size(c, ETCD_HEADERS_MAX);
    if (unary) {
        evhttp_connection_set_max_body_size(c, PT_ETCD_MSG_MAX);
        evhttp_connection_set_timeout_tv(c, &e->req_tv);
    } else {
        /* A watch's body never ends: its bound is the stream parser's, per message. */
        struct timeval idle = {ETCD_WATCH_IDLE_SEC, 0};
        evhttp_connection_set_timeout_tv(c, &idle);
    }
    return c;
}

static void watch_schedule(pt_etcd_watch *w, int ms);

/* Moves to the next endpoint when the one that failed is still current:
 * several requests failing on one member move the client once. The
 * watches on the failed member move too: a stopped member keeps a watch's
 * connection open and silent, and the daemon's regular requests (its lease
 * keepalives) are what finds it out. */
static void failover(pt_etcd *e, int failed)
{
    if (failed != e->cur)
        return;
    e->cur = (e->cur + 1) % e->nep;
    for (pt_etcd_watch *w = e->watches; w; w = w->next)
        if (w->ep == failed && !w->dead)
            watch_schedule(w, 0);
}

int pt_etcd_endpoint(const pt_etcd *e)
{
    return e->cur;
}

/* ---- unary requests ------------------------------------------------- */

static void req_unlink(etcd_req *r)
{
    pt_etcd *e = r->e;
    if (r->prev)
        r->prev->next = r->next;
    else
        e->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void req_finish(etcd_req *r, const pt_etcd_result *res)
{
    req_unlink(r);
    r->cb(res, r->arg);
    free(r->body);
    free(r);
}

static void req_fail(etcd_req *r, int err, const char *why)
{
    pt_etcd_result res;
    memset(&res, 0, sizeof res);
    res.err = err;
    snprintf(res.msgbuf, sizeof res.msgbuf, "etcd %s: %s", r->path, why);
    res.message = res.msgbuf;
    req_finish(r, &res);
}

static int req_send(etcd_req *r);

static void req_error_cb(enum evhttp_request_error err, void *arg)
{
    ((etcd_req *)arg)->httperr = (int)err;
}

static void req_done(struct evhttp_request *hreq, void *arg)
{
    etcd_req *r = arg;
    pt_etcd *e = r->e;
    e->ep[r->ep].inflight[r->slot]--;
    r->hreq = NULL;
    int status = hreq ? evhttp_request_get_response_code(hreq) : 0;
    if (status == 0) {
        if (r->httperr == EVREQ_HTTP_DATA_TOO_LONG) {
            req_fail(r, PT_ETCD_EPROTO, "the answer is larger than the client accepts");
            return;
        }
        failover(e, r->ep);
        if (r->idempotent && ++r->tries < e->nep && req_send(r) == 0)
            return;
        req_fail(r, PT_ETCD_EUNAVAIL,
                 r->idempotent ? "no endpoint answered; check that the etcd cluster is up"
                               : "the connection failed; the request may or may not have been "
                                 "applied");
        return;
    }
    /* 503 is etcd's Unavailable: no leader, leader changed, member stopping.
     * What cannot apply twice goes to the next member. */
    if (status == HTTP_SERVUNAVAIL && r->idempotent && ++r->tries < e->nep) {
        failover(e, r->ep);
        if (req_send(r) == 0)
            return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(hreq);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    pt_etcd_decoded d;
    pt_etcd_decode(r->kind, status, body ? body : "", body ? len : 0, &d);
    req_finish(r, &d.r);
    pt_etcd_dec_free(&d);
}

static int req_send(etcd_req *r)
{
    pt_etcd *e = r->e;
    etcd_endpoint *ep = &e->ep[e->cur];
    int slot = 0;
    for (int k = 1; k < ETCD_CONNS; k++)
        if (ep->inflight[k] < ep->inflight[slot])
            slot = k;
    if (!ep->conn[slot] && !(ep->conn[slot] = new_conn(e, e->cur, 1)))
        return -1;
    struct evhttp_request *h = evhttp_request_new(req_done, r);
    if (!h)
        return -1;
    evhttp_request_set_error_cb(h, req_error_cb);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(h);
    evhttp_add_header(hdr, "Host", ep->host);
    evhttp_add_header(hdr, "Content-Type", "application/json");
    if (evbuffer_add(evhttp_request_get_output_buffer(h), r->body, strlen(r->body)) != 0) {
        evhttp_request_free(h);
        return -1;
    }
    r->ep = e->cur;
    r->slot = slot;
    r->httperr = -1;
    /* On failure evhttp has freed h itself. */
    if (evhttp_make_request(ep->conn[slot], h, EVHTTP_REQ_POST, r->path) != 0)
        return -1;
    r->hreq = h;
    ep->inflight[slot]++;
    return 0;
}

static int request(pt_etcd *e, const char *path, pt_etcd_dec_kind kind, int idempotent, char *body,
                   pt_etcd_cb cb, void *arg)
{
    etcd_req *r = body ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        free(body);
        return -1;
    }
    *r = (etcd_req){.e = e,
                    .path = path,
                    .kind = kind,
                    .idempotent = idempotent,
                    .body = body,
                    .cb = cb,
                    .arg = arg,
                    .next = e->reqs};
    if (e->reqs)
        e->reqs->prev = r;
    e->reqs = r;
    if (req_send(r) != 0) {
        req_unlink(r);
        free(r->body);
        free(r);
        return -1;
    }
    return 0;
}

int pt_etcd_range(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes range_end, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/kv/range", PT_ETCD_DEC_RANGE, 1, pt_etcd_enc_range(key, range_end, 0),
                   cb, arg);
}

int pt_etcd_put(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes value, int64_t lease, pt_etcd_cb cb,
                void *arg)
{
    return request(e, "/v3/kv/put", PT_ETCD_DEC_PUT, 0, pt_etcd_enc_put(key, value, lease), cb,
                   arg);
}

int pt_etcd_txn(pt_etcd *e, const pt_etcd_txn_req *t, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/kv/txn", PT_ETCD_DEC_TXN, 0, pt_etcd_enc_txn(t), cb, arg);
}

int pt_etcd_lease_grant(pt_etcd *e, int64_t ttl, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/lease/grant", PT_ETCD_DEC_LEASE, 0, pt_etcd_enc_lease_grant(ttl), cb,
                   arg);
}

int pt_etcd_lease_keepalive(pt_etcd *e, int64_t id, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/lease/keepalive", PT_ETCD_DEC_LEASE, 1, pt_etcd_enc_lease_id(id), cb,
                   arg);
}

int pt_etcd_lease_revoke(pt_etcd *e, int64_t id, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/lease/revoke", PT_ETCD_DEC_PUT, 1, pt_etcd_enc_lease_id(id), cb, arg);
}

int pt_etcd_compact(pt_etcd *e, int64_t revision, pt_etcd_cb cb, void *arg)
{
    return request(e, "/v3/kv/compaction", PT_ETCD_DEC_PUT, 1, pt_etcd_enc_compact(revision), cb,
                   arg);
}

/* ---- watches -------------------------------------------------------- */

static void watch_schedule(pt_etcd_watch *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(w->kick, &tv);
}

/* The connection broke or the stream ended: reconnect after a backoff. */
static void watch_broken(pt_etcd_watch *w, int move)
{
    if (move)
        failover(w->e, w->ep);
    int ms = ETCD_BACKOFF_MIN_MS << (w->failures < 6 ? w->failures : 6);
    w->failures++;
    watch_schedule(w, ms < ETCD_BACKOFF_MAX_MS ? ms : ETCD_BACKOFF_MAX_MS);
}

static void watch_end(pt_etcd_watch *w, int err)
{
    if (!w->dead)
        w->dead = err;
    watch_schedule(w, 0);
}

/* One decoded message: deliver its new events, advance the revisions. */
static int watch_msg(const char *json, size_t len, void *arg)
{
    pt_etcd_watch *w = arg;
    if (w->dead)
        return 1;
    pt_etcd_decoded d;
    pt_etcd_decode(PT_ETCD_DEC_WATCH, 200, json, len, &d);
    int rc = 0;
    if (d.r.err) {
        rc = 1;
        /* A server error on the stream (leader lost, member stopping): reconnect elsewhere. */
        if (d.r.err == PT_ETCD_ESERVER)
            rc = 2;
        else
            watch_end(w, d.r.err);
    } else if (d.compact_revision && d.canceled) {
        watch_end(w, PT_ETCD_ECOMPACTED);
        rc = 1;
    } else if (d.canceled) {
        rc = 2;
    } else if (d.created) {
        w->failures = 0;
        w->created = 1;
        /* From "now": everything after the creation revision is to come. */
        if (w->next_rev == 0 && d.r.revision > w->last_rev) {
            w->last_rev = d.r.revision;
            w->next_rev = d.r.revision + 1;
        }
    } else if (d.nevents == 0) {
        /* Progress: every event up to the header's revision was sent. */
        if (d.r.revision > w->last_rev) {
            w->last_rev = d.r.revision;
            w->next_rev = d.r.revision + 1;
        }
    } else {
        /* Revisions come whole in one message: what is at or below last_rev
         * was delivered before a reconnect. */
        size_t skip = 0;
        while (skip < d.nevents && d.events[skip].kv.mod_revision <= w->last_rev)
            skip++;
        if (skip < d.nevents) {
            int64_t top = d.events[d.nevents - 1].kv.mod_revision;
            w->last_rev = top;
            w->next_rev = top + 1;
            w->in_cb = 1;
            w->cb(d.events + skip, d.nevents - skip, d.r.revision, 0, w->arg);
            w->in_cb = 0;
        }
    }
    pt_etcd_dec_free(&d);
    return w->dead ? 1 : rc;
}

static void watch_chunk(struct evhttp_request *hreq, void *arg)
{
    pt_etcd_watch *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(hreq);
    char piece[4096];
    /* evhttp drains what is left once this returns; each copy is bounded. */
    for (size_t left = evbuffer_get_length(in); left > 0 && !w->dead && w->hreq;) {
        int n = evbuffer_remove(in, piece, sizeof piece < left ? sizeof piece : left);
        if (n <= 0)
            break;
        left -= (size_t)n;
        int rc = pt_etcd_stream_feed(&w->stream, piece, (size_t)n, watch_msg, w);
        if (rc < 0) {
            watch_end(w, PT_ETCD_EPROTO);
        } else if (rc == 2) {
            w->hreq = NULL; /* ignore the rest; the kick drops this connection */
            watch_broken(w, 1);
        }
    }
}

static void watch_done(struct evhttp_request *hreq, void *arg)
{
    pt_etcd_watch *w = arg;
    if (!w->hreq)
        return;
    w->hreq = NULL;
    if (w->dead)
        return;
    /* The stream ended: a member stopping, an idle timeout, or a refusal.
     * A stream its member had accepted reconnects to the same member first
     * (an idle watch is no sign of a dead one); one that never got going
     * moves to the next endpoint. */
    (void)hreq;
    watch_broken(w, !w->created);
}

static int watch_connect(pt_etcd_watch *w)
{
    pt_etcd *e = w->e;
    pt_etcd_stream_free(&w->stream);
    pt_etcd_stream_init(&w->stream, PT_ETCD_MSG_MAX);
    if (w->conn && w->ep != e->cur) {
        evhttp_connection_free(w->conn);
        w->conn = NULL;
    }
    w->ep = e->cur;
    w->created = 0;
    if (!w->conn && !(w->conn = new_conn(e, w->ep, 0)))
        return -1;
    pt_etcd_bytes key = {w->key, w->key_len}, end = {w->range_end, w->range_end_len};
    char *body = pt_etcd_enc_watch(key, end, w->next_rev);
    struct evhttp_request *h = body ? evhttp_request_new(watch_done, w) : NULL;
    if (!h) {
        free(body);
        return -1;
    }
    evhttp_request_set_chunked_cb(h, watch_chunk);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(h);
    evhttp_add_header(hdr, "Host", e->ep[w->ep].host);
    evhttp_add_header(hdr, "Content-Type", "application/json");
    int rc = evbuffer_add(evhttp_request_get_output_buffer(h), body, strlen(body));
    free(body);
    if (rc != 0) {
        evhttp_request_free(h);
        return -1;
    }
    if (evhttp_make_request(w->conn, h, EVHTTP_REQ_POST, "/v3/watch") != 0)
        return -1;
    w->hreq = h;
    return 0;
}

static void watch_unlink_free(pt_etcd_watch *w)
{
    pt_etcd *e = w->e;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->conn)
        evhttp_connection_free(w->conn);
    event_free(w->kick);
    pt_etcd_stream_free(&w->stream);
    free(w->key);
    free(w->range_end);
    free(w);
}

static void watch_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pt_etcd_watch *w = arg;
    if (w->dead) {
        int err = w->dead;
        if (err > 0)
            w->cb(NULL, 0, w->last_rev, err, w->arg);
        watch_unlink_free(w);
        return;
    }
    /* Drop the old stream (its connection may be half-read) and start anew. */
    if (w->conn) {
        evhttp_connection_free(w->conn);
        w->conn = NULL;
        w->hreq = NULL;
    }
    if (watch_connect(w) != 0)
        watch_broken(w, 0);
}

pt_etcd_watch *pt_etcd_watch_start(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes range_end,
                                   int64_t start_revision, pt_etcd_watch_cb cb, void *arg)
{
    pt_etcd_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->e = e;
    w->cb = cb;
    w->arg = arg;
    w->next_rev = start_revision;
    w->last_rev = start_revision > 0 ? start_revision - 1 : 0;
    w->key = malloc(key.len + 1);
    w->range_end = malloc(range_end.len + 1);
    w->kick = event_new(e->base, -1, 0, watch_kick, w);
    if (!w->key || !w->range_end || !w->kick) {
        if (w->kick)
            event_free(w->kick);
        free(w->key);
        free(w->range_end);
        free(w);
        return NULL;
    }
    memcpy(w->key, key.p, key.len);
    memcpy(w->range_end, range_end.p, range_end.len);
    w->key_len = key.len;
    w->range_end_len = range_end.len;
    pt_etcd_stream_init(&w->stream, PT_ETCD_MSG_MAX);
    w->next = e->watches;
    if (e->watches)
        e->watches->prev = w;
    e->watches = w;
    if (watch_connect(w) != 0)
        watch_broken(w, 0);
    return w;
}

void pt_etcd_watch_cancel(pt_etcd_watch *w)
{
    if (w)
        watch_end(w, -1);
}

/* ---- the client ----------------------------------------------------- */

static struct timeval seconds_tv(double s, double dflt)
{
    if (s <= 0)
        s = dflt;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

pt_etcd *pt_etcd_new(struct event_base *base, const char *endpoints, const pt_etcd_options *o,
                     char *err, size_t errlen)
{
    pt_etcd *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "etcd client: out of memory");
        return NULL;
    }
    e->base = base;
    e->req_tv = seconds_tv(o ? o->request_timeout : 0, 2.0);
    if (parse_endpoints(e, endpoints, err, errlen) != 0) {
        free(e);
        return NULL;
    }
    /* Host names resolve on the loop too (libevent's getaddrinfo would block). */
    e->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!e->dns)
        e->dns = evdns_base_new(base, 0);
    if (!e->dns) {
        snprintf(err, errlen, "etcd client: cannot set up name resolution");
        free(e);
        return NULL;
    }
    return e;
}

void pt_etcd_free(pt_etcd *e)
{
    if (!e)
        return;
    while (e->watches) {
        e->watches->dead = -1;
        watch_unlink_free(e->watches);
    }
    /* evhttp frees its queued requests without calling back: answer them here. */
    for (int i = 0; i < e->nep; i++)
        for (int k = 0; k < ETCD_CONNS; k++)
            if (e->ep[i].conn[k])
                evhttp_connection_free(e->ep[i].conn[k]);
    while (e->reqs)
        req_fail(e->reqs, PT_ETCD_ECANCELED, "the etcd client was closed");
    evdns_base_free(e->dns, 0);
    free(e);
}
