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
 *   bench_raw throughput PROCS MILLISECONDS
 *                              PROCS processes doing blocking round trips
 *                              against one epoll echo server; round trips
 *                              per second and the server's CPU per round
 *                              trip: what a daemon's read, write and wake-up
 *                              of its client cost the kernel, with no work
 *                              of its own
 *
 * The echo server is a forked child doing read-then-write, so the figure is
 * two context switches and two socket copies per round trip: nothing a
 * daemon could do faster on the same transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
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

/* The echo server of the throughput mode: one thread, one epoll set, every
 * connection non-blocking, one read and one write per readable socket, as a
 * daemon serving one request per client at a time would do. */
static void epoll_serve(int lfd, int procs) __attribute__((noreturn));
static void epoll_serve(int lfd, int procs)
{
    static char in[4096], out[4096];
    struct epoll_event ev[64];
    int ep = epoll_create1(0), open = 0;

    for (int i = 0; i < procs; i++) {
        struct epoll_event e = {.events = EPOLLIN};
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

        if (fd < 0)
            bench_die("echo: accept: %s", strerror(errno));
        e.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        open++;
    }
    while (open > 0) {
        int n = epoll_wait(ep, ev, 64, -1);

        for (int i = 0; i < n; i++) {
            ssize_t got = read(ev[i].data.fd, in, sizeof(in));

            if (got == 0) {
                close(ev[i].data.fd);
                open--;
            } else if (got > 0 && write(ev[i].data.fd, out,
                                        (size_t)got / bench_req_size * bench_resp_size) < 0) {
                bench_die("echo: write: %s", strerror(errno));
            }
        }
    }
    _exit(0);
}

typedef struct tp_shared {
    atomic_int ready, go, stop;
    uint64_t count[64];
} tp_shared;

static void tp_worker(tp_shared *sh, const struct sockaddr_un *sa, int me)
{
    char req[256], resp[256];
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint64_t n = 0;

    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        bench_die("throughput: connect: %s", strerror(errno));
    memset(req, 0xa5, sizeof(req));
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go))
        sched_yield();
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        bench_write_full(fd, req, bench_req_size);
        bench_read_full(fd, resp, bench_resp_size);
        n++;
    }
    sh->count[me] = n;
    _exit(0);
}

static void bench_throughput(int procs, long ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    tp_shared *sh =
        mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t server, pids[64];
    uint64_t t0, t1, cpu0, cpu1, trips = 0;
    int lfd;

    if (sh == MAP_FAILED || procs < 1 || procs > 64)
        bench_die("throughput: PROCS must be 1..64");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/pt-bench-tp-%ld.sock", (long)getpid());
    unlink(sa.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0)
        bench_die("throughput: cannot listen on %s: %s", sa.sun_path, strerror(errno));
    if ((server = fork()) == 0)
        epoll_serve(lfd, procs);
    close(lfd);
    for (int w = 0; w < procs; w++)
        if ((pids[w] = fork()) == 0)
            tp_worker(sh, &sa, w);
    while (atomic_load(&sh->ready) < procs)
        sched_yield();
    unlink(sa.sun_path);
    cpu0 = bench_proc_cpu_ns(server);
    t0 = bench_now_ns();
    atomic_store(&sh->go, 1);
    poll(NULL, 0, (int)ms);
    atomic_store(&sh->stop, 1);
    for (int w = 0; w < procs; w++)
        waitpid(pids[w], NULL, 0);
    t1 = bench_now_ns();
    cpu1 = bench_proc_cpu_ns(server);
    waitpid(server, NULL, 0);
    for (int w = 0; w < procs; w++)
        trips += sh->count[w];
    /* Two round trips make one pair, as a Lock acquire+release. */
    printf("RESULT raw.throughput%d pairs_per_s=%.0f cpu_ns_per_op=%.0f\n", procs,
           (double)trips / 2 * 1e9 / (double)(t1 - t0),
           trips ? (double)(cpu1 - cpu0) / (double)trips : 0.0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long iters;

    if (argc == 4 && !strcmp(argv[1], "throughput")) {
        bench_frame_sizes();
        bench_throughput((int)bench_arg(argv[2], "PROCS"), bench_arg(argv[3], "MILLISECONDS"));
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: bench_raw rtt|pipeline|sem ITERATIONS\n"
                        "       bench_raw throughput PROCS MILLISECONDS\n");
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
