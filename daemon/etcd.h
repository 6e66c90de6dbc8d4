/*
 * etcd.h - a non-blocking etcd v3 client for the daemon's loop.
 *
 * It speaks etcd's gRPC gateway: JSON over HTTP/1.1 (libevent's evhttp),
 * keys and values base64, 64-bit numbers as decimal strings. Every call
 * returns at once; its answer comes later as a callback on the loop. A watch
 * is one long chunked response read as it arrives, each message held in a
 * buffer of at most PT_ETCD_MSG_MAX bytes.
 *
 * TLS: https:// endpoints are verified as etcdctl verifies them: the
 * server's certificate against the CA file given (else the system's CAs),
 * and the endpoint's host name or IP address against the certificate's
 * subject alternative names; a client certificate is sent when given (etcd
 * run with --client-cert-auth). A connection that fails there answers its
 * requests with a message saying which check failed and what to pass.
 * Writes to a connection the peer closed raise SIGPIPE: the caller ignores
 * it, as for any socket.
 *
 * Failover: the client talks to one endpoint of its list at a time and moves
 * to the next when a connection to it fails. A request that cannot have had
 * an effect twice (range, lease keepalive, revoke, a watch that resumes from
 * its next revision) is sent again there; a put, txn or lease grant whose
 * answer was lost is reported as PT_ETCD_EUNAVAIL, because it may or may
 * not have been applied: the caller's next txn compares and finds out.
 *
 * The codec (pt_etcd_b64_*, pt_etcd_enc_*, pt_etcd_dec_*, pt_etcd_stream)
 * does no I/O, for unit tests without etcd.
 */
#ifndef PT_ETCD_H
#define PT_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* One watch message (or one unary response) at most: etcd's own request
 * limit is 1.5 MiB, a watch response batches events up to a few MiB. */
#define PT_ETCD_MSG_MAX   (4u << 20)
#define PT_ETCD_ENDPOINTS 8

enum {
    PT_ETCD_OK = 0,
    PT_ETCD_EUNAVAIL = 1,   /* no endpoint answered; effect unknown for put/txn/grant */
    PT_ETCD_EPROTO = 2,     /* an answer that is not what the gateway sends */
    PT_ETCD_ESERVER = 3,    /* etcd answered with an error (message says which) */
    PT_ETCD_ECOMPACTED = 4, /* a watch's start revision was compacted away */
    PT_ETCD_ENOMEM = 5,
    PT_ETCD_ECANCELED = 6, /* the client was freed with the request pending */
};

/* A byte string (keys and values may hold any byte). */
typedef struct pt_etcd_bytes {
    const char *p;
    size_t len;
} pt_etcd_bytes;

typedef struct pt_etcd_kv {
    pt_etcd_bytes key, value;
    int64_t create_revision, mod_revision, version, lease;
} pt_etcd_kv;

typedef enum { PT_ETCD_PUT = 0, PT_ETCD_DELETE = 1 } pt_etcd_event_type;

typedef struct pt_etcd_event {
    pt_etcd_event_type type;
    pt_etcd_kv kv; /* for a delete: key and mod_revision (the delete's) */
} pt_etcd_event;

/* Compare of a txn: target of key against value with result. */
typedef enum {
    PT_ETCD_CMP_VERSION,
    PT_ETCD_CMP_CREATE,
    PT_ETCD_CMP_MOD,
    PT_ETCD_CMP_VALUE,
    PT_ETCD_CMP_LEASE,
} pt_etcd_cmp_target;
typedef enum { PT_ETCD_EQUAL, PT_ETCD_GREATER, PT_ETCD_LESS, PT_ETCD_NOT_EQUAL } pt_etcd_cmp_result;

typedef struct pt_etcd_cmp {
    pt_etcd_cmp_target target;
    pt_etcd_cmp_result result;
    pt_etcd_bytes key;
    int64_t number;      /* version, create/mod revision or lease */
    pt_etcd_bytes value; /* PT_ETCD_CMP_VALUE */
} pt_etcd_cmp;

typedef enum { PT_ETCD_OP_RANGE, PT_ETCD_OP_PUT, PT_ETCD_OP_DELETE } pt_etcd_op_kind;

typedef struct pt_etcd_op {
    pt_etcd_op_kind kind;
    pt_etcd_bytes key;
    pt_etcd_bytes range_end; /* len 0: the key alone */
    pt_etcd_bytes value;     /* put */
    int64_t lease;           /* put; 0: none */
    int64_t limit;           /* range; 0: all */
    int keys_only;           /* range: keys and revisions, no values */
} pt_etcd_op;

typedef struct pt_etcd_txn_req {
    const pt_etcd_cmp *cmp;
    size_t ncmp;
    const pt_etcd_op *success;
    size_t nsuccess;
    const pt_etcd_op *failure;
    size_t nfailure;
} pt_etcd_txn_req;

/* What one response says. kvs are those of a range, or of the ranges of a
 * txn's chosen branch in order; all pointers live until the callback returns. */
typedef struct pt_etcd_result {
    int err;             /* PT_ETCD_* */
    const char *message; /* for an error: what and where, for the log */
    int64_t revision;    /* header.revision */
    int succeeded;       /* txn: the compares held */
    pt_etcd_kv *kvs;
    size_t nkvs;
    int64_t count;    /* range: keys in range */
    int64_t deleted;  /* delete ops */
    int64_t lease_id; /* grant, keepalive */
    int64_t ttl;      /* grant, keepalive: seconds; keepalive ttl 0: lease gone */
    char msgbuf[512];
} pt_etcd_result;

/* ---- codec ---------------------------------------------------------- */

/* Standard base64 with padding; out needs pt_etcd_b64_len(n) + 1 bytes. */
size_t pt_etcd_b64_len(size_t n);
size_t pt_etcd_b64_encode(const void *in, size_t n, char *out);
/* Decodes into out (at least n*3/4 bytes); its length, or -1 when invalid. */
long pt_etcd_b64_decode(const char *in, size_t n, void *out);

/* Request bodies as malloc'd NUL-terminated JSON, NULL when out of memory. */
char *pt_etcd_enc_range(pt_etcd_bytes key, pt_etcd_bytes range_end, int64_t limit);
char *pt_etcd_enc_put(pt_etcd_bytes key, pt_etcd_bytes value, int64_t lease);
char *pt_etcd_enc_txn(const pt_etcd_txn_req *t);
char *pt_etcd_enc_lease_grant(int64_t ttl);
char *pt_etcd_enc_lease_id(int64_t id);
char *pt_etcd_enc_compact(int64_t revision);
char *pt_etcd_enc_watch(pt_etcd_bytes key, pt_etcd_bytes range_end, int64_t start_revision);

/* A decoded response or watch message; pt_etcd_dec_free releases what it
 * holds (kvs and their bytes). */
typedef struct pt_etcd_decoded {
    pt_etcd_result r;
    /* watch messages */
    int created, canceled;
    int64_t watch_id, compact_revision;
    pt_etcd_event *events;
    size_t nevents;
    void *mem; /* owns every byte string above */
} pt_etcd_decoded;

typedef enum {
    PT_ETCD_DEC_RANGE,
    PT_ETCD_DEC_PUT,
    PT_ETCD_DEC_TXN,
    PT_ETCD_DEC_LEASE,
    PT_ETCD_DEC_WATCH,
} pt_etcd_dec_kind;

/* Decodes json (len bytes) of an HTTP status into d; d->r.err says how. */
void pt_etcd_decode(pt_etcd_dec_kind kind, int status, const char *json, size_t len,
                    pt_etcd_decoded *d);
void pt_etcd_dec_free(pt_etcd_decoded *d);

/* Splits a watch's chunked body, fed in any pieces, into its messages (one
 * JSON object a line). Holds at most max bytes of an unfinished message. */
typedef struct pt_etcd_stream {
    char *buf;
    size_t len, cap, max;
} pt_etcd_stream;

void pt_etcd_stream_init(pt_etcd_stream *s, size_t max);
void pt_etcd_stream_free(pt_etcd_stream *s);
/* Feeds n bytes; calls msg for each complete message. 0, or -1 when a
 * message outgrows max or memory runs out (the stream is then unusable),
 * or the first nonzero msg return. */
int pt_etcd_stream_feed(pt_etcd_stream *s, const char *p, size_t n,
                        int (*msg)(const char *json, size_t len, void *arg), void *arg);

/* ---- client ------------------------------------------------------- */

typedef struct pt_etcd pt_etcd;
typedef struct pt_etcd_watch pt_etcd_watch;

typedef void (*pt_etcd_cb)(const pt_etcd_result *r, void *arg);
/* Events of one revision or more, in revision order, none twice. err is
 * nonzero only when the watch ends (ECOMPACTED, ENOMEM, EPROTO); the watch
 * is then freed by the client after the call. */
typedef void (*pt_etcd_watch_cb)(const pt_etcd_event *ev, size_t n, int64_t revision, int err,
                                 void *arg);

/* TLS for https:// endpoints, as etcdctl's --cacert, --cert and --key
 * (the daemon's --etcd-cacert, --etcd-cert, --etcd-key): PEM files, read
 * when the client is made. */
typedef struct pt_etcd_tls {
    const char *cacert; /* the CA(s) that sign etcd's certificates; NULL: the system's */
    const char *cert;   /* a client certificate (chain), with key; NULL: none */
    const char *key;    /* its private key, unencrypted */
} pt_etcd_tls;

typedef struct pt_etcd_options {
    /* Seconds a unary request (connecting included) may take before it
     * fails over; 0: 2 s. */
    double request_timeout;
    /* For https:// endpoints; NULL or no file named: the system's CAs and
     * no client certificate. Naming a file with http:// endpoints is
     * refused (it would be ignored, and the traffic unencrypted). */
    const pt_etcd_tls *tls;
} pt_etcd_options;

/* endpoints: "http://host:port[,...]" or "https://host:port[,...]", not
 * both. NULL with the reason in err (an endpoint, or a TLS file that cannot
 * be used, named). */
pt_etcd *pt_etcd_new(struct event_base *base, const char *endpoints, const pt_etcd_options *o,
                     char *err, size_t errlen);
/* Pending requests are answered with PT_ETCD_ECANCELED; watches end
 * silently. Not from inside one of the client's own callbacks. */
void pt_etcd_free(pt_etcd *e);
/* Index in the list of the endpoint now in use. */
int pt_etcd_endpoint(const pt_etcd *e);

/* Each returns 0, or -1 when out of memory (no callback then). */
int pt_etcd_range(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes range_end, pt_etcd_cb cb, void *arg);
int pt_etcd_put(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes value, int64_t lease, pt_etcd_cb cb,
                void *arg);
int pt_etcd_txn(pt_etcd *e, const pt_etcd_txn_req *t, pt_etcd_cb cb, void *arg);
int pt_etcd_lease_grant(pt_etcd *e, int64_t ttl, pt_etcd_cb cb, void *arg);
int pt_etcd_lease_keepalive(pt_etcd *e, int64_t id, pt_etcd_cb cb, void *arg);
int pt_etcd_lease_revoke(pt_etcd *e, int64_t id, pt_etcd_cb cb, void *arg);
/* Compacts etcd's history up to revision: reads and watches from before it
 * fail (PT_ETCD_ECOMPACTED for a watch) from then on. Sent again on
 * another member if need be (a second compaction to the same revision only
 * fails, ESERVER "required revision has been compacted"). */
int pt_etcd_compact(pt_etcd *e, int64_t revision, pt_etcd_cb cb, void *arg);

/* Watches [key, range_end) from start_revision (0: now). NULL when out of
 * memory. */
pt_etcd_watch *pt_etcd_watch_start(pt_etcd *e, pt_etcd_bytes key, pt_etcd_bytes range_end,
                                   int64_t start_revision, pt_etcd_watch_cb cb, void *arg);
void pt_etcd_watch_cancel(pt_etcd_watch *w);

static inline pt_etcd_bytes pt_etcd_str(const char *s)
{
    pt_etcd_bytes b = {s, 0};
    while (s && s[b.len])
        b.len++;
    return b;
}

#endif
