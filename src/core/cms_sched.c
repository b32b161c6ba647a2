/* cms_sched.c -- see cms_sched.h.  No I/O, no clock, no Lua. */
#include "cms_sched.h"
#include <string.h>

static size_t calls_bytes(int n) {
  size_t b = sizeof(cms_sched_call) * ((size_t)n + 1);
  return (b + sizeof(long long) - 1) / sizeof(long long) * sizeof(long long);
}

size_t cms_sched_size(int n) {
  size_t head = (sizeof(cms_sched) + sizeof(long long) - 1) / sizeof(long long) * sizeof(long long);
  if (n < 0) n = 0;
  return head + calls_bytes(n) + sizeof(int) * ((size_t)n + 1);
}

void cms_sched_init(cms_sched *s, int n, const cms_sched_opts *o, cms_rate *rate,
                    cms_sched_rand rand, void *rand_ud) {
  size_t head = (sizeof(cms_sched) + sizeof(long long) - 1) / sizeof(long long) * sizeof(long long);
  int i;
  if (n < 0) n = 0;
  memset(s, 0, cms_sched_size(n));
  s->o = *o;
  if (s->o.concurrency < 1) s->o.concurrency = 1;
  if (s->o.n_endpoints < 1) s->o.n_endpoints = 1;
  if (s->o.retries < 0) s->o.retries = 0;
  s->rate = rate;
  s->rand = rand;
  s->rand_ud = rand_ud;
  s->n = n;
  s->cursor = 1;
  s->expire_cursor = 1;
  s->calls = (cms_sched_call *)((char *)s + head);
  s->last = (int *)((char *)s->calls + calls_bytes(n));
  for (i = 1; i <= n; i++) s->calls[i].state = CMS_CALL_PENDING;
}

void cms_sched_group(cms_sched *s, int i, int group, int n_msgs) {
  if (i < 1 || i > s->n) return;
  s->calls[i].nmsgs = n_msgs;
  if (group >= 1 && group <= s->n) {
    s->calls[i].prev = s->last[group];
    s->last[group] = i;
  }
}

static void fly(cms_sched *s, int i) {
  cms_sched_call *c = &s->calls[i];
  c->state = CMS_CALL_FLIGHT;
  c->fl_prev = 0;
  c->fl_next = s->flight;
  if (s->flight) s->calls[s->flight].fl_prev = i;
  s->flight = i;
  s->inflight++;
}

static void land(cms_sched *s, cms_sched_call *c) {
  if (c->fl_prev) s->calls[c->fl_prev].fl_next = c->fl_next;
  else s->flight = c->fl_next;
  if (c->fl_next) s->calls[c->fl_next].fl_prev = c->fl_prev;
  c->fl_prev = c->fl_next = 0;
  c->state = CMS_CALL_PENDING;
  s->inflight--;
}

static void settle(cms_sched *s, cms_sched_call *c) {
  if (c->queued) {
    c->queued = 0;
    s->waiting--;
  }
  if (c->state == CMS_CALL_FLIGHT) land(s, c);
  c->state = CMS_CALL_DONE;
  s->done++;
}

void cms_sched_settle(cms_sched *s, int i) {
  if (i < 1 || i > s->n || s->calls[i].state != CMS_CALL_PENDING) return;
  settle(s, &s->calls[i]);
}

long cms_sched_backoff(cms_sched *s, int attempt) {
  long base = s->o.backoff_ms;
  int k;
  if (base <= 0) return 0;
  for (k = 1; k < attempt && base < CMS_SCHED_BACKOFF_CAP_MS; k++) base *= 2;
  if (base > CMS_SCHED_BACKOFF_CAP_MS) base = CMS_SCHED_BACKOFF_CAP_MS;
  return base / 2 + (long)(s->rand ? s->rand(s->rand_ud, (unsigned long)(base / 2 + 1)) : 0);
}

/* the call goes back to the queue, to start again no sooner than now + delay */
static void requeue(cms_sched *s, cms_sched_call *c, long long now, long delay) {
  c->state = CMS_CALL_PENDING;
  c->not_before = now + delay;
  c->queued = 1;
  s->waiting++;
}

static void keep_min(long long *wait, long long t) {
  if (*wait < 0 || t < *wait) *wait = t;
}

/* the next call that may start now (0: none; *wait then says in how many ms
 * one may, -1 if only an answer can free one).  A call back in the queue may
 * go once its backoff is over; a call not started yet once the previous call
 * to its recipients is settled and that call's messages are spaced out at
 * receiver_rate, counted from its last attempt */
static int pick(cms_sched *s, long long now, long long *wait) {
  int j, end;
  while (s->cursor <= s->n &&
         (s->calls[s->cursor].started || s->calls[s->cursor].state == CMS_CALL_DONE))
    s->cursor++;
  end = s->cursor + CMS_SCHED_LOOKAHEAD < s->n ? s->cursor + CMS_SCHED_LOOKAHEAD : s->n;
  for (j = s->waiting > 0 ? 1 : s->cursor; j <= end; j++) {
    cms_sched_call *c = &s->calls[j];
    long long t = c->not_before;
    if (c->state != CMS_CALL_PENDING || (!c->queued && c->started)) continue;
    if (!c->queued && c->prev && s->o.receiver_rate > 0) {
      cms_sched_call *p = &s->calls[c->prev];
      long long pt;
      if (p->state != CMS_CALL_DONE) continue;
      pt = p->last_start + (long long)(p->nmsgs * 1000.0 / s->o.receiver_rate);
      if (pt > t) t = pt;
    }
    if (t <= now) return j;
    keep_min(wait, t - now);
  }
  return 0;
}

void cms_sched_next(cms_sched *s, long long now, cms_sched_step *st) {
  long long wait = -1;
  memset(st, 0, sizeof *st);
  if (s->o.deadline_ms && now >= s->o.deadline_ms) {
    while (s->expire_cursor <= s->n && s->calls[s->expire_cursor].state == CMS_CALL_DONE)
      s->expire_cursor++;
    if (s->expire_cursor <= s->n) {
      cms_sched_call *c = &s->calls[s->expire_cursor];
      st->what = CMS_SCHED_EXPIRE;
      st->call = s->expire_cursor;
      st->in_flight = c->state == CMS_CALL_FLIGHT;
      st->sent = c->sent || st->in_flight; /* in flight: it may have gone out */
      c->sent = st->sent;
      settle(s, c);
      return;
    }
  }
  if (s->done >= s->n) {
    st->what = CMS_SCHED_IDLE;
    return;
  }
  if (s->inflight < s->o.concurrency) {
    int i = pick(s, now, &wait);
    if (i) {
      long w = s->rate ? s->rate->ops->take(s->rate, now) : 0;
      if (w <= 0) {
        cms_sched_call *c = &s->calls[i];
        if (c->queued) {
          c->queued = 0;
          s->waiting--;
        }
        c->started = 1;
        c->last_start = now;
        fly(s, i);
        st->what = CMS_SCHED_START;
        st->call = i;
        st->endpoint = c->ep;
        st->resend = c->resend;
        st->attempt = c->attempts + c->repeats;
        st->new_rid = c->new_rid;
        c->new_rid = 0;
        return;
      }
      keep_min(&wait, w);
    }
  }
  if (s->inflight > 0) {
    /* an attempt's end is due by its start plus the attempt timeout */
    int j;
    long long due = -1;
    for (j = s->flight; j && s->o.attempt_ms > 0; j = s->calls[j].fl_next) {
      cms_sched_call *c = &s->calls[j];
      if (due < 0 || c->last_start + s->o.attempt_ms < due) due = c->last_start + s->o.attempt_ms;
    }
    /* an attempt past its due time is the driver's to end: poll gently */
    keep_min(&wait, due < 0 ? 1000 : due - now < 10 ? 10 : due - now);
  }
  if (s->o.deadline_ms) keep_min(&wait, s->o.deadline_ms - now);
  if (wait < 0) wait = 50; /* nothing timed: cannot happen while calls are pending */
  st->what = CMS_SCHED_WAIT;
  st->wait_ms = wait < 1 ? 1 : wait > 3600000 ? 3600000 : (long)wait;
}

int cms_sched_done(cms_sched *s, int i, cms_sched_outcome out, long long now) {
  cms_sched_call *c;
  if (i < 1 || i > s->n) return -1;
  c = &s->calls[i];
  if (c->state != CMS_CALL_FLIGHT) return -1;
  land(s, c);
  if (out != CMS_SCHED_CONNECT) c->sent = 1;
  switch (out) {
    case CMS_SCHED_CONNECT:
    case CMS_SCHED_GATEWAY:
      /* never reached the service, or a gateway said 502: the next endpoint */
      if (c->attempts < s->o.retries) {
        c->attempts++;
        c->ep = (c->ep + 1) % s->o.n_endpoints;
        if (s->o.resend_ambiguous) c->resend = 1;
        requeue(s, c, now,
                s->o.n_endpoints > 1 && out == CMS_SCHED_CONNECT ? 0
                                                                 : cms_sched_backoff(s, c->attempts));
        return 0;
      }
      break;
    case CMS_SCHED_RATE:
      if (s->rate) s->rate->ops->penalty(s->rate, now);
      c->waits++;
      if (s->o.deadline_ms || c->waits <= CMS_SCHED_MAX_416_WAITS) {
        requeue(s, c, now, 0); /* the penalty holds it back */
        return 0;
      }
      break;
    case CMS_SCHED_AMBIGUOUS:
      if (s->o.resend_ambiguous && c->attempts < s->o.retries) {
        c->attempts++;
        c->resend = 1;
        requeue(s, c, now, cms_sched_backoff(s, c->attempts));
        return 0;
      }
      break;
    case CMS_SCHED_REPEATED:
      /* a first attempt cannot repeat a RequestId of this call: only a later
       * one tells that an earlier was processed */
      if ((c->attempts > 0 || c->repeats > 0) && c->repeats < CMS_SCHED_MAX_REPEATS) {
        c->repeats++;
        c->resend = 1;
        c->new_rid = 1;
        requeue(s, c, now, 0);
        return 0;
      }
      break;
    case CMS_SCHED_FINAL:
      break;
  }
  settle(s, c);
  return 1;
}
