/* C tests of the keyward C ABI: every exported function, hostile input for each (NULL in
 * every pointer argument, invalid UTF-8, inputs past each limit, buffers one byte too
 * small, double close, use after close), the panic boundary (kw_test_panic, a test hook of
 * a library built with `--features test-hooks`), and a replay of the shared
 * vectors tests/vectors/{keys,headers,verify,edge}.json.
 *
 * Compiled as C11 (-std=c11 -Wall -Wextra -Werror -pedantic) and as C++17, linked against
 * libkeyward.so and libkeyward.a, run under ASan+UBSan and valgrind by scripts/test-c.sh.
 * Usage: test_keyward <tests/vectors directory>
 *
 * Verify scenarios use a frozen scenario clock: "the time the scenario started" is taken at
 * the scenario's first verify, after the keys it needs were created or rotated (the Rust
 * replay uses a manual clock; with the wall clock a rotation without grace is only expired
 * from the moment it was committed). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "keyward.h"
#include "json.h"

/* A test hook, not part of the C ABI: exported only by a library built with
 * `cargo build --lib --features test-hooks` (scripts/test-c.sh links these tests against one)
 * and declared in no header, so this file declares it. */
#ifdef __cplusplus
extern "C" {
#endif
kw_status kw_test_panic(void);
#ifdef __cplusplus
}
#endif

static int passed, failed;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) passed++;                                                          \
    else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
  } while (0)

#define CHECK_STATUS(call, expected)                                             \
  do {                                                                           \
    kw_status got_ = (call);                                                     \
    if (got_ == (kw_status)(expected)) passed++;                                 \
    else {                                                                       \
      failed++;                                                                  \
      fprintf(stderr, "FAIL %s:%d: %s -> %s, expected %s\n", __FILE__, __LINE__, #call, \
              kw_status_name(got_), kw_status_name(expected));                   \
    }                                                                            \
  } while (0)

static char tmpdir[256];
static const char BAD_UTF8[] = "\xff\xfe";
static kw_str S(const char *s) { kw_str r; r.ptr = s; r.len = s ? strlen(s) : 0; return r; }
static kw_str NONE_STR(void) { kw_str r; r.ptr = NULL; r.len = 0; return r; }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void db_path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void remove_store(const char *name) {
  char p[512];
  const char *suffixes[] = {"", ".pepper", ".kwsync"};
  size_t i;
  for (i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s%s", tmpdir, name, suffixes[i]);
    unlink(p);
  }
}

static kw_options options_for(const char *path) {
  kw_options o;
  memset(&o, 0, sizeof o);
  o.path = path;
  o.path_len = strlen(path);
  o.flush_interval_ms = KW_FLUSH_MANUAL;
  return o;
}

static kw_store open_store(const char *name) {
  static char paths[16][512];
  static int next;
  char *path = paths[next++ % 16];
  kw_options o;
  kw_store s = KW_STORE_NONE;
  db_path(path, 512, name);
  o = options_for(path);
  CHECK_STATUS(kw_open(&o, &s), KW_OK);
  return s;
}

/* Creates a key; writes it (NUL-terminated) into key[KW_MAX_KEY_LEN + 1]. */
static kw_status create_key(kw_store s, const char *owner, const kw_str *scopes, size_t n, const char *env,
                            int64_t expires_at_ms, const kw_credits *credits, char *key) {
  kw_new_key nk;
  size_t key_len = 0;
  kw_status st;
  memset(&nk, 0, sizeof nk);
  nk.owner = S(owner);
  nk.scopes = scopes;
  nk.scopes_len = n;
  nk.env = env ? S(env) : NONE_STR();
  nk.expires_at_ms = expires_at_ms;
  nk.credits = credits;
  st = kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL);
  key[st == KW_OK ? key_len : 0] = 0;
  return st;
}

static void key_parts(const char *key, char *id, char *secret) {
  kw_parsed_key p;
  CHECK_STATUS(kw_parse_key(key, strlen(key), NULL, 0, &p), KW_OK);
  CHECK(p.valid == 1);
  strcpy(id, p.id);
  strcpy(secret, p.secret);
}

/* ------------------------------------------------------------------ statics and panics */

static void test_static_helpers(void) {
  uint32_t i;
  CHECK(kw_abi_version() == KW_ABI_VERSION);
  CHECK(strlen(kw_version()) > 0);
  CHECK(strcmp(kw_status_name(KW_OK), "OK") == 0);
  CHECK(strcmp(kw_status_name(KW_NOT_FOUND), "NOT_FOUND") == 0);
  CHECK(strcmp(kw_status_name(9999), "UNKNOWN") == 0);
  CHECK(strcmp(kw_status_message(9999), "unknown status") == 0);
  for (i = 0; i < 64; i++) {
    CHECK(kw_status_message(i) != NULL && strlen(kw_status_message(i)) > 0);
    CHECK(kw_status_name(i) != NULL);
  }
  CHECK(KW_OK == 0 && KW_BUFFER_TOO_SMALL == 5 && KW_PANIC == 6 && KW_CLOSED == 7 && KW_NOT_FOUND == 10);
  /* Families come from the library's one table of codes. */
  CHECK(kw_status_family(KW_OK) == KW_FAMILY_OK);
  CHECK(kw_status_family(KW_TOO_LONG) == KW_FAMILY_ARGUMENT);
  CHECK(kw_status_family(KW_NOT_FOUND) == KW_FAMILY_NOT_FOUND);
  CHECK(kw_status_family(KW_CREDIT_SLOTS_EXHAUSTED) == KW_FAMILY_POLICY);
  CHECK(kw_status_family(KW_READ_ONLY) == KW_FAMILY_STORAGE);
  CHECK(kw_status_family(KW_PEPPER_PERMISSIONS) == KW_FAMILY_PEPPER);
  CHECK(kw_status_family(KW_CREDENTIAL_MISSING) == KW_FAMILY_CREDENTIAL);
  CHECK(kw_status_family(KW_PANIC) == KW_FAMILY_INTERNAL);
  CHECK(kw_status_family(9999) == KW_FAMILY_INTERNAL);
  CHECK(strcmp(kw_reason_code(KW_REASON_INSUFFICIENT_SCOPE), "INSUFFICIENT_SCOPE") == 0);
  CHECK(strcmp(kw_reason_code(77), "UNKNOWN") == 0);
  CHECK(strcmp(kw_reason_message(77), "unknown reason") == 0);
  CHECK(strlen(kw_reason_message(KW_REASON_VALID)) > 0);
  CHECK(kw_reason_http_status(KW_REASON_VALID) == 200);
  CHECK(kw_reason_http_status(KW_REASON_EXPIRED) == 401);
  CHECK(kw_reason_http_status(KW_REASON_USAGE_EXCEEDED) == 403);
  CHECK(kw_reason_http_status(77) == 0);
  CHECK(strcmp(kw_key_error_name(KW_KEY_BAD_CHECKSUM), "bad_checksum") == 0);
  CHECK(strcmp(kw_key_error_name(KW_KEY_OK), "ok") == 0);
  CHECK(strcmp(kw_key_error_name(99), "unknown") == 0);
}

static void test_panic_boundary(void) {
  /* A panic inside a kw_ call comes back as KW_PANIC, and the process goes on. */
  CHECK_STATUS(kw_test_panic(), KW_PANIC);
  CHECK_STATUS(kw_test_panic(), KW_PANIC);
  CHECK(kw_abi_version() == KW_ABI_VERSION);
}

/* ------------------------------------------------------------------ vectors */

static void replay_keys(const char *dir) {
  char path[512];
  size_t len, i;
  char *text;
  jval root;
  const jval *cases;
  snprintf(path, sizeof path, "%s/keys.json", dir);
  text = read_file(path, &len);
  CHECK(text != NULL);
  if (!text) return;
  CHECK(json_parse(text, len, &root));
  cases = json_get(&root, "cases");
  CHECK(cases && cases->len > 10);
  for (i = 0; cases && i < cases->len; i++) {
    const jval *c = &cases->items[i];
    const jval *key = json_get(c, "key");
    const char *prefix = json_str(&root, "prefix");
    kw_parsed_key p;
    CHECK_STATUS(kw_parse_key(key->str, key->len, prefix, strlen(prefix), &p), KW_OK);
    if (json_num(c, "valid", 0) != 0) {
      const char *env = json_str(c, "env");
      CHECK(p.valid == 1);
      CHECK(strcmp(p.id, json_str(c, "id")) == 0);
      CHECK(strcmp(p.secret, json_str(c, "secret")) == 0);
      CHECK(strcmp(p.env, env ? env : "") == 0);
      CHECK(strcmp(p.prefix, prefix) == 0);
    } else {
      CHECK(p.valid == 0);
      if (strcmp(kw_key_error_name(p.error), json_str(c, "error")) != 0) {
        failed++;
        fprintf(stderr, "FAIL keys.json %s: %s, expected %s\n", json_str(c, "name"), kw_key_error_name(p.error),
                json_str(c, "error"));
      } else {
        passed++;
      }
    }
  }
  json_free(&root);
  free(text);
}

static void replay_headers(const char *dir) {
  char path[512];
  size_t len, i, j;
  char *text;
  jval root;
  const jval *cases;
  snprintf(path, sizeof path, "%s/headers.json", dir);
  text = read_file(path, &len);
  CHECK(text != NULL);
  if (!text) return;
  CHECK(json_parse(text, len, &root));
  cases = json_get(&root, "cases");
  CHECK(cases && cases->len > 10);
  for (i = 0; cases && i < cases->len; i++) {
    const jval *c = &cases->items[i];
    const jval *hs = json_get(c, "headers");
    const jval *expect = json_get(c, "expect");
    kw_header headers[16];
    uint8_t secret[10000], id[64];
    size_t secret_len = 0, id_len = 0;
    uint32_t kind = 0;
    kw_status st;
    for (j = 0; j < hs->len && j < 16; j++) {
      headers[j].name = hs->items[j].items[0].str;
      headers[j].name_len = hs->items[j].items[0].len;
      headers[j].value = hs->items[j].items[1].str;
      headers[j].value_len = hs->items[j].items[1].len;
    }
    st = kw_extract_credential(hs->len ? headers : NULL, hs->len, &kind, secret, sizeof secret, &secret_len, id,
                               sizeof id, &id_len);
    if (json_get(expect, "error")) {
      if (strcmp(kw_status_name(st), json_str(expect, "error")) == 0) passed++;
      else { failed++; fprintf(stderr, "FAIL headers.json %s: %s\n", json_str(c, "name"), kw_status_name(st)); }
    } else if (json_get(expect, "key")) {
      const char *k = json_str(expect, "key");
      CHECK(st == KW_OK && kind == KW_CREDENTIAL_KEY && secret_len == strlen(k) && memcmp(secret, k, secret_len) == 0);
      CHECK(id_len == 0);
    } else {
      const jval *pair = json_get(expect, "pair");
      const char *pid = json_str(pair, "id"), *psec = json_str(pair, "secret");
      CHECK(st == KW_OK && kind == KW_CREDENTIAL_PAIR);
      CHECK(id_len == strlen(pid) && memcmp(id, pid, id_len) == 0);
      CHECK(secret_len == strlen(psec) && memcmp(secret, psec, secret_len) == 0);
    }
  }
  json_free(&root);
  free(text);
}

/* A text of edge.json: a JSON string, or {"hex": ...} for bytes that are not UTF-8 or hold a
 * NUL. Returns a malloc'd copy (never NULL, even when empty) and its length. */
static char *edge_bytes(const jval *v, size_t *len) {
  char *out;
  size_t i, n;
  if (v && v->type == J_STR) {
    out = (char *)malloc(v->len + 1);
    memcpy(out, v->str, v->len);
    *len = v->len;
    return out;
  }
  {
    const char *hex = json_str(v, "hex");
    n = hex ? strlen(hex) / 2 : 0;
    out = (char *)malloc(n + 1);
    for (i = 0; i < n; i++) {
      unsigned int byte = 0;
      sscanf(hex + 2 * i, "%2x", &byte);
      out[i] = (char)byte;
    }
    *len = n;
    return out;
  }
}

static const char *family_name(uint32_t family) {
  switch (family) {
    case KW_FAMILY_OK: return "OK";
    case KW_FAMILY_ARGUMENT: return "ARGUMENT";
    case KW_FAMILY_NOT_FOUND: return "NOT_FOUND";
    case KW_FAMILY_POLICY: return "POLICY";
    case KW_FAMILY_STORAGE: return "STORAGE";
    case KW_FAMILY_PEPPER: return "PEPPER";
    case KW_FAMILY_CREDENTIAL: return "CREDENTIAL";
    default: return "INTERNAL";
  }
}

/* Checks one answer of the C door against a case's expect: a verdict (status KW_OK and the
 * reason with its HTTP status), an error (the status and its family: a header problem is
 * KW_FAMILY_CREDENTIAL from kw_verify_headers, the application's mistakes KW_FAMILY_ARGUMENT),
 * or a created key. */
static int edge_matches(const jval *expect, kw_status st, const kw_verdict *v, const char *call, const char *name) {
  const char *reason = json_str(expect, "reason");
  const char *family = json_str(expect, "family");
  const char *status = json_str(expect, "status") ? json_str(expect, "status") : json_str(expect, "code");
  int ok;
  char got[160];
  if (json_num(expect, "created", 0) != 0) {
    ok = st == KW_OK;
    snprintf(got, sizeof got, "%s", kw_status_name(st));
  } else if (reason) {
    ok = st == KW_OK && strcmp(kw_reason_code(v->reason), reason) == 0 &&
         v->http_status == (uint32_t)json_num(expect, "http_status", 0) &&
         v->http_status == kw_reason_http_status(v->reason);
    if (st == KW_OK) snprintf(got, sizeof got, "verdict %s %u", kw_reason_code(v->reason), (unsigned)v->http_status);
    else snprintf(got, sizeof got, "error %s", kw_status_name(st));
  } else {
    ok = family && status && st != KW_OK && strcmp(kw_status_name(st), status) == 0 &&
         strcmp(family_name(kw_status_family(st)), family) == 0;
    if (st == KW_OK) snprintf(got, sizeof got, "verdict %s %u", kw_reason_code(v->reason), (unsigned)v->http_status);
    else snprintf(got, sizeof got, "error %s (%s)", kw_status_name(st), family_name(kw_status_family(st)));
  }
  if (ok) passed++;
  else {
    failed++;
    fprintf(stderr, "FAIL edge.json %s (%s): got %s\n", name, call, got);
  }
  return ok;
}

/* Replays edge.json through kw_verify and kw_verify_key (a key), kw_verify_pair (an id and
 * secret), kw_verify_headers (headers) and kw_create; counts the cases run and checks the
 * count against the number the file records for the c door. */
static void replay_edge(const char *dir) {
  char path[512];
  size_t len, i, j, k;
  char *text;
  jval root;
  const jval *cases;
  unsigned run = 0, applicable = 0;
  kw_store s;
  snprintf(path, sizeof path, "%s/edge.json", dir);
  text = read_file(path, &len);
  CHECK(text != NULL);
  if (!text) return;
  CHECK(json_parse(text, len, &root));
  cases = json_get(&root, "cases");
  CHECK(cases && cases->len >= 40);
  s = open_store("edge.redb");
  for (i = 0; cases && i < cases->len; i++) {
    const jval *c = &cases->items[i];
    const jval *doors = json_get(c, "doors");
    const jval *scopes_j = json_get(c, "scopes");
    const jval *expect = json_get(c, "expect");
    const char *name = json_str(c, "name");
    const char *op = json_str(c, "op");
    int for_c = 0;
    kw_str *scopes;
    char **scope_bufs;
    size_t nscopes = scopes_j ? scopes_j->len : 0;
    kw_verdict v;
    kw_status st;
    for (j = 0; doors && j < doors->len; j++)
      if (strcmp(doors->items[j].str, "c") == 0) for_c = 1;
    if (!for_c) continue;
    scopes = (kw_str *)calloc(nscopes + 1, sizeof(kw_str));
    scope_bufs = (char **)calloc(nscopes + 1, sizeof(char *));
    for (k = 0; k < nscopes; k++) {
      scope_bufs[k] = edge_bytes(&scopes_j->items[k], &scopes[k].len);
      scopes[k].ptr = scope_bufs[k];
    }
    memset(&v, 0, sizeof v);
    if (strcmp(op, "verify") == 0) {
      size_t key_len;
      char *key = edge_bytes(json_get(c, "key"), &key_len);
      st = kw_verify(s, key, key_len, nscopes ? scopes : NULL, nscopes, 0, 0, &v, NULL, 0, NULL);
      edge_matches(expect, st, &v, "kw_verify", name);
      memset(&v, 0, sizeof v);
      st = kw_verify_key(s, key, key_len, nscopes ? scopes : NULL, nscopes, &v);
      edge_matches(expect, st, &v, "kw_verify_key", name);
      free(key);
    } else if (strcmp(op, "pair") == 0) {
      size_t id_len, secret_len;
      char *id = edge_bytes(json_get(c, "id"), &id_len);
      char *secret = edge_bytes(json_get(c, "secret"), &secret_len);
      st = kw_verify_pair(s, id, id_len, secret, secret_len, nscopes ? scopes : NULL, nscopes, 0, 0, &v, NULL, 0,
                          NULL);
      edge_matches(expect, st, &v, "kw_verify_pair", name);
      free(id);
      free(secret);
    } else if (strcmp(op, "headers") == 0) {
      const jval *hs = json_get(c, "headers");
      size_t repeat = (size_t)json_num(c, "repeat", 1), n = hs->len * repeat, r;
      kw_header *headers = (kw_header *)calloc(n + 1, sizeof(kw_header));
      char **bufs = (char **)calloc(2 * hs->len + 1, sizeof(char *));
      size_t *lens = (size_t *)calloc(2 * hs->len + 1, sizeof(size_t));
      for (j = 0; j < hs->len; j++) {
        bufs[2 * j] = edge_bytes(&hs->items[j].items[0], &lens[2 * j]);
        bufs[2 * j + 1] = edge_bytes(&hs->items[j].items[1], &lens[2 * j + 1]);
      }
      for (r = 0; r < repeat; r++)
        for (j = 0; j < hs->len; j++) {
          kw_header *h = &headers[r * hs->len + j];
          h->name = bufs[2 * j];
          h->name_len = lens[2 * j];
          h->value = bufs[2 * j + 1];
          h->value_len = lens[2 * j + 1];
        }
      st = kw_verify_headers(s, n ? headers : NULL, n, nscopes ? scopes : NULL, nscopes, 0, 0, &v, NULL, 0, NULL);
      edge_matches(expect, st, &v, "kw_verify_headers", name);
      for (j = 0; j < 2 * hs->len; j++) free(bufs[j]);
      free(bufs);
      free(lens);
      free(headers);
    } else if (strcmp(op, "create") == 0) {
      kw_new_key nk;
      char key[KW_MAX_KEY_LEN + 1];
      size_t key_len = 0, owner_len;
      char *owner = edge_bytes(json_get(c, "owner"), &owner_len);
      memset(&nk, 0, sizeof nk);
      nk.owner.ptr = owner;
      nk.owner.len = owner_len;
      nk.scopes = nscopes ? scopes : NULL;
      nk.scopes_len = nscopes;
      nk.env = NONE_STR();
      st = kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL);
      edge_matches(expect, st, &v, "kw_create", name);
      free(owner);
    } else {
      failed++;
      fprintf(stderr, "FAIL edge.json %s: unknown op %s\n", name, op);
    }
    for (k = 0; k < nscopes; k++) free(scope_bufs[k]);
    free(scope_bufs);
    free(scopes);
    run++;
  }
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("edge.redb");
  applicable = (unsigned)json_num(json_get(&root, "applicable"), "c", 0);
  if (run == applicable && run > 0) passed++;
  else {
    failed++;
    fprintf(stderr, "FAIL edge.json: the c door ran %u cases, the file says %u apply\n", run, applicable);
  }
  printf("edge vectors: %u cases run (applicable to c: %u)\n", run, applicable);
  json_free(&root);
  free(text);
}

typedef struct { char as[16]; char key[KW_MAX_KEY_LEN + 1]; } named_key;

static const char *find_key(named_key *keys, size_t n, const char *as) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(keys[i].as, as) == 0) return keys[i].key;
  return NULL;
}

static void replay_verify(const char *dir) {
  char path[512];
  size_t len, i, j, k;
  char *text;
  jval root;
  const jval *scenarios;
  snprintf(path, sizeof path, "%s/verify.json", dir);
  text = read_file(path, &len);
  CHECK(text != NULL);
  if (!text) return;
  CHECK(json_parse(text, len, &root));
  scenarios = json_get(&root, "scenarios");
  CHECK(scenarios && scenarios->len >= 5);
  for (i = 0; scenarios && i < scenarios->len; i++) {
    const jval *sc = &scenarios->items[i];
    const jval *steps = json_get(sc, "steps");
    named_key keys[8];
    size_t nkeys = 0;
    int64_t start = 0;
    char name[64];
    kw_store s;
    snprintf(name, sizeof name, "verify-%u.redb", (unsigned)i);
    s = open_store(name);
    for (j = 0; j < steps->len; j++) {
      const jval *st = &steps->items[j];
      const char *op = json_str(st, "op");
      const jval *scopes_j = json_get(st, "scopes");
      kw_str scopes[16];
      size_t nscopes = 0;
      if (scopes_j)
        for (k = 0; k < scopes_j->len && k < 16; k++) {
          scopes[k].ptr = scopes_j->items[k].str;
          scopes[k].len = scopes_j->items[k].len;
          nscopes++;
        }
      if (strcmp(op, "create") == 0) {
        const jval *cr = json_get(st, "credits");
        kw_credits credits;
        double expires_in = json_num(st, "expires_in_ms", 0);
        memset(&credits, 0, sizeof credits);
        if (cr) {
          credits.remaining = (uint64_t)json_num(cr, "remaining", 0);
          credits.cost = (uint32_t)json_num(cr, "cost", 1);
        }
        strcpy(keys[nkeys].as, json_str(st, "as"));
        CHECK_STATUS(create_key(s, json_str(st, "owner"), nscopes ? scopes : NULL, nscopes, json_str(st, "env"),
                                expires_in > 0 ? now_ms() + (int64_t)expires_in : 0, cr ? &credits : NULL,
                                keys[nkeys].key),
                     KW_OK);
        if (json_get(st, "rate_limit")) {
          /* kw_new_key keeps its layout: the key's own limit is set right after. */
          const jval *rl = json_get(st, "rate_limit");
          kw_rate_limit limit;
          char id[32], secret[64];
          limit.rate = (uint64_t)json_num(rl, "rate", 0);
          limit.period_ms = (uint64_t)json_num(rl, "period_ms", 0);
          limit.burst = (uint64_t)json_num(rl, "burst", 0);
          key_parts(keys[nkeys].key, id, secret);
          CHECK_STATUS(kw_set_rate_limit(s, id, strlen(id), &limit, NULL, 0, NULL), KW_OK);
        }
        nkeys++;
      } else if (strcmp(op, "revoke") == 0) {
        char id[32], secret[64];
        key_parts(find_key(keys, nkeys, json_str(st, "key")), id, secret);
        CHECK_STATUS(kw_revoke(s, id, strlen(id), NULL, 0, NULL, 0, NULL), KW_OK);
      } else if (strcmp(op, "rotate") == 0) {
        char id[32], secret[64];
        size_t key_len = 0;
        key_parts(find_key(keys, nkeys, json_str(st, "key")), id, secret);
        strcpy(keys[nkeys].as, json_str(st, "as"));
        CHECK_STATUS(kw_rotate(s, id, strlen(id), (uint64_t)json_num(st, "grace_ms", 0), (uint8_t *)keys[nkeys].key,
                               KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL),
                     KW_OK);
        keys[nkeys].key[key_len] = 0;
        nkeys++;
      } else if (strcmp(op, "import_legacy") == 0) {
        static const char *schemes[] = {"sanctum", "drf", "unkey", "better-auth"};
        const jval *data = json_get(st, "data");
        kw_legacy_import_report r;
        uint32_t scheme = 0;
        for (k = 0; k < 4; k++)
          if (strcmp(json_str(st, "from"), schemes[k]) == 0) scheme = (uint32_t)(k + 1);
        CHECK(json_get(st, "options")->len == 0); /* no vector needs options yet */
        CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)data->str, data->len, NULL, &r), KW_OK);
        CHECK(r.imported == (uint64_t)json_num(st, "imported", -1));
      } else if (strcmp(op, "owner_suspend") == 0) {
        const char *owner = json_str(st, "owner");
        CHECK_STATUS(kw_owner_suspend(s, owner, strlen(owner), NULL, 0, NULL, 0, NULL), KW_OK);
      } else if (strcmp(op, "owner_resume") == 0) {
        const char *owner = json_str(st, "owner");
        CHECK_STATUS(kw_owner_resume(s, owner, strlen(owner), NULL, 0, NULL), KW_OK);
      } else if (strcmp(op, "owner_scopes") == 0) {
        const char *owner = json_str(st, "owner");
        const jval *clear = json_get(st, "clear");
        uint32_t clear_flag = clear && clear->type == J_BOOL && clear->num != 0 ? 1u : 0u;
        CHECK_STATUS(kw_owner_set_scopes(s, owner, strlen(owner), nscopes ? scopes : NULL, nscopes, clear_flag, NULL,
                                         0, NULL),
                     KW_OK);
      } else {
        kw_verdict v;
        kw_status status;
        const char *expect = json_str(st, "expect");
        const jval *expect_scopes = json_get(st, "expect_scopes");
        char record[KW_KEY_INFO_MAX_LEN];
        size_t record_len = 0;
        int64_t at;
        if (start == 0) start = now_ms();
        at = start + (int64_t)json_num(st, "at_offset_ms", 0);
        memset(&v, 0, sizeof v);
        if (strcmp(op, "verify_text") == 0) {
          const jval *t = json_get(st, "text");
          status = kw_verify(s, t->str, t->len, scopes, nscopes, 0, at, &v, NULL, 0, NULL);
        } else if (strcmp(op, "verify") == 0) {
          const char *key = find_key(keys, nkeys, json_str(st, "key"));
          const jval *dry = json_get(st, "dry_run");
          uint32_t flags = dry && dry->type == J_BOOL && dry->num != 0 ? (uint32_t)KW_VERIFY_DRY_RUN : 0u;
          status = kw_verify_ex(s, key, strlen(key), scopes, nscopes, (uint32_t)json_num(st, "cost", 0), at, flags, &v,
                                expect_scopes ? (uint8_t *)record : NULL, expect_scopes ? sizeof record : 0,
                                expect_scopes ? &record_len : NULL);
          if (expect_scopes && status == KW_OK) {
            /* The verdict's record carries the effective scopes, e.g. "scopes":["read"]. */
            char want[512];
            size_t used = (size_t)snprintf(want, sizeof want, "\"scopes\":[");
            for (k = 0; k < expect_scopes->len; k++)
              used += (size_t)snprintf(want + used, sizeof want - used, "%s\"%.*s\"", k ? "," : "",
                                       (int)expect_scopes->items[k].len, expect_scopes->items[k].str);
            snprintf(want + used, sizeof want - used, "]");
            record[record_len < sizeof record ? record_len : sizeof record - 1] = 0;
            CHECK(strstr(record, want) != NULL);
          }
        } else {
          char id[32], secret[64];
          const char *mutate = json_str(st, "mutate");
          key_parts(find_key(keys, nkeys, json_str(st, "key")), id, secret);
          if (mutate && strcmp(mutate, "wrong_secret_first") == 0) secret[0] = secret[0] == 'a' ? 'b' : 'a';
          if (mutate && strcmp(mutate, "wrong_secret_last") == 0)
            secret[KW_SECRET_LEN - 1] = secret[KW_SECRET_LEN - 1] == 'a' ? 'b' : 'a';
          if (mutate && strcmp(mutate, "unknown_id") == 0) memcpy(id, "ZZZZzzzz00009999", KW_KEY_ID_LEN);
          status = kw_verify_pair(s, id, strlen(id), secret, strlen(secret), scopes, nscopes, 0, at, &v, NULL, 0,
                                  NULL);
        }
        CHECK_STATUS(status, KW_OK);
        if (strcmp(kw_reason_code(v.reason), expect) == 0) passed++;
        else {
          failed++;
          fprintf(stderr, "FAIL verify.json %s step %u: %s, expected %s\n", json_str(sc, "name"), (unsigned)j,
                  kw_reason_code(v.reason), expect);
        }
        CHECK(v.http_status == kw_reason_http_status(v.reason));
      }
    }
    CHECK_STATUS(kw_close(s), KW_OK);
    remove_store(name);
  }
  json_free(&root);
  free(text);
}

/* ------------------------------------------------------------------ the full surface */

static void test_open_and_registry(void) {
  char path[512], long_path[KW_MAX_PATH_LEN + 2];
  kw_options o;
  kw_store a = KW_STORE_NONE, b = KW_STORE_NONE, c = KW_STORE_NONE;
  uint32_t same = 0;
  uint8_t pepper[32];
  kw_store_stats st;
  db_path(path, sizeof path, "registry.redb");
  o = options_for(path);

  /* NULL per pointer argument, then bad values. */
  CHECK_STATUS(kw_open(NULL, &a), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_open(&o, NULL), KW_NULL_ARGUMENT);
  o.path = NULL;
  CHECK_STATUS(kw_open(&o, &a), KW_NULL_ARGUMENT);
  o = options_for(path);
  o.path_len = 0;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_ARGUMENT);
  memset(long_path, 'a', sizeof long_path);
  o = options_for(path);
  o.path = long_path;
  o.path_len = KW_MAX_PATH_LEN + 1;
  CHECK_STATUS(kw_open(&o, &a), KW_TOO_LONG);
  o = options_for(path);
  o.pepper = NULL;
  o.pepper_len = 32;
  CHECK_STATUS(kw_open(&o, &a), KW_NULL_ARGUMENT);
  o = options_for(path);
  o.pepper_file = NULL;
  o.pepper_file_len = 4;
  CHECK_STATUS(kw_open(&o, &a), KW_NULL_ARGUMENT);
  o = options_for(path);
  o.prefix = NULL;
  o.prefix_len = 2;
  CHECK_STATUS(kw_open(&o, &a), KW_NULL_ARGUMENT);
  o = options_for(path);
  o.prefix = BAD_UTF8;
  o.prefix_len = 2;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_UTF8);
  o = options_for(path);
  o.prefix = "abcdefghijklmnopq"; /* KW_MAX_TAG_LEN + 1 */
  o.prefix_len = KW_MAX_TAG_LEN + 1;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_ARGUMENT);
  o = options_for(path);
  o.pepper_file = long_path;
  o.pepper_file_len = KW_MAX_PATH_LEN + 1;
  CHECK_STATUS(kw_open(&o, &a), KW_TOO_LONG);
  o = options_for(path);
  o.concurrency = 7;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_ARGUMENT);
  o = options_for(path);
  o.flags = 0x80;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_ARGUMENT);
  o = options_for(path);
  memset(pepper, 7, sizeof pepper);
  o.pepper = pepper;
  o.pepper_len = 31;
  CHECK_STATUS(kw_open(&o, &a), KW_PEPPER_INVALID);
  o.pepper_len = 32;
  o.pepper_file = "x";
  o.pepper_file_len = 1;
  CHECK_STATUS(kw_open(&o, &a), KW_INVALID_ARGUMENT);
  {
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.redb", tmpdir);
    o = options_for(missing);
    CHECK_STATUS(kw_open(&o, &a), KW_DIRECTORY_MISSING);
  }
  CHECK(a == KW_STORE_NONE); /* never written on failure */

  /* Open, re-open: the same store, warm. */
  o = options_for(path);
  o.prefix = "kw";
  o.prefix_len = 2;
  CHECK_STATUS(kw_open(&o, &a), KW_OK);
  CHECK(a != KW_STORE_NONE && a < ((uint64_t)1 << 53));
  o.prefix = NULL;
  o.prefix_len = 0;
  CHECK_STATUS(kw_open(&o, &b), KW_OK);
  CHECK(a != b);
  CHECK_STATUS(kw_same_store(a, b, &same), KW_OK);
  CHECK(same == 1);
  CHECK_STATUS(kw_same_store(a, b, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_same_store(KW_STORE_NONE, b, &same), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_same_store(a, KW_STORE_NONE, &same), KW_NULL_ARGUMENT);
  o.concurrency = KW_CONCURRENCY_SINGLE_PROCESS;
  CHECK_STATUS(kw_open(&o, &c), KW_CONFIG_MISMATCH);
  o.concurrency = KW_CONCURRENCY_MULTI_PROCESS;
  o.pepper = pepper;
  o.pepper_len = 32;
  CHECK_STATUS(kw_open(&o, &c), KW_CONFIG_MISMATCH);

  CHECK_STATUS(kw_stats(a, &st), KW_OK);
  CHECK_STATUS(kw_stats(a, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_stats(KW_STORE_NONE, &st), KW_NULL_ARGUMENT);
  {
    /* The shared verify table: mapped, its keys those of the store, its lookup part a
     * fraction of the file. */
    kw_store_table_stats table;
    CHECK_STATUS(kw_table_stats(a, &table), KW_OK);
    CHECK(table.mapped == 1 && table.generation != 0);
    CHECK(table.keys == st.indexed_keys && table.slots >= table.keys);
    CHECK(table.lookup_bytes > 0 && table.lookup_bytes < table.file_bytes);
    CHECK_STATUS(kw_table_stats(a, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_table_stats(KW_STORE_NONE, &table), KW_NULL_ARGUMENT);
  }

  /* Close twice; use after close; forged handles. */
  CHECK_STATUS(kw_close(b), KW_OK);
  CHECK_STATUS(kw_close(b), KW_CLOSED);
  CHECK_STATUS(kw_stats(b, &st), KW_CLOSED);
  CHECK_STATUS(kw_stats(a, &st), KW_OK); /* a still open */
  CHECK_STATUS(kw_close(KW_STORE_NONE), KW_OK);
  CHECK_STATUS(kw_close(0x123456789ULL), KW_CLOSED);
  CHECK_STATUS(kw_close(UINT64_MAX), KW_CLOSED);
  CHECK_STATUS(kw_stats(UINT64_MAX, &st), KW_CLOSED);
  CHECK_STATUS(kw_close(a), KW_OK);
  CHECK_STATUS(kw_close(a), KW_CLOSED);
  remove_store("registry.redb");

  /* Explicit pepper (hex) and pepper file. */
  {
    char pepper_path[600];
    FILE *f;
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    kw_store d = KW_STORE_NONE;
    snprintf(pepper_path, sizeof pepper_path, "%s/pepper.hex", tmpdir);
    f = fopen(pepper_path, "w");
    fputs(hex, f);
    fclose(f);
    CHECK(chmod(pepper_path, 0600) == 0);
    db_path(path, sizeof path, "pepper.redb");
    o = options_for(path);
    o.pepper_file = pepper_path;
    o.pepper_file_len = strlen(pepper_path);
    CHECK_STATUS(kw_open(&o, &d), KW_OK);
    CHECK_STATUS(kw_close(d), KW_OK);
    o = options_for(path);
    o.pepper = (const uint8_t *)hex;
    o.pepper_len = 64;
    CHECK_STATUS(kw_open(&o, &d), KW_OK); /* same pepper, given as hex bytes */
    CHECK_STATUS(kw_close(d), KW_OK);
    o.pepper = pepper;
    o.pepper_len = 32;
    CHECK_STATUS(kw_open(&o, &d), KW_WRONG_PEPPER);
    remove_store("pepper.redb");
    unlink(pepper_path);
  }
}

/* Checks that `json` (len bytes) parses and holds `"field":"value"`. */
static int json_has(const uint8_t *json, size_t len, const char *field, const char *value) {
  jval v;
  const char *got;
  int ok;
  if (!json_parse((const char *)json, len, &v)) return 0;
  got = json_str(&v, field);
  ok = got && strcmp(got, value) == 0;
  json_free(&v);
  return ok;
}

static void test_management(void) {
  kw_store s = open_store("manage.redb");
  kw_store closed = open_store("closed.redb");
  static uint8_t info[KW_KEY_INFO_MAX_LEN], buf[1 << 16];
  char key[KW_MAX_KEY_LEN + 1], id[32], secret[64], long_text[10000];
  size_t key_len = 0, info_len = 0, len = 0, n = 0;
  kw_str scopes[KW_MAX_SCOPES + 1];
  kw_new_key nk;
  kw_credits credits;
  kw_key_update up;
  kw_verdict v;
  kw_usage_stats us;
  kw_credit_balance cb;
  kw_store_stats st;
  size_t i;
  memset(long_text, 'a', sizeof long_text);
  for (i = 0; i <= KW_MAX_SCOPES; i++) scopes[i] = S("read");
  CHECK_STATUS(kw_close(closed), KW_OK);
  remove_store("closed.redb");

  /* ---- create: every field, then hostile input */
  memset(&nk, 0, sizeof nk);
  memset(&credits, 0, sizeof credits);
  credits.remaining = 5;
  credits.refill_amount = 10;
  credits.refill_interval = KW_REFILL_DAILY;
  nk.owner = S("acct_1");
  nk.name = S("CI deploy");
  nk.scopes = scopes;
  nk.scopes_len = 1;
  nk.env = S("live");
  nk.metadata = (const uint8_t *)"{\"plan\":\"pro\"}";
  nk.metadata_len = 14;
  nk.expires_at_ms = now_ms() + 3600000;
  nk.credits = &credits;
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, info, sizeof info, &info_len), KW_OK);
  key[key_len] = 0;
  CHECK(strncmp(key, "kw_live_", 8) == 0);
  CHECK(json_has(info, info_len, "owner", "acct_1"));
  CHECK(json_has(info, info_len, "name", "CI deploy"));
  key_parts(key, id, secret);
  CHECK(json_has(info, info_len, "id", id));

  CHECK_STATUS(kw_create(s, NULL, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create(s, &nk, NULL, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, NULL, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 10, &info_len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, info, sizeof info, NULL), KW_NULL_ARGUMENT);
  key_len = 0;
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN - 1, &key_len, NULL, 0, NULL), KW_BUFFER_TOO_SMALL);
  CHECK(key_len == KW_MAX_KEY_LEN);
  info_len = 0;
  CHECK_STATUS(kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, info, KW_KEY_INFO_MAX_LEN - 1, &info_len),
               KW_BUFFER_TOO_SMALL);
  CHECK(info_len == KW_KEY_INFO_MAX_LEN);
  CHECK_STATUS(kw_create(KW_STORE_NONE, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL),
               KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create(closed, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_CLOSED);
  {
    kw_new_key bad = nk;
    char tmp[KW_MAX_KEY_LEN + 1];
    bad.owner = NONE_STR();
    CHECK_STATUS(create_key(s, NULL, NULL, 0, NULL, 0, NULL, tmp), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = nk; bad.owner.ptr = BAD_UTF8; bad.owner.len = 2;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_UTF8);
    bad = nk; bad.owner.ptr = long_text; bad.owner.len = KW_MAX_OWNER_LEN + 1;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_TOO_LONG);
    bad = nk; bad.owner = S("   ");
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    bad = nk; bad.name.ptr = NULL; bad.name.len = 3;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = nk; bad.name.ptr = BAD_UTF8; bad.name.len = 2;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_UTF8);
    bad = nk; bad.name.ptr = long_text; bad.name.len = KW_MAX_NAME_LEN + 1;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_TOO_LONG);
    bad = nk; bad.scopes = NULL; bad.scopes_len = 1;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = nk; bad.scopes_len = KW_MAX_SCOPES + 1;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_TOO_LONG);
    {
      kw_str one[1];
      one[0].ptr = long_text; one[0].len = KW_MAX_SCOPE_LEN + 1;
      bad = nk; bad.scopes = one; bad.scopes_len = 1;
      CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_TOO_LONG);
      one[0].ptr = BAD_UTF8; one[0].len = 2;
      CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_UTF8);
      one[0].ptr = NULL; one[0].len = 0;
      CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    }
    bad = nk; bad.env.ptr = NULL; bad.env.len = 4;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = nk; bad.env = S("abcdefghijklmnopq"); /* KW_MAX_TAG_LEN + 1 */
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    bad = nk; bad.env = S("LIVE");
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    bad = nk; bad.env.ptr = BAD_UTF8; bad.env.len = 2;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_UTF8);
    bad = nk; bad.metadata = NULL; bad.metadata_len = 5;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = nk; bad.metadata = (const uint8_t *)long_text; bad.metadata_len = KW_MAX_METADATA_LEN + 1;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_TOO_LONG);
    bad = nk; bad.expires_at_ms = -5;
    CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    {
      kw_credits bc = credits;
      bc.refill_interval = 9;
      bad = nk; bad.credits = &bc;
      CHECK_STATUS(kw_create(s, &bad, (uint8_t *)tmp, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    }
  }

  /* ---- verify: hot path, info JSON, hostile input */
  memset(&v, 0, sizeof v);
  CHECK_STATUS(kw_verify(s, key, strlen(key), scopes, 1, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID && v.http_status == 200 && v.key_found == 1);
  CHECK(strcmp(v.key_id, id) == 0 && strcmp(v.owner, "acct_1") == 0 && strcmp(v.env, "live") == 0);
  CHECK((v.key_flags & KW_KEY_LIMITED) != 0 && v.expires_at_ms > 0 && v.created_at_ms > 0);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, info, sizeof info, &info_len), KW_OK);
  CHECK(json_has(info, info_len, "owner", "acct_1"));
  info_len = 0;
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, info, KW_KEY_INFO_MAX_LEN - 1, &info_len),
               KW_BUFFER_TOO_SMALL);
  CHECK(info_len == KW_KEY_INFO_MAX_LEN);
  CHECK_STATUS(kw_verify(s, "nope", 4, NULL, 0, 0, 0, &v, info, sizeof info, &info_len), KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED && v.http_status == 401 && v.key_found == 0 && info_len == 0);
  CHECK_STATUS(kw_verify(s, long_text, KW_MAX_PRESENTED_LEN + 1, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED);
  CHECK_STATUS(kw_verify(s, NULL, 10, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(s, NULL, 0, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 1, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, NULL, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 8, &info_len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, info, sizeof info, NULL), KW_NULL_ARGUMENT);
  /* Key text that is not UTF-8 is client input: a MALFORMED verdict, never an error. */
  CHECK_STATUS(kw_verify(s, BAD_UTF8, 2, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED && v.http_status == 401 && v.key_found == 0);
  CHECK_STATUS(kw_verify(s, key, strlen(key), scopes, KW_MAX_SCOPES + 1, 0, 0, &v, NULL, 0, NULL), KW_TOO_LONG);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, -1, &v, NULL, 0, NULL), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_verify(KW_STORE_NONE, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify(closed, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_CLOSED);
  {
    kw_str bad_scope[1];
    bad_scope[0].ptr = BAD_UTF8; bad_scope[0].len = 2;
    CHECK_STATUS(kw_verify(s, key, strlen(key), bad_scope, 1, 0, 0, &v, NULL, 0, NULL), KW_INVALID_UTF8);
  }

  /* ---- verify_key: the six-argument hot path */
  {
    kw_str read_scope[1];
    read_scope[0].ptr = "absent-scope"; read_scope[0].len = 12;
    memset(&v, 0, sizeof v);
    CHECK_STATUS(kw_verify_key(s, key, strlen(key), NULL, 0, &v), KW_OK);
    CHECK(v.reason == KW_REASON_VALID && v.http_status == 200 && strcmp(v.key_id, id) == 0);
    CHECK_STATUS(kw_verify_key(s, key, strlen(key), read_scope, 1, &v), KW_OK);
    CHECK(v.reason == KW_REASON_INSUFFICIENT_SCOPE && v.http_status == 403);
    /* Non-UTF-8 key text is client input: MALFORMED, not an error. */
    CHECK_STATUS(kw_verify_key(s, BAD_UTF8, 2, NULL, 0, &v), KW_OK);
    CHECK(v.reason == KW_REASON_MALFORMED && v.key_found == 0);
    CHECK_STATUS(kw_verify_key(s, "nope", 4, NULL, 0, &v), KW_OK);
    CHECK(v.reason == KW_REASON_MALFORMED);
    CHECK_STATUS(kw_verify_key(s, NULL, 4, NULL, 0, &v), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_key(s, key, strlen(key), NULL, 1, &v), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_key(s, key, strlen(key), NULL, 0, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_key(s, key, strlen(key), scopes, KW_MAX_SCOPES + 1, &v), KW_TOO_LONG);
    CHECK_STATUS(kw_verify_key(KW_STORE_NONE, key, strlen(key), NULL, 0, &v), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_key(closed, key, strlen(key), NULL, 0, &v), KW_CLOSED);
    CHECK_STATUS(kw_verify_key(closed, BAD_UTF8, 2, NULL, 0, &v), KW_CLOSED);
  }

  /* ---- verify_pair */
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), NULL, 0, 1, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  CHECK_STATUS(kw_verify_pair(s, NULL, 16, secret, strlen(secret), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), NULL, 32, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), NULL, 3, 0, 0, &v, NULL, 0, NULL),
               KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), NULL, 0, 0, 0, NULL, NULL, 0, NULL),
               KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), NULL, 0, 0, 0, &v, NULL, 4, &info_len),
               KW_NULL_ARGUMENT);
  /* An id or secret that is not UTF-8 is client input: MALFORMED. */
  CHECK_STATUS(kw_verify_pair(s, BAD_UTF8, 2, secret, strlen(secret), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED && v.http_status == 401);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), BAD_UTF8, 2, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED && v.http_status == 401);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), long_text, KW_MAX_PRESENTED_LEN + 1, NULL, 0, 0, 0, &v, NULL, 0,
                              NULL),
               KW_OK);
  CHECK(v.reason == KW_REASON_MALFORMED);
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), scopes, KW_MAX_SCOPES + 1, 0, 0, &v, NULL, 0,
                              NULL),
               KW_TOO_LONG);
  info_len = 0;
  CHECK_STATUS(kw_verify_pair(s, id, strlen(id), secret, strlen(secret), NULL, 0, 0, 0, &v, info,
                              KW_KEY_INFO_MAX_LEN - 1, &info_len),
               KW_BUFFER_TOO_SMALL);
  CHECK(info_len == KW_KEY_INFO_MAX_LEN);
  CHECK_STATUS(kw_verify_pair(closed, id, strlen(id), secret, strlen(secret), NULL, 0, 0, 0, &v, NULL, 0, NULL),
               KW_CLOSED);

  /* ---- verify_headers */
  {
    kw_header h[3];
    char bearer[200];
    snprintf(bearer, sizeof bearer, "Bearer %s", key);
    h[0].name = "Accept"; h[0].name_len = 6; h[0].value = BAD_UTF8; h[0].value_len = 2; /* ignored */
    h[1].name = "Authorization"; h[1].name_len = 13; h[1].value = bearer; h[1].value_len = strlen(bearer);
    h[2].name = BAD_UTF8; h[2].name_len = 2; h[2].value = "x"; h[2].value_len = 1; /* ignored */
    CHECK_STATUS(kw_verify_headers(s, h, 3, scopes, 1, 0, 0, &v, info, sizeof info, &info_len), KW_OK);
    CHECK(v.reason == KW_REASON_VALID && json_has(info, info_len, "id", id));
    CHECK_STATUS(kw_verify_headers(s, NULL, 1, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_headers(s, NULL, 0, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_CREDENTIAL_MISSING);
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 2, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, NULL, NULL, 0, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 1, &info_len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_verify_headers(s, h, 3, scopes, KW_MAX_SCOPES + 1, 0, 0, &v, NULL, 0, NULL), KW_TOO_LONG);
    /* More than KW_MAX_HEADERS credential headers is the client's doing (AMBIGUOUS_CREDENTIAL);
     * any number of other headers is read past. */
    {
      kw_header *many = (kw_header *)calloc(KW_MAX_HEADERS + 2, sizeof(kw_header));
      size_t i;
      for (i = 0; i < KW_MAX_HEADERS + 1; i++) {
        many[i].name = "Accept"; many[i].name_len = 6; many[i].value = "*/*"; many[i].value_len = 3;
      }
      many[KW_MAX_HEADERS + 1] = h[1];
      CHECK_STATUS(kw_verify_headers(s, many, KW_MAX_HEADERS + 2, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
      CHECK(v.key_found == 1 && strcmp(v.key_id, id) == 0); /* (its credits may be spent by now) */
      for (i = 0; i < KW_MAX_HEADERS + 1; i++) many[i] = h[1];
      CHECK_STATUS(kw_verify_headers(s, many, KW_MAX_HEADERS, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
      CHECK(v.key_found == 1 && strcmp(v.key_id, id) == 0);
      CHECK_STATUS(kw_verify_headers(s, many, KW_MAX_HEADERS + 1, NULL, 0, 0, 0, &v, NULL, 0, NULL),
                   KW_AMBIGUOUS_CREDENTIAL);
      CHECK(kw_status_family(KW_AMBIGUOUS_CREDENTIAL) == KW_FAMILY_CREDENTIAL);
      free(many);
    }
    info_len = 0;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, info, KW_KEY_INFO_MAX_LEN - 1, &info_len),
                 KW_BUFFER_TOO_SMALL);
    CHECK(info_len == KW_KEY_INFO_MAX_LEN);
    CHECK_STATUS(kw_verify_headers(closed, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_CLOSED);
    h[1].name = NULL;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
    h[1].name = "Authorization"; h[1].value = NULL;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_NULL_ARGUMENT);
    /* Header problems are the client's: statuses of the credential family, never
     * KW_INVALID_UTF8 or KW_TOO_LONG. A credential value that is not UTF-8 is read with
     * U+FFFD (here an Authorization scheme nobody knows); an over-long credential value is
     * MALFORMED_KEY; an over-long name is no credential header (ignored). */
    h[1].value = BAD_UTF8; h[1].value_len = 2;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_UNSUPPORTED_SCHEME);
    h[1].value = long_text; h[1].value_len = KW_MAX_HEADER_VALUE_LEN + 1;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_MALFORMED_KEY);
    CHECK(kw_status_family(KW_MALFORMED_KEY) == KW_FAMILY_CREDENTIAL);
    h[1].name = long_text; h[1].name_len = KW_MAX_HEADER_NAME_LEN + 1; h[1].value = "x"; h[1].value_len = 1;
    CHECK_STATUS(kw_verify_headers(s, h, 3, NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_CREDENTIAL_MISSING);
  }

  /* ---- extract_credential, hostile */
  {
    kw_header h[2];
    uint8_t sec[200], idb[32];
    size_t sec_len = 0, id_len = 0;
    uint32_t kind = 0;
    h[0].name = "X-Api-Token-Id"; h[0].name_len = 14; h[0].value = id; h[0].value_len = strlen(id);
    h[1].name = "X-Api-Token-Secret-Key"; h[1].name_len = 22; h[1].value = secret; h[1].value_len = strlen(secret);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, &sec_len, idb, sizeof idb, &id_len), KW_OK);
    CHECK(kind == KW_CREDENTIAL_PAIR && id_len == KW_KEY_ID_LEN && sec_len == KW_SECRET_LEN);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, KW_SECRET_LEN - 1, &sec_len, idb, sizeof idb, &id_len),
                 KW_BUFFER_TOO_SMALL);
    CHECK(sec_len == KW_SECRET_LEN && id_len == KW_KEY_ID_LEN);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, &sec_len, idb, KW_KEY_ID_LEN - 1, &id_len),
                 KW_BUFFER_TOO_SMALL);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, NULL, 0, &sec_len, NULL, 0, &id_len), KW_BUFFER_TOO_SMALL);
    CHECK(sec_len == KW_SECRET_LEN && id_len == KW_KEY_ID_LEN);
    CHECK_STATUS(kw_extract_credential(NULL, 2, &kind, sec, sizeof sec, &sec_len, idb, sizeof idb, &id_len),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_extract_credential(h, 2, NULL, sec, sizeof sec, &sec_len, idb, sizeof idb, &id_len),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, NULL, 5, &sec_len, idb, sizeof idb, &id_len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, NULL, idb, sizeof idb, &id_len),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, &sec_len, NULL, 5, &id_len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, &sec_len, idb, sizeof idb, NULL),
                 KW_NULL_ARGUMENT);
    {
      /* More than KW_MAX_HEADERS credential headers: AMBIGUOUS_CREDENTIAL (the client's). */
      kw_header *many = (kw_header *)calloc(KW_MAX_HEADERS + 1, sizeof(kw_header));
      size_t i;
      for (i = 0; i < KW_MAX_HEADERS + 1; i++) many[i] = h[i % 2];
      CHECK_STATUS(kw_extract_credential(many, KW_MAX_HEADERS + 1, &kind, sec, sizeof sec, &sec_len, idb, sizeof idb,
                                         &id_len),
                   KW_AMBIGUOUS_CREDENTIAL);
      free(many);
    }
    /* A secret that is not UTF-8 is read with U+FFFD (verify then refuses it as MALFORMED). */
    h[1].value = BAD_UTF8; h[1].value_len = 2;
    CHECK_STATUS(kw_extract_credential(h, 2, &kind, sec, sizeof sec, &sec_len, idb, sizeof idb, &id_len), KW_OK);
    CHECK(kind == KW_CREDENTIAL_PAIR && sec_len == 6 && memcmp(sec, "\xef\xbf\xbd\xef\xbf\xbd", 6) == 0);
  }

  /* ---- parse_key, hostile */
  {
    kw_parsed_key p;
    CHECK_STATUS(kw_parse_key(key, strlen(key), "kw", 2, &p), KW_OK);
    CHECK(p.valid == 1 && strcmp(p.id, id) == 0 && strcmp(p.env, "live") == 0 && strcmp(p.prefix, "kw") == 0);
    CHECK_STATUS(kw_parse_key(key, strlen(key), "zz", 2, &p), KW_OK);
    CHECK(p.valid == 0 && p.error == KW_KEY_BAD_PREFIX);
    CHECK_STATUS(kw_parse_key(BAD_UTF8, 2, NULL, 0, &p), KW_OK);
    CHECK(p.valid == 0 && p.error == KW_KEY_NOT_BASE62);
    CHECK_STATUS(kw_parse_key(long_text, 5000, NULL, 0, &p), KW_OK);
    CHECK(p.valid == 0 && p.error == KW_KEY_TOO_LONG);
    CHECK_STATUS(kw_parse_key(NULL, 5, NULL, 0, &p), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_parse_key(key, strlen(key), NULL, 2, &p), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_parse_key(key, strlen(key), BAD_UTF8, 2, &p), KW_INVALID_UTF8);
    CHECK_STATUS(kw_parse_key(key, strlen(key), NULL, 0, NULL), KW_NULL_ARGUMENT);
  }

  /* ---- get */
  CHECK_STATUS(kw_get(s, id, strlen(id), buf, sizeof buf, &len), KW_OK);
  CHECK(json_has(buf, len, "owner", "acct_1"));
  n = len;
  len = 0;
  CHECK_STATUS(kw_get(s, id, strlen(id), buf, n - 1, &len), KW_BUFFER_TOO_SMALL);
  CHECK(len == n);
  CHECK_STATUS(kw_get(s, id, strlen(id), NULL, 0, &len), KW_BUFFER_TOO_SMALL);
  CHECK(len == n);
  CHECK_STATUS(kw_get(s, id, strlen(id), buf, n, &len), KW_OK);
  CHECK_STATUS(kw_get(s, NULL, 16, buf, sizeof buf, &len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_get(s, id, strlen(id), NULL, 10, &len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_get(s, id, strlen(id), buf, sizeof buf, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_get(s, BAD_UTF8, 2, buf, sizeof buf, &len), KW_INVALID_UTF8);
  CHECK_STATUS(kw_get(s, long_text, 5000, buf, sizeof buf, &len), KW_NOT_FOUND);
  CHECK_STATUS(kw_get(s, "0000000000000000", 16, buf, sizeof buf, &len), KW_NOT_FOUND);
  CHECK_STATUS(kw_get(KW_STORE_NONE, id, strlen(id), buf, sizeof buf, &len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_get(closed, id, strlen(id), buf, sizeof buf, &len), KW_CLOSED);

  /* ---- list (paged), all_keys */
  {
    char k2[KW_MAX_KEY_LEN + 1], k3[KW_MAX_KEY_LEN + 1];
    jval page;
    const jval *next;
    uint64_t cursor;
    CHECK_STATUS(create_key(s, "acct_1", NULL, 0, NULL, 0, NULL, k2), KW_OK);
    CHECK_STATUS(create_key(s, "acct_1", NULL, 0, "test", 0, NULL, k3), KW_OK);
    CHECK_STATUS(kw_list(s, "acct_1", 6, 0, 2, KW_STATE_ALL, buf, sizeof buf, &len), KW_OK);
    CHECK(json_parse((const char *)buf, len, &page));
    CHECK(json_get(&page, "keys")->len == 2);
    next = json_get(&page, "next");
    CHECK(next && next->type == J_NUM);
    cursor = next ? (uint64_t)next->num : 0;
    json_free(&page);
    CHECK_STATUS(kw_list(s, "acct_1", 6, cursor, 2, KW_STATE_ACTIVE, buf, sizeof buf, &len), KW_OK);
    CHECK(json_parse((const char *)buf, len, &page));
    CHECK(json_get(&page, "keys")->len == 1 && json_get(&page, "next")->type == J_NULL);
    json_free(&page);
    n = len;
    CHECK_STATUS(kw_list(s, "acct_1", 6, cursor, 2, KW_STATE_ACTIVE, buf, n - 1, &len), KW_BUFFER_TOO_SMALL);
    CHECK(len == n);
    CHECK_STATUS(kw_list(s, NULL, 6, 0, 2, 0, buf, sizeof buf, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_list(s, "acct_1", 6, 0, 2, 0, NULL, 5, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_list(s, "acct_1", 6, 0, 2, 0, buf, sizeof buf, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_list(s, BAD_UTF8, 2, 0, 2, 0, buf, sizeof buf, &len), KW_INVALID_UTF8);
    CHECK_STATUS(kw_list(s, long_text, KW_MAX_OWNER_LEN + 1, 0, 2, 0, buf, sizeof buf, &len), KW_TOO_LONG);
    CHECK_STATUS(kw_list(s, "acct_1", 6, 0, KW_MAX_PAGE_SIZE + 1, 0, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_list(s, "acct_1", 6, 0, 2, 42, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_list(closed, "acct_1", 6, 0, 2, 0, buf, sizeof buf, &len), KW_CLOSED);

    CHECK_STATUS(kw_all_keys(s, buf, sizeof buf, &len), KW_OK);
    CHECK(json_parse((const char *)buf, len, &page));
    CHECK(page.type == J_ARR && page.len == 3);
    json_free(&page);
    n = len;
    CHECK_STATUS(kw_all_keys(s, buf, n - 1, &len), KW_BUFFER_TOO_SMALL);
    CHECK(len == n);
    CHECK_STATUS(kw_all_keys(s, NULL, 5, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_all_keys(s, buf, sizeof buf, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_all_keys(closed, buf, sizeof buf, &len), KW_CLOSED);

    /* ---- delete */
    {
      char id2[32], sec2[64];
      key_parts(k2, id2, sec2);
      CHECK_STATUS(kw_delete(s, id2, strlen(id2)), KW_OK);
      CHECK_STATUS(kw_delete(s, id2, strlen(id2)), KW_NOT_FOUND);
      CHECK_STATUS(kw_verify(s, k2, strlen(k2), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
      CHECK(v.reason == KW_REASON_NOT_FOUND);
      CHECK_STATUS(kw_delete(s, NULL, 16), KW_NULL_ARGUMENT);
      CHECK_STATUS(kw_delete(s, BAD_UTF8, 2), KW_INVALID_UTF8);
      CHECK_STATUS(kw_delete(KW_STORE_NONE, id2, strlen(id2)), KW_NULL_ARGUMENT);
      CHECK_STATUS(kw_delete(closed, id2, strlen(id2)), KW_CLOSED);
    }
  }

  /* ---- update */
  memset(&up, 0, sizeof up);
  up.fields = KW_UPDATE_NAME | KW_UPDATE_SCOPES | KW_UPDATE_METADATA | KW_UPDATE_EXPIRES_AT | KW_UPDATE_CREDITS;
  up.name = S("renamed");
  up.scopes = scopes;
  up.scopes_len = 2;
  up.metadata = (const uint8_t *)"m";
  up.metadata_len = 1;
  up.expires_at_ms = 0;
  up.credits = NULL;
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, info, sizeof info, &info_len), KW_OK);
  CHECK(json_has(info, info_len, "name", "renamed"));
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, NULL, 0, NULL), KW_OK);
  info_len = 0;
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, info, KW_KEY_INFO_MAX_LEN - 1, &info_len), KW_BUFFER_TOO_SMALL);
  CHECK(info_len == KW_KEY_INFO_MAX_LEN);
  CHECK_STATUS(kw_update(s, NULL, 16, &up, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_update(s, id, strlen(id), NULL, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, NULL, 5, &info_len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, info, sizeof info, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_update(s, BAD_UTF8, 2, &up, NULL, 0, NULL), KW_INVALID_UTF8);
  CHECK_STATUS(kw_update(s, "0000000000000000", 16, &up, NULL, 0, NULL), KW_NOT_FOUND);
  CHECK_STATUS(kw_update(closed, id, strlen(id), &up, NULL, 0, NULL), KW_CLOSED);
  {
    kw_key_update bad = up;
    bad.fields = 1u << 20;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_INVALID_ARGUMENT);
    bad = up; bad.name.ptr = BAD_UTF8; bad.name.len = 2;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_INVALID_UTF8);
    bad = up; bad.name.ptr = NULL; bad.name.len = 2;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = up; bad.name.ptr = long_text; bad.name.len = KW_MAX_NAME_LEN + 1;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_TOO_LONG);
    bad = up; bad.scopes = NULL;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = up; bad.scopes_len = KW_MAX_SCOPES + 1;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_TOO_LONG);
    bad = up; bad.metadata = NULL;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_NULL_ARGUMENT);
    bad = up; bad.metadata = (const uint8_t *)long_text; bad.metadata_len = KW_MAX_METADATA_LEN + 1;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_TOO_LONG);
    bad = up; bad.expires_at_ms = -1;
    CHECK_STATUS(kw_update(s, id, strlen(id), &bad, NULL, 0, NULL), KW_INVALID_ARGUMENT);
  }
  /* credits back on, and the balance */
  memset(&up, 0, sizeof up);
  up.fields = KW_UPDATE_CREDITS;
  credits.remaining = 7;
  credits.refill_interval = KW_REFILL_MONTHLY;
  credits.cost = 2;
  up.credits = &credits;
  CHECK_STATUS(kw_update(s, id, strlen(id), &up, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_key_credits(s, id, strlen(id), &cb), KW_OK);
  CHECK(cb.limited == 1 && cb.remaining == 7 && cb.cost == 2 && cb.refill_interval == KW_REFILL_MONTHLY);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_key_credits(s, id, strlen(id), &cb), KW_OK);
  CHECK(cb.remaining == 5);
  CHECK_STATUS(kw_key_credits(s, NULL, 16, &cb), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_key_credits(s, id, strlen(id), NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_key_credits(s, BAD_UTF8, 2, &cb), KW_INVALID_UTF8);
  CHECK_STATUS(kw_key_credits(s, "0000000000000000", 16, &cb), KW_NOT_FOUND);
  CHECK_STATUS(kw_key_credits(closed, id, strlen(id), &cb), KW_CLOSED);

  /* ---- usage, flush, usage_by_day, unused_since, stats */
  CHECK_STATUS(kw_usage(s, id, strlen(id), &us), KW_OK);
  CHECK(us.uses >= 4 && us.last_used_ms > 0);
  CHECK_STATUS(kw_usage(s, NULL, 16, &us), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_usage(s, id, strlen(id), NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_usage(s, BAD_UTF8, 2, &us), KW_INVALID_UTF8);
  CHECK_STATUS(kw_usage(s, "0000000000000000", 16, &us), KW_NOT_FOUND);
  CHECK_STATUS(kw_usage(closed, id, strlen(id), &us), KW_CLOSED);
  CHECK_STATUS(kw_stats(s, &st), KW_OK);
  CHECK(st.dirty_keys >= 1 && st.indexed_keys >= 2);
  CHECK_STATUS(kw_flush(s, &n), KW_OK);
  CHECK(n >= 1);
  CHECK_STATUS(kw_flush(s, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_flush(KW_STORE_NONE, &n), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_flush(closed, &n), KW_CLOSED);
  {
    int32_t today = (int32_t)(now_ms() / 86400000);
    jval days;
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today - 1, today, buf, sizeof buf, &len), KW_OK);
    CHECK(json_parse((const char *)buf, len, &days));
    CHECK(days.type == J_ARR && days.len == 1 && json_num(&days.items[0], "uses", 0) >= 4);
    json_free(&days);
    n = len;
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today - 1, today, buf, n - 1, &len), KW_BUFFER_TOO_SMALL);
    CHECK(len == n);
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today, today - 1, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today - KW_MAX_USAGE_DAYS - 1, today, buf, sizeof buf, &len),
                 KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_usage_by_day(s, NULL, 16, today, today, buf, sizeof buf, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today, today, NULL, 5, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), today, today, buf, sizeof buf, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_usage_by_day(s, BAD_UTF8, 2, today, today, buf, sizeof buf, &len), KW_INVALID_UTF8);
    CHECK_STATUS(kw_usage_by_day(s, "0000000000000000", 16, today, today, buf, sizeof buf, &len), KW_NOT_FOUND);
    CHECK_STATUS(kw_usage_by_day(closed, id, strlen(id), today, today, buf, sizeof buf, &len), KW_CLOSED);
  }
  {
    jval arr;
    CHECK_STATUS(kw_unused_since(s, "acct_1", 6, now_ms() - 60000, buf, sizeof buf, &len), KW_OK);
    CHECK(json_parse((const char *)buf, len, &arr));
    CHECK(arr.type == J_ARR && arr.len == 1); /* k3: never used */
    json_free(&arr);
    n = len;
    CHECK_STATUS(kw_unused_since(s, "acct_1", 6, now_ms() - 60000, buf, n - 1, &len), KW_BUFFER_TOO_SMALL);
    CHECK(len == n);
    CHECK_STATUS(kw_unused_since(s, NULL, 6, 0, buf, sizeof buf, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_unused_since(s, "acct_1", 6, 0, NULL, 5, &len), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_unused_since(s, "acct_1", 6, 0, buf, sizeof buf, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_unused_since(s, BAD_UTF8, 2, 0, buf, sizeof buf, &len), KW_INVALID_UTF8);
    CHECK_STATUS(kw_unused_since(s, long_text, KW_MAX_OWNER_LEN + 1, 0, buf, sizeof buf, &len), KW_TOO_LONG);
    CHECK_STATUS(kw_unused_since(s, "acct_1", 6, -1, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_unused_since(closed, "acct_1", 6, 0, buf, sizeof buf, &len), KW_CLOSED);
  }

  /* ---- rotate */
  {
    char newkey[KW_MAX_KEY_LEN + 1];
    CHECK_STATUS(kw_rotate(s, id, strlen(id), KW_DEFAULT_ROTATION_GRACE_MS, (uint8_t *)newkey, KW_MAX_KEY_LEN - 1,
                           &key_len, NULL, 0, NULL),
                 KW_BUFFER_TOO_SMALL);
    CHECK(key_len == KW_MAX_KEY_LEN);
    info_len = 0;
    CHECK_STATUS(kw_rotate(s, id, strlen(id), 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, info,
                           KW_KEY_INFO_MAX_LEN - 1, &info_len),
                 KW_BUFFER_TOO_SMALL);
    CHECK(info_len == KW_KEY_INFO_MAX_LEN);
    CHECK_STATUS(kw_rotate(s, NULL, 16, 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_rotate(s, id, strlen(id), 0, NULL, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_rotate(s, id, strlen(id), 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, NULL, NULL, 0, NULL),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_rotate(s, id, strlen(id), 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, NULL, 4, &info_len),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_rotate(s, id, strlen(id), 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, info, sizeof info, NULL),
                 KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_rotate(s, BAD_UTF8, 2, 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL),
                 KW_INVALID_UTF8);
    CHECK_STATUS(kw_rotate(closed, id, strlen(id), 0, (uint8_t *)newkey, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL),
                 KW_CLOSED);
    CHECK_STATUS(kw_rotate(s, id, strlen(id), KW_DEFAULT_ROTATION_GRACE_MS, (uint8_t *)newkey, KW_MAX_KEY_LEN,
                           &key_len, info, sizeof info, &info_len),
                 KW_OK);
    newkey[key_len] = 0;
    CHECK(json_has(info, info_len, "rotated_from", id));
    CHECK_STATUS(kw_verify(s, newkey, strlen(newkey), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
    CHECK(v.reason == KW_REASON_VALID);
    CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
    /* within grace, but its credits moved to the new key */
    CHECK(v.reason == KW_REASON_USAGE_EXCEEDED && v.http_status == 403 && (v.key_flags & KW_KEY_ROTATED) != 0);
  }

  /* ---- revoke */
  CHECK_STATUS(kw_revoke(s, id, strlen(id), long_text, KW_MAX_REASON_LEN + 1, NULL, 0, NULL), KW_TOO_LONG);
  info_len = 0;
  CHECK_STATUS(kw_revoke(s, id, strlen(id), "leaked", 6, info, KW_KEY_INFO_MAX_LEN - 1, &info_len),
               KW_BUFFER_TOO_SMALL);
  CHECK(info_len == KW_KEY_INFO_MAX_LEN);
  CHECK_STATUS(kw_revoke(s, NULL, 16, NULL, 0, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_revoke(s, id, strlen(id), NULL, 6, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_revoke(s, id, strlen(id), "x", 1, NULL, 6, &info_len), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_revoke(s, id, strlen(id), "x", 1, info, sizeof info, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_revoke(s, BAD_UTF8, 2, NULL, 0, NULL, 0, NULL), KW_INVALID_UTF8);
  CHECK_STATUS(kw_revoke(s, id, strlen(id), BAD_UTF8, 2, NULL, 0, NULL), KW_INVALID_UTF8);
  CHECK_STATUS(kw_revoke(s, "0000000000000000", 16, NULL, 0, NULL, 0, NULL), KW_NOT_FOUND);
  CHECK_STATUS(kw_revoke(closed, id, strlen(id), NULL, 0, NULL, 0, NULL), KW_CLOSED);
  CHECK_STATUS(kw_revoke(s, id, strlen(id), "leaked", 6, info, sizeof info, &info_len), KW_OK);
  CHECK(json_has(info, info_len, "revoke_reason", "leaked"));
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_REVOKED && v.http_status == 401 && (v.key_flags & KW_KEY_REVOKED_FLAG) != 0);

  CHECK_STATUS(kw_close(s), KW_OK);
  CHECK_STATUS(kw_close(s), KW_CLOSED);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_CLOSED);
  remove_store("manage.redb");
}

static void test_close_flushes_only_the_last_handle(void) {
  char key[KW_MAX_KEY_LEN + 1], id[32], secret[64];
  kw_store a = open_store("lastclose.redb"), b = open_store("lastclose.redb");
  kw_store_stats st;
  kw_usage_stats us;
  kw_verdict v;
  CHECK_STATUS(create_key(a, "acct_l", NULL, 0, NULL, 0, NULL, key), KW_OK);
  key_parts(key, id, secret);
  CHECK_STATUS(kw_verify(b, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_close(b), KW_OK); /* not the last handle: no flush, no commit */
  CHECK_STATUS(kw_stats(a, &st), KW_OK);
  CHECK(st.dirty_keys == 1);
  CHECK_STATUS(kw_close(a), KW_OK); /* the last: flushes */
  a = open_store("lastclose.redb");
  CHECK_STATUS(kw_stats(a, &st), KW_OK);
  CHECK(st.dirty_keys == 0);
  CHECK_STATUS(kw_usage(a, id, strlen(id), &us), KW_OK);
  CHECK(us.uses == 1);
  CHECK_STATUS(kw_close(a), KW_OK);
  remove_store("lastclose.redb");
}

static void test_persistent(void) {
  /* KW_OPEN_PERSISTENT keeps the store (and its warm index) after the last close. */
  char path[512], key[KW_MAX_KEY_LEN + 1];
  kw_options o;
  kw_store a = KW_STORE_NONE, b = KW_STORE_NONE;
  kw_store_stats st;
  kw_verdict v;
  db_path(path, sizeof path, "persistent.redb");
  o = options_for(path);
  o.flags = KW_OPEN_PERSISTENT;
  CHECK_STATUS(kw_open(&o, &a), KW_OK);
  CHECK_STATUS(create_key(a, "acct_p", NULL, 0, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(kw_verify(a, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_close(a), KW_OK);
  CHECK_STATUS(kw_open(&o, &b), KW_OK);
  CHECK_STATUS(kw_stats(b, &st), KW_OK);
  CHECK(st.commits >= 1); /* the same engine: its commit counter survived the close */
  CHECK_STATUS(kw_verify(b, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  CHECK_STATUS(kw_close(b), KW_OK);
  CHECK_STATUS(kw_release_persistent(), KW_OK); /* flushes and closes it for real */
  CHECK_STATUS(kw_release_persistent(), KW_OK); /* nothing left: a no-op */
  b = open_store("persistent.redb");
  CHECK_STATUS(kw_stats(b, &st), KW_OK);
  CHECK(st.commits == 0 && st.dirty_keys == 0); /* a fresh engine: the old one was closed */
  CHECK_STATUS(kw_close(b), KW_OK);
  remove_store("persistent.redb");
}

/* ------------------------------------------------------------------ threads */

typedef struct {
  kw_store store;
  const char *key;
  int iterations;     /* > 0: verify this many times; 0: verify until KW_CLOSED */
  int valid, closed, other;
} verifier;

static void *verify_loop(void *arg) {
  verifier *w = (verifier *)arg;
  kw_verdict v;
  int i;
  for (i = 0; w->iterations == 0 || i < w->iterations; i++) {
    kw_status st = kw_verify(w->store, w->key, strlen(w->key), NULL, 0, 0, 0, &v, NULL, 0, NULL);
    if (st == KW_OK && v.reason == KW_REASON_VALID) __atomic_add_fetch(&w->valid, 1, __ATOMIC_RELEASE);
    else if (st == KW_CLOSED) { w->closed++; break; }
    else w->other++;
  }
  return NULL;
}

static void test_threads(void) {
  /* One handle shared by several threads, while others open and close handles on the same
   * path; then a handle closed under a thread that is using it: KW_CLOSED, never a crash. */
  char key[KW_MAX_KEY_LEN + 1];
  kw_store s = open_store("threads.redb"), victim;
  pthread_t threads[4];
  verifier work[4];
  int i;
  CHECK_STATUS(create_key(s, "acct_t", NULL, 0, NULL, 0, NULL, key), KW_OK);
  for (i = 0; i < 4; i++) {
    memset(&work[i], 0, sizeof work[i]);
    work[i].store = s;
    work[i].key = key;
    work[i].iterations = 200;
    CHECK(pthread_create(&threads[i], NULL, verify_loop, &work[i]) == 0);
  }
  for (i = 0; i < 50; i++) {
    kw_store extra = open_store("threads.redb");
    CHECK_STATUS(kw_close(extra), KW_OK);
  }
  for (i = 0; i < 4; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(work[i].valid == 200 && work[i].other == 0 && work[i].closed == 0);
  }

  victim = open_store("threads.redb");
  memset(&work[0], 0, sizeof work[0]);
  work[0].store = victim;
  work[0].key = key;
  work[0].iterations = 0;
  CHECK(pthread_create(&threads[0], NULL, verify_loop, &work[0]) == 0);
  /* Close only once the thread is verifying through the handle (it then must see KW_CLOSED). */
  while (__atomic_load_n(&work[0].valid, __ATOMIC_ACQUIRE) < 100) sched_yield();
  CHECK_STATUS(kw_close(victim), KW_OK);
  CHECK(pthread_join(threads[0], NULL) == 0);
  CHECK(work[0].closed == 1 && work[0].other == 0);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("threads.redb");
}

/* A child that has not finished after this long is hung (a deadlock never ends); generous,
 * so that sanitizers and a loaded machine are not mistaken for a hang. */
#define HANG_SECONDS 20

typedef struct {
  kw_store store;
  const char *text; /* a key, or a key id */
} child_args;

/* Runs `body` in a forked child (under alarm(HANG_SECONDS)) and returns whether it succeeded.
 * The child answers through a pipe, not its exit status: under valgrind a child's exit also
 * reports the parent's engine, which the child deliberately never frees (its database locks
 * belong to the parent). */
static int child_succeeds(int (*body)(const child_args *), const child_args *args) {
  int status = 0, fds[2];
  char answer = 'N';
  pid_t child;
  if (pipe(fds) != 0) return 0;
  fflush(NULL);
  child = fork();
  if (child == 0) {
    char reply;
    alarm(HANG_SECONDS);
    reply = body(args) ? 'Y' : 'N';
    if (write(fds[1], &reply, 1) != 1) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  if (child < 0 || read(fds[0], &answer, 1) != 1) answer = 'N';
  close(fds[0]);
  if (child > 0 && waitpid(child, &status, 0) != child) answer = 'N';
  return answer == 'Y';
}

static int verify_then_close(const child_args *a) {
  kw_verdict v;
  return kw_verify(a->store, a->text, strlen(a->text), NULL, 0, 0, 0, &v, NULL, 0, NULL) == KW_OK &&
         v.reason == KW_REASON_VALID && kw_close(a->store) == KW_OK;
}

static int revoke_id(const child_args *a) {
  return kw_revoke(a->store, a->text, strlen(a->text), NULL, 0, NULL, 0, NULL) == KW_OK;
}

static void test_fork(void) {
  /* A handle opened before fork() keeps working in the child (the store reopens itself
   * there), and in the parent. */
  char key[KW_MAX_KEY_LEN + 1];
  kw_store s = open_store("fork.redb");
  kw_verdict v;
  child_args args;
  CHECK_STATUS(create_key(s, "acct_f", NULL, 0, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  args.store = s;
  args.text = key;
  CHECK(child_succeeds(verify_then_close, &args));
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("fork.redb");
}

/* ------------------------------------------------------------------ defects of issue 13 */

typedef struct {
  kw_store store;
  const char *key;
  int stop;      /* read and written with __atomic builtins */
  long verifies; /* likewise */
  long refused;
} busy_verifier;

static void *busy_verify(void *arg) {
  busy_verifier *w = (busy_verifier *)arg;
  kw_verdict v;
  while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
    if (kw_verify(w->store, w->key, strlen(w->key), NULL, 0, 0, 0, &v, NULL, 0, NULL) == KW_OK &&
        v.reason == KW_REASON_VALID)
      __atomic_add_fetch(&w->verifies, 1, __ATOMIC_RELEASE);
    else
      w->refused++;
  }
  return NULL;
}

static void test_fork_stress(void) {
  /* Issue 13, items 1 and 2: children forked from a parent whose store has its background
   * flusher running (5 ms interval) while another parent thread loops kw_verify. Each child
   * verifies and closes under alarm(HANG_SECONDS): a hang ends it with SIGALRM (the
   * loop stops after 3, so a regression fails in a bounded time). Counts stay exact: every
   * child's verify is written by its kw_close, every parent verify by the parent's flush.
   * KW_FORK_CYCLES sets the number of forks (scripts/test-c.sh runs 1,000 once). */
  const char *env = getenv("KW_FORK_CYCLES");
  int cycles = env ? atoi(env) : 50, i, hangs = 0, failures = 0, overlapped = 0;
  char key[KW_MAX_KEY_LEN + 1], id[32], secret[64];
  char path[512];
  kw_options o;
  kw_store s = KW_STORE_NONE;
  kw_usage_stats usage;
  busy_verifier work;
  pthread_t thread;
  db_path(path, sizeof path, "forks.redb");
  o = options_for(path);
  o.flush_interval_ms = 5;
  CHECK_STATUS(kw_open(&o, &s), KW_OK);
  CHECK_STATUS(create_key(s, "acct_forks", NULL, 0, NULL, 0, NULL, key), KW_OK);
  key_parts(key, id, secret);
  memset(&work, 0, sizeof work);
  work.store = s;
  work.key = key;
  CHECK(pthread_create(&thread, NULL, busy_verify, &work) == 0);
  while (__atomic_load_n(&work.verifies, __ATOMIC_ACQUIRE) == 0) sched_yield();
  for (i = 0; i < cycles; i++) {
    long before = __atomic_load_n(&work.verifies, __ATOMIC_ACQUIRE);
    int status = 0;
    pid_t child;
    fflush(NULL);
    child = fork();
    if (child == 0) {
      kw_verdict v;
      int ok;
      alarm(HANG_SECONDS);
      ok = kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL) == KW_OK &&
           v.reason == KW_REASON_VALID;
      ok = ok && kw_close(s) == KW_OK;
      _exit(ok ? 0 : 3);
    }
    if (child < 0) { failures++; break; }
    if (waitpid(child, &status, 0) != child) failures++;
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      if (++hangs >= 3) break;
    }
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures++;
    /* The busy thread was verifying around this fork. */
    if (__atomic_load_n(&work.verifies, __ATOMIC_ACQUIRE) != before) overlapped++;
  }
  __atomic_store_n(&work.stop, 1, __ATOMIC_RELEASE);
  CHECK(pthread_join(thread, NULL) == 0);
  if (hangs || failures) fprintf(stderr, "fork stress: %d hangs, %d failures in %d forks\n", hangs, failures, cycles);
  CHECK(hangs == 0);
  CHECK(failures == 0);
  CHECK(work.refused == 0);
  CHECK(overlapped * 2 >= cycles); /* the race the test is about did happen */
  {
    size_t written = 0;
    CHECK_STATUS(kw_flush(s, &written), KW_OK);
  }
  CHECK_STATUS(kw_usage(s, id, strlen(id), &usage), KW_OK);
  CHECK(usage.uses == (uint64_t)(work.verifies + cycles));
  if (usage.uses != (uint64_t)(work.verifies + cycles))
    fprintf(stderr, "fork stress: %llu uses, expected %ld\n", (unsigned long long)usage.uses, work.verifies + cycles);
  printf("fork stress: %d forks, %d hangs; the busy thread verified across %d of them; %llu uses counted\n",
         cycles, hangs, overlapped, (unsigned long long)usage.uses);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("forks.redb");
}

static kw_status open_path(const char *path, const char *pepper_file, kw_store *out) {
  kw_options o = options_for(path);
  if (pepper_file) {
    o.pepper_file = pepper_file;
    o.pepper_file_len = strlen(pepper_file);
  }
  return kw_open(&o, out);
}

static void test_store_file_kinds(void) {
  /* Issue 13, items 3 and 6: each cause gets its own status through the C ABI. */
  char dir[512], fifo[512], devnull[512], p[512], q[600];
  kw_store s = KW_STORE_NONE;
  char key[KW_MAX_KEY_LEN + 1];
  FILE *f;
  db_path(dir, sizeof dir, "kinds-dir.redb");
  CHECK(mkdir(dir, 0700) == 0);
  CHECK_STATUS(open_path(dir, NULL, &s), KW_INVALID_ARGUMENT);
  {
    /* The cause, in words, for this thread: which path, what it is. */
    char message[1024];
    size_t len = 0, need = 0;
    CHECK_STATUS(kw_last_error_message(NULL, 0, &need), KW_BUFFER_TOO_SMALL);
    CHECK_STATUS(kw_last_error_message((uint8_t *)message, sizeof message - 1, &len), KW_OK);
    message[len] = 0;
    CHECK(len == need && strstr(message, "is a directory") && strstr(message, "kinds-dir.redb"));
    CHECK_STATUS(kw_last_error_message(NULL, 0, NULL), KW_NULL_ARGUMENT);
    /* A failure with nothing to add clears it. */
    CHECK_STATUS(kw_open(NULL, &s), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_last_error_message((uint8_t *)message, sizeof message, &len), KW_OK);
    CHECK(len == 0);
  }
  db_path(fifo, sizeof fifo, "kinds-fifo.redb");
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK_STATUS(open_path(fifo, NULL, &s), KW_INVALID_ARGUMENT);
  db_path(devnull, sizeof devnull, "kinds-null.redb");
  CHECK(symlink("/dev/null", devnull) == 0);
  CHECK_STATUS(open_path(devnull, NULL, &s), KW_INVALID_ARGUMENT);

  /* A working store, then each of its companion files replaced by something else. */
  db_path(p, sizeof p, "kinds.redb");
  s = open_store("kinds.redb");
  CHECK_STATUS(create_key(s, "acct_k", NULL, 0, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(kw_close(s), KW_OK);
  snprintf(q, sizeof q, "%s.pepper", p);
  {
    char aside[620];
    snprintf(aside, sizeof aside, "%s.aside", q);
    CHECK(rename(q, aside) == 0);
    CHECK(mkdir(q, 0700) == 0);
    CHECK_STATUS(open_path(p, NULL, &s), KW_PEPPER_INVALID);
    CHECK(rmdir(q) == 0);
    CHECK(symlink("/dev/null", q) == 0);
    CHECK_STATUS(open_path(p, NULL, &s), KW_PEPPER_INVALID);
    CHECK(unlink(q) == 0);
    /* A symlink to the real 0600 pepper file is followed (secret mounts use them). */
    CHECK(symlink(aside, q) == 0);
    CHECK_STATUS(open_path(p, NULL, &s), KW_OK);
    CHECK_STATUS(kw_close(s), KW_OK);
    CHECK(unlink(q) == 0);
    CHECK(rename(aside, q) == 0);
  }
  snprintf(q, sizeof q, "%s.kwsync", p);
  CHECK(unlink(q) == 0);
  CHECK(mkdir(q, 0700) == 0);
  CHECK_STATUS(open_path(p, NULL, &s), KW_CORRUPT);
  CHECK(rmdir(q) == 0);
  CHECK(mkfifo(q, 0600) == 0);
  CHECK_STATUS(open_path(p, NULL, &s), KW_CORRUPT);
  CHECK(unlink(q) == 0);
  CHECK(symlink("/dev/null", q) == 0);
  CHECK_STATUS(open_path(p, NULL, &s), KW_CORRUPT);
  CHECK(unlink(q) == 0);
  CHECK_STATUS(open_path(p, NULL, &s), KW_OK); /* the sync file is recreated */
  CHECK_STATUS(kw_close(s), KW_OK);

  /* A zero-length database beside the files of a store that existed: CORRUPT, not a new store. */
  f = fopen(p, "w");
  CHECK(f != NULL);
  if (f) fclose(f);
  CHECK_STATUS(open_path(p, NULL, &s), KW_CORRUPT);
  CHECK_STATUS(open_path(p, NULL, &s), KW_CORRUPT); /* and stays so */
  rmdir(dir);
  unlink(fifo);
  unlink(devnull);
  remove_store("kinds.redb");
}

static void test_sync_file_truncated(void) {
  /* Issue 13, item 4: truncating the sync file under an open store gives neither SIGBUS nor
   * a stale answer. */
  char key[KW_MAX_KEY_LEN + 1], id[32], secret[64];
  char p[512], q[600];
  kw_store s = open_store("trunc.redb");
  kw_verdict v;
  child_args args;
  db_path(p, sizeof p, "trunc.redb");
  snprintf(q, sizeof q, "%s.kwsync", p);
  CHECK_STATUS(create_key(s, "acct_tr", NULL, 0, NULL, 0, NULL, key), KW_OK);
  key_parts(key, id, secret);
  CHECK(truncate(q, 0) == 0);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  /* Truncated again; another process revokes; this one must refuse the key at once. */
  CHECK(truncate(q, 0) == 0);
  args.store = s;
  args.text = id;
  CHECK(child_succeeds(revoke_id, &args));
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_REVOKED);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("trunc.redb");
}

static void test_usage_range(void) {
  /* Issue 13, item 5: ranges that overflowed, and the span limit counted inclusively. */
  char key[KW_MAX_KEY_LEN + 1], id[32], secret[64];
  uint8_t buf[64];
  size_t len = 0;
  kw_store s = open_store("range.redb");
  CHECK_STATUS(create_key(s, "acct_r", NULL, 0, NULL, 0, NULL, key), KW_OK);
  key_parts(key, id, secret);
  CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), INT32_MIN, INT32_MAX, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), -2, INT32_MAX - 1, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), 20000, 20000 + KW_MAX_USAGE_DAYS, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_usage_by_day(s, id, strlen(id), 20000, 20000 + KW_MAX_USAGE_DAYS - 1, buf, sizeof buf, &len), KW_OK);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("range.redb");
}

static void test_create_many(void) {
  /* Issue 18, item 6: bulk create through the C ABI, all or nothing. */
  enum { N = 500 };
  kw_new_key *specs = (kw_new_key *)calloc(N, sizeof *specs);
  kw_created_key *out = (kw_created_key *)calloc(N, sizeof *out);
  kw_str read = S("read");
  kw_verdict v;
  char owners[N][16], message[512];
  size_t count = 0, len = 0;
  int i, ok = 1;
  uint8_t page[KW_KEY_INFO_MAX_LEN];
  kw_store s = open_store("bulk.redb");
  CHECK(specs != NULL && out != NULL);
  for (i = 0; i < N; i++) {
    snprintf(owners[i], sizeof owners[i], "bulk_%d", i % 5);
    specs[i].owner = S(owners[i]);
    specs[i].scopes = &read;
    specs[i].scopes_len = 1;
    specs[i].env = S("live");
  }
  CHECK_STATUS(kw_create_many(s, specs, N, out, N, &count), KW_OK);
  CHECK(count == N);
  for (i = 0; i < N; i++) {
    ok &= out[i].key_len == strlen(out[i].key) && strncmp(out[i].key, "kw_live_", 8) == 0 &&
          strlen(out[i].id) == KW_KEY_ID_LEN && strstr(out[i].key, out[i].id) != NULL;
    ok &= kw_verify(s, out[i].key, out[i].key_len, &read, 1, 0, 0, &v, NULL, 0, NULL) == KW_OK &&
          v.reason == KW_REASON_VALID && strcmp(v.owner, owners[i]) == 0 && strcmp(v.key_id, out[i].id) == 0;
  }
  CHECK(ok);

  /* A bad spec in the middle: nothing is created, the message names its index. */
  for (i = 0; i < 10; i++) specs[i].owner = S("atomic");
  specs[7].owner = S("   ");
  count = 12345;
  CHECK_STATUS(kw_create_many(s, specs, 10, out, N, &count), KW_INVALID_ARGUMENT);
  CHECK(count == 12345);
  CHECK_STATUS(kw_last_error_message((uint8_t *)message, sizeof message - 1, &len), KW_OK);
  message[len] = 0;
  CHECK(strstr(message, "new key 7 of the batch") != NULL);
  specs[7].owner = S("atomic");
  specs[4].owner.ptr = BAD_UTF8;
  specs[4].owner.len = 2;
  CHECK_STATUS(kw_create_many(s, specs, 10, out, N, &count), KW_INVALID_UTF8);
  CHECK_STATUS(kw_last_error_message((uint8_t *)message, sizeof message - 1, &len), KW_OK);
  message[len] = 0;
  CHECK(strstr(message, "new key 4 of the batch") != NULL);
  specs[4].owner = S("atomic");
  specs[2].scopes_len = KW_MAX_SCOPES + 1;
  CHECK_STATUS(kw_create_many(s, specs, 10, out, N, &count), KW_TOO_LONG);
  specs[2].scopes_len = 1;
  specs[9].owner.ptr = NULL;
  specs[9].owner.len = 3;
  CHECK_STATUS(kw_create_many(s, specs, 10, out, N, &count), KW_NULL_ARGUMENT);
  specs[9].owner = S("atomic");
  CHECK_STATUS(kw_list(s, "atomic", 6, 0, 100, KW_STATE_ALL, page, sizeof page - 1, &len), KW_OK);
  page[len] = 0;
  CHECK(strstr((const char *)page, "\"keys\":[]") != NULL);

  /* NULL and over-long arguments, short output. */
  CHECK_STATUS(kw_create_many(s, NULL, 10, out, N, &count), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create_many(s, specs, 10, NULL, N, &count), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create_many(s, specs, 10, out, N, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_create_many(s, specs, 0, out, N, &count), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_create_many(s, specs, (size_t)KW_MAX_CREATE_MANY + 1, out, N, &count), KW_TOO_LONG);
  count = 0;
  CHECK_STATUS(kw_create_many(s, specs, 10, out, 9, &count), KW_BUFFER_TOO_SMALL);
  CHECK(count == 10);
  CHECK_STATUS(kw_create_many(KW_STORE_NONE, specs, 10, out, N, &count), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_list(s, "atomic", 6, 0, 100, KW_STATE_ALL, page, sizeof page - 1, &len), KW_OK);
  page[len] = 0;
  CHECK(strstr((const char *)page, "\"keys\":[]") != NULL);
  CHECK_STATUS(kw_create_many(s, specs, 10, out, 10, &count), KW_OK);
  CHECK(count == 10);
  CHECK_STATUS(kw_close(s), KW_OK);
  memset(out, 0, N * sizeof *out);
  free(out);
  free(specs);
  remove_store("bulk.redb");
}

static void test_dry_run(void) {
  /* Issue 18, item 5: dry-run verifies give the verdict but count no use and spend no credit. */
  char key[KW_MAX_KEY_LEN + 1], limited[KW_MAX_KEY_LEN + 1], id[32], lid[32], secret[64], lsecret[64];
  kw_str read = S("read"), admin = S("admin");
  kw_credits credits;
  kw_verdict v;
  kw_usage_stats us;
  kw_credit_balance bal;
  kw_header hdr[1];
  uint8_t info[KW_KEY_INFO_MAX_LEN];
  size_t info_len = 0, written = 0;
  int i, ok = 1;
  kw_store s = open_store("dry.redb");
  memset(&credits, 0, sizeof credits);
  credits.remaining = 5;
  credits.cost = 1;
  CHECK_STATUS(create_key(s, "acct_d", &read, 1, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(create_key(s, "acct_d", NULL, 0, NULL, 0, &credits, limited), KW_OK);
  key_parts(key, id, secret);
  key_parts(limited, lid, lsecret);
  for (i = 0; i < 100; i++) {
    ok &= kw_verify_ex(s, key, strlen(key), &read, 1, 0, 0, KW_VERIFY_DRY_RUN, &v, info, sizeof info, &info_len) == KW_OK &&
          v.reason == KW_REASON_VALID && v.key_found == 1 && strcmp(v.owner, "acct_d") == 0 && info_len > 0;
    ok &= kw_verify_ex(s, key, strlen(key), &admin, 1, 0, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0, NULL) == KW_OK &&
          v.reason == KW_REASON_INSUFFICIENT_SCOPE;
    ok &= kw_verify_pair_ex(s, id, strlen(id), lsecret, strlen(lsecret), NULL, 0, 0, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0,
                            NULL) == KW_OK && v.reason == KW_REASON_NOT_FOUND;
    ok &= kw_verify_ex(s, limited, strlen(limited), NULL, 0, 5, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0, NULL) == KW_OK &&
          v.reason == KW_REASON_VALID;
    ok &= kw_verify_pair_ex(s, lid, strlen(lid), lsecret, strlen(lsecret), NULL, 0, 6, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0,
                            NULL) == KW_OK && v.reason == KW_REASON_USAGE_EXCEEDED;
  }
  CHECK(ok);
  hdr[0].name = "x-api-key";
  hdr[0].name_len = 9;
  hdr[0].value = limited;
  hdr[0].value_len = strlen(limited);
  CHECK_STATUS(kw_verify_headers_ex(s, hdr, 1, NULL, 0, 0, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  /* unknown flag bits are the application's error */
  CHECK_STATUS(kw_verify_ex(s, key, strlen(key), NULL, 0, 0, 0, 4, &v, NULL, 0, NULL), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_flush(s, &written), KW_OK);
  CHECK_STATUS(kw_usage(s, id, strlen(id), &us), KW_OK);
  CHECK(us.uses == 0 && us.refused == 0 && us.last_used_ms == 0);
  CHECK_STATUS(kw_usage(s, lid, strlen(lid), &us), KW_OK);
  CHECK(us.uses == 0 && us.refused == 0);
  CHECK_STATUS(kw_key_credits(s, lid, strlen(lid), &bal), KW_OK);
  CHECK(bal.remaining == 5);
  /* flags 0 is an ordinary verify: it counts and spends */
  CHECK_STATUS(kw_verify_ex(s, limited, strlen(limited), NULL, 0, 5, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  CHECK_STATUS(kw_verify_ex(s, limited, strlen(limited), NULL, 0, 0, 0, KW_VERIFY_DRY_RUN, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_USAGE_EXCEEDED);
  CHECK_STATUS(kw_flush(s, &written), KW_OK);
  CHECK_STATUS(kw_usage(s, lid, strlen(lid), &us), KW_OK);
  CHECK(us.uses == 1);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("dry.redb");
}

static void test_rate_limits(void) {
  /* Issue 19: a key's own limit, an owner's shared limit, RATE_LIMITED (HTTP 429) with the
     time to retry, and the rate fields written only when asked for. */
  char key[KW_MAX_KEY_LEN + 1], other[KW_MAX_KEY_LEN + 1], id[32], secret[64];
  kw_rate_limit lim, got;
  kw_verdict v;
  uint32_t found = 9;
  size_t base = offsetof(kw_verdict, rate_scope), i;
  unsigned char *raw = (unsigned char *)&v;
  int ok = 1;
  kw_store s = open_store("rate.redb");
  CHECK_STATUS(create_key(s, "acct_r", NULL, 0, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(create_key(s, "acct_r", NULL, 0, NULL, 0, NULL, other), KW_OK);
  key_parts(key, id, secret);
  lim.rate = 2;
  lim.period_ms = 60000;
  lim.burst = 0; /* = rate */
  CHECK_STATUS(kw_set_rate_limit(s, id, strlen(id), &lim, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_verify_ex(s, key, strlen(key), NULL, 0, 0, 0, KW_VERIFY_RATE_FIELDS, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID && (v.key_flags & KW_KEY_RATE_LIMITED) && v.rate_scope == KW_RATE_KEY);
  CHECK(v.rate_limit == 2 && v.rate_period_ms == 60000 && v.rate_burst == 2 && v.rate_remaining == 1 &&
        v.retry_after_ms == 0);
  /* Without the flag, nothing past the older header's kw_verdict is written. */
  memset(&v, 0xAB, sizeof v);
  CHECK_STATUS(kw_verify_key(s, key, strlen(key), NULL, 0, &v), KW_OK);
  CHECK(v.reason == KW_REASON_VALID && (v.key_flags & KW_KEY_RATE_LIMITED));
  for (i = base; i < sizeof v; i++) ok &= raw[i] == 0xAB;
  CHECK(ok);
  CHECK_STATUS(kw_verify_ex(s, key, strlen(key), NULL, 0, 0, 0, KW_VERIFY_RATE_FIELDS, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_RATE_LIMITED && v.http_status == 429 && v.key_found == 1);
  CHECK(v.retry_after_ms > 0 && v.retry_after_ms <= 30000 && v.rate_remaining == 0);
  {
    char hdrs[KW_RATE_HEADERS_MAX_LEN + 1];
    size_t hlen = 0;
    const char *want = "RateLimit-Policy: \"key\";q=2;w=60\r\nRateLimit: \"key\";r=0;t=";
    CHECK_STATUS(kw_rate_headers(&v, (uint8_t *)hdrs, KW_RATE_HEADERS_MAX_LEN, &hlen), KW_OK);
    hdrs[hlen] = 0;
    CHECK(strncmp(hdrs, want, strlen(want)) == 0);
    CHECK(strstr(hdrs, "\r\nRetry-After: ") != NULL && strcmp(hdrs + hlen - 2, "\r\n") == 0);
    CHECK_STATUS(kw_rate_headers(&v, NULL, 0, &hlen), KW_BUFFER_TOO_SMALL);
    CHECK(hlen > 0);
    /* The hot path with the flag fills the same fields. */
    memset(&v, 0, sizeof v);
    CHECK_STATUS(kw_verify_key_ex(s, key, strlen(key), NULL, 0, KW_VERIFY_RATE_FIELDS, &v), KW_OK);
    CHECK(v.reason == KW_REASON_RATE_LIMITED && v.retry_after_ms > 0 && v.rate_scope == KW_RATE_KEY);
    CHECK_STATUS(kw_verify_key_ex(s, key, strlen(key), NULL, 0, 4, &v), KW_INVALID_ARGUMENT);
  }
  CHECK(kw_reason_http_status(KW_REASON_RATE_LIMITED) == 429);
  CHECK(strcmp(kw_reason_code(KW_REASON_RATE_LIMITED), "RATE_LIMITED") == 0);
  /* A dry run reports it and takes nothing. */
  CHECK_STATUS(kw_verify_ex(s, key, strlen(key), NULL, 0, 0, 0, KW_VERIFY_DRY_RUN | KW_VERIFY_RATE_FIELDS, &v, NULL, 0,
                            NULL), KW_OK);
  CHECK(v.reason == KW_REASON_RATE_LIMITED);
  /* Owner limit, shared by the owner's other key. */
  lim.rate = 1;
  lim.period_ms = 60000;
  lim.burst = 1;
  CHECK_STATUS(kw_set_owner_rate_limit(s, "acct_r", 6, &lim), KW_OK);
  CHECK_STATUS(kw_owner_rate_limit(s, "acct_r", 6, &got, &found), KW_OK);
  CHECK(found == 1 && got.rate == 1 && got.period_ms == 60000 && got.burst == 1);
  CHECK_STATUS(kw_verify_ex(s, other, strlen(other), NULL, 0, 0, 0, KW_VERIFY_RATE_FIELDS, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID && v.rate_scope == KW_RATE_OWNER);
  CHECK_STATUS(kw_verify_ex(s, other, strlen(other), NULL, 0, 0, 0, KW_VERIFY_RATE_FIELDS, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_RATE_LIMITED && v.rate_scope == KW_RATE_OWNER && v.retry_after_ms > 0);
  CHECK_STATUS(kw_set_owner_rate_limit(s, "acct_r", 6, NULL), KW_OK);
  CHECK_STATUS(kw_owner_rate_limit(s, "acct_r", 6, &got, &found), KW_OK);
  CHECK(found == 0);
  /* Bad terms and a removed key limit. */
  lim.rate = 0;
  CHECK_STATUS(kw_set_owner_rate_limit(s, "acct_r", 6, &lim), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_set_rate_limit(s, id, strlen(id), &lim, NULL, 0, NULL), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_set_owner_rate_limit(s, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_set_rate_limit(s, id, strlen(id), NULL, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_verify_ex(s, key, strlen(key), NULL, 0, 0, 0, KW_VERIFY_RATE_FIELDS, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID && v.rate_scope == KW_RATE_NONE && !(v.key_flags & KW_KEY_RATE_LIMITED));
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("rate.redb");
}

static void test_warnings(void) {
  /* Issue 18, item 4: keys expiring soon and limited keys low on credits. */
  char soon[KW_MAX_KEY_LEN + 1], later[KW_MAX_KEY_LEN + 1], low[KW_MAX_KEY_LEN + 1], plenty[KW_MAX_KEY_LEN + 1];
  char soon_id[32], low_id[32], secret[64];
  int64_t day = 86400000;
  kw_credits credits;
  kw_verdict v;
  uint8_t buf[8192];
  size_t len = 0;
  kw_store s = open_store("warn.redb");
  CHECK_STATUS(create_key(s, "acct_w", NULL, 0, NULL, now_ms() + day, NULL, soon), KW_OK);
  CHECK_STATUS(create_key(s, "acct_w", NULL, 0, NULL, now_ms() + 30 * day, NULL, later), KW_OK);
  key_parts(soon, soon_id, secret);
  CHECK_STATUS(kw_expiring_within(s, 7 * day, buf, sizeof buf, &len), KW_OK);
  CHECK(len < sizeof buf);
  buf[len] = 0;
  CHECK(buf[0] == '[' && strstr((char *)buf, soon_id) != NULL);
  {
    /* exactly one record: the soon one */
    const char *first = strstr((char *)buf, "\"created_at\"");
    CHECK(first != NULL && strstr(first + 1, "\"created_at\"") == NULL);
  }
  CHECK_STATUS(kw_expiring_within(s, 0, buf, sizeof buf, &len), KW_OK);
  CHECK(len == 2 && memcmp(buf, "[]", 2) == 0);
  CHECK_STATUS(kw_expiring_within(s, -1, buf, sizeof buf, &len), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_expiring_within(s, 7 * day, NULL, 0, &len), KW_BUFFER_TOO_SMALL);
  CHECK(len > 2);
  memset(&credits, 0, sizeof credits);
  credits.remaining = 2;
  credits.cost = 1;
  CHECK_STATUS(create_key(s, "acct_w", NULL, 0, NULL, 0, &credits, low), KW_OK);
  credits.remaining = 100;
  CHECK_STATUS(create_key(s, "acct_w", NULL, 0, NULL, 0, &credits, plenty), KW_OK);
  key_parts(low, low_id, secret);
  CHECK_STATUS(kw_credits_below(s, 10, buf, sizeof buf, &len), KW_OK);
  buf[len < sizeof buf ? len : sizeof buf - 1] = 0;
  CHECK(strstr((char *)buf, low_id) != NULL && strstr((char *)buf, "\"remaining\":2}") != NULL);
  CHECK_STATUS(kw_verify_key(s, low, strlen(low), NULL, 0, &v), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  CHECK_STATUS(kw_credits_below(s, 2, buf, sizeof buf, &len), KW_OK);
  buf[len < sizeof buf ? len : sizeof buf - 1] = 0;
  CHECK(strstr((char *)buf, "\"remaining\":1}") != NULL);
  CHECK_STATUS(kw_credits_below(s, 1, buf, sizeof buf, &len), KW_OK);
  CHECK(len == 2 && memcmp(buf, "[]", 2) == 0);
  CHECK_STATUS(kw_close(s), KW_OK);
  remove_store("warn.redb");
}

/* ------------------------------------------------------------------ the audit log */

/* The events of a store as parsed JSON (page of at most `limit`), filtered by actor. */
static int audit_page(kw_store s, const char *actor, uint64_t after, uint32_t limit, jval *out) {
  static char buf[1 << 16];
  size_t len = 0;
  kw_status st = kw_audit(s, NULL, 0, NULL, 0, actor, actor ? strlen(actor) : 0, 0, 0, after, limit,
                          (uint8_t *)buf, sizeof buf, &len);
  CHECK_STATUS(st, KW_OK);
  if (st != KW_OK) return 0;
  if (!json_parse(buf, len, out)) {
    CHECK(!"kw_audit wrote JSON");
    return 0;
  }
  return 1;
}

static void test_audit(void) {
  kw_store s, alice, bad;
  char key[KW_MAX_KEY_LEN + 1], id[KW_KEY_ID_LEN + 1], secret[KW_SECRET_LEN + 1];
  char key2[KW_MAX_KEY_LEN + 1], id2[KW_KEY_ID_LEN + 1], secret2[KW_SECRET_LEN + 1];
  char long_actor[KW_MAX_ACTOR_LEN + 2];
  char buf[4096];
  size_t len = 0, i;
  jval page, *events;
  const char *actions[] = {"create", "create", "revoke", "delete"};
  remove_store("audit.redb");
  s = open_store("audit.redb");
  CHECK_STATUS(kw_with_actor(s, "alice", 5, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_with_actor(s, BAD_UTF8, 2, &bad), KW_INVALID_UTF8);
  memset(long_actor, 'a', sizeof long_actor);
  CHECK_STATUS(kw_with_actor(s, long_actor, KW_MAX_ACTOR_LEN + 1, &bad), KW_TOO_LONG);
  CHECK_STATUS(kw_with_actor(s, "a\nb", 3, &bad), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_with_actor(KW_STORE_NONE, "alice", 5, &bad), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_with_actor(s, "alice", 5, &alice), KW_OK);
  CHECK(alice != s);
  CHECK_STATUS(create_key(alice, "acct_audit", NULL, 0, NULL, 0, NULL, key), KW_OK);
  CHECK_STATUS(create_key(s, "acct_audit", NULL, 0, NULL, 0, NULL, key2), KW_OK);
  key_parts(key, id, secret);
  key_parts(key2, id2, secret2);
  CHECK_STATUS(kw_revoke(alice, id, strlen(id), "leaked", 6, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_delete(alice, id2, strlen(id2)), KW_OK);
  /* A change that failed (unknown key) logs nothing. */
  CHECK_STATUS(kw_delete(alice, id2, strlen(id2)), KW_NOT_FOUND);
  CHECK_STATUS(kw_close(alice), KW_OK);

  if (audit_page(s, NULL, 0, 0, &page)) {
    events = (jval *)json_get(&page, "events");
    CHECK(events && events->len == 4);
    for (i = 0; events && i < events->len && i < 4; i++) {
      CHECK(strcmp(json_str(&events->items[i], "action"), actions[i]) == 0);
      CHECK(strcmp(json_str(&events->items[i], "owner"), "acct_audit") == 0);
    }
    if (events && events->len == 4) {
      CHECK(strcmp(json_str(&events->items[0], "actor"), "alice") == 0);
      CHECK(json_get(&events->items[1], "actor")->type == J_NULL);
      CHECK(strcmp(json_str(&events->items[2], "key_id"), id) == 0);
      CHECK(strcmp(json_str(&events->items[3], "key_id"), id2) == 0);
    }
    CHECK(json_get(&page, "next")->type == J_NULL);
    json_free(&page);
  }
  /* Filter by actor, paged one at a time. */
  if (audit_page(s, "alice", 0, 1, &page)) {
    uint64_t next;
    events = (jval *)json_get(&page, "events");
    CHECK(events && events->len == 1);
    CHECK(json_get(&page, "next")->type == J_NUM);
    next = (uint64_t)json_num(&page, "next", 0);
    json_free(&page);
    if (audit_page(s, "alice", next, 10, &page)) {
      events = (jval *)json_get(&page, "events");
      CHECK(events && events->len == 2);
      json_free(&page);
    }
  }
  /* By key; by a time window that holds nothing. */
  CHECK_STATUS(kw_audit(s, id, strlen(id), NULL, 0, NULL, 0, 0, 0, 0, 0, (uint8_t *)buf, sizeof buf, &len),
               KW_OK);
  buf[len] = 0;
  CHECK(strstr(buf, "\"revoke\"") && !strstr(buf, "\"delete\""));
  CHECK(!strstr(buf, secret) && !strstr(buf, secret2));
  CHECK_STATUS(kw_audit(s, NULL, 0, NULL, 0, NULL, 0, 1, 2, 0, 0, (uint8_t *)buf, sizeof buf, &len), KW_OK);
  buf[len] = 0;
  CHECK(strcmp(buf, "{\"events\":[],\"next\":null}") == 0);
  /* Hostile input. */
  CHECK_STATUS(kw_audit(s, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, KW_MAX_PAGE_SIZE + 1, (uint8_t *)buf,
                        sizeof buf, &len), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_audit(s, BAD_UTF8, 2, NULL, 0, NULL, 0, 0, 0, 0, 0, (uint8_t *)buf, sizeof buf, &len),
               KW_INVALID_UTF8);
  CHECK_STATUS(kw_audit(s, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, 0, (uint8_t *)buf, sizeof buf, NULL),
               KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_audit(s, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, 0, (uint8_t *)buf, 4, &len), KW_BUFFER_TOO_SMALL);
  CHECK(len > 4);
  CHECK_STATUS(kw_audit(alice, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, 0, (uint8_t *)buf, sizeof buf, &len),
               KW_CLOSED);
  CHECK_STATUS(kw_set_audit_retention(s, 30), KW_OK);
  CHECK_STATUS(kw_set_audit_retention(alice, 30), KW_CLOSED);
  CHECK_STATUS(kw_close(s), KW_OK);
}

/* Issue 18, item 1: legacy keys. Exports made with the real algorithms of Sanctum, DRF, Unkey
 * and Better Auth (tests/legacy/make_exports.py, times relative to now) are imported through
 * kw_import_legacy; their keys verify VALID through kw_verify, wrong ones NOT_FOUND, the first
 * use upgrades the record (kw_get shows "upgraded_at"), and hostile input is refused. */
static int legacy_verify(kw_store s, const char *key, uint32_t want) {
  kw_verdict v;
  return kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL) == KW_OK && v.reason == want;
}

static void test_legacy(const char *vectors) {
  static const char *names[] = {"sanctum", "drf", "unkey", "better-auth"};
  char dir[512], cmd[1400], path[700], msg[512];
  char id[KW_KEY_ID_LEN + 1];
  uint8_t info[KW_KEY_INFO_MAX_LEN + 1];
  size_t info_len = 0, len = 0, n, i, k;
  char *text;
  jval cases;
  kw_str all[3];
  all[0] = S("deploy");
  all[1] = S("servers:read");
  all[2] = S("servers:write");
  db_path(dir, sizeof dir, "legacy-exports");
  snprintf(cmd, sizeof cmd, "python3 '%s/../legacy/make_exports.py' --now %lld '%s'", vectors,
           (long long)(now_ms() / 1000), dir);
  CHECK(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/cases.json", dir);
  text = read_file(path, &len);
  CHECK(text != NULL);
  if (!text || !json_parse(text, len, &cases)) {
    free(text);
    return;
  }
  free(text);
  for (n = 0; n < 4; n++) {
    const jval *c = json_get(&cases, names[n]);
    const jval *valid = json_get(c, "valid"), *wrong = json_get(c, "wrong"), *revoked = json_get(c, "revoked");
    const jval *expired = json_get(c, "expired");
    kw_legacy_import_options o;
    kw_legacy_import_report r;
    uint32_t scheme = (uint32_t)(n + 1);
    char *data;
    size_t data_len = 0, importable = valid->len + revoked->len + expired->len;
    int ok = 1;
    kw_store s;
    snprintf(path, sizeof path, "%s/%s", dir, json_str(c, "file"));
    data = read_file(path, &data_len);
    CHECK(data != NULL);
    if (!data) continue;
    remove_store("legacy.redb");
    s = open_store("legacy.redb");
    memset(&o, 0, sizeof o);
    if (scheme == KW_LEGACY_SANCTUM) {
      o.all_scopes = all;
      o.all_scopes_len = 3;
      o.sanctum_expiration_minutes = 60 * 24 * 60;
    }
    if (scheme == KW_LEGACY_DRF) o.default_owner = S("drf-clients");
    /* Before the import such text is not a key. */
    CHECK(legacy_verify(s, json_str(&valid->items[0], "key"), KW_REASON_MALFORMED));
    o.dry_run = 1;
    CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)data, data_len, &o, &r), KW_OK);
    CHECK(r.dry_run == 1 && r.imported == importable && r.scheme == scheme);
    CHECK(legacy_verify(s, json_str(&valid->items[0], "key"), KW_REASON_MALFORMED));
    o.dry_run = 0;
    CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)data, data_len, &o, &r), KW_OK);
    CHECK(r.dry_run == 0 && r.imported == importable && r.revoked == revoked->len && r.expired == expired->len);
    for (i = 0; i < valid->len; i++) {
      const char *src = json_str(&valid->items[i], "source_id");
      CHECK_STATUS(kw_legacy_key_id(scheme, src, strlen(src), id), KW_OK);
      CHECK_STATUS(kw_get(s, id, strlen(id), info, sizeof info - 1, &info_len), KW_OK);
      info[info_len] = 0;
      CHECK(strstr((char *)info, "\"upgraded_at\":null") != NULL);
      ok &= legacy_verify(s, json_str(&valid->items[i], "key"), KW_REASON_VALID);
      CHECK_STATUS(kw_get(s, id, strlen(id), info, sizeof info - 1, &info_len), KW_OK);
      info[info_len] = 0;
      CHECK(strstr((char *)info, "\"upgraded_at\":null") == NULL && strstr((char *)info, "\"upgraded_at\":") != NULL);
      ok &= legacy_verify(s, json_str(&valid->items[i], "key"), KW_REASON_VALID);
    }
    for (k = 0; k < wrong->len; k++) ok &= legacy_verify(s, wrong->items[k].str, KW_REASON_NOT_FOUND);
    for (k = 0; k < revoked->len; k++) ok &= legacy_verify(s, json_str(&revoked->items[k], "key"), KW_REASON_REVOKED);
    for (k = 0; k < expired->len; k++) ok &= legacy_verify(s, json_str(&expired->items[k], "key"), KW_REASON_EXPIRED);
    CHECK(ok);
    /* Again: nothing new. */
    CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)data, data_len, &o, &r), KW_OK);
    CHECK(r.imported == 0 && r.already_present == importable);
    /* Hostile input. */
    CHECK_STATUS(kw_import_legacy(s, 9, (const uint8_t *)data, data_len, &o, &r), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_import_legacy(s, scheme, NULL, 3, &o, &r), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)data, data_len, &o, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_import_legacy(s, scheme, (const uint8_t *)"id,token\n1,zz\n", 14, &o, &r),
                 KW_LEGACY_IMPORT_INVALID);
    CHECK_STATUS(kw_last_error_message((uint8_t *)msg, sizeof msg - 1, &len), KW_OK);
    msg[len < sizeof msg ? len : sizeof msg - 1] = 0;
    CHECK(strstr(msg, "line 2") != NULL);
    CHECK_STATUS(kw_import_legacy(KW_STORE_NONE, scheme, (const uint8_t *)data, data_len, &o, &r), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_legacy_key_id(scheme, "", 0, id), KW_INVALID_ARGUMENT);
    CHECK_STATUS(kw_legacy_key_id(scheme, "1", 1, NULL), KW_NULL_ARGUMENT);
    CHECK_STATUS(kw_legacy_key_id(0, "1", 1, id), KW_INVALID_ARGUMENT);
    free(data);
    CHECK_STATUS(kw_close(s), KW_OK);
  }
  json_free(&cases);
  remove_store("legacy.redb");
}

/* ------------------------------------------------------------------ owner controls */

static void test_owners(void) {
  kw_store s, ops;
  char key[KW_MAX_KEY_LEN + 1], buf[KW_OWNER_INFO_MAX_LEN];
  size_t len = 0;
  kw_verdict v;
  kw_str scope_read = S("read"), scope_write = S("write");
  kw_str both[2];
  both[0] = scope_read;
  both[1] = scope_write;
  remove_store("owners.redb");
  s = open_store("owners.redb");
  CHECK_STATUS(kw_with_actor(s, "ops", 3, &ops), KW_OK);
  CHECK_STATUS(create_key(s, "acct_c", both, 2, NULL, 0, NULL, key), KW_OK);
  /* NULL and bad arguments change nothing. */
  CHECK_STATUS(kw_owner_suspend(s, NULL, 3, NULL, 0, NULL, 0, NULL), KW_NULL_ARGUMENT);
  CHECK_STATUS(kw_owner_suspend(s, BAD_UTF8, 2, NULL, 0, NULL, 0, NULL), KW_INVALID_UTF8);
  CHECK_STATUS(kw_owner_suspend(s, " ", 1, NULL, 0, NULL, 0, NULL), KW_INVALID_ARGUMENT);
  CHECK_STATUS(kw_owner_suspend(s, "acct_c", 6, NULL, 0, (uint8_t *)buf, 16, &len), KW_BUFFER_TOO_SMALL);
  CHECK(len == KW_OWNER_INFO_MAX_LEN);
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  /* Suspend: refused with 403, through a handle that stamps an actor. */
  CHECK_STATUS(kw_owner_suspend(ops, "acct_c", 6, "unpaid", 6, (uint8_t *)buf, sizeof buf, &len), KW_OK);
  buf[len] = 0;
  CHECK(strstr(buf, "\"suspend_reason\":\"unpaid\"") && strstr(buf, "\"keys\":1"));
  CHECK_STATUS(kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_OWNER_SUSPENDED && v.http_status == 403);
  CHECK(strcmp(kw_reason_code(KW_REASON_OWNER_SUSPENDED), "OWNER_SUSPENDED") == 0);
  CHECK_STATUS(kw_owner_resume(ops, "acct_c", 6, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_owner_resume(s, "nobody", 6, NULL, 0, NULL), KW_OWNER_NOT_FOUND);
  CHECK(kw_status_family(KW_OWNER_NOT_FOUND) == KW_FAMILY_NOT_FOUND);
  /* Allowed scopes: effective scopes = the key's own within the owner's. */
  CHECK_STATUS(kw_owner_set_scopes(ops, "acct_c", 6, &scope_read, 1, 0, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_verify(s, key, strlen(key), &scope_write, 1, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_INSUFFICIENT_SCOPE);
  CHECK_STATUS(kw_owner_set_scopes(ops, "acct_c", 6, NULL, 0, 1, NULL, 0, NULL), KW_OK);
  CHECK_STATUS(kw_verify(s, key, strlen(key), &scope_write, 1, 0, 0, &v, NULL, 0, NULL), KW_OK);
  CHECK(v.reason == KW_REASON_VALID);
  /* Records and the audit trail. */
  CHECK_STATUS(kw_owner_get(s, "acct_c", 6, (uint8_t *)buf, sizeof buf, &len), KW_OK);
  buf[len] = 0;
  CHECK(strstr(buf, "\"suspended_at\":null") && strstr(buf, "\"allowed_scopes\":null"));
  CHECK_STATUS(kw_owner_get(s, "nobody", 6, (uint8_t *)buf, sizeof buf, &len), KW_OWNER_NOT_FOUND);
  CHECK_STATUS(kw_owners_list(s, (uint8_t *)buf, 4, &len), KW_BUFFER_TOO_SMALL);
  CHECK_STATUS(kw_owners_list(s, (uint8_t *)buf, sizeof buf, &len), KW_OK);
  buf[len] = 0;
  CHECK(buf[0] == '[' && strstr(buf, "\"owner\":\"acct_c\""));
  CHECK_STATUS(kw_audit(s, NULL, 0, "acct_c", 6, "ops", 3, 0, 0, 0, 0, (uint8_t *)buf, sizeof buf, &len), KW_OK);
  buf[len] = 0;
  CHECK(strstr(buf, "\"owner_suspend\"") && strstr(buf, "\"owner_resume\"") && strstr(buf, "\"owner_scopes\""));
  CHECK_STATUS(kw_close(ops), KW_OK);
  CHECK_STATUS(kw_owner_suspend(ops, "acct_c", 6, NULL, 0, NULL, 0, NULL), KW_CLOSED);
  CHECK_STATUS(kw_close(s), KW_OK);
}

int main(int argc, char **argv) {
  const char *vectors = argc > 1 ? argv[1] : "tests/vectors";
  snprintf(tmpdir, sizeof tmpdir, "/tmp/keyward-c-test-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  test_static_helpers();
  test_panic_boundary();
  replay_keys(vectors);
  replay_headers(vectors);
  replay_verify(vectors);
  replay_edge(vectors);
  test_open_and_registry();
  test_management();
  test_close_flushes_only_the_last_handle();
  test_persistent();
  test_threads();
  test_fork();
  test_fork_stress();
  test_store_file_kinds();
  test_sync_file_truncated();
  test_usage_range();
  test_dry_run();
  test_rate_limits();
  test_create_many();
  test_warnings();
  test_audit();
  test_legacy(vectors);
  test_owners();
  test_panic_boundary();
  {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
