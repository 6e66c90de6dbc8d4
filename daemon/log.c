/*
 * log.c - "<N>message\n" lines on standard error, that never stop the loop.
 *
 * Two things a peer must not be able to do with the log: flood it (a peer
 * that repeats a mistake thousands of times a second), and stop the daemon
 * through it (a log reader that stalls, such as a full pipe nobody reads,
 * would block write(2) and with it every session). So:
 *
 * - Messages about what a peer did go through pt_log_peer, limited per user
 *   (the uid, so a peer cannot reset its count by reconnecting): at most
 *   --log-burst lines per --log-interval; the rest are counted, and one
 *   "N messages suppressed" line per user says how many at the end of the
 *   interval.
 * - Nothing waits for the reader. A pipe or terminal is written through a
 *   descriptor of our own opened from /proc/self/fd/2 with O_NONBLOCK (the
 *   one we inherited may be shared with other processes, whose mode must
 *   not change), a socket (journald's stream) with MSG_DONTWAIT, a file as
 *   it is. A line that does not fit is dropped and counted, and the count
 *   comes out as one "N log lines dropped" line before the next line that
 *   fits; the rest of a line half sent to a socket is sent first, so lines
 *   stay whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"

#define LINE_MAX_BYTES 1024
/* Users followed at once by the rate limit; past that, the one followed
 * longest gives its place up (after its summary line). */
#define PEER_SLOTS 64

static int log_max_priority = LOG_INFO;

void pt_log_set_verbose(int verbose)
{
    log_max_priority = verbose ? LOG_DEBUG : LOG_INFO;
}

/* ------------------------------------------------------------------ */
/* Writing without waiting                                             */
/* ------------------------------------------------------------------ */

enum sink_kind { SINK_UNSET, SINK_FILE, SINK_PIPE, SINK_SOCKET, SINK_POLL };

static struct {
    enum sink_kind kind;
    int fd;
    unsigned long long dropped; /* lines dropped since the last one written */
    char rest[LINE_MAX_BYTES];  /* the unsent end of a line half sent */
    size_t rest_len;
    int plain; /* a person reads it: no "<N>" prefix */
} sink;

/* systemd names the journal stream it gave us as "DEV:INO"; a terminal
 * inherited by a unit (StandardError=tty) is not the journal. */
static int stderr_is_journal(const struct stat *st)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;

    return v && sscanf(v, "%llu:%llu%c", &dev, &ino, &end) == 2 &&
           dev == (unsigned long long)st->st_dev && ino == (unsigned long long)st->st_ino;
}

/* How to write to standard error without blocking, and in what form;
 * decided at the first line. The "<N>" priority prefix is for journald
 * (and for programs that read the log, as the tests do); a person running
 * pythreadd in a terminal gets plain lines, with a word for warnings and
 * errors. */
static void sink_open(void)
{
    struct stat st;

    sink.fd = STDERR_FILENO;
    sink.kind = SINK_FILE;
    if (fstat(STDERR_FILENO, &st) < 0)
        return;
    sink.plain = isatty(STDERR_FILENO) && !stderr_is_journal(&st);
    if (S_ISSOCK(st.st_mode)) {
        sink.kind = SINK_SOCKET;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

        if (fd >= 0) {
            sink.fd = fd;
            sink.kind = SINK_PIPE;
        } else {
            /* Without /proc: ask first whether there is room. A pipe with
             * room for a page takes a line whole. */
            sink.kind = SINK_POLL;
        }
    }
}

/* One attempt at writing buf: the bytes written, or -1 when none could be
 * (the reader is behind, or gone). */
static ssize_t sink_write(const char *buf, size_t len)
{
    struct pollfd p = {sink.fd, POLLOUT, 0};
    ssize_t n;

    do {
        if (sink.kind == SINK_SOCKET)
            n = send(sink.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        else if (sink.kind == SINK_POLL && (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)))
            return -1;
        else
            n = write(sink.fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : n;
}

/* Write a whole line or none of it; only a socket can take part of one,
 * and then keeps the rest for later. 0 when it went out (or its start). */
static int sink_line(const char *line, size_t len)
{
    ssize_t n = sink_write(line, len);

    if (n < 0)
        return -1;
    if ((size_t)n < len) {
        sink.rest_len = len - (size_t)n;
        memcpy(sink.rest, line + n, sink.rest_len);
    }
    return 0;
}

/* The rest of a line half sent, then the count of lines dropped; 0 when
 * the way is clear for a new line. */
static int sink_catch_up(void)
{
    char line[160];
    int len;

    if (sink.rest_len) {
        ssize_t n = sink_write(sink.rest, sink.rest_len);

        if (n < 0)
            return -1;
        sink.rest_len -= (size_t)n;
        memmove(sink.rest, sink.rest + n, sink.rest_len);
        if (sink.rest_len)
            return -1;
    }
    if (!sink.dropped)
        return 0;
    len = snprintf(line, sizeof line,
                   "%spythreadd: %llu log lines dropped: standard error was not read fast "
                   "enough\n",
                   sink.plain ? "warning: " : "<4>", sink.dropped);
    if (sink_line(line, (size_t)len) < 0)
        return -1;
    sink.dropped = 0;
    return sink.rest_len ? -1 : 0;
}

static void sink_put(const char *line, size_t len)
{
    if (sink.kind == SINK_UNSET)
        sink_open();
    if (sink_catch_up() < 0 || sink_line(line, len) < 0)
        sink.dropped++;
}

/*
 * Messages quote what peers send (client names, reasons), so control
 * characters are replaced: one event stays one line and a peer cannot forge
 * log lines.
 */
static void log_sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            s[i] = '?';
    }
}

/* Build one "<N>message\n" line (sd-daemon style priority prefix, which
 * journald and our tests both read) and write it with one call, so lines
 * from a restarting unit never interleave mid-line. */
static void log_line(int priority, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES];
    int head, body;
    size_t len;

    if (sink.kind == SINK_UNSET)
        sink_open();
    if (!sink.plain)
        head = snprintf(line, sizeof line, "<%d>", priority);
    else if (priority <= LOG_ERR)
        head = snprintf(line, sizeof line, "error: ");
    else if (priority == LOG_WARNING)
        head = snprintf(line, sizeof line, "warning: ");
    else
        head = 0;
    body = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    if (body < 0)
        body = 0;
    len = (size_t)head + (size_t)body;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep the newline */
    log_sanitize(line + head, len - (size_t)head);
    line[len++] = '\n';
    sink_put(line, len);
}

void pt_log(int priority, const char *fmt, ...)
{
    va_list ap;

    if (priority > log_max_priority)
        return;
    va_start(ap, fmt);
    log_line(priority, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The limit per user                                                  */
/* ------------------------------------------------------------------ */

typedef struct peer_slot {
    uid_t uid;
    int used;
    uint64_t since;      /* start of its interval */
    uint32_t logged;     /* lines logged in it */
    uint64_t suppressed; /* lines left out of it */
} peer_slot;

static struct {
    uint32_t burst;
    uint64_t interval_ns;
    struct event *timer; /* at the end of the first interval with lines left out */
    peer_slot slot[PEER_SLOTS];
} limit = {PT_DAEMON_LOG_BURST, PT_DAEMON_LOG_INTERVAL_SEC *PT_NS_PER_SEC, NULL, {{0}}};

static void summary(peer_slot *s)
{
    if (!s->suppressed)
        return;
    pt_log(LOG_WARNING,
           "uid %u: %llu more messages about its sessions suppressed in %llu s (at most %u per "
           "user every %llu s; pythreadd --log-burst, --log-interval)",
           (unsigned)s->uid, (unsigned long long)s->suppressed,
           (unsigned long long)(limit.interval_ns / PT_NS_PER_SEC), limit.burst,
           (unsigned long long)(limit.interval_ns / PT_NS_PER_SEC));
    s->suppressed = 0;
}

/* The slot of uid: its own, a free one, or the one followed longest. */
static peer_slot *slot_of(uid_t uid)
{
    peer_slot *oldest = &limit.slot[0];

    for (int i = 0; i < PEER_SLOTS; i++) {
        peer_slot *s = &limit.slot[i];

        if (s->used && s->uid == uid)
            return s;
        if (!s->used || s->since < oldest->since)
            oldest = s;
        if (!s->used)
            break;
    }
    summary(oldest);
    memset(oldest, 0, sizeof *oldest);
    oldest->used = 1;
    oldest->uid = uid;
    return oldest;
}

/* Say, for every user whose interval is over, how many lines were left
 * out; then wait for the next interval to end, if lines are left out. */
static void limit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t now = pt_daemon_now(), next = 0;

    (void)fd;
    (void)what;
    (void)arg;
    for (int i = 0; i < PEER_SLOTS; i++) {
        peer_slot *s = &limit.slot[i];

        if (!s->suppressed)
            continue;
        if (now - s->since >= limit.interval_ns) {
            summary(s);
            s->logged = 0;
            s->since = now;
        } else if (!next || s->since + limit.interval_ns < next) {
            next = s->since + limit.interval_ns;
        }
    }
    if (next) {
        uint64_t us = (next - now) / 1000 + 1;
        struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

        evtimer_add(limit.timer, &tv);
    }
}

int pt_log_start(struct event_base *base, uint32_t burst, uint32_t interval)
{
    limit.burst = burst;
    limit.interval_ns = (uint64_t)interval * PT_NS_PER_SEC;
    limit.timer = evtimer_new(base, limit_timer_cb, NULL);
    return limit.timer ? 0 : -1;
}

void pt_log_stop(void)
{
    for (int i = 0; i < PEER_SLOTS; i++)
        summary(&limit.slot[i]);
    if (limit.timer)
        event_free(limit.timer);
    limit.timer = NULL;
}

void pt_log_peer(uid_t uid, int priority, const char *fmt, ...)
{
    uint64_t now = pt_daemon_now();
    peer_slot *s;
    va_list ap;

    if (priority > log_max_priority)
        return;
    s = slot_of(uid);
    if (now - s->since >= limit.interval_ns) {
        summary(s);
        s->since = now;
        s->logged = 0;
    }
    if (s->logged >= limit.burst) {
        if (!s->suppressed++ && limit.timer && !evtimer_pending(limit.timer, NULL)) {
            uint64_t us = (s->since + limit.interval_ns - now) / 1000 + 1;
            struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

            evtimer_add(limit.timer, &tv);
        }
        return;
    }
    s->logged++;
    va_start(ap, fmt);
    log_line(priority, fmt, ap);
    va_end(ap);
}
