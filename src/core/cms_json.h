/* cms_json.h -- a validating JSON scanner that allocates nothing.  No Lua here.
 *
 * It accepts what both lua-cjson (2.1.0, decode_invalid_numbers off) and cJSON
 * (1.7.15, the whole input) accept, with two exceptions that RFC 8259 makes:
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
  CMS_JSON_E_DEPTH     /* nested deeper than CMS_JSON_MAX_DEPTH */
} cms_json_status;

typedef enum cms_json_type {
  CMS_JSON_NONE = 0, CMS_JSON_OBJECT, CMS_JSON_ARRAY, CMS_JSON_STRING, CMS_JSON_NUMBER,
  CMS_JSON_TRUE, CMS_JSON_FALSE, CMS_JSON_NULL
} cms_json_type;

typedef struct cms_json_scan {
  cms_json_status status;
  size_t offset;        /* where the scan stopped (the offending byte on failure) */
  cms_json_type top;    /* the type of the top-level value, when status is OK */
  /* optional, caller-owned: the number of members or elements of each of the
   * first counts_cap containers, in the order their brackets open; the scan
   * sets n_containers to how many the text has (possibly > counts_cap) */
  uint32_t *counts;
  size_t counts_cap;
  size_t n_containers;
} cms_json_scan;

/* Scans s[0..n) as one JSON text.  Returns 0 when it is valid, else -1 with
 * sc->status and sc->offset saying why and where.  counts/counts_cap are read
 * from sc (set them, or zero the struct). */
int cms_json_check(const char *s, size_t n, cms_json_scan *sc);

/* the reason for a status, e.g. "invalid number" */
const char *cms_json_strerror(cms_json_status st);

#endif
