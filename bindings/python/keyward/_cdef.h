/* Generated from include/keyward.h by bindings/python/gen_cdef.py: the header as a
   C11 compiler sees it, without preprocessor conditionals, includes or comments, every
   macro evaluated to an integer. Do not edit; tests/test_cdef.py checks it. */
#define KW_ABI_VERSION 1
#define KW_MAX_ACTOR_LEN 256
#define KW_MAX_LEGACY_SOURCE_ID_LEN 128
#define KW_OWNER_INFO_MAX_LEN 16384
#define KW_MAX_OWNER_LEN 128
#define KW_MAX_NAME_LEN 256
#define KW_MAX_SCOPE_LEN 64
#define KW_MAX_SCOPES 64
#define KW_MAX_METADATA_LEN 4096
#define KW_MAX_REASON_LEN 512
#define KW_MAX_PAGE_SIZE 1000
#define KW_MAX_TAG_LEN 16
#define KW_KEY_ID_LEN 16
#define KW_SECRET_LEN 32
#define KW_MAX_KEY_LEN 88
#define KW_MAX_PRESENTED_LEN 1024
#define KW_MAX_HEADER_NAME_LEN 256
#define KW_MAX_HEADER_VALUE_LEN 8192
#define KW_MAX_HEADERS 1024
#define KW_MAX_PATH_LEN 4096
#define KW_MAX_USAGE_DAYS 3660
#define KW_MAX_CREATE_MANY 100000
#define KW_KEY_INFO_MAX_LEN 24576
#define KW_RATE_HEADERS_MAX_LEN 256
#define KW_DEFAULT_ROTATION_GRACE_MS 86400000
#define KW_MAX_UPSTREAM_URL_LEN 4096
#define KW_FLUSH_MANUAL 18446744073709551615
enum kw_status
 {
  KW_OK = 0,
  KW_INVALID_ARGUMENT = 1,
  KW_NULL_ARGUMENT = 2,
  KW_INVALID_UTF8 = 3,
  KW_TOO_LONG = 4,
  KW_BUFFER_TOO_SMALL = 5,
  KW_PANIC = 6,
  KW_CLOSED = 7,
  KW_NOT_FOUND = 10,
  KW_OWNER_NOT_FOUND = 11,
  KW_POLICY_MAX_ACTIVE_KEYS = 20,
  KW_POLICY_LAST_ACTIVE_KEY = 21,
  KW_POLICY_MAX_LIFETIME = 22,
  KW_DIRECTORY_MISSING = 30,
  KW_LOCKED = 31,
  KW_READ_ONLY = 32,
  KW_CORRUPT = 33,
  KW_WRONG_PEPPER = 34,
  KW_NEWER_FORMAT = 35,
  KW_PEPPER_MISSING = 36,
  KW_PEPPER_INVALID = 37,
  KW_PEPPER_PERMISSIONS = 38,
  KW_CONFIG_MISMATCH = 39,
  KW_STORAGE = 40,
  KW_CREDIT_SLOTS_EXHAUSTED = 42,
  KW_RATE_SLOTS_EXHAUSTED = 43,
  KW_CREDENTIAL_MISSING = 50,
  KW_UNSUPPORTED_SCHEME = 51,
  KW_BAD_BASE64 = 52,
  KW_HALF_PAIR = 53,
  KW_MALFORMED_KEY = 54,
  KW_AMBIGUOUS_CREDENTIAL = 55,
  KW_LEGACY_IMPORT_INVALID = 60,
  KW_UPSTREAM_UNAVAILABLE = 70,
  KW_UPSTREAM_SCHEMA = 71,
  KW_UPSTREAM_REQUIRED = 72,
  KW_UPSTREAM_UNSUPPORTED = 73,
};
typedef uint32_t kw_status;
enum kw_family
 {
  KW_FAMILY_OK = 0,
  KW_FAMILY_ARGUMENT = 1,
  KW_FAMILY_NOT_FOUND = 2,
  KW_FAMILY_POLICY = 3,
  KW_FAMILY_STORAGE = 4,
  KW_FAMILY_PEPPER = 5,
  KW_FAMILY_CREDENTIAL = 6,
  KW_FAMILY_INTERNAL = 7,
  KW_FAMILY_UPSTREAM = 8,
};
typedef uint32_t kw_family;
enum kw_reason
 {
  KW_REASON_VALID = 0,
  KW_REASON_MALFORMED = 1,
  KW_REASON_NOT_FOUND = 2,
  KW_REASON_REVOKED = 3,
  KW_REASON_EXPIRED = 4,
  KW_REASON_INSUFFICIENT_SCOPE = 5,
  KW_REASON_USAGE_EXCEEDED = 6,
  KW_REASON_OWNER_SUSPENDED = 7,
  KW_REASON_RATE_LIMITED = 8,
};
typedef uint32_t kw_reason;
enum kw_concurrency
 {
  KW_CONCURRENCY_MULTI_PROCESS = 0,
  KW_CONCURRENCY_SINGLE_PROCESS = 1,
};
typedef uint32_t kw_concurrency;
enum kw_open_flags
 {
  KW_OPEN_PERSISTENT = 1,
  KW_OPEN_UPSTREAM = 2,
};
typedef uint32_t kw_open_flags;
enum kw_verify_flags
 {
  KW_VERIFY_DRY_RUN = 1,
  KW_VERIFY_RATE_FIELDS = 2,
};
typedef uint32_t kw_verify_flags;
enum kw_state_filter
 {
  KW_STATE_ALL = 0,
  KW_STATE_ACTIVE = 1,
  KW_STATE_REVOKED = 2,
  KW_STATE_EXPIRED = 3,
};
typedef uint32_t kw_state_filter;
enum kw_refill_interval
 {
  KW_REFILL_NONE = 0,
  KW_REFILL_DAILY = 1,
  KW_REFILL_MONTHLY = 2,
};
typedef uint32_t kw_refill_interval;
enum kw_update_field
 {
  KW_UPDATE_NAME = 1,
  KW_UPDATE_SCOPES = 2,
  KW_UPDATE_METADATA = 4,
  KW_UPDATE_EXPIRES_AT = 8,
  KW_UPDATE_CREDITS = 16,
};
typedef uint32_t kw_update_field;
enum kw_credential_kind
 {
  KW_CREDENTIAL_KEY = 1,
  KW_CREDENTIAL_PAIR = 2,
};
typedef uint32_t kw_credential_kind;
enum kw_key_error
 {
  KW_KEY_OK = 0,
  KW_KEY_EMPTY = 1,
  KW_KEY_TOO_LONG = 2,
  KW_KEY_BAD_STRUCTURE = 3,
  KW_KEY_BAD_PREFIX = 4,
  KW_KEY_BAD_ENV = 5,
  KW_KEY_BAD_LENGTH = 6,
  KW_KEY_NOT_BASE62 = 7,
  KW_KEY_BAD_CHECKSUM = 8,
};
typedef uint32_t kw_key_error;
enum kw_key_flag
 {
  KW_KEY_LIMITED = 1,
  KW_KEY_REVOKED_FLAG = 2,
  KW_KEY_ROTATED = 4,
  KW_KEY_RATE_LIMITED = 8,
};
typedef uint32_t kw_key_flag;
enum kw_legacy_scheme
 {
  KW_LEGACY_SANCTUM = 1,
  KW_LEGACY_DRF = 2,
  KW_LEGACY_UNKEY = 3,
  KW_LEGACY_BETTER_AUTH = 4,
};
typedef uint32_t kw_legacy_scheme;
enum kw_rate_scope
 {
  KW_RATE_NONE = 0,
  KW_RATE_KEY = 1,
  KW_RATE_OWNER = 2,
};
typedef uint32_t kw_rate_scope;
typedef uint64_t kw_store;
typedef struct kw_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} kw_header;
typedef struct kw_parsed_key {
  uint32_t valid;
  uint32_t error;
  char prefix[24];
  char env[24];
  char id[24];
  char secret[40];
} kw_parsed_key;
typedef struct kw_str {
  const char *ptr;
  size_t len;
} kw_str;
typedef struct kw_legacy_import_options {
  uint32_t dry_run;
  uint32_t reserved;
  uint64_t sanctum_expiration_minutes;
  const struct kw_str *all_scopes;
  size_t all_scopes_len;
  struct kw_str default_owner;
} kw_legacy_import_options;
typedef struct kw_legacy_import_report {
  uint32_t scheme;
  uint32_t dry_run;
  uint64_t rows;
  uint64_t imported;
  uint64_t already_present;
  uint64_t deleted;
  uint64_t revoked;
  uint64_t expired;
} kw_legacy_import_report;
typedef struct kw_credits {
  uint64_t remaining;
  uint64_t refill_amount;
  uint32_t refill_interval;
  uint32_t cost;
} kw_credits;
typedef struct kw_new_key {
  struct kw_str owner;
  struct kw_str name;
  const struct kw_str *scopes;
  size_t scopes_len;
  struct kw_str env;
  const uint8_t *metadata;
  size_t metadata_len;
  int64_t expires_at_ms;
  const struct kw_credits *credits;
} kw_new_key;
typedef struct kw_created_key {
  char key[96];
  size_t key_len;
  char id[24];
} kw_created_key;
typedef struct kw_key_update {
  uint32_t fields;
  struct kw_str name;
  const struct kw_str *scopes;
  size_t scopes_len;
  const uint8_t *metadata;
  size_t metadata_len;
  int64_t expires_at_ms;
  const struct kw_credits *credits;
} kw_key_update;
typedef struct kw_rate_limit {
  uint64_t rate;
  uint64_t period_ms;
  uint64_t burst;
} kw_rate_limit;
typedef struct kw_options {
  const char *path;
  size_t path_len;
  const uint8_t *pepper;
  size_t pepper_len;
  const char *pepper_file;
  size_t pepper_file_len;
  const char *prefix;
  size_t prefix_len;
  uint32_t concurrency;
  uint32_t flags;
  uint32_t max_active_keys_per_owner;
  uint32_t keep_last_key;
  uint64_t max_lifetime_ms;
  uint64_t flush_interval_ms;
  uint64_t index_capacity;
  const char *upstream;
  size_t upstream_len;
} kw_options;
typedef struct kw_store_stats {
  uint64_t commits;
  uint64_t refreshes;
  uint64_t indexed_keys;
  uint64_t dirty_keys;
  uint32_t index_complete;
  uint32_t reserved;
} kw_store_stats;
typedef struct kw_store_replica_stats {
  uint32_t is_replica;
  uint32_t connected;
  uint64_t cursor;
  int64_t synced_at_ms;
  int64_t staleness_ms;
  int64_t reported_at_ms;
} kw_store_replica_stats;
typedef struct kw_store_table_stats {
  uint64_t generation;
  uint64_t slots;
  uint64_t keys;
  uint64_t lookup_bytes;
  uint64_t file_bytes;
  uint64_t cached_records;
  uint64_t rebuilds;
  uint64_t slots_repaired;
  uint32_t mapped;
  uint32_t reserved;
} kw_store_table_stats;
typedef struct kw_usage_stats {
  uint64_t uses;
  uint64_t refused;
  int64_t last_used_ms;
} kw_usage_stats;
typedef struct kw_credit_balance {
  uint32_t limited;
  uint32_t cost;
  uint64_t remaining;
  uint64_t refill_amount;
  uint32_t refill_interval;
  uint32_t reserved;
} kw_credit_balance;
typedef struct kw_verdict {
  uint32_t reason;
  uint32_t http_status;
  uint32_t key_found;
  uint32_t key_flags;
  int64_t created_at_ms;
  int64_t expires_at_ms;
  char key_id[24];
  char env[24];
  char owner[136];
  uint32_t rate_scope;
  uint32_t rate_reserved;
  uint64_t retry_after_ms;
  uint64_t rate_limit;
  uint64_t rate_period_ms;
  uint64_t rate_burst;
  uint64_t rate_remaining;
  uint64_t rate_reset_ms;
} kw_verdict;
#define KW_STORE_NONE 0
uint32_t kw_abi_version(void);
const char *kw_version(void);
kw_status kw_with_actor(kw_store store, const char *actor, size_t actor_len, kw_store *out_store);
kw_status kw_audit(kw_store store,
                   const char *key_id,
                   size_t key_id_len,
                   const char *owner,
                   size_t owner_len,
                   const char *actor,
                   size_t actor_len,
                   int64_t since_ms,
                   int64_t until_ms,
                   uint64_t after,
                   uint32_t limit,
                   uint8_t *buf,
                   size_t cap,
                   size_t *out_len);
kw_status kw_set_audit_retention(kw_store store, uint32_t days);
kw_status kw_extract_credential(const struct kw_header *headers,
                                size_t headers_len,
                                uint32_t *out_kind,
                                uint8_t *secret_buf,
                                size_t secret_cap,
                                size_t *out_secret_len,
                                uint8_t *id_buf,
                                size_t id_cap,
                                size_t *out_id_len);
kw_status kw_parse_key(const char *key,
                       size_t key_len,
                       const char *prefix,
                       size_t prefix_len,
                       struct kw_parsed_key *out_parsed);
const char *kw_key_error_name(uint32_t error);
const char *kw_reason_code(uint32_t reason);
const char *kw_reason_message(uint32_t reason);
uint32_t kw_reason_http_status(uint32_t reason);
kw_status kw_last_error_message(uint8_t *buf, size_t cap, size_t *out_len);
kw_status kw_import_legacy(kw_store store,
                           uint32_t scheme,
                           const uint8_t *data,
                           size_t data_len,
                           const struct kw_legacy_import_options *options,
                           struct kw_legacy_import_report *out_report);
kw_status kw_legacy_key_id(uint32_t scheme,
                           const char *source_id,
                           size_t source_id_len,
                           char *out_id);
kw_status kw_create(kw_store store,
                    const struct kw_new_key *new_key,
                    uint8_t *key_buf,
                    size_t key_cap,
                    size_t *out_key_len,
                    uint8_t *info_buf,
                    size_t info_cap,
                    size_t *out_info_len);
kw_status kw_create_many(kw_store store,
                         const struct kw_new_key *new_keys,
                         size_t count,
                         struct kw_created_key *out,
                         size_t out_cap,
                         size_t *out_count);
kw_status kw_get(kw_store store,
                 const char *id,
                 size_t id_len,
                 uint8_t *buf,
                 size_t cap,
                 size_t *out_len);
kw_status kw_list(kw_store store,
                  const char *owner,
                  size_t owner_len,
                  uint64_t after,
                  uint32_t limit,
                  uint32_t state,
                  uint8_t *buf,
                  size_t cap,
                  size_t *out_len);
kw_status kw_all_keys(kw_store store, uint8_t *buf, size_t cap, size_t *out_len);
kw_status kw_update(kw_store store,
                    const char *id,
                    size_t id_len,
                    const struct kw_key_update *update,
                    uint8_t *info_buf,
                    size_t info_cap,
                    size_t *out_info_len);
kw_status kw_revoke(kw_store store,
                    const char *id,
                    size_t id_len,
                    const char *reason,
                    size_t reason_len,
                    uint8_t *info_buf,
                    size_t info_cap,
                    size_t *out_info_len);
kw_status kw_delete(kw_store store, const char *id, size_t id_len);
kw_status kw_rotate(kw_store store,
                    const char *id,
                    size_t id_len,
                    uint64_t grace_ms,
                    uint8_t *key_buf,
                    size_t key_cap,
                    size_t *out_key_len,
                    uint8_t *info_buf,
                    size_t info_cap,
                    size_t *out_info_len);
kw_status kw_owner_suspend(kw_store store,
                           const char *owner,
                           size_t owner_len,
                           const char *reason,
                           size_t reason_len,
                           uint8_t *buf,
                           size_t cap,
                           size_t *out_len);
kw_status kw_owner_resume(kw_store store,
                          const char *owner,
                          size_t owner_len,
                          uint8_t *buf,
                          size_t cap,
                          size_t *out_len);
kw_status kw_owner_set_scopes(kw_store store,
                              const char *owner,
                              size_t owner_len,
                              const struct kw_str *scopes,
                              size_t scopes_len,
                              uint32_t clear,
                              uint8_t *buf,
                              size_t cap,
                              size_t *out_len);
kw_status kw_owner_get(kw_store store,
                       const char *owner,
                       size_t owner_len,
                       uint8_t *buf,
                       size_t cap,
                       size_t *out_len);
kw_status kw_owners_list(kw_store store, uint8_t *buf, size_t cap, size_t *out_len);
kw_status kw_set_rate_limit(kw_store store,
                            const char *id,
                            size_t id_len,
                            const struct kw_rate_limit *limit,
                            uint8_t *info_buf,
                            size_t info_cap,
                            size_t *out_info_len);
kw_status kw_set_owner_rate_limit(kw_store store,
                                  const char *owner,
                                  size_t owner_len,
                                  const struct kw_rate_limit *limit);
kw_status kw_owner_rate_limit(kw_store store,
                              const char *owner,
                              size_t owner_len,
                              struct kw_rate_limit *out_limit,
                              uint32_t *out_found);
const char *kw_status_message(uint32_t status);
const char *kw_status_name(uint32_t status);
uint32_t kw_status_family(uint32_t status);
kw_status kw_open(const struct kw_options *options, kw_store *out_store);
kw_status kw_close(kw_store store);
kw_status kw_flush(kw_store store, size_t *out_written);
kw_status kw_stats(kw_store store, struct kw_store_stats *out_stats);
kw_status kw_replica_stats(kw_store store, struct kw_store_replica_stats *out_stats);
kw_status kw_table_stats(kw_store store, struct kw_store_table_stats *out_stats);
kw_status kw_same_store(kw_store a, kw_store b, uint32_t *out_same);
kw_status kw_release_persistent(void);
kw_status kw_usage(kw_store store, const char *id, size_t id_len, struct kw_usage_stats *out_usage);
kw_status kw_usage_by_day(kw_store store,
                          const char *id,
                          size_t id_len,
                          int32_t from_day,
                          int32_t to_day,
                          uint8_t *buf,
                          size_t cap,
                          size_t *out_len);
kw_status kw_unused_since(kw_store store,
                          const char *owner,
                          size_t owner_len,
                          int64_t since_ms,
                          uint8_t *buf,
                          size_t cap,
                          size_t *out_len);
kw_status kw_key_credits(kw_store store,
                         const char *id,
                         size_t id_len,
                         struct kw_credit_balance *out_balance);
kw_status kw_expiring_within(kw_store store,
                             int64_t within_ms,
                             uint8_t *buf,
                             size_t cap,
                             size_t *out_len);
kw_status kw_credits_below(kw_store store,
                           uint64_t threshold,
                           uint8_t *buf,
                           size_t cap,
                           size_t *out_len);
kw_status kw_verify(kw_store store,
                    const char *key,
                    size_t key_len,
                    const struct kw_str *scopes,
                    size_t scopes_len,
                    uint32_t cost,
                    int64_t at_ms,
                    struct kw_verdict *out_verdict,
                    uint8_t *info_buf,
                    size_t info_cap,
                    size_t *out_info_len);
kw_status kw_verify_ex(kw_store store,
                       const char *key,
                       size_t key_len,
                       const struct kw_str *scopes,
                       size_t scopes_len,
                       uint32_t cost,
                       int64_t at_ms,
                       uint32_t flags,
                       struct kw_verdict *out_verdict,
                       uint8_t *info_buf,
                       size_t info_cap,
                       size_t *out_info_len);
kw_status kw_verify_key(kw_store store,
                        const char *key,
                        size_t key_len,
                        const struct kw_str *scopes,
                        size_t scopes_len,
                        struct kw_verdict *out_verdict);
kw_status kw_verify_key_ex(kw_store store,
                           const char *key,
                           size_t key_len,
                           const struct kw_str *scopes,
                           size_t scopes_len,
                           uint32_t flags,
                           struct kw_verdict *out_verdict);
kw_status kw_rate_headers(const struct kw_verdict *verdict,
                          uint8_t *buf,
                          size_t cap,
                          size_t *out_len);
kw_status kw_verify_pair(kw_store store,
                         const char *id,
                         size_t id_len,
                         const char *secret,
                         size_t secret_len,
                         const struct kw_str *scopes,
                         size_t scopes_len,
                         uint32_t cost,
                         int64_t at_ms,
                         struct kw_verdict *out_verdict,
                         uint8_t *info_buf,
                         size_t info_cap,
                         size_t *out_info_len);
kw_status kw_verify_pair_ex(kw_store store,
                            const char *id,
                            size_t id_len,
                            const char *secret,
                            size_t secret_len,
                            const struct kw_str *scopes,
                            size_t scopes_len,
                            uint32_t cost,
                            int64_t at_ms,
                            uint32_t flags,
                            struct kw_verdict *out_verdict,
                            uint8_t *info_buf,
                            size_t info_cap,
                            size_t *out_info_len);
kw_status kw_verify_headers(kw_store store,
                            const struct kw_header *headers,
                            size_t headers_len,
                            const struct kw_str *scopes,
                            size_t scopes_len,
                            uint32_t cost,
                            int64_t at_ms,
                            struct kw_verdict *out_verdict,
                            uint8_t *info_buf,
                            size_t info_cap,
                            size_t *out_info_len);
kw_status kw_verify_headers_ex(kw_store store,
                               const struct kw_header *headers,
                               size_t headers_len,
                               const struct kw_str *scopes,
                               size_t scopes_len,
                               uint32_t cost,
                               int64_t at_ms,
                               uint32_t flags,
                               struct kw_verdict *out_verdict,
                               uint8_t *info_buf,
                               size_t info_cap,
                               size_t *out_info_len);
