/*
 * uid.c - what each user (uid) has in the daemon, for the per-uid limits:
 * the named objects it created, each until it ends (an unlinked or
 * transient one with its last reference), its sessions, and the handles and
 * parked calls of all its sessions together; and the permission check.
 *
 * Entries live in a short list: a daemon serves a handful of users. The
 * list is walked when a session starts or ends, when an object is created
 * or ends, and when the daemon asks for a count; each session keeps a
 * pointer to its user's entry, so counting a handle or a parked call costs
 * no walk. An entry lives while its user has a session or an object and is
 * freed once it has neither. Root (uid 0) is counted like anyone but held
 * to no per-uid quota, as root may do anything with the objects too.
 */
#include <stdlib.h>

#include "core_int.h"

/* The entry of uid; created (zeroed) when create is set and there is none.
 * NULL if absent and not created, or out of memory. */
pt_uidcount *pt__uid_get(pt_core *c, uid_t uid, int create)
{
    pt_uidcount *u;

    LIST_FOREACH(u, &c->uids, link)
    {
        if (u->uid == uid)
            return u;
    }
    if (!create || (u = calloc(1, sizeof(*u))) == NULL)
        return NULL;
    u->uid = uid;
    LIST_INSERT_HEAD(&c->uids, u, link);
    return u;
}

/* Forget an entry once its user has no session and no object (handles and
 * waiters belong to sessions, so they are 0 by then). */
static void uid_put(pt_uidcount *u)
{
    if (u->objects == 0 && u->sessions == 0) {
        LIST_REMOVE(u, link);
        free(u);
    }
}

int pt__uid_add(pt_core *c, uid_t uid, int objects, int sessions)
{
    pt_uidcount *u = pt__uid_get(c, uid, 1);

    if (u == NULL)
        return PT_ENOMEM;
    u->objects += (uint32_t)objects;
    u->sessions += (uint32_t)sessions;
    uid_put(u);
    return 0;
}

int pt__uid_handles_full(const pt_core *c, const pt_session *s)
{
    return s->peer.uid != 0 && s->user->handles >= c->limits.max_handles_per_uid;
}

int pt__uid_waiters_full(const pt_core *c, const pt_session *s)
{
    return s->peer.uid != 0 && s->user->waiters >= c->limits.max_waiters_per_uid;
}

uint32_t pt_core_uid_sessions(const pt_core *core, uid_t uid)
{
    pt_uidcount *u = pt__uid_get((pt_core *)core, uid, 0);

    return u ? u->sessions : 0;
}

void pt_core_uid_usage_get(const pt_core *core, uid_t uid, pt_core_uid_usage *out)
{
    pt_uidcount *u = pt__uid_get((pt_core *)core, uid, 0);

    *out = (pt_core_uid_usage){0};
    if (u != NULL)
        *out = (pt_core_uid_usage){.objects = u->objects,
                                   .sessions = u->sessions,
                                   .handles = u->handles,
                                   .waiters = u->waiters};
}

void pt__uids_free_all(pt_core *c)
{
    pt_uidcount *u;

    while ((u = LIST_FIRST(&c->uids)) != NULL) {
        LIST_REMOVE(u, link);
        free(u);
    }
}

/*
 * Permissions, after sem_open and the sticky /dev/shm it lives in:
 *
 *   - uid 0 may do anything;
 *   - the caller's class is owner when its uid is the creator's, else group
 *     when its primary gid (SO_PEERCRED carries no supplementary groups) is
 *     the creator's, else other; only that class's bits count, as for files;
 *   - open of an existing object needs read and write (PT_ACCESS_USE): a
 *     handle is a capability, like a file descriptor, so the operations made
 *     through it (acquire, release, wait, set, ...) are not checked again,
 *     and a mode never changes after creation;
 *   - inspection detail (state, counters, waiters, references, holders) needs
 *     read; the name, kind, owner, mode and flags are visible to all, as
 *     `ls -l` shows them (core/inspect.c hides the rest);
 *   - unlink is for the owner or root only, as the sticky bit of /dev/shm
 *     makes it for POSIX named semaphores (PT_ACCESS_UNLINK).
 */
int pt_core_access(const pt_peer *peer, uid_t uid, gid_t gid, uint32_t mode, int want)
{
    uint32_t bits;

    if (peer->uid == 0)
        return 0;
    if (want == PT_ACCESS_UNLINK)
        return peer->uid == uid ? 0 : PT_EPERM;
    if (peer->uid == uid)
        bits = (mode >> 6) & 7u;
    else if (peer->gid == gid)
        bits = (mode >> 3) & 7u;
    else
        bits = mode & 7u;
    return ((uint32_t)want & ~bits) == 0 ? 0 : PT_EPERM;
}
