<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * The store replicates an upstream PostgreSQL (KW_UPSTREAM_REQUIRED: make the change through the
 * upstream), or the upstream is unreachable or of another schema (KW_UPSTREAM_UNAVAILABLE,
 * KW_UPSTREAM_SCHEMA); nothing was changed.
 */
class UpstreamException extends KeywardException
{
}
