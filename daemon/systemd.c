/*
 * systemd.c - pythreadd under systemd: socket activation and the notify
 * protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1).
 *
 * Everything here is a no-op when systemd did not start us: sd_listen_fds()
 * finds no LISTEN_FDS, and without NOTIFY_SOCKET no timer is armed at all.
 * The watchdog is fed from a libevent timer on the one loop thread, so a
 * loop that stops turning stops feeding it and systemd restarts the daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"

/* How often STATUS= is refreshed when the watchdog does not tick sooner. */
#define STATUS_PERIOD_USEC 5000000u

struct pt_systemd {
    struct event *tick;     /* periodic: WATCHDOG=1 and STATUS= */
    uint64_t watchdog_usec; /* 0 when systemd expects no keep-alive */
    char status[160];       /* the last STATUS= line sent */
};

/* Is fd a listening AF_UNIX stream socket? Anything else handed to us is a
 * unit file mistake that must not be served. */
static int listen_fd_usable(int fd)
{
    int r = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1);

    if (r > 0)
        return 1;
    if (r < 0)
        pt_log(LOG_ERR, "pythreadd: cannot inspect the socket systemd passed (fd %d): %s", fd,
               strerror(-r));
    else
        pt_log(LOG_ERR,
               "pythreadd: systemd passed fd %d, which is not a listening Unix stream socket; "
               "fix ListenStream= in pythreadd.socket",
               fd);
    return 0;
}

/* What came from our own fd store (keep.c) is told by its name; the rest
 * is the socket unit's. Returns how many of the latter are in fds. */
static int passed_sort(pt_daemon *d, int n, char **names, int *fds)
{
    int table = -1, nconns = 0, nlisten = 0;
    int *conns = calloc((size_t)n, sizeof(*conns));

    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = names ? names[i] : NULL;

        if (pt_keep_passed(d, fd))
            continue; /* handed over across execve() */
        if (name && strcmp(name, PT_KEEP_FDNAME_TABLE) == 0 && table < 0)
            table = fd;
        else if (name && strcmp(name, PT_KEEP_FDNAME_CONN) == 0 && conns)
            conns[nconns++] = fd;
        else if (name && (strcmp(name, PT_KEEP_FDNAME_TABLE) == 0 ||
                          strcmp(name, PT_KEEP_FDNAME_CONN) == 0))
            close(fd);
        else
            fds[nlisten++] = fd;
    }
    if (table >= 0 || nconns > 0)
        pt_keep_take_store(d, table, conns, (size_t)nconns);
    free(conns);
    return nlisten;
}

int pt_systemd_listen_fd(pt_daemon *d, int *fd)
{
    char **names = NULL;
    /* unset_environment: the variables describe this process only. */
    int n = sd_listen_fds_with_names(1, &names);
    int *fds;

    if (n < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot read the sockets systemd passed: %s", strerror(-n));
        return -1;
    }
    if (n == 0)
        return 0;
    fds = calloc((size_t)n, sizeof(*fds));
    if (fds == NULL) {
        pt_log(LOG_ERR, "pythreadd: cannot take the sockets systemd passed: out of memory");
        return -1;
    }
    n = passed_sort(d, n, names, fds);
    for (char **p = names; p && *p; p++)
        free(*p);
    free(names);
    if (n == 0) {
        free(fds);
        return 0;
    }
    if (n > 1) {
        pt_log(
            LOG_WARNING,
            "systemd passed %d sockets; serving the first and closing the rest (pythreadd.socket "
            "should have one ListenStream=)",
            n);
        for (int i = 1; i < n; i++)
            close(fds[i]);
    }
    *fd = fds[0];
    free(fds);
    if (!listen_fd_usable(*fd)) {
        close(*fd);
        return -1;
    }
    return 1;
}

/* One line of live figures for `systemctl status`. */
static void status_format(const pt_daemon *d, char *buf, size_t len)
{
    pt_core_stats st;

    pt_core_get_stats(d->core, &st);
    snprintf(buf, len, "Serving %llu session%s, %llu object%s, %llu waiting; %llu requests handled",
             (unsigned long long)st.sessions, st.sessions == 1 ? "" : "s",
             (unsigned long long)st.objects, st.objects == 1 ? "" : "s",
             (unsigned long long)st.waiters, (unsigned long long)st.calls);
}

/* Feed the watchdog, and say STATUS= again only when a figure moved. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    pt_daemon *d = arg;
    struct pt_systemd *sd = d->systemd;
    char status[sizeof sd->status];
    char msg[sizeof status + 32];
    int changed;

    (void)fd;
    (void)what;
    status_format(d, status, sizeof status);
    changed = strcmp(status, sd->status) != 0;
    if (!sd->watchdog_usec && !changed)
        return;
    snprintf(msg, sizeof msg, "%s%s%s%s", sd->watchdog_usec ? "WATCHDOG=1" : "",
             sd->watchdog_usec && changed ? "\n" : "", changed ? "STATUS=" : "",
             changed ? status : "");
    if (sd_notify(0, msg) >= 0 && changed)
        memcpy(sd->status, status, sizeof status);
}

/* The tick period: half the watchdog interval (as sd_watchdog_enabled(3)
 * advises), but never longer than the status refresh period. */
static struct timeval tick_period(const struct pt_systemd *sd)
{
    uint64_t usec = STATUS_PERIOD_USEC;
    struct timeval tv;

    if (sd->watchdog_usec && sd->watchdog_usec / 2 < usec)
        usec = sd->watchdog_usec / 2;
    if (usec == 0)
        usec = 1;
    tv.tv_sec = (time_t)(usec / 1000000u);
    tv.tv_usec = (suseconds_t)(usec % 1000000u);
    return tv;
}

int pt_systemd_ready(pt_daemon *d, const char *where)
{
    struct pt_systemd *sd;
    struct timeval period;
    uint64_t usec = 0;
    int r;

    /* WATCHDOG_USEC applies only when WATCHDOG_PID is unset or ours; the
     * variables are dropped so nothing we might start inherits them. */
    r = sd_watchdog_enabled(1, &usec);
    if (r < 0)
        pt_log(LOG_WARNING, "ignoring the watchdog settings systemd passed: %s", strerror(-r));
    if (!getenv("NOTIFY_SOCKET"))
        return 0; /* not under systemd's eye: nothing to tell, no timer */
    sd = calloc(1, sizeof *sd);
    if (!sd) {
        pt_log(LOG_ERR, "pythreadd: cannot start the systemd notifier: out of memory");
        return -1;
    }
    d->systemd = sd;
    sd->watchdog_usec = r > 0 ? usec : 0;
    status_format(d, sd->status, sizeof sd->status);
    r = sd_notifyf(0, "READY=1\nSTATUS=Listening on %s; %s", where, sd->status);
    if (r < 0)
        pt_log(LOG_WARNING, "cannot tell systemd we are ready: %s", strerror(-r));
    sd->tick = event_new(d->base, -1, EV_PERSIST, tick_cb, d);
    period = tick_period(sd);
    if (!sd->tick || event_add(sd->tick, &period) < 0) {
        pt_log(LOG_ERR, "pythreadd: cannot start the systemd watchdog timer: out of memory");
        return -1;
    }
    if (sd->watchdog_usec)
        pt_log(LOG_DEBUG, "feeding the systemd watchdog every %llu us",
               (unsigned long long)(sd->watchdog_usec / 2));
    return 0;
}

void pt_systemd_stopping(pt_daemon *d)
{
    struct pt_systemd *sd = d->systemd;

    if (!sd)
        return;
    if (sd->tick)
        event_del(sd->tick);
    sd_notify(0, "STOPPING=1\nSTATUS=Stopping: ending every session");
}

void pt_systemd_free(pt_daemon *d)
{
    struct pt_systemd *sd = d->systemd;

    if (!sd)
        return;
    if (sd->tick)
        event_free(sd->tick);
    free(sd);
    d->systemd = NULL;
}
