/*
 * The daemon's life: SIGTERM removes the socket, a second daemon on a live
 * path refuses to start and leaves the first alone, a stale socket file is
 * replaced, and a hello of another protocol version is refused.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int is_socket(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void test_sigterm_removes_socket(void **state)
{
    harness *h = *state;

    assert_true(is_socket(h->sock));
    harness_daemon_stop(h); /* asserts exit status 0 and the socket gone */
    assert_false(is_socket(h->sock));
    h->passed = 1;
}

/* SIGTERM with sessions connected and a waiter parked: the daemon still
 * exits at once, and the waiting process learns its session is lost. */
static int parked_waiter(pt_client *c, int index, void *arg)
{
    pt_lock *l = NULL;
    int rc;

    (void)index;
    (void)arg;
    WCHECK_EQ(pt_lock_open(c, "it.life.parked", 0, 0, &l), 0);
    rc = pt_lock_acquire(l, 1, PT_FOREVER);
    WCHECK_EQ(rc, PT_ESESSION);
    pt_lock_close(l);
    return 0;
}

static void test_sigterm_with_sessions_and_waiters(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pid_t pid;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.life.parked", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    pid = harness_worker(h, parked_waiter, 0, NULL);
    harness_wait_waiters(h, "it.life.parked", PT_KIND_LOCK, 1, HARNESS_DEADLINE);

    harness_daemon_stop(h);
    harness_join(h, &pid, 1, HARNESS_DEADLINE);
    PT_ASSERT_EQ(pt_lock_release(l), PT_ESESSION);
    pt_lock_close(l);
    pt_client_close(c);
    h->passed = 1;
}

static int file_contains(const char *path, const char *needle, char *text, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    text[0] = '\0';
    if (!f)
        return 0;
    n = fread(text, 1, len - 1, f);
    text[n] = '\0';
    fclose(f);
    return strstr(text, needle) != NULL;
}

static void test_second_daemon_on_live_path(void **state)
{
    harness *h = *state;
    char log2[200], text[2048];
    pt_client *c = NULL, *c2 = NULL;
    pt_lock *l = NULL, *l2 = NULL;
    pid_t second;
    int status;

    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.life.first", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);

    snprintf(log2, sizeof log2, "%s/second.log", h->dir);
    second = harness_daemon_spawn(h->sock, log2, NULL);
    harness_adopt(h, second);
    if (harness_wait(h, second, HARNESS_DEADLINE, &status) < 0) {
        harness_kill(h, second);
        fail_msg("a second daemon on the live path %s was still running after %.0f s", h->sock,
                 HARNESS_DEADLINE);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
        fail_msg("a second daemon on the live path ended with wait status 0x%x, want a non-zero "
                 "exit",
                 status);
    if (!file_contains(log2, h->sock, text, sizeof text))
        fail_msg("the second daemon's message does not name the socket path %s; it said: \"%s\"",
                 h->sock, text);

    /* The first keeps its socket, its sessions and its state. */
    assert_true(is_socket(h->sock));
    PT_ASSERT_EQ(pt_lock_locked(l), 1);
    PT_ASSERT_EQ(pt_client_open(&c2, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c2, "it.life.first", 0, 0, &l2), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l2, 0, PT_FOREVER), 0);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l2, 0, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l2), 0);
    PT_ASSERT_EQ(pt_lock_close(l2), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c2);
    pt_client_close(c);
    h->passed = 1;
}

/* A socket file bound and closed without unlink: nobody listens on it. */
static void make_stale_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(strlen(path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("bind %s: %s", path, strerror(errno));
    close(fd);
    assert_true(is_socket(path));
}

static void test_stale_socket_replaced(void **state)
{
    harness *h = *state;
    pt_client *c = NULL;
    pt_lock *l = NULL;

    harness_daemon_stop(h);
    make_stale_socket(h->sock);
    assert_false(harness_daemon_answers(h->sock));

    harness_daemon_start(h); /* fails unless it replaced the file and serves */
    PT_ASSERT_EQ(pt_client_open(&c, NULL), 0);
    PT_ASSERT_EQ(pt_lock_open(c, "it.life.stale", 0, 0, &l), 0);
    PT_ASSERT_EQ(pt_lock_acquire(l, 1, PT_FOREVER), 1);
    PT_ASSERT_EQ(pt_lock_release(l), 0);
    PT_ASSERT_EQ(pt_lock_close(l), 0);
    pt_client_close(c);
    h->passed = 1;
}

static void expect_version_refused(harness *h, uint32_t version)
{
    Pythread__Request req = PYTHREAD__REQUEST__INIT;
    Pythread__HelloArgs hello = PYTHREAD__HELLO_ARGS__INIT;
    Pythread__Response *resp;
    raw_conn rc;

    assert_int_equal(raw_connect(&rc, h->sock), 0);
    req.op = PYTHREAD__OP__OP_HELLO;
    req.hello = &hello;
    hello.has_version = 1;
    hello.version = version;
    hello.client_name = "integration-old-client";
    resp = raw_call(&rc, &req, HARNESS_DEADLINE);
    if (!resp) {
        raw_close(&rc);
        fail_msg("hello with version %u: no response", version);
    }
    if (!resp->has_status || resp->status != PT_EVERSION) {
        int st = resp->has_status ? resp->status : 0;

        raw_close(&rc);
        fail_msg("hello with version %u: status %d (%s), want PT_EVERSION", version, st,
                 pt_err_name(st));
    }
    if (!resp->message || !*resp->message) {
        raw_close(&rc);
        fail_msg("hello with version %u: PT_EVERSION without a message for people", version);
    }
    raw_close(&rc);
}

static void test_hello_wrong_version(void **state)
{
    harness *h = *state;

    expect_version_refused(h, PT_PROTOCOL_VERSION + 1);
    expect_version_refused(h, 0);
    /* The daemon is unharmed. */
    assert_true(harness_daemon_answers(h->sock));
    h->passed = 1;
}

/* Start a daemon expected to refuse; returns what it said. */
static void expect_refusal(harness *h, const char *sock, const char *log, const char *needle,
                           const char *what)
{
    char text[2048];
    pid_t pid = harness_daemon_spawn(sock, log, NULL);
    int status;

    harness_adopt(h, pid);
    if (harness_wait(h, pid, HARNESS_DEADLINE, &status) < 0) {
        harness_kill(h, pid);
        fail_msg("%s: the daemon was still running after %.0f s", what, HARNESS_DEADLINE);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
        fail_msg("%s: the daemon ended with wait status 0x%x, want a non-zero exit", what, status);
    if (!file_contains(log, needle, text, sizeof text))
        fail_msg("%s: the message does not name %s; it said: \"%s\"", what, needle, text);
}

/* A regular file where the socket should be is somebody's data: refused,
 * left alone. */
static void test_regular_file_not_replaced(void **state)
{
    harness *h = *state;
    char path[200], log[200], text[64];
    FILE *f;

    snprintf(path, sizeof path, "%s/data.sock", h->dir);
    snprintf(log, sizeof log, "%s/refused.log", h->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    expect_refusal(h, path, log, path, "a regular file at the socket path");
    assert_true(file_contains(path, "precious", text, sizeof text));
    h->passed = 1;
}

static void test_socket_path_too_long(void **state)
{
    harness *h = *state;
    char path[300], log[200];

    snprintf(log, sizeof log, "%s/refused.log", h->dir);
    snprintf(path, sizeof path, "%s/%0150d.sock", h->dir, 0);
    expect_refusal(h, path, log, "--socket", "a socket path longer than sun_path");
    h->passed = 1;
}

/*
 * Two daemons started at once on one path (free, or with a stale socket
 * file): exactly one serves, the other exits non-zero, and the socket left
 * belongs to the one serving.
 */
static void race_once(harness *h, int stale)
{
    char log2[200];
    pid_t pid[2], loser = 0, winner = 0;
    double deadline = harness_now() + HARNESS_DEADLINE;
    int status = 0;

    if (stale)
        make_stale_socket(h->sock);
    snprintf(log2, sizeof log2, "%s/race.log", h->dir);
    pid[0] = harness_daemon_spawn(h->sock, h->log, NULL);
    pid[1] = harness_daemon_spawn(h->sock, log2, NULL);
    harness_adopt(h, pid[0]);
    harness_adopt(h, pid[1]);
    while (!loser) {
        for (int i = 0; i < 2 && !loser; i++) {
            if (harness_wait(h, pid[i], 0, &status) == 0) {
                loser = pid[i];
                winner = pid[1 - i];
            }
        }
        if (!loser && harness_now() > deadline) {
            harness_show_log(h->log);
            harness_show_log(log2);
            fail_msg("two daemons started at once on %s%s both still run after %.0f s", h->sock,
                     stale ? " (stale socket)" : "", HARNESS_DEADLINE);
        }
        if (!loser)
            harness_tick();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0) {
        harness_show_log(h->log);
        harness_show_log(log2);
        fail_msg("of two daemons started at once, one ended with wait status 0x%x, want a "
                 "non-zero exit",
                 status);
    }
    h->daemon = winner;
    if (!harness_daemon_answers(h->sock)) {
        harness_show_log(h->log);
        harness_show_log(log2);
        fail_msg("of two daemons started at once%s, the one left does not answer on %s",
                 stale ? " on a stale socket" : "", h->sock);
    }
    harness_daemon_stop(h);
    unlink(log2);
}

static void test_two_daemons_at_once(void **state)
{
    harness *h = *state;

    harness_daemon_stop(h);
    for (int i = 0; i < 20; i++)
        race_once(h, i % 2);
    h->passed = 1;
}

#define LIFE_TEST(fn) cmocka_unit_test_setup_teardown(fn, harness_setup, harness_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LIFE_TEST(test_sigterm_removes_socket),
        LIFE_TEST(test_sigterm_with_sessions_and_waiters),
        LIFE_TEST(test_second_daemon_on_live_path),
        LIFE_TEST(test_stale_socket_replaced),
        LIFE_TEST(test_hello_wrong_version),
        LIFE_TEST(test_regular_file_not_replaced),
        LIFE_TEST(test_socket_path_too_long),
        LIFE_TEST(test_two_daemons_at_once),
    };

    return cmocka_run_group_tests_name("integration: lifecycle", tests, NULL, NULL);
}
