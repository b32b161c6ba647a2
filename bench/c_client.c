/* c_client.c -- the plain-C baseline: what a C programmer would write with
 * libcurl directly to send batchSendMsgToSomeone, as fast as practical.
 *
 * Per request, exactly as the module does per client:send:
 *   - build the form body from the parameters: msgList (10 messages) and
 *     toAccids (100 accids) as JSON text, every value percent-encoded;
 *   - sign: a fresh 32-hex-char Nonce and RequestId (OpenSSL RAND_bytes),
 *     CurTime (seconds), CheckSum = hex SHA1(secret .. nonce .. curtime);
 *   - POST it with the AppKey/Nonce/CurTime/CheckSum/RequestId headers;
 *   - parse the whole answer with cJSON and walk every success entry (msgId,
 *     time, roomId, type as number or numeric string, msgid_client) and every
 *     fail entry, as a client that hands back per-message results must.
 *
 *   c_client --url BASE [--mode easy|multi|body|parse] [--n N] [--concurrency C]
 *            [--params light|realistic] [--appkey K] [--secret S] [--name NAME]
 *
 * --params picks the parameters (bench/batch.h): light ("hello" as every
 * attach) or realistic (224 bytes of mixed-script text and a JSON ext per
 * message).  body: print the form body once and exit (run.lua compares it
 * with the module's).  parse: fetch the answer once, then parse it N times
 * (cJSON and the walk below, no I/O in the loop).
 *
 * easy: one easy handle, N requests in sequence on one kept-alive connection.
 * multi: C easy handles on one multi handle (C connections), N requests.
 * Prints one machine-readable line:
 *   RESULT name=NAME n=N ok=OK wall_s=S reqps=R cpu_us=U
 * where cpu_us is (user+sys CPU of this process over the loop, getrusage) / N. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "batch.h"

#define N_MESSAGES 10
#define N_RECIPIENTS 100
#define ROOMID 765788LL

static const char *base_url, *appkey = "benchkey", *secret = "benchsecret";
static char url[1024];

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t extra) {
  size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 256;
  char *p;
  if (need <= b->cap) return 0;
  while (cap < need) cap *= 2;
  p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int buf_add(buf *b, const char *s, size_t n) {
  if (buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int buf_adds(buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

/* application/x-www-form-urlencoded: unreserved bytes stay, the rest %XX */
static int buf_add_escaped(buf *b, const char *s, size_t n) {
  static const char hexd[] = "0123456789ABCDEF";
  size_t i;
  char *o;
  if (buf_reserve(b, 3 * n)) return -1;
  o = b->p + b->len;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      *o++ = (char)c;
    } else {
      *o++ = '%';
      *o++ = hexd[c >> 4];
      *o++ = hexd[c & 15];
    }
  }
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
  return 0;
}

/* JSON string literal: " and \ escaped, control bytes as \u00XX, UTF-8 as it is
 * (what the module writes) */
static int json_str(buf *b, const char *s) {
  static const char hexd[] = "0123456789ABCDEF";
  size_t n = strlen(s), i;
  char *o;
  if (buf_reserve(b, 6 * n + 2)) return -1;
  o = b->p + b->len;
  *o++ = '"';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c < 0x20) {
      memcpy(o, "\\u00", 4);
      o += 4;
      *o++ = hexd[c >> 4];
      *o++ = hexd[c & 15];
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
  return 0;
}

/* the request's parameters, as a program holds them */
typedef struct message {
  char msgid[16];
  int type;
  const char *attach;
  const char *ext; /* JSON text or NULL */
} message;
static message msgs[N_MESSAGES];
static char accids[N_RECIPIENTS][16];

/* params -> form body (rebuilt for every request, as the module does) */
static int build_body(buf *body, buf *scratch) {
  char num[32];
  int i;
  body->len = 0;
  snprintf(num, sizeof num, "%lld", ROOMID);
  if (buf_adds(body, "roomid=") || buf_adds(body, num)) return -1;
  scratch->len = 0;
  if (buf_adds(scratch, "[")) return -1;
  for (i = 0; i < N_MESSAGES; i++) {
    snprintf(num, sizeof num, "%d", msgs[i].type);
    if ((i && buf_adds(scratch, ",")) || buf_adds(scratch, "{\"msgId\":") ||
        json_str(scratch, msgs[i].msgid) || buf_adds(scratch, ",\"msgType\":") ||
        buf_adds(scratch, num) || buf_adds(scratch, ",\"attach\":") ||
        json_str(scratch, msgs[i].attach) ||
        (msgs[i].ext && (buf_adds(scratch, ",\"ext\":") || json_str(scratch, msgs[i].ext))) ||
        buf_adds(scratch, "}"))
      return -1;
  }
  if (buf_adds(scratch, "]")) return -1;
  if (buf_adds(body, "&msgList=") || buf_add_escaped(body, scratch->p, scratch->len)) return -1;
  if (buf_adds(body, "&fromAccid=") || buf_add_escaped(body, "bench", 5)) return -1;
  scratch->len = 0;
  if (buf_adds(scratch, "[")) return -1;
  for (i = 0; i < N_RECIPIENTS; i++)
    if ((i && buf_adds(scratch, ",")) || json_str(scratch, accids[i])) return -1;
  if (buf_adds(scratch, "]")) return -1;
  if (buf_adds(body, "&toAccids=") || buf_add_escaped(body, scratch->p, scratch->len)) return -1;
  return 0;
}

static void hex(const unsigned char *in, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* fresh Nonce, RequestId, CurTime and CheckSum -> a new header list */
static struct curl_slist *sign_headers(void) {
  unsigned char r[32], md[EVP_MAX_MD_SIZE];
  char nonce[33], rid[33], curtime[24], sum[41], line[160], cat[256];
  unsigned int mdlen = 0;
  int n;
  struct curl_slist *h = NULL, *t;
  if (RAND_bytes(r, sizeof r) != 1) return NULL;
  hex(r, 16, nonce);
  hex(r + 16, 16, rid);
  snprintf(curtime, sizeof curtime, "%lld", (long long)time(NULL));
  n = snprintf(cat, sizeof cat, "%s%s%s", secret, nonce, curtime);
  if (n < 0 || (size_t)n >= sizeof cat) return NULL;
  if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) return NULL;
  hex(md, 20, sum);
#define ADD(...)                                  \
  do {                                            \
    snprintf(line, sizeof line, __VA_ARGS__);     \
    t = curl_slist_append(h, line);               \
    if (!t) goto fail;                            \
    h = t;                                        \
  } while (0)
  ADD("AppKey: %s", appkey);
  ADD("Nonce: %s", nonce);
  ADD("CurTime: %s", curtime);
  ADD("CheckSum: %s", sum);
  ADD("RequestId: %s", rid);
  ADD("Content-Type: application/x-www-form-urlencoded;charset=utf-8");
  ADD("Expect:");
#undef ADD
  return h;
fail:
  curl_slist_free_all(h);
  return NULL;
}

static int to_int64(const cJSON *v, long long *out) {
  char *end;
  if (cJSON_IsNumber(v)) {
    *out = (long long)v->valuedouble;
    return 0;
  }
  if (cJSON_IsString(v) && v->valuestring[0]) {
    errno = 0;
    *out = strtoll(v->valuestring, &end, 10);
    return (errno || *end) ? -1 : 0;
  }
  return -1;
}

/* the per-message results a caller gets back */
typedef struct result {
  char msgid[64];
  long long time, roomid, type;
  int ok;
} result;

/* full parse of one answer; returns the number of messages sent, -1 if bad */
static int parse_answer(long status, const char *body, size_t len, result *out, int max) {
  cJSON *root, *code, *list, *entry;
  long long c;
  int n = 0;
  if (status != 200) return -1;
  root = cJSON_ParseWithLength(body, len);
  if (!root) return -1;
  code = cJSON_GetObjectItemCaseSensitive(root, "code");
  if (to_int64(code, &c) || c != 200) goto bad;
  list = cJSON_GetObjectItemCaseSensitive(root, "success");
  if (list && !cJSON_IsNull(list)) {
    if (!cJSON_IsArray(list)) goto bad;
    cJSON_ArrayForEach(entry, list) {
      const cJSON *m;
      if (!cJSON_IsObject(entry)) goto bad;
      for (m = entry->child; m; m = m->next) {
        const cJSON *v;
        result *r;
        if (!cJSON_IsObject(m) || n >= max) goto bad;
        r = &out[n++];
        snprintf(r->msgid, sizeof r->msgid, "%s", m->string);
        r->ok = 1;
        r->time = r->roomid = r->type = 0;
        if ((v = cJSON_GetObjectItemCaseSensitive(m, "time")) && to_int64(v, &r->time)) goto bad;
        if ((v = cJSON_GetObjectItemCaseSensitive(m, "roomId")) && to_int64(v, &r->roomid))
          goto bad;
        if ((v = cJSON_GetObjectItemCaseSensitive(m, "type")) && to_int64(v, &r->type)) goto bad;
        v = cJSON_GetObjectItemCaseSensitive(m, "msgid_client");
        if (v && !cJSON_IsString(v)) goto bad;
      }
    }
  }
  list = cJSON_GetObjectItemCaseSensitive(root, "fail");
  if (list && !cJSON_IsNull(list)) {
    if (!cJSON_IsArray(list)) goto bad;
    cJSON_ArrayForEach(entry, list) {
      const cJSON *m;
      if (!cJSON_IsObject(entry)) goto bad;
      for (m = entry->child; m; m = m->next) {
        result *r;
        if (n >= max) goto bad;
        r = &out[n++];
        snprintf(r->msgid, sizeof r->msgid, "%s", m->string);
        r->ok = 0;
      }
    }
  }
  cJSON_Delete(root);
  return n;
bad:
  cJSON_Delete(root);
  return -1;
}

/* one in-flight transfer */
typedef struct xfer {
  CURL *h;
  buf body, scratch, answer;
  struct curl_slist *headers;
} xfer;

static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (x->answer.len + n > (1u << 20)) return 0; /* 1 MiB cap, like the module */
  return buf_add(&x->answer, src, n) ? 0 : n;
}

static int xfer_init(xfer *x) {
  memset(x, 0, sizeof *x);
  x->h = curl_easy_init();
  if (!x->h) return -1;
  curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(x->h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(x->h, CURLOPT_USERAGENT, "bench-c/1");
  curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
  curl_easy_setopt(x->h, CURLOPT_URL, url);
  return 0;
}

/* body + signature for the next request */
static int xfer_arm(xfer *x) {
  if (build_body(&x->body, &x->scratch)) return -1;
  curl_slist_free_all(x->headers);
  x->headers = sign_headers();
  if (!x->headers) return -1;
  x->answer.len = 0;
  curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body.p);
  curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
  return 0;
}

/* 1 if the finished transfer's answer is a full success for every message */
static int xfer_check(xfer *x, CURLcode rc) {
  long status = 0;
  result res[2 * N_MESSAGES];
  int n;
  if (rc != CURLE_OK) return 0;
  curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
  n = parse_answer(status, x->answer.p ? x->answer.p : "", x->answer.len, res,
                   (int)(sizeof res / sizeof res[0]));
  return n == N_MESSAGES;
}

static void xfer_free(xfer *x) {
  curl_easy_cleanup(x->h);
  curl_slist_free_all(x->headers);
  free(x->body.p);
  free(x->scratch.p);
  free(x->answer.p);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static double wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long run_easy(long n) {
  xfer x;
  long i, ok = 0;
  if (xfer_init(&x)) return -1;
  for (i = 0; i < n; i++) {
    CURLcode rc;
    if (xfer_arm(&x)) break;
    rc = curl_easy_perform(x.h);
    ok += xfer_check(&x, rc);
  }
  xfer_free(&x);
  return ok;
}

static long run_multi(long n, int conc) {
  CURLM *m = curl_multi_init();
  xfer *xs;
  long started = 0, done = 0, ok = 0;
  int i, running = 0;
  if (!m) return -1;
  if (conc > n) conc = (int)n;
  xs = calloc((size_t)conc, sizeof *xs);
  if (!xs) return -1;
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
  for (i = 0; i < conc; i++) {
    if (xfer_init(&xs[i]) || xfer_arm(&xs[i])) return -1;
    curl_multi_add_handle(m, xs[i].h);
    started++;
  }
  while (done < n) {
    CURLMsg *msg;
    int left;
    if (curl_multi_perform(m, &running) != CURLM_OK) break;
    while ((msg = curl_multi_info_read(m, &left))) {
      xfer *x = NULL;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
      ok += xfer_check(x, msg->data.result);
      done++;
      curl_multi_remove_handle(m, x->h);
      if (started < n) {
        if (xfer_arm(x)) {
          done = n;
          break;
        }
        curl_multi_add_handle(m, x->h);
        started++;
      }
    }
    if (done >= n) break;
    if (curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) break;
  }
  for (i = 0; i < conc; i++) {
    curl_multi_remove_handle(m, xs[i].h);
    xfer_free(&xs[i]);
  }
  free(xs);
  curl_multi_cleanup(m);
  return ok;
}

static long num_arg(const char *flag, const char *v, long lo, long hi) {
  char *end;
  long x;
  if (!v) {
    fprintf(stderr, "c_client: %s needs a value\n", flag);
    exit(2);
  }
  errno = 0;
  x = strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi) {
    fprintf(stderr, "c_client: %s must be an integer from %ld to %ld\n", flag, lo, hi);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  const char *mode = "easy", *name = NULL, *batch = "light";
  long n = 1000, conc = 8, ok;
  double c0, w0, cpu, wall;
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--url") == 0 && v) base_url = v, i++;
    else if (strcmp(a, "--mode") == 0 && v) mode = v, i++;
    else if (strcmp(a, "--name") == 0 && v) name = v, i++;
    else if (strcmp(a, "--params") == 0 && v) batch = v, i++;
    else if (strcmp(a, "--appkey") == 0 && v) appkey = v, i++;
    else if (strcmp(a, "--secret") == 0 && v) secret = v, i++;
    else if (strcmp(a, "--n") == 0) n = num_arg(a, v, 1, 10000000), i++;
    else if (strcmp(a, "--concurrency") == 0) conc = num_arg(a, v, 1, 256), i++;
    else {
      fprintf(stderr, "usage: c_client --url BASE [--mode easy|multi|body|parse] [--n N] "
                      "[--concurrency C] [--params light|realistic] [--appkey K] [--secret S] "
                      "[--name NAME]\n");
      return 2;
    }
  }
  if (!base_url ||
      (strcmp(mode, "easy") && strcmp(mode, "multi") && strcmp(mode, "body") && strcmp(mode, "parse")) ||
      (strcmp(batch, "light") && strcmp(batch, "realistic")) || strlen(secret) > 128 ||
      strlen(appkey) > 100) {
    fprintf(stderr, "c_client: --url is required; --mode is easy, multi or body; --params is "
                    "light or realistic\n");
    return 2;
  }
  snprintf(url, sizeof url, "%s/chatroom/batchSendMsgToSomeone.action", base_url);
  for (i = 0; i < N_MESSAGES; i++) {
    snprintf(msgs[i].msgid, sizeof msgs[i].msgid, "m%d", i + 1);
    msgs[i].type = 0;
    msgs[i].attach = strcmp(batch, "light") ? BATCH_REALISTIC_TEXT : BATCH_LIGHT_TEXT;
    msgs[i].ext = strcmp(batch, "light") ? BATCH_REALISTIC_EXT : NULL;
  }
  for (i = 0; i < N_RECIPIENTS; i++) snprintf(accids[i], sizeof accids[i], "p%d", i + 1);
  if (strcmp(mode, "parse") == 0) { /* the answer fetched once, then parsed n times */
    xfer x;
    result res[2 * N_MESSAGES];
    long k, good = 0;
    long status = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (xfer_init(&x) || xfer_arm(&x) || curl_easy_perform(x.h) != CURLE_OK) return 1;
    curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &status);
    c0 = cpu_seconds();
    w0 = wall_seconds();
    for (k = 0; k < n; k++)
      good += parse_answer(status, x.answer.p, x.answer.len, res,
                           (int)(sizeof res / sizeof res[0])) == N_MESSAGES;
    wall = wall_seconds() - w0;
    cpu = cpu_seconds() - c0;
    xfer_free(&x);
    curl_global_cleanup();
    printf("RESULT name=c_parse n=%ld ok=%ld wall_s=%.4f reqps=%.1f cpu_us=%.2f\n", n, good, wall,
           wall > 0 ? n / wall : 0.0, cpu * 1e6 / n);
    return good == n ? 0 : 1;
  }
  if (strcmp(mode, "body") == 0) {
    buf body = {0}, scratch = {0};
    if (build_body(&body, &scratch)) return 1;
    fwrite(body.p, 1, body.len, stdout);
    free(body.p);
    free(scratch.p);
    return 0;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  c0 = cpu_seconds();
  w0 = wall_seconds();
  ok = strcmp(mode, "easy") == 0 ? run_easy(n) : run_multi(n, (int)conc);
  wall = wall_seconds() - w0;
  cpu = cpu_seconds() - c0;
  curl_global_cleanup();
  if (!name) name = strcmp(mode, "easy") == 0 ? "c_easy" : "c_multi";
  (void)batch;
  printf("RESULT name=%s n=%ld ok=%ld wall_s=%.4f reqps=%.1f cpu_us=%.2f\n", name, n, ok, wall,
         wall > 0 ? n / wall : 0.0, cpu * 1e6 / n);
  return ok == n ? 0 : 1;
}
