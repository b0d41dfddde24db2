<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * libkeyward cannot be used: the shared library or the header copy cannot be loaded, the
 * FFI extension is missing or restricted, or the library's ABI version differs from the one
 * this binding was written for. getCode() is -1.
 */
class LibraryException extends KeywardException
{
    public function __construct(string $message, ?\Throwable $previous = null)
    {
        parent::__construct(-1, 'LIBRARY', $message, $previous);
    }
}
