<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * An argument was refused (KW_INVALID_ARGUMENT, KW_NULL_ARGUMENT, KW_INVALID_UTF8,
 * KW_TOO_LONG): a bug in the calling code, or input that should have been validated first.
 */
class ArgumentException extends KeywardException
{
}
