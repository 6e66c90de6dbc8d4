#include <string.h>

#include "names.h"

/* Each kind's class name (as in Python's threading) and its word. */
static const struct {
    const char *name;
    const char *word;
} kinds[] = {
    [PT_KIND_LOCK] = {"Lock", "lock"},
    [PT_KIND_RLOCK] = {"RLock", "rlock"},
    [PT_KIND_CONDITION] = {"Condition", "condition"},
    [PT_KIND_SEMAPHORE] = {"Semaphore", "semaphore"},
    [PT_KIND_BOUNDED_SEMAPHORE] = {"BoundedSemaphore", "bounded_semaphore"},
    [PT_KIND_EVENT] = {"Event", "event"},
    [PT_KIND_BARRIER] = {"Barrier", "barrier"},
};

int pt_kind_known(int kind)
{
    return kind >= PT_KIND_LOCK && kind <= PT_KIND_BARRIER;
}

const char *pt_kind_name(pt_kind kind)
{
    return pt_kind_known((int)kind) ? kinds[kind].name : "unknown";
}

const char *pt_kind_word(int kind)
{
    return pt_kind_known(kind) ? kinds[kind].word : NULL;
}

int pt_kind_parse(const char *word)
{
    for (int k = PT_KIND_LOCK; k <= PT_KIND_BARRIER; k++)
        if (strcmp(kinds[k].word, word) == 0)
            return k;
    return 0;
}
