/*
 * thread_exit.c - what happens at process exit, seen from the output of
 * thread_exit_helper run as a child: the join of non-daemon threads, the
 * daemon threads not waited for, pt_thread_exit in the main thread, exit()
 * from a thread, and the default excepthook's words on stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

#ifndef PT_THREAD_EXIT_HELPER
#error "PT_THREAD_EXIT_HELPER must name the helper program"
#endif

struct run {
    char out[4096];
    char err[4096];
    size_t nout, nerr;
    int status;
};

/* Read what is there from fd into buf; -1 at end of file. */
static int drain(int fd, char *buf, size_t *n, size_t cap)
{
    char scratch[512];
    ssize_t got = read(fd, scratch, sizeof(scratch));

    if (got <= 0)
        return got == 0 || errno != EINTR ? -1 : 0;
    for (ssize_t i = 0; i < got && *n + 1 < cap; i++)
        buf[(*n)++] = scratch[i];
    buf[*n] = '\0';
    return 0;
}

/* Run the helper in mode and collect its stdout, stderr and status; kill it
 * if it outlives TU_PATIENCE. Returns 0, or -1 if it had to be killed. */
static int run_helper(const char *mode, struct run *r)
{
    int out[2], err[2], killed = 0;
    double end = tu_now() + TU_PATIENCE;
    struct pollfd p[2];
    char *bufs[2] = {r->out, r->err};
    size_t *lens[2] = {&r->nout, &r->nerr};
    pid_t pid;

    memset(r, 0, sizeof(*r));
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        execl(PT_THREAD_EXIT_HELPER, PT_THREAD_EXIT_HELPER, mode, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    p[0] = (struct pollfd){out[0], POLLIN, 0};
    p[1] = (struct pollfd){err[0], POLLIN, 0};
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        if (tu_now() > end) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        if (poll(p, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && p[i].revents != 0 &&
                drain(p[i].fd, bufs[i], lens[i], sizeof(r->out)) < 0) {
                close(p[i].fd);
                p[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (p[i].fd >= 0)
            close(p[i].fd);
    }
    if (pid < 0 || waitpid(pid, &r->status, 0) != pid)
        return -1;
    return killed ? -1 : 0;
}

/* Position of line in text, or -1. */
static long line_at(const char *text, const char *line)
{
    const char *p = strstr(text, line);

    return p ? p - text : -1;
}

/* After main returns, the non-daemon threads finish before the process
 * ends (including one started meanwhile and a joiner of the main thread),
 * the daemon thread does not, and the exit-time join runs before atexit
 * handlers registered earlier than the first start. */
static void test_shutdown_joins_non_daemon(void **state)
{
    struct run r;
    long main_at, worker_at, late_at, joined_at, atexit_at;

    (void)state;
    assert_int_equal(run_helper("shutdown", &r), 0);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    main_at = line_at(r.out, "main returning\n");
    worker_at = line_at(r.out, "worker done\n");
    late_at = line_at(r.out, "late worker done\n");
    joined_at = line_at(r.out, "main joined\n");
    atexit_at = line_at(r.out, "atexit handler\n");
    assert_int_equal(main_at, 0);
    assert_true(worker_at > main_at);
    assert_true(late_at > worker_at);
    assert_true(joined_at > main_at);
    assert_true(atexit_at > late_at);
    assert_true(atexit_at > joined_at);
    assert_int_equal(line_at(r.out, "daemon done"), -1);
    assert_int_equal(r.nerr, 0);
}

static void test_daemon_not_waited_for(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(run_helper("daemon", &r), 0);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    assert_string_equal(r.out, "main returning\n");
    assert_int_equal(r.nerr, 0);
}

static void test_default_excepthook_output(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(run_helper("excepthook", &r), 0);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    assert_string_equal(r.out, "main returning\n");
    assert_string_equal(r.err, "Exception in thread Thread-1:\n"
                               "target failed with status 3\n"
                               "Exception in thread job:\n"
                               "target failed with status -2 (PT_ERUNTIME: operation not "
                               "permitted in this state)\n"
                               "Exception ignored in thread started by pt_start_new_thread:\n"
                               "target failed with status 4\n");
}

/* pt_thread_exit in the main thread is SystemExit there: status 0, after
 * the non-daemon threads are joined. */
static void test_exit_in_main(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(run_helper("exit_main", &r), 0);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    assert_string_equal(r.out, "main exiting\nworker done\nlate worker done\n");
    assert_int_equal(r.nerr, 0);
}

/* exit() called by a non-daemon thread joins the other threads but not
 * itself, and keeps its status. */
static void test_exit_in_thread(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(run_helper("exit_in_thread", &r), 0);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 3);
    assert_string_equal(r.out, "calling exit\nother done\n");
    assert_int_equal(r.nerr, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_joins_non_daemon),
        cmocka_unit_test(test_daemon_not_waited_for),
        cmocka_unit_test(test_default_excepthook_output),
        cmocka_unit_test(test_exit_in_main),
        cmocka_unit_test(test_exit_in_thread),
    };

    return tu_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
