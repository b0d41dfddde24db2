<?php

declare(strict_types=1);

namespace Keyward;

use Keyward\Exception\ArgumentException;

/**
 * Usage credits given to a key at creation or update: a limited key is refused
 * (USAGE_EXCEEDED, HTTP 403) once its credits are spent, across every process.
 */
final class Credits
{
    public const REFILL_NONE = Abi::KW_REFILL_NONE;
    public const REFILL_DAILY = Abi::KW_REFILL_DAILY;
    public const REFILL_MONTHLY = Abi::KW_REFILL_MONTHLY;

    /**
     * @param int $remaining credits available now (below 2^40)
     * @param int $cost default cost of one verify (0 = 1)
     * @param int $refillAmount credits after each refill (ignored without an interval)
     * @param int $refillInterval REFILL_NONE, REFILL_DAILY (start of every UTC day) or REFILL_MONTHLY
     * @throws ArgumentException for negative or out-of-range values
     */
    public function __construct(
        public readonly int $remaining,
        public readonly int $cost = 1,
        public readonly int $refillAmount = 0,
        public readonly int $refillInterval = self::REFILL_NONE,
    ) {
        Native::nonNegative($remaining, 'Credits::$remaining');
        Native::u32($cost, 'Credits::$cost');
        Native::nonNegative($refillAmount, 'Credits::$refillAmount');
        Native::u32($refillInterval, 'Credits::$refillInterval');
    }
}
