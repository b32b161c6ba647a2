/* lcms_answer.h -- JSON text straight into Lua values, and the service's
 * answer straight into the result tables (lcms_answer.c).  (lcms.h is another
 * engineer's; these declarations live here.) */
#ifndef LCMS_ANSWER_H
#define LCMS_ANSWER_H
#include "lcms.h"

/* JSON text -> the Lua values lua-cjson gives (strings, numbers as floats,
 * booleans, null as a NULL light userdata, tables) after the text is checked
 * (cms_json_scan): pushes one value and returns 0, or pushes nothing and
 * returns -1 (*why: the reason).  Raises only on memory errors. */
int lcms_json_push(lua_State *L, const char *s, size_t n, const char **why);

/* A status-200 answer body -> res (pushed, returns 1) or nil, err (pushed,
 * returns 2), with lcms_parse_answer's semantics: one pass checks every byte,
 * one builds the result tables.  flags: LCMS_ANSWER_OUTCOMES keeps of each
 * delivered message only its time (res.success[msgId] = time, or true when
 * the record has none) and never builds the record; the same answers are
 * accepted and refused. */
#define LCMS_ANSWER_OUTCOMES 1u
int lcms_answer_read(lua_State *L, const char *body, size_t len, int msgids,
                     const char *request_id, const char *endpoint, long long *api_code,
                     unsigned flags);

/* shared by the reader and lcms_parse.c (defined there): the integer of a
 * number or numeric string at idx (0, or -1 if it is not one); push an
 * integer of a result (a Lua integer, or on double-only runtimes a number up
 * to 2^53 and the exact decimal string beyond); make time, roomId and type of
 * the message object on top integers (-1 if one is not); push nil, err of
 * kind "response" and return 2 */
int lcms_result_int(lua_State *L, int idx, long long *out);
void lcms_push_result_int(lua_State *L, long long v);
int lcms_result_ints(lua_State *L);
int lcms_response_error(lua_State *L, const char *msg, const char *rid, const char *ep);

#endif
