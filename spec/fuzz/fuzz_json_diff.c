/* fuzz_json_diff.c -- differential libFuzzer target: the project's JSON
 * scanner (src/core/cms_json.c) and reader (src/lua/lcms_answer.c) against
 * lua-cjson and cJSON, on the same bytes.  Built and run by spec/fuzz/run.sh;
 * not part of `make test`.  Any difference abort()s with the input.
 *
 * Every input is read as a JSON text by all three:
 *   verdict   cms_json_scan (the lax level, for answers) accepts  =>  lua-cjson (a private cjson.new() with
 *             decode_invalid_numbers(false), as strict as it goes) and cJSON
 *             (cJSON_ParseWithLengthOpts, the whole input up to trailing white
 *             space) both accept;
 *             both accept => cms_json_scan accepts, unless it names one of the
 *             two documented differences, checked here independently: a NUL
 *             byte is in the input (lua-cjson stops at it, cJSON skips it), or
 *             the number at the offset it names does not match RFC 8259's
 *             grammar (regcomp/regexec) though strtod takes it ("1.", "01");
 *   strict    the strict level (cms_json_check, request fields) accepts only
 *             what the lax one accepts, and refuses more only for a raw
 *             control byte (checked at the offset) or a text that is not UTF-8
 *             (checked with cms_utf16_len);
 *   values    for an accepted text, lcms_json_push gives a value deep-equal to
 *             cjson.decode's (types, float bits, string bytes, keys) and to
 *             cJSON's tree (the last of repeated keys; texts with an escaped
 *             NUL, which cuts cJSON's C strings short, with lua-cjson's only);
 *             integer literals beyond 2^53 come back as their digits (the
 *             answers' rule): lua-cjson gets them quoted first, and the digits
 *             must read as cJSON's double;
 *   answers   lcms_answer_read on the input gives the same result (the res
 *             table, or the error's kind and message; full records, and with
 *             LCMS_ANSWER_OUTCOMES each record's time only) as a reference written
 *             in Lua over cjson.decode: the answer semantics of lcms_parse.c
 *             (a NUL refused, big integers exact, time/roomId/type integers).
 */
#define _GNU_SOURCE /* memmem */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_answer.h"
#include "cms_json.h"
#include "cms_rules.h"

int luaopen_commsease(lua_State *L);
int lcms_json_push(lua_State *L, const char *s, size_t n, const char **why);
int lcms_answer_read(lua_State *L, const char *body, size_t len, int msgids,
                     const char *request_id, const char *endpoint, long long *api_code,
                     unsigned flags);
#define LCMS_ANSWER_OUTCOMES 1u

#define FAIL(...)                                                 \
  do {                                                            \
    fprintf(stderr, "fuzz_json_diff: " __VA_ARGS__);              \
    fputc('\n', stderr);                                          \
    abort();                                                      \
  } while (0)

static lua_State *L;
static regex_t rfc_number;
static long runs;

/* quote_big(text): the text with every integer literal beyond 2^53 quoted,
 * so that lua-cjson gives its digits as a string (src/core/cms_answer.c finds
 * them, for lcms_parse.c before the reader: the rule the reader follows) */
static int quote_big(lua_State *L) {
  size_t n, pos = 0, len = 0, done = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  int r;
  luaL_buffinit(L, &b);
  while ((r = cms_answer_next_big(s, n, &pos, &len)) == 1) {
    luaL_addlstring(&b, s + done, pos - done);
    luaL_addchar(&b, '"');
    luaL_addlstring(&b, s + pos, len);
    luaL_addchar(&b, '"');
    done = pos += len;
  }
  luaL_addlstring(&b, s + done, n - done);
  luaL_pushresult(&b);
  return 1;
}

/* the reference: cjson.decode (big integers quoted first), then what
 * lcms_parse.c does with a decoded answer */
static const char *reference_lua =
  "local cjson = require 'cjson'\n"
  "local strict = cjson.new()\n"
  "strict.decode_invalid_numbers(false)\n"
  "local encoder = cjson.new()\n"
  "encoder.encode_max_depth(32)\n"
  "local function encode(v)\n"
  "  local ok, s = pcall(encoder.encode, v)\n"
  "  if not ok then return nil end\n"
  "  -- lcms_json.c writes lua-cjson's \\/ back as /\n"
  "  return (s:gsub('\\\\(.)', function(c) if c == '/' then return '/' end return '\\\\' .. c end))\n"
  "end\n"
  "local function to_int(v)\n"
  "  if math.type(v) == 'integer' then return v end\n"

  "  if type(v) == 'number' then\n"
  "    if v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) or math.abs(v) > 9.2e18 then return nil end\n"
  "    return math.tointeger(v)\n"
  "  end\n"
  "  if type(v) == 'string' then -- a decimal int64, as cms_parse_int64 reads it\n"
  "    local neg, d = v:match('^(%-?)(%d+)$')\n"
  "    if not d then return nil end\n"
  "    d = d:gsub('^0+', '')\n"
  "    local lim = neg == '-' and '9223372036854775808' or '9223372036854775807'\n"
  "    if #d > 19 or (#d == 19 and d > lim) then return nil end\n"
  "    return math.tointeger(tonumber(v))\n"
  "  end\n"
  "end\n"
  "local function collect(ans, key, is_success)\n"
  "  local list, out = rawget(ans, key), {}\n"
  "  if list == nil or list == cjson.null then return out end\n"
  "  if type(list) ~= 'table' then return nil end\n"
  "  local keys = 0\n"
  "  for _ in next, list do keys = keys + 1 end\n"
  "  if keys ~= #list then return nil end\n"
  "  for i = 1, #list do\n"
  "    local e = list[i]\n"
  "    if type(e) ~= 'table' then return nil end\n"
  "    for id, v in next, e do\n"
  "      if type(id) ~= 'string' then return nil end\n"
  "      if is_success then\n"
  "        if type(v) ~= 'table' then return nil end\n"
  "        for _, f in ipairs{'time', 'roomId', 'type'} do\n"
  "          if rawget(v, f) ~= nil then\n"
  "            local n = to_int(rawget(v, f))\n"
  "            if n == nil then return nil end\n"
  "            rawset(v, f, n)\n"
  "          end\n"
  "        end\n"
  "      elseif type(v) ~= 'string' then\n"
  "        v = encode(v)\n"
  "        if v == nil then return nil end\n"
  "      end\n"
  "      out[id] = v\n"
  "    end\n"
  "  end\n"
  "  return out\n"
  "end\n"
  "local function answer(body)\n"
  "  if body:find('%z') then return nil, 'response', 'the answer holds a NUL byte (JSON text never does)' end\n"
  "  -- valid JSON as it came (quoting a big integer key would make it valid)\n"
  "  if not pcall(strict.decode, body) then return nil, 'response', 'the answer is not a JSON object' end\n"
  "  local ok, ans = pcall(strict.decode, quote_big(body))\n"
  "  if not ok or type(ans) ~= 'table' then return nil, 'response', 'the answer is not a JSON object' end\n"
  "  local code = to_int(rawget(ans, 'code'))\n"
  "  if code == nil then return nil, 'response', 'the answer has no numeric code' end\n"
  "  if code ~= 200 then\n"
  "    local desc = rawget(ans, 'desc')\n"
  "    if type(desc) == 'table' then desc = encode(desc) or desc end\n"
  "    if type(desc) == 'string' then desc = desc:match('^[^%z]*') end -- a C string in the error\n"
  "    if type(desc) ~= 'string' or desc == '' then desc = 'the service refused the call (no desc)' end\n"
  "    return nil, 'api', desc\n"
  "  end\n"
  "  local s = collect(ans, 'success', true)\n"
  "  if not s then return nil, 'response', \"the answer's success list is malformed\" end\n"
  "  local f = collect(ans, 'fail', false)\n"
  "  if not f then return nil, 'response', \"the answer's fail list is malformed\" end\n"
  "  return {code = 200, success = s, fail = f}\n"
  "end\n"
  "local function same(a, b, seen)\n"
  "  if type(a) ~= type(b) then return false end\n"
  "  if type(a) == 'number' then\n"
  "    if math.type(a) ~= math.type(b) then return false end\n"
  "    if a ~= a then return b ~= b end\n"
  "    return a == b and (a ~= 0 or 1 / a == 1 / b)\n"
  "  end\n"
  "  if type(a) ~= 'table' then return a == b end\n"
  "  for k, v in next, a do if not same(v, rawget(b, k)) then return false end end\n"
  "  for k in next, b do if rawget(a, k) == nil then return false end end\n"
  "  return true\n"
  "end\n"
  "-- results = 'outcomes': each record as its time, or true\n"
  "local function outcomes(body)\n"
  "  local res, kind, msg = answer(body)\n"
  "  if res then\n"
  "    for id, rec in next, res.success do\n"
  "      local t = rawget(rec, 'time')\n"
  "      if t == nil then t = true end\n"
  "      res.success[id] = t\n"
  "    end\n"
  "  end\n"
  "  return res, kind, msg\n"
  "end\n"
  "return function(s) strict.decode(s) return strict.decode(quote_big(s)) end, answer, same, outcomes\n";

enum { R_DECODE = 1, R_ANSWER, R_SAME, R_OUTCOMES };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "commsease", luaopen_commsease, 0); /* errors' metatable, private cjson */
  lua_pop(L, 1);
  lua_pushcfunction(L, quote_big);
  lua_setglobal(L, "quote_big");
  if (luaL_loadstring(L, reference_lua) || lua_pcall(L, 0, 4, 0))
    FAIL("reference: %s", lua_tostring(L, -1));
  /* stack: 1 decode, 2 answer, 3 same, 4 outcomes */
  if (regcomp(&rfc_number, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?$",
              REG_EXTENDED | REG_NOSUB))
    FAIL("regcomp");
  return 0;
}

static int cjson_c_accepts(const char *s, size_t n, cJSON **out) {
  const char *end = NULL;
  cJSON *v;
  *out = NULL;
  if (n == 0) return 0;
  v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!v) return 0;
  while (end < s + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
  if (end != s + n) {
    cJSON_Delete(v);
    return 0;
  }
  *out = v;
  return 1;
}

/* the Lua value at idx equals cJSON's item */
static int same_as_cjson(int idx, const cJSON *c, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > 1100) FAIL("deeper than the scanner allows");
  if (cJSON_IsNull(c)) return lua_type(L, idx) == LUA_TLIGHTUSERDATA && !lua_touserdata(L, idx);
  if (cJSON_IsTrue(c)) return lua_type(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, idx);
  if (cJSON_IsFalse(c)) return lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx);
  if (cJSON_IsNumber(c)) {
    double a, b = c->valuedouble;
    if (lua_type(L, idx) == LUA_TSTRING) { /* an integer beyond 2^53: its digits */
      const char *d = lua_tostring(L, idx);
      size_t k = d[0] == '-';
      if (!d[k]) return 0;
      for (; d[k]; k++)
        if (d[k] < '0' || d[k] > '9') return 0;
      a = strtod(d, NULL);
      return fabs(a) >= 9007199254740992.0 && memcmp(&a, &b, sizeof a) == 0;
    }
    if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx)) return 0;
    a = (double)lua_tonumber(L, idx);
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
  }
  if (cJSON_IsString(c)) {
    size_t n, cn = strlen(c->valuestring);
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING) return 0;
    s = lua_tolstring(L, idx, &n);
    return n == cn && memcmp(s, c->valuestring, n) == 0;
  }
  if (cJSON_IsArray(c)) {
    const cJSON *e;
    lua_Integer i = 0;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    cJSON_ArrayForEach(e, c) {
      int ok;
      lua_rawgeti(L, idx, ++i);
      ok = same_as_cjson(-1, e, depth + 1);
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    return (lua_Integer)lua_rawlen(L, idx) == i;
  }
  if (cJSON_IsObject(c)) {
    const cJSON *e, *later;
    size_t distinct = 0, keys = 0;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    cJSON_ArrayForEach(e, c) {
      int ok, dup = 0;
      /* the last member of a name is the one a table keeps */
      for (later = e->next; later && !dup; later = later->next)
        dup = strcmp(later->string, e->string) == 0;
      if (dup) continue;
      distinct++;
      lua_pushstring(L, e->string);
      lua_rawget(L, idx);
      ok = same_as_cjson(-1, e, depth + 1);
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      keys++;
    }
    return keys == distinct;
  }
  return 0;
}

/* the number at s[at..] as strtod would read it, against the RFC grammar */
static int number_outside_rfc(const uint8_t *s, size_t n, size_t at) {
  char *tok = malloc(n - at + 1);
  size_t k = 0;
  int outside;
  if (!tok) FAIL("out of memory");
  while (at + k < n && s[at + k] && strchr("0123456789+-.eE", s[at + k]))
    tok[k] = (char)s[at + k], k++;
  tok[k] = '\0';
  outside = k > 0 && regexec(&rfc_number, tok, 0, NULL, 0) != 0;
  free(tok);
  return outside;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  cms_json_info sc;
  cJSON *tree = NULL;
  int mine, lua_ok, c_ok, mode, top = lua_gettop(L);
  memset(&sc, 0, sizeof sc);
  mine = cms_json_scan(s, size, 0, &sc) == 0;
  lua_pushvalue(L, R_DECODE);
  lua_pushlstring(L, s, size);
  lua_ok = lua_pcall(L, 1, 1, 0) == LUA_OK; /* top+1: the decoded value or the message */
  c_ok = cjson_c_accepts(s, size, &tree);
  if (mine && !(lua_ok && c_ok))
    FAIL("accepted what %s refuses (%zu bytes)", lua_ok ? "cJSON" : "lua-cjson", size);
  if (!mine && lua_ok && c_ok) {
    if (sc.status == CMS_JSON_E_NUL) {
      if (!memchr(s, 0, size)) FAIL("refused for a NUL there is not");
    } else if (sc.status == CMS_JSON_E_NUMBER) {
      if (!number_outside_rfc(data, size, sc.offset))
        FAIL("refused an RFC 8259 number at %zu", sc.offset);
    } else {
      FAIL("refused what both libraries accept: %s at %zu", cms_json_strerror(sc.status),
           sc.offset);
    }
  }
  {
    cms_json_info st;
    int strict;
    memset(&st, 0, sizeof st);
    strict = cms_json_scan(s, size, CMS_JSON_STRICT, &st) == 0;
    if (strict && !mine) FAIL("the strict level accepts what the lax one refuses");
    if (mine && !strict) {
      if (st.status == CMS_JSON_E_CONTROL) {
        if (st.offset >= size || data[st.offset] >= 0x20 || data[st.offset] == 0)
          FAIL("refused for a control byte there is not (at %zu)", st.offset);
      } else if (st.status == CMS_JSON_E_UTF8) {
        if (cms_utf16_len(s, size) >= 0) FAIL("refused valid UTF-8 (at %zu)", st.offset);
      } else {
        FAIL("the strict level refuses more than strings: %s", cms_json_strerror(st.status));
      }
    }
  }
  if (mine) {
    const char *why = NULL;
    if (lcms_json_push(L, s, size, &why)) FAIL("the reader refused a checked text: %s", why);
    /* top+2: ours; compare with lua-cjson's, then with cJSON's */
    lua_pushvalue(L, R_SAME);
    lua_pushvalue(L, top + 2);
    lua_pushvalue(L, top + 1);
    lua_call(L, 2, 1);
    if (!lua_toboolean(L, -1)) FAIL("the reader's value differs from lua-cjson's");
    lua_pop(L, 1);
    /* cJSON's strings are C strings: an escaped NUL cuts them (and keys) short */
    if (!memmem(s, size, "\\u0000", 6) && !same_as_cjson(top + 2, tree, 0))
      FAIL("the reader's value differs from cJSON's");
  }
  cJSON_Delete(tree);
  lua_settop(L, top);
  /* the answer: the reader against the reference, full records and outcomes */
  for (mode = 0; mode < 2; mode++) {
    int nres = lcms_answer_read(L, s, size, 0, NULL, NULL, NULL,
                                mode ? LCMS_ANSWER_OUTCOMES : 0); /* top+1 (.. top+2) */
    int ref_base = lua_gettop(L);
    lua_pushvalue(L, mode ? R_OUTCOMES : R_ANSWER);
    lua_pushlstring(L, s, size);
    lua_call(L, 1, 3); /* res | nil, kind, message */
    if (!mine && sc.status == CMS_JSON_E_NUMBER && !memchr(s, 0, size)) {
      /* the documented difference: lua-cjson reads "1." as 1 (and cJSON "01");
       * the reader must refuse such a text as not JSON */
      lua_getfield(L, top + 2, "message");
      if (nres != 2 || !lua_isstring(L, -1) ||
          strcmp(lua_tostring(L, -1), "the answer is not a JSON object") != 0)
        FAIL("a text refused for its number was read as an answer");
      lua_settop(L, top);
      continue;
    }
    if (nres == 1) {
      if (lua_isnil(L, ref_base + 1)) FAIL("the reader read an answer the reference refuses: %s",
                                           lua_tostring(L, ref_base + 3));
      lua_pushvalue(L, R_SAME);
      lua_pushvalue(L, top + 1);
      lua_pushvalue(L, ref_base + 1);
      lua_call(L, 2, 1);
      if (!lua_toboolean(L, -1))
        FAIL("the result tables differ from the reference's (%s)", mode ? "outcomes" : "full");
    } else {
      const char *kind, *msg, *rkind, *rmsg;
      if (!lua_isnil(L, ref_base + 1)) {
        lua_getfield(L, top + 2, "message");
        FAIL("the reader refused an answer the reference reads: %s", lua_tostring(L, -1));
      }
      lua_getfield(L, top + 2, "kind");
      lua_getfield(L, top + 2, "message");
      kind = lua_tostring(L, -2);
      msg = lua_tostring(L, -1);
      rkind = lua_tostring(L, ref_base + 2);
      rmsg = lua_tostring(L, ref_base + 3);
      if (!kind || !msg || strcmp(kind, rkind) || strcmp(msg, rmsg))
        FAIL("errors differ: %s/%s against the reference's %s/%s", kind ? kind : "?",
             msg ? msg : "?", rkind, rmsg);
    }
    lua_settop(L, top);
  }
  lua_settop(L, top);
  if (++runs % 4096 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
