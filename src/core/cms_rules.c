#include "cms_rules.h"
#include "cms_chars.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RULE(id, nm, kind, req, chars, lo, hi, lift, doc) \
  [id] = {nm, kind, req, chars, lo, hi, doc, lift, sizeof nm - 1}

const cms_rule cms_param_rules[CMS_PR_COUNT + 1] = {
  RULE(CMS_PR_ROOMID, "roomid", CMS_K_ROOMID, 1, 0, 0, 0, 0,
       "a 64-bit integer > 0 (the chat room id)"),
  RULE(CMS_PR_MSGLIST, "msgList", CMS_K_MSGLIST, 1, 0, 1, CMS_MSGLIST_MAX, 0,
       "JSON array of 1 to 10 messages"),
  RULE(CMS_PR_FROMACCID, "fromAccid", CMS_K_ACCID, 1, CMS_ACCID_MAX, 0, 0, 0, "the sender's accid"),
  RULE(CMS_PR_TOACCIDS, "toAccids", CMS_K_ACCIDS, 1, CMS_ACCID_MAX, 1, CMS_ACCIDS_MAX, 0,
       "JSON array of 1 to 100 accids"),
  RULE(CMS_PR_ROUTE, "route", CMS_K_FLAG, 0, 0, 0, 0, 0, "0 or 1 (default 1: sync to the webhook)"),
  RULE(CMS_PR_USEYIDUN, "useYidun", CMS_K_INT, 0, 0, 0, 0, 0,
       "an integer; only 0 (skip moderation) has a meaning"),
  RULE(CMS_PR_YIDUNANTICHEATING, "yidunAntiCheating", CMS_K_JSON, 0, 1024, 0, 0, 0,
       "JSON text of at most 1024 characters"),
  RULE(CMS_PR_YIDUNANTISPAMEXT, "yidunAntiSpamExt", CMS_K_JSON, 0, 1024, 0, 0, 0,
       "JSON text of at most 1024 characters"),
  RULE(CMS_PR_BID, "bid", CMS_K_TEXT, 0, 0, 0, 0, 0, "moderation business id"),
  RULE(CMS_PR_ANTISPAM, "antispam", CMS_K_BOOL, 0, 0, 0, 0, 0, "true or false (default false)"),
  RULE(CMS_PR_ANTISPAMCUSTOM, "antispamCustom", CMS_K_JSON, 0, 5000, 0, 0, 0,
       "JSON {\"type\":1|2|3,\"data\":\"...\"} of at most 5000 characters, only with antispam=true"),
  RULE(CMS_PR_ENV, "env", CMS_K_TEXT, 0, 32, 0, 0, 0,
       "webhook environment name of at most 32 characters"),
  [CMS_PR_COUNT] = {NULL, CMS_K_TEXT, 0, 0, 0, 0, NULL, 0}};
_Static_assert(sizeof cms_param_rules / sizeof cms_param_rules[0] == CMS_PR_COUNT + 1,
               "one rule per cms_param_id");

const cms_rule cms_msg_rules[CMS_MF_COUNT + 1] = {
  RULE(CMS_MF_MSGID, "msgId", CMS_K_TEXT, 1, 0, 0, 0, 1, "non-empty string, unique within msgList"),
  RULE(CMS_MF_MSGTYPE, "msgType", CMS_K_INT, 1, 0, 0, 0, 0,
       "0 1 2 3 4 6 10 100 (or text image audio video location file tip custom)"),
  RULE(CMS_MF_ATTACH, "attach", CMS_K_TEXT, 0, 4096, 0, 0, 0,
       "message body of 1 to 4096 characters (optional for text, tip and custom)"),
  RULE(CMS_MF_EXT, "ext", CMS_K_JSON, 0, 4096, 0, 0, 0, "JSON text of at most 4096 characters"),
  RULE(CMS_MF_SUBTYPE, "subType", CMS_K_POSINT, 0, 0, 0, 0, 1, "an integer > 0"),
  RULE(CMS_MF_RESENDFLAG, "resendFlag", CMS_K_FLAG, 0, 0, 0, 0, 1,
       "0 or 1 (1: a resend, de-duplicated by msgId)"),
  [CMS_MF_COUNT] = {NULL, CMS_K_TEXT, 0, 0, 0, 0, NULL, 0}};
_Static_assert(sizeof cms_msg_rules / sizeof cms_msg_rules[0] == CMS_MF_COUNT + 1,
               "one rule per cms_msg_id");

static const cms_attach_field image_fields[] = {
  {"name", CMS_J_STRING, 0}, {"md5", CMS_J_STRING, 1}, {"url", CMS_J_STRING, 1},
  {"ext", CMS_J_STRING, 1},  {"w", CMS_J_INTEGER, 1},  {"h", CMS_J_INTEGER, 1},
  {"size", CMS_J_INTEGER, 1}, {NULL, CMS_J_MISSING, 0}};
static const cms_attach_field audio_fields[] = {
  {"dur", CMS_J_INTEGER, 1}, {"md5", CMS_J_STRING, 1}, {"url", CMS_J_STRING, 1},
  {"ext", CMS_J_STRING, 1},  {"size", CMS_J_INTEGER, 1}, {NULL, CMS_J_MISSING, 0}};
static const cms_attach_field video_fields[] = {
  {"dur", CMS_J_INTEGER, 1}, {"md5", CMS_J_STRING, 1}, {"url", CMS_J_STRING, 1},
  {"w", CMS_J_INTEGER, 1},   {"h", CMS_J_INTEGER, 1},  {"ext", CMS_J_STRING, 1},
  {"size", CMS_J_INTEGER, 1}, {"name", CMS_J_STRING, 0}, {NULL, CMS_J_MISSING, 0}};
static const cms_attach_field location_fields[] = {
  {"title", CMS_J_STRING, 1}, {"lng", CMS_J_NUMBER, 1}, {"lat", CMS_J_NUMBER, 1},
  {NULL, CMS_J_MISSING, 0}};
static const cms_attach_field file_fields[] = {
  {"name", CMS_J_STRING, 1}, {"md5", CMS_J_STRING, 1}, {"url", CMS_J_STRING, 1},
  {"ext", CMS_J_STRING, 1},  {"size", CMS_J_INTEGER, 1}, {NULL, CMS_J_MISSING, 0}};

const cms_msgtype cms_msgtypes[CMS_T_COUNT + 1] = {
  [CMS_T_TEXT] = {0, "text", "TEXT", 0, 0, NULL, 0},
  [CMS_T_IMAGE] = {1, "image", "PICTURE", 1, 1, image_fields, 1},
  [CMS_T_AUDIO] = {2, "audio", "AUDIO", 1, 1, audio_fields, 1},
  [CMS_T_VIDEO] = {3, "video", "VIDEO", 1, 1, video_fields, 1},
  [CMS_T_LOCATION] = {4, "location", "LOCATION", 1, 1, location_fields, 1},
  [CMS_T_FILE] = {6, "file", "FILE", 1, 1, file_fields, 1},
  [CMS_T_TIP] = {10, "tip", "TIPS", 0, 0, NULL, 0},
  [CMS_T_CUSTOM] = {100, "custom", "CUSTOM", 1, 0, NULL, 0},
  [CMS_T_COUNT] = {-1, NULL, NULL, 0, 0, NULL, 0}};
_Static_assert(sizeof cms_msgtypes / sizeof cms_msgtypes[0] == CMS_T_COUNT + 1,
               "one entry per cms_type_id");

const cms_api_code cms_api_codes[] = {
  {200, 0, "ok"},
  {403, 0, "illegal operation or no permission"},
  {404, 0, "not found"},
  {405, 0, "parameter too long"},
  {408, 1, "timeout"},
  {414, 0, "parameter error"},
  {416, 1, "rate limit exceeded"},
  {417, 0, "repeated operation"},
  {419, 0, "over a quantity limit"},
  {431, 0, "HTTP request repeated"},
  {500, 1, "internal server error"},
  {503, 1, "server busy"},
  {514, 1, "service unavailable"},
  {13001, 0, "IM connection abnormal"},
  {13002, 0, "chat room abnormal"},
  {13003, 0, "sender in the room's blocklist"},
  {13004, 0, "sender muted in the room"},
  {13005, 0, "anti-spam hit on the room profile"},
  {13006, 0, "the room is wholly muted"},
  {13009, 0, "scheduled room closing disabled"},
  {0, 0, NULL}};

const cms_api_code *cms_api_code_find(long long code) {
  const cms_api_code *c;
  for (c = cms_api_codes; c->code; c++)
    if (c->code == code) return c;
  return NULL;
}

int cms_api_code_retryable(long long code) {
  const cms_api_code *c = cms_api_code_find(code);
  return c ? c->retryable : 0;
}

static const cms_rule *find_rule(const cms_rule *t, const char *name) {
  for (; t->name; t++)
    if (strcmp(t->name, name) == 0) return t;
  return NULL;
}
const cms_rule *cms_msg_rule(const char *name) { return find_rule(cms_msg_rules, name); }

const cms_msgtype *cms_msgtype_by_code(long long code) {
  const cms_msgtype *t;
  for (t = cms_msgtypes; t->name; t++)
    if (t->code == code) return t;
  return NULL;
}

const cms_msgtype *cms_msgtype_by_name(const char *name, size_t len) {
  const cms_msgtype *t;
  for (t = cms_msgtypes; t->name; t++)
    if (strlen(t->name) == len && memcmp(t->name, name, len) == 0) return t;
  return NULL;
}

int cms_verr_set(cms_verr *e, const char *field, const char *fmt, ...) {
  va_list ap;
  if (!e) return -1;
  snprintf(e->field, sizeof e->field, "%s", field ? field : "");
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* UTF-8 as a shift DFA: a state is a multiple of 6, the next state after
 * byte b is (row[b] >> state) & 63, and each row's top bits hold how many
 * UTF-16 units a byte adds (1 for a lead or ASCII byte, 2 for a four-byte
 * lead, 0 for a continuation).  The states follow Unicode Table 3-7 by the
 * second byte's range: no overlongs, no surrogates, nothing past U+10FFFF. */
enum { U_OK = 0, U_ERR = 6, U_C1 = 12, U_C2 = 18, U_C3 = 24, U_E0 = 30, U_ED = 36, U_F0 = 42,
       U_F4 = 48 };
#define U_IN(b, lo, hi) ((b) >= (lo) && (b) <= (hi))
#define U_FROM_OK(b)                                                                       \
  ((b) < 0x80 ? U_OK : U_IN(b, 0xC2, 0xDF) ? U_C1 : (b) == 0xE0 ? U_E0 : (b) == 0xED ? U_ED \
   : U_IN(b, 0xE1, 0xEF) ? U_C2 : (b) == 0xF0 ? U_F0 : (b) == 0xF4 ? U_F4                   \
   : U_IN(b, 0xF1, 0xF3) ? U_C3 : U_ERR)
#define U_CONT(b, lo, hi, next) (U_IN(b, lo, hi) ? (next) : U_ERR)
#define U_UNITS(b) ((b) >= 0xF0 ? 2ULL : ((b) & 0xC0) == 0x80 ? 0ULL : 1ULL)
#define U_ROW(b)                                                                         \
  ((unsigned long long)U_FROM_OK(b) << U_OK | (unsigned long long)U_ERR << U_ERR |        \
   (unsigned long long)U_CONT(b, 0x80, 0xBF, U_OK) << U_C1 |                              \
   (unsigned long long)U_CONT(b, 0x80, 0xBF, U_C1) << U_C2 |                              \
   (unsigned long long)U_CONT(b, 0x80, 0xBF, U_C2) << U_C3 |                              \
   (unsigned long long)U_CONT(b, 0xA0, 0xBF, U_C1) << U_E0 |                              \
   (unsigned long long)U_CONT(b, 0x80, 0x9F, U_C1) << U_ED |                              \
   (unsigned long long)U_CONT(b, 0x90, 0xBF, U_C2) << U_F0 |                              \
   (unsigned long long)U_CONT(b, 0x80, 0x8F, U_C2) << U_F4 | U_UNITS(b) << 60)
#define U4(b) U_ROW(b), U_ROW((b) + 1), U_ROW((b) + 2), U_ROW((b) + 3)
#define U16(b) U4(b), U4((b) + 4), U4((b) + 8), U4((b) + 12)
#define U64(b) U16(b), U16((b) + 16), U16((b) + 32), U16((b) + 48)
static const unsigned long long utf8_rows[256] = {U64(0), U64(64), U64(128), U64(192)};

#define U_STEP()                              \
  do {                                        \
    unsigned long long r_ = utf8_rows[*s++];  \
    state = (r_ >> state) & 63;               \
    units += r_ >> 60;                        \
  } while (0)

long cms_utf16_len(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str, *e = s + n;
  unsigned long long state = U_OK, units = 0;
  /* eight bytes at a time: ASCII between characters is counted at once, any
   * other block runs through the DFA byte by byte */
  while (e - s >= 8) {
    unsigned long long x;
    memcpy(&x, s, 8);
    if (state == U_OK && !(x & 0x8080808080808080ULL)) {
      s += 8;
      units += 8;
      continue;
    }
    U_STEP(); U_STEP(); U_STEP(); U_STEP(); U_STEP(); U_STEP(); U_STEP(); U_STEP();
    if (state == U_ERR) return -1;
  }
  while (s < e) U_STEP();
  return state == U_OK ? (long)units : -1;
}
#undef U_STEP

int cms_parse_int64(const char *s, size_t n, long long *out) {
  size_t i = 0;
  int neg = 0;
  unsigned long long v = 0, lim;
  if (n == 0) return -1;
  if (s[0] == '-') { neg = 1; i = 1; if (n == 1) return -1; }
  lim = neg ? (unsigned long long)LLONG_MAX + 1ULL : (unsigned long long)LLONG_MAX;
  for (; i < n; i++) {
    unsigned d;
    if (s[i] < '0' || s[i] > '9') return -1;
    d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (long long)(0 - v) : (long long)v;
  return 0;
}

static int check_text(const cms_rule *r, const char *path, const char *s, size_t n,
                      cms_verr *e) {
  long units = cms_utf16_len(s, n);
  if (units < 0) return cms_verr_set(e, path, "%s is not valid UTF-8", path);
  if (memchr(s, '\0', n))
    return cms_verr_set(e, path, "%s holds a NUL character, which no text of the API may hold",
                        path);
  if (r->max_chars && (unsigned long)units > r->max_chars)
    return cms_verr_set(e, path, "%s is %ld characters long; at most %u allowed", path,
                        units, r->max_chars);
  return 0;
}

/* 1 for the bytes an accid may hold */
const unsigned char cms_accid_chars[256] = {
  ['_'] = 1, ['@'] = 1, ['.'] = 1, ['-'] = 1, CMS_ALNUM_BYTES
};

int cms_accid_valid(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > CMS_ACCID_MAX) return 0;
  for (i = 0; i < n; i++)
    if (!cms_accid_chars[(unsigned char)s[i]]) return 0;
  return 1;
}

int cms_check_accid(const char *path, const char *s, size_t n, cms_verr *e) {
  size_t i;
  if (n == 0) return cms_verr_set(e, path, "%s is empty; an accid has 1 to %d characters", path,
                                  CMS_ACCID_MAX);
  if (n > CMS_ACCID_MAX)
    return cms_verr_set(e, path, "%s is %zu characters long; an accid has at most %d", path,
                        n, CMS_ACCID_MAX);
  for (i = 0; i < n; i++) {
    if (!cms_accid_chars[(unsigned char)s[i]])
      return cms_verr_set(e, path,
                          "%s has a character that an accid may not hold (byte %zu); "
                          "allowed: letters, digits, _ @ . -", path, i + 1);
  }
  return 0;
}

int cms_check_value(const cms_rule *r, const char *path, const char *s, size_t n,
                    cms_verr *e) {
  long long v;
  switch (r->kind) {
    case CMS_K_ROOMID:
      if (cms_parse_int64(s, n, &v) || v <= 0)
        return cms_verr_set(e, path, "%s must be %s", path, r->doc);
      return 0;
    case CMS_K_ACCID:
      return cms_check_accid(path, s, n, e);
    case CMS_K_FLAG:
      if (n != 1 || (s[0] != '0' && s[0] != '1'))
        return cms_verr_set(e, path, "%s must be 0 or 1", path);
      return 0;
    case CMS_K_INT:
      if (cms_parse_int64(s, n, &v)) return cms_verr_set(e, path, "%s must be an integer", path);
      return 0;
    case CMS_K_POSINT:
      if (cms_parse_int64(s, n, &v) || v <= 0)
        return cms_verr_set(e, path, "%s must be an integer > 0", path);
      return 0;
    case CMS_K_BOOL:
      if (!((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0)))
        return cms_verr_set(e, path, "%s must be true or false", path);
      return 0;
    case CMS_K_JSON:
    case CMS_K_TEXT:
      return check_text(r, path, s, n, e);
    case CMS_K_MSGLIST:
    case CMS_K_ACCIDS:
      break;
  }
  return cms_verr_set(e, path, "%s: internal error, no single-value rule", path);
}

int cms_check_count(const cms_rule *r, size_t count, cms_verr *e) {
  if (count < r->min_items || count > r->max_items)
    return cms_verr_set(e, r->name, "%s has %zu entries; %u to %u allowed", r->name, count,
                        r->min_items, r->max_items);
  return 0;
}

/* a failure of msgList[index].field: the path is formatted only now */
static int msg_fail(cms_verr *e, int index, const char *field, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static int msg_fail(cms_verr *e, int index, const char *field, const char *fmt, ...) {
  char path[96], rest[256];
  va_list ap;
  if (index > 0) snprintf(path, sizeof path, "msgList[%d].%s", index, field);
  else snprintf(path, sizeof path, "%s", field); /* the single send: fields at the top */
  va_start(ap, fmt);
  vsnprintf(rest, sizeof rest, fmt, ap);
  va_end(ap);
  return cms_verr_set(e, path, "%s %s", path, rest);
}

static int msg_text(const cms_rule *r, int index, const char *s, size_t n, cms_verr *e) {
  long units = cms_utf16_len(s, n);
  if (units < 0) return msg_fail(e, index, r->name, "is not valid UTF-8");
  if (memchr(s, '\0', n))
    return msg_fail(e, index, r->name, "holds a NUL character, which no text of the API may hold");
  if (r->max_chars && (unsigned long)units > r->max_chars)
    return msg_fail(e, index, r->name, "is %ld characters long; at most %u allowed", units,
                    r->max_chars);
  return 0;
}

#define R_MSGID (&cms_msg_rules[CMS_MF_MSGID])
#define R_TYPE (&cms_msg_rules[CMS_MF_MSGTYPE])
#define R_ATTACH (&cms_msg_rules[CMS_MF_ATTACH])
#define R_EXT (&cms_msg_rules[CMS_MF_EXT])

int cms_check_msg(const cms_msg_view *m, int index, cms_verr *e) {
  const cms_msgtype *t;
  if (!m->msgId) return msg_fail(e, index, "msgId", "is missing; %s", R_MSGID->doc);
  if (m->msgId_len == 0) return msg_fail(e, index, "msgId", "is empty; %s", R_MSGID->doc);
  if (msg_text(R_MSGID, index, m->msgId, m->msgId_len, e)) return -1;
  if (!m->has_msgType) return msg_fail(e, index, "msgType", "is missing; one of %s", R_TYPE->doc);
  if (!(t = cms_msgtype_by_code(m->msgType)))
    return msg_fail(e, index, "msgType", "is %lld; allowed: %s", m->msgType, R_TYPE->doc);
  if (!m->attach) {
    if (t->attach_required)
      return msg_fail(e, index, "attach", "is missing; a %s message needs one: %s", t->name,
                      R_ATTACH->doc);
  } else {
    if (m->attach_len == 0) return msg_fail(e, index, "attach", "is empty; %s", R_ATTACH->doc);
    if (msg_text(R_ATTACH, index, m->attach, m->attach_len, e)) return -1;
  }
  if (m->ext && msg_text(R_EXT, index, m->ext, m->ext_len, e)) return -1;
  if (m->has_subType && m->subType <= 0)
    return msg_fail(e, index, "subType", "is %lld; it must be an integer > 0", m->subType);
  if (m->has_resendFlag && m->resendFlag != 0 && m->resendFlag != 1)
    return msg_fail(e, index, "resendFlag", "is %lld; it must be 0 or 1", m->resendFlag);
  return 0;
}

int cms_check_unique_msgids(const cms_msg_view *msgs, int n, cms_verr *e) {
  int i, j;
  for (i = 1; i < n; i++)
    for (j = 0; j < i; j++)
      if (msgs[i].msgId_len == msgs[j].msgId_len &&
          (!msgs[i].msgId_len || /* the last byte first: ids often share a prefix */
           msgs[i].msgId[msgs[i].msgId_len - 1] == msgs[j].msgId[msgs[i].msgId_len - 1]) &&
          memcmp(msgs[i].msgId, msgs[j].msgId, msgs[i].msgId_len) == 0) {
        char path[64];
        snprintf(path, sizeof path, "msgList[%d].msgId", i + 1);
        return cms_verr_set(e, path, "%s repeats the msgId of msgList[%d]; msgIds must be "
                            "unique within msgList", path, j + 1);
      }
  return 0;
}

static const char *jtype_name(cms_jtype t) {
  switch (t) {
    case CMS_J_STRING: return "a string";
    case CMS_J_INTEGER: return "an integer";
    case CMS_J_NUMBER: return "a number";
    default: return "a value";
  }
}

int cms_check_attach_fields(const cms_msgtype *t, int index, cms_attach_get get, void *obj,
                            cms_verr *e) {
  const cms_attach_field *f;
  char path[128];
  if (!t->fields) return 0;
  for (f = t->fields; f->key; f++) {
    const char *s = NULL;
    size_t n = 0;
    double num = 0;
    cms_jtype got = get(obj, f->key, &s, &n, &num);
    if (index > 0) snprintf(path, sizeof path, "msgList[%d].attach.%s", index, f->key);
    else snprintf(path, sizeof path, "attach.%s", f->key);
    if (got == CMS_J_MISSING) {
      if (f->required)
        return cms_verr_set(e, path, "%s is missing; the attach of a message of type %s needs %s", path,
                            t->name, jtype_name(f->type));
      continue;
    }
    if (f->type == CMS_J_STRING) {
      if (got != CMS_J_STRING)
        return cms_verr_set(e, path, "%s must be a string", path);
      if (cms_utf16_len(s, n) < 0) return cms_verr_set(e, path, "%s is not valid UTF-8", path);
    } else if (f->type == CMS_J_INTEGER) {
      if (got != CMS_J_INTEGER)
        return cms_verr_set(e, path, "%s must be an integer", path);
      if (num < 0) return cms_verr_set(e, path, "%s must be >= 0", path);
    } else if (got != CMS_J_INTEGER && got != CMS_J_NUMBER) {
      return cms_verr_set(e, path, "%s must be a number", path);
    }
  }
  return 0;
}

int cms_check_antispam(int antispam_true, int has_custom, long long custom_type,
                       int custom_type_ok, int data_is_string, cms_verr *e) {
  if (!has_custom) return 0;
  if (!antispam_true)
    return cms_verr_set(e, "antispamCustom", "antispamCustom is only allowed with antispam=true");
  if (!custom_type_ok || custom_type < 1 || custom_type > 3)
    return cms_verr_set(e, "antispamCustom.type",
                        "antispamCustom.type must be 1 (text), 2 (image) or 3 (video)");
  if (!data_is_string)
    return cms_verr_set(e, "antispamCustom.data", "antispamCustom.data must be a string");
  return 0;
}
