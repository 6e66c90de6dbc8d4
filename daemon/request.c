/*
 * request.c - a decoded Request in the core's terms (request.h).
 */
#include "request.h"
#include "wire.h"

void pt_request_call(const Pythread__Request *req, pt_call *out)
{
    const Pythread__OpenArgs *open = pt_wire_open_args(req);

    *out = (pt_call){
        .id = req->id,
        .op = (pt_op)req->op,
        .thread = req->thread,
        .handle = req->handle,
        .blocking = req->blocking,
        .timeout = req->timeout,
        .count = req->count,
        .name = (const char *)req->name.data,
        .name_len = req->has_name ? req->name.len : 0,
        .kind = open->kind,
        .flags = open->flags,
        .mode = open->mode,
        .value = open->value,
        .parties = open->parties,
        .lock_handle = open->lock_handle,
        .has_action = req->has_action,
        .status = req->status,
        .watch = req->watch,
        .fail_deadlock = req->fail_deadlock,
    };
}
