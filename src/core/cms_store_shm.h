/* cms_store_shm.h -- "shm:/path/file": one rate budget for every process of a
 * host, in a file they all map.
 *
 * The file (4096 bytes, created 0600 if absent) holds a header -- magic,
 * format version, size, a hash of the appkey (never the secret) and a hash
 * of the kernel's boot id -- and three 64-bit words changed only by atomic
 * compare-and-swap: the GCRA's theoretical arrival time, the time a shared
 * 416 penalty ends (both CLOCK_MONOTONIC nanoseconds) and counters.  No lock:
 * a process killed at any instant leaves nothing held.  One file serves one
 * appkey; a client of another appkey is refused (give each appkey its file).
 *
 * A file that is not a rate store, of another format or size (truncated), or
 * of another appkey is an error from cms_store_shm_open.  After opening,
 * every draw first checks (fstat) that the file still has its size, so a
 * file truncated while mapped is seen before it is touched: the budget turns
 * "unreachable" and falls back to local pacing, and the path is opened
 * again every second (a file deleted and created anew is followed the same
 * way).  A truncation landing between that check and the atomic that follows
 * (a few nanoseconds) would still raise SIGBUS: only the file's owner can
 * truncate it, and nothing of commsease ever does.  Times in a file from an
 * earlier boot are discarded (the boot id differs). */
#ifndef CMS_STORE_SHM_H
#define CMS_STORE_SHM_H
#include <stddef.h>
#include "cms_rate.h"
#include "cms_store.h"

#define CMS_SHM_SIZE 4096
#define CMS_SHM_VERSION 1

/* path: an absolute file name (the part after "shm:") */
cms_rate *cms_store_shm_open(const char *path, const cms_store_opts *o, char *err,
                             size_t errlen);
/* the file's counters: calls drawn and penalties set (by every client); -1 if
 * r is not a usable shm store */
int cms_store_shm_counts(cms_rate *r, unsigned long long *draws, unsigned long long *penalties);

#endif
