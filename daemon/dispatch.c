#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "daemon.h"
#include "names.h"

/* A call for the cluster's objects on a daemon that is in no cluster: an
 * open with PT_OPEN_CLUSTER is told how to have one; a handle with the
 * cluster's bit cannot have come from this daemon. */
static void cluster_refused(pt_conn *c, const Pythread__Request *req)
{
    const Pythread__OpenArgs *o = req->open;
    const char *kind;
    char msg[512];
    int named;

    named = req->has_name && pt_name_valid((const char *)req->name.data, req->name.len);
    if (req->op == PYTHREAD__OP__OP_UNLINK && req->cluster) {
        snprintf(msg, sizeof(msg),
                 "'%.*s': unlink: cluster objects need a daemon in a cluster, and this pythreadd "
                 "was started without --etcd; start it with --etcd ENDPOINTS (pythreadd(8)), or "
                 "unlink the host's object of that name (without --cluster)",
                 named ? (int)req->name.len : 1, named ? (const char *)req->name.data : "?");
        pt_conn_send_error(c, req->id, PT_ERUNTIME, msg);
        return;
    }
    if (req->op != PYTHREAD__OP__OP_OPEN || o == NULL) {
        snprintf(msg, sizeof(msg),
                 "request %llu: handle %u is a cluster object's, and this pythreadd is in no "
                 "cluster; use the handles its opens gave",
                 (unsigned long long)req->id, req->handle);
        pt_conn_send_error(c, req->id, PT_EBADHANDLE, msg);
        return;
    }
    kind = pt_kind_known(o->kind) ? pt_kind_name((pt_kind)o->kind) : "object";
    snprintf(msg, sizeof(msg),
             "%s '%.*s': open: a cluster object needs a daemon in a cluster, and this pythreadd "
             "was started without --etcd; start it with --etcd ENDPOINTS (pythreadd(8)), or "
             "open the object as this host's: without PT_OPEN_CLUSTER in C, cluster=True in "
             "Python or --cluster on pythreadctl",
             kind, named ? (int)req->name.len : 1, named ? (const char *)req->name.data : "?");
    pt_conn_send_error(c, req->id, PT_ERUNTIME, msg);
}

void pt_dispatch_request(pt_daemon *d, pt_conn *c, const Pythread__Request *req, uint64_t now)
{
    d->requests++;
    if (pt_wire_op_inspects(req->op)) {
        pt_inspect_request(d, c, req, now);
        return;
    }
    if (pt_cluster_request_is(req)) {
        if (d->cluster != NULL)
            pt_cluster_request(d, c, req);
        else
            cluster_refused(c, req);
        return;
    }
    if (req->watch && req->op == PYTHREAD__OP__OP_ACQUIRE && d->fast)
        pt_conn_watch(c, pt_core_fast_lock_cell(d->core, c->session, req->handle), req->thread,
                      req->id);
    pt_journal_call(d->journal, d->core, c->session, req, now);
    pt_fast_publish_all(d->fast);
}

/*
 * Every default in Response and State is zero or false, so a field is sent
 * only when it is not: the reader gets the same value either way and the
 * common answer ("ok") is a few bytes.
 */
#define PUT(msg, field, v)                                                                         \
    do {                                                                                           \
        if ((v) != 0) {                                                                            \
            (msg)->has_##field = 1;                                                                \
            (msg)->field = (v);                                                                    \
        }                                                                                          \
    } while (0)

static void state_fill(Pythread__State *out, const pt_state *s)
{
    PUT(out, kind, s->kind);
    PUT(out, locked, s->locked != 0);
    PUT(out, owner_depth, s->owner_depth);
    PUT(out, value, s->value);
    PUT(out, initial, s->initial);
    PUT(out, is_set, s->is_set != 0);
    PUT(out, parties, s->parties);
    PUT(out, n_waiting, s->n_waiting);
    PUT(out, broken, s->broken != 0);
    PUT(out, timeout, s->timeout);
    PUT(out, token, s->token);
}

void pt_dispatch_answer(const pt_result *res, Pythread__Response *r, Pythread__State *state)
{
    r->id = res->id;
    if (res->status != 0) {
        r->has_status = 1;
        r->status = res->status;
        r->message = (char *)(res->message ? res->message : pt_strerror(res->status));
        return;
    }
    PUT(r, ok, res->ok != 0);
    PUT(r, value, res->value);
    PUT(r, token, res->token);
    PUT(r, handle, res->handle);
    PUT(r, created, res->created != 0);
    PUT(r, run_action, res->run_action != 0);
    if (res->state) {
        state_fill(state, res->state);
        r->state = state;
    }
}

/*
 * The core's sink: one answer, now or for a waiter parked earlier, packed
 * straight into the session's output buffer. Answers for a connection that
 * is closing are dropped.
 */
void pt_dispatch_sink(void *ctx, pt_session *session, const pt_result *res)
{
    pt_conn *c = pt_core_session_udata(session);
    Pythread__Response r = PYTHREAD__RESPONSE__INIT;
    Pythread__State state = PYTHREAD__STATE__INIT;
    Pythread__FastCell fast = PYTHREAD__FAST_CELL__INIT;
    pt_daemon *d = ctx;
    int fd = -1;

    if (!c || c->closing)
        return;
    pt_dispatch_answer(res, &r, &state);
    /* a session with no id in words gets none: a kept connection whose id
     * could not be kept still maps the last image's groups */
    if (res->status == 0 && res->fast && d->fast && c->sid != 0) {
        pt_fast_answer(d->fast, c, res->fast, res->fast_slot, &fast, &fd);
        r.fast = &fast;
    }
    if (fd >= 0)
        pt_conn_send_fd(c, &r, fd);
    else
        pt_conn_send(c, &r);
}
