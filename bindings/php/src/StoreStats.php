<?php

declare(strict_types=1);

namespace Keyward;

/**
 * This process's counters for a store (Store::stats()).
 */
final class StoreStats
{
    /**
     * @param int $commits write transactions this process committed on the store
     * @param int $refreshes times this process reloaded changes committed by other processes
     * @param int $indexedKeys keys in this process's verify index
     * @param int $dirtyKeys keys with usage not yet flushed
     * @param bool $indexComplete whether the index holds every key (misses answered from memory)
     * @param array{generation: int, slots: int, keys: int, lookupBytes: int, fileBytes: int,
     *     cachedRecords: int, rebuilds: int, slotsRepaired: int, mapped: bool} $table the shared
     *     verify table as this process sees it
     * @param ?array{cursor: int, connected: bool, syncedAtMs: int, stalenessMs: ?int,
     *     reportedAtMs: int} $replica a replica's state against its upstream PostgreSQL: the last
     *     upstream change applied, whether its replicator was connected at its last report, when
     *     it was last known up to date (0 = never) and how long ago (null = never); null for a
     *     store of its own
     */
    public function __construct(
        public readonly int $commits,
        public readonly int $refreshes,
        public readonly int $indexedKeys,
        public readonly int $dirtyKeys,
        public readonly bool $indexComplete,
        public readonly array $table = [],
        public readonly ?array $replica = null,
    ) {
    }
}
