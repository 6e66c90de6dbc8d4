/*
 * tutil.h - helpers shared by the thread tests: a monotonic clock, polling
 * with a deadline, and a gate that holds threads until it is opened.
 */
#ifndef PT_TEST_TUTIL_H
#define PT_TEST_TUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "pythread.h"

/* Longest any test waits for something that must happen. */
#define TU_PATIENCE 30.0

static inline double tu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void tu_nap(void)
{
    struct timespec ms = {0, 1000000};

    nanosleep(&ms, NULL);
}

/* Poll an atomic until it reaches want or TU_PATIENCE passes; 1 if it did. */
static inline int tu_wait_int(atomic_int *v, int want)
{
    double end = tu_now() + TU_PATIENCE;

    while (atomic_load(v) < want) {
        if (tu_now() > end)
            return 0;
        tu_nap();
    }
    return 1;
}

/* Poll until pt_active_count() is want or TU_PATIENCE passes. */
static inline int tu_wait_active(int want)
{
    double end = tu_now() + TU_PATIENCE;

    while (pt_active_count() != want) {
        if (tu_now() > end)
            return 0;
        tu_nap();
    }
    return 1;
}

struct tu_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
};

static inline void tu_gate_init(struct tu_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
}

static inline void tu_gate_open(struct tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static inline void tu_gate_wait(struct tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline void tu_gate_destroy(struct tu_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* The thread's name as a string in buf. */
static inline const char *tu_name(pt_thread *t, char *buf, size_t size)
{
    pt_thread_get_name(t, buf, size);
    return buf;
}

/* 1 if t is among the threads pt_enumerate() lists now. */
static inline int tu_listed(pt_thread *t)
{
    pt_thread *v[512];
    int n = pt_enumerate(v, 512), found = 0;

    for (int i = 0; i < n && i < 512; i++) {
        found |= v[i] == t;
        pt_thread_unref(v[i]);
    }
    return found;
}

/* End of a test program. After a failure, threads a failed test left
 * blocked must not hold up the exit-time join: leave at once. */
static inline int tu_finish(int failures)
{
    if (failures != 0) {
        fflush(stdout);
        fflush(stderr);
        _exit(1);
    }
    return 0;
}

#endif /* PT_TEST_TUTIL_H */
