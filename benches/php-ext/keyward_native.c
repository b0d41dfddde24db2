/*
 * keyward_native: an experiment (benches/php-ext/README.md), not a shipped extension.
 *
 * The request hot path of the PHP binding (Keyward\Guard / Store::verifyCredentials) as a
 * native PHP extension calling libkeyward through include/keyward.h, the same C ABI every
 * binding uses. It does only what a request needs: find the credential headers, call
 * kw_verify_headers_ex on the worker's persistent store handle (opened by the PHP binding,
 * Store::persistent()), and hand back the kw_verdict bytes, which Keyward\Verdict already
 * decodes lazily. Nothing is copied: the kw_header array points into the PHP strings for the
 * duration of the call, so no C buffer holds a secret afterwards.
 *
 *   keyward_native_verify_server(int $handle, array $server, array $scopes = [], int $cost = 0,
 *                                ?string &$verdict = null): int
 *       the credential headers of a $_SERVER-shaped array (as Keyward\Credentials::fromServer
 *       reads them), verified; returns the kw_status, and on KW_OK sets $verdict to the
 *       kw_verdict's bytes.
 *   keyward_native_verify_headers(int $handle, array $pairs, array $scopes = [], int $cost = 0,
 *                                 ?string &$verdict = null): int
 *       the same for a list of [name, value] pairs (Keyward\Credentials' output).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php.h"
#include "ext/standard/base64.h"
#include "ext/standard/info.h"
#include "zend_exceptions.h"

#include "keyward.h"

#define KEYWARD_NATIVE_VERSION "0.1.0"

/* The credential headers as PHP-FPM / mod_php name them in $_SERVER, and their HTTP names. */
static const struct {
    const char *server_key;
    size_t server_key_len;
    const char *name;
    size_t name_len;
} SERVER_HEADERS[] = {
    {"HTTP_X_API_KEY", sizeof("HTTP_X_API_KEY") - 1, "x-api-key", sizeof("x-api-key") - 1},
    {"HTTP_AUTHORIZATION", sizeof("HTTP_AUTHORIZATION") - 1, "authorization", sizeof("authorization") - 1},
    {"HTTP_X_API_TOKEN_ID", sizeof("HTTP_X_API_TOKEN_ID") - 1, "x-api-token-id", sizeof("x-api-token-id") - 1},
    {"HTTP_X_API_TOKEN_SECRET_KEY", sizeof("HTTP_X_API_TOKEN_SECRET_KEY") - 1, "x-api-token-secret-key",
     sizeof("x-api-token-secret-key") - 1},
};
#define N_SERVER_HEADERS (sizeof(SERVER_HEADERS) / sizeof(SERVER_HEADERS[0]))
/* The most headers a request can pass: the four above, or three and a Basic fallback. */
#define MAX_REQUEST_HEADERS 8

/* A string value of $server[key], or NULL. */
static zend_string *server_string(HashTable *server, const char *key, size_t len)
{
    zval *v = zend_hash_str_find(server, key, len);
    if (v == NULL) {
        return NULL;
    }
    ZVAL_DEREF(v);
    return Z_TYPE_P(v) == IS_STRING ? Z_STR_P(v) : NULL;
}

/* scopes (a list of strings) into out[]; false (with an exception thrown) on bad input. */
static bool read_scopes(HashTable *scopes, kw_str *out, size_t *count, uint32_t arg)
{
    zval *item;
    size_t n = 0;
    if (zend_hash_num_elements(scopes) > KW_MAX_SCOPES) {
        zend_argument_value_error(arg, "must hold at most %d scopes", KW_MAX_SCOPES);
        return false;
    }
    ZEND_HASH_FOREACH_VAL(scopes, item) {
        ZVAL_DEREF(item);
        if (Z_TYPE_P(item) != IS_STRING) {
            zend_argument_type_error(arg, "must be a list of strings");
            return false;
        }
        out[n].ptr = Z_STRVAL_P(item);
        out[n].len = Z_STRLEN_P(item);
        n++;
    } ZEND_HASH_FOREACH_END();
    *count = n;
    return true;
}

/* The call both functions end in; sets $verdict on KW_OK. */
static zend_long verify(zend_long handle, const kw_header *headers, size_t n, HashTable *scopes, zend_long cost,
                        zval *verdict_out, uint32_t scopes_arg)
{
    kw_str scope_array[KW_MAX_SCOPES];
    size_t scope_count = 0;
    kw_verdict verdict;
    kw_status status;

    if (scopes != NULL && !read_scopes(scopes, scope_array, &scope_count, scopes_arg)) {
        return -1;
    }
    if (cost < 0 || (uint64_t) cost > UINT32_MAX) {
        zend_argument_value_error(4, "must be between 0 and %u", UINT32_MAX);
        return -1;
    }
    status = kw_verify_headers_ex((kw_store) handle, n ? headers : NULL, n, scope_count ? scope_array : NULL,
                                  scope_count, (uint32_t) cost, 0, KW_VERIFY_RATE_FIELDS, &verdict, NULL, 0, NULL);
    if (status == KW_OK && verdict_out != NULL) {
        ZEND_TRY_ASSIGN_REF_STRINGL(verdict_out, (const char *) &verdict, sizeof verdict);
    }
    return (zend_long) status;
}

PHP_FUNCTION(keyward_native_verify_server)
{
    zend_long handle, cost = 0;
    HashTable *server, *scopes = NULL;
    zval *verdict_out = NULL;
    kw_header headers[MAX_REQUEST_HEADERS];
    size_t n = 0;
    zend_string *basic = NULL;
    zend_long status;

    ZEND_PARSE_PARAMETERS_START(2, 5)
        Z_PARAM_LONG(handle)
        Z_PARAM_ARRAY_HT(server)
        Z_PARAM_OPTIONAL
        Z_PARAM_ARRAY_HT(scopes)
        Z_PARAM_LONG(cost)
        Z_PARAM_ZVAL(verdict_out)
    ZEND_PARSE_PARAMETERS_END();

    for (size_t i = 0; i < N_SERVER_HEADERS; i++) {
        zend_string *v = server_string(server, SERVER_HEADERS[i].server_key, SERVER_HEADERS[i].server_key_len);
        if (v != NULL) {
            headers[n].name = SERVER_HEADERS[i].name;
            headers[n].name_len = SERVER_HEADERS[i].name_len;
            headers[n].value = ZSTR_VAL(v);
            headers[n].value_len = ZSTR_LEN(v);
            n++;
        }
    }
    /* Keyward\Credentials::fromServer's fallbacks when no HTTP_AUTHORIZATION is set. */
    if (zend_hash_str_find(server, "HTTP_AUTHORIZATION", sizeof("HTTP_AUTHORIZATION") - 1) == NULL) {
        zend_string *redirect = server_string(server, "REDIRECT_HTTP_AUTHORIZATION",
                                              sizeof("REDIRECT_HTTP_AUTHORIZATION") - 1);
        zend_string *user = server_string(server, "PHP_AUTH_USER", sizeof("PHP_AUTH_USER") - 1);
        if (redirect != NULL) {
            headers[n].name = "authorization";
            headers[n].name_len = sizeof("authorization") - 1;
            headers[n].value = ZSTR_VAL(redirect);
            headers[n].value_len = ZSTR_LEN(redirect);
            n++;
        } else if (user != NULL) {
            zend_string *pw = server_string(server, "PHP_AUTH_PW", sizeof("PHP_AUTH_PW") - 1);
            zend_string *pair = zend_string_concat3(ZSTR_VAL(user), ZSTR_LEN(user), ":", 1,
                                                    pw ? ZSTR_VAL(pw) : "", pw ? ZSTR_LEN(pw) : 0);
            zend_string *b64 = php_base64_encode((const unsigned char *) ZSTR_VAL(pair), ZSTR_LEN(pair));
            ZEND_SECURE_ZERO(ZSTR_VAL(pair), ZSTR_LEN(pair));
            zend_string_efree(pair);
            basic = zend_string_concat2("Basic ", 6, ZSTR_VAL(b64), ZSTR_LEN(b64));
            ZEND_SECURE_ZERO(ZSTR_VAL(b64), ZSTR_LEN(b64));
            zend_string_efree(b64);
            headers[n].name = "authorization";
            headers[n].name_len = sizeof("authorization") - 1;
            headers[n].value = ZSTR_VAL(basic);
            headers[n].value_len = ZSTR_LEN(basic);
            n++;
        }
    }
    status = verify(handle, headers, n, scopes, cost, verdict_out, 3);
    if (basic != NULL) {
        ZEND_SECURE_ZERO(ZSTR_VAL(basic), ZSTR_LEN(basic));
        zend_string_efree(basic);
    }
    if (status < 0) {
        RETURN_THROWS();
    }
    RETURN_LONG(status);
}

PHP_FUNCTION(keyward_native_verify_headers)
{
    zend_long handle, cost = 0;
    HashTable *pairs, *scopes = NULL;
    zval *verdict_out = NULL, *pair;
    kw_header headers[MAX_REQUEST_HEADERS];
    size_t n = 0;
    zend_long status;

    ZEND_PARSE_PARAMETERS_START(2, 5)
        Z_PARAM_LONG(handle)
        Z_PARAM_ARRAY_HT(pairs)
        Z_PARAM_OPTIONAL
        Z_PARAM_ARRAY_HT(scopes)
        Z_PARAM_LONG(cost)
        Z_PARAM_ZVAL(verdict_out)
    ZEND_PARSE_PARAMETERS_END();

    if (zend_hash_num_elements(pairs) > MAX_REQUEST_HEADERS) {
        zend_argument_value_error(2, "must hold at most %d header pairs", MAX_REQUEST_HEADERS);
        RETURN_THROWS();
    }
    ZEND_HASH_FOREACH_VAL(pairs, pair) {
        zval *name, *value;
        ZVAL_DEREF(pair);
        if (Z_TYPE_P(pair) != IS_ARRAY || (name = zend_hash_index_find(Z_ARRVAL_P(pair), 0)) == NULL
            || (value = zend_hash_index_find(Z_ARRVAL_P(pair), 1)) == NULL || Z_TYPE_P(name) != IS_STRING
            || Z_TYPE_P(value) != IS_STRING) {
            zend_argument_type_error(2, "must be a list of [string name, string value] pairs");
            RETURN_THROWS();
        }
        headers[n].name = Z_STRVAL_P(name);
        headers[n].name_len = Z_STRLEN_P(name);
        headers[n].value = Z_STRVAL_P(value);
        headers[n].value_len = Z_STRLEN_P(value);
        n++;
    } ZEND_HASH_FOREACH_END();
    status = verify(handle, headers, n, scopes, cost, verdict_out, 3);
    if (status < 0) {
        RETURN_THROWS();
    }
    RETURN_LONG(status);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_verify_server, 0, 2, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, handle, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, server, IS_ARRAY, 0)
    ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, scopes, IS_ARRAY, 0, "[]")
    ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, cost, IS_LONG, 0, "0")
    ZEND_ARG_INFO_WITH_DEFAULT_VALUE(1, verdict, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_keyward_native_verify_headers, 0, 2, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, handle, IS_LONG, 0)
    ZEND_ARG_TYPE_INFO(0, pairs, IS_ARRAY, 0)
    ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, scopes, IS_ARRAY, 0, "[]")
    ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, cost, IS_LONG, 0, "0")
    ZEND_ARG_INFO_WITH_DEFAULT_VALUE(1, verdict, "null")
ZEND_END_ARG_INFO()

static const zend_function_entry keyward_native_functions[] = {
    PHP_FE(keyward_native_verify_server, arginfo_keyward_native_verify_server)
    PHP_FE(keyward_native_verify_headers, arginfo_keyward_native_verify_headers)
    PHP_FE_END
};

PHP_MINFO_FUNCTION(keyward_native)
{
    php_info_print_table_start();
    php_info_print_table_row(2, "keyward_native (experiment)", KEYWARD_NATIVE_VERSION);
    php_info_print_table_end();
}

/* Refuses to load against a libkeyward of another C ABI version. */
PHP_MINIT_FUNCTION(keyward_native)
{
    if (kw_abi_version() != KW_ABI_VERSION) {
        php_error_docref(NULL, E_CORE_WARNING, "keyward_native: libkeyward has C ABI version %u, built for %d",
                         kw_abi_version(), KW_ABI_VERSION);
        return FAILURE;
    }
    return SUCCESS;
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
