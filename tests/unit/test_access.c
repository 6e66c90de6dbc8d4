/*
 * Permissions and per-user limits in the core: the access rule of
 * pt_core_access, its use by open and unlink, the counts of objects and
 * sessions per uid, and the quotas of handles and waiters per uid.
 */
#include "harness.h"

#include <string.h>

static pt_session *session_as(uid_t uid, gid_t gid)
{
    pt_peer peer = {.pid = 4000 + (pid_t)uid, .uid = uid, .gid = gid};
    pt_session *s = pt_core_session_new(th_core(), &peer, NULL);

    assert_non_null(s);
    return s;
}

static const th_rec *open_mode(pt_session *s, const char *name, uint32_t mode)
{
    pt_call c = {.name = name, .kind = PT_KIND_LOCK, .mode = mode};

    return call_open_full(s, &c);
}

static void test_access_rule(void **state)
{
    static const struct {
        uid_t uid;
        gid_t gid;
        uint32_t mode;
        int want;
        int allowed;
    } cases[] = {
        /* caller 1000/100; object by 1000/100 unless said otherwise */
        {1000, 100, 0600, PT_ACCESS_USE, 1},    {1000, 100, 0400, PT_ACCESS_USE, 0},
        {1000, 100, 0066, PT_ACCESS_USE, 0}, /* the owner's bits count */
        {2000, 100, 0660, PT_ACCESS_USE, 1}, /* same group */
        {2000, 100, 0640, PT_ACCESS_USE, 0},    {2000, 100, 0640, PT_ACCESS_READ, 1},
        {2000, 200, 0660, PT_ACCESS_USE, 0}, /* other */
        {2000, 200, 0666, PT_ACCESS_USE, 1},    {2000, 200, 0604, PT_ACCESS_READ, 1},
        {1000, 100, 0000, PT_ACCESS_UNLINK, 1}, /* the owner unlinks */
        {2000, 100, 0777, PT_ACCESS_UNLINK, 0}, /* nobody else */
    };
    pt_peer caller = {.pid = 1, .uid = 1000, .gid = 100};
    pt_peer root = {.pid = 1, .uid = 0, .gid = 0};

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = pt_core_access(&caller, cases[i].uid, cases[i].gid, cases[i].mode, cases[i].want);
        if ((rc == 0) != cases[i].allowed)
            fail_msg("case %zu: object %u/%u mode 0%o want %d: got %d", i, (unsigned)cases[i].uid,
                     (unsigned)cases[i].gid, cases[i].mode, cases[i].want, rc);
        /* uid 0 may do anything. */
        assert_int_equal(pt_core_access(&root, cases[i].uid, cases[i].gid, 0, cases[i].want), 0);
    }
}

static void test_open_and_unlink_obey_mode(void **state)
{
    pt_session *owner = session_as(1000, 100);
    pt_session *member = session_as(2000, 100);
    pt_session *stranger = session_as(3000, 300);
    pt_session *root = session_as(0, 0);
    const th_rec *r;

    (void)state;
    assert_int_equal(open_mode(owner, "jobs", 0600)->status, 0);
    r = open_mode(member, "jobs", 0);
    th_assert_error(r, PT_EPERM,
                    "Lock 'jobs': open: permission denied (mode 0600, owner uid 1000, gid 100); "
                    "ask its owner to create it with a wider mode, or run as that user");
    /* A stranger learns nothing of the kind from the refusal. */
    {
        pt_call c = {.name = "jobs", .kind = PT_KIND_EVENT};
        th_assert_error(call_open_full(stranger, &c), PT_EPERM, "permission denied");
    }
    assert_int_equal(open_mode(root, "jobs", 0)->status, 0);

    assert_int_equal(open_mode(owner, "shared", 0660)->status, 0);
    assert_int_equal(open_mode(member, "shared", 0)->status, 0);
    th_assert_error(open_mode(stranger, "shared", 0), PT_EPERM, "mode 0660");
    th_assert_error(call_unlink(member, "shared"), PT_EPERM,
                    "Lock 'shared': unlink: permission denied (mode 0660, owner uid 1000)");
    assert_int_equal(call_unlink(owner, "shared")->status, 0);
    assert_int_equal(call_unlink(root, "jobs")->status, 0);
    th_end(owner, 0);
    th_end(member, 0);
    th_end(stranger, 0);
    th_end(root, 0);
}

static int setup_two_per_uid(void **state)
{
    pt_core_limits lim = {.max_objects_per_uid = 2};

    (void)state;
    th_init(&lim);
    return 0;
}

static void test_objects_per_uid(void **state)
{
    pt_session *a, *b;
    uint32_t h;

    (void)state;
    a = session_as(1000, 100);
    b = session_as(2000, 100);
    assert_int_equal(open_mode(a, "a1", 0666)->status, 0);
    h = open_mode(a, "a2", 0666)->handle;
    th_assert_error(open_mode(a, "a3", 0666), PT_ELIMIT, "uid 1000 has created 2 objects");
    /* Another user has its own allowance, and opening is not creating. */
    assert_int_equal(open_mode(b, "b1", 0)->status, 0);
    assert_int_equal(open_mode(b, "a1", 0)->status, 0);
    /* An object that ends gives its place back to its creator. */
    assert_int_equal(call_unlink(a, "a2")->status, 0);
    assert_int_equal(call_close(a, h)->status, 0);
    assert_int_equal(open_mode(a, "a3", 0666)->status, 0);
    th_end(a, 0);
    th_end(b, 0);
}

static void test_sessions_per_uid(void **state)
{
    pt_session *s[3];

    (void)state;
    assert_int_equal(pt_core_uid_sessions(th_core(), 1000), 0);
    s[0] = session_as(1000, 100);
    s[1] = session_as(1000, 100);
    s[2] = session_as(2000, 100);
    assert_int_equal(pt_core_uid_sessions(th_core(), 1000), 2);
    assert_int_equal(pt_core_uid_sessions(th_core(), 2000), 1);
    th_end(s[0], 0);
    assert_int_equal(pt_core_uid_sessions(th_core(), 1000), 1);
    th_end(s[1], 0);
    th_end(s[2], 0);
    assert_int_equal(pt_core_uid_sessions(th_core(), 1000), 0);
    assert_int_equal(pt_core_uid_sessions(th_core(), 2000), 0);
}

static int setup_small_uid_quotas(void **state)
{
    pt_core_limits lim = {.max_handles_per_uid = 3, .max_waiters_per_uid = 2};

    (void)state;
    th_init(&lim);
    return 0;
}

static void expect_usage(uid_t uid, uint32_t sessions, uint32_t handles, uint32_t waiters)
{
    pt_core_uid_usage u;

    pt_core_uid_usage_get(th_core(), uid, &u);
    if (u.sessions != sessions || u.handles != handles || u.waiters != waiters)
        fail_msg("uid %u: %u sessions, %u handles, %u waiters; want %u, %u, %u", (unsigned)uid,
                 u.sessions, u.handles, u.waiters, sessions, handles, waiters);
}

/* The quotas count every session of a user together, leave other users
 * and root alone, and give places back as handles close, waiters are
 * answered and sessions end. */
static void test_handles_and_waiters_per_uid(void **state)
{
    pt_session *a1 = session_as(1000, 100), *a2 = session_as(1000, 100);
    pt_session *b = session_as(2000, 100), *root = session_as(0, 0);
    uint32_t h1, h2, h3, hb = 0;
    uint64_t parked;

    (void)state;
    h1 = open_mode(a1, "q", 0666)->handle;
    h2 = open_mode(a1, "q", 0)->handle;
    h3 = open_mode(a2, "q", 0)->handle;
    expect_usage(1000, 2, 3, 0);
    th_assert_error(open_mode(a2, "q", 0), PT_ELIMIT,
                    "Lock 'q': open: uid 1000 has 3 handles open across its sessions, the quota "
                    "per user; close handles no longer used or raise pythreadd "
                    "--max-handles-per-uid");
    for (int i = 0; i < 3; i++)
        hb = open_mode(b, "q", 0)->handle;
    for (int i = 0; i < 5; i++)
        assert_int_equal(open_mode(root, "q", 0)->status, 0);

    /* a1 holds q; a1 and a2 park a call each; the third is refused. */
    assert_int_equal(call_acquire(a1, h1, 1, 1, -1, 0)->ok, 1);
    assert_null(call_acquire(a1, h2, 2, 1, -1, 0));
    assert_null(call_acquire(a2, h3, 1, 1, -1, 0));
    parked = th_last_id();
    expect_usage(1000, 2, 3, 2);
    th_assert_error(call_acquire(a2, h3, 2, 1, -1, 0), PT_ELIMIT,
                    "Lock 'q': acquire: uid 1000 has 2 calls parked across its sessions, the "
                    "quota per user; wait in fewer threads or processes, or raise pythreadd "
                    "--max-waiters-per-uid");
    assert_null(call_acquire(b, hb, 1, 1, -1, 0));
    assert_null(call_acquire(b, hb, 2, 1, -1, 0));
    for (uint64_t t = 1; t <= 3; t++)
        assert_null(call_acquire(root, 1, t, 1, -1, 0));

    /* Closing a handle answers its parked call: both places come back. */
    assert_int_equal(call_close(a2, h3)->status, 0);
    th_assert_error(th_find(parked), PT_EBADHANDLE, "handle closed");
    expect_usage(1000, 2, 2, 1);
    h3 = open_mode(a2, "q", 0)->handle;
    assert_null(call_acquire(a2, h3, 1, 1, -1, 0));
    th_end(a1, 0);
    expect_usage(1000, 1, 1, 1);
    th_end(a2, 0);
    expect_usage(1000, 0, 0, 0);
    th_end(b, 0);
    th_end(root, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_rule),
        cmocka_unit_test_setup_teardown(test_open_and_unlink_obey_mode, th_setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_objects_per_uid, setup_two_per_uid, th_teardown),
        cmocka_unit_test_setup_teardown(test_sessions_per_uid, th_setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_handles_and_waiters_per_uid, setup_small_uid_quotas,
                                        th_teardown),
    };

    return cmocka_run_group_tests_name("unit: access and per-uid limits", tests, NULL, NULL);
}
