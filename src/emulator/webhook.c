/* webhook.c -- a queue of webhook events and one sender thread (libcurl).
 * Each event is POSTed with AppKey, CurTime (ms), MD5 (of the body) and
 * CheckSum = sha1hex(secret .. MD5 .. CurTime).  The answer path only pushes
 * onto the queue; it never waits for the sender. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_sign.h"
#include "emu.h"

static size_t discard(char *p, size_t sz, size_t n, void *ud) {
  (void)p; (void)ud;
  return sz * n;
}

/* aborts a transfer in flight when the emulator stops */
static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  emu_webhook *w = ud;
  int stop;
  (void)a; (void)b; (void)c; (void)d;
  pthread_mutex_lock(&w->mu);
  stop = w->stop;
  pthread_mutex_unlock(&w->mu);
  return stop;
}

static int send_one(emu_webhook *w, CURL *h, const char *body) {
  char md5[33], sum[41], curtime[32], hdr[160];
  struct curl_slist *hl = NULL, *t;
  long status = 0;
  CURLcode rc;
  int ok = 0;
  if (cms_md5_hex(body, strlen(body), md5)) return -1;
  snprintf(curtime, sizeof curtime, "%lld", emu_wall_ms());
  if (cms_checksum(NULL, w->secret, strlen(w->secret), md5, curtime, sum)) return -1;
  snprintf(hdr, sizeof hdr, "AppKey: %s", w->appkey);
  if (!(t = curl_slist_append(hl, hdr))) goto done;
  hl = t;
  snprintf(hdr, sizeof hdr, "CurTime: %s", curtime);
  if (!(t = curl_slist_append(hl, hdr))) goto done;
  hl = t;
  snprintf(hdr, sizeof hdr, "MD5: %s", md5);
  if (!(t = curl_slist_append(hl, hdr))) goto done;
  hl = t;
  snprintf(hdr, sizeof hdr, "CheckSum: %s", sum);
  if (!(t = curl_slist_append(hl, hdr))) goto done;
  hl = t;
  if (!(t = curl_slist_append(hl, "Content-Type: application/json;charset=utf-8"))) goto done;
  hl = t;
  if (!(t = curl_slist_append(hl, "Expect:"))) goto done;
  hl = t;
  curl_easy_setopt(h, CURLOPT_URL, w->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  rc = curl_easy_perform(h);
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  ok = rc == CURLE_OK && status == 200;
done:
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hl);
  return ok ? 0 : -1;
}

static void *run(void *ud) {
  emu_webhook *w = ud;
  CURL *h = curl_easy_init();
  if (h) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
  }
  for (;;) {
    emu_wh_item *it;
    int ok;
    pthread_mutex_lock(&w->mu);
    while (!w->stop && !w->head) pthread_cond_wait(&w->cv, &w->mu);
    if (w->stop) {
      pthread_mutex_unlock(&w->mu);
      break;
    }
    it = w->head;
    w->head = it->next;
    if (!w->head) w->tail = NULL;
    w->queued--;
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);
    ok = h ? send_one(w, h, it->body) == 0 : 0;
    free(it->body);
    free(it);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (ok) w->sent++;
    else w->failed++;
    pthread_mutex_unlock(&w->mu);
  }
  if (h) curl_easy_cleanup(h);
  return NULL;
}

int emu_webhook_start(emu_webhook *w, const char *url, const char *appkey,
                      const char *secret) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->url = url;
  w->appkey = appkey;
  w->secret = secret;
  if (!url) return 0;
  if (pthread_create(&w->thread, NULL, run, w)) return -1;
  w->started = 1;
  return 0;
}

void emu_webhook_push(emu_webhook *w, char *body) {
  emu_wh_item *it;
  if (!body) return;
  if (!w->started) { free(body); return; }
  it = malloc(sizeof *it);
  pthread_mutex_lock(&w->mu);
  if (!it || w->stop || w->queued >= EMU_WEBHOOK_QUEUE_MAX) {
    w->dropped++;
    pthread_mutex_unlock(&w->mu);
    free(it);
    free(body);
    return;
  }
  it->body = body;
  it->next = NULL;
  if (w->tail) w->tail->next = it;
  else w->head = it;
  w->tail = it;
  w->queued++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void emu_webhook_stop(emu_webhook *w) {
  emu_wh_item *it;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (w->started) pthread_join(w->thread, NULL);
  w->started = 0;
  it = w->head;
  while (it) {  /* events still queued are dropped */
    emu_wh_item *n = it->next;
    free(it->body);
    free(it);
    it = n;
  }
  w->head = w->tail = NULL;
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

cJSON *emu_webhook_stats(emu_webhook *w) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  pthread_mutex_lock(&w->mu);
  cJSON_AddBoolToObject(o, "enabled", w->url != NULL);
  cJSON_AddNumberToObject(o, "queued", (double)(w->queued + (size_t)w->busy));
  cJSON_AddNumberToObject(o, "sent", (double)w->sent);
  cJSON_AddNumberToObject(o, "failed", (double)w->failed);
  cJSON_AddNumberToObject(o, "dropped", (double)w->dropped);
  pthread_mutex_unlock(&w->mu);
  return o;
}
