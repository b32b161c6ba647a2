-- commsease: CommsEase (NetEase IM) chat-room batch messages to chosen members,
-- from Lua.  The Makefile is the primary build; this rockspec builds the same
-- sources with LuaRocks' builtin backend and is checked by rockspec/check.sh.
rockspec_format = "3.0"
package = "commsease"
version = "scm-1"

source = {
   url = "git+https://github.com/commsease/commsease-lua.git",
   branch = "main",
}

description = {
   summary = "CommsEase (NetEase IM) chat-room batch messages to chosen members",
   detailed = [[
A C module for Lua that sends chatroom/batchSendMsgToSomeone.action calls:
up to 10 messages to up to 100 members of one chat room, validated locally
against the API's documented rules, signed (AppKey, Nonce, CurTime, CheckSum)
and sent over one kept-alive libcurl connection per client, with structured
error values and no automatic replay of requests that may have been sent.
]],
   homepage = "https://github.com/commsease/commsease-lua",
   license = "MIT",
   labels = { "im", "chat", "netease", "commsease", "http" },
}

dependencies = {
   "lua >= 5.1", -- 5.1, 5.2, 5.3, 5.4, LuaJIT; below 5.3 it needs lua-compat-5.3's
                 -- compat-5.3.h beside lua.h (Debian: lua-compat53-dev)
   "lua-cjson",  -- Debian's package lua-cjson is invisible to LuaRocks: with it installed,
                 -- add --deps-mode=none (LuaRocks would fetch a second copy otherwise)
}

external_dependencies = {
   -- libcurl is checked by its library only: Debian (and Ubuntu) keep curl/curl.h in
   -- the multiarch include directory (/usr/include/x86_64-linux-gnu), where LuaRocks 3.x
   -- looks for no header, and where the compiler finds it by itself
   CURL = {
      library = "curl",
   },
   OPENSSL = {
      header = "openssl/evp.h",
      library = "crypto",
   },
   HIREDIS = {  -- the redis:// rate store (Debian: libhiredis-dev)
      header = "hiredis/hiredis.h",
      library = "hiredis",
   },
}

build = {
   type = "builtin",
   modules = {
      -- the OpenResty client (Lua, over the C module): require "commsease.resty"
      ["commsease.resty"] = "src/lua/commsease/resty.lua",
      ["commsease.resty.http"] = "src/lua/commsease/resty/http.lua",
      commsease = {
         sources = {
            "src/core/cms_buf.c",
            "src/core/cms_rules.c",
            "src/core/cms_sign.c",
            "src/core/cms_http.c",
            "src/core/cms_pace.c",
            "src/core/cms_form.c",
            "src/core/cms_sched.c",
            "src/core/cms_answer.c",
            "src/core/cms_store.c",
            "src/core/cms_store_redis.c",
            "src/core/cms_store_shm.c",
            "src/core/cms_json.c",
            "src/core/cms_stats.c",
            "src/core/cms_webhook.c",
            "src/lua/lcms_answer.c",
            "src/lua/lcms_call.c",
            "src/lua/lcms_chunk.c",
            "src/lua/lcms_client.c",
            "src/lua/lcms_compat.c",
            "src/lua/lcms_encode.c",
            "src/lua/lcms_error.c",
            "src/lua/lcms_json.c",
            "src/lua/lcms_module.c",
            "src/lua/lcms_multi.c",
            "src/lua/lcms_opts.c",
            "src/lua/lcms_parse.c",
            "src/lua/lcms_plan.c",
            "src/lua/lcms_pool.c",
            "src/lua/lcms_report.c",
            "src/lua/lcms_request.c",
            "src/lua/lcms_run.c",
            "src/lua/lcms_send_plan.c",
            "src/lua/lcms_stats.c",
            "src/lua/lcms_webhook.c",
         },
         incdirs = { "src/core", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(HIREDIS_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(HIREDIS_LIBDIR)" },
         libraries = { "curl", "crypto", "hiredis" },
      },
   },
}
