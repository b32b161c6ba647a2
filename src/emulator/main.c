/* main.c -- commsease-emulator: flags, start-up, signals.
 * Prints exactly one line on stdout ("listening on http://HOST:PORT/nimserver")
 * and runs until SIGTERM or SIGINT, then stops cleanly and exits 0. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

static void usage(FILE *f) {
  fputs(
      "usage: commsease-emulator [options]\n"
      "  --host H              address to bind (default 127.0.0.1)\n"
      "  --port N              port (default 0: pick a free one)\n"
      "  --appkey K            accepted AppKey (default demo-appkey)\n"
      "  --secret S            AppSecret for CheckSum (default demo-secret)\n"
      "  --rate-limit N        calls per second per appkey, 0 = off (default 100)\n"
      "  --penalty S           seconds blocked after going over (default 10; fractions ok)\n"
      "  --webhook URL         POST delivered route=1 messages there as events\n"
      "  --numbers-as-strings  answer time/roomId/type as numeric strings\n"
      "  --max-body BYTES      largest request body (default 1048576; larger: HTTP 413)\n"
      "  --inbox-max N         messages kept per accid, oldest dropped (default 100000)\n"
      "  --request-id-window S seconds a processed call's RequestId is remembered; a\n"
      "                        repeat gets code 431 (default 300; 0 = off)\n"
      "  --help                this text\n"
      "See docs/emulator.md for the endpoints and fault plans.\n",
      f);
}

static int parse_ul(const char *s, unsigned long long max, unsigned long long *out) {
  char *end;
  unsigned long long v;
  if (!s || !*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, emu_config *cfg) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long long u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 1;
    }
    if (strcmp(a, "--numbers-as-strings") == 0) {
      cfg->numbers_as_strings = 1;
      continue;
    }
    if (strcmp(a, "--host") && strcmp(a, "--port") && strcmp(a, "--appkey") &&
        strcmp(a, "--secret") && strcmp(a, "--rate-limit") && strcmp(a, "--penalty") &&
        strcmp(a, "--webhook") && strcmp(a, "--max-body") && strcmp(a, "--inbox-max") &&
        strcmp(a, "--request-id-window")) {
      fprintf(stderr, "commsease-emulator: unknown option %s (try --help)\n", a);
      return -1;
    }
    if (!v) {
      fprintf(stderr, "commsease-emulator: %s needs a value\n", a);
      return -1;
    }
    i++;
    if (strcmp(a, "--host") == 0) {
      if (!*v) { fprintf(stderr, "commsease-emulator: --host is empty\n"); return -1; }
      cfg->host = v;
    } else if (strcmp(a, "--port") == 0) {
      if (parse_ul(v, 65535, &u)) {
        fprintf(stderr, "commsease-emulator: --port must be 0 to 65535\n");
        return -1;
      }
      cfg->port = (unsigned)u;
    } else if (strcmp(a, "--appkey") == 0) {
      if (!*v || strlen(v) > 256) {
        fprintf(stderr, "commsease-emulator: --appkey must have 1 to 256 characters\n");
        return -1;
      }
      cfg->appkey = v;
    } else if (strcmp(a, "--secret") == 0) {
      if (!*v) { fprintf(stderr, "commsease-emulator: --secret is empty\n"); return -1; }
      cfg->secret = v;
    } else if (strcmp(a, "--rate-limit") == 0) {
      if (parse_ul(v, EMU_MAX_RATE_LIMIT, &u)) {
        fprintf(stderr, "commsease-emulator: --rate-limit must be 0 to %d\n",
                EMU_MAX_RATE_LIMIT);
        return -1;
      }
      cfg->rate_limit = (long)u;
    } else if (strcmp(a, "--penalty") == 0) {
      char *end;
      double d;
      errno = 0;
      d = strtod(v, &end);
      if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 86400) {
        fprintf(stderr, "commsease-emulator: --penalty must be 0 to 86400 seconds\n");
        return -1;
      }
      cfg->penalty = d;
    } else if (strcmp(a, "--request-id-window") == 0) {
      char *end;
      double d;
      errno = 0;
      d = strtod(v, &end);
      if (errno || end == v || *end || !isfinite(d) || d < 0 || d > EMU_MAX_RID_WINDOW) {
        fprintf(stderr, "commsease-emulator: --request-id-window must be 0 to %d seconds\n",
                EMU_MAX_RID_WINDOW);
        return -1;
      }
      cfg->request_id_window = d;
    } else if (strcmp(a, "--webhook") == 0) {
      if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
        fprintf(stderr, "commsease-emulator: --webhook must be an http:// or https:// URL\n");
        return -1;
      }
      cfg->webhook = v;
    } else if (strcmp(a, "--max-body") == 0) {
      if (parse_ul(v, (unsigned long long)1 << 30, &u) || u == 0) {
        fprintf(stderr, "commsease-emulator: --max-body must be 1 to 1073741824\n");
        return -1;
      }
      cfg->max_body = (size_t)u;
    } else {
      if (parse_ul(v, 100000000, &u)) {
        fprintf(stderr, "commsease-emulator: --inbox-max must be 0 to 100000000\n");
        return -1;
      }
      cfg->inbox_max = (size_t)u;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  emu_server *s = calloc(1, sizeof *s);
  sigset_t set;
  int sig = 0, rc;
  if (!s) {
    fprintf(stderr, "commsease-emulator: out of memory\n");
    return 1;
  }
  s->cfg.host = "127.0.0.1";
  s->cfg.port = 0;
  s->cfg.appkey = "demo-appkey";
  s->cfg.secret = "demo-secret";
  s->cfg.rate_limit = 100;
  s->cfg.penalty = 10;
  s->cfg.max_body = 1048576;
  s->cfg.inbox_max = 100000;
  s->cfg.request_id_window = 300;
  rc = parse_args(argc, argv, &s->cfg);
  if (rc) {
    free(s);
    return rc > 0 ? 0 : 2;
  }

  /* every thread inherits this mask; main collects the signals with sigwait */
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "commsease-emulator: curl_global_init failed\n");
    free(s);
    return 1;
  }
  pthread_mutex_init(&s->mu, NULL);
  emu_state_init(&s->st, &s->cfg);
  if (emu_webhook_start(&s->wh, s->cfg.webhook, s->cfg.appkey, s->cfg.secret)) {
    fprintf(stderr, "commsease-emulator: cannot start the webhook thread\n");
    rc = 1;
    goto out;
  }
  if (emu_server_start(s)) {
    rc = 1;
    goto out_wh;
  }
  if (strchr(s->cfg.host, ':'))
    printf("listening on http://[%s]:%u%s\n", s->cfg.host, s->cfg.port, EMU_PREFIX);
  else
    printf("listening on http://%s:%u%s\n", s->cfg.host, s->cfg.port, EMU_PREFIX);
  fflush(stdout);

  while (sigwait(&set, &sig) != 0) {}
  emu_server_stop(s);
  rc = 0;
out_wh:
  emu_webhook_stop(&s->wh);
out:
  emu_state_free(&s->st);
  pthread_mutex_destroy(&s->mu);
  curl_global_cleanup();
  free(s);
  return rc;
}
