/*
 * inproc_daemon.h - pythreadd's own code running inside a test process:
 * the daemon's sources but main() and the logger, an event base driven by
 * the test, sessions on socketpairs. The fuzz target and the steady-state
 * allocation test share it.
 */
#ifndef PT_INPROC_DAEMON_H
#define PT_INPROC_DAEMON_H

#include "daemon.h"

/* A daemon with default limits; 0, or -1 when out of memory. */
int inproc_daemon_init(pt_daemon *d);
/* End every session and free everything the daemon holds. */
void inproc_daemon_free(pt_daemon *d);
/* A new session whose peer is the returned descriptor (non-blocking), or -1. */
int inproc_session(pt_daemon *d);

#endif /* PT_INPROC_DAEMON_H */
