/*
 * cli.h - what the parts of pythreadctl share: the options every command
 * takes, the exit codes, the table and JSON writers, and the commands.
 */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pythread.h"
#include "pythread_inspect.h"

#define PT_CLI_NAME "pythreadctl"

/* Exit codes (documented in --help). */
enum {
    PT_EXIT_OK = 0,
    PT_EXIT_FAILED = 1,   /* the operation failed or timed out */
    PT_EXIT_USAGE = 2,    /* bad command line */
    PT_EXIT_NODAEMON = 3, /* the daemon cannot be reached */
    PT_EXIT_LOST = 4      /* lock/sem: the hold ended while COMMAND ran */
};

/* Options every command accepts, before or after its name. */
typedef struct pt_cli {
    const char *socket; /* NULL: $PYTHREAD_SOCKET, else the default path */
    int json;
    int no_legend;
    int tty; /* stdout is a terminal: align tables */
    pt_client *client;
} pt_cli;

/* One subcommand. run gets argv with argv[0] the command's name. */
typedef struct pt_cli_command {
    const char *name;
    int (*run)(pt_cli *cli, int argc, char **argv);
    const char *synopsis; /* "NAME [--wait S | --nonblock] -- COMMAND..." */
    const char *summary;  /* one line for the command list */
    const char *help;     /* the rest of its --help */
} pt_cli_command;

extern const pt_cli_command pt_cli_commands[];
extern const size_t pt_cli_ncommands;

/* main.c */
/* One line "pythreadctl: ..." on stderr; returns code. */
int pt_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error for cmd: the line, then a hint to --help; returns 2. */
int pt_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A library failure: its message and the exit code its error maps to. */
int pt_cli_lib_fail(const char *what, int err);
/* Connects on first use; NULL after reporting why (exit code in *code). */
pt_client *pt_cli_client(pt_cli *cli, int *code);
/*
 * getopt_long over a command's own options plus the common ones
 * (-s/--socket, --json, --no-legend, -h/--help). Returns the option
 * character of a command option, -1 at the end, or '?' after a usage
 * message (exit 2); --help prints the command's help and returns 'h'.
 */
typedef struct option pt_cli_option;
int pt_cli_getopt(pt_cli *cli, const pt_cli_command *cmd, int argc, char **argv,
                  const char *shortopts, const pt_cli_option *longopts);
const pt_cli_command *pt_cli_find(const char *name);
/* Numbers: "seconds" >= 0 (or -1 when allow_forever), unsigned counts. */
int pt_cli_parse_seconds(const char *cmd, const char *opt, const char *arg, double *out);
int pt_cli_parse_u32(const char *cmd, const char *opt, const char *arg, uint32_t min,
                     uint32_t *out);
int pt_cli_parse_i64(const char *cmd, const char *opt, const char *arg, int64_t *out);
int pt_cli_parse_mode(const char *cmd, const char *arg, unsigned *out);

/* kinds: "lock", "rlock", "condition", "semaphore", "bounded_semaphore",
 * "event", "barrier" */
const char *pt_cli_kind_word(int kind);
int pt_cli_kind_parse(const char *word); /* 0 if unknown */

/* out.c: text for people. Names, paths and messages may come from other
 * users: every byte outside printable ASCII is written as an escape (\n,
 * \t, \xHH; a backslash as \\), so none can drive the reader's terminal
 * or forge a line. Returns a malloc'd copy (exits when out of memory). */
char *pt_cli_escape(const char *s);

/* out.c: tables */
typedef struct pt_table pt_table;
pt_table *pt_table_new(size_t ncols, const char *const *headers);
/* Adds one row of ncols strings (copied through pt_cli_escape). */
void pt_table_row(pt_table *t, const char *const *cells);
/* Aligned with a header (unless no_legend) on a terminal; tab-separated
 * otherwise. Frees t. */
void pt_table_print(pt_table *t, const pt_cli *cli, FILE *f);

/* out.c: JSON, one document written as it goes */
typedef struct pt_json pt_json;
pt_json *pt_json_new(FILE *f);
/* --pretty: every document after this is indented two spaces a level. */
void pt_json_set_pretty(int on);
void pt_json_obj(pt_json *j, const char *key); /* key NULL inside arrays / at top */
void pt_json_arr(pt_json *j, const char *key);
void pt_json_end(pt_json *j); /* closes the innermost */
void pt_json_str(pt_json *j, const char *key, const char *v);
void pt_json_strn(pt_json *j, const char *key, const char *v, size_t len);
void pt_json_int(pt_json *j, const char *key, int64_t v);
void pt_json_uint(pt_json *j, const char *key, uint64_t v);
void pt_json_num(pt_json *j, const char *key, double v); /* NaN/inf as null */
void pt_json_bool(pt_json *j, const char *key, int v);
void pt_json_null(pt_json *j, const char *key);
/* Ends the document with a newline and frees j; -1 if writing failed. */
int pt_json_finish(pt_json *j);

/* Formatting helpers for people. */
void pt_fmt_duration(char *buf, size_t len, double seconds);
void pt_fmt_time(char *buf, size_t len, double epoch);
/* Tables show who by name and when by age; --json keeps the numbers. */
void pt_fmt_uid(char *buf, size_t len, uint32_t uid); /* "alice (1000)", or "1000" */
void pt_fmt_gid(char *buf, size_t len, uint32_t gid);
void pt_fmt_ago(char *buf, size_t len, double epoch);      /* "5s ago", "3m12s ago" */
void pt_fmt_time_ago(char *buf, size_t len, double epoch); /* pt_fmt_time, then (ago) */

/* inspect_cmds.c */
/* A one-word state: locked/free, a semaphore's value (value/bound),
 * set/clear, n_waiting/parties or broken. */
void pt_cli_state_word(char *buf, size_t len, const pt_inspect_object *o);
int pt_cmd_status(pt_cli *cli, int argc, char **argv);
int pt_cmd_list(pt_cli *cli, int argc, char **argv);
int pt_cmd_show(pt_cli *cli, int argc, char **argv);
int pt_cmd_sessions(pt_cli *cli, int argc, char **argv);
int pt_cmd_metrics(pt_cli *cli, int argc, char **argv);

/* snapshot.c: the objects matching glob (NULL: all) and, for at most
 * max_detail of those in use (with waiters first), who holds and who waits
 * (d; NULL for the others). */
typedef struct pt_snap_obj {
    pt_inspect_object o;
    pt_inspect_detail *d;
} pt_snap_obj;
typedef struct pt_snap {
    pt_snap_obj *v;
    size_t n, cap;
    size_t skipped; /* objects in use whose detail was not asked */
    double taken;   /* CLOCK_MONOTONIC seconds */
} pt_snap;
int pt_snap_take(pt_client *c, const char *glob, size_t max_detail, pt_snap *out);
void pt_snap_free(pt_snap *s);

/* graph.c, top.c */
int pt_cmd_graph(pt_cli *cli, int argc, char **argv);
int pt_cmd_top(pt_cli *cli, int argc, char **argv);
int pt_cmd_deadlocks(pt_cli *cli, int argc, char **argv);

/* act_cmds.c */
int pt_cmd_create(pt_cli *cli, int argc, char **argv);
int pt_cmd_unlink(pt_cli *cli, int argc, char **argv);
int pt_cmd_lock(pt_cli *cli, int argc, char **argv);
int pt_cmd_sem(pt_cli *cli, int argc, char **argv);
int pt_cmd_event(pt_cli *cli, int argc, char **argv);
int pt_cmd_barrier(pt_cli *cli, int argc, char **argv);
int pt_cmd_notify(pt_cli *cli, int argc, char **argv);
int pt_cmd_release(pt_cli *cli, int argc, char **argv);

/* run.c: COMMAND while a hold lasts (lock, sem) */
typedef struct pt_cli_run {
    const char *cmd;   /* "lock" or "sem" */
    const char *name;  /* the object */
    char **command;    /* COMMAND [ARGS...], NULL-terminated */
    int lost_signal;   /* sent to COMMAND when the session is lost */
    pt_client *client; /* its session holds the object */
} pt_cli_run;
/*
 * Runs COMMAND while the client's session holds the object (across a
 * restart of a daemon that keeps it), the passing SIGHUP, SIGINT, SIGQUIT and SIGTERM on to it.
 * Returns its status (128+N when signal N ended it, 126/127 when it could not run); PT_EXIT_LOST
 * when the session ended first (COMMAND was sent lost_signal at once and waited for), after saying
 * so on stderr; or PT_EXIT_FAILED.
 */
int pt_cli_run_command(const pt_cli_run *run);
/*
 * Holds until SIGINT, SIGTERM or SIGHUP comes (0), the process behind
 * pidfd ends (0; -1 for none) or the session is lost (PT_EXIT_LOST, after
 * saying so). announce(arg) runs once those signals are caught, before
 * waiting; a nonzero return ends the hold with that status.
 */
int pt_cli_hold(const pt_cli_run *run, int pidfd, int (*announce)(void *arg), void *arg);
/* The start of a --hold-for holder's process name; its PID follows. */
#define PT_CLI_HOLDER_COMM "pthold-"
/* "TERM", "SIGTERM", "term" or "15"; 0, or 2 after a usage message. */
int pt_cli_parse_signal(const char *cmd, const char *opt, const char *arg, int *out);

#endif /* PT_CLI_H */
