/*
 * inspect_cmds.c - status, list, show, sessions and deadlocks: the daemon's
 * inspection answers as tables for people or one JSON document for scripts.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Commands that take no words of their own start here: the client, or
 * NULL with the exit code in *code (--help, a usage error, no daemon). */
static pt_client *no_args_client(pt_cli *cli, const char *name, int argc, char **argv, int *code)
{
    const pt_cli_command *cmd = pt_cli_find(name);
    int ch = pt_cli_getopt(cli, cmd, argc, argv, "", NULL);

    if (ch == 'h') {
        *code = PT_EXIT_OK;
        return NULL;
    }
    if (ch != -1) {
        *code = PT_EXIT_USAGE;
        return NULL;
    }
    if (optind < argc) {
        *code = pt_cli_usage(cmd->name, "unexpected argument '%s'", argv[optind]);
        return NULL;
    }
    return pt_cli_client(cli, code);
}

static int finish_json(pt_json *j)
{
    return pt_json_finish(j) < 0 ? pt_cli_fail(PT_EXIT_FAILED, "cannot write the output")
                                 : PT_EXIT_OK;
}

/* The one-word state the issue asks for. */
void pt_cli_state_word(char *buf, size_t len, const pt_inspect_object *o)
{
    switch (o->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
    case PT_KIND_CONDITION:
        snprintf(buf, len, "%s", o->locked ? "locked" : "free");
        break;
    case PT_KIND_SEMAPHORE:
        snprintf(buf, len, "%" PRId64, o->value);
        break;
    case PT_KIND_BOUNDED_SEMAPHORE:
        snprintf(buf, len, "%" PRId64 "/%" PRId64, o->value, o->initial);
        break;
    case PT_KIND_EVENT:
        snprintf(buf, len, "%s", o->is_set ? "set" : "clear");
        break;
    case PT_KIND_BARRIER:
        if (o->broken)
            snprintf(buf, len, "broken");
        else
            snprintf(buf, len, "%u/%u", o->n_waiting, o->parties);
        break;
    default:
        snprintf(buf, len, "?");
        break;
    }
}

/* What the daemon's last restart did to an object: a word for JSON and the
 * list's flags, and what it means for show. */
static const struct {
    const char *word;
    const char *text;
} restart_marks[PT_RESTART_MARKS] = {
    [PT_RESTART_NONE] = {"none", "none: created after the daemon's last restart, or no restart "
                                 "restored anything"},
    [PT_RESTART_RESTORED] = {"restored", "restored as the journal had it"},
    [PT_RESTART_RECLAIMED] = {"reclaimed", "reclaimed: a process that had it open came back, and "
                                           "what its shared word said of it was taken (held, "
                                           "let go, a semaphore's count)"},
    [PT_RESTART_RELEASED] = {"released", "released: its holder's session was not taken up, so "
                                         "what it held was given back (to the next waiter, if "
                                         "any)"},
    [PT_RESTART_IN_GRACE] = {"in_grace", "in grace: a holder's process has not taken its "
                                         "session up yet; calls wait until it does or the "
                                         "daemon's --grace runs out"},
};

static unsigned restart_index(pt_restart_mark m)
{
    return (unsigned)m < PT_RESTART_MARKS ? (unsigned)m : PT_RESTART_NONE;
}

static const char *restart_word(pt_restart_mark m)
{
    return restart_marks[restart_index(m)].word;
}

/* ---- status ------------------------------------------------------------ */

/* The restart this start made: JSON null when it restored nothing. */
static void restart_json(pt_json *j, const pt_inspect_status *st)
{
    if (!st->in_grace && st->restarted_at <= 0) {
        pt_json_null(j, "restart");
        return;
    }
    pt_json_obj(j, "restart");
    if (st->in_grace)
        pt_json_null(j, "done_at");
    else
        pt_json_num(j, "done_at", st->restarted_at);
    pt_json_num(j, "grace_seconds", st->grace_seconds);
    pt_json_obj(j, "objects");
    for (int m = PT_RESTART_RESTORED; m < PT_RESTART_MARKS; m++)
        pt_json_uint(j, restart_word((pt_restart_mark)m), st->objects_by_restart[m]);
    pt_json_end(j);
    pt_json_end(j);
}

/* The cluster part of status --json: null without --etcd. */
static void cluster_json(pt_json *j, const pt_inspect_status *st)
{
    const char *p = st->cluster_members;

    if (!st->cluster_host[0]) {
        pt_json_null(j, "cluster");
        return;
    }
    pt_json_obj(j, "cluster");
    pt_json_str(j, "host", st->cluster_host);
    pt_json_str(j, "etcd", st->cluster_endpoints);
    pt_json_arr(j, "members");
    while (*p) {
        char name[PT_INSPECT_TEXT_MAX];
        size_t n = strcspn(p, " ");

        snprintf(name, sizeof(name), "%.*s", (int)n, p);
        pt_json_str(j, NULL, name);
        p += n;
        p += *p == ' ';
    }
    pt_json_end(j);
    if (st->cluster_lease != 0) {
        pt_json_int(j, "lease", st->cluster_lease);
        pt_json_num(j, "lease_sure_seconds", st->cluster_lease_seconds);
    } else {
        pt_json_null(j, "lease");
        pt_json_null(j, "lease_sure_seconds");
    }
    pt_json_uint(j, "owned_locks", st->cluster_owned);
    pt_json_uint(j, "answered_ahead", st->cluster_ahead);
    pt_json_end(j);
}

static void status_json(const pt_inspect_status *st)
{
    pt_json *j = pt_json_new(stdout);

    pt_json_obj(j, NULL);
    pt_json_str(j, "version", st->version);
    pt_json_int(j, "pid", st->pid);
    pt_json_uint(j, "protocol", st->protocol);
    pt_json_num(j, "uptime_seconds", st->uptime);
    pt_json_num(j, "started_at", st->started);
    pt_json_str(j, "socket", st->socket);
    pt_json_uint(j, "sessions", st->sessions);
    pt_json_uint(j, "objects", st->objects);
    pt_json_obj(j, "objects_by_kind");
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++)
        pt_json_uint(j, pt_cli_kind_word(k), st->objects_by_kind[k]);
    pt_json_end(j);
    pt_json_uint(j, "waiters", st->waiters);
    pt_json_uint(j, "operations", st->operations);
    if (st->metrics_address[0])
        pt_json_str(j, "metrics", st->metrics_address);
    else
        pt_json_null(j, "metrics");
    pt_json_obj(j, "deadlocks");
    pt_json_uint(j, "found", st->deadlocks_found);
    pt_json_uint(j, "standing", st->deadlocks_standing);
    pt_json_end(j);
    if (!st->state_dir[0]) {
        pt_json_null(j, "state");
    } else {
        pt_json_obj(j, "state");
        pt_json_str(j, "dir", st->state_dir);
        pt_json_bool(j, "sync", st->state_sync);
        pt_json_uint(j, "journal_bytes", st->journal_bytes);
        pt_json_uint(j, "restored_objects", st->restored_objects);
        pt_json_uint(j, "replayed_records", st->replayed_inputs);
        pt_json_uint(j, "torn_bytes", st->torn_bytes);
        pt_json_uint(j, "grace_ms", st->grace_ms);
        pt_json_bool(j, "in_grace", st->in_grace);
        pt_json_obj(j, "sessions");
        pt_json_uint(j, "restored", st->restored_sessions);
        pt_json_uint(j, "taken_up", st->sessions_taken_up);
        pt_json_uint(j, "connection_kept", st->sessions_kept_connection);
        pt_json_uint(j, "ended_process_gone", st->sessions_ended_gone);
        pt_json_uint(j, "ended_not_back", st->sessions_ended_late);
        pt_json_uint(j, "ended_nothing_held", st->sessions_ended_empty);
        pt_json_end(j);
        restart_json(j, st);
        pt_json_end(j);
    }
    cluster_json(j, st);
    pt_json_obj(j, "limits");
    pt_json_uint(j, "max_frame", st->max_frame);
    pt_json_uint(j, "max_sessions", st->max_sessions);
    pt_json_uint(j, "max_objects", st->max_objects);
    pt_json_uint(j, "max_handles_per_session", st->max_handles_per_session);
    pt_json_uint(j, "max_waiters_per_session", st->max_waiters_per_session);
    pt_json_uint(j, "max_objects_per_uid", st->max_objects_per_uid);
    pt_json_uint(j, "max_sessions_per_uid", st->max_sessions_per_uid);
    pt_json_uint(j, "max_handles_per_uid", st->max_handles_per_uid);
    pt_json_uint(j, "max_waiters_per_uid", st->max_waiters_per_uid);
    pt_json_uint(j, "max_output_bytes", st->max_output);
    pt_json_uint(j, "max_output_per_uid_bytes", st->max_output_per_uid);
    pt_json_uint(j, "max_input_per_uid_bytes", st->max_input_per_uid);
    pt_json_end(j);
    pt_json_end(j);
    finish_json(j);
}

static void kv(pt_table *t, const char *k, const char *v)
{
    const char *row[2] = {k, v};

    pt_table_row(t, row);
}

/* What became of the sessions this start brought back. */
static void sessions_row(pt_table *t, const pt_inspect_status *st)
{
    char buf[320];

    if (st->restored_sessions == 0) {
        snprintf(buf, sizeof(buf), "none kept at this start (--grace %.3g s)",
                 st->grace_ms / 1000.0);
    } else {
        snprintf(buf, sizeof(buf),
                 "%" PRIu64 " kept at this start: %" PRIu64 " taken up by their processes (%" PRIu64
                 " on the connection they had); ended: %" PRIu64 " process gone, %" PRIu64
                 " not back within --grace %.3g s, %" PRIu64 " nothing to take up%s",
                 st->restored_sessions, st->sessions_taken_up, st->sessions_kept_connection,
                 st->sessions_ended_gone, st->sessions_ended_late, st->grace_ms / 1000.0,
                 st->sessions_ended_empty,
                 st->in_grace ? "; in the grace period now: calls wait" : "");
    }
    kv(t, "sessions kept:", buf);
}

/* When the restart this start made was done and what it did to the
 * objects there are now. */
static void restart_row(pt_table *t, const pt_inspect_status *st)
{
    const uint64_t *n = st->objects_by_restart;
    char buf[400], when[96], took[32];

    pt_fmt_duration(took, sizeof(took), st->grace_seconds);
    if (st->in_grace) {
        snprintf(buf, sizeof(buf),
                 "in the grace period for %s so far: %" PRIu64 " objects in grace (held by "
                 "sessions whose processes are not back yet), %" PRIu64 " restored as journaled",
                 took, n[PT_RESTART_IN_GRACE], n[PT_RESTART_RESTORED]);
    } else if (st->restarted_at > 0) {
        pt_fmt_time_ago(when, sizeof(when), st->restarted_at);
        snprintf(buf, sizeof(buf),
                 "done %s after a grace of %s; of the objects now, %" PRIu64
                 " restored as journaled, %" PRIu64 " reclaimed from their holders' words, %" PRIu64
                 " released (their holders' sessions were not taken up)",
                 when, took, n[PT_RESTART_RESTORED], n[PT_RESTART_RECLAIMED],
                 n[PT_RESTART_RELEASED]);
    } else {
        snprintf(buf, sizeof(buf), "none: this start found no state to restore");
    }
    kv(t, "last restart:", buf);
}

/* Where the state is kept and what this start brought back. */
static void state_row(pt_table *t, const pt_inspect_status *st)
{
    char buf[PT_INSPECT_PATH_MAX + 256];
    size_t n;

    if (!st->state_dir[0]) {
        kv(t, "state:", "not kept: it ends with the daemon (pythreadd --state-dir keeps it)");
        return;
    }
    n = (size_t)snprintf(buf, sizeof(buf),
                         "%s, journal %" PRIu64 " bytes, %s; at start %" PRIu64
                         " objects restored from %" PRIu64 " records",
                         st->state_dir, st->journal_bytes,
                         st->state_sync ? "each change fsynced" : "written before each answer",
                         st->restored_objects, st->replayed_inputs);
    if (st->torn_bytes && n < sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, ", a torn tail of %" PRIu64 " bytes cut off",
                 st->torn_bytes);
    kv(t, "state:", buf);
    sessions_row(t, st);
    restart_row(t, st);
}

/* pythreadd --etcd: the host, its lease, the cluster's hosts, the locks it owns
 * and the calls it answered ahead of the log. */
static void cluster_row(pt_table *t, const pt_inspect_status *st)
{
    char buf[sizeof(st->cluster_members) + 512];
    size_t n;

    if (!st->cluster_host[0]) {
        kv(t, "cluster:", "none (pythreadd --etcd ENDPOINTS joins one)");
        return;
    }
    if (st->cluster_lease != 0)
        n = (size_t)snprintf(buf, sizeof(buf),
                             "host %s of %u (%s); lease %" PRId64 ", sure for %.1f s; etcd %s",
                             st->cluster_host, st->cluster_nmembers, st->cluster_members,
                             st->cluster_lease, st->cluster_lease_seconds, st->cluster_endpoints);
    else
        n = (size_t)snprintf(buf, sizeof(buf),
                             "host %s, not a member now (joining; see pythreadd's log); %u hosts "
                             "(%s); etcd %s",
                             st->cluster_host, st->cluster_nmembers, st->cluster_members,
                             st->cluster_endpoints);
    if (n < sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n,
                 "; owns %" PRIu64 " locks, %" PRIu64 " calls answered ahead", st->cluster_owned,
                 st->cluster_ahead);
    kv(t, "cluster:", buf);
}

static void status_table(const pt_cli *cli, const pt_inspect_status *st)
{
    static const char *const hdr[2] = {"FIELD", "VALUE"};
    pt_table *t = pt_table_new(2, hdr);
    char buf[512], a[64], b[96];
    size_t n = 0;

    kv(t, "version:", st->version);
    snprintf(buf, sizeof(buf), "%ld", st->pid);
    kv(t, "pid:", buf);
    pt_fmt_duration(a, sizeof(a), st->uptime);
    pt_fmt_time(b, sizeof(b), st->started);
    snprintf(buf, sizeof(buf), "%s (since %s)", a, b);
    kv(t, "uptime:", buf);
    kv(t, "socket:", st->socket[0] ? st->socket : "-");
    snprintf(buf, sizeof(buf), "%" PRIu64, st->sessions);
    kv(t, "sessions:", buf);
    n = (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, st->objects);
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER && n < sizeof(buf); k++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s %" PRIu64,
                              k == PT_KIND_LOCK ? " (" : ", ", pt_cli_kind_word(k),
                              st->objects_by_kind[k]);
    if (n < sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, ")");
    kv(t, "objects:", buf);
    snprintf(buf, sizeof(buf), "%" PRIu64, st->waiters);
    kv(t, "waiting calls:", buf);
    snprintf(buf, sizeof(buf), "%" PRIu64, st->operations);
    kv(t, "operations:", buf);
    if (st->metrics_address[0]) {
        snprintf(buf, sizeof(buf), "GET /metrics on %s", st->metrics_address);
        kv(t, "metrics:", buf);
    } else {
        kv(t, "metrics:", "no endpoint (pythreadd --metrics); pythreadctl metrics prints them");
    }
    snprintf(buf, sizeof(buf),
             "%" PRIu64 " found, %" PRIu64 " standing (pythreadctl deadlocks shows them)",
             st->deadlocks_found, st->deadlocks_standing);
    kv(t, "deadlocks:", buf);
    state_row(t, st);
    cluster_row(t, st);
    snprintf(buf, sizeof(buf),
             "frame %u bytes, sessions %u, objects %u, handles/session %u, waiters/session %u, "
             "unread output/session %u bytes",
             st->max_frame, st->max_sessions, st->max_objects, st->max_handles_per_session,
             st->max_waiters_per_session, st->max_output);
    kv(t, "limits:", buf);
    snprintf(buf, sizeof(buf),
             "sessions %u, objects %u, handles %u, waiters %u, unread output %u bytes, "
             "held input %u bytes (root: sessions only)",
             st->max_sessions_per_uid, st->max_objects_per_uid, st->max_handles_per_uid,
             st->max_waiters_per_uid, st->max_output_per_uid, st->max_input_per_uid);
    kv(t, "per uid:", buf);
    /* A key: value list has no header to show. */
    pt_cli plain = *cli;
    plain.no_legend = 1;
    pt_table_print(t, &plain, stdout);
}

int pt_cmd_status(pt_cli *cli, int argc, char **argv)
{
    pt_inspect_status st;
    pt_client *c;
    int code, r;

    if (!(c = no_args_client(cli, "status", argc, argv, &code)))
        return code;
    if ((r = pt_inspect_status_get(c, &st)) < 0)
        return pt_cli_lib_fail("status", r);
    if (cli->json)
        status_json(&st);
    else
        status_table(cli, &st);
    return PT_EXIT_OK;
}

/* ---- list -------------------------------------------------------------- */

static void mode_str(char *buf, size_t len, uint32_t mode)
{
    snprintf(buf, len, "%04o", mode);
}

/* Fields of the state: null for an object we may not read. */
static void json_hbool(pt_json *j, const pt_inspect_object *o, const char *key, int v)
{
    if (o->hidden)
        pt_json_null(j, key);
    else
        pt_json_bool(j, key, v);
}

static void json_hint(pt_json *j, const pt_inspect_object *o, const char *key, int64_t v)
{
    if (o->hidden)
        pt_json_null(j, key);
    else
        pt_json_int(j, key, v);
}

static void object_json(pt_json *j, const pt_inspect_object *o)
{
    char buf[64];

    pt_json_str(j, "name", o->name);
    pt_json_str(j, "kind", pt_cli_kind_word(o->kind));
    pt_cli_state_word(buf, sizeof(buf), o);
    if (o->hidden)
        pt_json_null(j, "state");
    else
        pt_json_str(j, "state", buf);
    json_hint(j, o, "waiters", o->waiters);
    pt_json_uint(j, "uid", o->uid);
    pt_json_uint(j, "gid", o->gid);
    mode_str(buf, sizeof(buf), o->mode);
    pt_json_str(j, "mode", buf);
    pt_json_bool(j, "transient", o->transient);
    pt_json_bool(j, "unlinked", o->unlinked);
    pt_json_bool(j, "hidden", o->hidden);
    json_hint(j, o, "refs", o->refs);
    if (o->hidden) {
        pt_json_null(j, "token");
        pt_json_null(j, "restart");
    } else {
        pt_json_uint(j, "token", o->token);
        pt_json_str(j, "restart", restart_word(o->restart));
    }
    if (o->deadlock)
        pt_json_uint(j, "deadlock", o->deadlock);
    else
        pt_json_null(j, "deadlock");
    switch (o->kind) {
    case PT_KIND_LOCK:
    case PT_KIND_RLOCK:
        json_hbool(j, o, "locked", o->locked);
        break;
    case PT_KIND_CONDITION:
        json_hbool(j, o, "locked", o->locked);
        if (o->cond_lock[0])
            pt_json_str(j, "lock", o->cond_lock);
        else
            pt_json_null(j, "lock");
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        json_hint(j, o, "value", o->value);
        json_hint(j, o, "initial", o->initial);
        pt_json_bool(j, "owned", o->owned);
        break;
    case PT_KIND_EVENT:
        json_hbool(j, o, "is_set", o->is_set);
        break;
    case PT_KIND_BARRIER:
        json_hint(j, o, "parties", o->parties);
        json_hint(j, o, "n_waiting", o->n_waiting);
        json_hbool(j, o, "broken", o->broken);
        if (o->timeout >= 0 && !o->hidden)
            pt_json_num(j, "timeout", o->timeout);
        else
            pt_json_null(j, "timeout");
        break;
    default:
        break;
    }
}

typedef struct list_ctx {
    pt_table *t;
    pt_json *j;
    size_t n;
} list_ctx;

/* The list's flags: transient, unlinked, and what the last restart did
 * when that is more than restoring it. */
static void flags_text(char *buf, size_t len, const pt_inspect_object *o)
{
    const char *words[3];
    size_t n = 0, used = 0;

    if (o->transient)
        words[n++] = "transient";
    if (o->unlinked)
        words[n++] = "unlinked";
    if (!o->hidden && o->restart > PT_RESTART_RESTORED)
        words[n++] = restart_word(o->restart);
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", words[i]);
    if (n == 0)
        snprintf(buf, len, "-");
}

static int list_one(void *arg, const pt_inspect_object *o)
{
    list_ctx *x = arg;
    char state[64], waiters[16], uid[96], mode[16], flags[48];

    x->n++;
    if (x->j) {
        pt_json_obj(x->j, NULL);
        object_json(x->j, o);
        pt_json_end(x->j);
        return 0;
    }
    pt_cli_state_word(state, sizeof(state), o);
    snprintf(waiters, sizeof(waiters), "%u", o->waiters);
    if (o->hidden) { /* the object's mode does not let us read it */
        snprintf(state, sizeof(state), "-");
        snprintf(waiters, sizeof(waiters), "-");
    }
    pt_fmt_uid(uid, sizeof(uid), o->uid);
    mode_str(mode, sizeof(mode), o->mode);
    flags_text(flags, sizeof(flags), o);
    {
        const char *row[7] = {o->name, pt_cli_kind_word(o->kind), state, waiters, uid, mode, flags};

        pt_table_row(x->t, row);
    }
    return 0;
}

int pt_cmd_list(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
                                         {"cluster", no_argument, NULL, 'C'},
                                         {NULL, 0, NULL, 0}};
    static const char *const hdr[7] = {"NAME", "KIND", "STATE", "WAITERS", "UID", "MODE", "FLAGS"};
    const pt_cli_command *cmd = pt_cli_find("list");
    const char *glob = NULL;
    list_ctx x = {0};
    pt_client *c;
    int ch, kind = 0, cluster = 0, code, r;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "k:", opts)) != -1) {
        if (ch == 'h')
            return PT_EXIT_OK;
        if (ch == 'C') {
            cluster = 1;
            continue;
        }
        if (ch != 'k')
            return PT_EXIT_USAGE;
        if (!(kind = pt_cli_kind_parse(optarg)))
            return pt_cli_usage("list",
                                "unknown kind '%s'; use lock, rlock, condition, semaphore, "
                                "bounded_semaphore, event or barrier",
                                optarg);
    }
    if (optind < argc)
        glob = argv[optind++];
    if (optind < argc)
        return pt_cli_usage("list", "unexpected argument '%s' (one pattern at most)", argv[optind]);
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    if (cli->json) {
        x.j = pt_json_new(stdout);
        pt_json_obj(x.j, NULL);
        pt_json_arr(x.j, "objects");
    } else {
        x.t = pt_table_new(7, hdr);
    }
    r = (cluster ? pt_inspect_cluster_list : pt_inspect_list)(c, glob, kind, list_one, &x);
    if (x.j) {
        pt_json_end(x.j);
        pt_json_end(x.j);
        if (r < 0) {
            /* The document is cut short: say so on stderr, exit non-zero. */
            pt_json_finish(x.j);
            return pt_cli_lib_fail("list", r);
        }
        return finish_json(x.j);
    }
    if (r < 0) {
        pt_table_print(x.t, cli, stdout);
        return pt_cli_lib_fail("list", r);
    }
    pt_table_print(x.t, cli, stdout);
    if (!cli->no_legend && cli->tty)
        printf("\n%zu object%s listed.\n", x.n, x.n == 1 ? "" : "s");
    return PT_EXIT_OK;
}

/* ---- show -------------------------------------------------------------- */

static void party_json(pt_json *j, const pt_inspect_party *p, int index)
{
    pt_json_obj(j, NULL);
    if (index >= 0)
        pt_json_int(j, "position", index);
    pt_json_uint(j, "session", p->session);
    pt_json_int(j, "pid", p->pid);
    pt_json_uint(j, "uid", p->uid);
    if (p->thread)
        pt_json_uint(j, "thread", p->thread);
    else
        pt_json_null(j, "thread");
    pt_json_str(j, "process", p->process);
    if (p->host[0])
        pt_json_str(j, "host", p->host);
    if (p->seconds >= 0)
        pt_json_num(j, "seconds", p->seconds);
    else
        pt_json_null(j, "seconds");
    pt_json_uint(j, "count", p->count);
    pt_json_str(j, "what", p->what);
    pt_json_bool(j, "connection_kept", p->connection_kept);
    if (p->deadlock)
        pt_json_uint(j, "deadlock", p->deadlock);
    else
        pt_json_null(j, "deadlock");
    if (p->waits[0]) {
        pt_json_obj(j, "waits");
        pt_json_str(j, "kind", pt_cli_kind_word(p->waits_kind));
        pt_json_str(j, "name", p->waits);
        pt_json_bool(j, "owner", p->waits_owner);
        pt_json_end(j);
    } else {
        pt_json_null(j, "waits");
    }
    pt_json_end(j);
}

static void show_json(const pt_inspect_detail *d)
{
    const pt_inspect_object *o = &d->object;
    pt_json *j = pt_json_new(stdout);

    pt_json_obj(j, NULL);
    pt_json_obj(j, "object");
    object_json(j, o);
    if (o->hidden) {
        pt_json_null(j, "counters");
    } else {
        pt_json_obj(j, "counters");
        pt_json_uint(j, "acquires", o->acquires);
        pt_json_uint(j, "contended", o->contended);
        pt_json_uint(j, "handed", o->handed);
        pt_json_uint(j, "timeouts", o->timeouts);
        pt_json_num(j, "longest_wait_seconds", o->longest_wait);
        pt_json_num(j, "longest_hold_seconds", o->longest_hold);
        pt_json_end(j);
    }
    pt_json_end(j);
    pt_json_bool(j, "detail_denied", d->detail_denied);
    pt_json_arr(j, "holders");
    for (size_t i = 0; i < d->n_holders; i++)
        party_json(j, &d->holders[i], -1);
    pt_json_end(j);
    pt_json_arr(j, "waiters");
    for (size_t i = 0; i < d->n_waiters; i++)
        party_json(j, &d->waiters[i], (int)i);
    pt_json_end(j);
    pt_json_uint(j, "more_waiters", d->more_waiters);
    pt_json_end(j);
    finish_json(j);
}

static void params_text(char *buf, size_t len, const pt_inspect_object *o)
{
    char t[32];

    /* A Condition's lock is a name, public; the rest is state. */
    if (o->hidden && o->kind != PT_KIND_CONDITION) {
        snprintf(buf, len, "not shown");
        return;
    }
    switch (o->kind) {
    case PT_KIND_CONDITION:
        snprintf(buf, len, "lock=%s", o->cond_lock[0] ? o->cond_lock : "(its own RLock)");
        break;
    case PT_KIND_SEMAPHORE:
    case PT_KIND_BOUNDED_SEMAPHORE:
        snprintf(buf, len, "value=%" PRId64 "%s, permits %s", o->initial,
                 o->kind == PT_KIND_BOUNDED_SEMAPHORE ? " (bound)" : "",
                 o->owned ? "owned (given back when a session ends)" : "not owned");
        break;
    case PT_KIND_BARRIER:
        if (o->timeout >= 0)
            snprintf(t, sizeof(t), "%gs", o->timeout);
        else
            snprintf(t, sizeof(t), "none");
        snprintf(buf, len, "parties=%u, timeout=%s", o->parties, t);
        break;
    default:
        snprintf(buf, len, "-");
        break;
    }
}

/* show's WHAT: the role, an RLock's depth, what a holder waits for now
 * and the deadlock it is in. */
static void what_text(char *buf, size_t len, const pt_inspect_party *p)
{
    size_t n = (size_t)snprintf(buf, len, "%s", p->what);

    if (p->count > 1 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " x%" PRIu64, p->count);
    if (p->waits[0] && n < len)
        n += (size_t)snprintf(buf + n, len - n,
                              p->waits_owner ? "; waits for %s '%s'"
                                             : "; waits on %s '%s', an object with no owner",
                              pt_kind_name(p->waits_kind), p->waits);
    if (p->deadlock && n < len)
        snprintf(buf + n, len - n, " [deadlock #%" PRIu64 "]", p->deadlock);
}

static void parties_table(const pt_cli *cli, const char *title, const pt_inspect_party *v, size_t n)
{
    static const char *const hdr[8] = {"#",      "SESSION", "PID",  "UID",
                                       "THREAD", "PROCESS", "TIME", "WHAT"};
    pt_table *t;

    printf("\n%s:%s\n", title, n ? "" : " none");
    if (!n)
        return;
    t = pt_table_new(8, hdr);
    for (size_t i = 0; i < n; i++) {
        char pos[24], sess[PT_INSPECT_TEXT_MAX + 48], pid[24], uid[96], thr[24], dur[32],
            what[PT_INSPECT_TEXT_MAX + 96];

        snprintf(pos, sizeof(pos), "%zu", i + 1);
        snprintf(sess, sizeof(sess), "%s%s%" PRIu64 "%s", v[i].host, v[i].host[0] ? "/" : "",
                 v[i].session, v[i].connection_kept ? " (kept)" : "");
        snprintf(pid, sizeof(pid), "%ld", v[i].pid);
        pt_fmt_uid(uid, sizeof(uid), v[i].uid);
        if (v[i].thread)
            snprintf(thr, sizeof(thr), "%" PRIu64, v[i].thread);
        else
            snprintf(thr, sizeof(thr), "-");
        pt_fmt_duration(dur, sizeof(dur), v[i].seconds);
        what_text(what, sizeof(what), &v[i]);
        {
            const char *row[8] = {pos, sess, pid, uid, thr, v[i].process[0] ? v[i].process : "-",
                                  dur, what};

            pt_table_row(t, row);
        }
    }
    pt_table_print(t, cli, stdout);
}

/* show's rows from the state on: "not shown" where the object's mode does
 * not let us read it. */
static void show_state_rows(pt_table *t, const pt_inspect_object *o)
{
    const char *flags = o->transient ? (o->unlinked ? ", transient, unlinked" : ", transient")
                                     : (o->unlinked ? ", unlinked" : "");
    char buf[600], w[32], h[32], u[96], g[96];

    pt_cli_state_word(w, sizeof(w), o);
    if (o->hidden)
        snprintf(buf, sizeof(buf), "not shown%s", flags);
    else
        snprintf(buf, sizeof(buf), "%s, %u waiting%s", w, o->waiters, flags);
    kv(t, "state:", buf);
    snprintf(buf, sizeof(buf), "%" PRIu64, o->token);
    kv(t, "fencing token:", o->hidden ? "-" : buf);
    pt_fmt_uid(u, sizeof(u), o->uid);
    pt_fmt_gid(g, sizeof(g), o->gid);
    snprintf(buf, sizeof(buf), "user %s, group %s, mode %04o", u, g, o->mode);
    kv(t, "owner:", buf);
    snprintf(buf, sizeof(buf), "%u", o->refs);
    kv(t, "references:", o->hidden ? "-" : buf);
    kv(t, "restart:", o->hidden ? "not shown" : restart_marks[restart_index(o->restart)].text);
    if (o->deadlock) {
        snprintf(buf, sizeof(buf),
                 "in deadlock #%" PRIu64 ", standing: its owners wait for each other (see "
                 "pythreadctl deadlocks)",
                 o->deadlock);
        kv(t, "deadlock:", buf);
    }
    pt_fmt_duration(w, sizeof(w), o->longest_wait);
    pt_fmt_duration(h, sizeof(h), o->longest_hold);
    snprintf(buf, sizeof(buf),
             "acquires %" PRIu64 ", contended %" PRIu64 " (handed on through the word %" PRIu64
             "), timeouts %" PRIu64 ", longest wait %s, longest hold %s",
             o->acquires, o->contended, o->handed, o->timeouts, w, h);
    kv(t, "counters:", o->hidden ? "not shown" : buf);
}

static void show_table(const pt_cli *cli, const pt_inspect_detail *d)
{
    static const char *const hdr[2] = {"FIELD", "VALUE"};
    const pt_inspect_object *o = &d->object;
    pt_table *t = pt_table_new(2, hdr);
    pt_cli plain = *cli;
    char buf[600];

    kv(t, "name:", o->name);
    kv(t, "kind:", pt_cli_kind_word(o->kind));
    params_text(buf, sizeof(buf), o);
    kv(t, "parameters:", buf);
    show_state_rows(t, o);
    plain.no_legend = 1;
    pt_table_print(t, &plain, stdout);
    if (d->detail_denied || o->hidden) {
        printf("\nstate, counters, holders and waiters: not shown, the object's mode %04o does "
               "not let you read it\n",
               o->mode);
        return;
    }
    parties_table(cli, "holders", d->holders, d->n_holders);
    parties_table(cli, "waiters (in the order they will be served)", d->waiters, d->n_waiters);
    if (d->more_waiters)
        printf("... and %u more not shown\n", d->more_waiters);
}

int pt_cmd_show(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"cluster", no_argument, NULL, 'C'}, {NULL, 0, NULL, 0}};
    const pt_cli_command *cmd = pt_cli_find("show");
    pt_inspect_detail *d;
    pt_client *c;
    int ch, cluster = 0, code, r;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "", opts)) != -1) {
        if (ch != 'C')
            return ch == 'h' ? PT_EXIT_OK : PT_EXIT_USAGE;
        cluster = 1;
    }
    if (optind >= argc)
        return pt_cli_usage("show", "which object? give its NAME");
    if (optind + 1 < argc)
        return pt_cli_usage("show", "unexpected argument '%s' (one NAME)", argv[optind + 1]);
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    r = (cluster ? pt_inspect_cluster_show : pt_inspect_show)(c, argv[optind], &d);
    if (r < 0)
        return pt_cli_lib_fail("show", r);
    if (cli->json)
        show_json(d);
    else
        show_table(cli, d);
    pt_inspect_detail_free(d);
    return PT_EXIT_OK;
}

/* ---- sessions ---------------------------------------------------------- */

typedef struct sess_ctx {
    pt_table *t;
    pt_json *j;
    pt_client *c;
    uint64_t self;
    size_t n;
} sess_ctx;

static int session_one(void *arg, const pt_inspect_session *s)
{
    sess_ctx *x = arg;
    char id[24], pid[24], uid[96], since[32], handles[16], held[16], waiting[16];

    x->n++;
    /* Known once the first page came back on our session. */
    if (!x->self)
        x->self = pt_client_session_id(x->c);
    if (x->j) {
        pt_json_obj(x->j, NULL);
        pt_json_uint(x->j, "id", s->id);
        pt_json_int(x->j, "pid", s->pid);
        pt_json_uint(x->j, "uid", s->uid);
        pt_json_uint(x->j, "gid", s->gid);
        pt_json_str(x->j, "process", s->process);
        pt_json_num(x->j, "connected_at", s->since);
        pt_json_uint(x->j, "handles", s->handles);
        pt_json_uint(x->j, "held", s->held);
        pt_json_uint(x->j, "waiting", s->waiting);
        pt_json_uint(x->j, "requests", s->requests);
        pt_json_bool(x->j, "resumed", s->resumed);
        pt_json_bool(x->j, "connection_kept", s->connection_kept);
        pt_json_bool(x->j, "self", s->id == x->self);
        pt_json_end(x->j);
        return 0;
    }
    snprintf(id, sizeof(id), "%" PRIu64 "%s", s->id, s->id == x->self ? "*" : "");
    snprintf(pid, sizeof(pid), "%ld", s->pid);
    pt_fmt_uid(uid, sizeof(uid), s->uid);
    pt_fmt_ago(since, sizeof(since), s->since);
    if (s->connection_kept) /* the same connection, across a restart */
        snprintf(since + strlen(since), sizeof(since) - strlen(since), " (kept)");
    snprintf(handles, sizeof(handles), "%u", s->handles);
    snprintf(held, sizeof(held), "%u", s->held);
    snprintf(waiting, sizeof(waiting), "%u", s->waiting);
    {
        const char *row[8] = {id,    pid,     uid,  s->process[0] ? s->process : "-",
                              since, handles, held, waiting};

        pt_table_row(x->t, row);
    }
    return 0;
}

int pt_cmd_sessions(pt_cli *cli, int argc, char **argv)
{
    static const char *const hdr[8] = {"ID",        "PID",     "UID",  "PROCESS",
                                       "CONNECTED", "HANDLES", "HELD", "WAITING"};
    sess_ctx x = {0};
    pt_client *c;
    int code, r;

    if (!(c = no_args_client(cli, "sessions", argc, argv, &code)))
        return code;
    if (cli->json) {
        x.j = pt_json_new(stdout);
        pt_json_obj(x.j, NULL);
        pt_json_arr(x.j, "sessions");
    } else {
        x.t = pt_table_new(8, hdr);
    }
    x.c = c;
    r = pt_inspect_sessions(c, session_one, &x);
    if (x.j) {
        pt_json_end(x.j);
        pt_json_end(x.j);
        if (r < 0) {
            pt_json_finish(x.j);
            return pt_cli_lib_fail("sessions", r);
        }
        return finish_json(x.j);
    }
    pt_table_print(x.t, cli, stdout);
    if (r < 0)
        return pt_cli_lib_fail("sessions", r);
    if (!cli->no_legend && cli->tty)
        printf("\n%zu session%s (* marks this one).\n", x.n, x.n == 1 ? "" : "s");
    return PT_EXIT_OK;
}

/* ---- metrics ------------------------------------------------------------- */

int pt_cmd_metrics(pt_cli *cli, int argc, char **argv)
{
    pt_client *c;
    char *text;
    size_t len;
    int code, r;

    if (cli->json)
        return pt_cli_usage("metrics", "--json does not apply: the metrics are Prometheus text");
    if (!(c = no_args_client(cli, "metrics", argc, argv, &code)))
        return code;
    if ((r = pt_inspect_metrics(c, &text, &len)) < 0)
        return pt_cli_lib_fail("metrics", r);
    /* The daemon's text as it is: a scraper's parser reads it. */
    r = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
    free(text);
    return r ? PT_EXIT_OK : pt_cli_fail(PT_EXIT_FAILED, "metrics: cannot write the text");
}

/* ---- deadlocks --------------------------------------------------------- */

static const char *const deadlock_states[] = {
    [PT_DEADLOCK_STANDING] = "standing",
    [PT_DEADLOCK_FAILED] = "failed",
    [PT_DEADLOCK_BROKEN] = "broken",
};

static const char *deadlock_state_word(pt_deadlock_state s)
{
    return (unsigned)s <= PT_DEADLOCK_BROKEN ? deadlock_states[s] : "broken";
}

/* The member that holds what members[i] waits for is the next one; the
 * one members[i] holds is what the one before waits for (NULL when the
 * daemon kept too few to say). */
static const pt_inspect_deadlock_member *held_by(const pt_inspect_deadlock *d, size_t i)
{
    size_t h = (i + d->size - 1) % d->size;

    return h < d->n_members ? &d->members[h] : NULL;
}

static void waits_text(char *buf, size_t len, const pt_inspect_deadlock_member *m)
{
    size_t n = (size_t)snprintf(buf, len, "%s '%s'", pt_kind_name(m->waits_kind), m->waits);

    if (m->via[0] && n < len)
        n += (size_t)snprintf(buf + n, len - n, " through Condition '%s'", m->via);
    if (m->reacquire && n < len)
        snprintf(buf + n, len - n, " (taking it back after a wait)");
}

static void named_json(pt_json *j, const char *key, pt_kind kind, const char *name)
{
    pt_json_obj(j, key);
    pt_json_str(j, "kind", pt_cli_kind_word(kind));
    pt_json_str(j, "name", name);
    pt_json_end(j);
}

static void member_json(pt_json *j, const pt_inspect_deadlock *d, size_t i)
{
    const pt_inspect_deadlock_member *m = &d->members[i], *h = held_by(d, i);

    pt_json_obj(j, NULL);
    pt_json_bool(j, "hidden", m->hidden);
    if (m->hidden) {
        pt_json_null(j, "session");
    } else {
        pt_json_uint(j, "session", m->session);
        pt_json_int(j, "pid", m->pid);
        pt_json_uint(j, "uid", m->uid);
        pt_json_uint(j, "thread", m->thread);
        pt_json_str(j, "process", m->process);
        pt_json_uint(j, "request", m->request);
    }
    if (h)
        named_json(j, "holds", h->waits_kind, h->waits);
    else
        pt_json_null(j, "holds");
    named_json(j, "waits", m->waits_kind, m->waits);
    if (m->via[0])
        pt_json_str(j, "via", m->via);
    else
        pt_json_null(j, "via");
    pt_json_bool(j, "reacquire", m->reacquire);
    pt_json_bool(j, "closed_cycle", i == 0);
    pt_json_end(j);
}

static void deadlock_json(pt_json *j, const pt_inspect_deadlock *d)
{
    pt_json_obj(j, NULL);
    pt_json_uint(j, "id", d->id);
    pt_json_str(j, "state", deadlock_state_word(d->state));
    pt_json_num(j, "found_at", d->found);
    if (d->state == PT_DEADLOCK_STANDING)
        pt_json_null(j, "ended_at");
    else
        pt_json_num(j, "ended_at", d->ended);
    pt_json_uint(j, "size", d->size);
    if (d->state == PT_DEADLOCK_BROKEN) {
        pt_json_obj(j, "broken");
        pt_json_uint(j, "member", d->broke);
        pt_json_str(j, "by", d->released ? "lock released" : "wait ended");
        pt_json_end(j);
    } else {
        pt_json_null(j, "broken");
    }
    pt_json_arr(j, "members");
    for (size_t i = 0; i < d->n_members; i++)
        member_json(j, d, i);
    pt_json_end(j);
    pt_json_end(j);
}

/* "standing since ...", "failed at once ...", "broken ...: the wait of
 * session 7 thread 12 for Lock 'x' ended". */
static void deadlock_heading(char *buf, size_t len, const pt_inspect_deadlock *d)
{
    const pt_inspect_deadlock_member *m = d->broke < d->n_members ? &d->members[d->broke] : NULL;
    const pt_inspect_deadlock_member *h = m ? held_by(d, d->broke) : NULL;
    char found[96], ended[96];
    size_t n;

    pt_fmt_time_ago(found, sizeof(found), d->found);
    pt_fmt_time_ago(ended, sizeof(ended), d->ended);
    n = (size_t)snprintf(buf, len, "deadlock #%" PRIu64 ": %zu owner%s, %s", d->id, d->size,
                         d->size == 1 ? "" : "s", deadlock_state_word(d->state));
    if (d->state == PT_DEADLOCK_STANDING && n < len)
        snprintf(buf + n, len - n, " since %s: these waits go on until one ends", found);
    else if (d->state == PT_DEADLOCK_FAILED && n < len)
        snprintf(buf + n, len - n, " at %s: the wait that closed it failed with a deadlock error",
                 found);
    else if (d->released && h && n < len)
        n += (size_t)snprintf(buf + n, len - n, " %s (found %s): %s '%s' was released", ended,
                              found, pt_kind_name(h->waits_kind), h->waits);
    else if (m && n < len)
        n += (size_t)snprintf(buf + n, len - n, " %s (found %s): the wait for %s '%s' ended", ended,
                              found, pt_kind_name(m->waits_kind), m->waits);
    /* whose: the member that held what was released, or waited */
    if (m && !m->hidden && d->state == PT_DEADLOCK_BROKEN && n < len)
        snprintf(buf + n, len - n, ", %s session %" PRIu64 " (pid %ld) thread %" PRIu64,
                 d->released ? "held by" : "of", m->session, m->pid, m->thread);
}

static void deadlock_table(const pt_cli *cli, const pt_inspect_deadlock *d)
{
    static const char *const hdr[8] = {"#",      "SESSION", "PID",   "UID",
                                       "THREAD", "PROCESS", "HOLDS", "WAITS FOR"};
    char heading[PT_INSPECT_TEXT_MAX * 2 + 160];
    pt_table *t = pt_table_new(8, hdr);

    deadlock_heading(heading, sizeof(heading), d);
    printf("%s\n", heading);
    for (size_t i = 0; i < d->n_members; i++) {
        const pt_inspect_deadlock_member *m = &d->members[i], *h = held_by(d, i);
        char pos[24], sess[24], pid[24], uid[96], thr[24], holds[PT_INSPECT_TEXT_MAX + 32];
        char waits[PT_INSPECT_TEXT_MAX * 2 + 96];

        /* * marks the wait that closed the cycle */
        snprintf(pos, sizeof(pos), "%zu%s", i + 1, i == 0 ? "*" : "");
        snprintf(sess, sizeof(sess), "%" PRIu64, m->session);
        snprintf(pid, sizeof(pid), "%ld", m->pid);
        pt_fmt_uid(uid, sizeof(uid), m->uid);
        snprintf(thr, sizeof(thr), "%" PRIu64, m->thread);
        if (h)
            snprintf(holds, sizeof(holds), "%s '%s'", pt_kind_name(h->waits_kind), h->waits);
        else
            snprintf(holds, sizeof(holds), "?");
        waits_text(waits, sizeof(waits), m);
        {
            const char *row[8] = {pos,
                                  m->hidden ? "-" : sess,
                                  m->hidden ? "-" : pid,
                                  m->hidden ? "-" : uid,
                                  m->hidden ? "-" : thr,
                                  m->hidden       ? "(not shown)"
                                  : m->process[0] ? m->process
                                                  : "-",
                                  holds,
                                  waits};

            pt_table_row(t, row);
        }
    }
    pt_table_print(t, cli, stdout);
    if (d->n_members < d->size)
        printf("... and %zu more owners not kept\n", d->size - d->n_members);
}

typedef struct deadlocks_ctx {
    const pt_cli *cli;
    pt_json *j;
    size_t n;
} deadlocks_ctx;

static int deadlock_one(void *arg, const pt_inspect_deadlock *d)
{
    deadlocks_ctx *x = arg;

    if (x->j)
        deadlock_json(x->j, d);
    else
        deadlock_table(x->cli, d);
    if (!x->j)
        printf("\n");
    x->n++;
    return 0;
}

int pt_cmd_deadlocks(pt_cli *cli, int argc, char **argv)
{
    deadlocks_ctx x = {.cli = cli};
    uint64_t found = 0;
    uint32_t more = 0;
    pt_client *c;
    int code, r;

    if (!(c = no_args_client(cli, "deadlocks", argc, argv, &code)))
        return code;
    if (cli->json) {
        x.j = pt_json_new(stdout);
        pt_json_obj(x.j, NULL);
        pt_json_arr(x.j, "deadlocks");
    }
    r = pt_inspect_deadlocks(c, deadlock_one, &x, &found, &more);
    if (x.j) {
        pt_json_end(x.j);
        pt_json_uint(x.j, "found", found);
        pt_json_uint(x.j, "more", more);
        pt_json_end(x.j);
        if (r < 0) {
            pt_json_finish(x.j);
            return pt_cli_lib_fail("deadlocks", r);
        }
        return finish_json(x.j);
    }
    if (r < 0)
        return pt_cli_lib_fail("deadlocks", r);
    if (more)
        printf("... and %u more deadlocks not shown to fit one answer\n", more);
    if (!cli->no_legend)
        printf("%" PRIu64 " deadlock%s found since the daemon's state began%s\n", found,
               found == 1 ? "" : "s",
               x.n ? "; * marks the wait that closed each cycle, each owner holds what the one "
                     "above it waits for (the first, what the last waits for)"
                   : ", none standing or kept");
    return PT_EXIT_OK;
}
