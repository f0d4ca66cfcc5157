/*
 * The C primitives of bench/c/ against the shared vectors (test/bench-c.test.ts drives it):
 * one command per stdin line, one answer per stdout line. Every argument is hex ("-" for
 * empty), so IDs with spaces or control characters pass unharmed.
 *
 *   hmac KEY DATA            -> HMAC-SHA256, hex
 *   hkdf IKM SALT INFO L     -> HKDF-SHA256 OKM, hex (L in decimal)
 *   sender AGENT             -> sender_id, hex
 *   pair ROOT TENANT A B     -> pair key, hex
 *   id ID                    -> "valid" or "invalid: <why>"
 *
 * Build: cc -O2 -o selftest selftest.c
 */
#define _GNU_SOURCE
#include "dtproto.h"

/** Decode hex (or "-" = empty) into a fresh buffer; length in *n; NULL when not hex. */
static uint8_t *unhex(const char *s, size_t *n) {
  if (strcmp(s, "-") == 0) s = "";
  size_t len = strlen(s);
  if (len % 2) return NULL;
  uint8_t *out = malloc(len / 2 + 1);
  if (hex_decode(s, out, len / 2) != 0) {
    free(out);
    return NULL;
  }
  out[len / 2] = 0;
  *n = len / 2;
  return out;
}

static void put_hex(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
}

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    char *argv[8];
    int argc = 0;
    for (char *t = strtok(line, " \t\r\n"); t && argc < 8; t = strtok(NULL, " \t\r\n")) argv[argc++] = t;
    if (argc == 0) continue;
    size_t n[8] = {0};
    uint8_t *a[8] = {0};
    int bad = 0;
    int is_hkdf = strcmp(argv[0], "hkdf") == 0;
    for (int i = 1; i < argc; i++)
      if (!(is_hkdf && i == 4) && (a[i] = unhex(argv[i], &n[i])) == NULL) bad = 1;
    if (bad) {
      printf("error: not hex\n");
    } else if (strcmp(argv[0], "hmac") == 0 && argc == 3) {
      uint8_t mac[32];
      hmac_sha256(a[1], n[1], a[2], n[2], mac);
      put_hex(mac, 32);
    } else if (strcmp(argv[0], "hkdf") == 0 && argc == 5) {
      size_t L = (size_t)strtoul(argv[4], NULL, 10);
      if (L > 255 * 32) {
        printf("error: L too large\n");
      } else {
        uint8_t *okm = malloc(L + 1);
        hkdf_sha256(a[2], n[2], a[1], n[1], a[3], n[3], okm, L);
        put_hex(okm, L);
        free(okm);
      }
    } else if (strcmp(argv[0], "sender") == 0 && argc == 2) {
      uint8_t id[8];
      dt_put64(id, dt_sender_id((const char *)a[1]));
      put_hex(id, 8);
    } else if (strcmp(argv[0], "pair") == 0 && argc == 5 && n[1] == 32) {
      uint8_t key[32];
      dt_pair_key(a[1], (const char *)a[2], (const char *)a[3], (const char *)a[4], key);
      put_hex(key, 32);
    } else if (strcmp(argv[0], "id") == 0 && argc == 2) {
      const char *why = strlen((const char *)a[1]) != n[1] ? "must not contain NUL" : dt_id_invalid((const char *)a[1]);
      if (why) printf("invalid: %s\n", why);
      else printf("valid\n");
    } else {
      printf("error: unknown command\n");
    }
    for (int i = 1; i < argc; i++) free(a[i]);
    fflush(stdout);
  }
  free(line);
  return 0;
}
