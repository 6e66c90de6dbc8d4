/*
 * state.c - the state directory (--state-dir): DIR/journal holds the core's
 * inputs (journal.h). At start it is replayed into the core, then the
 * restart itself is recorded once the grace period is over (resume.c:
 * sessions whose processes take them up stay, the others end, the objects
 * get new words); after every pass of the loop what was recorded is
 * appended, before any answer of that pass is written, so no client hears
 * of a change the journal could lose to a crash of the daemon. With --sync
 * each append is also made durable (fdatasync) before the answers go out,
 * against a power loss.
 *
 * The file is appended through a shared mapping (journal_map.c). A crash
 * mid-append leaves the batch's first length zero, which ends the replay
 * as the zeros after the last record do; a torn record (a file cut short
 * or damaged some other way) ends it too, with a warning. The file is cut
 * back to the last whole record. A second daemon on the same directory is
 * refused (an flock on the file).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"
#include "journal.h"
#include "state_int.h"

int pt_file_read_all(int fd, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;

    if (fstat(fd, &st) < 0)
        return -1;
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL)
        return -1;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *out = buf;
    *len = got;
    return 0;
}

static int open_logged(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);

    if (fd < 0)
        pt_log(LOG_ERR,
               "pythreadd: --state-dir: cannot open %s: %s; create the directory, writable by "
               "the daemon's user",
               path, strerror(errno));
    return fd;
}

/* DIR/lock is held for the daemon's life (the journal is replaced by a
 * rename, so it cannot carry the lock), then DIR/journal is opened. */
static int state_file(pt_statedir *s, const char *dir)
{
    char lock[PATH_MAX];

    if (snprintf(s->path, sizeof(s->path), "%s/journal", dir) >= (int)sizeof(s->path) ||
        snprintf(lock, sizeof(lock), "%s/lock", dir) >= (int)sizeof(lock)) {
        pt_log(LOG_ERR, "pythreadd: --state-dir %s: the path is too long; choose a shorter one",
               dir);
        return -1;
    }
    s->lock_fd = open_logged(lock, O_RDWR | O_CREAT);
    if (s->lock_fd < 0)
        return -1;
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        pt_log(LOG_ERR,
               "pythreadd: --state-dir: %s is in use by another pythreadd (%s); give each "
               "daemon its own state directory",
               dir, strerror(errno));
        return -1;
    }
    s->fd = open_logged(s->path, O_RDWR | O_CREAT);
    return s->fd < 0 ? -1 : 0;
}

/* Give the core what the file holds; cut a torn tail off. */
static int state_replay(pt_daemon *d, pt_statedir *s, uint64_t *entries)
{
    pt_journal_replayed out;
    uint8_t *buf;
    size_t len;
    char err[200];

    if (pt_file_read_all(s->fd, &buf, &len) < 0) {
        pt_log(LOG_ERR, "pythreadd: --state-dir: cannot read %s: %s", s->path, strerror(errno));
        return -1;
    }
    pt_journal_replay_hooks hooks;

    if (pt_resume_new(d, &hooks) < 0) {
        free(buf);
        return -1;
    }
    if (pt_journal_replay(d->core, buf, len, &hooks, &out, err, sizeof(err)) < 0) {
        s->torn = len - out.used;
        pt_log(LOG_WARNING,
               "pythreadd: %s: %s; the state is taken as of the record before it (%zu of %zu "
               "bytes) and the rest is cut off",
               s->path, err, out.used, len);
    }
    free(buf);
    s->appended = s->since = s->synced = out.used;
    if (pt__jmap_attach(s) < 0) {
        pt_log(LOG_ERR,
               "pythreadd: --state-dir: cannot map %s for appending: %s; put the state "
               "directory on a local file system with free space",
               s->path, strerror(errno));
        return -1;
    }
    s->replayed = out.records;
    *entries = out.entries;
    return 0;
}

int pt_state_open(pt_daemon *d, const char *dir, int sync, uint32_t compact_after,
                  uint64_t *entries)
{
    pt_statedir *s = calloc(1, sizeof(*s));

    *entries = 0;
    if (s == NULL)
        return -1;
    s->fd = s->lock_fd = -1;
    s->sync = sync;
    s->compact_after = compact_after;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    d->state = s;
    s->d = d;
    if (state_file(s, dir) < 0 || state_replay(d, s, entries) < 0)
        return -1;
    d->journal = pt_journal_new();
    return d->journal ? 0 : -1;
}

/* At the next chance, whatever the journal's size: after a restart the
 * journal holds the old life's records, which a snapshot makes short. */
void pt_state_compact(pt_daemon *d)
{
    pt_core_stats st;

    if (d->state == NULL)
        return;
    pt_core_get_stats(d->core, &st);
    d->state->restored = st.objects;
    d->state->want = 1;
}

void pt_state_restarted(pt_daemon *d, uint64_t entries)
{
    pt_core_stats st;

    if (d->state == NULL || entries == 0) {
        /* nothing to restart: no session to wait for */
        pt_resume_free(d);
        pt_core_set_sink(d->core, pt_dispatch_sink, d);
        return;
    }
    pt_core_get_stats(d->core, &st);
    d->state->restored = st.objects; /* status tells it in the grace too */
    pt_log(LOG_INFO,
           "pythreadd: state of %s restored: %llu objects, %llu sessions from %llu inputs",
           d->state->path, (unsigned long long)st.objects, (unsigned long long)st.sessions,
           (unsigned long long)entries);
    pt_resume_start(d, d->grace_ms);
}

int pt__write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void pt_state_status(const pt_daemon *d, Pythread__StatusInfo *st)
{
    const pt_statedir *s = d->state;

    if (s == NULL)
        return;
    st->state_dir = (char *)s->dir;
    st->has_state_sync = st->has_restored_objects = st->has_replayed_inputs = 1;
    st->has_torn_bytes = st->has_journal_bytes = 1;
    st->state_sync = s->sync != 0;
    st->restored_objects = s->restored;
    st->replayed_inputs = s->replayed;
    st->torn_bytes = s->torn;
    st->journal_bytes = s->appended;
    pt_resume_status(d, st);
}

/*
 * An append that fails opens a gap: the records after it are not appended
 * (a journal that skipped some would replay into a state that never was)
 * but kept for a snapshot of the whole state, taken at once and tried again
 * every second until one is in place (compact.c), whether or not
 * anything else happens. A crash in the gap loses
 * what happened in it; a clean stop writes the snapshot itself.
 */
/* Logged once a gap: nothing is appended (nor synced) in it. */
static void append_failed(pt_statedir *s)
{
    pt_log(LOG_ERR,
           "pythreadd: cannot append to %s: %s; state changes are not kept until a snapshot of "
           "the state can be written, which is tried every second (free space on its file "
           "system)",
           s->path, strerror(errno));
    s->gap = s->want = 1;
    pt__compact_gap(s);
}

void pt_state_append(pt_daemon *d)
{
    pt_statedir *s = d->state;
    const uint8_t *p;
    size_t len;

    if (s == NULL || s->fd < 0)
        return;
    p = pt_journal_bytes(d->journal, &len);
    if (len == 0)
        return;
    if (s->gap) {
        pt__compact_appended(s, p, len); /* a snapshot started in the gap follows them */
    } else if (pt__jmap_append(s, p, len) < 0) {
        append_failed(s);
    } else {
        s->appended += len;
        s->since += len;
        pt__compact_appended(s, p, len);
    }
    pt_journal_take(d->journal, len);
}

void pt_state_flush(pt_daemon *d)
{
    pt_statedir *s = d->state;

    pt_state_append(d);
    if (s == NULL || !s->sync || s->gap || s->synced == s->appended)
        return;
    if (pt__jmap_sync(s, s->synced, s->appended) < 0)
        append_failed(s);
    else
        s->synced = s->appended;
}

void pt_state_close(pt_daemon *d)
{
    pt_statedir *s = d->state;

    if (s == NULL)
        return;
    if (s->fd >= 0 && d->core && d->journal) {
        /* what the words hold now, so a clean stop loses nothing */
        pt_journal_claim_all(d->journal, d->core);
        /* connections kept across the restart keep their mappings of
         * these words: left claimed, every step on them asks the daemon */
        if (!d->keep_words)
            pt_fast_publish_all(d->fast);
        pt_state_flush(d);
        if (s->gap && pt__compact_now(d) < 0)
            pt_log(LOG_ERR,
                   "pythreadd: %s lacks the state changes made since an append failed; "
                   "a restart gives the state as it was then",
                   s->path);
    }
    pt__compact_stop(s);
    pt__jmap_detach(s, 1);
    if (s->fd >= 0)
        close(s->fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
    d->state = NULL;
    /* The journal stays until the core is freed: it stands before the
     * core's fast hooks. What the teardown records is not written. */
}
