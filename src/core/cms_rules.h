/* cms_rules.h -- the rules of chatroom/batchSendMsgToSomeone.action as data.
 *
 * One table, read by the Lua module's validation, by the emulator's checks and
 * by the spec that compares the README's limits with it.  Checks here work on
 * wire values (the text that travels in the form, or the fields of one message
 * of msgList); each caller turns its own representation (Lua tables, a parsed
 * form) into those views.  No Lua here. */
#ifndef CMS_RULES_H
#define CMS_RULES_H
#include <stddef.h>
#include "cms_buf.h"

#define CMS_API_PATH "/chatroom/batchSendMsgToSomeone.action"
#define CMS_CONTENT_TYPE "application/x-www-form-urlencoded;charset=utf-8"
#define CMS_MAX_NONCE 128         /* characters */
#define CMS_CURTIME_WINDOW 300    /* seconds either side of the server's clock */

typedef enum cms_kind {
  CMS_K_ROOMID,  /* decimal 64-bit integer > 0 */
  CMS_K_MSGLIST, /* JSON array of message objects */
  CMS_K_ACCID,   /* one accid */
  CMS_K_ACCIDS,  /* JSON array of accids */
  CMS_K_FLAG,    /* 0 or 1 */
  CMS_K_INT,     /* decimal integer */
  CMS_K_POSINT,  /* decimal integer > 0 */
  CMS_K_BOOL,    /* true or false */
  CMS_K_JSON,    /* JSON text */
  CMS_K_TEXT     /* plain text */
} cms_kind;

typedef struct cms_rule {
  const char *name;      /* wire name */
  cms_kind kind;
  unsigned char required;
  unsigned max_chars;    /* UTF-16 code units; 0 = no limit */
  unsigned min_items, max_items; /* lists only */
  const char *doc;       /* one line for messages and the README */
  unsigned char lifted;  /* messages: a typed builder (image{...}) takes it out of attach */
  unsigned char name_len; /* strlen(name) */
} cms_rule;

/* The rule tables are indexed by these enums (cms_param_rules[CMS_PR_ENV]);
 * a _Static_assert in cms_rules.c keeps each table's size equal to its count. */
typedef enum cms_param_id {
  CMS_PR_ROOMID, CMS_PR_MSGLIST, CMS_PR_FROMACCID, CMS_PR_TOACCIDS, CMS_PR_ROUTE,
  CMS_PR_USEYIDUN, CMS_PR_YIDUNANTICHEATING, CMS_PR_YIDUNANTISPAMEXT, CMS_PR_BID,
  CMS_PR_ANTISPAM, CMS_PR_ANTISPAMCUSTOM, CMS_PR_ENV, CMS_PR_COUNT
} cms_param_id;
typedef enum cms_msg_id {
  CMS_MF_MSGID, CMS_MF_MSGTYPE, CMS_MF_ATTACH, CMS_MF_EXT, CMS_MF_SUBTYPE, CMS_MF_RESENDFLAG,
  CMS_MF_COUNT
} cms_msg_id;

#define CMS_MSGLIST_MAX 10   /* messages per call */
#define CMS_ACCIDS_MAX 100   /* recipients per call */
#define CMS_ACCID_MAX 32     /* characters of an accid */

/* the form parameters, in wire order, then an entry with name == NULL */
extern const cms_rule cms_param_rules[CMS_PR_COUNT + 1];
/* the fields of one message of msgList, then an entry with name == NULL */
extern const cms_rule cms_msg_rules[CMS_MF_COUNT + 1];
const cms_rule *cms_msg_rule(const char *name);

/* JSON value kinds of an attach field */
typedef enum cms_jtype { CMS_J_MISSING, CMS_J_STRING, CMS_J_INTEGER, CMS_J_NUMBER,
                         CMS_J_OTHER } cms_jtype;

typedef struct cms_attach_field {
  const char *key;
  cms_jtype type;        /* CMS_J_STRING, CMS_J_INTEGER or CMS_J_NUMBER */
  unsigned char required;
} cms_attach_field;

typedef struct cms_msgtype {
  int code;
  const char *name;        /* Lua-facing name: "text", "image", ... */
  const char *event_name;  /* webhook msgType: "TEXT", "PICTURE", ... */
  int attach_json;         /* attach is JSON text (else free text) */
  int attach_object;       /* attach must be a JSON object */
  const cms_attach_field *fields; /* schema of the object, NULL = any */
  int attach_required;     /* types whose attach has a documented shape */
} cms_msgtype;

typedef enum cms_type_id {
  CMS_T_TEXT, CMS_T_IMAGE, CMS_T_AUDIO, CMS_T_VIDEO, CMS_T_LOCATION, CMS_T_FILE, CMS_T_TIP,
  CMS_T_CUSTOM, CMS_T_COUNT
} cms_type_id;
/* indexed by cms_type_id, then an entry with name == NULL */
extern const cms_msgtype cms_msgtypes[CMS_T_COUNT + 1];
const cms_msgtype *cms_msgtype_by_code(long long code);
const cms_msgtype *cms_msgtype_by_name(const char *name, size_t len);

/* A validation failure: the 1-based path of the offending field and a message
 * that says what was wrong and what is allowed. */
typedef struct cms_verr {
  char field[128];
  char message[320];
} cms_verr;

int cms_verr_set(cms_verr *e, const char *field, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));   /* always returns -1 */

/* UTF-16 code units of a UTF-8 string; -1 if it is not valid UTF-8
 * (overlongs, surrogates, > U+10FFFF and truncated sequences are invalid). */
long cms_utf16_len(const char *s, size_t n);

/* parses a decimal int64 (optional '-', digits only, no spaces); 0 ok, -1 not */
int cms_parse_int64(const char *s, size_t n, long long *out);

/* Checks one wire value against a rule (kinds ROOMID, ACCID, FLAG, INT, POSINT,
 * BOOL, JSON, TEXT: for JSON only encoding and length; the caller checks the
 * JSON grammar with its own parser). 0 ok, -1 with e filled. */
int cms_check_value(const cms_rule *r, const char *path, const char *s, size_t n,
                    cms_verr *e);
int cms_check_accid(const char *path, const char *s, size_t n, cms_verr *e);
int cms_accid_valid(const char *s, size_t n);     /* the same test, no message: 1 ok */
/* 1 for the bytes an accid may hold (cms_form_accids writes by the same) */
extern const unsigned char cms_accid_chars[256];
/* list sizes for MSGLIST and ACCIDS */
int cms_check_count(const cms_rule *r, size_t count, cms_verr *e);

/* One message of msgList as wire values.  NULL strings / has_* = 0 mean absent. */
typedef struct cms_msg_view {
  const char *msgId; size_t msgId_len;
  int has_msgType; long long msgType;
  const char *attach; size_t attach_len;
  const char *ext; size_t ext_len;
  int has_subType; long long subType;
  int has_resendFlag; long long resendFlag;
} cms_msg_view;

/* checks everything of one message that needs no JSON parser; index is 1-based
 * (paths msgList[i].field), or 0 for the single send's message, whose fields
 * stand at the top level of the form (paths are the bare field names); the
 * same holds for cms_check_attach_fields */
int cms_check_msg(const cms_msg_view *m, int index, cms_verr *e);
/* msgIds must be unique within one msgList */
int cms_check_unique_msgids(const cms_msg_view *msgs, int n, cms_verr *e);

/* attach schema: get(obj, key, &s, &n, &num) reports a field's JSON kind */
typedef cms_jtype (*cms_attach_get)(void *obj, const char *key, const char **s,
                                    size_t *n, double *num);
int cms_check_attach_fields(const cms_msgtype *t, int index, cms_attach_get get,
                            void *obj, cms_verr *e);

/* The API's answer codes (API.md "Codes"): what each means and whether trying
 * again later may give another result.  One table for the module (the
 * `retryable` of an api error) and the emulator (the desc of its answers). */
typedef struct cms_api_code {
  int code;
  unsigned char retryable;
  const char *desc;
} cms_api_code;
extern const cms_api_code cms_api_codes[]; /* ends with code == 0 */
const cms_api_code *cms_api_code_find(long long code); /* NULL: not a documented code */
int cms_api_code_retryable(long long code);             /* unknown codes: 0 */

/* antispamCustom is {"type":1|2|3,"data":"..."} and only goes with antispam=true */
int cms_check_antispam(int antispam_true, int has_custom, long long custom_type,
                       int custom_type_ok, int data_is_string, cms_verr *e);

#endif
