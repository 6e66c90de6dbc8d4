/*
 * top.c - `pythreadctl top`: the busiest objects (acquisitions a second,
 * contention, waiting calls) and the sessions holding the longest, redrawn
 * every interval in the terminal's width until `q` or ^C; `--once` takes
 * two looks an interval apart and prints one frame (--json for programs).
 *
 * Rates are the differences of the objects' counters between two looks,
 * matched by name; an object new since the last look counts from zero.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DETAIL_MAX 256 /* objects in use whose holders are asked each look */

typedef struct row {
    const pt_inspect_object *o;
    double acq_s, cont_s;
} row;

typedef struct holding { /* one session's holds, its longest first */
    const pt_inspect_party *who;
    const char *object;
    double longest;
    uint32_t held;
} holding;

typedef struct frame {
    pt_inspect_status st;
    row *rows;
    size_t nrows;
    holding *holds;
    size_t nholds;
    size_t skipped;
} frame;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* ---- one frame from two looks ----------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const pt_snap_obj *const *)a)->o.name,
                  (*(const pt_snap_obj *const *)b)->o.name);
}

static double rate(uint64_t now, uint64_t before, double dt)
{
    return now >= before && dt > 0 ? (double)(now - before) / dt : 0;
}

static int busiest(const void *a, const void *b)
{
    const row *x = a, *y = b;

    if (x->acq_s != y->acq_s)
        return x->acq_s < y->acq_s ? 1 : -1;
    if (x->o->waiters != y->o->waiters)
        return x->o->waiters < y->o->waiters ? 1 : -1;
    return strcmp(x->o->name, y->o->name);
}

static void rows_fill(frame *f, const pt_snap *prev, const pt_snap *cur)
{
    pt_snap_obj **old = calloc(prev->n ? prev->n : 1, sizeof(*old));
    double dt = cur->taken - prev->taken;

    f->rows = calloc(cur->n ? cur->n : 1, sizeof(*f->rows));
    if (old == NULL || f->rows == NULL) {
        pt_cli_fail(PT_EXIT_FAILED, "top: out of memory");
        exit(PT_EXIT_FAILED);
    }
    for (size_t i = 0; i < prev->n; i++)
        old[i] = &prev->v[i];
    qsort(old, prev->n, sizeof(*old), by_name);
    for (size_t i = 0; i < cur->n; i++) {
        const pt_snap_obj *c = &cur->v[i], *key = c, **was;

        was = bsearch(&key, old, prev->n, sizeof(*old), by_name);
        f->rows[i] = (row){&c->o, rate(c->o.acquires, was ? (*was)->o.acquires : 0, dt),
                           rate(c->o.contended, was ? (*was)->o.contended : 0, dt)};
    }
    f->nrows = cur->n;
    qsort(f->rows, f->nrows, sizeof(*f->rows), busiest);
    free(old);
}

static holding *holding_of(frame *f, const pt_inspect_party *p)
{
    for (size_t i = 0; i < f->nholds; i++) {
        if (f->holds[i].who->session == p->session)
            return &f->holds[i];
    }
    f->holds[f->nholds] = (holding){p, NULL, -1, 0};
    return &f->holds[f->nholds++];
}

static int longest_first(const void *a, const void *b)
{
    const holding *x = a, *y = b;

    if (x->longest != y->longest)
        return x->longest < y->longest ? 1 : -1;
    return (x->who->session > y->who->session) - (x->who->session < y->who->session);
}

static void holds_fill(frame *f, const pt_snap *cur)
{
    size_t n = 0;

    for (size_t i = 0; i < cur->n; i++)
        n += cur->v[i].d ? cur->v[i].d->n_holders : 0;
    f->holds = calloc(n ? n : 1, sizeof(*f->holds));
    if (f->holds == NULL) {
        pt_cli_fail(PT_EXIT_FAILED, "top: out of memory");
        exit(PT_EXIT_FAILED);
    }
    for (size_t i = 0; i < cur->n; i++) {
        const pt_inspect_detail *d = cur->v[i].d;

        for (size_t k = 0; d != NULL && k < d->n_holders; k++) {
            holding *h = holding_of(f, &d->holders[k]);

            h->held++;
            if (d->holders[k].seconds > h->longest) {
                h->longest = d->holders[k].seconds;
                h->object = cur->v[i].o.name;
            }
        }
    }
    qsort(f->holds, f->nholds, sizeof(*f->holds), longest_first);
}

static void frame_free(frame *f)
{
    free(f->rows);
    free(f->holds);
    memset(f, 0, sizeof(*f));
}

/* ---- drawing ------------------------------------------------------------ */

static void term_size(unsigned *cols, unsigned *lines)
{
    struct winsize ws;
    const char *env = getenv("COLUMNS");

    *cols = env && atoi(env) > 0 ? (unsigned)atoi(env) : 80;
    *lines = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        *cols = ws.ws_col;
        *lines = ws.ws_row > 0 ? ws.ws_row : 24;
    }
    if (*cols < 40)
        *cols = 40;
}

/* s shown in at most width columns, escaped, cut with '~' when longer. */
static void cell(FILE *out, const char *s, unsigned width)
{
    char *e = pt_cli_escape(s);

    if (strlen(e) > width) {
        e[width - 1] = '~';
        e[width] = '\0';
    }
    fprintf(out, "%-*s", (int)width, e);
    free(e);
}

static void header_print(FILE *out, const frame *f, unsigned cols)
{
    char up[32], line[256];

    pt_fmt_duration(up, sizeof(up), f->st.uptime);
    snprintf(line, sizeof(line),
             "pythreadd %s pid %ld, up %s: %llu sessions, %llu objects, %llu calls waiting",
             f->st.version, f->st.pid, up, (unsigned long long)f->st.sessions,
             (unsigned long long)f->st.objects, (unsigned long long)f->st.waiters);
    cell(out, line, cols - 1);
    fputc('\n', out);
}

static void objects_print(FILE *out, const frame *f, unsigned cols, size_t max)
{
    unsigned name_w = cols > 70 ? cols - 1 - 59 : 10;
    char wait[32], state[32];

    fputc('\n', out);
    cell(out, "OBJECT", name_w);
    fprintf(out, " %-10s %9s %9s %7s %12s %6s\n", "KIND", "ACQ/S", "CONT/S", "WAITING",
            "LONGEST WAIT", "STATE");
    for (size_t i = 0; i < f->nrows && i < max; i++) {
        const row *r = &f->rows[i];

        pt_fmt_duration(wait, sizeof(wait), r->o->longest_wait);
        pt_cli_state_word(state, sizeof(state), r->o);
        cell(out, r->o->name, name_w);
        fprintf(out, " %-10s %9.0f %9.0f %7u %12s %6s\n", pt_cli_kind_word(r->o->kind), r->acq_s,
                r->cont_s, r->o->waiters, wait, state);
    }
}

static void holds_print(FILE *out, const frame *f, unsigned cols, size_t max)
{
    unsigned proc_w = 16, obj_w = cols > 72 ? cols - 1 - 44 - proc_w : 10;
    char hold[32];

    fputc('\n', out);
    fprintf(out, "%-8s %-8s ", "SESSION", "PID");
    cell(out, "PROCESS", proc_w);
    fprintf(out, " %5s %12s  ", "HELD", "LONGEST HOLD");
    cell(out, "OBJECT", obj_w);
    fputc('\n', out);
    for (size_t i = 0; i < f->nholds && i < max; i++) {
        const holding *h = &f->holds[i];

        pt_fmt_duration(hold, sizeof(hold), h->longest < 0 ? 0 : h->longest);
        fprintf(out, "%-8llu %-8ld ", (unsigned long long)h->who->session, h->who->pid);
        cell(out, h->who->process, proc_w);
        fprintf(out, " %5u %12s  ", h->held, hold);
        cell(out, h->object ? h->object : "", obj_w);
        fputc('\n', out);
    }
    if (f->skipped)
        fprintf(out, "(holders of %zu more objects in use not asked)\n", f->skipped);
}

static void frame_print(FILE *out, const frame *f, int clear)
{
    unsigned cols, lines;
    size_t room;

    term_size(&cols, &lines);
    room = lines > 12 ? (lines - 8) / 2 : 2;
    if (clear)
        fputs("\033[H\033[J", out);
    header_print(out, f, cols);
    objects_print(out, f, cols, clear ? room : SIZE_MAX);
    holds_print(out, f, cols, clear ? room : SIZE_MAX);
    fflush(out);
}

static void frame_json(const frame *f)
{
    pt_json *j = pt_json_new(stdout);

    pt_json_obj(j, NULL);
    pt_json_arr(j, "objects");
    for (size_t i = 0; i < f->nrows; i++) {
        pt_json_obj(j, NULL);
        pt_json_str(j, "name", f->rows[i].o->name);
        pt_json_str(j, "kind", pt_cli_kind_word(f->rows[i].o->kind));
        pt_json_num(j, "acquires_per_second", f->rows[i].acq_s);
        pt_json_num(j, "contended_per_second", f->rows[i].cont_s);
        pt_json_uint(j, "waiting", f->rows[i].o->waiters);
        pt_json_num(j, "longest_wait", f->rows[i].o->longest_wait);
        pt_json_end(j);
    }
    pt_json_end(j);
    pt_json_arr(j, "sessions");
    for (size_t i = 0; i < f->nholds; i++) {
        pt_json_obj(j, NULL);
        pt_json_uint(j, "session", f->holds[i].who->session);
        pt_json_int(j, "pid", f->holds[i].who->pid);
        pt_json_str(j, "process", f->holds[i].who->process);
        pt_json_uint(j, "held", f->holds[i].held);
        pt_json_num(j, "longest_hold", f->holds[i].longest < 0 ? NAN : f->holds[i].longest);
        pt_json_str(j, "object", f->holds[i].object ? f->holds[i].object : "");
        pt_json_end(j);
    }
    pt_json_end(j);
    pt_json_end(j);
    pt_json_finish(j);
}

/* ---- the loop ----------------------------------------------------------- */

typedef struct top_opts {
    const char *glob;
    double interval;
    int once;
} top_opts;

/* A look at the daemon into *s; its status too. */
static int look(pt_client *c, const top_opts *t, pt_snap *s, pt_inspect_status *st)
{
    int rc = pt_inspect_status_get(c, st);

    return rc != 0 ? rc : pt_snap_take(c, t->glob, DETAIL_MAX, s);
}

/* Waits up to seconds for `q` on the terminal (1: quit). */
static int wait_key(double seconds)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    char ch;

    if (poll(&p, 1, (int)(seconds * 1000)) <= 0 || !(p.revents & POLLIN))
        return 0;
    if (read(STDIN_FILENO, &ch, 1) != 1)
        return 1; /* the terminal is gone */
    return ch == 'q' || ch == 'Q';
}

static void pause_for(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
        ;
}

static int run(pt_client *c, const top_opts *t, const pt_cli *cli)
{
    pt_snap prev, cur;
    frame f = {0};
    int rc = look(c, t, &prev, &f.st);

    while (rc == 0) {
        if (t->once)
            pause_for(t->interval);
        else if (wait_key(t->interval) || stop)
            break;
        rc = look(c, t, &cur, &f.st);
        if (rc != 0)
            break;
        rows_fill(&f, &prev, &cur);
        holds_fill(&f, &cur);
        f.skipped = cur.skipped;
        if (cli->json)
            frame_json(&f); /* a failed write shows in the exit status (main) */
        else
            frame_print(stdout, &f, !t->once);
        frame_free(&f);
        pt_snap_free(&prev);
        prev = cur;
        if (t->once || stop)
            break;
    }
    pt_snap_free(&prev);
    return rc;
}

/* The terminal answers keys at once and echoes none while top runs. */
static int term_raw(struct termios *saved)
{
    struct termios raw;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
        return 0;
    raw = *saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    return tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
}

static int top_parse(pt_cli *cli, int argc, char **argv, top_opts *t)
{
    static const pt_cli_option longopts[] = {
        {"once", no_argument, NULL, '1'}, {"interval", required_argument, NULL, 'i'}, {0}};
    const pt_cli_command *cmd = pt_cli_find("top");
    int opt;

    *t = (top_opts){NULL, 1.0, 0};
    while ((opt = pt_cli_getopt(cli, cmd, argc, argv, "i:", longopts)) != -1) {
        switch (opt) {
        case '1':
            t->once = 1;
            break;
        case 'i':
            if (pt_cli_parse_seconds("top", "--interval", optarg, &t->interval) != 0)
                return PT_EXIT_USAGE;
            break;
        case 'h':
            return -1;
        default:
            return PT_EXIT_USAGE;
        }
    }
    if (argc - optind > 1)
        return pt_cli_usage("top", "at most one PATTERN");
    if (t->interval < 0.1 || t->interval > 3600)
        return pt_cli_usage("top", "--interval is between 0.1 and 3600 seconds");
    if (cli->json && !t->once)
        return pt_cli_usage("top", "--json needs --once");
    t->glob = optind < argc ? argv[optind] : NULL;
    return 0;
}

int pt_cmd_top(pt_cli *cli, int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    struct termios saved;
    top_opts t;
    pt_client *c;
    int code = top_parse(cli, argc, argv, &t), raw, rc;

    if (code != 0)
        return code < 0 ? PT_EXIT_OK : code;
    if ((c = pt_cli_client(cli, &code)) == NULL)
        return code;
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a wait ends at once */
    sigaction(SIGTERM, &sa, NULL);
    raw = !t.once && term_raw(&saved);
    rc = run(c, &t, cli);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    return rc != 0 ? pt_cli_lib_fail("top", rc) : PT_EXIT_OK;
}
