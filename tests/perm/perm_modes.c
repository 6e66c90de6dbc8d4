/*
 * perm_modes.c - object permissions enforced by a real pythreadd against
 * real processes of other users.
 *
 * The test runs as root and acts as other users by running itself again
 * through `setpriv --reuid --regid --clear-groups` with --as: that child
 * opens, uses or unlinks one object and reports the result as its exit
 * status (the negated PT_E* code) and the daemon's message on stdout. The
 * daemon's socket (mode 0666 by default) sits in a directory opened to
 * everyone for the test. Skipped unless run as root with setpriv at hand.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Users and groups of the test; none needs to exist in /etc/passwd. */
#define OWNER_UID  41001
#define MEMBER_UID 41002
#define STRANGER   41003
#define SHARED_GID 42000
#define OTHER_GID  42001

static const char *self_path;

/* ------------------------------------------------------------------ */
/* The other user's side (--as)                                        */
/* ------------------------------------------------------------------ */

/* Called for each listed object: note the one named arg's. */
static int list_find(void *arg, const pt_inspect_object *o)
{
    pt_inspect_object *want = arg;

    if (strcmp(o->name, want->name) == 0)
        *want = *o;
    return 0;
}

/* What show and list tell this user about name, on stdout. */
static int inspect(pt_client *c, const char *name)
{
    pt_inspect_object listed = {0};
    pt_inspect_detail *d;
    int rc = pt_inspect_show(c, name, &d);

    if (rc < 0)
        return rc;
    snprintf(listed.name, sizeof listed.name, "%s", name);
    printf("show hidden=%d denied=%d value=%lld acquires=%llu refs=%u; ", d->object.hidden,
           d->detail_denied, (long long)d->object.value, (unsigned long long)d->object.acquires,
           d->object.refs);
    pt_inspect_detail_free(d);
    if ((rc = pt_inspect_list(c, NULL, 0, list_find, &listed)) < 0)
        return rc;
    printf("list hidden=%d value=%lld mode=%o kind=%d\n", listed.hidden, (long long)listed.value,
           listed.mode, listed.kind);
    return 0;
}

/* A Semaphore(5) with mode, two permits taken: its state outlives us. */
static int sem_taken(pt_client *c, const char *name, unsigned mode)
{
    pt_semaphore *s;
    int rc = pt_semaphore_open(c, name, 5, 0, PT_OPEN_EXCL, mode, &s);

    if (rc < 0)
        return rc;
    if ((rc = pt_semaphore_acquire(s, 1, -1)) >= 0)
        rc = pt_semaphore_acquire(s, 1, -1);
    pt_semaphore_close(s);
    return rc < 0 ? rc : 0;
}

/* --as OP NAME MODE: OP is create (with MODE), open, use (open, acquire,
 * release), unlink, sem (a Semaphore with MODE, two permits taken) or
 * inspect (show and list). Exit status: 0, or the negated error code. */
static int as_user(const char *op, const char *name, const char *mode)
{
    pt_client *c;
    pt_lock *l = NULL;
    int rc = pt_client_open(&c, NULL);

    if (rc < 0) {
        printf("%s\n", pt_last_error_message());
        return -rc;
    }
    if (strcmp(op, "inspect") == 0) {
        rc = inspect(c, name);
    } else if (strcmp(op, "sem") == 0) {
        rc = sem_taken(c, name, (unsigned)strtoul(mode, NULL, 8));
    } else if (strcmp(op, "unlink") == 0) {
        rc = pt_unlink(c, name);
    } else {
        int flags = strcmp(op, "create") == 0 ? PT_OPEN_EXCL : PT_OPEN_EXISTING;
        rc = pt_lock_open(c, name, flags, (unsigned)strtoul(mode, NULL, 8), &l);
        if (rc >= 0 && strcmp(op, "use") == 0) {
            rc = pt_lock_acquire(l, 1, 1.0);
            if (rc == 1)
                rc = pt_lock_release(l);
            else if (rc == 0)
                rc = PT_EINTERNAL; /* nobody else holds it: must not time out */
        }
    }
    if (rc < 0)
        printf("%s\n", pt_last_error_message());
    if (l)
        pt_lock_close(l);
    pt_client_close(c);
    return rc < 0 ? -rc : 0;
}

/* ------------------------------------------------------------------ */
/* The test's side                                                     */
/* ------------------------------------------------------------------ */

typedef struct outcome {
    int rc; /* 0 or a PT_E* code */
    char message[512];
} outcome;

/* Run `--as op name mode` as uid/gid through setpriv. */
static outcome run_as(uid_t uid, gid_t gid, const char *op, const char *name, unsigned mode)
{
    char ruid[32], rgid[32], smode[16];
    outcome o = {0};
    int fds[2], status;
    pid_t pid;
    ssize_t n;
    size_t len = 0;

    snprintf(ruid, sizeof ruid, "--reuid=%u", (unsigned)uid);
    snprintf(rgid, sizeof rgid, "--regid=%u", (unsigned)gid);
    snprintf(smode, sizeof smode, "%o", mode);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execlp("setpriv", "setpriv", ruid, rgid, "--clear-groups", self_path, "--as", op, name,
               smode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    while (len + 1 < sizeof o.message &&
           (n = read(fds[0], o.message + len, sizeof o.message - 1 - len)) > 0)
        len += (size_t)n;
    o.message[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 127);
    o.rc = -WEXITSTATUS(status);
    return o;
}

static void expect(outcome o, int rc, const char *text)
{
    if (o.rc != rc)
        fail_msg("got %d (%s), want %d (%s); message: %s", o.rc, pt_err_name(o.rc), rc,
                 pt_err_name(rc), o.message);
    if (text && !strstr(o.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", o.message, text);
}

static int perm_setup(void **state)
{
    harness *h;

    if (geteuid() != 0 || system("command -v setpriv >/dev/null 2>&1") != 0) {
        *state = NULL;
        return 0;
    }
    harness_setup(state);
    h = *state;
    /* Other users must reach the socket; its mode is the daemon's own. */
    assert_int_equal(chmod(h->dir, 0711), 0);
    return 0;
}

static int perm_teardown(void **state)
{
    return *state ? harness_teardown(state) : 0;
}

#define SKIP_UNLESS_ROOT(state)                                                                    \
    do {                                                                                           \
        if (*(state) == NULL) {                                                                    \
            fprintf(stderr, "skipped: needs root and setpriv(1)\n");                               \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void test_socket_mode(void **state)
{
    harness *h = *state;
    struct stat st;

    SKIP_UNLESS_ROOT(state);
    assert_int_equal(stat(h->sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    h->passed = 1;
}

static void test_private_refused_to_others(void **state)
{
    harness *h = *state;

    SKIP_UNLESS_ROOT(state);
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.private", 0600), 0, NULL);
    expect(run_as(OWNER_UID, SHARED_GID, "use", "perm.private", 0), 0, NULL);
    expect(run_as(MEMBER_UID, SHARED_GID, "open", "perm.private", 0), PT_EPERM,
           "Lock 'perm.private': open: permission denied (mode 0600, owner uid 41001");
    expect(run_as(STRANGER, OTHER_GID, "use", "perm.private", 0), PT_EPERM, "mode 0600");
    /* uid 0 may do anything. */
    expect(run_as(0, 0, "use", "perm.private", 0), 0, NULL);
    h->passed = 1;
}

static void test_group_mode(void **state)
{
    harness *h = *state;

    SKIP_UNLESS_ROOT(state);
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.group", 0660), 0, NULL);
    expect(run_as(MEMBER_UID, SHARED_GID, "use", "perm.group", 0), 0, NULL);
    expect(run_as(STRANGER, OTHER_GID, "open", "perm.group", 0), PT_EPERM, "mode 0660");
    /* Read alone is not enough to use it. */
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.group-ro", 0640), 0, NULL);
    expect(run_as(MEMBER_UID, SHARED_GID, "open", "perm.group-ro", 0), PT_EPERM, "mode 0640");
    h->passed = 1;
}

static void test_world_mode(void **state)
{
    harness *h = *state;

    SKIP_UNLESS_ROOT(state);
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.world", 0666), 0, NULL);
    expect(run_as(MEMBER_UID, SHARED_GID, "use", "perm.world", 0), 0, NULL);
    expect(run_as(STRANGER, OTHER_GID, "use", "perm.world", 0), 0, NULL);
    /* The owner's class is what counts, as for files: 0066 locks out the
     * owner itself. */
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.not-owner", 0066), 0, NULL);
    expect(run_as(OWNER_UID, SHARED_GID, "open", "perm.not-owner", 0), PT_EPERM, "mode 066");
    expect(run_as(STRANGER, OTHER_GID, "use", "perm.not-owner", 0), 0, NULL);
    h->passed = 1;
}

static void test_unlink(void **state)
{
    harness *h = *state;

    SKIP_UNLESS_ROOT(state);
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.unlink", 0666), 0, NULL);
    expect(run_as(STRANGER, OTHER_GID, "unlink", "perm.unlink", 0), PT_EPERM,
           "only its owner or root may unlink it");
    expect(run_as(MEMBER_UID, SHARED_GID, "unlink", "perm.unlink", 0), PT_EPERM, "owner uid 41001");
    expect(run_as(OWNER_UID, SHARED_GID, "unlink", "perm.unlink", 0), 0, NULL);
    expect(run_as(OWNER_UID, SHARED_GID, "create", "perm.unlink-root", 0600), 0, NULL);
    expect(run_as(0, 0, "unlink", "perm.unlink-root", 0), 0, NULL);
    expect(run_as(OWNER_UID, SHARED_GID, "open", "perm.unlink-root", 0), PT_ENOENT, NULL);
    h->passed = 1;
}

/* Names, kind, owner and mode are public; the state and counters of an
 * object are told only to who may read it. */
static void test_inspection_by_mode(void **state)
{
    harness *h = *state;

    SKIP_UNLESS_ROOT(state);
    expect(run_as(OWNER_UID, SHARED_GID, "sem", "perm.inspect", 0640), 0, NULL);
    expect(run_as(OWNER_UID, SHARED_GID, "inspect", "perm.inspect", 0), 0,
           "show hidden=0 denied=0 value=3 acquires=2 refs=0; list hidden=0 value=3 mode=640");
    expect(run_as(MEMBER_UID, SHARED_GID, "inspect", "perm.inspect", 0), 0,
           "show hidden=0 denied=0 value=3 acquires=2");
    expect(run_as(STRANGER, OTHER_GID, "inspect", "perm.inspect", 0), 0,
           "show hidden=1 denied=1 value=0 acquires=0 refs=0; list hidden=1 value=0 mode=640 "
           "kind=4");
    expect(run_as(0, 0, "inspect", "perm.inspect", 0), 0, "show hidden=0 denied=0 value=3");
    h->passed = 1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socket_mode, perm_setup, perm_teardown),
        cmocka_unit_test_setup_teardown(test_private_refused_to_others, perm_setup, perm_teardown),
        cmocka_unit_test_setup_teardown(test_group_mode, perm_setup, perm_teardown),
        cmocka_unit_test_setup_teardown(test_world_mode, perm_setup, perm_teardown),
        cmocka_unit_test_setup_teardown(test_unlink, perm_setup, perm_teardown),
        cmocka_unit_test_setup_teardown(test_inspection_by_mode, perm_setup, perm_teardown),
    };

    if (argc == 5 && strcmp(argv[1], "--as") == 0)
        return as_user(argv[2], argv[3], argv[4]);
    self_path = argv[0];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
