/*
 * upgrade.c - SIGUSR2: pythreadd --state-dir replaces itself with the
 * program now at its path (a new version after an upgrade), with no loss.
 *
 * The state goes to the journal as at a clean stop (every word read), the
 * listening socket stays open across execve() and is passed as systemd
 * passes one (LISTEN_FDS, the pid is the same), and the connections stay
 * open too, passed after it with a table of the bytes each had in flight
 * (keep.c): the new image goes on with them where the old one stopped. A
 * connection that cannot be kept closes with the old image and its
 * process takes its session up again, as after any restart (resume.c).
 * Clients see a pause.
 *
 * Under systemd (NOTIFY_SOCKET) the manager owns restarts: `systemctl
 * restart pythreadd` does the same, and SIGUSR2 is refused there.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"

/* Set by the new image's environment: the socket path the old one bound,
 * which it removes at its stop as if it had bound it itself. */
#define ENV_BOUND "PYTHREAD_UPGRADE_BOUND"

static char exe[PATH_MAX];
static char **args;

void pt_upgrade_init(char **argv)
{
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    /* the path, not the file: after an upgrade it names the new program */
    exe[n > 0 ? n : 0] = '\0';
    args = argv;
}

/* A socket handed over by the old image is ours to remove at the end. */
void pt_upgrade_adopt(pt_daemon *d, int fd)
{
    const char *path = getenv(ENV_BOUND);
    struct stat st;

    if (path == NULL)
        return;
    if (strlen(path) < sizeof(d->bound.path) && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        snprintf(d->bound.path, sizeof(d->bound.path), "%s", path);
        d->bound.dev = st.st_dev;
        d->bound.ino = st.st_ino;
    }
    (void)fd;
    unsetenv(ENV_BOUND);
}

int pt_upgrade_wanted(pt_daemon *d)
{
    if (getenv("NOTIFY_SOCKET") != NULL) {
        pt_log(LOG_WARNING, "SIGUSR2 ignored: under systemd, upgrade with `systemctl restart "
                            "pythreadd` (sessions are kept the same way)");
        return 0;
    }
    if (d->state == NULL) {
        pt_log(LOG_WARNING, "SIGUSR2 ignored: without --state-dir a new image would start "
                            "empty; stop and start the daemon instead");
        return 0;
    }
    if (!exe[0] || access(exe, X_OK) < 0) {
        pt_log(LOG_ERR, "SIGUSR2 ignored: cannot run %s: %s", exe[0] ? exe : "(unknown program)",
               strerror(errno));
        return 0;
    }
    return 1;
}

/* The listening socket as fd 3, kept open across execve(). */
static int listener_pass(int fd)
{
    char pid[24];

    if (fd != SD_LISTEN_FDS_START && dup2(fd, SD_LISTEN_FDS_START) < 0)
        return -1;
    if (fcntl(SD_LISTEN_FDS_START, F_SETFD, 0) < 0)
        return -1;
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    return setenv("LISTEN_FDS", "1", 1) == 0 && setenv("LISTEN_PID", pid, 1) == 0 &&
                   unsetenv("LISTEN_FDNAMES") == 0
               ? 0
               : -1;
}

void pt_upgrade_exec(pt_daemon *d, int listen_fd)
{
    pt_log(LOG_INFO, "upgrading on SIGUSR2: %s replaces this image; sessions are kept", exe);
    pt_state_close(d);
    if (d->bound.path[0])
        setenv(ENV_BOUND, d->bound.path, 1);
    if (pt_keep_exec_pass(listen_fd) > 0 || listener_pass(listen_fd) == 0)
        execv(exe, args);
    pt_log(LOG_ERR,
           "pythreadd: cannot run %s for the upgrade: %s; stopping (start it again: "
           "the state and the sessions are kept)",
           exe, strerror(errno));
}
