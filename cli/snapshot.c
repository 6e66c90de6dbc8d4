/*
 * snapshot.c - what `graph` and `top` read of the daemon at one moment: the
 * objects whose names match a pattern (with their counters), and who holds
 * and who waits for those somebody holds or waits for.
 *
 * The daemon answers one object's holders and waiters per request, so the
 * details are asked only of objects in use, those with waiters first, and
 * at most max_detail of them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int add_object(void *arg, const pt_inspect_object *o)
{
    pt_snap *s = arg;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        pt_snap_obj *v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL)
            return PT_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (pt_snap_obj){.o = *o};
    return 0;
}

static int in_use(const pt_inspect_object *o)
{
    return !o->hidden && (o->waiters > 0 || o->locked || (o->owned && o->value < o->initial));
}

/* Objects with waiters first, then held ones, each oldest first. */
static int busier(const void *a, const void *b)
{
    const pt_snap_obj *x = *(pt_snap_obj *const *)a, *y = *(pt_snap_obj *const *)b;
    int wx = x->o.waiters > 0, wy = y->o.waiters > 0;

    if (wx != wy)
        return wy - wx;
    return (x > y) - (x < y);
}

static int details(pt_client *c, pt_snap *s, size_t max_detail)
{
    pt_snap_obj **used = calloc(s->n ? s->n : 1, sizeof(*used));
    size_t n = 0;
    int rc = 0;

    if (used == NULL)
        return PT_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        if (in_use(&s->v[i].o))
            used[n++] = &s->v[i];
    }
    qsort(used, n, sizeof(*used), busier);
    for (size_t i = 0; i < n && i < max_detail && rc == 0; i++) {
        rc = pt_inspect_show(c, used[i]->o.name, &used[i]->d);
        if (rc == PT_ENOENT) /* gone since the list: nobody holds it now */
            rc = 0;
    }
    s->skipped = n > max_detail ? n - max_detail : 0;
    free(used);
    return rc;
}

int pt_snap_take(pt_client *c, const char *glob, size_t max_detail, pt_snap *out)
{
    struct timespec ts;
    int rc;

    memset(out, 0, sizeof(*out));
    clock_gettime(CLOCK_MONOTONIC, &ts);
    out->taken = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    rc = pt_inspect_list(c, glob, 0, add_object, out);
    if (rc == 0)
        rc = details(c, out, max_detail);
    if (rc != 0)
        pt_snap_free(out);
    return rc;
}

void pt_snap_free(pt_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        pt_inspect_detail_free(s->v[i].d);
    free(s->v);
    memset(s, 0, sizeof(*s));
}
