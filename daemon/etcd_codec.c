/*
 * etcd_codec.c - the gateway's JSON and base64, and the watch stream's
 * framing; no I/O (see etcd.h).
 *
 * The gateway (grpc-gateway's JSONPb) leaves out every field at its default
 * value: a missing number is 0, a missing bool false, a missing event type
 * PUT. 64-bit numbers come as decimal strings; json-c reads both forms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "etcd.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t pt_etcd_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t pt_etcd_b64_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long pt_etcd_b64_decode(const char *in, size_t n, void *out)
{
    unsigned char *o = out;
    size_t len = 0;
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64_value(in[i]);
        if (d < 0)
            return -1;
        v = v << 6 | (unsigned)d;
        if (i % 4 == 3) {
            o[len++] = (unsigned char)(v >> 16);
            o[len++] = (unsigned char)(v >> 8);
            o[len++] = (unsigned char)v;
            v = 0;
        }
    }
    if (n % 4 == 2)
        o[len++] = (unsigned char)(v >> 4);
    else if (n % 4 == 3) {
        o[len++] = (unsigned char)(v >> 10);
        o[len++] = (unsigned char)(v >> 2);
    }
    return (long)len;
}

/* ---- encoding ------------------------------------------------------- */

static int add_b64(json_object *o, const char *field, pt_etcd_bytes b)
{
    char *s = malloc(pt_etcd_b64_len(b.len) + 1);
    if (!s)
        return -1;
    pt_etcd_b64_encode(b.p, b.len, s);
    json_object *v = json_object_new_string(s);
    free(s);
    return v ? json_object_object_add(o, field, v) : -1;
}

static int add_i64(json_object *o, const char *field, int64_t n)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)n);
    json_object *v = json_object_new_string(s);
    return v ? json_object_object_add(o, field, v) : -1;
}

static int add_str(json_object *o, const char *field, const char *s)
{
    json_object *v = json_object_new_string(s);
    return v ? json_object_object_add(o, field, v) : -1;
}

/* Takes o; its text malloc'd, or NULL. */
static char *finish(json_object *o, int ok)
{
    char *s = NULL;
    if (o && ok == 0)
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static int fill_range(json_object *o, pt_etcd_bytes key, pt_etcd_bytes range_end, int64_t limit)
{
    int rc = add_b64(o, "key", key);
    if (range_end.len)
        rc |= add_b64(o, "range_end", range_end);
    if (limit)
        rc |= add_i64(o, "limit", limit);
    return rc;
}

static int fill_put(json_object *o, pt_etcd_bytes key, pt_etcd_bytes value, int64_t lease)
{
    int rc = add_b64(o, "key", key) | add_b64(o, "value", value);
    if (lease)
        rc |= add_i64(o, "lease", lease);
    return rc;
}

char *pt_etcd_enc_range(pt_etcd_bytes key, pt_etcd_bytes range_end, int64_t limit)
{
    json_object *o = json_object_new_object();
    return finish(o, o ? fill_range(o, key, range_end, limit) : -1);
}

char *pt_etcd_enc_put(pt_etcd_bytes key, pt_etcd_bytes value, int64_t lease)
{
    json_object *o = json_object_new_object();
    return finish(o, o ? fill_put(o, key, value, lease) : -1);
}

static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
static const char *const cmp_fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};

static json_object *enc_cmp(const pt_etcd_cmp *c)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int rc = add_str(o, "target", cmp_targets[c->target]) |
             add_str(o, "result", cmp_results[c->result]) | add_b64(o, "key", c->key);
    if (c->target == PT_ETCD_CMP_VALUE)
        rc |= add_b64(o, "value", c->value);
    else
        rc |= add_i64(o, cmp_fields[c->target], c->number);
    if (rc) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *enc_op(const pt_etcd_op *op)
{
    json_object *o = json_object_new_object(), *in = json_object_new_object();
    int rc = !o || !in;
    const char *name = "request_range";
    if (!rc) {
        switch (op->kind) {
        case PT_ETCD_OP_RANGE:
            rc = fill_range(in, op->key, op->range_end, op->limit);
            if (!rc && op->keys_only)
                rc = json_object_object_add(in, "keys_only", json_object_new_boolean(1));
            break;
        case PT_ETCD_OP_PUT:
            name = "request_put";
            rc = fill_put(in, op->key, op->value, op->lease);
            break;
        case PT_ETCD_OP_DELETE:
            name = "request_delete_range";
            rc = fill_range(in, op->key, op->range_end, 0);
            break;
        }
    }
    if (!rc && json_object_object_add(o, name, in) == 0)
        return o;
    json_object_put(in);
    json_object_put(o);
    return NULL;
}

static int add_ops(json_object *o, const char *field, const pt_etcd_op *ops, size_t n)
{
    json_object *a = json_object_new_array();
    if (!a)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *op = enc_op(&ops[i]);
        if (!op || json_object_array_add(a, op) != 0) {
            json_object_put(op);
            json_object_put(a);
            return -1;
        }
    }
    return json_object_object_add(o, field, a);
}

char *pt_etcd_enc_txn(const pt_etcd_txn_req *t)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    int rc = !o || !a;
    for (size_t i = 0; !rc && i < t->ncmp; i++) {
        json_object *c = enc_cmp(&t->cmp[i]);
        rc = !c || json_object_array_add(a, c) != 0;
    }
    if (!rc && json_object_object_add(o, "compare", a) == 0)
        a = NULL;
    else
        rc = -1;
    json_object_put(a);
    if (!rc)
        rc = add_ops(o, "success", t->success, t->nsuccess) |
             add_ops(o, "failure", t->failure, t->nfailure);
    return finish(o, rc);
}

char *pt_etcd_enc_lease_grant(int64_t ttl)
{
    json_object *o = json_object_new_object();
    return finish(o, o ? add_i64(o, "TTL", ttl) : -1);
}

char *pt_etcd_enc_lease_id(int64_t id)
{
    json_object *o = json_object_new_object();
    return finish(o, o ? add_i64(o, "ID", id) : -1);
}

char *pt_etcd_enc_compact(int64_t revision)
{
    json_object *o = json_object_new_object();
    return finish(o, o ? add_i64(o, "revision", revision) : -1);
}

char *pt_etcd_enc_watch(pt_etcd_bytes key, pt_etcd_bytes range_end, int64_t start_revision)
{
    json_object *o = json_object_new_object(), *c = json_object_new_object();
    int rc = !o || !c;
    if (!rc) {
        rc = fill_range(c, key, range_end, 0);
        if (start_revision)
            rc |= add_i64(c, "start_revision", start_revision);
    }
    if (!rc && json_object_object_add(o, "create_request", c) == 0)
        c = NULL;
    else
        rc = -1;
    json_object_put(c);
    return finish(o, rc);
}

/* ---- decoding ------------------------------------------------------- */

struct mem_block {
    struct mem_block *next;
    max_align_t data[];
};

static void *dec_alloc(pt_etcd_decoded *d, size_t n)
{
    struct mem_block *b = malloc(sizeof *b + n + 1);
    if (!b)
        return NULL;
    b->next = d->mem;
    d->mem = b;
    return b->data;
}

void pt_etcd_dec_free(pt_etcd_decoded *d)
{
    for (struct mem_block *b = d->mem, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    d->mem = NULL;
}

static int fail(pt_etcd_decoded *d, int err, const char *fmt, const char *what)
{
    d->r.err = err;
    snprintf(d->r.msgbuf, sizeof d->r.msgbuf, fmt, what);
    d->r.message = d->r.msgbuf;
    return -1;
}

static json_object *get(json_object *o, const char *field)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, field, &v) ? v : NULL;
}

static int64_t get_i64(json_object *o, const char *field)
{
    json_object *v = get(o, field);
    return v ? json_object_get_int64(v) : 0;
}

static int get_bytes(pt_etcd_decoded *d, json_object *o, const char *field, pt_etcd_bytes *b)
{
    json_object *v = get(o, field);
    b->p = "";
    b->len = 0;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return fail(d, PT_ETCD_EPROTO, "etcd answer: %s is not a base64 string", field);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    char *out = dec_alloc(d, n / 4 * 3 + 3);
    if (!out)
        return fail(d, PT_ETCD_ENOMEM, "etcd answer: out of memory decoding %s", field);
    long len = pt_etcd_b64_decode(s, n, out);
    if (len < 0)
        return fail(d, PT_ETCD_EPROTO, "etcd answer: %s is not valid base64", field);
    out[len] = '\0';
    b->p = out;
    b->len = (size_t)len;
    return 0;
}

static int dec_kv(pt_etcd_decoded *d, json_object *o, pt_etcd_kv *kv)
{
    if (get_bytes(d, o, "key", &kv->key) || get_bytes(d, o, "value", &kv->value))
        return -1;
    kv->create_revision = get_i64(o, "create_revision");
    kv->mod_revision = get_i64(o, "mod_revision");
    kv->version = get_i64(o, "version");
    kv->lease = get_i64(o, "lease");
    return 0;
}

/* Appends the kvs of a range response to d->r.kvs. */
static int dec_range(pt_etcd_decoded *d, json_object *o)
{
    json_object *a = get(o, "kvs");
    size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    d->r.count += get_i64(o, "count");
    if (n == 0)
        return 0;
    pt_etcd_kv *kvs = dec_alloc(d, (d->r.nkvs + n) * sizeof *kvs);
    if (!kvs)
        return fail(d, PT_ETCD_ENOMEM, "etcd answer: out of memory for %s", "kvs");
    if (d->r.nkvs)
        memcpy(kvs, d->r.kvs, d->r.nkvs * sizeof *kvs);
    memset(kvs + d->r.nkvs, 0, n * sizeof *kvs);
    for (size_t i = 0; i < n; i++)
        if (dec_kv(d, json_object_array_get_idx(a, i), &kvs[d->r.nkvs + i]))
            return -1;
    d->r.kvs = kvs;
    d->r.nkvs += n;
    return 0;
}

static int dec_txn(pt_etcd_decoded *d, json_object *o)
{
    json_object *v = get(o, "succeeded");
    d->r.succeeded = v ? json_object_get_boolean(v) : 0;
    json_object *a = get(o, "responses");
    size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(a, i), *x;
        if ((x = get(r, "response_range")) && dec_range(d, x))
            return -1;
        if ((x = get(r, "response_delete_range")))
            d->r.deleted += get_i64(x, "deleted");
    }
    return 0;
}

static int dec_watch(pt_etcd_decoded *d, json_object *o)
{
    json_object *res = get(o, "result");
    if (!res) {
        json_object *e = get(o, "error");
        json_object *m = get(e, "message");
        return fail(d, PT_ETCD_ESERVER, "etcd watch: %s",
                    m ? json_object_get_string(m) : "an answer with neither result nor error");
    }
    d->r.revision = get_i64(get(res, "header"), "revision");
    d->created = json_object_get_boolean(get(res, "created"));
    d->canceled = json_object_get_boolean(get(res, "canceled"));
    d->watch_id = get_i64(res, "watch_id");
    d->compact_revision = get_i64(res, "compact_revision");
    json_object *a = get(res, "events");
    size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    if (n == 0)
        return 0;
    d->events = dec_alloc(d, n * sizeof *d->events);
    if (!d->events)
        return fail(d, PT_ETCD_ENOMEM, "etcd watch: out of memory for %s", "events");
    memset(d->events, 0, n * sizeof *d->events);
    for (size_t i = 0; i < n; i++) {
        json_object *ev = json_object_array_get_idx(a, i), *t = get(ev, "type");
        d->events[i].type =
            t && strcmp(json_object_get_string(t), "DELETE") == 0 ? PT_ETCD_DELETE : PT_ETCD_PUT;
        if (dec_kv(d, get(ev, "kv"), &d->events[i].kv))
            return -1;
    }
    d->nevents = n;
    return 0;
}

static void dec_error(pt_etcd_decoded *d, int status, json_object *o)
{
    json_object *m = get(o, "message");
    if (!m)
        m = get(o, "error");
    d->r.err = PT_ETCD_ESERVER;
    snprintf(d->r.msgbuf, sizeof d->r.msgbuf, "etcd answered HTTP %d: %s", status,
             m ? json_object_get_string(m) : "(no message)");
    d->r.message = d->r.msgbuf;
}

void pt_etcd_decode(pt_etcd_dec_kind kind, int status, const char *json, size_t len,
                    pt_etcd_decoded *d)
{
    memset(d, 0, sizeof *d);
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        fail(d, PT_ETCD_ENOMEM, "etcd answer: out of memory for %s", "the parser");
        return;
    }
    json_object *o = len <= PT_ETCD_MSG_MAX ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    if (!o || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(o, json_type_object)) {
        if (status != 200)
            fail(d, PT_ETCD_ESERVER, "etcd answered HTTP %s without a JSON body",
                 status > 0 ? "error" : "nothing");
        else
            fail(d, PT_ETCD_EPROTO, "etcd answer: %s", "not a JSON object");
        json_object_put(o);
        json_tokener_free(tok);
        return;
    }
    json_tokener_free(tok);
    if (status != 200 && kind != PT_ETCD_DEC_WATCH) {
        dec_error(d, status, o);
        json_object_put(o);
        return;
    }
    json_object *o2 = o;
    d->r.revision = get_i64(get(o, "header"), "revision");
    switch (kind) {
    case PT_ETCD_DEC_RANGE:
        dec_range(d, o);
        break;
    case PT_ETCD_DEC_TXN:
        dec_txn(d, o);
        break;
    case PT_ETCD_DEC_LEASE:
        /* A keepalive is a stream in gRPC: its one answer comes as {"result":...}. */
        if (get(o, "result"))
            o2 = get(o, "result");
        if (o2 != o)
            d->r.revision = get_i64(get(o2, "header"), "revision");
        d->r.lease_id = get_i64(o2, "ID");
        d->r.ttl = get_i64(o2, "TTL");
        if (get(o, "error"))
            dec_error(d, status, get(o, "error"));
        break;
    case PT_ETCD_DEC_WATCH:
        dec_watch(d, o);
        break;
    case PT_ETCD_DEC_PUT:
        break;
    }
    json_object_put(o);
}

/* ---- watch stream framing ---------------------------------------------- */

void pt_etcd_stream_init(pt_etcd_stream *s, size_t max)
{
    memset(s, 0, sizeof *s);
    s->max = max;
}

void pt_etcd_stream_free(pt_etcd_stream *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static int stream_append(pt_etcd_stream *s, const char *p, size_t n)
{
    if (n > s->max - s->len)
        return -1;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        if (cap > s->max)
            cap = s->max;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

int pt_etcd_stream_feed(pt_etcd_stream *s, const char *p, size_t n,
                        int (*msg)(const char *json, size_t len, void *arg), void *arg)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (s->len == 0 && nl) {
            /* The whole message is in this piece: no copy. */
            int rc = take ? msg(p, take, arg) : 0;
            if (rc)
                return rc;
        } else {
            if (stream_append(s, p, take) != 0)
                return -1;
            if (nl) {
                int rc = s->len ? msg(s->buf, s->len, arg) : 0;
                s->len = 0;
                if (rc)
                    return rc;
            }
        }
        if (!nl)
            return 0;
        p += take + 1;
        n -= take + 1;
    }
    return 0;
}
