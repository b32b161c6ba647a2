/* faults.c -- parsing and describing fault plan entries.  Matching and
 * consuming happen in api.c under the state lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

static const char *const action_names[] = {"delay", "status", "close", "truncate",
                                           "garbage", "code", "fail_msg"};

const char *emu_fault_action_name(emu_fault_action a) {
  if ((unsigned)a < sizeof action_names / sizeof action_names[0]) return action_names[a];
  return "?";
}

void emu_fault_free(emu_fault *f) {
  if (!f) return;
  free(f->match_accid);
  free(f->match_msgid);
  free(f->desc);
  free(f->reason);
  free(f->body);
  free(f);
}

static int dupstr(char **dst, const char *src) {
  *dst = NULL;
  if (!src) return 0;
  *dst = emu_strndup(src, strlen(src));
  return *dst ? 0 : -1;
}

emu_fault *emu_fault_dup(const emu_fault *f) {
  emu_fault *d = malloc(sizeof *d);
  if (!d) return NULL;
  *d = *f;
  d->next = NULL;
  d->match_accid = d->match_msgid = d->desc = d->reason = d->body = NULL;
  if (dupstr(&d->match_accid, f->match_accid) || dupstr(&d->match_msgid, f->match_msgid) ||
      dupstr(&d->desc, f->desc) || dupstr(&d->reason, f->reason) ||
      dupstr(&d->body, f->body)) {
    emu_fault_free(d);
    return NULL;
  }
  return d;
}

/* optional string member: 0 ok (absent or string), -1 wrong type */
static int opt_str(const cJSON *o, const char *key, char **dst, int idx, char *err,
                   size_t errlen) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsString(v) || !v->valuestring) {
    snprintf(err, errlen, "faults[%d].%s must be a string", idx, key);
    return -1;
  }
  *dst = emu_strndup(v->valuestring, strlen(v->valuestring));
  if (!*dst) { snprintf(err, errlen, "out of memory"); return -1; }
  return 0;
}

static int opt_int(const cJSON *o, const char *key, long long *dst, long long lo,
                   long long hi, int idx, char *err, size_t errlen) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  long long x;
  if (!v) return 0;
  if (!emu_json_is_int(v, &x) || x < lo || x > hi) {
    snprintf(err, errlen, "faults[%d].%s must be an integer from %lld to %lld", idx, key, lo,
             hi);
    return -1;
  }
  *dst = x;
  return 0;
}

static emu_fault *parse_one(const cJSON *o, int idx, char *err, size_t errlen) {
  emu_fault *f;
  const cJSON *a, *m, *v;
  long long x;
  size_t i;
  if (!cJSON_IsObject(o)) {
    snprintf(err, errlen, "faults[%d] must be an object", idx);
    return NULL;
  }
  a = cJSON_GetObjectItemCaseSensitive(o, "action");
  if (!cJSON_IsString(a) || !a->valuestring) {
    snprintf(err, errlen, "faults[%d].action must be one of delay status close truncate "
             "garbage code fail_msg", idx);
    return NULL;
  }
  f = calloc(1, sizeof *f);
  if (!f) { snprintf(err, errlen, "out of memory"); return NULL; }
  for (i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
    if (strcmp(a->valuestring, action_names[i]) == 0) break;
  if (i == sizeof action_names / sizeof action_names[0]) {
    snprintf(err, errlen, "faults[%d].action: unknown action; one of delay status close "
             "truncate garbage code fail_msg", idx);
    goto fail;
  }
  f->action = (emu_fault_action)i;
  x = 1;
  if (opt_int(o, "count", &x, 1, 1000000000, idx, err, errlen)) goto fail;
  f->count = (long)x;
  m = cJSON_GetObjectItemCaseSensitive(o, "match");
  if (m && !cJSON_IsNull(m)) {
    if (!cJSON_IsObject(m)) {
      snprintf(err, errlen, "faults[%d].match must be an object", idx);
      goto fail;
    }
    if (opt_str(m, "accid", &f->match_accid, idx, err, errlen)) goto fail;
    if (opt_str(m, "msgId", &f->match_msgid, idx, err, errlen)) goto fail;
    if (f->match_accid) {
      char *low = emu_lower_dup(f->match_accid, strlen(f->match_accid));
      if (!low) { snprintf(err, errlen, "out of memory"); goto fail; }
      free(f->match_accid);
      f->match_accid = low;
    }
  }
  switch (f->action) {
    case EMU_F_DELAY:
      x = 0;
      v = cJSON_GetObjectItemCaseSensitive(o, "ms");
      if (!v) {
        snprintf(err, errlen, "faults[%d].ms is required for delay", idx);
        goto fail;
      }
      if (opt_int(o, "ms", &x, 0, 600000, idx, err, errlen)) goto fail;
      f->ms = (long)x;
      v = cJSON_GetObjectItemCaseSensitive(o, "when");
      if (v) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, "before") == 0) f->before = 1;
        else if (cJSON_IsString(v) && strcmp(v->valuestring, "after") == 0) f->before = 0;
        else {
          snprintf(err, errlen, "faults[%d].when must be \"before\" or \"after\"", idx);
          goto fail;
        }
      }
      break;
    case EMU_F_STATUS:
      x = 502;
      if (opt_int(o, "status", &x, 100, 599, idx, err, errlen)) goto fail;
      f->status = (int)x;
      if (opt_str(o, "body", &f->body, idx, err, errlen)) goto fail;
      v = cJSON_GetObjectItemCaseSensitive(o, "after_deliver");
      if (v && !cJSON_IsBool(v)) {
        snprintf(err, errlen, "faults[%d].after_deliver must be true or false", idx);
        goto fail;
      }
      f->after_deliver = cJSON_IsTrue(v); /* a gateway that gave up after forwarding */
      break;
    case EMU_F_CLOSE:
      v = cJSON_GetObjectItemCaseSensitive(o, "after_deliver");
      if (v && !cJSON_IsBool(v)) {
        snprintf(err, errlen, "faults[%d].after_deliver must be true or false", idx);
        goto fail;
      }
      f->after_deliver = cJSON_IsTrue(v);
      break;
    case EMU_F_GARBAGE:
      if (opt_str(o, "body", &f->body, idx, err, errlen)) goto fail;
      break;
    case EMU_F_CODE:
      if (!cJSON_GetObjectItemCaseSensitive(o, "code")) {
        snprintf(err, errlen, "faults[%d].code is required for action code", idx);
        goto fail;
      }
      if (opt_int(o, "code", &f->code, -2147483647LL, 2147483647LL, idx, err, errlen))
        goto fail;
      if (opt_str(o, "desc", &f->desc, idx, err, errlen)) goto fail;
      break;
    case EMU_F_FAIL_MSG:
      if (opt_str(o, "reason", &f->reason, idx, err, errlen)) goto fail;
      break;
    case EMU_F_TRUNCATE:
      break;
  }
  return f;
fail:
  emu_fault_free(f);
  return NULL;
}

emu_fault *emu_faults_parse(const char *json, size_t len, char *err, size_t errlen) {
  cJSON *root = cJSON_ParseWithLength(json, len), *arr;
  emu_fault *head = NULL, *tail = NULL;
  int i = 0;
  const cJSON *it;
  if (!root) {
    snprintf(err, errlen, "body is not valid JSON; expected {\"faults\":[{\"action\":...}]}");
    return NULL;
  }
  arr = cJSON_GetObjectItemCaseSensitive(root, "faults");
  if (!cJSON_IsArray(arr)) {
    snprintf(err, errlen, "expected {\"faults\":[{\"action\":...}, ...]}");
    cJSON_Delete(root);
    return NULL;
  }
  if (cJSON_GetArraySize(arr) == 0) {
    snprintf(err, errlen, "faults is empty");
    cJSON_Delete(root);
    return NULL;
  }
  cJSON_ArrayForEach(it, arr) {
    emu_fault *f = parse_one(it, ++i, err, errlen);
    if (!f) {
      while (head) {
        emu_fault *n = head->next;
        emu_fault_free(head);
        head = n;
      }
      cJSON_Delete(root);
      return NULL;
    }
    if (tail) tail->next = f;
    else head = f;
    tail = f;
  }
  cJSON_Delete(root);
  return head;
}

cJSON *emu_fault_to_json(const emu_fault *f) {
  cJSON *o = cJSON_CreateObject(), *m;
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "action", emu_fault_action_name(f->action));
  cJSON_AddNumberToObject(o, "count", (double)f->count);
  if (f->match_accid || f->match_msgid) {
    m = cJSON_AddObjectToObject(o, "match");
    if (m && f->match_accid) cJSON_AddStringToObject(m, "accid", f->match_accid);
    if (m && f->match_msgid) cJSON_AddStringToObject(m, "msgId", f->match_msgid);
  }
  switch (f->action) {
    case EMU_F_DELAY:
      cJSON_AddNumberToObject(o, "ms", (double)f->ms);
      cJSON_AddStringToObject(o, "when", f->before ? "before" : "after");
      break;
    case EMU_F_STATUS:
      cJSON_AddNumberToObject(o, "status", f->status);
      if (f->after_deliver) cJSON_AddBoolToObject(o, "after_deliver", 1);
      break;
    case EMU_F_CLOSE: cJSON_AddBoolToObject(o, "after_deliver", f->after_deliver); break;
    case EMU_F_CODE:
      cJSON_AddNumberToObject(o, "code", (double)f->code);
      if (f->desc) cJSON_AddStringToObject(o, "desc", f->desc);
      break;
    case EMU_F_FAIL_MSG:
      if (f->reason) cJSON_AddStringToObject(o, "reason", f->reason);
      break;
    default: break;
  }
  return o;
}
