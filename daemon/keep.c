/*
 * keep.c - client connections that outlive a planned restart.
 *
 * At a stop the daemon itself chose the moment of (SIGUSR2, or SIGTERM
 * under systemd with --state-dir), every byte of every connection is
 * accounted for: what it read and did not handle yet is still in its input
 * buffer, what it answered and did not write yet in its output buffer. So
 * the connection itself can go on with the next image: the old one writes
 * its clean stop to the journal, then a table (a memfd) naming each kept
 * connection's session with those bytes, and passes the table and the
 * connected sockets on, across execve() (SIGUSR2) or through systemd's file
 * descriptor store. The new image replays the journal, binds each socket to
 * its session again before it serves anything, puts the bytes back, and
 * goes on reading where the old one stopped: the client sees a pause.
 *
 * A crash cannot do this: the old image may have read half a frame or
 * written half an answer, and nobody knows how much. Its connections end
 * and their processes take their sessions up again (resume.c).
 *
 * The shared words: the old image reads every word into the journal and
 * leaves each one claimed for good (the teardown works on a private copy,
 * fast.c), so a kept client's every step on a word it mapped from the old
 * image goes to the daemon, which the socket still reaches. The new image
 * keeps the session's id in words and numbers its own groups past the old
 * one's, so what a kept client opens from now on gets words again, in
 * mappings it cannot mistake for the old ones.
 *
 * The sockets are matched to the table by device and inode, not by order
 * or name: systemd gives stored descriptors back in an order of its own,
 * and a stored socket whose peer hung up meanwhile is dropped from the
 * store (its session waits for its process as after a crash).
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "state_int.h"

/* The table's descriptor across execve(), in the new image's environment;
 * it and the sockets are passed after the listener, as LISTEN_FDS, so that
 * an image that knows nothing of them (an older version) closes them as
 * extra sockets, and their clients reconnect, rather than hold them. */
#define ENV_TABLE "PYTHREAD_KEEP_TABLE"

#define KEEP_MAGIC   "pythreadd-keep"
#define KEEP_VERSION 1u
/* SCM_MAX_FD: the most descriptors one message to systemd may carry. */
#define KEEP_BATCH 253

typedef struct keep_head {
    char magic[16];
    uint32_t version;
    uint32_t count;
    uint32_t fast_groups; /* the old image's groups: the new one numbers past them */
    uint32_t pad;
} keep_head;

typedef struct keep_rec {
    uint64_t session;
    uint64_t dev, ino; /* the socket, as fstat() tells it */
    uint64_t requests, responses, since;
    int32_t fd; /* unused: sockets are told by their inode */
    uint32_t sid;
    uint32_t in_len, out_len; /* bytes after the record: input, then output */
    uint32_t hello;           /* its hello was answered */
    uint32_t pad;
    char client_name[PT_WIRE_NAME_MAX + 1];
} keep_rec;

/* One connection handed over to this image. */
typedef struct keep_conn {
    keep_rec rec;
    const uint8_t *in, *out; /* into pt_keep.table */
    int fd;                  /* -1 until its socket is found */
} keep_conn;

typedef struct pt_keep pt_keep;

struct pt_keep {
    uint8_t *table;
    size_t len;
    keep_conn *conns;
    uint32_t nconns;
    uint32_t fast_groups;
    int from_store; /* systemd's fd store: remove them there once adopted */
    int exec_table; /* across execve(): the table's number, closed once read */
};

/* The old image, for execve(): the kept sockets and the table. */
static int *exec_fds;
static uint32_t exec_n;
static int exec_table = -1;

/* ------------------------------------------------------------------ */
/* The new image: taking the table and the sockets                     */
/* ------------------------------------------------------------------ */

static int table_read(int fd, uint8_t **out, size_t *len)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(keep_head) ||
        pt_file_read_all(fd, out, len) < 0)
        return -1;
    if (*len != (size_t)st.st_size) { /* the table whole or not at all */
        free(*out);
        return -1;
    }
    return 0;
}

/* The records of a table read whole; -1 when it is not one this image
 * understands (another version's: its connections end, their processes
 * take their sessions up). */
static int table_parse(pt_keep *k)
{
    keep_head h;
    size_t off = sizeof(h);

    memcpy(&h, k->table, sizeof(h));
    if (memcmp(h.magic, KEEP_MAGIC, sizeof(KEEP_MAGIC)) != 0 || h.version != KEEP_VERSION ||
        h.count > (k->len - sizeof(h)) / sizeof(keep_rec))
        return -1;
    k->conns = calloc(h.count ? h.count : 1, sizeof(*k->conns));
    if (k->conns == NULL)
        return -1;
    k->fast_groups = h.fast_groups;
    for (uint32_t i = 0; i < h.count; i++) {
        keep_conn *kc = &k->conns[i];

        if (k->len - off < sizeof(kc->rec))
            return -1;
        memcpy(&kc->rec, k->table + off, sizeof(kc->rec));
        off += sizeof(kc->rec);
        if (k->len - off < (size_t)kc->rec.in_len + kc->rec.out_len)
            return -1;
        kc->in = k->table + off;
        kc->out = kc->in + kc->rec.in_len;
        off += (size_t)kc->rec.in_len + kc->rec.out_len;
        kc->rec.client_name[sizeof(kc->rec.client_name) - 1] = '\0';
        kc->fd = -1;
        k->nconns++;
    }
    return 0;
}

static pt_keep *keep_load(int table_fd, int from_store)
{
    pt_keep *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return NULL;
    k->from_store = from_store;
    k->exec_table = -1;
    if (table_read(table_fd, &k->table, &k->len) < 0 || table_parse(k) < 0) {
        pt_log(LOG_WARNING,
               "pythreadd: the table of connections kept across the restart is unreadable or "
               "of another version; those connections end and their processes take their "
               "sessions up again");
        free(k->conns);
        free(k->table);
        k->conns = NULL;
        k->table = NULL;
        k->nconns = 0;
    }
    return k;
}

static void store_remove(void);

/* fd is the socket of one of the table's connections: it is kept. */
static int keep_match(pt_keep *k, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    for (uint32_t i = 0; i < k->nconns; i++) {
        keep_conn *kc = &k->conns[i];

        if (kc->fd < 0 && kc->rec.dev == (uint64_t)st.st_dev &&
            kc->rec.ino == (uint64_t)st.st_ino) {
            kc->fd = fd;
            return 1;
        }
    }
    return 0;
}

void pt_keep_take_exec(pt_daemon *d)
{
    const char *v = getenv(ENV_TABLE);
    char *end;
    long fd;

    if (v == NULL)
        return;
    unsetenv(ENV_TABLE); /* it describes this process only */
    fd = strtol(v, &end, 10);
    if (*end != '\0' || fd <= SD_LISTEN_FDS_START || fd > INT32_MAX) {
        pt_log(LOG_WARNING, "pythreadd: ignoring %s=%s: not a descriptor the upgrade passes",
               ENV_TABLE, v);
        return;
    }
    /* left open until it is met among LISTEN_FDS: sd_listen_fds() sets
     * FD_CLOEXEC on each of them and fails on a closed one */
    d->keep = keep_load((int)fd, 0);
    if (d->keep != NULL)
        d->keep->exec_table = (int)fd;
}

int pt_keep_passed(pt_daemon *d, int fd)
{
    pt_keep *k = d->keep;

    if (k == NULL || k->from_store)
        return 0;
    if (fd == k->exec_table) {
        close(fd);
        k->exec_table = -1;
        return 1;
    }
    return keep_match(k, fd);
}

int pt_keep_take_store(pt_daemon *d, int table_fd, const int *fds, size_t n)
{
    if (d->keep != NULL) {
        /* both an upgrade's and the store's: cannot be; keep the first */
        if (table_fd >= 0)
            close(table_fd);
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
        return -1;
    }
    if (table_fd >= 0) {
        d->keep = keep_load(table_fd, 1);
        close(table_fd);
    } else if ((d->keep = calloc(1, sizeof(*d->keep))) != NULL) {
        d->keep->from_store = 1; /* the sockets alone: they go */
        d->keep->exec_table = -1;
    }
    if (d->keep == NULL) {
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
        store_remove();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!keep_match(d->keep, fds[i])) {
            pt_log(LOG_NOTICE,
                   "pythreadd: closing a connection from systemd's fd store that the table "
                   "of kept connections does not name");
            close(fds[i]);
        }
    }
    return 0;
}

/* Each kept socket becomes a connection of its session again. Called at
 * the start of the grace, before anything is served (resume.c). */
void pt_keep_adopt(pt_daemon *d)
{
    pt_keep *k = d->keep;
    uint32_t kept = 0;

    if (k == NULL)
        return;
    pt_fast_groups_after(d->fast, k->fast_groups);
    for (uint32_t i = 0; i < k->nconns; i++) {
        keep_conn *kc = &k->conns[i];
        pt_conn_kept kept_conn = {
            .session = kc->rec.session,
            .sid = kc->rec.sid,
            .requests = kc->rec.requests,
            .responses = kc->rec.responses,
            .since = kc->rec.since,
            .in = kc->in,
            .in_len = kc->rec.in_len,
            .out = kc->out,
            .out_len = kc->rec.out_len,
            .client_name = kc->rec.client_name,
            .hello = kc->rec.hello != 0,
        };

        if (kc->fd < 0) {
            pt_log(LOG_NOTICE,
                   "session %llu: its connection did not come back with the others (its peer "
                   "hung up meanwhile, or the store was full); its process takes the session "
                   "up again by reconnecting",
                   (unsigned long long)kc->rec.session);
            continue;
        }
        if (pt_conn_adopt(d, kc->fd, &kept_conn) == 0)
            kept++;
        kc->fd = -1; /* the connection's now, or closed */
    }
    if (k->nconns > 0)
        pt_log(LOG_INFO, "pythreadd: %u of %u connections kept across the restart", kept,
               k->nconns);
}

/* systemd holds a duplicate of every stored descriptor: while it does, a
 * connection this image closes would never end for its client. */
static void store_remove(void)
{
    int r = sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=" PT_KEEP_FDNAME_CONN);

    if (r >= 0)
        r = sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=" PT_KEEP_FDNAME_TABLE);
    if (r < 0)
        pt_log(LOG_ERR,
               "pythreadd: cannot take the kept connections out of systemd's fd store: %s; a "
               "client whose session ends may not see its connection end",
               strerror(-r));
}

void pt_keep_free(pt_daemon *d)
{
    pt_keep *k = d->keep;

    if (k == NULL)
        return;
    for (uint32_t i = 0; i < k->nconns; i++) {
        if (k->conns[i].fd >= 0) {
            pt_log(LOG_NOTICE,
                   "session %llu: closing its kept connection: this start keeps no sessions "
                   "(no --state-dir, or its journal lacks it)",
                   (unsigned long long)k->conns[i].rec.session);
            close(k->conns[i].fd);
        }
    }
    if (k->exec_table >= 0)
        close(k->exec_table);
    if (k->from_store)
        store_remove();
    free(k->conns);
    free(k->table);
    free(k);
    d->keep = NULL;
}

/* ------------------------------------------------------------------ */
/* The old image: handing the connections over                         */
/* ------------------------------------------------------------------ */

int pt_keep_wanted(const pt_daemon *d)
{
    return d->state != NULL && !pt_resume_grace(d) && d->grace_ms > 0 &&
           (d->upgrade || (d->stop_signal == SIGTERM && getenv("NOTIFY_SOCKET") != NULL));
}

static int table_put(int fd, const void *p, size_t len)
{
    return pt__write_all(fd, p, len);
}

/* Write the table: one record per connection kept (*fds gets their
 * sockets, for the store or execve()); the others end with this image. */
static int table_write(pt_daemon *d, int tfd, int **fds, uint32_t *nfds)
{
    keep_head h = {.version = KEEP_VERSION};
    pt_conn *c;
    uint32_t n = 0;

    memcpy(h.magic, KEEP_MAGIC, sizeof(KEEP_MAGIC));
    *fds = calloc(d->nconns ? d->nconns : 1, sizeof(**fds));
    if (*fds == NULL)
        return -1;
    TAILQ_FOREACH(c, &d->conns, link)
    {
        h.count += pt_conn_keepable(c);
    }
    h.fast_groups = pt_fast_groups(d->fast) + pt_fast_groups_base(d->fast);
    if (table_put(tfd, &h, sizeof(h)) < 0)
        return -1;
    TAILQ_FOREACH(c, &d->conns, link)
    {
        keep_rec r;
        struct stat st;

        if (!pt_conn_keepable(c))
            continue;
        if (fstat(c->fd, &st) < 0)
            return -1;
        memset(&r, 0, sizeof(r));
        r.session = c->id;
        r.dev = (uint64_t)st.st_dev;
        r.ino = (uint64_t)st.st_ino;
        r.requests = c->requests;
        r.responses = c->responses;
        r.since = c->since;
        r.fd = -1;
        r.sid = c->sid;
        r.hello = c->hello;
        r.in_len = (uint32_t)(c->in_len - c->in_off);
        r.out_len = (uint32_t)(c->out_len - c->out_off);
        memcpy(r.client_name, c->client_name, sizeof(r.client_name));
        if (table_put(tfd, &r, sizeof(r)) < 0 || table_put(tfd, c->in + c->in_off, r.in_len) < 0 ||
            table_put(tfd, c->out + c->out_off, r.out_len) < 0)
            return -1;
        (*fds)[n++] = c->fd;
    }
    *nfds = n;
    return 0;
}

/* Every socket, in messages of at most KEEP_BATCH, then the table: a new
 * image that finds the table finds the sockets it names. */
static int store_send(int tfd, const int *fds, uint32_t n)
{
    int r = 0;

    for (uint32_t i = 0; i < n && r >= 0; i += KEEP_BATCH) {
        uint32_t batch = n - i < KEEP_BATCH ? n - i : KEEP_BATCH;

        r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=" PT_KEEP_FDNAME_CONN, fds + i, batch);
    }
    if (r >= 0)
        r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=" PT_KEEP_FDNAME_TABLE, &tfd, 1);
    if (r == 0)
        r = -ENOTCONN;
    return r;
}

int pt_keep_handover(pt_daemon *d)
{
    int exec = d->upgrade;
    int tfd = -1, *fds = NULL, r;
    uint32_t n = 0;

    /* What was answered goes out now, while the journal can still record
     * a session a write error ends; an answer that carries a descriptor
     * must be written by this image, which owns the descriptor. */
    pt_conn_drain(d, PT_DAEMON_KEEP_DRAIN_MSEC);
    /* The clean stop: every word read and left claimed for good. */
    d->keep_words = 1;
    pt_state_close(d);
    if (pt_fast_retire(d->fast) < 0) {
        pt_log(LOG_ERR,
               "pythreadd: cannot set the shared words aside at the stop: %s; the connections "
               "end and their processes take their sessions up again",
               strerror(errno));
        return -1;
    }
    tfd = memfd_create("pythreadd-keep", MFD_CLOEXEC);
    if (tfd < 0 || table_write(d, tfd, &fds, &n) < 0) {
        pt_log(LOG_ERR,
               "pythreadd: cannot write the table of kept connections: %s; the connections end "
               "and their processes take their sessions up again",
               strerror(errno));
        goto fail;
    }
    if (exec) {
        /* passed by pt_keep_exec_pass, with the listener */
        exec_fds = fds;
        exec_n = n;
        exec_table = tfd;
        pt_log(LOG_INFO, "keeping %u connections across the upgrade", n);
        return 0;
    }
    r = store_send(tfd, fds, n);
    if (r < 0) {
        pt_log(LOG_ERR,
               "pythreadd: cannot store the connections in systemd's fd store: %s; they end "
               "and their processes take their sessions up again (give the unit "
               "FileDescriptorStoreMax=)",
               strerror(-r));
        sd_notify(0, "FDSTOREREMOVE=1\nFDNAME=" PT_KEEP_FDNAME_CONN);
        goto fail;
    }
    pt_log(LOG_INFO, "kept %u connections in systemd's fd store for the next start", n);
    close(tfd);
    free(fds);
    return 0;
fail:
    if (tfd >= 0)
        close(tfd);
    free(fds);
    return -1;
}

int pt_keep_exec_pass(int listen_fd)
{
    uint32_t total = exec_n + 2, i;
    int base = SD_LISTEN_FDS_START + (int)total;
    int *high;
    char num[24];

    if (exec_table < 0)
        return 0;
    high = calloc(total, sizeof(*high));
    if (high == NULL)
        return -1;
    /* above every number the passed ones take, so none is overwritten
     * before it is copied; these copies go with execve() */
    high[0] = fcntl(listen_fd, F_DUPFD_CLOEXEC, base);
    for (i = 0; i < exec_n; i++)
        high[1 + i] = fcntl(exec_fds[i], F_DUPFD_CLOEXEC, base);
    high[total - 1] = fcntl(exec_table, F_DUPFD_CLOEXEC, base);
    for (i = 0; i < total && high[i] >= 0; i++)
        ;
    if (i < total) {
        pt_log(LOG_ERR,
               "pythreadd: cannot pass %u connections across the upgrade: %s; they end and "
               "their processes take their sessions up again (raise the open file limit)",
               exec_n, strerror(errno));
        for (i = 0; i < total; i++)
            if (high[i] >= 0)
                close(high[i]);
        free(high);
        return -1;
    }
    /* the listener as 3, the sockets, the table last; dup2() leaves them
     * open across execve() */
    for (i = 0; i < total; i++)
        dup2(high[i], SD_LISTEN_FDS_START + (int)i);
    free(high);
    snprintf(num, sizeof(num), "%u", total);
    setenv("LISTEN_FDS", num, 1);
    snprintf(num, sizeof(num), "%d", (int)getpid());
    setenv("LISTEN_PID", num, 1);
    unsetenv("LISTEN_FDNAMES");
    snprintf(num, sizeof(num), "%d", SD_LISTEN_FDS_START + (int)total - 1);
    setenv(ENV_TABLE, num, 1);
    return 1;
}
