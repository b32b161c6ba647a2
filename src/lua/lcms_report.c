/* lcms_report.c -- the report of a fan-out (fanout and plan:report), shaped
 * in Lua: a chunk compiled once when the module opens, kept in the registry.
 * Copying per-message failures into tables is shorter and safer in Lua than
 * in C stack juggling, and runs once per fan-out, off the per-call path. */
#include "lcms.h"

static const char lcms_key_report = 0;

/* report(list, results, pcalls, plan, perr): list = the calls (chunk), results
 * = the per-call { res = } / { err = }, pcalls = plan.calls (origin maps), plan
 * = chunk's plan (messages, recipients), perr = on_progress's error or nil */
static const char report_chunk[] =
  "local function report(list, results, pcalls, plan, perr)\n"
  "  local failures, ok, n = {}, 0, #list\n"
  "  for i = 1, n do\n"
  "    local call, r, origin = list[i], results[i], pcalls[i].origin\n"
  "    local res, err = r.res, r.err\n"
  "    local msgs, call_ok = call.msgList, true\n"
  "    for k = 1, #msgs do\n"
  "      local id = msgs[k].msgId\n"
  "      local failed, code, reason = false, nil, nil\n"
  "      if res then\n"
  "        if res.success[id] == nil then\n"
  "          failed, code, reason = true, 200, res.fail[id]\n"
  "          if reason == nil then reason = 'missing from the answer' end\n"
  "        end\n"
  "      else\n"
  "        failed, code, reason = true, err.code, err.message\n"
  "      end\n"
  "      if failed then\n"
  "        call_ok = false\n"
  "        failures[#failures + 1] = { msgId = origin[id], accids = call.toAccids,\n"
  "                                    code = code, reason = reason, kind = err and err.kind }\n"
  "      end\n"
  "    end\n"
  "    if call_ok then ok = ok + 1 end\n"
  "  end\n"
  "  return { calls = n, ok = ok, failed = n - ok, messages = plan.messages,\n"
  "           recipients = plan.recipients, failures = failures, results = results,\n"
  "           progress_error = perr }\n"
  "end\n"
  "return report\n";

void lcms_open_report(lua_State *L) {
  if (luaL_loadbuffer(L, report_chunk, sizeof report_chunk - 1, "=commsease.report") != LUA_OK)
    lua_error(L);
  lua_call(L, 0, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lcms_key_report);
}

void lcms_push_report(lua_State *L, int list, int results, int pcalls, int plan, int perr) {
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack for the report");
  list = lua_absindex(L, list);
  results = lua_absindex(L, results);
  pcalls = lua_absindex(L, pcalls);
  plan = lua_absindex(L, plan);
  perr = lua_absindex(L, perr);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lcms_key_report);
  lua_pushvalue(L, list);
  lua_pushvalue(L, results);
  lua_pushvalue(L, pcalls);
  lua_pushvalue(L, plan);
  lua_pushvalue(L, perr);
  lua_call(L, 5, 1);
}
