/* emu.h -- commsease-emulator: a local emulator of the CommsEase endpoints
 * chatroom/batchSendMsgToSomeone.action and chatroom/sendMsgToSomeone.action
 * (see docs/emulator.md).
 *
 * Concerns, one file each:
 *   main.c     flags, start-up, signals
 *   server.c   libmicrohttpd glue, routing, the /_emulator/ endpoints
 *   api.c      the API call: headers, validation (via cms_rules), processing
 *   form.c     application/x-www-form-urlencoded decoding
 *   state.c    inboxes, delivered sets, rate limit, stats, recorded requests, sink
 *   faults.c   the fault plan
 *   webhook.c  the webhook queue and its sender thread
 *   jsonutil.c small cJSON helpers (UTF-8 safe strings, printing)
 *
 * No C globals: everything hangs off one emu_server.  Shared state is guarded
 * by emu_server.mu.  Nothing here ends the process on bad input. */
#ifndef EMU_H
#define EMU_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "cms_buf.h"

#define EMU_PREFIX "/nimserver"
#define EMU_MAX_RECORDS 200       /* API requests kept for /_emulator/requests */
#define EMU_MAX_SINK 1000         /* requests kept by /_emulator/sink */
#define EMU_RECORD_BODY_MAX 65536 /* bytes of a recorded body kept */
#define EMU_MAX_RATE_LIMIT 1000000
#define EMU_WEBHOOK_QUEUE_MAX 100000
#define EMU_DISCARD_MAX (64u << 20) /* bytes of an oversized body read and dropped */
#define EMU_SINGLE_PATH "/chatroom/sendMsgToSomeone.action"
#define EMU_RID_MAX 1000000       /* RequestIds remembered at most (the oldest go first) */
#define EMU_RID_MAX_CHARS 128     /* longer RequestIds are remembered by their first 128 bytes */
#define EMU_MAX_RID_WINDOW 86400  /* seconds */

/* ---- configuration (flags) ---- */
typedef struct emu_config {
  const char *host;
  unsigned port;
  const char *appkey;
  const char *secret;
  long rate_limit;           /* initial; run-time value lives in emu_state */
  double penalty;            /* seconds */
  const char *webhook;       /* NULL = none */
  int numbers_as_strings;
  size_t max_body;
  size_t inbox_max;          /* messages kept per accid (oldest dropped) */
  double request_id_window;  /* seconds a processed call's RequestId is remembered; 0 = off */
} emu_config;

/* ---- string-keyed hash map ---- */
typedef struct emu_map_node {
  char *key;
  void *val;
  unsigned long hash;
  struct emu_map_node *next;
} emu_map_node;

typedef struct emu_map {
  emu_map_node **b;
  size_t nb, count;
} emu_map;

void emu_map_init(emu_map *m);
/* frees nodes; calls free_val on each value when not NULL */
void emu_map_clear(emu_map *m, void (*free_val)(void *));
void *emu_map_get(const emu_map *m, const char *key);
int emu_map_has(const emu_map *m, const char *key);
/* inserts a new key (copied); -1 on out of memory. Does not check for duplicates. */
int emu_map_put(emu_map *m, const char *key, void *val);
/* removes a key (its value is the caller's); 0 removed, -1 absent */
int emu_map_del(emu_map *m, const char *key);

/* RequestIds of processed calls, oldest first (a FIFO beside a set) */
typedef struct emu_rid {
  double t;                  /* monotonic seconds when it was processed */
  struct emu_rid *next;
  char id[];
} emu_rid;

/* ---- delivered messages ---- */
typedef struct emu_msg {
  int refs;                  /* shared by the inboxes it was delivered to */
  long long roomid;
  char *msgid;
  char *from;
  long long type;
  char *attach;
  char *ext;
  long long time_ms;
  int resend_flag;
  int has_subtype;
  long long subtype;
} emu_msg;

typedef struct emu_inbox {   /* ring of message pointers */
  emu_msg **items;
  size_t start, len, cap;
  unsigned long dropped;
} emu_inbox;

typedef struct emu_count {   /* code -> count, small linear table */
  int code;
  unsigned long n;
} emu_count;
#define EMU_MAX_COUNTS 64

/* ---- faults ---- */
typedef enum emu_fault_action {
  EMU_F_DELAY, EMU_F_STATUS, EMU_F_CLOSE, EMU_F_TRUNCATE, EMU_F_GARBAGE, EMU_F_CODE,
  EMU_F_FAIL_MSG
} emu_fault_action;

typedef struct emu_fault {
  emu_fault_action action;
  long count;                /* calls left */
  char *match_accid;         /* NULL = any */
  char *match_msgid;         /* NULL = any */
  long ms;                   /* delay */
  int before;                /* delay before processing */
  int status;                /* status */
  int after_deliver;         /* close */
  long long code;            /* code */
  char *desc;                /* code */
  char *reason;              /* fail_msg */
  char *body;                /* status / garbage: optional body */
  struct emu_fault *next;
} emu_fault;

void emu_fault_free(emu_fault *f);
/* a copy of one entry for one call (next = NULL); NULL on out of memory */
emu_fault *emu_fault_dup(const emu_fault *f);
/* parses {"faults":[...]}; returns a list, or NULL with err */
emu_fault *emu_faults_parse(const char *json, size_t len, char *err, size_t errlen);
const char *emu_fault_action_name(emu_fault_action a);
cJSON *emu_fault_to_json(const emu_fault *f);

/* ---- webhook ---- */
typedef struct emu_wh_item {
  char *body;
  struct emu_wh_item *next;
} emu_wh_item;

typedef struct emu_webhook {
  const char *url, *appkey, *secret;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, stop, busy;
  emu_wh_item *head, *tail;
  size_t queued;
  unsigned long sent, failed, dropped;
} emu_webhook;

int emu_webhook_start(emu_webhook *w, const char *url, const char *appkey,
                      const char *secret);
/* takes ownership of body (malloc'ed JSON text) */
void emu_webhook_push(emu_webhook *w, char *body);
void emu_webhook_stop(emu_webhook *w);
cJSON *emu_webhook_stats(emu_webhook *w);

/* ---- one call seen by the rate limiter, for GET /_emulator/ratelog ---- */
#define EMU_RATELOG_MAX 4096
typedef struct emu_ratelog_entry {
  double t;          /* monotonic seconds */
  int code;          /* 200 let through, 416 refused */
  char from[33];     /* the call's fromAccid (cut at 32 bytes) */
} emu_ratelog_entry;

/* ---- shared state (guarded by emu_server.mu) ---- */
typedef struct emu_state {
  /* run-time configuration */
  int numbers_as_strings;
  long rate_limit;
  double penalty;
  /* delivery */
  emu_map delivered;         /* "roomid\x1fmsgId" -> NULL */
  emu_map inboxes;           /* lowercased accid -> emu_inbox* */
  /* rate limit: times (monotonic s) of the calls accepted in the last second */
  double *rl_times;
  size_t rl_cap, rl_head, rl_len;
  double penalty_until;
  /* every call that reached the rate check in the last second (monotonic s),
   * for max_calls_per_second: the most seen in any one-second sliding window */
  double *seen;
  size_t seen_cap, seen_head, seen_len;
  unsigned long max_cps;
  /* the last EMU_RATELOG_MAX calls at the rate check: when, from whom, 416 or not */
  struct emu_ratelog_entry *ratelog;
  size_t rlog_head, rlog_len;
  /* stats */
  unsigned long requests, closed;
  emu_count codes[EMU_MAX_COUNTS];
  emu_count http[EMU_MAX_COUNTS];
  size_t ncodes, nhttp;
  /* recorded API requests and sink requests: rings of cJSON objects */
  cJSON *records[EMU_MAX_RECORDS];
  size_t rec_head, rec_len;
  cJSON *sink[EMU_MAX_SINK];
  size_t sink_head, sink_len;
  /* faults, FIFO */
  emu_fault *faults, *faults_tail;
  /* RequestId de-duplication */
  double rid_window;         /* seconds; 0 = off */
  emu_map rids;              /* RequestId -> NULL */
  emu_rid *rid_head, *rid_tail;
} emu_state;

typedef struct emu_server {
  emu_config cfg;
  emu_state st;
  pthread_mutex_t mu;
  atomic_ulong connections;  /* TCP connections accepted */
  atomic_int stopping;
  emu_webhook wh;
  struct MHD_Daemon *daemon;
} emu_server;

/* state.c (callers hold s->mu unless said otherwise) */
void emu_state_init(emu_state *st, const emu_config *cfg);
void emu_state_free(emu_state *st);
void emu_state_reset(emu_state *st, const emu_config *cfg);
void emu_count_add(emu_count *t, size_t *n, int code);
cJSON *emu_count_json(const emu_count *t, size_t n);
void emu_ring_push(cJSON **ring, size_t cap, size_t *head, size_t *len, cJSON *item);
cJSON *emu_ring_json(cJSON *const *ring, size_t cap, size_t head, size_t len);
/* 0 allowed, 1 over the limit (penalty starts), 2 within the penalty; from
 * (the call's fromAccid, may be NULL) goes into the rate log */
int emu_rate_check(emu_state *st, double now, const char *from, size_t from_len);
cJSON *emu_ratelog_json(emu_server *s); /* takes the lock itself */
int emu_rate_set(emu_state *st, long limit);
/* 1 when a call with this RequestId was processed within the window */
int emu_rid_seen(emu_state *st, const char *rid, double now);
/* remembers the RequestId of a processed call (no-op when the window is 0) */
void emu_rid_remember(emu_state *st, const char *rid, double now);
void emu_rid_clear(emu_state *st);
emu_inbox *emu_inbox_get(emu_state *st, const char *accid, int create);
int emu_inbox_push(emu_inbox *ib, emu_msg *m, size_t max);
void emu_msg_unref(emu_msg *m);
cJSON *emu_msg_json(const emu_msg *m);
cJSON *emu_stats_json(emu_server *s); /* takes the lock itself */

/* api.c */
struct MHD_Connection;
typedef struct emu_req {
  cms_buf body;
  int too_large;
  int early_done;
  size_t discarded;
} emu_req;
/* handles one finished API request; returns the MHD result */
int emu_api_handle(emu_server *s, struct MHD_Connection *c, const char *method,
                   const char *url, emu_req *r);

/* server.c */
int emu_server_start(emu_server *s);
void emu_server_stop(emu_server *s);
int emu_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
              const char *body, size_t len);
int emu_reply_json(struct MHD_Connection *c, unsigned status, cJSON *obj); /* frees obj */
int emu_reply_error(struct MHD_Connection *c, unsigned status, const char *msg);
cJSON *emu_headers_json(struct MHD_Connection *c); /* request headers, names as sent */
/* sleeps ms milliseconds in slices, returning early when the server stops */
void emu_sleep_ms(emu_server *s, long ms);
double emu_mono_now(void);
long long emu_wall_ms(void);

/* form.c */
typedef struct emu_kv {
  char *key, *val;
  size_t klen, vlen;
} emu_kv;
typedef struct emu_form {
  emu_kv *kv;
  size_t n, cap;
} emu_form;
/* 0 ok; -1 malformed (err says where); -2 out of memory */
int emu_form_parse(const char *body, size_t len, emu_form *f, char *err, size_t errlen);
const emu_kv *emu_form_get(const emu_form *f, const char *key);
void emu_form_free(emu_form *f);

/* jsonutil.c */
/* a cJSON string of s[0..n), invalid UTF-8 bytes and NULs replaced by U+FFFD */
cJSON *emu_json_str(const char *s, size_t n);
int emu_json_add_str(cJSON *obj, const char *key, const char *s, size_t n);
int emu_json_is_int(const cJSON *v, long long *out);
/* an integer written with all its digits (cJSON numbers are doubles: 2^53 + 1
 * would come out as 9.00719925474099e+15) */
cJSON *emu_json_int(long long v);
char *emu_lower_dup(const char *s, size_t n);
char *emu_strndup(const char *s, size_t n);
int emu_strcaseeq(const char *a, const char *b);

#endif
