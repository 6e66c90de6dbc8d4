/*
 * run.c - running COMMAND for lock and sem so that it never runs without the
 * hold: it ends with pythreadctl, however pythreadctl ends, and it is told at
 * once when the session holding the lock ends under it.
 *
 * COMMAND runs in a process group of its own (unless pythreadctl is in the
 * foreground of a terminal, where COMMAND stays in pythreadctl's group so
 * that it can use the terminal and job control reaches it). pythreadctl then
 * waits in poll(2) on a signalfd (SIGCHLD, and the signals it passes on) and
 * on the client's loss descriptor (pt_client_loss_fd), never on the socket:
 * with a daemon that keeps sessions, the library takes the end in on its
 * own thread, closes the socket and connects again, and the number
 * pythreadctl would poll may by then name another file.
 *
 * If pythreadctl is killed, the kernel kills COMMAND (PR_SET_PDEATHSIG), and
 * a small guard process, which sits in COMMAND's group and waits for
 * pythreadctl's end on a pipe, kills the rest of the group: the processes
 * COMMAND started.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "pythread_inspect.h"

static const struct {
    int sig;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},     {SIGQUIT, "QUIT"},     {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"},   {SIGBUS, "BUS"},       {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},   {SIGSEGV, "SEGV"},     {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"},   {SIGTERM, "TERM"},     {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"},   {SIGTSTP, "TSTP"},     {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"}, {SIGURG, "URG"},     {SIGXCPU, "XCPU"},     {SIGXFSZ, "XFSZ"},
    {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGVTALRM, "VTALRM"}, {SIGIO, "IO"},
    {SIGPWR, "PWR"},   {SIGSYS, "SYS"},
};

int pt_cli_parse_signal(const char *cmd, const char *opt, const char *arg, int *out)
{
    const char *name = strncasecmp(arg, "SIG", 3) == 0 ? arg + 3 : arg;
    char *end;
    long n;

    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (strcasecmp(name, signal_names[i].name) == 0) {
            *out = signal_names[i].sig;
            return 0;
        }
    }
    errno = 0;
    n = strtol(arg, &end, 10);
    if (end != arg && !*end && !errno && n >= 1 && n <= SIGRTMAX) {
        *out = (int)n;
        return 0;
    }
    return pt_cli_usage(
        cmd, "%s takes a signal name (TERM, SIGKILL, USR1, ...) or number, not '%s'", opt, arg);
}

/* "SIGTERM", or "signal 40" for one without a name here. */
static const char *signal_text(int sig, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].sig == sig) {
            snprintf(buf, len, "SIG%s", signal_names[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* ---- the child and its guard ------------------------------------------- */

typedef struct runner {
    const pt_cli_run *run;
    int loss_fd;      /* pt_client_loss_fd: readable once the session is lost */
    uint64_t session; /* its id */
    int sfd;          /* signalfd: SIGCHLD and the signals passed on */
    sigset_t oldmask; /* the mask to give COMMAND and to restore */
    int own_group;    /* COMMAND leads a process group of its own */
    pid_t pid;        /* COMMAND */
    pid_t guard;      /* 0 when none */
    int guard_pipe;   /* its write end: pythreadctl's end closes it */
    int lost;
} runner;

/* The signals pythreadctl passes on to COMMAND instead of dying of them. */
static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGTERM);
}

/* pythreadctl's process group is the foreground one of its terminal. */
static int terminal_foreground(void)
{
    int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    int fg;

    if (fd < 0)
        return 0;
    fg = tcgetpgrp(fd) == getpgrp();
    close(fd);
    return fg;
}

/* 1 when the session holding the object is gone. A daemon that keeps its
 * state gives the session back after a restart, still holding: the wait
 * lasts until the library has taken it up (or found it gone). */
static int session_gone(const runner *r)
{
    return pt_client_session_wait(r->run->client, r->session) < 0;
}

/* The loss descriptor turned readable: clear it, then ask. */
static int loss_told(const runner *r)
{
    uint64_t n;

    (void)!read(r->loss_fd, &n, sizeof(n));
    return session_gone(r);
}

_Noreturn static void child_exec(const runner *r, pid_t parent)
{
    const pt_cli_run *run = r->run;

    if (r->own_group)
        setpgid(0, 0);
    /* The kernel sends SIGKILL when the thread that forked dies (pythreadctl
     * has only one); if it died before this line, nothing would: check. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(PT_EXIT_LOST);
    sigprocmask(SIG_SETMASK, &r->oldmask, NULL);
    execvp(run->command[0], run->command);
    pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot run %s: %s", run->cmd, run->name, run->command[0],
                strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
}

/*
 * The guard waits for the end of pythreadctl (the pipe's write end closing
 * with it) and then kills COMMAND's process group. It joins that group, so
 * that a kill of pythreadctl's own group (timeout(1), a shell's kill %job)
 * does not take it too, and blocks every signal, so that what pythreadctl
 * passes on to the group leaves it alone; SIGKILL from pythreadctl stands it
 * down when COMMAND is over. It keeps no descriptor but the pipe and the
 * standard three: none of pythreadctl's (the session's socket above all:
 * the session must end with pythreadctl), whatever their numbers are now.
 */
_Noreturn static void guard_run(const runner *r, int rd)
{
    sigset_t all;
    char b;
    ssize_t n;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (rd > 3)
        close_range(3, (unsigned)rd - 1, 0);
    close_range((unsigned)rd + 1, ~0u, 0);
    setpgid(0, r->pid);
    prctl(PR_SET_NAME, "pythreadctl-grd");
    do
        n = read(rd, &b, 1);
    while (n < 0 && errno == EINTR);
    killpg(r->pid, SIGKILL);
    _exit(0);
}

/* Best effort: without a guard, COMMAND itself still dies with pythreadctl. */
static void guard_start(runner *r)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0)
        return;
    r->guard = fork();
    if (r->guard == 0)
        guard_run(r, p[0]);
    close(p[0]);
    if (r->guard < 0) {
        r->guard = 0;
        close(p[1]);
        return;
    }
    r->guard_pipe = p[1];
}

static void guard_stop(runner *r)
{
    if (!r->guard)
        return;
    kill(r->guard, SIGKILL);
    while (waitpid(r->guard, NULL, 0) < 0 && errno == EINTR)
        ;
    close(r->guard_pipe);
    r->guard = 0;
}

/* ---- waiting ------------------------------------------------------------- */

/* To COMMAND and, when it leads its own group, everything it started. */
static void signal_command(const runner *r, int sig)
{
    if (r->own_group && killpg(r->pid, sig) == 0)
        return;
    kill(r->pid, sig);
}

static const char *held_word(const pt_cli_run *run)
{
    return strcmp(run->cmd, "sem") == 0 ? "the permit" : "the lock";
}

/* The session is gone while COMMAND runs: tell COMMAND at once. */
static void session_lost(runner *r)
{
    const pt_cli_run *run = r->run;
    char sig[24];

    r->lost = 1;
    signal_command(r, run->lost_signal);
    pt_cli_fail(PT_EXIT_LOST,
                "%s '%s': lost %s: pythreadd closed the session holding it (stopped or "
                "restarted); sent %s to %s (pid %ld)%s",
                run->cmd, run->name, held_word(run),
                signal_text(run->lost_signal, sig, sizeof(sig)), run->command[0], (long)r->pid,
                r->own_group ? " and its process group" : "");
}

/* Pass on the signals that came, except those the terminal sent to the
 * foreground group COMMAND shares: it has them already. */
static void signals_pass_on(const runner *r)
{
    struct signalfd_siginfo si;

    while (read(r->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            continue;
        if (!r->own_group && si.ssi_code == SI_KERNEL)
            continue;
        signal_command(r, (int)si.ssi_signo);
    }
}

/* Something went wrong with waiting itself: COMMAND must not go on
 * unwatched, so it ends. */
static int wait_broken(runner *r, const char *what)
{
    int err = errno, st;

    signal_command(r, SIGKILL);
    while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
        ;
    return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': %s failed while %s ran: %s; killed it",
                       r->run->cmd, r->run->name, what, r->run->command[0], strerror(err));
}

/* COMMAND's end: its status, unless the hold did not last until then. */
static int command_ended(runner *r, int st)
{
    const pt_cli_run *run = r->run;

    if (r->lost)
        return PT_EXIT_LOST;
    if (session_gone(r))
        return pt_cli_fail(PT_EXIT_LOST,
                           "%s '%s': lost %s: pythreadd closed the session holding it as %s "
                           "ended; its last moments may have run without it",
                           run->cmd, run->name, held_word(run), run->command[0]);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static int wait_command(runner *r)
{
    for (;;) {
        struct pollfd p[2] = {
            {.fd = r->sfd, .events = POLLIN},
            {.fd = r->lost ? -1 : r->loss_fd, .events = POLLIN},
        };
        int st;
        pid_t w = waitpid(r->pid, &st, WNOHANG);

        if (w == r->pid)
            return command_ended(r, st);
        if (w < 0 && errno != EINTR)
            return wait_broken(r, "waitpid");
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return wait_broken(r, "poll");
        if (p[1].revents && loss_told(r))
            session_lost(r);
        if (p[0].revents & POLLIN)
            signals_pass_on(r);
    }
}

/* ---- the whole run -------------------------------------------------------- */

static int run_started(runner *r)
{
    const pt_cli_run *run = r->run;
    pid_t parent = getpid();

    r->own_group = !terminal_foreground();
    fflush(NULL);
    r->pid = fork();
    if (r->pid < 0)
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot fork to run %s: %s", run->cmd,
                           run->name, run->command[0], strerror(errno));
    if (r->pid == 0)
        child_exec(r, parent);
    /* Also here, so that the group exists before the guard joins it
     * (fails harmlessly once COMMAND has exec'd: it did it itself). */
    if (r->own_group) {
        setpgid(r->pid, r->pid);
        guard_start(r);
    }
    return wait_command(r);
}

/* Watch the session holding the object: its id, and the descriptor that
 * tells of its loss (asked for first, so a loss before the check that
 * follows is still told). */
static int runner_watch(runner *r, const pt_cli_run *run)
{
    *r = (runner){.run = run};
    r->loss_fd = pt_client_loss_fd(run->client);
    if (r->loss_fd < 0)
        return pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot watch the session holding it: %s",
                           run->cmd, run->name, pt_last_error_message());
    r->session = pt_client_session_id(run->client);
    return 0;
}

int pt_cli_run_command(const pt_cli_run *run)
{
    runner r;
    sigset_t set;
    int status;

    if ((status = runner_watch(&r, run)) != 0)
        return status;
    if (session_gone(&r))
        return pt_cli_fail(PT_EXIT_LOST,
                           "%s '%s': lost %s: pythreadd closed the session holding it before %s "
                           "started; not running it",
                           run->cmd, run->name, held_word(run), run->command[0]);
    /* Inherited SIGCHLD ignored would reap COMMAND behind our back. */
    signal(SIGCHLD, SIG_DFL);
    forwarded_set(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &r.oldmask);
    r.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r.sfd < 0) {
        status = pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot watch signals to run %s: %s",
                             run->cmd, run->name, run->command[0], strerror(errno));
        sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
        return status;
    }
    status = run_started(&r);
    guard_stop(&r);
    close(r.sfd);
    sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
    return status;
}

/* ---- holding with no COMMAND ------------------------------------------- */

int pt_cli_hold(const pt_cli_run *run, int pidfd, int (*announce)(void *arg), void *arg)
{
    runner r;
    sigset_t set, old;
    int sfd, code;

    if ((code = runner_watch(&r, run)) != 0)
        return code;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Caught before saying it is held: who reads that line may signal at
     * once, and must find the lock released, not pythreadctl dead. */
    sigprocmask(SIG_BLOCK, &set, &old);
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        code = pt_cli_fail(PT_EXIT_FAILED, "%s '%s': cannot watch signals to hold it: %s", run->cmd,
                           run->name, strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return code;
    }
    code = announce(arg);
    while (code == 0) {
        struct pollfd p[3] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = r.loss_fd, .events = POLLIN},
            {.fd = pidfd, .events = POLLIN},
        };

        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            code = pt_cli_fail(PT_EXIT_FAILED, "%s '%s': poll failed while holding it: %s",
                               run->cmd, run->name, strerror(errno));
            break;
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;

            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
            break;
        }
        if (p[2].revents)
            break;
        if (p[1].revents && loss_told(&r))
            code = pt_cli_fail(PT_EXIT_LOST,
                               "%s '%s': lost %s: pythreadd closed the session holding it "
                               "(stopped or restarted)",
                               run->cmd, run->name, held_word(run));
    }
    /* The signals stay blocked: a second one must not kill pythreadctl
     * between here and the release. */
    close(sfd);
    return code;
}
