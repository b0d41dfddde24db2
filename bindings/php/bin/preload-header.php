<?php

/*
 * Writes the preload header (keyward.preload.h) with FFI_LIB naming the given libkeyward.so,
 * for the ffi.preload ini setting (needed when the php-fpm master runs as root with
 * opcache.preload_user; see preload.php and README.md, "Use from PHP").
 *
 *   php bin/preload-header.php /usr/local/lib/libkeyward.so /etc/php/keyward.h
 */

declare(strict_types=1);

require_once __DIR__ . '/../src/Exception/KeywardException.php';
require_once __DIR__ . '/../src/Exception/LibraryException.php';
require_once __DIR__ . '/../src/Abi.php';
require_once __DIR__ . '/../src/Library.php';

if ($argc !== 3) {
    fwrite(STDERR, "usage: php bin/preload-header.php <path of libkeyward.so> <output header>\n");
    exit(2);
}
if (!is_file($argv[1])) {
    fwrite(STDERR, "preload-header: no library at {$argv[1]}\n");
    exit(1);
}
if (file_put_contents($argv[2], Keyward\Library::preloadHeader((string) realpath($argv[1]))) === false) {
    fwrite(STDERR, "preload-header: cannot write {$argv[2]}\n");
    exit(1);
}
echo "wrote {$argv[2]} (FFI_SCOPE \"KEYWARD\", FFI_LIB \"" . realpath($argv[1]) . "\")\n";
