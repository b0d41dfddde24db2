<?php

declare(strict_types=1);

namespace Keyward;

/**
 * One event of the audit log (Store::audit()): never a secret or a digest.
 *
 * $action is "create", "update", "rotate", "revoke", "delete", "import", "policy_refused",
 * "owner_suspend", "owner_resume" or "owner_scopes" (owner changes carry no $keyId);
 * $changed names the fields changed; $detail is the other key of a rotation or the error
 * code of a policy refusal. $at is in ms since the epoch.
 */
final class AuditEvent
{
    /**
     * @param list<string> $changed
     */
    public function __construct(
        public readonly int $seq,
        public readonly int $at,
        public readonly ?string $actor,
        public readonly string $action,
        public readonly ?string $keyId,
        public readonly ?string $owner,
        public readonly array $changed,
        public readonly ?string $detail,
    ) {
    }

    /** @param array<string, mixed> $e the library's JSON object */
    public static function fromArray(array $e): self
    {
        return new self(
            (int) $e['seq'],
            (int) $e['at'],
            $e['actor'] ?? null,
            (string) $e['action'],
            $e['key_id'] ?? null,
            $e['owner'] ?? null,
            array_values(array_map('strval', $e['changed'] ?? [])),
            $e['detail'] ?? null,
        );
    }
}
