/*
 * What the client does on its own, with no daemon: the error table, the
 * socket path rule, refusing to connect clearly, NULL handles, and the
 * thread-local last error.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pythread.h"

static void test_error_table(void **state)
{
    static const struct {
        int code;
        const char *name;
        const char *exc;
    } table[] = {
#define ROW(name, val, exc, text) {PT_##name, "PT_" #name, exc},
        PT_ERRNO_MAP(ROW)
#undef ROW
    };
    size_t i, j;

    (void)state;
    assert_int_equal(sizeof(table) / sizeof(table[0]), 18);
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(table[i].code, -(int)(i + 1)); /* numbers never change */
        assert_string_equal(pt_err_name(table[i].code), table[i].name);
        assert_string_equal(pt_err_exception(table[i].code), table[i].exc);
        assert_true(strlen(pt_strerror(table[i].code)) > 0);
        for (j = 0; j < i; j++)
            assert_string_not_equal(pt_strerror(table[i].code), pt_strerror(table[j].code));
    }
    assert_string_equal(pt_err_exception(PT_ERUNTIME), "RuntimeError");
    assert_string_equal(pt_err_exception(PT_EBROKEN), "BrokenBarrierError");
    assert_string_equal(pt_err_exception(PT_EOVERFLOW), "OverflowError");
    assert_string_equal(pt_err_exception(PT_EINVAL), "ValueError");
    assert_string_equal(pt_strerror(0), "success");
    assert_string_equal(pt_strerror(-999), "unknown error");
    assert_string_equal(pt_err_name(-999), "PT_EUNKNOWN");
    assert_string_equal(pt_kind_name(PT_KIND_BOUNDED_SEMAPHORE), "BoundedSemaphore");
    assert_string_equal(pt_kind_name((pt_kind)99), "unknown");
}

static void test_socket_path_rule(void **state)
{
    char buf[256], want[256];
    char *saved_env = getenv("PYTHREAD_SOCKET"), *saved_xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    (void)state;
    saved_env = saved_env ? strdup(saved_env) : NULL;
    saved_xdg = saved_xdg ? strdup(saved_xdg) : NULL;

    setenv("PYTHREAD_SOCKET", "/somewhere/else.sock", 1);
    assert_int_equal(pt_default_socket_path(buf, sizeof(buf)), 20);
    assert_string_equal(buf, "/somewhere/else.sock");
    assert_int_equal(pt_default_socket_path(buf, 20), PT_EINVAL); /* no room for the NUL */

    unsetenv("PYTHREAD_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
    n = pt_default_socket_path(buf, sizeof(buf));
    if (geteuid() == 0)
        snprintf(want, sizeof(want), "/run/pythread/pythreadd.sock");
    else
        snprintf(want, sizeof(want), "/run/user/1234/pythread/pythreadd.sock");
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));

    unsetenv("XDG_RUNTIME_DIR");
    pt_default_socket_path(buf, sizeof(buf));
    if (geteuid() == 0)
        snprintf(want, sizeof(want), "/run/pythread/pythreadd.sock");
    else
        snprintf(want, sizeof(want), "/tmp/pythread-%u/pythreadd.sock", (unsigned)geteuid());
    assert_string_equal(buf, want);

    if (saved_env)
        setenv("PYTHREAD_SOCKET", saved_env, 1);
    if (saved_xdg)
        setenv("XDG_RUNTIME_DIR", saved_xdg, 1);
    free(saved_env);
    free(saved_xdg);
}

/* The i-th path of the rule equals want (NULL: there is none). */
static int path_is(int i, const char *want)
{
    char buf[256];
    int n = pt_default_socket_paths(i, buf, sizeof(buf));

    if (!want)
        return n == 0;
    return n == (int)strlen(want) && strcmp(buf, want) == 0;
}

/* A user other than root: their own socket first, then the system one.
 * Exits 0 when the rule says so (a child: the uid cannot be had back). */
static void user_order(void)
{
    char own[64];
    int ok;

    if (geteuid() == 0 && setuid(65534) < 0)
        _exit(2);
    setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
    ok = path_is(0, "/run/user/1234/pythread/pythreadd.sock") && path_is(1, "/test/system.sock") &&
         path_is(2, NULL);
    unsetenv("XDG_RUNTIME_DIR");
    snprintf(own, sizeof(own), "/tmp/pythread-%u/pythreadd.sock", (unsigned)geteuid());
    ok = ok && path_is(0, own) && path_is(1, "/test/system.sock");
    /* PYTHREAD_SOCKET means that daemon alone, for any user. */
    setenv("PYTHREAD_SOCKET", "/somewhere/else.sock", 1);
    ok = ok && path_is(0, "/somewhere/else.sock") && path_is(1, NULL);
    _exit(ok ? 0 : 1);
}

/* The order of pt_default_socket_paths, with the system socket moved by
 * PYTHREAD_SYSTEM_SOCKET (the knob for tests). */
static void test_socket_path_order(void **state)
{
    char buf[8], *saved_env = getenv("PYTHREAD_SOCKET");
    pid_t pid;
    int st;

    (void)state;
    saved_env = saved_env ? strdup(saved_env) : NULL;
    unsetenv("PYTHREAD_SOCKET");
    setenv("PYTHREAD_SYSTEM_SOCKET", "/test/system.sock", 1);
    assert_int_equal(pt_default_socket_paths(-1, buf, sizeof(buf)), PT_EINVAL);
    assert_int_equal(pt_default_socket_paths(0, buf, sizeof(buf)), PT_EINVAL); /* too long */
    if (geteuid() == 0) { /* root has the system daemon alone */
        assert_true(path_is(0, "/test/system.sock"));
        assert_true(path_is(1, NULL));
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        user_order();
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    unsetenv("PYTHREAD_SYSTEM_SOCKET");
    if (saved_env)
        setenv("PYTHREAD_SOCKET", saved_env, 1);
    free(saved_env);
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/ptbasicXXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    char p[128];

    (void)state;
    snprintf(p, sizeof(p), "%s/stale.sock", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return 0;
}

static void test_no_daemon_is_a_clear_error(void **state)
{
    char path[128], want[384];
    pt_client *c = (pt_client *)&c;

    (void)state;
    snprintf(path, sizeof(path), "%s/none.sock", tmpdir);
    assert_int_equal(pt_client_open(&c, path), PT_ECONNECT);
    assert_null(c);
    snprintf(want, sizeof(want),
             "cannot connect to pythreadd at %s: no socket there; is the daemon running? "
             "start it (pythreadd, or systemctl start pythreadd.socket), or set "
             "PYTHREAD_SOCKET to its socket",
             path);
    assert_string_equal(pt_last_error_message(), want);

    /* The default path comes from PYTHREAD_SOCKET. */
    setenv("PYTHREAD_SOCKET", path, 1);
    assert_int_equal(pt_client_open(&c, NULL), PT_ECONNECT);
    assert_string_equal(pt_last_error_message(), want);
    unsetenv("PYTHREAD_SOCKET");
}

static void test_stale_socket_is_refused(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    pt_client *c;
    int fd;

    (void)state;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stale.sock", tmpdir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd); /* a socket file nobody listens on */
    assert_int_equal(pt_client_open(&c, sa.sun_path), PT_ECONNECT);
    assert_non_null(strstr(pt_last_error_message(), "nothing listens on that socket"));
}

/* A socket that takes connections with nobody answering (a socket unit
 * whose service did not start) fails the open after the connect timeout,
 * with a message saying so, instead of hanging it. */
static void test_silent_socket_times_out(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timespec t0, t1;
    pt_client *c = NULL;
    double took;
    int fd;

    (void)state;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/silent.sock", tmpdir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0); /* never accepted */
    setenv("PYTHREAD_CONNECT_TIMEOUT", "0.2", 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pt_client_open(&c, sa.sun_path), PT_ECONNECT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsetenv("PYTHREAD_CONNECT_TIMEOUT");
    assert_null(c);
    assert_non_null(strstr(pt_last_error_message(), "did not answer the hello within 0.2 s"));
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.19);
    assert_true(took < 5.0);
    close(fd);
    unlink(sa.sun_path);
}

/* A daemon that does not accept (stopped, with its listen backlog full)
 * fails the open after the connect timeout too. */
static void test_full_backlog_times_out(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    pt_client *c = NULL;
    int fd, queued;

    (void)state;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/full.sock", tmpdir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 0), 0); /* room for one connection, never accepted */
    queued = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(queued, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("PYTHREAD_CONNECT_TIMEOUT", "0.2", 1);
    assert_int_equal(pt_client_open(&c, sa.sun_path), PT_ECONNECT);
    unsetenv("PYTHREAD_CONNECT_TIMEOUT");
    assert_null(c);
    assert_non_null(strstr(pt_last_error_message(), "did not accept the connection within 0.2 s"));
    close(queued);
    close(fd);
    unlink(sa.sun_path);
}

static void test_bad_arguments(void **state)
{
    char longpath[200];
    pt_client *c;

    (void)state;
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(pt_client_open(&c, longpath), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "longer than 107 bytes"));
    assert_int_equal(pt_client_open(&c, ""), PT_EINVAL);
    assert_int_equal(pt_client_open(NULL, "/x"), PT_EINVAL);
    pt_client_close(NULL);

    assert_int_equal(pt_lock_open(NULL, "x", 0, 0, (pt_lock **)&c), PT_EINVAL);
    assert_int_equal(pt_lock_acquire(NULL, 1, PT_FOREVER), PT_EINVAL);
    assert_non_null(strstr(pt_last_error_message(), "pt_lock_acquire: the handle is NULL"));
    assert_int_equal(pt_lock_release(NULL), PT_EINVAL);
    assert_int_equal(pt_lock_locked(NULL), PT_EINVAL);
    assert_int_equal(pt_lock_close(NULL), 0);
    assert_null(pt_lock_as_object(NULL));
    assert_int_equal(pt_rlock_acquire(NULL, 1, PT_FOREVER), PT_EINVAL);
    assert_int_equal(pt_rlock_is_owned(NULL), PT_EINVAL);
    assert_int_equal(pt_condition_wait(NULL, 1.0), PT_EINVAL);
    assert_int_equal(pt_condition_wait_for(NULL, NULL, NULL, 1.0), PT_EINVAL);
    assert_int_equal(pt_condition_notify(NULL, 1), PT_EINVAL);
    assert_int_equal(pt_semaphore_release(NULL, 1), PT_EINVAL);
    assert_int_equal(pt_semaphore_value(NULL, NULL), PT_EINVAL);
    assert_int_equal(pt_event_wait(NULL, 1.0), PT_EINVAL);
    assert_int_equal(pt_event_is_set(NULL), PT_EINVAL);
    assert_int_equal(pt_barrier_wait(NULL, 1.0), PT_EINVAL);
    assert_int_equal(pt_barrier_parties(NULL), PT_EINVAL);
    assert_int_equal(pt_barrier_broken(NULL), PT_EINVAL);
    assert_int_equal(pt_unlink(NULL, "x"), PT_EINVAL);
}

static void *other_thread(void *arg)
{
    *(int *)arg = pt_last_error_message()[0] == '\0';
    return NULL;
}

/* The message belongs to the thread that failed. */
static void test_last_error_is_per_thread(void **state)
{
    char buf[128];
    pthread_t t;
    int empty = 0;

    (void)state;
    assert_int_equal(pt_lock_acquire(NULL, 1, PT_FOREVER), PT_EINVAL);
    snprintf(buf, sizeof(buf), "%s", pt_last_error_message());
    assert_true(buf[0] != '\0');
    pthread_create(&t, NULL, other_thread, &empty);
    pthread_join(t, NULL);
    assert_true(empty);
    assert_string_equal(pt_last_error_message(), buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_socket_path_rule),
        cmocka_unit_test(test_socket_path_order),
        cmocka_unit_test(test_no_daemon_is_a_clear_error),
        cmocka_unit_test(test_stale_socket_is_refused),
        cmocka_unit_test(test_silent_socket_times_out),
        cmocka_unit_test(test_full_backlog_times_out),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_last_error_is_per_thread),
    };

    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
