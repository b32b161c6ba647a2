/* cms_json.h -- the strict JSON text check (RFC 8259) of every JSON-valued
 * field, shared by the module and the emulator.  It judges every byte of the
 * text, a NUL included (lua-cjson and cJSON stop reading at a NUL), and
 * accepts only the grammar: no NaN, Infinity, hex numbers, comments or
 * trailing commas.  Strings must be valid UTF-8 with no raw control
 * characters.  Linear time, no allocation.  No Lua here. */
#ifndef CMS_JSON_H
#define CMS_JSON_H
#include <stddef.h>

#define CMS_JSON_MAX_DEPTH 1000  /* nesting levels (lua-cjson's decode limit) */

/* 0 if s[0..n) is exactly one JSON value with optional whitespace around it;
 * else -1 with *why (a static text) and *at (0-based byte offset) set. */
int cms_json_check(const char *s, size_t n, const char **why, size_t *at);

/* In JSON text that passed cms_json_check: the 0-based offset of the first
 * \u0000 escape inside a string (a NUL character, which NUL-terminated
 * decoders like cJSON silently cut the string at), or -1 if there is none. */
long cms_json_nul_escape(const char *s, size_t n);

#endif
