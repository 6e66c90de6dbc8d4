/*
 * it_state_full.c - pythreadd --state-dir on a file system that fills up.
 *
 * An append that fails leaves a gap: the daemon goes on serving, appends
 * nothing more (a journal that skipped records would replay into a state
 * that never was) and writes a snapshot of the whole state as soon as
 * there is room. What changed in the gap is then kept: across a kill -9
 * once the snapshot is in place, and across a clean stop, which writes it
 * itself. The state directory is a small tmpfs the test mounts (needs root:
 * skipped, saying so, otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pythread_inspect.h"

static char small[200], filler[240];
static const char *args[6];

static int teardown(void **state)
{
    harness *h = *state;

    /* Detached first, so that a stop that fails cannot leave it mounted;
     * the daemon keeps what it has open there until it ends. */
    if (small[0])
        umount2(small, MNT_DETACH);
    small[0] = '\0';
    if (h->daemon)
        harness_daemon_stop(h);
    return harness_teardown(state);
}

/* A 2 MiB tmpfs for the state, or the test skipped with the reason. */
static void small_fs(harness *h)
{
    snprintf(small, sizeof(small), "%s/state", h->dir);
    snprintf(filler, sizeof(filler), "%s/filler", small);
    assert_int_equal(mkdir(small, 0700), 0);
    if (mount("tmpfs", small, "tmpfs", 0, "size=2m,mode=0700") < 0) {
        print_message("skipped: cannot mount a small tmpfs for the state (%s); needs root\n",
                      strerror(errno));
        small[0] = '\0';
        h->passed = 1;
        skip();
    }
}

static void start(harness *h)
{
    if (h->daemon)
        harness_daemon_stop(h);
    args[0] = "--state-dir";
    args[1] = small;
    args[2] = "--compact-after";
    args[3] = "1024";
    args[4] = NULL;
    h->daemon_args = args;
    harness_daemon_start(h);
    /* served, so the journal is open and allocated before anything fills
     * the file system (the socket is bound before the state is read) */
    {
        pt_inspect_status st;

        harness_status(&st);
    }
}

/* Takes every free block of the file system. */
static void fill(void)
{
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    off_t size = 0;

    assert_true(fd >= 0);
    while (posix_fallocate(fd, size, 4096) == 0)
        size += 4096;
    close(fd);
}

/* Calls until the daemon says an append failed: the journal outgrows what
 * it was allocated, which is then all the room there is. */
static void until_gap(harness *h, int before)
{
    double end = harness_now() + 60;
    pt_client *c = NULL;
    pt_event *ev;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_event_open(c, "full.busy", 0, 0, &ev));
    while (harness_log_count(h->log, "cannot append") == before) {
        if (harness_now() > end)
            fail_msg("no append failed within 60 s on a full file system");
        for (int i = 0; i < 200; i++) {
            PT_ASSERT_OK(pt_event_set(ev));
            PT_ASSERT_OK(pt_event_clear(ev));
        }
    }
    pt_event_close(ev);
    pt_client_close(c);
}

/* Sets (1) or clears (0) the Event full.kept, made if need be. */
static void kept_set(int set)
{
    pt_client *c = NULL;
    pt_event *ev;

    PT_ASSERT_OK(pt_client_open(&c, NULL));
    PT_ASSERT_OK(pt_event_open(c, "full.kept", 0, 0, &ev));
    PT_ASSERT_OK(set ? pt_event_set(ev) : pt_event_clear(ev));
    pt_event_close(ev);
    pt_client_close(c);
}

static int kept_is_set(void)
{
    pt_inspect_detail *d = harness_show("full.kept");
    int set = d->object.is_set;

    pt_inspect_detail_free(d);
    return set;
}

static void test_gap_kept_by_snapshot_then_kill9(void **state)
{
    harness *h = *state;

    small_fs(h);
    start(h);
    fill();
    until_gap(h, 0);
    kept_set(1); /* made and set in the gap */
    assert_int_equal(unlink(filler), 0);
    harness_log_wait(h, "holds the whole state again", 1, 30);
    harness_kill(h, h->daemon);
    h->daemon = 0;
    start(h);
    assert_int_equal(harness_log_count(h->log, "torn"), 0);
    assert_true(kept_is_set());
    h->passed = 1;
}

static void test_gap_kept_by_clean_stop(void **state)
{
    harness *h = *state;

    small_fs(h);
    start(h);
    kept_set(1);
    fill();
    until_gap(h, 0);
    kept_set(0); /* in the gap */
    /* Room again, and a stop at once: the snapshot is the retry's, or the
     * stop's own; either holds the clear. */
    assert_int_equal(unlink(filler), 0);
    harness_daemon_stop(h);
    start(h);
    assert_false(kept_is_set());
    h->passed = 1;
}

/* Still full at the stop: the state on disk is the one before the gap,
 * whole (never one with records skipped), and the log says so. */
static void test_gap_at_stop_still_full(void **state)
{
    harness *h = *state;

    small_fs(h);
    start(h);
    kept_set(1);
    fill();
    until_gap(h, 0);
    kept_set(0);
    harness_daemon_stop(h);
    assert_true(harness_log_count(h->log, "lacks the state changes made since") > 0);
    assert_int_equal(unlink(filler), 0);
    start(h);
    assert_int_equal(harness_log_count(h->log, "torn"), 0);
    assert_true(kept_is_set());
    h->passed = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gap_kept_by_snapshot_then_kill9, harness_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gap_kept_by_clean_stop, harness_setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_at_stop_still_full, harness_setup, teardown),
    };

    return cmocka_run_group_tests_name("integration.state_full", tests, NULL, NULL);
}
