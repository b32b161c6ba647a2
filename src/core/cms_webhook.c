/* cms_webhook.c -- the webhook signature and freshness checks (see cms_webhook.h). */
#include "cms_webhook.h"
#include <string.h>
#include "cms_sign.h"

static int all_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return 0;
  }
  return 1;
}

static void lower_copy(char *dst, const char *src, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = src[i];
    dst[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
  }
  dst[n] = '\0';
}

int cms_webhook_verify(const char *secret, size_t secret_len, cms_wh_header md5,
                       cms_wh_header curtime, cms_wh_header checksum, const char *body,
                       size_t body_len, long long now_ms, long long max_age_ms, cms_verr *e) {
  char want[41], got[41], md5z[33], ctz[24];
  long long t, age;
  size_t i;
  if (!md5.s) return cms_verr_set(e, "MD5", "header MD5 is missing");
  if (!curtime.s) return cms_verr_set(e, "CurTime", "header CurTime is missing");
  if (!checksum.s) return cms_verr_set(e, "CheckSum", "header CheckSum is missing");
  if (md5.n != 32 || !all_hex(md5.s, md5.n))
    return cms_verr_set(e, "MD5", "header MD5 must be 32 hex digits (the md5 of the body)");
  if (curtime.n == 0 || curtime.n > 18)
    return cms_verr_set(e, "CurTime", "header CurTime must be decimal milliseconds since the epoch");
  for (i = 0; i < curtime.n; i++)
    if (curtime.s[i] < '0' || curtime.s[i] > '9')
      return cms_verr_set(e, "CurTime",
                          "header CurTime must be decimal milliseconds since the epoch");
  if (checksum.n != 40 || !all_hex(checksum.s, checksum.n))
    return cms_verr_set(e, "CheckSum", "header CheckSum must be 40 hex digits");

  /* the body is what was signed through its md5 */
  if (cms_md5_hex(body, body_len, want))
    return cms_verr_set(e, "MD5", "libcrypto failed computing the md5 of the body");
  lower_copy(got, md5.s, 32);
  if (cms_ct_compare(want, got, 32))
    return cms_verr_set(e, "MD5", "header MD5 does not match the md5 of the body");

  /* the signature covers MD5 and CurTime exactly as they were sent */
  memcpy(md5z, md5.s, 32);
  md5z[32] = '\0';
  memcpy(ctz, curtime.s, curtime.n);
  ctz[curtime.n] = '\0';
  if (cms_checksum(NULL, secret, secret_len, md5z, ctz, want))
    return cms_verr_set(e, "CheckSum", "libcrypto failed computing the CheckSum");
  lower_copy(got, checksum.s, 40);
  if (cms_ct_compare(want, got, 40))
    return cms_verr_set(e, "CheckSum",
                        "header CheckSum does not match sha1(AppSecret .. MD5 .. CurTime): "
                        "not signed with this secret, or MD5/CurTime changed");

  if (cms_parse_int64(curtime.s, curtime.n, &t))
    return cms_verr_set(e, "CurTime", "header CurTime must be decimal milliseconds since the epoch");
  age = now_ms - t;
  if (age > max_age_ms || -age > max_age_ms) {
    if (t < 100000000000LL) /* before 1973 in ms: surely seconds */
      return cms_verr_set(e, "CurTime", "header CurTime is out of the %.3g s window: it looks "
                          "like seconds, and a webhook's CurTime is in milliseconds",
                          (double)max_age_ms / 1000.0);
    return cms_verr_set(e, "CurTime", "header CurTime is %.3f s %s; at most %.3g s allowed (%s)",
                        (double)(age > 0 ? age : -age) / 1000.0,
                        age > 0 ? "old" : "in the future", (double)max_age_ms / 1000.0,
                        age > 0 ? "a replay, or the clocks differ" : "the clocks differ");
  }
  return 0;
}
