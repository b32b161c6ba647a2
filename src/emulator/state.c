/* state.c -- the emulator's shared state: delivered sets, inboxes, the rate
 * limiter, stats, recorded requests and the sink.  Callers hold emu_server.mu
 * (emu_stats_json takes it itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

/* ---- hash map ---- */
static unsigned long hash_str(const char *s) {
  unsigned long h = 1469598103934665603UL;  /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211UL;
  return h;
}

void emu_map_init(emu_map *m) { memset(m, 0, sizeof *m); }

void emu_map_clear(emu_map *m, void (*free_val)(void *)) {
  size_t i;
  for (i = 0; i < m->nb; i++) {
    emu_map_node *n = m->b[i];
    while (n) {
      emu_map_node *next = n->next;
      if (free_val && n->val) free_val(n->val);
      free(n->key);
      free(n);
      n = next;
    }
  }
  free(m->b);
  memset(m, 0, sizeof *m);
}

static emu_map_node *find(const emu_map *m, const char *key) {
  unsigned long h;
  emu_map_node *n;
  if (!m->nb) return NULL;
  h = hash_str(key);
  for (n = m->b[h % m->nb]; n; n = n->next)
    if (n->hash == h && strcmp(n->key, key) == 0) return n;
  return NULL;
}

void *emu_map_get(const emu_map *m, const char *key) {
  emu_map_node *n = find(m, key);
  return n ? n->val : NULL;
}

int emu_map_has(const emu_map *m, const char *key) { return find(m, key) != NULL; }

static int grow(emu_map *m) {
  size_t nb = m->nb ? m->nb * 2 : 64, i;
  emu_map_node **b = calloc(nb, sizeof *b);
  if (!b) return -1;
  for (i = 0; i < m->nb; i++) {
    emu_map_node *n = m->b[i];
    while (n) {
      emu_map_node *next = n->next;
      n->next = b[n->hash % nb];
      b[n->hash % nb] = n;
      n = next;
    }
  }
  free(m->b);
  m->b = b;
  m->nb = nb;
  return 0;
}

int emu_map_put(emu_map *m, const char *key, void *val) {
  emu_map_node *n;
  if (m->count >= m->nb && grow(m)) {
    if (!m->nb) return -1;  /* keep working with longer chains */
  }
  n = malloc(sizeof *n);
  if (!n) return -1;
  n->key = emu_strndup(key, strlen(key));
  if (!n->key) { free(n); return -1; }
  n->val = val;
  n->hash = hash_str(key);
  n->next = m->b[n->hash % m->nb];
  m->b[n->hash % m->nb] = n;
  m->count++;
  return 0;
}

int emu_map_del(emu_map *m, const char *key) {
  unsigned long h;
  emu_map_node **pp;
  if (!m->nb) return -1;
  h = hash_str(key);
  for (pp = &m->b[h % m->nb]; *pp; pp = &(*pp)->next) {
    emu_map_node *n = *pp;
    if (n->hash == h && strcmp(n->key, key) == 0) {
      *pp = n->next;
      free(n->key);
      free(n);
      m->count--;
      return 0;
    }
  }
  return -1;
}

/* ---- RequestIds of processed calls ---- */
static void rid_pop(emu_state *st) {
  emu_rid *r = st->rid_head;
  emu_map_del(&st->rids, r->id);
  st->rid_head = r->next;
  if (!st->rid_head) st->rid_tail = NULL;
  free(r);
}

static void rid_expire(emu_state *st, double now) {
  while (st->rid_head && now - st->rid_head->t >= st->rid_window) rid_pop(st);
}

int emu_rid_seen(emu_state *st, const char *rid, double now) {
  char key[EMU_RID_MAX_CHARS + 1];
  if (st->rid_window <= 0 || !rid || !*rid) return 0;
  rid_expire(st, now);
  snprintf(key, sizeof key, "%s", rid);
  return emu_map_has(&st->rids, key);
}

void emu_rid_remember(emu_state *st, const char *rid, double now) {
  emu_rid *r;
  size_t n;
  if (st->rid_window <= 0 || !rid || !*rid) return;
  rid_expire(st, now);
  n = strlen(rid);
  if (n > EMU_RID_MAX_CHARS) n = EMU_RID_MAX_CHARS;
  r = malloc(sizeof *r + n + 1);
  if (!r) return;
  memcpy(r->id, rid, n);
  r->id[n] = '\0';
  r->t = now;
  r->next = NULL;
  if (emu_map_has(&st->rids, r->id) || emu_map_put(&st->rids, r->id, NULL)) {
    free(r);
    return;
  }
  if (st->rid_tail) st->rid_tail->next = r;
  else st->rid_head = r;
  st->rid_tail = r;
  if (st->rids.count > EMU_RID_MAX) rid_pop(st);
}

void emu_rid_clear(emu_state *st) {
  while (st->rid_head) rid_pop(st);
  emu_map_clear(&st->rids, NULL);
}

/* ---- messages and inboxes ---- */
void emu_msg_unref(emu_msg *m) {
  if (!m || --m->refs > 0) return;
  free(m->msgid);
  free(m->from);
  free(m->attach);
  free(m->ext);
  free(m);
}

static void inbox_free(void *p) {
  emu_inbox *ib = p;
  size_t i;
  for (i = 0; i < ib->len; i++) emu_msg_unref(ib->items[(ib->start + i) % ib->cap]);
  free(ib->items);
  free(ib);
}

emu_inbox *emu_inbox_get(emu_state *st, const char *accid, int create) {
  emu_inbox *ib = emu_map_get(&st->inboxes, accid);
  if (ib || !create) return ib;
  ib = calloc(1, sizeof *ib);
  if (!ib) return NULL;
  if (emu_map_put(&st->inboxes, accid, ib)) { free(ib); return NULL; }
  return ib;
}

int emu_inbox_push(emu_inbox *ib, emu_msg *m, size_t max) {
  if (max && ib->len >= max) {  /* full: drop the oldest */
    emu_msg_unref(ib->items[ib->start]);
    ib->start = (ib->start + 1) % ib->cap;
    ib->len--;
    ib->dropped++;
  }
  if (ib->len == ib->cap) {
    size_t cap = ib->cap ? ib->cap * 2 : 8, i;
    emu_msg **items;
    if (max && cap > max) cap = max;
    if (cap <= ib->cap) cap = ib->cap + 1;
    items = malloc(cap * sizeof *items);
    if (!items) return -1;
    for (i = 0; i < ib->len; i++) items[i] = ib->items[(ib->start + i) % ib->cap];
    free(ib->items);
    ib->items = items;
    ib->cap = cap;
    ib->start = 0;
  }
  ib->items[(ib->start + ib->len) % ib->cap] = m;
  ib->len++;
  m->refs++;
  return 0;
}

cJSON *emu_msg_json(const emu_msg *m) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddItemToObject(o, "roomId", emu_json_int(m->roomid));
  cJSON_AddStringToObject(o, "msgid_client", m->msgid);
  cJSON_AddStringToObject(o, "fromAccount", m->from);
  cJSON_AddNumberToObject(o, "type", (double)m->type);
  cJSON_AddStringToObject(o, "attach", m->attach);
  cJSON_AddStringToObject(o, "ext", m->ext);
  cJSON_AddNumberToObject(o, "time", (double)m->time_ms);
  cJSON_AddNumberToObject(o, "resendFlag", m->resend_flag);
  if (m->has_subtype) cJSON_AddNumberToObject(o, "subType", (double)m->subtype);
  return o;
}

/* ---- counts ---- */
void emu_count_add(emu_count *t, size_t *n, int code) {
  size_t i;
  for (i = 0; i < *n; i++)
    if (t[i].code == code) { t[i].n++; return; }
  if (*n < EMU_MAX_COUNTS) {
    t[*n].code = code;
    t[*n].n = 1;
    (*n)++;
  }
}

cJSON *emu_count_json(const emu_count *t, size_t n) {
  cJSON *o = cJSON_CreateObject();
  size_t i;
  char key[24];
  if (!o) return NULL;
  for (i = 0; i < n; i++) {
    snprintf(key, sizeof key, "%d", t[i].code);
    cJSON_AddNumberToObject(o, key, (double)t[i].n);
  }
  return o;
}

/* ---- rings of cJSON objects ---- */
void emu_ring_push(cJSON **ring, size_t cap, size_t *head, size_t *len, cJSON *item) {
  size_t slot;
  if (*len == cap) {       /* full: overwrite the oldest */
    cJSON_Delete(ring[*head]);
    ring[*head] = item;
    *head = (*head + 1) % cap;
    return;
  }
  slot = (*head + *len) % cap;
  ring[slot] = item;
  (*len)++;
}

cJSON *emu_ring_json(cJSON *const *ring, size_t cap, size_t head, size_t len) {
  cJSON *a = cJSON_CreateArray();
  size_t i;
  if (!a) return NULL;
  for (i = 0; i < len; i++) {
    cJSON *d = cJSON_Duplicate(ring[(head + i) % cap], 1);
    if (d && !cJSON_AddItemToArray(a, d)) cJSON_Delete(d);
  }
  return a;
}

static void ring_clear(cJSON **ring, size_t cap, size_t *head, size_t *len) {
  size_t i;
  for (i = 0; i < *len; i++) {
    cJSON_Delete(ring[(*head + i) % cap]);
    ring[(*head + i) % cap] = NULL;
  }
  *head = *len = 0;
}

/* ---- rate limit: a sliding one-second window ---- */
int emu_rate_set(emu_state *st, long limit) {
  double *t = NULL;
  if (limit < 0) limit = 0;
  if (limit > 0) {
    t = malloc((size_t)limit * sizeof *t);
    if (!t) return -1;
  }
  free(st->rl_times);
  st->rl_times = t;
  st->rl_cap = (size_t)limit;
  st->rl_head = st->rl_len = 0;
  st->rate_limit = limit;
  return 0;
}

/* counts the call in the sliding window of calls seen (whatever the answer) */
static void seen_add(emu_state *st, double now) {
  while (st->seen_len && now - st->seen[st->seen_head] >= 1.0) {
    st->seen_head = (st->seen_head + 1) % st->seen_cap;
    st->seen_len--;
  }
  if (st->seen_len == st->seen_cap) {
    size_t cap = st->seen_cap ? st->seen_cap * 2 : 256, i;
    double *t = malloc(cap * sizeof *t);
    if (!t && !st->seen_cap) return;
    if (!t) {  /* out of memory: the oldest goes, so the figure may read low */
      st->seen_head = (st->seen_head + 1) % st->seen_cap;
      st->seen_len--;
    } else {
      for (i = 0; i < st->seen_len; i++) t[i] = st->seen[(st->seen_head + i) % st->seen_cap];
      free(st->seen);
      st->seen = t;
      st->seen_cap = cap;
      st->seen_head = 0;
    }
  }
  st->seen[(st->seen_head + st->seen_len) % st->seen_cap] = now;
  st->seen_len++;
  if (st->seen_len > st->max_cps) st->max_cps = st->seen_len;
}

static void ratelog_add(emu_state *st, double now, const char *from, size_t from_len, int rl) {
  emu_ratelog_entry *e;
  if (!st->ratelog && !(st->ratelog = calloc(EMU_RATELOG_MAX, sizeof *st->ratelog))) return;
  if (st->rlog_len == EMU_RATELOG_MAX) {
    e = &st->ratelog[st->rlog_head];
    st->rlog_head = (st->rlog_head + 1) % EMU_RATELOG_MAX;
  } else {
    e = &st->ratelog[(st->rlog_head + st->rlog_len++) % EMU_RATELOG_MAX];
  }
  e->t = now;
  e->code = rl ? 416 : 200;
  if (from_len > sizeof e->from - 1) from_len = sizeof e->from - 1;
  if (from) memcpy(e->from, from, from_len);
  e->from[from ? from_len : 0] = 0;
}

static int rate_decide(emu_state *st, double now);

int emu_rate_check(emu_state *st, double now, const char *from, size_t from_len) {
  int rl;
  seen_add(st, now);
  rl = rate_decide(st, now);
  ratelog_add(st, now, from, from_len, rl);
  return rl;
}

cJSON *emu_ratelog_json(emu_server *s) {
  cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "calls");
  size_t i;
  if (!o || !a) {
    cJSON_Delete(o);
    return NULL;
  }
  pthread_mutex_lock(&s->mu);
  for (i = 0; i < s->st.rlog_len; i++) {
    const emu_ratelog_entry *e = &s->st.ratelog[(s->st.rlog_head + i) % EMU_RATELOG_MAX];
    cJSON *c = cJSON_CreateObject();
    if (!c) break;
    cJSON_AddNumberToObject(c, "t", e->t);
    cJSON_AddNumberToObject(c, "code", e->code);
    emu_json_add_str(c, "from", e->from, strlen(e->from));
    cJSON_AddItemToArray(a, c);
  }
  pthread_mutex_unlock(&s->mu);
  return o;
}

static int rate_decide(emu_state *st, double now) {
  if (st->rate_limit <= 0 || !st->rl_cap) return 0;
  if (now < st->penalty_until) return 2;
  if (st->penalty_until > 0) {  /* a penalty just ended: start afresh */
    st->penalty_until = 0;
    st->rl_head = st->rl_len = 0;
  }
  while (st->rl_len && now - st->rl_times[st->rl_head] >= 1.0) {
    st->rl_head = (st->rl_head + 1) % st->rl_cap;
    st->rl_len--;
  }
  if (st->rl_len >= st->rl_cap) {
    st->penalty_until = now + (st->penalty > 0 ? st->penalty : 0);
    if (st->penalty <= 0) st->penalty_until = 0;
    return 1;
  }
  st->rl_times[(st->rl_head + st->rl_len) % st->rl_cap] = now;
  st->rl_len++;
  return 0;
}

/* ---- whole state ---- */
void emu_state_init(emu_state *st, const emu_config *cfg) {
  memset(st, 0, sizeof *st);
  emu_map_init(&st->delivered);
  emu_map_init(&st->inboxes);
  emu_map_init(&st->rids);
  st->rid_window = cfg->request_id_window;
  st->numbers_as_strings = cfg->numbers_as_strings;
  st->penalty = cfg->penalty;
  if (emu_rate_set(st, cfg->rate_limit)) st->rate_limit = 0;
}

static void clear_all(emu_state *st) {
  emu_fault *f = st->faults;
  emu_map_clear(&st->delivered, NULL);
  emu_map_clear(&st->inboxes, inbox_free);
  ring_clear(st->records, EMU_MAX_RECORDS, &st->rec_head, &st->rec_len);
  ring_clear(st->sink, EMU_MAX_SINK, &st->sink_head, &st->sink_len);
  while (f) {
    emu_fault *next = f->next;
    emu_fault_free(f);
    f = next;
  }
  st->faults = st->faults_tail = NULL;
  emu_rid_clear(st);
  st->requests = st->closed = 0;
  st->ncodes = st->nhttp = 0;
  st->rl_head = st->rl_len = 0;
  st->penalty_until = 0;
  st->seen_head = st->seen_len = 0;
  st->max_cps = 0;
  st->rlog_head = st->rlog_len = 0;
}

void emu_state_reset(emu_state *st, const emu_config *cfg) {
  (void)cfg;  /* run-time settings (config endpoint) survive a reset */
  clear_all(st);
}

void emu_state_free(emu_state *st) {
  clear_all(st);
  free(st->rl_times);
  st->rl_times = NULL;
  free(st->seen);
  st->seen = NULL;
  free(st->ratelog);
  st->ratelog = NULL;
  st->seen_cap = 0;
}

cJSON *emu_stats_json(emu_server *s) {
  cJSON *o = cJSON_CreateObject(), *wh;
  emu_state *st = &s->st;
  if (!o) return NULL;
  pthread_mutex_lock(&s->mu);
  cJSON_AddNumberToObject(o, "requests", (double)st->requests);
  cJSON_AddNumberToObject(o, "connections", (double)atomic_load(&s->connections));
  cJSON_AddItemToObject(o, "codes", emu_count_json(st->codes, st->ncodes));
  cJSON_AddItemToObject(o, "http", emu_count_json(st->http, st->nhttp));
  cJSON_AddNumberToObject(o, "closed", (double)st->closed);
  cJSON_AddNumberToObject(o, "delivered_msgids", (double)st->delivered.count);
  cJSON_AddNumberToObject(o, "inboxes", (double)st->inboxes.count);
  cJSON_AddNumberToObject(o, "max_calls_per_second", (double)st->max_cps);
  cJSON_AddNumberToObject(o, "request_ids", (double)st->rids.count);
  pthread_mutex_unlock(&s->mu);
  wh = emu_webhook_stats(&s->wh);
  if (wh) cJSON_AddItemToObject(o, "webhook", wh);
  return o;
}
