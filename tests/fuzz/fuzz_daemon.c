/*
 * fuzz_daemon.c - libFuzzer target: arbitrary bytes as the stream one client
 * sends to pythreadd.
 *
 * Each input gets a fresh daemon (event base, core, decode arena) and one
 * session on a socketpair. The bytes go through the daemon's own frame
 * cutter, decoder and dispatch, in several writes so frames are split at
 * odd places, while the answers are read and thrown away; then the peer
 * hangs up and the session ends, giving back whatever the requests took.
 * Every connection must then be gone and everything freed: a leak, a hang
 * (a session that will not end) or any sanitizer report is a finding.
 *
 * Built with -fsanitize=fuzzer in the fuzz build; in the ordinary build the
 * same code is linked with a main() that replays the seed corpus, so the
 * target and the seeds cannot rot.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The daemon's logging is silenced: a fuzz run makes millions of refused
 * requests, and each would print a warning. */
void pt_log(int priority, const char *fmt, ...)
{
    (void)priority;
    (void)fmt;
}

void pt_log_set_verbose(int verbose)
{
    (void)verbose;
}

/* Loop passes with nothing to do before the peer is considered done. */
enum { FUZZ_IDLE_PASSES = 3, FUZZ_MAX_PASSES = 10000 };

static int fuzz_daemon_init(pt_daemon *d, void **arena)
{
    size_t cap;

    memset(d, 0, sizeof *d);
    TAILQ_INIT(&d->conns);
    d->max_frame = PT_WIRE_MAX_FRAME;
    d->max_sessions = 16;
    d->max_sessions_per_uid = 16;
    d->max_output = PT_DAEMON_OUTPUT_MIN;
    d->stall_timeout = PT_DAEMON_STALL_SEC;
    d->frame_timeout = PT_DAEMON_FRAME_SEC;
    cap = 4 * (size_t)d->max_frame;
    d->base = event_base_new();
    *arena = malloc(cap);
    if (!d->base || !*arena)
        return -1;
    d->arena_buf = *arena;
    pt_wire_arena_init(&d->arena, *arena, cap);
    d->core = pt_core_new(NULL, pt_dispatch_sink, d);
    return d->core && pt_daemon_timer_init(d) == 0 ? 0 : -1;
}

static void fuzz_daemon_free(pt_daemon *d)
{
    pt_conn_close_all(d);
    if (d->core)
        pt_core_free(d->core);
    pt_conn_free_all(d);
    if (d->timer)
        event_free(d->timer);
    if (d->base)
        event_base_free(d->base);
    free(d->arena_buf);
}

static size_t answered; /* bytes of answers, for the replay's summary */

/* Read and drop whatever the daemon answered; 1 if anything came. */
static int drain(int fd)
{
    char buf[16384];
    ssize_t n;
    int got = 0;

    while ((n = read(fd, buf, sizeof buf)) > 0) {
        answered += (size_t)n;
        got = 1;
    }
    return got;
}

/* Run the loop until a few passes in a row bring nothing. */
static void settle(pt_daemon *d, int peer)
{
    int idle = 0;

    for (int i = 0; i < FUZZ_MAX_PASSES && idle < FUZZ_IDLE_PASSES; i++) {
        event_base_loop(d->base, EVLOOP_NONBLOCK);
        idle = drain(peer) ? 0 : idle + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_daemon d;
    void *arena = NULL;
    int sv[2];
    size_t off = 0, step;

    /* As in pythreadd: a peer gone mid-write is EPIPE, not our death. */
    signal(SIGPIPE, SIG_IGN);
    if (fuzz_daemon_init(&d, &arena) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        fprintf(stderr, "fuzz_daemon: cannot set up: %s\n", strerror(errno));
        abort();
    }
    pt_conn_accept(NULL, sv[0], NULL, 0, &d);
    /* The last byte, when there is one, sets how the stream is cut (the
     * first is nearly always 0, the top of a length). */
    step = size ? 1 + data[size - 1] % 97u * 41u : 1;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        ssize_t w = write(sv[1], data + off, n);

        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the daemon closed the session */
        settle(&d, sv[1]);
    }
    close(sv[1]);
    for (int i = 0; i < FUZZ_MAX_PASSES && d.nconns > 0; i++)
        event_base_loop(d.base, EVLOOP_NONBLOCK);
    if (d.nconns > 0) {
        fprintf(stderr, "fuzz_daemon: the session did not end after its peer hung up\n");
        abort();
    }
    fuzz_daemon_free(&d);
    return 0;
}

#ifdef PT_FUZZ_REPLAY
/* Ordinary build: run every file named on the command line once. */
int main(int argc, char **argv)
{
    int n = 0;

    for (int i = 1; i < argc; i++) {
        static uint8_t buf[1 << 20];
        FILE *f = fopen(argv[i], "rb");
        size_t len;

        if (!f) {
            fprintf(stderr, "fuzz_daemon: cannot open %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        n++;
    }
    printf("fuzz_daemon: replayed %d inputs, %zu bytes of answers\n", n, answered);
    return n > 0 ? 0 : 1;
}
#endif
