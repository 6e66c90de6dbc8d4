/*
 * layout.c - prints, as JSON, the size and field offsets of the inspection
 * structures the Python binding reads with ctypes (pythread/_lib.py), so
 * that its test can check that its copy still matches the header.
 */
#include <stddef.h>
#include <stdio.h>

#include <pythread.h>

#define FIELD(type, f) printf(", \"%s\": %zu", #f, offsetof(type, f))

static void object_layout(void)
{
    printf("\"pt_inspect_object\": {\"sizeof\": %zu", sizeof(pt_inspect_object));
    FIELD(pt_inspect_object, name);
    FIELD(pt_inspect_object, kind);
    FIELD(pt_inspect_object, mode);
    FIELD(pt_inspect_object, uid);
    FIELD(pt_inspect_object, gid);
    FIELD(pt_inspect_object, transient);
    FIELD(pt_inspect_object, unlinked);
    FIELD(pt_inspect_object, refs);
    FIELD(pt_inspect_object, waiters);
    FIELD(pt_inspect_object, locked);
    FIELD(pt_inspect_object, value);
    FIELD(pt_inspect_object, initial);
    FIELD(pt_inspect_object, owned);
    FIELD(pt_inspect_object, is_set);
    FIELD(pt_inspect_object, parties);
    FIELD(pt_inspect_object, n_waiting);
    FIELD(pt_inspect_object, broken);
    FIELD(pt_inspect_object, timeout);
    FIELD(pt_inspect_object, token);
    FIELD(pt_inspect_object, cond_lock);
    FIELD(pt_inspect_object, acquires);
    FIELD(pt_inspect_object, contended);
    FIELD(pt_inspect_object, handed);
    FIELD(pt_inspect_object, timeouts);
    FIELD(pt_inspect_object, longest_wait);
    FIELD(pt_inspect_object, longest_hold);
    FIELD(pt_inspect_object, hidden);
    FIELD(pt_inspect_object, restart);
    FIELD(pt_inspect_object, deadlock);
    printf("}");
}

static void party_layout(void)
{
    printf("\"pt_inspect_party\": {\"sizeof\": %zu", sizeof(pt_inspect_party));
    FIELD(pt_inspect_party, session);
    FIELD(pt_inspect_party, pid);
    FIELD(pt_inspect_party, uid);
    FIELD(pt_inspect_party, thread);
    FIELD(pt_inspect_party, process);
    FIELD(pt_inspect_party, seconds);
    FIELD(pt_inspect_party, count);
    FIELD(pt_inspect_party, what);
    FIELD(pt_inspect_party, deadlock);
    FIELD(pt_inspect_party, waits);
    FIELD(pt_inspect_party, waits_kind);
    FIELD(pt_inspect_party, waits_owner);
    FIELD(pt_inspect_party, connection_kept);
    FIELD(pt_inspect_party, host);
    printf("}");
}

static void detail_layout(void)
{
    printf("\"pt_inspect_detail\": {\"sizeof\": %zu", sizeof(pt_inspect_detail));
    FIELD(pt_inspect_detail, object);
    FIELD(pt_inspect_detail, detail_denied);
    FIELD(pt_inspect_detail, n_holders);
    FIELD(pt_inspect_detail, holders);
    FIELD(pt_inspect_detail, n_waiters);
    FIELD(pt_inspect_detail, waiters);
    FIELD(pt_inspect_detail, more_waiters);
    printf("}");
}

int main(void)
{
    printf("{");
    object_layout();
    printf(", ");
    party_layout();
    printf(", ");
    detail_layout();
    printf("}\n");
    return 0;
}
