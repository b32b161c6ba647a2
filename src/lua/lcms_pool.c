/* lcms_pool.c -- a client's libcurl multi handle and its slots (one easy
 * handle, body, header list and answer per transfer in flight), made on first
 * use and only as many as a run's concurrency asks for: a client that never
 * calls send_all/fanout holds one pointer. */
#include <stdlib.h>
#include <string.h>
#include "lcms.h"

static void slot_free(lcms_pool *p, lcms_slot *s) {
  if (p->multi && s->easy) curl_multi_remove_handle(p->multi, s->easy);
  if (s->easy) curl_easy_cleanup(s->easy);
  curl_slist_free_all(s->headers);
  cms_buf_free(&s->form);
  cms_buf_free(&s->xfer.answer);
  free(s);
}

void lcms_pool_release(lcms_pool *p) {
  int i;
  if (!p) return;
  for (i = 0; i < p->n; i++) slot_free(p, p->slots[i]);
  if (p->multi) curl_multi_cleanup(p->multi);
  free(p);
}

/* any handle left in the multi by an earlier run that was unwound is taken out */
lcms_pool *lcms_pool_get(lcms_client *c, int n) {
  lcms_pool *p = c->pool;
  int i;
  if (n > LCMS_MAX_CONCURRENCY) n = LCMS_MAX_CONCURRENCY;
  if (!p) {
    if (!(p = calloc(1, sizeof *p))) return NULL;
    if (!(p->multi = curl_multi_init())) {
      free(p);
      return NULL;
    }
    c->pool = p;
  }
  for (i = 0; i < p->n; i++) {
    if (p->slots[i]->call) curl_multi_remove_handle(p->multi, p->slots[i]->easy);
    p->slots[i]->call = 0;
  }
  while (p->n < n) {
    lcms_slot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    cms_buf_init(&s->form, 0);
    cms_buf_init(&s->xfer.answer, CMS_MAX_ANSWER);
    if (!(s->easy = curl_easy_init()) || cms_http_configure(s->easy, &c->http) != CURLE_OK) {
      slot_free(p, s);
      return NULL;
    }
    p->slots[p->n++] = s;
  }
  return p;
}

lcms_slot *lcms_pool_free_slot(lcms_pool *p, int n) {
  int i;
  for (i = 0; i < n && i < p->n; i++)
    if (!p->slots[i]->call) return p->slots[i];
  return NULL;
}

lcms_slot *lcms_pool_find(lcms_pool *p, int n, CURL *easy) {
  int i;
  for (i = 0; i < n && i < p->n; i++)
    if (p->slots[i]->easy == easy) return p->slots[i];
  return NULL;
}
