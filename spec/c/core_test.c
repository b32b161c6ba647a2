/* core_test.c -- unit tests of src/core (no Lua): the form writer against
 * libcurl and cJSON, UTF-16 counting, integers, accids, signing.
 * Built and run by `make test` (plain and sanitized). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cms_answer.h"
#include "cms_buf.h"
#include "cms_form.h"
#include "cms_json.h"
#include "cms_pace.h"
#include "cms_rules.h"
#include "cms_sign.h"
#include "cms_stats.h"
#include "cms_webhook.h"

static int passed, failed;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (cond) passed++;                                   \
    else {                                                \
      failed++;                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fputc('\n', stderr);                                \
    }                                                     \
  } while (0)

static unsigned long long rng = 88172645463325252ULL;
static unsigned next_byte(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (unsigned)(rng & 0xff);
}

static void test_escape_matches_libcurl(void) {
  char s[2048];
  int i, round;
  for (i = 0; i < 256; i++) {
    char one = (char)i, *want = curl_easy_escape(NULL, &one, 1);
    cms_buf b;
    cms_buf_init(&b, 0);
    cms_form_escape(&b, &one, 1);
    CHECK(want && strcmp(want, cms_buf_cstr(&b)) == 0, "byte %d: %s vs curl %s", i,
          cms_buf_cstr(&b), want ? want : "?");
    curl_free(want);
    cms_buf_free(&b);
  }
  for (round = 0; round < 200; round++) {
    int n = (int)(next_byte() * 7 % sizeof s);
    char *want;
    cms_buf b;
    for (i = 0; i < n; i++) s[i] = (char)next_byte();
    want = curl_easy_escape(NULL, s, n);
    cms_buf_init(&b, 0);
    cms_form_escape(&b, s, (size_t)n);
    CHECK(want && b.len == strlen(want) && memcmp(want, b.data ? b.data : "", b.len) == 0,
          "random string %d differs from curl_easy_escape", round);
    curl_free(want);
    cms_buf_free(&b);
  }
}

/* the JSON string writer: unescape with libcurl, parse with cJSON, compare */
static void test_json_string_round_trip(void) {
  const char *samples[] = {"", "hello", "quote \" and backslash \\", "tab\tnl\ncr\r\x01\x1f",
                           "slash / and 100% & = + ?", "caf\xc3\xa9 \xf0\x9f\x98\x80", "\x7f",
                           NULL};
  int i;
  for (i = 0; samples[i]; i++) {
    cms_buf b;
    char *raw;
    int rawlen = 0;
    cJSON *j;
    cms_buf_init(&b, 0);
    cms_form_lit(&b, "[");
    cms_form_json_string(&b, samples[i], strlen(samples[i]));
    cms_form_lit(&b, "]");
    raw = curl_easy_unescape(NULL, b.data, (int)b.len, &rawlen);
    j = raw ? cJSON_ParseWithLength(raw, (size_t)rawlen) : NULL;
    CHECK(j && cJSON_IsArray(j) && cJSON_IsString(cJSON_GetArrayItem(j, 0)) &&
              strcmp(cJSON_GetArrayItem(j, 0)->valuestring, samples[i]) == 0,
          "sample %d does not round-trip: %s", i, raw ? raw : "?");
    cJSON_Delete(j);
    curl_free(raw);
    cms_buf_free(&b);
  }
}

static void test_pieces(void) {
  int i;
  for (i = 0; i < CMS_P_COUNT; i++) {
    cms_buf b;
    cms_buf_init(&b, 0);
    cms_form_lit(&b, cms_form_pieces[i].json);
    CHECK(strcmp(cms_buf_cstr(&b), cms_form_pieces[i].pct) == 0 &&
              strlen(cms_form_pieces[i].pct) == cms_form_pieces[i].pct_len,
          "piece %d: %s is not the encoding of %s", i, cms_form_pieces[i].pct,
          cms_form_pieces[i].json);
    cms_buf_free(&b);
  }
}

static void test_form_limit(void) {
  cms_buf b;
  char pct[50];
  memset(pct, '%', sizeof pct);
  cms_buf_init(&b, 100);
  cms_buf_addc(&b, 'x');
  CHECK(cms_form_escape(&b, pct, sizeof pct) == -1 && b.overflow && b.len == 1,
        "the writers keep a buffer's limit (len %zu, overflow %d)", b.len, b.overflow);
  cms_buf_free(&b);
}

/* a greedy caller on a simulated clock: no one-second window may hold more
 * than `rate` calls, and the bucket must not be much slower than the rate */
static void test_pacing(void) {
  static const double rates[] = {1, 2, 5, 20, 100, 1000};
  static long long t[20000];
  size_t k;
  for (k = 0; k < sizeof rates / sizeof rates[0]; k++) {
    cms_pace p;
    long long now = 0;
    int n = 0, i, j, worst = 0;
    cms_pace_init(&p, rates[k], 10);
    p.last_ms = 0;
    while (now < 10000 && n < 20000) {
      long w = cms_pace_take(&p, now);
      if (w == 0) t[n++] = now;
      else now += w;
    }
    for (i = 0, j = 0; i < n; i++) {
      while (t[i] - t[j] >= 1000) j++;
      if (i - j + 1 > worst) worst = i - j + 1;
    }
    CHECK(worst <= (int)rates[k], "rate %g: %d calls in one second", rates[k], worst);
    CHECK(n >= (int)(rates[k] * 10 * 0.9), "rate %g: only %d calls in 10 s", rates[k], n);
  }
}

static void test_ints(void) {
  long long v = 0;
  cms_buf b;
  cms_buf_init(&b, 0);
  cms_form_int(&b, -9223372036854775807LL - 1);
  cms_buf_addc(&b, ' ');
  cms_form_int(&b, 0);
  cms_buf_addc(&b, ' ');
  cms_form_int(&b, 765788);
  CHECK(strcmp(cms_buf_cstr(&b), "-9223372036854775808 0 765788") == 0, "ints: %s", b.data);
  cms_buf_free(&b);
  CHECK(cms_parse_int64("9223372036854775807", 19, &v) == 0 && v == 9223372036854775807LL, "max");
  CHECK(cms_parse_int64("9223372036854775808", 19, &v) == -1, "max + 1 must fail");
  CHECK(cms_parse_int64("-9223372036854775808", 20, &v) == 0, "min");
  CHECK(cms_parse_int64("12a", 3, &v) == -1 && cms_parse_int64("", 0, &v) == -1 &&
            cms_parse_int64("-", 1, &v) == -1 && cms_parse_int64(" 1", 2, &v) == -1,
        "malformed integers");
}

static void test_utf16(void) {
  CHECK(cms_utf16_len("abc", 3) == 3, "ascii");
  CHECK(cms_utf16_len("\xc3\xa9", 2) == 1, "2-byte");
  CHECK(cms_utf16_len("\xe4\xb8\xad", 3) == 1, "3-byte");
  CHECK(cms_utf16_len("\xf0\x9f\x98\x80", 4) == 2, "an emoji is 2 UTF-16 units");
  CHECK(cms_utf16_len("\xc0\xaf", 2) == -1, "overlong");
  CHECK(cms_utf16_len("\xed\xa0\x80", 3) == -1, "surrogate");
  CHECK(cms_utf16_len("\xf4\x90\x80\x80", 4) == -1, "above U+10FFFF");
  CHECK(cms_utf16_len("\xe4\xb8", 2) == -1, "truncated");
  CHECK(cms_utf16_len("\x80", 1) == -1, "lone continuation");
}

/* UTF-16 units of UTF-8 text by the definition: decode each scalar value,
 * refuse overlong forms, surrogates and values past U+10FFFF; -1 if invalid */
static long ref_utf16_len(const unsigned char *s, size_t n) {
  size_t i = 0;
  long units = 0;
  while (i < n) {
    unsigned c = s[i], len, k;
    unsigned long v;
    if (c < 0x80) len = 1, v = c;
    else if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07;
    else return -1;
    if (n - i < len) return -1;
    for (k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return -1;
      v = v << 6 | (s[i + k] & 0x3F);
    }
    if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000))
      return -1;
    if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) return -1;
    units += v >= 0x10000 ? 2 : 1;
    i += len;
  }
  return units;
}

/* cms_utf16_len against the definition: every string of 1 to 3 bytes, four
 * bytes from the boundary values, and random text that mixes ASCII runs with
 * characters (valid and not) across its eight-byte blocks */
static void test_utf16_differential(void) {
  static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                       0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4,
                                       0xF5, 0xFF};
  unsigned char b[64];
  unsigned long bad = 0, runs = 0;
  unsigned x, y, z, w;
  for (x = 0; x < 256; x++) {
    b[0] = (unsigned char)x;
    bad += cms_utf16_len((char *)b, 1) != ref_utf16_len(b, 1), runs++;
    for (y = 0; y < 256; y++) {
      b[1] = (unsigned char)y;
      bad += cms_utf16_len((char *)b, 2) != ref_utf16_len(b, 2), runs++;
      if (x < 0xC0) continue; /* a third byte after ASCII or a continuation: two shorter cases */
      for (z = 0; z < 256; z++) {
        b[2] = (unsigned char)z;
        bad += cms_utf16_len((char *)b, 3) != ref_utf16_len(b, 3), runs++;
        if (x < 0xF0 || x > 0xF7) continue;
        for (w = 0; w < sizeof edge; w++) {
          b[3] = edge[w];
          bad += cms_utf16_len((char *)b, 4) != ref_utf16_len(b, 4), runs++;
        }
      }
    }
  }
  CHECK(bad == 0, "%lu of %lu short strings differ from the definition", bad, runs);
  {
    static const char *chars[] = {"\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xed\x9f\xbf",
                                  "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xc2\x80", "\xe0\xa0\x80"};
    int round;
    bad = runs = 0;
    for (round = 0; round < 300000; round++) {
      size_t n = 0, want = next_byte() % 60;
      while (n < want) {
        unsigned k = next_byte() % 16;
        if (k < 8) { /* an ASCII run */
          size_t run = next_byte() % 12;
          while (run-- && n < sizeof b) b[n++] = (unsigned char)('a' + next_byte() % 26);
        } else if (k < 15) { /* a character, cut short now and then */
          const char *c = chars[next_byte() % 8];
          size_t len = strlen(c), j;
          if (next_byte() % 8 == 0) len--;
          for (j = 0; j < len && n < sizeof b; j++) b[n++] = (unsigned char)c[j];
        } else { /* any byte */
          b[n++] = edge[next_byte() % sizeof edge];
        }
      }
      bad += cms_utf16_len((char *)b, n) != ref_utf16_len(b, n), runs++;
    }
    CHECK(bad == 0, "%lu of %lu random texts differ from the definition", bad, runs);
  }
}

static void test_accids(void) {
  CHECK(cms_accid_valid("p1001", 5), "plain");
  CHECK(cms_accid_valid("a_b@c.d-e", 9), "all allowed punctuation");
  CHECK(!cms_accid_valid("", 0), "empty");
  CHECK(!cms_accid_valid("a b", 3), "space");
  CHECK(!cms_accid_valid("abcdefghijabcdefghijabcdefghijabc", 33), "33 characters");
  CHECK(cms_accid_valid("abcdefghijabcdefghijabcdefghijab", 32), "32 characters");
}

/* toAccids as cms_form_accids writes them, against a writer built from the
 * definitions: cms_accid_chars for each byte, cms_form_json_string for its
 * text, commas between; random lists of accid bytes and, now and then, any
 * byte, empty and too long items */
static void test_form_accids(void) {
  static const char pool[] = "abcXYZ019_@.-";
  int round;
  for (round = 0; round < 3000; round++) {
    char text[101][40];
    cms_str v[101];
    size_t count = 1 + next_byte() % 100, i, max = 1 + next_byte() % 36;
    long want = 0, got;
    cms_buf a, b;
    for (i = 0; i < count; i++) {
      size_t len = next_byte() % 38, k;
      if (round % 4 == 0) len = 1 + len % max; /* mostly good lists */
      for (k = 0; k < len; k++)
        text[i][k] = round % 5 == 1 && next_byte() % 32 == 0 ? (char)next_byte()
                     : pool[next_byte() % (sizeof pool - 1)];
      v[i].s = text[i];
      v[i].n = len;
    }
    cms_buf_init(&a, 0);
    cms_buf_init(&b, 0);
    cms_buf_addc(&a, 'x');
    cms_buf_addc(&b, 'x');
    for (i = 0; i < count && !want; i++) {
      size_t k;
      int ok = v[i].n >= 1 && v[i].n <= max;
      for (k = 0; k < v[i].n; k++) ok &= cms_accid_chars[(unsigned char)v[i].s[k]];
      if (!ok) want = (long)i + 1;
      if (i) cms_form_lit(&a, ",");
      cms_form_json_string(&a, v[i].s, v[i].n);
    }
    got = cms_form_accids(&b, v, count, max);
    CHECK(got == want, "round %d: %ld, the definitions say %ld", round, got, want);
    if (want == 0)
      CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "round %d: other bytes", round);
    else
      CHECK(b.len == 1 && strcmp(b.data, "x") == 0, "round %d: the length is kept", round);
    CHECK(cms_form_accids(NULL, v, count, max) == want, "round %d: checked only", round);
    cms_buf_free(&a);
    cms_buf_free(&b);
  }
  {
    int c, bad = 0;
    for (c = 0; c < 256; c++) { /* every byte in an accid of its own */
      char one[2] = {'a', (char)c};
      cms_str v = {one, 2};
      cms_buf b;
      long got;
      cms_buf_init(&b, 0);
      got = cms_form_accids(&b, &v, 1, 32);
      bad += got != (cms_accid_chars[c] ? 0 : 1);
      cms_buf_free(&b);
    }
    CHECK(bad == 0, "%d bytes judged otherwise than cms_accid_chars says", bad);
  }
  {
    /* accids far longer than max: refused, named, and nothing reserved for
     * their length (3 bytes a byte would be 3 MiB here) */
    size_t big = (size_t)1 << 20;
    char *s = malloc(big);
    CHECK(s != NULL, "malloc");
    if (s) {
      cms_str v[3] = {{"p1", 2}, {NULL, big}, {"p3", 2}};
      cms_buf b;
      long got;
      memset(s, 'a', big);
      v[1].s = s;
      cms_buf_init(&b, 0);
      got = cms_form_accids(&b, v, 3, 32);
      CHECK(got == 2 && b.len == 0 && b.cap <= 4096, "a 1 MiB accid: %ld, %zu bytes reserved",
            got, b.cap);
      cms_buf_free(&b);
      free(s);
    }
  }
}

/* a message object as cms_form_msg writes it: unescaped by libcurl, parsed
 * by cJSON, every field as given, absent ones left out, comma before all
 * but the first */
static void test_form_msg(void) {
  const char *texts[] = {"", "hello", "q\"b\\ \x01 caf\xc3\xa9", "{\"k\":[1,2]}"};
  int round;
  for (round = 0; round < 400; round++) {
    cms_msg_view v;
    cms_buf b;
    char *raw;
    int rawlen = 0, first = round % 2;
    cJSON *j = NULL, *m;
    memset(&v, 0, sizeof v);
    v.msgId = texts[round % 4], v.msgId_len = strlen(v.msgId);
    v.has_msgType = 1, v.msgType = (long long)(next_byte() % 12) - 1;
    if (round % 3) v.attach = texts[(round / 3) % 4], v.attach_len = strlen(v.attach);
    if (round % 5 == 0) v.ext = texts[(round / 5) % 4], v.ext_len = strlen(v.ext);
    if (round % 7 == 0) v.has_subType = 1, v.subType = 1000000007LL * (round + 1);
    if (round % 4 == 1) v.has_resendFlag = 1, v.resendFlag = round % 8 == 1;
    cms_buf_init(&b, 0);
    cms_form_lit(&b, "[");
    if (!first) cms_form_lit(&b, "0");
    CHECK(cms_form_msg(&b, &v, first) == 0, "round %d: written", round);
    cms_form_lit(&b, "]");
    raw = curl_easy_unescape(NULL, b.data, (int)b.len, &rawlen);
    if (raw) j = cJSON_ParseWithLength(raw, (size_t)rawlen);
    m = j ? cJSON_GetArrayItem(j, first ? 0 : 1) : NULL;
    CHECK(m && cJSON_IsObject(m) && cJSON_GetArraySize(j) == (first ? 1 : 2),
          "round %d: not one object after %s: %s", round, first ? "[" : "0", raw ? raw : "?");
    if (m) {
      cJSON *f;
      int fields = 2;
      CHECK((f = cJSON_GetObjectItem(m, "msgId")) && cJSON_IsString(f) &&
                strcmp(f->valuestring, v.msgId) == 0, "round %d: msgId", round);
      CHECK((f = cJSON_GetObjectItem(m, "msgType")) && cJSON_IsNumber(f) &&
                f->valuedouble == (double)v.msgType, "round %d: msgType", round);
      f = cJSON_GetObjectItem(m, "attach");
      CHECK(v.attach ? f && cJSON_IsString(f) && strcmp(f->valuestring, v.attach) == 0 : !f,
            "round %d: attach", round);
      f = cJSON_GetObjectItem(m, "ext");
      CHECK(v.ext ? f && cJSON_IsString(f) && strcmp(f->valuestring, v.ext) == 0 : !f,
            "round %d: ext", round);
      f = cJSON_GetObjectItem(m, "subType");
      CHECK(v.has_subType ? f && f->valuedouble == (double)v.subType : !f, "round %d: subType",
            round);
      f = cJSON_GetObjectItem(m, "resendFlag");
      CHECK(v.has_resendFlag ? f && f->valuedouble == (double)v.resendFlag : !f,
            "round %d: resendFlag", round);
      fields += !!v.attach + !!v.ext + v.has_subType + v.has_resendFlag;
      CHECK(cJSON_GetArraySize(m) == fields, "round %d: %d fields", round, fields);
    }
    cJSON_Delete(j);
    curl_free(raw);
    cms_buf_free(&b);
  }
  {
    /* texts whose reservation (18 bytes a byte) would wrap a size_t are
     * refused before anything is read or written (on a 32-bit size_t the old
     * fixed limit of 2^30 let 18 * n wrap; here every size_t is checked) */
    static const char dummy[1] = {'x'};
    cms_msg_view v;
    cms_buf b;
    memset(&v, 0, sizeof v);
    v.msgId = v.attach = v.ext = dummy;
    v.msgId_len = v.attach_len = v.ext_len = (SIZE_MAX - 512) / 54 + 1;
    v.has_msgType = 1;
    cms_buf_init(&b, 0);
    cms_buf_addc(&b, 'x');
    CHECK(cms_form_msg(&b, &v, 1) == -1 && b.len == 1, "lengths past a size_t's reach");
    v.msgId_len = 1, v.attach_len = SIZE_MAX / 18 + 1, v.ext_len = 0;
    CHECK(cms_form_msg(&b, &v, 1) == -1 && b.len == 1, "an attach past a size_t's reach");
    cms_buf_free(&b);
  }
}

static void test_signing(void) {
  char out[41], nonce[CMS_NONCE_LEN + 1], other[CMS_NONCE_LEN + 1], md5[33];
  CHECK(cms_checksum(NULL, "secret", 6, "12345", "1508481877", out) == 0 &&
            strcmp(out, "2f45bdd8cc89d97631345e9fcba98184de732ae2") == 0,
        "API.md's CheckSum vector: %s", out);
  {
    /* a kept context gives what a fresh one gives, call after call */
    cms_sha1 h = {NULL};
    char kept[41], fresh[41];
    int i, same = 1;
    for (i = 0; i < 4; i++) {
      char n[16], t[16];
      snprintf(n, sizeof n, "%d", 12345 + i * 7);
      snprintf(t, sizeof t, "%d", 1508481877 + i);
      if (cms_checksum(&h, "secret", 6 - (size_t)(i & 1), n, t, kept) ||
          cms_checksum(NULL, "secret", 6 - (size_t)(i & 1), n, t, fresh) || strcmp(kept, fresh))
        same = 0;
    }
    CHECK(same && h.ctx != NULL, "kept SHA1 context: same CheckSums as fresh ones");
    CHECK(cms_checksum(&h, "secret", 6, "12345", "1508481877", out) == 0 &&
              strcmp(out, "2f45bdd8cc89d97631345e9fcba98184de732ae2") == 0,
          "kept SHA1 context: API.md's vector after other sums: %s", out);
    cms_sha1_free(&h);
    cms_sha1_free(&h);
    CHECK(h.ctx == NULL, "cms_sha1_free twice");
  }
  CHECK(cms_md5_hex("", 0, md5) == 0 && strcmp(md5, "d41d8cd98f00b204e9800998ecf8427e") == 0,
        "md5 of nothing");
  CHECK(cms_nonce(nonce) == 0 && cms_nonce(other) == 0 && strlen(nonce) == 32 &&
            strcmp(nonce, other) != 0,
        "nonces are 32 hex characters and differ");
}

/* cms_json_check: the grammar, every byte judged; and whatever it accepts,
 * cJSON (more lenient) parses whole */
static void test_json_check(void) {
  static const char *const good[] = {
    "0", "-0", "1.5e-3", "-12E+7", "\"\"", "\"a\\u00e9\\n\"", "true", "false", "null", "[]", "{}",
    " [1, [2, {\"a\": null}]] ", "{\"k\":\"\xc3\xa9\"}", "\t\r\n\"x\"\n", NULL};
  static const char *const bad[] = {
    "", " ", "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "0x10", "[1,]", "{\"a\":1,}",
    "{a:1}", "{\"a\" 1}", "[1 2]", "\"\\x\"", "\"\\u12\"", "\"abc", "tru", "nul", "[1]]", "{}}",
    "/* c */ 1", "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[", "{\"a\":", NULL};
  static const char alphabet[] = "{}[],:\"\\ 0123456789.-+eEtrufalsn\x00\xc3\xa9";
  const char *why;
  size_t at;
  int i, k;
  char deep[2 * CMS_JSON_MAX_DEPTH + 4];
  for (i = 0; good[i]; i++)
    CHECK(cms_json_check(good[i], strlen(good[i]), &why, &at) == 0, "json good %s", good[i]);
  for (i = 0; bad[i]; i++)
    CHECK(cms_json_check(bad[i], strlen(bad[i]), &why, &at) == -1 && why, "json bad %s", bad[i]);
  CHECK(cms_json_check("{\"a\":1}\0junk", 12, &why, &at) == -1 && at == 7, "a NUL after the value, at %zu", at);
  CHECK(cms_json_check("[1]\0", 4, &why, &at) == -1, "a NUL at the end");
  CHECK(cms_json_check("\"a\0b\"", 5, &why, &at) == -1, "a NUL in a string");
  CHECK(cms_json_nul_escape("[\"a\\u0000\"]", 11) == 3, "a \\u0000 escape");
  CHECK(cms_json_nul_escape("[\"a\\\\u0000\"]", 12) == -1, "an escaped backslash, then u0000");
  CHECK(cms_json_nul_escape("[\"\\u00001\"]", 11) == 2 && cms_json_nul_escape("[\"\\u0001\"]", 10) == -1,
        "only U+0000");
  for (k = 0; k < CMS_JSON_MAX_DEPTH; k++) deep[k] = '[';
  for (k = 0; k < CMS_JSON_MAX_DEPTH; k++) deep[CMS_JSON_MAX_DEPTH + k] = ']';
  CHECK(cms_json_check(deep, 2 * CMS_JSON_MAX_DEPTH, &why, &at) == 0, "%d levels", CMS_JSON_MAX_DEPTH);
  memmove(deep + 1, deep, 2 * CMS_JSON_MAX_DEPTH);
  deep[0] = '[';
  deep[2 * CMS_JSON_MAX_DEPTH + 1] = ']';
  CHECK(cms_json_check(deep, 2 * CMS_JSON_MAX_DEPTH + 2, &why, &at) == -1, "one level too deep");
  for (i = 0; i < 200000; i++) {
    char t[12];
    size_t n = next_byte() % sizeof t, j;
    for (j = 0; j < n; j++) t[j] = alphabet[next_byte() % (sizeof alphabet - 1)];
    if (cms_json_check(t, n, &why, &at) == 0) {
      const char *end = NULL;
      cJSON *p = cJSON_ParseWithLengthOpts(t, n, &end, 0);
      while (end && end < t + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
      CHECK(p && end == t + n, "accepted %.*s, cJSON does not", (int)n, t);
      cJSON_Delete(p);
    }
  }
}

/* the API codes table: which codes are retryable */
static void test_api_codes(void) {
  static const int retry[] = {408, 416, 500, 503, 514};
  static const int final[] = {200, 403, 414, 417, 431, 13004, 99999};
  size_t i;
  for (i = 0; i < sizeof retry / sizeof *retry; i++)
    CHECK(cms_api_code_retryable(retry[i]), "%d is retryable", retry[i]);
  for (i = 0; i < sizeof final / sizeof *final; i++)
    CHECK(!cms_api_code_retryable(final[i]), "%d is not retryable", final[i]);
  CHECK(cms_api_code_find(414) && strcmp(cms_api_code_find(414)->desc, "parameter error") == 0, "414 desc");
  CHECK(cms_msgtypes[CMS_T_CUSTOM].code == 100 && cms_param_rules[CMS_PR_ENV].max_chars == 32 &&
            strcmp(cms_msg_rules[CMS_MF_ATTACH].name, "attach") == 0 && !cms_param_rules[CMS_PR_COUNT].name,
        "the tables are indexed by their enums");
}

/* a webhook request: md5sum and sha1sum of the body and headers, by hand */
static void test_webhook(void) {
  static const char body[] = "{\"eventType\":\"4\"}";
  cms_wh_header md5 = {"ddc708fb57472fc7aa885424ff6305f3", 32};
  cms_wh_header md5_upper = {"DDC708FB57472FC7AA885424FF6305F3", 32};
  cms_wh_header ct = {"1700000000000", 13};
  cms_wh_header sum = {"6aa2f4197c4aa01285b00c341477facb5844fcee", 40};
  cms_wh_header bad = {"6aa2f4197c4aa01285b00c341477facb5844fced", 40};
  cms_wh_header none = {NULL, 0};
  long long now = 1700000000000LL, age = 300000;
  size_t n = sizeof body - 1;
  cms_verr e;
  CHECK(cms_webhook_verify("secret", 6, md5, ct, sum, body, n, now, age, &e) == 0,
        "a good request: %s", e.message);
  CHECK(cms_webhook_verify("secret", 6, md5, ct, sum, body, n, now + age, age, &e) == 0,
        "max_age old is still fresh");
  CHECK(cms_webhook_verify("secret", 6, md5, ct, sum, body, n, now + age + 1, age, &e) == -1 &&
            strcmp(e.field, "CurTime") == 0 && strstr(e.message, "old"),
        "1 ms too old: %s", e.message);
  CHECK(cms_webhook_verify("secret", 6, md5, ct, sum, body, n, now - age - 1, age, &e) == -1 &&
            strstr(e.message, "in the future"),
        "1 ms too early: %s", e.message);
  CHECK(cms_webhook_verify("secret", 6, md5, ct, bad, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "CheckSum") == 0,
        "a changed CheckSum: %s", e.message);
  CHECK(cms_webhook_verify("secreT", 6, md5, ct, sum, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "CheckSum") == 0 && !strstr(e.message, "secreT"),
        "another secret: %s", e.message);
  CHECK(cms_webhook_verify("secret", 6, md5, ct, sum, body, n - 1, now, age, &e) == -1 &&
            strcmp(e.field, "MD5") == 0,
        "a changed body: %s", e.message);
  /* an MD5 in upper case is checked against the body in any case, and signed as sent */
  CHECK(cms_webhook_verify("secret", 6, md5_upper, ct, sum, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "CheckSum") == 0,
        "upper-case MD5 under a lower-case signature: %s", e.message);
  CHECK(cms_webhook_verify("secret", 6, none, ct, sum, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "MD5") == 0 && strstr(e.message, "missing"),
        "no MD5");
  CHECK(cms_webhook_verify("secret", 6, md5, none, sum, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "CurTime") == 0,
        "no CurTime");
  CHECK(cms_webhook_verify("secret", 6, md5, ct, none, body, n, now, age, &e) == -1 &&
            strcmp(e.field, "CheckSum") == 0,
        "no CheckSum");
}

/* cms_answer_next_big: integer literals over 2^53 outside strings, NULs */
static void test_answer_scan(void) {
  static const struct {
    const char *text;
    size_t len;
    int want;          /* first result */
    const char *found; /* the literal found (want == 1) */
  } cases[] = {
    {"{\"a\":9007199254740992}", 0, 0, NULL},          /* 2^53 itself: exact */
    {"{\"a\":9007199254740993}", 0, 1, "9007199254740993"},
    {"{\"a\":-9007199254740993}", 0, 1, "-9007199254740993"},
    {"[00000000000000000001]", 0, 0, NULL},            /* leading zeros do not count */
    {"[123456789012345678901234]", 0, 1, "123456789012345678901234"},
    {"[1.5e300, 12345678901234567.5, 1e99999999999999999]", 0, 0, NULL}, /* not integers */
    {"{\"s\":\"99999999999999999\"}", 0, 0, NULL},    /* inside a string */
    {"{\"s\":\"a\\\"99999999999999999\"}", 0, 0, NULL}, /* after an escaped quote */
    {"{\"s\":\"a\\\\\"99999999999999999}", 0, 1, "99999999999999999"}, /* escaped backslash */
    {"{\"a\":1}\0junk", 12, -1, NULL},
    {"\"\\\0\"", 4, -1, NULL},                       /* a NUL after a backslash */
    {"-", 0, 0, NULL},
    {"", 0, 0, NULL},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = cases[i].len ? cases[i].len : strlen(cases[i].text), pos = 0, len = 0;
    int r = cms_answer_next_big(cases[i].text, n, &pos, &len);
    CHECK(r == cases[i].want, "answer scan %zu: %d, want %d", i, r, cases[i].want);
    if (r == 1 && cases[i].found)
      CHECK(len == strlen(cases[i].found) && memcmp(cases[i].text + pos, cases[i].found, len) == 0,
            "answer scan %zu: found %.*s", i, (int)len, cases[i].text + pos);
  }
  { /* resuming after each literal finds every one, then none */
    const char *t = "[9007199254740993,1,\"18446744073709551616\",18446744073709551616]";
    size_t pos = 0, len = 0;
    int k = 0;
    while (cms_answer_next_big(t, strlen(t), &pos, &len) == 1) k++, pos += len;
    CHECK(k == 2, "answer scan: %d literals, want 2", k);
  }
}

/* cms_rand after fork(): the child never draws what the parent draws, nor
 * does its child; no_wipe: the pid check instead of MADV_WIPEONFORK */
static void rand_fork(int no_wipe) {
  cms_rand r;
  char mine[CMS_NONCE_LEN + 1], theirs[CMS_NONCE_LEN + 1], third[CMS_NONCE_LEN + 1];
  int fds[2], st = 0;
  pid_t pid;
  const char *how = no_wipe ? "pid check" : "wipe on fork";
  cms_rand_init(&r);
  r.no_wipe = no_wipe;
  CHECK(cms_rand_hex32(&r, mine) == 0, "rand (%s): first draw", how); /* the pool is filled */
#ifdef __linux__
  /* Linux 4.14 and later wipe the page: no system call per draw */
  if (!no_wipe) CHECK(r.no_wipe == 0, "rand: MADV_WIPEONFORK refused by this kernel");
#endif
  if (pipe(fds) != 0) {
    CHECK(0, "rand: pipe");
    return;
  }
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    char v[CMS_NONCE_LEN + 1], w[CMS_NONCE_LEN + 1];
    pid_t g;
    int gst = 0;
    close(fds[0]);
    /* the grandchild, forked after the child drew: neither may repeat */
    if (cms_rand_hex32(&r, v) != 0 || write(fds[1], v, CMS_NONCE_LEN) != CMS_NONCE_LEN) _exit(1);
    g = fork();
    if (g == 0) {
      if (cms_rand_hex32(&r, w) != 0 || write(fds[1], w, CMS_NONCE_LEN) != CMS_NONCE_LEN)
        _exit(1);
      _exit(0);
    }
    if (g < 0 || waitpid(g, &gst, 0) != g || !WIFEXITED(gst) || WEXITSTATUS(gst)) _exit(1);
    cms_rand_free(&r);
    _exit(0);
  }
  close(fds[1]);
  CHECK(cms_rand_hex32(&r, mine) == 0, "rand (%s): parent's draw", how);
  memset(theirs, 0, sizeof theirs);
  memset(third, 0, sizeof third);
  CHECK(pid > 0 && read(fds[0], theirs, CMS_NONCE_LEN) == CMS_NONCE_LEN, "rand (%s): child's draw",
        how);
  CHECK(pid > 0 && read(fds[0], third, CMS_NONCE_LEN) == CMS_NONCE_LEN,
        "rand (%s): grandchild's draw", how);
  close(fds[0]);
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "rand (%s): child exit", how);
  CHECK(strcmp(mine, theirs) != 0 && strcmp(mine, third) != 0 && strcmp(theirs, third) != 0,
        "rand (%s): two processes drew the same bytes (%s / %s / %s)", how, mine, theirs, third);
  cms_rand_free(&r);
  cms_rand_free(&r);
  CHECK(r.page == NULL, "rand: cms_rand_free twice");
}

static void test_rand_fork(void) {
  rand_fork(0);
  rand_fork(1);
}

static int within(double got, double want, double rel) {
  return got >= want * (1 - rel) && got <= want * (1 + rel);
}

static void test_stats(void) {
  static cms_stats st;
  cms_hist h;
  int i;
  char name[32];
  memset(&h, 0, sizeof h);
  CHECK(cms_hist_quantile(&h, 0.5) == 0, "an empty histogram");
  for (i = 1; i <= 1000; i++) cms_hist_add(&h, i / 1000.0); /* 1 ms .. 1 s */
  CHECK(h.count == 1000 && within(h.sum, 500.5, 1e-9) && h.max == 1.0, "count, sum, max");
  CHECK(within(cms_hist_quantile(&h, 0.5), 0.5, 0.125), "p50 %g", cms_hist_quantile(&h, 0.5));
  CHECK(within(cms_hist_quantile(&h, 0.9), 0.9, 0.125), "p90 %g", cms_hist_quantile(&h, 0.9));
  CHECK(within(cms_hist_quantile(&h, 0.99), 0.99, 0.125), "p99 %g", cms_hist_quantile(&h, 0.99));
  CHECK(cms_hist_quantile(&h, 1) == 1.0, "p100 is the max");
  CHECK(cms_hist_quantile(&h, 0.5) >= 0.5, "a quantile is an upper bound");
  memset(&h, 0, sizeof h);
  cms_hist_add(&h, 0.000001);
  cms_hist_add(&h, -1); /* a clock step back counts as 0 */
  CHECK(h.buckets[0] == 2 && cms_hist_quantile(&h, 0.99) == 0.000001, "tiny values");
  cms_hist_add(&h, 1e6); /* past the last bucket */
  CHECK(h.buckets[CMS_HIST_BUCKETS - 1] == 1 && cms_hist_quantile(&h, 1) == 1e6, "huge values");
  {
  double v = 1e-5;
  for (i = 0; i < 2000 && v < 3600; i++, v *= 1.01) { /* each bucket's bound holds its values */
    cms_hist tmp;
    double q;
    memset(&tmp, 0, sizeof tmp);
    cms_hist_add(&tmp, v);
    cms_hist_add(&tmp, v * 4);
    q = cms_hist_quantile(&tmp, 0.5);
    CHECK(q >= v && (q <= v * 1.125 + 16e-6), "value %g in a bucket up to %g", v, q);
  }
  }

  cms_stats_init(&st);
  CHECK(cms_stats_path_get(&st, "/chatroom/a.action") == cms_stats_path_get(&st, "chatroom/a.action"),
        "a leading slash names the same path");
  for (i = 0; i < 12; i++) {
    snprintf(name, sizeof name, "p%d", i);
    cms_stats_path_get(&st, name)->calls++;
  }
  CHECK(strcmp(st.paths[CMS_STATS_PATHS].path, "other") == 0 &&
            st.paths[CMS_STATS_PATHS].calls == 5,
        "paths beyond %d count as other: %llu", CMS_STATS_PATHS,
        st.paths[CMS_STATS_PATHS].calls);
  for (i = 0; i < 40; i++) cms_stats_code(&st, i % 35);
  CHECK(st.ncodes == CMS_STATS_CODES && st.codes_other == 3 && st.codes[0].n == 2,
        "codes: %d kept, %llu other", st.ncodes, st.codes_other);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  test_answer_scan();
  test_rand_fork();
  test_escape_matches_libcurl();
  test_json_string_round_trip();
  test_pieces();
  test_form_limit();
  test_pacing();
  test_ints();
  test_utf16();
  test_utf16_differential();
  test_accids();
  test_form_accids();
  test_form_msg();
  test_signing();
  test_json_check();
  test_api_codes();
  test_webhook();
  test_stats();
  curl_global_cleanup();
  printf("core: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
