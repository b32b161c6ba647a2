/* fuzz_core.c -- libFuzzer target for the Lua-free rules and form writers of
 * src/core (cms_rules.c, cms_form.c, cms_buf.c).  Built and run by
 * spec/fuzz/run.sh; not part of `make test`.
 *
 * Every input is fed to each function; invariants are checked against small
 * independent reference implementations written here, and any violation
 * abort()s so libFuzzer reports it with the input:
 *   cms_utf16_len          == a table-driven decoder (Unicode Table 3-7)
 *   cms_parse_int64        == ^-?[0-9]+$ and strtoll without ERANGE
 *   cms_accid_valid        == cms_check_accid == 1..32 of [A-Za-z0-9_@.-]
 *   cms_form_escape        only [A-Za-z0-9._~-] and %XX; equals curl_easy_escape;
 *                          curl_easy_unescape gives the input back
 *   cms_form_json_string   only [A-Za-z0-9._~-] and %XX; unescaped, it is one JSON
 *                          string (cJSON) equal to the input when that is valid UTF-8
 *   cms_check_msg          on a view built from the bytes: never crashes, fills the
 *                          error on failure, and agrees with the rules it applies */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_buf.h"
#include "cms_form.h"
#include "cms_rules.h"

#define FAIL(...)                                                 \
  do {                                                            \
    fprintf(stderr, "fuzz_core invariant: " __VA_ARGS__);         \
    fputc('\n', stderr);                                          \
    abort();                                                      \
  } while (0)

static CURL *curl;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  curl = curl_easy_init();
  if (!curl) abort();
  return 0;
}

/* ---- references ---- */

/* UTF-16 code units per Unicode Table 3-7 (well-formed UTF-8 byte sequences);
 * -1 if ill-formed */
static long ref_utf16_len(const unsigned char *s, size_t n) {
  long units = 0;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    unsigned lo = 0x80, hi = 0xBF, need;
    if (c <= 0x7F) { units++; i++; continue; }
    else if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return -1;
    if (i + need >= n) return -1; /* truncated */
    if (s[i + 1] < lo || s[i + 1] > hi) return -1;
    for (unsigned k = 2; k <= need; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return -1;
    units += need == 3 ? 2 : 1;
    i += need + 1;
  }
  return units;
}

static int ref_parse_int64(const char *s, size_t n, long long *out) {
  char tmp[32], *end;
  size_t i = 0, j, k = 0;
  if (n == 0) return -1;
  if (s[0] == '-') i = 1;
  if (i == n) return -1;
  for (j = i; j < n; j++)
    if (s[j] < '0' || s[j] > '9') return -1;
  while (i < n - 1 && s[i] == '0') i++;   /* leading zeros are allowed */
  if (n - i > 19) return -1;              /* 20+ significant digits never fit */
  if (s[0] == '-') tmp[k++] = '-';
  memcpy(tmp + k, s + i, n - i);
  tmp[k + n - i] = 0;
  errno = 0;
  *out = strtoll(tmp, &end, 10);
  if (errno == ERANGE || *end) return -1;
  return 0;
}

static int ref_accid(const unsigned char *s, size_t n) {
  if (n < 1 || n > 32) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '@' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

static int unreserved(unsigned c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}
static int hexdig(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');  /* writers use upper case */
}

/* only unreserved bytes and %XX */
static void check_pct_charset(const char *what, const char *o, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned c = (unsigned char)o[i];
    if (c == '%') {
      if (i + 2 >= n || !hexdig((unsigned char)o[i + 1]) || !hexdig((unsigned char)o[i + 2]))
        FAIL("%s: bad %%XX at %zu", what, i);
      i += 2;
    } else if (!unreserved(c)) {
      FAIL("%s: byte 0x%02x at %zu is not unreserved", what, c, i);
    }
  }
}

/* ---- one function each ---- */

static void fuzz_utf16(const uint8_t *d, size_t n) {
  long got = cms_utf16_len((const char *)d, n);
  long want = ref_utf16_len(d, n);
  if (got != want) FAIL("cms_utf16_len=%ld, reference %ld (n=%zu)", got, want, n);
}

static void fuzz_int(const uint8_t *d, size_t n) {
  long long a = 12345, b = 67890;
  int ra = cms_parse_int64((const char *)d, n, &a);
  int rb = ref_parse_int64((const char *)d, n, &b);
  if (ra != rb) FAIL("cms_parse_int64 rc=%d, reference %d (n=%zu)", ra, rb, n);
  if (ra == 0 && a != b) FAIL("cms_parse_int64=%lld, reference %lld", a, b);
  if (ra != 0 && a != 12345) FAIL("cms_parse_int64 wrote *out on failure");
}

static void fuzz_accid(const uint8_t *d, size_t n) {
  cms_verr e;
  int v = cms_accid_valid((const char *)d, n);
  int want = ref_accid(d, n);
  int c;
  memset(&e, 0, sizeof e);
  c = cms_check_accid("toAccids[1]", (const char *)d, n, &e);
  if (v != want) FAIL("cms_accid_valid=%d, reference %d", v, want);
  if ((c == 0) != v) FAIL("cms_check_accid=%d disagrees with cms_accid_valid=%d", c, v);
  if (c != 0 && (!e.message[0] || strcmp(e.field, "toAccids[1]") != 0))
    FAIL("cms_check_accid failed without filling the error");
  if (c != 0 && c != -1) FAIL("cms_check_accid returned %d", c);
}

static void fuzz_escape(const uint8_t *d, size_t n, int prefill) {
  cms_buf b;
  size_t start;
  char *ce, *un;
  int unlen = 0;
  cms_buf_init(&b, 0);
  if (prefill && cms_form_key(&b, "k")) abort();
  start = b.len;
  if (cms_form_escape(&b, (const char *)d, n)) FAIL("cms_form_escape failed on %zu bytes", n);
  if (b.data[b.len] != 0) FAIL("cms_form_escape: no NUL after the output");
  if (b.len > b.cap) FAIL("cms_form_escape: len %zu > cap %zu", b.len, b.cap);
  if (prefill && memcmp(b.data, "k=", 2) != 0) FAIL("cms_form_escape clobbered the prefix");
  check_pct_charset("cms_form_escape", b.data + start, b.len - start);
  ce = curl_easy_escape(curl, n ? (const char *)d : "", (int)n);
  if (!ce) abort();
  if (strlen(ce) != b.len - start || memcmp(ce, b.data + start, b.len - start) != 0)
    FAIL("cms_form_escape differs from curl_easy_escape");
  curl_free(ce);
  un = curl_easy_unescape(curl, b.data + start, (int)(b.len - start), &unlen);
  if (!un) abort();
  if ((size_t)unlen != n || (n && memcmp(un, d, n) != 0))
    FAIL("cms_form_escape does not round-trip through curl_easy_unescape");
  curl_free(un);
  cms_buf_free(&b);
}

static void fuzz_json_string(const uint8_t *d, size_t n, int prefill) {
  cms_buf b;
  size_t start;
  char *un;
  int unlen = 0;
  cms_buf_init(&b, 0);
  if (prefill && cms_form_key(&b, "msgList")) abort();
  start = b.len;
  if (cms_form_json_string(&b, (const char *)d, n))
    FAIL("cms_form_json_string failed on %zu bytes", n);
  if (b.data[b.len] != 0) FAIL("cms_form_json_string: no NUL after the output");
  if (b.len > b.cap) FAIL("cms_form_json_string: len %zu > cap %zu", b.len, b.cap);
  check_pct_charset("cms_form_json_string", b.data + start, b.len - start);
  un = curl_easy_unescape(curl, b.data + start, (int)(b.len - start), &unlen);
  if (!un) abort();
  if (unlen < 2 || un[0] != '"' || un[unlen - 1] != '"')
    FAIL("cms_form_json_string: not a quoted string");
  /* JSON text: no raw control characters (RFC 8259: U+0000..U+001F must be escaped) */
  for (int i = 0; i < unlen; i++)
    if ((unsigned char)un[i] < 0x20) FAIL("cms_form_json_string: raw control byte in JSON");
  if (ref_utf16_len(d, n) >= 0) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(un, (size_t)unlen, &end, 0);
    size_t want = n;
    const void *nul = memchr(d, 0, n);
    if (!j || !cJSON_IsString(j) || !j->valuestring)
      FAIL("cms_form_json_string: cJSON cannot parse the output as a string");
    if (end != un + unlen) FAIL("cms_form_json_string: trailing bytes after the string");
    /* cJSON strings are C strings: a \u0000 ends valuestring */
    if (nul) want = (size_t)((const uint8_t *)nul - d);
    if (strlen(j->valuestring) != want || memcmp(j->valuestring, d, want) != 0)
      FAIL("cms_form_json_string: JSON round trip differs from the input");
    cJSON_Delete(j);
  }
  curl_free(un);
  cms_buf_free(&b);
}

/* a cms_msg_view from the bytes: 4 header bytes (presence flags and small
 * integers), then msgId, attach, ext separated by 0x1E */
static long long pick_int(uint8_t sel, uint8_t v) {
  switch (sel & 3) {
    case 0: return (int8_t)v;
    case 1: return (long long)v * 1000003LL;
    case 2: return v & 1 ? (long long)0x7fffffffffffffffLL - v : (-0x7fffffffffffffffLL - 1) + v;
    default: {
      static const long long types[] = {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 100, 101, -1, 99};
      return types[v % (sizeof types / sizeof types[0])];
    }
  }
}

static void fuzz_msg(const uint8_t *d, size_t n) {
  cms_msg_view m;
  cms_verr e;
  const uint8_t *p, *end = d + n, *sep;
  const char *parts[3] = {NULL, NULL, NULL};
  size_t lens[3] = {0, 0, 0};
  int i, rc;
  if (n < 4) return;
  memset(&m, 0, sizeof m);
  p = d + 4;
  for (i = 0; i < 3 && p <= end; i++) {
    sep = memchr(p, 0x1E, (size_t)(end - p));
    parts[i] = (const char *)p;
    lens[i] = sep ? (size_t)(sep - p) : (size_t)(end - p);
    p += lens[i] + 1;
    if (!sep) break;
  }
  if (!(d[0] & 1)) m.msgId = parts[0], m.msgId_len = lens[0];
  if (!(d[0] & 2)) m.attach = parts[1], m.attach_len = lens[1];
  if (d[0] & 4) m.ext = parts[2], m.ext_len = lens[2];
  m.has_msgType = !(d[0] & 8);
  m.msgType = pick_int((uint8_t)(d[0] >> 4 | 3), d[1]);
  m.has_subType = (d[0] >> 6) & 1;
  m.subType = pick_int(d[0] >> 4, d[2]);
  m.has_resendFlag = d[0] >> 7;
  m.resendFlag = pick_int(d[0] >> 5, d[3]);
  memset(&e, 0x55, sizeof e);
  rc = cms_check_msg(&m, 1 + (d[3] & 15), &e);
  if (rc != 0 && rc != -1) FAIL("cms_check_msg returned %d", rc);
  if (rc == -1) {
    if (!memchr(e.field, 0, sizeof e.field) || !memchr(e.message, 0, sizeof e.message))
      FAIL("cms_check_msg: unterminated error");
    if (strncmp(e.field, "msgList[", 8) != 0) FAIL("cms_check_msg: field '%s'", e.field);
  } else {
    /* everything the rules say must hold */
    long u;
    if (!m.msgId || !m.msgId_len || ref_utf16_len((const uint8_t *)m.msgId, m.msgId_len) < 0)
      FAIL("cms_check_msg accepted a bad msgId");
    if (!m.has_msgType || !cms_msgtype_by_code(m.msgType))
      FAIL("cms_check_msg accepted msgType %lld", m.msgType);
    u = m.attach ? ref_utf16_len((const uint8_t *)m.attach, m.attach_len) : -1;
    if (!m.attach || u < 1 || u > 4096) FAIL("cms_check_msg accepted an attach of %ld", u);
    if (m.ext) {
      u = ref_utf16_len((const uint8_t *)m.ext, m.ext_len);
      if (u < 0 || u > 4096) FAIL("cms_check_msg accepted an ext of %ld", u);
    }
    if (m.has_subType && m.subType <= 0) FAIL("cms_check_msg accepted subType %lld", m.subType);
    if (m.has_resendFlag && m.resendFlag != 0 && m.resendFlag != 1)
      FAIL("cms_check_msg accepted resendFlag %lld", m.resendFlag);
  }
  /* a list of two views built from the same bytes always repeats its msgId */
  if (m.msgId) {
    cms_msg_view two[2];
    two[0] = m, two[1] = m;
    if (cms_check_unique_msgids(two, 2, &e) != -1) FAIL("duplicate msgIds not caught");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  fuzz_utf16(d, n);
  fuzz_int(d, n);
  fuzz_accid(d, n);
  fuzz_escape(d, n, n & 1);
  fuzz_json_string(d, n, (n >> 1) & 1);
  fuzz_msg(d, n);
  /* every single-value rule on the raw bytes: no crash, 0 or -1 */
  for (const cms_rule *r = cms_param_rules; r->name; r++) {
    cms_verr e;
    int rc;
    if (r->kind == CMS_K_MSGLIST || r->kind == CMS_K_ACCIDS) continue;
    rc = cms_check_value(r, r->name, (const char *)d, n, &e);
    if (rc != 0 && rc != -1) FAIL("cms_check_value(%s) returned %d", r->name, rc);
  }
  return 0;
}
