/*
 * resume.c - sessions that outlive a restart of the daemon (--state-dir).
 *
 * The journal gives every session back with its handles, holds and queue
 * places. A session whose process still lives (its pidfd, and its start
 * time, so a reused pid is not taken for it) is kept for the grace period:
 * its process reconnects, names the session and the key its first hello
 * was given, and takes it up again on the new connection. What the shared
 * words said when the old daemon went (its process reads them) comes with
 * that hello as reclaims.
 *
 * Like NFS's grace period, nothing else is served meanwhile but inspection
 * (which changes nothing): no call, no timeout, so no lock goes to anyone
 * before every holder had its chance to say it holds it. The grace ends when every kept session is
 * taken up or its process has died, or when --grace runs out; then the restart is made with the
 * reclaims (pt_core_restart), the sessions nobody took up end as any session ends, and the calls
 * held back are served in order.
 *
 * While the journal is replayed, the answers it gives are kept per session
 * and thread (the last one of each): a resuming process names the calls it
 * sent and heard nothing of, and gets the answer the journal gave, or is
 * told to send again a call the old daemon never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fastword.h"

/* A word gives at most this many tokens past the last the daemon knows. */
#define TOKEN_JUMP ((uint64_t)PT_FW_SEQ_MAX + 1)
/* Answers kept per replayed session: one per thread (its last), at most
 * this many threads' (a power of two: the array doubles up to it). */
#define KEPT_ANSWERS_MAX 4096u

/* The last answer of a thread, as the core gave it: packed only if its
 * process asks for it again (a replay gives hundreds of thousands). */
typedef struct kept_answer {
    uint64_t thread;
    uint64_t written; /* its rank among the session's answers (1: the first) */
    pt_result res;    /* res.message and res.state point into this record */
    pt_state state;
    char *message; /* an error's words */
} kept_answer;

/* A replayed session, until its process takes it up or the grace ends. */
typedef struct pt_kept {
    LIST_ENTRY(pt_kept) link;
    pt_resume *r;
    pt_session *session;
    pt_journal_who who;
    int has_who;
    int pidfd;
    struct event *death;
    unsigned dead : 1;  /* its process is gone: it ends with the grace */
    unsigned empty : 1; /* nothing to take up: it ends with the grace */
    unsigned resumed : 1;
    kept_answer *answers;
    size_t nanswers, capanswers;
    uint64_t nwritten; /* answers the replay gave it so far */
} pt_kept;

struct pt_resume {
    pt_daemon *d;
    LIST_HEAD(, pt_kept) kept;
    uint32_t open; /* kept sessions neither taken up nor dead */
    int grace;     /* the grace period is on */
    struct event *timer;
    pt_core_reclaim *reclaims;
    size_t nreclaims, capreclaims;
    uint64_t nkept;                    /* sessions the replay brought back */
    uint64_t taken, dead, late, empty; /* of them: taken up, whose process died, not back in
                                          time, with nothing to take up */
    uint64_t kept_conns;               /* of those taken up: on the connection they had */
    uint64_t grace_from, grace_ns;     /* when the grace began, and how long it lasted */
    double restarted_wall;             /* when the restart was made, seconds since the epoch */
};

/* ------------------------------------------------------------------ */
/* The process behind a session                                        */
/* ------------------------------------------------------------------ */

/* Field 22 of the stat of the process's main thread (its start is the
 * process's): when the process started, in clock ticks after boot; 0 when
 * it cannot be read (no such process). Not /proc/PID/stat, which sums the
 * CPU time of every thread: with a thousand sessions of a process of a
 * thousand threads that was most of a restart's time. */
static uint64_t proc_start_time(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* the command name may hold anything, parentheses too: skip past the last */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1,
                            " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                            "%*d %*d %*d %llu",
                            &start) != 1)
        return 0;
    return start;
}

/* The start time tells a reused pid from the process that had it. The
 * hardened unit hides other users' processes (ProtectProc=invisible): the
 * start time is then 0, unknown, and a session's process counts as alive
 * while its pid is; a stranger with its pid still lacks the key, so that
 * costs only the wait for --grace. */
int pt_resume_who(const pt_conn *c, pt_journal_who *who)
{
    memset(who, 0, sizeof(*who));
    who->start_time = proc_start_time(c->peer.pid);
    if (getrandom(who->key, sizeof(who->key), 0) != sizeof(who->key))
        return -1;
    return 0;
}

/* pid is the process that started at start (0: not known), as far as
 * this daemon can see. */
static int same_process(pid_t pid, uint64_t start)
{
    return start == 0 || proc_start_time(pid) == start;
}

/* A pidfd of the session's process, or -1 when it is gone (or another
 * process has its pid now). Opened before the start time is compared, so a
 * process that dies after the check still makes its pidfd readable. */
static int process_open(const pt_kept *k)
{
    pid_t pid = pt_core_session_peer(k->session)->pid;
    int fd;

    if (!k->has_who || pid <= 0)
        return -1;
    fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    if (!same_process(pid, k->who.start_time)) {
        close(fd);
        return -1;
    }
    return fd;
}

int pt_resume_who_of(void *ctx, const pt_session *s, pt_journal_who *out)
{
    const pt_conn *c = pt_core_session_udata(s);

    (void)ctx;
    if (c == NULL || !c->resumable)
        return -1;
    out->start_time = c->start_time;
    memcpy(out->key, c->key, sizeof(out->key));
    return 0;
}

/* ------------------------------------------------------------------ */
/* The replay: sessions and their answers                              */
/* ------------------------------------------------------------------ */

static void kept_free(pt_kept *k)
{
    for (size_t i = 0; i < k->nanswers; i++)
        free(k->answers[i].message);
    free(k->answers);
    if (k->death)
        event_free(k->death);
    if (k->pidfd >= 0)
        close(k->pidfd);
    LIST_REMOVE(k, link);
    free(k);
}

static void replay_session_new(void *ctx, pt_session *s, const pt_journal_who *who)
{
    pt_resume *r = ctx;
    pt_kept *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return; /* it is not kept: it ends with the grace */
    k->r = r;
    k->session = s;
    k->pidfd = -1;
    k->has_who = who != NULL;
    if (who != NULL)
        k->who = *who;
    LIST_INSERT_HEAD(&r->kept, k, link);
    pt_core_session_set_udata(s, k);
}

static void replay_session_end(void *ctx, pt_session *s)
{
    pt_kept *k = pt_core_session_udata(s);

    (void)ctx;
    pt_core_session_set_udata(s, NULL);
    if (k != NULL)
        kept_free(k);
}

/* The slot for thread's answer: its own, a new one, or when KEPT_ANSWERS_MAX
 * threads have one, the one written longest ago: what a process had not
 * read when the daemon died is what it was told last. */
static kept_answer *answer_slot(pt_kept *k, uint64_t thread)
{
    kept_answer *oldest = NULL;

    for (size_t i = 0; i < k->nanswers; i++) {
        if (k->answers[i].thread == thread)
            return &k->answers[i];
        if (oldest == NULL || k->answers[i].written < oldest->written)
            oldest = &k->answers[i];
    }
    if (k->nanswers == KEPT_ANSWERS_MAX) {
        oldest->thread = thread;
        return oldest;
    }
    if (k->nanswers == k->capanswers) {
        size_t cap = k->capanswers ? 2 * k->capanswers : 4;
        kept_answer *grown = realloc(k->answers, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        k->answers = grown;
        k->capanswers = cap;
    }
    k->answers[k->nanswers] = (kept_answer){.thread = thread};
    return &k->answers[k->nanswers++];
}

/* The replay's sink: the last answer to each thread of each session. */
static void replay_sink(void *ctx, pt_session *s, const pt_result *res)
{
    pt_kept *k = pt_core_session_udata(s);
    kept_answer *a;

    (void)ctx;
    if (k == NULL || (a = answer_slot(k, res->thread)) == NULL)
        return;
    free(a->message);
    a->message = NULL;
    a->written = ++k->nwritten;
    a->res = *res;
    a->res.fast = a->res.fast_slot = 0; /* its words are gone */
    if (res->state != NULL) {
        a->state = *res->state;
        a->res.state = &a->state;
    }
    if (res->message != NULL) {
        a->message = strdup(res->message);
        a->res.message = a->message; /* NULL without memory: the code's words */
    }
}

static const pt_journal_replay_hooks replay_hooks = {
    .session_new = replay_session_new,
    .session_end = replay_session_end,
};

int pt_resume_new(pt_daemon *d, pt_journal_replay_hooks *hooks)
{
    pt_resume *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -1;
    r->d = d;
    LIST_INIT(&r->kept);
    d->resume = r;
    *hooks = replay_hooks;
    hooks->ctx = r;
    pt_core_set_sink(d->core, replay_sink, r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The grace period                                                    */
/* ------------------------------------------------------------------ */

int pt_resume_grace(const pt_daemon *d)
{
    return d->resume != NULL && d->resume->grace;
}

/* Every kept session is taken up or dead: end the grace at the next turn
 * of the loop (not inside the hello being served). */
static void grace_check(pt_resume *r)
{
    if (r->grace && r->open == 0)
        event_active(r->timer, EV_TIMEOUT, 0);
}

static void death_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_kept *k = arg;

    (void)fd;
    (void)what;
    if (k->dead || k->resumed)
        return;
    k->dead = 1;
    k->r->open--;
    grace_check(k->r);
}

/* The restart, made now that every holder had its chance: the reclaims
 * first, then the sessions nobody took up end (their process died, or did
 * not come back in time). */
static void grace_end(pt_resume *r)
{
    pt_daemon *d = r->d;
    uint64_t now = pt_daemon_now();
    struct timespec ts;
    pt_kept *k;

    r->grace = 0;
    r->grace_ns = now - r->grace_from;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->restarted_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    LIST_FOREACH(k, &r->kept, link)
    {
        if (!k->resumed)
            pt_core_session_set_udata(k->session, NULL);
    }
    pt_journal_restart(d->journal, d->core, now, TOKEN_JUMP, r->reclaims, r->nreclaims);
    pt_fast_publish_all(d->fast);
    while ((k = LIST_FIRST(&r->kept)) != NULL) {
        if (!k->resumed) {
            if (k->empty)
                r->empty++;
            else if (k->dead)
                r->dead++;
            else
                r->late++;
            pt_journal_session_end(d->journal, d->core, k->session, now);
            pt_fast_publish_all(d->fast);
        }
        kept_free(k);
    }
    free(r->reclaims);
    r->reclaims = NULL;
    r->nreclaims = r->capreclaims = 0;
    pt_log(LOG_INFO,
           "pythreadd: restart done: %llu sessions taken up by their processes; ended: %llu "
           "(process gone), %llu (not back within --grace), %llu (nothing to take up)",
           (unsigned long long)r->taken, (unsigned long long)r->dead, (unsigned long long)r->late,
           (unsigned long long)r->empty);
    pt_state_compact(d);
    pt_conn_ungate_all(d, now);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_resume *r = arg;
    uint64_t now = pt_daemon_now();

    (void)fd;
    (void)what;
    if (r->grace)
        grace_end(r);
    pt_daemon_settle(r->d, now);
}

/* A session with no handle, hold or call waiting has nothing to take up:
 * it ends with the grace whatever its process does. */
static int kept_has_anything(const pt_kept *k)
{
    pt_core_session_info info;

    pt_core_session_info_get(k->session, &info);
    return info.handles != 0 || info.held != 0 || info.waiting != 0;
}

/* Keep a session whose process lives, watching for its death. */
static void kept_watch(pt_resume *r, pt_kept *k)
{
    if (!kept_has_anything(k)) {
        k->empty = 1;
        return;
    }
    k->pidfd = process_open(k);
    if (k->pidfd >= 0)
        k->death = event_new(r->d->base, k->pidfd, EV_READ, death_cb, k);
    if (k->death == NULL || event_add(k->death, NULL) < 0) {
        k->dead = 1;
        return;
    }
    r->open++;
}

void pt_resume_start(pt_daemon *d, uint32_t grace_ms)
{
    pt_resume *r = d->resume;
    struct timeval tv = {(time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000};
    pt_kept *k;

    pt_core_set_sink(d->core, pt_dispatch_sink, d);
    if (r == NULL)
        return;
    pt_journal_words_lost(d->journal, d->core); /* until the restart */
    r->timer = evtimer_new(d->base, grace_cb, r);
    r->grace = 1;
    r->grace_from = pt_daemon_now();
    LIST_FOREACH(k, &r->kept, link)
    {
        /* no connection until its process comes: answers and inspection
         * see none, and what it holds is in grace */
        pt_core_session_set_udata(k->session, NULL);
        pt_core_session_awaited(d->core, k->session, 1);
        r->nkept++;
        if (grace_ms > 0 && r->timer != NULL)
            kept_watch(r, k);
        else
            k->dead = 1;
    }
    /* connections handed over by the last image take theirs at once */
    pt_keep_adopt(d);
    if (r->open == 0 || r->timer == NULL) {
        grace_end(r);
        return;
    }
    evtimer_add(r->timer, &tv);
    pt_log(LOG_INFO,
           "pythreadd: %u sessions wait up to %u ms for their processes to take them up; calls "
           "are served after",
           r->open, grace_ms);
}

void pt_resume_status(const pt_daemon *d, Pythread__StatusInfo *st)
{
    const pt_resume *r = d->resume;

    st->has_grace_ms = 1;
    st->grace_ms = d->grace_ms;
    if (r == NULL)
        return;
    st->has_in_grace = st->has_restored_sessions = st->has_sessions_taken_up = 1;
    st->has_sessions_ended_gone = st->has_sessions_ended_late = st->has_sessions_ended_empty = 1;
    st->in_grace = r->grace != 0;
    st->restored_sessions = r->nkept;
    st->sessions_taken_up = r->taken;
    st->sessions_ended_gone = r->dead;
    st->sessions_ended_late = r->late;
    st->sessions_ended_empty = r->empty;
    st->has_sessions_kept_connection = 1;
    st->sessions_kept_connection = r->kept_conns;
    st->has_grace_seconds = 1;
    st->grace_seconds = (double)(r->grace ? pt_daemon_now() - r->grace_from : r->grace_ns) / 1e9;
    st->has_restarted_at = !r->grace;
    st->restarted_at = r->restarted_wall;
}

void pt_resume_free(pt_daemon *d)
{
    pt_resume *r = d->resume;
    pt_kept *k;

    if (r == NULL)
        return;
    while ((k = LIST_FIRST(&r->kept)) != NULL)
        kept_free(k);
    if (r->timer)
        event_free(r->timer);
    free(r->reclaims);
    free(r);
    d->resume = NULL;
}

/* ------------------------------------------------------------------ */
/* A hello that takes a session up again                               */
/* ------------------------------------------------------------------ */

static pt_kept *kept_find(pt_resume *r, uint64_t id)
{
    pt_kept *k;

    LIST_FOREACH(k, &r->kept, link)
    {
        if (pt_core_session_id(k->session) == id)
            return k;
    }
    return NULL;
}

/* Compared in full whatever differs, so the time tells nothing. */
static int key_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

/* Why a resuming hello may not take up k, the kept session it names (NULL:
 * none is), or NULL when it may: only the same process, as the same user,
 * with the key its first hello was given. */
static const char *kept_refusal(const pt_kept *k, const pt_conn *c, const Pythread__HelloArgs *h)
{
    const pt_peer *was;

    if (k == NULL)
        return "no session of that id waits to be taken up (the grace period is over, or the "
               "daemon restarted without it)";
    if (k->resumed)
        return "it was taken up already";
    if (k->dead || k->empty || !k->has_who)
        return "it is not kept (its process died, or it had nothing to take up)";
    was = pt_core_session_peer(k->session);
    if (was->pid != c->peer.pid || !same_process(c->peer.pid, k->who.start_time))
        return "it belongs to another process";
    if (was->uid != c->peer.uid)
        return "it belongs to another user";
    if (!h->has_resume_key || h->resume_key.len != sizeof(k->who.key) ||
        !key_equal(h->resume_key.data, k->who.key, sizeof(k->who.key)))
        return "the key is not the one its first hello was given";
    return NULL;
}

static int reclaims_add(pt_resume *r, pt_session *s, const Pythread__HelloArgs *h)
{
    size_t need = r->nreclaims + h->n_reclaims;

    if (need > r->capreclaims) {
        size_t cap = r->capreclaims ? 2 * r->capreclaims : 64;
        pt_core_reclaim *grown;

        while (cap < need)
            cap *= 2;
        grown = realloc(r->reclaims, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        r->reclaims = grown;
        r->capreclaims = cap;
    }
    for (size_t i = 0; i < h->n_reclaims; i++) {
        const Pythread__Reclaim *m = h->reclaims[i];

        r->reclaims[r->nreclaims++] = (pt_core_reclaim){
            s, m->handle, (int)m->state, m->thread, m->depth, m->token, m->value,
        };
    }
    return 0;
}

/* Of the calls the process sent and heard nothing of: answered by the
 * journal (the answer goes again, after the hello's), parked (it comes),
 * or never read (the process sends it again). */
static int pending_sort(pt_kept *k, const Pythread__HelloArgs *h, pt_resume_taken *t)
{
    size_t n = h->n_pending ? h->n_pending : 1;

    t->resend = calloc(n, sizeof(*t->resend));
    t->again = calloc(n, sizeof(*t->again));
    if (t->resend == NULL || t->again == NULL)
        return -1;
    for (size_t i = 0; i < h->n_pending; i++) {
        uint64_t id = h->pending[i];
        size_t a;

        if (pt_core_session_waits(k->session, id))
            continue;
        for (a = 0; a < k->nanswers && k->answers[a].res.id != id; a++)
            ;
        if (a < k->nanswers) {
            t->again[t->nagain++] = &k->answers[a].res;
        } else {
            t->resend[t->nresend++] = id;
        }
    }
    return 0;
}

void pt_resume_taken_done(pt_conn *c, pt_resume_taken *t)
{
    for (size_t i = 0; c != NULL && i < t->nagain; i++) {
        Pythread__Response m = PYTHREAD__RESPONSE__INIT;
        Pythread__State state = PYTHREAD__STATE__INIT;

        pt_dispatch_answer(t->again[i], &m, &state);
        pt_conn_send(c, &m);
    }
    free(t->resend);
    free(t->again);
    memset(t, 0, sizeof(*t));
}

/* The connection takes the kept session: the one it was opened with ends
 * (it has done nothing but this hello). */
static void kept_take(pt_kept *k, pt_conn *c, uint64_t now)
{
    pt_daemon *d = c->daemon;
    pt_session *fresh = c->session;

    c->session = k->session;
    c->id = pt_core_session_id(k->session);
    memcpy(c->key, k->who.key, sizeof(c->key));
    c->start_time = k->who.start_time;
    c->resumable = 1;
    c->resumed = 1;
    pt_core_session_set_udata(k->session, c);
    if (fresh != NULL)
        pt_journal_session_end(d->journal, d->core, fresh, now);
    pt_core_session_awaited(d->core, k->session, 0);
    k->resumed = 1;
    k->r->open--;
    k->r->taken++;
}

int pt_resume_hello(pt_conn *c, const Pythread__HelloArgs *h, pt_resume_taken *t, uint64_t now)
{
    pt_resume *r = c->daemon->resume;
    pt_kept *k = r && r->grace ? kept_find(r, h->resume_session) : NULL;
    const char *why = kept_refusal(k, c, h);

    memset(t, 0, sizeof(*t));
    if (why != NULL) {
        /* the peer is told only that it has a new session: the reason is
         * for the operator (a lost session, or someone trying another's) */
        pt_log_peer(
            c->peer.uid, LOG_WARNING,
            "session %llu: pid %d (uid %u, '%s') asked to take up session %llu, refused: "
            "%s; it gets a new session instead (the old one's calls fail with a lost-session "
            "error)",
            (unsigned long long)c->id, (int)c->peer.pid, (unsigned)c->peer.uid, c->client_name,
            (unsigned long long)h->resume_session, why);
        return -1;
    }
    if (pending_sort(k, h, t) < 0 || reclaims_add(r, k->session, h) < 0) {
        pt_resume_taken_done(NULL, t);
        return -1;
    }
    kept_take(k, c, now);
    pt_log(LOG_INFO, "session %llu taken up again by pid %d ('%s'), %zu reclaims",
           (unsigned long long)c->id, (int)c->peer.pid, c->client_name, h->n_reclaims);
    grace_check(r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A connection kept across the restart                                */
/* ------------------------------------------------------------------ */

int pt_resume_adopt(pt_conn *c, uint64_t id)
{
    pt_resume *r = c->daemon->resume;
    pt_kept *k = r && r->grace ? kept_find(r, id) : NULL;
    const pt_peer *was = k ? pt_core_session_peer(k->session) : NULL;
    const char *why = NULL;

    if (k == NULL)
        why = "the journal does not keep that session";
    else if (k->resumed)
        why = "another connection took it up already";
    else if (was->pid != c->peer.pid || was->uid != c->peer.uid)
        why = "the socket's peer is not the session's process";
    if (why != NULL) {
        pt_log(LOG_WARNING,
               "session %llu: its kept connection (pid %d, '%s') is closed: %s; its process "
               "takes a session up again by reconnecting",
               (unsigned long long)id, (int)c->peer.pid, c->client_name, why);
        return -1;
    }
    c->session = k->session;
    c->id = id;
    if (k->has_who) {
        memcpy(c->key, k->who.key, sizeof(c->key));
        c->start_time = k->who.start_time;
        c->resumable = 1;
    }
    c->resumed = c->kept = 1;
    pt_core_session_set_udata(k->session, c);
    pt_core_session_awaited(c->daemon->core, k->session, 0);
    /* kept_watch counted it open only if it had anything and a process */
    if (!k->dead && !k->empty)
        r->open--;
    k->resumed = 1;
    r->taken++;
    r->kept_conns++;
    pt_log(LOG_INFO, "session %llu: connection kept across the restart (pid %d, '%s')",
           (unsigned long long)id, (int)c->peer.pid, c->client_name);
    return 0;
}
