/*
 * metrics.c - the core's totals for pythreadd --metrics (core.h): answers
 * by operation and result, limits that refused, and the histograms. The
 * per-object counters that feed inspection count here too (inspect.c);
 * these totals outlive the objects, which a rate over time needs.
 */
#include <string.h>

#include "core_int.h"

_Static_assert(PT_EINTERNAL == -(PT_RESULTS - 2),
               "PT_RESULTS must cover every PT_E* code: update it with pythread.h");

/* 10 us .. 5 min in 1-2.5-5 steps: a daemon round trip is tens of
 * microseconds, a hold may be minutes. */
const uint64_t pt_core_hist_bounds[PT_HIST_BUCKETS] = {
    10000ull,       25000ull,       50000ull,       100000ull,       250000ull,     500000ull,
    1000000ull,     2500000ull,     5000000ull,     10000000ull,     25000000ull,   50000000ull,
    100000000ull,   250000000ull,   500000000ull,   1000000000ull,   2500000000ull, 5000000000ull,
    10000000000ull, 30000000000ull, 60000000000ull, 300000000000ull,
};

int pt_core_result_index(int status, int ok)
{
    if (status == 0)
        return ok ? PT_RESULT_OK : PT_RESULT_FALSE;
    /* A code this core does not know is counted as an internal error. */
    if (status < PT_EINTERNAL || status > 0)
        status = PT_EINTERNAL;
    return PT_RESULT_FALSE - status;
}

void pt__metric_answer(pt_core *c, int op, const pt_result *r)
{
    if (op > 0 && op < PT_OP_MAX_)
        c->metrics.answers[op][pt_core_result_index(r->status, r->ok)]++;
}

void pt__metric_refused(pt_core *c, pt_core_limit limit)
{
    if (limit < PT_CORE_LIMITS)
        c->metrics.refused[limit]++;
}

/* Most waits and holds are short: the search starts at the bottom. */
void pt__metric_observe(pt_core_hist *h, uint64_t ns)
{
    size_t i = 0;

    while (i < PT_HIST_BUCKETS && ns > pt_core_hist_bounds[i])
        i++;
    h->n[i]++;
    h->count++;
    h->sum += ns;
}

const pt_core_metrics *pt_core_metrics_get(const pt_core *core)
{
    return &core->metrics;
}

void pt_core_metrics_clear(pt_core *core)
{
    memset(&core->metrics, 0, sizeof(core->metrics));
}
