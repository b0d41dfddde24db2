<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * The store cannot be opened or written (KW_DIRECTORY_MISSING ... KW_STORAGE,
 * KW_CREDIT_SLOTS_EXHAUSTED): permissions, locks, a wrong or missing pepper, corruption,
 * mismatched options, I/O errors.
 */
class StorageException extends KeywardException
{
}
