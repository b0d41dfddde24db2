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

    /** unpack() format of a kw_verdict (216 bytes, LP64 little-endian layout, checked by HeaderTest). */
    private const LAYOUT = 'Vreason/Vhttp/Vfound/Vflags/qcreated/qexpires/Z24keyId/Z24env/Z136owner';

    private static ?self $blank = null;

    /** @var ?string the kw_verdict bytes the key fields are decoded from, on first access */
    private ?string $raw = null;

    /** @var ?string public id of the recognised key */
    public readonly ?string $keyId;
    /** @var ?string its owner */
    public readonly ?string $owner;
    /** @var ?string its env tag (null when none) */
    public readonly ?string $env;
    /** @var ?int its creation time (ms) */
    public readonly ?int $createdAt;
    /** @var ?int its expiry (ms), null when never */
    public readonly ?int $expiresAt;
    /** @var bool whether it has usage credits */
    public readonly bool $limited;
    /** @var bool whether it was revoked */
    public readonly bool $revoked;
    /** @var bool whether it was replaced by rotation */
    public readonly bool $rotated;

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
        ?string $keyId = null,
        ?string $owner = null,
        ?string $env = null,
        ?int $createdAt = null,
        ?int $expiresAt = null,
        bool $limited = false,
        bool $revoked = false,
        bool $rotated = false,
        public readonly ?KeyRecord $record = null,
    ) {
        $this->keyId = $keyId;
        $this->owner = $owner;
        $this->env = $env;
        $this->createdAt = $createdAt;
        $this->expiresAt = $expiresAt;
        $this->limited = $limited;
        $this->revoked = $revoked;
        $this->rotated = $rotated;
    }

    /**
     * A verdict from a filled kw_verdict. The key fields are decoded from a copy of its bytes
     * when first read: the hot path (valid? then owner) pays one FFI call for all of them.
     *
     * @internal
     */
    public static function fromNative(FFI $ffi, CData $v, ?KeyRecord $record = null, ?CData $ptr = null): self
    {
        $reason = $v->reason;
        [$code, $message] = self::$texts[$reason] ??= [Native::reasonCode($ffi, $reason), Native::reasonMessage($ffi, $reason)];
        if ($v->key_found === 0) {
            return new self($reason === 0, $v->http_status, $code, $message, $reason, null, null, null, null, null, null,
                false, false, false, $record);
        }
        // A blank instance (no constructor: the key fields stay uninitialised), then unset()
        // so that their first read goes through __get().
        $verdict = clone (self::$blank ??= (new \ReflectionClass(self::class))->newInstanceWithoutConstructor());
        $verdict->valid = $reason === 0;
        $verdict->httpStatus = $v->http_status;
        $verdict->code = $code;
        $verdict->message = $message;
        $verdict->reason = $reason;
        $verdict->credentialStatus = null;
        $verdict->record = $record;
        $verdict->raw = FFI::string($ptr ?? FFI::addr($v), 216);
        unset($verdict->keyId, $verdict->owner, $verdict->env, $verdict->createdAt, $verdict->expiresAt,
            $verdict->limited, $verdict->revoked, $verdict->rotated);
        return $verdict;
    }

    /** Decodes the key fields on first access (see fromNative()). */
    public function __get(string $name): mixed
    {
        if ($this->raw === null) {
            throw new \Error('Undefined property: ' . self::class . "::\$$name");
        }
        $f = unpack(self::LAYOUT, $this->raw);
        $this->raw = null;
        $this->keyId = $f['keyId'];
        $this->owner = $f['owner'];
        $this->env = $f['env'] === '' ? null : $f['env'];
        $this->createdAt = $f['created'];
        $this->expiresAt = $f['expires'] === 0 ? null : $f['expires'];
        $this->limited = ($f['flags'] & Abi::KW_KEY_LIMITED) !== 0;
        $this->revoked = ($f['flags'] & Abi::KW_KEY_REVOKED_FLAG) !== 0;
        $this->rotated = ($f['flags'] & Abi::KW_KEY_ROTATED) !== 0;
        return $this->$name;
    }

    /** @return array<string, mixed> every field, decoded */
    public function __debugInfo(): array
    {
        return ['valid' => $this->valid, 'httpStatus' => $this->httpStatus, 'code' => $this->code, 'message' => $this->message,
            'reason' => $this->reason, 'credentialStatus' => $this->credentialStatus, 'keyId' => $this->keyId,
            'owner' => $this->owner, 'env' => $this->env, 'createdAt' => $this->createdAt, 'expiresAt' => $this->expiresAt,
            'limited' => $this->limited, 'revoked' => $this->revoked, 'rotated' => $this->rotated, 'record' => $this->record];
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
