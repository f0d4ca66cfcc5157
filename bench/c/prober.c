/*
 * Reference prober for issue 12 ("RTT p99 reported by `dtmesh probe` within 2× (+50 µs)
 * of a reference prober with kernel timestamps"): sends authenticated PROBEs
 * (spec/PROTOCOL.md) at a fixed rate on one IPv4 UDP socket, one thread, and times the
 * REPLYs by the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME).
 *
 * Send time: clock_gettime(CLOCK_REALTIME) right before the sendmmsg call that sends the
 * probe (MEASUREMENT.md §1: as close to the wire as the lane allows); probes that fall
 * due together leave in one sendmmsg (at most --burst) and share that time. Pacing:
 * ppoll until the next probe is due, timer slack 1 ns. A REPLY is received only when it
 * verifies (length = the probe's, magic, v1, type REPLY, the target's sender_id, MAC,
 * clock window, replay: strict or --replay-window W, default 1024) and its probe_id
 * matches a probe sent and not yet given up on (deadline --grace-ms after its send);
 * a later one is `late`, a second one `duplicate`.
 * RTT = kernel receive time − send time.
 *
 * Load-generator mode (the C load generator of `npm run bench`, bench/loadgen.ts): --agent
 * may name several agents (comma list, probe i is sent by agent i mod n, each with its
 * pair key and its own reply replay filter); --warmup-count N leaves the first N probes
 * out of every figure and prints `warm` on stderr once they are sent; --preseal seals
 * every probe before the first is sent, stamped with its scheduled time (the generator's
 * own HMAC cost stays out of the run); --verify-every K checks type, sender, MAC, clock
 * window and replay of every K-th reply only (0: none, for the crypto-free echo server,
 * which returns the PROBE itself; default 1: every reply); --pace-us U wakes at most every
 * U µs (sleeping without watching the socket, then sending what fell due and reading
 * what came), so that the generator leaves the CPU to the responder on a small machine;
 * RTTs still end at the kernel's receive stamp. --gso sends each burst of 2 to 64 probes as
 * one message the kernel cuts into those k datagrams (UDP_SEGMENT, Linux >= 4.18: one
 * syscall and one trip down the stack for the burst); where the kernel refuses it (EIO, ENOPROTOOPT,
 * EOPNOTSUPP, EINVAL) it is off for the rest of the run and that burst leaves by sendmmsg.
 *
 * Build: cc -O2 -o prober prober.c
 * Run:   prober --root HEX --tenant T --agent B --target A@IPv4:PORT --rate PPS
 *               (--count N | --duration S) [--size 84] [--grace-ms 1000]
 *               [--replay-window 1024] [--burst 16]
 *               [--warmup-count N] [--preseal] [--verify-every K] [--pace-us U]
 *               [--rcvbuf BYTES]   (its socket's SO_RCVBUF, default 4 MiB; tests shrink it)
 *               [--gso]
 * Prints one JSON object (measured probes only): sent, received, lost, late, duplicates,
 * unmatched, bad, replay, send_errors, rx_drops (datagrams this prober's own socket dropped
 * for want of room during the measured phase, SO_MEMINFO: replies it lost itself, not the
 * path; -1 where the kernel does not say), offered_pps, duration_s, timestamps ("kernel" or
 * "user" when the kernel gave none), rtt_us {min, p50, p90, p99, p999, max, mean},
 * warm_sent, warm_received, verified (replies checked), cpu_us (this process's user +
 * system CPU from the first measured send to the end), gso_sent (probes, warm-up included,
 * that left in GSO messages; 0 without --gso).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dtproto.h"

#define RECV_BATCH 64
#define MAX_COUNT 20000000
#define MAX_AGENTS 64
#define MAX_PRESEAL_BYTES (256L << 20)

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, kernel >= 4.18 */
#endif
#define GSO_MAX_BYTES 65507 /* one UDP payload at most (IPv4: 65535 − 20 − 8) */
#define GSO_MAX_SEGS 64 /* UDP_MAX_SEGMENTS of the kernels that brought UDP GSO (later ones allow more): one more is EINVAL */
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
/* Datagrams this socket dropped for want of room (SO_MEMINFO's SK_MEMINFO_DROPS, Linux >= 4.7), -1 where the kernel does not say. */
static long long sock_drops(int fd) {
  uint32_t mem[16];
  socklen_t ml = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) != 0 || ml < 9 * sizeof(uint32_t)) return -1;
  return mem[8];
}

static void die(int code, const char *msg, const char *arg) {
  fprintf(stderr, "bench/c/prober: %s%s\n", msg, arg ? arg : "");
  exit(code);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/** This process's CPU time so far (user + system), µs. */
static double cpu_now_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/** Percentile p (0-100) of an ascending array, as bench/common.ts `percentile`. */
static double pct(const double *s, size_t n, double p) {
  if (n == 0) return 0;
  double r = ceil(p / 100.0 * (double)n) - 1;
  size_t i = r < 0 ? 0 : (size_t)r >= n ? n - 1 : (size_t)r;
  return s[i];
}

static void usage_exit(void) {
  fputs("usage: prober --root HEX --tenant T --agent B --target A@IPv4:PORT --rate PPS (--count N | --duration S)\n"
        "              [--size BYTES] [--grace-ms MS] [--replay-window W] [--burst N]\n"
        "              [--warmup-count N] [--preseal] [--verify-every K] [--pace-us U] [--rcvbuf BYTES] [--gso]\n"
        "  --agent may be a comma list (probe i is sent by agent i mod n)\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  const char *root_hex = NULL, *tenant = NULL, *agent = NULL, *target = NULL;
  double rate = 1000, duration = -1;
  long count = -1, size = 84, grace_ms = 1000, burst = 16, warm_count = 0, verify_every = 1, pace_us = 0, rcvbuf = 4 << 20;
  int gso = 0;
  unsigned long long gso_sent = 0;
  int preseal = 0;
  unsigned window = 1024;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--preseal") == 0) {
      preseal = 1;
      continue;
    }
    if (strcmp(a, "--gso") == 0) {
      gso = 1;
      continue;
    }
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    if (v == NULL) usage_exit();
    if (strcmp(a, "--root") == 0) root_hex = v;
    else if (strcmp(a, "--tenant") == 0) tenant = v;
    else if (strcmp(a, "--agent") == 0) agent = v;
    else if (strcmp(a, "--target") == 0) target = v;
    else if (strcmp(a, "--rate") == 0) rate = atof(v);
    else if (strcmp(a, "--duration") == 0) duration = atof(v);
    else if (strcmp(a, "--count") == 0) count = atol(v);
    else if (strcmp(a, "--size") == 0) size = atol(v);
    else if (strcmp(a, "--grace-ms") == 0) grace_ms = atol(v);
    else if (strcmp(a, "--replay-window") == 0) window = (unsigned)atoi(v);
    else if (strcmp(a, "--burst") == 0) burst = atol(v);
    else if (strcmp(a, "--warmup-count") == 0) warm_count = atol(v);
    else if (strcmp(a, "--verify-every") == 0) verify_every = atol(v);
    else if (strcmp(a, "--pace-us") == 0) pace_us = atol(v);
    else if (strcmp(a, "--rcvbuf") == 0) rcvbuf = atol(v);
    else usage_exit();
  }
  if (!root_hex || !tenant || !agent || !target) usage_exit();
  if (!(rate > 0 && rate <= 10e6)) die(2, "--rate must be 1-10000000", NULL);
  if (count < 0 && duration < 0) count = 1000;
  if (count < 0) count = (long)llround(rate * duration);
  if (count < 1 || count > MAX_COUNT) die(2, "the run must be 1-20000000 probes", NULL);
  if (size < DT_MIN_DATAGRAM || size > 2048) die(2, "--size must be 50-2048", NULL);
  if (grace_ms < 1 || grace_ms > 60000) die(2, "--grace-ms must be 1-60000", NULL);
  if (window % 64 != 0 || window > DT_MAX_WINDOW) die(2, "--replay-window must be 0 or a multiple of 64 up to 8192", NULL);
  if (burst < 1 || burst > 1024) die(2, "--burst must be 1-1024", NULL);
  if (warm_count < 0 || warm_count >= count) die(2, "--warmup-count must be 0 up to the probe count - 1", NULL);
  if (verify_every < 0 || verify_every > 1000000) die(2, "--verify-every must be 0-1000000", NULL);
  if (pace_us < 0 || pace_us > 100000) die(2, "--pace-us must be 0-100000", NULL);
  if (rcvbuf < 1024 || rcvbuf > (1L << 30)) die(2, "--rcvbuf must be 1024-1073741824", NULL);
  const int64_t pace_ns = pace_us * 1000;
  if (preseal && (double)count * (double)size > (double)MAX_PRESEAL_BYTES) die(2, "--preseal: count x size exceeds 256 MiB", NULL);
  uint8_t root[32];
  if (hex_decode(root_hex, root, 32) != 0) die(2, "--root must be 64 hex digits", NULL);
  const char *why;
  if ((why = dt_id_invalid(tenant)) != NULL) die(2, "--tenant ", why);
  char abuf[MAX_AGENTS * (DT_MAX_ID + 1) + 1];
  if (strlen(agent) >= sizeof abuf) die(2, "--agent list too long", NULL);
  strcpy(abuf, agent);
  char *agents[MAX_AGENTS];
  int nag = dt_split(abuf, agents, MAX_AGENTS);
  if (nag < 1) die(2, "--agent must name an agent", NULL);
  for (int a = 0; a < nag; a++)
    if ((why = dt_id_invalid(agents[a])) != NULL) die(2, "--agent ", why);

  /* --target A@IPv4:PORT */
  char tbuf[256];
  if (strlen(target) >= sizeof tbuf) die(2, "--target too long", NULL);
  strcpy(tbuf, target);
  char *at = strrchr(tbuf, '@'), *colon = strrchr(tbuf, ':');
  if (!at || !colon || colon < at) die(2, "--target must be AGENT@IPv4:PORT", NULL);
  *at = 0;
  *colon = 0;
  if ((why = dt_id_invalid(tbuf)) != NULL) die(2, "--target agent ", why);
  for (int a = 0; a < nag; a++)
    if (strcmp(tbuf, agents[a]) == 0) die(2, "--target agent must not be --agent", NULL);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, at + 1, &dst.sin_addr) != 1 || dst.sin_port == 0) die(2, "--target must be AGENT@IPv4:PORT", NULL);

  uint64_t target_id = dt_sender_id(tbuf);
  uint64_t self_id[MAX_AGENTS];
  static hmac_key hk[MAX_AGENTS];
  static dt_replay rp[MAX_AGENTS];
  for (int a = 0; a < nag; a++) {
    uint8_t key[32];
    self_id[a] = dt_sender_id(agents[a]);
    dt_pair_key(root, tenant, agents[a], tbuf, key);
    hmac_init(&hk[a], key, 32);
    if (window) rp[a].bits = calloc(window / 64, 8);
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(1, "socket: ", strerror(errno));
  int on = 1, buf = 4 << 20, rcv = (int)rcvbuf;
  int kernel_ts = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr = dst.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? dst.sin_addr : (struct in_addr){htonl(INADDR_ANY)};
  if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) die(1, "bind: ", strerror(errno));
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) die(1, "connect: ", strerror(errno));
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* ppoll wakes on time, not 50 µs late */

  size_t N = (size_t)count;
  int64_t *sent_at = calloc(N, sizeof *sent_at); /* ns, 0 = not sent */
  uint8_t *state = calloc(N, 1);                 /* 0 pending, 1 received, 2 late seen */
  double *rtt = malloc(N * sizeof *rtt);
  size_t nrtt = 0;
  uint64_t late = 0, dup = 0, unmatched = 0, bad = 0, replay = 0, send_errors = 0, sent = 0, kernel_missing = 0;

  /* send side: one burst of datagrams built, then timed, then sent */
  uint8_t *sbuf = malloc((size_t)burst * (size_t)size);
  struct mmsghdr *smsg = calloc((size_t)burst, sizeof *smsg);
  static char gso_ctrl[CMSG_SPACE(sizeof(uint16_t))] __attribute__((aligned(16)));
  struct iovec *siov = calloc((size_t)burst, sizeof *siov);
  for (long i = 0; i < burst; i++) {
    siov[i].iov_base = sbuf + (size_t)i * (size_t)size;
    siov[i].iov_len = (size_t)size;
    smsg[i].msg_hdr.msg_iov = &siov[i];
    smsg[i].msg_hdr.msg_iovlen = 1;
    memset(siov[i].iov_base, 0x5a, (size_t)size);
  }
  /* receive side */
  size_t rslot = 2048 + 1;
  uint8_t *rbuf = malloc(rslot * RECV_BATCH);
  struct mmsghdr rmsg[RECV_BATCH];
  struct iovec riov[RECV_BATCH];
  static char ctrl[RECV_BATCH][CMSG_SPACE(sizeof(struct timespec)) + 64] __attribute__((aligned(16)));
  memset(rmsg, 0, sizeof rmsg);
  for (int i = 0; i < RECV_BATCH; i++) {
    riov[i].iov_base = rbuf + rslot * (size_t)i;
    riov[i].iov_len = rslot;
    rmsg[i].msg_hdr.msg_iov = &riov[i];
    rmsg[i].msg_hdr.msg_iovlen = 1;
  }

  uint64_t nonce = dt_now_us();
  const double interval_ns = 1e9 / rate;
  const int64_t grace_ns = (int64_t)grace_ms * 1000000;
  uint8_t *pre = NULL; /* --preseal: every probe, sealed before the run */
  int64_t t0;
  if (preseal) {
    pre = malloc((size_t)count * (size_t)size);
    if (pre == NULL) die(1, "--preseal: out of memory", NULL);
    t0 = now_ns() + (int64_t)count * 2000 + 20000000; /* sealing costs about 1-2 µs a probe */
    for (size_t i = 0; i < (size_t)count; i++) {
      uint8_t *w = pre + i * (size_t)size;
      memset(w, 0x5a, (size_t)size);
      dt_header(w, DT_TYPE_PROBE, self_id[i % (size_t)nag], nonce++, (uint32_t)i, (uint64_t)((t0 + (int64_t)((double)i * interval_ns)) / 1000));
      dt_mac(&hk[i % (size_t)nag], w, (size_t)size, w + size - DT_MAC_LEN);
    }
    if (t0 < now_ns() + 1000000) t0 = now_ns() + 1000000;
  } else {
    t0 = now_ns() + 1000000; /* start in 1 ms */
  }
  int64_t last_send = t0;
  size_t next = 0;       /* next probe_id to send */
  size_t oldest = 0;     /* probes below this are decided (received or given up) */
  size_t received = 0, warm_received = 0;
  int64_t t_first = 0, t_last = 0;
  uint64_t verified = 0;
  long verify_countdown = verify_every;
  double cpu_start = cpu_now_us();
  long long drops_warm = sock_drops(fd); /* the socket's drops when the measured phase begins */
  if (warm_count == 0) fputs("warm\n", stderr), fflush(stderr);

  for (;;) {
    int64_t now = now_ns();
    /* send what is due */
    if (next < N) {
      int64_t elapsed = now - t0;
      size_t due = elapsed < 0 ? 0 : (size_t)((double)elapsed / interval_ns) + 1;
      if (due > N) due = N;
      if (due > next) {
        size_t k = due - next;
        if (k > (size_t)burst) k = (size_t)burst;
        /* the warm-up and the measured phase never share a call */
        if (next < (size_t)warm_count && next + k > (size_t)warm_count) k = (size_t)warm_count - next;
        if (pre) {
          for (size_t j = 0; j < k; j++) siov[j].iov_base = pre + (next + j) * (size_t)size;
        } else {
          uint64_t ts_us = dt_now_us();
          for (size_t j = 0; j < k; j++) {
            uint8_t *w = siov[j].iov_base;
            size_t id = next + j;
            dt_header(w, DT_TYPE_PROBE, self_id[id % (size_t)nag], nonce++, (uint32_t)id, ts_us);
            dt_mac(&hk[id % (size_t)nag], w, (size_t)size, w + size - DT_MAC_LEN);
          }
        }
        int64_t ts = now_ns(); /* the send time: right before the call */
        int r = -1;
        if (gso && k > 1 && k <= GSO_MAX_SEGS && (size_t)k * (size_t)size <= GSO_MAX_BYTES) {
          /* --gso: the k probes as one message the kernel cuts into k datagrams (UDP_SEGMENT): all or none */
          struct msghdr h;
          memset(&h, 0, sizeof h);
          h.msg_iov = siov;
          h.msg_iovlen = (size_t)k;
          h.msg_control = gso_ctrl;
          h.msg_controllen = sizeof gso_ctrl;
          struct cmsghdr *c = CMSG_FIRSTHDR(&h);
          c->cmsg_level = IPPROTO_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
          uint16_t g = (uint16_t)size;
          memcpy(CMSG_DATA(c), &g, sizeof g);
          if (sendmsg(fd, &h, 0) >= 0) {
            r = (int)k;
            gso_sent += (unsigned long long)k;
          } else if (errno == EIO || errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EINVAL)
            gso = 0; /* this kernel or route will not cut: the burst leaves by sendmmsg below, and every later one */
          else
            r = 0; /* would-block or a refusal: the burst was not sent */
        }
        if (r < 0) r = sendmmsg(fd, smsg, (unsigned)k, 0);
        if (r < 0) r = 0;
        for (int j = 0; j < r; j++) sent_at[next + (size_t)j] = ts;
        send_errors += k - (size_t)r;
        if (next >= (size_t)warm_count) {
          sent += (uint64_t)r;
          if (t_first == 0) t_first = ts;
          t_last = ts;
        }
        last_send = ts;
        next += k;
        if (next == (size_t)warm_count) {
          cpu_start = cpu_now_us();
          drops_warm = sock_drops(fd);
          fputs("warm\n", stderr);
          fflush(stderr);
        }
        continue; /* catch up before sleeping */
      }
    }
    /* give up on probes past their deadline */
    while (oldest < next && (state[oldest] != 0 || sent_at[oldest] == 0 || now - sent_at[oldest] > grace_ns)) oldest++;
    if (next >= N && (oldest >= N || now - last_send > grace_ns)) break;

    /* wait for a reply or the next send */
    int64_t wait = next < N ? t0 + (int64_t)((double)next * interval_ns) - now : last_send + grace_ns - now;
    if (wait < 0) wait = 0;
    int pr = 1;
    if (pace_ns > 0 && next < N) {
      /* --pace-us: sleep without watching the socket, then read what came (stamped by the kernel) */
      if (wait < pace_ns) wait = pace_ns;
      struct timespec to = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
      nanosleep(&to, NULL);
    } else {
      struct timespec to = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      pr = ppoll(&pfd, 1, &to, NULL);
    }
    if (pr <= 0) continue;
    for (int rounds = 0; rounds < 16; rounds++) {
      for (int i = 0; i < RECV_BATCH; i++) {
        rmsg[i].msg_hdr.msg_control = ctrl[i];
        rmsg[i].msg_hdr.msg_controllen = sizeof ctrl[i];
        rmsg[i].msg_hdr.msg_flags = 0;
      }
      int n = recvmmsg(fd, rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      int64_t user_now = now_ns();
      uint64_t now_us = (uint64_t)(user_now / 1000);
      for (int i = 0; i < n; i++) {
        const uint8_t *w = riov[i].iov_base;
        size_t len = rmsg[i].msg_len;
        int64_t at_ns = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&rmsg[i].msg_hdr); c; c = CMSG_NXTHDR(&rmsg[i].msg_hdr, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(c), sizeof t);
            at_ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
          }
        }
        if (at_ns == 0) {
          at_ns = user_now;
          kernel_missing++;
        }
        if ((rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) || len != (size_t)size) {
          bad++;
          continue;
        }
        uint32_t id = dt_be32(w + DT_OFF_PROBE_ID);
        int check = verify_every > 0 && --verify_countdown == 0;
        if (check) {
          verify_countdown = verify_every;
          verified++;
          size_t ag = id % (size_t)nag;
          if (memcmp(w, DT_MAGIC, 4) != 0 || w[DT_OFF_VER] != 1 || w[DT_OFF_TYPE] != DT_TYPE_REPLY || dt_be64(w + DT_OFF_SENDER) != target_id ||
              !dt_mac_ok(&hk[ag], w, len)) {
            bad++;
            continue;
          }
          uint64_t rts = dt_be64(w + DT_OFF_SEND_TS);
          if ((rts > now_us ? rts - now_us : now_us - rts) > 5000000) {
            bad++;
            continue;
          }
          uint64_t rn = dt_be64(w + DT_OFF_NONCE);
          if (!dt_replay_ok(&rp[ag], window, rn)) {
            replay++;
            continue;
          }
          dt_replay_commit(&rp[ag], window, rn);
        }
        if (id >= next || sent_at[id] == 0) {
          unmatched++;
          continue;
        }
        if (state[id] == 1) {
          dup++;
          continue;
        }
        if (state[id] == 2 || at_ns - sent_at[id] > grace_ns) {
          if (state[id] == 2) dup++;
          else if (id >= (size_t)warm_count) late++;
          state[id] = 2;
          continue;
        }
        state[id] = 1;
        if (id < (size_t)warm_count) {
          warm_received++;
          continue;
        }
        received++;
        rtt[nrtt++] = (double)(at_ns - sent_at[id]) / 1000.0;
      }
      if (n < RECV_BATCH) break;
    }
  }

  double cpu_us = cpu_now_us() - cpu_start;
  long long drops_end = sock_drops(fd);
  long long rx_drops = drops_end >= 0 && drops_warm >= 0 ? drops_end - drops_warm : -1;
  qsort(rtt, nrtt, sizeof *rtt, cmp_double);
  double sum = 0;
  for (size_t i = 0; i < nrtt; i++) sum += rtt[i];
  double span = (double)(t_last - t_first) / 1e9;
  printf("{\"sent\":%llu,\"received\":%zu,\"lost\":%llu,\"late\":%llu,\"duplicates\":%llu,\"unmatched\":%llu,\"bad\":%llu,\"replay\":%llu,"
         "\"send_errors\":%llu,\"rx_drops\":%lld,\"rate\":%.0f,\"offered_pps\":%.0f,\"duration_s\":%.3f,\"timestamps\":\"%s\",",
         (unsigned long long)sent, received, (unsigned long long)(sent - received), (unsigned long long)late, (unsigned long long)dup,
         (unsigned long long)unmatched, (unsigned long long)bad, (unsigned long long)replay, (unsigned long long)send_errors, rx_drops, rate,
         sent > 1 && span > 0 ? (double)(sent - 1) / span : 0.0, span, kernel_ts && kernel_missing == 0 ? "kernel" : "user");
  printf("\"warm_sent\":%ld,\"warm_received\":%zu,\"verified\":%llu,\"cpu_us\":%.0f,\"gso_sent\":%llu,", warm_count, warm_received, (unsigned long long)verified, cpu_us, gso_sent);
  printf("\"rtt_us\":{\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}}\n", nrtt ? rtt[0] : 0.0,
         pct(rtt, nrtt, 50), pct(rtt, nrtt, 90), pct(rtt, nrtt, 99), pct(rtt, nrtt, 99.9), nrtt ? rtt[nrtt - 1] : 0.0, nrtt ? sum / (double)nrtt : 0.0);
  close(fd);
  return 0;
}
