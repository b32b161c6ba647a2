/* cms_form.h -- writing an application/x-www-form-urlencoded body.
 *
 * Percent-encoding keeps RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~)
 * and writes every other byte as %XX, byte for byte what curl_easy_escape
 * produces (spec/c/core_test.c checks all 256 bytes against libcurl).  The JSON
 * writers emit JSON text (RFC 8259 string escaping) already percent-encoded, so
 * msgList and toAccids go into the form in one pass.  A NULL buffer writes
 * nothing and succeeds (validation without a body).  No Lua here. */
#ifndef CMS_FORM_H
#define CMS_FORM_H
#include <stddef.h>
#include "cms_buf.h"

/* "&key=" (no '&' before the first field) */
int cms_form_key(cms_buf *b, const char *key);
/* the percent-encoded bytes of s */
int cms_form_escape(cms_buf *b, const char *s, size_t n);
/* JSON punctuation or any literal text, percent-encoded */
int cms_form_lit(cms_buf *b, const char *s);
/* a JSON string literal with s's content, percent-encoded */
int cms_form_json_string(cms_buf *b, const char *s, size_t n);
/* n accids as JSON strings separated by commas (toAccids' items),
 * percent-encoded, each of 1 to max bytes of cms_accid_chars, checked as
 * they are written (with a NULL buffer: only checked).  0 when all were
 * written; i > 0 when v[i - 1] is the first that breaks the rules (the
 * buffer's length is then left as it was); -1 when out of memory. */
long cms_form_accids(cms_buf *b, const cms_str *v, size_t n, size_t max);
/* a decimal integer (safe unencoded in both JSON and forms) */
int cms_form_int(cms_buf *b, long long v);

/* The JSON punctuation of msgList and toAccids, percent-encoded once and for
 * all: the table holds each piece as JSON and as its encoding, and
 * spec/c/core_test.c checks that every encoding is cms_form_escape's. */
typedef enum cms_piece {
  CMS_P_LBRACKET, CMS_P_RBRACKET, CMS_P_COMMA, CMS_P_MSGID, CMS_P_MSGTYPE, CMS_P_ATTACH,
  CMS_P_EXT, CMS_P_SUBTYPE, CMS_P_RESENDFLAG, CMS_P_RBRACE, CMS_P_COUNT
} cms_piece;

typedef struct cms_form_piece {
  const char *json;
  char pct[32];   /* NUL-padded, so that a put copies a fixed 32 bytes */
  size_t pct_len;
} cms_form_piece;

extern const cms_form_piece cms_form_pieces[CMS_P_COUNT];
int cms_form_put(cms_buf *b, cms_piece p);

/* one checked message of msgList as its JSON object, percent-encoded, with
 * the comma before it unless it is the first:
 * {"msgId":...,"msgType":N[,"attach":...][,"ext":...][,"subType":N][,"resendFlag":N]};
 * one reservation for all of it.  0, or -1 when out of memory. */
struct cms_msg_view;
int cms_form_msg(cms_buf *b, const struct cms_msg_view *v, int first);

#endif
