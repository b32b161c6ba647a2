/* cms_rate.h -- one rate budget: may a call start now, and the 416 penalty.
 *
 * The fan-out scheduler and the drivers see only this interface.  A budget is
 * the client's own (cms_pace behind it: no store), or shared with every
 * client of the appkey through a store ("shm:/path" maps one file on the
 * host; "redis://host:port/db" asks a Redis script).  Times are
 * CLOCK_MONOTONIC milliseconds (cms_now_ms), the same in every process of a
 * host; a store that spans hosts uses its own clock.  No Lua here. */
#ifndef CMS_RATE_H
#define CMS_RATE_H

typedef struct cms_rate cms_rate;

typedef struct cms_rate_ops {
  /* 0: a call may start now and its share of the budget is taken;
   * > 0: milliseconds to wait before asking again (a penalty included) */
  long (*take)(cms_rate *r, long long now_ms);
  /* a 416 answer arrived at now_ms: every client of the budget pauses */
  void (*penalty)(cms_rate *r, long long now_ms);
  /* "local" (no store), "ok", or "unreachable" (falling back to local pacing) */
  const char *(*state)(const cms_rate *r);
  /* frees what the budget holds; idempotent */
  void (*close)(cms_rate *r);
} cms_rate_ops;

struct cms_rate {
  const cms_rate_ops *ops;
  unsigned long fallbacks; /* times a store could not be reached and local pacing served */
};

#endif
