/*
 * it_etcd.c - the daemon's etcd client against a real 3-member cluster on
 * 127.0.0.1: compare-and-swap ordering, lease keepalive and expiry seen by a
 * watch, a watch across a kill -9 of the leader (no event lost or twice),
 * and failover when the member in use is killed. One cluster for the group;
 * a test that kills a member starts it again before the next.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "etcd.h"
#include "etcd_cluster.h"

#define DEADLINE 10.0

static pt_etcd_cluster cluster;
static struct event_base *base;
static pt_etcd_loop loop;

/* Runs the loop until *flag is set or the deadline passes; 1 if set. */
static int run_until(const int *flag, double deadline)
{
    double end = pt_etcd_now() + deadline;
    while (!*flag && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *flag;
}

static pt_etcd *client_from(int first)
{
    char eps[512], err[256];
    pt_etcd_cluster_endpoints_from(&cluster, first, eps, sizeof eps);
    pt_etcd *e = pt_etcd_new(base, eps, NULL, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    return e;
}

static int group_setup(void **state)
{
    (void)state;
    if (pt_etcd_cluster_start_or_skip(&cluster, 3, 20.0) != 0)
        return -1;
    if (pt_etcd_loop_start(&loop) < 0)
        return -1;
    base = loop.base;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pt_etcd_loop_stop(&loop);
    pt_etcd_cluster_stop(&cluster);
    return 0;
}

/* Brings every member back after a test that killed one. */
static int heal(void **state)
{
    (void)state;
    return pt_etcd_cluster_heal(&cluster, DEADLINE);
}

/* ---- compare-and-swap ordering ----------------------------------------- */

#define CAS_CLIENTS 3
#define CAS_EACH    15

typedef struct cas_client {
    pt_etcd *e;
    int done, left;
    int64_t mod;   /* the counter's mod revision as last read */
    long value;    /* its value then */
    char next[24]; /* the value being written */
} cas_client;

static struct {
    int64_t rev[CAS_CLIENTS * CAS_EACH + 1]; /* revision that wrote value i */
    int n;
    int errors;
} cas_log;

static void cas_step(cas_client *c);

static void cas_answer(const pt_etcd_result *r, void *arg)
{
    cas_client *c = arg;
    if (r->err) {
        cas_log.errors++;
        print_message("cas: %s\n", r->message);
        c->done = 1;
        return;
    }
    if (r->succeeded) {
        long v = c->value + 1;
        if (v >= 1 && v <= CAS_CLIENTS * CAS_EACH && cas_log.rev[v] == 0)
            cas_log.rev[v] = r->revision;
        else
            cas_log.errors++; /* a value written twice: the compare let two through */
        cas_log.n++;
        c->value = v;
        c->mod = r->revision;
        if (--c->left == 0) {
            c->done = 1;
            return;
        }
    } else if (r->nkvs == 1) {
        c->mod = r->kvs[0].mod_revision;
        c->value = strtol(r->kvs[0].value.p, NULL, 10);
    }
    cas_step(c);
}

static void cas_step(cas_client *c)
{
    snprintf(c->next, sizeof c->next, "%ld", c->value + 1);
    pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_MOD,
                       .result = PT_ETCD_EQUAL,
                       .key = pt_etcd_str("cas/counter"),
                       .number = c->mod};
    pt_etcd_op put = {
        .kind = PT_ETCD_OP_PUT, .key = pt_etcd_str("cas/counter"), .value = pt_etcd_str(c->next)};
    pt_etcd_op get = {.kind = PT_ETCD_OP_RANGE, .key = pt_etcd_str("cas/counter")};
    pt_etcd_txn_req t = {&cmp, 1, &put, 1, &get, 1};
    assert_int_equal(pt_etcd_txn(c->e, &t, cas_answer, c), 0);
}

static void test_txn_cas_ordering(void **state)
{
    (void)state;
    cas_client c[CAS_CLIENTS];
    memset(&cas_log, 0, sizeof cas_log);
    for (int i = 0; i < CAS_CLIENTS; i++) {
        /* Each through a different member: the compares meet in the leader's log. */
        c[i] = (cas_client){.e = client_from(i), .left = CAS_EACH, .mod = 0, .value = 0};
        cas_step(&c[i]);
    }
    int all = 0;
    double end = pt_etcd_now() + DEADLINE;
    while (!all && pt_etcd_now() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        all = 1;
        for (int i = 0; i < CAS_CLIENTS; i++)
            all &= c[i].done;
    }
    assert_true(all);
    assert_int_equal(cas_log.errors, 0);
    assert_int_equal(cas_log.n, CAS_CLIENTS * CAS_EACH);
    /* Value v was written at a revision after value v-1's: one order. */
    for (int v = 2; v <= CAS_CLIENTS * CAS_EACH; v++)
        assert_true(cas_log.rev[v] > cas_log.rev[v - 1]);
    for (int i = 0; i < CAS_CLIENTS; i++)
        pt_etcd_free(c[i].e);
}

/* ---- leases ------------------------------------------------------------ */

typedef struct answer {
    int done;
    pt_etcd_result r; /* scalars only: pointers die with the callback */
    int64_t nkvs;
} answer;

static void keep_answer(const pt_etcd_result *r, void *arg)
{
    answer *a = arg;
    a->r = *r;
    a->r.kvs = NULL;
    a->nkvs = (int64_t)r->nkvs;
    /* the result lives only as long as the callback: its words are copied
     * to msgbuf (a pointer to it would not survive the answer's copies) */
    a->r.message = NULL;
    a->r.msgbuf[0] = '\0';
    if (r->message) {
        print_message("%s\n", r->message);
        snprintf(a->r.msgbuf, sizeof(a->r.msgbuf), "%s", r->message);
    }
    a->done = 1;
}

static answer call_txn_put(pt_etcd *e, const char *key, int64_t lease)
{
    answer a = {0};
    assert_int_equal(pt_etcd_put(e, pt_etcd_str(key), pt_etcd_str("v"), lease, keep_answer, &a), 0);
    assert_true(run_until(&a.done, DEADLINE));
    return a;
}

static answer call_range(pt_etcd *e, const char *key)
{
    answer a = {0};
    assert_int_equal(pt_etcd_range(e, pt_etcd_str(key), pt_etcd_str(""), keep_answer, &a), 0);
    assert_true(run_until(&a.done, DEADLINE));
    return a;
}

typedef struct seen {
    int n, deletes, err;
    int64_t rev[512];
    pt_etcd_event_type type[512];
    char key[512][16];
} seen;

static void watch_collect(const pt_etcd_event *ev, size_t n, int64_t revision, int err, void *arg)
{
    seen *s = arg;
    (void)revision;
    if (err) {
        s->err = err;
        return;
    }
    for (size_t i = 0; i < n && s->n < 512; i++) {
        s->rev[s->n] = ev[i].kv.mod_revision;
        s->type[s->n] = ev[i].type;
        snprintf(s->key[s->n], sizeof s->key[0], "%.*s", (int)ev[i].kv.key.len, ev[i].kv.key.p);
        s->deletes += ev[i].type == PT_ETCD_DELETE;
        s->n++;
    }
}

static void test_lease_expiry_seen_by_watch(void **state)
{
    (void)state;
    pt_etcd *e = client_from(0);
    answer g = {0};
    assert_int_equal(pt_etcd_lease_grant(e, 1, keep_answer, &g), 0);
    assert_true(run_until(&g.done, DEADLINE));
    assert_int_equal(g.r.err, PT_ETCD_OK);
    assert_true(g.r.lease_id != 0);
    int64_t lease = g.r.lease_id;

    answer p = call_txn_put(e, "lease/k", lease);
    assert_int_equal(p.r.err, PT_ETCD_OK);
    seen s = {0};
    pt_etcd_watch *w = pt_etcd_watch_start(e, pt_etcd_str("lease/"), pt_etcd_str("lease0"),
                                           p.r.revision, watch_collect, &s);
    assert_non_null(w);

    /* Kept alive past twice its TTL, the key stays. */
    double until = pt_etcd_now() + 2.2;
    while (pt_etcd_now() < until) {
        answer k = {0};
        assert_int_equal(pt_etcd_lease_keepalive(e, lease, keep_answer, &k), 0);
        assert_true(run_until(&k.done, DEADLINE));
        assert_int_equal(k.r.err, PT_ETCD_OK);
        assert_true(k.r.ttl >= 1);
        int never = 0;
        run_until(&never, 0.3);
    }
    assert_int_equal(call_range(e, "lease/k").nkvs, 1);
    assert_int_equal(s.deletes, 0);

    /* Left alone, it expires: the watch sees the put, then the delete. */
    double t0 = pt_etcd_now();
    int want = 1;
    while (s.deletes < want && pt_etcd_now() < t0 + DEADLINE)
        event_base_loop(base, EVLOOP_ONCE);
    print_message("lease of TTL 1 s gone %.2f s after its last keepalive\n", pt_etcd_now() - t0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.type[0], PT_ETCD_PUT);
    assert_int_equal(s.rev[0], p.r.revision);
    assert_int_equal(s.type[1], PT_ETCD_DELETE);
    assert_string_equal(s.key[1], "lease/k");
    assert_true(s.rev[1] > s.rev[0]);
    assert_int_equal(call_range(e, "lease/k").nkvs, 0);
    answer k = {0};
    assert_int_equal(pt_etcd_lease_keepalive(e, lease, keep_answer, &k), 0);
    assert_true(run_until(&k.done, DEADLINE));
    assert_int_equal(k.r.ttl, 0); /* gone */

    /* A revoke deletes at once. */
    answer g2 = {0};
    assert_int_equal(pt_etcd_lease_grant(e, 30, keep_answer, &g2), 0);
    assert_true(run_until(&g2.done, DEADLINE));
    assert_int_equal(call_txn_put(e, "lease/r", g2.r.lease_id).r.err, PT_ETCD_OK);
    answer rv = {0};
    assert_int_equal(pt_etcd_lease_revoke(e, g2.r.lease_id, keep_answer, &rv), 0);
    assert_true(run_until(&rv.done, DEADLINE));
    assert_int_equal(rv.r.err, PT_ETCD_OK);
    want = 2;
    while (s.deletes < want && pt_etcd_now() < t0 + 2 * DEADLINE)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.deletes, 2);
    assert_string_equal(s.key[s.n - 1], "lease/r");
    assert_int_equal(s.err, 0);
    pt_etcd_watch_cancel(w);
    int never = 0;
    run_until(&never, 0.05);
    pt_etcd_free(e);
}

/* ---- watch across a kill -9 of the leader ------------------------------ */

#define WATCH_KEYS 60
#define WATCH_KILL 20

typedef struct writer {
    pt_etcd *e;
    int i, done, retries;
    char key[16];
    struct event *again;
} writer;

static void writer_put(writer *w);

static void writer_answer(const pt_etcd_result *r, void *arg)
{
    writer *w = arg;
    if (r->err) {
        /* Leader gone or the member used: try again shortly. The create
         * compare makes a txn applied twice a no-op. */
        w->retries++;
        struct timeval tv = {0, 20000};
        event_add(w->again, &tv);
        return;
    }
    if (++w->i == WATCH_KEYS) {
        w->done = 1;
        return;
    }
    if (w->i == WATCH_KILL) {
        int leader = pt_etcd_cluster_kill_leader(&cluster, DEADLINE);
        assert_true(leader >= 0);
        print_message("kill -9 of the leader m%d after %d keys\n", leader, w->i);
    }
    writer_put(w);
}

static void writer_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    writer_put(arg);
}

static void writer_put(writer *w)
{
    snprintf(w->key, sizeof w->key, "w/%03d", w->i);
    pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_CREATE,
                       .result = PT_ETCD_EQUAL,
                       .key = pt_etcd_str(w->key),
                       .number = 0};
    pt_etcd_op put = {
        .kind = PT_ETCD_OP_PUT, .key = pt_etcd_str(w->key), .value = pt_etcd_str("x")};
    pt_etcd_txn_req t = {&cmp, 1, &put, 1, NULL, 0};
    assert_int_equal(pt_etcd_txn(w->e, &t, writer_answer, w), 0);
}

static void test_watch_across_leader_kill(void **state)
{
    (void)state;
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    /* The watch goes through the leader, the writer through the others. */
    pt_etcd *we = client_from(leader);
    writer w = {.e = client_from((leader + 1) % cluster.n)};
    w.again = evtimer_new(base, writer_again, &w);
    answer first = call_range(w.e, "w/");
    seen *s = calloc(1, sizeof *s);
    pt_etcd_watch *watch = pt_etcd_watch_start(we, pt_etcd_str("w/"), pt_etcd_str("w0"),
                                               first.r.revision + 1, watch_collect, s);
    assert_non_null(watch);
    writer_put(&w);
    assert_true(run_until(&w.done, 3 * DEADLINE));
    double end = pt_etcd_now() + DEADLINE;
    while (s->n < WATCH_KEYS && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    int never = 0;
    run_until(&never, 0.2); /* any duplicate would come now */
    print_message("writer retried %d times; the watch moved to endpoint %d\n", w.retries,
                  pt_etcd_endpoint(we));
    assert_int_equal(s->err, 0);
    assert_int_equal(s->n, WATCH_KEYS);
    for (int i = 0; i < WATCH_KEYS; i++) {
        char key[16];
        snprintf(key, sizeof key, "w/%03d", i);
        assert_string_equal(s->key[i], key);
        assert_int_equal(s->type[i], PT_ETCD_PUT);
        if (i)
            assert_true(s->rev[i] > s->rev[i - 1]);
    }
    pt_etcd_watch_cancel(watch);
    run_until(&never, 0.05);
    event_free(w.again);
    pt_etcd_free(w.e);
    pt_etcd_free(we);
    free(s);
}

/* ---- failover ---------------------------------------------------------- */

static void test_failover_when_member_killed(void **state)
{
    (void)state;
    pt_etcd *e = client_from(0);
    assert_int_equal(call_range(e, "f/").r.err, PT_ETCD_OK);
    assert_int_equal(pt_etcd_endpoint(e), 0);
    pt_etcd_cluster_kill(&cluster, 0);
    /* A range is retried on the next member by itself. */
    answer r = call_range(e, "f/");
    assert_int_equal(r.r.err, PT_ETCD_OK);
    assert_int_not_equal(pt_etcd_endpoint(e), 0);
    /* Writes go on once a leader stands among the two left. */
    double end = pt_etcd_now() + DEADLINE;
    int ok = 0;
    while (!ok && pt_etcd_now() < end)
        ok = call_txn_put(e, "f/k", 0).r.err == PT_ETCD_OK;
    assert_true(ok);
    assert_int_equal(call_range(e, "f/k").nkvs, 1);
    pt_etcd_free(e);
}

/* A member that stops answering but keeps its sockets (SIGSTOP, as a host
 * cut off looks): a request times out and goes to the next member. */
static void test_failover_when_member_stopped(void **state)
{
    (void)state;
    char eps[512], err[256];
    /* A follower: the two left keep their leader, so the retry is answered. */
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    int stopped = (leader + 1) % cluster.n;
    pt_etcd_cluster_endpoints_from(&cluster, stopped, eps, sizeof eps);
    pt_etcd_options o = {.request_timeout = 0.5};
    pt_etcd *e = pt_etcd_new(base, eps, &o, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(call_range(e, "s/").r.err, PT_ETCD_OK);
    pt_etcd_cluster_pause(&cluster, stopped, 1);
    double t0 = pt_etcd_now();
    answer r = call_range(e, "s/");
    double took = pt_etcd_now() - t0;
    pt_etcd_cluster_pause(&cluster, stopped, 0);
    print_message("a range moved off the stopped member in %.2f s\n", took);
    assert_int_equal(r.r.err, PT_ETCD_OK);
    assert_int_not_equal(pt_etcd_endpoint(e), 0);
    assert_true(took < 0.5 + 2.0);
    pt_etcd_free(e);
}

/* A watch on a member that stops (SIGSTOP) hears nothing; the next unary
 * request that times out there moves the watch with the client, from the
 * revision after its last event. */
static void test_watch_moves_off_stopped_member(void **state)
{
    (void)state;
    char eps[512], err[256];
    int leader = pt_etcd_cluster_wait_leader(&cluster, DEADLINE);
    assert_true(leader >= 0);
    int stopped = (leader + 1) % cluster.n;
    pt_etcd_cluster_endpoints_from(&cluster, stopped, eps, sizeof eps);
    pt_etcd_options o = {.request_timeout = 0.5};
    pt_etcd *e = pt_etcd_new(base, eps, &o, err, sizeof err);
    pt_etcd *wr = client_from(leader);
    assert_non_null(e);
    answer first = call_txn_put(wr, "p/0", 0);
    seen *s = calloc(1, sizeof *s);
    pt_etcd_watch *w = pt_etcd_watch_start(e, pt_etcd_str("p/"), pt_etcd_str("p0"),
                                           first.r.revision, watch_collect, s);
    double end = pt_etcd_now() + DEADLINE;
    while (s->n < 1 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s->n, 1);
    pt_etcd_cluster_pause(&cluster, stopped, 1);
    assert_int_equal(call_txn_put(wr, "p/1", 0).r.err, PT_ETCD_OK);
    double t0 = pt_etcd_now();
    assert_int_equal(call_range(e, "p/").r.err, PT_ETCD_OK); /* the keepalive's part */
    while (s->n < 2 && pt_etcd_now() < t0 + DEADLINE)
        event_base_loop(base, EVLOOP_ONCE);
    double took = pt_etcd_now() - t0;
    pt_etcd_cluster_pause(&cluster, stopped, 0);
    print_message("the watch heard p/1 %.2f s after its member stopped\n", took);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->key[0], "p/0");
    assert_string_equal(s->key[1], "p/1");
    assert_true(s->rev[1] > s->rev[0]);
    pt_etcd_watch_cancel(w);
    int never = 0;
    run_until(&never, 0.05);
    pt_etcd_free(e);
    pt_etcd_free(wr);
    free(s);
}

static void test_all_down_is_unavailable(void **state)
{
    (void)state;
    char err[256];
    /* Port 1 on the loopback: nothing listens, the connection is refused. */
    pt_etcd *e = pt_etcd_new(base, "http://127.0.0.1:1,http://127.0.0.1:1", NULL, err, sizeof err);
    assert_non_null(e);
    answer r = call_range(e, "x");
    assert_int_equal(r.r.err, PT_ETCD_EUNAVAIL);
    assert_non_null(strstr(r.r.msgbuf, "/v3/kv/range"));
    answer p = {0};
    assert_int_equal(pt_etcd_put(e, pt_etcd_str("x"), pt_etcd_str("y"), 0, keep_answer, &p), 0);
    pt_etcd_free(e); /* answers the pending put */
    assert_true(p.done);
    assert_int_equal(p.r.err, PT_ETCD_ECANCELED);
    /* One scheme for every member: no failover from TLS to plain text. */
    assert_null(pt_etcd_new(base, "http://127.0.0.1:1,https://127.0.0.1:2", NULL, err, sizeof err));
    assert_non_null(strstr(err, "https://127.0.0.1:2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_down_is_unavailable),
        cmocka_unit_test(test_txn_cas_ordering),
        cmocka_unit_test(test_lease_expiry_seen_by_watch),
        cmocka_unit_test_teardown(test_watch_across_leader_kill, heal),
        cmocka_unit_test_teardown(test_failover_when_member_killed, heal),
        cmocka_unit_test_teardown(test_failover_when_member_stopped, heal),
        cmocka_unit_test_teardown(test_watch_moves_off_stopped_member, heal),
    };
    return cmocka_run_group_tests_name("integration: etcd client", tests, group_setup,
                                       group_teardown);
}
