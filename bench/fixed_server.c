/* fixed_server.c -- a tiny fixed-answer HTTP/1.1 keep-alive server for the
 * bench (libmicrohttpd, thread pool + epoll).  Every POST to
 * .../chatroom/batchSendMsgToSomeone.action gets the same realistic success
 * answer for the standard 10-message batch (m1..m10); anything else gets 404.
 * It reads and drops the request body; it checks nothing else, so its cost
 * per request is as small as libmicrohttpd allows and the client is what the
 * bench measures.
 *
 *   fixed_server [--port N] [--threads N] [--messages N] [--max-seconds N]
 *                [--params light|realistic]
 *
 * --params realistic echoes bench/batch.h's realistic text and ext in every
 * message object, as the service does (the light answer has "hello" and "").
 *
 * Binds 127.0.0.1 only.  Prints one line
 *   listening on http://127.0.0.1:PORT/nimserver
 * then serves until SIGINT/SIGTERM, until stdin reaches EOF when --stdin-eof
 * is given, or until --max-seconds (default 900) have passed: it always stops
 * by itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "batch.h"


static char *answer;
static size_t answer_len;
static struct MHD_Response *ok_resp, *notfound_resp;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  static int first_call_marker;
  (void)cls;
  (void)version;
  (void)upload_data;
  if (*con_cls == NULL) { /* headers only: come back for the body */
    *con_cls = &first_call_marker;
    return MHD_YES;
  }
  if (*upload_data_size) { /* a body chunk: drop it */
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "POST") == 0 && ends_with(url, "/chatroom/batchSendMsgToSomeone.action"))
    return MHD_queue_response(conn, MHD_HTTP_OK, ok_resp);
  return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, notfound_resp);
}

/* s as a JSON string's contents, the way a Java service writes it */
static void json_escape(char *out, size_t cap, const char *s) {
  size_t o = 0;
  for (; *s && o + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') out[o++] = '\\', out[o++] = (char)c;
    else if (c == '\n') out[o++] = '\\', out[o++] = 'n';
    else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    else out[o++] = (char)c;
  }
  out[o] = '\0';
}

/* the success answer for msgIds m1..mN, message objects as API.md shows */
static int build_answer(int n, int realistic) {
  static char attach[1024], ext[512];
  size_t cap = 256 + (size_t)n * 1536, len = 0;
  int i, k;
  long long now_ms = (long long)time(NULL) * 1000;
  json_escape(attach, sizeof attach, realistic ? BATCH_REALISTIC_TEXT : BATCH_LIGHT_TEXT);
  json_escape(ext, sizeof ext, realistic ? BATCH_REALISTIC_EXT : "");
  answer = malloc(cap);
  if (!answer) return -1;
  len += (size_t)snprintf(answer + len, cap - len, "{\"code\":200,\"success\":[");
  for (i = 1; i <= n; i++) {
    k = snprintf(answer + len, cap - len,
                 "%s{\"m%d\":{\"time\":%lld,\"fromAvator\":\"\",\"msgid_client\":\"m%d\","
                 "\"fromClientType\":\"REST\",\"roomId\":765788,\"fromAccount\":\"bench\","
                 "\"fromNick\":\"bench\",\"attach\":\"%s\",\"type\":0,\"ext\":\"%s\"}}",
                 i > 1 ? "," : "", i, now_ms + i, i, attach, ext);
    if (k < 0 || (size_t)k >= cap - len) return -1;
    len += (size_t)k;
  }
  k = snprintf(answer + len, cap - len, "],\"fail\":[]}");
  if (k < 0 || (size_t)k >= cap - len) return -1;
  answer_len = len + (size_t)k;
  return 0;
}

static long parse_num(const char *flag, const char *v, long lo, long hi) {
  char *end;
  long x;
  if (!v) {
    fprintf(stderr, "fixed_server: %s needs a value\n", flag);
    exit(2);
  }
  errno = 0;
  x = strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi) {
    fprintf(stderr, "fixed_server: %s must be an integer from %ld to %ld\n", flag, lo, hi);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  long port = 0, threads = 2, messages = 10, max_seconds = 900;
  int stdin_eof = 0, realistic = 0, i;
  struct sockaddr_in sa;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *di;
  time_t started;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--port") == 0) port = parse_num(a, v, 0, 65535), i++;
    else if (strcmp(a, "--threads") == 0) threads = parse_num(a, v, 1, 64), i++;
    else if (strcmp(a, "--messages") == 0) messages = parse_num(a, v, 0, 10), i++;
    else if (strcmp(a, "--max-seconds") == 0) max_seconds = parse_num(a, v, 1, 86400), i++;
    else if (strcmp(a, "--stdin-eof") == 0) stdin_eof = 1;
    else if (strcmp(a, "--params") == 0 && v && (!strcmp(v, "light") || !strcmp(v, "realistic")))
      realistic = strcmp(v, "realistic") == 0, i++;
    else {
      fprintf(stderr, "usage: fixed_server [--port N] [--threads N] [--messages N] "
                      "[--max-seconds N] [--stdin-eof] [--params light|realistic]\n");
      return 2;
    }
  }
  if (build_answer((int)messages, realistic)) {
    fprintf(stderr, "fixed_server: out of memory\n");
    return 1;
  }
  ok_resp = MHD_create_response_from_buffer(answer_len, answer, MHD_RESPMEM_PERSISTENT);
  notfound_resp = MHD_create_response_from_buffer(
      strlen("{\"code\":404,\"desc\":\"not found\"}"), (void *)"{\"code\":404,\"desc\":\"not found\"}",
      MHD_RESPMEM_PERSISTENT);
  if (!ok_resp || !notfound_resp ||
      MHD_add_response_header(ok_resp, "Content-Type", "application/json;charset=utf-8") ==
          MHD_NO) {
    fprintf(stderr, "fixed_server: could not build the answer\n");
    return 1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
                       (uint16_t)port, NULL, NULL, on_request, NULL,
                       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                       MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
                       MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1000,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                       MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "fixed_server: could not listen on 127.0.0.1:%ld\n", port);
    return 1;
  }
  di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  printf("listening on http://127.0.0.1:%u/nimserver\n", di ? (unsigned)di->port : 0u);
  fflush(stdout);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  started = time(NULL);
  while (!stop && time(NULL) - started < max_seconds) {
    if (stdin_eof) {
      fd_set rf;
      struct timeval tv = {0, 200000};
      FD_ZERO(&rf);
      FD_SET(0, &rf);
      if (select(1, &rf, NULL, NULL, &tv) > 0) {
        char buf[256];
        if (read(0, buf, sizeof buf) <= 0) break;
      }
    } else {
      usleep(200000);
    }
  }
  MHD_stop_daemon(d);
  MHD_destroy_response(ok_resp);
  MHD_destroy_response(notfound_resp);
  free(answer);
  return 0;
}
