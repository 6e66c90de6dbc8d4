/*
 * names.h - the kinds' names, one table for the daemon's core, the client
 * library and pythreadctl. libc only, so the pure core links it too
 * (pythread_names, proto/CMakeLists.txt).
 */
#ifndef PT_NAMES_H
#define PT_NAMES_H

#include "pythread.h"

/* 1 for PT_KIND_LOCK..PT_KIND_BARRIER. */
int pt_kind_known(int kind);
/* pt_kind_name (pythread.h) gives the class name, "Lock" or
 * "BoundedSemaphore"; this gives the word of the command line and of JSON
 * output, "lock" or "bounded_semaphore". NULL for an unknown kind. */
const char *pt_kind_word(int kind);
/* The kind a word names; 0 if none does. */
int pt_kind_parse(const char *word);

#endif /* PT_NAMES_H */
