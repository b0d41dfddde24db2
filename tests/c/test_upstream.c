/* C tests of a store opened with an upstream PostgreSQL (kw_options.upstream with
 * KW_OPEN_UPSTREAM; README "Several hosts"): two stores ("hosts") with one pepper on one
 * server; keys created and revoked through host A's kw_create / kw_revoke are written to
 * PostgreSQL first; host B sees them after `keyward replicate --once` (the CLI given in
 * KW_CLI); kw_replica_stats reports B's cursor and staleness; a server that is down, or a URL
 * that is not one, gives the UPSTREAM (or ARGUMENT) status with a clear message and changes
 * nothing.
 *
 * Usage: KW_PG_URL=postgresql://... KW_PG_SCRIPT=scripts/pg-test-server.sh KW_PG_DIR=DIR
 *        KW_CLI=target/debug/keyward test_upstream
 * (scripts/test-c.sh starts the server and sets these.) Compiled as C11, -Werror -pedantic. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward.h"

static int passed, failed;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    if (cond) passed++;                                                                      \
    else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); }      \
  } while (0)

#define CHECK_STATUS(call, expected)                                                         \
  do {                                                                                       \
    kw_status got_ = (call);                                                                 \
    if (got_ == (kw_status)(expected)) passed++;                                             \
    else {                                                                                   \
      failed++;                                                                              \
      fprintf(stderr, "FAIL %s:%d: %s -> %s (%s), expected %s\n", __FILE__, __LINE__, #call, \
              kw_status_name(got_), last_error(), kw_status_name(expected));                 \
    }                                                                                        \
  } while (0)

/* 64 hex characters: the one pepper both hosts use. */
static const char PEPPER[] = "0101010101010101010101010101010101010101010101010101010101010101";
static char tmpdir[256];
static char message[1024];

static const char *last_error(void) {
  size_t len = 0;
  if (kw_last_error_message((uint8_t *)message, sizeof message - 1, &len) != KW_OK) len = 0;
  message[len] = 0;
  return message;
}

static kw_store open_host(const char *name, const char *url, kw_status expected) {
  char path[512];
  kw_options o;
  kw_store s = KW_STORE_NONE;
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  memset(&o, 0, sizeof o);
  o.path = path;
  o.path_len = strlen(path);
  o.pepper = (const uint8_t *)PEPPER;
  o.pepper_len = strlen(PEPPER);
  o.flush_interval_ms = KW_FLUSH_MANUAL;
  o.flags = KW_OPEN_UPSTREAM;
  o.upstream = url;
  o.upstream_len = url ? strlen(url) : 0;
  CHECK_STATUS(kw_open(&o, &s), expected);
  return s;
}

static kw_status create_key(kw_store s, const char *owner, char *key, char *id) {
  kw_new_key nk;
  kw_parsed_key parsed;
  size_t key_len = 0;
  kw_status st;
  memset(&nk, 0, sizeof nk);
  nk.owner.ptr = owner;
  nk.owner.len = strlen(owner);
  st = kw_create(s, &nk, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL);
  key[st == KW_OK ? key_len : 0] = 0;
  id[0] = 0;
  if (st == KW_OK && kw_parse_key(key, key_len, NULL, 0, &parsed) == KW_OK) strcpy(id, parsed.id);
  return st;
}

static uint32_t reason(kw_store s, const char *key) {
  kw_verdict v;
  if (kw_verify(s, key, strlen(key), NULL, 0, 0, 0, &v, NULL, 0, NULL) != KW_OK) return 999;
  return v.reason;
}

/* `keyward replicate --once` for host `name` (the replicator of that host). */
static int replicate_once(const char *name, const char *url) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "umask 077 && printf '%%s' '%s' > '%s/pepper.hex' && '%s' replicate --once --db '%s/%s' "
           "--pepper-file '%s/pepper.hex' --upstream '%s' >/dev/null",
           PEPPER, tmpdir, getenv("KW_CLI"), tmpdir, name, tmpdir, url);
  return system(cmd);
}

static int pg(const char *action) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash '%s' %s '%s' >/dev/null", getenv("KW_PG_SCRIPT"), action,
           getenv("KW_PG_DIR"));
  return system(cmd);
}

int main(void) {
  const char *url = getenv("KW_PG_URL");
  char key[KW_MAX_KEY_LEN + 1], id[32], key2[KW_MAX_KEY_LEN + 1], id2[32];
  kw_store a, b, c;
  kw_store_replica_stats rs;
  if (!url || !getenv("KW_CLI") || !getenv("KW_PG_SCRIPT") || !getenv("KW_PG_DIR")) {
    fprintf(stderr, "set KW_PG_URL, KW_PG_SCRIPT, KW_PG_DIR and KW_CLI (scripts/test-c.sh does)\n");
    return 2;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/keyward-c-upstream-XXXXXX");
  if (!mkdtemp(tmpdir)) return 2;

  a = open_host("a.redb", url, KW_OK);
  b = open_host("b.redb", url, KW_OK);

  /* A store of its own is no replica. */
  c = open_host("own.redb", NULL, KW_OK);
  CHECK_STATUS(kw_replica_stats(c, &rs), KW_OK);
  CHECK(rs.is_replica == 0 && rs.cursor == 0 && rs.staleness_ms == 0);
  CHECK_STATUS(kw_close(c), KW_OK);

  /* Create and revoke through host A: PostgreSQL first, then A's own store. */
  CHECK_STATUS(create_key(a, "acct_1", key, id), KW_OK);
  CHECK_STATUS(create_key(a, "acct_2", key2, id2), KW_OK);
  CHECK(reason(a, key) == KW_REASON_VALID);
  CHECK(reason(b, key) == KW_REASON_NOT_FOUND);
  CHECK(replicate_once("b.redb", url) == 0);
  CHECK(reason(b, key) == KW_REASON_VALID);
  CHECK(reason(b, key2) == KW_REASON_VALID);

  CHECK_STATUS(kw_revoke(a, id, strlen(id), "leaked", 6, NULL, 0, NULL), KW_OK);
  CHECK(reason(a, key) == KW_REASON_REVOKED);
  CHECK(reason(b, key) == KW_REASON_VALID); /* until B's replicator brings it */
  CHECK(replicate_once("b.redb", url) == 0);
  CHECK(reason(b, key) == KW_REASON_REVOKED);
  CHECK(reason(b, key2) == KW_REASON_VALID);

  /* B's stats: a replica at the upstream's last sequence (3), synced just now. */
  CHECK_STATUS(kw_replica_stats(b, &rs), KW_OK);
  CHECK(rs.is_replica == 1);
  CHECK(rs.cursor == 3);
  CHECK(rs.synced_at_ms > 0 && rs.staleness_ms >= 0 && rs.reported_at_ms >= rs.synced_at_ms);
  CHECK_STATUS(kw_replica_stats(b, NULL), KW_NULL_ARGUMENT);

  /* Owner controls go through the upstream too: suspended on A, refused on B after its sync;
     resumed through B, valid again on both. */
  CHECK_STATUS(kw_owner_suspend(a, "acct_2", 6, NULL, 0, NULL, 0, NULL), KW_OK);
  CHECK(reason(a, key2) == KW_REASON_OWNER_SUSPENDED);
  CHECK(replicate_once("b.redb", url) == 0);
  CHECK(reason(b, key2) == KW_REASON_OWNER_SUSPENDED);
  CHECK_STATUS(kw_owner_resume(b, "acct_2", 6, NULL, 0, NULL), KW_OK);
  CHECK(reason(b, key2) == KW_REASON_VALID);
  CHECK(replicate_once("a.redb", url) == 0);
  CHECK(reason(a, key2) == KW_REASON_VALID);

  /* Server down: UPSTREAM_UNAVAILABLE, nothing changed; verifies go on. */
  CHECK(pg("kill") == 0);
  CHECK_STATUS(kw_revoke(a, id2, strlen(id2), NULL, 0, NULL, 0, NULL), KW_UPSTREAM_UNAVAILABLE);
  CHECK(strstr(last_error(), "nothing was changed") != NULL);
  CHECK(kw_status_family(KW_UPSTREAM_UNAVAILABLE) == KW_FAMILY_UPSTREAM);
  CHECK(reason(a, key2) == KW_REASON_VALID);
  CHECK(reason(b, key2) == KW_REASON_VALID);
  CHECK(pg("start") == 0);
  /* The next call reconnects by itself. */
  CHECK_STATUS(kw_revoke(a, id2, strlen(id2), NULL, 0, NULL, 0, NULL), KW_OK);
  CHECK(reason(a, key2) == KW_REASON_REVOKED);

  /* A URL that is not one is refused at open; a long one is KW_TOO_LONG. */
  open_host("bad.redb", "postgresql://host:notaport/db", KW_INVALID_ARGUMENT);
  CHECK(strstr(last_error(), "not a PostgreSQL connection URL") != NULL);
  {
    static char long_url[KW_MAX_UPSTREAM_URL_LEN + 2];
    memset(long_url, 'a', sizeof long_url - 1);
    open_host("long.redb", long_url, KW_TOO_LONG);
  }
  /* Without KW_OPEN_UPSTREAM the fields are not read (an older caller's struct ends before). */
  {
    char path[512];
    kw_options o;
    kw_store s = KW_STORE_NONE;
    snprintf(path, sizeof path, "%s/old.redb", tmpdir);
    memset(&o, 0, sizeof o);
    o.path = path;
    o.path_len = strlen(path);
    o.upstream = "garbage that is never read";
    o.upstream_len = 26;
    CHECK_STATUS(kw_open(&o, &s), KW_OK);
    CHECK_STATUS(kw_replica_stats(s, &rs), KW_OK);
    CHECK(rs.is_replica == 0);
    CHECK_STATUS(kw_close(s), KW_OK);
  }

  CHECK_STATUS(kw_close(a), KW_OK);
  CHECK_STATUS(kw_close(b), KW_OK);
  {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
