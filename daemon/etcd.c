/*
 * etcd.c - the non-blocking etcd v3 client over the gRPC gateway (see
 * etcd.h). Unary requests share a few keep-alive connections per endpoint
 * (HTTP/1.1 carries one request at a time on a connection); each watch has a
 * connection of its own, since its response never ends.
 *
 * evhttp must not see a connection freed inside one of its own callbacks,
 * so every teardown (a watch's reconnect or end) happens from a timer event
 * of the watch, one loop iteration later.
 *
 * https:// endpoints: each evhttp connection runs over a bufferevent_openssl
 * with an SSL of its own from the client's one SSL_CTX. evhttp reconnects a
 * connection on the same bufferevent, and libevent then clears the SSL
 * (SSL_clear) and handshakes again: SNI, the name or address to check and
 * the verification callback are the SSL's and stay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
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
    char addr[256]; /* host without an IPv6 literal's brackets, for the checks */
    int is_ip;      /* checked against the certificate's IP SANs, sent no SNI */
    int port;
    struct evhttp_connection *conn[ETCD_CONNS];
    unsigned inflight[ETCD_CONNS];
    /* The first certificate check that failed on a connection here since
     * the last failure was reported (X509_V_OK: none); kept here because
     * evhttp clears the SSL before it calls back. */
    long verify_err;
    /* A handshake here met etcd's request for a client certificate (it
     * runs with --client-cert-auth); this member answered a request. With
     * TLS 1.3 etcd checks the client's certificate after the client's side
     * of the handshake is done, and a refusal can reach the client as a
     * reset its request's write meets, before it reads etcd's alert: a
     * member that asked and never answered has likely refused. */
    int cert_asked, answered;
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
    char tls_why[400]; /* the last TLS failure on the way, "": none */
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
    SSL_CTX *ssl_ctx;            /* https:// endpoints, else NULL */
    char cacert[512], cert[512]; /* as given, for messages; "": none */
    etcd_endpoint ep[PT_ETCD_ENDPOINTS];
    int nep, cur;
    struct timeval req_tv;
    etcd_req *reqs;
    pt_etcd_watch *watches;
};

/* ---- endpoints ------------------------------------------------------ */

/* The endpoints, all http:// or all https:// (*tls set for https). */
static int parse_endpoints(pt_etcd *e, const char *list, int *tls, char *err, size_t errlen)
{
    char buf[4096], first[300] = "";
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
        int https = scheme && strcmp(scheme, "https") == 0;
        if (!u || !scheme || (!https && strcmp(scheme, "http") != 0) || !host || !*host ||
            strlen(host) >= sizeof e->ep[0].host) {
            snprintf(err, errlen,
                     "etcd endpoint '%s': give it as http://HOST:PORT or https://HOST:PORT", s);
            evhttp_uri_free(u);
            return -1;
        }
        /* One scheme for all: a cluster whose members differ in TLS is a
         * mistake, and a failover must not fall back to plain text. */
        if (e->nep == 0) {
            *tls = https;
            snprintf(first, sizeof first, "%s", s);
        } else if (https != *tls) {
            snprintf(err, errlen,
                     "etcd endpoints '%s' and '%s': http and https mixed; give every member with "
                     "the scheme its client URL has (https:// when etcd runs with --cert-file)",
                     first, s);
            evhttp_uri_free(u);
            return -1;
        }
        etcd_endpoint *ep = &e->ep[e->nep++];
        snprintf(ep->host, sizeof ep->host, "%s", host);
        ep->port = port > 0 ? port : 2379;
        /* An IPv6 literal comes in brackets; the checks want it bare. */
        size_t hl = strlen(host);
        if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
            snprintf(ep->addr, sizeof ep->addr, "%.*s", (int)(hl - 2), host + 1);
        else
            snprintf(ep->addr, sizeof ep->addr, "%s", host);
        unsigned char bin[16];
        ep->is_ip =
            inet_pton(AF_INET, ep->addr, bin) == 1 || inet_pton(AF_INET6, ep->addr, bin) == 1;
        ep->verify_err = X509_V_OK;
        evhttp_uri_free(u);
    }
    if (e->nep == 0) {
        snprintf(err, errlen, "etcd endpoints: none given (http://HOST:PORT[,...])");
        return -1;
    }
    return 0;
}

/* ---- TLS ------------------------------------------------------------ */

/* OpenSSL's reason for the error at the head of its queue, or dflt. */
static const char *ossl_reason(const char *dflt)
{
    unsigned long x = ERR_peek_last_error();
    const char *r = x ? ERR_reason_error_string(x) : NULL;
    return r ? r : dflt;
}

/* Records the first failed check of a handshake for the message (evhttp
 * clears the SSL before the request hears of the failure). */
static int tls_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    etcd_endpoint *ep = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ok && ep && ep->verify_err == X509_V_OK)
        ep->verify_err = X509_STORE_CTX_get_error(x);
    return ok;
}

/* bufferevent_openssl writes each chain of evhttp's output (the headers,
 * the body) as a record of its own, in a send each: with Nagle's algorithm
 * the body waits for the ACK of the headers, which the member delays (40
 * ms on Linux), for every request. A plain connection sends both in one
 * writev. The socket is evhttp's, made as it connects; its handshake's
 * start is the first moment this code sees it, and comes before any data. */
static void tls_info_cb(const SSL *ssl, int where, int ret)
{
    etcd_endpoint *ep = SSL_get_app_data(ssl);
    int fd, one = 1;

    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) && (fd = SSL_get_fd(ssl)) >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* What a refusal of the client certificate that comes as a reset
     * needs to be told (etcd_endpoint). */
    if ((where & SSL_CB_CONNECT_LOOP) && SSL_get_state(ssl) == TLS_ST_CR_CERT_REQ && ep)
        ep->cert_asked = 1;
}

/* An encrypted key would have OpenSSL ask for a passphrase on the
 * terminal, which a daemon has not: refuse it instead. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf, (void)size, (void)rwflag, (void)arg;
    return 0;
}

/* 0 when path can be opened for reading, else -1 with the reason. */
static int tls_readable(const char *path, const char *option, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return 0;
    }
    snprintf(err, errlen, "etcd TLS: cannot read %s %s: %s; give a file the daemon's user can read",
             option, path, strerror(errno));
    return -1;
}

static int tls_key_mismatch(unsigned long x)
{
    return ERR_GET_LIB(x) == ERR_LIB_X509 && (ERR_GET_REASON(x) == X509_R_KEY_VALUES_MISMATCH ||
                                              ERR_GET_REASON(x) == X509_R_KEY_TYPE_MISMATCH);
}

/* The client's SSL_CTX: TLS 1.2 or later, the server verified against
 * cacert (else the system's CAs), the client certificate when given. */
static SSL_CTX *tls_ctx_new(const pt_etcd_tls *t, char *err, size_t errlen)
{
    const char *cacert = t && t->cacert && *t->cacert ? t->cacert : NULL;
    const char *cert = t && t->cert && *t->cert ? t->cert : NULL;
    const char *key = t && t->key && *t->key ? t->key : NULL;
    SSL_CTX *ctx;

    ERR_clear_error();
    if ((cert == NULL) != (key == NULL)) {
        snprintf(err, errlen,
                 "etcd TLS: --etcd-%s given without --etcd-%s: a client certificate needs its key "
                 "and a key its certificate",
                 cert ? "cert" : "key", cert ? "key" : "cert");
        return NULL;
    }
    if ((cacert && tls_readable(cacert, "--etcd-cacert", err, errlen) < 0) ||
        (cert && tls_readable(cert, "--etcd-cert", err, errlen) < 0) ||
        (key && tls_readable(key, "--etcd-key", err, errlen) < 0))
        return NULL;
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        snprintf(err, errlen, "etcd TLS: cannot set up OpenSSL: %s", ossl_reason("out of memory"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
    SSL_CTX_set_info_callback(ctx, tls_info_cb);
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    if (cacert && SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1) {
        snprintf(err, errlen,
                 "etcd TLS: --etcd-cacert %s: %s; give the PEM file of the CA that signed etcd's "
                 "certificate",
                 cacert, ossl_reason("no certificate in it"));
        goto fail;
    }
    if (!cacert && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen,
                 "etcd TLS: cannot load the system's CA certificates (%s); give the CA that signed "
                 "etcd's certificate with --etcd-cacert",
                 ossl_reason("unknown error"));
        goto fail;
    }
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "etcd TLS: --etcd-cert %s: %s; give the client certificate in PEM",
                 cert, ossl_reason("no certificate in it"));
        goto fail;
    }
    /* OpenSSL checks the key against the certificate as it loads it: a
     * key that does not match is left to the check below, which says so. */
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
        !tls_key_mismatch(ERR_peek_last_error())) {
        snprintf(err, errlen,
                 "etcd TLS: --etcd-key %s: %s; give the client certificate's private key in PEM, "
                 "unencrypted",
                 key, ossl_reason("no key in it"));
        goto fail;
    }
    if (key && SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen,
                 "etcd TLS: --etcd-key %s is not the key of --etcd-cert %s; give the key the "
                 "certificate was issued for",
                 key, cert);
        goto fail;
    }
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* A bufferevent that handshakes with ep once evhttp has connected it; NULL
 * when out of memory (libevent frees the SSL on its failure paths). */
static struct bufferevent *tls_bev(pt_etcd *e, etcd_endpoint *ep)
{
    SSL *ssl = SSL_new(e->ssl_ctx);
    if (!ssl)
        return NULL;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int ok;
    if (ep->is_ip) {
        /* RFC 6066: no SNI for an address. */
        ok = X509_VERIFY_PARAM_set1_ip_asc(vp, ep->addr) == 1;
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(vp, ep->addr, 0) == 1 &&
             SSL_set_tlsext_host_name(ssl, ep->addr) == 1;
    }
    if (!ok || SSL_set_app_data(ssl, ep) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(e->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    /* etcd (Go) may close a connection without close_notify: an end, not
     * an attack on a response whose length HTTP gives. */
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Forgets the TLS errors of a connection before it carries a request, so
 * that a failure reports its own. */
static void tls_errors_drop(struct evhttp_connection *c)
{
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    while (bev && bufferevent_get_openssl_error(bev) != 0)
        ;
}

/* Messages that name files and hosts: cut to the buffer if need be. */
static void say(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* Why a request on c to endpoint i failed at the TLS layer, with what to
 * do, into out ("https://HOST:PORT: why: remedy"); 0 when it was no TLS
 * failure (refused, timed out, closed). */
static int tls_why(pt_etcd *e, int i, struct evhttp_connection *c, char *out, size_t len)
{
    etcd_endpoint *ep = &e->ep[i];
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    unsigned long x, err = 0;
    long verify = ep->verify_err;

    if (!e->ssl_ctx)
        return 0;
    ep->verify_err = X509_V_OK;
    /* libevent keeps a connection's OpenSSL errors newest first; beside
     * them it keeps SSL_get_error's codes, which name no library. The
     * oldest error is the cause. */
    while (bev && (x = bufferevent_get_openssl_error(bev)) != 0)
        if (ERR_GET_LIB(x) != 0)
            err = x;
    char at[300];
    snprintf(at, sizeof at, "https://%s:%d", ep->host, ep->port);
    if (!err && verify == X509_V_OK) {
        /* No reason read: a member that asked for a client certificate and
         * never answered (etcd_endpoint). */
        if (!ep->cert_asked || ep->answered)
            return 0;
        if (!e->cert[0])
            say(out, len,
                "%s: etcd asks for a client certificate (it runs with --client-cert-auth) and "
                "closed the connection; pass one with --etcd-cert and --etcd-key",
                at);
        else
            say(out, len,
                "%s: etcd asked for a client certificate and closed the connection before any "
                "answer: it may have refused the client certificate %s "
                "(--etcd-cert); have it signed by a CA in etcd's --trusted-ca-file",
                at, e->cert);
        return 1;
    }
    const char *reason = err ? ERR_reason_error_string(err) : NULL;
    int r = err && ERR_GET_LIB(err) == ERR_LIB_SSL ? ERR_GET_REASON(err) : 0;
    if (verify != X509_V_OK || r == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        const char *v = X509_verify_cert_error_string(verify);
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
            say(out, len,
                "%s: certificate verify failed (%s): etcd's certificate does not name %s; "
                "give the endpoint as a name or address in its subject alternative names, "
                "or have it issued for %s",
                at, v, ep->addr, ep->addr);
        else if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID)
            say(out, len,
                "%s: certificate verify failed (%s): renew etcd's certificate, or check this "
                "host's clock",
                at, v);
        else if (e->cacert[0])
            say(out, len,
                "%s: certificate verify failed (%s): %s (--etcd-cacert) did not sign etcd's "
                "certificate; pass the CA that did",
                at, v, e->cacert);
        else
            say(out, len,
                "%s: certificate verify failed (%s): pass the CA that signed etcd's "
                "certificate with --etcd-cacert",
                at, v);
        return 1;
    }
    switch (r) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        if (!e->cert[0])
            say(out, len,
                "%s: %s: etcd asks for a client certificate (it runs with "
                "--client-cert-auth); pass one with --etcd-cert and --etcd-key",
                at, reason);
        else
            say(out, len,
                "%s: %s: etcd refused the client certificate %s (--etcd-cert); have it "
                "signed by a CA in etcd's --trusted-ca-file",
                at, reason, e->cert);
        return 1;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
        say(out, len,
            "%s: %s: the member does not speak TLS on this port; give it as http:// if its "
            "client URL is http://",
            at, reason);
        return 1;
    default:
        say(out, len,
            "%s: TLS failed (%s); check the member's TLS (its --cert-file, --key-file and "
            "--trusted-ca-file) against --etcd-cacert, --etcd-cert and --etcd-key",
            at, reason ? reason : "unknown error");
        return 1;
    }
}

static struct evhttp_connection *new_conn(pt_etcd *e, int ep, int unary)
{
    etcd_endpoint *p = &e->ep[ep];
    struct evhttp_connection *c;
    if (e->ssl_ctx) {
        struct bufferevent *bev = tls_bev(e, p);
        if (!bev)
            return NULL;
        c = evhttp_connection_base_bufferevent_new(e->base, e->dns, bev, p->host,
                                                   (unsigned short)p->port);
        if (!c) {
            bufferevent_free(bev);
            return NULL;
        }
    } else {
        c = evhttp_connection_base_new(e->base, e->dns, p->host, (unsigned short)p->port);
        if (!c)
            return NULL;
    }
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

/* Answers r with err: why, or the TLS failure met on the way, which says
 * more than "no endpoint answered". */
static void req_fail(etcd_req *r, int err, const char *why)
{
    pt_etcd_result res;
    memset(&res, 0, sizeof res);
    res.err = err;
    if (r->tls_why[0])
        snprintf(res.msgbuf, sizeof res.msgbuf, "etcd %s at %s", r->path, r->tls_why);
    else
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
    if (status != 0)
        e->ep[r->ep].answered = 1;
    if (status == 0) {
        tls_why(e, r->ep, e->ep[r->ep].conn[r->slot], r->tls_why, sizeof r->tls_why);
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
    tls_errors_drop(ep->conn[slot]);
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
    const pt_etcd_tls *t = o ? o->tls : NULL;
    int tls = 0;
    if (!e) {
        snprintf(err, errlen, "etcd client: out of memory");
        return NULL;
    }
    e->base = base;
    e->req_tv = seconds_tv(o ? o->request_timeout : 0, 2.0);
    if (parse_endpoints(e, endpoints, &tls, err, errlen) != 0) {
        free(e);
        return NULL;
    }
    if (t && !tls && ((t->cacert && *t->cacert) || (t->cert && *t->cert) || (t->key && *t->key))) {
        snprintf(err, errlen,
                 "etcd endpoints '%s' are http://, and TLS files were given (--etcd-cacert, "
                 "--etcd-cert, --etcd-key): give the endpoints as https:// or drop the files",
                 endpoints);
        free(e);
        return NULL;
    }
    if (tls) {
        if (!(e->ssl_ctx = tls_ctx_new(t, err, errlen))) {
            free(e);
            return NULL;
        }
        snprintf(e->cacert, sizeof e->cacert, "%s", t && t->cacert ? t->cacert : "");
        snprintf(e->cert, sizeof e->cert, "%s", t && t->cert ? t->cert : "");
    }
    /* Host names resolve on the loop too (libevent's getaddrinfo would block). */
    e->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!e->dns)
        e->dns = evdns_base_new(base, 0);
    if (!e->dns) {
        snprintf(err, errlen, "etcd client: cannot set up name resolution");
        SSL_CTX_free(e->ssl_ctx);
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
    /* Each connection's SSL held a reference; they are gone with them. */
    SSL_CTX_free(e->ssl_ctx);
    free(e);
}
