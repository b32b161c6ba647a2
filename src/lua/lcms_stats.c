/* lcms_stats.c -- client:stats() as a Lua table from the client's cms_stats
 * (src/core/cms_stats.c counts; nothing here holds the secret), and
 * commsease.prometheus(stats [, labels]), which turns that table into the
 * Prometheus text exposition format (HELP and TYPE once per family, label
 * values escaped).  The formatting is Lua, compiled once when the module
 * opens: it runs when a scrape asks, off the per-call path. */
#include <stdio.h>
#include "lcms.h"
#include "lcms_wire.h"
#include "cms_stats.h"

static const char prometheus_chunk[] =
  "local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error\n"
  "local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor\n"
  "local HUGE = math.huge\n"
  "local RESERVED = { path = true, quantile = true, code = true, status = true, kind = true,\n"
  "                   value = true, le = true }\n"
  "\n"
  "local function num(v)\n"
  "  if v ~= v then return \"NaN\" end\n"
  "  if v == HUGE then return \"+Inf\" end\n"
  "  if v == -HUGE then return \"-Inf\" end\n"
  "  if v == floor(v) and v > -2^53 and v < 2^53 then return format(\"%d\", v) end\n"
  "  return format(\"%.9g\", v)\n"
  "end\n"
  "\n"
  "local function esc_label(v)\n"
  "  return (tostring(v):gsub(\"[\\\\\\\"\\n]\", { [\"\\\\\"] = \"\\\\\\\\\", ['\"'] = '\\\\\"', [\"\\n\"] = \"\\\\n\" }))\n"
  "end\n"
  "\n"
  "local function esc_help(v)\n"
  "  return (v:gsub(\"[\\\\\\n]\", { [\"\\\\\"] = \"\\\\\\\\\", [\"\\n\"] = \"\\\\n\" }))\n"
  "end\n"
  "\n"
  "local function sorted_keys(t)\n"
  "  local ks = {}\n"
  "  for k in pairs(t) do ks[#ks + 1] = k end\n"
  "  sort(ks, function(a, b)\n"
  "    local ta, tb = type(a), type(b)\n"
  "    if ta ~= tb then return ta < tb end\n"
  "    return a < b\n"
  "  end)\n"
  "  return ks\n"
  "end\n"
  "\n"
  "local function prometheus(stats, labels)\n"
  "  if type(stats) ~= \"table\" then\n"
  "    error(\"bad argument #1 to 'prometheus' (a table from client:stats() expected)\", 2)\n"
  "  end\n"
  "  if labels ~= nil and type(labels) ~= \"table\" then\n"
  "    error(\"bad argument #2 to 'prometheus' (a table of label names and values expected)\", 2)\n"
  "  end\n"
  "  local const = {}\n"
  "  for _, k in ipairs(sorted_keys(labels or {})) do\n"
  "    local v = labels[k]\n"
  "    if type(k) ~= \"string\" or not k:match(\"^[%a_][%w_]*$\") or k:sub(1, 2) == \"__\" then\n"
  "      error(\"bad argument #2 to 'prometheus' (label name '\" .. tostring(k) ..\n"
  "            \"' must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __)\", 2)\n"
  "    end\n"
  "    if RESERVED[k] then\n"
  "      error(\"bad argument #2 to 'prometheus' (label name '\" .. k .. \"' is used by the metrics)\", 2)\n"
  "    end\n"
  "    if type(v) ~= \"string\" and type(v) ~= \"number\" then\n"
  "      error(\"bad argument #2 to 'prometheus' (label '\" .. k .. \"' must be a string or a number)\", 2)\n"
  "    end\n"
  "    const[#const + 1] = k .. '=\"' .. esc_label(v) .. '\"'\n"
  "  end\n"
  "  local out = {}\n"
  "  local function family(name, typ, help)\n"
  "    out[#out + 1] = \"# HELP \" .. name .. \" \" .. esc_help(help)\n"
  "    out[#out + 1] = \"# TYPE \" .. name .. \" \" .. typ\n"
  "  end\n"
  "  local function sample(name, value, lname, lvalue, lname2, lvalue2)\n"
  "    local l = {}\n"
  "    for i = 1, #const do l[i] = const[i] end\n"
  "    if lname then l[#l + 1] = lname .. '=\"' .. esc_label(lvalue) .. '\"' end\n"
  "    if lname2 then l[#l + 1] = lname2 .. '=\"' .. esc_label(lvalue2) .. '\"' end\n"
  "    if #l > 0 then\n"
  "      out[#out + 1] = name .. \"{\" .. concat(l, \",\") .. \"} \" .. num(value)\n"
  "    else\n"
  "      out[#out + 1] = name .. \" \" .. num(value)\n"
  "    end\n"
  "  end\n"
  "  local paths = stats.paths or {}\n"
  "  local pkeys = sorted_keys(paths)\n"
  "  local function per_path(name, typ, help, field)\n"
  "    family(name, typ, help)\n"
  "    for _, p in ipairs(pkeys) do sample(name, paths[p][field] or 0, \"path\", p) end\n"
  "  end\n"
  "  per_path(\"commsease_calls_total\", \"counter\", \"Calls made by the client, per API path.\", \"calls\")\n"
  "  per_path(\"commsease_attempts_total\", \"counter\",\n"
  "           \"Attempts (HTTP requests) made by the client, per API path.\", \"attempts\")\n"
  "  family(\"commsease_call_duration_seconds\", \"summary\",\n"
  "         \"Call latency from the first attempt to the final answer, per API path.\")\n"
  "  for _, p in ipairs(pkeys) do\n"
  "    local lat = paths[p].latency or {}\n"
  "    for _, q in ipairs({ { \"0.5\", \"p50\" }, { \"0.9\", \"p90\" }, { \"0.99\", \"p99\" } }) do\n"
  "      sample(\"commsease_call_duration_seconds\", lat[q[2]] or 0, \"path\", p, \"quantile\", q[1])\n"
  "    end\n"
  "    sample(\"commsease_call_duration_seconds_sum\", lat.sum or 0, \"path\", p)\n"
  "    sample(\"commsease_call_duration_seconds_count\", lat.count or 0, \"path\", p)\n"
  "  end\n"
  "  family(\"commsease_call_duration_max_seconds\", \"gauge\", \"The slowest call so far, per API path.\")\n"
  "  for _, p in ipairs(pkeys) do\n"
  "    sample(\"commsease_call_duration_max_seconds\", (paths[p].latency or {}).max or 0, \"path\", p)\n"
  "  end\n"
  "  local function by_key(name, help, t, lname)\n"
  "    family(name, \"counter\", help)\n"
  "    for _, k in ipairs(sorted_keys(t or {})) do sample(name, t[k], lname, k) end\n"
  "  end\n"
  "  by_key(\"commsease_answers_total\", \"Answers by the API code in their JSON.\", stats.codes, \"code\")\n"
  "  by_key(\"commsease_http_responses_total\", \"Answers by HTTP status.\", stats.http, \"status\")\n"
  "  by_key(\"commsease_transport_failures_total\", \"Attempts that got no answer, by kind.\",\n"
  "         stats.transport, \"kind\")\n"
  "  local singles = {\n"
  "    { \"resends\", \"commsease_resends_total\", \"Attempts sent again with resendFlag = 1.\" },\n"
  "    { \"pauses\", \"commsease_rate_limit_pauses_total\", \"Answers with code 416: the client paused.\" },\n"
  "    { \"repeats\", \"commsease_repeated_requests_total\",\n"
  "      \"Answers with code 431 (RequestId already processed) learnt from by a resend.\" },\n"
  "    { \"rate_store_fallbacks\", \"commsease_rate_store_fallbacks_total\",\n"
  "      \"Times the shared rate store could not be reached and local pacing served.\" },\n"
  "  }\n"
  "  local done = { paths = true, codes = true, http = true, transport = true, hooks = true }\n"
  "  for _, s in ipairs(singles) do\n"
  "    done[s[1]] = true\n"
  "    if stats[s[1]] ~= nil then\n"
  "      family(s[2], \"counter\", s[3])\n"
  "      sample(s[2], stats[s[1]])\n"
  "    end\n"
  "  end\n"
  "  if type(stats.hooks) == \"table\" then\n"
  "    family(\"commsease_hook_calls_total\", \"counter\", \"Calls of the on_attempt hook.\")\n"
  "    sample(\"commsease_hook_calls_total\", stats.hooks.calls or 0)\n"
  "    family(\"commsease_hook_errors_total\", \"counter\", \"Errors raised by the on_attempt hook (caught).\")\n"
  "    sample(\"commsease_hook_errors_total\", stats.hooks.errors or 0)\n"
  "  end\n"
  "  -- any further field: numbers as gauges, strings as an info metric\n"
  "  for _, k in ipairs(sorted_keys(stats)) do\n"
  "    local v = stats[k]\n"
  "    if not done[k] and type(k) == \"string\" and k:match(\"^[%a_][%w_]*$\") then\n"
  "      if type(v) == \"number\" then\n"
  "        family(\"commsease_\" .. k, \"gauge\", \"client:stats().\" .. k)\n"
  "        sample(\"commsease_\" .. k, v)\n"
  "      elseif type(v) == \"string\" then\n"
  "        family(\"commsease_\" .. k .. \"_info\", \"gauge\", \"client:stats().\" .. k .. \" as a label\")\n"
  "        sample(\"commsease_\" .. k .. \"_info\", 1, \"value\", v)\n"
  "      elseif type(v) == \"boolean\" then\n"
  "        family(\"commsease_\" .. k, \"gauge\", \"client:stats().\" .. k .. \" (1 true, 0 false)\")\n"
  "        sample(\"commsease_\" .. k, v and 1 or 0)\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "  out[#out + 1] = \"\"\n"
  "  return concat(out, \"\\n\")\n"
  "end\n"
  "return prometheus\n"
  "\n"
  ;

void lcms_push_prometheus(lua_State *L) {
  if (luaL_loadbuffer(L, prometheus_chunk, sizeof prometheus_chunk - 1, "=commsease.prometheus") !=
      LUA_OK)
    lua_error(L);
  lua_call(L, 0, 1);
}

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, unsigned long long v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void push_counts(lua_State *L, const cms_count *t, int n, unsigned long long other) {
  int i;
  lua_createtable(L, 0, n + 1);
  for (i = 0; i < n; i++) { /* string keys: the table encodes as a JSON object */
    char key[24];
    snprintf(key, sizeof key, "%lld", t[i].key);
    lua_pushinteger(L, (lua_Integer)t[i].n);
    lua_setfield(L, -2, key);
  }
  if (other) set_int(L, "other", other);
}

static void push_path(lua_State *L, const cms_stats_path *p) {
  const cms_hist *h = &p->latency;
  lua_createtable(L, 0, 3);
  set_int(L, "calls", p->calls);
  set_int(L, "attempts", p->attempts);
  lua_createtable(L, 0, 6);
  set_int(L, "count", h->count);
  set_num(L, "sum", h->sum);
  set_num(L, "p50", cms_hist_quantile(h, 0.5));
  set_num(L, "p90", cms_hist_quantile(h, 0.9));
  set_num(L, "p99", cms_hist_quantile(h, 0.99));
  set_num(L, "max", h->max);
  lua_setfield(L, -2, "latency");
}

void lcms_push_stats(lua_State *L, const cms_stats *s) {
  int i;
  luaL_checkstack(L, 8, "commsease: no room on the Lua stack for the stats");
  lua_createtable(L, 0, 10);
  lua_createtable(L, 0, 4); /* paths */
  for (i = 0; i <= CMS_STATS_PATHS; i++) {
    const cms_stats_path *p = &s->paths[i];
    if (!p->path[0] || (i == CMS_STATS_PATHS && !p->calls && !p->attempts)) continue;
    push_path(L, p);
    lua_setfield(L, -2, p->path);
  }
  lua_setfield(L, -2, "paths");
  push_counts(L, s->codes, s->ncodes, s->codes_other);
  lua_setfield(L, -2, "codes");
  push_counts(L, s->http, s->nhttp, s->http_other);
  lua_setfield(L, -2, "http");
  lua_createtable(L, 0, CMS_TF_KINDS);
  for (i = 0; i < CMS_TF_KINDS; i++) set_int(L, cms_tfail_names[i], s->transport[i]);
  lua_setfield(L, -2, "transport");
  set_int(L, "resends", s->resends);
  set_int(L, "pauses", s->pauses);
  set_int(L, "repeats", s->repeats);
  lua_createtable(L, 0, 2);
  set_int(L, "calls", s->hook_calls);
  set_int(L, "errors", s->hook_errors);
  lua_setfield(L, -2, "hooks");
}
