/* json_test.c -- unit tests of src/core/cms_json (no Lua): known texts with
 * the verdict and reason RFC 8259 and the two libraries give, container
 * counts, and that a scan allocates nothing.  Built and run by `make test`
 * (plain and sanitized); spec/fuzz/fuzz_json_diff.c goes further. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_json.h"

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

/* counting allocator (not under ASan, which owns malloc) */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#ifndef COUNT_ALLOCS
#define COUNT_ALLOCS 1
#endif
#if COUNT_ALLOCS
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static long allocs;
void *malloc(size_t n) { allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { allocs++; return __libc_realloc(p, n); }
#endif

typedef struct jcase {
  const char *text;
  size_t len;             /* 0: strlen(text) */
  cms_json_status want;
  cms_json_type top;
} jcase;

#define L(s) s, sizeof(s) - 1
static const jcase cases[] = {
  /* valid, every kind of value at the top as both libraries allow */
  {L("{}"), CMS_JSON_OK, CMS_JSON_OBJECT},
  {L(" [ ] "), CMS_JSON_OK, CMS_JSON_ARRAY},
  {L("\"x\""), CMS_JSON_OK, CMS_JSON_STRING},
  {L("-0"), CMS_JSON_OK, CMS_JSON_NUMBER},
  {L("0.5e-3"), CMS_JSON_OK, CMS_JSON_NUMBER},
  {L("1E+308"), CMS_JSON_OK, CMS_JSON_NUMBER},
  {L("1e400"), CMS_JSON_OK, CMS_JSON_NUMBER},        /* inf in both libraries, valid grammar */
  {L("true"), CMS_JSON_OK, CMS_JSON_TRUE},
  {L("false"), CMS_JSON_OK, CMS_JSON_FALSE},
  {L("\t\r\nnull\n"), CMS_JSON_OK, CMS_JSON_NULL},
  {L("{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\ud83d\\ude00\\n\\/\"}"), CMS_JSON_OK,
   CMS_JSON_OBJECT},
  {L("{\"a\":1,\"a\":2}"), CMS_JSON_OK, CMS_JSON_OBJECT}, /* duplicates: the last wins */
  {L("\"raw\x01\x1f\xff bytes\""), CMS_JSON_OK, CMS_JSON_STRING}, /* as both libraries take */
  {L("\"\\u0000\""), CMS_JSON_OK, CMS_JSON_STRING},                 /* an escaped NUL is fine */
  {L("[\"\xe4\xbd\xa0\xe5\xa5\xbd\"]"), CMS_JSON_OK, CMS_JSON_ARRAY},
  /* NUL bytes: defect 5's class, wherever they stand */
  {"{\"a\":1}\0junk", 12, CMS_JSON_E_NUL, CMS_JSON_NONE},
  {"{\"a\":1}\0", 8, CMS_JSON_E_NUL, CMS_JSON_NONE},
  {"\"a\0b\"", 5, CMS_JSON_E_NUL, CMS_JSON_NONE},
  {"[1,\0]", 5, CMS_JSON_E_NUL, CMS_JSON_NONE},
  {"\0", 1, CMS_JSON_E_NUL, CMS_JSON_NONE},
  {"\"\\u00\0\"", 7, CMS_JSON_E_NUL, CMS_JSON_NONE},
  /* numbers outside the grammar that strtod would take */
  {L("01"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("[-01]"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("1."), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("[1.e5]"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("1e"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("1e+"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("-"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("-x"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("1.5.2"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  {L("0x10"), CMS_JSON_E_TRAILING, CMS_JSON_NONE},
  {L("+1"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L(".5"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("NaN"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("Infinity"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("-Infinity"), CMS_JSON_E_NUMBER, CMS_JSON_NONE},
  /* strings and escapes */
  {L("\"\\x\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},
  {L("\"\\u12G4\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},
  {L("\"\\ud800\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},     /* a lone high surrogate */
  {L("\"\\udc00\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},     /* a lone low one */
  {L("\"\\ud800\\u0041\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},
  {L("\"\\ud800\\ud800\""), CMS_JSON_E_ESCAPE, CMS_JSON_NONE},
  {L("\"abc"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("\"\\"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("\"\\u12"), CMS_JSON_E_END, CMS_JSON_NONE},
  /* structure */
  {L(""), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("   "), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("{"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("{\"a\""), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("{\"a\":"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("[1,"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("[1,]"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{\"a\":1,}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{,}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{\"a\" 1}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{1:2}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("[1}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{\"a\":1]"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("[1 2]"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("{} {}"), CMS_JSON_E_TRAILING, CMS_JSON_NONE},
  {L("tru"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("trUe"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
  {L("nul"), CMS_JSON_E_END, CMS_JSON_NONE},
  {L("\xef\xbb\xbf{}"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE}, /* a BOM: lua-cjson refuses it */
  {L("[\x01]"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},         /* cJSON's white space, not JSON's */
  {L("[\f]"), CMS_JSON_E_SYNTAX, CMS_JSON_NONE},
};

/* what cJSON says of the same text, read whole */
static int cjson_accepts(const char *s, size_t n) {
  const char *end = NULL;
  cJSON *v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  int ok = v != NULL;
  if (ok) {
    while (end < s + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    ok = end == s + n;
  }
  cJSON_Delete(v);
  return ok;
}

static void test_cases(void) {
  size_t k;
  for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const jcase *c = &cases[k];
    cms_json_info sc;
    int r;
    memset(&sc, 0, sizeof sc);
    r = cms_json_scan(c->text, c->len, 0, &sc);
    CHECK((r == 0) == (c->want == CMS_JSON_OK) && sc.status == c->want && sc.top == c->top,
          "case %zu \"%.*s\": status %d (%s) top %d, want %d top %d", k, (int)c->len, c->text,
          (int)sc.status, cms_json_strerror(sc.status), (int)sc.top, (int)c->want, (int)c->top);
    /* every text this scanner accepts, cJSON accepts too */
    if (r == 0) CHECK(cjson_accepts(c->text, c->len), "case %zu: cJSON refuses it", k);
  }
}

static void test_offsets(void) {
  cms_json_info sc;
  memset(&sc, 0, sizeof sc);
  cms_json_scan("{\"a\":1}\0junk", 12, 0, &sc);
  CHECK(sc.offset == 7, "NUL at 7, got %zu", sc.offset);
  cms_json_scan("[1, 2.]", 7, 0, &sc);
  CHECK(sc.status == CMS_JSON_E_NUMBER && sc.offset == 4, "number at 4, got %zu", sc.offset);
  cms_json_scan("[1,]", 4, 0, &sc);
  CHECK(sc.offset == 3, "] at 3, got %zu", sc.offset);
}

/* the strict level every JSON-valued request field gets (cms_json_check) */
static void test_strict(void) {
  static const struct {
    const char *text;
    size_t len;
    cms_json_status want;
    size_t at;
  } st[] = {
    {L("{\"a\":\"\xe4\xbd\xa0\xf0\x9f\x98\x80\"}"), CMS_JSON_OK, 0},
    {L("\"tab\there\""), CMS_JSON_E_CONTROL, 4},
    {L("\"\x01\""), CMS_JSON_E_CONTROL, 1},
    {L("\"\xff\""), CMS_JSON_E_UTF8, 1},
    {L("\"\xc0\xaf\""), CMS_JSON_E_UTF8, 1},          /* an overlong "/" */
    {L("\"\xed\xa0\x80\""), CMS_JSON_E_UTF8, 1},      /* a surrogate in UTF-8 */
    {L("\"\xf4\x90\x80\x80\""), CMS_JSON_E_UTF8, 1}, /* beyond U+10FFFF */
    {L("\"\xe4\xbd\""), CMS_JSON_E_UTF8, 1},          /* cut short before the quote */
    {L("[\"ok\",\"x\x7f\"]"), CMS_JSON_OK, 0},      /* DEL is not a control byte in JSON */
    {"{\"a\":1}\0", 8, CMS_JSON_E_NUL, 7},
  };
  size_t k;
  for (k = 0; k < sizeof st / sizeof st[0]; k++) {
    const char *why = NULL;
    size_t at = 0;
    cms_json_info info;
    int r = cms_json_check(st[k].text, st[k].len, &why, &at);
    memset(&info, 0, sizeof info);
    cms_json_scan(st[k].text, st[k].len, CMS_JSON_STRICT, &info);
    CHECK((r == 0) == (st[k].want == CMS_JSON_OK) && info.status == st[k].want &&
              (r == 0 || (at == st[k].at && why && strcmp(why, cms_json_strerror(st[k].want)) == 0)),
          "strict case %zu: status %d at %zu (%s)", k, (int)info.status, at, why ? why : "-");
    /* the lax level (answers) takes raw bytes in strings as both libraries do */
    if (st[k].want == CMS_JSON_E_CONTROL || st[k].want == CMS_JSON_E_UTF8) {
      memset(&info, 0, sizeof info);
      CHECK(cms_json_scan(st[k].text, st[k].len, 0, &info) == 0, "lax case %zu refused", k);
    }
  }
}

static void test_depth(void) {
  static char deep[2 * CMS_JSON_MAX_DEPTH + 4];
  cms_json_info sc;
  int d;
  memset(&sc, 0, sizeof sc);
  for (d = CMS_JSON_MAX_DEPTH; d <= CMS_JSON_MAX_DEPTH + 1; d++) {
    memset(deep, '[', (size_t)d);
    memset(deep + d, ']', (size_t)d);
    cms_json_scan(deep, 2 * (size_t)d, 0, &sc);
    CHECK(d == CMS_JSON_MAX_DEPTH ? sc.status == CMS_JSON_OK : sc.status == CMS_JSON_E_DEPTH,
          "depth %d: status %d", d, (int)sc.status);
    CHECK((cjson_accepts(deep, 2 * (size_t)d) != 0) == (sc.status == CMS_JSON_OK),
          "depth %d: cJSON disagrees", d);
  }
}

static void test_counts(void) {
  const char *t = "{\"code\":200,\"success\":[{\"m1\":{\"a\":1,\"b\":[]}},{\"m2\":{}}],\"fail\":[],"
                  "\"x\":[[1,2,3],{\"k\":\"v\"}]}";
  /* containers in opening order: top{4} success[2] {1} {2} b[0] {1} {0} fail[0] x[2] [3] {1} */
  static const uint32_t want[] = {4, 2, 1, 2, 0, 1, 0, 0, 2, 3, 1};
  /* and the one opened after each closes */
  static const uint32_t next[] = {11, 7, 5, 5, 5, 7, 7, 8, 11, 10, 11};
  cms_json_box boxes[16], few[3];
  cms_json_info sc;
  size_t k;
  memset(&sc, 0, sizeof sc);
  sc.boxes = boxes;
  sc.boxes_cap = 16;
  CHECK(cms_json_scan(t, strlen(t), 0, &sc) == 0, "counts text refused");
  CHECK(sc.n_containers == 11, "11 containers, got %zu", sc.n_containers);
  for (k = 0; k < 11; k++) {
    CHECK(boxes[k].count == want[k], "container %zu: %u members, want %u", k, boxes[k].count,
          want[k]);
    CHECK(boxes[k].next == next[k], "container %zu: next %u, want %u", k, boxes[k].next, next[k]);
    CHECK(boxes[k].end < strlen(t) && (t[boxes[k].end] == '}' || t[boxes[k].end] == ']'),
          "container %zu: end %u is no closing bracket", k, boxes[k].end);
  }
  CHECK(boxes[0].end == strlen(t) - 1 && t[boxes[4].end - 1] == '[', "end offsets");
  /* a smaller array: the first ones are noted, the rest only numbered */
  sc.boxes = few;
  sc.boxes_cap = 3;
  CHECK(cms_json_scan(t, strlen(t), 0, &sc) == 0 && sc.n_containers == 11 && few[0].count == 4 &&
            few[1].count == 2 && few[2].count == 1,
        "capped counts");
}

static void test_no_allocation(void) {
#if COUNT_ALLOCS
  const char *t = "{\"a\":[1,2,{\"b\":\"\\u00e9\\ud83d\\ude00 text\"}],\"c\":-1.5e3}";
  cms_json_info sc;
  long before;
  memset(&sc, 0, sizeof sc);
  before = allocs;
  {
    void *p = malloc(1); /* the counter itself works */
    CHECK(allocs == before + 1, "the allocation counter does not count");
    free(p);
  }
  before = allocs;
  cms_json_scan(t, strlen(t), 0, &sc);
  cms_json_scan("[1,", 3, 0, &sc);
  CHECK(allocs == before, "a scan allocated %ld times", allocs - before);
#endif
}

int main(void) {
  test_cases();
  test_offsets();
  test_strict();
  test_depth();
  test_counts();
  test_no_allocation();
  printf("json-test: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
