/* lcms_chunk.c -- commsease.chunk(params): any number of messages and
 * recipients -> a list of valid send params (<= 10 messages x <= 100 accids).
 *
 * Recipients are de-duplicated case-insensitively (the first spelling stays)
 * and keep the caller's order.  Calls come batch-major: every recipient group
 * gets messages 1-10, then every group gets 11-20, and so on.  Each message
 * of a call carries a derived msgId "<caller msgId>:<group>", group being the
 * 1-based number of its block of 100 recipients, so that a resend of one call
 * (resendFlag = 1) is never taken for another call's message.  The plan (the
 * second value) maps derived msgIds back to the caller's. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "lcms.h"
#include "cms_sign.h"

/* the batch limits are the rules' (cms_rules.c) */
#define BATCH_MSGS ((size_t)cms_param_rules[CMS_PR_MSGLIST].max_items)
#define BATCH_ACCIDS ((size_t)cms_param_rules[CMS_PR_TOACCIDS].max_items)

/* rewrite "msgList[k]" in s as "msgList[k + off]" (error paths of one call in
 * the caller's numbering) */
static void renumber(char *s, size_t cap, int off) {
  char *p = strstr(s, "msgList["), tail[384];
  int k;
  if (!p || off == 0 || sscanf(p + 8, "%d", &k) != 1) return;
  {
    char *close = strchr(p, ']');
    if (!close) return;
    snprintf(tail, sizeof tail, "%s", close);
    snprintf(p, cap - (size_t)(p - s), "msgList[%d%s", k + off, tail);
  }
  /* the message usually names the path too */
}

static int check_seq(lua_State *L, int t, const char *name, cms_verr *e, size_t *n) {
  if (lua_type(L, t) != LUA_TTABLE)
    return cms_verr_set(e, name, "%s must be a list, not a %s", name, luaL_typename(L, t));
  *n = (size_t)lua_rawlen(L, t);
  if (*n == 0) return cms_verr_set(e, name, "%s is empty; at least one entry is needed", name);
  return 0;
}

int lcms_chunk_params(lua_State *L, int idx, cms_verr *e) {
  int top = lua_gettop(L), P, msgs, to, uniq, ids, calls, plan, plan_calls;
  size_t n_msgs, n_to, n_uniq = 0, j, k;
  int b, g, B, G, i = 0;
  luaL_checkstack(L, 40, "commsease: no room on the Lua stack to chunk params");
  P = lua_absindex(L, idx);
  if (lua_type(L, P) != LUA_TTABLE) {
    cms_verr_set(e, "params", "params must be a table, not a %s", luaL_typename(L, P));
    return -1;
  }
  /* raw reads: no metamethod of the caller's tables runs */
  lua_pushstring(L, cms_param_rules[CMS_PR_MSGLIST].name);
  lua_rawget(L, P);
  msgs = lua_gettop(L);
  if (check_seq(L, msgs, "msgList", e, &n_msgs)) goto fail;
  lua_pushstring(L, cms_param_rules[CMS_PR_TOACCIDS].name);
  lua_rawget(L, P);
  to = lua_gettop(L);
  if (check_seq(L, to, "toAccids", e, &n_to)) goto fail;

  /* recipients: checked, de-duplicated case-insensitively, in order */
  lua_createtable(L, (int)n_to, 0);
  uniq = lua_gettop(L);
  lua_createtable(L, 0, (int)n_to); /* seen: lowercase -> true */
  for (k = 1; k <= n_to; k++) {
    char path[48], low[CMS_ACCID_MAX + 1];
    size_t len, c;
    const char *s;
    snprintf(path, sizeof path, "toAccids[%zu]", k);
    lua_rawgeti(L, to, (lua_Integer)k);
    if (lua_type(L, -1) != LUA_TSTRING) {
      cms_verr_set(e, path, "%s must be a string (an accid), not a %s", path,
                   luaL_typename(L, -1));
      goto fail;
    }
    s = lua_tolstring(L, -1, &len);
    if (cms_check_accid(path, s, len, e)) goto fail;
    for (c = 0; c < len; c++) low[c] = (char)tolower((unsigned char)s[c]);
    lua_pushlstring(L, low, len);
    lua_pushvalue(L, -1);
    lua_rawget(L, uniq + 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
      lua_rawset(L, uniq + 1);
      lua_rawseti(L, uniq, (lua_Integer)++n_uniq);
    } else {
      lua_pop(L, 3);
    }
  }
  lua_pop(L, 1); /* seen */

  /* the caller's msgIds (given, or a fresh UUID), unique */
  lua_createtable(L, (int)n_msgs, 0);
  ids = lua_gettop(L);
  lua_createtable(L, 0, (int)n_msgs); /* seen ids */
  for (j = 1; j <= n_msgs; j++) {
    char path[48];
    snprintf(path, sizeof path, "msgList[%zu]", j);
    lua_rawgeti(L, msgs, (lua_Integer)j);
    if (lua_type(L, -1) != LUA_TTABLE) {
      cms_verr_set(e, path, "%s must be a message table, not a %s", path, luaL_typename(L, -1));
      goto fail;
    }
    lua_pushstring(L, cms_msg_rules[CMS_MF_MSGID].name);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
      char u[37];
      lua_pop(L, 1);
      if (cms_uuid4(u)) {
        cms_verr_set(e, path, "no random bytes for a msgId");
        goto fail;
      }
      lua_pushstring(L, u);
    } else if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(path, sizeof path, "msgList[%zu].msgId", j);
      cms_verr_set(e, path, "%s must be a string, not a %s", path, luaL_typename(L, -1));
      goto fail;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, ids + 1);
    if (!lua_isnil(L, -1)) {
      snprintf(path, sizeof path, "msgList[%zu].msgId", j);
      cms_verr_set(e, path, "%s repeats the msgId of msgList[%d]; msgIds must be unique", path,
                   (int)lua_tointeger(L, -1));
      goto fail;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushinteger(L, (lua_Integer)j);
    lua_rawset(L, ids + 1);
    lua_rawseti(L, ids, (lua_Integer)j);
    lua_pop(L, 1); /* message */
  }
  lua_pop(L, 1); /* seen ids */

  B = (int)((n_msgs + BATCH_MSGS - 1) / BATCH_MSGS);
  G = (int)((n_uniq + BATCH_ACCIDS - 1) / BATCH_ACCIDS);
  lua_createtable(L, B * G, 0);
  calls = lua_gettop(L);
  lua_createtable(L, 0, 3);
  plan = lua_gettop(L);
  lua_createtable(L, B * G, 0);
  plan_calls = lua_gettop(L);
  for (b = 1; b <= B; b++) {
    size_t first = (size_t)(b - 1) * BATCH_MSGS + 1;
    size_t last = first + BATCH_MSGS - 1 < n_msgs ? first + BATCH_MSGS - 1 : n_msgs;
    for (g = 1; g <= G; g++) {
      size_t a0 = (size_t)(g - 1) * BATCH_ACCIDS + 1;
      size_t a1 = a0 + BATCH_ACCIDS - 1 < n_uniq ? a0 + BATCH_ACCIDS - 1 : n_uniq;
      int call, origin;
      char suffix[16];
      snprintf(suffix, sizeof suffix, ":%d", g);
      /* the call: every other parameter copied */
      lua_newtable(L);
      call = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, P)) {
        if (lua_type(L, -2) == LUA_TSTRING &&
            (strcmp(lua_tostring(L, -2), cms_param_rules[CMS_PR_MSGLIST].name) == 0 ||
             strcmp(lua_tostring(L, -2), cms_param_rules[CMS_PR_TOACCIDS].name) == 0)) {
          lua_pop(L, 1);
          continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, call);
      }
      lua_createtable(L, (int)(a1 - a0 + 1), 0);
      for (k = a0; k <= a1; k++) {
        lua_rawgeti(L, uniq, (lua_Integer)k);
        lua_rawseti(L, -2, (lua_Integer)(k - a0 + 1));
      }
      lua_setfield(L, call, "toAccids");
      lua_createtable(L, 0, 3); /* plan entry */
      lua_pushinteger(L, g);
      lua_setfield(L, -2, "group");
      lua_pushinteger(L, b);
      lua_setfield(L, -2, "batch");
      lua_createtable(L, 0, (int)(last - first + 1));
      origin = lua_gettop(L);
      lua_createtable(L, (int)(last - first + 1), 0);
      for (j = first; j <= last; j++) {
        lua_newtable(L); /* a shallow copy of the caller's message */
        lua_rawgeti(L, msgs, (lua_Integer)j);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
          lua_pushvalue(L, -2);
          lua_insert(L, -2);
          lua_rawset(L, -5);
        }
        lua_pop(L, 1);
        lua_rawgeti(L, ids, (lua_Integer)j);
        lua_pushstring(L, suffix);
        lua_concat(L, 2);               /* derived msgId */
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "msgId");
        lua_rawgeti(L, ids, (lua_Integer)j);
        lua_rawset(L, origin);          /* origin[derived] = caller's */
        lua_rawseti(L, -2, (lua_Integer)(j - first + 1));
      }
      lua_setfield(L, call, "msgList");
      lua_setfield(L, -2, "origin");
      lua_rawseti(L, plan_calls, ++i);
      /* validate the first call of each batch in full (the others differ
       * only in recipients, checked above) */
      if (g == 1 && lcms_encode_params(L, call, NULL, e)) { /* validate only */
        renumber(e->field, sizeof e->field, (int)first - 1);
        renumber(e->message, sizeof e->message, (int)first - 1);
        goto fail;
      }
      if (g == 1) lua_pop(L, 1); /* the msgIds list the encoder pushed */
      lua_rawseti(L, calls, i);
    }
  }
  lua_pushvalue(L, plan_calls);
  lua_setfield(L, plan, "calls");
  lua_pushinteger(L, (lua_Integer)n_msgs);
  lua_setfield(L, plan, "messages");
  lua_pushinteger(L, (lua_Integer)n_uniq);
  lua_setfield(L, plan, "recipients");
  lua_settop(L, plan);
  lua_replace(L, top + 2);          /* plan */
  lua_replace(L, top + 1);          /* calls */
  lua_settop(L, top + 2);
  return 0;
fail:
  lua_settop(L, top);
  return -1;
}

/* calls, plan = commsease.chunk(params)  |  nil, err */
int lcms_chunk(lua_State *L) {
  cms_verr e;
  lua_settop(L, 1);
  if (lcms_chunk_params(L, 1, &e)) return lcms_push_invalid(L, &e);
  return 2;
}
