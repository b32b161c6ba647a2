/* fuzz_emulator_form.c -- libFuzzer target for the emulator's request path
 * without a running server.  Built and run by spec/fuzz/run.sh.
 *
 * The request checks of src/emulator/api.c are static and only reachable
 * through emu_api_handle (which needs a libmicrohttpd connection), so this
 * file #includes api.c and calls its static functions directly, in the order
 * emu_api_handle does:
 *   emu_form_parse(raw body)           -> form invariants and a re-encoding round trip
 *   parse_json_text(msgList/toAccids)  -> validate()  (every cms_rules check)
 *   process() twice on a fresh state   -> answer JSON and resend semantics
 * and check_headers() with a fake connection (MHD_lookup_connection_value is
 * defined below, so header values come from the input): the raw bytes as
 * Nonce, and as Content-Type.  Any invariant violation abort()s. */
#include "../../src/emulator/api.c"

#include <stdint.h>
#include "cms_form.h"

#define FAIL(...)                                                  \
  do {                                                             \
    fprintf(stderr, "fuzz_emulator_form invariant: " __VA_ARGS__); \
    fputc('\n', stderr);                                           \
    abort();                                                       \
  } while (0)

/* ---- a fake connection: header values looked up by name ---- */
struct MHD_Connection {
  const char *appkey, *nonce, *curtime, *checksum, *ctype;
};

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                        const char *key) {
  (void)kind;
  if (strcasecmp(key, "AppKey") == 0) return c->appkey;
  if (strcasecmp(key, "Nonce") == 0) return c->nonce;
  if (strcasecmp(key, "CurTime") == 0) return c->curtime;
  if (strcasecmp(key, "CheckSum") == 0) return c->checksum;
  if (strcasecmp(key, "Content-Type") == 0) return c->ctype;
  return NULL;
}

static emu_server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  memset(&srv, 0, sizeof srv);
  srv.cfg.appkey = "fuzzkey";
  srv.cfg.secret = "fuzzsecret";
  srv.cfg.rate_limit = 0;
  srv.cfg.inbox_max = 0;
  pthread_mutex_init(&srv.mu, NULL);
  emu_state_init(&srv.st, &srv.cfg);
  return 0;
}

/* ---- form ---- */
static void check_form(const uint8_t *d, size_t n, const emu_form *f) {
  cms_buf b;
  emu_form g;
  char err[160];
  size_t i;
  for (i = 0; i < f->n; i++) {
    const emu_kv *kv = &f->kv[i];
    if (!kv->key || !kv->val) FAIL("form: NULL key or value");
    if (kv->klen > n || kv->vlen > n) FAIL("form: a field longer than the body");
    if (kv->key[kv->klen] || kv->val[kv->vlen]) FAIL("form: a field without its NUL");
  }
  (void)d;
  /* encode the fields again (every byte %XX-safe) and decode: same fields */
  cms_buf_init(&b, 0);
  for (i = 0; i < f->n; i++) {
    if (i && cms_buf_addc(&b, '&')) abort();
    if (cms_form_escape(&b, f->kv[i].key, f->kv[i].klen)) abort();
    if (cms_buf_addc(&b, '=')) abort();
    if (cms_form_escape(&b, f->kv[i].val, f->kv[i].vlen)) abort();
  }
  if (emu_form_parse(b.data ? b.data : "", b.len, &g, err, sizeof err))
    FAIL("form: re-encoded fields do not parse: %s", err);
  if (g.n != f->n) FAIL("form: %zu fields, %zu after re-encoding", f->n, g.n);
  for (i = 0; i < f->n; i++)
    if (g.kv[i].klen != f->kv[i].klen || g.kv[i].vlen != f->kv[i].vlen ||
        memcmp(g.kv[i].key, f->kv[i].key, f->kv[i].klen) ||
        memcmp(g.kv[i].val, f->kv[i].val, f->kv[i].vlen))
      FAIL("form: field %zu changed after re-encoding", i);
  /* emu_form_get finds the first field of a name */
  for (i = 0; i < f->n; i++) {
    const emu_kv *kv;
    if (memchr(f->kv[i].key, 0, f->kv[i].klen)) continue;
    kv = emu_form_get(f, f->kv[i].key);
    if (!kv || kv > &f->kv[i]) FAIL("form: emu_form_get missed field %zu", i);
  }
  emu_form_free(&g);
  cms_buf_free(&b);
}

/* ---- validation and processing ---- */
static void check_answer(const call *k, const char *text, int second) {
  cJSON *o = cJSON_Parse(text), *succ, *fail, *it;
  int ns, nf;
  if (!o) FAIL("process: the answer is not JSON: %.200s", text);
  if (!emu_json_is_int(cJSON_GetObjectItemCaseSensitive(o, "code"), NULL))
    FAIL("process: no code");
  succ = cJSON_GetObjectItemCaseSensitive(o, "success");
  fail = cJSON_GetObjectItemCaseSensitive(o, "fail");
  if (!cJSON_IsArray(succ) || !cJSON_IsArray(fail)) FAIL("process: no success/fail arrays");
  ns = cJSON_GetArraySize(succ), nf = cJSON_GetArraySize(fail);
  if (ns + nf != k->nmsgs) FAIL("process: %d + %d results for %d messages", ns, nf, k->nmsgs);
  if (!second && nf) FAIL("process: a first delivery failed");
  if (second) {
    int want_s = 0;
    for (int i = 0; i < k->nmsgs; i++) want_s += k->msgs[i].resend;
    if (ns != want_s) FAIL("process: %d resends succeeded, %d expected", ns, want_s);
    cJSON_ArrayForEach(it, fail) {
      if (!cJSON_IsObject(it) || !it->child || !cJSON_IsString(it->child) ||
          strcmp(it->child->valuestring, RESEND_REASON) != 0)
        FAIL("process: a repeat failed without the resend reason");
    }
  }
  cJSON_ArrayForEach(it, succ) {
    cJSON *m;
    if (!cJSON_IsObject(it) || !it->child || !cJSON_IsObject(it->child))
      FAIL("process: a success entry is not {msgId: {...}}");
    m = it->child;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "msgid_client")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(m, "msgid_client")->valuestring, it->child->string))
      FAIL("process: msgid_client differs from the entry's key");
  }
  cJSON_Delete(o);
}

static void run_call(const uint8_t *d, size_t n) {
  call k;
  cms_verr ve;
  int rc, repeated = 0; /* no RequestId here: never set */
  memset(&k, 0, sizeof k);
  k.form_rc = emu_form_parse((const char *)d, n, &k.form, k.form_err, sizeof k.form_err);
  if (k.form_rc != 0 && k.form_rc != -1) FAIL("emu_form_parse returned %d", k.form_rc);
  if (k.form_rc) {
    if (!k.form_err[0] || k.form.n || k.form.kv) FAIL("emu_form_parse failed untidily");
    return;
  }
  check_form(d, n, &k.form);
  {
    const emu_kv *kv = emu_form_get(&k.form, "msgList");
    if (kv) k.msglist = parse_json_text(kv->val, kv->vlen);
    kv = emu_form_get(&k.form, "toAccids");
    if (kv) k.toaccids = parse_json_text(kv->val, kv->vlen);
  }
  memset(&ve, 0, sizeof ve);
  rc = validate(&k, &ve);
  if (rc != 0 && rc != -1) FAIL("validate returned %d", rc);
  if (rc) {
    if (!ve.field[0] || !ve.message[0]) FAIL("validate failed without an error");
  } else {
    char *text;
    size_t j;
    if (k.roomid <= 0) FAIL("validate accepted roomid %lld", k.roomid);
    if (!k.from || !cms_accid_valid(k.from, strlen(k.from))) FAIL("validate: bad fromAccid");
    if (k.nmsgs < 1 || k.nmsgs > 10) FAIL("validate accepted %d messages", k.nmsgs);
    if (k.nto < 1 || k.nto > 100) FAIL("validate accepted %zu accids", k.nto);
    for (j = 0; j < k.nto; j++)
      if (!cms_accid_valid(k.to[j], strlen(k.to[j]))) FAIL("validate: bad toAccid");
    for (int i = 0; i < k.nmsgs; i++) {
      const vmsg *m = &k.msgs[i];
      if (!m->msgid || !*m->msgid || !m->attach || !m->ext) /* attach may be "" (optional) */
        FAIL("validate: message %d incomplete", i + 1);
      if (!cms_msgtype_by_code(m->type)) FAIL("validate: msgType %lld", m->type);
    }
    text = process(&srv, &k, NULL, &repeated);
    if (!text) FAIL("process returned NULL");
    check_answer(&k, text, 0);
    cJSON_free(text);
    for (j = 0; j < k.nto; j++) {
      emu_inbox *ib = emu_inbox_get(&srv.st, k.to[j], 0);
      if (!ib || ib->len != (size_t)k.nmsgs)
        FAIL("process: inbox of %s holds %zu of %d messages", k.to[j], ib ? ib->len : 0,
             k.nmsgs);
    }
    text = process(&srv, &k, NULL, &repeated); /* the same call again: resend semantics */
    if (!text) FAIL("process returned NULL");
    check_answer(&k, text, 1);
    cJSON_free(text);
    emu_state_reset(&srv.st, &srv.cfg);
  }
  call_free(&k);
}

/* ---- headers ---- */
static void run_headers(const uint8_t *d, size_t n) {
  struct MHD_Connection c;
  char *s = emu_strndup((const char *)d, n), curtime[32], sum[41], err[512];
  size_t slen;
  long units;
  int rc;
  if (!s) abort();
  slen = strlen(s);  /* a header value ends at the first NUL */
  snprintf(curtime, sizeof curtime, "%lld", (long long)time(NULL));
  /* the bytes as the Nonce, everything else right */
  if (cms_checksum(NULL, srv.cfg.secret, strlen(srv.cfg.secret), s, curtime, sum)) abort();
  c.appkey = srv.cfg.appkey, c.nonce = s, c.curtime = curtime, c.checksum = sum;
  c.ctype = CMS_CONTENT_TYPE;
  rc = check_headers(&srv, &c, err, sizeof err);
  units = cms_utf16_len(s, slen);
  if (units < 0) units = (long)slen;
  if ((rc == 0) != (units >= 1 && units <= CMS_MAX_NONCE))
    FAIL("check_headers: Nonce of %ld characters gave %d (%s)", units, rc, rc ? err : "");
  /* the bytes as the Content-Type */
  if (cms_checksum(NULL, srv.cfg.secret, strlen(srv.cfg.secret), "abc", curtime, sum)) abort();
  c.nonce = "abc", c.ctype = s;
  rc = check_headers(&srv, &c, err, sizeof err);
  if (rc == 0) {
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "application/x-www-form-urlencoded", 33) != 0)
      FAIL("check_headers accepted Content-Type '%s'", s);
  } else if (!err[0]) {
    FAIL("check_headers failed without an error");
  }
  /* the bytes as the CheckSum: only the right one passes */
  c.ctype = CMS_CONTENT_TYPE, c.checksum = s;
  rc = check_headers(&srv, &c, err, sizeof err);
  if (rc == 0 && strcasecmp(s, sum) != 0) FAIL("check_headers accepted CheckSum '%s'", s);
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  run_call(d, n);
  run_headers(d, n);
  return 0;
}
