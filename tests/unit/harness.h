/*
 * harness.h - a core with a capturing sink for the unit tests.
 *
 * Every answer the core gives is recorded (session, id, status, fields and
 * a copy of the message). Each call helper sends one request with a fresh
 * id and returns the answer if it came at once, or NULL if the request was
 * parked; th_find() looks an answer up later. The sink checks on every
 * answer that no request is answered twice and that an ending session is
 * never answered.
 */
#ifndef PT_TEST_HARNESS_H
#define PT_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core.h"

typedef struct th_rec {
    pt_session *session;
    uint64_t session_id;
    uint64_t id;
    int status;
    int ok;
    int64_t value;
    uint64_t token;
    uint32_t handle;
    int created;
    int run_action;
    int has_state;
    pt_state state;
    char message[1024];
} th_rec;

#define TH_S(n) ((uint64_t)(n)*PT_NS_PER_SEC)

/* Non-zero while the capturing sink runs (allocation-failure tests spare
 * the harness's own allocations). */
extern int th_in_sink;

/* cmocka group setup/teardown: a core with default limits. */
int th_setup(void **state);
int th_teardown(void **state);
/* A core with the given limits (teardown with th_teardown). */
void th_init(const pt_core_limits *limits);

pt_core *th_core(void);
pt_session *th_session(void);
void th_end(pt_session *s, uint64_t now);
void th_expire(uint64_t now);
pt_core_stats th_stats(void);

size_t th_count(void);
const th_rec *th_at(size_t i);
const th_rec *th_find(uint64_t id);
uint64_t th_last_id(void);
/* Answers recorded since mark (an earlier th_count()). */
size_t th_since(size_t mark);

/* Sends call with a fresh id; returns its immediate answer or NULL. */
const th_rec *th_do(pt_session *s, pt_call *call, uint64_t now);

/* Opens and asserts success; returns the handle. */
uint32_t th_open(pt_session *s, const char *name, int kind, uint32_t flags);
uint32_t th_open_sem(pt_session *s, const char *name, int64_t value, int bounded, uint32_t flags);
uint32_t th_open_barrier(pt_session *s, const char *name, uint32_t parties, double timeout);
uint32_t th_open_cond(pt_session *s, const char *name, uint32_t lock_handle);

const th_rec *call_open(pt_session *s, const char *name, int kind, uint32_t flags);
const th_rec *call_open_full(pt_session *s, const pt_call *params);
const th_rec *call_close(pt_session *s, uint32_t h);
const th_rec *call_unlink(pt_session *s, const char *name);
const th_rec *call_state(pt_session *s, uint32_t h, uint64_t thread);
const th_rec *call_acquire(pt_session *s, uint32_t h, uint64_t thread, int blocking, double timeout,
                           uint64_t now);
const th_rec *call_release(pt_session *s, uint32_t h, uint64_t thread, uint32_t count,
                           uint64_t now);
const th_rec *call_wait(pt_session *s, uint32_t h, uint64_t thread, double timeout, uint64_t now);
const th_rec *call_notify(pt_session *s, uint32_t h, uint64_t thread, uint32_t count);
const th_rec *call_set(pt_session *s, uint32_t h);
const th_rec *call_clear(pt_session *s, uint32_t h);
const th_rec *call_event_wait(pt_session *s, uint32_t h, double timeout, uint64_t now);
const th_rec *call_bwait(pt_session *s, uint32_t h, uint64_t thread, double timeout, int has_action,
                         uint64_t now);
const th_rec *call_action_done(pt_session *s, uint32_t h, int32_t status, uint64_t now);
const th_rec *call_abort(pt_session *s, uint32_t h);
const th_rec *call_reset(pt_session *s, uint32_t h);
const th_rec *call_op(pt_session *s, pt_op op, uint32_t h);

/* Checks every structural invariant of the core (invariants.c); run after
 * every call, expiry and session end by the helpers. */
void th_check(void);

/* Asserts an error answer whose message contains text. */
void th_assert_error(const th_rec *r, int status, const char *text);
#define assert_error(r, status, text) th_assert_error((r), (status), (text))
/* Asserts an ok answer with ok == want. */
#define assert_answer(r, want)                                                                     \
    do {                                                                                           \
        const th_rec *r_ = (r);                                                                    \
        assert_non_null(r_);                                                                       \
        assert_int_equal(r_->status, 0);                                                           \
        assert_int_equal(r_->ok, (want));                                                          \
    } while (0)

/* A test with a fresh core of default limits. */
#define TH_TEST(f) cmocka_unit_test_setup_teardown(f, th_setup, th_teardown)

#endif /* PT_TEST_HARNESS_H */
