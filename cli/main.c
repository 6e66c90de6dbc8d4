/*
 * main.c - pythreadctl: the command table, the options every command
 * shares, --help and --version, and the mapping of failures to exit codes.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"

const pt_cli_command pt_cli_commands[] = {
    {"status", pt_cmd_status, "",
     "show the daemon's version, pid, uptime, socket, sessions, objects and limits",
     "Shows the daemon's version, pid, uptime, socket path, the number of sessions,\n"
     "the objects it hosts by kind, the calls waiting, the requests served since it\n"
     "started, the deadlocks found and standing, the limits in force, and where its\n"
     "state is kept (--state-dir: what this start restored, and when the last\n"
     "restart was done and what it did to the objects) or that it ends with the\n"
     "daemon.\n"},
    {"list", pt_cmd_list, "[--kind KIND] [--cluster] [GLOB]",
     "list objects with kind, state, waiters, owner and mode",
     "Lists every object (or those whose name matches the shell pattern GLOB, and\n"
     "of kind KIND) oldest first: name, kind, a one-word state (locked/free for\n"
     "locks and conditions; the value, or value/bound, for semaphores; set/clear\n"
     "for events; n_waiting/parties or broken for barriers), the calls waiting on\n"
     "it, the uid that created it, its mode and its flags (transient, unlinked,\n"
     "and what the last restart did to it: reclaimed, released or in_grace).\n"
     "\n"
     "  -k, --kind KIND   lock, rlock, condition, semaphore, bounded_semaphore,\n"
     "                    event or barrier\n"
     "  --cluster         the cluster's objects (pythreadd --etcd), not the host's\n"},
    {"show", pt_cmd_show, "[--cluster] NAME",
     "show everything about one object: state, holders, waiters, counters",
     "Shows one object: its kind and creation parameters, its state and fencing\n"
     "token, what the daemon's last restart did to it (restored as journaled,\n"
     "reclaimed from a process's shared word, released because its holder's\n"
     "session was not taken up, or in grace while a holder's process is not back),\n"
     "who holds it (session, pid, uid, thread, process and for how long),\n"
     "who waits for it in the order they will be served, and its counters\n"
     "(acquires, contended acquires and how many of a Lock's or RLock's were\n"
     "handed on through its shared word, timeouts, longest wait, longest hold).\n"
     "Holders and waiters are shown only to users the object's mode lets read it.\n"
     "\n"
     "  --cluster   the cluster's object (pythreadd --etcd): each holder and waiter\n"
     "              is shown as HOST/SESSION, its pid on that host\n"},
    {"sessions", pt_cmd_sessions, "",
     "list connected sessions with pid, uid, process and what they hold",
     "Lists every connected session in the order they connected: id, pid, uid,\n"
     "process name, how long ago it connected, open handles, objects held and calls\n"
     "waiting.\n"
     "pythreadctl's own session is among them.\n"},
    {"graph", pt_cmd_graph, "[PATTERN]",
     "print who waits for whom as a Graphviz graph, deadlocks in red",
     "Prints the wait-for graph of the objects whose names match the shell\n"
     "pattern PATTERN (all by default) in Graphviz DOT: each thread of a process\n"
     "that holds or waits (boxes, grouped by process) and each object held or\n"
     "waited for (ellipses); an object points at its holders (\"holds\", with the\n"
     "RLock depth or permits), a thread at what it waits for (dashed, with how:\n"
     "acquire, reacquire, wait, barrier). A cycle of Lock and RLock holds and\n"
     "acquires is red: a deadlock, or one a timeout will break (pythreadctl\n"
     "deadlocks lists only those no timeout can end). Waits on semaphores,\n"
     "events, a Condition's notify and barriers have no one owner to wait for and\n"
     "close no cycle. Draw it with: pythreadctl graph | dot -Tsvg > graph.svg\n"
     "With --json: {\"nodes\": [...], \"edges\": [...], \"cycles\": [[node ids]]}.\n"},
    {"top", pt_cmd_top, "[--once] [--interval S] [PATTERN]",
     "a live view of the busiest objects and the longest holds",
     "Redraws every interval (default 1 s) in the terminal's width: the daemon's\n"
     "sessions, objects and waiting calls; the objects matching PATTERN by\n"
     "acquisitions a second, then by calls waiting (contended acquisitions a second,\n"
     "longest wait, last token); and the sessions holding the longest (objects\n"
     "held, the longest hold and its object). q or ^C quits.\n"
     "\n"
     "  --once            look twice, an interval apart, print one frame and exit\n"
     "                    (with --json: the frame as JSON)\n"
     "  -i, --interval S  seconds between looks (0.1 to 3600)\n"},
    {"metrics", pt_cmd_metrics, "", "print the daemon's metrics as Prometheus text",
     "Prints the daemon's metrics in the Prometheus text format: the same text\n"
     "pythreadd --metrics serves on GET /metrics, taken over the daemon's socket,\n"
     "so no HTTP endpoint is needed (for a node exporter's textfile collector, or a\n"
     "look by hand). Series of single objects (pythreadd --metrics-object) are left\n"
     "out for objects whose mode does not let the caller read them. pythreadd(8)\n"
     "lists every metric.\n"},
    {"deadlocks", pt_cmd_deadlocks, "",
     "list deadlocks: standing ones, then the last ones that failed or broke",
     "Lists the deadlocks the daemon found: cycles of Lock and RLock waits (a\n"
     "Condition wait taking its lock back counts) none of which has a timeout, so\n"
     "none can end by itself. First those standing (their waits go on), oldest\n"
     "first, then the last 16 that no longer stand, newest first: failed (the wait\n"
     "that closed the cycle asked to fail and got a deadlock error) or broken (a wait\n"
     "of it ended, or a lock of it was released). For each, its owners in order:\n"
     "session, pid, uid, thread, process, the lock it holds and the one it waits\n"
     "for, which the next owner holds; the first owner's wait closed the cycle.\n"
     "Owners of objects whose mode does not let you read them are not shown.\n"
     "Semaphores, Events, Conditions waiting for a notify and Barriers have no\n"
     "owner to wait for, and are never part of a deadlock (pythreadctl show says\n"
     "when a lock's holder waits on one).\n"},
    {"create", pt_cmd_create, "KIND NAME... [OPTIONS]",
     "create an object (lock rlock condition semaphore event barrier)",
     "Creates the object NAME of KIND (lock, rlock, condition, semaphore, event or\n"
     "barrier); fails if the name exists. With several names, each is created with\n"
     "the same options; every one is tried and the first failure sets the status.\n"
     "\n"
     "  --value N       semaphore: initial value (default 1)\n"
     "  --bounded       semaphore: a BoundedSemaphore (release past N fails, and a\n"
     "                  session's permits come back when it ends)\n"
     "  --parties N     barrier: parties (required)\n"
     "  --timeout S     barrier: default timeout in seconds (default none)\n"
     "  --lock NAME     condition: over this existing Lock or RLock (default: its\n"
     "                  own RLock)\n"
     "  --mode OCTAL    permission bits (default 0600)\n"
     "  --transient     end the object when its last handle closes (with nobody\n"
     "                  else holding it open, that is at once)\n"
     "  --cluster       the cluster's object, the same on every host (pythreadd\n"
     "                  --etcd); a condition's --lock is then the cluster's too\n"},
    {"unlink", pt_cmd_unlink, "[--cluster] NAME...",
     "remove a name; open handles keep working until closed",
     "Removes each NAME, like sem_unlink(3): processes that have it open keep using\n"
     "it until they close it; a new open creates a new object.\n"
     "\n"
     "  --cluster       the cluster's objects of those names, on every host\n"
     "                  (pythreadd --etcd)\n"},
    {"lock", pt_cmd_lock,
     "NAME [--rlock] [--cluster] [-w S | -n] [-E N] [--lost-signal SIG]\n"
     "       [-- COMMAND [ARGS...] | -c LINE]\n"
     "       pythreadctl lock NAME [--rlock] [--cluster] [-w S | -n] [-E N] [--hold-for PID]",
     "run COMMAND while holding a lock, like flock(1), or hold it",
     "Opens the Lock NAME (an RLock with --rlock), creating it if it does not\n"
     "exist, acquires it, runs COMMAND (or sh -c LINE) while holding it and exits\n"
     "with COMMAND's status (128+N if a signal N killed it). COMMAND finds the\n"
     "lock's name and fencing token in PYTHREAD_LOCK_NAME and PYTHREAD_LOCK_TOKEN.\n"
     "If the lock cannot be had within --wait seconds, or at once with --nonblock,\n"
     "exits 1 (or the -E status) without running COMMAND.\n"
     "\n"
     "COMMAND never runs without the lock. It runs in a process group of its own,\n"
     "unless pythreadctl is in the foreground of a terminal (then it stays in\n"
     "pythreadctl's, to use the terminal). If pythreadctl is killed, even with\n"
     "SIGKILL, the daemon releases the lock and COMMAND is killed, with its own\n"
     "group. SIGHUP, SIGINT, SIGQUIT and SIGTERM are passed on to it, and the lock\n"
     "is held until COMMAND ends. If the session holding the lock ends (pythreadd\n"
     "stopped or restarted: the lock is gone, and another may take it from the\n"
     "new daemon at once), COMMAND gets --lost-signal at once, and pythreadctl\n"
     "exits 4 when it has ended.\n"
     "\n"
     "With no COMMAND, holds the lock until SIGINT, SIGTERM or SIGHUP, then\n"
     "releases it and exits 0. Once held, it prints one line:\n"
     "  holding lock NAME with token T until SIGINT or SIGTERM\n"
     "\n"
     "With --hold-for PID, starts a holder process that holds the lock until\n"
     "process PID ends (however it ends, SIGKILL too) or 'pythreadctl release\n"
     "NAME' is run by PID or a child of it; prints the token once held, and exits\n"
     "0. In a script:\n"
     "  token=$(pythreadctl lock --hold-for $$ NAME) || exit\n"
     "  ...                       # the lock is held\n"
     "  pythreadctl release NAME  # or just exit\n"
     "\n"
     "  --rlock                   the object is an RLock\n"
     "  -w, --wait S              give up after S seconds (default: wait forever)\n"
     "  -n, --nonblock            give up at once if the lock is held\n"
     "  -E, --conflict-exit-code N  the exit status when the lock is not had\n"
     "                            (0 to 255; default 1)\n"
     "  -c, --command LINE        run sh -c LINE as COMMAND\n"
     "  --hold-for PID            hold until process PID ends (no COMMAND)\n"
     "  --mode OCTAL              permission bits if the lock is created (default 0600)\n"
     "  --lost-signal SIG         sent to COMMAND when the lock is lost (name or\n"
     "                            number; default TERM)\n"
     "  --cluster                 the cluster's lock, the same on every host\n"
     "                            (pythreadd --etcd)\n"},
    {"sem", pt_cmd_sem,
     "NAME [-w S | -n] [-E N] [--lost-signal SIG] [-- COMMAND [ARGS...] | -c LINE | "
     "--hold-for PID]",
     "run COMMAND while holding one semaphore permit",
     "As lock, with one permit of the semaphore NAME. A missing semaphore is\n"
     "created as a BoundedSemaphore of --value permits, so a permit taken by a\n"
     "pythreadctl that dies comes back. COMMAND never runs without the permit,\n"
     "as lock says of the lock. A permit has no fencing token: COMMAND gets no\n"
     "PYTHREAD_LOCK_ variables, and --hold-for prints nothing (with --json, the\n"
     "holder's pid).\n"
     "\n"
     "  -w, --wait S              give up after S seconds (default: wait forever)\n"
     "  -n, --nonblock            give up at once if no permit is free\n"
     "  -E, --conflict-exit-code N  the exit status when no permit is had\n"
     "                            (default 1)\n"
     "  -c, --command LINE        run sh -c LINE as COMMAND\n"
     "  --hold-for PID            hold until process PID ends (no COMMAND)\n"
     "  --value N                 permits if the semaphore is created (default 1)\n"
     "  --mode OCTAL              permission bits if it is created (default 0600)\n"
     "  --lost-signal SIG         sent when the permit is lost (default TERM)\n"
     "  --cluster                 the cluster's semaphore (pythreadd --etcd)\n"},
    {"release", pt_cmd_release, "[--force] NAME",
     "end a hold that 'lock --hold-for' or 'sem --hold-for' started",
     "Ends the hold on NAME that 'pythreadctl lock --hold-for PID' (or sem) started:\n"
     "its holder releases the lock (or permit) and exits; release returns once it\n"
     "has. Only a holder started by the same user, for this process or one of its\n"
     "parents (the script that took the hold), is ended: another script's hold\n"
     "stays, unless --force. Fails if NAME has no such holder.\n"
     "\n"
     "  --force   end the holder whichever process it holds for\n"},
    {"event", pt_cmd_event, "set|clear|is-set|wait [--timeout S] [--cluster] NAME",
     "set, clear, test or wait for an Event",
     "set, clear: change the Event NAME (created if missing).\n"
     "is-set: prints set or clear; exits 0 if set, 1 if clear.\n"
     "wait: waits until the event is set (exit 0) or --timeout S passes (exit 1);\n"
     "the event is created if missing.\n"
     "\n"
     "  -t, --timeout S  for wait: give up after S seconds (default: forever)\n"
     "  --cluster        the cluster's event, the same on every host (pythreadd\n"
     "                   --etcd)\n"},
    {"barrier", pt_cmd_barrier,
     "wait [--timeout S] [--cluster] NAME | abort [--cluster] NAME | reset [--cluster] NAME",
     "wait at, abort or reset a Barrier",
     "wait: waits at the existing Barrier NAME until all its parties arrive and\n"
     "prints this party's index; exits 1 if the barrier breaks (a timeout, an\n"
     "abort, a party gone).\n"
     "abort: breaks the barrier. reset: makes a broken barrier usable again.\n"
     "\n"
     "  -t, --timeout S  for wait (default: the barrier's own timeout)\n"
     "  --cluster        the cluster's barrier (pythreadd --etcd)\n"},
    {"notify", pt_cmd_notify, "[--all | -n N] NAME", "wake waiters of a Condition",
     "Acquires the existing Condition NAME's lock, wakes one waiter (N with -n,\n"
     "every waiter with --all), and releases it.\n"
     "\n"
     "  -a, --all       wake every waiter\n"
     "  -n N            wake N waiters (default 1)\n"},
};
const size_t pt_cli_ncommands = sizeof(pt_cli_commands) / sizeof(pt_cli_commands[0]);

static const char common_help[] =
    "Common options (before or after the command):\n"
    "  -s, --socket PATH  the daemon's socket (default: $PYTHREAD_SOCKET, else\n"
    "                     /run/pythread/pythreadd.sock for root; for other users\n"
    "                     their own $XDG_RUNTIME_DIR/pythread/pythreadd.sock (or\n"
    "                     /tmp/pythread-UID/pythreadd.sock) if a daemon listens\n"
    "                     there, else the system's /run/pythread/pythreadd.sock)\n"
    "  -j, --json         one JSON document on stdout (inspection commands), exact:\n"
    "                     uids and gids as numbers, times in seconds since the epoch\n"
    "      --pretty       --json, indented for people\n"
    "      --no-legend    no header line or summary in tables\n"
    "  -h, --help         this help\n";

static const char exit_help[] =
    "Exit status: 0 success, 1 the operation failed or timed out (or COMMAND's\n"
    "own status for lock and sem, whose -E sets the status for not acquired), 2\n"
    "usage error, 3 the daemon cannot be reached, 4 lock and sem: the lock or\n"
    "permit was lost while held.\n";

int pt_cli_fail(int code, const char *fmt, ...)
{
    char text[2048], *safe;
    va_list ap;

    fflush(stdout);
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* The daemon's words quote names: one failure stays one safe line. */
    safe = pt_cli_escape(text);
    fprintf(stderr, PT_CLI_NAME ": %s\n", safe);
    free(safe);
    return code;
}

int pt_cli_usage(const char *cmd, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (cmd)
        return pt_cli_fail(PT_EXIT_USAGE, "%s: %s (see '" PT_CLI_NAME " %s --help')", cmd, text,
                           cmd);
    return pt_cli_fail(PT_EXIT_USAGE, "%s (see '" PT_CLI_NAME " --help')", text);
}

static int exit_code_of(int err)
{
    switch (err) {
    case PT_ECONNECT:
    case PT_ESESSION:
    case PT_EVERSION:
        return PT_EXIT_NODAEMON;
    default:
        return PT_EXIT_FAILED;
    }
}

int pt_cli_lib_fail(const char *what, int err)
{
    const char *msg = pt_last_error_message();

    size_t n = strlen(what);

    if (!msg || !*msg)
        msg = pt_strerror(err);
    /* The daemon's words often name the operation already. */
    if (strncmp(msg, what, n) == 0 && msg[n] == ':')
        return pt_cli_fail(exit_code_of(err), "%s", msg);
    return pt_cli_fail(exit_code_of(err), "%s: %s", what, msg);
}

pt_client *pt_cli_client(pt_cli *cli, int *code)
{
    int r;

    if (cli->client)
        return cli->client;
    r = pt_client_open(&cli->client, cli->socket);
    if (r < 0) {
        const char *msg = pt_last_error_message();

        cli->client = NULL;
        /* The library's words name pythreadd and its socket already. */
        if (msg && strstr(msg, "pythreadd"))
            *code = pt_cli_fail(exit_code_of(r), "%s", msg);
        else
            *code = pt_cli_lib_fail("cannot reach pythreadd", r);
        return NULL;
    }
    return cli->client;
}

const pt_cli_command *pt_cli_find(const char *name)
{
    for (size_t i = 0; i < pt_cli_ncommands; i++)
        if (strcmp(pt_cli_commands[i].name, name) == 0)
            return &pt_cli_commands[i];
    return NULL;
}

static void command_help(const pt_cli_command *cmd)
{
    printf("Usage: " PT_CLI_NAME " %s %s\n\n%s\n%s\n%s", cmd->name, cmd->synopsis, cmd->summary,
           cmd->help, common_help);
    printf("\n%s", exit_help);
}

static void main_help(void)
{
    printf("Usage: " PT_CLI_NAME " [OPTIONS] COMMAND [ARGS...]\n\n"
           "Look inside pythreadd and use its named objects from the shell.\n\n"
           "Commands:\n");
    for (size_t i = 0; i < pt_cli_ncommands; i++)
        printf("  %-10s %s\n", pt_cli_commands[i].name, pt_cli_commands[i].summary);
    printf("\n%s  -V, --version      print the version and exit\n\n%s\n"
           "'" PT_CLI_NAME " COMMAND --help' describes one command.\n",
           common_help, exit_help);
}

enum { OPT_NO_LEGEND = 0x1000, OPT_PRETTY };

static const struct option common_long[] = {
    {"socket", required_argument, NULL, 's'},
    {"json", no_argument, NULL, 'j'},
    {"no-legend", no_argument, NULL, OPT_NO_LEGEND},
    {"pretty", no_argument, NULL, OPT_PRETTY},
    {"help", no_argument, NULL, 'h'},
};
#define NCOMMON  (sizeof(common_long) / sizeof(common_long[0]))
#define MAX_LONG 24

int pt_cli_getopt(pt_cli *cli, const pt_cli_command *cmd, int argc, char **argv,
                  const char *shortopts, const pt_cli_option *longopts)
{
    static struct option all[MAX_LONG];
    static char shorts[64];
    size_t n = 0;
    int ch;

    /* ':' first: a missing argument is reported here, by name. */
    snprintf(shorts, sizeof(shorts), ":s:jh%s", shortopts ? shortopts : "");
    for (size_t i = 0; longopts && longopts[i].name && n < MAX_LONG - NCOMMON - 1; i++)
        all[n++] = longopts[i];
    for (size_t i = 0; i < NCOMMON; i++)
        all[n++] = common_long[i];
    all[n] = (struct option){0};
    for (;;) {
        int prev = optind;

        ch = getopt_long(argc, argv, shorts, all, NULL);
        switch (ch) {
        case 's':
            cli->socket = optarg;
            continue;
        case 'j':
            cli->json = 1;
            continue;
        case OPT_NO_LEGEND:
            cli->no_legend = 1;
            continue;
        case OPT_PRETTY:
            cli->json = 1;
            pt_json_set_pretty(1);
            continue;
        case 'h':
            command_help(cmd);
            return 'h';
        case ':':
            pt_cli_usage(cmd->name, "option %s needs an argument", argv[optind - 1]);
            return '?';
        case '?':
            if (optopt)
                pt_cli_usage(cmd->name, "unknown option -%c", optopt);
            else
                pt_cli_usage(cmd->name, "unknown option %s", argv[prev < argc ? prev : argc - 1]);
            return '?';
        default:
            return ch;
        }
    }
}

int pt_cli_parse_seconds(const char *cmd, const char *opt, const char *arg, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (end == arg || *end || errno || isnan(v) || v < 0)
        return pt_cli_usage(cmd, "%s takes seconds >= 0, not '%s'", opt, arg);
    if (v > PT_TIMEOUT_MAX)
        return pt_cli_usage(cmd, "%s: %s seconds is over the maximum of %.0f", opt, arg,
                            PT_TIMEOUT_MAX);
    *out = v;
    return 0;
}

int pt_cli_parse_u32(const char *cmd, const char *opt, const char *arg, uint32_t min, uint32_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (end == arg || *end || errno || arg[0] == '-' || v < min || v > UINT32_MAX)
        return pt_cli_usage(cmd, "%s takes a whole number from %u to %u, not '%s'", opt, min,
                            UINT32_MAX, arg);
    *out = (uint32_t)v;
    return 0;
}

int pt_cli_parse_i64(const char *cmd, const char *opt, const char *arg, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (end == arg || *end || errno || v < 0)
        return pt_cli_usage(cmd, "%s takes a whole number >= 0, not '%s'", opt, arg);
    *out = v;
    return 0;
}

int pt_cli_parse_mode(const char *cmd, const char *arg, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 8);
    if (end == arg || *end || errno || arg[0] == '-' || v == 0 || v > 0777)
        return pt_cli_usage(cmd, "--mode takes octal permission bits from 1 to 0777, not '%s'",
                            arg);
    *out = (unsigned)v;
    return 0;
}

/* The words are the library's (proto/names.c), shared with the daemon. */
const char *pt_cli_kind_word(int kind)
{
    const char *word = pt_kind_word(kind);

    return word ? word : "unknown";
}

int pt_cli_kind_parse(const char *word)
{
    return pt_kind_parse(word);
}

/* Global options come before the command; getopt stops at the first word
 * that is not one ('+'), which names the command. */
static int parse_global(pt_cli *cli, int argc, char **argv, int *code)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"no-legend", no_argument, NULL, OPT_NO_LEGEND},
        {"pretty", no_argument, NULL, OPT_PRETTY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "+:s:jhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            cli->socket = optarg;
            break;
        case 'j':
            cli->json = 1;
            break;
        case OPT_NO_LEGEND:
            cli->no_legend = 1;
            break;
        case OPT_PRETTY:
            cli->json = 1;
            pt_json_set_pretty(1);
            break;
        case 'h':
            main_help();
            *code = PT_EXIT_OK;
            return -1;
        case 'V':
            printf(PT_CLI_NAME " %s (libpythread %s)\n", PT_VERSION_STRING, PT_VERSION_STRING);
            *code = PT_EXIT_OK;
            return -1;
        case ':':
            *code = pt_cli_usage(NULL, "option %s needs an argument", argv[optind - 1]);
            return -1;
        default:
            *code = optopt ? pt_cli_usage(NULL, "unknown option -%c", optopt)
                           : pt_cli_usage(NULL, "unknown option %s", argv[optind - 1]);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    pt_cli cli = {0};
    const pt_cli_command *cmd;
    int code = PT_EXIT_OK;

    cli.tty = isatty(STDOUT_FILENO);
    if (parse_global(&cli, argc, argv, &code) < 0)
        return code;
    if (optind >= argc)
        return pt_cli_usage(NULL, "no command given");
    cmd = pt_cli_find(argv[optind]);
    if (!cmd)
        return pt_cli_usage(NULL, "unknown command '%s'", argv[optind]);
    argc -= optind;
    argv += optind;
    /* 0, not 1: glibc starts over, so the command's options are found
     * anywhere among its words (the '+' above applied to ours only). */
    optind = 0;
    code = cmd->run(&cli, argc, argv);
    if (cli.client)
        pt_client_close(cli.client);
    if (fflush(stdout) != 0 && code == PT_EXIT_OK)
        code = pt_cli_fail(PT_EXIT_FAILED, "cannot write the output");
    return code;
}
