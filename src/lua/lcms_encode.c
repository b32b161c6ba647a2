/* lcms_encode.c -- a Lua params table -> the validated, percent-encoded form
 * body of one batchSendMsgToSomeone call.
 *
 * Every check comes from the rules table in src/core/cms_rules.c; this file
 * turns Lua values into wire values and writes them into the form.  msgList
 * and toAccids have a fixed shape (objects of strings and integers, a list of
 * strings), so they are written as JSON straight into the form
 * (src/core/cms_form.c); tables that callers hand over for attach, ext and the
 * moderation options are written by lcms_json_write (lcms_json.c), and JSON
 * text is checked byte for byte by cms_json_check.  Everything is read raw
 * (lua_next, lua_rawget): no metamethod of the caller's data runs, so what is
 * checked is what is sent.  Paths of offending fields ("msgList[2].attach.url")
 * are formatted only when something is wrong. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lcms.h"
#include "lcms_answer.h"
#include "cms_form.h"
#include "cms_json.h"
#include "lcms_json.h"
#include "cms_sign.h"

typedef struct enc {
  lua_State *L;
  cms_buf *form;
  cms_verr *e;
  int params;
  int slots;      /* stack slot of the first param's collected value */
} enc;

/* where a value sits: a parameter (index 0) or a field of msgList[index] */
typedef struct fpath {
  int index;
  const char *field;
} fpath;

static const char *path_of(fpath p, char *buf, size_t len) {
  if (p.index) snprintf(buf, len, "msgList[%d].%s", p.index, p.field);
  else snprintf(buf, len, "%s", p.field);
  return buf;
}

#define FAIL(x, p, ...)                                              \
  do {                                                               \
    char path_[96];                                                  \
    path_of((p), path_, sizeof path_);                               \
    return cms_verr_set((x)->e, path_, __VA_ARGS__);                 \
  } while (0)

static int oom(enc *x, const char *what) {
  return cms_verr_set(x->e, what, "out of memory while encoding %s", what);
}

/* 0: an exact integer in *out; -1: not a whole number; -2: a whole float of
 * 2^53 or more (every number on 5.1, 5.2 and LuaJIT), which a double may
 * already have rounded: refused with IMPRECISE */
static int get_integer(lua_State *L, int idx, long long *out) {
  switch (lcms_to_integer(L, idx, out)) {
    case LCMS_INT_OK: return 0;
    case LCMS_INT_IMPRECISE: return -2;
    default: return -1;
  }
}

/* get_integer for a value of known Lua type ty */
static int typed_integer(lua_State *L, int idx, int ty, long long *out) {
  if (ty != LUA_TNUMBER) return -1;
  switch (lcms_number_to_integer(L, idx, out)) {
    case LCMS_INT_OK: return 0;
    case LCMS_INT_IMPRECISE: return -2;
    default: return -1;
  }
}

#define IMPRECISE(x, p, idx)                                                                 \
  FAIL(x, p, "%s is %.0f, a float of 2^53 or more: a double cannot hold every integer there "  \
       "(2^53 + 1 reads as 2^53), so it may not be the number you wrote; pass it as a string",  \
       path_, (double)lua_tonumber(L, idx))

/* what collect_fields saw of a value: its Lua type, and a string's bytes */
typedef struct fval {
  int type;
  const char *s;
  size_t n;
} fval;

/* One pass over table t (raw, as lua_next sees it): every key must name a
 * rule (index 0: params, else msgList[index]), and the value of rule k is
 * copied to stack slot base + k, which the caller filled with nils, and
 * described in fv[k] (zeroed by the caller: LUA_TNIL is 0).  The values stay
 * anchored there while their strings are in use. */
static int collect_fields(enc *x, int t, const cms_rule *rules, int index, int base,
                          fval *fv) {
  lua_State *L = x->L;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    const char *k;
    size_t klen;
    const cms_rule *r;
    if (lua_type(L, -2) != LUA_TSTRING) {
      char where[32];
      if (index) snprintf(where, sizeof where, "msgList[%d]", index);
      else snprintf(where, sizeof where, "params");
      return cms_verr_set(x->e, where, "%s has a %s key; only named fields are allowed", where,
                          luaL_typename(L, -2));
    }
    k = lua_tolstring(L, -2, &klen);
    for (r = rules; r->name; r++)
      if (r->name_len == klen && r->name[0] == k[0] && memcmp(r->name, k, klen) == 0) break;
    if (!r->name) {
      fpath p = {index, k};
      char path[160];
      path_of(p, path, sizeof path);
      return cms_verr_set(x->e, path, "%s is not a field of %s; check its spelling (API.md "
                          "names)", path, index ? "a message" : "batchSendMsgToSomeone");
    }
    if ((fv[r - rules].type = lua_type(L, -1)) == LUA_TSTRING)
      fv[r - rules].s = lua_tolstring(L, -1, &fv[r - rules].n);
    lua_replace(L, base + (int)(r - rules)); /* pops the value */
  }
  return 0;
}


/* the key at idx is the integer i; on 5.1 and LuaJIT every number is a
 * double (exact: i is far below 2^53), from 5.3 on a table's whole-float key
 * comes back as an integer */
static int key_is(lua_State *L, int idx, lua_Integer i) {
#if LUA_VERSION_NUM >= 503
  return lua_isinteger(L, idx) && lua_tointeger(L, idx) == i;
#else
  return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) == (lua_Number)i;
#endif
}

/* a proper sequence 1..n with no other keys; the usual list comes out of
 * lua_next in order, 1 to n, which is checked first */
static int seq_len(lua_State *L, int t, size_t *n) {
  size_t len = (size_t)lua_rawlen(L, t), count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    long long k;
    lua_pop(L, 1);
    if (key_is(L, -1, (lua_Integer)count + 1) && count < len) {
      count++;
      continue;
    }
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
  long long v;
  lua_pushstring(L, key);
  lua_rawget(L, r->idx); /* raw: the fields written are the fields checked */
  switch (lua_type(L, -1)) {
    case LUA_TNIL: t = CMS_J_MISSING; break;
    case LUA_TSTRING: *s = lua_tolstring(L, -1, n); t = CMS_J_STRING; break;
    case LUA_TNUMBER:
      if (lcms_to_integer(L, -1, &v) == LCMS_INT_OK) {
        *num = (double)v;
        t = CMS_J_INTEGER;
      } else {
        *num = (double)lua_tonumber(L, -1);
        t = CMS_J_NUMBER;
      }
      break;
    default: break;
  }
  lua_pop(L, 1);
  return t;
}

/* The JSON-typed value on top of the stack (JSON text, or a table to write)
 * is replaced by its JSON text, of at most max_chars characters.  Tables are
 * written by lcms_json_write (raw reads, exact numbers, bounded work); text
 * goes out byte for byte, so every byte of it is checked (cms_json_check).
 * want_object: the text must hold a JSON object.  keep_table: the table
 * (given, or decoded from the text) is left just below the text, for the
 * checks of its fields, which read it raw too. */
static int json_value(enc *x, fpath p, unsigned max_chars, int want_object, int keep_table) {
  lua_State *L = x->L;
  int v = lua_gettop(L);
  if (lua_type(L, v) == LUA_TTABLE) {
    char path[96];
    path_of(p, path, sizeof path);
    if (keep_table) lua_pushvalue(L, v);
    if (lcms_json_write(L, v, path, max_chars, x->e)) return -1;
  } else if (lua_type(L, v) == LUA_TSTRING) {
    size_t n, at = 0;
    const char *s = lua_tolstring(L, v, &n), *why = NULL;
    /* the strict scan judges every byte, UTF-8 in strings included (outside
     * them a byte >= 0x80 is no JSON); so the UTF-8 count runs only to name
     * what is wrong (the field's length is counted with the message's rules) */
    if (cms_json_check(s, n, &why, &at)) {
      char path[96];
      if (cms_utf16_len(s, n) < 0) FAIL(x, p, "%s is not valid UTF-8", path_);
      path_of(p, path, sizeof path);
      return cms_verr_set(x->e, path, "%s is not valid JSON text: %s at byte %zu", path, why,
                          at + 1);
    }
    /* the fields of a typed attach or of antispamCustom are checked on the
     * values the text holds: read by lcms_answer.c's reader (the text is
     * checked; nothing to refuse) */
    if (keep_table && lcms_json_push(L, s, n, NULL)) FAIL(x, p, "%s is not valid JSON text", path_);
    lua_pushvalue(L, v);
  } else {
    FAIL(x, p, "%s must be JSON text (a string) or a table, not a %s", path_, luaL_typename(L, v));
  }
  if (want_object) {
    size_t n, k = 0;
    const char *s = lua_tolstring(L, -1, &n);
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r')) k++;
    if (k == n || s[k] != '{') FAIL(x, p, "%s must be a JSON object", path_);
  }
  lua_remove(L, v); /* [table] text */
  return 0;
}

/* msgList[i] at m: checked, then written as one JSON object of the form */
static int encode_msg(enc *x, int m, int i, int ids, cms_msg_view *v) {
  lua_State *L = x->L;
  const cms_msgtype *t = NULL;
  int top = lua_gettop(L), rc, f, ty;
  long long n;
  fval fv[CMS_MF_COUNT];
  fpath p = {i, NULL};
#define AT(name) (p.field = (name), p)
  if (lua_type(L, m) != LUA_TTABLE) {
    char where[32];
    snprintf(where, sizeof where, "msgList[%d]", i);
    return cms_verr_set(x->e, where, "%s must be a message table, not a %s", where,
                        luaL_typename(L, m));
  }
  lua_settop(L, top + CMS_MF_COUNT); /* top+1..top+6: the fields, nil when absent */
  memset(fv, 0, sizeof fv);
  if (collect_fields(x, m, cms_msg_rules, i, top + 1, fv)) return -1;
  memset(v, 0, sizeof *v);
  /* each field is read where collect_fields put it; a text made from a table
   * (attach, ext) is pushed above them and stays there while it is in use */
  f = top + 1 + CMS_MF_MSGID; /* the caller's msgId, or a fresh UUID */
  if ((ty = fv[CMS_MF_MSGID].type) == LUA_TNIL) {
    char u[37];
    if (cms_uuid4(u)) FAIL(x, AT("msgId"), "%s: no random bytes for a msgId", path_);
    lua_pushlstring(L, u, 36);
    lua_replace(L, f);
    v->msgId = lua_tolstring(L, f, &v->msgId_len);
  } else if (ty != LUA_TSTRING) {
    FAIL(x, AT("msgId"), "%s must be a string, not a %s", path_, lua_typename(L, ty));
  } else {
    v->msgId = fv[CMS_MF_MSGID].s, v->msgId_len = fv[CMS_MF_MSGID].n;
  }
  lua_pushvalue(L, f);
  lua_rawseti(L, ids, i);
  f = top + 1 + CMS_MF_MSGTYPE; /* an integer or a name */
  if ((ty = fv[CMS_MF_MSGTYPE].type) == LUA_TSTRING) {
    size_t len = fv[CMS_MF_MSGTYPE].n;
    const char *name = fv[CMS_MF_MSGTYPE].s;
    t = cms_msgtype_by_name(name, len);
    if (!t)
      FAIL(x, AT("msgType"), "%s is \"%.32s\"; allowed: %s", path_, name,
           cms_msg_rules[CMS_MF_MSGTYPE].doc);
    v->has_msgType = 1;
    v->msgType = t->code;
  } else if (ty != LUA_TNIL) {
    if ((rc = typed_integer(L, f, ty, &n)) == -2) IMPRECISE(x, AT("msgType"), f);
    if (rc)
      FAIL(x, AT("msgType"), "%s must be an integer or a type name, not a %s", path_,
           lua_typename(L, ty));
    v->has_msgType = 1;
    v->msgType = n;
    t = cms_msgtype_by_code(n);
  }
  f = top + 1 + CMS_MF_ATTACH; /* as text; JSON types are checked against their schema */
  if (t && (ty = fv[CMS_MF_ATTACH].type) != LUA_TNIL) {
    if (t->attach_json) {
      /* the values only where a schema checks them (custom has none) */
      int schema = t->fields != NULL;
      lua_pushvalue(L, f);
      if (json_value(x, AT("attach"), cms_msg_rules[CMS_MF_ATTACH].max_chars, t->attach_object,
                     schema))
        return -1;
      if (schema) {
        tref r;
        r.L = L;
        r.idx = lua_gettop(L) - 1;
        if (cms_check_attach_fields(t, i, tget, &r, x->e)) return -1;
        lua_remove(L, -2);
      }
      v->attach = lua_tolstring(L, -1, &v->attach_len);
    } else if (ty != LUA_TSTRING) {
      FAIL(x, AT("attach"), "%s must be a string for a %s message, not a %s", path_, t->name,
           lua_typename(L, ty));
    } else {
      v->attach = fv[CMS_MF_ATTACH].s, v->attach_len = fv[CMS_MF_ATTACH].n;
    }
  }
  f = top + 1 + CMS_MF_EXT; /* JSON text or a table */
  if (fv[CMS_MF_EXT].type != LUA_TNIL) {
    lua_pushvalue(L, f);
    if (json_value(x, AT("ext"), cms_msg_rules[CMS_MF_EXT].max_chars, 0, 0)) return -1;
    v->ext = lua_tolstring(L, -1, &v->ext_len);
  }
  f = top + 1 + CMS_MF_SUBTYPE;
  if (fv[CMS_MF_SUBTYPE].type != LUA_TNIL) {
    if ((rc = get_integer(L, f, &n)) == -2) IMPRECISE(x, AT("subType"), f);
    if (rc)
      FAIL(x, AT("subType"), "%s must be an integer > 0, not a %s", path_, luaL_typename(L, f));
    v->has_subType = 1;
    v->subType = n;
  }
  f = top + 1 + CMS_MF_RESENDFLAG; /* 0/1 or a boolean */
  if ((ty = fv[CMS_MF_RESENDFLAG].type) == LUA_TBOOLEAN) {
    v->has_resendFlag = 1;
    v->resendFlag = lua_toboolean(L, f);
  } else if (ty != LUA_TNIL) {
    if ((rc = typed_integer(L, f, ty, &n)) == -2) IMPRECISE(x, AT("resendFlag"), f);
    if (rc)
      FAIL(x, AT("resendFlag"), "%s must be 0, 1 or a boolean, not a %s", path_,
           lua_typename(L, ty));
    v->has_resendFlag = 1;
    v->resendFlag = n;
  }
#undef AT
  if (cms_check_msg(v, i, x->e)) return -1;
  if (cms_form_msg(x->form, v, i == 1)) return oom(x, "msgList");
  return 0; /* the caller drops the fields */
}

/* OpenResty's LuaJIT counts a table's keys in one call (table.nkeys), where
 * a C walk costs a lua_next per key, LuaJIT's dearest API call: kept in the
 * registry under this address by lcms_open_encode, where table.nkeys is
 * loaded or preloaded already (OpenResty's LuaJIT preloads it), absent
 * elsewhere: a require that searched would run any table/nkeys.lua that
 * package.path finds */
static const char nkeys_key = 0;

/* 1 when module is loaded or preloaded: require then runs no searcher */
static int preloaded(lua_State *L, const char *module) {
  int top = lua_gettop(L), found;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  found = lua_istable(L, -1) && (lua_getfield(L, -1, module), !lua_isnil(L, -1));
  lua_settop(L, top);
  if (!found) {
    lua_getglobal(L, "package");
    found = lua_istable(L, -1) && (lua_getfield(L, -1, "preload"), lua_istable(L, -1)) &&
            (lua_getfield(L, -1, module), !lua_isnil(L, -1));
    lua_settop(L, top);
  }
  return found;
}

void lcms_open_encode(lua_State *L) {
  int top = lua_gettop(L);
  if (!preloaded(L, "table.nkeys")) return;
  lua_pushlightuserdata(L, (void *)&nkeys_key);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "table.nkeys");
  /* a builtin, not a Lua function put in its place */
  if (lua_isfunction(L, -2) && lua_pcall(L, 1, 1, 0) == 0 && lua_iscfunction(L, -1))
    lua_rawset(L, LUA_REGISTRYINDEX);
  lua_settop(L, top);
}

/* 1 when table.nkeys is kept and counts #list keys in the table at list
 * (n = #list, 1 to max): then every key is in 1..n once 1..n are seen
 * non-nil; 0 when not known (the caller walks the table) */
static int nkeys_is_len(lua_State *L, int list, size_t max, size_t *n) {
  size_t len = (size_t)lua_rawlen(L, list);
  int ok;
  lua_pushlightuserdata(L, (void *)&nkeys_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (len < 1 || len > max || !lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, list);
  lua_call(L, 1, 1); /* table.nkeys reads raw and runs nothing of the caller's */
  ok = lua_tonumber(L, -1) == (lua_Number)len;
  lua_pop(L, 1);
  *n = len;
  return ok;
}

/* 1 when one of t[from..to] (raw) is nil */
static int has_hole(lua_State *L, int t, int from, int to) {
  int i, nil = 0;
  for (i = from; i <= to && !nil; i++) {
    lua_rawgeti(L, t, i);
    nil = lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  return nil;
}

/* the error of a msgList or toAccids that is not a list */
static int not_a_list(enc *x, const cms_rule *r) {
  return cms_verr_set(x->e, r->name, "%s must be a list (keys 1..n, no holes)", r->name);
}

/* msgList at the top: written into the form */
static int encode_msglist(enc *x, const cms_rule *r, int ids) {
  lua_State *L = x->L;
  int list = lua_gettop(L), i, counted;
  size_t n;
  cms_msg_view views[CMS_MSGLIST_MAX];
  if (lua_type(L, list) != LUA_TTABLE)
    return cms_verr_set(x->e, r->name, "msgList must be a list of messages, not a %s",
                        luaL_typename(L, list));
  /* counted, or walked: a list of 1..n and nothing else */
  counted = nkeys_is_len(L, list, CMS_MSGLIST_MAX, &n);
  if (!counted && seq_len(L, list, &n))
    return not_a_list(x, r);
  if (cms_check_count(r, n, x->e)) return -1;
  cms_form_key(x->form, r->name);
  cms_form_put(x->form, CMS_P_LBRACKET);
  for (i = 1; i <= (int)n; i++) {
    lua_rawgeti(L, list, i);
    if (counted && lua_isnil(L, -1)) /* a hole: the count held another key */
      return not_a_list(x, r);
    if (encode_msg(x, list + 1, i, ids, &views[i - 1])) {
      /* the walk refuses a holed list before it reads a message: so does the
       * count, when a hole it hid comes after the message refused */
      if (counted && has_hole(L, list, i + 1, (int)n))
        return not_a_list(x, r);
      return -1;
    }
    lua_settop(L, list);
  }
  /* the msgIds stay alive in the ids list */
  if (cms_check_unique_msgids(views, (int)n, x->e)) return -1;
  if (cms_form_put(x->form, CMS_P_RBRACKET)) return oom(x, r->name);
  return 0;
}

/* the first bad accid of v[0..n) (1-based), if any, as a validation error */
static int bad_accid(enc *x, const cms_str *v, long bad) {
  char path[32];
  snprintf(path, sizeof path, "toAccids[%ld]", bad);
  return cms_check_accid(path, v[bad - 1].s, v[bad - 1].n, x->e);
}

/* toAccids[i] (1-based) at idx, a string, into v[i - 1]; the strings stay
 * anchored by the list, which no Lua code runs to change.  A non-string is
 * reported after the accids before it are checked, so that the first bad
 * entry is the one named. */
static int take_accid(enc *x, cms_str *v, int i, int idx) {
  lua_State *L = x->L;
  if (lua_type(L, idx) != LUA_TSTRING) {
    char path[32];
    long bad = cms_form_accids(NULL, v, (size_t)i - 1, CMS_ACCID_MAX);
    if (bad > 0) return bad_accid(x, v, bad);
    snprintf(path, sizeof path, "toAccids[%d]", i);
    return cms_verr_set(x->e, path, "%s must be a string (an accid), not a %s", path,
                        luaL_typename(L, idx));
  }
  v[i - 1].s = lua_tolstring(L, idx, &v[i - 1].n);
  return 0;
}

/* a first byte of what lua_tolstring makes of a number: a digit, a sign, a
 * point, or inf/nan */
static int number_like(unsigned char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'i' || c == 'n' ||
         c == 'I' || c == 'N';
}

/* The usual toAccids where table.nkeys is kept: 1..#list and no other key
 * (nkeys == #list), read with lua_rawgeti and lua_tolstring (a string, or a
 * number turned into one on the stack: an entry that may have been a number
 * is looked at again).  0 when this is not known to hold (no nkeys, not a
 * string), and nothing is taken: the other paths say what is wrong. */
static int accids_counted(enc *x, int list, cms_str *v, size_t *n) {
  lua_State *L = x->L;
  int top = lua_gettop(L), i, len;
  if (!nkeys_is_len(L, list, CMS_ACCIDS_MAX, n)) return 0;
  len = (int)*n;
  luaL_checkstack(L, len, "commsease: no room on the Lua stack for toAccids");
  for (i = 0; i < len; i++) {
    lua_rawgeti(L, list, i + 1); /* left on the stack until all are read */
    if (!(v[i].s = lua_tolstring(L, -1, &v[i].n))) goto not_known;
    if (v[i].n && number_like((unsigned char)v[i].s[0])) {
      int ty;
      lua_rawgeti(L, list, i + 1);
      ty = lua_type(L, -1);
      lua_pop(L, 1);
      if (ty != LUA_TSTRING) goto not_known;
    }
  }
  lua_settop(L, top); /* the strings stay anchored by the list */
  return 1;
not_known:
  lua_settop(L, top);
  return 0;
}

/* toAccids at the top: checked, then written into the form.  The usual list
 * is counted with table.nkeys where there is one, or else walked once with
 * lua_next (array order); any other takes the exact path (sequence check,
 * then 1..n). */
static int encode_accids(enc *x, const cms_rule *r) {
  lua_State *L = x->L;
  int list = lua_gettop(L), i = 0, in_order = 1;
  size_t n;
  long bad;
  cms_str v[CMS_ACCIDS_MAX];
  if (lua_type(L, list) != LUA_TTABLE)
    return cms_verr_set(x->e, r->name, "toAccids must be a list of accids, not a %s",
                        luaL_typename(L, list));
  if (accids_counted(x, list, v, &n)) goto write;
  lua_pushnil(L);
  while (lua_next(L, list)) {
    /* anything unusual (a key out of order, a value that is not a string, one
     * too many) takes the exact path, which says what is wrong */
    if (i >= CMS_ACCIDS_MAX || !key_is(L, -2, i + 1) || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 2);
      in_order = 0;
      break;
    }
    v[i].s = lua_tolstring(L, -1, &v[i].n);
    i++;
    lua_pop(L, 1);
  }
  if (in_order) {
    n = (size_t)i;
  } else {
    if (seq_len(L, list, &n))
      return not_a_list(x, r);
    if (cms_check_count(r, n, x->e)) return -1;
    for (i = 1; i <= (int)n; i++) {
      lua_rawgeti(L, list, i);
      if (take_accid(x, v, i, list + 1)) return -1;
      lua_pop(L, 1);
    }
  }
  if (cms_check_count(r, n, x->e)) return -1;
write:
  if (cms_form_key(x->form, r->name) || cms_form_put(x->form, CMS_P_LBRACKET))
    return oom(x, r->name);
  /* checked as written: a bad accid is named by cms_check_accid's message */
  bad = cms_form_accids(x->form, v, n, CMS_ACCID_MAX);
  if (bad > 0) return bad_accid(x, v, bad);
  if (bad < 0 || cms_form_put(x->form, CMS_P_RBRACKET)) return oom(x, r->name);
  return 0;
}

/* antispamCustom: {"type":1|2|3,"data":"..."} and only with antispam=true; the
 * decoded or original table sits at t */
static int check_antispam(enc *x, int t) {
  lua_State *L = x->L;
  long long type = 0;
  int type_ok, data_ok, on;
  /* antispam as collected (raw) from params, not read again */
  lua_pushvalue(L, x->slots + CMS_PR_ANTISPAM);
  on = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_type(L, t) != LUA_TTABLE)
    return cms_verr_set(x->e, "antispamCustom", "antispamCustom must be a JSON object "
                        "{\"type\":1|2|3,\"data\":\"...\"}");
  lua_pushliteral(L, "type");
  lua_rawget(L, t);
  type_ok = get_integer(L, -1, &type) == 0;
  lua_pushliteral(L, "data");
  lua_rawget(L, t);
  data_ok = lua_type(L, -1) == LUA_TSTRING;
  lua_pop(L, 2);
  return cms_check_antispam(on, 1, type, type_ok, data_ok, x->e);
}

/* the value of rule r at the top -> into the form */
static int encode_param(enc *x, const cms_rule *r, int ids) {
  lua_State *L = x->L;
  const char *name = r->name, *s = NULL; /* the wire value: s, len */
  fpath p = {0, name};
  long long n;
  int rc;
  size_t len = 0;
  char num[32];
  switch (r->kind) {
    case CMS_K_MSGLIST: return encode_msglist(x, r, ids);
    case CMS_K_ACCIDS: return encode_accids(x, r);
    case CMS_K_ROOMID:
    case CMS_K_INT:
    case CMS_K_POSINT:
      if ((rc = get_integer(L, -1, &n)) == 0) {
        len = cms_buf_itoa(n, num);
        s = num;
      } else if (rc == -2) {
        IMPRECISE(x, p, -1);
      } else if (lua_type(L, -1) != LUA_TSTRING) {
        FAIL(x, p, "%s must be an integer or a decimal string, not a %s; allowed: %s", path_,
             luaL_typename(L, -1), r->doc);
      }
      break;
    case CMS_K_FLAG:
      if (lua_isboolean(L, -1)) {
        s = lua_toboolean(L, -1) ? "1" : "0";
        len = 1;
      } else if ((rc = get_integer(L, -1, &n)) == 0) {
        len = cms_buf_itoa(n, num);
        s = num;
      } else if (rc == -2) {
        IMPRECISE(x, p, -1);
      } else {
        FAIL(x, p, "%s must be 0, 1 or a boolean, not a %s", path_, luaL_typename(L, -1));
      }
      break;
    case CMS_K_BOOL:
      if (!lua_isboolean(L, -1))
        FAIL(x, p, "%s must be a boolean, not a %s", path_, luaL_typename(L, -1));
      s = lua_toboolean(L, -1) ? "true" : "false";
      len = strlen(s);
      break;
    case CMS_K_JSON: {
      int special = r == &cms_param_rules[CMS_PR_ANTISPAMCUSTOM];
      if (json_value(x, p, r->max_chars, special, special)) return -1;
      if (special) {
        if (check_antispam(x, lua_gettop(L) - 1)) return -1;
        lua_remove(L, -2);
      }
      break;
    }
    case CMS_K_ACCID:
    case CMS_K_TEXT:
      if (lua_type(L, -1) != LUA_TSTRING)
        FAIL(x, p, "%s must be a string, not a %s", path_, luaL_typename(L, -1));
      break;
  }
  if (!s) s = lua_tolstring(L, -1, &len); /* a string (JSON text included) at the top */
  if (cms_check_value(r, name, s, len, x->e)) return -1;
  if (cms_form_key(x->form, name) || cms_form_escape(x->form, s, len)) return oom(x, name);
  return 0;
}

int lcms_encode_params(lua_State *L, int params, cms_buf *form, cms_verr *e) {
  int top = lua_gettop(L), ids, nrules = CMS_PR_COUNT;
  const cms_rule *r;
  fval fv[CMS_PR_COUNT];
  enc x;
  luaL_checkstack(L, 48, "commsease: no room on the Lua stack to encode params");
  params = lua_absindex(L, params);
  x.L = L;
  x.form = form;
  x.e = e;
  x.params = params;
  if (form) cms_buf_reset(form);
  if (lua_type(L, params) != LUA_TTABLE) {
    cms_verr_set(e, "params", "params must be a table, not a %s", luaL_typename(L, params));
    goto fail;
  }
  lua_createtable(L, 10, 0);
  ids = lua_gettop(L);
  lua_settop(L, ids + nrules); /* a nil slot for each rule */
  x.slots = ids + 1;
  memset(fv, 0, sizeof fv);
  if (collect_fields(&x, params, cms_param_rules, 0, ids + 1, fv)) goto fail;
  for (r = cms_param_rules; r->name; r++) {
    int slot = ids + 1 + (int)(r - cms_param_rules);
    if (fv[r - cms_param_rules].type == LUA_TNIL) {
      if (r->required) {
        cms_verr_set(e, r->name, "%s is missing; it is required: %s", r->name, r->doc);
        goto fail;
      }
      continue;
    }
    lua_pushvalue(L, slot);
    if (encode_param(&x, r, ids)) goto fail;
    lua_settop(L, ids + nrules);
  }
  if (form && form->oom) {
    cms_verr_set(e, "params", "out of memory while encoding the form");
    goto fail;
  }
  lua_settop(L, ids); /* leaves the msgIds list */
  return 0;
fail:
  lua_settop(L, top);
  return -1;
}
