<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * An internal failure: a panic caught at the C boundary (KW_PANIC) or a buffer-size
 * disagreement between this binding and the library (KW_BUFFER_TOO_SMALL). Please report it.
 */
class InternalException extends KeywardException
{
}
