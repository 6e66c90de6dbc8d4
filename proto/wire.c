#include "wire.h"

#include <stdio.h>
#include <string.h>

#include "names.h"
#include "pythread.h"

uint32_t pt_wire_len_get(const uint8_t hdr[PT_WIRE_HEADER])
{
    return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

void pt_wire_len_put(uint8_t hdr[PT_WIRE_HEADER], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

/* 16-byte alignment (of the address, whatever the buffer's own alignment)
 * covers every type protobuf-c places in its buffers. */
static void *arena_alloc(void *data, size_t size)
{
    pt_wire_arena *a = data;
    uintptr_t at = (uintptr_t)(a->buf + a->used);
    size_t start = a->used + ((16u - (at & 15u)) & 15u);

    if (start > a->cap || size > a->cap - start)
        return NULL;
    a->used = start + size;
    return a->buf + start;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released all at once by pt_wire_arena_reset */
}

void pt_wire_arena_init(pt_wire_arena *a, void *buf, size_t cap)
{
    a->allocator.alloc = arena_alloc;
    a->allocator.free = arena_free;
    a->allocator.allocator_data = a;
    a->buf = buf;
    a->cap = cap;
    a->used = 0;
}

void pt_wire_arena_reset(pt_wire_arena *a)
{
    a->used = 0;
}

size_t pt_wire_request_frame_size(const Pythread__Request *req)
{
    return PT_WIRE_HEADER + pythread__request__get_packed_size(req);
}

size_t pt_wire_response_frame_size(const Pythread__Response *resp)
{
    return PT_WIRE_HEADER + pythread__response__get_packed_size(resp);
}

void pt_wire_request_omit_defaults(Pythread__Request *req)
{
    req->has_blocking &= !req->blocking;
    req->has_timeout &= req->timeout != -1.0;
    req->has_count &= req->count != 1;
    if (req->open)
        req->open->has_value &= req->open->value != 1;
}

/* The widest encoding of one field: a tag of up to 2 bytes (field numbers
 * below 2048) and a 10-byte varint; a string's 5-byte length prefix fits
 * the same room, its bytes are added apart. */
#define FIELD_MAX 12u

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t pt_wire_request_frame_bound(const Pythread__Request *req)
{
    size_t open = req->open ? FIELD_MAX * pythread__open_args__descriptor.n_fields : 0;
    size_t hello = req->hello ? FIELD_MAX * pythread__hello_args__descriptor.n_fields +
                                    str_len(req->hello->client_name)
                              : 0;

    if (req->base.n_unknown_fields || req->page ||
        (req->hello &&
         (req->hello->n_reclaims || req->hello->n_pending || req->hello->has_resume_key)))
        return pt_wire_request_frame_size(req);
    return PT_WIRE_HEADER + FIELD_MAX * pythread__request__descriptor.n_fields + req->name.len +
           open + hello;
}

size_t pt_wire_response_frame_bound(const Pythread__Response *resp)
{
    size_t state = resp->state ? FIELD_MAX * pythread__state__descriptor.n_fields : 0;
    size_t fast = resp->fast ? FIELD_MAX * pythread__fast_cell__descriptor.n_fields : 0;

    if (resp->base.n_unknown_fields || resp->hello || resp->inspect)
        return pt_wire_response_frame_size(resp);
    return PT_WIRE_HEADER + FIELD_MAX * pythread__response__descriptor.n_fields +
           str_len(resp->message) + state + fast;
}

size_t pt_wire_request_frame_pack(const Pythread__Request *req, uint8_t *out)
{
    size_t n = pythread__request__pack(req, out + PT_WIRE_HEADER);

    pt_wire_len_put(out, (uint32_t)n);
    return PT_WIRE_HEADER + n;
}

size_t pt_wire_response_frame_pack(const Pythread__Response *resp, uint8_t *out)
{
    size_t n = pythread__response__pack(resp, out + PT_WIRE_HEADER);

    pt_wire_len_put(out, (uint32_t)n);
    return PT_WIRE_HEADER + n;
}

static int op_known(int op)
{
    return op >= PYTHREAD__OP__OP_HELLO && op <= PYTHREAD__OP__OP_DEADLOCKS;
}

int pt_wire_op_inspects(int op)
{
    return (op >= PYTHREAD__OP__OP_STATUS && op <= PYTHREAD__OP__OP_SESSIONS) ||
           op == PYTHREAD__OP__OP_METRICS || op == PYTHREAD__OP__OP_DEADLOCKS;
}

static const uint32_t open_flags_known = PT_OPEN_FLAGS_KNOWN;

static const Pythread__OpenArgs open_none = PYTHREAD__OPEN_ARGS__INIT;
static const Pythread__HelloArgs hello_none = PYTHREAD__HELLO_ARGS__INIT;
static const Pythread__PageArgs page_none = PYTHREAD__PAGE_ARGS__INIT;

const Pythread__OpenArgs *pt_wire_open_args(const Pythread__Request *r)
{
    return r->open ? r->open : &open_none;
}

const Pythread__HelloArgs *pt_wire_hello_args(const Pythread__Request *r)
{
    return r->hello ? r->hello : &hello_none;
}

const Pythread__PageArgs *pt_wire_page_args(const Pythread__Request *r)
{
    return r->page ? r->page : &page_none;
}

static int kind_known(int kind)
{
    return kind >= PT_KIND_LOCK && kind <= PT_KIND_BARRIER;
}

static int reclaim_known(const Pythread__Reclaim *rc)
{
    return rc->state >= PYTHREAD__RECLAIM__STATE__UNKNOWN &&
           rc->state <= PYTHREAD__RECLAIM__STATE__SLOT;
}

/* Checks protobuf-c leaves to us; returns a reason or NULL. */
const char *pt_wire_request_check(const Pythread__Request *r)
{
    const Pythread__OpenArgs *o = pt_wire_open_args(r);
    const Pythread__HelloArgs *h = pt_wire_hello_args(r);
    const Pythread__PageArgs *p = pt_wire_page_args(r);

    if (r->id == 0)
        return "request id 0 is reserved";
    if (!op_known(r->op))
        return "unknown op";
    if (r->has_name && r->name.len > PT_WIRE_NAME_MAX)
        return "name longer than 255 bytes";
    if (h->client_name && strlen(h->client_name) > PT_WIRE_NAME_MAX)
        return "client_name longer than 255 bytes";
    if (h->has_resume_key && h->resume_key.len > PT_WIRE_RESUME_KEY_MAX)
        return "resume_key longer than 32 bytes";
    for (size_t i = 0; i < h->n_reclaims; i++) {
        if (!reclaim_known(h->reclaims[i]))
            return "reclaim with an unknown state";
    }
    if (r->op == PYTHREAD__OP__OP_OPEN && !kind_known(o->kind))
        return "unknown object kind";
    if (r->op == PYTHREAD__OP__OP_LIST && p->kind != 0 && !kind_known(p->kind))
        return "unknown object kind";
    if (p->glob && strlen(p->glob) > PT_WIRE_GLOB_MAX)
        return "glob longer than 1024 bytes";
    if (o->flags & ~open_flags_known)
        return "unknown open flag bits";
    if (o->mode & ~07777u)
        return "mode has bits outside 07777";
    return NULL;
}

Pythread__Request *pt_wire_request_decode(pt_wire_arena *a, const uint8_t *body, size_t len,
                                          char *err, size_t errlen)
{
    Pythread__Request *r = pythread__request__unpack(&a->allocator, len, body);
    const char *why;

    if (!r) {
        snprintf(err, errlen, "frame of %zu bytes is not a valid Request message", len);
        return NULL;
    }
    why = pt_wire_request_check(r);
    if (why) {
        snprintf(err, errlen, "invalid request %llu: %s", (unsigned long long)r->id, why);
        return NULL;
    }
    return r;
}

Pythread__Response *pt_wire_response_decode(pt_wire_arena *a, const uint8_t *body, size_t len,
                                            char *err, size_t errlen)
{
    Pythread__Response *r = pythread__response__unpack(&a->allocator, len, body);

    if (!r) {
        snprintf(err, errlen, "frame of %zu bytes is not a valid Response message", len);
        return NULL;
    }
    return r;
}
