/* lcms_encode.c -- a Lua params table -> the validated, percent-encoded form
 * body of one batchSendMsgToSomeone call.  Every check comes from the rules
 * table in src/core/cms_rules.c; this file only turns Lua values into wire
 * values and wire values into the form. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lcms.h"
#include "cms_sign.h"

typedef struct enc {
  lua_State *L;
  CURL *esc;
  cms_buf *form;
  cms_verr *e;
  int params;
} enc;

static int add_field(enc *x, const char *name, const char *v, size_t n) {
  char *q;
  if (n > INT_MAX) return cms_verr_set(x->e, name, "%s is too large to send", name);
  if (x->form->len) cms_buf_addc(x->form, '&');
  cms_buf_adds(x->form, name);
  cms_buf_addc(x->form, '=');
  q = curl_easy_escape(x->esc, v, (int)n);
  if (!q) return cms_verr_set(x->e, name, "out of memory while encoding %s", name);
  cms_buf_adds(x->form, q);
  curl_free(q);
  if (x->form->oom) return cms_verr_set(x->e, name, "out of memory while encoding %s", name);
  return 0;
}

static const char *typename_at(lua_State *L, int idx) { return luaL_typename(L, idx); }

static int get_integer(lua_State *L, int idx, long long *out) {
  int isnum = 0;
  lua_Integer v;
  if (lua_type(L, idx) != LUA_TNUMBER) return -1;
  v = lua_tointegerx(L, idx, &isnum);
  if (!isnum) return -1;
  *out = (long long)v;
  return 0;
}

/* every key of table t must name a rule */
static int check_keys(enc *x, int t, const cms_rule *rules, const char *where) {
  lua_State *L = x->L;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    const char *k;
    const cms_rule *r;
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return cms_verr_set(x->e, where ? where : "params", "%s has a %s key; only named fields "
                          "are allowed", where ? where : "params", typename_at(L, -1));
    }
    k = lua_tostring(L, -1);
    for (r = rules; r->name; r++)
      if (strcmp(r->name, k) == 0) break;
    if (!r->name) {
      char path[160];
      if (where) snprintf(path, sizeof path, "%s.%s", where, k);
      else snprintf(path, sizeof path, "%s", k);
      lua_pop(L, 1);
      return cms_verr_set(x->e, path, "%s is not a field of %s; check its spelling (API.md "
                          "names)", path, where ? "a message" : "batchSendMsgToSomeone");
    }
  }
  return 0;
}

/* a proper sequence 1..n with no other keys */
static int seq_len(lua_State *L, int t, size_t *n) {
  size_t len = (size_t)lua_rawlen(L, t), count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    long long k;
    lua_pop(L, 1);
    if (get_integer(L, -1, &k) || k < 1 || (size_t)k > len) {
      lua_pop(L, 1);
      return -1;
    }
    count++;
  }
  *n = len;
  return count == len ? 0 : -1;
}

/* a field getter over the Lua table at a given index, for the attach schema */
typedef struct tref { lua_State *L; int idx; } tref;

static cms_jtype tget(void *obj, const char *key, const char **s, size_t *n, double *num) {
  tref *r = obj;
  lua_State *L = r->L;
  cms_jtype t = CMS_J_OTHER;
  lua_getfield(L, r->idx, key);
  switch (lua_type(L, -1)) {
    case LUA_TNIL: t = CMS_J_MISSING; break;
    case LUA_TSTRING: *s = lua_tolstring(L, -1, n); t = CMS_J_STRING; break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1)) {
        *num = (double)lua_tointeger(L, -1);
        t = CMS_J_INTEGER;
      } else {
        double d = (double)lua_tonumber(L, -1);
        *num = d;
        t = (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0) ? CMS_J_INTEGER
                                                                          : CMS_J_NUMBER;
      }
      break;
    default: break;
  }
  lua_pop(L, 1);
  return t;
}

/* The JSON-typed value on top of the stack (a string of JSON text, or a table
 * to encode) is replaced by its JSON text; want_object demands an object or
 * array; if decoded is not NULL the decoded/original table is left below the
 * text (or nil).  path names the field in messages. */
static int json_value(enc *x, const char *path, int want_object, int keep_table) {
  lua_State *L = x->L;
  int v = lua_gettop(L);
  if (lua_type(L, v) == LUA_TTABLE) {
    if (keep_table) lua_pushvalue(L, v);
    if (lcms_json_encode(L, v)) {
      const char *why = lua_tostring(L, -1);
      return cms_verr_set(x->e, path, "%s cannot be encoded as JSON: %s", path,
                          why ? why : "unknown reason");
    }
  } else if (lua_type(L, v) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, v, &n);
    if (cms_utf16_len(s, n) < 0) return cms_verr_set(x->e, path, "%s is not valid UTF-8", path);
    if (lcms_json_decode(L, s, n)) {
      const char *why = lua_tostring(L, -1);
      return cms_verr_set(x->e, path, "%s is not valid JSON text (%s)", path,
                          why ? why : "decode failed");
    }
    if (want_object && lua_type(L, -1) != LUA_TTABLE)
      return cms_verr_set(x->e, path, "%s must be a JSON object", path);
    if (!keep_table) lua_pop(L, 1);
    lua_pushvalue(L, v);
  } else {
    return cms_verr_set(x->e, path, "%s must be JSON text (a string) or a table, not a %s",
                        path, typename_at(L, v));
  }
  /* stack: v [table] text -> [table] text */
  lua_remove(L, v);
  return 0;
}

static int encode_msg(enc *x, int m, int i, int out, int ids, cms_msg_view *v) {
  lua_State *L = x->L;
  char where[32], path[64];
  const cms_msgtype *t = NULL;
  int om;
  long long n;
  snprintf(where, sizeof where, "msgList[%d]", i);
  if (lua_type(L, m) != LUA_TTABLE)
    return cms_verr_set(x->e, where, "%s must be a message table, not a %s", where,
                        typename_at(L, m));
  if (check_keys(x, m, cms_msg_rules, where)) return -1;
  memset(v, 0, sizeof *v);
  lua_createtable(L, 0, 6);
  om = lua_gettop(L);
#define P(f) (snprintf(path, sizeof path, "%s.%s", where, f), path)
  /* msgId: the caller's, or a fresh UUID */
  lua_getfield(L, m, "msgId");
  if (lua_isnil(L, -1)) {
    char u[37];
    lua_pop(L, 1);
    if (cms_uuid4(u)) return cms_verr_set(x->e, P("msgId"), "no random bytes for a msgId");
    lua_pushstring(L, u);
  } else if (lua_type(L, -1) != LUA_TSTRING) {
    return cms_verr_set(x->e, P("msgId"), "%s must be a string, not a %s", path,
                        typename_at(L, -1));
  }
  v->msgId = lua_tolstring(L, -1, &v->msgId_len);
  lua_pushvalue(L, -1);
  lua_setfield(L, om, "msgId");
  lua_rawseti(L, ids, i);
  /* msgType: an integer or a name */
  lua_getfield(L, m, "msgType");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *name = lua_tolstring(L, -1, &len);
    t = cms_msgtype_by_name(name, len);
    if (!t)
      return cms_verr_set(x->e, P("msgType"), "%s is \"%.32s\"; allowed: %s", path, name,
                          cms_msg_rule("msgType")->doc);
    v->has_msgType = 1;
    v->msgType = t->code;
  } else if (!get_integer(L, -1, &n)) {
    v->has_msgType = 1;
    v->msgType = n;
    t = cms_msgtype_by_code(n);
  } else if (!lua_isnil(L, -1)) {
    return cms_verr_set(x->e, P("msgType"), "%s must be an integer or a type name, not a %s",
                        path, typename_at(L, -1));
  }
  lua_pop(L, 1);
  if (v->has_msgType) {
    lua_pushinteger(L, (lua_Integer)v->msgType);
    lua_setfield(L, om, "msgType");
  }
  /* attach: text, or JSON (text or a table) checked against the type's schema */
  lua_getfield(L, m, "attach");
  if (!lua_isnil(L, -1) && t) {
    if (t->attach_json) {
      tref r;
      if (json_value(x, P("attach"), t->attach_object, 1)) return -1;
      r.L = L;
      r.idx = lua_gettop(L) - 1;
      if (t->fields && cms_check_attach_fields(t, i, tget, &r, x->e)) return -1;
      lua_remove(L, -2);
    } else if (lua_type(L, -1) != LUA_TSTRING) {
      return cms_verr_set(x->e, P("attach"), "%s must be a string for a %s message, not a %s",
                          path, t->name, typename_at(L, -1));
    }
    v->attach = lua_tolstring(L, -1, &v->attach_len);
    lua_setfield(L, om, "attach");
  } else {
    lua_pop(L, 1);
  }
  /* ext: JSON text or a table */
  lua_getfield(L, m, "ext");
  if (!lua_isnil(L, -1)) {
    if (json_value(x, P("ext"), 0, 0)) return -1;
    v->ext = lua_tolstring(L, -1, &v->ext_len);
    lua_setfield(L, om, "ext");
  } else {
    lua_pop(L, 1);
  }
  /* subType */
  lua_getfield(L, m, "subType");
  if (!lua_isnil(L, -1)) {
    if (get_integer(L, -1, &n))
      return cms_verr_set(x->e, P("subType"), "%s must be an integer > 0, not a %s", path,
                          typename_at(L, -1));
    v->has_subType = 1;
    v->subType = n;
    lua_setfield(L, om, "subType");
  } else {
    lua_pop(L, 1);
  }
  /* resendFlag: 0/1 or a boolean */
  lua_getfield(L, m, "resendFlag");
  if (lua_isboolean(L, -1)) {
    v->has_resendFlag = 1;
    v->resendFlag = lua_toboolean(L, -1);
  } else if (!get_integer(L, -1, &n)) {
    v->has_resendFlag = 1;
    v->resendFlag = n;
  } else if (!lua_isnil(L, -1)) {
    return cms_verr_set(x->e, P("resendFlag"), "%s must be 0, 1 or a boolean, not a %s", path,
                        typename_at(L, -1));
  }
  lua_pop(L, 1);
  if (v->has_resendFlag) {
    lua_pushinteger(L, (lua_Integer)v->resendFlag);
    lua_setfield(L, om, "resendFlag");
  }
#undef P
  if (cms_check_msg(v, i, x->e)) return -1;
  lua_rawseti(L, out, i);
  return 0;
}

/* msgList at the top -> its JSON text at the top */
static int encode_msglist(enc *x, const cms_rule *r, int ids) {
  lua_State *L = x->L;
  int list = lua_gettop(L), out, i;
  size_t n;
  cms_msg_view views[16];
  if (lua_type(L, list) != LUA_TTABLE)
    return cms_verr_set(x->e, r->name, "msgList must be a list of messages, not a %s",
                        typename_at(L, list));
  if (seq_len(L, list, &n))
    return cms_verr_set(x->e, r->name, "msgList must be a list (keys 1..n, no holes)");
  if (cms_check_count(r, n, x->e)) return -1;
  lua_createtable(L, (int)n, 0);
  out = lua_gettop(L);
  for (i = 1; i <= (int)n; i++) {
    int top = lua_gettop(L);
    lua_rawgeti(L, list, i);
    if (encode_msg(x, top + 1, i, out, ids, &views[i - 1])) return -1;
    lua_settop(L, top);
  }
  if (cms_check_unique_msgids(views, (int)n, x->e)) return -1;
  if (lcms_json_encode(L, out))
    return cms_verr_set(x->e, r->name, "msgList cannot be encoded as JSON: %s",
                        lua_tostring(L, -1));
  lua_replace(L, list);
  lua_settop(L, list);
  return 0;
}

static int encode_accids(enc *x, const cms_rule *r) {
  lua_State *L = x->L;
  int list = lua_gettop(L), i;
  size_t n;
  char path[32];
  if (lua_type(L, list) != LUA_TTABLE)
    return cms_verr_set(x->e, r->name, "toAccids must be a list of accids, not a %s",
                        typename_at(L, list));
  if (seq_len(L, list, &n))
    return cms_verr_set(x->e, r->name, "toAccids must be a list (keys 1..n, no holes)");
  if (cms_check_count(r, n, x->e)) return -1;
  for (i = 1; i <= (int)n; i++) {
    size_t len;
    const char *s;
    snprintf(path, sizeof path, "toAccids[%d]", i);
    lua_rawgeti(L, list, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return cms_verr_set(x->e, path, "%s must be a string (an accid), not a %s", path,
                          typename_at(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (cms_check_accid(path, s, len, x->e)) return -1;
    lua_pop(L, 1);
  }
  if (lcms_json_encode(L, list))
    return cms_verr_set(x->e, r->name, "toAccids cannot be encoded: %s", lua_tostring(L, -1));
  lua_replace(L, list);
  return 0;
}

/* antispamCustom: {"type":1|2|3,"data":"..."} and only with antispam=true; the
 * decoded or original table sits at t */
static int check_antispam(enc *x, int t) {
  lua_State *L = x->L;
  long long type = 0;
  int type_ok, data_ok, on;
  lua_getfield(L, x->params, "antispam");
  on = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_type(L, t) != LUA_TTABLE)
    return cms_verr_set(x->e, "antispamCustom", "antispamCustom must be a JSON object "
                        "{\"type\":1|2|3,\"data\":\"...\"}");
  lua_getfield(L, t, "type");
  type_ok = get_integer(L, -1, &type) == 0;
  lua_getfield(L, t, "data");
  data_ok = lua_type(L, -1) == LUA_TSTRING;
  lua_pop(L, 2);
  return cms_check_antispam(on, 1, type, type_ok, data_ok, x->e);
}

/* the value of rule r at the top -> its wire text at the top */
static int encode_param(enc *x, const cms_rule *r, int ids) {
  lua_State *L = x->L;
  const char *name = r->name;
  long long n;
  char num[32];
  switch (r->kind) {
    case CMS_K_MSGLIST: return encode_msglist(x, r, ids);
    case CMS_K_ACCIDS: return encode_accids(x, r);
    case CMS_K_ROOMID:
    case CMS_K_INT:
    case CMS_K_POSINT:
      if (!get_integer(L, -1, &n)) {
        snprintf(num, sizeof num, "%lld", n);
        lua_pop(L, 1);
        lua_pushstring(L, num);
      } else if (lua_type(L, -1) != LUA_TSTRING) {
        return cms_verr_set(x->e, name, "%s must be an integer or a decimal string, not a %s; "
                            "allowed: %s", name, typename_at(L, -1), r->doc);
      }
      break;
    case CMS_K_FLAG:
      if (lua_isboolean(L, -1)) {
        int b = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_pushstring(L, b ? "1" : "0");
      } else if (!get_integer(L, -1, &n)) {
        snprintf(num, sizeof num, "%lld", n);
        lua_pop(L, 1);
        lua_pushstring(L, num);
      } else {
        return cms_verr_set(x->e, name, "%s must be 0, 1 or a boolean, not a %s", name,
                            typename_at(L, -1));
      }
      break;
    case CMS_K_BOOL:
      if (!lua_isboolean(L, -1))
        return cms_verr_set(x->e, name, "%s must be a boolean, not a %s", name,
                            typename_at(L, -1));
      n = lua_toboolean(L, -1);
      lua_pop(L, 1);
      lua_pushstring(L, n ? "true" : "false");
      break;
    case CMS_K_JSON: {
      int special = strcmp(name, "antispamCustom") == 0;
      if (json_value(x, name, special, special)) return -1;
      if (special) {
        if (check_antispam(x, lua_gettop(L) - 1)) return -1;
        lua_remove(L, -2);
      }
      break;
    }
    case CMS_K_ACCID:
    case CMS_K_TEXT:
      if (lua_type(L, -1) != LUA_TSTRING)
        return cms_verr_set(x->e, name, "%s must be a string, not a %s", name,
                            typename_at(L, -1));
      break;
  }
  {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (cms_check_value(r, name, s, len, x->e)) return -1;
  }
  return 0;
}

int lcms_encode_params(lua_State *L, int params, CURL *esc, cms_buf *form, cms_verr *e) {
  int top = lua_gettop(L), ids;
  const cms_rule *r;
  enc x;
  params = lua_absindex(L, params);
  x.L = L;
  x.esc = esc;
  x.form = form;
  x.e = e;
  x.params = params;
  cms_buf_reset(form);
  if (lua_type(L, params) != LUA_TTABLE) {
    cms_verr_set(e, "params", "params must be a table, not a %s", typename_at(L, params));
    goto fail;
  }
  if (check_keys(&x, params, cms_param_rules, NULL)) goto fail;
  lua_createtable(L, 10, 0);
  ids = lua_gettop(L);
  for (r = cms_param_rules; r->name; r++) {
    lua_getfield(L, params, r->name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      if (r->required) {
        cms_verr_set(e, r->name, "%s is missing; it is required: %s", r->name, r->doc);
        goto fail;
      }
      continue;
    }
    if (encode_param(&x, r, ids)) goto fail;
    {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (add_field(&x, r->name, s, len)) goto fail;
    }
    lua_settop(L, ids);
  }
  lua_settop(L, ids); /* leaves the msgIds list */
  return 0;
fail:
  lua_settop(L, top);
  return -1;
}
