/*
 * act_cmds.c - the commands that act on named objects, so shell scripts
 * can use them the way they use flock(1): create, unlink, lock/sem around
 * a command, event, barrier and notify.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* The command-line kind word for the library's kind name. */
static const char *kind_word_of(const char *libname, size_t len)
{
    static const struct {
        const char *lib, *word;
    } map[] = {
        {"Lock", "lock"},
        {"RLock", "rlock"},
        {"Condition", "condition"},
        {"Semaphore", "semaphore"},
        {"BoundedSemaphore", "semaphore"},
        {"Event", "event"},
        {"Barrier", "barrier"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].lib) == len && strncmp(map[i].lib, libname, len) == 0)
            return map[i].word;
    return NULL;
}

/*
 * Failure of an operation on NAME: "lock 'jobs': <what went wrong>". The
 * library's words are written for a C caller: "Lock 'jobs': open: ..."
 * names the object the command already named, and its hints name open
 * flags. Here the object is named once, and a hint says what to type.
 */
static int op_fail(const char *cmd, const char *name, int err)
{
    const char *msg = pt_last_error_message(), *rest, *sp, *q, *kind = NULL;
    char other[PT_INSPECT_TEXT_MAX + 32] = "", obj[PT_INSPECT_TEXT_MAX];
    char hint[PT_INSPECT_TEXT_MAX * 2 + 96];
    size_t oplen;

    if (!msg || !*msg)
        msg = pt_strerror(err);
    rest = msg;
    snprintf(obj, sizeof(obj), "%s", name);
    /* "Kind 'object': " first: drop it when it is NAME, keep it otherwise
     * (a Condition's lock) in the command line's words. */
    if ((sp = strchr(msg, ' ')) && sp[1] == '\'' && (q = strstr(sp + 2, "': ")) &&
        (kind = kind_word_of(msg, (size_t)(sp - msg)))) {
        snprintf(obj, sizeof(obj), "%.*s", (int)(q - sp - 2), sp + 2);
        if (strcmp(obj, name) != 0)
            snprintf(other, sizeof(other), "%s '%s': ", kind, obj);
        rest = q + 3;
    }
    /* Then the operation, when it is the command's own or the open every
     * command does first. */
    oplen = strlen(cmd);
    if (strncmp(rest, "open: ", 6) == 0)
        rest += 6;
    else if (strncmp(rest, cmd, oplen) == 0 && strncmp(rest + oplen, ": ", 2) == 0)
        rest += oplen + 2;
    if (err == PT_EEXIST && strncmp(rest, "exists as a", 11) == 0 &&
        (sp = strchr(rest + 11, ' ')) && (q = strchr(sp, ';')) &&
        (sp = kind_word_of(sp + 1, (size_t)(q - sp - 1)))) {
        /* Another kind: the command that uses that kind. */
        static const struct {
            const char *kind, *use;
        } use[] = {{"lock", "lock"},
                   {"rlock", "lock --rlock"},
                   {"semaphore", "sem"},
                   {"event", "event set|clear|wait"},
                   {"barrier", "barrier wait"},
                   {"condition", "notify"}};
        const char *how = "show";

        for (size_t i = 0; i < sizeof(use) / sizeof(use[0]); i++)
            if (strcmp(use[i].kind, sp) == 0)
                how = use[i].use;
        snprintf(hint, sizeof(hint),
                 "it is %s %s: use it with 'pythreadctl %s %s', or remove it first with "
                 "'pythreadctl unlink %s'",
                 sp[0] == 'e' ? "an" : "a", sp, how, obj, obj);
        rest = hint;
    } else if (err == PT_EEXIST && strstr(rest, "PT_OPEN_EXCL")) {
        snprintf(hint, sizeof(hint),
                 "exists already; choose another name, or remove it first with "
                 "'pythreadctl unlink %s'",
                 obj);
        rest = hint;
    } else if (err == PT_ENOENT) {
        if (kind && strcmp(kind, "barrier") == 0)
            snprintf(hint, sizeof(hint),
                     "no such object; create it first with 'pythreadctl create barrier %s "
                     "--parties N'",
                     obj);
        else if (kind)
            snprintf(hint, sizeof(hint),
                     "no such object; create it first with 'pythreadctl create %s %s'", kind, obj);
        else
            snprintf(hint, sizeof(hint),
                     "no such object; 'pythreadctl list' shows the names there are");
        rest = hint;
    }
    return pt_cli_fail(err == PT_ECONNECT || err == PT_ESESSION || err == PT_EVERSION
                           ? PT_EXIT_NODAEMON
                           : PT_EXIT_FAILED,
                       "%s '%s': %s%s", cmd, name, other, rest);
}

/* ---- create / unlink --------------------------------------------------- */

enum {
    OPT_VALUE = 0x2000,
    OPT_BOUNDED,
    OPT_PARTIES,
    OPT_TIMEOUT,
    OPT_LOCK,
    OPT_MODE,
    OPT_TRANSIENT,
    OPT_RLOCK,
    OPT_LOST_SIGNAL,
    OPT_HOLD_FOR,
    OPT_FORCE,
    OPT_CLUSTER,
};

typedef struct create_args {
    int kind;
    const char *name;
    int64_t value;
    int has_value;
    int bounded;
    uint32_t parties;
    double timeout;
    int has_timeout;
    const char *lock;
    unsigned mode;
    int flags;
} create_args;

/* Opens the Lock or RLock a Condition is to be built on (a cluster's when
 * cluster is PT_OPEN_CLUSTER). */
static int open_cond_lock(pt_client *c, const char *name, int cluster, pt_object **obj,
                          void **close_me, int *is_rlock)
{
    pt_lock *l;
    pt_rlock *rl;
    int r = pt_lock_open(c, name, PT_OPEN_EXISTING | cluster, 0, &l);

    if (r == 0) {
        *obj = pt_lock_as_object(l);
        *close_me = l;
        *is_rlock = 0;
        return 0;
    }
    if (r != PT_EEXIST)
        return r;
    if ((r = pt_rlock_open(c, name, PT_OPEN_EXISTING | cluster, 0, &rl)) != 0)
        return r;
    *obj = pt_rlock_as_object(rl);
    *close_me = rl;
    *is_rlock = 1;
    return 0;
}

static int create_object(pt_client *c, const create_args *a)
{
    pt_lock *l;
    pt_rlock *rl;
    pt_condition *cv;
    pt_semaphore *s;
    pt_event *e;
    pt_barrier *b;
    pt_object *lock = NULL;
    void *lock_handle = NULL;
    int is_rlock = 0, r;

    switch (a->kind) {
    case PT_KIND_LOCK:
        if ((r = pt_lock_open(c, a->name, a->flags, a->mode, &l)) == 0)
            pt_lock_close(l);
        return r;
    case PT_KIND_RLOCK:
        if ((r = pt_rlock_open(c, a->name, a->flags, a->mode, &rl)) == 0)
            pt_rlock_close(rl);
        return r;
    case PT_KIND_CONDITION:
        if (a->lock && (r = open_cond_lock(c, a->lock, a->flags & PT_OPEN_CLUSTER, &lock,
                                           &lock_handle, &is_rlock)) != 0)
            return r; /* the library's message names the lock */
        if ((r = pt_condition_open(c, a->name, lock, a->flags, a->mode, &cv)) == 0)
            pt_condition_close(cv);
        if (lock_handle && is_rlock)
            pt_rlock_close(lock_handle);
        else if (lock_handle)
            pt_lock_close(lock_handle);
        return r;
    case PT_KIND_SEMAPHORE:
        r = pt_semaphore_open(c, a->name, a->has_value ? a->value : 1, a->bounded, a->flags,
                              a->mode, &s);
        if (r == 0)
            pt_semaphore_close(s);
        return r;
    case PT_KIND_EVENT:
        if ((r = pt_event_open(c, a->name, a->flags, a->mode, &e)) == 0)
            pt_event_close(e);
        return r;
    case PT_KIND_BARRIER:
        r = pt_barrier_open(c, a->name, a->parties, NULL, NULL,
                            a->has_timeout ? a->timeout : PT_FOREVER, a->flags, a->mode, &b);
        if (r == 0)
            pt_barrier_close(b);
        return r;
    default:
        return PT_EINVAL;
    }
}

/* Options that only some kinds take are refused for the others, so a typo
 * does not create something else than what was meant. */
static int create_check(const create_args *a)
{
    static const struct {
        int set_by; /* OPT_* */
        const char *name;
        int kinds; /* bit per kind */
    } rules[] = {
        {OPT_VALUE, "--value", 1 << PT_KIND_SEMAPHORE},
        {OPT_BOUNDED, "--bounded", 1 << PT_KIND_SEMAPHORE},
        {OPT_PARTIES, "--parties", 1 << PT_KIND_BARRIER},
        {OPT_TIMEOUT, "--timeout", 1 << PT_KIND_BARRIER},
        {OPT_LOCK, "--lock", 1 << PT_KIND_CONDITION},
    };
    int given[] = {a->has_value, a->bounded, a->parties != 0, a->has_timeout, a->lock != NULL};

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (given[i] && !(rules[i].kinds & (1 << a->kind)))
            return pt_cli_usage("create", "%s does not apply to a %s", rules[i].name,
                                pt_cli_kind_word(a->kind));
    if (a->kind == PT_KIND_BARRIER && a->parties == 0)
        return pt_cli_usage("create", "a barrier needs --parties N");
    return 0;
}

int pt_cmd_create(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"value", required_argument, NULL, OPT_VALUE},
        {"bounded", no_argument, NULL, OPT_BOUNDED},
        {"parties", required_argument, NULL, OPT_PARTIES},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"lock", required_argument, NULL, OPT_LOCK},
        {"mode", required_argument, NULL, OPT_MODE},
        {"transient", no_argument, NULL, OPT_TRANSIENT},
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {NULL, 0, NULL, 0},
    };
    const pt_cli_command *cmd = pt_cli_find("create");
    create_args a = {.flags = PT_OPEN_EXCL};
    pt_client *c;
    int ch, code, r;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "", opts)) != -1) {
        switch (ch) {
        case OPT_VALUE:
            a.has_value = 1;
            if (pt_cli_parse_i64("create", "--value", optarg, &a.value))
                return PT_EXIT_USAGE;
            break;
        case OPT_BOUNDED:
            a.bounded = 1;
            break;
        case OPT_PARTIES:
            if (pt_cli_parse_u32("create", "--parties", optarg, 1, &a.parties))
                return PT_EXIT_USAGE;
            break;
        case OPT_TIMEOUT:
            a.has_timeout = 1;
            if (pt_cli_parse_seconds("create", "--timeout", optarg, &a.timeout))
                return PT_EXIT_USAGE;
            break;
        case OPT_LOCK:
            a.lock = optarg;
            break;
        case OPT_MODE:
            if (pt_cli_parse_mode("create", optarg, &a.mode))
                return PT_EXIT_USAGE;
            break;
        case OPT_TRANSIENT:
            a.flags |= PT_OPEN_TRANSIENT;
            break;
        case OPT_CLUSTER:
            a.flags |= PT_OPEN_CLUSTER;
            break;
        case 'h':
            return PT_EXIT_OK;
        default:
            return PT_EXIT_USAGE;
        }
    }
    if (argc - optind < 2)
        return pt_cli_usage("create", "give KIND and NAME");
    a.kind = pt_cli_kind_parse(argv[optind]);
    if (a.kind == 0 || a.kind == PT_KIND_BOUNDED_SEMAPHORE)
        return pt_cli_usage("create",
                            "unknown kind '%s'; use lock, rlock, condition, semaphore (with "
                            "--bounded for a BoundedSemaphore), event or barrier",
                            argv[optind]);
    if (create_check(&a))
        return PT_EXIT_USAGE;
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    /* Like mkdir(1): every NAME is tried, the first failure's status is
     * the exit status. */
    code = PT_EXIT_OK;
    for (int i = optind + 1; i < argc; i++) {
        a.name = argv[i];
        r = create_object(c, &a);
        if (r < 0 && code == PT_EXIT_OK)
            code = op_fail("create", a.name, r);
        else if (r < 0)
            op_fail("create", a.name, r);
    }
    return code;
}

int pt_cmd_unlink(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {NULL, 0, NULL, 0},
    };
    const pt_cli_command *cmd = pt_cli_find("unlink");
    pt_client *c;
    int ch, code, r, cluster = 0;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "", opts)) != -1) {
        if (ch != OPT_CLUSTER)
            return ch == 'h' ? PT_EXIT_OK : PT_EXIT_USAGE;
        cluster = 1;
    }
    if (argc == optind)
        return pt_cli_usage("unlink", "give the NAME to unlink");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    code = PT_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        r = cluster ? pt_unlink_cluster(c, argv[i]) : pt_unlink(c, argv[i]);
        if (r < 0 && code == PT_EXIT_OK)
            code = op_fail("unlink", argv[i], r);
        else if (r < 0)
            op_fail("unlink", argv[i], r);
    }
    return code;
}

/* ---- lock / sem -- COMMAND --------------------------------------------- */

/* What lock and sem share: the words, how long to wait, the command. */
typedef struct run_args {
    const char *cmd;
    const char *name;
    int rlock;
    int blocking;
    double timeout;
    int64_t value;
    unsigned mode;
    int lost_signal;
    int conflict_code; /* exit status when the object cannot be had */
    long hold_for;     /* --hold-for PID, 0 when not given */
    int cluster;       /* --cluster: PT_OPEN_CLUSTER, else 0 */
    char **command;    /* NULL: hold until a signal (or hold_for's end) */
    char *shell[4];    /* -c: sh -c LINE */
} run_args;

/* Position of the "--" that starts COMMAND, or -1. */
static int find_dashdash(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0)
            return i;
    return -1;
}

static int run_parse(pt_cli *cli, const char *name, int argc, char **argv, run_args *a)
{
    static const struct option opts[] = {
        {"wait", required_argument, NULL, 'w'},
        {"nonblock", no_argument, NULL, 'n'},
        {"conflict-exit-code", required_argument, NULL, 'E'},
        {"command", required_argument, NULL, 'c'},
        {"hold-for", required_argument, NULL, OPT_HOLD_FOR},
        {"rlock", no_argument, NULL, OPT_RLOCK},
        {"value", required_argument, NULL, OPT_VALUE},
        {"mode", required_argument, NULL, OPT_MODE},
        {"lost-signal", required_argument, NULL, OPT_LOST_SIGNAL},
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {NULL, 0, NULL, 0},
    };
    const pt_cli_command *cmd = pt_cli_find(name);
    int dd = find_dashdash(argc, argv);
    int nopts = dd < 0 ? argc : dd;
    int has_wait = 0, has_lost = 0, ch;
    uint32_t u;
    int64_t pid;

    /* 1 stays the default status for "not acquired": it is what every
     * pythreadctl before -E gave, and flock(1) gives, so scripts testing
     * for it keep working; -E separates it from COMMAND's own 1. */
    *a = (run_args){.cmd = name,
                    .blocking = 1,
                    .timeout = PT_FOREVER,
                    .value = 1,
                    .lost_signal = SIGTERM,
                    .conflict_code = PT_EXIT_FAILED};
    while ((ch = pt_cli_getopt(cli, cmd, nopts, argv, "w:nE:c:", opts)) != -1) {
        switch (ch) {
        case 'w':
            has_wait = 1;
            if (pt_cli_parse_seconds(name, "--wait", optarg, &a->timeout))
                return PT_EXIT_USAGE;
            break;
        case 'n':
            a->blocking = 0;
            break;
        case 'E':
            if (pt_cli_parse_u32(name, "--conflict-exit-code", optarg, 0, &u))
                return PT_EXIT_USAGE;
            if (u > 255)
                return pt_cli_usage(name,
                                    "--conflict-exit-code takes a status from 0 to 255, "
                                    "not '%s'",
                                    optarg);
            a->conflict_code = (int)u;
            break;
        case 'c':
            a->shell[0] = "/bin/sh";
            a->shell[1] = "-c";
            a->shell[2] = optarg;
            break;
        case OPT_HOLD_FOR:
            if (pt_cli_parse_i64(name, "--hold-for", optarg, &pid))
                return PT_EXIT_USAGE;
            if (pid < 1 || pid > INT32_MAX)
                return pt_cli_usage(name, "--hold-for takes a process id, not '%s'", optarg);
            a->hold_for = (long)pid;
            break;
        case OPT_RLOCK:
            if (strcmp(name, "lock") != 0)
                return pt_cli_usage(name, "--rlock applies to lock only");
            a->rlock = 1;
            break;
        case OPT_VALUE:
            if (strcmp(name, "sem") != 0)
                return pt_cli_usage(name, "--value applies to sem only");
            if (pt_cli_parse_i64(name, "--value", optarg, &a->value))
                return PT_EXIT_USAGE;
            break;
        case OPT_MODE:
            if (pt_cli_parse_mode(name, optarg, &a->mode))
                return PT_EXIT_USAGE;
            break;
        case OPT_CLUSTER:
            a->cluster = PT_OPEN_CLUSTER;
            break;
        case OPT_LOST_SIGNAL:
            has_lost = 1;
            if (pt_cli_parse_signal(name, "--lost-signal", optarg, &a->lost_signal))
                return PT_EXIT_USAGE;
            break;
        case 'h':
            return -1;
        default:
            return PT_EXIT_USAGE;
        }
    }
    if (has_wait && !a->blocking)
        return pt_cli_usage(name, "--wait and --nonblock exclude each other");
    if (nopts - optind != 1)
        return pt_cli_usage(name, nopts == optind ? "give the object's NAME"
                                                  : "one NAME, then -- COMMAND [ARGS...]");
    a->name = argv[optind];
    if (a->shell[0] && dd >= 0)
        return pt_cli_usage(name, "-c LINE and -- COMMAND exclude each other");
    if (dd >= 0 && dd + 1 >= argc)
        return pt_cli_usage(name, "give the command to run after --");
    if (a->shell[0])
        a->command = a->shell;
    else if (dd >= 0)
        a->command = argv + dd + 1;
    if (a->hold_for && a->command)
        return pt_cli_usage(name, "--hold-for holds with no COMMAND; give one or the other");
    if (has_lost && !a->command)
        return pt_cli_usage(name, "--lost-signal applies to a COMMAND only");
    return 0;
}

/* The object behind lock/sem, whichever kind it is. */
typedef struct held {
    pt_lock *l;
    pt_rlock *rl;
    pt_semaphore *s;
} held;

/* A Lock's or RLock's fencing token goes to *token; a permit has none (0). */
static int held_acquire(held *h, int blocking, double timeout, uint64_t *token)
{
    *token = 0;
    if (h->l)
        return pt_lock_acquire_fenced(h->l, blocking, timeout, token);
    if (h->rl)
        return pt_rlock_acquire_fenced(h->rl, blocking, timeout, token);
    return pt_semaphore_acquire(h->s, blocking, timeout);
}

static int held_release(held *h)
{
    if (h->l)
        return pt_lock_release(h->l);
    if (h->rl)
        return pt_rlock_release(h->rl);
    return pt_semaphore_release(h->s, 1);
}

static void held_close(held *h)
{
    if (h->l)
        pt_lock_close(h->l);
    if (h->rl)
        pt_rlock_close(h->rl);
    if (h->s)
        pt_semaphore_close(h->s);
}

/* An existing Semaphore or BoundedSemaphore as it is; a missing one is
 * created bounded, so permits of a pythreadctl that dies come back. */
static int sem_open_any(pt_client *c, const run_args *a, pt_semaphore **out)
{
    int existing = PT_OPEN_EXISTING | a->cluster;
    int r = pt_semaphore_open(c, a->name, 0, 0, existing, 0, out);

    if (r == PT_EEXIST)
        r = pt_semaphore_open(c, a->name, 0, 1, existing, 0, out);
    if (r == PT_ENOENT) {
        r = pt_semaphore_open(c, a->name, a->value, 1, a->cluster, a->mode, out);
        /* Someone created it as a plain Semaphore meanwhile. */
        if (r == PT_EEXIST)
            r = pt_semaphore_open(c, a->name, 0, 0, existing, 0, out);
    }
    return r;
}

/* Opens and acquires the object: 1, or 0 with the exit status in *status
 * after saying why (a->conflict_code, which may be 0, when it is held past
 * --wait or --nonblock). */
static int take(pt_client *c, const run_args *a, held *h, uint64_t *token, int *status)
{
    char tail[PT_INSPECT_TEXT_MAX + 32] = "";
    int r;

    if (strcmp(a->cmd, "sem") == 0)
        r = sem_open_any(c, a, &h->s);
    else if (a->rlock)
        r = pt_rlock_open(c, a->name, a->cluster, a->mode, &h->rl);
    else
        r = pt_lock_open(c, a->name, a->cluster, a->mode, &h->l);
    if (r < 0) {
        *status = op_fail(a->cmd, a->name, r);
        return 0;
    }
    r = held_acquire(h, a->blocking, a->blocking ? a->timeout : PT_FOREVER, token);
    if (r < 0) {
        held_close(h);
        *status = op_fail(a->cmd, a->name, r);
        return 0;
    }
    if (r > 0)
        return 1;
    held_close(h);
    if (a->command)
        snprintf(tail, sizeof(tail), "; not running %s",
                 a->command == a->shell ? "the -c line" : a->command[0]);
    if (!a->blocking)
        *status =
            pt_cli_fail(a->conflict_code, "%s '%s': %s%s", a->cmd, a->name,
                        strcmp(a->cmd, "sem") == 0 ? "no permit is free" : "held by another", tail);
    else
        *status = pt_cli_fail(a->conflict_code, "%s '%s': not acquired within %g seconds%s", a->cmd,
                              a->name, a->timeout, tail);
    return 0;
}

static const char *kind_of(const run_args *a)
{
    return strcmp(a->cmd, "sem") == 0 ? "semaphore" : a->rlock ? "rlock" : "lock";
}

/* The one line saying what is held, for people or (--json) programs. */
static void say_held(const pt_cli *cli, const run_args *a, uint64_t token, long pid,
                     const char *until)
{
    if (cli->json) {
        pt_json *j = pt_json_new(stdout);

        pt_json_obj(j, NULL);
        pt_json_str(j, "name", a->name);
        pt_json_str(j, "kind", kind_of(a));
        if (strcmp(a->cmd, "sem") != 0)
            pt_json_uint(j, "token", token);
        pt_json_int(j, "pid", pid);
        pt_json_end(j);
        pt_json_finish(j);
    } else if (strcmp(a->cmd, "sem") == 0) {
        printf("holding a permit of semaphore %s%s\n", a->name, until);
    } else {
        printf("holding %s %s with token %" PRIu64 "%s\n", kind_of(a), a->name, token, until);
    }
    fflush(stdout);
}

typedef struct hold_here_ctx {
    const pt_cli *cli;
    const run_args *a;
    uint64_t token;
} hold_here_ctx;

static int announce_here(void *arg)
{
    const hold_here_ctx *x = arg;

    say_held(x->cli, x->a, x->token, (long)getpid(), " until SIGINT or SIGTERM");
    return ferror(stdout) ? pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot write that it is held",
                                        x->a->cmd, x->a->name)
                          : 0;
}

/* ---- --hold-for PID: a holder process that outlives pythreadctl ---------- */

typedef struct hold_for_ctx {
    int report; /* pipe to the pythreadctl that started the holder */
    uint64_t token;
} hold_for_ctx;

/* Held: the holder lets go of the caller's stdout and stderr (so that
 * $(pythreadctl lock --hold-for ...) ends at once) and of its parent,
 * then tells it the token. */
static int announce_detached(void *arg)
{
    hold_for_ctx *x = arg;
    char line[32];
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC), n;

    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    prctl(PR_SET_PDEATHSIG, 0);
    n = snprintf(line, sizeof(line), "%" PRIu64 "\n", x->token);
    /* Its parent gone (and nobody told the token): let go at once. */
    if (write(x->report, line, (size_t)n) != n)
        return PT_EXIT_FAILED;
    close(x->report);
    x->report = -1;
    return 0;
}

/* Closes every descriptor the holder inherited except those it needs, so
 * it keeps no pipe of the script's open (a reader waiting for its end). */
static void close_inherited(int keep1, int keep2)
{
    int lo = keep1 < keep2 ? keep1 : keep2, hi = keep1 < keep2 ? keep2 : keep1;

    if (lo > 3)
        close_range(3, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0U, 0);
}

static long holder_for(long pid);

/* A second --hold-for of a Lock for the same process would wait for that
 * process's own hold, which ends only when the process does: a script
 * that takes its lock twice is told so instead of hanging. */
static int held_for_already(pt_client *c, const run_args *a)
{
    pt_inspect_detail *d;
    int code = 0;

    if (strcmp(a->cmd, "lock") != 0 || pt_inspect_show(c, a->name, &d) < 0)
        return 0; /* no such lock yet, or not one to look at: take it */
    for (size_t i = 0; i < d->n_holders && !code; i++)
        if (holder_for(d->holders[i].pid) == a->hold_for)
            code = pt_cli_fail(PT_EXIT_FAILED,
                               "lock '%s': already held for process %ld (by holder pid %ld); "
                               "'pythreadctl release %s' first",
                               a->name, a->hold_for, d->holders[i].pid, a->name);
    pt_inspect_detail_free(d);
    return code;
}

/* The holder: in a session of its own (no terminal's or job's signal is
 * meant for it), killed with pythreadctl until it holds, then holding
 * until PID ends, SIGTERM/SIGINT/SIGHUP (pythreadctl release) or the
 * session is lost. */
static int holder_run(pt_cli *cli, const run_args *a, int pidfd, int report, pid_t parent)
{
    hold_for_ctx x = {.report = report};
    char comm[16];
    held h = {0};
    pt_client *c;
    int code, fd;

    setsid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        return PT_EXIT_FAILED;
    if (chdir("/") < 0)
        return PT_EXIT_FAILED;
    if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    close_inherited(pidfd, report);
    /* Its name says for whom it holds: pythreadctl release reads it. */
    snprintf(comm, sizeof(comm), PT_CLI_HOLDER_COMM "%ld", a->hold_for);
    prctl(PR_SET_NAME, comm);
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    if ((code = held_for_already(c, a)) != 0)
        return code;
    if (!take(c, a, &h, &x.token, &code))
        return code;
    pt_cli_run run = {.cmd = a->cmd, .name = a->name, .client = c};
    code = pt_cli_hold(&run, pidfd, announce_detached, &x);
    if (code != PT_EXIT_LOST)
        held_release(&h);
    held_close(&h);
    return code;
}

static int hold_for(pt_cli *cli, const run_args *a)
{
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)a->hold_for, 0), p[2], st = 0;
    pid_t parent = getpid(), child, w;
    char buf[64];
    size_t got = 0;
    ssize_t n;

    if (pidfd < 0)
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot watch process %ld to hold for it: %s",
                           a->cmd, a->name, a->hold_for,
                           errno == ESRCH    ? "no such process"
                           : errno == ENOSYS ? "this kernel has no pidfd_open (Linux 5.3 and later)"
                                             : strerror(errno));
    if (pipe2(p, O_CLOEXEC) < 0)
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot start its holder: %s", a->cmd, a->name,
                           strerror(errno));
    /* Inherited SIGCHLD ignored would reap the holder before its status
     * is read. */
    signal(SIGCHLD, SIG_DFL);
    fflush(NULL);
    child = fork();
    if (child < 0)
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot start its holder: %s", a->cmd, a->name,
                           strerror(errno));
    if (child == 0) {
        close(p[0]);
        /* Back through main: it closes the session, which lets go. */
        return holder_run(cli, a, pidfd, p[1], parent);
    }
    close(p[1]);
    close(pidfd);
    while (got < sizeof(buf) - 1 &&
           ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            got += (size_t)n;
    close(p[0]);
    buf[got] = '\0';
    if (got == 0) { /* the holder ended without holding, after saying why */
        while ((w = waitpid(child, &st, 0)) < 0 && errno == EINTR)
            ;
        if (w < 0)
            return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': its holder (pid %ld) ended unseen: %s",
                               a->cmd, a->name, (long)child, strerror(errno));
        if (WIFEXITED(st))
            return WEXITSTATUS(st);
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': its holder (pid %ld) died of signal %d",
                           a->cmd, a->name, (long)child, WTERMSIG(st));
    }
    /* Just the token, for token=$(pythreadctl lock --hold-for $$ NAME). */
    if (cli->json)
        say_held(cli, a, strtoull(buf, NULL, 10), (long)child, "");
    else if (strcmp(a->cmd, "sem") != 0)
        printf("%s", buf);
    return PT_EXIT_OK;
}

/* ---- lock / sem: the whole run ----------------------------------------- */

static int run_holding(pt_cli *cli, const run_args *a)
{
    held h = {0};
    pt_client *c;
    uint64_t token;
    int code, r, status;

    if (a->hold_for)
        return hold_for(cli, a);
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    if (!take(c, a, &h, &token, &code))
        return code;
    pt_cli_run run = {.cmd = a->cmd,
                      .name = a->name,
                      .command = a->command,
                      .lost_signal = a->lost_signal,
                      .client = c};
    if (a->command) {
        /* As etcdctl lock exports its key and revision: COMMAND can pass
         * the token to a resource that rejects stale holders. */
        if (!h.s) {
            char t[24];

            snprintf(t, sizeof(t), "%" PRIu64, token);
            setenv("PYTHREAD_LOCK_NAME", a->name, 1);
            setenv("PYTHREAD_LOCK_TOKEN", t, 1);
        }
        status = pt_cli_run_command(&run);
    } else {
        hold_here_ctx x = {.cli = cli, .a = a, .token = token};

        status = pt_cli_hold(&run, -1, announce_here, &x);
    }
    /* After a loss, a release would reconnect and could free the lock of
     * whoever took it from the new daemon. */
    if (status != PT_EXIT_LOST && (r = held_release(&h)) < 0)
        op_fail(a->cmd, a->name, r); /* the session ended after COMMAND did */
    held_close(&h);
    return status;
}

int pt_cmd_lock(pt_cli *cli, int argc, char **argv)
{
    run_args a;
    int r = run_parse(cli, "lock", argc, argv, &a);

    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    return run_holding(cli, &a);
}

int pt_cmd_sem(pt_cli *cli, int argc, char **argv)
{
    run_args a;
    int r = run_parse(cli, "sem", argc, argv, &a);

    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    return run_holding(cli, &a);
}

/* ---- event / barrier / notify ------------------------------------------ */

/* What "ACTION [--timeout S] [--cluster] NAME" says. */
typedef struct action_args {
    const char *action, *name;
    double timeout;
    int has_timeout;
    int cluster; /* PT_OPEN_CLUSTER, else 0 */
} action_args;

/* Parses both words and the options into a. */
static int action_parse(pt_cli *cli, const char *name, int argc, char **argv, action_args *a)
{
    static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                         {"cluster", no_argument, NULL, OPT_CLUSTER},
                                         {NULL, 0, NULL, 0}};
    const pt_cli_command *cmd = pt_cli_find(name);
    int ch;

    *a = (action_args){.timeout = PT_FOREVER};
    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "t:", opts)) != -1) {
        if (ch == 'h')
            return -1;
        if (ch == OPT_CLUSTER) {
            a->cluster = PT_OPEN_CLUSTER;
            continue;
        }
        if (ch != 't')
            return PT_EXIT_USAGE;
        a->has_timeout = 1;
        if (pt_cli_parse_seconds(name, "--timeout", optarg, &a->timeout))
            return PT_EXIT_USAGE;
    }
    if (argc - optind != 2)
        return pt_cli_usage(name, argc - optind < 2 ? "give the action and the NAME"
                                                    : "unexpected argument after NAME");
    a->action = argv[optind];
    a->name = argv[optind + 1];
    return 0;
}

/* Event ACTION on e: its result, or an error code. */
static int event_act(pt_event *e, const action_args *a)
{
    if (strcmp(a->action, "set") == 0)
        return pt_event_set(e);
    if (strcmp(a->action, "clear") == 0)
        return pt_event_clear(e);
    if (strcmp(a->action, "is-set") == 0)
        return pt_event_is_set(e);
    return pt_event_wait(e, a->timeout);
}

int pt_cmd_event(pt_cli *cli, int argc, char **argv)
{
    action_args a;
    int is_set, code, r;
    pt_client *c;
    pt_event *e;

    r = action_parse(cli, "event", argc, argv, &a);
    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    if (strcmp(a.action, "set") && strcmp(a.action, "clear") && strcmp(a.action, "is-set") &&
        strcmp(a.action, "wait"))
        return pt_cli_usage("event", "unknown action '%s'; use set, clear, is-set or wait",
                            a.action);
    if (a.has_timeout && strcmp(a.action, "wait") != 0)
        return pt_cli_usage("event", "--timeout applies to wait only");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    /* is-set only looks: it does not create what it looks at. */
    is_set = strcmp(a.action, "is-set") == 0;
    r = pt_event_open(c, a.name, (is_set ? PT_OPEN_EXISTING : 0) | a.cluster, 0, &e);
    if (r < 0)
        return op_fail("event", a.name, r);
    r = event_act(e, &a);
    pt_event_close(e);
    if (r < 0)
        return op_fail("event", a.name, r);
    if (is_set) {
        puts(r ? "set" : "clear");
        return r ? PT_EXIT_OK : PT_EXIT_FAILED;
    }
    if (strcmp(a.action, "wait") == 0 && r == 0)
        return pt_cli_fail(PT_EXIT_FAILED, "event '%s': not set within %g seconds", a.name,
                           a.timeout);
    return PT_EXIT_OK;
}

int pt_cmd_barrier(pt_cli *cli, int argc, char **argv)
{
    action_args a;
    int code, r;
    pt_client *c;
    pt_barrier *b;

    r = action_parse(cli, "barrier", argc, argv, &a);
    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    if (strcmp(a.action, "wait") && strcmp(a.action, "abort") && strcmp(a.action, "reset"))
        return pt_cli_usage("barrier", "unknown action '%s'; use wait, abort or reset", a.action);
    if (a.has_timeout && strcmp(a.action, "wait") != 0)
        return pt_cli_usage("barrier", "--timeout applies to wait only");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    /* A barrier's parties are fixed at creation: only an existing one. */
    r = pt_barrier_open(c, a.name, 1, NULL, NULL, PT_FOREVER, PT_OPEN_EXISTING | a.cluster, 0, &b);
    if (r < 0)
        return op_fail("barrier", a.name, r);
    if (strcmp(a.action, "wait") == 0)
        r = pt_barrier_wait(b, a.timeout);
    else if (strcmp(a.action, "abort") == 0)
        r = pt_barrier_abort(b);
    else
        r = pt_barrier_reset(b);
    pt_barrier_close(b);
    if (r < 0)
        return op_fail("barrier", a.name, r);
    if (strcmp(a.action, "wait") == 0)
        printf("%d\n", r);
    return PT_EXIT_OK;
}

int pt_cmd_notify(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    const pt_cli_command *cmd = pt_cli_find("notify");
    uint32_t n = 1;
    int all = 0, has_n = 0, ch, code, r;
    const char *name;
    pt_condition *cv;
    pt_client *c;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "an:", opts)) != -1) {
        switch (ch) {
        case 'a':
            all = 1;
            break;
        case 'n':
            has_n = 1;
            if (pt_cli_parse_u32("notify", "-n", optarg, 1, &n))
                return PT_EXIT_USAGE;
            break;
        case 'h':
            return PT_EXIT_OK;
        default:
            return PT_EXIT_USAGE;
        }
    }
    if (all && has_n)
        return pt_cli_usage("notify", "--all and -n exclude each other");
    if (argc - optind != 1)
        return pt_cli_usage("notify", argc == optind ? "give the condition's NAME"
                                                     : "unexpected argument after NAME");
    name = argv[optind];
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    r = pt_condition_open(c, name, NULL, PT_OPEN_EXISTING, 0, &cv);
    if (r < 0)
        return op_fail("notify", name, r);
    /* notify needs the condition's lock, as in Python. */
    r = pt_condition_acquire(cv, 1, PT_FOREVER);
    if (r >= 0) {
        r = all ? pt_condition_notify_all(cv) : pt_condition_notify(cv, n);
        int rr = pt_condition_release(cv);

        if (r >= 0 && rr < 0)
            r = rr;
    }
    pt_condition_close(cv);
    return r < 0 ? op_fail("notify", name, r) : PT_EXIT_OK;
}

/* ---- release: the end of a --hold-for hold -------------------------------- */

/* The process a --hold-for holder holds for, from its name; 0 when pid is
 * no such holder. */
static long holder_for(long pid)
{
    char path[64], comm[32], *end;
    size_t n = strlen(PT_CLI_HOLDER_COMM);
    FILE *f;
    long v;

    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if (!(f = fopen(path, "re")))
        return 0;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    if (strncmp(comm, PT_CLI_HOLDER_COMM, n) != 0)
        return 0;
    v = strtol(comm + n, &end, 10);
    return *end || v < 1 ? 0 : v;
}

static long parent_of(long pid)
{
    char path[64], buf[512], *p;
    long ppid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "re")))
        return 0;
    /* After the name in parentheses, which may hold anything: state, ppid. */
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
        sscanf(p + 1, " %*c %ld", &ppid);
    fclose(f);
    return ppid;
}

/* This process or one of its ancestors: the script that took the hold, or
 * a subshell of it. */
static int is_mine(long pid)
{
    for (long p = getpid(); p > 0; p = parent_of(p))
        if (p == pid)
            return 1;
    return 0;
}

/* SIGTERM to the holder, then its end: by then it has released. */
static int end_holder(const char *name, long pid, long for_pid)
{
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    if (fd < 0)
        return errno == ESRCH ? 0
                              : pt_cli_fail(PT_EXIT_FAILED,
                                            "release '%s': cannot reach its holder (pid %ld): %s",
                                            name, pid, strerror(errno));
    /* The pid named a holder when the daemon answered; through the pidfd
     * it is still that process (or it ended, which is as good). */
    if (holder_for(pid) != for_pid) {
        close(fd);
        return 0;
    }
    if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) < 0 && errno != ESRCH) {
        r = pt_cli_fail(PT_EXIT_FAILED, "release '%s': cannot signal its holder (pid %ld): %s",
                        name, pid, strerror(errno));
        close(fd);
        return r;
    }
    while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (r == 0)
        return pt_cli_fail(PT_EXIT_FAILED,
                           "release '%s': its holder (pid %ld) did not end within 10 seconds of "
                           "SIGTERM; 'kill -KILL %ld' ends it, and the hold with it",
                           name, pid, pid);
    return 0;
}

int pt_cmd_release(pt_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, OPT_FORCE},
                                         {NULL, 0, NULL, 0}};
    const pt_cli_command *cmd = pt_cli_find("release");
    pt_inspect_detail *d;
    const char *name;
    long other = 0, for_pid;
    size_t ended = 0;
    int force = 0, ch, code, r;
    pt_client *c;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "", opts)) != -1) {
        if (ch == 'h')
            return PT_EXIT_OK;
        if (ch != OPT_FORCE)
            return PT_EXIT_USAGE;
        force = 1;
    }
    if (argc - optind != 1)
        return pt_cli_usage("release", argc == optind ? "give the NAME held"
                                                      : "unexpected argument after NAME");
    name = argv[optind];
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    if ((r = pt_inspect_show(c, name, &d)) < 0)
        return op_fail("release", name, r);
    if (d->detail_denied) {
        pt_inspect_detail_free(d);
        return pt_cli_fail(PT_EXIT_FAILED,
                           "release '%s': its mode does not let you see who holds it", name);
    }
    code = PT_EXIT_OK;
    for (size_t i = 0; i < d->n_holders && code == PT_EXIT_OK; i++) {
        const pt_inspect_party *h = &d->holders[i];

        for_pid = holder_for(h->pid);
        if (!for_pid || (h->uid != getuid() && getuid() != 0))
            continue;
        if (!force && !is_mine(for_pid)) {
            other = for_pid;
            continue;
        }
        code = end_holder(name, h->pid, for_pid);
        ended++;
    }
    if (code == PT_EXIT_OK && ended == 0) {
        if (other)
            code = pt_cli_fail(PT_EXIT_FAILED,
                               "release '%s': held for process %ld, which is neither this "
                               "process nor one of its parents (another script's hold?); "
                               "--force releases it anyway",
                               name, other);
        else if (d->n_holders == 0)
            code = pt_cli_fail(PT_EXIT_FAILED, "release '%s': not held; nothing to release", name);
        else
            code = pt_cli_fail(
                PT_EXIT_FAILED,
                "release '%s': held by pid %ld (%s), not by a holder that "
                "'pythreadctl %s --hold-for' started for you; release ends only "
                "those",
                name, d->holders[0].pid, d->holders[0].process[0] ? d->holders[0].process : "?",
                d->object.kind == PT_KIND_LOCK || d->object.kind == PT_KIND_RLOCK ? "lock" : "sem");
    }
    pt_inspect_detail_free(d);
    return code;
}
