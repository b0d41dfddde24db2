<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Symfony\Component\HttpFoundation\ResponseHeaderBag;

/**
 * The headers of a keyward refusal as Guard::headers() has them: Symfony's header bag would
 * send `Cache-Control: no-store` as "no-store, private"; this one sends it unchanged, the
 * same header the PSR-15 Middleware and the Guard send.
 *
 * @internal
 */
final class RefusalHeaders extends ResponseHeaderBag
{
    protected function computeCacheControlValue(): string
    {
        return $this->cacheControl ? $this->getCacheControlHeader() : parent::computeCacheControlValue();
    }
}
