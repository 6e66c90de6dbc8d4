/*
 * out.c - output for people and for scripts: aligned tables (tab-separated
 * when stdout is not a terminal) and a small streaming JSON writer that
 * escapes every string itself.
 */
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- tables ------------------------------------------------------------ */

struct pt_table {
    size_t ncols;
    size_t nrows, cap;
    char **cells; /* nrows * ncols, row 0 the headers */
};

char *pt_cli_escape(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    char *out = malloc(4 * strlen((const char *)p) + 1), *o = out;

    if (!out) {
        fputs(PT_CLI_NAME ": out of memory\n", stderr); /* pt_cli_fail escapes too */
        exit(PT_EXIT_FAILED);
    }
    for (; *p; p++) {
        if (*p == '\\')
            o += sprintf(o, "\\\\");
        else if (*p == '\n')
            o += sprintf(o, "\\n");
        else if (*p == '\t')
            o += sprintf(o, "\\t");
        else if (*p < 0x20 || *p >= 0x7f)
            o += sprintf(o, "\\x%02x", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

pt_table *pt_table_new(size_t ncols, const char *const *headers)
{
    pt_table *t = calloc(1, sizeof(*t));

    if (!t) {
        pt_cli_fail(PT_EXIT_FAILED, "out of memory");
        exit(PT_EXIT_FAILED);
    }
    t->ncols = ncols;
    pt_table_row(t, headers);
    return t;
}

void pt_table_row(pt_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **v = realloc(t->cells, cap * t->ncols * sizeof(*v));

        if (!v) {
            pt_cli_fail(PT_EXIT_FAILED, "out of memory");
            exit(PT_EXIT_FAILED);
        }
        t->cells = v;
        t->cap = cap;
    }
    /* Cells carry names and paths that came from other users. */
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = pt_cli_escape(cells[i]);
    t->nrows++;
}

void pt_table_print(pt_table *t, const pt_cli *cli, FILE *f)
{
    size_t *width = calloc(t->ncols, sizeof(*width));
    size_t first = cli->no_legend ? 1 : 0;

    for (size_t r = first; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && width; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);

            if (n > width[c])
                width[c] = n;
        }
    for (size_t r = first; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            int last = c + 1 == t->ncols;

            if (last)
                fputs(cell, f);
            else if (cli->tty && width)
                fprintf(f, "%-*s  ", (int)width[c], cell);
            else
                fprintf(f, "%s\t", cell);
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(width);
    free(t);
}

/* ---- JSON -------------------------------------------------------------- */

#define JSON_DEPTH 16

/* --pretty: indented, for people; the same document otherwise. */
static int json_pretty;

void pt_json_set_pretty(int on)
{
    json_pretty = on;
}

struct pt_json {
    FILE *f;
    int depth;
    int first[JSON_DEPTH];  /* nothing written yet at this level */
    char close[JSON_DEPTH]; /* '}' or ']' that ends this level */
};

pt_json *pt_json_new(FILE *f)
{
    pt_json *j = calloc(1, sizeof(*j));

    if (!j) {
        pt_cli_fail(PT_EXIT_FAILED, "out of memory");
        exit(PT_EXIT_FAILED);
    }
    j->f = f;
    j->first[0] = 1;
    return j;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* A JSON string: quotes, backslashes and control characters (C0, DEL,
 * C1) escaped, valid UTF-8 kept, any invalid byte replaced by U+FFFD. */
static void json_string(FILE *f, const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;

    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        size_t len;

        switch (ch) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                fprintf(f, "\\u%04x", ch);
                break;
            }
            len = utf8_len(s + i, n - i);
            if (len == 0) {
                fputs("\\ufffd", f);
                break;
            }
            /* C1 controls (U+0080-U+009F): a terminal may take U+009B
             * for an escape sequence if the document is ever shown raw. */
            if (len == 2 && ch == 0xc2 && s[i + 1] < 0xa0) {
                fprintf(f, "\\u%04x", s[i + 1]);
                i += len;
                continue;
            }
            fwrite(s + i, 1, len, f);
            i += len;
            continue;
        }
        i++;
    }
    fputc('"', f);
}

static void json_indent(pt_json *j, int depth)
{
    fputc('\n', j->f);
    for (int i = 0; i < depth; i++)
        fputs("  ", j->f);
}

static void json_key(pt_json *j, const char *key)
{
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = 0;
    if (json_pretty && j->depth > 0)
        json_indent(j, j->depth);
    if (key) {
        json_string(j->f, key, strlen(key));
        fputs(json_pretty ? ": " : ":", j->f);
    }
}

static void json_open(pt_json *j, const char *key, char ch)
{
    json_key(j, key);
    fputc(ch, j->f);
    if (j->depth + 1 < JSON_DEPTH) {
        j->depth++;
        j->first[j->depth] = 1;
        j->close[j->depth] = ch == '{' ? '}' : ']';
    }
}

void pt_json_obj(pt_json *j, const char *key)
{
    json_open(j, key, '{');
}

void pt_json_arr(pt_json *j, const char *key)
{
    json_open(j, key, '[');
}

void pt_json_end(pt_json *j)
{
    if (j->depth == 0)
        return;
    if (json_pretty && !j->first[j->depth])
        json_indent(j, j->depth - 1);
    fputc(j->close[j->depth--], j->f);
    if (j->depth == 0)
        fputc('\n', j->f); /* the document is complete: end its line */
}

void pt_json_str(pt_json *j, const char *key, const char *v)
{
    pt_json_strn(j, key, v ? v : "", v ? strlen(v) : 0);
}

void pt_json_strn(pt_json *j, const char *key, const char *v, size_t len)
{
    json_key(j, key);
    json_string(j->f, v, len);
}

void pt_json_int(pt_json *j, const char *key, int64_t v)
{
    json_key(j, key);
    fprintf(j->f, "%lld", (long long)v);
}

void pt_json_uint(pt_json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void pt_json_num(pt_json *j, const char *key, double v)
{
    char buf[32];

    json_key(j, key);
    if (!isfinite(v)) {
        fputs("null", j->f);
        return;
    }
    /* The shortest text that reads back as exactly v: a time since the
     * epoch needs 16 or 17 digits, where a fixed %.9g rounded it to 10 s. */
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof(buf), "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, j->f);
}

void pt_json_bool(pt_json *j, const char *key, int v)
{
    json_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

void pt_json_null(pt_json *j, const char *key)
{
    json_key(j, key);
    fputs("null", j->f);
}

int pt_json_finish(pt_json *j)
{
    int bad;

    fputc('\n', j->f);
    bad = ferror(j->f);
    free(j);
    return bad ? -1 : 0;
}

/* ---- numbers for people ------------------------------------------------ */

void pt_fmt_duration(char *buf, size_t len, double s)
{
    if (s < 0 || !isfinite(s))
        snprintf(buf, len, "-");
    else if (s < 1e-3)
        snprintf(buf, len, "%.0fus", s * 1e6);
    else if (s < 1)
        snprintf(buf, len, "%.1fms", s * 1e3);
    else if (s < 60)
        snprintf(buf, len, "%.2fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dd%02dh", (int)(s / 86400), (int)(s / 3600) % 24);
}

void pt_fmt_time(char *buf, size_t len, double epoch)
{
    time_t t = (time_t)epoch;
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, len, "-");
}

/* ---- who and when, for people --------------------------------------------- */

/* Names looked up once per run: a table repeats the same few ids, and
 * each lookup may go to a directory service. */
#define ID_CACHE 32
static struct {
    uint32_t id;
    int group;
    char name[64]; /* "" when the id has no name */
} id_cache[ID_CACHE];
static size_t id_cached;

static const char *id_name(uint32_t id, int group)
{
    char tmp[4096];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    size_t slot;

    for (size_t i = 0; i < id_cached && i < ID_CACHE; i++)
        if (id_cache[i].id == id && id_cache[i].group == group)
            return id_cache[i].name;
    slot = id_cached++ % ID_CACHE;
    id_cache[slot].id = id;
    id_cache[slot].group = group;
    id_cache[slot].name[0] = '\0';
    if (group && getgrgid_r((gid_t)id, &gr, tmp, sizeof(tmp), &grp) == 0 && grp)
        snprintf(id_cache[slot].name, sizeof(id_cache[slot].name), "%s", grp->gr_name);
    else if (!group && getpwuid_r((uid_t)id, &pw, tmp, sizeof(tmp), &pwp) == 0 && pwp)
        snprintf(id_cache[slot].name, sizeof(id_cache[slot].name), "%s", pwp->pw_name);
    return id_cache[slot].name;
}

static void fmt_id(char *buf, size_t len, uint32_t id, int group)
{
    const char *name = id_name(id, group);

    if (*name)
        snprintf(buf, len, "%s (%u)", name, id);
    else
        snprintf(buf, len, "%u", id);
}

void pt_fmt_uid(char *buf, size_t len, uint32_t uid)
{
    fmt_id(buf, len, uid, 0);
}

void pt_fmt_gid(char *buf, size_t len, uint32_t gid)
{
    fmt_id(buf, len, gid, 1);
}

void pt_fmt_ago(char *buf, size_t len, double epoch)
{
    struct timespec now;
    double d;
    long s;

    if (!(epoch > 0) || !isfinite(epoch) || clock_gettime(CLOCK_REALTIME, &now) < 0) {
        snprintf(buf, len, "-");
        return;
    }
    d = (double)now.tv_sec + now.tv_nsec / 1e9 - epoch;
    if (d < 0) { /* the daemon's clock is ahead of ours */
        snprintf(buf, len, "just now");
        return;
    }
    s = (long)d;
    if (s < 60)
        snprintf(buf, len, "%lds ago", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm%02lds ago", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%ldh%02ldm ago", s / 3600, s / 60 % 60);
    else
        snprintf(buf, len, "%ldd%02ldh ago", s / 86400, s / 3600 % 24);
}

void pt_fmt_time_ago(char *buf, size_t len, double epoch)
{
    char abs[64], ago[32];

    pt_fmt_time(abs, sizeof(abs), epoch);
    pt_fmt_ago(ago, sizeof(ago), epoch);
    if (strcmp(ago, "-") == 0)
        snprintf(buf, len, "%s", abs);
    else
        snprintf(buf, len, "%s (%s)", abs, ago);
}
