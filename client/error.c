#include <stdarg.h>
#include <stdio.h>

#include "session.h"

/*
 * Like errno, the message belongs to the calling thread and is meaningful
 * only after a call has failed: a success leaves it as it was, so reading it
 * costs nothing on the fast path and a message survives unrelated calls.
 */
static _Thread_local char errmsg[PT__ERRMSG_MAX];

char *pt__errbuf(void)
{
    return errmsg;
}

const char *pt_last_error_message(void)
{
    return errmsg;
}

int pt__error(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
    va_end(ap);
    return code;
}

int pt__object_error(const pt_object *o, const char *op, int code, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(errmsg, sizeof(errmsg), "%s '%s': %s: ", pt_kind_name(o->params.kind), o->name,
                 op);
    if (n < 0 || (size_t)n >= sizeof(errmsg))
        return code;
    va_start(ap, fmt);
    vsnprintf(errmsg + n, sizeof(errmsg) - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

int pt__null_handle(const char *fn)
{
    return pt__error(PT_EINVAL, "%s: the handle is NULL; pass one its open function gave", fn);
}
