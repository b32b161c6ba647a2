/* cms_sign.h -- the CommsEase signature (SHA1 CheckSum), webhook MD5, nonces.
 * OpenSSL's libcrypto does the hashing and the random bytes. No Lua here. */
#ifndef CMS_SIGN_H
#define CMS_SIGN_H
#include <stddef.h>
#include <sys/types.h>

#define CMS_NONCE_LEN 32   /* hex characters, as the official SDKs send */

/* lowercase hex digests; out gets a NUL. Return 0, or -1 if libcrypto failed. */
int cms_sha1_hex(const void *data, size_t len, char out[41]);
int cms_md5_hex(const void *data, size_t len, char out[33]);
/* CheckSum = sha1hex(secret .. nonce .. curtime) */
int cms_checksum(const char *secret, size_t secret_len, const char *nonce,
                 const char *curtime, char out[41]);
/* 32 lowercase hex characters from the CSPRNG; -1 if it could not be seeded */
int cms_nonce(char out[CMS_NONCE_LEN + 1]);
/* A pool of CSPRNG bytes, refilled by one RAND_bytes call when empty, so a
 * send (a RequestId, then a Nonce per attempt) does not pay for a call each:
 * one per client, no globals.  Fork-safe: a pool filled in another process
 * (the parent, before fork()) is thrown away, never drawn from. */
typedef struct cms_rand {
  unsigned char buf[512];
  size_t pos;
  pid_t pid, ppid;   /* the process (and its parent) that filled buf */
} cms_rand;

void cms_rand_init(cms_rand *r);
/* 16 fresh bytes as 32 lowercase hex characters; -1 if the CSPRNG failed */
int cms_rand_hex32(cms_rand *r, char out[CMS_NONCE_LEN + 1]);
/* a random value in [0, n) for jitter; 0 when the CSPRNG failed */
unsigned long cms_rand_below(cms_rand *r, unsigned long n);

/* a random RFC 4122 version-4 UUID, 36 characters */
int cms_uuid4(char out[37]);
/* constant-time comparison of two equal-length strings (0 when equal) */
int cms_ct_compare(const char *a, const char *b, size_t n);

#endif
