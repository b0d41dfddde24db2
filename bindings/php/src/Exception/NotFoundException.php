<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * No key with that id exists (KW_NOT_FOUND), or no record and no key of that owner (KW_OWNER_NOT_FOUND).
 */
class NotFoundException extends KeywardException
{
}
