/*
 * state_int.h - the state directory as state.c (the journal file) and
 * compact.c (its rewriting as a snapshot) share it.
 */
#ifndef PT_STATE_INT_H
#define PT_STATE_INT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pt_compaction pt_compaction;

struct pt_statedir {
    int fd;
    uint8_t *base; /* the file mapped (journal_map.c) */
    size_t mapped; /* bytes of it mapped, and allocated in the file */
    int lock_fd;   /* DIR/lock, flocked while the daemon runs */
    int sync;
    char dir[PATH_MAX];
    char path[PATH_MAX];
    uint64_t restored, replayed, torn; /* at this start: objects, inputs, bytes cut */
    uint64_t appended;                 /* bytes in the file */
    uint64_t synced;                   /* with --sync: bytes of it made durable */
    int gap;             /* an append failed: the file lacks records until a snapshot replaces it */
    int snap_failing;    /* the last snapshot failed (in a gap, logged once until one works) */
    struct event *retry; /* in a gap, the next snapshot's try */
    pt_daemon *d;
    uint32_t compact_after; /* --compact-after */
    uint64_t since;         /* bytes appended after the last snapshot */
    uint64_t snap_bytes;    /* that snapshot's size */
    int want;               /* a snapshot at the next chance */
    pt_compaction *cp;      /* the snapshot being written */
};

int pt__write_all(int fd, const uint8_t *p, size_t len);
/* The journal file (fd) mapped for appends after its `appended` bytes;
 * anything past them is cut off first. -1 with errno. */
int pt__jmap_attach(pt_statedir *s);
/* len bytes of whole records appended after `appended` (not moved on).
 * -1 with errno. */
int pt__jmap_append(pt_statedir *s, const uint8_t *p, size_t len);
/* The bytes from..to of the file durable (msync). -1 with errno. */
int pt__jmap_sync(const pt_statedir *s, size_t from, size_t to);
/* Unmapped; with cut, the file ends at its last record. */
void pt__jmap_detach(pt_statedir *s, int cut);
/* len bytes were appended to the journal: a snapshot being written gets
 * them too. */
void pt__compact_appended(pt_statedir *s, const uint8_t *p, size_t len);
/* Stop the snapshot being written; the journal stays as it is. */
void pt__compact_cancel(pt_statedir *s);
/* The same, and no snapshot tried again: the daemon stops. */
void pt__compact_stop(pt_statedir *s);
/* Records since the image were not appended: the snapshot being written
 * would lack them too. (A snapshot started in the gap takes them all.) */
void pt__compact_gap(pt_statedir *s);
/* The state rewritten as a snapshot now, in the loop's thread (a stop in
 * a gap). 0, or -1 with the failure logged. */
int pt__compact_now(pt_daemon *d);

#endif /* PT_STATE_INT_H */
