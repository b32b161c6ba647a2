/* lcms_request.c -- what every path that sends (send, prepare, send_all,
 * fanout, plan) shares: the signature, the header list of an attempt, the
 * transfer's error values, the one failover rule and how an attempt's end is
 * classified for the scheduler. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lcms.h"

int lcms_sign(lcms_client *c, lcms_sig *s) {
  if (cms_rand_hex32(&c->rand, s->nonce)) return -1;
  snprintf(s->curtime, sizeof s->curtime, "%lld", (long long)time(NULL));
  return cms_checksum(&c->sha1, c->secret, c->secret_len, s->nonce, s->curtime, s->checksum);
}

/* overwrites the value after "Name: " in a header line of the same length */
static int refill(struct curl_slist *node, size_t name_len, const char *value) {
  size_t n = strlen(value);
  if (!node || strlen(node->data) != name_len + n) return -1;
  memcpy(node->data + name_len, value, n);
  return 0;
}

/* The headers of one attempt: AppKey, a fresh Nonce, CurTime and CheckSum, the
 * call's RequestId, the Content-Type, no Expect.  The list is built once and
 * its values overwritten in place afterwards (they keep their lengths), so an
 * attempt allocates nothing; it is rebuilt when a length changes. */
int lcms_build_headers(lcms_client *c, struct curl_slist **list, const char *rid) {
  char line[512];
  struct curl_slist *h = NULL, *t;
  const char *fixed[] = {"Content-Type: " CMS_CONTENT_TYPE, "Expect:", NULL};
  int i;
  lcms_sig sg, *s = &sg;
  if (lcms_sign(c, s)) return -1;
  if (*list) {
    struct curl_slist *n = (*list)->next; /* Nonce, CurTime, CheckSum, RequestId */
    if (!refill(n, 7, s->nonce) && !refill(n->next, 9, s->curtime) &&
        !refill(n->next->next, 10, s->checksum) && !refill(n->next->next->next, 11, rid))
      return 0;
    curl_slist_free_all(*list);
    *list = NULL;
  }
#define ADD(str) do { t = curl_slist_append(h, str); if (!t) goto oom; h = t; } while (0)
  snprintf(line, sizeof line, "AppKey: %s", c->appkey);
  ADD(line);
  snprintf(line, sizeof line, "Nonce: %s", s->nonce);
  ADD(line);
  snprintf(line, sizeof line, "CurTime: %s", s->curtime);
  ADD(line);
  snprintf(line, sizeof line, "CheckSum: %s", s->checksum);
  ADD(line);
  snprintf(line, sizeof line, "RequestId: %s", rid);
  ADD(line);
  for (i = 0; fixed[i]; i++) ADD(fixed[i]);
#undef ADD
  *list = h;
  return 0;
oom:
  curl_slist_free_all(h);
  return -1;
}

void lcms_push_headers(lua_State *L, const lcms_client *c, const lcms_sig *s, const char *rid) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, c->appkey);
  lua_setfield(L, -2, "AppKey");
  lua_pushstring(L, s->nonce);
  lua_setfield(L, -2, "Nonce");
  lua_pushstring(L, s->curtime);
  lua_setfield(L, -2, "CurTime");
  lua_pushstring(L, s->checksum);
  lua_setfield(L, -2, "CheckSum");
  lua_pushliteral(L, CMS_CONTENT_TYPE);
  lua_setfield(L, -2, "Content-Type");
  lua_pushstring(L, rid);
  lua_setfield(L, -2, "RequestId");
  lua_pushliteral(L, "commsease-lua/" LCMS_VERSION);
  lua_setfield(L, -2, "User-Agent");
}

int lcms_push_transfer_error(lua_State *L, cms_http_outcome out, const cms_http_xfer *x,
                             const char *rid, const char *endpoint) {
  if (out == CMS_HTTP_TOO_BIG) {
    lcms_errinfo ei = {"response", 0, "the answer is over 1 MiB; cut off", NULL, 0, 1, rid,
                       endpoint};
    return lcms_push_error(L, &ei);
  } else {
    lcms_errinfo ei = {"transport", (long long)x->rc, cms_http_describe(x), NULL,
                       out != CMS_HTTP_LOCAL, out == CMS_HTTP_AMBIGUOUS, rid, endpoint};
    return lcms_push_error(L, &ei);
  }
}

int lcms_push_local_error(lua_State *L, const char *msg, const char *rid) {
  lcms_errinfo ei = {"transport", 0, msg, NULL, 0, 0, rid, NULL};
  return lcms_push_error(L, &ei);
}

int lcms_failover(cms_http_outcome out, long status) {
  return out == CMS_HTTP_CONNECT || (out == CMS_HTTP_OK && status == 502);
}

cms_sched_outcome lcms_classify(lua_State *L, int nret, cms_http_outcome out, long status,
                                long long api_code) {
  int retryable;
  if (nret == 1) return CMS_SCHED_FINAL;
  if (lcms_failover(out, status)) return out == CMS_HTTP_CONNECT ? CMS_SCHED_CONNECT
                                                                 : CMS_SCHED_GATEWAY;
  if (api_code == 416) return CMS_SCHED_RATE;
  if (api_code == 431) return CMS_SCHED_REPEATED;
  lua_getfield(L, -1, "retryable");
  retryable = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return retryable ? CMS_SCHED_AMBIGUOUS : CMS_SCHED_FINAL;
}

int lcms_push_answer(lua_State *L, cms_http_outcome out, const cms_http_xfer *x, int msgids,
                     const char *rid, const char *endpoint, long long *api_code) {
  *api_code = 0;
  if (out != CMS_HTTP_OK) return lcms_push_transfer_error(L, out, x, rid, endpoint);
  return lcms_parse_answer(L, x->status, x->answer.data ? x->answer.data : "", x->answer.len,
                           msgids, rid, endpoint, api_code);
}

unsigned long lcms_rand_below(void *client, unsigned long below) {
  return cms_rand_below(&((lcms_client *)client)->rand, below);
}

int lcms_encode(lua_State *L, int params, cms_buf *form, cms_verr *e) {
  if (lcms_encode_params(L, params, form, e) == 0) return 0;
  if (form && form->oom) {
    /* a memory error raises, as Lua's own do; it is not bad data */
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  return -1;
}
