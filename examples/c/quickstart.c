/* keyward from C: open a store, issue a key, verify it (from a header, as a web server
 * would), revoke it, and verify again. Build and run:
 *
 *   make install PREFIX="$HOME/opt/keyward"
 *   export PKG_CONFIG_PATH="$HOME/opt/keyward/lib/pkgconfig"
 *   cc -std=c11 examples/c/quickstart.c $(pkg-config --cflags --libs keyward) \
 *     -Wl,-rpath,"$(pkg-config --variable=libdir keyward)" -o quickstart
 *   ./quickstart keys.redb
 */
#include <stdio.h>
#include <string.h>

#include <keyward.h>

static int fail(const char *what, kw_status status) {
  fprintf(stderr, "%s: %s (%s)\n", what, kw_status_name(status), kw_status_message(status));
  return 1;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "keys.redb";
  kw_options options;
  kw_store store;
  kw_new_key new_key;
  kw_str scopes[1];
  char key[KW_MAX_KEY_LEN + 1];
  size_t key_len;
  char bearer[16 + KW_MAX_KEY_LEN];
  kw_header header;
  kw_verdict verdict;
  kw_status status;

  if (kw_abi_version() != KW_ABI_VERSION) {
    fprintf(stderr, "libkeyward has ABI %u, this program was built for %u\n", kw_abi_version(), KW_ABI_VERSION);
    return 1;
  }

  /* Open (or create) the store; every field left at 0 takes its default. */
  memset(&options, 0, sizeof options);
  options.path = path;
  options.path_len = strlen(path);
  status = kw_open(&options, &store);
  if (status != KW_OK) return fail("kw_open", status);

  /* Issue a key with one scope. The full key exists only in `key`, once. */
  scopes[0].ptr = "deploy";
  scopes[0].len = 6;
  memset(&new_key, 0, sizeof new_key);
  new_key.owner.ptr = "acct_42";
  new_key.owner.len = 7;
  new_key.name.ptr = "CI deploy";
  new_key.name.len = 9;
  new_key.env.ptr = "live";
  new_key.env.len = 4;
  new_key.scopes = scopes;
  new_key.scopes_len = 1;
  status = kw_create(store, &new_key, (uint8_t *)key, KW_MAX_KEY_LEN, &key_len, NULL, 0, NULL);
  if (status != KW_OK) return fail("kw_create", status);
  key[key_len] = '\0';
  printf("give this to the customer once: %s\n", key);

  /* Per request: verify the Authorization header against the route's scope. */
  snprintf(bearer, sizeof bearer, "Bearer %s", key);
  header.name = "Authorization";
  header.name_len = strlen(header.name);
  header.value = bearer;
  header.value_len = strlen(bearer);
  status = kw_verify_headers(store, &header, 1, scopes, 1, 0, 0, &verdict, NULL, 0, NULL);
  if (status != KW_OK) return fail("kw_verify_headers", status);
  printf("verify: %s -> HTTP %u, key %s of %s\n", kw_reason_code(verdict.reason), verdict.http_status,
         verdict.key_id, verdict.owner);
  if (verdict.reason != KW_REASON_VALID) return 1;

  /* Revoke it: the next verify refuses it, in this process and every other one. */
  status = kw_revoke(store, verdict.key_id, strlen(verdict.key_id), "example done", 12, NULL, 0, NULL);
  if (status != KW_OK) return fail("kw_revoke", status);
  status = kw_verify(store, key, key_len, NULL, 0, 0, 0, &verdict, NULL, 0, NULL);
  if (status != KW_OK) return fail("kw_verify", status);
  printf("after revoke: %s -> HTTP %u\n", kw_reason_code(verdict.reason), verdict.http_status);

  memset(key, 0, sizeof key); /* wipe the secret */
  memset(bearer, 0, sizeof bearer);
  status = kw_close(store);
  if (status != KW_OK) return fail("kw_close", status);
  return verdict.reason == KW_REASON_REVOKED ? 0 : 1;
}
