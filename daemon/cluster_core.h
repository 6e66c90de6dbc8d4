/*
 * cluster_core.h - the cluster's objects (pythreadd --etcd): a copy of the
 * deterministic core that every daemon of a cluster keeps, fed the same
 * entries in the same order.
 *
 * An entry is a journal record (proto/journal.proto) that names one of its
 * host's connections instead of a core session: SESSION_NEW, CALL,
 * SESSION_END or EXPIRE. The host that appends an entry encodes it here;
 * every host, the appender too, applies it when the log delivers it, in the
 * log's order, so every copy makes the same grants, timeouts and tokens.
 * The answers to this host's connections come out through the answer
 * callback; those to other hosts' are dropped (their own daemon gives
 * them). No I/O and no clock: the daemon carries the entries to and from
 * the log (doc/cluster.md) and the answers to its connections.
 */
#ifndef PT_CLUSTER_CORE_H
#define PT_CLUSTER_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "pythread.pb-c.h"

typedef struct pt_ccore pt_ccore;

/* The longest host name: it is part of the log's keys. */
#define PT_CCORE_HOST_MAX 64

/* A result of the core for connection conn of this host. */
typedef void (*pt_ccore_answer_fn)(void *ctx, uint64_t conn, const pt_result *res);
/* Another host's entry waits for this host to hand back the lock with this
 * serial: append pt_ccore_enc_hand_back's entry. */
typedef void (*pt_ccore_wanted_fn)(void *ctx, uint64_t serial);

/* Calls answered ahead of the log at most at once: the tokens they may
 * have given, that the log never saw, stay below a lost owner's jump. */
#define PT_CCORE_AHEAD_MAX 1024u

/* A copy for host self (its own entries' answers come out); NULL without
 * memory or with a host name that is empty or too long. */
pt_ccore *pt_ccore_new(const char *self, pt_ccore_answer_fn answer, void *ctx);
void pt_ccore_free(pt_ccore *cc);

/* Entries, as the host appending them encodes them: malloc'd bytes in
 * *out (*len of them); -1 without memory. now is nanoseconds of the
 * appender's wall clock (CLOCK_REALTIME): the hosts of a cluster share no
 * other clock. */
int pt_ccore_enc_session_new(uint64_t conn, const pt_peer *peer, uint8_t **out, size_t *len);
int pt_ccore_enc_session_end(uint64_t conn, uint64_t now, uint8_t **out, size_t *len);
int pt_ccore_enc_call(uint64_t conn, const Pythread__Request *req, uint64_t now, uint8_t **out,
                      size_t *len);
int pt_ccore_enc_expire(uint64_t now, uint8_t **out, size_t *len);
int pt_ccore_enc_hand_back(uint64_t serial, uint8_t **out, size_t *len);

/* Owned locks (doc/cluster.md, "Owned locks"). A Lock or RLock whose last
 * call was a host's, with no other host's waiter, is that host's: every
 * copy lets its calls through and holds back the other hosts' sessions
 * that touch it until the owner appends a hand-back. So the owner alone
 * decides the lock until then, and can answer a call that neither waits
 * nor hands the lock on at once, ahead of the log: the copies that apply
 * it at its place come to the same answer and token. */
void pt_ccore_set_wanted(pt_ccore *cc, pt_ccore_wanted_fn wanted);
/* 1 when conn's call req can be answered ahead here. */
int pt_ccore_ahead_ok(const pt_ccore *cc, uint64_t conn, const Pythread__Request *req);
/* The entry of such a call, id this host's number for it (increasing). */
int pt_ccore_enc_ahead(const pt_ccore *cc, uint64_t conn, const Pythread__Request *req, uint64_t id,
                       uint8_t **out, size_t *len);
/* Applies that call here at once (its answer comes out now), once its
 * entry has been appended, with nothing applied between the two; its place
 * in the log is then passed over here. */
void pt_ccore_apply_ahead(pt_ccore *cc, uint64_t conn, const Pythread__Request *req, uint64_t id);
/* Calls answered ahead that the log has not brought back yet. */
size_t pt_ccore_ahead(const pt_ccore *cc);
/* wanted again for each lock of this host another host waits for (after
 * a hand-back could not be appended). */
void pt_ccore_wanted_again(pt_ccore *cc);
/* The host owning the lock with this serial, or NULL. */
const char *pt_ccore_owner(const pt_ccore *cc, uint64_t serial);
/* The locks host owns now. */
size_t pt_ccore_owned(const pt_ccore *cc, const char *host);

/* Apply host's entry, in the log's order. 0; or -1 with err saying why it
 * was ignored (not a record, a kind no host appends, a session that does
 * not exist): nothing changed, on any copy alike. */
int pt_ccore_apply(pt_ccore *cc, const char *host, const uint8_t *p, size_t len, char *err,
                   size_t errlen);
/* host is gone (its lease expired, or it came back as a new member): its
 * sessions end there, in the log's order, at the time of the last entry. */
void pt_ccore_host_gone(pt_ccore *cc, const char *host);

/* The copy as bytes (a ClusterCopy, proto/journal.proto): the core as a
 * journal snapshot, and beside it each host's sessions oldest first with
 * their connections, the entries' time, whether the tokens' base was
 * taken, the owned locks and the held sessions' entries. Taken between
 * entries, with no call answered ahead (the copy is then the log's).
 * Malloc'd into *out (*len bytes); -1 without memory or with calls ahead. */
int pt_ccore_snapshot(const pt_ccore *cc, uint8_t **out, size_t *len);
/* A copy for host self rebuilt from pt_ccore_snapshot's bytes, of any
 * host's copy: fed the entries that followed the snapshot, it gives the
 * answers, handles, tokens and timeouts of a copy that applied every entry.
 * NULL with err saying why (bytes that are not such a snapshot, or do not
 * add up; no memory). */
pt_ccore *pt_ccore_restore(const char *self, pt_ccore_answer_fn answer, void *ctx, const uint8_t *p,
                           size_t len, char *err, size_t errlen);

/* 1 when connection conn of this host has a session in the copy (its
 * SESSION_NEW was applied, its SESSION_END not yet). */
int pt_ccore_has_session(const pt_ccore *cc, uint64_t conn);
/* Sessions in the copy, of every host. */
size_t pt_ccore_sessions(const pt_ccore *cc);
/* The earliest deadline of a wait, in the entries' time, or
 * PT_DEADLINE_NONE. */
uint64_t pt_ccore_next_deadline(const pt_ccore *cc);
/* The entries' time: the latest now applied (they are clamped to it, so
 * the copy's time never goes back whatever the hosts' clocks say). */
uint64_t pt_ccore_now(const pt_ccore *cc);
/* The core, for inspection. */
pt_core *pt_ccore_core(pt_ccore *cc);
/* The host a session of the copy belongs to ("" for none). */
const char *pt_ccore_session_host(const pt_session *s);

#endif /* PT_CLUSTER_CORE_H */
