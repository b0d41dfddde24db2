<?php

declare(strict_types=1);

namespace Keyward;

use Keyward\Exception\InternalException;

/**
 * The public record of a key: everything but its secret (safe to log and to show in a
 * dashboard). Times are milliseconds since the Unix epoch, null when absent.
 */
final class KeyRecord implements \JsonSerializable
{
    /**
     * @param string $id public key id
     * @param string $owner owner (account or workspace id)
     * @param string $name human name ("" when none)
     * @param list<string> $scopes scopes, sorted, without duplicates
     * @param ?string $env env tag written into the key (e.g. "live"), null when none
     * @param int $createdAt creation time (ms)
     * @param ?int $expiresAt expiry (ms), null when never
     * @param string $metadata host-defined metadata bytes (often JSON), "" when none
     * @param ?int $revokedAt revocation time (ms)
     * @param ?string $revokeReason reason given to revoke()
     * @param ?string $rotatedFrom id of the key this one replaced
     * @param ?string $rotatedTo id of the key that replaced this one
     * @param ?array<string, mixed> $credits usage-credit terms ({"refill": ..., "cost": n}), null when unlimited
     * @param int $serial change serial of the record
     * @param ?array{scheme: string, source_id: string, upgraded_at: ?int} $legacy for a key
     *     imported from another system (Store::importLegacy): which system, its id there, and
     *     when its first use upgraded it to keyward's own digest (null before); null for
     *     keyward's own keys
     * @param ?RateLimit $rateLimit the key's own rate limit, null when none
     */
    public function __construct(
        public readonly string $id,
        public readonly string $owner,
        public readonly string $name,
        public readonly array $scopes,
        public readonly ?string $env,
        public readonly int $createdAt,
        public readonly ?int $expiresAt,
        public readonly string $metadata,
        public readonly ?int $revokedAt,
        public readonly ?string $revokeReason,
        public readonly ?string $rotatedFrom,
        public readonly ?string $rotatedTo,
        public readonly ?array $credits,
        public readonly int $serial,
        public readonly ?array $legacy = null,
        public readonly ?RateLimit $rateLimit = null,
    ) {
    }

    /**
     * A record from the library's JSON object (metadata in base64).
     *
     * @param array<string, mixed> $json
     * @throws InternalException when a field is missing or has the wrong type
     */
    public static function fromArray(array $json): self
    {
        try {
            $metadata = base64_decode((string) $json['metadata'], true);
            if ($metadata === false) {
                throw new \TypeError('metadata is not base64');
            }
            return new self(
                $json['id'],
                $json['owner'],
                $json['name'],
                $json['scopes'],
                $json['env'],
                $json['created_at'],
                $json['expires_at'],
                $metadata,
                $json['revoked_at'],
                $json['revoke_reason'],
                $json['rotated_from'],
                $json['rotated_to'],
                $json['credits'],
                $json['serial'],
                $json['legacy'] ?? null,
                isset($json['rate_limit'])
                    ? new RateLimit($json['rate_limit']['rate'], $json['rate_limit']['period_ms'], $json['rate_limit']['burst'])
                    : null,
            );
        } catch (\TypeError $e) {
            throw new InternalException(Abi::KW_PANIC, 'PANIC', 'unexpected key record from libkeyward: ' . $e->getMessage(), $e);
        }
    }

    /** Whether the key is neither revoked nor expired at $atMs (default: now). */
    public function isActive(?int $atMs = null): bool
    {
        $atMs ??= (int) floor(microtime(true) * 1000);
        return $this->revokedAt === null && ($this->expiresAt === null || $this->expiresAt > $atMs);
    }

    /** The record in the library's JSON shape (metadata in base64). */
    public function jsonSerialize(): array
    {
        return [
            'id' => $this->id,
            'owner' => $this->owner,
            'name' => $this->name,
            'scopes' => $this->scopes,
            'env' => $this->env,
            'created_at' => $this->createdAt,
            'expires_at' => $this->expiresAt,
            'metadata' => base64_encode($this->metadata),
            'revoked_at' => $this->revokedAt,
            'revoke_reason' => $this->revokeReason,
            'rotated_from' => $this->rotatedFrom,
            'rotated_to' => $this->rotatedTo,
            'credits' => $this->credits,
            'rate_limit' => $this->rateLimit === null ? null
                : ['rate' => $this->rateLimit->rate, 'period_ms' => $this->rateLimit->periodMs, 'burst' => $this->rateLimit->burst],
            'serial' => $this->serial,
        ] + ($this->legacy === null ? [] : ['legacy' => $this->legacy]);
    }
}
