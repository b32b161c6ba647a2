/* cms_answer.h -- the service's answer text, read byte by byte before a JSON
 * decoder sees it.  lua-cjson stops at a NUL byte (valid JSON, a NUL, then
 * garbage decodes as the JSON) and turns every number into a double (an id
 * beyond 2^53 comes back changed); this finds both.  No Lua here. */
#ifndef CMS_ANSWER_H
#define CMS_ANSWER_H
#include <stddef.h>

/* The next integer literal of s[*pos, n) (outside strings) whose magnitude is
 * over 2^53, so that a double cannot hold it exactly.  Returns 1 with *pos and
 * *len set to the literal (sign included), 0 when there is none, or -1 when a
 * NUL byte comes first (*pos = its offset).  Scanning resumes after the
 * literal: call again with *pos += *len.  Any text is accepted (the decoder
 * judges the JSON); this only looks at bytes. */
int cms_answer_next_big(const char *s, size_t n, size_t *pos, size_t *len);

#endif
