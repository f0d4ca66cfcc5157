/*
 * The machine's limit for `dtmesh bench`: a plain C responder of the DataStun mesh probe
 * protocol v1 (spec/PROTOCOL.md) on one IPv4 UDP socket, one thread, recvmmsg/sendmmsg
 * in batches (default 64). It authenticates exactly like dtmesh: the three unconditional
 * drops and the four checks of §4 in order (malformed, downgrade, reflected,
 * unknown_sender, bad_mac, stale with the restart fence, replay: strict per sender or a
 * window), rotation grace with --prev-root, and answers an accepted PROBE with a REPLY
 * exactly as long (§3): its own sender_id, a fresh nonce from one counter, send_ts_us
 * taken when it signs, probe_id and payload copied, HMAC-SHA256[0:16] over
 * `wire[0:34+N] || u32be(N)`. Keys: HKDF-SHA256 from the root given in hex. Accepted
 * REPLYs and PUNCH_HINTs are counted and not acted on (no hint bursts: a bench responder).
 *
 * Build: cc -O2 -o responder responder.c   (needs only a C compiler: bench/c/dtcrypto.h)
 *
 * stdout, one JSON object per line: {"event":"ready","port":P,...} once bound; with
 * --control, `stats` on stdin answers {"event":"stats",...}; on SIGTERM/SIGINT (or stdin
 * EOF / `quit` with --control) {"event":"final",...}, then exit 0. Counts: received,
 * accepted, replied, send_errors, dropped by reason, cpu_us (getrusage), verdict_us (receive →
 * verdict: the kernel's receive stamp, SO_TIMESTAMPNS, to the clock read once a batch is
 * judged, as the engine's `latency_us`; p50/p90/p99/max over 1 µs buckets).
 * --control also takes `reset-latency` (the bench's window starts after its warm-up).
 * --gso: consecutive REPLYs of a batch to one address with one length leave as one sendmmsg
 * message the kernel cuts into those datagrams (UDP_SEGMENT), as `dtmesh serve --gso` sends
 * them (src/native/lane.c), so that the limit stays the limit of the same technique; a GSO
 * message the kernel refuses is sent again one datagram per message.
 * --control also takes `now <us>` (a fixed receiver clock, for test vectors) and
 * `now real`; --start-us (the restart fence) and --nonce-start (the first REPLY nonce)
 * exist for the same tests.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dtproto.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, kernel >= 4.18 */
#endif
#define GSO_MAX_BYTES 65507
#define GSO_MAX_SEGS 64 /* UDP_MAX_SEGMENTS of the kernels that brought UDP GSO (later ones allow more): one more is EINVAL */

#define BATCH_MAX 1024

typedef struct {
  uint64_t id;
  hmac_key cur, prev;
  int has_prev;
  dt_replay rp;
} peer_t;

static peer_t *peers;
static int npeers;
static int32_t *slots; /* open addressing over sender_id, value = peer index, -1 empty */
static uint32_t slot_mask;

static uint64_t self_id;
static unsigned window;
static size_t max_dgram = 2048;
static uint64_t clock_window_us = 5000000;
static uint64_t start_us;
static uint64_t fixed_now; /* 0: real clock */
static uint64_t nonce;

static uint64_t received, accepted, replied, send_errors, gso_sent, dropped[V_COUNT];
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void die(int code, const char *msg, const char *arg) {
  fprintf(stderr, "bench/c/responder: %s%s\n", msg, arg ? arg : "");
  exit(code);
}

static uint64_t now_us(void) { return fixed_now ? fixed_now : dt_now_us(); }

static peer_t *lookup(uint64_t id) {
  for (uint32_t i = (uint32_t)id & slot_mask;; i = (i + 1) & slot_mask) {
    int32_t p = slots[i];
    if (p < 0) return NULL;
    if (peers[p].id == id) return &peers[p];
  }
}

/** An IPv4 source no reply can go to (PROTOCOL.md §4 u1): port 0, 0/8, 224/4 multicast, 240/4 incl. broadcast. */
static int unanswerable(const struct sockaddr_in *a) {
  uint32_t ip = ntohl(a->sin_addr.s_addr);
  uint32_t first = ip >> 24;
  return a->sin_port == 0 || first == 0 || first >= 224;
}

/** The verdict of one datagram (PROTOCOL.md §4), state moved only on accept. */
static int judge(const uint8_t *w, size_t len, int truncated, const struct sockaddr_in *src, uint64_t now, peer_t **out) {
  /* u1 malformed */
  if (truncated || len < DT_MIN_DATAGRAM || len > max_dgram || memcmp(w, DT_MAGIC, 4) != 0) return V_MALFORMED;
  int type = w[DT_OFF_TYPE];
  if (type < DT_TYPE_PROBE || type > DT_TYPE_HINT) return V_MALFORMED;
  if (type == DT_TYPE_HINT) {
    size_t n = len - DT_MIN_DATAGRAM;
    if (n < DT_HINT_LEN_V4) return V_MALFORMED;
    int fam = w[DT_HEADER_LEN + 8];
    if (!((fam == 4 && n == DT_HINT_LEN_V4) || (fam == 6 && n == DT_HINT_LEN_V6))) return V_MALFORMED;
  }
  if (unanswerable(src)) return V_MALFORMED;
  /* u2 downgrade, u3 reflected */
  if (w[DT_OFF_VER] != 1) return V_DOWNGRADE;
  uint64_t sid = dt_be64(w + DT_OFF_SENDER);
  if (sid == self_id) return V_REFLECTED;
  /* c1-c4 */
  peer_t *p = lookup(sid);
  if (p == NULL) return V_UNKNOWN_SENDER;
  if (!dt_mac_ok(&p->cur, w, len) && !(p->has_prev && dt_mac_ok(&p->prev, w, len))) return V_BAD_MAC;
  uint64_t ts = dt_be64(w + DT_OFF_SEND_TS);
  uint64_t skew = ts > now ? ts - now : now - ts;
  if (skew > clock_window_us || (!p->rp.seen && ts < start_us)) return V_STALE;
  uint64_t n = dt_be64(w + DT_OFF_NONCE);
  if (!dt_replay_ok(&p->rp, window, n)) return V_REPLAY;
  dt_replay_commit(&p->rp, window, n);
  *out = p;
  return V_ACCEPT;
}

/* receive → verdict histogram, 1 µs buckets; the last one holds everything slower */
#define LAT_BUCKETS 100001
static uint32_t lat_hist[LAT_BUCKETS];
static uint64_t lat_count, lat_max;

static void lat_record(int64_t us) {
  uint64_t u = us < 0 ? 0 : (uint64_t)us;
  lat_hist[u < LAT_BUCKETS - 1 ? u : LAT_BUCKETS - 1]++;
  lat_count++;
  if (u > lat_max) lat_max = u;
}

static uint64_t lat_pct(double p) {
  if (lat_count == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)lat_count), seen = 0;
  if (rank < 1) rank = 1;
  for (uint64_t i = 0; i < LAT_BUCKETS; i++) {
    seen += lat_hist[i];
    if (seen >= rank) return i == LAT_BUCKETS - 1 ? lat_max : i;
  }
  return lat_max;
}

static void print_counts(const char *event) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t cpu = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u + (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  printf("{\"event\":\"%s\",\"received\":%llu,\"accepted\":%llu,\"replied\":%llu,\"send_errors\":%llu,\"gso_sent\":%llu,\"dropped\":{", event,
         (unsigned long long)received, (unsigned long long)accepted, (unsigned long long)replied, (unsigned long long)send_errors, (unsigned long long)gso_sent);
  for (int i = 0; i < V_COUNT; i++) printf("%s\"%s\":%llu", i ? "," : "", DT_REASONS[i], (unsigned long long)dropped[i]);
  printf("},\"cpu_us\":%llu,\"verdict_us\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"max\":%llu}}\n", (unsigned long long)cpu,
         (unsigned long long)lat_count, (unsigned long long)lat_pct(50), (unsigned long long)lat_pct(90), (unsigned long long)lat_pct(99), (unsigned long long)lat_max);
  fflush(stdout);
}

static void usage_exit(void) {
  fputs(
      "usage: responder --root HEX --tenant T --agent A --peers B,C,... [--prev-root HEX] [--listen IP:PORT]\n"
      "                 [--batch N] [--replay-window W] [--max-datagram N] [--clock-window-ms N]\n"
      "                 [--recv-buffer BYTES] [--start-us US] [--nonce-start N] [--control] [--gso]\n",
      stderr);
  exit(2);
}

/** stdin commands (--control): `stats`, `reset-latency`, `now <us>`, `now real`, `quit`. Returns 0 on EOF/quit. */
static int control(void) {
  static char buf[4096];
  static size_t fill;
  ssize_t r = read(0, buf + fill, sizeof buf - 1 - fill);
  if (r <= 0) return r < 0 && errno == EINTR ? 1 : 0;
  fill += (size_t)r;
  char *line = buf, *nl;
  while ((nl = memchr(line, '\n', fill - (size_t)(line - buf))) != NULL) {
    *nl = 0;
    if (strcmp(line, "stats") == 0) {
      print_counts("stats");
    } else if (strcmp(line, "reset-latency") == 0) {
      memset(lat_hist, 0, sizeof lat_hist);
      lat_count = lat_max = 0;
      printf("{\"event\":\"latency-reset\"}\n");
      fflush(stdout);
    } else if (strcmp(line, "quit") == 0) {
      return 0;
    } else if (strcmp(line, "now real") == 0) {
      fixed_now = 0;
      printf("{\"event\":\"clock\",\"fixed\":false}\n");
      fflush(stdout);
    } else if (strncmp(line, "now ", 4) == 0) {
      fixed_now = strtoull(line + 4, NULL, 10);
      printf("{\"event\":\"clock\",\"fixed\":true,\"now_us\":%llu}\n", (unsigned long long)fixed_now);
      fflush(stdout);
    } else {
      printf("{\"event\":\"error\",\"message\":\"unknown command\"}\n");
      fflush(stdout);
    }
    line = nl + 1;
  }
  fill -= (size_t)(line - buf);
  memmove(buf, line, fill);
  if (fill >= sizeof buf - 1) fill = 0; /* an overlong line: dropped */
  return 1;
}

int main(int argc, char **argv) {
  const char *root_hex = NULL, *prev_hex = NULL, *tenant = NULL, *agent = NULL, *listen_s = "127.0.0.1:0";
  char *peers_s = NULL;
  int batch = 64, use_control = 0, gso = 0;
  long recv_buffer = 4 << 20;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--control") == 0) {
      use_control = 1;
      continue;
    }
    if (strcmp(a, "--gso") == 0) {
      gso = 1;
      continue;
    }
    if (v == NULL) usage_exit();
    i++;
    if (strcmp(a, "--root") == 0) root_hex = v;
    else if (strcmp(a, "--prev-root") == 0) prev_hex = v;
    else if (strcmp(a, "--tenant") == 0) tenant = v;
    else if (strcmp(a, "--agent") == 0) agent = v;
    else if (strcmp(a, "--peers") == 0) peers_s = strdup(v);
    else if (strcmp(a, "--listen") == 0) listen_s = v;
    else if (strcmp(a, "--batch") == 0) batch = atoi(v);
    else if (strcmp(a, "--replay-window") == 0) window = (unsigned)atoi(v);
    else if (strcmp(a, "--max-datagram") == 0) max_dgram = (size_t)atol(v);
    else if (strcmp(a, "--clock-window-ms") == 0) clock_window_us = (uint64_t)atoll(v) * 1000u;
    else if (strcmp(a, "--recv-buffer") == 0) recv_buffer = atol(v);
    else if (strcmp(a, "--start-us") == 0) start_us = strtoull(v, NULL, 10);
    else if (strcmp(a, "--nonce-start") == 0) nonce = strtoull(v, NULL, 10);
    else usage_exit();
  }
  if (!root_hex || !tenant || !agent || !peers_s) usage_exit();
  if (batch < 1 || batch > BATCH_MAX) die(2, "--batch must be 1-1024", NULL);
  if (window % 64 != 0 || window > DT_MAX_WINDOW) die(2, "--replay-window must be 0 or a multiple of 64 up to 8192", NULL);
  if (max_dgram < DT_MIN_DATAGRAM || max_dgram > 65507) die(2, "--max-datagram must be 50-65507", NULL);
  uint8_t root[32], prev[32];
  if (hex_decode(root_hex, root, 32) != 0) die(2, "--root must be 64 hex digits", NULL);
  if (prev_hex && hex_decode(prev_hex, prev, 32) != 0) die(2, "--prev-root must be 64 hex digits", NULL);
  const char *why;
  if ((why = dt_id_invalid(tenant)) != NULL) die(2, "--tenant ", why);
  if ((why = dt_id_invalid(agent)) != NULL) die(2, "--agent ", why);

  /* roster: every peer but ourselves, keys derived once */
  char *list[4096];
  int nlist = dt_split(peers_s, list, 4096);
  peers = calloc((size_t)nlist + 1, sizeof *peers);
  uint32_t cap = 16;
  while (cap < 2u * (uint32_t)nlist) cap <<= 1;
  slots = malloc(cap * sizeof *slots);
  for (uint32_t i = 0; i < cap; i++) slots[i] = -1;
  slot_mask = cap - 1;
  self_id = dt_sender_id(agent);
  for (int i = 0; i < nlist; i++) {
    if ((why = dt_id_invalid(list[i])) != NULL) die(2, "--peers: an ID ", why);
    if (strcmp(list[i], agent) == 0) continue;
    uint64_t id = dt_sender_id(list[i]);
    if (lookup(id) != NULL) continue; /* listed twice */
    peer_t *p = &peers[npeers];
    p->id = id;
    uint8_t key[32];
    dt_pair_key(root, tenant, agent, list[i], key);
    hmac_init(&p->cur, key, 32);
    if (prev_hex) {
      dt_pair_key(prev, tenant, agent, list[i], key);
      hmac_init(&p->prev, key, 32);
      p->has_prev = 1;
    }
    if (window) p->rp.bits = calloc(window / 64, 8);
    uint32_t s = (uint32_t)id & slot_mask;
    while (slots[s] >= 0) s = (s + 1) & slot_mask;
    slots[s] = npeers++;
  }

  /* socket */
  char host[64];
  const char *colon = strrchr(listen_s, ':');
  if (!colon || (size_t)(colon - listen_s) >= sizeof host) die(2, "--listen must be IPv4:PORT", NULL);
  memcpy(host, listen_s, (size_t)(colon - listen_s));
  host[colon - listen_s] = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die(2, "--listen must be IPv4:PORT: ", listen_s);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(1, "socket: ", strerror(errno));
  int rb = (int)recv_buffer;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb); /* capped by net.core.rmem_max, as for the engine */
  int sb = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  int on = 1;
  int kernel_ts = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die(1, "bind: ", strerror(errno));
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);

  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
  sigaction(SIGTERM, &act, NULL);
  sigaction(SIGINT, &act, NULL);
  signal(SIGPIPE, SIG_IGN);

  uint64_t t0 = dt_now_us();
  if (start_us == 0) start_us = t0;
  if (nonce == 0) nonce = t0; /* PROTOCOL.md §3: max(last_persisted + 1, now_us); nothing persisted here */

  /* batch buffers: one slot per datagram, one byte more than the largest accepted so a longer one shows as truncated */
  size_t slot = max_dgram + 1;
  uint8_t *mem = malloc(slot * (size_t)batch);
  struct mmsghdr *in = calloc((size_t)batch, sizeof *in), *out = calloc((size_t)batch, sizeof *out);
  struct iovec *iov = calloc((size_t)batch, sizeof *iov), *oiov = calloc((size_t)batch, sizeof *oiov);
  struct sockaddr_in *from = calloc((size_t)batch, sizeof *from);
  peer_t **opeer = calloc((size_t)batch, sizeof *opeer);
  typedef char ctrl_t[CMSG_SPACE(sizeof(struct timespec)) + 64] __attribute__((aligned(16)));
  ctrl_t *ctrl = calloc((size_t)batch, sizeof *ctrl);
  typedef char gctrl_t[CMSG_SPACE(sizeof(uint16_t))] __attribute__((aligned(16)));
  gctrl_t *gctrl = calloc((size_t)batch, sizeof *gctrl);
  struct mmsghdr *gout = calloc((size_t)batch, sizeof *gout);
  int *gfirst = calloc((size_t)batch, sizeof *gfirst);
  for (int i = 0; i < batch; i++) {
    iov[i].iov_base = mem + slot * (size_t)i;
    iov[i].iov_len = slot;
    in[i].msg_hdr.msg_iov = &iov[i];
    in[i].msg_hdr.msg_iovlen = 1;
    in[i].msg_hdr.msg_name = &from[i];
    out[i].msg_hdr.msg_iov = &oiov[i];
    out[i].msg_hdr.msg_iovlen = 1;
  }

  printf("{\"event\":\"ready\",\"port\":%u,\"batch\":%d,\"peers\":%d,\"replay_window\":%u,\"start_us\":%llu}\n", ntohs(sa.sin_port), batch, npeers, window,
         (unsigned long long)start_us);
  fflush(stdout);

  struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  int nfds = use_control ? 2 : 1;
  while (!stop_flag) {
    int pr = poll(pfd, (nfds_t)nfds, -1);
    if (pr < 0) {
      if (errno == EINTR) continue;
      die(1, "poll: ", strerror(errno));
    }
    /* the socket first: a test writes a datagram, then asks for stats */
    if (pfd[0].revents & POLLIN) {
      for (int rounds = 0; rounds < 64 && !stop_flag; rounds++) {
        for (int i = 0; i < batch; i++) {
          in[i].msg_hdr.msg_namelen = sizeof from[i];
          in[i].msg_hdr.msg_flags = 0;
          in[i].msg_hdr.msg_control = kernel_ts ? ctrl[i] : NULL;
          in[i].msg_hdr.msg_controllen = kernel_ts ? sizeof ctrl[i] : 0;
        }
        int n = recvmmsg(fd, in, (unsigned)batch, MSG_DONTWAIT, NULL);
        if (n <= 0) break;
        uint64_t now = now_us(); /* one clock per batch, taken when it was received (PROTOCOL.md §6) */
        int nout = 0;
        for (int i = 0; i < n; i++) {
          uint8_t *w = iov[i].iov_base;
          size_t len = in[i].msg_len;
          received++;
          int trunc = (in[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > max_dgram || in[i].msg_hdr.msg_namelen != sizeof(struct sockaddr_in);
          peer_t *p = NULL;
          int v = judge(w, len, trunc, &from[i], now, &p);
          if (v != V_ACCEPT) {
            dropped[v]++;
            continue;
          }
          accepted++;
          if (w[DT_OFF_TYPE] != DT_TYPE_PROBE) continue;
          /* REPLY in place (PROTOCOL.md §3); the MAC is written below with the send clock */
          w[DT_OFF_TYPE] = DT_TYPE_REPLY;
          dt_put64(w + DT_OFF_SENDER, self_id);
          oiov[nout].iov_base = w;
          oiov[nout].iov_len = len;
          out[nout].msg_hdr.msg_name = &from[i];
          out[nout].msg_hdr.msg_namelen = sizeof from[i];
          opeer[nout] = p;
          nout++;
        }
        if (kernel_ts) {
          /* every datagram of the batch is judged: receive → verdict from its kernel stamp */
          struct timespec vt;
          clock_gettime(CLOCK_REALTIME, &vt);
          int64_t vns = (int64_t)vt.tv_sec * 1000000000 + vt.tv_nsec;
          for (int i = 0; i < n; i++) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&in[i].msg_hdr); c; c = CMSG_NXTHDR(&in[i].msg_hdr, c)) {
              if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec t;
                memcpy(&t, CMSG_DATA(c), sizeof t);
                lat_record((vns - ((int64_t)t.tv_sec * 1000000000 + t.tv_nsec)) / 1000);
              }
            }
          }
        }
        if (nout > 0) {
          uint64_t ts = now_us(); /* the replier's clock when it signs */
          for (int j = 0; j < nout; j++) {
            uint8_t *w = oiov[j].iov_base;
            size_t len = oiov[j].iov_len;
            dt_put64(w + DT_OFF_NONCE, nonce++); /* one counter; sent in this order */
            dt_put64(w + DT_OFF_SEND_TS, ts);
            dt_mac(&opeer[j]->cur, w, len, w + len - DT_MAC_LEN);
          }
          if (!gso) {
            for (int k = 0; k < nout;) {
              int r = sendmmsg(fd, out + k, (unsigned)(nout - k), 0);
              if (r < 0) {
                if (errno == EINTR) continue;
                send_errors++; /* the kernel refused this one: counted, the batch moves on */
                k++;
                continue;
              }
              replied += (uint64_t)r;
              k += r;
            }
          } else {
            /* runs of one address and one length → one message each, cut by the kernel (UDP_SEGMENT) */
            int ng = 0;
            for (int j = 0; j < nout;) {
              int e = j + 1;
              while (e < nout && e - j < GSO_MAX_SEGS && oiov[e].iov_len == oiov[j].iov_len && (size_t)(e - j + 1) * oiov[j].iov_len <= GSO_MAX_BYTES &&
                     memcmp(out[e].msg_hdr.msg_name, out[j].msg_hdr.msg_name, sizeof(struct sockaddr_in)) == 0)
                e++;
              struct msghdr *h = &gout[ng].msg_hdr;
              memset(h, 0, sizeof *h);
              h->msg_name = out[j].msg_hdr.msg_name;
              h->msg_namelen = out[j].msg_hdr.msg_namelen;
              h->msg_iov = &oiov[j];
              h->msg_iovlen = (size_t)(e - j);
              if (e - j > 1) {
                h->msg_control = gctrl[ng];
                h->msg_controllen = sizeof gctrl[ng];
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = IPPROTO_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t g = (uint16_t)oiov[j].iov_len;
                memcpy(CMSG_DATA(c), &g, sizeof g);
              }
              gfirst[ng++] = j;
              j = e;
            }
            for (int k = 0; k < ng;) {
              int r = sendmmsg(fd, gout + k, (unsigned)(ng - k), 0);
              if (r < 0) {
                if (errno == EINTR) continue;
                size_t segs = gout[k].msg_hdr.msg_iovlen;
                if (segs > 1) {
                  /* refused as a GSO message: each of its datagrams on its own, refused or not on its own */
                  int j0 = gfirst[k];
                  for (size_t q = 0; q < segs;) {
                    int r1 = sendmmsg(fd, out + j0 + (int)q, (unsigned)(segs - q), 0);
                    if (r1 < 0) {
                      if (errno == EINTR) continue;
                      send_errors++;
                      q++;
                      continue;
                    }
                    replied += (uint64_t)r1;
                    q += (size_t)r1;
                  }
                } else send_errors++; /* the kernel refused this one: counted, the batch moves on */
                k++;
                continue;
              }
              for (int q = 0; q < r; q++) {
                size_t segs = gout[k + q].msg_hdr.msg_iovlen;
                replied += segs;
                if (segs > 1) gso_sent += segs;
              }
              k += r;
            }
          }
        }
        if (n < batch) break;
      }
    }
    if (use_control && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!control()) break;
    }
  }
  print_counts("final");
  close(fd);
  return 0;
}
