/*
 * monitor.c - the thread that notices the daemon's end when no caller is
 * reading, so a process that holds a lock and makes no call still takes its
 * session up again in time (resume.c). It runs once the daemon says it keeps
 * sessions, sleeps in poll() on the socket's POLLRDHUP and on a pipe that
 * wakes it (a new socket, or the client closing), and reads the end in as
 * any caller would: it takes the reading role only when nobody holds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client_int.h"

void pt__monitor_wake(pt_client *c)
{
    if (c->monitor_on && c->wake[1] >= 0)
        (void)!write(c->wake[1], "", 1);
}

static void wake_close(pt_client *c)
{
    close(c->wake[0]);
    close(c->wake[1]);
    c->wake[0] = c->wake[1] = -1;
}

/* Sleep, mu dropped, until the socket's far end closes or the monitor is
 * woken. 1 when the end was seen on the socket that is still the
 * session's. */
static int monitor_poll(pt_client *c)
{
    struct pollfd p[2] = {{.fd = c->fd, .events = POLLRDHUP}, {.fd = c->wake[0], .events = POLLIN}};
    uint32_t gen = c->gen;
    char drain[64];

    pthread_mutex_unlock(&c->mu);
    if (poll(p, 2, -1) > 0 && p[1].revents)
        (void)!read(c->wake[0], drain, sizeof(drain));
    pthread_mutex_lock(&c->mu);
    return p[0].revents && p[0].fd == c->fd && gen == c->gen;
}

/*
 * If no caller is reading when the end comes, the monitor reads (the end,
 * after any last answers), which takes the session up again at once; a
 * caller that reads sees the end itself, and the monitor waits for it to
 * give the role up (or for the new session it took up) before it looks
 * again.
 */
static void *monitor_main(void *arg)
{
    pt_client *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->monitor_stop) {
        if (monitor_poll(c) && !c->monitor_stop)
            pt__client_end_take(c);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Started with the first session the daemon would keep; signals stay with
 * the application's threads. */
int pt__monitor_start(pt_client *c)
{
    sigset_t all, old;
    int r;

    if (c->monitor_on)
        return 0;
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        c->wake[0] = c->wake[1] = -1;
        return -1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&c->monitor, NULL, monitor_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        wake_close(c);
        errno = r;
        return -1;
    }
    c->monitor_on = 1;
    return 0;
}

/* The pipe ends its poll(); the broadcast ends a wait for the reading role
 * (pt__client_end_take), so it exits at once either way. */
void pt__monitor_stop(pt_client *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->monitor_on) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->monitor_stop = 1;
    pt__monitor_wake(c);
    pthread_cond_broadcast(&c->reader_cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->monitor, NULL);
    wake_close(c);
    c->monitor_on = 0;
}

void pt__monitor_forget(pt_client *c)
{
    if (!c->monitor_on)
        return;
    wake_close(c);
    c->monitor_on = 0;
}

/* ------------------------------------------------------------------ */
/* The loss descriptor                                                 */
/* ------------------------------------------------------------------ */

void pt__loss_tell(pt_client *c)
{
    uint64_t one = 1;

    if (c->loss_fd >= 0)
        (void)!write(c->loss_fd, &one, sizeof(one));
}

/* The application polls this instead of the socket, whose number the
 * library may close and reuse under it; the monitor takes the end in, so
 * a loss is told while no call is made. */
int pt_client_loss_fd(pt_client *c)
{
    int fd, err = 0;

    if (!c)
        return pt__error(PT_EINVAL, "pt_client_loss_fd: client is NULL; open one first");
    pt__client_enter(c);
    if (c->loss_fd < 0) {
        c->loss_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        err = errno;
        if (c->loss_fd >= 0 && c->loss[0])
            pt__loss_tell(c); /* lost already, not told yet */
    }
    if (c->loss_fd >= 0 && c->fd >= 0 && pt__monitor_start(c) < 0) {
        err = errno;
        close(c->loss_fd);
        c->loss_fd = -1;
    }
    fd = c->loss_fd;
    pthread_mutex_unlock(&c->mu);
    if (fd < 0)
        return pt__error(PT_ENOMEM,
                         "pt_client_loss_fd: cannot make the descriptor or start the thread that "
                         "watches the session: %s",
                         strerror(err));
    return fd;
}
