#include "cms_sign.h"
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

static void hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int digest_hex(const EVP_MD *md, const void *data, size_t len, char *out,
                      unsigned expect) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data, len, d, &n, md, NULL) || n != expect) return -1;
  hex(d, n, out);
  return 0;
}

int cms_sha1_hex(const void *data, size_t len, char out[41]) {
  return digest_hex(EVP_sha1(), data, len, out, 20);
}

int cms_md5_hex(const void *data, size_t len, char out[33]) {
  return digest_hex(EVP_md5(), data, len, out, 16);
}

int cms_checksum(const char *secret, size_t secret_len, const char *nonce,
                 const char *curtime, char out[41]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  int ok;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -1;
  ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
       EVP_DigestUpdate(ctx, secret, secret_len) &&
       EVP_DigestUpdate(ctx, nonce, strlen(nonce)) &&
       EVP_DigestUpdate(ctx, curtime, strlen(curtime)) &&
       EVP_DigestFinal_ex(ctx, d, &n) && n == 20;
  EVP_MD_CTX_free(ctx);
  if (!ok) return -1;
  hex(d, n, out);
  return 0;
}

int cms_nonce(char out[CMS_NONCE_LEN + 1]) {
  unsigned char r[CMS_NONCE_LEN / 2];
  if (RAND_bytes(r, (int)sizeof r) != 1) return -1;
  hex(r, sizeof r, out);
  return 0;
}

void cms_rand_init(cms_rand *r) {
  r->pos = sizeof r->buf;
  r->pid = 0;
  r->ppid = 0;
}

/* A fork() copies the pool: parent and child would hand out the same Nonces
 * and RequestIds.  So every draw checks that the pool was filled in this very
 * process and throws it away otherwise.  The parent's pid as well, because a
 * pid alone can come back: a child of a child may get the pid of a process
 * that has exited since, whose pool it inherited.  (A pthread_atfork handler
 * would need no system call, but a Lua state that closes unloads this code
 * while the handler stays registered: the next fork would jump into the
 * void.  RAND_bytes itself is fork-safe in OpenSSL 3.) */
static int pool_is_ours(cms_rand *r) {
  pid_t pid = getpid(), ppid = getppid();
  if (r->pid == pid && r->ppid == ppid) return 1;
  r->pid = pid;
  r->ppid = ppid;
  return 0;
}

static const unsigned char *rand_take(cms_rand *r, size_t n) {
  const unsigned char *p;
  if (!pool_is_ours(r)) {
    OPENSSL_cleanse(r->buf, sizeof r->buf);
    r->pos = sizeof r->buf;
  }
  if (r->pos + n > sizeof r->buf) {
    if (RAND_bytes(r->buf, (int)sizeof r->buf) != 1) return NULL;
    r->pos = 0;
  }
  p = r->buf + r->pos;
  r->pos += n;
  return p;
}

int cms_rand_hex32(cms_rand *r, char out[CMS_NONCE_LEN + 1]) {
  const unsigned char *p = rand_take(r, CMS_NONCE_LEN / 2);
  if (!p) return -1;
  hex(p, CMS_NONCE_LEN / 2, out);
  OPENSSL_cleanse((void *)p, CMS_NONCE_LEN / 2); /* used bytes leave the pool */
  return 0;
}

unsigned long cms_rand_below(cms_rand *r, unsigned long n) {
  const unsigned char *p = rand_take(r, 4);
  unsigned long v;
  if (!p || n == 0) return 0;
  v = ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | p[3];
  return v % n;
}

int cms_uuid4(char out[37]) {
  unsigned char r[16];
  char h[33];
  if (RAND_bytes(r, (int)sizeof r) != 1) return -1;
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  hex(r, 16, h);
  memcpy(out, h, 8);
  out[8] = '-';
  memcpy(out + 9, h + 8, 4);
  out[13] = '-';
  memcpy(out + 14, h + 12, 4);
  out[18] = '-';
  memcpy(out + 19, h + 16, 4);
  out[23] = '-';
  memcpy(out + 24, h + 20, 12);
  out[36] = '\0';
  return 0;
}

int cms_ct_compare(const char *a, const char *b, size_t n) {
  unsigned char acc = 0;
  size_t i;
  for (i = 0; i < n; i++) acc |= (unsigned char)(a[i] ^ b[i]);
  return acc != 0;
}
