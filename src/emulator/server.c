/* server.c -- libmicrohttpd glue: one thread per connection (a delay fault
 * sleeps in its own thread and stalls no one else), body collection with the
 * --max-body limit, routing, and the /_emulator/ inspection endpoints. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "cms_rules.h"
#include "emu.h"

#define JSON_CT "application/json; charset=utf-8"

double emu_mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long emu_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void emu_sleep_ms(emu_server *s, long ms) {
  while (ms > 0 && !atomic_load(&s->stopping)) {
    long step = ms > 20 ? 20 : ms;
    struct timespec ts = {0, step * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
    ms -= step;
  }
}

int emu_reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
              size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret;
  if (!resp) return MHD_NO;
  if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
  ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

int emu_reply_json(struct MHD_Connection *c, unsigned status, cJSON *obj) {
  char *text;
  int ret;
  if (!obj) return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  text = cJSON_PrintUnformatted(obj);
  cJSON_Delete(obj);
  if (!text) return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  ret = emu_reply(c, status, JSON_CT, text, strlen(text));
  cJSON_free(text);
  return ret;
}

int emu_reply_error(struct MHD_Connection *c, unsigned status, const char *msg) {
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddNumberToObject(o, "code", status);
    cJSON_AddItemToObject(o, "desc", emu_json_str(msg, strlen(msg)));
  }
  return emu_reply_json(c, status, o);
}

static cJSON *ok_json(void) {
  cJSON *o = cJSON_CreateObject();
  if (o) cJSON_AddBoolToObject(o, "ok", 1);
  return o;
}

/* ---- /_emulator/ endpoints ---- */
static int h_inbox(emu_server *s, struct MHD_Connection *c) {
  const char *accid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "accid");
  char *low;
  cJSON *o, *arr;
  emu_inbox *ib;
  size_t i;
  if (!accid || !*accid) return emu_reply_error(c, 400, "missing query parameter accid");
  low = emu_lower_dup(accid, strlen(accid));
  o = cJSON_CreateObject();
  arr = cJSON_CreateArray();
  if (!low || !o || !arr) {
    free(low); cJSON_Delete(o); cJSON_Delete(arr);
    return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  }
  emu_json_add_str(o, "accid", low, strlen(low));
  pthread_mutex_lock(&s->mu);
  ib = emu_inbox_get(&s->st, low, 0);
  if (ib) {
    for (i = 0; i < ib->len; i++) {
      cJSON *m = emu_msg_json(ib->items[(ib->start + i) % ib->cap]);
      if (m && !cJSON_AddItemToArray(arr, m)) cJSON_Delete(m);
    }
    cJSON_AddNumberToObject(o, "dropped", (double)ib->dropped);
  }
  pthread_mutex_unlock(&s->mu);
  free(low);
  cJSON_AddItemToObject(o, "messages", arr);
  return emu_reply_json(c, 200, o);
}

static int h_requests(emu_server *s, struct MHD_Connection *c, int sink) {
  cJSON *o = cJSON_CreateObject(), *a;
  if (!o) return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  pthread_mutex_lock(&s->mu);
  if (sink) a = emu_ring_json(s->st.sink, EMU_MAX_SINK, s->st.sink_head, s->st.sink_len);
  else a = emu_ring_json(s->st.records, EMU_MAX_RECORDS, s->st.rec_head, s->st.rec_len);
  pthread_mutex_unlock(&s->mu);
  if (a) cJSON_AddItemToObject(o, "requests", a);
  return emu_reply_json(c, 200, o);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
  (void)kind;
  if (key) emu_json_add_str(cls, key, value ? value : "", value ? strlen(value) : 0);
  return MHD_YES;
}

cJSON *emu_headers_json(struct MHD_Connection *c) {
  cJSON *h = cJSON_CreateObject();
  if (h) MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, h);
  return h;
}

static int h_sink_post(emu_server *s, struct MHD_Connection *c, const char *method,
                       emu_req *r) {
  cJSON *o = cJSON_CreateObject(), *h = emu_headers_json(c);
  if (!o || !h) {
    cJSON_Delete(o); cJSON_Delete(h);
    return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  }
  cJSON_AddStringToObject(o, "method", method);
  cJSON_AddItemToObject(o, "headers", h);
  emu_json_add_str(o, "body", r->body.data, r->body.len);
  pthread_mutex_lock(&s->mu);
  emu_ring_push(s->st.sink, EMU_MAX_SINK, &s->st.sink_head, &s->st.sink_len, o);
  pthread_mutex_unlock(&s->mu);
  return emu_reply_json(c, 200, ok_json());
}

static int h_config(emu_server *s, struct MHD_Connection *c, int post, emu_req *r) {
  cJSON *o, *v;
  if (post) {
    cJSON *in = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    int nas = -1;
    long long rl = -1;
    double pen = -1, window = -1;
    if (!cJSON_IsObject(in)) {
      cJSON_Delete(in);
      return emu_reply_error(c, 400, "config: body must be a JSON object like "
                             "{\"numbers_as_strings\":true,\"rate_limit\":5,\"penalty\":0.5}");
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "request_id_window");
    if (v) {
      if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > EMU_MAX_RID_WINDOW) {
        cJSON_Delete(in);
        return emu_reply_error(c, 400, "config: request_id_window must be a number of seconds "
                               "from 0 to 86400");
      }
      window = v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "numbers_as_strings");
    if (v) {
      if (!cJSON_IsBool(v)) {
        cJSON_Delete(in);
        return emu_reply_error(c, 400, "config: numbers_as_strings must be true or false");
      }
      nas = cJSON_IsTrue(v);
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "rate_limit");
    if (v && (!emu_json_is_int(v, &rl) || rl < 0 || rl > EMU_MAX_RATE_LIMIT)) {
      cJSON_Delete(in);
      return emu_reply_error(c, 400, "config: rate_limit must be an integer from 0 to 1000000");
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "penalty");
    if (v) {
      if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 86400) {
        cJSON_Delete(in);
        return emu_reply_error(c, 400, "config: penalty must be a number of seconds from 0 to 86400");
      }
      pen = v->valuedouble;
    }
    cJSON_Delete(in);
    pthread_mutex_lock(&s->mu);
    if (nas >= 0) s->st.numbers_as_strings = nas;
    if (pen >= 0) s->st.penalty = pen;
    if (window >= 0) {
      s->st.rid_window = window;
      if (window == 0) emu_rid_clear(&s->st);
    }
    if (rl >= 0 && emu_rate_set(&s->st, (long)rl)) {
      pthread_mutex_unlock(&s->mu);
      return emu_reply_error(c, 500, "config: out of memory");
    }
    if (rl >= 0) s->st.penalty_until = 0;
    pthread_mutex_unlock(&s->mu);
  }
  o = cJSON_CreateObject();
  if (o) {
    pthread_mutex_lock(&s->mu);
    cJSON_AddBoolToObject(o, "numbers_as_strings", s->st.numbers_as_strings);
    cJSON_AddNumberToObject(o, "rate_limit", (double)s->st.rate_limit);
    cJSON_AddNumberToObject(o, "penalty", s->st.penalty);
    cJSON_AddNumberToObject(o, "request_id_window", s->st.rid_window);
    pthread_mutex_unlock(&s->mu);
  }
  return emu_reply_json(c, 200, o);
}

static int h_faults(emu_server *s, struct MHD_Connection *c, const char *method, emu_req *r) {
  cJSON *o, *a;
  emu_fault *f;
  if (strcmp(method, "POST") == 0) {
    char err[256];
    emu_fault *list = emu_faults_parse(r->body.data ? r->body.data : "", r->body.len, err,
                                       sizeof err);
    if (!list) return emu_reply_error(c, 400, err);
    pthread_mutex_lock(&s->mu);
    if (s->st.faults_tail) s->st.faults_tail->next = list;
    else s->st.faults = list;
    for (f = list; f->next; f = f->next) {}
    s->st.faults_tail = f;
    pthread_mutex_unlock(&s->mu);
  } else if (strcmp(method, "DELETE") == 0) {
    pthread_mutex_lock(&s->mu);
    f = s->st.faults;
    s->st.faults = s->st.faults_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (f) {
      emu_fault *n = f->next;
      emu_fault_free(f);
      f = n;
    }
  }
  o = cJSON_CreateObject();
  a = cJSON_CreateArray();
  if (!o || !a) {
    cJSON_Delete(o); cJSON_Delete(a);
    return emu_reply(c, 500, "text/plain", "out of memory\n", 14);
  }
  pthread_mutex_lock(&s->mu);
  for (f = s->st.faults; f; f = f->next) {
    cJSON *j = emu_fault_to_json(f);
    if (j && !cJSON_AddItemToArray(a, j)) cJSON_Delete(j);
  }
  pthread_mutex_unlock(&s->mu);
  cJSON_AddItemToObject(o, "faults", a);
  return emu_reply_json(c, 200, o);
}

static int is_api_path(const char *url) {
  return strcmp(url, EMU_PREFIX CMS_API_PATH) == 0 || strcmp(url, EMU_PREFIX EMU_SINGLE_PATH) == 0;
}

static int route(emu_server *s, struct MHD_Connection *c, const char *url, const char *method,
                 emu_req *r) {
  int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  if (is_api_path(url)) return emu_api_handle(s, c, method, url, r);
  if (strncmp(url, "/_emulator/", 11) == 0) {
    const char *p = url + 11;
    if (strcmp(p, "inbox") == 0 && get) return h_inbox(s, c);
    if (strcmp(p, "reset") == 0 && post) {
      pthread_mutex_lock(&s->mu);
      emu_state_reset(&s->st, &s->cfg);
      atomic_store(&s->connections, 0);
      pthread_mutex_unlock(&s->mu);
      return emu_reply_json(c, 200, ok_json());
    }
    if (strcmp(p, "stats") == 0 && get) return emu_reply_json(c, 200, emu_stats_json(s));
    if (strcmp(p, "requests") == 0 && get) return h_requests(s, c, 0);
    if (strcmp(p, "ratelog") == 0 && get) return emu_reply_json(c, 200, emu_ratelog_json(s));
    if (strcmp(p, "config") == 0 && (get || post)) return h_config(s, c, post, r);
    if (strcmp(p, "faults") == 0 &&
        (get || post || strcmp(method, "DELETE") == 0))
      return h_faults(s, c, method, r);
    if (strcmp(p, "sink") == 0) {
      if (get) return h_requests(s, c, 1);
      return h_sink_post(s, c, method, r);
    }
    if (!strcmp(p, "inbox") || !strcmp(p, "reset") || !strcmp(p, "stats") ||
        !strcmp(p, "requests") || !strcmp(p, "config") || !strcmp(p, "faults") ||
        !strcmp(p, "ratelog"))
      return emu_reply_error(c, 405, "method not allowed on this path");
  }
  {
    char msg[160];
    snprintf(msg, sizeof msg, "no such path: %.120s", url);
    return emu_reply_error(c, 404, msg);
  }
}

static int reply_413(emu_server *s, struct MHD_Connection *c, const char *url) {
  char msg[128];
  if (is_api_path(url)) {
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    emu_count_add(s->st.http, &s->st.nhttp, 413);
    pthread_mutex_unlock(&s->mu);
  }
  snprintf(msg, sizeof msg, "request body larger than --max-body (%zu bytes)", s->cfg.max_body);
  return emu_reply_error(c, 413, msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  emu_server *s = cls;
  emu_req *r = *con_cls;
  (void)version;
  if (!r) {
    const char *cl;
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    cms_buf_init(&r->body, s->cfg.max_body);
    *con_cls = r;
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
      char *end;
      unsigned long long n;
      errno = 0;
      n = strtoull(cl, &end, 10);
      if (!errno && end != cl && n > s->cfg.max_body) {
        /* Too large.  A client that waits for "100 Continue", or one that
         * announces a body far over the limit, gets the 413 before the body
         * (MHD then closes).  Otherwise the body is read and thrown away so
         * the client, still sending, surely sees the 413 and no reset. */
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        r->too_large = 1;
        if ((expect && strncasecmp(expect, "100-continue", 12) == 0) ||
            n > (unsigned long long)s->cfg.max_body + EMU_DISCARD_MAX) {
          r->early_done = 1;
          return (enum MHD_Result)reply_413(s, c, url);
        }
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!r->too_large && !r->early_done &&
        cms_buf_add(&r->body, upload_data, *upload_data_size))
      r->too_large = 1;
    if (r->too_large) {
      r->discarded += *upload_data_size;
      if (r->discarded > EMU_DISCARD_MAX) return MHD_NO;  /* endless: drop the connection */
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (r->early_done) return MHD_YES;
  if (r->too_large) return (enum MHD_Result)reply_413(s, c, url);
  return (enum MHD_Result)route(s, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  emu_req *r = *con_cls;
  (void)cls; (void)c; (void)toe;
  if (r) {
    cms_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
  }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  emu_server *s = cls;
  (void)c; (void)socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&s->connections, 1);
}

int emu_server_start(emu_server *s) {
  struct addrinfo hints, *res = NULL;
  struct sockaddr_storage addr;
  char port[16];
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_POLL;
  int rc;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(port, sizeof port, "%u", s->cfg.port);
  rc = getaddrinfo(s->cfg.host, port, &hints, &res);
  if (rc || !res) {
    fprintf(stderr, "commsease-emulator: cannot resolve --host %s: %s\n", s->cfg.host,
            gai_strerror(rc));
    if (res) freeaddrinfo(res);
    return -1;
  }
  memset(&addr, 0, sizeof addr);
  memcpy(&addr, res->ai_addr, res->ai_addrlen);
  if (res->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  freeaddrinfo(res);
  s->daemon = MHD_start_daemon(
      flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4000,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_END);
  if (!s->daemon) {
    fprintf(stderr, "commsease-emulator: cannot listen on %s:%u: %s\n", s->cfg.host,
            s->cfg.port, strerror(errno));
    return -1;
  }
  {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port) s->cfg.port = di->port;
  }
  return 0;
}

void emu_server_stop(emu_server *s) {
  atomic_store(&s->stopping, 1);
  if (s->daemon) MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
}
