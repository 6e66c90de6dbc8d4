/*
 * etcd_cluster.c - see etcd_cluster.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "etcd_cluster.h"

/* Pre-vote: a member that comes back does not depose a sitting leader.
 * Elections in a fraction of a second: a test kills the leader and waits for
 * the next one; etcd's defaults (100 ms / 1 s) would double that wait. */
#define ETCD_HEARTBEAT_MS "50"
#define ETCD_ELECTION_MS  "500"

static pt_etcd_cluster *atexit_cluster;

double pt_etcd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void poll_tick(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int pt_etcd_find(char *out, size_t len, char *why, size_t whylen)
{
    const char *env = getenv("PT_ETCD");
    if (env && *env) {
        if (access(env, X_OK) == 0) {
            snprintf(out, len, "%s", env);
            return 0;
        }
        snprintf(why, whylen, "PT_ETCD=%s is not an executable", env);
        return -1;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/bin:/usr/local/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char cand[512];
        snprintf(cand, sizeof cand, "%s/etcd", d);
        if (access(cand, X_OK) == 0) {
            snprintf(out, len, "%s", cand);
            return 0;
        }
    }
    snprintf(why, whylen,
             "etcd is not installed (Debian: apt-get install etcd-server etcd-client, or "
             "sh scripts/deps as root; or set PT_ETCD)");
    return -1;
}

/* A port the kernel just had free on 127.0.0.1. Another process may take it
 * before etcd binds it; start then fails and the caller tries new ports. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static const char *scheme(const pt_etcd_cluster *c)
{
    return c->flags & PT_ETCD_CLUSTER_TLS ? "https" : "http";
}

void pt_etcd_cluster_endpoint(const pt_etcd_cluster *c, int i, char *out, size_t len)
{
    snprintf(out, len, "%s://127.0.0.1:%d", scheme(c), c->m[i].client_port);
}

/* The TLS files, made by the openssl program in dir/tls (its output in
 * dir/tls/openssl.log). EC keys: RSA's take several times as long to make. The
 * server certificate serves clients and is also a client's: etcd's gateway
 * presents it when it calls its own member's gRPC server, which asks for a
 * client certificate too. */
static int tls_make(pt_etcd_cluster *c, char *err, size_t errlen)
{
    static const char script[] =
        "set -e\n"
        "cd \"$1\"\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1.key\"; "
        "}\n"
        "ca() {\n"
        "  key \"$1\"\n"
        "  openssl req -x509 -new -key \"$1.key\" -subj \"/CN=pythread test $1\" -days 2 \\\n"
        "    -addext basicConstraints=critical,CA:TRUE \\\n"
        "    -addext keyUsage=critical,keyCertSign,cRLSign -out \"$1.crt\"\n"
        "}\n"
        "leaf() {\n"
        "  key \"$1\"\n"
        "  openssl req -new -key \"$1.key\" -subj \"/CN=pythread test $1\" -out \"$1.csr\"\n"
        "  printf '%s\\n' \"$3\" 'basicConstraints=CA:FALSE' > \"$1.ext\"\n"
        "  openssl x509 -req -in \"$1.csr\" -CA \"$2.crt\" -CAkey \"$2.key\" -CAcreateserial \\\n"
        "    -days 2 -extfile \"$1.ext\" -out \"$1.crt\"\n"
        "}\n"
        "ca ca\n"
        "ca other-ca\n"
        "leaf server ca 'subjectAltName=IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth,clientAuth'\n"
        "leaf client ca extendedKeyUsage=clientAuth\n"
        "leaf other-client other-ca extendedKeyUsage=clientAuth\n";
    char tls[300], log[340];
    pt_etcd_cluster_tls *t = &c->tls;
    int st = 0;
    pid_t pid;

    snprintf(tls, sizeof tls, "%s/tls", c->dir);
    snprintf(log, sizeof log, "%s/openssl.log", tls);
    if (mkdir(tls, 0700) != 0) {
        snprintf(err, errlen, "etcd cluster: mkdir %s: %s", tls, strerror(errno));
        return -1;
    }
    if ((pid = fork()) < 0) {
        snprintf(err, errlen, "etcd cluster: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl("/bin/sh", "sh", "-c", script, "sh", tls, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, errlen,
                 "etcd cluster: making the TLS certificates with openssl failed (see %s; Debian: "
                 "apt-get install openssl, or sh scripts/deps test as root)",
                 log);
        return -1;
    }
    snprintf(t->ca, sizeof t->ca, "%s/ca.crt", tls);
    snprintf(t->cert, sizeof t->cert, "%s/client.crt", tls);
    snprintf(t->key, sizeof t->key, "%s/client.key", tls);
    snprintf(t->other_ca, sizeof t->other_ca, "%s/other-ca.crt", tls);
    snprintf(t->other_cert, sizeof t->other_cert, "%s/other-client.crt", tls);
    snprintf(t->other_key, sizeof t->other_key, "%s/other-client.key", tls);
    return 0;
}

static pid_t spawn_member(pt_etcd_cluster *c, int i, const char *state)
{
    const pt_etcd_member *m = &c->m[i];
    char data[320], log[320], client[64], peer[64], initial[PT_ETCD_CLUSTER_MAX * 64] = "";
    snprintf(data, sizeof data, "%s/%s.data", c->dir, m->name);
    snprintf(log, sizeof log, "%s/%s.log", c->dir, m->name);
    snprintf(client, sizeof client, "%s://127.0.0.1:%d", scheme(c), m->client_port);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", m->peer_port);
    for (int k = 0; k < c->n; k++) {
        size_t used = strlen(initial);
        snprintf(initial + used, sizeof initial - used, "%s%s=http://127.0.0.1:%d", k ? "," : "",
                 c->m[k].name, c->m[k].peer_port);
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The member dies with the test process, whatever kills it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    char srv_cert[340], srv_key[340];
    const char *argv[40] = {c->program,
                            "--name",
                            m->name,
                            "--data-dir",
                            data,
                            "--listen-client-urls",
                            client,
                            "--advertise-client-urls",
                            client,
                            "--listen-peer-urls",
                            peer,
                            "--initial-advertise-peer-urls",
                            peer,
                            "--initial-cluster",
                            initial,
                            "--initial-cluster-state",
                            state,
                            "--initial-cluster-token",
                            "pt-test",
                            "--heartbeat-interval",
                            ETCD_HEARTBEAT_MS,
                            "--pre-vote",
                            "--election-timeout",
                            ETCD_ELECTION_MS,
                            "--logger",
                            "zap",
                            "--log-level",
                            "warn"};
    size_t n = 0;
    while (argv[n])
        n++;
    if (c->flags & PT_ETCD_CLUSTER_TLS) {
        snprintf(srv_cert, sizeof srv_cert, "%s/tls/server.crt", c->dir);
        snprintf(srv_key, sizeof srv_key, "%s/tls/server.key", c->dir);
        argv[n++] = "--cert-file";
        argv[n++] = srv_cert;
        argv[n++] = "--key-file";
        argv[n++] = srv_key;
        argv[n++] = "--trusted-ca-file";
        argv[n++] = c->tls.ca;
        argv[n++] = "--client-cert-auth";
    }
    argv[n] = NULL;
    execv(c->program, (char *const *)argv);
    _exit(127);
}

static int connect_loopback(int port, double timeout)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {(time_t)timeout, (long)((timeout - (double)(time_t)timeout) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A blocking TLS session on fd as the cluster's client (its CA, its client
 * certificate, the address checked); NULL when the handshake fails. */
static SSL *tls_session(const pt_etcd_cluster *c, int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;

    if (ctx && SSL_CTX_load_verify_locations(ctx, c->tls.ca, NULL) == 1 &&
        SSL_CTX_use_certificate_chain_file(ctx, c->tls.cert) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, c->tls.key, SSL_FILETYPE_PEM) == 1) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        ssl = SSL_new(ctx);
    }
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (ssl && (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1 ||
                SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)) {
        SSL_free(ssl);
        ssl = NULL;
    }
    ERR_clear_error();
    return ssl;
}

/* POST over plain HTTP, or over TLS as c's client when c is given. */
static int http_post(const pt_etcd_cluster *c, int port, const char *path, const char *body,
                     char *out, size_t len, double timeout)
{
    int fd = connect_loopback(port, timeout);
    SSL *ssl = NULL;
    if (fd < 0)
        return -1;
    if (c && !(ssl = tls_session(c, fd))) {
        close(fd);
        return -1;
    }
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, strlen(body), body);
    int sent = n < 0 || (size_t)n >= sizeof req ? -1
               : ssl                            ? SSL_write(ssl, req, n)
                                                : (int)write(fd, req, (size_t)n);
    char resp[65536];
    size_t got = 0;
    while (sent == n) {
        int r = ssl ? SSL_read(ssl, resp + got, (int)(sizeof resp - 1 - got))
                    : (int)read(fd, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof resp - 1)
            break;
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    if (sent != n)
        return -1;
    resp[got] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(out, len, "%s", b ? b + 4 : "");
    return status;
}

int pt_etcd_http_post(int port, const char *path, const char *body, char *out, size_t len,
                      double timeout)
{
    return http_post(NULL, port, path, body, out, len, timeout);
}

/* The decimal string value of "field":"..." in json, 0 when absent. */
static uint64_t json_u64(const char *json, const char *field)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", field);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static int member_status(const pt_etcd_cluster *c, const pt_etcd_member *m, uint64_t *id,
                         uint64_t *leader)
{
    char out[4096];
    if (http_post(c->flags & PT_ETCD_CLUSTER_TLS ? c : NULL, m->client_port,
                  "/v3/maintenance/status", "{}", out, sizeof out, 1.0) != 200)
        return -1;
    *id = json_u64(out, "member_id");
    *leader = json_u64(out, "leader");
    return *id && *leader ? 0 : -1;
}

int pt_etcd_cluster_leader(const pt_etcd_cluster *c)
{
    uint64_t ids[PT_ETCD_CLUSTER_MAX] = {0}, leader = 0;
    int live = 0;
    for (int i = 0; i < c->n; i++) {
        uint64_t l;
        if (!c->m[i].pid)
            continue;
        if (member_status(c, &c->m[i], &ids[i], &l) != 0)
            return -1;
        if (leader && l != leader)
            return -1;
        leader = l;
        live++;
    }
    for (int i = 0; live && i < c->n; i++)
        if (c->m[i].pid && ids[i] == leader)
            return i;
    return -1;
}

int pt_etcd_cluster_wait_leader(const pt_etcd_cluster *c, double deadline)
{
    double end = pt_etcd_now() + deadline;
    for (;;) {
        int l = pt_etcd_cluster_leader(c);
        if (l >= 0 || pt_etcd_now() > end)
            return l;
        poll_tick();
    }
}

static void reap(pt_etcd_member *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
    }
    m->pid = 0;
}

void pt_etcd_cluster_kill(pt_etcd_cluster *c, int i)
{
    reap(&c->m[i]);
}

int pt_etcd_cluster_kill_leader(pt_etcd_cluster *c, double deadline)
{
    int l = pt_etcd_cluster_wait_leader(c, deadline);
    if (l >= 0)
        reap(&c->m[l]);
    return l;
}

/* kill() only asks: a thread of etcd busy on another CPU may still answer
 * a request sent right after. waitpid reports the stop once every thread
 * has stopped (and the going on once it has), so the caller's next request
 * meets the state it asked for. */
void pt_etcd_cluster_pause(pt_etcd_cluster *c, int i, int stop)
{
    pt_etcd_member *m = &c->m[i];
    pid_t w;
    int st;

    stop = stop != 0;
    if (m->pid <= 0 || m->stopped == stop || kill(m->pid, stop ? SIGSTOP : SIGCONT) < 0)
        return;
    m->stopped = stop;
    do
        w = waitpid(m->pid, &st, stop ? WUNTRACED : WCONTINUED);
    while (w < 0 && errno == EINTR);
    if (w == m->pid && (WIFEXITED(st) || WIFSIGNALED(st)))
        m->pid = 0; /* it died meanwhile: reaped here */
}

static int member_exited(pt_etcd_member *m)
{
    int st;
    if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
        m->pid = 0;
        return 1;
    }
    return 0;
}

int pt_etcd_cluster_restart(pt_etcd_cluster *c, int i, double deadline)
{
    reap(&c->m[i]);
    c->m[i].stopped = 0;
    c->m[i].pid = spawn_member(c, i, "existing");
    if (c->m[i].pid < 0) {
        c->m[i].pid = 0;
        return -1;
    }
    return pt_etcd_cluster_wait_leader(c, deadline) >= 0 ? 0 : -1;
}

static void rm_tree(const char *dir)
{
    if (!dir[0])
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

void pt_etcd_cluster_stop(pt_etcd_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        reap(&c->m[i]);
    if (getenv("PT_ETCD_KEEP") == NULL)
        rm_tree(c->dir);
    c->dir[0] = '\0';
    if (atexit_cluster == c)
        atexit_cluster = NULL;
}

static void stop_at_exit(void)
{
    if (atexit_cluster)
        pt_etcd_cluster_stop(atexit_cluster);
}

static void show_logs(const pt_etcd_cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        char log[320];
        snprintf(log, sizeof log, "%s/%s.log", c->dir, c->m[i].name);
        pt_etcd_file_show(log, log);
    }
}

/* One attempt on fresh ports: 0 when every member is up and a leader agreed. */
static int start_once(pt_etcd_cluster *c, double deadline, char *err, size_t errlen)
{
    c->endpoints[0] = '\0';
    for (int i = 0; i < c->n; i++) {
        pt_etcd_member *m = &c->m[i];
        snprintf(m->name, sizeof m->name, "m%d", i);
        m->client_port = free_port();
        m->peer_port = free_port();
        m->pid = 0;
        if (m->client_port < 0 || m->peer_port < 0) {
            snprintf(err, errlen, "etcd cluster: no free port on 127.0.0.1: %s", strerror(errno));
            return -1;
        }
        size_t used = strlen(c->endpoints);
        snprintf(c->endpoints + used, sizeof c->endpoints - used, "%s%s://127.0.0.1:%d",
                 i ? "," : "", scheme(c), m->client_port);
    }
    for (int i = 0; i < c->n; i++) {
        c->m[i].stopped = 0;
        c->m[i].pid = spawn_member(c, i, "new");
        if (c->m[i].pid < 0) {
            c->m[i].pid = 0;
            snprintf(err, errlen, "etcd cluster: fork: %s", strerror(errno));
            return -1;
        }
    }
    double end = pt_etcd_now() + deadline;
    while (pt_etcd_now() < end) {
        for (int i = 0; i < c->n; i++)
            if (member_exited(&c->m[i])) {
                snprintf(err, errlen, "etcd cluster: member %s exited at start (log in %s)",
                         c->m[i].name, c->dir);
                return -1;
            }
        if (pt_etcd_cluster_leader(c) >= 0)
            return 0;
        poll_tick();
    }
    snprintf(err, errlen, "etcd cluster: no agreed leader within %.1f s", deadline);
    return -1;
}

int pt_etcd_cluster_start(pt_etcd_cluster *c, int n, double deadline, char *err, size_t errlen)
{
    return pt_etcd_cluster_start_with(c, n, 0, deadline, err, errlen);
}

int pt_etcd_cluster_start_with(pt_etcd_cluster *c, int n, unsigned flags, double deadline,
                               char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->flags = flags;
    if (n < 1 || n > PT_ETCD_CLUSTER_MAX) {
        snprintf(err, errlen, "etcd cluster: %d members asked, 1 to %d possible", n,
                 PT_ETCD_CLUSTER_MAX);
        return -1;
    }
    if (pt_etcd_find(c->program, sizeof c->program, err, errlen) != 0)
        return -1;
    c->n = n;
    const char *tmp = getenv("TMPDIR");
    /* Two tries: a port taken between free_port and etcd's bind fails the first. */
    for (int attempt = 0; attempt < 2; attempt++) {
        snprintf(c->dir, sizeof c->dir, "%s/pt-etcd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(c->dir)) {
            snprintf(err, errlen, "etcd cluster: mkdtemp %s: %s", c->dir, strerror(errno));
            c->dir[0] = '\0';
            return -1;
        }
        if (!atexit_cluster) {
            static int registered;
            if (!registered && atexit(stop_at_exit) == 0)
                registered = 1;
            atexit_cluster = c;
        }
        if ((flags & PT_ETCD_CLUSTER_TLS) && tls_make(c, err, errlen) != 0) {
            pt_etcd_cluster_stop(c);
            return -1;
        }
        if (start_once(c, deadline, err, errlen) == 0)
            return 0;
        if (attempt == 1)
            show_logs(c);
        pt_etcd_cluster_stop(c);
        c->n = n;
    }
    return -1;
}

/* ---- pythreadd for the cluster tests and benches -------------------- */

static int unix_listening(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    return r == 0;
}

pid_t pt_etcd_daemon_start(const char *program, const char *sock, const char *log,
                           const char *const *args, double deadline, char *err, size_t errlen)
{
    const char *argv[32] = {"pythreadd", "--socket", sock};
    double end = pt_etcd_now() + deadline;
    size_t n = 3;
    pid_t pid;

    for (size_t i = 0; args && args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if ((pid = fork()) < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    while (!unix_listening(sock)) {
        if (pt_etcd_now() > end || waitpid(pid, NULL, WNOHANG) == pid) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            snprintf(err, errlen, "pythreadd on %s did not come up; see %s", sock, log);
            return -1;
        }
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    return pid;
}

int pt_etcd_cluster_start_or_skip(pt_etcd_cluster *c, int n, double deadline)
{
    return pt_etcd_cluster_start_or_skip_with(c, n, 0, deadline);
}

int pt_etcd_cluster_start_or_skip_with(pt_etcd_cluster *c, int n, unsigned flags, double deadline)
{
    char err[512];

    if (pt_etcd_find(c->program, sizeof(c->program), err, sizeof(err)) != 0) {
        printf("SKIP: %s\n", err);
        exit(PT_ETCD_SKIP);
    }
    if (pt_etcd_cluster_start_with(c, n, flags, deadline, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

void pt_etcd_cluster_endpoints_from(const pt_etcd_cluster *c, int first, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (int k = 0; k < c->n && used < len; k++) {
        char ep[64];
        int n;

        pt_etcd_cluster_endpoint(c, (first + k) % c->n, ep, sizeof ep);
        n = snprintf(out + used, len - used, "%s%s", k ? "," : "", ep);
        used += n > 0 ? (size_t)n : 0;
    }
}

int pt_etcd_cluster_heal(pt_etcd_cluster *c, double deadline)
{
    for (int i = 0; i < c->n; i++)
        if (!c->m[i].pid && pt_etcd_cluster_restart(c, i, deadline) != 0)
            return -1;
    return 0;
}

void pt_etcd_file_show(const char *title, const char *path)
{
    char buf[4096];
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    size_t n;

    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", title);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}
