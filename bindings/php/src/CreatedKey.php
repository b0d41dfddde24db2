<?php

declare(strict_types=1);

namespace Keyward;

/**
 * A key just created (or rotated): the full key, which exists nowhere else and will never be
 * shown again, and its public record. Hand $key to the customer once, then drop it;
 * var_dump()/print_r() show it redacted.
 */
final class CreatedKey
{
    /**
     * @param string $key the full key (a secret): give it to the customer once
     * @param KeyRecord $record its public record
     */
    public function __construct(
        #[\SensitiveParameter] public readonly string $key,
        public readonly KeyRecord $record,
    ) {
    }

    /** The public key id (safe to log). */
    public function id(): string
    {
        return $this->record->id;
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['key' => '[redacted]', 'record' => $this->record];
    }
}
