/* lcms_json.h -- the module's own JSON writer for the tables callers hand
 * over (attach, ext, the moderation options), and the integer reading every
 * Lua number of params goes through.  (lcms.h is another engineer's; these
 * declarations live here.) */
#ifndef LCMS_JSON_H
#define LCMS_JSON_H
#include "lcms.h"

#define LCMS_JSON_MAX_DEPTH 32            /* nesting levels of a table */
#define LCMS_JSON_MAX_BYTES (4u << 20)    /* when a field has no length limit */

/* Writes the Lua value at idx as JSON text, reading tables raw (lua_next,
 * lua_rawgeti: no metamethod runs, so what is checked is what is sent) and
 * every number exactly.  Refused, with e naming the offending value's path
 * (path, then ".key" or "[n]"): a cycle, nesting deeper than
 * LCMS_JSON_MAX_DEPTH, text that is not UTF-8, a function/userdata/thread,
 * NaN and infinities, an integer-valued float of magnitude 2^53 or more (a
 * double may already have rounded it), and text longer than max_chars UTF-16
 * units (0: LCMS_JSON_MAX_BYTES bytes).  The work is bounded by the output:
 * shared references are written out in full, each costing its length, and
 * the writer stops at the limit.  Pushes the text and returns 0, or returns -1
 * with nothing pushed.  Raises only on memory errors. */
int lcms_json_write(lua_State *L, int idx, const char *path, unsigned max_chars, cms_verr *e);

/* What a Lua number is as an integer.  A 5.3+ integer is exact; a float (and
 * every number on 5.1, 5.2 and LuaJIT) is exact only below 2^53 in
 * magnitude: above, the double may already have rounded what the caller
 * wrote (2^53 + 1 reads as 2^53). */
typedef enum lcms_int_kind {
  LCMS_INT_OK,        /* *out holds it exactly */
  LCMS_INT_NOT,       /* not a number, or not a whole number */
  LCMS_INT_IMPRECISE  /* a whole float of magnitude >= 2^53 */
} lcms_int_kind;
lcms_int_kind lcms_to_integer(lua_State *L, int idx, long long *out);
/* the same for a value already known to be a number */
lcms_int_kind lcms_number_to_integer(lua_State *L, int idx, long long *out);

#endif
