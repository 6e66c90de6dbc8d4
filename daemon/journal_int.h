/*
 * journal_int.h - what journal.c (records and their replay) and
 * journal_image.c (the snapshot written as records, and loaded from them)
 * share.
 */
#ifndef PT_JOURNAL_INT_H
#define PT_JOURNAL_INT_H

#include "journal.h"
#include "journal.pb-c.h"

#define JOURNAL_HEADER 4u
#define RECORD_MAX     (1u << 20) /* a Request is at most a frame; far below this */

typedef Pythread__JournalRecord record;

/* Append r to j (NULL: nothing); a record too big or without memory is
 * counted lost. */
void pt__journal_put(pt_journal *j, const record *r);

/* A session of the snapshot (s NULL once ended). */
typedef struct replay_kept {
    uint64_t id;
    pt_session *s;
} replay_kept;

typedef struct replay {
    pt_core *core;
    const uint8_t *buf;
    size_t len, pos;
    pt_session **sessions; /* by id - base - 1; ids are given in order */
    uint64_t nsessions;
    uint64_t base;     /* ids up to it were the snapshot's past */
    replay_kept *kept; /* the snapshot's sessions, by id (ascending) */
    size_t nkept;
    int loading; /* a snapshot is being loaded */
    pt_journal_replayed *out;
    char *err;
    size_t errlen;
    int failed;
    pt_journal_replay_hooks hooks;
    pt_core_reclaim *reclaims; /* RECLAIMS records' for the RESTART after them */
    size_t nreclaims;
} replay;

void pt__replay_fail(replay *rp, const char *what);
void pt__journal_who_of(const Pythread__JournalResume *m, pt_journal_who *who);
/* Where the session with this id is kept (NULL: it never was). */
pt_session **pt__replay_session_at(replay *rp, uint64_t id);
/* A snapshot's record (IMAGE_*), given to the core being rebuilt. */
void pt__replay_image(replay *rp, const record *r);
/* The snapshot is over: the core is checked whole. */
void pt__replay_image_end(replay *rp);

#endif /* PT_JOURNAL_INT_H */
