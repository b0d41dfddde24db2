/*
 * keyward_native: the optional PHP extension of the keyward PHP binding (README.md beside it).
 *
 * The request hot paths of the binding: Keyward\Store::verifyCredentials() (Middleware, the
 * Laravel guard, Guard with a store of its own) and Keyward\Guard's default check (below,
 * keyward_native_guard). The credential headers and scopes go straight from the PHP
 * arrays to kw_verify_headers_ex, the kw_header and kw_str arrays pointing into the PHP
 * strings for the duration of the call (no copy of a secret, nothing to wipe), and the
 * kw_verdict comes back as a string that Keyward\Verdict decodes lazily. Through FFI the same
 * call costs a C buffer, a copy, a wipe and several FFI objects per request.
 *
 * The extension does not link libkeyward: it calls the copy the binding loaded through FFI.
 * The binding passes the address of that copy's kw_verify_headers_ex (store handles are
 * indices into one library's table, so a handle must go back to the library that issued it).
 * Before calling an address for the first time the extension checks, with dladdr(), that it
 * is the exported symbol kw_verify_headers_ex of a loaded object whose kw_abi_version() is the
 * version of the header it was built with; any other address is refused.
 *
 *   keyward_native_verify(int $verify, int $handle, array $headers, array $scopes, int $cost,
 *                         ?string &$verdict): int
 *       $headers: a list of [name, value] string pairs; $scopes: a list of strings; $cost:
 *       0..UINT32_MAX. Returns the kw_status, and on KW_OK sets $verdict to the kw_verdict's
 *       bytes. Returns KEYWARD_NATIVE_UNSUPPORTED (-1) without calling the library when the
 *       arguments are of another shape (the binding then takes its FFI path, which reports
 *       the problem), and throws a ValueError for an address that is not libkeyward's.
 *
 *   keyward_native_guard_bind(int $verify, int $handle, string $entryName, string $entry): bool
 *       Keyward\Guard's default store, opened by the binding (Store::persistent() from the
 *       KEYWARD_STORE / KEYWARD_PEPPER_FILE environment): remembered for this process with
 *       the environment it was opened for and its persistent entry (the process environment
 *       variable $entryName = $entry, which Store::close() removes). Not bound (false) when
 *       KEYWARD_PEPPER itself is set: the extension keeps no copy of a secret.
 *
 *   keyward_native_guard_bound(): bool
 *       Whether keyward_native_guard() would use a bound store now (a diagnostic).
 *
 *   keyward_native_guard(array $scopes, int $cost, ?string &$verdict, mixed &$accepted = null): int
 *       Keyward\Guard::check()'s whole default path in one call: the bound store, if it is
 *       still this process's open store for the environment as it is now; the credential
 *       headers read from $_SERVER as Keyward\Credentials::fromServer() reads them; the
 *       verify. KEYWARD_NATIVE_UNSUPPORTED when anything is otherwise (nothing bound, another
 *       process, the environment or the store changed, an accepted verdict already in
 *       the global Guard::ACCEPTED, a header of another shape, Authorization only from
 *       REDIRECT_ or PHP_AUTH_):
 *       Guard then takes its PHP path, which binds.
 *       With $accepted (KEYWARD_NATIVE_GUARD >= 2), the usual answer, an accepted key without
 *       rate-limit fields, is finished here as Guard finishes it: $accepted is set to the
 *       Keyward\Verdict that Verdict::fromBytes() would make of $verdict (built without a
 *       call into PHP code: each PHP function a PHP-FPM request calls starts cold), and under
 *       a web SAPI the global Guard::ACCEPTED gets the entry Guard::check() leaves. $accepted
 *       stays null for any other verdict, or when the class is not loaded yet (preload loads
 *       it), and Guard decodes $verdict itself.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "php.h"
#include "ext/standard/info.h"
#include "SAPI.h"
#include "zend_exceptions.h"

#include "keyward.h"

#define KEYWARD_NATIVE_VERSION "0.2.0"

/* Returned for arguments this function does not take: the binding uses its FFI path. */
#define KEYWARD_NATIVE_UNSUPPORTED (-1)

/* The most credential headers passed in one call (Keyward\Credentials yields at most 5). */
#define MAX_HEADERS 16

typedef kw_status (*verify_headers_ex_fn)(kw_store, const kw_header *, size_t, const kw_str *, size_t, uint32_t,
                                          int64_t, uint32_t, kw_verdict *, uint8_t *, size_t, size_t *);
typedef uint32_t (*abi_version_fn)(void);

/*
 * The last address checked and found to be libkeyward's kw_verify_headers_ex. A process
 * normally has one copy of the library; a second checked address replaces the first. Threads
 * of a ZTS build racing here would only repeat the check.
 */
static uintptr_t checked_verify;

/* Whether address is the kw_verify_headers_ex of a loaded libkeyward of this ABI version. */
static bool is_libkeyward_verify(uintptr_t address)
{
    Dl_info info;
    void *object;
    abi_version_fn abi_version;
    bool ok;

    if (address == 0 || dladdr((void *) address, &info) == 0 || info.dli_sname == NULL
        || (uintptr_t) info.dli_saddr != address || strcmp(info.dli_sname, "kw_verify_headers_ex") != 0
        || info.dli_fname == NULL) {
        return false;
    }
    /* The object the symbol is in, already loaded (RTLD_NOLOAD): its kw_abi_version. */
    object = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (object == NULL) {
        return false;
    }
    abi_version = (abi_version_fn) dlsym(object, "kw_abi_version");
    ok = abi_version != NULL && abi_version() == KW_ABI_VERSION;
    dlclose(object); /* drops the reference RTLD_NOLOAD took; the library stays loaded */
    return ok;
}

/* Whether address (argument 1) may be called: libkeyward's kw_verify_headers_ex, checked once
 * per address (else a ValueError is thrown and false returned). */
static bool accept_verify_address(uintptr_t address)
{
    if (address != checked_verify) {
        if (!is_libkeyward_verify(address)) {
            zend_argument_value_error(1, "must be the address of kw_verify_headers_ex in a loaded libkeyward "
                                         "of C ABI version %d", KW_ABI_VERSION);
            return false;
        }
        checked_verify = address;
    }
    return true;
}

/* $headers as kw_header[] pointing into the PHP strings; false for another shape. */
static bool read_headers(HashTable *pairs, kw_header *out, size_t *count)
{
    zval *pair;
    size_t n = 0;

    if (zend_hash_num_elements(pairs) > MAX_HEADERS) {
        return false;
    }
    ZEND_HASH_FOREACH_VAL(pairs, pair) {
        zval *name, *value;
        ZVAL_DEREF(pair);
        if (Z_TYPE_P(pair) != IS_ARRAY || zend_hash_num_elements(Z_ARRVAL_P(pair)) != 2
            || (name = zend_hash_index_find(Z_ARRVAL_P(pair), 0)) == NULL
            || (value = zend_hash_index_find(Z_ARRVAL_P(pair), 1)) == NULL) {
            return false;
        }
        ZVAL_DEREF(name);
        ZVAL_DEREF(value);
        if (Z_TYPE_P(name) != IS_STRING || Z_TYPE_P(value) != IS_STRING) {
            return false;
        }
        out[n].name = Z_STRVAL_P(name);
        out[n].name_len = Z_STRLEN_P(name);
        out[n].value = Z_STRVAL_P(value);
        out[n].value_len = Z_STRLEN_P(value);
        n++;
    } ZEND_HASH_FOREACH_END();
    *count = n;
    return true;
}

/* $scopes as kw_str[] pointing into the PHP strings; false for another shape. */
static bool read_scopes(HashTable *scopes, kw_str *out, size_t *count)
{
    zval *item;
    size_t n = 0;

    if (zend_hash_num_elements(scopes) > KW_MAX_SCOPES) {
        return false;
    }
    ZEND_HASH_FOREACH_VAL(scopes, item) {
        ZVAL_DEREF(item);
        if (Z_TYPE_P(item) != IS_STRING) {
            return false;
        }
        out[n].ptr = Z_STRVAL_P(item);
        out[n].len = Z_STRLEN_P(item);
        n++;
    } ZEND_HASH_FOREACH_END();
    *count = n;
    return true;
}

PHP_FUNCTION(keyward_native_verify)
{
    zend_long verify_address, handle, cost;
    HashTable *pairs, *scopes;
    zval *verdict_out;
    kw_header headers[MAX_HEADERS];
    kw_str scope_array[KW_MAX_SCOPES];
    size_t header_count = 0, scope_count = 0;
    kw_verdict verdict;
    kw_status status;

    ZEND_PARSE_PARAMETERS_START(6, 6)
        Z_PARAM_LONG(verify_address)
        Z_PARAM_LONG(handle)
        Z_PARAM_ARRAY_HT(pairs)
        Z_PARAM_ARRAY_HT(scopes)
        Z_PARAM_LONG(cost)
        Z_PARAM_ZVAL(verdict_out)
    ZEND_PARSE_PARAMETERS_END();

    if (!accept_verify_address((uintptr_t) verify_address)) {
        RETURN_THROWS();
    }
    if (handle <= 0 || cost < 0 || (uint64_t) cost > UINT32_MAX || !read_headers(pairs, headers, &header_count)
        || !read_scopes(scopes, scope_array, &scope_count)) {
        RETURN_LONG(KEYWARD_NATIVE_UNSUPPORTED);
    }
    status = ((verify_headers_ex_fn) checked_verify)((kw_store) handle, header_count ? headers : NULL, header_count,
                                                     scope_count ? scope_array : NULL, scope_count, (uint32_t) cost,
                                                     0, KW_VERIFY_RATE_FIELDS, &verdict, NULL, 0, NULL);
    if (status == KW_OK) {
        ZEND_TRY_ASSIGN_REF_STRINGL(verdict_out, (const char *) &verdict, sizeof verdict);
    }
    RETURN_LONG((zend_long) status);
}

/*
 * Guard's default store, bound by keyward_native_guard_bind(). The environment it was opened
 * for is kept as read then (KEYWARD_STORE, KEYWARD_PEPPER_FILE: paths, not secrets). One per
 * process (a PHP-FPM worker serves one pool); a fork (another pid) binds its own. Threads of a
 * ZTS build would share it while one rebinds, so there nothing is ever bound (GUARD_SUPPORTED).
 */
#ifdef ZTS
#define GUARD_SUPPORTED false
#else
#define GUARD_SUPPORTED true
#endif
static struct {
    pid_t pid;
    zend_long handle;
    uintptr_t verify;
    char *store_path;
    char *pepper_file;
    char *entry_name;
    char *entry;
} guard;

/* Environment variable names, as Keyward\Guard reads them (Guard::STORE_ENV and store()). */
#define STORE_ENV "KEYWARD_STORE"
#define PEPPER_FILE_ENV "KEYWARD_PEPPER_FILE"
#define PEPPER_ENV "KEYWARD_PEPPER"

/* An environment variable's value, "" when unset (Guard treats an empty value as unset). */
static const char *env_or_empty(const char *name)
{
    const char *value = getenv(name);
    return value == NULL ? "" : value;
}

static void guard_unbind(void)
{
    free(guard.store_path);
    free(guard.pepper_file);
    free(guard.entry_name);
    free(guard.entry);
    memset(&guard, 0, sizeof guard);
}

PHP_FUNCTION(keyward_native_guard_bind)
{
    zend_long verify_address, handle;
    zend_string *entry_name, *entry;

    ZEND_PARSE_PARAMETERS_START(4, 4)
        Z_PARAM_LONG(verify_address)
        Z_PARAM_LONG(handle)
        Z_PARAM_STR(entry_name)
        Z_PARAM_STR(entry)
    ZEND_PARSE_PARAMETERS_END();

    guard_unbind();
    if (!GUARD_SUPPORTED) {
        RETURN_FALSE;
    }
    if (!accept_verify_address((uintptr_t) verify_address)) {
        RETURN_THROWS();
    }
    if (handle <= 0 || *env_or_empty(STORE_ENV) == '\0' || *env_or_empty(PEPPER_ENV) != '\0') {
        RETURN_FALSE;
    }
    guard.store_path = strdup(env_or_empty(STORE_ENV));
    guard.pepper_file = strdup(env_or_empty(PEPPER_FILE_ENV));
    guard.entry_name = strdup(ZSTR_VAL(entry_name));
    guard.entry = strdup(ZSTR_VAL(entry));
    if (guard.store_path == NULL || guard.pepper_file == NULL || guard.entry_name == NULL || guard.entry == NULL) {
        guard_unbind();
        RETURN_FALSE;
    }
    guard.pid = getpid();
    guard.handle = handle;
    guard.verify = (uintptr_t) verify_address;
    RETURN_TRUE;
}

/* Whether the bound store is this process's open store for the environment as it is now. */
static bool guard_bound_and_current(void)
{
    const char *entry;

    if (guard.handle == 0 || guard.pid != getpid() || strcmp(env_or_empty(STORE_ENV), guard.store_path) != 0
        || strcmp(env_or_empty(PEPPER_FILE_ENV), guard.pepper_file) != 0 || *env_or_empty(PEPPER_ENV) != '\0') {
        return false;
    }
    entry = getenv(guard.entry_name);
    return entry != NULL && strcmp(entry, guard.entry) == 0;
}

PHP_FUNCTION(keyward_native_guard_bound)
{
    ZEND_PARSE_PARAMETERS_NONE();
    RETURN_BOOL(guard_bound_and_current());
}

/* A $_SERVER entry that is a string, else NULL; *other is set when it exists but is not one. */
static zval *server_string(HashTable *server, const char *key, size_t key_len, bool *other)
{
    zval *value = zend_hash_str_find(server, key, key_len);
    if (value == NULL) {
        return NULL;
    }
    ZVAL_DEREF(value);
    if (Z_TYPE_P(value) != IS_STRING) {
        *other = true;
        return NULL;
    }
    return value;
}

/* The credential headers of $_SERVER as Keyward\Credentials::fromServer() reads them (its
 * SERVER_KEYS, in its order); false where this function leaves the request to PHP. */
static bool read_server_headers(HashTable *server, kw_header *out, size_t *count)
{
    static const struct {
        const char *key;
        size_t key_len;
        const char *name;
    } keys[] = {
        {ZEND_STRL("HTTP_X_API_KEY"), "x-api-key"},
        {ZEND_STRL("HTTP_AUTHORIZATION"), "authorization"},
        {ZEND_STRL("HTTP_X_API_TOKEN_ID"), "x-api-token-id"},
        {ZEND_STRL("HTTP_X_API_TOKEN_SECRET_KEY"), "x-api-token-secret-key"},
    };
    bool other = false;
    size_t n = 0, i;

    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        zval *value = server_string(server, keys[i].key, keys[i].key_len, &other);
        if (value != NULL) {
            out[n].name = keys[i].name;
            out[n].name_len = strlen(keys[i].name);
            out[n].value = Z_STRVAL_P(value);
            out[n].value_len = Z_STRLEN_P(value);
            n++;
        }
    }
    /* Another shape, or Authorization to be rebuilt (REDIRECT_, PHP_AUTH_): PHP's path. */
    if (other || (zend_hash_str_find(server, ZEND_STRL("HTTP_AUTHORIZATION")) == NULL
                  && (zend_hash_str_exists(server, ZEND_STRL("REDIRECT_HTTP_AUTHORIZATION"))
                      || zend_hash_str_exists(server, ZEND_STRL("PHP_AUTH_USER"))))) {
        return false;
    }
    *count = n;
    return true;
}

/* Names the extension looks up, made once (interned, so their hashes are computed once). */
static zend_string *s_verdict_class, *s_verdict_class_lc, *s_reasons, *s_native_len;
static zend_string *s_valid, *s_http_status, *s_code, *s_message, *s_reason, *s_credential_status, *s_record,
    *s_native, *s_rate_headers;

static void init_names(void)
{
    static const struct {
        zend_string **slot;
        const char *text;
    } names[] = {
        {&s_verdict_class, "Keyward\\Verdict"}, {&s_verdict_class_lc, "keyward\\verdict"}, {&s_reasons, "REASONS"},
        {&s_native_len, "NATIVE_LEN"}, {&s_valid, "valid"}, {&s_http_status, "httpStatus"}, {&s_code, "code"},
        {&s_message, "message"}, {&s_reason, "reason"}, {&s_credential_status, "credentialStatus"},
        {&s_record, "record"}, {&s_native, "native"}, {&s_rate_headers, "rateHeaders"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = zend_string_init_interned(names[i].text, strlen(names[i].text), 1);
    }
}

/* A constant of class ce, already evaluated (preloaded classes' are), else NULL. */
static zval *class_constant(zend_class_entry *ce, zend_string *name)
{
    zend_class_constant *constant = zend_hash_find_ptr(CE_CONSTANTS_TABLE(ce), name);
    return constant == NULL || Z_TYPE(constant->value) == IS_CONSTANT_AST ? NULL : &constant->value;
}

/* Sets property `name` of a new object (its slot still unset) to value (ownership passes). */
static bool init_property(zend_object *object, zend_string *name, zval *value)
{
    zend_property_info *info = zend_hash_find_ptr(&object->ce->properties_info, name);
    zval *slot;

    if (info == NULL || (info->flags & ZEND_ACC_STATIC)) {
        zval_ptr_dtor(value);
        return false;
    }
    slot = OBJ_PROP(object, info->offset);
    zval_ptr_dtor(slot);
    ZVAL_COPY_VALUE(slot, value);
    Z_PROP_FLAG_P(slot) = 0; /* initialised (as a write by the class's own code leaves it) */
    return true;
}

/*
 * The Keyward\Verdict of an accepted key without rate-limit fields, as Verdict::fromBytes()
 * makes it: `new Verdict(true, 200, REASONS[0][0], REASONS[0][1], 0, null, null, $native)`,
 * $native the verdict's first NATIVE_LEN bytes (code, message and length read from the class,
 * so they have one source). The constructor only stores its arguments, so the properties are
 * set directly. False (out untouched) when the class is not loaded or not of that shape.
 */
static bool accepted_verdict(zval *out, zend_string *raw)
{
    zend_class_entry *ce = zend_lookup_class_ex(s_verdict_class, s_verdict_class_lc, ZEND_FETCH_CLASS_NO_AUTOLOAD);
    zval *reasons, *valid_reason, *code, *message, *native_len, object;
    zend_object *verdict;

    if (ce == NULL || (reasons = class_constant(ce, s_reasons)) == NULL || Z_TYPE_P(reasons) != IS_ARRAY
        || (native_len = class_constant(ce, s_native_len)) == NULL || Z_TYPE_P(native_len) != IS_LONG
        || Z_LVAL_P(native_len) <= 0 || (size_t) Z_LVAL_P(native_len) > ZSTR_LEN(raw)
        || (valid_reason = zend_hash_index_find(Z_ARRVAL_P(reasons), KW_REASON_VALID)) == NULL
        || Z_TYPE_P(valid_reason) != IS_ARRAY || (code = zend_hash_index_find(Z_ARRVAL_P(valid_reason), 0)) == NULL
        || (message = zend_hash_index_find(Z_ARRVAL_P(valid_reason), 1)) == NULL || Z_TYPE_P(code) != IS_STRING
        || Z_TYPE_P(message) != IS_STRING || object_init_ex(&object, ce) != SUCCESS) {
        return false;
    }
    verdict = Z_OBJ(object);
    /* The constructor's parameters, in its order. */
    zend_string *const names[] = {s_valid, s_http_status, s_code, s_message, s_reason, s_credential_status,
                                  s_record, s_native, s_rate_headers};
    zval values[sizeof names / sizeof names[0]];
    ZVAL_TRUE(&values[0]);
    ZVAL_LONG(&values[1], 200);
    ZVAL_COPY(&values[2], code);
    ZVAL_COPY(&values[3], message);
    ZVAL_LONG(&values[4], KW_REASON_VALID);
    ZVAL_NULL(&values[5]);
    ZVAL_NULL(&values[6]);
    if ((size_t) Z_LVAL_P(native_len) == ZSTR_LEN(raw)) {
        ZVAL_STR_COPY(&values[7], raw);
    } else {
        ZVAL_STRINGL(&values[7], ZSTR_VAL(raw), (size_t) Z_LVAL_P(native_len));
    }
    ZVAL_NULL(&values[8]);
    bool ok = true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (ok) {
            ok = init_property(verdict, names[i], &values[i]); /* takes the value */
        } else {
            zval_ptr_dtor(&values[i]);
        }
    }
    if (!ok) {
        zval_ptr_dtor(&object);
        return false;
    }
    ZVAL_COPY_VALUE(out, &object);
    return true;
}

/* Whether this SAPI empties globals at the end of each request (Guard::requestScopedGlobals). */
static bool request_scoped_globals(void)
{
    const char *name = sapi_module.name;
    return name != NULL && strcmp(name, "cli") != 0 && strcmp(name, "phpdbg") != 0 && strcmp(name, "embed") != 0;
}

/* Leaves Guard::check()'s entry for an accepted request of the default store in the global
 * Guard::ACCEPTED: ['store' => null, 'verdict' => $verdict, 'scopes' => $scopes,
 * 'keyScopes' => null, 'headers' => null, 'time' => $_SERVER['REQUEST_TIME_FLOAT'] ?? null]. */
static void remember_accepted(zval *verdict, zval *scopes, HashTable *server)
{
    zval entry, *time = zend_hash_str_find(server, ZEND_STRL("REQUEST_TIME_FLOAT"));

    array_init_size(&entry, 8);
    add_assoc_null(&entry, "store");
    Z_TRY_ADDREF_P(verdict);
    add_assoc_zval(&entry, "verdict", verdict);
    Z_TRY_ADDREF_P(scopes);
    add_assoc_zval(&entry, "scopes", scopes);
    add_assoc_null(&entry, "keyScopes");
    add_assoc_null(&entry, "headers");
    if (time != NULL) {
        ZVAL_DEREF(time);
        Z_TRY_ADDREF_P(time);
        add_assoc_zval(&entry, "time", time);
    } else {
        add_assoc_null(&entry, "time");
    }
    zend_hash_str_update(&EG(symbol_table), ZEND_STRL("keyward.accepted"), &entry);
}

PHP_FUNCTION(keyward_native_guard)
{
    HashTable *scopes, *server;
    zend_long cost;
    zval *verdict_out, *server_zv, *scopes_zv, *accepted_out = NULL;
    kw_header headers[MAX_HEADERS];
    kw_str scope_array[KW_MAX_SCOPES];
    size_t header_count = 0, scope_count = 0;
    kw_verdict verdict;
    kw_status status;

    ZEND_PARSE_PARAMETERS_START(3, 4)
        Z_PARAM_ARRAY(scopes_zv)
        Z_PARAM_LONG(cost)
        Z_PARAM_ZVAL(verdict_out)
        Z_PARAM_OPTIONAL
        Z_PARAM_ZVAL(accepted_out)
    ZEND_PARSE_PARAMETERS_END();

    scopes = Z_ARRVAL_P(scopes_zv);
    if (!guard_bound_and_current() || cost < 0 || (uint64_t) cost > UINT32_MAX
        || !read_scopes(scopes, scope_array, &scope_count)) {
        RETURN_LONG(KEYWARD_NATIVE_UNSUPPORTED);
    }
    /* $_SERVER as the script sees it (built on first use under auto_globals_jit; a script may
     * have replaced the array, so the symbol table's entry, not the SAPI's original). */
    zend_is_auto_global_str(ZEND_STRL("_SERVER"));
    server_zv = zend_hash_str_find(&EG(symbol_table), ZEND_STRL("_SERVER"));
    if (server_zv == NULL) {
        RETURN_LONG(KEYWARD_NATIVE_UNSUPPORTED);
    }
    ZVAL_DEREF(server_zv);
    if (Z_TYPE_P(server_zv) != IS_ARRAY) {
        RETURN_LONG(KEYWARD_NATIVE_UNSUPPORTED);
    }
    server = Z_ARRVAL_P(server_zv);
    /* An accepted verdict of this request (the global Guard::ACCEPTED): PHP reuses it. */
    if (zend_hash_str_exists(&EG(symbol_table), ZEND_STRL("keyward.accepted"))
        || !read_server_headers(server, headers, &header_count)) {
        RETURN_LONG(KEYWARD_NATIVE_UNSUPPORTED);
    }
    status = ((verify_headers_ex_fn) guard.verify)((kw_store) guard.handle, header_count ? headers : NULL, header_count,
                                                   scope_count ? scope_array : NULL, scope_count, (uint32_t) cost, 0,
                                                   KW_VERIFY_RATE_FIELDS, &verdict, NULL, 0, NULL);
    if (status == KW_OK) {
        zend_string *raw = zend_string_init((const char *) &verdict, sizeof verdict, 0);
        zval object;
        if (accepted_out != NULL && verdict.reason == KW_REASON_VALID && verdict.http_status == 200
            && verdict.key_found && verdict.rate_scope == 0 && accepted_verdict(&object, raw)) {
            if (request_scoped_globals()) {
                remember_accepted(&object, scopes_zv, server);
            }
            ZEND_TRY_ASSIGN_REF_VALUE(accepted_out, &object);
        }
        ZEND_TRY_ASSIGN_REF_STR(verdict_out, raw);
    }
    RETURN_LONG((zend_long) status);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_guard_bind, 0, 4, _IS_BOOL, 0)
    ZEND_ARG_TYPE_INFO(0, verify, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, handle, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, entryName, IS_STRING, 0)
    ZEND_ARG_TYPE_INFO(0, entry, IS_STRING, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_guard_bound, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_guard, 0, 3, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, scopes, IS_ARRAY, 0)
    ZEND_ARG_TYPE_INFO(0, cost, IS_LONG, 0)
    ZEND_ARG_INFO(1, verdict)
    ZEND_ARG_INFO_WITH_DEFAULT_VALUE(1, accepted, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_verify, 0, 6, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, verify, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, handle, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, headers, IS_ARRAY, 0)
    ZEND_ARG_TYPE_INFO(0, scopes, IS_ARRAY, 0)
    ZEND_ARG_TYPE_INFO(0, cost, IS_LONG, 0)
    ZEND_ARG_INFO(1, verdict)
ZEND_END_ARG_INFO()

static const zend_function_entry keyward_native_functions[] = {
    PHP_FE(keyward_native_verify, arginfo_keyward_native_verify)
    PHP_FE(keyward_native_guard_bind, arginfo_keyward_native_guard_bind)
    PHP_FE(keyward_native_guard_bound, arginfo_keyward_native_guard_bound)
    PHP_FE(keyward_native_guard, arginfo_keyward_native_guard)
    PHP_FE_END
};

PHP_MINIT_FUNCTION(keyward_native)
{
    REGISTER_LONG_CONSTANT("KEYWARD_NATIVE_ABI_VERSION", KW_ABI_VERSION, CONST_CS | CONST_PERSISTENT);
    REGISTER_LONG_CONSTANT("KEYWARD_NATIVE_UNSUPPORTED", KEYWARD_NATIVE_UNSUPPORTED, CONST_CS | CONST_PERSISTENT);
    /* keyward_native_guard() and keyward_native_guard_bind() exist (Keyward\Guard tests it);
     * 2: keyward_native_guard() takes $accepted. */
    REGISTER_LONG_CONSTANT("KEYWARD_NATIVE_GUARD", 2, CONST_CS | CONST_PERSISTENT);
    init_names();
    return SUCCESS;
}

PHP_MINFO_FUNCTION(keyward_native)
{
    php_info_print_table_start();
    php_info_print_table_row(2, "keyward_native", KEYWARD_NATIVE_VERSION);
    php_info_print_table_row(2, "libkeyward C ABI version", ZEND_TOSTR(KW_ABI_VERSION));
    php_info_print_table_end();
}

zend_module_entry keyward_native_module_entry = {
    STANDARD_MODULE_HEADER,
    "keyward_native",
    keyward_native_functions,
    PHP_MINIT(keyward_native),
    NULL,
    NULL,
    NULL,
    PHP_MINFO(keyward_native),
    KEYWARD_NATIVE_VERSION,
    STANDARD_MODULE_PROPERTIES
};

#ifdef COMPILE_DL_KEYWARD_NATIVE
ZEND_GET_MODULE(keyward_native)
#endif
