/*
 * make_corpus.c - writes the fuzz target's seed corpus: for every kind and
 * every operation, a client stream (hello, open, the operation and its
 * usual companions) as pythreadd expects it, plus inspection requests and a
 * few deliberately broken frames. Run it as `make_corpus DIR`; the output
 * is checked in under tests/fuzz/corpus/ and replayed by the ordinary test
 * suite, so a change of the wire that breaks the seeds is seen at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pythread.h"
#include "wire.h"

typedef struct stream {
    uint8_t buf[8192];
    size_t len;
    uint64_t next_id;
} stream;

static void put(stream *s, Pythread__Request *r)
{
    size_t n = pt_wire_request_frame_size(r);

    r->id = ++s->next_id;
    n = pt_wire_request_frame_size(r);
    if (s->len + n > sizeof s->buf) {
        fprintf(stderr, "make_corpus: stream too long\n");
        exit(1);
    }
    pt_wire_request_frame_pack(r, s->buf + s->len);
    s->len += n;
}

static Pythread__Request req(Pythread__Op op, uint32_t handle)
{
    Pythread__Request r = PYTHREAD__REQUEST__INIT;

    r.op = op;
    if (handle) {
        r.has_handle = 1;
        r.handle = handle;
    }
    r.has_thread = 1;
    r.thread = 7;
    return r;
}

static void hello(stream *s)
{
    Pythread__Request r = req(PYTHREAD__OP__OP_HELLO, 0);
    Pythread__HelloArgs h = PYTHREAD__HELLO_ARGS__INIT;

    h.has_version = 1;
    h.version = PT_PROTOCOL_VERSION;
    h.client_name = "fuzz-seed";
    r.hello = &h;
    put(s, &r);
}

static void open_obj(stream *s, const char *name, int kind, uint32_t flags, uint32_t lock)
{
    Pythread__Request r = req(PYTHREAD__OP__OP_OPEN, 0);
    Pythread__OpenArgs a = PYTHREAD__OPEN_ARGS__INIT;

    r.has_name = 1;
    r.name.data = (uint8_t *)name;
    r.name.len = strlen(name);
    r.open = &a;
    a.has_kind = 1;
    a.kind = kind;
    a.has_flags = flags != 0;
    a.flags = flags;
    a.has_mode = 1;
    a.mode = 0640;
    if (kind == PT_KIND_SEMAPHORE || kind == PT_KIND_BOUNDED_SEMAPHORE) {
        a.has_value = 1;
        a.value = 2;
    }
    if (kind == PT_KIND_BARRIER) {
        a.has_parties = 1;
        a.parties = 2;
    }
    if (lock) {
        a.has_lock_handle = 1;
        a.lock_handle = lock;
    }
    put(s, &r);
}

static void op(stream *s, Pythread__Op o, uint32_t h, double timeout)
{
    Pythread__Request r = req(o, h);

    if (timeout != -1) {
        r.has_timeout = 1;
        r.timeout = timeout;
    }
    put(s, &r);
}

static void save(const char *dir, const char *name, const stream *s)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* The operations each kind takes, after hello and open (handle 1). */
static void kind_ops(stream *s, int kind)
{
    switch (kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, 0.01);
        op(s, PYTHREAD__OP__OP_STATE, 1, -1);
        op(s, PYTHREAD__OP__OP_RELEASE, 1, -1);
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, -1); /* held at session end */
        break;
    case PT_KIND_CONDITION:
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
        op(s, PYTHREAD__OP__OP_NOTIFY, 1, -1);
        op(s, PYTHREAD__OP__OP_COND_WAIT, 1, 0.001);
        op(s, PYTHREAD__OP__OP_RELEASE, 1, -1);
        op(s, PYTHREAD__OP__OP_COND_WAIT, 1, -1); /* not held: RuntimeError */
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
        op(s, PYTHREAD__OP__OP_ACQUIRE, 1, 0.001);
        op(s, PYTHREAD__OP__OP_RELEASE, 1, -1);
        op(s, PYTHREAD__OP__OP_STATE, 1, -1);
        break;
    case PT_KIND_EVENT:
        op(s, PYTHREAD__OP__OP_EVENT_WAIT, 1, 0.001);
        op(s, PYTHREAD__OP__OP_EVENT_SET, 1, -1);
        op(s, PYTHREAD__OP__OP_EVENT_WAIT, 1, -1);
        op(s, PYTHREAD__OP__OP_EVENT_CLEAR, 1, -1);
        op(s, PYTHREAD__OP__OP_EVENT_WAIT, 1, -1); /* parked at session end */
        break;
    case PT_KIND_BARRIER:
        op(s, PYTHREAD__OP__OP_BARRIER_WAIT, 1, 0.001);
        op(s, PYTHREAD__OP__OP_BARRIER_RESET, 1, -1);
        op(s, PYTHREAD__OP__OP_BARRIER_WAIT, 1, -1);
        op(s, PYTHREAD__OP__OP_BARRIER_ACTION_DONE, 1, -1);
        op(s, PYTHREAD__OP__OP_BARRIER_ABORT, 1, -1);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    static const char *const kinds[] = {NULL,        "lock", "rlock", "condition",
                                        "semaphore", "bsem", "event", "barrier"};
    char file[64];
    stream s;

    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++) {
        memset(&s, 0, sizeof s);
        hello(&s);
        open_obj(&s, "seed.obj", k, 0, 0);
        kind_ops(&s, k);
        op(&s, PYTHREAD__OP__OP_CLOSE, 1, -1);
        snprintf(file, sizeof file, "kind-%s", kinds[k]);
        save(argv[1], file, &s);
    }
    /* Condition over a named lock, a transient and an exclusive open,
     * unlink while open. */
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "seed.lock", PT_KIND_LOCK, PT_OPEN_TRANSIENT, 0);
    open_obj(&s, "seed.cv", PT_KIND_CONDITION, PT_OPEN_EXCL, 1);
    op(&s, PYTHREAD__OP__OP_ACQUIRE, 2, -1);
    op(&s, PYTHREAD__OP__OP_COND_WAIT, 2, 0.002);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_UNLINK, 0);
        r.has_name = 1;
        r.name.data = (uint8_t *)"seed.cv";
        r.name.len = 7;
        put(&s, &r);
    }
    op(&s, PYTHREAD__OP__OP_RELEASE, 2, -1);
    save(argv[1], "condition-named-lock", &s);
    /* Inspection. */
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "seed.evt", PT_KIND_EVENT, 0, 0);
    op(&s, PYTHREAD__OP__OP_STATUS, 0, -1);
    op(&s, PYTHREAD__OP__OP_LIST, 0, -1);
    op(&s, PYTHREAD__OP__OP_SESSIONS, 0, -1);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_LIST, 0);
        Pythread__PageArgs p = PYTHREAD__PAGE_ARGS__INIT;

        p.has_cursor = p.has_max_entries = p.has_kind = 1;
        p.cursor = 1;
        p.max_entries = 2;
        p.kind = PT_KIND_EVENT;
        p.glob = "seed.*";
        r.page = &p;
        put(&s, &r);
    }
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_SHOW, 0);
        r.has_name = 1;
        r.name.data = (uint8_t *)"seed.evt";
        r.name.len = 8;
        put(&s, &r);
    }
    save(argv[1], "inspect", &s);
    /* Metrics: a new text, then a piece at an offset no text is at. */
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "seed.met", PT_KIND_LOCK, 0, 0);
    op(&s, PYTHREAD__OP__OP_METRICS, 0, -1);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_METRICS, 0);
        Pythread__PageArgs p = PYTHREAD__PAGE_ARGS__INIT;

        p.has_cursor = 1;
        p.cursor = 100;
        r.page = &p;
        put(&s, &r);
    }
    save(argv[1], "metrics", &s);
    /* Deadlocks: a thread acquiring a Lock it holds (a cycle of one),
     * failed, then left standing; a Condition wait taking it back; the
     * deadlocks listed and the lock shown marked. */
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "seed.dl", PT_KIND_LOCK, PT_OPEN_DEADLOCK_FAIL, 0);
    open_obj(&s, "seed.dlcv", PT_KIND_CONDITION, 0, 1);
    op(&s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_ACQUIRE, 1);

        r.has_fail_deadlock = 1;
        r.fail_deadlock = 1;
        put(&s, &r);
    }
    op(&s, PYTHREAD__OP__OP_COND_WAIT, 2, 0.001);
    op(&s, PYTHREAD__OP__OP_ACQUIRE, 1, -1);
    op(&s, PYTHREAD__OP__OP_DEADLOCKS, 0, -1);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_SHOW, 0);
        r.has_name = 1;
        r.name.data = (uint8_t *)"seed.dl";
        r.name.len = 7;
        put(&s, &r);
    }
    op(&s, PYTHREAD__OP__OP_STATUS, 0, -1);
    save(argv[1], "deadlock", &s);
    /* Broken: no hello; a bad version; a frame over the limit; a bad name. */
    memset(&s, 0, sizeof s);
    open_obj(&s, "seed.nohello", PT_KIND_LOCK, 0, 0);
    save(argv[1], "broken-no-hello", &s);
    memset(&s, 0, sizeof s);
    {
        Pythread__Request r = req(PYTHREAD__OP__OP_HELLO, 0);
        Pythread__HelloArgs h = PYTHREAD__HELLO_ARGS__INIT;

        h.has_version = 1;
        h.version = 999;
        r.hello = &h;
        put(&s, &r);
    }
    save(argv[1], "broken-version", &s);
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "bad name!", PT_KIND_LOCK, 0, 0);
    s.buf[s.len++] = 0x7f; /* a header cut short */
    s.buf[s.len++] = 0xff;
    save(argv[1], "broken-name-and-header", &s);
    /* A long pipelined batch, served over several turns; the last byte
     * (a header cut short) makes the target write it in big pieces. */
    memset(&s, 0, sizeof s);
    hello(&s);
    open_obj(&s, "seed.batch", PT_KIND_EVENT, 0, 0);
    for (int i = 0; i < 150; i++) {
        op(&s, i % 2 ? PYTHREAD__OP__OP_EVENT_CLEAR : PYTHREAD__OP__OP_EVENT_SET, 1, -1);
        op(&s, PYTHREAD__OP__OP_STATE, 1, -1);
    }
    s.buf[s.len++] = 0x60;
    save(argv[1], "pipelined-batch", &s);
    return 0;
}
