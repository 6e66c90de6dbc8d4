#include "inproc_daemon.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The daemon's logging is silenced: the fuzz target makes millions of
 * refused requests, and each would print a warning. */
void pt_log(int priority, const char *fmt, ...)
{
    (void)priority;
    (void)fmt;
}

void pt_log_set_verbose(int verbose)
{
    (void)verbose;
}

void pt_log_peer(uid_t uid, int priority, const char *fmt, ...)
{
    (void)uid;
    (void)priority;
    (void)fmt;
}

int inproc_daemon_init(pt_daemon *d)
{
    size_t cap = 4 * (size_t)PT_WIRE_MAX_FRAME;

    memset(d, 0, sizeof *d);
    TAILQ_INIT(&d->conns);
    d->max_frame = PT_WIRE_MAX_FRAME;
    d->max_sessions = 16;
    d->max_sessions_per_uid = 16;
    d->max_output = PT_DAEMON_OUTPUT_MIN;
    d->max_output_per_uid = PT_DAEMON_OUTPUT_PER_UID;
    d->max_input_per_uid = PT_DAEMON_INPUT_PER_UID;
    d->stall_timeout = PT_DAEMON_STALL_SEC;
    d->frame_timeout = PT_DAEMON_FRAME_SEC;
    d->base = event_base_new();
    d->arena_buf = malloc(cap);
    if (!d->base || !d->arena_buf)
        return -1;
    pt_wire_arena_init(&d->arena, d->arena_buf, cap);
    d->core = pt_core_new(NULL, pt_dispatch_sink, d);
    if (!d->core)
        return -1;
    /* The shared words too, in small groups, so their claims and publishes
     * run under the fuzzer and the allocation count. */
    d->fast = pt_fast_new(d, 1024);
    return d->fast && pt_daemon_timer_init(d) == 0 && pt_mem_init(d) == 0 ? 0 : -1;
}

void inproc_daemon_free(pt_daemon *d)
{
    pt_conn_close_all(d);
    if (d->core)
        pt_core_free(d->core);
    pt_conn_free_all(d);
    pt_fast_free(d->fast);
    if (d->timer)
        event_free(d->timer);
    pt_mem_free(d);
    if (d->base)
        event_base_free(d->base);
    free(d->arena_buf);
}

int inproc_session(pt_daemon *d)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pt_conn_accept(NULL, sv[0], NULL, 0, d);
    return sv[1];
}
