/*
 * perm_impostor.c - another user posing as someone's pythreadd.
 *
 * The attack: user B makes the directory where user A's daemon would live
 * (or binds a shared path first), runs a pythreadd of its own there, and
 * waits for A's programs to tell it their lock names and to take its
 * grants. A's client must refuse such a daemon before saying anything (its
 * directory does not belong to A, root or the service user; the process
 * serving it is B), and A's own daemon must refuse to start in B's
 * directory. "/tmp" is played by a sticky world-writable directory made by
 * the test, and XDG_RUNTIME_DIR points into it, so the default path rule
 * leads there. The test runs as root and becomes the two users in forked
 * children; skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pythread.h"

/* Users of the test; none needs to exist in /etc/passwd. */
#define VICTIM   41011
#define ATTACKER 41012
#define VGID     42011
#define AGID     42012

#define DEADLINE 10.0

typedef struct world {
    char base[64]; /* root's, 0711 */
    char tmp[96];  /* like /tmp: root's, 1777; the victim's XDG_RUNTIME_DIR */
    char dir[128]; /* tmp/pythread: the victim's default socket directory */
    char sock[160];
    char log[160];
    pid_t daemon;
} world;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tick(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

/* Become uid/gid for good (in a forked child). */
static void become(uid_t uid, gid_t gid)
{
    if (uid == 0)
        return;
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        fprintf(stderr, "cannot become uid %u: %s\n", (unsigned)uid, strerror(errno));
        _exit(126);
    }
}

/* The environment the default path rule reads. */
static void env_set(const char *xdg, const char *sock, const char *service)
{
    if (xdg)
        setenv("XDG_RUNTIME_DIR", xdg, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
    if (sock)
        setenv("PYTHREAD_SOCKET", sock, 1);
    else
        unsetenv("PYTHREAD_SOCKET");
    if (service)
        setenv("PYTHREAD_SERVICE_USER", service, 1);
    else
        unsetenv("PYTHREAD_SERVICE_USER");
}

/* pythreadd -v as uid, with XDG_RUNTIME_DIR=xdg, on sock (NULL: the
 * default path), stderr to log. */
static pid_t daemon_as(uid_t uid, gid_t gid, const char *xdg, const char *sock, const char *log)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        closefrom(3);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        env_set(xdg, NULL, NULL);
        become(uid, gid);
        if (sock)
            execl(PT_DAEMON_PATH, "pythreadd", "-v", "--socket", sock, (char *)NULL);
        else
            execl(PT_DAEMON_PATH, "pythreadd", "-v", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void show_log(const char *log)
{
    char buf[4096];
    FILE *f = fopen(log, "r");
    size_t n;

    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", log);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

static int log_has(const char *log, const char *text)
{
    char line[2048];
    FILE *f = fopen(log, "r");
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* Poll until something accepts connections on sock. */
static void wait_listening(world *w)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    double end = now() + DEADLINE;
    int status;

    snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", w->sock);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;

        close(fd);
        if (ok)
            return;
        if (waitpid(w->daemon, &status, WNOHANG) == w->daemon) {
            w->daemon = 0;
            show_log(w->log);
            fail_msg("pythreadd for %s ended before listening", w->sock);
        }
        if (now() > end) {
            show_log(w->log);
            fail_msg("pythreadd did not listen on %s in time", w->sock);
        }
        tick();
    }
}

/* The daemon's exit status, waiting up to the deadline. */
static int wait_exit(world *w)
{
    double end = now() + DEADLINE;
    int status;

    while (waitpid(w->daemon, &status, WNOHANG) != w->daemon) {
        if (now() > end) {
            show_log(w->log);
            fail_msg("pythreadd did not exit in time");
        }
        tick();
    }
    w->daemon = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct outcome {
    int rc;
    char message[1024];
} outcome;

/* pt_client_open(path) as uid with that environment, in a child. */
static outcome client_as(uid_t uid, gid_t gid, const char *xdg, const char *sock,
                         const char *service, const char *path)
{
    outcome o = {0};
    int fds[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pt_client *c = NULL;
        int rc;

        close(fds[0]);
        env_set(xdg, sock, service);
        become(uid, gid);
        rc = pt_client_open(&c, path);
        if (rc < 0)
            dprintf(fds[1], "%s", pt_last_error_message());
        pt_client_close(c);
        _exit(-rc);
    }
    close(fds[1]);
    while (len + 1 < sizeof o.message &&
           (n = read(fds[0], o.message + len, sizeof o.message - 1 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 126);
    o.rc = -WEXITSTATUS(status);
    return o;
}

static void expect(outcome o, int rc, const char *text)
{
    if (o.rc != rc)
        fail_msg("got %d (%s), want %d (%s); message: %s", o.rc, pt_err_name(o.rc), rc,
                 pt_err_name(rc), o.message);
    if (text && !strstr(o.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", o.message, text);
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
    world *w;

    *state = NULL;
    if (geteuid() != 0)
        return 0;
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    snprintf(w->base, sizeof w->base, "/tmp/pt-imp.XXXXXX");
    assert_non_null(mkdtemp(w->base));
    assert_int_equal(chmod(w->base, 0711), 0);
    snprintf(w->tmp, sizeof w->tmp, "%s/tmp", w->base);
    assert_int_equal(mkdir(w->tmp, 0700), 0);
    assert_int_equal(chmod(w->tmp, 01777), 0);
    snprintf(w->dir, sizeof w->dir, "%s/pythread", w->tmp);
    snprintf(w->sock, sizeof w->sock, "%s/pythreadd.sock", w->dir);
    snprintf(w->log, sizeof w->log, "%s/pythreadd.log", w->base);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    char cmd[160];

    if (!w)
        return 0;
    if (w->daemon) {
        kill(w->daemon, SIGKILL);
        waitpid(w->daemon, NULL, 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", w->base);
    free(w);
    return 0;
}

#define SKIP_UNLESS_ROOT(state)                                                                    \
    do {                                                                                           \
        if (*(state) == NULL) {                                                                    \
            fprintf(stderr, "skipped: needs root\n");                                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A directory made by uid with mode (exactly). */
static void make_dir(const char *dir, uid_t uid, gid_t gid, mode_t mode)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chown(dir, uid, gid), 0);
    assert_int_equal(chmod(dir, mode), 0);
}

/* ---- tests --------------------------------------------------------------- */

/* The attacker got to the victim's default directory first and serves a
 * daemon there: the victim's programs refuse it without a hello. */
static void test_impostor_in_default_dir(void **state)
{
    world *w = *state;
    outcome o;

    SKIP_UNLESS_ROOT(state);
    make_dir(w->dir, ATTACKER, AGID, 0755);
    w->daemon = daemon_as(ATTACKER, AGID, w->tmp, w->sock, w->log);
    wait_listening(w);
    o = client_as(VICTIM, VGID, w->tmp, NULL, NULL, NULL);
    expect(o, PT_EPERM, "refusing the socket directory");
    if (!strstr(o.message, w->dir) || !strstr(o.message, "uid 41012") ||
        !strstr(o.message, "mode 0755"))
        fail_msg("the message should name the directory, its owner and mode: %s", o.message);
    /* Even named explicitly, the default path gets the same check. */
    expect(client_as(VICTIM, VGID, w->tmp, w->sock, NULL, NULL), PT_EPERM, "uid 41012");
    expect(client_as(VICTIM, VGID, w->tmp, NULL, NULL, w->sock), PT_EPERM, "uid 41012");
    if (log_has(w->log, "hello from")) {
        show_log(w->log);
        fail_msg("the impostor got a hello");
    }
}

/* A shared path in a sticky directory is fine to use, but only with a
 * trusted daemon behind it: root, yourself, or the service user. */
static void test_impostor_on_shared_path(void **state)
{
    world *w = *state;
    outcome o;

    SKIP_UNLESS_ROOT(state);
    snprintf(w->sock, sizeof w->sock, "%s/shared.sock", w->tmp);
    w->daemon = daemon_as(ATTACKER, AGID, w->tmp, w->sock, w->log);
    wait_listening(w);
    o = client_as(VICTIM, VGID, NULL, w->sock, NULL, NULL);
    expect(o, PT_EPERM, "it is served by uid 41012");
    if (!strstr(o.message, w->sock) || !strstr(o.message, "PYTHREAD_SERVICE_USER"))
        fail_msg("the message should name the path and the way out: %s", o.message);
    /* Root is no exception: the peer must still be root or the service
     * user. */
    expect(client_as(0, 0, NULL, w->sock, NULL, NULL), PT_EPERM, "served by uid 41012");
    expect(client_as(0, 0, NULL, w->sock, "pythread", NULL), PT_EPERM, "service user pythread");
    if (log_has(w->log, "hello from")) {
        show_log(w->log);
        fail_msg("the impostor got a hello");
    }
    /* The service user, by number or by name, is trusted. */
    expect(client_as(VICTIM, VGID, NULL, w->sock, "41012", NULL), 0, NULL);
    expect(client_as(0, 0, NULL, NULL, "41012", w->sock), 0, NULL);
    expect(client_as(VICTIM, VGID, NULL, w->sock, "root", NULL), PT_EPERM, "41012");
}

/* The user's own daemon, in the default place or a shared one, is used. */
static void test_own_daemon_trusted(void **state)
{
    world *w = *state;

    SKIP_UNLESS_ROOT(state);
    w->daemon = daemon_as(VICTIM, VGID, w->tmp, NULL, w->log);
    wait_listening(w);
    expect(client_as(VICTIM, VGID, w->tmp, NULL, NULL, NULL), 0, NULL);
    /* Root trusts nobody but root and the service user. */
    expect(client_as(0, 0, NULL, w->sock, NULL, NULL), PT_EPERM, "uid 41011");
    kill(w->daemon, SIGTERM);
    assert_int_equal(wait_exit(w), 0);
}

/* The victim's daemon will not start in the attacker's directory, nor in
 * one of its own that others may write. */
static void test_daemon_refuses_foreign_dir(void **state)
{
    world *w = *state;

    SKIP_UNLESS_ROOT(state);
    make_dir(w->dir, ATTACKER, AGID, 0700);
    w->daemon = daemon_as(VICTIM, VGID, w->tmp, NULL, w->log);
    assert_int_not_equal(wait_exit(w), 0);
    if (!log_has(w->log, "uid 41012")) {
        show_log(w->log);
        fail_msg("the log should say whose directory it is");
    }
    assert_int_equal(rmdir(w->dir), 0);
    /* Sticky is enough for an explicit path in /tmp, not for the default
     * directory, which must be private. */
    make_dir(w->dir, VICTIM, VGID, 01777);
    w->daemon = daemon_as(VICTIM, VGID, w->tmp, NULL, w->log);
    assert_int_not_equal(wait_exit(w), 0);
    if (!log_has(w->log, "mode 1777")) {
        show_log(w->log);
        fail_msg("the log should give the directory's mode");
    }
    /* The client refuses it too. */
    expect(client_as(VICTIM, VGID, w->tmp, NULL, NULL, NULL), PT_EPERM, "mode 1777");
    /* A default directory that is a symbolic link is refused by both. */
    assert_int_equal(rmdir(w->dir), 0);
    {
        char target[160];

        snprintf(target, sizeof target, "%s/elsewhere", w->base);
        make_dir(target, VICTIM, VGID, 0700);
        assert_int_equal(symlink(target, w->dir), 0);
    }
    expect(client_as(VICTIM, VGID, w->tmp, NULL, NULL, NULL), PT_EPERM, "symbolic link");
    w->daemon = daemon_as(VICTIM, VGID, w->tmp, NULL, w->log);
    assert_int_not_equal(wait_exit(w), 0);
    if (!log_has(w->log, "symbolic link")) {
        show_log(w->log);
        fail_msg("the log should say the directory is a symbolic link");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_impostor_in_default_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_impostor_on_shared_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_daemon_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_refuses_foreign_dir, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
