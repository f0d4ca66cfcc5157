/*
 * Self-contained SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869)
 * for the C reference programs of the benchmark (bench/c/responder.c, bench/c/prober.c),
 * so that `npm run bench` needs only a C compiler: no OpenSSL headers, no libcrypto.
 *
 * Portable C, no SHA-NI: this is the machine's limit for a plain C responder, not a
 * tuned one. HMAC keys are precomputed once per pair key (the inner and outer states
 * after the ipad/opad block), as the engine does, so one MAC of an 84-byte datagram costs
 * three compressions. Everything is `static`: each program is one translation unit.
 */
#ifndef DTCRYPTO_H
#define DTCRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint32_t h[8];
} sha256_state;

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t SHA256_IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define DT_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t dt_be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline void dt_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint64_t dt_be64(const uint8_t *p) { return ((uint64_t)dt_be32(p) << 32) | dt_be32(p + 4); }
static inline void dt_put64(uint8_t *p, uint64_t v) {
  dt_put32(p, (uint32_t)(v >> 32));
  dt_put32(p + 4, (uint32_t)v);
}

/** One 64-byte block into the state. */
static void sha256_block(uint32_t h[8], const uint8_t *blk) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = dt_be32(blk + 4 * i);
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = DT_ROR(w[i - 15], 7) ^ DT_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = DT_ROR(w[i - 2], 17) ^ DT_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t S1 = DT_ROR(e, 6) ^ DT_ROR(e, 11) ^ DT_ROR(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = hh + S1 + ch + SHA256_K[i] + w[i];
    uint32_t S0 = DT_ROR(a, 2) ^ DT_ROR(a, 13) ^ DT_ROR(a, 22);
    uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + mj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

/**
 * Finish a hash whose state `h` has already absorbed `prefix` bytes (a multiple of 64):
 * absorb the `n` bytes of `m1` then the `n2` bytes of `m2`, pad, write 32 bytes to `out`.
 * Two pieces so that the canonical MAC input `wire[0:34+N] || u32be(N)` is hashed
 * without being copied together first.
 */
static void sha256_finish2(const uint32_t h_in[8], uint64_t prefix, const uint8_t *m1, size_t n1, const uint8_t *m2, size_t n2, uint8_t out[32]) {
  uint32_t h[8];
  memcpy(h, h_in, sizeof h);
  uint8_t blk[64];
  size_t fill = 0;
  const uint8_t *parts[2] = {m1, m2};
  size_t lens[2] = {n1, n2};
  for (int k = 0; k < 2; k++) {
    const uint8_t *p = parts[k];
    size_t n = lens[k];
    if (fill > 0) {
      size_t take = 64 - fill < n ? 64 - fill : n;
      memcpy(blk + fill, p, take);
      fill += take;
      p += take;
      n -= take;
      if (fill == 64) {
        sha256_block(h, blk);
        fill = 0;
      }
    }
    while (n >= 64) {
      sha256_block(h, p);
      p += 64;
      n -= 64;
    }
    if (n > 0) {
      memcpy(blk, p, n);
      fill = n;
    }
  }
  uint64_t bits = (prefix + n1 + n2) * 8;
  blk[fill++] = 0x80;
  if (fill > 56) {
    memset(blk + fill, 0, 64 - fill);
    sha256_block(h, blk);
    fill = 0;
  }
  memset(blk + fill, 0, 56 - fill);
  dt_put64(blk + 56, bits);
  sha256_block(h, blk);
  for (int i = 0; i < 8; i++) dt_put32(out + 4 * i, h[i]);
}

static void sha256(const uint8_t *m, size_t n, uint8_t out[32]) { sha256_finish2(SHA256_IV, 0, m, n, NULL, 0, out); }

/** A pair key's HMAC states after the ipad and opad blocks. */
typedef struct {
  uint32_t inner[8];
  uint32_t outer[8];
} hmac_key;

static void hmac_init(hmac_key *k, const uint8_t *key, size_t keylen) {
  uint8_t kb[64], pad[64];
  memset(kb, 0, sizeof kb);
  if (keylen > 64)
    sha256(key, keylen, kb);
  else
    memcpy(kb, key, keylen);
  for (int i = 0; i < 64; i++) pad[i] = kb[i] ^ 0x36;
  memcpy(k->inner, SHA256_IV, 32);
  sha256_block(k->inner, pad);
  for (int i = 0; i < 64; i++) pad[i] = kb[i] ^ 0x5c;
  memcpy(k->outer, SHA256_IV, 32);
  sha256_block(k->outer, pad);
}

/** HMAC-SHA256(key, m1 || m2), 32 bytes. */
static void hmac2(const hmac_key *k, const uint8_t *m1, size_t n1, const uint8_t *m2, size_t n2, uint8_t out[32]) {
  uint8_t ih[32];
  sha256_finish2(k->inner, 64, m1, n1, m2, n2, ih);
  sha256_finish2(k->outer, 64, ih, 32, NULL, 0, out);
}

static void hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *m, size_t n, uint8_t out[32]) {
  hmac_key k;
  hmac_init(&k, key, keylen);
  hmac2(&k, m, n, NULL, 0, out);
}

/** HKDF-SHA256 (RFC 5869) with `L` <= 255*32; salt NULL/empty = 32 zero bytes. */
static void hkdf_sha256(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen, uint8_t *out, size_t L) {
  uint8_t zero[32] = {0};
  uint8_t prk[32];
  if (salt == NULL || saltlen == 0) {
    salt = zero;
    saltlen = 32;
  }
  hmac_sha256(salt, saltlen, ikm, ikmlen, prk);
  hmac_key k;
  hmac_init(&k, prk, 32);
  uint8_t t[32 + 1024 + 1];
  uint8_t prev[32];
  size_t done = 0;
  for (uint8_t i = 1; done < L; i++) {
    size_t n = 0;
    if (i > 1) {
      memcpy(t, prev, 32);
      n = 32;
    }
    size_t il = infolen > 1024 ? 1024 : infolen;
    memcpy(t + n, info, il);
    n += il;
    t[n++] = i;
    hmac2(&k, t, n, NULL, 0, prev);
    size_t take = L - done < 32 ? L - done : 32;
    memcpy(out + done, prev, take);
    done += take;
  }
}

/** Constant-time comparison of `n` bytes: 0 when equal. */
static inline int ct_diff(const uint8_t *a, const uint8_t *b, size_t n) {
  uint8_t d = 0;
  for (size_t i = 0; i < n; i++) d |= a[i] ^ b[i];
  return d;
}

/** Parse lowercase/uppercase hex of exactly `n` bytes; 0 on success. */
static int hex_decode(const char *s, uint8_t *out, size_t n) {
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[2 * i + j];
      int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (x < 0) return -1;
      v = v * 16 + x;
    }
    out[i] = (uint8_t)v;
  }
  return 0;
}

#endif
