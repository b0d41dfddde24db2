<?php

declare(strict_types=1);

namespace Keyward;

/**
 * An owner's controls and key count (Store::owner(), Store::owners()). Times are in ms since
 * the epoch; $allowedScopes is null when the owner's keys are unrestricted; $createdAt and
 * $updatedAt are null for an owner that has keys but no record.
 */
final class OwnerInfo
{
    /**
     * @param ?list<string> $allowedScopes
     */
    public function __construct(
        public readonly string $owner,
        public readonly ?int $suspendedAt,
        public readonly ?string $suspendReason,
        public readonly ?array $allowedScopes,
        public readonly ?int $createdAt,
        public readonly ?int $updatedAt,
        public readonly int $keys,
    ) {
    }

    /** Whether every key of the owner is refused (OWNER_SUSPENDED). */
    public function isSuspended(): bool
    {
        return $this->suspendedAt !== null;
    }

    /** @param array<string, mixed> $o the library's JSON object */
    public static function fromArray(array $o): self
    {
        $allowed = $o['allowed_scopes'] ?? null;
        return new self(
            (string) $o['owner'],
            isset($o['suspended_at']) ? (int) $o['suspended_at'] : null,
            $o['suspend_reason'] ?? null,
            $allowed === null ? null : array_values(array_map('strval', $allowed)),
            isset($o['created_at']) ? (int) $o['created_at'] : null,
            isset($o['updated_at']) ? (int) $o['updated_at'] : null,
            (int) $o['keys'],
        );
    }
}
