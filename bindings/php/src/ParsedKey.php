<?php

declare(strict_types=1);

namespace Keyward;

/**
 * A key checked offline (Keyward::parseKey()): structure, charset and CRC32 checksum, with no
 * store. When $valid is false, $error says why ("bad_checksum", "bad_prefix", ... the names of
 * the shared test vectors) and the parts are null. Holds the secret: var_dump() redacts it.
 */
final class ParsedKey
{
    /**
     * @param bool $valid whether the text is a well-formed key
     * @param string $error "ok" or the kw_key_error name
     * @param int $errorCode the kw_key_error value (Abi::KW_KEY_*)
     * @param ?string $prefix key prefix, e.g. "kw"
     * @param ?string $env env tag, null when the key has none
     * @param ?string $id public key id
     * @param ?string $secret the secret part (sensitive)
     */
    public function __construct(
        public readonly bool $valid,
        public readonly string $error,
        public readonly int $errorCode,
        public readonly ?string $prefix,
        public readonly ?string $env,
        public readonly ?string $id,
        #[\SensitiveParameter] public readonly ?string $secret,
    ) {
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return [
            'valid' => $this->valid,
            'error' => $this->error,
            'prefix' => $this->prefix,
            'env' => $this->env,
            'id' => $this->id,
            'secret' => $this->secret === null ? null : '[redacted]',
        ];
    }
}
