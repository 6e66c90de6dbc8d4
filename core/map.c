/*
 * map.c - objects by name: a chained hash table through pt_obj.map_next.
 *
 * Power-of-two buckets, doubled when the load passes 3/4, so lookups stay
 * O(1) expected. A failed grow is harmless: chains just get longer. After a
 * peak of names pt__map_fit halves them while under 1/4 full, so a table is
 * never more than 4 pointers a name once trimmed (8/3 while it grows).
 */
#include <stdlib.h>
#include <string.h>

#include "core_int.h"

#define PT_MAP_INITIAL 64u

/* FNV-1a: names are short and trusted only to be bytes. */
uint64_t pt__name_hash(const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return h;
}

int pt__map_init(pt_map *m)
{
    m->buckets = calloc(PT_MAP_INITIAL, sizeof(*m->buckets));
    if (m->buckets == NULL)
        return PT_ENOMEM;
    m->mask = PT_MAP_INITIAL - 1;
    m->count = 0;
    return 0;
}

void pt__map_free(pt_map *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->mask = 0;
    m->count = 0;
}

pt_obj *pt__map_find(const pt_map *m, const char *name, size_t len, uint64_t hash)
{
    for (pt_obj *o = m->buckets[hash & m->mask]; o != NULL; o = o->map_next) {
        if (o->hash == hash && o->name_len == len && memcmp(o->name, name, len) == 0)
            return o;
    }
    return NULL;
}

/* Rehash into n buckets (a power of two); on failure nothing changes. */
static void map_resize(pt_map *m, size_t n)
{
    pt_obj **nb;

    if (n == 0 || n > SIZE_MAX / sizeof(*nb))
        return;
    nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i <= m->mask; i++) {
        pt_obj *o = m->buckets[i];

        while (o != NULL) {
            pt_obj *next = o->map_next;

            o->map_next = nb[o->hash & (n - 1)];
            nb[o->hash & (n - 1)] = o;
            o = next;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->mask = n - 1;
}

void pt__map_insert(pt_map *m, pt_obj *obj)
{
    pt_obj **b;

    if (m->count + 1 > (m->mask + 1) / 4 * 3)
        map_resize(m, (m->mask + 1) * 2);
    b = &m->buckets[obj->hash & m->mask];
    obj->map_next = *b;
    *b = obj;
    obj->in_map = 1;
    m->count++;
}

void pt__map_remove(pt_map *m, pt_obj *obj)
{
    pt_obj **p = &m->buckets[obj->hash & m->mask];

    while (*p != NULL && *p != obj)
        p = &(*p)->map_next;
    if (*p == NULL)
        return;
    *p = obj->map_next;
    obj->map_next = NULL;
    obj->in_map = 0;
    m->count--;
}

void pt__map_fit(pt_map *m)
{
    size_t n = m->mask + 1;

    while (n > PT_MAP_INITIAL && m->count < n / 4)
        n /= 2;
    if (n < m->mask + 1)
        map_resize(m, n);
}
