/*
 * compact.c - the journal rewritten as a snapshot while the daemon serves.
 *
 * Once the journal has grown past its last snapshot by --compact-after and
 * by that snapshot's size (so rewriting costs at most one more write of
 * every byte recorded), the loop images the core into memory and a thread
 * writes it to DIR/journal.new and fsyncs it, so the loop never waits on
 * the disk. Meanwhile the loop goes on appending to the old journal, and
 * keeps a copy of what it appends; when the thread is done, the loop
 * appends that copy to the new file and renames it over the old one. At
 * any crash point one of the two files is whole: the old one until the
 * rename, the new one after it.
 *
 * A snapshot is taken only when every answer the core gave has been
 * written to its socket: a process reads those even after the daemon
 * died, and the snapshot keeps no answer to give again after a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon.h"
#include "journal.h"
#include "state_int.h"

struct pt_compaction {
    pthread_t thread;
    pt_journal *snap;
    char tmp[PATH_MAX + 8];
    int fd;  /* the new file, open for appending; -1 when writing it failed */
    int err; /* errno of that failure */
    int wake[2];
    struct event *done;
    struct evbuffer *tail; /* appended to the old journal since the image */
};

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

static void *compact_write(void *arg)
{
    pt_compaction *cp = arg;
    size_t len;
    const uint8_t *p = pt_journal_bytes(cp->snap, &len);

    /* read and write: the loop maps it once it is the journal */
    cp->fd = open(cp->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (cp->fd < 0 || pt__write_all(cp->fd, p, len) < 0 || fsync(cp->fd) < 0) {
        cp->err = errno;
        if (cp->fd >= 0)
            close(cp->fd);
        cp->fd = -1;
    }
    (void)!write(cp->wake[1], "", 1);
    return NULL;
}

/* Signals stay with the loop's thread. */
static int thread_start(pt_compaction *cp)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&cp->thread, NULL, compact_write, cp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

static void compaction_free(pt_compaction *cp)
{
    if (cp->done != NULL)
        event_free(cp->done);
    if (cp->wake[0] >= 0)
        close(cp->wake[0]);
    if (cp->wake[1] >= 0)
        close(cp->wake[1]);
    if (cp->tail != NULL)
        evbuffer_free(cp->tail);
    pt_journal_free(cp->snap);
    free(cp);
}

void pt__compact_appended(pt_statedir *s, const uint8_t *p, size_t len)
{
    if (s->cp != NULL && evbuffer_add(s->cp->tail, p, len) < 0) {
        /* the new file would miss these: it is not put in place */
        s->cp->err = ENOMEM;
    }
}

void pt__compact_cancel(pt_statedir *s)
{
    pt_compaction *cp = s->cp;

    if (cp == NULL)
        return;
    pthread_join(cp->thread, NULL);
    if (cp->fd >= 0)
        close(cp->fd);
    unlink(cp->tmp);
    compaction_free(cp);
    s->cp = NULL;
}

static int tail_write(pt_compaction *cp)
{
    while (evbuffer_get_length(cp->tail) > 0) {
        int n = evbuffer_write(cp->tail, cp->fd);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
    }
    return 0;
}

static void dir_sync(const pt_statedir *s)
{
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The new file gets the tail, then takes the journal's name. */
static int swap_in(pt_statedir *s, pt_compaction *cp)
{
    if (cp->fd < 0 || cp->err != 0)
        return -1;
    if (tail_write(cp) < 0 || (s->sync && fdatasync(cp->fd) < 0) || rename(cp->tmp, s->path) < 0) {
        cp->err = errno;
        return -1;
    }
    if (s->sync)
        dir_sync(s); /* the rename too survives a power loss */
    return 0;
}

/* A gap is over once a snapshot taken in it is in place; until then one
 * is tried every second, by a timer: the daemon may have nothing else to
 * do. */
static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_statedir *s = arg;

    (void)fd, (void)what;
    pt_state_compact_maybe(s->d);
}

static void retry_later(pt_statedir *s)
{
    const struct timeval second = {1, 0};

    if (s->retry == NULL && (s->retry = evtimer_new(s->d->base, retry_cb, s)) == NULL)
        return; /* the next pass of the loop tries again */
    if (!evtimer_pending(s->retry, NULL))
        evtimer_add(s->retry, &second);
}

void pt__compact_stop(pt_statedir *s)
{
    pt__compact_cancel(s);
    if (s->retry != NULL)
        event_free(s->retry);
    s->retry = NULL;
}

static void swapped_in(pt_statedir *s, pt_compaction *cp, size_t snap_len, size_t tail_len)
{
    pt__jmap_detach(s, 0);
    close(s->fd);
    s->fd = cp->fd;
    cp->fd = -1;
    s->snap_bytes = snap_len;
    s->since = tail_len;
    s->appended = s->synced = snap_len + tail_len; /* fsynced by the thread, and swap_in */
    /* on failure the next append maps it, or says why it cannot */
    (void)pt__jmap_attach(s);
    pt_log(LOG_INFO, "pythreadd: %s rewritten as a snapshot of the state (%zu bytes)", s->path,
           snap_len);
    if (s->gap)
        pt_log(LOG_NOTICE, "pythreadd: %s holds the whole state again", s->path);
    s->gap = s->snap_failing = 0;
}

static void not_swapped_in(pt_statedir *s, pt_compaction *cp)
{
    if (cp->err == ECANCELED)
        pt_log(LOG_INFO,
               "pythreadd: a snapshot of the state was given up: appends to %s failed "
               "while it was written; another is taken",
               s->path);
    else if (!s->gap || !s->snap_failing)
        pt_log(LOG_ERR, "pythreadd: cannot write %s: %s; %s (free space on its file system)",
               cp->tmp, strerror(cp->err),
               s->gap ? "tried again every second, and logged when it works"
                      : "the journal stays as it was and grows until a later snapshot works");
    s->snap_failing = cp->err != ECANCELED;
    if (cp->fd >= 0)
        close(cp->fd);
    cp->fd = -1;
    unlink(cp->tmp);
    s->snap_bytes = s->since; /* try again once it has grown as much */
    if (s->gap)
        retry_later(s);
}

/* The snapshot written: in place of the journal if all went well. */
static void compact_finish(pt_statedir *s)
{
    pt_compaction *cp = s->cp;
    size_t snap_len, tail_len = evbuffer_get_length(cp->tail);

    pt_journal_bytes(cp->snap, &snap_len);
    if (swap_in(s, cp) == 0)
        swapped_in(s, cp, snap_len, tail_len);
    else
        not_swapped_in(s, cp);
    compaction_free(cp);
    s->cp = NULL;
}

static void compact_done(evutil_socket_t fd, short what, void *arg)
{
    pt_statedir *s = arg;

    (void)fd, (void)what;
    pthread_join(s->cp->thread, NULL);
    compact_finish(s);
}

void pt__compact_gap(pt_statedir *s)
{
    if (s->cp != NULL && s->cp->err == 0)
        s->cp->err = ECANCELED;
}

/* Every answer given is in its socket (see the top). */
static int answers_written(const pt_daemon *d)
{
    const pt_conn *c;

    TAILQ_FOREACH(c, &d->conns, link)
    {
        if (c->out_len != c->out_off)
            return 0;
    }
    return 1;
}

static pt_journal *image(pt_daemon *d)
{
    pt_journal *snap = pt_journal_new();
    pt_core_limits limits;

    if (snap == NULL)
        return NULL;
    pt_core_get_limits(d->core, &limits);
    if (pt_journal_snapshot(snap, d->core, pt_resume_who_of, NULL) < 0) {
        pt_journal_free(snap);
        return NULL;
    }
    pt_journal_limits(snap, d->core, &limits); /* its replay runs under them */
    return snap;
}

static pt_compaction *compaction_new(pt_daemon *d, pt_statedir *s)
{
    pt_compaction *cp = calloc(1, sizeof(*cp));

    if (cp == NULL)
        return NULL;
    cp->fd = -1;
    cp->wake[0] = cp->wake[1] = -1;
    snprintf(cp->tmp, sizeof(cp->tmp), "%s.new", s->path);
    if (pipe2(cp->wake, O_CLOEXEC) < 0 || (cp->tail = evbuffer_new()) == NULL ||
        (cp->done = event_new(d->base, cp->wake[0], EV_READ, compact_done, s)) == NULL ||
        (cp->snap = image(d)) == NULL) {
        compaction_free(cp);
        return NULL;
    }
    return cp;
}

static int due(const pt_statedir *s)
{
    if (s->gap)
        return s->retry == NULL || !evtimer_pending(s->retry, NULL);
    return s->want || (s->since >= s->compact_after && s->since >= s->snap_bytes);
}

void pt_state_compact_maybe(pt_daemon *d)
{
    pt_statedir *s = d->state;
    pt_compaction *cp;

    if (s == NULL || s->fd < 0 || s->cp != NULL || !due(s))
        return;
    if (!pt_resume_grace(d))
        pt_state_flush(d); /* what a write error's session end recorded */
    if (pt_resume_grace(d) || !answers_written(d)) {
        if (s->gap)
            retry_later(s);
        return; /* a later pass */
    }
    s->want = 0;
    cp = compaction_new(d, s);
    if (cp == NULL || event_add(cp->done, NULL) < 0 || thread_start(cp) < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot snapshot the state (out of memory, or a queue or "
                        "a session too large for one record); the journal grows until a later "
                        "snapshot works");
        if (cp != NULL)
            compaction_free(cp);
        s->snap_bytes = s->since;
        if (s->gap)
            retry_later(s);
        return;
    }
    s->cp = cp;
}

int pt__compact_now(pt_daemon *d)
{
    pt_statedir *s = d->state;

    pt__compact_cancel(s);
    s->cp = compaction_new(d, s);
    if (s->cp == NULL) {
        pt_log(LOG_ERR, "pythreadd: cannot snapshot the state (out of memory, or a queue or a "
                        "session too large for one record)");
        return -1;
    }
    compact_write(s->cp);
    compact_finish(s);
    return s->gap ? -1 : 0;
}
