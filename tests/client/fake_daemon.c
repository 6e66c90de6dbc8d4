#include "fake_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pythread.h"
#include "wire.h"

#define MAX_CONNS 16
#define MAX_LOG   1024
#define MAX_HELD  64
#define BUF_CAP   (PT_WIRE_HEADER + PT_WIRE_MAX_FRAME)

typedef struct conn {
    int fd;
    pid_t pid;
    uint32_t next_handle;
    uint64_t next_token;
    size_t len;
    uint8_t buf[BUF_CAP];
} conn;

typedef struct held {
    int conn;
    fake_req req;
} held;

struct fake {
    pthread_mutex_t mu;
    pthread_t thread;
    int lfd;
    int wake[2];
    int stop;
    int drop;
    char dir[64];
    char path[108];
    conn *conns[MAX_CONNS];
    int nconns; /* accepted in all */
    /* knobs */
    int hold_op;
    int answer_held;
    held held[MAX_HELD];
    int nheld;
    int32_t hello_status;
    char hello_message[256];
    uint32_t hello_version;
    int garbage_op;
    int goodbye_op;
    char goodbye_message[256];
    int run_action;
    uint32_t owner_depth;
    int locked;
    /* log */
    fake_req log[MAX_LOG];
    int nlog;
    _Alignas(16) uint8_t arena_mem[4 * PT_WIRE_MAX_FRAME]; /* the arena aligns offsets only */
    pt_wire_arena arena;
};

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void send_response(int fd, const Pythread__Response *resp)
{
    uint8_t frame[4096];
    size_t size = pt_wire_response_frame_size(resp);

    if (size > sizeof(frame))
        abort();
    pt_wire_response_frame_pack(resp, frame);
    write_all(fd, frame, size);
}

static void conn_close(fake *f, int i)
{
    close(f->conns[i]->fd);
    free(f->conns[i]);
    f->conns[i] = NULL;
}

static void log_request(fake *f, int ci, const Pythread__Request *r, fake_req *out)
{
    memset(out, 0, sizeof(*out));
    out->conn = ci;
    out->pid = f->conns[ci]->pid;
    out->op = r->op;
    out->id = r->id;
    out->thread = r->thread;
    out->handle = r->handle;
    out->flags = pt_wire_open_args(r)->flags;
    out->mode = pt_wire_open_args(r)->mode;
    out->lock_handle = pt_wire_open_args(r)->lock_handle;
    out->count = r->count;
    out->has_count = r->has_count;
    out->kind = pt_wire_open_args(r)->kind;
    out->blocking = r->blocking;
    out->has_action = r->has_action;
    out->status = r->status;
    out->version = pt_wire_hello_args(r)->version;
    out->timeout = r->timeout;
    if (r->has_name)
        snprintf(out->name, sizeof(out->name), "%.*s", (int)r->name.len,
                 (const char *)r->name.data);
    if (pt_wire_hello_args(r)->client_name)
        snprintf(out->client_name, sizeof(out->client_name), "%s",
                 pt_wire_hello_args(r)->client_name);
    if (f->nlog < MAX_LOG)
        f->log[f->nlog++] = *out;
}

/* The answer a well-behaved daemon would give, in the simplest terms. */
static void answer(fake *f, int ci, const fake_req *q)
{
    conn *c = f->conns[ci];
    Pythread__Response resp = PYTHREAD__RESPONSE__INIT;
    Pythread__State st = PYTHREAD__STATE__INIT;
    Pythread__HelloInfo hello = PYTHREAD__HELLO_INFO__INIT;

    resp.id = q->id;
    resp.has_status = 1;
    resp.has_ok = 1;
    resp.ok = 1;
    switch (q->op) {
    case PYTHREAD__OP__OP_HELLO:
        resp.status = f->hello_status;
        if (f->hello_message[0])
            resp.message = f->hello_message;
        /* Version 0 plays a protocol-1 daemon, which sent no HelloInfo. */
        resp.hello = f->hello_version ? &hello : NULL;
        hello.has_version = 1;
        hello.version = f->hello_version;
        hello.has_session = 1;
        hello.session = (uint64_t)ci + 1;
        hello.has_max_frame = 1;
        hello.max_frame = PT_WIRE_MAX_FRAME;
        break;
    case PYTHREAD__OP__OP_OPEN:
        resp.has_handle = 1;
        resp.handle = ++c->next_handle;
        resp.has_created = 1;
        resp.created = 1;
        st.has_kind = 1;
        st.kind = q->kind;
        st.has_parties = 1;
        st.parties = q->kind == PT_KIND_BARRIER ? 3 : 0;
        resp.state = &st;
        break;
    case PYTHREAD__OP__OP_ACQUIRE:
        resp.has_token = 1;
        resp.token = ++c->next_token;
        break;
    case PYTHREAD__OP__OP_STATE:
        st.has_locked = 1;
        st.locked = f->locked;
        st.has_owner_depth = 1;
        st.owner_depth = f->owner_depth;
        st.has_value = 1;
        st.value = 5;
        st.has_is_set = 1;
        st.is_set = 1;
        st.has_parties = 1;
        st.parties = 3;
        st.has_n_waiting = 1;
        st.n_waiting = 2;
        st.has_broken = 1;
        st.broken = 0;
        resp.state = &st;
        break;
    case PYTHREAD__OP__OP_NOTIFY:
        resp.has_value = 1;
        resp.value = q->count;
        break;
    case PYTHREAD__OP__OP_BARRIER_WAIT:
        resp.has_value = 1;
        resp.value = 1;
        if (f->run_action && q->has_action) {
            resp.has_run_action = 1;
            resp.run_action = 1;
        }
        break;
    case PYTHREAD__OP__OP_BARRIER_ACTION_DONE:
        if (q->status) {
            resp.status = PT_EBROKEN;
            resp.message = "Barrier 'b': wait: the action failed; the barrier is broken";
        } else {
            resp.has_value = 1;
            resp.value = 2;
        }
        break;
    default:
        break;
    }
    send_response(c->fd, &resp);
}

static void goodbye(fake *f, int ci)
{
    Pythread__Response resp = PYTHREAD__RESPONSE__INIT;

    resp.id = 0;
    resp.has_status = 1;
    resp.status = PT_EPROTO;
    resp.message = f->goodbye_message;
    send_response(f->conns[ci]->fd, &resp);
    conn_close(f, ci);
}

static void garbage(fake *f, int ci)
{
    static const uint8_t junk[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};

    write_all(f->conns[ci]->fd, junk, sizeof(junk));
}

/* One request from connection ci: log it, then answer, hold or misbehave. */
static int handle_request(fake *f, int ci, const uint8_t *body, size_t len)
{
    char err[128];
    Pythread__Request *r;
    fake_req q;

    pt_wire_arena_reset(&f->arena);
    r = pt_wire_request_decode(&f->arena, body, len, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "fake daemon: %s\n", err);
        conn_close(f, ci);
        return -1;
    }
    pthread_mutex_lock(&f->mu);
    log_request(f, ci, r, &q);
    if (q.op == f->goodbye_op) {
        goodbye(f, ci);
        pthread_mutex_unlock(&f->mu);
        return -1;
    }
    if (q.op == f->garbage_op)
        garbage(f, ci);
    else if (q.op == f->hold_op && f->nheld < MAX_HELD)
        f->held[f->nheld++] = (held){.conn = ci, .req = q};
    else
        answer(f, ci, &q);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void conn_read(fake *f, int ci)
{
    conn *c = f->conns[ci];
    ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    size_t off = 0;

    if (n <= 0) {
        pthread_mutex_lock(&f->mu);
        conn_close(f, ci);
        pthread_mutex_unlock(&f->mu);
        return;
    }
    c->len += (size_t)n;
    while (c->len - off >= PT_WIRE_HEADER) {
        uint32_t len = pt_wire_len_get(c->buf + off);

        if (c->len - off - PT_WIRE_HEADER < len)
            break;
        if (handle_request(f, ci, c->buf + off + PT_WIRE_HEADER, len) < 0)
            return;
        off += PT_WIRE_HEADER + len;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static void conn_accept(fake *f)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    conn *c;
    int i;

    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    c->fd = fd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
        c->pid = cred.pid;
    pthread_mutex_lock(&f->mu);
    i = f->nconns++;
    if (i < MAX_CONNS) {
        f->conns[i] = c;
    } else {
        free(c);
        close(fd);
    }
    pthread_mutex_unlock(&f->mu);
}

/* Commands from the test thread run here, on the fake's own thread. */
static void commands(fake *f)
{
    int i;

    pthread_mutex_lock(&f->mu);
    if (f->answer_held) {
        while (f->nheld > 0) {
            held *h = &f->held[--f->nheld];

            if (f->conns[h->conn])
                answer(f, h->conn, &h->req);
        }
        f->answer_held = 0;
    }
    if (f->drop) {
        for (i = 0; i < MAX_CONNS; i++) {
            if (f->conns[i])
                conn_close(f, i);
        }
        f->nheld = 0;
        f->drop = 0;
    }
    pthread_mutex_unlock(&f->mu);
}

static void *fake_main(void *arg)
{
    fake *f = arg;

    for (;;) {
        struct pollfd pfd[MAX_CONNS + 2];
        int who[MAX_CONNS + 2];
        int n = 0, i;
        char b[64];

        pfd[n] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
        who[n++] = -2;
        pfd[n] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        who[n++] = -1;
        pthread_mutex_lock(&f->mu);
        if (f->stop) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        for (i = 0; i < MAX_CONNS; i++) {
            if (f->conns[i]) {
                pfd[n] = (struct pollfd){.fd = f->conns[i]->fd, .events = POLLIN};
                who[n++] = i;
            }
        }
        pthread_mutex_unlock(&f->mu);
        if (poll(pfd, (nfds_t)n, -1) < 0)
            continue;
        for (i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (who[i] == -2) {
                if (read(f->wake[0], b, sizeof(b)) < 0)
                    continue;
                commands(f);
                break; /* the connection set may have changed */
            }
            if (who[i] == -1)
                conn_accept(f);
            else if (f->conns[who[i]])
                conn_read(f, who[i]);
        }
    }
    return NULL;
}

static void wake(fake *f)
{
    if (write(f->wake[1], "x", 1) < 0)
        abort();
}

fake *fake_start(void)
{
    fake *f = calloc(1, sizeof(*f));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/ptfakeXXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        abort();
    snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(f->lfd, 16) < 0 || pipe2(f->wake, O_CLOEXEC) < 0)
        abort();
    pthread_mutex_init(&f->mu, NULL);
    pt_wire_arena_init(&f->arena, f->arena_mem, sizeof(f->arena_mem));
    f->hello_version = PT_PROTOCOL_VERSION;
    f->owner_depth = 1;
    f->locked = 1;
    pthread_create(&f->thread, NULL, fake_main, f);
    return f;
}

void fake_stop(fake *f)
{
    int i;

    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_mutex_unlock(&f->mu);
    wake(f);
    pthread_join(f->thread, NULL);
    for (i = 0; i < MAX_CONNS; i++) {
        if (f->conns[i])
            conn_close(f, i);
    }
    close(f->lfd);
    close(f->wake[0]);
    close(f->wake[1]);
    unlink(f->path);
    rmdir(f->dir);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const char *fake_path(const fake *f)
{
    return f->path;
}

#define FAKE_SET(stmt)                                                                             \
    do {                                                                                           \
        pthread_mutex_lock(&f->mu);                                                                \
        stmt;                                                                                      \
        pthread_mutex_unlock(&f->mu);                                                              \
    } while (0)

void fake_hold(fake *f, int op)
{
    FAKE_SET(f->hold_op = op);
}

void fake_answer_held(fake *f)
{
    FAKE_SET(f->answer_held = 1);
    wake(f);
}

void fake_drop(fake *f)
{
    FAKE_SET(f->drop = 1);
    wake(f);
}

void fake_set_hello(fake *f, int32_t status, const char *message, uint32_t version)
{
    FAKE_SET(f->hello_status = status;
             snprintf(f->hello_message, sizeof(f->hello_message), "%s", message ? message : "");
             f->hello_version = version);
}

void fake_set_garbage(fake *f, int op)
{
    FAKE_SET(f->garbage_op = op);
}

void fake_set_goodbye(fake *f, int op, const char *message)
{
    FAKE_SET(f->goodbye_op = op;
             snprintf(f->goodbye_message, sizeof(f->goodbye_message), "%s", message));
}

void fake_set_run_action(fake *f, int on)
{
    FAKE_SET(f->run_action = on);
}

void fake_set_owner(fake *f, uint32_t owner_depth, int locked)
{
    FAKE_SET(f->owner_depth = owner_depth; f->locked = locked);
}

int fake_count(fake *f, int op)
{
    int i, n = 0;

    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->nlog; i++)
        n += !op || f->log[i].op == op;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int fake_wait_count(fake *f, int op, int n, double timeout_s)
{
    struct timespec start, now, pause = {0, 1000000};

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (fake_count(f, op) >= n)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
            timeout_s)
            return -1;
        nanosleep(&pause, NULL);
    }
}

int fake_get(fake *f, int i, fake_req *out)
{
    int r = -1;

    pthread_mutex_lock(&f->mu);
    if (i >= 0 && i < f->nlog) {
        *out = f->log[i];
        r = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

int fake_find(fake *f, int op, int from)
{
    int i, r = -1;

    pthread_mutex_lock(&f->mu);
    for (i = from < 0 ? 0 : from; i < f->nlog; i++) {
        if (f->log[i].op == op) {
            r = i;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

int fake_conns(fake *f)
{
    int n;

    pthread_mutex_lock(&f->mu);
    n = f->nconns;
    pthread_mutex_unlock(&f->mu);
    return n;
}
