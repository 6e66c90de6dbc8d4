/*
 * act_cmds.c - the commands that act on named objects, so shell scripts
 * can use them the way they use flock(1): create, unlink, lock/sem around
 * a command, event, barrier and notify.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Failure of an operation on NAME: "lock 'jobs': <library message>". */
static int op_fail(const char *cmd, const char *name, int err)
{
    char what[PT_INSPECT_TEXT_MAX + 32];

    snprintf(what, sizeof(what), "%s '%s'", cmd, name);
    return pt_cli_lib_fail(what, err);
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

/* Opens the Lock or RLock a Condition is to be built on. */
static int open_cond_lock(pt_client *c, const char *name, pt_object **obj, void **close_me,
                          int *is_rlock)
{
    pt_lock *l;
    pt_rlock *rl;
    int r = pt_lock_open(c, name, PT_OPEN_EXISTING, 0, &l);

    if (r == 0) {
        *obj = pt_lock_as_object(l);
        *close_me = l;
        *is_rlock = 0;
        return 0;
    }
    if (r != PT_EEXIST)
        return r;
    if ((r = pt_rlock_open(c, name, PT_OPEN_EXISTING, 0, &rl)) != 0)
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
        if (a->lock && (r = open_cond_lock(c, a->lock, &lock, &lock_handle, &is_rlock)) != 0)
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
    const pt_cli_command *cmd = pt_cli_find("unlink");
    pt_client *c;
    int ch, code, r;

    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "", NULL)) != -1)
        return ch == 'h' ? PT_EXIT_OK : PT_EXIT_USAGE;
    if (argc == optind)
        return pt_cli_usage("unlink", "give the NAME to unlink");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    code = PT_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        r = pt_unlink(c, argv[i]);
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
    char **command;
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
        {"rlock", no_argument, NULL, OPT_RLOCK},
        {"value", required_argument, NULL, OPT_VALUE},
        {"mode", required_argument, NULL, OPT_MODE},
        {"lost-signal", required_argument, NULL, OPT_LOST_SIGNAL},
        {NULL, 0, NULL, 0},
    };
    const pt_cli_command *cmd = pt_cli_find(name);
    int dd = find_dashdash(argc, argv);
    int nopts = dd < 0 ? argc : dd;
    int has_wait = 0, ch;

    *a = (run_args){
        .cmd = name, .blocking = 1, .timeout = PT_FOREVER, .value = 1, .lost_signal = SIGTERM};
    while ((ch = pt_cli_getopt(cli, cmd, nopts, argv, "w:n", opts)) != -1) {
        switch (ch) {
        case 'w':
            has_wait = 1;
            if (pt_cli_parse_seconds(name, "--wait", optarg, &a->timeout))
                return PT_EXIT_USAGE;
            break;
        case 'n':
            a->blocking = 0;
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
        case OPT_LOST_SIGNAL:
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
    if (dd < 0 || dd + 1 >= argc)
        return pt_cli_usage(name, "give the command to run after --");
    a->name = argv[optind];
    a->command = argv + dd + 1;
    return 0;
}

/* The object behind lock/sem, whichever kind it is. */
typedef struct held {
    pt_lock *l;
    pt_rlock *rl;
    pt_semaphore *s;
} held;

static int held_acquire(held *h, int blocking, double timeout)
{
    if (h->l)
        return pt_lock_acquire(h->l, blocking, timeout);
    if (h->rl)
        return pt_rlock_acquire(h->rl, blocking, timeout);
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
    int r = pt_semaphore_open(c, a->name, 0, 0, PT_OPEN_EXISTING, 0, out);

    if (r == PT_EEXIST)
        r = pt_semaphore_open(c, a->name, 0, 1, PT_OPEN_EXISTING, 0, out);
    if (r == PT_ENOENT) {
        r = pt_semaphore_open(c, a->name, a->value, 1, 0, a->mode, out);
        /* Someone created it as a plain Semaphore meanwhile. */
        if (r == PT_EEXIST)
            r = pt_semaphore_open(c, a->name, 0, 0, PT_OPEN_EXISTING, 0, out);
    }
    return r;
}

/* COMMAND, for as long as the session holding the object lasts. */
static int run_command(const run_args *a, pt_client *c)
{
    pt_cli_run run = {.cmd = a->cmd,
                      .name = a->name,
                      .command = a->command,
                      .lost_signal = a->lost_signal,
                      .client = c};

    return pt_cli_run_command(&run);
}

static int run_holding(pt_cli *cli, const run_args *a)
{
    held h = {0};
    pt_client *c;
    int code, r, status;

    if (!(c = pt_cli_client(cli, &code)))
        return code;
    if (strcmp(a->cmd, "sem") == 0)
        r = sem_open_any(c, a, &h.s);
    else if (a->rlock)
        r = pt_rlock_open(c, a->name, 0, a->mode, &h.rl);
    else
        r = pt_lock_open(c, a->name, 0, a->mode, &h.l);
    if (r < 0)
        return op_fail(a->cmd, a->name, r);
    r = held_acquire(&h, a->blocking, a->blocking ? a->timeout : PT_FOREVER);
    if (r < 0) {
        held_close(&h);
        return op_fail(a->cmd, a->name, r);
    }
    if (r == 0) {
        held_close(&h);
        if (!a->blocking)
            return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': %s; not running %s", a->cmd, a->name,
                               h.s ? "no permit is free" : "held by another", a->command[0]);
        return pt_cli_fail(PT_EXIT_FAILED,
                           "%s '%s': not acquired within %g seconds; not running %s", a->cmd,
                           a->name, a->timeout, a->command[0]);
    }
    status = run_command(a, c);
    /* After a loss, a release would reconnect and could free the lock of
     * whoever took it from the new daemon. */
    if (status != PT_EXIT_LOST && (r = held_release(&h)) < 0)
        pt_cli_lib_fail(a->cmd, r); /* the session ended after COMMAND did */
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

/* "ACTION [--timeout S] NAME": parses both words and the timeout. */
static int action_parse(pt_cli *cli, const char *name, int argc, char **argv, const char **action,
                        const char **obj, double *timeout, int *has_timeout)
{
    static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const pt_cli_command *cmd = pt_cli_find(name);
    int ch;

    *timeout = PT_FOREVER;
    *has_timeout = 0;
    while ((ch = pt_cli_getopt(cli, cmd, argc, argv, "t:", opts)) != -1) {
        if (ch == 'h')
            return -1;
        if (ch != 't')
            return PT_EXIT_USAGE;
        *has_timeout = 1;
        if (pt_cli_parse_seconds(name, "--timeout", optarg, timeout))
            return PT_EXIT_USAGE;
    }
    if (argc - optind != 2)
        return pt_cli_usage(name, argc - optind < 2 ? "give the action and the NAME"
                                                    : "unexpected argument after NAME");
    *action = argv[optind];
    *obj = argv[optind + 1];
    return 0;
}

int pt_cmd_event(pt_cli *cli, int argc, char **argv)
{
    const char *action, *name;
    double timeout;
    int has_timeout, code, r;
    pt_client *c;
    pt_event *e;

    r = action_parse(cli, "event", argc, argv, &action, &name, &timeout, &has_timeout);
    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    if (strcmp(action, "set") && strcmp(action, "clear") && strcmp(action, "is-set") &&
        strcmp(action, "wait"))
        return pt_cli_usage("event", "unknown action '%s'; use set, clear, is-set or wait", action);
    if (has_timeout && strcmp(action, "wait") != 0)
        return pt_cli_usage("event", "--timeout applies to wait only");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    /* is-set only looks: it does not create what it looks at. */
    r = pt_event_open(c, name, strcmp(action, "is-set") == 0 ? PT_OPEN_EXISTING : 0, 0, &e);
    if (r < 0)
        return op_fail("event", name, r);
    if (strcmp(action, "set") == 0)
        r = pt_event_set(e);
    else if (strcmp(action, "clear") == 0)
        r = pt_event_clear(e);
    else if (strcmp(action, "is-set") == 0)
        r = pt_event_is_set(e);
    else
        r = pt_event_wait(e, timeout);
    pt_event_close(e);
    if (r < 0)
        return op_fail("event", name, r);
    if (strcmp(action, "is-set") == 0) {
        puts(r ? "set" : "clear");
        return r ? PT_EXIT_OK : PT_EXIT_FAILED;
    }
    if (strcmp(action, "wait") == 0 && r == 0)
        return pt_cli_fail(PT_EXIT_FAILED, "event '%s': not set within %g seconds", name, timeout);
    return PT_EXIT_OK;
}

int pt_cmd_barrier(pt_cli *cli, int argc, char **argv)
{
    const char *action, *name;
    double timeout;
    int has_timeout, code, r;
    pt_client *c;
    pt_barrier *b;

    r = action_parse(cli, "barrier", argc, argv, &action, &name, &timeout, &has_timeout);
    if (r != 0)
        return r < 0 ? PT_EXIT_OK : r;
    if (strcmp(action, "wait") && strcmp(action, "abort") && strcmp(action, "reset"))
        return pt_cli_usage("barrier", "unknown action '%s'; use wait, abort or reset", action);
    if (has_timeout && strcmp(action, "wait") != 0)
        return pt_cli_usage("barrier", "--timeout applies to wait only");
    if (!(c = pt_cli_client(cli, &code)))
        return code;
    /* A barrier's parties are fixed at creation: only an existing one. */
    r = pt_barrier_open(c, name, 1, NULL, NULL, PT_FOREVER, PT_OPEN_EXISTING, 0, &b);
    if (r < 0)
        return op_fail("barrier", name, r);
    if (strcmp(action, "wait") == 0)
        r = pt_barrier_wait(b, timeout);
    else if (strcmp(action, "abort") == 0)
        r = pt_barrier_abort(b);
    else
        r = pt_barrier_reset(b);
    pt_barrier_close(b);
    if (r < 0)
        return op_fail("barrier", name, r);
    if (strcmp(action, "wait") == 0)
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
