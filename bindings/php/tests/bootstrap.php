<?php

declare(strict_types=1);

require __DIR__ . '/autoload.php';

// The library under test: KEYWARD_LIB (set by scripts/test-php.sh), else the repository's
// debug build.
if (!is_string(getenv('KEYWARD_LIB', true)) || getenv('KEYWARD_LIB', true) === '') {
    Keyward\Library::$path = dirname(__DIR__, 3) . '/target/debug/libkeyward.so';
}
