#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pythread.h"
#include "sockpath.h"

#ifndef PT_SERVICE_USER
#define PT_SERVICE_USER "pythread"
#endif

/* Longest getpwnam_r buffer tried (NSS entries can be large). */
#define PW_BUF_MAX (1u << 20)

/* Where the system daemon (pythreadd.socket) listens. $PYTHREAD_SYSTEM_SOCKET
 * moves it for tests, which cannot take over the real one; it gives no one
 * more than PYTHREAD_SOCKET already does, and the peer checks still apply. */
static const char *system_path(void)
{
    const char *env = getenv("PYTHREAD_SYSTEM_SOCKET");

    return env && *env ? env : "/run/pythread/pythreadd.sock";
}

/* This user's own daemon's socket: the runtime directory, else a per-uid
 * directory under /tmp. */
static int user_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (xdg && *xdg)
        return snprintf(buf, len, "%s/pythread/pythreadd.sock", xdg);
    return snprintf(buf, len, "/tmp/pythread-%u/pythreadd.sock", (unsigned)geteuid());
}

/*
 * The i-th path of the rule, with or without $PYTHREAD_SOCKET: the variable
 * alone when set (whoever sets it means that daemon and no other); else the
 * system socket for root (root has no personal daemon); else the user's own
 * socket, then the system one. 0 past the last.
 */
static int rule_path(int i, char *buf, size_t len, int use_env)
{
    const char *env = getenv("PYTHREAD_SOCKET");
    int n;

    if (use_env && env && *env)
        n = i == 0 ? snprintf(buf, len, "%s", env) : 0;
    else if (geteuid() == 0)
        n = i == 0 ? snprintf(buf, len, "%s", system_path()) : 0;
    else if (i == 0)
        n = user_path(buf, len);
    else
        n = i == 1 ? snprintf(buf, len, "%s", system_path()) : 0;
    if (n < 0 || (size_t)n >= len)
        return PT_EINVAL;
    return n;
}

/*
 * The daemon and its clients find each other by the same rule, so it lives
 * in one place. The first path is where pythreadd listens with no --socket;
 * a client with no path of its own tries them in order (pt_client_open).
 */
int pt_default_socket_paths(int i, char *buf, size_t len)
{
    if (i < 0)
        return PT_EINVAL;
    return rule_path(i, buf, len, 1);
}

int pt_default_socket_path(char *buf, size_t len)
{
    return rule_path(0, buf, len, 1);
}

/* Both the user's own socket and the system one are "default": their
 * directories are held to the strict check whoever connects. */
int pt_sockpath_is_default(const char *path)
{
    char def[4096];
    int i, n;

    for (i = 0; (n = rule_path(i, def, sizeof def, 0)) > 0; i++)
        if (strcmp(path, def) == 0)
            return 1;
    return 0;
}

/* ---- whom to trust ------------------------------------------------------- */

/* $PYTHREAD_SERVICE_USER, else the name the build chose. */
static const char *service_name(void)
{
    const char *env = getenv("PYTHREAD_SERVICE_USER");

    return env && *env ? env : PT_SERVICE_USER;
}

/* The service user's uid: a name looked up in the user database, or a
 * number as it is. 0 when known, -1 when there is no such user. */
static int service_uid(uid_t *out)
{
    const char *name = service_name();
    struct passwd pw, *found = NULL;
    size_t cap = 1024;
    char *end, *buf;
    unsigned long n;
    int r;

    errno = 0;
    n = strtoul(name, &end, 10);
    if (*name >= '0' && *name <= '9' && *end == '\0' && errno == 0 && n <= (uid_t)-2) {
        *out = (uid_t)n;
        return 0;
    }
    for (;;) {
        if (!(buf = malloc(cap)))
            return -1;
        r = getpwnam_r(name, &pw, buf, cap, &found);
        if (found)
            *out = pw.pw_uid;
        free(buf);
        if (r != ERANGE || cap >= PW_BUF_MAX)
            break;
        cap *= 2;
    }
    return found ? 0 : -1;
}

/* Root, the caller and the service user may serve us and own the
 * socket's directory. The user database is read only when needed. */
static int uid_trusted(uid_t uid)
{
    uid_t svc;

    if (uid == 0 || uid == geteuid())
        return 1;
    return service_uid(&svc) == 0 && svc == uid;
}

/* "root, you (uid 1000) or the service user pythread (uid 998)" */
static void trusted_words(char *buf, size_t len)
{
    uid_t svc;
    char who[48];

    if (service_uid(&svc) == 0)
        snprintf(who, sizeof who, "uid %u", (unsigned)svc);
    else
        snprintf(who, sizeof who, "no such user here");
    snprintf(buf, len, "root, you (uid %u) or the service user %.64s (%s)", (unsigned)geteuid(),
             service_name(), who);
}

/* ---- the checks ---------------------------------------------------------- */

/* The directory part of path; "." when there is none. */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

int pt_sockpath_dir_check(const char *path, char *msg, size_t len)
{
    int strict = pt_sockpath_is_default(path);
    char dir[4096], trusted[160];
    struct stat st;
    int others_write;

    dir_of(path, dir, sizeof dir);
    if ((strict ? lstat(dir, &st) : stat(dir, &st)) < 0)
        return 0;
    if (strict && S_ISLNK(st.st_mode)) {
        snprintf(msg, len,
                 "refusing the socket directory %s: it is a symbolic link, and pythreadd's "
                 "default directory must be a real directory of yours; remove it (ask its owner "
                 "or root if you cannot) and start pythreadd again, or set PYTHREAD_SOCKET",
                 dir);
        return PT_EPERM;
    }
    /* A sticky directory (/tmp) keeps others from replacing our file, but
     * the default directory is ours alone. */
    others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) && (strict || !(st.st_mode & S_ISVTX));
    if (uid_trusted(st.st_uid) && !others_write)
        return 0;
    trusted_words(trusted, sizeof trusted);
    snprintf(msg, len,
             "refusing the socket directory %s: it belongs to uid %u with mode %04o, but must "
             "belong to %s and be writable by no one else, or another user can put a daemon of "
             "theirs in pythreadd's place; remove it (ask its owner or root if you cannot) and "
             "start pythreadd again, or choose another path with PYTHREAD_SOCKET",
             dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), trusted);
    return PT_EPERM;
}

int pt_sockpath_dir_foreign(const char *path, unsigned *uid)
{
    char dir[4096];
    struct stat st;

    dir_of(path, dir, sizeof dir);
    if (lstat(dir, &st) < 0 || uid_trusted(st.st_uid))
        return 0;
    *uid = (unsigned)st.st_uid;
    return 1;
}

int pt_sockpath_peer_check(int fd, const char *path, char *msg, size_t len)
{
    struct ucred cred;
    socklen_t sl = sizeof cred;
    char trusted[160];

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0) {
        snprintf(msg, len, "refusing pythreadd at %s: cannot tell who serves it: %s", path,
                 strerror(errno));
        return PT_EPERM;
    }
    if (uid_trusted(cred.uid))
        return 0;
    trusted_words(trusted, sizeof trusted);
    snprintf(msg, len,
             "refusing pythreadd at %s: it is served by uid %u (pid %d), not by %s, so it may "
             "be another user's daemon posing as yours; stop it and start your own, or, if you "
             "trust uid %u to serve you, set PYTHREAD_SERVICE_USER to that user",
             path, (unsigned)cred.uid, (int)cred.pid, trusted, (unsigned)cred.uid);
    return PT_EPERM;
}
