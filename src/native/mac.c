/*
 * dtmesh native MAC kernel: the datagram MAC of PROTOCOL.md §2,
 * HMAC-SHA256(pair_key, wire[0:34+N] || u32be(N))[0:16] (RFC 2104 §5 truncation),
 * from the keyed inner/outer SHA-256 states the JS side precomputes once per key
 * (src/protocol/sha256.ts hmacPrecompute, RFC 2104 §4). The compression is OpenSSL's
 * (the copy inside Node, which uses SHA-NI where the CPU has it); what this file adds is
 * a call that costs no allocation and no per-call object, on bytes read in place — a
 * SharedArrayBuffer batch included. Why it exists and what it measured: src/protocol/mac.ts.
 */
#define OPENSSL_API_COMPAT 0x10100000L
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <node_api.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#ifndef _WIN32
#include <sys/file.h>
#endif

/* out = HMAC-SHA256 from state[0..16) (inner 8 words, outer 8 words) of msg || u32be(suffix). */
static void mac(const int32_t *state, const uint8_t *msg, size_t len, uint32_t suffix, uint8_t out[32]) {
  SHA256_CTX c;
  uint8_t sfx[4] = {(uint8_t)(suffix >> 24), (uint8_t)(suffix >> 16), (uint8_t)(suffix >> 8), (uint8_t)suffix};
  uint8_t inner[32];
  memset(&c, 0, sizeof c);
  memcpy(c.h, state, 32);
  c.Nl = 512; /* one 64-byte block (K ^ ipad) already compressed */
  c.md_len = SHA256_DIGEST_LENGTH;
  SHA256_Update(&c, msg, len);
  SHA256_Update(&c, sfx, 4);
  SHA256_Final(inner, &c);
  memset(&c, 0, sizeof c);
  memcpy(c.h, state + 8, 32);
  c.Nl = 512; /* K ^ opad */
  c.md_len = SHA256_DIGEST_LENGTH;
  SHA256_Update(&c, inner, 32);
  SHA256_Final(out, &c);
}

/*
 * Argument checks (every entry point). A call with an argument it cannot use throws and
 * writes nothing: a TypeError for a wrong type or a detached buffer, a RangeError for a
 * number that is not an integer in range or a span that does not lie inside its array.
 * Every bound is checked as `off <= n && len <= n - off` on integers already known to be
 * in [0, 2^53), so no sum or product can wrap (a stateOff near 2^62 once passed the old
 * `(so + 16) * 4 > sn` test). For valid arguments this costs a few compares per call;
 * the detached check runs only for a zero-length view (a detached view has length 0).
 */
#define MAX_SAFE 9007199254740991.0 /* 2^53 - 1: Number.MAX_SAFE_INTEGER */
#define MAX_U32 4294967295.0

static int type_error(napi_env env, const char *fn, const char *what) {
  char m[160];
  snprintf(m, sizeof m, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
  return -1;
}

static int range_error(napi_env env, const char *fn, const char *what) {
  char m[160];
  snprintf(m, sizeof m, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
  return -1;
}

/* Byte 0 of a zero-length view: a valid pointer where V8 gives none. */
static uint8_t empty_bytes[1];

/*
 * The bytes of `v`, which must be a typed array of type `want` (Int32Array or
 * Uint8Array, Buffer included) over a live buffer: 0, or -1 with a TypeError thrown.
 * `shared` (may be NULL) is set when the buffer is a SharedArrayBuffer (never detached,
 * never shrunk).
 */
static int array_of(napi_env env, napi_value v, napi_typedarray_type want, const char *fn, const char *name, uint8_t **data, size_t *nbytes,
                    int *shared) {
  napi_typedarray_type t;
  size_t len;
  void *d = NULL;
  napi_value ab;
  size_t off;
  char m[96];
  if (napi_get_typedarray_info(env, v, &t, &len, &d, &ab, &off) != napi_ok || t != want) {
    snprintf(m, sizeof m, "%s must be %s", name, want == napi_int32_array ? "an Int32Array" : "a Uint8Array");
    return type_error(env, fn, m);
  }
  if (len == 0 || d == NULL) {
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) {
      snprintf(m, sizeof m, "%s is over a detached ArrayBuffer", name);
      return type_error(env, fn, m);
    }
    d = empty_bytes;
    len = 0;
  }
  if (shared) {
    bool plain = true;
    napi_is_arraybuffer(env, ab, &plain);
    *shared = !plain;
  }
  *data = (uint8_t *)d;
  *nbytes = want == napi_int32_array ? len * 4 : len;
  return 0;
}

/* An integer in [0, max] (max <= 2^53 - 1): 0, or -1 with a TypeError (not a number) or RangeError thrown. */
static int uint_of(napi_env env, napi_value v, double max, const char *fn, const char *name, uint64_t *out) {
  double d;
  char m[96];
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    snprintf(m, sizeof m, "%s must be a number", name);
    return type_error(env, fn, m);
  }
  if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d) { /* NaN fails the first test */
    snprintf(m, sizeof m, "%s must be an integer from 0 to %.0f", name, max);
    return range_error(env, fn, m);
  }
  *out = (uint64_t)d;
  return 0;
}

/* `len` units from `off` lie within `n`; no overflow for any uint64 inputs. */
static int fits(uint64_t off, uint64_t len, uint64_t n) {
  return off <= n && len <= n - off;
}

/*
 * Shared by tag16 and verify16: (state Int32Array, stateOff, buf Uint8Array, off, length,
 * suffix, out/tag Uint8Array, outOff). Returns 0 and the MAC in mac32, or -1 with an
 * exception thrown (nothing computed, nothing written).
 */
static int compute(napi_env env, napi_callback_info info, const char *fn, uint8_t **tagp, uint8_t mac32[32]) {
  size_t argc = 8;
  napi_value a[8];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 8) return type_error(env, fn, "takes 8 arguments");
  size_t sn = 0, bn = 0, tn = 0;
  uint8_t *st, *buf, *tag;
  uint64_t so, off, len, sfx, to;
  if (array_of(env, a[0], napi_int32_array, fn, "state", &st, &sn, NULL) || uint_of(env, a[1], MAX_SAFE, fn, "stateOffset", &so) ||
      array_of(env, a[2], napi_uint8_array, fn, "buf", &buf, &bn, NULL) || uint_of(env, a[3], MAX_SAFE, fn, "offset", &off) ||
      uint_of(env, a[4], MAX_SAFE, fn, "length", &len) || uint_of(env, a[5], MAX_U32, fn, "suffix", &sfx) ||
      array_of(env, a[6], napi_uint8_array, fn, "tag array", &tag, &tn, NULL) || uint_of(env, a[7], MAX_SAFE, fn, "tagOffset", &to))
    return -1;
  if (!fits(so, 16, sn / 4)) return range_error(env, fn, "stateOffset + 16 words must lie within state");
  if (!fits(off, len, bn)) return range_error(env, fn, "offset + length must lie within buf");
  if (!fits(to, 16, tn)) return range_error(env, fn, "tagOffset + 16 bytes must lie within the tag array");
  mac((const int32_t *)st + so, buf + off, (size_t)len, (uint32_t)sfx, mac32);
  *tagp = tag + to;
  return 0;
}

/* Reads a call's arguments and computes its MAC (compute / compute_at below). */
typedef int (*compute_fn)(napi_env env, napi_callback_info info, const char *fn, uint8_t **tagp, uint8_t mac32[32]);

/* Write the 16-byte tag where the call says; throws (writing nothing) when an argument is unusable. */
static napi_value tag_with(napi_env env, napi_callback_info info, compute_fn f, const char *fn) {
  uint8_t m[32];
  uint8_t *out;
  if (f(env, info, fn, &out, m) == 0) memcpy(out, m, 16);
  return NULL;
}

/* Compare with the tag where the call says: OR of XORs, no early exit; throws when an argument is unusable. */
static napi_value verify_with(napi_env env, napi_callback_info info, compute_fn f, const char *fn) {
  uint8_t m[32];
  uint8_t *tag;
  napi_value r;
  uint8_t d = 0;
  if (f(env, info, fn, &tag, m) != 0) return NULL;
  for (int i = 0; i < 16; i++) d |= (uint8_t)(m[i] ^ tag[i]);
  napi_get_boolean(env, d == 0, &r);
  return r;
}

static napi_value tag16(napi_env env, napi_callback_info info) {
  return tag_with(env, info, compute, "tag16");
}

static napi_value verify16(napi_env env, napi_callback_info info) {
  return verify_with(env, info, compute, "verify16");
}

/*
 * Bound calls: bind(state Int32Array, bytes Uint8Array) once (the key table and a batch
 * ring), then tagAt/verifyAt(binding, stateOff, off, length, suffix, outOff) take only
 * integers — no typed-array unpacking per call (≈ 45 ns less per MAC). The MAC input and
 * the tag are both in `bytes`. The arrays stay referenced until unbind.
 * An array over a SharedArrayBuffer can be neither detached nor shrunk, so its pointer
 * and length are kept from bind (the engine binds only such arrays). An array over a
 * plain ArrayBuffer can be (transfer, resize), so its pointer and length are re-read at
 * every call — the cost of one typed-array unpack, only for such bindings.
 */
#define MAX_BINDINGS 64
typedef struct {
  uint8_t *state; /* NULL: free slot */
  size_t state_bytes;
  uint8_t *bytes;
  size_t nbytes;
  int state_shared, bytes_shared;
  napi_ref refs[2];
} binding_t;
typedef struct {
  binding_t b[MAX_BINDINGS];
} bindings_t;

static void free_bindings(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static bindings_t *bindings_of(napi_env env) {
  bindings_t *bs = NULL;
  napi_get_instance_data(env, (void **)&bs);
  return bs;
}

/* bind(state, bytes) → a binding number, or -1 when the thread's 64 are taken; throws TypeError for wrong arrays. */
static napi_value bind_(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2], r;
  size_t sn = 0, bn = 0;
  uint8_t *st, *buf;
  int ss = 0, bsh = 0;
  bindings_t *bs = bindings_of(env);
  int id = -1;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2) {
    type_error(env, "bind", "takes 2 arguments");
    return NULL;
  }
  if (array_of(env, a[0], napi_int32_array, "bind", "state", &st, &sn, &ss) || array_of(env, a[1], napi_uint8_array, "bind", "bytes", &buf, &bn, &bsh))
    return NULL;
  if (bs) {
    for (int i = 0; i < MAX_BINDINGS && id < 0; i++) if (bs->b[i].state == NULL) id = i;
    if (id >= 0 && napi_create_reference(env, a[0], 1, &bs->b[id].refs[0]) == napi_ok) {
      if (napi_create_reference(env, a[1], 1, &bs->b[id].refs[1]) == napi_ok) {
        binding_t *b = &bs->b[id];
        b->state = st;
        b->state_bytes = sn;
        b->bytes = buf;
        b->nbytes = bn;
        b->state_shared = ss;
        b->bytes_shared = bsh;
      } else {
        napi_delete_reference(env, bs->b[id].refs[0]);
        id = -1;
      }
    } else id = -1;
  }
  napi_create_int32(env, id, &r);
  return r;
}

/* The binding named by `v`: a live slot, or NULL with a RangeError/TypeError thrown. */
static binding_t *binding_of(napi_env env, napi_value v, const char *fn) {
  uint64_t id;
  bindings_t *bs = bindings_of(env);
  if (uint_of(env, v, MAX_BINDINGS - 1, fn, "binding", &id)) return NULL;
  if (!bs || bs->b[id].state == NULL) {
    range_error(env, fn, "binding is not bound");
    return NULL;
  }
  return &bs->b[id];
}

/* unbind(binding): release the arrays; the slot is free again. A free slot is left as is; a non-binding number throws. */
static napi_value unbind_(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  uint64_t id;
  bindings_t *bs = bindings_of(env);
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1) {
    type_error(env, "unbind", "takes 1 argument");
    return NULL;
  }
  if (uint_of(env, a[0], MAX_BINDINGS - 1, "unbind", "binding", &id)) return NULL;
  if (bs && bs->b[id].state != NULL) {
    napi_delete_reference(env, bs->b[id].refs[0]);
    napi_delete_reference(env, bs->b[id].refs[1]);
    memset(&bs->b[id], 0, sizeof bs->b[id]);
  }
  return NULL;
}

/* Re-read a plain-ArrayBuffer binding's pointers and lengths (it may have been detached or resized). */
static int refresh(napi_env env, binding_t *b, const char *fn) {
  napi_value v;
  if (!b->state_shared) {
    if (napi_get_reference_value(env, b->refs[0], &v) != napi_ok || array_of(env, v, napi_int32_array, fn, "the bound state", &b->state, &b->state_bytes, NULL))
      return -1;
  }
  if (!b->bytes_shared) {
    if (napi_get_reference_value(env, b->refs[1], &v) != napi_ok || array_of(env, v, napi_uint8_array, fn, "the bound bytes", &b->bytes, &b->nbytes, NULL))
      return -1;
  }
  return 0;
}

/* (binding, stateOff, off, length, suffix, outOff) → 0 and the MAC, or -1 with an exception thrown. */
static int compute_at(napi_env env, napi_callback_info info, const char *fn, uint8_t **tagp, uint8_t mac32[32]) {
  size_t argc = 6;
  napi_value a[6];
  uint64_t so, off, len, sfx, to;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 6) return type_error(env, fn, "takes 6 arguments");
  binding_t *b = binding_of(env, a[0], fn);
  if (b == NULL || uint_of(env, a[1], MAX_SAFE, fn, "stateOffset", &so) || uint_of(env, a[2], MAX_SAFE, fn, "offset", &off) ||
      uint_of(env, a[3], MAX_SAFE, fn, "length", &len) || uint_of(env, a[4], MAX_U32, fn, "suffix", &sfx) ||
      uint_of(env, a[5], MAX_SAFE, fn, "tagOffset", &to))
    return -1;
  if ((!b->state_shared || !b->bytes_shared) && refresh(env, b, fn)) return -1;
  if (!fits(so, 16, b->state_bytes / 4)) return range_error(env, fn, "stateOffset + 16 words must lie within the bound state");
  if (!fits(off, len, b->nbytes)) return range_error(env, fn, "offset + length must lie within the bound bytes");
  if (!fits(to, 16, b->nbytes)) return range_error(env, fn, "tagOffset + 16 bytes must lie within the bound bytes");
  mac((const int32_t *)b->state + so, b->bytes + off, (size_t)len, (uint32_t)sfx, mac32);
  *tagp = b->bytes + to;
  return 0;
}

static napi_value tag_at(napi_env env, napi_callback_info info) {
  return tag_with(env, info, compute_at, "tagAt");
}

static napi_value verify_at(napi_env env, napi_callback_info info) {
  return verify_with(env, info, compute_at, "verifyAt");
}

/*
 * lockFd(fd) → 0, or the errno (EWOULDBLOCK: another open file holds it): an exclusive,
 * non-blocking flock(2) on an open file, for the per-agent state-directory lock of
 * PROTOCOL.md §3 (src/keys/statelock.ts). The kernel drops it when the last descriptor of that
 * open file is closed — at exit, SIGKILL included — so a crash never leaves it held.
 */
static napi_value lock_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1], r;
  uint64_t fd;
  int rc;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1) {
    type_error(env, "lockFd", "takes 1 argument");
    return NULL;
  }
  if (uint_of(env, a[0], 2147483647.0, "lockFd", "fd", &fd)) return NULL;
#ifdef _WIN32
  rc = ENOSYS;
#else
  do rc = flock((int)fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
  while (rc == EINTR);
#endif
  napi_create_int32(env, rc, &r);
  return r;
}

/* Set `exports[name]` to a function calling `cb` (shared with lane.c). */
void dtmesh_export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &f);
  napi_set_named_property(env, exports, name, f);
}

/* The native lane's exports (lane.c). */
void dtmesh_lane_init(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  bindings_t *bs = calloc(1, sizeof *bs);
  if (bs) napi_set_instance_data(env, bs, free_bindings, NULL);
  dtmesh_export_fn(env, exports, "bind", bind_);
  dtmesh_export_fn(env, exports, "unbind", unbind_);
  dtmesh_export_fn(env, exports, "tagAt", tag_at);
  dtmesh_export_fn(env, exports, "verifyAt", verify_at);
  dtmesh_export_fn(env, exports, "tag16", tag16);
  dtmesh_export_fn(env, exports, "verify16", verify16);
  dtmesh_export_fn(env, exports, "lockFd", lock_fd);
  dtmesh_lane_init(env, exports);
  return exports;
}
