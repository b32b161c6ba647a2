#include "cms_http.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void cms_http_global_init(void) { pthread_once(&global_once, global_init); }

/* --- fork: the sockets of kept-alive connections are inherited ---
 *
 * After fork() the child holds the parent's connections: the same sockets.
 * A child sending on one while the parent (or a sibling) does would read the
 * other's answer.  So every socket libcurl opens for the module goes through
 * open/close callbacks that keep a process-wide set of them (a fork is a
 * process-wide event; this is the one piece of global state, guarded by a
 * mutex).  The first transfer a process prepares after a fork swaps each
 * inherited descriptor (dup2) for one end of a socket pair whose other end is
 * closed: the parent's connection is left untouched, while libcurl in the
 * child finds its copy closed by the peer when it checks it before reuse,
 * drops it (writing nothing to the parent's peer) and connects anew. */
#define SOCK_SET_MAX 65536 /* descriptors above this are not tracked (then reused as they are) */
static pthread_mutex_t sock_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char sock_set[SOCK_SET_MAX / 8];
static pid_t sock_pid;

static void sock_mark(curl_socket_t fd, int on) {
  if (fd < 0 || fd >= SOCK_SET_MAX) return;
  pthread_mutex_lock(&sock_lock);
  if (on) sock_set[fd / 8] |= (unsigned char)(1u << (fd % 8));
  else sock_set[fd / 8] &= (unsigned char)~(1u << (fd % 8));
  if (on && !sock_pid) sock_pid = getpid();
  pthread_mutex_unlock(&sock_lock);
}

static curl_socket_t open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  curl_socket_t fd;
  (void)ud, (void)purpose;
  cms_http_fork_check(); /* before this socket joins a set that may still be the parent's */
  /* close-on-exec: a program this process starts must not hold the connection open */
  fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd != CURL_SOCKET_BAD) sock_mark(fd, 1);
  return fd;
}

static int close_cb(void *ud, curl_socket_t fd) {
  (void)ud;
  sock_mark(fd, 0);
  return close(fd);
}

void cms_http_fork_check(void) {
  pid_t pid = getpid();
  int fd;
  pthread_mutex_lock(&sock_lock);
  if (sock_pid && sock_pid != pid) {
    for (fd = 0; fd < SOCK_SET_MAX; fd++) {
      if (sock_set[fd / 8] & (1u << (fd % 8))) {
        /* one end of a pair whose other end is closed: to libcurl, a
         * connection the peer has closed (reads EOF, writes fail) */
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
          close(pair[1]);
          dup2(pair[0], fd);
          close(pair[0]);
        }
        /* (no descriptors to spare: this one stays as it is) */
      }
    }
  }
  sock_pid = pid;
  pthread_mutex_unlock(&sock_lock);
}

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
  SET(CURLOPT_OPENSOCKETFUNCTION, open_cb);
  SET(CURLOPT_CLOSESOCKETFUNCTION, close_cb);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
#undef SET
  return rc;
}

CURLcode cms_http_prepare(CURL *h, cms_http_xfer *x, const char *url,
                          struct curl_slist *headers, const char *body, size_t len) {
  CURLcode rc = CURLE_OK;
  cms_http_fork_check();
  x->requests = 0;
  x->sent = 0;
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

/* Did any byte of the request leave?  libcurl calls the pre-request callback
 * once the connection is ready (TCP, TLS, proxy tunnel) and before it writes
 * the request, so a transfer whose callback never ran sent nothing of it; the
 * upload counter is asked too, in case a libcurl ever writes without asking.
 * (CURLINFO_REQUEST_SIZE is no use: it counts a proxy's CONNECT too.)  The
 * CURLcode says nothing about it: "out of memory" (a 100 KB header line),
 * "couldn't connect" (the reconnect after a kept-alive connection died under
 * the request) and timeouts all come after the request went out, and a
 * proxy's refusal of the tunnel ("recv failure") before. */
static int request_left(CURL *h, const cms_http_xfer *x) {
  curl_off_t up = 0;
  if (x->requests > 0) return 1;
  if (curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK || up > 0) return 1;
  return 0;
}

/* a code of the connect phase (for the message only: the flags never depend on it) */
static int connect_code(CURLcode rc, const char *errbuf) {
  return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
         rc == CURLE_COULDNT_CONNECT || rc == CURLE_SSL_CONNECT_ERROR ||
         rc == CURLE_PEER_FAILED_VERIFICATION ||
         (rc == CURLE_OPERATION_TIMEDOUT && strncmp(errbuf, "Failed to connect", 17) == 0);
}

cms_http_outcome cms_http_finish(CURL *h, cms_http_xfer *x, CURLcode rc) {
  x->rc = rc;
  x->status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
  x->sent = request_left(h, x);
  if (rc == CURLE_OK) return CMS_HTTP_OK;
  if (rc == CURLE_WRITE_ERROR && x->answer.overflow) return CMS_HTTP_TOO_BIG;
  /* whatever the code says, a request that left may have been delivered */
  if (x->sent) {
    if (x->requests == 1 && connect_code(rc, x->errbuf)) {
      /* the only way: the request went out on a kept-alive connection that
       * died unanswered, and libcurl's reconnect (to send it again, which
       * the pre-request callback would refuse) failed */
      static const char pre[] = "the kept-alive connection closed after the request was sent, "
                                "and reconnecting failed (";
      char why[CURL_ERROR_SIZE];
      size_t k, room = sizeof x->errbuf - (sizeof pre - 1) - 2;
      snprintf(why, sizeof why, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
      k = strlen(why);
      if (k > room) k = room;
      memcpy(x->errbuf, pre, sizeof pre - 1);
      memcpy(x->errbuf + sizeof pre - 1, why, k);
      memcpy(x->errbuf + sizeof pre - 1 + k, ")", 2);
    }
    return CMS_HTTP_AMBIGUOUS;
  }
  if (rc == CURLE_OUT_OF_MEMORY || x->answer.oom) return CMS_HTTP_LOCAL;
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_FAILED_INIT:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      return CMS_HTTP_LOCAL; /* this machine's setup: another endpoint will not help */
    default:
      /* DNS, refused, connect timeout, TLS handshake, a proxy that said no:
       * nothing of the request left, so it is safe to send it elsewhere */
      return CMS_HTTP_CONNECT;
  }
}

const char *cms_http_describe(const cms_http_xfer *x) {
  if (x->rc == CURLE_ABORTED_BY_CALLBACK && x->requests > 1)
    return "the connection closed after the request was sent, with no answer "
           "(not replayed: a resend is the caller's decision)";
  if (x->errbuf[0]) return x->errbuf;
  return curl_easy_strerror(x->rc);
}
