/*
 * bench_echo.c - the transport's limit as a reusable piece: a forked echo
 * server on a temporary AF_UNIX socket answering every request of the size
 * a pythread Lock acquire has with an answer of the size its reply has.
 * bench_raw measures it alone; bench_pythread takes turns with it, so the
 * ratios against it come from the same moments of a noisy machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "wire.h"

size_t bench_req_size, bench_resp_size;

/* Frame sizes of a Lock acquire and its answer, packed as the client and
 * the daemon pack them (a realistic thread id and fencing token). */
void bench_frame_sizes(void)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response resp = PYTHREAD__RESPONSE__INIT;

    req.id = 123456;
    req.op = PYTHREAD__OP__OP_ACQUIRE;
    req.has_thread = 1;
    req.thread = 1234567;
    req.has_handle = 1;
    req.handle = 3;
    req.has_blocking = 1;
    req.blocking = 1;
    req.has_timeout = 1;
    req.timeout = -1;
    resp.id = 123456;
    resp.has_ok = 1;
    resp.ok = 1;
    resp.has_token = 1;
    resp.token = 1763800000000000000ull; /* tokens start at the daemon's start time in ns */
    bench_req_size = pt_wire_request_frame_size(&req);
    bench_resp_size = pt_wire_response_frame_size(&resp);
}

void bench_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            exit(n == 0 ? 0 : 1);
        p += n;
        len -= (size_t)n;
    }
}

void bench_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die("echo: write failed: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* The server: for each request of bench_req_size bytes, one answer of bench_resp_size. */
static void echo_serve(int lfd) __attribute__((noreturn));
static void echo_serve(int lfd)
{
    char in[BENCH_PIPE_DEPTH * 256], out[BENCH_PIPE_DEPTH * 256];
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0)
        bench_die("echo: accept: %s", strerror(errno));
    memset(out, 0x5a, sizeof(out));
    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));
        size_t got, part;

        if (n <= 0)
            _exit(0);
        got = (size_t)n;
        /* Whole requests only: read the rest of a partial one. */
        part = got % bench_req_size;
        if (part) {
            bench_read_full(fd, in + got, bench_req_size - part);
            got += bench_req_size - part;
        }
        bench_write_full(fd, out, got / bench_req_size * bench_resp_size);
    }
}

/* Fork an echo server on a temp socket; returns the connected fd. */
int bench_echo_start(pid_t *child)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int lfd, fd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/pt-bench-echo-%ld.sock", (long)getpid());
    unlink(sa.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
        bench_die("echo: cannot listen on %s: %s", sa.sun_path, strerror(errno));
    *child = fork();
    if (*child < 0)
        bench_die("echo: fork: %s", strerror(errno));
    if (*child == 0)
        echo_serve(lfd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        bench_die("echo: cannot connect to %s: %s", sa.sun_path, strerror(errno));
    close(lfd);
    unlink(sa.sun_path);
    return fd;
}

void bench_echo_stop(int fd, pid_t child)
{
    close(fd);
    waitpid(child, NULL, 0);
}
