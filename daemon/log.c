#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"

static int log_max_priority = LOG_INFO;

void pt_log_set_verbose(int verbose)
{
    log_max_priority = verbose ? LOG_DEBUG : LOG_INFO;
}

/*
 * Messages quote what peers send (client names, reasons), so control
 * characters are replaced: one event stays one line and a peer cannot forge
 * log lines.
 */
static void log_sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            s[i] = '?';
    }
}

/*
 * Write one "<N>message\n" line to stderr (sd-daemon style priority prefix,
 * which journald and our tests both read). The line is built first and
 * written with one write(2), so lines from a restarting unit never
 * interleave mid-line.
 */
void pt_log(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int head, body;
    size_t len;

    if (priority > log_max_priority)
        return;
    head = snprintf(line, sizeof line, "<%d>", priority);
    va_start(ap, fmt);
    body = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    va_end(ap);
    if (body < 0)
        body = 0;
    len = (size_t)head + (size_t)body;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep the newline */
    log_sanitize(line + head, len - (size_t)head);
    line[len++] = '\n';
    while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
        ;
}
