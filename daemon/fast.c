/*
 * fast.c - the daemon's side of the shared words (proto/fastword.h): the
 * groups (one memfd per creator uid, gid and mode), their cells, the
 * sessions' ids in words, and the claim and publish that turn words into
 * input for the core and the core's state back into words.
 *
 * A group is sized for --max-objects cells when it is made and sealed
 * against growing and shrinking, so no client can make the daemon's
 * mapping fault; pages are only allocated as cells are used. A session gets
 * a group's descriptor with the first open of one of its objects: opening
 * it is what the object's mode allowed, and every object in the group has
 * that mode, owner and group.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"
#include "fastsync.h"
#include "fastwake.h"

/* A session id in a word: 7 bits of generation over 17 of slot, so a slot
 * used again is not taken for the session that had it before. */
#define SID_SLOT_BITS 17
#define SID_SLOTS     (1u << SID_SLOT_BITS)
#define SID_GEN_MAX   ((1u << (PT_FW_SID_BITS - SID_SLOT_BITS)) - 1)

typedef struct fast_group {
    uid_t uid;
    gid_t gid;
    uint32_t mode;
    int fd;
    pt_fast_cell *cells;
    uint32_t next_new; /* cells below it have been used */
    uint32_t *free;    /* cells given back, a stack */
    uint32_t nfree, capfree;
} fast_group;

/* The daemon's private side of one cell. */
typedef struct fast_ref {
    fast_group *group; /* NULL when the ref is free */
    uint32_t index;
    uint32_t next_free;
    pt_fastsync sync;
} fast_ref;

struct pt_fast {
    pt_daemon *d;
    uint32_t capacity; /* cells per group */
    fast_group **groups;
    uint32_t ngroups;
    uint32_t group_base; /* the last image's groups, numbered before ours */
    fast_ref *refs;      /* refs[0] unused: 0 means no cell */
    uint32_t nrefs, caprefs, free_ref;
    struct {
        pt_conn *conn;
        uint8_t gen;
    } * sids;
    uint32_t sid_next;
};

/* ------------------------------------------------------------------ */
/* Groups and cells                                                    */
/* ------------------------------------------------------------------ */

static size_t group_bytes(const pt_fast *f)
{
    return (size_t)f->capacity * PT_FAST_CELL_SIZE;
}

static int group_memfd(const pt_fast *f)
{
    int fd = memfd_create("pythreadd-cells", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)group_bytes(f)) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static fast_group *group_new(pt_fast *f, uid_t uid, gid_t gid, uint32_t mode)
{
    fast_group *g = calloc(1, sizeof(*g));
    fast_group **grown = realloc(f->groups, (f->ngroups + 1) * sizeof(*grown));

    if (grown)
        f->groups = grown;
    if (!g || !grown || (g->fd = group_memfd(f)) < 0) {
        free(g);
        return NULL;
    }
    g->cells = mmap(NULL, group_bytes(f), PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    if (g->cells == MAP_FAILED) {
        close(g->fd);
        free(g);
        return NULL;
    }
    g->uid = uid;
    g->gid = gid;
    g->mode = mode;
    f->groups[f->ngroups++] = g;
    return g;
}

static fast_group *group_get(pt_fast *f, uid_t uid, gid_t gid, uint32_t mode)
{
    for (uint32_t i = 0; i < f->ngroups; i++) {
        fast_group *g = f->groups[i];

        if (g->uid == uid && g->gid == gid && g->mode == mode)
            return g;
    }
    return group_new(f, uid, gid, mode);
}

static uint32_t group_number(const pt_fast *f, const fast_group *g)
{
    for (uint32_t i = 0; i < f->ngroups; i++) {
        if (f->groups[i] == g)
            return f->group_base + i + 1;
    }
    return 0;
}

/* A cell of g, or UINT32_MAX when it is full. */
static uint32_t cell_take(pt_fast *f, fast_group *g)
{
    if (g->nfree > 0)
        return g->free[--g->nfree];
    if (g->next_new >= f->capacity)
        return UINT32_MAX;
    return g->next_new++;
}

/* A cell back to g; one that finds no room is simply not used again. */
static void cell_put(fast_group *g, uint32_t index)
{
    if (g->nfree == g->capfree) {
        uint32_t cap = g->capfree ? 2 * g->capfree : 64;
        uint32_t *grown = realloc(g->free, cap * sizeof(*grown));

        if (!grown)
            return;
        g->free = grown;
        g->capfree = cap;
    }
    g->free[g->nfree++] = index;
}

static uint32_t ref_take(pt_fast *f)
{
    uint32_t r = f->free_ref;

    if (r != 0) {
        f->free_ref = f->refs[r].next_free;
        return r;
    }
    if (f->nrefs + 1 >= f->caprefs) {
        uint32_t cap = f->caprefs ? 2 * f->caprefs : 1024;
        fast_ref *grown = realloc(f->refs, cap * sizeof(*grown));

        if (!grown)
            return 0;
        f->refs = grown;
        f->caprefs = cap;
    }
    return ++f->nrefs;
}

static pt_fast_cell *ref_cell(const pt_fast *f, const fast_ref *r)
{
    (void)f;
    return &r->group->cells[r->index];
}

/* ------------------------------------------------------------------ */
/* Session ids                                                         */
/* ------------------------------------------------------------------ */

uint32_t pt_fast_session_add(pt_fast *f, pt_conn *c)
{
    if (!f)
        return 0;
    for (uint32_t n = 0; n < SID_SLOTS; n++) {
        uint32_t slot = (f->sid_next + n) % SID_SLOTS;

        if (f->sids[slot].conn == NULL) {
            uint8_t gen = f->sids[slot].gen % SID_GEN_MAX + 1;

            f->sids[slot].conn = c;
            f->sids[slot].gen = gen;
            f->sid_next = slot + 1;
            return (uint32_t)gen << SID_SLOT_BITS | slot;
        }
    }
    return 0; /* more sessions than slots: this one goes without */
}

void pt_fast_session_remove(pt_fast *f, uint32_t sid)
{
    if (f && sid != 0)
        f->sids[sid % SID_SLOTS].conn = NULL;
}

uint32_t pt_fast_session_keep(pt_fast *f, pt_conn *c, uint32_t sid)
{
    uint32_t slot = sid % SID_SLOTS;
    uint32_t gen = sid >> SID_SLOT_BITS;

    if (!f || sid == 0 || gen == 0 || gen > SID_GEN_MAX || f->sids[slot].conn != NULL)
        return 0;
    f->sids[slot].conn = c;
    f->sids[slot].gen = (uint8_t)gen;
    return sid;
}

/* The session a word names, NULL when none (ended, or never one). */
static pt_session *sid_session(void *ctx, uint32_t sid)
{
    const pt_fast *f = ctx;
    uint32_t slot = sid % SID_SLOTS;
    pt_conn *c = f->sids[slot].conn;

    if (sid == 0 || c == NULL || f->sids[slot].gen != sid >> SID_SLOT_BITS)
        return NULL;
    return c->session;
}

static uint32_t session_sid(const pt_session *s)
{
    const pt_conn *c = s ? pt_core_session_udata(s) : NULL;

    return c ? c->sid : 0;
}

/* ------------------------------------------------------------------ */
/* The core's hooks                                                    */
/* ------------------------------------------------------------------ */

/* A cell of g and its ref, 0 when there is none. */
static uint32_t ref_new(pt_fast *f, fast_group *g)
{
    uint32_t index, r;

    if ((index = cell_take(f, g)) == UINT32_MAX)
        return 0;
    if ((r = ref_take(f)) == 0) {
        cell_put(g, index);
        return 0;
    }
    f->refs[r] = (fast_ref){.group = g, .index = index};
    return r;
}

static uint32_t hook_created(void *ctx, int kind, int owned, uid_t uid, gid_t gid, uint32_t mode)
{
    pt_fast *f = ctx;
    fast_group *g = group_get(f, uid, gid, mode);
    uint32_t r = g ? ref_new(f, g) : 0;

    if (r != 0) /* else the object works without a cell */
        pt_fastsync_init(&f->refs[r].sync, ref_cell(f, &f->refs[r]), kind, owned);
    return r;
}

static void hook_freed(void *ctx, uint32_t ref);

/* A slot lives in its object's group: whoever may open the object maps it
 * already. Its id must fit in a word. */
static uint32_t hook_slot_new(void *ctx, uint32_t cell)
{
    pt_fast *f = ctx;
    uint32_t r = ref_new(f, f->refs[cell].group);

    if (r > PT_FW_SLOT_MAX) {
        hook_freed(f, r);
        return 0;
    }
    if (r != 0)
        memset(ref_cell(f, &f->refs[r]), 0, sizeof(pt_fast_cell));
    return r;
}

static int64_t hook_slot_read(void *ctx, uint32_t slot)
{
    pt_fast *f = ctx;

    return pt_fw_slot(ref_cell(f, &f->refs[slot]));
}

static void hook_freed(void *ctx, uint32_t ref)
{
    pt_fast *f = ctx;
    fast_ref *r = &f->refs[ref];
    fast_group *g = r->group;

    memset(&g->cells[r->index], 0, sizeof(pt_fast_cell));
    cell_put(g, r->index);
    r->group = NULL;
    r->next_free = f->free_ref;
    f->free_ref = ref;
}

static void hook_claim(void *ctx, uint32_t ref, int kind, pt_core_fast_view *v)
{
    pt_fast *f = ctx;
    fast_ref *r = &f->refs[ref];

    pt_fastsync_claim(&r->sync, ref_cell(f, r), kind, sid_session, f, v);
}

static uint64_t hook_unread(void *ctx, uint32_t ref, int kind, uint64_t token)
{
    pt_fast *f = ctx;
    fast_ref *r = &f->refs[ref];

    return pt_fastsync_unread(&r->sync, ref_cell(f, r), kind, token);
}

void pt_fast_publish_all(pt_fast *f)
{
    pt_core_fast_state st;
    int journaled = 0;

    if (!f)
        return;
    while (pt_core_fast_next(f->d->core, &st)) {
        fast_ref *r = &f->refs[st.cell];

        /* the journal first: a word shown is a change heard */
        if (!journaled) {
            pt_state_append(f->d);
            journaled = 1;
        }

        pt_fastsync_publish(&r->sync, ref_cell(f, r), &st, session_sid(st.holder),
                            session_sid(st.next));
    }
}

/* A session's reader watching the word of cell ref: answers were written
 * to it (fastwake.h). A ref freed since wakes nobody; one used again may
 * wake a stranger, who looks and sleeps on. */
void pt_fast_wake_watcher(pt_fast *f, uint32_t ref, uint32_t tid)
{
    fast_ref *r;

    if (!f || ref == 0 || ref > f->nrefs)
        return;
    r = &f->refs[ref];
    if (r->group != NULL)
        pt_fast_wake(ref_cell(f, r), tid);
}

/* ------------------------------------------------------------------ */
/* Answers and life                                                    */
/* ------------------------------------------------------------------ */

/* Fill in where the cell of an OPEN's object is, and the session's slot
 * (0 for none); *fd gets the group's descriptor when this session has not
 * had it yet, else -1. */
void pt_fast_answer(pt_fast *f, pt_conn *c, uint32_t ref, uint32_t slot, Pythread__FastCell *out,
                    int *fd)
{
    fast_ref *r = &f->refs[ref];
    uint32_t group = group_number(f, r->group);

    *fd = -1;
    out->has_group = out->has_cell = 1;
    out->group = group;
    out->cell = r->index;
    if (slot != 0) {
        out->has_slot_cell = out->has_slot_id = 1;
        out->slot_cell = f->refs[slot].index;
        out->slot_id = slot;
    }
    for (uint32_t i = 0; i < c->ngroups_sent; i++) {
        if (c->groups_sent[i] == group)
            return;
    }
    uint32_t *grown = realloc(c->groups_sent, (c->ngroups_sent + 1) * sizeof(*grown));

    if (!grown)
        return; /* no mapping: the client takes the slow path */
    c->groups_sent = grown;
    c->groups_sent[c->ngroups_sent++] = group;
    out->has_map_size = 1;
    out->map_size = group_bytes(f);
    *fd = r->group->fd;
}

uint32_t pt_fast_groups(const pt_fast *f)
{
    return f ? f->ngroups : 0;
}

uint32_t pt_fast_groups_base(const pt_fast *f)
{
    return f ? f->group_base : 0;
}

void pt_fast_groups_after(pt_fast *f, uint32_t n)
{
    if (f && n > f->group_base)
        f->group_base = n;
}

/* Copy-on-write mappings of the same memfds: the teardown's claims and
 * frees read the words as they are and write only this process's pages,
 * so the words the clients map stay claimed, as the journal left them. */
int pt_fast_retire(pt_fast *f)
{
    if (!f)
        return 0;
    for (uint32_t i = 0; i < f->ngroups; i++) {
        fast_group *g = f->groups[i];
        void *priv = mmap(NULL, group_bytes(f), PROT_READ | PROT_WRITE, MAP_PRIVATE, g->fd, 0);

        if (priv == MAP_FAILED)
            priv = mmap(NULL, group_bytes(f), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
        if (priv == MAP_FAILED)
            return -1;
        munmap(g->cells, group_bytes(f));
        g->cells = priv;
    }
    return 0;
}

static const pt_core_fast_hooks hooks = {
    .created = hook_created,
    .claim = hook_claim,
    .freed = hook_freed,
    .slot_new = hook_slot_new,
    .slot_read = hook_slot_read,
    .slot_free = hook_freed,
    .unread = hook_unread,
};

pt_fast *pt_fast_new(pt_daemon *d, uint32_t capacity)
{
    pt_fast *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    f->sids = calloc(SID_SLOTS, sizeof(*f->sids));
    if (!f->sids) {
        free(f);
        return NULL;
    }
    f->d = d;
    f->capacity = capacity;
    f->nrefs = 0;
    pt_journal_set_fast_hooks(d->journal, d->core, &hooks, f);
    return f;
}

void pt_fast_free(pt_fast *f)
{
    if (!f)
        return;
    for (uint32_t i = 0; i < f->ngroups; i++) {
        fast_group *g = f->groups[i];

        munmap(g->cells, group_bytes(f));
        close(g->fd);
        free(g->free);
        free(g);
    }
    free(f->groups);
    free(f->refs);
    free(f->sids);
    free(f);
}
