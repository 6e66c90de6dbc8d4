/*
 * pythreadd - hosts named Lock, RLock, Condition, Semaphore,
 * BoundedSemaphore, Event and Barrier objects for every process that links
 * libpythread, with the semantics of Python's threading module.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "cluster.h"
#include "cluster_core.h"
#include "daemon.h"

/* Exit codes: 0 stopped cleanly, 1 could not start or run, 2 bad usage. */
enum { EXIT_USAGE = 2 };

typedef struct options {
    const char *socket;
    uint32_t max_frame;
    uint32_t max_sessions;
    uint32_t max_sessions_per_uid;
    uint32_t max_output_per_uid;
    uint32_t max_input_per_uid;
    uint32_t max_output;
    uint32_t stall_timeout;
    uint32_t frame_timeout;
    uint32_t log_burst;    /* messages about one user's sessions per interval */
    uint32_t log_interval; /* seconds */
    uint32_t socket_mode;
    uint32_t spin_usec;
    int no_fast_path;
    const char *state_dir; /* NULL: the state ends with the daemon */
    int sync;
    uint32_t grace;         /* seconds sessions wait for their processes after a restart */
    uint32_t compact_after; /* journal bytes past the last snapshot before the next */
    pt_core_limits limits;  /* 0 = the core's default */
    int verbose;
    int metrics;                    /* --metrics given */
    pt_metrics_where metrics_where; /* ... and where */
    const char *metrics_objects[PT_METRICS_PATTERNS_MAX];
    uint32_t nmetrics_objects;
    uint32_t metrics_objects_max;
    pt_cluster_options cluster; /* --etcd and its companions */
    char host[PT_CCORE_HOST_MAX + 1];
} options;

enum {
    OPT_MAX_FRAME = 256,
    OPT_MAX_SESSIONS,
    OPT_MAX_OBJECTS,
    OPT_MAX_HANDLES,
    OPT_MAX_WAITERS,
    OPT_MAX_OBJECTS_PER_UID,
    OPT_MAX_SESSIONS_PER_UID,
    OPT_MAX_HANDLES_PER_UID,
    OPT_MAX_WAITERS_PER_UID,
    OPT_MAX_OUTPUT_PER_UID,
    OPT_MAX_INPUT_PER_UID,
    OPT_MAX_OUTPUT,
    OPT_STALL_TIMEOUT,
    OPT_FRAME_TIMEOUT,
    OPT_LOG_BURST,
    OPT_LOG_INTERVAL,
    OPT_SOCKET_MODE,
    OPT_SPIN_USEC,
    OPT_NO_FAST_PATH,
    OPT_STATE_DIR,
    OPT_SYNC,
    OPT_GRACE,
    OPT_COMPACT_AFTER,
    OPT_METRICS,
    OPT_METRICS_OBJECT,
    OPT_METRICS_OBJECTS_MAX,
    OPT_ETCD,
    OPT_ETCD_PREFIX,
    OPT_ETCD_TTL,
    OPT_ETCD_CACERT,
    OPT_ETCD_CERT,
    OPT_ETCD_KEY,
    OPT_ETCD_SNAPSHOT_EVERY,
    OPT_ETCD_KEEP_HISTORY,
    OPT_HOST_NAME,
};

static const struct option long_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-objects", required_argument, NULL, OPT_MAX_OBJECTS},
    {"max-handles", required_argument, NULL, OPT_MAX_HANDLES},
    {"max-waiters", required_argument, NULL, OPT_MAX_WAITERS},
    {"max-objects-per-uid", required_argument, NULL, OPT_MAX_OBJECTS_PER_UID},
    {"max-sessions-per-uid", required_argument, NULL, OPT_MAX_SESSIONS_PER_UID},
    {"max-handles-per-uid", required_argument, NULL, OPT_MAX_HANDLES_PER_UID},
    {"max-waiters-per-uid", required_argument, NULL, OPT_MAX_WAITERS_PER_UID},
    {"max-output-per-uid", required_argument, NULL, OPT_MAX_OUTPUT_PER_UID},
    {"max-input-per-uid", required_argument, NULL, OPT_MAX_INPUT_PER_UID},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT},
    {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
    {"log-burst", required_argument, NULL, OPT_LOG_BURST},
    {"log-interval", required_argument, NULL, OPT_LOG_INTERVAL},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"spin-usec", required_argument, NULL, OPT_SPIN_USEC},
    {"no-fast-path", no_argument, NULL, OPT_NO_FAST_PATH},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"sync", no_argument, NULL, OPT_SYNC},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"compact-after", required_argument, NULL, OPT_COMPACT_AFTER},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"metrics-object", required_argument, NULL, OPT_METRICS_OBJECT},
    {"metrics-objects-max", required_argument, NULL, OPT_METRICS_OBJECTS_MAX},
    {"etcd", required_argument, NULL, OPT_ETCD},
    {"etcd-prefix", required_argument, NULL, OPT_ETCD_PREFIX},
    {"etcd-ttl", required_argument, NULL, OPT_ETCD_TTL},
    {"etcd-cacert", required_argument, NULL, OPT_ETCD_CACERT},
    {"etcd-cert", required_argument, NULL, OPT_ETCD_CERT},
    {"etcd-key", required_argument, NULL, OPT_ETCD_KEY},
    {"etcd-snapshot-every", required_argument, NULL, OPT_ETCD_SNAPSHOT_EVERY},
    {"etcd-keep-history", no_argument, NULL, OPT_ETCD_KEEP_HISTORY},
    {"host-name", required_argument, NULL, OPT_HOST_NAME},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The numeric options: where each goes and what it accepts. */
static const struct num_option {
    int code;
    const char *name;
    size_t offset;
    uint32_t min, max;
} num_options[] = {
    {OPT_MAX_FRAME, "--max-frame", offsetof(options, max_frame), PT_DAEMON_FRAME_MIN,
     PT_DAEMON_FRAME_MAX},
    {OPT_MAX_SESSIONS, "--max-sessions", offsetof(options, max_sessions), 1, UINT32_MAX - 1},
    {OPT_MAX_OBJECTS, "--max-objects", offsetof(options, limits.max_objects), 1, UINT32_MAX},
    {OPT_MAX_HANDLES, "--max-handles", offsetof(options, limits.max_handles_per_session), 1,
     UINT32_MAX},
    {OPT_MAX_WAITERS, "--max-waiters", offsetof(options, limits.max_waiters_per_session), 1,
     UINT32_MAX},
    {OPT_MAX_OBJECTS_PER_UID, "--max-objects-per-uid",
     offsetof(options, limits.max_objects_per_uid), 1, UINT32_MAX},
    {OPT_MAX_SESSIONS_PER_UID, "--max-sessions-per-uid", offsetof(options, max_sessions_per_uid), 1,
     UINT32_MAX - 1},
    {OPT_MAX_HANDLES_PER_UID, "--max-handles-per-uid",
     offsetof(options, limits.max_handles_per_uid), 1, UINT32_MAX},
    {OPT_MAX_WAITERS_PER_UID, "--max-waiters-per-uid",
     offsetof(options, limits.max_waiters_per_uid), 1, UINT32_MAX},
    {OPT_MAX_OUTPUT_PER_UID, "--max-output-per-uid", offsetof(options, max_output_per_uid),
     PT_DAEMON_OUTPUT_MIN, UINT32_MAX / 2},
    {OPT_MAX_INPUT_PER_UID, "--max-input-per-uid", offsetof(options, max_input_per_uid),
     PT_DAEMON_OUTPUT_MIN, UINT32_MAX / 2},
    {OPT_MAX_OUTPUT, "--max-output", offsetof(options, max_output), PT_DAEMON_OUTPUT_MIN,
     UINT32_MAX / 2},
    {OPT_STALL_TIMEOUT, "--stall-timeout", offsetof(options, stall_timeout), 1, 86400},
    {OPT_FRAME_TIMEOUT, "--frame-timeout", offsetof(options, frame_timeout), 1, 86400},
    {OPT_LOG_BURST, "--log-burst", offsetof(options, log_burst), 1, UINT32_MAX},
    {OPT_LOG_INTERVAL, "--log-interval", offsetof(options, log_interval), 1, 86400},
    {OPT_SPIN_USEC, "--spin-usec", offsetof(options, spin_usec), 0, PT_SPIN_USEC_MAX},
    {OPT_GRACE, "--grace", offsetof(options, grace), 0, PT_DAEMON_GRACE_MAX},
    {OPT_COMPACT_AFTER, "--compact-after", offsetof(options, compact_after), PT_DAEMON_COMPACT_MIN,
     UINT32_MAX},
    {OPT_METRICS_OBJECTS_MAX, "--metrics-objects-max", offsetof(options, metrics_objects_max), 1,
     PT_METRICS_OBJECTS_MAX},
    {OPT_ETCD_TTL, "--etcd-ttl", offsetof(options, cluster.ttl), 2, PT_CLUSTER_TTL_MAX},
    {OPT_ETCD_SNAPSHOT_EVERY, "--etcd-snapshot-every", offsetof(options, cluster.snapshot_every), 0,
     UINT32_MAX},
};

static void usage_cluster(FILE *out);

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: pythreadd [OPTION]...\n"
            "Serve named Python-style threading objects to local processes.\n"
            "\n"
            "  -s, --socket PATH       listen on PATH (default: $PYTHREAD_SOCKET, else\n"
            "                          /run/pythread/pythreadd.sock for root, else the\n"
            "                          user's own $XDG_RUNTIME_DIR/pythread/pythreadd.sock\n"
            "                          or /tmp/pythread-UID/pythreadd.sock, which clients\n"
            "                          of that user try before the system socket)\n"
            "      --max-frame BYTES   largest message accepted (default %u, %u..%u)\n"
            "      --max-sessions N    connections served at once (default %u, or what the\n"
            "                          open file limit leaves room for if less)\n"
            "      --max-objects N     named objects in all (default %u)\n"
            "      --max-handles N     open handles per session (default %u)\n"
            "      --max-waiters N     parked requests per session (default %u)\n"
            "      --max-objects-per-uid N  named objects one user may create (default %u)\n"
            "      --max-sessions-per-uid N connections one user may hold (default %u)\n"
            "      --max-handles-per-uid N  open handles of one user's sessions together\n"
            "                          (default %u)\n"
            "      --max-waiters-per-uid N  parked requests of one user's sessions together\n"
            "                          (default %u)\n"
            "      --max-output-per-uid BYTES  unread answers of one user's sessions together\n"
            "                          before those adding more pause (default %u);\n"
            "                          root is held to no per-uid limit but sessions\n"
            "      --max-input-per-uid BYTES  frames begun or not yet served that one\n"
            "                          user's sessions may hold together; the session\n"
            "                          that would hold more is cut off (default %u)\n"
            "      --max-output BYTES  unread answers buffered per session before its input\n"
            "                          pauses (default %u); at twice this it is cut off\n"
            "      --stall-timeout SEC cut off a session whose answers stay unread over\n"
            "                          --max-output this long (default %u)\n"
            "      --frame-timeout SEC cut off a session that leaves a frame incomplete\n"
            "                          this long (default %u)\n"
            "      --log-burst N       messages about one user's sessions logged per\n"
            "                          --log-interval; the rest are counted (default %u)\n"
            "      --log-interval SEC  seconds of that count (default %u)\n"
            "      --socket-mode MODE  octal mode of the socket file bound (default 0%o:\n"
            "                          each object carries its own permissions)\n"
            "      --spin-usec USEC    after serving, poll for the next request this long\n"
            "                          before sleeping, less when such polls keep\n"
            "                          failing; 0 turns it off (default %u, 0..%u)\n",
            PT_WIRE_MAX_FRAME, PT_DAEMON_FRAME_MIN, PT_DAEMON_FRAME_MAX, PT_DAEMON_MAX_SESSIONS,
            PT_DEFAULT_MAX_OBJECTS, PT_DEFAULT_MAX_HANDLES, PT_DEFAULT_MAX_WAITERS,
            PT_DEFAULT_MAX_OBJECTS_PER_UID, PT_DAEMON_MAX_SESSIONS_PER_UID,
            PT_DEFAULT_MAX_HANDLES_PER_UID, PT_DEFAULT_MAX_WAITERS_PER_UID,
            PT_DAEMON_OUTPUT_PER_UID, PT_DAEMON_INPUT_PER_UID, PT_DAEMON_OUTPUT_MAX,
            PT_DAEMON_STALL_SEC, PT_DAEMON_FRAME_SEC, PT_DAEMON_LOG_BURST,
            PT_DAEMON_LOG_INTERVAL_SEC, PT_DAEMON_SOCKET_MODE, PT_SPIN_USEC_DEFAULT,
            PT_SPIN_USEC_MAX);
    fprintf(out,
            "      --state-dir DIR     keep the state in DIR/journal: objects, values and\n"
            "                          tokens come back after a restart, even a kill -9\n"
            "                          (default: none, the state ends with the daemon)\n"
            "      --sync              make every change durable (fdatasync) before it is\n"
            "                          answered, against a power loss too (slower)\n"
            "      --grace SEC         after a restart with --state-dir, how long the\n"
            "                          sessions of living processes wait for them to come\n"
            "                          back and reclaim their locks; calls wait meanwhile\n"
            "                          (default %u, 0 ends every session at a restart)\n"
            "      --compact-after BYTES  rewrite the journal as a snapshot of the state\n"
            "                          once it has grown this much, and as much as the\n"
            "                          last snapshot, past that snapshot (default %u)\n"
            "      --metrics ADDRESS   serve Prometheus metrics on GET /metrics at\n"
            "                          127.0.0.1:PORT, [::1]:PORT (PORT 0: any free one;\n"
            "                          pythreadctl status tells which) or a socket file\n"
            "                          of mode 0600 at an absolute path (default: none;\n"
            "                          pythreadctl metrics prints them without)\n"
            "      --metrics-object PATTERN  give the objects whose names match PATTERN\n"
            "                          (a name, or a glob with * ? [) series of their own,\n"
            "                          labelled with their names; repeatable, up to %u\n"
            "      --metrics-objects-max N  at most N such objects (default %u, 1..%u)\n",
            PT_DAEMON_GRACE_SEC, PT_DAEMON_COMPACT_AFTER, PT_METRICS_PATTERNS_MAX,
            PT_METRICS_OBJECTS_DEFAULT, PT_METRICS_OBJECTS_MAX);
    usage_cluster(out);
    fprintf(out, "      --no-fast-path      give clients no shared words: every operation is a\n"
                 "                          request (by default uncontended Lock, RLock,\n"
                 "                          Semaphore and BoundedSemaphore operations and\n"
                 "                          Event.is_set skip the daemon, and a Lock's holder\n"
                 "                          hands it to a waiter through its word)\n"
                 "  -v, --verbose           log debug messages (sessions opened and closed)\n"
                 "  -h, --help              show this help and exit\n"
                 "  -V, --version           show the version and exit\n"
                 "\n"
                 "Under systemd the listening socket may be passed by socket activation\n"
                 "(LISTEN_FDS), and readiness, status and watchdog keep-alives are sent to\n"
                 "NOTIFY_SOCKET. Logs go to stderr with syslog priority prefixes (plain lines\n"
                 "on a terminal). SIGINT or SIGTERM stops the daemon: every session ends and\n"
                 "the socket file it bound is removed (a socket passed by systemd is left to\n"
                 "systemd). With --state-dir, SIGUSR2 replaces the running program with the\n"
                 "one now at its path (an upgrade) in the same process, keeping the state, the\n"
                 "sessions and the socket.\n"
                 "Exit status: 0 stopped cleanly, 1 could not start, 2 bad usage.\n");
}

/* The --etcd options, apart: one string of them all is longer than C
 * promises a literal can be. */
static void usage_cluster(FILE *out)
{
    fprintf(out,
            "      --etcd ENDPOINTS    join the cluster of the daemons using the etcd at\n"
            "                          ENDPOINTS (http://HOST:PORT[,...], or all https://):\n"
            "                          objects opened with PT_OPEN_CLUSTER (cluster=True,\n"
            "                          --cluster) are the same on every host (default: none)\n"
            "      --etcd-cacert FILE  https:// endpoints: the CA that signed etcd's\n"
            "                          certificate, PEM (default: the system's CAs)\n"
            "      --etcd-cert FILE    ... and the client certificate to present, PEM, for\n"
            "                          an etcd run with --client-cert-auth\n"
            "      --etcd-key FILE     ... and its private key, PEM, unencrypted\n"
            "      --etcd-prefix P     the cluster's keys in etcd (default %s)\n"
            "      --etcd-ttl SEC      this host's lease: its processes' cluster holds end\n"
            "                          this long after it dies or is cut off (default %u,\n"
            "                          2..%u)\n"
            "      --etcd-snapshot-every N  snapshot the cluster's objects into etcd every N\n"
            "                          entries of its log, then delete the log's entries\n"
            "                          up to it (default %u; 0: never, the log grows)\n"
            "      --etcd-keep-history do not compact etcd's history behind the snapshots\n"
            "                          (its revisions then grow until etcd compacts them)\n"
            "      --host-name NAME    this host in the cluster, unique in it (default: the\n"
            "                          machine's host name; letters, digits, . _ -)\n",
            PT_CLUSTER_PREFIX_DEFAULT, PT_CLUSTER_TTL_DEFAULT, PT_CLUSTER_TTL_MAX,
            PT_CLUSTER_SNAPSHOT_EVERY);
}

/* A whole decimal number in [min, max], or -1. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    unsigned long long v;
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* An octal permission mode, 0..0777, or -1. */
static int parse_mode(const char *s, uint32_t *out)
{
    unsigned long v;
    char *end;

    if (*s < '0' || *s > '7')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 8);
    if (errno || *end || v > 0777)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int option_number(options *o, int code, const char *arg)
{
    for (size_t i = 0; i < sizeof num_options / sizeof num_options[0]; i++) {
        const struct num_option *n = &num_options[i];
        if (n->code != code)
            continue;
        if (parse_u32(arg, n->min, n->max, (uint32_t *)(void *)((char *)o + n->offset)) == 0)
            return 0;
        fprintf(stderr,
                "pythreadd: %s: '%s' is not a whole number from %u to %u; see pythreadd --help\n",
                n->name, arg, n->min, n->max);
        return -1;
    }
    return -1;
}

/* --metrics: the hosts taken (the endpoint has no authentication, so only
 * the loopback), each with the port after it. */
static const struct metrics_host {
    const char *prefix;
    int family;
} metrics_hosts[] = {
    {"127.0.0.1:", AF_INET},
    {"[::1]:", AF_INET6},
};

/* 0, or the exit status after saying why the address is not taken. */
static int metrics_address(options *o, const char *arg)
{
    pt_metrics_where *w = &o->metrics_where;
    uint32_t port;

    o->metrics = 1;
    if (arg[0] == '/' && strlen(arg) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
        *w = (pt_metrics_where){.family = AF_UNIX, .path = arg};
        return 0;
    }
    for (size_t i = 0; arg[0] != '/' && i < sizeof metrics_hosts / sizeof metrics_hosts[0]; i++) {
        size_t n = strlen(metrics_hosts[i].prefix);

        if (strncmp(arg, metrics_hosts[i].prefix, n) != 0)
            continue;
        if (parse_u32(arg + n, 0, 65535, &port) == 0) {
            *w = (pt_metrics_where){.family = metrics_hosts[i].family, .port = (uint16_t)port};
            return 0;
        }
        fprintf(stderr, "pythreadd: --metrics: '%s': the port is not a number from 0 to 65535\n",
                arg);
        return EXIT_USAGE;
    }
    if (arg[0] == '/')
        fprintf(stderr,
                "pythreadd: --metrics: '%s': the path is longer than the %zu bytes a Unix socket "
                "address holds; choose a shorter one\n",
                arg, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    else
        fprintf(stderr,
                "pythreadd: --metrics: '%s' is not an address metrics are served on: give "
                "127.0.0.1:PORT, [::1]:PORT (PORT 0: any free one) or the absolute path of a "
                "socket file; the endpoint has no authentication, so it listens on the loopback "
                "only\n",
                arg);
    return EXIT_USAGE;
}

/* --metrics-object: a name, or a pattern that may match names; 0 or the
 * exit status after saying why not. */
static int metrics_object_add(options *o, const char *p)
{
    size_t len = strlen(p);

    if (o->nmetrics_objects == PT_METRICS_PATTERNS_MAX) {
        fprintf(stderr,
                "pythreadd: --metrics-object: at most %u are taken, so the series stay few; "
                "join names into a pattern (with * ? [)\n",
                PT_METRICS_PATTERNS_MAX);
        return EXIT_USAGE;
    }
    if (len == 0 || len > PT_WIRE_GLOB_MAX ||
        (strpbrk(p, "*?[") == NULL && !pt_name_valid(p, len))) {
        fprintf(stderr,
                "pythreadd: --metrics-object: '%.80s' is neither a name (1-255 bytes of A-Z a-z "
                "0-9 . _ : / -) nor a pattern of up to %u bytes (with * ? [); see pythreadd "
                "--help\n",
                p, PT_WIRE_GLOB_MAX);
        return EXIT_USAGE;
    }
    o->metrics_objects[o->nmetrics_objects++] = p;
    return 0;
}

/* Options with a check of their own; -1 when ch is none of them, else 0
 * or the exit status. */
/* A host name is part of the cluster's keys in etcd: letters, digits,
 * '.', '_' and '-', 1 to PT_CCORE_HOST_MAX bytes. */
static int host_name_set(options *o, const char *name, const char *from)
{
    size_t n = strlen(name);

    if (n == 0 || n > PT_CCORE_HOST_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
        fprintf(stderr,
                "pythreadd: %s '%s' cannot name this host in the cluster: use 1 to %d letters, "
                "digits, '.', '_' or '-' (--host-name NAME)\n",
                from, name, PT_CCORE_HOST_MAX);
        return EXIT_USAGE;
    }
    memcpy(o->host, name, n + 1);
    o->cluster.host = o->host;
    return 0;
}

/* With --etcd and no --host-name, the machine's name. -1 to go on, else
 * the exit status. */
static int cluster_options_finish(options *o)
{
    const pt_etcd_tls *t = &o->cluster.tls;
    char name[256];

    /* A TLS option would be ignored without a cluster: say so rather than
     * let it look applied. */
    if (o->cluster.endpoints == NULL && (t->cacert || t->cert || t->key)) {
        fprintf(stderr,
                "pythreadd: --etcd-%s is for a cluster: give --etcd https://HOST:PORT,... "
                "too, or drop it\n",
                t->cacert ? "cacert"
                : t->cert ? "cert"
                          : "key");
        return EXIT_USAGE;
    }
    if (o->cluster.endpoints == NULL || o->cluster.host != NULL)
        return -1;
    if (gethostname(name, sizeof(name)) < 0) {
        fprintf(stderr,
                "pythreadd: --etcd: cannot read this machine's host name (%s); give "
                "--host-name NAME\n",
                strerror(errno));
        return EXIT_USAGE;
    }
    name[sizeof(name) - 1] = '\0';
    return host_name_set(o, name, "the machine's host name") == 0 ? -1 : EXIT_USAGE;
}

static int option_checked(options *o, int ch, const char *arg)
{
    switch (ch) {
    case OPT_SOCKET_MODE:
        if (parse_mode(arg, &o->socket_mode) == 0)
            return 0;
        fprintf(stderr,
                "pythreadd: --socket-mode: '%s' is not an octal mode from 0 to 0777; see "
                "pythreadd --help\n",
                arg);
        return EXIT_USAGE;
    case OPT_METRICS:
        return metrics_address(o, arg);
    case OPT_METRICS_OBJECT:
        return metrics_object_add(o, arg);
    case OPT_ETCD:
        o->cluster.endpoints = arg;
        return 0;
    case OPT_ETCD_PREFIX:
        o->cluster.prefix = arg;
        return 0;
    case OPT_ETCD_CACERT:
        o->cluster.tls.cacert = arg;
        return 0;
    case OPT_ETCD_CERT:
        o->cluster.tls.cert = arg;
        return 0;
    case OPT_ETCD_KEY:
        o->cluster.tls.key = arg;
        return 0;
    case OPT_HOST_NAME:
        return host_name_set(o, arg, "--host-name");
    default:
        return -1;
    }
}

/* Returns -1 to go on, else the exit status. */
static int options_parse(int argc, char **argv, options *o)
{
    int rc;

    int ch;

    while ((ch = getopt_long(argc, argv, "s:vhV", long_options, NULL)) != -1) {
        switch (ch) {
        case 's':
            o->socket = optarg;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_NO_FAST_PATH:
            o->no_fast_path = 1;
            break;
        case OPT_STATE_DIR:
            o->state_dir = optarg;
            break;
        case OPT_SYNC:
            o->sync = 1;
            break;
        case OPT_ETCD_KEEP_HISTORY:
            o->cluster.no_compact = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_SUCCESS;
        case 'V':
            printf("pythreadd %s\n", PT_VERSION_STRING);
            return EXIT_SUCCESS;
        case '?':
            fprintf(stderr, "pythreadd: see pythreadd --help\n");
            return EXIT_USAGE;
        default:
            rc = option_checked(o, ch, optarg);
            if (rc > 0)
                return rc;
            if (rc < 0 && option_number(o, ch, optarg) < 0)
                return EXIT_USAGE;
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pythreadd: unexpected argument '%s'; see pythreadd --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    return cluster_options_finish(o);
}

/* Every session is a descriptor: take all the kernel allows this process
 * (the hard limit) rather than the usual soft 1024. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        pt_log(LOG_WARNING, "pythreadd: cannot raise the open file limit to %llu: %s",
               (unsigned long long)rl.rlim_max, strerror(errno));
}

/* SIGINT/SIGTERM: leave the loop; main tears everything down. */
static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    pt_daemon *d = arg;

    (void)what;
    pt_log(LOG_INFO, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    d->stop_signal = (int)sig;
    event_base_loopbreak(d->base);
}

static void upgrade_cb(evutil_socket_t sig, short what, void *arg)
{
    pt_daemon *d = arg;

    (void)sig;
    (void)what;
    if (!pt_upgrade_wanted(d))
        return;
    d->upgrade = 1;
    event_base_loopbreak(d->base);
}

static int daemon_init(pt_daemon *d, const options *o)
{
    size_t arena_cap = 4 * (size_t)o->max_frame;
    uint64_t replayed = 0;

    TAILQ_INIT(&d->conns);
    pt_inspect_start(d);
    d->max_frame = o->max_frame;
    /* 0: not given; the default, which the open file limit may lower. */
    d->max_sessions = o->max_sessions ? o->max_sessions : PT_DAEMON_MAX_SESSIONS;
    d->grace_ms = o->grace * 1000u;
    d->max_sessions_chosen = o->max_sessions != 0;
    d->max_sessions_per_uid = o->max_sessions_per_uid;
    d->max_output_per_uid = o->max_output_per_uid;
    /* Two whole frames always fit, so no single client is refused one. */
    d->max_input_per_uid = o->max_input_per_uid;
    if (d->max_input_per_uid < 2 * (PT_WIRE_HEADER + o->max_frame))
        d->max_input_per_uid = 2 * (PT_WIRE_HEADER + o->max_frame);
    d->max_output = o->max_output;
    d->stall_timeout = o->stall_timeout;
    d->frame_timeout = o->frame_timeout;
    d->socket_mode = o->socket_mode;
    d->metrics_objects = o->metrics_objects;
    d->nmetrics_objects = o->nmetrics_objects;
    d->metrics_objects_max = o->metrics_objects_max;
    pt_spin_init(&d->spin, o->spin_usec);
    /* The default timer backend (epoll's millisecond timeout, rounded up)
     * is used rather than EVENT_BASE_FLAG_PRECISE_TIMER, which costs a
     * timerfd_settime syscall on every loop iteration; an early fire only
     * re-arms. */
    d->base = event_base_new();
    d->arena_buf = malloc(arena_cap);
    if (!d->base || !d->arena_buf)
        goto fail;
    pt_wire_arena_init(&d->arena, d->arena_buf, arena_cap);
    d->core = pt_core_new(&o->limits, pt_dispatch_sink, d);
    if (!d->core || pt_daemon_timer_init(d) < 0 || pt_mem_init(d) < 0 ||
        pt_log_start(d->base, o->log_burst, o->log_interval) < 0)
        goto fail;
    if (o->state_dir && pt_state_open(d, o->state_dir, o->sync, o->compact_after, &replayed) < 0)
        return -1;
    /* The replay served nobody: --metrics counts what this process serves. */
    pt_core_metrics_clear(d->core);
    /* Fencing tokens go on growing across restarts (a replayed core's
     * floor is already past every token it gave). */
    pt_journal_start(d->journal, d->core, pt_daemon_token_base());
    if (pt_deadlock_start(d) < 0)
        goto fail;
    pt_journal_limits(d->journal, d->core, &o->limits);
    if (!o->no_fast_path) {
        uint32_t cells = o->limits.max_objects ? o->limits.max_objects : PT_DEFAULT_MAX_OBJECTS;

        d->fast = pt_fast_new(d, cells);
        if (!d->fast)
            pt_log(LOG_WARNING,
                   "pythreadd: no shared memory for the fast path (%s); every "
                   "operation will be a request",
                   strerror(errno));
    }
    if (!d->fast)
        pt_journal_set_fast_hooks(d->journal, d->core, NULL, NULL);
    pt_state_restarted(d, replayed);
    pt_state_flush(d);
    if (o->cluster.endpoints && pt_cluster_start(d, &o->cluster) < 0)
        return -1;
    d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
    d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
    d->sig_usr2 = evsignal_new(d->base, SIGUSR2, upgrade_cb, d);
    if (!d->sig_int || !d->sig_term || !d->sig_usr2 || evsignal_add(d->sig_int, NULL) < 0 ||
        evsignal_add(d->sig_term, NULL) < 0 || evsignal_add(d->sig_usr2, NULL) < 0)
        goto fail;
    return 0;
fail:
    pt_log(LOG_ERR, "pythreadd: cannot start: out of memory");
    return -1;
}

/* End every session, free the core, close the listener and remove the
 * socket file we bound (an inherited one stays). */
static void daemon_free(pt_daemon *d)
{
    pt_metrics_http_stop(d);
    if (d->listener)
        evconnlistener_free(d->listener);
    d->listener = NULL;
    pt_listen_unlink(d);
    pt_systemd_free(d);
    pt_conn_close_all(d);
    pt_cluster_free(d);
    pt_deadlock_free(d);
    if (d->core)
        pt_core_free(d->core);
    d->core = NULL;
    pt_resume_free(d);
    pt_conn_free_all(d);
    pt_fast_free(d->fast);
    d->fast = NULL;
    pt_journal_free(d->journal);
    d->journal = NULL;
    if (d->timer)
        event_free(d->timer);
    pt_mem_free(d);
    if (d->sig_int)
        event_free(d->sig_int);
    if (d->sig_term)
        event_free(d->sig_term);
    if (d->sig_usr2)
        event_free(d->sig_usr2);
    pt_log_stop();
    if (d->base)
        event_base_free(d->base);
    free(d->arena_buf);
}

/*
 * Poll the loop without sleeping until usec pass with no request served;
 * a request that comes meanwhile is taken without the wake-up of a sleeping
 * process (tens of microseconds when idle CPUs halt). Returns 1 when a
 * request came, 0 when none did, -1 when the loop failed or was broken.
 */
static int daemon_spin(pt_daemon *d, uint32_t usec)
{
    uint64_t end = pt_spin_now_ns() + (uint64_t)usec * 1000u;
    uint64_t seen = d->served;
    int hit = 0;

    for (;;) {
        if (event_base_loop(d->base, EVLOOP_NONBLOCK) < 0 || event_base_got_break(d->base))
            return -1;
        if (d->served != seen) {
            seen = d->served;
            hit = 1;
            end = pt_spin_now_ns() + (uint64_t)usec * 1000u;
        } else if (pt_spin_now_ns() >= end) {
            return hit;
        } else {
            sched_yield(); /* the client we wait for may share our CPU */
        }
    }
}

/* event_base_dispatch, with bounded adaptive polling after every wake-up
 * that served a request. 0 when stopped by a signal, -1 when the loop
 * failed. */
static int daemon_run(pt_daemon *d)
{
    for (;;) {
        uint64_t seen = d->served;
        uint32_t usec;
        int r = event_base_loop(d->base, EVLOOP_ONCE);

        if (r < 0)
            return -1;
        if (r > 0 || event_base_got_break(d->base))
            return 0;
        if (d->served == seen || !(usec = pt_spin_budget(&d->spin)))
            continue;
        r = daemon_spin(d, usec);
        if (r < 0)
            return event_base_got_break(d->base) ? 0 : -1;
        pt_spin_learn(&d->spin, r);
    }
}

/* Where to listen: --socket, else the rule clients use too. */
static int socket_path(const options *o, char *buf, size_t len)
{
    if (o->socket) {
        if (strlen(o->socket) >= len) {
            pt_log(LOG_ERR, "pythreadd: socket path %s is too long; choose a shorter one",
                   o->socket);
            return -1;
        }
        strcpy(buf, o->socket);
        return 0;
    }
    if (pt_default_socket_path(buf, len) < 0) {
        pt_log(LOG_ERR, "pythreadd: the default socket path is too long (check PYTHREAD_SOCKET "
                        "and XDG_RUNTIME_DIR); choose one with --socket");
        return -1;
    }
    return 0;
}

/*
 * The listening socket: the one systemd passed (socket activation, taken
 * before the replay with what else it passed: passed 1, fd), else one
 * bound at path. For a passed socket, path is rewritten to its address for
 * the logs; it stays systemd's file and is never unlinked. Returns the fd or
 * -1 after logging.
 */
static int listen_fd(pt_daemon *d, int passed, int fd, char *path, size_t len)
{
    struct sockaddr_un sun;
    socklen_t sl = sizeof sun;

    if (passed == 0)
        return pt_listen_bind(d, path);
    pt_upgrade_adopt(d, fd);
    memset(&sun, 0, sizeof sun);
    /* --socket and the default path give way to the unit's ListenStream=. */
    if (getsockname(fd, (struct sockaddr *)&sun, &sl) == 0 && sun.sun_path[0])
        snprintf(path, len, "%s", sun.sun_path);
    return fd;
}

int main(int argc, char **argv)
{
    options opt = {.max_frame = PT_WIRE_MAX_FRAME,
                   .max_sessions_per_uid = PT_DAEMON_MAX_SESSIONS_PER_UID,
                   .max_output_per_uid = PT_DAEMON_OUTPUT_PER_UID,
                   .max_input_per_uid = PT_DAEMON_INPUT_PER_UID,
                   .max_output = PT_DAEMON_OUTPUT_MAX,
                   .stall_timeout = PT_DAEMON_STALL_SEC,
                   .frame_timeout = PT_DAEMON_FRAME_SEC,
                   .log_burst = PT_DAEMON_LOG_BURST,
                   .log_interval = PT_DAEMON_LOG_INTERVAL_SEC,
                   .socket_mode = PT_DAEMON_SOCKET_MODE,
                   .spin_usec = PT_SPIN_USEC_DEFAULT,
                   .grace = PT_DAEMON_GRACE_SEC,
                   .compact_after = PT_DAEMON_COMPACT_AFTER,
                   .metrics_objects_max = PT_METRICS_OBJECTS_DEFAULT,
                   .cluster = {.prefix = PT_CLUSTER_PREFIX_DEFAULT,
                               .ttl = PT_CLUSTER_TTL_DEFAULT,
                               .snapshot_every = PT_CLUSTER_SNAPSHOT_EVERY}};
    pt_daemon daemon = {0};
    char path[PATH_MAX];
    int rc, fd = -1, passed;

    rc = options_parse(argc, argv, &opt);
    if (rc >= 0)
        return rc;
    pt_log_set_verbose(opt.verbose);
    pt_upgrade_init(argv);
    /* A peer gone mid-write must be an EPIPE error, not our death. */
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (socket_path(&opt, path, sizeof path) < 0)
        return EXIT_FAILURE;
    /* Before the replay: the connections a planned restart kept are bound
     * to their sessions as it ends, before anything is served. */
    pt_keep_take_exec(&daemon);
    passed = pt_systemd_listen_fd(&daemon, &fd);
    if (passed < 0 || daemon_init(&daemon, &opt) < 0) {
        if (passed > 0)
            close(fd);
        pt_keep_free(&daemon);
        pt_state_close(&daemon);
        daemon_free(&daemon);
        return EXIT_FAILURE;
    }
    /* Out of systemd's store before serving: while it holds a duplicate,
     * a connection this daemon ends would not end for its client. */
    pt_keep_free(&daemon);
    fd = listen_fd(&daemon, passed, fd, path, sizeof path);
    if (fd < 0 || pt_listen_start(&daemon, fd) < 0 ||
        (opt.metrics && pt_metrics_http_start(&daemon, &opt.metrics_where) < 0) ||
        pt_systemd_ready(&daemon, path) < 0) {
        if (fd >= 0 && !daemon.listener)
            close(fd);
        pt_state_close(&daemon);
        daemon_free(&daemon);
        return EXIT_FAILURE;
    }
    pt_log(LOG_INFO, "pythreadd %s listening on %s%s", PT_VERSION_STRING, path,
           daemon.bound.path[0] ? "" : " (socket passed by systemd)");
    rc = daemon_run(&daemon) < 0 || daemon.failed ? EXIT_FAILURE : EXIT_SUCCESS;
    pt_cluster_leave(&daemon);
    if (rc == EXIT_SUCCESS && pt_keep_wanted(&daemon))
        pt_keep_handover(&daemon);
    if (rc == EXIT_SUCCESS && daemon.upgrade) {
        pt_upgrade_exec(&daemon, fd); /* returns only when it failed */
        rc = EXIT_FAILURE;
    }
    if (rc != EXIT_SUCCESS && !daemon.upgrade && !daemon.failed)
        pt_log(LOG_ERR, "pythreadd: the event loop failed; stopping");
    pt_systemd_stopping(&daemon);
    pt_state_close(&daemon);
    daemon_free(&daemon);
    pt_log(LOG_INFO, "pythreadd stopped");
    return rc;
}
