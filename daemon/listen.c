#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "sockpath.h"

/* How long startup waits for another starting daemon to finish binding in
 * the same directory before going on without the lock. */
#define DIR_LOCK_TRIES    200
#define DIR_LOCK_PAUSE_NS 10000000L

/* Messages name opt, the option that chose the path (--socket, --metrics). */
static int path_to_addr(const char *path, struct sockaddr_un *sun, const char *opt)
{
    size_t len = strlen(path);

    if (len == 0) {
        pt_log(LOG_ERR, "pythreadd: the socket path is empty; give one with %s", opt);
        return -1;
    }
    if (len >= sizeof sun->sun_path) {
        pt_log(LOG_ERR,
               "pythreadd: socket path %s is %zu bytes, longer than the %zu a Unix socket "
               "address holds; choose a shorter path with %s",
               path, len, sizeof sun->sun_path - 1, opt);
        return -1;
    }
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len + 1);
    return 0;
}

/* The directory part of path: "." when there is none. dir holds
 * strlen(path) + 2 bytes. */
static void path_dir(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
}

/*
 * Make sure the socket's directory exists and that no other user can swap
 * the socket inside it or serve one of theirs there before us: a directory
 * found already there must belong to us or root and be writable by nobody
 * else. An explicitly chosen path may sit in a sticky directory (as /tmp
 * is); the default directory (strict) is ours alone and no symbolic link,
 * as clients require too (proto/sockpath.c). A system daemon's directory
 * is 0755 so every user can reach the socket; a per-user one is 0700.
 */
static int dir_prepare(const char *dir, int strict, const char *opt)
{
    uid_t euid = geteuid();
    mode_t mode = euid == 0 ? 0755 : 0700;
    struct stat st;

    if (mkdir(dir, mode) == 0) {
        (void)chmod(dir, mode); /* exactly, whatever the umask */
        pt_log(LOG_INFO, "created directory %s", dir);
    } else if (errno != EEXIST) {
        pt_log(LOG_ERR,
               "pythreadd: cannot create the socket's directory %s: %s; create it or choose "
               "another path with %s",
               dir, strerror(errno), opt);
        return -1;
    }
    if ((strict ? lstat(dir, &st) : stat(dir, &st)) < 0 || !S_ISDIR(st.st_mode)) {
        pt_log(LOG_ERR,
               "pythreadd: %s is not a directory%s; remove it or choose another path with %s", dir,
               strict ? " (a symbolic link is not taken for the default one)" : "", opt);
        return -1;
    }
    if ((st.st_uid != euid && st.st_uid != 0) ||
        ((st.st_mode & (S_IWGRP | S_IWOTH)) && (strict || !(st.st_mode & S_ISVTX)))) {
        pt_log(LOG_ERR,
               "pythreadd: refusing the socket directory %s: it belongs to uid %u with mode "
               "%04o, but must belong to uid %u or root and be writable by no one else, or "
               "another user could serve clients in our place; remove it (ask its owner or "
               "root if you cannot) or choose another path with %s",
               dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)euid, opt);
        return -1;
    }
    return 0;
}

/*
 * Two daemons starting at once must not both take a stale socket for theirs
 * (each would unlink and bind, and one would serve an unreachable socket):
 * the probe, unlink and bind run under a lock on the directory. Anyone who
 * can read the directory can take that lock, so it is only waited for a
 * bounded time. Returns the directory fd holding the lock, or -1.
 */
static int dir_lock(const char *dir)
{
    struct timespec pause = {0, DIR_LOCK_PAUSE_NS};
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    for (int i = 0; i < DIR_LOCK_TRIES; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        nanosleep(&pause, NULL);
    }
    pt_log(LOG_NOTICE, "directory %s stays locked by another process; binding without the lock",
           dir);
    close(fd);
    return -1;
}

/* Is a daemon serving the socket at sun? 1 yes, 0 no (stale file), -1 cannot
 * tell (errno set). A full backlog (EAGAIN) still means someone listens. */
static int socket_probe(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int live, err;

    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0)
        live = 1;
    else if (errno == EAGAIN || errno == EINPROGRESS)
        live = 1;
    else if (errno == ECONNREFUSED)
        live = 0;
    else
        live = -1;
    err = errno;
    close(fd);
    errno = err;
    return live;
}

/* Clear the way for bind: nothing there, or a stale socket removed. */
static int path_clear(const char *path, const struct sockaddr_un *sun, const char *opt)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        pt_log(LOG_ERR, "pythreadd: cannot inspect %s: %s; choose another path with %s", path,
               strerror(errno), opt);
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        pt_log(LOG_ERR,
               "pythreadd: %s exists and is not a socket; remove it or choose another path with "
               "%s",
               path, opt);
        return -1;
    }
    switch (socket_probe(sun)) {
    case 1:
        pt_log(LOG_ERR,
               "pythreadd: another daemon is serving %s; stop it or choose another path with %s",
               path, opt);
        return -1;
    case 0:
        if (unlink(path) < 0 && errno != ENOENT) {
            pt_log(LOG_ERR,
                   "pythreadd: cannot remove the stale socket %s: %s; remove it or choose "
                   "another path with %s",
                   path, strerror(errno), opt);
            return -1;
        }
        pt_log(LOG_NOTICE, "removed the stale socket %s left by a daemon that is gone", path);
        return 0;
    default:
        pt_log(LOG_ERR,
               "pythreadd: cannot tell whether a daemon serves %s: %s; remove it or choose "
               "another path with %s",
               path, strerror(errno), opt);
        return -1;
    }
}

/* Kept apart: inlined, GCC 12 under -fsanitize=undefined invents a NULL
 * path here and -Wformat-overflow fails the build. */
static __attribute__((noinline)) void bind_fail(const char *path, const char *why)
{
    pt_log(LOG_ERR, "pythreadd: cannot listen on %s: %s", path, why);
    unlink(path);
}

/* socket, bind, chmod, listen; remembers the file so exit removes it. */
static int bind_listen(const char *path, const struct sockaddr_un *sun, const char *opt,
                       uint32_t mode, pt_bound *bound)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat st;

    if (fd < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot create a socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)sun, sizeof *sun) < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot bind %s: %s; choose another path with %s", path,
               strerror(errno), opt);
        close(fd);
        return -1;
    }
    if (chmod(sun->sun_path, mode) < 0 || listen(fd, SOMAXCONN) < 0 ||
        lstat(sun->sun_path, &st) < 0) {
        bind_fail(sun->sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    memcpy(bound->path, sun->sun_path, sizeof bound->path);
    bound->dev = st.st_dev;
    bound->ino = st.st_ino;
    return fd;
}

int pt_listen_unix(const char *path, const char *opt, uint32_t mode, pt_bound *bound)
{
    struct sockaddr_un sun;
    char dir[sizeof sun.sun_path + 2];
    int lock, fd = -1;

    if (path_to_addr(path, &sun, opt) < 0)
        return -1;
    path_dir(path, dir);
    if (dir_prepare(dir, pt_sockpath_is_default(path), opt) < 0)
        return -1;
    lock = dir_lock(dir);
    if (path_clear(path, &sun, opt) == 0)
        fd = bind_listen(path, &sun, opt, mode, bound);
    if (lock >= 0)
        close(lock); /* releases the lock */
    return fd;
}

void pt_bound_unlink(pt_bound *b)
{
    struct stat st;

    if (!b->path[0])
        return;
    /* Only the file we bound: a successor may have replaced it already. */
    if (lstat(b->path, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino)
        unlink(b->path);
    b->path[0] = '\0';
}

int pt_listen_bind(pt_daemon *d, const char *path)
{
    /* --socket-mode (default: every user may connect; each object carries
     * its own permissions). */
    return pt_listen_unix(path, "--socket", d->socket_mode, &d->bound);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pt_listen_resume(arg);
}

/* The descriptor kept in reserve: without one, a daemon at its open file
 * limit cannot even accept a connection to say so. -1 if none can be had. */
static int spare_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Turn away one connection accepted on the reserve descriptor: one error
 * frame with id 0 (its hello may not have arrived yet), written at once
 * into the empty socket buffer, then close. */
static void refuse_nofile(pt_daemon *d, int fd)
{
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;
    uint8_t frame[512];
    struct rlimit rl;
    struct ucred cred = {0};
    socklen_t len = sizeof cred;
    char msg[320];

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        rl.rlim_cur = 0;
    (void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
    d->refused[PT_DLIMIT_OPEN_FILES]++;
    snprintf(msg, sizeof msg,
             "pythreadd has no file descriptor left for a new session: its open file limit is "
             "%llu and %u sessions are open; close unused clients, or raise the daemon's limit "
             "(LimitNOFILE= in its unit, ulimit -n)",
             (unsigned long long)rl.rlim_cur, d->nconns);
    r.has_status = 1;
    r.status = PT_ELIMIT;
    r.message = msg;
    if (pt_wire_response_frame_bound(&r) <= sizeof frame) {
        size_t n = pt_wire_response_frame_pack(&r, frame);

        (void)!write(fd, frame, n);
    }
    close(fd);
    pt_log_peer(cred.uid, LOG_WARNING,
                "connection from pid %d refused: out of file descriptors (limit %llu)",
                (int)cred.pid, (unsigned long long)rl.rlim_cur);
}

/*
 * At the open file limit: close the reserve descriptor, accept the waiting
 * connection on it, answer PT_ELIMIT and close, take the reserve back; for
 * every connection waiting, up to a bound per callback. Returns 0 when the
 * backlog is empty, -1 when the reserve cannot be had (then the caller
 * pauses accepting).
 */
static int accept_refuse_all(pt_daemon *d, struct evconnlistener *l)
{
    int lfd = (int)evconnlistener_get_fd(l);

    for (int i = 0; i < PT_DAEMON_ACCEPT_REFUSE_MAX; i++) {
        int fd, err;

        if (d->spare_fd < 0)
            return -1;
        close(d->spare_fd);
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        err = errno;
        if (fd >= 0)
            refuse_nofile(d, fd);
        d->spare_fd = spare_open();
        if (fd < 0)
            return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
    }
    return 0;
}

/* Out of file descriptors (or memory): at the open file limit, waiting
 * clients are refused on the reserve descriptor. Else libevent would call
 * us again at once for the same pending connection, so stop accepting for
 * a moment; a closing session or a short timer starts it again. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    pt_daemon *d = arg;
    struct timeval retry = {0, PT_DAEMON_ACCEPT_RETRY_MSEC * 1000};
    int err = EVUTIL_SOCKET_ERROR();

    if (d->accept_paused)
        return;
    if ((err == EMFILE || err == ENFILE) && accept_refuse_all(d, l) == 0)
        return;
    pt_log(LOG_WARNING,
           "cannot accept a connection: %s; pausing new connections for %d ms (raise the limit "
           "on open files if this repeats)",
           strerror(err), PT_DAEMON_ACCEPT_RETRY_MSEC);
    evconnlistener_disable(l);
    d->accept_paused = 1;
    if (event_base_once(d->base, -1, EV_TIMEOUT, accept_retry_cb, d, &retry) < 0)
        pt_listen_resume(d);
}

void pt_listen_resume(pt_daemon *d)
{
    if (!d->accept_paused || !d->listener)
        return;
    d->accept_paused = 0;
    evconnlistener_enable(d->listener);
}

/* Sessions the open file limit leaves room for, with the descriptors open
 * now (the reserve is the highest) and a few for the daemon's own use. The
 * default --max-sessions comes down to that quietly; a number the operator
 * chose is kept and warned about, since it asks for what cannot be had. */
static void nofile_check(pt_daemon *d)
{
    struct rlimit rl;
    unsigned long long room, used = d->spare_fd >= 0 ? (unsigned long long)d->spare_fd + 1 : 0;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    room = rl.rlim_cur > used + PT_DAEMON_FD_SLACK ? rl.rlim_cur - used - PT_DAEMON_FD_SLACK : 0;
    if (d->max_sessions <= room)
        return;
    if (!d->max_sessions_chosen && room > 0) {
        d->max_sessions = (uint32_t)room;
        pt_log(LOG_INFO,
               "pythreadd: serving at most %llu sessions, what the open file limit of %llu "
               "leaves room for (raise LimitNOFILE= or ulimit -Hn for more)",
               room, (unsigned long long)rl.rlim_cur);
        return;
    }
    pt_log(
        LOG_WARNING,
        "pythreadd: --max-sessions is %u, but the open file limit of %llu leaves room for "
        "about %llu sessions; clients beyond that are refused with a limit error. Raise the limit "
        "(LimitNOFILE= in the unit, ulimit -Hn) above %llu or lower --max-sessions",
        d->max_sessions, (unsigned long long)rl.rlim_cur, room,
        (unsigned long long)d->max_sessions + used + PT_DAEMON_FD_SLACK);
}

int pt_listen_start(pt_daemon *d, int fd)
{
    d->spare_fd = spare_open();
    if (d->spare_fd < 0)
        pt_log(LOG_WARNING,
               "pythreadd: cannot keep a descriptor in reserve (/dev/null: %s); at the open "
               "file limit, new clients will wait instead of being refused",
               strerror(errno));
    nofile_check(d);
    evutil_make_socket_nonblocking(fd);
    d->listener = evconnlistener_new(d->base, pt_conn_accept, d,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!d->listener) {
        pt_log(LOG_ERR, "pythreadd: cannot serve the listening socket: out of memory");
        return -1;
    }
    evconnlistener_set_error_cb(d->listener, accept_error_cb);
    return 0;
}

void pt_listen_unlink(pt_daemon *d)
{
    pt_bound_unlink(&d->bound);
}
