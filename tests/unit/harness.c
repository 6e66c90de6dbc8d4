/*
 * harness.c - see harness.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static pt_core *core;
static th_rec *recs;
static size_t nrecs, caprecs;
static uint64_t next_id;
static size_t *by_id; /* record index + 1 for each id, 0 = unanswered */
static size_t cap_id;
static const pt_session *ending;
int th_in_sink;

static void sink(void *ctx, pt_session *s, const pt_result *r)
{
    th_rec *rec;

    (void)ctx;
    th_in_sink++;
    assert_true(s != ending);
    assert_true(r->id != 0);
    assert_null(th_find(r->id));
    if (r->status != 0)
        assert_non_null(r->message);
    if (nrecs == caprecs) {
        caprecs = caprecs ? caprecs * 2 : 256;
        recs = realloc(recs, caprecs * sizeof(*recs));
        assert_non_null(recs);
    }
    if (r->id >= cap_id) {
        size_t n = cap_id ? cap_id : 256;

        while (n <= r->id)
            n *= 2;
        by_id = realloc(by_id, n * sizeof(*by_id));
        assert_non_null(by_id);
        memset(by_id + cap_id, 0, (n - cap_id) * sizeof(*by_id));
        cap_id = n;
    }
    by_id[r->id] = nrecs + 1;
    rec = &recs[nrecs++];
    memset(rec, 0, sizeof(*rec));
    rec->session = s;
    rec->session_id = pt_core_session_id(s);
    rec->id = r->id;
    rec->status = r->status;
    rec->ok = r->ok;
    rec->value = r->value;
    rec->token = r->token;
    rec->handle = r->handle;
    rec->created = r->created;
    rec->run_action = r->run_action;
    if (r->state != NULL) {
        rec->has_state = 1;
        rec->state = *r->state;
    }
    if (r->message != NULL)
        snprintf(rec->message, sizeof(rec->message), "%s", r->message);
    th_in_sink--;
}

void th_init(const pt_core_limits *limits)
{
    core = pt_core_new(limits, sink, NULL);
    assert_non_null(core);
    nrecs = 0;
    next_id = 0;
}

int th_setup(void **state)
{
    (void)state;
    th_init(NULL);
    return 0;
}

int th_teardown(void **state)
{
    size_t before = nrecs;

    (void)state;
    pt_core_free(core);
    core = NULL;
    /* Freeing the core answers nobody. */
    assert_int_equal(nrecs, before);
    free(recs);
    recs = NULL;
    nrecs = caprecs = 0;
    free(by_id);
    by_id = NULL;
    cap_id = 0;
    return 0;
}

pt_core *th_core(void)
{
    return core;
}

pt_session *th_session(void)
{
    pt_peer peer = {.pid = 4242, .uid = 1000, .gid = 1000};
    pt_session *s = pt_core_session_new(core, &peer, NULL);

    assert_non_null(s);
    return s;
}

void th_end(pt_session *s, uint64_t now)
{
    ending = s;
    pt_core_session_end(core, s, now);
    ending = NULL;
    th_check();
}

void th_expire(uint64_t now)
{
    pt_core_expire(core, now);
    th_check();
}

pt_core_stats th_stats(void)
{
    pt_core_stats st;

    pt_core_get_stats(core, &st);
    return st;
}

size_t th_count(void)
{
    return nrecs;
}

size_t th_since(size_t mark)
{
    return nrecs - mark;
}

const th_rec *th_at(size_t i)
{
    assert_true(i < nrecs);
    return &recs[i];
}

const th_rec *th_find(uint64_t id)
{
    if (id >= cap_id || by_id[id] == 0)
        return NULL;
    return &recs[by_id[id] - 1];
}

uint64_t th_last_id(void)
{
    return next_id;
}

const th_rec *th_do(pt_session *s, pt_call *call, uint64_t now)
{
    call->id = ++next_id;
    pt_core_call(core, s, call, now);
    th_check();
    return th_find(call->id);
}

const th_rec *call_open_full(pt_session *s, const pt_call *params)
{
    pt_call c = *params;

    c.op = PT_OP_OPEN;
    if (c.name != NULL && c.name_len == 0)
        c.name_len = strlen(c.name);
    return th_do(s, &c, 0);
}

const th_rec *call_open(pt_session *s, const char *name, int kind, uint32_t flags)
{
    pt_call c = {
        .name = name, .kind = kind, .flags = flags, .timeout = -1, .value = 1, .parties = 1};

    return call_open_full(s, &c);
}

static uint32_t open_ok(const th_rec *r)
{
    assert_non_null(r);
    if (r->status != 0)
        fail_msg("open failed: %d %s", r->status, r->message);
    assert_true(r->handle > 0);
    assert_true(r->has_state != r->created); /* state only for what existed */
    return r->handle;
}

uint32_t th_open(pt_session *s, const char *name, int kind, uint32_t flags)
{
    return open_ok(call_open(s, name, kind, flags));
}

uint32_t th_open_sem(pt_session *s, const char *name, int64_t value, int bounded, uint32_t flags)
{
    pt_call c = {.name = name,
                 .kind = bounded ? PT_KIND_BOUNDED_SEMAPHORE : PT_KIND_SEMAPHORE,
                 .flags = flags,
                 .timeout = -1,
                 .value = value};

    return open_ok(call_open_full(s, &c));
}

uint32_t th_open_barrier(pt_session *s, const char *name, uint32_t parties, double timeout)
{
    pt_call c = {.name = name, .kind = PT_KIND_BARRIER, .timeout = timeout, .parties = parties};

    return open_ok(call_open_full(s, &c));
}

uint32_t th_open_cond(pt_session *s, const char *name, uint32_t lock_handle)
{
    pt_call c = {
        .name = name, .kind = PT_KIND_CONDITION, .timeout = -1, .lock_handle = lock_handle};

    return open_ok(call_open_full(s, &c));
}

const th_rec *call_close(pt_session *s, uint32_t h)
{
    pt_call c = {.op = PT_OP_CLOSE, .handle = h};

    return th_do(s, &c, 0);
}

const th_rec *call_unlink(pt_session *s, const char *name)
{
    pt_call c = {.op = PT_OP_UNLINK, .name = name, .name_len = strlen(name)};

    return th_do(s, &c, 0);
}

const th_rec *call_state(pt_session *s, uint32_t h, uint64_t thread)
{
    pt_call c = {.op = PT_OP_STATE, .handle = h, .thread = thread};

    return th_do(s, &c, 0);
}

const th_rec *call_acquire(pt_session *s, uint32_t h, uint64_t thread, int blocking, double timeout,
                           uint64_t now)
{
    pt_call c = {.op = PT_OP_ACQUIRE,
                 .handle = h,
                 .thread = thread,
                 .blocking = blocking,
                 .timeout = timeout};

    return th_do(s, &c, now);
}

const th_rec *call_release(pt_session *s, uint32_t h, uint64_t thread, uint32_t count, uint64_t now)
{
    pt_call c = {.op = PT_OP_RELEASE, .handle = h, .thread = thread, .count = count};

    return th_do(s, &c, now);
}

const th_rec *call_wait(pt_session *s, uint32_t h, uint64_t thread, double timeout, uint64_t now)
{
    pt_call c = {.op = PT_OP_COND_WAIT, .handle = h, .thread = thread, .timeout = timeout};

    return th_do(s, &c, now);
}

const th_rec *call_notify(pt_session *s, uint32_t h, uint64_t thread, uint32_t count)
{
    pt_call c = {.op = PT_OP_NOTIFY, .handle = h, .thread = thread, .count = count};

    return th_do(s, &c, 0);
}

const th_rec *call_set(pt_session *s, uint32_t h)
{
    return call_op(s, PT_OP_EVENT_SET, h);
}

const th_rec *call_clear(pt_session *s, uint32_t h)
{
    return call_op(s, PT_OP_EVENT_CLEAR, h);
}

const th_rec *call_event_wait(pt_session *s, uint32_t h, double timeout, uint64_t now)
{
    pt_call c = {.op = PT_OP_EVENT_WAIT, .handle = h, .timeout = timeout};

    return th_do(s, &c, now);
}

const th_rec *call_bwait(pt_session *s, uint32_t h, uint64_t thread, double timeout, int has_action,
                         uint64_t now)
{
    pt_call c = {.op = PT_OP_BARRIER_WAIT,
                 .handle = h,
                 .thread = thread,
                 .timeout = timeout,
                 .has_action = has_action};

    return th_do(s, &c, now);
}

const th_rec *call_action_done(pt_session *s, uint32_t h, int32_t status, uint64_t now)
{
    pt_call c = {.op = PT_OP_BARRIER_ACTION_DONE, .handle = h, .status = status};

    return th_do(s, &c, now);
}

const th_rec *call_abort(pt_session *s, uint32_t h)
{
    return call_op(s, PT_OP_BARRIER_ABORT, h);
}

const th_rec *call_reset(pt_session *s, uint32_t h)
{
    return call_op(s, PT_OP_BARRIER_RESET, h);
}

const th_rec *call_op(pt_session *s, pt_op op, uint32_t h)
{
    pt_call c = {.op = op, .handle = h, .timeout = -1, .blocking = 1, .count = 1};

    return th_do(s, &c, 0);
}

void th_assert_error(const th_rec *r, int status, const char *text)
{
    assert_non_null(r);
    if (r->status != status)
        fail_msg("expected status %d, got %d (%s)", status, r->status, r->message);
    if (text != NULL && strstr(r->message, text) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", r->message, text);
}
