/*
 * bench_redis.c - Redis used as a lock, the way people do: SET key value NX
 * PX ttl to take it, DEL to give it back, over Redis's Unix socket.
 *
 *   bench_redis SOCKET ITERS
 *
 * Speaks RESP directly (no client library to install): each command is one
 * write and its answer one read, as a blocking client does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

static const char cmd_set[] = "*6\r\n$3\r\nSET\r\n$10\r\nbench.lock\r\n$5\r\ntoken\r\n$2\r\nNX\r\n$"
                              "2\r\nPX\r\n$5\r\n10000\r\n";
static const char cmd_del[] = "*2\r\n$3\r\nDEL\r\n$10\r\nbench.lock\r\n";

/* Send one command and read its one-line answer; the answer's first bytes
 * must be want ("+OK", ":1"). */
static void command(int fd, const char *cmd, size_t len, const char *want)
{
    char buf[256];
    size_t got = 0;

    if (write(fd, cmd, len) != (ssize_t)len)
        bench_die("redis: write failed: %s", strerror(errno));
    while (got < 2 || buf[got - 1] != '\n') {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

        if (n <= 0)
            bench_die("redis: connection closed: %s", n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (strncmp(buf, want, strlen(want)))
        bench_die("redis: expected %s, got %s", want, buf);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    bench_samples s;
    long iters, i;
    int fd;

    if (argc != 3) {
        fprintf(stderr, "usage: bench_redis SOCKET ITERATIONS\n");
        return 2;
    }
    iters = bench_arg(argv[2], "ITERATIONS");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        bench_die("redis: cannot connect to %s: %s", argv[1], strerror(errno));
    bench_samples_init(&s, (size_t)iters);
    for (i = -iters / 10; i < iters; i++) {
        uint64_t t0 = bench_now_ns();

        command(fd, cmd_set, sizeof(cmd_set) - 1, "+OK");
        command(fd, cmd_del, sizeof(cmd_del) - 1, ":1");
        if (i >= 0)
            bench_samples_add(&s, bench_now_ns() - t0);
    }
    bench_report("redis.lock_pair", &s, NULL);
    bench_samples_free(&s);
    close(fd);
    return 0;
}
