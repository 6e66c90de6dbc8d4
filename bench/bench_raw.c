/*
 * bench_raw.c - the transport's limit and the kernel's own primitive, the
 * floor every pythread figure is compared with.
 *
 *   bench_raw rtt ITERS        blocking echo over a socketpair-free AF_UNIX
 *                              stream (a real listening socket, as pythread
 *                              uses), request and answer of the sizes a
 *                              pythread Lock acquire and its answer have
 *   bench_raw pipeline ITERS   64 such requests per write, time per request
 *   bench_raw sem ITERS        POSIX named semaphores, cross-process ping-pong
 *
 * The echo server is a forked child doing read-then-write, so the figure is
 * two context switches and two socket copies per round trip: nothing a
 * daemon could do faster on the same transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "wire.h"

static void bench_rtt(long iters)
{
    char req[256], resp[256], extra[64];
    bench_samples s;
    pid_t child;
    int fd = bench_echo_start(&child);
    long i;

    memset(req, 0xa5, sizeof(req));
    bench_samples_init(&s, (size_t)iters);
    for (i = -iters / 10; i < iters; i++) { /* a tenth to warm up */
        uint64_t t0 = bench_now_ns();

        bench_write_full(fd, req, bench_req_size);
        bench_read_full(fd, resp, bench_resp_size);
        if (i >= 0)
            bench_samples_add(&s, bench_now_ns() - t0);
    }
    snprintf(extra, sizeof(extra), "req_bytes=%zu resp_bytes=%zu", bench_req_size, bench_resp_size);
    bench_report("raw.rtt", &s, extra);
    bench_samples_free(&s);
    bench_echo_stop(fd, child);
}

static void bench_pipeline(long iters)
{
    static char req[BENCH_PIPE_DEPTH * 256], resp[BENCH_PIPE_DEPTH * 256];
    bench_samples s;
    pid_t child;
    int fd = bench_echo_start(&child);
    long i, batches = iters / BENCH_PIPE_DEPTH + 1;

    bench_samples_init(&s, (size_t)batches);
    for (i = -batches / 10; i < batches; i++) {
        uint64_t t0 = bench_now_ns();

        bench_write_full(fd, req, BENCH_PIPE_DEPTH * bench_req_size);
        bench_read_full(fd, resp, BENCH_PIPE_DEPTH * bench_resp_size);
        if (i >= 0)
            bench_samples_add(&s, (bench_now_ns() - t0) / BENCH_PIPE_DEPTH);
    }
    bench_report("raw.pipelined64", &s, NULL);
    bench_samples_free(&s);
    bench_echo_stop(fd, child);
}

/* Two named semaphores, a child that posts back each one it gets. */
static void bench_sem(long iters)
{
    char ping_name[64], pong_name[64];
    bench_samples s;
    sem_t *ping, *pong;
    pid_t child;
    long i;

    snprintf(ping_name, sizeof(ping_name), "/pt-bench-ping-%ld", (long)getpid());
    snprintf(pong_name, sizeof(pong_name), "/pt-bench-pong-%ld", (long)getpid());
    ping = sem_open(ping_name, O_CREAT | O_EXCL, 0600, 0);
    pong = sem_open(pong_name, O_CREAT | O_EXCL, 0600, 0);
    if (ping == SEM_FAILED || pong == SEM_FAILED)
        bench_die("sem_open: %s", strerror(errno));
    sem_unlink(ping_name);
    sem_unlink(pong_name);
    child = fork();
    if (child == 0) {
        for (;;) {
            while (sem_wait(ping) < 0 && errno == EINTR)
                ;
            sem_post(pong);
        }
    }
    bench_samples_init(&s, (size_t)iters);
    for (i = -iters / 10; i < iters; i++) {
        uint64_t t0 = bench_now_ns();

        sem_post(ping);
        while (sem_wait(pong) < 0 && errno == EINTR)
            ;
        if (i >= 0)
            bench_samples_add(&s, bench_now_ns() - t0);
    }
    bench_report("posix_sem.pingpong", &s, NULL);
    bench_samples_free(&s);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

int main(int argc, char **argv)
{
    long iters;

    if (argc != 3) {
        fprintf(stderr, "usage: bench_raw rtt|pipeline|sem ITERATIONS\n");
        return 2;
    }
    iters = bench_arg(argv[2], "ITERATIONS");
    bench_frame_sizes();
    if (!strcmp(argv[1], "rtt"))
        bench_rtt(iters);
    else if (!strcmp(argv[1], "pipeline"))
        bench_pipeline(iters);
    else if (!strcmp(argv[1], "sem"))
        bench_sem(iters);
    else
        bench_die("unknown mode '%s'; use rtt, pipeline or sem", argv[1]);
    return 0;
}
