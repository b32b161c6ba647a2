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
/* A SHA1 context kept for the next CheckSum (a fresh one costs libcrypto a
 * lookup of the algorithm each time): zeroed to start, cms_sha1_free at the end */
typedef struct cms_sha1 {
  void *ctx;
} cms_sha1;
void cms_sha1_free(cms_sha1 *h);
/* CheckSum = sha1hex(secret .. nonce .. curtime); h: a kept context, or NULL */
int cms_checksum(cms_sha1 *h, const char *secret, size_t secret_len, const char *nonce,
                 const char *curtime, char out[41]);
/* 32 lowercase hex characters from the CSPRNG; -1 if it could not be seeded */
int cms_nonce(char out[CMS_NONCE_LEN + 1]);
/* A pool of CSPRNG bytes, refilled by one RAND_bytes call when empty, so a
 * send (a RequestId, then a Nonce per attempt) does not pay for a call each:
 * one per client, no globals.  Fork-safe: a pool filled in another process
 * (the parent, before fork()) is never drawn from.  The pool is a page of its
 * own, mapped on the first draw with MADV_WIPEONFORK, so that a forked child
 * finds it zeroed (empty) at no cost per draw; where the kernel refuses that
 * (before Linux 4.14), each draw compares the pid and parent pid with the
 * filler's instead (two system calls). */
typedef struct cms_rand {
  struct cms_rand_page *page; /* NULL until the first draw */
  int no_wipe;                /* 1: the pid check (the kernel refused, or a test) */
  pid_t pid, ppid;            /* with no_wipe: the process (and parent) that filled it */
} cms_rand;

void cms_rand_init(cms_rand *r);
void cms_rand_free(cms_rand *r);  /* wipes and unmaps the pool; idempotent */
/* 16 fresh bytes as 32 lowercase hex characters; -1 if the CSPRNG failed */
int cms_rand_hex32(cms_rand *r, char out[CMS_NONCE_LEN + 1]);
/* a random value in [0, n) for jitter; 0 when the CSPRNG failed */
unsigned long cms_rand_below(cms_rand *r, unsigned long n);

/* a random RFC 4122 version-4 UUID, 36 characters */
int cms_uuid4(char out[37]);
/* constant-time comparison of two equal-length strings (0 when equal) */
int cms_ct_compare(const char *a, const char *b, size_t n);

#endif
