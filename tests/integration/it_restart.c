/*
 * it_restart.c - pythreadd --state-dir against real restarts: kill -9 and
 * SIGTERM keep every named object with its kind, parameters and value, and
 * tokens never go back, even past acquires made through the shared word
 * that the daemon never saw; a torn journal tail is cut off, an unfinished
 * append and the zeros the file is allocated with are not torn; a second
 * daemon on the same directory is refused.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "pythread_inspect.h"

typedef struct restart_env {
    harness *h;
    char journal[200];
    const char *args[4];
} restart_env;

static restart_env env;

/* The daemon again, with --state-dir (and extra, if any). */
static void start_with_state(harness *h, const char *extra)
{
    if (h->daemon)
        harness_daemon_stop(h);
    env.h = h;
    snprintf(env.journal, sizeof(env.journal), "%s/journal", h->dir);
    env.args[0] = "--state-dir";
    env.args[1] = h->dir;
    env.args[2] = extra;
    env.args[3] = NULL;
    h->daemon_args = env.args;
    harness_daemon_start(h);
}

static void daemon_kill9(harness *h)
{
    harness_kill(h, h->daemon);
    h->daemon = 0;
}

static pt_client *client_open(void)
{
    pt_client *c = NULL;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    return c;
}

static void show(pt_client *c, const char *name, pt_inspect_detail **d)
{
    PT_ASSERT_OK(pt_inspect_show(c, name, d));
}

/* The first life's client and handles, left open while the daemon dies. */
static struct {
    pt_client *c;
    pt_lock *l;
    pt_rlock *rl;
    pt_condition *cv;
    pt_semaphore *sem, *bsem;
    pt_event *ev;
    pt_barrier *b, *broken;
} life;

static void first_life_end(void)
{
    pt_lock_close(life.l);
    pt_condition_close(life.cv);
    pt_rlock_close(life.rl);
    pt_semaphore_close(life.sem);
    pt_semaphore_close(life.bsem);
    pt_event_close(life.ev);
    pt_barrier_close(life.b);
    pt_barrier_close(life.broken);
    pt_client_close(life.c);
}

/* What the first life of the daemon leaves: every kind, values moved. */
static uint64_t first_life(void)
{
    pt_client *c = life.c = client_open();
    pt_lock **l = &life.l;
    pt_rlock **rl = &life.rl;
    pt_condition **cv = &life.cv;
    pt_semaphore **sem = &life.sem, **bsem = &life.bsem;
    pt_event **ev = &life.ev;
    pt_barrier **b = &life.b, **broken = &life.broken;
    uint64_t token = 0;

    PT_ASSERT_OK(pt_lock_open(c, "r.lock", 0, 0640, l));
    PT_ASSERT_OK(pt_rlock_open(c, "r.rlock", 0, 0, rl));
    PT_ASSERT_OK(pt_condition_open(c, "r.cond", pt_rlock_as_object(*rl), 0, 0, cv));
    PT_ASSERT_OK(pt_semaphore_open(c, "r.sem", 5, 0, PT_OPEN_NOFAST, 0, sem));
    PT_ASSERT_OK(pt_semaphore_open(c, "r.bsem", 2, 1, 0, 0, bsem));
    PT_ASSERT_OK(pt_event_open(c, "r.event", 0, 0, ev));
    PT_ASSERT_OK(pt_barrier_open(c, "r.barrier", 3, NULL, NULL, 2.5, 0, 0, b));
    PT_ASSERT_OK(pt_barrier_open(c, "r.broken", 2, NULL, NULL, PT_FOREVER, 0, 0, broken));
    /* tokens through the word, which the daemon does not see one by one */
    for (int i = 0; i < 100; i++) {
        PT_ASSERT_EQ(pt_lock_acquire_fenced(*l, 1, -1, &token), 1);
        PT_ASSERT_OK(pt_lock_release(*l));
    }
    PT_ASSERT_EQ(pt_lock_acquire_fenced(*l, 1, -1, &token), 1); /* held at the crash */
    PT_ASSERT_EQ(pt_semaphore_acquire(*sem, 1, -1), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(*sem, 1, -1), 1);
    PT_ASSERT_EQ(pt_semaphore_acquire(*bsem, 1, -1), 1); /* owned: back at the end */
    PT_ASSERT_OK(pt_event_set(*ev));
    PT_ASSERT_OK(pt_barrier_abort(*broken));
    /* left open and alive: the daemon dies under it */
    return token;
}

/* Returns the token of a new acquire, which must pass token. */
static uint64_t check_second_life(uint64_t token)
{
    pt_client *c = client_open();
    pt_inspect_detail *d = NULL;
    pt_inspect_status st;
    pt_lock *l;
    uint64_t after;

    PT_ASSERT_OK(pt_inspect_status_get(c, &st));
    assert_string_equal(st.state_dir, env.h->dir);
    assert_int_equal(st.restored_objects, 8);
    assert_true(st.replayed_inputs > 0);
    assert_int_equal(st.torn_bytes, 0);
    show(c, "r.lock", &d);
    assert_int_equal(d->object.kind, PT_KIND_LOCK);
    assert_int_equal(d->object.mode, 0640);
    assert_int_equal(d->object.locked, 0); /* its holder's session ended with the daemon */
    pt_inspect_detail_free(d);
    show(c, "r.rlock", &d);
    assert_int_equal(d->object.kind, PT_KIND_RLOCK);
    pt_inspect_detail_free(d);
    show(c, "r.cond", &d);
    assert_int_equal(d->object.kind, PT_KIND_CONDITION);
    assert_string_equal(d->object.cond_lock, "r.rlock");
    pt_inspect_detail_free(d);
    show(c, "r.sem", &d);
    assert_int_equal(d->object.value, 3);
    assert_int_equal(d->object.initial, 5);
    pt_inspect_detail_free(d);
    show(c, "r.bsem", &d);
    assert_int_equal(d->object.kind, PT_KIND_BOUNDED_SEMAPHORE);
    assert_int_equal(d->object.value, 2);
    pt_inspect_detail_free(d);
    show(c, "r.event", &d);
    assert_int_equal(d->object.is_set, 1);
    pt_inspect_detail_free(d);
    show(c, "r.barrier", &d);
    assert_int_equal(d->object.parties, 3);
    assert_true(d->object.timeout == 2.5);
    assert_int_equal(d->object.broken, 0);
    pt_inspect_detail_free(d);
    show(c, "r.broken", &d);
    assert_int_equal(d->object.broken, 1);
    pt_inspect_detail_free(d);
    PT_ASSERT_OK(pt_lock_open(c, "r.lock", PT_OPEN_EXISTING, 0, &l));
    PT_ASSERT_EQ(pt_lock_acquire_fenced(l, 0, -1, &after), 1);
    assert_true(after > token);
    PT_ASSERT_OK(pt_lock_release(l));
    pt_lock_close(l);
    pt_client_close(c);
    return after;
}

static void test_kill9_keeps_objects_values_tokens(void **state)
{
    harness *h = *state;
    uint64_t token;

    start_with_state(h, NULL);
    token = first_life();
    daemon_kill9(h);
    start_with_state(h, NULL);
    first_life_end(); /* its session is gone: the calls fail, the handles free */
    token = check_second_life(token);
    /* and again: the restart itself is in the journal */
    daemon_kill9(h);
    start_with_state(h, "--sync");
    check_second_life(token);
    h->passed = 1;
}

/* A clean stop reads every word first: permits taken through it by a
 * session still alive are not lost. */
static void test_sigterm_keeps_what_the_words_hold(void **state)
{
    harness *h = *state;
    pt_client *c;
    pt_semaphore *sem;
    pt_inspect_detail *d = NULL;

    start_with_state(h, NULL);
    c = client_open();
    PT_ASSERT_OK(pt_semaphore_open(c, "r.fast.sem", 10, 0, 0, 0, &sem));
    for (int i = 0; i < 4; i++)
        PT_ASSERT_EQ(pt_semaphore_acquire(sem, 0, -1), 1);
    start_with_state(h, NULL); /* SIGTERM, then start */
    pt_client_close(c);
    c = client_open();
    show(c, "r.fast.sem", &d);
    assert_int_equal(d->object.value, 6);
    pt_inspect_detail_free(d);
    pt_client_close(c);
    h->passed = 1;
}

/* A crash in the middle of an append leaves a torn record: it is cut off
 * and the state before it stands. */
static void test_torn_tail_is_cut(void **state)
{
    static const unsigned char torn[] = {0, 0, 0, 40, 8, 4, 16};
    harness *h = *state;
    pt_inspect_detail *d = NULL;
    pt_client *c;
    pt_event *ev;
    int fd;

    start_with_state(h, NULL);
    c = client_open();
    PT_ASSERT_OK(pt_event_open(c, "r.torn", 0, 0, &ev));
    PT_ASSERT_OK(pt_event_set(ev));
    pt_client_close(c);
    harness_daemon_stop(h);
    fd = open(env.journal, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, torn, sizeof(torn)), (ssize_t)sizeof(torn));
    close(fd);
    start_with_state(h, NULL);
    assert_true(harness_log_count(h->log, "torn record") > 0);
    c = client_open();
    {
        pt_inspect_status st;

        PT_ASSERT_OK(pt_inspect_status_get(c, &st));
        assert_int_equal(st.torn_bytes, sizeof(torn));
        assert_int_equal(st.restored_objects, 1);
    }
    show(c, "r.torn", &d);
    assert_int_equal(d->object.is_set, 1);
    pt_inspect_detail_free(d);
    pt_client_close(c);
    h->passed = 1;
}

static uint64_t journal_bytes(pt_client *c)
{
    pt_inspect_status st;

    PT_ASSERT_OK(pt_inspect_status_get(c, &st));
    return st.torn_bytes == 0 ? st.journal_bytes : 0;
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static int records_fill(const char *path)
{
    unsigned char head[4];
    off_t size = file_size(path), at = 0;
    int fd = open(path, O_RDONLY);
    uint32_t n = 1;

    assert_true(fd >= 0);
    while (at < size && n != 0 && pread(fd, head, sizeof(head), at) == (ssize_t)sizeof(head)) {
        n = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
        at += (off_t)sizeof(head) + n;
    }
    close(fd);
    return n != 0 && at == size;
}

static int event_is_set(const char *name)
{
    pt_client *c = client_open();
    pt_inspect_detail *d = NULL;
    int set;

    show(c, name, &d);
    set = d->object.is_set;
    pt_inspect_detail_free(d);
    pt_client_close(c);
    return set;
}

/* The file is allocated ahead of its records and reads as zeros past
 * them; a crash in the middle of an append leaves that batch's records
 * without its first length. Neither is a torn record: the next start
 * takes the records before, cuts the rest and appends right after them. */
static void test_unfinished_append_is_not_torn(void **state)
{
    static const unsigned char body[] = {8, 4, 16, 1, 0xab, 0xcd, 0xef, 0x12, 0x34};
    unsigned char zeros[4];
    harness *h = *state;
    pt_client *c;
    pt_event *ev;
    uint64_t end;
    int fd;

    start_with_state(h, NULL);
    c = client_open();
    PT_ASSERT_OK(pt_event_open(c, "r.unfinished", 0, 0, &ev));
    PT_ASSERT_OK(pt_event_set(ev));
    end = journal_bytes(c);
    assert_true(end > 0);
    daemon_kill9(h);
    pt_event_close(ev);
    pt_client_close(c);

    assert_true(file_size(env.journal) >= (off_t)(end + sizeof(zeros)));
    fd = open(env.journal, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, zeros, sizeof(zeros), (off_t)end), (ssize_t)sizeof(zeros));
    assert_memory_equal(zeros, "\0\0\0\0", sizeof(zeros));
    /* a batch copied but for its first length */
    assert_int_equal(pwrite(fd, body, sizeof(body), (off_t)end + 4), (ssize_t)sizeof(body));
    close(fd);

    start_with_state(h, NULL);
    assert_int_equal(harness_log_count(h->log, "torn"), 0);
    assert_int_equal(harness_log_count(h->log, "not a journal record"), 0);
    assert_true(event_is_set("r.unfinished"));
    c = client_open();
    assert_true(journal_bytes(c) >= end);
    PT_ASSERT_OK(pt_event_open(c, "r.unfinished", 0, 0, &ev));
    PT_ASSERT_OK(pt_event_clear(ev));
    pt_event_close(ev);
    pt_client_close(c);

    /* what came after follows the records: the clear is read again */
    daemon_kill9(h);
    start_with_state(h, NULL);
    assert_int_equal(harness_log_count(h->log, "torn"), 0);
    assert_false(event_is_set("r.unfinished"));

    /* a clean stop leaves the records alone in the file: their lengths
     * lead from its start to its end, none of them zero */
    harness_daemon_stop(h);
    assert_true(records_fill(env.journal));
    h->passed = 1;
}

/* The file is allocated a MiB at a time and mapped: a journal that grows
 * past several allocations (mremap moving the mapping) keeps every record,
 * in order, across a kill -9. */
static void test_journal_grows_past_its_allocation(void **state)
{
    harness *h = *state;
    double end;
    pt_client *c;
    pt_event *ev;
    pt_inspect_status st;
    int i = 0;

    start_with_state(h, "--compact-after=1073741824");
    c = client_open();
    PT_ASSERT_OK(pt_event_open(c, "r.grow", 0, 0, &ev));
    end = harness_now() + 60;
    for (harness_status(&st); st.journal_bytes < 5u << 19; harness_status(&st)) {
        if (harness_now() > end)
            fail_msg("the journal has %llu bytes after 60 s", (unsigned long long)st.journal_bytes);
        for (int k = 0; k < 500; k++, i++)
            PT_ASSERT_OK(i % 2 ? pt_event_clear(ev) : pt_event_set(ev));
    }
    if (i % 2 == 0)
        PT_ASSERT_OK(pt_event_set(ev)); /* it ends set */
    daemon_kill9(h);
    pt_event_close(ev);
    pt_client_close(c);
    start_with_state(h, "--compact-after=1073741824");
    assert_int_equal(harness_log_count(h->log, "torn"), 0);
    assert_true(event_is_set("r.grow")); /* the last record of 2.5 MiB was read */
    h->passed = 1;
}

/* Two daemons may not write one journal. */
static void test_second_daemon_refused(void **state)
{
    harness *h = *state;
    char sock[200], log[200];
    const char *args[] = {"--state-dir", h->dir, NULL};
    pid_t pid;
    int status;

    start_with_state(h, NULL);
    snprintf(sock, sizeof(sock), "%s/second.sock", h->dir);
    snprintf(log, sizeof(log), "%s/second.log", h->dir);
    pid = harness_daemon_spawn(sock, log, args);
    harness_adopt(h, pid);
    assert_int_equal(harness_wait(h, pid, HARNESS_DEADLINE, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_keeps_objects_values_tokens, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_keeps_what_the_words_hold, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_append_is_not_torn, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_journal_grows_past_its_allocation, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_second_daemon_refused, harness_setup,
                                        harness_teardown),
    };

    return cmocka_run_group_tests_name("integration.restart", tests, NULL, NULL);
}
