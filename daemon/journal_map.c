/*
 * journal_map.c - the journal file appended through a shared mapping.
 *
 * An append is a memcpy into the page cache, not a write(2): on a virtual
 * machine a system call on every pass of the loop was most of what the
 * journal cost a request. What is copied is in the file as soon as the copy
 * is done, whatever then happens to the process; the kernel writes it out
 * in the background, and with --sync each pass of the loop makes what it
 * appended durable with msync (pt__jmap_sync).
 *
 * The file is allocated ahead of the records in chunks (fallocate), so a
 * copy never meets a page the file system has no room for (that would be
 * SIGBUS): running out of space shows as a failed allocation, which is
 * logged as a failed write was. Past the records the file reads as zeros,
 * and a zero length ends a replay (journal.c). A batch is copied with its
 * first length last, so a crash in the middle of a copy leaves it unseen:
 * its answers had not been written yet. A clean stop cuts the zeros off.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon.h"
#include "journal_int.h"
#include "state_int.h"

/* Allocated ahead of the records: a fallocate and a mremap per this much
 * journal, at most this much disk held beyond it. */
#define CHUNK ((size_t)1 << 20)

static size_t page_size(void)
{
    long n = sysconf(_SC_PAGESIZE);

    return n > 0 ? (size_t)n : 4096;
}

/* Room for the file to hold at least need bytes, mapped. The callers ask
 * for a length's worth past the records: the zeros that end them. */
static int reserve(pt_statedir *s, size_t need)
{
    size_t size = (need / CHUNK + 1) * CHUNK;
    void *base;
    int rc;

    if (need <= s->mapped)
        return 0;
    rc = posix_fallocate(s->fd, 0, (off_t)size);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    if (s->base == NULL)
        base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    else
        base = mremap(s->base, s->mapped, size, MREMAP_MAYMOVE);
    if (base == MAP_FAILED)
        return -1;
    s->base = base;
    s->mapped = size;
    return 0;
}

int pt__jmap_attach(pt_statedir *s)
{
    /* what lies past the records (zeros, an unfinished batch) goes, so
     * the next append follows the last record and zeros follow it */
    if (ftruncate(s->fd, (off_t)s->appended) < 0)
        return -1;
    return reserve(s, s->appended + JOURNAL_HEADER);
}

void pt__jmap_detach(pt_statedir *s, int cut)
{
    if (s->base != NULL)
        munmap(s->base, s->mapped);
    s->base = NULL;
    s->mapped = 0;
    if (cut && s->fd >= 0)
        (void)!ftruncate(s->fd, (off_t)s->appended);
}

int pt__jmap_sync(const pt_statedir *s, size_t from, size_t to)
{
    size_t start = from - from % page_size();

    return msync(s->base + start, to - start, MS_SYNC);
}

int pt__jmap_append(pt_statedir *s, const uint8_t *p, size_t len)
{
    uint8_t *at;

    if (len < JOURNAL_HEADER || reserve(s, s->appended + len + JOURNAL_HEADER) < 0)
        return -1;
    at = s->base + s->appended;
    memcpy(at + JOURNAL_HEADER, p + JOURNAL_HEADER, len - JOURNAL_HEADER);
    /* the first length last: until it is there the batch ends the journal */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    memcpy(at, p, JOURNAL_HEADER);
    return 0;
}
