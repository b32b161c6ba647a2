/* cms_store_redis.h -- "redis://[[user]:password@]host[:port][/db]": one rate
 * budget for every client of an appkey on any number of hosts, kept in Redis.
 *
 * Each draw is one script call (EVALSHA, EVAL when the server answers
 * NOSCRIPT) that runs the GCRA of cms_store.h on Redis's own clock (TIME), so
 * hosts need not agree on the time.  Keys, all with the appkey as hash tag
 * (one Redis Cluster slot):
 *   commsease:{<appkey>}:tat      the theoretical arrival time (µs), expiring
 *                                 a second after it passes
 *   commsease:{<appkey>}:penalty  present while a 416 penalty lasts (PX)
 *   commsease:{<appkey>}:peers    clients that drew in the last 10 s (a sorted
 *                                 set), whose count sets the fallback share
 * The secret is never sent.  hiredis only formats commands and parses answers:
 * the socket is this file's own (non-blocking, poll with a deadline, send
 * with MSG_NOSIGNAL so a closed connection cannot raise SIGPIPE in the host
 * process).  Connecting and each command are bounded by timeout_ms (default
 * CMS_STORE_TIMEOUT_MS); the host name is resolved with getaddrinfo, which
 * is not bounded: give an address or a name from /etc/hosts. */
#ifndef CMS_STORE_REDIS_H
#define CMS_STORE_REDIS_H
#include <stddef.h>
#include "cms_rate.h"
#include "cms_store.h"

/* rest: the URL after "redis://" */
cms_rate *cms_store_redis_open(const char *rest, const cms_store_opts *o, char *err,
                               size_t errlen);

/* the Lua source of the script and its SHA1 (for tests and docs) */
extern const char cms_store_redis_script[];

#endif
