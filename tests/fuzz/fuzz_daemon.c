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

#include "inproc_daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Loop passes with nothing to do before the peer is considered done. */
enum { FUZZ_IDLE_PASSES = 3, FUZZ_MAX_PASSES = 10000 };

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
    size_t off = 0, step;
    int peer;

    /* As in pythreadd: a peer gone mid-write is EPIPE, not our death. */
    signal(SIGPIPE, SIG_IGN);
    if (inproc_daemon_init(&d) < 0 || (peer = inproc_session(&d)) < 0) {
        fprintf(stderr, "fuzz_daemon: cannot set up: %s\n", strerror(errno));
        abort();
    }
    /* The last byte, when there is one, sets how the stream is cut (the
     * first is nearly always 0, the top of a length). */
    step = size ? 1 + data[size - 1] % 97u * 41u : 1;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        ssize_t w = write(peer, data + off, n);

        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the daemon closed the session */
        settle(&d, peer);
    }
    close(peer);
    for (int i = 0; i < FUZZ_MAX_PASSES && d.nconns > 0; i++)
        event_base_loop(d.base, EVLOOP_NONBLOCK);
    if (d.nconns > 0) {
        fprintf(stderr, "fuzz_daemon: the session did not end after its peer hung up\n");
        abort();
    }
    inproc_daemon_free(&d);
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
