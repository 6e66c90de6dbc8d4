/*
 * metrics.c - pythreadd's metrics as Prometheus text (exposition format
 * 0.0.4), written once here for both the --metrics HTTP endpoint and
 * OP_METRICS (pythreadctl metrics).
 *
 * Every family is a row of a table: its name, type and help, and either a
 * scalar read from one snapshot or a function that writes its labelled
 * samples. Label values come from small fixed sets (kinds, operations,
 * results, limits), so the series are bounded; objects get series of their
 * own, labelled with their names, only when --metrics-object names them,
 * and at most --metrics-objects-max of them.
 *
 * Reading the metrics changes nothing: unlike pythreadctl list, it does
 * not claim the shared words (which would journal what each says). The
 * acquires made through them since they were last claimed are only looked
 * at (pt_core_fast_unread); a hold that began and ended there unseen is
 * not timed.
 */
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon.h"

/* An object given series of its own: what they say, read at once. */
typedef struct exposed {
    uint64_t serial;
    int kind;
    uint64_t acquires, contended, timeouts, waiters;
    uint64_t longest_wait, longest_hold; /* ns */
    char name[PT_NAME_MAX + 1];
} exposed;

/* What one text says, gathered before any of it is written. */
typedef struct snapshot {
    pt_core_stats stats;
    const pt_core_metrics *m;
    const uint64_t *refused; /* the daemon's, by pt_daemon_limit */
    uint64_t fast_unread;    /* acquires in the words that no claim took in yet */
    uint64_t by_kind[PT_KIND_BARRIER + 1];
    Pythread__StatusInfo st; /* --state-dir and the last restart, as status says */
    /* the scalar families */
    double start_time, sessions, waiters, handles, requests, contended, handed, timeouts;
    double deadlocks, unread, recovered, restored, replayed, journal, exposed, left_out;
    exposed *objs;
    size_t nobjs;
} snapshot;

/* One text being written. */
typedef struct writer {
    struct evbuffer *out;
    const snapshot *s;
    int fail;
} writer;

/* ---- samples ----------------------------------------------------------- */

/* The shortest of %.15g and %.17g that reads back the same: counts print as
 * integers, seconds without noise digits. */
static void value_text(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(writer *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (evbuffer_add_vprintf(w->out, fmt, ap) < 0)
        w->fail = 1;
    va_end(ap);
}

/* name{labels} value; labels is "" or 'k="v",...' (object names need no
 * escaping: the name rule allows no quote, backslash or newline). */
static void sample(writer *w, const char *name, const char *suffix, const char *labels, double v)
{
    char text[32];

    value_text(text, sizeof(text), v);
    put(w, "pythread_%s%s%s%s%s %s\n", name, suffix, *labels ? "{" : "", labels, *labels ? "}" : "",
        text);
}

/* ---- labelled families ------------------------------------------------- */

static void write_build_info(writer *w, const char *name)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "version=\"%s\",protocol=\"%u\"", PT_VERSION_STRING,
             PT_PROTOCOL_VERSION);
    sample(w, name, "", labels, 1);
}

static void write_objects(writer *w, const char *name)
{
    char labels[48];

    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++) {
        snprintf(labels, sizeof(labels), "kind=\"%s\"", pt_kind_name((pt_kind)k));
        sample(w, name, "", labels, (double)w->s->by_kind[k]);
    }
}

/* The wire's names of the operations the core answers (proto/pythread.proto,
 * without OP_, in lower case). */
static const char *const op_names[PT_OP_MAX_] = {
    [PT_OP_OPEN] = "open",
    [PT_OP_CLOSE] = "close",
    [PT_OP_UNLINK] = "unlink",
    [PT_OP_ACQUIRE] = "acquire",
    [PT_OP_RELEASE] = "release",
    [PT_OP_STATE] = "state",
    [PT_OP_COND_WAIT] = "cond_wait",
    [PT_OP_NOTIFY] = "notify",
    [PT_OP_EVENT_SET] = "event_set",
    [PT_OP_EVENT_CLEAR] = "event_clear",
    [PT_OP_EVENT_WAIT] = "event_wait",
    [PT_OP_BARRIER_WAIT] = "barrier_wait",
    [PT_OP_BARRIER_ACTION_DONE] = "barrier_action_done",
    [PT_OP_BARRIER_ABORT] = "barrier_abort",
    [PT_OP_BARRIER_RESET] = "barrier_reset",
};

/* "ok", "false", or the error's name in lower case ("elimit"). */
static void result_name(char *buf, size_t len, int index)
{
    const char *n;
    size_t i;

    if (index == PT_RESULT_OK || index == PT_RESULT_FALSE) {
        snprintf(buf, len, "%s", index == PT_RESULT_OK ? "ok" : "false");
        return;
    }
    n = pt_err_name(PT_RESULT_FALSE - index) + 3; /* past "PT_" */
    for (i = 0; n[i] && i + 1 < len; i++)
        buf[i] = (char)(n[i] | 0x20);
    buf[i] = '\0';
}

/* Only the pairs that happened: 15 operations by 19 results would be
 * hundreds of zeros. */
static void write_operations(writer *w, const char *name)
{
    char labels[96], result[16];

    for (int op = 0; op < PT_OP_MAX_; op++) {
        for (int i = 0; op_names[op] != NULL && i < PT_RESULTS; i++) {
            uint64_t n = w->s->m->answers[op][i];

            if (n == 0)
                continue;
            result_name(result, sizeof(result), i);
            snprintf(labels, sizeof(labels), "op=\"%s\",result=\"%s\"", op_names[op], result);
            sample(w, name, "", labels, (double)n);
        }
    }
}

static void write_acquisitions(writer *w, const char *name)
{
    sample(w, name, "", "path=\"daemon\"", (double)w->s->m->acquires);
    sample(w, name, "", "path=\"fast\"", (double)(w->s->m->acquires_fast + w->s->fast_unread));
}

/* Every limit by the option that sets it, the core's and the daemon's. */
static const struct limit_row {
    const char *label;
    int core; /* an index of the core's refused[], else of the daemon's */
    int index;
} limit_rows[] = {
    {"objects", 1, PT_LIMIT_OBJECTS},
    {"objects_per_uid", 1, PT_LIMIT_OBJECTS_PER_UID},
    {"handles", 1, PT_LIMIT_HANDLES},
    {"handles_per_uid", 1, PT_LIMIT_HANDLES_PER_UID},
    {"waiters", 1, PT_LIMIT_WAITERS},
    {"waiters_per_uid", 1, PT_LIMIT_WAITERS_PER_UID},
    {"sessions", 0, PT_DLIMIT_SESSIONS},
    {"sessions_per_uid", 0, PT_DLIMIT_SESSIONS_PER_UID},
    {"open_files", 0, PT_DLIMIT_OPEN_FILES},
    {"frame", 0, PT_DLIMIT_FRAME},
    {"input_per_uid", 0, PT_DLIMIT_INPUT_PER_UID},
    {"output", 0, PT_DLIMIT_OUTPUT},
    {"metrics_kept", 0, PT_DLIMIT_METRICS_KEPT},
};

static void write_refusals(writer *w, const char *name)
{
    char labels[48];

    for (size_t i = 0; i < sizeof(limit_rows) / sizeof(limit_rows[0]); i++) {
        const struct limit_row *r = &limit_rows[i];

        snprintf(labels, sizeof(labels), "limit=\"%s\"", r->label);
        sample(w, name, "", labels,
               (double)(r->core ? w->s->m->refused[r->index] : w->s->refused[r->index]));
    }
}

static void write_histogram(writer *w, const char *name, const pt_core_hist *h)
{
    char labels[32];
    uint64_t cumulative = 0;

    for (size_t i = 0; i < PT_HIST_BUCKETS; i++) {
        cumulative += h->n[i];
        snprintf(labels, sizeof(labels), "le=\"%g\"", (double)pt_core_hist_bounds[i] / 1e9);
        sample(w, name, "_bucket", labels, (double)cumulative);
    }
    sample(w, name, "_bucket", "le=\"+Inf\"", (double)h->count);
    sample(w, name, "_sum", "", (double)h->sum / 1e9);
    sample(w, name, "_count", "", (double)h->count);
}

static void write_wait(writer *w, const char *name)
{
    write_histogram(w, name, &w->s->m->wait);
}

static void write_hold(writer *w, const char *name)
{
    write_histogram(w, name, &w->s->m->hold);
}

/* The sessions this start kept across a restart, by what became of them. */
static const struct outcome_row {
    const char *label;
    size_t offset; /* of a uint64_t in Pythread__StatusInfo */
} outcome_rows[] = {
    {"kept", offsetof(Pythread__StatusInfo, restored_sessions)},
    {"taken_up", offsetof(Pythread__StatusInfo, sessions_taken_up)},
    {"ended_gone", offsetof(Pythread__StatusInfo, sessions_ended_gone)},
    {"ended_late", offsetof(Pythread__StatusInfo, sessions_ended_late)},
    {"ended_empty", offsetof(Pythread__StatusInfo, sessions_ended_empty)},
};

static void write_restart_sessions(writer *w, const char *name)
{
    char labels[48];

    for (size_t i = 0; i < sizeof(outcome_rows) / sizeof(outcome_rows[0]); i++) {
        uint64_t v;

        memcpy(&v, (const char *)&w->s->st + outcome_rows[i].offset, sizeof(v));
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_rows[i].label);
        sample(w, name, "", labels, (double)v);
    }
}

/* ---- the families ------------------------------------------------------ */

typedef struct family {
    const char *name; /* after pythread_ */
    const char *type;
    const char *help;
    void (*write)(writer *w, const char *name); /* labelled samples, or */
    size_t scalar;                              /* the one sample: a double in snapshot */
} family;

#define SCALAR(field) NULL, offsetof(snapshot, field)

static const family families[] = {
    {"build_info", "gauge", "The running pythreadd: its version and wire protocol; always 1.",
     write_build_info, 0},
    {"start_time_seconds", "gauge", "When pythreadd started, in seconds since the epoch.",
     SCALAR(start_time)},
    {"sessions", "gauge", "Client sessions (connections) open.", SCALAR(sessions)},
    {"objects", "gauge", "Named objects alive, by kind (unlinked ones still open included).",
     write_objects, 0},
    {"waiters", "gauge", "Calls parked: acquires, waits and barrier parties waiting now.",
     SCALAR(waiters)},
    {"handles", "gauge", "Handles open across every session.", SCALAR(handles)},
    {"requests_total", "counter", "Requests served, hellos and inspection included.",
     SCALAR(requests)},
    {"operations_total", "counter",
     "Calls on objects answered, by operation and result: ok (True), false (False: not "
     "acquired, timed out, flag clear) or the error code.",
     write_operations, 0},
    {"acquisitions_total", "counter",
     "Successful Lock, RLock and Semaphore acquires, a Condition's lock included: granted by "
     "the daemon, or done through a shared word without it (fast).",
     write_acquisitions, 0},
    {"contended_acquisitions_total", "counter",
     "Acquires that found the object unavailable (they waited, or returned False).",
     SCALAR(contended)},
    {"word_handoffs_total", "counter",
     "Lock and RLock waiters handed the lock through its shared word by the releasing holder.",
     SCALAR(handed)},
    {"timeouts_total", "counter", "Waits of any kind that timed out.", SCALAR(timeouts)},
    {"handoff_wait_seconds", "histogram",
     "How long a contended acquire that got its Lock, RLock or Semaphore waited for it.",
     write_wait, 0},
    {"hold_seconds", "histogram",
     "How long Lock and RLock holds lasted, from acquire to release (holds through a shared "
     "word as the daemon saw them).",
     write_hold, 0},
    {"deadlocks_found_total", "counter", "Deadlocks found among waiting owners.",
     SCALAR(deadlocks)},
    {"limit_refusals_total", "counter",
     "Requests and sessions refused or cut off by a limit, by the option that sets it.",
     write_refusals, 0},
    {"unread_output_bytes", "gauge", "Answers written for sessions and not yet read by them.",
     SCALAR(unread)},
    {"restart_recovered", "gauge",
     "1 when this start restored the state a previous one left (--state-dir), else 0.",
     SCALAR(recovered)},
    {"restart_restored_objects", "gauge", "Objects this start restored.", SCALAR(restored)},
    {"restart_replayed_inputs", "gauge", "Journal records this start replayed.", SCALAR(replayed)},
    {"restart_sessions", "gauge",
     "Sessions this start kept from before the restart, and what became of them.",
     write_restart_sessions, 0},
    {"journal_bytes", "gauge", "The journal's size (--state-dir).", SCALAR(journal)},
    {"metrics_exposed_objects", "gauge",
     "Objects --metrics-object names that have series of their own here.", SCALAR(exposed)},
    {"metrics_left_out_objects", "gauge",
     "Objects --metrics-object names that were left out: past --metrics-objects-max.",
     SCALAR(left_out)},
};

/* Series of each object --metrics-object names. */
static const struct object_family {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* of a uint64_t in exposed */
    int ns;        /* ... in nanoseconds, shown in seconds */
} object_families[] = {
    {"object_acquisitions_total", "counter",
     "Successful acquires of the object since it was created.", offsetof(exposed, acquires), 0},
    {"object_contended_acquisitions_total", "counter",
     "Acquires of the object that found it unavailable.", offsetof(exposed, contended), 0},
    {"object_timeouts_total", "counter", "Waits on the object that timed out.",
     offsetof(exposed, timeouts), 0},
    {"object_waiters", "gauge", "Calls parked on the object now.", offsetof(exposed, waiters), 0},
    {"object_longest_wait_seconds", "gauge", "The longest wait on the object that was answered.",
     offsetof(exposed, longest_wait), 1},
    {"object_longest_hold_seconds", "gauge",
     "The longest hold of the Lock or RLock (a Condition's lock), the one going on included.",
     offsetof(exposed, longest_hold), 1},
};

static void header(writer *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP pythread_%s %s\n# TYPE pythread_%s %s\n", name, help, name, type);
}

static void write_family(writer *w, const family *f)
{
    double v;

    header(w, f->name, f->type, f->help);
    if (f->write != NULL) {
        f->write(w, f->name);
        return;
    }
    memcpy(&v, (const char *)w->s + f->scalar, sizeof(v));
    sample(w, f->name, "", "", v);
}

static void write_object_family(writer *w, const struct object_family *f)
{
    char labels[PT_NAME_MAX + 48];

    header(w, f->name, f->type, f->help);
    for (size_t i = 0; i < w->s->nobjs; i++) {
        const exposed *e = &w->s->objs[i];
        uint64_t v;

        memcpy(&v, (const char *)e + f->offset, sizeof(v));
        snprintf(labels, sizeof(labels), "name=\"%s\",kind=\"%s\"", e->name,
                 pt_kind_name((pt_kind)e->kind));
        sample(w, f->name, "", labels, f->ns ? (double)v / 1e9 : (double)v);
    }
}

/* ---- the objects --metrics-object names --------------------------------- */

typedef struct expose_ctx {
    const pt_daemon *d;
    exposed *v;
    size_t n, cap;
    uint64_t left_out;
} expose_ctx;

static int has_glob(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

/* A detail the asker may read joins the list (the first time). */
static void expose(expose_ctx *x, const pt_core_object_detail *det)
{
    exposed *e;

    if (det->hidden)
        return;
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i].serial == det->serial)
            return;
    if (x->n == x->cap) {
        x->left_out++;
        return;
    }
    e = &x->v[x->n++];
    *e = (exposed){
        .serial = det->serial,
        .kind = det->info.kind,
        .acquires = det->counters.acquires,
        .contended = det->counters.contended,
        .timeouts = det->counters.timeouts,
        .waiters = det->waiters,
        .longest_wait = det->counters.longest_wait,
        .longest_hold = det->counters.longest_hold,
    };
    memcpy(e->name, det->info.name, det->info.name_len);
    e->name[det->info.name_len] = '\0';
}

static int glob_one(void *arg, const pt_core_object_detail *det)
{
    expose_ctx *x = arg;
    char name[PT_NAME_MAX + 1];

    memcpy(name, det->info.name, det->info.name_len);
    name[det->info.name_len] = '\0';
    for (uint32_t i = 0; i < x->d->nmetrics_objects; i++) {
        const char *p = x->d->metrics_objects[i];

        if (has_glob(p) && fnmatch(p, name, 0) == 0) {
            expose(x, det);
            break;
        }
    }
    return 0;
}

static int by_serial(const void *a, const void *b)
{
    const exposed *x = a, *y = b;

    return (x->serial > y->serial) - (x->serial < y->serial);
}

/* A name is looked up; only patterns walk every object, once for all. */
static int expose_all(pt_daemon *d, const pt_session *asker, uint64_t now, snapshot *s)
{
    expose_ctx x = {.d = d, .cap = d->metrics_objects_max};
    int walk = 0;

    if (d->nmetrics_objects == 0)
        return 0;
    x.v = malloc(x.cap * sizeof(*x.v));
    if (x.v == NULL)
        return -1;
    for (uint32_t i = 0; i < d->nmetrics_objects; i++) {
        const char *p = d->metrics_objects[i];
        pt_core_object_detail det;

        if (has_glob(p))
            walk = 1;
        else if (pt_core_inspect_object(d->core, asker, p, strlen(p), now, &det, NULL, NULL) == 0)
            expose(&x, &det);
    }
    if (walk)
        pt_core_inspect_objects(d->core, asker, 0, now, glob_one, &x);
    qsort(x.v, x.n, sizeof(*x.v), by_serial);
    s->objs = x.v;
    s->nobjs = x.n;
    s->exposed = (double)x.n;
    s->left_out = (double)x.left_out;
    return 0;
}

/* ---- the text ------------------------------------------------------------ */

static void snapshot_take(pt_daemon *d, snapshot *s)
{
    Pythread__StatusInfo st = PYTHREAD__STATUS_INFO__INIT;

    pt_core_get_stats(d->core, &s->stats);
    pt_core_objects_by_kind(d->core, s->by_kind);
    s->m = pt_core_metrics_get(d->core);
    s->refused = d->refused;
    pt_state_status(d, &st);
    s->st = st;
    s->start_time = d->started_wall;
    s->sessions = (double)s->stats.sessions;
    s->waiters = (double)s->stats.waiters;
    s->handles = (double)s->stats.handles;
    s->requests = (double)d->requests;
    s->contended = (double)s->m->contended;
    s->handed = (double)s->m->handed;
    s->fast_unread = pt_core_fast_unread(d->core);
    s->timeouts = (double)s->m->timeouts;
    s->deadlocks = (double)s->stats.deadlocks;
    s->unread = (double)d->out_unread;
    s->recovered = d->resume != NULL;
    s->restored = (double)st.restored_objects;
    s->replayed = (double)st.replayed_inputs;
    s->journal = (double)st.journal_bytes;
}

int pt_metrics_text(pt_daemon *d, const pt_session *asker, uint64_t now, struct evbuffer *out)
{
    snapshot s = {0};
    writer w = {.out = out, .s = &s};

    snapshot_take(d, &s);
    if (expose_all(d, asker, now, &s) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        write_family(&w, &families[i]);
    for (size_t i = 0;
         d->nmetrics_objects && i < sizeof(object_families) / sizeof(*object_families); i++)
        write_object_family(&w, &object_families[i]);
    free(s.objs);
    return w.fail ? -1 : 0;
}
