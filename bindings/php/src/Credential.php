<?php

declare(strict_types=1);

namespace Keyward;

/**
 * The credential found in request headers (Keyward::extractCredential()), not verified:
 * either a full key (x-api-key, Authorization: Bearer / Basic) or a public id + secret pair
 * (X-Api-Token-Id + X-Api-Token-Secret-Key). Holds a secret: var_dump() redacts it.
 */
final class Credential
{
    public const KEY = 'key';
    public const PAIR = 'pair';

    /**
     * @param string $kind self::KEY or self::PAIR
     * @param string $secret the full key (KEY) or the pair's secret (PAIR)
     * @param ?string $id the pair's public id (null for KEY)
     */
    public function __construct(
        public readonly string $kind,
        #[\SensitiveParameter] public readonly string $secret,
        public readonly ?string $id,
    ) {
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['kind' => $this->kind, 'secret' => '[redacted]', 'id' => $this->id];
    }
}
