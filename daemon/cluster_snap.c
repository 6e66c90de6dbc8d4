/*
 * cluster_snap.c - the cluster's snapshots in etcd (cluster_snap.h).
 *
 * A write is a chain of requests, one at a time: the chunks, the head, then
 * the cleanup (for each host, find its oldest entry left and delete up to
 * DELETE_STEP of them a txn, so that no revision carries a huge delete to
 * every watch), the older snapshots' chunks, the compaction. A load is the
 * head, then each chunk by its key; a chunk gone means a newer snapshot
 * replaced the head meanwhile, and the load begins again from the head.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <event2/event.h>

#include "cluster_log.h"
#include "cluster_snap.h"
#include "daemon.h"
#include "etcd.h"
#include "journal.pb-c.h"

#define PREFIX_MAX  200
#define KEY_MAX     (PREFIX_MAX + PT_CLOG_HOST_MAX + 64)
#define DELETE_STEP 1000u
#define BACKOFF_MS  200
#define BACKOFF_MAX 5000

typedef struct seq_at {
    char host[PT_CLOG_HOST_MAX + 1];
    uint64_t seq;
} seq_at;

typedef struct seq_table {
    seq_at *v;
    size_t n, cap;
} seq_table;

/* Seconds of etcd's history kept behind the snapshots: it is compacted up
 * to the newest snapshot this writer wrote at least this long before, so a
 * daemon whose watch falls behind for less goes on from it instead of
 * reloading (and closing its connections with cluster sessions), however
 * fast snapshots come. */
#define HISTORY_KEEP 2.0
#define KEPT_MAX     8 /* snapshots remembered, at least HISTORY_KEEP / 4 apart */

typedef struct snap_at {
    int64_t rev;
    double at; /* CLOCK_MONOTONIC seconds */
} snap_at;

struct pt_csnap {
    pt_etcd *etcd;
    char prefix[PREFIX_MAX + 2];
    char k_head[PREFIX_MAX + 8];
    char host[PT_CLOG_HOST_MAX + 1];
    uint32_t every;
    int no_compact;
    seq_table seqs;
    uint64_t since; /* entries applied since the last snapshot */
    int closing;

    /* a write */
    int w;
    int64_t w_rev;
    uint8_t *w_buf;
    size_t w_len, w_nchunks, w_i;
    seq_table w_seqs; /* each host's last entry at w_rev */
    size_t w_host;
    uint64_t w_lo;      /* the oldest entry of w_host left */
    uint64_t w_deleted; /* entries deleted behind it */
    char w_head[160];
    snap_at kept[KEPT_MAX]; /* this writer's snapshots, oldest first */
    size_t nkept;
    int64_t w_compact; /* the revision compacted up to by this write */

    /* a load */
    int l;
    pt_csnap_loaded_fn l_fn;
    void *l_ctx;
    int64_t l_rev;
    char l_host[PT_CLOG_HOST_MAX + 1];
    size_t l_nchunks, l_len, l_i, l_got;
    uint64_t l_fnv;
    uint8_t *l_buf;
    int l_failures;
    /* a load with no snapshot: the hosts and their keys' creation, the
     * hosts with entries */
    int64_t f_rev;
    char **f_hosts, **f_logs;
    int64_t *f_created;
    size_t f_nhosts, f_nlogs;
    struct event *l_timer;
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static pt_etcd_bytes str(const char *s)
{
    return pt_etcd_str(s);
}

/* ---- entries applied ------------------------------------------------ */

static seq_at *seq_find(const seq_table *t, const char *host)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].host, host) == 0)
            return &t->v[i];
    return NULL;
}

static int seq_set(seq_table *t, const char *host, uint64_t seq)
{
    seq_at *at = seq_find(t, host);

    if (at == NULL) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            seq_at *grown = realloc(t->v, cap * sizeof(*grown));

            if (grown == NULL)
                return -1;
            t->v = grown;
            t->cap = cap;
        }
        at = &t->v[t->n++];
        snprintf(at->host, sizeof(at->host), "%s", host);
    }
    at->seq = seq;
    return 0;
}

void pt_csnap_entry(pt_csnap *s, const char *host, uint64_t seq)
{
    seq_at *at = seq_find(&s->seqs, host);

    s->since++;
    if (at != NULL && seq > at->seq)
        at->seq = seq;
    else if (at == NULL && seq_set(&s->seqs, host, seq) < 0)
        pt_log(LOG_WARNING,
               "pythreadd: no memory to note cluster host '%s' entry %" PRIu64 ": the next "
               "snapshot will not delete that host's entries from the log",
               host, seq);
}

uint64_t pt_csnap_seq(const pt_csnap *s, const char *host)
{
    const seq_at *at = seq_find(&s->seqs, host);

    return at != NULL ? at->seq : 0;
}

int pt_csnap_due(const pt_csnap *s)
{
    return s->every != 0 && s->since >= s->every && !s->w && !s->l;
}

/* ---- writing -------------------------------------------------------- */

static void w_end(pt_csnap *s)
{
    free(s->w_buf);
    s->w_buf = NULL;
    free(s->w_seqs.v);
    s->w_seqs = (seq_table){0};
    s->w = 0;
}

static void w_fail(pt_csnap *s, const char *what, const pt_etcd_result *r)
{
    pt_log(LOG_WARNING,
           "pythreadd: cluster snapshot at revision %" PRId64 " (keys %ssnap...): %s failed (%s); "
           "the next try comes %u entries later (check that the etcd cluster is up and has a "
           "leader)",
           s->w_rev, s->prefix, what, r && r->message ? r->message : "out of memory", s->every);
    w_end(s);
}

static void w_chunk(pt_csnap *s);
static void w_head(pt_csnap *s, int absent);
static void w_probe(pt_csnap *s);

static void chunk_key(char *out, const char *prefix, int64_t rev, const char *host, size_t i)
{
    snprintf(out, KEY_MAX, "%ssnap/%020" PRId64 "/%s/%06zu", prefix, rev, host, i);
}

static void log_key(char *out, const char *prefix, const char *host, uint64_t seq)
{
    snprintf(out, KEY_MAX, "%slog/%s/%020" PRIu64, prefix, host, seq);
}

static void on_w_chunk(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;

    if (s->closing || !s->w)
        return;
    if (r->err) {
        w_fail(s, "writing a chunk under snap/", r);
        return;
    }
    if (++s->w_i < s->w_nchunks)
        w_chunk(s);
    else
        w_head(s, 0);
}

static void w_chunk(pt_csnap *s)
{
    char key[KEY_MAX];
    size_t at = s->w_i * PT_CSNAP_CHUNK, n = s->w_len - at;
    pt_etcd_bytes v = {(const char *)s->w_buf + at, n < PT_CSNAP_CHUNK ? n : PT_CSNAP_CHUNK};

    chunk_key(key, s->prefix, s->w_rev, s->host, s->w_i);
    if (pt_etcd_put(s->etcd, str(key), v, 0, on_w_chunk, s) != 0)
        w_fail(s, "writing a chunk", NULL);
}

static int64_t head_revision(const pt_etcd_kv *kv)
{
    char buf[24];
    size_t n = kv->value.len < 20 ? kv->value.len : 20;

    memcpy(buf, kv->value.p, n);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

static void w_cleanup(pt_csnap *s)
{
    s->w_deleted = 0;
    pt_log(LOG_INFO,
           "pythreadd: cluster snapshot at revision %" PRId64 " written (%zu bytes in %zu "
           "chunks); deleting the log's entries up to it",
           s->w_rev, s->w_len, s->w_nchunks);
    free(s->w_buf); /* the chunks are in etcd */
    s->w_buf = NULL;
    s->w_host = 0;
    w_probe(s);
}

static void on_w_head(const pt_etcd_result *r, void *arg, int absent)
{
    pt_csnap *s = arg;

    if (s->closing || !s->w)
        return;
    if (r->err) {
        w_fail(s, "writing the head key snap", r);
        return;
    }
    if (r->succeeded) {
        w_cleanup(s);
        return;
    }
    if (r->nkvs == 0 && !absent) {
        w_head(s, 1); /* no head yet: a compare of its value always fails */
        return;
    }
    if (r->nkvs > 0 && absent && head_revision(&r->kvs[0]) < s->w_rev) {
        w_head(s, 0); /* another writer's older head came first */
        return;
    }
    pt_log(LOG_INFO,
           "pythreadd: cluster snapshot at revision %" PRId64 " not written: the head key holds "
           "a newer one (%" PRId64 ")",
           s->w_rev, r->nkvs > 0 ? head_revision(&r->kvs[0]) : 0);
    w_end(s);
}

static void on_w_head_present(const pt_etcd_result *r, void *arg)
{
    on_w_head(r, arg, 0);
}

static void on_w_head_absent(const pt_etcd_result *r, void *arg)
{
    on_w_head(r, arg, 1);
}

/* The head over an older one only: its value starts with the revision in
 * 20 digits, so byte order is the revisions' order. A head that is not
 * there yet takes a compare of its version instead. */
static void w_head(pt_csnap *s, int absent)
{
    char rev[24];
    pt_etcd_cmp cmp = {.key = str(s->k_head)};
    pt_etcd_op ops[2] = {{.kind = PT_ETCD_OP_RANGE, .key = str(s->k_head)},
                         {.kind = PT_ETCD_OP_PUT, .key = str(s->k_head), .value = str(s->w_head)}};
    pt_etcd_op get = {.kind = PT_ETCD_OP_RANGE, .key = str(s->k_head)};
    pt_etcd_txn_req t = {&cmp, 1, ops, 2, &get, 1};

    snprintf(rev, sizeof(rev), "%020" PRId64, s->w_rev);
    if (absent) {
        cmp.target = PT_ETCD_CMP_VERSION;
        cmp.result = PT_ETCD_EQUAL;
        cmp.number = 0;
    } else {
        cmp.target = PT_ETCD_CMP_VALUE;
        cmp.result = PT_ETCD_LESS;
        cmp.value = str(rev);
    }
    if (pt_etcd_txn(s->etcd, &t, absent ? on_w_head_absent : on_w_head_present, s) != 0)
        w_fail(s, "writing the head key", NULL);
}

static void on_w_compact(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;

    if (s->closing || !s->w)
        return;
    /* Compacted already (by an earlier writer, or etcd's own): as good. */
    if (r->err && !(r->message && strstr(r->message, "compacted")))
        pt_log(LOG_WARNING,
               "pythreadd: compacting etcd's history up to revision %" PRId64
               " (after the cluster snapshot at %" PRId64 ") failed: %s; the next snapshot "
               "tries again",
               s->w_compact, s->w_rev, r->message ? r->message : "");
    else
        pt_log(LOG_INFO,
               "pythreadd: cluster snapshot at revision %" PRId64 ": %" PRIu64 " log entries "
               "deleted behind it, etcd's history compacted up to revision %" PRId64,
               s->w_rev, s->w_deleted, s->w_compact);
    w_end(s);
}

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The snapshot just written, remembered if HISTORY_KEEP / 4 after the last
 * one remembered (the oldest forgotten when full): KEPT_MAX of them span
 * more than HISTORY_KEEP, so one is always old enough. */
static void kept_note(pt_csnap *s, int64_t rev)
{
    double now = mono_now();

    if (s->nkept > 0 && now - s->kept[s->nkept - 1].at < HISTORY_KEEP / 4)
        return;
    if (s->nkept == KEPT_MAX)
        memmove(s->kept, s->kept + 1, --s->nkept * sizeof(s->kept[0]));
    s->kept[s->nkept++] = (snap_at){rev, now};
}

/* The newest snapshot before this one written HISTORY_KEEP ago or more. */
static int64_t compact_target(const pt_csnap *s)
{
    double old = mono_now() - HISTORY_KEEP;
    int64_t rev = 0;

    for (size_t i = 0; i < s->nkept; i++)
        if (s->kept[i].at <= old && s->kept[i].rev < s->w_rev && s->kept[i].rev > rev)
            rev = s->kept[i].rev;
    return rev;
}

/* History is kept back to a snapshot HISTORY_KEEP old: a daemon less far
 * behind goes on from its watch instead of reloading. */
static void w_compact(pt_csnap *s)
{
    kept_note(s, s->w_rev);
    s->w_compact = compact_target(s);
    if (s->no_compact || s->w_compact <= 0) {
        pt_log(LOG_INFO,
               "pythreadd: cluster snapshot at revision %" PRId64 ": %" PRIu64 " log entries "
               "deleted behind it%s",
               s->w_rev, s->w_deleted,
               s->no_compact ? ", etcd's history kept (--etcd-keep-history)" : "");
        w_end(s);
        return;
    }
    if (pt_etcd_compact(s->etcd, s->w_compact, on_w_compact, s) != 0)
        w_fail(s, "compacting etcd's history", NULL);
}

static void on_w_old_chunks(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;

    if (s->closing || !s->w)
        return;
    if (r->err) {
        w_fail(s, "deleting older snapshots' chunks", r);
        return;
    }
    w_compact(s);
}

static void w_old_chunks(pt_csnap *s)
{
    char from[KEY_MAX], to[KEY_MAX];
    pt_etcd_op del = {.kind = PT_ETCD_OP_DELETE};
    pt_etcd_txn_req t = {NULL, 0, &del, 1, NULL, 0};

    snprintf(from, sizeof(from), "%ssnap/", s->prefix);
    snprintf(to, sizeof(to), "%ssnap/%020" PRId64, s->prefix, s->w_rev);
    del.key = str(from);
    del.range_end = str(to);
    if (pt_etcd_txn(s->etcd, &t, on_w_old_chunks, s) != 0)
        w_fail(s, "deleting older snapshots' chunks", NULL);
}

static void on_w_delete(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;

    if (s->closing || !s->w)
        return;
    if (r->err) {
        w_fail(s, "deleting log entries", r);
        return;
    }
    s->w_deleted += (uint64_t)r->deleted;
    w_probe(s);
}

static uint64_t key_seq(const pt_etcd_kv *kv)
{
    char buf[24];
    size_t n = kv->key.len < 20 ? kv->key.len : 20;

    memcpy(buf, kv->key.p + kv->key.len - n, n);
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

static void on_w_probe(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;
    const seq_at *h;
    char from[KEY_MAX], to[KEY_MAX];
    pt_etcd_op del = {.kind = PT_ETCD_OP_DELETE};
    pt_etcd_txn_req t = {NULL, 0, &del, 1, NULL, 0};
    uint64_t hi;

    if (s->closing || !s->w)
        return;
    if (r->err) {
        w_fail(s, "reading the log's oldest entries", r);
        return;
    }
    h = &s->w_seqs.v[s->w_host];
    if (r->nkvs == 0) { /* this host's are gone up to its seq: the next */
        s->w_host++;
        w_probe(s);
        return;
    }
    s->w_lo = key_seq(&r->kvs[0]);
    hi = s->w_lo + DELETE_STEP < h->seq + 1 ? s->w_lo + DELETE_STEP : h->seq + 1;
    log_key(from, s->prefix, h->host, s->w_lo);
    log_key(to, s->prefix, h->host, hi);
    del.key = str(from);
    del.range_end = str(to);
    if (pt_etcd_txn(s->etcd, &t, on_w_delete, s) != 0)
        w_fail(s, "deleting log entries", NULL);
}

/* The oldest entry left of the host at w_host, up to its seq at w_rev. */
static void w_probe(pt_csnap *s)
{
    char from[KEY_MAX], to[KEY_MAX];
    pt_etcd_op get = {.kind = PT_ETCD_OP_RANGE, .limit = 1, .keys_only = 1};
    pt_etcd_txn_req t = {NULL, 0, &get, 1, NULL, 0};
    const seq_at *h;

    while (s->w_host < s->w_seqs.n && s->w_seqs.v[s->w_host].seq == 0)
        s->w_host++;
    if (s->w_host == s->w_seqs.n) {
        w_old_chunks(s);
        return;
    }
    h = &s->w_seqs.v[s->w_host];
    snprintf(from, sizeof(from), "%slog/%s/", s->prefix, h->host);
    log_key(to, s->prefix, h->host, h->seq + 1);
    get.key = str(from);
    get.range_end = str(to);
    if (pt_etcd_txn(s->etcd, &t, on_w_probe, s) != 0)
        w_fail(s, "reading the log's oldest entries", NULL);
}

typedef Pythread__ClusterSnapshot snap_msg;

/* The snapshot's bytes into s->w_buf; -1 without memory. */
static int w_encode(pt_csnap *s, const pt_ccore *cc, char *const *members, size_t nmembers)
{
    snap_msg m = PYTHREAD__CLUSTER_SNAPSHOT__INIT;
    uint8_t *copy = NULL;
    size_t copy_len = 0;
    char **hosts = calloc(s->seqs.n + 1, sizeof(*hosts));
    uint64_t *seqs = calloc(s->seqs.n + 1, sizeof(*seqs));
    int rc = -1;

    if (hosts == NULL || seqs == NULL || pt_ccore_snapshot(cc, &copy, &copy_len) < 0)
        goto out;
    for (size_t i = 0; i < s->seqs.n; i++) {
        hosts[i] = s->seqs.v[i].host;
        seqs[i] = s->seqs.v[i].seq;
    }
    m.has_revision = m.has_copy = 1;
    m.revision = s->w_rev;
    m.copy.data = copy;
    m.copy.len = copy_len;
    m.n_members = nmembers;
    m.members = (char **)members;
    m.n_seq_hosts = m.n_seqs = s->seqs.n;
    m.seq_hosts = hosts;
    m.seqs = seqs;
    s->w_len = pythread__cluster_snapshot__get_packed_size(&m);
    if ((s->w_buf = malloc(s->w_len ? s->w_len : 1)) == NULL)
        goto out;
    pythread__cluster_snapshot__pack(&m, s->w_buf);
    rc = 0;
out:
    free(copy);
    free(hosts);
    free(seqs);
    return rc;
}

void pt_csnap_write(pt_csnap *s, int64_t revision, const pt_ccore *cc, char *const *members,
                    size_t nmembers)
{
    if (s->w || s->l)
        return;
    s->since = 0;
    s->w = 1;
    s->w_rev = revision;
    s->w_i = 0;
    s->w_seqs.v = malloc((s->seqs.n + 1) * sizeof(*s->w_seqs.v));
    if (s->w_seqs.v == NULL || w_encode(s, cc, members, nmembers) < 0) {
        pt_log(LOG_WARNING,
               "pythreadd: cluster snapshot at revision %" PRId64 " not written: no memory to "
               "encode the copy, or one of its objects' records is over the journal's 1 MiB (a "
               "queue of tens of thousands of waiters); the next try comes %u entries later",
               revision, s->every);
        w_end(s);
        return;
    }
    memcpy(s->w_seqs.v, s->seqs.v, s->seqs.n * sizeof(*s->seqs.v));
    s->w_seqs.n = s->w_seqs.cap = s->seqs.n;
    if (s->w_len > PT_CSNAP_MAX) {
        pt_log(LOG_ERR,
               "pythreadd: cluster snapshot at revision %" PRId64 " not written: %zu bytes, over "
               "the %u a snapshot may take in etcd; the cluster's log keeps growing (fewer or "
               "smaller cluster objects, or fewer sessions, make it smaller)",
               revision, s->w_len, PT_CSNAP_MAX);
        w_end(s);
        return;
    }
    s->w_nchunks = (s->w_len + PT_CSNAP_CHUNK - 1) / PT_CSNAP_CHUNK;
    if (s->w_nchunks == 0)
        s->w_nchunks = 1;
    snprintf(s->w_head, sizeof(s->w_head), "%020" PRId64 " %s %zu %zu %016" PRIx64, revision,
             s->host, s->w_nchunks, s->w_len, fnv1a(s->w_buf, s->w_len));
    w_chunk(s);
}

/* ---- loading -------------------------------------------------------- */

static void l_retry(pt_csnap *s, const char *what, const char *why)
{
    int ms = BACKOFF_MS << (s->l_failures < 5 ? s->l_failures : 5);
    struct timeval tv;

    if (ms > BACKOFF_MAX)
        ms = BACKOFF_MAX;
    if (s->l_failures++ == 0)
        pt_log(LOG_WARNING,
               "pythreadd: loading the cluster's snapshot (key %s): %s (%s); trying again until "
               "it loads (check that the etcd cluster is up and reachable)",
               s->k_head, what, why ? why : "out of memory");
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(s->l_timer, &tv);
}

static void l_done(pt_csnap *s, const pt_csnap_loaded *l)
{
    pt_csnap_loaded_fn fn = s->l_fn;

    free(s->l_buf);
    s->l_buf = NULL;
    s->l = 0;
    s->l_failures = 0;
    fn(s->l_ctx, l);
}

static void l_head(pt_csnap *s);
static void l_chunk(pt_csnap *s);
static void l_fresh(pt_csnap *s);

/* The snapshot whole: checked, and given to the caller. */
static void l_finish(pt_csnap *s)
{
    pt_csnap_loaded l = {.revision = s->l_rev};
    snap_msg *m = NULL;
    seq_table seqs = {0};
    char err[256];

    err[0] = '\0';
    if (s->l_got != s->l_len || fnv1a(s->l_buf, s->l_len) != s->l_fnv)
        snprintf(err, sizeof(err), "its chunks do not add up to the bytes its head names");
    else if ((m = pythread__cluster_snapshot__unpack(NULL, s->l_len, s->l_buf)) == NULL ||
             m->revision != s->l_rev || m->n_seq_hosts != m->n_seqs || !m->has_copy)
        snprintf(err, sizeof(err), "its bytes are not a snapshot of revision %" PRId64, s->l_rev);
    for (size_t i = 0; m != NULL && !err[0] && i < m->n_seqs; i++)
        if (strlen(m->seq_hosts[i]) > PT_CLOG_HOST_MAX ||
            seq_set(&seqs, m->seq_hosts[i], m->seqs[i]) < 0)
            snprintf(err, sizeof(err), "a host name too long, or no memory");
    if (err[0]) {
        char msg[1024];

        snprintf(msg, sizeof(msg),
                 "the snapshot at revision %" PRId64 " (key %s and the keys under %ssnap/) "
                 "cannot be used: %s",
                 s->l_rev, s->k_head, s->prefix, err);
        l.err = msg;
        free(seqs.v);
        if (m != NULL)
            pythread__cluster_snapshot__free_unpacked(m, NULL);
        l_done(s, &l);
        return;
    }
    free(s->seqs.v);
    s->seqs = seqs;
    s->since = 0;
    l.copy = m->copy.data;
    l.copy_len = m->copy.len;
    l.members = m->members;
    l.nmembers = m->n_members;
    l_done(s, &l);
    pythread__cluster_snapshot__free_unpacked(m, NULL);
}

static void on_l_chunk(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;
    const pt_etcd_kv *kv = r->nkvs == 1 ? &r->kvs[0] : NULL;

    if (s->closing || !s->l)
        return;
    if (r->err) {
        l_retry(s, "reading a chunk", r->message);
        return;
    }
    if (kv == NULL) { /* a newer snapshot took its place: from its head */
        s->l_i = s->l_got = 0;
        s->l_rev = 0;
        l_retry(s, "a chunk was deleted under it", "a newer snapshot replaced it");
        return;
    }
    if (kv->value.len > s->l_len - s->l_got) {
        s->l_got = s->l_len + 1;
        l_finish(s);
        return;
    }
    memcpy(s->l_buf + s->l_got, kv->value.p, kv->value.len);
    s->l_got += kv->value.len;
    if (++s->l_i < s->l_nchunks)
        l_chunk(s);
    else
        l_finish(s);
}

static void l_chunk(pt_csnap *s)
{
    char key[KEY_MAX];

    chunk_key(key, s->prefix, s->l_rev, s->l_host, s->l_i);
    if (pt_etcd_range(s->etcd, str(key), str(""), on_l_chunk, s) != 0)
        l_retry(s, "reading a chunk", NULL);
}

/* "<R> <host> <chunks> <bytes> <fnv>"; 0 when well formed. */
static int head_parse(pt_csnap *s, const pt_etcd_kv *kv)
{
    char buf[200], host[PT_CLOG_HOST_MAX + 1];
    long long rev;
    size_t nchunks, len;
    uint64_t fnv;

    if (kv->value.len >= sizeof(buf))
        return -1;
    memcpy(buf, kv->value.p, kv->value.len);
    buf[kv->value.len] = '\0';
    if (sscanf(buf, "%20lld %64s %zu %zu %16" SCNx64, &rev, host, &nchunks, &len, &fnv) != 5 ||
        rev <= 0 || nchunks == 0 || len > PT_CSNAP_MAX || nchunks > len + 1)
        return -1;
    s->l_rev = rev;
    snprintf(s->l_host, sizeof(s->l_host), "%s", host);
    s->l_nchunks = nchunks;
    s->l_len = len;
    s->l_fnv = fnv;
    return 0;
}

static void on_l_head(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;

    if (s->closing || !s->l)
        return;
    if (r->err) {
        l_retry(s, "reading the head key", r->message);
        return;
    }
    if (r->nkvs == 0) {
        l_fresh(s);
        return;
    }
    if (head_parse(s, &r->kvs[0]) < 0) {
        char msg[1024];
        pt_csnap_loaded bad = {.err = msg};

        snprintf(msg, sizeof(msg),
                 "the head key %s of the cluster's snapshot holds '%.*s', not a snapshot's head",
                 s->k_head, (int)(r->kvs[0].value.len < 100 ? r->kvs[0].value.len : 100),
                 r->kvs[0].value.p);
        l_done(s, &bad);
        return;
    }
    free(s->l_buf);
    if ((s->l_buf = malloc(s->l_len ? s->l_len : 1)) == NULL) {
        l_retry(s, "no memory for its bytes", NULL);
        return;
    }
    s->l_i = s->l_got = 0;
    l_chunk(s);
}

/* No snapshot: none of the log's entries was deleted (only a snapshot's
 * writer deletes, behind its head). The cluster's history that matters
 * begins at its first entry: before it, hosts came and went with no
 * session to end. So the copy is an empty one just before that entry (or
 * at this read's revision when there is none), its members the hosts whose
 * keys were there then; the watch goes on from that entry, which an etcd
 * compacted by another cluster's snapshots still has. First the hosts and
 * the hosts with entries (their sequence keys), then each one's first
 * entry. */
#define FRESH_HOSTS_MAX 120 /* first entries read in one txn (etcd takes 128 ops) */

static void fresh_clear(pt_csnap *s)
{
    for (size_t i = 0; i < s->f_nhosts; i++)
        free(s->f_hosts[i]);
    for (size_t i = 0; i < s->f_nlogs; i++)
        free(s->f_logs[i]);
    free(s->f_hosts);
    free(s->f_created);
    free(s->f_logs);
    s->f_hosts = s->f_logs = NULL;
    s->f_created = NULL;
    s->f_nhosts = s->f_nlogs = 0;
}

/* The copy, empty at revision rev, the hosts there its members. */
static void fresh_done(pt_csnap *s, int64_t rev)
{
    pt_csnap_loaded l = {.revision = rev};
    char **names = calloc(s->f_nhosts + 1, sizeof(*names));

    if (names == NULL) {
        fresh_clear(s);
        l_retry(s, "reading the hosts", NULL);
        return;
    }
    for (size_t i = 0; i < s->f_nhosts; i++)
        if (s->f_created[i] <= rev)
            names[l.nmembers++] = s->f_hosts[i];
    l.members = names;
    l_done(s, &l);
    free(names);
    fresh_clear(s);
}

/* A key under P/<dir> (dir with its '/'): the rest of it, malloc'd; NULL
 * when it is not one or is too long for a host name. */
static char *key_rest(const pt_csnap *s, const pt_etcd_kv *kv, const char *dir)
{
    size_t plen = strlen(s->prefix), dlen = strlen(dir);
    size_t n = kv->key.len > plen + dlen ? kv->key.len - plen - dlen : 0;

    if (n == 0 || n > PT_CLOG_HOST_MAX || memcmp(kv->key.p + plen, dir, dlen) != 0)
        return NULL;
    return strndup(kv->key.p + plen + dlen, n);
}

static int head_in(const pt_csnap *s, const pt_etcd_result *r)
{
    for (size_t i = 0; i < r->nkvs; i++)
        if (r->kvs[i].key.len == strlen(s->k_head) &&
            memcmp(r->kvs[i].key.p, s->k_head, r->kvs[i].key.len) == 0)
            return 1;
    return 0;
}

static void on_l_firsts(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;
    int64_t first = s->f_rev + 1;

    if (s->closing || !s->l)
        return;
    if (r->err || head_in(s, r)) { /* a snapshot came meanwhile: from its head */
        fresh_clear(s);
        if (r->err)
            l_retry(s, "reading the log's first entries", r->message);
        else
            l_head(s);
        return;
    }
    for (size_t i = 0; i < r->nkvs; i++)
        if (r->kvs[i].mod_revision > 0 && r->kvs[i].mod_revision < first)
            first = r->kvs[i].mod_revision;
    fresh_done(s, first - 1);
}

static void on_l_fresh(const pt_etcd_result *r, void *arg)
{
    pt_csnap *s = arg;
    char keys[FRESH_HOSTS_MAX][2][KEY_MAX];
    pt_etcd_op ops[FRESH_HOSTS_MAX + 1];
    pt_etcd_txn_req t = {NULL, 0, ops, 1, NULL, 0};

    if (s->closing || !s->l)
        return;
    if (r->err || head_in(s, r)) {
        if (r->err)
            l_retry(s, "reading the hosts", r->message);
        else
            l_head(s);
        return;
    }
    s->f_hosts = calloc(r->nkvs + 1, sizeof(*s->f_hosts));
    s->f_created = calloc(r->nkvs + 1, sizeof(*s->f_created));
    s->f_logs = calloc(r->nkvs + 1, sizeof(*s->f_logs));
    if (s->f_hosts == NULL || s->f_created == NULL || s->f_logs == NULL) {
        fresh_clear(s);
        l_retry(s, "reading the hosts", NULL);
        return;
    }
    s->f_rev = r->revision;
    for (size_t i = 0; i < r->nkvs; i++) {
        char *name;

        if ((name = key_rest(s, &r->kvs[i], "hosts/")) != NULL) {
            s->f_created[s->f_nhosts] = r->kvs[i].create_revision;
            s->f_hosts[s->f_nhosts++] = name;
        } else if ((name = key_rest(s, &r->kvs[i], "seq/")) != NULL) {
            s->f_logs[s->f_nlogs++] = name;
        }
    }
    if (s->f_nlogs == 0) {
        fresh_done(s, s->f_rev);
        return;
    }
    if (s->f_nlogs > FRESH_HOSTS_MAX) { /* so many: the log from its first revision */
        pt_csnap_loaded none = {0};

        fresh_clear(s);
        l_done(s, &none);
        return;
    }
    ops[0] = (pt_etcd_op){.kind = PT_ETCD_OP_RANGE, .key = str(s->k_head)};
    for (size_t i = 0; i < s->f_nlogs; i++) {
        snprintf(keys[i][0], KEY_MAX, "%slog/%s/", s->prefix, s->f_logs[i]);
        snprintf(keys[i][1], KEY_MAX, "%slog/%s0", s->prefix, s->f_logs[i]);
        ops[i + 1] = (pt_etcd_op){.kind = PT_ETCD_OP_RANGE,
                                  .key = str(keys[i][0]),
                                  .range_end = str(keys[i][1]),
                                  .limit = 1,
                                  .keys_only = 1};
    }
    t.nsuccess = s->f_nlogs + 1;
    if (pt_etcd_txn(s->etcd, &t, on_l_firsts, s) != 0) {
        fresh_clear(s);
        l_retry(s, "reading the log's first entries", NULL);
    }
}

static void l_fresh(pt_csnap *s)
{
    char seq[KEY_MAX], seq_end[KEY_MAX], hosts[KEY_MAX], hosts_end[KEY_MAX];
    pt_etcd_op ops[3] = {{.kind = PT_ETCD_OP_RANGE, .key = str(s->k_head)},
                         {.kind = PT_ETCD_OP_RANGE},
                         {.kind = PT_ETCD_OP_RANGE}};
    pt_etcd_txn_req t = {NULL, 0, ops, 3, NULL, 0};

    snprintf(seq, sizeof(seq), "%sseq/", s->prefix);
    snprintf(seq_end, sizeof(seq_end), "%sseq0", s->prefix);
    snprintf(hosts, sizeof(hosts), "%shosts/", s->prefix);
    snprintf(hosts_end, sizeof(hosts_end), "%shosts0", s->prefix);
    ops[1].key = str(seq);
    ops[1].range_end = str(seq_end);
    ops[2].key = str(hosts);
    ops[2].range_end = str(hosts_end);
    fresh_clear(s);
    if (pt_etcd_txn(s->etcd, &t, on_l_fresh, s) != 0)
        l_retry(s, "reading the hosts", NULL);
}

static void l_head(pt_csnap *s)
{
    if (pt_etcd_range(s->etcd, str(s->k_head), str(""), on_l_head, s) != 0)
        l_retry(s, "reading the head key", NULL);
}

static void on_l_timer(evutil_socket_t fd, short what, void *arg)
{
    pt_csnap *s = arg;

    (void)fd, (void)what;
    if (s->l && s->l_rev != 0 && s->l_buf != NULL && s->l_i < s->l_nchunks)
        l_chunk(s);
    else if (s->l)
        l_head(s);
}

int pt_csnap_load(pt_csnap *s, pt_csnap_loaded_fn fn, void *ctx)
{
    if (s->l)
        return -1;
    /* A write under way goes on: what it writes was the copy at its
     * revision; no new one starts while loading. */
    s->l = 1;
    s->l_fn = fn;
    s->l_ctx = ctx;
    s->l_rev = 0;
    s->l_failures = 0;
    l_head(s);
    return 0;
}

/* ---- the rest ------------------------------------------------------- */

pt_csnap *pt_csnap_new(struct event_base *base, const char *endpoints, const pt_etcd_tls *tls,
                       const char *prefix, const char *host, uint32_t every, int no_compact,
                       char *err, size_t errlen)
{
    const pt_etcd_options eo = {.tls = tls};
    size_t pl = prefix ? strlen(prefix) : 0;
    pt_csnap *s;

    if (pl == 0 || pl > PREFIX_MAX || strlen(host) > PT_CLOG_HOST_MAX) {
        snprintf(err, errlen, "cluster snapshots: a key prefix of 1 to %d bytes", PREFIX_MAX);
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* As the log has it: the prefix ends in '/'. */
    snprintf(s->prefix, sizeof(s->prefix), "%s%s", prefix, prefix[pl - 1] == '/' ? "" : "/");
    snprintf(s->k_head, sizeof(s->k_head), "%ssnap", s->prefix);
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->every = every;
    s->no_compact = no_compact;
    s->etcd = pt_etcd_new(base, endpoints, &eo, err, errlen);
    s->l_timer = evtimer_new(base, on_l_timer, s);
    if (s->etcd == NULL || s->l_timer == NULL) {
        if (s->etcd != NULL)
            snprintf(err, errlen, "out of memory");
        pt_csnap_free(s);
        return NULL;
    }
    return s;
}

void pt_csnap_free(pt_csnap *s)
{
    if (s == NULL)
        return;
    /* Pending answers come back ECANCELED: closing makes them no-ops. */
    s->closing = 1;
    if (s->etcd)
        pt_etcd_free(s->etcd);
    if (s->l_timer)
        event_free(s->l_timer);
    free(s->w_buf);
    free(s->w_seqs.v);
    free(s->l_buf);
    free(s->seqs.v);
    fresh_clear(s);
    free(s);
}
