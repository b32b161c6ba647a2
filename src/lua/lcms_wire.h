/* lcms_wire.h -- the binding's webhook check, the single directed send, any
 * signed call and the client's metrics (engineer wire's files). */
#ifndef LCMS_WIRE_H
#define LCMS_WIRE_H
#include "lcms.h"

/* commsease.verify_webhook{ secret=, headers=, body= [, max_age=] [, now=] } */
int lcms_verify_webhook(lua_State *L);

/* seconds of a monotonic clock, to the microsecond */
double lcms_clock_s(void);

/* one attempt as the stats and the on_attempt hook see it */
typedef struct lcms_attempt {
  const char *path;          /* the API path, "/chatroom/..." */
  const char *endpoint;      /* the base URL it went to */
  const char *request_id;
  cms_http_outcome out;
  const cms_http_xfer *x;
  long long code;            /* the answer's API code, 0 = none */
  double seconds;
  int attempt;               /* 1 for a call's first */
  int resend;                /* its messages went with resendFlag = 1 */
} lcms_attempt;
/* counts an attempt; calls the hook at stack index `hook` (0 = none) under
 * lua_pcall, an error in it counted and dropped */
void lcms_note_attempt(lua_State *L, lcms_client *c, int hook, const lcms_attempt *a);
/* counts a call settled after `seconds` since its first attempt began */
void lcms_note_call(lcms_client *c, const char *path, double seconds);
/* a call of send, send_one, call or send_plan settled with API code `code` (0 =
 * none), its first attempt begun at t_call (lcms_clock_s): after a 416 every call
 * of the budget waits the penalty, and the call is counted */
void lcms_settle_call(lcms_client *c, const char *path, long long code, double t_call);
/* pushes opts.on_attempt of the client userdata at `self`, or nil */
void lcms_push_hook(lua_State *L, int self);

/* one call over the easy handle (send, send_one, call) */
typedef struct lcms_callspec {
  const char *path;          /* NULL: the batch path (the client's urls) */
  int shape;                 /* LCMS_ANSWER_* */
  int msgids;                /* batch: stack index of the msgIds list */
  const cms_buf *body;
  /* the 431 path: encode the body again as a resend (resendFlag = 1, the same
   * msgIds); 0, or -1 with nil, err pushed.  NULL: a 431 is the answer */
  int (*resend)(lua_State *L, lcms_client *c, void *ud);
  void *ud;
} lcms_callspec;
/* pushes res, or nil, err; returns the number of values */
int lcms_easy_call(lua_State *L, lcms_client *c, const lcms_callspec *k);
/* pushes a copy of the params at `params`, its messages copied and marked
 * resendFlag = 1 with the msgIds of the list at `msgids` */
void lcms_push_resend_copy(lua_State *L, int params, int msgids);
/* that copy encoded into form (the call's next body): 0, or the number of values
 * of nil, err pushed when it does not encode */
int lcms_encode_resend(lua_State *L, int params, int msgids, cms_buf *form);
#define LCMS_MAX_REPEATS 3 /* 431 answers learnt from, per call */
int lcms_send(lua_State *L);
int lcms_send_one(lua_State *L);
int lcms_call(lua_State *L);

/* commsease.prometheus: pushes the function */
void lcms_push_prometheus(lua_State *L);
struct cms_stats;
/* client:stats(): pushes the counters as a table */
void lcms_push_stats(lua_State *L, const struct cms_stats *s);

#endif
