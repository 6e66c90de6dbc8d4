/*
 * thread_exit_helper.c - a program whose output shows what libpythread does
 * at process exit; run by thread_exit with one mode argument:
 *
 *   shutdown        non-daemon threads are joined after main returns (also
 *                   one started during the join, and a joiner of the main
 *                   thread), before older atexit handlers; a daemon is not
 *   daemon          only a daemon thread is left: the process ends anyway
 *   excepthook      the default excepthook's and start_new_thread's output
 *   exit_main       pt_thread_exit() in the main thread: exit(0) after the
 *                   join of non-daemon threads
 *   exit_in_thread  exit(3) in a thread: the others are joined, not itself
 *
 * Lines go to stdout with write(2), so they appear in the order they were
 * written whatever the buffering.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pythread.h"

static void say(const char *line)
{
    (void)!write(STDOUT_FILENO, line, strlen(line));
}

static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};

    nanosleep(&ts, NULL);
}

/* Wait until the main thread stops being alive: that happens only in the
 * exit-time handler. The pause after it gives a process that would not
 * wait for us the time to end, so a missing join shows as a missing line. */
static void wait_for_shutdown(void)
{
    while (pt_thread_is_alive(pt_main_thread()))
        nap(0.001);
    nap(0.2);
}

static int late_worker(void *arg)
{
    (void)arg;
    nap(0.1);
    say("late worker done\n");
    return 0;
}

static int worker(void *arg)
{
    pt_thread *late;

    (void)arg;
    wait_for_shutdown();
    /* a thread started while the process is joining is joined too */
    if (pt_thread_create(&late, late_worker, NULL, NULL) == 0) {
        pt_thread_start(late);
        pt_thread_unref(late);
    }
    say("worker done\n");
    return 0;
}

static int main_joiner(void *arg)
{
    (void)arg;
    if (pt_thread_join(pt_main_thread(), PT_FOREVER) == 0)
        say("main joined\n");
    return 0;
}

static int daemon_forever(void *arg)
{
    (void)arg;
    for (;;)
        nap(60);
    say("daemon done\n");
    return 0;
}

static void say_atexit(void)
{
    say("atexit handler\n");
}

static void start(pt_thread_fn fn, int daemon)
{
    pt_thread *t;

    if (pt_thread_create(&t, fn, NULL, NULL) != 0 || pt_thread_set_daemon(t, daemon) != 0 ||
        pt_thread_start(t) != 0) {
        say("start failed\n");
        exit(2);
    }
    pt_thread_unref(t);
}

static int mode_shutdown(void)
{
    atexit(say_atexit); /* before the first start: runs after the join */
    start(worker, 0);
    start(main_joiner, 0);
    start(daemon_forever, 1);
    say("main returning\n");
    return 0;
}

static int mode_daemon(void)
{
    start(daemon_forever, 1);
    say("main returning\n");
    return 0;
}

static int fail_with(void *arg)
{
    return (int)(intptr_t)arg;
}

static atomic_int untracked_listed;

static int fail_untracked(void *arg)
{
    (void)arg;
    pt_current_thread(); /* a dummy, gone once the report is written */
    atomic_store(&untracked_listed, 1);
    return 4;
}

static int mode_excepthook(void)
{
    pt_thread *t;
    int base = pt_active_count();

    /* the first thread of the process is Thread-1 */
    if (pt_thread_create(&t, fail_with, (void *)(intptr_t)3, NULL) != 0)
        return 2;
    pt_thread_start(t);
    pt_thread_join(t, PT_FOREVER);
    pt_thread_unref(t);
    if (pt_thread_create(&t, fail_with, (void *)(intptr_t)PT_ERUNTIME, "job") != 0)
        return 2;
    pt_thread_start(t);
    pt_thread_join(t, PT_FOREVER);
    pt_thread_unref(t);
    if (pt_start_new_thread(fail_untracked, NULL, NULL) != 0)
        return 2;
    while (!atomic_load(&untracked_listed))
        nap(0.001);
    while (pt_active_count() != base)
        nap(0.001);
    say("main returning\n");
    return 0;
}

static int mode_exit_main(void)
{
    start(worker, 0);
    say("main exiting\n");
    pt_thread_exit();
}

static atomic_int exiting;

static int wait_for_exit_call(void *arg)
{
    (void)arg;
    while (!atomic_load(&exiting))
        nap(0.001);
    nap(0.2);
    say("other done\n");
    return 0;
}

static int call_exit(void *arg)
{
    (void)arg;
    atomic_store(&exiting, 1);
    say("calling exit\n");
    exit(3);
}

static int mode_exit_in_thread(void)
{
    pt_thread *t;

    start(wait_for_exit_call, 0);
    if (pt_thread_create(&t, call_exit, NULL, NULL) != 0 || pt_thread_start(t) != 0)
        return 2;
    pt_thread_join(t, PT_FOREVER);
    say("not reached\n");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } modes[] = {
        {"shutdown", mode_shutdown},
        {"daemon", mode_daemon},
        {"excepthook", mode_excepthook},
        {"exit_main", mode_exit_main},
        {"exit_in_thread", mode_exit_in_thread},
    };

    for (size_t i = 0; argc == 2 && i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(argv[1], modes[i].name) == 0)
            return modes[i].run();
    }
    fprintf(stderr,
            "usage: thread_exit_helper shutdown|daemon|excepthook|exit_main|exit_in_thread\n");
    return 64;
}
