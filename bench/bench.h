/*
 * bench.h - what the benchmark programs share: a monotonic clock in
 * nanoseconds, a sample set with median and p99, the one line format every
 * result is printed in, and reading a process's CPU time and resident size.
 *
 * Every program prints its results as lines
 *     RESULT <name> median_ns=<n> p99_ns=<n> n=<samples> [key=value ...]
 * on stdout; bench/run collects them into the table.
 */
#ifndef PT_BENCH_H
#define PT_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bench_samples {
    uint64_t *ns;
    size_t n;
    size_t cap;
} bench_samples;

uint64_t bench_now_ns(void);

/* Room for cap samples; exits with a message when memory is short. */
void bench_samples_init(bench_samples *s, size_t cap);
void bench_samples_free(bench_samples *s);
static inline void bench_samples_add(bench_samples *s, uint64_t ns)
{
    if (s->n < s->cap)
        s->ns[s->n++] = ns;
}
/* Sorts the samples and prints one RESULT line; extra (may be NULL) is
 * appended as it is. */
void bench_report(const char *name, bench_samples *s, const char *extra);

/* CPU time of pid in nanoseconds (/proc/PID/schedstat, else utime + stime
 * from /proc/PID/stat); 0 if unknown. */
uint64_t bench_proc_cpu_ns(pid_t pid);
/* VmRSS of pid in bytes, from /proc/PID/status; 0 if unknown. */
uint64_t bench_proc_rss(pid_t pid);
/* Read- and write-type system calls pid made (syscr, syscw of
 * /proc/PID/io); 0 if unknown. */
void bench_proc_syscalls(pid_t pid, uint64_t *reads, uint64_t *writes);

/* Print a message and exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A whole number from argv, or exit with a usage message naming what. */
long bench_arg(const char *s, const char *what);

/* The echo server (bench_echo.c). bench_frame_sizes() sets the sizes of a
 * Lock acquire frame and of its answer; bench_echo_start forks a server
 * answering each request of bench_req_size bytes with bench_resp_size bytes
 * (up to BENCH_PIPE_DEPTH at once) and returns the connected descriptor. */
#define BENCH_PIPE_DEPTH 64
extern size_t bench_req_size, bench_resp_size;
void bench_frame_sizes(void);
int bench_echo_start(pid_t *child);
void bench_echo_stop(int fd, pid_t child);
/* Whole reads and writes; a read of end of file exits the process. */
void bench_read_full(int fd, void *buf, size_t len);
void bench_write_full(int fd, const void *buf, size_t len);

#endif /* PT_BENCH_H */
