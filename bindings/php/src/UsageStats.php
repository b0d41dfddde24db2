<?php

declare(strict_types=1);

namespace Keyward;

/**
 * A key's usage (Store::usage()): what is stored plus what this process has not flushed yet.
 */
final class UsageStats
{
    /**
     * @param int $uses accepted verifies
     * @param int $refused refused verifies where the key id was known
     * @param ?int $lastUsedAt latest accepted verify (ms since the epoch), null when never used
     */
    public function __construct(
        public readonly int $uses,
        public readonly int $refused,
        public readonly ?int $lastUsedAt,
    ) {
    }
}
