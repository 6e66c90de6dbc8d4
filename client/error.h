/*
 * error.h - the calling thread's error message, which pt_last_error_message
 * returns: the one thing the daemon's client and the in-process threading
 * module (threading/) share.
 */
#ifndef PT_CLIENT_ERROR_H
#define PT_CLIENT_ERROR_H

/* Longest error message kept for pt_last_error_message (longer ones are cut). */
#define PT__ERRMSG_MAX 512

/* The calling thread's message buffer (PT__ERRMSG_MAX bytes). */
char *pt__errbuf(void);
/* Set the calling thread's message and return code. */
int pt__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* PT_EINVAL for a NULL handle passed to fn. */
int pt__null_handle(const char *fn);

#endif /* PT_CLIENT_ERROR_H */
