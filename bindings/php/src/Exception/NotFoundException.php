<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * No key with that id exists (KW_NOT_FOUND).
 */
class NotFoundException extends KeywardException
{
}
