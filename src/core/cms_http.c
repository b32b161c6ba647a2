#include "cms_http.h"
#include <pthread.h>
#include <string.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void cms_http_global_init(void) { pthread_once(&global_once, global_init); }

/* called before every request libcurl sends: only the first may go */
static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  cms_http_xfer *x = ud;
  (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
  return ++x->requests == 1 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud) {
  cms_http_xfer *x = ud;
  size_t n = size * nmemb;
  if (cms_buf_add(&x->answer, src, n)) return 0; /* over the cap or OOM: abort */
  return n;
}

CURLcode cms_http_configure(CURL *h, const cms_http_opts *o) {
  CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TIMEOUT_MS, o->timeout_ms);
  SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_NODELAY, 1L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_USERAGENT, o->user_agent);
  SET(CURLOPT_PROXY, o->proxy ? o->proxy : "");
  if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
  SET(CURLOPT_POST, 1L);
  SET(CURLOPT_PREREQFUNCTION, prereq_cb);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
#undef SET
  return rc;
}

CURLcode cms_http_prepare(CURL *h, cms_http_xfer *x, const char *url,
                          struct curl_slist *headers, const char *body, size_t len) {
  CURLcode rc = CURLE_OK;
  x->requests = 0;
  x->status = 0;
  x->rc = CURLE_OK;
  x->errbuf[0] = '\0';
  cms_buf_reset(&x->answer);
  x->answer.limit = CMS_MAX_ANSWER;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, headers);
  SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  SET(CURLOPT_POSTFIELDS, body);
  SET(CURLOPT_PREREQDATA, x);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_PRIVATE, x);
#undef SET
  return rc;
}

cms_http_outcome cms_http_finish(CURL *h, cms_http_xfer *x, CURLcode rc) {
  curl_off_t pre = 0;
  x->rc = rc;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
  if (rc == CURLE_OK) return CMS_HTTP_OK;
  if (rc == CURLE_WRITE_ERROR && x->answer.overflow) return CMS_HTTP_TOO_BIG;
  if (rc == CURLE_OUT_OF_MEMORY || x->answer.oom) return CMS_HTTP_LOCAL;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return CMS_HTTP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
      /* timed out before the connection was ready: nothing was sent */
      if (curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre == 0)
        return CMS_HTTP_CONNECT;
      return CMS_HTTP_AMBIGUOUS;
    default:
      return CMS_HTTP_AMBIGUOUS;
  }
}

const char *cms_http_describe(const cms_http_xfer *x) {
  if (x->rc == CURLE_ABORTED_BY_CALLBACK && x->requests > 1)
    return "the connection closed after the request was sent, with no answer "
           "(not replayed: a resend is the caller's decision)";
  if (x->errbuf[0]) return x->errbuf;
  return curl_easy_strerror(x->rc);
}
