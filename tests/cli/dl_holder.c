/*
 * dl_holder.c - a process for test_pythreadctl.py's deadlocks: holds the
 * Lock HOLD, says "held" on stdout, waits for a line on stdin, then
 * acquires the Lock WAIT (with "fail", asking to fail a deadlock it
 * closes) and says what came of it: "got", or the error's name and
 * message. It then waits for stdin to close before letting go.
 *
 * Usage: dl_holder HOLD WAIT [fail]
 */
#include <stdio.h>
#include <string.h>

#include <pythread.h>

int main(int argc, char **argv)
{
    pt_client *c = NULL;
    pt_lock *hold = NULL, *wait = NULL;
    char line[64];
    int r;

    if (argc < 3)
        return 2;
    if (pt_client_open(&c, NULL) < 0 || pt_lock_open(c, argv[1], 0, 0, &hold) < 0 ||
        pt_lock_open(c, argv[2],
                     argc > 3 && strcmp(argv[3], "fail") == 0 ? PT_OPEN_DEADLOCK_FAIL : 0, 0,
                     &wait) < 0 ||
        pt_lock_acquire(hold, 1, PT_FOREVER) != 1) {
        fprintf(stderr, "dl_holder: %s\n", pt_last_error_message());
        return 1;
    }
    printf("held\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    r = pt_lock_acquire(wait, 1, PT_FOREVER);
    if (r == 1)
        printf("got\n");
    else
        printf("%s %s\n", pt_err_name(r), pt_last_error_message());
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin))
        ;
    pt_client_close(c);
    return 0;
}
