<?php

declare(strict_types=1);

namespace Keyward;

use FFI;
use FFI\CData;

/**
 * The answer of a verify: whether the key may be used for this request and, if not, the HTTP
 * status to answer (401 or 403) with a stable code and an English message.
 *
 * Codes: VALID (200); MALFORMED, NOT_FOUND, REVOKED, EXPIRED (401); INSUFFICIENT_SCOPE,
 * USAGE_EXCEEDED, OWNER_SUSPENDED (403). When the credential could not even be read from the request headers
 * (Store::verifyHeaders() and friends) the code is the status name, HTTP 401:
 * CREDENTIAL_MISSING, UNSUPPORTED_SCHEME, BAD_BASE64, HALF_PAIR, AMBIGUOUS_CREDENTIAL,
 * MALFORMED_KEY (a credential header value over KW_MAX_HEADER_VALUE_LEN); $reason is then null.
 *
 * The key's details (keyId(), owner(), env(), createdAt(), expiresAt(), limited(), revoked(),
 * rotated()) are known whenever the key was recognised (right id and secret), even when it is
 * refused (revoked, expired, scope, credits); null (false) otherwise. They are methods, read
 * from one copy of the C verdict when asked: the hot path builds a small object.
 */
final class Verdict implements \JsonSerializable
{
    /**
     * Code and message of each kw_reason, as kw_reason_code() / kw_reason_message() return them
     * (LibraryTest checks that they agree with the loaded library): a constant, so a request
     * pays no FFI call for them. An unknown reason is asked of the library.
     */
    public const REASONS = [
        0 => ['VALID', 'the API key is valid'],
        1 => ['MALFORMED', 'the API key is malformed'],
        2 => ['NOT_FOUND', 'the API key is not recognised'],
        3 => ['REVOKED', 'the API key has been revoked'],
        4 => ['EXPIRED', 'the API key has expired'],
        5 => ['INSUFFICIENT_SCOPE', 'the API key lacks a scope this route requires'],
        6 => ['USAGE_EXCEEDED', 'the API key has used up its credits'],
        7 => ['OWNER_SUSPENDED', 'the account that owns the API key is suspended'],
        8 => ['RATE_LIMITED', 'too many requests with this API key; retry later'],
    ];

    /** Bytes of the C kw_verdict this binding copies (with the rate fields). */
    private const NATIVE_LEN = 272;

    /**
     * The first fields of a valid verdict's kw_verdict bytes (little-endian u32 reason 0,
     * http_status 200, key_found 1): fromBytes() recognises the hot path's verdict by
     * comparing bytes, which PHP does far faster than unpack().
     */
    private const VALID_HEAD = "\0\0\0\0\xc8\0\0\0\1\0\0\0";

    /** Offset of kw_verdict.rate_scope, a u32 (0: no rate limit applies to the key). */
    private const RATE_SCOPE_AT = 216;

    /**
     * @param bool $valid whether the request may go on (HTTP 200)
     * @param int $httpStatus 200, 401 or 403
     * @param string $code stable code (see the class comment)
     * @param string $message English message for the client
     * @param ?int $reason the kw_reason value (Abi::KW_REASON_*), null for a header problem
     * @param ?int $credentialStatus the kw_status of a header problem (Abi::KW_CREDENTIAL_MISSING...), else null
     * @param ?KeyRecord $record the key's full record, when asked for (withRecord: true)
     * @param ?string $native the bytes (NATIVE_LEN) of the C kw_verdict of a recognised key (internal)
     */
    public function __construct(
        public readonly bool $valid,
        public readonly int $httpStatus,
        public readonly string $code,
        public readonly string $message,
        public readonly ?int $reason,
        public readonly ?int $credentialStatus = null,
        public readonly ?KeyRecord $record = null,
        private ?string $native = null, // set once, here or by fromVerify() on a fresh clone
        /** @var ?array<string, string> the rate-limit response fields, for a rate-limited key */
        private ?array $rateHeaders = null,
    ) {
    }

    /** @var array<int, self> verdicts without key details or record, by known reason (fromVerify) */
    private static array $byReason = [];

    /**
     * The hot path's verdict from a filled kw_verdict (no record). An accepted key without a
     * rate limit gets one object built directly (by fromBytes()). Other verdicts are a
     * clone of the verdict of their reason, carrying the NATIVE_LEN-byte copy of a recognised
     * key, or that verdict itself when the key was not recognised (verdicts are immutable).
     *
     * @internal
     */
    public static function fromVerify(FFI $ffi, CData $v, CData $ptr): self
    {
        $reason = $v->reason;
        if ($reason === 0 && $v->rate_scope === 0) {
            // fromBytes() builds it (its first case): one place says what such a verdict holds.
            return self::fromBytes(FFI::string($ptr, self::NATIVE_LEN)) ?? self::fromNative($ffi, $v, null, $ptr);
        }
        $base = self::$byReason[$reason] ?? null;
        if ($base === null) {
            if (!isset(self::REASONS[$reason])) {
                return self::fromNative($ffi, $v, null, $ptr); // a reason newer than this binding
            }
            $base = self::$byReason[$reason] = new self($reason === 0, $v->http_status, self::REASONS[$reason][0],
                self::REASONS[$reason][1], $reason);
        }
        if ($v->key_found === 0) {
            return $base;
        }
        $verdict = clone $base;
        $verdict->native = FFI::string($ptr, self::NATIVE_LEN);
        if ($v->rate_scope !== 0) {
            $verdict->rateHeaders = self::readRateHeaders($ffi, $ptr);
        }
        return $verdict;
    }

    /**
     * fromVerify() for the kw_verdict's bytes, as the keyward_native extension returns them,
     * without the library: null when the verdict needs it (a rate-limited key's response
     * fields, a reason newer than this binding); then fromBytesWithLibrary().
     *
     * @internal
     */
    public static function fromBytes(string $raw): ?self
    {
        // An accepted key without a rate limit, the common case: one object, built directly.
        // (A PHP-FPM worker starts every request with empty statics, so the cached verdict of
        // each reason that decodeBytes() clones would be built for each request anyway.)
        if (str_starts_with($raw, self::VALID_HEAD) && substr_compare($raw, "\0\0\0\0", self::RATE_SCOPE_AT, 4) === 0) {
            return new self(true, 200, self::REASONS[0][0], self::REASONS[0][1], 0, null, null, substr($raw, 0, self::NATIVE_LEN));
        }
        return self::decodeBytes($raw, null);
    }

    /**
     * fromBytes() for any verdict, asking the library what the bytes do not say.
     *
     * @internal
     */
    public static function fromBytesWithLibrary(FFI $ffi, string $raw): self
    {
        return self::decodeBytes($raw, $ffi); // never null with the library
    }

    private static function decodeBytes(string $raw, ?FFI $ffi): ?self
    {
        [, $reason, $httpStatus, $keyFound] = unpack('V3', $raw);
        $base = self::$byReason[$reason] ?? null;
        if ($base === null) {
            if (isset(self::REASONS[$reason])) {
                $base = self::$byReason[$reason] = new self($reason === 0, $httpStatus, self::REASONS[$reason][0],
                    self::REASONS[$reason][1], $reason);
            } elseif ($ffi === null) {
                return null;
            } else {
                $base = new self(false, $httpStatus, Native::reasonCode($ffi, $reason), Native::reasonMessage($ffi, $reason), $reason);
            }
        }
        if ($keyFound === 0) {
            return $base;
        }
        $rateLimited = unpack('V', $raw, self::RATE_SCOPE_AT)[1] !== 0;
        if ($rateLimited && $ffi === null) {
            return null;
        }
        $verdict = clone $base;
        $verdict->native = substr($raw, 0, self::NATIVE_LEN);
        if ($rateLimited) {
            $v = $ffi->new('kw_verdict');
            FFI::memcpy($v, $raw, min(strlen($raw), FFI::sizeof($v)));
            $verdict->rateHeaders = self::readRateHeaders($ffi, FFI::addr($v));
        }
        return $verdict;
    }

    /**
     * A verdict from a filled kw_verdict.
     *
     * @internal
     */
    public static function fromNative(FFI $ffi, CData $v, ?KeyRecord $record = null, ?CData $ptr = null): self
    {
        $reason = $v->reason;
        [$code, $message] = self::REASONS[$reason] ?? [Native::reasonCode($ffi, $reason), Native::reasonMessage($ffi, $reason)];
        $ptr ??= FFI::addr($v);
        return new self($reason === 0, $v->http_status, $code, $message, $reason, null, $record,
            $v->key_found === 0 ? null : FFI::string($ptr, self::NATIVE_LEN),
            $v->rate_scope === 0 ? null : self::readRateHeaders($ffi, $ptr));
    }

    /**
     * The rate-limit response fields of a filled kw_verdict, as the library formats them.
     *
     * @return array<string, string>
     */
    private static function readRateHeaders(FFI $ffi, CData $ptr): array
    {
        $buf = $ffi->new('uint8_t[' . Abi::KW_RATE_HEADERS_MAX_LEN . ']');
        $len = $ffi->new('size_t');
        if ($ffi->kw_rate_headers($ptr, $buf, Abi::KW_RATE_HEADERS_MAX_LEN, FFI::addr($len)) !== Abi::KW_OK) {
            return [];
        }
        $headers = [];
        foreach (explode("\r\n", FFI::string($buf, $len->cdata)) as $line) {
            $at = strpos($line, ': ');
            if ($at !== false) {
                $headers[substr($line, 0, $at)] = substr($line, $at + 2);
            }
        }
        return $headers;
    }

    /**
     * The response header fields for this verdict: RateLimit-Policy and RateLimit
     * (draft-ietf-httpapi-ratelimit-headers) for a rate-limited key, plus Retry-After (seconds)
     * for RATE_LIMITED; [] for other keys.
     *
     * @return array<string, string>
     */
    public function rateHeaders(): array
    {
        return $this->rateHeaders ?? [];
    }

    /** For RATE_LIMITED: milliseconds until the next request would be accepted, else null. */
    public function retryAfterMs(): ?int
    {
        return $this->reason === Abi::KW_REASON_RATE_LIMITED && $this->native !== null
            ? unpack('P', $this->native, 224)[1] : null;
    }

    /**
     * A rate-limited key's state (the tighter of its own and its owner's limit), null for a key
     * without a rate limit: scope ("key" or "owner"), limit, periodMs, burst, remaining,
     * resetMs, retryAfterMs.
     *
     * @return ?array{scope: string, limit: int, periodMs: int, burst: int, remaining: int, resetMs: int, retryAfterMs: ?int}
     */
    public function rate(): ?array
    {
        if ($this->native === null || strlen($this->native) < self::NATIVE_LEN) {
            return null;
        }
        $scope = unpack('V', $this->native, 216)[1];
        if ($scope === 0) {
            return null;
        }
        $u = fn (int $at): int => unpack('P', $this->native, $at)[1];
        return ['scope' => $scope === Abi::KW_RATE_OWNER ? 'owner' : 'key', 'limit' => $u(232), 'periodMs' => $u(240),
            'burst' => $u(248), 'remaining' => $u(256), 'resetMs' => $u(264), 'retryAfterMs' => $this->retryAfterMs()];
    }

    /** Public id of the recognised key (safe to log), null when the key was not recognised. */
    public function keyId(): ?string
    {
        return $this->native === null ? null : strstr(substr($this->native, 32, 24), "\0", true);
    }

    /** Owner of the recognised key. */
    public function owner(): ?string
    {
        return $this->native === null ? null : strstr(substr($this->native, 80, 136), "\0", true);
    }

    /** Env tag of the recognised key (e.g. "live"), null when it has none. */
    public function env(): ?string
    {
        $env = $this->native === null ? '' : strstr(substr($this->native, 56, 24), "\0", true);
        return $env === '' ? null : $env;
    }

    /** Creation time of the recognised key (ms since the epoch). */
    public function createdAt(): ?int
    {
        return $this->native === null ? null : unpack('q', $this->native, 16)[1];
    }

    /** Expiry of the recognised key (ms since the epoch), null when it never expires. */
    public function expiresAt(): ?int
    {
        $expires = $this->native === null ? 0 : unpack('q', $this->native, 24)[1];
        return $expires === 0 ? null : $expires;
    }

    /** Whether the recognised key has usage credits. */
    public function limited(): bool
    {
        return ($this->flags() & Abi::KW_KEY_LIMITED) !== 0;
    }

    /** Whether the recognised key was revoked. */
    public function revoked(): bool
    {
        return ($this->flags() & Abi::KW_KEY_REVOKED_FLAG) !== 0;
    }

    /** Whether the recognised key was replaced by rotation. */
    public function rotated(): bool
    {
        return ($this->flags() & Abi::KW_KEY_ROTATED) !== 0;
    }

    private function flags(): int
    {
        return $this->native === null ? 0 : unpack('V', $this->native, 12)[1];
    }

    /** @return array<string, mixed> every field, for var_dump()/print_r() */
    public function __debugInfo(): array
    {
        return ['valid' => $this->valid, 'httpStatus' => $this->httpStatus, 'code' => $this->code, 'message' => $this->message,
            'reason' => $this->reason, 'credentialStatus' => $this->credentialStatus, 'keyId' => $this->keyId(),
            'owner' => $this->owner(), 'env' => $this->env(), 'createdAt' => $this->createdAt(), 'expiresAt' => $this->expiresAt(),
            'limited' => $this->limited(), 'revoked' => $this->revoked(), 'rotated' => $this->rotated(), 'record' => $this->record];
    }

    /**
     * The verdict for a request whose credential headers cannot be read (HTTP 401).
     *
     * @internal
     */
    public static function credentialProblem(FFI $ffi, int $status): self
    {
        return new self(false, 401, $ffi->kw_status_name($status), $ffi->kw_status_message($status), null, $status);
    }

    /**
     * The JSON body to answer a refused request with: {"ok": false, "code": ..., "message": ...}
     * ({"ok": true, ...} for a valid key).
     *
     * @return array{ok: bool, code: string, message: string}
     */
    public function jsonSerialize(): array
    {
        return ['ok' => $this->valid, 'code' => $this->code, 'message' => $this->message];
    }
}
