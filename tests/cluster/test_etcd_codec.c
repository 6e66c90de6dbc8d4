/*
 * test_etcd_codec.c - the etcd client's codec without etcd: base64, the
 * request bodies, the gateway's answers as etcd 3.4 writes them, and the
 * watch stream split at every byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd.h"

static void test_b64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        char out[16], back[16];
        size_t n = pt_etcd_b64_encode(plain[i], strlen(plain[i]), out);
        assert_int_equal(n, pt_etcd_b64_len(strlen(plain[i])));
        assert_string_equal(out, coded[i]);
        long m = pt_etcd_b64_decode(coded[i], strlen(coded[i]), back);
        assert_int_equal(m, (long)strlen(plain[i]));
        assert_memory_equal(back, plain[i], (size_t)m);
    }
    char out[8];
    assert_int_equal(pt_etcd_b64_decode("Zm9v!", 5, out), -1);
    assert_int_equal(pt_etcd_b64_decode("Z", 1, out), -1);
}

static void test_b64_all_bytes(void **state)
{
    (void)state;
    unsigned char in[256], back[256];
    char enc[400];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof in; n += 37) {
        pt_etcd_b64_encode(in, n, enc);
        assert_int_equal(pt_etcd_b64_decode(enc, strlen(enc), back), (long)n);
        assert_memory_equal(back, in, n);
    }
}

static void test_enc_txn(void **state)
{
    (void)state;
    pt_etcd_cmp cmp = {.target = PT_ETCD_CMP_CREATE,
                       .result = PT_ETCD_EQUAL,
                       .key = pt_etcd_str("a"),
                       .number = 0};
    pt_etcd_op put = {
        .kind = PT_ETCD_OP_PUT, .key = pt_etcd_str("a"), .value = pt_etcd_str("b"), .lease = 7587};
    pt_etcd_op get = {.kind = PT_ETCD_OP_RANGE, .key = pt_etcd_str("a")};
    pt_etcd_txn_req t = {&cmp, 1, &put, 1, &get, 1};
    char *s = pt_etcd_enc_txn(&t);
    assert_non_null(s);
    assert_string_equal(
        s, "{\"compare\":[{\"target\":\"CREATE\",\"result\":\"EQUAL\",\"key\":\"YQ==\","
           "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"YQ==\","
           "\"value\":\"Yg==\",\"lease\":\"7587\"}}],\"failure\":[{\"request_range\":{\"key\":"
           "\"YQ==\"}}]}");
    free(s);
    pt_etcd_cmp vc = {.target = PT_ETCD_CMP_VALUE,
                      .result = PT_ETCD_NOT_EQUAL,
                      .key = pt_etcd_str("k"),
                      .value = pt_etcd_str("v")};
    pt_etcd_op del = {
        .kind = PT_ETCD_OP_DELETE, .key = pt_etcd_str("k"), .range_end = pt_etcd_str("l")};
    pt_etcd_txn_req t2 = {&vc, 1, &del, 1, NULL, 0};
    s = pt_etcd_enc_txn(&t2);
    assert_string_equal(s, "{\"compare\":[{\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"key\":"
                           "\"aw==\",\"value\":\"dg==\"}],\"success\":[{\"request_delete_range\":"
                           "{\"key\":\"aw==\",\"range_end\":\"bA==\"}}],\"failure\":[]}");
    free(s);
}

static void test_enc_others(void **state)
{
    (void)state;
    char *s = pt_etcd_enc_watch(pt_etcd_str("p/"), pt_etcd_str("p0"), 42);
    assert_string_equal(s, "{\"create_request\":{\"key\":\"cC8=\",\"range_end\":\"cDA=\","
                           "\"start_revision\":\"42\"}}");
    free(s);
    s = pt_etcd_enc_lease_grant(10);
    assert_string_equal(s, "{\"TTL\":\"10\"}");
    free(s);
    s = pt_etcd_enc_lease_id(-5);
    assert_string_equal(s, "{\"ID\":\"-5\"}");
    free(s);
    s = pt_etcd_enc_range(pt_etcd_str("a"), pt_etcd_str(""), 1);
    assert_string_equal(s, "{\"key\":\"YQ==\",\"limit\":\"1\"}");
    free(s);
    s = pt_etcd_enc_compact(1234);
    assert_string_equal(s, "{\"revision\":\"1234\"}");
    free(s);
    pt_etcd_op keys = {
        .kind = PT_ETCD_OP_RANGE, .key = pt_etcd_str("a"), .limit = 1, .keys_only = 1};
    pt_etcd_txn_req t = {NULL, 0, &keys, 1, NULL, 0};
    s = pt_etcd_enc_txn(&t);
    assert_string_equal(s, "{\"compare\":[],\"success\":[{\"request_range\":{\"key\":\"YQ==\","
                           "\"limit\":\"1\",\"keys_only\":true}}],\"failure\":[]}");
    free(s);
}

/* Answers as etcd 3.4's gateway wrote them. */
static const char txn_ok[] =
    "{\"header\":{\"cluster_id\":\"3220624143979102356\",\"member_id\":\"14788809763417492865\","
    "\"revision\":\"2\",\"raft_term\":\"2\"},\"responses\":[{\"response_range\":{\"header\":{"
    "\"revision\":\"2\"},\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":"
    "\"2\",\"version\":\"1\",\"value\":\"Yg==\"}],\"count\":\"1\"}}]}";

static void test_dec_txn(void **state)
{
    (void)state;
    pt_etcd_decoded d;
    pt_etcd_decode(PT_ETCD_DEC_TXN, 200, txn_ok, strlen(txn_ok), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_int_equal(d.r.revision, 2);
    assert_false(d.r.succeeded); /* false is left out */
    assert_int_equal(d.r.nkvs, 1);
    assert_int_equal(d.r.count, 1);
    assert_int_equal(d.r.kvs[0].key.len, 1);
    assert_memory_equal(d.r.kvs[0].key.p, "a", 1);
    assert_memory_equal(d.r.kvs[0].value.p, "b", 1);
    assert_int_equal(d.r.kvs[0].create_revision, 2);
    assert_int_equal(d.r.kvs[0].mod_revision, 2);
    assert_int_equal(d.r.kvs[0].version, 1);
    pt_etcd_dec_free(&d);

    const char ok[] = "{\"header\":{\"revision\":\"9\"},\"succeeded\":true,\"responses\":[{"
                      "\"response_put\":{\"header\":{\"revision\":\"9\"}}},{"
                      "\"response_delete_range\":{\"deleted\":\"3\"}}]}";
    pt_etcd_decode(PT_ETCD_DEC_TXN, 200, ok, strlen(ok), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_true(d.r.succeeded);
    assert_int_equal(d.r.revision, 9);
    assert_int_equal(d.r.deleted, 3);
    assert_int_equal(d.r.nkvs, 0);
    pt_etcd_dec_free(&d);
}

static void test_dec_lease_and_errors(void **state)
{
    (void)state;
    pt_etcd_decoded d;
    const char grant[] = "{\"header\":{\"revision\":\"2\"},\"ID\":\"973237392484811014\","
                         "\"TTL\":\"5\"}";
    pt_etcd_decode(PT_ETCD_DEC_LEASE, 200, grant, strlen(grant), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_int_equal(d.r.lease_id, 973237392484811014LL);
    assert_int_equal(d.r.ttl, 5);
    pt_etcd_dec_free(&d);

    const char ka[] = "{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"1\"}}\n";
    pt_etcd_decode(PT_ETCD_DEC_LEASE, 200, ka, strlen(ka), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_int_equal(d.r.lease_id, 1);
    assert_int_equal(d.r.ttl, 0); /* the lease is gone */
    pt_etcd_dec_free(&d);

    const char nf[] = "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                      "\"etcdserver: requested lease not found\",\"code\":5}";
    pt_etcd_decode(PT_ETCD_DEC_PUT, 404, nf, strlen(nf), &d);
    assert_int_equal(d.r.err, PT_ETCD_ESERVER);
    assert_non_null(strstr(d.r.message, "404"));
    assert_non_null(strstr(d.r.message, "lease not found"));
    pt_etcd_dec_free(&d);

    pt_etcd_decode(PT_ETCD_DEC_RANGE, 200, "{\"kvs\":", 7, &d);
    assert_int_equal(d.r.err, PT_ETCD_EPROTO);
    pt_etcd_dec_free(&d);
    pt_etcd_decode(PT_ETCD_DEC_RANGE, 502, "Bad Gateway", 11, &d);
    assert_int_equal(d.r.err, PT_ETCD_ESERVER);
    pt_etcd_dec_free(&d);
    const char badkey[] = "{\"kvs\":[{\"key\":\"!!\"}]}";
    pt_etcd_decode(PT_ETCD_DEC_RANGE, 200, badkey, strlen(badkey), &d);
    assert_int_equal(d.r.err, PT_ETCD_EPROTO);
    pt_etcd_dec_free(&d);
}

static void test_dec_watch(void **state)
{
    (void)state;
    pt_etcd_decoded d;
    const char created[] = "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}";
    pt_etcd_decode(PT_ETCD_DEC_WATCH, 200, created, strlen(created), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_true(d.created);
    assert_int_equal(d.r.revision, 5);
    assert_int_equal(d.nevents, 0);
    pt_etcd_dec_free(&d);

    const char evs[] =
        "{\"result\":{\"header\":{\"revision\":\"7\"},\"events\":[{\"kv\":{\"key\":\"YQ==\","
        "\"create_revision\":\"6\",\"mod_revision\":\"6\",\"version\":\"1\",\"value\":\"Yg==\","
        "\"lease\":\"12\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":"
        "\"7\"}}]}}";
    pt_etcd_decode(PT_ETCD_DEC_WATCH, 200, evs, strlen(evs), &d);
    assert_int_equal(d.r.err, PT_ETCD_OK);
    assert_int_equal(d.nevents, 2);
    assert_int_equal(d.events[0].type, PT_ETCD_PUT);
    assert_int_equal(d.events[0].kv.lease, 12);
    assert_int_equal(d.events[0].kv.mod_revision, 6);
    assert_int_equal(d.events[1].type, PT_ETCD_DELETE);
    assert_int_equal(d.events[1].kv.mod_revision, 7);
    assert_int_equal(d.events[1].kv.value.len, 0);
    pt_etcd_dec_free(&d);

    const char compacted[] = "{\"result\":{\"header\":{\"revision\":\"50\"},\"canceled\":true,"
                             "\"compact_revision\":\"40\"}}";
    pt_etcd_decode(PT_ETCD_DEC_WATCH, 200, compacted, strlen(compacted), &d);
    assert_true(d.canceled);
    assert_int_equal(d.compact_revision, 40);
    pt_etcd_dec_free(&d);

    const char err[] = "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}";
    pt_etcd_decode(PT_ETCD_DEC_WATCH, 200, err, strlen(err), &d);
    assert_int_equal(d.r.err, PT_ETCD_ESERVER);
    assert_non_null(strstr(d.r.message, "no leader"));
    pt_etcd_dec_free(&d);
}

typedef struct collect {
    char got[8][128];
    int n;
} collect;

static int on_msg(const char *json, size_t len, void *arg)
{
    collect *c = arg;
    assert_true(c->n < 8);
    assert_true(len < sizeof c->got[0]);
    memcpy(c->got[c->n], json, len);
    c->got[c->n][len] = '\0';
    c->n++;
    return 0;
}

static const char *const msgs[] = {"{\"result\":{\"created\":true}}", "{\"a\":1}",
                                   "{\"result\":{\"events\":[]}}"};

/* Every way of cutting the stream into three pieces gives the same messages. */
static void test_stream_splits(void **state)
{
    (void)state;
    char all[256] = "";
    for (size_t i = 0; i < 3; i++) {
        strcat(all, msgs[i]);
        strcat(all, "\n");
    }
    size_t n = strlen(all);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            pt_etcd_stream s;
            collect c = {.n = 0};
            pt_etcd_stream_init(&s, 64);
            assert_int_equal(pt_etcd_stream_feed(&s, all, a, on_msg, &c), 0);
            assert_int_equal(pt_etcd_stream_feed(&s, all + a, b - a, on_msg, &c), 0);
            assert_int_equal(pt_etcd_stream_feed(&s, all + b, n - b, on_msg, &c), 0);
            assert_int_equal(c.n, 3);
            for (int i = 0; i < 3; i++)
                assert_string_equal(c.got[i], msgs[i]);
            assert_int_equal(s.len, 0);
            pt_etcd_stream_free(&s);
        }
}

static void test_stream_byte_by_byte_and_bound(void **state)
{
    (void)state;
    pt_etcd_stream s;
    collect c = {.n = 0};
    const char *in = "\n{\"x\":2}\n\n{\"y\":3}\n{\"partial\":";
    pt_etcd_stream_init(&s, 32);
    for (size_t i = 0; in[i]; i++)
        assert_int_equal(pt_etcd_stream_feed(&s, in + i, 1, on_msg, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.got[0], "{\"x\":2}");
    assert_string_equal(c.got[1], "{\"y\":3}");
    assert_true(s.len > 0);
    pt_etcd_stream_free(&s);

    /* A message longer than the bound is refused, without holding more. */
    char big[100];
    memset(big, 'a', sizeof big);
    pt_etcd_stream_init(&s, 32);
    c.n = 0;
    assert_int_equal(pt_etcd_stream_feed(&s, big, 20, on_msg, &c), 0);
    assert_int_equal(pt_etcd_stream_feed(&s, big, 20, on_msg, &c), -1);
    assert_true(s.cap <= 32);
    pt_etcd_stream_free(&s);
}

static int stop_msg(const char *json, size_t len, void *arg)
{
    (void)json;
    (void)len;
    ++*(int *)arg;
    return 7;
}

static void test_stream_stops_on_callback(void **state)
{
    (void)state;
    pt_etcd_stream s;
    int calls = 0;
    pt_etcd_stream_init(&s, 64);
    assert_int_equal(pt_etcd_stream_feed(&s, "{}\n{}\n", 6, stop_msg, &calls), 7);
    assert_int_equal(calls, 1);
    pt_etcd_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_all_bytes),
        cmocka_unit_test(test_enc_txn),
        cmocka_unit_test(test_enc_others),
        cmocka_unit_test(test_dec_txn),
        cmocka_unit_test(test_dec_lease_and_errors),
        cmocka_unit_test(test_dec_watch),
        cmocka_unit_test(test_stream_splits),
        cmocka_unit_test(test_stream_byte_by_byte_and_bound),
        cmocka_unit_test(test_stream_stops_on_callback),
    };
    return cmocka_run_group_tests_name("unit: etcd codec", tests, NULL, NULL);
}
