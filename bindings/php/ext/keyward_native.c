/*
 * keyward_native: the optional PHP extension of the keyward PHP binding (README.md beside it).
 *
 * One function, the request hot path of Keyward\Store::verifyCredentials() (Guard,
 * Middleware, the Laravel guard): the credential headers and scopes go straight from the PHP
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
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>

#include "php.h"
#include "ext/standard/info.h"
#include "zend_exceptions.h"

#include "keyward.h"

#define KEYWARD_NATIVE_VERSION "0.1.0"

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

    if ((uintptr_t) verify_address != checked_verify) {
        if (!is_libkeyward_verify((uintptr_t) verify_address)) {
            zend_argument_value_error(1, "must be the address of kw_verify_headers_ex in a loaded libkeyward "
                                         "of C ABI version %d", KW_ABI_VERSION);
            RETURN_THROWS();
        }
        checked_verify = (uintptr_t) verify_address;
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
    PHP_FE_END
};

PHP_MINIT_FUNCTION(keyward_native)
{
    REGISTER_LONG_CONSTANT("KEYWARD_NATIVE_ABI_VERSION", KW_ABI_VERSION, CONST_CS | CONST_PERSISTENT);
    REGISTER_LONG_CONSTANT("KEYWARD_NATIVE_UNSUPPORTED", KEYWARD_NATIVE_UNSUPPORTED, CONST_CS | CONST_PERSISTENT);
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
