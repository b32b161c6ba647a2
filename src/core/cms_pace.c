#include "cms_pace.h"
#include <errno.h>
#include <time.h>

long long cms_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cms_sleep_ms(long ms) {
  struct timespec ts;
  if (ms <= 0) return;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

void cms_pace_init(cms_pace *p, double rate, double penalty_s) {
  cms_pace_init_at(p, rate, penalty_s, cms_now_ms());
}

void cms_pace_init_at(cms_pace *p, double rate, double penalty_s, long long now) {
  p->rate = rate > 0 ? rate : 0;
  p->burst = p->rate / 20 < 1 ? 1 : (double)(long)(p->rate / 20);
  /* a one-second window sees at most burst + refill (rounded down) calls */
  p->refill = p->rate - p->burst + 0.99 - p->rate / 100;
  if (p->refill < p->rate / 100) p->refill = p->rate / 100;
  p->tokens = p->burst;
  p->last_ms = now;
  p->penalty_ms = (long long)(penalty_s * 1000);
  p->penalty_until = 0;
}

long cms_pace_take(cms_pace *p, long long now) {
  if (now < p->penalty_until) return (long)(p->penalty_until - now);
  if (p->rate <= 0) return 0;
  if (now > p->last_ms) {
    p->tokens += (double)(now - p->last_ms) * p->refill / 1000.0;
    if (p->tokens > p->burst) p->tokens = p->burst;
    p->last_ms = now;
  }
  if (p->tokens >= 1) {
    p->tokens -= 1;
    return 0;
  }
  {
    long wait = (long)((1 - p->tokens) * 1000.0 / p->refill) + 1;
    return wait < 1 ? 1 : wait;
  }
}

void cms_pace_penalty(cms_pace *p, long long now) {
  p->penalty_until = now + p->penalty_ms;
  p->tokens = 0;
  p->last_ms = now + p->penalty_ms;
}

/* --- the local budget behind cms_rate --- */

static long local_take(cms_rate *r, long long now_ms) {
  return cms_pace_take(&((cms_rate_local *)r)->pace, now_ms);
}

static void local_penalty(cms_rate *r, long long now_ms) {
  cms_pace_penalty(&((cms_rate_local *)r)->pace, now_ms);
}

static const char *local_state(const cms_rate *r) {
  (void)r;
  return "local";
}

static void local_close(cms_rate *r) { (void)r; }

static const cms_rate_ops local_ops = {local_take, local_penalty, local_state, local_close};

cms_rate *cms_rate_local_init(cms_rate_local *r, double rate, double penalty_s, long long now) {
  r->base.ops = &local_ops;
  r->base.fallbacks = 0;
  cms_pace_init_at(&r->pace, rate, penalty_s, now);
  return &r->base;
}
