/*
 * it_etcd_tls.c - etcd over TLS: a real 3-member etcd cluster on https://
 * 127.0.0.1 ports that asks every client for a certificate
 * (--client-cert-auth), its CA and certificates made with openssl by the
 * harness.
 *
 * The client puts, reads, keeps a lease and watches with the client
 * certificate, and fails over to the next member when its own is killed,
 * its watch too; a request costs a round trip, not a delayed ACK. It
 * refuses, each time with a message naming the endpoint and what to pass:
 * a server certificate from a CA it was not given (or the system's CAs
 * alone), a host name the certificate does not carry, a port without TLS,
 * no client certificate, a client certificate of a CA etcd does not trust;
 * and at creation files it cannot use and a mix of http and https.
 * pythreadd --etcd https://... with --etcd-cacert, --etcd-cert and
 * --etcd-key serves a cluster Lock to two hosts, says what to pass when its
 * CA is the wrong one, and refuses at the start TLS options that cannot
 * work. Skipped (77) where etcd is not installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "etcd.h"
#include "etcd_cluster.h"
#include "pythread.h"

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

/* A client of endpoints with these files (NULL: none); NULL with the
 * reason in err. */
static pt_etcd *client_of(const char *endpoints, const char *cacert, const char *cert,
                          const char *key, char *err, size_t errlen)
{
    pt_etcd_tls tls = {.cacert = cacert, .cert = cert, .key = key};
    pt_etcd_options o = {.request_timeout = 2.0, .tls = &tls};
    return pt_etcd_new(base, endpoints, &o, err, errlen);
}

/* A client with the cluster's CA and client certificate, starting on
 * member first. */
static pt_etcd *client_from(int first)
{
    char eps[512], err[512];
    pt_etcd_cluster_endpoints_from(&cluster, first, eps, sizeof eps);
    pt_etcd *e = client_of(eps, cluster.tls.ca, cluster.tls.cert, cluster.tls.key, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    return e;
}

static int group_setup(void **state)
{
    (void)state;
    /* A TLS write to a connection etcd closed raises SIGPIPE, as the
     * daemon, which ignores it, would meet. */
    signal(SIGPIPE, SIG_IGN);
    if (pt_etcd_cluster_start_or_skip_with(&cluster, 3, PT_ETCD_CLUSTER_TLS, 30.0) != 0)
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

typedef struct answer {
    int done;
    pt_etcd_result r; /* scalars and msgbuf: pointers die with the callback */
    char value[64];   /* a range's first value */
} answer;

static void keep_answer(const pt_etcd_result *r, void *arg)
{
    answer *a = arg;
    a->r = *r;
    a->r.kvs = NULL;
    a->r.message = NULL;
    a->r.msgbuf[0] = '\0';
    if (r->message) {
        print_message("%s\n", r->message);
        snprintf(a->r.msgbuf, sizeof a->r.msgbuf, "%s", r->message);
    }
    if (r->nkvs > 0)
        snprintf(a->value, sizeof a->value, "%.*s", (int)r->kvs[0].value.len, r->kvs[0].value.p);
    a->done = 1;
}

static answer call_range(pt_etcd *e, const char *key)
{
    answer a = {0};
    assert_int_equal(pt_etcd_range(e, pt_etcd_str(key), pt_etcd_str(""), keep_answer, &a), 0);
    assert_true(run_until(&a.done, 3 * DEADLINE));
    return a;
}

static answer call_put(pt_etcd *e, const char *key, const char *value, int64_t lease)
{
    answer a = {0};
    assert_int_equal(pt_etcd_put(e, pt_etcd_str(key), pt_etcd_str(value), lease, keep_answer, &a),
                     0);
    assert_true(run_until(&a.done, 3 * DEADLINE));
    return a;
}

typedef struct seen {
    int n, err;
    int64_t rev[16];
    char key[16][16];
} seen;

static void watch_collect(const pt_etcd_event *ev, size_t n, int64_t revision, int err, void *arg)
{
    seen *s = arg;
    (void)revision;
    if (err) {
        s->err = err;
        return;
    }
    for (size_t i = 0; i < n && s->n < 16; i++, s->n++) {
        s->rev[s->n] = ev[i].kv.mod_revision;
        snprintf(s->key[s->n], sizeof s->key[0], "%.*s", (int)ev[i].kv.key.len, ev[i].kv.key.p);
    }
}

/* ---- what works ------------------------------------------------------- */

static void test_put_range_txn_lease_watch(void **state)
{
    (void)state;
    pt_etcd *e = client_from(0);

    answer p = call_put(e, "t/a", "1", 0);
    assert_int_equal(p.r.err, PT_ETCD_OK);
    answer r = call_range(e, "t/a");
    assert_int_equal(r.r.err, PT_ETCD_OK);
    assert_int_equal(r.r.nkvs, 1);
    assert_string_equal(r.value, "1");

    /* A watch from the put's revision sees it, then a txn's put under a lease. */
    seen s = {0};
    pt_etcd_watch *w = pt_etcd_watch_start(e, pt_etcd_str("t/"), pt_etcd_str("t0"), p.r.revision,
                                           watch_collect, &s);
    assert_non_null(w);
    answer g = {0};
    assert_int_equal(pt_etcd_lease_grant(e, 30, keep_answer, &g), 0);
    assert_true(run_until(&g.done, DEADLINE));
    assert_int_equal(g.r.err, PT_ETCD_OK);
    answer k = {0};
    assert_int_equal(pt_etcd_lease_keepalive(e, g.r.lease_id, keep_answer, &k), 0);
    assert_true(run_until(&k.done, DEADLINE));
    assert_int_equal(k.r.err, PT_ETCD_OK);
    assert_true(k.r.ttl > 0);
    pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_VERSION,
                       .result = PT_ETCD_EQUAL,
                       .key = pt_etcd_str("t/b"),
                       .number = 0};
    pt_etcd_op put = {.kind = PT_ETCD_OP_PUT,
                      .key = pt_etcd_str("t/b"),
                      .value = pt_etcd_str("2"),
                      .lease = g.r.lease_id};
    pt_etcd_txn_req t = {.cmp = &cmp, .ncmp = 1, .success = &put, .nsuccess = 1};
    answer x = {0};
    assert_int_equal(pt_etcd_txn(e, &t, keep_answer, &x), 0);
    assert_true(run_until(&x.done, DEADLINE));
    assert_int_equal(x.r.err, PT_ETCD_OK);
    assert_true(x.r.succeeded);
    double end = pt_etcd_now() + DEADLINE;
    while (s.n < 2 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.key[0], "t/a");
    assert_int_equal(s.rev[0], p.r.revision);
    assert_string_equal(s.key[1], "t/b");
    assert_int_equal(s.rev[1], x.r.revision);
    pt_etcd_watch_cancel(w);
    int never = 0;
    run_until(&never, 0.05);
    pt_etcd_free(e);
}

/* The member in use killed: the next request goes to the next member,
 * with a handshake of its own, and the watch resumes there from the
 * revision after its last event. */
static void test_failover_over_tls(void **state)
{
    (void)state;
    pt_etcd *e = client_from(0);
    answer p0 = call_put(e, "f/0", "v", 0);
    assert_int_equal(p0.r.err, PT_ETCD_OK);
    seen s = {0};
    pt_etcd_watch *w = pt_etcd_watch_start(e, pt_etcd_str("f/"), pt_etcd_str("f0"), p0.r.revision,
                                           watch_collect, &s);
    assert_non_null(w);
    double end = pt_etcd_now() + DEADLINE;
    while (s.n < 1 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.n, 1);
    pt_etcd_cluster_kill(&cluster, 0);
    answer r = call_range(e, "f/0");
    assert_int_equal(r.r.err, PT_ETCD_OK);
    assert_int_equal(r.r.nkvs, 1);
    assert_int_not_equal(pt_etcd_endpoint(e), 0);
    answer p1 = call_put(e, "f/1", "v", 0);
    assert_int_equal(p1.r.err, PT_ETCD_OK);
    end = pt_etcd_now() + DEADLINE;
    while (s.n < 2 && pt_etcd_now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.key[1], "f/1");
    assert_int_equal(s.rev[1], p1.r.revision);
    pt_etcd_watch_cancel(w);
    int never = 0;
    run_until(&never, 0.05);
    pt_etcd_free(e);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A request on a kept connection costs a round trip, not a delayed ACK:
 * TLS sends the headers and the body as two records, and with Nagle's
 * algorithm on the socket the body waited for the member's delayed ACK
 * of the headers, 40 ms on Linux, every time. */
static void test_requests_not_held_by_nagle(void **state)
{
    (void)state;
    pt_etcd *e = client_from(1);
    double took[31];
    assert_int_equal(call_put(e, "n/k", "v", 0).r.err, PT_ETCD_OK);
    for (int i = 0; i < 31; i++) {
        double t0 = pt_etcd_now();
        assert_int_equal(call_range(e, "n/k").r.err, PT_ETCD_OK);
        took[i] = pt_etcd_now() - t0;
    }
    qsort(took, 31, sizeof took[0], cmp_double);
    print_message("a range over TLS: median %.2f ms\n", took[15] * 1e3);
    assert_true(took[15] < 0.030);
    pt_etcd_free(e);
}

/* ---- what is refused, and how it is told -------------------------------- */

/* A range through a client with these files fails as unavailable with a
 * message holding each of the words. */
static void refused(const char *endpoints, const char *cacert, const char *cert, const char *key,
                    const char *const *words)
{
    char err[512];
    pt_etcd *e = client_of(endpoints, cacert, cert, key, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    answer r = call_range(e, "x");
    assert_int_equal(r.r.err, PT_ETCD_EUNAVAIL);
    for (; *words; words++)
        if (!strstr(r.r.msgbuf, *words))
            fail_msg("'%s' not in: %s", *words, r.r.msgbuf);
    pt_etcd_free(e);
}

static void test_wrong_ca_refused(void **state)
{
    (void)state;
    const char *words[] = {"etcd /v3/kv/range at https://127.0.0.1:", "certificate verify failed",
                           cluster.tls.other_ca, "--etcd-cacert", NULL};
    refused(cluster.endpoints, cluster.tls.other_ca, cluster.tls.cert, cluster.tls.key, words);
}

/* Without --etcd-cacert the system's CAs are used: they did not sign it. */
static void test_system_cas_refused(void **state)
{
    (void)state;
    const char *words[] = {"https://127.0.0.1:", "certificate verify failed",
                           "pass the CA that signed etcd's certificate with --etcd-cacert", NULL};
    refused(cluster.endpoints, NULL, cluster.tls.cert, cluster.tls.key, words);
}

/* The server certificate names IP 127.0.0.1 only: "localhost" is not it.
 * The name resolves through /etc/hosts, where Debian lists 127.0.0.1
 * first; where it gives ::1, on which the members do not listen, the case
 * cannot be made and is skipped. */
static void test_host_name_checked(void **state)
{
    (void)state;
    char ep[64], err[512];
    snprintf(ep, sizeof ep, "https://localhost:%d", cluster.m[1].client_port);
    pt_etcd *e = client_of(ep, cluster.tls.ca, cluster.tls.cert, cluster.tls.key, err, sizeof err);
    if (!e)
        fail_msg("%s", err);
    answer r = call_range(e, "x");
    pt_etcd_free(e);
    assert_int_equal(r.r.err, PT_ETCD_EUNAVAIL);
    if (!strstr(r.r.msgbuf, "certificate")) {
        print_message("localhost does not reach 127.0.0.1 here: %s\n", r.r.msgbuf);
        skip();
    }
    const char *words[] = {"https://localhost:", "certificate verify failed (hostname mismatch)",
                           "does not name localhost", NULL};
    for (const char *const *w = words; *w; w++)
        if (!strstr(r.r.msgbuf, *w))
            fail_msg("'%s' not in: %s", *w, r.r.msgbuf);
}

/* A port without TLS: a member's peer port speaks plain HTTP. */
static void test_plain_port_refused(void **state)
{
    (void)state;
    char ep[64];
    snprintf(ep, sizeof ep, "https://127.0.0.1:%d", cluster.m[1].peer_port);
    const char *words[] = {ep, "does not speak TLS", NULL};
    refused(ep, cluster.tls.ca, cluster.tls.cert, cluster.tls.key, words);
}

static void test_no_client_cert_refused(void **state)
{
    (void)state;
    const char *words[] = {"https://127.0.0.1:", "asks for a client certificate",
                           "--etcd-cert and --etcd-key", NULL};
    refused(cluster.endpoints, cluster.tls.ca, NULL, NULL, words);
}

static void test_foreign_client_cert_refused(void **state)
{
    (void)state;
    const char *words[] = {"https://127.0.0.1:", "refused the client certificate",
                           cluster.tls.other_cert, NULL};
    refused(cluster.endpoints, cluster.tls.ca, cluster.tls.other_cert, cluster.tls.other_key,
            words);
}

/* pt_etcd_new refuses, naming the file or endpoint and the remedy. */
static void not_made(const char *endpoints, const char *cacert, const char *cert, const char *key,
                     const char *w1, const char *w2)
{
    char err[512] = "";
    pt_etcd *e = client_of(endpoints, cacert, cert, key, err, sizeof err);
    if (e) {
        pt_etcd_free(e);
        fail_msg("a client was made of %s", endpoints);
    }
    print_message("%s\n", err);
    if (!strstr(err, w1) || (w2 && !strstr(err, w2)))
        fail_msg("'%s' or '%s' not in: %s", w1, w2 ? w2 : "", err);
}

static void test_unusable_files_and_schemes(void **state)
{
    (void)state;
    const pt_etcd_cluster_tls *t = &cluster.tls;
    const char *eps = cluster.endpoints;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/none.crt", cluster.dir);

    not_made(eps, missing, t->cert, t->key, missing, "--etcd-cacert");
    /* a key is no CA certificate */
    not_made(eps, t->key, t->cert, t->key, t->key, "--etcd-cacert");
    not_made(eps, t->ca, t->cert, NULL, "--etcd-cert given without --etcd-key", NULL);
    not_made(eps, t->ca, NULL, t->key, "--etcd-key given without --etcd-cert", NULL);
    not_made(eps, t->ca, t->cert, t->other_key, t->other_key, "is not the key of --etcd-cert");
    not_made(eps, t->ca, t->ca, t->key, t->key, "is not the key of --etcd-cert");
    /* plain endpoints with TLS files; http and https mixed */
    not_made("http://127.0.0.1:2379", t->ca, NULL, NULL, "are http://", "https://");
    not_made("https://127.0.0.1:2379,http://127.0.0.1:2380", NULL, NULL, NULL,
             "http and https mixed", "http://127.0.0.1:2380");
}

/* ---- pythreadd --etcd https://... ------------------------------------- */

static pid_t daemon_up(const char *dir, int i, const char *cacert, char *sock, size_t socklen,
                       char *log, size_t loglen)
{
    char host[8], err[512];
    snprintf(host, sizeof host, "h%d", i);
    snprintf(sock, socklen, "%s/h%d.sock", dir, i);
    snprintf(log, loglen, "%s/h%d.log", dir, i);
    const char *args[] = {
        "--etcd",     cluster.endpoints, "--etcd-cacert", cacert, "--etcd-cert",   cluster.tls.cert,
        "--etcd-key", cluster.tls.key,   "--host-name",   host,   "--etcd-prefix", "/tls/",
        NULL};
    pid_t pid = pt_etcd_daemon_start(PT_DAEMON_PATH, sock, log, args, DEADLINE, err, sizeof err);
    if (pid < 0)
        fail_msg("%s", err);
    return pid;
}

static void daemon_stop(pid_t pid, const char *log)
{
    int st = 0;
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat '%s' >&2", log);
        if (system(cmd) != 0)
            print_message("(no log at %s)\n", log);
        fail_msg("pythreadd ended with status %d on SIGTERM",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    }
}

/* 1 when the file holds s. */
static int log_has(const char *path, const char *s)
{
    char buf[16384];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, s) != NULL;
}

static void test_daemon_serves_cluster_lock_over_tls(void **state)
{
    (void)state;
    char dir[300], sock[2][400], log[2][400];
    snprintf(dir, sizeof dir, "%s/daemons", cluster.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t pid[2];
    for (int i = 0; i < 2; i++)
        pid[i] = daemon_up(dir, i, cluster.tls.ca, sock[i], sizeof sock[i], log[i], sizeof log[i]);

    pt_client *c[2];
    pt_lock *l[2];
    uint64_t t0 = 0, t1 = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pt_client_open(&c[i], sock[i]), 0);
        assert_int_equal(pt_lock_open(c[i], "L", PT_OPEN_CLUSTER, 0600, &l[i]), 0);
    }
    /* h0 holds it; h1 finds it held, then gets it once h0 lets go. */
    assert_int_equal(pt_lock_acquire_fenced(l[0], 1, DEADLINE, &t0), 1);
    assert_int_equal(pt_lock_acquire(l[1], 1, 0.2), 0);
    assert_int_equal(pt_lock_release(l[0]), 0);
    assert_int_equal(pt_lock_acquire_fenced(l[1], 1, DEADLINE, &t1), 1);
    assert_true(t1 > t0);
    assert_int_equal(pt_lock_release(l[1]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pt_lock_close(l[i]), 0);
        pt_client_close(c[i]);
    }
    for (int i = 0; i < 2; i++)
        daemon_stop(pid[i], log[i]);

    /* With a CA that did not sign etcd's certificate, the daemon says so. */
    pid_t bad =
        daemon_up(dir, 2, cluster.tls.other_ca, sock[0], sizeof sock[0], log[0], sizeof log[0]);
    double end = pt_etcd_now() + DEADLINE;
    while (!log_has(log[0], "certificate verify failed") && pt_etcd_now() < end)
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    assert_true(log_has(log[0], "certificate verify failed"));
    assert_true(log_has(log[0], "--etcd-cacert"));
    daemon_stop(bad, log[0]);
}

/* pythreadd ARGS... exits with status want, its stderr holding words. */
static void daemon_refuses(const char *const *args, int want, const char *w1, const char *w2)
{
    char log[400], cmd[2048];
    size_t used;
    int st;

    snprintf(log, sizeof log, "%s/refused.log", cluster.dir);
    used = (size_t)snprintf(cmd, sizeof cmd, "'%s' --socket '%s/refused.sock'", PT_DAEMON_PATH,
                            cluster.dir);
    for (; *args && used < sizeof cmd; args++)
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, " '%s'", *args);
    snprintf(cmd + used, sizeof cmd - used, " 2>'%s'", log);
    st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), want);
    if (!log_has(log, w1) || (w2 && !log_has(log, w2)))
        fail_msg("'%s' or '%s' not in %s", w1, w2 ? w2 : "", log);
}

/* What cannot work is refused at the start, naming the option and file. */
static void test_daemon_refuses_unusable_tls_options(void **state)
{
    (void)state;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/none.crt", cluster.dir);
    const char *no_file[] = {"--etcd", cluster.endpoints, "--etcd-cacert", missing, NULL};
    const char *no_cluster[] = {"--etcd-cacert", cluster.tls.ca, NULL};
    const char *no_key[] = {"--etcd", cluster.endpoints, "--etcd-cert", cluster.tls.cert, NULL};
    const char *plain[] = {"--etcd", "http://127.0.0.1:2379", "--etcd-cacert", cluster.tls.ca,
                           NULL};

    daemon_refuses(no_file, 1, missing, "--etcd-cacert");
    daemon_refuses(no_cluster, 2, "--etcd-cacert is for a cluster", NULL);
    daemon_refuses(no_key, 1, "--etcd-cert given without --etcd-key", NULL);
    daemon_refuses(plain, 1, "are http://", "https://");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_range_txn_lease_watch),
        cmocka_unit_test_teardown(test_failover_over_tls, heal),
        cmocka_unit_test(test_requests_not_held_by_nagle),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_system_cas_refused),
        cmocka_unit_test(test_host_name_checked),
        cmocka_unit_test(test_plain_port_refused),
        cmocka_unit_test(test_no_client_cert_refused),
        cmocka_unit_test(test_foreign_client_cert_refused),
        cmocka_unit_test(test_unusable_files_and_schemes),
        cmocka_unit_test(test_daemon_serves_cluster_lock_over_tls),
        cmocka_unit_test(test_daemon_refuses_unusable_tls_options),
    };
    return cmocka_run_group_tests_name("integration: etcd over TLS", tests, group_setup,
                                       group_teardown);
}
