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
 * USAGE_EXCEEDED (403). When the credential could not even be read from the request headers
 * (Store::verifyHeaders() and friends) the code is the status name, HTTP 401:
 * CREDENTIAL_MISSING, UNSUPPORTED_SCHEME, BAD_BASE64, HALF_PAIR, AMBIGUOUS_CREDENTIAL,
 * TOO_LONG, INVALID_UTF8; $reason is then null.
 *
 * The key fields ($keyId, $owner, ...) are set whenever the key was recognised (right id and
 * secret), even when it is refused (revoked, expired, scope, credits); null otherwise.
 */
final class Verdict implements \JsonSerializable
{
    /** @var array<int, array{0: string, 1: string}> code and message by kw_reason, per request */
    private static array $texts = [];

    /**
     * @param bool $valid whether the request may go on (HTTP 200)
     * @param int $httpStatus 200, 401 or 403
     * @param string $code stable code (see the class comment)
     * @param string $message English message for the client
     * @param ?int $reason the kw_reason value (Abi::KW_REASON_*), null for a header problem
     * @param ?int $credentialStatus the kw_status of a header problem (Abi::KW_CREDENTIAL_MISSING...), else null
     * @param ?string $keyId public id of the recognised key
     * @param ?string $owner its owner
     * @param ?string $env its env tag (null when none)
     * @param ?int $createdAt its creation time (ms)
     * @param ?int $expiresAt its expiry (ms), null when never
     * @param bool $limited whether it has usage credits
     * @param bool $revoked whether it was revoked
     * @param bool $rotated whether it was replaced by rotation
     * @param ?KeyRecord $record its full record, when asked for (withRecord: true)
     */
    public function __construct(
        public readonly bool $valid,
        public readonly int $httpStatus,
        public readonly string $code,
        public readonly string $message,
        public readonly ?int $reason,
        public readonly ?int $credentialStatus = null,
        public readonly ?string $keyId = null,
        public readonly ?string $owner = null,
        public readonly ?string $env = null,
        public readonly ?int $createdAt = null,
        public readonly ?int $expiresAt = null,
        public readonly bool $limited = false,
        public readonly bool $revoked = false,
        public readonly bool $rotated = false,
        public readonly ?KeyRecord $record = null,
    ) {
    }

    /**
     * A verdict from a filled kw_verdict.
     *
     * @internal
     */
    public static function fromNative(FFI $ffi, CData $v, ?KeyRecord $record = null): self
    {
        $reason = $v->reason;
        [$code, $message] = self::$texts[$reason] ??= [Native::reasonCode($ffi, $reason), Native::reasonMessage($ffi, $reason)];
        if ($v->key_found === 0) {
            return new self($reason === 0, $v->http_status, $code, $message, $reason);
        }
        $flags = $v->key_flags;
        $env = FFI::string($v->env);
        $expires = $v->expires_at_ms;
        return new self(
            $reason === 0,
            $v->http_status,
            $code,
            $message,
            $reason,
            null,
            FFI::string($v->key_id),
            FFI::string($v->owner),
            $env === '' ? null : $env,
            $v->created_at_ms,
            $expires === 0 ? null : $expires,
            ($flags & Abi::KW_KEY_LIMITED) !== 0,
            ($flags & Abi::KW_KEY_REVOKED_FLAG) !== 0,
            ($flags & Abi::KW_KEY_ROTATED) !== 0,
            $record,
        );
    }

    /**
     * The MALFORMED verdict (HTTP 401) for key text that is not even UTF-8.
     *
     * @internal
     */
    public static function malformed(FFI $ffi): self
    {
        $reason = Abi::KW_REASON_MALFORMED;
        return new self(false, $ffi->kw_reason_http_status($reason), Native::reasonCode($ffi, $reason),
            Native::reasonMessage($ffi, $reason), $reason);
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
