/*
 * journal.h - the core's inputs, recorded as they are given and given again
 * from a record (proto/journal.proto has the format).
 *
 * Every entry into the core goes through one of the pt_journal_ calls
 * below, which records it (j may be NULL: nothing is) and then makes it.
 * The core is deterministic, so a fresh core given the same records by
 * pt_journal_replay reaches the same state: objects, values, holders,
 * waiters in order, tokens, sessions. What the shared words told the core
 * comes through its fast hooks; pt_journal_set_fast_hooks puts the journal
 * between them so their answers are recorded too.
 */
#ifndef PT_JOURNAL_H
#define PT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "pythread.pb-c.h"

typedef struct pt_journal pt_journal;

pt_journal *pt_journal_new(void);
void pt_journal_free(pt_journal *j);

/* The bytes recorded and not yet taken, and taking the first n of them. */
const uint8_t *pt_journal_bytes(const pt_journal *j, size_t *len);
void pt_journal_take(pt_journal *j, size_t n);
/* Records lost for want of memory since the journal began: it is no longer
 * a whole account of the core's inputs. */
uint64_t pt_journal_lost(const pt_journal *j);

/* How a session's process takes it up again after a restart: recorded
 * with the session, not a core input. */
#define PT_RESUME_KEY_LEN 16u
typedef struct pt_journal_who {
    uint64_t start_time; /* the process's, clock ticks after boot (proc(5)) */
    uint8_t key[PT_RESUME_KEY_LEN];
} pt_journal_who;

/* The core's entries: recorded, then made. */
void pt_journal_start(pt_journal *j, pt_core *core, uint64_t token_base);
/* who may be NULL: the session cannot be resumed. */
pt_session *pt_journal_session_new(pt_journal *j, pt_core *core, const pt_peer *peer, void *udata,
                                   const pt_journal_who *who);
void pt_journal_session_end(pt_journal *j, pt_core *core, pt_session *s, uint64_t now);
void pt_journal_call(pt_journal *j, pt_core *core, pt_session *s, const Pythread__Request *req,
                     uint64_t now);
void pt_journal_expire(pt_journal *j, pt_core *core, uint64_t now);
void pt_journal_claim_all(pt_journal *j, pt_core *core);
void pt_journal_restart(pt_journal *j, pt_core *core, uint64_t now, uint64_t token_jump,
                        const pt_core_reclaim *reclaims, size_t n);
/* The words are gone with the daemon that had them, until the restart. */
void pt_journal_words_lost(pt_journal *j, pt_core *core);
/* The core's limits from here on (a replay repeats each run under its own). */
void pt_journal_limits(pt_journal *j, pt_core *core, const pt_core_limits *limits);

/* Set core's fast hooks to hooks (with ctx), their answers recorded in j
 * (just set them when j is NULL). With j and no hooks (NULL), objects get
 * no cell, and that is recorded too, so a replay gives the same. */
void pt_journal_set_fast_hooks(pt_journal *j, pt_core *core, const pt_core_fast_hooks *hooks,
                               void *ctx);

/* How the process of session s may take it up again: 0 with out filled,
 * or -1 (it may not). */
typedef int (*pt_journal_who_fn)(void *ctx, const pt_session *s, pt_journal_who *out);

/* Record the state of core as a snapshot (journal_image.c): a replay of it
 * into a fresh core rebuilds that state, sessions, holds and waiters in
 * order included, and gives each session to the replay's hooks with what
 * who (may be NULL) said of it. -1 while a restart is under way, or when a
 * record could not be made (no memory; a record over its size limit). */
int pt_journal_snapshot(pt_journal *j, const pt_core *core, pt_journal_who_fn who, void *ctx);

/* What a replay did. */
typedef struct pt_journal_replayed {
    size_t used;      /* bytes of whole records given to the core */
    uint64_t records; /* entries and hook answers */
    uint64_t entries; /* entries into the core */
} pt_journal_replayed;

/* What the caller hears of a replay's sessions (either may be NULL): each
 * one made, with how its process may take it up again (who NULL: it may
 * not), and each one about to end. */
typedef struct pt_journal_replay_hooks {
    void (*session_new)(void *ctx, pt_session *s, const pt_journal_who *who);
    void (*session_end)(void *ctx, pt_session *s);
    void *ctx;
} pt_journal_replay_hooks;

/* Give core, fresh, every input recorded in buf. The sessions it makes have
 * no udata unless hooks gives them some; their answers go to the core's
 * sink as usual. Returns 0; or -1 with err saying where the journal stops
 * making sense (a torn or foreign record): what came before it was given,
 * and out->used says how much that was. The core is left with no fast
 * hooks: set them after. */
int pt_journal_replay(pt_core *core, const uint8_t *buf, size_t len,
                      const pt_journal_replay_hooks *hooks, pt_journal_replayed *out, char *err,
                      size_t errlen);

#endif /* PT_JOURNAL_H */
