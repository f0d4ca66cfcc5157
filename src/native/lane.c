/*
 * dtmesh native lane (ENGINE.md "Lanes: the socket stage, twice"): stages 1 and 5 of the
 * pipeline on a socket this addon opens itself, watched by one uv_poll_t on the event
 * loop of the thread that owns it (napi_get_uv_event_loop: the engine thread, or a socket
 * thread of `serve --sockets N`); no native thread is added.
 *
 *   readable → a bounded drain of recvmmsg(MSG_DONTWAIT|MSG_TRUNC) straight into the
 *   filling batch's slots of the SharedArrayBuffer ring (src/pipeline/layout.ts): the
 *   datagram bytes at the slot's datagram offset (the kernel's copy is the only copy),
 *   the true length (MSG_TRUNC: an over-long datagram keeps its length and is judged
 *   `malformed`, PROTOCOL.md §4 u1), the flags word (F_UNANSWERABLE for a source no reply
 *   can go to), and the kernel receive time (SO_TIMESTAMPNS, CLOCK_REALTIME) converted to
 *   the engine's clock (src/clock.ts nowUs, PROTOCOL.md §6) in the slot's time word.
 *   The source address stays here, per slot, for the REPLY. JS is called once per
 *   wake-up that filled anything, and once per batch that filled up — never per datagram.
 *
 *   send → one FIFO of batches (and own packets) in the order JS hands them over (= nonce
 *   order, PROTOCOL.md §3); sendmmsg of the slots marked F_SEND straight from their reply
 *   areas to the stored source addresses. EAGAIN keeps the FIFO and watches UV_WRITABLE;
 *   any other errno skips exactly that one message and counts `send_errors`
 *   (PROTOCOL.md §4: a send the kernel refuses is counted and the batch moves on).
 *   With `gso` (opt-in), consecutive REPLYs of one length to one address are one message
 *   the kernel cuts into those datagrams (UDP_SEGMENT); a GSO message it refuses goes
 *   again one REPLY per message, so refusals stay counted per datagram.
 *
 * Counters (received, overload, send_errors, recv_errors) are written into a Float64Array
 * the JS lane owns, so the books are exact at any moment without a call. Shutdown:
 * laneClose from JS, or an async cleanup hook at env teardown (worker terminate with the
 * socket open): poll stopped, fd closed, references dropped, uv handle closed.
 * Hot path: no allocation (every mmsghdr, iovec, address and control buffer is made at
 * attach); own packets (rare) are copied into a malloc'd queue entry.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define VLEN 64 /* messages per recvmmsg/sendmmsg call */
#define MAX_ROUNDS 4 /* recvmmsg calls per wake-up at most (a batch may fill mid-drain: the rest goes into the next) */
/*
 * Datagrams read into batches per wake-up, like libuv's own UDP read loop (32 per event).
 * Level-triggered: the loop comes back at once for the rest, after timers and pool
 * completions had their turn. A wake-up's datagrams go on as one partial batch, so this
 * also keeps partial batches below the engine's inlineBelow (64), verified on this thread;
 * measured (2-core VM, shared, 16 peers): 8 rounds × 64 per wake-up made 512-datagram
 * backlogs into pooled batches — receive→verdict p50 1.2–12 ms at 20–60 k/s, 0.4–16 % loss
 * at 60 k/s — where 32 per wake-up gave p50 31–43 µs at 20 k/s and no loss at 60 k/s.
 */
#define WAKE_BUDGET 32
#define CTRL_BYTES 64 /* room for one SCM_TIMESTAMPNS cmsg */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, kernel >= 4.18 */
#endif
#define GSO_MAX_BYTES 65507 /* one UDP payload at most (IPv4: 65535 − 20 − 8) */
#define GSO_MAX_SEGS 64 /* UDP_MAX_SEGMENTS of the kernels that brought UDP GSO (later ones allow more): one more is EINVAL */
_Static_assert(VLEN <= GSO_MAX_SEGS, "a pump call gathers at most VLEN REPLYs, so no GSO message can pass UDP_MAX_SEGMENTS");
#define GSO_CTRL_BYTES CMSG_SPACE(sizeof(uint16_t))
#define KEEP (-2)     /* onRecv result: keep filling the same batch */

/* Indices of the counters in the JS Float64Array (src/pipeline/native-lane.ts C_*). */
/* C_OWN_AT: engine-clock µs right before the sendto of the last own packet that left; C_OWN_N: own packets C is done with (left or refused);
 * C_OWN_REFUSED: own packets the kernel refused (at most one per pump: see pump); C_OWN_ERRNO: the errno of the last of them */
/* C_GSO_SENT: REPLYs that left inside UDP GSO messages (--gso) */
/* C_UNSTAMPED: datagrams that came without SCM_TIMESTAMPNS while kernel stamps are on (stamped with the clock at recvmmsg instead) */
enum { C_RECEIVED = 0, C_OVERLOAD = 1, C_SEND_ERRORS = 2, C_RECV_ERRORS = 3, C_OWN_AT = 4, C_OWN_N = 5, C_OWN_REFUSED = 6, C_OWN_ERRNO = 7, C_GSO_SENT = 8, C_UNSTAMPED = 9, C_WORDS = 10 };
/* Indices of the geometry numbers given at attach (src/pipeline/native-lane.ts G_*). */
enum { G_SLOTS, G_SLOT_BYTES, G_META_OFF, G_TIME_OFF, G_DATA_OFF, G_BATCHES, G_FIRST, G_OWNED, G_META_WORDS, G_M_LENGTH, G_M_FLAGS, G_F_SEND, G_F_UNANSWERABLE, G_WORDS };

typedef struct {
  int32_t b;  /* batch, or -1 for an own packet */
  int32_t next, count;
  int32_t checked; /* slots below this were scanned once: a REPLY length that does not fit is counted there, not again on a retry's re-scan */
  uint8_t *pkt; /* own packet copy */
  uint32_t pkt_len;
  struct sockaddr_in6 to;
  socklen_t tolen;
} qentry_t;

typedef struct {
  uv_poll_t poll;
  napi_env env;
  int fd, family, events, kernel_ts;
  int closed, handle_closed, finalized, attached;
  napi_async_cleanup_hook_handle cleanup;
  napi_ref ring_ref, counts_ref, recv_ref, sent_ref;
  napi_async_context actx;
  int has_actx;
  double *counts;
  double mono_offset_us; /* nowUs() − CLOCK_MONOTONIC µs, given at attach (measured in JS: clock.ts monoOffsetUs) */
  /* ring geometry */
  uint8_t *bytes;
  int32_t *ints;
  double *times;
  int32_t slots, slot_bytes, first, owned, meta_words, m_length, m_flags, f_send, f_unanswerable;
  size_t meta_word0, time_idx0, data_off;
  /* receive */
  int32_t filling, fill_count, unreported;
  uint32_t fill_gen; /* laneFill calls so far: one made while onRecv's microtasks ran wins over onRecv's answer */
  struct mmsghdr *rmsgs;
  struct iovec *riov;
  struct sockaddr_in6 *names;
  uint8_t *ctrl;
  struct mmsghdr *dmsgs;       /* VLEN: the discard array (no batch to fill) */
  struct sockaddr_in6 *dnames; /* VLEN */
  /* send */
  struct mmsghdr *smsgs; /* VLEN */
  struct iovec *siov;    /* VLEN */
  int32_t *sidx;         /* VLEN: each message's first slot */
  int32_t *slast;        /* VLEN: each message's last slot (more than sidx: a GSO message, --gso) */
  uint8_t *sctrl;        /* VLEN × GSO_CTRL_BYTES: each GSO message's UDP_SEGMENT cmsg */
  int gso;               /* coalesce equal-length REPLYs to one address into one UDP GSO message (opt-in; off after the kernel refuses GSO) */
  int32_t solo_until;    /* the head entry's slots below this leave one per message: a GSO message of them failed */
  qentry_t *q;
  int32_t qhead, qlen, qcap, done_unreported;
  int32_t fault_block, fault_refuse, fault_gso; /* laneTestFault: injected EAGAIN calls / EPERM messages / EIO GSO messages (tests only) */
} lane_t;

/* ---- errors -------------------------------------------------------------------------- */

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char m[128];
  napi_value code, msg, e, no;
  const char *name = uv_err_name(-err);
  snprintf(m, sizeof m, "%s %s", syscall, name);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, m, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &e);
  napi_create_int32(env, -err, &no);
  napi_set_named_property(env, e, "errno", no);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char m[160];
  snprintf(m, sizeof m, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *fn, const char *what) {
  char m[160];
  snprintf(m, sizeof m, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
  return NULL;
}

static int int_arg(napi_env env, napi_value v, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  return 0;
}

/* ---- clocks -------------------------------------------------------------------------- */

static double clock_us(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/*
 * CLOCK_REALTIME − CLOCK_MONOTONIC now, µs: the REALTIME read sandwiched between two
 * MONOTONIC reads, the tightest of up to SANDWICH_TRIES kept. One unsandwiched pair is
 * wrong by however long the thread was preempted between its two reads: on a loaded
 * 2-core machine that moved kernel stamps up to ~60 µs early, and the prober reported
 * RTTs below the wire's (negative ones clamped to 1 µs).
 */
#define SANDWICH_TRIES 4
#define SANDWICH_TIGHT_US 1.0
static double realtime_minus_mono(void) {
  double best_w = 1e300, off = 0;
  for (int i = 0; i < SANDWICH_TRIES; i++) {
    double a = clock_us(CLOCK_MONOTONIC), r = clock_us(CLOCK_REALTIME), b = clock_us(CLOCK_MONOTONIC);
    if (b - a < best_w) best_w = b - a, off = r - (a + b) / 2;
    if (best_w <= SANDWICH_TIGHT_US) break;
  }
  return off;
}

/* ---- lifetime ------------------------------------------------------------------------ */

/* The per-slot arrays and queued packets: nothing reads them once the lane is closed (freed then, not at GC). */
static void free_buffers(lane_t *l) {
  free(l->rmsgs);
  free(l->riov);
  free(l->names);
  free(l->ctrl);
  free(l->dmsgs);
  free(l->dnames);
  free(l->smsgs);
  free(l->siov);
  free(l->sidx);
  free(l->slast);
  free(l->sctrl);
  l->slast = NULL;
  l->sctrl = NULL;
  l->rmsgs = NULL;
  l->riov = NULL;
  l->names = NULL;
  l->ctrl = NULL;
  l->dmsgs = NULL;
  l->dnames = NULL;
  l->smsgs = NULL;
  l->siov = NULL;
  l->sidx = NULL;
  for (int32_t i = 0; i < l->qlen; i++) free(l->q[(l->qhead + i) % l->qcap].pkt);
  l->qlen = 0;
}

/* The struct itself: once the uv handle is closed and the JS handle object was collected (either order). */
static void free_lane(lane_t *l) {
  free_buffers(l);
  free(l->q);
  free(l);
}

static void on_handle_closed(uv_handle_t *h) {
  lane_t *l = (lane_t *)h->data;
  if (l->cleanup != NULL) {
    napi_async_cleanup_hook_handle c = l->cleanup;
    l->cleanup = NULL;
    napi_remove_async_cleanup_hook(c);
  }
  l->handle_closed = 1;
  if (l->finalized) free_lane(l);
}

/* Stop watching, close the fd, drop every reference; the uv handle closes asynchronously. Never calls JS. */
static void do_close(lane_t *l) {
  napi_env env = l->env;
  l->closed = 1;
  l->counts = NULL;
  uv_poll_stop(&l->poll);
  if (l->fd >= 0) {
    close(l->fd);
    l->fd = -1;
  }
  if (l->ring_ref) napi_delete_reference(env, l->ring_ref);
  if (l->counts_ref) napi_delete_reference(env, l->counts_ref);
  if (l->recv_ref) napi_delete_reference(env, l->recv_ref);
  if (l->sent_ref) napi_delete_reference(env, l->sent_ref);
  l->ring_ref = l->counts_ref = l->recv_ref = l->sent_ref = NULL;
  if (l->has_actx) napi_async_destroy(env, l->actx);
  l->has_actx = 0;
  free_buffers(l);
  uv_close((uv_handle_t *)&l->poll, on_handle_closed);
}

/* Env teardown (worker terminate, process exit) with the socket still open. */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  lane_t *l = (lane_t *)arg;
  (void)handle;
  if (!l->closed) do_close(l); /* on_handle_closed removes the hook: teardown goes on */
  /* else a JS close is in progress: its uv_close callback removes the hook */
}

static void on_finalize(napi_env env, void *data, void *hint) {
  lane_t *l = (lane_t *)data;
  (void)env;
  (void)hint;
  l->finalized = 1;
  if (!l->closed) do_close(l); /* dropped without close(): close it now */
  else if (l->handle_closed) free_lane(l);
}

static lane_t *lane_of(napi_env env, napi_value v, const char *fn) {
  lane_t *l = NULL;
  if (napi_unwrap(env, v, (void **)&l) != napi_ok || l == NULL) {
    throw_type(env, fn, "not a native lane handle");
    return NULL;
  }
  return l;
}

/* ---- addresses ----------------------------------------------------------------------- */

#define HOST_MAX 64 /* room for an IPv6 literal (45) + '%' + an interface name (IF_NAMESIZE 16) and the NUL */
#define ADDR_TXT (INET6_ADDRSTRLEN + 1 + IF_NAMESIZE)

/*
 * `host` — an IP literal as Node's net.isIP takes it — and `port` as a socket address of the lane's
 * family: family 4 a dotted quad; family 6 an IPv6 literal with an optional %scope, an interface name
 * (if_nametoindex) or its number, into sin6_scope_id as Node's dgram does (uv_ip6_addr; the kernel
 * uses it for link-local addresses and ignores it for the rest), or a dotted quad as ::ffff:a.b.c.d
 * (the dual-stack socket). 0; -1 when it is not such a literal (or longer than HOST_MAX − 1: it may
 * have been cut); -2 when the scope names no interface here. Without a '%', no syscall.
 */
static int parse_addr(const char *host, size_t hl, int family, int port, struct sockaddr_in6 *out, socklen_t *len) {
  char ip[HOST_MAX];
  const char *pct = strchr(host, '%');
  size_t il = pct != NULL ? (size_t)(pct - host) : hl;
  memset(out, 0, sizeof *out);
  if (hl >= HOST_MAX - 1 || il >= sizeof ip) return -1;
  memcpy(ip, host, il);
  ip[il] = 0;
  if (family == 4) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)out;
    if (pct != NULL || inet_pton(AF_INET, ip, &s4->sin_addr) != 1) return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof *s4;
    return 0;
  }
  out->sin6_family = AF_INET6;
  out->sin6_port = htons((uint16_t)port);
  *len = sizeof *out;
  if (inet_pton(AF_INET6, ip, &out->sin6_addr) != 1) {
    struct in_addr v4;
    if (pct != NULL || inet_pton(AF_INET, ip, &v4) != 1) return -1;
    out->sin6_addr.s6_addr[10] = 0xff; /* ::ffff:a.b.c.d on the dual-stack socket */
    out->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
    return 0;
  }
  if (pct == NULL) return 0;
  const char *zone = pct + 1;
  if (*zone == 0) return -1; /* "fe80::1%": net.isIP says no too */
  unsigned idx = if_nametoindex(zone);
  if (idx == 0) {
    char *end = NULL;
    unsigned long v;
    errno = 0;
    if (zone[0] < '0' || zone[0] > '9') return -2;
    v = strtoul(zone, &end, 10);
    if (*end != 0 || errno != 0 || v == 0 || v > UINT32_MAX) return -2;
    idx = (unsigned)v; /* a numeric scope (RFC 4007 §11.2): taken as given, the kernel checks it */
  }
  out->sin6_scope_id = idx;
  return 0;
}

/*
 * `sa` as text the way Node writes an address (rinfo.address, socket.address()): a link-local IPv6
 * address with its scope as %interface (if_indextoname; the number when the interface is gone), so a
 * source address goes back to laneSendTo as it came. Returns the port (0 for another family).
 */
static int format_addr(const struct sockaddr_in6 *sa, char txt[ADDR_TXT]) {
  txt[0] = 0;
  if (sa->sin6_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, txt, ADDR_TXT);
    return ntohs(s4->sin_port);
  }
  if (sa->sin6_family != AF_INET6) return 0;
  inet_ntop(AF_INET6, &sa->sin6_addr, txt, INET6_ADDRSTRLEN);
  if (IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr) && sa->sin6_scope_id > 0) {
    size_t n = strlen(txt);
    char name[IF_NAMESIZE];
    if (if_indextoname(sa->sin6_scope_id, name) != NULL) snprintf(txt + n, ADDR_TXT - n, "%%%s", name);
    else snprintf(txt + n, ADDR_TXT - n, "%%%u", (unsigned)sa->sin6_scope_id);
  }
  return ntohs(sa->sin6_port);
}

/* ---- calling JS (once per wake-up or full batch) -------------------------------------- */

/* Call `ref` with two int32s; returns its int32 result or `dflt`. An exception goes to 'uncaughtException'. */
static int32_t call_js(lane_t *l, napi_ref ref, int32_t a, int32_t b, int32_t dflt) {
  napi_env env = l->env;
  napi_handle_scope scope;
  napi_value fn, global, argv[2], res;
  int32_t out = dflt;
  if (ref == NULL || napi_open_handle_scope(env, &scope) != napi_ok) return dflt;
  napi_get_reference_value(env, ref, &fn);
  napi_get_global(env, &global);
  napi_create_int32(env, a, &argv[0]);
  napi_create_int32(env, b, &argv[1]);
  if (fn != NULL && napi_make_callback(env, l->actx, global, fn, 2, argv, &res) == napi_ok) {
    if (napi_get_value_int32(env, res, &out) != napi_ok) out = dflt;
  } else {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
  return out;
}

/* ---- stage 1: receive ---------------------------------------------------------------- */

/* PROTOCOL.md §4 u1: a source no reply can go to (src/pipeline/udp.ts unanswerable, on the raw address). */
static int unanswerable(const struct sockaddr_in6 *sa, socklen_t len) {
  if (sa->sin6_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    uint8_t a0 = ((const uint8_t *)&s4->sin_addr)[0];
    return s4->sin_port == 0 || a0 == 0 || a0 >= 224;
  }
  if (sa->sin6_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const uint8_t *a = sa->sin6_addr.s6_addr;
    if (sa->sin6_port == 0) return 1;
    if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr)) return a[12] == 0 || a[12] >= 224;
    if (IN6_IS_ADDR_UNSPECIFIED(&sa->sin6_addr)) return 1;
    return a[0] == 0xff;
  }
  return 1;
}

/* The kernel receive stamp of `h` in µs CLOCK_REALTIME, or -1. */
static double kernel_stamp(struct msghdr *h) {
  struct cmsghdr *c;
  for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
    }
  }
  return -1;
}

/* Apply JS's answer: KEEP, -1 (shed from now on) or a fresh batch of this lane. */
static void set_filling(lane_t *l, int32_t r) {
  if (r == KEEP && l->filling >= 0 && l->fill_count < l->slots) return;
  if (r >= l->first && r < l->first + l->owned) {
    l->filling = r;
  } else l->filling = -1;
  l->fill_count = 0;
  l->unreported = 0;
}

/* Hand the filling batch to JS (full, or the end of a wake-up). */
static void report_recv(lane_t *l) {
  uint32_t gen = l->fill_gen;
  int32_t r = call_js(l, l->recv_ref, l->filling, l->fill_count, KEEP);
  if (l->closed) return;
  l->unreported = 0;
  if (gen == l->fill_gen) set_filling(l, r);
  else if (l->filling >= 0 && l->fill_count >= l->slots) l->filling = -1; /* never loop on a full batch */
}

static void drain(lane_t *l) {
  int budget = WAKE_BUDGET;
  for (int round = 0; round < MAX_ROUNDS && budget > 0 && !l->closed; round++) {
    int32_t b = l->filling;
    int want, n;
    if (b >= 0) {
      int32_t k0 = (b - l->first) * l->slots + l->fill_count;
      want = l->slots - l->fill_count;
      if (want > budget) want = budget;
      for (int j = 0; j < want; j++) {
        struct msghdr *h = &l->rmsgs[k0 + j].msg_hdr;
        h->msg_namelen = sizeof(struct sockaddr_in6);
        h->msg_controllen = l->kernel_ts ? CTRL_BYTES : 0;
        h->msg_flags = 0;
      }
      do n = recvmmsg(l->fd, &l->rmsgs[k0], (unsigned)want, MSG_DONTWAIT | MSG_TRUNC, NULL);
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) l->counts[C_RECV_ERRORS]++;
        break;
      }
      if (n == 0) break;
      double mono = clock_us(CLOCK_MONOTONIC) + l->mono_offset_us; /* nowUs() now */
      double adj = l->kernel_ts ? l->mono_offset_us - realtime_minus_mono() : 0; /* REALTIME stamp → nowUs() */
      int32_t s0 = b * l->slots + l->fill_count;
      for (int j = 0; j < n; j++) {
        struct mmsghdr *m = &l->rmsgs[k0 + j];
        size_t mi = l->meta_word0 + (size_t)(s0 + j) * (size_t)l->meta_words;
        double t = -1;
        l->ints[mi + (size_t)l->m_length] = (int32_t)(m->msg_len > 0x7fffffff ? 0x7fffffff : m->msg_len);
        l->ints[mi + (size_t)l->m_flags] = unanswerable(&l->names[k0 + j], m->msg_hdr.msg_namelen) ? l->f_unanswerable : 0;
        if (l->kernel_ts && (t = kernel_stamp(&m->msg_hdr)) < 0) l->counts[C_UNSTAMPED]++; /* the lane says "kernel": never silently not */
        l->times[l->time_idx0 + (size_t)(s0 + j)] = t >= 0 ? t + adj : mono;
      }
      l->counts[C_RECEIVED] += n;
      l->fill_count += n;
      l->unreported = 1;
      budget -= n;
      if (l->fill_count == l->slots) report_recv(l);
    } else {
      want = VLEN;
      for (int j = 0; j < VLEN; j++) {
        l->dmsgs[j].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
        l->dmsgs[j].msg_hdr.msg_controllen = 0;
      }
      do n = recvmmsg(l->fd, l->dmsgs, VLEN, MSG_DONTWAIT | MSG_TRUNC, NULL);
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) l->counts[C_RECV_ERRORS]++;
        break;
      }
      l->counts[C_RECEIVED] += n;
      l->counts[C_OVERLOAD] += n; /* every batch of this lane in flight (or stopping): shed, counted */
    }
    if (n < want) break; /* the socket is drained */
  }
  if (!l->closed && l->unreported && l->filling >= 0) report_recv(l);
}

/* ---- stage 5: send ------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(lane_t *l) {
  int want = UV_READABLE | (l->qlen > 0 ? UV_WRITABLE : 0);
  if (l->closed || !l->attached || want == l->events) return;
  l->events = want;
  uv_poll_start(&l->poll, want, on_poll);
}

static void pop_done(lane_t *l) {
  qentry_t *e = &l->q[l->qhead];
  free(e->pkt);
  e->pkt = NULL;
  l->qhead = (l->qhead + 1) % l->qcap;
  l->qlen--;
  l->solo_until = 0;
  l->done_unreported++;
}

/* Send what the FIFO holds, in order, until it is empty or the socket would block. */
static void pump(lane_t *l) {
  while (l->qlen > 0 && !l->closed) {
    qentry_t *e = &l->q[l->qhead];
    if (e->b < 0) {
      ssize_t r;
      if (l->fault_block > 0) l->fault_block--, r = -1, errno = EAGAIN;
      else if (l->fault_refuse > 0) l->fault_refuse--, r = -1, errno = EPERM;
      else {
        double at = clock_us(CLOCK_MONOTONIC) + l->mono_offset_us; /* the send time of MEASUREMENT.md §1: at the call */
        do r = sendto(l->fd, e->pkt, e->pkt_len, MSG_DONTWAIT, (struct sockaddr *)&e->to, e->tolen);
        while (r < 0 && errno == EINTR);
        if (r >= 0) l->counts[C_OWN_AT] = at;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      int refused = r < 0;
      if (refused) l->counts[C_SEND_ERRORS]++, l->counts[C_OWN_REFUSED]++, l->counts[C_OWN_ERRNO] = errno;
      l->counts[C_OWN_N]++; /* left, or refused for good: either way it is done */
      pop_done(l);
      /* a refused own packet ends this pump: JS learns of it (laneSendTo's return, laneSend's, or
       * the sent callback) before any other own packet is done, so it is the last own packet of that
       * report — exact, with one counter. The rest follows when writable (update_poll watches while
       * qlen > 0). */
      if (refused) return;
      continue;
    }
    /* Messages from the slots marked F_SEND, in slot order. With --gso, consecutive replies of one
     * length to one address become one message: its iovecs are the reply areas, a UDP_SEGMENT cmsg
     * makes the kernel cut it into those very datagrams, in order (one trip down the stack instead of
     * one per reply). Injected faults (tests) keep one datagram per message, their exact meaning. */
    int gso = l->gso && l->fault_block == 0 && l->fault_refuse == 0;
    int n = 0, nio = 0;
    int32_t i = e->next;
    size_t base = (size_t)e->b * (size_t)l->slots;
    for (; i < e->count && nio < VLEN; i++) {
      size_t s = base + (size_t)i;
      size_t mi = l->meta_word0 + s * (size_t)l->meta_words;
      if ((l->ints[mi + (size_t)l->m_flags] & l->f_send) == 0) continue;
      int32_t len = l->ints[mi + (size_t)l->m_length];
      int32_t k = (e->b - l->first) * l->slots + i;
      if (len < 0 || len > l->slot_bytes) {
        /* never sent: the reply does not fit its area; counted once, though a retry (would-block, a partial
         * sendmmsg, the GSO fallback) scans again from its first message */
        if (i >= e->checked) l->counts[C_SEND_ERRORS]++, e->checked = i + 1;
        continue;
      }
      struct iovec *io = &l->siov[nio++];
      io->iov_base = l->bytes + l->data_off + (s * 2 + 1) * (size_t)l->slot_bytes;
      io->iov_len = (size_t)len;
      socklen_t nl = l->rmsgs[k].msg_hdr.msg_namelen;
      if (gso && n > 0 && l->sidx[n - 1] >= l->solo_until && len > 0) {
        struct msghdr *h = &l->smsgs[n - 1].msg_hdr;
        if (h->msg_iov[0].iov_len == (size_t)len && (h->msg_iovlen + 1) * (size_t)len <= GSO_MAX_BYTES && h->msg_namelen == nl &&
            memcmp(h->msg_name, &l->names[k], nl) == 0) {
          h->msg_iovlen++;
          l->slast[n - 1] = i;
          continue;
        }
      }
      memset(&l->smsgs[n].msg_hdr, 0, sizeof l->smsgs[n].msg_hdr);
      l->smsgs[n].msg_hdr.msg_iov = io;
      l->smsgs[n].msg_hdr.msg_iovlen = 1;
      l->smsgs[n].msg_hdr.msg_name = &l->names[k];
      l->smsgs[n].msg_hdr.msg_namelen = nl;
      l->sidx[n] = i;
      l->slast[n] = i;
      n++;
    }
    if (n == 0) {
      pop_done(l);
      continue;
    }
    for (int m = 0; m < n; m++) {
      struct msghdr *h = &l->smsgs[m].msg_hdr;
      if (h->msg_iovlen < 2) continue;
      uint8_t *c0 = l->sctrl + (size_t)m * GSO_CTRL_BYTES;
      memset(c0, 0, GSO_CTRL_BYTES);
      h->msg_control = c0;
      h->msg_controllen = GSO_CTRL_BYTES;
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = IPPROTO_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = (uint16_t)h->msg_iov[0].iov_len;
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
    int r;
    if (l->fault_block > 0) l->fault_block--, r = -1, errno = EAGAIN;
    else if (l->fault_refuse > 0) l->fault_refuse--, r = -1, errno = EPERM;
    else if (l->fault_gso > 0 && l->smsgs[0].msg_hdr.msg_iovlen > 1) l->fault_gso--, r = -1, errno = EIO;
    else {
      do r = sendmmsg(l->fd, l->smsgs, (unsigned)n, MSG_DONTWAIT);
      while (r < 0 && errno == EINTR);
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        e->next = l->sidx[0];
        return;
      }
      if (l->smsgs[0].msg_hdr.msg_iovlen > 1) {
        /* a GSO message failed: its replies go again one per message, each refused or not on its own
         * (the books stay per datagram); where the kernel or the device cannot do UDP GSO at all, off for good */
        if (errno == EIO || errno == ENOPROTOOPT || errno == EOPNOTSUPP) l->gso = 0;
        l->solo_until = l->slast[0] + 1;
        e->next = l->sidx[0];
        continue;
      }
      l->counts[C_SEND_ERRORS]++; /* refused: skip exactly this one message (kernel 728ffb86) */
      e->next = l->sidx[0] + 1;
      continue;
    }
    for (int m = 0; m < r; m++)
      if (l->smsgs[m].msg_hdr.msg_iovlen > 1) l->counts[C_GSO_SENT] += (double)l->smsgs[m].msg_hdr.msg_iovlen;
    e->next = r == n ? i : l->sidx[r];
  }
}

static int push(lane_t *l, qentry_t *e) {
  if (l->qlen == l->qcap) {
    int32_t cap = l->qcap * 2;
    qentry_t *q = malloc(sizeof *q * (size_t)cap);
    if (q == NULL) return -1;
    for (int32_t i = 0; i < l->qlen; i++) q[i] = l->q[(l->qhead + i) % l->qcap];
    free(l->q);
    l->q = q;
    l->qhead = 0;
    l->qcap = cap;
  }
  l->q[(l->qhead + l->qlen) % l->qcap] = *e;
  l->qlen++;
  return 0;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  lane_t *l = (lane_t *)h->data;
  if (l->closed) return;
  if (status < 0) {
    /* libuv stopped the handle on POLLERR: clear the socket's pending error and watch again, never go deaf */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (l->counts) l->counts[C_RECV_ERRORS]++;
    getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    uv_poll_start(&l->poll, l->events, on_poll);
    return;
  }
  if (events & UV_WRITABLE) {
    pump(l);
    update_poll(l);
    if (l->done_unreported > 0 && !l->closed) {
      int32_t n = l->done_unreported;
      l->done_unreported = 0;
      call_js(l, l->sent_ref, n, 0, 0);
    }
  }
  if ((events & UV_READABLE) && !l->closed) drain(l);
}

/* ---- exports ------------------------------------------------------------------------- */

/*
 * laneOpen(host IP literal (IPv6: %scope allowed, parse_addr), port, family 4|6, reusePort, recvBufferBytes,
 * sendBufferBytes (0 = default), ttl (-1 = default), dscp (-1 = default), timestamps) → handle. Throws an Error
 * whose `code` is the errno name (EADDRINUSE …; ENODEV for a %scope that names no interface) and whose
 * `syscall` is in the message.
 */
static napi_value lane_open(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value a[10], obj;
  char host[HOST_MAX];
  size_t hl = 0;
  int64_t port, fam, rb, sb, ttl, dscp;
  bool reuse = false, ts = false, gso = false;
  const char *fn = "laneOpen";
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 10) return throw_type(env, fn, "takes 10 arguments");
  if (napi_get_value_string_utf8(env, a[0], host, sizeof host, &hl) != napi_ok) return throw_type(env, fn, "host must be a string");
  if (int_arg(env, a[1], 0, 65535, &port) || int_arg(env, a[2], 4, 6, &fam) || (fam != 4 && fam != 6) || int_arg(env, a[4], 0, 1 << 30, &rb) ||
      int_arg(env, a[5], 0, 1 << 30, &sb) || int_arg(env, a[6], -1, 255, &ttl) || int_arg(env, a[7], -1, 63, &dscp))
    return throw_range(env, fn, "port, family, buffer sizes, ttl or dscp out of range");
  napi_get_value_bool(env, a[3], &reuse);
  napi_get_value_bool(env, a[8], &ts);
  napi_get_value_bool(env, a[9], &gso);
  struct sockaddr_in6 sa;
  socklen_t salen;
  int pr = parse_addr(host, hl, (int)fam, (int)port, &sa, &salen);
  if (pr == -2) return throw_errno(env, ENODEV, "if_nametoindex"); /* a %scope that names no interface here */
  if (pr != 0 || (fam == 6 && strchr(host, ':') == NULL)) return throw_type(env, fn, fam == 4 ? "host must be an IPv4 literal" : "host must be an IPv6 literal");
  int fd = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1, zero = 0, err = 0;
  const char *call = NULL;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) err = errno, call = "setsockopt SO_REUSEPORT";
  if (!err && fam == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* dual-stack, as dgram */
  if (!err && rb > 0) {
    int v = (int)rb;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v); /* capped by rmem_max */
  }
  if (!err && sb > 0) {
    int v = (int)sb;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  }
  if (!err && ttl >= 0) {
    int v = (int)ttl;
    if (fam == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v) != 0) err = errno, call = "setsockopt IPV6_UNICAST_HOPS";
    if (!err && setsockopt(fd, IPPROTO_IP, IP_TTL, &v, sizeof v) != 0 && fam == 4) err = errno, call = "setsockopt IP_TTL"; /* v6: for mapped v4 peers */
  }
  if (!err && dscp >= 0) {
    int v = (int)dscp << 2; /* DSCP is the upper 6 bits of TOS / traffic class (RFC 2474) */
    if (fam == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v) != 0) err = errno, call = "setsockopt IPV6_TCLASS";
    if (!err && setsockopt(fd, IPPROTO_IP, IP_TOS, &v, sizeof v) != 0 && fam == 4) err = errno, call = "setsockopt IP_TOS";
  }
  int kts = 0;
  if (!err && ts) kts = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0;
  /* UDP GSO where asked and the kernel has it (>= 4.18: the option exists; 0 = no socket-wide segmenting, each message says its own) */
  int gso_ok = 0;
  if (!err && gso) gso_ok = setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  if (!err && bind(fd, (struct sockaddr *)&sa, salen) != 0) err = errno, call = "bind";
  if (err) {
    close(fd);
    return throw_errno(env, err, call);
  }
  lane_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "laneOpen");
  }
  l->env = env;
  l->fd = fd;
  l->family = (int)fam;
  l->kernel_ts = kts;
  l->gso = gso_ok;
  l->filling = -1;
  l->qcap = 16;
  l->q = calloc((size_t)l->qcap, sizeof *l->q);
  uv_loop_t *loop = NULL;
  if (l->q == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init_socket(loop, &l->poll, fd) != 0) {
    close(fd);
    free(l->q);
    free(l);
    return throw_errno(env, ENOMEM, "uv_poll_init_socket");
  }
  l->poll.data = l;
  napi_create_object(env, &obj);
  if (napi_wrap(env, obj, l, on_finalize, NULL, NULL) != napi_ok) {
    l->finalized = 1;
    do_close(l);
    return throw_type(env, fn, "cannot wrap the handle");
  }
  napi_add_async_cleanup_hook(env, on_env_cleanup, l, &l->cleanup);
  return obj;
}

/* laneInfo(h) → [address, port, effective receive buffer bytes, kernel timestamps 0|1, effective send buffer bytes,
 * TTL / hop limit and DSCP as the kernel holds them for this socket (getsockopt: what --ttl / --dscp set, else the defaults),
 * UDP GSO for REPLYs 0|1 (asked for and possible: on until the kernel refuses a GSO send outright)]. */
static napi_value lane_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1], arr, v;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1) return throw_type(env, "laneInfo", "takes 1 argument");
  lane_t *l = lane_of(env, a[0], "laneInfo");
  if (l == NULL) return NULL;
  if (l->closed) return throw_range(env, "laneInfo", "the lane is closed");
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  char txt[ADDR_TXT] = "";
  int port = 0, rb = 0, sb = 0;
  socklen_t il = sizeof rb;
  memset(&sa, 0, sizeof sa);
  if (getsockname(l->fd, (struct sockaddr *)&sa, &len) == 0) port = format_addr(&sa, txt);
  getsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &rb, &il);
  il = sizeof sb;
  getsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &sb, &il);
  int ttl = -1, tos = -1;
  int v6 = sa.sin6_family == AF_INET6;
  il = sizeof ttl;
  getsockopt(l->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_UNICAST_HOPS : IP_TTL, &ttl, &il);
  il = sizeof tos;
  getsockopt(l->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS, &tos, &il);
  napi_create_array_with_length(env, 8, &arr);
  napi_create_string_utf8(env, txt, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_int32(env, port, &v);
  napi_set_element(env, arr, 1, v);
  napi_create_int32(env, rb, &v);
  napi_set_element(env, arr, 2, v);
  napi_create_int32(env, l->kernel_ts, &v);
  napi_set_element(env, arr, 3, v);
  napi_create_int32(env, sb, &v);
  napi_set_element(env, arr, 4, v);
  napi_create_int32(env, ttl, &v);
  napi_set_element(env, arr, 5, v);
  napi_create_int32(env, tos < 0 ? -1 : tos >> 2, &v); /* DSCP: the upper 6 bits (RFC 2474) */
  napi_set_element(env, arr, 6, v);
  napi_create_int32(env, l->gso, &v);
  napi_set_element(env, arr, 7, v);
  return arr;
}

/*
 * laneAttach(h, bytes Uint8Array over the ring's SharedArrayBuffer, geometry Int32Array
 * (G_*, read here only), counts Float64Array over a SharedArrayBuffer (C_*; written until close), onRecv(b, count) → KEEP | -1 | fresh batch,
 * onSent(n), monoOffsetUs): every offset is checked against the ring once here; then the poll
 * starts. Throws (attaching nothing) on an argument it cannot use.
 */
static napi_value lane_attach(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value a[7], ab, name;
  const char *fn = "laneAttach";
  napi_typedarray_type t;
  size_t n, off;
  void *d;
  bool plain = false;
  double mono_offset;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 7) return throw_type(env, fn, "takes 7 arguments");
  lane_t *l = lane_of(env, a[0], fn);
  if (l == NULL) return NULL;
  if (l->closed || l->attached) return throw_range(env, fn, "the lane is closed or already attached");
  if (napi_get_typedarray_info(env, a[1], &t, &n, &d, &ab, &off) != napi_ok || t != napi_uint8_array || d == NULL) return throw_type(env, fn, "bytes must be a Uint8Array");
  napi_is_arraybuffer(env, ab, &plain);
  if (plain) return throw_type(env, fn, "bytes must be over a SharedArrayBuffer"); /* a plain one could be detached */
  if (off != 0 || ((uintptr_t)d & 7) != 0) return throw_range(env, fn, "bytes must start at the buffer's start");
  uint8_t *bytes = d;
  size_t nbytes = n;
  int32_t *g;
  if (napi_get_typedarray_info(env, a[2], &t, &n, &d, &ab, &off) != napi_ok || t != napi_int32_array || n < G_WORDS) return throw_type(env, fn, "geometry must be an Int32Array of the layout numbers");
  g = d;
  double *counts;
  if (napi_get_typedarray_info(env, a[3], &t, &n, &d, &ab, &off) != napi_ok || t != napi_float64_array || n < C_WORDS) return throw_type(env, fn, "counts must be a Float64Array");
  plain = false;
  napi_is_arraybuffer(env, ab, &plain);
  /* C writes the counters on every wake-up until close: over a plain ArrayBuffer, a transfer (postMessage, structuredClone)
   * detaches it and GC frees the memory under C's pointer; a SharedArrayBuffer cannot be detached */
  if (plain) return throw_type(env, fn, "counts must be over a SharedArrayBuffer");
  counts = d;
  napi_valuetype vt1, vt2;
  napi_typeof(env, a[4], &vt1);
  napi_typeof(env, a[5], &vt2);
  if (vt1 != napi_function || vt2 != napi_function) return throw_type(env, fn, "onRecv and onSent must be functions");
  if (napi_get_value_double(env, a[6], &mono_offset) != napi_ok) return throw_type(env, fn, "monoOffsetUs must be a number");
  /* geometry, checked as ranges on 64-bit integers (no product can wrap: every factor < 2^31) */
  int64_t slots = g[G_SLOTS], sbytes = g[G_SLOT_BYTES], batches = g[G_BATCHES], first = g[G_FIRST], owned = g[G_OWNED], mw = g[G_META_WORDS];
  int64_t mo = g[G_META_OFF], to = g[G_TIME_OFF], dof = g[G_DATA_OFF];
  int64_t tot = slots * batches;
  if (slots < 1 || sbytes < 1 || batches < 1 || first < 0 || owned < 1 || first + owned > batches || mw < 1 || g[G_M_LENGTH] < 0 ||
      g[G_M_LENGTH] >= mw || g[G_M_FLAGS] < 0 || g[G_M_FLAGS] >= mw || mo < 0 || to < 0 || dof < 0 || (mo & 3) || (to & 7) ||
      mo + tot * mw * 4 > (int64_t)nbytes || to + tot * 8 > (int64_t)nbytes || dof + tot * 2 * sbytes > (int64_t)nbytes || tot > (1 << 26))
    return throw_range(env, fn, "the layout does not fit the ring");
  size_t ks = (size_t)(owned * slots);
  l->rmsgs = calloc(ks, sizeof *l->rmsgs);
  l->riov = calloc(ks, sizeof *l->riov);
  l->names = calloc(ks, sizeof *l->names);
  l->ctrl = calloc(ks, CTRL_BYTES);
  l->dmsgs = calloc(VLEN, sizeof *l->dmsgs);
  l->dnames = calloc(VLEN, sizeof *l->dnames);
  l->smsgs = calloc(VLEN, sizeof *l->smsgs);
  l->siov = calloc(VLEN, sizeof *l->siov);
  l->sidx = calloc(VLEN, sizeof *l->sidx);
  l->slast = calloc(VLEN, sizeof *l->slast);
  l->sctrl = calloc(VLEN, GSO_CTRL_BYTES);
  if (!l->rmsgs || !l->riov || !l->names || !l->ctrl || !l->dmsgs || !l->dnames || !l->smsgs || !l->siov || !l->sidx || !l->slast || !l->sctrl) {
    int32_t qlen = l->qlen;
    l->qlen = 0;
    free_buffers(l); /* nothing queued yet: a lane is attached before it sends */
    l->qlen = qlen;
    return throw_errno(env, ENOMEM, fn);
  }
  l->bytes = bytes;
  l->ints = (int32_t *)(void *)bytes;
  l->times = (double *)(void *)bytes;
  l->slots = (int32_t)slots;
  l->slot_bytes = (int32_t)sbytes;
  l->first = (int32_t)first;
  l->owned = (int32_t)owned;
  l->meta_words = (int32_t)mw;
  l->m_length = g[G_M_LENGTH];
  l->m_flags = g[G_M_FLAGS];
  l->f_send = g[G_F_SEND];
  l->f_unanswerable = g[G_F_UNANSWERABLE];
  l->meta_word0 = (size_t)(mo / 4);
  l->time_idx0 = (size_t)(to / 8);
  l->data_off = (size_t)dof;
  for (size_t k = 0; k < ks; k++) {
    size_t s = (size_t)first * (size_t)slots + k;
    l->riov[k].iov_base = bytes + l->data_off + s * 2 * (size_t)sbytes;
    l->riov[k].iov_len = (size_t)sbytes;
    l->rmsgs[k].msg_hdr.msg_iov = &l->riov[k];
    l->rmsgs[k].msg_hdr.msg_iovlen = 1;
    l->rmsgs[k].msg_hdr.msg_name = &l->names[k];
    l->rmsgs[k].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
    l->rmsgs[k].msg_hdr.msg_control = l->ctrl + k * CTRL_BYTES;
  }
  for (int j = 0; j < VLEN; j++) {
    l->dmsgs[j].msg_hdr.msg_name = &l->dnames[j]; /* discard: iovlen 0, MSG_TRUNC, no payload copy */
  }
  l->mono_offset_us = mono_offset;
  l->counts = counts;
  napi_create_reference(env, a[1], 1, &l->ring_ref);
  napi_create_reference(env, a[3], 1, &l->counts_ref);
  napi_create_reference(env, a[4], 1, &l->recv_ref);
  napi_create_reference(env, a[5], 1, &l->sent_ref);
  napi_create_string_utf8(env, "dtmesh:lane", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, a[0], name, &l->actx) == napi_ok) l->has_actx = 1;
  l->attached = 1;
  l->events = UV_READABLE;
  uv_poll_start(&l->poll, UV_READABLE, on_poll);
  return NULL;
}

/* laneFill(h, b): fill batch b (of this lane) from slot 0 from now on; -1 = none (arrivals are `overload`). Not from inside onRecv. */
static napi_value lane_fill(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  int64_t b;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2) return throw_type(env, "laneFill", "takes 2 arguments");
  lane_t *l = lane_of(env, a[0], "laneFill");
  if (l == NULL) return NULL;
  if (int_arg(env, a[1], -1, INT32_MAX, &b) || (b >= 0 && (b < l->first || b >= l->first + l->owned))) return throw_range(env, "laneFill", "b must be -1 or a batch of this lane");
  if (!l->closed && l->attached) {
    l->fill_gen++;
    set_filling(l, (int32_t)b);
  }
  return NULL;
}

static napi_value done_count(napi_env env, lane_t *l) {
  napi_value r;
  int32_t n = l->done_unreported;
  l->done_unreported = 0;
  napi_create_int32(env, n, &r);
  return r;
}

/* laneSend(h, b, count) → FIFO entries completed by this call (oldest first): batch b's F_SEND slots among its first `count`, in slot order. */
static napi_value lane_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  int64_t b, count;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 3) return throw_type(env, "laneSend", "takes 3 arguments");
  lane_t *l = lane_of(env, a[0], "laneSend");
  if (l == NULL) return NULL;
  if (!l->attached || int_arg(env, a[1], l->first, l->first + l->owned - 1, &b) || int_arg(env, a[2], 0, l->slots, &count))
    return throw_range(env, "laneSend", "b must be a batch of this attached lane and count at most its slots");
  if (!l->closed) {
    qentry_t e;
    memset(&e, 0, sizeof e);
    e.b = (int32_t)b;
    e.count = (int32_t)count;
    if (push(l, &e) != 0) l->done_unreported++, l->counts[C_SEND_ERRORS] += 1; /* out of memory: the batch moves on */
    else if (l->qlen == 1) pump(l);
    update_poll(l);
  } else l->done_unreported++;
  return done_count(env, l);
}

/*
 * laneSendTo(h, buf, off, len, host IP literal (IPv6: %scope allowed, parse_addr), port) → FIFO entries
 * completed by this call, or -1 when the host is not an address of the socket's family or its %scope
 * names no interface (nothing queued). The bytes are copied.
 * Throws a RangeError before laneAttach (like laneSend).
 */
static napi_value lane_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6], r;
  int64_t off, len, port;
  char host[HOST_MAX];
  size_t hl = 0, n = 0;
  void *d = NULL;
  const char *fn = "laneSendTo";
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 6) return throw_type(env, fn, "takes 6 arguments");
  lane_t *l = lane_of(env, a[0], fn);
  if (l == NULL) return NULL;
  /* before laneAttach there are no counters to write and no poll to wait for writable with: refuse, as laneSend does */
  if (!l->attached && !l->closed) return throw_range(env, fn, "the lane is not attached yet (laneAttach first)");
  if (napi_get_buffer_info(env, a[1], &d, &n) != napi_ok) return throw_type(env, fn, "buf must be a Buffer");
  if (int_arg(env, a[2], 0, (int64_t)n, &off) || int_arg(env, a[3], 0, (int64_t)n - off, &len) || int_arg(env, a[5], 1, 65535, &port))
    return throw_range(env, fn, "offset, length or port out of range");
  if (napi_get_value_string_utf8(env, a[4], host, sizeof host, &hl) != napi_ok) return throw_type(env, fn, "host must be a string");
  qentry_t e;
  memset(&e, 0, sizeof e);
  e.b = -1;
  if (parse_addr(host, hl, l->family, (int)port, &e.to, &e.tolen) != 0) goto bad; /* not a literal of this family, or no such interface */
  if (l->closed) goto bad; /* closed: JS counts it */
  e.pkt = malloc(len > 0 ? (size_t)len : 1);
  if (e.pkt == NULL) goto bad;
  memcpy(e.pkt, (uint8_t *)d + off, (size_t)len);
  e.pkt_len = (uint32_t)len;
  if (push(l, &e) != 0) {
    free(e.pkt);
    goto bad;
  }
  if (l->qlen == 1) pump(l);
  update_poll(l);
  return done_count(env, l);
bad:
  napi_create_int32(env, -1, &r);
  return r;
}

/* laneClose(h): stop watching, close the socket now, drop the references (idempotent). Queued sends are dropped. */
static napi_value lane_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1) return throw_type(env, "laneClose", "takes 1 argument");
  lane_t *l = lane_of(env, a[0], "laneClose");
  if (l != NULL && !l->closed) do_close(l);
  return NULL;
}

/* laneRef(h, on): keep the event loop alive for this socket (default) or not (uv_ref/uv_unref). */
static napi_value lane_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  bool on = true;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2) return throw_type(env, "laneRef", "takes 2 arguments");
  lane_t *l = lane_of(env, a[0], "laneRef");
  if (l == NULL) return NULL;
  napi_get_value_bool(env, a[1], &on);
  if (!l->closed) {
    if (on) uv_ref((uv_handle_t *)&l->poll);
    else uv_unref((uv_handle_t *)&l->poll);
  }
  return NULL;
}

/*
 * laneTestFault(h, wouldBlock, refuse, gsoRefuse = 0): @internal tests — the next `wouldBlock` send calls
 * report EAGAIN without sending (loopback never pushes back: its skbs are orphaned at once),
 * the next `refuse` messages fail as EPERM (a netfilter refusal): the queue and skip paths;
 * the next `gsoRefuse` GSO messages fail as EIO (a device that cannot segment): the fallback.
 */
static napi_value lane_test_fault(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  int64_t wb, rf, gf = 0;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 3) return throw_type(env, "laneTestFault", "takes 3 or 4 arguments");
  lane_t *l = lane_of(env, a[0], "laneTestFault");
  if (l == NULL) return NULL;
  if (int_arg(env, a[1], 0, 1 << 30, &wb) || int_arg(env, a[2], 0, 1 << 30, &rf) || (argc > 3 && int_arg(env, a[3], 0, 1 << 30, &gf)))
    return throw_range(env, "laneTestFault", "counts out of range");
  l->fault_block = (int32_t)wb;
  l->fault_refuse = (int32_t)rf;
  l->fault_gso = (int32_t)gf;
  return NULL;
}

/* laneSlotAddress(h, s) → [address, port] of the source of global slot s, as Node's rinfo (format_addr: a link-local one with %scope; events, tests; not the hot path). */
static napi_value lane_slot_address(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2], arr, v;
  int64_t s;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2) return throw_type(env, "laneSlotAddress", "takes 2 arguments");
  lane_t *l = lane_of(env, a[0], "laneSlotAddress");
  if (l == NULL) return NULL;
  if (!l->attached || l->closed || int_arg(env, a[1], (int64_t)l->first * l->slots, (int64_t)(l->first + l->owned) * l->slots - 1, &s))
    return throw_range(env, "laneSlotAddress", "s must be a slot of this attached, open lane");
  const struct sockaddr_in6 *sa = &l->names[s - (int64_t)l->first * l->slots];
  char txt[ADDR_TXT];
  int port = format_addr(sa, txt);
  napi_create_array_with_length(env, 2, &arr);
  napi_create_string_utf8(env, txt, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_int32(env, port, &v);
  napi_set_element(env, arr, 1, v);
  return arr;
}
/*
 * The engine clock without an allocation per reading (src/clock.ts nowUs): on Node 20,
 * performance.now() builds an array (process.hrtime) and a number on the heap each call,
 * about 40 bytes, several times per batch. clockBind(cell) binds this thread to a
 * Float64Array [now, offset] (its own ArrayBuffer, so it never moves); clockNow() writes
 * CLOCK_MONOTONIC µs + offset into cell[0] and returns nothing (nothing to allocate).
 * Per thread (__thread): every worker binds its own cell; the reference keeps it alive.
 */
static __thread double *clock_cell;

static napi_value clock_bind(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value a[1];
  napi_typedarray_type t;
  void *data = NULL;
  bool is_ta = false;
  napi_ref ref;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1 || napi_is_typedarray(env, a[0], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, a[0], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 2)
    return throw_type(env, "clockBind", "cell must be a Float64Array of at least 2 elements");
  if (napi_create_reference(env, a[0], 1, &ref) != napi_ok) return throw_type(env, "clockBind", "cannot keep the cell");
  clock_cell = (double *)data;
  return NULL;
}

static napi_value clock_now(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  double *c = clock_cell;
  if (c != NULL) c[0] = clock_us(CLOCK_MONOTONIC) + c[1];
  return NULL;
}

#endif /* __linux__ */

/*
 * threadTimerSlack(ns) → the calling thread's previous timer slack, ns (prctl
 * PR_SET_TIMERSLACK; 0 restores the thread's default). A sleeping thread's timed waits
 * (Atomics.wait's futex) end up to the slack late: 50 µs by default, longer than a probe
 * period at 20 k pps and up. The prober sets it while pacing (src/probe/prober.ts).
 */
static napi_value thread_timer_slack(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1], r;
  int64_t ns;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1 || int_arg(env, a[0], 0, 1000000000, &ns))
    return throw_range(env, "threadTimerSlack", "ns must be an integer from 0 to 1e9");
  int prev = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0) != 0) prev = -1;
  napi_create_int64(env, prev, &r);
  return r;
}

/* mac.c: set `exports[name]` to a function calling `cb`. */
void dtmesh_export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb);

/* Called from the module init (mac.c): the lane's functions, and `laneAvailable` (false off Linux). */
void dtmesh_lane_init(napi_env env, napi_value exports) {
  napi_value avail;
#ifdef __linux__
  napi_get_boolean(env, true, &avail);
  dtmesh_export_fn(env, exports, "laneOpen", lane_open);
  dtmesh_export_fn(env, exports, "laneInfo", lane_info);
  dtmesh_export_fn(env, exports, "laneAttach", lane_attach);
  dtmesh_export_fn(env, exports, "laneFill", lane_fill);
  dtmesh_export_fn(env, exports, "laneSend", lane_send);
  dtmesh_export_fn(env, exports, "laneSendTo", lane_send_to);
  dtmesh_export_fn(env, exports, "laneClose", lane_close);
  dtmesh_export_fn(env, exports, "laneRef", lane_ref);
  dtmesh_export_fn(env, exports, "laneSlotAddress", lane_slot_address);
  dtmesh_export_fn(env, exports, "laneTestFault", lane_test_fault);
  dtmesh_export_fn(env, exports, "threadTimerSlack", thread_timer_slack);
  dtmesh_export_fn(env, exports, "clockBind", clock_bind);
  dtmesh_export_fn(env, exports, "clockNow", clock_now);
#else
  (void)put_fn;
  napi_get_boolean(env, false, &avail);
#endif
  napi_set_named_property(env, exports, "laneAvailable", avail);
}
