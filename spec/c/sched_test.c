/* sched_test.c -- unit tests of the scheduler (src/core/cms_sched.c) on a fake
 * clock: no server, no waits.  Resend decisions, failover, the 416 penalty and
 * the MAX_416_WAITS rule, receiver pacing, the deadline, backoff bounds,
 * concurrency, pacing through the local budget.  Built and run by `make test`
 * (plain and sanitized). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cms_pace.h"
#include "cms_sched.h"

static int passed, failed;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (cond) passed++;                                   \
    else {                                                \
      failed++;                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fputc('\n', stderr);                                \
    }                                                     \
  } while (0)

/* --- random sources --- */
static unsigned long rand_low(void *ud, unsigned long below) { (void)ud, (void)below; return 0; }
static unsigned long rand_high(void *ud, unsigned long below) { (void)ud; return below - 1; }
static unsigned long long rng = 88172645463325252ULL;
static unsigned long rand_xor(void *ud, unsigned long below) {
  (void)ud;
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (unsigned long)(rng % below);
}

/* --- a fake budget: counts what it is asked, blocks until `until` --- */
typedef struct fake_rate {
  cms_rate base;
  int takes, penalties;
  long long until, penalty_ms;
} fake_rate;
static long fake_take(cms_rate *r, long long now) {
  fake_rate *f = (fake_rate *)r;
  if (now < f->until) return (long)(f->until - now);
  f->takes++;
  return 0;
}
static void fake_penalty(cms_rate *r, long long now) {
  fake_rate *f = (fake_rate *)r;
  f->penalties++;
  f->until = now + f->penalty_ms;
}
static const char *fake_state(const cms_rate *r) { (void)r; return "fake"; }
static void fake_close(cms_rate *r) { (void)r; }
static const cms_rate_ops fake_ops = {fake_take, fake_penalty, fake_state, fake_close};
static void fake_init(fake_rate *f, long long penalty_ms) {
  memset(f, 0, sizeof *f);
  f->base.ops = &fake_ops;
  f->penalty_ms = penalty_ms;
}

static cms_sched *new_sched(int n, const cms_sched_opts *o, cms_rate *rate, cms_sched_rand rnd) {
  cms_sched *s = malloc(cms_sched_size(n));
  if (!s) abort(); /* a test binary may */
  cms_sched_init(s, n, o, rate, rnd, NULL);
  return s;
}

static cms_sched_opts base_opts(void) {
  cms_sched_opts o;
  memset(&o, 0, sizeof o);
  o.concurrency = 8;
  o.retries = 3;
  o.n_endpoints = 1;
  return o;
}

/* asks until START; returns the time it started (now advanced by the waits) */
static long long start_next(cms_sched *s, long long *now, cms_sched_step *st) {
  int guard = 0;
  for (;;) {
    cms_sched_next(s, *now, st);
    if (st->what != CMS_SCHED_WAIT || ++guard > 100000) return *now;
    *now += st->wait_ms;
  }
}

static void test_resend_decisions(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  long long now = 1000;
  cms_sched *s;
  o.resend_ambiguous = 1;
  o.backoff_ms = 100;
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 1 && st.attempt == 0 && !st.resend,
        "first attempt: what %d call %d attempt %d resend %d", st.what, st.call, st.attempt,
        st.resend);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now) == 0, "an ambiguous failure goes again");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 50, "backoff first: wait %ld (want 50)",
        st.wait_ms);
  now += 50;
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.resend == 1 && st.attempt == 1 && st.endpoint == 0,
        "the resend is marked resendFlag = 1 (resend %d attempt %d)", st.resend, st.attempt);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now) == 0, "second ambiguous: again");
  start_next(s, &now, &st);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now) == 0, "third ambiguous: again");
  start_next(s, &now, &st);
  CHECK(st.attempt == 3, "attempt %d", st.attempt);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now) == 1,
        "retries (3) used up: the ambiguous failure is final");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_IDLE, "every call settled: IDLE (%d)", st.what);
  free(s);

  /* send_all mode: an ambiguous failure is never sent again */
  o.resend_ambiguous = 0;
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now) == 1, "send_all: ambiguous is final");
  free(s);

  /* a definite rejection is final at once, whatever the retries */
  o.resend_ambiguous = 1;
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_FINAL, now) == 1, "definite rejection: final");
  CHECK(cms_sched_done(s, 1, CMS_SCHED_FINAL, now) == -1, "a settled call cannot end twice");
  free(s);
}

static void test_failover(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  long long now = 0;
  cms_sched *s;
  o.n_endpoints = 3;
  o.retries = 2;
  o.backoff_ms = 400;
  o.resend_ambiguous = 1;
  s = new_sched(1, &o, NULL, rand_high);
  cms_sched_next(s, now, &st);
  CHECK(st.endpoint == 0, "first endpoint");
  CHECK(cms_sched_done(s, 1, CMS_SCHED_CONNECT, now) == 0, "connect failure: again");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.endpoint == 1,
        "a connect failure moves to the next endpoint at once (what %d ep %d)", st.what,
        st.endpoint);
  CHECK(st.resend == 1, "in a fan-out every further attempt is marked as a resend");
  CHECK(cms_sched_done(s, 1, CMS_SCHED_GATEWAY, now) == 0, "502: again");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 800,
        "a 502 waits the backoff (attempt 2: 800 ms at most), wait %ld", st.wait_ms);
  now += st.wait_ms;
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.endpoint == 2, "502: the next endpoint (%d)", st.endpoint);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_CONNECT, now) == 1,
        "failover counts against retries: the third connect failure is final");
  free(s);

  /* one endpoint: the same one, after the backoff */
  o.n_endpoints = 1;
  o.resend_ambiguous = 0;
  o.backoff_ms = 0;
  s = new_sched(1, &o, NULL, rand_high);
  cms_sched_next(s, now, &st);
  cms_sched_done(s, 1, CMS_SCHED_CONNECT, now);
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.endpoint == 0 && !st.resend,
        "send_all: the same endpoint, not marked as a resend (ep %d resend %d)", st.endpoint,
        st.resend);
  free(s);
}

static void test_penalty(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  fake_rate fr;
  long long now = 0;
  cms_sched *s;
  int k, r = 0;
  fake_init(&fr, 10000);
  o.retries = 0; /* a 416 resend does not use up retries */
  s = new_sched(2, &o, &fr.base, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 1, "call 1 starts");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 2, "call 2 starts");
  now = 100;
  cms_sched_done(s, 2, CMS_SCHED_FINAL, now);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_RATE, now) == 0, "416: sent again");
  CHECK(fr.penalties == 1, "the budget was told of the 416");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 10000,
        "every call waits the penalty, counted from the answer (wait %ld)", st.wait_ms);
  now += 9999;
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 1, "still 1 ms of penalty (%ld)", st.wait_ms);
  now += 1;
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 1 && st.attempt == 0 && !st.resend,
        "after the penalty the call goes again, unmarked, retries untouched (attempt %d)",
        st.attempt);
  cms_sched_done(s, 1, CMS_SCHED_FINAL, now);
  free(s);

  /* MAX_416_WAITS: without a deadline, the 21st 416 settles the call */
  fake_init(&fr, 10);
  s = new_sched(1, &o, &fr.base, rand_low);
  for (k = 0; k <= CMS_SCHED_MAX_416_WAITS; k++) {
    start_next(s, &now, &st);
    r = cms_sched_done(s, 1, CMS_SCHED_RATE, now);
    if (r != 0) break;
  }
  CHECK(k == CMS_SCHED_MAX_416_WAITS && r == 1, "416 #%d settled (%d); want #%d", k + 1, r,
        CMS_SCHED_MAX_416_WAITS + 1);
  free(s);

  /* with a deadline, 416s are waited out until the deadline */
  o.deadline_ms = now + 1000000;
  s = new_sched(1, &o, &fr.base, rand_low);
  for (k = 0; k < 3 * CMS_SCHED_MAX_416_WAITS; k++) {
    start_next(s, &now, &st);
    if (cms_sched_done(s, 1, CMS_SCHED_RATE, now) != 0) break;
  }
  CHECK(k == 3 * CMS_SCHED_MAX_416_WAITS, "with a deadline the 416 waits do not stop (%d)", k);
  free(s);
}

/* 2 recipient groups, 3 batches each, batch-major like chunk: calls 1..6 are
 * (g1 b1) (g2 b1) (g1 b2) (g2 b2) (g1 b3) (g2 b3), 10, 10, 10, 10, 5, 5 messages */
static void test_receiver_pacing(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  long long now = 0, started[7] = {0};
  cms_sched *s;
  int i, order[7], n = 0, inflight = 0;
  o.receiver_rate = 20;
  s = new_sched(6, &o, NULL, rand_low);
  for (i = 1; i <= 6; i++) cms_sched_group(s, i, (i - 1) % 2 + 1, i <= 4 ? 10 : 5);
  /* every attempt takes 100 ms */
  while (n < 6) {
    cms_sched_next(s, now, &st);
    if (st.what == CMS_SCHED_START) {
      started[st.call] = now;
      order[++n] = st.call;
      inflight++;
      continue;
    }
    CHECK(st.what == CMS_SCHED_WAIT, "what %d", st.what);
    if (st.what != CMS_SCHED_WAIT) break;
    now += st.wait_ms < 100 ? st.wait_ms : 100;
    for (i = 1; i <= 6; i++)
      if (s->calls[i].state == CMS_CALL_FLIGHT && now - started[i] >= 100) {
        cms_sched_done(s, i, CMS_SCHED_FINAL, now);
        inflight--;
      }
  }
  CHECK(started[1] == 0 && started[2] == 0, "the first call of each group starts at once");
  CHECK(started[3] == 500 && started[4] == 500,
        "a group's next call waits 10 messages / 20 per s after its previous call began "
        "(%lld, %lld)", started[3], started[4]);
  CHECK(started[5] == 1000 && started[6] == 1000, "and the third (%lld, %lld)", started[5],
        started[6]);
  free(s);

  /* the next call of a group waits for the previous one to settle, resends included */
  s = new_sched(2, &o, NULL, rand_low);
  cms_sched_group(s, 1, 1, 1);
  cms_sched_group(s, 2, 1, 1);
  now = 0;
  cms_sched_next(s, now, &st);
  CHECK(st.call == 1, "call 1 first");
  cms_sched_next(s, 5000, &st);
  CHECK(st.what == CMS_SCHED_WAIT, "call 2 waits while call 1 is in flight (%d)", st.what);
  o.resend_ambiguous = 1;
  s->o.resend_ambiguous = 1;
  cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, 5000);
  cms_sched_next(s, 5000, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 1 && st.resend,
        "the resend of call 1 goes before call 2 (call %d)", st.call);
  cms_sched_done(s, 1, CMS_SCHED_FINAL, 5100);
  cms_sched_next(s, 5100, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 2, "then call 2 (%d)", st.call);
  free(s);

  /* per_receiver_rate 0: no spacing, no order between a group's calls */
  o = base_opts();
  s = new_sched(3, &o, NULL, rand_low);
  for (i = 1; i <= 3; i++) cms_sched_group(s, i, 1, 10);
  for (i = 1; i <= 3; i++) {
    cms_sched_next(s, 0, &st);
    CHECK(st.what == CMS_SCHED_START && st.call == i, "off: call %d starts at once", i);
  }
  free(s);
  (void)order;
  (void)inflight;
}

static void test_deadline(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  cms_sched *s;
  int expired = 0, flying = 0, sent = 0, i;
  o.concurrency = 2;
  o.deadline_ms = 500;
  o.attempt_ms = 5000;
  s = new_sched(300, &o, NULL, rand_low);
  cms_sched_next(s, 0, &st);
  cms_sched_next(s, 0, &st);
  cms_sched_done(s, 2, CMS_SCHED_FINAL, 10); /* call 2 done before the deadline */
  cms_sched_next(s, 10, &st);                /* call 3 goes */
  CHECK(st.what == CMS_SCHED_START && st.call == 3, "call 3 (%d)", st.call);
  cms_sched_next(s, 10, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 490,
        "two in flight: wait for the deadline, the nearest event (%ld)", st.wait_ms);
  for (i = 0; i < 1000; i++) {
    cms_sched_next(s, 500, &st);
    if (st.what != CMS_SCHED_EXPIRE) break;
    expired++;
    flying += st.in_flight;
    sent += st.sent;
    if (st.call == 1 || st.call == 3) CHECK(st.in_flight && st.sent, "call %d was in flight", st.call);
    else CHECK(!st.in_flight && !st.sent, "call %d never went out", st.call);
  }
  CHECK(expired == 299 && flying == 2 && sent == 2,
        "every unsettled call expires once: %d expired, %d in flight, %d sent", expired, flying,
        sent);
  CHECK(st.what == CMS_SCHED_IDLE, "then IDLE (%d)", st.what);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_FINAL, 600) == -1, "a late answer is ignored");
  free(s);

  /* a call that was sent before and waits for a resend expires as sent */
  o = base_opts();
  o.resend_ambiguous = 1;
  o.backoff_ms = 10000;
  o.deadline_ms = 1000;
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, 0, &st);
  cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, 100);
  cms_sched_next(s, 100, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 900, "the deadline comes before the backoff (%ld)",
        st.wait_ms);
  cms_sched_next(s, 1000, &st);
  CHECK(st.what == CMS_SCHED_EXPIRE && !st.in_flight && st.sent,
        "queued after an ambiguous failure: not in flight, but sent");
  free(s);
}

static void test_backoff_bounds(void) {
  cms_sched_opts o = base_opts();
  cms_sched *s;
  int k, j;
  o.backoff_ms = 100;
  s = new_sched(1, &o, NULL, rand_xor);
  for (k = 1; k <= 10; k++) {
    long base = 100L << (k - 1), lo = 1L << 30, hi = 0;
    if (base > CMS_SCHED_BACKOFF_CAP_MS) base = CMS_SCHED_BACKOFF_CAP_MS;
    for (j = 0; j < 2000; j++) {
      long d = cms_sched_backoff(s, k);
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    CHECK(lo >= base / 2 && hi <= base, "attempt %d: [%ld, %ld] outside [%ld, %ld]", k, lo, hi,
          base / 2, base);
    CHECK(hi - lo >= base / 4, "attempt %d: jitter spans only %ld ms", k, hi - lo);
  }
  s->rand = rand_low;
  CHECK(cms_sched_backoff(s, 1) == 50, "lowest: half the base");
  s->rand = rand_high;
  CHECK(cms_sched_backoff(s, 1) == 100 && cms_sched_backoff(s, 20) == 2000,
        "highest: the base, capped at 2 s");
  s->o.backoff_ms = 0;
  CHECK(cms_sched_backoff(s, 3) == 0, "no backoff");
  free(s);
}

static void test_concurrency_and_pacing(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  cms_rate_local lr;
  cms_rate *rate = cms_rate_local_init(&lr, 20, 10, 0);
  long long now = 0, t[200];
  cms_sched *s;
  int n = 0, i, j, worst = 0, maxfly = 0;
  o.concurrency = 3;
  s = new_sched(200, &o, rate, rand_low);
  CHECK(strcmp(rate->ops->state(rate), "local") == 0 && rate->fallbacks == 0, "local budget");
  while (n < 200) {
    cms_sched_next(s, now, &st);
    if (st.what == CMS_SCHED_START) {
      t[n++] = now;
      if (s->inflight > maxfly) maxfly = s->inflight;
      continue;
    }
    if (st.what != CMS_SCHED_WAIT) break;
    now += st.wait_ms;
    /* answers come 30 ms after they started */
    for (i = 1; i <= 200; i++)
      if (s->calls[i].state == CMS_CALL_FLIGHT && now - s->calls[i].last_start >= 30)
        cms_sched_done(s, i, CMS_SCHED_FINAL, now);
  }
  for (i = 0, j = 0; i < n; i++) {
    while (t[i] - t[j] >= 1000) j++;
    if (i - j + 1 > worst) worst = i - j + 1;
  }
  CHECK(n == 200, "every call started (%d)", n);
  CHECK(maxfly <= 3, "at most concurrency (3) in flight, saw %d", maxfly);
  CHECK(worst <= 20, "pacing at 20/s: %d calls in one second", worst);
  CHECK(t[n - 1] >= 9000 && t[n - 1] <= 11000, "200 calls at 20/s took %lld ms", t[n - 1]);
  free(s);
}

/* calls settled before they start (invalid entries) take no rate token */
static void test_settle_takes_no_token(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  fake_rate fr;
  cms_sched *s;
  int i, starts = 0;
  fake_init(&fr, 0);
  s = new_sched(1000, &o, &fr.base, rand_low);
  for (i = 1; i <= 1000; i++)
    if (i != 500) cms_sched_settle(s, i);
  for (i = 0; i < 10; i++) {
    cms_sched_next(s, 0, &st);
    if (st.what != CMS_SCHED_START) break;
    starts++;
    CHECK(st.call == 500, "only call 500 starts (%d)", st.call);
    cms_sched_done(s, st.call, CMS_SCHED_FINAL, 0);
  }
  CHECK(starts == 1 && st.what == CMS_SCHED_IDLE && fr.takes == 1,
        "999 settled calls took no token (%d takes, %d starts)", fr.takes, starts);
  free(s);
}

/* the plan's wait when every slot is taken: when the nearest attempt is due */
static void test_wait_for_answers(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  cms_sched *s;
  o.concurrency = 1;
  o.attempt_ms = 5000;
  s = new_sched(2, &o, NULL, rand_low);
  cms_sched_next(s, 100, &st);
  cms_sched_next(s, 1100, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 4000,
        "full: wait until the attempt in flight is due (%ld)", st.wait_ms);
  cms_sched_next(s, 9000, &st);
  CHECK(st.what == CMS_SCHED_WAIT && st.wait_ms == 10,
        "an attempt past its due time: poll every 10 ms, never spin (%ld)", st.wait_ms);
  cms_sched_done(s, 1, CMS_SCHED_FINAL, 1200);
  cms_sched_next(s, 1200, &st);
  CHECK(st.what == CMS_SCHED_START && st.call == 2, "an answer frees the slot");
  free(s);
}

/* 431: an attempt with this RequestId was processed already */
static void test_repeated(void) {
  cms_sched_opts o = base_opts();
  cms_sched_step st;
  long long now = 1000;
  cms_sched *s;
  int k;
  o.resend_ambiguous = 1;
  o.backoff_ms = 100;
  /* a first attempt answered 431 learns nothing: final */
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_REPEATED, now) == 1, "a first attempt's 431 is final");
  free(s);
  /* an ambiguous failure, its resend answered 431: at once again, a resend with a new RequestId */
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  CHECK(!st.new_rid, "the first attempt keeps the call's RequestId");
  cms_sched_done(s, 1, CMS_SCHED_AMBIGUOUS, now);
  start_next(s, &now, &st);
  CHECK(st.resend && !st.new_rid, "the resend keeps the RequestId (new_rid %d)", st.new_rid);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_REPEATED, now) == 0, "a resend's 431 goes again");
  cms_sched_next(s, now, &st);
  CHECK(st.what == CMS_SCHED_START && st.resend && st.new_rid,
        "at once, marked, a new RequestId (what %d resend %d new_rid %d)", st.what, st.resend,
        st.new_rid);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_FINAL, now) == 1, "then its answer settles it");
  free(s);
  /* bounded: after CMS_SCHED_MAX_REPEATS the 431 is the answer */
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  cms_sched_done(s, 1, CMS_SCHED_GATEWAY, now);
  for (k = 0; k < CMS_SCHED_MAX_REPEATS; k++) {
    start_next(s, &now, &st);
    CHECK(cms_sched_done(s, 1, CMS_SCHED_REPEATED, now) == 0, "431 number %d goes again", k + 1);
  }
  start_next(s, &now, &st);
  CHECK(cms_sched_done(s, 1, CMS_SCHED_REPEATED, now) == 1, "431s without end are final");
  free(s);
  /* send_all: a 431 after a 502 failover also goes again as a resend */
  o.resend_ambiguous = 0;
  s = new_sched(1, &o, NULL, rand_low);
  cms_sched_next(s, now, &st);
  cms_sched_done(s, 1, CMS_SCHED_GATEWAY, now);
  start_next(s, &now, &st);
  CHECK(!st.resend && !st.new_rid, "send_all's failover: the same body and RequestId");
  CHECK(cms_sched_done(s, 1, CMS_SCHED_REPEATED, now) == 0, "send_all: 431 goes again");
  start_next(s, &now, &st);
  CHECK(st.resend && st.new_rid, "send_all after 431: resend %d new_rid %d", st.resend, st.new_rid);
  free(s);
}

int main(void) {
  test_resend_decisions();
  test_repeated();
  test_failover();
  test_penalty();
  test_receiver_pacing();
  test_deadline();
  test_backoff_bounds();
  test_concurrency_and_pacing();
  test_settle_takes_no_token();
  test_wait_for_answers();
  printf("sched: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
