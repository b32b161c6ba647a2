/* cms_json.h -- a validating JSON scanner that allocates nothing, linear in
 * the text, no recursion.  No Lua here.  Two strictness levels:
 *
 * cms_json_check (every JSON-valued field of a request, and the emulator's):
 * RFC 8259 exactly, every byte judged, a NUL included: strings must be valid
 * UTF-8 with no raw control characters; no NaN, Infinity, hex numbers,
 * comments or trailing commas.
 *
 * cms_json_scan without CMS_JSON_STRICT (the service's answers, read as
 * lua-cjson read them before) accepts what both lua-cjson (2.1.0,
 * decode_invalid_numbers off) and cJSON (1.7.15, the whole input) accept, with two exceptions that RFC 8259 makes:
 * a number must match the RFC grammar (the libraries take "1.", "1.e5" and
 * cJSON "01" through strtod), and a NUL byte anywhere is refused (lua-cjson
 * stops reading at it, cJSON skips it as white space).  Like both libraries it
 * lets raw bytes 0x01-0x1F and any byte >= 0x80 stand in a string (the caller
 * checks UTF-8 where a rule asks for it), refuses lone UTF-16 surrogates in
 * \u escapes, and nests at most 1000 levels.  spec/fuzz/fuzz_json_diff.c
 * checks all of this against both libraries. */
#ifndef CMS_JSON_H
#define CMS_JSON_H
#include <stddef.h>
#include <stdint.h>

#define CMS_JSON_MAX_DEPTH 1000

typedef enum cms_json_status {
  CMS_JSON_OK = 0,
  CMS_JSON_E_SYNTAX,   /* a byte that cannot stand here */
  CMS_JSON_E_END,      /* the text ends inside a value (or is empty) */
  CMS_JSON_E_TRAILING, /* something after the value */
  CMS_JSON_E_NUL,      /* a NUL byte */
  CMS_JSON_E_NUMBER,   /* a number outside the RFC 8259 grammar */
  CMS_JSON_E_ESCAPE,   /* a bad escape in a string (lone surrogates included) */
  CMS_JSON_E_DEPTH,    /* nested deeper than CMS_JSON_MAX_DEPTH */
  CMS_JSON_E_CONTROL,  /* CMS_JSON_STRICT: a raw control character in a string */
  CMS_JSON_E_UTF8      /* CMS_JSON_STRICT: a string byte that is not UTF-8 */
} cms_json_status;

#define CMS_JSON_STRICT 1u /* strings: valid UTF-8, no raw bytes below 0x20 */

typedef enum cms_json_type {
  CMS_JSON_NONE = 0, CMS_JSON_OBJECT, CMS_JSON_ARRAY, CMS_JSON_STRING, CMS_JSON_NUMBER,
  CMS_JSON_TRUE, CMS_JSON_FALSE, CMS_JSON_NULL
} cms_json_type;

/* what the scan notes of one container (offsets into the text) */
typedef struct cms_json_box {
  uint32_t count; /* members of an object, elements of an array */
  uint32_t end;   /* offset of its closing bracket */
  uint32_t next;  /* index of the first container opened after it closes */
} cms_json_box;

typedef struct cms_json_info {
  cms_json_status status;
  size_t offset;        /* where the scan stopped (the offending byte on failure) */
  cms_json_type top;    /* the type of the top-level value, when status is OK */
  /* optional, caller-owned: a box for each of the first boxes_cap containers,
   * in the order their brackets open (texts under 4 GiB); the scan sets
   * n_containers to how many the text has (possibly > boxes_cap) */
  cms_json_box *boxes;
  size_t boxes_cap;
  size_t n_containers;
} cms_json_info;

/* Scans s[0..n) as one JSON text.  Returns 0 when it is valid, else -1 with
 * info->status and info->offset saying why and where.  boxes/boxes_cap are
 * read from info (set them, or zero the struct). */
int cms_json_scan(const char *s, size_t n, unsigned flags, cms_json_info *info);

/* 0 if s[0..n) is exactly one JSON value (CMS_JSON_STRICT) with optional
 * whitespace around it; else -1 with *why (a static text) and *at (0-based
 * byte offset) set. */
int cms_json_check(const char *s, size_t n, const char **why, size_t *at);

/* the reason for a status, e.g. "a number outside the JSON grammar" */
const char *cms_json_strerror(cms_json_status st);

/* In JSON text that passed cms_json_check: the 0-based offset of the first
 * \u0000 escape inside a string (a NUL character, which NUL-terminated
 * decoders like cJSON silently cut the string at), or -1 if there is none. */
long cms_json_nul_escape(const char *s, size_t n);

#endif
