/*
 * cluster_log.c - the cluster's log over etcd (cluster_log.h).
 *
 * Three independent parts share the loop: the membership (lease, host key,
 * keepalives, the lease-lost deadline), the appends (one txn in flight per
 * host, the entries queued behind it go in the next txn together) and the
 * watch (the only source of deliveries, this host's own entries included,
 * so every host sees one order).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cluster_log.h"
#include "etcd.h"

#define PREFIX_MAX 200
#define KEY_MAX    (PREFIX_MAX + PT_CLOG_HOST_MAX + 40)
/* One txn: etcd accepts 128 operations and 1.5 MiB per request by default. */
#define BATCH_MAX       64
#define BATCH_BYTES_MAX (1u << 20)
/* Keepalives in flight at once: a member that hangs holds one each ttl/3
 * until its timeout moves the client on; the next ticks go elsewhere. */
#define KA_INFLIGHT_MAX 4
#define BACKOFF_MIN_MS  50
#define BACKOFF_MAX_MS  1000

typedef struct clog_ent {
    struct clog_ent *next;
    uint64_t seq; /* 0 until it goes into a txn */
    void *cookie;
    int committed; /* the watch delivered it */
    size_t len;
    uint8_t bytes[];
} clog_ent;

/* The membership's steps; each failed step is retried from m_timer. */
typedef enum {
    M_IDLE,
    M_READ,   /* reading this host's sequence key */
    M_REVOKE, /* ending the lease given up on */
    M_GRANT,
    M_CLAIM, /* creating the host key under the new lease */
    M_MEMBER,
    M_STOPPED,
} mstate;

typedef struct ka_req {
    pt_clog *c;
    int64_t lease;
    double sent;
} ka_req;

struct pt_clog {
    struct event_base *base;
    pt_etcd *etcd;
    char *endpoints;    /* for pt_clog_leave's own client */
    pt_etcd_options eo; /* likewise */
    pt_clog_callbacks cb;
    void *ctx;
    char prefix[PREFIX_MAX + 2];
    char w_start[PREFIX_MAX + 8], w_end[PREFIX_MAX + 8]; /* the watch's range */
    size_t prefix_len;
    char host[PT_CLOG_HOST_MAX + 1];
    char desc[256];
    char k_host[KEY_MAX], k_seq[KEY_MAX], k_snap[KEY_MAX];
    int ttl;
    double margin;
    int cut;  /* tests: no membership traffic */
    int lose; /* tests: append answers to drop */
    pt_clog_stats stats;
    int closing;

    /* membership */
    mstate m;
    int joined_once;
    int64_t lease, old_lease, granted_ttl;
    int64_t claim_rev; /* revision that created our host key */
    double grant_sent;
    double last_ok_sent; /* send time of the last grant or keepalive that succeeded */
    int ka_inflight, ka_failing;
    int m_failures;
    struct event *m_timer, *ka_timer, *deadline;

    /* watch */
    int64_t start_rev;
    pt_etcd_watch *watch;
    int64_t last_rev;

    /* appends */
    clog_ent *head, *tail, *unsent;
    size_t nent;
    size_t uncommitted;    /* appended here, not yet delivered by the watch */
    uint64_t resolved_seq; /* the seq key's value as last known */
    int64_t seq_mod;       /* its mod revision then (0: no key yet) */
    uint64_t start_seq;    /* resolved_seq at start: older entries are not ours to commit */
    int seq_known;
    int fly; /* a txn in flight (or waiting to be sent again) */
    clog_ent *fly_first;
    size_t fly_n;
    uint64_t fly_lo, fly_hi;
    int a_failures;
    struct event *a_timer;
    /* a txn's keys, built per send (pt_etcd_txn copies them at once) */
    char bkeys[BATCH_MAX][KEY_MAX];
    char seqval[24];
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timeval tv_of(double s)
{
    if (s < 0)
        s = 0;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

static int backoff_ms(int failures)
{
    int ms = BACKOFF_MIN_MS << (failures < 5 ? failures : 5);
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static void say(pt_clog *c, int fatal, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(pt_clog *c, int fatal, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->cb.on_error)
        c->cb.on_error(c->ctx, msg, fatal);
}

/* The log stops: no more sends, no more deliveries. */
static void stop(pt_clog *c)
{
    c->m = M_STOPPED;
    event_del(c->m_timer);
    event_del(c->ka_timer);
    event_del(c->deadline);
    event_del(c->a_timer);
    if (c->watch) {
        pt_etcd_watch_cancel(c->watch);
        c->watch = NULL;
    }
}

static pt_etcd_bytes bytes_of(const char *s)
{
    return pt_etcd_str(s);
}

static int kv_is(const pt_etcd_kv *kv, const char *key)
{
    size_t n = strlen(key);
    return kv->key.len == n && memcmp(kv->key.p, key, n) == 0;
}

static uint64_t parse_u64(pt_etcd_bytes b)
{
    char buf[24];
    size_t n = b.len < sizeof buf - 1 ? b.len : sizeof buf - 1;
    memcpy(buf, b.p, n);
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

/* ---- membership ----------------------------------------------------- */

static void m_step(pt_clog *c);

/* Schedules the current membership step again; the first failure of a
 * streak is logged (what names the operation and its key). */
static void m_retry(pt_clog *c, const char *what, const pt_etcd_result *r)
{
    if (r && c->m_failures++ == 0)
        say(c, 0,
            "cluster log, host '%s': %s failed (%s); retrying until it succeeds (check that "
            "the etcd cluster is up and reachable)",
            c->host, what, r->message ? r->message : "no message");
    struct timeval tv = tv_of(backoff_ms(c->m_failures) / 1000.0);
    event_add(c->m_timer, &tv);
}

static void arm_deadline(pt_clog *c)
{
    struct timeval tv = tv_of(c->last_ok_sent + (double)c->granted_ttl - c->margin - now_mono());
    event_add(c->deadline, &tv);
}

static void kick_appends(pt_clog *c);

/* Gives the lease up (the caller is told if it was a member) and starts a
 * new membership: revoke, grant, claim. */
static void lease_lost(pt_clog *c, const char *why)
{
    if (c->m == M_STOPPED)
        return;
    int was_member = c->m == M_MEMBER;
    event_del(c->deadline);
    if (c->lease)
        c->old_lease = c->lease;
    c->lease = 0;
    c->m = M_REVOKE;
    c->m_failures = 0;
    if (was_member) {
        c->stats.lease_losses++;
        if (c->cb.on_lease_lost)
            c->cb.on_lease_lost(c->ctx, why);
    }
    m_step(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pt_clog *c = arg;
    char why[256];
    snprintf(why, sizeof why,
             "cluster log, host '%s': no lease keepalive succeeded for %.1f s (ttl %" PRId64
             " s less a margin of %.2f s): the lease %" PRId64 " may expire; joining again",
             c->host, now_mono() - c->last_ok_sent, c->granted_ttl, c->margin, c->lease);
    lease_lost(c, why);
}

static void on_keepalive(const pt_etcd_result *r, void *arg)
{
    ka_req *k = arg;
    pt_clog *c = k->c;
    c->ka_inflight--;
    if (c->closing || c->m != M_MEMBER || k->lease != c->lease) {
        free(k);
        return;
    }
    if (r->err) {
        if (!c->ka_failing++)
            say(c, 0,
                "cluster log, host '%s': keepalive of lease %" PRId64
                " (key %s) failed (%s); this host leaves the cluster in %.1f s unless one "
                "succeeds: check that the etcd cluster is up and reachable",
                c->host, c->lease, c->k_host, r->message ? r->message : "",
                c->last_ok_sent + (double)c->granted_ttl - c->margin - now_mono());
    } else if (r->ttl <= 0) {
        char why[256];
        snprintf(why, sizeof why,
                 "cluster log, host '%s': etcd says lease %" PRId64
                 " is gone (expired or revoked); joining again",
                 c->host, c->lease);
        free(k);
        lease_lost(c, why);
        return;
    } else {
        c->ka_failing = 0;
        if (k->sent > c->last_ok_sent) {
            c->last_ok_sent = k->sent;
            arm_deadline(c);
        }
    }
    free(k);
}

static void on_ka_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pt_clog *c = arg;
    if (c->cut || c->m != M_MEMBER || c->ka_inflight >= KA_INFLIGHT_MAX)
        return;
    ka_req *k = malloc(sizeof *k);
    if (!k)
        return; /* the deadline reports it if memory stays short */
    *k = (ka_req){c, c->lease, now_mono()};
    if (pt_etcd_lease_keepalive(c->etcd, c->lease, on_keepalive, k) != 0) {
        free(k);
        return;
    }
    c->ka_inflight++;
}

static void become_member(pt_clog *c, int64_t claim_rev)
{
    c->m = M_MEMBER;
    c->m_failures = 0;
    c->ka_failing = 0;
    c->joined_once = 1;
    c->claim_rev = claim_rev;
    struct timeval tv = tv_of(c->granted_ttl / 3.0);
    event_add(c->ka_timer, &tv);
    kick_appends(c);
}

static void on_revoke_answer(const pt_etcd_result *r, void *arg)
{
    (void)r;
    (void)arg;
}

static void on_claim(const pt_etcd_result *r, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m != M_CLAIM)
        return;
    if (r->err) {
        /* Sent again as is: the compare makes a second apply a no-op whose
         * failure branch shows our lease on the key. */
        m_retry(c, "creating the host key (a txn on the key under the new lease)", r);
        return;
    }
    if (r->succeeded) {
        become_member(c, r->revision);
        return;
    }
    const pt_etcd_kv *kv = r->nkvs == 1 && kv_is(&r->kvs[0], c->k_host) ? &r->kvs[0] : NULL;
    if (!kv) {
        m_retry(c, "creating the host key", NULL); /* gone since: try again */
        return;
    }
    if (kv->lease == c->lease) {
        become_member(c, kv->create_revision); /* our earlier try landed */
        return;
    }
    say(c, 1,
        "cluster log, host '%s': refusing to join: key %s already exists under lease %" PRId64
        " (value '%.*s'), so another daemon runs with this host name, or this host's previous "
        "daemon's lease has not expired yet; give each daemon its own host name, or start "
        "again after %d s",
        c->host, c->k_host, kv->lease, (int)(kv->value.len < 128 ? kv->value.len : 128),
        kv->value.p, c->ttl);
    pt_etcd_lease_revoke(c->etcd, c->lease, on_revoke_answer, NULL);
    stop(c);
}

static void on_grant(const pt_etcd_result *r, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m != M_GRANT)
        return;
    if (r->err || r->lease_id == 0) {
        m_retry(c, "granting the lease for the host key", r);
        return;
    }
    c->lease = r->lease_id;
    c->granted_ttl = r->ttl > 0 ? r->ttl : c->ttl;
    c->last_ok_sent = c->grant_sent;
    arm_deadline(c);
    c->m = M_CLAIM;
    c->m_failures = 0;
    m_step(c);
}

static void on_revoke(const pt_etcd_result *r, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m != M_REVOKE)
        return;
    /* An expired lease is what revoking wants: "lease not found". */
    if (r->err && !(r->err == PT_ETCD_ESERVER && r->message && strstr(r->message, "not found"))) {
        m_retry(c, "revoking the lease given up on (it holds the host key)", r);
        return;
    }
    c->old_lease = 0;
    c->m = M_GRANT;
    c->m_failures = 0;
    m_step(c);
}

static void on_seq_read(const pt_etcd_result *r, void *arg);

static void m_step(pt_clog *c)
{
    if (c->closing || c->m == M_STOPPED || c->m == M_MEMBER || c->m == M_IDLE)
        return;
    if (c->cut && c->m != M_READ) {
        m_retry(c, "", NULL);
        return;
    }
    int rc = 0;
    switch (c->m) {
    case M_READ:
        rc = pt_etcd_range(c->etcd, bytes_of(c->k_seq), bytes_of(""), on_seq_read, c);
        break;
    case M_REVOKE:
        if (!c->old_lease) {
            c->m = M_GRANT;
            m_step(c);
            return;
        }
        rc = pt_etcd_lease_revoke(c->etcd, c->old_lease, on_revoke, c);
        break;
    case M_GRANT:
        c->grant_sent = now_mono();
        rc = pt_etcd_lease_grant(c->etcd, c->ttl, on_grant, c);
        break;
    case M_CLAIM: {
        pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_VERSION,
                           .result = PT_ETCD_EQUAL,
                           .key = bytes_of(c->k_host),
                           .number = 0};
        pt_etcd_op put = {.kind = PT_ETCD_OP_PUT,
                          .key = bytes_of(c->k_host),
                          .value = bytes_of(c->desc),
                          .lease = c->lease};
        pt_etcd_op get = {.kind = PT_ETCD_OP_RANGE, .key = bytes_of(c->k_host)};
        pt_etcd_txn_req t = {&cmp, 1, &put, 1, &get, 1};
        rc = pt_etcd_txn(c->etcd, &t, on_claim, c);
        break;
    }
    default:
        return;
    }
    if (rc != 0)
        m_retry(c, "sending a membership request (out of memory)", NULL);
}

static void on_m_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    m_step(arg);
}

/* ---- watch ---------------------------------------------------------- */

static void free_done_entries(pt_clog *c)
{
    while (c->head && c->head->committed && c->head->seq <= c->resolved_seq) {
        clog_ent *e = c->head;
        c->head = e->next;
        if (!c->head)
            c->tail = NULL;
        c->nent--;
        free(e);
    }
}

static void commit_own(pt_clog *c, uint64_t seq, int64_t rev)
{
    if (seq <= c->start_seq)
        return; /* appended by an earlier daemon of this host */
    clog_ent *e = c->head;
    while (e && e->committed)
        e = e->next;
    if (!e || e->seq != seq) {
        say(c, 0,
            "cluster log, host '%s': the watch delivered this host's entry %" PRIu64
            " at revision %" PRId64 " that this daemon did not expect (next uncommitted: %" PRIu64
            "); another daemon may be writing this host's keys",
            c->host, seq, rev, e ? e->seq : 0);
        return;
    }
    e->committed = 1;
    c->uncommitted--;
    if (c->cb.on_committed)
        c->cb.on_committed(c->ctx, e->cookie, rev);
    free_done_entries(c);
}

/* host (len n) of "<host>" or "<host>/<seq>" into out; 0 when well formed. */
static int split_host(const char *p, size_t n, char *out, uint64_t *seq)
{
    const char *slash = memchr(p, '/', n);
    size_t hl = slash ? (size_t)(slash - p) : n;
    if (hl == 0 || hl > PT_CLOG_HOST_MAX || (seq && !slash) || (!seq && slash))
        return -1;
    memcpy(out, p, hl);
    out[hl] = '\0';
    if (seq) {
        pt_etcd_bytes s = {slash + 1, n - hl - 1};
        if (s.len == 0 || s.len > 20)
            return -1;
        *seq = parse_u64(s);
    }
    return 0;
}

static void deliver(pt_clog *c, const pt_etcd_event *ev)
{
    const char *k = ev->kv.key.p + c->prefix_len;
    size_t n = ev->kv.key.len - c->prefix_len;
    int64_t rev = ev->kv.mod_revision;
    char host[PT_CLOG_HOST_MAX + 1];
    uint64_t seq = 0;
    if (n > 4 && memcmp(k, "log/", 4) == 0) {
        if (ev->type != PT_ETCD_PUT || split_host(k + 4, n - 4, host, &seq) != 0)
            return; /* deletions are the compaction's */
        if (c->cb.on_entry)
            c->cb.on_entry(c->ctx, host, seq, rev, (const uint8_t *)ev->kv.value.p,
                           ev->kv.value.len);
        if (strcmp(host, c->host) == 0)
            commit_own(c, seq, rev);
    } else if (n > 6 && memcmp(k, "hosts/", 6) == 0) {
        if (split_host(k + 6, n - 6, host, NULL) != 0)
            return;
        if (ev->type == PT_ETCD_DELETE) {
            if (c->cb.on_host_gone)
                c->cb.on_host_gone(c->ctx, host, rev);
            /* Our own key gone under us (a revoke by hand, or an expiry
             * the deadline should have come before): not a member. */
            if (strcmp(host, c->host) == 0 && c->m == M_MEMBER && rev > c->claim_rev)
                lease_lost(c, "cluster log: this host's key was deleted in etcd");
        } else if (ev->kv.version == 1) {
            /* Our claim landed: the watch can say so before the txn's
             * answer does, and the host is a member from its place in the
             * order on (before the callback, which may ask). */
            if (strcmp(host, c->host) == 0 && c->m == M_CLAIM && ev->kv.lease == c->lease)
                become_member(c, rev);
            if (c->cb.on_host_joined)
                c->cb.on_host_joined(c->ctx, host, rev);
        }
    }
    /* seq/<host>: written with each txn of entries, nothing to deliver. */
}

static void on_watch(const pt_etcd_event *ev, size_t n, int64_t revision, int err, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m == M_STOPPED)
        return;
    if (err) {
        c->watch = NULL; /* the client frees it after this call */
        if (err == PT_ETCD_ECOMPACTED && c->cb.on_compacted) {
            /* The caller goes on from a snapshot (pt_clog_rewatch); the
             * membership and the appends go on meanwhile. */
            c->cb.on_compacted(c->ctx, revision + 1);
            return;
        }
        if (err == PT_ETCD_ECOMPACTED) {
            say(c, 1,
                "cluster log, host '%s': the watch on %s from revision %" PRId64
                " was compacted away in etcd; the entries from there are gone (a snapshot is "
                "needed to go on)",
                c->host, c->prefix, revision + 1);
        } else {
            say(c, 1, "cluster log, host '%s': the watch on %s ended (etcd client error %d)",
                c->host, c->prefix, err);
        }
        stop(c);
        return;
    }
    for (size_t i = 0; i < n && c->m != M_STOPPED; i++) {
        if (ev[i].kv.key.len > c->prefix_len && !(c->closing))
            deliver(c, &ev[i]);
        c->last_rev = ev[i].kv.mod_revision;
    }
    /* etcd never splits a revision's events between two watch messages
     * (without the watch's fragment option, which is not asked for): here
     * every event up to last_rev has been delivered. */
    if (n > 0 && c->m != M_STOPPED && !c->closing && c->watch != NULL && c->cb.on_applied)
        c->cb.on_applied(c->ctx, c->last_rev);
}

/* ---- appends -------------------------------------------------------- */

static void send_batch(pt_clog *c);

static void resolve(pt_clog *c, int64_t rev)
{
    c->stats.txns++;
    c->stats.entries += c->fly_n;
    c->resolved_seq = c->fly_hi;
    c->seq_mod = rev;
    c->fly = 0;
    c->fly_first = NULL;
    c->a_failures = 0;
    free_done_entries(c);
    kick_appends(c);
}

/* The compare failed: the seq key moved. Only this host writes it, and it
 * never sends a txn before the previous one's outcome is known, so the key
 * can have moved only by this same txn, sent before and answered into a lost
 * connection. That is checked, not assumed: the key must hold our last seq
 * and our first entry's key our bytes; anything else is another writer. The
 * entry may have been deleted meanwhile behind a snapshot (its head's value
 * begins with its revision): one at or after the seq key's revision vouches
 * for it, since only entries it holds are deleted. */
static void check_landed(pt_clog *c, const pt_etcd_result *r)
{
    const pt_etcd_kv *seq = NULL, *first = NULL, *snap = NULL;
    for (size_t i = 0; i < r->nkvs; i++) {
        if (kv_is(&r->kvs[i], c->k_seq))
            seq = &r->kvs[i];
        else if (kv_is(&r->kvs[i], c->bkeys[0]))
            first = &r->kvs[i];
        else if (kv_is(&r->kvs[i], c->k_snap))
            snap = &r->kvs[i];
    }
    clog_ent *e = c->fly_first;
    int ours = first && first->value.len == e->len &&
               memcmp(first->value.p, e->bytes, e->len) == 0 && seq &&
               first->mod_revision == seq->mod_revision;
    int deleted = !first && seq && snap && (int64_t)parse_u64(snap->value) >= seq->mod_revision;
    if (seq && parse_u64(seq->value) == c->fly_hi && (ours || deleted)) {
        c->stats.found_landed++;
        resolve(c, seq->mod_revision);
        return;
    }
    say(c, 1,
        "cluster log, host '%s': appending entries %" PRIu64 "..%" PRIu64 ": key %s holds %" PRIu64
        " at revision %" PRId64 ", not this daemon's (it expected %" PRIu64 " at revision %" PRId64
        ", or %" PRIu64 " from this same txn): another daemon writes this host's log; run one "
        "daemon per host name",
        c->host, c->fly_lo, c->fly_hi, c->k_seq, seq ? parse_u64(seq->value) : 0,
        seq ? seq->mod_revision : 0, c->fly_lo - 1, c->seq_mod, c->fly_hi);
    stop(c);
}

static void on_batch(const pt_etcd_result *r, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m == M_STOPPED || !c->fly)
        return;
    pt_etcd_result lost = {.err = PT_ETCD_EUNAVAIL, .message = "answer dropped by the test hook"};
    if (!r->err && r->succeeded && c->lose > 0) {
        c->lose--;
        r = &lost;
    }
    if (r->err) {
        c->stats.resends++;
        /* Lost (EUNAVAIL) or refused (no leader, timed out): sent again,
         * the same entries under the same compare, so it lands once. */
        if (c->a_failures++ == 0)
            say(c, 0,
                "cluster log, host '%s': appending entries %" PRIu64 "..%" PRIu64
                " (a txn on %s) failed (%s); sending it again until it lands (check that the "
                "etcd cluster is up and has a leader)",
                c->host, c->fly_lo, c->fly_hi, c->k_seq, r->message ? r->message : "");
        struct timeval tv = tv_of(backoff_ms(c->a_failures) / 1000.0);
        event_add(c->a_timer, &tv);
        return;
    }
    if (r->succeeded)
        resolve(c, r->revision);
    else
        check_landed(c, r);
}

static void send_batch(pt_clog *c)
{
    pt_etcd_op ops[BATCH_MAX + 1];
    clog_ent *e = c->fly_first;
    for (size_t i = 0; i < c->fly_n; i++, e = e->next) {
        snprintf(c->bkeys[i], KEY_MAX, "%slog/%s/%020" PRIu64, c->prefix, c->host, e->seq);
        ops[i] = (pt_etcd_op){.kind = PT_ETCD_OP_PUT,
                              .key = bytes_of(c->bkeys[i]),
                              .value = {(const char *)e->bytes, e->len}};
    }
    snprintf(c->seqval, sizeof c->seqval, "%" PRIu64, c->fly_hi);
    ops[c->fly_n] = (pt_etcd_op){
        .kind = PT_ETCD_OP_PUT, .key = bytes_of(c->k_seq), .value = bytes_of(c->seqval)};
    pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_MOD,
                       .result = PT_ETCD_EQUAL,
                       .key = bytes_of(c->k_seq),
                       .number = c->seq_mod};
    pt_etcd_op fail[3] = {{.kind = PT_ETCD_OP_RANGE, .key = bytes_of(c->k_seq)},
                          {.kind = PT_ETCD_OP_RANGE, .key = bytes_of(c->bkeys[0])},
                          {.kind = PT_ETCD_OP_RANGE, .key = bytes_of(c->k_snap)}};
    pt_etcd_txn_req t = {&cmp, 1, ops, c->fly_n + 1, fail, 3};
    if (pt_etcd_txn(c->etcd, &t, on_batch, c) != 0) {
        c->a_failures++;
        struct timeval tv = tv_of(backoff_ms(c->a_failures) / 1000.0);
        event_add(c->a_timer, &tv);
    }
}

static void on_a_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pt_clog *c = arg;
    if (c->fly && !c->closing && c->m != M_STOPPED)
        send_batch(c);
}

/* Sends the entries queued behind the last txn, as many as one txn takes.
 * Only while a member: a host that is not one has nothing to say. */
static void kick_appends(pt_clog *c)
{
    if (c->fly || !c->seq_known || c->m != M_MEMBER || !c->unsent)
        return;
    size_t n = 0, bytes = 0;
    uint64_t seq = c->resolved_seq;
    clog_ent *e = c->unsent;
    c->fly_first = e;
    for (; e && n < BATCH_MAX && (n == 0 || bytes + e->len <= BATCH_BYTES_MAX); e = e->next) {
        e->seq = ++seq;
        bytes += e->len;
        n++;
    }
    c->unsent = e;
    c->fly = 1;
    c->fly_n = n;
    c->fly_lo = c->resolved_seq + 1;
    c->fly_hi = seq;
    send_batch(c);
}

int pt_clog_append(pt_clog *c, const void *bytes, size_t len, void *cookie, char *err,
                   size_t errlen)
{
    if (c->m == M_STOPPED) {
        snprintf(err, errlen, "cluster log, host '%s': stopped (see its earlier error)", c->host);
        return -1;
    }
    if (len == 0 || len > PT_CLOG_ENTRY_MAX) {
        snprintf(err, errlen, "cluster log, host '%s': an entry of %zu bytes (1 to %u accepted)",
                 c->host, len, PT_CLOG_ENTRY_MAX);
        return -1;
    }
    if (c->nent >= PT_CLOG_QUEUE_MAX) {
        snprintf(err, errlen,
                 "cluster log, host '%s': %zu entries wait for etcd already; try again once "
                 "some are committed",
                 c->host, c->nent);
        return -1;
    }
    clog_ent *e = malloc(sizeof *e + len);
    if (!e) {
        snprintf(err, errlen, "cluster log, host '%s': out of memory for an entry", c->host);
        return -1;
    }
    *e = (clog_ent){.cookie = cookie, .len = len};
    memcpy(e->bytes, bytes, len);
    if (c->tail)
        c->tail->next = e;
    else
        c->head = e;
    c->tail = e;
    if (!c->unsent)
        c->unsent = e;
    c->nent++;
    c->uncommitted++;
    kick_appends(c);
    return 0;
}

/* ---- start ---------------------------------------------------------- */

/* The watch from revision from on; -1 (the log stopped) without memory. */
static int watch_from(pt_clog *c, int64_t from)
{
    c->watch =
        pt_etcd_watch_start(c->etcd, bytes_of(c->w_start), bytes_of(c->w_end), from, on_watch, c);
    if (!c->watch) {
        say(c, 1, "cluster log, host '%s': out of memory starting the watch on %s", c->host,
            c->prefix);
        stop(c);
        return -1;
    }
    c->last_rev = from - 1;
    return 0;
}

int pt_clog_rewatch(pt_clog *c, int64_t start_revision, uint64_t own_seq)
{
    if (c->m == M_STOPPED || c->m == M_IDLE || c->m == M_READ || c->closing)
        return -1;
    if (c->watch) {
        pt_etcd_watch_cancel(c->watch);
        c->watch = NULL;
    }
    /* This host's entries up to own_seq are in what the caller took up
     * instead of the entries: committed there, never delivered. */
    for (clog_ent *e = c->head; e && e->seq && e->seq <= own_seq; e = e->next) {
        if (e->committed)
            continue;
        e->committed = 1;
        c->uncommitted--;
        if (c->cb.on_committed)
            c->cb.on_committed(c->ctx, e->cookie, start_revision - 1);
    }
    free_done_entries(c);
    return watch_from(c, start_revision);
}

static void on_seq_read(const pt_etcd_result *r, void *arg)
{
    pt_clog *c = arg;
    if (c->closing || c->m != M_READ)
        return;
    if (r->err) {
        m_retry(c, "reading this host's sequence key (a range)", r);
        return;
    }
    if (r->nkvs == 1) {
        c->resolved_seq = parse_u64(r->kvs[0].value);
        c->seq_mod = r->kvs[0].mod_revision;
    }
    c->start_seq = c->resolved_seq;
    c->seq_known = 1;
    if (watch_from(c, c->start_rev > 0 ? c->start_rev : r->revision + 1) < 0)
        return;
    c->m = M_REVOKE; /* nothing to revoke yet: goes on to the grant */
    c->m_failures = 0;
    m_step(c);
}

int pt_clog_start(pt_clog *c, int64_t start_revision)
{
    if (c->m != M_IDLE)
        return -1;
    c->start_rev = start_revision;
    c->m = M_READ;
    m_step(c);
    return 0;
}

static int check_name(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || strchr(s, '/') || strpbrk(s, " \t\r\n")) {
        snprintf(err, errlen,
                 "cluster log: %s '%s' must be 1 to %zu characters without '/' or blanks", what,
                 s ? s : "", max);
        return -1;
    }
    return 0;
}

pt_clog *pt_clog_new(struct event_base *base, const char *endpoints, const char *prefix,
                     const char *host, int ttl, const pt_clog_callbacks *cb, void *ctx,
                     const pt_clog_options *o, char *err, size_t errlen)
{
    if (check_name("host name", host, PT_CLOG_HOST_MAX, err, errlen) != 0)
        return NULL;
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl == 0 || pl > PREFIX_MAX) {
        snprintf(err, errlen, "cluster log: the key prefix must be 1 to %d bytes", PREFIX_MAX);
        return NULL;
    }
    if (ttl < 1) {
        snprintf(err, errlen, "cluster log: a lease ttl of %d s (at least 1 s)", ttl);
        return NULL;
    }
    pt_clog *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "cluster log: out of memory");
        return NULL;
    }
    c->base = base;
    c->cb = *cb;
    c->ctx = ctx;
    c->ttl = ttl;
    c->granted_ttl = ttl;
    double dflt = ttl / 4.0 < 0.25 ? 0.25 : ttl / 4.0;
    c->margin = o && o->margin > 0 ? o->margin : dflt;
    snprintf(c->host, sizeof c->host, "%s", host);
    snprintf(c->desc, sizeof c->desc, "%s", o && o->description ? o->description : "");
    /* The prefix ends in '/', so "a/" never ranges over "ab/". */
    snprintf(c->prefix, sizeof c->prefix, "%s%s", prefix, prefix[pl - 1] == '/' ? "" : "/");
    c->prefix_len = strlen(c->prefix);
    /* The watch covers P/hosts/ to P/log/ and what sorts between: not the
     * sequence keys (nothing to deliver) nor the snapshot's (P/snap...,
     * large values that no delivery needs). */
    snprintf(c->w_start, sizeof c->w_start, "%shosts/", c->prefix);
    snprintf(c->w_end, sizeof c->w_end, "%slog0", c->prefix); /* '0' follows '/' */
    snprintf(c->k_host, sizeof c->k_host, "%shosts/%s", c->prefix, host);
    snprintf(c->k_seq, sizeof c->k_seq, "%sseq/%s", c->prefix, host);
    snprintf(c->k_snap, sizeof c->k_snap, "%ssnap", c->prefix);
    c->eo =
        (pt_etcd_options){.request_timeout = o ? o->request_timeout : 0, .tls = o ? o->tls : NULL};
    c->endpoints = strdup(endpoints ? endpoints : "");
    c->etcd = c->endpoints ? pt_etcd_new(base, endpoints, &c->eo, err, errlen) : NULL;
    c->m_timer = evtimer_new(base, on_m_timer, c);
    c->ka_timer = event_new(base, -1, EV_PERSIST, on_ka_tick, c);
    c->deadline = evtimer_new(base, on_deadline, c);
    c->a_timer = evtimer_new(base, on_a_timer, c);
    if (!c->etcd || !c->m_timer || !c->ka_timer || !c->deadline || !c->a_timer) {
        if (c->etcd || !c->endpoints)
            snprintf(err, errlen, "cluster log: out of memory");
        pt_clog_free(c);
        return NULL;
    }
    return c;
}

void pt_clog_free(pt_clog *c)
{
    if (!c)
        return;
    /* The client answers what is pending with ECANCELED: those callbacks
     * see closing and only free their own state. */
    c->closing = 1;
    if (c->etcd)
        pt_etcd_free(c->etcd);
    if (c->m_timer)
        event_free(c->m_timer);
    if (c->ka_timer)
        event_free(c->ka_timer);
    if (c->deadline)
        event_free(c->deadline);
    if (c->a_timer)
        event_free(c->a_timer);
    while (c->head) {
        clog_ent *e = c->head;
        c->head = e->next;
        free(e);
    }
    free(c->endpoints);
    free(c);
}

/* ---- leaving ---------------------------------------------------------- */

typedef struct leave_req {
    struct event_base *base;
    int done;
    char why[256];
} leave_req;

static void on_leave_revoke(const pt_etcd_result *r, void *arg)
{
    leave_req *l = arg;

    l->done = 1;
    /* An expired lease is gone already: what leaving wants. */
    if (r->err && !(r->err == PT_ETCD_ESERVER && r->message && strstr(r->message, "not found")))
        snprintf(l->why, sizeof l->why, "%s", r->message ? r->message : "no answer");
    event_base_loopbreak(l->base);
}

static void on_leave_timeout(evutil_socket_t fd, short what, void *arg)
{
    leave_req *l = arg;

    (void)fd, (void)what;
    snprintf(l->why, sizeof l->why, "no answer in time");
    event_base_loopbreak(l->base);
}

/* A loop of its own, so that the caller's loop (its connections, its
 * other events) does not turn while it waits. */
int pt_clog_leave(pt_clog *c, double timeout, char *err, size_t errlen)
{
    leave_req l = {0};
    struct timeval tv = tv_of(timeout);
    struct event *timer = NULL;
    pt_etcd *e = NULL;
    int64_t lease = c->lease;

    c->m = M_STOPPED; /* nothing more of its own: no keepalive, no join */
    if (lease == 0)
        return 0;
    l.base = event_base_new();
    if (l.base != NULL)
        e = pt_etcd_new(l.base, c->endpoints, &c->eo, err, errlen);
    if (e != NULL)
        timer = evtimer_new(l.base, on_leave_timeout, &l);
    if (timer == NULL || evtimer_add(timer, &tv) < 0 ||
        pt_etcd_lease_revoke(e, lease, on_leave_revoke, &l) < 0)
        snprintf(l.why, sizeof l.why, "out of memory");
    else
        event_base_dispatch(l.base);
    if (timer != NULL)
        event_free(timer);
    if (e != NULL)
        pt_etcd_free(e);
    if (l.base != NULL)
        event_base_free(l.base);
    c->lease = 0;
    if (l.why[0] == '\0' && l.done)
        return 0;
    snprintf(err, errlen, "revoking lease %" PRId64 ": %s", lease, l.why[0] ? l.why : "failed");
    return -1;
}

size_t pt_clog_pending(const pt_clog *c)
{
    return c->uncommitted;
}

int pt_clog_is_member(const pt_clog *c)
{
    return c->m == M_MEMBER;
}

int64_t pt_clog_lease(const pt_clog *c, double *sure_for)
{
    *sure_for = 0;
    if (c->m != M_MEMBER)
        return 0;
    *sure_for = c->last_ok_sent + (double)c->granted_ttl - now_mono();
    if (*sure_for < 0)
        *sure_for = 0;
    return c->lease;
}

int pt_clog_lease_sure(const pt_clog *c)
{
    return c->m == M_MEMBER && now_mono() < c->last_ok_sent + (double)c->granted_ttl - c->margin;
}

int64_t pt_clog_joined_revision(const pt_clog *c)
{
    return c->m == M_MEMBER ? c->claim_rev : 0;
}

int64_t pt_clog_revision(const pt_clog *c)
{
    return c->last_rev;
}

void pt_clog_get_stats(const pt_clog *c, pt_clog_stats *out)
{
    *out = c->stats;
}

void pt_clog_test_lose_answers(pt_clog *c, int n)
{
    c->lose = n;
}

void pt_clog_test_cut(pt_clog *c, int cut)
{
    c->cut = cut != 0;
}
