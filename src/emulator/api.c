/* api.c -- POST /nimserver/chatroom/batchSendMsgToSomeone.action and its
 * single-message sibling chatroom/sendMsgToSomeone.action (one message's
 * fields at the top level of the form; answer {"code":200,"desc":{...}}).
 *
 * Order of a call: record it; take a matching fault; faults that answer
 * without processing (status, garbage, code, close, delay before); the rate
 * limit (416); the signature headers (414); a RequestId already processed
 * within --request-id-window (431); the form and every rule of cms_rules
 * (414); processing (resend semantics, delivery, webhook events, the
 * RequestId remembered); faults that act after processing (delay after, close
 * after_deliver, truncate, fail_msg).  Every rule and error text comes from
 * cms_rules.c. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cms_json.h"
#include "cms_rules.h"
#include "cms_sign.h"
#include "emu.h"

#define JSON_CT "application/json; charset=utf-8"
#define RESEND_REASON "parameter resendFlag should be used for RESEND!"
#define REPEAT_DESC "HTTP request repeated: a call with this RequestId was already processed"

typedef struct vmsg {          /* one validated message; strings point into call.msglist */
  const char *msgid, *attach, *ext;
  long long type, subtype;
  int has_subtype, resend;
} vmsg;

typedef struct call {
  int single;                  /* sendMsgToSomeone: one message, fields at the top level */
  const char *rid;             /* the RequestId header, NULL if absent */
  emu_form form;
  int form_rc;
  char form_err[160];
  cJSON *msglist;              /* parsed msgList, NULL if absent or not JSON */
  cJSON *toaccids;             /* parsed toAccids, NULL if absent or not JSON */
  /* validated */
  long long roomid;
  const char *from;
  int route;
  char **to;                   /* lowercased, without repeats */
  size_t nto;
  vmsg *msgs;
  int nmsgs;
} call;

static void call_free(call *k) {
  size_t i;
  emu_form_free(&k->form);
  cJSON_Delete(k->msglist);
  cJSON_Delete(k->toaccids);
  for (i = 0; i < k->nto; i++) free(k->to[i]);
  free(k->to);
  free(k->msgs);
}

/* JSON text with nothing but whitespace after it; NULL if not JSON */
static cJSON *parse_json_text(const char *s, size_t n) {
  const char *end = NULL;
  cJSON *j;
  /* the module's check, every byte: cJSON alone takes 0x10, 01 and stops at a NUL */
  if (cms_json_check(s, n, NULL, NULL)) return NULL;
  j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!j) return NULL;
  while (end && end < s + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  if (!end || end != s + n) {
    cJSON_Delete(j);
    return NULL;
  }
  return j;
}

static int is_json_text(const char *s, size_t n) {
  cJSON *j = parse_json_text(s, n);
  cJSON_Delete(j);
  return j != NULL;
}

/* ---- stats ---- */
static void count(emu_server *s, int code, unsigned http) {
  pthread_mutex_lock(&s->mu);
  if (code) emu_count_add(s->st.codes, &s->st.ncodes, code);
  if (http) emu_count_add(s->st.http, &s->st.nhttp, (int)http);
  pthread_mutex_unlock(&s->mu);
}

static int answer_status(emu_server *s, struct MHD_Connection *c, const emu_fault *fault) {
  char msg[96];
  const char *b = fault->body;
  if (!b) {
    snprintf(msg, sizeof msg, "fault injected: HTTP %d\n", fault->status);
    b = msg;
  }
  count(s, 0, (unsigned)fault->status);
  return emu_reply(c, (unsigned)fault->status, "text/plain", b, strlen(b));
}

static int answer_code(emu_server *s, struct MHD_Connection *c, long long code,
                       const char *desc) {
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddNumberToObject(o, "code", (double)code);
    cJSON_AddItemToObject(o, "desc", emu_json_str(desc, strlen(desc)));
  }
  count(s, (int)code, 200);
  return emu_reply_json(c, 200, o);
}

/* ---- headers ---- */
static int check_headers(emu_server *s, struct MHD_Connection *c, char *err, size_t errlen) {
  const char *appkey = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "AppKey");
  const char *nonce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Nonce");
  const char *curtime = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "CurTime");
  const char *sum = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "CheckSum");
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  long long t;
  long nlen;
  char want[41], got[41];
  size_t i, n;
  if (!appkey) return snprintf(err, errlen, "missing header AppKey"), -1;
  if (strcmp(appkey, s->cfg.appkey) != 0) return snprintf(err, errlen, "bad AppKey"), -1;
  if (!nonce) return snprintf(err, errlen, "missing header Nonce"), -1;
  nlen = cms_utf16_len(nonce, strlen(nonce));
  if (nlen < 0) nlen = (long)strlen(nonce);
  if (nlen < 1 || nlen > CMS_MAX_NONCE)
    return snprintf(err, errlen, "bad Nonce: it must have 1 to %d characters", CMS_MAX_NONCE), -1;
  if (!curtime) return snprintf(err, errlen, "missing header CurTime"), -1;
  if (cms_parse_int64(curtime, strlen(curtime), &t) || t < 0)
    return snprintf(err, errlen, "bad CurTime: it must be decimal Unix seconds"), -1;
  {
    long long now = (long long)time(NULL);
    if (t > now + CMS_CURTIME_WINDOW || t < now - CMS_CURTIME_WINDOW)
      return snprintf(err, errlen, "CurTime out of the %d s window", CMS_CURTIME_WINDOW), -1;
  }
  if (!sum) return snprintf(err, errlen, "missing header CheckSum"), -1;
  n = strlen(sum);
  if (cms_checksum(NULL, s->cfg.secret, strlen(s->cfg.secret), nonce, curtime, want))
    return snprintf(err, errlen, "internal error computing the CheckSum"), -1;
  if (n != 40) return snprintf(err, errlen, "bad CheckSum"), -1;
  for (i = 0; i < 40; i++) {
    char ch = sum[i];
    got[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
  }
  got[40] = '\0';
  if (cms_ct_compare(want, got, 40)) return snprintf(err, errlen, "bad CheckSum"), -1;
  if (!ct) return snprintf(err, errlen, "missing header Content-Type"), -1;
  {
    /* media type, then ;name=value parameters; only charset=utf-8 is accepted */
    const char *p = ct, *semi;
    size_t mlen;
    while (*p == ' ' || *p == '\t') p++;
    semi = strchr(p, ';');
    mlen = semi ? (size_t)(semi - p) : strlen(p);
    while (mlen && (p[mlen - 1] == ' ' || p[mlen - 1] == '\t')) mlen--;
    if (mlen != 33 || strncasecmp(p, "application/x-www-form-urlencoded", 33) != 0)
      return snprintf(err, errlen,
                      "bad Content-Type: it must be application/x-www-form-urlencoded"), -1;
    while (semi) {
      const char *name = semi + 1, *eq, *next = strchr(name, ';'), *v;
      size_t nl, vl;
      while (*name == ' ' || *name == '\t') name++;
      eq = memchr(name, '=', next ? (size_t)(next - name) : strlen(name));
      semi = next;
      if (!eq) continue;
      nl = (size_t)(eq - name);
      while (nl && (name[nl - 1] == ' ' || name[nl - 1] == '\t')) nl--;
      if (nl != 7 || strncasecmp(name, "charset", 7) != 0) continue;
      v = eq + 1;
      while (*v == ' ' || *v == '\t') v++;
      vl = next ? (size_t)(next - v) : strlen(v);
      while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
      if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') { v++; vl -= 2; }
      if (vl != 5 || strncasecmp(v, "utf-8", 5) != 0)
        return snprintf(err, errlen, "bad Content-Type: charset must be utf-8"), -1;
    }
  }
  return 0;
}

/* ---- validation ---- */
static cms_jtype attach_get(void *obj, const char *key, const char **s, size_t *n,
                            double *num) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive((cJSON *)obj, key);
  if (!v || cJSON_IsNull(v)) return CMS_J_MISSING;
  if (cJSON_IsString(v) && v->valuestring) {
    *s = v->valuestring;
    *n = strlen(v->valuestring);
    return CMS_J_STRING;
  }
  if (cJSON_IsNumber(v)) {
    *num = v->valuedouble;
    return emu_json_is_int(v, NULL) ? CMS_J_INTEGER : CMS_J_NUMBER;
  }
  return CMS_J_OTHER;
}

/* the path of a message's field: msgList[i].field, or the bare name for the
 * single send (index 0) */
static void field_path(char *buf, size_t len, int idx, const char *field) {
  if (idx > 0) snprintf(buf, len, "msgList[%d].%s", idx, field);
  else snprintf(buf, len, "%s", field);
}

/* a member of a message: absent/null -> 0, right type -> 1, wrong type -> -1 (e set) */
static int msg_str(const cJSON *o, const char *key, int idx, const char **out, cms_verr *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  char path[96];
  if (!v || cJSON_IsNull(v)) return 0;
  if (cJSON_IsString(v) && v->valuestring) {
    *out = v->valuestring;
    return 1;
  }
  field_path(path, sizeof path, idx, key);
  return cms_verr_set(e, path, "%s must be a JSON string", path);
}

static int msg_int(const cJSON *o, const char *key, int idx, long long *out, cms_verr *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  char path[96];
  if (!v || cJSON_IsNull(v)) return 0;
  if (emu_json_is_int(v, out)) return 1;
  field_path(path, sizeof path, idx, key);
  return cms_verr_set(e, path, "%s must be a JSON integer", path);
}

/* one message, its fields read into m: the rules of cms_msg_rules, ext as
 * JSON text, attach per type; fills vm (strings point into m's) */
static int check_view(const cms_msg_view *m, int i, vmsg *vm, cms_verr *e) {
  const cms_msgtype *t;
  char path[96];
  if (cms_check_msg(m, i, e)) return -1;
  if (m->ext && !is_json_text(m->ext, m->ext_len)) {
    field_path(path, sizeof path, i, "ext");
    return cms_verr_set(e, path, "%s is not valid JSON text; %s", path, cms_msg_rule("ext")->doc);
  }
  t = cms_msgtype_by_code(m->msgType);
  if (t && t->attach_json && m->attach) { /* absent: allowed where the rules allow it */
    cJSON *a = parse_json_text(m->attach, m->attach_len);
    int rc = 0;
    field_path(path, sizeof path, i, "attach");
    if (!a)
      return cms_verr_set(e, path, "%s is not valid JSON; a %s message's attach is JSON text",
                          path, t->name);
    if (t->attach_object && !cJSON_IsObject(a))
      rc = cms_verr_set(e, path, "%s must be a JSON object for a %s message", path, t->name);
    else if (t->fields && cms_check_attach_fields(t, i, attach_get, a, e))
      rc = -1;
    cJSON_Delete(a);
    if (rc) return -1;
  }
  vm->msgid = m->msgId;
  vm->attach = m->attach ? m->attach : "";
  vm->ext = m->ext ? m->ext : "";
  vm->type = m->msgType;
  vm->has_subtype = m->has_subType;
  vm->subtype = m->subType;
  vm->resend = m->has_resendFlag && m->resendFlag == 1;
  return 0;
}

/* the single send: a text field of the form (absent -> 0, present -> 1) */
static int form_text(const call *k, const char *name, const char **out, size_t *len,
                     cms_verr *e) {
  const emu_kv *kv = emu_form_get(&k->form, name);
  if (!kv) return 0;
  if (memchr(kv->val, '\0', kv->vlen))
    return cms_verr_set(e, name, "%s holds a NUL byte", name);
  *out = kv->val;
  *len = kv->vlen;
  return 1;
}

/* the single send: an integer field of the form, as decimal text */
static int form_int(const call *k, const char *name, long long *out, cms_verr *e) {
  const emu_kv *kv = emu_form_get(&k->form, name);
  if (!kv) return 0;
  if (cms_parse_int64(kv->val, kv->vlen, out))
    return cms_verr_set(e, name, "%s must be a decimal integer", name);
  return 1;
}

/* sendMsgToSomeone: msgId, msgType, attach, ext, subType, resendFlag at the
 * top level, checked by the same rules as a message of msgList */
static int check_single(call *k, cms_verr *e) {
  cms_msg_view m;
  int got;
  memset(&m, 0, sizeof m);
  k->msgs = calloc(1, sizeof *k->msgs);
  if (!k->msgs) return cms_verr_set(e, "msgId", "out of memory");
  if ((got = form_text(k, "msgId", &m.msgId, &m.msgId_len, e)) < 0) return -1;
  if ((got = form_int(k, "msgType", &m.msgType, e)) < 0) return -1;
  m.has_msgType = got;
  if ((got = form_text(k, "attach", &m.attach, &m.attach_len, e)) < 0) return -1;
  if ((got = form_text(k, "ext", &m.ext, &m.ext_len, e)) < 0) return -1;
  if ((got = form_int(k, "subType", &m.subType, e)) < 0) return -1;
  m.has_subType = got;
  if ((got = form_int(k, "resendFlag", &m.resendFlag, e)) < 0) return -1;
  m.has_resendFlag = got;
  if (check_view(&m, 0, &k->msgs[0], e)) return -1;
  k->nmsgs = 1;
  return 0;
}

static int check_msglist(call *k, const emu_kv *kv, const cms_rule *r, cms_verr *e) {
  cms_msg_view *views;
  const cJSON *it;
  int n, i = 0, rc = -1;
  if (cms_utf16_len(kv->val, kv->vlen) < 0)
    return cms_verr_set(e, "msgList", "msgList is not valid UTF-8");
  if (!k->msglist)
    return cms_verr_set(e, "msgList", "msgList is not valid JSON; %s", r->doc);
  if (!cJSON_IsArray(k->msglist))
    return cms_verr_set(e, "msgList", "msgList must be a JSON array; %s", r->doc);
  if (cms_json_nul_escape(kv->val, kv->vlen) >= 0) /* cJSON would cut the string there */
    return cms_verr_set(e, "msgList", "msgList holds a NUL character (\\u0000), which no text "
                        "of the API may hold");
  n = cJSON_GetArraySize(k->msglist);
  if (cms_check_count(r, (size_t)n, e)) return -1;
  views = calloc((size_t)n, sizeof *views);
  k->msgs = calloc((size_t)n, sizeof *k->msgs);
  if (!views || !k->msgs) {
    free(views);
    return cms_verr_set(e, "msgList", "out of memory");
  }
  cJSON_ArrayForEach(it, k->msglist) {
    cms_msg_view *m = &views[i];
    vmsg *vm = &k->msgs[i];
    int got;
    char path[96];
    i++;
    if (!cJSON_IsObject(it)) {
      snprintf(path, sizeof path, "msgList[%d]", i);
      cms_verr_set(e, path, "%s must be a JSON object", path);
      goto out;
    }
    if ((got = msg_str(it, "msgId", i, &m->msgId, e)) < 0) goto out;
    if (got) m->msgId_len = strlen(m->msgId);
    if ((got = msg_int(it, "msgType", i, &m->msgType, e)) < 0) goto out;
    m->has_msgType = got;
    if ((got = msg_str(it, "attach", i, &m->attach, e)) < 0) goto out;
    if (got) m->attach_len = strlen(m->attach);
    if ((got = msg_str(it, "ext", i, &m->ext, e)) < 0) goto out;
    if (got) m->ext_len = strlen(m->ext);
    if ((got = msg_int(it, "subType", i, &m->subType, e)) < 0) goto out;
    m->has_subType = got;
    if ((got = msg_int(it, "resendFlag", i, &m->resendFlag, e)) < 0) goto out;
    m->has_resendFlag = got;
    if (check_view(m, i, vm, e)) goto out;
  }
  if (cms_check_unique_msgids(views, n, e)) goto out;
  k->nmsgs = n;
  rc = 0;
out:
  free(views);
  return rc;
}

static int check_accids(call *k, const emu_kv *kv, const cms_rule *r, cms_verr *e) {
  const cJSON *it;
  int n, i = 0;
  size_t j;
  if (cms_utf16_len(kv->val, kv->vlen) < 0)
    return cms_verr_set(e, "toAccids", "toAccids is not valid UTF-8");
  if (!k->toaccids || !cJSON_IsArray(k->toaccids))
    return cms_verr_set(e, "toAccids", "toAccids must be a JSON array of strings; %s", r->doc);
  if (cms_json_nul_escape(kv->val, kv->vlen) >= 0) /* "bob\u0000x" would read as "bob" */
    return cms_verr_set(e, "toAccids", "toAccids holds a NUL character (\\u0000), which no "
                        "accid may hold");
  n = cJSON_GetArraySize(k->toaccids);
  if (cms_check_count(r, (size_t)n, e)) return -1;
  k->to = calloc((size_t)n, sizeof *k->to);
  if (!k->to) return cms_verr_set(e, "toAccids", "out of memory");
  cJSON_ArrayForEach(it, k->toaccids) {
    char path[48];
    char *low;
    snprintf(path, sizeof path, "toAccids[%d]", ++i);
    if (!cJSON_IsString(it) || !it->valuestring)
      return cms_verr_set(e, path, "%s must be a JSON string (an accid)", path);
    if (cms_check_accid(path, it->valuestring, strlen(it->valuestring), e)) return -1;
    low = emu_lower_dup(it->valuestring, strlen(it->valuestring));
    if (!low) return cms_verr_set(e, "toAccids", "out of memory");
    for (j = 0; j < k->nto; j++)
      if (strcmp(k->to[j], low) == 0) break;
    if (j < k->nto) free(low);       /* listed twice: delivered once */
    else k->to[k->nto++] = low;
  }
  return 0;
}

static int validate(call *k, cms_verr *e) {
  const cms_rule *r;
  int antispam_true = 0, has_custom = 0, type_ok = 0, data_is_string = 0;
  long long custom_type = 0;
  k->route = 1;
  for (r = cms_param_rules; r->name; r++) {
    const emu_kv *kv;
    if (k->single && r->kind == CMS_K_MSGLIST) { /* the message is at the top level */
      if (check_single(k, e)) return -1;
      continue;
    }
    kv = emu_form_get(&k->form, r->name);
    if (!kv) {
      if (r->required) return cms_verr_set(e, r->name, "%s is missing; %s", r->name, r->doc);
      continue;
    }
    switch (r->kind) {
      case CMS_K_MSGLIST:
        if (check_msglist(k, kv, r, e)) return -1;
        break;
      case CMS_K_ACCIDS:
        if (check_accids(k, kv, r, e)) return -1;
        break;
      case CMS_K_JSON: {
        cJSON *j;
        if (cms_check_value(r, r->name, kv->val, kv->vlen, e)) return -1;
        j = parse_json_text(kv->val, kv->vlen);
        if (!j) return cms_verr_set(e, r->name, "%s is not valid JSON text; %s", r->name, r->doc);
        if (r == &cms_param_rules[CMS_PR_ANTISPAMCUSTOM]) {
          const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
          const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
          has_custom = 1;
          type_ok = cJSON_IsObject(j) && emu_json_is_int(t, &custom_type);
          data_is_string = cJSON_IsString(d);
        }
        cJSON_Delete(j);
        break;
      }
      default:
        if (cms_check_value(r, r->name, kv->val, kv->vlen, e)) return -1;
        switch ((cms_param_id)(r - cms_param_rules)) {
          case CMS_PR_ROOMID: cms_parse_int64(kv->val, kv->vlen, &k->roomid); break;
          case CMS_PR_FROMACCID: k->from = kv->val; break;
          case CMS_PR_ROUTE: k->route = kv->val[0] == '1'; break;
          case CMS_PR_ANTISPAM: antispam_true = kv->val[0] == 't'; break;
          default: break;
        }
        break;
    }
  }
  return cms_check_antispam(antispam_true, has_custom, custom_type, type_ok, data_is_string, e);
}

/* ---- faults ---- */
static int fault_matches(const emu_fault *f, const call *k) {
  const cJSON *it;
  if (f->match_accid) {
    int hit = 0;
    if (!cJSON_IsArray(k->toaccids)) return 0;
    cJSON_ArrayForEach(it, k->toaccids)
      if (cJSON_IsString(it) && emu_strcaseeq(it->valuestring, f->match_accid)) hit = 1;
    if (!hit) return 0;
  }
  if (f->match_msgid && k->single) {
    const emu_kv *kv = emu_form_get(&k->form, "msgId");
    if (!kv || !strstr(kv->val, f->match_msgid)) return 0;
  } else if (f->match_msgid) {
    int hit = 0;
    if (!cJSON_IsArray(k->msglist)) return 0;
    cJSON_ArrayForEach(it, k->msglist) {
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "msgId");
      if (cJSON_IsString(id) && strstr(id->valuestring, f->match_msgid)) hit = 1;
    }
    if (!hit) return 0;
  }
  return 1;
}

/* takes one use of the first matching entry; caller holds the lock */
static emu_fault *take_fault(emu_state *st, const call *k) {
  emu_fault *f, *prev = NULL, *d;
  for (f = st->faults; f; prev = f, f = f->next)
    if (fault_matches(f, k)) break;
  if (!f) return NULL;
  d = emu_fault_dup(f);
  if (--f->count <= 0) {
    if (prev) prev->next = f->next;
    else st->faults = f->next;
    if (st->faults_tail == f) st->faults_tail = prev;
    emu_fault_free(f);
  }
  return d;
}

/* ---- recording ---- */
/* The keys recorded so far, an open-addressing set over their hashes: the first
 * occurrence of each key is recorded in time linear in the number of keys (a
 * hostile form of a million bytes holds some 100,000 of them; a lookup in the
 * cJSON object, a list, made that quadratic: tens of seconds of a thread). */
typedef struct keyset {
  const char **slot; /* the recorded item's own key (owned by the record), NULL: free */
  size_t mask;
} keyset;

static size_t key_hash(const char *k) {
  size_t h = (size_t)1469598103934665603ULL; /* FNV-1a */
  for (; *k; k++) h = (h ^ (unsigned char)*k) * (size_t)1099511628211ULL;
  return h;
}

/* the slot of key k: the one holding it, or the free one where it would go */
static const char **keyset_find(keyset *ks, const char *k) {
  size_t i = key_hash(k) & ks->mask;
  while (ks->slot[i] && strcmp(ks->slot[i], k) != 0) i = (i + 1) & ks->mask;
  return &ks->slot[i];
}

static cJSON *make_record(struct MHD_Connection *c, const char *method, const char *url,
                          const call *k, const char *body, size_t blen) {
  cJSON *o = cJSON_CreateObject(), *form;
  keyset ks = {NULL, 0};
  size_t i, size = 16;
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "method", method);
  emu_json_add_str(o, "path", url, strlen(url));
  cJSON_AddItemToObject(o, "headers", emu_headers_json(c));
  form = cJSON_AddObjectToObject(o, "form");
  if (form && k->form_rc == 0 && k->form.n) {
    while (size < 2 * k->form.n) size *= 2; /* at most half full */
    if (!(ks.slot = calloc(size, sizeof *ks.slot))) {
      cJSON_Delete(o);
      return NULL; /* (the request goes on, unrecorded) */
    }
    ks.mask = size - 1;
    for (i = 0; i < k->form.n; i++) {
      char *key = emu_strndup(k->form.kv[i].key, k->form.kv[i].klen);
      cJSON *kj, *v;
      const char **at;
      if (!key) continue;
      kj = emu_json_str(key, strlen(key));  /* key made valid UTF-8 */
      if (kj && !*(at = keyset_find(&ks, kj->valuestring)) &&
          (v = emu_json_str(k->form.kv[i].val, k->form.kv[i].vlen))) {
        if (cJSON_AddItemToObject(form, kj->valuestring, v)) *at = v->string;
        else cJSON_Delete(v);
      }
      cJSON_Delete(kj);
      free(key);
    }
    free(ks.slot);
  }
  emu_json_add_str(o, "body", body, blen > EMU_RECORD_BODY_MAX ? EMU_RECORD_BODY_MAX : blen);
  if (blen > EMU_RECORD_BODY_MAX) cJSON_AddBoolToObject(o, "body_truncated", 1);
  return o;
}

/* ---- processing ---- */
static cJSON *answer_msg(const call *k, const vmsg *m, long long now_ms, int nas) {
  cJSON *o = cJSON_CreateObject();
  char num[32];
  if (!o) return NULL;
  if (nas) {
    snprintf(num, sizeof num, "%lld", now_ms);
    cJSON_AddStringToObject(o, "time", num);
  } else {
    cJSON_AddNumberToObject(o, "time", (double)now_ms);
  }
  cJSON_AddStringToObject(o, "fromAvator", "");
  cJSON_AddStringToObject(o, "msgid_client", m->msgid);
  cJSON_AddStringToObject(o, "fromClientType", "REST");
  if (nas) {
    snprintf(num, sizeof num, "%lld", k->roomid);
    cJSON_AddStringToObject(o, "roomId", num);
  } else {
    cJSON_AddItemToObject(o, "roomId", emu_json_int(k->roomid));
  }
  cJSON_AddStringToObject(o, "fromAccount", k->from);
  cJSON_AddStringToObject(o, "fromNick", k->from);
  cJSON_AddStringToObject(o, "attach", m->attach);
  if (nas) {
    snprintf(num, sizeof num, "%lld", m->type);
    cJSON_AddStringToObject(o, "type", num);
  } else {
    cJSON_AddNumberToObject(o, "type", (double)m->type);
  }
  cJSON_AddStringToObject(o, "ext", m->ext);
  return o;
}

static char *webhook_event(const emu_msg *m) {
  cJSON *o = cJSON_CreateObject();
  const cms_msgtype *t = cms_msgtype_by_code(m->type);
  char num[32], *text;
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "eventType", "4");
  cJSON_AddStringToObject(o, "attach", m->attach);
  cJSON_AddStringToObject(o, "ext", m->ext);
  cJSON_AddStringToObject(o, "fromAccount", m->from);
  cJSON_AddStringToObject(o, "fromAvator", "");
  cJSON_AddStringToObject(o, "fromClientType", "REST");
  cJSON_AddStringToObject(o, "fromExt", "");
  cJSON_AddStringToObject(o, "fromNick", m->from);
  snprintf(num, sizeof num, "%lld", m->time_ms);
  cJSON_AddStringToObject(o, "msgTimestamp", num);
  cJSON_AddStringToObject(o, "msgType", t ? t->event_name : "CUSTOM");
  cJSON_AddStringToObject(o, "msgidClient", m->msgid);
  cJSON_AddStringToObject(o, "resendFlag", m->resend_flag ? "1" : "0");
  snprintf(num, sizeof num, "%lld", m->roomid);
  cJSON_AddStringToObject(o, "roomId", num);
  text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

static emu_msg *new_msg(const call *k, const vmsg *v, long long now_ms) {
  emu_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->roomid = k->roomid;
  m->type = v->type;
  m->time_ms = now_ms;
  m->resend_flag = v->resend;
  m->has_subtype = v->has_subtype;
  m->subtype = v->subtype;
  m->msgid = emu_strndup(v->msgid, strlen(v->msgid));
  m->from = emu_strndup(k->from, strlen(k->from));
  m->attach = emu_strndup(v->attach, strlen(v->attach));
  m->ext = emu_strndup(v->ext, strlen(v->ext));
  if (!m->msgid || !m->from || !m->attach || !m->ext) {
    m->refs = 1;
    emu_msg_unref(m);
    return NULL;
  }
  return m;
}

/* the single send's answer from the batch-shaped one: the message object as
 * desc, or the reason it failed as an error (code 414: the service's code
 * for it is not documented) */
static cJSON *single_answer(cJSON *o) {
  cJSON *succ = cJSON_GetObjectItemCaseSensitive(o, "success");
  cJSON *fail = cJSON_GetObjectItemCaseSensitive(o, "fail");
  cJSON *entry = cJSON_GetArrayItem(succ, 0), *out = cJSON_CreateObject();
  if (!out) return NULL;
  if (entry && entry->child) {
    cJSON_AddNumberToObject(out, "code", 200);
    cJSON_AddItemToObject(out, "desc", cJSON_DetachItemViaPointer(entry, entry->child));
  } else {
    entry = cJSON_GetArrayItem(fail, 0);
    cJSON_AddNumberToObject(out, "code", 414);
    if (entry && entry->child)
      cJSON_AddItemToObject(out, "desc", cJSON_DetachItemViaPointer(entry, entry->child));
    else
      cJSON_AddStringToObject(out, "desc", "emulator out of memory");
  }
  return out;
}

/* builds the answer and delivers; returns the JSON text (malloc'ed by cJSON).
 * A call whose RequestId was processed within the window is not processed:
 * NULL with *repeated set.  Checked and remembered under the same lock as the
 * delivery, so two concurrent calls with one RequestId deliver once. */
static char *process(emu_server *s, call *k, const emu_fault *fault, int *repeated) {
  cJSON *o = cJSON_CreateObject(), *succ, *fail;
  char **events = NULL, *text;
  emu_inbox **inboxes;
  int nev = 0, i, nas;
  long long now_ms = emu_wall_ms();
  int webhook = s->wh.started && k->route == 1;
  if (!o) return NULL;
  cJSON_AddNumberToObject(o, "code", 200);
  succ = cJSON_AddArrayToObject(o, "success");
  fail = cJSON_AddArrayToObject(o, "fail");
  if (webhook) events = calloc((size_t)k->nmsgs, sizeof *events);
  inboxes = calloc(k->nto ? k->nto : 1, sizeof *inboxes);
  pthread_mutex_lock(&s->mu);
  if (emu_rid_seen(&s->st, k->rid, emu_mono_now())) {
    pthread_mutex_unlock(&s->mu);
    *repeated = 1;
    free(inboxes);
    free(events);
    cJSON_Delete(o);
    return NULL;
  }
  emu_rid_remember(&s->st, k->rid, emu_mono_now());
  nas = s->st.numbers_as_strings;
  if (inboxes) /* looked up once per call, not once per message */
    for (i = 0; i < (int)k->nto; i++) inboxes[i] = emu_inbox_get(&s->st, k->to[i], 1);
  for (i = 0; i < k->nmsgs; i++) {
    const vmsg *v = &k->msgs[i];
    cJSON *entry = cJSON_CreateObject();
    char key[64];
    char *dkey;
    size_t idlen = strlen(v->msgid);
    if (!entry) continue;
    if (fault && fault->action == EMU_F_FAIL_MSG &&
        (!fault->match_msgid || strstr(v->msgid, fault->match_msgid))) {
      cJSON_AddStringToObject(entry, v->msgid, fault->reason ? fault->reason : "fault injected");
      cJSON_AddItemToArray(fail, entry);
      continue;
    }
    snprintf(key, sizeof key, "%lld\x1f", k->roomid);
    dkey = malloc(strlen(key) + idlen + 1);
    if (!dkey) {
      cJSON_AddStringToObject(entry, v->msgid, "emulator out of memory");
      cJSON_AddItemToArray(fail, entry);
      continue;
    }
    memcpy(dkey, key, strlen(key));
    memcpy(dkey + strlen(key), v->msgid, idlen + 1);
    if (emu_map_has(&s->st.delivered, dkey)) {
      if (v->resend) {
        cJSON_AddItemToObject(entry, v->msgid, answer_msg(k, v, now_ms, nas));
        cJSON_AddItemToArray(succ, entry);
      } else {
        cJSON_AddStringToObject(entry, v->msgid, RESEND_REASON);
        cJSON_AddItemToArray(fail, entry);
      }
    } else {
      emu_msg *m = new_msg(k, v, now_ms);
      size_t j;
      if (!m || emu_map_put(&s->st.delivered, dkey, NULL)) {
        if (m) { m->refs = 1; emu_msg_unref(m); }
        cJSON_AddStringToObject(entry, v->msgid, "emulator out of memory");
        cJSON_AddItemToArray(fail, entry);
        free(dkey);
        continue;
      }
      m->refs = 1;  /* held while delivering */
      for (j = 0; j < k->nto; j++) {
        emu_inbox *ib = inboxes ? inboxes[j] : emu_inbox_get(&s->st, k->to[j], 1);
        if (ib) emu_inbox_push(ib, m, s->cfg.inbox_max);
      }
      if (events) events[nev++] = webhook_event(m);
      emu_msg_unref(m);
      cJSON_AddItemToObject(entry, v->msgid, answer_msg(k, v, now_ms, nas));
      cJSON_AddItemToArray(succ, entry);
    }
    free(dkey);
  }
  pthread_mutex_unlock(&s->mu);
  free(inboxes);
  for (i = 0; i < nev; i++) emu_webhook_push(&s->wh, events[i]);
  free(events);
  if (k->single) {
    cJSON *one = single_answer(o);
    cJSON_Delete(o);
    if (!one) return NULL;
    o = one;
  }
  text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

int emu_api_handle(emu_server *s, struct MHD_Connection *c, const char *method,
                   const char *url, emu_req *r) {
  call k;
  const char *body = r->body.data ? r->body.data : "";
  size_t blen = r->body.len;
  emu_fault *fault = NULL;
  cJSON *rec;
  char err[512];
  cms_verr ve;
  char *text = NULL;
  int ret, rl, repeated = 0;
  double penalty;
  long limit;

  memset(&k, 0, sizeof k);
  k.single = strcmp(url, EMU_PREFIX EMU_SINGLE_PATH) == 0;
  k.rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "RequestId");
  k.form_rc = emu_form_parse(body, blen, &k.form, k.form_err, sizeof k.form_err);
  if (k.form_rc == 0) {
    const emu_kv *kv = emu_form_get(&k.form, "msgList");
    if (kv) k.msglist = parse_json_text(kv->val, kv->vlen);
    kv = emu_form_get(&k.form, "toAccids");
    if (kv) k.toaccids = parse_json_text(kv->val, kv->vlen);
  }
  rec = make_record(c, method, url, &k, body, blen);

  pthread_mutex_lock(&s->mu);
  s->st.requests++;
  if (rec) emu_ring_push(s->st.records, EMU_MAX_RECORDS, &s->st.rec_head, &s->st.rec_len, rec);
  if (strcmp(method, "POST") == 0) fault = take_fault(&s->st, &k);
  pthread_mutex_unlock(&s->mu);

  if (strcmp(method, "POST") != 0) {
    count(s, 405, 405);
    ret = emu_reply_error(c, 405, "use POST");
    goto done;
  }

  if (fault) {
    switch (fault->action) {
      case EMU_F_STATUS:
        if (fault->after_deliver) break;
        ret = answer_status(s, c, fault);
        goto done;
      case EMU_F_GARBAGE: {
        const char *b = fault->body ? fault->body : "<html>oops</html>";
        count(s, 0, 200);
        ret = emu_reply(c, 200, "text/html", b, strlen(b));
        goto done;
      }
      case EMU_F_CODE: {
        const cms_api_code *known = cms_api_code_find(fault->code); /* the shared table */
        ret = answer_code(s, c, fault->code,
                          fault->desc ? fault->desc : known ? known->desc : "fault injected");
        goto done;
      }
      case EMU_F_CLOSE:
        if (!fault->after_deliver) {
          pthread_mutex_lock(&s->mu);
          s->st.closed++;
          pthread_mutex_unlock(&s->mu);
          ret = MHD_NO;
          goto done;
        }
        break;
      case EMU_F_DELAY:
        if (fault->before) emu_sleep_ms(s, fault->ms);
        break;
      default:
        break;
    }
  }

  pthread_mutex_lock(&s->mu);
  {
    const emu_kv *from = k.form_rc == 0 ? emu_form_get(&k.form, "fromAccid") : NULL;
    rl = emu_rate_check(&s->st, emu_mono_now(), from ? from->val : NULL, from ? from->vlen : 0);
  }
  penalty = s->st.penalty;
  limit = s->st.rate_limit;
  pthread_mutex_unlock(&s->mu);
  if (rl == 1) {
    snprintf(err, sizeof err, "rate limit exceeded: more than %ld calls per second for this "
             "appkey; blocked for %g s", limit, penalty);
    ret = answer_code(s, c, 416, err);
    goto done;
  }
  if (rl == 2) {
    snprintf(err, sizeof err, "rate limited: this appkey is blocked for %g s after going over "
             "%ld calls per second", penalty, limit);
    ret = answer_code(s, c, 416, err);
    goto done;
  }

  if (check_headers(s, c, err, sizeof err)) {
    ret = answer_code(s, c, 414, err);
    goto done;
  }
  pthread_mutex_lock(&s->mu);
  repeated = emu_rid_seen(&s->st, k.rid, emu_mono_now());
  pthread_mutex_unlock(&s->mu);
  if (repeated) {
    ret = answer_code(s, c, 431, REPEAT_DESC);
    goto done;
  }
  if (k.form_rc) {
    snprintf(err, sizeof err, "body: %s", k.form_err);
    ret = answer_code(s, c, 414, err);
    goto done;
  }
  memset(&ve, 0, sizeof ve);
  if (validate(&k, &ve)) {
    {
      /* the path once: "msgList[1].attach: is missing; ..." */
      size_t fl = strlen(ve.field);
      const char *rest = ve.message;
      if (fl && strncmp(rest, ve.field, fl) == 0 && rest[fl] == ' ') rest += fl + 1;
      snprintf(err, sizeof err, "%s: %s", ve.field, rest);
    }
    ret = answer_code(s, c, 414, err);
    goto done;
  }

  text = process(s, &k, fault, &repeated);
  if (repeated) {
    ret = answer_code(s, c, 431, REPEAT_DESC);
    goto done;
  }
  if (!text) {
    ret = answer_code(s, c, 500, "emulator out of memory");
    goto done;
  }
  if (fault && fault->action == EMU_F_DELAY && !fault->before) emu_sleep_ms(s, fault->ms);
  if (fault && fault->action == EMU_F_STATUS) { /* after_deliver: processed, then a gateway error */
    ret = answer_status(s, c, fault);
    goto done;
  }
  if (fault && fault->action == EMU_F_CLOSE) {
    pthread_mutex_lock(&s->mu);
    s->st.closed++;
    pthread_mutex_unlock(&s->mu);
    ret = MHD_NO;
    goto done;
  }
  count(s, 200, 200);
  if (fault && fault->action == EMU_F_TRUNCATE)
    ret = emu_reply(c, 200, JSON_CT, text, strlen(text) / 2);
  else
    ret = emu_reply(c, 200, JSON_CT, text, strlen(text));

done:
  cJSON_free(text);
  emu_fault_free(fault);
  call_free(&k);
  return ret;
}
