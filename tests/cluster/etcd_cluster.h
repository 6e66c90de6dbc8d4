/*
 * etcd_cluster.h - a real etcd cluster on 127.0.0.1 for tests and benches.
 *
 * Installs nothing: it finds the etcd binary (PT_ETCD, then PATH, then
 * /usr/bin/etcd) and says why not when it cannot. Members get free loopback
 * ports and data directories under one temporary directory; every member is
 * started with PR_SET_PDEATHSIG so a test that dies leaves no etcd behind,
 * and pt_etcd_cluster_stop, also run by atexit, kills them and removes the
 * directory. Health and leadership are read from the members' own HTTP
 * gateway (/health, /v3/maintenance/status), polled against a deadline.
 *
 * With PT_ETCD_CLUSTER_TLS the members serve https:// only and ask every
 * client for a certificate (etcd's --client-cert-auth): a CA, a server
 * certificate for IP 127.0.0.1 and a client certificate are made with the
 * openssl program in the cluster's directory (tls below), and a second CA
 * with a client certificate of its own, which the members do not trust,
 * for the tests of refusals. Peers still talk plain http among themselves.
 */
#ifndef PT_ETCD_CLUSTER_H
#define PT_ETCD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PT_ETCD_CLUSTER_MAX 5
/* Skip status for ctest (SKIP_RETURN_CODE). */
#define PT_ETCD_SKIP 77

typedef struct pt_etcd_member {
    char name[16];
    int client_port;
    int peer_port;
    pid_t pid;   /* 0 when not running */
    int stopped; /* by pt_etcd_cluster_pause */
} pt_etcd_member;

/* Flags of pt_etcd_cluster_start_with. */
#define PT_ETCD_CLUSTER_TLS 1u

/* The PEM files of a TLS cluster, in dir/tls. */
typedef struct pt_etcd_cluster_tls {
    char ca[320];                         /* the CA the members trust; it signed the rest */
    char cert[320], key[320];             /* a client certificate and its key */
    char other_ca[320];                   /* a CA nobody here trusts */
    char other_cert[320], other_key[320]; /* a client certificate signed by it */
} pt_etcd_cluster_tls;

typedef struct pt_etcd_cluster {
    char dir[256]; /* mkdtemp'd: member data dirs and logs */
    char program[256];
    int n;
    unsigned flags;          /* PT_ETCD_CLUSTER_* */
    pt_etcd_cluster_tls tls; /* with PT_ETCD_CLUSTER_TLS */
    pt_etcd_member m[PT_ETCD_CLUSTER_MAX];
    /* "http://127.0.0.1:P1,http://127.0.0.1:P2,..." in member order
     * (https:// with PT_ETCD_CLUSTER_TLS) */
    char endpoints[PT_ETCD_CLUSTER_MAX * 32];
} pt_etcd_cluster;

/* Finds etcd into out; -1 with the reason in why when it is not there. */
int pt_etcd_find(char *out, size_t len, char *why, size_t whylen);
/* Starts n members and waits (deadline seconds) until all are healthy and
 * one leads; -1 with the reason in err (nothing left running). */
int pt_etcd_cluster_start(pt_etcd_cluster *c, int n, double deadline, char *err, size_t errlen);
/* The same with flags (PT_ETCD_CLUSTER_TLS). */
int pt_etcd_cluster_start_with(pt_etcd_cluster *c, int n, unsigned flags, double deadline,
                               char *err, size_t errlen);
/* A test program's group setup: starts n members (0); where etcd is not
 * installed, prints why and exits with PT_ETCD_SKIP; -1 (the reason
 * printed) when they do not come up. */
int pt_etcd_cluster_start_or_skip(pt_etcd_cluster *c, int n, double deadline);
int pt_etcd_cluster_start_or_skip_with(pt_etcd_cluster *c, int n, unsigned flags, double deadline);
/* Index of the member every live member names as leader, or -1 when they
 * do not agree (yet). */
int pt_etcd_cluster_leader(const pt_etcd_cluster *c);
/* Polls until a leader is agreed among the live members; its index or -1. */
int pt_etcd_cluster_wait_leader(const pt_etcd_cluster *c, double deadline);
/* kill -9 member i and reap it. */
void pt_etcd_cluster_kill(pt_etcd_cluster *c, int i);
/* kill -9 the member the others name as leader; its index, or -1 when no
 * leader is agreed within deadline. */
int pt_etcd_cluster_kill_leader(pt_etcd_cluster *c, double deadline);
/* SIGSTOP (stop != 0) or SIGCONT member i: a member cut off that still
 * holds its sockets open, as a partitioned host looks to its clients.
 * Returns once it is stopped (or running again). */
void pt_etcd_cluster_pause(pt_etcd_cluster *c, int i, int stop);
/* Starts member i again on its own data dir (it rejoins). 0 or -1. */
int pt_etcd_cluster_restart(pt_etcd_cluster *c, int i, double deadline);
/* "http://127.0.0.1:P" (or https://) of member i. */
void pt_etcd_cluster_endpoint(const pt_etcd_cluster *c, int i, char *out, size_t len);
/* Every member's endpoint, comma-separated, member first first and the
 * rest in order: a client that starts on member first. */
void pt_etcd_cluster_endpoints_from(const pt_etcd_cluster *c, int first, char *out, size_t len);
/* Kills every member and removes the directory. Idempotent. */
void pt_etcd_cluster_stop(pt_etcd_cluster *c);

/* pythreadd (program) on socket sock, its stderr appended to log, with
 * the options in args (NULL-terminated; --etcd and the rest, or none):
 * its pid once the socket accepts connections, or -1 with the reason in
 * err when it exited or did not within deadline seconds. */
pid_t pt_etcd_daemon_start(const char *program, const char *sock, const char *log,
                           const char *const *args, double deadline, char *err, size_t errlen);

/* One blocking HTTP/1.1 POST of body to 127.0.0.1:port path; the response
 * body (NUL-terminated) in out. Status code, or -1 when unreachable.
 * For tests and benches only: the daemon's client never blocks. */
int pt_etcd_http_post(int port, const char *path, const char *body, char *out, size_t len,
                      double timeout);
/* Seconds on CLOCK_MONOTONIC. */
double pt_etcd_now(void);

/* Restarts every member a test killed: 0, or -1 when one did not come
 * back within deadline seconds. */
int pt_etcd_cluster_heal(pt_etcd_cluster *c, double deadline);
/* A file (a daemon's log) on stderr under a "---- title ----" line; nothing
 * when it cannot be read. */
void pt_etcd_file_show(const char *title, const char *path);

/* The loop the etcd client tests turn themselves (etcd_loop.c). */
struct event;
typedef struct pt_etcd_loop {
    struct event_base *base;
    struct event *tick; /* every 10 ms: EVLOOP_ONCE returns at least that often */
} pt_etcd_loop;

int pt_etcd_loop_start(pt_etcd_loop *l);
void pt_etcd_loop_stop(pt_etcd_loop *l);

#endif
