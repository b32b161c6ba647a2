/* lcms.h -- private declarations of the Lua binding (src/lua/).
 * Everything Lua-facing lives in src/lua; src/core knows nothing of Lua. */
#ifndef LCMS_H
#define LCMS_H
#include "lcms_compat.h"
#include <curl/curl.h>
#include "cms_buf.h"
#include "cms_http.h"
#include "cms_pace.h"
#include "cms_rules.h"
#include "cms_sign.h"

#define LCMS_VERSION "0.1.0"
#define LCMS_CLIENT_MT "commsease.client"
#define LCMS_MAX_ENDPOINTS 8
#define LCMS_MAX_CONCURRENCY 64

/* one transfer of send_all/fanout: its own easy handle (libcurl's multi
 * interface needs one per transfer), body, headers and answer */
typedef struct lcms_slot {
  CURL *easy;
  cms_http_xfer xfer;
  cms_buf form;
  struct curl_slist *headers;
  int item;                    /* index of the call in flight, 0 = free */
} lcms_slot;

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
  cms_pace pace;               /* rate limit and 416 penalty, for every call */
  cms_rand rand;               /* Nonces, RequestIds, jitter */
  CURLM *multi;                /* send_all/fanout; created on first use */
  lcms_slot slots[LCMS_MAX_CONCURRENCY];
  int n_slots;                 /* slots with an easy handle */
  int running;                 /* inside send_all/fanout (on_progress may call back) */
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

/* JSON text -> the Lua values lua-cjson would give (lcms_answer.c): pushes
 * one value and returns 0, or pushes nothing and returns -1 (*why: reason) */
int lcms_json_push(lua_State *L, const char *s, size_t n, const char **why);
/* a status-200 answer body -> res (pushed, returns 1) or nil, err (returns 2):
 * one pass to check, one to build the result tables (lcms_answer.c) */
int lcms_answer_read(lua_State *L, const char *body, size_t len, int msgids,
                     const char *request_id, const char *endpoint, long long *api_code);

/* parse an answer; pushes res or nil, err; returns the number of values */
int lcms_parse_answer(lua_State *L, long status, const char *body, size_t len,
                      int msgids, const char *request_id, const char *endpoint,
                      long long *api_code);
int lcms_parse(lua_State *L);

/* message builders */
void lcms_open_builders(lua_State *L);
/* the rules table exposed as commsease.rules */
void lcms_push_rules(lua_State *L);
/* the client class */
void lcms_open_client(lua_State *L);
int lcms_new(lua_State *L);
lcms_client *lcms_check_client(lua_State *L);
/* fresh Nonce/CurTime/CheckSum and the header list for one attempt */
int lcms_build_headers(lcms_client *c, struct curl_slist **list, const char *rid);
int lcms_push_transfer_error(lua_State *L, cms_http_outcome out, const cms_http_xfer *x,
                             const char *rid, const char *endpoint);

/* send_all, fanout (lcms_multi.c), chunk (lcms_chunk.c) */
int lcms_send_all(lua_State *L);
int lcms_fanout(lua_State *L);
int lcms_chunk(lua_State *L);
/* chunk the params at idx; pushes calls, plan or returns -1 with e filled */
int lcms_chunk_params(lua_State *L, int idx, cms_verr *e);
void lcms_release_slots(lcms_client *c);

#endif
