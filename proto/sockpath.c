#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pythread.h"

/*
 * The daemon and its clients find each other by the same rule, so it lives
 * in one place: $PYTHREAD_SOCKET, else the system path for root, else the
 * user's runtime directory, else a per-uid directory under /tmp.
 */
int pt_default_socket_path(char *buf, size_t len)
{
    const char *env = getenv("PYTHREAD_SOCKET");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else if (geteuid() == 0)
        n = snprintf(buf, len, "/run/pythread/pythreadd.sock");
    else if (xdg && *xdg)
        n = snprintf(buf, len, "%s/pythread/pythreadd.sock", xdg);
    else
        n = snprintf(buf, len, "/tmp/pythread-%u/pythreadd.sock", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= len)
        return PT_EINVAL;
    return n;
}
