/*
 * sockpath.h - where the daemon and its clients meet, and whom a client
 * trusts to be the daemon there (the rule itself: pt_default_socket_paths in
 * pythread.h; the system socket moves with PYTHREAD_SYSTEM_SOCKET, for tests).
 *
 * A client talks only to a daemon run by root, by its own uid or by the
 * service user (PYTHREAD_SERVICE_USER, else the build's PT_SERVICE_USER,
 * "pythread" by default: the user of pythreadd.service). Anyone else
 * answering on the socket may be another user posing as the daemon, to read
 * the names the client uses and to hand out grants nobody enforces.
 */
#ifndef PT_SOCKPATH_H
#define PT_SOCKPATH_H

#include <stddef.h>

/* 1 when path is one the default rule gives this user, their own socket or
 * the system one (whether it came from the rule, PYTHREAD_SOCKET or an
 * argument), else 0. */
int pt_sockpath_is_default(const char *path);

/*
 * The directory holding the socket at path must belong to a trusted user
 * (root, the caller, the service user) and be writable by no one else; an
 * explicitly chosen path may sit in a sticky directory such as /tmp, the
 * default directory may not and must not be a symbolic link. 0 when it
 * passes or does not exist (connect then says so), else PT_EPERM with why
 * (naming the path, what was found and what to do) in msg.
 */
int pt_sockpath_dir_check(const char *path, char *msg, size_t len);

/* 1 when the directory of the socket at path is another user's: it exists
 * and belongs to a user this process does not trust (its owner in *uid).
 * A default socket there cannot be this user's own daemon's, only someone
 * else's in its place; the client rule then skips it. */
int pt_sockpath_dir_foreign(const char *path, unsigned *uid);

/* The process serving the connected socket fd (SO_PEERCRED, as it was when
 * it called listen) must be a trusted user. 0, else PT_EPERM with why in
 * msg. */
int pt_sockpath_peer_check(int fd, const char *path, char *msg, size_t len);

#endif /* PT_SOCKPATH_H */
