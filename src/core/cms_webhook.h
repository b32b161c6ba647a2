/* cms_webhook.h -- checking a webhook request of the service (a copy of a
 * message sent with route = 1).  The service signs it with CurTime in
 * milliseconds, MD5 = lowercase hex md5 of the raw body and
 * CheckSum = sha1hex(AppSecret .. MD5 .. CurTime).  No Lua here; the caller
 * decodes the body (JSON) after these checks pass. */
#ifndef CMS_WEBHOOK_H
#define CMS_WEBHOOK_H
#include <stddef.h>
#include "cms_rules.h"

#define CMS_WEBHOOK_MAX_AGE 300 /* seconds either side of the receiver's clock, by default */

/* one header value as received: s == NULL when the header is absent */
typedef struct cms_wh_header {
  const char *s;
  size_t n;
} cms_wh_header;

/* Checks, in this order: MD5, CurTime and CheckSum are present; MD5 is 32 hex
 * digits equal (in any case) to the md5 of body; CheckSum is 40 hex digits
 * equal (in any case, compared in constant time) to sha1hex(secret .. MD5 as
 * received .. CurTime); CurTime is decimal milliseconds within max_age_ms of
 * now_ms.  0 when every check passes; -1 with e->field the header ("MD5",
 * "CurTime", "CheckSum") and e->message naming the failed check.  Messages
 * never hold the secret. */
int cms_webhook_verify(const char *secret, size_t secret_len, cms_wh_header md5,
                       cms_wh_header curtime, cms_wh_header checksum, const char *body,
                       size_t body_len, long long now_ms, long long max_age_ms, cms_verr *e);

#endif
