<?php

declare(strict_types=1);

namespace Keyward;

/**
 * A rate limit: $rate requests per $periodMs, with bursts of up to $burst (from rest, $burst
 * requests pass at once; then one every $periodMs / $rate). $burst 0 means $rate. Exact across
 * every worker process of the host; a refused request is RATE_LIMITED (HTTP 429).
 */
final class RateLimit
{
    /**
     * @param int $rate requests per period (at least 1)
     * @param int $periodMs the period in milliseconds (1 ms to 366 days)
     * @param int $burst requests that may pass at once from rest (0 = $rate)
     */
    public function __construct(
        public readonly int $rate,
        public readonly int $periodMs = 1000,
        public readonly int $burst = 0,
    ) {
        Native::nonNegative($rate, 'RateLimit::$rate');
        Native::nonNegative($periodMs, 'RateLimit::$periodMs');
        Native::nonNegative($burst, 'RateLimit::$burst');
    }
}
