<?php

declare(strict_types=1);

namespace Keyward;

/**
 * One page of an owner's keys (Store::list()), in creation order.
 */
final class Page
{
    /**
     * @param list<KeyRecord> $keys the records of this page
     * @param ?int $next cursor of the next page (pass it as $after), null on the last page
     */
    public function __construct(
        public readonly array $keys,
        public readonly ?int $next,
    ) {
    }
}
