/* lcms.h -- private declarations of the Lua binding (src/lua/).
 * Everything Lua-facing lives in src/lua; src/core knows nothing of Lua. */
#ifndef LCMS_H
#define LCMS_H
#include "lcms_compat.h"
#include <curl/curl.h>
#include "cms_buf.h"
#include "cms_http.h"
#include "cms_pace.h"
#include "cms_rate.h"
#include "cms_sched.h"
#include "cms_rules.h"
#include "cms_sign.h"
#include "cms_stats.h"

#define LCMS_VERSION "0.1.0"
#define LCMS_CLIENT_MT "commsease.client"
#define LCMS_MAX_ENDPOINTS 8
#define LCMS_MAX_CONCURRENCY 64

typedef struct lcms_pool lcms_pool;

typedef struct lcms_client {
  CURL *easy;                  /* NULL once closed */
  char *appkey;
  char *secret;                /* malloc'ed, wiped on close; never pushed to Lua */
  size_t secret_len;
  char *endpoints[LCMS_MAX_ENDPOINTS]; /* base URLs, no trailing slash */
  char *urls[LCMS_MAX_ENDPOINTS];      /* base .. CMS_API_PATH */
  int n_endpoints;
  int retries;
  cms_http_opts http;
  char *ca_file, *proxy;
  cms_buf form;                /* scratch: the form body of the current send */
  cms_http_xfer xfer;          /* scratch: the current transfer */
  struct curl_slist *headers;  /* the current attempt's headers */
  cms_rate_local local_rate;   /* the client's own budget (no store) */
  cms_rate *rate;              /* pacing and the 416 penalty, for every call */
  cms_rand rand;               /* Nonces, RequestIds, jitter */
  cms_sha1 sha1;               /* the CheckSum's kept SHA1 context */
  lcms_pool *pool;             /* send_all/fanout's multi handle and slots; on first use */
  int running;                 /* inside send_all/fanout (on_progress may call back) */
  cms_stats stats;             /* client:stats(): counts only, nothing secret */
  cms_buf url;                 /* scratch: base URL .. path (send_one, call) */
  cms_buf single;              /* scratch: the form of send_one */
  int has_hook;                /* opts.on_attempt is set (kept in the userdata's user value) */
  int in_hook;                 /* on_attempt is running: the client's own calls raise */
} lcms_client;

/* registry keys (addresses only, no state) */
extern const char lcms_key_encode, lcms_key_decode, lcms_key_errmt;

/* errors: push nil, err and return 2 */
typedef struct lcms_errinfo {
  const char *kind;      /* invalid transport http api response */
  long long code;        /* 0 = none */
  const char *message;
  const char *field;     /* NULL unless invalid */
  int retryable;
  int sent;              /* the request may have reached the service */
  const char *request_id;
  const char *endpoint;
} lcms_errinfo;
int lcms_push_error(lua_State *L, const lcms_errinfo *ei);
int lcms_push_invalid(lua_State *L, const cms_verr *e);
void lcms_open_errors(lua_State *L);

/* JSON through the module's private lua-cjson instance */
void lcms_open_json(lua_State *L);
/* encodes the value at idx; pushes the text, or returns -1 with msg pushed */
int lcms_json_encode(lua_State *L, int idx);
/* decodes s; pushes the value, or returns -1 with msg pushed */
int lcms_json_decode(lua_State *L, const char *s, size_t n);

/* params -> form body (form NULL: validate only).  On success the form is in form, the msgIds list is
 * pushed (one value) and 0 returned; on a validation failure e is filled, the
 * stack is as on entry and -1 returned. */
int lcms_encode_params(lua_State *L, int params, cms_buf *form, cms_verr *e);
/* at luaopen: keeps OpenResty LuaJIT's table.nkeys, where there is one, for
 * lcms_encode_params's list check */
void lcms_open_encode(lua_State *L);

/* parse an answer; pushes res or nil, err; returns the number of values */
int lcms_parse_answer(lua_State *L, long status, const char *body, size_t len,
                      int msgids, const char *request_id, const char *endpoint,
                      long long *api_code);
int lcms_parse(lua_State *L);
/* the shapes of an answer with code 200: the batch's success/fail lists, the
 * single send's {"code":200,"desc":{message}} (res = the message), or any
 * other endpoint's JSON (res = the decoded answer) */
enum { LCMS_ANSWER_BATCH, LCMS_ANSWER_SINGLE, LCMS_ANSWER_ANY };
int lcms_parse_answer_shape(lua_State *L, int shape, long status, const char *body, size_t len,
                            const char *request_id, const char *endpoint, long long *api_code);

/* message builders */
void lcms_open_builders(lua_State *L);
/* the rules table exposed as commsease.rules */
void lcms_push_rules(lua_State *L);
/* the client class */
void lcms_open_client(lua_State *L);
int lcms_new(lua_State *L);
lcms_client *lcms_check_client(lua_State *L);

/* --- request building, shared by every path (lcms_request.c) --- */
typedef struct lcms_sig {
  char nonce[CMS_NONCE_LEN + 1];
  char curtime[24];
  char checksum[41];
} lcms_sig;
/* a fresh Nonce, CurTime and CheckSum; -1 on a libcrypto failure */
int lcms_sign(lcms_client *c, lcms_sig *s);
/* fresh Nonce/CurTime/CheckSum and the header list for one attempt */
int lcms_build_headers(lcms_client *c, struct curl_slist **list, const char *rid);
/* The field names of a prepared request, a plan's job and their headers,
 * interned once per Lua state in a list indexed by lcms_key (an upvalue of the
 * client's methods, kept by each plan): lua_setfield would hash and look up
 * each name again on every call. */
typedef enum lcms_key {
  LCMS_K_ID = 1, LCMS_K_METHOD, LCMS_K_URL, LCMS_K_HEADERS, LCMS_K_BODY, LCMS_K_TIMEOUT,
  LCMS_K_MSGIDS, LCMS_K_REQUEST_ID, LCMS_K_APPKEY, LCMS_K_NONCE, LCMS_K_CURTIME,
  LCMS_K_CHECKSUM, LCMS_K_CONTENT_TYPE, LCMS_K_REQUESTID, LCMS_K_USER_AGENT, LCMS_K_POST,
  LCMS_K_CT_VALUE, LCMS_K_UA_VALUE, LCMS_K_COUNT
} lcms_key;
void lcms_push_keys(lua_State *L);
/* t[name of k] = the value on top (popped); t at index t (absolute), keys at keys */
void lcms_set(lua_State *L, int keys, int t, lcms_key k);
/* {method, url, headers, body} of a request signed with s to endpoint ep, with room
 * for `more` fields besides; returns its index (keys: the index of the list of names) */
int lcms_push_request(lua_State *L, int keys, const lcms_client *c, int ep, const lcms_sig *s,
                      const char *rid, const char *body, size_t len, int more);
int lcms_push_transfer_error(lua_State *L, cms_http_outcome out, const cms_http_xfer *x,
                             const char *rid, const char *endpoint);
/* a local failure (memory, no random bytes): nil, err of kind transport */
int lcms_push_local_error(lua_State *L, const char *msg, const char *rid);
/* the one failover rule: never reached the service, or a gateway said 502 */
int lcms_failover(cms_http_outcome out, long status);
/* how an attempt ended, for the scheduler: nret values (res, or nil, err) on top */
cms_sched_outcome lcms_classify(lua_State *L, int nret, cms_http_outcome out, long status,
                                long long api_code);
/* An attempt's outcome as a Lua driver hands it back (plan:done, send_plan:done):
 * status, body | nil, { sent = true|false, message = "..." [, code = N] }, read the
 * way the blocking client reads a finished transfer, so both count it alike */
typedef struct lcms_outcome {
  cms_http_outcome out;  /* OK (an answer), CONNECT (sent = false), AMBIGUOUS, TOO_BIG */
  long status;           /* the HTTP status, 0 = no answer */
  long long tcode;       /* a failure's libcurl code, 0 = none */
  int sent;              /* a failure: the request may have left */
  cms_http_xfer x;       /* what the stats read of a transfer: status, rc (28: timeout) */
} lcms_outcome;
/* checks the values at idx (status) and idx + 1 (body or failure), raising
 * "bad argument #argn to 'fname' (...)" (argn: the status's number), and fills o */
void lcms_outcome_check(lua_State *L, int idx, int argn, const char *fname, lcms_outcome *o);
/* the outcome checked at idx as the call's result: res, or nil, err, pushed (msgids:
 * the index of the call's msgIds list or 0; outcomes: opts.results = "outcomes");
 * *code = the answer's API code (0 = none); returns nret */
int lcms_outcome_push(lua_State *L, int idx, const lcms_outcome *o, int msgids, int outcomes,
                      const char *rid, const char *ep, long long *code);
/* the result of a finished libcurl transfer: res or nil, err pushed; returns nret */
int lcms_push_answer(lua_State *L, cms_http_outcome out, const cms_http_xfer *x, int msgids,
                     const char *rid, const char *endpoint, long long *api_code);
/* lcms_encode_params, but an out-of-memory while writing the form raises */
int lcms_encode(lua_State *L, int params, cms_buf *form, cms_verr *e);
/* jitter for the scheduler, from the client's CSPRNG pool */
unsigned long lcms_rand_below(void *client, unsigned long below);

/* --- the calls of one send_all/fanout/plan run (lcms_run.c) --- */
typedef char lcms_rid[CMS_NONCE_LEN + 1];
typedef struct lcms_run {
  lua_State *L;
  lcms_client *c;
  cms_sched *s;
  lcms_rid *rids;     /* 1..n, the RequestId of each call ("" until its first attempt) */
  double *t0;         /* 1..n, when each call's first attempt started (0 until then) */
  int fanout;         /* calls of a fan-out: resends marked, bodies encoded again */
  int outcomes;       /* opts.results = "outcomes": res.success[msgId] = time only */
  /* stack indexes while the run is worked on */
  int list, results, ids, perr, progress, bodies;
  int hook;           /* stack index of opts.on_attempt, 0 = none */
} lcms_run;
/* the Lua-owned block of a run of n calls: a userdata with the scheduler and
 * the RequestIds; pushed, and r->s, r->rids set */
void lcms_run_alloc(lua_State *L, lcms_run *r, int n, const cms_sched_opts *o);
/* encodes call i for the attempt st into form (fan-out resends marked);
 * 0, or -1 with nil, err pushed (invalid, out of memory) */
int lcms_run_encode(lcms_run *r, const cms_sched_step *st, cms_buf *form);
/* an attempt of call i ended with nret values on top (res, or nil, err),
 * classified as out: the call is settled (its result kept, on_progress) or
 * goes again (the values dropped; a send_all call keeps the body `form`) */
void lcms_run_outcome(lcms_run *r, int i, int nret, cms_sched_outcome out, long long now,
                      const cms_buf *form);
/* call i is settled with the nret values on top */
void lcms_run_final(lcms_run *r, int i, int nret);
/* the scheduler expired call i at the deadline */
void lcms_run_expire(lcms_run *r, const cms_sched_step *st);
/* send_all list entries validated before anything is paced (no rate token
 * for an invalid entry) */
void lcms_run_prevalidate(lcms_run *r);

/* --- the one option reader (lcms_opts.c) --- */
typedef enum lcms_opt_id {
  LCMS_O_APPKEY, LCMS_O_SECRET, LCMS_O_ENDPOINT, LCMS_O_ENDPOINTS, LCMS_O_TIMEOUT,
  LCMS_O_CONNECT_TIMEOUT, LCMS_O_RETRIES, LCMS_O_CA_FILE, LCMS_O_PROXY, LCMS_O_RATE_LIMIT,
  LCMS_O_RATE_LIMIT_PENALTY, LCMS_O_CONCURRENCY, LCMS_O_DEADLINE, LCMS_O_PER_RECEIVER_RATE,
  LCMS_O_BACKOFF, LCMS_O_ON_PROGRESS, LCMS_O_RATE_STORE, LCMS_O_RATE_STORE_TIMEOUT,
  LCMS_O_RESULTS, LCMS_O_ON_ATTEMPT,
  LCMS_O__COUNT
} lcms_opt_id;
typedef enum lcms_opt_type {
  LCMS_OT_STRING, LCMS_OT_NUMBER, LCMS_OT_INTEGER, LCMS_OT_FUNCTION, LCMS_OT_LIST
} lcms_opt_type;
enum { LCMS_FOR_NEW = 1, LCMS_FOR_SEND_ALL = 2, LCMS_FOR_FANOUT = 4 }; /* plan: fanout's */
enum { LCMS_OF_LO_OPEN = 1, LCMS_OF_ZERO_OFF = 2 }; /* (lo, hi]; 0 (off) or [lo, hi] */
typedef struct lcms_opt_rule {
  lcms_opt_id id;
  const char *name;
  lcms_opt_type type;
  double lo, hi;  /* numbers and integers: the one range of the option */
  int flags;
  int users;      /* LCMS_FOR_* that take it */
} lcms_opt_rule;
typedef struct lcms_optv {
  int set;
  double num;
  lua_Integer i;
  const char *s;  /* strings: kept alive by the options table */
  size_t len;
} lcms_optv;
const lcms_opt_rule *lcms_opt_rules(void);
/* reads the options table at idx for `users`, raw; raises naming fname and
 * argument argn on an unknown key, a wrong type, a value out of range, a
 * control character in a string */
void lcms_opts_read(lua_State *L, int idx, int users, const char *fname, int argn,
                    lcms_optv out[LCMS_O__COUNT]);
/* the table at idx is a list 1..n and nothing else: returns n; raises naming
 * the first hole or foreign key */
int lcms_check_list(lua_State *L, int idx, const char *fname, const char *what, int argn);

typedef struct lcms_runopts {
  cms_sched_opts sched;
  double deadline_s;   /* 0 = none */
  int progress;        /* stack index of on_progress, 0 = none */
  int outcomes;        /* opts.results: 0 "full" (the default), 1 "outcomes" */
} lcms_runopts;
/* reads the options of send_all/fanout/plan at idx (nil: defaults) */
void lcms_read_runopts(lua_State *L, int idx, lcms_runopts *o, int fanout, int default_retries,
                       const char *fname);

/* --- the multi pool (lcms_pool.c): slots allocated on first use --- */
typedef struct lcms_slot {
  CURL *easy;
  cms_http_xfer xfer;
  cms_buf form;
  struct curl_slist *headers;
  int call;                    /* the call in flight, 0 = free */
  double t0;                   /* when its attempt started (lcms_clock_s) */
} lcms_slot;
struct lcms_pool {
  CURLM *multi;
  lcms_slot *slots[LCMS_MAX_CONCURRENCY];
  int n;                       /* slots with an easy handle */
};
/* the client's pool with n configured slots, all free; NULL when out of memory */
lcms_pool *lcms_pool_get(lcms_client *c, int n);
lcms_slot *lcms_pool_free_slot(lcms_pool *p, int n);
lcms_slot *lcms_pool_find(lcms_pool *p, int n, CURL *easy);
void lcms_pool_release(lcms_pool *p);

/* --- drivers: send_all, fanout (lcms_multi.c), plan (lcms_plan.c) --- */
int lcms_send_all(lua_State *L);
int lcms_fanout(lua_State *L);
int lcms_plan(lua_State *L);
void lcms_open_plan(lua_State *L);
/* client:send_plan: client:send for any event loop (lcms_send_plan.c) */
int lcms_send_plan(lua_State *L);
void lcms_open_send_plan(lua_State *L);
/* the report of a fan-out (lcms_report.c, shaped in Lua): pushes it */
void lcms_push_report(lua_State *L, int list, int results, int pcalls, int plan, int perr);
void lcms_open_report(lua_State *L);

/* chunk (lcms_chunk.c) */
int lcms_chunk(lua_State *L);
/* chunk the params at idx; pushes calls, plan or returns -1 with e filled */
int lcms_chunk_params(lua_State *L, int idx, cms_verr *e);

#endif
