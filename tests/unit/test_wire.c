/*
 * test_wire.c - the frame size bound both packers rely on (they pack into
 * that much room without asking protobuf-c for the size first): never below
 * the packed size whatever the values, and built on the schema as it is, so
 * a field added to a message cannot silently outgrow it. And the defaults a
 * client leaves out read back the same on the other side.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pythread.h"
#include "wire.h"

/* Every optional scalar present at its widest encoding: negative 32- and
 * 64-bit integers take 10 bytes, the largest unsigned ones 5 and 10. */
static void fill_widest(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *member = (char *)m + f->offset;

        if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_STRING ||
            f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_BYTES)
            continue;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
            *(int32_t *)member = INT32_MIN;
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            *(uint32_t *)member = UINT32_MAX;
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            *(int64_t *)member = INT64_MIN;
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            *(uint64_t *)member = UINT64_MAX;
            break;
        case PROTOBUF_C_TYPE_FLOAT:
            *(float *)member = 1e30f;
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            *(double *)member = 1e300;
            break;
        case PROTOBUF_C_TYPE_BOOL:
            *(protobuf_c_boolean *)member = 1;
            break;
        default:
            break;
        }
    }
}

/* The fields of d that are not plain scalars, as "name,name,...". */
static void non_scalars(const ProtobufCMessageDescriptor *d, char *out, size_t len)
{
    out[0] = '\0';
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_STRING ||
            f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_BYTES) {
            strncat(out, f->name, len - strlen(out) - 1);
            strncat(out, ",", len - strlen(out) - 1);
        }
        /* A tag of at most 2 bytes is what the bound allows for. */
        assert_true(f->id < 2048);
    }
}

/* The bound knows these as the only strings and submessages; a new one
 * must be taught to it (proto/wire.c) before this list changes. */
static void test_bound_knows_the_schema(void **state)
{
    char got[512];

    (void)state;
    non_scalars(&pythread__request__descriptor, got, sizeof(got));
    assert_string_equal(got, "name,open,hello,page,");
    non_scalars(&pythread__response__descriptor, got, sizeof(got));
    assert_string_equal(got, "message,state,hello,inspect,fast,");
    non_scalars(&pythread__state__descriptor, got, sizeof(got));
    assert_string_equal(got, "");
    non_scalars(&pythread__open_args__descriptor, got, sizeof(got));
    assert_string_equal(got, "");
    non_scalars(&pythread__hello_args__descriptor, got, sizeof(got));
    /* a resuming hello's are sized exactly (proto/wire.c) */
    assert_string_equal(got, "client_name,resume_key,reclaims,pending,");
    non_scalars(&pythread__fast_cell__descriptor, got, sizeof(got));
    assert_string_equal(got, "");
}

static void test_request_bound_covers_the_widest(void **state)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs open = PYTHREAD__OPEN_ARGS__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    Pythread__PageArgs page = PYTHREAD__PAGE_ARGS__INIT;
    uint8_t name[PT_WIRE_NAME_MAX];
    char client_name[PT_WIRE_NAME_MAX + 1];

    (void)state;
    fill_widest(&req.base);
    assert_true(pt_wire_request_frame_bound(&req) >= pt_wire_request_frame_size(&req));
    memset(name, 'n', sizeof(name));
    req.has_name = 1;
    req.name.data = name;
    req.name.len = sizeof(name);
    assert_true(pt_wire_request_frame_bound(&req) >= pt_wire_request_frame_size(&req));
    fill_widest(&open.base);
    req.open = &open;
    assert_true(pt_wire_request_frame_bound(&req) >= pt_wire_request_frame_size(&req));
    fill_widest(&hello.base);
    memset(client_name, 'c', sizeof(client_name) - 1);
    client_name[sizeof(client_name) - 1] = '\0';
    hello.client_name = client_name;
    req.hello = &hello;
    assert_true(pt_wire_request_frame_bound(&req) >= pt_wire_request_frame_size(&req));
    /* A resuming hello's lists and key: the exact size. */
    {
        Pythread__Reclaim rc = PYTHREAD__RECLAIM__INIT, *rcs[1] = {&rc};
        uint64_t pending[3] = {1, 2, 3};
        uint8_t key[PT_WIRE_RESUME_KEY_MAX] = {0};

        fill_widest(&rc.base);
        hello.n_reclaims = 1;
        hello.reclaims = rcs;
        hello.n_pending = 3;
        hello.pending = pending;
        hello.has_resume_key = 1;
        hello.resume_key.data = key;
        hello.resume_key.len = sizeof(key);
        assert_int_equal(pt_wire_request_frame_bound(&req), pt_wire_request_frame_size(&req));
        hello.n_reclaims = hello.n_pending = 0;
        hello.has_resume_key = 0;
    }
    /* With a page (inspection) the bound is the exact size. */
    req.page = &page;
    assert_int_equal(pt_wire_request_frame_bound(&req), pt_wire_request_frame_size(&req));
}

static void test_response_bound_covers_the_widest(void **state)
{
    Pythread__Response resp = PYTHREAD__RESPONSE__INIT;
    Pythread__State st = PYTHREAD__STATE__INIT;
    Pythread__HelloInfo hello = PYTHREAD__HELLO_INFO__INIT;
    char message[1000];
    uint8_t frame[2048];

    (void)state;
    fill_widest(&resp.base);
    assert_true(pt_wire_response_frame_bound(&resp) >= pt_wire_response_frame_size(&resp));
    memset(message, 'm', sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';
    resp.message = message;
    fill_widest(&st.base);
    resp.state = &st;
    assert_true(pt_wire_response_frame_bound(&resp) >= pt_wire_response_frame_size(&resp));
    assert_true(pt_wire_response_frame_bound(&resp) <= sizeof(frame));
    assert_int_equal(pt_wire_response_frame_pack(&resp, frame), pt_wire_response_frame_size(&resp));
    resp.hello = &hello;
    assert_int_equal(pt_wire_response_frame_bound(&resp), pt_wire_response_frame_size(&resp));
}

static Pythread__Request *round_trip(const Pythread__Request *req, pt_wire_arena *a)
{
    static uint8_t frame[1024];
    char err[128];
    size_t n = pt_wire_request_frame_pack(req, frame);

    assert_int_equal(pt_wire_len_get(frame), n - PT_WIRE_HEADER);
    return pt_wire_request_decode(a, frame + PT_WIRE_HEADER, n - PT_WIRE_HEADER, err, sizeof(err));
}

static void test_defaults_left_out_read_back_the_same(void **state)
{
    static uint8_t mem[16384];
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs open = PYTHREAD__OPEN_ARGS__INIT;
    Pythread__Request *got;
    pt_wire_arena a;

    (void)state;
    pt_wire_arena_init(&a, mem, sizeof(mem));
    req.id = 1;
    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_blocking = req.has_timeout = req.has_count = 1;
    req.blocking = 1;
    req.timeout = -1;
    req.count = 1;
    req.open = &open;
    open.has_kind = open.has_value = 1;
    open.kind = PT_KIND_SEMAPHORE;
    open.value = 1;
    pt_wire_request_omit_defaults(&req);
    assert_false(req.has_blocking || req.has_timeout || req.has_count || open.has_value);
    got = round_trip(&req, &a);
    assert_non_null(got);
    assert_true(got->blocking);
    assert_true(got->timeout == -1.0);
    assert_int_equal(got->count, 1);
    assert_int_equal(pt_wire_open_args(got)->value, 1);
    /* Other values travel. */
    pt_wire_arena_reset(&a);
    req.has_blocking = req.has_timeout = req.has_count = open.has_value = 1;
    req.blocking = 0;
    req.timeout = 0.5;
    req.count = 3;
    open.value = 0;
    pt_wire_request_omit_defaults(&req);
    assert_true(req.has_blocking && req.has_timeout && req.has_count && open.has_value);
    got = round_trip(&req, &a);
    assert_non_null(got);
    assert_false(got->blocking);
    assert_true(got->timeout == 0.5);
    assert_int_equal(got->count, 3);
    assert_int_equal(pt_wire_open_args(got)->value, 0);
}

/* Absent submessages read as their defaults, never NULL. */
static void test_absent_arguments_read_as_defaults(void **state)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    (void)state;
    assert_int_equal(pt_wire_open_args(&req)->value, 1);
    assert_int_equal(pt_wire_open_args(&req)->kind, 0);
    assert_int_equal(pt_wire_hello_args(&req)->version, 0);
    assert_null(pt_wire_hello_args(&req)->client_name);
    assert_int_equal(pt_wire_page_args(&req)->cursor, 0);
    assert_null(pt_wire_page_args(&req)->glob);
}

/* What no client sends is refused before it reaches the daemon: a reclaim
 * state the schema does not have, a resume key longer than any given. */
static void test_resuming_hello_is_checked(void **state)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    Pythread__Reclaim rc = PYTHREAD__RECLAIM__INIT, *rcs[1] = {&rc};
    uint8_t key[PT_WIRE_RESUME_KEY_MAX + 1] = {0};

    (void)state;
    req.id = 1;
    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &hello;
    hello.n_reclaims = 1;
    hello.reclaims = rcs;
    hello.has_resume_key = 1;
    hello.resume_key.data = key;
    hello.resume_key.len = PT_WIRE_RESUME_KEY_MAX;
    for (int st = PYTHREAD__RECLAIM__STATE__UNKNOWN; st <= PYTHREAD__RECLAIM__STATE__SLOT; st++) {
        rc.state = (Pythread__Reclaim__State)st;
        assert_null(pt_wire_request_check(&req));
    }
    rc.state = (Pythread__Reclaim__State)5;
    assert_non_null(pt_wire_request_check(&req));
    rc.state = (Pythread__Reclaim__State)-1;
    assert_non_null(pt_wire_request_check(&req));
    rc.state = PYTHREAD__RECLAIM__STATE__HELD;
    hello.resume_key.len = sizeof(key);
    assert_non_null(pt_wire_request_check(&req));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_knows_the_schema),
        cmocka_unit_test(test_request_bound_covers_the_widest),
        cmocka_unit_test(test_response_bound_covers_the_widest),
        cmocka_unit_test(test_defaults_left_out_read_back_the_same),
        cmocka_unit_test(test_absent_arguments_read_as_defaults),
        cmocka_unit_test(test_resuming_hello_is_checked),
    };

    return cmocka_run_group_tests_name("unit.wire", tests, NULL, NULL);
}
