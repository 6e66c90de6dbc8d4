#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PT_DAEMON_PATH
#error "PT_DAEMON_PATH must name the pythreadd binary"
#endif

double harness_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void harness_tick(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* Children                                                            */
/* ------------------------------------------------------------------ */

void harness_adopt(harness *h, pid_t pid)
{
    if (h->nkids < HARNESS_MAX_KIDS)
        h->kids[h->nkids++] = pid;
}

static void kid_forget(harness *h, pid_t pid)
{
    for (int i = 0; i < h->nkids; i++) {
        if (h->kids[i] == pid) {
            h->kids[i] = h->kids[--h->nkids];
            return;
        }
    }
}

/*
 * cmocka catches crashes with handlers that longjmp into its runner; in a
 * forked child that would go on running the rest of the suite there, so a
 * child dies of its signal instead, which the parent reports.
 */
static void child_reset_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS, SIGABRT, SIGTERM};

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

/*
 * A child never outlives the test process: if the suite is killed (a ctest
 * timeout), its daemons and workers go with it instead of lingering.
 */
static pid_t fork_flushed(int deathsig)
{
    pid_t parent = getpid();
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, deathsig);
        if (getppid() != parent)
            _exit(3);
    }
    return pid;
}

pid_t harness_fork(harness *h, harness_fn fn, int index, void *arg)
{
    pid_t pid = fork_flushed(SIGKILL);

    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        child_reset_signals();
        _exit(fn(index, arg));
    }
    harness_adopt(h, pid);
    return pid;
}

typedef struct worker_ctx {
    harness_worker_fn fn;
    void *arg;
} worker_ctx;

/* The worker's own session, opened after the fork as a real process would. */
static int worker_main(int index, void *arg)
{
    const worker_ctx *w = arg;
    pt_client *c = NULL;
    int rc = pt_client_open(&c, NULL);

    if (rc != 0)
        harness_child_fail(__FILE__, __LINE__, "pt_client_open(&c, NULL) == 0", rc, 0);
    rc = w->fn(c, index, w->arg);
    pt_client_close(c);
    return rc;
}

pid_t harness_worker(harness *h, harness_worker_fn fn, int index, void *arg)
{
    worker_ctx w = {fn, arg};

    return harness_fork(h, worker_main, index, &w);
}

void harness_workers(harness *h, pid_t *pids, int n, harness_worker_fn fn, void *arg)
{
    for (int i = 0; i < n; i++)
        pids[i] = harness_worker(h, fn, i, arg);
}

int harness_wait(harness *h, pid_t pid, double timeout, int *status)
{
    double deadline = harness_now() + timeout;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid) {
            kid_forget(h, pid);
            return 0;
        }
        if (r < 0 && errno != EINTR)
            fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
        if (harness_now() > deadline)
            return -1;
        harness_tick();
    }
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "wait status 0x%x", status);
}

void harness_join(harness *h, const pid_t *pids, int n, double timeout)
{
    double deadline = harness_now() + timeout;
    char bad[256] = "";

    for (int i = 0; i < n; i++) {
        double left = deadline - harness_now();
        int status;

        if (harness_wait(h, pids[i], left > 0 ? left : 0, &status) < 0) {
            for (int j = i; j < n; j++)
                harness_kill(h, pids[j]);
            fail_msg("worker %d (pid %d) did not exit within %.1f s", i, (int)pids[i], timeout);
        }
        if (!bad[0] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            char what[96];

            describe_status(status, what, sizeof what);
            snprintf(bad, sizeof bad, "worker %d (pid %d) failed: %s", i, (int)pids[i], what);
        }
    }
    if (bad[0])
        fail_msg("%s", bad);
}

void harness_kill(harness *h, pid_t pid)
{
    int status;

    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    kid_forget(h, pid);
}

void harness_wait_flag(const atomic_int *flag, int value, double timeout, const char *what)
{
    double deadline = harness_now() + timeout;

    while (atomic_load(flag) < value) {
        if (harness_now() > deadline)
            fail_msg("%s: still %d after %.1f s, want %d", what, atomic_load(flag), timeout, value);
        harness_tick();
    }
}

_Noreturn void harness_child_fail(const char *file, int line, const char *expr, long long a,
                                  long long b)
{
    fprintf(stderr, "[pid %d] %s:%d: check failed: %s (got %lld%s%s, want %lld); last error: %s\n",
            (int)getpid(), file, line, expr, a, a < 0 && a >= PT_EDEADLK ? " " : "",
            a < 0 && a >= PT_EDEADLK ? pt_err_name((int)a) : "", b, pt_last_error_message());
    _exit(2);
}

/* ------------------------------------------------------------------ */
/* Shared memory                                                       */
/* ------------------------------------------------------------------ */

void *harness_shm_alloc(harness *h, size_t len)
{
    void *p;

    assert_true(h->nshm < HARNESS_MAX_SHM);
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail_msg("mmap %zu bytes: %s", len, strerror(errno));
    h->shm[h->nshm].addr = p;
    h->shm[h->nshm].len = len;
    h->nshm++;
    return p;
}

/* ------------------------------------------------------------------ */
/* The daemon                                                          */
/* ------------------------------------------------------------------ */

/* The harness of the start under way, for its daemon_* settings (the spawn
 * takes no harness); NULL: none of them. */
static const harness *spawning;

/* In the daemon's child: the harness's limit and environment. */
static void spawn_settings(void)
{
    const char *const *env = spawning ? spawning->daemon_env : NULL;

    if (spawning && spawning->daemon_nofile) {
        struct rlimit rl = {spawning->daemon_nofile, spawning->daemon_nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(126);
    }
    while (env && *env)
        putenv((char *)*env++);
}

pid_t harness_daemon_spawn(const char *sock, const char *log, const char *const *args)
{
    const char *argv[32] = {"pythreadd", "--socket", sock};
    const char *path =
        spawning && spawning->daemon_path ? spawning->daemon_path : harness_daemon_program();
    size_t n = 3;
    pid_t pid = fork_flushed(SIGTERM);

    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

        child_reset_signals();
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        /* Nothing of the test process (client sockets) leaks into the daemon,
         * and it binds our path even when the suite runs under systemd. */
        closefrom(3);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        spawn_settings();
        while (args && *args && n < sizeof argv / sizeof argv[0] - 1)
            argv[n++] = *args++;
        argv[n] = NULL;
        execv(path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

const char *harness_daemon_program(void)
{
    return PT_DAEMON_PATH;
}

void harness_show_log(const char *log)
{
    char buf[4096];
    FILE *f = fopen(log, "r");
    size_t n;

    if (!f)
        return;
    fprintf(stderr, "---- daemon log %s ----\n", log);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of daemon log ----\n");
    fclose(f);
}

int harness_log_count(const char *log, const char *what)
{
    char line[1024];
    FILE *f = fopen(log, "r");
    int n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

void harness_log_wait(const harness *h, const char *what, int n, double timeout)
{
    double deadline = harness_now() + timeout;

    while (harness_log_count(h->log, what) < n) {
        if (harness_now() > deadline)
            fail_msg("the daemon's log %s has %d lines with \"%s\" after %.1f s, want %d", h->log,
                     harness_log_count(h->log, what), what, timeout, n);
        harness_tick();
    }
}

int harness_daemon_answers(const char *sock)
{
    raw_conn rc;
    int ok;

    if (raw_connect(&rc, sock) != 0)
        return 0;
    ok = raw_hello(&rc, PT_PROTOCOL_VERSION) == 0;
    raw_close(&rc);
    return ok;
}

/* Start the daemon and wait until it answers; returns NULL or what went
 * wrong (in buf), the daemon then stopped and its log shown. */
static const char *daemon_start(harness *h, char *buf, size_t len)
{
    double deadline = harness_now() + HARNESS_DEADLINE;
    pt_client *c = NULL;
    int rc, status;

    spawning = h;
    h->daemon = harness_daemon_spawn(h->sock, h->log, h->daemon_args);
    spawning = NULL;
    while (!harness_daemon_answers(h->sock)) {
        if (waitpid(h->daemon, &status, WNOHANG) == h->daemon) {
            char what[96];

            h->daemon = 0;
            describe_status(status, what, sizeof what);
            harness_show_log(h->log);
            snprintf(buf, len, "pythreadd on %s ended (%s) before answering", h->sock, what);
            return buf;
        }
        if (harness_now() > deadline) {
            kill(h->daemon, SIGKILL);
            waitpid(h->daemon, &status, 0);
            h->daemon = 0;
            harness_show_log(h->log);
            snprintf(buf, len, "pythreadd on %s did not answer a hello within %.0f s", h->sock,
                     HARNESS_DEADLINE);
            return buf;
        }
        harness_tick();
    }
    rc = pt_client_open(&c, h->sock);
    if (rc != 0) {
        kill(h->daemon, SIGKILL);
        waitpid(h->daemon, &status, 0);
        h->daemon = 0;
        harness_show_log(h->log);
        snprintf(buf, len, "the daemon answers a raw hello but pt_client_open(%s) fails: %s (%s)",
                 h->sock, pt_err_name(rc), pt_last_error_message());
        return buf;
    }
    pt_client_close(c);
    return NULL;
}

void harness_daemon_start(harness *h)
{
    char buf[320];
    const char *err = daemon_start(h, buf, sizeof buf);

    if (err)
        fail_msg("%s", err);
}

static void remove_dir(const char *dir);

/* UBSan reports and goes on (exit status 0), so its words are looked for;
 * ASan and LSan also change the exit status. */
static int log_has_sanitizer_report(const char *log)
{
    static const char *const marks[] = {"runtime error:", "AddressSanitizer", "LeakSanitizer"};
    char line[1024];
    FILE *f = fopen(log, "r");
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
            if (strstr(line, marks[i]))
                found = 1;
    fclose(f);
    return found;
}

/* SIGTERM and reap; returns NULL or what went wrong (static text). */
static const char *daemon_stop(harness *h, char *buf, size_t len)
{
    int status;

    if (!h->daemon)
        return NULL;
    kill(h->daemon, SIGTERM);
    if (harness_wait(h, h->daemon, HARNESS_DEADLINE, &status) < 0) {
        harness_kill(h, h->daemon);
        h->daemon = 0;
        snprintf(buf, len, "pythreadd did not exit within %.0f s of SIGTERM", HARNESS_DEADLINE);
        return buf;
    }
    h->daemon = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char what[96];

        describe_status(status, what, sizeof what);
        snprintf(buf, len, "pythreadd ended with %s on SIGTERM, want exit status 0", what);
        return buf;
    }
    if (access(h->sock, F_OK) == 0) {
        snprintf(buf, len, "pythreadd exited on SIGTERM but left its socket %s", h->sock);
        return buf;
    }
    if (log_has_sanitizer_report(h->log)) {
        snprintf(buf, len, "a sanitizer reported a problem in the daemon (see its log)");
        return buf;
    }
    return NULL;
}

void harness_daemon_stop(harness *h)
{
    char buf[256];
    const char *err = daemon_stop(h, buf, sizeof buf);

    if (err) {
        harness_show_log(h->log);
        fail_msg("%s", err);
    }
}

/* mkdtemp and start; returns NULL or what went wrong, nothing left behind. */
static const char *start(harness *h, char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    const char *err;

    memset(h, 0, sizeof *h);
    /* sun_path is short: a long TMPDIR falls back to /tmp. */
    if (!tmp || !*tmp || strlen(tmp) > 64)
        tmp = "/tmp";
    snprintf(h->dir, sizeof h->dir, "%s/pt-it.XXXXXX", tmp);
    if (!mkdtemp(h->dir)) {
        snprintf(buf, len, "mkdtemp %s: %s", h->dir, strerror(errno));
        return buf;
    }
    snprintf(h->sock, sizeof h->sock, "%s/pythreadd.sock", h->dir);
    snprintf(h->log, sizeof h->log, "%s/pythreadd.log", h->dir);
    setenv("PYTHREAD_SOCKET", h->sock, 1);
    err = daemon_start(h, buf, len);
    if (err)
        remove_dir(h->dir);
    return err;
}

void harness_start(harness *h)
{
    char buf[320];
    const char *err = start(h, buf, sizeof buf);

    if (err)
        fail_msg("%s", err);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void harness_stop(harness *h)
{
    char buf[256];
    const char *err;

    while (h->nkids > 0)
        harness_kill(h, h->kids[h->nkids - 1]);
    err = daemon_stop(h, buf, sizeof buf);
    if (err)
        harness_show_log(h->log);
    for (int i = 0; i < h->nshm; i++)
        munmap(h->shm[i].addr, h->shm[i].len);
    h->nshm = 0;
    remove_dir(h->dir);
    if (err)
        fail_msg("%s", err);
}

int harness_setup(void **state)
{
    harness *h = calloc(1, sizeof *h);
    char buf[320];
    const char *err;

    assert_non_null(h);
    *state = NULL;
    err = start(h, buf, sizeof buf);
    if (err) {
        /* cmocka runs no teardown after a failed setup. */
        free(h);
        fail_msg("%s", err);
    }
    *state = h;
    return 0;
}

int harness_teardown(void **state)
{
    harness *h = *state;
    char buf[256];
    const char *err;

    if (!h)
        return 0;
    while (h->nkids > 0)
        harness_kill(h, h->kids[h->nkids - 1]);
    err = daemon_stop(h, buf, sizeof buf);
    if (err || !h->passed)
        harness_show_log(h->log);
    for (int i = 0; i < h->nshm; i++)
        munmap(h->shm[i].addr, h->shm[i].len);
    remove_dir(h->dir);
    free(h);
    *state = NULL;
    if (err)
        fail_msg("%s", err);
    return 0;
}

/* Close a handle and wait for the answer: the daemon has taken it in
 * (a daemon restarted after it keeps no session for a handle-less peer). */
static void raw_handle_close(raw_conn *rc, uint32_t handle)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;

    req.op = PYTHREAD__OP__OP_CLOSE;
    req.has_handle = 1;
    req.handle = handle;
    (void)raw_call(rc, &req, HARNESS_DEADLINE);
}

void harness_wait_waiters(const harness *h, const char *name, pt_kind kind, uint32_t n,
                          double timeout)
{
    double deadline = harness_now() + timeout;
    uint32_t handle = 0, seen = 0;
    raw_conn rc;
    int st;

    if (raw_connect(&rc, h->sock) != 0)
        fail_msg("connect %s: %s", h->sock, strerror(errno));
    st = raw_hello(&rc, PT_PROTOCOL_VERSION);
    if (st != 0) {
        raw_close(&rc);
        fail_msg("raw hello: %s", pt_err_name(st));
    }
    /* The processes to wait for may not have created the object yet. */
    while ((st = raw_open(&rc, name, kind, PT_OPEN_EXISTING, &handle)) == PT_ENOENT &&
           harness_now() < deadline)
        harness_tick();
    if (st != 0) {
        raw_close(&rc);
        fail_msg("raw open of %s '%s': %s", pt_kind_name(kind), name, pt_err_name(st));
    }
    for (;;) {
        st = raw_state_waiting(&rc, handle, &seen);
        if (st != 0) {
            raw_close(&rc);
            fail_msg("state of %s '%s': %s", pt_kind_name(kind), name, pt_err_name(st));
        }
        if (seen >= n)
            break;
        if (harness_now() > deadline) {
            raw_close(&rc);
            fail_msg("%s '%s': the daemon's state shows %u waiters after %.1f s, want %u",
                     pt_kind_name(kind), name, seen, timeout, n);
        }
        harness_tick();
    }
    raw_handle_close(&rc, handle);
    raw_close(&rc);
}

/* ------------------------------------------------------------------ */
/* Raw wire connection                                                 */
/* ------------------------------------------------------------------ */

#define RAW_ARENA (4u * PT_WIRE_MAX_FRAME)
#define RAW_INCAP (2u * (PT_WIRE_HEADER + PT_WIRE_MAX_FRAME))

int raw_connect(raw_conn *rc, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int err;

    memset(rc, 0, sizeof *rc);
    rc->fd = -1;
    rc->next_id = 1;
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    rc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rc->fd < 0)
        return -errno;
    if (connect(rc->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err = -errno;
        close(rc->fd);
        rc->fd = -1;
        return err;
    }
    rc->arena_buf = malloc(RAW_ARENA);
    rc->in = malloc(RAW_INCAP);
    rc->incap = RAW_INCAP;
    if (!rc->arena_buf || !rc->in) {
        raw_close(rc);
        return -ENOMEM;
    }
    pt_wire_arena_init(&rc->arena, rc->arena_buf, RAW_ARENA);
    return 0;
}

void raw_close(raw_conn *rc)
{
    if (rc->fd >= 0)
        close(rc->fd);
    rc->fd = -1;
    free(rc->arena_buf);
    free(rc->in);
    rc->arena_buf = NULL;
    rc->in = NULL;
}

int raw_send(raw_conn *rc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(rc->fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_send_request(raw_conn *rc, Pythread__Request *req)
{
    size_t len;
    uint8_t *buf;
    int rv;

    if (req->id == 0)
        req->id = rc->next_id++;
    len = pt_wire_request_frame_size(req);
    buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    pt_wire_request_frame_pack(req, buf);
    rv = raw_send(rc, buf, len);
    free(buf);
    return rv;
}

/* Decode the first buffered frame if it is complete: RAW_FRAME, RAW_ERROR,
 * or RAW_TIMEOUT meaning "need more bytes". */
static int raw_take_frame(raw_conn *rc, Pythread__Response **out)
{
    uint32_t len;
    char err[160];

    if (rc->inlen < PT_WIRE_HEADER)
        return RAW_TIMEOUT;
    len = pt_wire_len_get(rc->in);
    if (len > PT_WIRE_MAX_FRAME) {
        fprintf(stderr, "raw: the daemon sent a frame header of %u bytes\n", len);
        rc->inlen = 0;
        return RAW_ERROR;
    }
    if (rc->inlen < PT_WIRE_HEADER + len)
        return RAW_TIMEOUT;
    pt_wire_arena_reset(&rc->arena);
    *out = pt_wire_response_decode(&rc->arena, rc->in + PT_WIRE_HEADER, len, err, sizeof err);
    rc->inlen -= PT_WIRE_HEADER + len;
    memmove(rc->in, rc->in + PT_WIRE_HEADER + len, rc->inlen);
    if (!*out) {
        fprintf(stderr, "raw: %s\n", err);
        return RAW_ERROR;
    }
    return RAW_FRAME;
}

int raw_recv(raw_conn *rc, double timeout, Pythread__Response **out)
{
    double deadline = harness_now() + timeout;

    for (;;) {
        struct pollfd pfd = {.fd = rc->fd, .events = POLLIN};
        int r = raw_take_frame(rc, out);
        double left;
        ssize_t n;

        if (r != RAW_TIMEOUT)
            return r;
        left = deadline - harness_now();
        if (left <= 0)
            return RAW_TIMEOUT;
        r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            continue; /* the deadline check above decides */
        n = read(rc->fd, rc->in + rc->inlen, rc->incap - rc->inlen);
        if (n == 0)
            return RAW_EOF;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            /* ECONNRESET: the daemon closed with our bytes unread, closed too. */
            if (errno != ECONNRESET)
                fprintf(stderr, "raw: read: %s\n", strerror(errno));
            return RAW_EOF;
        }
        rc->inlen += (size_t)n;
    }
}

Pythread__Response *raw_call(raw_conn *rc, Pythread__Request *req, double timeout)
{
    double deadline = harness_now() + timeout;
    Pythread__Response *resp = NULL;

    if (raw_send_request(rc, req) != 0)
        return NULL;
    for (;;) {
        double left = deadline - harness_now();

        if (raw_recv(rc, left > 0 ? left : 0, &resp) != RAW_FRAME)
            return NULL;
        if (resp->id == req->id)
            return resp;
    }
}

static int resp_status(const Pythread__Response *r)
{
    return r->has_status ? r->status : 0;
}

void raw_hello_init(Pythread__Request *req, Pythread__HelloArgs *hello, uint32_t version)
{
    *req = (Pythread__Request)PYTHREAD__REQUEST__INIT;
    *hello = (Pythread__HelloArgs)PYTHREAD__HELLO_ARGS__INIT;
    req->op = PYTHREAD__OP__OP_HELLO;
    req->hello = hello;
    hello->has_version = 1;
    hello->version = version;
    hello->client_name = "integration-raw";
}

int raw_hello(raw_conn *rc, uint32_t version)
{
    Pythread__Request req;
    Pythread__HelloArgs hello;
    Pythread__Response *resp;

    raw_hello_init(&req, &hello, version);
    resp = raw_call(rc, &req, HARNESS_DEADLINE);
    return resp ? resp_status(resp) : PT_ESESSION;
}

int raw_open(raw_conn *rc, const char *name, pt_kind kind, uint32_t flags, uint32_t *handle)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__OpenArgs args = PYTHREAD__OPEN_ARGS__INIT;
    Pythread__Response *resp;

    req.op = PYTHREAD__OP__OP_OPEN;
    req.has_name = 1;
    req.name.data = (uint8_t *)name;
    req.name.len = strlen(name);
    req.open = &args;
    args.has_kind = 1;
    args.kind = (int32_t)kind;
    args.has_flags = 1;
    args.flags = flags;
    args.has_mode = 1;
    args.mode = PT_DEFAULT_MODE;
    resp = raw_call(rc, &req, HARNESS_DEADLINE);
    if (!resp)
        return PT_ESESSION;
    *handle = resp->handle;
    return resp_status(resp);
}

int raw_state_waiting(raw_conn *rc, uint32_t handle, uint32_t *n_waiting)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__Response *resp;

    req.op = PYTHREAD__OP__OP_STATE;
    req.has_handle = 1;
    req.handle = handle;
    resp = raw_call(rc, &req, HARNESS_DEADLINE);
    if (!resp)
        return PT_ESESSION;
    *n_waiting = resp->state && resp->state->has_n_waiting ? resp->state->n_waiting : 0;
    return resp_status(resp);
}

int raw_wait_eof(raw_conn *rc, double timeout, raw_closing *seen)
{
    double deadline = harness_now() + timeout;
    Pythread__Response *resp;

    memset(seen, 0, sizeof *seen);
    for (;;) {
        double left = deadline - harness_now();
        int r = raw_recv(rc, left > 0 ? left : 0, &resp);

        if (r == RAW_EOF)
            return 1;
        if (r == RAW_TIMEOUT)
            return 0;
        seen->frames++; /* an undecodable frame counts, but not as PT_EPROTO */
        if (r == RAW_FRAME && resp_status(resp) == PT_EPROTO) {
            seen->eproto++;
            if (resp->message && *resp->message) {
                if (!seen->with_message++)
                    snprintf(seen->message, sizeof seen->message, "%s", resp->message);
            }
        }
    }
}

pt_inspect_detail *harness_show(const char *name)
{
    pt_client *c = NULL;
    pt_inspect_detail *d = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_inspect_show(c, name, &d));
    pt_client_close(c);
    return d;
}

void harness_status(pt_inspect_status *st)
{
    pt_client *c = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_inspect_status_get(c, st));
    pt_client_close(c);
}

void harness_grace_over(void)
{
    double end = harness_now() + HARNESS_DEADLINE;
    pt_inspect_status st;

    for (harness_status(&st); st.in_grace; harness_status(&st)) {
        if (harness_now() > end)
            fail_msg("the grace period is not over after %.0f s", HARNESS_DEADLINE);
        harness_tick();
    }
}
