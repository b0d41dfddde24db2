<?php

declare(strict_types=1);

namespace Keyward;

/**
 * One page of audit events (Store::audit()), oldest first.
 */
final class AuditPage
{
    /**
     * @param list<AuditEvent> $events the events of this page
     * @param ?int $next cursor of the next page (pass it as $after), null on the last page
     */
    public function __construct(
        public readonly array $events,
        public readonly ?int $next,
    ) {
    }
}
