/*
 * request.h - a decoded Request in the core's terms.
 */
#ifndef PT_REQUEST_H
#define PT_REQUEST_H

#include "core.h"
#include "pythread.pb-c.h"

/* A flat copy, the name pointing into req (the core does not keep it).
 * Absent fields read as their proto defaults (blocking true, timeout -1,
 * count 1, value 1). */
void pt_request_call(const Pythread__Request *req, pt_call *out);

#endif /* PT_REQUEST_H */
