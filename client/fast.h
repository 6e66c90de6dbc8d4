/*
 * fast.h - an object's operations through its shared word
 * (proto/fastword.h), tried before a request. Each answers PT_FAST_SLOW when
 * the request must be sent after all: no word, another session generation,
 * a fork since, a contended object, or arguments the daemon must judge.
 */
#ifndef PT_CLIENT_FAST_H
#define PT_CLIENT_FAST_H

#include "fastword.h"
#include "session.h"

/* Keep o's cell from an OPEN answer of session generation gen. */
void pt__fast_attach(pt_object *o, uint32_t gen, const pt__reply *rep);

/* PT_FAST_OK (acquired; *token set when not NULL), PT_FAST_NO (not
 * acquired: a try of a held object) or PT_FAST_SLOW. A Lock acquire that
 * must wait in the daemon gets watch->cell set when it may watch the word
 * meanwhile (else NULL). */
int pt__fast_acquire(pt_object *o, int blocking, double timeout, uint64_t *token, pt__watch *watch);
int pt__fast_release(pt_object *o, uint32_t count);
/* 1 or 0, or PT_FAST_SLOW. */
int pt__fast_locked(pt_object *o);
int pt__fast_is_owned(pt_object *o);
int pt__fast_is_set(pt_object *o);
int pt__fast_value(pt_object *o, int64_t *value);

#endif /* PT_CLIENT_FAST_H */
