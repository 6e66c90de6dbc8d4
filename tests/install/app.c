/*
 * app.c - a program built against an installed libpythread, the way its
 * users build: it includes <pythread.h> only, opens a session on
 * $PYTHREAD_SOCKET, takes and gives back a lock, and runs one Thread.
 * Exit 0 when everything answered as documented.
 */
#include <pythread.h>
#include <stdio.h>
#include <string.h>

static int thread_ran;

static int target(void *arg)
{
    thread_ran = *(int *)arg;
    return 0;
}

static int fail(const char *what, int r)
{
    fprintf(stderr, "app: %s: %s (%s): %s\n", what, pt_err_name(r), pt_strerror(r),
            pt_last_error_message());
    return 1;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "install.app";
    pt_client *c = NULL;
    pt_lock *l = NULL;
    pt_thread *t = NULL;
    uint64_t token = 0;
    int r, seven = 7;

    if (strcmp(pt_strerror(PT_EBROKEN), "barrier is broken") != 0)
        return fail("pt_strerror", PT_EINTERNAL);
    if ((r = pt_client_open(&c, NULL)) < 0)
        return fail("pt_client_open", r);
    if ((r = pt_lock_open(c, name, PT_OPEN_TRANSIENT, 0, &l)) < 0)
        return fail("pt_lock_open", r);
    if ((r = pt_lock_acquire_fenced(l, 1, 5.0, &token)) != 1)
        return fail("pt_lock_acquire_fenced", r < 0 ? r : PT_EINTERNAL);
    if ((r = pt_lock_release(l)) < 0)
        return fail("pt_lock_release", r);
    if ((r = pt_lock_release(l)) != PT_ERUNTIME)
        return fail("second pt_lock_release", r < 0 ? r : PT_EINTERNAL);
    pt_lock_close(l);
    pt_client_close(c);

    if ((r = pt_thread_create(&t, target, &seven, "app-thread")) < 0 ||
        (r = pt_thread_start(t)) < 0 || (r = pt_thread_join(t, PT_FOREVER)) < 0)
        return fail("pt_thread", r);
    pt_thread_unref(t);
    if (thread_ran != 7)
        return fail("thread target", PT_EINTERNAL);
    printf("pythread %s: lock %s served, fencing token %llu\n", PT_VERSION_STRING, name,
           (unsigned long long)token);
    return 0;
}
