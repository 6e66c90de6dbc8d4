/*
 * client_int.h - the insides of a pt_client, shared by the files of the
 * session: client.c (connect and hello, the calls, the reading role),
 * resume.c (taking the session up again after the daemon restarts) and
 * monitor.c (noticing the daemon's end when no caller reads). The object
 * modules see only session.h. Not installed.
 */
#ifndef PT_CLIENT_INT_H
#define PT_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/un.h>

#include "session.h"
#include "spin.h"

#define PENDING_BUCKETS 64u /* power of two: ids are sequential */

typedef struct pending {
    LIST_ENTRY(pending) link;   /* in its id bucket while unanswered */
    TAILQ_ENTRY(pending) qlink; /* in the parked queue while it sleeps */
    uint64_t id;
    pthread_cond_t cond;
    int done;
    int queued;
    pt__reply *rep;
    char *errbuf;           /* the caller's thread-local message buffer */
    Pythread__Request *req; /* the caller's, to send again after a restart */
    uint64_t sent_ns;       /* when it was sent (pt_spin_now_ns) */
} pending;

LIST_HEAD(pending_list, pending);
TAILQ_HEAD(pending_queue, pending);
LIST_HEAD(object_list, pt_object);

/* A group of shared cells the daemon passed (fastword.h), mapped until the
 * client closes: objects of an older session may still point into it. */
typedef struct fast_map {
    uint32_t gen;
    uint32_t group;
    void *base;
    size_t size;
} fast_map;

struct pt_client {
    pthread_mutex_t mu;
    int fd;      /* -1: no session; the next call connects */
    int reading; /* a thread is in recv() with mu dropped */
    /* Broadcast under mu when reading turns 0, when gen changes and when
     * the monitor is told to stop: the monitor and pt_client_session_wait
     * wait on it for the reader of an ended connection to take the end in
     * (pt__client_end_take). */
    pthread_cond_t reader_cv;
    pt_spin spin;       /* the reader's polling before recv() blocks */
    uint32_t gen;       /* session generation, bumped by every connect */
    atomic_uint forked; /* fork generation this state belongs to */
    uint64_t next_id;
    uint64_t session_id;
    uint32_t max_frame; /* the daemon's limit for our messages */
    struct pending_list pending[PENDING_BUCKETS];
    struct pending_queue parked; /* callers waiting for an answer or their turn to read */
    uint8_t *rbuf;               /* 4 + max frame: always room for one whole frame */
    size_t rcap;
    size_t rlen;
    void *arena_mem;
    pt_wire_arena arena;
    struct object_list objects; /* guarded by pt__registry_mu */
    /* The fast path: gen << 32 | the session's id in words while the
     * session is up and this process's own, else 0; read without mu. */
    _Atomic uint64_t fast_live;
    int fast_off;             /* PYTHREAD_FASTPATH=0 */
    atomic_int deadlock_fail; /* PT_DEADLOCK_FAIL for every wait (pt_client_set_deadlock) */
    uint32_t fast_id;         /* the hello's, for the session being opened */
    int *fdq;                 /* descriptors received, not yet claimed by their answer */
    unsigned nfdq, capfdq;
    fast_map *maps;
    unsigned nmaps;
    char why[256]; /* why the session is ending, when known */
    /* A loss no call has heard of (the monitor took in the end while no
     * call waited): the next call fails with it before it reconnects. */
    char loss[PT__ERRMSG_MAX];
    /* Taking the session up again after a restart of the daemon. */
    uint8_t resume_key[PT_WIRE_RESUME_KEY_MAX];
    size_t resume_key_len; /* 0: the daemon does not keep sessions */
    int resume_off;        /* PYTHREAD_RESUME=0 */
    /* The monitor thread, in the fork generation that started it. */
    pthread_t monitor;
    int monitor_on;
    int monitor_stop;
    int wake[2]; /* a pipe that wakes it: the socket changed, or the client closes */
    int loss_fd; /* pt_client_loss_fd's eventfd, or -1 */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * Guards every client's list of objects and the reset after fork; the
 * atfork handlers hold it across fork() so a child never inherits a list
 * half-updated.
 */
extern pthread_mutex_t pt__registry_mu;

/* ------------------------------------------------------------------ */
/* client.c                                                            */
/* ------------------------------------------------------------------ */

/* Take the client's mutex, first starting over if this is a forked child. */
void pt__client_enter(pt_client *c);
/* The unanswered call with this id, NULL if none. */
pending *pt__pending_find(pt_client *c, uint64_t id);
/* Write all of buf; 0 or -errno. */
int pt__send_all(int fd, const uint8_t *buf, size_t len);
/* How long a new session waits for the daemon ($PYTHREAD_CONNECT_TIMEOUT). */
int pt__connect_timeout_ms(void);
/* A connected socket to a trusted daemon in *out, or an error (*err: the
 * connect's errno, 0 for any other failure). */
int pt__client_dial(pt_client *c, int *out, int *err);

/* What a hello that names a session to take up again carries and brings
 * (resume.c). */
typedef struct hello_resume hello_resume;

/* Say hello on fd (hr: to take the session up again); the session is then
 * a new generation. Called with mu held and no session. */
int pt__client_open_on(pt_client *c, int fd, hello_resume *hr);
/* The connection has ended: read the end in (the session is taken up again
 * or lost) or, while another thread reads, wait until it gives the role up.
 * Called with mu held; the caller looks at the session again after. */
void pt__client_end_take(pt_client *c);

/* ------------------------------------------------------------------ */
/* resume.c                                                            */
/* ------------------------------------------------------------------ */

/* The connection ended: when the daemon keeps sessions, take this one up
 * again. 0 when it was (the pending calls go on), -1 when the session is
 * lost (why then says why, in len bytes). Called with mu held and nobody
 * reading. */
int pt__client_resume(pt_client *c, uint32_t old_sid, char *why, size_t len);
/* No session now: its connection closes (mu held, nobody reading). */
void pt__conn_close(pt_client *c);
/* A hello's answer: keep the key that takes the session up again; with hr,
 * what a resuming hello brought back. */
void pt__resume_info_take(pt_client *c, const Pythread__HelloInfo *info, hello_resume *hr);
/* The hello of a resuming session names it and says what it knows. */
void pt__hello_resume_fill(const pt_client *c, const hello_resume *hr, Pythread__HelloArgs *h);

/* ------------------------------------------------------------------ */
/* monitor.c                                                           */
/* ------------------------------------------------------------------ */

/* Start the monitor if it is not running (mu held). 0, or -1 without one. */
int pt__monitor_start(pt_client *c);
/* The socket changed, or the client is closing: the monitor looks again. */
void pt__monitor_wake(pt_client *c);
/* Stop and join the monitor; called without mu when no other thread may
 * use the client any more. */
void pt__monitor_stop(pt_client *c);
/* In a forked child: the parent's monitor is not here, its pipe is. */
void pt__monitor_forget(pt_client *c);
/* A session ended and was not taken up: the loss descriptor turns
 * readable (mu held). */
void pt__loss_tell(pt_client *c);

#endif /* PT_CLIENT_INT_H */
