/*
 * bench_util.c - clock, samples, the RESULT line and /proc readers shared
 * by the benchmark programs.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

long bench_arg(const char *s, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 0)
        bench_die("%s: '%s' is not a whole number", what, s);
    return v;
}

void bench_samples_init(bench_samples *s, size_t cap)
{
    s->ns = malloc((cap ? cap : 1) * sizeof(*s->ns));
    if (!s->ns)
        bench_die("cannot allocate room for %zu samples", cap);
    s->n = 0;
    s->cap = cap;
}

void bench_samples_free(bench_samples *s)
{
    free(s->ns);
    s->ns = NULL;
    s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* The sample at quantile q (nearest rank) of a sorted set. */
static uint64_t quantile(const bench_samples *s, double q)
{
    size_t i = (size_t)(q * (double)s->n);

    if (i >= s->n)
        i = s->n - 1;
    return s->ns[i];
}

void bench_report(const char *name, bench_samples *s, const char *extra)
{
    if (!s->n) {
        printf("RESULT %s median_ns=0 p99_ns=0 n=0%s%s\n", name, extra ? " " : "",
               extra ? extra : "");
        fflush(stdout);
        return;
    }
    qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
    printf("RESULT %s median_ns=%llu p99_ns=%llu n=%zu%s%s\n", name,
           (unsigned long long)quantile(s, 0.5), (unsigned long long)quantile(s, 0.99), s->n,
           extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

/* The scheduler's own run time in nanoseconds (the main thread's, which is
 * all of a one-thread daemon); 0 when the kernel does not keep it. */
static uint64_t proc_schedstat_ns(pid_t pid)
{
    char path[64];
    unsigned long long ns = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu", &ns) != 1)
        ns = 0;
    fclose(f);
    return ns;
}

uint64_t bench_proc_cpu_ns(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t precise = proc_schedstat_ns(pid);
    FILE *f;
    size_t n;

    /* Clock ticks are 10 ms: too coarse for a few seconds of load. */
    if (precise)
        return precise;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: fields are counted after its ')'. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
}

uint64_t bench_proc_rss(pid_t pid)
{
    char path[64], line[256];
    unsigned long long kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb * 1024;
}

void bench_proc_syscalls(pid_t pid, uint64_t *reads, uint64_t *writes)
{
    char path[64], line[256];
    unsigned long long v;
    FILE *f;

    *reads = *writes = 0;
    snprintf(path, sizeof(path), "/proc/%ld/io", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "syscr: %llu", &v) == 1)
            *reads = v;
        else if (sscanf(line, "syscw: %llu", &v) == 1)
            *writes = v;
    }
    fclose(f);
}
