/* lcms_module.c -- luaopen_commsease: the module table, the message builders
 * and the rules table as Lua data. */
#include <string.h>
#include "lcms.h"
#include "cms_sign.h"
#include "lcms_wire.h"

/* --- message builders: never raise; content is checked at send/prepare --- */

/* fields of the message itself that may stand among attach's fields: the
 * message rules marked `lifted` (msgId, subType, resendFlag).  "ext" is not
 * one of them: for image, audio, video and file it is attach's file extension
 * (the message's ext goes in the second argument) */
static int is_msg_field(const char *k) {
  const cms_rule *r;
  for (r = cms_msg_rules; r->name; r++)
    if (r->lifted && strcmp(k, r->name) == 0) return 1;
  return 0;
}

/* a new message table: a shallow copy of the fields table at idx (if any) */
static void new_message(lua_State *L, int fields) {
  lua_createtable(L, 0, 4);
  if (fields && lua_type(L, fields) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, fields)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
}

/* text(s [, fields]), tip(s [, fields]), custom(x [, fields]) */
static int build_with_body(lua_State *L) {
  int code = (int)lua_tointeger(L, lua_upvalueindex(1));
  lua_settop(L, 2);
  new_message(L, 2);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, cms_msg_rules[CMS_MF_MSGTYPE].name);
  lua_pushvalue(L, 1); /* nil leaves attach out (text, tip and custom may) */
  lua_setfield(L, -2, cms_msg_rules[CMS_MF_ATTACH].name);
  return 1;
}

/* image{...} [, fields], and audio, video, location, file alike: msgId,
 * subType and resendFlag go on the message, every other key into attach;
 * the optional second table holds message fields (msgId, ext, ...) */
static int build_from_fields(lua_State *L) {
  int code = (int)lua_tointeger(L, lua_upvalueindex(1));
  lua_settop(L, 2);
  new_message(L, 2); /* 3: message */
  lua_pushinteger(L, code);
  lua_setfield(L, 3, cms_msg_rules[CMS_MF_MSGTYPE].name);
  if (lua_type(L, 1) != LUA_TTABLE) {
    lua_pushvalue(L, 1);
    lua_setfield(L, 3, cms_msg_rules[CMS_MF_ATTACH].name);
    return 1;
  }
  lua_createtable(L, 0, 8); /* 4: attach */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int to_msg = lua_type(L, -2) == LUA_TSTRING && is_msg_field(lua_tostring(L, -2));
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to_msg ? 3 : 4);
  }
  lua_setfield(L, 3, cms_msg_rules[CMS_MF_ATTACH].name);
  return 1;
}

/* --- the rules table, for scripts, docs and the README check --- */

static const char *kind_name(cms_kind k) {
  switch (k) {
    case CMS_K_ROOMID: return "roomid";
    case CMS_K_MSGLIST: return "msglist";
    case CMS_K_ACCID: return "accid";
    case CMS_K_ACCIDS: return "accids";
    case CMS_K_FLAG: return "flag";
    case CMS_K_INT: return "integer";
    case CMS_K_POSINT: return "positive integer";
    case CMS_K_BOOL: return "boolean";
    case CMS_K_JSON: return "json";
    case CMS_K_TEXT: return "text";
  }
  return "?";
}

static void push_rule_list(lua_State *L, const cms_rule *r) {
  int i = 0;
  lua_newtable(L);
  for (; r->name; r++) {
    lua_createtable(L, 0, 7);
    lua_pushstring(L, r->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, kind_name(r->kind));
    lua_setfield(L, -2, "kind");
    lua_pushboolean(L, r->required);
    lua_setfield(L, -2, "required");
    if (r->max_chars) {
      lua_pushinteger(L, r->max_chars);
      lua_setfield(L, -2, "max_chars");
    }
    if (r->max_items) {
      lua_pushinteger(L, r->min_items);
      lua_setfield(L, -2, "min_items");
      lua_pushinteger(L, r->max_items);
      lua_setfield(L, -2, "max_items");
    }
    lua_pushstring(L, r->doc);
    lua_setfield(L, -2, "doc");
    if (r->lifted) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "lifted");
    }
    lua_rawseti(L, -2, ++i);
  }
}

void lcms_push_rules(lua_State *L) {
  const cms_msgtype *t;
  int i = 0;
  lua_createtable(L, 0, 8);
  push_rule_list(L, cms_param_rules);
  lua_setfield(L, -2, "params");
  push_rule_list(L, cms_msg_rules);
  lua_setfield(L, -2, "message");
  lua_newtable(L);
  for (t = cms_msgtypes; t->name; t++) {
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, t->code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, t->event_name);
    lua_setfield(L, -2, "event_name");
    lua_pushboolean(L, t->attach_json);
    lua_setfield(L, -2, "attach_json");
    lua_pushboolean(L, t->attach_required);
    lua_setfield(L, -2, "attach_required");
    if (t->fields) {
      const cms_attach_field *f;
      int k = 0;
      lua_newtable(L);
      for (f = t->fields; f->key; f++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, f->key);
        lua_setfield(L, -2, "key");
        lua_pushstring(L, f->type == CMS_J_STRING ? "string"
                          : f->type == CMS_J_INTEGER ? "integer" : "number");
        lua_setfield(L, -2, "type");
        lua_pushboolean(L, f->required);
        lua_setfield(L, -2, "required");
        lua_rawseti(L, -2, ++k);
      }
      lua_setfield(L, -2, "attach_fields");
    }
    lua_rawseti(L, -2, ++i);
  }
  lua_setfield(L, -2, "msgtypes");
  {
    const cms_api_code *k;
    lua_newtable(L);
    for (k = cms_api_codes, i = 0; k->code; k++) {
      lua_createtable(L, 0, 3);
      lua_pushinteger(L, k->code);
      lua_setfield(L, -2, "code");
      lua_pushboolean(L, k->retryable);
      lua_setfield(L, -2, "retryable");
      lua_pushstring(L, k->desc);
      lua_setfield(L, -2, "desc");
      lua_rawseti(L, -2, ++i);
    }
    lua_setfield(L, -2, "codes");
  }
  lua_pushinteger(L, CMS_ACCID_MAX);
  lua_setfield(L, -2, "accid_max_chars");
  lua_pushinteger(L, CMS_MAX_NONCE);
  lua_setfield(L, -2, "nonce_max_chars");
  lua_pushinteger(L, CMS_CURTIME_WINDOW);
  lua_setfield(L, -2, "curtime_window");
  lua_pushinteger(L, CMS_MAX_ANSWER);
  lua_setfield(L, -2, "max_answer_bytes");
  lua_pushliteral(L, CMS_API_PATH);
  lua_setfield(L, -2, "path");
}

/* commsease.checksum(secret, nonce, curtime) -> lowercase hex SHA1 */
static int l_checksum(lua_State *L) {
  size_t n;
  const char *secret = luaL_checklstring(L, 1, &n);
  const char *nonce = luaL_checkstring(L, 2);
  const char *curtime = luaL_checkstring(L, 3);
  char out[41];
  if (cms_checksum(NULL, secret, n, nonce, curtime, out))
    return luaL_error(L, "commsease.checksum: libcrypto failed");
  lua_pushstring(L, out);
  return 1;
}

__attribute__((visibility("default"))) int luaopen_commsease(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", lcms_new}, {"parse", lcms_parse}, {"checksum", l_checksum},
    {"chunk", lcms_chunk}, {"verify_webhook", lcms_verify_webhook}, {NULL, NULL}};
  const cms_msgtype *t;
  cms_http_global_init();
  lcms_open_json(L);
  lcms_open_encode(L);
  lcms_open_errors(L);
  lcms_open_client(L);
  luaL_newlib(L, funcs);
  /* one builder per message type of the rules: a type whose attach has a
   * schema takes its fields (image{...}), the others take the body */
  for (t = cms_msgtypes; t->name; t++) {
    lua_pushinteger(L, t->code);
    lua_pushcclosure(L, t->fields ? build_from_fields : build_with_body, 1);
    lua_setfield(L, -2, t->name);
  }
  lcms_push_rules(L);
  lua_setfield(L, -2, "rules");
  lcms_push_prometheus(L);
  lua_setfield(L, -2, "prometheus");
  lua_pushliteral(L, "commsease " LCMS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
