<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * The store was closed (KW_CLOSED): the handle is no longer usable.
 */
class ClosedException extends KeywardException
{
}
