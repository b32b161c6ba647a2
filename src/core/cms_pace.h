/* cms_pace.h -- a client's pacing: a token bucket for `rate` calls per second,
 * and the service's rate-limit penalty (after code 416 every call waits until
 * the penalty is over).  No Lua here.
 *
 * The service counts calls in a sliding one-second window, so the bucket is
 * sized to keep every one-second window at or under `rate`: it holds a burst
 * of rate/20 calls (at least 1) and refills at rate - burst + 0.99 - 1% per
 * second, so a window sees at most floor(burst + refill) <= rate calls, the
 * 1% leaving room for network jitter.  For 100 calls/s: bursts of 5, 94.99
 * calls/s sustained; for 1 call/s: one call every 1.02 s. */
#ifndef CMS_PACE_H
#define CMS_PACE_H
#include "cms_rate.h"

typedef struct cms_pace {
  double rate;            /* calls per second; 0 = no pacing */
  double burst, refill, tokens;
  long long last_ms;
  long long penalty_ms;   /* length of a penalty */
  long long penalty_until;
} cms_pace;

long long cms_now_ms(void);                       /* CLOCK_MONOTONIC, ms */
void cms_sleep_ms(long ms);
void cms_pace_init(cms_pace *p, double rate, double penalty_s);
/* the same on a given clock (tests) */
void cms_pace_init_at(cms_pace *p, double rate, double penalty_s, long long now);
/* 0: a call may go now (its token is taken); > 0: ms to wait first */
long cms_pace_take(cms_pace *p, long long now);
/* a 416 answer arrived at now: every call waits penalty_ms from now */
void cms_pace_penalty(cms_pace *p, long long now);


/* the local budget: a cms_rate over one cms_pace, the client's own (no store);
 * state() is "local", fallbacks stay 0 */
typedef struct cms_rate_local {
  cms_rate base;
  cms_pace pace;
} cms_rate_local;

cms_rate *cms_rate_local_init(cms_rate_local *r, double rate, double penalty_s, long long now);

#endif
