/*
 * The DataStun mesh probe protocol v1 (spec/PROTOCOL.md) for the C reference programs:
 * wire constants, ID rules, sender_id, pair-key derivation, the canonical MAC, the wall
 * clock and the per-sender replay state (strict or RFC 6479-style window).
 */
#ifndef DTPROTO_H
#define DTPROTO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtcrypto.h"

#define DT_HEADER_LEN 34
#define DT_MAC_LEN 16
#define DT_MIN_DATAGRAM 50
#define DT_OFF_VER 4
#define DT_OFF_TYPE 5
#define DT_OFF_SENDER 6
#define DT_OFF_NONCE 14
#define DT_OFF_PROBE_ID 22
#define DT_OFF_SEND_TS 26
#define DT_TYPE_PROBE 1
#define DT_TYPE_REPLY 2
#define DT_TYPE_HINT 3
#define DT_HINT_LEN_V4 15
#define DT_HINT_LEN_V6 27
#define DT_MAX_ID 128
#define DT_MAX_WINDOW 8192

static const uint8_t DT_MAGIC[4] = {'D', 'T', 'M', 'P'};

/** Drop reasons in the order they are tested (PROTOCOL.md §4), and their canonical names. */
enum { V_ACCEPT = -1, V_MALFORMED = 0, V_DOWNGRADE, V_REFLECTED, V_UNKNOWN_SENDER, V_BAD_MAC, V_STALE, V_REPLAY, V_COUNT };
static const char *const DT_REASONS[V_COUNT] = {"malformed", "downgrade", "reflected", "unknown_sender", "bad_mac", "stale", "replay"};

/** Wall clock, µs since the Unix epoch (PROTOCOL.md §6). */
static inline uint64_t dt_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/** PROTOCOL.md §1: 1–128 bytes of UTF-8, no '|', no control characters; NULL when valid, else why. */
static const char *dt_id_invalid(const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > DT_MAX_ID) return "must be 1-128 bytes";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)id[i];
    if (c == '|') return "must not contain '|'";
    if (c < 0x20 || c == 0x7f) return "must not contain control characters";
  }
  /* well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF) */
  const unsigned char *p = (const unsigned char *)id, *end = p + n;
  while (p < end) {
    unsigned c = *p;
    int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || p + len > end) return "must be valid UTF-8";
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (int i = 1; i < len; i++) {
      if ((p[i] & 0xc0) != 0x80) return "must be valid UTF-8";
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return "must be valid UTF-8";
    p += len;
  }
  return NULL;
}

/** sender_id = SHA-256(utf8(agent_id))[0:8], as a big-endian u64. */
static uint64_t dt_sender_id(const char *agent) {
  uint8_t h[32];
  sha256((const uint8_t *)agent, strlen(agent), h);
  return dt_be64(h);
}

/** pair key = HKDF-SHA256(root, salt empty, "dt-mesh-v1|tenant|min(A,B)|max(A,B)", 32). */
static void dt_pair_key(const uint8_t root[32], const char *tenant, const char *a, const char *b, uint8_t out[32]) {
  size_t la = strlen(a), lb = strlen(b);
  int c = memcmp(a, b, la < lb ? la : lb);
  if (c == 0) c = la < lb ? -1 : la > lb ? 1 : 0;
  const char *lo = c <= 0 ? a : b, *hi = c <= 0 ? b : a;
  char info[16 + 3 * (DT_MAX_ID + 1)];
  int n = snprintf(info, sizeof info, "dt-mesh-v1|%s|%s|%s", tenant, lo, hi);
  hkdf_sha256(NULL, 0, root, 32, (const uint8_t *)info, (size_t)n, out, 32);
}

/** HMAC-SHA256(key, wire[0:34+N] || u32be(N))[0:16] of a `len`-byte datagram (N = len - 50). */
static inline void dt_mac(const hmac_key *k, const uint8_t *wire, size_t len, uint8_t out[DT_MAC_LEN]) {
  size_t body = len - DT_MAC_LEN;
  uint8_t suffix[4], full[32];
  dt_put32(suffix, (uint32_t)(body - DT_HEADER_LEN));
  hmac2(k, wire, body, suffix, 4, full);
  memcpy(out, full, DT_MAC_LEN);
}

/** True when the MAC trailer of the datagram verifies under `k` (constant-time compare). */
static inline int dt_mac_ok(const hmac_key *k, const uint8_t *wire, size_t len) {
  uint8_t m[DT_MAC_LEN];
  dt_mac(k, wire, len, m);
  return ct_diff(m, wire + len - DT_MAC_LEN, DT_MAC_LEN) == 0;
}

/** Write a datagram's header (payload and MAC are the caller's). */
static inline void dt_header(uint8_t *w, int type, uint64_t sender, uint64_t nonce, uint32_t probe_id, uint64_t ts) {
  memcpy(w, DT_MAGIC, 4);
  w[DT_OFF_VER] = 1;
  w[DT_OFF_TYPE] = (uint8_t)type;
  dt_put64(w + DT_OFF_SENDER, sender);
  dt_put64(w + DT_OFF_NONCE, nonce);
  dt_put32(w + DT_OFF_PROBE_ID, probe_id);
  dt_put64(w + DT_OFF_SEND_TS, ts);
}

/**
 * Replay state of one sender (PROTOCOL.md §5). `window` 0 = strict: accept only
 * nonce > hwm. Else W (multiple of 64): also a not-yet-seen nonce in (hwm - W, hwm].
 * `dt_replay_ok` only tests; `dt_replay_commit` moves the state (accepted packets only).
 */
typedef struct {
  int seen;
  uint64_t hwm;
  uint64_t *bits; /* W/64 words, bit (nonce mod W) set = seen; NULL in strict mode */
} dt_replay;

static inline int dt_replay_ok(const dt_replay *r, unsigned window, uint64_t n) {
  if (!r->seen || n > r->hwm) return 1;
  if (window == 0) return 0;
  if (r->hwm - n >= window) return 0;
  uint64_t b = n % window;
  return (r->bits[b >> 6] >> (b & 63) & 1) == 0;
}

static inline void dt_replay_commit(dt_replay *r, unsigned window, uint64_t n) {
  if (window != 0) {
    if (!r->seen || n > r->hwm) {
      if (!r->seen || n - r->hwm >= window) {
        memset(r->bits, 0, window / 8);
      } else {
        for (uint64_t x = r->hwm + 1; x < n; x++) {
          uint64_t b = x % window;
          r->bits[b >> 6] &= ~(1ull << (b & 63));
        }
      }
    }
    uint64_t b = n % window;
    r->bits[b >> 6] |= 1ull << (b & 63);
  }
  if (!r->seen || n > r->hwm) r->hwm = n;
  r->seen = 1;
}

/** Split "a,b,c" in place into at most `max` non-empty items; returns the count. */
static inline int dt_split(char *s, char **out, int max) {
  int n = 0;
  for (char *tok = strtok(s, ","); tok != NULL && n < max; tok = strtok(NULL, ",")) {
    while (*tok == ' ') tok++;
    if (*tok) out[n++] = tok;
  }
  return n;
}

#endif
