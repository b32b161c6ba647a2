/* cms_http.h -- one HTTP POST over a reused libcurl easy handle.
 *
 * libcurl by itself sends a POST again when a reused keep-alive connection
 * dies without an answer: the same bytes, the same Nonce, resendFlag 0.  Here
 * it cannot: a pre-request callback (CURLOPT_PREREQFUNCTION, called before
 * every request libcurl sends) lets the first request of a transfer through
 * and aborts any second one, so the transfer fails (CURLE_ABORTED_BY_CALLBACK,
 * reported as "answer lost") and every resend is the caller's decision.  The
 * body goes as POSTFIELDS, so headers and body leave in one send (a read
 * callback without a seek callback also stops the replay, but costs a second
 * send per request).  Answers are capped (cms_buf limit).  No Lua here. */
#ifndef CMS_HTTP_H
#define CMS_HTTP_H
#include <curl/curl.h>
#include <stddef.h>
#include "cms_buf.h"

#define CMS_MAX_ANSWER (1024 * 1024) /* bytes of answer body kept */

typedef struct cms_http_opts {
  long timeout_ms, connect_timeout_ms;
  const char *ca_file;   /* NULL = system store */
  const char *proxy;     /* NULL = none (libcurl's env handling stays off) */
  const char *user_agent;
} cms_http_opts;

/* What happened to one attempt.  Whether the request left decides between
 * AMBIGUOUS and CONNECT/LOCAL, never the CURLcode: CONNECT and LOCAL always
 * mean that no byte of the request was written (x->sent == 0), AMBIGUOUS,
 * TOO_BIG and OK that it was (x->sent == 1). */
typedef enum cms_http_outcome {
  CMS_HTTP_OK,          /* an answer arrived (any status) */
  CMS_HTTP_CONNECT,     /* nothing was sent (DNS, connect, TLS, proxy): safe to send elsewhere */
  CMS_HTTP_AMBIGUOUS,   /* failed after the request went out: it may have been delivered */
  CMS_HTTP_TOO_BIG,     /* the answer was over CMS_MAX_ANSWER */
  CMS_HTTP_LOCAL        /* nothing was sent: a local failure (out of memory, bad option, CA file) */
} cms_http_outcome;

typedef struct cms_http_xfer {
  /* the body is owned by the caller for the whole transfer (POSTFIELDS) */
  int requests;          /* requests libcurl began for this transfer */
  int sent;              /* set by cms_http_finish: 1 if any of the request may have left */
  /* answer */
  cms_buf answer;
  long status;
  CURLcode rc;
  char errbuf[CURL_ERROR_SIZE];
} cms_http_xfer;

void cms_http_global_init(void);                  /* once, thread-safely */
/* the options every transfer of a handle shares; returns a CURLcode */
CURLcode cms_http_configure(CURL *h, const cms_http_opts *o);
/* prepares one POST on h (URL, headers, body through the read callback) */
CURLcode cms_http_prepare(CURL *h, cms_http_xfer *x, const char *url,
                          struct curl_slist *headers, const char *body, size_t len);
/* After fork(): swaps every socket libcurl opened for this module in another
 * process (the parent's kept-alive connections) for a blank one, so this
 * process never reads or writes the parent's connections; cms_http_prepare
 * calls it, and a driver should call it before curl_easy_cleanup or
 * curl_multi_cleanup (which would otherwise close the inherited TLS sessions
 * with a close_notify on the parent's connection).  Cheap: one getpid(). */
void cms_http_fork_check(void);
/* after curl_easy_perform or a multi's CURLMSG_DONE: what happened */
cms_http_outcome cms_http_finish(CURL *h, cms_http_xfer *x, CURLcode rc);
/* a short, secret-free description of a failed transfer */
const char *cms_http_describe(const cms_http_xfer *x);

#endif
