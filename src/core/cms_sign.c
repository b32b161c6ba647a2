#include "cms_sign.h"
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/mman.h>
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

void cms_sha1_free(cms_sha1 *h) {
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

int cms_checksum(cms_sha1 *h, const char *secret, size_t secret_len, const char *nonce,
                 const char *curtime, char out[41]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  int ok;
  EVP_MD_CTX *ctx = h ? h->ctx : NULL;
  if (ctx) {
    ok = EVP_DigestInit_ex2(ctx, NULL, NULL); /* the same digest again */
  } else {
    ctx = EVP_MD_CTX_new();
    if (!ctx) return -1;
    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
  }
  ok = ok && EVP_DigestUpdate(ctx, secret, secret_len) &&
       EVP_DigestUpdate(ctx, nonce, strlen(nonce)) &&
       EVP_DigestUpdate(ctx, curtime, strlen(curtime)) &&
       EVP_DigestFinal_ex(ctx, d, &n) && n == 20;
  if (h && ok) {
    h->ctx = ctx;
  } else {
    EVP_MD_CTX_free(ctx); /* a failed context is not kept */
    if (h) h->ctx = NULL;
  }
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

/* the pool's page: all zeros (not live) in a child forked after the fill */
#define CMS_RAND_PAGE 4096
struct cms_rand_page {
  size_t live;    /* 1 once filled in this process */
  size_t pos;     /* bytes of buf used */
  unsigned char buf[CMS_RAND_PAGE - 2 * sizeof(size_t)];
};

void cms_rand_init(cms_rand *r) {
  r->page = NULL;
  r->no_wipe = 0;
  r->pid = 0;
  r->ppid = 0;
}

void cms_rand_free(cms_rand *r) {
  if (!r->page) return;
  OPENSSL_cleanse(r->page, sizeof *r->page);
  munmap(r->page, sizeof *r->page);
  r->page = NULL;
}

/* With no_wipe, a fork() copies the pool: parent and child would hand out the
 * same Nonces and RequestIds.  So every draw checks that the pool was filled
 * in this very process, and the parent's pid as well, because a pid alone can
 * come back: a child of a child may get the pid of a process that has exited
 * since, whose pool it inherited.  (A pthread_atfork handler would need no
 * system call, but a Lua state that closes unloads this code while the
 * handler stays registered: the next fork would jump into the void.
 * RAND_bytes itself is fork-safe in OpenSSL 3.) */
static int pool_is_ours(cms_rand *r) {
  pid_t pid, ppid;
  if (!r->page->live) return 0;
  if (!r->no_wipe) return 1; /* a child would have found the page zeroed */
  pid = getpid(), ppid = getppid();
  return r->pid == pid && r->ppid == ppid;
}

static const unsigned char *rand_take(cms_rand *r, size_t n) {
  struct cms_rand_page *g = r->page;
  const unsigned char *p;
  if (!g) {
    void *m = mmap(NULL, sizeof *g, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
#ifdef MADV_WIPEONFORK
    if (!r->no_wipe && madvise(m, sizeof *g, MADV_WIPEONFORK) != 0) r->no_wipe = 1;
#else
    r->no_wipe = 1;
#endif
    r->page = g = m; /* zeros: not live */
  }
  if (!pool_is_ours(r) || g->pos + n > sizeof g->buf) {
    g->live = 0;
    if (RAND_bytes(g->buf, (int)sizeof g->buf) != 1) return NULL;
    g->pos = 0;
    g->live = 1;
    if (r->no_wipe) r->pid = getpid(), r->ppid = getppid();
  }
  p = g->buf + g->pos;
  g->pos += n;
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
