<?php

declare(strict_types=1);

namespace Keyward;

/**
 * A key's usage credits now (Store::credits()). For an unlimited key $limited is false and
 * the other fields are 0.
 */
final class CreditBalance
{
    /**
     * @param bool $limited whether the key has usage credits at all
     * @param int $remaining credits left now
     * @param int $cost default cost of one verify
     * @param int $refillAmount credits after each refill (0 without refill)
     * @param int $refillInterval Credits::REFILL_NONE, REFILL_DAILY or REFILL_MONTHLY
     */
    public function __construct(
        public readonly bool $limited,
        public readonly int $remaining,
        public readonly int $cost,
        public readonly int $refillAmount,
        public readonly int $refillInterval,
    ) {
    }
}
