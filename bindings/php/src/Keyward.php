<?php

declare(strict_types=1);

namespace Keyward;

use FFI;
use Keyward\Exception\KeywardException;

/**
 * Store-less functions of the C ABI: versions, offline key parsing, credential extraction,
 * and the names and messages of statuses and reasons.
 */
final class Keyward
{
    /**
     * The version of the loaded libkeyward, e.g. "0.1.0".
     *
     * @throws KeywardException when the library cannot be loaded
     */
    public static function version(): string
    {
        return Library::ffi()->kw_version();
    }

    /** The ABI version of the loaded library (equal to Abi::KW_ABI_VERSION, or loading fails). */
    public static function abiVersion(): int
    {
        return Library::ffi()->kw_abi_version();
    }

    /**
     * Parses and checks a key offline (structure, charset, CRC32 checksum), without a store:
     * garbage and typos are recognised before any lookup, as a secret scanner would.
     *
     * @param ?string $prefix the expected prefix, or null to accept any valid prefix
     * @throws KeywardException (ArgumentException for a non-UTF-8 prefix)
     */
    public static function parseKey(#[\SensitiveParameter] string $key, ?string $prefix = null): ParsedKey
    {
        $ffi = Library::ffi();
        $p = $ffi->new('kw_parsed_key');
        $status = $ffi->kw_parse_key($key, strlen($key), $prefix, $prefix === null ? 0 : strlen($prefix), FFI::addr($p));
        if ($status !== Abi::KW_OK) {
            Native::fail($ffi, $status, 'kw_parse_key');
        }
        $error = $p->error;
        if ($p->valid === 0) {
            return new ParsedKey(false, $ffi->kw_key_error_name($error), $error, null, null, null, null);
        }
        $env = FFI::string($p->env);
        $parsed = new ParsedKey(true, 'ok', 0, FFI::string($p->prefix), $env === '' ? null : $env,
            FFI::string($p->id), FFI::string($p->secret));
        FFI::memset(FFI::addr($p), 0, FFI::sizeof($p)); // wipe the C copy of the secret
        return $parsed;
    }

    /**
     * Finds the credential in request headers without verifying it.
     *
     * @param array<mixed> $headers list of [name, value] pairs, or name => value (or list of
     *     values); see Credentials::fromServer() / fromRequest()
     * @throws KeywardException CredentialException when there is none or it cannot be read
     *     (CREDENTIAL_MISSING, UNSUPPORTED_SCHEME, BAD_BASE64, HALF_PAIR, AMBIGUOUS_CREDENTIAL,
     *     MALFORMED_KEY for an oversize credential header): the client's problems, HTTP 401
     */
    public static function extractCredential(#[\SensitiveParameter] array $headers): Credential
    {
        $ffi = Library::ffi();
        $keep = [];
        [$ptr, $count] = Native::headers($ffi, Native::headerPairs($headers), $keep);
        $kind = $ffi->new('uint32_t');
        $secretLen = $ffi->new('size_t');
        $idLen = $ffi->new('size_t');
        $secretCap = Abi::KW_MAX_HEADER_VALUE_LEN;
        $secret = $ffi->new("uint8_t[$secretCap]");
        $id = $ffi->new('uint8_t[' . Abi::KW_MAX_HEADER_VALUE_LEN . ']');
        $idCap = Abi::KW_MAX_HEADER_VALUE_LEN;
        $status = $ffi->kw_extract_credential($ptr, $count, FFI::addr($kind), $secret, $secretCap, FFI::addr($secretLen),
            $id, $idCap, FFI::addr($idLen));
        if ($status === Abi::KW_BUFFER_TOO_SMALL) {
            // A value that is not UTF-8 is read with U+FFFD (3 bytes) for each bad byte, so it
            // can come back longer than any header value: once more with the sizes asked for.
            $secretCap = max($secretCap, $secretLen->cdata);
            $idCap = max($idCap, $idLen->cdata);
            $secret = $ffi->new("uint8_t[$secretCap]");
            $id = $ffi->new("uint8_t[$idCap]");
            $status = $ffi->kw_extract_credential($ptr, $count, FFI::addr($kind), $secret, $secretCap, FFI::addr($secretLen),
                $id, $idCap, FFI::addr($idLen));
        }
        if ($keep !== []) {
            FFI::memset($keep[0], 0, FFI::sizeof($keep[0]));
        }
        if ($status !== Abi::KW_OK) {
            Native::fail($ffi, $status, 'kw_extract_credential');
        }
        $credential = $kind->cdata === Abi::KW_CREDENTIAL_PAIR
            ? new Credential(Credential::PAIR, FFI::string($secret, $secretLen->cdata), FFI::string($id, $idLen->cdata))
            : new Credential(Credential::KEY, FFI::string($secret, $secretLen->cdata), null);
        FFI::memset($secret, 0, $secretCap);
        return $credential;
    }

    /** The stable name of a kw_status without the KW_ prefix, e.g. "NOT_FOUND" ("UNKNOWN" if unknown). */
    public static function statusName(int $status): string
    {
        return Library::ffi()->kw_status_name(Native::u32($status, 'status'));
    }

    /** The English message of a kw_status ("unknown status" if unknown). */
    public static function statusMessage(int $status): string
    {
        return Library::ffi()->kw_status_message(Native::u32($status, 'status'));
    }

    /** The stable code of a kw_reason, e.g. "INSUFFICIENT_SCOPE" ("UNKNOWN" if unknown). */
    public static function reasonCode(int $reason): string
    {
        return Library::ffi()->kw_reason_code(Native::u32($reason, 'reason'));
    }

    /** The English message of a kw_reason ("unknown reason" if unknown). */
    public static function reasonMessage(int $reason): string
    {
        return Library::ffi()->kw_reason_message(Native::u32($reason, 'reason'));
    }

    /** The HTTP status of a kw_reason: 200, 401 or 403 (0 if unknown). */
    public static function reasonHttpStatus(int $reason): int
    {
        return Library::ffi()->kw_reason_http_status(Native::u32($reason, 'reason'));
    }

    /** The name of a kw_key_error as in the test vectors ("bad_checksum", ...; "ok" for 0, "unknown" otherwise). */
    public static function keyErrorName(int $error): string
    {
        return Library::ffi()->kw_key_error_name(Native::u32($error, 'error'));
    }
}
