/* cms_sched.h -- the scheduler of a fan-out or a send_all, without I/O.
 *
 * It holds the calls of one run and their states, and decides what happens
 * next: which call may start now (pacing through a cms_rate, receiver pacing
 * per recipient group, backoff after a failure), how long to wait otherwise,
 * and, once the driver tells it how an attempt ended, whether the call is
 * settled or goes again (to the next endpoint after a connect failure or an
 * HTTP 502; marked as a resend after an ambiguous failure in a fan-out; after
 * the penalty following a 416).  It never reads a clock, a socket or a random
 * source of its own: time and randomness are arguments, so any event loop can
 * drive it (the libcurl multi driver of send_all/fanout, client:plan for Lua
 * event loops) and spec/c/sched_test.c runs it on a fake clock.  No Lua here.
 *
 * A driver's loop:
 *   cms_sched_next(s, now, &st)
 *     START   send call st.call now (to endpoint st.endpoint, every message
 *             marked resendFlag = 1 if st.resend); its rate token is taken
 *     EXPIRE  the deadline passed: call st.call is settled with a deadline
 *             error (abort its transfer if st.in_flight; st.sent says whether
 *             an attempt may have reached the service)
 *     WAIT    ask again after st.wait_ms, or sooner when an attempt ends
 *     IDLE    every call is settled
 *   A 431 on a later attempt means an earlier one was processed and its answer
 *   lost: the call goes again at once as a resend (resendFlag = 1, so the
 *   service de-duplicates by msgId) with a new RequestId (st.new_rid).
 *   cms_sched_done(s, call, outcome, now) when an attempt ends: 1 = the call
 *     is settled (keep its result), 0 = it goes again (drop the result),
 *     -1 = the call was settled already (a late answer after the deadline). */
#ifndef CMS_SCHED_H
#define CMS_SCHED_H
#include <stddef.h>
#include "cms_rate.h"

/* without a deadline, a call answered 416 more often than this is settled
 * with that answer */
#define CMS_SCHED_MAX_416_WAITS 20
/* how far past the first unstarted call the scheduler looks for one to start */
#define CMS_SCHED_LOOKAHEAD 64
/* 431 answers (the RequestId was processed already) a call learns from by
 * going again with a new RequestId as a resend, at most */
#define CMS_SCHED_MAX_REPEATS 3
/* the cap of the doubling backoff */
#define CMS_SCHED_BACKOFF_CAP_MS 2000

/* a uniform random integer in [0, below) */
typedef unsigned long (*cms_sched_rand)(void *ud, unsigned long below);

typedef struct cms_sched_opts {
  int concurrency;       /* attempts in flight at most, >= 1 */
  int retries;           /* further attempts of one call, failover and resends together */
  int resend_ambiguous;  /* fan-out: an ambiguous failure goes again as a resend */
  int n_endpoints;       /* >= 1 */
  double receiver_rate;  /* messages per second per recipient group; 0 = off */
  long backoff_ms;       /* before the first resend, doubling; 0 = none */
  long long deadline_ms; /* absolute time of the deadline; 0 = none */
  long attempt_ms;       /* an attempt's timeout: when its end is due at the latest */
} cms_sched_opts;

typedef enum cms_sched_what {
  CMS_SCHED_START,
  CMS_SCHED_EXPIRE,
  CMS_SCHED_WAIT,
  CMS_SCHED_IDLE
} cms_sched_what;

typedef struct cms_sched_step {
  cms_sched_what what;
  int call;      /* START, EXPIRE: 1..n */
  int endpoint;  /* START: index of the endpoint to send to */
  int resend;    /* START: mark every message of the call resendFlag = 1 */
  int attempt;   /* START: 0 for the call's first attempt */
  int new_rid;   /* START: send with a new RequestId (after a 431) */
  int in_flight; /* EXPIRE: an attempt of the call is in flight: abort it */
  int sent;      /* EXPIRE: an attempt may have reached the service */
  long wait_ms;  /* WAIT: >= 1 */
} cms_sched_step;

/* how an attempt ended, as the driver classifies its answer */
typedef enum cms_sched_outcome {
  CMS_SCHED_FINAL,     /* a success, a definite rejection, or a failure no resend helps */
  CMS_SCHED_CONNECT,   /* never reached the service: safe to send elsewhere */
  CMS_SCHED_GATEWAY,   /* a gateway answered HTTP 502: nothing was processed */
  CMS_SCHED_AMBIGUOUS, /* may have reached the service; another try may help */
  CMS_SCHED_RATE,      /* the service answered 416 */
  CMS_SCHED_REPEATED   /* the service answered 431: an attempt with this RequestId was processed */
} cms_sched_outcome;

enum { CMS_CALL_PENDING, CMS_CALL_FLIGHT, CMS_CALL_DONE };

typedef struct cms_sched_call {
  int state, attempts, waits, ep, resend, prev, nmsgs;
  int started;  /* an attempt began once */
  int queued;   /* back in the queue after an attempt */
  int sent;     /* an attempt may have reached the service */
  int repeats;  /* 431 answers learnt from */
  int new_rid;  /* the next attempt takes a new RequestId */
  int fl_prev, fl_next; /* the list of calls in flight */
  long long not_before, last_start;
} cms_sched_call;

typedef struct cms_sched {
  cms_sched_opts o;
  cms_rate *rate;        /* NULL: no pacing */
  cms_sched_rand rand;
  void *rand_ud;
  int n, done, inflight, cursor, waiting, expire_cursor;
  int flight;            /* first call of the in-flight list, 0 = none */
  cms_sched_call *calls; /* 1..n */
  int *last;             /* 1..n: the last call set so far per recipient group */
} cms_sched;

/* bytes for a scheduler of n calls, cms_sched included (the caller allocates) */
size_t cms_sched_size(int n);
/* s points at cms_sched_size(n) bytes; every call starts pending */
void cms_sched_init(cms_sched *s, int n, const cms_sched_opts *o, cms_rate *rate,
                    cms_sched_rand rand, void *rand_ud);
/* call i (given in increasing order) carries n_msgs messages to recipient
 * group `group` (>= 1; 0 = no group): it starts only once the group's
 * previous call is settled, and no sooner than that call's messages divided
 * by receiver_rate after its last attempt began */
void cms_sched_group(cms_sched *s, int i, int group, int n_msgs);
/* settles a call that has no attempt in flight (invalid before it started) */
void cms_sched_settle(cms_sched *s, int i);
void cms_sched_next(cms_sched *s, long long now, cms_sched_step *st);
int cms_sched_done(cms_sched *s, int i, cms_sched_outcome out, long long now);
/* the delay before further attempt `attempt` (>= 1): half the doubled
 * backoff plus up to the other half at random */
long cms_sched_backoff(cms_sched *s, int attempt);

#endif
