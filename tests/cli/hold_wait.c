/*
 * hold_wait.c - a test's process that holds one Lock and then waits for
 * another: `hold_wait HELD WANTED`. It prints "held" once it holds HELD,
 * and when a line comes on its stdin acquires WANTED (waiting up to a
 * minute); it exits 0 if it got it. Three of them in a ring (A B, B C,
 * C A), each told to go once all hold, make a deadlock.
 */
#include <stdio.h>

#include "pythread.h"

int main(int argc, char **argv)
{
    pt_client *c = NULL;
    pt_lock *held, *wanted;

    if (argc != 3) {
        fprintf(stderr, "usage: hold_wait HELD WANTED\n");
        return 2;
    }
    if (pt_client_open(&c, NULL) < 0 || pt_lock_open(c, argv[1], 0, 0, &held) < 0 ||
        pt_lock_open(c, argv[2], 0, 0, &wanted) < 0 || pt_lock_acquire(held, 1, -1) != 1) {
        fprintf(stderr, "hold_wait: %s\n", pt_last_error_message());
        return 1;
    }
    printf("held\n");
    fflush(stdout);
    if (getchar() == EOF)
        return 1;
    return pt_lock_acquire(wanted, 1, 60) == 1 ? 0 : 1;
}
