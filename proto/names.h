/*
 * names.h - the kinds' names and the object name rule, one copy for the
 * daemon's core, the client library and pythreadctl. libc only, so the pure
 * core links it too (pythread_names, proto/CMakeLists.txt).
 */
#ifndef PT_NAMES_H
#define PT_NAMES_H

#include <stddef.h>

#include "pythread.h"

/* Every PT_OPEN_* flag this version knows: one list for the client, the
 * wire's check and the core. */
#define PT_OPEN_FLAGS_KNOWN                                                                        \
    (PT_OPEN_EXCL | PT_OPEN_EXISTING | PT_OPEN_TRANSIENT | PT_OPEN_OWNED | PT_OPEN_UNOWNED |       \
     PT_OPEN_NOFAST | PT_OPEN_DEADLOCK_FAIL | PT_OPEN_CLUSTER)

/* The longest object name, in bytes. */
#define PT_NAME_MAX 255

/* The name rule: 1..PT_NAME_MAX bytes of [A-Za-z0-9._:/-] (len bytes of
 * name, which need not end in a NUL). The client checks it before sending,
 * the daemon's core again on receipt. */
int pt_name_valid(const char *name, size_t len);

/* 1 for PT_KIND_LOCK..PT_KIND_BARRIER. */
int pt_kind_known(int kind);
/* pt_kind_name (pythread.h) gives the class name, "Lock" or
 * "BoundedSemaphore"; this gives the word of the command line and of JSON
 * output, "lock" or "bounded_semaphore". NULL for an unknown kind. */
const char *pt_kind_word(int kind);
/* The kind a word names; 0 if none does. */
int pt_kind_parse(const char *word);

#endif /* PT_NAMES_H */
