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

static int name_char_ok(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == ':' || ch == '/' || ch == '-';
}

int pt_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > PT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!name_char_ok((unsigned char)name[i]))
            return 0;
    }
    return 1;
}

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
