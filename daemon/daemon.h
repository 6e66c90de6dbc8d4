/*
 * daemon.h - the parts of pythreadd shared between its files.
 *
 * pythreadd is one libevent loop thread. The listener accepts connections,
 * each connection (pt_conn) owns a socket, one persistent read event and one
 * core session. A readable socket is read once into the daemon-wide scratch
 * buffer and every complete frame is decoded (into one arena) and dispatched
 * straight from there; only a trailing partial frame is kept with the
 * connection. One callback serves one connection at most a turn's worth of
 * frames and answer bytes (PT_TURN_*): what is left is kept with it, its
 * reading stops, and it joins the ready list, which gets one turn per pass
 * of the loop, in order, each after a poll for everyone else's input. Every
 * answer the core gives, for this connection or any other, comes back
 * through the sink and is packed into that connection's output buffer,
 * which joins the pending list; at the end of each loop callback every
 * pending connection gets one write, and a write event is armed only when
 * one came up short. One timer serves every deadline the core keeps.
 * Nothing here blocks or sleeps.
 */
#ifndef PT_DAEMON_H
#define PT_DAEMON_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core.h"
#include "journal.h"
#include "spin.h"
#include "wire.h"

#define PT_DAEMON_NAME "pythreadd"

/* Limits of --max-frame: a request with the longest name and client name
 * must fit, and the decode arena (4x) must stay reasonable. */
#define PT_DAEMON_FRAME_MIN 1024u
#define PT_DAEMON_FRAME_MAX (16u << 20)

#define PT_DAEMON_MAX_SESSIONS 65536u
/* Sessions one uid may hold open at once. */
#define PT_DAEMON_MAX_SESSIONS_PER_UID 4096u
/* Default of --max-output: output a peer has not read yet before we stop
 * reading its requests; reading resumes once it drains below half. Answers
 * that wake-ups add meanwhile may take it to twice this, and past that, or
 * after --stall-timeout seconds over it, the session is cut off. */
#define PT_DAEMON_OUTPUT_MAX (8u << 20)
#define PT_DAEMON_OUTPUT_MIN (64u << 10)
/* Default of --max-output-per-uid: unread answers of all of one user's
 * sessions together. A session that adds to its user's unread output past
 * this is paused like one past --max-output, until its own output is read
 * (or its user's falls back under), and cut off after --stall-timeout.
 * Root is exempt. Twice --max-output, so one session alone meets its own
 * cap first; 16 MiB of the about 90 MiB one user may hold at the defaults
 * (the arithmetic is in core.h). */
#define PT_DAEMON_OUTPUT_PER_UID (16u << 20)
/* Default of --max-input-per-uid: bytes all of one user's sessions may hold
 * between reads (a frame begun and not finished, frames left for their next
 * turn). A well-behaved client's held input lasts a moment; holding much of
 * it is how 4096 sessions of one user would pin 4096 x 64 KiB. Root is
 * exempt; the quota is never below two frames of --max-frame. */
#define PT_DAEMON_INPUT_PER_UID (8u << 20)
/* What one session costs besides its handles, waiters and unread answers,
 * for the measure of load that decides when memory is given back: its
 * pt_conn (464 -> 480 with malloc's overhead), three events (3 x 144), the
 * core's session (128) and first chunk of handles (1552), and an output
 * buffer kept once drained (up to 4096 + 16). */
#define PT_DAEMON_MEM_SESSION 6704u
/* Memory is given back (pt_core_trim, idle buffers, malloc_trim)
 * PT_DAEMON_TRIM_MSEC after the load has fallen to half its peak since the
 * last time and by at least PT_DAEMON_TRIM_MIN. */
#define PT_DAEMON_TRIM_MIN  (256u << 10)
#define PT_DAEMON_TRIM_MSEC 1000u
/* Default and most of --grace: seconds the sessions of living processes
 * wait after a restart for their processes to take them up (resume.c). A
 * client notices at once and reconnects within milliseconds of the
 * daemon's return; the rest is room for a loaded machine. */
#define PT_DAEMON_GRACE_SEC 5u
#define PT_DAEMON_GRACE_MAX 3600u
/* Default and least of --compact-after: journal bytes past the last
 * snapshot before the next (state.c). A replay reads about 20 MB a second
 * of records (on the bench machine), so the default keeps a restart's
 * replay of them well under a second. */
#define PT_DAEMON_COMPACT_AFTER (8u << 20)
#define PT_DAEMON_COMPACT_MIN   1024u
/* At a planned restart that keeps the connections: how long answers that
 * carry a descriptor (a group's memfd) may take to be written, which only
 * this image can do; a connection that has not taken its by then ends, and
 * its process takes its session up again. */
#define PT_DAEMON_KEEP_DRAIN_MSEC 1000
/* Names of what goes to systemd's fd store at such a restart. */
#define PT_KEEP_FDNAME_CONN  "pythreadd-keep-conn"
#define PT_KEEP_FDNAME_TABLE "pythreadd-keep-table"
/* Default of --stall-timeout: seconds a peer may leave its answers unread
 * over the output cap before it is cut off. */
#define PT_DAEMON_STALL_SEC 30u
/* Default of --frame-timeout: seconds from the first byte of a frame to its
 * last; a peer that stalls in the middle (slowloris) is cut off. */
#define PT_DAEMON_FRAME_SEC 10u
/* How long a connection closed after a protocol error may take to flush its
 * error frame before it is dropped anyway. */
#define PT_DAEMON_LINGER_SEC 2
/* Defaults of --log-burst and --log-interval: messages about one user's
 * sessions logged per interval; the rest are counted. */
#define PT_DAEMON_LOG_BURST        20u
#define PT_DAEMON_LOG_INTERVAL_SEC 10u
/* Default of --socket-mode: reaching the daemon grants nothing by itself,
 * every object carries its own permissions. */
#define PT_DAEMON_SOCKET_MODE 0666u
/* Pause before accepting again after running out of file descriptors
 * without a reserve one to refuse the waiting clients with. */
#define PT_DAEMON_ACCEPT_RETRY_MSEC 200
/* Waiting clients refused on the reserve descriptor per callback. */
#define PT_DAEMON_ACCEPT_REFUSE_MAX 64
/* Descriptors the daemon keeps for its own use beside sessions (its loop,
 * signals, notifications to systemd), when sizing sessions to the limit. */
#define PT_DAEMON_FD_SLACK 16

/* --metrics (metrics.c, metrics_http.c): at most this many objects get
 * series of their own (--metrics-objects-max), named by at most this many
 * --metrics-object patterns; a session's metrics text being paged out over
 * the socket is kept for it, all sessions' together up to this many bytes.
 * The HTTP endpoint serves this many connections at once, each for at most
 * this many seconds, with requests of at most this many bytes of headers
 * and body. */
#define PT_METRICS_OBJECTS_DEFAULT 100u
#define PT_METRICS_OBJECTS_MAX     1000u
#define PT_METRICS_PATTERNS_MAX    32u
#define PT_METRICS_KEPT_MAX        (16u << 20)
#define PT_METRICS_HTTP_CONNS      16u
#define PT_METRICS_HTTP_SEC        10
#define PT_METRICS_HTTP_HEADERS    8192
#define PT_METRICS_HTTP_BODY       1024

/* Limits the daemon itself enforces (the core's are pt_core_limit), each
 * counted when it refuses a peer or cuts one off, for --metrics. */
typedef enum pt_daemon_limit {
    PT_DLIMIT_SESSIONS,         /* --max-sessions */
    PT_DLIMIT_SESSIONS_PER_UID, /* --max-sessions-per-uid */
    PT_DLIMIT_OPEN_FILES,       /* the open file limit */
    PT_DLIMIT_FRAME,            /* --max-frame */
    PT_DLIMIT_INPUT_PER_UID,    /* --max-input-per-uid */
    PT_DLIMIT_OUTPUT,           /* --max-output, over --stall-timeout */
    PT_DLIMIT_METRICS_KEPT,     /* PT_METRICS_KEPT_MAX */
    PT_DAEMON_LIMITS
} pt_daemon_limit;

typedef struct pt_daemon pt_daemon;
typedef struct pt_deadlocks pt_deadlocks;
typedef struct pt_fast pt_fast;

/* A Unix socket file this process bound: removed when it stops, if the
 * file there is still the one it bound. path[0] is 0 when there is none. */
typedef struct pt_bound {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
} pt_bound;
typedef struct pt_statedir pt_statedir;
typedef struct pt_resume pt_resume;
typedef struct pt_cluster pt_cluster;

/* First size of a connection's output buffer, and the most it keeps once
 * drained: an idle session holds at most this, a burst of answers (or a big
 * inspection answer) grows it only while it lasts. */
#define PT_CONN_OUT_FIRST 512u
#define PT_CONN_OUT_KEEP  (4u << 10)
/* First size of the buffer that holds a partial frame between reads. */
#define PT_CONN_IN_FIRST 256u

/* One turn of a connection: at most this many of its frames, and no new
 * frame once its answers of the turn reach this many bytes; the rest waits
 * for its next turn. A turn is the longest anyone waits for one busy peer:
 * 64 small requests take some tens of microseconds, 16 KiB of inspection
 * answers (one LIST page at most) a few hundred. */
#define PT_TURN_FRAMES 64u
#define PT_TURN_BYTES  (16u << 10)
/* A read of more than this while connections wait on the ready list is not
 * served at once but queued behind them: a busy peer's next burst waits its
 * turn, while a request or a few (far less) are still answered at once. */
#define PT_TURN_QUEUE_BYTES (4u << 10)

/* One client connection: its socket and the core session behind it. */
typedef struct pt_conn {
    TAILQ_ENTRY(pt_conn) link;
    LIST_ENTRY(pt_conn) pending_link; /* on pt_daemon.pending while queued */
    TAILQ_ENTRY(pt_conn) ready_link;  /* on pt_daemon.ready while ready */
    pt_daemon *daemon;
    int fd;
    struct event *read_ev;  /* persistent; added only while reading */
    struct event *write_ev; /* added only while a write came up short */
    pt_session *session;    /* NULL once the core session has ended */
    pt_peer peer;           /* from SO_PEERCRED, never from the peer's words */
    uint64_t id;            /* session id, kept for logs after the session ends */
    struct pt_user *user;   /* its uid's unread output; NULL for root (exempt) */
    size_t out_counted;     /* unread output as last added to the counts */
    size_t in_counted;      /* held input (in_cap) as last added to the counts */
    unsigned hello : 1;     /* the hello has been answered */
    unsigned closing : 1;   /* no more reading; answers are dropped */
    unsigned paused : 1;    /* reading stopped until the output drains */
    unsigned queued : 1;    /* on the pending list */
    unsigned writing : 1;   /* write_ev is added */
    unsigned ready : 1;     /* on the ready list: whole frames wait for a turn */
    unsigned reading : 1;   /* read_ev is added */
    /* Input not yet handled, in[in_off..in_len): while reading, the start
     * of one frame (less than a whole one); while ready or paused, frames
     * not handled yet. NULL when empty, so an idle session holds none. */
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    /* Packed answers; out[out_off..out_len) is not written yet. */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    /* Cuts off a frame left half-sent, answers left unread too long or a
     * closing peer that will not read its last frames; armed for whichever
     * is pending. Also made active at once to end a session that was cut
     * off from inside the core. */
    struct event *guard;
    uint64_t partial_since; /* when the pending partial frame began, or 0 */
    const char *cut_reason; /* why a deferred close happens, for the log */
    uint64_t requests;
    uint64_t responses;
    uint64_t since; /* accepted at (pt_daemon_now) */
    uint32_t sid;   /* its id in shared words (fast.c), 0 = none */
    /* A Lock acquire whose caller reads for its process and watches the
     * word meanwhile (fastwake.h): whatever is written to this session
     * wakes it, until the answer to that request is written. */
    uint32_t watch_ref; /* the lock's cell, 0 = none */
    uint32_t watch_tid;
    uint64_t watch_id;
    unsigned watch_done : 1; /* that answer is queued: the next flush wakes it last */
    uint64_t out_sent;       /* bytes written since the start */
    /* Descriptors to pass, each with the byte at stream position pos (the
     * first of the frame that names it), in order. */
    struct pt_conn_fd {
        uint64_t pos;
        int fd;
    } * fds;
    uint32_t nfds, capfds;
    uint32_t *groups_sent; /* groups whose memfd it was given */
    uint32_t ngroups_sent;
    /* With --state-dir: the key its process takes the session up again
     * with after a restart (resume.c). */
    unsigned resumable : 1;
    unsigned resumed : 1; /* it took up a session kept across a restart */
    unsigned kept : 1;    /* the connection itself was kept across it (keep.c) */
    /* With --etcd: it has a session in the cluster's copy (cluster.c). */
    unsigned cluster : 1;
    LIST_ENTRY(pt_conn) cluster_link;
    uint8_t key[PT_RESUME_KEY_LEN];
    uint64_t start_time; /* its process's, with the key */
    /* OP_METRICS: the rest of the text being paged out, and where it is. */
    struct evbuffer *metrics;
    uint64_t metrics_off;
    char client_name[PT_WIRE_NAME_MAX + 1];
} pt_conn;

TAILQ_HEAD(pt_conn_list, pt_conn);

struct pt_daemon {
    struct event_base *base;
    pt_core *core;
    struct evconnlistener *listener;
    struct event *timer;
    uint64_t timer_at; /* deadline the timer is armed for, or PT_DEADLINE_NONE */
    struct event *sig_int;
    struct event *sig_term;
    struct event *sig_usr2; /* upgrade.c */
    int upgrade;            /* the loop stopped for SIGUSR2: exec the new image */
    int stop_signal;        /* what stopped the loop (SIGINT, SIGTERM), else 0 */
    int failed;             /* the loop was stopped by a failure it logged (exit 1) */
    int keep_words;         /* the stop keeps connections: words stay claimed */
    struct pt_keep *keep;   /* connections handed over to this image (keep.c) */
    pt_wire_arena arena;    /* one decode arena, reset after every message */
    void *arena_buf;
    uint32_t max_frame;
    uint32_t max_sessions;
    int max_sessions_chosen; /* given by --max-sessions, not the default */
    uint32_t max_sessions_per_uid;
    uint32_t max_output;         /* bytes of unread answers before pausing */
    uint32_t max_output_per_uid; /* the same for all of a uid's sessions; 0: none */
    uint32_t max_input_per_uid;  /* input held between reads, all of a uid's sessions */
    uint32_t stall_timeout;      /* seconds over max_output before a cut-off */
    uint32_t frame_timeout;      /* seconds to complete a frame once begun */
    uint32_t socket_mode;        /* mode of the socket file we bind */
    uint32_t nconns;
    pt_spin spin;            /* polling before the loop sleeps (--spin-usec) */
    pt_fast *fast;           /* the shared words; NULL with --no-fast-path */
    pt_statedir *state;      /* --state-dir, else NULL */
    pt_journal *journal;     /* what goes to it, else NULL */
    pt_resume *resume;       /* sessions kept across a restart, else NULL */
    pt_cluster *cluster;     /* --etcd, else NULL */
    pt_deadlocks *deadlocks; /* the last ones that no longer stand (deadlock.c) */
    uint32_t grace_ms;       /* --grace: how long they are kept */
    uint64_t served;         /* reads and turns served: the loop's measure of work */
    int accept_paused;
    /* Open on /dev/null, set by pt_listen_start: closed to accept one more
     * connection at the open file limit and refuse it, then taken back.
     * -1 when none could be had. */
    int spare_fd;
    struct pt_conn_list conns;
    /* Connections with answers to write (or closing, to be freed once
     * drained); flushed at the end of every loop callback. A LIST so that a
     * zeroed daemon starts with it empty. */
    LIST_HEAD(pt_conn_pending, pt_conn) pending;
    /* Connections with whole frames left over from their last turn, served
     * one turn per runner callback, in order; the runner is a timer of no
     * delay, so each of its callbacks comes after a poll of the sockets.
     * Both are set up with the first connection. */
    TAILQ_HEAD(pt_conn_ready, pt_conn) ready;
    struct event *runner;
    /* The one read buffer (4 + max_frame bytes) every connection reads
     * into; allocated with the first connection. */
    uint8_t *rbuf;
    size_t rbuf_size;
    /* The socket file this process bound and must remove on exit; empty
     * when the listening socket was handed over (socket activation). */
    pt_bound bound;
    struct pt_systemd *systemd; /* NULL unless systemd watches us */
    /* --metrics: the endpoint (NULL without), where it is, the objects
     * given series of their own, the limits that refused, and the metrics
     * texts kept for sessions paging them out. */
    struct pt_metrics_http *metrics_http;
    char metrics_address[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
    const char *const *metrics_objects; /* --metrics-object patterns */
    uint32_t nmetrics_objects;
    uint32_t metrics_objects_max;
    uint64_t refused[PT_DAEMON_LIMITS];
    uint64_t metrics_kept;
    uint64_t started;    /* pt_daemon_now at start, for uptime */
    double started_wall; /* the same moment in seconds since the epoch */
    uint64_t requests;   /* requests served, hellos and inspection included */
    /* memory.c: unread output per uid and in all, and giving memory back. */
    LIST_HEAD(pt_user_list, pt_user) users;
    uint64_t out_unread;     /* unread answers of every session */
    uint64_t in_held;        /* input every session holds between reads */
    uint64_t mem_peak;       /* highest load since memory was last given back */
    struct event *mem_timer; /* armed when the load has fallen: gives it back */
};

/* log.c: "<N>message\n" lines on stderr, N a syslog priority (LOG_ERR...),
 * written without ever waiting for the reader: a line that does not fit is
 * dropped and counted, and the count is logged once there is room. */
void pt_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_log_set_verbose(int verbose);
/* A message about what a peer of user uid did: at most burst of them per
 * user every interval seconds (pt_log_start), the rest counted and summed
 * up in one line when the interval ends. */
void pt_log_peer(uid_t uid, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The per-user limit and the timer of its summary lines; -1 when out of
 * memory. Without it the defaults hold and summaries wait for the user's
 * next message. */
int pt_log_start(struct event_base *base, uint32_t burst, uint32_t interval);
/* Summaries still due, then the timer freed (before the event base). */
void pt_log_stop(void);

/* memory.c */
int pt_mem_init(pt_daemon *d);
void pt_mem_free(pt_daemon *d);
/* Count c's unread output under its uid; -1 when out of memory. */
int pt_mem_attach(pt_conn *c);
/* c is going: its unread output leaves the counts. */
void pt_mem_detach(pt_conn *c);
/* c's out_off or out_len changed: bring the counts up to date. */
void pt_mem_output(pt_conn *c);
/* Is c's uid over --max-output-per-uid? (never for root) */
int pt_mem_user_over(const pt_conn *c);
/* c's in_cap changed: bring the counts up to date. */
void pt_mem_input(pt_conn *c);
/* Is c's uid over --max-input-per-uid? (never for root) */
int pt_mem_user_input_over(const pt_conn *c);
/* After every loop callback: if the load has fallen well below its peak,
 * give memory back PT_DAEMON_TRIM_MSEC later (so never more often). */
void pt_mem_settle(pt_daemon *d);

/* timer.c */
uint64_t pt_daemon_now(void);
uint64_t pt_daemon_token_base(void);
int pt_daemon_timer_init(pt_daemon *d);
/* Re-arm the one timer to the core's next deadline if it moved; called after
 * every batch of work. */
void pt_daemon_timer_update(pt_daemon *d, uint64_t now);
/* End of a loop callback: write every pending answer, then re-arm the timer
 * (a write error may end a session and so move a deadline), and give memory
 * back if the load has fallen well below its peak. */
void pt_daemon_settle(pt_daemon *d, uint64_t now);

/* listen.c */
/* Bind and listen on path, replacing a stale socket and refusing a live
 * one; creates the parent directory if missing. Returns the listening fd or
 * -1 after logging why. */
int pt_listen_bind(pt_daemon *d, const char *path);
/* Serve connections on a listening fd (ours or one handed over). */
int pt_listen_start(pt_daemon *d, int fd);
/* Remove the socket file bound by pt_listen_bind, if it is still ours. */
void pt_listen_unlink(pt_daemon *d);
/* pt_listen_bind's work for any socket file: the option that chose path is
 * named in the messages, the file gets mode, and bound says what to remove
 * at the stop (pt_bound_unlink). */
int pt_listen_unix(const char *path, const char *option, uint32_t mode, pt_bound *bound);
void pt_bound_unlink(pt_bound *bound);
/* Accept again after a pause for lack of file descriptors. */
void pt_listen_resume(pt_daemon *d);

/* systemd.c */
/* The listening socket systemd handed over (socket activation): 1 with *fd
 * set, 0 when none was passed, -1 after logging why it cannot be served.
 * What came from the fd store, or across execve() (keep.c), goes to
 * d->keep. */
int pt_systemd_listen_fd(pt_daemon *d, int *fd);
/* READY=1 once serving on `where`, then STATUS= updates and WATCHDOG=1 at
 * half the watchdog interval from a loop timer; nothing without
 * NOTIFY_SOCKET. -1 after logging. */
int pt_systemd_ready(pt_daemon *d, const char *where);
/* STOPPING=1 on the way out. */
void pt_systemd_stopping(pt_daemon *d);
void pt_systemd_free(pt_daemon *d);

/* session.c */
/* A connection the last image handed over (keep.c): its session, and the
 * bytes it had read and not handled, answered and not written. */
typedef struct pt_conn_kept {
    uint64_t session;
    uint32_t sid;
    int hello;
    uint64_t requests, responses, since;
    const uint8_t *in, *out;
    uint32_t in_len, out_len;
    const char *client_name;
} pt_conn_kept;
/* Bind fd to its replayed session and go on where the last image stopped;
 * -1 (fd closed, logged) when the session is not there. */
int pt_conn_adopt(pt_daemon *d, int fd, const pt_conn_kept *k);
/* Can c be handed over as it stands (keep.c)? */
int pt_conn_keepable(const pt_conn *c);
/* Write what is queued; answers carrying a descriptor get up to ms. */
void pt_conn_drain(pt_daemon *d, int ms);
void pt_conn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                    void *arg);
/* Queue one response frame on c's output; it is written by the next
 * pt_conn_flush_pending. */
void pt_conn_send(pt_conn *c, const Pythread__Response *resp);
/* Wake thread's watch of the Lock in cell ref whenever answers are written,
 * until the answer to request id is (fastwake.h). */
void pt_conn_watch(pt_conn *c, uint32_t ref, uint64_t thread, uint64_t id);
void pt_conn_send_fd(pt_conn *c, const Pythread__Response *resp, int fd);
/* The grace is over: serve the calls held back. */
void pt_conn_ungate_all(pt_daemon *d, uint64_t now);
/* An answer that only says status and why. */
void pt_conn_send_error(pt_conn *c, uint64_t id, int status, const char *message);
/* Close c after its answers and a last word (message, for its library to
 * tell its callers); its session ends now. */
void pt_conn_close_with(pt_conn *c, const char *message, uint64_t now);
/* One write for each connection with queued answers. */
void pt_conn_flush_pending(pt_daemon *d);
/* Drop every connection at shutdown, and the read buffer; the core must
 * already be freed. */
void pt_conn_free_all(pt_daemon *d);
/* Mark every connection closing so no answer is queued any more. */
void pt_conn_close_all(pt_daemon *d);
/* Free the output buffers idle connections keep for their next answers. */
void pt_conn_trim(pt_daemon *d);

/* deadlock.c: the deadlocks the core finds, logged and kept for
 * pythreadctl deadlocks. Those that no longer stand (failed at once, or
 * broken since) are kept, the last PT_DAEMON_DEADLOCKS_KEPT, each with at
 * most PT_DAEMON_DEADLOCK_MEMBERS owners as they were; the standing ones
 * are the core's. */
#define PT_DAEMON_DEADLOCKS_KEPT   16u
#define PT_DAEMON_DEADLOCK_MEMBERS 16u

typedef struct pt_dl_member {
    uint64_t session, thread, request;
    pid_t pid;
    uid_t uid;
    int waits_kind;
    uid_t obj_uid; /* of what it waits for: who may read it */
    gid_t obj_gid;
    uint32_t obj_mode;
    int reacquire;
    char process[PT_WIRE_NAME_MAX + 1];
    char waits[PT_WIRE_NAME_MAX + 1];
    char via[PT_WIRE_NAME_MAX + 1];
} pt_dl_member;

typedef struct pt_dl_record {
    uint64_t id;
    int state;           /* pt_cycle_state */
    double found, ended; /* seconds since the epoch; ended 0 while standing */
    size_t n;            /* owners in it */
    size_t broke;        /* see pt_core_cycle */
    int released;
    size_t nmembers; /* kept: at most PT_DAEMON_DEADLOCK_MEMBERS */
    pt_dl_member members[PT_DAEMON_DEADLOCK_MEMBERS];
} pt_dl_record;

/* Hooks on the core (after its journal is replayed: old deadlocks are not
 * logged again); -1 when out of memory. */
int pt_deadlock_start(pt_daemon *d);
void pt_deadlock_free(pt_daemon *d);
/* A core's cycle as the daemon keeps it (now: the core's clock now). */
void pt_deadlock_record_fill(pt_dl_record *r, const pt_core_cycle *cy, uint64_t now);
/* fn for each one kept, newest first. */
void pt_deadlock_recent_each(const pt_daemon *d, void (*fn)(void *ctx, const pt_dl_record *r),
                             void *ctx);

/* inspect.c: status, list, show, sessions, metrics and deadlocks for
 * pythreadctl */
void pt_inspect_start(pt_daemon *d);
void pt_inspect_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now);
/* c goes: the metrics text it was paging out goes with it. */
void pt_inspect_conn_free(pt_conn *c);

/* metrics.c: the Prometheus text (version 0.0.4) both --metrics and
 * OP_METRICS serve, appended to out. asker (NULL: nobody) sees series of
 * its own only for the objects it may read. -1 when out of memory. */
int pt_metrics_text(pt_daemon *d, const pt_session *asker, uint64_t now, struct evbuffer *out);

/* metrics_http.c: where --metrics serves (main.c reads the option): the
 * loopback, 127.0.0.1 or ::1, with a port (0: any free one), or a socket
 * file at an absolute path. */
typedef struct pt_metrics_where {
    int family; /* AF_INET, AF_INET6 or AF_UNIX */
    uint16_t port;
    const char *path;
} pt_metrics_where;
/* Serve GET /metrics there (d->metrics_address says where, with the port
 * chosen); -1 after logging why not. */
int pt_metrics_http_start(pt_daemon *d, const pt_metrics_where *where);
/* Close it and remove the socket file it bound. */
void pt_metrics_http_stop(pt_daemon *d);

/* dispatch.c */
/* state.c: --state-dir. Open DIR's journal and replay it into the core
 * (*entries: inputs replayed); -1 after logging. */
int pt_state_open(pt_daemon *d, const char *dir, int sync, uint32_t compact_after,
                  uint64_t *entries);
/* Once the fast path is set up: record the restart of a replayed state. */
void pt_state_restarted(pt_daemon *d, uint64_t entries);
/* The whole of the file fd (pread from 0) in a malloc'd *out. -1 on error. */
int pt_file_read_all(int fd, uint8_t **out, size_t *len);
/* Append what was recorded, before a shared word can show what it did
 * (pt_fast_publish_all): a client reads a word as it reads an answer. */
void pt_state_append(pt_daemon *d);
/* The same, made durable with --sync: before answers are written. */
void pt_state_flush(pt_daemon *d);
/* What status tells of it (nothing without --state-dir). */
void pt_state_status(const pt_daemon *d, Pythread__StatusInfo *st);
/* At a stop: record the words as they are, append, close the file (the
 * journal itself is freed with the core, in daemon_free). */
void pt_state_close(pt_daemon *d);

/* After a pass of the loop: when the journal has grown enough past its
 * last snapshot and every answer given is written, begin a new snapshot
 * (state.c: written by a thread, put in place by the loop when done).
 * pt_state_compact asks for one at the next chance whatever the size. */
void pt_state_compact_maybe(pt_daemon *d);
void pt_state_compact(pt_daemon *d);

/* resume.c: sessions kept across a restart. */
/* Before the replay: keep its sessions and their answers (hooks to give
 * it); -1 when out of memory. */
int pt_resume_new(pt_daemon *d, pt_journal_replay_hooks *hooks);
/* After it: answers go to connections again, and the grace period of
 * grace_ms starts for the sessions whose processes live (or the restart is
 * made at once when there is none). */
void pt_resume_start(pt_daemon *d, uint32_t grace_ms);
/* In the grace period: only hellos are served. */
int pt_resume_grace(const pt_daemon *d);
/* How a new connection's process will take its session up again; -1 when
 * no key can be had. */
int pt_resume_who(const pt_conn *c, pt_journal_who *who);
/* For a snapshot (pt_journal_who_fn, ctx unused): how the process of
 * session s takes it up, as its connection was told. */
int pt_resume_who_of(void *ctx, const pt_session *s, pt_journal_who *out);
/* What a resuming hello leads to: calls to send again, answers to repeat. */
typedef struct pt_resume_taken {
    uint64_t *resend;
    size_t nresend;
    const pt_result **again; /* the answers the journal gave */
    size_t nagain;
} pt_resume_taken;
/* c's hello names a kept session: 0 when c takes it up (t says what
 * follows), -1 when it cannot (no such session, not this process, grace
 * over). */
int pt_resume_hello(pt_conn *c, const Pythread__HelloArgs *h, pt_resume_taken *t, uint64_t now);
/* After the hello's answer: the repeated answers go, t is freed. */
void pt_resume_taken_done(pt_conn *c, pt_resume_taken *t);
/* What status tells of the sessions this start kept. */
void pt_resume_status(const pt_daemon *d, Pythread__StatusInfo *st);
void pt_resume_free(pt_daemon *d);
/* c, a connection kept across the restart, takes session id up at once:
 * no hello, no reclaims (the old image read every word). -1 when no such
 * session waits, or it is another process's. */
int pt_resume_adopt(pt_conn *c, uint64_t id);

/* keep.c: connections kept across a planned restart. */
/* At start, before the replay: what the old image passed across execve()
 * (its environment names the table; the sockets are among LISTEN_FDS, and
 * pt_keep_passed tells them from the listener), or what systemd passed
 * from its fd store (table_fd -1 when only sockets came). */
void pt_keep_take_exec(pt_daemon *d);
int pt_keep_passed(pt_daemon *d, int fd);
int pt_keep_take_store(pt_daemon *d, int table_fd, const int *fds, size_t n);
/* In the replayed state, before anything is served: each kept socket is
 * its session's connection again. */
void pt_keep_adopt(pt_daemon *d);
/* Close what was not adopted and take it all out of systemd's store. */
void pt_keep_free(pt_daemon *d);
/* Does this stop keep the connections (SIGUSR2, or SIGTERM under systemd,
 * with --state-dir)? */
int pt_keep_wanted(const pt_daemon *d);
/* The clean stop with the connections handed over: for SIGUSR2 the table's
 * descriptor is in the environment for execve(), under systemd everything
 * is in its fd store. -1 after logging (the connections end). */
int pt_keep_handover(pt_daemon *d);
/* For execve() after a hand-over: the listener as 3, the kept sockets and
 * the table after it, all in LISTEN_FDS, the table named in the
 * environment. 1 when passed so, 0 when nothing was handed over, -1 when
 * they cannot be (logged; nothing changed). */
int pt_keep_exec_pass(int listen_fd);

/* upgrade.c: SIGUSR2 replaces the running image with the program at its
 * path, keeping the state, the sessions and the listening socket. */
/* Remember the program's path and arguments (at start). */
void pt_upgrade_init(char **argv);
/* Whether SIGUSR2 can be acted on now; logs why not. */
int pt_upgrade_wanted(pt_daemon *d);
/* Journal closed, listening socket passed: execve(). Returns only when it
 * failed (logged). */
void pt_upgrade_exec(pt_daemon *d, int listen_fd);
/* In the new image: a handed-over socket at the old one's path is its own
 * to remove at its stop. */
void pt_upgrade_adopt(pt_daemon *d, int fd);

/* fast.c */
pt_fast *pt_fast_new(pt_daemon *d, uint32_t capacity);
void pt_fast_free(pt_fast *f);
uint32_t pt_fast_session_add(pt_fast *f, pt_conn *c);
void pt_fast_session_remove(pt_fast *f, uint32_t sid);
/* After every entry into the core: write the words of what it claimed. */
void pt_fast_publish_all(pt_fast *f);
void pt_fast_wake_watcher(pt_fast *f, uint32_t ref, uint32_t tid);
void pt_fast_answer(pt_fast *f, pt_conn *c, uint32_t ref, uint32_t slot, Pythread__FastCell *out,
                    int *fd);
/* A kept connection keeps its session's id in words (0 when it cannot). */
uint32_t pt_fast_session_keep(pt_fast *f, pt_conn *c, uint32_t sid);
/* Groups numbered so far, and the number they start after. */
uint32_t pt_fast_groups(const pt_fast *f);
uint32_t pt_fast_groups_base(const pt_fast *f);
/* Number this image's groups after the last image's n: a kept client
 * still maps those under their numbers. */
void pt_fast_groups_after(pt_fast *f, uint32_t n);
/* The words are handed over, claimed: whatever this image does from now
 * on works on a private copy of them. -1 when no copy could be made. */
int pt_fast_retire(pt_fast *f);

void pt_dispatch_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now);
void pt_dispatch_sink(void *ctx, pt_session *session, const pt_result *result);
/* An answer as the sink sends it, without a shared cell; state is filled
 * when the answer has one. */
void pt_dispatch_answer(const pt_result *res, Pythread__Response *r, Pythread__State *state);

#endif /* PT_DAEMON_H */
